//! Hooks: the administrator's own commands, run at fixed points (DESIGN §6).
//!
//! - `after_change`: after a change to the directory (e.g. start the sync to the mail platform).
//! - `mailbox_ready ACCOUNT`: exit 0 when the new account's mailbox exists.
//! - `mailbox_deleted ACCOUNT`: after a deletion, exit 0 when the mailbox is gone.
//!
//! A hook is an argv from the configuration, run without a shell: no word splitting, no
//! globbing, no `;`, so an account name can never become code. Each run has a timeout, its
//! exit status and output go to the log and, through [`HookRun::summary`], to the request's
//! history. Examples in `deploy/hooks/`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// How often a running hook is checked (and the caller's `tick` called).
const POLL: Duration = Duration::from_millis(50);
/// How long each pipe reader may take to finish once the hook has ended. A background
/// grandchild can hold a pipe open for ever; two readers, so at most 1 s in all.
const READER_GRACE: Duration = Duration::from_millis(500);
/// The most of a hook's output kept in [`HookRun::output`], marker included.
pub const OUTPUT_LIMIT: usize = 2000;
/// What each reader keeps of its stream; the rest is read and dropped so the hook never blocks.
const CAPTURE_LIMIT: usize = 16 * 1024;
/// Appended when output was cut; Spanish, like the history it ends up in.
const CUT_MARKER: &str = " … [recortado]";
/// The most characters of output in a one-line [`HookRun::summary`].
const SUMMARY_OUTPUT_CHARS: usize = 300;

/// A hook's argv as configured: the program (an absolute path), then fixed arguments.
///
/// Written in TOML as a list of strings: `after_change = ["/usr/local/lib/cuentas/sync.sh"]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct HookCommand(pub Vec<String>);

impl HookCommand {
    /// The program, if the command is not empty.
    pub fn program(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// What is wrong with the command as written, for config validation (no file access).
    /// `key` is the setting's name in `[hooks]`, e.g. `mailbox_ready`.
    pub fn problems(&self, key: &str) -> Vec<String> {
        match self.program() {
            None | Some("") => vec![format!(
                "[hooks] {key}: the command is empty; write the program's absolute path, then its arguments"
            )],
            // No shell and no PATH lookup: a relative name would depend on the working directory.
            Some(program) if !Path::new(program).is_absolute() => vec![format!(
                "[hooks] {key}: «{program}» is not an absolute path (hooks run without a shell or PATH)"
            )],
            Some(_) => Vec::new(),
        }
    }

    /// Whether the program exists and is executable, for `cuentas check`. Only the execute bits
    /// are looked at: whether the daemon's user may run it shows when it runs.
    pub fn executable_problem(&self, key: &str) -> Option<String> {
        let program = self.program()?;
        match std::fs::metadata(program) {
            Err(e) => Some(format!("[hooks] {key}: cannot use «{program}»: {e}")),
            Ok(meta) if !meta.is_file() => Some(format!("[hooks] {key}: «{program}» is not a file")),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                Some(format!("[hooks] {key}: «{program}» is not executable (chmod +x)"))
            }
            Ok(_) => None,
        }
    }
}

/// How one run of a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    /// The exit code; `None` when the hook was killed (by the timeout or a signal).
    pub status: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// True when cuentas killed it at the timeout.
    pub timed_out: bool,
    /// The timeout it ran under, for the summary.
    pub timeout: Duration,
    /// Stdout then stderr, lossy UTF-8, trimmed, at most [`OUTPUT_LIMIT`] bytes.
    pub output: String,
}

