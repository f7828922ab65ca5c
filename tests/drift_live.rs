//! Live test of the drift reading (issue 23) against the test DC: the register held against the
//! managed OUs, in an OU of its own so that what other tests create alongside does not count.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;

use common::ad::{Ad, letters, unique};
use common::case::{Case, admin_add_member, admin_replace, create_row, disabled, t, user};
use cuentas::request::StateName;

/// The managed OUs of one test alone, laid out as the usual ones: their root.
fn own_ous(ad: &Ad, u: &str) -> String {
    let root = format!("OU=Deriva{},{}", &u[..8], ad.users_ou());
    let mut admin = ad.admin();
    for ou in [
        root.clone(),
        format!("OU=Funcionarios,{root}"),
        format!("OU=Planeacion,OU=Funcionarios,{root}"),
        format!("OU=Energia,OU=Funcionarios,{root}"),
        format!("OU=Contratistas,{root}"),
        format!("OU=Genericas,{root}"),
        format!("OU=Retirados,{root}"),
    ] {
        let name = ou.split(',').next().unwrap().trim_start_matches("OU=").to_string();
        let attrs = vec![
            ("objectClass", HashSet::from(["organizationalUnit"])),
            ("ou", HashSet::from([name.as_str()])),
        ];
        admin.add(&ou, attrs).unwrap().success().unwrap();
    }
    root
}

/// A case for `rows` whose managed OUs are those under `root`; `extra` goes into `[directory]`.
fn case_in(ad: &Ad, rows: &[String], root: &str, extra: &str) -> Case {
    let case = Case::new(ad, rows, extra);
    let toml = case.dir.path().join("cuentas.toml");
    let config = std::fs::read_to_string(&toml).unwrap().replace(&ad.users_ou(), root);
    std::fs::write(&toml, config).unwrap();
    case.reopen()
}

