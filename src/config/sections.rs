//! The sections of the configuration file as written: every key documented, with its default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::civil::{Date, Time};
use serde::Deserialize;

use super::SecretRef;
pub use crate::hooks::HookCommand;
use crate::request::Kind;

/// Top-level keys, read first so that each section can fail on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopLevel {
    #[serde(default = "default_state_dir")]
    pub(super) state_dir: PathBuf,
    #[serde(default = "default_poll_interval_secs")]
    pub(super) poll_interval_secs: u64,
    pub(super) control_socket: Option<PathBuf>,
    pub(super) control_group: Option<String>,
    #[serde(default = "default_retention_days")]
    pub(super) retention_days: u32,
    #[serde(default = "default_memory_ceiling_mib")]
    pub(super) memory_ceiling_mib: u64,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/cuentas")
}
fn default_poll_interval_secs() -> u64 {
    60
}
fn default_retention_days() -> u32 {
    365
}
fn default_memory_ceiling_mib() -> u64 {
    128
}

/// `[time]`: time zone, business hours and extra non-working days.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeConfig {
    /// IANA time zone of the entity. Default `America/Bogota`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Start of the working day, `HH:MM`. Default `07:30`.
    #[serde(default = "default_day_start")]
    pub business_day_start: Time,
    /// End of the working day, `HH:MM`. Default `17:00`.
    #[serde(default = "default_day_end")]
    pub business_day_end: Time,
    /// Days off besides Colombian public holidays (computed), as `yyyy-mm-dd`.
    #[serde(default)]
    pub extra_non_working_days: Vec<Date>,
    /// The demo's own clock: the instant cuentas takes for "now" when it starts (RFC 3339 with
    /// its offset, e.g. `2026-11-30T10:00:00-05:00`), which then advances with real time. The
    /// demo answers the same whatever day it is run. Allowed only with the dry-run directory and
    /// the file spool, so that it can never act on real systems. Default: none (the real clock).
    #[serde(default)]
    pub demo_clock: Option<jiff::Timestamp>,
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            time_zone: default_time_zone(),
            business_day_start: default_day_start(),
            business_day_end: default_day_end(),
            extra_non_working_days: Vec::new(),
            demo_clock: None,
        }
    }
}

fn default_time_zone() -> String {
    "America/Bogota".into()
}
fn default_day_start() -> Time {
    Time::constant(7, 30, 0, 0)
}
fn default_day_end() -> Time {
    Time::constant(17, 0, 0, 0)
}

/// `[source]`: where form responses come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A Google Forms response export (CSV, comma-separated, UTF-8, header row first).
    Csv {
        /// The CSV file.
        path: PathBuf,
        #[serde(default)]
        start_at: Option<StartAt>,
    },
    /// The form's response spreadsheet, read through the Google Sheets API with a service
    /// account that the spreadsheet is shared with (as viewer).
    GoogleSheet {
        /// The id in the spreadsheet's URL: `https://docs.google.com/spreadsheets/d/<id>/edit`.
        spreadsheet_id: String,
        /// The tab with the responses; default: the first tab (Forms names it
        /// «Respuestas de formulario 1»).
        #[serde(default)]
        sheet: Option<String>,
        /// The service account's JSON key: a file, or `credential:NAME` (systemd LoadCredential=).
        service_account_key: SecretRef,
        /// The API's address, ending with `/`. Default `https://sheets.googleapis.com/`; change
        /// it only for a proxy.
        #[serde(default = "default_sheets_api")]
        api_base_url: String,
        /// Seconds to wait for one answer from Google. Default 30.
        #[serde(default = "default_sheets_timeout_secs")]
        timeout_secs: u64,
        /// Seconds between two reads of the rows of open requests, to see edited responses
        /// (one request for all of them). Default 600.
        #[serde(default = "default_edit_check_interval_secs")]
        edit_check_interval_secs: u64,
        /// The form that writes the responses (the id in its edit URL,
        /// `https://docs.google.com/forms/d/<id>/edit`): set, a row counts only if the form
        /// holds a response of the same address and time (Google Forms API); a row written into
        /// the spreadsheet by hand is refused and the administrators are told.
        #[serde(default)]
        form_id: Option<String>,
        /// The Forms API's address, ending with `/`. Default `https://forms.googleapis.com/`.
        #[serde(default = "default_forms_api")]
        forms_api_base_url: String,
        /// Where the entity starts (see [`StartAt`]).
        #[serde(default)]
        start_at: Option<StartAt>,
    },
}

