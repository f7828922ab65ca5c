//! The daemon's control socket. sled belongs to one process: while the daemon runs, the
//! CLI's store commands (`cli::StoreCommand`) go to it through a Unix socket and run inside it;
//! when it does not, the CLI opens the store itself. Same code, same output, same exit codes
//! both ways.
//!
//! The protocol is one JSON line each way: `{"version":1,"command":…}`, then
//! `{"version":1,"code":…,"stdout":"…","stderr":"…"}`. Who may ask: root, the daemon's own
//! user and the members of `control_group`, told apart by the peer's credentials
//! (`SO_PEERCRED`); the history names the Unix user who made a change.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::cli::{Ctx, StoreCommand};
use crate::config::Config;
use crate::request::Actor;
use crate::store::Store;

/// The version of the protocol this build speaks.
pub const PROTOCOL: u32 = 1;

/// Exit code of a command that failed (its reason on standard error).
pub const FAILED: i32 = 1;
/// Exit code of a command the daemon refused (not allowed, or another protocol version), or
/// that could not reach it.
pub const REFUSED: i32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct Ask {
    version: u32,
    command: StoreCommand,
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub version: u32,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The chart a `report --chart` asked for, for the CLI to write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Vec<u8>>,
}

impl Answer {
    fn refused(why: String) -> Answer {
        Answer {
            version: PROTOCOL,
            code: REFUSED,
            stdout: String::new(),
            stderr: format!("refused: {why}\n"),
            chart: None,
        }
    }
}

/// Runs `command` on a store: its output and exit code.
pub fn answer(
    config: &Config,
    store: &Store,
    command: &StoreCommand,
    actor: Actor,
    now: Timestamp,
) -> Answer {
    let ctx = Ctx { config, store, actor, now, marks: None };
    let failed = |e: anyhow::Error| Answer {
        version: PROTOCOL,
        code: FAILED,
        stdout: String::new(),
        stderr: format!("cuentas: {e:#}\n"),
        chart: None,
    };
    let chart = match command.chart(&ctx) {
        Ok(chart) => chart,
        Err(e) => return failed(e),
    };
    match command.run(&ctx) {
        Ok(stdout) => Answer { version: PROTOCOL, code: 0, stdout, stderr: String::new(), chart },
        Err(e) => failed(e),
    }
}

/// The CLI side: `command` through the running daemon, or on the store when none runs. Prints
/// its output; the exit code is returned for `main`.
pub fn command(config_path: &Path, command: &StoreCommand, now: Timestamp) -> Result<i32> {
    let config = Config::load(config_path)?;
    let answer = match ask(&config.control_socket, command)? {
        Some(answer) => answer,
        None => {
            if let Some(refusal) = foreign_store(&config.state_dir) {
                eprintln!("refused: {refusal}");
                return Ok(2);
            }
            let mut store = Store::open(&config.state_dir).with_context(|| {
                format!(
                    "the store at {} is held by another process, and no daemon answers at {}",
                    config.state_dir.display(),
                    config.control_socket.display()
                )
            })?;
            store.set_wake_rules(crate::engine::wake_rules(&config))?;
            self::answer(&config, &store, command, local_user(), now)
        }
    };
    if let (Some(png), StoreCommand::Report { chart: Some(path), .. }) = (&answer.chart, command) {
        std::fs::write(path, png).with_context(|| format!("cannot write the chart to {}", path.display()))?;
    }
    print!("{}", answer.stdout);
    eprint!("{}", answer.stderr);
    // The evidence's anchor, computed here from what was received, for the administrator to
    // keep apart from the file.
    if let (StoreCommand::Report { evidence: true, .. }, 0) = (command, answer.code) {
        match crate::report::evidence::verify(&answer.stdout) {
            Ok((lines, end)) => {
                eprintln!("evidence: {lines} lines; its chain ends in {end} (keep this apart from the file)")
            }
            Err(e) => eprintln!("evidence: does not verify: {e}"),
        }
    }
    Ok(answer.code)
}

/// Why this process must not open the store in `state_dir` itself: it belongs to another user
/// (the daemon's). Opened by root, sled would leave files the daemon cannot open, and it would
/// not start again; opened by anyone else, sled fails on permissions, not on a lock.
fn foreign_store(state_dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(state_dir).ok()?.uid();
    // /proc/self belongs to the process's effective user.
    let me = std::fs::metadata("/proc/self").ok()?.uid();
    (owner != me).then(|| {
        let name = user_name(owner);
        format!(
            "the daemon is not running and the store in {} belongs to {name}: run the command as that user \
             (runuser -u {name} -- cuentas …), or start the daemon",
            state_dir.display()
        )
    })
}

/// Who runs the CLI on the store directly: the administrator behind sudo, or the user.
fn local_user() -> Actor {
    let who = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "root".into());
    Actor::Admin(who)
}

