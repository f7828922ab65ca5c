//! Requests: what a form response asks for, its id, its states and the one `transition()`;
//! its messages (`outbox`), its service-level record and its retention skeleton.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use serde::{Deserialize, Serialize};

use crate::directory::ops::Plan;

mod id;
pub mod outbox;

pub use id::RequestId;

/// What the form asks for (DESIGN §3, "Kinds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Create,
    PasswordReset,
    Modify,
    Disable,
    Enable,
    Delete,
    Leave,
    Transfer,
    Assignment,
    Suspension,
    EarlyTermination,
    OutOfScope,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::Create,
        Kind::PasswordReset,
        Kind::Modify,
        Kind::Disable,
        Kind::Enable,
        Kind::Delete,
        Kind::Leave,
        Kind::Transfer,
        Kind::Assignment,
        Kind::Suspension,
        Kind::EarlyTermination,
        Kind::OutOfScope,
    ];

    /// The form's answer for this kind, as the requester reads it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Create => "Creación de cuenta",
            Kind::PasswordReset => "Cambio de clave",
            Kind::Modify => "Modificación de cuenta",
            Kind::Disable => "Inactivación de cuenta",
            Kind::Enable => "Reactivación de cuenta",
            Kind::Delete => "Eliminación de cuenta",
            Kind::Leave => "Vacaciones o licencia",
            Kind::Transfer => "Traslado de dependencia",
            Kind::Assignment => "Cesión de contrato",
            Kind::Suspension => "Suspensión de contrato",
            Kind::EarlyTermination => "Terminación anticipada",
            Kind::OutOfScope => "Otra solicitud",
        }
    }

    /// Config key (`[sla.hours]`) and log name.
    pub fn key(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::PasswordReset => "password_reset",
            Kind::Modify => "modify",
            Kind::Disable => "disable",
            Kind::Enable => "enable",
            Kind::Delete => "delete",
            Kind::Leave => "leave",
            Kind::Transfer => "transfer",
            Kind::Assignment => "assignment",
            Kind::Suspension => "suspension",
            Kind::EarlyTermination => "early_termination",
            Kind::OutOfScope => "out_of_scope",
        }
    }

    /// Whether the request names an existing account (`Usuario de red existente`).
    pub fn needs_existing_account(self) -> bool {
        !matches!(self, Kind::Create | Kind::OutOfScope)
    }
}

/// *Tipo de vinculación*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HolderType {
    /// Funcionario (public employee).
    Employee,
    /// Contratista.
    Contractor,
    /// Cuenta institucional o genérica.
    Institutional,
}

impl HolderType {
    pub fn label(self) -> &'static str {
        match self {
            HolderType::Employee => "Funcionario",
            HolderType::Contractor => "Contratista",
            HolderType::Institutional => "Cuenta institucional o genérica",
        }
    }
}

/// One form response, parsed and normalised. Fields a row did not answer (or answered wrongly)
/// are empty; the problems are listed in [`Submission::problems`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
// Empty answers are left out of the stored record: most kinds use a few of the fields.
#[serde(default)]
pub struct Submission {
    /// Local time in the form's time zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub requester: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// The answer as written, kept for out-of-scope requests and messages.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind_answer: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_type: Option<HolderType>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub given_names: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub surnames: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id_number: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub personal_email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub department: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub manager_email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub contract_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_start: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract_end: Option<Date>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<Date>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_date: Option<Date>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_site: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Columns the daemon does not know, kept as-is.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    /// What the requester must fix, one line per problem, in Spanish.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// Options of the entity's form that no setting maps (`[form.kinds]`, `[form.holder_types]`):
    /// `(setting, answer)`. Not the requester's to fix: the request waits for the setting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmapped: Vec<(String, String)>,
}

/// One thing wrong with a row, said so that the requester can fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub row: u32,
    /// The form's header for the column.
    pub column: String,
    /// What to fix, in Spanish.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "«{}»: {}", self.column, self.reason)
    }
}

impl Submission {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_names, self.surnames).trim().to_string()
    }
}

/// Who moved a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    Daemon,
    Requester(String),
    Admin(String),
    /// A person acting through the service desk's form (its verified address).
    Desk(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Daemon => f.write_str("cuentas"),
            Actor::Requester(who) => write!(f, "solicitante {who}"),
            Actor::Admin(who) => write!(f, "administrador {who}"),
            Actor::Desk(who) => write!(f, "formulario de la mesa: {who}"),
        }
    }
}

