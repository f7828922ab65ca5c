//! Hostile answers, live against the test AD DC: every value of `tests/fixtures/hostile.txt`
//! (filter and DN injection, long values, accents, line breaks, invisible and look-alike
//! characters, e-mail tricks, dependencies naming OUs) as names, department, personal e-mail and
//! existing account yields a valid escaped account or `NeedsInfo`/`Rejected`, and never an
//! operation outside `managed_ous` or on an account the run did not create.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::ad::{Ad, Entry, header, letters, row, unique};
use cuentas::directory::Directory;
use cuentas::engine::Engine;
use cuentas::intake::{clean, fold, parse_email};
use cuentas::request::{Request, StateName};
use jiff::{SignedDuration, Timestamp};

/// The corpus, in the format its header describes.
const CORPUS: &str = include_str!("fixtures/hostile.txt");

/// Accounts no row of this test may change; compared before and after.
const UNTOUCHABLE: [&str; 9] = [
    "juan.perez",
    "camilo.vargas",
    "protegido.admin",
    "svc-backup",
    "externo.proveedor",
    "administrator",
    "krbtgt",
    "guest",
    "svc-cuentas",
];

/// Friday 27 November 2026, 08:00 in Bogotá.
fn t0() -> Timestamp {
    "2026-11-27T13:00:00Z".parse().unwrap()
}

/// Wall-clock time for the report only; nothing is decided with it.
#[allow(clippy::disallowed_methods)]
fn stopwatch() -> std::time::Instant {
    std::time::Instant::now()
}

/// The corpus values: comments and empty lines skipped, escapes turned into characters.
fn corpus() -> Vec<String> {
    CORPUS
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| {
            assert!(!line.contains('\r'), "hostile.txt line {}: write a carriage return as \\r", i + 1);
            unescape(line).unwrap_or_else(|e| panic!("hostile.txt line {}: {e}: {line:?}", i + 1))
        })
        .collect()
}

/// `\r`, `\n`, `\t`, `\\` and `\u{HEX}`; any other backslash sequence is an error.
fn unescape(line: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                if chars.next() != Some('{') {
                    return Err("\\u must be followed by {HEX}".into());
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).map_err(|_| format!("bad \\u{{{hex}}}"))?;
                out.push(char::from_u32(code).ok_or_else(|| format!("\\u{{{hex}}} is not a character"))?);
            }
            other => return Err(format!("unknown escape \\{}", other.map_or(String::new(), String::from))),
        }
    }
    Ok(out)
}

/// Where a corpus value goes in its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    GivenNames,
    Surnames,
    Department,
    PersonalEmail,
    DisableAccount,
    ResetAccount,
}

const SLOTS: [Slot; 6] = [
    Slot::GivenNames,
    Slot::Surnames,
    Slot::Department,
    Slot::PersonalEmail,
    Slot::DisableAccount,
    Slot::ResetAccount,
];

impl Slot {
    fn label(self) -> &'static str {
        match self {
            Slot::GivenNames => "given names",
            Slot::Surnames => "surnames",
            Slot::Department => "department",
            Slot::PersonalEmail => "e-mail",
            Slot::DisableAccount => "disable",
            Slot::ResetAccount => "reset",
        }
    }

    fn creates(self) -> bool {
        !matches!(self, Slot::DisableAccount | Slot::ResetAccount)
    }
}

/// One response row of the test and what it was built from.
#[derive(Debug, Clone)]
struct Case {
    value: usize,
    slot: Slot,
    given: String,
    surnames: String,
    department: String,
    email: String,
}

impl Case {
    fn new(u: &str, n: usize, value_index: usize, value: &str, slot: Slot) -> Case {
        // Letters only and unique to the run and the row: no name meets another, here or in an
        // earlier run against the same DC.
        let word = format!("Q{}", letters(&format!("{u}{n:03}")));
        let mut case = Case {
            value: value_index,
            slot,
            given: "Prueba".into(),
            surnames: word.clone(),
            department: "Planeación".into(),
            email: format!("p{u}x{n}@example.org"),
        };
        match slot {
            Slot::GivenNames => case.given = value.into(),
            Slot::Surnames => (case.given, case.surnames) = (word, value.into()),
            Slot::Department => case.department = value.into(),
            Slot::PersonalEmail => case.email = value.into(),
            Slot::DisableAccount | Slot::ResetAccount => {}
        }
        case
    }

