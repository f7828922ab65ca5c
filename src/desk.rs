//! The service desk's form (pure): its questions, one response read into an action on requests,
//! who may do each action, and the pre-filled links the mails carry. The service desk and the
//! administrators act on requests from this form, as requesters ask through theirs: each
//! response is authorized against the matrix, then runs through the commands of [`crate::cli`].

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::Date;

use crate::intake::{fold, parse_email};
use crate::policy::{Authorizer, Matrix, Miss, Role};
use crate::request::{DELETION_CHECKLIST, RequestId};

/// What a response of the desk form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeskAction {
    /// One step of a deletion's backup checklist was made and checked.
    Confirm,
    /// A request handled by hand is done; the note is what its requester is told.
    Done,
    /// An open request ends without effect; the note says why.
    Cancel,
    /// Disables held by the hourly limit go on.
    Release,
    /// A failed step is tried again, or a request handled by hand is decided again.
    Retry,
}

impl DeskAction {
    pub const ALL: [DeskAction; 5] =
        [DeskAction::Confirm, DeskAction::Done, DeskAction::Cancel, DeskAction::Release, DeskAction::Retry];

    /// The name in `[desk.rules]`.
    pub fn key(self) -> &'static str {
        match self {
            DeskAction::Confirm => "confirm",
            DeskAction::Done => "done",
            DeskAction::Cancel => "cancel",
            DeskAction::Release => "release",
            DeskAction::Retry => "retry",
        }
    }

    /// The option of the form's «Acción» question (and the value its pre-filled links carry).
    pub fn label(self) -> &'static str {
        match self {
            DeskAction::Confirm => "Confirmar paso de la eliminación",
            DeskAction::Done => "Marcar como atendida",
            DeskAction::Cancel => "Cancelar la solicitud",
            DeskAction::Release => "Liberar inactivaciones retenidas",
            DeskAction::Retry => "Reintentar",
        }
    }

    /// Reads an answer of the «Acción» question: the option's text, in any case or accents.
    pub fn parse(answer: &str) -> Option<DeskAction> {
        let answer = fold(answer);
        DeskAction::ALL.into_iter().find(|a| fold(a.label()) == answer || a.key() == answer)
    }

    /// Who may do it by default: the service desk confirms, closes and cancels; letting a
    /// mass change go on, or a failed step run again, is the administrators'.
    fn default_roles(self) -> Vec<Role> {
        match self {
            DeskAction::Confirm | DeskAction::Done | DeskAction::Cancel => vec![Role::MesaServicio],
            DeskAction::Release | DeskAction::Retry => vec![Role::Administrador],
        }
    }
}

impl fmt::Display for DeskAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The form's questions, by the header Google writes for each (the first two are Google's own
/// columns: the time, and the address the form verified).
pub const QUESTIONS: [(&str, &str); 4] = [
    ("Solicitud", "El número de la solicitud, p. ej. GU-2026-000123 (varias, separadas por comas)"),
    ("Acción", "Lo que se hizo o se decide"),
    ("Paso", "Solo para «Confirmar paso de la eliminación»: cuál"),
    (
        "Observaciones",
        "Lo que se hizo (lo recibe el solicitante), el motivo de una cancelación o dónde quedó una copia",
    ),
];

/// The option of the «Paso» question for a checklist step: what it confirms, capitalized.
pub fn step_label(key: &str) -> Option<String> {
    let (_, what) = DELETION_CHECKLIST.iter().find(|(k, _)| *k == key)?;
    let mut chars = what.chars();
    Some(chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default())
}

/// Reads an answer of the «Paso» question: its option's text, or the step's key.
pub fn parse_step(answer: &str) -> Option<&'static str> {
    let answer = fold(answer);
    DELETION_CHECKLIST.iter().find(|(key, what)| *key == answer || fold(what) == answer).map(|(key, _)| *key)
}

/// Where each question is in the desk form's sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskColumns {
    timestamp: usize,
    email: usize,
    request: usize,
    action: usize,
    step: Option<usize>,
    note: Option<usize>,
}

