//! A response export (CSV): for backfills, demos and tests. Google writes two: the form's own
//! download (timestamps like `2026/11/23 8:02:11 a. m. GMT-5`) and the spreadsheet's (`File →
//! Download → CSV`, dates as the sheet's locale shows them, `23/11/2026` or `11/23/2026`). Both
//! are read here into the forms the intake reads: local timestamps and dates day first.

use std::fs::File;
use std::path::{Path, PathBuf};

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};

use super::{RawRow, SourceError};
use crate::intake::fold;

/// What reading dates needs: the timestamp column's possible headers, and the entity's zone.
#[derive(Debug, Clone)]
pub struct CsvDates {
    /// Folded headers of the timestamp column.
    pub timestamp_headers: Vec<String>,
    pub time_zone: TimeZone,
}

/// An open export: its header, then its rows in order, one at a time.
pub struct CsvSource {
    path: PathBuf,
    header: Vec<String>,
    records: csv::StringRecordsIntoIter<File>,
    next_row: u32,
    dates: CsvDates,
    timestamp_column: Option<usize>,
    /// The export writes month first (`11/23/2026`): a spreadsheet in an English (US) locale.
    month_first: bool,
}

impl CsvSource {
    pub fn open(path: &Path, dates: &CsvDates) -> Result<CsvSource, SourceError> {
        let io = |source| SourceError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
        let mut records = reader.into_records();
        let header: Vec<String> = match records.next() {
            Some(Ok(h)) => h.iter().map(|c| c.trim_start_matches('\u{FEFF}').to_string()).collect(),
            Some(Err(e)) => {
                return Err(SourceError::Format { path: path.to_path_buf(), row: 1, message: e.to_string() });
            }
            None => {
                return Err(SourceError::NoHeader { path: path.to_path_buf() });
            }
        };
        let timestamp_column = header.iter().position(|h| dates.timestamp_headers.contains(&fold(h)));
        let month_first = match timestamp_column {
            Some(column) => month_first(path, column)?,
            None => false,
        };
        Ok(CsvSource {
            path: path.to_path_buf(),
            header,
            records,
            next_row: 2,
            dates: dates.clone(),
            timestamp_column,
            month_first,
        })
    }

    /// A row's cells as the intake reads them: the timestamp as a local `yyyy-mm-dd HH:MM:SS`,
    /// and, in a month-first export, every date day first.
    fn normalize(&self, mut cells: Vec<String>) -> Vec<String> {
        for (i, cell) in cells.iter_mut().enumerate() {
            if Some(i) == self.timestamp_column {
                if let Some(local) = self.timestamp(cell) {
                    *cell = local;
                }
            } else if self.month_first
                && let Some((month, day, year)) = slashed(cell)
            {
                *cell = format!("{day}/{month}/{year}");
            }
        }
        cells
    }

    fn timestamp(&self, cell: &str) -> Option<String> {
        let local = match forms_timestamp(cell) {
            Some((civil, offset)) => {
                let instant = offset.to_timestamp(civil).ok()?;
                instant.to_zoned(self.dates.time_zone.clone()).datetime()
            }
            None if self.month_first => {
                let (date, time) = cell.trim().split_once(' ')?;
                let (month, day, year) = slashed(date)?;
                let date = Date::new(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?).ok()?;
                date.to_datetime(clock(time)?)
            }
            None => return None,
        };
        Some(local.strftime("%Y-%m-%d %H:%M:%S").to_string())
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The number of the row the next call to `next` returns.
    pub fn next_row(&self) -> u32 {
        self.next_row
    }

    /// The byte offset in the file where the row the next call to `next` returns begins.
    pub fn offset(&self) -> u64 {
        self.records.reader().position().byte()
    }
}

impl Iterator for CsvSource {
    type Item = Result<RawRow, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        let row = self.next_row;
        self.next_row += 1;
        Some(match record {
            Ok(r) => Ok(RawRow { row, cells: self.normalize(r.iter().map(str::to_string).collect()) }),
            Err(e) => Err(SourceError::Format { path: self.path.clone(), row, message: e.to_string() }),
        })
    }
}

/// Whether the export's timestamps are month first: some second number above 12 and no first
/// one (a file of only ambiguous dates reads day first, the Spanish locales' order).
fn month_first(path: &Path, column: usize) -> Result<bool, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Io { path: path.to_path_buf(), source })?;
    let reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
    let (mut day_first, mut month_first) = (false, false);
    for record in reader.into_records().flatten() {
        let date = record.get(column).unwrap_or_default().split(' ').next().unwrap_or_default();
        if let Some((a, b, _)) = slashed(date) {
            let (a, b): (u32, u32) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
            day_first |= a > 12;
            month_first |= b > 12;
        }
    }
    Ok(month_first && !day_first)
}