impl HookRun {
    /// Exit 0 within the timeout.
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.status == Some(0)
    }

    /// One line for a request's history (Spanish: the service desk reads it), e.g.
    /// `salida 3: no existe el buzón / HTTP 404`.
    pub fn summary(&self) -> String {
        let head = match (self.status, self.timed_out, self.signal) {
            (_, true, _) => format!("sin terminar tras {} (detenido)", seconds(self.timeout)),
            (Some(code), false, _) => format!("salida {code}"),
            (None, false, Some(signal)) => format!("terminado por la señal {signal}"),
            (None, false, None) => "terminado sin código de salida".to_owned(),
        };
        let lines: Vec<&str> = self.output.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if lines.is_empty() {
            return head;
        }
        let text = lines.join(" / ");
        let text = if text.chars().count() > SUMMARY_OUTPUT_CHARS {
            let mut cut: String = text.chars().take(SUMMARY_OUTPUT_CHARS - 1).collect();
            cut.push('…');
            cut
        } else {
            text
        };
        format!("{head}: {text}")
    }
}

/// `60 s`, or `0,3 s` with a decimal comma when not whole.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64()).replace('.', ",")
    }
}

/// Why a hook could not be run at all (as opposed to running and failing: that is a [`HookRun`]).
#[derive(Debug, Error)]
pub enum HookError {
    #[error("the hook command is empty")]
    Empty,
    #[error("cannot start hook {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot wait for hook {program}: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs `command` with `extra_args` appended, killing it after `timeout`.
///
/// No shell; stdin is /dev/null, the environment is inherited and the working directory is `/`
/// (so a hook does not depend on where the daemon was started). `tick` is called about every
/// 50 ms while it runs: the caller feeds the systemd watchdog from it. Only the hook itself is
/// killed at the timeout; a background process it started may live on, and cuentas stops
/// waiting for its output after a second.
pub fn run(
    command: &HookCommand,
    extra_args: &[&str],
    timeout: Duration,
    mut tick: impl FnMut(),
) -> Result<HookRun, HookError> {
    let (program, args) = command.0.split_first().ok_or(HookError::Empty)?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .args(extra_args)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| HookError::Spawn { program: program.clone(), source })?;

    // Both pipes are drained at once, each in its own thread: a hook that fills one pipe while
    // we read the other would otherwise block for ever.
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = child.stdout.take().map(|pipe| capture(pipe, done_tx.clone()));
    let stderr = child.stderr.take().map(|pipe| capture(pipe, done_tx.clone()));
    drop(done_tx);

    let status = match wait(&mut child, timeout, &mut tick) {
        Ok(status) => status,
        Err(source) => {
            // The child is not to outlive us unwatched; both calls may fail if it is gone.
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Wait { program: program.clone(), source });
        }
    };

    // Once the hook has ended its pipes close, unless a grandchild inherited them: wait a
    // bounded time and take what was read. A reader still blocked is left to end on its own.
    for _ in [&stdout, &stderr].iter().filter(|c| c.is_some()) {
        if done_rx.recv_timeout(READER_GRACE).is_err() {
            break;
        }
    }
    let run = HookRun {
        status: status.code(),
        signal: status.signal(),
        // Killed by us and did not manage to exit by itself first.
        timed_out: status.timed_out && status.code().is_none(),
        timeout,
        output: combine(stdout.as_ref(), stderr.as_ref()),
    };
    let summary = run.summary();
    if run.succeeded() {
        tracing::info!(hook = %program, status = ?run.status, outcome = %summary, "hook succeeded");
    } else {
        tracing::warn!(hook = %program, status = ?run.status, timed_out = run.timed_out, outcome = %summary, "hook failed");
    }
    Ok(run)
}

struct Ended {
    status: std::process::ExitStatus,
    timed_out: bool,
}

