//! When an open request next needs the daemon's attention (pure): a scheduled step's date, a
//! retry's time, the moment its service level reaches the 80 % warning or breaks, the days a
//! requester's fix is awaited, the days a deletion waits. The store keeps open requests in an
//! index ordered by this instant, so that a cycle loads what is due rather than every open
//! request. An instant may come early (the request is looked at and passed over), never late.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::calendar::Calendar;
use crate::request::{Request, State};

/// The share of the service level at which the service desk is warned, in percent.
pub const SLA_WARN_PERCENT: i64 = 80;

/// The settings the instants depend on (`[time]`, `[sla]`, `[directory]`).
#[derive(Debug, Clone)]
pub struct Rules {
    pub calendar: Calendar,
    /// `[sla] default_hours` and its per-kind `hours`.
    pub sla_default_hours: u32,
    pub sla_hours: BTreeMap<String, u32>,
    pub needs_info_reminder_business_days: u32,
    pub needs_info_expiry_business_days: u32,
    pub min_days_disabled_before_delete: u32,
}

impl Rules {
    fn sla_hours(&self, r: &Request) -> u32 {
        r.submission.kind.and_then(|k| self.sla_hours.get(k.key()).copied()).unwrap_or(self.sla_default_hours)
    }

    /// `days` working days of business time after `since` (what a requester's fix is given).
    pub fn business_days_after(&self, since: Timestamp, days: u32) -> Timestamp {
        let day: SignedDuration = self.calendar.day_start().duration_until(self.calendar.day_end());
        let days = i32::try_from(days).unwrap_or(i32::MAX);
        self.calendar.add_business_hours(since, day.checked_mul(days).unwrap_or(SignedDuration::MAX))
    }

    /// When a deletion disabled at `since` may remove its account (every backup confirmed).
    pub fn removable_after(&self, since: Timestamp) -> Timestamp {
        let days = i64::from(self.min_days_disabled_before_delete);
        since + SignedDuration::from_hours(24 * days)
    }
}

/// The next instant `r` needs looking at, `None` when only a person's action or a new response
/// moves it (a request waiting by hand, held, failed, or closed). Without rules, every open
/// request is due at every cycle.
pub fn next(r: &Request, rules: Option<&Rules>) -> Option<Timestamp> {
    if !r.is_open() {
        return None;
    }
    let Some(rules) = rules else { return Some(Timestamp::MIN) };
    let step = match &r.state {
        // Decided at the next cycle (or waiting there for the matrix or the directory); its
        // outcome closes it once delivered.
        State::Received | State::Notifying => Some(Timestamp::MIN),
        State::Scheduled { due, .. } => Some(*due),
        State::Executing { retry_at, .. } => Some(retry_at.unwrap_or(Timestamp::MIN)),
        State::AwaitingConfirmation { pending, since } if pending.is_empty() => {
            Some(rules.removable_after(*since))
        }
        State::NeedsInfo { since, .. } => {
            let reminder = rules.business_days_after(*since, rules.needs_info_reminder_business_days);
            let expiry = rules.business_days_after(*since, rules.needs_info_expiry_business_days);
            // Once reminded, only the expiry is left; an early look is harmless either way.
            let reminded = r
                .outbox
                .iter()
                .any(|m| m.kind == crate::request::MessageKind::NeedsInfo && m.created_at > *since);
            Some(if reminded { expiry } else { reminder.min(expiry) })
        }
        _ => None,
    };
    [step, sla_watch(r, rules)].into_iter().flatten().min()
}

