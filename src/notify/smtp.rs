//! SMTP delivery (lettre): STARTTLS required, implicit TLS, or plain to a loopback relay only;
//! optional AUTH, with a password or an OAuth token (XOAUTH2); the configured CA; a connection
//! pool. Errors say whether to retry and whether the recipient's address is what is wrong.

use std::time::Duration;

use jiff::Timestamp;

use lettre::message::Message;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};

use super::SendError;
use super::oauth::{TokenSource, Tokens};
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
    /// Where XOAUTH2's token comes from, instead of the password.
    pub oauth: Option<TokenSource>,
}

/// A pooled SMTP client.
pub struct SmtpSender {
    transport: SmtpTransport,
    host: String,
    /// With XOAUTH2: the tokens, and the transport that presents the current one (a new token
    /// is a new transport: lettre's credentials are fixed when it is built).
    oauth: Option<std::sync::Mutex<OAuthLogin>>,
}

struct OAuthLogin {
    tokens: Tokens,
    mailbox: String,
    /// The builder without credentials, and the transport of the token it last presented.
    builder: lettre::transport::smtp::SmtpTransportBuilder,
    current: Option<(String, SmtpTransport)>,
}

impl OAuthLogin {
    /// The transport presenting a token good now (`fresh`: a new one whatever is kept).
    fn transport(&mut self, fresh: bool, now: Timestamp) -> Result<SmtpTransport, super::oauth::TokenError> {
        let token = self.tokens.token(fresh, now)?;
        if let Some((kept, transport)) = &self.current
            && *kept == token
        {
            return Ok(transport.clone());
        }
        let transport = self
            .builder
            .clone()
            .credentials(Credentials::new(self.mailbox.clone(), token.clone()))
            .authentication(vec![Mechanism::Xoauth2])
            .build();
        self.current = Some((token, transport.clone()));
        Ok(transport)
    }
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
        let oauth = s.oauth.as_ref().map(|source| {
            std::sync::Mutex::new(OAuthLogin {
                tokens: Tokens::new(source.clone(), s.timeout),
                mailbox: s.username.clone().unwrap_or_default(),
                builder: builder.clone(),
                current: None,
            })
        });
        if let (Some(user), Some(password), None) = (&s.username, &s.password, &oauth) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        Ok(SmtpSender { transport: builder.build(), host: s.host.clone(), oauth })
    }

    /// Connects, says EHLO and logs in: whether the relay would take a message now.
    pub fn test(&self, now: Timestamp) -> Result<(), SendError> {
        self.with_login(now, |t| t.test_connection().map(|_| ()))
    }

    /// Sends one message; `Ok` only after the server's 250.
    pub fn send(&self, message: &Message, now: Timestamp) -> Result<(), SendError> {
        self.with_login(now, |t| t.send(message).map(|_| ()))
    }

    /// `act` on the transport; with XOAUTH2, a token the relay refuses is renewed once and
    /// `act` tried again (it may have been revoked before its time).
    fn with_login(
        &self,
        now: Timestamp,
        act: impl Fn(&SmtpTransport) -> Result<(), lettre::transport::smtp::Error>,
    ) -> Result<(), SendError> {
        let Some(login) = &self.oauth else {
            return act(&self.transport).map_err(|e| classify(&self.host, e));
        };
        let mut login = login.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let token_error = |source| SendError::Token { host: self.host.clone(), source };
        let transport = login.transport(false, now).map_err(token_error)?;
        match act(&transport) {
            Err(e) if token_refused(&e) => {
                let transport = login.transport(true, now).map_err(token_error)?;
                act(&transport).map_err(|e| match token_refused(&e) {
                    true => SendError::Refused { host: self.host.clone(), source: e },
                    false => classify(&self.host, e),
                })
            }
            other => other.map_err(|e| classify(&self.host, e)),
        }
    }
}

/// Whether the relay refused the token: 535, or XOAUTH2's error challenge (a 334 with a JSON
/// body, which lettre does not answer and reports as a client error).
fn token_refused(e: &lettre::transport::smtp::Error) -> bool {
    e.status().is_some_and(|c| c.to_string() == "535")
        || (e.is_client() && e.to_string().contains("challenge"))
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
