//! E-mail: Spanish templates (built in, overridable file by file) rendered from a request, and
//! the transports that deliver them: the `.eml` spool, or SMTP with a password or an OAuth
//! token (`oauth`).

pub mod file;
pub mod oauth;
pub mod smtp;

use self::file::FileSender;
use self::smtp::{SmtpSender, SmtpSettings};

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::config::{Config, MailTransport, SmtpSecurity};

/// Where messages go: a spool of `.eml` files, or an SMTP server.
pub enum Mailer {
    File(FileSender),
    Smtp(Box<SmtpSender>),
}

/// An error's cause, kept as it came (lettre's errors differ by transport).
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A message that could not be built or delivered. [`SendError::is_transient`] says whether to
/// try again; [`SendError::is_bad_address`] whether the requester must fix the address.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The address cannot be used: the requester must fix it (DESIGN §1, activity 5).
    #[error("address «{address}» is not valid: {source}")]
    BadAddress {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("cannot build message {id}: {source}")]
    Build {
        id: String,
        #[source]
        source: lettre::error::Error,
    },
    /// Writing the spool failed; trying again later may work.
    #[error("cannot write to the mail spool {}: {source}", path.display())]
    Spool {
        path: PathBuf,
        #[source]
        source: Cause,
    },
    /// The server refused the recipient for good: the address must be fixed.
    #[error("the mail server refused the recipient: {source}")]
    Rejected {
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The server refused for good for another reason (authentication, policy): an operator must look.
    #[error("the mail server {host} refused the message: {source}")]
    Refused {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// Down, busy, unreachable or slow: trying again later may work.
    #[error("the mail server {host} is unavailable: {source}")]
    Unavailable {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// No token for XOAUTH2: the endpoint refused the credential (an operator must fix it) or
    /// did not answer; the messages wait either way.
    #[error("the mail server {host} cannot be logged in to: {source}")]
    Token {
        host: String,
        #[source]
        source: self::oauth::TokenError,
    },
    #[error("cannot set up mail to {host}: {source}")]
    Setup {
        host: String,
        #[source]
        source: Cause,
    },
}

impl SendError {
    /// Whether trying again later may succeed: everything but a bad address or a message that
    /// cannot be built. A relay that refuses us (authentication, policy, TLS) is fixed by an
    /// operator, and the messages wait for it.
    pub fn is_transient(&self) -> bool {
        !matches!(self, SendError::BadAddress { .. } | SendError::Rejected { .. } | SendError::Build { .. })
    }

    /// The error as the log may show it: without the recipient's address (personal data),
    /// nor the server's own words, which may quote it (`450 <m@gmail.com>: greylisted`); the
    /// reply code says what went wrong, and the request's history keeps the whole reply.
    pub fn for_log(&self) -> String {
        match self {
            SendError::BadAddress { .. } => "the recipient's address is not valid".into(),
            SendError::Rejected { source } => {
                format!("the mail server refused the recipient: {}", relay_error(source))
            }
            SendError::Refused { host, source } => {
                format!("the mail server {host} refused the message: {}", relay_error(source))
            }
            SendError::Unavailable { host, source } => {
                format!("the mail server {host} is unavailable: {}", relay_error(source))
            }
            other => other.to_string(),
        }
    }

    /// Whether the recipient's address is what is wrong (the requester can fix it).
    pub fn is_bad_address(&self) -> bool {
        matches!(self, SendError::BadAddress { .. } | SendError::Rejected { .. })
    }
}

/// A relay's error without the server's text: its kind and reply code, or, for an error that
/// is not a reply (network, TLS, timeout), its description.
fn relay_error(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) if e.is_permanent() => format!("permanent error ({code})"),
        Some(code) => format!("transient error ({code})"),
        None if e.is_response() => "the server's reply cannot be read".into(),
        None => e.to_string(),
    }
}

