//! The one HTTPS client cuentas builds: the Google APIs and the mail providers' token
//! endpoints, trusted through the system's CA certificates (plain HTTP is accepted for a
//! loopback emulator or proxy; the configuration refuses it elsewhere).

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

pub type Connector = HttpsConnector<HttpConnector>;

/// A client over HTTP/1.1 and HTTP/2; fails only when the system's CA certificates cannot be
/// read.
pub fn client<B>() -> std::io::Result<hyper_util::client::legacy::Client<Connector, B>>
where
    B: google_sheets4::hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(std::sync::Arc::new(rustls::crypto::ring::default_provider()))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}

/// Whether a token endpoint's failure passes by itself. yup-oauth2 reads the endpoint's body
/// whatever the HTTP status, so an outage (an HTML 5xx page, `{"error":"internal_failure"}`,
/// an answer without a token) comes back as a JSON or an auth error: that is Google being
/// down, not a bad key. Only Google's own word on the grant is a refusal.
pub fn is_token_outage(e: &google_sheets4::yup_oauth2::Error) -> bool {
    use google_sheets4::yup_oauth2::Error as E;
    match e {
        E::HttpError(_)
        | E::HttpClientError(_)
        | E::LowLevelError(_)
        | E::JSONError(_)
        | E::MissingAccessToken => true,
        E::AuthError(a) => matches!(
            a.error.as_str(),
            "internal_failure" | "temporarily_unavailable" | "server_error" | "backend_error"
        ),
        _ => false,
    }
}
