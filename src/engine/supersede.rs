//! Later steps supersede pending ones (DESIGN §4): once a step that ends, pauses or restores
//! an account has been carried out, the pending steps of the other requests about the same
//! account are looked at again, and those it makes wrong are cancelled, with the reason in
//! their history and a message to their requester. A leave's return must not enable a person
//! who has since left; of two leaves, the one that returns later holds the account; a person
//! who came back (a reactivation, a returning person's creation) is not deleted by a deletion
//! that was waiting for its backups. A step with a date of its own (a reactivation dated after
//! a disable) is the entity's explicit word: its date decides.

use jiff::Timestamp;
use jiff::civil::Date;
use tracing::info;

use super::{CycleReport, Engine, EngineError, Move};
use crate::config::LeaveAction;
use crate::directory::ops::DirectoryOp;
use crate::directory::plan::Plan;
use crate::request::{Kind, Phase, Request, State, StateName};
use crate::store::{Changes, MessageKind};

/// What a step just carried out means for the account it acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Disabled for good: the person left (disable, deletion, early termination, the previous
    /// holder of an assigned contract).
    Ends,
    /// Disabled until a return date (a leave, a suspension): `None` for one without.
    Pauses(Option<Date>),
    /// Enabled again: the person came back (a reactivation, a returning person's creation).
    Restores,
}

/// What becomes of another request's pending step once a step had `effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It still holds.
    Stands,
    /// It is cancelled: the later request made it wrong.
    Cancelled,
    /// It is cancelled, and the later request's return replaces its own.
    TakenOver,
}

/// The effect of `request`'s step, whose plan was `plan`, and the account it had it on.
fn effect(request: &Request, plan: &Plan, leave_action: LeaveAction) -> Option<(Effect, String)> {
    let kind = request.submission.kind?;
    if request.phase != Phase::Start {
        return None;
    }
    let account = plan.account.to_lowercase();
    match kind {
        Kind::Disable | Kind::Delete | Kind::EarlyTermination => Some((Effect::Ends, account)),
        Kind::Assignment => plan.previous_holder.as_ref().map(|old| (Effect::Ends, old.to_lowercase())),
        Kind::Suspension => Some((Effect::Pauses(request.submission.return_date), account)),
        Kind::Leave if leave_action == LeaveAction::Disable => {
            Some((Effect::Pauses(request.submission.return_date), account))
        }
        Kind::Enable | Kind::Create if plan.ops.iter().any(|op| matches!(op, DirectoryOp::Enable { .. })) => {
            Some((Effect::Restores, account))
        }
        _ => None,
    }
}

/// Whether another request's step, pending in `state` at `phase` (a return on `returns`, if
/// it is one), still holds after a step had `effect` on its account. Pure: the rule,
/// table-tested.
fn verdict(kind: Kind, phase: Phase, state: StateName, returns: Option<Date>, effect: Effect) -> Verdict {
    if effect == Effect::Restores {
        // The deletion of an account its person came back to: its backups are moot, and
        // deleting would take the account from them.
        let waiting = kind == Kind::Delete && state == StateName::AwaitingConfirmation;
        return if waiting { Verdict::Cancelled } else { Verdict::Stands };
    }
    let pending = matches!(state, StateName::Scheduled | StateName::Held | StateName::Executing);
    if !pending || phase != Phase::Return {
        // A step with a date of its own (a reactivation on the 3rd after a disable on the 1st)
        // is the entity's explicit word, and its date decides.
        return Verdict::Stands;
    }
    match effect {
        // A person who left is not enabled again by a return, whichever request scheduled it.
        Effect::Ends => Verdict::Cancelled,
        // Two leaves or suspensions: the account comes back when the later return comes; the
        // other return is dropped.
        Effect::Pauses(until) if matches!(kind, Kind::Leave | Kind::Suspension) => {
            let later = match (until, returns) {
                (None, _) => true,
                (Some(until), Some(returns)) => until >= returns,
                (Some(_), None) => false,
            };
            if later { Verdict::TakenOver } else { Verdict::Stands }
        }
        _ => Verdict::Stands,
    }
}

