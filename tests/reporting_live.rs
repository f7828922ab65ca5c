//! Live test of the weekly report mail through the test SMTP server: sent once, on its day
//! from the start of the working day, with its chart inline.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, letters, unique};
use common::case::{Case, create_row, t};
use jiff::Timestamp;

fn bogota(local: &str) -> Timestamp {
    let civil: jiff::civil::DateTime = local.parse().unwrap();
    civil.to_zoned(jiff::tz::TimeZone::get("America/Bogota").unwrap()).unwrap().timestamp()
}

#[test]
#[ignore = "live: the test AD DC and SMTP relay (tests/run.sh runs them)"]
fn the_weekly_report_arrives_once_with_its_chart_inline() {
    let ad = Ad::from_env();
    let env = common::smtp::env();
    let u = unique();
    let rows = [
        create_row(&u, "Funcionario", "Rita", &format!("Informe{}", letters(&u)), "Energía", &[]),
        create_row(
            &format!("{u}1"),
            "Funcionario",
            "Raul",
            &format!("Informe{}", letters(&u)),
            "Energía",
            &[],
        ),
    ];
    let case = Case::new(&ad, &rows, "");
    let sink = common::smtp::Sink::start(&env, &case.dir.path().join("Maildir"), 0);
    let config = case.dir.path().join("cuentas.toml");
    let text = common::smtp::through(&std::fs::read_to_string(&config).unwrap(), &env, sink.port)
        + "\n[report]\nrecipients = [\"direccion@upme.test\", \"mesa@upme.test\"]\nweekday = \"monday\"\n";
    std::fs::write(&config, text).unwrap();
    let mut case = case.reopen();
    // Friday 27 November: two creations. The report goes on Monday from 07:30, once.
    case.engine.cycle(t(0)).unwrap();
    let reports = || {
        sink.mails()
            .into_iter()
            .filter(|m| m.subject.starts_with("Reporte de gestión de usuarios"))
            .collect::<Vec<_>>()
    };
    for at in ["2026-11-29T12:00:00", "2026-11-30T07:29:00"] {
        case.engine.cycle(bogota(at)).unwrap();
        assert!(reports().is_empty(), "at {at}");
    }
    for at in ["2026-11-30T07:30:00", "2026-11-30T08:00:00", "2026-11-30T16:00:00"] {
        case.engine.cycle(bogota(at)).unwrap();
    }
    let sent = reports();
    // One message, to its two recipients.
    assert_eq!(sent.len(), 1, "{:?}", sent.iter().map(|m| &m.to).collect::<Vec<_>>());
    let report = &sent[0];
    assert_eq!(report.to, "direccion@upme.test, mesa@upme.test");
    assert_eq!(report.subject, "Reporte de gestión de usuarios del 2026-11-23 al 2026-11-29");
    assert_eq!(report.message_id, "<reporte.2026-11-30@upme.test>");
    assert!(report.body.contains("Solicitudes recibidas:"), "{}", report.body);
    assert!(report.body.contains("Atendidas:"), "{}", report.body);
    // The chart: a PNG part the HTML shows by its Content-ID.
    let raw = &report.raw;
    assert!(raw.contains("Content-Type: multipart/related"), "{raw}");
    assert!(raw.contains("Content-Type: image/png"), "{raw}");
    assert!(raw.contains("Content-ID: <grafico>"), "{raw}");
    assert!(raw.contains("cid:grafico"), "{raw}");
    let png = png_part(raw);
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Down all the next Monday, back on Tuesday: that week's report goes then, once.
    for at in ["2026-12-08T09:00:00", "2026-12-08T10:00:00"] {
        case.engine.cycle(bogota(at)).unwrap();
    }
    let subjects: Vec<String> = reports().into_iter().map(|m| m.subject).collect();
    assert_eq!(
        subjects
            .iter()
            .filter(|s| s.as_str() == "Reporte de gestión de usuarios del 2026-11-30 al 2026-12-06")
            .count(),
        1,
        "{subjects:?}"
    );
    assert_eq!(subjects.len(), 2, "{subjects:?}");
}

/// The decoded image part of a message.
fn png_part(raw: &str) -> Vec<u8> {
    use base64::Engine as _;
    let start = raw.find("Content-Type: image/png").unwrap();
    let part = &raw[start..];
    let body = part.split_once("\n\n").unwrap().1;
    let encoded: String = body.lines().take_while(|l| !l.starts_with("--")).collect::<Vec<_>>().concat();
    base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap()
}
