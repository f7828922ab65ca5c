//! The form's response spreadsheet, read through the Google Sheets API v4 (`google-sheets4`)
//! with a service account (`yup-oauth2`).
//!
//! Google allows 60 reads per minute per user and the sheet grows forever, so an idle poll is
//! one `values.get` from the last row seen to the end, whatever the sheet's length; the sheet's
//! metadata and header are read again only on the slower edit-check schedule. Failures back off
//! in engine time (`now` is a parameter): 429, 5xx and timeouts exponentially with jitter up to
//! a cap, refused access and missing spreadsheets slowly, with an error that says what to do.

use std::time::Duration;

use google_sheets4::Sheets;
use google_sheets4::api::ValueRange;
use google_sheets4::yup_oauth2;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

pub use super::a1::{column_letters, encode_path_segment, quote_sheet};
use super::a1::{query_value_len, range_end_row};
use super::{Page, RawRow};
use crate::config::Secret;

/// What the daemon may do with the spreadsheet: read it, nothing else.
const SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
/// And with the form, when `[source] form_id` is set: read its responses.
const FORMS_SCOPE: &str = "https://www.googleapis.com/auth/forms.responses.readonly";
/// Rows asked for in one `values.get`: a first import of a long sheet comes in pages.
const PAGE_ROWS: u32 = 5000;
/// The longest URL a `batchGet` of the edit check may have. Google's front end refuses GET
/// URLs past about 8 KB (414) and its own client libraries stop using GET past 2 KB: the rows of
/// open requests are asked for in as many calls as keep each URL within this.
const MAX_URL_BYTES: usize = 2048;
/// The most rows of open requests one cycle's edit check reads again: some 20 `batchGet`s when
/// no two of them touch (about 30 ranges fit in [`MAX_URL_BYTES`]). Google allows 60 reads a
/// minute per user; the tail is read at every poll too. More open requests than this are read
/// again over as many cycles as they need, one slice after the other.
pub const EDIT_CHECK_ROWS: usize = 600;
/// First wait after a transient failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: SignedDuration = SignedDuration::from_secs(30);
const MAX_BACKOFF: SignedDuration = SignedDuration::from_mins(15);
/// Wait after a failure a person must fix (access refused, spreadsheet missing, bad key).
const SLOW_RETRY: SignedDuration = SignedDuration::from_mins(10);

use crate::https::Connector;
type Authenticator = yup_oauth2::authenticator::Authenticator<Connector>;

/// How to reach the spreadsheet.
#[derive(Debug, Clone)]
pub struct SheetSettings {
    pub spreadsheet_id: String,
    /// The tab; `None` is the first one (Forms names it «Respuestas de formulario 1»).
    pub sheet: Option<String>,
    /// The service account's JSON key.
    pub key: Secret,
    /// `https://sheets.googleapis.com/` unless a proxy (or a test emulator) stands in.
    pub api_base_url: String,
    pub timeout: Duration,
    /// How often the rows of open requests are read again (`batchGet`s of bounded length).
    pub edit_check_interval: SignedDuration,
    /// Header of the form's timestamp column: its serial numbers are converted from the
    /// spreadsheet's time zone to the entity's.
    pub timestamp_header: String,
    /// The entity's time zone.
    pub time_zone: TimeZone,
    /// The form whose own responses prove each row (`[source] form_id`), and the Forms API's
    /// address.
    pub form_id: Option<String>,
    pub forms_api_base_url: String,
}

/// One response as the form itself keeps it (Google Forms API `forms.responses`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormResponse {
    pub response_id: String,
    /// The verified address, when the form collects them; lower-case.
    pub respondent_email: String,
    /// When it was submitted, or last edited (the sheet's timestamp moves with it).
    pub last_submitted: Timestamp,
}

