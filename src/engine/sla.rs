//! The service level followed as the work goes: each request measured when it moves, the
//! service desk warned once at 80 % of an open request's time, a breach logged and recorded.

use jiff::Timestamp;
use tracing::{info_span, warn};

use super::{CycleReport, Engine, EngineError};
use crate::desk::DeskAction;
use crate::notify;
use crate::request::{Actor, Request, State};
use crate::sla::{self, Measure};
use crate::store::{Changes, MessageKind};

/// Share of the target at which the service desk is warned, in percent.
const WARN_AT: i64 = 80;

impl Engine {
    /// The request's service level as of `now`.
    pub(crate) fn sla_of(&self, request: &Request, now: Timestamp) -> Measure {
        let hours = self.config.sla.hours_for(request.submission.kind);
        sla::measure(request, &self.config.calendar, hours, now)
    }

    /// Records where the request stands (its deadline, consumed and remaining time).
    pub(super) fn measure_sla(&self, request: &mut Request, now: Timestamp) {
        let m = self.sla_of(request, now);
        request.sla_deadline = m.deadline;
        request.sla.consumed_secs = m.consumed.as_secs();
        request.sla.remaining_secs = m.remaining.as_secs();
    }

    /// Open requests: warned once at 80 % while their clock runs (to the service desk, with
    /// what holds each up), a breach logged and recorded once past 100 %. A request carried out
    /// whose outcome is on its way (`Notifying`) is done: its time is measured when it closes.
    pub(super) fn watch_sla(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        for id in self.store.due(now)? {
            let Some(mut request) = self.store.request(id)? else { continue };
            if matches!(request.state, State::Notifying) || !request.is_open() {
                continue;
            }
            let m = self.sla_of(&request, now);
            let warn_due = !m.paused && m.percent() >= WARN_AT && request.sla.warned_at.is_none();
            let breached = m.broken() && request.sla.breached_at.is_none();
            if !warn_due && !breached {
                continue;
            }
            let _span = info_span!("request", request_id = %request.id, row = request.row).entered();
            let tz = self.config.calendar.time_zone();
            if warn_due {
                request.sla.warned_at = Some(now);
                let detail = format!(
                    "Consumido: {} de {} ({} %). Vence{}: {}\nLo que la detiene: {}",
                    sla::hours(m.consumed),
                    sla::hours(m.target),
                    m.percent(),
                    if m.broken() { " (ya vencido)" } else { "" },
                    notify::spanish_datetime(m.deadline, tz),
                    holdup(self, &request)
                );
                request.note(
                    Actor::Daemon,
                    format!("aviso a la mesa de servicio: {} % del ANS consumido", m.percent()),
                    now,
                );
                self.queue(&mut request, MessageKind::SlaWarning, detail, now);
            }
            if breached {
                request.sla.breached_at = Some(now);
                // The id in the event itself: at RUST_LOG=warn the request's span is not shown.
                warn!(request_id = %request.id, state = %request.state.name(), consumed = %sla::hours(m.consumed), "service level breached");
                request.note(
                    Actor::Daemon,
                    format!(
                        "ANS incumplido: {} consumidas de {}",
                        sla::hours(m.consumed),
                        sla::hours(m.target)
                    ),
                    now,
                );
            }
            self.measure_sla(&mut request, now);
            let mut changes = Changes::new();
            self.stage(&mut changes, report, &request);
            self.store.commit(changes)?;
        }
        Ok(())
    }
}

/// The day the weekly report last fell due: `weekday`, once its working day has begun, not
/// after `local`.
fn last_report_day(
    local: &jiff::Zoned,
    weekday: jiff::civil::Weekday,
    day_start: jiff::civil::Time,
) -> Option<jiff::civil::Date> {
    let mut due = local.date();
    while due.weekday() != weekday || (due == local.date() && local.time() < day_start) {
        due = due.yesterday().ok()?;
    }
    Some(due)
}

/// What an open request waits on, for the service desk (Spanish).
fn holdup(engine: &Engine, request: &Request) -> String {
    let id = request.id;
    match &request.state {
        State::Received => "sin decidir: el directorio o la matriz de autorizadores no han respondido".into(),
        State::Held { .. } => format!(
            "retenida por el límite de inactivaciones por hora; la libera un administrador:\n  {}",
            engine.offer(id, DeskAction::Release, None)
        ),
        State::Executing { .. } if request.mailbox_wait.is_some() => {
            "los datos de acceso esperan el buzón de la cuenta nueva (hook mailbox_ready)".into()
        }
        State::Executing { retry_at: Some(at), .. } => {
            format!("el directorio o el correo fallaron; se reintenta desde {at}")
        }
        State::Executing { .. } => "en ejecución en el directorio".into(),
        State::Manual { .. } => format!(
            "gestión manual de la mesa de servicio pendiente; cuando esté hecha, márquela como atendida:\n  {}",
            engine.offer(id, DeskAction::Done, None)
        ),
        State::Failed { .. } => format!(
            "fallida; cuando la causa esté resuelta, un administrador la reintenta:\n  {}",
            engine.offer(id, DeskAction::Retry, None)
        ),
        State::AwaitingConfirmation { pending, .. } => {
            let steps: Vec<String> = pending
                .iter()
                .map(|key| {
                    let label = crate::desk::step_label(key).unwrap_or_default();
                    format!("  {label}: {}", engine.offer(id, DeskAction::Confirm, Some(key)))
                })
                .collect();
            format!("eliminación: faltan pasos por confirmar:\n{}", steps.join("\n"))
        }
        other => other.name().to_string(),
    }
}

