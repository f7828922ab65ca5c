//! Authorization (DESIGN §5): the *matriz de autorizadores*, the configurable rules table and the
//! pure decision of whether a requester may ask for a request.
//!
//! Three pieces:
//! - [`Matrix`]: who holds which [`Role`], for which departments, between which dates. Loaded
//!   from a CSV (`correo,nombre,rol,dependencias,vigente_desde,vigente_hasta`); every bad line
//!   is reported at once so the administrator fixes the file in one pass.
//! - [`Rules`]: for each (kind, holder type) cell, which [`Grant`]s may ask. The default is the
//!   procedure's table; a config can override single cells (format on [`Rules`]).
//! - [`Policy::decide`]: pure, `today` is a parameter; returns a [`Decision`] whose deny reason is
//!   written in Spanish for the requester and says what to do next.
//!
//! **What "deny wins" means here.** Some denials are about the request as a whole and no grant can
//! lift them: an out-of-scope kind, a requester outside the configured domains, a cell that does
//! not apply to the holder type (not even for `mesa_servicio`). Past those, a person may have
//! several matrix rows (several roles, or an expired row next to its renewal): a row that is out
//! of date or out of its departments grants nothing, but does not veto either; the first row (or
//! `self` / `manager` grant) that fully matches allows.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize};

use crate::intake::fold;
use crate::request::{HolderType, Kind};

/// The matrix's columns, in the order the header documents them.
pub const MATRIX_COLUMNS: [&str; 6] =
    ["correo", "nombre", "rol", "dependencias", "vigente_desde", "vigente_hasta"];

const COL_EMAIL: usize = 0;
const COL_NAME: usize = 1;
const COL_ROLE: usize = 2;
const COL_DEPARTMENTS: usize = 3;
const COL_FROM: usize = 4;
const COL_UNTIL: usize = 5;

/// A role in the *matriz de autorizadores*. The serde and CSV names are the snake_case keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    TalentoHumano,
    JefeArea,
    Coordinador,
    Supervisor,
    Delegado,
    /// The service desk itself. The default rules let it ask for every cell that applies (it
    /// registers requests on behalf of people who phone or write), never for one that does not:
    /// a contractor has no *vacaciones* whoever asks.
    MesaServicio,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::TalentoHumano,
        Role::JefeArea,
        Role::Coordinador,
        Role::Supervisor,
        Role::Delegado,
        Role::MesaServicio,
    ];

    /// The name in the CSV and in `[policy.rules]`.
    pub fn key(self) -> &'static str {
        match self {
            Role::TalentoHumano => "talento_humano",
            Role::JefeArea => "jefe_area",
            Role::Coordinador => "coordinador",
            Role::Supervisor => "supervisor",
            Role::Delegado => "delegado",
            Role::MesaServicio => "mesa_servicio",
        }
    }

    /// As the requester reads it after "como …".
    pub fn label(self) -> &'static str {
        match self {
            Role::TalentoHumano => "talento humano",
            Role::JefeArea => "jefe de área",
            Role::Coordinador => "coordinador",
            Role::Supervisor => "supervisor",
            Role::Delegado => "delegado",
            Role::MesaServicio => "mesa de servicio",
        }
    }

    /// Who that is, for "la pueden solicitar: …".
    fn who(self) -> &'static str {
        match self {
            Role::TalentoHumano => "el GIT de Talento Humano",
            Role::JefeArea => "el jefe de área",
            Role::Coordinador => "el coordinador",
            Role::Supervisor => "el supervisor del contrato",
            Role::Delegado => "un delegado",
            Role::MesaServicio => "la mesa de servicio",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Role {
    type Err = String;
    /// Accepts the key in any case, with accents or spaces (`Talento Humano`), because the matrix
    /// is often kept in a spreadsheet by hand.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = fold(s).replace([' ', '-'], "_");
        Role::ALL.into_iter().find(|r| r.key() == key).ok_or_else(|| {
            format!("unknown role «{}» (expected one of: {})", s.trim(), Role::ALL.map(Role::key).join(", "))
        })
    }
}

/// Who may ask in one cell of the rules table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Anyone holding this role in the matrix, valid today and covering the request's department.
    Role(Role),
    /// The account's owner: the requester's address is the account's `mail`.
    Self_,
    /// The account owner's manager: the requester's address is the `mail` of the account's manager.
    Manager,
}

impl Grant {
    /// The name in `[policy.rules]`.
    pub fn key(self) -> &'static str {
        match self {
            Grant::Role(r) => r.key(),
            Grant::Self_ => "self",
            Grant::Manager => "manager",
        }
    }

    fn who(self) -> &'static str {
        match self {
            Grant::Role(r) => r.who(),
            Grant::Self_ => "el titular de la cuenta",
            Grant::Manager => "su jefe inmediato",
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Grant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_lowercase().as_str() {
            "self" => Ok(Grant::Self_),
            "manager" => Ok(Grant::Manager),
            _ => s.parse::<Role>().map(Grant::Role).map_err(|_| {
                format!(
                    "unknown grant «{}» (expected one of: {}, self, manager)",
                    s.trim(),
                    Role::ALL.map(Role::key).join(", ")
                )
            }),
        }
    }
}

/// The `[policy.rules]` name of a holder type.
pub fn holder_key(holder: HolderType) -> &'static str {
    match holder {
        HolderType::Employee => "employee",
        HolderType::Contractor => "contractor",
        HolderType::Institutional => "institutional",
    }
}

const HOLDERS: [HolderType; 3] = [HolderType::Employee, HolderType::Contractor, HolderType::Institutional];

/// "para funcionarios": the holder type in the plural, as the deny reasons use it.
fn holder_plural(holder: HolderType) -> &'static str {
    match holder {
        HolderType::Employee => "funcionarios",
        HolderType::Contractor => "contratistas",
        HolderType::Institutional => "cuentas institucionales o genéricas",
    }
}

