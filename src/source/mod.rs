//! Where form responses come from: rows numbered as in the response sheet (1 is the header).

pub mod csv;

/// One response row as the source holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// Row number in the sheet; the header is row 1, so responses start at 2.
    pub row: u32,
    pub cells: Vec<String>,
}

/// A stable fingerprint of a row's cells (trailing empty cells ignored, as Sheets omits them):
/// FNV-1a, 128 bits. It only tells an edited row from an unchanged one; nothing relies on it
/// being hard to forge (a forged edit is just an edit).
pub fn row_hash(cells: &[String]) -> String {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    let end = cells.iter().rposition(|c| !c.is_empty()).map_or(0, |i| i + 1);
    let mut h = OFFSET;
    for cell in &cells[..end] {
        for b in (cell.len() as u64).to_le_bytes().iter().chain(cell.as_bytes()) {
            h ^= u128::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("{h:032x}")
}

/// A source that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}, row {row}: {message}")]
    Format { path: std::path::PathBuf, row: u32, message: String },
    #[error("{path} is empty: it has no header row")]
    NoHeader { path: std::path::PathBuf },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_trailing_empty_cells_but_not_moves() {
        let a = vec!["x".to_string(), "y".into()];
        let b = vec!["x".to_string(), "y".into(), String::new()];
        let c = vec!["xy".to_string(), String::new()];
        assert_eq!(row_hash(&a), row_hash(&b));
        assert_ne!(row_hash(&a), row_hash(&c));
    }
}
