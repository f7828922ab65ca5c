//! An in-process emulator of the parts of the Google Sheets API v4 and Google's OAuth 2.0 token
//! endpoint that a service-account client reading Google Form responses uses.
//!
//! It serves HTTP/1.1 on `127.0.0.1` from a tokio runtime on its own thread:
//! - `POST /token`: the JWT-bearer grant. It checks the assertion's RS256 signature against the
//!   public half of `tests/fixtures/sheets/service-account.json`, its issuer, audience, lifetime and
//!   scope, and answers with a `ya29.` access token or Google's `invalid_grant` / `invalid_scope`.
//! - `GET /v4/spreadsheets/{id}`: the spreadsheet's properties and each sheet's grid.
//! - `GET /v4/spreadsheets/{id}/values/{range}` and `GET /v4/spreadsheets/{id}/values:batchGet`:
//!   values in A1 notation, with Google's trimming of empty cells and rows, its `range` echo
//!   clipped to the grid and its 400s for unparsable ranges and ranges past the grid.
//!
//! - `GET /v1/forms/{formId}/responses` (Google Forms API): the form's own record of its
//!   responses, for rows sent through [`Emulator::submit`] and not for rows typed into the sheet
//!   ([`Emulator::append_row`]): `responseId`, `createTime`, `lastSubmittedTime` (fractions of a
//!   second, UTC), `respondentEmail`; `filter=timestamp >= …` or `>`, `pageSize`, `pageToken`;
//!   a token with the `forms.responses.readonly` scope; 403 while the form is not shared with
//!   the service account, 404 for another id. Responses come newest first: order is not a key.
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: Entra ID's client credentials grant for Microsoft 365's
//!   SMTP (`scope=https://outlook.office365.com/.default`), once `entra` set it up: a token, or
//!   Entra's `invalid_client` / `invalid_scope` / `unauthorized_client` errors; each token it
//!   issues is written as a line of a file that `tests/smtp_sink.py --xoauth2` reads, so the
//!   relay takes exactly the tokens issued and not revoked.
//!
//! Answers are JSON as Google sends them, pretty-printed unless `prettyPrint=false`, and
//! `fields=` masks are honoured. A URL longer than Google's front end takes (8 KB) is refused
//! with its HTML 414 before anything else, and the longest URL received is kept. Faults
//! (`fail_next`, `fail_next_batch_get`, `set_delay`, `expire_tokens`, `set_shared`) and
//! counters let a test drive and observe a client.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cuentas::source::sheet::column_letters;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};

/// A running emulator; it stops when dropped.
pub struct Emulator {
    inner: Arc<Inner>,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What never changes after start, and the state behind a lock.
struct Inner {
    spreadsheet_id: String,
    token_uri: String,
    /// RSAPublicKey DER of the service account's key.
    public_key: Vec<u8>,
    state: Mutex<State>,
}

struct State {
    sheet_title: String,
    time_zone: String,
    rows: Vec<Vec<Value>>,
    row_count: u32,
    column_count: u32,
    /// The tabs after the first, in index order (sheetId 1, 2, ...).
    tabs: Vec<Tab>,
    shared: bool,
    /// The status to fail with, and how many more requests fail.
    faults: (u16, usize),
    /// The same, for `values:batchGet` requests only.
    batch_get_faults: (u16, usize),
    /// The longest URL received (scheme, host, path and query), refused or not.
    longest_url: String,
    delay: Duration,
    tokens: HashMap<String, Token>,
    tokens_issued: u64,
    sheets_requests: usize,
    values_requests: usize,
    cells_served: usize,
    token_requests: usize,
    log: Vec<(String, String, u16)>,
    /// The form writing into the first tab, once `create_form` made it.
    form: Option<Form>,
    /// The Entra ID application for mail, once `entra` set it up.
    entra: Option<Entra>,
    /// The Sheets API disabled in the project.
    api_disabled: bool,
    /// Token requests still to answer 503.
    token_outages: usize,
}

/// An application registered in Entra ID, and the tokens it was given.
struct Entra {
    tenant: String,
    client_id: String,
    client_secret: String,
    /// A certificate registered instead of a secret: its public key and thumbprints.
    certificate: Option<EntraCertificate>,
    /// Where the relay reads the tokens it takes (one a line).
    tokens: PathBuf,
    issued: u64,
    /// Requests still to answer 503.
    outages: usize,
}

/// A certificate as Entra ID keeps it for an application: its public key, its thumbprints.
struct EntraCertificate {
    public_key: Vec<u8>,
    x5t: String,
    x5t_s256: String,
}

impl EntraCertificate {
    fn of(pem: &Path) -> EntraCertificate {
        let text = std::fs::read_to_string(pem).unwrap();
        let block = |label: &str| -> Vec<u8> {
            let begin = format!("-----BEGIN {label}-----");
            let end = format!("-----END {label}-----");
            let b64: String =
                text.split(&begin).nth(1).unwrap().split(&end).next().unwrap().split_whitespace().collect();
            base64::engine::general_purpose::STANDARD.decode(b64).unwrap()
        };
        let cert = block("CERTIFICATE");
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&block("PRIVATE KEY")).unwrap();
        use ring::signature::KeyPair as _;
        let url =
            |d: ring::digest::Digest| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref());
        EntraCertificate {
            public_key: pair.public_key().as_ref().to_vec(),
            x5t: url(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert)),
            x5t_s256: url(ring::digest::digest(&ring::digest::SHA256, &cert)),
        }
    }

    /// Checks a client assertion as Entra ID does; its AADSTS message if it fails.
    fn verify(&self, assertion: &str, client_id: &str, token_url: &str) -> Result<(), String> {
        let parts: Vec<&str> = assertion.split('.').collect();
        let [head, payload, signature] = parts[..] else {
            return Err("AADSTS50027: JWT token is invalid or malformed.".into());
        };
        let decode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s);
        let (Ok(h), Ok(p), Ok(sig)) = (decode(head), decode(payload), decode(signature)) else {
            return Err("AADSTS50027: JWT token is invalid or malformed.".into());
        };
        let (Ok(header), Ok(claims)) =
            (serde_json::from_slice::<Value>(&h), serde_json::from_slice::<Value>(&p))
        else {
            return Err("AADSTS50027: JWT token is invalid or malformed.".into());
        };
        if header["alg"] != "RS256" {
            return Err("AADSTS5002738: Invalid JWT token. 'alg' is not supported.".into());
        }
        if header["x5t#S256"] != self.x5t_s256.as_str() && header["x5t"] != self.x5t.as_str() {
            return Err(format!(
                "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']",
                header["x5t"].as_str().unwrap_or_default()
            ));
        }
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &self.public_key,
        );
        if key.verify(&assertion.as_bytes()[..head.len() + 1 + payload.len()], &sig).is_err() {
            return Err("AADSTS7000274: Client assertion contains an invalid signature.".into());
        }
        if claims["aud"] != token_url {
            return Err(format!(
                "AADSTS700212: No matching federated identity record found for presented assertion audience '{}'.",
                claims["aud"]
            ));
        }
        if claims["iss"] != client_id || claims["sub"] != client_id {
            return Err(
                "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter."
                    .into(),
            );
        }
        let now = unix_now();
        let (Some(nbf), Some(exp)) = (claims["nbf"].as_i64(), claims["exp"].as_i64()) else {
            return Err("AADSTS700024: Client assertion is not within its valid time range.".into());
        };
        // Entra forgives five minutes of clock skew.
        if nbf > now + 300
            || exp <= now - 300
            || exp <= nbf
            || claims["jti"].as_str().unwrap_or_default().is_empty()
        {
            return Err("AADSTS700024: Client assertion is not within its valid time range.".into());
        }
        Ok(())
    }
}

/// The form whose responses `submit` records.
struct Form {
    id: String,
    shared: bool,
    responses: Vec<FormResponse>,
}

struct FormResponse {
    /// The sheet row it wrote (1-based).
    row: u32,
    id: String,
    email: String,
    /// RFC 3339, UTC, with fractions of a second.
    create_time: String,
    last_submitted: jiff::Timestamp,
}

/// A tab after the first, added with `add_tab`.
struct Tab {
    title: String,
    rows: Vec<Vec<Value>>,
    row_count: u32,
    column_count: u32,
}

/// One tab's title, cells and grid, as values.get reads them.
#[derive(Clone, Copy)]
struct Grid<'a> {
    title: &'a str,
    rows: &'a [Vec<Value>],
    row_count: u32,
    column_count: u32,
}

