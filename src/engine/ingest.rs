//! Procedure activity 2, *registrar solicitud*: reading the source. New rows become requests,
//! edited rows of open requests are re-validated, a new response replaces the request that
//! waited on the same person, and rows moved or deleted stop ingestion with an alert.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use tracing::{error, info, info_span, warn};

use super::mail::Condition;
use super::{Backlog, CycleReport, Engine, EngineError, Move, Unreached, cover_key, log_directory_error};
use crate::intake::{self, ColumnMap};
use crate::policy::{Matrix, MatrixError};
use crate::request::{Actor, Kind, Phase, Request, RequestId, State, StateName, Submission};
use crate::source::provenance::{self, RowClaim};
use crate::source::sheet::FormResponse;
use crate::source::sheet::SheetError;
use crate::source::{RawRow, Source, SourceError, row_hash};
use crate::store::{Changes, Cursor, MessageKind, OutboxMessage};

/// Rows registered per batch: bounds memory on a large first import; one flush per batch.
const REGISTER_BATCH: usize = 1000;

/// Rows seen before whose cells changed, for requests still open.
type Edits = Vec<(RequestId, RawRow)>;

impl Engine {
    /// Reads the source: registers new rows, re-validates edited rows of open requests, and
    /// stops (with an alert) when rows were deleted or reordered. A source that does not
    /// answer (Google's quota, the network) is reported and tried again later; the rest of
    /// the cycle goes on.
    pub fn ingest(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        match self.read_source(now, report) {
            Err(EngineError::Source(SourceError::Sheet(e))) => self.source_failed(e, now, report),
            Ok(()) if report.source_error.is_none() => self.condition_cleared(Condition::Source),
            other => other,
        }
    }

    fn read_source(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let check_edits = self.halted
            || match (self.source.edit_check_interval(), self.last_edit_check) {
                (Some(interval), Some(last)) => now.duration_since(last) >= interval,
                _ => true,
            };
        // A matrix file is read at every cycle (it is small): a change counts from the next.
        if self.matrix_file.is_some() {
            self.reread_matrix_file(now, report)?;
        } else if check_edits || self.matrix.is_none() {
            self.read_matrix(now, report)?;
        }
        if self.matrix.is_none() {
            return Ok(());
        }
        if check_edits {
            self.source.refresh(now)?;
        }
        let Some(map) = self.column_map(now, report)? else { return Ok(()) };
        let mut edits = Vec::new();
        let mut halt = None;
        if check_edits {
            match self.read_edits(&map, now, &mut edits)? {
                Ok((stop, whole)) => {
                    halt = stop;
                    // A pass read in slices is done once its last slice is: until then the
                    // check goes on at every cycle.
                    if whole {
                        self.last_edit_check = Some(now);
                    }
                }
                // Stopped ingestion stays stopped until the rows are seen back in place.
                Err(e) if self.halted => return Err(SourceError::Sheet(e).into()),
                // Not marked done: tried again at the next cycle, as the sheet's backoff allows.
                // New responses are read meanwhile: they must not wait on the rows of old ones.
                Err(SheetError::BackingOff { .. }) => {}
                Err(e) => {
                    let source = self.source.describe();
                    warn!(source = %source, error = %e, "cannot read the rows of open requests again; their edits are looked for at the next attempt");
                }
            }
        }
        let mut map = map;
        if halt.is_none() {
            match self.read_tail(map, now, report, &mut edits)? {
                Tail::Read { halt: stop, map: as_read } => (halt, map) = (stop, as_read),
                Tail::HeaderMissing => return Ok(()),
            }
        }
        self.halted = halt.is_some();
        if let Some(reason) = halt {
            return self.halt_ingestion(reason, now, report);
        }
        self.condition_cleared(Condition::Halted)?;
        for (id, row) in edits {
            if self.store.request(id)?.is_some_and(|r| r.is_open()) {
                self.edit(&map, id, row, now, report)?;
            }
        }
        Ok(())
    }

