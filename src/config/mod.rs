//! The one TOML configuration file: every field documented, defaults from functions, every
//! problem reported at once, secrets only by file or `credential:NAME`.

use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use serde::de::DeserializeOwned;

use crate::calendar::Calendar;
use crate::directory::naming::Pattern;
use crate::intake::Field;
use crate::policy::Rules;
use crate::request::Kind;

mod secret;
mod sections;

use self::secret::read_secret;
pub use self::secret::{Secret, SecretError, SecretRef};
pub use self::sections::*;

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
    /// The daemon's control socket, through which the CLI's commands reach a running daemon.
    /// Default `control.sock` in `state_dir`.
    pub control_socket: PathBuf,
    /// Besides root and the daemon's own user, the members of this group may use the control
    /// socket.
    pub control_group: Option<String>,
    /// Days a closed request keeps its personal data (Ley 1581 de 2012); then only its audit
    /// skeleton and the keyed hash of the person remain (see [`crate::retention`]). Default 365.
    pub retention_days: u32,
    /// Resident memory (MiB) past which the daemon, between two cycles, starts itself again in
    /// place: sled keeps every page it ever read for the life of the process (its cache
    /// capacity does not bound it), so over months a daemon would come to hold the whole
    /// store. 0: never. Default 128 (the unit's `MemoryMax` is 256M).
    pub memory_ceiling_mib: u64,
    pub time: TimeConfig,
    pub source: SourceConfig,
    pub form: FormConfig,
    pub authorizers: AuthorizersConfig,
    pub directory: DirectoryConfig,
    pub mail: MailConfig,
    pub sla: SlaConfig,
    pub hooks: HooksConfig,
    pub report: ReportConfig,
    pub desk: DeskConfig,
    /// `[time]` as a business-hours calendar in the entity's time zone.
    pub calendar: Calendar,
    /// The procedure's rules with `[authorizers.rules]` applied.
    pub rules: Rules,
    /// Who may act through the desk form, `[desk.rules]` applied.
    pub desk_rules: crate::desk::DeskRules,
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
    /// `service_desk_register`, if the entity has one.
    pub register: Option<Mailbox>,
    /// `[report] recipients`.
    pub report: Vec<Mailbox>,
    pub administrators: Vec<Mailbox>,
}

/// The sections as written, before the values built from them: what validation reads.
struct Sections {
    path: PathBuf,
    state_dir: PathBuf,
    poll_interval_secs: u64,
    control_socket: PathBuf,
    control_group: Option<String>,
    retention_days: u32,
    memory_ceiling_mib: u64,
    time: TimeConfig,
    source: SourceConfig,
    form: FormConfig,
    authorizers: AuthorizersConfig,
    directory: DirectoryConfig,
    mail: MailConfig,
    sla: SlaConfig,
    hooks: HooksConfig,
    report: ReportConfig,
    desk: DeskConfig,
}

/// A `[form.kinds]` value: a kind's key, or `routed` (another IT request).
fn form_kind(key: &str) -> Option<Kind> {
    match key {
        "routed" => Some(Kind::OutOfScope),
        key => Kind::ALL.into_iter().find(|k| *k != Kind::OutOfScope && k.key() == key),
    }
}

/// A `[form.holder_types]` value.
fn form_holder_type(key: &str) -> Option<crate::request::HolderType> {
    use crate::request::HolderType;
    match key {
        "employee" => Some(HolderType::Employee),
        "contractor" => Some(HolderType::Contractor),
        "institutional" => Some(HolderType::Institutional),
        _ => None,
    }
}

