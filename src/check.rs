//! `cuentas check`: the configuration and everything it names, one line each. What works is
//! said on standard output (`ok    …`), what to fix on standard error (`FAIL  …`), what would
//! surprise on the first day without being wrong on standard error too (`WARN  …`), and the
//! exit code is 0 when there is nothing to fix, 1 otherwise. `--offline` (what the unit's
//! `ExecStartPre` runs) reads only local files; online it also reaches the mail relay (connect,
//! STARTTLS, login; no message is sent), the directory (bind, the bind account's groups, each
//! OU and group cuentas works in and the delegated rights there) and the sheet.

use std::path::Path;

use anyhow::Result;
use jiff::Timestamp;

use crate::config::{Config, DirectoryMode, MailTransport};
use crate::directory::acl;
use crate::directory::ldap::{Ldap, LdapSettings};
use crate::source::Source;

/// What the check found, printed as it goes.
#[derive(Default)]
struct Findings {
    problems: usize,
}

impl Findings {
    fn ok(&mut self, line: impl std::fmt::Display) {
        println!("ok    {line}");
    }

    /// Not wrong, but likely not what the entity wants on its first day.
    fn warn(&mut self, line: impl std::fmt::Display) {
        eprintln!("WARN  {line}");
    }

    fn fail(&mut self, line: impl std::fmt::Display) {
        eprintln!("FAIL  {line}");
        self.problems += 1;
    }
}

/// Runs the check; the exit code.
pub fn check(path: &Path, offline: bool, now: Timestamp) -> Result<i32> {
    let config = Config::load(path)?;
    let mut found = Findings::default();
    let mut source = local(&config, offline, &mut found, now);
    if !offline {
        mail_relay(&config, &mut found, now);
        directory(&config, &mut found);
        if let Some(source) = &mut source {
            sheet(&config, source, &mut found, now);
        }
    }
    desk(&config, source.as_ref(), offline, &mut found, now);
    if found.problems == 0 {
        println!("{}: nothing to fix{}", path.display(), if offline { " (offline)" } else { "" });
        Ok(0)
    } else {
        eprintln!("{} has {} problem(s)", path.display(), found.problems);
        Ok(1)
    }
}

/// What needs no network: the matrix file, the snapshot, the templates, the hooks, a CSV
/// export's header. The source, for the online part.
fn local(config: &Config, offline: bool, found: &mut Findings, now: Timestamp) -> Option<Source> {
    found.ok("configuration: valid");
    day_one(config, found);
    if let Some(path) = &config.authorizers.path {
        match crate::policy::Matrix::load(path) {
            Ok(matrix) => {
                let unknown = matrix.unknown_departments(&config.form.departments);
                unknown.iter().for_each(|p| found.fail(format!("{}, {p}", path.display())));
                if matrix.is_empty() {
                    found.warn(format!(
                        "{}: the authorizer matrix has no authorizer: every request would be refused until rows are added",
                        path.display()
                    ));
                } else if unknown.is_empty() {
                    found.ok(format!(
                        "{}: the authorizer matrix is valid ({} rows)",
                        path.display(),
                        matrix.len()
                    ));
                }
            }
            Err(e) => found.fail(e),
        }
    }
    if let Some(p) = &config.directory.snapshot_path {
        match crate::directory::snapshot::Snapshot::load(p) {
            Ok(_) => found.ok(format!("{}: the directory snapshot is valid", p.display())),
            Err(e) => found.fail(e),
        }
    }
    match crate::notify::Templates::load(config.mail.templates_dir.as_deref()) {
        Ok(t) => {
            let problems = t.check();
            problems.iter().for_each(|e| found.fail(e));
            if problems.is_empty() {
                found.ok("mail templates: valid");
            }
        }
        Err(e) => found.fail(e),
    }
    for (key, hook) in config.hooks.configured() {
        match hook.executable_problem(key) {
            Some(problem) => found.fail(problem),
            None => found.ok(format!("[hooks] {key}: executable")),
        }
    }
    mail_certificate(config, found);
    // The key of a spreadsheet source is a systemd credential: the unit's ExecStartPre has it,
    // an administrator's shell does not, and offline there is nothing to use it for.
    if offline && let Err(crate::config::SecretError::NoCredentials { name }) = config.service_account_key() {
        found.ok(format!(
            "[source] service_account_key: credential:{name}, given by systemd (LoadCredential=) to the service"
        ));
        return None;
    }
    let mut source = match Source::from_config(config) {
        Ok(source) => Some(source),
        Err(e) => {
            found.fail(format!("[source]: {e}"));
            None
        }
    };
    // A CSV export is checked offline; a spreadsheet needs the network.
    if let Some(csv @ Source::Csv { .. }) = &mut source {
        match csv.header(now) {
            Ok(header) => match crate::intake::ColumnMap::new(&header, &config.form.columns) {
                Ok(map) => {
                    found.ok(format!("{}: its header has every required column", csv.describe()));
                    repeated_columns(&csv.describe(), &map, found);
                }
                Err(e) => found.fail(format!("{}: {e}", csv.describe())),
            },
            Err(e) => found.fail(e),
        }
        start(config, csv, found, now);
        answers(config, csv, found, now);
    }
    source
}

