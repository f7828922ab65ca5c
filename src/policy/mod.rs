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

mod matrix;
mod rules;

pub use self::matrix::*;
pub use self::rules::*;

use std::fmt;

use jiff::civil::Date;

use crate::intake::fold;
use crate::request::{HolderType, Kind, Submission};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `grant` says which grant allowed it, for the history: `talento_humano (Talento Humano, *)`
    /// or `el titular de la cuenta`.
    Allow { grant: String },
    /// Why not; its `Display` is the Spanish the requester reads, saying what to do.
    Deny { denial: Denial },
}

/// Why a requester may not ask for something: typed, so that callers and tests branch on what
/// happened; `Display` renders it, once, in the Spanish the requester reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Not about user accounts: it belongs to the IT service-request procedure.
    OutOfScope { kind: Kind },
    /// The address is not one of the configured requester domains.
    OutsideDomains { requester: String, domains: Vec<String> },
    /// The kind does not apply to this holder type; `applies` lists those it applies to.
    NotApplicable { kind: Kind, holder: HolderType, applies: Vec<HolderType> },
    /// The requester's own account: nobody authorizes what is done to it (but a reset).
    OwnAccount { requester: String, kind: Kind },
    /// The right role, but not valid today or not for this department: what to fix.
    NearMisses { department: String, misses: Vec<NearMiss> },
    /// No grant at all: the roles the requester holds, and who may ask instead.
    NotGranted { requester: String, kind: Kind, holder: HolderType, roles: Vec<Role>, grants: Vec<Grant> },
}

/// A matrix row of the right role that does not cover the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    pub role: Role,
    /// Its departments as written in the matrix.
    pub departments: String,
    pub miss: Miss,
}

impl Denial {
    /// Whether saying it would tell a requester with no standing over the account something
    /// the directory holds about it: its dependency (outside the requester's), or its holder
    /// type (to someone who holds no role at all).
    fn tells_of_the_account(&self) -> bool {
        match self {
            Denial::NotGranted { roles, .. } => roles.is_empty(),
            Denial::NearMisses { misses, .. } => misses.iter().any(|m| m.miss == Miss::OutOfDepartments),
            _ => false,
        }
    }
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

fn deny(denial: Denial) -> Decision {
    Decision::Deny { denial }
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
        if q.kind == Kind::OutOfScope {
            return deny(Denial::OutOfScope { kind: q.kind });
        }
        if !self.requester_in_domain(&requester) {
            let domains = self
                .requester_domains
                .iter()
                .map(|d| d.trim().trim_start_matches('@').to_lowercase())
                .collect();
            return deny(Denial::OutsideDomains { requester, domains });
        }
        let grants = self.rules.grants(q.kind, q.holder);
        if grants.is_empty() {
            let applies = HOLDERS.into_iter().filter(|h| self.rules.applies(q.kind, *h)).collect();
            return deny(Denial::NotApplicable { kind: q.kind, holder: q.holder, applies });
        }

        let same = |a: &str| {
            let a = a.trim();
            !a.is_empty() && a.to_lowercase() == requester
        };
        // Segregation of duties: nobody authorizes what is done to their own account, but for
        // a new password. The account's `mail` comes from the directory, not from the form.
        if q.kind != Kind::PasswordReset && q.target.is_some_and(|t| same(t.mail)) {
            return deny(Denial::OwnAccount { requester, kind: q.kind });
        }
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
        let mut misses: Vec<NearMiss> = Vec::new();
        for e in entries.iter().filter(|e| grants.contains(&Grant::Role(e.role))) {
            match e.miss(today, &department) {
                None => return Decision::Allow { grant: e.grant_text() },
                Some(miss) => {
                    let near = NearMiss { role: e.role, departments: e.departments_for_humans(), miss };
                    if !misses.contains(&near) {
                        misses.push(near);
                    }
                }
            }
        }
        // Near misses first: they tell the person exactly what to fix.
        if !misses.is_empty() {
            return deny(Denial::NearMisses { department: q.department.trim().to_string(), misses });
        }
        let mut roles: Vec<Role> = Vec::new();
        for e in entries {
            if !roles.contains(&e.role) {
                roles.push(e.role);
            }
        }
        deny(Denial::NotGranted { requester, kind: q.kind, holder: q.holder, roles, grants: grants.to_vec() })
    }
}

