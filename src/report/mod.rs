//! The report of the work done (*el reporte de la gestión realizada*), pure: for the requests
//! submitted in a period, how many of each kind ended in each state; how many were carried out,
//! refused, routed to another procedure or closed otherwise; the service level met by the
//! kinds the procedure measures, and their business hours to close (median and 95th
//! percentile); open requests at risk, and every breach with the time it spent in each state.
//! Printed as a table, CSV or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::calendar::Calendar;
use crate::config::SlaConfig;
use crate::request::{Kind, Request, RequestId, StateName};
use crate::sla;

pub mod chart;
pub mod evidence;

/// Share of its service level an open request must have consumed to be at risk, in percent.
const AT_RISK: i64 = 80;

/// Whether the service level of `kind` is measured: the procedure's *10 horas hábiles* are for
/// the creation and notification of accounts (a creation, and a *cesión*, which creates the
/// new contractor's), and a kind the entity set its own target for in `[sla] hours` is
/// measured against it. Other kinds are followed (warned at 80 %), not measured.
pub fn measured(kind: Option<Kind>, sla: &SlaConfig) -> bool {
    match kind {
        Some(Kind::Create | Kind::Assignment) => true,
        Some(Kind::OutOfScope) | None => false,
        Some(k) => sla.hours.contains_key(k.key()),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from: Date,
    pub to: Date,
    pub requests: usize,
    /// Kind (its label) → state → count.
    pub by_kind: BTreeMap<String, BTreeMap<String, usize>>,
    /// Requests carried out: closed with the work done (`Closed`).
    pub answered: usize,
    /// Refused: not authorized, or about an account that may not be touched (`Rejected`).
    pub refused: usize,
    /// Not user management: pointed to the IT service-request procedure (`Routed`).
    pub routed: usize,
    /// Closed otherwise: cancelled, a repetition, replaced by a newer response, without effect
    /// (`Cancelled`).
    pub other_closed: usize,
    /// Still open.
    pub open: usize,
    /// The kinds whose service level is measured ([`measured`]), by label.
    pub measured_kinds: Vec<String>,
    /// Requests of a measured kind carried out: their service level is final.
    pub measured: usize,
    /// Of those, the ones carried out within their service level.
    pub met: usize,
    /// `met / measured` in percent, one decimal; `None` with nothing measured.
    pub met_percent: Option<f64>,
    /// Business hours from submission to answer of the measured requests: median, and 95th
    /// percentile (nearest rank).
    pub median_hours: Option<f64>,
    pub p95_hours: Option<f64>,
    pub at_risk: Vec<AtRisk>,
    /// Requests of a measured kind, carried out or open, past their service level.
    pub breaches: Vec<Breach>,
    /// Each day of the period: what the chart draws.
    pub days: Vec<Day>,
}

/// One day's figures: requests submitted that day, and of those of a measured kind carried
/// out, how many in time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    pub date: Date,
    pub submitted: usize,
    pub measured: usize,
    pub met: usize,
}

impl Day {
    /// The share carried out within the service level, in percent; `None` with nothing measured.
    pub fn met_percent(&self) -> Option<f64> {
        (self.measured > 0).then(|| round1(self.met as f64 * 100.0 / self.measured as f64))
    }
}

