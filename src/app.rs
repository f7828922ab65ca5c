//! Wiring: the command line, the poll loop, signals, logging. The only module that reads the clock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use tracing::info;

use crate::config::Config;
use crate::engine::{Adapters, CycleReport, Engine};
use crate::request::{Request, RequestId, StateName};
use crate::store::Store;

/// cuentas: runs the user-account procedure from form responses to the directory and e-mail.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, env = "CUENTAS_CONFIG", default_value = "/etc/cuentas/cuentas.toml")]
    pub config: PathBuf,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How `cuentas report` prints.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll the form responses and carry requests through.
    Run {
        /// One cycle, a line per request it touched, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Check the configuration and everything it names.
    Check {
        /// Only what needs no network (what systemd's ExecStartPre runs).
        #[arg(long)]
        offline: bool,
    },
    /// List requests.
    Requests {
        /// Only requests in this state (e.g. NeedsInfo, Manual, Closed).
        #[arg(long)]
        state: Option<StateName>,
    },
    /// Show one request with its whole history.
    Show {
        id: RequestId,
        /// Print the stored record (versioned JSON) instead.
        #[arg(long)]
        json: bool,
    },
    /// What open requests will do to the directory (dry run).
    Plan,
    /// The report of the work done: requests submitted from one date to another (both
    /// included) by kind and state, the service level met, hours to answer, risks, breaches.
    Report {
        /// First day, yyyy-mm-dd.
        #[arg(long)]
        from: jiff::civil::Date,
        /// Last day, yyyy-mm-dd.
        #[arg(long)]
        to: jiff::civil::Date,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Let requests held by the hourly limit of disables go on.
    Release {
        /// The requests to release.
        ids: Vec<RequestId>,
        /// Release every held request.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Try a failed request again, from the start of its directory step.
    Retry { id: RequestId },
    /// Record that a request handled by hand (state Manual) is done; the requester is told.
    Done {
        id: RequestId,
        /// What was done, in Spanish: it goes to the requester as the outcome.
        #[arg(long)]
        note: String,
    },
    /// Record one confirmed step of a deletion's backup checklist (state AwaitingConfirmation).
    Confirm {
        id: RequestId,
        /// The step: correo, calendario, contactos, nube, equipo-respaldo, equipo-dominio, equipo-borrado.
        step: String,
        /// Who made and checked it.
        #[arg(long)]
        by: String,
        /// Where the backup is, or anything worth keeping.
        #[arg(long)]
        note: Option<String>,
    },
    /// Cancel an open request (it is answered nothing; say why for the history).
    Cancel {
        id: RequestId,
        #[arg(long)]
        reason: String,
    },
}

/// The clock. `app` is the one place that reads it; everything else is given `now`.
#[allow(clippy::disallowed_methods)]
fn now() -> Timestamp {
    // Whole seconds: that is what the history shows, and it keeps stored records short.
    // Truncated, never rounded up: a step due at 07:30:00 must not run at 07:29:59.6.
    let t = Timestamp::now();
    let second = jiff::TimestampRound::new().smallest(jiff::Unit::Second).mode(jiff::RoundMode::Trunc);
    t.round(second).unwrap_or(t)
}

/// The monotonic clock, for the watchdog's pace.
#[allow(clippy::disallowed_methods)]
fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// Starts logging: human format without timestamps under journald, or JSON.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human if std::env::var_os("JOURNAL_STREAM").is_some() => builder.without_time().init(),
        LogFormat::Human => builder.init(),
    }
}

/// Runs a parsed command line.
pub fn main(cli: Cli) -> Result<()> {
    // One TLS provider for the whole process (LDAP, SMTP, Google): ring. Installing it twice
    // is harmless, so a test calling this more than once does not fail.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Check { offline } => check(&cli.config, offline),
        Command::Run { once } => {
            let config = load(&cli.config)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run(config, once))
        }
        Command::Requests { state } => requests(&cli.config, state),
        Command::Show { id, json } => show_request(&cli.config, id, json),
        Command::Release { ids, all } => release(&cli.config, ids, all),
        Command::Done { id, note } => done(&cli.config, id, note),
        Command::Confirm { id, step, by, note } => confirm(&cli.config, id, &step, &by, note),
        Command::Cancel { id, reason } => cancel(&cli.config, id, reason),
        Command::Retry { id } => retry(&cli.config, id),
        Command::Plan => plan(&cli.config),
        Command::Report { from, to, format } => report(&cli.config, from, to, format),
    }
}