const FIX_MATRIX: &str = "pida a la mesa de servicio que actualice la matriz de autorizadores";

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::OutOfScope { kind } => write!(
                f,
                "«{}» no es una solicitud de gestión de cuentas de usuario: regístrela ante la mesa de servicio como solicitud de servicio de TI.",
                kind.label()
            ),
            Denial::OutsideDomains { domains, .. } if domains.is_empty() => f.write_str(
                "No hay dominios de correo autorizados para solicitar: comuníquese con la mesa de servicio.",
            ),
            Denial::OutsideDomains { requester, domains } => {
                let at: Vec<String> = domains.iter().map(|d| format!("@{d}")).collect();
                write!(
                    f,
                    "La dirección {requester} no es un correo institucional ({}). Envíe la solicitud con su cuenta institucional.",
                    join(&at, "o")
                )
            }
            Denial::NotApplicable { kind, applies, .. } if applies.is_empty() => write!(
                f,
                "«{}» no está habilitada en el procedimiento de gestión de usuarios: comuníquese con la mesa de servicio.",
                kind.label()
            ),
            Denial::NotApplicable { kind, holder, applies } => {
                let applies: Vec<String> = applies.iter().map(|h| holder_plural(*h).to_string()).collect();
                write!(
                    f,
                    "«{}» solo aplica a {}, no a {}. Revise el tipo de solicitud y el tipo de vinculación y envíe el formulario de nuevo.",
                    kind.label(),
                    join(&applies, "y"),
                    holder_plural(*holder)
                )
            }
            Denial::OwnAccount { requester, kind } => write!(
                f,
                "La cuenta de la solicitud es la suya ({requester}): nadie autoriza «{}» sobre su propia cuenta. \
                 Pídala a quien la autoriza según la matriz de autorizadores (por ejemplo, su jefe o Talento Humano).",
                kind.label()
            ),
            Denial::NearMisses { department, misses } => {
                let mut sentences: Vec<String> = Vec::new();
                for NearMiss { role, departments, miss } in misses {
                    let role = role.label();
                    let s = match miss {
                        Miss::Expired(until) => {
                            format!(
                                "Su autorización como {role} no está vigente (vigente hasta {until}): {FIX_MATRIX}."
                            )
                        }
                        Miss::NotYet(from) => format!(
                            "Su autorización como {role} aún no está vigente (vigente desde {from}): podrá solicitarlo desde esa fecha, o {FIX_MATRIX}."
                        ),
                        Miss::OutOfDepartments if department.is_empty() => format!(
                            "La solicitud no indica la dependencia, y como {role} solo puede solicitar para: {departments}. Indique la dependencia en el formulario y envíelo de nuevo."
                        ),
                        Miss::OutOfDepartments => format!(
                            "Como {role} solo puede solicitar para: {departments}. Si «{department}» es la dependencia correcta, {FIX_MATRIX}."
                        ),
                    };
                    if !sentences.contains(&s) {
                        sentences.push(s);
                    }
                }
                f.write_str(&sentences.join(" "))
            }
            Denial::NotGranted { requester, kind, holder, roles, grants } => {
                not_granted(f, requester, *kind, *holder, roles, grants)
            }
        }
    }
}

/// No grant: the roles held, or the grants missing, and who may ask instead.
fn not_granted(
    f: &mut fmt::Formatter<'_>,
    requester: &str,
    kind: Kind,
    holder: HolderType,
    roles: &[Role],
    grants: &[Grant],
) -> fmt::Result {
    let label = kind.label();
    let holder = holder_plural(holder);
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
    if !roles.is_empty() {
        let roles: Vec<String> = roles.iter().map(|r| r.label().to_string()).collect();
        return write!(f, "Como {} no puede solicitar «{label}» para {holder}. {who_can}", join(&roles, "o"));
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
        ([], true) => format!("La dirección {requester} no figura en la matriz de autorizadores."),
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
    write!(f, "{first} {who_can} Si usted debería poder solicitarlo, {FIX_MATRIX}.")
}

/// Why a request is not authorized, typed: refused (the requester is told why), or asked
/// about (the form contradicts the directory, or names what does not exist). `Display` is the
/// Spanish the requester reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The matrix and the rules say no.
    Denied(Denial),
    /// The account named is not in the directory, or is one the requester may not act on: the
    /// two are answered alike, so that nobody learns from the form which accounts exist.
    NoSuchAccount { account: String },
    /// The directory does not say what kind of holder the account is.
    UnknownHolder { account: String },
    /// The form says another holder type than the directory.
    HolderMismatch { account: String, directory: HolderType, form: HolderType },
    /// The form says another dependency than the directory.
    DepartmentMismatch { account: String, directory: String, form: String },
}

