//! The one TOML configuration file: every field documented, defaults from functions, every
//! problem reported at once, secrets only by file or `credential:NAME`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::civil::{Date, Time};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use lettre::message::Mailbox;

use crate::calendar::Calendar;
use crate::directory::naming::Pattern;
use crate::intake::Field;
use crate::policy::Rules;
use crate::request::Kind;

/// Everything that was wrong with a configuration file, all at once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} has {} problem(s):\n  - {}", problems.len(), problems.join("\n  - "))]
    Invalid { path: PathBuf, problems: Vec<String> },
}

/// The whole configuration, validated: besides each section as written, the values built from
/// it once here (calendar, rules, naming patterns, addresses), which the rest receives.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; relative paths inside it are taken from its folder.
    pub path: PathBuf,
    /// Folder of the request store (sled). Default `/var/lib/cuentas`.
    pub state_dir: PathBuf,
    /// Seconds between two polls of the source. Default 60.
    pub poll_interval_secs: u64,
    pub time: TimeConfig,
    pub source: SourceConfig,
    pub form: FormConfig,
    pub authorizers: AuthorizersConfig,
    pub directory: DirectoryConfig,
    pub mail: MailConfig,
    pub sla: SlaConfig,
    /// `[time]` as a business-hours calendar in the entity's time zone.
    pub calendar: Calendar,
    /// The procedure's rules with `[authorizers.rules]` applied.
    pub rules: Rules,
    /// `[directory] naming_patterns`, in order.
    pub naming: Vec<Pattern>,
    /// The addresses of `[mail]`.
    pub mailboxes: Mailboxes,
}

/// The addresses of `[mail]`, parsed.
#[derive(Debug, Clone)]
pub struct Mailboxes {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    pub service_desk: Mailbox,
    pub administrators: Vec<Mailbox>,
}

/// The sections as written, before the values built from them: what validation reads.
struct Sections {
    path: PathBuf,
    state_dir: PathBuf,
    poll_interval_secs: u64,
    time: TimeConfig,
    source: SourceConfig,
    form: FormConfig,
    authorizers: AuthorizersConfig,
    directory: DirectoryConfig,
    mail: MailConfig,
    sla: SlaConfig,
}

/// Top-level keys, read first so that each section can fail on its own.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopLevel {
    #[serde(default = "default_state_dir")]
    state_dir: PathBuf,
    #[serde(default = "default_poll_interval_secs")]
    poll_interval_secs: u64,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/cuentas")
}
fn default_poll_interval_secs() -> u64 {
    60
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
}

impl Default for TimeConfig {
    fn default() -> Self {
        TimeConfig {
            time_zone: default_time_zone(),
            business_day_start: default_day_start(),
            business_day_end: default_day_end(),
            extra_non_working_days: Vec::new(),
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
    },
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
    /// Groups every account of a dependency gets, by dependency name.
    #[serde(default)]
    pub department_groups: BTreeMap<String, Vec<String>>,
    /// Accounts never touched, whatever a request says (`sAMAccountName`).
    #[serde(default = "default_protected_accounts")]
    pub protected_accounts: Vec<String>,
    /// Members of these groups (by name) are never touched.
    #[serde(default = "default_protected_groups")]
    pub protected_groups: Vec<String>,
    /// Disables and deletions carried out per hour before the rest wait as `Held` for
    /// `cuentas release`. Default 10.
    #[serde(default = "default_max_disables_per_hour")]
    pub max_disables_per_hour: u32,
}

fn default_ldap_timeout_secs() -> u64 {
    30
}
fn default_max_disables_per_hour() -> u32 {
    10
}
fn default_protected_groups() -> Vec<String> {
    [
        "Domain Admins",
        "Enterprise Admins",
        "Schema Admins",
        "Administrators",
        "Account Operators",
        "Backup Operators",
        "Server Operators",
        "Print Operators",
        "Group Policy Creator Owners",
        "Read-only Domain Controllers",
    ]
    .map(String::from)
    .to_vec()
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
    /// Seconds a delivery may take. Default 30.
    #[serde(default = "default_smtp_timeout_secs")]
    pub smtp_timeout_secs: u64,
    /// Sender, e.g. `Mesa de Servicio <mesadeservicio@upme.gov.co>`.
    pub from: String,
    /// Where replies go, if not to `from`.
    pub reply_to: Option<String>,
    /// The service desk: checklists, requests to handle by hand, failures.
    pub service_desk: String,
    /// Administrators: alerts that need an operator.
    pub administrators: Vec<String>,
    /// What requesters are told to use for requests that are not about accounts.
    #[serde(default = "default_service_request_procedure")]
    pub service_request_procedure: String,
    /// Folder of template overrides, one file per message (see README).
    pub templates_dir: Option<PathBuf>,
}

fn default_service_request_procedure() -> String {
    "el procedimiento de Gestión de solicitudes de servicios de TI (mesa de servicio)".into()
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
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig { default_hours: default_sla_hours(), hours: BTreeMap::new() }
    }
}

