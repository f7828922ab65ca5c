//! Account names (pure): `sAMAccountName` from ordered patterns over the person's names,
//! accents folded, at most 20 characters, the first free candidate wins.

use std::fmt;

use crate::intake::fold;

/// The longest `sAMAccountName` AD accepts for users (pre-Windows 2000 logon name).
pub const MAX_LEN: usize = 20;
/// Highest `{n}` tried before giving up.
const MAX_NUMBER: u32 = 99;

/// Words that belong to the surname that follows them ("De La Hoz" is one surname).
const PARTICLES: [&str; 9] = ["de", "del", "la", "las", "los", "y", "da", "van", "von"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `{g1}`, `{s2:1}`: word `index` (0-based) of given names or surnames, cut to `len`.
    Word {
        surname: bool,
        index: usize,
        len: Option<usize>,
    },
    Number,
}

/// One naming pattern, e.g. `{g1}.{s1}{s2:1}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    pieces: Vec<Piece>,
}

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern «{pattern}»: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let err = |reason: &str| PatternError { pattern: text.to_string(), reason: reason.to_string() };
        let mut pieces = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                let end = after.find('}').ok_or_else(|| err("a «{» is not closed"))?;
                let token = &after[..end];
                rest = &after[end + 1..];
                if token == "n" {
                    pieces.push(Piece::Number);
                    continue;
                }
                let (name, len) = match token.split_once(':') {
                    Some((name, len)) => {
                        let len: usize =
                            len.parse().map_err(|_| err("the length after «:» must be a number"))?;
                        if len == 0 {
                            return Err(err("a length of 0 takes nothing"));
                        }
                        (name, Some(len))
                    }
                    None => (token, None),
                };
                let surname = match name.chars().next() {
                    Some('g') => false,
                    Some('s') => true,
                    _ => {
                        return Err(err("tokens are {g1} {g2} (given names), {s1} {s2} (surnames) and {n}"));
                    }
                };
                let index: usize = name[1..].parse().map_err(|_| err("write {g1}, {g2}, {s1} or {s2}"))?;
                if index == 0 {
                    return Err(err("words count from 1"));
                }
                pieces.push(Piece::Word { surname, index: index - 1, len });
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                let literal = &rest[..end];
                if !literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
                {
                    return Err(err("text between tokens may only use a-z 0-9 . -"));
                }
                pieces.push(Piece::Literal(literal.to_string()));
                rest = &rest[end..];
            }
        }
        if !pieces.iter().any(|p| matches!(p, Piece::Word { .. })) {
            return Err(err("it uses no name at all"));
        }
        Ok(Pattern { text: text.to_string(), pieces })
    }

    /// The candidate for these names and number, or `None` when a word it needs is missing.
    /// `n = None` leaves `{n}` out: the prefix every numbered candidate starts with. When a
    /// numbered candidate is too long, the text before the number is cut, never the number:
    /// otherwise `…2`, `…3` would all cut back to the same name.
    fn render(&self, given: &[String], surnames: &[String], n: Option<u32>) -> Option<String> {
        let (mut before, mut after) = (String::new(), String::new());
        let mut seen_number = false;
        for piece in &self.pieces {
            let out = if seen_number { &mut after } else { &mut before };
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Number => seen_number = true,
                Piece::Word { surname, index, len } => {
                    let words = if *surname { surnames } else { given };
                    let word = words.get(*index)?;
                    match len {
                        Some(len) => out.extend(word.chars().take(*len)),
                        None => out.push_str(word),
                    }
                }
            }
        }
        let number = match (seen_number, n) {
            (true, Some(n)) => n.to_string(),
            _ => return Some(sanitize(&format!("{before}{after}"))),
        };
        let after = sanitize(&after);
        let room = MAX_LEN.saturating_sub(number.len() + after.len());
        let mut before = sanitize(&before);
        before.truncate(room);
        Some(format!("{}{number}{after}", before.trim_end_matches(['.', '-'])))
    }

    fn has_number(&self) -> bool {
        self.pieces.contains(&Piece::Number)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Only `a-z 0-9 . -`, at most [`MAX_LEN`], never starting or ending with `.` or `-`.
pub fn sanitize(s: &str) -> String {
    let folded = fold(s);
    let mut out: String = folded
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    while out.contains("..") {
        out = out.replace("..", ".");
    }
    out.truncate(MAX_LEN);
    out.trim_matches(['.', '-']).to_string()
}

/// Name words folded to `a-z`, particles joined to the word they precede.
pub fn words(names: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for word in fold(names).split([' ', '-']) {
        let word: String = word.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if word.is_empty() {
            continue;
        }
        pending.push_str(&word);
        if !PARTICLES.contains(&word.as_str()) {
            out.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        out.push(pending);
    }
    out
}

/// The first candidate that `taken` says is free, trying each pattern in order (`{n}` from 2).
pub fn choose(
    patterns: &[Pattern],
    given_names: &str,
    surnames: &str,
    taken: impl Fn(&str) -> bool,
) -> Option<String> {
    let given = words(given_names);
    let surnames = words(surnames);
    let usable = |c: &str| c.len() >= 2 && c.chars().any(|ch| ch.is_ascii_lowercase());
    for pattern in patterns {
        let numbers = if pattern.has_number() { 2..=MAX_NUMBER } else { 0..=0 };
        for n in numbers {
            match pattern.render(&given, &surnames, Some(n)) {
                Some(c) if usable(&c) && !taken(&c) => return Some(c),
                Some(_) => {}
                None => break,
            }
        }
    }
    None
}

/// The candidates `choose` would try, in order, numbered ones up to `{n}` = `up_to`: what to
/// look up in the directory by exact match (indexed) before choosing.
pub fn candidates(patterns: &[Pattern], given_names: &str, surnames: &str, up_to: u32) -> Vec<String> {
    let given = words(given_names);
    let surnames = words(surnames);
    let mut out: Vec<String> = Vec::new();
    for p in patterns {
        let numbers = if p.has_number() { 2..=up_to.max(2) } else { 0..=0 };
        for n in numbers {
            match p.render(&given, &surnames, Some(n)) {
                Some(c) if c.len() >= 2 && !out.contains(&c) => out.push(c),
                Some(_) => {}
                None => break,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<Pattern> {
        ["{g1}.{s1}", "{g1}.{s1}{s2:1}", "{g1}{g2:1}.{s1}", "{g1}.{s1}{n}"]
            .iter()
            .map(|p| Pattern::parse(p).unwrap())
            .collect()
    }

    #[test]
    fn accents_particles_and_compound_surnames() {
        assert_eq!(words("María José"), ["maria", "jose"]);
        assert_eq!(words("De La Hoz Peñaloza"), ["delahoz", "penaloza"]);
        assert_eq!(words("Gómez-Müller"), ["gomez", "muller"]);
        let p = defaults();
        assert_eq!(choose(&p, "Ñusta", "De La Hoz", |_| false).as_deref(), Some("nusta.delahoz"));
    }

    #[test]
    fn the_first_free_pattern_wins_then_numbers() {
        let p = defaults();
        let taken = ["juan.perez", "juan.perezg", "juanc.perez"];
        assert_eq!(
            choose(&p, "Juan Carlos", "Pérez Gómez", |c| taken.contains(&c)).as_deref(),
            Some("juan.perez2")
        );
        assert_eq!(
            choose(&p, "Juan Carlos", "Pérez Gómez", |c| c == "juan.perez").as_deref(),
            Some("juan.perezg")
        );
        // Without a second surname the second pattern is skipped, not rendered half.
        assert_eq!(choose(&p, "Juan", "Pérez", |c| c == "juan.perez").as_deref(), Some("juan.perez2"));
    }

    #[test]
    fn twenty_characters_at_most_and_never_ending_in_a_dot() {
        let p = defaults();
        let name = choose(&p, "Maximiliano", "Villavicencio", |_| false).unwrap();
        assert_eq!(name, "maximiliano.villavic");
        assert_eq!(name.len(), 20);
        let p = vec![Pattern::parse("{s1}.{g1}").unwrap()];
        assert_eq!(
            choose(&p, "Ana", "Abcdefghijklmnopqrst", |_| false).as_deref(),
            Some("abcdefghijklmnopqrst")
        );
        assert_eq!(sanitize("abcdefghijklmnopqrs.t"), "abcdefghijklmnopqrs");
    }

    #[test]
    fn numbers_survive_the_twenty_character_cut() {
        let p = defaults();
        let long = "Trasladoabcdefghijk";
        let taken = |c: &str| c != "raul.trasladoabcdef4";
        assert_eq!(choose(&p, "Raúl", long, taken).as_deref(), Some("raul.trasladoabcdef4"));
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5 {
            let n = choose(&p, "Raúl", long, |c| seen.contains(c)).unwrap();
            assert!(n.len() <= MAX_LEN, "{n}");
            assert!(seen.insert(n));
        }
    }

    #[test]
    fn hostile_names_fold_to_safe_characters() {
        let p = defaults();
        let got = choose(&p, "*)(|(objectClass=*", "a,OU=Domain Admins", |_| false).unwrap();
        assert!(got.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.'), "{got}");
        assert_eq!(choose(&p, "***", "(((", |_| false), None);
    }

    #[test]
    fn candidates_are_what_choose_tries_in_order() {
        let p = defaults();
        assert_eq!(
            candidates(&p, "Juan Carlos", "Pérez Gómez", 3),
            ["juan.perez", "juan.perezg", "juanc.perez", "juan.perez2", "juan.perez3"]
        );
        let all = candidates(&p, "Juan", "Pérez", 9);
        let taken = |c: &str| all[..all.len() - 1].contains(&c.to_string());
        assert_eq!(choose(&p, "Juan", "Pérez", taken).as_ref(), all.last());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["{x1}", "{g0}", "{g1", "{g1}_{s1}", "{n}", "{g1:0}.{s1}", "abc"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }
}
