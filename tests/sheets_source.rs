//! The Google Sheets source against the in-process Sheets API emulator (`common::sheets`):
//! the demo read from a spreadsheet gives what the CSV gives; an idle poll costs one small
//! request whatever the sheet's length; quota storms, Google's errors and timeouts back off
//! and lose nothing; a wrong key and an unshared sheet say what to do; edits of open requests
//! are seen by the edit check; timestamps convert in the spreadsheet's time zone.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Demo;
use common::sheets::Emulator;
use cuentas::engine::{CycleReport, Engine};
use cuentas::request::{Request, StateName};
use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const SPREADSHEET: &str = "1FormRespuestasUPME_demo-2026";
/// A tab name that needs quoting and percent-encoding: space, quote, `#`, `?` and `/`.
const AWKWARD_TAB: &str = "Respuestas #1 ¿'nuevas'? / 2026";
const TAB: &str = "Respuestas de formulario 1";
/// Friday 27 November 2026, 08:00 in Bogotá.
const T0: &str = "2026-11-27T13:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn by_row(engine: &Engine) -> BTreeMap<u32, Request> {
    engine.store().requests().map(|r| r.unwrap()).map(|r| (r.row, r)).collect()
}

/// Days since 1899-12-30, fractional: how Sheets stores a date and time.
fn serial(dt: DateTime) -> f64 {
    let epoch = Date::constant(1899, 12, 30).to_datetime(jiff::civil::Time::midnight());
    dt.duration_since(epoch).as_secs_f64() / 86_400.0
}

/// A CSV export's row as Sheets holds it: the timestamp and dates as serial numbers, digit-only
/// answers as numbers, everything else as text.
fn typed(header: &[String], cells: &[String]) -> Vec<Value> {
    cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let h = header.get(i).map(String::as_str).unwrap_or("");
            if h == "Marca temporal"
                && let Some(dt) = cuentas::intake::parse_timestamp(cell)
            {
                return json!(serial(dt));
            }
            if h.starts_with("Fecha")
                && let Some(d) = cuentas::intake::parse_date(cell)
            {
                return json!(serial(d.to_datetime(jiff::civil::Time::midnight())) as i64);
            }
            if !cell.is_empty()
                && !cell.starts_with('0')
                && cell.len() < 16
                && cell.bytes().all(|b| b.is_ascii_digit())
            {
                return json!(cell.parse::<i64>().unwrap());
            }
            json!(cell)
        })
        .collect()
}

/// Every line of one of the demo's CSV files, header included, as cells.
fn demo_csv(demo: &Demo, name: &str) -> Vec<Vec<String>> {
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).from_path(demo.path(name)).unwrap();
    reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect()
}

/// The demo's responses as the spreadsheet's rows (header first).
fn demo_rows(demo: &Demo) -> Vec<Vec<Value>> {
    let rows = demo_csv(demo, "respuestas.csv");
    let header = rows[0].clone();
    std::iter::once(header.iter().map(|h| json!(h)).collect())
        .chain(rows[1..].iter().map(|r| typed(&header, r)))
        .collect()
}

/// Points the demo's configuration at the emulator instead of the CSV export.
fn use_sheet(demo: &Demo, emu: &Emulator, tab: Option<&str>, key: &str, extra: &str) {
    let key = emu.key_file(demo.dir.path(), key);
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let sheet = tab.map(|t| format!("sheet = {}\n", toml_string(t))).unwrap_or_default();
    let source = format!(
        "kind = \"google-sheet\"\nspreadsheet_id = \"{SPREADSHEET}\"\n{sheet}service_account_key = {}\napi_base_url = \"{}\"\n{extra}",
        toml_string(&key.display().to_string()),
        emu.base_url()
    );
    let config = config.replace("kind = \"csv\"\npath = \"respuestas.csv\"\n", &source);
    assert!(config.contains("google-sheet"));
    std::fs::write(demo.path("cuentas.toml"), config).unwrap();
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A demo read from the emulator, with the demo's rows in it.
fn sheet_demo(tab: &str, extra: &str) -> (Demo, Emulator) {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, tab, "America/Bogota");
    emu.set_rows(demo_rows(&demo));
    use_sheet(&demo, &emu, Some(tab), "service-account", extra);
    (demo, emu)
}

/// [`sheet_demo`] in the first tab, after its first poll at `T0`.
fn polled_sheet_demo(extra: &str) -> (Demo, Emulator, Engine) {
    let (demo, emu) = sheet_demo(TAB, extra);
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    (demo, emu, engine)
}

/// A response row with the demo's header, for a creation that goes through.
fn creation_row(n: usize, when: f64) -> Vec<Value> {
    vec![
        json!(when),
        json!("talentohumano@upme.gov.co"),
        json!("Creación de cuenta"),
        json!("Funcionario"),
        json!(format!("Persona{n}")),
        json!(format!("Prueba{n}")),
        json!("Cédula de ciudadanía"),
        json!(1_000_000_000 + n as i64),
        json!(format!("persona{n}@gmail.com")),
        json!("Secretaría General"),
        json!("Profesional"),
        json!("carolina.rojas@upme.gov.co"),
    ]
}

#[test]
fn the_demo_from_a_spreadsheet_gives_the_same_requests_and_mails_as_the_csv() {
    let csv = Demo::new();
    let mut csv_engine = Engine::new(csv.config()).unwrap();
    let csv_report = csv_engine.cycle(at(T0)).unwrap();

    let (sheet, emu) = sheet_demo(AWKWARD_TAB, "");
    let mut sheet_engine = Engine::new(sheet.config()).unwrap();
    let sheet_report = sheet_engine.cycle(at(T0)).unwrap();

    assert_eq!(sheet_report.source_error, None);
    assert_eq!((sheet_report.registered, sheet_report.sent), (csv_report.registered, csv_report.sent));
    assert_eq!(sheet_report.registered, 32);
    let (a, b) = (by_row(&csv_engine), by_row(&sheet_engine));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (row, x) in &a {
        let y = &b[row];
        assert_eq!(x.id, y.id, "row {row}");
        assert_eq!(x.state.name(), y.state.name(), "row {row}: {} / {}", x.state.reason(), y.state.reason());
        assert_eq!(x.state.reason(), y.state.reason(), "row {row}");
        assert_eq!(x.account, y.account, "row {row}");
        assert_eq!(format!("{:?}", x.submission), format!("{:?}", y.submission), "row {row}");
    }
    // The same messages: recipients, subjects and bodies (temporary passwords are random).
    let mails = |demo: &Demo| -> Vec<(String, String, String, String)> {
        demo.mails()
            .into_iter()
            .map(|m| {
                let body: Vec<&str> =
                    m.body.lines().filter(|l| !l.contains("Contraseña temporal:")).collect();
                (m.message_id, m.to, m.subject, body.join("\n"))
            })
            .collect()
    };
    let (ma, mb) = (mails(&csv), mails(&sheet));
    // 60 messages (8 of them the answers to the service desk's form, read from its export in
    // both), some to more than one recipient: 67 files, as the CSV demo.
    assert_eq!(ma.len(), 67);
    assert_eq!(ma, mb);
    // The tab's awkward name reached Google intact, in a path (values.get) and in a query
    // (the edit check's batchGet of the 14 open rows, ten minutes later).
    sheet_engine.cycle(at(T0) + SignedDuration::from_mins(11)).unwrap();
    let log = emu.log();
    assert!(log.iter().any(|(_, path, _)| path.contains("values:batchGet")), "{log:?}");
    assert!(log.iter().all(|(_, _, status)| *status == 200), "{log:?}");
}

