//! Temporary passwords: from the OS random source, meeting AD complexity, never printed; and
//! the domain's password rules, which the access-data message tells the person.

use std::fmt;

/// The password rules of the domain (`minPwdLength`, and bit 1 of `pwdProperties`: complexity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// AD's complexity rule: three of the four classes (upper case, lower case, digits,
    /// symbols), and not the account name nor a word of the display name.
    pub complexity: bool,
}

impl PasswordPolicy {
    /// The Default Domain Policy of a new AD domain: 7 characters, complexity on. What the dry
    /// run says, and what is assumed of an attribute the domain object does not show.
    pub const AD_DEFAULT: PasswordPolicy = PasswordPolicy { min_length: 7, complexity: true };
}

const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const DIGITS: &[u8] = b"23456789";
// No quotes, backslash or characters that mail clients or keyboards mangle.
const SYMBOLS: &[u8] = b"#%+-=?@_";

/// A password; `Debug` prints `**REDACTED**` so it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

/// The longest password drawn (AD accepts up to 256 characters).
const MAX_LEN: usize = 256;
/// Draws before giving up on avoiding the account's names: each draw fails with a probability
/// far below one in a hundred, so this many never all fail in practice.
const MAX_DRAWS: usize = 64;

impl Password {
    /// A new random password of `len` characters (12 to 256) with every character class.
    pub fn generate(len: usize) -> Result<Password, getrandom::Error> {
        Password::generate_avoiding(len, &[])
    }

    /// As [`Password::generate`], and meeting AD's complexity rule: no run of three or more
    /// characters of `names` (the account name, the words of the display name), in any case.
    pub fn generate_avoiding(len: usize, names: &[&str]) -> Result<Password, getrandom::Error> {
        let len = len.clamp(12, MAX_LEN);
        let forbidden: Vec<String> = names
            .iter()
            .flat_map(|n| n.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| w.chars().count() >= 3)
            .map(str::to_lowercase)
            .collect();
        let mut last = Password::draw(len)?;
        for _ in 1..MAX_DRAWS {
            let lower = last.0.to_lowercase();
            if !forbidden.iter().any(|w| lower.contains(w.as_str())) {
                break;
            }
            last = Password::draw(len)?;
        }
        Ok(last)
    }

    /// One draw: every character by rejection of single bytes (each equally likely, bounded
    /// time for any length), then one of each class at four random places.
    fn draw(len: usize) -> Result<Password, getrandom::Error> {
        let classes = [UPPER, LOWER, DIGITS, SYMBOLS];
        let all: Vec<u8> = classes.concat();
        let mut chars: Vec<u8> = (0..len).map(|_| pick(&all)).collect::<Result<_, _>>()?;
        // Four distinct places, one per class, so that no class overwrites another.
        let mut places: Vec<usize> = Vec::with_capacity(classes.len());
        while places.len() < classes.len() {
            let at = pick_index(len)?;
            if !places.contains(&at) {
                places.push(at);
            }
        }
        // One of each class at its own place: filling one class never takes another's only one.
        for (class, at) in classes.iter().zip(places) {
            chars[at] = pick(class)?;
        }
        Ok(Password(String::from_utf8_lossy(&chars).into_owned()))
    }

    /// The password itself, for the directory and the access-data message only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// One of `set`, uniformly: random bytes above the largest multiple of its size are drawn again.
fn pick(set: &[u8]) -> Result<u8, getrandom::Error> {
    Ok(set[pick_index(set.len())?])
}

/// A uniform index below `n` (1 to 256).
fn pick_index(n: usize) -> Result<usize, getrandom::Error> {
    let limit = 256 - (256 % n);
    loop {
        let mut b = [0u8; 1];
        getrandom::fill(&mut b)?;
        if usize::from(b[0]) < limit {
            return Ok(usize::from(b[0]) % n);
        }
    }
}

/// Wiped when dropped: the temporary password lives no longer than the step that sends it.
impl Drop for Password {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
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

    #[test]
    fn every_length_up_to_256_has_every_class_and_none_of_the_names() {
        let names = ["ana.perez", "Ana María Pérez Gómez"];
        for len in 8..=300 {
            let p = Password::generate_avoiding(len, &names).unwrap();
            let text = p.expose();
            assert_eq!(text.len(), len.clamp(12, 256), "{len}");
            assert!(text.chars().any(|c| c.is_ascii_uppercase()), "{len}");
            assert!(text.chars().any(|c| c.is_ascii_lowercase()), "{len}");
            assert!(text.chars().any(|c| c.is_ascii_digit()), "{len}");
            assert!(text.chars().any(|c| "#%+-=?@_".contains(c)), "{len}");
            let lower = text.to_lowercase();
            for word in ["ana.perez", "ana", "maría", "perez", "gómez"] {
                assert!(!lower.contains(word), "{len}: {text} holds {word}");
            }
        }
    }
}