impl DeskColumns {
    /// The columns found in the header; the questions it lacks otherwise.
    pub fn from_header(header: &[String]) -> Result<DeskColumns, Vec<&'static str>> {
        let folded: Vec<String> = header.iter().map(|h| fold(h)).collect();
        let find = |names: &[&str]| folded.iter().position(|h| names.iter().any(|n| fold(n) == *h));
        let timestamp = find(&["Marca temporal", "Timestamp"]);
        let email =
            find(&["Dirección de correo electrónico", "Correo electrónico", "Email Address", "Email"]);
        let request = find(&["Solicitud"]);
        let action = find(&["Acción"]);
        let mut missing = Vec::new();
        for (found, name) in [
            (timestamp, "Marca temporal"),
            (email, "Dirección de correo electrónico"),
            (request, "Solicitud"),
            (action, "Acción"),
        ] {
            if found.is_none() {
                missing.push(name);
            }
        }
        match (timestamp, email, request, action) {
            (Some(timestamp), Some(email), Some(request), Some(action)) => Ok(DeskColumns {
                timestamp,
                email,
                request,
                action,
                step: find(&["Paso"]),
                note: find(&["Observaciones", "Nota"]),
            }),
            _ => Err(missing),
        }
    }

    /// One response: row `row` of the sheet, its cells.
    pub fn read(&self, row: u32, cells: &[String]) -> DeskRow {
        let cell = |i: usize| cells.get(i).map(|c| c.trim().to_string()).unwrap_or_default();
        let step_answer = self.step.map(cell).unwrap_or_default();
        DeskRow {
            row,
            submitted_at: crate::intake::parse_timestamp(&cell(self.timestamp)),
            by: parse_email(&cell(self.email)),
            targets: parse_targets(&cell(self.request)),
            action_answer: cell(self.action),
            action: DeskAction::parse(&cell(self.action)),
            step: parse_step(&step_answer),
            step_answer,
            note: self.note.map(cell).unwrap_or_default(),
        }
    }
}

/// The requests a response names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    These(Vec<RequestId>),
    /// «todas»: every held request (a release only).
    AllHeld,
}

/// One response of the desk form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskRow {
    pub row: u32,
    pub submitted_at: Option<jiff::civil::DateTime>,
    /// The address the form verified; `None` when the cell holds none.
    pub by: Option<String>,
    /// The requests named, or why the cell names none.
    pub targets: Result<Targets, String>,
    pub action: Option<DeskAction>,
    pub action_answer: String,
    pub step: Option<&'static str>,
    pub step_answer: String,
    pub note: String,
}