/// Why the spreadsheet could not be read. [`SheetError::is_transient`] tells a failure that
/// passes by itself from one a person must fix.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("the service-account key is not valid: {0}")]
    Key(String),
    #[error(
        "Google refused the service account {account}: {} (is the key current? \
         a deleted or rotated key must be replaced in the credential)",
        source.to_string().trim()
    )]
    Auth {
        account: String,
        #[source]
        source: yup_oauth2::Error,
    },
    #[error(
        "the spreadsheet {id} is not shared with the service account: share it with {account} as viewer \
         (Compartir → Lector)"
    )]
    NotShared { id: String, account: String },
    #[error(
        "spreadsheet id {id} not found: check [source] spreadsheet_id (the part of the sheet's URL after /d/)"
    )]
    NotFound { id: String },
    #[error(
        "the form {id} does not let the service account read its responses: add {account} to the form as a \
         collaborator (Forms has no read-only role), and enable the Google Forms API in the project"
    )]
    FormNotShared { id: String, account: String },
    #[error("form id {id} not found: check [source] form_id (the part of the form's edit URL after /d/)")]
    FormNotFound { id: String },
    #[error(
        "the {api} is not enabled in the service account's Google Cloud project: enable it there (APIs & Services \
         → Library → {api}) and wait a few minutes; Google said: {message}"
    )]
    ApiDisabled { api: &'static str, message: String },
    #[error("the spreadsheet has no tab named «{sheet}»; its tabs are: {tabs}")]
    NoSheet { sheet: String, tabs: String },
    #[error("Google Sheets answered {status} {reason}: {message}")]
    Api { status: u16, reason: String, message: String },
    #[error("no answer from Google Sheets within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach Google Sheets: {what}{}", error_chain(&**source))]
    Connection {
        /// What was being reached, when it is not the API itself ("token endpoint: ").
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("unexpected answer from Google Sheets: {0}")]
    Protocol(String),
    #[error("waiting until {until} before asking Google Sheets again (after {failures} failed attempts)")]
    BackingOff { until: Timestamp, failures: u32 },
}

impl SheetError {
    /// Failures that pass by themselves: quota, Google's own errors, the network.
    pub fn is_transient(&self) -> bool {
        match self {
            SheetError::Api { status, .. } => *status == 429 || *status >= 500,
            SheetError::Timeout(_) | SheetError::Connection { .. } | SheetError::BackingOff { .. } => true,
            _ => false,
        }
    }

    /// Google refused a range as a bad request. The ranges the daemon sends are well formed
    /// and within the grid as measured, so the only way one is refused is that the grid shrank
    /// (rows deleted) since then ("exceeds grid limits").
    fn is_past_grid(&self) -> bool {
        matches!(self, SheetError::Api { status: 400, .. })
    }
}

/// The tab as last measured.
#[derive(Debug, Clone)]
struct Grid {
    /// The tab's title, as Google spells it.
    title: String,
    rows: u32,
    columns: u32,
    /// The spreadsheet's time zone: serial numbers are local times there.
    time_zone: TimeZone,
}

struct Client {
    hub: Sheets<Connector>,
    auth: Authenticator,
}

/// An open connection to the response spreadsheet.
pub struct SheetSource {
    settings: SheetSettings,
    key: yup_oauth2::ServiceAccountKey,
    /// Built on first use: its own single-threaded runtime (the engine is synchronous).
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<Client>,
    grid: Option<Grid>,
    header: Option<Vec<String>>,
    timestamp_column: Option<usize>,
    /// Failures of the reads everything depends on (the grid, the header, the tail, the form).
    reads: Backoff,
    /// Failures of the edit check, kept apart: rows of old requests that cannot be read again
    /// must not hold back the reading of new responses.
    edit_check: Backoff,
}

/// Failures in a row, and when to ask Google again.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Timestamp>,
}

impl Backoff {
    fn ready(&self, now: Timestamp) -> Result<(), SheetError> {
        match self.retry_at {
            Some(until) if now < until => Err(SheetError::BackingOff { until, failures: self.failures }),
            _ => Ok(()),
        }
    }

    fn record<T>(&mut self, now: Timestamp, outcome: &Result<T, SheetError>) {
        match outcome {
            Ok(_) => *self = Backoff::default(),
            // Not Google's trouble: the caller measures the grid again and asks at once.
            Err(e) if e.is_past_grid() => {}
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                let wait = if e.is_transient() { backoff(self.failures, jitter()) } else { SLOW_RETRY };
                self.retry_at = Some(now + wait);
            }
        }
    }
}

impl SheetSource {
    pub fn new(settings: SheetSettings) -> Result<SheetSource, SheetError> {
        let key = yup_oauth2::parse_service_account_key(settings.key.expose())
            .map_err(|e| SheetError::Key(e.to_string()))?;
        Ok(SheetSource {
            key,
            settings,
            runtime: None,
            client: None,
            grid: None,
            header: None,
            timestamp_column: None,
            reads: Backoff::default(),
            edit_check: Backoff::default(),
        })
    }

