//! The `cuentas` command as an administrator types it: `run --once` on the demo, `requests`,
//! `show`, `plan` and `check --offline`.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Output};

use common::Demo;

fn cuentas(demo: &Demo, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(args)
        .arg("--config")
        .arg(demo.path("cuentas.toml"))
        .env_remove("CUENTAS_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn run_once_prints_a_line_per_request_and_a_second_run_does_nothing() {
    let demo = Demo::new();
    let out = stdout(&cuentas(&demo, &["run", "--once"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 33, "{out}");
    assert!(lines[0].starts_with("GU-"), "{}", lines[0]);
    assert!(
        lines[0].contains("row 2 ") && lines[0].contains("Creación de cuenta") && lines[0].contains("Closed")
    );
    assert!(out.contains("NeedsInfo") && out.contains("Rejected") && out.contains("Routed"));
    // Row 8, the on-site reset, was marked done through the service desk's form.
    assert!(lines[6].contains("row 8 ") && lines[6].contains("Closed"), "{}", lines[6]);
    assert!(lines[32].starts_with("32 registered, 0 edited, 60 messages sent, 13 open"), "{}", lines[32]);
    let spooled = std::fs::read_dir(demo.path("var/correo")).unwrap().count();
    assert_eq!(spooled, 67);

    // The desk form's responses were acted on once: a second run reads none of them again.
    let again = stdout(&cuentas(&demo, &["run", "--once"]));
    assert_eq!(again.trim(), "0 registered, 0 edited, 0 messages sent, 13 open");
    assert_eq!(std::fs::read_dir(demo.path("var/correo")).unwrap().count(), 67);

    let needs_info = stdout(&cuentas(&demo, &["requests", "--state", "needsinfo"]));
    assert_eq!(needs_info.lines().count(), 6, "{needs_info}");

    let show = stdout(&cuentas(&demo, &["show", "GU-2026-000002"]));
    assert!(show.contains("account:   maria.delahoz"), "{show}");
    for step in ["Received", "Received → Executing", "Executing → Notifying", "Notifying → Closed"] {
        assert!(show.contains(step), "{step} missing in:\n{show}");
    }
    assert!(show.contains("datos de acceso enviados a m***@gmail.com"));
    // The deletion: who confirmed each step through the desk form, and when it goes.
    let show = stdout(&cuentas(&demo, &["show", "GU-2026-000013"]));
    let confirmed = show.split("  confirmed:\n").nth(1).unwrap().split("  to confirm").next().unwrap();
    assert_eq!(
        confirmed.lines().filter(|l| l.contains("por Laura Gómez (laura.gomez@upme.gov.co)")).count(),
        7,
        "{show}"
    );
    assert!(
        show.contains(
            "every step is confirmed; the account is deleted at the first cycle from 2026-12-30 10:00"
        ),
        "{show}"
    );
    assert!(
        show.contains("formulario de la mesa: camilo.rios@upme.gov.co"),
        "the outsider's attempt: {show}"
    );

    let plan = stdout(&cuentas(&demo, &["plan"]));
    assert!(plan.contains("GU-2026-000011 (Scheduled) hernan.castro:"), "{plan}");
    assert!(plan.contains("disable hernan.castro"));
    // On a date: what will have come due by the end of it, and nothing due later.
    let on_the_first = stdout(&cuentas(&demo, &["plan", "--at", "2026-12-01"]));
    assert!(on_the_first.starts_with("By the end of 2026-12-01"), "{on_the_first}");
    assert!(
        on_the_first.contains("GU-2026-000017 (Scheduled) sofia.herrera: on 2026-12-01 07:30"),
        "{on_the_first}"
    );
    assert!(
        !on_the_first.contains("GU-2026-000011") && !on_the_first.contains("GU-2026-000018"),
        "{on_the_first}"
    );
    let mid_december = stdout(&cuentas(&demo, &["plan", "--at", "2026-12-15"]));
    assert!(
        mid_december.contains("GU-2026-000011 (Scheduled) hernan.castro: on 2026-12-15 07:30"),
        "{mid_december}"
    );
    assert!(mid_december.contains("GU-2026-000018 (Scheduled) oscar.diaz"), "{mid_december}");
    let before = stdout(&cuentas(&demo, &["plan", "--at", "2026-11-30"]));
    assert_eq!(before, "nothing will have run by the end of 2026-11-30\n");

    let missing = cuentas(&demo, &["show", "GU-2026-999999"]);
    assert!(!missing.status.success());
}

#[test]
fn check_offline_reports_every_mistake_at_once() {
    let demo = Demo::new();
    let ok = stdout(&cuentas(&demo, &["check", "--offline"]));
    assert!(ok.contains("valid"), "{ok}");

    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let broken = config
        .replace("poll_interval_secs = 60", "poll_interval_secs = 0")
        .replace(
            "from = \"Mesa de Servicio UPME <mesadeservicio@upme.gov.co>\"",
            "from = \"mesa de servicio\"",
        )
        .replace("\"{g1}.{s1}\",", "\"{g1}_{s1}\",");
    std::fs::write(demo.path("cuentas.toml"), broken).unwrap();
    let out = cuentas(&demo, &["check", "--offline"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has 3 problem(s)"), "{err}");
    assert!(err.contains("poll_interval_secs"));
    assert!(err.contains("«mesa de servicio» is not an e-mail address"));
    assert!(err.contains("{g1}_{s1}"));
}

#[test]
fn breaches_are_logged_and_requests_and_show_give_the_service_level() {
    let demo = Demo::new();
    // Row 8 stays in the hands of the service desk.
    demo.without_desk_responses();
    let run = cuentas(&demo, &["run", "--once"]);
    let log = String::from_utf8_lossy(&run.stderr).into_owned();
    // Row 8, done by hand, was submitted on 24 November: its 10 business hours are long gone.
    let breach = log.lines().find(|l| l.contains("GU-2026-000007") && l.contains("service level breached"));
    assert!(breach.is_some_and(|l| l.contains("WARN")), "{log}");
    // Requests carried out in this very cycle are measured when they close, not logged.
    assert!(!log.lines().any(|l| l.contains("GU-2026-000001") && l.contains("breached")), "{log}");
    let listed = stdout(&cuentas(&demo, &["requests", "--state", "Manual"]));
    assert!(listed.contains("GU-2026-000007") && listed.contains("% !"), "{listed}");
    let scheduled = stdout(&cuentas(&demo, &["requests", "--state", "Scheduled"]));
    assert_eq!(scheduled.lines().count(), 6, "{scheduled}");
    assert!(scheduled.lines().all(|l| l.contains("% ⏸") || l.contains("% !")), "{scheduled}");
    let show = stdout(&cuentas(&demo, &["show", "GU-2026-000007"]));
    assert!(show.contains("submitted: 2026-11-24 07:41"), "{show}");
    assert!(show.contains("business hours consumed") && show.contains("BREACHED"), "{show}");
    assert!(show.contains("service desk warned"), "{show}");
}

#[test]
fn check_names_each_hook_that_cannot_run() {
    let demo = Demo::new();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let not_executable = demo.path("sync.sh");
    std::fs::write(&not_executable, "#!/bin/sh\necho hola\n").unwrap();
    let hooks = format!(
        "\n[hooks]\nafter_change = [\"{}\"]\nmailbox_ready = [\"/nonexistent/buzon-listo.sh\"]\nmailbox_deleted = [\"relative.sh\"]\n",
        not_executable.display()
    );
    std::fs::write(demo.path("cuentas.toml"), config.clone() + &hooks).unwrap();
    // A relative program is a configuration error by itself.
    let err = String::from_utf8_lossy(&cuentas(&demo, &["check", "--offline"]).stderr).into_owned();
    assert!(err.contains("[hooks] mailbox_deleted"), "{err}");
    let hooks = hooks.replace("\"relative.sh\"", "\"/usr/bin/true\"");
    std::fs::write(demo.path("cuentas.toml"), config + &hooks).unwrap();
    let out = cuentas(&demo, &["check", "--offline"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[hooks] after_change") && err.contains("[hooks] mailbox_ready"), "{err}");
    assert!(!err.contains("[hooks] mailbox_deleted"), "{err}");
}

#[test]
fn check_refuses_dependencies_that_are_not_the_entity_s() {
    let demo = Demo::new();
    let matrix = std::fs::read_to_string(demo.path("autorizadores.csv")).unwrap();
    std::fs::write(
        demo.path("autorizadores.csv"),
        format!("{matrix}nadie@upme.gov.co,Nadie,jefe_area,Secretaría General;Subdirección Inventada,2024-01-01,\n"),
    )
    .unwrap();
    let out = cuentas(&demo, &["check", "--offline"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 12: «Subdirección Inventada» is not one of [form] departments"), "{err}");
    assert!(!err.contains("«Secretaría General» is not"), "{err}");

    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let config =
        config.replace("\"Secretaría General\" = [\"GG-Todos\"]", "\"Secretaria de Todo\" = [\"GG-Todos\"]");
    std::fs::write(demo.path("cuentas.toml"), config).unwrap();
    let err = String::from_utf8_lossy(&cuentas(&demo, &["check", "--offline"]).stderr).into_owned();
    assert!(
        err.contains("[directory.department_groups] «Secretaria de Todo» is not one of [form] departments"),
        "{err}"
    );
}

#[test]
fn the_daemon_stops_cleanly_on_sigterm() {
    let demo = Demo::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["run", "--config"])
        .arg(demo.path("cuentas.toml"))
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first cycle to have delivered everything.
    for _ in 0..300 {
        if std::fs::read_dir(demo.path("var/correo")).map(|d| d.count()).unwrap_or(0) == 59 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(child.try_wait().unwrap().is_none(), "the daemon keeps running between polls");
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("started") && log.contains("stopping"), "{log}");
    // The store was closed properly: the CLI can open it and sees everything.
    let listed = stdout(&cuentas(&demo, &["requests"]));
    assert_eq!(listed.lines().count(), 32);
}

/// `cuentas run` on the demo, its log (at info) in `log`.
fn daemon_logging_to(demo: &Demo, log: &std::path::Path) -> common::Daemon {
    common::Daemon(
        Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(["run", "--config"])
            .arg(demo.path("cuentas.toml"))
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Past `memory_ceiling_mib` the daemon starts itself again in place between two cycles: the
/// same process (systemd sees no restart), its demo clock going on, its socket answering, and
/// what it does the same as a daemon that never started again.
#[test]
fn past_its_memory_ceiling_the_daemon_starts_again_in_place_and_loses_nothing() {
    let demo = Demo::new();
    let twin = Demo::new();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let config = config.replace(
        "poll_interval_secs = 60",
        "poll_interval_secs = 1\nmemory_ceiling_mib = 1\ncontrol_socket = \"control.sock\"",
    );
    std::fs::write(demo.path("cuentas.toml"), config).unwrap();
    let log = demo.path("daemon.log");
    let mut daemon = daemon_logging_to(&demo, &log);
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // Up to two minutes: the machine may be busy with other tests.
    for _ in 0..2400 {
        if read_log().matches("starting again in place").count() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let text = read_log();
    assert!(text.matches("starting again in place").count() >= 3, "{text}");
    assert!(text.contains("memory_ceiling_mib=1"), "{text}");
    // A ceiling below what any start holds is named, so that someone raises it.
    assert!(text.contains("memory_ceiling_mib is below what a start on this store holds"), "{text}");
    assert!(daemon.0.try_wait().unwrap().is_none(), "the same process goes on: {text}");
    // The demo clock goes on from where each left it, never back to demo_clock.
    let clock: Vec<jiff::Timestamp> = text
        .lines()
        .filter(|l| l.contains("the demo's own clock"))
        .map(|l| l.split("at=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert!(clock.len() >= 3, "{text}");
    assert!(clock.windows(2).all(|w| w[0] <= w[1]), "{clock:?}");
    assert!(clock.last() > clock.first(), "{clock:?}");
    // Its socket answers (the daemon holds the store).
    for _ in 0..200 {
        if demo.path("control.sock").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let listed = stdout(&cuentas(&demo, &["requests"]));
    assert_eq!(listed.lines().count(), 32, "{listed}");
    Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]).status().unwrap();
    assert!(daemon.0.wait().unwrap().success());
    // The same mail, once each, as a daemon that ran once.
    stdout(&cuentas(&twin, &["run", "--once"]));
    let subjects = |d: &Demo| {
        let mut s: Vec<String> = d.mails().iter().map(|m| format!("{} {}", m.to, m.subject)).collect();
        s.sort();
        s
    };
    assert_eq!(subjects(&demo), subjects(&twin));
}

#[test]
fn a_daemon_killed_at_any_moment_loses_and_duplicates_nothing() {
    const ROWS: usize = 500;
    let demo = Demo::new();
    let header = demo.responses().lines().next().unwrap().to_string();
    demo.write_responses(&format!("{header}\n{}", common::generated_rows(ROWS)));
    // SIGKILL at several points of the first import, restarting each time.
    for delay_ms in [80, 300, 150, 600] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(["run", "--config"])
            .arg(demo.path("cuentas.toml"))
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    stdout(&cuentas(&demo, &["run", "--once"]));

    let listed = stdout(&cuentas(&demo, &["requests"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), ROWS, "every row registered exactly once");
    let mut rows: Vec<u32> =
        lines.iter().map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap()).collect();
    rows.sort();
    rows.dedup();
    assert_eq!(rows.len(), ROWS, "no row registered twice");
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("GU-2026-{:06}", i + 1)), "ids have no gaps: {line}");
        assert!(line.contains(" Closed ") || line.contains(" NeedsInfo "), "{line}");
    }
    // No two open or closed creations took the same account.
    let mut accounts = std::collections::HashSet::new();
    for line in lines.iter().filter(|l| l.contains("Se creó la cuenta")) {
        let account = line.split("Se creó la cuenta ").nth(1).unwrap().split(' ').next().unwrap();
        assert!(accounts.insert(account.to_string()), "{account} given twice");
    }
    // Every message went out; one may repeat after a kill, none more than twice.
    let mails = demo.mails();
    let mut by_id = std::collections::HashMap::new();
    for m in &mails {
        *by_id.entry(m.message_id.clone()).or_insert(0) += 1;
    }
    assert!(by_id.values().all(|&n| n <= 2), "a message sent three times");
    let outcomes = by_id.keys().filter(|id| id.contains(".resultado@")).count();
    assert_eq!(outcomes, lines.iter().filter(|l| l.contains(" Closed ")).count());
}

#[test]
fn requests_handled_by_hand_are_marked_done_or_cancelled() {
    let demo = Demo::new();
    // The CLI's commands, on requests the demo's service desk form would act on first.
    demo.without_desk_responses();
    stdout(&cuentas(&demo, &["run", "--once"]));
    // Row 8: a reset for someone on site, done at her desk by the service desk.
    let note = "Se habilitó el cambio de contraseña de sofia.herrera en su puesto.";
    let out = stdout(&cuentas(&demo, &["done", "GU-2026-000007", "--note", note]));
    assert!(out.contains("done"), "{out}");
    assert!(!cuentas(&demo, &["done", "GU-2026-000001", "--note", "x"]).status.success(), "only Manual ones");
    // Row 15, a leave not begun yet: cancelled, nothing to undo.
    let out =
        stdout(&cuentas(&demo, &["cancel", "GU-2026-000014", "--reason", "duplicada con GU-2026-000031"]));
    assert!(!out.contains("re-enables nothing"), "{out}");
    assert!(
        !cuentas(&demo, &["cancel", "GU-2026-000001", "--reason", "x"]).status.success(),
        "closed stays closed"
    );

    let out = stdout(&cuentas(&demo, &["run", "--once"]));
    assert!(out.contains("GU-2026-000007") && out.contains("Closed"), "{out}");
    let show = stdout(&cuentas(&demo, &["show", "GU-2026-000007"]));
    assert!(show.contains("Manual → Notifying") && show.contains("Notifying → Closed"), "{show}");
    assert!(show.contains("administrador"), "the admin is in the history: {show}");
    let mails = demo.mails();
    let outcome = mails
        .iter()
        .find(|m| m.message_id.starts_with("<GU-2026-000007.") && m.message_id.contains("resultado"))
        .unwrap();
    assert_eq!(outcome.to, "sofia.herrera@upme.gov.co");
    assert!(outcome.body.contains(note), "{}", outcome.body);
    let cancelled = stdout(&cuentas(&demo, &["requests", "--state", "cancelled"]));
    assert!(cancelled.contains("GU-2026-000014") && cancelled.contains("duplicada"), "{cancelled}");
}

#[test]
fn a_deletion_waits_for_every_confirmation_and_cancelling_it_says_the_account_stays_disabled() {
    let demo = Demo::new();
    // The CLI's commands, on requests the demo's service desk form would act on first.
    demo.without_desk_responses();
    stdout(&cuentas(&demo, &["run", "--once"]));
    // Row 14: disabled and retired at once; the checklist is what `show` lists.
    let id = "GU-2026-000013";
    let show = stdout(&cuentas(&demo, &["show", id]));
    assert!(show.contains("AwaitingConfirmation") && show.contains("to confirm before deletion"), "{show}");
    let steps =
        ["correo", "calendario", "contactos", "nube", "equipo-respaldo", "equipo-dominio", "equipo-borrado"];
    for step in steps {
        assert!(show.contains(&format!("cuentas confirm {id} {step} --by NAME")), "{step}: {show}");
    }
    // What is not a step, not this request's state, or who is missing, is refused.
    let refused = |args: &[&str]| String::from_utf8_lossy(&cuentas(&demo, args).stderr).into_owned();
    assert!(refused(&["confirm", id, "impresora", "--by", "Ana"]).contains("not a step of the checklist"));
    assert!(
        refused(&["confirm", "GU-2026-000001", "correo", "--by", "Ana"]).contains("not AwaitingConfirmation")
    );
    assert!(refused(&["confirm", id, "correo", "--by", " "]).contains("--by"));
    for step in &steps[..6] {
        let out =
            stdout(&cuentas(&demo, &["confirm", id, step, "--by", "Ana Ruiz", "--note", "NAS/respaldos"]));
        assert!(out.contains("still to confirm"), "{out}");
    }
    assert!(refused(&["confirm", id, "correo", "--by", "Ana"]).contains("confirmed already"));
    // One step missing: not deleted, however often the daemon runs.
    stdout(&cuentas(&demo, &["run", "--once"]));
    let listed = stdout(&cuentas(&demo, &["requests", "--state", "AwaitingConfirmation"]));
    assert!(listed.contains(id) && listed.contains("to confirm: equipo-borrado"), "{listed}");
    let show = stdout(&cuentas(&demo, &["show", id]));
    assert!(
        show.contains(
            "confirmado «nube» (copia de seguridad del almacenamiento en la nube) por Ana Ruiz: NAS/respaldos"
        ),
        "{show}"
    );
    assert!(!show.contains("delete felipe.ramirez"), "{show}");
    let out = stdout(&cuentas(&demo, &["confirm", id, "equipo-borrado", "--by", "Ana Ruiz"]));
    assert!(out.contains("every step confirmed"), "{out}");
    // Cancelled before its days passed: the account stays disabled, and the command says so.
    let out = stdout(&cuentas(&demo, &["cancel", id, "--reason", "la persona vuelve"]));
    assert!(out.contains("re-enables nothing") && out.contains("felipe.ramirez"), "{out}");
}

#[test]
fn retry_tries_a_failed_disable_again_within_the_hourly_limit() {
    use cuentas::request::{Actor, State};
    use cuentas::store::{Changes, Store};
    let demo = Demo::new();
    stdout(&cuentas(&demo, &["run", "--once"]));
    // Hernán's scheduled disable failed when its date came (as a directory refusal would).
    let id = {
        let store = Store::open(&demo.path("var/estado")).unwrap();
        let mut r = store.requests().map(|r| r.unwrap()).find(|r| r.row == 12).unwrap();
        let State::Scheduled { plan, .. } = r.state.clone() else { panic!("{:?}", r.state) };
        let at = "2026-12-15T12:31:00Z".parse().unwrap();
        let executing = State::Executing { plan: plan.clone(), attempts: 0, retry_at: None, released: false };
        r.transition(executing, Actor::Daemon, "llegó la fecha programada", at).unwrap();
        r.transition(
            State::Failed { error: "x".into(), attempts: 1, plan: Some(plan) },
            Actor::Daemon,
            "x",
            at,
        )
        .unwrap();
        let mut changes = Changes::new();
        changes.put_request(&r);
        store.commit(changes).unwrap();
        r.id
    };
    stdout(&cuentas(&demo, &["retry", &id.to_string()]));
    let store = Store::open(&demo.path("var/estado")).unwrap();
    let r = store.request(id).unwrap().unwrap();
    // Executing again, but not released: the hourly limit of disables still applies to it.
    assert!(matches!(r.state, State::Executing { released: false, attempts: 0, .. }), "{:?}", r.state);
}

/// Ley 1581 de 2012: the log, even at debug level, holds request ids and account names, never a
/// document number, a personal address or a password.
#[test]
fn the_log_holds_no_personal_data_even_at_debug_level() {
    let demo = Demo::new();
    let out = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["run", "--once", "--config"])
        .arg(demo.path("cuentas.toml"))
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("GU-2026-000001"), "the log is there: {log}");
    let mut personal: Vec<String> = Vec::new();
    let responses = demo.responses();
    let mut reader = csv::Reader::from_reader(responses.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (document, address) = (column("Número de documento"), column("Correo electrónico personal"));
    for record in reader.records() {
        let record = record.unwrap();
        let raw = record.get(document).unwrap_or_default().trim().to_string();
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        personal.extend([raw, digits].into_iter().filter(|v| v.len() >= 5));
        personal.extend(record.get(address).map(|a| a.trim().to_lowercase()).filter(|a| !a.is_empty()));
    }
    for mail in demo.mails() {
        personal.extend(
            mail.body.lines().find_map(|l| l.trim().strip_prefix("Contraseña temporal: ")).map(String::from),
        );
    }
    assert!(personal.len() > 40, "{personal:?}");
    let found: Vec<&String> = personal.iter().filter(|p| log.contains(p.as_str())).collect();
    assert!(found.is_empty(), "personal data in the log: {found:?}");
}

/// A store of requests whose figures were worked out by hand (business hours: Monday to
/// Friday 07:30–17:00, Bogotá), then `cuentas report` in its three formats.
#[test]
fn report_prints_the_figures_computed_by_hand_in_three_formats() {
    use cuentas::request::{Actor, Kind, Request, RequestId, State, Submission};
    let demo = Demo::new();
    let at = |local: &str| {
        let dt: jiff::civil::DateTime = local.parse().unwrap();
        dt.to_zoned(jiff::tz::TimeZone::get("America/Bogota").unwrap()).unwrap().timestamp()
    };
    let store = cuentas::store::Store::open(&demo.path("var/estado")).unwrap();
    let mut changes = cuentas::store::Changes::new();
    let executing =
        || State::Executing { plan: Default::default(), attempts: 0, retry_at: None, released: false };
    let needs_info = |when: &str| State::NeedsInfo { reason: "x".into(), since: at(when) };
    let closed = || State::Closed { outcome: "x".into() };
    // Each request: its kind, the form's timestamp, and its moves (state, when).
    type Moves<'a> = Vec<(State, &'a str)>;
    let cases: Vec<(Kind, &str, Moves)> = vec![
        // 2 h, within.
        (
            Kind::Create,
            "2026-11-23T08:00:00",
            vec![
                (executing(), "2026-11-23T08:00:00"),
                (State::Notifying, "2026-11-23T10:00:00"),
                (closed(), "2026-11-23T10:00:00"),
            ],
        ),
        // 30 min, then paused from Monday 09:30 to Tuesday 09:00, then 3 h: 3.5 h, within.
        (
            Kind::Create,
            "2026-11-23T09:00:00",
            vec![
                (needs_info("2026-11-23T09:30:00"), "2026-11-23T09:30:00"),
                (State::Received, "2026-11-24T09:00:00"),
                (executing(), "2026-11-24T09:00:00"),
                (State::Notifying, "2026-11-24T12:00:00"),
                (closed(), "2026-11-24T12:00:00"),
            ],
        ),
        // By hand from Monday 10:00 to Wednesday 11:00: 7 + 9.5 + 3.5 = 20 h, a breach.
        (
            Kind::Create,
            "2026-11-23T10:00:00",
            vec![
                (State::Manual { reason: "x".into() }, "2026-11-23T10:00:00"),
                (State::Notifying, "2026-11-25T11:00:00"),
                (closed(), "2026-11-25T11:00:00"),
            ],
        ),
        // Refused at once: 0 h, within.
        (
            Kind::PasswordReset,
            "2026-11-24T08:00:00",
            vec![(State::Rejected { reason: "x".into() }, "2026-11-24T08:00:00")],
        ),
        // Open, 8 h before it went back to the requester: 80 %, at risk.
        (
            Kind::Create,
            "2026-11-27T08:00:00",
            vec![(needs_info("2026-11-27T16:00:00"), "2026-11-27T16:00:00")],
        ),
        // Cancelled: counted by kind, not answered.
        (
            Kind::Create,
            "2026-11-25T08:00:00",
            vec![(State::Cancelled { reason: "x".into() }, "2026-11-25T09:00:00")],
        ),
        // After the period.
        (Kind::Create, "2026-11-30T08:00:00", vec![]),
        // A disable by hand in the same 20 h: carried out, its time not measured (the
        // procedure's service level is for creating and notifying accounts).
        (
            Kind::Disable,
            "2026-11-23T10:00:00",
            vec![
                (State::Manual { reason: "x".into() }, "2026-11-23T10:00:00"),
                (State::Notifying, "2026-11-25T11:00:00"),
                (closed(), "2026-11-25T11:00:00"),
            ],
        ),
    ];
    for (i, (kind, submitted, steps)) in cases.into_iter().enumerate() {
        let s = Submission {
            kind: Some(kind),
            submitted_at: Some(submitted.parse().unwrap()),
            ..Submission::default()
        };
        let id = RequestId { year: 2026, seq: i as u32 + 1 };
        let mut r = Request::new(id, i as u32 + 2, "h".into(), s, at(submitted), at(submitted));
        for (state, when) in steps {
            r.transition(state, Actor::Daemon, "x", at(when)).unwrap();
        }
        changes.put_request(&r);
    }
    store.commit(changes).unwrap();
    drop(store);

    let report = |format: &str| {
        stdout(&cuentas(&demo, &["report", "--from", "2026-11-23", "--to", "2026-11-29", "--format", format]))
    };
    let table = report("table");
    for expected in [
        "Requests submitted from 2026-11-23 to 2026-11-29: 7",
        "Cambio de clave              Rejected 1",
        "Creación de cuenta           Cancelled 1, Closed 3, NeedsInfo 1",
        "Inactivación de cuenta       Closed 1",
        "Carried out: 4; refused: 1; routed to another procedure: 0; closed otherwise (cancelled, repeated, \
         replaced, without effect): 1; open: 1",
        "Service level measured for: Creación de cuenta, Cesión de contrato",
        "Carried out: 3; within the service level: 2 (66.7 %)",
        "Business hours to answer: median 3.5, 95th percentile 20",
        "Open requests at risk (≥ 80 % of their service level): 1",
        "GU-2026-000005  Creación de cuenta           NeedsInfo            80 %",
        "Breaches: 1",
        "GU-2026-000003  Creación de cuenta           Closed               20 h of 10 h; Received 0 h, Manual 20 h, Notifying 0 h",
    ] {
        assert!(table.contains(expected), "«{expected}» not in:\n{table}");
    }
    let csv = report("csv");
    for expected in [
        "requests,,,7",
        "by_kind,Creación de cuenta,Closed,3",
        "by_kind,Cambio de clave,Rejected,1",
        "answered,,,4",
        "refused,,,1",
        "routed,,,0",
        "other_closed,,,1",
        "open,,,1",
        "measured_kind,Creación de cuenta,,",
        "measured,,,3",
        "met_percent,,,66.7",
        "median_hours,,,3.5",
        "p95_hours,,,20",
        "at_risk,GU-2026-000005,NeedsInfo,80",
        "breach,GU-2026-000003,Closed,20",
        "breach_hours_in,GU-2026-000003,Manual,20",
    ] {
        assert!(csv.lines().any(|l| l == expected), "«{expected}» not in:\n{csv}");
    }
    let json: serde_json::Value = serde_json::from_str(&report("json")).unwrap();
    assert_eq!(json["requests"], 7);
    assert_eq!(json["answered"], 4);
    assert_eq!(json["refused"], 1);
    assert_eq!(json["other_closed"], 1);
    assert_eq!(json["measured"], 3);
    assert_eq!(json["met"], 2);
    assert_eq!(json["met_percent"], 66.7);
    assert_eq!(json["median_hours"], 3.5);
    assert_eq!(json["p95_hours"], 20.0);
    assert_eq!(json["by_kind"]["Creación de cuenta"]["NeedsInfo"], 1);
    assert_eq!(json["at_risk"][0]["percent"], 80);
    assert_eq!(json["breaches"][0]["id"], "GU-2026-000003");
    assert_eq!(json["breaches"][0]["hours_in"][1], serde_json::json!(["Manual", 20.0]));
    // A period the wrong way round is refused.
    assert!(!cuentas(&demo, &["report", "--from", "2026-11-29", "--to", "2026-11-23"]).status.success());
}

/// The demo with a held disable (`max_disables_per_hour = 0`) and a failed request, its
/// control socket beside the config, `nogroup` allowed: everything another user can read.
fn demo_for_the_control_socket() -> Demo {
    use cuentas::request::{Actor, State};
    use std::os::unix::fs::PermissionsExt;
    let demo = Demo::new();
    demo.without_desk_responses();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let config = config
        .replace(
            "poll_interval_secs = 60",
            "poll_interval_secs = 3600\ncontrol_socket = \"control.sock\"\ncontrol_group = \"nogroup\"",
        )
        .replace("[directory]\n", "[directory]\nmax_disables_per_hour = 0\n");
    std::fs::write(demo.path("cuentas.toml"), config).unwrap();
    stdout(&cuentas(&demo, &["run", "--once"]));
    // Hernán's scheduled disable failed when its date came (as a directory refusal would).
    let store = cuentas::store::Store::open(&demo.path("var/estado")).unwrap();
    let mut r = store.requests().map(|r| r.unwrap()).find(|r| r.row == 12).unwrap();
    let State::Scheduled { plan, .. } = r.state.clone() else { panic!("{:?}", r.state) };
    let at = "2026-12-15T12:31:00Z".parse().unwrap();
    let executing = State::Executing { plan: plan.clone(), attempts: 0, retry_at: None, released: false };
    r.transition(executing, Actor::Daemon, "llegó la fecha programada", at).unwrap();
    r.transition(State::Failed { error: "x".into(), attempts: 1, plan: Some(plan) }, Actor::Daemon, "x", at)
        .unwrap();
    let mut changes = cuentas::store::Changes::new();
    changes.put_request(&r);
    store.commit(changes).unwrap();
    drop(store);
    let open = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    open(demo.path("").as_path(), 0o755);
    for name in ["cuentas.toml", "autorizadores.csv", "respuestas.csv", "directorio.json"] {
        open(&demo.path(name), 0o644);
    }
    demo
}

/// Output with its local times (`2026-11-30 10:04`) blanked: the twin stores of the control
/// socket's test were made a moment apart, maybe a minute.
fn untimed(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut rest: &str = &text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, from) = rest.split_at(i);
        out.push_str(before);
        let b = from.as_bytes();
        let stamp = b.len() >= 16
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b' '
            && b[13] == b':'
            && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15].iter().all(|&k| b[k].is_ascii_digit());
        let take = if stamp { 16 } else { 1 };
        out.push_str(if stamp { "YYYY-MM-DD hh:mm" } else { &from[..1] });
        rest = &from[take..];
    }
    out.push_str(rest);
    out
}

/// The administrator's daily commands, as `user` and group (`None`: as this test) with `USER` set to
/// someone else (only the peer's credentials count).
fn as_user(demo: &Demo, user: Option<(&str, &str)>, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_cuentas");
    let mut command = match user {
        Some((user, group)) => {
            let mut c = Command::new("setpriv");
            c.args([&format!("--reuid={user}"), &format!("--regid={group}"), "--init-groups", bin]);
            c
        }
        None => Command::new(bin),
    };
    command
        .args(args)
        .arg("--config")
        .arg(demo.path("cuentas.toml"))
        .env("USER", "impostor")
        .output()
        .unwrap()
}

#[test]
fn while_the_daemon_runs_its_commands_go_through_the_control_socket() {
    assert_eq!(
        untimed(b"GU-2026-000001 at 2026-11-30 10:04, 9 h"),
        "GU-2026-000001 at YYYY-MM-DD hh:mm, 9 h"
    );
    let demo = demo_for_the_control_socket();
    let twin = demo_for_the_control_socket();
    let log = demo.path("daemon.log");
    let mut daemon = daemon_logging_to(&demo, &log);
    // Up to a minute: the machine may be busy with other tests.
    for _ in 0..1200 {
        if std::fs::read_to_string(&log).unwrap_or_default().contains("started") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(demo.path("control.sock").exists(), "{}", std::fs::read_to_string(&log).unwrap_or_default());
    // The same commands through the daemon and on the twin's store, with no daemon.
    let commands: [&[&str]; 7] = [
        &["requests", "--state", "Closed"],
        &["show", "GU-2026-000001"],
        &["done", "GU-2026-000007", "--note", "Se habilitó el cambio en su puesto."],
        &["cancel", "GU-2026-000015", "--reason", "ya no aplica"],
        &["release", "GU-2026-000010"],
        &["retry", "GU-2026-000011"],
        &["done", "GU-2026-000001", "--note", "x"],
    ];
    for args in commands {
        let through = as_user(&demo, None, args);
        let direct = as_user(&twin, None, args);
        assert_eq!(through.status.code(), direct.status.code(), "{args:?}");
        assert_eq!(untimed(&through.stdout), untimed(&direct.stdout), "{args:?}");
        assert_eq!(untimed(&through.stderr), untimed(&direct.stderr), "{args:?}");
    }
    let daemon_log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(daemon_log.matches("control command").count(), commands.len(), "{daemon_log}");
    // Through the socket the history names the peer's Unix user, not what its USER says.
    let show = String::from_utf8(as_user(&demo, None, &["show", "GU-2026-000007"]).stdout).unwrap();
    let by = show.lines().find(|l| l.contains("Manual → Notifying")).unwrap();
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    assert!(by.contains(&format!("administrador {}", me.trim())), "{by}");
    let twin_show = String::from_utf8(as_user(&twin, None, &["show", "GU-2026-000007"]).stdout).unwrap();
    assert!(twin_show.contains("administrador impostor"), "{twin_show}");
    // Another user: refused with the reason, unless in the control group.
    if me.trim() == "root" {
        let refused = as_user(&demo, Some(("daemon", "daemon")), &["requests"]);
        assert_eq!(refused.status.code(), Some(2));
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("refused: daemon (uid 1) may not use cuentas's control socket"), "{err}");
        assert!(err.contains("members of «nogroup»"), "{err}");
        let member = as_user(&demo, Some(("nobody", "nogroup")), &["requests", "--state", "Held"]);
        assert_eq!(member.status.code(), Some(0), "{}", String::from_utf8_lossy(&member.stderr));
    }
    // An oversize request from an allowed user: refused, not read; the daemon answers on.
    let reply = flood(&demo.path("control.sock"), None, 1);
    assert!(reply.contains("longer than 65536 bytes"), "{reply}");
    // One who may not use the socket is refused before anything is read: writing 300 MiB
    // leaves the daemon's memory as it was.
    if me.trim() == "root" {
        let before = resident_kib(daemon.0.id());
        let reply = flood(&demo.path("control.sock"), Some("daemon"), 300);
        assert!(reply.contains("may not use cuentas's control socket"), "{reply}");
        let after = resident_kib(daemon.0.id());
        assert!(after < before + 5 * 1024, "resident {before} KiB → {after} KiB");
    }
    assert_eq!(as_user(&demo, None, &["requests", "--state", "Held"]).status.code(), Some(0));
    Command::new("kill").args(["-TERM", &daemon.0.id().to_string()]).status().unwrap();
    assert!(daemon.0.wait().unwrap().success());
    assert!(!demo.path("control.sock").exists(), "the socket goes with the daemon");
    // Stopped: the same store answers directly.
    let after = as_user(&demo, None, &["requests", "--state", "Cancelled"]);
    assert!(String::from_utf8_lossy(&after.stdout).contains("GU-2026-000015"));
}

#[test]
fn root_does_not_open_a_store_that_belongs_to_the_daemon_s_user() {
    let demo = Demo::new();
    stdout(&cuentas(&demo, &["run", "--once"]));
    // The store as the package leaves it: its directory and files belong to the daemon's user.
    let store = demo.path("var/estado");
    let chown = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&store).status().unwrap();
    assert!(chown.success());
    // Root with the daemon stopped: refused, and nothing of root's left in the store for the
    // daemon to trip over.
    let out = cuentas(&demo, &["requests"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to nobody") && err.contains("runuser -u nobody -- cuentas"), "{err}");
    let owned_by_root = Command::new("find").arg(&store).args(["-user", "root"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&owned_by_root.stdout), "");
    // As the store's user, the same command works.
    let listed = stdout(&as_user(&demo, Some(("nobody", "nogroup")), &["requests"]));
    assert!(listed.contains("GU-2026-000032"), "{listed}");
}

/// Writes `mib` MiB without a newline to the control socket (as `user`, through runuser), then
/// reads what the daemon answered.
fn flood(socket: &std::path::Path, user: Option<&str>, mib: usize) -> String {
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nchunk=b'x'*1048576\n\
         try:\n  [s.sendall(chunk) for _ in range({mib})]\nexcept OSError:\n  pass\n\
         sys.stdout.write(s.recv(65536).decode())"
    );
    let mut command = match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--", "python3", "-c", &script]);
            c
        }
        None => {
            let mut c = Command::new("python3");
            c.args(["-c", &script]);
            c
        }
    };
    let out = command.arg(socket).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A process's resident memory, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 25: an entity adopting cuentas links a form with a year of responses. Without
/// `[source] start_at` the daemon refuses to start and `check` says why, with the count and the
/// dates; with a start of today nothing old is registered or answered, and a new response is.
#[test]
fn a_form_with_a_year_of_responses_needs_a_start_and_nothing_before_it_is_answered() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let header = demo.responses().lines().next().unwrap().to_string();
    let old: String = common::generated_rows(500)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            // Last year's responses, one every few hours from 13 January 2025 on.
            let at = jiff::civil::date(2025, 1, 13).at(8, 0, 0, 0) + jiff::Span::new().hours(i as i64 * 9);
            let (_, rest) = line.split_once(',').unwrap();
            format!("{},{rest}\n", at.strftime("%d/%m/%Y %H:%M:%S"))
        })
        .collect();
    demo.write_responses(&format!("{header}\n{old}"));
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let without = config.replace("start_at = \"2026-11-23 00:00\"\n", "");
    assert_ne!(config, without);
    std::fs::write(demo.path("cuentas.toml"), &without).unwrap();

    let checked = cuentas(&demo, &["check", "--offline"]);
    let said = String::from_utf8_lossy(&checked.stderr).into_owned();
    assert_eq!(checked.status.code(), Some(1), "{said}");
    assert!(
        said.contains("already holds 500 responses (from 2025-01-13 08:00 to 2025-07-19 11:00)"),
        "{said}"
    );
    assert!(said.contains("start_at"), "{said}");
    let run = cuentas(&demo, &["run", "--once"]);
    let refused = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(!run.status.success());
    assert!(refused.contains("already holds 500 responses (from 2025-01-13 08:00"), "{refused}");
    assert!(demo.mails().is_empty(), "nobody written to");

    // Started today: nothing of the 500 is registered or answered; a new response is.
    std::fs::write(
        demo.path("cuentas.toml"),
        without.replace(
            "path = \"respuestas.csv\"\n",
            "path = \"respuestas.csv\"\nstart_at = \"2026-11-27 00:00\"\n",
        ),
    )
    .unwrap();
    let checked = stdout(&cuentas(&demo, &["check", "--offline"]));
    assert!(checked.contains("responses before 2026-11-27 00:00 are passed over"), "{checked}");
    stdout(&cuentas(&demo, &["run", "--once"]));
    assert!(!stdout(&cuentas(&demo, &["requests"])).contains("GU-"), "nothing old registered");
    assert!(demo.mails().is_empty(), "nothing old answered");
    let new = demo.responses().lines().nth(1).unwrap().replace("13/01/2025 08:00:00", "30/11/2026 09:12:00");
    demo.write_responses(&format!("{}{new}\n", demo.responses()));
    stdout(&cuentas(&demo, &["run", "--once"]));
    let listed = stdout(&cuentas(&demo, &["requests"]));
    assert_eq!(listed.lines().filter(|l| l.contains("GU-")).count(), 1, "{listed}");
    assert!(listed.contains("row 502"), "{listed}");
    assert!(!demo.mails().is_empty(), "the new one is answered");
}