/// Asks the daemon at `socket`; `None` when no daemon listens there (no socket, or a stale one).
fn ask(socket: &Path, command: &StoreCommand) -> Result<Option<Answer>> {
    use std::io::ErrorKind;
    let stream = match std::os::unix::net::UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            anyhow::bail!(
                "cannot reach the running daemon at {}: permission denied (ask to be added to the control group)",
                socket.display()
            )
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot reach the running daemon at {}", socket.display()));
        }
    };
    // A command waits for the cycle the daemon is in to end.
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut line = serde_json::to_string(&Ask { version: PROTOCOL, command: command.clone() })?;
    line.push('\n');
    if let Err(e) = (&stream).write_all(line.as_bytes()) {
        // A daemon that refuses this user answers without reading the request, and may have
        // closed before it was written: its answer is there to read all the same.
        if e.kind() != ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).context("the daemon did not answer")?;
    let answer: Answer = serde_json::from_str(&reply).context("the daemon's answer is not understood")?;
    Ok(Some(answer))
}

/// The daemon side: one connection, one command. `store_changed` says whether the command
/// may have changed the store (the engine then reads its indexes again).
pub async fn serve(
    stream: tokio::net::UnixStream,
    config: &Config,
    store: &Store,
    daemon_uid: u32,
    now: Timestamp,
) -> Result<bool> {
    let peer = stream.peer_cred()?;
    let (read, mut write) = stream.into_split();
    let user = user_name(peer.uid());
    let mut changed = false;
    // Who it is first: nothing is read from a peer that may not use the socket.
    let answer = match allowed(peer.uid(), peer.gid(), daemon_uid, config.control_group.as_deref()) {
        Err(why) => {
            warn!(user = %user, uid = peer.uid(), "control command refused");
            Answer::refused(why)
        }
        Ok(()) => match read_ask(read).await? {
            Err(why) => Answer::refused(why),
            Ok(ask) if ask.version != PROTOCOL => Answer::refused(format!(
                "this daemon speaks protocol {PROTOCOL}, the command {}: use the cuentas that runs it",
                ask.version
            )),
            Ok(ask) => {
                changed = ask.command.changes_the_store();
                let answer = answer(config, store, &ask.command, Actor::Admin(user.clone()), now);
                info!(user = %user, code = answer.code, "control command");
                answer
            }
        },
    };
    let mut reply = serde_json::to_string(&answer)?;
    reply.push('\n');
    write.write_all(reply.as_bytes()).await?;
    Ok(changed)
}

/// The longest request line read (a command is a few hundred bytes).
const MAX_ASK: u64 = 64 * 1024;

/// One request line, at most [`MAX_ASK`] bytes, within 10 seconds; `Err` says why it is refused.
async fn read_ask(read: tokio::net::unix::OwnedReadHalf) -> Result<Result<Ask, String>> {
    use tokio::io::AsyncReadExt;
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take(MAX_ASK + 1));
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .context("a control client sent nothing")??;
    if line.len() as u64 > MAX_ASK || !line.ends_with('\n') {
        return Ok(Err(format!("the request is longer than {MAX_ASK} bytes, or not one line: not read")));
    }
    Ok(serde_json::from_str(&line)
        .map_err(|e| format!("not a request this daemon understands ({e}); it speaks protocol {PROTOCOL}")))
}

/// Whether the peer may use the socket: root, the daemon's user, or a member of the group.
fn allowed(uid: u32, gid: u32, daemon_uid: u32, group: Option<&str>) -> Result<(), String> {
    if uid == 0 || uid == daemon_uid {
        return Ok(());
    }
    let user = user_name(uid);
    if let Some(group) = group
        && let Some((group_gid, members)) = group_entry(group)
    {
        let primary = passwd_entry(uid).map(|(_, gid)| gid);
        if gid == group_gid || primary == Some(group_gid) || members.contains(&user) {
            return Ok(());
        }
    }
    Err(match group {
        Some(group) => format!(
            "{user} (uid {uid}) may not use cuentas's control socket: only root, the daemon's user and members of «{group}»"
        ),
        None => format!(
            "{user} (uid {uid}) may not use cuentas's control socket: only root and the daemon's user (no control_group is configured)"
        ),
    })
}

/// `(name, primary gid)` of a user, from `/etc/passwd`.
fn passwd_entry(uid: u32) -> Option<(String, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[2].parse() == Ok(uid)).then(|| (f[0].to_string(), f[3].parse().unwrap_or(u32::MAX)))
    })
}

fn user_name(uid: u32) -> String {
    passwd_entry(uid).map_or_else(|| format!("uid {uid}"), |(name, _)| name)
}

/// `(gid, members)` of a group, from `/etc/group`.
fn group_entry(name: &str) -> Option<(u32, Vec<String>)> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| {
            let members = f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect();
            (f[2].parse().unwrap_or(u32::MAX), members)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_the_daemon_s_user_may_others_only_through_the_group() {
        assert!(allowed(0, 0, 999, None).is_ok());
        assert!(allowed(999, 999, 999, None).is_ok());
        let refused = allowed(65534, 65534, 999, None).unwrap_err();
        assert!(refused.contains("uid 65534") && refused.contains("no control_group"), "{refused}");
        // Debian's `nogroup` (gid 65534): a process whose group it is may; another may not.
        if group_entry("nogroup").is_some_and(|(gid, _)| gid == 65534) {
            assert!(allowed(65534, 65534, 999, Some("nogroup")).is_ok());
            assert!(allowed(1, 1, 999, Some("nogroup")).unwrap_err().contains("members of «nogroup»"));
        }
        assert!(allowed(1, 1, 999, Some("no-such-group")).is_err());
    }
}
