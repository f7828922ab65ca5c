//! One form response, as a requester (or anyone who can fill in the form) may write it.
//!
//! Input: records separated by 0x1E, cells by 0x1F, read as UTF-8 lossily. When the input
//! starts with 0x1E, its first record is the form's header row; otherwise the default headers
//! (every field, then two columns the daemon does not know). Each other record is a row.
//!
//! Properties: `parse_row` and `check_department` never panic; every stored answer stays
//! within `MAX_ANSWER_BYTES`; a name kept for a new person holds only Latin letters and
//! " '-."; a department kept after the check is one of the entity's; the submission survives
//! the store's JSON round trip.
#![no_main]

use std::collections::BTreeMap;

use cuentas::intake::{ColumnMap, Field, MAX_ANSWER_BYTES, check_department, parse_row};
use cuentas::request::{HolderType, Kind, Submission};
use libfuzzer_sys::fuzz_target;

/// The demo entity's dependencies (fixtures/demo/cuentas.toml, `[form] departments`).
const DEPARTMENTS: [&str; 5] = [
    "Subdirección de Energía Eléctrica",
    "Subdirección de Hidrocarburos",
    "Oficina Asesora de Planeación",
    "Secretaría General",
    "GIT de Talento Humano",
];

/// `MAX_EXTRA_BYTES` in src/intake (private): all the extra columns of a row together, plus
/// the one cut mark that may go past it.
const MAX_EXTRA_WITH_MARK: usize = 8000 + 64;

fn cells(record: &[u8]) -> Vec<String> {
    record.split(|b| *b == 0x1F).map(|c| String::from_utf8_lossy(c).into_owned()).collect()
}

fn default_headers() -> Vec<String> {
    let mut h: Vec<String> = Field::ALL.iter().map(|f| f.default_header().to_string()).collect();
    h.push("Extensión telefónica".into());
    h.push("Comentarios adicionales".into());
    h
}

/// The same test as src/intake (`is_latin_letter`, crate-private there).
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (c.is_alphabetic() && matches!(u32::from(c), 0x00C0..=0x024F | 0x1E00..=0x1EFF))
}

fn check(s: &Submission, row: u32, departments: &[String]) {
    for answer in [
        &s.requester,
        &s.kind_answer,
        &s.given_names,
        &s.surnames,
        &s.id_type,
        &s.id_number,
        &s.personal_email,
        &s.department,
        &s.title,
        &s.manager_email,
        &s.contract_number,
        &s.account,
        &s.notes,
    ] {
        assert!(answer.len() <= MAX_ANSWER_BYTES, "an answer of {} bytes", answer.len());
    }
    assert!(s.groups.len() <= 64, "{} groups", s.groups.len());
    assert!(s.groups.iter().all(|g| g.len() <= MAX_ANSWER_BYTES && !g.is_empty()));
    let extra: usize = s.extra.iter().map(|(h, v)| h.len() + v.len()).sum();
    assert!(extra <= MAX_EXTRA_WITH_MARK, "extra columns of {extra} bytes");
    for p in &s.problems {
        assert_eq!(p.row, row);
        assert!(!p.column.is_empty());
        assert!(!p.reason.is_empty());
    }
    // A new person's names become the account name and the directory's cn: only Latin letters
    // and the marks names carry, unless cut (a problem says so then).
    if matches!(s.kind, Some(Kind::Create | Kind::Assignment)) {
        let institutional = s.holder_type == Some(HolderType::Institutional);
        // An institutional account's surnames are read as free text.
        let names = if institutional { vec![&s.given_names] } else { vec![&s.given_names, &s.surnames] };
        for name in names.into_iter().filter(|n| n.len() + 64 < MAX_ANSWER_BYTES) {
            assert!(
                name.chars().all(|c| is_latin_letter(c) || " '-.".contains(c)),
                "name kept with other characters: {name:?}"
            );
        }
    }
    if !s.department.is_empty() {
        assert!(departments.contains(&s.department), "department kept: {:?}", s.department);
    }
    let json = serde_json::to_string(s).expect("a submission serialises");
    let back: Submission = serde_json::from_str(&json).expect("and reads back");
    assert_eq!(&back, s);
}

fuzz_target!(|data: &[u8]| {
    let mut records = data.split(|b| *b == 0x1E);
    let headers = if data.first() == Some(&0x1E) {
        records.next();
        cells(records.next().unwrap_or_default())
    } else {
        default_headers()
    };
    let map = match ColumnMap::new(&headers, &BTreeMap::new()) {
        Ok(map) => map,
        Err(missing) => {
            assert!(!missing.missing.is_empty());
            let _ = missing.to_string();
            return;
        }
    };
    let departments: Vec<String> = DEPARTMENTS.iter().map(|d| d.to_string()).collect();
    for (i, record) in records.enumerate().take(64) {
        let row = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(2);
        let cells = cells(record);
        let mut s = parse_row(&map, row, &cells);
        // Without a list, the department is taken as written.
        check_department(&map, row, &mut s.clone(), &[]);
        check_department(&map, row, &mut s, &departments);
        check(&s, row, &departments);
        let _ = s.full_name();
    }
});