struct Token {
    /// Unix seconds after which Google no longer takes it.
    expires_at: i64,
    revoked: bool,
    /// The scopes it was granted for.
    scopes: Vec<String>,
}

const READONLY_SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets.readonly";
const FORMS_SCOPE: &str = "https://www.googleapis.com/auth/forms.responses.readonly";
const FIXTURES: &str = "tests/fixtures/sheets";
/// Seconds an access token lives, as Google says in `expires_in`.
const TOKEN_LIFETIME: i64 = 3599;
/// The longest URL Google's front end takes; past it, 414.
const MAX_URL_BYTES: usize = 8 * 1024;

impl Emulator {
    pub const SERVICE_ACCOUNT: &'static str = "cuentas@cuentas-pruebas.iam.gserviceaccount.com";

    /// Starts on 127.0.0.1:0 serving one spreadsheet with the id, one sheet (tab) with the title,
    /// spreadsheet time zone `time_zone` (e.g. "America/Bogota") and locale "es_419". The sheet
    /// starts empty, with the grid of a new sheet: 1000 rows, 26 columns.
    pub fn start(spreadsheet_id: &str, sheet_title: &str, time_zone: &str) -> Emulator {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            spreadsheet_id: spreadsheet_id.to_string(),
            token_uri: format!("http://{addr}/token"),
            public_key: service_account_public_key(),
            state: Mutex::new(State {
                sheet_title: sheet_title.to_string(),
                time_zone: time_zone.to_string(),
                rows: Vec::new(),
                row_count: 1000,
                column_count: 26,
                tabs: Vec::new(),
                shared: true,
                faults: (0, 0),
                batch_get_faults: (0, 0),
                longest_url: String::new(),
                delay: Duration::ZERO,
                tokens: HashMap::new(),
                tokens_issued: 0,
                sheets_requests: 0,
                values_requests: 0,
                cells_served: 0,
                token_requests: 0,
                log: Vec::new(),
                form: None,
                entra: None,
                api_disabled: false,
                token_outages: 0,
            }),
        });
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = inner.clone();
        let thread = std::thread::Builder::new()
            .name("sheets-emulator".into())
            .spawn(move || serve(listener, served, stop))
            .unwrap();
        Emulator { inner, addr, shutdown: Some(shutdown), thread: Some(thread) }
    }

    /// "http://127.0.0.1:PORT/", for `Sheets::base_url` and `Sheets::root_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// "http://127.0.0.1:PORT/token".
    pub fn token_uri(&self) -> String {
        self.inner.token_uri.clone()
    }

    /// Writes a copy of tests/fixtures/sheets/<fixture>.json into `dir` with `token_uri` set to
    /// this emulator; returns its path.
    pub fn key_file(&self, dir: &Path, fixture: &str) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES).join(format!("{fixture}.json"));
        let mut key: Value = serde_json::from_str(&std::fs::read_to_string(&src).unwrap()).unwrap();
        key["token_uri"] = Value::String(self.token_uri());
        let path = dir.join(format!("{fixture}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&key).unwrap()).unwrap();
        path
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// Replaces all data; row 1 is the header. Cells are strings, numbers or booleans; `null`
    /// and `""` are empty cells. The grid becomes max(rows, 1000) rows by the widest row's
    /// columns (a Forms response sheet has one column per question).
    pub fn set_rows(&self, rows: Vec<Vec<Value>>) {
        rows.iter().flatten().for_each(check_cell);
        let mut st = self.state();
        st.row_count = (rows.len() as u32).max(1000);
        st.column_count = rows.iter().map(|r| r.len() as u32).max().unwrap_or(0).max(1);
        st.rows = rows;
    }

    /// Adds a tab after the others (sheetId 1, 2, ...) holding `rows`, with the grid `set_rows`
    /// gives; with the title of a tab added before, replaces that tab's rows and grid. The other
    /// methods that change cells act on the first tab only.
    pub fn add_tab(&self, title: &str, rows: Vec<Vec<Value>>) {
        rows.iter().flatten().for_each(check_cell);
        let mut st = self.state();
        assert!(title != st.sheet_title, "{title:?} is the first tab; use set_rows");
        let tab = Tab {
            title: title.to_string(),
            row_count: (rows.len() as u32).max(1000),
            column_count: rows.iter().map(|r| r.len() as u32).max().unwrap_or(0).max(1),
            rows,
        };
        match st.tabs.iter_mut().find(|t| t.title == title) {
            Some(t) => *t = tab,
            None => st.tabs.push(tab),
        }
    }

    /// Appends a row under the last non-empty one, as Forms does with a new response; a full grid
    /// grows by one row, and by columns when the row is wider than the grid.
    pub fn append_row(&self, cells: Vec<Value>) {
        cells.iter().for_each(check_cell);
        let mut st = self.state();
        let used = st.rows.iter().rposition(|r| !row_is_empty(r)).map_or(0, |i| i + 1);
        st.rows.truncate(used);
        st.rows.push(cells);
        st.row_count = st.row_count.max(st.rows.len() as u32);
        st.column_count = st.column_count.max(st.rows[used].len() as u32);
    }

    /// Registers an application in Entra ID's tenant `tenant` with a certificate (the PEM file
    /// `pem` holds it and its key; Entra keeps only the public part) and no secret.
    pub fn entra_with_certificate(&self, tenant: &str, client_id: &str, pem: &Path, tokens: &Path) {
        self.entra(tenant, client_id, "", tokens);
        self.state().entra.as_mut().unwrap().certificate = Some(EntraCertificate::of(pem));
    }

    /// Registers an application in Entra ID's tenant `tenant`, with a client secret; the
    /// tokens it gets are written to `tokens` for the relay.
    pub fn entra(&self, tenant: &str, client_id: &str, client_secret: &str, tokens: &Path) {
        std::fs::write(tokens, "").unwrap();
        self.state().entra = Some(Entra {
            tenant: tenant.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            certificate: None,
            tokens: tokens.to_path_buf(),
            issued: 0,
            outages: 0,
        });
    }

    /// The tenant's token endpoint, as `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`.
    pub fn entra_token_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.addr)
    }

    /// Tokens issued so far.
    pub fn entra_tokens_issued(&self) -> u64 {
        self.state().entra.as_ref().map_or(0, |e| e.issued)
    }

    /// Revokes every token issued so far: the relay takes none of them any more.
    pub fn revoke_mail_tokens(&self) {
        let st = self.state();
        std::fs::write(&st.entra.as_ref().expect("entra first").tokens, "").unwrap();
    }

    /// The next `n` token requests get a 503, as during an outage of the endpoint.
    pub fn entra_down(&self, n: usize) {
        self.state().entra.as_mut().expect("entra first").outages = n;
    }

    /// Makes the form that writes into the first tab, with the id `form_id`, shared with the
    /// service account.
    pub fn create_form(&self, form_id: &str) {
        self.state().form = Some(Form { id: form_id.to_string(), shared: true, responses: Vec::new() });
    }

    /// Whether the form lets the service account read its responses.
    pub fn set_form_shared(&self, shared: bool) {
        self.state().form.as_mut().expect("create_form first").shared = shared;
    }

    /// A response sent through the form: its row appended as [`Emulator::append_row`] does, and
    /// the form's own record of it, at the row's timestamp (column «Marca temporal» or
    /// «Timestamp», a serial number in the spreadsheet's time zone) plus a fraction of a
    /// second, from the address in column «Dirección de correo electrónico» or «Email address».
    pub fn submit(&self, cells: Vec<Value>) {
        let (timestamp, email) = {
            let st = self.state();
            let header: Vec<String> = st
                .rows
                .first()
                .map(|h| h.iter().map(|c| c.as_str().unwrap_or_default().to_string()).collect())
                .unwrap_or_default();
            let column = |names: &[&str]| header.iter().position(|h| names.contains(&h.as_str()));
            let at = column(&["Marca temporal", "Timestamp"]).expect("a timestamp column");
            let serial =
                cells.get(at).and_then(|v| v.as_f64().or_else(|| date_time_parts(v).map(|(n, _)| n)));
            let serial = serial.expect("a timestamp in the response");
            let tz = jiff::tz::TimeZone::get(&st.time_zone).unwrap();
            let epoch = jiff::civil::date(1899, 12, 30).at(0, 0, 0, 0);
            let millis = (serial * 86_400_000.0).round() as i64;
            let local = epoch.checked_add(jiff::SignedDuration::from_millis(millis)).unwrap();
            let timestamp = local.to_zoned(tz).unwrap().timestamp();
            let email = column(&["Dirección de correo electrónico", "Email address"])
                .and_then(|i| cells.get(i))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (timestamp, email)
        };
        self.append_row(cells);
        let mut st = self.state();
        let row = st.rows.len() as u32;
        let form = st.form.as_mut().expect("create_form first");
        let mut nonce = [0u8; 10];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).unwrap();
        // Google's ids are opaque; the fraction of a second is what the sheet's cell drops.
        let fraction = jiff::SignedDuration::from_millis(i64::from(nonce[0]) * 999 / 255);
        let last_submitted = timestamp + fraction;
        form.responses.push(FormResponse {
            row,
            id: format!("ACYDBN{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)),
            email,
            create_time: last_submitted.to_string(),
            last_submitted,
        });
    }

    /// A respondent edits the response that wrote row `row`, as Forms does it: the row is
    /// rewritten in place, its timestamp (given in `cells`, as the edit's time) included, and
    /// the response's `lastSubmittedTime` moves to it.
    pub fn edit_response(&self, row: u32, cells: Vec<Value>) {
        let serial = {
            let st = self.state();
            let header: Vec<String> =
                st.rows[0].iter().map(|c| c.as_str().unwrap_or_default().to_string()).collect();
            let at = header
                .iter()
                .position(|h| h == "Marca temporal" || h == "Timestamp")
                .expect("a timestamp column");
            cells[at].as_f64().or_else(|| date_time_parts(&cells[at]).map(|(n, _)| n)).expect("a timestamp")
        };
        self.set_row(row, cells);
        let mut st = self.state();
        let tz = jiff::tz::TimeZone::get(&st.time_zone).unwrap();
        let local = jiff::civil::date(1899, 12, 30)
            .at(0, 0, 0, 0)
            .checked_add(jiff::SignedDuration::from_millis((serial * 86_400_000.0).round() as i64))
            .unwrap();
        let at = local.to_zoned(tz).unwrap().timestamp() + jiff::SignedDuration::from_millis(271);
        let form = st.form.as_mut().expect("create_form first");
        let response =
            form.responses.iter_mut().find(|r| r.row == row).expect("a response that wrote the row");
        response.last_submitted = at;
    }

    /// Whether the Sheets API is enabled in the service account's project: disabled, every
    /// call gets Google's 403 `SERVICE_DISABLED`.
    pub fn set_api_enabled(&self, enabled: bool) {
        self.state().api_disabled = !enabled;
    }

    /// The next `n` token requests get Google's 503 `UNAVAILABLE`, as in an outage.
    pub fn token_endpoint_down(&self, n: usize) {
        self.state().token_outages = n;
    }

    /// Replaces row `row` (1-based) in place; the row must be inside the grid.
    pub fn set_row(&self, row: u32, cells: Vec<Value>) {
        cells.iter().for_each(check_cell);
        let mut st = self.state();
        assert!(row >= 1 && row <= st.row_count, "row {row} is outside the grid of {} rows", st.row_count);
        assert!(
            cells.len() as u32 <= st.column_count,
            "{} cells do not fit the grid's {} columns",
            cells.len(),
            st.column_count
        );
        let i = row as usize - 1;
        if st.rows.len() <= i {
            st.rows.resize(i + 1, Vec::new());
        }
        st.rows[i] = cells;
    }

    /// Deletes row `row` (1-based): rows below move up and the grid shrinks by one row.
    pub fn delete_row(&self, row: u32) {
        let mut st = self.state();
        assert!(row >= 1 && row <= st.row_count, "row {row} is outside the grid of {} rows", st.row_count);
        assert!(st.row_count > 1, "a sheet keeps at least one row");
        let i = row as usize - 1;
        if i < st.rows.len() {
            st.rows.remove(i);
        }
        st.row_count -= 1;
    }

    /// Sets gridProperties rowCount and columnCount. As in Sheets, cells that fall outside a
    /// shrunken grid are deleted.
    pub fn set_grid(&self, rows: u32, columns: u32) {
        assert!(rows >= 1 && columns >= 1, "a grid has at least one row and one column");
        let mut st = self.state();
        st.row_count = rows;
        st.column_count = columns;
        st.rows.truncate(rows as usize);
        for r in &mut st.rows {
            r.truncate(columns as usize);
        }
    }

    /// A date-time cell, such as the timestamp Forms writes in column A, from its text as the
    /// sheet shows it, `d/M/yyyy H:mm:ss` (e.g. "27/11/2026 7:05:03"). FORMATTED_VALUE, and
    /// UNFORMATTED_VALUE with `dateTimeRenderOption=FORMATTED_STRING`, return the text as given;
    /// UNFORMATTED_VALUE with SERIAL_NUMBER (the default) returns the serial number (days since
    /// 30/12/1899, the time as a fraction). In `rows()` it is `{"serial": n, "formatted": text}`.
    pub fn date_time(text: &str) -> Value {
        let parse = || -> Option<f64> {
            let (date, time) = text.trim().split_once(' ')?;
            let d: Vec<i64> = date.split('/').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            let t: Vec<i64> = time.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
            let (&[day, month, year], &[h, m, s]) = (&d[..], &t[..]) else { return None };
            if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 59 {
                return None;
            }
            // Days from 1970-01-01 (Howard Hinnant's days_from_civil); 25569 days separate Sheets'
            // epoch, 1899-12-30, from 1970-01-01.
            let y = if month <= 2 { year - 1 } else { year };
            let era = y.div_euclid(400);
            let yoe = y - era * 400;
            let mp = (month + 9) % 12;
            let doy = (153 * mp + 2) / 5 + day - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            let days = era * 146_097 + doe - 719_468;
            Some((days + 25_569) as f64 + (h * 3600 + m * 60 + s) as f64 / 86_400.0)
        };
        let serial = parse().unwrap_or_else(|| panic!("{text:?} is not d/M/yyyy H:mm:ss"));
        json!({ "serial": serial, "formatted": text })
    }

    /// The data as set (row 1 is the header).
    pub fn rows(&self) -> Vec<Vec<Value>> {
        self.state().rows.clone()
    }

    /// The next `n` Sheets API requests that carry a valid token answer `status` with Google's
    /// JSON error body (429, 500, 503, 403, 404, 400...; 502 answers Google's HTML page). A call
    /// replaces what is left of the previous one: `fail_next(429, 0)` ends a fault early.
    pub fn fail_next(&self, status: u16, n: usize) {
        self.state().faults = (status, n);
    }

    /// The next `n` `values:batchGet` requests that carry a valid token answer `status`, as
    /// [`Emulator::fail_next`] does; other requests are answered as usual.
    pub fn fail_next_batch_get(&self, status: u16, n: usize) {
        self.state().batch_get_faults = (status, n);
    }

    /// The longest URL received since the start or [`Emulator::reset_counters`]: scheme, host,
    /// path and query, as the client wrote it.
    pub fn longest_url(&self) -> String {
        self.state().longest_url.clone()
    }

    /// Every Sheets API answer waits this long before it is sent (token answers do not).
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// Every access token issued so far is rejected with 401 from now on.
    pub fn expire_tokens(&self) {
        for t in self.state().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// `false`: the spreadsheet is not shared with the service account (403 PERMISSION_DENIED).
    pub fn set_shared(&self, shared: bool) {
        self.state().shared = shared;
    }

    /// Zeroes the counters and empties the log.
    pub fn reset_counters(&self) {
        let mut st = self.state();
        st.sheets_requests = 0;
        st.values_requests = 0;
        st.cells_served = 0;
        st.token_requests = 0;
        st.longest_url.clear();
        st.log.clear();
    }

    /// Every request to /v4/..., failed ones included.
    pub fn sheets_requests(&self) -> usize {
        self.state().sheets_requests
    }

    /// Requests to values.get and values:batchGet, failed ones included.
    pub fn values_requests(&self) -> usize {
        self.state().values_requests
    }

    /// Non-empty cells returned in `values` of successful answers.
    pub fn cells_served(&self) -> usize {
        self.state().cells_served
    }

    /// Requests to /token, successful or not.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// Each Sheets request as (method, path-and-query as received, status answered).
    pub fn log(&self) -> Vec<(String, String, u16)> {
        self.state().log.clone()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the emulator down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn check_cell(v: &Value) {
    assert!(
        matches!(v, Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_))
            || date_time_parts(v).is_some(),
        "a cell is a string, a number, a boolean, null or Emulator::date_time(..), not {v}"
    );
}

/// The serial number and text of a date-time cell made by `Emulator::date_time`.
fn date_time_parts(v: &Value) -> Option<(f64, &str)> {
    let o = v.as_object()?;
    Some((o.get("serial")?.as_f64()?, o.get("formatted")?.as_str()?))
}

fn cell_is_empty(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str() == Some("")
}

fn row_is_empty(r: &[Value]) -> bool {
    r.iter().all(cell_is_empty)
}

/// The emulator reads the clock, as Google does, to check a JWT's `exp` and a token's life.
#[allow(clippy::disallowed_methods)]
fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn service_account_public_key() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES).join("service-account.json");
    let key: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    use ring::signature::KeyPair as _;
    pair.public_key().as_ref().to_vec()
}

