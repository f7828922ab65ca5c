//! Live tests of failures handled to the end, against the test DC and a real SMTP server:
//! access data refused by the personal address's server, after the account was made.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, letters, unique};
use common::case::{Case, append, create_row, t};
use common::smtp::{Sink, env, through};
use cuentas::request::StateName;

/// A creation whose access data bounce (550), fixed by editing the row or by a new response:
/// the account made the first time gets its access data at the new address, and stays the
/// only one.
#[test]
fn bounced_access_data_resume_at_the_credential_step() {
    let Some(ad) = Ad::from_env() else { return };
    let Some(env) = env() else { return };
    for by_new_response in [false, true] {
        let u = format!("{}{}", unique(), u8::from(by_new_response));
        let bounced = format!("p{u}.rechazado@gmail.com");
        let good = format!("p{u}@gmail.com");
        let row = create_row(
            &u,
            "Funcionario",
            "Nora",
            &format!("Rebote{}", letters(&u)),
            "Energía",
            &[("personal_email", bounced.as_str())],
        );
        let case = Case::new(&ad, std::slice::from_ref(&row), "");
        let sink = Sink::start(&env, &case.dir.path().join("Maildir"), 0);
        let config = case.dir.path().join("cuentas.toml");
        std::fs::write(&config, through(&std::fs::read_to_string(&config).unwrap(), &env, sink.port))
            .unwrap();
        let mut case = case.reopen();
        case.engine.cycle(t(0)).unwrap();

        let first = case.request(2);
        assert_eq!(first.state.name(), StateName::NeedsInfo, "{}", first.state.reason());
        assert!(first.state.reason().contains(&bounced), "{}", first.state.reason());
        let made = ad.search(&format!("(employeeID=9{u})"), &["sAMAccountName", "userAccountControl"]);
        assert_eq!(made.len(), 1, "the account was made");

        if by_new_response {
            append(&case, &[row.replace(&bounced, &good)]);
        } else {
            let path = case.dir.path().join("respuestas.csv");
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, text.replace(&bounced, &good)).unwrap();
        }
        case.engine.cycle(t(30)).unwrap();
        let done = case.request(if by_new_response { 3 } else { 2 });
        assert_eq!(
            done.state.name(),
            StateName::Closed,
            "new response: {by_new_response}: {}",
            done.state.reason()
        );
        if by_new_response {
            assert_eq!(case.request(2).state.name(), StateName::Cancelled, "replaced by the new response");
        }
        let sam = made[0].get("sAMAccountName").to_string();
        assert_eq!(done.account.as_deref(), Some(sam.as_str()));
        assert_eq!(ad.search(&format!("(employeeID=9{u})"), &["cn"]).len(), 1, "one account");
        let access: Vec<_> =
            sink.mails().into_iter().filter(|m| m.message_id.contains("datos-de-acceso")).collect();
        assert_eq!(access.len(), 1, "{access:?}");
        assert_eq!(access[0].to, good);
        assert!(
            access[0].body.contains("reemplaza cualquier otra"),
            "the second password says so: {}",
            access[0].body
        );
        assert!(access[0].body.contains("Su cuenta institucional está lista"), "{}", access[0].body);
        let password =
            access[0].body.lines().find_map(|l| l.trim().strip_prefix("Contraseña temporal: ")).unwrap();
        let bind = ad.bind_as(&format!("{sam}@upme.test"), password).unwrap_err();
        assert!(bind.contains("data 773"), "{bind}");
    }
}

/// AD's own way of writing a name: `CN=Pérez\, Ana`. Moved whole, not split at its comma.
#[test]
fn a_transfer_of_an_account_whose_cn_holds_a_comma_moves_it() {
    let Some(ad) = Ad::from_env() else { return };
    let u = unique();
    let l = letters(&u);
    let mut case =
        Case::new(&ad, &[create_row(&u, "Funcionario", "Ana", &format!("Coma{l}"), "Energía", &[])], "");
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let dn = ad.user(&sam).unwrap().dn;
    let rdn = format!("CN=Coma{l}\\, Ana");
    ad.admin().modifydn(&dn, &rdn, true, None).unwrap().success().unwrap();
    let renamed = ad.user(&sam).unwrap();
    assert!(renamed.dn.starts_with(&format!("CN=Coma{l}\\, Ana,OU=Energia")), "{}", renamed.dn);

    append(
        &case,
        &[common::case::kind_row(
            "talentohumano@upme.test",
            "Traslado de dependencia",
            &sam,
            &[("department", "Planeación"), ("effective_date", "27/11/2026")],
        )],
    );
    case.engine.cycle(t(10)).unwrap();
    let r = case.request(3);
    assert_eq!(r.state.name(), StateName::Closed, "{}", r.state.reason());
    let moved = ad.user(&sam).unwrap();
    assert_eq!(moved.dn, format!("CN=Coma{l}\\, Ana,OU=Planeacion,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(moved.get("department"), "Planeación");
    assert_eq!(moved.groups(), ["GG-Planeacion", "GG-Todos"]);
}
