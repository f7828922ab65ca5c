//! Live tests of what a requester may make cuentas do, against the test DC: decisions on what
//! the directory says about an account, not on what the form claims; temporary passwords only
//! to the address on record; one person, one account; returning people made current.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, letters, unique};
use common::case::{Case, admin_add_member, admin_replace, append, create_row, kind_row, t};
use cuentas::cli::{Ctx, StoreCommand};
use cuentas::request::Actor;
use cuentas::request::StateName;

/// How an account the requester may not act on is answered: as one that does not exist.
const NOT_YOURS: &str =
    "no existe en el directorio o no es de una cuenta sobre la que usted pueda hacer esta solicitud";

/// Heads of area, each for one dependency.
const HEADS: &str = "jefe.energia@upme.test,Jefe Energía,jefe_area,Energía,2024-01-01,\n\
                     jefe.planeacion@upme.test,Jefe Planeación,jefe_area,Planeación,2024-01-01,\n";

/// What an administrator would compare to see that nothing happened to an account.
fn fingerprint(ad: &Ad, sam: &str) -> Vec<String> {
    let e = ad.user(sam).unwrap();
    let mut groups = e.groups();
    groups.sort();
    vec![
        e.dn.clone(),
        e.uac().to_string(),
        e.get("pwdLastSet").into(),
        e.get("department").into(),
        groups.join(","),
    ]
}

/// Rows' states, in order.
fn states(case: &Case, rows: std::ops::RangeInclusive<u32>) -> Vec<(u32, StateName, String)> {
    rows.map(|row| {
        let r = case.request(row);
        (row, r.state.name(), r.state.reason().to_string())
    })
    .collect()
}

fn access_data_sent_to(case: &Case) -> Vec<String> {
    case.mails().into_iter().filter(|m| m.message_id.contains("datos-de-acceso")).map(|m| m.to).collect()
}