impl Mailer {
    /// The transport `[mail]` names: the spool folder (created if missing), or an SMTP client
    /// with its CA and password read (the server is reached at the first message).
    pub fn from_config(config: &Config) -> Result<Mailer, SendError> {
        let m = &config.mail;
        match m.transport {
            MailTransport::File => {
                let spool = m.spool_dir.clone().unwrap_or_else(|| config.state_dir.join("correo"));
                Ok(Mailer::File(FileSender::new(&spool)?))
            }
            MailTransport::Smtp => {
                let host = m.smtp_host.clone().unwrap_or_default();
                let setup = |source: Cause| SendError::Setup { host: host.clone(), source };
                let ca_pem = match &m.smtp_ca_file {
                    Some(p) => Some(std::fs::read(p).map_err(|e| {
                        setup(format!("cannot read [mail] smtp_ca_file {}: {e}", p.display()).into())
                    })?),
                    None => None,
                };
                let security = m.smtp_security;
                let default_port = if security == SmtpSecurity::Tls { 465 } else { 587 };
                let timeout = std::time::Duration::from_secs(m.smtp_timeout_secs);
                let oauth = match (&m.oauth2, config.mail_oauth_secret().map_err(|e| setup(Box::new(e)))?) {
                    (
                        Some(crate::config::MailOAuth::Microsoft {
                            tenant,
                            client_id,
                            token_url,
                            client_certificate,
                            ..
                        }),
                        Some(secret),
                    ) => Some(self::oauth::TokenSource::Microsoft {
                        token_url: token_url.clone().unwrap_or_else(|| {
                            format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
                        }),
                        client_id: client_id.clone(),
                        credential: match client_certificate {
                            None => self::oauth::EntraCredential::Secret(secret),
                            Some(_) => self::oauth::EntraCredential::Certificate(std::sync::Arc::new(
                                self::oauth::ClientCertificate::from_pem(secret.expose()).map_err(|e| {
                                    setup(format!("[mail.oauth2] client_certificate: {e}").into())
                                })?,
                            )),
                        },
                    }),
                    (Some(crate::config::MailOAuth::Google { .. }), Some(secret)) => {
                        let key = google_sheets4::yup_oauth2::parse_service_account_key(secret.expose())
                            .map_err(|e| setup(format!("[mail.oauth2] service_account_key: {e}").into()))?;
                        Some(self::oauth::TokenSource::Google {
                            key: Box::new(key),
                            mailbox: m.smtp_username.clone().unwrap_or_default(),
                        })
                    }
                    _ => None,
                };
                let settings = SmtpSettings {
                    port: m.smtp_port.unwrap_or(default_port),
                    security,
                    ca_pem,
                    username: m.smtp_username.clone(),
                    password: config.smtp_password().map_err(|e| setup(Box::new(e)))?,
                    timeout,
                    oauth,
                    host,
                };
                Ok(Mailer::Smtp(Box::new(SmtpSender::new(&settings)?)))
            }
        }
    }

    /// Whether the relay would take a message now (the spool: whether it can be written).
    /// `now` tells a kept OAuth token from one past its time.
    pub fn test(&self, now: Timestamp) -> Result<(), SendError> {
        match self {
            Mailer::File(f) => f.test(),
            Mailer::Smtp(s) => s.test(now),
        }
    }

    pub fn send(&self, message: &lettre::Message, now: Timestamp) -> Result<(), SendError> {
        match self {
            Mailer::File(f) => f.send(message),
            Mailer::Smtp(s) => s.send(message, now),
        }
    }
}

/// Built-in templates, by file name (without `.txt`). The first line is `Asunto: …`.
const BUILT_IN: [(&str, &str); 18] = [
    ("acuse", include_str!("templates/acuse.txt")),
    ("rechazo", include_str!("templates/rechazo.txt")),
    ("redireccion", include_str!("templates/redireccion.txt")),
    ("informacion-requerida", include_str!("templates/informacion-requerida.txt")),
    ("resultado", include_str!("templates/resultado.txt")),
    ("gestion-manual", include_str!("templates/gestion-manual.txt")),
    ("alerta", include_str!("templates/alerta.txt")),
    ("datos-de-acceso", include_str!("templates/datos-de-acceso.txt")),
    ("aviso-titular", include_str!("templates/aviso-titular.txt")),
    ("duplicada", include_str!("templates/duplicada.txt")),
    ("avance", include_str!("templates/avance.txt")),
    ("lista-eliminacion", include_str!("templates/lista-eliminacion.txt")),
    ("aviso-ans", include_str!("templates/aviso-ans.txt")),
    ("registro", include_str!("templates/registro.txt")),
    ("sin-efecto", include_str!("templates/sin-efecto.txt")),
    ("respuesta-mesa", include_str!("templates/respuesta-mesa.txt")),
    ("fin-de-contrato", include_str!("templates/fin-de-contrato.txt")),
    ("regreso-de-licencia", include_str!("templates/regreso-de-licencia.txt")),
];

