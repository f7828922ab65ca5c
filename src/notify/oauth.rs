//! Mail without passwords: the OAuth 2.0 access token that SMTP AUTH XOAUTH2 presents, from
//! Entra ID's client credentials grant (Microsoft 365) or a Google service account acting as
//! the mailbox (domain-wide delegation). Microsoft 365 stops taking SMTP passwords at the end
//! of December 2026. A token is kept until five minutes before it expires, and asked for again
//! at once when the relay refuses it (it may have been revoked early).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use google_sheets4::yup_oauth2;
use serde_json::Value;

use crate::config::Secret;

/// Microsoft 365's SMTP scope for the client credentials grant.
const OUTLOOK_SCOPE: &str = "https://outlook.office365.com/.default";
/// Gmail's scope: SMTP needs the full one.
const GMAIL_SCOPE: &str = "https://mail.google.com/";
/// A token is renewed this long before Google or Microsoft would stop taking it.
const MARGIN: Duration = Duration::from_secs(300);

/// Where tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    Microsoft { token_url: String, client_id: String, credential: EntraCredential },
    Google { key: Box<yup_oauth2::ServiceAccountKey>, mailbox: String },
}

/// How the application proves itself to Entra ID.
#[derive(Clone)]
pub enum EntraCredential {
    Secret(Secret),
    Certificate(std::sync::Arc<ClientCertificate>),
}

/// A certificate registered on the application and its private key: each request for a token
/// carries a client assertion (RFC 7523) signed with the key and naming the certificate by its
/// thumbprints, as Entra ID asks.
pub struct ClientCertificate {
    key: ring::signature::RsaKeyPair,
    /// base64url of the certificate's SHA-1 and SHA-256 digests (`x5t`, `x5t#S256`).
    x5t: String,
    x5t_s256: String,
    /// The SHA-1 thumbprint in hex, as the Entra admin center lists the certificate.
    pub thumbprint: String,
}

impl ClientCertificate {
    /// From a PEM text holding the certificate and its unencrypted PKCS#8 RSA key; why not, if not.
    pub fn from_pem(pem: &str) -> Result<ClientCertificate, String> {
        use ring::digest;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| "it holds no certificate («BEGIN CERTIFICATE»)".to_string())?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
            "it holds no private key in PKCS#8 («BEGIN PRIVATE KEY», unencrypted)".to_string()
        })?;
        let key = ring::signature::RsaKeyPair::from_pkcs8(key.secret_pkcs8_der())
            .map_err(|e| format!("its private key is not an RSA key of 2048 bits or more: {e}"))?;
        // The certificate's public key holds the key's public part, byte for byte.
        let public = ring::signature::KeyPair::public_key(&key).as_ref();
        if !cert.windows(public.len()).any(|w| w == public) {
            return Err("its private key is not the certificate's".into());
        }
        let thumbprint = |algorithm| b64url(digest::digest(algorithm, &cert).as_ref());
        Ok(ClientCertificate {
            thumbprint: digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cert)
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect(),
            x5t: thumbprint(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            x5t_s256: thumbprint(&digest::SHA256),
            key,
        })
    }

    /// The signed assertion for `client_id` at `audience` (the token endpoint), good for ten
    /// minutes from `now`.
    fn assertion(&self, client_id: &str, audience: &str, now: Timestamp) -> Result<String, String> {
        use ring::rand::{SecureRandom, SystemRandom};
        let rng = SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| "no randomness".to_string())?;
        let header =
            serde_json::json!({ "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256 });
        let at = now.as_second();
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "iat": at, "nbf": at, "exp": at + 600,
        });
        let signed =
            format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&ring::signature::RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut signature)
            .map_err(|_| "the private key cannot sign".to_string())?;
        Ok(format!("{signed}.{}", b64url(&signature)))
    }
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.endpoint())
    }
}

impl TokenSource {
    /// The token endpoint, for messages.
    pub fn endpoint(&self) -> String {
        match self {
            TokenSource::Microsoft { token_url, .. } => token_url.clone(),
            TokenSource::Google { key, .. } => key.token_uri.clone(),
        }
    }
}