/// `cuentas requests`: one line per request, optionally of one state.
fn requests(path: &Path, state: Option<StateName>) -> Result<()> {
    let config = load(path)?;
    let store = open_store(&config)?;
    let now = now();
    let mut out = std::io::stdout().lock();
    for r in store.requests() {
        let r = r?;
        if state.is_none_or(|s| s == r.state.name()) {
            writeln!(out, "{}", line(&r, Some(sla_column(&r, &config, now))))?;
        }
    }
    Ok(())
}

/// `cuentas show`: a request with its whole history, or its stored record.
fn show_request(path: &Path, id: RequestId, json: bool) -> Result<()> {
    let config = load(path)?;
    let store = open_store(&config)?;
    if json {
        let Some(raw) = store.raw_request(id)? else {
            bail!("no request {id} in {}", config.state_dir.display())
        };
        println!("{}", String::from_utf8_lossy(&raw));
        return Ok(());
    }
    let Some(r) = store.request(id)? else { bail!("no request {id} in {}", config.state_dir.display()) };
    print!("{}", show(&r, &config));
    Ok(())
}

/// `cuentas release`: held disables go on at the next cycle.
fn release(path: &Path, ids: Vec<RequestId>, all: bool) -> Result<()> {
    let config = load(path)?;
    let store = open_store(&config)?;
    let held: Vec<Request> =
        store.open_requests()?.into_iter().filter(|r| r.state.name() == StateName::Held).collect();
    if !all && ids.is_empty() {
        bail!("name the requests to release (see «cuentas requests --state Held»), or use --all");
    }
    for id in &ids {
        if !held.iter().any(|r| r.id == *id) {
            bail!("{id} is not held");
        }
    }
    for mut r in held.into_iter().filter(|r| all || ids.contains(&r.id)) {
        let crate::request::State::Held { plan, .. } = r.state.clone() else { continue };
        let state = crate::request::State::Executing { plan, attempts: 0, retry_at: None, released: true };
        r.transition(state, admin(), "liberada por un administrador", now())?;
        let mut changes = crate::store::Changes::new();
        changes.put_request(&r);
        store.commit(changes)?;
        println!("{} released", r.id);
    }
    Ok(())
}

/// `cuentas done`: a request handled by hand is reported to its requester.
fn done(path: &Path, id: RequestId, note: String) -> Result<()> {
    let config = load(path)?;
    let store = open_store(&config)?;
    let Some(mut r) = store.request(id)? else { bail!("no request {id}") };
    if r.state.name() != StateName::Manual {
        bail!("{id} is {}, not Manual: only requests handled by hand are marked done", r.state.name());
    }
    let now = now();
    r.transition(crate::request::State::Notifying, admin(), note.clone(), now)?;
    let to = vec![r.submission.requester.clone()];
    r.queue_message(crate::store::MessageKind::Outcome, to, note, now);
    if let Some(register) = &config.mailboxes.register
        && let Some(copy) = r.outbox.last().and_then(|m| m.register_copy(&register.to_string()))
    {
        r.outbox.push(copy);
    }
    let mut changes = crate::store::Changes::new();
    changes.put_request(&r);
    store.commit(changes)?;
    println!("{id} done; the requester is told at the next cycle, then it closes");
    Ok(())
}

/// `cuentas confirm`: one step of a deletion's checklist done; the deletion follows the last.
fn confirm(path: &Path, id: RequestId, step: &str, by: &str, note: Option<String>) -> Result<()> {
    use crate::request::{DELETION_CHECKLIST, State, checklist_step};
    let config = load(path)?;
    let store = open_store(&config)?;
    let Some(mut r) = store.request(id)? else { bail!("no request {id}") };
    let State::AwaitingConfirmation { pending, since } = r.state.clone() else {
        bail!("{id} is {}, not AwaitingConfirmation: only deletions wait for confirmations", r.state.name())
    };
    let step = step.trim().to_lowercase();
    let Some(what) = checklist_step(&step) else {
        let keys: Vec<&str> = DELETION_CHECKLIST.iter().map(|(k, _)| *k).collect();
        bail!("«{step}» is not a step of the checklist; one of: {}", keys.join(", "))
    };
    if !pending.contains(&step) {
        bail!("{id}: «{step}» ({what}) was confirmed already");
    }
    if by.trim().is_empty() {
        bail!("--by names who made and checked the step");
    }
    let pending: Vec<String> = pending.into_iter().filter(|p| *p != step).collect();
    let mut reason = format!("confirmado «{step}» ({what}) por {}", by.trim());
    if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
        reason.push_str(&format!(": {}", note.trim()));
    }
    let left = pending.clone();
    r.transition(State::AwaitingConfirmation { pending, since }, admin(), reason, now())?;
    let mut changes = crate::store::Changes::new();
    changes.put_request(&r);
    store.commit(changes)?;
    if left.is_empty() {
        let days = i64::from(config.directory.min_days_disabled_before_delete);
        let after = since + jiff::SignedDuration::from_hours(24 * days);
        let tz = config.calendar.time_zone().clone();
        let after = after.to_zoned(tz).strftime("%Y-%m-%d %H:%M");
        println!("{id}: every step confirmed; the account is deleted at the first cycle from {after}");
    } else {
        println!("{id}: «{step}» confirmed; still to confirm: {}", left.join(", "));
    }
    Ok(())
}