/// Where a request is (DESIGN §4); each state carries the data valid in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum State {
    Received,
    NeedsInfo {
        reason: String,
        since: Timestamp,
    },
    Rejected {
        reason: String,
    },
    Routed {
        reason: String,
    },
    Scheduled {
        due: Timestamp,
        plan: Plan,
    },
    Executing {
        plan: Plan,
        attempts: u32,
        retry_at: Option<Timestamp>,
        /// Let through by an administrator past the hourly limit of disables.
        #[serde(default)]
        released: bool,
    },
    /// A deletion: the account is disabled in the retired OU; it is deleted once every step
    /// of the backup checklist is confirmed and it has been disabled long enough.
    AwaitingConfirmation {
        /// The checklist's steps not confirmed yet (keys of [`DELETION_CHECKLIST`]).
        pending: Vec<String>,
        /// When the account was disabled and moved (the days before deletion count from here).
        since: Timestamp,
    },
    Held {
        reason: String,
        plan: Plan,
    },
    /// Parsed, valid and authorized, but its directory effect is not automated yet: a person
    /// handles it and the service desk has been told.
    Manual {
        reason: String,
    },
    Notifying,
    Failed {
        error: String,
        attempts: u32,
        /// What was being carried out, for `cuentas retry`.
        #[serde(default)]
        plan: Option<Plan>,
    },
    Closed {
        outcome: String,
    },
    Cancelled {
        reason: String,
    },
}

/// The state's name without its data: what lists, filters and history print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateName {
    Received,
    NeedsInfo,
    Rejected,
    Routed,
    Scheduled,
    Executing,
    AwaitingConfirmation,
    Held,
    Manual,
    Notifying,
    Failed,
    Closed,
    Cancelled,
}

impl StateName {
    pub const ALL: [StateName; 13] = [
        StateName::Received,
        StateName::NeedsInfo,
        StateName::Rejected,
        StateName::Routed,
        StateName::Scheduled,
        StateName::Executing,
        StateName::AwaitingConfirmation,
        StateName::Held,
        StateName::Manual,
        StateName::Notifying,
        StateName::Failed,
        StateName::Closed,
        StateName::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateName::Received => "Received",
            StateName::NeedsInfo => "NeedsInfo",
            StateName::Rejected => "Rejected",
            StateName::Routed => "Routed",
            StateName::Scheduled => "Scheduled",
            StateName::Executing => "Executing",
            StateName::AwaitingConfirmation => "AwaitingConfirmation",
            StateName::Held => "Held",
            StateName::Manual => "Manual",
            StateName::Notifying => "Notifying",
            StateName::Failed => "Failed",
            StateName::Closed => "Closed",
            StateName::Cancelled => "Cancelled",
        }
    }

    /// The state in Spanish, for what the entity reads (the report mail).
    pub fn label(self) -> &'static str {
        match self {
            StateName::Received => "recibida",
            StateName::NeedsInfo => "espera corrección del solicitante",
            StateName::Rejected => "rechazada",
            StateName::Routed => "remitida a otro procedimiento",
            StateName::Scheduled => "programada",
            StateName::Executing => "en ejecución",
            StateName::AwaitingConfirmation => "espera confirmaciones",
            StateName::Held => "retenida",
            StateName::Manual => "gestión manual",
            StateName::Notifying => "notificando",
            StateName::Failed => "fallida",
            StateName::Closed => "cerrada",
            StateName::Cancelled => "cancelada",
        }
    }

    /// Closed states are answered and done; nothing moves them again.
    pub fn is_closed(self) -> bool {
        matches!(self, StateName::Rejected | StateName::Routed | StateName::Closed | StateName::Cancelled)
    }
}

impl fmt::Display for StateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StateName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StateName::ALL.into_iter().find(|n| n.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            let names: Vec<_> = StateName::ALL.iter().map(|n| n.as_str()).collect();
            format!("unknown state «{s}»; one of: {}", names.join(", "))
        })
    }
}

impl State {
    pub fn name(&self) -> StateName {
        match self {
            State::Received => StateName::Received,
            State::NeedsInfo { .. } => StateName::NeedsInfo,
            State::Rejected { .. } => StateName::Rejected,
            State::Routed { .. } => StateName::Routed,
            State::Scheduled { .. } => StateName::Scheduled,
            State::Executing { .. } => StateName::Executing,
            State::AwaitingConfirmation { .. } => StateName::AwaitingConfirmation,
            State::Held { .. } => StateName::Held,
            State::Manual { .. } => StateName::Manual,
            State::Notifying => StateName::Notifying,
            State::Failed { .. } => StateName::Failed,
            State::Closed { .. } => StateName::Closed,
            State::Cancelled { .. } => StateName::Cancelled,
        }
    }