/// The lines the report lists are kept for a whole year of requests: their words are the
/// program's own (`&'static str`), and the id is the id, so each costs no allocation of its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AtRisk {
    pub id: RequestId,
    pub kind: &'static str,
    pub state: &'static str,
    pub percent: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Breach {
    pub id: RequestId,
    pub kind: &'static str,
    pub state: &'static str,
    pub consumed_hours: f64,
    pub target_hours: u32,
    /// Business hours spent in each state, in the order first entered (`unread`: before
    /// cuentas read the row).
    pub hours_in: Vec<(&'static str, f64)>,
}

/// Where the requests submitted on `from` or after begin in the store: the year of their ids,
/// and the time they were received from. A request is numbered in the local year it was read,
/// and read once it was submitted, never before. Two days earlier, so that a time zone changed
/// since cannot move one across the day or the new year.
pub fn earliest(from: Date, calendar: &Calendar) -> (i16, Timestamp) {
    let day = from.checked_sub(jiff::Span::new().days(2)).unwrap_or(from);
    let since = day.to_zoned(calendar.time_zone().clone()).map_or(Timestamp::MIN, |z| z.timestamp());
    (day.year(), since)
}

/// The report for the requests submitted (by the form's timestamp, local date) from `from` to
/// `to`, both included, as of `now`.
pub fn build(
    requests: impl IntoIterator<Item = Request>,
    calendar: &Calendar,
    sla_config: &SlaConfig,
    from: Date,
    to: Date,
    now: Timestamp,
) -> Report {
    let mut tally = Tally::new(calendar, sla_config, from, to, now);
    for r in requests {
        tally.add(&Summary::of(&r));
    }
    tally.finish()
}

/// What the report reads of a request: its kind, its state, and its service level's
/// [`sla::Timeline`]. The store keeps one beside each record (no personal data in it), so that
/// a report over a year reads these and not the records, which sled would keep in memory.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Summary {
    pub id: RequestId,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(rename = "s")]
    pub state: StateName,
    #[serde(rename = "t")]
    pub timeline: sla::Timeline,
}

impl Summary {
    pub fn of(r: &Request) -> Summary {
        Summary { id: r.id, kind: r.submission.kind, state: r.state.name(), timeline: sla::Timeline::of(r) }
    }
}

/// The report built one request at a time, as the store hands them out: what it keeps is the
/// figures and the lines it lists (requests at risk, breaches), never the requests, so that a
/// year of them costs the time to read them and not the memory to hold them.
pub struct Tally<'a> {
    calendar: &'a Calendar,
    sla_config: &'a SlaConfig,
    now: Timestamp,
    report: Report,
    /// Business hours to answer of the measured requests, for the median and the percentile.
    hours_to_answer: Vec<f64>,
}

impl<'a> Tally<'a> {
    /// An empty report of the requests submitted from `from` to `to`, both included, as of `now`.
    pub fn new(
        calendar: &'a Calendar,
        sla_config: &'a SlaConfig,
        from: Date,
        to: Date,
        now: Timestamp,
    ) -> Self {
        let report = Report {
            from,
            to,
            requests: 0,
            by_kind: BTreeMap::new(),
            answered: 0,
            refused: 0,
            routed: 0,
            other_closed: 0,
            open: 0,
            measured_kinds: Kind::ALL
                .into_iter()
                .filter(|k| measured(Some(*k), sla_config))
                .map(|k| k.label().to_string())
                .collect(),
            measured: 0,
            met: 0,
            met_percent: None,
            median_hours: None,
            p95_hours: None,
            at_risk: Vec::new(),
            breaches: Vec::new(),
            days: from
                .series(jiff::Span::new().days(1))
                .take_while(|d| *d <= to)
                .take(366)
                .map(|date| Day { date, submitted: 0, measured: 0, met: 0 })
                .collect(),
        };
        Tally { calendar, sla_config, now, report, hours_to_answer: Vec::new() }
    }