#[test]
fn an_idle_poll_of_a_long_sheet_is_one_small_request_and_a_new_response_comes_in_the_next_poll() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    let header = demo_rows(&demo).remove(0);
    let t0 = at(T0);
    let mut rows = vec![header];
    rows.extend((0..10_000).map(|n| creation_row(n, 46_350.5)));
    emu.set_rows(rows);
    use_sheet(&demo, &emu, None, "service-account", "");
    let mut engine = Engine::new(demo.config()).unwrap();
    let mut report = CycleReport::default();
    engine.ingest(t0, &mut report).unwrap();
    assert_eq!((report.registered, report.source_error), (10_000, None));
    // A first import comes in pages, not in one huge answer.
    assert!(emu.values_requests() >= 3, "{:?}", emu.log());

    // Polls a minute apart, nothing new: one values request each, one row's cells.
    for minute in 1..=3 {
        emu.reset_counters();
        let mut report = CycleReport::default();
        engine.ingest(t0 + SignedDuration::from_mins(minute), &mut report).unwrap();
        assert_eq!(report.registered, 0);
        assert_eq!(emu.sheets_requests(), 1, "{:?}", emu.log());
        assert_eq!(emu.values_requests(), 1);
        assert!(emu.cells_served() <= 21, "served {} cells", emu.cells_served());
        eprintln!(
            "idle poll {minute}: {} request(s), {} values request(s), {} cells",
            emu.sheets_requests(),
            emu.values_requests(),
            emu.cells_served()
        );
        assert_eq!(emu.token_requests(), 0, "the token is reused");
    }

    // A new response is registered by the next poll.
    emu.append_row(creation_row(10_000, 46_353.4));
    emu.reset_counters();
    let mut report = CycleReport::default();
    engine.ingest(t0 + SignedDuration::from_mins(4), &mut report).unwrap();
    assert_eq!(report.registered, 1);
    assert_eq!(emu.values_requests(), 1);
    assert!(emu.cells_served() <= 2 * 21);
    assert_eq!(by_row(&engine)[&10_002].submission.id_number, "1000010000");
}

/// Polls every `step` after `*t` (moving it on), at most `polls` times, until a cycle registers
/// something: what that cycle registered (0 if none did), and how many cycles met a source error.
fn poll_until_registered(
    engine: &mut Engine,
    t: &mut Timestamp,
    step: SignedDuration,
    polls: usize,
) -> (usize, usize) {
    let mut errors = 0;
    for _ in 0..polls {
        *t += step;
        let report = engine.cycle(*t).unwrap();
        errors += usize::from(report.source_error.is_some());
        if report.registered > 0 {
            return (report.registered, errors);
        }
    }
    (0, errors)
}

#[test]
fn quota_storms_errors_and_timeouts_back_off_and_lose_nothing() {
    let (demo, emu) = sheet_demo(TAB, "timeout_secs = 1\n");
    let first: Vec<Vec<Value>> = emu.rows()[..11].to_vec();
    emu.set_rows(first);
    let mut engine = Engine::new(demo.config()).unwrap();
    let t0 = at(T0);
    let report = engine.cycle(t0).unwrap();
    assert_eq!(report.registered, 10);

    // A 429 storm: every answer is 429 for ten minutes, the daemon polls every 10 s.
    let all = demo_rows(&demo);
    for row in &all[11..21] {
        emu.append_row(row.clone());
    }
    emu.fail_next(429, 10_000);
    emu.reset_counters();
    let mut t = t0;
    for _ in 0..60 {
        t += SignedDuration::from_secs(10);
        let report = engine.cycle(t).unwrap();
        assert_eq!(report.registered, 0);
        assert!(report.source_error.is_some());
    }
    // Without backoff that would be 60 requests; with 30 s doubling (jittered down to half at
    // most) the attempts are at least 15, 30, 60, 120, 240 s apart: at most 6 in 600 s.
    let in_storm = emu.sheets_requests();
    eprintln!("429 storm: {in_storm} requests in 60 polls over 600 s");
    assert!((2..=6).contains(&in_storm), "{in_storm} requests in the storm: {:?}", emu.log());

    // The storm ends; within the cap (15 min) the daemon is back by itself.
    emu.fail_next(429, 0);
    let (registered, _) = poll_until_registered(&mut engine, &mut t, SignedDuration::from_secs(10), 100);
    assert_eq!(registered, 10);

    // Three 500s, then a timeout: each is waited out, then the rows arrive.
    for row in &all[21..26] {
        emu.append_row(row.clone());
    }
    emu.fail_next(500, 3);
    let (registered, errors) = poll_until_registered(&mut engine, &mut t, SignedDuration::from_secs(30), 200);
    assert_eq!(registered, 5);
    assert!(errors >= 3);

    emu.append_row(all[26].clone());
    emu.set_delay(std::time::Duration::from_millis(1500));
    t += SignedDuration::from_secs(60);
    let report = engine.cycle(t).unwrap();
    let error = report.source_error.unwrap();
    assert!(error.contains("no answer from Google Sheets"), "{error}");
    emu.set_delay(std::time::Duration::ZERO);
    let (registered, _) = poll_until_registered(&mut engine, &mut t, SignedDuration::from_secs(30), 100);
    assert_eq!(registered, 1);

    // Nothing lost, nothing twice: one request per row, rows 2 to 27.
    let rows: Vec<u32> = engine.store().requests().map(|r| r.unwrap().row).collect();
    assert_eq!(rows.len(), 26);
    assert_eq!(rows.iter().copied().collect::<BTreeSet<_>>(), (2..=27).collect());
}

