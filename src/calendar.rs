//! Business-hours calendar for Colombia: which days are working days and how SLA time accrues.
//!
//! Everything here is pure: instants are always parameters, so deadlines are reproducible in
//! tests and the clock is read only by `app`.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use jiff::{
    SignedDuration, Timestamp,
    civil::{Date, Time, Weekday},
    tz::TimeZone,
};

/// A working week (Mon–Fri, fixed daily hours) in one time zone, minus Colombian public holidays
/// and any extra days off an administrator configures.
#[derive(Clone)]
pub struct Calendar {
    tz: TimeZone,
    start: Time,
    end: Time,
    extra: BTreeSet<Date>,
    /// Each year's days off and business hours, worked out the first time a day of that year
    /// is asked about: SLA arithmetic asks about every day it crosses, for every request, and
    /// the rules (Easter, moves to Monday) and the time zone's rules would otherwise be applied
    /// again each time. Shared by clones, which have the same configuration.
    years: Arc<[CachedYear]>,
}

/// Years that are cached; a date outside them (a typo, a far deadline) is worked out directly.
const FIRST_CACHED_YEAR: i16 = 1900;
const LAST_CACHED_YEAR: i16 = 2199;

/// A business day's opening and closing instants.
type Window = (Timestamp, Timestamp);

/// One year of a calendar, each part filled on first use.
#[derive(Default)]
struct CachedYear {
    days_off: OnceLock<DaysOff>,
    /// The business interval of each day of the year (index `day_of_year - 1`).
    windows: OnceLock<Box<[Option<Window>]>>,
}

// The cache is internal: a calendar prints as its configuration.
impl std::fmt::Debug for Calendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calendar")
            .field("tz", &self.tz)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("extra", &self.extra)
            .finish()
    }
}

/// One year's holidays (Colombian and configured), a bit per day of the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DaysOff([u64; 6]);

impl DaysOff {
    fn of_year(year: i16, extra: &BTreeSet<Date>) -> DaysOff {
        let mut days = DaysOff([0; 6]);
        for date in holiday_rules(year).into_iter().flatten() {
            days.insert(date);
        }
        if let (Ok(first), Ok(last)) = (Date::new(year, 1, 1), Date::new(year, 12, 31)) {
            for &date in extra.range(first..=last) {
                days.insert(date);
            }
        }
        days
    }

    /// Bit `day_of_year - 1`: 1..=366 fits the 384 bits.
    fn slot(date: Date) -> (usize, u64) {
        let index = day_index(date);
        (index / 64, 1 << (index % 64))
    }

    fn insert(&mut self, date: Date) {
        let (word, bit) = DaysOff::slot(date);
        self.0[word] |= bit;
    }

    fn contains(&self, date: Date) -> bool {
        let (word, bit) = DaysOff::slot(date);
        self.0[word] & bit != 0
    }
}

/// Configuration problems detected when building a [`Calendar`].
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown time zone `{name}`: use an IANA name such as `America/Bogota`")]
    UnknownTimeZone {
        name: String,
        #[source]
        source: jiff::Error,
    },
    #[error("the working day must start before it ends, but start is {start} and end is {end}")]
    EmptyWorkingDay { start: Time, end: Time },
}

impl Calendar {
    /// `start`/`end` are the working day's bounds, `extra_non_working` extra days off.
    pub fn new(
        time_zone: &str,
        start: Time,
        end: Time,
        extra_non_working: &[Date],
    ) -> Result<Calendar, CalendarError> {
        let tz = TimeZone::get(time_zone)
            .map_err(|source| CalendarError::UnknownTimeZone { name: time_zone.to_owned(), source })?;
        if start >= end {
            return Err(CalendarError::EmptyWorkingDay { start, end });
        }
        let years = (FIRST_CACHED_YEAR..=LAST_CACHED_YEAR).map(|_| CachedYear::default()).collect();
        Ok(Calendar { tz, start, end, extra: extra_non_working.iter().copied().collect(), years })
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn day_start(&self) -> Time {
        self.start
    }

    /// When the working day ends.
    pub fn day_end(&self) -> Time {
        self.end
    }

    /// Colombian public holiday or one of the configured extra days off.
    pub fn is_holiday(&self, date: Date) -> bool {
        match self.days_off_in(date.year()) {
            Some(days) => days.contains(date),
            None => self.extra.contains(&date) || is_colombian_holiday(date),
        }
    }

    /// The year's days off from the cache (computed on first use), or `None` outside the
    /// cached years.
    fn days_off_in(&self, year: i16) -> Option<&DaysOff> {
        let cached = self.cached_year(year)?;
        Some(cached.days_off.get_or_init(|| DaysOff::of_year(year, &self.extra)))
    }

    fn cached_year(&self, year: i16) -> Option<&CachedYear> {
        let index = usize::try_from(year.checked_sub(FIRST_CACHED_YEAR)?).ok()?;
        self.years.get(index)
    }

    /// Monday to Friday and not a holiday.
    pub fn is_business_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !self.is_holiday(date)
    }