    /// The service account's address: whom to share the spreadsheet with.
    pub fn account(&self) -> &str {
        &self.key.client_email
    }

    pub fn settings(&self) -> &SheetSettings {
        &self.settings
    }

    pub fn edit_check_interval(&self) -> SignedDuration {
        self.settings.edit_check_interval
    }

    pub fn describe(&self) -> String {
        match &self.settings.sheet {
            Some(tab) => format!("spreadsheet {}, tab «{tab}»", self.settings.spreadsheet_id),
            None => format!("spreadsheet {}", self.settings.spreadsheet_id),
        }
    }

    /// The header row. Read once, and again by [`SheetSource::refresh`] when the tab's column
    /// count changed.
    pub fn header(&mut self, now: Timestamp) -> Result<Vec<String>, SheetError> {
        if self.header.is_none() {
            self.refresh(now)?;
        }
        self.header.clone().ok_or_else(|| SheetError::Protocol("no header row".into()))
    }

    /// Measures the tab again (`spreadsheets.get`) and re-reads the header if its width
    /// changed: on the edit-check schedule, and when a range turned out to be past the grid.
    pub fn refresh(&mut self, now: Timestamp) -> Result<(), SheetError> {
        self.guarded(now, |s| {
            let columns_before = s.grid.as_ref().map(|g| g.columns);
            let grid = s.measure()?;
            let reread = s.header.is_none() || columns_before != Some(grid.columns);
            s.grid = Some(grid);
            if reread {
                let grid = s.grid.clone().ok_or_else(|| SheetError::Protocol("no grid".into()))?;
                let range = format!("{}!1:1", quote_sheet(&grid.title));
                let values = s.get_values(&range)?;
                let header: Vec<String> = values
                    .values
                    .unwrap_or_default()
                    .into_iter()
                    .next()
                    .unwrap_or_default()
                    .iter()
                    .map(|v| plain_text(v).trim_start_matches('\u{FEFF}').to_string())
                    .collect();
                let wanted = crate::intake::fold(&s.settings.timestamp_header);
                s.timestamp_column = header.iter().position(|h| crate::intake::fold(h) == wanted);
                s.header = Some(header);
            }
            Ok(())
        })
    }

    /// Rows from `from` (included) on, at most a page of them. A page that brings new
    /// responses measures the tab again first: a question added to the form is a new column,
    /// and its answers must not be cut off (an idle poll stays one request).
    pub fn page(&mut self, from: u32, now: Timestamp) -> Result<Page, SheetError> {
        if self.grid.is_none() || self.header.is_none() {
            self.refresh(now)?;
        }
        let page = match self.guarded(now, |s| s.read_page(from)) {
            Err(e) if e.is_past_grid() => {
                // Rows were deleted since the grid was measured: measure again, read again.
                self.refresh(now)?;
                return self.guarded(now, |s| s.read_page(from));
            }
            other => other?,
        };
        if !page.rows.iter().any(|r| r.row > from) {
            return Ok(page);
        }
        let width = self.grid.as_ref().map(|g| g.columns);
        self.refresh(now)?;
        if self.grid.as_ref().map(|g| g.columns) == width {
            return Ok(page);
        }
        let mut wider = self.guarded(now, |s| s.read_page(from))?;
        wider.header_changed = true;
        Ok(wider)
    }

    /// A whole tab, header first, each row as wide as the header (a small tab: the authorizer
    /// matrix).
    pub fn read_all(&mut self, now: Timestamp) -> Result<(Vec<String>, Vec<RawRow>), SheetError> {
        self.header = None;
        let header = self.header(now)?;
        let mut rows = Vec::new();
        let mut from = 2;
        loop {
            let page = self.page(from, now)?;
            // Google leaves out a row's trailing empty cells; a table's reader expects them.
            rows.extend(page.rows.into_iter().map(|mut r| {
                r.cells.resize(r.cells.len().max(header.len()), String::new());
                r
            }));
            match page.next {
                Some(next) => from = next,
                None => return Ok((header, rows)),
            }
        }
    }

    /// Just these rows, in `batchGet`s whose URLs stay within [`MAX_URL_BYTES`]: the edit
    /// check. A row past the end of the sheet comes back with no cells. Its failures back off
    /// on their own: the tail is read meanwhile.
    pub fn rows(&mut self, rows: &[u32], now: Timestamp) -> Result<Vec<RawRow>, SheetError> {
        if self.grid.is_none() {
            self.refresh(now)?;
        }
        // While Google is left alone after failed reads, the edit check leaves it alone too.
        self.reads.ready(now)?;
        self.edit_check.ready(now)?;
        let outcome = self.read_rows(rows);
        self.edit_check.record(now, &outcome);
        outcome
    }