impl SourceConfig {
    /// Where the entity starts: responses before it are never acted on or answered.
    pub fn start_at(&self) -> Option<StartAt> {
        match self {
            SourceConfig::Csv { start_at, .. } | SourceConfig::GoogleSheet { start_at, .. } => *start_at,
        }
    }
}

/// `[source] start_at`: where an entity adopting cuentas with a form that already has
/// responses starts. Responses before it are never registered, acted on or answered; the
/// first start with responses and no `start_at` is refused, so that nobody's old requests
/// are carried out by surprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StartAt {
    /// The first row taken (2 is the first response: take them all).
    Row(u32),
    /// The first submission time taken, in the entity's time zone (`"2026-12-07 08:00"`).
    Time(jiff::civil::DateTime),
}

impl StartAt {
    /// Whether a response at `row`, submitted at `submitted` (entity time), comes before the
    /// start. A row whose time cannot be read is not shown to be from before: it is taken, and
    /// its requester told what is wrong with it.
    pub fn is_before(&self, row: u32, submitted: Option<jiff::civil::DateTime>) -> bool {
        match self {
            StartAt::Row(first) => row < *first,
            StartAt::Time(first) => submitted.is_some_and(|at| at < *first),
        }
    }
}

fn default_forms_api() -> String {
    "https://forms.googleapis.com/".into()
}

fn default_sheets_api() -> String {
    "https://sheets.googleapis.com/".into()
}
fn default_sheets_timeout_secs() -> u64 {
    30
}
fn default_edit_check_interval_secs() -> u64 {
    600
}

/// `[form]`: how the form is built.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormConfig {
    /// Must say `true`: the form collects *verified* e-mail addresses (Forms → Settings →
    /// Responses → Collect email addresses: Verified). The daemon cannot check it, and the
    /// requester column is only proof of identity if it holds.
    pub requester_verified: bool,
    /// Accept a form whose requester column is not verified. Default `false`; say why in a
    /// comment if you set it.
    #[serde(default)]
    pub allow_unverified_requester: bool,
    /// Requesters must have an address in one of these domains (e.g. `["upme.gov.co"]`).
    pub requester_domains: Vec<String>,
    /// Header text per field when the form's differ from the defaults, e.g.
    /// `given_names = "Nombres completos"`. Field names: see `deploy/config.example.toml`.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// The entity's dependencies, as they should be written: the form's *Dependencia* must be
    /// one of them (matched ignoring case and accents). Empty: any answer is taken as written.
    #[serde(default)]
    pub departments: Vec<String>,
    /// Days after a request closes during which a response with the same answers for the same
    /// person and kind is answered as a repetition of it. Default 7.
    #[serde(default = "default_duplicate_window_days")]
    pub duplicate_window_days: u32,
    /// The entity's *Tipo de solicitud* options, when they differ from the default form's:
    /// option text → kind key (`create`, `disable`, …) or `routed` (another IT request,
    /// answered with `[mail] service_request_procedure`). An option nobody mapped waits.
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// The entity's *Tipo de vinculación* options: option text → `employee`, `contractor` or
    /// `institutional`.
    #[serde(default)]
    pub holder_types: BTreeMap<String, String>,
    /// The request form's pre-filled link (Google's «Obtener vínculo prellenado»), made with
    /// `{tipo}`, `{vinculacion}` and `{usuario}` typed in «Tipo de solicitud», «Tipo de
    /// vinculación» and «Usuario de red existente»: the reminders of a contract's end carry it,
    /// filled in for an extension and for an early termination.
    #[serde(default)]
    pub prefill_url: Option<String>,
}

fn default_duplicate_window_days() -> u32 {
    7
}

/// `[authorizers]`: the *matriz de autorizadores*.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizersConfig {
    /// CSV with `correo,nombre,rol,dependencias,vigente_desde,vigente_hasta`.
    pub path: Option<PathBuf>,
    /// Or a tab with the same columns in a Google spreadsheet, read with the source's service
    /// account (`[source] kind = "google-sheet"`) and read again on the edit-check schedule.
    pub sheet: Option<String>,
    /// The spreadsheet of `sheet`; default: the response spreadsheet.
    pub spreadsheet_id: Option<String>,
    /// Cells of the rules table that differ from the procedure's, e.g.
    /// `"create.contractor" = ["supervisor", "coordinador"]` (`[]` makes a cell not applicable).
    #[serde(default)]
    pub rules: BTreeMap<String, Vec<String>>,
}