impl Ended {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
    fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

/// Polls until the child ends, killing and reaping it at the timeout.
///
/// Elapsed time is the sum of the sleeps rather than a clock reading (only `app` reads the
/// clock): it is a lower bound, and the work between polls is microseconds.
fn wait(child: &mut Child, timeout: Duration, tick: &mut impl FnMut()) -> std::io::Result<Ended> {
    let mut waited = Duration::ZERO;
    loop {
        tick();
        if let Some(status) = child.try_wait()? {
            return Ok(Ended { status, timed_out: false });
        }
        if waited >= timeout {
            // kill() fails only if it was already reaped, which try_wait just said it was not.
            if let Err(e) = child.kill() {
                tracing::debug!(error = %e, "hook: kill at timeout failed");
            }
            return Ok(Ended { status: child.wait()?, timed_out: true });
        }
        let step = POLL.min(timeout - waited);
        thread::sleep(step);
        waited += step;
    }
}

/// What a reader has taken from one pipe so far; shared so it can be read before the pipe ends.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    /// More came than [`CAPTURE_LIMIT`].
    dropped: bool,
}

type Shared = Arc<Mutex<Capture>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Capture> {
    // A reader cannot panic while holding the lock; if it somehow did, the bytes are still good.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts a thread reading `pipe` to its end; it sends on `done` when it gets there.
fn capture(mut pipe: impl Read + Send + 'static, done: mpsc::Sender<()>) -> Shared {
    let shared = Shared::default();
    let theirs = Arc::clone(&shared);
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut c = lock(&theirs);
                    let room = CAPTURE_LIMIT.saturating_sub(c.bytes.len());
                    c.bytes.extend_from_slice(&buf[..n.min(room)]);
                    c.dropped |= n > room;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // The receiver may have stopped waiting already; nothing to do then.
        let _ = done.send(());
    });
    shared
}

/// Stdout then stderr, each trimmed, cut to [`OUTPUT_LIMIT`] bytes with a marker.
fn combine(stdout: Option<&Shared>, stderr: Option<&Shared>) -> String {
    let mut dropped = false;
    let mut parts = Vec::new();
    for shared in [stdout, stderr].into_iter().flatten() {
        let c = lock(shared);
        dropped |= c.dropped;
        let text = String::from_utf8_lossy(&c.bytes).trim().to_owned();
        if !text.is_empty() {
            parts.push(text);
        }
    }
    truncate(parts.join("\n"), dropped)
}