/// `cuentas cancel`: an open request is closed without an answer. What its steps already did
/// to the directory stays: said, so that nobody believes the account was put back.
fn cancel(path: &Path, id: RequestId, reason: String) -> Result<()> {
    let config = load(path)?;
    let store = open_store(&config)?;
    let Some(mut r) = store.request(id)? else { bail!("no request {id}") };
    // A leave waiting for its return, a deletion waiting for its backups: the account is
    // disabled by this request's first step.
    let left_disabled = r.phase != crate::request::Phase::Start
        && matches!(r.state.name(), StateName::Scheduled | StateName::AwaitingConfirmation);
    r.transition(crate::request::State::Cancelled { reason: reason.clone() }, admin(), reason, now())?;
    let mut changes = crate::store::Changes::new();
    changes.put_request(&r);
    store.commit(changes)?;
    println!("{id} cancelled");
    if left_disabled {
        let account = r.account.as_deref().unwrap_or(&r.submission.account);
        println!(
            "note: cancelling re-enables nothing: the account {account} stays disabled where this request left it; \
             to use it again, ask for a «Reactivación de cuenta» or enable it in the directory"
        );
    }
    Ok(())
}

/// `cuentas retry`: a failed request runs its directory step again.
fn retry(path: &Path, id: RequestId) -> Result<()> {
    let config = load(path)?;
    let store = open_store(&config)?;
    let Some(mut r) = store.request(id)? else { bail!("no request {id}") };
    let crate::request::State::Failed { plan, .. } = r.state.clone() else {
        bail!("{id} is {}, not Failed", r.state.name())
    };
    let Some(plan) = plan else { bail!("{id} failed before it had a directory plan; nothing to retry") };
    // A retry is not a release: the hourly limit of disables still holds.
    let state = crate::request::State::Executing { plan, attempts: 0, retry_at: None, released: false };
    r.transition(state, admin(), "reintentada por un administrador", now())?;
    let mut changes = crate::store::Changes::new();
    changes.put_request(&r);
    store.commit(changes)?;
    println!("{id} will be tried again at the next cycle");
    Ok(())
}

/// `cuentas report`: the work done over a period.
fn report(path: &Path, from: jiff::civil::Date, to: jiff::civil::Date, format: ReportFormat) -> Result<()> {
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let config = load(path)?;
    let store = open_store(&config)?;
    let requests = store.requests().collect::<Result<Vec<Request>, _>>()?;
    let report = crate::report::build(requests, &config.calendar, &config.sla, from, to, now());
    let text = match format {
        ReportFormat::Table => report.table(),
        ReportFormat::Csv => report.csv(),
        ReportFormat::Json => report.json() + "\n",
    };
    print!("{text}");
    Ok(())
}

/// `cuentas plan`: what open requests will do to the directory.
fn plan(path: &Path) -> Result<()> {
    let config = load(path)?;
    let engine = Engine::new(config)?;
    let plans = engine.pending_plans()?;
    if plans.is_empty() {
        println!("nothing pending: no open request has directory operations to run");
    }
    for (id, (state, plan)) in plans {
        println!("{id} ({state}) {}:", plan.account);
        if plan.ops.is_empty() {
            println!("  nothing to change");
        }
        for op in &plan.ops {
            println!("  {op}");
        }
    }
    Ok(())
}

/// Who is acting, for the history: the administrator behind sudo, or the user.
fn admin() -> crate::request::Actor {
    let who = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "root".into());
    crate::request::Actor::Admin(who)
}

