//! Nothing waits forever: a request waiting on its requester's fix (`NeedsInfo`) is reminded
//! once and then cancelled, the requester told how to ask again; requests waiting on a person
//! of the entity (`Manual`, `Held`, `Failed`) are listed to the administrators every working
//! morning while they last.

use jiff::Timestamp;
use tracing::info;

use super::{CycleReport, Engine, EngineError, Move};
use crate::desk::DeskAction;
use crate::notify;
use crate::request::{Actor, Request, State, StateName};
use crate::store::{Changes, MessageKind};

/// The history line of a reminder: how a reminder already sent in this wait is recognised.
const REMINDED: &str = "recordatorio enviado: la solicitud espera la corrección";

impl Engine {
    /// `days` business days after `since`, each a working day's business hours.
    fn business_days_after(&self, since: Timestamp, days: u32) -> Timestamp {
        self.wake.business_days_after(since, days)
    }

    /// Reminds, then cancels, requests waiting on their requester too long; lists those waiting
    /// on the entity to the administrators once each working morning.
    pub(super) fn follow_up(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let (remind_days, expiry_days) = (
            self.config.sla.needs_info_reminder_business_days,
            self.config.sla.needs_info_expiry_business_days,
        );
        let tz = self.config.calendar.time_zone().clone();
        let mut changes = Changes::new();
        for id in self.store.due(now)? {
            let Some(mut request) = self.store.request(id)? else { continue };
            let State::NeedsInfo { reason, since } = request.state.clone() else { continue };
            if self.business_days_after(since, expiry_days) <= now {
                let why = format!(
                    "La solicitud esperaba desde el {} que se corrigiera lo siguiente, y en {expiry_days} días hábiles \
                     no llegó la corrección:\n\n{reason}\n\nSe cerró. Si aún la necesita, diligencie el formulario de \
                     nuevo, con una respuesta nueva y los datos completos.",
                    notify::spanish_datetime(since, &tz)
                );
                info!(request_id = %request.id, "cancelled: waited too long for the requester's fix");
                let step = Move::daemon(
                    State::Cancelled {
                        reason: format!("sin corrección del solicitante en {expiry_days} días hábiles"),
                    },
                    format!("sin corrección del solicitante en {expiry_days} días hábiles: se cierra"),
                )
                .telling(MessageKind::Voided, why);
                self.record(&mut changes, report, &mut request, step, now)?;
                continue;
            }
            // The reminder is the second message asking for the fix since it was asked for.
            let reminded =
                request.outbox.iter().any(|m| m.kind == MessageKind::NeedsInfo && m.created_at > since);
            if !reminded && self.business_days_after(since, remind_days) <= now {
                let closes = self.business_days_after(since, expiry_days);
                let detail = format!(
                    "Recordatorio: la solicitud sigue esperando esta corrección desde el {}.\n\n{reason}\n\nSi no llega \
                     antes del {}, la solicitud se cerrará sin efecto.",
                    notify::spanish_datetime(since, &tz),
                    notify::spanish_datetime(closes, &tz)
                );
                request.note(Actor::Daemon, REMINDED, now);
                self.queue(&mut request, MessageKind::NeedsInfo, detail, now);
                self.stage(&mut changes, report, &request);
            }
        }
        self.store.commit(changes)?;
        self.morning_list(now)
    }

    /// Once a working day, from the start of business hours: the requests that wait on a person
    /// of the entity, to the administrators. The open requests are read only when the list is
    /// due.
    fn morning_list(&mut self, now: Timestamp) -> Result<(), EngineError> {
        let calendar = &self.config.calendar;
        let today = self.today(now);
        // Its key is the day: one a day, whatever the repeat interval of alerts.
        let key = format!("en-espera-{today}");
        if !calendar.is_business_day(today)
            || now < calendar.start_of_business_day_on_or_after(today)
            || !self.alert_due(&key, now)?
        {
            return Ok(());
        }
        let mut stuck: Vec<Request> = Vec::new();
        for r in self.store.open_requests()? {
            let r = r?;
            if matches!(r.state.name(), StateName::Manual | StateName::Held | StateName::Failed) {
                stuck.push(r);
            }
        }
        if stuck.is_empty() {
            return Ok(());
        }
        let tz = calendar.time_zone().clone();
        let mut body = String::from("Estas solicitudes esperan a una persona de la entidad:\n\n");
        for r in &stuck {
            let since = r.history.last().map(|h| h.at).unwrap_or(r.received_at);
            let what = match r.state.name() {
                StateName::Manual => format!(
                    "gestión manual: la mesa de servicio la hace y la marca como atendida\n    {}",
                    self.offer(r.id, DeskAction::Done, None)
                ),
                StateName::Held => format!(
                    "retenida por el límite de inactivaciones por hora; un administrador la libera\n    {}",
                    self.offer(r.id, DeskAction::Release, None)
                ),
                _ => format!(
                    "fallida: revise el error; reintentar\n    {}\n    o cancelar\n    {}",
                    self.offer(r.id, DeskAction::Retry, None),
                    self.offer(r.id, DeskAction::Cancel, None)
                ),
            };
            body.push_str(&format!(
                "  {}  {}  desde el {}\n    {what}\n",
                r.id,
                r.state.name(),
                notify::spanish_datetime(since, &tz)
            ));
        }
        let mut changes = Changes::new();
        self.alert_on(
            &mut changes,
            &key,
            &format!("{} solicitud(es) esperan a la entidad", stuck.len()),
            &body,
            now,
        )?;
        Ok(self.store.commit(changes)?)
    }
}
