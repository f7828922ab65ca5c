//! The log on standard error: human lines, or JSON with `--log-format json`. Request ids and
//! account names only, never a document number, a personal address, a password or an answer
//! (Ley 1581 de 2012): cuentas's own lines are written so, and the dependencies, which log what
//! passes through them, are capped here whatever `RUST_LOG` says.

use tracing::Subscriber;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// How the log is written: for people (the journal adds the time) or as JSON lines.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Starts logging on standard error as `RUST_LOG` says (default `info`): without timestamps
/// under journald (`$JOURNAL_STREAM`), which stamps each line itself, and with colours only on
/// a terminal (never under journald, a pipe or a file).
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let colours = !journald && std::io::stderr().is_terminal();
    subscriber(format, filter, journald, colours, std::io::stderr).init();
}

/// The subscriber [`init`] installs, writing to `writer`.
fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    journald: bool,
    colours: bool,
    writer: W,
) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(colours);
    let layer: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Human if journald => layer.without_time().boxed(),
        LogFormat::Human => layer.boxed(),
    };
    tracing_subscriber::registry().with(layer.with_filter(dependency_caps())).with(filter)
}

/// The most the dependencies may log, whatever `RUST_LOG` says (`debug`, `trace`,
/// `lettre=trace`, a span directive such as `[request]=trace`): a filter of the output's own,
/// after `RUST_LOG`'s, so no directive lifts it. At debug the dependencies write what must never
/// reach a log: lettre the SMTP conversation (recipients, the access-data message with its
/// password, the AUTH exchange), yup-oauth2 its token requests and answers (a signed
/// assertion, an access token); ldap3 warns with a whole LDAP reply (a DN, a person's name)
/// when one comes after its timeout. Their warnings and errors stay (ldap3's errors only:
/// cuentas reports the directory's failures itself, without the names). A relay or a
/// directory is debugged with `cuentas check` and the server's own log, not through this one.
fn dependency_caps() -> Targets {
    Targets::new()
        .with_target("cuentas", LevelFilter::TRACE)
        .with_target("ldap3", LevelFilter::ERROR)
        .with_default(LevelFilter::WARN)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer, for reading back what was logged.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// What one request's worth of events leaves in the log under `directives`.
    fn logged(format: LogFormat, directives: &str, journald: bool) -> String {
        let buffer = Buffer::default();
        let filter = EnvFilter::new(directives);
        let subscriber = subscriber(format, filter, journald, false, buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("request", request_id = "GU-2026-000001").entered();
            tracing::info!(target: "cuentas::engine::execute", account = "ana.diaz", "carried out");
            tracing::debug!(target: "cuentas::hooks", "hook: kill at timeout failed");
            // What the dependencies say at debug (log records arrive with the same targets).
            tracing::debug!(target: "lettre::transport::smtp::client::connection", "Wrote: RCPT TO:<ana@gmail.com>");
            tracing::trace!(target: "lettre::transport::smtp::client::connection", "<< 250 Ok7#Clave");
            tracing::debug!(target: "yup_oauth2::service_account", "received response; body: access_token");
            tracing::warn!(target: "ldap3::conn", "ldap result send error: CN=Ana Díaz");
            tracing::warn!(target: "hyper_util::client", "connection reset");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn no_directive_lets_a_dependency_below_its_cap() {
        for directives in
            ["debug", "trace", "info,lettre=trace,yup_oauth2=trace,ldap3=trace", "[request]=trace"]
        {
            for format in [LogFormat::Human, LogFormat::Json] {
                let log = logged(format, directives, false);
                assert!(log.contains("carried out") && log.contains("GU-2026-000001"), "{directives}: {log}");
                for secret in ["ana@gmail.com", "Ok7#Clave", "access_token", "Ana Díaz"] {
                    assert!(!log.contains(secret), "{directives}: {secret} in\n{log}");
                }
                assert!(log.contains("connection reset"), "a dependency's warning stays: {log}");
            }
        }
        // cuentas's own debug lines come with `debug`, not at the default level.
        assert!(logged(LogFormat::Human, "debug", false).contains("kill at timeout"));
        assert!(!logged(LogFormat::Human, "info", false).contains("kill at timeout"));
    }

    #[test]
    fn journald_lines_have_no_time_and_json_lines_are_json() {
        let human = logged(LogFormat::Human, "info", true);
        assert!(
            human.lines().all(|l| l.trim_start().starts_with("INFO") || l.trim_start().starts_with("WARN")),
            "{human}"
        );
        assert!(!human.contains('\u{1b}'), "{human}");
        for line in logged(LogFormat::Json, "info", false).lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(value["level"].is_string(), "{line}");
        }
    }
}