    fn row(&self, value: &str, id_number: &str) -> String {
        match self.slot {
            Slot::DisableAccount => row(&[
                ("requester", "talentohumano@upme.test"),
                ("kind", "Inactivación de cuenta"),
                ("holder_type", "Funcionario"),
                ("account", value),
            ]),
            Slot::ResetAccount => row(&[
                ("requester", "mesa@upme.test"),
                ("kind", "Cambio de clave"),
                ("holder_type", "Funcionario"),
                ("account", value),
                ("personal_email", self.email.as_str()),
            ]),
            _ => row(&[
                ("requester", "talentohumano@upme.test"),
                ("kind", "Creación de cuenta"),
                ("holder_type", "Funcionario"),
                ("given_names", self.given.as_str()),
                ("surnames", self.surnames.as_str()),
                ("id_type", "CC"),
                ("id_number", id_number),
                ("personal_email", self.email.as_str()),
                ("department", self.department.as_str()),
                ("title", "Profesional"),
            ]),
        }
    }

    /// The OU `[directory.department_ous]` of the test config gives this employee.
    fn expected_ou(&self, ad: &Ad) -> String {
        let users = ad.users_ou();
        match fold(&self.department).as_str() {
            "planeacion" => format!("OU=Planeacion,OU=Funcionarios,{users}"),
            "energia" => format!("OU=Energia,OU=Funcionarios,{users}"),
            _ => format!("OU=Funcionarios,{users}"),
        }
    }
}