// ---------------------------------------------------------------------------------------------
// The server

fn serve(listener: std::net::TcpListener, inner: Arc<Inner>, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let inner = inner.clone();
                            async move { Ok::<_, Infallible>(handle(&inner, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        }
    });
    // Dropping the runtime ends every connection still open.
}

/// An answer before it becomes a response.
struct Answer {
    status: u16,
    body: Body,
    www_authenticate: bool,
}

enum Body {
    Json(Value),
    Html(String),
}

impl Answer {
    fn json(status: u16, v: Value) -> Answer {
        Answer { status, body: Body::Json(v), www_authenticate: false }
    }

    fn into_response(self, pretty: bool) -> Response<Full<Bytes>> {
        let (ctype, text) = match self.body {
            Body::Json(v) => ("application/json; charset=UTF-8", {
                let mut out = String::new();
                write_json(&v, pretty.then_some(0), &mut out);
                out
            }),
            Body::Html(h) => ("text/html; charset=UTF-8", h),
        };
        let mut b = Response::builder()
            .status(self.status)
            .header("content-type", ctype)
            .header("vary", "Origin, X-Origin, Referer");
        if self.www_authenticate {
            b = b.header(
                "www-authenticate",
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            );
        }
        b.body(Full::new(Bytes::from(text))).unwrap()
    }
}

