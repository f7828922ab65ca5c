//! Live tests of later requests superseding earlier steps, against the test DC: a leave's or a
//! suspension's return does not enable a person who has since left, and a deletion waiting for
//! its backups is not undone by a return date.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, Entry, letters, row, unique};
use common::case::{Case, append, create_row, kind_row, t};
use cuentas::request::{Request, StateName};
use jiff::Timestamp;

fn bogota(date: &str, time: &str) -> Timestamp {
    let civil: jiff::civil::DateTime = format!("{date}T{time}").parse().unwrap();
    civil.to_zoned(jiff::tz::TimeZone::get("America/Bogota").unwrap()).unwrap().timestamp()
}

fn user(ad: &Ad, sam: &str) -> Entry {
    ad.user(sam).unwrap_or_else(|| panic!("{sam} is not in the directory"))
}

fn disabled(ad: &Ad, sam: &str) -> bool {
    user(ad, sam).uac() & 2 != 0
}

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
fn a_return_does_not_enable_a_person_who_left_since() {
    let Some(ad) = Ad::from_env() else { return };
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
fn a_suspension_s_return_does_not_enable_a_contract_terminated_since() {
    let Some(ad) = Ad::from_env() else { return };
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
    let contractor = |kind: &str, extra: &[(&str, &str)]| {
        let mut values = vec![
            ("requester", "supervisor@upme.test"),
            ("kind", kind),
            ("holder_type", "Contratista"),
            ("account", sam.as_str()),
        ];
        values.extend_from_slice(extra);
        row(&values)
    };
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
    // The termination takes effect at the end of its day at the latest.
    case.engine.cycle(bogota("2026-11-27", "17:00")).unwrap();
    let termination = case.request(4);
    assert_eq!(termination.state.name(), StateName::Closed, "{}", termination.state.reason());
    assert_return_cancelled_by(&case, &case.request(3), &termination, "supervisor@upme.test");
    case.engine.cycle(bogota("2026-12-02", "07:30")).unwrap();
    assert!(disabled(&ad, &sam), "the suspension's return enabled a terminated contract");
}