    /// The edit check: the rows of open requests read again (but the last one seen, which the
    /// tail reads anyway), as many as the source reads in a cycle, from where the last slice
    /// ended (while ingestion is stopped, all of them). Returns why ingestion must stop, if it
    /// must, and whether this slice ended a pass; inside, the sheet's error when it did not
    /// answer, for the caller to decide whether that stops the cycle.
    fn read_edits(
        &mut self,
        map: &ColumnMap,
        now: Timestamp,
        edits: &mut Edits,
    ) -> Result<Result<(Option<String>, bool), SheetError>, EngineError> {
        let cursor = self.store.cursor()?;
        let open = self.store.open_rows()?;
        if self.halted {
            self.source.forget_rows_read();
        }
        let from = if self.halted { 0 } else { self.edit_check_from };
        let mut wanted: Vec<u32> =
            open.keys().copied().filter(|r| *r != cursor.rows_seen && *r >= from).collect();
        wanted.sort_unstable();
        let slice = if self.halted { usize::MAX } else { self.source.rows_per_cycle() };
        let next = wanted.get(slice).copied();
        wanted.truncate(slice);
        let rows = match self.source.rows(&wanted, now) {
            Ok(rows) => rows,
            Err(SourceError::Sheet(e)) => return Ok(Err(e)),
            Err(e) => return Err(e.into()),
        };
        self.edit_check_from = next.unwrap_or(0);
        for row in rows {
            let Some(&id) = open.get(&row.row) else { continue };
            if let Some(halt) = self.review(map, id, row, edits)? {
                return Ok(Ok((Some(halt), next.is_none())));
            }
        }
        Ok(Ok((None, next.is_none())))
    }

    /// The tail, from the last row seen (included: a changed or missing last row means rows
    /// were moved or deleted) to the end: new rows are registered in batches.
    fn read_tail(
        &mut self,
        mut map: ColumnMap,
        now: Timestamp,
        report: &mut CycleReport,
        edits: &mut Edits,
    ) -> Result<Tail, EngineError> {
        let cursor = self.store.cursor()?;
        if cursor.rows_seen == 0 {
            self.first_read(&map, now)?;
        }
        let open = self.store.open_rows()?;
        let mut batch = Vec::new();
        let mut from = cursor.rows_seen.max(2);
        let mut saw_last = cursor.rows_seen < 2;
        loop {
            let page = self.source.page(from, now)?;
            self.beat();
            if page.header_changed {
                let Some(wider) = self.column_map(now, report)? else { return Ok(Tail::HeaderMissing) };
                map = wider;
            }
            for row in page.rows {
                if row.row > cursor.rows_seen {
                    batch.push(row);
                    if batch.len() == REGISTER_BATCH {
                        self.register(&map, std::mem::take(&mut batch), now, report)?;
                    }
                    continue;
                }
                if row.row < cursor.rows_seen {
                    continue;
                }
                saw_last = true;
                let Some(id) = open.get(&row.row).copied().or(cursor.last_id) else { continue };
                if let Some(halt) = self.review(&map, id, row, edits)? {
                    return Ok(Tail::Read { halt: Some(halt), map });
                }
            }
            match page.next {
                Some(next) => from = next,
                None => break,
            }
        }
        if !saw_last {
            let halt = format!(
                "las respuestas ya no llegan a la fila {} y ya se habían registrado {} filas: alguien borró filas",
                cursor.rows_seen,
                cursor.rows_seen.saturating_sub(1)
            );
            return Ok(Tail::Read { halt: Some(halt), map });
        }
        self.register(&map, batch, now, report)?;
        Ok(Tail::Read { halt: None, map })
    }

    /// The first read of a source: one that already holds responses is refused without
    /// `[source] start_at` (an entity adopting cuentas must say where it starts, or every old
    /// request would be carried out and answered); one that holds none is marked as read.
    fn first_read(&mut self, map: &ColumnMap, now: Timestamp) -> Result<(), EngineError> {
        if self.config.source.start_at().is_none() {
            let backlog = backlog(&mut self.source, map, now)?;
            if backlog.responses > 0 {
                return Err(EngineError::StartAtNeeded(backlog));
            }
        }
        let mut changes = Changes::new();
        changes.set_cursor(&Cursor { rows_seen: 1, last_id: None });
        Ok(self.store.commit(changes)?)
    }

    /// Rows were moved or deleted: nothing more is registered or changed from the source
    /// until they are back, and the administrators are told once.
    fn halt_ingestion(
        &mut self,
        reason: String,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let source = self.source.describe();
        // The reason (Spanish, for the alert) quotes requesters' addresses: not for the log.
        error!(source = %source, "ingestion stopped: rows of the responses were moved or deleted; the administrators were told");
        let body = format!(
            "{reason}.\n\nNo se registra ni se cambia ninguna solicitud a partir de {source} hasta que las filas vuelvan a su lugar \
             (deshaga el cambio en la hoja de respuestas). Las solicitudes ya registradas siguen su curso."
        );
        self.alert_condition(Condition::Halted, "Lectura de respuestas detenida", &body, now)?;
        report.halted = Some(reason);
        Ok(())
    }

