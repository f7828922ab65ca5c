//! Intake (pure): the form's header row to a column map, and one response row to a
//! [`Submission`] whose problems say, in Spanish, what the requester must fix.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;

use crate::request::{HolderType, Kind, Problem, Submission};

mod values;

pub use self::values::*;

/// The fields cuentas reads from the form (DESIGN §3, "Form columns").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    SubmittedAt,
    Requester,
    Kind,
    HolderType,
    GivenNames,
    Surnames,
    IdType,
    IdNumber,
    PersonalEmail,
    Department,
    Title,
    ManagerEmail,
    ContractNumber,
    ContractStart,
    ContractEnd,
    Account,
    EffectiveDate,
    ReturnDate,
    Groups,
    OnSite,
    Notes,
}

impl Field {
    pub const ALL: [Field; 21] = [
        Field::SubmittedAt,
        Field::Requester,
        Field::Kind,
        Field::HolderType,
        Field::GivenNames,
        Field::Surnames,
        Field::IdType,
        Field::IdNumber,
        Field::PersonalEmail,
        Field::Department,
        Field::Title,
        Field::ManagerEmail,
        Field::ContractNumber,
        Field::ContractStart,
        Field::ContractEnd,
        Field::Account,
        Field::EffectiveDate,
        Field::ReturnDate,
        Field::Groups,
        Field::OnSite,
        Field::Notes,
    ];

    /// Columns without which no row can be understood: their absence is a configuration error.
    pub const REQUIRED: [Field; 3] = [Field::SubmittedAt, Field::Requester, Field::Kind];

    /// The name used in `[form.columns]`.
    pub fn key(self) -> &'static str {
        match self {
            Field::SubmittedAt => "submitted_at",
            Field::Requester => "requester",
            Field::Kind => "kind",
            Field::HolderType => "holder_type",
            Field::GivenNames => "given_names",
            Field::Surnames => "surnames",
            Field::IdType => "id_type",
            Field::IdNumber => "id_number",
            Field::PersonalEmail => "personal_email",
            Field::Department => "department",
            Field::Title => "title",
            Field::ManagerEmail => "manager_email",
            Field::ContractNumber => "contract_number",
            Field::ContractStart => "contract_start",
            Field::ContractEnd => "contract_end",
            Field::Account => "account",
            Field::EffectiveDate => "effective_date",
            Field::ReturnDate => "return_date",
            Field::Groups => "groups",
            Field::OnSite => "on_site",
            Field::Notes => "notes",
        }
    }

    /// The Spanish header Google Forms writes for the default form.
    /// The headers a form's export may give this field: the default (Spanish) one, and the one
    /// Google writes itself when the form's owner works in English.
    pub fn headers(self) -> &'static [&'static str] {
        match self {
            Field::SubmittedAt => &["Marca temporal", "Timestamp"],
            Field::Requester => &["Dirección de correo electrónico", "Email Address"],
            _ => &[],
        }
    }

    pub fn default_header(self) -> &'static str {
        match self {
            Field::SubmittedAt => "Marca temporal",
            Field::Requester => "Dirección de correo electrónico",
            Field::Kind => "Tipo de solicitud",
            Field::HolderType => "Tipo de vinculación",
            Field::GivenNames => "Nombres",
            Field::Surnames => "Apellidos",
            Field::IdType => "Tipo de documento",
            Field::IdNumber => "Número de documento",
            Field::PersonalEmail => "Correo electrónico personal",
            Field::Department => "Dependencia",
            Field::Title => "Cargo",
            Field::ManagerEmail => "Correo del jefe inmediato o supervisor",
            Field::ContractNumber => "Número de contrato",
            Field::ContractStart => "Fecha de inicio del contrato",
            Field::ContractEnd => "Fecha de terminación del contrato",
            Field::Account => "Usuario de red existente",
            Field::EffectiveDate => "Fecha efectiva de la novedad",
            Field::ReturnDate => "Fecha de regreso",
            Field::Groups => "Accesos o grupos requeridos",
            Field::OnSite => "¿El usuario se encuentra en las instalaciones de la entidad?",
            Field::Notes => "Observaciones",
        }
    }
}

impl FromStr for Field {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Field::ALL.into_iter().find(|f| f.key() == s).ok_or(())
    }
}

/// The entity's own option texts (`[form.kinds]`, `[form.holder_types]`), folded, over the
/// default form's. `Kind::OutOfScope` is an option for another IT request (`routed`).
#[derive(Debug, Clone, Default)]
pub struct FormOptions {
    pub kinds: Vec<(String, Kind)>,
    pub holder_types: Vec<(String, HolderType)>,
}

impl FormOptions {
    fn kind(&self, answer: &str) -> Option<Kind> {
        let a = fold(answer);
        self.kinds
            .iter()
            .find(|(option, _)| fold(option) == a)
            .map(|(_, k)| *k)
            .or_else(|| parse_kind(answer))
    }

