//! A Google Forms response export (CSV): for backfills, demos and tests.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{RawRow, SourceError};

/// An open export: its header, then its rows in order, one at a time.
pub struct CsvSource {
    path: PathBuf,
    header: Vec<String>,
    records: csv::StringRecordsIntoIter<File>,
    next_row: u32,
}

impl CsvSource {
    pub fn open(path: &Path) -> Result<CsvSource, SourceError> {
        let io = |source| SourceError::Io { path: path.to_path_buf(), source };
        let file = File::open(path).map_err(io)?;
        let reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(file);
        let mut records = reader.into_records();
        let header = match records.next() {
            Some(Ok(h)) => h.iter().map(|c| c.trim_start_matches('\u{FEFF}').to_string()).collect(),
            Some(Err(e)) => {
                return Err(SourceError::Format { path: path.to_path_buf(), row: 1, message: e.to_string() });
            }
            None => {
                return Err(SourceError::NoHeader { path: path.to_path_buf() });
            }
        };
        Ok(CsvSource { path: path.to_path_buf(), header, records, next_row: 2 })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The number of the row the next call to `next` returns.
    pub fn next_row(&self) -> u32 {
        self.next_row
    }
}

impl Iterator for CsvSource {
    type Item = Result<RawRow, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        let row = self.next_row;
        self.next_row += 1;
        Some(match record {
            Ok(r) => Ok(RawRow { row, cells: r.iter().map(str::to_string).collect() }),
            Err(e) => Err(SourceError::Format { path: self.path.clone(), row, message: e.to_string() }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_numbered_like_the_sheet_and_quoted_cells_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "\u{FEFF}Marca temporal,Nombres\n1/2/2026 8:00:00,\"Ana, \"\"la\"\" María\"\n2/2/2026 9:00:00,Luis\n").unwrap();
        let mut src = CsvSource::open(&path).unwrap();
        assert_eq!(src.header(), ["Marca temporal", "Nombres"]);
        let first = src.next().unwrap().unwrap();
        assert_eq!(first.row, 2);
        assert_eq!(first.cells[1], "Ana, \"la\" María");
        assert_eq!(src.next().unwrap().unwrap().row, 3);
        assert!(src.next().is_none());
    }
}