/// When the service-level watch next has something to say about `r`: the 80 % warning, then
/// the breach, while its clock runs (a paused clock moves on when the request moves, and the
/// request is indexed again then).
fn sla_watch(r: &Request, rules: &Rules) -> Option<Timestamp> {
    if matches!(r.state, State::Notifying) || (r.sla.warned_at.is_some() && r.sla.breached_at.is_some()) {
        return None;
    }
    // Measured as of the request's last move: the clock has run the same way since.
    let last = r.history.last().map_or(r.received_at, |h| h.at);
    let m = crate::sla::measure(r, &rules.calendar, rules.sla_hours(r), last);
    if m.paused || m.done {
        return None;
    }
    let warn = r.sla.warned_at.is_none().then(|| {
        let at = m.target * (SLA_WARN_PERCENT as i32) / 100;
        rules.calendar.add_business_hours(last, at - m.consumed).max(last)
    });
    // Broken once consumed passes the target: a business second after the deadline (the next
    // morning's first, for a deadline at the end of a day).
    let breach = r
        .sla
        .breached_at
        .is_none()
        .then(|| rules.calendar.add_business_hours(m.deadline, SignedDuration::from_secs(1)));
    [warn, breach].into_iter().flatten().min()
}

#[cfg(test)]
pub(crate) mod tests {
    use jiff::civil::{DateTime, time};

    use super::*;
    use crate::request::{Actor, Kind, RequestId, Submission};

    pub(crate) fn rules() -> Rules {
        Rules {
            calendar: Calendar::new("America/Bogota", time(7, 30, 0, 0), time(17, 0, 0, 0), &[]).unwrap(),
            sla_default_hours: 10,
            sla_hours: BTreeMap::new(),
            needs_info_reminder_business_days: 3,
            needs_info_expiry_business_days: 10,
            min_days_disabled_before_delete: 30,
        }
    }

    fn at(local: &str) -> Timestamp {
        let dt: DateTime = local.parse().unwrap();
        dt.to_zoned(rules().calendar.time_zone().clone()).unwrap().timestamp()
    }

    fn request(submitted: &str) -> Request {
        let s = Submission {
            submitted_at: Some(submitted.parse().unwrap()),
            kind: Some(Kind::Create),
            ..Submission::default()
        };
        Request::new(RequestId { year: 2026, seq: 1 }, 2, "h".into(), s, at(submitted), at(submitted))
    }

    /// The instant is never later than the first cycle at which the watch acts: checked minute
    /// by minute against the measure the watch itself uses.
    #[test]
    fn the_sla_instants_come_no_later_than_the_warning_and_the_breach() {
        let rules = rules();
        for submitted in ["2026-03-02T08:00:00", "2026-03-06T16:30:00", "2026-03-20T12:00:00"] {
            let mut r = request(submitted);
            r.transition(State::Manual { reason: "x".into() }, Actor::Daemon, "x", at(submitted)).unwrap();
            let wake = next(&r, Some(&rules)).unwrap();
            let mut t = at(submitted);
            let first_warning = loop {
                let m = crate::sla::measure(&r, &rules.calendar, 10, t);
                if m.percent() >= SLA_WARN_PERCENT {
                    break t;
                }
                t += SignedDuration::from_mins(1);
            };
            assert!(wake <= first_warning, "{submitted}: {wake} after {first_warning}");
            assert!(first_warning - SignedDuration::from_mins(1) < wake, "{submitted}: {wake} far too early");
            r.sla.warned_at = Some(first_warning);
            let wake = next(&r, Some(&rules)).unwrap();
            let broken = loop {
                if crate::sla::measure(&r, &rules.calendar, 10, t).broken() {
                    break t;
                }
                t += SignedDuration::from_mins(1);
            };
            assert!(
                wake <= broken && broken - SignedDuration::from_mins(1) < wake,
                "{submitted}: {wake} vs {broken}"
            );
        }
    }

    #[test]
    fn a_scheduled_step_wakes_at_its_date_and_a_closed_request_never() {
        let rules = rules();
        let mut r = request("2026-03-02T08:00:00");
        let due = at("2026-04-01T07:30:00");
        let plan = crate::directory::ops::Plan::default();
        r.transition(State::Scheduled { due, plan }, Actor::Daemon, "x", at("2026-03-02T08:01:00")).unwrap();
        assert_eq!(next(&r, Some(&rules)), Some(due));
        assert_eq!(next(&r, None), Some(Timestamp::MIN), "without rules, always due");
        r.transition(State::Cancelled { reason: "x".into() }, Actor::Daemon, "x", at("2026-03-02T09:00:00"))
            .unwrap();
        assert_eq!(next(&r, Some(&rules)), None);
    }
}