/// `[mail.oauth2] client_certificate`: a certificate and its own key, read now rather than at
/// the first mail.
fn mail_certificate(config: &Config, found: &mut Findings) {
    let Some(crate::config::MailOAuth::Microsoft { client_certificate: Some(_), .. }) = &config.mail.oauth2
    else {
        return;
    };
    let what = "[mail.oauth2] client_certificate";
    match config.mail_oauth_secret() {
        Ok(Some(pem)) => match crate::notify::oauth::ClientCertificate::from_pem(pem.expose()) {
            Ok(c) => found.ok(format!(
                "{what}: a certificate and its key (thumbprint {}: the one to upload to the application in Entra ID)",
                c.thumbprint
            )),
            Err(e) => found.fail(format!("{what}: {e}")),
        },
        Ok(None) => {}
        Err(crate::config::SecretError::NoCredentials { name }) => {
            found.ok(format!("{what}: credential:{name}, given by systemd (LoadCredential=) to the service"))
        }
        Err(e) => found.fail(format!("{what}: {e}")),
    }
}

/// Answers of the form that map to nothing (an option of the entity's form, a dependency not
/// in the list), each once with how many responses gave it: requests with an unmapped option
/// wait for the setting, and a dependency not listed is asked back of the requester.
fn answers(config: &Config, source: &mut Source, found: &mut Findings, now: Timestamp) {
    let Ok(header) = source.header(now) else { return };
    let Ok(map) = crate::intake::ColumnMap::new(&header, &config.form.columns) else { return };
    let map = map.with_options(config.form_options());
    let start = config.source.start_at();
    match crate::engine::unmapped_answers(source, &map, &config.form.departments, start, now) {
        Ok(unmapped) => {
            for (setting, answer, responses) in unmapped {
                let (question, fix) = match setting.as_str() {
                    "form.kinds" => ("Tipo de solicitud", "say which kind it is in [form.kinds] (or routed)"),
                    "form.holder_types" => {
                        ("Tipo de vinculación", "say which holder type it is in [form.holder_types]")
                    }
                    _ => ("Dependencia", "add it to [form] departments, or correct the form's list"),
                };
                found.warn(format!(
                    "{}: the answer «{answer}» to «{question}» ({responses} responses) maps to nothing: {fix}",
                    source.describe()
                ));
            }
        }
        Err(e) => found.fail(format!("{}: {e}", source.describe())),
    }
}