/// `[desk]`: the service desk's form, through which the service desk and the administrators act
/// on requests (see [`crate::desk`]). Absent: they act with the CLI only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskConfig {
    /// The desk form's responses exported as CSV (demo, tests, or an entity without the API).
    pub path: Option<PathBuf>,
    /// Or their tab in a Google spreadsheet, read with the service account of `[source]`.
    pub sheet: Option<String>,
    /// The spreadsheet of `sheet`; default: the response spreadsheet.
    pub spreadsheet_id: Option<String>,
    /// The desk form (the id in its edit URL): set, a row counts only if the form holds a
    /// response of the same address and time, as for `[source] form_id`.
    pub form_id: Option<String>,
    /// The desk form's pre-filled link (Google's «Obtener vínculo prellenado»), made with
    /// `{solicitud}`, `{accion}` and `{paso}` typed in those questions: every mail that asks
    /// for an action carries it, filled in.
    pub prefill_url: Option<String>,
    /// Who may do each action, by role of the matrix, when not the defaults:
    /// `confirm`, `done`, `cancel` → `mesa_servicio`; `release`, `retry` → `administrador`.
    #[serde(default)]
    pub rules: BTreeMap<String, Vec<String>>,
}

/// `[directory]`: Active Directory conventions (DESIGN §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap`: Active Directory over LDAPS (or StartTLS). `dry-run`: apply nothing, record
    /// what would be done, planning against `snapshot_path`.
    #[serde(default)]
    pub mode: DirectoryMode,
    /// JSON file of existing accounts the dry run plans against (see `fixtures/demo/directorio.json`).
    pub snapshot_path: Option<PathBuf>,
    /// `ldaps://dc1.example.gov.co` (port 636), or `ldap://…:389` with `starttls = true`.
    /// Plain LDAP is refused.
    pub url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA(s) that signed the domain controllers' certificates; the only ones trusted.
    pub ca_file: Option<PathBuf>,
    /// The bind account's DN or UPN (`svc-cuentas@upme.gov.co`).
    pub bind_dn: Option<String>,
    /// Its password: a file, or `credential:NAME` (systemd LoadCredential=).
    pub bind_password: Option<SecretRef>,
    /// Where searches start, e.g. `DC=upme,DC=gov,DC=co`.
    pub base_dn: Option<String>,
    /// Seconds an LDAP operation may take. Default 30.
    #[serde(default = "default_ldap_timeout_secs")]
    pub timeout_secs: u64,
    /// Mail and UPN domain of new accounts, e.g. `upme.gov.co`.
    pub domain: String,
    /// Ordered `sAMAccountName` patterns; the first free one wins. Tokens: `{g1}` `{g2}` given
    /// names, `{s1}` `{s2}` surnames, `{g1:1}` first letters, `{n}` a number from 2.
    #[serde(default = "default_naming_patterns")]
    pub naming_patterns: Vec<String>,
    /// OU of new accounts by holder type.
    pub ous: HolderOus,
    /// OU of employees by dependency, where it differs from `ous.employee` (transfers move there).
    #[serde(default)]
    pub department_ous: BTreeMap<String, String>,
    /// OUs the daemon may touch; accounts elsewhere are refused.
    pub managed_ous: Vec<String>,
    /// Where deleted accounts wait, disabled, until every backup is confirmed.
    pub retired_ou: Option<String>,
    /// Groups the daemon may add members to or remove them from; requested groups elsewhere are refused.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Groups every account of a dependency gets, by dependency name; a request may ask for
    /// them for an account of that dependency only.
    #[serde(default)]
    pub department_groups: BTreeMap<String, Vec<String>>,
    /// Groups of `allowed_groups` any dependency's request may ask for (a VPN, an intranet
    /// site). The rest of `allowed_groups` is asked for only for an account of a dependency
    /// that has it in `department_groups`: a supervisor of Energía cannot give access to
    /// Finanzas' shares.
    #[serde(default)]
    pub open_groups: Vec<String>,
    /// Accounts never touched, whatever a request says (`sAMAccountName`).
    #[serde(default = "default_protected_accounts")]
    pub protected_accounts: Vec<String>,
    /// Members of these groups (by name, directly or through other groups) are never touched,
    /// besides the members of AD's administrative groups, known by SID.
    #[serde(default = "default_protected_groups")]
    pub protected_groups: Vec<String>,
    /// Disables and deletions carried out per hour before the rest wait as `Held` for
    /// `cuentas release`. Default 10.
    #[serde(default = "default_max_disables_per_hour")]
    pub max_disables_per_hour: u32,
    /// The AD attribute that holds a person's personal e-mail (e.g. `otherMailbox`): written at
    /// creation and reactivation, and where a reset's temporary password may go. Without it,
    /// only the address cuentas itself recorded at creation counts.
    pub personal_email_attribute: Option<String>,
    /// What a *vacaciones o licencia* does: `disable` the account from its start date to its
    /// return date (default), or `none`: recorded and answered, the directory untouched.
    #[serde(default)]
    pub leave_action: LeaveAction,
    /// A password reset for someone at the entity's premises: `manual` (default, the
    /// procedure's way: the service desk enables the change at the person's desk) or
    /// `temporary-password` (sent to the personal address on record, like any other reset).
    #[serde(default)]
    pub onsite_reset: OnsiteReset,
    /// Groups an early termination leaves the account in (every other group of
    /// `allowed_groups` is removed).
    #[serde(default)]
    pub keep_groups_on_termination: Vec<String>,
    /// Days a deleted account waits, disabled in `retired_ou`, before it is removed (counted
    /// from its disabling; every backup must be confirmed too). Default 30.
    #[serde(default = "default_min_days_disabled_before_delete")]
    pub min_days_disabled_before_delete: u32,
    /// Days without a logon after which the drift reading lists an enabled account as unused
    /// (`lastLogonTimestamp`, replicated with up to 14 days of lag: listed, never acted on).
    /// Default 90.
    #[serde(default = "default_stale_days")]
    pub stale_days: u32,
    /// Business days before a contractor's `accountExpires` at which the account's manager (or
    /// the requester who set the date) is reminded, once each: extend it, or end it early.
    /// Default 10 and 3; `[]` sends none.
    #[serde(default = "default_end_date_reminders")]
    pub end_date_reminder_business_days: Vec<u32>,
    /// A contractor's account still enabled on its contract's last day (`accountExpires`) is
    /// disabled by cuentas at the end of that working day, with the notices of a disable: AD's
    /// expiry alone blocks the logon but leaves the account enabled. Default on.
    #[serde(default = "default_true")]
    pub disable_at_contract_end: bool,
}