/// The order in which Google writes an object's fields (serde_json's map sorts them by name);
/// fields not listed follow in name order.
const FIELD_ORDER: &[&str] = &[
    "access_token",
    "expires_in",
    "token_type",
    "error",
    "error_description",
    "code",
    "message",
    "status",
    "details",
    "@type",
    "reason",
    "domain",
    "metadata",
    "fieldViolations",
    "field",
    "description",
    "links",
    "url",
    "spreadsheetId",
    "properties",
    "sheets",
    "spreadsheetUrl",
    "sheetId",
    "title",
    "locale",
    "autoRecalc",
    "index",
    "sheetType",
    "gridProperties",
    "rowCount",
    "columnCount",
    "frozenRowCount",
    "timeZone",
    "range",
    "majorDimension",
    "values",
    "valueRanges",
];

/// JSON in Google's field order, indented by two spaces per level when `indent` is given.
fn write_json(v: &Value, indent: Option<usize>, out: &mut String) {
    // A line break and the level's indentation, when indenting.
    let newline = |out: &mut String, level: Option<usize>| {
        if let Some(level) = level {
            out.push('\n');
            out.push_str(&"  ".repeat(level));
        }
    };
    let inner = indent.map(|l| l + 1);
    // What goes before the `i`-th element of an array or object.
    let separator = |out: &mut String, i: usize| {
        if i > 0 {
            out.push(',');
        }
        newline(out, inner);
    };
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                separator(out, i);
                write_json(e, inner, out);
            }
            newline(out, indent);
            out.push(']');
        }
        Value::Object(o) if !o.is_empty() => {
            let rank = |k: &str| FIELD_ORDER.iter().position(|f| *f == k).unwrap_or(FIELD_ORDER.len());
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_by_key(|k| rank(k));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                separator(out, i);
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(if indent.is_some() { ": " } else { ":" });
                write_json(&o[k], inner, out);
            }
            newline(out, indent);
            out.push('}');
        }
        scalar_or_empty => out.push_str(&scalar_or_empty.to_string()),
    }
}

async fn handle(inner: &Inner, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let path_and_query = req.uri().path_and_query().map_or(path.clone(), |p| p.as_str().to_string());
    let host = req.headers().get("host").and_then(|h| h.to_str().ok()).unwrap_or_default();
    let url = format!("http://{host}{path_and_query}");
    {
        let mut st = inner.lock();
        if url.len() > st.longest_url.len() {
            st.longest_url = url.clone();
        }
        // Google's front end refuses it before any API sees it: no token check, no counter.
        if url.len() > MAX_URL_BYTES {
            st.log.push((method, path_and_query, 414));
            return uri_too_long().into_response(true);
        }
    }
    if path == "/token" {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return inner.token(&method, &body).into_response(true);
    }
    if path.ends_with("/oauth2/v2.0/token") {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let answer = {
            let mut st = inner.lock();
            let answer = st.entra_token(&method, &path, &url, &body);
            st.log.push((method, path_and_query, answer.status));
            answer
        };
        return answer.into_response(false);
    }
    if path.starts_with("/v1/forms/") {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let params = parse_form(&query);
        let answer = {
            let mut st = inner.lock();
            let answer = st.forms(&method, &path, &params, bearer);
            st.log.push((method, path_and_query, answer.status));
            answer
        };
        return answer.into_response(true);
    }
    if path == "/v4" || path.starts_with("/v4/") {
        let bearer = req
            .headers()
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string());
        let params = parse_form(&query);
        let pretty = !params.iter().any(|(k, v)| k == "prettyPrint" && v == "false");
        let (answer, delay) = {
            let mut st = inner.lock();
            let answer = st.sheets(inner, &method, &path, &params, bearer);
            st.log.push((method, path_and_query, answer.status));
            (answer, st.delay)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        return answer.into_response(pretty);
    }
    html_not_found(&path).into_response(true)
}

/// Google's front end's answer to a URL past [`MAX_URL_BYTES`].
fn uri_too_long() -> Answer {
    let page = "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 414 (Request-URI Too \
                Large)!!1</title>\n  <p><b>414.</b> <ins>That’s an error.</ins>\n  <p>The requested URL is too \
                large to process.  <ins>That’s all we know.</ins>\n";
    Answer { status: 414, body: Body::Html(page.to_string()), www_authenticate: false }
}

fn html_not_found(path: &str) -> Answer {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not found on \
         this server.  <ins>That’s all we know.</ins>\n"
    );
    Answer { status: 404, body: Body::Html(page), www_authenticate: false }
}

// ---------------------------------------------------------------------------------------------
// The token endpoint

fn oauth_error(error: &str, description: &str) -> Answer {
    Answer::json(400, json!({ "error": error, "error_description": description }))
}