#[test]
fn an_expired_token_is_renewed_once_and_the_poll_goes_on() {
    let (_demo, emu, mut engine) = polled_sheet_demo("");
    let t0 = at(T0);
    let tokens = emu.token_requests();
    emu.expire_tokens();
    let mut row = creation_row(1, 46_353.4);
    row[4] = json!("Renovada");
    emu.append_row(row);
    let report = engine.cycle(t0 + SignedDuration::from_mins(1)).unwrap();
    assert_eq!((report.registered, report.source_error), (1, None));
    assert_eq!(emu.token_requests(), tokens + 1);
}

#[test]
fn a_wrong_key_and_an_unshared_sheet_say_what_to_do() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    emu.set_rows(demo_rows(&demo));
    use_sheet(&demo, &emu, None, "wrong-key", "");
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    let error = report.source_error.unwrap();
    assert!(error.contains("Google refused the service account"), "{error}");
    assert!(error.contains("Invalid JWT Signature"), "{error}");
    assert_eq!(report.registered, 0);
    assert_eq!(emu.sheets_requests(), 0);

    // A mistyped spreadsheet id.
    let demo = Demo::new();
    use_sheet(&demo, &emu, None, "service-account", "");
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    std::fs::write(demo.path("cuentas.toml"), config.replace(SPREADSHEET, "1NoExisteEstaHoja")).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    let error = engine.cycle(at(T0)).unwrap().source_error.unwrap();
    assert!(error.contains("spreadsheet id 1NoExisteEstaHoja not found"), "{error}");

    let demo = Demo::new();
    use_sheet(&demo, &emu, None, "service-account", "");
    emu.reset_counters();
    emu.set_shared(false);
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    let error = report.source_error.unwrap();
    assert!(error.contains(&format!("share it with {} as viewer", Emulator::SERVICE_ACCOUNT)), "{error}");
    // The administrators hear of it once, not at every poll.
    for minute in 1..=30 {
        engine.cycle(at(T0) + SignedDuration::from_mins(minute)).unwrap();
    }
    let alerts: Vec<_> = demo.mails().into_iter().filter(|m| m.to.contains("infraestructura@")).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].body.contains(Emulator::SERVICE_ACCOUNT));
    // Slowly: a person must act, so a few attempts in half an hour, not one per poll.
    assert!(emu.sheets_requests() <= 4, "{:?}", emu.log());

    // Shared again: the next attempt reads everything.
    emu.set_shared(true);
    let mut registered = 0;
    for minute in 31..=60 {
        registered += engine.cycle(at(T0) + SignedDuration::from_mins(minute)).unwrap().registered;
    }
    assert_eq!(registered, 32);
}

#[test]
fn the_edit_check_sees_an_edited_open_request_on_its_own_schedule() {
    let (_demo, emu, mut engine) = polled_sheet_demo("edit_check_interval_secs = 600\n");
    let t0 = at(T0);
    // Row 22 waits on the requester (a personal address without its domain's end); the
    // requester fixes the row in place.
    let before = by_row(&engine)[&22].clone();
    assert_eq!(before.state.name(), StateName::NeedsInfo, "{}", before.state.reason());
    let mut row = emu.rows()[21].clone();
    assert_eq!(row[8], json!("santiago.ruiz@gmail"));
    row[8] = json!("santiago.ruiz@gmail.com");
    emu.set_row(22, row);

    // The next polls read only the tail: the edit is not seen yet.
    emu.reset_counters();
    let report = engine.cycle(t0 + SignedDuration::from_mins(1)).unwrap();
    assert_eq!(report.edited, 0);
    assert_eq!(emu.values_requests(), 1);
    // Ten minutes after the last check: one batchGet of the open rows sees it.
    emu.reset_counters();
    let report = engine.cycle(t0 + SignedDuration::from_mins(11)).unwrap();
    assert_eq!(report.edited, 1);
    let log = emu.log();
    assert_eq!(log.iter().filter(|(_, path, _)| path.contains("values:batchGet")).count(), 1, "{log:?}");
    let after = &by_row(&engine)[&22];
    assert_eq!(after.id, before.id);
    assert_eq!(after.state.name(), StateName::Closed, "{}", after.state.reason());
    assert_eq!(after.account.as_deref(), Some("santiago.ruiz"));
}

#[test]
fn timestamps_at_midnight_convert_to_the_right_dates() {
    let stamp = |d: Date, h, m, s| serial(d.at(h, m, s, 0));
    let cases = [
        (stamp(Date::constant(2026, 11, 26), 23, 59, 59), "2026-11-26T23:59:59"),
        (stamp(Date::constant(2026, 11, 27), 0, 0, 0), "2026-11-27T00:00:00"),
    ];
    // The spreadsheet in Bogotá, like the entity.
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    let header = demo_rows(&demo).remove(0);
    emu.set_rows(vec![header.clone(), creation_row(1, cases[0].0), creation_row(2, cases[1].0)]);
    use_sheet(&demo, &emu, None, "service-account", "");
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    let got = by_row(&engine);
    assert_eq!(got[&2].submission.submitted_at.unwrap().to_string(), cases[0].1);
    assert_eq!(got[&3].submission.submitted_at.unwrap().to_string(), cases[1].1);

    // A spreadsheet left in UTC: its local times are five hours ahead of Bogotá.
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "Etc/UTC");
    emu.set_rows(vec![
        header,
        creation_row(1, cases[1].0),
        creation_row(2, stamp(Date::constant(2026, 11, 27), 5, 0, 0)),
    ]);
    use_sheet(&demo, &emu, None, "service-account", "");
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    let got = by_row(&engine);
    assert_eq!(got[&2].submission.submitted_at.unwrap().to_string(), "2026-11-26T19:00:00");
    assert_eq!(got[&3].submission.submitted_at.unwrap().to_string(), "2026-11-27T00:00:00");
}

#[test]
fn deleted_rows_in_the_sheet_stop_ingestion() {
    let (_demo, emu, mut engine) = polled_sheet_demo("");
    emu.delete_row(5);
    emu.append_row(creation_row(1, 46_353.4));
    let report = engine.cycle(at(T0) + SignedDuration::from_mins(1)).unwrap();
    assert!(report.halted.is_some(), "{report:?}");
    assert_eq!(report.registered, 0);
}