/// Where the entity starts: a source that already holds responses needs `[source] start_at`
/// at the first start (the daemon refuses to start without it), and the count says why.
fn start(config: &Config, source: &mut Source, found: &mut Findings, now: Timestamp) {
    if let Some(start) = config.source.start_at() {
        let from = match start {
            crate::config::StartAt::Row(row) => format!("row {row}"),
            crate::config::StartAt::Time(at) => at.strftime("%Y-%m-%d %H:%M").to_string(),
        };
        found.ok(format!("[source] start_at: responses before {from} are passed over, unanswered"));
        if crate::store::Store::exists_in(&config.state_dir) {
            return;
        }
        let header = source.header(now).ok();
        let map = header.and_then(|h| crate::intake::ColumnMap::new(&h, &config.form.columns).ok());
        if let Some(map) = map
            && let Ok(before) = crate::engine::backlog_before(source, &map, start, now)
            && before.responses > 0
        {
            found.warn(format!(
                "{}: {} responses ({}) come before start_at and will never be registered or answered",
                before.source,
                before.responses,
                before.span()
            ));
        }
        return;
    }
    if crate::store::Store::exists_in(&config.state_dir) {
        return found.ok("[source] start_at not set: cuentas has run here before and goes on from the last row it registered");
    }
    let backlog = source
        .header(now)
        .map_err(|e| e.to_string())
        .and_then(|header| {
            crate::intake::ColumnMap::new(&header, &config.form.columns).map_err(|e| e.to_string())
        })
        .and_then(|map| crate::engine::backlog(source, &map, now).map_err(|e| e.to_string()));
    match backlog {
        Ok(b) if b.responses == 0 => {
            found.ok(format!("{}: no responses yet; every one will be taken", b.source))
        }
        Ok(b) => found.fail(crate::engine::EngineError::StartAtNeeded(b)),
        // Said already by the header's own line.
        Err(_) => {}
    }
}

/// What is valid but would surprise on the first day.
fn day_one(config: &Config, found: &mut Findings) {
    let d = &config.directory;
    if d.mode.reads_ad() && !d.end_date_reminder_business_days.is_empty() && config.form.prefill_url.is_none()
    {
        found.warn(
            "[form] prefill_url is not set: the reminders of a contract's end name the form's options instead of \
             carrying its links, filled in, for an extension and an early termination",
        );
    }
    if d.mode == DirectoryMode::Shadow {
        found.warn(
            "[directory] mode = \"shadow\": AD is read and never written, and every message goes to [mail] administrators \
             only; for the shadow week next to the manual procedure, then mode = \"ldap\" (what the shadow decided is \
             not carried on live unless «cuentas replay ID» asks)",
        );
    }
    if d.mode.reads_ad() {
        if d.personal_email_attribute.is_none() {
            found.warn(
                "[directory] personal_email_attribute is not set: a password reset of an account cuentas did not create \
                 goes to the service desk (there is no personal address on record to send it to)",
            );
        }
        if let Some(ca) = &d.ca_file {
            let certificates =
                std::fs::read_to_string(ca).map_or(0, |pem| pem.matches("BEGIN CERTIFICATE").count());
            if certificates > 20 {
                found.warn(format!(
                    "[directory] ca_file {} holds {certificates} certificates, a bundle of public CAs: name the domain's own \
                     CA certificate, so that only the DCs' certificates are trusted",
                    ca.display()
                ));
            }
        }
        let defaults = ["administrator", "administrador", "krbtgt", "guest", "invitado"];
        if d.protected_accounts.iter().all(|a| defaults.iter().any(|x| x.eq_ignore_ascii_case(a))) {
            found.warn(
                "[directory] protected_accounts lists only AD's built-in accounts: add the entity's own administrative \
                 and service accounts (the members of AD's administrative groups are protected already)",
            );
        }
    }
}