impl Inner {
    fn token(&self, method: &str, body: &[u8]) -> Answer {
        {
            let mut st = self.lock();
            st.token_requests += 1;
            if st.token_outages > 0 {
                st.token_outages -= 1;
                return google_error(503);
            }
        }
        if method != "POST" {
            return html_not_found("/token");
        }
        let form = parse_form(&String::from_utf8_lossy(body));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(grant_type) = get("grant_type") else {
            return oauth_error("invalid_request", "Missing required parameter: grant_type");
        };
        if grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
            return oauth_error("unsupported_grant_type", &format!("Invalid grant_type: {grant_type}"));
        }
        let Some(assertion) = get("assertion") else {
            return oauth_error("invalid_request", "Missing required parameter: assertion");
        };
        let claims = match self.verify_jwt(assertion) {
            Ok(c) => c,
            Err(answer) => return answer,
        };
        let scopes = claims["scope"].as_str().unwrap_or("");
        if !scopes.split(' ').any(|s| s == READONLY_SCOPE || s == FORMS_SCOPE) {
            return Answer::json(
                400,
                json!({ "error": "invalid_scope",
                        "error_description": "Invalid OAuth scope or ID token audience provided." }),
            );
        }
        let mut st = self.lock();
        st.tokens_issued += 1;
        let mut nonce = [0u8; 12];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).unwrap();
        let token = format!(
            "ya29.c.{}.{}",
            st.tokens_issued,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)
        );
        let scopes = scopes.split(' ').map(str::to_string).collect();
        st.tokens
            .insert(token.clone(), Token { expires_at: unix_now() + TOKEN_LIFETIME, revoked: false, scopes });
        Answer::json(
            200,
            json!({ "access_token": token, "expires_in": TOKEN_LIFETIME, "token_type": "Bearer" }),
        )
    }

    /// Checks the assertion as Google does and returns its claims.
    fn verify_jwt(&self, assertion: &str) -> Result<Value, Answer> {
        let malformed = || oauth_error("invalid_grant", "Invalid JWT: Malformed token.");
        let parts: Vec<&str> = assertion.split('.').collect();
        let [head, payload, signature] = parts[..] else {
            return Err(malformed());
        };
        // yup-oauth2 pads its base64url; Google takes it either way.
        let decode =
            |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='));
        let (Ok(h), Ok(p), Ok(sig)) = (decode(head), decode(payload), decode(signature)) else {
            return Err(malformed());
        };
        let (Ok(header), Ok(claims)) =
            (serde_json::from_slice::<Value>(&h), serde_json::from_slice::<Value>(&p))
        else {
            return Err(malformed());
        };
        if header["alg"] != "RS256" {
            return Err(oauth_error("invalid_grant", "Invalid JWT: Unsupported signing algorithm."));
        }
        if claims["iss"] != Emulator::SERVICE_ACCOUNT {
            return Err(oauth_error("invalid_grant", "Invalid grant: account not found"));
        }
        let signed = &assertion[..head.len() + 1 + payload.len()];
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            self.public_key.as_slice(),
        );
        if key.verify(signed.as_bytes(), &sig).is_err() {
            return Err(oauth_error("invalid_grant", "Invalid JWT Signature."));
        }
        if claims["aud"] != self.token_uri.as_str() {
            return Err(oauth_error(
                "invalid_grant",
                &format!("Invalid JWT: Failed audience check. The right audience is {}", self.token_uri),
            ));
        }
        let now = unix_now();
        let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
            return Err(malformed());
        };
        // A minute of clock skew is forgiven, as Google does.
        if exp <= now || iat > now + 60 || exp - iat > 3600 || exp <= iat {
            return Err(oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable \
                 timeframe. Check your iat and exp values in the JWT claim.",
            ));
        }
        Ok(claims)
    }
}

// ---------------------------------------------------------------------------------------------
// The Sheets API

/// Google's JSON error for `status`, with its canonical message.
fn google_error(status: u16) -> Answer {
    let (code, message) = match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie \
             or other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
        ),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "Requested entity was not found."),
        409 => ("ABORTED", "The operation was aborted."),
        429 => {
            return Answer::json(
                429,
                json!({ "error": {
                    "code": 429,
                    "message": "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per \
                                minute per user' of service 'sheets.googleapis.com' for consumer \
                                'project_number:100000000000'.",
                    "status": "RESOURCE_EXHAUSTED",
                    "details": [
                        { "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                          "reason": "RATE_LIMIT_EXCEEDED",
                          "domain": "googleapis.com",
                          "metadata": {
                              "quota_limit": "ReadRequestsPerMinutePerUser",
                              "quota_metric": "sheets.googleapis.com/read_requests",
                              "quota_location": "global",
                              "quota_limit_value": "60",
                              "consumer": "projects/100000000000",
                              "service": "sheets.googleapis.com" } },
                        { "@type": "type.googleapis.com/google.rpc.Help",
                          "links": [ { "description": "Request a higher quota limit.",
                                       "url": "https://cloud.google.com/docs/quotas/help/request_increase" } ] }
                    ]
                } }),
            );
        }
        500 => ("INTERNAL", "Internal error encountered."),
        501 => ("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled."),
        502 => {
            let page = "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server \
                        Error)!!1</title>\n  <p><b>502.</b> <ins>That’s an error.</ins>\n  <p>The server \
                        encountered a temporary error and could not complete your request.<p>Please try again \
                        in 30 seconds.  <ins>That’s all we know.</ins>\n";
            return Answer { status: 502, body: Body::Html(page.to_string()), www_authenticate: false };
        }
        503 => ("UNAVAILABLE", "The service is currently unavailable."),
        504 => ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
        _ => ("UNKNOWN", "Unknown Error."),
    };
    api_error(status, code, message)
}

/// Google's 403 for an API not enabled in the caller's project.
fn service_disabled(service: &str, title: &str) -> Answer {
    let message = format!(
        "{title} has not been used in project 100000000000 before or it is disabled. Enable it by visiting \
         https://console.developers.google.com/apis/api/{service}/overview?project=100000000000 then retry. If you \
         enabled this API recently, wait a few minutes for the action to propagate to our systems and retry."
    );
    Answer::json(
        403,
        json!({ "error": {
            "code": 403,
            "message": message,
            "status": "PERMISSION_DENIED",
            "details": [
                { "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                  "reason": "SERVICE_DISABLED",
                  "domain": "googleapis.com",
                  "metadata": { "service": service, "consumer": "projects/100000000000" } }
            ]
        } }),
    )
}

fn api_error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(status, json!({ "error": { "code": status, "message": message, "status": code } }))
}

fn invalid_argument(message: &str) -> Answer {
    api_error(400, "INVALID_ARGUMENT", message)
}

/// A 400 naming one bad parameter, as Google words a query parameter it cannot bind.
fn bad_parameter(description: String) -> Answer {
    Answer::json(
        400,
        json!({ "error": {
            "code": 400,
            "message": description,
            "status": "INVALID_ARGUMENT",
            "details": [ { "@type": "type.googleapis.com/google.rpc.BadRequest",
                           "fieldViolations": [ { "description": description } ] } ]
        } }),
    )
}

/// Which method a path names.
enum Route {
    Spreadsheet(String),
    Values(String, String),
    BatchGet(String),
}

fn route(method: &str, path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v4/spreadsheets/")?;
    if method != "GET" {
        return None;
    }
    let (id, tail) = match rest.split_once('/') {
        Some((id, tail)) => (id, Some(tail)),
        None => (rest, None),
    };
    match tail {
        Some("values:batchGet") => Some(Route::BatchGet(id.to_string())),
        None if !id.is_empty() => Some(Route::Spreadsheet(id.to_string())),
        Some(t) => {
            let range = t.strip_prefix("values/")?;
            if range.is_empty() || range.contains('/') {
                return None;
            }
            Some(Route::Values(id.to_string(), percent_decode(range, false)?))
        }
        None => None,
    }
}

const COMMON_PARAMS: &[&str] = &[
    "$.xgafv",
    "access_token",
    "alt",
    "callback",
    "fields",
    "key",
    "oauth_token",
    "prettyPrint",
    "quotaUser",
    "uploadType",
    "upload_protocol",
];

#[derive(Clone, Copy, PartialEq)]
enum Dimension {
    Rows,
    Columns,
}

/// `valueRenderOption` and `dateTimeRenderOption`. Cells hold no formulas, so FORMULA renders
/// as UNFORMATTED_VALUE does.
#[derive(Clone, Copy, PartialEq)]
struct Render {
    formatted: bool,
    dates_as_text: bool,
}

/// A resolved range: 1-based, inclusive, inside the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    r1: u32,
    c1: u32,
    r2: u32,
    c2: u32,
}

