//! The engine: registers new rows, decides, plans, carries out and reports each request one
//! step at a time, each step's outcome durable before the next outside effect (DESIGN §10).
//! `now` is always a parameter.
//!
//! One file per step of the procedure: `ingest` (activity 2: the source's rows to requests),
//! `triage` (from `Received` to a decided state), `execute` (activity 3: the directory and the
//! credential step), `lifecycle` (what follows a step: a leave's return, a deletion behind its
//! backups, the hooks), `mail` (activity 4: the outbox, rendering, delivery, alerts), `sla`
//! (the service level followed, the weekly report mail), `retention` (personal data of old
//! closed requests removed; the same person recognised across requests). This file holds the engine, one
//! cycle, and `Engine::record`, the one way a request changes state.

mod desk;
mod drift;
mod execute;
mod ingest;
pub use ingest::{backlog, backlog_before, unmapped_answers};
mod lifecycle;
mod mail;
mod open;
mod retention;
mod shadow;
mod sla;
mod supersede;
mod triage;
mod waiting;

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::directory::Directory;
use crate::directory::ldap::LdapError;
use crate::directory::plan::{Layout, Plan};
use crate::notify::file::Envelope;
use crate::notify::{Mailer, SendError, TemplateError, Templates};
use crate::policy::{Matrix, MatrixError, Policy};
use crate::request::{Actor, IllegalTransition, Request, RequestId, State, StateName};
use crate::source::sheet::SheetSource;
use crate::source::{Source, SourceError};
use crate::store::{Changes, MessageKind, Store, StoreError};

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
    Template(#[from] TemplateError),
    #[error(transparent)]
    Mail(#[from] SendError),
    #[error(transparent)]
    Directory(#[from] crate::directory::SetupError),
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    #[error("cannot generate a password: {0}")]
    Random(String),
    #[error(
        "{} already holds {} responses ({}) and cuentas has registered none: set [source] start_at to where \
         this entity starts, a date and time (start_at = \"YYYY-MM-DD HH:MM\": responses before it are never \
         acted on or answered) or a row (start_at = 2 takes every response, old ones included, and acts on them)",
        .0.source, .0.responses, .0.span()
    )]
    StartAtNeeded(Backlog),
}

/// The responses a source holds before cuentas registered any: what adopting it would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub source: String,
    pub responses: usize,
    pub first: Option<jiff::civil::DateTime>,
    pub last: Option<jiff::civil::DateTime>,
}

impl Backlog {
    /// `from 2025-01-13 08:02 to 2026-12-04 16:40`, as far as the timestamps say.
    pub fn span(&self) -> String {
        let minute = |d: jiff::civil::DateTime| d.strftime("%Y-%m-%d %H:%M").to_string();
        match (self.first, self.last) {
            (Some(first), Some(last)) => format!("from {} to {}", minute(first), minute(last)),
            _ => "without readable timestamps".into(),
        }
    }
}

/// What one cycle did, for the operator.
#[derive(Debug, Default)]
pub struct CycleReport {
    /// Requests registered or moved, in the order first touched.
    pub touched: Vec<RequestId>,
    touched_set: HashSet<RequestId>,
    pub registered: usize,
    /// Responses passed over as before `[source] start_at`.
    pub before_start: usize,
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

/// The adapters the engine works through, each built at its own door from the configuration.
pub struct Adapters {
    pub source: Source,
    pub directory: Directory,
    pub mailer: Mailer,
}

impl Adapters {
    /// Builds them; reaches nothing yet (the directory and the sheet are reached when used).
    pub fn from_config(config: &Config) -> Result<Adapters, EngineError> {
        Ok(Adapters {
            source: Source::from_config(config)?,
            directory: Directory::from_config(config)?,
            mailer: Mailer::from_config(config)?,
        })
    }
}

/// A request's move to a new state: who moves it, why (its history line), and the messages it
/// sends (queued in its outbox, in order).
pub(crate) struct Move {
    to: State,
    actor: Actor,
    reason: String,
    /// Each message: its kind, its recipient when it is not whom the kind goes to, its detail.
    tell: Vec<(MessageKind, Option<String>, String)>,
}

impl Move {
    /// A move the daemon makes.
    fn daemon(to: State, reason: impl Into<String>) -> Move {
        Move::by(Actor::Daemon, to, reason)
    }