/// The relay takes a connection, STARTTLS (or TLS) and the login, as it would for a message.
fn mail_relay(config: &Config, found: &mut Findings, now: Timestamp) {
    if config.mail.transport != MailTransport::Smtp {
        found.ok("mail: written to files in [mail] spool_dir (no relay to reach)");
        return;
    }
    let host = config.mail.smtp_host.clone().unwrap_or_default();
    let login = if config.mail.smtp_username.is_some() { " and the login" } else { "" };
    let tested = crate::notify::Mailer::from_config(config).and_then(|m| m.test(now));
    match tested {
        Ok(()) => found.ok(format!("mail relay {host}: takes the connection{login}")),
        // 530, 534, 535: what a relay answers to a missing or refused login.
        Err(crate::notify::SendError::Refused { source, .. })
            if source.status().is_some_and(|c| c.to_string().starts_with("53")) =>
        {
            found.fail(format!(
                "mail relay {host}: the login was refused ([mail] smtp_username, smtp_password): {source}"
            ))
        }
        // Display only: the error's text already holds its cause.
        Err(e) => found.fail(format!("mail relay {host}: {e}")),
    }
}

/// The bind, the bind account's groups, and every OU and group cuentas works in.
fn directory(config: &Config, found: &mut Findings) {
    if config.directory.mode == DirectoryMode::DryRun {
        found.ok("directory: a dry run, nothing to reach");
        return;
    }
    let settings = match LdapSettings::from_config(config) {
        Ok(settings) => settings,
        Err(e) => return found.fail(format!("[directory]: {e}")),
    };
    let url = settings.url.clone();
    let mut ldap = Ldap::new(settings, config.calendar.time_zone().clone());
    match ldap.password_policy() {
        Ok(policy) => found.ok(format!(
            "directory {url}: bound over TLS; domain password policy: at least {} characters{}",
            policy.min_length,
            if policy.complexity { ", complexity required" } else { "" }
        )),
        // Nothing else can be asked of a directory that does not answer.
        Err(e) => {
            return found.fail(format!("directory {url}: {e}{}", bind_hint(&e.to_string())));
        }
    }
    if let Err(e) = rights(config, &mut ldap, found) {
        found.fail(format!("directory {url}: {e}"));
    }
}

/// What AD's code in a refused bind (`… data 52e`) means, for the administrator who reads it:
/// ` (wrong password …)`, or nothing.
fn bind_hint(text: &str) -> String {
    const CODES: [(&str, &str); 8] = [
        ("data 525", "no such account: see bind_dn"),
        ("data 52e", "the password of bind_dn is wrong: see bind_password"),
        ("data 530", "the bind account may not log on at this time"),
        ("data 532", "the bind account's password expired"),
        ("data 533", "the bind account is disabled"),
        ("data 701", "the bind account expired"),
        ("data 773", "the bind account must change its password first"),
        ("data 775", "the bind account is locked out"),
    ];
    CODES
        .iter()
        .find(|(code, _)| text.contains(code))
        .map_or(String::new(), |(_, meaning)| format!(" ({meaning})"))
}