impl State {
    /// Entra ID's token endpoint, client credentials grant (secret in the body).
    fn entra_token(&mut self, method: &str, path: &str, url: &str, body: &[u8]) -> Answer {
        let Some(entra) = self.entra.as_mut() else { return html_not_found(path) };
        let entra_error = |status: u16, error: &str, description: &str| {
            Answer::json(
                status,
                json!({ "error": error,
                        "error_description": format!("{description}\r\nTrace ID: 0000\r\nCorrelation ID: 0000\r\nTimestamp: 2026-12-01 00:00:00Z"),
                        "error_codes": [7000215], "timestamp": "2026-12-01 00:00:00Z" }),
            )
        };
        if method != "POST" {
            return html_not_found(path);
        }
        if entra.outages > 0 {
            entra.outages -= 1;
            return Answer {
                status: 503,
                body: Body::Html("<html><body>Service Unavailable</body></html>".into()),
                www_authenticate: false,
            };
        }
        if path != format!("/{}/oauth2/v2.0/token", entra.tenant) {
            return entra_error(400, "invalid_request", "AADSTS90002: Tenant not found.");
        }
        let form = parse_form(&String::from_utf8_lossy(body));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or_default();
        if get("grant_type") != "client_credentials" {
            return entra_error(
                400,
                "unsupported_grant_type",
                "AADSTS70003: The app requested an unsupported grant type.",
            );
        }
        if get("client_id") != entra.client_id {
            return entra_error(
                400,
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory.",
            );
        }
        // The audience Entra ID expects: the endpoint as it was called.
        let token_url = url;
        match (&entra.certificate, get("client_assertion")) {
            (Some(certificate), assertion) => {
                if get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
                    return entra_error(
                        401,
                        "invalid_client",
                        "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                    );
                }
                if let Err(why) = certificate.verify(assertion, &entra.client_id, token_url) {
                    return entra_error(401, "invalid_client", &why);
                }
            }
            (None, _) if get("client_secret") != entra.client_secret || entra.client_secret.is_empty() => {
                return entra_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
            }
            (None, _) => {}
        }
        if get("scope") != "https://outlook.office365.com/.default" {
            return entra_error(
                400,
                "invalid_scope",
                "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
            );
        }
        entra.issued += 1;
        let token = format!("eyJ0eXAiOiJKV1QiLCJub25jZSI6.{}.{}", entra.issued, unix_now());
        let mut file = std::fs::OpenOptions::new().append(true).open(&entra.tokens).unwrap();
        std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes()).unwrap();
        Answer::json(
            200,
            json!({ "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token }),
        )
    }

    /// `forms.responses.list`.
    fn forms(
        &mut self,
        method: &str,
        path: &str,
        params: &[(String, String)],
        bearer: Option<String>,
    ) -> Answer {
        let now = unix_now();
        let scoped = bearer
            .and_then(|t| self.tokens.get(&t))
            .filter(|t| !t.revoked && t.expires_at > now)
            .map(|t| t.scopes.iter().any(|s| s == FORMS_SCOPE));
        match scoped {
            None => {
                let mut a = google_error(401);
                a.www_authenticate = true;
                return a;
            }
            Some(false) => {
                return api_error(
                    403,
                    "PERMISSION_DENIED",
                    "Request had insufficient authentication scopes.",
                );
            }
            Some(true) => {}
        }
        if self.faults.1 > 0 {
            self.faults.1 -= 1;
            return google_error(self.faults.0);
        }
        let Some(id) = path.strip_prefix("/v1/forms/").and_then(|r| r.strip_suffix("/responses")) else {
            return html_not_found(path);
        };
        if method != "GET" {
            return html_not_found(path);
        }
        let Some(form) = self.form.as_ref().filter(|f| f.id == id) else { return google_error(404) };
        if !form.shared {
            return google_error(403);
        }
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let since = match param("filter") {
            None => None,
            Some(f) => {
                let f = f.trim();
                let parsed = f
                    .strip_prefix("timestamp >= ")
                    .map(|t| (t, true))
                    .or_else(|| f.strip_prefix("timestamp > ").map(|t| (t, false)))
                    .and_then(|(t, inclusive)| Some((t.trim().parse::<jiff::Timestamp>().ok()?, inclusive)));
                match parsed {
                    Some(p) => Some(p),
                    None => return invalid_argument(&format!("Invalid filter: {f}")),
                }
            }
        };
        let page_size =
            param("pageSize").and_then(|p| p.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(5000);
        let start = param("pageToken")
            .and_then(|t| t.strip_prefix("p"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        let mut matching: Vec<&FormResponse> = form
            .responses
            .iter()
            .filter(|r| match since {
                None => true,
                Some((t, true)) => r.last_submitted >= t,
                Some((t, false)) => r.last_submitted > t,
            })
            .collect();
        matching.reverse();
        let page: Vec<Value> = matching
            .iter()
            .skip(start)
            .take(page_size)
            .map(|r| {
                let mut v = json!({
                    "formId": form.id,
                    "responseId": r.id,
                    "createTime": r.create_time,
                    "lastSubmittedTime": r.last_submitted.to_string(),
                    "answers": {},
                });
                if !r.email.is_empty() {
                    v["respondentEmail"] = json!(r.email);
                }
                v
            })
            .collect();
        let mut body = json!({});
        if !page.is_empty() {
            body["responses"] = json!(page);
        }
        if start + page_size < matching.len() {
            body["nextPageToken"] = json!(format!("p{}", start + page_size));
        }
        Answer::json(200, body)
    }

    fn sheets(
        &mut self,
        inner: &Inner,
        method: &str,
        path: &str,
        params: &[(String, String)],
        bearer: Option<String>,
    ) -> Answer {
        self.sheets_requests += 1;
        let route = route(method, path);
        if matches!(route, Some(Route::Values(..) | Route::BatchGet(_))) {
            self.values_requests += 1;
        }
        let token =
            bearer.or_else(|| params.iter().find(|(k, _)| k == "access_token").map(|(_, v)| v.clone()));
        let Some(token) = token else {
            let mut a = api_error(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, \
                 login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
            );
            a.www_authenticate = true;
            return a;
        };
        let now = unix_now();
        if !self.tokens.get(&token).is_some_and(|t| !t.revoked && t.expires_at > now) {
            let mut a = google_error(401);
            a.www_authenticate = true;
            return a;
        }
        if self.api_disabled {
            return service_disabled("sheets.googleapis.com", "Google Sheets API");
        }
        if self.faults.1 > 0 {
            self.faults.1 -= 1;
            return google_error(self.faults.0);
        }
        if matches!(route, Some(Route::BatchGet(_))) && self.batch_get_faults.1 > 0 {
            self.batch_get_faults.1 -= 1;
            return google_error(self.batch_get_faults.0);
        }
        let Some(route) = route else {
            return html_not_found(path);
        };
        let (id, allowed): (&str, &[&str]) = match &route {
            Route::Spreadsheet(id) => (id, &["ranges", "includeGridData", "excludeTablesInBandedRanges"]),
            Route::Values(id, _) => (id, &["valueRenderOption", "dateTimeRenderOption", "majorDimension"]),
            Route::BatchGet(id) => {
                (id, &["ranges", "valueRenderOption", "dateTimeRenderOption", "majorDimension"])
            }
        };
        if let Some((name, _)) = params
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()) && !COMMON_PARAMS.contains(&k.as_str()))
        {
            return bad_parameter(format!(
                "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. Field \
                 '{name}' could not be found in request message."
            ));
        }
        if id != inner.spreadsheet_id {
            return google_error(404);
        }
        if !self.shared {
            return google_error(403);
        }
        let result = match route {
            Route::Spreadsheet(_) => Ok(self.spreadsheet(inner)),
            Route::Values(_, range) => {
                self.value_options(params).and_then(|(dim, render)| self.value_range(&range, dim, render))
            }
            Route::BatchGet(_) => self.value_options(params).and_then(|(dim, render)| {
                let ranges = params.iter().filter(|(k, _)| k == "ranges").map(|(_, v)| v.as_str());
                let value_ranges =
                    ranges.map(|r| self.value_range(r, dim, render)).collect::<Result<Vec<_>, _>>()?;
                let mut out = json!({ "spreadsheetId": inner.spreadsheet_id });
                if !value_ranges.is_empty() {
                    out["valueRanges"] = Value::Array(value_ranges);
                }
                Ok(out)
            }),
        };
        let body = match result {
            Ok(body) => body,
            Err(answer) => return answer,
        };
        let body = match params.iter().find(|(k, _)| k == "fields") {
            Some((_, mask)) => match apply_fields(&body, mask) {
                Ok(b) => b,
                Err(answer) => return answer,
            },
            None => body,
        };
        // Counted from what is sent, after the mask.
        self.cells_served += count_cells(&body);
        Answer::json(200, body)
    }

    fn spreadsheet(&self, inner: &Inner) -> Value {
        json!({
            "spreadsheetId": inner.spreadsheet_id,
            "properties": {
                "title": "Respuestas",
                "locale": "es_419",
                "autoRecalc": "ON_CHANGE",
                "timeZone": self.time_zone,
            },
            "sheets": std::iter::once(json!({ "properties": {
                "sheetId": 0,
                "title": self.sheet_title,
                "index": 0,
                "sheetType": "GRID",
                "gridProperties": {
                    "rowCount": self.row_count,
                    "columnCount": self.column_count,
                    "frozenRowCount": 1,
                },
            } }))
            .chain(self.tabs.iter().enumerate().map(|(i, t)| json!({ "properties": {
                "sheetId": i + 1,
                "title": t.title,
                "index": i + 1,
                "sheetType": "GRID",
                "gridProperties": { "rowCount": t.row_count, "columnCount": t.column_count },
            } })))
            .collect::<Vec<_>>(),
            "spreadsheetUrl": format!("https://docs.google.com/spreadsheets/d/{}/edit", inner.spreadsheet_id),
        })
    }

    fn value_options(&self, params: &[(String, String)]) -> Result<(Dimension, Render), Answer> {
        let enum_error = |field: &str, ty: &str, v: &str| {
            bad_parameter(format!(
                "Invalid value at '{field}' (type.googleapis.com/google.apps.sheets.v4.{ty}), \"{v}\""
            ))
        };
        let mut dim = Dimension::Rows;
        let mut render = Render { formatted: true, dates_as_text: false };
        for (k, v) in params {
            match k.as_str() {
                "majorDimension" => {
                    dim = match v.as_str() {
                        "ROWS" | "DIMENSION_UNSPECIFIED" => Dimension::Rows,
                        "COLUMNS" => Dimension::Columns,
                        _ => return Err(enum_error("major_dimension", "Dimension", v)),
                    }
                }
                "valueRenderOption" => {
                    render.formatted = match v.as_str() {
                        "FORMATTED_VALUE" => true,
                        "UNFORMATTED_VALUE" | "FORMULA" => false,
                        _ => return Err(enum_error("value_render_option", "ValueRenderOption", v)),
                    }
                }
                "dateTimeRenderOption" => {
                    render.dates_as_text = match v.as_str() {
                        "SERIAL_NUMBER" => false,
                        "FORMATTED_STRING" => true,
                        _ => return Err(enum_error("date_time_render_option", "DateTimeRenderOption", v)),
                    }
                }
                _ => {}
            }
        }
        Ok((dim, render))
    }

    /// Every tab's title, cells and grid, the first tab first.
    fn grids(&self) -> impl Iterator<Item = Grid<'_>> {
        let first = Grid {
            title: &self.sheet_title,
            rows: &self.rows,
            row_count: self.row_count,
            column_count: self.column_count,
        };
        std::iter::once(first).chain(self.tabs.iter().map(|t| Grid {
            title: &t.title,
            rows: &t.rows,
            row_count: t.row_count,
            column_count: t.column_count,
        }))
    }

    /// A ValueRange for `range` as received, or Google's 400.
    fn value_range(&self, range: &str, dim: Dimension, render: Render) -> Result<Value, Answer> {
        let (grid, rect) = self.resolve(range)?;
        let cell = |r: u32, c: u32| -> Option<Value> {
            let v = grid.rows.get(r as usize - 1)?.get(c as usize - 1)?;
            (!cell_is_empty(v)).then(|| render_cell(v, render))
        };
        let (outer, inner) = match dim {
            Dimension::Rows => ((rect.r1, rect.r2), (rect.c1, rect.c2)),
            Dimension::Columns => ((rect.c1, rect.c2), (rect.r1, rect.r2)),
        };
        // Rows past the data are empty: stop there rather than walk a large grid.
        let last_data_row = grid.rows.len() as u32;
        let mut lines: Vec<Vec<Value>> = Vec::new();
        for o in outer.0..=outer.1 {
            if dim == Dimension::Rows && o > last_data_row {
                break;
            }
            let mut line: Vec<Value> = Vec::new();
            for i in inner.0..=inner.1 {
                if dim == Dimension::Columns && i > last_data_row {
                    break;
                }
                let (r, c) = if dim == Dimension::Rows { (o, i) } else { (i, o) };
                line.push(cell(r, c).unwrap_or_else(|| Value::String(String::new())));
            }
            while line.last().is_some_and(cell_is_empty) {
                line.pop();
            }
            lines.push(line);
        }
        while lines.last().is_some_and(Vec::is_empty) {
            lines.pop();
        }
        let mut out = json!({
            "range": format!("{}!{}", quote_sheet(grid.title), a1(rect)),
            "majorDimension": if dim == Dimension::Rows { "ROWS" } else { "COLUMNS" },
        });
        if !lines.is_empty() {
            out["values"] = json!(lines);
        }
        Ok(out)
    }

    /// Parses an A1 range against the tabs; returns the tab it names and the range in its grid.
    fn resolve(&self, range: &str) -> Result<(Grid<'_>, Rect), Answer> {
        let unparsable = || invalid_argument(&format!("Unable to parse range: {range}"));
        let named = |name: &str| self.grids().find(|g| g.title == name).ok_or_else(unparsable);
        let (grid, cells): (Grid<'_>, Option<&str>) = if let Some(rest) = range.strip_prefix('\'') {
            let (name, after) = split_quoted(rest).ok_or_else(unparsable)?;
            let grid = named(&name)?;
            match after {
                "" => (grid, None),
                a => (grid, Some(a.strip_prefix('!').ok_or_else(unparsable)?)),
            }
        } else if let Some((name, cells)) = range.split_once('!') {
            if !plain_unquoted(name) {
                return Err(unparsable());
            }
            (named(name)?, Some(cells))
        } else if let Some(grid) = self.grids().find(|g| g.title == range && plain_unquoted(range)) {
            (grid, None)
        } else {
            // No sheet named: the first sheet.
            (self.grids().next().expect("the first tab"), Some(range))
        };
        let title = grid.title;
        let Some(cells) = cells else {
            return Ok((grid, Rect { r1: 1, c1: 1, r2: grid.row_count, c2: grid.column_count }));
        };
        let (a, b) = match cells.split_once(':') {
            Some((a, b)) => {
                (parse_end(a).ok_or_else(unparsable)?, Some(parse_end(b).ok_or_else(unparsable)?))
            }
            None => (parse_end(cells).ok_or_else(unparsable)?, None),
        };
        let b = match b {
            None if a.col.is_some() && a.row.is_some() => a,
            None => return Err(unparsable()),
            Some(b) => {
                let row_only = |e: &End| e.col.is_none();
                let col_only = |e: &End| e.row.is_none();
                if (row_only(&a) && col_only(&b)) || (col_only(&a) && row_only(&b)) {
                    return Err(unparsable());
                }
                b
            }
        };
        let rows_past = [a.row, b.row].into_iter().flatten().any(|r| r > grid.row_count);
        let cols_past = [a.col, b.col].into_iter().flatten().any(|c| c > grid.column_count);
        if rows_past || cols_past {
            return Err(invalid_argument(&format!(
                "Range ({}!{}) exceeds grid limits. Max rows: {}, max columns: {}",
                quote_sheet(title),
                cells.to_ascii_uppercase(),
                grid.row_count,
                grid.column_count
            )));
        }
        let (r1, r2) = (a.row.unwrap_or(1), b.row.unwrap_or(grid.row_count));
        let (c1, c2) = (a.col.unwrap_or(1), b.col.unwrap_or(grid.column_count));
        Ok((grid, Rect { r1: r1.min(r2), r2: r1.max(r2), c1: c1.min(c2), c2: c1.max(c2) }))
    }
}

/// A value as `valueRenderOption` and `dateTimeRenderOption` render it.
fn render_cell(v: &Value, render: Render) -> Value {
    if let Some((serial, text)) = date_time_parts(v) {
        // The date-time option only matters to an unformatted read.
        return if render.formatted || render.dates_as_text { json!(text) } else { number(serial) };
    }
    if !render.formatted {
        return match v.as_f64() {
            Some(x) if v.is_f64() => number(x),
            _ => v.clone(),
        };
    }
    match v {
        Value::Bool(b) => Value::String(if *b { "TRUE" } else { "FALSE" }.to_string()),
        Value::Number(n) => Value::String(format_number(n)),
        other => other.clone(),
    }
}

/// A double as Google's JSON writes it: a whole one without a fraction (3, not 3.0).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 { json!(x as i64) } else { json!(x) }
}