    fn by(actor: Actor, to: State, reason: impl Into<String>) -> Move {
        Move { to, actor, reason: reason.into(), tell: Vec::new() }
    }

    /// Also sends a message of `kind` to whoever that kind goes to.
    fn telling(mut self, kind: MessageKind, detail: impl Into<String>) -> Move {
        self.tell.push((kind, None, detail.into()));
        self
    }

    /// Also sends a message of `kind` to `to`.
    fn telling_to(mut self, kind: MessageKind, to: String, detail: impl Into<String>) -> Move {
        self.tell.push((kind, Some(to), detail.into()));
        self
    }
}

/// Everything the engine decides with, loaded once.
pub struct Engine {
    config: Config,
    policy: Policy,
    /// The authorizer matrix; `None` until a spreadsheet tab holding it has been read.
    matrix: Option<Matrix>,
    /// The tab it is read from (and read again on the edit-check schedule), if not a file.
    matrix_sheet: Option<SheetSource>,
    /// The matrix CSV, and what was last read of it: read again at every cycle, taken anew
    /// when it changed (an authorizer removed stops authorizing at the next cycle).
    matrix_file: Option<(std::path::PathBuf, Vec<u8>)>,
    layout: Layout,
    templates: Templates,
    envelope: Envelope,
    mailer: Mailer,
    directory: Directory,
    store: Store,
    /// When a request next needs looking at (the store's index of due requests is kept with
    /// the same rules), and the waits it is made of.
    wake: crate::wake::Rules,
    /// The key of the person hash (see [`crate::retention::PersonKey`]), kept in the store.
    person_key: crate::retention::PersonKey,
    /// What the open requests hold (names, DNs, people and kinds covered, people waiting):
    /// derived from the store at start, kept in step by [`Engine::stage`].
    open: open::OpenIndex,
    source: Source,
    /// The service desk's form, when `[desk]` names it.
    desk_source: Option<Source>,
    /// When the desk form's tab was last measured.
    desk_measured: Option<Timestamp>,
    /// When the rows of open requests were last read again, all of them.
    last_edit_check: Option<Timestamp>,
    /// Where the edit check goes on from at the next cycle, when it read only a slice of the
    /// open requests' rows (0: a pass starts from the first).
    edit_check_from: u32,
    /// Ingestion stopped last cycle: the edit check runs at every cycle until it resumes.
    halted: bool,
    /// Why the directory could not be reached this cycle: after its first failure to connect,
    /// nothing tries it again until the next cycle (one timeout per cycle, not one per request).
    directory_down: Option<String>,
    /// The directory answered this cycle.
    directory_answered: bool,
    /// Why mail does not go out (the relay refuses us, is down, or the spool cannot be
    /// written), from the last failure until a message goes through: messages wait queued, and
    /// no credential step sets a password it could not send.
    mail_blocked: Option<String>,
    /// Requests that changed the directory this cycle: `after_change` runs once at its end.
    changed: Vec<RequestId>,
    /// Requests cancelled this cycle by a later one (see `supersede`): the cycle's list of open
    /// requests, read before, must not run them.
    superseded: HashSet<RequestId>,
    /// Accounts (lower-case) a step acted on this cycle, and which request's: a step another
    /// request decided earlier in the cycle is decided again before it runs on one of them.
    acted_on: HashMap<String, RequestId>,
    /// The last header read and its columns mapped.
    columns: Option<(Vec<String>, crate::intake::ColumnMap)>,
    /// The shadow week's open requests were closed at this live engine's first cycle.
    shadow_ended: bool,
    /// Called as the work goes on (each request staged, each page read): the daemon feeds the
    /// systemd watchdog from it, so that a long cycle is not taken for a hang.
    heartbeat: Option<Box<dyn FnMut() + Send>>,
}

/// Why a directory operation was not done.
pub(crate) enum Unreached {
    /// The directory is down this cycle: the request waits in its state.
    Down,
    /// The operation itself failed.
    Error(LdapError),
}

impl Engine {
    /// The engine with the adapters the configuration names (see [`Adapters::from_config`]).
    pub fn new(config: Config) -> Result<Engine, EngineError> {
        let adapters = Adapters::from_config(&config)?;
        Engine::with_adapters(config, adapters)
    }

