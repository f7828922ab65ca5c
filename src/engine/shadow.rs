//! The shadow week and what follows it. In `[directory] mode = "shadow"` every request is
//! decided and planned against the real AD and nothing is written (see [`Directory::Shadow`]);
//! each request the shadow moved is marked `shadow`. Live again, cuentas never carries a
//! shadow request on: the entity handled it by hand, so what is still open is closed, once,
//! with its unsent mail, and only `cuentas replay ID` takes one again, as a new live request
//! decided against the directory as it is then.
//!
//! [`Directory::Shadow`]: crate::directory::Directory::Shadow

use jiff::Timestamp;
use tracing::{info, warn};

use super::{CycleReport, Engine, EngineError, Move};
use crate::request::{Actor, Delivery, Request, RequestId, State};
use crate::store::Changes;

/// Why a shadow request is not carried on live (its history, `show`).
const NOT_CARRIED_ON: &str = "decidida en modo sombra: en vivo no se continúa (la entidad la atendió a mano); \
                              «cuentas replay» la toma de nuevo";

impl Engine {
    /// Live again after a shadow week: the shadow requests still open are closed, and their
    /// messages still waiting are not sent (they would reach requesters about work cuentas never
    /// did). Once per start of a live engine.
    pub(super) fn end_shadow(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        if self.directory.is_shadow() || self.shadow_ended {
            return Ok(());
        }
        // One at a time, only the shadow ones kept: a live store's open requests are many.
        let mut ids = self.store.open_ids()?;
        ids.extend(self.store.mailing_ids()?);
        ids.sort();
        ids.dedup();
        let mut requests = Vec::new();
        for r in self.store.each(ids) {
            let r = r?;
            if r.shadow {
                requests.push(r);
            }
        }
        if !requests.is_empty() {
            info!(
                requests = requests.len(),
                "live after the shadow week: its open requests are closed, not carried on"
            );
        }
        for mut request in requests {
            let mut changes = Changes::new();
            for message in &mut request.outbox {
                if matches!(message.delivery, Delivery::Pending { .. }) {
                    let error = "no enviado: la semana en modo sombra terminó antes".to_string();
                    message.delivery = Delivery::Failed { error, at: now };
                }
            }
            if request.is_open() {
                let closed = State::Cancelled { reason: NOT_CARRIED_ON.into() };
                self.record(&mut changes, report, &mut request, Move::daemon(closed, NOT_CARRIED_ON), now)?;
            } else {
                changes.put_request(&request);
            }
            self.store.commit(changes)?;
        }
        self.shadow_ended = true;
        Ok(())
    }

    /// The shadow requests an administrator asked to take again (`cuentas replay`): each
    /// becomes a new request from the same response, registered and decided now, live.
    pub(super) fn replay(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        if self.directory.is_shadow() {
            return Ok(());
        }
        for (id, by) in self.store.replays_asked()? {
            let mut changes = Changes::new();
            changes.replayed(id);
            let original = self.store.request(id)?;
            match original.filter(|o| o.shadow && o.replayed_as.is_none() && o.purged.is_none()) {
                Some(mut original) => self.replay_one(&mut original, by, &mut changes, report, now)?,
                None => {
                    warn!(%id, "replay asked of a request that is not a shadow request to take again; passed over")
                }
            }
            self.store.commit(changes)?;
        }
        Ok(())
    }

    fn replay_one(
        &mut self,
        original: &mut Request,
        by: Actor,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let year = now.to_zoned(self.config.calendar.time_zone().clone()).year();
        let seq = self.store.counter(year)? + 1;
        changes.set_counter(year, seq);
        let id = RequestId { year, seq };
        let mut request =
            Request::new(id, original.row, original.row_hash.clone(), original.submission.clone(), now, now);
        request.form_response = original.form_response.clone();
        request.form_submitted = original.form_submitted;
        request.replay_of = Some(original.id);
        request.note(
            by.clone(),
            format!("toma de nuevo, en vivo, la {} decidida en modo sombra", original.id),
            now,
        );
        original.replayed_as = Some(id);
        original.note(by, format!("tomada de nuevo, en vivo, como {id}"), now);
        changes.put_request(original);
        info!(%id, shadow = %original.id, "a shadow request taken again, live");
        let mut people = super::retention::Batch::new();
        self.identify(&mut request, changes, &mut people, now)?;
        self.measure_sla(&mut request, now);
        self.open_ticket(&mut request, now);
        self.take_on(&mut request, changes, report, now)?;
        report.registered += 1;
        Ok(())
    }
}