/// The bind account's groups and the delegation on each OU and group (`deploy/ad-delegation.txt`).
fn rights(config: &Config, ldap: &mut Ldap, found: &mut Findings) -> Result<()> {
    let d = &config.directory;
    let account = ldap.bind_account()?;
    // The configured protected groups it is in directly, and AD's administrative groups in its
    // token (a membership through another group counts).
    let mut admin: Vec<&String> = account
        .groups
        .iter()
        .filter(|g| d.protected_groups.iter().any(|p| p.eq_ignore_ascii_case(g)))
        .collect();
    for group in &account.administrative {
        if !admin.iter().any(|a| a.eq_ignore_ascii_case(group)) {
            admin.push(group);
        }
    }
    match admin.as_slice() {
        [] if account.groups.is_empty() => found.ok(format!("bind account {}: in no group but Domain Users", account.dn)),
        [] => found.ok(format!("bind account {}: member of {}", account.dn, account.groups.join(", "))),
        admin => found.fail(format!(
            "bind account {}: member of {}: it needs only the delegation of deploy/ad-delegation.txt, no administrative group",
            account.dn,
            admin.iter().map(|g| format!("«{g}»")).collect::<Vec<_>>().join(", ")
        )),
    }
    let grants = acl::delegation(d.personal_email_attribute.as_deref());
    let checked =
        ldap.missing_rights(&account, &work_ous(config), &d.allowed_groups, &d.protected_groups, &grants)?;
    for rights in checked {
        let group = !rights.dn.to_lowercase().starts_with("ou=");
        if let Some(admin) = &rights.privileged {
            found.fail(format!(
                "group «{}» ([directory] allowed_groups) is or is inside the administrative group «{admin}»: \
                 a request could make anyone an administrator; take it out of allowed_groups",
                rights.dn
            ));
        }
        if !rights.exists {
            found.fail(if group {
                format!("group «{}» ([directory] allowed_groups) does not exist", rights.dn)
            } else {
                format!("{}: no such OU", rights.dn)
            });
        } else if rights.missing.is_empty() {
            let held = grants.iter().filter(|g| (g.scope == acl::Scope::Group) == group).count();
            found
                .ok(format!("{}: the bind account holds the {held} right(s) cuentas needs there", rights.dn));
        }
        for grant in &rights.missing {
            let on = if grant.scope == acl::Scope::User { " on the accounts in it" } else { "" };
            found.fail(format!(
                "{}: the bind account may not {}{on} (deploy/ad-delegation.txt: «{grant}»)",
                rights.dn,
                grant.describe()
            ));
        }
    }
    Ok(())
}

/// Every OU cuentas works in: the managed ones, where it creates accounts, where it retires them.
fn work_ous(config: &Config) -> Vec<String> {
    let d = &config.directory;
    let mut ous: Vec<String> = Vec::new();
    let named = d.managed_ous.iter().chain([&d.ous.employee, &d.ous.contractor, &d.ous.institutional]);
    for ou in named.chain(d.department_ous.values()).chain(d.retired_ou.iter()) {
        if !ou.is_empty() && !ous.iter().any(|o| crate::directory::dn::equal(o, ou)) {
            ous.push(ou.clone());
        }
    }
    ous
}

/// A question the form asks twice over the years (deleted and added again, its old answers
/// left in their column): said, with how each row is read.
fn repeated_columns(source: &str, map: &crate::intake::ColumnMap, found: &mut Findings) {
    for (header, columns) in map.repeated() {
        let letters: Vec<String> = columns.into_iter().map(crate::source::a1::column_letters).collect();
        found.warn(format!(
            "{source}: «{header}» heads columns {}: a question deleted from the form and added again, or two \
             questions with one title; each row is read from the rightmost of them it answered (the question as \
             the form asks it now). If they are two different questions, give each its own title",
            letters.join(", ")
        ));
    }
}

/// The sheet's header and the matrix kept in a tab.
fn sheet(config: &Config, source: &mut Source, found: &mut Findings, now: Timestamp) {
    if let Source::Sheet(sheet) = source {
        match sheet.header(now) {
            Ok(header) => match crate::intake::ColumnMap::new(&header, &config.form.columns) {
                Ok(map) => {
                    found.ok(format!(
                        "{}: read as {}; its header has every required column ({} columns)",
                        sheet.describe(),
                        sheet.account(),
                        header.len()
                    ));
                    repeated_columns(&sheet.describe(), &map, found);
                }
                Err(e) => found.fail(format!("[source] {}: {e}", sheet.describe())),
            },
            Err(e) => found.fail(format!("[source] {}: {e}", sheet.describe())),
        }
        start(config, source, found, now);
        answers(config, source, found, now);
        let Source::Sheet(sheet) = source else { return };
        // The form's own record of its responses, which proves each row (`form_id`).
        if let Some(form) = sheet.settings().form_id.clone() {
            match sheet.form_responses(now - jiff::SignedDuration::from_hours(24), now) {
                Ok(responses) => found.ok(format!(
                    "form {form}: its responses are readable ({} in the last 24 hours); a row it did not write is refused",
                    responses.map_or(0, |r| r.len())
                )),
                Err(e) => found.fail(format!("[source] form_id: {e}")),
            }
        }
    }
    matrix_tab(config, source, found, now);
}