/// `GU-2026-000123, GU-2026-000124` (commas, semicolons or spaces between), or «todas».
fn parse_targets(cell: &str) -> Result<Targets, String> {
    if fold(cell) == "todas" {
        return Ok(Targets::AllHeld);
    }
    let ids: Vec<&str> = cell.split([',', ';', ' ', '\n']).filter(|s| !s.trim().is_empty()).collect();
    if ids.is_empty() {
        return Err("la respuesta no dice a qué solicitud se refiere (pregunta «Solicitud»)".into());
    }
    let mut out = Vec::new();
    for id in ids {
        let id = id.trim().to_uppercase();
        let parsed: RequestId = id
            .parse()
            .map_err(|_| format!("«{id}» no es un número de solicitud (se escribe GU-2026-000123)"))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(Targets::These(out))
}

/// Which roles may do each action: the defaults, cells replaced from `[desk.rules]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskRules(BTreeMap<DeskAction, Vec<Role>>);

impl Default for DeskRules {
    fn default() -> DeskRules {
        DeskRules(DeskAction::ALL.into_iter().map(|a| (a, a.default_roles())).collect())
    }
}

impl DeskRules {
    /// The defaults with `[desk.rules]` applied (`release = ["administrador", "coordinador"]`);
    /// every key and role that is not one is a problem.
    pub fn with_overrides(overrides: &BTreeMap<String, Vec<String>>) -> Result<DeskRules, Vec<String>> {
        let mut rules = DeskRules::default();
        let mut problems = Vec::new();
        for (key, roles) in overrides {
            let Some(action) = DeskAction::ALL.into_iter().find(|a| a.key() == key) else {
                let keys: Vec<&str> = DeskAction::ALL.iter().map(|a| a.key()).collect();
                problems.push(format!("«{key}» is not an action (one of: {})", keys.join(", ")));
                continue;
            };
            let parsed: Result<Vec<Role>, String> = roles.iter().map(|r| r.parse()).collect();
            match parsed {
                Ok(parsed) => {
                    rules.0.insert(action, parsed);
                }
                Err(e) => problems.push(format!("{key}: {e}")),
            }
        }
        if problems.is_empty() { Ok(rules) } else { Err(problems) }
    }

    pub fn roles(&self, action: DeskAction) -> &[Role] {
        self.0.get(&action).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The matrix row that lets `email` do `action` on a request of `department` today, or why none
/// does (in Spanish, for the answer).
pub fn grant<'m>(
    matrix: &'m Matrix,
    rules: &DeskRules,
    action: DeskAction,
    email: &str,
    department: &str,
    today: Date,
) -> Result<&'m Authorizer, String> {
    let roles = rules.roles(action);
    if roles.is_empty() {
        return Err(format!("nadie puede «{action}» desde el formulario en esta entidad"));
    }
    let entries = matrix.entries_for(email);
    let who = roles.iter().map(|r| r.label()).collect::<Vec<_>>().join(" o ");
    if entries.is_empty() {
        return Err(format!(
            "{email} no está en la matriz de autorizadores; «{action}» lo hace quien tenga el rol de {who}"
        ));
    }
    let department = fold(department);
    let mut why = None;
    for entry in entries.iter().filter(|e| roles.contains(&e.role)) {
        match entry.miss(today, &department) {
            None => return Ok(entry),
            Some(Miss::NotYet(from)) => {
                why = Some(format!("su autorización en la matriz rige desde el {from}"))
            }
            Some(Miss::Expired(until)) => {
                why = Some(format!("su autorización en la matriz venció el {until}"))
            }
            Some(Miss::OutOfDepartments) => {
                why = Some(format!(
                    "su autorización en la matriz no cubre la dependencia de la solicitud ({})",
                    entry.departments_for_humans()
                ))
            }
        }
    }
    Err(why.unwrap_or_else(|| format!("«{action}» lo hace quien tenga en la matriz el rol de {who}")))
}

/// Placeholders of `[desk] prefill_url`, as typed into the form's fields when the link was made
/// (Google writes them percent-encoded).
const PLACEHOLDERS: [&str; 3] = ["solicitud", "accion", "paso"];

/// A pre-filled link to the desk form: `prefill_url` with its placeholders replaced.
pub fn link(prefill_url: &str, id: RequestId, action: DeskAction, step: Option<&str>) -> String {
    let step = step.and_then(step_label).unwrap_or_default();
    let values = [id.to_string(), action.label().to_string(), step];
    let pairs: Vec<(&str, &str)> = PLACEHOLDERS.into_iter().zip(values.iter().map(String::as_str)).collect();
    fill(prefill_url, &pairs)
}

/// A Google Form's pre-filled link with each `{name}` (as typed, or percent-encoded as Google
/// writes it) replaced by its value, encoded.
pub fn fill(prefill_url: &str, values: &[(&str, &str)]) -> String {
    let mut out = prefill_url.to_string();
    for (name, value) in values {
        let value = encode(value);
        for placeholder in [format!("{{{name}}}"), format!("%7B{name}%7D"), format!("%7b{name}%7d")] {
            out = out.replace(&placeholder, &value);
        }
    }
    out
}

/// What is wrong with the desk's `prefill_url` (empty when nothing is).
pub fn prefill_problems(prefill_url: &str) -> Vec<String> {
    link_problems(prefill_url, &PLACEHOLDERS)
}

/// What is wrong with a pre-filled link that must hold the placeholders `names`.
pub fn link_problems(prefill_url: &str, names: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if !prefill_url.starts_with("https://") {
        problems.push("is not an https:// address (Google's «Obtener vínculo prellenado»)".to_string());
    }
    let lower = prefill_url.to_lowercase();
    for name in names {
        if !lower.contains(&format!("{{{name}}}")) && !lower.contains(&format!("%7b{name}%7d")) {
            problems
                .push(format!("has no {{{name}}}: type it in that question's field when making the link"));
        }
    }
    problems
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<String> {
        ["Marca temporal", "Dirección de correo electrónico", "Solicitud", "Acción", "Paso", "Observaciones"]
            .map(String::from)
            .to_vec()
    }

    fn read(columns: &DeskColumns, cells: [&str; 6]) -> DeskRow {
        columns.read(2, &cells.map(String::from))
    }

    #[test]
    fn a_response_reads_into_its_action_requests_and_step() {
        let columns = DeskColumns::from_header(&header()).unwrap();
        let r = read(
            &columns,
            [
                "2026-11-30 09:12:00",
                "Mesa@UPME.gov.co",
                "gu-2026-000012, GU-2026-000013;GU-2026-000012",
                "confirmar paso de la ELIMINACION",
                "Copia de seguridad del correo",
                "En el NAS, carpeta 2026",
            ],
        );
        assert_eq!(r.by.as_deref(), Some("mesa@upme.gov.co"));
        assert_eq!(
            r.targets,
            Ok(Targets::These(vec!["GU-2026-000012".parse().unwrap(), "GU-2026-000013".parse().unwrap()]))
        );
        assert_eq!(r.action, Some(DeskAction::Confirm));
        assert_eq!(r.step, Some("correo"));
        assert!(r.submitted_at.is_some());
        let bad = read(&columns, ["", "x", "GU-26-1", "Borrar todo", "disco", ""]);
        assert_eq!(bad.by, None);
        assert!(bad.targets.unwrap_err().contains("GU-26-1"));
        assert_eq!(bad.action, None);
        assert_eq!(bad.step, None);
        assert_eq!(
            read(&columns, ["", "", "Todas", "Liberar inactivaciones retenidas", "", ""]).targets,
            Ok(Targets::AllHeld)
        );
        assert!(read(&columns, ["", "", " ", "Reintentar", "", ""]).targets.is_err());
    }

    #[test]
    fn a_header_without_the_questions_names_them() {
        let missing = DeskColumns::from_header(&["Marca temporal".to_string(), "Acción".into()]).unwrap_err();
        assert_eq!(missing, vec!["Dirección de correo electrónico", "Solicitud"]);
    }

    #[test]
    fn every_step_and_action_reads_back_from_its_option() {
        for (key, _) in DELETION_CHECKLIST {
            assert_eq!(parse_step(&step_label(key).unwrap()), Some(key));
            assert_eq!(parse_step(key), Some(key));
        }
        for action in DeskAction::ALL {
            assert_eq!(DeskAction::parse(action.label()), Some(action));
        }
    }

    #[test]
    fn links_carry_the_request_action_and_step_encoded() {
        let url = "https://docs.google.com/forms/d/e/X/viewform?usp=pp_url&entry.1=%7Bsolicitud%7D&entry.2={accion}&entry.3=%7Bpaso%7D";
        assert!(prefill_problems(url).is_empty());
        let id: RequestId = "GU-2026-000007".parse().unwrap();
        let link = link(url, id, DeskAction::Confirm, Some("equipo-dominio"));
        assert_eq!(
            link,
            "https://docs.google.com/forms/d/e/X/viewform?usp=pp_url&entry.1=GU-2026-000007\
             &entry.2=Confirmar%20paso%20de%20la%20eliminaci%C3%B3n&entry.3=Equipo%20retirado%20del%20dominio"
        );
        let problems = prefill_problems("http://example.org/?a={solicitud}");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn rules_take_overrides_and_name_what_is_not_a_rule() {
        let mut o = BTreeMap::new();
        o.insert("release".to_string(), vec!["coordinador".to_string()]);
        let rules = DeskRules::with_overrides(&o).unwrap();
        assert_eq!(rules.roles(DeskAction::Release), &[Role::Coordinador]);
        assert_eq!(rules.roles(DeskAction::Confirm), &[Role::MesaServicio]);
        o.insert("borrar".to_string(), vec![]);
        o.insert("retry".to_string(), vec!["jefe".to_string()]);
        assert_eq!(DeskRules::with_overrides(&o).unwrap_err().len(), 2);
    }

    #[test]
    fn only_a_valid_row_of_a_role_that_may_grants() {
        let csv = "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta\n\
                   mesa@e.co,Mesa,mesa_servicio,*,2024-01-01,\n\
                   jefe@e.co,Jefe,jefe_area,*,2024-01-01,\n\
                   admin@e.co,Admin,administrador,*,2024-01-01,2026-06-30\n";
        let matrix = Matrix::parse(csv.as_bytes()).unwrap();
        let rules = DeskRules::default();
        let today = jiff::civil::date(2026, 11, 30);
        assert_eq!(grant(&matrix, &rules, DeskAction::Done, "mesa@e.co", "X", today).unwrap().name, "Mesa");
        assert!(
            grant(&matrix, &rules, DeskAction::Done, "otro@e.co", "X", today)
                .unwrap_err()
                .contains("no está")
        );
        assert!(
            grant(&matrix, &rules, DeskAction::Done, "jefe@e.co", "X", today)
                .unwrap_err()
                .contains("mesa de servicio")
        );
        assert!(
            grant(&matrix, &rules, DeskAction::Release, "admin@e.co", "X", today)
                .unwrap_err()
                .contains("venció")
        );
        assert!(grant(&matrix, &rules, DeskAction::Release, "mesa@e.co", "X", today).is_err());
    }
}