/// A token that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The endpoint answered that the credential is not good (a person must fix it).
    #[error("the token endpoint {endpoint} refused the credential: {reason}")]
    Refused { endpoint: String, reason: String },
    /// Unreachable, slow, or failing on its side: it passes.
    #[error("the token endpoint {endpoint} is unavailable: {reason}")]
    Unavailable { endpoint: String, reason: String },
}

/// Tokens from one source, the last one kept.
pub struct Tokens {
    source: TokenSource,
    timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
    google: Option<yup_oauth2::authenticator::Authenticator<crate::https::Connector>>,
    /// The last token, and until when it is presented.
    current: Option<(String, Timestamp)>,
}

impl Tokens {
    pub fn new(source: TokenSource, timeout: Duration) -> Tokens {
        Tokens { source, timeout, runtime: None, google: None, current: None }
    }

    pub fn endpoint(&self) -> String {
        self.source.endpoint()
    }

    /// A token to present now: the kept one while it is good, else a new one; `fresh` asks
    /// for a new one whatever is kept (the relay refused it).
    pub fn token(&mut self, fresh: bool, now: Timestamp) -> Result<String, TokenError> {
        if !fresh
            && let Some((token, good_until)) = &self.current
            && now < *good_until
        {
            return Ok(token.clone());
        }
        self.current = None;
        let (token, lifetime) = self.fetch(fresh, now)?;
        let kept = SignedDuration::try_from(lifetime.saturating_sub(MARGIN)).unwrap_or(SignedDuration::ZERO);
        let good_until = now + kept;
        self.current = Some((token.clone(), good_until));
        Ok(token)
    }

    fn fetch(&mut self, fresh: bool, now: Timestamp) -> Result<(String, Duration), TokenError> {
        let endpoint = self.endpoint();
        let unavailable = |reason: String| TokenError::Unavailable { endpoint: endpoint.clone(), reason };
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| unavailable(e.to_string()))?;
            self.runtime = Some(rt);
        }
        let timeout = self.timeout;
        let Some(rt) = self.runtime.as_ref() else { return Err(unavailable("no runtime".into())) };
        match &self.source {
            TokenSource::Microsoft { token_url, client_id, credential } => {
                let body = match credential {
                    EntraCredential::Secret(secret) => form(&[
                        ("client_id", client_id),
                        ("client_secret", secret.expose()),
                        ("scope", OUTLOOK_SCOPE),
                        ("grant_type", "client_credentials"),
                    ]),
                    EntraCredential::Certificate(certificate) => {
                        let assertion = certificate
                            .assertion(client_id, token_url, now)
                            .map_err(|reason| TokenError::Refused { endpoint: endpoint.clone(), reason })?;
                        form(&[
                            ("client_id", client_id),
                            (
                                "client_assertion_type",
                                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                            ),
                            ("client_assertion", &assertion),
                            ("scope", OUTLOOK_SCOPE),
                            ("grant_type", "client_credentials"),
                        ])
                    }
                };
                let answer = rt.block_on(async {
                    tokio::time::timeout(timeout, post_form(token_url, body))
                        .await
                        .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
                });
                let (status, json) = answer.map_err(unavailable)?;
                client_credentials_answer(&endpoint, status, &json)
            }
            TokenSource::Google { key, mailbox } => {
                if self.google.is_none() {
                    let key = (**key).clone();
                    let mailbox = mailbox.clone();
                    let built = rt.block_on(async move {
                        let http = crate::https::client::<String>().map_err(|e| e.to_string())?;
                        yup_oauth2::ServiceAccountAuthenticator::with_client(
                            key,
                            yup_oauth2::client::CustomHyperClientBuilder::from(http),
                        )
                        .subject(mailbox)
                        .build()
                        .await
                        .map_err(|e| e.to_string())
                    });
                    self.google = Some(
                        built.map_err(|reason| TokenError::Refused { endpoint: endpoint.clone(), reason })?,
                    );
                }
                let Some(auth) = self.google.as_ref() else {
                    return Err(unavailable("no authenticator".into()));
                };
                let got = rt.block_on(async {
                    let ask = async {
                        if fresh {
                            auth.force_refreshed_token(&[GMAIL_SCOPE]).await
                        } else {
                            auth.token(&[GMAIL_SCOPE]).await
                        }
                    };
                    tokio::time::timeout(timeout, ask).await
                });
                let token = match got {
                    Err(_) => return Err(unavailable(format!("no answer within {timeout:?}"))),
                    Ok(Err(e)) => return Err(google_error(&endpoint, e)),
                    Ok(Ok(token)) => token,
                };
                let text = token.token().unwrap_or_default().to_string();
                let lifetime = token
                    .expiration_time()
                    .map(|at| (at.unix_timestamp() - now.as_second()).max(0) as u64)
                    .map_or(Duration::from_secs(3600), Duration::from_secs);
                Ok((text, lifetime))
            }
        }
    }
}

