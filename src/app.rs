//! Wiring: the command line, the poll loop, signals, logging. The only module that reads the clock.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use jiff::Timestamp;
use tracing::info;

use crate::config::Config;
use crate::engine::{Adapters, CycleReport, Engine};
use crate::logging::LogFormat;

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
    /// Check an evidence file (`report --evidence`): its chain from the first line to the
    /// closing one, and the hash it ends in; exit code 1 at the first line that breaks it.
    VerifyEvidence {
        file: PathBuf,
        /// The hash the chain must end in, as `report --evidence` printed it.
        #[arg(long)]
        ends_in: Option<String>,
    },
    #[command(flatten)]
    Store(crate::cli::StoreCommand),
}

/// The clock, and `app` is the one place that reads it; everything else is given `now`. The
/// real one, or the demo's (`[time] demo_clock`, allowed only with the dry-run directory and
/// the file spool), which starts at its own instant and advances with real time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    demo: Option<(Timestamp, std::time::Instant)>,
}

impl Clock {
    /// The clock the configuration at `path` asks for (the real one if it cannot be read: the
    /// command then says what is wrong with it).
    fn for_config(path: &Path) -> Clock {
        Config::load(path).map(|c| Clock::of(&c)).unwrap_or(Clock { demo: None })
    }

    fn of(config: &Config) -> Clock {
        Clock { demo: config.time.demo_clock.map(|at| (at, monotonic())) }
    }

    /// The daemon's clock: a demo clock goes on from where the process that started this one
    /// in place left it ([`RESUMED_AT`]), not from `demo_clock` again.
    fn resumed(config: &Config) -> Clock {
        let resumed = std::env::var(RESUMED_AT).ok().and_then(|at| at.parse::<Timestamp>().ok());
        Clock { demo: config.time.demo_clock.map(|at| (resumed.unwrap_or(at), monotonic())) }
    }

    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Timestamp {
        let t = match self.demo {
            Some((at, started)) => at.checked_add(started.elapsed()).unwrap_or(at),
            None => Timestamp::now(),
        };
        // Whole seconds: that is what the history shows, and it keeps stored records short.
        // Truncated, never rounded up: a step due at 07:30:00 must not run at 07:29:59.6.
        let second = jiff::TimestampRound::new().smallest(jiff::Unit::Second).mode(jiff::RoundMode::Trunc);
        t.round(second).unwrap_or(t)
    }
}

/// Where a daemon started again in place takes its demo clock up ([`Clock::resumed`]).
const RESUMED_AT: &str = "CUENTAS_DEMO_RESUMED_AT";

/// The process's resident memory in MiB (`VmRSS`), if it can be read.
fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Replaces this process with the same program and arguments (`exec`: the same process id,
/// so systemd sees no restart). Returns only if that failed.
fn start_again_in_place(demo_now: Option<Timestamp>) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    command.args(args);
    if let Some(now) = demo_now {
        command.env(RESUMED_AT, now.to_string());
    }
    command.exec()
}

/// The monotonic clock, for the watchdog's pace.
#[allow(clippy::disallowed_methods)]
fn monotonic() -> std::time::Instant {
    std::time::Instant::now()
}

/// Starts logging on standard error: human lines (no timestamps under journald) or JSON,
/// without personal data at any level (see [`crate::logging`]).
pub fn init_logging(format: LogFormat) {
    crate::logging::init(format);
}

/// Runs a parsed command line; its exit code (see `control` for the store commands').
pub fn main(cli: Cli) -> Result<i32> {
    // One TLS provider for the whole process (LDAP, SMTP, Google): ring. Installing it twice
    // is harmless, so a test calling this more than once does not fail.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Check { offline } => {
            crate::check::check(&cli.config, offline, Clock::for_config(&cli.config).now())
        }
        Command::Run { once } => {
            let config = load(&cli.config)?;
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run(config, once)).map(|()| 0)
        }
        Command::VerifyEvidence { file, ends_in } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            match crate::report::evidence::verify(&text) {
                Ok((_, end)) if ends_in.as_deref().is_some_and(|want| !want.eq_ignore_ascii_case(&end)) => {
                    eprintln!(
                        "{}: its chain ends in {end}, not in the hash given: not the file produced",
                        file.display()
                    );
                    Ok(1)
                }
                Ok((lines, end)) => {
                    println!("{}: {lines} lines, chained; it ends in {end}", file.display());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("{}: {e}", file.display());
                    Ok(1)
                }
            }
        }
        Command::Store(command) => {
            crate::control::command(&cli.config, &command, Clock::for_config(&cli.config).now())
        }
    }
}

fn load(path: &Path) -> Result<Config> {
    Ok(Config::load(path)?)
}

