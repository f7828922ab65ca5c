//! Where form responses come from: rows numbered as in the response sheet (1 is the header).
//! The engine reads the header, then the tail from the last row it saw, page by page, and on
//! its edit-check schedule just the rows of open requests.

pub mod a1;
pub mod csv;
pub mod provenance;
pub mod sheet;

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use self::csv::{CsvDates, CsvSource};
use self::sheet::{FormResponse, SheetError, SheetSettings, SheetSource};
use crate::config::{Config, SourceConfig};
use crate::intake::Field;

/// Rows read from a CSV export per page.
const CSV_PAGE_ROWS: usize = 1000;

/// A page of rows, in order.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<RawRow>,
    /// The row to ask for next; `None` when the end of the responses was reached.
    pub next: Option<u32>,
    /// The header changed since it was last asked for: ask again before reading these rows.
    pub header_changed: bool,
}

/// Where the rows come from.
pub enum Source {
    /// A response export, read again from the top when it changed (it is a local file).
    /// `rows_read`: a fingerprint of the file and the rows the last edit check read of it.
    Csv {
        path: PathBuf,
        reader: Option<Box<CsvSource>>,
        dates: CsvDates,
        read: Option<Box<CsvRead>>,
        rows_read: Option<u64>,
    },
    /// The response spreadsheet, through the Google Sheets API.
    Sheet(Box<SheetSource>),
}

/// A response export as it was when last read to its end: while the file keeps its size, its
/// header line and its last row, byte for byte, a poll reads nothing more of it (new responses
/// change the size; a change elsewhere is the edit check's, which reads the file whole).
pub struct CsvRead {
    len: u64,
    header: Vec<String>,
    /// The header line's bytes.
    head: Vec<u8>,
    /// Where the last row begins, and its bytes to the end of the file.
    tail_at: u64,
    tail: Vec<u8>,
    /// Its last row (the tail is read from the last row seen, included).
    last: Option<RawRow>,
}

/// A fingerprint of the file at `path` and of `rows`, the file read a piece at a time: a
/// large export read whole at every poll would leave its size in the allocator's hands.
fn fingerprint(path: &Path, rows: &[u32]) -> std::io::Result<u64> {
    use std::hash::{Hash, Hasher};
    use std::io::Read;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.write(&buffer[..n]);
    }
    rows.hash(&mut hasher);
    Ok(hasher.finish())
}

/// The bytes of `path` from `at`, `len` of them (fewer at its end).
fn file_bytes(path: &Path, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(at))?;
    let mut out = Vec::new();
    file.take(len).read_to_end(&mut out)?;
    Ok(out)
}

impl CsvRead {
    /// `path`'s size, header line and last row, when they can be read: what it is compared by.
    /// `end` is where the reading stopped: a file that grew since is not taken as read.
    fn of(
        path: &Path,
        header: Vec<String>,
        head_len: u64,
        tail_at: u64,
        end: u64,
        last: Option<RawRow>,
    ) -> Option<CsvRead> {
        let len = std::fs::metadata(path).ok()?.len();
        if len != end {
            return None;
        }
        let head = file_bytes(path, 0, head_len).ok()?;
        let tail = file_bytes(path, tail_at, len.checked_sub(tail_at)?).ok()?;
        Some(CsvRead { len, header, head, tail_at, tail, last })
    }

    /// Whether `path` still has the size, header line and last row this was read with.
    fn same_file(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.len() == self.len)
            && file_bytes(path, 0, self.head.len() as u64).is_ok_and(|b| b == self.head)
            && file_bytes(path, self.tail_at, self.len - self.tail_at).is_ok_and(|b| b == self.tail)
    }
}

/// The tab holding the authorizer matrix, when `[authorizers] sheet` names one: read with the
/// service account of `source`, the responses' spreadsheet.
pub fn matrix_sheet(config: &Config, source: &Source) -> Result<Option<SheetSource>, SourceError> {
    let (Some(tab), Source::Sheet(source)) = (&config.authorizers.sheet, source) else {
        return Ok(None);
    };
    let mut settings = source.settings().clone();
    if let Some(id) = &config.authorizers.spreadsheet_id {
        settings.spreadsheet_id = id.clone();
    }
    settings.sheet = Some(tab.clone());
    Ok(Some(SheetSource::new(settings)?))
}