    fn holder_type(&self, answer: &str) -> Option<HolderType> {
        let a = fold(answer);
        let mapped = self.holder_types.iter().find(|(option, _)| fold(option) == a);
        mapped.map(|(_, h)| *h).or_else(|| parse_holder(answer))
    }
}

/// Which column holds which field, built from the header row and `[form.columns]`, and the
/// form's options as the entity wrote them.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    /// Every column whose header names the field, left to right: a question deleted from the
    /// form and added again keeps its old column (the old answers) and gets a new one at the
    /// right (the new answers).
    index: BTreeMap<Field, Vec<usize>>,
    headers: Vec<String>,
    options: FormOptions,
}

/// Header problems: a configuration error, not a row error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the form's header row lacks required column(s): {}", missing.iter().map(|(f, h)| format!("«{h}» ({f})")).collect::<Vec<_>>().join(", "))]
pub struct MissingColumns {
    /// (field key, expected header)
    pub missing: Vec<(&'static str, String)>,
}

impl ColumnMap {
    /// Maps `headers` using `overrides` (field key → header text) over the defaults. Headers
    /// match ignoring case, accents and repeated spaces.
    pub fn new(
        headers: &[String],
        overrides: &BTreeMap<String, String>,
    ) -> Result<ColumnMap, MissingColumns> {
        let folded: Vec<String> = headers.iter().map(|h| fold(h)).collect();
        let mut index = BTreeMap::new();
        let mut missing = Vec::new();
        for field in Field::ALL {
            let wanted = overrides.get(field.key()).map(String::as_str).unwrap_or(field.default_header());
            let also: &[&str] = if overrides.contains_key(field.key()) { &[] } else { field.headers() };
            let found: Vec<usize> = (0..folded.len())
                .filter(|&i| folded[i] == fold(wanted) || also.iter().any(|a| folded[i] == fold(a)))
                .collect();
            match found.is_empty() {
                false => {
                    index.insert(field, found);
                }
                true if Field::REQUIRED.contains(&field) => missing.push((field.key(), wanted.to_string())),
                true => {}
            }
        }
        if missing.is_empty() {
            Ok(ColumnMap { index, headers: headers.to_vec(), options: FormOptions::default() })
        } else {
            Err(MissingColumns { missing })
        }
    }

    /// The same columns, reading the entity's option texts.
    pub fn with_options(mut self, options: FormOptions) -> ColumnMap {
        self.options = options;
        self
    }

    pub fn has(&self, field: Field) -> bool {
        self.index.contains_key(&field)
    }

    pub(crate) fn header(&self, field: Field) -> String {
        self.index
            .get(&field)
            .and_then(|columns| self.headers.get(*columns.first()?))
            .cloned()
            .unwrap_or_else(|| field.default_header().to_string())
    }

    /// The field's answer in a row: of its columns, the rightmost one answered (the question
    /// as the form asks it now).
    fn cell<'a>(&self, cells: &'a [String], field: Field) -> &'a str {
        let columns = self.index.get(&field).map(Vec::as_slice).unwrap_or_default();
        columns
            .iter()
            .rev()
            .filter_map(|&i| cells.get(i))
            .find(|c| !c.trim().is_empty())
            .map_or("", String::as_str)
    }

    /// The headers found in more than one column, with the columns (1 for `A`).
    pub fn repeated(&self) -> Vec<(String, Vec<u32>)> {
        self.index
            .values()
            .filter(|columns| columns.len() > 1)
            .map(|columns| {
                let numbers = columns.iter().map(|&i| u32::try_from(i + 1).unwrap_or(u32::MAX)).collect();
                (self.headers[columns[0]].clone(), numbers)
            })
            .collect()
    }
}

/// Whether an identity document type is the Colombian *cédula* (digits only).
fn is_cedula(id_type: &str) -> bool {
    let t = fold(id_type);
    t.is_empty() || t == "cc" || t.starts_with("cedula de ciudadania")
}

struct RowReader<'a> {
    map: &'a ColumnMap,
    cells: &'a [String],
    row: u32,
    problems: Vec<Problem>,
}

