//! The engine: registers new rows, decides, plans, carries out and reports each request one
//! step at a time, each step's outcome durable before the next outside effect (DESIGN §10).
//! `now` is always a parameter.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use minijinja::Value;
use tracing::{error, info, info_span, warn};

use crate::calendar::Calendar;
use crate::config::Config;
use crate::config::DirectoryMode;
use crate::directory::Directory;
use crate::directory::dryrun::DryRun;
use crate::directory::ldap::{Ldap, LdapError, LdapSettings};
use crate::directory::password::Password;
use crate::directory::plan::{self, DirectoryOp, Layout, NoPlan, Plan};
use crate::directory::snapshot::{Snapshot, SnapshotError};
use crate::intake::{self, ColumnMap};
use crate::notify::file::{Envelope, FileSender, SendError};
use crate::notify::{self, Mailer, Rendered, TemplateError, Templates};
use crate::policy::{Decision, Matrix, MatrixError, Policy, Query, TargetAccount};
use crate::request::{Actor, HolderType, IllegalTransition, Kind, Request, RequestId, State, StateName};
use crate::source::sheet::{SheetError, SheetSource};
use crate::source::{RawRow, Source, SourceError, row_hash};
use crate::store::{Changes, Cursor, Delivery, MessageKind, OutboxMessage, Store, StoreError};
use std::sync::Arc;

/// Rows registered per batch: bounds memory on a large first import; one flush per batch.
const REGISTER_BATCH: usize = 1000;
/// First retry of a message that could not be delivered; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: SignedDuration = SignedDuration::from_secs(60);
const MAX_RETRY: SignedDuration = SignedDuration::from_secs(3600);
/// Attempts at a directory step before it goes `Failed`.
const MAX_ATTEMPTS: u32 = 8;

/// What stops a cycle. Each says what an operator must do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Mail(#[from] SendError),
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot generate a password: {0}")]
    Random(String),
}

/// What one cycle did, for the operator.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// Requests registered or moved, in the order first touched.
    pub touched: Vec<RequestId>,
    touched_set: HashSet<RequestId>,
    pub registered: usize,
    pub edited: usize,
    pub sent: usize,
    /// Why ingestion stopped, if it did.
    pub halted: Option<String>,
    /// Why the source could not be read this cycle, if it could not.
    pub source_error: Option<String>,
}

impl CycleReport {
    fn touch(&mut self, id: RequestId) {
        if self.touched_set.insert(id) {
            self.touched.push(id);
        }
    }
}

/// Everything the engine decides with, loaded once.
pub struct Engine {
    config: Config,
    calendar: Calendar,
    policy: Policy,
    /// The authorizer matrix; `None` until a spreadsheet tab holding it has been read.
    matrix: Option<Matrix>,
    /// The tab it is read from (and read again on the edit-check schedule), if not a file.
    matrix_sheet: Option<SheetSource>,
    layout: Layout,
    templates: Templates,
    envelope: Envelope,
    sender: Mailer,
    directory: Directory,
    store: Store,
    /// Account names claimed by open requests: derived from the store at start, kept in step
    /// by [`Engine::put`].
    claimed: HashSet<String>,
    /// Requests waiting on the requester (`NeedsInfo`), by the person's document number: a new
    /// response for the same person replaces them (procedure, activity 5).
    waiting: HashMap<String, RequestId>,
    source: Source,
    /// When the rows of open requests were last read again.
    last_edit_check: Option<Timestamp>,
    /// Ingestion stopped last cycle: the edit check runs at every cycle until it resumes.
    halted: bool,
}