#[test]
fn check_reads_the_sheet_and_names_missing_columns() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    let mut rows = demo_rows(&demo);
    use_sheet(&demo, &emu, None, "service-account", "");
    emu.set_rows(rows.clone());
    let check = |demo: &Demo| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(["check", "--config"])
            .arg(demo.path("cuentas.toml"))
            .output()
            .unwrap()
    };
    let out = check(&demo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(Emulator::SERVICE_ACCOUNT), "{stdout}");
    assert!(stdout.contains("its header has every required column (21 columns)"), "{stdout}");

    rows[0][2] = json!("Qué necesita");
    rows[0][1] = json!("Correo");
    emu.set_rows(rows);
    let out = check(&demo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("«Tipo de solicitud»") && stderr.contains("«Dirección de correo electrónico»"),
        "{stderr}"
    );
}

/// The demo's authorizer matrix as a spreadsheet tab: dates typed in it are date cells.
fn matrix_rows(demo: &Demo) -> Vec<Vec<Value>> {
    demo_csv(demo, "autorizadores.csv")
        .iter()
        .map(|r| {
            r.iter()
                .map(|cell| match cell.parse::<Date>() {
                    Ok(d) => json!(serial(d.to_datetime(jiff::civil::Time::midnight())) as i64),
                    Err(_) => json!(cell),
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_authorizer_matrix_can_live_in_a_tab_and_a_broken_edit_keeps_the_last_good_one() {
    const MATRIX_TAB: &str = "Matriz de autorizadores";
    let csv = Demo::new();
    let mut csv_engine = Engine::new(csv.config()).unwrap();
    csv_engine.cycle(at(T0)).unwrap();

    let (demo, emu) = sheet_demo(TAB, "");
    let mut matrix = matrix_rows(&demo);
    emu.add_tab(MATRIX_TAB, matrix.clone());
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let config = config.replace(
        "[authorizers]\npath = \"autorizadores.csv\"\n",
        &format!("[authorizers]\nsheet = \"{MATRIX_TAB}\"\n"),
    );
    std::fs::write(demo.path("cuentas.toml"), config).unwrap();
    std::fs::remove_file(demo.path("autorizadores.csv")).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    assert_eq!((report.registered, report.source_error), (32, None));
    let (a, b) = (by_row(&csv_engine), by_row(&engine));
    for (row, x) in &a {
        assert_eq!(x.state.name(), b[row].state.name(), "row {row}: {}", b[row].state.reason());
    }

    // Someone breaks the tab: a date that is not one. The last good matrix stays in force,
    // the administrators are told once, and new responses are still decided.
    matrix[3][4] = json!("desde enero");
    emu.add_tab(MATRIX_TAB, matrix);
    // Another person asking the same as row 2 (the same person would be a repetition).
    let mut row = emu.rows()[1].clone();
    row[4] = json!("Otra");
    row[7] = json!("52123987");
    emu.append_row(row);
    let report = engine.cycle(at(T0) + SignedDuration::from_mins(11)).unwrap();
    assert_eq!((report.registered, report.source_error), (1, None));
    assert_eq!(by_row(&engine)[&34].state.name(), by_row(&engine)[&2].state.name());
    let alerts: Vec<_> =
        demo.mails().into_iter().filter(|m| m.subject.contains("Matriz de autorizadores")).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].body.contains("desde enero"), "{}", alerts[0].body);
}

#[test]
fn the_header_is_read_once_and_again_when_the_form_gets_a_new_question() {
    let (demo, emu) = sheet_demo(TAB, "edit_check_interval_secs = 600\n");
    let mut engine = Engine::new(demo.config()).unwrap();
    let t0 = at(T0);
    let header_reads = |emu: &Emulator| emu.log().iter().filter(|(_, path, _)| path.contains("!1:1")).count();
    engine.cycle(t0).unwrap();
    assert_eq!(header_reads(&emu), 1);
    // Polls and a metadata check with the same width: the header is not read again.
    for minute in [1, 11, 12] {
        emu.reset_counters();
        engine.cycle(t0 + SignedDuration::from_mins(minute)).unwrap();
        assert_eq!(header_reads(&emu), 0, "minute {minute}: {:?}", emu.log());
    }
    // The form gets a question: Forms adds a column to the responses, and a response answers it
    // before the next metadata check. The poll that brings it measures the tab, reads the
    // header again and keeps the new answer.
    let mut header = emu.rows()[0].clone();
    let width = header.len() as u32;
    header.push(json!("¿Requiere VPN?"));
    emu.set_grid(1000, width + 1);
    emu.set_row(1, header);
    let mut row = creation_row(7, 46_353.4);
    row.resize(width as usize, json!(""));
    row.push(json!("Sí"));
    emu.append_row(row);
    emu.reset_counters();
    let report = engine.cycle(t0 + SignedDuration::from_mins(13)).unwrap();
    assert_eq!((report.registered, report.source_error), (1, None));
    assert_eq!(header_reads(&emu), 1, "{:?}", emu.log());
    let new = &by_row(&engine)[&34];
    assert_eq!(
        new.submission.extra.get("¿Requiere VPN?").map(String::as_str),
        Some("Sí"),
        "{:?}",
        new.submission.extra
    );
    // An idle poll after it: one request again.
    emu.reset_counters();
    engine.cycle(t0 + SignedDuration::from_mins(14)).unwrap();
    assert_eq!(emu.sheets_requests(), 1, "{:?}", emu.log());
}

#[test]
fn the_daemon_runs_a_cycle_from_the_spreadsheet_and_exits_cleanly() {
    let (demo, _emu) = sheet_demo(TAB, "");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["run", "--once", "--config"])
        .arg(demo.path("cuentas.toml"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The HTTP client's runtime is dropped off the daemon's own: no panic on the way out.
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("32 registered, 0 edited, 60 messages sent, 13 open"), "{stdout}");
}

/// Lost access is told when it starts, again when it comes back after being restored, and
/// as a reminder once a day while it lasts.
#[test]
fn the_alert_for_lost_access_comes_once_per_episode() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    emu.set_rows(demo_rows(&demo));
    use_sheet(&demo, &emu, None, "service-account", "");
    let mut engine = Engine::new(demo.config()).unwrap();
    let alerts = || -> usize {
        demo.mails()
            .into_iter()
            .filter(|m| m.to.contains("infraestructura@") && m.subject.contains("No se pueden leer"))
            .count()
    };
    let poll = |engine: &mut Engine, minutes: i64| {
        engine.cycle(at(T0) + SignedDuration::from_mins(minutes)).unwrap()
    };
    emu.set_shared(false);
    for minute in 0..=30 {
        poll(&mut engine, minute);
    }
    assert_eq!(alerts(), 1, "lost: told once");
    emu.set_shared(true);
    let registered: usize = (31..=60).map(|minute| poll(&mut engine, minute).registered).sum();
    assert_eq!(registered, 32);
    emu.set_shared(false);
    for minute in 61..=90 {
        poll(&mut engine, minute);
    }
    assert_eq!(alerts(), 2, "lost again: told again");
    // Still lost a day later: a reminder.
    poll(&mut engine, 61 + 24 * 60);
    poll(&mut engine, 62 + 24 * 60 + 10);
    assert_eq!(alerts(), 3, "a reminder after 24 hours");
}

/// Issue 21: a row counts only if the form wrote it. A row typed into the spreadsheet, even in
/// the name of Talento Humano, is refused without a word to that address, and the
/// administrators are told; a response sent through the form goes on. A form the service
/// account may not read stops new rows, and says what to do.
#[test]
fn a_row_the_form_did_not_write_is_not_acted_on() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    emu.set_rows(vec![demo_rows(&demo).remove(0)]);
    emu.create_form("1FAIpQLSe-formulario_upme");
    let forms =
        format!("form_id = \"1FAIpQLSe-formulario_upme\"\nforms_api_base_url = \"{}\"\n", emu.base_url());
    use_sheet(&demo, &emu, None, "service-account", &forms);
    let sent = |h: i8, m: i8, s: i8| serial(jiff::civil::date(2026, 11, 27).at(h, m, s, 0));
    emu.submit(creation_row(1, sent(7, 55, 3)));
    // Typed by hand: at a time the form has nothing, and at the very second of the genuine one.
    emu.append_row(creation_row(2, sent(7, 56, 0)));
    emu.append_row(creation_row(3, sent(7, 55, 3)));
    emu.submit(creation_row(4, sent(7, 57, 41)));
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    assert_eq!((report.registered, report.source_error.clone()), (4, None));
    let requests = by_row(&engine);
    for row in [2, 5] {
        let r = &requests[&row];
        assert_ne!(r.state.name(), StateName::Rejected, "row {row}: {}", r.state.reason());
        assert!(r.form_response.as_deref().is_some_and(|id| id.starts_with("ACYDBN")), "row {row}");
    }
    for row in [3, 4] {
        let r = &requests[&row];
        assert_eq!(r.state.name(), StateName::Rejected, "row {row}");
        assert!(
            r.state.reason().contains("no corresponde a ninguna respuesta del formulario"),
            "{}",
            r.state.reason()
        );
        assert_eq!(r.form_response, None);
    }
    let mails = demo.mails();
    let about = |row: u32| requests[&row].id.to_string();
    for row in [3, 4] {
        assert!(
            !mails.iter().any(|m| m.to.contains("talentohumano@") && m.body.contains(&about(row))),
            "nothing to the address a hand typed (row {row})"
        );
        assert!(
            mails.iter().any(|m| m.to.contains("infraestructura@") && m.body.contains(&about(row))),
            "the administrators are told (row {row})"
        );
    }

    // The form no longer shared with the service account: a new response waits, and the
    // administrators hear what to do; shared again, it is registered.
    emu.set_form_shared(false);
    emu.submit(creation_row(5, sent(8, 1, 0)));
    let report = engine.cycle(at(T0) + SignedDuration::from_mins(2)).unwrap();
    let error = report.source_error.unwrap_or_default();
    assert!(error.contains("add cuentas@") && error.contains("collaborator"), "{error}");
    assert_eq!(report.registered, 0);
    emu.set_form_shared(true);
    let mut registered = 0;
    for minute in 3..=30 {
        registered += engine.cycle(at(T0) + SignedDuration::from_mins(minute)).unwrap().registered;
    }
    assert_eq!(registered, 1);
    let r = &by_row(&engine)[&6];
    assert!(r.form_response.is_some() && r.state.name() != StateName::Rejected, "{:?}", r.state);

    // A hand in the spreadsheet fixes row 2's answers, keeping its time: not an edit of the
    // form (Forms moves the time), so not applied; the administrators are told.
    let before = by_row(&engine)[&2].clone();
    assert_eq!(before.state.name(), StateName::NeedsInfo, "{}", before.state.reason());
    let mut typed = creation_row(1, sent(7, 55, 3));
    typed[4] = json!("Persona");
    typed[5] = json!("Prueba");
    emu.set_row(2, typed);
    engine.cycle(at(T0) + SignedDuration::from_mins(45)).unwrap();
    let after = by_row(&engine)[&2].clone();
    assert_eq!((after.state.name(), &after.submission), (StateName::NeedsInfo, &before.submission));
    assert!(
        after.history.iter().any(|h| h.reason.contains("sin una edición del formulario")),
        "{:#?}",
        after.history
    );
    let told = demo
        .mails()
        .into_iter()
        .filter(|m| m.to.contains("infraestructura@") && m.subject.contains("cambiada a mano"));
    assert_eq!(told.count(), 1);
    // The requester edits it through the form: applied.
    let mut fixed = creation_row(1, sent(8, 40, 0));
    fixed[4] = json!("Persona");
    fixed[5] = json!("Prueba");
    emu.edit_response(2, fixed);
    engine.cycle(at(T0) + SignedDuration::from_mins(60)).unwrap();
    let edited = by_row(&engine)[&2].clone();
    assert_ne!(edited.state.name(), StateName::NeedsInfo, "{}", edited.state.reason());
    assert_eq!(edited.submission.given_names, "Persona");
}

/// Issue 25 from the spreadsheet: a year of responses and no `start_at` is a refusal with the
/// count and the dates; a start of today registers and answers none of them, and the next
/// response is handled.
#[test]
fn a_spreadsheet_with_a_year_of_responses_starts_where_the_entity_starts() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    let mut rows = vec![demo_rows(&demo).remove(0)];
    let first = jiff::civil::date(2025, 2, 3).at(7, 30, 0, 0);
    rows.extend((0..500).map(|n| creation_row(n, serial(first + jiff::Span::new().hours(n as i64 * 13)))));
    emu.set_rows(rows);
    use_sheet(&demo, &emu, None, "service-account", "");
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let without = config.replace("start_at = \"2026-11-23 00:00\"\n", "");
    assert_ne!(config, without);
    std::fs::write(demo.path("cuentas.toml"), &without).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    let refused = engine.cycle(at(T0)).unwrap_err().to_string();
    assert!(
        refused.contains("already holds 500 responses (from 2025-02-03 07:30 to 2025-10-31 14:30)"),
        "{refused}"
    );
    drop(engine);

    let today = without
        .replace("kind = \"google-sheet\"\n", "kind = \"google-sheet\"\nstart_at = \"2026-11-27 00:00\"\n");
    std::fs::write(demo.path("cuentas.toml"), today).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    assert_eq!((report.registered, report.before_start, report.source_error), (0, 500, None));
    assert!(by_row(&engine).is_empty());
    assert!(demo.mails().is_empty(), "nothing old answered");
    emu.append_row(creation_row(500, serial(jiff::civil::date(2026, 11, 27).at(7, 58, 12, 0))));
    let report = engine.cycle(at(T0) + SignedDuration::from_mins(1)).unwrap();
    assert_eq!((report.registered, report.before_start), (1, 0));
    assert_eq!(by_row(&engine).keys().copied().collect::<Vec<_>>(), [502]);
    assert!(!demo.mails().is_empty());
}