/// The desk form's responses, when `[desk]` names them: a CSV export, or a tab read with the
/// service account of `source`.
pub fn desk_source(config: &Config, source: &Source) -> Result<Option<Source>, SourceError> {
    let desk = &config.desk;
    let headers = ["Marca temporal", "Timestamp"];
    match (&desk.path, &desk.sheet, source) {
        (Some(path), _, _) => {
            let dates = CsvDates {
                timestamp_headers: headers.into_iter().map(crate::intake::fold).collect(),
                time_zone: config.calendar.time_zone().clone(),
            };
            Ok(Some(Source::Csv { path: path.clone(), reader: None, dates, read: None, rows_read: None }))
        }
        (None, Some(tab), Source::Sheet(source)) => {
            let mut settings = source.settings().clone();
            if let Some(id) = &desk.spreadsheet_id {
                settings.spreadsheet_id = id.clone();
            }
            settings.sheet = Some(tab.clone());
            settings.form_id = desk.form_id.clone();
            settings.timestamp_header = headers[0].to_string();
            Ok(Some(Source::Sheet(Box::new(SheetSource::new(settings)?))))
        }
        _ => Ok(None),
    }
}

impl Source {
    /// The source the configuration names. Reaches nothing yet: the sheet is read at the
    /// first cycle.
    pub fn from_config(config: &Config) -> Result<Source, SourceError> {
        match &config.source {
            SourceConfig::Csv { path, .. } => {
                let configured = config.form.columns.get(Field::SubmittedAt.key());
                let headers: Vec<&str> = match configured {
                    Some(h) => vec![h.as_str()],
                    None => Field::SubmittedAt.headers().to_vec(),
                };
                let dates = CsvDates {
                    timestamp_headers: headers.into_iter().map(crate::intake::fold).collect(),
                    time_zone: config.calendar.time_zone().clone(),
                };
                Ok(Source::Csv { path: path.clone(), reader: None, dates, read: None, rows_read: None })
            }
            SourceConfig::GoogleSheet {
                spreadsheet_id,
                sheet,
                api_base_url,
                timeout_secs,
                edit_check_interval_secs,
                form_id,
                forms_api_base_url,
                ..
            } => {
                let key = config
                    .service_account_key()
                    .map_err(|e| SheetError::Key(e.to_string()))?
                    .ok_or_else(|| SheetError::Key("[source] service_account_key is not set".into()))?;
                let time_zone = config.calendar.time_zone().clone();
                let timestamp_header = config
                    .form
                    .columns
                    .get(Field::SubmittedAt.key())
                    .cloned()
                    .unwrap_or_else(|| Field::SubmittedAt.default_header().to_string());
                let settings = SheetSettings {
                    spreadsheet_id: spreadsheet_id.clone(),
                    sheet: sheet.clone(),
                    key,
                    api_base_url: api_base_url.clone(),
                    timeout: std::time::Duration::from_secs(*timeout_secs),
                    edit_check_interval: SignedDuration::from_secs(*edit_check_interval_secs as i64),
                    timestamp_header,
                    time_zone,
                    form_id: form_id.clone(),
                    forms_api_base_url: forms_api_base_url.clone(),
                };
                Ok(Source::Sheet(Box::new(SheetSource::new(settings)?)))
            }
        }
    }

    /// For logs and alerts: the file or the spreadsheet.
    pub fn describe(&self) -> String {
        match self {
            Source::Csv { path, .. } => path.display().to_string(),
            Source::Sheet(s) => s.describe(),
        }
    }

    /// How often the rows of open requests are read again; `None`: at every cycle.
    pub fn edit_check_interval(&self) -> Option<SignedDuration> {
        match self {
            Source::Csv { .. } => None,
            Source::Sheet(s) => Some(s.edit_check_interval()),
        }
    }

    /// The header row.
    pub fn header(&mut self, now: Timestamp) -> Result<Vec<String>, SourceError> {
        match self {
            Source::Csv { path, reader, dates, read, .. } => {
                if let Some(read) = read.as_ref().filter(|r| r.same_file(path)) {
                    return Ok(read.header.clone());
                }
                let csv = CsvSource::open(path, dates)?;
                let header = csv.header().to_vec();
                *reader = Some(Box::new(csv));
                Ok(header)
            }
            Source::Sheet(s) => Ok(s.header(now)?),
        }
    }

    /// Measures the source again (the sheet's size and time zone; its header if its width
    /// changed): on the edit-check schedule.
    pub fn refresh(&mut self, now: Timestamp) -> Result<(), SourceError> {
        match self {
            Source::Csv { .. } => Ok(()),
            Source::Sheet(s) => Ok(s.refresh(now)?),
        }
    }

