//! A request's messages: which message each is, and its delivery. They live in their
//! request's outbox (or, for alerts, on their own) until the relay accepts them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::id::RequestId;

/// Which message an outbox entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageKind {
    /// To the requester: registered, with id and SLA deadline.
    Acknowledgement,
    /// To the requester: not authorized.
    Rejection,
    /// To the requester: not a user-management request.
    Routed,
    /// To the requester: what to fix.
    NeedsInfo,
    /// To the requester: done.
    Outcome,
    /// To the service desk: a request to handle by hand.
    ManualHandling,
    /// To the administrators: something an operator must look at.
    Alert,
    /// To the account's own institutional mailbox: what was done to it, and who asked.
    HolderNotice,
    /// To the requester: the request repeats one already registered.
    Duplicate,
    /// To the requester: a first step done, another to come (a leave's return, a deletion).
    Progress,
    /// To the service desk: the backups to make and confirm before an account is deleted.
    DeletionChecklist,
    /// To the service desk: 80 % of an open request's service level consumed.
    SlaWarning,
    /// To the service-desk tool: the new request as a ticket, the root of its thread.
    Register,
    /// To the requester: the request, or what was left of it, is without effect: a later
    /// request about the same account made it wrong (a leave's return after the person left),
    /// or it waited too long for the requester's fix.
    Voided,
    /// To a person who acted through the service desk's form: done, or why not.
    DeskAnswer,
    /// To a contractor account's manager: the contract ends soon; extend it or end it early.
    ContractEnd,
    /// To whoever asked for an employee's leave: the return, and the account's reactivation, is
    /// the next business day.
    LeaveReturn,
}

impl MessageKind {
    /// Part of the Message-ID and of the template file name.
    pub fn key(self) -> &'static str {
        match self {
            MessageKind::Acknowledgement => "acuse",
            MessageKind::Rejection => "rechazo",
            MessageKind::Routed => "redireccion",
            MessageKind::NeedsInfo => "informacion-requerida",
            MessageKind::Outcome => "resultado",
            MessageKind::ManualHandling => "gestion-manual",
            MessageKind::Alert => "alerta",
            MessageKind::HolderNotice => "aviso-titular",
            MessageKind::Duplicate => "duplicada",
            MessageKind::Progress => "avance",
            MessageKind::DeletionChecklist => "lista-eliminacion",
            MessageKind::SlaWarning => "aviso-ans",
            MessageKind::Register => "registro",
            MessageKind::Voided => "sin-efecto",
            MessageKind::DeskAnswer => "respuesta-mesa",
            MessageKind::ContractEnd => "fin-de-contrato",
            MessageKind::LeaveReturn => "regreso-de-licencia",
        }
    }
}

/// Delivery state of an outbox message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    Pending { attempts: u32, next_attempt: Option<Timestamp> },
    Sent { at: Timestamp },
    Failed { error: String, at: Timestamp },
}

/// A message waiting to be sent (or sent), rendered from its request when delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    /// Unique and stable: `<request id>.<history step>.<kind>` or `alert.<hash>`; also the Message-ID.
    pub id: String,
    pub request: Option<RequestId>,
    pub kind: MessageKind,
    pub to: Vec<String>,
    /// The text that varies per message (reason, list of problems, alert body).
    pub detail: String,
    pub created_at: Timestamp,
    pub delivery: Delivery,
    /// The id of the message it answers in a thread (`In-Reply-To`, `References`): the
    /// service-desk ticket, for the copies sent to the register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
}

impl OutboxMessage {
    pub fn new(
        id: String,
        request: Option<RequestId>,
        kind: MessageKind,
        to: Vec<String>,
        detail: String,
        now: Timestamp,
    ) -> OutboxMessage {
        OutboxMessage {
            id,
            request,
            kind,
            to,
            detail,
            created_at: now,
            delivery: Delivery::Pending { attempts: 0, next_attempt: None },
            thread: None,
        }
    }

    /// The id of a request's ticket in the service-desk register.
    pub fn ticket_id(request: RequestId) -> String {
        format!("{request}.registro")
    }

    /// This message's copy for the service-desk register, in the request's ticket thread.
    pub fn register_copy(&self, register: &str) -> Option<OutboxMessage> {
        let request = self.request?;
        (self.kind != MessageKind::Register).then(|| OutboxMessage {
            id: format!("{}.copia", self.id),
            to: vec![register.to_string()],
            thread: Some(OutboxMessage::ticket_id(request)),
            ..self.clone()
        })
    }

    pub fn is_pending(&self) -> bool {
        matches!(self.delivery, Delivery::Pending { .. })
    }
}