    /// The business day `n` business days before `date` (weekends and holidays skipped).
    pub fn business_days_before(&self, date: Date, n: u32) -> Date {
        let mut day = date;
        let mut left = n;
        while left > 0 {
            match day.yesterday() {
                Ok(d) => day = d,
                Err(_) => return day,
            }
            if self.is_business_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// Adds business hours (may be fractional via SignedDuration) to an instant: time outside
    /// business hours does not count.
    ///
    /// Counting starts at the next opening when `from` is outside business hours, and a duration
    /// that exactly exhausts a day lands on that day's closing time rather than the next opening,
    /// so "due by 17:00" stays on the day the work could actually be finished. A zero or negative
    /// duration returns `from` unchanged. Saturates at [`Timestamp::MAX`] past the last
    /// representable date.
    pub fn add_business_hours(&self, from: Timestamp, duration: SignedDuration) -> Timestamp {
        if !duration.is_positive() {
            return from;
        }
        let mut remaining = duration;
        let mut day = self.tz.to_datetime(from).date();
        loop {
            if let Some((open, close)) = self.window(day) {
                let cursor = open.max(from);
                if cursor < close {
                    let available = close.duration_since(cursor);
                    if remaining <= available {
                        return cursor.checked_add(remaining).unwrap_or(Timestamp::MAX);
                    }
                    remaining -= available;
                }
            }
            day = match day.tomorrow() {
                Ok(next) => next,
                Err(_) => return Timestamp::MAX,
            };
        }
    }

    /// Business time between two instants (zero if `to <= from`).
    pub fn business_hours_between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        let mut total = SignedDuration::ZERO;
        if to <= from {
            return total;
        }
        let last = self.tz.to_datetime(to).date();
        let mut day = self.tz.to_datetime(from).date();
        while day <= last {
            if let Some((open, close)) = self.window(day) {
                let (lo, hi) = (open.max(from), close.min(to));
                if lo < hi {
                    total += hi.duration_since(lo);
                }
            }
            day = match day.tomorrow() {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        total
    }

    /// The instant at `day_start()` local time on `date`, or on the next business day if `date`
    /// is not one. Saturates at [`Timestamp::MAX`] past the last representable date.
    pub fn start_of_business_day_on_or_after(&self, date: Date) -> Timestamp {
        let mut day = date;
        loop {
            if let Some((open, _)) = self.window(day) {
                return open;
            }
            day = match day.tomorrow() {
                Ok(next) => next,
                Err(_) => return Timestamp::MAX,
            };
        }
    }

    /// The business interval of `date` as instants, or `None` if no work happens that day:
    /// from the year's cache, filled with [`Calendar::resolve_window`] on first use.
    fn window(&self, date: Date) -> Option<Window> {
        let Some(cached) = self.cached_year(date.year()) else { return self.resolve_window(date) };
        let windows = cached.windows.get_or_init(|| self.resolve_year(date.year()));
        windows.get(day_index(date)).copied().flatten()
    }

    /// Every day's business interval in `year`.
    fn resolve_year(&self, year: i16) -> Box<[Option<Window>]> {
        let Ok(first) = Date::new(year, 1, 1) else { return Box::default() };
        let days = first.series(jiff::Span::new().days(1)).take_while(|d| d.year() == year);
        days.map(|day| self.resolve_window(day)).collect()
    }

    /// The business interval of `date`, worked out.
    ///
    /// Bounds are resolved to instants per day (rather than adding a fixed 9.5 h) so that a zone
    /// with DST gets the real elapsed time; a DST oddity that leaves the interval empty simply
    /// makes the day non-working instead of producing negative time.
    fn resolve_window(&self, date: Date) -> Option<Window> {
        if !self.is_business_day(date) {
            return None;
        }
        let resolve = |time: Time| self.tz.to_ambiguous_timestamp(date.to_datetime(time)).compatible().ok();
        let (open, close) = (resolve(self.start)?, resolve(self.end)?);
        (open < close).then_some((open, close))
    }
}

/// Colombian public holidays of a year, sorted.
///
/// Empty for years outside the range a [`Date`] can represent.
pub fn colombian_holidays(year: i16) -> Vec<Date> {
    // A set because two rules can land on the same Monday (2025: San Pedro and Sagrado Corazón).
    let unique: BTreeSet<Date> = holiday_rules(year).into_iter().flatten().collect();
    unique.into_iter().collect()
}

/// Easter Sunday (Gregorian), by the anonymous Gregorian (Meeus/Jones/Butcher) algorithm.
///
/// Years outside the range a [`Date`] can represent are clamped to it.
pub fn easter_sunday(year: i16) -> Date {
    let year = year.clamp(Date::MIN.year(), Date::MAX.year());
    let y = i32::from(year);
    // Euclidean division keeps every intermediate in the ranges the algorithm assumes, even for
    // the proleptic negative years jiff allows.
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let n = h + l - 7 * m + 114;
    // n / 31 is 3 or 4 and n % 31 + 1 at most 31 given the ranges above, so both fit in i8 and
    // the date is valid; the fallback only keeps the function total.
    let month = i8::try_from(n.div_euclid(31)).unwrap_or(4);
    let day = i8::try_from(n.rem_euclid(31) + 1).unwrap_or(1);
    Date::new(year, month, day).unwrap_or(Date::MIN)
}

/// Fixed-date holidays, observed on the day itself.
const FIXED: [(i8, i8); 6] = [(1, 1), (5, 1), (7, 20), (8, 7), (12, 8), (12, 25)];

/// Holidays moved to the following Monday (Ley 51 de 1983, "Ley Emiliani").
const MOVED_TO_MONDAY: [(i8, i8); 7] = [(1, 6), (3, 19), (6, 29), (8, 15), (10, 12), (11, 1), (11, 11)];

/// Offsets from Easter Sunday: Jueves and Viernes Santo, then Ascensión, Corpus Christi and
/// Sagrado Corazón, whose offsets already make them Mondays.
const EASTER_OFFSETS: [i64; 5] = [-3, -2, 43, 64, 71];

const RULE_COUNT: usize = FIXED.len() + MOVED_TO_MONDAY.len() + EASTER_OFFSETS.len();

/// Every rule's date for `year`, unsorted and possibly repeated; `None` where a date is out of
/// range. A fixed array keeps `is_holiday` allocation-free, since SLA arithmetic asks per day.
fn holiday_rules(year: i16) -> [Option<Date>; RULE_COUNT] {
    let mut out = [None; RULE_COUNT];
    if Date::new(year, 1, 1).is_err() {
        return out;
    }
    let fixed = FIXED.iter().map(|&(month, day)| Date::new(year, month, day).ok());
    let moved = MOVED_TO_MONDAY.iter().map(|&(month, day)| {
        let date = Date::new(year, month, day).ok()?;
        let days_to_monday = (7 - i64::from(date.weekday().to_monday_zero_offset())) % 7;
        add_days(date, days_to_monday)
    });
    let easter = easter_sunday(year);
    let easter_based = EASTER_OFFSETS.iter().map(|&offset| add_days(easter, offset));
    for (slot, date) in out.iter_mut().zip(fixed.chain(moved).chain(easter_based)) {
        *slot = date;
    }
    out
}

fn is_colombian_holiday(date: Date) -> bool {
    holiday_rules(date.year()).contains(&Some(date))
}

/// `day_of_year - 1`, an index into a year's cache.
fn day_index(date: Date) -> usize {
    usize::try_from(date.day_of_year() - 1).unwrap_or(0)
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    let duration = SignedDuration::try_from_hours(days.checked_mul(24)?)?;
    date.checked_add(duration).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{DateTime, date, time};

    fn bogota() -> Calendar {
        Calendar::new("America/Bogota", time(7, 30, 0, 0), time(17, 0, 0, 0), &[]).unwrap()
    }

    /// A local Bogotá wall-clock instant.
    fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        local_in(&bogota(), y, mo, d, h, mi)
    }

    fn local_in(cal: &Calendar, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> Timestamp {
        cal.time_zone().to_timestamp(date(y, mo, d).at(h, mi, 0, 0)).unwrap()
    }

    fn local(cal: &Calendar, ts: Timestamp) -> DateTime {
        cal.time_zone().to_datetime(ts)
    }

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_hours(h)
    }

    fn dates(year: i16, md: &[(i8, i8)]) -> Vec<Date> {
        md.iter().map(|&(m, d)| date(year, m, d)).collect()
    }

    // ---- Easter and holidays -------------------------------------------------------------

    #[test]
    fn easter_matches_published_dates() {
        // Published Western Easter dates, including the earliest (22 Mar) and latest (25 Apr)
        // possible ones.
        let known = [
            (1818, 3, 22),
            (1961, 4, 2),
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2038, 4, 25),
            (2285, 3, 22),
        ];
        for (y, m, d) in known {
            assert_eq!(easter_sunday(y), date(y, m, d), "Easter {y}");
        }
    }

    #[test]
    fn easter_is_always_a_sunday_in_its_window() {
        for y in [-9999, -500, 0, 1, 1583, 1900, 2100, 4000, 9999] {
            let e = easter_sunday(y);
            assert_eq!(e.weekday(), Weekday::Sunday, "{y}");
            assert!(e >= date(y, 3, 22) && e <= date(y, 4, 25), "{y}: {e}");
        }
    }

    #[test]
    fn easter_clamps_out_of_range_years() {
        assert_eq!(easter_sunday(i16::MAX).year(), 9999);
        assert_eq!(easter_sunday(i16::MIN).year(), -9999);
    }

    #[test]
    fn holidays_2026() {
        let expected = dates(
            2026,
            &[
                (1, 1),
                (1, 12),
                (3, 23),
                (4, 2),
                (4, 3),
                (5, 1),
                (5, 18),
                (6, 8),
                (6, 15),
                (6, 29),
                (7, 20),
                (8, 7),
                (8, 17),
                (10, 12),
                (11, 2),
                (11, 16),
                (12, 8),
                (12, 25),
            ],
        );
        assert_eq!(expected.len(), 18);
        assert_eq!(colombian_holidays(2026), expected);
    }

    #[test]
    fn holidays_2025_merge_coinciding_rules() {
        // Hand-derived: 1 Jan 2025 is a Wednesday, Easter is 20 Apr.
        // 6 Jan is already Monday; 19 Mar (Wed) → 24 Mar; E-3/E-2 = 17/18 Apr;
        // E+43 = 2 Jun, E+64 = 23 Jun, E+71 = 30 Jun; 29 Jun (Sun) → 30 Jun, the same day;
        // 15 Aug (Fri) → 18 Aug; 12 Oct (Sun) → 13 Oct; 1 Nov (Sat) → 3 Nov; 11 Nov (Tue) → 17 Nov.
        let expected = dates(
            2025,
            &[
                (1, 1),
                (1, 6),
                (3, 24),
                (4, 17),
                (4, 18),
                (5, 1),
                (6, 2),
                (6, 23),
                (6, 30),
                (7, 20),
                (8, 7),
                (8, 18),
                (10, 13),
                (11, 3),
                (11, 17),
                (12, 8),
                (12, 25),
            ],
        );
        assert_eq!(expected.len(), 17);
        assert_eq!(colombian_holidays(2025), expected);
    }

    #[test]
    fn holidays_2024_keep_a_holiday_that_is_already_monday() {
        // Hand-derived: 1 Jan 2024 is a Monday (leap year), Easter is 31 Mar.
        // 6 Jan (Sat) → 8 Jan; 19 Mar (Tue) → 25 Mar; E-3/E-2 = 28/29 Mar; E+43 = 13 May,
        // E+64 = 3 Jun, E+71 = 10 Jun; 29 Jun (Sat) → 1 Jul; 15 Aug (Thu) → 19 Aug;
        // 12 Oct (Sat) → 14 Oct; 1 Nov (Fri) → 4 Nov; 11 Nov is itself a Monday and stays.
        let expected = dates(
            2024,
            &[
                (1, 1),
                (1, 8),
                (3, 25),
                (3, 28),
                (3, 29),
                (5, 1),
                (5, 13),
                (6, 3),
                (6, 10),
                (7, 1),
                (7, 20),
                (8, 7),
                (8, 19),
                (10, 14),
                (11, 4),
                (11, 11),
                (12, 8),
                (12, 25),
            ],
        );
        assert_eq!(colombian_holidays(2024), expected);
    }

    #[test]
    fn moved_and_easter_mondays_are_mondays() {
        for year in 1984..=2100 {
            let holidays = colombian_holidays(year);
            assert!(holidays.windows(2).all(|w| w[0] < w[1]), "{year} sorted");
            assert!((17..=18).contains(&holidays.len()), "{year}: {holidays:?}");
            let e = easter_sunday(year);
            for offset in [43, 64, 71] {
                let d = add_days(e, offset).unwrap();
                assert_eq!(d.weekday(), Weekday::Monday, "{year} E+{offset}");
            }
        }
    }

    #[test]
    fn holidays_out_of_range_year_is_empty() {
        assert!(colombian_holidays(10_000).is_empty());
        assert!(colombian_holidays(-10_000).is_empty());
    }

    #[test]
    fn cached_days_off_agree_with_the_rules() {
        let extra =
            [date(1995, 12, 31), date(2026, 3, 4), date(2100, 2, 28), date(1850, 5, 5), date(2300, 1, 2)];
        let plain = bogota();
        let with_extra =
            Calendar::new("America/Bogota", time(7, 30, 0, 0), time(17, 0, 0, 0), &extra).unwrap();
        // Years outside the cache go to the rules directly: they must agree too.
        let years = (1990..=2100).chain([-9999, 1850, 1899, 1900, 2199, 2200, 2300, 9999]);
        for year in years {
            let rules = colombian_holidays(year);
            let mut cached = Vec::new();
            let mut day = date(year, 1, 1);
            while day.year() == year {
                if plain.is_holiday(day) {
                    cached.push(day);
                }
                assert_eq!(with_extra.is_holiday(day), rules.contains(&day) || extra.contains(&day), "{day}");
                day = match day.tomorrow() {
                    Ok(next) => next,
                    Err(_) => break,
                };
            }
            assert_eq!(cached, rules, "{year}");
            // Asked again, now from the filled cache, and through a clone sharing it.
            let clone = plain.clone();
            assert!(rules.iter().all(|&d| plain.is_holiday(d) && clone.is_holiday(d)), "{year}");
        }
        assert!(plain.days_off_in(2026).is_some() && plain.days_off_in(2200).is_none());
        assert!(plain.days_off_in(FIRST_CACHED_YEAR - 1).is_none() && plain.days_off_in(-9999).is_none());
    }

    #[test]
    fn cached_business_hours_agree_with_the_time_zone() {
        // Bogotá, and zones with DST; years inside the cache, at its edges and outside it.
        let extra = [date(2026, 3, 4)];
        for zone in ["America/Bogota", "America/New_York", "Europe/Madrid"] {
            let cal = Calendar::new(zone, time(7, 30, 0, 0), time(17, 0, 0, 0), &extra).unwrap();
            for year in [1883, 1900, 1990, 2024, 2025, 2026, 2027, 2100, 2199, 2200] {
                let mut day = date(year, 1, 1);
                while day.year() == year {
                    assert_eq!(cal.window(day), cal.resolve_window(day), "{zone} {day}");
                    day = day.tomorrow().unwrap();
                }
            }
            assert!(cal.cached_year(2026).unwrap().windows.get().is_some_and(|w| w.len() == 365));
            assert!(cal.cached_year(2024).unwrap().windows.get().is_some_and(|w| w.len() == 366));
        }
    }

    #[test]
    fn clones_share_one_cache_and_the_calendar_crosses_threads() {
        fn shareable<T: Clone + Send + Sync>() {}
        shareable::<Calendar>();
        let cal = bogota();
        let clone = cal.clone();
        assert!(Arc::ptr_eq(&cal.years, &clone.years));
        let from_thread = std::thread::spawn(move || clone.is_holiday(date(2026, 3, 23))).join().unwrap();
        assert!(from_thread);
        // Filled by the other thread, seen here.
        assert!(cal.cached_year(2026).unwrap().days_off.get().is_some());
        // The cache does not show in the calendar's Debug output.
        assert!(!format!("{cal:?}").contains("days_off"));
    }

    #[test]
    fn is_holiday_and_is_business_day() {
        let cal = Calendar::new("America/Bogota", time(7, 30, 0, 0), time(17, 0, 0, 0), &[date(2026, 3, 4)])
            .unwrap();
        assert!(cal.is_holiday(date(2026, 3, 23))); // San José, moved
        assert!(!cal.is_holiday(date(2026, 3, 19))); // its original date is a working day
        assert!(cal.is_holiday(date(2026, 3, 4))); // configured extra
        assert!(!cal.is_holiday(date(2026, 3, 7))); // a Saturday is not a holiday...
        assert!(!cal.is_business_day(date(2026, 3, 7))); // ...but not a business day either
        assert!(!cal.is_business_day(date(2026, 3, 8))); // Sunday
        assert!(!cal.is_business_day(date(2026, 4, 2))); // Jueves Santo
        assert!(!cal.is_business_day(date(2026, 4, 3))); // Viernes Santo
        assert!(!cal.is_business_day(date(2026, 3, 4))); // extra day off
        assert!(cal.is_business_day(date(2026, 3, 5)));
        assert!(cal.is_business_day(date(2026, 3, 20)));
    }

    // ---- Construction ----------------------------------------------------------------------

    #[test]
    fn new_exposes_configuration() {
        let cal = bogota();
        assert_eq!(cal.time_zone().iana_name(), Some("America/Bogota"));
        assert_eq!(cal.day_start(), time(7, 30, 0, 0));
    }

    #[test]
    fn new_rejects_unknown_time_zone() {
        let err = Calendar::new("Mars/Olympus_Mons", time(7, 30, 0, 0), time(17, 0, 0, 0), &[]).unwrap_err();
        assert!(
            matches!(err, CalendarError::UnknownTimeZone { ref name, .. } if name == "Mars/Olympus_Mons")
        );
        assert!(err.to_string().contains("Mars/Olympus_Mons"));
    }

    #[test]
    fn new_rejects_empty_or_inverted_day() {
        for (start, end) in [(time(17, 0, 0, 0), time(7, 30, 0, 0)), (time(8, 0, 0, 0), time(8, 0, 0, 0))] {
            let err = Calendar::new("America/Bogota", start, end, &[]).unwrap_err();
            assert!(matches!(err, CalendarError::EmptyWorkingDay { .. }), "{err}");
        }
    }

    // ---- add_business_hours -----------------------------------------------------------------

    #[test]
    fn add_over_weekend_and_moved_holiday() {
        // Fri 15:00–17:00 = 2 h; Mon 23 Mar is San José; Tue 07:30 + 8 h = 15:30.
        let cal = bogota();
        let due = cal.add_business_hours(at(2026, 3, 20, 15, 0), hours(10));
        assert_eq!(due, at(2026, 3, 24, 15, 30));
        // Bogotá is UTC-5 all year, so the instant itself is fixed.
        assert_eq!(due, "2026-03-24T20:30:00Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn add_from_monday_opening_spills_into_tuesday() {
        // Monday gives 9.5 h; the last 0.5 h is Tuesday 07:30–08:00.
        let due = bogota().add_business_hours(at(2026, 3, 2, 7, 30), hours(10));
        assert_eq!(due, at(2026, 3, 3, 8, 0));
    }

    #[test]
    fn add_inside_business_hours_same_day() {
        let due = bogota().add_business_hours(at(2026, 3, 3, 9, 15), hours(3));
        assert_eq!(due, at(2026, 3, 3, 12, 15));
    }

    #[test]
    fn add_from_saturday_counts_from_monday_opening() {
        let due = bogota().add_business_hours(at(2026, 3, 7, 10, 0), hours(2));
        assert_eq!(due, at(2026, 3, 9, 9, 30));
    }

    #[test]
    fn add_from_sunday_before_holiday_monday_counts_from_tuesday() {
        let due = bogota().add_business_hours(at(2026, 3, 22, 12, 0), hours(1));
        assert_eq!(due, at(2026, 3, 24, 8, 30));
    }

    #[test]
    fn add_before_opening_counts_from_opening() {
        let due = bogota().add_business_hours(at(2026, 3, 3, 6, 0), hours(1));
        assert_eq!(due, at(2026, 3, 3, 8, 30));
    }

    #[test]
    fn add_after_closing_counts_from_next_opening() {
        let due = bogota().add_business_hours(at(2026, 3, 3, 18, 0), hours(1));
        assert_eq!(due, at(2026, 3, 4, 8, 30));
        // Exactly at closing is outside too.
        let due = bogota().add_business_hours(at(2026, 3, 3, 17, 0), hours(1));
        assert_eq!(due, at(2026, 3, 4, 8, 30));
    }

    #[test]
    fn add_exactly_to_closing_stays_on_that_day() {
        let cal = bogota();
        let full_day = SignedDuration::from_mins(9 * 60 + 30);
        assert_eq!(cal.add_business_hours(at(2026, 3, 3, 7, 30), full_day), at(2026, 3, 3, 17, 0));
        assert_eq!(cal.add_business_hours(at(2026, 3, 3, 15, 0), hours(2)), at(2026, 3, 3, 17, 0));
        // Friday closing does not jump to Monday.
        assert_eq!(cal.add_business_hours(at(2026, 3, 6, 16, 0), hours(1)), at(2026, 3, 6, 17, 0));
        // One minute more is the next morning.
        assert_eq!(
            cal.add_business_hours(at(2026, 3, 3, 7, 30), full_day + SignedDuration::from_mins(1)),
            at(2026, 3, 4, 7, 31)
        );
    }

    #[test]
    fn add_fractional_hours() {
        let cal = bogota();
        assert_eq!(
            cal.add_business_hours(at(2026, 3, 3, 7, 30), SignedDuration::from_mins(90)),
            at(2026, 3, 3, 9, 0)
        );
        assert_eq!(
            cal.add_business_hours(at(2026, 3, 3, 16, 45), SignedDuration::from_secs_f64(0.5 * 3600.0)),
            at(2026, 3, 4, 7, 45)
        );
    }

    #[test]
    fn add_across_semana_santa() {
        // Wed 1 Apr 16:00–17:00 = 1 h; Thu 2 and Fri 3 Apr are Jueves/Viernes Santo; then the
        // weekend; Mon 6 Apr 07:30 + 1 h.
        let due = bogota().add_business_hours(at(2026, 4, 1, 16, 0), hours(2));
        assert_eq!(due, at(2026, 4, 6, 8, 30));
    }

    #[test]
    fn add_across_inmaculada_concepcion() {
        // Mon 7 Dec 16:00–17:00 = 1 h; Tue 8 Dec is a holiday; Wed 9 Dec 07:30 + 2 h.
        let due = bogota().add_business_hours(at(2026, 12, 7, 16, 0), hours(3));
        assert_eq!(due, at(2026, 12, 9, 9, 30));
    }

    #[test]
    fn add_across_christmas() {
        // Thu 24 Dec 16:00–17:00 = 1 h; Fri 25 Dec holiday; weekend; Mon 28 Dec 07:30 + 9 h.
        let due = bogota().add_business_hours(at(2026, 12, 24, 16, 0), hours(10));
        assert_eq!(due, at(2026, 12, 28, 16, 30));
    }

    #[test]
    fn add_across_new_year() {
        // Thu 31 Dec 16:00–17:00 = 1 h; Fri 1 Jan 2027 holiday; weekend; Mon 4 Jan is a working
        // day (Reyes, 6 Jan 2027 a Wednesday, moves to 11 Jan).
        let due = bogota().add_business_hours(at(2026, 12, 31, 16, 0), hours(2));
        assert_eq!(due, at(2027, 1, 4, 8, 30));
        assert!(bogota().is_holiday(date(2027, 1, 11)));
    }

    #[test]
    fn add_a_whole_week() {
        let cal = bogota();
        let week = SignedDuration::from_mins(5 * (9 * 60 + 30));
        assert_eq!(cal.add_business_hours(at(2026, 3, 2, 7, 30), week), at(2026, 3, 6, 17, 0));
        assert_eq!(
            cal.add_business_hours(at(2026, 3, 2, 7, 30), week + SignedDuration::from_mins(30)),
            at(2026, 3, 9, 8, 0)
        );
    }

    #[test]
    fn add_skips_extra_non_working_days() {
        let cal = Calendar::new("America/Bogota", time(7, 30, 0, 0), time(17, 0, 0, 0), &[date(2026, 3, 4)])
            .unwrap();
        let due = cal.add_business_hours(at(2026, 3, 3, 16, 0), hours(2));
        assert_eq!(due, at(2026, 3, 5, 8, 30));
    }

    #[test]
    fn add_with_custom_hours() {
        let cal = Calendar::new("America/Bogota", time(8, 0, 0, 0), time(12, 0, 0, 0), &[]).unwrap();
        // Tue 10:00–12:00 = 2 h, Wed 08:00–12:00 = 4 h, Thu 08:00 + 1 h.
        let due = cal.add_business_hours(local_in(&cal, 2026, 3, 3, 10, 0), hours(7));
        assert_eq!(due, local_in(&cal, 2026, 3, 5, 9, 0));
    }

    #[test]
    fn add_non_positive_returns_start() {
        let cal = bogota();
        let sat = at(2026, 3, 7, 10, 0);
        assert_eq!(cal.add_business_hours(sat, SignedDuration::ZERO), sat);
        assert_eq!(cal.add_business_hours(sat, hours(-3)), sat);
    }

    #[test]
    fn add_saturates_at_end_of_time() {
        let cal = bogota();
        assert_eq!(cal.add_business_hours(at(9999, 12, 30, 12, 0), hours(100)), Timestamp::MAX);
    }

    #[test]
    fn add_accounts_for_dst_in_other_zones() {
        // US DST began Sun 8 Mar 2026; business hours stay 07:30–17:00 local on both sides.
        let cal = Calendar::new("America/New_York", time(7, 30, 0, 0), time(17, 0, 0, 0), &[]).unwrap();
        let from = local_in(&cal, 2026, 3, 6, 16, 0);
        let due = cal.add_business_hours(from, hours(2));
        assert_eq!(local(&cal, due), date(2026, 3, 9).at(8, 30, 0, 0));
        assert_eq!(cal.business_hours_between(from, due), hours(2));
    }

    // ---- business_hours_between --------------------------------------------------------------

    #[test]
    fn between_known_spans() {
        let cal = bogota();
        assert_eq!(cal.business_hours_between(at(2026, 3, 20, 15, 0), at(2026, 3, 24, 15, 30)), hours(10));
        assert_eq!(
            cal.business_hours_between(at(2026, 3, 3, 6, 0), at(2026, 3, 3, 20, 0)),
            SignedDuration::from_mins(9 * 60 + 30)
        );
        // Whole Semana Santa week: Mon–Wed only.
        assert_eq!(
            cal.business_hours_between(at(2026, 3, 30, 0, 0), at(2026, 4, 6, 0, 0)),
            SignedDuration::from_mins(3 * (9 * 60 + 30))
        );
    }

    #[test]
    fn between_is_zero_when_empty_or_reversed() {
        let cal = bogota();
        let a = at(2026, 3, 3, 9, 0);
        assert_eq!(cal.business_hours_between(a, a), SignedDuration::ZERO);
        assert_eq!(cal.business_hours_between(a, at(2026, 3, 3, 8, 0)), SignedDuration::ZERO);
        // Saturday to Sunday, and a holiday Monday.
        assert_eq!(
            cal.business_hours_between(at(2026, 3, 7, 8, 0), at(2026, 3, 8, 16, 0)),
            SignedDuration::ZERO
        );
        assert_eq!(
            cal.business_hours_between(at(2026, 3, 23, 8, 0), at(2026, 3, 23, 16, 0)),
            SignedDuration::ZERO
        );
    }

    #[test]
    fn between_round_trips_with_add() {
        let cal = bogota();
        let durations = [
            SignedDuration::from_secs(1),
            SignedDuration::from_mins(15),
            hours(1),
            SignedDuration::from_mins(9 * 60 + 30),
            hours(10),
            hours(24),
            hours(72),
            hours(200),
        ];
        // Starts every 37 minutes over three weeks spanning Semana Santa 2026, so they land
        // before opening, inside, at and after closing, on weekends and on holidays.
        let mut from = at(2026, 3, 28, 0, 0);
        let stop = at(2026, 4, 18, 0, 0);
        while from < stop {
            for &d in &durations {
                let due = cal.add_business_hours(from, d);
                assert!(due > from, "{from} + {d}");
                assert_eq!(cal.business_hours_between(from, due), d, "{from} + {d}");
                // The deadline is the earliest such instant: one second less is not enough.
                let short = due - SignedDuration::from_secs(1);
                assert!(cal.business_hours_between(from, short) < d, "{from} + {d}");
            }
            from += SignedDuration::from_mins(37);
        }
    }

    #[test]
    fn add_of_between_reaches_a_business_instant() {
        let cal = bogota();
        let from = at(2026, 3, 20, 15, 0);
        // `to` inside business hours is reached exactly.
        let to = at(2026, 3, 25, 11, 20);
        assert_eq!(cal.add_business_hours(from, cal.business_hours_between(from, to)), to);
        // `to` on a weekend maps back to the preceding closing time.
        let to = at(2026, 3, 28, 11, 0);
        assert_eq!(
            cal.add_business_hours(from, cal.business_hours_between(from, to)),
            at(2026, 3, 27, 17, 0)
        );
    }

    // ---- start_of_business_day_on_or_after -----------------------------------------------------

    #[test]
    fn start_of_business_day() {
        let cal = bogota();
        assert_eq!(cal.start_of_business_day_on_or_after(date(2026, 3, 24)), at(2026, 3, 24, 7, 30));
        // Holiday Monday, and the Saturday before it.
        assert_eq!(cal.start_of_business_day_on_or_after(date(2026, 3, 23)), at(2026, 3, 24, 7, 30));
        assert_eq!(cal.start_of_business_day_on_or_after(date(2026, 3, 21)), at(2026, 3, 24, 7, 30));
        assert_eq!(cal.start_of_business_day_on_or_after(date(2026, 4, 2)), at(2026, 4, 6, 7, 30));
        assert_eq!(cal.start_of_business_day_on_or_after(date(2026, 12, 25)), at(2026, 12, 28, 7, 30));
        assert_eq!(
            cal.start_of_business_day_on_or_after(date(2026, 3, 24)),
            "2026-03-24T12:30:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn start_of_business_day_saturates() {
        assert_eq!(bogota().start_of_business_day_on_or_after(date(9999, 12, 31)), Timestamp::MAX);
    }
}