impl Config {
    /// The entity's own option texts, as intake reads them.
    pub fn form_options(&self) -> crate::intake::FormOptions {
        crate::intake::FormOptions {
            kinds: self.form.kinds.iter().filter_map(|(o, k)| Some((o.clone(), form_kind(k)?))).collect(),
            holder_types: self
                .form
                .holder_types
                .iter()
                .filter_map(|(o, h)| Some((o.clone(), form_holder_type(h)?)))
                .collect(),
        }
    }

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
        let hooks = section("hooks", false, &mut problems);
        let report = section("report", false, &mut problems);
        let desk = section("desk", false, &mut problems);

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
        let hooks: Option<HooksConfig> = match hooks {
            Some(v) => typed("[hooks]", Some(v), &mut problems),
            None => Some(HooksConfig::default()),
        };
        let report: Option<ReportConfig> = match report {
            Some(v) => typed("[report]", Some(v), &mut problems),
            None => Some(ReportConfig::default()),
        };
        let desk: Option<DeskConfig> = match desk {
            Some(v) => typed("[desk]", Some(v), &mut problems),
            None => Some(DeskConfig::default()),
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
            Some(hooks),
            Some(report),
            Some(desk),
        ) = (top, source, form, authorizers, directory, mail, time, sla, hooks, report, desk)
        else {
            return Err(invalid(problems));
        };

