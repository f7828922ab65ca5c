//! The live mail tests' SMTP server: Debian's aiosmtpd running `tests/smtp_sink.py` with
//! STARTTLS on the test CA that `tests/smtp.sh` prepared, its Maildir read back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::Mail;

/// What `tests/smtp.sh` prepared.
pub struct Env {
    pub sink: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What `tests/smtp.sh` prepared. The live mail tests are `#[ignore]`d (see `Ad::from_env`):
/// run without it, they fail here.
pub fn env() -> Env {
    let var = |k: &str| std::env::var_os(k).map(PathBuf::from);
    match (
        var("CUENTAS_TEST_SMTP_SINK"),
        var("CUENTAS_TEST_SMTP_CA"),
        var("CUENTAS_TEST_SMTP_CERT"),
        var("CUENTAS_TEST_SMTP_KEY"),
    ) {
        (Some(sink), Some(ca), Some(cert), Some(key)) => Env { sink, ca, cert, key },
        _ => panic!(
            "this live test needs the test SMTP relay: run tests/run.sh, or tests/smtp.sh target/smtp and \
             source target/smtp/env (CUENTAS_TEST_SMTP_* not set)"
        ),
    }
}

/// One SMTP server process, stopped on drop.
pub struct Sink {
    child: Option<Child>,
    pub port: u16,
    pub maildir: PathBuf,
}

impl Sink {
    pub fn start(env: &Env, maildir: &Path, port: u16) -> Sink {
        Sink::start_with(env, maildir, port, None)
    }

    /// A server that asks for AUTH with `login` and `password` (and refuses any other).
    pub fn with_login(env: &Env, maildir: &Path, login: &str, password: &str) -> Sink {
        Sink::start_with(env, maildir, 0, Some((login, password)))
    }

    /// A server on `port` (0: any) that takes only AUTH XOAUTH2 for `mailbox`, with a token
    /// that is a line of the file `tokens` when it logs in (the emulated token endpoint writes it).
    pub fn with_xoauth2(env: &Env, maildir: &Path, port: u16, mailbox: &str, tokens: &Path) -> Sink {
        let tokens = tokens.to_str().unwrap();
        Sink::spawn(env, maildir, port, &["--xoauth2", mailbox, tokens])
    }

    fn start_with(env: &Env, maildir: &Path, port: u16, login: Option<(&str, &str)>) -> Sink {
        let extra: Vec<&str> = login.iter().flat_map(|(l, p)| [*l, *p]).collect();
        Sink::spawn(env, maildir, port, &extra)
    }

    fn spawn(env: &Env, maildir: &Path, port: u16, extra: &[&str]) -> Sink {
        let port = if port == 0 {
            std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
        } else {
            port
        };
        let mut child = Command::new("/usr/bin/python3")
            .arg(&env.sink)
            .args(["127.0.0.1", &port.to_string()])
            .arg(maildir)
            .arg(&env.cert)
            .arg(&env.key)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Sink { child: Some(child), port, maildir: maildir.to_path_buf() }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
            c.wait().unwrap();
        }
    }

    /// Every message it accepted, decoded.
    pub fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(dir) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in dir {
                    out.push(Mail::parse(&std::fs::read_to_string(e.unwrap().path()).unwrap()));
                }
            }
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A configuration that had the file transport, sending through the server on `port` instead
/// (without the demo's own clock, which is for the file spool only: the test passes `now`).
pub fn through(config: &str, env: &Env, port: u16) -> String {
    let config: String =
        config.lines().filter(|l| !l.starts_with("demo_clock")).map(|l| format!("{l}\n")).collect();
    let smtp = format!(
        "transport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_security = \"starttls\"\nsmtp_ca_file = \"{}\"\nsmtp_timeout_secs = 5",
        port,
        env.ca.display()
    );
    let out = config.replace("transport = \"file\"\nspool_dir = \"var/correo\"", &smtp);
    assert!(out.contains("transport = \"smtp\""));
    out
}