impl RowReader<'_> {
    fn text(&self, field: Field) -> String {
        clean(self.map.cell(self.cells, field))
    }

    fn problem(&mut self, field: Field, reason: impl Into<String>) {
        self.problems.push(Problem {
            row: self.row,
            column: self.map.header(field),
            reason: shorten_quotes(&reason.into()),
        });
    }

    fn required(&mut self, field: Field, what: &str) -> String {
        let value = self.text(field);
        if value.is_empty() {
            self.problem(field, format!("está vacía: escriba {what}"));
        }
        value
    }

    fn email(&mut self, field: Field, required: bool, what: &str) -> String {
        let raw = self.text(field);
        if raw.is_empty() {
            if required {
                self.problem(field, format!("está vacía: escriba {what}, como nombre@dominio.com"));
            }
            return String::new();
        }
        match parse_email(&raw) {
            Some(e) => e,
            None => {
                self.problem(
                    field,
                    format!(
                        "«{raw}» no es una dirección de correo válida; escriba una como nombre@dominio.com"
                    ),
                );
                String::new()
            }
        }
    }

    fn date(&mut self, field: Field, required: bool, what: &str) -> Option<Date> {
        let raw = self.text(field);
        if raw.is_empty() {
            if required {
                self.problem(field, format!("está vacía: escriba {what} como dd/mm/aaaa"));
            }
            return None;
        }
        let date = parse_date(&raw);
        if date.is_none() {
            self.problem(field, format!("«{raw}» no es una fecha válida; escríbala como dd/mm/aaaa"));
        }
        date
    }

    /// Names keep every letter, or are asked about: letters of another script (a Cyrillic «А»
    /// that looks Latin) or symbols would otherwise vanish from the account name.
    fn name(&mut self, field: Field, what: &str) -> String {
        let value = self.required(field, what).replace('\u{2019}', "'");
        if value.chars().any(|c| c.is_alphabetic() && !is_latin_letter(c)) {
            self.problem(
                field,
                format!(
                    "«{value}» tiene letras de otro alfabeto (por ejemplo cirílico o griego) en {what}; \
                     escríbalo con letras del alfabeto latino (con tildes y ñ si las lleva)"
                ),
            );
            return String::new();
        }
        if !value.chars().all(|c| is_latin_letter(c) || " '-.".contains(c)) {
            self.problem(field, format!("«{value}» tiene caracteres que no van en {what}; use solo letras, espacios, guiones y apóstrofos"));
            return String::new();
        }
        value
    }
}

/// The form's *Dependencia*, where the entity lists its dependencies: written as the list
/// writes it (matched ignoring case, accents and repeated spaces), or asked about, naming them.
pub fn check_department(map: &ColumnMap, row: u32, s: &mut Submission, departments: &[String]) {
    if departments.is_empty() || s.department.is_empty() {
        return;
    }
    let answer = fold(&s.department);
    match departments.iter().find(|d| fold(d) == answer) {
        Some(listed) => s.department = listed.clone(),
        None => {
            s.problems.push(Problem {
                row,
                column: map.header(Field::Department),
                reason: format!(
                    "«{}» no es una dependencia de la entidad; escriba una de: {}",
                    s.department,
                    departments.join(", ")
                ),
            });
            s.department.clear();
        }
    }
}

/// Bytes of one stored answer; the rest is cut, with a visible mark. Free text (*Observaciones*,
/// extra columns) is the reason: a pasted page must not become part of every record.
pub const MAX_ANSWER_BYTES: usize = 2000;
/// Bytes of all the extra columns of a row together.
const MAX_EXTRA_BYTES: usize = 8000;

/// Reads one response row. Never fails: what is wrong is listed in `problems`. Every answer is
/// kept up to [`MAX_ANSWER_BYTES`] (checks see it whole), so that no stored record grows past
/// what one row can hold.
pub fn parse_row(map: &ColumnMap, row: u32, cells: &[String]) -> Submission {
    let mut s = read_row(map, row, cells);
    for answer in [
        &mut s.requester,
        &mut s.kind_answer,
        &mut s.given_names,
        &mut s.surnames,
        &mut s.id_type,
        &mut s.id_number,
        &mut s.personal_email,
        &mut s.department,
        &mut s.title,
        &mut s.manager_email,
        &mut s.contract_number,
        &mut s.account,
        &mut s.notes,
    ] {
        cut(answer, MAX_ANSWER_BYTES);
    }
    for g in &mut s.groups {
        cut(g, MAX_ANSWER_BYTES);
    }
    s.groups.truncate(64);
    let mut budget = MAX_EXTRA_BYTES;
    s.extra.retain(|header, value| {
        let keep = budget > header.len();
        budget = budget.saturating_sub(header.len());
        cut(value, MAX_ANSWER_BYTES.min(budget));
        budget = budget.saturating_sub(value.len());
        keep
    });
    for p in &mut s.problems {
        cut(&mut p.reason, MAX_ANSWER_BYTES);
    }
    s
}

/// Cuts `text` to about `max` bytes at a character boundary, saying how much was left out.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let left_out = text[end..].chars().count();
    text.truncate(end);
    text.push_str(&format!(" … [recortado: {left_out} caracteres más]"));
}