/// `[directory] leave_action`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaveAction {
    #[default]
    Disable,
    None,
}

/// `[directory] onsite_reset`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnsiteReset {
    #[default]
    Manual,
    TemporaryPassword,
}

fn default_min_days_disabled_before_delete() -> u32 {
    30
}

fn default_stale_days() -> u32 {
    90
}

fn default_end_date_reminders() -> Vec<u32> {
    vec![10, 3]
}

fn default_true() -> bool {
    true
}

/// `[hooks]`: commands run at points of the procedure, without a shell, each with a timeout;
/// their exit status and output go to the log and the request's history (`deploy/hooks/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// Run once per cycle after any directory change (*sincronizar dominio*).
    pub after_change: Option<HookCommand>,
    /// Run with the account name before a new account's access data and outcome are sent;
    /// non-zero: not yet, tried again with backoff.
    pub mailbox_ready: Option<HookCommand>,
    /// Run with the account name after an account is deleted.
    pub mailbox_deleted: Option<HookCommand>,
    /// Seconds a hook may run before it is stopped. Default 60.
    #[serde(default = "default_hook_timeout_secs")]
    pub timeout_secs: u64,
    /// Hours a new account's access data may wait for its mailbox before the administrators
    /// are alerted. Default 4.
    #[serde(default = "default_mailbox_wait_hours")]
    pub mailbox_wait_hours: u32,
}

impl Default for HooksConfig {
    fn default() -> HooksConfig {
        HooksConfig {
            after_change: None,
            mailbox_ready: None,
            mailbox_deleted: None,
            timeout_secs: default_hook_timeout_secs(),
            mailbox_wait_hours: default_mailbox_wait_hours(),
        }
    }
}

impl HooksConfig {
    /// Each configured hook with its key.
    pub fn configured(&self) -> impl Iterator<Item = (&'static str, &HookCommand)> {
        [
            ("after_change", &self.after_change),
            ("mailbox_ready", &self.mailbox_ready),
            ("mailbox_deleted", &self.mailbox_deleted),
        ]
        .into_iter()
        .filter_map(|(key, hook)| Some((key, hook.as_ref()?)))
    }
}

