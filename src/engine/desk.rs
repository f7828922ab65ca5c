//! The service desk's form: each new response is authorized against the matrix, then run
//! through the same commands as the CLI's (`cli::StoreCommand`), as the person the form
//! verified; the person is answered by mail (done, or why not), the request's history says who.

use jiff::{SignedDuration, Timestamp};
use tracing::{info, warn};

use super::mail::Condition;
use super::{CycleReport, Engine, EngineError};
use crate::cli::{Ctx, StoreCommand};
use crate::desk::{self, DeskAction, DeskColumns, DeskRow, Targets};
use crate::request::{Actor, Request, RequestId, State, StateName};
use crate::source::provenance::{self, RowClaim};
use crate::source::{RawRow, row_hash};
use crate::store::{Changes, MessageKind, OutboxMessage};

impl Engine {
    /// Reads the desk form's new responses and acts on each, once.
    pub(super) fn desk(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let Some(mut source) = self.desk_source.take() else { return Ok(()) };
        let result = self.desk_from(&mut source, now, report);
        self.desk_source = Some(source);
        match result {
            Ok(()) => self.condition_cleared(Condition::Desk),
            Err(EngineError::Source(e)) => {
                warn!(error = %e, "the service desk's form cannot be read; its responses wait");
                let body = format!(
                    "cuentas no puede leer las respuestas del formulario de la mesa de servicio:\n\n  {e}\n\n\
                     Lo que la mesa envíe espera y se atiende cuando se puedan leer. Revise [desk] en la configuración."
                );
                self.alert_condition(Condition::Desk, "No se lee el formulario de la mesa", &body, now)
            }
            Err(e) => Err(e),
        }
    }