/// The rules table: for each (kind, holder type), who may ask. A cell that is absent or empty
/// does not apply, and is denied to everyone, `mesa_servicio` included.
///
/// `Rules::default()` is the procedure's table (DESIGN §5), with `mesa_servicio` added to every
/// cell that applies. A config overrides single cells with a table of
/// `"<kind>.<holder>" = [grants…]`, e.g.
///
/// ```toml
/// [policy.rules]
/// "create.contractor" = ["supervisor", "coordinador", "mesa_servicio"]
/// "leave.contractor" = ["supervisor"]      # make a not-applicable cell apply
/// "delete.institutional" = []              # make a cell not applicable
/// ```
///
/// - `<kind>` is [`Kind::key`]: `create`, `password_reset`, `modify`, `disable`, `enable`,
///   `delete`, `leave`, `transfer`, `assignment`, `suspension`, `early_termination`
///   (`out_of_scope` is routed, never authorized, so it is refused);
/// - `<holder>` is `employee`, `contractor` or `institutional`;
/// - grants are role names (`talento_humano`, `jefe_area`, `coordinador`, `supervisor`,
///   `delegado`, `mesa_servicio`), `self` (the account's owner) and `manager` (the owner's manager).
///
/// An override replaces the whole cell (write `mesa_servicio` again if the service desk should
/// keep it); cells not named keep their default. Deserializing `Rules` applies the overrides to
/// the default and reports every bad key and grant at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    cells: HashMap<(Kind, HolderType), Vec<Grant>>,
}

impl Rules {
    /// No cell applies: everything is denied. A base for [`Rules::from_cells`]-style building.
    pub fn empty() -> Rules {
        Rules { cells: HashMap::new() }
    }

    /// A table holding exactly these cells; any other cell does not apply.
    pub fn from_cells<I>(cells: I) -> Rules
    where
        I: IntoIterator<Item = (Kind, HolderType, Vec<Grant>)>,
    {
        let mut rules = Rules::empty();
        for (kind, holder, grants) in cells {
            rules.set(kind, holder, grants);
        }
        rules
    }

    /// Replaces one cell; an empty list makes it not applicable. `OutOfScope` cells are ignored
    /// because an out-of-scope request is routed, never authorized.
    pub fn set(&mut self, kind: Kind, holder: HolderType, grants: Vec<Grant>) {
        if kind == Kind::OutOfScope {
            return;
        }
        let mut unique: Vec<Grant> = Vec::with_capacity(grants.len());
        for g in grants {
            if !unique.contains(&g) {
                unique.push(g);
            }
        }
        if unique.is_empty() {
            self.cells.remove(&(kind, holder));
        } else {
            self.cells.insert((kind, holder), unique);
        }
    }