    /// The source's header mapped to the form's fields. A required column missing means
    /// someone changed the form's questions: nothing is registered until the header is right
    /// again (one alert), and the rest of the cycle (directory, mail) goes on.
    fn column_map(
        &mut self,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<Option<ColumnMap>, EngineError> {
        let header = self.source.header(now)?;
        // The header changes when the form does: mapped once, not every poll.
        let mapped = match self.columns.take() {
            Some((known, map)) if known == header => Ok(map),
            _ => ColumnMap::new(&header, &self.config.form.columns)
                .map(|map| map.with_options(self.config.form_options())),
        };
        match mapped {
            Ok(map) => {
                self.columns = Some((header, map.clone()));
                self.condition_cleared(Condition::Columns)?;
                Ok(Some(map))
            }
            Err(missing) => {
                error!(source = %self.source.describe(), "ingestion stopped: {missing}");
                self.alert_condition(
                    Condition::Columns,
                    "Faltan columnas en el formulario",
                    &missing.to_string(),
                    now,
                )?;
                report.source_error = Some(missing.to_string());
                Ok(None)
            }
        }
    }

    /// Reads the authorizer matrix from its tab. A matrix that cannot be read or is invalid
    /// leaves the one read before in force (with an alert); with none, nothing is registered.
    fn read_matrix(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let Some(sheet) = &mut self.matrix_sheet else { return Ok(()) };
        let read = sheet.read_all(now);
        let what = sheet.describe();
        match read {
            Ok((header, rows)) => {
                match Matrix::from_rows(&header, rows.into_iter().map(|r| (r.row, r.cells))) {
                    Ok(matrix) => {
                        self.matrix = Some(matrix);
                        self.condition_cleared(Condition::Matrix)
                    }
                    Err(e) => self.matrix_invalid(&what, e, now, report),
                }
            }
            Err(e) if self.matrix.is_none() => Err(SourceError::Sheet(e).into()),
            Err(e) => {
                warn!(error = %e, "cannot read the authorizer matrix again; the one read before stays in force");
                Ok(())
            }
        }
    }

    /// The matrix CSV read again; taken anew when it changed.
    fn reread_matrix_file(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let Some((path, seen)) = &self.matrix_file else { return Ok(()) };
        let bytes = match std::fs::read(path) {
            Ok(bytes) if bytes == *seen => return Ok(()),
            Ok(bytes) => bytes,
            Err(e) => {
                warn!(error = %e, "cannot read the authorizer matrix again; the one read before stays in force");
                return Ok(());
            }
        };
        let what = path.display().to_string();
        self.matrix_file = Some((path.clone(), bytes.clone()));
        match Matrix::parse(bytes.as_slice()) {
            Ok(matrix) => {
                info!(source = %what, authorizers = matrix.len(), "the authorizer matrix changed: read again");
                self.matrix = Some(matrix);
                self.condition_cleared(Condition::Matrix)
            }
            Err(e) => self.matrix_invalid(&what, e, now, report),
        }
    }

    /// A new matrix that is not valid: of the one in force, only the rows the new one keeps
    /// the same stay (a removal applies at once; nothing unchecked is added); the
    /// administrators are told. A matrix that cannot be read at all leaves the old one whole.
    fn matrix_invalid(
        &mut self,
        what: &str,
        e: MatrixError,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let problem = e.to_string();
        error!(source = %what, "the authorizer matrix is not valid: {problem}");
        let kept = match (&e, &self.matrix) {
            (MatrixError::Invalid { valid, .. }, Some(old)) => {
                self.matrix = Some(old.kept_in(valid));
                "Siguen en uso solo las filas de la matriz anterior que la nueva conserva iguales: las que se \
                 retiraron o cambiaron ya no autorizan."
            }
            (_, Some(_)) => "Sigue en uso la última matriz válida leída.",
            (_, None) => "No se registra ninguna solicitud hasta que se corrija.",
        };
        let body = format!("La matriz de autorizadores ({what}) no es válida:\n\n{problem}\n\n{kept}");
        self.alert_condition(Condition::Matrix, "Matriz de autorizadores no válida", &body, now)?;
        if self.matrix.is_none() {
            report.source_error = Some(format!("the authorizer matrix is not valid: {problem}"));
        }
        Ok(())
    }

    /// A row seen before, against the request registered from it: an edit of an open request
    /// is kept in `edits`; another requester's answers mean rows were moved or deleted, and
    /// the reason (in Spanish) is returned.
    fn review(
        &self,
        map: &ColumnMap,
        id: RequestId,
        row: RawRow,
        edits: &mut Edits,
    ) -> Result<Option<String>, EngineError> {
        let Some(request) = self.store.request(id)? else { return Ok(None) };
        // A request waiting for its option to be mapped is read again once it is.
        let remapped = request.state.name() == StateName::Received
            && !request.submission.unmapped.is_empty()
            && intake::parse_row(map, row.row, &row.cells).unmapped.is_empty();
        if request.row_hash == row_hash(&row.cells) && !remapped {
            return Ok(None);
        }
        let requester = intake::parse_row(map, row.row, &row.cells).requester;
        if requester != request.submission.requester {
            return Ok(Some(format!(
                "la fila {} era la solicitud {} de {} y ahora es de «{}»: alguien movió o borró filas de las respuestas",
                row.row, id, request.submission.requester, requester
            )));
        }
        if request.is_open() {
            edits.push((id, row));
        }
        Ok(None)
    }

    /// The sheet did not answer: said once per kind of failure in the log, and, when a person
    /// must act (access, key, id), once to the administrators.
    fn source_failed(
        &mut self,
        e: SheetError,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let source = self.source.describe();
        match &e {
            SheetError::BackingOff { .. } => tracing::debug!(source = %source, "{e}"),
            e if e.is_transient() => {
                warn!(source = %source, error = %e, "cannot read the responses; trying again later")
            }
            e => {
                error!(source = %source, error = %e, "cannot read the responses; trying again slowly");
                let body = format!(
                    "cuentas no puede leer las respuestas del formulario ({source}):\n\n{e}\n\n\
                     Las solicitudes nuevas esperan hasta que se corrija; las ya registradas siguen su curso."
                );
                self.alert_condition(Condition::Source, "No se pueden leer las respuestas", &body, now)?;
            }
        }
        report.source_error = Some(e.to_string());
        Ok(())
    }

    /// New rows, each a request triaged at once; the batch, the counter and the cursor are one
    /// commit.
    fn register(
        &mut self,
        map: &ColumnMap,
        rows: Vec<RawRow>,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let Some(last) = rows.last().map(|r| r.row) else {
            return Ok(());
        };
        let year = now.to_zoned(self.config.calendar.time_zone().clone()).year();
        let mut seq = self.store.counter(year)?;
        let mut changes = Changes::new();
        let mut people = super::retention::Batch::new();
        let parsed = self.parse_from_start(map, rows, report);
        let registered_last = parsed.last().is_some_and(|(row, _)| row.row == last);
        let proved = self.rows_the_form_wrote(&parsed, now)?;
        self.prefetch_returning(&parsed);
        for (row, submission) in parsed {
            seq += 1;
            let id = RequestId { year, seq };
            let mut request = Request::new(id, row.row, row_hash(&row.cells), submission, now, now);
            request.shadow = self.directory.is_shadow();
            if let Some(proved) = &proved {
                let response = proved.get(&row.row);
                request.form_response = response.map(|r| r.response_id.clone());
                request.form_submitted = response.map(|r| r.last_submitted);
                if request.form_response.is_none() {
                    self.not_the_form_s(&mut request, &mut changes, report, now)?;
                    report.registered += 1;
                    continue;
                }
            }
            self.identify(&mut request, &mut changes, &mut people, now)?;
            self.measure_sla(&mut request, now);
            self.open_ticket(&mut request, now);
            self.take_on(&mut request, &mut changes, report, now)?;
            report.registered += 1;
        }
        self.directory.clear_prefetch();
        changes.set_counter(year, seq);
        // The last row's request, if it was registered (not passed over as before the start).
        let last_id = registered_last.then_some(RequestId { year, seq });
        changes.set_cursor(&Cursor { rows_seen: last, last_id });
        self.store.commit(changes)?;
        Ok(())
    }

    /// Parses a batch, passing over the responses before `[source] start_at` (the entity's
    /// past: never registered or answered).
    fn parse_from_start(
        &self,
        map: &ColumnMap,
        rows: Vec<RawRow>,
        report: &mut CycleReport,
    ) -> Vec<(RawRow, Submission)> {
        let start = self.config.source.start_at();
        let read = rows.len();
        let parsed: Vec<(RawRow, Submission)> = rows
            .into_iter()
            .map(|row| {
                let submission = self.parse(map, &row);
                (row, submission)
            })
            .filter(|(row, s)| !start.is_some_and(|start| start.is_before(row.row, s.submitted_at)))
            .collect();
        if parsed.len() < read {
            info!(passed_over = read - parsed.len(), "responses before [source] start_at: not registered");
            report.before_start += read - parsed.len();
        }
        parsed
    }

    /// A new request decided. A response for the same person as one that waits on its fix
    /// carries on from it: an account made for the old one whose access data bounced gets them
    /// at the credential step (once this response is authorized, like any other).
    pub(super) fn take_on(
        &mut self,
        request: &mut Request,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let waiting = self.waiting_for(request)?;
        if let Some(old) = &waiting {
            request.credentials_for = old.credentials_for.clone();
            request.credential_attempts = old.credential_attempts;
        }
        self.decide_new(request, changes, report, now)?;
        // It replaces the waiting one only once decided, and not refused: a response someone
        // may not send, or a repetition, must not cancel the request that waited on its fix.
        let decided =
            !matches!(request.state.name(), StateName::Received | StateName::Rejected | StateName::Cancelled);
        if let Some(old) = waiting.filter(|_| decided) {
            self.replace_waiting(old, request, changes, report, now)?;
        }
        Ok(())
    }

    /// With `[source] form_id`: the form's response proving each row of the batch, by row
    /// (rows left out were not written by the form); `None` without a form to ask.
    fn rows_the_form_wrote(
        &mut self,
        parsed: &[(RawRow, Submission)],
        now: Timestamp,
    ) -> Result<Option<HashMap<u32, FormResponse>>, EngineError> {
        let tz = self.config.calendar.time_zone().clone();
        let claims: Vec<RowClaim<'_>> = parsed
            .iter()
            .map(|(row, s)| RowClaim {
                row: row.row,
                requester: s.requester.as_str(),
                submitted: s.submitted_at.and_then(|at| at.to_zoned(tz.clone()).ok()).map(|z| z.timestamp()),
            })
            .collect();
        let Some(earliest) = claims.iter().filter_map(|c| c.submitted).min() else {
            return Ok(self.source.form_responses(now, now)?.map(|_| HashMap::new()));
        };
        let since = earliest - SignedDuration::from_secs(60);
        let Some(responses) = self.source.form_responses(since, now)? else { return Ok(None) };
        Ok(Some(provenance::rows_the_form_wrote(&claims, &responses)))
    }

    /// With `[source] form_id`, the form's response behind an edited row (`Some(None)`: none,
    /// the row was changed by hand): a response of the row's address at the row's new time,
    /// later than the one the request last had (Forms moves the time on every edit; a hand that
    /// keeps the time finds the old response, which does not count).
    fn edit_the_form_made(
        &mut self,
        map: &ColumnMap,
        request: &Request,
        row: &RawRow,
        now: Timestamp,
    ) -> Result<Option<Option<FormResponse>>, EngineError> {
        let parsed = [(row.clone(), self.parse(map, row))];
        let Some(proved) = self.rows_the_form_wrote(&parsed, now)? else { return Ok(None) };
        let response = proved.get(&row.row).cloned();
        Ok(Some(response.filter(|r| request.form_submitted.is_none_or(|before| r.last_submitted > before))))
    }

    /// A row of an open request changed in the spreadsheet without an edit of the form: the
    /// change is not applied, the administrators are told once, the request goes on as it was.
    fn edit_not_the_form_s(
        &mut self,
        mut request: Request,
        row: &RawRow,
        mut changes: Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        warn!("a row changed in the spreadsheet without an edit of the form; not applied");
        let line = format!(
            "la fila {} cambió en la hoja de respuestas sin una edición del formulario que la respalde: el cambio no se aplica",
            row.row
        );
        request.note(Actor::Daemon, line, now);
        let subject = format!("[cuentas] Fila {} de la hoja de respuestas cambiada a mano", row.row);
        let body = format!(
            "La fila {} de la hoja de respuestas ({}) cambió sin que el formulario registrara una edición de esa \
             respuesta: alguien con acceso a la hoja la modificó. El cambio no se aplica; la solicitud sigue como \
             estaba. Revise quién puede editar la hoja.",
            row.row, request.id
        );
        self.alert(&mut changes, &subject, &body, now)?;
        self.stage(&mut changes, report, &request);
        self.store.commit(changes)?;
        Ok(())
    }

    /// A row the form did not write: registered, refused, and the administrators told; the
    /// address in it is not written to (whoever typed the row chose it).
    fn not_the_form_s(
        &mut self,
        request: &mut Request,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        warn!(request_id = %request.id, row = request.row, "a row the form did not write");
        let reason = format!(
            "La fila {} no corresponde a ninguna respuesta del formulario: se escribió en la hoja de respuestas, \
             no se envió por el formulario",
            request.row
        );
        let subject = format!("[cuentas] Fila {} de la hoja de respuestas escrita a mano", request.row);
        let body = format!(
            "La fila {} de la hoja de respuestas no corresponde a ninguna respuesta del formulario (misma dirección \
             y misma hora): alguien con acceso a la hoja la escribió o la cambió. Se registró como {} y se rechazó \
             sin actuar ni escribir a nadie. Revise quién puede editar la hoja (solo el formulario y los \
             administradores deberían).",
            request.row, request.id
        );
        self.alert(changes, &subject, &body, now)?;
        self.record(
            changes,
            report,
            request,
            Move::daemon(State::Rejected { reason: reason.clone() }, reason),
            now,
        )
    }

    /// Everyone in the batch who may be coming back, looked up together: one search.
    fn prefetch_returning(&mut self, parsed: &[(RawRow, Submission)]) {
        let returning: Vec<String> = parsed
            .iter()
            .filter(|(_, s)| s.problems.is_empty() && !s.id_number.is_empty())
            .filter(|(_, s)| matches!(s.kind, Some(Kind::Create | Kind::Assignment)))
            .map(|(_, s)| s.id_number.clone())
            .collect();
        if !returning.is_empty()
            && let Err(Unreached::Error(e)) = self.reach(|d, _| d.prefetch_employees(&returning))
        {
            log_directory_error(&e, "cannot look the batch's document numbers up; each request will");
        }
    }

    /// The service desk's register gets a ticket for the new request, when there is one.
    pub(super) fn open_ticket(&self, request: &mut Request, now: Timestamp) {
        // Only for the entity's own people: anyone may fill the form in, and a row from outside
        // the domain must not fill the service desk's tool.
        if !self.policy.requester_in_domain(&request.submission.requester) {
            return;
        }
        if let Some(register) = &self.config.mailboxes.register {
            let id = request.id;
            let ticket = OutboxMessage::new(
                OutboxMessage::ticket_id(id),
                Some(id),
                MessageKind::Register,
                vec![register.to_string()],
                submission_text(&request.submission),
                now,
            );
            request.outbox.push(ticket);
        }
    }

    /// A new request decided: cancelled if it repeats one already registered, else triaged.
    fn decide_new(
        &mut self,
        request: &mut Request,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some(first) = self.repeated(request, now)? else {
            return self.triage_and_record(request, changes, report, now);
        };
        info!(request_id = %request.id, first = %first, "repeats a request already registered");
        let reason = format!(
            "Repite la solicitud {first}, que ya está registrada para la misma persona y el mismo tipo de solicitud"
        );
        let cancelled = Move::daemon(State::Cancelled { reason: reason.clone() }, reason.clone())
            .telling(MessageKind::Duplicate, reason);
        self.record(changes, report, request, cancelled, now)
    }

    /// A row's answers, with the dependency checked against the entity's list.
    fn parse(&self, map: &ColumnMap, row: &RawRow) -> Submission {
        let mut submission = intake::parse_row(map, row.row, &row.cells);
        intake::check_department(map, row.row, &mut submission, &self.config.form.departments);
        submission
    }

    /// The request a new one repeats: an open one for the same person and kind (this poll's
    /// included), or one closed within `duplicate_window_days` with the same answers.
    fn repeated(&self, new: &Request, now: Timestamp) -> Result<Option<RequestId>, EngineError> {
        let Some(key) = cover_key(&new.submission) else { return Ok(None) };
        if let Some(id) = self.open.covering(&key) {
            return Ok(Some(id));
        }
        let Some(id) = self.store.covering(&key)? else { return Ok(None) };
        // A request whose personal data are gone covers nothing (nor is there anything left to
        // compare): the person is recognised by the note `identify` wrote.
        let Some(first) = self.store.request(id)?.filter(|r| r.purged.is_none()) else { return Ok(None) };
        let window = SignedDuration::from_hours(24 * i64::from(self.config.form.duplicate_window_days));
        let closed_at = first.history.iter().rev().find(|h| h.to == StateName::Closed).map(|h| h.at);
        let recent = closed_at.is_some_and(|at| now.duration_since(at) <= window);
        Ok((recent && same_answers(&first.submission, &new.submission)).then_some(id))
    }

    /// The request that waits on its requester (`NeedsInfo`) for the same person as `new`.
    fn waiting_for(&self, new: &Request) -> Result<Option<Request>, EngineError> {
        let Some(old_id) = self.open.waiting(&new.submission.id_number) else { return Ok(None) };
        Ok(self.store.request(old_id)?.filter(|old| old.state.name() == StateName::NeedsInfo))
    }

    /// A new response for a person whose earlier request waits on the requester replaces it:
    /// the earlier one is cancelled, pointing at the new one, which went through from the start.
    fn replace_waiting(
        &mut self,
        mut old: Request,
        new: &Request,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let reason = format!("reemplazada por {} (respuesta nueva en la fila {})", new.id, new.row);
        let actor = Actor::Requester(new.submission.requester.clone());
        info!(request_id = %old.id, replaced_by = %new.id, "waiting request replaced by a new response");
        let state = State::Cancelled { reason: reason.clone() };
        self.record(changes, report, &mut old, super::Move::by(actor, state, reason), now)
    }

    /// An edited row of an open request: re-validated if the request waits on the requester.
    fn edit(
        &mut self,
        map: &ColumnMap,
        id: RequestId,
        row: RawRow,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let Some(mut request) = self.store.request(id)? else {
            return Ok(());
        };
        let _span = info_span!("request", request_id = %id, row = row.row).entered();
        let mut changes = Changes::new();
        // A row read again only because its option is mapped now is not an edit: nothing to
        // prove about who changed it.
        let changed = request.row_hash != row_hash(&row.cells);
        request.row_hash = row_hash(&row.cells);
        match if changed { self.edit_the_form_made(map, &request, &row, now)? } else { None } {
            Some(Some(response)) => request.form_submitted = Some(response.last_submitted),
            Some(None) => return self.edit_not_the_form_s(request, &row, changes, report, now),
            None => {}
        }
        let actor = Actor::Requester(request.submission.requester.clone());
        let scheduled = request.state.name() == StateName::Scheduled;
        // Waiting on the requester (the SLA clock stopped meanwhile: `record` measures it), or
        // nothing done yet: validated, authorized and planned again (a corrected date moves
        // the job).
        if request.state.name() == StateName::Received && !request.submission.unmapped.is_empty() {
            // Its option is mapped now (or the row changed): read whole, then decided.
            let first = request.submission.submitted_at;
            request.submission = self.parse(map, &row);
            request.submission.submitted_at = first.or(request.submission.submitted_at);
            self.identify(&mut request, &mut changes, &mut super::retention::Batch::new(), now)?;
            request.note(
                Actor::Daemon,
                format!("fila {} leída de nuevo con las opciones del formulario configuradas", row.row),
                now,
            );
            self.triage_and_record(&mut request, &mut changes, report, now)?;
        } else if request.state.name() == StateName::NeedsInfo || (scheduled && request.phase == Phase::Start)
        {
            self.decide_again(&mut changes, report, &mut request, map, &row, now)?;
        } else if let State::Scheduled { plan, .. } = request.state.clone()
            && request.phase == Phase::Return
            && let edited = self.parse(map, &row)
            && edited.problems.is_empty()
            && let Some(back) = edited.return_date
        {
            // The account is disabled already: only its return date can still change.
            request.submission.return_date = Some(back);
            let due = self.due(&request).unwrap_or(now);
            let reason = format!(
                "respuesta editada en la fila {}: la fecha de regreso pasa a {}",
                row.row,
                crate::notify::spanish_datetime(due, self.config.calendar.time_zone())
            );
            let step = super::Move::by(actor, State::Scheduled { due, plan }, reason);
            self.record(&mut changes, report, &mut request, step, now)?;
        } else {
            warn!(state = %request.state.name(), "response edited after the request moved on; the edit is not applied");
            request.note(
                actor,
                format!(
                    "respuesta editada en la fila {} con la solicitud ya en curso: la edición no se aplica",
                    row.row
                ),
                now,
            );
            self.stage(&mut changes, report, &request);
        }
        self.store.commit(changes)?;
        report.edited += 1;
        Ok(())
    }
}

impl Engine {
    /// An edited response to a request not yet acted on: read again, back to `Received`, and
    /// decided again from the start.
    fn decide_again(
        &mut self,
        changes: &mut Changes,
        report: &mut CycleReport,
        request: &mut Request,
        map: &ColumnMap,
        row: &RawRow,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        // Forms rewrites an edited response's timestamp with the time of the edit: the service
        // level counts from the first submission, which only this request kept.
        let first = request.submission.submitted_at;
        request.submission = self.parse(map, row);
        if first.is_some() {
            request.submission.submitted_at = first;
        }
        self.identify(request, changes, &mut super::retention::Batch::new(), now)?;
        if let Some(name) = request.reserved_account.take() {
            self.open.release_name(&name);
        }
        let actor = Actor::Requester(request.submission.requester.clone());
        let reason = format!("respuesta editada en la fila {}", row.row);
        self.record(changes, report, request, super::Move::by(actor, State::Received, reason), now)?;
        info!("edited response re-validated");
        self.triage_and_record(request, changes, report, now)
    }
}

/// A submission as the service-desk tool's ticket lists it: each answer given, labelled.
fn submission_text(s: &Submission) -> String {
    let date = |d: Option<jiff::civil::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    let fields = [
        ("Solicitante", s.requester.clone()),
        ("Tipo de solicitud", s.kind_answer.clone()),
        ("Tipo de vinculación", s.holder_type.map(|h| h.label().to_string()).unwrap_or_default()),
        ("Nombres", s.given_names.clone()),
        ("Apellidos", s.surnames.clone()),
        ("Documento", format!("{} {}", s.id_type, s.id_number).trim().to_string()),
        ("Correo personal", s.personal_email.clone()),
        ("Dependencia", s.department.clone()),
        ("Cargo", s.title.clone()),
        ("Jefe o supervisor", s.manager_email.clone()),
        ("Contrato", s.contract_number.clone()),
        ("Inicio del contrato", date(s.contract_start)),
        ("Terminación del contrato", date(s.contract_end)),
        ("Usuario de red", s.account.clone()),
        ("Fecha efectiva", date(s.effective_date)),
        ("Fecha de regreso", date(s.return_date)),
        ("Accesos o grupos", s.groups.join(", ")),
        ("Observaciones", s.notes.clone()),
    ];
    let mut out: Vec<String> =
        fields.into_iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("  {k}: {v}")).collect();
    if !s.problems.is_empty() {
        out.push(format!(
            "  Por corregir: {}",
            s.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        ));
    }
    out.join("\n")
}

