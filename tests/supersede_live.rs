//! Live tests of later requests superseding earlier steps, against the test DC: a leave's or a
//! suspension's return does not enable a person who has since left, and a deletion waiting for
//! its backups is not undone by a return date.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, letters, unique};
use common::case::{Case, append, bogota, contractor_row, create_row, disabled, kind_row, t, user};
use cuentas::request::{Request, StateName};

/// A leave of an employee from today (Friday 27 November 2026) to Wednesday 2 December.
fn leave(account: &str) -> String {
    kind_row(
        "talentohumano@upme.test",
        "Vacaciones, Licencia",
        account,
        &[("effective_date", "27/11/2026"), ("return_date", "02/12/2026")],
    )
}

/// The cancelled request's history and its requester's message say which later request
/// cancelled its return.
fn assert_return_cancelled_by(case: &Case, earlier: &Request, later: &Request, requester: &str) {
    assert_eq!(earlier.state.name(), StateName::Cancelled, "{:?}", earlier.state);
    let reason = earlier.state.reason();
    assert!(reason.contains("no se reactivará") && reason.contains(&later.id.to_string()), "{reason}");
    let told = case.mails().into_iter().find(|m| {
        m.to == requester
            && m.message_id.contains(&format!("<{}.", earlier.id))
            && m.message_id.contains("sin-efecto")
    });
    let told = told.unwrap_or_else(|| panic!("{requester} was not told"));
    assert!(told.body.contains(&later.id.to_string()), "{}", told.body);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_return_does_not_enable_a_person_who_left_since() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let (mut case, sams) = Case::employees(
        &ad,
        "Ramiro",
        &[(format!("{u}1"), format!("Retirado{l}")), (format!("{u}2"), format!("Eliminado{l}"))],
    );
    let (left, deleted) = (&sams[0], &sams[1]);
    // A leave for each, today; then, the same day, one leaves the entity and the other's
    // account is to be deleted.
    append(&case, &[leave(left), leave(deleted)]);
    case.engine.cycle(t(10)).unwrap();
    assert!(disabled(&ad, left) && disabled(&ad, deleted));
    for row in [4, 5] {
        assert_eq!(case.request(row).state.name(), StateName::Scheduled, "the return waits");
    }
    append(
        &case,
        &[
            kind_row("talentohumano@upme.test", "Inactivación de cuenta", left, &[("notes", "Renunció")]),
            kind_row("talentohumano@upme.test", "Eliminación de cuenta", deleted, &[]),
        ],
    );
    case.engine.cycle(t(20)).unwrap();
    let (disable, deletion) = (case.request(6), case.request(7));
    assert_eq!(disable.state.name(), StateName::Closed, "{}", disable.state.reason());
    assert_eq!(deletion.state.name(), StateName::AwaitingConfirmation, "{}", deletion.state.reason());
    assert_return_cancelled_by(&case, &case.request(4), &disable, "talentohumano@upme.test");
    assert_return_cancelled_by(&case, &case.request(5), &deletion, "talentohumano@upme.test");

    // The return date comes, and goes: both stay disabled, the deletion still waits.
    for at in [bogota("2026-12-02", "07:30"), bogota("2026-12-03", "09:00")] {
        case.engine.cycle(at).unwrap();
        assert!(disabled(&ad, left), "{left} at {at}");
        assert!(disabled(&ad, deleted), "{deleted} at {at}");
    }
    let waiting = case.request(7);
    assert_eq!(waiting.state.name(), StateName::AwaitingConfirmation, "{}", waiting.state.reason());
    assert!(user(&ad, deleted).dn.contains("OU=Retirados"), "{}", user(&ad, deleted).dn);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_suspension_s_return_does_not_enable_a_contract_terminated_since() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let contract =
        [("contract_number", "C-9"), ("contract_start", "01/02/2026"), ("contract_end", "30/06/2027")];
    let mut case = Case::new(
        &ad,
        &[create_row(&u, "Contratista", "Sara", &format!("Suspendida{l}"), "Energía", &contract)],
        "",
    );
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap_or_else(|| panic!("{:?}", case.request(2).state));
    let contractor = |kind: &str, extra: &[(&str, &str)]| contractor_row(kind, &sam, extra);
    append(
        &case,
        &[contractor(
            "Suspensión de contrato",
            &[("effective_date", "27/11/2026"), ("return_date", "02/12/2026")],
        )],
    );
    case.engine.cycle(t(10)).unwrap();
    assert!(disabled(&ad, &sam));
    append(&case, &[contractor("Terminación anticipada", &[("effective_date", "27/11/2026")])]);
    // The termination takes effect when the contract's last day ends.
    case.engine.cycle(bogota("2026-11-28", "00:00")).unwrap();
    let termination = case.request(4);
    assert_eq!(termination.state.name(), StateName::Closed, "{}", termination.state.reason());
    assert_return_cancelled_by(&case, &case.request(3), &termination, "supervisor@upme.test");
    case.engine.cycle(bogota("2026-12-02", "07:30")).unwrap();
    assert!(disabled(&ad, &sam), "the suspension's return enabled a terminated contract");
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn dated_kinds_act_on_the_day_they_mean_and_a_pr_rroga_extends_the_contract() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let contract =
        [("contract_number", "C-5"), ("contract_start", "01/02/2026"), ("contract_end", "30/06/2027")];
    let people = [
        create_row(&format!("{u}1"), "Funcionario", "Elias", &format!("Eliminable{l}"), "Energía", &[]),
        create_row(&format!("{u}2"), "Contratista", "Tomas", &format!("Terminado{l}"), "Energía", &contract),
        create_row(&format!("{u}3"), "Contratista", "Pia", &format!("Prorrogada{l}"), "Energía", &contract),
        create_row(&format!("{u}4"), "Contratista", "Vera", &format!("Vencida{l}"), "Energía", &contract),
    ];
    let mut case = Case::new(&ad, &people, "");
    case.engine.cycle(t(0)).unwrap();
    let sam = |row: u32| {
        case.request(row).account.clone().unwrap_or_else(|| panic!("{:?}", case.request(row).state))
    };
    let (deleted, terminated, extended, expired) = (sam(2), sam(3), sam(4), sam(5));
    let password = case.password_sent_to(&format!("p{u}2@gmail.com"));
    // Vera's contract ended on 20 November, and her account was disabled with it.
    let tz = jiff::tz::TimeZone::get("America/Bogota").unwrap();
    let filetime = |d| cuentas::directory::ldap::end_of_day_filetime(d, &tz).to_string();
    common::case::admin_replace(
        &ad,
        &user(&ad, &expired).dn,
        "accountExpires",
        &filetime(jiff::civil::date(2026, 11, 20)),
    );
    common::case::admin_replace(&ad, &user(&ad, &expired).dn, "userAccountControl", "514");
    append(
        &case,
        &[
            kind_row(
                "talentohumano@upme.test",
                "Eliminación de cuenta",
                &deleted,
                &[("effective_date", "04/12/2026")],
            ),
            contractor_row("Terminación anticipada", &terminated, &[("effective_date", "27/11/2026")]),
            contractor_row("Modificación de cuenta", &extended, &[("contract_end", "31/12/2027")]),
            contractor_row("Modificación de cuenta", &expired, &[("contract_end", "31/03/2027")]),
        ],
    );
    case.engine.cycle(t(10)).unwrap();
    // The prórrogas: the new end read back; the expired account enabled again.
    for (row, account, end) in
        [(8, &extended, jiff::civil::date(2027, 12, 31)), (9, &expired, jiff::civil::date(2027, 3, 31))]
    {
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
        assert!(r.state.reason().contains("prórroga"), "{}", r.state.reason());
        assert_eq!(user(&ad, account).get("accountExpires"), filetime(end), "{account}");
        assert!(!disabled(&ad, account), "{account}");
    }
    // The deletion waits for its date; the termination for the end of the contract's last day,
    // and the contractor can log in meanwhile (AD asks only for the first-logon password change).
    assert_eq!(case.request(6).state.name(), StateName::Scheduled, "{}", case.request(6).state.reason());
    assert_eq!(case.request(7).state.name(), StateName::Scheduled, "{}", case.request(7).state.reason());
    let login = || ad.bind_as(&format!("{terminated}@upme.test"), &password).unwrap_err();
    case.engine.cycle(bogota("2026-11-27", "23:59")).unwrap();
    assert!(login().contains("data 773"), "{}", login());
    case.engine.cycle(bogota("2026-11-28", "00:00")).unwrap();
    assert_eq!(case.request(7).state.name(), StateName::Closed, "{}", case.request(7).state.reason());
    assert!(disabled(&ad, &terminated));
    assert!(!login().contains("data 773"), "{}", login());
    assert_eq!(user(&ad, &terminated).get("accountExpires"), filetime(jiff::civil::date(2026, 11, 27)));
    for at in [bogota("2026-11-30", "09:00"), bogota("2026-12-04", "07:29")] {
        case.engine.cycle(at).unwrap();
        assert!(!disabled(&ad, &deleted), "{deleted} before its date, at {at}");
    }
    case.engine.cycle(bogota("2026-12-04", "07:30")).unwrap();
    assert!(disabled(&ad, &deleted));
    assert!(user(&ad, &deleted).dn.contains("OU=Retirados"), "{}", user(&ad, &deleted).dn);
    assert_eq!(
        case.request(6).state.name(),
        StateName::AwaitingConfirmation,
        "{}",
        case.request(6).state.reason()
    );
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_person_who_comes_back_is_not_deleted_by_the_deletion_waiting_for_backups() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let (mut case, sams) = Case::employees(&ad, "Regina", &[(format!("{u}1"), format!("Vuelve{l}"))]);
    let sam = &sams[0];
    let home = user(&ad, sam).dn;
    append(&case, &[kind_row("talentohumano@upme.test", "Eliminación de cuenta", sam, &[])]);
    case.engine.cycle(t(10)).unwrap();
    let deletion = case.request(3);
    assert_eq!(deletion.state.name(), StateName::AwaitingConfirmation, "{}", deletion.state.reason());
    assert!(disabled(&ad, sam) && user(&ad, sam).dn.contains("OU=Retirados"));
    // The person stays after all: Talento Humano asks for the account back, and every
    // backup is confirmed afterwards.
    append(&case, &[kind_row("talentohumano@upme.test", "Reactivación de cuenta", sam, &[])]);
    case.engine.cycle(t(20)).unwrap();
    let reactivation = case.request(4);
    assert_eq!(reactivation.state.name(), StateName::Closed, "{}", reactivation.state.reason());
    let entry = user(&ad, sam);
    assert!(!disabled(&ad, sam), "{sam} was not enabled");
    let parent = |dn: &str| dn.split_once(',').map(|(_, p)| p.to_lowercase());
    assert_eq!(parent(&entry.dn), parent(&home), "back where it lived");
    let cancelled = case.request(3);
    assert_eq!(cancelled.state.name(), StateName::Cancelled, "{:?}", cancelled.state);
    let reason = cancelled.state.reason();
    assert!(reason.contains("no se eliminará") && reason.contains(&reactivation.id.to_string()), "{reason}");
    let told = case.mails().into_iter().any(|m| {
        m.to == "talentohumano@upme.test"
            && m.message_id.contains(&format!("<{}.", cancelled.id))
            && m.message_id.contains("sin-efecto")
    });
    assert!(told, "the deletion's requester was not told");
    // Long after: the account is still there.
    case.engine.cycle(bogota("2027-02-01", "09:00")).unwrap();
    assert!(!disabled(&ad, sam));
}
