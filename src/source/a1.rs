//! A1 notation, as the Google Sheets API reads and answers it: quoted tab names, column
//! letters, ranges in a URL path or query, the last row of an answered range.

/// A tab's name in A1 notation: quoted unless it is plain letters, digits and `_`; an inner
/// `'` is doubled.
pub fn quote_sheet(title: &str) -> String {
    if !title.is_empty() && title.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        title.to_string()
    } else {
        format!("'{}'", title.replace('\'', "''"))
    }
}

/// Percent-encodes a range for a URL path segment: everything but unreserved characters and
/// the `!` and `:` of A1 notation.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'!' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How long `s` is as a query parameter's value, encoded as `google-sheets4` writes it
/// (`application/x-www-form-urlencoded`: unreserved bytes as they are, a space as `+`, any other
/// byte as `%XX`): what a range adds to a `batchGet` URL.
pub fn query_value_len(s: &str) -> usize {
    let kept = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_' | b' ');
    s.bytes().map(|b| if kept(b) { 1 } else { 3 }).sum()
}

/// `1` → `A`, `26` → `Z`, `27` → `AA`.
pub fn column_letters(mut n: u32) -> String {
    let mut out = Vec::new();
    while n > 0 {
        let r = (n - 1) % 26;
        out.push(b'A' + r as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The last row of an answered range (`'Hoja'!A5:Z1000` → 1000): Google clips open ranges to
/// the grid, so this is the tab's row count, for free.
pub(super) fn range_end_row(range: &str) -> Option<u32> {
    let cells = range.rsplit_once('!').map_or(range, |(_, c)| c);
    let end = cells.rsplit_once(':').map_or(cells, |(_, e)| e);
    let digits: String = end.chars().skip_while(|c| c.is_ascii_alphabetic()).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_names_are_quoted_and_ranges_encoded() {
        assert_eq!(quote_sheet("Hoja1"), "Hoja1");
        assert_eq!(quote_sheet("Respuestas de formulario 1"), "'Respuestas de formulario 1'");
        assert_eq!(quote_sheet("Ana's #1?/x"), "'Ana''s #1?/x'");
        assert_eq!(encode_path_segment("'Ana''s #1?/x'!A2:Z"), "%27Ana%27%27s%20%231%3F%2Fx%27!A2:Z");
        assert_eq!(encode_path_segment("Año!A1"), "A%C3%B1o!A1");
    }

    #[test]
    fn query_values_are_measured_as_form_encoded() {
        // 'Respuestas de formulario 1'!A5:Z9 → %27Respuestas+de+formulario+1%27%21A5%3AZ9
        assert_eq!(query_value_len("'Respuestas de formulario 1'!A5:Z9"), 42);
        assert_eq!(query_value_len("Hoja1!A2:Z2"), 15);
        // ñ is two bytes, each %XX.
        assert_eq!(query_value_len("Año"), 8);
        assert_eq!(query_value_len(""), 0);
    }

    #[test]
    fn columns_and_answered_ranges() {
        assert_eq!(column_letters(1), "A");
        assert_eq!(column_letters(26), "Z");
        assert_eq!(column_letters(27), "AA");
        assert_eq!(column_letters(702), "ZZ");
        assert_eq!(column_letters(703), "AAA");
        assert_eq!(range_end_row("'Respuestas de formulario 1'!A5:Z1000"), Some(1000));
        assert_eq!(range_end_row("Hoja!A5:Z"), None);
        assert_eq!(range_end_row("'a!b:c'!B7"), Some(7));
    }
}