    /// Loads the matrix and the templates, and opens the store.
    pub fn with_adapters(config: Config, adapters: Adapters) -> Result<Engine, EngineError> {
        let Adapters { source, directory, mailer } = adapters;
        let policy =
            Policy { rules: config.rules.clone(), requester_domains: config.form.requester_domains.clone() };
        let (matrix, matrix_file) = match config.authorizers.path.clone() {
            Some(path) => {
                let bytes = std::fs::read(&path)
                    .map_err(|source| MatrixError::Open { path: path.clone(), source })?;
                (Some(Matrix::parse(bytes.as_slice())?), Some((path, bytes)))
            }
            None => (None, None),
        };
        let layout = Layout::from_config(&config);
        let templates = Templates::load(config.mail.templates_dir.as_deref())?;
        let envelope = Envelope::new(&config.mailboxes, directory.is_shadow());
        let matrix_sheet = crate::source::matrix_sheet(&config, &source)?;
        let desk_source = crate::source::desk_source(&config, &source)?;
        let wake = wake_rules(&config);
        let mut store = Store::open(&config.state_dir)?;
        store.set_wake_rules(wake.clone())?;
        let person_key = retention::person_key(&store)?;
        Engine {
            config,
            policy,
            matrix,
            matrix_sheet,
            matrix_file,
            layout,
            templates,
            envelope,
            mailer,
            directory,
            store,
            wake,
            person_key,
            open: open::OpenIndex::default(),
            source,
            desk_source,
            desk_measured: None,
            last_edit_check: None,
            edit_check_from: 0,
            halted: false,
            directory_down: None,
            directory_answered: false,
            mail_blocked: None,
            changed: Vec::new(),
            superseded: HashSet::new(),
            acted_on: HashMap::new(),
            columns: None,
            shadow_ended: false,
            heartbeat: None,
        }
        .with_indexes()
    }

    /// The indexes of open requests (claimed names and DNs, covered people and kinds, people
    /// waiting on their fix) derived from the store: at start, and after a command changed the
    /// store behind the engine (the control socket).
    fn with_indexes(mut self) -> Result<Engine, EngineError> {
        self.reload_indexes()?;
        Ok(self)
    }

    pub fn reload_indexes(&mut self) -> Result<(), EngineError> {
        self.open = open::OpenIndex::of(self.store.each(self.store.open_ids()?))?;
        Ok(())
    }