/// An RFC 4514 DN as (type, value) pairs, values unescaped (`\,` and `\2C` alike); `None` for
/// a multi-valued RDN (an unescaped `+`), a component without `=`, or a dangling escape.
fn parse_dn(dn: &str) -> Option<Vec<(String, String)>> {
    let b = dn.as_bytes();
    let mut rdns = Vec::new();
    let mut kind: Option<String> = None;
    let mut value: Vec<u8> = Vec::new();
    let mut i = 0;
    let mut finish = |kind: &mut Option<String>, value: &mut Vec<u8>| -> Option<()> {
        let k = kind.take()?;
        rdns.push((k.trim().to_string(), String::from_utf8(std::mem::take(value)).ok()?));
        Some(())
    };
    while i < b.len() {
        match b[i] {
            b'\\' => {
                let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                match hex {
                    Some(h) => {
                        value.push(u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?);
                        i += 3;
                    }
                    None => {
                        value.push(*b.get(i + 1)?);
                        i += 2;
                    }
                }
            }
            b'=' if kind.is_none() => {
                kind = Some(String::from_utf8(std::mem::take(&mut value)).ok()?);
                i += 1;
            }
            b',' => {
                finish(&mut kind, &mut value)?;
                i += 1;
            }
            b'+' if kind.is_some() => return None,
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    finish(&mut kind, &mut value)?;
    Some(rdns)
}

/// A parsed DN compared as AD does: types and values without case.
fn dn_key(rdns: &[(String, String)]) -> Vec<(String, String)> {
    rdns.iter().map(|(k, v)| (k.to_lowercase(), v.to_lowercase())).collect()
}

/// Whether `dn` parses and its parent is `ou` or below it.
fn parent_within(dn: &str, ou: &str) -> bool {
    let (Some(dn), Some(ou)) = (parse_dn(dn), parse_dn(ou)) else { return false };
    let (dn, ou) = (dn_key(&dn), dn_key(&ou));
    dn.len() > ou.len() && dn[dn.len() - ou.len()..] == ou[..]
}

/// A valid `sAMAccountName` of this daemon: `a-z 0-9 . -`, 1 to 20, no `.`/`-` at either end.
fn valid_account(sam: &str) -> bool {
    (1..=20).contains(&sam.len())
        && sam.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && !sam.starts_with(['.', '-'])
        && !sam.ends_with(['.', '-'])
}

/// Attributes read back from what the run wrote.
const READ_BACK: [&str; 10] = [
    "sAMAccountName",
    "description",
    "cn",
    "displayName",
    "givenName",
    "sn",
    "department",
    "mail",
    "userAccountControl",
    "pwdLastSet",
];

/// Entries by lower-case `sAMAccountName`, from one search (each search is one connection).
fn by_sam(entries: &[Entry]) -> BTreeMap<String, Entry> {
    entries
        .iter()
        .filter(|e| !e.get("sAMAccountName").is_empty())
        .map(|e| (e.get("sAMAccountName").to_lowercase(), e.clone()))
        .collect()
}

/// `(DN, userAccountControl, pwdLastSet)` of each untouchable account.
fn untouchables(ad: &Ad) -> BTreeMap<&'static str, (String, String, String)> {
    let filter: String = UNTOUCHABLE.iter().map(|s| format!("(sAMAccountName={s})")).collect();
    let found = by_sam(&ad.search(&format!("(&(objectClass=user)(|{filter}))"), &READ_BACK));
    UNTOUCHABLE
        .iter()
        .map(|sam| {
            let e = found.get(*sam).unwrap_or_else(|| panic!("the seeded account {sam} is missing"));
            (*sam, (e.dn.clone(), e.get("userAccountControl").into(), e.get("pwdLastSet").into()))
        })
        .collect()
}

/// A request's final state, with the account when it closed.
fn cell(r: &Request) -> String {
    let state = format!("{:?}", r.state.name());
    match (r.state.name(), &r.account) {
        (StateName::Closed, Some(a)) => format!("{state} {a}"),
        _ => state,
    }
}

/// A long message with its middle cut out: the start says what, the end says why.
fn abridged(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 300 {
        return s.to_string();
    }
    let (head, tail): (String, String) =
        (chars[..150].iter().collect(), chars[chars.len() - 130..].iter().collect());
    format!("{head} … {tail}")
}

/// A value as the table shows it: `{:?}`, cut to 34 characters.
fn shown(value: &str) -> String {
    let debug = format!("{value:?}");
    if debug.chars().count() > 34 {
        format!("{}…", debug.chars().take(33).collect::<String>())
    } else {
        debug
    }
}

/// The loader and the DN reader this test trusts, without a DC.
#[test]
fn the_corpus_loads_and_dns_read_back() {
    let values = corpus();
    assert!(values.len() >= 30, "the corpus holds {} values; at least 30 are wanted", values.len());
    assert!(values.contains(&"Ana\r\nMaría".to_string()));
    assert!(values.contains(&"juan\u{0}.perez".to_string()));
    assert!(values.contains(&" Ana María ".to_string()));
    assert!(values.contains(&"\\2a".to_string()));
    assert!(values.iter().any(|v| v.chars().count() >= 200));
    assert_eq!(unescape("a\\u{200b}\\\\"), Ok("a\u{200b}\\".to_string()));
    assert!(unescape("a\\x").is_err());

    let rdns = parse_dn("CN=a\\,OU\\=Domain Admins,OU=Usuarios,DC=upme,DC=test").unwrap();
    assert_eq!(rdns.len(), 4);
    assert_eq!(rdns[0], ("CN".to_string(), "a,OU=Domain Admins".to_string()));
    assert_eq!(parse_dn("CN=Pe\\C3\\B1a\\2C x,OU=A").unwrap()[0].1, "Peña, x");
    assert_eq!(parse_dn("CN=evil+uid=root,OU=A"), None);
    assert!(parent_within("CN=x,OU=Funcionarios,OU=usuarios,DC=upme,DC=test", "OU=Usuarios,DC=upme,DC=test"));
    assert!(!parent_within(
        "CN=x\\,OU=Usuarios,DC=upme,DC=test,OU=Proveedores",
        "OU=Usuarios,DC=upme,DC=test"
    ));
    assert!(!parent_within("CN=x,OU=Proveedores,DC=upme,DC=test", "OU=Usuarios,DC=upme,DC=test"));
    assert!(valid_account("nandu.qabc") && !valid_account("ana.") && !valid_account("añ.x"));
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn hostile_values_yield_escaped_names_or_needs_info_and_stay_in_the_managed_ous() {
    let ad = Ad::from_env();
    let values = corpus();
    assert!(values.len() >= 30, "the corpus holds {} values; at least 30 are wanted", values.len());
    assert!(values.len() * SLOTS.len() < 1000, "row numbers must fit in three digits");

    // One responses file, one engine: row n + 2 is case n.
    let u = unique();
    let id_base = 10_000_000_000 + (u.parse::<u64>().unwrap() % 10_000_000) * 1000;
    let mut cases = Vec::new();
    let mut rows = Vec::new();
    for (i, value) in values.iter().enumerate() {
        for slot in SLOTS {
            let n = cases.len();
            let case = Case::new(&u, n, i, value, slot);
            rows.push(case.row(value, &(id_base + n as u64).to_string()));
            cases.push(case);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let responses = format!("{}\n{}", header(), rows.concat());
    let mut engine = Engine::new(ad.config(dir.path(), &responses, "")).unwrap();

    let before = untouchables(&ad);
    assert_eq!(before["juan.perez"].1, "512", "juan.perez must start enabled (is the DC fresh?)");
    let started = stopwatch();
    engine.cycle(t0()).unwrap();
    let first = started.elapsed();
    engine.cycle(t0() + SignedDuration::from_mins(5)).unwrap();
    let both = started.elapsed();

    let requests: BTreeMap<u32, Request> =
        engine.store().requests().map(|r| r.unwrap()).map(|r| (r.row, r)).collect();
    assert_eq!(requests.len(), cases.len(), "one request per row");
    let request = |n: usize| &requests[&(n as u32 + 2)];
    let writes = match engine.directory_mut() {
        Directory::Ldap(l) => l.writes.clone(),
        Directory::DryRun(_) | Directory::Shadow(_) => panic!("not LDAP"),
    };

    // The table, for a person (`--no-capture`).
    eprintln!(
        "{} values x {} rows = {} requests; cycles: {:.1?} then {:.1?}; {} LDAP writes",
        values.len(),
        SLOTS.len(),
        cases.len(),
        first,
        both - first,
        writes.len()
    );
    eprint!("{:>3} {:<36}", "#", "value");
    for slot in SLOTS {
        eprint!(" | {:<27}", slot.label());
    }
    eprintln!();
    for (i, value) in values.iter().enumerate() {
        eprint!("{i:>3} {:<36}", shown(value));
        for (k, _) in SLOTS.iter().enumerate() {
            eprint!(" | {:<27}", cell(request(i * SLOTS.len() + k)));
        }
        eprintln!();
    }

    let mut problems: Vec<String> = Vec::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let run_ids: BTreeSet<String> = requests.values().map(|r| r.id.to_string()).collect();
    let managed = [ad.users_ou()];
    // Everything that carries a request id (this run's, and earlier runs' that reuse the ids).
    let tagged: Vec<Entry> = ad.search("(description=GU-*)", &READ_BACK);
    let tagged_users = by_sam(&tagged);

    // (a) Every request ended answered; what was created is a valid account, read back.
    for (n, case) in cases.iter().enumerate() {
        let r = request(n);
        let what = format!(
            "{} {} as {} (row {}, {})",
            case.value,
            shown(&values[case.value]),
            case.slot.label(),
            r.row,
            r.id
        );
        let state = r.state.name();
        if !matches!(state, StateName::Closed | StateName::NeedsInfo | StateName::Rejected) {
            problems.push(format!("{what}: ended {state:?}: {}", abridged(r.state.reason())));
            continue;
        }
        if state != StateName::Closed {
            continue;
        }
        if !case.slot.creates() {
            problems.push(format!("{what}: a {} was carried out on {:?}", case.slot.label(), r.account));
            continue;
        }
        let Some(sam) = r.account.clone() else {
            problems.push(format!("{what}: closed without an account"));
            continue;
        };
        if !valid_account(&sam) {
            problems.push(format!("{what}: account name {sam:?} is not [a-z0-9.-]{{1,20}}"));
        }
        if case.slot == Slot::PersonalEmail && parse_email(&r.submission.personal_email).is_none() {
            problems.push(format!("{what}: closed with personal e-mail {:?}", r.submission.personal_email));
        }
        created.insert(sam.clone());
        let Some(e) = tagged_users.get(&sam) else {
            problems.push(format!("{what}: {sam} is not in the directory with a request id"));
            continue;
        };
        let display = format!("{} {}", clean(&case.given), clean(&case.surnames));
        let expected_ou = case.expected_ou(&ad);
        let Some(rdns) = parse_dn(&e.dn) else {
            problems.push(format!("{what}: DN {:?} does not parse as one CN under OUs", e.dn));
            continue;
        };
        let ou = parse_dn(&expected_ou).unwrap();
        let cn_ok = rdns[0].0.eq_ignore_ascii_case("CN")
            && (rdns[0].1 == display || rdns[0].1 == format!("{display} ({sam})"));
        if !cn_ok || dn_key(&rdns[1..]) != dn_key(&ou) {
            problems.push(format!("{what}: DN {:?}, expected CN={display:?} in {expected_ou}", e.dn));
        }
        for (attr, want) in [
            ("cn", rdns[0].1.clone()),
            ("displayName", display.clone()),
            ("givenName", clean(&case.given)),
            ("sn", clean(&case.surnames)),
            ("department", clean(&case.department)),
            ("mail", format!("{sam}@upme.test")),
            ("description", r.id.to_string()),
            ("userAccountControl", "512".into()),
        ] {
            if e.get(attr) != want {
                problems.push(format!("{what}: {attr} is {:?}, expected {want:?}", e.get(attr)));
            }
        }
    }

    // (b) and (d): whatever carries a request id lies in the managed tree, one CN under OUs.
    for e in &tagged {
        let description = e.get("description");
        if !managed.iter().any(|m| parent_within(&e.dn, m)) {
            problems.push(format!("{:?} (description {description}) is outside the managed OUs", e.dn));
        }
        if run_ids.contains(description) {
            let shape = parse_dn(&e.dn).is_some_and(|rdns| {
                rdns[0].0.eq_ignore_ascii_case("CN")
                    && rdns[0].1 == e.get("cn")
                    && rdns[1..]
                        .iter()
                        .all(|(k, _)| k.eq_ignore_ascii_case("OU") || k.eq_ignore_ascii_case("DC"))
            });
            if !shape {
                problems.push(format!("{:?} (description {description}) is not one CN under OUs", e.dn));
            }
        }
    }

    // Every LDAP write was on an account this run created, or adds one in the managed tree.
    for w in &writes {
        let ok = if let Some(dn) = w.strip_prefix("add ") {
            managed.iter().any(|m| parent_within(dn, m))
        } else if let Some((who, what)) = w.strip_prefix("modify ").and_then(|m| m.split_once(": ")) {
            // `modify GG-Todos: add member x` names the group first; removals are never expected.
            let sam = match what.strip_prefix("add member ") {
                Some(member) => member,
                None if what.contains(" member ") => "",
                None => who,
            };
            created.contains(sam) && !what.contains("(disable)")
        } else {
            false
        };
        if !ok {
            problems.push(format!("LDAP write outside what the run created: {w}"));
        }
    }

    // (c) The untouchable accounts are as they were.
    let after = untouchables(&ad);
    for (sam, was) in &before {
        if after[sam] != *was {
            problems.push(format!("{sam} changed: {was:?} → {:?}", after[sam]));
        }
    }
    if after["juan.perez"].1 != "512" {
        problems.push("juan.perez is no longer enabled".into());
    }

    // No message carries an injected header or goes to an address that is not one.
    let spool = dir.path().join("var/correo");
    for entry in std::fs::read_dir(&spool).unwrap() {
        let path = entry.unwrap().path();
        let m = common::Mail::parse(&std::fs::read_to_string(&path).unwrap());
        let head = m.raw.split_once("\n\n").map_or("", |(h, _)| h).to_lowercase();
        if head.lines().any(|l| l.starts_with("bcc:") || l.starts_with("cc:")) {
            problems.push(format!("{}: a Cc/Bcc header: {head}", path.display()));
        }
        for to in m.to.split(',').map(str::trim) {
            if parse_email(to).as_deref() != Some(to) {
                problems.push(format!("{}: To {to:?} is not one plain address", path.display()));
            }
        }
    }

    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}