    /// The reason a person reads next to the state, if the state has one.
    pub fn reason(&self) -> &str {
        match self {
            State::NeedsInfo { reason, .. }
            | State::Rejected { reason }
            | State::Routed { reason }
            | State::Held { reason, .. }
            | State::Manual { reason }
            | State::Cancelled { reason } => reason,
            State::Failed { error, .. } => error,
            State::Closed { outcome } => outcome,
            _ => "",
        }
    }

    pub fn plan(&self) -> Option<&Plan> {
        match self {
            State::Scheduled { plan, .. } | State::Executing { plan, .. } | State::Held { plan, .. } => {
                Some(plan)
            }
            _ => None,
        }
    }
}

/// A move the state machine of DESIGN §4 does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id}: {from} → {to} is not a valid transition")]
pub struct IllegalTransition {
    pub id: RequestId,
    pub from: StateName,
    pub to: StateName,
}

/// Whether DESIGN §4 allows `from → to`.
pub fn allowed(from: StateName, to: StateName) -> bool {
    use StateName::*;
    if to == Cancelled {
        return !from.is_closed();
    }
    matches!(
        (from, to),
        (Received, Rejected | Routed | NeedsInfo | Scheduled | Executing | Manual)
            | (NeedsInfo, Received)
            | (Scheduled, Executing | Scheduled | Rejected | NeedsInfo | Received)
            | (
                Executing,
                AwaitingConfirmation
                    | Held
                    | Executing
                    | Failed
                    | Notifying
                    | NeedsInfo
                    | Scheduled
                    | Rejected
            )
            | (AwaitingConfirmation, Executing | AwaitingConfirmation)
            | (Held, Executing)
            | (Failed, Executing)
            | (Notifying, Closed | NeedsInfo)
            | (Manual, Closed | Notifying | Received)
    )
}

/// One line of a request's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: Timestamp,
    pub actor: Actor,
    pub from: Option<StateName>,
    pub to: StateName,
    pub reason: String,
}

pub use outbox::{Delivery, MessageKind, OutboxMessage};

/// A tracked request: one form row, its state and everything that happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    /// Row number in the response sheet (1 is the header); 0 for a request cuentas opened itself
    /// (`origin`).
    pub row: u32,
    /// Hash of the row's cells, to notice edits.
    pub row_hash: String,
    pub received_at: Timestamp,
    /// Deadline of the service level (see [`crate::sla`]), moved forward by the time the clock
    /// was stopped; kept up to date each time the request moves.
    pub sla_deadline: Timestamp,
    /// The account name this request has taken (creations), so no other request takes it.
    pub reserved_account: Option<String>,
    /// The account the request acts on, once planned.
    #[serde(default)]
    pub account: Option<String>,
    pub submission: Submission,
    pub state: State,
    pub history: Vec<HistoryEntry>,
    /// Messages about this request, sent and to send: the outbox lives with its request, so
    /// registering a row writes one record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<OutboxMessage>,
    /// Where the access data went, masked (`m***@gmail.com`), for the outcome message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_sent_to: Option<String>,
    /// The account made for this request whose access data could not be delivered: after the
    /// requester's fix the request resumes at the credential step, never planned again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_for: Option<String>,
    /// The form's own id for the response this row is (`[source] form_id`): the proof that
    /// the form, not a hand in the spreadsheet, wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_response: Option<String>,
    /// When that response was submitted or last edited, as the form says: an edit of the row
    /// is the form's only if the form's time moved on (Forms rewrites it on every edit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_submitted: Option<Timestamp>,
    /// Credential steps begun (each durable before it sets a password): every access-data
    /// message has its own Message-ID, and from the second one on says it replaces the others.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub credential_attempts: u32,
    /// Which of its directory steps the request is at (a leave has two, a deletion two).
    #[serde(default, skip_serializing_if = "Phase::is_start")]
    pub phase: Phase,
    /// The new account's access data wait for its mailbox (`mailbox_ready` hook): since when,
    /// and how many times it was looked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_wait: Option<MailboxWait>,
    /// The new account's mailbox was found (the `mailbox_ready` hook succeeded).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mailbox_ready: bool,
    /// Its service level as of its last move, the 80 % warning and the breach.
    #[serde(default, skip_serializing_if = "SlaRecord::is_empty")]
    pub sla: SlaRecord,
    /// The person it is about, as a keyed hash of their document number
    /// ([`crate::retention::person_hash`]): kept when the personal data go, so that a later
    /// response from the same person is still recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_hash: Option<String>,
    /// When its personal data were removed (`retention_days` after it closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<Purged>,
    /// Decided in the shadow week (`[directory] mode = "shadow"`): nothing it planned was
    /// written to AD, and live cuentas never carries it on (`cuentas replay` takes it again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    /// The shadow request this one takes again, live (`cuentas replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<RequestId>,
    /// The live request that took this shadow one again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_as: Option<RequestId>,
    /// Opened by cuentas itself, not by a form response (its `row` is 0): why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// Why cuentas opened a request no one sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// The contract whose last day is `expires` ended with the account enabled: it is disabled
    /// at the end of that day (`[directory] disable_at_contract_end`), by the procedure's
    /// word rather than an authorizer's, unless the directory shows the contract extended.
    ContractEnd { expires: Date },
}

