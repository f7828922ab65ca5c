//! The rules table (DESIGN §5): for each kind and holder type, which roles (or the account's
//! owner, or its manager) may ask; the procedure's table by default, cells overridden from
//! `[authorizers.rules]`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::intake::fold;
use crate::request::{HolderType, Kind};

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
    /// The administrators of cuentas: by default no request kind, only the service desk form's
    /// release and retry (see [`crate::desk`]).
    Administrador,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::TalentoHumano,
        Role::JefeArea,
        Role::Coordinador,
        Role::Supervisor,
        Role::Delegado,
        Role::MesaServicio,
        Role::Administrador,
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
            Role::Administrador => "administrador",
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
            Role::Administrador => "administrador de cuentas",
        }
    }

    /// Who that is, for "la pueden solicitar: …".
    pub(super) fn who(self) -> &'static str {
        match self {
            Role::TalentoHumano => "el GIT de Talento Humano",
            Role::JefeArea => "el jefe de área",
            Role::Coordinador => "el coordinador",
            Role::Supervisor => "el supervisor del contrato",
            Role::Delegado => "un delegado",
            Role::MesaServicio => "la mesa de servicio",
            Role::Administrador => "un administrador de cuentas",
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

    pub(super) fn who(self) -> &'static str {
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

pub(super) const HOLDERS: [HolderType; 3] =
    [HolderType::Employee, HolderType::Contractor, HolderType::Institutional];

/// "para funcionarios": the holder type in the plural, as the deny reasons use it.
pub(super) fn holder_plural(holder: HolderType) -> &'static str {
    match holder {
        HolderType::Employee => "funcionarios",
        HolderType::Contractor => "contratistas",
        HolderType::Institutional => "cuentas institucionales o genéricas",
    }
}

/// The rules table: for each (kind, holder type), who may ask. A cell that is absent or empty
/// does not apply, and is denied to everyone, `mesa_servicio` included.
///
/// `Rules::default()` is the procedure's table (DESIGN §5); `mesa_servicio` is in no cell
/// unless the configuration puts it there. A config overrides single cells with a table of
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
/// An override replaces the whole cell; cells not named keep their default. Deserializing `Rules` applies the overrides to
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
    /// The procedure's table (DESIGN §5) and nothing more: the service desk (`mesa_servicio`)
    /// registers and carries requests out, and authorizes only what an entity grants it in
    /// `[authorizers.rules]` (segregation of duties).
    fn default() -> Rules {
        use Grant::{Manager, Self_};
        use HolderType::{Contractor, Employee, Institutional};
        const TH: Grant = Grant::Role(Role::TalentoHumano);
        const JA: Grant = Grant::Role(Role::JefeArea);
        const CO: Grant = Grant::Role(Role::Coordinador);
        const SU: Grant = Grant::Role(Role::Supervisor);
        const DE: Grant = Grant::Role(Role::Delegado);

        let mut rules = Rules::empty();
        for kind in [Kind::Create, Kind::Modify, Kind::Disable, Kind::Enable, Kind::Delete] {
            rules.set(kind, Employee, vec![TH]);
            rules.set(kind, Contractor, vec![SU, CO, JA, DE]);
            rules.set(kind, Institutional, vec![CO, JA, DE]);
        }
        // HR notices exist only for employees; contractors' equivalents are the contract notices.
        for kind in [Kind::Leave, Kind::Transfer] {
            rules.set(kind, Employee, vec![TH]);
        }
        for kind in [Kind::Assignment, Kind::Suspension, Kind::EarlyTermination] {
            rules.set(kind, Contractor, vec![SU, CO, JA, DE]);
        }
        // Self and manager first: they are the common case and their grant reads best.
        rules.set(Kind::PasswordReset, Employee, vec![Self_, Manager, TH]);
        rules.set(Kind::PasswordReset, Contractor, vec![Self_, Manager, SU, CO, JA, DE]);
        // A generic account has an owner but no "jefe inmediato" in the procedure's sense.
        rules.set(Kind::PasswordReset, Institutional, vec![Self_, CO, JA, DE]);
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