    /// Rows from `from` (included) on, a page at a time.
    pub fn page(&mut self, from: u32, now: Timestamp) -> Result<Page, SourceError> {
        match self {
            Source::Csv { path, reader, dates, read, .. } => {
                if let Some(done) = read.as_ref().filter(|r| r.same_file(path))
                    && done.last.as_ref().is_none_or(|last| last.row <= from)
                {
                    let rows = done.last.iter().filter(|last| last.row == from).cloned().collect();
                    return Ok(Page { rows, next: None, header_changed: false });
                }
                let mut csv = match reader.take() {
                    Some(r) if r.next_row() <= from => r,
                    _ => Box::new(CsvSource::open(path, dates)?),
                };
                let head_len = if csv.next_row() == 2 { Some(csv.offset()) } else { None };
                let mut rows = Vec::new();
                let mut last = None;
                let mut tail_at = csv.offset();
                while rows.len() < CSV_PAGE_ROWS {
                    let at = csv.offset();
                    match csv.next() {
                        Some(row) => {
                            let row = row?;
                            tail_at = at;
                            if row.row >= from {
                                rows.push(row);
                            } else {
                                last = Some(row);
                            }
                        }
                        None => {
                            // Read to its end from its start: until it changes, nothing more.
                            *read = head_len.and_then(|head_len| {
                                let last = rows.last().cloned().or(last);
                                let end = csv.offset();
                                CsvRead::of(path, csv.header().to_vec(), head_len, tail_at, end, last)
                                    .map(Box::new)
                            });
                            return Ok(Page { rows, next: None, header_changed: false });
                        }
                    }
                }
                let next = csv.next_row();
                *reader = Some(csv);
                Ok(Page { rows, next: Some(next), header_changed: false })
            }
            Source::Sheet(s) => Ok(s.page(from, now)?),
        }
    }

    /// The form's own responses since `since`, when `[source] form_id` names the form (a CSV
    /// export has none to prove its rows with).
    pub fn form_responses(
        &mut self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Vec<FormResponse>>, SourceError> {
        match self {
            Source::Csv { .. } => Ok(None),
            Source::Sheet(s) => Ok(s.form_responses(since, now)?),
        }
    }

    /// The most rows [`Source::rows`] should be asked for in one cycle: a CSV export is read
    /// whole anyway, a spreadsheet is read within Google's quota.
    pub fn rows_per_cycle(&self) -> usize {
        match self {
            Source::Csv { .. } => usize::MAX,
            Source::Sheet(_) => sheet::EDIT_CHECK_ROWS,
        }
    }

    /// The next [`Source::rows`] reads its rows whatever it read last (ingestion stopped: the
    /// rows must be seen back in place).
    pub fn forget_rows_read(&mut self) {
        if let Source::Csv { rows_read, .. } = self {
            *rows_read = None;
        }
    }

    /// Just these rows (the edit check); a row past the end comes back with no cells. A
    /// sheet backs off this read's failures apart from the others', so the tail is still read.
    /// An export whose bytes are those the last check read, asked for the same rows, gives
    /// none: each was found as it is then, and what it said was acted on (parsing a large
    /// export at every poll was most of an idle daemon's work).
    pub fn rows(&mut self, wanted: &[u32], now: Timestamp) -> Result<Vec<RawRow>, SourceError> {
        match self {
            Source::Csv { path, dates, rows_read, .. } => {
                let fingerprint = fingerprint(path, wanted)
                    .map_err(|source| SourceError::Io { path: path.clone(), source })?;
                if *rows_read == Some(fingerprint) {
                    return Ok(Vec::new());
                }
                let set: std::collections::HashSet<u32> = wanted.iter().copied().collect();
                let mut out = Vec::with_capacity(set.len());
                for row in CsvSource::open(path, dates)? {
                    let row = row?;
                    if set.contains(&row.row) {
                        out.push(row);
                    }
                }
                let found: std::collections::HashSet<u32> = out.iter().map(|r| r.row).collect();
                out.extend(set.difference(&found).map(|&row| RawRow { row, cells: Vec::new() }));
                out.sort_by_key(|r| r.row);
                *rows_read = Some(fingerprint);
                Ok(out)
            }
            Source::Sheet(s) => Ok(s.rows(wanted, now)?),
        }
    }
}

/// One response row as the source holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// Row number in the sheet; the header is row 1, so responses start at 2.
    pub row: u32,
    pub cells: Vec<String>,
}