    /// Counts `r` if it was submitted in the period; any other request is passed over.
    pub fn add(&mut self, r: &Summary) {
        let (calendar, sla_config, now) = (self.calendar, self.sla_config, self.now);
        let report = &mut self.report;
        let day = r.timeline.start(calendar).to_zoned(calendar.time_zone().clone()).date();
        if day < report.from || day > report.to {
            return;
        }
        report.requests += 1;
        // The days run one by one from `from`: a request's day is found by its distance, not by
        // looking through the year for it.
        let index = report
            .days
            .first()
            .map(|first| day.duration_since(first.date).as_hours() / 24)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|i| report.days.get(*i).is_some_and(|d| d.date == day));
        let kind = r.kind.map_or("(sin tipo)", |k| k.label());
        if let Some(d) = index.map(|i| &mut report.days[i]) {
            d.submitted += 1;
        }
        let state = r.state;
        // The keys are made once per kind and state, not once per request.
        let states = match report.by_kind.get_mut(kind) {
            Some(states) => states,
            None => report.by_kind.entry(kind.to_string()).or_default(),
        };
        match states.get_mut(state.as_str()) {
            Some(n) => *n += 1,
            None => {
                states.insert(state.to_string(), 1);
            }
        }
        match state {
            StateName::Closed => report.answered += 1,
            StateName::Rejected => report.refused += 1,
            StateName::Routed => report.routed += 1,
            StateName::Cancelled => report.other_closed += 1,
            _ => report.open += 1,
        }
        let measured = measured(r.kind, sla_config);
        // Refused, routed and otherwise closed requests are not measured, nor are requests of
        // a kind the procedure sets no time for once closed: their time is not read at all.
        if state.is_closed() && !(state == StateName::Closed && measured) {
            return;
        }
        let target = sla_config.hours_for(r.kind);
        let m = r.timeline.measure(calendar, target, now);
        if state == StateName::Closed && measured {
            report.measured += 1;
            report.met += usize::from(!m.broken());
            self.hours_to_answer.push(hours(m.consumed));
            if let Some(d) = index.map(|i| &mut report.days[i]) {
                d.measured += 1;
                d.met += usize::from(!m.broken());
            }
        }
        if !state.is_closed() && m.percent() >= AT_RISK {
            report.at_risk.push(AtRisk { id: r.id, kind, state: state.as_str(), percent: m.percent() });
        }
        if m.broken() && measured {
            report.breaches.push(Breach {
                id: r.id,
                kind,
                state: state.as_str(),
                consumed_hours: hours(m.consumed),
                target_hours: target,
                hours_in: time_in_states(r, calendar, now),
            });
        }
    }

    /// The report of the requests counted.
    pub fn finish(mut self) -> Report {
        let report = &mut self.report;
        if report.measured > 0 {
            report.met_percent = Some(round1(report.met as f64 * 100.0 / report.measured as f64));
        }
        self.hours_to_answer.sort_by(f64::total_cmp);
        report.median_hours = median(&self.hours_to_answer);
        report.p95_hours = nearest_rank(&self.hours_to_answer, 95);
        self.report
    }
}