/// `a/b/yyyy` with one or two digits in `a` and `b`.
fn slashed(s: &str) -> Option<(&str, &str, &str)> {
    let mut parts = s.trim().split('/');
    let (a, b, y) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit())
    };
    (parts.next().is_none() && digits(a, 1..=2) && digits(b, 1..=2) && digits(y, 4..=4)).then_some((a, b, y))
}

/// `H:MM:SS` or `H:MM`.
fn clock(s: &str) -> Option<Time> {
    let mut parts = s.trim().split(':');
    let h: i8 = parts.next()?.parse().ok()?;
    let m: i8 = parts.next()?.parse().ok()?;
    let sec: i8 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
    Time::new(h, m, sec, 0).ok()
}

/// The form's own download: `2026/11/23 8:02:11 a. m. GMT-5` (Spanish) or `… AM GMT-5`
/// (English), the spaces in «a. m.» sometimes non-breaking.
fn forms_timestamp(cell: &str) -> Option<(DateTime, Offset)> {
    let cell = cell.trim();
    let (date, rest) = cell.split_once(' ')?;
    let mut ymd = date.split('/');
    let (y, m, d) = (ymd.next()?, ymd.next()?, ymd.next()?);
    if y.len() != 4 || ymd.next().is_some() {
        return None;
    }
    let date = Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()?;
    let (time, rest) = rest.trim_start().split_once(|c: char| c.is_whitespace())?;
    let time = clock(time)?;
    let rest: String =
        rest.chars().filter(|c| !c.is_whitespace() && *c != '.').collect::<String>().to_lowercase();
    let (pm, zone) = match (rest.strip_prefix("am"), rest.strip_prefix("pm")) {
        (Some(zone), _) => (false, zone),
        (_, Some(zone)) => (true, zone),
        _ => return None,
    };
    let hour = time.hour() % 12 + if pm { 12 } else { 0 };
    let time = Time::new(hour, time.minute(), time.second(), 0).ok()?;
    let offset = zone.strip_prefix("gmt")?;
    let offset = if offset.is_empty() {
        Offset::UTC
    } else {
        let (sign, hm) = offset.split_at(1);
        let (h, m) = hm.split_once(':').unwrap_or((hm, "0"));
        let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
        Offset::from_seconds(if sign == "-" { -seconds } else { seconds }).ok()?
    };
    Some((date.to_datetime(time), offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_like_the_sheet_and_quoted_cells_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "\u{FEFF}Marca temporal,Nombres\n1/2/2026 8:00:00,\"Ana, \"\"la\"\" María\"\n2/2/2026 9:00:00,Luis\n").unwrap();
        let dates = CsvDates { timestamp_headers: vec![fold("Marca temporal")], time_zone: TimeZone::UTC };
        let mut src = CsvSource::open(&path, &dates).unwrap();
        assert_eq!(src.header(), ["Marca temporal", "Nombres"]);
        let first = src.next().unwrap().unwrap();
        assert_eq!(first.row, 2);
        assert_eq!(first.cells[1], "Ana, \"la\" María");
        assert_eq!(src.next().unwrap().unwrap().row, 3);
        assert!(src.next().is_none());
    }

    #[test]
    fn google_s_timestamps_read_as_local_times() {
        let bogota = TimeZone::get("America/Bogota").unwrap();
        let forms = |s: &str| {
            let (civil, offset) = forms_timestamp(s)?;
            Some(offset.to_timestamp(civil).ok()?.to_zoned(bogota.clone()).datetime().to_string())
        };
        assert_eq!(forms("2026/11/23 8:02:11 a. m. GMT-5").as_deref(), Some("2026-11-23T08:02:11"));
        assert_eq!(
            forms("2026/11/23 8:02:11\u{a0}p.\u{202f}m. GMT-5").as_deref(),
            Some("2026-11-23T20:02:11")
        );
        assert_eq!(forms("2026/11/23 12:00:00 AM GMT-5").as_deref(), Some("2026-11-23T00:00:00"));
        assert_eq!(forms("2026/11/23 12:30:00 PM GMT-5").as_deref(), Some("2026-11-23T12:30:00"));
        assert_eq!(forms("2026/11/23 1:00:00 PM GMT+1").as_deref(), Some("2026-11-23T07:00:00"));
        assert_eq!(forms("23/11/2026 8:02:11"), None);
        assert_eq!(slashed("11/23/2026"), Some(("11", "23", "2026")));
        assert_eq!(slashed("2026/11/23"), None);
    }
}