    fn desk_from(
        &mut self,
        source: &mut crate::source::Source,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        // Without the matrix nobody can be authorized: the responses wait for it.
        if self.matrix.is_none() {
            return Ok(());
        }
        // The tab measured again on the edit-check schedule: Forms grows its grid past the size
        // first measured, and rows past that size would not be asked for.
        if let Some(interval) = source.edit_check_interval()
            && self.desk_measured.is_none_or(|at| now.duration_since(at) >= interval)
        {
            source.refresh(now)?;
            self.desk_measured = Some(now);
        }
        let header = source.header(now)?;
        let columns = match DeskColumns::from_header(&header) {
            Ok(columns) => columns,
            Err(missing) => {
                let body = format!(
                    "El formulario de la mesa de servicio ({}) no tiene las preguntas {}: sus respuestas esperan. \
                     Las preguntas que cuentas lee están en deploy/formularios.gs.",
                    source.describe(),
                    missing.iter().map(|m| format!("«{m}»")).collect::<Vec<_>>().join(", ")
                );
                return self.alert_condition(
                    Condition::Desk,
                    "Faltan preguntas en el formulario de la mesa",
                    &body,
                    now,
                );
            }
        };
        let mut next = self.store.desk_next_row()?;
        loop {
            let page = source.page(next, now)?;
            let rows: Vec<DeskRow> = page.rows.iter().map(|r| columns.read(r.row, &r.cells)).collect();
            let proved = self.desk_rows_the_form_wrote(source, &rows, now)?;
            let mut acted = false;
            for (raw, row) in page.rows.iter().zip(&rows) {
                next = next.max(raw.row + 1);
                if raw.cells.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                let mut changes = Changes::new();
                match &proved {
                    Some(proved) if !proved.contains(&row.row) => {
                        self.desk_row_not_the_form_s(&mut changes, raw, row, now)?
                    }
                    _ => acted |= self.desk_row(&mut changes, row, now, report)?,
                }
                changes.set_desk_next_row(next);
                self.store.commit(changes)?;
                self.beat();
            }
            if acted {
                // The commands changed requests behind the engine's indexes.
                self.reload_indexes()?;
            }
            match page.next {
                Some(n) if n > next => next = n,
                Some(_) => {}
                None => break,
            }
            if page.rows.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// With `[desk] form_id`: the rows the desk form wrote (`None`: no form to ask).
    fn desk_rows_the_form_wrote(
        &mut self,
        source: &mut crate::source::Source,
        rows: &[DeskRow],
        now: Timestamp,
    ) -> Result<Option<std::collections::HashSet<u32>>, EngineError> {
        // An idle poll asks the Forms API nothing.
        if rows.is_empty() {
            return Ok(None);
        }
        let tz = self.config.calendar.time_zone().clone();
        let claims: Vec<RowClaim<'_>> = rows
            .iter()
            .map(|r| RowClaim {
                row: r.row,
                requester: r.by.as_deref().unwrap_or(""),
                submitted: r.submitted_at.and_then(|at| at.to_zoned(tz.clone()).ok()).map(|z| z.timestamp()),
            })
            .collect();
        let since =
            claims.iter().filter_map(|c| c.submitted).min().unwrap_or(now) - SignedDuration::from_secs(60);
        let Some(responses) = source.form_responses(since, now)? else { return Ok(None) };
        Ok(Some(provenance::rows_the_form_wrote(&claims, &responses).into_keys().collect()))
    }

    /// A row typed into the desk form's sheet by hand: nothing is done, nobody named in it is
    /// answered (its address is a claim), the administrators are told.
    fn desk_row_not_the_form_s(
        &mut self,
        changes: &mut Changes,
        raw: &RawRow,
        row: &DeskRow,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        warn!(row = row.row, "a row of the service desk's form that the form did not write: not acted on");
        let body = format!(
            "La fila {} de las respuestas del formulario de la mesa de servicio no la escribió el formulario \
             (no hay una respuesta con esa dirección y esa hora): alguien la escribió en la hoja. No se hizo \
             nada con ella y no se respondió a nadie.\n\nDice: {} «{}» sobre {}",
            row.row,
            row.by.as_deref().unwrap_or("(sin dirección)"),
            row.action_answer,
            raw.cells.get(2).map(String::as_str).unwrap_or(""),
        );
        let key = format!("desk/{}", row_hash(&raw.cells));
        self.alert_on(changes, &key, "Fila escrita a mano en el formulario de la mesa", &body, now)
    }

    /// One response: every request it names, then one answer. Whether a request changed.
    fn desk_row(
        &mut self,
        changes: &mut Changes,
        row: &DeskRow,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<bool, EngineError> {
        let Some(by) = row.by.clone() else {
            warn!(row = row.row, "a response of the service desk's form without an address: skipped");
            return Ok(false);
        };
        // The form asks for the entity's sign-in; an address outside it is not answered.
        if !self.policy.requester_in_domain(&by) {
            warn!(
                row = row.row,
                "a response of the service desk's form from outside the entity's domains: skipped"
            );
            return Ok(false);
        }
        let Some(action) = row.action else {
            let options: Vec<&str> = DeskAction::ALL.iter().map(|a| a.label()).collect();
            let text = format!(
                "No se hizo nada: «{}» no es una de las acciones del formulario ({}).",
                row.action_answer,
                options.join(", ")
            );
            self.desk_answer(changes, row, &by, "Acción no reconocida", text, now);
            return Ok(false);
        };
        let ids = match &row.targets {
            Err(why) => {
                self.desk_answer(changes, row, &by, action.label(), format!("No se hizo nada: {why}."), now);
                return Ok(false);
            }
            Ok(Targets::AllHeld) if action == DeskAction::Release => {
                // Those this response released before a stop are held no more: still its own.
                let mut held: Vec<RequestId> = self
                    .store
                    .alerts_under(&acted_key(row.row, ""))?
                    .iter()
                    .filter_map(|id| id.parse().ok())
                    .collect();
                for r in self.store.open_requests()? {
                    let r = r?;
                    if r.state.name() == StateName::Held {
                        held.push(r.id);
                    }
                }
                held.sort();
                held.dedup();
                held
            }
            Ok(Targets::AllHeld) => {
                let text = "No se hizo nada: «todas» sirve solo para liberar las inactivaciones retenidas; \
                            escriba el número de la solicitud."
                    .to_string();
                self.desk_answer(changes, row, &by, action.label(), text, now);
                return Ok(false);
            }
            Ok(Targets::These(ids)) => ids.clone(),
        };
        let mut lines = Vec::new();
        let mut changed = false;
        for id in &ids {
            let (line, done) = self.desk_act(row, action, &by, *id, now)?;
            // Answered, with the cursor past the row, in this commit: the mark is not needed.
            changes.clear_alert(&acted_key(row.row, *id));
            if done {
                report.touch(*id);
            }
            changed |= done;
            lines.push(line);
        }
        if lines.is_empty() {
            lines.push("No hay inactivaciones retenidas: no había nada que liberar.".to_string());
        }
        let subject = match ids.as_slice() {
            [id] => format!("[{id}] {}", action.label()),
            _ => action.label().to_string(),
        };
        info!(
            row = row.row,
            action = action.key(),
            requests = ids.len(),
            "service desk form response acted on"
        );
        self.desk_answer(changes, row, &by, &subject, lines.join("\n\n"), now);
        Ok(changed)
    }

    /// One request of a response: authorized, checked, then the command run. The answer's
    /// line for it, and whether the request changed.
    fn desk_act(
        &mut self,
        row: &DeskRow,
        action: DeskAction,
        by: &str,
        id: RequestId,
        now: Timestamp,
    ) -> Result<(String, bool), EngineError> {
        let Some(mut request) = self.store.request(id)? else {
            return Ok((format!("{id}: no existe una solicitud con ese número. No se hizo nada."), false));
        };
        if self.store.alert_sent(&acted_key(row.row, id))?.is_some() {
            // Done by this very response before the daemon stopped, its answer not yet queued:
            // answered as done, not checked again (it would find the step taken and refuse).
            return Ok((done_line(&request, action, row), true));
        }
        let refused = |why: String| format!("{id}: no se hizo. {why}");
        let Some(matrix) = &self.matrix else {
            return Ok((refused("La matriz de autorizadores no se ha leído.".into()), false));
        };
        let today = self.today(now);
        let grant = match desk::grant(
            matrix,
            &self.config.desk_rules,
            action,
            by,
            &request.submission.department,
            today,
        ) {
            Ok(grant) => grant.clone(),
            Err(why) => {
                // The attempt is part of the request's story: who tried what, and why not.
                request.note(
                    Actor::Desk(by.to_string()),
                    format!("pidió «{action}» desde el formulario de la mesa: no autorizado: {why}"),
                    now,
                );
                self.save_request(&request)?;
                return Ok((refused(format!("No está autorizado: {why}.")), false));
            }
        };
        // Nobody acts from the desk on a request about their own account (a deletion's
        // backups confirmed by the person whose account goes, a cancellation of their disable).
        let account = request.account.as_deref().unwrap_or(&request.submission.account);
        let own = !account.is_empty()
            && format!("{account}@{}", self.config.directory.domain).eq_ignore_ascii_case(by);
        let checked = match own {
            true => Err("La solicitud es sobre su propia cuenta: la atiende otra persona.".to_string()),
            false => precheck(&request, action, row, by),
        };
        if let Err(why) = checked {
            request.note(
                Actor::Desk(by.to_string()),
                format!("pidió «{action}» desde el formulario de la mesa: no se hizo: {why}"),
                now,
            );
            self.save_request(&request)?;
            return Ok((refused(why), false));
        }
        let note = row.note.trim().to_string();
        let command = match action {
            DeskAction::Confirm => StoreCommand::Confirm {
                id,
                step: row.step.unwrap_or_default().to_string(),
                by: if grant.name.is_empty() { by.to_string() } else { format!("{} ({by})", grant.name) },
                note: Some(note).filter(|n| !n.is_empty()),
            },
            DeskAction::Done => StoreCommand::Done { id, note },
            DeskAction::Cancel => StoreCommand::Cancel { id, reason: note },
            DeskAction::Release => StoreCommand::Release { ids: vec![id], all: false },
            DeskAction::Retry => StoreCommand::Retry { id },
        };
        let ctx = Ctx {
            config: &self.config,
            store: &self.store,
            actor: Actor::Desk(by.to_string()),
            now,
            marks: Some(acted_key(row.row, id)),
        };
        match command.run(&ctx) {
            Ok(_) => Ok((done_line(&self.store.request(id)?.unwrap_or(request), action, row), true)),
            Err(e) => Ok((refused(format!("cuentas no pudo hacerlo: {e}")), false)),
        }
    }

    fn save_request(&self, request: &Request) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        changes.put_request(request);
        Ok(self.store.commit(changes)?)
    }

    /// Queues the answer to the person who sent a response.
    fn desk_answer(
        &self,
        changes: &mut Changes,
        row: &DeskRow,
        to: &str,
        subject: &str,
        text: String,
        now: Timestamp,
    ) {
        let id = format!(
            "mesa.{}.{}.{}",
            row.row,
            now.as_second(),
            &row_hash(&[to.to_string(), text.clone()])[..8]
        );
        let message = OutboxMessage::new(
            id,
            None,
            MessageKind::DeskAnswer,
            vec![to.to_string()],
            format!("{subject}\n\n{text}"),
            now,
        );
        changes.put_message(&message);
    }
}

/// Marked with a desk command's change: response `row` acted on request `id` (`""`: the
/// prefix of that response's marks).
fn acted_key(row: u32, id: impl std::fmt::Display) -> String {
    format!("mesa/fila/{row}/{id}")
}

/// Whether `action` applies to the request as it is now, and the response holds what it needs;
/// why not, in Spanish.
fn precheck(request: &Request, action: DeskAction, row: &DeskRow, by: &str) -> Result<(), String> {
    let state = request.state.name();
    let is = spanish_state(state);
    match action {
        DeskAction::Confirm => {
            let State::AwaitingConfirmation { pending, .. } = &request.state else {
                return Err(format!(
                    "La solicitud {is}: solo una eliminación que espera sus copias de seguridad recibe confirmaciones."
                ));
            };
            let Some(step) = row.step else {
                return Err(if row.step_answer.is_empty() {
                    "La respuesta no dice qué paso se confirma (pregunta «Paso»).".to_string()
                } else {
                    format!("«{}» no es un paso de la lista de eliminación.", row.step_answer)
                });
            };
            if !pending.iter().any(|p| p == step) {
                let label = desk::step_label(step).unwrap_or_default();
                return Err(format!("El paso «{label}» ya estaba confirmado."));
            }
        }
        DeskAction::Done if state != StateName::Manual => {
            return Err(format!(
                "La solicitud {is}: solo se marca como atendida una solicitud en gestión manual."
            ));
        }
        DeskAction::Done | DeskAction::Cancel if row.note.trim().is_empty() => {
            return Err(match action {
                DeskAction::Done => {
                    "Escriba en «Observaciones» lo que se hizo: es lo que recibe el solicitante."
                }
                _ => "Escriba en «Observaciones» el motivo de la cancelación.",
            }
            .to_string());
        }
        DeskAction::Cancel if state.is_closed() => {
            return Err(format!("La solicitud {is}: ya está terminada."));
        }
        DeskAction::Release if state != StateName::Held => {
            return Err(format!("La solicitud {is}: solo se liberan inactivaciones retenidas."));
        }
        // Four eyes: the person whose mass change was held does not let it go on.
        DeskAction::Release if request.submission.requester.eq_ignore_ascii_case(by) => {
            return Err("Usted pidió esta inactivación: la libera otra persona.".to_string());
        }
        DeskAction::Retry if !matches!(state, StateName::Failed | StateName::Manual) => {
            return Err(format!(
                "La solicitud {is}: solo se reintenta una solicitud fallida o en gestión manual."
            ));
        }
        _ => {}
    }
    Ok(())
}

/// The answer's line for an action done.
fn done_line(request: &Request, action: DeskAction, row: &DeskRow) -> String {
    let id = request.id;
    match (action, &request.state) {
        (DeskAction::Confirm, State::AwaitingConfirmation { pending, .. }) if pending.is_empty() => format!(
            "{id}: confirmado «{}». Todos los pasos están confirmados: la cuenta se elimina cuando cumpla el tiempo \
             mínimo inactiva.",
            desk::step_label(row.step.unwrap_or_default()).unwrap_or_default()
        ),
        (DeskAction::Confirm, State::AwaitingConfirmation { pending, .. }) => {
            let left: Vec<String> = pending.iter().filter_map(|p| desk::step_label(p)).collect();
            format!(
                "{id}: confirmado «{}». Falta confirmar: {}.",
                desk::step_label(row.step.unwrap_or_default()).unwrap_or_default(),
                left.join("; ")
            )
        }
        (DeskAction::Done, _) => format!(
            "{id}: marcada como atendida. El solicitante recibe lo que usted escribió y la solicitud se cierra."
        ),
        (DeskAction::Cancel, _) => format!(
            "{id}: cancelada. No se le responde nada al solicitante; el motivo queda en el historial."
        ),
        (DeskAction::Release, _) => format!("{id}: liberada. La inactivación sigue en el próximo ciclo."),
        (DeskAction::Retry, _) => format!("{id}: se intenta de nuevo en el próximo ciclo."),
        (DeskAction::Confirm, _) => format!("{id}: confirmado."),
    }
}

/// «está en gestión manual», for the answers.
fn spanish_state(state: StateName) -> String {
    let what = match state {
        StateName::Received => "está recién recibida",
        StateName::NeedsInfo => "espera una corrección del solicitante",
        StateName::Rejected => "fue rechazada",
        StateName::Routed => "se remitió a otro procedimiento",
        StateName::Scheduled => "está programada",
        StateName::Executing => "se está ejecutando",
        StateName::AwaitingConfirmation => "espera las confirmaciones de la eliminación",
        StateName::Held => "está retenida por el límite de inactivaciones",
        StateName::Manual => "está en gestión manual",
        StateName::Notifying => "ya se atendió y se está notificando",
        StateName::Failed => "falló",
        StateName::Closed => "está cerrada",
        StateName::Cancelled => "fue cancelada",
    };
    what.to_string()
}

impl Engine {
    /// Where to do `action` on a request: its pre-filled link to the desk form; without one,
    /// what to answer in the form, or who does it without a form.
    pub(super) fn offer(&self, id: RequestId, action: DeskAction, step: Option<&str>) -> String {
        match (&self.config.desk.prefill_url, &self.desk_source) {
            (Some(url), _) => desk::link(url, id, action, step),
            (None, Some(_)) => {
                let step =
                    step.and_then(desk::step_label).map(|s| format!(", paso «{s}»")).unwrap_or_default();
                format!("en el formulario de la mesa de servicio: solicitud {id}, acción «{action}»{step}")
            }
            (None, None) => {
                format!("lo registra un administrador de cuentas en el servidor («{action}», {id})")
            }
        }
    }

    /// The `gestion-manual` mail's text: what to do, then the links that say it is done (or
    /// that the request is to be decided again) and that cancel it.
    pub(super) fn by_hand_mail(&self, id: RequestId, by_hand: &super::triage::ByHand) -> String {
        let mut text = format!("{}.\n\n", by_hand.why.trim_end_matches('.'));
        if by_hand.decide_again {
            text.push_str(&format!(
                "Hecho eso en el directorio, un administrador pide que cuentas la decida de nuevo:\n  {}\n",
                self.offer(id, DeskAction::Retry, None)
            ));
        } else {
            text.push_str(&format!(
                "Cuando esté hecho, márquela como atendida; lo que escriba en «Observaciones» es lo que recibe \
                 el solicitante:\n  {}\n",
                self.offer(id, DeskAction::Done, None)
            ));
        }
        text.push_str(&format!(
            "\nSi no procede, cancélela (el motivo, en «Observaciones»):\n  {}",
            self.offer(id, DeskAction::Cancel, None)
        ));
        text
    }
}