/// Cuts `text` on a char boundary so that, marker included, it fits in [`OUTPUT_LIMIT`] bytes.
fn truncate(mut text: String, already_cut: bool) -> String {
    if text.len() <= OUTPUT_LIMIT && !already_cut {
        return text;
    }
    let mut cut = text.len().min(OUTPUT_LIMIT - CUT_MARKER.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.truncate(text.trim_end().len());
    text.push_str(CUT_MARKER);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Writes a script to `dir` and returns a command running it with `/bin/sh`. Not executed
    /// directly: exec'ing a file just written races with other tests' forks (ETXTBSY).
    fn script(dir: &tempfile::TempDir, body: &str) -> HookCommand {
        let path = dir.path().join("hook.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        HookCommand(vec!["/bin/sh".into(), path.to_str().unwrap().into()])
    }

    fn run_script(body: &str, args: &[&str], timeout: Duration) -> HookRun {
        let dir = tempfile::tempdir().unwrap();
        run(&script(&dir, body), args, timeout, || {}).unwrap()
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn exit_zero_with_output() {
        let mut ticks = 0;
        let dir = tempfile::tempdir().unwrap();
        let cmd = script(&dir, "echo hola\necho 'a stderr' >&2\n  \nexit 0");
        let run = run(&cmd, &[], MINUTE, || ticks += 1).unwrap();
        assert!(run.succeeded());
        assert_eq!(run.status, Some(0));
        assert_eq!(run.output, "hola\na stderr");
        assert_eq!(run.summary(), "salida 0: hola / a stderr");
        assert!(ticks >= 1);
    }

    #[test]
    fn exit_three() {
        let run = run_script("exit 3", &[], MINUTE);
        assert!(!run.succeeded());
        assert_eq!((run.status, run.timed_out), (Some(3), false));
        assert_eq!(run.summary(), "salida 3");
    }

    #[test]
    fn runs_in_root_directory() {
        assert_eq!(run_script("pwd", &[], MINUTE).output, "/");
    }

    #[test]
    fn large_output_is_cut() {
        let run = run_script(
            "i=0; while [ $i -lt 1024 ]; do printf '%099d\\n' $i; i=$((i+1)); done; exit 0",
            &[],
            MINUTE,
        );
        assert!(run.succeeded());
        assert!(run.output.len() <= OUTPUT_LIMIT, "{}", run.output.len());
        assert!(run.output.ends_with("… [recortado]"));
        assert!(run.summary().chars().count() <= "salida 0: ".len() + SUMMARY_OUTPUT_CHARS);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let cut = truncate("ñ".repeat(3000), false);
        assert!(cut.len() <= OUTPUT_LIMIT);
        assert!(cut.starts_with("ññ") && cut.ends_with(CUT_MARKER));
        assert_eq!(truncate("corto".into(), false), "corto");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // Measures the test itself, not time the code depends on.
    fn killed_at_timeout() {
        // `sleep` is a grandchild holding the pipes open: the readers must not be waited for.
        let started = Instant::now();
        let run = run_script("echo empezando\nsleep 30", &[], Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(run.timed_out && !run.succeeded());
        assert_eq!(run.status, None);
        assert_eq!(run.summary(), "sin terminar tras 0,3 s (detenido): empezando");
    }

    #[test]
    fn timeout_summary_in_seconds() {
        let run = HookRun {
            status: None,
            signal: Some(9),
            timed_out: true,
            timeout: MINUTE,
            output: String::new(),
        };
        assert_eq!(run.summary(), "sin terminar tras 60 s (detenido)");
    }

    #[test]
    fn extra_args_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = script(&dir, r#"echo "$1|$2""#);
        cmd.0.push("--deleted".into());
        let run = run(&cmd, &["jperez"], MINUTE, || {}).unwrap();
        assert_eq!(run.output, "--deleted|jperez");
    }

    #[test]
    fn argument_is_not_interpreted_by_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let pwned = dir.path().join("pwned");
        let arg = format!("x; touch {}", pwned.display());
        let cmd = script(&dir, r#"printf '%s\n' "$#" "$1""#);
        let run = run(&cmd, &[&arg], MINUTE, || {}).unwrap();
        assert_eq!(run.output, format!("1\n{arg}"));
        assert!(!pwned.exists());
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let cmd = HookCommand(vec!["/nonexistent/cuentas-hook".into()]);
        let err = run(&cmd, &[], MINUTE, || {}).unwrap_err();
        assert!(
            matches!(err, HookError::Spawn { ref program, .. } if program == "/nonexistent/cuentas-hook")
        );
        assert!(matches!(run(&HookCommand(vec![]), &[], MINUTE, || {}), Err(HookError::Empty)));
    }

    #[test]
    fn problems_name_the_key() {
        assert_eq!(
            HookCommand(vec![]).problems("after_change"),
            [
                "[hooks] after_change: the command is empty; write the program's absolute path, then its arguments"
            ]
        );
        let relative = HookCommand(vec!["buzon-listo.sh".into()]).problems("mailbox_ready");
        assert_eq!(relative.len(), 1);
        assert!(relative[0].starts_with("[hooks] mailbox_ready: «buzon-listo.sh» is not an absolute path"));
        assert!(HookCommand(vec!["/bin/true".into(), "x".into()]).problems("k").is_empty());
    }

    #[test]
    fn executable_problem_checks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hook.sh");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cmd = HookCommand(vec![path.to_str().unwrap().into()]);
        let problem = cmd.executable_problem("mailbox_deleted").unwrap();
        assert!(
            problem.starts_with("[hooks] mailbox_deleted: ") && problem.contains("not executable"),
            "{problem}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(cmd.executable_problem("mailbox_deleted"), None);
        let missing = HookCommand(vec![dir.path().join("nope").to_str().unwrap().into()]);
        assert!(missing.executable_problem("k").is_some());
        assert!(HookCommand(vec![dir.path().to_str().unwrap().into()]).executable_problem("k").is_some());
    }
}