/// The authorizer matrix kept in a tab of the spreadsheet, when it is.
fn matrix_tab(config: &Config, source: &Source, found: &mut Findings, now: Timestamp) {
    let mut tab = match crate::source::matrix_sheet(config, source) {
        Ok(Some(tab)) => tab,
        Ok(None) => return,
        Err(e) => return found.fail(format!("[authorizers]: {e}")),
    };
    let (header, rows) = match tab.read_all(now) {
        Ok(read) => read,
        Err(e) => return found.fail(format!("[authorizers] {}: {e}", tab.describe())),
    };
    let n = rows.len();
    match crate::policy::Matrix::from_rows(&header, rows.into_iter().map(|r| (r.row, r.cells))) {
        Ok(matrix) => {
            let unknown = matrix.unknown_departments(&config.form.departments);
            unknown.iter().for_each(|p| found.fail(format!("[authorizers] {}: {p}", tab.describe())));
            if unknown.is_empty() {
                found.ok(format!("{}: the authorizer matrix is valid ({n} rows)", tab.describe()));
            }
        }
        Err(e) => found.fail(format!("[authorizers] {}: {e}", tab.describe())),
    }
}

/// The service desk's form: its questions (a CSV offline, a tab online), whether the matrix
/// names someone for each action, and whether the mails carry its links.
fn desk(config: &Config, source: Option<&Source>, offline: bool, found: &mut Findings, now: Timestamp) {
    let desk = &config.desk;
    if desk.path.is_none() && desk.sheet.is_none() {
        return found.warn(
            "[desk] is not set: the service desk and the administrators act only through cuentas commands on this \
             server; the desk form (deploy/formularios.gs, crearFormularioMesa) lets them act from its link in each mail",
        );
    }
    let reader = match source {
        Some(source) => crate::source::desk_source(config, source),
        None => return,
    };
    match reader {
        Ok(Some(mut reader)) if !offline || matches!(reader, Source::Csv { .. }) => {
            match reader.header(now) {
                Ok(header) => match crate::desk::DeskColumns::from_header(&header) {
                    Ok(_) => found.ok(format!(
                        "{}: the service desk's form has every question cuentas reads",
                        reader.describe()
                    )),
                    Err(missing) => found.fail(format!(
                        "[desk] {}: the header lacks {}",
                        reader.describe(),
                        missing.iter().map(|m| format!("«{m}»")).collect::<Vec<_>>().join(", ")
                    )),
                },
                Err(e) => found.fail(format!("[desk] {}: {e}", reader.describe())),
            }
        }
        Ok(_) => {}
        Err(e) => found.fail(format!("[desk]: {e}")),
    }
    if let Some(path) = &config.authorizers.path
        && let Ok(matrix) = crate::policy::Matrix::load(path)
        // An empty matrix is warned about once, above.
        && !matrix.is_empty()
    {
        let today = now.to_zoned(config.calendar.time_zone().clone()).date();
        for action in crate::desk::DeskAction::ALL {
            let roles = config.desk_rules.roles(action);
            if !matrix.any_valid_with(roles, today) {
                found.warn(format!(
                    "[desk] nobody in the matrix may «{action}» today (role {}): add a row, or [desk.rules] {}",
                    roles.iter().map(|r| r.key()).collect::<Vec<_>>().join(" or "),
                    action.key()
                ));
            }
        }
    }
    match &desk.prefill_url {
        Some(_) => found.ok("[desk] prefill_url: each mail that asks for an action carries its filled-in link"),
        None => found.warn(
            "[desk] prefill_url is not set: the mails name the action and the request but carry no link (the link \
             crearFormularioMesa writes in its log)",
        ),
    }
}