fn default_sla_hours() -> u32 {
    10
}

impl SlaConfig {
    pub fn hours_for(&self, kind: Option<Kind>) -> u32 {
        kind.and_then(|k| self.hours.get(k.key()).copied()).unwrap_or(self.default_hours)
    }
}

/// A secret named in the config: a file, or `credential:NAME` for systemd's `LoadCredential=`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum SecretRef {
    File(PathBuf),
    Credential(String),
}

impl From<String> for SecretRef {
    fn from(s: String) -> SecretRef {
        SecretRef::parse(&s)
    }
}

impl SecretRef {
    pub fn parse(s: &str) -> SecretRef {
        match s.strip_prefix("credential:") {
            Some(name) => SecretRef::Credential(name.to_string()),
            None => SecretRef::File(PathBuf::from(s)),
        }
    }

    /// Reads the secret; `credentials_dir` is `$CREDENTIALS_DIRECTORY`.
    pub fn read(&self, credentials_dir: Option<&Path>) -> Result<Secret, SecretError> {
        let path = match self {
            SecretRef::File(p) => p.clone(),
            SecretRef::Credential(name) => match credentials_dir {
                Some(dir) => dir.join(name),
                None => return Err(SecretError::NoCredentials { name: name.clone() }),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read { path, source })?;
        Ok(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
    }
}

/// A secret that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("credential:{name} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)")]
    NoCredentials { name: String },
    #[error("cannot read secret {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::File(p) => write!(f, "file {}", p.display()),
            SecretRef::Credential(n) => write!(f, "credential:{n}"),
        }
    }
}

/// A secret value; `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl Config {
    /// Reads and validates a configuration file; `Invalid` lists every problem found.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, path)
    }

    /// Parses `text` as if read from `path` (relative paths are taken from its folder).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid { path: path.to_path_buf(), problems };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| invalid(vec![e.to_string()]))?;
        let mut problems = Vec::new();

        let mut section = |name: &str, required: bool, problems: &mut Vec<String>| -> Option<toml::Value> {
            match table.remove(name) {
                Some(v) => Some(v),
                None if required => {
                    problems.push(format!("missing section [{name}]"));
                    None
                }
                None => None,
            }
        };
        let source = section("source", true, &mut problems);
        let form = section("form", true, &mut problems);
        let authorizers = section("authorizers", true, &mut problems);
        let directory = section("directory", true, &mut problems);
        let mail = section("mail", true, &mut problems);
        let time = section("time", false, &mut problems);
        let sla = section("sla", false, &mut problems);

        let top: Option<TopLevel> = typed("top level", Some(toml::Value::Table(table)), &mut problems);
        let source: Option<SourceConfig> = typed("[source]", source, &mut problems);
        let form: Option<FormConfig> = typed("[form]", form, &mut problems);
        let authorizers: Option<AuthorizersConfig> = typed("[authorizers]", authorizers, &mut problems);
        let directory: Option<DirectoryConfig> = typed("[directory]", directory, &mut problems);
        let mail: Option<MailConfig> = typed("[mail]", mail, &mut problems);
        let time: Option<TimeConfig> = match time {
            Some(v) => typed("[time]", Some(v), &mut problems),
            None => Some(TimeConfig::default()),
        };
        let sla: Option<SlaConfig> = match sla {
            Some(v) => typed("[sla]", Some(v), &mut problems),
            None => Some(SlaConfig::default()),
        };

        let (
            Some(top),
            Some(source),
            Some(form),
            Some(authorizers),
            Some(directory),
            Some(mail),
            Some(time),
            Some(sla),
        ) = (top, source, form, authorizers, directory, mail, time, sla)
        else {
            return Err(invalid(problems));
        };

        let base = path.parent().unwrap_or(Path::new("."));
        let mut sections = Sections {
            path: path.to_path_buf(),
            state_dir: base.join(top.state_dir),
            poll_interval_secs: top.poll_interval_secs,
            time,
            source,
            form,
            authorizers,
            directory,
            mail,
            sla,
        };
        sections.resolve_paths(base);
        problems.extend(sections.problems());
        match sections.build(&mut problems) {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(invalid(problems)),
        }
    }

    /// The SMTP password, if one is configured.
    pub fn smtp_password(&self) -> Result<Option<Secret>, SecretError> {
        self.mail.smtp_password.as_ref().map(read_secret).transpose()
    }

    /// The Google service account's key, read from its file or credential.
    pub fn service_account_key(&self) -> Result<Option<Secret>, SecretError> {
        match &self.source {
            SourceConfig::GoogleSheet { service_account_key, .. } => {
                read_secret(service_account_key).map(Some)
            }
            SourceConfig::Csv { .. } => Ok(None),
        }
    }

    /// The directory bind password, read from its file or credential; `None` if none is set.
    pub fn bind_password(&self) -> Option<Result<Secret, SecretError>> {
        self.directory.bind_password.as_ref().map(read_secret)
    }
}