/// What reading the tail came to.
enum Tail {
    /// Read to the end, or to a row that stops ingestion (`halt`); `map` is the header as last
    /// read (a question added to the form widens it).
    Read { halt: Option<String>, map: ColumnMap },
    /// The header lost a required column (already alerted).
    HeaderMissing,
}

/// The same answers, whenever they were given.
fn same_answers(a: &Submission, b: &Submission) -> bool {
    let when = |s: &Submission| Submission { submitted_at: None, ..s.clone() };
    when(a) == when(b)
}

/// What a source holds that cuentas has not registered: every response row, counted, and the
/// first and last submission times (a first start reads it all once).
pub fn backlog(source: &mut Source, map: &ColumnMap, now: Timestamp) -> Result<Backlog, SourceError> {
    responses_where(source, map, now, |_, _| true)
}

/// The responses a start at `start` passes over.
pub fn backlog_before(
    source: &mut Source,
    map: &ColumnMap,
    start: crate::config::StartAt,
    now: Timestamp,
) -> Result<Backlog, SourceError> {
    responses_where(source, map, now, |row, at| start.is_before(row, at))
}

fn responses_where(
    source: &mut Source,
    map: &ColumnMap,
    now: Timestamp,
    counted: impl Fn(u32, Option<jiff::civil::DateTime>) -> bool,
) -> Result<Backlog, SourceError> {
    let mut backlog = Backlog { source: source.describe(), responses: 0, first: None, last: None };
    each_response(source, now, |row| {
        let submitted = intake::parse_row(map, row.row, &row.cells).submitted_at;
        if !counted(row.row, submitted) {
            return;
        }
        backlog.responses += 1;
        if let Some(at) = submitted {
            backlog.first = Some(backlog.first.map_or(at, |f| f.min(at)));
            backlog.last = Some(backlog.last.map_or(at, |l| l.max(at)));
        }
    })?;
    Ok(backlog)
}

