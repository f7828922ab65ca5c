//! Live tests against the Samba AD DC of `tests/run.sh`: every directory operation read back,
//! crash-replay after each LDAP write, and the safety rails.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, header, letters, row, unique};
use cuentas::directory::Directory;
use cuentas::engine::Engine;
use cuentas::request::{Request, StateName};
use jiff::Timestamp;

/// Friday 27 November 2026, 08:00 in Bogotá.
fn t0() -> Timestamp {
    "2026-11-27T13:00:00Z".parse().unwrap()
}

struct Case {
    dir: tempfile::TempDir,
    engine: Engine,
}

impl Case {
    fn new(ad: &Ad, rows: &[String], extra: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let responses = format!("{}\n{}", header(), rows.concat());
        let engine = Engine::new(ad.config(dir.path(), &responses, extra)).unwrap();
        Case { dir, engine }
    }

    fn requests(&self) -> Vec<Request> {
        self.engine.store().requests().map(|r| r.unwrap()).collect()
    }

    fn request(&self, row: u32) -> Request {
        self.requests().into_iter().find(|r| r.row == row).unwrap()
    }

    /// The temporary password sent to `to`, read from the spooled access-data message.
    fn password_sent_to(&self, to: &str) -> String {
        let spool = self.dir.path().join("var/correo");
        let mut found = Vec::new();
        for e in std::fs::read_dir(spool).unwrap() {
            let m = common::Mail::parse(&std::fs::read_to_string(e.unwrap().path()).unwrap());
            if m.to == to && m.message_id.contains("datos-de-acceso") {
                let line =
                    m.body.lines().find_map(|l| l.trim().strip_prefix("Contraseña temporal: ")).unwrap();
                found.push(line.to_string());
            }
        }
        found.pop().unwrap_or_else(|| panic!("no access data sent to {to}"))
    }

    fn ldap_writes(&mut self) -> Vec<String> {
        match self.engine.directory_mut() {
            Directory::Ldap(l) => l.writes.clone(),
            Directory::DryRun { .. } => panic!("not LDAP"),
        }
    }

    fn interrupt_after(&mut self, n: Option<usize>) {
        match self.engine.directory_mut() {
            Directory::Ldap(l) => l.interrupt_after(n),
            Directory::DryRun { .. } => panic!("not LDAP"),
        }
    }
}

fn create_row(
    u: &str,
    holder: &str,
    given: &str,
    surname: &str,
    department: &str,
    extra: &[(&str, &str)],
) -> String {
    let requester = if holder == "Contratista" { "supervisor@upme.test" } else { "talentohumano@upme.test" };
    let personal = format!("p{u}@gmail.com");
    let mut values = vec![
        ("requester", requester),
        ("kind", "Creación de cuenta"),
        ("holder_type", holder),
        ("given_names", given),
        ("surnames", surname),
        ("id_type", "CC"),
        ("personal_email", personal.as_str()),
        ("department", department),
        ("title", "Profesional"),
    ];
    let id = format!("9{u}");
    values.push(("id_number", id.as_str()));
    values.extend_from_slice(extra);
    row(&values)
}

#[test]
fn creations_are_read_back_and_the_password_must_be_changed() {
    let Some(ad) = Ad::from_env() else { return };
    let u = unique();
    let surname = format!("Ñúñez{}", letters(&u[..5]));
    let rows = [
        create_row(&u, "Funcionario", "Ángela", &surname, "Planeación", &[("groups", "VPN")]),
        create_row(
            &format!("{u}1"),
            "Contratista",
            "Tomás",
            &surname,
            "Energía",
            &[
                ("contract_number", "C-1"),
                ("contract_start", "01/12/2026"),
                ("contract_end", "30/06/2027"),
                ("manager_email", "juan.perez@upme.test"),
            ],
        ),
    ];
    let mut case = Case::new(&ad, &rows, "");
    case.engine.cycle(t0()).unwrap();

    let employee = case.request(2);
    assert_eq!(employee.state.name(), StateName::Closed, "{}", employee.state.reason());
    let sam = employee.account.clone().unwrap();
    assert!(sam.starts_with("angela.nunez"), "{sam}");
    assert!(sam.len() <= 20);
    let e = ad.user(&sam).unwrap();
    assert_eq!(e.dn, format!("CN=Ángela {surname},OU=Planeacion,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(e.get("givenName"), "Ángela");
    assert_eq!(e.get("sn"), surname);
    assert_eq!(e.get("displayName"), format!("Ángela {surname}"));
    assert_eq!(e.get("mail"), format!("{sam}@upme.test"));
    assert_eq!(e.get("userPrincipalName"), format!("{sam}@upme.test"));
    assert_eq!(e.get("employeeID"), format!("9{u}"));
    assert_eq!(e.get("employeeType"), "Funcionario");
    assert_eq!(e.get("department"), "Planeación");
    assert_eq!(e.get("description"), employee.id.to_string());
    assert_eq!(e.uac(), 512);
    assert_eq!(e.get("pwdLastSet"), "0");
    assert!(["0", "9223372036854775807"].contains(&e.get("accountExpires")));
    assert_eq!(e.groups(), ["GG-Planeacion", "GG-Todos", "VPN"]);
    let password = case.password_sent_to(&format!("p{u}@gmail.com"));
    let err = ad.bind_as(&format!("{sam}@upme.test"), &password).unwrap_err();
    assert!(err.contains("data 773"), "must change password at next logon: {err}");
    assert!(ad.bind_as(&format!("{sam}@upme.test"), "not-the-password").unwrap_err().contains("data 52e"));

    let contractor = case.request(3);
    assert_eq!(contractor.state.name(), StateName::Closed, "{}", contractor.state.reason());
    let csam = contractor.account.clone().unwrap();
    let c = ad.user(&csam).unwrap();
    assert!(c.dn.ends_with(&format!("OU=Contratistas,{}", ad.users_ou())), "{}", c.dn);
    // The end of 30 June 2027 in Bogotá: 1 July 05:00 UTC, as FILETIME.
    assert_eq!(c.get("accountExpires"), ((1_814_418_000i64 + 11_644_473_600) * 10_000_000).to_string());
    assert_eq!(c.get("manager"), format!("CN=Juan Perez,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(c.groups(), ["GG-Energia", "GG-Todos"]);
    let cpassword = case.password_sent_to(&format!("p{u}1@gmail.com"));
    assert!(ad.bind_as(&format!("{csam}@upme.test"), &cpassword).unwrap_err().contains("data 773"));

    // Nothing is written twice.
    let before = case.ldap_writes().len();
    case.engine.cycle(t0() + jiff::SignedDuration::from_mins(5)).unwrap();
    assert_eq!(case.ldap_writes().len(), before);
}