impl Refusal {
    /// Whether the requester can fix it in the form (else it is refused).
    pub fn asks_requester(&self) -> bool {
        matches!(
            self,
            Refusal::NoSuchAccount { .. }
                | Refusal::HolderMismatch { .. }
                | Refusal::DepartmentMismatch { .. }
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Denied(denial) => denial.fmt(f),
            Refusal::NoSuchAccount { account } => write!(
                f,
                "El usuario de red «{account}» no existe en el directorio o no es de una cuenta sobre la que usted pueda \
                 hacer esta solicitud; escriba el usuario tal como lo usa para iniciar sesión (por ejemplo juan.perez)"
            ),
            Refusal::UnknownHolder { account } => write!(
                f,
                "No se puede saber en el directorio si la cuenta «{account}» es de un funcionario, un contratista o institucional; \
                 la mesa de servicio la revisa directamente"
            ),
            Refusal::HolderMismatch { account, directory, form } => write!(
                f,
                "Según el directorio, la cuenta «{account}» es de tipo «{}», no «{}»: corrija el tipo de vinculación en el formulario",
                directory.label(),
                form.label()
            ),
            Refusal::DepartmentMismatch { account, directory, form } => write!(
                f,
                "Según el directorio, la cuenta «{account}» es de la dependencia «{directory}», no «{form}»: corrija la dependencia en el formulario"
            ),
        }
    }
}

/// What the directory says of an account a request is about: read by the engine, judged here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub sam: String,
    /// By the OU it lives in, else its `employeeType`; `None` if neither says.
    pub holder: Option<HolderType>,
    pub department: String,
    pub mail: String,
    pub manager_mail: String,
}

/// The directory's facts for one request: the account it names (`None`: not in the
/// directory) and the account a returning person had (same document number), if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub named: Option<AccountFacts>,
    pub returning: Option<AccountFacts>,
}

/// May `s.requester` ask for `s` (of `kind`), the accounts being as `facts` say? Pure: the
/// matrix's answer for each account the request touches, as the directory holds it, and the
/// form checked against the directory. Which grants allowed it, for the history.
pub fn authorize(
    policy: &Policy,
    matrix: &Matrix,
    s: &Submission,
    kind: Kind,
    facts: &Facts,
    today: Date,
) -> Result<String, Refusal> {
    let decide = |holder: HolderType, department: &str, target: Option<&AccountFacts>| {
        let query = Query {
            requester: &s.requester,
            kind,
            holder,
            department,
            target: target.map(|t| TargetAccount {
                mail: &t.mail,
                manager_mail: (!t.manager_mail.is_empty()).then_some(t.manager_mail.as_str()),
            }),
        };
        match policy.decide(&query, matrix, today) {
            Decision::Allow { grant } => Ok(grant),
            Decision::Deny { denial } => Err(Refusal::Denied(denial)),
        }
    };
    let holder_of = |account: &AccountFacts| {
        account.holder.ok_or_else(|| Refusal::UnknownHolder { account: account.sam.clone() })
    };
    let mut grants: Vec<String> = Vec::new();
    if kind.needs_existing_account() {
        let unknown = || Refusal::NoSuchAccount { account: s.account.clone() };
        let account = facts.named.as_ref().ok_or_else(unknown)?;
        // An account the requester may not act on is answered as one that does not exist:
        // nothing of it (its existence, dependency or holder type) is told.
        let holder = holder_of(account)?;
        match decide(holder, &account.department, Some(account)) {
            Err(Refusal::Denied(d)) if d.tells_of_the_account() => return Err(unknown()),
            decided => grants.push(decided?),
        }
        declared_matches(s, kind, holder, account)?;
        // Moving someone to another dependency needs a grant there too.
        let moves = matches!(kind, Kind::Transfer | Kind::Modify)
            && !s.department.is_empty()
            && fold(&s.department) != fold(&account.department);
        if moves {
            grants.push(decide(holder, &s.department, None)?);
        }
    }
    if matches!(kind, Kind::Create | Kind::Assignment) {
        let holder = if kind == Kind::Assignment {
            HolderType::Contractor
        } else {
            s.holder_type.unwrap_or(HolderType::Employee)
        };
        grants.push(decide(holder, &s.department, None)?);
        // A returning person gets their old account back: the requester must be allowed for
        // it as it is, too (and it is nobody's own account to approve).
        if let Some(old) = &facts.returning {
            grants.push(decide(holder_of(old)?, &old.department, Some(old))?);
        }
    }
    grants.dedup();
    Ok(grants.join("; "))
}