/// Issue 25, Google as it is: an edited response gets the edit's time in column A (and the
/// form's `lastSubmittedTime`), but its request keeps the first submission's time; a 403 for
/// an API not enabled in the project says so (not "share the sheet"); a token endpoint
/// answering 503 is an outage that passes, not a bad key.
#[test]
fn google_s_own_behaviour_is_reported_for_what_it_is() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    emu.set_rows(vec![demo_rows(&demo).remove(0)]);
    emu.create_form("1FAIpQLSe-formulario_upme");
    let forms = format!(
        "form_id = \"1FAIpQLSe-formulario_upme\"\nforms_api_base_url = \"{}\"\nedit_check_interval_secs = 60\n",
        emu.base_url()
    );
    use_sheet(&demo, &emu, None, "service-account", &forms);
    let sent = |h: i8, m: i8, s: i8| serial(jiff::civil::date(2026, 11, 27).at(h, m, s, 0));
    // A creation whose dependency is not one of the entity's: asked about.
    let mut wrong = creation_row(1, sent(7, 55, 3));
    wrong[9] = json!("Dependencia inexistente");
    emu.submit(wrong);
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    let first = by_row(&engine)[&2].clone();
    assert_eq!(first.state.name(), StateName::NeedsInfo, "{}", first.state.reason());
    let submitted = first.submission.submitted_at;
    assert_eq!(submitted, Some(jiff::civil::date(2026, 11, 27).at(7, 55, 3, 0)));

    // Edited at 09:12: Forms rewrites the timestamp; the request keeps 07:55:03.
    let mut fixed = creation_row(1, sent(9, 12, 0));
    fixed[4] = json!("Persona");
    fixed[5] = json!("Prueba");
    emu.edit_response(2, fixed);
    engine.cycle(at(T0) + SignedDuration::from_mins(75)).unwrap();
    let edited = by_row(&engine)[&2].clone();
    assert_ne!(edited.state.name(), StateName::NeedsInfo, "{}", edited.state.reason());
    assert_eq!(edited.submission.department, "Secretaría General", "the edit is applied");
    assert_eq!(edited.submission.submitted_at, submitted, "the first submission's time");

    // The Sheets API disabled in the project: said as such, not as a sharing problem.
    emu.set_api_enabled(false);
    let error =
        engine.cycle(at(T0) + SignedDuration::from_mins(80)).unwrap().source_error.unwrap_or_default();
    assert!(
        error.contains("Google Sheets API is not enabled in the service account's Google Cloud project"),
        "{error}"
    );
    assert!(!error.contains("share it"), "{error}");
    emu.set_api_enabled(true);

    // The token endpoint down: an outage, waited out, not a bad key.
    let demo = Demo::new();
    use_sheet(&demo, &emu, None, "service-account", "");
    emu.token_endpoint_down(2);
    let mut engine = Engine::new(demo.config()).unwrap();
    let error = engine.cycle(at(T0)).unwrap().source_error.unwrap_or_default();
    assert!(error.contains("cannot reach Google Sheets: token endpoint"), "{error}");
    assert!(!error.contains("refused the service account"), "{error}");
    let mut registered = 0;
    for minute in 1..=10 {
        registered += engine.cycle(at(T0) + SignedDuration::from_mins(minute)).unwrap().registered;
    }
    assert_eq!(registered, 1, "read once the endpoint is back, within the first backoffs");
}

