//! From `Received` to a decided state (procedure activity 2's control point): answered
//! (`Rejected`, `Routed`), back to the requester (`NeedsInfo`), planned (`Scheduled`,
//! `Executing`) or handed to a person (`Manual`). The policy decides on the authorizer matrix;
//! the plan is made against what the directory holds.

use jiff::Timestamp;
use jiff::civil::Date;
use tracing::{info, info_span};

use super::{CycleReport, Engine, EngineError, Move, log_directory_error};
use crate::directory::plan::{self, DirectoryOp, NoPlan, Plan};
use crate::notify;
use crate::policy::{Decision, Query, TargetAccount};
use crate::request::{HolderType, Kind, Request, State, StateName};
use crate::store::{Changes, MessageKind};

/// A decision on a `Received` request: the state it goes to, why (for its history), and the
/// message that tells the requester, if one does.
pub(super) struct Triage {
    state: State,
    reason: String,
    tell: Option<MessageKind>,
}

impl Triage {
    /// A state whose own reason is what the history and the message say.
    fn to(state: State, tell: MessageKind) -> Triage {
        Triage { reason: state.reason().to_string(), state, tell: Some(tell) }
    }

    fn needs_info(reason: String, now: Timestamp) -> Triage {
        Triage::to(State::NeedsInfo { reason, since: now }, MessageKind::NeedsInfo)
    }

    fn rejected(reason: String) -> Triage {
        Triage::to(State::Rejected { reason }, MessageKind::Rejection)
    }

    /// Authorized and planned (or handed to a person): no answer yet but the acknowledgement.
    fn decided(state: State, reason: String) -> Triage {
        Triage { state, reason, tell: None }
    }
}

impl Engine {
    /// Triages a request and records the outcome in `changes`; a request the directory or
    /// the matrix cannot decide yet is staged as it is, `Received`, and tried again later.
    pub(super) fn triage_and_record(
        &mut self,
        request: &mut Request,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        match self.triage(request, now)? {
            Some(triage) => self.settle(changes, report, request, triage, now),
            None => {
                self.stage(changes, report, request);
                Ok(())
            }
        }
    }

    /// The decision on a `Received` request; `None` while the directory does not answer or
    /// the matrix's spreadsheet has not been read.
    pub(super) fn triage(
        &mut self,
        request: &Request,
        now: Timestamp,
    ) -> Result<Option<Triage>, EngineError> {
        let s = &request.submission;
        let _span = info_span!("request", request_id = %request.id, row = request.row, kind = s.kind.map_or("?", Kind::key)).entered();
        Ok(Some(match s.kind {
            Some(Kind::OutOfScope) => Triage::to(
                State::Routed {
                    reason: format!(
                        "«{}» no es una solicitud de gestión de usuarios; regístrela mediante {}",
                        s.kind_answer, self.config.mail.service_request_procedure
                    ),
                },
                MessageKind::Routed,
            ),
            _ if !s.requester.is_empty() && !self.policy.requester_in_domain(&s.requester) => {
                Triage::rejected(format!(
                    "La dirección {} no pertenece a la entidad ({}); las solicitudes se hacen con el correo institucional",
                    s.requester,
                    self.config.form.requester_domains.join(", ")
                ))
            }
            _ if !s.problems.is_empty() => {
                let reason = s.problems.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n");
                Triage::needs_info(reason, now)
            }
            Some(kind) => return self.authorize_and_plan(request, kind, now),
            None => Triage::needs_info("Falta el tipo de solicitud".into(), now),
        }))
    }

    /// Records a decision: the new state, the acknowledgement of work taken on, the answer,
    /// and the account the plan names (claimed, if the plan creates it).
    pub(super) fn settle(
        &mut self,
        changes: &mut Changes,
        report: &mut CycleReport,
        request: &mut Request,
        triage: Triage,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Triage { state, reason, tell } = triage;
        let name = state.name();
        let kind = request.submission.kind.map_or("?", Kind::key);
        let _span = info_span!("request", request_id = %request.id, row = request.row, kind).entered();
        match name {
            StateName::Rejected | StateName::Routed | StateName::NeedsInfo => {
                info!(state = %name, "{}", super::first_line(&reason))
            }
            _ => info!(state = %name, "registered"),
        }
        if let Some(plan) = state.plan() {
            request.account = Some(plan.account.clone());
            if plan.ops.iter().any(|op| matches!(op, DirectoryOp::Create { .. })) {
                request.reserved_account = Some(plan.account.clone());
            }
        }
        let mut step = Move::daemon(state, reason.clone());
        if matches!(name, StateName::Scheduled | StateName::Executing | StateName::Manual) {
            step = step.telling(MessageKind::Acknowledgement, String::new());
        }
        if name == StateName::Manual {
            step = step.telling(MessageKind::ManualHandling, reason);
        } else if let Some(kind) = tell {
            step = step.telling(kind, reason);
        }
        self.record(changes, report, request, step, now)
    }

    /// The matrix's decision on an authorized kind, then the plan against the directory.
    fn authorize_and_plan(
        &mut self,
        request: &Request,
        kind: Kind,
        now: Timestamp,
    ) -> Result<Option<Triage>, EngineError> {
        let s = &request.submission;
        let today = self.today(now);
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
            holder: s.holder_type.unwrap_or(HolderType::Employee),
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
            Decision::Deny { reason } => return Ok(Some(Triage::rejected(reason))),
        };
        // Names other open requests took, this batch's included: `stage` keeps the set in step.
        let taken = |name: &str| self.claimed.contains(name);
        Ok(Some(match plan::plan(request, &snapshot, &self.layout, today, taken) {
            Ok(plan) => self.planned(request, kind, plan, &grant, today, now),
            Err(NoPlan::NeedsInfo(reason)) => Triage::needs_info(reason, now),
            Err(NoPlan::Refused(reason)) => Triage::rejected(reason),
            Err(NoPlan::NotAutomated) => {
                let reason = format!(
                    "autorizada ({grant}), pero cuentas aún no automatiza «{}»: hágalo a mano en el directorio y cierre la solicitud",
                    kind.label()
                );
                Triage::decided(State::Manual { reason: reason.clone() }, reason)
            }
        }))
    }

    /// An authorized plan: carried out now, or on its effective date for the kinds that have one.
    fn planned(
        &self,
        request: &Request,
        kind: Kind,
        plan: Plan,
        grant: &str,
        today: Date,
        now: Timestamp,
    ) -> Triage {
        let ops = plan.ops.len();
        let calendar = &self.config.calendar;
        match request.submission.effective_date.filter(|d| *d > today) {
            Some(date) if matches!(kind, Kind::Disable | Kind::Enable | Kind::Modify | Kind::Transfer) => {
                let tz = calendar.time_zone();
                let due = date
                    .to_datetime(calendar.day_start())
                    .to_zoned(tz.clone())
                    .map_or(now, |z| z.timestamp());
                let note = format!(
                    "autorizada ({grant}); {ops} operación(es) programada(s) para {}",
                    notify::spanish_datetime(due, tz)
                );
                Triage::decided(State::Scheduled { due, plan }, note)
            }
            _ => {
                let note = format!("autorizada ({grant}); {ops} operación(es) en el directorio");
                Triage::decided(State::Executing { plan, attempts: 0, retry_at: None, released: false }, note)
            }
        }
    }
}