/// Every answer of the kind and holder-type questions that no option maps, and every
/// dependency not in `[form] departments`, from where the entity starts: `(setting, answer,
/// responses)`, in the order first seen.
pub fn unmapped_answers(
    source: &mut Source,
    map: &ColumnMap,
    departments: &[String],
    start: Option<crate::config::StartAt>,
    now: Timestamp,
) -> Result<Vec<(String, String, usize)>, SourceError> {
    let listed: Vec<String> = departments.iter().map(|d| intake::fold(d)).collect();
    let mut found: Vec<(String, String, usize)> = Vec::new();
    each_response(source, now, |row| {
        let s = intake::parse_row(map, row.row, &row.cells);
        if start.is_some_and(|start| start.is_before(row.row, s.submitted_at)) {
            return;
        }
        let mut answers = s.unmapped;
        if !listed.is_empty() && !s.department.is_empty() && !listed.contains(&intake::fold(&s.department)) {
            answers.push(("form.departments".into(), s.department));
        }
        for (setting, answer) in answers {
            match found.iter_mut().find(|(s, a, _)| *s == setting && intake::fold(a) == intake::fold(&answer))
            {
                Some(seen) => seen.2 += 1,
                None => found.push((setting, answer, 1)),
            }
        }
    })?;
    Ok(found)
}

/// Calls `each` with every row that holds an answer, page by page.
fn each_response(
    source: &mut Source,
    now: Timestamp,
    mut each: impl FnMut(&RawRow),
) -> Result<(), SourceError> {
    let mut from = 2;
    loop {
        let page = source.page(from, now)?;
        for row in page.rows.iter().filter(|r| r.cells.iter().any(|c| !c.trim().is_empty())) {
            each(row);
        }
        match page.next {
            Some(next) => from = next,
            None => return Ok(()),
        }
    }
}