fn contract() -> [(&'static str, &'static str); 3] {
    [("contract_number", "C-7"), ("contract_start", "01/02/2026"), ("contract_end", "30/06/2027")]
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn requesters_outside_the_account_s_dependency_cannot_act_whatever_they_declare() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let rows = [
        create_row(&u, "Funcionario", "Elisa", &format!("Plan{l}"), "Planeación", &[]),
        create_row(&format!("{u}1"), "Contratista", "Mario", &format!("Plan{l}"), "Planeación", &contract()),
    ];
    let mut case = Case::with_authorizers(&ad, &rows, "", HEADS);
    case.engine.cycle(t(0)).unwrap();
    let employee = case.request(2).account.clone().unwrap_or_else(|| panic!("{:?}", case.request(2).state));
    let contractor = case.request(3).account.clone().unwrap_or_else(|| panic!("{:?}", case.request(3).state));
    let before = (fingerprint(&ad, &employee), fingerprint(&ad, &contractor));
    let sent_before = access_data_sent_to(&case).len();

    // The head of Energía, about accounts of Planeación, declaring whatever would let them.
    let evil = "jefe.energia@upme.test";
    let declares = |holder: &'static str, department: &'static str| {
        vec![("holder_type", holder), ("department", department), ("personal_email", "tomado@evil.test")]
    };
    let ask = |kind: &str, account: &str, declared: Vec<(&str, &str)>, more: &[(&str, &str)]| {
        let mut values = declared;
        values.extend_from_slice(more);
        kind_row(evil, kind, account, &values)
    };
    append(
        &case,
        &[
            ask("Cambio de clave", &employee, declares("Contratista", "Energía"), &[]),
            ask("Cambio de clave", &employee, declares("Funcionario", "Planeación"), &[]),
            ask("Inactivación de cuenta", &employee, declares("Funcionario", "Planeación"), &[]),
            ask("Reactivación de cuenta", &contractor, declares("Contratista", "Energía"), &[]),
            ask("Cambio de clave", &contractor, declares("Contratista", "Planeación"), &[]),
            ask("Inactivación de cuenta", &contractor, declares("Contratista", ""), &[]),
            ask(
                "Traslado de dependencia",
                &employee,
                declares("Funcionario", "Energía"),
                &[("effective_date", "27/11/2026")],
            ),
        ],
    );
    case.engine.cycle(t(10)).unwrap();
    // Refused on what AD says, whatever the form claimed, and without telling what AD holds:
    // an account outside the requester's dependency is answered as one that does not exist.
    for row in 4..=10 {
        let r = case.request(row);
        let neutral = r.state.name() == StateName::NeedsInfo && r.state.reason().contains(NOT_YOURS);
        assert!(r.state.name() == StateName::Rejected || neutral, "row {row}: {:?}", r.state);
        assert!(!r.state.reason().contains("Según el directorio"), "{}", r.state.reason());
        assert!(
            !r.state.reason().contains("Planeación"),
            "the account's dependency untold: {}",
            r.state.reason()
        );
    }
    assert_eq!((fingerprint(&ad, &employee), fingerprint(&ad, &contractor)), before, "AD unchanged");
    assert_eq!(access_data_sent_to(&case).len(), sent_before, "no password sent");
    assert!(!access_data_sent_to(&case).iter().any(|to| to.contains("evil")));

    // The same requests from those the matrix allows for the accounts as AD holds them.
    let head = "jefe.planeacion@upme.test";
    let on_record = format!("p{u}1@gmail.com");
    append(
        &case,
        &[
            // Allowed, but the form contradicts the directory: asked about, naming it.
            kind_row(head, "Reactivación de cuenta", &contractor, &[("holder_type", "Funcionario")]),
            kind_row(
                head,
                "Cambio de clave",
                &contractor,
                &[("holder_type", "Contratista"), ("personal_email", &on_record)],
            ),
            kind_row(head, "Inactivación de cuenta", &contractor, &[("holder_type", "Contratista")]),
            kind_row(
                "talentohumano@upme.test",
                "Traslado de dependencia",
                &employee,
                &[("department", "Energía"), ("effective_date", "27/11/2026")],
            ),
        ],
    );
    case.engine.cycle(t(20)).unwrap();
    let asked = case.request(11);
    assert_eq!(asked.state.name(), StateName::NeedsInfo, "{}", asked.state.reason());
    assert!(
        asked.state.reason().contains("es de tipo «Contratista», no «Funcionario»"),
        "{}",
        asked.state.reason()
    );
    for (row, state, reason) in states(&case, 12..=14) {
        assert_eq!(state, StateName::Closed, "row {row}: {reason}");
    }
    let password = case.password_sent_to(&on_record);
    assert!(
        ad.bind_as(&format!("{contractor}@upme.test"), &password).unwrap_err().contains("data 533"),
        "disabled"
    );
    assert_eq!(ad.user(&contractor).unwrap().uac() & 2, 2);
    assert!(ad.user(&employee).unwrap().dn.contains("OU=Energia"), "transferred");
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_reset_goes_only_to_the_personal_address_on_record() {
    let ad = Ad::from_env();
    let u = unique();
    // The address on record lives in AD too (written at the creation).
    let mut case = Case::new(
        &ad,
        &[create_row(&u, "Funcionario", "Rosa", &format!("Clave{}", letters(&u)), "Energía", &[])],
        "personal_email_attribute = \"otherMailbox\"",
    );
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let mail = format!("{sam}@upme.test");
    let on_record = format!("p{u}@gmail.com");
    let first = case.password_sent_to(&on_record);
    let written = ad.search(&format!("(sAMAccountName={sam})"), &["otherMailbox"]);
    assert_eq!(written[0].get("otherMailbox"), on_record);

    // The address on record: the password arrives there, and must be changed at first logon.
    append(&case, &[kind_row(&mail, "Cambio de clave", &sam, &[("personal_email", &on_record)])]);
    case.engine.cycle(t(10)).unwrap();
    let r = case.request(3);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    let second = case.password_sent_to(&on_record);
    assert_ne!(first, second);
    assert!(ad.bind_as(&mail, &second).unwrap_err().contains("data 773"));
    assert!(ad.bind_as(&mail, &first).unwrap_err().contains("data 52e"), "the old one is gone");
    let notices = |case: &Case, id: &str| -> Vec<String> {
        let mails = case.mails();
        mails
            .into_iter()
            .filter(|m| m.message_id.contains(id) && m.message_id.contains("aviso-titular"))
            .map(|m| m.to)
            .collect()
    };
    assert_eq!(notices(&case, &r.id.to_string()), vec![mail.clone()], "the holder is told of the reset");

    // Whoever fills the form in as the owner, naming another address: nothing is sent there.
    append(
        &case,
        &[kind_row(&mail, "Cambio de clave", &sam, &[("personal_email", "otra.direccion@gmail.com")])],
    );
    case.engine.cycle(t(20)).unwrap();
    let r = case.request(4);
    assert_eq!(r.state.name(), StateName::Manual, "{}", r.state.reason());
    assert!(r.state.reason().contains("no es el registrado"), "{}", r.state.reason());
    assert!(!access_data_sent_to(&case).iter().any(|to| to.contains("otra.direccion")));
    assert!(ad.bind_as(&mail, &second).unwrap_err().contains("data 773"), "the password was not changed");
    let mails = case.mails();
    let to_desk = mails
        .iter()
        .find(|m| m.message_id.contains(&format!("{}.", r.id)) && m.message_id.contains("gestion-manual"));
    assert_eq!(to_desk.map(|m| m.to.as_str()), Some("mesa@upme.test"));
    assert_eq!(
        notices(&case, &r.id.to_string()),
        vec![mail.clone()],
        "the holder is told of the reset asked for"
    );
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn managers_owners_and_the_service_desk_are_held_to_the_procedure() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let rows = [
        create_row(
            &u,
            "Funcionario",
            "Ana",
            &format!("Jefa{l}"),
            "Energía",
            &[("manager_email", "juan.perez@upme.test")],
        ),
        create_row(&format!("{u}1"), "Funcionario", "Beto", &format!("Solo{l}"), "Energía", &[]),
        create_row(&format!("{u}2"), "Funcionario", "Cata", &format!("Autoriza{l}"), "Planeación", &[]),
    ];
    let mut case = Case::new(&ad, &rows, "");
    case.engine.cycle(t(0)).unwrap();
    let account = |row| case.request(row).account.clone().unwrap();
    let (ana, beto, cata) = (account(2), account(3), account(4));
    // Cata becomes an authorizer for every dependency; the matrix is read again at restart.
    case.add_authorizer(&format!("{cata}@upme.test,Cata,talento_humano,*,2024-01-01,\n"));
    let mut case = case.reopen();
    admin_replace(&ad, &ad.user(&cata).unwrap().dn, "userAccountControl", "514");
    let cata_before = fingerprint(&ad, &cata);

    append(
        &case,
        &[
            // Ana's manager in AD asks for her reset; Beto has no manager in AD.
            kind_row(
                "juan.perez@upme.test",
                "Cambio de clave",
                &ana,
                &[("personal_email", &format!("p{u}@gmail.com"))],
            ),
            kind_row(
                "juan.perez@upme.test",
                "Cambio de clave",
                &beto,
                &[("personal_email", &format!("p{u}1@gmail.com"))],
            ),
            // The service desk asks for an employee: Talento Humano's to ask.
            create_row(&format!("{u}3"), "Funcionario", "Dora", &format!("Mesa{l}"), "Energía", &[])
                .replace("talentohumano@upme.test", "mesa@upme.test"),
            // An authorizer about their own account.
            kind_row(
                &format!("{cata}@upme.test"),
                "Reactivación de cuenta",
                &cata,
                &[("department", "Planeación")],
            ),
            kind_row(&format!("{cata}@upme.test"), "Modificación de cuenta", &cata, &[("groups", "VPN")]),
        ],
    );
    case.engine.cycle(t(10)).unwrap();
    let got = states(&case, 5..=9);
    assert_eq!(got[0].1, StateName::Closed, "{:?}", got[0]);
    assert!(
        case.request(5).history.iter().any(|h| h.reason.contains("el jefe inmediato")),
        "the manager grant"
    );
    // Beto has no manager: to Juan, his account is answered as one he may not act on.
    assert!(got[1].1 == StateName::NeedsInfo && got[1].2.contains(NOT_YOURS), "{:?}", got[1]);
    for (row, state, reason) in &got[2..] {
        assert_eq!(*state, StateName::Rejected, "row {row}: {reason}");
    }
    assert!(got[2].2.contains("mesa de servicio"), "{}", got[2].2);
    assert!(got[3].2.contains("su propia cuenta") && got[4].2.contains("su propia cuenta"), "{got:?}");
    assert_eq!(fingerprint(&ad, &cata), cata_before, "the authorizer's account is untouched");
    assert!(ad.search(&format!("(employeeID=9{u}3)"), &["cn"]).is_empty(), "no account for Dora");
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_repeated_response_is_one_account_and_namesakes_get_two() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let twice = create_row(&u, "Funcionario", "Eva", &format!("Doble{l}"), "Energía", &[]);
    let namesake = |v: &str| create_row(v, "Funcionario", "Iván", &format!("Mismo{l}"), "Planeación", &[]);
    let mut case = Case::new(
        &ad,
        &[twice.clone(), twice.clone(), namesake(&format!("{u}1")), namesake(&format!("{u}2"))],
        "",
    );
    case.engine.cycle(t(0)).unwrap();
    append(&case, std::slice::from_ref(&twice));
    case.engine.cycle(t(10)).unwrap();

    let first = case.request(2);
    assert_eq!(first.state.name(), StateName::Closed, "{}", first.state.reason());
    for row in [3, 6] {
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Cancelled, "row {row}: {}", r.state.reason());
        assert!(r.state.reason().contains(&first.id.to_string()), "{}", r.state.reason());
    }
    assert_eq!(ad.search(&format!("(employeeID=9{u})"), &["cn"]).len(), 1, "one account for Eva");
    let (a, b) = (case.request(4), case.request(5));
    assert_eq!(
        (a.state.name(), b.state.name()),
        (StateName::Closed, StateName::Closed),
        "{:?} {:?}",
        a.state,
        b.state
    );
    let (a, b) =
        (ad.user(a.account.as_ref().unwrap()).unwrap(), ad.user(b.account.as_ref().unwrap()).unwrap());
    assert_ne!(a.dn, b.dn);
    assert!(case.requests().iter().all(|r| r.state.name() != StateName::Failed));
    let mails = case.mails();
    assert!(!mails.iter().any(|m| m.message_id.contains("alerta")), "no alert to the administrators");
    assert_eq!(mails.iter().filter(|m| m.message_id.contains(".duplicada@")).count(), 2);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn returning_and_re_enabled_contractors_are_current_again() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let groups = [("groups", "VPN")];
    let returning = |extra: &[(&str, &str)]| {
        create_row(&u, "Contratista", "Rita", &format!("Vuelve{l}"), "Energía", extra)
    };
    let mut first = contract().to_vec();
    first.extend_from_slice(&groups);
    let rows = [
        returning(&first),
        create_row(&format!("{u}1"), "Contratista", "Saúl", &format!("Vence{l}"), "Energía", &contract()),
    ];
    let mut case = Case::new(&ad, &rows, "");
    case.engine.cycle(t(0)).unwrap();
    let (rita, saul) = (case.request(2).account.clone().unwrap(), case.request(3).account.clone().unwrap());
    assert_eq!(ad.user(&rita).unwrap().groups(), ["GG-Energia", "GG-Todos", "VPN"]);

    // Both contracts ended last year: disabled and expired; Rita's account was put aside.
    let ended =
        cuentas::directory::ldap::end_of_day_filetime(jiff::civil::date(2025, 12, 31), &bogota()).to_string();
    for sam in [&rita, &saul] {
        let dn = ad.user(sam).unwrap().dn;
        admin_replace(&ad, &dn, "userAccountControl", "514");
        admin_replace(&ad, &dn, "accountExpires", &ended);
    }
    let dn = ad.user(&rita).unwrap().dn;
    let rdn = dn.split_once(',').unwrap().0.to_string();
    ad.admin()
        .modifydn(&dn, &rdn, true, Some(&format!("OU=Retirados,{}", ad.users_ou())))
        .unwrap()
        .success()
        .unwrap();

    // Rita comes back with a new contract and no extra access; Saúl's account is re-enabled,
    // first without the new contract's end, then with it.
    let new_contract =
        [("contract_number", "C-8"), ("contract_start", "01/12/2026"), ("contract_end", "31/12/2027")];
    let saul_row = |extra: &[(&str, &str)]| {
        let mut values = vec![("holder_type", "Contratista")];
        values.extend_from_slice(extra);
        kind_row("supervisor@upme.test", "Reactivación de cuenta", &saul, &values)
    };
    append(
        &case,
        &[
            returning(&new_contract).replace(&format!("p{u}@gmail.com"), &format!("q{u}@gmail.com")),
            saul_row(&[]),
        ],
    );
    case.engine.cycle(t(10)).unwrap();
    let r = case.request(4);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    assert_eq!(r.account.as_deref(), Some(rita.as_str()), "the old account, not a second one");
    let e = ad.user(&rita).unwrap();
    assert!(e.dn.ends_with(&format!("OU=Contratistas,{}", ad.users_ou())), "{}", e.dn);
    let new_end = cuentas::directory::ldap::end_of_day_filetime(jiff::civil::date(2027, 12, 31), &bogota());
    assert_eq!(e.get("accountExpires"), new_end.to_string());
    assert_eq!(e.groups(), ["GG-Energia", "GG-Todos"], "only what the new request grants");
    assert_eq!(e.uac() & 2, 0, "enabled");
    let password = case.password_sent_to(&format!("q{u}@gmail.com"));
    assert!(ad.bind_as(&format!("{rita}@upme.test"), &password).unwrap_err().contains("data 773"));

    let r = case.request(5);
    assert_eq!(r.state.name(), StateName::NeedsInfo, "{}", r.state.reason());
    assert!(r.state.reason().contains("nuevo contrato"), "{}", r.state.reason());
    append(&case, &[saul_row(&[("contract_end", "31/12/2027")])]);
    case.engine.cycle(t(20)).unwrap();
    let r = case.request(6);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    let e = ad.user(&saul).unwrap();
    assert_eq!(e.uac() & 2, 0, "enabled");
    assert_eq!(e.get("accountExpires"), new_end.to_string(), "not expired any more");
}