/// The form's holder type and dependency, where it gives them, must be the account's: a
/// contradiction is asked about, never a reason to allow. (A transfer or a modification gives
/// the dependency the account goes to.)
fn declared_matches(
    s: &Submission,
    kind: Kind,
    holder: HolderType,
    account: &AccountFacts,
) -> Result<(), Refusal> {
    let sam = &account.sam;
    if let Some(declared) = s.holder_type
        && declared != holder
    {
        return Err(Refusal::HolderMismatch { account: sam.clone(), directory: holder, form: declared });
    }
    let names_new_department = matches!(kind, Kind::Transfer | Kind::Modify);
    if !names_new_department
        && !s.department.is_empty()
        && !account.department.is_empty()
        && fold(&s.department) != fold(&account.department)
    {
        return Err(Refusal::DepartmentMismatch {
            account: sam.clone(),
            directory: account.department.clone(),
            form: s.department.clone(),
        });
    }
    Ok(())
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
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use jiff::civil::date;
    use serde::Deserialize;

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
            Decision::Deny { denial } => denial.to_string(),
            Decision::Allow { grant } => panic!("expected a denial, got Allow by {grant}"),
        }
    }

    fn grant(d: Decision) -> String {
        match d {
            Decision::Allow { grant } => grant,
            Decision::Deny { denial } => panic!("expected an allow, got Deny: {denial}"),
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
            (Create,           E, "A  -  -  -  -  -  -    -   -"),
            (Create,           C, "-  A  A  A  A  -  -    -   -"),
            (Create,           I, "-  A  A  -  A  -  -    -   -"),
            (Modify,           E, "A  -  -  -  -  -  -    -   -"),
            (Modify,           C, "-  A  A  A  A  -  -    -   -"),
            (Modify,           I, "-  A  A  -  A  -  -    -   -"),
            (Disable,          E, "A  -  -  -  -  -  -    -   -"),
            (Disable,          C, "-  A  A  A  A  -  -    -   -"),
            (Disable,          I, "-  A  A  -  A  -  -    -   -"),
            (Enable,           E, "A  -  -  -  -  -  -    -   -"),
            (Enable,           C, "-  A  A  A  A  -  -    -   -"),
            (Enable,           I, "-  A  A  -  A  -  -    -   -"),
            (Delete,           E, "A  -  -  -  -  -  -    -   -"),
            (Delete,           C, "-  A  A  A  A  -  -    -   -"),
            (Delete,           I, "-  A  A  -  A  -  -    -   -"),
            (Leave,            E, "A  -  -  -  -  -  -    -   -"),
            (Leave,            C, "-  -  -  -  -  -  -    -   -"),
            (Leave,            I, "-  -  -  -  -  -  -    -   -"),
            (Transfer,         E, "A  -  -  -  -  -  -    -   -"),
            (Transfer,         C, "-  -  -  -  -  -  -    -   -"),
            (Transfer,         I, "-  -  -  -  -  -  -    -   -"),
            (Assignment,       E, "-  -  -  -  -  -  -    -   -"),
            (Assignment,       C, "-  A  A  A  A  -  -    -   -"),
            (Assignment,       I, "-  -  -  -  -  -  -    -   -"),
            (Suspension,       E, "-  -  -  -  -  -  -    -   -"),
            (Suspension,       C, "-  A  A  A  A  -  -    -   -"),
            (Suspension,       I, "-  -  -  -  -  -  -    -   -"),
            (EarlyTermination, E, "-  -  -  -  -  -  -    -   -"),
            (EarlyTermination, C, "-  A  A  A  A  -  -    -   -"),
            (EarlyTermination, I, "-  -  -  -  -  -  -    -   -"),
            (PasswordReset,    E, "A  -  -  -  -  -  A    A   -"),
            (PasswordReset,    C, "-  A  A  A  A  -  A    A   -"),
            (PasswordReset,    I, "-  A  A  -  A  -  A    -   -"),
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
                if let Decision::Deny { denial } = &d {
                    let reason = denial.to_string();
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
        // Institutional: none of her roles is in that cell (the service desk authorizes nothing
        // by default); the reason says who may ask instead.
        let r = reason(d(Kind::Create, HolderType::Institutional));
        assert!(r.contains("no puede solicitar «Creación de cuenta» para cuentas institucionales"), "{r}");
        assert!(r.contains("coordinador"), "{r}");
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
        let MatrixError::Invalid { problems, .. } = &err else { panic!("{err}") };
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
        let MatrixError::Invalid { problems, .. } = Matrix::parse(bytes.as_slice()).unwrap_err() else {
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