/// The daemon: a cycle per poll interval until SIGINT or SIGTERM, which let the current
/// cycle finish. Under systemd it reports READY once the store is open and the directory
/// answered a bind, pets the watchdog and keeps a one-line STATUS.
async fn run(config: Config, once: bool) -> Result<()> {
    use sd_notify::NotifyState;
    let interval = Duration::from_secs(config.poll_interval_secs);
    let ceiling = config.memory_ceiling_mib;
    let clock = Clock::resumed(&config);
    if config.time.demo_clock.is_some() {
        info!(at = %clock.now(), "the demo's own clock (demo_clock), not the machine's");
    }
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
    // READY once the store is open and the directory answered a bind; until then STATUS says
    // what it waits for, and the cycles go on (responses are registered and acknowledged).
    // Outside systemd (no $NOTIFY_SOCKET) these calls do nothing.
    let (back, mut waiting) = directory_answers(engine).await?;
    engine = back;
    if let Some(held) = resident_mib().filter(|held| ceiling > 0 && *held > ceiling) {
        // Every start holds this much, so it would start again at every poll.
        tracing::warn!(
            resident_mib = held,
            memory_ceiling_mib = ceiling,
            "memory_ceiling_mib is below what a start on this store holds: raise it"
        );
    }
    match &waiting {
        Some(why) => {
            tracing::error!(error = %why, "the directory does not answer; requests will wait for it");
            let _ = sd_notify::notify(
                false,
                &[NotifyState::Status(&format!("waiting for the directory: {why}"))],
            );
        }
        None => {
            let _ = sd_notify::notify(false, &[NotifyState::Ready]);
        }
    }
    // The control socket: CLI commands reach the store through the daemon while it runs. A
    // socket left by a daemon that was killed is replaced (the store's lock says none runs).
    let socket = engine.config().control_socket.clone();
    let _ = std::fs::remove_file(&socket);
    let listener = (!once)
        .then(|| tokio::net::UnixListener::bind(&socket))
        .transpose()
        .with_context(|| format!("cannot listen at {}", socket.display()))?;
    let mut daemon_uid = 0;
    if listener.is_some() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // Anyone may connect; the daemon answers only those allowed, and tells the others why.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        daemon_uid = std::fs::metadata(&socket)?.uid();
    }
    info!(store = %engine.store_dir().display(), socket = %socket.display(), "started");
    let mut held_past_ceiling = None;
    'run: loop {
        // The cycle blocks (sled, files, the LDAP client's own runtime): off the async thread.
        let (back, result) = tokio::task::spawn_blocking(move || {
            let result = engine.cycle(clock.now());
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
        let open = engine.store().open_count()?;
        let mut status = format!(
            "{open} open requests; last cycle registered {}, sent {}",
            report.registered, report.sent
        );
        if let Some(why) = engine.mail_blocked() {
            status.push_str(&format!("; MAIL BLOCKED: {why}"));
        }
        if waiting.is_some() {
            let (back, still) = directory_answers(engine).await?;
            engine = back;
            waiting = still;
            match &waiting {
                Some(why) => status = format!("waiting for the directory: {why}; {status}"),
                None => {
                    info!("the directory answers: ready");
                    let _ = sd_notify::notify(false, &[NotifyState::Ready]);
                }
            }
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
                Ok(stream) = accept(listener.as_ref()) => {
                    let served =
                        crate::control::serve(stream, engine.config(), engine.store(), daemon_uid, clock.now()).await;
                    match served {
                        Ok(true) => engine.reload_indexes()?,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "control connection failed"),
                    }
                }
            }
        }
        // When the next cycle is due, with nothing half done: the moment to give back what
        // sled holds (at most once a poll, even with a ceiling below what a start needs).
        if let Some(held) = resident_mib().filter(|held| ceiling > 0 && *held > ceiling) {
            held_past_ceiling = Some(held);
            break 'run;
        }
    }
    if let Some(held) = held_past_ceiling {
        info!(
            resident_mib = held,
            memory_ceiling_mib = ceiling,
            "holding more memory than memory_ceiling_mib (the store's engine keeps every page it read): starting again in place"
        );
        // The same process id keeps systemd's watchdog on it: a start on a large store takes
        // seconds, so it begins with the whole period.
        let status = format!("starting again in place: {held} MiB held, memory_ceiling_mib {ceiling}");
        let _ = sd_notify::notify(false, &[NotifyState::Watchdog, NotifyState::Status(&status)]);
    } else {
        let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
        info!("stopping");
    }
    if listener.is_some() {
        let _ = std::fs::remove_file(&socket);
    }
    let demo_now = engine.config().time.demo_clock.map(|_| clock.now());
    retire(engine).await;
    if held_past_ceiling.is_some() {
        return Err(anyhow::Error::new(start_again_in_place(demo_now)).context("cannot start again in place"));
    }
    Ok(())
}

/// Whether the directory answers a bind (off the async thread): `None` if it does, else why not.
async fn directory_answers(mut engine: Engine) -> Result<(Engine, Option<String>)> {
    Ok(tokio::task::spawn_blocking(move || {
        let why = engine.check_directory().err().map(|e| e.to_string());
        (engine, why)
    })
    .await?)
}

/// The next connection to the control socket, if there is one (else never).
async fn accept(listener: Option<&tokio::net::UnixListener>) -> std::io::Result<tokio::net::UnixStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
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
            writeln!(out, "{}", crate::cli::line(&r, None))?;
        }
    }
    let open = engine.store().open_count()?;
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
