//! The *matriz de autorizadores*: who holds which role, for which dependencies, between which
//! dates; read from a CSV file or a spreadsheet tab, every bad line reported at once.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use jiff::civil::Date;

use super::rules::Role;
use crate::intake::fold;

/// The matrix's columns, in the order the header documents them.
pub const MATRIX_COLUMNS: [&str; 6] =
    ["correo", "nombre", "rol", "dependencias", "vigente_desde", "vigente_hasta"];

const COL_EMAIL: usize = 0;
const COL_NAME: usize = 1;
const COL_ROLE: usize = 2;
const COL_DEPARTMENTS: usize = 3;
const COL_FROM: usize = 4;
const COL_UNTIL: usize = 5;

/// The departments a matrix row covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departments {
    /// `*`: every department.
    All,
    /// Folded names (see [`crate::intake::fold`]), so that "Subdirección de Energía" in the matrix
    /// matches "subdireccion  de energia" in the form.
    List(Vec<String>),
}

impl Departments {
    /// Parses a `dependencias` cell: `*` or a `;`-separated list.
    pub fn parse(cell: &str) -> Result<Departments, String> {
        let cell = cell.trim();
        if cell == "*" {
            return Ok(Departments::All);
        }
        let names: Vec<&str> = cell.split(';').map(str::trim).filter(|n| !n.is_empty()).collect();
        if names.contains(&"*") {
            // "*;Subdirección" is either a typo or a misunderstanding; both deserve a look.
            return Err(format!(
                "«{cell}» mixes * with department names: write * alone for every department"
            ));
        }
        if names.is_empty() {
            return Err("empty: write * for every department or a ;-separated list of departments".into());
        }
        Ok(Departments::List(names.into_iter().map(fold).collect()))
    }

    /// Whether the (unfolded) department is covered. An empty department is covered only by `*`.
    pub fn contains(&self, department: &str) -> bool {
        self.contains_folded(&fold(department))
    }

    fn contains_folded(&self, folded: &str) -> bool {
        match self {
            Departments::All => true,
            Departments::List(names) => !folded.is_empty() && names.iter().any(|n| n == folded),
        }
    }
}

/// One row of the matrix: one person in one role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorizer {
    /// Lower-case.
    pub email: String,
    pub name: String,
    pub role: Role,
    pub departments: Departments,
    /// The `dependencias` cell as written, for messages (the folded list reads badly).
    pub departments_text: String,
    /// Inclusive; `None` = since always.
    pub valid_from: Option<Date>,
    /// Inclusive; `None` = until further notice.
    pub valid_until: Option<Date>,
    /// Line in the source file, for the audit trail and for "fix line N".
    pub line: u32,
}

impl Authorizer {
    pub fn is_valid_on(&self, today: Date) -> bool {
        self.valid_from.is_none_or(|d| d <= today) && self.valid_until.is_none_or(|d| today <= d)
    }

    /// What an allow records: `talento_humano (Talento Humano, *)`.
    pub fn grant_text(&self) -> String {
        if self.name.is_empty() {
            format!("{} ({})", self.role.key(), self.departments_text)
        } else {
            format!("{} ({}, {})", self.role.key(), self.name, self.departments_text)
        }
    }

    /// Why this row does not grant the request, or `None` when it does.
    pub(crate) fn miss(&self, today: Date, folded_department: &str) -> Option<Miss> {
        match (self.valid_from, self.valid_until) {
            (Some(from), _) if today < from => Some(Miss::NotYet(from)),
            (_, Some(until)) if until < today => Some(Miss::Expired(until)),
            _ if !self.departments.contains_folded(folded_department) => Some(Miss::OutOfDepartments),
            _ => None,
        }
    }

    /// The departments as the requester wrote them, ", "-joined.
    pub fn departments_for_humans(&self) -> String {
        self.departments_text
            .split(';')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NotYet(Date),
    Expired(Date),
    OutOfDepartments,
}

/// One thing wrong in the matrix file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line in the file (the header is line 1).
    pub line: u32,
    pub column: String,
    pub message: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

fn list_problems(problems: &[LineProblem]) -> String {
    problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
}

/// Why the matrix could not be loaded. Messages are for administrators.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("cannot open the authorizer matrix {}: {source}", .path.display())]
    Open { path: PathBuf, source: std::io::Error },
    #[error("cannot read the authorizer matrix: {0}")]
    Read(#[from] csv::Error),
    #[error("the authorizer matrix is empty: its first line must be the header `{}`", MATRIX_COLUMNS.join(","))]
    NoHeader,
    #[error(
        "the authorizer matrix header lacks column(s) {}: its first line must be `{}`",
        .missing.join(", "),
        MATRIX_COLUMNS.join(",")
    )]
    MissingColumns { missing: Vec<&'static str> },
    #[error("the authorizer matrix has {} problem(s); nothing was loaded:\n{}", .problems.len(), list_problems(.problems))]
    Invalid {
        problems: Vec<LineProblem>,
        /// The rows that are valid, for a caller that keeps those also in the matrix in force.
        valid: Box<Matrix>,
    },
}

