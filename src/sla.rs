//! The service level of a request (pure): business time from the form's own timestamp (not
//! from when cuentas read the row, so a daemon that was down hides nothing), paused while the
//! request waits on someone else than IT, stopped when it is closed.

use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::request::{Request, StateName};

/// Where a request stands against its service level, as of one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// The target (`[sla]` hours for its kind).
    pub target: SignedDuration,
    /// Business time counted so far.
    pub consumed: SignedDuration,
    /// `target - consumed`; negative once broken.
    pub remaining: SignedDuration,
    /// When the target is reached if the clock runs on from now (pauses so far included).
    pub deadline: Timestamp,
    /// The clock is stopped now (waiting on the requester, on a date, on confirmations).
    pub paused: bool,
    /// Closed: the clock stopped for good.
    pub done: bool,
}

impl Measure {
    /// Consumed over target, in percent (rounded down).
    pub fn percent(&self) -> i64 {
        let target = self.target.as_secs().max(1);
        self.consumed.as_secs() * 100 / target
    }

    pub fn broken(&self) -> bool {
        self.consumed > self.target
    }
}

pub use crate::request::SlaRecord;

/// States in which the clock stops: the request waits on the requester (`NeedsInfo`), on the
/// date it asked for (`Scheduled`), or on the backups a deletion needs and its days disabled
/// (`AwaitingConfirmation`).
pub fn pauses(state: StateName) -> bool {
    matches!(state, StateName::NeedsInfo | StateName::Scheduled | StateName::AwaitingConfirmation)
}

/// When the clock starts: the form's timestamp (in the entity's time zone), or when cuentas
/// registered the row if the form gave none (or one later than that).
pub fn start(request: &Request, calendar: &Calendar) -> Timestamp {
    start_of(request.submission.submitted_at, request.received_at, calendar)
}

fn start_of(submitted_at: Option<DateTime>, received_at: Timestamp, calendar: &Calendar) -> Timestamp {
    let submitted =
        submitted_at.and_then(|dt| dt.to_zoned(calendar.time_zone().clone()).ok()).map(|z| z.timestamp());
    submitted.map_or(received_at, |t| t.min(received_at))
}

/// The request's service level as of `now`, from its history.
pub fn measure(request: &Request, calendar: &Calendar, target_hours: u32, now: Timestamp) -> Measure {
    Timeline::of(request).measure(calendar, target_hours, now)
}

/// What a request's service level is measured from: when the form was submitted and the row
/// read, and each change of its state. Kept by the store beside each record, so that a report
/// over a year reads these and not the records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    #[serde(rename = "r")]
    pub received_at: Timestamp,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<DateTime>,
    /// Each change of state, when and to which (a step within the same state left out).
    #[serde(rename = "c")]
    pub changes: Vec<(Timestamp, StateName)>,
}

impl Timeline {
    pub fn of(request: &Request) -> Timeline {
        Timeline {
            received_at: request.received_at,
            submitted_at: request.submission.submitted_at,
            changes: request.history.iter().filter(|h| h.from != Some(h.to)).map(|h| (h.at, h.to)).collect(),
        }
    }

    /// When the clock starts (see [`start`]).
    pub fn start(&self, calendar: &Calendar) -> Timestamp {
        start_of(self.submitted_at, self.received_at, calendar)
    }

    /// The service level as of `now`.
    pub fn measure(&self, calendar: &Calendar, target_hours: u32, now: Timestamp) -> Measure {
        let target = SignedDuration::from_hours(i64::from(target_hours));
        let start = self.start(calendar);
        let spans = &self.changes;
        let end = spans.iter().find(|(_, s)| s.is_closed()).map_or(now, |(at, _)| *at).max(start);
        let mut paused_time = SignedDuration::ZERO;
        for (i, (from, state)) in spans.iter().enumerate() {
            if !pauses(*state) || *from >= end {
                continue;
            }
            let until = spans.get(i + 1).map_or(end, |(at, _)| (*at).min(end));
            paused_time += calendar.business_hours_between((*from).max(start), until);
        }
        let consumed = calendar.business_hours_between(start, end) - paused_time;
        let current = spans.last().map(|(_, s)| *s);
        let done = current.is_some_and(StateName::is_closed);
        Measure {
            target,
            consumed,
            remaining: target - consumed,
            deadline: calendar.add_business_hours(start, target + paused_time),
            paused: current.is_some_and(pauses) && !done,
            done,
        }
    }
}