/// Reads a secret named in the file (relative paths were resolved at load).
fn read_secret(secret: &SecretRef) -> Result<Secret, SecretError> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    secret.read(dir.as_deref())
}

impl Sections {
    /// The values the rest of the program receives, each built once here; each one that
    /// cannot be built is a problem naming its key.
    fn build(self, problems: &mut Vec<String>) -> Option<Config> {
        let t = &self.time;
        let calendar =
            Calendar::new(&t.time_zone, t.business_day_start, t.business_day_end, &t.extra_non_working_days)
                .map_err(|e| problems.insert(0, format!("[time]: {e}")))
                .ok();
        let rules = Rules::default()
            .with_overrides(&self.authorizers.rules)
            .map_err(|errors| problems.extend(errors.into_iter().map(|e| format!("[authorizers.rules] {e}"))))
            .ok();
        let mut naming = Vec::new();
        for pattern in &self.directory.naming_patterns {
            match Pattern::parse(pattern) {
                Ok(p) => naming.push(p),
                Err(e) => problems.push(format!("[directory] naming_patterns: {e}")),
            }
        }
        let mailboxes = self.mailboxes(problems);
        Some(Config {
            path: self.path,
            state_dir: self.state_dir,
            poll_interval_secs: self.poll_interval_secs,
            time: self.time,
            source: self.source,
            form: self.form,
            authorizers: self.authorizers,
            directory: self.directory,
            mail: self.mail,
            sla: self.sla,
            calendar: calendar?,
            rules: rules?,
            naming,
            mailboxes: mailboxes?,
        })
    }