/// The *matriz de autorizadores*, indexed by lower-case e-mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matrix {
    by_email: HashMap<String, Vec<Authorizer>>,
    len: usize,
}

/// Same as [`Matrix::load`].
pub fn load_matrix(path: &Path) -> Result<Matrix, MatrixError> {
    Matrix::load(path)
}

/// Same as [`Matrix::parse`].
pub fn parse_matrix<R: Read>(reader: R) -> Result<Matrix, MatrixError> {
    Matrix::parse(reader)
}

impl Matrix {
    /// Reads a matrix CSV (comma-separated, UTF-8, header first, columns in any order, extra
    /// columns ignored). All-blank lines are skipped: spreadsheets export them.
    pub fn parse<R: Read>(reader: R) -> Result<Matrix, MatrixError> {
        let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(reader);
        let header: Vec<String> = csv.headers()?.iter().map(str::to_string).collect();
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(0, |p| p.line());
                    rows.push((
                        u32::try_from(line).unwrap_or(u32::MAX),
                        record.iter().map(str::to_string).collect(),
                    ));
                }
                // A line that is not UTF-8 is one bad line, not a reason to stop reading the rest.
                Err(e) => match e.kind() {
                    csv::ErrorKind::Utf8 { pos, err } => problems.push(LineProblem {
                        line: pos.as_ref().map_or(0, |p| u32::try_from(p.line()).unwrap_or(u32::MAX)),
                        column: header
                            .get(err.field())
                            .cloned()
                            .unwrap_or_else(|| format!("#{}", err.field() + 1)),
                        message: "not valid UTF-8: save the file as CSV UTF-8".into(),
                    }),
                    _ => return Err(MatrixError::Read(e)),
                },
            }
        }
        match Matrix::from_rows(&header, rows) {
            Ok(m) if problems.is_empty() => Ok(m),
            Ok(valid) => Err(MatrixError::Invalid { problems, valid: Box::new(valid) }),
            Err(MatrixError::Invalid { problems: more, valid }) => {
                problems.extend(more);
                problems.sort_by_key(|p| p.line);
                Err(MatrixError::Invalid { problems, valid })
            }
            Err(e) => Err(e),
        }
    }

    /// Reads the matrix CSV at `path` (see [`Matrix::parse`]).
    pub fn load(path: &Path) -> Result<Matrix, MatrixError> {
        let file = std::fs::File::open(path)
            .map_err(|source| MatrixError::Open { path: path.to_path_buf(), source })?;
        Matrix::parse(std::io::BufReader::new(file))
    }

    /// Builds the matrix from a header and `(line, cells)` rows, e.g. a spreadsheet tab read like
    /// the responses. Every problem is reported at once; nothing is loaded if there is one,
    /// because a half-loaded matrix would deny (or allow) people for reasons no one can see.
    pub fn from_rows<H, I>(header: &[H], rows: I) -> Result<Matrix, MatrixError>
    where
        H: AsRef<str>,
        I: IntoIterator<Item = (u32, Vec<String>)>,
    {
        let columns = header_columns(header)?;
        let mut problems = Vec::new();
        let mut entries = Vec::new();
        for (line, cells) in rows {
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            if let Some(a) = authorizer_from_row(&columns, header.len(), line, &cells, &mut problems) {
                entries.push(a);
            }
        }
        if problems.is_empty() {
            Ok(Matrix::from_authorizers(entries))
        } else {
            Err(MatrixError::Invalid { problems, valid: Box::new(Matrix::from_authorizers(entries)) })
        }
    }

    /// A matrix of already-validated rows; e-mails are lower-cased here so lookups match.
    pub fn from_authorizers(entries: Vec<Authorizer>) -> Matrix {
        let mut matrix = Matrix::default();
        for mut a in entries {
            a.email = a.email.trim().to_lowercase();
            matrix.by_email.entry(a.email.clone()).or_default().push(a);
            matrix.len += 1;
        }
        matrix
    }

    /// The rows of this matrix that `newer` holds too (the same person, role, departments and
    /// dates, wherever the line): what stays in force when a new matrix is invalid, so that a
    /// removal applies at once and nothing is added that no one could check.
    pub fn kept_in(&self, newer: &Matrix) -> Matrix {
        let same = |a: &Authorizer, b: &Authorizer| Authorizer { line: b.line, ..a.clone() } == *b;
        let kept = self
            .by_email
            .values()
            .flatten()
            .filter(|a| newer.by_email.get(&a.email).is_some_and(|rows| rows.iter().any(|b| same(a, b))))
            .cloned()
            .collect();
        Matrix::from_authorizers(kept)
    }

    /// Number of rows (a person with two roles counts twice).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some row holds one of `roles`, valid on `today`.
    pub fn any_valid_with(&self, roles: &[Role], today: Date) -> bool {
        self.by_email.values().flatten().any(|a| roles.contains(&a.role) && a.is_valid_on(today))
    }

    /// This person's rows, in file order; empty when absent. Case-insensitive.
    pub fn entries_for(&self, email: &str) -> &[Authorizer] {
        self.by_email.get(&email.trim().to_lowercase()).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Rows naming a dependency that is not one of `known` (the entity's list), one line each;
    /// nothing when the entity lists none.
    pub fn unknown_departments(&self, known: &[String]) -> Vec<String> {
        if known.is_empty() {
            return Vec::new();
        }
        let known: Vec<String> = known.iter().map(|d| fold(d)).collect();
        let mut rows: Vec<&Authorizer> = self.by_email.values().flatten().collect();
        rows.sort_by_key(|a| a.line);
        let mut out = Vec::new();
        for a in rows {
            for name in a.departments_text.split(';').map(str::trim).filter(|n| !n.is_empty() && *n != "*") {
                if !known.contains(&fold(name)) {
                    out.push(format!(
                        "line {}: «{name}» is not one of [form] departments (the entity's dependencies)",
                        a.line
                    ));
                }
            }
        }
        out
    }
}

/// Index of each of [`MATRIX_COLUMNS`] in the header.
fn header_columns<H: AsRef<str>>(header: &[H]) -> Result<[usize; 6], MatrixError> {
    if header.iter().all(|h| h.as_ref().trim().is_empty()) {
        return Err(MatrixError::NoHeader);
    }
    // Folded so that "Vigente desde" or a BOM from Excel still match.
    let folded: Vec<String> = header
        .iter()
        .map(|h| fold(h.as_ref().trim_start_matches('\u{feff}')).replace([' ', '-'], "_"))
        .collect();
    let mut columns = [0; 6];
    let mut missing = Vec::new();
    for (slot, name) in columns.iter_mut().zip(MATRIX_COLUMNS) {
        match folded.iter().position(|h| h == name) {
            Some(i) => *slot = i,
            None => missing.push(name),
        }
    }
    if missing.is_empty() { Ok(columns) } else { Err(MatrixError::MissingColumns { missing }) }
}

fn authorizer_from_row(
    columns: &[usize; 6],
    width: usize,
    line: u32,
    cells: &[String],
    problems: &mut Vec<LineProblem>,
) -> Option<Authorizer> {
    let mut problem = |col: usize, message: String| {
        problems.push(LineProblem { line, column: MATRIX_COLUMNS[col].to_string(), message });
    };
    if let Some(col) = (0..6).find(|&c| columns[c] >= cells.len()) {
        // A short line usually means a lost separator; validating the rest would only add noise.
        problem(
            col,
            format!("the line ends early: it has {} field(s) and the header has {width}", cells.len()),
        );
        return None;
    }
    let cell = |col: usize| cells.get(columns[col]).map_or("", |c| c.trim());

    let email = check_email(cell(COL_EMAIL)).map_err(|m| problem(COL_EMAIL, m)).ok();
    let role = cell(COL_ROLE).parse::<Role>().map_err(|m| problem(COL_ROLE, m)).ok();
    let departments = Departments::parse(cell(COL_DEPARTMENTS)).map_err(|m| problem(COL_DEPARTMENTS, m)).ok();
    let from = parse_date(cell(COL_FROM)).map_err(|m| problem(COL_FROM, m)).ok();
    let until = parse_date(cell(COL_UNTIL)).map_err(|m| problem(COL_UNTIL, m)).ok();
    if let Some((f, u)) = from.flatten().zip(until.flatten()).filter(|(f, u)| u < f) {
        problem(COL_UNTIL, format!("vigente_hasta {u} is before vigente_desde {f}"));
        return None;
    }
    Some(Authorizer {
        email: email?,
        name: cell(COL_NAME).to_string(),
        role: role?,
        departments: departments?,
        departments_text: cell(COL_DEPARTMENTS).to_string(),
        valid_from: from?,
        valid_until: until?,
        line,
    })
}

/// Lower-cased address, or why it is not one: the same check as the form's addresses.
fn check_email(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("empty: write the person's e-mail address".into());
    }
    crate::intake::parse_email(s).ok_or_else(|| format!("«{s}» is not an e-mail address"))
}

/// `yyyy-mm-dd`, or empty for open-ended. Strict, because `03/04/2026` means different days to
/// different people. A whole number is a spreadsheet's date serial (days since 1899-12-30): a
/// date typed in a Google Sheets tab arrives so, and it means one day only.
fn parse_date(s: &str) -> Result<Option<Date>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.bytes().all(|b| b.is_ascii_digit())
        && let Some(serial) = crate::intake::parse_serial(s)
    {
        return Ok(Some(serial.date()));
    }
    let bad = || format!("«{s}» is not a date: write yyyy-mm-dd (e.g. 2026-06-30) or leave it empty");
    let parts: Vec<&str> = s.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    if y.len() != 4
        || m.len() != 2
        || d.len() != 2
        || !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let (y, m, d) = (y.parse::<i16>(), m.parse::<i8>(), d.parse::<i8>());
    let (Ok(y), Ok(m), Ok(d)) = (y, m, d) else {
        return Err(bad());
    };
    Date::new(y, m, d).map(Some).map_err(|_| format!("«{s}» is not a calendar date"))
}