fn load(path: &Path) -> Result<Config> {
    Ok(Config::load(path)?)
}

fn open_store(config: &Config) -> Result<Store> {
    Store::open(&config.state_dir)
        .with_context(|| "while the daemon runs, the store is its own; stop it or wait")
}

fn check(path: &Path, offline: bool) -> Result<()> {
    let config = load(path)?;
    let mut problems = Vec::new();
    if let Some(path) = &config.authorizers.path {
        match crate::policy::Matrix::load(path) {
            Ok(matrix) => problems.extend(
                matrix
                    .unknown_departments(&config.form.departments)
                    .into_iter()
                    .map(|p| format!("{}, {p}", path.display())),
            ),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(p) = &config.directory.snapshot_path
        && let Err(e) = crate::directory::snapshot::Snapshot::load(p)
    {
        problems.push(e.to_string());
    }
    match crate::notify::Templates::load(config.mail.templates_dir.as_deref()) {
        Ok(t) => problems.extend(t.check().into_iter().map(|e| e.to_string())),
        Err(e) => problems.push(e.to_string()),
    }
    for (key, hook) in config.hooks.configured() {
        problems.extend(hook.executable_problem(key));
    }
    let mut source = match crate::source::Source::from_config(&config) {
        Ok(source) => Some(source),
        Err(e) => {
            problems.push(format!("[source]: {e}"));
            None
        }
    };
    // A CSV export is checked offline; a spreadsheet needs the network (below).
    if let Some(csv @ crate::source::Source::Csv { .. }) = &mut source {
        match csv.header(now()) {
            Ok(header) => {
                if let Err(e) = crate::intake::ColumnMap::new(&header, &config.form.columns) {
                    problems.push(format!("{}: {e}", csv.describe()));
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        bail!("{} has {} problem(s):\n  - {}", path.display(), problems.len(), problems.join("\n  - "));
    }
    // What was checked here; a sheet's header and a matrix kept in a tab need the network.
    let mut checked = vec!["configuration"];
    if config.authorizers.path.is_some() {
        checked.push("authorizer matrix");
    }
    if config.directory.snapshot_path.is_some() {
        checked.push("directory snapshot");
    }
    checked.push("templates");
    if matches!(source, Some(crate::source::Source::Csv { .. })) {
        checked.push("form header");
    }
    println!("{}: {} are valid", path.display(), checked.join(", "));
    if offline {
        return Ok(());
    }
    check_online(&config, source)
}

/// The checks that need the network: the directory's bind and password policy, the sheet's
/// header, the matrix's tab.
fn check_online(config: &Config, mut source: Option<crate::source::Source>) -> Result<()> {
    if config.mail.transport == crate::config::MailTransport::Smtp {
        let host = config.mail.smtp_host.clone().unwrap_or_default();
        let mailer = crate::notify::Mailer::from_config(config)?;
        mailer.test().with_context(|| format!("mail relay {host}: mail would be blocked"))?;
        println!(
            "{host}: the mail relay takes the connection{}",
            if config.mail.smtp_username.is_some() { " and the login" } else { "" }
        );
    }
    match config.directory.mode {
        crate::config::DirectoryMode::Ldap => {
            let settings = crate::directory::ldap::LdapSettings::from_config(config)?;
            let url = settings.url.clone();
            let tz = config.calendar.time_zone().clone();
            let mut ldap = crate::directory::ldap::Ldap::new(settings, tz);
            let policy = ldap.password_policy().with_context(|| format!("directory {url}"))?;
            println!(
                "{url}: bound over TLS; domain password policy: at least {} characters{}",
                policy.min_length,
                if policy.complexity { ", complexity required" } else { "" }
            );
        }
        crate::config::DirectoryMode::DryRun => println!("directory: a dry run, nothing to reach"),
    }
    if let Some(crate::source::Source::Sheet(sheet)) = &mut source {
        let header = sheet.header(now()).with_context(|| format!("[source] {}", sheet.describe()))?;
        if let Err(e) = crate::intake::ColumnMap::new(&header, &config.form.columns) {
            bail!("[source] {}: {e}", sheet.describe());
        }
        println!(
            "{}: read as {}; its header has every required column ({} columns)",
            sheet.describe(),
            sheet.account(),
            header.len()
        );
    }
    if let Some(source) = &source
        && let Some(mut tab) = crate::source::matrix_sheet(config, source)?
    {
        let (header, rows) =
            tab.read_all(now()).with_context(|| format!("[authorizers] {}", tab.describe()))?;
        let n = rows.len();
        let matrix = crate::policy::Matrix::from_rows(&header, rows.into_iter().map(|r| (r.row, r.cells)))
            .with_context(|| format!("[authorizers] {}", tab.describe()))?;
        let unknown = matrix.unknown_departments(&config.form.departments);
        if !unknown.is_empty() {
            bail!("[authorizers] {}:\n  - {}", tab.describe(), unknown.join("\n  - "));
        }
        println!("{}: the authorizer matrix is valid ({n} rows)", tab.describe());
    }
    Ok(())
}

/// The daemon: a cycle per poll interval until SIGINT or SIGTERM, which let the current
/// cycle finish. Under systemd it reports READY once the store is open, pets the watchdog and
/// keeps a one-line STATUS.
async fn run(config: Config, once: bool) -> Result<()> {
    use sd_notify::NotifyState;
    let interval = Duration::from_secs(config.poll_interval_secs);
    let adapters = Adapters::from_config(&config)?;
    let mut engine = Engine::with_adapters(config, adapters)?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut watchdog_usec = 0;
    let watchdog = sd_notify::watchdog_enabled(false, &mut watchdog_usec)
        .then(|| Duration::from_micros(watchdog_usec / 2));
    if let Some(period) = watchdog {
        // Fed from the work itself: a cycle that goes on (a long first import) keeps it fed, a
        // cycle that hangs does not.
        let mut last = monotonic();
        engine.set_heartbeat(Box::new(move || {
            if last.elapsed() >= period {
                let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                last = monotonic();
            }
        }));
    }
    // READY once the store is open and the directory answered (or said why it did not).
    let (back, reachable) = tokio::task::spawn_blocking(move || {
        let reachable = engine.check_directory();
        (engine, reachable)
    })
    .await?;
    engine = back;
    if let Err(e) = &reachable {
        tracing::error!(error = %e, "the directory does not answer; requests will wait for it");
    }
    // Outside systemd (no $NOTIFY_SOCKET) these calls do nothing.
    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
    info!(store = %engine.store_dir().display(), "started");
    'run: loop {
        // The cycle blocks (sled, files, the LDAP client's own runtime): off the async thread.
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = engine.cycle(now());
            (engine, result)
        })
        .await?;
        engine = back;
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                retire(engine).await;
                return Err(e.into());
            }
        };
        if once {
            let printed = print_report(&engine, &report);
            retire(engine).await;
            return printed;
        }
        let open = engine.store().open_rows()?.len();
        let mut status = format!(
            "{open} open requests; last cycle registered {}, sent {}",
            report.registered, report.sent
        );
        if let Some(why) = engine.mail_blocked() {
            status.push_str(&format!("; MAIL BLOCKED: {why}"));
        }
        let _ = sd_notify::notify(false, &[NotifyState::Watchdog, NotifyState::Status(&status)]);
        if !report.touched.is_empty() || report.sent > 0 {
            info!(
                registered = report.registered,
                edited = report.edited,
                sent = report.sent,
                touched = report.touched.len(),
                open,
                "cycle done"
            );
        }
        let next_poll = tokio::time::sleep(interval);
        tokio::pin!(next_poll);
        let mut pet = tokio::time::interval(watchdog.unwrap_or(interval));
        loop {
            tokio::select! {
                _ = &mut next_poll => break,
                _ = pet.tick(), if watchdog.is_some() => {
                    let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                }
                _ = tokio::signal::ctrl_c() => break 'run,
                _ = sigterm.recv() => break 'run,
            }
        }
    }
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
    info!("stopping");
    retire(engine).await;
    Ok(())
}

