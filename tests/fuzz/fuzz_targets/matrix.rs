//! The authorizer matrix (`autorizadores.csv`, or a spreadsheet tab read as rows), as an
//! administrator may save it, and its `dependencias` cells.
//!
//! Input: the bytes of a matrix CSV. The same bytes, read as UTF-8 lossily, are also split into
//! lines and commas (a spreadsheet tab's header and rows), and each line is a `dependencias`
//! cell.
//!
//! Properties: nothing panics; a loaded matrix holds trimmed lower-case e-mails, dates in
//! order, and every row it counts; the rows of a matrix are all kept by itself (`kept_in`); an
//! invalid matrix lists its problems by line; `Departments::parse` is `*` alone or a list that
//! contains each of its names.
#![no_main]

use std::collections::BTreeSet;

use cuentas::intake::fold;
use cuentas::policy::{Departments, Matrix, MatrixError, parse_matrix};
use libfuzzer_sys::fuzz_target;

const DEPARTMENTS: [&str; 3] =
    ["Subdirección de Energía Eléctrica", "Secretaría General", "Oficina Asesora de Planeación"];

fn check_matrix(m: &Matrix, text: &str) {
    assert_eq!(m.kept_in(m), *m, "a matrix does not keep its own rows");
    assert_eq!(m.is_empty(), m.len() == 0);
    let known: Vec<String> = DEPARTMENTS.iter().map(|d| d.to_string()).collect();
    let _ = m.unknown_departments(&known);
    let today = jiff::civil::date(2026, 6, 30);
    let mut seen = BTreeSet::new();
    let mut found = 0;
    for cell in text.split(['\n', '\r', ',']) {
        let rows = m.entries_for(cell);
        if rows.is_empty() || !seen.insert(rows[0].email.clone()) {
            continue;
        }
        found += rows.len();
        for a in rows {
            assert_eq!(a.email, a.email.trim().to_lowercase());
            assert_eq!(a.email, cell.trim().to_lowercase());
            assert!(a.line >= 2, "a row on line {}", a.line);
            if let (Some(f), Some(u)) = (a.valid_from, a.valid_until) {
                assert!(f <= u, "valid from {f} until {u}");
            }
            let _ = (a.is_valid_on(today), a.grant_text(), a.departments_for_humans());
            let _ = a.departments.contains("Secretaría General");
        }
    }
    assert!(found <= m.len());
}

fn check_departments(cell: &str) {
    match Departments::parse(cell) {
        Ok(Departments::All) => assert_eq!(cell.trim(), "*"),
        Ok(Departments::List(names)) => {
            assert!(!names.is_empty());
            for name in cell.split(';').map(str::trim).filter(|n| !n.is_empty()) {
                let d = Departments::List(names.clone());
                assert_eq!(d.contains(name), !fold(name).is_empty(), "{name:?} in {cell:?}");
            }
        }
        Err(message) => assert!(!message.is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_matrix(data) {
        Ok(m) => check_matrix(&m, &text),
        Err(MatrixError::Invalid { problems, valid }) => {
            assert!(!problems.is_empty());
            assert!(problems.windows(2).all(|w| w[0].line <= w[1].line), "problems out of order");
            check_matrix(&valid, &text);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // The same text as a spreadsheet tab: a header row, then rows.
    let mut lines = text.split('\n');
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let rows = lines.enumerate().take(256).map(|(i, l)| {
        (u32::try_from(i).unwrap_or(u32::MAX).saturating_add(2), l.split(',').map(String::from).collect())
    });
    match Matrix::from_rows(&header, rows) {
        Ok(m) => check_matrix(&m, &text),
        Err(MatrixError::Invalid { problems, valid }) => {
            assert!(!problems.is_empty());
            check_matrix(&valid, &text);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    for cell in text.lines().take(64) {
        check_departments(cell);
    }
});