/// After cuentas created four accounts, a department changed with an LDAP modify, an account
/// added by hand in a managed OU, a contractor left enabled past the end of its contract and a
/// group added by hand: the drift reading lists exactly these four, nothing about the fourth
/// account cuentas made, and the directory is not changed by reading it.
#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn drift_lists_exactly_what_was_changed_outside_cuentas() {
    let ad = Ad::from_env();
    let u = unique();
    let root = own_ous(&ad, &u);
    let mut admin = ad.admin();
    let surname = |k: &str| format!("Deriva{}{}", letters(&u), letters(k));
    let contract =
        [("contract_number", "C-9"), ("contract_start", "27/11/2026"), ("contract_end", "28/11/2026")];
    let rows = [
        create_row(&format!("{}01", &u[..6]), "Funcionario", "Ana", &surname("01"), "Energía", &[]),
        create_row(&format!("{}02", &u[..6]), "Funcionario", "Beto", &surname("02"), "Energía", &[]),
        create_row(&format!("{}03", &u[..6]), "Contratista", "Ciro", &surname("03"), "Energía", &contract),
        create_row(&format!("{}04", &u[..6]), "Funcionario", "Eva", &surname("04"), "Energía", &[]),
    ];
    // An entity that does not have cuentas end contracts (`disable_at_contract_end = false`):
    // the account stays enabled past its expiry, and the reading says so.
    let mut case = case_in(&ad, &rows, &root, "disable_at_contract_end = false");
    // Friday 27 November, 08:00: the four accounts made, and the first look at the OUs.
    case.engine.cycle(t(0)).unwrap();
    let sams: Vec<String> = (2..6)
        .map(|row| {
            let r = case.request(row);
            assert_eq!(r.state.name(), StateName::Closed, "row {row}: {}", r.state.reason());
            r.account.clone().unwrap()
        })
        .collect();
    let first = case.engine.store().drift().unwrap().expect("read at the first business cycle");
    assert_eq!(first.findings, vec![], "nothing but cuentas's own accounts yet");

    // By hand: a department, a group, an account; the contract of the third ended on Saturday
    // and nobody disabled its account.
    admin_replace(&ad, &user(&ad, &sams[0]).dn, "department", "Planeación");
    let group = format!("CN=GG-Planeacion,OU=Grupos,{}", ad.users_ou());
    admin_add_member(&ad, &group, &user(&ad, &sams[1]).dn);
    let by_hand = format!("mano{}", &u[..8]);
    let dn = format!("CN=Hecho A Mano {},OU=Funcionarios,{root}", letters(&u));
    let attrs = vec![
        ("objectClass", HashSet::from(["user"])),
        ("sAMAccountName", HashSet::from([by_hand.as_str()])),
        ("userAccountControl", HashSet::from(["546"])),
    ];
    admin.add(&dn, attrs).unwrap().success().unwrap();
    let fingerprint = |sam: &String| {
        let e = user(&ad, sam);
        format!("{} {:?}", e.dn, e.attrs.iter().collect::<std::collections::BTreeMap<_, _>>())
    };
    let before: Vec<String> = sams.iter().map(fingerprint).collect();

    // Monday 30 November, 08:00: the next business morning's reading.
    case.engine.cycle(t(3 * 24 * 60)).unwrap();
    let config = case.dir.path().join("cuentas.toml");
    let Case { dir, engine } = case;
    drop(engine);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["drift", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reading: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<(String, String, String)> = reading["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("sam"), s("kind"), s("detail"))
        })
        .collect();
    assert_eq!(found.len(), 4, "{found:#?}");
    let has = |sam: &str, kind: &str, detail: &str| {
        found.iter().any(|(s, k, d)| s.eq_ignore_ascii_case(sam) && k == kind && d.contains(detail))
    };
    assert!(
        has(&sams[0], "changed", "department: «Planeación», no el que puso GU-2026-000001"),
        "{found:#?}"
    );
    assert!(has(&sams[1], "changed", "en el grupo gg-planeacion, que cuentas no le dio"), "{found:#?}");
    assert!(has(&sams[2], "past-expiry", "su contrato venció el 2026-11-28"), "{found:#?}");
    assert!(has(&by_hand, "unregistered", "sin una solicitud que la creara o cambiara"), "{found:#?}");
    assert!(
        !found.iter().any(|(s, ..)| s.eq_ignore_ascii_case(&sams[3])),
        "the untouched account: {found:#?}"
    );
    assert_eq!(reading["accounts"], 5);
    // Reading changed nothing.
    let after: Vec<String> = sams.iter().map(fingerprint).collect();
    assert_eq!(before, after);
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["drift", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("over 5 accounts of the managed OUs: 4 finding(s)"), "{table}");
    drop(dir);
}