    fn read_page(&mut self, from: u32) -> Result<Page, SheetError> {
        let grid = self.grid.clone().ok_or_else(|| SheetError::Protocol("no grid".into()))?;
        if from > grid.rows {
            return Ok(Page { rows: Vec::new(), next: None, header_changed: false });
        }
        let last_column = column_letters(grid.columns.max(1));
        let bounded = grid.rows - from >= PAGE_ROWS;
        let range = if bounded {
            format!("{}!A{from}:{last_column}{}", quote_sheet(&grid.title), from + PAGE_ROWS - 1)
        } else {
            // Open-ended: whatever Forms appended since the grid was measured comes too.
            format!("{}!A{from}:{last_column}", quote_sheet(&grid.title))
        };
        let values = self.get_values(&range)?;
        if let Some(end) = values.range.as_deref().and_then(range_end_row)
            && let Some(g) = &mut self.grid
            && end > g.rows
        {
            g.rows = end;
        }
        let rows = self.to_rows(from, values.values.unwrap_or_default(), &grid);
        Ok(Page { rows, next: bounded.then_some(from + PAGE_ROWS), header_changed: false })
    }

    fn read_rows(&mut self, rows: &[u32]) -> Result<Vec<RawRow>, SheetError> {
        let grid = self.grid.clone().ok_or_else(|| SheetError::Protocol("no grid".into()))?;
        let last_column = column_letters(grid.columns.max(1));
        let mut wanted: Vec<u32> = rows.iter().copied().filter(|r| *r >= 2).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let (inside, outside): (Vec<u32>, Vec<u32>) = wanted.into_iter().partition(|r| *r <= grid.rows);
        let mut out: Vec<RawRow> = outside.into_iter().map(|row| RawRow { row, cells: Vec::new() }).collect();
        // Consecutive rows in one range: fewer ranges, same cells.
        let mut spans: Vec<(u32, u32)> = Vec::new();
        for r in inside {
            match spans.last_mut() {
                Some((_, end)) if *end + 1 == r => *end = r,
                _ => spans.push((r, r)),
            }
        }
        let ranges: Vec<String> = spans
            .iter()
            .map(|(a, b)| format!("{}!A{a}:{last_column}{b}", quote_sheet(&grid.title)))
            .collect();
        let mut spans = spans.as_slice();
        let mut ranges = ranges.as_slice();
        while !spans.is_empty() {
            let n = self.ranges_within_url_limit(ranges);
            let (chunk, rest) = spans.split_at(n);
            let (asked, others) = ranges.split_at(n);
            (spans, ranges) = (rest, others);
            let answers = self.batch_get(asked)?;
            if answers.len() != chunk.len() {
                return Err(SheetError::Protocol(format!(
                    "asked for {} ranges, got {}",
                    chunk.len(),
                    answers.len()
                )));
            }
            for ((start, end), answer) in chunk.iter().zip(answers) {
                let mut got = self.to_rows(*start, answer.values.unwrap_or_default(), &grid);
                // Trailing empty rows are omitted by Google: they are rows with no cells.
                let have: std::collections::HashSet<u32> = got.iter().map(|r| r.row).collect();
                got.extend(
                    (*start..=*end)
                        .filter(|r| !have.contains(r))
                        .map(|row| RawRow { row, cells: Vec::new() }),
                );
                out.extend(got);
            }
        }
        out.sort_by_key(|r| r.row);
        Ok(out)
    }

    /// How many of `ranges`, from the first, one `batchGet` can ask for within
    /// [`MAX_URL_BYTES`]; at least one, so that an odd range too long alone is still asked for.
    fn ranges_within_url_limit(&self, ranges: &[String]) -> usize {
        // The URL as google-sheets4 builds it: base, path, the fixed parameters, then
        // `&ranges=` and the encoded range for each.
        const PATH: &str = "v4/spreadsheets//values:batchGet";
        const FIXED: &str =
            "?valueRenderOption=UNFORMATTED_VALUE&dateTimeRenderOption=SERIAL_NUMBER&alt=json";
        let mut length = self.settings.api_base_url.len()
            + PATH.len()
            + encode_path_segment(&self.settings.spreadsheet_id).len()
            + FIXED.len();
        let mut n = 0;
        for range in ranges {
            length += "&ranges=".len() + query_value_len(range);
            if n > 0 && length > MAX_URL_BYTES {
                break;
            }
            n += 1;
        }
        n.max(1).min(ranges.len())
    }