fn default_hook_timeout_secs() -> u64 {
    60
}
fn default_mailbox_wait_hours() -> u32 {
    4
}

fn default_ldap_timeout_secs() -> u64 {
    30
}
fn default_max_disables_per_hour() -> u32 {
    10
}
/// AD's administrative groups are known by SID whatever this says (`directory::privilege`);
/// DnsAdmins has no well-known SID, so it is named.
fn default_protected_groups() -> Vec<String> {
    vec!["DnsAdmins".into()]
}

fn default_naming_patterns() -> Vec<String> {
    ["{g1}.{s1}", "{g1}.{s1}{s2:1}", "{g1}{g2:1}.{s1}", "{g1}.{s1}{n}"].map(String::from).to_vec()
}
fn default_protected_accounts() -> Vec<String> {
    ["administrator", "administrador", "krbtgt", "guest", "invitado"].map(String::from).to_vec()
}

/// How directory plans are carried out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DirectoryMode {
    #[default]
    DryRun,
    Ldap,
    /// The entity's AD read with the real bind account, nothing written, every message to the
    /// administrators: a week next to the manual procedure before going live.
    Shadow,
}

impl DirectoryMode {
    /// Whether the real AD is read (`ldap`, `shadow`): its settings are needed and checked.
    pub fn reads_ad(self) -> bool {
        matches!(self, DirectoryMode::Ldap | DirectoryMode::Shadow)
    }
}

/// `[directory.ous]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderOus {
    pub employee: String,
    pub contractor: String,
    pub institutional: String,
}

/// `[mail]`: how and to whom e-mail goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// `smtp`: hand messages to an SMTP server. `file`: write each message as an `.eml` file
    /// in `spool_dir`.
    #[serde(default)]
    pub transport: MailTransport,
    /// Folder of `.eml` files (file transport).
    pub spool_dir: Option<PathBuf>,
    /// The file transport with `[directory] mode = "ldap"` writes real temporary passwords into
    /// clear files: refused unless this says `true` (say why in a comment).
    #[serde(default)]
    pub allow_credentials_in_spool: bool,
    /// SMTP server (smtp transport).
    pub smtp_host: Option<String>,
    /// Default 587 (STARTTLS); 465 for implicit TLS.
    pub smtp_port: Option<u16>,
    /// `starttls` (required, the default), `tls` (implicit), or `none` (only to a relay on
    /// this machine).
    #[serde(default)]
    pub smtp_security: SmtpSecurity,
    /// PEM file of the CA to trust for the server's certificate, instead of the system's.
    pub smtp_ca_file: Option<PathBuf>,
    /// AUTH user, if the server wants one.
    pub smtp_username: Option<String>,
    /// Its password: a file, or `credential:NAME`.
    pub smtp_password: Option<SecretRef>,
    /// Instead of a password, an OAuth 2.0 token for SMTP AUTH XOAUTH2 (`[mail.oauth2]`):
    /// Microsoft 365 stops taking passwords, and Google prefers tokens.
    #[serde(default)]
    pub oauth2: Option<MailOAuth>,
    /// Seconds a delivery may take. Default 30.
    #[serde(default = "default_smtp_timeout_secs")]
    pub smtp_timeout_secs: u64,
    /// Sender, e.g. `Mesa de Servicio <mesadeservicio@upme.gov.co>`.
    pub from: String,
    /// Where replies go, if not to `from`.
    pub reply_to: Option<String>,
    /// The service desk: checklists, requests to handle by hand, failures.
    pub service_desk: String,
    /// The service-desk tool's mailbox (procedure, activity 2: *registrar la solicitud en la
    /// herramienta de mesa de servicio*): each new request goes there as a ticket, and a copy
    /// of each later message of the request (never the access data) in the ticket's thread.
    pub service_desk_register: Option<String>,
    /// Administrators: alerts that need an operator.
    pub administrators: Vec<String>,
    /// Hours after which an alert is sent again while its condition lasts. Default 24.
    #[serde(default = "default_alert_repeat_hours")]
    pub alert_repeat_hours: u32,
    /// What requesters are told to use for requests that are not about accounts.
    #[serde(default = "default_service_request_procedure")]
    pub service_request_procedure: String,
    /// Folder of template overrides, one file per message (see README).
    pub templates_dir: Option<PathBuf>,
    /// The closing of the messages to requesters and account holders, one or more lines
    /// (`"Mesa de Servicio\nOficina de Tecnologías de la Información"`). Default: the name
    /// in `from`, else «Mesa de Servicio».
    #[serde(default)]
    pub signature: Option<String>,
}