/// Business time, for a person: `3 h 25 min`, `-1 h 05 min` once past.
pub fn hours(d: SignedDuration) -> String {
    let sign = if d.is_negative() { "-" } else { "" };
    let minutes = d.as_secs().abs() / 60;
    format!("{sign}{} h {:02} min", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use jiff::civil::DateTime;

    use super::*;
    use crate::request::{Actor, RequestId, State, Submission};

    fn calendar() -> Calendar {
        Calendar::new("America/Bogota", jiff::civil::time(7, 30, 0, 0), jiff::civil::time(17, 0, 0, 0), &[])
            .unwrap()
    }

    /// Bogotá local time to an instant.
    fn at(local: &str) -> Timestamp {
        let dt: DateTime = local.parse().unwrap();
        dt.to_zoned(calendar().time_zone().clone()).unwrap().timestamp()
    }

    /// A request submitted at `submitted` (local) and registered at `read` (local).
    fn request(submitted: &str, read: &str) -> Request {
        let s = Submission { submitted_at: Some(submitted.parse().unwrap()), ..Submission::default() };
        Request::new(RequestId { year: 2026, seq: 1 }, 2, "h".into(), s, at(read), at(read))
    }

    /// Moves `r` to `state` at `local` (a close passes through `Notifying` at the same instant).
    fn go(r: &mut Request, state: State, local: &str) {
        if state.name() == StateName::Closed && r.state.name() == StateName::Executing {
            r.transition(State::Notifying, Actor::Daemon, "x", at(local)).unwrap();
        }
        r.transition(state, Actor::Daemon, "x", at(local)).unwrap();
    }

    fn executing() -> State {
        State::Executing { plan: Default::default(), attempts: 0, retry_at: None, released: false }
    }

    fn closed() -> State {
        State::Closed { outcome: "x".into() }
    }

    fn h(hours: i64, minutes: i64) -> SignedDuration {
        SignedDuration::from_mins(hours * 60 + minutes)
    }

    /// Each case computed by hand: business hours are Monday to Friday, 07:30–17:00 (9 h 30
    /// min a day), Colombian holidays off.
    #[test]
    fn business_time_counted_by_hand() {
        let cal = calendar();
        struct Case {
            what: &'static str,
            submitted: &'static str,
            read: &'static str,
            steps: Vec<(State, &'static str)>,
            now: &'static str,
            consumed: SignedDuration,
            deadline: &'static str,
        }
        let cases = vec![
            Case {
                what: "across a weekend: Friday 15:00 to Monday 09:00",
                submitted: "2026-11-27T15:00:00",
                read: "2026-11-27T15:00:00",
                steps: vec![(executing(), "2026-11-27T15:00:00"), (closed(), "2026-11-30T09:00:00")],
                now: "2026-12-01T12:00:00",
                // Friday 2 h + Monday 1 h 30 min.
                consumed: h(3, 30),
                // 10 h from Friday 15:00: 2 h Friday, 8 h Monday → Monday 15:30.
                deadline: "2026-11-30T15:30:00",
            },
            Case {
                what: "a Monday holiday: Friday 16:00, open until Tuesday 10:00 (Monday 7 December is not one; 17 August 2026 is)",
                submitted: "2026-08-14T16:00:00",
                read: "2026-08-14T16:00:00",
                steps: vec![(executing(), "2026-08-14T16:00:00")],
                now: "2026-08-18T10:00:00",
                // Friday 1 h, Monday 17 August holiday, Tuesday 2 h 30 min.
                consumed: h(3, 30),
                // 10 h: 1 h Friday, 9 h Tuesday → Tuesday 16:30.
                deadline: "2026-08-18T16:30:00",
            },
            Case {
                what: "Semana Santa: Wednesday 1 April 2026 12:00 to Monday 6 April 12:00",
                submitted: "2026-04-01T12:00:00",
                read: "2026-04-01T12:00:00",
                steps: vec![(executing(), "2026-04-01T12:00:00"), (closed(), "2026-04-06T12:00:00")],
                now: "2026-04-07T12:00:00",
                // Wednesday 5 h; Jueves and Viernes Santo off; Monday 4 h 30 min.
                consumed: h(9, 30),
                // 10 h: 5 h Wednesday, 5 h Monday → Monday 12:30.
                deadline: "2026-04-06T12:30:00",
            },
            Case {
                what: "registered before opening: 06:00, closed at 09:00",
                submitted: "2026-11-30T06:00:00",
                read: "2026-11-30T06:00:00",
                steps: vec![(executing(), "2026-11-30T06:00:00"), (closed(), "2026-11-30T09:00:00")],
                now: "2026-11-30T10:00:00",
                consumed: h(1, 30),
                // The clock starts at 07:30: 10 h → Tuesday 08:00.
                deadline: "2026-12-01T08:00:00",
            },
            Case {
                what: "registered after closing: 18:00, still open next day at 10:00",
                submitted: "2026-11-30T18:00:00",
                read: "2026-11-30T18:00:00",
                steps: vec![],
                now: "2026-12-01T10:00:00",
                consumed: h(2, 30),
                deadline: "2026-12-02T08:00:00",
            },
            Case {
                what: "a pause in NeedsInfo: Monday 08:00, asked at 09:00, fixed Tuesday 09:00, closed 10:00",
                submitted: "2026-11-30T08:00:00",
                read: "2026-11-30T08:00:00",
                steps: vec![
                    (
                        State::NeedsInfo { reason: "x".into(), since: at("2026-11-30T09:00:00") },
                        "2026-11-30T09:00:00",
                    ),
                    (State::Received, "2026-12-01T09:00:00"),
                    (executing(), "2026-12-01T09:00:00"),
                    (closed(), "2026-12-01T10:00:00"),
                ],
                now: "2026-12-02T10:00:00",
                // 1 h Monday before the question, 1 h Tuesday after the fix.
                consumed: h(2, 0),
                // 10 h + the 9 h 30 min paused from Monday 08:00: Monday 9 h, Tuesday 9 h 30 min,
                // Wednesday 1 h.
                deadline: "2026-12-02T08:30:00",
            },
            Case {
                what: "read hours late: submitted Monday 08:00, read at 14:00 by a daemon that was down",
                submitted: "2026-11-30T08:00:00",
                read: "2026-11-30T14:00:00",
                steps: vec![(executing(), "2026-11-30T14:00:00"), (closed(), "2026-11-30T15:00:00")],
                now: "2026-11-30T16:00:00",
                // From the form's 08:00, not from 14:00.
                consumed: h(7, 0),
                deadline: "2026-12-01T08:30:00",
            },
        ];
        for case in cases {
            let mut r = request(case.submitted, case.read);
            for (state, when) in case.steps {
                go(&mut r, state, when);
            }
            let m = measure(&r, &cal, 10, at(case.now));
            assert_eq!(m.consumed, case.consumed, "{}", case.what);
            assert_eq!(m.remaining, h(10, 0) - case.consumed, "{}", case.what);
            assert_eq!(m.deadline, at(case.deadline), "{}", case.what);
        }
    }

    #[test]
    fn the_clock_stops_while_waiting_and_for_good_when_closed() {
        let cal = calendar();
        let mut r = request("2026-11-30T08:00:00", "2026-11-30T08:00:00");
        go(
            &mut r,
            State::Scheduled { due: at("2026-12-10T07:30:00"), plan: Default::default() },
            "2026-11-30T09:00:00",
        );
        let waiting = measure(&r, &cal, 10, at("2026-12-09T12:00:00"));
        assert_eq!(waiting.consumed, h(1, 0));
        assert!(waiting.paused && !waiting.done);
        go(&mut r, executing(), "2026-12-10T07:30:00");
        go(&mut r, closed(), "2026-12-10T08:00:00");
        let done = measure(&r, &cal, 10, at("2027-01-10T12:00:00"));
        assert_eq!(done.consumed, h(1, 30));
        assert!(done.done && !done.paused && !done.broken());
        assert_eq!(done.percent(), 15);
        assert_eq!(hours(done.remaining), "8 h 30 min");
        assert_eq!(hours(-h(1, 5)), "-1 h 05 min");
    }
}