/// Issue 22 with the form's provenance on: a response waiting for its option to be mapped is
/// read again once it is, unchanged; that is not taken for a hand edit of the spreadsheet.
#[test]
fn a_response_read_again_for_its_mapped_option_is_not_a_hand_edit() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    emu.set_rows(vec![demo_rows(&demo).remove(0)]);
    emu.create_form("1FAIpQLSe-formulario_upme");
    let forms =
        format!("form_id = \"1FAIpQLSe-formulario_upme\"\nforms_api_base_url = \"{}\"\n", emu.base_url());
    use_sheet(&demo, &emu, None, "service-account", &forms);
    let mut row = creation_row(1, serial(jiff::civil::date(2026, 11, 27).at(7, 55, 3, 0)));
    row[2] = json!("Vinculación de funcionario");
    emu.submit(row);
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    assert_eq!(by_row(&engine)[&2].state.name(), StateName::Received);
    drop(engine);

    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let mapped =
        config.replace("[form.kinds]\n", "[form.kinds]\n\"Vinculación de funcionario\" = \"create\"\n");
    std::fs::write(demo.path("cuentas.toml"), mapped).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0) + SignedDuration::from_mins(5)).unwrap();
    let r = &by_row(&engine)[&2];
    // Decided on its answers (this row's names hold digits: asked back of the requester).
    assert_eq!(r.submission.kind, Some(cuentas::request::Kind::Create));
    assert_eq!(r.state.name(), StateName::NeedsInfo, "{:?}", r.history);
    assert!(r.history.iter().any(|h| h.reason.contains("leída de nuevo con las opciones del formulario")));
    assert!(
        !r.history.iter().any(|h| h.reason.contains("sin una edición del formulario")),
        "{:?}",
        r.history
    );
    assert!(!demo.mails().iter().any(|m| m.subject.contains("cambiada a mano")), "no tampering alert");
}