/// A template that cannot be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: cannot read {path}: {source}")]
    Read { name: String, path: String, source: std::io::Error },
    // Plain `{source}`, and minijinja without its `debug` feature: its debug output lists the
    // values of the template's variables, and the access-data message has a password in them.
    #[error("template {name}: {source}")]
    Template { name: String, source: minijinja::Error },
    #[error("template {name}: the first line must be «Asunto: …»")]
    NoSubject { name: String },
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
}

/// The message templates, with overrides from a folder applied.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Built-in templates, each replaced by `<dir>/<name>.txt` where that file exists.
    pub fn load(overrides: Option<&Path>) -> Result<Templates, TemplateError> {
        let mut env = Environment::new();
        // A missing variable is an error, never an empty string in a requester's mail.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        for (name, text) in BUILT_IN {
            let source = match overrides.map(|d| d.join(format!("{name}.txt"))).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path).map_err(|source| TemplateError::Read {
                    name: name.into(),
                    path: path.display().to_string(),
                    source,
                })?,
                None => text.to_string(),
            };
            env.add_template_owned(name, source)
                .map_err(|source| TemplateError::Template { name: name.into(), source })?;
        }
        Ok(Templates { env })
    }

    pub fn render(&self, name: &str, context: &Value) -> Result<Rendered, TemplateError> {
        let err = |source| TemplateError::Template { name: name.into(), source };
        let text = self.env.get_template(name).map_err(err)?.render(context).map_err(err)?;
        let (first, body) = text.split_once('\n').unwrap_or((&text, ""));
        let subject = first
            .strip_prefix("Asunto:")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TemplateError::NoSubject { name: name.into() })?;
        Ok(Rendered { subject: subject.to_string(), body: body.trim_start_matches('\n').to_string() })
    }

    /// Renders every template with a full sample context: what `check` runs, so a broken
    /// override is found before a requester would get it.
    pub fn check(&self) -> Vec<TemplateError> {
        let sample = sample_context();
        BUILT_IN.iter().filter_map(|(name, _)| self.render(name, &sample).err()).collect()
    }
}

/// Every variable any template may use, with sample values.
pub fn sample_context() -> Value {
    minijinja::context! {
        id => "GU-2026-000123", kind => "Creación de cuenta", kind_answer => "Creación de cuenta",
        holder => "Contratista", name => "María José De La Hoz", requester => "supervisor@upme.gov.co",
        account => "maria.delahoz", mail => "maria.delahoz@upme.gov.co", row => 12,
        received => "lunes 2 de marzo de 2026, 9:05 a. m.", submitted => "lunes 2 de marzo de 2026, 9:01 a. m.", deadline => "martes 3 de marzo de 2026, 11:35 a. m.",
        sla_hours => 10, due => "", effective_date => "", return_date => "", contract_end => "", detail => "…",
        subject => "…", service_request_procedure => "…", credentials_sent => true,
        personal_email_masked => "m***@gmail.com", password => "Xy7#example", dry_run => false, reset => false,
        replaces => false, sign_in => "maria.delahoz@upme.gov.co", min_length => 8, complex => true,
        signature => "Mesa de Servicio\nOficina de Tecnologías de la Información",
    }
}

const DAYS: [&str; 7] = ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"];
const MONTHS: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];

/// `martes 24 de marzo de 2026`
pub fn spanish_date(d: Date) -> String {
    let weekday = DAYS[d.weekday().to_monday_zero_offset() as usize];
    let month = MONTHS[(d.month() - 1) as usize];
    format!("{weekday} {} de {month} de {}", d.day(), d.year())
}

/// `martes 24 de marzo de 2026, 3:30 p. m.` in the entity's time zone.
pub fn spanish_datetime(t: Timestamp, tz: &TimeZone) -> String {
    let local = t.to_zoned(tz.clone());
    let (h, m) = (local.hour(), local.minute());
    let (h12, half) = match h {
        0 => (12, "a. m."),
        1..=11 => (h, "a. m."),
        12 => (12, "p. m."),
        _ => (h - 12, "p. m."),
    };
    format!("{}, {h12}:{m:02} {half}", spanish_date(local.date()))
}

