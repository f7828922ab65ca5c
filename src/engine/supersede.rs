//! Later steps supersede pending ones (DESIGN §4): once a step that ends, restores or removes
//! an account has been carried out, the pending steps of the other requests about the same
//! account are looked at again, and those it makes wrong are cancelled, with the reason in
//! their history and a message to their requester. A leave's return must not enable a person
//! who has since left; a person who came back (a reactivation, a returning person's creation)
//! is not deleted by a deletion that was waiting for its backups; nothing is left pending on an
//! account that was deleted. A step with a date of its own (a reactivation dated after a
//! disable) is the entity's explicit word: its date decides. Leaves that overlap do not cancel
//! each other: each return is decided when it comes, and the last one enables (see
//! [`Engine::held_by_another_leave`]).

use jiff::Timestamp;
use tracing::info;

use super::{CycleReport, Engine, EngineError, Move};
use crate::directory::ops::DirectoryOp;
use crate::directory::plan::Plan;
use crate::request::{Kind, Phase, Request, RequestId, State, StateName};
use crate::store::{Changes, MessageKind};

/// What a step just carried out means for the account it acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Disabled for good: the person left (disable, deletion, early termination, the previous
    /// holder of an assigned contract).
    Ends,
    /// Enabled again: the person came back (a reactivation, a returning person's creation).
    Restores,
    /// Deleted from the directory.
    Removes,
}

/// What becomes of another request's pending step once a step had `effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// It still holds.
    Stands,
    /// It is cancelled: the step made it wrong.
    Cancelled,
}

/// The effect of `request`'s step, whose plan was `plan`, and the account it had it on.
fn effect(request: &Request, plan: &Plan) -> Option<(Effect, String)> {
    let kind = request.submission.kind?;
    let account = plan.account.to_lowercase();
    if plan.ops.iter().any(|op| matches!(op, DirectoryOp::Delete { .. })) {
        return Some((Effect::Removes, account));
    }
    if request.phase != Phase::Start {
        return None;
    }
    match kind {
        Kind::Disable | Kind::Delete | Kind::EarlyTermination => Some((Effect::Ends, account)),
        Kind::Assignment => plan.previous_holder.as_ref().map(|old| (Effect::Ends, old.to_lowercase())),
        Kind::Enable | Kind::Create if plan.ops.iter().any(|op| matches!(op, DirectoryOp::Enable { .. })) => {
            Some((Effect::Restores, account))
        }
        _ => None,
    }
}

/// Whether another request's step, pending in `state` at `phase`, still holds after a step
/// had `effect` on its account. Pure: the rule, table-tested.
fn verdict(kind: Kind, phase: Phase, state: StateName, effect: Effect) -> Verdict {
    let pending = matches!(state, StateName::Scheduled | StateName::Held | StateName::Executing);
    let waiting = state == StateName::AwaitingConfirmation;
    let cancelled = match effect {
        // Nothing is left to do on an account that is gone.
        Effect::Removes => (pending || waiting) && kind.needs_existing_account(),
        // The deletion of an account its person came back to: its backups are moot, and
        // deleting would take the account from them. A return is moot too: the account is
        // enabled, and the leave would otherwise hold it past a later leave's return.
        Effect::Restores => (kind == Kind::Delete && waiting) || (pending && phase == Phase::Return),
        // A person who left is not enabled again by a return, whichever request scheduled it.
        // A step with a date of its own (a reactivation on the 3rd after a disable on the 1st)
        // is the entity's explicit word, and its date decides.
        Effect::Ends => pending && phase == Phase::Return,
    };
    if cancelled { Verdict::Cancelled } else { Verdict::Stands }
}

impl Engine {
    /// After `request`'s step (plan `plan`) was carried out: cancels the pending steps of the
    /// other requests about the same account that it makes wrong, whenever they were
    /// registered (a deletion dated for Friday, registered before a leave that started on
    /// Monday, still ends the account on Friday).
    pub(super) fn supersede(
        &mut self,
        changes: &mut Changes,
        report: &mut CycleReport,
        request: &Request,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Some((effect, account)) = effect(request, plan) else { return Ok(()) };
        let Some(later_kind) = request.submission.kind else { return Ok(()) };
        let tz = self.config.calendar.time_zone().clone();
        // The open requests about the account, from the engine's index: not every open one.
        for id in self.open.about(&account) {
            if id == request.id || self.superseded.contains(&id) {
                continue;
            }
            let Some(mut other) = self.store.request(id)?.filter(Request::is_open) else { continue };
            let about = other.account.as_deref().unwrap_or(&other.submission.account);
            let Some(kind) = other.submission.kind else { continue };
            if about.to_lowercase() != account
                || verdict(kind, other.phase, other.state.name(), effect) == Verdict::Stands
            {
                continue;
            }
            let what = match (&other.state, other.phase) {
                (State::AwaitingConfirmation { .. }, _) => format!("la cuenta {account} no se eliminará"),
                (State::Scheduled { due, .. }, Phase::Return) => format!(
                    "la cuenta {account} no se reactivará el {}",
                    crate::notify::spanish_datetime(*due, &tz)
                ),
                (State::Scheduled { due, .. }, _) => format!(
                    "lo programado para el {} sobre la cuenta {account} no se hará",
                    crate::notify::spanish_datetime(*due, &tz)
                ),
                _ => format!("lo pendiente sobre la cuenta {account} no se hará"),
            };
            let why = format!(
                "{what}: la solicitud {} ({}) {}",
                request.id,
                later_kind.label(),
                match effect {
                    Effect::Ends => "inactivó la cuenta porque la persona se retira o deja la entidad",
                    Effect::Restores => "la reactivó",
                    Effect::Removes => "la eliminó del directorio",
                }
            );
            info!(request_id = %other.id, by = %request.id, account = %account, "superseded by another request's step");
            let cancelled = State::Cancelled { reason: why.clone() };
            let step = Move::daemon(cancelled, why.clone()).telling(MessageKind::Voided, why);
            self.superseded.insert(other.id);
            self.record(changes, report, &mut other, step, now)?;
        }
        Ok(())
    }