/// Reads one response row, every answer whole.
///
/// It reads best as one: a flat walk down the form's fields in their order, each read, checked
/// and stored in a few lines, with the checks that tie two fields together (the kind and the
/// fields it needs, contract dates) after them; splitting it would only scatter the table.
fn read_row(map: &ColumnMap, row: u32, cells: &[String]) -> Submission {
    let mut r = RowReader { map, cells, row, problems: Vec::new() };
    let mut s = Submission::default();

    let stamp = r.text(Field::SubmittedAt);
    s.submitted_at = parse_timestamp(&stamp);
    if s.submitted_at.is_none() {
        r.problem(
            Field::SubmittedAt,
            format!("«{stamp}» no es una marca temporal válida (dd/mm/aaaa HH:MM:SS)"),
        );
    }
    s.requester = r.email(Field::Requester, true, "el correo de quien solicita");
    s.kind_answer = r.text(Field::Kind);
    s.kind = map.options.kind(&s.kind_answer);
    let Some(kind) = s.kind else {
        if s.kind_answer.is_empty() {
            r.problem(
                Field::Kind,
                "está vacía: elija el tipo de solicitud entre las opciones del formulario",
            );
        } else {
            // An option of the entity's form nobody mapped: the rest is read once it is.
            s.unmapped.push(("form.kinds".into(), s.kind_answer.clone()));
        }
        s.problems = r.problems;
        return s;
    };
    s.notes = r.text(Field::Notes);
    s.extra = extra_columns(map, cells);
    if kind == Kind::OutOfScope {
        s.problems = r.problems;
        return s;
    }

    let holder = r.text(Field::HolderType);
    s.holder_type = map.options.holder_type(&holder);
    if s.holder_type.is_none() {
        if holder.is_empty() {
            r.problem(
                Field::HolderType,
                "está vacía: elija Funcionario, Contratista o Cuenta institucional o genérica",
            );
        } else {
            s.unmapped.push(("form.holder_types".into(), holder.clone()));
        }
    }
    let contractor = s.holder_type == Some(HolderType::Contractor);
    let institutional = s.holder_type == Some(HolderType::Institutional);

    // What each kind needs (DESIGN §3); new-person data for creations and assignments.
    let new_person = matches!(kind, Kind::Create | Kind::Assignment);
    if new_person {
        s.given_names = r.name(Field::GivenNames, "los nombres");
        s.surnames =
            if institutional { r.text(Field::Surnames) } else { r.name(Field::Surnames, "los apellidos") };
        s.department = r.required(Field::Department, "la dependencia");
        s.title = if institutional { r.text(Field::Title) } else { r.required(Field::Title, "el cargo") };
        s.personal_email = r.email(
            Field::PersonalEmail,
            !institutional,
            "el correo electrónico personal (allí se envían los datos de acceso)",
        );
        if !institutional {
            s.id_type = r.text(Field::IdType);
            let raw = r.required(Field::IdNumber, "el número de documento");
            s.id_number = id_number(&mut r, &s.id_type, &raw);
        }
    } else {
        s.given_names = r.text(Field::GivenNames);
        s.surnames = r.text(Field::Surnames);
        s.department = r.text(Field::Department);
        s.title = r.text(Field::Title);
        let needs_personal = kind == Kind::PasswordReset;
        s.personal_email = r.email(
            Field::PersonalEmail,
            needs_personal,
            "el correo electrónico personal (allí se envía la nueva contraseña)",
        );
        s.id_type = r.text(Field::IdType);
        let raw = r.text(Field::IdNumber);
        if !raw.is_empty() {
            s.id_number = id_number(&mut r, &s.id_type, &raw);
        }
    }
    s.manager_email = r.email(Field::ManagerEmail, false, "el correo del jefe o supervisor");
    if kind.needs_existing_account() {
        let account = r.required(Field::Account, "el usuario de red existente (por ejemplo juan.perez)");
        s.account = account.to_lowercase();
        if !s.account.is_empty() && !s.account.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            r.problem(
                Field::Account,
                format!(
                    "«{account}» no es un usuario de red; escriba solo el usuario, por ejemplo juan.perez"
                ),
            );
            s.account.clear();
        }
    }
    if contractor && new_person {
        s.contract_number = r.required(Field::ContractNumber, "el número de contrato");
        s.contract_start = r.date(Field::ContractStart, true, "la fecha de inicio del contrato");
        s.contract_end = r.date(Field::ContractEnd, true, "la fecha de terminación del contrato");
        if let (Some(a), Some(b)) = (s.contract_start, s.contract_end)
            && b < a
        {
            r.problem(
                Field::ContractEnd,
                "la terminación del contrato es anterior a su inicio; revise las fechas",
            );
        }
    } else {
        s.contract_number = r.text(Field::ContractNumber);
        s.contract_start = r.date(Field::ContractStart, false, "");
        s.contract_end = r.date(Field::ContractEnd, false, "");
    }
    let needs_effective =
        matches!(kind, Kind::Leave | Kind::Transfer | Kind::Suspension | Kind::EarlyTermination);
    s.effective_date = r.date(Field::EffectiveDate, needs_effective, "la fecha efectiva de la novedad");
    s.return_date = r.date(Field::ReturnDate, kind == Kind::Leave, "la fecha de regreso");
    if let (Some(a), Some(b)) = (s.effective_date, s.return_date)
        && b <= a
    {
        r.problem(
            Field::ReturnDate,
            "la fecha de regreso debe ser posterior a la fecha efectiva; revise las fechas",
        );
    }
    if kind == Kind::Transfer && s.department.is_empty() {
        r.problem(Field::Department, "está vacía: escriba la nueva dependencia del traslado");
    }
    s.groups = r.text(Field::Groups).split(',').map(clean).filter(|g| !g.is_empty()).collect();
    let on_site = r.text(Field::OnSite);
    s.on_site = match fold(&on_site).as_str() {
        "si" => Some(true),
        "no" => Some(false),
        "" => None,
        _ => {
            r.problem(Field::OnSite, format!("«{on_site}» no es una respuesta válida; responda Sí o No"));
            None
        }
    };
    // A new contract end alone is a change: an extension of the contract (prórroga).
    if kind == Kind::Modify
        && [&s.given_names, &s.surnames, &s.department, &s.title, &s.manager_email]
            .iter()
            .all(|v| v.is_empty())
        && s.groups.is_empty()
        && s.contract_end.is_none()
    {
        r.problem(Field::Department, "la modificación no indica qué cambiar; llene los campos que deben cambiar (dependencia, cargo, jefe, grupos, nombres o, para una prórroga, la nueva fecha de terminación del contrato)");
    }
    check_lengths(&mut r, &s);
    s.problems = r.problems;
    s
}

