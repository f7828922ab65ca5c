//! A request's id: `GU-<year>-<6 digits>`, what every message, log line and command names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `GU-<year>-<6 digits>`, numbered from a counter kept in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId {
    pub year: i16,
    pub seq: u32,
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GU-{:04}-{:06}", self.year, self.seq)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for RequestId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for RequestId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || format!("«{s}» is not a request id (expected GU-<year>-<6 digits>, e.g. GU-2026-000123)");
        let rest = s.trim().strip_prefix("GU-").ok_or_else(bad)?;
        let (year, seq) = rest.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || seq.len() != 6 {
            return Err(bad());
        }
        Ok(RequestId { year: year.parse().map_err(|_| bad())?, seq: seq.parse().map_err(|_| bad())? })
    }
}