    /// Another leave or suspension of `account` whose return is still to come (and when):
    /// while there is one, the account stays disabled. A leave that begins on an account
    /// another leave disabled schedules its own return too, and of overlapping leaves the
    /// last return enables.
    pub(super) fn held_by_another_leave(
        &self,
        request: &Request,
        account: &str,
    ) -> Result<Option<(RequestId, Timestamp)>, EngineError> {
        let mut held = None;
        for id in self.open.about(account) {
            let Some(other) = self.store.request(id)?.filter(Request::is_open) else { continue };
            let about = other.account.as_deref().unwrap_or(&other.submission.account);
            let leave = matches!(other.submission.kind, Some(Kind::Leave | Kind::Suspension));
            if other.id == request.id
                || !leave
                || other.phase != Phase::Return
                || self.superseded.contains(&other.id)
                || !about.eq_ignore_ascii_case(account)
            {
                continue;
            }
            let due = match &other.state {
                State::Scheduled { due, .. } => *due,
                State::Held { .. } | State::Executing { .. } => Timestamp::MAX,
                _ => continue,
            };
            if held.is_none_or(|(_, latest)| due > latest) {
                held = Some((other.id, due));
            }
        }
        Ok(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateName::*;

    #[test]
    fn an_ending_cancels_every_pending_return_and_nothing_that_has_a_date_of_its_own() {
        let ends = Effect::Ends;
        for kind in Kind::ALL {
            // A return is cancelled whatever request scheduled it, while it is pending.
            for state in [Scheduled, Held, Executing] {
                assert_eq!(
                    verdict(kind, Phase::Return, state, ends),
                    Verdict::Cancelled,
                    "{kind:?} {state:?}"
                );
            }
            for state in [Notifying, Closed, NeedsInfo, Manual, Received, Failed, AwaitingConfirmation] {
                assert_eq!(verdict(kind, Phase::Return, state, ends), Verdict::Stands, "{kind:?} {state:?}");
            }
            // A step with its own date: the dates decide.
            assert_eq!(verdict(kind, Phase::Start, Scheduled, ends), Verdict::Stands, "{kind:?}");
        }
        // A deletion waiting for its backups goes on.
        assert_eq!(verdict(Kind::Delete, Phase::Removal, AwaitingConfirmation, ends), Verdict::Stands);
    }

    #[test]
    fn a_person_who_came_back_is_not_deleted_by_a_deletion_waiting_for_its_backups() {
        let restores = Effect::Restores;
        assert_eq!(verdict(Kind::Delete, Phase::Removal, AwaitingConfirmation, restores), Verdict::Cancelled);
        // A deletion dated later is the entity's word for that date; nothing else is undone.
        assert_eq!(verdict(Kind::Delete, Phase::Start, Scheduled, restores), Verdict::Stands);
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Delete) {
            for state in [Scheduled, Held, Executing, AwaitingConfirmation] {
                assert_eq!(
                    verdict(kind, Phase::Start, state, restores),
                    Verdict::Stands,
                    "{kind:?} {state:?}"
                );
            }
        }
        // A leave's return has nothing left to do.
        for state in [Scheduled, Held, Executing] {
            assert_eq!(verdict(Kind::Leave, Phase::Return, state, restores), Verdict::Cancelled, "{state:?}");
        }
    }

    #[test]
    fn nothing_stays_pending_on_a_deleted_account() {
        let removes = Effect::Removes;
        for kind in Kind::ALL.into_iter().filter(|k| k.needs_existing_account()) {
            for state in [Scheduled, Held, Executing, AwaitingConfirmation] {
                assert_eq!(
                    verdict(kind, Phase::Start, state, removes),
                    Verdict::Cancelled,
                    "{kind:?} {state:?}"
                );
            }
            for state in [NeedsInfo, Manual, Received, Failed, Notifying] {
                assert_eq!(
                    verdict(kind, Phase::Start, state, removes),
                    Verdict::Stands,
                    "{kind:?} {state:?}"
                );
            }
        }
        // A creation makes its own account, whatever was deleted.
        assert_eq!(verdict(Kind::Create, Phase::Start, Executing, removes), Verdict::Stands);
    }
}