impl Engine {
    /// The weekly report mail: on `[report] weekday`, from the start of the working day, the
    /// seven days before, with its chart inline; once a week (the store remembers it). A
    /// daemon that was down on that day sends it when it is back, within the week; one that
    /// has no request from before the week ended has nothing to report.
    pub(super) fn report_mail(&mut self, now: Timestamp) -> Result<(), EngineError> {
        if self.config.mailboxes.report.is_empty() {
            return Ok(());
        }
        let calendar = &self.config.calendar;
        let local = now.to_zoned(calendar.time_zone().clone());
        let weekday = self.config.report.weekday.weekday();
        let Some(due) = last_report_day(&local, weekday, calendar.day_start()) else { return Ok(()) };
        let key = format!("report/{due}");
        if self.store.alert_sent(&key)?.is_some() {
            return Ok(());
        }
        let (Ok(from), Ok(to)) = (due.checked_sub(jiff::Span::new().days(7)), due.yesterday()) else {
            return Ok(());
        };
        let ended = due
            .to_datetime(calendar.day_start())
            .to_zoned(calendar.time_zone().clone())
            .map(|z| z.timestamp());
        // One pass over the summaries of the requests that may have been submitted in the week,
        // found by their ids, each counted and dropped: the daemon reads a week's summaries,
        // never the records (which sled would keep in memory).
        let (year, since) = crate::report::earliest(from, calendar);
        let mut tally = crate::report::Tally::new(calendar, &self.config.sla, from, to, now);
        let mut any_before = false;
        for summary in self.store.summaries_received_since(year, since)? {
            let summary = summary?;
            any_before |= ended.as_ref().is_ok_and(|end| summary.timeline.received_at < *end);
            tally.add(&summary);
        }
        // The requests passed over were all read before the week began.
        if !any_before && !self.store.any_request_before(year, since)? {
            // Remembered as done: the store is not read again for it at every cycle.
            return self.mark_done(&key, now);
        }
        let today = due;
        let report = tally.finish();
        let chart = match crate::report::chart::png(&report.days) {
            Ok(png) => Some(png),
            Err(e) => {
                warn!(error = %e, "the report goes without its chart");
                None
            }
        };
        let subject = format!("Reporte de gestión de usuarios del {from} al {to}");
        let drift = match self.store.drift()? {
            Some(reading) => drift_section(&reading, calendar.time_zone()),
            None => String::new(),
        };
        let text = format!(
            "Reporte de la gestión de usuarios: solicitudes recibidas del {} al {}.\n\n{}\n\n{drift}cuentas",
            notify::spanish_date(from),
            notify::spanish_date(to),
            report.resumen()
        );
        let message = self.envelope.report_message(
            &format!("reporte.{today}"),
            &self.config.mailboxes.report,
            &subject,
            &text,
            chart,
        )?;
        match self.mailer.send(&message, now) {
            Ok(()) => {
                self.mark_done(&key, now)?;
                tracing::info!(%from, %to, "report sent");
            }
            Err(e) => {
                warn!(error = %e.for_log(), "the report was not sent; tried again at the next cycle");
                self.mail_failed(&e);
            }
        }
        Ok(())
    }

    /// Remembers the alert or report `key` as done at `now`.
    fn mark_done(&mut self, key: &str, now: Timestamp) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        changes.mark_alert(key, now);
        self.store.commit(changes)?;
        Ok(())
    }
}

/// Findings listed in the weekly report; the rest are counted.
const DRIFT_LINES: usize = 30;

/// The weekly report's section on the directory: the last drift reading, by kind, then its
/// findings one a line.
fn drift_section(reading: &crate::store::Drift, tz: &jiff::tz::TimeZone) -> String {
    let when = notify::spanish_datetime(reading.at, tz);
    let mut out = format!(
        "El directorio frente al registro de cuentas (lectura del {when}, {} cuentas de las unidades que \
         gestiona; cuentas no cambia nada en el directorio por esto):\n",
        reading.accounts
    );
    if reading.findings.is_empty() {
        out.push_str("  nada que el registro no diga.\n\n");
        return out;
    }
    let mut kinds: std::collections::BTreeMap<crate::directory::drift::FindingKind, usize> =
        Default::default();
    reading.findings.iter().for_each(|f| *kinds.entry(f.kind).or_default() += 1);
    for (kind, n) in &kinds {
        out.push_str(&format!("  {}: {n}\n", kind.label()));
    }
    out.push('\n');
    for f in reading.findings.iter().take(DRIFT_LINES) {
        out.push_str(&format!("  {} ({}): {}\n", f.sam, f.kind.label(), f.detail));
    }
    if reading.findings.len() > DRIFT_LINES {
        out.push_str(&format!(
            "  … y {} más: la lista completa la da el servidor de cuentas.\n",
            reading.findings.len() - DRIFT_LINES
        ));
    }
    out.push('\n');
    out
}
