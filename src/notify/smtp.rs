//! SMTP delivery (lettre): STARTTLS required, implicit TLS, or plain to a loopback relay only;
//! optional AUTH; the configured CA; a connection pool. Errors say whether to retry and whether
//! the recipient's address is what is wrong.

use std::time::Duration;

use lettre::message::Message;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

use super::SendError;
use crate::config::{Secret, SmtpSecurity, is_loopback};

/// Where and how to hand messages over.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    /// PEM of the CA(s) to trust instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout: Duration,
}

/// A pooled SMTP client.
pub struct SmtpSender {
    transport: SmtpTransport,
    host: String,
}

impl SmtpSender {
    pub fn new(s: &SmtpSettings) -> Result<SmtpSender, SendError> {
        let setup = |source: super::Cause| SendError::Setup { host: s.host.clone(), source };
        let mut builder = SmtpTransport::builder_dangerous(&s.host).port(s.port).timeout(Some(s.timeout));
        if s.security != SmtpSecurity::None {
            let mut params = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let cert = Certificate::from_pem(pem).map_err(|e| setup(format!("CA file: {e}").into()))?;
                params = params.certificate_store(CertificateStore::None).add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| setup(Box::new(e)))?;
            builder = builder.tls(match s.security {
                SmtpSecurity::Starttls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        } else if !is_loopback(&s.host) {
            return Err(setup(
                "plain SMTP is only allowed to a relay on this machine (127.0.0.1, ::1, localhost)".into(),
            ));
        }
        if let (Some(user), Some(password)) = (&s.username, &s.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        Ok(SmtpSender { transport: builder.build(), host: s.host.clone() })
    }

    /// Connects, says EHLO and logs in: whether the relay would take a message now.
    pub fn test(&self) -> Result<(), SendError> {
        self.transport.test_connection().map(|_| ()).map_err(|e| classify(&self.host, e))
    }

    /// Sends one message; `Ok` only after the server's 250.
    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        self.transport.send(message).map(|_| ()).map_err(|e| classify(&self.host, e))
    }
}

/// Only a refusal of the recipient's mailbox (550, 551, 553) means the address must be fixed;
/// any other 5xx (authentication, policy, a broken relay) is the relay's, an operator's to fix,
/// and 4xx, timeouts and connection trouble pass by themselves.
fn classify(host: &str, source: lettre::transport::smtp::Error) -> SendError {
    match source.status().map(|c| c.to_string()) {
        Some(code) if source.is_permanent() && ["550", "551", "553"].contains(&code.as_str()) => {
            SendError::Rejected { source }
        }
        Some(_) if source.is_permanent() => SendError::Refused { host: host.to_string(), source },
        _ => SendError::Unavailable { host: host.to_string(), source },
    }
}