impl MailConfig {
    /// `signature`, or its default, without the blank lines around it.
    pub fn signature(&self) -> String {
        let named = self.from.parse::<lettre::message::Mailbox>().ok().and_then(|m| m.name);
        let text = self.signature.clone().or(named).unwrap_or_default();
        let text = text.trim();
        if text.is_empty() { "Mesa de Servicio".to_string() } else { text.to_string() }
    }
}

/// `[mail.oauth2]`: where the SMTP token comes from; `smtp_username` is the sending mailbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MailOAuth {
    /// Microsoft 365: an application registered in Entra ID, its token from the client
    /// credentials grant (the application's service principal given rights on the mailbox in
    /// Exchange Online).
    Microsoft {
        /// The directory (tenant) id or a verified domain.
        tenant: String,
        /// The application (client) id.
        client_id: String,
        /// The application's client secret: a file, or `credential:NAME`. Or instead:
        #[serde(default)]
        client_secret: Option<SecretRef>,
        /// A certificate registered on the application (Entra ID recommends it over a secret,
        /// which lives 24 months at most): a PEM file holding the certificate and its RSA
        /// private key (PKCS#8, unencrypted), or `credential:NAME`. Its key signs each request
        /// for a token (a client assertion); the secret never crosses the network.
        #[serde(default)]
        client_certificate: Option<SecretRef>,
        /// Default `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
        #[serde(default)]
        token_url: Option<String>,
    },
    /// Google Workspace: a service account with domain-wide delegation for the scope
    /// `https://mail.google.com/`, acting as the mailbox.
    Google {
        /// Its JSON key: a file, or `credential:NAME` (its `token_uri` is used).
        service_account_key: SecretRef,
    },
}

fn default_service_request_procedure() -> String {
    "el procedimiento de Gestión de solicitudes de servicios de TI (mesa de servicio)".into()
}

fn default_alert_repeat_hours() -> u32 {
    24
}

fn default_smtp_timeout_secs() -> u64 {
    30
}

/// Mail transports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MailTransport {
    #[default]
    File,
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

/// `[report]`: the periodic report mail (*el reporte de la gestión realizada*).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Who gets it; none: no report mail.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// The day it is sent, at the start of the working day, about the seven days before.
    /// Default `monday`.
    #[serde(default)]
    pub weekday: ReportDay,
}

/// `[report] weekday`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportDay {
    #[default]
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl ReportDay {
    pub fn weekday(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday;
        match self {
            ReportDay::Monday => Weekday::Monday,
            ReportDay::Tuesday => Weekday::Tuesday,
            ReportDay::Wednesday => Weekday::Wednesday,
            ReportDay::Thursday => Weekday::Thursday,
            ReportDay::Friday => Weekday::Friday,
            ReportDay::Saturday => Weekday::Saturday,
            ReportDay::Sunday => Weekday::Sunday,
        }
    }
}

/// `[sla]`: the service level, in business hours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaConfig {
    /// Business hours to answer a request. Default 10 (the procedure's figure for creations).
    #[serde(default = "default_sla_hours")]
    pub default_hours: u32,
    /// Per-kind overrides, e.g. `password_reset = 4`.
    #[serde(default)]
    pub hours: BTreeMap<String, u32>,
    /// Business days a request waits on its requester's fix (`NeedsInfo`) before they are
    /// reminded, once. Default 3.
    #[serde(default = "default_needs_info_reminder")]
    pub needs_info_reminder_business_days: u32,
    /// Business days after which a request still waiting on its requester is cancelled, the
    /// requester told how to ask again. Default 10.
    #[serde(default = "default_needs_info_expiry")]
    pub needs_info_expiry_business_days: u32,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig {
            default_hours: default_sla_hours(),
            hours: BTreeMap::new(),
            needs_info_reminder_business_days: default_needs_info_reminder(),
            needs_info_expiry_business_days: default_needs_info_expiry(),
        }
    }
}

fn default_needs_info_reminder() -> u32 {
    3
}

fn default_needs_info_expiry() -> u32 {
    10
}

fn default_sla_hours() -> u32 {
    10
}

impl SlaConfig {
    pub fn hours_for(&self, kind: Option<Kind>) -> u32 {
        kind.and_then(|k| self.hours.get(k.key()).copied()).unwrap_or(self.default_hours)
    }
}