/// A stable fingerprint of a row's cells (trailing empty cells ignored, as Sheets omits them):
/// FNV-1a, 128 bits. It only tells an edited row from an unchanged one; nothing relies on it
/// being hard to forge (a forged edit is just an edit).
pub fn row_hash(cells: &[String]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    let end = cells.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
    let mut h = OFFSET;
    for cell in &cells[..end] {
        for b in (cell.len() as u64).to_le_bytes().iter().chain(cell.as_bytes()) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("{h:032x}")
}

/// A source that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}, row {row}: {message}")]
    Format { path: std::path::PathBuf, row: u32, message: String },
    #[error("{path} is empty: it has no header row")]
    NoHeader { path: std::path::PathBuf },
    #[error(transparent)]
    Sheet(#[from] SheetError),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poll of an export that did not change reads nothing more of it, and any change to
    /// its size, header or last row is read: a row added, the last one rewritten in place, a
    /// header renamed with the same length.
    #[test]
    fn an_unchanged_export_is_not_read_again_and_any_change_of_its_tail_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("respuestas.csv");
        let dates = CsvDates {
            timestamp_headers: vec![crate::intake::fold("Marca temporal")],
            time_zone: jiff::tz::TimeZone::UTC,
        };
        let mut source = Source::Csv { path: path.clone(), reader: None, dates, read: None, rows_read: None };
        let now = Timestamp::UNIX_EPOCH;
        let cells =
            |page: Page| page.rows.into_iter().map(|r| (r.row, r.cells.join("|"))).collect::<Vec<_>>();
        std::fs::write(&path, "Correo,Tipo\na@x.co,Alta\nb@x.co,Baja\n").unwrap();
        assert_eq!(source.header(now).unwrap(), ["Correo", "Tipo"]);
        assert_eq!(
            cells(source.page(2, now).unwrap()),
            [(2, "a@x.co|Alta".into()), (3, "b@x.co|Baja".into())]
        );
        let Source::Csv { read, .. } = &source else { unreachable!() };
        assert!(read.is_some(), "read to its end");
        assert_eq!(cells(source.page(3, now).unwrap()), [(3, "b@x.co|Baja".into())]);
        assert_eq!(cells(source.page(4, now).unwrap()), []);
        std::fs::write(&path, "Correo,Tipo\na@x.co,Alta\nb@x.co,Baja\nc@x.co,Alta\n").unwrap();
        assert_eq!(
            cells(source.page(3, now).unwrap()),
            [(3, "b@x.co|Baja".into()), (4, "c@x.co|Alta".into())]
        );
        std::fs::write(&path, "Correo,Tipo\na@x.co,Alta\nb@x.co,Baja\nc@x.co,Baja\n").unwrap();
        assert_eq!(cells(source.page(4, now).unwrap()), [(4, "c@x.co|Baja".into())]);
        std::fs::write(&path, "Correx,Tipo\na@x.co,Alta\nb@x.co,Baja\nc@x.co,Baja\n").unwrap();
        assert_eq!(source.header(now).unwrap(), ["Correx", "Tipo"]);
    }

    /// The edit check of an export: its rows the first time; none while the file and the rows
    /// asked for are what it last read; again at any change of a byte, of the rows asked for,
    /// or once told to forget (ingestion stopped).
    #[test]
    fn an_export_s_rows_are_read_again_only_when_it_or_the_rows_asked_for_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("respuestas.csv");
        let dates = CsvDates { timestamp_headers: vec![], time_zone: jiff::tz::TimeZone::UTC };
        let mut source = Source::Csv { path: path.clone(), reader: None, dates, read: None, rows_read: None };
        let now = Timestamp::UNIX_EPOCH;
        let mut read = |wanted: &[u32]| -> Vec<(u32, String)> {
            source.rows(wanted, now).unwrap().into_iter().map(|r| (r.row, r.cells.join("|"))).collect()
        };
        std::fs::write(&path, "Correo,Tipo\na@x.co,Alta\nb@x.co,Baja\n").unwrap();
        assert_eq!(read(&[3]), [(3, "b@x.co|Baja".to_string())]);
        assert_eq!(read(&[3]), []);
        assert_eq!(read(&[2, 3]), [(2, "a@x.co|Alta".to_string()), (3, "b@x.co|Baja".to_string())]);
        // The same length, one letter changed.
        std::fs::write(&path, "Correo,Tipo\na@x.co,Alta\nb@x.co,Bajo\n").unwrap();
        assert_eq!(read(&[2, 3]), [(2, "a@x.co|Alta".to_string()), (3, "b@x.co|Bajo".to_string())]);
        assert_eq!(read(&[2, 3]), []);
        source.forget_rows_read();
        assert_eq!(source.rows(&[3], now).unwrap().len(), 1);
    }

    #[test]
    fn hash_ignores_trailing_empty_cells_but_not_moves() {
        let a = vec!["x".to_string(), "y".into()];
        let b = vec!["x".to_string(), "y".into(), String::new()];
        let c = vec!["xy".to_string(), String::new()];
        assert_eq!(row_hash(&a), row_hash(&b));
        assert_ne!(row_hash(&a), row_hash(&c));
    }
}