/// Issue 22: the service desk's form read from its own tab, with its form's record of its
/// responses: a response the form wrote is acted on and answered; a row typed into the tab by
/// hand, under the desk's own address, is not acted on, its address is not written to, and the
/// administrators are told.
#[test]
fn the_desk_form_s_tab_is_acted_on_only_where_its_form_wrote() {
    const DESK_TAB: &str = "Respuestas de la mesa";
    const DESK_FORM: &str = "1FAIpQLSe-mesa_upme";
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, DESK_TAB, "America/Bogota");
    let header =
        ["Marca temporal", "Dirección de correo electrónico", "Solicitud", "Acción", "Paso", "Observaciones"];
    emu.set_rows(vec![header.iter().map(|h| json!(h)).collect()]);
    emu.add_tab(TAB, demo_rows(&demo));
    emu.create_form(DESK_FORM);
    use_sheet(
        &demo,
        &emu,
        Some(TAB),
        "service-account",
        &format!("forms_api_base_url = \"{}\"\n", emu.base_url()),
    );
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let desk = config.replace(
        "[desk]\npath = \"mesa.csv\"\n",
        &format!("[desk]\nsheet = \"{DESK_TAB}\"\nform_id = \"{DESK_FORM}\"\n"),
    );
    assert_ne!(config, desk);
    std::fs::write(demo.path("cuentas.toml"), desk).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2026-11-30T15:00:00Z")).unwrap();
    assert_eq!(by_row(&engine)[&8].state.name(), StateName::Manual);

    let sent = |h: i8, m: i8| serial(jiff::civil::date(2026, 11, 30).at(h, m, 0, 0));
    let row = |at: f64, who: &str, id: &str, action: &str, step: &str, note: &str| -> Vec<Value> {
        vec![json!(at), json!(who), json!(id), json!(action), json!(step), json!(note)]
    };
    emu.submit(row(
        sent(10, 5),
        "laura.gomez@upme.gov.co",
        "GU-2026-000007",
        "Marcar como atendida",
        "",
        "Se cambió en su puesto.",
    ));
    // Typed into the tab under Laura's address: a step confirmed that nobody made.
    emu.append_row(row(
        sent(10, 6),
        "laura.gomez@upme.gov.co",
        "GU-2026-000013",
        "Confirmar paso de la eliminación",
        "Copia de seguridad del correo",
        "",
    ));
    engine.cycle(at("2026-11-30T15:10:00Z")).unwrap();
    let requests = by_row(&engine);
    let reset = &requests[&8];
    assert!(matches!(reset.state.name(), StateName::Notifying | StateName::Closed), "{:?}", reset.state);
    let cuentas::request::State::AwaitingConfirmation { pending, .. } = &requests[&14].state else {
        panic!("{:?}", requests[&14].state)
    };
    assert_eq!(pending.len(), 7, "nothing confirmed by the typed row");
    let mails = demo.mails();
    let answers: Vec<_> = mails.iter().filter(|m| m.message_id.starts_with("<mesa.")).collect();
    assert_eq!(answers.len(), 1, "only the form's response is answered");
    assert!(answers[0].subject.contains("GU-2026-000007"), "{}", answers[0].subject);
    let alert = mails.iter().find(|m| m.subject.contains("Fila escrita a mano en el formulario de la mesa"));
    let alert = alert.expect("the administrators are told");
    assert_eq!(alert.to, "infraestructura@upme.gov.co");
    assert!(alert.body.contains("La fila 3"), "{}", alert.body);
}

/// A creation that waits on its requester (`NeedsInfo`) for one thing only: the personal
/// address lacks the end of its domain, which an edit of the row can fix. Names are letters.
fn waiting_row(n: usize, when: f64) -> Vec<Value> {
    let letters: String = n.to_string().bytes().map(|d| char::from(b'a' + (d - b'0'))).collect();
    let mut row = creation_row(n, when);
    row[4] = json!(format!("Persona {}", letters.to_uppercase()));
    row[5] = json!(format!("Prueba {letters}"));
    row[8] = json!(format!("persona{n}@gmail"));
    row
}

/// A creation refused at once, and so closed: its requester is not of the entity.
fn refused_row(n: usize, when: f64) -> Vec<Value> {
    let mut row = creation_row(n, when);
    row[1] = json!(format!("alguien{n}@gmail.com"));
    row
}

/// The requests read from a batchGet in the emulator's log.
fn batch_gets(emu: &Emulator) -> Vec<(String, String, u16)> {
    emu.log().into_iter().filter(|(_, path, _)| path.contains("values:batchGet")).collect()
}

/// The edit check of a thousand scattered open requests: every URL within 2 KB, and at most 600
/// rows a cycle (some 20 calls, within Google's 60 reads a minute), so the pass takes two cycles
/// and then waits for its interval.
#[test]
fn the_edit_check_of_a_thousand_scattered_open_requests_keeps_every_url_within_2_kb() {
    let demo = Demo::new();
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    let mut rows = vec![demo_rows(&demo).remove(0)];
    // Rows 2, 5, 8 … 2999 wait on their requesters; the rows between are closed: no two open
    // rows touch, so each is a range of its own.
    rows.extend(
        (0..3000).map(|n| if n % 3 == 0 { waiting_row(n, 46_350.5) } else { refused_row(n, 46_350.5) }),
    );
    emu.set_rows(rows);
    use_sheet(&demo, &emu, None, "service-account", "edit_check_interval_secs = 600\n");
    let mut engine = Engine::new(demo.config()).unwrap();
    let t0 = at(T0);
    let mut report = CycleReport::default();
    engine.ingest(t0, &mut report).unwrap();
    assert_eq!((report.registered, report.source_error), (3000, None));
    let requests = by_row(&engine);
    let open: Vec<u32> = requests.values().filter(|r| r.is_open()).map(|r| r.row).collect();
    assert_eq!(open, (2..=2999).step_by(3).collect::<Vec<u32>>());
    assert!(open.iter().all(|row| requests[row].state.name() == StateName::NeedsInfo));

    // Two requesters fix rows 1502 (the 501st open request) and 2702 (the 901st), and a new
    // response comes in.
    for (row_number, n) in [(1502, 1500), (2702, 2700)] {
        let mut row = emu.rows()[row_number - 1].clone();
        assert_eq!(row[8], json!(format!("persona{n}@gmail")));
        row[8] = json!(format!("persona{n}@gmail.com"));
        emu.set_row(u32::try_from(row_number).unwrap(), row);
    }
    emu.append_row(creation_row(3000, 46_353.4));
    emu.reset_counters();
    let mut report = CycleReport::default();
    engine.ingest(t0 + SignedDuration::from_mins(11), &mut report).unwrap();
    assert_eq!((report.registered, report.edited, report.source_error), (1, 1, None));
    let after = by_row(&engine);
    assert_ne!(after[&1502].state.name(), StateName::NeedsInfo, "{}", after[&1502].state.reason());
    assert_eq!(after[&1502].id, requests[&1502].id);
    assert_eq!(after[&2702].state.name(), StateName::NeedsInfo, "not in the first slice");
    assert_eq!(after[&3002].submission.id_number, "1000003000");
    let first = batch_gets(&emu).len();
    assert!((2..=20).contains(&first), "{first} batchGets in the first slice");
    let longest = emu.longest_url();
    // The next cycle reads the rest, and the pass is done.
    emu.reset_counters();
    let mut report = CycleReport::default();
    engine.ingest(t0 + SignedDuration::from_mins(12), &mut report).unwrap();
    assert_eq!((report.registered, report.edited, report.source_error), (0, 1, None));
    assert_ne!(by_row(&engine)[&2702].state.name(), StateName::NeedsInfo);
    let second = batch_gets(&emu).len();
    assert!((1..=20).contains(&second), "{second} batchGets in the second slice");
    let longest = std::cmp::max_by_key(longest, emu.longest_url(), String::len);
    emu.reset_counters();
    engine.ingest(t0 + SignedDuration::from_mins(13), &mut CycleReport::default()).unwrap();
    assert!(batch_gets(&emu).is_empty(), "the pass is done: the next waits for its interval");

    let log = emu.log();
    assert!(log.iter().all(|(_, _, status)| *status == 200), "{log:?}");
    let calls = first + second;
    eprintln!("edit check of 1000 scattered rows: {calls} batchGet(s), longest URL {} bytes", longest.len());
    assert!(longest.len() <= 2048, "{} bytes: {longest}", longest.len());
    // About 30 ranges fit in 2 KB: the 1000 rows take a few dozen calls, not one per row.
    assert!((2..=40).contains(&calls), "{calls} batchGets");
}

