//! Live test of the daemon under a service manager's eyes: `READY=1` only once the directory
//! answered a bind, `STATUS=` saying what it waits for until then, `WATCHDOG=1` all along
//! (`$NOTIFY_SOCKET` pointed at a socket of the test's).

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use common::ad::Ad;
use common::case::Case;

/// Everything sent to the notify socket within `wait`, or until a message contains `until`.
fn listen(socket: &UnixDatagram, got: &mut Vec<String>, wait: Duration, until: &str) {
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut buf = [0u8; 4096];
    let mut waited = Duration::ZERO;
    while waited < wait {
        match socket.recv(&mut buf) {
            Ok(n) => {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = message.contains(until);
                got.push(message);
                if done {
                    return;
                }
            }
            Err(_) => waited += Duration::from_millis(100),
        }
    }
}

/// Forwards `listener`'s connections to `to`, each in its own threads.
fn forward(listener: TcpListener, to: String) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&to) else { continue };
            let pipe = |mut from: TcpStream, mut into: TcpStream| {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || into.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = into.shutdown(std::net::Shutdown::Both);
                });
            };
            pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
            pipe(server, client);
        }
    });
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn ready_only_once_the_directory_answers_status_meanwhile_and_the_watchdog_all_along() {
    let ad = Ad::from_env();
    // A port nothing listens on yet: the directory "is down" until the test forwards it to the DC.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let case = Case::new(&ad, &[], "");
    let config = case.dir.path().join("cuentas.toml");
    let dc = ad.url.trim_start_matches("ldaps://").to_string();
    let text =
        std::fs::read_to_string(&config).unwrap().replace(&ad.url, &format!("ldaps://127.0.0.1:{port}"));
    std::fs::write(&config, format!("poll_interval_secs = 1\n{text}")).unwrap();
    let Case { dir, engine } = case;
    drop(engine);
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let _daemon = common::Daemon(
        Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("WATCHDOG_USEC", "1000000")
            .env("RUST_LOG", "warn")
            .spawn()
            .unwrap(),
    );
    let mut before = Vec::new();
    listen(&notify, &mut before, Duration::from_secs(4), "READY=1");
    let all = before.join("\n");
    assert!(!all.contains("READY=1"), "ready while the directory does not answer: {all}");
    assert!(all.contains("STATUS=waiting for the directory"), "{all}");
    assert!(before.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3, "{all}");
    // The directory answers: ready at the next cycle.
    forward(TcpListener::bind(("127.0.0.1", port)).unwrap(), dc);
    let mut after = Vec::new();
    listen(&notify, &mut after, Duration::from_secs(30), "READY=1");
    assert!(after.iter().any(|m| m.contains("READY=1")), "{}", after.join("\n"));
}