    pub fn config(&self) -> &Config {
        &self.config
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

    /// Why mail does not go out, while it does not (for the service's status line).
    pub fn mail_blocked(&self) -> Option<&str> {
        self.mail_blocked.as_deref()
    }

    /// A delivery failed because of the relay: said once per episode, as an ERROR (an operator
    /// must fix the relay's settings or wait for it).
    fn mail_failed(&mut self, e: &SendError) {
        // Without the relay's own words, which may quote a recipient: this is also the
        // service's status line, which any local user may read.
        let why = e.for_log();
        if self.mail_blocked.is_none() {
            error!(error = %why, "mail is blocked: messages wait queued and go out once the relay takes them");
        }
        self.mail_blocked = Some(why);
    }

    /// A message went through: mail flows again.
    fn mail_flowing(&mut self) {
        if self.mail_blocked.take().is_some() {
            info!("mail flows again");
        }
    }

    /// What the work loop calls as it goes (see the field).
    pub fn set_heartbeat(&mut self, heartbeat: Box<dyn FnMut() + Send>) {
        self.heartbeat = Some(heartbeat);
    }

    fn beat(&mut self) {
        if let Some(beat) = &mut self.heartbeat {
            beat();
        }
    }

    /// Runs `op` on the directory unless it is down this cycle; a failure to reach it marks it
    /// down until the next cycle.
    fn reach<T>(
        &mut self,
        op: impl FnOnce(&mut Directory, &Layout) -> Result<T, LdapError>,
    ) -> Result<T, Unreached> {
        if self.directory_down.is_some() {
            return Err(Unreached::Down);
        }
        match op(&mut self.directory, &self.layout) {
            Ok(v) => {
                self.directory_answered = true;
                Ok(v)
            }
            Err(e) if e.is_unreachable() => {
                warn!(error = %e.for_log(), "the directory does not answer; requests that need it wait for the next cycle");
                self.directory_down = Some(e.to_string());
                Err(Unreached::Down)
            }
            Err(e) => {
                self.directory_answered = true;
                Err(Unreached::Error(e))
            }
        }
    }

    pub fn calendar(&self) -> &crate::calendar::Calendar {
        &self.config.calendar
    }

    /// Records a request's move: the transition with its history line, the messages it sends,
    /// then [`Engine::stage`]. Every change of state goes through here.
    fn record(
        &mut self,
        changes: &mut Changes,
        report: &mut CycleReport,
        request: &mut Request,
        step: Move,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        request.transition(step.to, step.actor, step.reason, now)?;
        request.shadow |= self.directory.is_shadow();
        self.measure_sla(request, now);
        for (kind, to, detail) in step.tell {
            match to {
                Some(to) => self.queue_to(request, kind, to, detail, now),
                None => self.queue(request, kind, detail, now),
            }
        }
        self.stage(changes, report, request);
        Ok(())
    }

    /// Stages a request as it is now in `changes`, keeps the claimed names and the waiting
    /// people in step with it, and counts it as touched by this cycle.
    fn stage(&mut self, changes: &mut Changes, report: &mut CycleReport, request: &Request) {
        if let Some(key) = self.open.update(request) {
            changes.set_covering(&key, request.id);
        }
        changes.put_request(request);
        report.touch(request.id);
        self.beat();
    }

    /// One full cycle: new and edited rows, due work, mail, and closing what was reported.
    pub fn cycle(&mut self, now: Timestamp) -> Result<CycleReport, EngineError> {
        let mut report = CycleReport::default();
        (self.directory_down, self.directory_answered) = (None, false);
        self.superseded.clear();
        self.acted_on.clear();
        // First: a response registered in this cycle finds the earlier requests of its person
        // with their person hash set, purged or not.
        self.retain(now)?;
        self.end_shadow(now, &mut report)?;
        self.replay(now, &mut report)?;
        self.ingest(now, &mut report)?;
        self.advance(now, &mut report)?;
        // After the due work: a response of the desk form answers the state a request reached
        // (a deletion that just became one to confirm); what it moves goes on in this cycle.
        self.desk(now, &mut report)?;
        self.watch_sla(now, &mut report)?;
        self.follow_up(now, &mut report)?;
        self.deliver(now, &mut report)?;
        self.advance(now, &mut report)?;
        self.after_change(now)?;
        self.read_drift(now, &mut report)?;
        self.report_mail(now)?;
        if self.store.compact_if_grown()? {
            info!("store compacted: the old versions of its records are gone");
        }
        match self.directory_down.clone() {
            Some(why) => {
                let body = format!(
                    "cuentas no logra comunicarse con el directorio activo:\n\n  {why}\n\n\
                     Las solicitudes nuevas se registran y se les acusa recibo; las que necesitan el directorio \
                     esperan en su estado y siguen solas cuando vuelva a responder."
                );
                self.alert_condition(mail::Condition::Directory, "El directorio no responde", &body, now)?;
            }
            None if self.directory_answered => self.condition_cleared(mail::Condition::Directory)?,
            None => {}
        }
        Ok(report)
    }

    fn today(&self, now: Timestamp) -> Date {
        now.to_zoned(self.config.calendar.time_zone().clone()).date()
    }

    /// Open requests and their plans: what a run would do now (`cuentas plan`).
    pub fn pending_plans(&self) -> Result<BTreeMap<RequestId, (StateName, Plan)>, EngineError> {
        let mut out = BTreeMap::new();
        for r in self.store.open_requests()? {
            let r = r?;
            if let Some(plan) = r.state.plan() {
                out.insert(r.id, (r.state.name(), plan.clone()));
            }
        }
        Ok(out)
    }
}

/// What the store's index of due requests is computed with, from the configuration.
pub fn wake_rules(config: &Config) -> crate::wake::Rules {
    crate::wake::Rules {
        calendar: config.calendar.clone(),
        sla_default_hours: config.sla.default_hours,
        sla_hours: config.sla.hours.clone(),
        needs_info_reminder_business_days: config.sla.needs_info_reminder_business_days,
        needs_info_expiry_business_days: config.sla.needs_info_expiry_business_days,
        min_days_disabled_before_delete: config.directory.min_days_disabled_before_delete,
    }
}

/// The person (document number; without one, the account named, or for a new institutional
/// account its name), kind and dates a request is about: two responses with the same key ask
/// for the same thing.
pub(crate) fn cover_key(s: &crate::request::Submission) -> Option<String> {
    let kind = s.kind.filter(|k| *k != crate::request::Kind::OutOfScope)?;
    let person = if !s.id_number.is_empty() {
        format!("d:{}", s.id_number)
    } else if !s.account.is_empty() {
        format!("a:{}", s.account.to_lowercase())
    } else if !s.given_names.is_empty() {
        // A new institutional account has no document: it is the name it will be made from.
        format!("n:{}", crate::intake::fold(&s.full_name()))
    } else {
        return None;
    };
    // A dated request is the same request only for the same dates: a second leave is not a
    // repetition of the first.
    let dates: String =
        [s.effective_date, s.return_date].into_iter().flatten().map(|d| format!("|{d}")).collect();
    Some(format!("{person}|{}{dates}", kind.key()))
}

/// Whether a request covers its person and kind: open and authorized. Not one still undecided
/// (`Received`: anyone may fill the form in, and an unauthorized response must not shut out the
/// authorized one), nor one waiting on the requester (a new response replaces it).
pub(super) fn covers(request: &Request) -> bool {
    request.is_open() && !matches!(request.state.name(), StateName::Received | StateName::NeedsInfo)
}

/// The DN (lower-case) of the account an open request's plan creates, if it creates one.
pub(super) fn new_account_dn(request: &Request) -> Option<String> {
    if !request.is_open() {
        return None;
    }
    request.state.plan()?.ops.iter().find_map(|op| match op {
        crate::directory::plan::DirectoryOp::Create { dn, .. } => Some(dn.to_lowercase()),
        _ => None,
    })
}

fn log_directory_error(e: &LdapError, what: &str) {
    if e.is_transient() {
        warn!(error = %e.for_log(), "{what}");
    } else {
        error!(error = %e.for_log(), "{what}");
    }
}

fn backoff(attempts: u32) -> SignedDuration {
    let factor = 1i32 << attempts.saturating_sub(1).min(10);
    (FIRST_RETRY * factor).min(MAX_RETRY)
}