#[test]
fn an_edit_check_google_refuses_does_not_hold_back_new_responses() {
    let (_demo, emu, mut engine) = polled_sheet_demo("edit_check_interval_secs = 600\n");
    let t0 = at(T0);
    let minutes = |m| t0 + SignedDuration::from_mins(m);
    // Row 22's requester fixes the row (as in the test above) while Google fails the edit
    // check's batchGet; a new response comes in meanwhile.
    let mut row = emu.rows()[21].clone();
    row[8] = json!("santiago.ruiz@gmail.com");
    emu.set_row(22, row);
    emu.append_row(creation_row(1, 46_353.4));
    emu.fail_next_batch_get(500, 1);
    emu.reset_counters();
    let report = engine.cycle(minutes(11)).unwrap();
    assert_eq!((report.registered, report.edited, report.source_error), (1, 0, None));
    assert_eq!(batch_gets(&emu).iter().map(|c| c.2).collect::<Vec<_>>(), [500]);
    // The check was not done: it is tried again at the next cycle, not ten minutes later.
    emu.reset_counters();
    let report = engine.cycle(minutes(12)).unwrap();
    assert_eq!((report.edited, report.source_error), (1, None));
    assert_eq!(batch_gets(&emu).iter().map(|c| c.2).collect::<Vec<_>>(), [200]);
    assert_eq!(by_row(&engine)[&22].state.name(), StateName::Closed);
    // Done now: the next cycle reads only the tail.
    emu.reset_counters();
    engine.cycle(minutes(13)).unwrap();
    assert!(batch_gets(&emu).is_empty(), "{:?}", emu.log());

    // A refusal a person would have to look into (a URL too long, say): the edit check waits
    // longer before it asks again, the tail goes on at every poll.
    emu.fail_next_batch_get(414, 100);
    emu.append_row(creation_row(2, 46_353.5));
    emu.reset_counters();
    let report = engine.cycle(minutes(23)).unwrap();
    assert_eq!((report.registered, report.source_error), (1, None));
    assert_eq!(batch_gets(&emu).iter().map(|c| c.2).collect::<Vec<_>>(), [414]);
    emu.append_row(creation_row(3, 46_353.6));
    emu.reset_counters();
    let report = engine.cycle(minutes(24)).unwrap();
    assert_eq!((report.registered, report.source_error), (1, None));
    assert!(batch_gets(&emu).is_empty(), "backing off: {:?}", emu.log());
    // Google answers again: after the wait, the check is done.
    emu.fail_next_batch_get(414, 0);
    emu.reset_counters();
    engine.cycle(minutes(34)).unwrap();
    assert_eq!(batch_gets(&emu).iter().map(|c| c.2).collect::<Vec<_>>(), [200]);
    let rows: BTreeSet<u32> = engine.store().requests().map(|r| r.unwrap().row).collect();
    assert_eq!(rows, (2..=36).collect());
}

#[test]
fn stopped_ingestion_stays_stopped_while_the_edit_check_fails() {
    let (_demo, emu, mut engine) = polled_sheet_demo("edit_check_interval_secs = 600\n");
    let t0 = at(T0);
    // Row 22 (an open request) now holds another requester's answers: rows were moved.
    let mut row = emu.rows()[21].clone();
    row[1] = json!("camila.torres@upme.gov.co");
    emu.set_row(22, row);
    let report = engine.cycle(t0 + SignedDuration::from_mins(11)).unwrap();
    assert!(report.halted.is_some(), "{report:?}");
    // The edit check fails: nothing says the rows are back, so a new response waits.
    emu.append_row(creation_row(1, 46_353.4));
    emu.fail_next_batch_get(503, 100);
    let report = engine.cycle(t0 + SignedDuration::from_mins(12)).unwrap();
    assert_eq!(report.registered, 0);
    assert!(report.source_error.is_some(), "{report:?}");
    assert!(!by_row(&engine).contains_key(&34));
}

#[test]
fn google_s_front_end_refuses_a_url_past_8_kb() {
    use std::io::{Read, Write};
    let emu = Emulator::start(SPREADSHEET, TAB, "America/Bogota");
    let base = emu.base_url();
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let path = |total: usize| {
        let start = format!("/v4/spreadsheets/{SPREADSHEET}/values:batchGet?ranges=");
        let fill = total - format!("http://{host}").len() - start.len();
        format!("{start}{}", "A".repeat(fill))
    };
    let answer = get(&path(8 * 1024 + 1));
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(answer.contains("too large to process"), "{answer}");
    assert_eq!(emu.longest_url().len(), 8 * 1024 + 1);
    // At the limit it gets through to the API, which wants a token.
    emu.reset_counters();
    let answer = get(&path(8 * 1024));
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert_eq!(emu.longest_url().len(), 8 * 1024);
}
