//! Live tests of the procedure's dated kinds, deletion and hooks against the test DC, with the
//! engine's clock moved by the test: each change on its date and not a minute before, a leave
//! that comes back, a *cesión*, an early termination, a deletion that waits for every backup,
//! access data that wait for the mailbox, and the account's holder told.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::ad::{Ad, letters, row, unique};
use common::case::{
    Case, admin_add_member, append, bogota, contractor_row, create_row, disabled, kind_row, t, user,
};
use cuentas::request::{State, StateName};
use jiff::Timestamp;

/// What an administrator would compare to see that nothing happened to an account.
fn fingerprint(ad: &Ad, sam: &str) -> (String, u32, String, Vec<String>) {
    let e = user(ad, sam);
    (e.dn.clone(), e.uac(), e.get("accountExpires").to_string(), e.groups())
}

fn contract() -> [(&'static str, &'static str); 3] {
    [("contract_number", "C-7"), ("contract_start", "01/02/2026"), ("contract_end", "30/06/2027")]
}

/// An executable script in `dir` (a hook: cuentas runs it without a shell).
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn every_dated_kind_changes_the_directory_on_its_date_and_not_a_minute_before() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let people = [
        create_row(&u, "Funcionario", "Vera", &format!("Licencia{l}"), "Energía", &[]),
        create_row(
            &format!("{u}1"),
            "Contratista",
            "Saul",
            &format!("Suspendido{l}"),
            "Energía",
            &contract(),
        ),
        create_row(
            &format!("{u}2"),
            "Contratista",
            "Tania",
            &format!("Terminada{l}"),
            "Energía",
            &contract(),
        ),
        create_row(&format!("{u}3"), "Contratista", "Ciro", &format!("Cedente{l}"), "Energía", &contract()),
    ];
    let mut case = Case::new(&ad, &people, "keep_groups_on_termination = [\"VPN\"]");
    case.engine.cycle(t(0)).unwrap();
    let sam = |row: u32| {
        case.request(row).account.clone().unwrap_or_else(|| panic!("{:?}", case.request(row).state))
    };
    let (leave, suspended, terminated, previous) = (sam(2), sam(3), sam(4), sam(5));
    let vpn = format!("CN=VPN,OU=Grupos,{}", ad.users_ou());
    admin_add_member(&ad, &vpn, &user(&ad, &terminated).dn);

    // Wednesday 2 December from 07:30 Bogotá; the leave and the suspension end on Thursday 10.
    let dates = [("effective_date", "02/12/2026"), ("return_date", "10/12/2026")];
    let newcomer = format!("9{u}4");
    let personal = format!("p{u}4@gmail.com");
    let surname = format!("Cesionaria{l}");
    let mut assignment = vec![
        ("given_names", "Olga"),
        ("surnames", surname.as_str()),
        ("id_type", "CC"),
        ("id_number", newcomer.as_str()),
        ("personal_email", personal.as_str()),
        ("department", "Energía"),
        ("title", "Profesional"),
        ("effective_date", "02/12/2026"),
    ];
    assignment.extend_from_slice(&contract());
    append(
        &case,
        &[
            row(&[
                ("requester", "talentohumano@upme.test"),
                ("kind", "Vacaciones, Licencia"),
                ("holder_type", "Funcionario"),
                ("account", leave.as_str()),
                dates[0],
                dates[1],
            ]),
            contractor_row("Suspensión de contrato", &suspended, &dates),
            contractor_row("Terminación anticipada", &terminated, &dates[..1]),
            contractor_row("Cesión de contrato", &previous, &assignment),
        ],
    );
    let accounts = [&leave, &suspended, &terminated, &previous];
    let before: Vec<_> = accounts.iter().map(|s| fingerprint(&ad, s)).collect();
    let newcomer_account = || ad.search(&format!("(employeeID={newcomer})"), &["sAMAccountName"]);

    // Registered and scheduled; the day before and a minute before, nothing changes.
    for at in [t(60), bogota("2026-12-01", "07:30"), bogota("2026-12-02", "07:29")] {
        case.engine.cycle(at).unwrap();
        for row in 6..=9 {
            assert_eq!(case.request(row).state.name(), StateName::Scheduled, "row {row} at {at}");
        }
        let now: Vec<_> = accounts.iter().map(|s| fingerprint(&ad, s)).collect();
        assert_eq!(now, before, "at {at}");
        assert!(newcomer_account().is_empty(), "at {at}");
    }

    case.engine.cycle(bogota("2026-12-02", "07:30")).unwrap();
    // The leave and the suspension: disabled, their return scheduled.
    let back = bogota("2026-12-10", "07:30");
    for (row, sam) in [(6, &leave), (7, &suspended)] {
        assert!(disabled(&ad, sam), "{sam}");
        let r = case.request(row);
        assert!(matches!(r.state, State::Scheduled { due, .. } if due == back), "{:?}", r.state);
    }
    // The early termination: the contractor works through the last day; when it ends, the
    // account expires and is disabled, only the kept group left, retired.
    assert_eq!(case.request(8).state.name(), StateName::Scheduled);
    assert!(!disabled(&ad, &terminated), "usable through its last day");
    case.engine.cycle(bogota("2026-12-02", "23:59")).unwrap();
    assert!(!disabled(&ad, &terminated), "usable through its last day");
    case.engine.cycle(bogota("2026-12-03", "00:00")).unwrap();
    let ended = user(&ad, &terminated);
    let tz = jiff::tz::TimeZone::get("America/Bogota").unwrap();
    let end_of_day = cuentas::directory::ldap::end_of_day_filetime(jiff::civil::date(2026, 12, 2), &tz);
    assert_eq!(ended.get("accountExpires"), end_of_day.to_string());
    assert_eq!(ended.groups(), ["VPN"]);
    assert!(ended.uac() & 2 != 0);
    assert!(ended.dn.contains("OU=Retirados"), "{}", ended.dn);
    assert_eq!(case.request(8).state.name(), StateName::Closed, "{}", case.request(8).state.reason());
    // The cesión: the new contractor's account, with the contract's end, and the previous
    // holder's disabled; one request, both accounts in its history.
    let made = newcomer_account();
    assert_eq!(made.len(), 1);
    let new_sam = made[0].get("sAMAccountName").to_string();
    let new = user(&ad, &new_sam);
    assert_eq!(new.uac() & 2, 0, "enabled");
    let contract_end = cuentas::directory::ldap::end_of_day_filetime(jiff::civil::date(2027, 6, 30), &tz);
    assert_eq!(new.get("accountExpires"), contract_end.to_string());
    assert!(disabled(&ad, &previous));
    let cesion = case.request(9);
    assert_eq!(cesion.state.name(), StateName::Closed, "{}", cesion.state.reason());
    let history: Vec<&str> = cesion.history.iter().map(|h| h.reason.as_str()).collect();
    assert!(history.iter().any(|h| h.contains(&format!("add CN=Olga {surname},"))), "{history:#?}");
    assert!(
        history.iter().any(|h| h.contains(&format!("{previous}: replace userAccountControl (disable)"))),
        "{history:#?}"
    );
    assert!(case.mails().iter().any(|m| m.to == personal && m.message_id.contains("datos-de-acceso")));
    // Each account's holder was told at its own mailbox.
    let mails = case.mails();
    for sam in [&leave, &suspended, &terminated, &previous] {
        let mailbox = format!("{sam}@{}", ad.domain());
        assert!(mails.iter().any(|m| m.to == mailbox && m.message_id.contains("aviso-titular")), "{sam}");
    }

    // The return: not a minute before 07:30 on the 10th, then enabled and closed.
    case.engine.cycle(bogota("2026-12-10", "07:29")).unwrap();
    assert!(disabled(&ad, &leave) && disabled(&ad, &suspended));
    case.engine.cycle(bogota("2026-12-10", "07:30")).unwrap();
    for (row, sam) in [(6, &leave), (7, &suspended)] {
        assert!(!disabled(&ad, sam), "{sam} enabled again");
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
        assert!(r.state.reason().contains("Se reactivó"), "{}", r.state.reason());
    }
    // Enabled once each: one write per step.
    let writes = case.ldap_writes();
    for sam in [&leave, &suspended] {
        let enables = writes.iter().filter(|w| w.contains(sam.as_str()) && w.ends_with("(enable)")).count();
        assert_eq!(enables, 1, "{sam}: {writes:#?}");
    }
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn steps_due_while_the_daemon_was_stopped_run_in_the_order_they_fell_due() {
    let ad = Ad::from_env();
    let u = unique();
    let person = create_row(&u, "Funcionario", "Orden", &format!("Fechas{}", letters(&u)), "Energía", &[]);
    let mut case = Case::new(&ad, &[person], "");
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let dated = |kind: &str, date: &str| {
        row(&[
            ("requester", "talentohumano@upme.test"),
            ("kind", kind),
            ("holder_type", "Funcionario"),
            ("account", sam.as_str()),
            ("effective_date", date),
        ])
    };
    // Registered in the other order: the enable (on the 3rd) before the disable (on the 1st).
    append(
        &case,
        &[dated("Reactivación de cuenta", "03/12/2026"), dated("Inactivación de cuenta", "01/12/2026")],
    );
    case.engine.cycle(t(10)).unwrap();
    assert_eq!(case.request(3).state.name(), StateName::Scheduled);
    assert_eq!(case.request(4).state.name(), StateName::Scheduled);
    // The daemon comes back on the 4th: disabled, then enabled again, as the dates say.
    case.engine.cycle(bogota("2026-12-04", "09:00")).unwrap();
    assert!(!disabled(&ad, &sam), "the enable due last ran last");
    let writes = case.ldap_writes();
    let disable =
        writes.iter().position(|w| w.ends_with(&format!("{sam}: replace userAccountControl (disable)")));
    let enable =
        writes.iter().position(|w| w.ends_with(&format!("{sam}: replace userAccountControl (enable)")));
    assert!(disable.is_some() && disable < enable, "{writes:#?}");
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn an_edited_date_moves_a_scheduled_job_and_a_moved_return_moves_the_return() {
    let ad = Ad::from_env();
    let u = unique();
    let person = create_row(&u, "Funcionario", "Edita", &format!("Fechas{}", letters(&u)), "Energía", &[]);
    let mut case = Case::new(&ad, &[person], "");
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let leave = |start: &str, back: &str| {
        row(&[
            ("requester", "talentohumano@upme.test"),
            ("kind", "Vacaciones, Licencia"),
            ("holder_type", "Funcionario"),
            ("account", sam.as_str()),
            ("effective_date", start),
            ("return_date", back),
        ])
    };
    append(&case, &[leave("02/12/2026", "10/12/2026")]);
    case.engine.cycle(t(10)).unwrap();
    // The requester corrects the start to the 3rd: the job moves with it.
    let path = case.dir.path().join("respuestas.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("02/12/2026,10/12/2026", "03/12/2026,10/12/2026")).unwrap();
    case.engine.cycle(t(20)).unwrap();
    let r = case.request(3);
    assert!(
        matches!(r.state, State::Scheduled { due, .. } if due == bogota("2026-12-03", "07:30")),
        "{:?}",
        r.state
    );
    case.engine.cycle(bogota("2026-12-02", "07:30")).unwrap();
    assert!(!disabled(&ad, &sam), "not on the old date");
    case.engine.cycle(bogota("2026-12-03", "07:30")).unwrap();
    assert!(disabled(&ad, &sam));
    // Disabled now: a corrected return date moves the return, and nothing else changes.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("03/12/2026,10/12/2026", "03/12/2026,07/12/2026")).unwrap();
    case.engine.cycle(bogota("2026-12-03", "08:00")).unwrap();
    let r = case.request(3);
    assert!(
        matches!(r.state, State::Scheduled { due, .. } if due == bogota("2026-12-07", "07:30")),
        "{:?}",
        r.state
    );
    case.engine.cycle(bogota("2026-12-07", "07:30")).unwrap();
    assert!(!disabled(&ad, &sam));
    assert_eq!(case.request(3).state.name(), StateName::Closed);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_deletion_waits_for_every_backup_then_deletes_runs_its_hooks_and_closes() {
    let ad = Ad::from_env();
    let u = unique();
    let person =
        create_row(&u, "Contratista", "Delia", &format!("Borrada{}", letters(&u)), "Energía", &contract());
    let dir = tempfile::tempdir().unwrap();
    let synced = dir.path().join("sincronizaciones");
    let deleted = dir.path().join("buzones-eliminados");
    let sync =
        script(dir.path(), "sync", &format!("echo sincronizado >> {}\necho delta sync ok", synced.display()));
    let gone = script(
        dir.path(),
        "gone",
        &format!("echo \"$@\" >> {}\necho \"buzón de $2 eliminado\"", deleted.display()),
    );
    let hooks = format!(
        "min_days_disabled_before_delete = 2\n[hooks]\nafter_change = [\"{sync}\"]\nmailbox_deleted = [\"{gone}\", \"--deleted\"]"
    );
    let mut case = Case::new(&ad, &[person], &hooks);
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    assert_eq!(lines(&synced), 1, "after_change once for the cycle that created the account");
    append(&case, &[contractor_row("Eliminación de cuenta", &sam, &[])]);
    case.engine.cycle(t(10)).unwrap();
    // Disabled and retired at once; the checklist went to the service desk.
    let retired = user(&ad, &sam);
    assert!(retired.uac() & 2 != 0 && retired.dn.contains("OU=Retirados"), "{}", retired.dn);
    let r = case.request(3);
    assert!(
        matches!(&r.state, State::AwaitingConfirmation { pending, .. } if pending.len() == 7),
        "{:?}",
        r.state
    );
    assert_eq!(lines(&synced), 2);
    let id = r.id.to_string();
    let checklist = case.mails().into_iter().find(|m| m.message_id.contains("lista-eliminacion")).unwrap();
    // Without a desk form, each step says who records it; no mail gives a command to type.
    assert!(checklist.body.contains("7. Información del usuario borrada del equipo"), "{}", checklist.body);
    assert!(
        checklist.body.contains(&format!(
            "lo registra un administrador de cuentas en el servidor («Confirmar paso de la eliminación», {id})"
        )),
        "{}",
        checklist.body
    );
    assert!(!checklist.body.contains("cuentas confirm"), "{}", checklist.body);

    // Six of the seven steps confirmed (the store is the CLI's while the engine is closed).
    let config = case.dir.path().join("cuentas.toml");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap()
    };
    let Case { dir: case_dir, engine } = case;
    drop(engine);
    for step in ["correo", "calendario", "contactos", "nube", "equipo-respaldo", "equipo-dominio"] {
        cli(&["confirm", &id, step, "--by", "Ana Ruiz"]);
    }
    let mut case = Case {
        engine: cuentas::engine::Engine::new(cuentas::config::Config::load(&config).unwrap()).unwrap(),
        dir: case_dir,
    };
    // However long the clock runs, one step missing keeps the account.
    for days in [3, 30, 400] {
        case.engine.cycle(t(10) + jiff::SignedDuration::from_hours(24 * days)).unwrap();
        assert!(ad.user(&sam).is_some(), "{sam} deleted with a step unconfirmed");
        assert_eq!(case.request(3).state.name(), StateName::AwaitingConfirmation);
    }
    assert_eq!(lines(&deleted), 0);

    // The last confirmation; the daemon's next cycle (real clock: days after the disable) deletes.
    let Case { dir: case_dir, engine } = case;
    drop(engine);
    cli(&["confirm", &id, "equipo-borrado", "--by", "Ana Ruiz", "--note", "formateado"]);
    let log = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["run", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert!(log.status.success());
    let log = String::from_utf8_lossy(&log.stderr);
    assert!(ad.user(&sam).is_none(), "{sam} deleted: {log}");
    // The hooks ran, their output in the log and the history.
    assert_eq!(std::fs::read_to_string(&deleted).unwrap().trim(), format!("--deleted {sam}"));
    assert_eq!(lines(&synced), 3);
    assert!(log.contains(&gone) && log.contains(&sync), "{log}");
    assert!(log.contains(&format!("buzón de {sam} eliminado")), "{log}");
    let show = cli(&["show", &id]);
    assert!(show.contains(&format!("mailbox_deleted {sam}: salida 0: buzón de {sam} eliminado")), "{show}");
    assert!(show.contains("sincronización del dominio (after_change): salida 0: delta sync ok"), "{show}");
    // The requester got the closing mail.
    let spool = case_dir.path().join("var/correo");
    let closing = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| common::Mail::parse(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
        .find(|m| m.message_id.starts_with(&format!("<{id}.")) && m.message_id.contains("resultado"))
        .expect("the closing mail");
    assert_eq!(closing.to, "supervisor@upme.test");
    assert!(closing.body.contains(&format!("Se eliminó la cuenta {sam}")), "{}", closing.body);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn access_data_wait_for_the_mailbox_and_go_out_once_it_is_there() {
    let ad = Ad::from_env();
    let u = unique();
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("llamadas");
    let synced = dir.path().join("sincronizaciones");
    // Not there the first three times it is asked about, there from the fourth.
    let ready = script(
        dir.path(),
        "ready",
        &format!(
            "echo \"$1\" >> {c}\nn=$(wc -l < {c})\nif [ \"$n\" -le 3 ]; then echo \"sin buzón ($n)\"; exit 1; fi\necho listo",
            c = calls.display()
        ),
    );
    let sync = script(dir.path(), "sync", &format!("echo x >> {}", synced.display()));
    let hooks = format!("[hooks]\nmailbox_ready = [\"{ready}\"]\nafter_change = [\"{sync}\"]");
    let person = create_row(&u, "Funcionario", "Buzon", &format!("Espera{}", letters(&u)), "Energía", &[]);
    let mut case = Case::new(&ad, &[person], &hooks);
    let personal = format!("p{u}@gmail.com");
    let access = |case: &Case| {
        case.mails()
            .into_iter()
            .filter(|m| m.to == personal && m.message_id.contains("datos-de-acceso"))
            .count()
    };
    // A cycle every minute for a quarter of an hour: the directory changes are counted as
    // they happen, to compare with the after_change runs.
    let mut changing_cycles = 0;
    let mut writes = 0;
    for minute in 0..15 {
        case.engine.cycle(t(minute)).unwrap();
        let now = case.ldap_writes().len();
        if now > writes {
            changing_cycles += 1;
        }
        writes = now;
        let asked = lines(&calls);
        let r = case.request(2);
        if asked <= 3 {
            assert_eq!(access(&case), 0, "minute {minute}: no access data before the mailbox");
            assert_eq!(r.state.name(), StateName::Executing, "minute {minute}: {}", r.state.reason());
        }
    }
    assert_eq!(lines(&calls), 4, "asked with backoff, not every minute");
    assert_eq!(access(&case), 1, "the access data went out once");
    let r = case.request(2);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    let sam = r.account.clone().unwrap();
    // The password sent is the one the account has: AD asks for it to be changed.
    let password = case.password_sent_to(&personal);
    let err = ad.bind_as(&format!("{sam}@{}", ad.domain()), &password).unwrap_err();
    assert!(err.contains("data 773"), "{err}");
    // In its history: three misses, then found, then the access data sent.
    let history: Vec<&str> = r.history.iter().map(|h| h.reason.as_str()).collect();
    let misses = history.iter().filter(|h| h.starts_with(&format!("mailbox_ready {sam}: salida 1"))).count();
    assert_eq!(misses, 3, "{history:#?}");
    let found =
        history.iter().position(|h| h.starts_with(&format!("mailbox_ready {sam}: salida 0"))).unwrap();
    let sent = history.iter().position(|h| h.starts_with("datos de acceso enviados")).unwrap();
    assert!(found < sent, "{history:#?}");
    // A quarter of an hour is within `mailbox_wait_hours`: no alert.
    assert!(!case.mails().iter().any(|m| m.message_id.contains("alerta")));
    // after_change ran once per cycle that changed the directory, and only then.
    assert_eq!(lines(&synced), changing_cycles);
    assert_eq!(changing_cycles, 2, "the creation, then the new password");
}

#[test]
#[ignore = "live: the test AD DC and SMTP relay (tests/run.sh runs them)"]
fn a_closed_transfer_tells_the_account_s_own_mailbox() {
    let ad = Ad::from_env();
    let env = common::smtp::env();
    let u = unique();
    let person = create_row(&u, "Funcionario", "Tomas", &format!("Traslado{}", letters(&u)), "Energía", &[]);
    let case = Case::new(&ad, &[person], "");
    let sink = common::smtp::Sink::start(&env, &case.dir.path().join("Maildir"), 0);
    let config = case.dir.path().join("cuentas.toml");
    let text = common::smtp::through(&std::fs::read_to_string(&config).unwrap(), &env, sink.port);
    std::fs::write(&config, text).unwrap();
    let mut case = case.reopen();
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    append(
        &case,
        &[row(&[
            ("requester", "talentohumano@upme.test"),
            ("kind", "Traslado de dependencia"),
            ("holder_type", "Funcionario"),
            ("account", sam.as_str()),
            ("department", "Planeación"),
            ("title", "Asesor"),
            ("effective_date", "27/11/2026"),
        ])],
    );
    case.engine.cycle(t(10)).unwrap();
    let r = case.request(3);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    assert!(user(&ad, &sam).dn.contains("OU=Planeacion"));
    let mailbox = format!("{sam}@{}", ad.domain());
    let notice = sink
        .mails()
        .into_iter()
        .find(|m| m.to == mailbox)
        .unwrap_or_else(|| panic!("no notice at {mailbox}"));
    assert!(notice.message_id.contains("aviso-titular"), "{}", notice.message_id);
    assert!(notice.subject.contains(&sam), "{}", notice.subject);
    assert!(
        notice.body.contains("talentohumano@upme.test") && notice.body.contains(&r.id.to_string()),
        "{}",
        notice.body
    );
}

/// The real clock, for the one test that runs the daemon as a process.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> Timestamp {
    Timestamp::now()
}

/// Waits until `path` contains `needle` (the daemon's log), at most `secs` seconds.
fn wait_for_log(path: &Path, needle: &str, secs: u64) -> String {
    for _ in 0..secs * 10 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no «{needle}» in {}:\n{}", path.display(), std::fs::read_to_string(path).unwrap_or_default());
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_daemon_killed_between_scheduling_and_the_date_changes_the_directory_once_on_time() {
    let ad = Ad::from_env();
    let u = unique();
    let person = create_row(&u, "Funcionario", "Kilian", &format!("Reinicio{}", letters(&u)), "Energía", &[]);
    let mut case = Case::new(&ad, &[person], "");
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let Case { dir, engine } = case;
    drop(engine);

    // The start of the working day (when scheduled steps run) a minute from now, today:
    // a leave starting today is scheduled for then. (Near midnight, wait for the next day.)
    let tz = jiff::tz::TimeZone::get("America/Bogota").unwrap();
    let mut due = wall_clock().to_zoned(tz.clone()).round(jiff::Unit::Second).unwrap()
        + jiff::SignedDuration::from_secs(30);
    if due.time() > jiff::civil::time(23, 57, 0, 0) {
        std::thread::sleep(std::time::Duration::from_secs(180));
        due = wall_clock().to_zoned(tz.clone()).round(jiff::Unit::Second).unwrap()
            + jiff::SignedDuration::from_secs(30);
    }
    let config = dir.path().join("cuentas.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "poll_interval_secs = 1\n{text}\n[time]\nbusiness_day_start = \"{}\"\nbusiness_day_end = \"23:59:59\"\n",
            due.time().strftime("%H:%M:%S")
        ),
    )
    .unwrap();
    let day = |d: jiff::civil::Date| d.strftime("%d/%m/%Y").to_string();
    let (start, back) = (day(due.date()), day(due.date().tomorrow().unwrap()));
    let path = dir.path().join("respuestas.csv");
    let mut responses = std::fs::read_to_string(&path).unwrap();
    responses.push_str(&row(&[
        ("requester", "talentohumano@upme.test"),
        ("kind", "Vacaciones, Licencia"),
        ("holder_type", "Funcionario"),
        ("account", sam.as_str()),
        ("effective_date", start.as_str()),
        ("return_date", back.as_str()),
    ]));
    std::fs::write(&path, responses).unwrap();

    let daemon = |log: &str| {
        let log = std::fs::File::create(dir.path().join(log)).unwrap();
        common::Daemon(
            Command::new(env!("CARGO_BIN_EXE_cuentas"))
                .args(["run", "--config"])
                .arg(&config)
                .env("RUST_LOG", "info")
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    };
    // Scheduled by the first daemon, which is then killed outright.
    let mut first = daemon("primero.log");
    wait_for_log(&dir.path().join("primero.log"), "Scheduled", 45);
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert!(!disabled(&ad, &sam));
    assert!(wall_clock() < due.timestamp(), "the test machine is too slow for this test's minute");

    // A new daemon: the account is disabled at the due time, not before.
    let mut second = daemon("segundo.log");
    let seen = loop {
        let now = wall_clock();
        if disabled(&ad, &sam) {
            break now;
        }
        assert!(now < due.timestamp() + jiff::SignedDuration::from_secs(60), "not disabled on time");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(seen >= due.timestamp(), "disabled at {seen}, before {due}");
    wait_for_log(&dir.path().join("segundo.log"), "carried out", 60);
    Command::new("kill").args(["-TERM", &second.0.id().to_string()]).status().unwrap();
    assert!(second.0.wait().unwrap().success());

    // Once: one disable in the request's history, one due run.
    let store = cuentas::store::Store::open(&dir.path().join("var/estado")).unwrap();
    let r = store.requests().map(|r| r.unwrap()).find(|r| r.row == 3).unwrap();
    let reasons: Vec<&str> = r.history.iter().map(|h| h.reason.as_str()).collect();
    let disables = reasons
        .iter()
        .filter(|h| h.ends_with(&format!("{sam}: replace userAccountControl (disable)")))
        .count();
    assert_eq!(disables, 1, "{reasons:#?}");
    assert_eq!(reasons.iter().filter(|h| **h == "llegó la fecha programada").count(), 1, "{reasons:#?}");
    assert!(matches!(r.state, State::Scheduled { .. }), "the return waits: {:?}", r.state);
}

#[test]
#[ignore = "live: the test AD DC and SMTP relay (tests/run.sh runs them)"]
fn the_service_desk_register_gets_a_ticket_and_the_request_s_messages_in_its_thread() {
    let ad = Ad::from_env();
    let env = common::smtp::env();
    let u = unique();
    let person = create_row(&u, "Funcionario", "Regina", &format!("Registro{}", letters(&u)), "Energía", &[]);
    // Anyone may fill the form in: a row from outside the domain opens no ticket.
    let outsider = kind_row("alguien@gmail.com", "Cambio de clave", "regina", &[]);
    let case = Case::new(&ad, &[person, outsider], "");
    let sink = common::smtp::Sink::start(&env, &case.dir.path().join("Maildir"), 0);
    let config = case.dir.path().join("cuentas.toml");
    let text = common::smtp::through(&std::fs::read_to_string(&config).unwrap(), &env, sink.port)
        .replace("service_desk = ", "service_desk_register = \"tickets@mesa.upme.test\"\nservice_desk = ");
    std::fs::write(&config, text).unwrap();
    let mut case = case.reopen();
    case.engine.cycle(t(0)).unwrap();
    let r = case.request(2);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    let id = r.id.to_string();
    let to_desk: Vec<_> = sink.mails().into_iter().filter(|m| m.to == "tickets@mesa.upme.test").collect();
    let outsider = case.request(3).id.to_string();
    assert!(
        !to_desk.iter().any(|m| m.subject.contains(&outsider)),
        "no ticket for a row from outside the domain"
    );
    // The ticket: the request's id in the subject, the submission in the body.
    let ticket = to_desk.iter().find(|m| m.message_id == format!("<{id}.registro@upme.test>")).unwrap();
    assert!(ticket.subject.starts_with(&format!("[{id}] Creación de cuenta")), "{}", ticket.subject);
    assert!(
        ticket.body.contains(&format!("Documento: CC 9{u}")) && ticket.body.contains("Dependencia: Energía"),
        "{}",
        ticket.body
    );
    assert!(!ticket.raw.contains("In-Reply-To"), "the ticket starts the thread");
    // A later message (the outcome) follows in its thread; the access data never go there.
    let outcome = to_desk.iter().find(|m| m.message_id.contains(".resultado.copia@")).unwrap();
    let header = |name: &str| {
        outcome
            .raw
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("In-Reply-To"), format!("<{id}.registro@upme.test>"));
    assert_eq!(header("References"), format!("<{id}.registro@upme.test>"));
    assert!(outcome.subject.starts_with(&format!("[{id}]")), "{}", outcome.subject);
    assert!(!to_desk.iter().any(|m| m.message_id.contains("datos-de-acceso")));
    // The requester's own copy is untouched: no thread headers, its own recipient.
    let own = sink.mails().into_iter().find(|m| m.message_id.contains(".resultado@")).unwrap();
    assert_eq!(own.to, "talentohumano@upme.test");
}