/// Business hours spent in each state, from the history (to `now` for the current one).
fn time_in_states(r: &Summary, calendar: &Calendar, now: Timestamp) -> Vec<(&'static str, f64)> {
    let (timeline, changes) = (&r.timeline, &r.timeline.changes);
    let mut spent: Vec<(&'static str, SignedDuration)> = Vec::new();
    // From the form's timestamp to when cuentas read the row (the daemon was down, or the row
    // came in after a poll).
    let start = timeline.start(calendar);
    if start < timeline.received_at {
        spent.push(("unread", calendar.business_hours_between(start, timeline.received_at)));
    }
    for (i, (at, state)) in changes.iter().enumerate() {
        if state.is_closed() {
            break;
        }
        let until = changes.get(i + 1).map_or(now, |(next, _)| *next);
        let d = calendar.business_hours_between(*at, until);
        match spent.iter_mut().find(|(s, _)| *s == state.as_str()) {
            Some((_, total)) => *total += d,
            None => spent.push((state.as_str(), d)),
        }
    }
    spent.into_iter().map(|(s, d)| (s, hours(d))).collect()
}

fn hours(d: SignedDuration) -> f64 {
    round2(d.as_secs_f64() / 3600.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The middle value (the mean of the two middle ones for an even count) of sorted values.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(round2((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0)),
    }
}

/// The `p`th percentile by nearest rank: the smallest value with at least `p` % of the values
/// at or below it.
fn nearest_rank(sorted: &[f64], p: usize) -> Option<f64> {
    let n = sorted.len();
    (n > 0).then(|| sorted[(p * n).div_ceil(100).max(1) - 1])
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| format!("{v}"))
}

/// The items joined by commas, or `-` when there are none.
/// A state's name, as the report keeps it, in Spanish for the mail.
fn spanish(state: &str) -> &str {
    match state.parse::<crate::request::StateName>() {
        Ok(name) => name.label(),
        Err(_) => state,
    }
}

fn or_none(items: &[String]) -> String {
    if items.is_empty() { "-".to_string() } else { items.join(", ") }
}

impl Report {
    /// For a person at a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Requests submitted from {} to {}: {}", self.from, self.to, self.requests);
        let _ = writeln!(out, "\nBy kind and state:");
        for (kind, states) in &self.by_kind {
            let states: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
            let _ = writeln!(out, "  {kind:<28} {}", states.join(", "));
        }
        let _ = writeln!(
            out,
            "\nCarried out: {}; refused: {}; routed to another procedure: {}; closed otherwise \
             (cancelled, repeated, replaced, without effect): {}; open: {}",
            self.answered, self.refused, self.routed, self.other_closed, self.open
        );
        let _ = writeln!(out, "\nService level measured for: {}", or_none(&self.measured_kinds));
        let _ = writeln!(
            out,
            "  Carried out: {}; within the service level: {} ({} %)",
            self.measured,
            self.met,
            opt(self.met_percent)
        );
        let _ = writeln!(
            out,
            "  Business hours to answer: median {}, 95th percentile {}",
            opt(self.median_hours),
            opt(self.p95_hours)
        );
        let _ = writeln!(
            out,
            "\nOpen requests at risk (≥ {AT_RISK} % of their service level): {}",
            self.at_risk.len()
        );
        for r in &self.at_risk {
            let _ = writeln!(out, "  {}  {:<28} {:<20} {} %", r.id, r.kind, r.state, r.percent);
        }
        let _ = writeln!(out, "\nBreaches: {}", self.breaches.len());
        for b in &self.breaches {
            let spent: Vec<String> = b.hours_in.iter().map(|(s, h)| format!("{s} {h} h")).collect();
            let _ = writeln!(
                out,
                "  {}  {:<28} {:<20} {} h of {} h; {}",
                b.id,
                b.kind,
                b.state,
                b.consumed_hours,
                b.target_hours,
                spent.join(", ")
            );
        }
        out
    }

    /// The figures in Spanish, for the report mail.
    pub fn resumen(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Solicitudes recibidas: {}", self.requests);
        let _ = writeln!(out, "  Atendidas (gestión realizada): {}", self.answered);
        let _ = writeln!(out, "  Rechazadas (no autorizadas o no procedentes): {}", self.refused);
        let _ = writeln!(out, "  Redirigidas a otro procedimiento de TI: {}", self.routed);
        let _ = writeln!(
            out,
            "  Cerradas sin gestión (canceladas, repetidas, reemplazadas o sin efecto): {}",
            self.other_closed
        );
        let _ = writeln!(out, "  Abiertas: {}", self.open);
        let _ = writeln!(out, "\nPor tipo y estado:");
        for (kind, states) in &self.by_kind {
            let states: Vec<String> = states.iter().map(|(s, n)| format!("{} {n}", spanish(s))).collect();
            let _ = writeln!(out, "  {kind}: {}", states.join(", "));
        }
        let _ = writeln!(out, "\nANS medido en: {}", or_none(&self.measured_kinds));
        let _ = writeln!(
            out,
            "  Atendidas: {}; dentro del ANS: {} ({} %)",
            self.measured,
            self.met,
            opt(self.met_percent)
        );
        let _ = writeln!(
            out,
            "  Horas hábiles para atender: mediana {}, percentil 95: {}",
            opt(self.median_hours),
            opt(self.p95_hours)
        );
        let _ = writeln!(out, "Abiertas en riesgo (≥ {AT_RISK} % del ANS): {}", self.at_risk.len());
        for r in &self.at_risk {
            let _ = writeln!(out, "  {} {} ({}, {} %)", r.id, r.kind, spanish(r.state), r.percent);
        }
        let _ = writeln!(out, "ANS incumplidos: {}", self.breaches.len());
        for b in &self.breaches {
            let _ = writeln!(out, "  {} {} ({} h de {} h)", b.id, b.kind, b.consumed_hours, b.target_hours);
        }
        out
    }

    /// One figure a line: `section,id or kind,state,value` (a spreadsheet pivots it).
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut row = |cells: [&str; 4]| {
            let _ = w.write_record(cells);
        };
        row(["section", "key", "state", "value"]);
        row(["period", &self.from.to_string(), "", &self.to.to_string()]);
        row(["requests", "", "", &self.requests.to_string()]);
        for (kind, states) in &self.by_kind {
            for (state, n) in states {
                row(["by_kind", kind, state, &n.to_string()]);
            }
        }
        row(["answered", "", "", &self.answered.to_string()]);
        row(["refused", "", "", &self.refused.to_string()]);
        row(["routed", "", "", &self.routed.to_string()]);
        row(["other_closed", "", "", &self.other_closed.to_string()]);
        row(["open", "", "", &self.open.to_string()]);
        for kind in &self.measured_kinds {
            row(["measured_kind", kind, "", ""]);
        }
        row(["measured", "", "", &self.measured.to_string()]);
        row(["met", "", "", &self.met.to_string()]);
        row(["met_percent", "", "", &opt(self.met_percent)]);
        row(["median_hours", "", "", &opt(self.median_hours)]);
        row(["p95_hours", "", "", &opt(self.p95_hours)]);
        for r in &self.at_risk {
            row(["at_risk", &r.id.to_string(), r.state, &r.percent.to_string()]);
        }
        for b in &self.breaches {
            let id = b.id.to_string();
            row(["breach", &id, b.state, &b.consumed_hours.to_string()]);
            for (state, h) in &b.hours_in {
                row(["breach_hours_in", &id, state, &h.to_string()]);
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{DateTime, date};

    use super::*;
    use crate::request::{Actor, RequestId, State, Submission};

    fn calendar() -> Calendar {
        Calendar::new("America/Bogota", jiff::civil::time(7, 30, 0, 0), jiff::civil::time(17, 0, 0, 0), &[])
            .unwrap()
    }

    fn at(local: &str) -> Timestamp {
        let dt: DateTime = local.parse().unwrap();
        dt.to_zoned(calendar().time_zone().clone()).unwrap().timestamp()
    }

    /// A request of `kind` submitted at `submitted` (local), moved through `moves`.
    fn request(seq: u32, kind: Kind, submitted: &str, moves: Vec<(State, &str)>) -> Request {
        let s = Submission {
            kind: Some(kind),
            submitted_at: Some(submitted.parse().unwrap()),
            ..Submission::default()
        };
        let mut r =
            Request::new(RequestId { year: 2026, seq }, seq + 1, "h".into(), s, at(submitted), at(submitted));
        for (state, when) in moves {
            r.transition(state, Actor::Daemon, "x", at(when)).unwrap();
        }
        r
    }

    /// The week of 23 November 2026: carried out, refused, routed, cancelled and open requests.
    fn week() -> Vec<Request> {
        let executing =
            || State::Executing { plan: Default::default(), attempts: 0, retry_at: None, released: false };
        let closed = || State::Closed { outcome: "x".into() };
        let done = |start: &'static str, end: &'static str| {
            vec![(executing(), start), (State::Notifying, end), (closed(), end)]
        };
        vec![
            // A creation in 2 h: measured, within.
            request(
                1,
                Kind::Create,
                "2026-11-23T08:00:00",
                done("2026-11-23T08:00:00", "2026-11-23T10:00:00"),
            ),
            // A creation in 12 h (Monday 08:00 to Tuesday 10:30): measured, breached.
            request(
                2,
                Kind::Create,
                "2026-11-23T08:00:00",
                done("2026-11-23T08:00:00", "2026-11-24T10:30:00"),
            ),
            // A disable by hand in 20 h: carried out, not measured (the procedure sets no time).
            request(
                3,
                Kind::Disable,
                "2026-11-23T10:00:00",
                vec![
                    (State::Manual { reason: "x".into() }, "2026-11-23T10:00:00"),
                    (State::Notifying, "2026-11-25T11:00:00"),
                    (closed(), "2026-11-25T11:00:00"),
                ],
            ),
            // Refused after 30 h: not measured.
            request(
                4,
                Kind::Create,
                "2026-11-23T08:00:00",
                vec![(State::Rejected { reason: "x".into() }, "2026-11-26T12:00:00")],
            ),
            // Another IT procedure's: not measured.
            request(
                5,
                Kind::OutOfScope,
                "2026-11-24T08:00:00",
                vec![(State::Routed { reason: "x".into() }, "2026-11-24T08:00:00")],
            ),
            // A repetition, cancelled.
            request(
                6,
                Kind::Create,
                "2026-11-25T08:00:00",
                vec![(State::Cancelled { reason: "x".into() }, "2026-11-25T08:00:00")],
            ),
            // Open.
            request(7, Kind::Create, "2026-11-27T08:00:00", vec![]),
        ]
    }

    #[test]
    fn requests_carried_out_are_told_from_refused_routed_and_cancelled_ones() {
        let sla = SlaConfig::default();
        let now = at("2026-11-27T09:00:00");
        let r = build(week(), &calendar(), &sla, date(2026, 11, 23), date(2026, 11, 29), now);
        assert_eq!(r.requests, 7);
        assert_eq!((r.answered, r.refused, r.routed, r.other_closed, r.open), (3, 1, 1, 1, 1));
        let resumen = r.resumen();
        for line in [
            "  Atendidas (gestión realizada): 3",
            "  Rechazadas (no autorizadas o no procedentes): 1",
            "  Redirigidas a otro procedimiento de TI: 1",
            "  Cerradas sin gestión (canceladas, repetidas, reemplazadas o sin efecto): 1",
            "  Abiertas: 1",
        ] {
            assert!(resumen.lines().any(|l| l == line), "«{line}» not in:\n{resumen}");
        }
        let csv = r.csv();
        for line in ["answered,,,3", "refused,,,1", "routed,,,1", "other_closed,,,1", "open,,,1"] {
            assert!(csv.lines().any(|l| l == line), "«{line}» not in:\n{csv}");
        }
    }

    #[test]
    fn the_service_level_share_counts_only_measured_kinds_carried_out() {
        let now = at("2026-11-27T09:00:00");
        let sla = SlaConfig::default();
        let r = build(week(), &calendar(), &sla, date(2026, 11, 23), date(2026, 11, 29), now);
        // The two creations carried out; not the disable (20 h), the refusal (30 h), the
        // routed, the cancelled nor the open one.
        assert_eq!(r.measured_kinds, ["Creación de cuenta", "Cesión de contrato"]);
        assert_eq!((r.measured, r.met, r.met_percent), (2, 1, Some(50.0)));
        assert_eq!(r.median_hours, Some(7.0));
        assert_eq!(r.breaches.iter().map(|b| b.id.to_string()).collect::<Vec<_>>(), ["GU-2026-000002"]);
        assert_eq!((r.days[0].measured, r.days[0].met), (2, 1));
        assert!(r.resumen().contains(
            "ANS medido en: Creación de cuenta, Cesión de contrato\n  Atendidas: 2; dentro del ANS: 1 (50 %)"
        ));
        // A kind the entity set its own target for is measured against it.
        let sla = SlaConfig { hours: [("disable".to_string(), 24)].into(), ..SlaConfig::default() };
        let r = build(week(), &calendar(), &sla, date(2026, 11, 23), date(2026, 11, 29), now);
        assert_eq!((r.measured, r.met, r.met_percent), (3, 2, Some(66.7)));
        assert!(r.measured_kinds.contains(&"Inactivación de cuenta".to_string()));
    }

    #[test]
    fn median_and_nearest_rank_percentile() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[0.0, 2.0, 3.5, 20.0]), Some(2.75));
        assert_eq!(nearest_rank(&[0.0, 2.0, 3.5, 20.0], 95), Some(20.0));
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        // 95 % of 20 values is 19: the 19th.
        assert_eq!(nearest_rank(&twenty, 95), Some(19.0));
        assert_eq!(nearest_rank(&[7.0], 95), Some(7.0));
    }
}
