//! Later requests supersede earlier steps (DESIGN §4): once a step that ends or pauses an
//! account has been carried out, the pending steps of requests registered before it about the
//! same account are looked at again, and those it makes wrong are cancelled, with the reason in
//! their history and a message to their requester. A leave's return must not enable a person
//! who has since left; a second leave takes over the return of the first. A step with a date
//! of its own (a reactivation dated after a disable) is the entity's explicit word: its date
//! decides.

use jiff::Timestamp;
use tracing::info;

use super::{CycleReport, Engine, EngineError, Move};
use crate::config::LeaveAction;
use crate::directory::plan::Plan;
use crate::request::{Kind, Phase, Request, State, StateName};
use crate::store::{Changes, MessageKind};

/// What a step just carried out means for the account it acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Disabled for good: the person left (disable, deletion, early termination, the previous
    /// holder of an assigned contract).
    Ends,
    /// Disabled until a return date (a leave, a suspension).
    Pauses,
}

/// What becomes of a pending step of an earlier request once a later one had `effect`.
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
        Kind::Suspension => Some((Effect::Pauses, account)),
        Kind::Leave if leave_action == LeaveAction::Disable => Some((Effect::Pauses, account)),
        _ => None,
    }
}

/// Whether an earlier request's step, pending in `state` at `phase`, still holds after a later
/// request had `effect` on its account. Pure: the rule, table-tested.
pub(crate) fn verdict(kind: Kind, phase: Phase, state: StateName, effect_ends: bool) -> Verdict {
    let pending = matches!(state, StateName::Scheduled | StateName::Held | StateName::Executing);
    if !pending {
        return Verdict::Stands;
    }
    match (effect_ends, phase, kind) {
        // A person who left is not enabled again by a return scheduled before they left. A
        // request with a date of its own (a reactivation on the 3rd after a disable on the 1st)
        // is the entity's explicit word, and its date decides.
        (true, Phase::Return, _) => Verdict::Cancelled,
        // A second leave or suspension: its own return date is the one that counts.
        (false, Phase::Return, Kind::Leave | Kind::Suspension) => Verdict::TakenOver,
        _ => Verdict::Stands,
    }
}

impl Engine {
    /// After `request`'s step (plan `plan`) was carried out: cancels the pending steps of
    /// requests registered before it about the same account that it makes wrong. Whether one of
    /// them was a return this request takes over (its own return is then scheduled even though
    /// the account was already disabled when it ran).
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
        for mut earlier in self.store.open_requests()? {
            if earlier.id >= request.id || self.superseded.contains(&earlier.id) {
                continue;
            }
            let about = earlier.account.as_deref().unwrap_or(&earlier.submission.account);
            let Some(kind) = earlier.submission.kind else { continue };
            if about.to_lowercase() != account {
                continue;
            }
            let verdict = verdict(kind, earlier.phase, earlier.state.name(), effect == Effect::Ends);
            if verdict == Verdict::Stands {
                continue;
            }
            let what = match (&earlier.state, earlier.phase) {
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
                    "{what}: la solicitud {} ({}), registrada después, la inactivó de nuevo y su propia fecha de \
                     regreso es la que cuenta",
                    request.id,
                    later_kind.label()
                ),
                _ => format!(
                    "{what}: la solicitud {} ({}), registrada después, {}",
                    request.id,
                    later_kind.label(),
                    if effect == Effect::Ends {
                        "inactivó la cuenta porque la persona se retira o deja la entidad"
                    } else {
                        "la inactivó por vacaciones, licencia o suspensión"
                    }
                ),
            };
            took_over |= verdict == Verdict::TakenOver;
            info!(request_id = %earlier.id, by = %request.id, account = %account, "superseded by a later request");
            let cancelled = State::Cancelled { reason: why.clone() };
            let step = Move::daemon(cancelled, why.clone()).telling(MessageKind::Voided, why);
            self.superseded.insert(earlier.id);
            self.record(changes, report, &mut earlier, step, now)?;
        }
        Ok(took_over)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ending_cancels_an_earlier_return_and_nothing_that_has_a_date_of_its_own() {
        use StateName::*;
        let ends = true;
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
    fn a_pause_takes_over_an_earlier_leave_s_return() {
        use StateName::*;
        let pauses = false;
        assert_eq!(verdict(Kind::Leave, Phase::Return, Scheduled, pauses), Verdict::TakenOver);
        assert_eq!(verdict(Kind::Suspension, Phase::Return, Scheduled, pauses), Verdict::TakenOver);
        for kind in
            [Kind::Enable, Kind::Modify, Kind::Transfer, Kind::Disable, Kind::Delete, Kind::PasswordReset]
        {
            assert_eq!(verdict(kind, Phase::Start, Scheduled, pauses), Verdict::Stands, "{kind:?}");
        }
    }
}
