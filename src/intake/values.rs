//! Answers as people write them, read into values (pure): folding for comparisons, cleaning,
//! kinds and holder types, e-mail addresses, dates, timestamps and spreadsheet serials, and which
//! letters a name may hold.

use jiff::civil::{Date, DateTime, Time};
use unicode_normalization::UnicodeNormalization;

use crate::request::{HolderType, Kind};

/// Lower-case, accents removed (á→a, ñ→n, ü→u), spaces collapsed: how answers and headers compare.
pub fn fold(s: &str) -> String {
    // ASCII is its own normal form: skip decomposing (most answers are ASCII).
    if s.is_ascii() {
        return collapse(s.chars(), true);
    }
    collapse(s.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)), true)
}

/// Spaces and control characters collapsed to one space, trimmed, invisible characters dropped,
/// optionally lower-cased.
fn collapse(chars: impl Iterator<Item = char>, lower: bool) -> String {
    let mut out = String::new();
    for c in chars {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else if lower {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Zero-width and formatting characters that a copy-paste brings and no one means.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')
}

/// Trimmed, NFC, spaces (including newlines) collapsed, invisible characters removed.
pub fn clean(s: &str) -> String {
    if s.is_ascii() {
        return collapse(s.chars(), false);
    }
    collapse(s.nfc(), false)
}

/// The kind for a *Tipo de solicitud* answer among the default form's options (and the
/// wordings people use for them); «Otra solicitud» is `OutOfScope`. `None` for an answer
/// that is none of them: `[form.kinds]` must say what it is.
pub fn parse_kind(answer: &str) -> Option<Kind> {
    let a = fold(answer);
    let kind = match a.as_str() {
        "creacion de cuenta" | "creacion de usuario" | "creacion" => Kind::Create,
        "cambio de clave" | "cambio de contrasena" | "restablecimiento de contrasena" => Kind::PasswordReset,
        "modificacion de cuenta" | "modificacion de usuario" | "modificacion" => Kind::Modify,
        "inactivacion de cuenta" | "inactivacion de usuario" | "inactivacion" => Kind::Disable,
        "reactivacion de cuenta" | "reactivacion de usuario" | "reactivacion" => Kind::Enable,
        "eliminacion de cuenta" | "eliminacion de usuario" | "eliminacion" | "retiro" => Kind::Delete,
        "vacaciones, licencia"
        | "vacaciones o licencia"
        | "vacaciones"
        | "licencia"
        | "vacaciones / licencia" => Kind::Leave,
        "traslado de dependencia" | "traslado" => Kind::Transfer,
        "cesion de contrato" | "cesion" => Kind::Assignment,
        "suspension de contrato" | "suspension" => Kind::Suspension,
        "terminacion anticipada" | "terminacion anticipada de contrato" => Kind::EarlyTermination,
        "otra solicitud" | "otra" | "otro" => Kind::OutOfScope,
        _ => return None,
    };
    Some(kind)
}

/// A holder type as people write it (the form's answer, AD's `employeeType`).
pub fn parse_holder(answer: &str) -> Option<HolderType> {
    match fold(answer).as_str() {
        "funcionario" | "funcionaria" | "funcionario publico" | "servidor publico" => {
            Some(HolderType::Employee)
        }
        "contratista" => Some(HolderType::Contractor),
        "cuenta institucional o generica"
        | "institucional"
        | "generica"
        | "cuenta institucional"
        | "cuenta generica" => Some(HolderType::Institutional),
        _ => None,
    }
}

/// A plausible e-mail address, lower-cased; `None` if it is not one.
pub fn parse_email(s: &str) -> Option<String> {
    let s = clean(s).to_lowercase();
    let (local, domain) = s.split_once('@')?;
    let ok_local = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let ok_domain = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !l.starts_with('-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    (ok_local && ok_domain).then_some(s)
}

/// `dd/mm/yyyy`, `d/m/yyyy`, `yyyy-mm-dd`, or a spreadsheet serial day number.
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if let Some(dt) = parse_serial(s) {
        return Some(dt.date());
    }
    if let Ok(d) = s.parse::<Date>() {
        return Some(d);
    }
    let mut parts = s.split('/');
    let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || d.is_empty() || d.len() > 2 || m.is_empty() || m.len() > 2 {
        return None;
    }
    Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

/// `dd/mm/yyyy HH:MM:SS` (or `d/m/yyyy H:MM:SS`, or `H:MM`), or a serial number.
pub fn parse_timestamp(s: &str) -> Option<DateTime> {
    let s = s.trim();
    if let Some(dt) = parse_serial(s) {
        return Some(dt);
    }
    let (date, time) = s.split_once(' ')?;
    let date = parse_date(date)?;
    let mut parts = time.trim().split(':');
    let h: i8 = parts.next()?.parse().ok()?;
    let m: i8 = parts.next()?.parse().ok()?;
    let sec: i8 = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some(date.to_datetime(Time::new(h, m, sec, 0).ok()?))
}

/// Days since 1899-12-30, fractional: how Sheets serialises dates and times.
pub(crate) fn parse_serial(s: &str) -> Option<DateTime> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    serial_datetime(s.parse().ok()?)
}

/// A serial number (days since 1899-12-30, fractional) as a civil date and time.
pub(crate) fn serial_datetime(serial: f64) -> Option<DateTime> {
    if !(1.0..=2_958_465.0).contains(&serial) {
        return None;
    }
    let days = serial.trunc() as i64;
    let millis = ((serial - serial.trunc()) * 86_400_000.0).round() as i64;
    let epoch = Date::constant(1899, 12, 30).to_datetime(Time::midnight());
    epoch
        .checked_add(jiff::SignedDuration::from_hours(days * 24))
        .ok()?
        .checked_add(jiff::SignedDuration::from_millis(millis))
        .ok()
}

/// A letter of the Latin script: ASCII, Latin-1 (á, ñ, ü…), Latin Extended-A and -B, and Latin
/// Extended Additional (Vietnamese ệ…).
pub(crate) fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (c.is_alphabetic() && matches!(u32::from(c), 0x00C0..=0x024F | 0x1E00..=0x1EFF))
}