/// The directory step a request is at. Most kinds have one; a leave or a suspension with a
/// return date a second (enable on the return), a deletion a second (delete, once confirmed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    #[default]
    Start,
    /// The return from a leave or a suspension.
    Return,
    /// The deletion of an account disabled in the retired OU, every backup confirmed.
    Removal,
}

impl Phase {
    fn is_start(&self) -> bool {
        *self == Phase::Start
    }
}

/// A new account's access data waiting for its mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxWait {
    pub since: Timestamp,
    pub checks: u32,
}

/// The procedure's steps before an account is deleted (activity 3, *eliminación de usuario*):
/// the key `cuentas confirm` takes, and what it confirms.
pub const DELETION_CHECKLIST: [(&str, &str); 7] = [
    ("correo", "copia de seguridad del correo"),
    ("calendario", "copia de seguridad del calendario"),
    ("contactos", "copia de seguridad de los contactos"),
    ("nube", "copia de seguridad del almacenamiento en la nube"),
    ("equipo-respaldo", "copia de seguridad del equipo asignado"),
    ("equipo-dominio", "equipo retirado del dominio"),
    ("equipo-borrado", "información del usuario borrada del equipo"),
];

/// What a checklist step confirms, by its key.
pub fn checklist_step(key: &str) -> Option<&'static str> {
    DELETION_CHECKLIST.iter().find(|(k, _)| *k == key).map(|(_, what)| *what)
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Request {
    /// A request as registered, in `Received`, with its first history line.
    pub fn new(
        id: RequestId,
        row: u32,
        row_hash: String,
        submission: Submission,
        now: Timestamp,
        sla_deadline: Timestamp,
    ) -> Request {
        let actor = Actor::Requester(submission.requester.clone());
        Request {
            id,
            row,
            row_hash,
            received_at: now,
            sla_deadline,
            reserved_account: None,
            account: None,
            submission,
            state: State::Received,
            outbox: Vec::new(),
            credentials_sent_to: None,
            credentials_for: None,
            form_response: None,
            form_submitted: None,
            credential_attempts: 0,
            phase: Phase::Start,
            mailbox_wait: None,
            mailbox_ready: false,
            sla: SlaRecord::default(),
            person_hash: None,
            purged: None,
            shadow: false,
            replay_of: None,
            replayed_as: None,
            origin: None,
            history: vec![HistoryEntry {
                at: now,
                actor,
                from: None,
                to: StateName::Received,
                reason: format!("registrada desde la fila {row}"),
            }],
        }
    }

    /// When it closed (entered its closed state), if it is closed.
    pub fn closed_at(&self) -> Option<Timestamp> {
        if self.is_open() {
            return None;
        }
        let entered = self.history.iter().find(|h| h.to.is_closed() && h.from != Some(h.to)).map(|h| h.at);
        entered.or(self.history.last().map(|h| h.at))
    }

    /// The last day of the contract whose end opened this request, if one did.
    pub fn contract_end(&self) -> Option<Date> {
        self.origin.map(|Origin::ContractEnd { expires }| expires)
    }

    /// Moves to `to` if DESIGN §4 allows it, and writes the history line.
    pub fn transition(
        &mut self,
        to: State,
        actor: Actor,
        reason: impl Into<String>,
        now: Timestamp,
    ) -> Result<(), IllegalTransition> {
        let from = self.state.name();
        if !allowed(from, to.name()) {
            return Err(IllegalTransition { id: self.id, from, to: to.name() });
        }
        self.history.push(HistoryEntry {
            at: now,
            actor,
            from: Some(from),
            to: to.name(),
            reason: reason.into(),
        });
        self.state = to;
        Ok(())
    }

    /// Appends a history line that does not change the state (e.g. an e-mail sent).
    pub fn note(&mut self, actor: Actor, reason: impl Into<String>, now: Timestamp) {
        let state = self.state.name();
        self.history.push(HistoryEntry {
            at: now,
            actor,
            from: Some(state),
            to: state,
            reason: reason.into(),
        });
    }

    /// Adds a message about this request to its outbox; its id (and Message-ID) is stable for
    /// this step of the history.
    pub fn queue_message(&mut self, kind: MessageKind, to: Vec<String>, detail: String, now: Timestamp) {
        let id = format!("{}.{}.{}", self.id, self.history.len(), kind.key());
        self.outbox.push(OutboxMessage::new(id, Some(self.id), kind, to, detail, now));
    }

    /// Copies the message just queued to the service-desk register, in the ticket's thread.
    pub fn copy_to_register(&mut self, register: &str) {
        if let Some(copy) = self.outbox.last().and_then(|m| m.register_copy(register)) {
            self.outbox.push(copy);
        }
    }

    pub fn is_open(&self) -> bool {
        !self.state.name().is_closed()
    }
}