impl Engine {
    /// After `request`'s step (plan `plan`) was carried out: cancels the pending steps of the
    /// other requests about the same account that it makes wrong, whenever they were
    /// registered (a deletion dated for Friday, registered before a leave that started on
    /// Monday, still ends the account on Friday). Whether one of them was a return this request
    /// takes over (its own return is then scheduled even though the account was already
    /// disabled when it ran).
    pub(super) fn supersede(
        &mut self,
        changes: &mut Changes,
        report: &mut CycleReport,
        request: &Request,
        plan: &Plan,
        now: Timestamp,
    ) -> Result<bool, EngineError> {
        let Some((effect, account)) = effect(request, plan, self.config.directory.leave_action) else {
            return Ok(false);
        };
        let Some(later_kind) = request.submission.kind else { return Ok(false) };
        let tz = self.config.calendar.time_zone().clone();
        let mut took_over = false;
        for mut other in self.store.open_requests()? {
            if other.id == request.id || self.superseded.contains(&other.id) {
                continue;
            }
            let about = other.account.as_deref().unwrap_or(&other.submission.account);
            let Some(kind) = other.submission.kind else { continue };
            if about.to_lowercase() != account {
                continue;
            }
            let returns = other.submission.return_date;
            let verdict = verdict(kind, other.phase, other.state.name(), returns, effect);
            if verdict == Verdict::Stands {
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
            let why = match verdict {
                Verdict::TakenOver => format!(
                    "{what}: la solicitud {} ({}) la inactivó de nuevo y su fecha de regreso, posterior, es la \
                     que cuenta",
                    request.id,
                    later_kind.label()
                ),
                _ => format!(
                    "{what}: la solicitud {} ({}) {}",
                    request.id,
                    later_kind.label(),
                    match effect {
                        Effect::Ends => "inactivó la cuenta porque la persona se retira o deja la entidad",
                        Effect::Pauses(_) => "la inactivó por vacaciones, licencia o suspensión",
                        Effect::Restores => "la reactivó: la persona vuelve a la entidad",
                    }
                ),
            };
            took_over |= verdict == Verdict::TakenOver;
            info!(request_id = %other.id, by = %request.id, account = %account, "superseded by a later request");
            let cancelled = State::Cancelled { reason: why.clone() };
            let step = Move::daemon(cancelled, why.clone()).telling(MessageKind::Voided, why);
            self.superseded.insert(other.id);
            self.record(changes, report, &mut other, step, now)?;
        }
        Ok(took_over)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ending_cancels_every_pending_return_and_nothing_that_has_a_date_of_its_own() {
        use StateName::*;
        let ends = Effect::Ends;
        for kind in Kind::ALL {
            // A return is cancelled whatever request scheduled it, while it is pending.
            for state in [Scheduled, Held, Executing] {
                assert_eq!(
                    verdict(kind, Phase::Return, state, None, ends),
                    Verdict::Cancelled,
                    "{kind:?} {state:?}"
                );
            }
            for state in [Notifying, Closed, NeedsInfo, Manual, Received, Failed, AwaitingConfirmation] {
                assert_eq!(
                    verdict(kind, Phase::Return, state, None, ends),
                    Verdict::Stands,
                    "{kind:?} {state:?}"
                );
            }
            // A step with its own date: the dates decide.
            assert_eq!(verdict(kind, Phase::Start, Scheduled, None, ends), Verdict::Stands, "{kind:?}");
        }
        // A deletion waiting for its backups goes on.
        assert_eq!(verdict(Kind::Delete, Phase::Removal, AwaitingConfirmation, None, ends), Verdict::Stands);
    }

    #[test]
    fn of_two_leaves_the_later_return_holds_the_account() {
        use StateName::*;
        let date = |d: &str| Some(d.parse::<Date>().unwrap());
        let until = |d: &str| Effect::Pauses(date(d));
        for kind in [Kind::Leave, Kind::Suspension] {
            // The other returns earlier, or the same day: this one's return takes over.
            assert_eq!(
                verdict(kind, Phase::Return, Scheduled, date("2027-03-10"), until("2027-03-20")),
                Verdict::TakenOver
            );
            assert_eq!(
                verdict(kind, Phase::Return, Scheduled, date("2027-03-20"), until("2027-03-20")),
                Verdict::TakenOver
            );
            assert_eq!(
                verdict(kind, Phase::Return, Held, date("2027-03-10"), Effect::Pauses(None)),
                Verdict::TakenOver
            );
            // The other returns later: it holds the account, and this one has no return.
            assert_eq!(
                verdict(kind, Phase::Return, Scheduled, date("2027-03-21"), until("2027-03-20")),
                Verdict::Stands
            );
            assert_eq!(verdict(kind, Phase::Return, Scheduled, None, until("2027-03-20")), Verdict::Stands);
        }
        for kind in
            [Kind::Enable, Kind::Modify, Kind::Transfer, Kind::Disable, Kind::Delete, Kind::PasswordReset]
        {
            assert_eq!(
                verdict(kind, Phase::Start, Scheduled, None, until("2027-03-20")),
                Verdict::Stands,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn a_person_who_came_back_is_not_deleted_by_a_deletion_waiting_for_its_backups() {
        use StateName::*;
        let restores = Effect::Restores;
        assert_eq!(
            verdict(Kind::Delete, Phase::Removal, AwaitingConfirmation, None, restores),
            Verdict::Cancelled
        );
        assert_eq!(
            verdict(Kind::Delete, Phase::Start, AwaitingConfirmation, None, restores),
            Verdict::Cancelled
        );
        // A deletion dated later is the entity's word for that date; nothing else is undone.
        assert_eq!(verdict(Kind::Delete, Phase::Start, Scheduled, None, restores), Verdict::Stands);
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Delete) {
            for state in [Scheduled, Held, Executing, AwaitingConfirmation] {
                for phase in [Phase::Start, Phase::Return] {
                    assert_eq!(
                        verdict(kind, phase, state, None, restores),
                        Verdict::Stands,
                        "{kind:?} {state:?}"
                    );
                }
            }
        }
    }
}