/// Drops the engine off the async thread: its LDAP and Sheets clients own runtimes of their
/// own, and a runtime must not be dropped inside another.
async fn retire(engine: Engine) {
    let _ = tokio::task::spawn_blocking(move || drop(engine)).await;
}

fn print_report(engine: &Engine, report: &CycleReport) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for id in &report.touched {
        if let Some(r) = engine.store().request(*id)? {
            writeln!(out, "{}", line(&r, None))?;
        }
    }
    let open = engine.store().open_rows()?.len();
    writeln!(
        out,
        "{} registered, {} edited, {} messages sent, {} open{}",
        report.registered,
        report.edited,
        report.sent,
        open,
        report.halted.as_ref().map(|h| format!("; INGESTION STOPPED: {h}")).unwrap_or_default()
    )?;
    if let Some(e) = &report.source_error {
        writeln!(out, "the responses could not be read: {e}")?;
    }
    Ok(())
}

/// The service level in a `requests` line: `ANS 35%`, `ANS 35% ⏸` while its clock is stopped,
/// `ANS 120% !` once broken.
fn sla_column(r: &Request, config: &Config, now: Timestamp) -> String {
    let m = crate::sla::measure(r, &config.calendar, config.sla.hours_for(r.submission.kind), now);
    let mark = if m.broken() {
        " !"
    } else if m.paused {
        " ⏸"
    } else {
        ""
    };
    format!("ANS {:>3}%{mark}", m.percent())
}