/// The directory's limits on what it stores (AD schema: `cn`, `givenName`, `sn` and
/// `department` hold 64 characters, `title` 128, `employeeID` 16): a longer answer is for the
/// requester to shorten, not for the directory to refuse.
fn check_lengths(r: &mut RowReader<'_>, s: &Submission) {
    let limits: [(Field, &str, usize, &str); 6] = [
        (Field::GivenNames, &s.given_names, 64, "los nombres"),
        (Field::Surnames, &s.surnames, 64, "los apellidos"),
        (Field::Department, &s.department, 64, "la dependencia"),
        (Field::Title, &s.title, 128, "el cargo"),
        (Field::IdNumber, &s.id_number, 16, "el número de documento"),
        (Field::Account, &s.account, 20, "el usuario de red"),
    ];
    for (field, value, max, what) in limits {
        let n = value.chars().count();
        if n > max {
            r.problem(field, format!("{what} tiene {n} caracteres y el directorio admite {max}; abrévielo"));
        }
    }
    let full = s.full_name().chars().count();
    if s.given_names.chars().count() <= 64 && s.surnames.chars().count() <= 64 && full > 64 {
        r.problem(
            Field::Surnames,
            format!("el nombre completo (nombres y apellidos) tiene {full} caracteres y el directorio admite 64; abrévielo"),
        );
    }
}