/// A number as Sheets' automatic format shows it: at most 15 significant digits; es_419 writes
/// the decimal point as `.`.
fn format_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let x = n.as_f64().unwrap_or(0.0);
    let rounded: f64 = format!("{x:.14e}").parse().unwrap_or(x);
    rounded.to_string()
}

fn count_cells(body: &Value) -> usize {
    let count = |vr: &Value| {
        vr.get("values").and_then(Value::as_array).map_or(0, |rows| {
            rows.iter().filter_map(Value::as_array).flatten().filter(|c| !cell_is_empty(c)).count()
        })
    };
    match body.get("valueRanges").and_then(Value::as_array) {
        Some(vrs) => vrs.iter().map(count).sum(),
        None => count(body),
    }
}

// ---------------------------------------------------------------------------------------------
// A1 notation

/// One end of a range: `B3`, `B` or `3`, with optional `$`.
#[derive(Clone, Copy)]
struct End {
    col: Option<u32>,
    row: Option<u32>,
}

fn parse_end(s: &str) -> Option<End> {
    let s = s.strip_prefix('$').unwrap_or(s);
    let letters = s.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (l, rest) = s.split_at(letters);
    let digits = rest.strip_prefix('$').filter(|_| letters > 0).unwrap_or(rest);
    if letters > 7 || (l.is_empty() && digits.is_empty()) {
        return None;
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return None;
    }
    let col = (!l.is_empty())
        .then(|| l.bytes().fold(0u32, |n, b| n * 26 + u32::from(b.to_ascii_uppercase() - b'A' + 1)));
    let row = if digits.is_empty() { None } else { Some(digits.parse::<u32>().ok()?) };
    Some(End { col, row })
}