    /// Who may ask in this cell, in the order they are tried; empty when it does not apply.
    pub fn grants(&self, kind: Kind, holder: HolderType) -> &[Grant] {
        self.cells.get(&(kind, holder)).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn applies(&self, kind: Kind, holder: HolderType) -> bool {
        !self.grants(kind, holder).is_empty()
    }

    /// Applies `"<kind>.<holder>" = [grants…]` overrides (format on [`Rules`]); every problem is
    /// returned at once, in English for the administrator.
    pub fn with_overrides(mut self, overrides: &BTreeMap<String, Vec<String>>) -> Result<Rules, Vec<String>> {
        let mut problems = Vec::new();
        for (cell, names) in overrides {
            let (kind, holder) = match parse_cell_key(cell) {
                Ok(k) => k,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let mut grants = Vec::with_capacity(names.len());
            for name in names {
                match name.parse::<Grant>() {
                    Ok(g) => grants.push(g),
                    Err(e) => problems.push(format!("policy.rules.\"{cell}\": {e}")),
                }
            }
            self.set(kind, holder, grants);
        }
        if problems.is_empty() { Ok(self) } else { Err(problems) }
    }
}

fn parse_cell_key(cell: &str) -> Result<(Kind, HolderType), String> {
    let bad = || {
        format!(
            "policy.rules: «{cell}» is not a cell: write \"<kind>.<holder>\", e.g. \"create.contractor\"; kinds: {}; holders: employee, contractor, institutional",
            Kind::ALL
                .iter()
                .filter(|k| **k != Kind::OutOfScope)
                .map(|k| k.key())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let (kind, holder) = cell.split_once('.').ok_or_else(bad)?;
    let (kind, holder) = (kind.trim().to_lowercase(), holder.trim().to_lowercase());
    let kind = Kind::ALL.into_iter().find(|k| k.key() == kind).ok_or_else(bad)?;
    if kind == Kind::OutOfScope {
        return Err(format!(
            "policy.rules: «{cell}»: out-of-scope requests are routed to the IT service-request procedure, never authorized"
        ));
    }
    let holder = HOLDERS.into_iter().find(|h| holder_key(*h) == holder).ok_or_else(bad)?;
    Ok((kind, holder))
}

impl Default for Rules {
    /// The procedure's table (DESIGN §5), plus `mesa_servicio` in every cell that applies.
    fn default() -> Rules {
        use Grant::{Manager, Self_};
        use HolderType::{Contractor, Employee, Institutional};
        const TH: Grant = Grant::Role(Role::TalentoHumano);
        const JA: Grant = Grant::Role(Role::JefeArea);
        const CO: Grant = Grant::Role(Role::Coordinador);
        const SU: Grant = Grant::Role(Role::Supervisor);
        const DE: Grant = Grant::Role(Role::Delegado);
        const MS: Grant = Grant::Role(Role::MesaServicio);

        let mut rules = Rules::empty();
        for kind in [Kind::Create, Kind::Modify, Kind::Disable, Kind::Enable, Kind::Delete] {
            rules.set(kind, Employee, vec![TH, MS]);
            rules.set(kind, Contractor, vec![SU, CO, JA, DE, MS]);
            rules.set(kind, Institutional, vec![CO, JA, DE, MS]);
        }
        // HR notices exist only for employees; contractors' equivalents are the contract notices.
        for kind in [Kind::Leave, Kind::Transfer] {
            rules.set(kind, Employee, vec![TH, MS]);
        }
        for kind in [Kind::Assignment, Kind::Suspension, Kind::EarlyTermination] {
            rules.set(kind, Contractor, vec![SU, CO, JA, DE, MS]);
        }
        // Self and manager first: they are the common case and their grant reads best.
        rules.set(Kind::PasswordReset, Employee, vec![Self_, Manager, TH, MS]);
        rules.set(Kind::PasswordReset, Contractor, vec![Self_, Manager, SU, CO, JA, DE, MS]);
        // A generic account has an owner but no "jefe inmediato" in the procedure's sense.
        rules.set(Kind::PasswordReset, Institutional, vec![Self_, CO, JA, DE, MS]);
        rules
    }
}

impl<'de> Deserialize<'de> for Rules {
    /// Overrides on top of the default (format on [`Rules`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Rules, D::Error> {
        let overrides = BTreeMap::<String, Vec<String>>::deserialize(deserializer)?;
        Rules::default().with_overrides(&overrides).map_err(|p| serde::de::Error::custom(p.join("; ")))
    }
}

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
    fn miss(&self, today: Date, folded_department: &str) -> Option<Miss> {
        match (self.valid_from, self.valid_until) {
            (Some(from), _) if today < from => Some(Miss::NotYet(from)),
            (_, Some(until)) if until < today => Some(Miss::Expired(until)),
            _ if !self.departments.contains_folded(folded_department) => Some(Miss::OutOfDepartments),
            _ => None,
        }
    }

    /// The departments as the requester wrote them, ", "-joined.
    fn departments_for_humans(&self) -> String {
        self.departments_text
            .split(';')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
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
    Invalid { problems: Vec<LineProblem> },
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
            Ok(_) => Err(MatrixError::Invalid { problems }),
            Err(MatrixError::Invalid { problems: more }) => {
                problems.extend(more);
                problems.sort_by_key(|p| p.line);
                Err(MatrixError::Invalid { problems })
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
            Err(MatrixError::Invalid { problems })
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

    /// Number of rows (a person with two roles counts twice).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This person's rows, in file order; empty when absent. Case-insensitive.
    pub fn entries_for(&self, email: &str) -> &[Authorizer] {
        self.by_email.get(&email.trim().to_lowercase()).map(Vec::as_slice).unwrap_or(&[])
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

/// Lower-cased address, or why it is not one. Deliberately simple: the goal is to catch typos
/// and pasted names, not to implement RFC 5322.
fn check_email(s: &str) -> Result<String, String> {
    let e = s.trim().to_lowercase();
    if e.is_empty() {
        return Err("empty: write the person's e-mail address".into());
    }
    let bad = || format!("«{s}» is not an e-mail address");
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let odd = |c: char| c.is_whitespace() || c.is_control() || "<>,;:\"()[]\\@".contains(c);
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || local.chars().chain(domain.chars()).any(odd)
    {
        return Err(bad());
    }
    Ok(e)
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

/// The account a request is about, for the `self` and `manager` grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetAccount<'a> {
    /// The account's `mail` in the directory.
    pub mail: &'a str,
    /// The `mail` of the account's `manager`, when it has one.
    pub manager_mail: Option<&'a str>,
}

/// What is asked: who asks, for what, for which holder type and department.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// The form's verified e-mail address.
    pub requester: &'a str,
    pub kind: Kind,
    pub holder: HolderType,
    /// The form's *Dependencia*, as written; folded here.
    pub department: &'a str,
    /// Needed only for the `self` / `manager` grants; `None` makes them never match.
    pub target: Option<TargetAccount<'a>>,
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// `grant` says which grant allowed it, for the history: `talento_humano (Talento Humano, *)`
    /// or `el titular de la cuenta`.
    Allow { grant: String },
    /// `reason` is Spanish, addressed to the requester, and says what to do.
    Deny { reason: String },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

fn deny(reason: String) -> Decision {
    Decision::Deny { reason }
}

/// The authorization policy: the rules table and the requester domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Rules,
    /// e.g. `["upme.gov.co"]`; a leading `@` and case are ignored. Empty = nobody qualifies (a
    /// missing setting must not open the door; config validation refuses an empty list).
    pub requester_domains: Vec<String>,
}

impl Policy {
    /// The default rules with these requester domains.
    pub fn new(requester_domains: Vec<String>) -> Policy {
        Policy { rules: Rules::default(), requester_domains }
    }

    /// Whether `email` is `local@domain` with `domain` exactly one of the configured domains
    /// (case-insensitive): `evilupme.gov.co` and `sub.upme.gov.co` do not pass for `upme.gov.co`.
    pub fn requester_in_domain(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        let Some((local, domain)) = email.rsplit_once('@') else {
            return false;
        };
        if local.is_empty() || local.contains('@') {
            return false;
        }
        self.requester_domains.iter().any(|d| d.trim().trim_start_matches('@').eq_ignore_ascii_case(domain))
    }

    /// May `q.requester` ask for `q`, on `today`? Pure. Order: out of scope → deny; requester
    /// outside the domains → deny; cell not applicable → deny; then the first matching grant
    /// (`self` / `manager` / a matrix row valid today and covering the department) allows;
    /// otherwise deny with the most useful reason (see the module doc for "deny wins").
    ///
    /// `OutOfScope` is denied with a pointer to the IT service-request procedure: the engine
    /// routes those before asking, and if it ever asks, nothing must be carried out.
    pub fn decide(&self, q: &Query, matrix: &Matrix, today: Date) -> Decision {
        let requester = q.requester.trim().to_lowercase();
        let kind = q.kind.label();
        if q.kind == Kind::OutOfScope {
            return deny(format!(
                "«{kind}» no es una solicitud de gestión de cuentas de usuario: regístrela ante la mesa de servicio como solicitud de servicio de TI."
            ));
        }
        if !self.requester_in_domain(&requester) {
            return deny(self.domain_reason(&requester));
        }
        let grants = self.rules.grants(q.kind, q.holder);
        if grants.is_empty() {
            return deny(self.not_applicable_reason(q.kind, q.holder));
        }

        let same = |a: &str| {
            let a = a.trim();
            !a.is_empty() && a.to_lowercase() == requester
        };
        for g in grants {
            match (g, q.target) {
                (Grant::Self_, Some(t)) if same(t.mail) => {
                    return Decision::Allow { grant: "el titular de la cuenta".into() };
                }
                (Grant::Manager, Some(t)) if t.manager_mail.is_some_and(same) => {
                    return Decision::Allow { grant: "el jefe inmediato del titular de la cuenta".into() };
                }
                _ => {}
            }
        }

        let department = fold(q.department);
        let entries = matrix.entries_for(&requester);
        let mut misses = Vec::new();
        for e in entries.iter().filter(|e| grants.contains(&Grant::Role(e.role))) {
            match e.miss(today, &department) {
                None => {
                    return Decision::Allow { grant: e.grant_text() };
                }
                Some(m) => misses.push((e, m)),
            }
        }
        deny(self.deny_reason(q, &requester, grants, entries, &misses))
    }

    fn domain_reason(&self, requester: &str) -> String {
        let domains: Vec<String> =
            self.requester_domains.iter().map(|d| d.trim().trim_start_matches('@').to_lowercase()).collect();
        if domains.is_empty() {
            return "No hay dominios de correo autorizados para solicitar: comuníquese con la mesa de servicio.".into();
        }
        let at: Vec<String> = domains.iter().map(|d| format!("@{d}")).collect();
        format!(
            "La dirección {requester} no es un correo institucional ({}). Envíe la solicitud con su cuenta institucional.",
            join(&at, "o")
        )
    }

    fn not_applicable_reason(&self, kind: Kind, holder: HolderType) -> String {
        let label = kind.label();
        let applies: Vec<String> = HOLDERS
            .into_iter()
            .filter(|h| self.rules.applies(kind, *h))
            .map(|h| holder_plural(h).to_string())
            .collect();
        if applies.is_empty() {
            return format!(
                "«{label}» no está habilitada en el procedimiento de gestión de usuarios: comuníquese con la mesa de servicio."
            );
        }
        format!(
            "«{label}» solo aplica a {}, no a {}. Revise el tipo de solicitud y el tipo de vinculación y envíe el formulario de nuevo.",
            join(&applies, "y"),
            holder_plural(holder)
        )
    }

    /// The deny reason once the cell applies but no grant matched. Near misses (the right role,
    /// but out of date or out of departments) come first: they tell the person exactly what to fix.
    fn deny_reason(
        &self,
        q: &Query,
        requester: &str,
        grants: &[Grant],
        entries: &[Authorizer],
        misses: &[(&Authorizer, Miss)],
    ) -> String {
        let label = q.kind.label();
        let holder = holder_plural(q.holder);
        let fix_matrix = "pida a la mesa de servicio que actualice la matriz de autorizadores";
        let mut sentences: Vec<String> = Vec::new();
        for (e, miss) in misses {
            let role = e.role.label();
            let s = match miss {
                Miss::Expired(until) => {
                    format!(
                        "Su autorización como {role} no está vigente (vigente hasta {until}): {fix_matrix}."
                    )
                }
                Miss::NotYet(from) => format!(
                    "Su autorización como {role} aún no está vigente (vigente desde {from}): podrá solicitarlo desde esa fecha, o {fix_matrix}."
                ),
                Miss::OutOfDepartments if q.department.trim().is_empty() => format!(
                    "La solicitud no indica la dependencia, y como {role} solo puede solicitar para: {}. Indique la dependencia en el formulario y envíelo de nuevo.",
                    e.departments_for_humans()
                ),
                Miss::OutOfDepartments => format!(
                    "Como {role} solo puede solicitar para: {}. Si «{}» es la dependencia correcta, {fix_matrix}.",
                    e.departments_for_humans(),
                    q.department.trim()
                ),
            };
            if !sentences.contains(&s) {
                sentences.push(s);
            }
        }
        if !sentences.is_empty() {
            return sentences.join(" ");
        }

        // Nobody tells a requester to ask the service desk to ask for them, unless it is the only way.
        let mut who: Vec<String> = grants
            .iter()
            .filter(|g| **g != Grant::Role(Role::MesaServicio))
            .map(|g| g.who().to_string())
            .collect();
        if who.is_empty() {
            who.push(Role::MesaServicio.who().to_string());
        }
        let who_can = format!("«{label}» para {holder} la pueden solicitar: {}.", join(&who, "o"));

        if !entries.is_empty() {
            let mut roles: Vec<String> = Vec::new();
            for e in entries {
                let r = e.role.label().to_string();
                if !roles.contains(&r) {
                    roles.push(r);
                }
            }
            return format!(
                "Como {} no puede solicitar «{label}» para {holder}. {who_can}",
                join(&roles, "o")
            );
        }

        let as_roles: Vec<String> = grants
            .iter()
            .filter_map(|g| match g {
                Grant::Role(r) if *r != Role::MesaServicio => Some(r.label().to_string()),
                _ => None,
            })
            .collect();
        let mut not_person = Vec::new();
        if grants.contains(&Grant::Self_) {
            not_person.push("la del titular de la cuenta");
        }
        if grants.contains(&Grant::Manager) {
            not_person.push("la de su jefe inmediato");
        }
        let first = match (not_person.as_slice(), as_roles.is_empty()) {
            ([], true) => {
                format!("La dirección {requester} no figura en la matriz de autorizadores.")
            }
            ([], false) => {
                format!(
                    "La dirección {requester} no figura en la matriz de autorizadores como {}.",
                    join(&as_roles, "o")
                )
            }
            (people, true) => format!("La dirección {requester} no es {}.", people.join(" ni ")),
            (people, false) => format!(
                "La dirección {requester} no es {}, y no figura en la matriz de autorizadores como {}.",
                people.join(" ni "),
                join(&as_roles, "o")
            ),
        };
        format!("{first} {who_can} Si usted debería poder solicitarlo, {fix_matrix}.")
    }
}

/// "a", "a o b", "a, b o c".
fn join(items: &[String], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const TODAY: Date = date(2026, 3, 16);
    const DEPT: &str = "Subdirección de Energía";
    const OWNER: &str = "usuario@upme.gov.co";
    const MANAGER: &str = "jefa.inmediata@upme.gov.co";

    fn policy() -> Policy {
        Policy::new(vec!["upme.gov.co".into()])
    }

    fn matrix(csv: &str) -> Matrix {
        Matrix::parse(csv.as_bytes()).unwrap()
    }

    /// One person per role, all valid today and covering `DEPT` (talento_humano and the service
    /// desk entity-wide, as they would be in practice).
    fn all_roles() -> Matrix {
        matrix(
            "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta
th@upme.gov.co,Talento Humano,talento_humano,*,,
ja@upme.gov.co,Jefe de Área,jefe_area,Subdirección de Energía,2026-01-01,2026-12-31
co@upme.gov.co,Coordinador,coordinador,Subdirección de Energía,,
su@upme.gov.co,Supervisor,supervisor,Subdirección de Energía;Oficina de Planeación,,
de@upme.gov.co,Delegado,delegado,Subdirección de Energía,,2026-12-31
ms@upme.gov.co,Mesa de Servicio,mesa_servicio,*,,
",
        )
    }

    fn query<'a>(requester: &'a str, kind: Kind, holder: HolderType, department: &'a str) -> Query<'a> {
        Query {
            requester,
            kind,
            holder,
            department,
            target: Some(TargetAccount { mail: OWNER, manager_mail: Some(MANAGER) }),
        }
    }

    fn reason(d: Decision) -> String {
        match d {
            Decision::Deny { reason } => reason,
            Decision::Allow { grant } => panic!("expected a denial, got Allow by {grant}"),
        }
    }

    fn grant(d: Decision) -> String {
        match d {
            Decision::Allow { grant } => grant,
            Decision::Deny { reason } => panic!("expected an allow, got Deny: {reason}"),
        }
    }

    /// Every cell of DESIGN §5's table, written out by hand (not derived from `Rules::default`).
    /// `A` = allowed, `-` = denied. Columns, in order: talento_humano, jefe_area, coordinador,
    /// supervisor, delegado, mesa_servicio, the account's owner, the owner's manager, a stranger
    /// (in the domain but in no matrix row).
    #[rustfmt::skip]
    const EXPECTED: [(Kind, HolderType, &str); 33] = {
        use HolderType::{Contractor as C, Employee as E, Institutional as I};
        use Kind::*;
        [
            //                                 TH JA CO SU DE MS self mgr stranger
            (Create,           E, "A  -  -  -  -  A  -    -   -"),
            (Create,           C, "-  A  A  A  A  A  -    -   -"),
            (Create,           I, "-  A  A  -  A  A  -    -   -"),
            (Modify,           E, "A  -  -  -  -  A  -    -   -"),
            (Modify,           C, "-  A  A  A  A  A  -    -   -"),
            (Modify,           I, "-  A  A  -  A  A  -    -   -"),
            (Disable,          E, "A  -  -  -  -  A  -    -   -"),
            (Disable,          C, "-  A  A  A  A  A  -    -   -"),
            (Disable,          I, "-  A  A  -  A  A  -    -   -"),
            (Enable,           E, "A  -  -  -  -  A  -    -   -"),
            (Enable,           C, "-  A  A  A  A  A  -    -   -"),
            (Enable,           I, "-  A  A  -  A  A  -    -   -"),
            (Delete,           E, "A  -  -  -  -  A  -    -   -"),
            (Delete,           C, "-  A  A  A  A  A  -    -   -"),
            (Delete,           I, "-  A  A  -  A  A  -    -   -"),
            (Leave,            E, "A  -  -  -  -  A  -    -   -"),
            (Leave,            C, "-  -  -  -  -  -  -    -   -"),
            (Leave,            I, "-  -  -  -  -  -  -    -   -"),
            (Transfer,         E, "A  -  -  -  -  A  -    -   -"),
            (Transfer,         C, "-  -  -  -  -  -  -    -   -"),
            (Transfer,         I, "-  -  -  -  -  -  -    -   -"),
            (Assignment,       E, "-  -  -  -  -  -  -    -   -"),
            (Assignment,       C, "-  A  A  A  A  A  -    -   -"),
            (Assignment,       I, "-  -  -  -  -  -  -    -   -"),
            (Suspension,       E, "-  -  -  -  -  -  -    -   -"),
            (Suspension,       C, "-  A  A  A  A  A  -    -   -"),
            (Suspension,       I, "-  -  -  -  -  -  -    -   -"),
            (EarlyTermination, E, "-  -  -  -  -  -  -    -   -"),
            (EarlyTermination, C, "-  A  A  A  A  A  -    -   -"),
            (EarlyTermination, I, "-  -  -  -  -  -  -    -   -"),
            (PasswordReset,    E, "A  -  -  -  -  A  A    A   -"),
            (PasswordReset,    C, "-  A  A  A  A  A  A    A   -"),
            (PasswordReset,    I, "-  A  A  -  A  A  A    -   -"),
        ]
    };

    const ACTORS: [&str; 9] = [
        "th@upme.gov.co",
        "ja@upme.gov.co",
        "co@upme.gov.co",
        "su@upme.gov.co",
        "de@upme.gov.co",
        "ms@upme.gov.co",
        OWNER,
        MANAGER,
        "extrano@upme.gov.co",
    ];

    #[test]
    fn every_cell_of_the_default_table() {
        // The table covers each (kind, holder) but OutOfScope exactly once.
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::OutOfScope) {
            for holder in HOLDERS {
                let n = EXPECTED.iter().filter(|(k, h, _)| *k == kind && *h == holder).count();
                assert_eq!(n, 1, "{kind:?} × {holder:?} appears {n} times in EXPECTED");
            }
        }
        let (policy, matrix) = (policy(), all_roles());
        let mut failures = Vec::new();
        let mut cells = 0;
        for (kind, holder, row) in EXPECTED {
            let marks: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(marks.len(), ACTORS.len(), "row {kind:?} × {holder:?}");
            for (actor, mark) in ACTORS.iter().zip(marks) {
                cells += 1;
                let d = policy.decide(&query(actor, kind, holder, DEPT), &matrix, TODAY);
                let want = match mark {
                    "A" => true,
                    "-" => false,
                    other => panic!("bad mark {other}"),
                };
                if d.is_allowed() != want {
                    failures.push(format!("{kind:?} × {holder:?} × {actor}: want {mark}, got {d:?}"));
                }
                if let Decision::Deny { reason } = &d {
                    assert!(!reason.trim().is_empty(), "{kind:?} × {holder:?} × {actor}: empty reason");
                    // A not-applicable cell says so, whoever asks.
                    if !row.contains('A') {
                        assert!(
                            reason.contains("solo aplica a"),
                            "{kind:?} × {holder:?} × {actor}: {reason}"
                        );
                    }
                }
            }
        }
        assert_eq!(cells, 297);
        assert!(failures.is_empty(), "{} cell(s) wrong:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn out_of_scope_is_denied_to_everyone_with_a_pointer() {
        let (policy, matrix) = (policy(), all_roles());
        for actor in ACTORS {
            for holder in HOLDERS {
                let r = reason(policy.decide(&query(actor, Kind::OutOfScope, holder, DEPT), &matrix, TODAY));
                assert!(r.contains("solicitud de servicio de TI"), "{r}");
            }
        }
    }

    #[test]
    fn grant_texts_name_who_allowed() {
        let (policy, matrix) = (policy(), all_roles());
        let g =
            |who, kind| grant(policy.decide(&query(who, kind, HolderType::Employee, DEPT), &matrix, TODAY));
        assert_eq!(g("th@upme.gov.co", Kind::Create), "talento_humano (Talento Humano, *)");
        assert_eq!(g(OWNER, Kind::PasswordReset), "el titular de la cuenta");
        assert_eq!(g(MANAGER, Kind::PasswordReset), "el jefe inmediato del titular de la cuenta");
        // Addresses compare case-insensitively on both sides.
        assert_eq!(g("  TH@UPME.gov.co ", Kind::Create), "talento_humano (Talento Humano, *)");
        assert_eq!(g("Usuario@UPME.gov.co", Kind::PasswordReset), "el titular de la cuenta");
    }

    #[test]
    fn self_and_manager_need_a_target() {
        let (policy, matrix) = (policy(), all_roles());
        let mut q = query(OWNER, Kind::PasswordReset, HolderType::Employee, DEPT);
        q.target = None;
        let r = reason(policy.decide(&q, &matrix, TODAY));
        assert!(r.contains("no es la del titular de la cuenta ni la de su jefe inmediato"), "{r}");
        q.target = Some(TargetAccount { mail: OWNER, manager_mail: None });
        q.requester = MANAGER;
        assert!(!policy.decide(&q, &matrix, TODAY).is_allowed());
    }

    #[test]
    fn deny_reasons_say_what_to_do() {
        let (policy, matrix) = (policy(), all_roles());
        let r = reason(policy.decide(
            &query("juan@upme.gov.co", Kind::Create, HolderType::Employee, DEPT),
            &matrix,
            TODAY,
        ));
        assert_eq!(
            r,
            "La dirección juan@upme.gov.co no figura en la matriz de autorizadores como talento humano. \
             «Creación de cuenta» para funcionarios la pueden solicitar: el GIT de Talento Humano. \
             Si usted debería poder solicitarlo, pida a la mesa de servicio que actualice la matriz de autorizadores."
        );
        // In the matrix, but in a role that does not fit the cell.
        let r = reason(policy.decide(
            &query("su@upme.gov.co", Kind::Create, HolderType::Employee, DEPT),
            &matrix,
            TODAY,
        ));
        assert!(
            r.starts_with("Como supervisor no puede solicitar «Creación de cuenta» para funcionarios."),
            "{r}"
        );
        // Not applicable.
        let r = reason(policy.decide(
            &query("ms@upme.gov.co", Kind::Leave, HolderType::Contractor, DEPT),
            &matrix,
            TODAY,
        ));
        assert_eq!(
            r,
            "«Vacaciones o licencia» solo aplica a funcionarios, no a contratistas. \
             Revise el tipo de solicitud y el tipo de vinculación y envíe el formulario de nuevo."
        );
        let r = reason(policy.decide(
            &query(OWNER, Kind::Suspension, HolderType::Employee, DEPT),
            &matrix,
            TODAY,
        ));
        assert!(
            r.starts_with("«Suspensión de contrato» solo aplica a contratistas, no a funcionarios."),
            "{r}"
        );
    }

    #[test]
    fn department_scope() {
        let policy = policy();
        let m = matrix(
            "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta
co@upme.gov.co,Coordinadora,coordinador,Subdirección de Energía; Oficina de Planeación,,
th@upme.gov.co,TH parcial,talento_humano,Secretaría General,,
todo@upme.gov.co,Jefe,jefe_area,*,,
",
        );
        let d = |who, dept| policy.decide(&query(who, Kind::Create, HolderType::Contractor, dept), &m, TODAY);
        // In the list, exactly and folded (accents, case, spaces).
        assert!(d("co@upme.gov.co", "Subdirección de Energía").is_allowed());
        assert!(d("co@upme.gov.co", "  SUBDIRECCION   de energia ").is_allowed());
        assert!(d("co@upme.gov.co", "oficina de planeacion").is_allowed());
        // Out of the list.
        let r = reason(d("co@upme.gov.co", "Secretaría General"));
        assert_eq!(
            r,
            "Como coordinador solo puede solicitar para: Subdirección de Energía, Oficina de Planeación. \
             Si «Secretaría General» es la dependencia correcta, pida a la mesa de servicio que actualice la matriz de autorizadores."
        );
        // No department given: only `*` covers it.
        let r = reason(d("co@upme.gov.co", ""));
        assert!(r.starts_with("La solicitud no indica la dependencia"), "{r}");
        assert!(d("todo@upme.gov.co", "").is_allowed());
        assert!(d("todo@upme.gov.co", "Cualquier Dependencia").is_allowed());
        // talento_humano is entity-wide only when its row says `*`.
        let e = |dept| {
            policy.decide(&query("th@upme.gov.co", Kind::Create, HolderType::Employee, dept), &m, TODAY)
        };
        assert!(e("SECRETARIA GENERAL").is_allowed());
        assert!(
            reason(e(DEPT)).starts_with("Como talento humano solo puede solicitar para: Secretaría General.")
        );
    }

    #[test]
    fn validity_dates_are_inclusive_and_may_be_open() {
        let policy = policy();
        let m = matrix(
            "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta
cerrado@upme.gov.co,,supervisor,*,2026-04-01,2026-06-30
desde@upme.gov.co,,supervisor,*,2026-04-01,
hasta@upme.gov.co,,supervisor,*,,2026-06-30
abierto@upme.gov.co,,supervisor,*,,
",
        );
        let d =
            |who, today| policy.decide(&query(who, Kind::Create, HolderType::Contractor, DEPT), &m, today);
        let before = date(2026, 3, 31);
        let first = date(2026, 4, 1);
        let last = date(2026, 6, 30);
        let after = date(2026, 7, 1);
        let r = reason(d("cerrado@upme.gov.co", before));
        assert!(
            r.starts_with("Su autorización como supervisor aún no está vigente (vigente desde 2026-04-01)"),
            "{r}"
        );
        assert!(d("cerrado@upme.gov.co", first).is_allowed());
        assert!(d("cerrado@upme.gov.co", last).is_allowed());
        assert_eq!(
            reason(d("cerrado@upme.gov.co", after)),
            "Su autorización como supervisor no está vigente (vigente hasta 2026-06-30): pida a la mesa de servicio que actualice la matriz de autorizadores."
        );
        assert!(!d("desde@upme.gov.co", before).is_allowed());
        assert!(d("desde@upme.gov.co", date(2099, 12, 31)).is_allowed());
        assert!(d("hasta@upme.gov.co", date(2000, 1, 1)).is_allowed());
        assert!(!d("hasta@upme.gov.co", after).is_allowed());
        for today in [date(1990, 1, 1), before, first, last, after, date(2099, 12, 31)] {
            assert!(d("abierto@upme.gov.co", today).is_allowed(), "{today}");
        }
    }

    #[test]
    fn requester_domain_is_exact() {
        let p = Policy::new(vec!["upme.gov.co".into(), " @Minenergia.GOV.co ".into()]);
        for ok in ["a@upme.gov.co", "A.B@UPME.GOV.CO", "  a@upme.gov.co ", "x@minenergia.gov.co"] {
            assert!(p.requester_in_domain(ok), "{ok}");
        }
        for bad in [
            "a@evilupme.gov.co",
            "a@upme.gov.co.evil.com",
            "a@sub.upme.gov.co",
            "a@upme.gov.co@gmail.com",
            "a@gmail.com@upme.gov.co",
            "upme.gov.co",
            "@upme.gov.co",
            "a@",
            "",
        ] {
            assert!(!p.requester_in_domain(bad), "{bad}");
        }
        assert!(!Policy::new(vec![]).requester_in_domain("a@upme.gov.co"));
    }

    #[test]
    fn domain_failure_denies_whatever_the_grants() {
        let policy = policy();
        let m = matrix(
            "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta
mesa@evilupme.gov.co,Impostor,mesa_servicio,*,,
",
        );
        let r = reason(policy.decide(
            &query("mesa@evilupme.gov.co", Kind::Create, HolderType::Employee, DEPT),
            &m,
            TODAY,
        ));
        assert_eq!(
            r,
            "La dirección mesa@evilupme.gov.co no es un correo institucional (@upme.gov.co). Envíe la solicitud con su cuenta institucional."
        );
        // The owner of an account writing from a personal address is not "self".
        let q = Query {
            requester: "usuario@gmail.com",
            kind: Kind::PasswordReset,
            holder: HolderType::Employee,
            department: DEPT,
            target: Some(TargetAccount { mail: "usuario@gmail.com", manager_mail: None }),
        };
        assert!(!policy.decide(&q, &m, TODAY).is_allowed());
    }

    #[test]
    fn several_rows_for_one_person() {
        let policy = policy();
        let m = matrix(
            "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta
ana@upme.gov.co,Ana,supervisor,*,2025-01-01,2025-12-31
ana@upme.gov.co,Ana,supervisor,Subdirección de Hidrocarburos,2026-01-01,
ana@upme.gov.co,Ana,supervisor,Subdirección de Energía,2026-01-01,2026-12-31
ana@upme.gov.co,Ana,talento_humano,*,,
ana@upme.gov.co,Ana,mesa_servicio,*,,2025-12-31
",
        );
        assert_eq!(m.entries_for("ANA@upme.gov.co").len(), 5);
        let d = |kind, holder| policy.decide(&query("ana@upme.gov.co", kind, holder, DEPT), &m, TODAY);
        // An expired row and an out-of-department row do not veto the valid one (line 4).
        assert_eq!(
            grant(d(Kind::Create, HolderType::Contractor)),
            "supervisor (Ana, Subdirección de Energía)"
        );
        // A valid talento_humano row still grants nothing in a not-applicable cell.
        assert!(reason(d(Kind::Leave, HolderType::Contractor)).contains("solo aplica a funcionarios"));
        // Institutional: supervisor does not fit, mesa_servicio has expired. The reason is the
        // near miss, not "you are not in the matrix".
        assert_eq!(
            reason(d(Kind::Create, HolderType::Institutional)),
            "Su autorización como mesa de servicio no está vigente (vigente hasta 2025-12-31): pida a la mesa de servicio que actualice la matriz de autorizadores."
        );
        // After the supervisor row for Energía expires, all near misses are reported.
        let r = reason(policy.decide(
            &query("ana@upme.gov.co", Kind::Create, HolderType::Contractor, DEPT),
            &m,
            date(2027, 1, 4),
        ));
        assert!(r.contains("vigente hasta 2025-12-31"), "{r}");
        assert!(r.contains("vigente hasta 2026-12-31"), "{r}");
        assert!(r.contains("solo puede solicitar para: Subdirección de Hidrocarburos"), "{r}");
    }

    #[test]
    fn rules_overrides_from_toml() {
        #[derive(Deserialize)]
        struct Config {
            policy: Section,
        }
        #[derive(Deserialize)]
        struct Section {
            #[serde(default)]
            rules: Rules,
        }
        let cfg: Config = toml::from_str(
            r#"
[policy.rules]
"create.contractor" = ["supervisor", "mesa_servicio"]
"leave.contractor" = ["Supervisor"]
"delete.institutional" = []
"password_reset.institutional" = ["self", "manager"]
"#,
        )
        .unwrap();
        let rules = cfg.policy.rules;
        let su = Grant::Role(Role::Supervisor);
        let ms = Grant::Role(Role::MesaServicio);
        assert_eq!(rules.grants(Kind::Create, HolderType::Contractor), [su, ms]);
        assert_eq!(rules.grants(Kind::Leave, HolderType::Contractor), [su]);
        assert!(!rules.applies(Kind::Delete, HolderType::Institutional));
        assert_eq!(
            rules.grants(Kind::PasswordReset, HolderType::Institutional),
            [Grant::Self_, Grant::Manager]
        );
        // Untouched cells keep the default.
        assert_eq!(
            rules.grants(Kind::Create, HolderType::Employee),
            Rules::default().grants(Kind::Create, HolderType::Employee)
        );

        let p = Policy { rules, requester_domains: vec!["upme.gov.co".into()] };
        let m = all_roles();
        assert!(
            !p.decide(&query("co@upme.gov.co", Kind::Create, HolderType::Contractor, DEPT), &m, TODAY)
                .is_allowed()
        );
        assert!(
            p.decide(&query("su@upme.gov.co", Kind::Leave, HolderType::Contractor, DEPT), &m, TODAY)
                .is_allowed()
        );
        let r = reason(p.decide(
            &query("ms@upme.gov.co", Kind::Delete, HolderType::Institutional, DEPT),
            &m,
            TODAY,
        ));
        assert!(r.starts_with("«Eliminación de cuenta» solo aplica a funcionarios y contratistas"), "{r}");

        // No section at all: the default table.
        #[derive(Deserialize)]
        struct Bare {
            #[serde(default)]
            rules: Rules,
        }
        let bare: Bare = toml::from_str("").unwrap();
        assert_eq!(bare.rules, Rules::default());
    }

    #[test]
    fn rules_override_problems_all_at_once() {
        let overrides: BTreeMap<String, Vec<String>> = [
            ("create.contractors", vec!["supervisor"]),
            ("crear.contractor", vec!["supervisor"]),
            ("out_of_scope.employee", vec!["mesa_servicio"]),
            ("modify.employee", vec!["talento_humano", "rrhh", "boss"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
        .collect();
        let problems = Rules::default().with_overrides(&overrides).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems.iter().any(|p| p.contains("«create.contractors» is not a cell")));
        assert!(problems.iter().any(|p| p.contains("«crear.contractor» is not a cell")));
        assert!(problems.iter().any(|p| p.contains("never authorized")));
        assert!(problems.iter().any(|p| p.contains("unknown grant «rrhh»")));
        assert!(problems.iter().any(|p| p.contains("unknown grant «boss»")));
        // Through serde the same problems surface as one error.
        let err = toml::from_str::<BTreeMap<String, Rules>>("[rules]\n\"x.y\" = [\"z\"]").unwrap_err();
        assert!(err.to_string().contains("«x.y» is not a cell"), "{err}");
    }

    #[test]
    fn rules_from_cells() {
        let rules = Rules::from_cells([
            (
                Kind::Create,
                HolderType::Employee,
                vec![Grant::Role(Role::Supervisor), Grant::Role(Role::Supervisor)],
            ),
            (Kind::OutOfScope, HolderType::Employee, vec![Grant::Role(Role::MesaServicio)]),
        ]);
        assert_eq!(rules.grants(Kind::Create, HolderType::Employee), [Grant::Role(Role::Supervisor)]);
        assert!(!rules.applies(Kind::OutOfScope, HolderType::Employee));
        assert!(!rules.applies(Kind::Create, HolderType::Contractor));
        let p = Policy { rules, requester_domains: vec!["upme.gov.co".into()] };
        let r = reason(p.decide(
            &query("ms@upme.gov.co", Kind::Modify, HolderType::Employee, DEPT),
            &all_roles(),
            TODAY,
        ));
        assert!(r.contains("no está habilitada"), "{r}");
    }

    #[test]
    fn matrix_loads_the_fixture() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/policy/matriz.csv");
        let m = Matrix::load(&path).unwrap();
        assert_eq!(m.len(), 7);
        assert!(!m.is_empty());
        let rows = m.entries_for("Maria.Perez@UPME.gov.co");
        assert_eq!(rows.iter().map(|a| a.role).collect::<Vec<_>>(), [Role::Coordinador, Role::Supervisor]);
        assert_eq!(rows[0].line, 4);
        assert_eq!(rows[0].valid_until, Some(date(2026, 12, 31)));
        assert_eq!(
            rows[1].departments,
            Departments::List(vec![
                "subdireccion de energia".into(),
                "oficina de gestion de proyectos de fondos".into()
            ])
        );
        assert!(m.entries_for("nadie@upme.gov.co").is_empty());
        assert!(Matrix::default().is_empty());
        assert!(matches!(load_matrix(&path.with_file_name("no-existe.csv")), Err(MatrixError::Open { .. })));
    }

    #[test]
    fn matrix_problems_all_at_once() {
        let csv = "\u{feff}Correo,Nombre,Rol,Dependencias,Vigente desde,Vigente hasta,Notas
ok@upme.gov.co,Bien,coordinador,Subdirección de Energía,,,
,,,,,,
juan,Juan,jefe,*,2026-02-30,,
ana@upme.gov.co,Ana,supervisor,,01/03/2026,2026-12-31,
luis@upme.gov.co,Luis,delegado,*,2026-06-01,2026-01-01,
corto@upme.gov.co,Corto,supervisor
eva @upme.gov.co,Eva,talento_humano,*;Secretaría General,,,
";
        let err = Matrix::parse(csv.as_bytes()).unwrap_err();
        let MatrixError::Invalid { problems } = &err else { panic!("{err}") };
        let got: Vec<(u32, &str)> = problems.iter().map(|p| (p.line, p.column.as_str())).collect();
        assert_eq!(
            got,
            [
                (4, "correo"),
                (4, "rol"),
                (4, "vigente_desde"),
                (5, "dependencias"),
                (5, "vigente_desde"),
                (6, "vigente_hasta"),
                (7, "dependencias"),
                (8, "correo"),
                (8, "dependencias"),
            ],
            "{err}"
        );
        let text = err.to_string();
        for needle in [
            "9 problem(s)",
            "line 4, column rol: unknown role «jefe»",
            "line 4, column vigente_desde: «2026-02-30» is not a calendar date",
            "line 4, column correo: «juan» is not an e-mail address",
            "line 5, column vigente_desde: «01/03/2026» is not a date",
            "line 6, column vigente_hasta: vigente_hasta 2026-01-01 is before vigente_desde 2026-06-01",
            "line 7, column dependencias: the line ends early",
            "line 8, column dependencias: «*;Secretaría General» mixes *",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn matrix_header_and_encoding_problems() {
        let err = Matrix::parse("correo,rol,dependencias\n".as_bytes()).unwrap_err();
        assert!(
            matches!(&err, MatrixError::MissingColumns { missing } if missing == &["nombre", "vigente_desde", "vigente_hasta"])
        );
        assert!(matches!(Matrix::parse("".as_bytes()), Err(MatrixError::NoHeader)));
        let mut bytes = b"correo,nombre,rol,dependencias,vigente_desde,vigente_hasta\n".to_vec();
        bytes.extend_from_slice(b"a@upme.gov.co,Mar\xeda,delegado,*,,\nb@upme.gov.co,B,jefe,*,,\n");
        let MatrixError::Invalid { problems } = Matrix::parse(bytes.as_slice()).unwrap_err() else {
            panic!()
        };
        let got: Vec<(u32, &str)> = problems.iter().map(|p| (p.line, p.column.as_str())).collect();
        assert_eq!(got, [(2, "nombre"), (3, "rol")]);
        // Columns in another order, and extra ones, are fine.
        let m = matrix(
            "rol,correo,extra,dependencias,nombre,vigente_hasta,vigente_desde\nTalento Humano,X@Upme.gov.co,?,*,X,,\n",
        );
        assert_eq!(m.entries_for("x@upme.gov.co")[0].role, Role::TalentoHumano);
        assert_eq!(m.entries_for("x@upme.gov.co")[0].email, "x@upme.gov.co");
    }

    #[test]
    fn departments_parse() {
        assert_eq!(Departments::parse(" * "), Ok(Departments::All));
        assert_eq!(
            Departments::parse("Subdirección de Energía ;; Oficina  Jurídica;"),
            Ok(Departments::List(vec!["subdireccion de energia".into(), "oficina juridica".into()]))
        );
        assert!(Departments::parse(" ; ").is_err());
        assert!(Departments::List(vec!["oficina juridica".into()]).contains("OFICINA JURÍDICA"));
        assert!(!Departments::List(vec!["oficina juridica".into()]).contains(""));
    }
}