/// Quoted answers («…») cut to a readable length: a pasted page must not become the message.
fn shorten_quotes(reason: &str) -> String {
    const MAX: usize = 60;
    let mut out = String::with_capacity(reason.len().min(512));
    let mut rest = reason;
    while let Some(start) = rest.find('«') {
        let Some(len) = rest[start..].find('»') else {
            break;
        };
        let quoted = &rest[start + '«'.len_utf8()..start + len];
        out.push_str(&rest[..start]);
        out.push('«');
        if quoted.chars().count() > MAX {
            out.extend(quoted.chars().take(MAX));
            out.push('…');
        } else {
            out.push_str(quoted);
        }
        out.push('»');
        rest = &rest[start + len + '»'.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn id_number(r: &mut RowReader<'_>, id_type: &str, raw: &str) -> String {
    if raw.is_empty() {
        return String::new();
    }
    if is_cedula(id_type) {
        let digits: String = raw.chars().filter(|c| !matches!(c, '.' | ' ' | ',')).collect();
        if digits.len() < 5 || digits.len() > 11 || !digits.chars().all(|c| c.is_ascii_digit()) {
            r.problem(
                Field::IdNumber,
                format!("«{raw}» no es un número de cédula; escriba solo los dígitos"),
            );
            return String::new();
        }
        digits
    } else {
        let id: String =
            raw.chars().filter(|c| !matches!(c, '.' | ' ' | '-')).collect::<String>().to_uppercase();
        if id.len() < 4 || id.len() > 20 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            r.problem(
                Field::IdNumber,
                format!("«{raw}» no es un número de documento válido; escriba solo letras y dígitos"),
            );
            return String::new();
        }
        id
    }
}

fn extra_columns(map: &ColumnMap, cells: &[String]) -> BTreeMap<String, String> {
    let known: Vec<usize> = map.index.values().flatten().copied().collect();
    map.headers
        .iter()
        .enumerate()
        .filter(|(i, h)| !known.contains(i) && !h.trim().is_empty())
        .filter_map(|(i, h)| {
            let v = cells.get(i).map(|c| clean(c)).unwrap_or_default();
            (!v.is_empty()).then(|| (h.clone(), v))
        })
        .collect()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> Vec<String> {
        Field::ALL.iter().map(|f| f.default_header().to_string()).collect()
    }

    fn row(values: &[(Field, &str)]) -> Vec<String> {
        let mut cells = vec![String::new(); Field::ALL.len()];
        for (f, v) in values {
            let i = Field::ALL.iter().position(|x| x == f).unwrap();
            cells[i] = v.to_string();
        }
        cells
    }

    fn create_contractor() -> Vec<(Field, &'static str)> {
        vec![
            (Field::SubmittedAt, "2/3/2026 9:05:07"),
            (Field::Requester, " Supervisor@UPME.gov.co "),
            (Field::Kind, "CREACION DE CUENTA"),
            (Field::HolderType, "contratista"),
            (Field::GivenNames, "María  José"),
            (Field::Surnames, "De La Hoz Peñaloza"),
            (Field::IdType, "Cédula de ciudadanía"),
            (Field::IdNumber, "1.020.304.050"),
            (Field::PersonalEmail, "mjdlh@gmail.com"),
            (Field::Department, "Subdirección de Energía"),
            (Field::Title, "Contratista"),
            (Field::ContractNumber, "C-123-2026"),
            (Field::ContractStart, "02/03/2026"),
            (Field::ContractEnd, "31/12/2026"),
            (Field::Groups, "VPN, Sharepoint Energía"),
        ]
    }

    #[test]
    fn a_good_contractor_creation_parses_and_normalises() {
        let map = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap();
        let s = parse_row(&map, 2, &row(&create_contractor()));
        assert_eq!(s.problems, vec![]);
        assert_eq!(s.kind, Some(Kind::Create));
        assert_eq!(s.holder_type, Some(HolderType::Contractor));
        assert_eq!(s.requester, "supervisor@upme.gov.co");
        assert_eq!(s.given_names, "María José");
        assert_eq!(s.id_number, "1020304050");
        assert_eq!(s.contract_end, Some(Date::constant(2026, 12, 31)));
        assert_eq!(s.groups, vec!["VPN", "Sharepoint Energía"]);
        assert_eq!(s.submitted_at, Some(Date::constant(2026, 3, 2).at(9, 5, 7, 0)));
    }

    #[test]
    fn a_question_added_again_is_read_from_the_column_each_row_answered() {
        // «Dependencia» deleted from the form and added again: its old column keeps the old
        // answers, a new one at the right takes the new ones.
        let mut h = headers();
        h.push("  dependencia ".into());
        h.push("Otra pregunta".into());
        let map = ColumnMap::new(&h, &BTreeMap::new()).unwrap();
        let department = Field::ALL.iter().position(|f| *f == Field::Department).unwrap();
        assert_eq!(
            map.repeated(),
            vec![(h[department].clone(), vec![department as u32 + 1, h.len() as u32 - 1])]
        );

        let old = row(&create_contractor());
        let mut new = row(&create_contractor());
        new[department] = String::new();
        new.push("Secretaría General".into());
        new.push("algo más".into());
        assert_eq!(parse_row(&map, 2, &old).department, "Subdirección de Energía");
        let s = parse_row(&map, 3, &new);
        assert_eq!((s.department.as_str(), s.problems.len()), ("Secretaría General", 0));
        // The repeated column is not taken for an extra question.
        assert_eq!(s.extra.keys().collect::<Vec<_>>(), vec!["Otra pregunta"]);
        assert!(ColumnMap::new(&headers(), &BTreeMap::new()).unwrap().repeated().is_empty());
    }

    #[test]
    fn each_problem_names_its_column_and_what_to_fix() {
        let map = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap();
        let mut values = create_contractor();
        values.retain(|(f, _)| *f != Field::Surnames);
        values.push((Field::PersonalEmail, "mjdlh@gmail"));
        values.push((Field::ContractEnd, "31/02/2026"));
        let cells = row(&values);
        let s = parse_row(&map, 9, &cells);
        let columns: Vec<_> = s.problems.iter().map(|p| p.column.as_str()).collect();
        assert_eq!(
            columns,
            ["Apellidos", "Correo electrónico personal", "Fecha de terminación del contrato"]
        );
        assert!(s.problems.iter().all(|p| p.row == 9));
        assert!(s.problems[1].reason.contains("no es una dirección de correo válida"));
    }

    #[test]
    fn kinds_match_without_case_or_accents_and_an_option_nobody_mapped_is_not_routed_away() {
        assert_eq!(parse_kind("Cesión de contrato"), Some(Kind::Assignment));
        assert_eq!(parse_kind("cesion DE contrato"), Some(Kind::Assignment));
        assert_eq!(parse_kind("Vacaciones, Licencia"), Some(Kind::Leave));
        assert_eq!(parse_kind("Terminación anticipada"), Some(Kind::EarlyTermination));
        assert_eq!(parse_kind("Otra solicitud"), Some(Kind::OutOfScope));
        assert_eq!(parse_kind("Instalar impresora"), None);
        assert_eq!(parse_kind("  "), None);
    }

    #[test]
    fn the_entity_s_own_options_are_read_by_configuration() {
        let options = FormOptions {
            kinds: vec![
                ("Vinculación de funcionario".into(), Kind::Create),
                ("Instalación de software".into(), Kind::OutOfScope),
            ],
            holder_types: vec![("Servidor público de planta".into(), HolderType::Employee)],
        };
        let map = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap().with_options(options);
        let mut values = create_contractor();
        values.retain(|(f, _)| *f != Field::Kind && *f != Field::HolderType);
        values.push((Field::Kind, "VINCULACION de funcionario"));
        values.push((Field::HolderType, "Servidor público de planta"));
        let s = parse_row(&map, 2, &row(&values));
        assert_eq!((s.kind, s.holder_type), (Some(Kind::Create), Some(HolderType::Employee)));
        assert_eq!((s.problems.len(), s.unmapped.len()), (0, 0), "{:?}", s.problems);

        // Unmapped: not a problem for the requester to fix, and not routed away.
        let plain = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap();
        let s = parse_row(&plain, 2, &row(&values));
        assert_eq!(s.kind, None);
        assert_eq!(s.unmapped, vec![("form.kinds".to_string(), "VINCULACION de funcionario".to_string())]);
        assert!(s.problems.is_empty());
        values.retain(|(f, _)| *f != Field::Kind);
        values.push((Field::Kind, "Creación de cuenta"));
        let s = parse_row(&plain, 2, &row(&values));
        assert_eq!(
            s.unmapped,
            vec![("form.holder_types".to_string(), "Servidor público de planta".to_string())]
        );
        values.retain(|(f, _)| *f != Field::Kind);
        values.push((Field::Kind, "Instalación de software"));
        assert_eq!(parse_row(&map, 2, &row(&values)).kind, Some(Kind::OutOfScope));
    }

    #[test]
    fn headers_map_with_overrides_and_missing_required_are_named() {
        let mut h = headers();
        h[4] = "Nombres completos".into();
        let overrides = BTreeMap::from([("given_names".to_string(), "nombres COMPLETOS".to_string())]);
        let map = ColumnMap::new(&h, &overrides).unwrap();
        assert!(map.has(Field::GivenNames));
        let err = ColumnMap::new(&h[3..], &BTreeMap::new()).unwrap_err();
        assert_eq!(err.missing.len(), 3);
    }

    #[test]
    fn dates_and_timestamps_in_every_accepted_form() {
        assert_eq!(parse_date("05/01/2026"), Some(Date::constant(2026, 1, 5)));
        assert_eq!(parse_date("5/1/2026"), Some(Date::constant(2026, 1, 5)));
        assert_eq!(parse_date("2026-01-05"), Some(Date::constant(2026, 1, 5)));
        assert_eq!(parse_date("46027"), Some(Date::constant(2026, 1, 5)));
        assert_eq!(parse_date("31/02/2026"), None);
        assert_eq!(parse_date("1/1/26"), None);
        assert_eq!(
            parse_timestamp("27/11/2026 23:59:59"),
            Some(Date::constant(2026, 11, 27).at(23, 59, 59, 0))
        );
        assert_eq!(parse_timestamp("46027.5"), Some(Date::constant(2026, 1, 5).at(12, 0, 0, 0)));
        assert_eq!(parse_timestamp("27/11/2026 24:00:00"), None);
    }

    #[test]
    fn cleaning_removes_invisible_characters_and_line_breaks() {
        assert_eq!(clean(" Ana\u{200B}\r\nMaría "), "Ana María");
        assert_eq!(fold("ÑANDÚ  Pérez"), "nandu perez");
        assert_eq!(parse_email("Ana@UPME.gov.co"), Some("ana@upme.gov.co".into()));
        for bad in
            ["ana@", "@upme.gov.co", "ana@upme", "a b@upme.gov.co", "ana@@upme.gov.co", "ana@upme.gov.c0m"]
        {
            assert_eq!(parse_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn answers_longer_than_the_directory_holds_need_info() {
        let map = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap();
        let mut values = create_contractor();
        let long = "Bartolomé ".repeat(7);
        values.push((Field::GivenNames, long.as_str()));
        let s = parse_row(&map, 4, &row(&values));
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(s.problems[0].reason.contains("admite 64"));
        let mut values = create_contractor();
        values.push((Field::GivenNames, "Maximiliano Alejandro José"));
        values.push((Field::Surnames, "De La Hoz Villavicencio Santamaría Ortiz"));
        let s = parse_row(&map, 4, &row(&values));
        assert!(s.problems.iter().any(|p| p.reason.contains("nombre completo")), "{:?}", s.problems);
    }

    #[test]
    fn long_answers_are_cut_in_messages() {
        let long = format!("«{}» no es válido; «corto»", "x".repeat(500));
        let short = shorten_quotes(&long);
        assert_eq!(short, format!("«{}…» no es válido; «corto»", "x".repeat(60)));
        assert_eq!(shorten_quotes("sin comillas «abierta"), "sin comillas «abierta");
    }

    #[test]
    fn a_row_with_nothing_but_a_kind_never_panics() {
        let map = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap();
        for kind in Kind::ALL {
            let s = parse_row(&map, 3, &row(&[(Field::Kind, kind.label())]));
            assert_eq!(s.kind, Some(kind));
            assert!(!s.problems.is_empty(), "{kind:?}");
        }
        let s = parse_row(&map, 3, &[]);
        assert!(s.kind.is_none());
    }

    /// Names and dependencies as people type them: each is kept in its normal form, or asked
    /// about with a reason; nothing is dropped silently.
    #[test]
    fn names_and_dependencies_are_kept_whole_or_asked_about() {
        let map = ColumnMap::new(&headers(), &BTreeMap::new()).unwrap();
        let departments = ["Subdirección de Energía Eléctrica".to_string(), "Secretaría General".to_string()];
        let parse = |given: &str, department: &str| {
            let mut values = create_contractor();
            values.retain(|(f, _)| !matches!(f, Field::GivenNames | Field::Department));
            values.push((Field::GivenNames, given));
            values.push((Field::Department, department));
            let mut s = parse_row(&map, 2, &row(&values));
            check_department(&map, 2, &mut s, &departments);
            s
        };
        // (given names, what they become, or a word of the reason)
        let names: [(&str, Result<&str, &str>); 14] = [
            ("José", Ok("José")),
            ("Peña", Ok("Peña")),
            ("Zoë", Ok("Zoë")),
            ("D'Alessandro", Ok("D'Alessandro")),
            ("O\u{2019}Neil", Ok("O'Neil")),
            ("Ana-María", Ok("Ana-María")),
            ("Nguyễn", Ok("Nguyễn")),
            ("Jose\u{301}", Ok("José")),
            ("\u{410}na", Err("otro alfabeto")),
            ("Ελένη", Err("otro alfabeto")),
            ("Ana \u{1F600}", Err("caracteres que no van")),
            ("Ana2", Err("caracteres que no van")),
            ("*", Err("caracteres que no van")),
            ("Ana_María", Err("caracteres que no van")),
        ];
        for (given, want) in names {
            let s = parse(given, "Secretaría General");
            let got = match s.problems.iter().find(|p| p.column == "Nombres") {
                Some(p) => Err(p.reason.clone()),
                None => Ok(s.given_names.clone()),
            };
            match (want, got) {
                (Ok(w), Ok(g)) => assert_eq!(g, w, "{given}"),
                (Err(w), Err(g)) => assert!(g.contains(w), "{given}: {g}"),
                (w, g) => panic!("{given}: want {w:?}, got {g:?}"),
            }
        }
        let dependencies: [(&str, Option<&str>); 7] = [
            ("Secretaría General", Some("Secretaría General")),
            ("secretaria   general", Some("Secretaría General")),
            ("SUBDIRECCION DE ENERGIA ELECTRICA", Some("Subdirección de Energía Eléctrica")),
            ("Subdirección de Energía Electrica ", Some("Subdirección de Energía Eléctrica")),
            ("*", None),
            ("Secretaria Genral", None),
            ("Subdirección de Energía", None),
        ];
        for (answer, want) in dependencies {
            let s = parse("Ana", answer);
            match want {
                Some(w) => {
                    assert_eq!(s.department, w, "{answer}");
                    assert!(s.problems.is_empty(), "{answer}: {:?}", s.problems);
                }
                None => {
                    let p = s
                        .problems
                        .iter()
                        .find(|p| p.column == "Dependencia")
                        .unwrap_or_else(|| panic!("{answer}"));
                    assert!(p.reason.contains("no es una dependencia de la entidad"), "{}", p.reason);
                    assert!(p.reason.contains("Secretaría General"), "names the options: {}", p.reason);
                }
            }
        }
        // Without a list, the answer is taken as written.
        let mut s = parse_row(&map, 2, &row(&create_contractor()));
        check_department(&map, 2, &mut s, &[]);
        assert_eq!(s.department, "Subdirección de Energía");
    }
}