/// Issue 23: the end of two contracts on Friday 11 December, reminded to the account's manager
/// in the directory (outside the managed OUs, not the requester) 10 and 3 business days before,
/// the 8th of December a holiday; one each, and none for the contract extended in between. On
/// the last day, at its end, the account still enabled is disabled by a request cuentas opens
/// itself, with the notices of a disable; the extended one is left alone.
#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_contract_s_end_is_reminded_to_its_manager_in_the_directory() {
    let ad = Ad::from_env();
    let u = unique();
    let root = own_ous(&ad, &u);
    let contract = [
        ("contract_number", "C-11"),
        ("contract_start", "27/11/2026"),
        ("contract_end", "11/12/2026"),
        ("manager_email", "juan.perez@upme.test"),
    ];
    let surname = |k: &str| format!("Fin{}{}", letters(&u), letters(k));
    let rows = [
        create_row(&format!("{}11", &u[..6]), "Contratista", "Lina", &surname("11"), "Energía", &contract),
        create_row(&format!("{}12", &u[..6]), "Contratista", "Mario", &surname("12"), "Energía", &contract),
    ];
    let mut case = case_in(&ad, &rows, &root, "disable_at_contract_end = true");
    let reminders = |case: &Case| -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = case
            .mails()
            .into_iter()
            .filter(|m| m.message_id.starts_with("<fin-de-contrato."))
            .map(|m| (m.message_id, m.to))
            .collect();
        out.sort();
        out
    };
    // Friday 27 November, 08:00: made; ten business days before the 11th was the 26th (the 8th
    // is a holiday): the first reminder goes at once.
    // The morning reading comes at the end of the cycle: the reminders go out at the next.
    case.engine.cycle(t(0)).unwrap();
    case.engine.cycle(t(1)).unwrap();
    let sams: Vec<String> = (2..4).map(|row| case.request(row).account.clone().unwrap()).collect();
    let first = reminders(&case);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(
        first
            .iter()
            .all(|(id, to)| id.ends_with(".2026-12-11.10@upme.test>") && to == "juan.perez@upme.test"),
        "{first:?}"
    );
    // Mario's contract extended by hand to June.
    let june = cuentas::directory::ldap::end_of_day_filetime(
        jiff::civil::date(2027, 6, 30),
        &jiff::tz::TimeZone::get("America/Bogota").unwrap(),
    );
    admin_replace(&ad, &user(&ad, &sams[1]).dn, "accountExpires", &june.to_string());
    // Friday 4 December: nothing new. Monday 7 December: three business days before, Lina only.
    case.engine.cycle(t(7 * 24 * 60)).unwrap();
    assert_eq!(reminders(&case).len(), 2);
    case.engine.cycle(t(10 * 24 * 60)).unwrap();
    case.engine.cycle(t(10 * 24 * 60 + 120)).unwrap();
    let all = reminders(&case);
    assert_eq!(all.len(), 3, "{all:?}");
    let three = all.iter().find(|(id, _)| id.ends_with(".2026-12-11.3@upme.test>")).unwrap();
    assert!(three.0.contains(&sams[0].to_lowercase()), "{all:?}");
    assert_eq!(three.1, "juan.perez@upme.test");

    // Friday 11 December, the last day: Lina's account is disabled at its end (17:00), by a
    // request cuentas opens itself that morning; Mario's, extended, is left alone.
    let friday = 14 * 24 * 60;
    case.engine.cycle(t(friday)).unwrap();
    let opened: Vec<_> = case.requests().into_iter().filter(|r| r.origin.is_some()).collect();
    assert_eq!(opened.len(), 1, "{opened:#?}");
    assert_eq!(opened[0].submission.account.to_lowercase(), sams[0].to_lowercase());
    assert_eq!(opened[0].submission.requester, "juan.perez@upme.test");
    case.engine.cycle(t(friday + 8 * 60 + 59)).unwrap();
    assert!(!disabled(&ad, &sams[0]), "usable through the last working day");
    case.engine.cycle(t(friday + 9 * 60)).unwrap();
    case.engine.cycle(t(friday + 9 * 60 + 1)).unwrap();
    assert_eq!(user(&ad, &sams[0]).uac() & 2, 2, "disabled at the end of the last day");
    assert!(!disabled(&ad, &sams[1]), "extended: kept");
    let closed = case.requests().into_iter().find(|r| r.origin.is_some()).unwrap();
    assert_eq!(closed.state.name(), StateName::Closed, "{:?}", closed.state);
    let about: Vec<_> =
        case.mails().into_iter().filter(|m| m.subject.contains(&format!("[{}]", closed.id))).collect();
    let lina_mail = user(&ad, &sams[0]).get("mail").to_string();
    let notice = about.iter().find(|m| m.to.eq_ignore_ascii_case(&lina_mail)).expect("the holder's notice");
    assert!(
        notice.body.contains("Su contrato terminó el viernes 11 de diciembre de 2026"),
        "{}",
        notice.body
    );
    let outcome = about.iter().find(|m| m.to == "juan.perez@upme.test").expect("the manager's");
    assert!(outcome.body.contains("cuentas la abrió"), "{}", outcome.body);
    println!("{}\n\n{}", notice.raw, outcome.body);
    // Once: the next mornings open nothing more.
    case.engine.cycle(t(friday + 3 * 24 * 60)).unwrap();
    assert_eq!(case.requests().into_iter().filter(|r| r.origin.is_some()).count(), 1);
}