/// Issue 21's attempt: a former contractor's document number (public with their contract) and
/// someone else's names get nothing; the same person, however written, gets the account back
/// only once the group the old contract left outside the managed ones is gone.
#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_returning_person_is_the_same_person_and_comes_back_without_what_the_old_contract_left() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let surnames = format!("Pineda{l} Ríos");
    let mut case = Case::new(
        &ad,
        &[create_row(&u, "Contratista", "Mauricio Andrés", &surnames, "Energía", &contract())],
        "",
    );
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let account_dn = ad.user(&sam).unwrap().dn;

    // What the old contract left: a group no request manages, then the contract's end.
    let group_dn = format!("CN=Finanzas{l},OU=Grupos,{}", ad.users_ou());
    let group_sam = format!("Finanzas{l}");
    let attrs = vec![
        ("objectClass", std::collections::HashSet::from(["group"])),
        ("sAMAccountName", std::collections::HashSet::from([group_sam.as_str()])),
    ];
    ad.admin().add(&group_dn, attrs).unwrap().success().unwrap();
    admin_add_member(&ad, &group_dn, &account_dn);
    let ended =
        cuentas::directory::ldap::end_of_day_filetime(jiff::civil::date(2025, 12, 31), &bogota()).to_string();
    admin_replace(&ad, &account_dn, "userAccountControl", "514");
    admin_replace(&ad, &account_dn, "accountExpires", &ended);
    let before = fingerprint(&ad, &sam);

    // Another person with that document and a new address: asked about, nothing changes.
    let new_contract =
        [("contract_number", "C-9"), ("contract_start", "01/12/2026"), ("contract_end", "31/12/2027")];
    let other = create_row(&u, "Contratista", "Laura", &format!("Gómez{l}"), "Energía", &new_contract)
        .replace(&format!("p{u}@gmail.com"), &format!("x{u}@gmail.com"));
    append(&case, &[other]);
    case.engine.cycle(t(10)).unwrap();
    let r = case.request(3);
    assert_eq!(r.state.name(), StateName::NeedsInfo, "{}", r.state.reason());
    assert!(!r.state.reason().contains(&sam), "nothing of the old holder: {}", r.state.reason());
    assert_eq!(fingerprint(&ad, &sam), before, "the old account untouched");
    assert!(
        access_data_sent_to(&case).iter().all(|to| !to.starts_with('x')),
        "{:?}",
        access_data_sent_to(&case)
    );

    // The same person, accents dropped and one surname: the service desk must first take the
    // account out of the group it left; until then it stays disabled.
    let same =
        create_row(&u, "Contratista", "Mauricio Andres", &format!("PINEDA{l}"), "Energía", &new_contract)
            .replace(&format!("p{u}@gmail.com"), &format!("q{u}@gmail.com"));
    append(&case, &[same]);
    case.engine.cycle(t(20)).unwrap();
    let r = case.request(4);
    assert_eq!(r.state.name(), StateName::Manual, "{}", r.state.reason());
    assert!(r.state.reason().contains(&group_sam), "{}", r.state.reason());
    assert_eq!(fingerprint(&ad, &sam), before, "still disabled, still as it was");
    assert!(access_data_sent_to(&case).iter().all(|to| !to.starts_with('q')));
    let desk = case.mails().into_iter().filter(|m| m.message_id.contains("gestion-manual")).count();
    assert_eq!(desk, 1, "the service desk is told");

    // The desk removes the membership and an administrator has the request decided again.
    let mut admin = ad.admin();
    let mods = vec![ldap3::Mod::Delete("member", std::collections::HashSet::from([account_dn.as_str()]))];
    admin.modify(&group_dn, mods).unwrap().success().unwrap();
    let config = case.engine.config().clone();
    let ctx = Ctx {
        config: &config,
        store: case.engine.store(),
        actor: Actor::Admin("root".into()),
        now: t(30),
        marks: None,
    };
    StoreCommand::Retry { id: r.id }.run(&ctx).unwrap();
    case.engine.reload_indexes().unwrap();
    case.engine.cycle(t(31)).unwrap();
    case.engine.cycle(t(32)).unwrap();
    let r = case.request(4);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    assert_eq!(r.account.as_deref(), Some(sam.as_str()));
    let e = ad.user(&sam).unwrap();
    assert_eq!(e.uac() & 2, 0, "enabled");
    assert_eq!(e.groups(), ["GG-Energia", "GG-Todos"], "nothing the old contract left");
    let password = case.password_sent_to(&format!("q{u}@gmail.com"));
    assert!(ad.bind_as(&format!("{sam}@upme.test"), &password).unwrap_err().contains("data 773"));
    ad.admin().delete(&group_dn).unwrap().success().unwrap();
}

fn bogota() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get("America/Bogota").unwrap()
}
