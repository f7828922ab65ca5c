//! Temporary passwords: from the OS random source, meeting AD complexity, never printed.

use std::fmt;

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
// No quotes, backslash or characters that mail clients or keyboards mangle.
const SYMBOLS: &[u8] = b"#%+-=?@_";

/// A password; `Debug` prints `**REDACTED**` so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A new random password of `len` characters (at least 12) with every character class.
    pub fn generate(len: usize) -> Result<Password, getrandom::Error> {
        let len = len.max(12);
        let classes = [UPPER, LOWER, DIGITS, SYMBOLS];
        loop {
            let mut bytes = vec![0u8; len];
            getrandom::fill(&mut bytes)?;
            // Rejection sampling keeps every character equally likely.
            let all: Vec<u8> = classes.concat();
            let limit = 256 - (256 % all.len());
            let chars: Vec<u8> = bytes
                .iter()
                .filter(|&&b| (b as usize) < limit)
                .map(|&b| all[b as usize % all.len()])
                .collect();
            if chars.len() == len && classes.iter().all(|class| chars.iter().any(|c| class.contains(c))) {
                return Ok(Password(String::from_utf8_lossy(&chars).into_owned()));
            }
        }
    }

    /// The password itself, for the directory and the access-data message only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_varied_and_redacted() {
        let a = Password::generate(16).unwrap();
        let b = Password::generate(16).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 16);
        assert!(a.expose().chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.expose().chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.expose().chars().any(|c| c.is_ascii_digit()));
        assert_eq!(format!("{a:?}"), "**REDACTED**");
        assert_eq!(Password::generate(4).unwrap().expose().len(), 12);
    }
}