impl Engine {
    /// Loads the matrix, the snapshot and the templates, and opens the store.
    pub fn new(config: Config) -> Result<Engine, EngineError> {
        let calendar = config.calendar().map_err(|e| EngineError::Config(e.to_string()))?;
        let rules = crate::policy::Rules::default()
            .with_overrides(&config.authorizers.rules)
            .map_err(|e| EngineError::Config(e.join("; ")))?;
        let policy = Policy { rules, requester_domains: config.form.requester_domains.clone() };
        let matrix = config.authorizers.path.as_deref().map(Matrix::load).transpose()?;
        let layout = Layout::new(config.directory.clone()).map_err(|e| EngineError::Config(e.to_string()))?;
        let directory = match config.directory.mode {
            DirectoryMode::DryRun => {
                let snapshot = match &config.directory.snapshot_path {
                    Some(path) => Snapshot::load(path)?,
                    None => Snapshot::default(),
                };
                Directory::DryRun { snapshot: Arc::new(snapshot), log: DryRun::default() }
            }
            DirectoryMode::Ldap => {
                let settings = LdapSettings::from_config(&config).map_err(EngineError::Config)?;
                Directory::Ldap(Box::new(Ldap::new(settings, calendar.time_zone().clone())))
            }
        };
        let templates = Templates::load(config.mail.templates_dir.as_deref())?;
        let envelope = Envelope::new(&config.mail.from, config.mail.reply_to.as_deref())?;
        let sender = match config.mail.transport {
            crate::config::MailTransport::File => {
                let spool = config.mail.spool_dir.clone().unwrap_or_else(|| config.state_dir.join("correo"));
                Mailer::File(FileSender::new(&spool)?)
            }
            crate::config::MailTransport::Smtp => {
                let m = &config.mail;
                let ca_pem = match &m.smtp_ca_file {
                    Some(p) => Some(std::fs::read(p).map_err(|e| {
                        EngineError::Config(format!("cannot read [mail] smtp_ca_file {}: {e}", p.display()))
                    })?),
                    None => None,
                };
                let security = m.smtp_security;
                let settings = crate::notify::smtp::SmtpSettings {
                    host: m.smtp_host.clone().unwrap_or_default(),
                    port: m.smtp_port.unwrap_or(if security == crate::config::SmtpSecurity::Tls {
                        465
                    } else {
                        587
                    }),
                    security,
                    ca_pem,
                    username: m.smtp_username.clone(),
                    password: config.smtp_password().map_err(EngineError::Config)?,
                    timeout: std::time::Duration::from_secs(m.smtp_timeout_secs),
                };
                Mailer::Smtp(crate::notify::smtp::SmtpSender::new(&settings)?)
            }
        };
        let source = Source::from_config(&config)?;
        let matrix_sheet = crate::source::matrix_sheet(&config, &source)?;
        let store = Store::open(&config.state_dir)?;
        let open = store.open_requests()?;
        let waiting = open
            .iter()
            .filter(|r| r.state.name() == StateName::NeedsInfo && !r.submission.id_number.is_empty())
            .map(|r| (r.submission.id_number.clone(), r.id))
            .collect();
        let claimed = open.into_iter().filter_map(|r| r.reserved_account).collect();
        Ok(Engine {
            config,
            calendar,
            policy,
            matrix,
            matrix_sheet,
            layout,
            templates,
            envelope,
            sender,
            directory,
            store,
            claimed,
            waiting,
            source,
            last_edit_check: None,
            halted: false,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Binds to the directory and reads its password policy: proof that it answers.
    pub fn check_directory(&mut self) -> Result<(), LdapError> {
        self.directory.password_length().map(|_| ())
    }

    /// The directory, for tests that inspect or interrupt what it does.
    pub fn directory_mut(&mut self) -> &mut Directory {
        &mut self.directory
    }

    pub fn store_dir(&self) -> &std::path::Path {
        &self.config.state_dir
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// Stages a request's new state and keeps the claimed names in step with it.
    fn put(&mut self, changes: &mut Changes, request: &Request) {
        let document = &request.submission.id_number;
        if !document.is_empty() {
            if request.state.name() == StateName::NeedsInfo {
                self.waiting.insert(document.clone(), request.id);
            } else if self.waiting.get(document) == Some(&request.id) {
                self.waiting.remove(document);
            }
        }
        if let Some(name) = &request.reserved_account {
            if request.is_open() {
                self.claimed.insert(name.clone());
            } else {
                self.claimed.remove(name);
            }
        }
        changes.put_request(request);
    }

    /// One full cycle: new and edited rows, due work, mail, and closing what was reported.
    pub fn cycle(&mut self, now: Timestamp) -> Result<CycleReport, EngineError> {
        let mut report = CycleReport::default();
        self.ingest(now, &mut report)?;
        self.advance(now, &mut report)?;
        self.deliver(now, &mut report)?;
        self.advance(now, &mut report)?;
        Ok(report)
    }

    fn today(&self, now: Timestamp) -> Date {
        now.to_zoned(self.calendar.time_zone().clone()).date()
    }

    /// Reads the source: registers new rows, re-validates edited rows of open requests, and
    /// stops (with an alert) when rows were deleted or reordered. A source that does not
    /// answer (Google's quota, the network) is reported and tried again later; the rest of
    /// the cycle goes on.
    pub fn ingest(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        match self.read_source(now, report) {
            Err(EngineError::Source(SourceError::Sheet(e))) => self.source_failed(e, now, report),
            other => other,
        }
    }

    fn read_source(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let check_edits = self.halted
            || match (self.source.edit_check_interval(), self.last_edit_check) {
                (Some(interval), Some(last)) => now.duration_since(last) >= interval,
                _ => true,
            };
        if check_edits || self.matrix.is_none() {
            self.read_matrix(now, report)?;
            if self.matrix.is_none() {
                return Ok(());
            }
        }
        if check_edits {
            self.source.refresh(now)?;
        }
        let Some(mut map) = self.column_map(now, report)? else { return Ok(()) };
        let cursor = self.store.cursor()?;
        let open = self.store.open_rows()?;
        let mut edits = Vec::new();
        let mut halt = None;
        // Rows already seen matter only while their request is open: their edits.
        if check_edits {
            let wanted: Vec<u32> = open.keys().copied().filter(|r| *r != cursor.rows_seen).collect();
            for row in self.source.rows(&wanted, now)? {
                let Some(&id) = open.get(&row.row) else { continue };
                halt = self.review(&map, id, row, &mut edits)?;
                if halt.is_some() {
                    break;
                }
            }
            self.last_edit_check = Some(now);
        }
        // The tail, from the last row seen (included: a changed or missing last row means
        // rows were moved or deleted) to the end.
        let mut batch = Vec::new();
        let mut from = cursor.rows_seen.max(2);
        let mut saw_last = cursor.rows_seen < 2;
        while halt.is_none() {
            let page = self.source.page(from, now)?;
            if page.header_changed {
                let Some(wider) = self.column_map(now, report)? else { return Ok(()) };
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
                let id = open.get(&row.row).copied().or(cursor.last_id);
                let Some(id) = id else { continue };
                halt = self.review(&map, id, row, &mut edits)?;
                if halt.is_some() {
                    break;
                }
            }
            match page.next {
                Some(next) => from = next,
                None => break,
            }
        }
        if halt.is_none() && !saw_last {
            halt = Some(format!(
                "las respuestas ya no llegan a la fila {} y ya se habían registrado {} filas: alguien borró filas",
                cursor.rows_seen,
                cursor.rows_seen.saturating_sub(1)
            ));
        }
        self.halted = halt.is_some();
        if let Some(reason) = halt {
            let source = self.source.describe();
            error!(source = %source, "ingestion stopped: {reason}");
            let body = format!(
                "{reason}.\n\nNo se registra ni se cambia ninguna solicitud a partir de {source} hasta que las filas vuelvan a su lugar \
                 (deshaga el cambio en la hoja de respuestas). Las solicitudes ya registradas siguen su curso."
            );
            let mut changes = Changes::new();
            self.alert(&mut changes, "Lectura de respuestas detenida", &body, now)?;
            self.store.commit(changes)?;
            report.halted = Some(reason);
            return Ok(());
        }
        self.register(&map, batch, now, report)?;
        for (id, row) in edits {
            if self.store.request(id)?.is_some_and(|r| r.is_open()) {
                self.edit(&map, id, row, now, report)?;
            }
        }
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
        match ColumnMap::new(&header, &self.config.form.columns) {
            Ok(map) => Ok(Some(map)),
            Err(missing) => {
                error!(source = %self.source.describe(), "ingestion stopped: {missing}");
                let mut changes = Changes::new();
                self.alert(&mut changes, "Faltan columnas en el formulario", &missing.to_string(), now)?;
                self.store.commit(changes)?;
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
        let problem = match read {
            Ok((header, rows)) => {
                match Matrix::from_rows(&header, rows.into_iter().map(|r| (r.row, r.cells))) {
                    Ok(matrix) => {
                        self.matrix = Some(matrix);
                        return Ok(());
                    }
                    Err(e) => e.to_string(),
                }
            }
            Err(e) if self.matrix.is_none() => return Err(SourceError::Sheet(e).into()),
            Err(e) => {
                warn!(error = %e, "cannot read the authorizer matrix again; the one read before stays in force");
                return Ok(());
            }
        };
        error!(source = %what, "the authorizer matrix is not valid: {problem}");
        let body = format!(
            "La matriz de autorizadores ({what}) no es válida:\n\n{problem}\n\n{}",
            if self.matrix.is_some() {
                "Sigue en uso la última matriz válida leída."
            } else {
                "No se registra ninguna solicitud hasta que se corrija."
            }
        );
        let mut changes = Changes::new();
        self.alert(&mut changes, "Matriz de autorizadores no válida", &body, now)?;
        self.store.commit(changes)?;
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
        edits: &mut Vec<(RequestId, RawRow)>,
    ) -> Result<Option<String>, EngineError> {
        let Some(request) = self.store.request(id)? else { return Ok(None) };
        if request.row_hash == row_hash(&row.cells) {
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
                let mut changes = Changes::new();
                let body = format!(
                    "cuentas no puede leer las respuestas del formulario ({source}):\n\n{e}\n\n\
                     Las solicitudes nuevas esperan hasta que se corrija; las ya registradas siguen su curso."
                );
                self.alert(&mut changes, "No se pueden leer las respuestas", &body, now)?;
                self.store.commit(changes)?;
            }
        }
        report.source_error = Some(e.to_string());
        Ok(())
    }

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
        let year = now.to_zoned(self.calendar.time_zone().clone()).year();
        let mut seq = self.store.counter(year)?;
        let mut changes = Changes::new();
        let parsed: Vec<(RawRow, crate::request::Submission)> = rows
            .into_iter()
            .map(|row| {
                let submission = intake::parse_row(map, row.row, &row.cells);
                (row, submission)
            })
            .collect();
        // Everyone who may be coming back, looked up together: one search for the batch.
        let returning: Vec<String> = parsed
            .iter()
            .filter(|(_, s)| s.problems.is_empty() && !s.id_number.is_empty())
            .filter(|(_, s)| matches!(s.kind, Some(Kind::Create | Kind::Assignment)))
            .map(|(_, s)| s.id_number.clone())
            .collect();
        if !returning.is_empty()
            && let Err(e) = self.directory.prefetch_employees(&returning)
        {
            log_directory_error(&e, "cannot look the batch's document numbers up; each request will");
        }
        for (row, submission) in parsed {
            seq += 1;
            let id = RequestId { year, seq };
            let hours = self.config.sla.hours_for(submission.kind);
            let deadline =
                self.calendar.add_business_hours(now, SignedDuration::from_hours(i64::from(hours)));
            let mut request = Request::new(id, row.row, row_hash(&row.cells), submission, now, deadline);
            self.replace_waiting(&request, &mut changes, now)?;
            self.triage(&mut request, now)?;
            self.put(&mut changes, &request);
            report.touch(id);
            report.registered += 1;
        }
        self.directory.clear_prefetch();
        changes.set_counter(year, seq);
        changes.set_cursor(&Cursor { rows_seen: last, last_id: Some(RequestId { year, seq }) });
        self.store.commit(changes)?;
        Ok(())
    }

    /// A new response for a person whose earlier request waits on the requester replaces it:
    /// the earlier one is cancelled, pointing at the new one, which goes through from the start.
    fn replace_waiting(
        &mut self,
        new: &Request,
        changes: &mut Changes,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let document = &new.submission.id_number;
        let Some(&old_id) = self.waiting.get(document) else { return Ok(()) };
        let Some(mut old) = self.store.request(old_id)? else { return Ok(()) };
        if old.state.name() != StateName::NeedsInfo {
            return Ok(());
        }
        let reason = format!("reemplazada por {} (respuesta nueva en la fila {})", new.id, new.row);
        let actor = Actor::Requester(new.submission.requester.clone());
        info!(request_id = %old.id, replaced_by = %new.id, "waiting request replaced by a new response");
        old.transition(State::Cancelled { reason: reason.clone() }, actor, reason, now)?;
        self.put(changes, &old);
        Ok(())
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
        request.row_hash = row_hash(&row.cells);
        let actor = Actor::Requester(request.submission.requester.clone());
        if let State::NeedsInfo { since, .. } = request.state {
            // The SLA clock stopped while the request waited on the requester.
            let paused = self.calendar.business_hours_between(since, now);
            request.sla_deadline = self.calendar.add_business_hours(request.sla_deadline, paused);
            request.submission = intake::parse_row(map, row.row, &row.cells);
            if let Some(name) = request.reserved_account.take() {
                self.claimed.remove(&name);
            }
            request.transition(
                State::Received,
                actor,
                format!("respuesta editada en la fila {}", row.row),
                now,
            )?;
            info!("edited response re-validated");
            self.triage(&mut request, now)?;
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
        }
        self.put(&mut changes, &request);
        self.store.commit(changes)?;
        report.touch(id);
        report.edited += 1;
        Ok(())
    }

    /// A `Received` request to its next state: answered (`Rejected`, `Routed`), waiting on the
    /// requester (`NeedsInfo`), planned (`Scheduled`, `Executing`) or handed to a person (`Manual`).
    fn triage(&mut self, request: &mut Request, now: Timestamp) -> Result<(), EngineError> {
        let s = &request.submission;
        let _span = info_span!("request", request_id = %request.id, row = request.row, kind = s.kind.map_or("?", Kind::key)).entered();
        let today = self.today(now);
        let (state, message, note) = match s.kind {
            Some(Kind::OutOfScope) => (
                State::Routed {
                    reason: format!(
                        "«{}» no es una solicitud de gestión de usuarios; regístrela mediante {}",
                        s.kind_answer, self.config.mail.service_request_procedure
                    ),
                },
                Some(MessageKind::Routed),
                None,
            ),
            _ if !s.requester.is_empty() && !self.policy.requester_in_domain(&s.requester) => (
                State::Rejected {
                    reason: format!(
                        "La dirección {} no pertenece a la entidad ({}); las solicitudes se hacen con el correo institucional",
                        s.requester,
                        self.config.form.requester_domains.join(", ")
                    ),
                },
                Some(MessageKind::Rejection),
                None,
            ),
            _ if !s.problems.is_empty() => {
                let reason = s.problems.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n");
                (State::NeedsInfo { reason, since: now }, Some(MessageKind::NeedsInfo), None)
            }
            Some(kind) => match self.authorize_and_plan(request, kind, today, now)? {
                Some(outcome) => outcome,
                // The directory did not answer: the request stays Received and is tried again.
                None => return Ok(()),
            },
            None => (
                State::NeedsInfo { reason: "Falta el tipo de solicitud".into(), since: now },
                Some(MessageKind::NeedsInfo),
                None,
            ),
        };
        let reason = note.unwrap_or_else(|| state.reason().to_string());
        let name = state.name();
        request.transition(state, Actor::Daemon, reason.clone(), now)?;
        match name {
            StateName::Rejected | StateName::Routed | StateName::NeedsInfo => {
                info!(state = %name, "{}", first_line(&reason))
            }
            _ => info!(state = %name, "registered"),
        }
        if matches!(name, StateName::Scheduled | StateName::Executing | StateName::Manual) {
            self.queue(request, MessageKind::Acknowledgement, String::new(), now);
        }
        if name == StateName::Manual {
            self.queue(request, MessageKind::ManualHandling, reason, now);
        } else if let Some(kind) = message {
            self.queue(request, kind, reason, now);
        }
        if let Some(plan) = request.state.plan() {
            request.account = Some(plan.account.clone());
        }
        if let Some(plan) = request.state.plan()
            && plan.ops.iter().any(|op| matches!(op, plan::DirectoryOp::Create { .. }))
        {
            request.reserved_account = Some(plan.account.clone());
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn authorize_and_plan(
        &mut self,
        request: &Request,
        kind: Kind,
        today: Date,
        now: Timestamp,
    ) -> Result<Option<(State, Option<MessageKind>, Option<String>)>, EngineError> {
        let s = &request.submission;
        let holder = s.holder_type.unwrap_or(HolderType::Employee);
        let snapshot = match self.directory.snapshot_for(request, &self.layout) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                log_directory_error(&e, "cannot read the directory; the request waits");
                return Ok(None);
            }
        };
        let target = snapshot.by_sam(&s.account);
        let query = Query {
            requester: &s.requester,
            kind,
            holder,
            department: if s.department.is_empty() {
                target.map_or("", |t| t.department.as_str())
            } else {
                &s.department
            },
            target: target.map(|t| TargetAccount {
                mail: &t.mail,
                manager_mail: (!t.manager_mail.is_empty()).then_some(t.manager_mail.as_str()),
            }),
        };
        let Some(matrix) = &self.matrix else {
            // The matrix's spreadsheet has not answered yet: the request waits for it.
            return Ok(None);
        };
        let grant = match self.policy.decide(&query, matrix, today) {
            Decision::Allow { grant } => grant,
            Decision::Deny { reason } => {
                return Ok(Some((State::Rejected { reason }, Some(MessageKind::Rejection), None)));
            }
        };
        // Names other open requests took, this batch's included: `put` keeps the set in step.
        let taken = |name: &str| self.claimed.contains(name);
        let tz = self.calendar.time_zone();
        Ok(Some(match plan::plan(request, &snapshot, &self.layout, today, taken) {
            Ok(plan) => {
                let ops = plan.ops.len();
                match s.effective_date.filter(|d| *d > today) {
                    Some(date)
                        if matches!(kind, Kind::Disable | Kind::Enable | Kind::Modify | Kind::Transfer) =>
                    {
                        let due = date
                            .to_datetime(self.calendar.day_start())
                            .to_zoned(tz.clone())
                            .map_or(now, |z| z.timestamp());
                        let note = format!(
                            "autorizada ({grant}); {ops} operación(es) programada(s) para {}",
                            notify::spanish_datetime(due, tz)
                        );
                        (State::Scheduled { due, plan }, None, Some(note))
                    }
                    _ => {
                        let note = format!("autorizada ({grant}); {ops} operación(es) en el directorio");
                        let state = State::Executing { plan, attempts: 0, retry_at: None, released: false };
                        (state, None, Some(note))
                    }
                }
            }
            Err(NoPlan::NeedsInfo(reason)) => {
                (State::NeedsInfo { reason, since: now }, Some(MessageKind::NeedsInfo), None)
            }
            Err(NoPlan::Refused(reason)) => (State::Rejected { reason }, Some(MessageKind::Rejection), None),
            Err(NoPlan::NotAutomated) => {
                let reason = format!(
                    "autorizada ({grant}), pero cuentas aún no automatiza «{}»: hágalo a mano en el directorio y cierre la solicitud",
                    kind.label()
                );
                (State::Manual { reason }, None, None)
            }
        }))
    }

    /// Moves due and executing requests on, tries again what waited on the directory, and
    /// closes those whose report was delivered.
    pub fn advance(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        for mut request in self.store.open_requests()? {
            let _span = info_span!("request", request_id = %request.id, row = request.row).entered();
            match request.state.clone() {
                State::Received => {
                    let mut changes = Changes::new();
                    self.triage(&mut request, now)?;
                    if request.state != State::Received {
                        self.put(&mut changes, &request);
                        self.store.commit(changes)?;
                        report.touch(request.id);
                    }
                }
                State::Scheduled { due, plan } if due <= now => {
                    // Planned long ago: plan again against what the directory holds today.
                    let plan = match self.replan(&request, now) {
                        Ok(Some(fresh)) => fresh,
                        Ok(None) => plan,
                        Err(reason) => {
                            let mut changes = Changes::new();
                            request.transition(
                                State::Executing { plan, attempts: 0, retry_at: None, released: false },
                                Actor::Daemon,
                                "llegó la fecha programada",
                                now,
                            )?;
                            self.fail_needs_info(&mut request, reason, now)?;
                            self.put(&mut changes, &request);
                            self.store.commit(changes)?;
                            report.touch(request.id);
                            continue;
                        }
                    };
                    request.transition(
                        State::Executing { plan: plan.clone(), attempts: 0, retry_at: None, released: false },
                        Actor::Daemon,
                        "llegó la fecha programada",
                        now,
                    )?;
                    let mut changes = Changes::new();
                    self.put(&mut changes, &request);
                    self.store.commit(changes)?;
                    self.execute(request, plan, 0, false, now, report)?;
                }
                State::Executing { plan, attempts, retry_at, released }
                    if retry_at.is_none_or(|t| t <= now) =>
                {
                    self.execute(request, plan, attempts, released, now, report)?;
                }
                State::Notifying if request.outbox.iter().all(|m| !m.is_pending()) => {
                    let outcome = outcome_text(&request);
                    request.transition(
                        State::Closed { outcome: outcome.clone() },
                        Actor::Daemon,
                        outcome,
                        now,
                    )?;
                    info!("closed");
                    let mut changes = Changes::new();
                    self.put(&mut changes, &request);
                    self.store.commit(changes)?;
                    report.touch(request.id);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A fresh plan for a scheduled request, or `None` when the directory cannot be read now
    /// (the stored plan is used; its operations check the directory again anyway).
    fn replan(&mut self, request: &Request, now: Timestamp) -> Result<Option<Plan>, String> {
        let snapshot = match self.directory.snapshot_for(request, &self.layout) {
            Ok(s) => s,
            Err(e) => {
                log_directory_error(&e, "cannot read the directory to re-plan; using the stored plan");
                return Ok(None);
            }
        };
        let today = self.today(now);
        match plan::plan(request, &snapshot, &self.layout, today, |_| false) {
            Ok(plan) => Ok(Some(plan)),
            Err(e) => Err(e.reason()),
        }
    }

    fn fail_needs_info(
        &self,
        request: &mut Request,
        reason: String,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        request.transition(
            State::NeedsInfo { reason: reason.clone(), since: now },
            Actor::Daemon,
            reason.clone(),
            now,
        )?;
        self.queue(request, MessageKind::NeedsInfo, reason, now);
        Ok(())
    }

    /// Carries out a plan (the intent, `Executing`, is already durable), sends the access data
    /// if the plan sets a password, and records the result. Disables and deletions beyond the
    /// hourly limit wait as `Held` unless an administrator released them.
    fn execute(
        &mut self,
        mut request: Request,
        plan: Plan,
        attempts: u32,
        released: bool,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        report.touch(request.id);
        let mut changes = Changes::new();
        let limited = plan
            .ops
            .iter()
            .filter(|op| matches!(op, DirectoryOp::Disable { .. } | DirectoryOp::Delete { .. }))
            .count();
        if limited > 0 && !released {
            let limit = self.config.directory.max_disables_per_hour as usize;
            let done = self.store.disables_since(now - SignedDuration::from_hours(1))?;
            if done + limited > limit {
                let reason = format!(
                    "límite de {limit} inactivaciones o eliminaciones por hora alcanzado ({done} en la última hora): \
                     espera a que un administrador la libere con «cuentas release {}»",
                    request.id
                );
                warn!(done, limit, "disable held: hourly limit reached");
                request.transition(
                    State::Held { reason: reason.clone(), plan },
                    Actor::Daemon,
                    reason,
                    now,
                )?;
                let hour =
                    now.to_zoned(self.calendar.time_zone().clone()).strftime("%Y-%m-%d %H:00").to_string();
                let body = format!(
                    "Se alcanzó el límite de {limit} inactivaciones o eliminaciones por hora ({done} en la última hora). \
                     Las siguientes quedan retenidas (estado Held) hasta que un administrador las revise:\n\n  \
                     cuentas requests --state Held\n  cuentas release ID   (o «cuentas release --all»)\n\nHora: {hour}"
                );
                self.alert(&mut changes, &format!("Inactivaciones retenidas ({hour})"), &body, now)?;
                self.put(&mut changes, &request);
                self.store.commit(changes)?;
                return Ok(());
            }
        }
        // The credential step is one unit: generate, set, send. A retry makes a new password.
        let password = if plan.sends_credentials {
            let length = match self.directory.password_length() {
                Ok(n) => n,
                Err(e) => return self.directory_failed(request, plan, attempts, released, e, now),
            };
            Some(Password::generate(length).map_err(|e| EngineError::Random(e.to_string()))?)
        } else {
            None
        };
        let dry_run = self.directory.is_dry_run();
        let lines =
            match self.directory.apply(&plan, password.as_ref(), &self.layout, &request.id.to_string()) {
                Ok(lines) => lines,
                Err(e) => return self.directory_failed(request, plan, attempts, released, e, now),
            };
        let prefix = if dry_run { "directorio (simulación)" } else { "directorio" };
        for line in &lines {
            info!(account = %plan.account, dry_run, "{line}");
            request.note(Actor::Daemon, format!("{prefix}: {line}"), now);
        }
        if limited > 0 {
            changes.record_disables(now, request.id, limited);
        }
        if let Some(password) = password {
            match self.send_access_data(&request, &plan, &password)? {
                Ok(to) => request.note(
                    Actor::Daemon,
                    format!("datos de acceso enviados a {}", notify::mask_email(&to)),
                    now,
                ),
                Err(e) if e.is_transient() => {
                    let attempts = attempts + 1;
                    let retry_at = now + backoff(attempts);
                    warn!(error = %e, attempts, "access data not sent; will set a new password and retry");
                    request.transition(
                        State::Executing { plan, attempts, retry_at: Some(retry_at), released },
                        Actor::Daemon,
                        format!("no se pudieron enviar los datos de acceso ({e}); se reintentará"),
                        now,
                    )?;
                    self.put(&mut changes, &request);
                    self.store.commit(changes)?;
                    return Ok(());
                }
                Err(e) if !e.is_bad_address() => {
                    // The mail set-up, not the address, is wrong: an operator must act.
                    error!(error = %e, "access data cannot be sent; an administrator must look");
                    let reason = format!("no se pudieron enviar los datos de acceso: {e}");
                    return self.fail(request, plan, attempts + 1, reason, now);
                }
                Err(e) => {
                    let reason = format!(
                        "No fue posible enviar los datos de acceso al correo personal «{}» ({e}); corrija el correo electrónico personal en el formulario",
                        request.submission.personal_email
                    );
                    warn!(error = %e, "access data undeliverable; asking the requester");
                    self.fail_needs_info(&mut request, reason, now)?;
                    self.put(&mut changes, &request);
                    self.store.commit(changes)?;
                    return Ok(());
                }
            }
        }
        let detail = outcome_detail(&request, &plan, &self.config.directory.domain);
        request.transition(State::Notifying, Actor::Daemon, detail.clone(), now)?;
        self.queue(&mut request, MessageKind::Outcome, detail, now);
        self.put(&mut changes, &request);
        self.store.commit(changes)?;
        info!(account = %plan.account, "carried out");
        Ok(())
    }

    /// A directory failure while executing: transient ones are retried with backoff up to
    /// [`MAX_ATTEMPTS`]; the rest, and too many, go `Failed` with an alert.
    fn directory_failed(
        &mut self,
        mut request: Request,
        plan: Plan,
        attempts: u32,
        released: bool,
        error: LdapError,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let attempts = attempts + 1;
        let mut changes = Changes::new();
        if error.is_transient() && attempts < MAX_ATTEMPTS {
            let retry_at = now + backoff(attempts);
            warn!(error = %error, attempts, %retry_at, "directory operation failed; will retry");
            request.transition(
                State::Executing { plan, attempts, retry_at: Some(retry_at), released },
                Actor::Daemon,
                format!("el directorio no respondió ({error}); se reintentará"),
                now,
            )?;
        } else {
            error!(error = %error, attempts, "directory operation failed; an administrator must look");
            return self.fail(request, plan, attempts, error.to_string(), now);
        }
        self.put(&mut changes, &request);
        self.store.commit(changes)?;
        Ok(())
    }

    /// `Failed`, with the plan kept for `cuentas retry` and one alert to the administrators.
    fn fail(
        &mut self,
        mut request: Request,
        plan: Plan,
        attempts: u32,
        reason: String,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        request.transition(
            State::Failed { error: reason.clone(), attempts, plan: Some(plan) },
            Actor::Daemon,
            reason.clone(),
            now,
        )?;
        let body = format!(
            "La solicitud {} (fila {}, {}) falló tras {attempts} intento(s):\n\n  {reason}\n\n\
             Revísela con «cuentas show {}»; cuando la causa esté resuelta, «cuentas retry {}» la reintenta \
             (con una contraseña nueva, si la solicitud asigna una).",
            request.id,
            request.row,
            request.submission.kind.map_or("?", Kind::label),
            request.id,
            request.id
        );
        self.alert(&mut changes, &format!("Solicitud {} fallida", request.id), &body, now)?;
        self.put(&mut changes, &request);
        self.store.commit(changes)?;
        Ok(())
    }

    /// Sends the access-data message straight away: it holds a password, so it never waits in
    /// the store. Returns the address it went to.
    fn send_access_data(
        &self,
        request: &Request,
        plan: &Plan,
        password: &Password,
    ) -> Result<Result<String, SendError>, EngineError> {
        let s = &request.submission;
        let to = if s.personal_email.is_empty() { s.requester.clone() } else { s.personal_email.clone() };
        let mut ctx = self.context(request, "");
        let reset = !plan.ops.iter().any(|op| matches!(op, plan::DirectoryOp::Create { .. }));
        let extra = minijinja::context! {
            account => plan.account.clone(),
            mail => format!("{}@{}", plan.account, self.config.directory.domain),
            password => password.expose(),
            dry_run => self.directory.is_dry_run(),
            reset => reset,
        };
        ctx = minijinja::context! { ..extra, ..ctx };
        let rendered = self.templates.render("datos-de-acceso", &ctx)?;
        let id = format!("{}.{}.datos-de-acceso", request.id, request.history.len());
        Ok(self
            .envelope
            .message(&id, std::slice::from_ref(&to), &rendered)
            .and_then(|m| self.sender.send(&m))
            .map(|()| to))
    }

    /// Delivers pending outbox messages, each recorded as sent before the next one goes.
    pub fn deliver(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let due = |m: &OutboxMessage| match m.delivery {
            Delivery::Pending { next_attempt, .. } => next_attempt.is_none_or(|t| t <= now),
            _ => false,
        };
        for mut request in self.store.mailing_requests()? {
            for i in 0..request.outbox.len() {
                if !due(&request.outbox[i]) {
                    continue;
                }
                let mut message = request.outbox[i].clone();
                let sent = self.send(&mut message, Some(&request), now, report);
                if sent {
                    request.note(
                        Actor::Daemon,
                        format!("correo «{}» enviado a {}", message.kind.key(), message.to.join(", ")),
                        now,
                    );
                }
                let mut changes = Changes::new();
                if let Delivery::Failed { error, .. } = &message.delivery {
                    // Refused for good: someone must reach this person another way.
                    let reason = format!(
                        "correo «{}» a {} no entregado: {error}",
                        message.kind.key(),
                        message.to.join(", ")
                    );
                    request.note(Actor::Daemon, reason.clone(), now);
                    let body = format!(
                        "{reason}\n\nSolicitud {} (fila {}). El servidor de correo lo rechazó de forma definitiva; \
                         comuníquese con el destinatario por otro medio. Detalle: cuentas show {}",
                        request.id, request.row, request.id
                    );
                    self.alert(&mut changes, &format!("Correo no entregado ({})", request.id), &body, now)?;
                }
                request.outbox[i] = message;
                self.put(&mut changes, &request);
                self.store.commit(changes)?;
            }
        }
        for mut message in self.store.pending_messages()?.into_iter().filter(|m| due(m)) {
            self.send(&mut message, None, now, report);
            let mut changes = Changes::new();
            changes.put_message(&message);
            self.store.commit(changes)?;
        }
        Ok(())
    }

    /// One delivery attempt; the message's `delivery` says what came of it.
    fn send(
        &self,
        message: &mut OutboxMessage,
        request: Option<&Request>,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> bool {
        let result = self.render(message, request).and_then(|rendered| {
            let m = self.envelope.message(&message.id, &message.to, &rendered)?;
            self.sender.send(&m)?;
            Ok(())
        });
        match result {
            Ok(()) => {
                message.delivery = Delivery::Sent { at: now };
                report.sent += 1;
                true
            }
            Err(EngineError::Mail(e)) if e.is_transient() => {
                let attempts = match message.delivery {
                    Delivery::Pending { attempts, .. } => attempts + 1,
                    _ => 1,
                };
                warn!(message = %message.id, error = %e, attempts, "message not delivered; will retry");
                message.delivery =
                    Delivery::Pending { attempts, next_attempt: Some(now + backoff(attempts)) };
                false
            }
            Err(e) => {
                error!(message = %message.id, error = %e, "message cannot be delivered");
                message.delivery = Delivery::Failed { error: e.to_string(), at: now };
                false
            }
        }
    }

    fn render(&self, message: &OutboxMessage, request: Option<&Request>) -> Result<Rendered, EngineError> {
        let ctx = match request {
            Some(r) => self.context(r, &message.detail),
            None => {
                let (subject, detail) = message.detail.split_once("\n\n").unwrap_or((&message.detail, ""));
                minijinja::context! { subject => subject, detail => detail }
            }
        };
        // Each message's template is the file named by its key.
        Ok(self.templates.render(message.kind.key(), &ctx)?)
    }

    /// The variables every request template may use (see [`notify::sample_context`]).
    fn context(&self, r: &Request, detail: &str) -> Value {
        let s = &r.submission;
        let tz = self.calendar.time_zone();
        let date = |d: Option<Date>| d.map(notify::spanish_date).unwrap_or_default();
        let due = match &r.state {
            State::Scheduled { due, .. } => notify::spanish_datetime(*due, tz),
            _ => String::new(),
        };
        let credentials_sent = r.history.iter().any(|h| h.reason.starts_with("datos de acceso enviados"));
        minijinja::context! {
            id => r.id.to_string(),
            kind => s.kind.map_or(s.kind_answer.clone(), |k| k.label().to_string()),
            kind_answer => s.kind_answer.clone(),
            holder => s.holder_type.map_or("", HolderType::label),
            name => s.full_name(),
            requester => s.requester.clone(),
            account => r.account.clone().unwrap_or_else(|| s.account.clone()),
            row => r.row,
            received => notify::spanish_datetime(r.received_at, tz),
            deadline => notify::spanish_datetime(r.sla_deadline, tz),
            sla_hours => self.config.sla.hours_for(s.kind),
            due => due,
            effective_date => date(s.effective_date),
            return_date => date(s.return_date),
            detail => detail.to_string(),
            service_request_procedure => self.config.mail.service_request_procedure.clone(),
            credentials_sent => credentials_sent,
            personal_email_masked => notify::mask_email(&s.personal_email),
        }
    }

    /// Queues a message for a request, to whoever that kind of message goes to.
    fn queue(&self, request: &mut Request, kind: MessageKind, detail: String, now: Timestamp) {
        let to = match kind {
            MessageKind::ManualHandling => vec![self.config.mail.service_desk.clone()],
            _ if request.submission.requester.is_empty() => vec![self.config.mail.service_desk.clone()],
            _ => vec![request.submission.requester.clone()],
        };
        request.queue_message(kind, to, detail, now);
    }

    /// Queues an alert to the administrators, once per distinct text.
    fn alert(
        &self,
        changes: &mut Changes,
        subject: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let key = row_hash(&[subject.to_string(), body.to_string()]);
        if self.store.alert_raised(&key)? {
            return Ok(());
        }
        changes.mark_alert(&key);
        let message = OutboxMessage::new(
            format!("alerta.{key}"),
            None,
            MessageKind::Alert,
            self.config.mail.administrators.clone(),
            format!("{subject}\n\n{body}"),
            now,
        );
        changes.put_message(&message);
        Ok(())
    }

    /// Open requests and their plans: what a run would do now (`cuentas plan`).
    pub fn pending_plans(&self) -> Result<BTreeMap<RequestId, (StateName, Plan)>, EngineError> {
        let mut out = BTreeMap::new();
        for r in self.store.open_requests()? {
            if let Some(plan) = r.state.plan() {
                out.insert(r.id, (r.state.name(), plan.clone()));
            }
        }
        Ok(out)
    }
}

fn log_directory_error(e: &LdapError, what: &str) {
    if e.is_transient() {
        warn!(error = %e, "{what}");
    } else {
        error!(error = %e, "{what}");
    }
}

fn backoff(attempts: u32) -> SignedDuration {
    let factor = 1i32 << attempts.saturating_sub(1).min(10);
    (FIRST_RETRY * factor).min(MAX_RETRY)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// What was done, for the requester (Spanish).
fn outcome_detail(request: &Request, plan: &Plan, domain: &str) -> String {
    let account = &plan.account;
    let kind = request.submission.kind;
    let created = plan.ops.iter().any(|op| matches!(op, plan::DirectoryOp::Create { .. }));
    match kind {
        Some(Kind::Create) if created => {
            format!("Se creó la cuenta {account} (correo {account}@{domain}).")
        }
        Some(Kind::Create) => format!(
            "La persona ya tenía la cuenta {account}, que estaba inactiva: se reactivó y se actualizaron sus datos."
        ),
        Some(Kind::PasswordReset) => {
            format!("Se asignó una nueva contraseña temporal a la cuenta {account}.")
        }
        _ if plan.ops.is_empty() => {
            format!("La cuenta {account} ya estaba como se pidió; no hubo que cambiar nada.")
        }
        Some(Kind::Modify) => format!("Se actualizó la cuenta {account}."),
        Some(Kind::Disable) => format!("Se inactivó la cuenta {account}."),
        Some(Kind::Enable) => format!("Se reactivó la cuenta {account}."),
        _ => format!("Se gestionó la cuenta {account}."),
    }
}

fn outcome_text(request: &Request) -> String {
    request
        .history
        .iter()
        .rev()
        .find(|h| h.to == StateName::Notifying && h.from == Some(StateName::Executing))
        .map_or_else(|| "atendida".to_string(), |h| h.reason.clone())
}