        let base = path.parent().unwrap_or(Path::new("."));
        let mut sections = Sections {
            path: path.to_path_buf(),
            control_socket: match top.control_socket {
                Some(path) => base.join(path),
                None => base.join(&top.state_dir).join("control.sock"),
            },
            control_group: top.control_group,
            state_dir: base.join(top.state_dir),
            poll_interval_secs: top.poll_interval_secs,
            retention_days: top.retention_days,
            memory_ceiling_mib: top.memory_ceiling_mib,
            time,
            source,
            form,
            authorizers,
            directory,
            mail,
            sla,
            hooks,
            report,
            desk,
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

    /// The secret of `[mail.oauth2]`: Entra ID's client secret, or Google's service-account
    /// key.
    pub fn mail_oauth_secret(&self) -> Result<Option<Secret>, SecretError> {
        match &self.mail.oauth2 {
            Some(MailOAuth::Microsoft { client_secret: Some(secret), .. })
            | Some(MailOAuth::Microsoft { client_certificate: Some(secret), .. })
            | Some(MailOAuth::Google { service_account_key: secret }) => read_secret(secret).map(Some),
            Some(MailOAuth::Microsoft { .. }) | None => Ok(None),
        }
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
        let desk_rules = crate::desk::DeskRules::with_overrides(&self.desk.rules)
            .map_err(|errors| problems.extend(errors.into_iter().map(|e| format!("[desk.rules] {e}"))))
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
            control_socket: self.control_socket,
            control_group: self.control_group,
            retention_days: self.retention_days,
            memory_ceiling_mib: self.memory_ceiling_mib,
            time: self.time,
            source: self.source,
            form: self.form,
            authorizers: self.authorizers,
            directory: self.directory,
            mail: self.mail,
            sla: self.sla,
            hooks: self.hooks,
            report: self.report,
            desk: self.desk,
            calendar: calendar?,
            rules: rules?,
            desk_rules: desk_rules?,
            naming,
            mailboxes: mailboxes?,
        })
    }

    fn mailboxes(&self, problems: &mut Vec<String>) -> Option<Mailboxes> {
        let mail = &self.mail;
        let mut parse = |what: &str, address: &str| match address.parse::<Mailbox>() {
            Ok(m) => Some(m),
            Err(_) => {
                problems.push(format!("{what}: «{address}» is not an e-mail address"));
                None
            }
        };
        let from = parse("[mail] from", &mail.from);
        let reply_to = mail.reply_to.as_deref().map(|r| parse("[mail] reply_to", r));
        let service_desk = parse("[mail] service_desk", &mail.service_desk);
        let register =
            mail.service_desk_register.as_deref().map(|r| parse("[mail] service_desk_register", r));
        let report: Vec<Option<Mailbox>> =
            self.report.recipients.iter().map(|a| parse("[report] recipients", a)).collect();
        let administrators: Vec<Option<Mailbox>> =
            mail.administrators.iter().map(|a| parse("[mail] administrators", a)).collect();
        Some(Mailboxes {
            from: from?,
            reply_to: reply_to.map(|r| r.ok_or(())).transpose().ok()?,
            service_desk: service_desk?,
            register: register.map(|r| r.ok_or(())).transpose().ok()?,
            report: report.into_iter().collect::<Option<_>>()?,
            administrators: administrators.into_iter().collect::<Option<_>>()?,
        })
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let SourceConfig::Csv { path, .. } = &mut self.source {
            *path = base.join(&*path);
        }
        if let SourceConfig::GoogleSheet { service_account_key: SecretRef::File(path), .. } = &mut self.source
        {
            *path = base.join(&*path);
        }
        if let Some(path) = &mut self.authorizers.path {
            *path = base.join(&*path);
        }
        if let Some(path) = &mut self.desk.path {
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
        let (oauth_secret, oauth_certificate) = match &mut self.mail.oauth2 {
            Some(MailOAuth::Microsoft { client_secret, client_certificate, .. }) => {
                (client_secret.as_mut(), client_certificate.as_mut())
            }
            Some(MailOAuth::Google { service_account_key: secret }) => (Some(secret), None),
            None => (None, None),
        };
        for secret in [
            self.directory.bind_password.as_mut(),
            self.mail.smtp_password.as_mut(),
            oauth_secret,
            oauth_certificate,
        ]
        .into_iter()
        .flatten()
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
        // A closed request's answers are compared with new responses for the duplicate window:
        // removing them sooner would let a repetition through.
        if self.retention_days <= self.form.duplicate_window_days {
            p.push(format!(
                "retention_days = {} must be more than [form] duplicate_window_days = {}: a closed request's \
                 answers are still needed that long to recognise a repeated response",
                self.retention_days, self.form.duplicate_window_days
            ));
        }
        if !self.form.requester_verified && !self.form.allow_unverified_requester {
            p.push(
                "[form] requester_verified = false: the requester column is only proof of identity when the form \
                 collects verified e-mail addresses; turn that on in the form, or write \
                 allow_unverified_requester = true to accept the risk"
                    .into(),
            );
        }
        for (key, hook) in self.hooks.configured() {
            p.extend(hook.problems(key));
        }
        if self.hooks.timeout_secs == 0 {
            p.push("[hooks] timeout_secs must be at least 1".into());
        }
        if self.form.requester_domains.is_empty() {
            p.push("[form] requester_domains is empty: name the domains requesters write from".into());
        }
        // Without the closed list, whatever a requester types becomes an account's department
        // in the real directory («*», another entity's name).
        if self.form.departments.is_empty() && self.directory.mode.reads_ad() {
            p.push("[form] departments is empty: with the directory in LDAP mode, list the entity's dependencies".into());
        }
        for d in &self.form.requester_domains {
            if d.contains('@') || !d.contains('.') {
                p.push(format!("[form] requester_domains: «{d}» is not a domain (write e.g. upme.gov.co)"));
            }
        }
        for (option, key) in &self.form.kinds {
            if form_kind(key).is_none() {
                let names: Vec<_> =
                    Kind::ALL.iter().filter(|k| **k != Kind::OutOfScope).map(|k| k.key()).collect();
                p.push(format!(
                    "[form.kinds] «{option}» = «{key}»: not a kind; write one of {} or routed",
                    names.join(", ")
                ));
            }
        }
        for (option, key) in &self.form.holder_types {
            if form_holder_type(key).is_none() {
                p.push(format!(
                    "[form.holder_types] «{option}» = «{key}»: write employee, contractor or institutional"
                ));
            }
        }
        for key in self.form.columns.keys() {
            if key.parse::<Field>().is_err() {
                let names: Vec<_> = Field::ALL.iter().map(|f| f.key()).collect();
                p.push(format!("[form.columns] unknown field «{key}»; known fields: {}", names.join(", ")));
            }
        }
        let (remind, expire) =
            (self.sla.needs_info_reminder_business_days, self.sla.needs_info_expiry_business_days);
        if remind == 0 || expire <= remind {
            p.push(format!(
                "[sla] needs_info_reminder_business_days = {remind} and needs_info_expiry_business_days = {expire}: \
                 the reminder comes after at least one business day, and before the request is cancelled"
            ));
        }
        // A service level is days of work, not decades: beyond these, every deadline would walk
        // the calendar to the year 9999 at every cycle.
        const MAX_HOURS: u32 = 2_000;
        const MAX_BUSINESS_DAYS: u32 = 250;
        for (what, hours) in std::iter::once(("default_hours", self.sla.default_hours))
            .chain(self.sla.hours.iter().map(|(k, h)| (k.as_str(), *h)))
        {
            if hours == 0 || hours > MAX_HOURS {
                p.push(format!("[sla] {what} = {hours}: a service level is 1 to {MAX_HOURS} business hours"));
            }
        }
        if expire > MAX_BUSINESS_DAYS {
            p.push(format!(
                "[sla] needs_info_expiry_business_days = {expire}: at most {MAX_BUSINESS_DAYS} (a year of working days)"
            ));
        }
        for key in self.sla.hours.keys() {
            if !Kind::ALL.iter().any(|k| k.key() == key) {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.key()).collect();
                p.push(format!("[sla.hours] unknown kind «{key}»; known kinds: {}", names.join(", ")));
            }
        }
        if let Some(at) = self.time.demo_clock {
            let dry_run = self.directory.mode == DirectoryMode::DryRun;
            let spool = matches!(self.mail.transport, MailTransport::File);
            if !dry_run || !spool {
                p.push(format!(
                    "[time] demo_clock = {at}: a clock of its own is for the demo only, with [directory] mode = \"dry-run\" \
                     and [mail] transport = \"file\"; remove it to run against real systems"
                ));
            }
        }
        self.source_problems(&mut p);
        self.directory_problems(&mut p);
        self.mail_problems(&mut p);
        p
    }

    /// `[source]` and `[authorizers]`: the files they name, the spreadsheet's id and address.
    fn source_problems(&self, p: &mut Vec<String>) {
        if let Some(StartAt::Row(row)) = self.source.start_at()
            && row < 2
        {
            p.push(format!(
                "[source] start_at = {row}: rows are counted as in the sheet, the first response is row 2"
            ));
        }
        match &self.source {
            SourceConfig::Csv { path, .. } => must_exist("[source] path", path, p),
            SourceConfig::GoogleSheet {
                spreadsheet_id,
                service_account_key,
                api_base_url,
                timeout_secs,
                edit_check_interval_secs,
                form_id,
                forms_api_base_url,
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
                    must_exist("[source] service_account_key", path, p);
                }
                for (name, url) in
                    [("api_base_url", api_base_url), ("forms_api_base_url", forms_api_base_url)]
                {
                    match url.split_once("://") {
                        _ if !url.ends_with('/') => {
                            p.push(format!("[source] {name} = «{url}» must end with /"))
                        }
                        Some(("https", _)) => {}
                        Some(("http", rest)) if is_loopback(host_of(rest)) => {}
                        _ => p.push(format!(
                            "[source] {name} = «{url}» must be https:// (plain http only to this machine)"
                        )),
                    }
                }
                if let Some(id) = form_id
                    && (id.is_empty()
                        || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                {
                    p.push(format!(
                        "[source] form_id = «{id}» is not a form id (the part of its edit URL after /d/)"
                    ));
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
            (Some(path), None) => must_exist("[authorizers] path", path, p),
            (None, Some(_)) if !matches!(self.source, SourceConfig::GoogleSheet { .. }) => p.push(
                "[authorizers] sheet needs [source] kind = \"google-sheet\" (its service account reads the tab)".into(),
            ),
            (None, Some(_)) => {}
            _ => p.push("[authorizers] needs path (a CSV file) or sheet (a spreadsheet tab), one of them".into()),
        }
        if auth.spreadsheet_id.is_some() && auth.sheet.is_none() {
            p.push("[authorizers] spreadsheet_id goes with sheet".into());
        }
        let desk = &self.desk;
        match (&desk.path, &desk.sheet) {
            (Some(path), None) => must_exist("[desk] path", path, p),
            (None, Some(_)) if !matches!(self.source, SourceConfig::GoogleSheet { .. }) => p.push(
                "[desk] sheet needs [source] kind = \"google-sheet\" (its service account reads the tab)"
                    .into(),
            ),
            (None, None) if desk.prefill_url.is_some() || desk.form_id.is_some() => {
                p.push("[desk] needs path (a CSV export) or sheet (the desk form's response tab)".into())
            }
            (Some(_), Some(_)) => p.push("[desk] takes path or sheet, not both".into()),
            _ => {}
        }
        if desk.spreadsheet_id.is_some() && desk.sheet.is_none() {
            p.push("[desk] spreadsheet_id goes with sheet".into());
        }
        if desk.form_id.is_some() && desk.sheet.is_none() {
            p.push("[desk] form_id goes with sheet (a CSV export has no form to prove its rows with)".into());
        }
        if let Some(url) = &desk.prefill_url {
            for problem in crate::desk::prefill_problems(url) {
                p.push(format!("[desk] prefill_url {problem}"));
            }
        }
        if let Some(url) = &self.form.prefill_url {
            for problem in crate::desk::link_problems(url, &["tipo", "vinculacion", "usuario"]) {
                p.push(format!("[form] prefill_url {problem}"));
            }
        }
    }

    /// `[directory]`: the transport, and every OU and group inside what the daemon may touch.
    fn directory_problems(&self, p: &mut Vec<String>) {
        let listed = &self.form.departments;
        let dir = &self.directory;
        let named = dir.department_groups.keys().map(|k| ("department_groups", k));
        for (table, dep) in named.chain(dir.department_ous.keys().map(|k| ("department_ous", k))) {
            if !listed.is_empty()
                && !listed.iter().any(|l| crate::intake::fold(l) == crate::intake::fold(dep))
            {
                p.push(format!("[directory.{table}] «{dep}» is not one of [form] departments"));
            }
        }
        let dir = &self.directory;
        match dir.mode {
            DirectoryMode::DryRun => match &dir.snapshot_path {
                Some(path) => must_exist("[directory] snapshot_path", path, p),
                None => p.push("[directory] mode = \"dry-run\" needs snapshot_path".into()),
            },
            mode @ (DirectoryMode::Ldap | DirectoryMode::Shadow) => {
                let mode = if mode == DirectoryMode::Ldap { "ldap" } else { "shadow" };
                for (key, missing) in [
                    ("url", dir.url.is_none()),
                    ("ca_file", dir.ca_file.is_none()),
                    ("bind_dn", dir.bind_dn.is_none()),
                    ("bind_password", dir.bind_password.is_none()),
                    ("base_dn", dir.base_dn.is_none()),
                ] {
                    if missing {
                        p.push(format!("[directory] mode = \"{mode}\" needs {key}"));
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
                    must_exist("[directory] ca_file", ca, p);
                }
                if let Some(SecretRef::File(path)) = &dir.bind_password {
                    must_exist("[directory] bind_password", path, p);
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
        for g in &dir.open_groups {
            if !dir.allowed_groups.iter().any(|a| a.eq_ignore_ascii_case(g)) {
                p.push(format!("[directory] open_groups: group «{g}» is not in allowed_groups"));
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
    }

    /// `[mail]`: the transport and the folders it names.
    fn mail_problems(&self, p: &mut Vec<String>) {
        if self.mail.transport == MailTransport::File
            && self.directory.mode == DirectoryMode::Ldap
            && !self.mail.allow_credentials_in_spool
        {
            p.push(
                "[mail] transport = \"file\" with [directory] mode = \"ldap\" would write real temporary passwords \
                 into clear .eml files: use transport = \"smtp\", or write allow_credentials_in_spool = true to accept it"
                    .into(),
            );
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
                match &mail.oauth2 {
                    None if mail.smtp_username.is_some() != mail.smtp_password.is_some() => {
                        p.push("[mail] smtp_username and smtp_password go together".into())
                    }
                    None => {}
                    Some(oauth) => {
                        if mail.smtp_username.is_none() {
                            p.push("[mail.oauth2] needs [mail] smtp_username: the mailbox that sends".into());
                        }
                        if mail.smtp_password.is_some() {
                            p.push("[mail] smtp_password and [mail.oauth2] exclude each other: a token replaces the password".into());
                        }
                        if let MailOAuth::Microsoft { client_secret, client_certificate, .. } = oauth
                            && client_secret.is_some() == client_certificate.is_some()
                        {
                            p.push(
                                "[mail.oauth2] provider = \"microsoft\" needs client_secret or client_certificate, one of them"
                                    .into(),
                            );
                        }
                        if let MailOAuth::Microsoft { token_url: Some(url), .. } = oauth {
                            match url.split_once("://") {
                                Some(("https", _)) => {}
                                Some(("http", rest)) if is_loopback(host_of(rest)) => {}
                                _ => p.push(format!(
                                    "[mail.oauth2] token_url = «{url}» must be https:// (plain http only to this machine)"
                                )),
                            }
                        }
                    }
                }
                if let Some(ca) = &mail.smtp_ca_file {
                    must_exist("[mail] smtp_ca_file", ca, p);
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
        if mail.signature.as_deref().is_some_and(|s| s.trim().is_empty()) {
            p.push("[mail] signature is empty: remove it to sign with the name in [mail] from".into());
        }
    }
}

/// A problem unless `path` is a file.
fn must_exist(what: &str, path: &Path, p: &mut Vec<String>) {
    if !path.is_file() {
        p.push(format!("{what}: file {} does not exist", path.display()));
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

/// Whether `dn` is `base` or below it (RFC 4514: escapes honoured, case and spacing ignored).
pub fn dn_within(dn: &str, base: &str) -> bool {
    crate::directory::dn::within(dn, base)
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

    /// The demo's configuration without its own clock, as a real one starts from.
    fn without_demo_clock(text: &str) -> String {
        text.lines().filter(|l| !l.starts_with("demo_clock")).map(|l| format!("{l}\n")).collect()
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
        let text = without_demo_clock(&std::fs::read_to_string(demo()).unwrap());
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
        // Entra ID: a client secret or a certificate, one of them.
        let entra = |credentials: &str| {
            smtp("smtp.office365.com", "starttls").replace("[mail]\n", "[mail]\nsmtp_username = \"mesa@x\"\n")
                + &format!(
                    "\n[mail.oauth2]\nprovider = \"microsoft\"\ntenant = \"t\"\nclient_id = \"c\"\n{credentials}"
                )
        };
        let problems = |text: &str| match Config::parse(text, &demo()) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(e) => panic!("{e}"),
        };
        // (Relative to the config's folder: the demo's matrix stands in for the files.)
        assert_eq!(problems(&entra("client_secret = \"autorizadores.csv\"\n")), Vec::<String>::new());
        assert_eq!(problems(&entra("client_certificate = \"autorizadores.csv\"\n")), Vec::<String>::new());
        for neither_or_both in
            ["", "client_secret = \"autorizadores.csv\"\nclient_certificate = \"autorizadores.csv\"\n"]
        {
            let said = problems(&entra(neither_or_both));
            assert!(
                said.iter().any(|p| p.contains("client_secret or client_certificate, one of them")),
                "{said:?}"
            );
        }
    }

    #[test]
    fn a_real_directory_with_the_file_transport_is_refused_unless_accepted() {
        let text = without_demo_clock(&std::fs::read_to_string(demo()).unwrap());
        let ldap = text.replace(
            "mode = \"dry-run\"\nsnapshot_path = \"directorio.json\"",
            "mode = \"ldap\"\nurl = \"ldaps://dc1.upme.gov.co\"\nca_file = \"directorio.json\"\nbind_dn = \"svc\"\nbind_password = \"directorio.json\"\nbase_dn = \"DC=upme,DC=gov,DC=co\"",
        );
        let ConfigError::Invalid { problems, .. } = Config::parse(&ldap, &demo()).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("clear .eml files"), "{problems:?}");
        let accepted = ldap.replace(
            "spool_dir = \"var/correo\"",
            "spool_dir = \"var/correo\"\nallow_credentials_in_spool = true",
        );
        assert!(Config::parse(&accepted, &demo()).is_ok());
    }

    #[test]
    fn retention_defaults_to_a_year_and_must_outlast_the_duplicate_window() {
        assert_eq!(Config::load(&demo()).unwrap().retention_days, 365);
        let text = std::fs::read_to_string(demo()).unwrap();
        let with =
            |days: &str| text.replace("poll_interval_secs = 60", &format!("poll_interval_secs = 60\n{days}"));
        assert_eq!(Config::parse(&with("retention_days = 30"), &demo()).unwrap().retention_days, 30);
        for days in ["retention_days = 0", "retention_days = 7"] {
            let ConfigError::Invalid { problems, .. } = Config::parse(&with(days), &demo()).unwrap_err()
            else {
                panic!()
            };
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("duplicate_window_days = 7"), "{problems:?}");
        }
        assert!(Config::parse(&with("retention_days = -1"), &demo()).is_err());
    }

    #[test]
    fn the_signature_defaults_to_the_senders_name_and_may_not_be_blank() {
        let text = std::fs::read_to_string(demo()).unwrap();
        assert_eq!(Config::load(&demo()).unwrap().mail.signature(), "Mesa de Servicio UPME");
        let bare = text.replace(
            "from = \"Mesa de Servicio UPME <mesadeservicio@upme.gov.co>\"",
            "from = \"mesadeservicio@upme.gov.co\"",
        );
        assert_eq!(Config::parse(&bare, &demo()).unwrap().mail.signature(), "Mesa de Servicio");
        let with = |signature: &str| text.replace("[mail]\n", &format!("[mail]\nsignature = {signature}\n"));
        let two_lines = with("\"\"\"\nMesa de Servicio\nOficina de Tecnologías de la Información\n\"\"\"");
        assert_eq!(
            Config::parse(&two_lines, &demo()).unwrap().mail.signature(),
            "Mesa de Servicio\nOficina de Tecnologías de la Información"
        );
        let ConfigError::Invalid { problems, .. } = Config::parse(&with("\"  \""), &demo()).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("[mail] signature"), "{problems:?}");
    }

    #[test]
    fn the_demo_clock_is_refused_unless_nothing_real_is_reached() {
        let text = std::fs::read_to_string(demo()).unwrap();
        let at: jiff::Timestamp = "2026-11-30T15:00:00Z".parse().unwrap();
        assert_eq!(Config::parse(&text, &demo()).unwrap().time.demo_clock, Some(at));
        // A real directory (with the spool accepted) and a real relay: each refused with the clock.
        let ldap = text.replace(
            "mode = \"dry-run\"\nsnapshot_path = \"directorio.json\"",
            "mode = \"ldap\"\nurl = \"ldaps://dc1.upme.gov.co\"\nca_file = \"directorio.json\"\nbind_dn = \"svc\"\nbind_password = \"directorio.json\"\nbase_dn = \"DC=upme,DC=gov,DC=co\"",
        ).replace("spool_dir = \"var/correo\"", "spool_dir = \"var/correo\"\nallow_credentials_in_spool = true");
        let smtp = text.replace(
            "transport = \"file\"\nspool_dir = \"var/correo\"",
            "transport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_security = \"none\"",
        );
        for (what, text) in [("ldap", ldap), ("smtp", smtp)] {
            let ConfigError::Invalid { problems, .. } = Config::parse(&text, &demo()).unwrap_err() else {
                panic!("{what}: accepted")
            };
            assert_eq!(problems.len(), 1, "{what}: {problems:?}");
            assert!(
                problems[0].contains("demo_clock") && problems[0].contains("for the demo only"),
                "{what}: {problems:?}"
            );
            assert!(Config::parse(&without_demo_clock(&text), &demo()).is_ok(), "{what}: fine without it");
        }
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