/// `m***@gmail.com`: enough for the requester to recognise the address, not to harvest it.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_renders_with_the_sample() {
        let t = Templates::load(None).unwrap();
        assert!(t.check().is_empty(), "{:?}", t.check());
        let r = t.render("acuse", &sample_context()).unwrap();
        assert_eq!(r.subject, "[GU-2026-000123] Solicitud registrada: Creación de cuenta");
        assert!(r.body.contains("10 horas hábiles"));
    }

    #[test]
    fn the_access_data_state_the_domain_s_password_rule() {
        let t = Templates::load(None).unwrap();
        let with = |min_length: usize, complex: bool| {
            let ctx =
                minijinja::context! { min_length => min_length, complex => complex, ..sample_context() };
            t.render("datos-de-acceso", &ctx).unwrap().body
        };
        let complex = with(12, true);
        assert!(
            complex.contains(
                "La nueva\ncontraseña:\n  - debe tener al menos 12 caracteres;\n  - debe combinar al menos tres de \
                 estos cuatro: mayúsculas, minúsculas, números y símbolos;\n  - no puede contener su nombre ni su \
                 usuario;\n  - no puede ser una que ya haya usado.\n"
            ),
            "{complex}"
        );
        let simple = with(10, false);
        assert!(
            simple.contains(
                "contraseña:\n  - debe tener al menos 10 caracteres;\n  - no puede ser una que ya haya usado.\n"
            ),
            "{simple}"
        );
        assert!(!simple.contains("mayúsculas"), "{simple}");
        // No minimum in the domain (or its rules unknown): no number is made up.
        let none = with(0, false);
        assert!(none.contains("contraseña:\n  - no puede ser una que ya haya usado.\n"), "{none}");
        for body in [&complex, &simple, &none] {
            assert!(!body.contains("al menos 8 caracteres"), "{body}");
            assert!(body.contains("Usuario para iniciar sesión: maria.delahoz@upme.gov.co\n"), "{body}");
            assert!(body.starts_with("Cordial saludo,\n\nMaría José De La Hoz:\n"), "{body}");
        }
    }

    #[test]
    fn mails_to_people_open_with_the_greeting_and_close_with_the_signature() {
        let t = Templates::load(None).unwrap();
        let to_people = [
            "acuse",
            "avance",
            "datos-de-acceso",
            "aviso-titular",
            "duplicada",
            "informacion-requerida",
            "rechazo",
            "redireccion",
            "resultado",
            "sin-efecto",
        ];
        for name in to_people {
            let body = t.render(name, &sample_context()).unwrap().body;
            assert!(body.starts_with("Cordial saludo,\n"), "{name}: {body}");
            assert!(
                body.ends_with(
                    "\nCordialmente,\n\nMesa de Servicio\nOficina de Tecnologías de la Información\n"
                ),
                "{name}: {body}"
            );
        }
    }

    #[test]
    fn a_missing_variable_is_an_error_not_an_empty_string() {
        let t = Templates::load(None).unwrap();
        let ctx = minijinja::context! { id => "GU-2026-000001" };
        assert!(t.render("acuse", &ctx).is_err());
    }

    #[test]
    fn an_override_replaces_one_template_and_a_broken_one_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rechazo.txt"), "Asunto: No ({{ id }})\n\nOtro texto {{ detail }}\n")
            .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let r = t.render("rechazo", &sample_context()).unwrap();
        assert_eq!(r.subject, "No (GU-2026-000123)");
        assert!(t.render("acuse", &sample_context()).unwrap().body.contains("quedó registrada"));
        std::fs::write(dir.path().join("acuse.txt"), "Hola {{ nombre_que_no_existe }}\n").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(t.check().len(), 1);
    }

    #[test]
    fn dates_read_in_spanish() {
        let tz = TimeZone::get("America/Bogota").unwrap();
        let t: Timestamp = "2026-03-24T20:30:00Z".parse().unwrap();
        assert_eq!(spanish_datetime(t, &tz), "martes 24 de marzo de 2026, 3:30 p. m.");
        assert_eq!(mask_email("maria@gmail.com"), "m***@gmail.com");
    }
}