/// The token endpoint's answer to a client credentials grant (RFC 6749 §5): a token and its
/// lifetime, or why not. 400/401 with an `error` is the credential's fault; the rest passes.
pub fn client_credentials_answer(
    endpoint: &str,
    status: u16,
    body: &Value,
) -> Result<(String, Duration), TokenError> {
    let reason = || {
        let error = body["error"].as_str().unwrap_or("no error code");
        let description = body["error_description"].as_str().unwrap_or_default();
        // Entra ID's descriptions end in trace and correlation ids, on their own lines.
        format!("{error}: {}", description.lines().next().unwrap_or_default())
            .trim_end_matches(": ")
            .to_string()
    };
    match (status, body["access_token"].as_str()) {
        (200, Some(token)) if !token.is_empty() => {
            let lifetime = body["expires_in"].as_u64().unwrap_or(3600);
            Ok((token.to_string(), Duration::from_secs(lifetime)))
        }
        (400 | 401, _) if body["error"].is_string() => {
            Err(TokenError::Refused { endpoint: endpoint.to_string(), reason: reason() })
        }
        (status, _) => Err(TokenError::Unavailable {
            endpoint: endpoint.to_string(),
            reason: format!("HTTP {status}, {}", reason()),
        }),
    }
}

/// An outage passes; a refusal waits for a person ([`crate::https::is_token_outage`]).
fn google_error(endpoint: &str, e: yup_oauth2::Error) -> TokenError {
    if crate::https::is_token_outage(&e) {
        TokenError::Unavailable { endpoint: endpoint.into(), reason: e.to_string() }
    } else {
        TokenError::Refused { endpoint: endpoint.into(), reason: e.to_string() }
    }
}

/// `application/x-www-form-urlencoded`.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

async fn post_form(url: &str, body: String) -> Result<(u16, Value), String> {
    use google_sheets4::common;
    let client = crate::https::client::<common::Body>().map_err(|e| e.to_string())?;
    let request = google_sheets4::hyper::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(common::to_body(Some(body)))
        .map_err(|e| e.to_string())?;
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = common::to_bytes(response.into_body()).await.unwrap_or_default();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entra_s_answers_are_a_token_a_refusal_or_an_outage() {
        let ok = client_credentials_answer(
            "t",
            200,
            &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAi"}),
        );
        assert_eq!(ok.unwrap(), ("eyJ0eXAi".to_string(), Duration::from_secs(3599)));
        let refused = client_credentials_answer(
            "t",
            401,
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"}),
        );
        assert!(
            matches!(&refused, Err(TokenError::Refused { reason, .. }) if reason == "invalid_client: AADSTS7000215: Invalid client secret provided."),
            "{refused:?}"
        );
        for (status, body) in
            [(503, json!(null)), (500, json!({"error": "temporarily_unavailable"})), (200, json!({}))]
        {
            assert!(matches!(
                client_credentials_answer("t", status, &body),
                Err(TokenError::Unavailable { .. })
            ));
        }
        assert_eq!(
            form(&[("scope", OUTLOOK_SCOPE), ("a b", "é")]),
            "scope=https%3A%2F%2Foutlook.office365.com%2F.default&a+b=%C3%A9"
        );
    }
}