    /// Numbers the rows of a values answer and turns its cells into text; empty rows inside
    /// the range are kept (as rows with no cells), as the engine must see a gap.
    fn to_rows(&self, from: u32, values: Vec<Vec<Value>>, grid: &Grid) -> Vec<RawRow> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, cells)| RawRow {
                row: from + i as u32,
                cells: cells
                    .iter()
                    .enumerate()
                    .map(|(c, v)| {
                        if Some(c) == self.timestamp_column
                            && let Some(text) = self.local_timestamp(v, &grid.time_zone)
                        {
                            text
                        } else {
                            plain_text(v)
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    /// A timestamp serial (a local time in the spreadsheet's zone) as the entity's local time.
    fn local_timestamp(&self, v: &Value, sheet_zone: &TimeZone) -> Option<String> {
        let local = crate::intake::serial_datetime(v.as_f64()?)?;
        let instant = local.to_zoned(sheet_zone.clone()).ok()?.timestamp();
        Some(instant.to_zoned(self.settings.time_zone.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string())
    }

    /// Runs `f` unless backing off; keeps the backoff state from its outcome.
    fn guarded<T>(
        &mut self,
        now: Timestamp,
        f: impl FnOnce(&mut SheetSource) -> Result<T, SheetError>,
    ) -> Result<T, SheetError> {
        self.reads.ready(now)?;
        let outcome = f(self);
        self.reads.record(now, &outcome);
        outcome
    }

    fn runtime(&mut self) -> Result<&tokio::runtime::Runtime, SheetError> {
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SheetError::Connection { what: "HTTP runtime: ", source: Box::new(e) })?;
            self.runtime = Some(rt);
        }
        self.runtime.as_ref().ok_or_else(|| SheetError::Protocol("no runtime".into()))
    }

    /// Builds the HTTP client and the authenticator on first use.
    fn client(&mut self) -> Result<(), SheetError> {
        if self.client.is_some() {
            return Ok(());
        }
        let key = self.key.clone();
        let base = self.settings.api_base_url.clone();
        let timeout = self.settings.timeout;
        let rt = self.runtime()?;
        let client = rt.block_on(async move {
            let auth_http = http_client::<String>()?;
            let auth = yup_oauth2::ServiceAccountAuthenticator::with_client(
                key,
                yup_oauth2::client::CustomHyperClientBuilder::from(auth_http),
            )
            .with_timeout(timeout)
            .build()
            .await
            .map_err(|e| SheetError::Key(e.to_string()))?;
            let mut hub = Sheets::new(http_client()?, auth.clone());
            hub.base_url(base.clone());
            hub.root_url(base);
            Ok::<_, SheetError>(Client { hub, auth })
        })?;
        self.client = Some(client);
        Ok(())
    }

    /// `spreadsheets.get`, just the tab's title, size and the spreadsheet's time zone.
    fn measure(&mut self) -> Result<Grid, SheetError> {
        let id = self.settings.spreadsheet_id.clone();
        let wanted = self.settings.sheet.clone();
        let sheet = self.call(|hub| {
            let id = id.clone();
            async move {
                hub.spreadsheets()
                    .get(&id)
                    .param("fields", "properties(timeZone,locale),sheets.properties(title,gridProperties)")
                    .add_scope(SCOPE)
                    .doit()
                    .await
                    .map(|(_, s)| s)
            }
        })?;
        let zone_name = sheet.properties.as_ref().and_then(|p| p.time_zone.clone()).unwrap_or_default();
        let time_zone = jiff::tz::db().get(&zone_name).unwrap_or_else(|_| self.settings.time_zone.clone());
        let tabs: Vec<_> =
            sheet.sheets.unwrap_or_default().into_iter().filter_map(|s| s.properties).collect();
        let tab = match &wanted {
            Some(name) => tabs.iter().find(|t| t.title.as_deref() == Some(name.as_str())),
            // Tabs come in the spreadsheet's order.
            None => tabs.first(),
        };
        let Some(tab) = tab else {
            let names: Vec<_> =
                tabs.iter().filter_map(|t| t.title.clone()).map(|t| format!("«{t}»")).collect();
            return Err(SheetError::NoSheet { sheet: wanted.unwrap_or_default(), tabs: names.join(", ") });
        };
        let grid = tab.grid_properties.clone().unwrap_or_default();
        Ok(Grid {
            title: tab.title.clone().unwrap_or_default(),
            rows: grid.row_count.unwrap_or(0).max(0) as u32,
            columns: grid.column_count.unwrap_or(0).max(0) as u32,
            time_zone,
        })
    }

    /// The form's responses submitted or edited at `since` or later (`forms.responses.list`,
    /// every page); `None` when no `form_id` is configured.
    pub fn form_responses(
        &mut self,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<Option<Vec<FormResponse>>, SheetError> {
        let Some(form_id) = self.settings.form_id.clone() else { return Ok(None) };
        self.guarded(now, |s| s.list_responses(&form_id, since)).map(Some)
    }

    fn list_responses(&mut self, form_id: &str, since: Timestamp) -> Result<Vec<FormResponse>, SheetError> {
        // Whole seconds: the filter takes RFC 3339 and the sheet's times are to the second.
        let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
        let filter = encode_path_segment(&format!("timestamp >= {since}"));
        let base = format!(
            "{}v1/forms/{}/responses?filter={filter}",
            self.settings.forms_api_base_url,
            encode_path_segment(form_id)
        );
        let mut responses = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let url = match &page_token {
                Some(t) => format!("{base}&pageToken={}", encode_path_segment(t)),
                None => base.clone(),
            };
            let body = self.get_json(&url, form_id)?;
            for r in body["responses"].as_array().into_iter().flatten() {
                let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                let last_submitted = text("lastSubmittedTime")
                    .parse::<Timestamp>()
                    .map_err(|e| SheetError::Protocol(format!("a form response's lastSubmittedTime: {e}")))?;
                responses.push(FormResponse {
                    response_id: text("responseId"),
                    respondent_email: text("respondentEmail").trim().to_lowercase(),
                    last_submitted,
                });
            }
            match body["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => page_token = Some(t.to_string()),
                _ => return Ok(responses),
            }
        }
    }

    /// One GET of the Forms API with the forms scope's token; a 401 refreshes it once.
    fn get_json(&mut self, url: &str, form_id: &str) -> Result<Value, SheetError> {
        self.client()?;
        let timeout = self.settings.timeout;
        let account = self.key.client_email.clone();
        let (Some(rt), Some(client)) = (self.runtime.as_ref(), self.client.as_ref()) else {
            return Err(SheetError::Protocol("no client".into()));
        };
        let once = |refresh: bool| {
            rt.block_on(async {
                let work = async {
                    let token = if refresh {
                        client.auth.force_refreshed_token(&[FORMS_SCOPE]).await
                    } else {
                        client.auth.token(&[FORMS_SCOPE]).await
                    }
                    .map_err(|e| token_error(e, &account))?;
                    let token = token.token().unwrap_or_default().to_string();
                    let request = google_sheets4::hyper::Request::get(url)
                        .header("authorization", format!("Bearer {token}"))
                        .body(google_sheets4::common::to_body::<String>(None))
                        .map_err(|e| SheetError::Protocol(e.to_string()))?;
                    let response = client.hub.client.request(request).await.map_err(|e| {
                        SheetError::Connection { what: "Google Forms: ", source: Box::new(e) }
                    })?;
                    let status = response.status();
                    let bytes =
                        google_sheets4::common::to_bytes(response.into_body()).await.unwrap_or_default();
                    Ok::<_, SheetError>((status, bytes))
                };
                match tokio::time::timeout(timeout, work).await {
                    Ok(r) => r,
                    Err(_) => Err(SheetError::Timeout(timeout)),
                }
            })
        };
        let (mut status, mut bytes) = once(false)?;
        if status.as_u16() == 401 {
            (status, bytes) = once(true)?;
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        match status.as_u16() {
            200 => Ok(body),
            403 if service_disabled(&body) => Err(SheetError::ApiDisabled {
                api: "Google Forms API",
                message: body["error"]["message"].as_str().unwrap_or_default().to_string(),
            }),
            403 => Err(SheetError::FormNotShared { id: form_id.into(), account }),
            404 => Err(SheetError::FormNotFound { id: form_id.into() }),
            code => Err(SheetError::Api {
                status: code,
                reason: body["error"]["status"].as_str().unwrap_or_default().to_string(),
                message: body["error"]["message"].as_str().unwrap_or("no details in the answer").to_string(),
            }),
        }
    }

    /// `values.get` of one A1 range, unformatted, dates as serial numbers.
    fn get_values(&mut self, range: &str) -> Result<ValueRange, SheetError> {
        let id = self.settings.spreadsheet_id.clone();
        // google-sheets4 puts the range into the URL path as it is: `#` or `?` in a tab's name
        // would cut the URL short, so the range is percent-encoded here.
        let encoded = encode_path_segment(range);
        self.call(|hub| {
            let (id, encoded) = (id.clone(), encoded.clone());
            async move {
                hub.spreadsheets()
                    .values_get(&id, &encoded)
                    .value_render_option("UNFORMATTED_VALUE")
                    .date_time_render_option("SERIAL_NUMBER")
                    .add_scope(SCOPE)
                    .doit()
                    .await
                    .map(|(_, v)| v)
            }
        })
    }

    /// `values:batchGet` of several ranges (query parameters, which the crate encodes).
    fn batch_get(&mut self, ranges: &[String]) -> Result<Vec<ValueRange>, SheetError> {
        let id = self.settings.spreadsheet_id.clone();
        let answer = self.call(|hub| {
            let id = id.clone();
            let ranges = ranges.to_vec();
            async move {
                let mut call = hub
                    .spreadsheets()
                    .values_batch_get(&id)
                    .value_render_option("UNFORMATTED_VALUE")
                    .date_time_render_option("SERIAL_NUMBER")
                    .add_scope(SCOPE);
                for r in &ranges {
                    call = call.add_ranges(r);
                }
                call.doit().await.map(|(_, v)| v)
            }
        })?;
        Ok(answer.value_ranges.unwrap_or_default())
    }

    /// One API call with a timeout; a 401 refreshes the token once and tries again.
    fn call<T, F, Fut>(&mut self, make: F) -> Result<T, SheetError>
    where
        F: Fn(Sheets<Connector>) -> Fut,
        Fut: std::future::Future<Output = google_sheets4::Result<T>>,
    {
        self.client()?;
        let timeout = self.settings.timeout;
        let id = self.settings.spreadsheet_id.clone();
        let account = self.key.client_email.clone();
        let (Some(rt), Some(client)) = (self.runtime.as_ref(), self.client.as_ref()) else {
            return Err(SheetError::Protocol("no client".into()));
        };
        // The token first, on its own: when it cannot be had, google-sheets4 sends the call
        // without one and Google's 401 would hide why (an outage of the token endpoint, or a
        // key it refuses).
        let auth = client.auth.clone();
        let token = rt
            .block_on(async { tokio::time::timeout(timeout, auth.token(&[SCOPE])).await })
            .map_err(|_| SheetError::Timeout(timeout))?
            .map_err(|e| token_error(e, &account))?;
        // An endpoint in trouble may answer with a body yup-oauth2 reads as a token without its
        // access token, and keeps: the authenticator is built anew at the next attempt.
        if token.token().is_none_or(str::is_empty) {
            self.client = None;
            let source = "the token endpoint answered without an access token".into();
            return Err(SheetError::Connection { what: "token endpoint: ", source });
        }
        let once = |fut: Fut| {
            rt.block_on(async {
                match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r.map_err(|e| classify(e, &id, &account)),
                    Err(_) => Err(SheetError::Timeout(timeout)),
                }
            })
        };
        match once(make(client.hub.clone())) {
            Err(SheetError::Api { status: 401, .. }) => {
                // The token expired or was revoked before its time: ask for a new one, once.
                let auth = client.auth.clone();
                rt.block_on(async {
                    tokio::time::timeout(timeout, auth.force_refreshed_token(&[SCOPE])).await
                })
                .map_err(|_| SheetError::Timeout(timeout))?
                .map_err(|e| token_error(e, &account))?;
                once(make(client.hub.clone()))
            }
            other => other,
        }
    }
}

/// The HTTPS client, its failure said as the sheet's.
fn http_client<B>() -> Result<hyper_util::client::legacy::Client<Connector, B>, SheetError>
where
    B: google_sheets4::hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    crate::https::client()
        .map_err(|e| SheetError::Connection { what: "the system's CA certificates: ", source: Box::new(e) })
}

/// Google's error, read from the JSON body: `{"error": {"code", "message", "status"}}`.
fn classify(e: google_sheets4::Error, id: &str, account: &str) -> SheetError {
    use google_sheets4::Error as E;
    match e {
        E::BadRequest(body) => {
            let err = &body["error"];
            let status = err["code"].as_u64().unwrap_or(400) as u16;
            let reason = err["status"].as_str().unwrap_or_default().to_string();
            let message = err["message"].as_str().map_or_else(|| body.to_string(), str::to_string);
            match status {
                403 if service_disabled(&body) => {
                    SheetError::ApiDisabled { api: "Google Sheets API", message }
                }
                403 => SheetError::NotShared { id: id.into(), account: account.into() },
                404 => SheetError::NotFound { id: id.into() },
                _ => SheetError::Api { status, reason, message },
            }
        }
        E::Failure(response) => {
            let status = response.status().as_u16();
            match status {
                403 => SheetError::NotShared { id: id.into(), account: account.into() },
                404 => SheetError::NotFound { id: id.into() },
                _ => SheetError::Api {
                    status,
                    reason: response.status().canonical_reason().unwrap_or_default().into(),
                    message: "no details in the answer".into(),
                },
            }
        }
        E::MissingToken(e) => match e.downcast::<yup_oauth2::Error>() {
            Ok(e) => token_error(*e, account),
            Err(e) => SheetError::Protocol(format!("no token: {e}")),
        },
        E::HttpError(e) => SheetError::Connection { what: "", source: Box::new(e) },
        E::Io(e) => SheetError::Connection { what: "", source: Box::new(e) },
        E::JsonDecodeError(_, e) => SheetError::Protocol(e.to_string()),
        other => SheetError::Protocol(other.to_string()),
    }
}

/// A 403 that is not about sharing: the API is not enabled in the project (Google's
/// `ErrorInfo` reason `SERVICE_DISABLED`, or its words when the details are missing).
fn service_disabled(body: &Value) -> bool {
    let err = &body["error"];
    err["details"].as_array().into_iter().flatten().any(|d| d["reason"] == "SERVICE_DISABLED")
        || err["message"]
            .as_str()
            .is_some_and(|m| m.contains("has not been used in project") || m.contains("it is disabled"))
}

/// A token that could not be had: Google could not be reached (transient), or refused the
/// key (a person must act).
fn token_error(e: yup_oauth2::Error, account: &str) -> SheetError {
    if crate::https::is_token_outage(&e) {
        SheetError::Connection { what: "token endpoint: ", source: Box::new(e) }
    } else {
        SheetError::Auth { account: account.into(), source: e }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Exponential backoff with jitter: 30 s, 1 min, 2 min … up to 15 min, each times a factor
/// in [0.5, 1) so that many daemons do not retry in step.
pub fn backoff(failures: u32, jitter: f64) -> SignedDuration {
    let doubling = FIRST_BACKOFF.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(16) as i32);
    let capped = doubling.min(MAX_BACKOFF.as_secs_f64());
    SignedDuration::from_secs_f64(capped * (0.5 + jitter.clamp(0.0, 1.0) / 2.0))
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 0.5,
    }
}

/// A cell as text: strings as they are, whole numbers without a decimal point (document
/// numbers come as numbers), other numbers as Rust prints them, booleans as Sheets shows them.
fn plain_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            (None, Some(f)) => format!("{f}"),
            _ => n.to_string(),
        },
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_become_the_text_a_person_typed() {
        assert_eq!(plain_text(&serde_json::json!(1012345678)), "1012345678");
        assert_eq!(plain_text(&serde_json::json!(1012345678.0)), "1012345678");
        assert_eq!(plain_text(&serde_json::json!(46353.5)), "46353.5");
        assert_eq!(plain_text(&serde_json::json!("Ana")), "Ana");
        assert_eq!(plain_text(&serde_json::json!(null)), "");
        assert_eq!(plain_text(&serde_json::json!(true)), "TRUE");
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap() {
        assert_eq!(backoff(1, 1.0), SignedDuration::from_secs(30));
        assert_eq!(backoff(1, 0.0), SignedDuration::from_secs(15));
        assert_eq!(backoff(3, 1.0), SignedDuration::from_secs(120));
        assert_eq!(backoff(40, 1.0), MAX_BACKOFF);
        assert!(backoff(40, 0.0) >= MAX_BACKOFF / 2);
    }
}
