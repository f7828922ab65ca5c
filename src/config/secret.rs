//! Secrets named in the configuration: a file, or `credential:NAME` for systemd's
//! `LoadCredential=`; read when an adapter is built, held in a type that never prints them.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A secret named in the config: a file, or `credential:NAME` for systemd's `LoadCredential=`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum SecretRef {
    File(PathBuf),
    Credential(String),
}

impl From<String> for SecretRef {
    fn from(s: String) -> SecretRef {
        SecretRef::parse(&s)
    }
}

impl SecretRef {
    pub fn parse(s: &str) -> SecretRef {
        match s.strip_prefix("credential:") {
            Some(name) => SecretRef::Credential(name.to_string()),
            None => SecretRef::File(PathBuf::from(s)),
        }
    }

    /// Reads the secret; `credentials_dir` is `$CREDENTIALS_DIRECTORY`.
    pub fn read(&self, credentials_dir: Option<&Path>) -> Result<Secret, SecretError> {
        let path = match self {
            SecretRef::File(p) => p.clone(),
            SecretRef::Credential(name) => match credentials_dir {
                Some(dir) => dir.join(name),
                None => return Err(SecretError::NoCredentials { name: name.clone() }),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| SecretError::Read { path, source })?;
        Ok(Secret(text.trim_end_matches(['\r', '\n']).to_string()))
    }
}

/// A secret that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("credential:{name} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)")]
    NoCredentials { name: String },
    #[error("cannot read secret {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::File(p) => write!(f, "file {}", p.display()),
            SecretRef::Credential(n) => write!(f, "credential:{n}"),
        }
    }
}

/// A secret value; `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Wiped when dropped: a core or a swapped page holds no leftover copy of the last one used.
impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

/// Reads a secret named in the file (relative paths were resolved at load).
pub(super) fn read_secret(secret: &SecretRef) -> Result<Secret, SecretError> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    secret.read(dir.as_deref())
}
