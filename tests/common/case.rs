//! A live case against the test DC: a folder with its responses, its matrix and its engine,
//! the rows the live tests append, and the administrator's changes they make behind cuentas.

use cuentas::directory::Directory;
use cuentas::engine::Engine;
use cuentas::request::Request;
use jiff::Timestamp;

use super::ad::{Ad, Entry, header, row};

/// Friday 27 November 2026, 08:00 in Bogotá.
pub fn t0() -> Timestamp {
    "2026-11-27T13:00:00Z".parse().unwrap()
}

pub struct Case {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
}

impl Case {
    pub fn new(ad: &Ad, rows: &[String], extra: &str) -> Case {
        Case::with_authorizers(ad, rows, extra, "")
    }

    /// A case whose matrix has `more` rows (`correo,nombre,rol,dependencias,desde,hasta` lines)
    /// besides the test DC's usual three.
    pub fn with_authorizers(ad: &Ad, rows: &[String], extra: &str, more: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let responses = format!("{}\n{}", header(), rows.concat());
        let mut config = ad.config(dir.path(), &responses, extra);
        if !more.is_empty() {
            let path = dir.path().join("autorizadores.csv");
            let matrix = std::fs::read_to_string(&path).unwrap() + more;
            std::fs::write(&path, matrix).unwrap();
            config = cuentas::config::Config::load(&dir.path().join("cuentas.toml")).unwrap();
        }
        let engine = Engine::new(config).unwrap();
        Case { dir, engine }
    }

    /// The same case with its files read again (the matrix, after a test changed it): the
    /// store is closed first, as the daemon's restart would.
    pub fn reopen(self) -> Case {
        let Case { dir, engine } = self;
        drop(engine);
        let config = cuentas::config::Config::load(&dir.path().join("cuentas.toml")).unwrap();
        Case { engine: Engine::new(config).unwrap(), dir }
    }

    /// Appends `line` to the matrix file.
    pub fn add_authorizer(&self, line: &str) {
        let path = self.dir.path().join("autorizadores.csv");
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + line).unwrap();
    }

    /// Every message spooled so far.
    pub fn mails(&self) -> Vec<super::Mail> {
        std::fs::read_dir(self.dir.path().join("var/correo"))
            .unwrap()
            .map(|e| super::Mail::parse(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
            .collect()
    }

    /// Employees of Energía called `given`, one per (unique digits, surname), created by one
    /// cycle at `t(0)`: the case, and their accounts in the order given.
    pub fn employees(ad: &Ad, given: &str, people: &[(String, String)]) -> (Case, Vec<String>) {
        let rows: Vec<String> = people
            .iter()
            .map(|(u, surname)| create_row(u, "Funcionario", given, surname, "Energía", &[]))
            .collect();
        let mut case = Case::new(ad, &rows, "");
        case.engine.cycle(t(0)).unwrap();
        let sams = (2..)
            .take(rows.len())
            .map(|row| case.request(row))
            .map(|r| r.account.clone().unwrap_or_else(|| panic!("{:?}", r.state)))
            .collect();
        (case, sams)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.engine.store().requests().map(|r| r.unwrap()).collect()
    }

    pub fn request(&self, row: u32) -> Request {
        self.requests().into_iter().find(|r| r.row == row).unwrap()
    }

    /// The temporary password sent to `to`, read from the spooled access-data message.
    pub fn password_sent_to(&self, to: &str) -> String {
        let spool = self.dir.path().join("var/correo");
        let mut found = Vec::new();
        for e in std::fs::read_dir(spool).unwrap() {
            let m = super::Mail::parse(&std::fs::read_to_string(e.unwrap().path()).unwrap());
            if m.to == to && m.message_id.contains("datos-de-acceso") {
                let line =
                    m.body.lines().find_map(|l| l.trim().strip_prefix("Contraseña temporal: ")).unwrap();
                found.push((m.message_id.clone(), line.to_string()));
            }
        }
        // The newest: message ids grow with the request id and its history.
        found.sort_by_key(|(id, _)| {
            let (req, rest) = id.trim_start_matches('<').split_once('.').unwrap_or_default();
            let step: u32 = rest.split('.').next().unwrap_or("0").parse().unwrap_or(0);
            (req.to_string(), step)
        });
        found.pop().map(|(_, p)| p).unwrap_or_else(|| panic!("no access data sent to {to}"))
    }

    pub fn ldap_writes(&mut self) -> Vec<String> {
        match self.engine.directory_mut() {
            Directory::Ldap(l) | Directory::Shadow(l) => l.writes.clone(),
            Directory::DryRun(_) => panic!("not LDAP"),
        }
    }

    pub fn interrupt_after(&mut self, n: Option<usize>) {
        match self.engine.directory_mut() {
            Directory::Ldap(l) | Directory::Shadow(l) => l.interrupt_after(n),
            Directory::DryRun(_) => panic!("not LDAP"),
        }
    }
}

pub fn create_row(
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

pub fn t(minutes: i64) -> Timestamp {
    t0() + jiff::SignedDuration::from_mins(minutes)
}

/// Appends rows to the case's responses.
pub fn append(case: &Case, rows: &[String]) {
    let path = case.dir.path().join("respuestas.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&rows.concat());
    std::fs::write(path, text).unwrap();
}

pub fn admin_replace(ad: &Ad, dn: &str, attr: &str, value: &str) {
    let mut c = ad.admin();
    let mods = vec![ldap3::Mod::Replace(attr, std::collections::HashSet::from([value]))];
    c.modify(dn, mods).unwrap().success().unwrap();
}

pub fn admin_add_member(ad: &Ad, group_dn: &str, member_dn: &str) {
    let mut c = ad.admin();
    let mods = vec![ldap3::Mod::Add("member", std::collections::HashSet::from([member_dn]))];
    c.modify(group_dn, mods).unwrap().success().unwrap();
}

pub fn kind_row(requester: &str, kind: &str, account: &str, extra: &[(&str, &str)]) -> String {
    let mut values =
        vec![("requester", requester), ("kind", kind), ("holder_type", "Funcionario"), ("account", account)];
    values.extend_from_slice(extra);
    row(&values)
}

/// `date` (`yyyy-mm-dd`) at `time` (`HH:MM`) in Bogotá.
pub fn bogota(date: &str, time: &str) -> Timestamp {
    let civil: jiff::civil::DateTime = format!("{date}T{time}").parse().unwrap();
    civil.to_zoned(jiff::tz::TimeZone::get("America/Bogota").unwrap()).unwrap().timestamp()
}

/// The account `sam` as the directory holds it.
pub fn user(ad: &Ad, sam: &str) -> Entry {
    ad.user(sam).unwrap_or_else(|| panic!("{sam} is not in the directory"))
}

pub fn disabled(ad: &Ad, sam: &str) -> bool {
    user(ad, sam).uac() & 2 != 0
}

/// A contractor's request of `kind` about `account`, from their supervisor.
pub fn contractor_row(kind: &str, account: &str, extra: &[(&str, &str)]) -> String {
    let mut values = vec![
        ("requester", "supervisor@upme.test"),
        ("kind", kind),
        ("holder_type", "Contratista"),
        ("account", account),
    ];
    values.extend_from_slice(extra);
    row(&values)
}