    fn mailboxes(&self, problems: &mut Vec<String>) -> Option<Mailboxes> {
        let mail = &self.mail;
        let mut parse = |what: &str, address: &str| match address.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(_) => {
                problems.push(format!("[mail] {what}: «{address}» is not an e-mail address"));
                None
            }
        };
        let from = parse("from", &mail.from);
        let reply_to = mail.reply_to.as_deref().map(|r| parse("reply_to", r));
        let service_desk = parse("service_desk", &mail.service_desk);
        let administrators: Vec<Option<Mailbox>> =
            mail.administrators.iter().map(|a| parse("administrators", a)).collect();
        Some(Mailboxes {
            from: from?,
            reply_to: reply_to.map(|r| r.ok_or(())).transpose().ok()?,
            service_desk: service_desk?,
            administrators: administrators.into_iter().collect::<Option<_>>()?,
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let SourceConfig::Csv { path } = &mut self.source {
            *path = base.join(&*path);
        }
        if let SourceConfig::GoogleSheet { service_account_key: SecretRef::File(path), .. } = &mut self.source
        {
            *path = base.join(&*path);
        }
        if let Some(path) = &mut self.authorizers.path {
            *path = base.join(&*path);
        }
        for p in [
            &mut self.directory.snapshot_path,
            &mut self.directory.ca_file,
            &mut self.mail.smtp_ca_file,
            &mut self.mail.spool_dir,
            &mut self.mail.templates_dir,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
        for secret in [&mut self.directory.bind_password, &mut self.mail.smtp_password].into_iter().flatten()
        {
            if let SecretRef::File(path) = secret {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks that need no network: values, patterns, files that must exist.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.poll_interval_secs == 0 {
            p.push("poll_interval_secs must be at least 1".into());
        }
        if !self.form.requester_verified && !self.form.allow_unverified_requester {
            p.push(
                "[form] requester_verified = false: the requester column is only proof of identity when the form \
                 collects verified e-mail addresses; turn that on in the form, or write \
                 allow_unverified_requester = true to accept the risk"
                    .into(),
            );
        }
        if self.form.requester_domains.is_empty() {
            p.push("[form] requester_domains is empty: name the domains requesters write from".into());
        }
        for d in &self.form.requester_domains {
            if d.contains('@') || !d.contains('.') {
                p.push(format!("[form] requester_domains: «{d}» is not a domain (write e.g. upme.gov.co)"));
            }
        }
        for key in self.form.columns.keys() {
            if key.parse::<Field>().is_err() {
                let names: Vec<_> = Field::ALL.iter().map(|f| f.key()).collect();
                p.push(format!("[form.columns] unknown field «{key}»; known fields: {}", names.join(", ")));
            }
        }
        for key in self.sla.hours.keys() {
            if !Kind::ALL.iter().any(|k| k.key() == key) {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.key()).collect();
                p.push(format!("[sla.hours] unknown kind «{key}»; known kinds: {}", names.join(", ")));
            }
        }
        let must_exist = |what: &str, path: &Path, p: &mut Vec<String>| {
            if !path.is_file() {
                p.push(format!("{what}: file {} does not exist", path.display()));
            }
        };
        match &self.source {
            SourceConfig::Csv { path } => must_exist("[source] path", path, &mut p),
            SourceConfig::GoogleSheet {
                spreadsheet_id,
                service_account_key,
                api_base_url,
                timeout_secs,
                edit_check_interval_secs,
                ..
            } => {
                if spreadsheet_id.is_empty()
                    || !spreadsheet_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    p.push(format!(
                        "[source] spreadsheet_id = «{spreadsheet_id}» is not a spreadsheet id (the part of its URL after /d/)"
                    ));
                }
                if let SecretRef::File(path) = service_account_key {
                    must_exist("[source] service_account_key", path, &mut p);
                }
                match api_base_url.split_once("://") {
                    _ if !api_base_url.ends_with('/') => {
                        p.push(format!("[source] api_base_url = «{api_base_url}» must end with /"))
                    }
                    Some(("https", _)) => {}
                    Some(("http", rest)) if is_loopback(host_of(rest)) => {}
                    _ => p.push(format!(
                        "[source] api_base_url = «{api_base_url}» must be https:// (plain http only to this machine)"
                    )),
                }
                if *timeout_secs == 0 {
                    p.push("[source] timeout_secs must be at least 1".into());
                }
                if *edit_check_interval_secs == 0 {
                    p.push("[source] edit_check_interval_secs must be at least 1".into());
                }
            }
        }
        let auth = &self.authorizers;
        match (&auth.path, &auth.sheet) {
            (Some(path), None) => must_exist("[authorizers] path", path, &mut p),
            (None, Some(_)) if !matches!(self.source, SourceConfig::GoogleSheet { .. }) => p.push(
                "[authorizers] sheet needs [source] kind = \"google-sheet\" (its service account reads the tab)".into(),
            ),
            (None, Some(_)) => {}
            _ => p.push("[authorizers] needs path (a CSV file) or sheet (a spreadsheet tab), one of them".into()),
        }
        if auth.spreadsheet_id.is_some() && auth.sheet.is_none() {
            p.push("[authorizers] spreadsheet_id goes with sheet".into());
        }
        let dir = &self.directory;
        match dir.mode {
            DirectoryMode::DryRun => match &dir.snapshot_path {
                Some(path) => must_exist("[directory] snapshot_path", path, &mut p),
                None => p.push("[directory] mode = \"dry-run\" needs snapshot_path".into()),
            },
            DirectoryMode::Ldap => {
                for (key, missing) in [
                    ("url", dir.url.is_none()),
                    ("ca_file", dir.ca_file.is_none()),
                    ("bind_dn", dir.bind_dn.is_none()),
                    ("bind_password", dir.bind_password.is_none()),
                    ("base_dn", dir.base_dn.is_none()),
                ] {
                    if missing {
                        p.push(format!("[directory] mode = \"ldap\" needs {key}"));
                    }
                }
                match dir.url.as_deref() {
                    Some(url) if url.starts_with("ldaps://") => {}
                    Some(url) if url.starts_with("ldap://") && dir.starttls => {}
                    Some(url) if url.starts_with("ldap://") => p.push(format!(
                        "[directory] url = «{url}» is plain LDAP: passwords would cross the network in clear; \
                         use ldaps:// or set starttls = true"
                    )),
                    Some(url) => p.push(format!("[directory] url = «{url}» must start with ldaps:// or ldap://")),
                    None => {}
                }
                if let Some(ca) = &dir.ca_file {
                    must_exist("[directory] ca_file", ca, &mut p);
                }
                if let Some(SecretRef::File(path)) = &dir.bind_password {
                    must_exist("[directory] bind_password", path, &mut p);
                }
            }
        }
        if let Some(retired) = &dir.retired_ou
            && !dir.managed_ous.iter().any(|m| dn_within(retired, m))
        {
            p.push(format!("[directory] retired_ou = «{retired}» is not inside any of managed_ous"));
        }
        for (dep, ou) in &dir.department_ous {
            if !dir.managed_ous.iter().any(|m| dn_within(ou, m)) {
                p.push(format!(
                    "[directory.department_ous] «{dep}» = «{ou}» is not inside any of managed_ous"
                ));
            }
        }
        if dir.domain.contains('@') || !dir.domain.contains('.') {
            p.push(format!("[directory] domain: «{}» is not a domain (write e.g. upme.gov.co)", dir.domain));
        }
        if dir.naming_patterns.is_empty() {
            p.push("[directory] naming_patterns is empty".into());
        }
        for (what, ou) in [
            ("employee", &dir.ous.employee),
            ("contractor", &dir.ous.contractor),
            ("institutional", &dir.ous.institutional),
        ] {
            if !dir.managed_ous.iter().any(|m| dn_within(ou, m)) {
                p.push(format!("[directory.ous] {what} = «{ou}» is not inside any of managed_ous"));
            }
        }
        for (dep, groups) in &dir.department_groups {
            for g in groups {
                if !dir.allowed_groups.iter().any(|a| a.eq_ignore_ascii_case(g)) {
                    p.push(format!(
                        "[directory.department_groups] «{dep}»: group «{g}» is not in allowed_groups"
                    ));
                }
            }
        }
        let mail = &self.mail;
        match mail.transport {
            MailTransport::File if mail.spool_dir.is_none() => {
                p.push("[mail] transport = \"file\" needs spool_dir".into())
            }
            MailTransport::File => {}
            MailTransport::Smtp => {
                match mail.smtp_host.as_deref() {
                    None => p.push("[mail] transport = \"smtp\" needs smtp_host".into()),
                    Some(h) if mail.smtp_security == SmtpSecurity::None && !is_loopback(h) => p.push(format!(
                        "[mail] smtp_security = \"none\" sends in clear: only allowed to a relay on this machine, not «{h}»"
                    )),
                    Some(_) => {}
                }
                if mail.smtp_username.is_some() != mail.smtp_password.is_some() {
                    p.push("[mail] smtp_username and smtp_password go together".into());
                }
                if let Some(ca) = &mail.smtp_ca_file {
                    must_exist("[mail] smtp_ca_file", ca, &mut p);
                }
            }
        }
        if mail.administrators.is_empty() {
            p.push("[mail] administrators is empty: alerts would reach nobody".into());
        }
        if let Some(dir) = &mail.templates_dir
            && !dir.is_dir()
        {
            p.push(format!("[mail] templates_dir: folder {} does not exist", dir.display()));
        }
        p
    }
}

/// The host of `host[:port]/path`, brackets of an IPv6 address removed.
fn host_of(authority_and_path: &str) -> &str {
    let authority = authority_and_path.split('/').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    }
}

/// Whether `host` is this machine: the only place plain HTTP or SMTP may go.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `dn` is `base` or below it, comparing case-insensitively and ignoring spaces after commas.
pub fn dn_within(dn: &str, base: &str) -> bool {
    let norm = |s: &str| s.split(',').map(|p| p.trim().to_lowercase()).collect::<Vec<_>>();
    let (dn, base) = (norm(dn), norm(base));
    dn.len() >= base.len() && dn[dn.len() - base.len()..] == base[..]
}

fn typed<T: DeserializeOwned>(
    what: &str,
    value: Option<toml::Value>,
    problems: &mut Vec<String>,
) -> Option<T> {
    let value = value?;
    match T::deserialize(value) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{what}: {}", e.message().trim()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/cuentas.toml")
    }

    #[test]
    fn the_demo_config_is_valid() {
        let config = Config::load(&demo()).unwrap();
        assert!(config.state_dir.ends_with("fixtures/demo/var/estado"));
        assert_eq!(config.sla.hours_for(Some(Kind::Create)), 10);
    }

    #[test]
    fn three_mistakes_are_reported_together() {
        let text = std::fs::read_to_string(demo()).unwrap();
        let text = text
            .replace("time_zone = \"America/Bogota\"", "time_zone = \"America/Bogata\"")
            .replace("requester_verified = true", "requester_verified = false")
            .replace("path = \"autorizadores.csv\"", "path = \"no-existe.csv\"");
        let err = Config::parse(&text, &demo()).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else { panic!("{err}") };
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("America/Bogata"));
        assert!(problems[1].contains("requester_verified"));
        assert!(problems[2].contains("no-existe.csv"));
    }

    #[test]
    fn unknown_keys_in_several_sections_are_all_reported() {
        let text = std::fs::read_to_string(demo()).unwrap();
        let text = text
            .replace("[mail]\n", "[mail]\nsmtp_hots = \"x\"\n")
            .replace("[form]\n", "[form]\nverifed = true\n");
        let ConfigError::Invalid { problems, .. } = Config::parse(&text, &demo()).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("verifed")));
        assert!(problems.iter().any(|p| p.contains("smtp_hots")));
    }

    #[test]
    fn the_documented_example_parses_and_only_lacks_its_files() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/config.example.toml");
        let err = Config::load(&path).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else { panic!("{err}") };
        assert!(!problems.is_empty());
        for p in &problems {
            assert!(p.contains("does not exist"), "{p}");
        }
    }

    #[test]
    fn smtp_in_clear_only_to_this_machine() {
        let text = std::fs::read_to_string(demo()).unwrap();
        let smtp = |host: &str, security: &str| {
            text.replace(
                "transport = \"file\"\nspool_dir = \"var/correo\"",
                &format!("transport = \"smtp\"\nsmtp_host = \"{host}\"\nsmtp_security = \"{security}\""),
            )
        };
        assert!(Config::parse(&smtp("127.0.0.1", "none"), &demo()).is_ok());
        assert!(Config::parse(&smtp("smtp.office365.com", "starttls"), &demo()).is_ok());
        let ConfigError::Invalid { problems, .. } =
            Config::parse(&smtp("smtp.office365.com", "none"), &demo()).unwrap_err()
        else {
            panic!()
        };
        assert!(problems[0].contains("in clear"), "{problems:?}");
        let with_user =
            smtp("smtp.office365.com", "starttls").replace("[mail]\n", "[mail]\nsmtp_username = \"x\"\n");
        assert!(Config::parse(&with_user, &demo()).is_err(), "a user without a password");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "**REDACTED**");
        assert_eq!(SecretRef::parse("credential:smtp"), SecretRef::Credential("smtp".into()));
        assert!(SecretRef::parse("credential:smtp").read(None).is_err());
    }

    #[test]
    fn dn_containment() {
        assert!(dn_within("CN=a,OU=Usuarios,DC=upme,DC=gov,DC=co", "ou=usuarios, dc=upme,dc=gov,dc=co"));
        assert!(!dn_within("CN=a,OU=Domain Admins,DC=upme,DC=gov,DC=co", "OU=Usuarios,DC=upme,DC=gov,DC=co"));
    }
}