/// `GU-2026-000001  row 2  Creación de cuenta  Closed  Se creó la cuenta …`, with the service
/// level before the reason when given.
fn line(r: &Request, sla: Option<String>) -> String {
    let s = &r.submission;
    let kind = s.kind.map_or("(sin tipo)", |k| k.label());
    let reason = match &r.state {
        crate::request::State::Scheduled { due, .. } => format!("scheduled for {due}"),
        crate::request::State::AwaitingConfirmation { pending, .. } if pending.is_empty() => {
            "every backup confirmed; deleted once disabled long enough".to_string()
        }
        crate::request::State::AwaitingConfirmation { pending, .. } => {
            format!("to confirm: {}", pending.join(", "))
        }
        state => state.reason().lines().collect::<Vec<_>>().join(" "),
    };
    let sla = sla.map(|s| format!("{s:<11} ")).unwrap_or_default();
    format!("{}  row {:<4} {:<24} {:<12} {sla}{}", r.id, r.row, kind, r.state.name().as_str(), reason)
}

fn show(r: &Request, config: &Config) -> String {
    let tz = config.calendar.time_zone().clone();
    let local = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
    let s = &r.submission;
    let mut out = format!(
        "{}  row {}  {}\n  state:     {}\n  requester: {}\n  person:    {}\n  account:   {}\n  received:  {}\n  deadline:  {}\n",
        r.id,
        r.row,
        s.kind.map_or(s.kind_answer.as_str(), |k| k.label()),
        r.state.name(),
        s.requester,
        s.full_name(),
        r.account.as_deref().unwrap_or(s.account.as_str()),
        local(r.received_at),
        local(r.sla_deadline),
    );
    let m = crate::sla::measure(r, &config.calendar, config.sla.hours_for(s.kind), now());
    out.push_str(&format!(
        "  submitted: {} (the service level counts from here)\n",
        local(crate::sla::start(r, &config.calendar))
    ));
    out.push_str(&format!(
        "  sla:       {} of {} business hours consumed ({} %), {} left{}{}{}\n",
        crate::sla::hours(m.consumed),
        config.sla.hours_for(s.kind),
        m.percent(),
        crate::sla::hours(m.remaining),
        if m.paused { ", clock stopped" } else { "" },
        r.sla.warned_at.map(|t| format!(", service desk warned {}", local(t))).unwrap_or_default(),
        r.sla.breached_at.map(|t| format!(", BREACHED {}", local(t))).unwrap_or_default(),
    ));
    if let crate::request::State::AwaitingConfirmation { pending, since } = &r.state {
        out.push_str(&format!(
            "  disabled:  {} (in the retired OU)\n  to confirm before deletion:\n",
            local(*since)
        ));
        for key in pending {
            let what = crate::request::checklist_step(key).unwrap_or_default();
            out.push_str(&format!("    {key:<16} {what}   (cuentas confirm {} {key} --by NAME)\n", r.id));
        }
        if pending.is_empty() {
            out.push_str("    nothing: every step is confirmed\n");
        }
    }
    if let Some(plan) = r.state.plan() {
        out.push_str("  plan:\n");
        for op in &plan.ops {
            out.push_str(&format!("    {op}\n"));
        }
    }
    out.push_str("  history:\n");
    for h in &r.history {
        let from = match h.from {
            Some(f) if f != h.to => format!("{f} → "),
            _ => String::new(),
        };
        let reason = h.reason.lines().collect::<Vec<_>>().join(" / ");
        out.push_str(&format!("    {}  {:<40} {from}{}  {reason}\n", local(h.at), h.actor.to_string(), h.to));
    }
    out
}