fn a1(r: Rect) -> String {
    let start = format!("{}{}", column_letters(r.c1), r.r1);
    if r.r1 == r.r2 && r.c1 == r.c2 { start } else { format!("{start}:{}{}", column_letters(r.c2), r.r2) }
}

/// A sheet name as Google writes it in a range: quoted (with `''` for `'`) unless it is plain.
fn quote_sheet(title: &str) -> String {
    let plain = !title.is_empty()
        && title.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !title.as_bytes()[0].is_ascii_digit()
        // Not a cell (`A1`) nor an R1C1 reference (`R1C1`).
        && parse_end(title).is_none_or(|e| e.col.is_none() || e.row.is_none())
        && !is_r1c1(title);
    if plain { title.to_string() } else { format!("'{}'", title.replace('\'', "''")) }
}

fn is_r1c1(s: &str) -> bool {
    let t = s.to_ascii_uppercase();
    let Some(rest) = t.strip_prefix('R') else { return false };
    let Some((r, c)) = rest.split_once('C') else { return false };
    r.bytes().all(|b| b.is_ascii_digit()) && c.bytes().all(|b| b.is_ascii_digit())
}

/// An unquoted sheet name Google reads: letters, digits, `_`, `.` and inner spaces.
fn plain_unquoted(name: &str) -> bool {
    !name.is_empty()
        && name.trim() == name
        && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == ' ')
}

/// The name inside quotes (the opening `'` already taken) and what follows the closing quote.
fn split_quoted(s: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                chars.next();
                name.push('\'');
            } else {
                return Some((name, &s[i + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// URLs and field masks

/// `%XX` decoding; in a form (query or body) `+` is a space as well. None when the bytes are not
/// UTF-8.
fn percent_decode(s: &str, form: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(k, true).unwrap_or_else(|| k.to_string()),
                percent_decode(v, true).unwrap_or_else(|| v.to_string()),
            )
        })
        .collect()
}

/// A parsed `fields` mask: each name keeps its subtree whole (`None`) or masked.
#[derive(Default)]
struct Mask(BTreeMap<String, Option<Mask>>);

/// The fields the emulated answers have, and the ones Google has that they leave out (those
/// ending in `.*` are accepted with anything below them).
const KNOWN_FIELDS: &[&str] = &[
    "spreadsheetId",
    "spreadsheetUrl",
    "properties.title",
    "properties.locale",
    "properties.autoRecalc",
    "properties.timeZone",
    "properties.defaultFormat.*",
    "properties.iterativeCalculationSettings.*",
    "properties.spreadsheetTheme.*",
    "properties.importFunctionsExternalUrlAccessAllowed",
    "sheets.properties.sheetId",
    "sheets.properties.title",
    "sheets.properties.index",
    "sheets.properties.sheetType",
    "sheets.properties.hidden",
    "sheets.properties.rightToLeft",
    "sheets.properties.tabColor.*",
    "sheets.properties.tabColorStyle.*",
    "sheets.properties.dataSourceSheetProperties.*",
    "sheets.properties.gridProperties.rowCount",
    "sheets.properties.gridProperties.columnCount",
    "sheets.properties.gridProperties.frozenRowCount",
    "sheets.properties.gridProperties.frozenColumnCount",
    "sheets.properties.gridProperties.hideGridlines",
    "sheets.properties.gridProperties.rowGroupControlAfter",
    "sheets.properties.gridProperties.columnGroupControlAfter",
    "sheets.data.*",
    "sheets.merges.*",
    "sheets.conditionalFormats.*",
    "sheets.filterViews.*",
    "sheets.protectedRanges.*",
    "sheets.basicFilter.*",
    "sheets.charts.*",
    "sheets.bandedRanges.*",
    "sheets.developerMetadata.*",
    "sheets.rowGroups.*",
    "sheets.columnGroups.*",
    "sheets.slicers.*",
    "sheets.tables.*",
    "namedRanges.*",
    "developerMetadata.*",
    "dataSources.*",
    "dataSourceSchedules.*",
    "range",
    "majorDimension",
    "values",
    "valueRanges.range",
    "valueRanges.majorDimension",
    "valueRanges.values",
];

fn parse_mask(s: &str) -> Option<Mask> {
    let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pos = 0;
    let mask = parse_mask_list(&chars, &mut pos)?;
    (pos == chars.len()).then_some(mask)
}

fn parse_mask_list(chars: &[char], pos: &mut usize) -> Option<Mask> {
    let mut mask = Mask::default();
    loop {
        let mut path = Vec::new();
        loop {
            let start = *pos;
            while chars.get(*pos).is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '*') {
                *pos += 1;
            }
            if *pos == start {
                return None;
            }
            path.push(chars[start..*pos].iter().collect::<String>());
            if matches!(chars.get(*pos), Some('.' | '/')) {
                *pos += 1;
            } else {
                break;
            }
        }
        let sub = if chars.get(*pos) == Some(&'(') {
            *pos += 1;
            let sub = parse_mask_list(chars, pos)?;
            if chars.get(*pos) != Some(&')') {
                return None;
            }
            *pos += 1;
            Some(sub)
        } else {
            None
        };
        insert_mask(&mut mask, &path, sub);
        if chars.get(*pos) == Some(&',') {
            *pos += 1;
        } else {
            return Some(mask);
        }
    }
}

fn insert_mask(mask: &mut Mask, path: &[String], sub: Option<Mask>) {
    let Some((first, rest)) = path.split_first() else { return };
    if rest.is_empty() {
        match (mask.0.get_mut(first), sub) {
            (Some(Some(existing)), Some(sub)) => existing.0.extend(sub.0),
            (Some(slot), None) => *slot = None,
            (Some(None), Some(_)) => {}
            (None, sub) => {
                mask.0.insert(first.clone(), sub);
            }
        }
        return;
    }
    // A name already kept whole stays whole.
    if let Some(m) = mask.0.entry(first.clone()).or_insert_with(|| Some(Mask::default())) {
        insert_mask(m, rest, sub);
    }
}

/// Every path of the mask, dotted, for checking against KNOWN_FIELDS.
fn mask_paths(mask: &Mask, prefix: &str, out: &mut Vec<String>) {
    for (name, sub) in &mask.0 {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match sub {
            Some(m) if !m.0.is_empty() => mask_paths(m, &path, out),
            _ => out.push(path),
        }
    }
}

fn known_field(path: &str) -> bool {
    if path == "*" || path.ends_with(".*") && known_field(&path[..path.len() - 2]) {
        return true;
    }
    KNOWN_FIELDS.iter().any(|k| match k.strip_suffix(".*") {
        Some(opaque) => path == opaque || path.starts_with(&format!("{opaque}.")),
        None => *k == path || k.starts_with(&format!("{path}.")),
    })
}

fn apply_fields(body: &Value, fields: &str) -> Result<Value, Answer> {
    let Some(mask) = parse_mask(fields) else {
        return Err(bad_parameter(format!("Invalid field selection {fields}")));
    };
    let mut paths = Vec::new();
    mask_paths(&mask, "", &mut paths);
    if let Some(bad) = paths.iter().find(|p| !known_field(p)) {
        return Err(Answer::json(
            400,
            json!({ "error": {
                "code": 400,
                "message": "Request contains an invalid argument.",
                "status": "INVALID_ARGUMENT",
                "details": [ { "@type": "type.googleapis.com/google.rpc.BadRequest",
                               "fieldViolations": [ { "field": "fields",
                                   "description": format!("Error expanding 'fields' parameter. Cannot find \
                                                           matching fields for path '{bad}'.") } ] } ]
            } }),
        ));
    }
    Ok(mask_value(body, &mask))
}

fn mask_value(v: &Value, mask: &Mask) -> Value {
    if mask.0.contains_key("*") {
        return v.clone();
    }
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter_map(|(k, v)| match mask.0.get(k)? {
                    None => Some((k.clone(), v.clone())),
                    Some(sub) => Some((k.clone(), mask_value(v, sub))),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|e| mask_value(e, mask)).collect()),
        other => other.clone(),
    }
}