/// Issue 25: `check` names what is valid but would surprise on the first day, each on a
/// `WARN` line that does not fail the check: an empty matrix, a public CA bundle for LDAPS, no
/// personal address on record for resets, only AD's built-in accounts protected, responses
/// that start_at passes over.
#[test]
fn check_warns_about_what_would_surprise_on_the_first_day() {
    let demo = Demo::new();
    let bundle: String = (0..40)
        .map(|i| format!("# CA {i}\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
        .collect();
    std::fs::write(demo.path("ca-publicas.pem"), bundle).unwrap();
    std::fs::write(demo.path("clave-enlace"), "x").unwrap();
    std::fs::write(
        demo.path("autorizadores.csv"),
        "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta\n",
    )
    .unwrap();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let live: String = config
        .lines()
        .filter(|l| !l.starts_with("demo_clock") && !l.starts_with("snapshot_path") && !l.starts_with("personal_email_attribute"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "mode = \"dry-run\"\n",
            "mode = \"ldap\"\nurl = \"ldaps://dc1.upme.gov.co\"\nca_file = \"ca-publicas.pem\"\nbind_dn = \"CN=svc-cuentas,OU=Servicios,DC=upme,DC=gov,DC=co\"\nbind_password = \"clave-enlace\"\nbase_dn = \"DC=upme,DC=gov,DC=co\"\n",
        )
        .replace("protected_accounts = [\"administrator\", \"administrador\", \"krbtgt\", \"svc-backup\"]", "protected_accounts = [\"administrator\", \"krbtgt\"]")
        .replace("start_at = \"2026-11-23 00:00\"", "start_at = \"2026-11-25 12:00\"")
        .replace("[mail]\n", "[mail]\nallow_credentials_in_spool = true # the test's throwaway spool\n");
    std::fs::write(demo.path("cuentas.toml"), &live).unwrap();
    let out = cuentas(&demo, &["check", "--offline"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "warnings do not fail the check: {said}");
    let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("WARN")).collect();
    for expected in [
        "the authorizer matrix has no authorizer",
        "holds 40 certificates, a bundle of public CAs",
        "personal_email_attribute is not set",
        "protected_accounts lists only AD's built-in accounts",
        "come before start_at and will never be registered or answered",
    ] {
        assert!(warnings.iter().any(|w| w.contains(expected)), "{expected}: {said}");
    }
    assert_eq!(warnings.len(), 5, "{said}");
    // The demo as it is has none of them.
    let demo = Demo::new();
    let out = cuentas(&demo, &["check", "--offline"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("WARN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 25: the shadow week is said by `check`, and so is a question the form asks twice
/// (deleted and added again: the old answers in one column, the new ones in another), which
/// the daemon reads from the column each row answered.
#[test]
fn check_says_the_shadow_week_and_a_question_asked_twice() {
    let demo = Demo::new();
    std::fs::write(demo.path("ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
        .unwrap();
    std::fs::write(demo.path("clave-enlace"), "x").unwrap();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let shadow: String = config
        .lines()
        .filter(|l| !l.starts_with("demo_clock") && !l.starts_with("snapshot_path"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "mode = \"dry-run\"\n",
            "mode = \"shadow\"\nurl = \"ldaps://dc1.upme.gov.co\"\nca_file = \"ca.pem\"\nbind_dn = \"CN=svc-cuentas,OU=Servicios,DC=upme,DC=gov,DC=co\"\nbind_password = \"clave-enlace\"\nbase_dn = \"DC=upme,DC=gov,DC=co\"\n",
        );
    std::fs::write(demo.path("cuentas.toml"), &shadow).unwrap();
    let responses: String = demo
        .responses()
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { format!("{l},Dependencia\n") } else { format!("{l},\n") })
        .collect();
    demo.write_responses(&responses);
    let out = cuentas(&demo, &["check", "--offline"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("WARN")).collect();
    assert!(warnings.iter().any(|w| w.contains("mode = \"shadow\": AD is read and never written")), "{said}");
    assert!(warnings.iter().any(|w| w.contains("«Dependencia» heads columns J, V")), "{said}");
    assert_eq!(warnings.len(), 2, "{said}");
}

/// Issue 22: `check` lists every answer of the form that maps to nothing, once, counted.
#[test]
fn check_lists_the_answers_that_map_to_nothing() {
    let demo = Demo::new();
    let responses = demo.responses();
    let mut lines: Vec<String> = responses.lines().map(String::from).collect();
    lines[1] = lines[1].replace("Creación de cuenta", "Vinculación de funcionario");
    lines[2] = lines[2].replace("Creación de cuenta", "VINCULACION de funcionario");
    lines[3] = lines[3].replace("Contratista", "Contratista de prestación de servicios");
    demo.write_responses(&(lines.join("\n") + "\n"));
    let out = cuentas(&demo, &["check", "--offline"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{said}");
    let warnings: Vec<&str> = said.lines().filter(|l| l.starts_with("WARN")).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("«Vinculación de funcionario» to «Tipo de solicitud» (2 responses)")
                && w.contains("[form.kinds]")),
        "{said}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w
                .contains("«Contratista de prestación de servicios» to «Tipo de vinculación» (1 responses)")),
        "{said}"
    );
    assert_eq!(warnings.len(), 2, "{said}");
}

/// Issue 25: `deploy/formularios.gs` builds the request form with exactly the questions and
/// options cuentas reads by default, and the install guides show the same questions: the
/// script, the reader and the guides cannot drift apart.
#[test]
fn the_form_script_asks_what_cuentas_reads_and_the_guides_show_it() {
    use cuentas::intake::{Field, parse_holder, parse_kind};
    use cuentas::request::{HolderType, Kind};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("deploy/formularios.gs")).unwrap();
    let block = script.split("// <preguntas>").nth(1).unwrap().split("// </preguntas>").next().unwrap();
    let json = block.trim().trim_start_matches("const PREGUNTAS = ").trim_end_matches(';');
    let questions: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
    let questions: Vec<&serde_json::Value> = questions.iter().filter(|q| q.get("titulo").is_some()).collect();
    let title = |q: &serde_json::Value| q["titulo"].as_str().unwrap().to_string();
    let options = |t: &str| -> Vec<String> {
        let q = questions.iter().find(|q| title(q) == t).unwrap();
        q["opciones"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect()
    };
    // Every column cuentas reads but the two Forms writes itself (timestamp, verified address).
    let mut wanted: Vec<String> = Field::ALL
        .iter()
        .filter(|f| !matches!(f, Field::SubmittedAt | Field::Requester))
        .map(|f| f.default_header().to_string())
        .collect();
    let mut asked: Vec<String> = questions.iter().map(|q| title(q)).collect();
    wanted.sort();
    asked.sort();
    assert_eq!(asked, wanted);
    // Every option is one cuentas understands, and every kind and holder type is offered.
    let kinds: Vec<Kind> = options("Tipo de solicitud").iter().map(|o| parse_kind(o).unwrap()).collect();
    assert_eq!(kinds, Kind::ALL.to_vec());
    let holders: Vec<HolderType> =
        options("Tipo de vinculación").iter().map(|o| parse_holder(o).unwrap()).collect();
    assert_eq!(holders, [HolderType::Employee, HolderType::Contractor, HolderType::Institutional]);
    assert_eq!(options("¿El usuario se encuentra en las instalaciones de la entidad?"), ["Sí", "No"]);
    assert_eq!(options("Tipo de documento")[0], "Cédula de ciudadanía");
    // The guides' tables name every question, and the options of the closed ones.
    for guide in ["deploy/INSTALL.es.md", "deploy/INSTALL.en.md"] {
        let text = std::fs::read_to_string(root.join(guide)).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("| «")).collect();
        for q in &questions {
            let row = rows.iter().find(|r| r.starts_with(&format!("| «{}»", title(q))));
            let row = row.unwrap_or_else(|| panic!("{guide}: no row for «{}»", title(q)));
            for o in q["opciones"].as_array().into_iter().flatten() {
                assert!(row.contains(o.as_str().unwrap()), "{guide}: «{}» lacks {o}", title(q));
            }
        }
    }
}

/// Issue 22: the service desk's form in the script asks exactly what cuentas reads from it:
/// its questions, the actions' and the steps' options as cuentas parses them.
#[test]
fn the_desk_form_script_asks_what_cuentas_reads() {
    use cuentas::desk::{DeskAction, QUESTIONS, parse_step, step_label};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("deploy/formularios.gs")).unwrap();
    let block =
        script.split("// <preguntas-mesa>").nth(1).unwrap().split("// </preguntas-mesa>").next().unwrap();
    let json = block.trim().trim_start_matches("const PREGUNTAS_MESA = ").trim_end_matches(';');
    let questions: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
    let titles: Vec<&str> = questions.iter().map(|q| q["titulo"].as_str().unwrap()).collect();
    assert_eq!(titles, QUESTIONS.map(|(t, _)| t));
    let options = |t: &str| -> Vec<String> {
        let q = questions.iter().find(|q| q["titulo"] == t).unwrap();
        q["opciones"].as_array().unwrap().iter().map(|o| o.as_str().unwrap().to_string()).collect()
    };
    let actions: Vec<Option<DeskAction>> = options("Acción").iter().map(|o| DeskAction::parse(o)).collect();
    assert_eq!(actions, DeskAction::ALL.map(Some));
    let steps = options("Paso");
    assert_eq!(steps.len(), cuentas::request::DELETION_CHECKLIST.len());
    for ((key, _), option) in cuentas::request::DELETION_CHECKLIST.iter().zip(&steps) {
        assert_eq!(parse_step(option), Some(*key));
        assert_eq!(step_label(key).as_deref(), Some(option.as_str()));
    }
    // The header Google writes for this form is one cuentas reads.
    let mut header = vec!["Marca temporal".to_string(), "Dirección de correo electrónico".to_string()];
    header.extend(titles.iter().map(|t| t.to_string()));
    assert!(cuentas::desk::DeskColumns::from_header(&header).is_ok());
}

/// Issue 22: `check` reads the desk form's questions, says who may do each action, and refuses
/// a pre-filled link without its placeholders.
#[test]
fn check_reads_the_desk_form_and_its_link() {
    let demo = Demo::new();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    // The link made without the step's placeholder: refused, naming it.
    std::fs::write(demo.path("cuentas.toml"), config.replace("&entry.1311000003=%7Bpaso%7D", "")).unwrap();
    let out = cuentas(&demo, &["check", "--offline"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("[desk] prefill_url has no {paso}"), "{err}");
    // Without a link, or without anyone who may release: warned, not refused.
    let without_link: String =
        config.lines().filter(|l| !l.starts_with("prefill_url")).map(|l| format!("{l}\n")).collect();
    std::fs::write(demo.path("cuentas.toml"), &without_link).unwrap();
    let matrix = std::fs::read_to_string(demo.path("autorizadores.csv")).unwrap();
    std::fs::write(demo.path("autorizadores.csv"), matrix.replace(",administrador,", ",coordinador,"))
        .unwrap();
    let out = cuentas(&demo, &["check", "--offline"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("WARN  [desk] prefill_url is not set"), "{err}");
    assert!(err.contains("nobody in the matrix may «Liberar inactivaciones retenidas» today"), "{err}");
    assert!(!err.contains("«Confirmar paso de la eliminación» today"), "{err}");
    // A desk export whose header lacks a question.
    std::fs::write(demo.path("mesa.csv"), "Marca temporal,Dirección de correo electrónico,Solicitud\n")
        .unwrap();
    let err = String::from_utf8_lossy(&cuentas(&demo, &["check", "--offline"]).stderr).into_owned();
    assert!(err.contains("the header lacks «Acción»"), "{err}");
    // No desk form at all: the mails name actions nobody can take from a link.
    let no_desk = without_link.replace("[desk]\npath = \"mesa.csv\"\n", "");
    assert_ne!(no_desk, without_link);
    std::fs::write(demo.path("cuentas.toml"), no_desk).unwrap();
    let err = String::from_utf8_lossy(&cuentas(&demo, &["check", "--offline"]).stderr).into_owned();
    assert!(err.contains("WARN  [desk] is not set"), "{err}");
}

/// Issue 23: the demo week's evidence for an audit verifies, against the hash printed when it was
/// made, and fails after any line is changed; it holds no personal address or document.
#[test]
fn the_evidence_of_the_demo_s_week_verifies_and_breaks_at_any_change() {
    let demo = Demo::new();
    stdout(&cuentas(&demo, &["run", "--once"]));
    let made = cuentas(&demo, &["report", "--from", "2026-11-23", "--to", "2026-11-29", "--evidence"]);
    let text = stdout(&made);
    let said = String::from_utf8_lossy(&made.stderr).into_owned();
    let end = said.split("its chain ends in ").nth(1).unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(end.len(), 64, "{said}");
    let lines: Vec<&str> = text.lines().collect();
    // The header, the 32 requests, the drift reading's findings, the closing line.
    assert_eq!(lines.iter().filter(|l| l.contains("\"tipo\":\"solicitud\"")).count(), 32);
    assert!(
        lines[0].contains("\"tipo\":\"encabezado\"") && lines.last().unwrap().contains("\"tipo\":\"cierre\"")
    );
    let deletion = lines.iter().find(|l| l.contains("GU-2026-000013")).unwrap();
    assert!(
        deletion.contains("por Laura Gómez")
            || deletion.contains("formulario de la mesa: laura.gomez@upme.gov.co"),
        "{deletion}"
    );
    for personal in ["gmail.com", "hotmail.com", "1.013.456.789", "1013456789", "Juan Pablo"] {
        assert!(!text.contains(personal), "{personal} in the evidence");
    }
    let file = demo.path("evidencia.jsonl");
    let verify = |text: &str| {
        std::fs::write(&file, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(["verify-evidence", "--ends-in", &end])
            .arg(&file)
            .output()
            .unwrap()
    };
    let ok = verify(&text);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(
        String::from_utf8_lossy(&ok.stdout)
            .contains(&format!("{} lines, chained; it ends in {end}", lines.len()))
    );
    // Any line changed (a value, or a space where JSON allows one), removed, or the order swapped.
    for i in 0..lines.len() {
        let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        changed[i] = changed[i].replacen(",\"n\":", ", \"n\":", 1);
        assert_ne!(changed[i], lines[i]);
        let out = verify(&(changed.join("\n") + "\n"));
        assert!(!out.status.success(), "line {} changed and still verified", i + 1);
        let mut removed: Vec<&str> = lines.clone();
        removed.remove(i);
        assert!(!verify(&(removed.join("\n") + "\n")).status.success(), "line {} removed", i + 1);
    }
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    assert!(!verify(&(swapped.join("\n") + "\n")).status.success());
}