/// What the engine recorded about a request's service level: the warning sent, the breach.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaRecord {
    /// Consumed and remaining business seconds as of the last time the request moved.
    #[serde(default)]
    pub consumed_secs: i64,
    #[serde(default)]
    pub remaining_secs: i64,
    /// When the service desk was warned at 80 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned_at: Option<Timestamp>,
    /// When the target was passed with the request still open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breached_at: Option<Timestamp>,
}

impl SlaRecord {
    pub fn is_empty(&self) -> bool {
        *self == SlaRecord::default()
    }
}

/// When a request's personal data were removed, and after how many days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purged {
    pub at: Timestamp,
    pub retention_days: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request {
        let now: Timestamp = "2026-03-02T13:00:00Z".parse().unwrap();
        Request::new(RequestId { year: 2026, seq: 7 }, 2, "h".into(), Submission::default(), now, now)
    }

    #[test]
    fn ids_print_and_parse() {
        let id = RequestId { year: 2026, seq: 123 };
        assert_eq!(id.to_string(), "GU-2026-000123");
        assert_eq!("GU-2026-000123".parse::<RequestId>(), Ok(id));
        assert!("GU-26-000123".parse::<RequestId>().is_err());
        assert!("GU-2026-12".parse::<RequestId>().is_err());
        assert!("XX-2026-000123".parse::<RequestId>().is_err());
    }

    #[test]
    fn every_pair_of_states_follows_the_design() {
        use StateName::*;
        let legal = [
            (Received, Rejected),
            (Received, Routed),
            (Received, NeedsInfo),
            (Received, Scheduled),
            (Received, Executing),
            (Received, Manual),
            (NeedsInfo, Received),
            (Scheduled, Executing),
            (Scheduled, Scheduled),
            // Decided again at its due time: no longer authorized, or no longer possible.
            (Scheduled, Rejected),
            (Scheduled, NeedsInfo),
            // Its response edited before its date: decided again.
            (Scheduled, Received),
            (Executing, AwaitingConfirmation),
            (Executing, Held),
            (Executing, Executing),
            (Executing, Failed),
            (Executing, Notifying),
            (Executing, NeedsInfo),
            // Resumed (a retry, a release, a backoff) and decided again: no longer authorized.
            (Executing, Rejected),
            // A leave's first step done: its return waits for its date.
            (Executing, Scheduled),
            (AwaitingConfirmation, Executing),
            // One more step of a deletion's checklist confirmed.
            (AwaitingConfirmation, AwaitingConfirmation),
            (Held, Executing),
            (Failed, Executing),
            (Notifying, Closed),
            (Notifying, NeedsInfo),
            (Manual, Closed),
            (Manual, Notifying),
            // The service desk changed the directory as it was asked: decided again.
            (Manual, Received),
        ];
        for from in StateName::ALL {
            for to in StateName::ALL {
                let expected = legal.contains(&(from, to)) || (to == Cancelled && !from.is_closed());
                assert_eq!(allowed(from, to), expected, "{from} → {to}");
            }
        }
    }

    #[test]
    fn illegal_transition_is_an_error_and_leaves_the_request_alone() {
        let mut r = request();
        let now = r.received_at;
        let err = r.transition(State::Closed { outcome: "x".into() }, Actor::Daemon, "x", now);
        assert_eq!(
            err,
            Err(IllegalTransition { id: r.id, from: StateName::Received, to: StateName::Closed })
        );
        assert_eq!(r.state, State::Received);
        assert_eq!(r.history.len(), 1);
        r.transition(State::Rejected { reason: "no".into() }, Actor::Daemon, "no", now).unwrap();
        assert!(r.transition(State::Cancelled { reason: "x".into() }, Actor::Daemon, "x", now).is_err());
        assert_eq!(r.history.len(), 2);
        assert_eq!(r.history[1].from, Some(StateName::Received));
    }
}
