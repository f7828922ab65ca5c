//! Directory plans (pure): from a request and what the directory holds, the list of operations
//! that brings the directory to what the request wants. The plan is also the dry-run output.

use std::collections::HashMap;

use jiff::civil::Date;

use super::naming::{self, Pattern};
use super::snapshot::{Account, Snapshot};
use crate::config::{DirectoryConfig, LeaveAction, OnsiteReset, dn_within};
use crate::intake::fold;
use crate::request::{HolderType, Kind, Phase, Request};

pub use super::ops::{AttributeChange, DirectoryOp, Plan};

/// Why a request has no plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPlan {
    /// The requester must fix or complete something (Spanish, for them).
    NeedsInfo(String),
    /// The account may not be touched (protected, privileged, outside the managed OUs).
    Refused(String),
    /// Authorized, but a person does it (why, and what they do; Spanish).
    ByHand(String),
    /// Authorized, but a person must first change the directory (what; Spanish); then the
    /// request is decided again against what the directory holds by then.
    DirectoryFirst(String),
}

impl Plan {
    /// A plan about an existing account, with no operations yet; `notice` tells its holder, at
    /// the mailbox and at the personal address the directory holds (as it is before the plan).
    fn about(account: &Account, notice: bool) -> Plan {
        let notice = notice && !account.mail.is_empty();
        let personal = account.personal_email.trim();
        Plan {
            account: account.sam.clone(),
            notice_to: notice.then(|| account.mail.clone()),
            notice_personal: (notice
                && !personal.is_empty()
                && !personal.eq_ignore_ascii_case(&account.mail))
            .then(|| personal.to_string()),
            ..Plan::default()
        }
    }
}

impl NoPlan {
    /// The reason, for a person.
    pub fn reason(&self) -> String {
        match self {
            NoPlan::NeedsInfo(r) | NoPlan::Refused(r) | NoPlan::ByHand(r) | NoPlan::DirectoryFirst(r) => {
                r.clone()
            }
        }
    }
}

/// Naming patterns of accounts without surnames (institutional ones).
const SINGLE_NAME_PATTERNS: [&str; 3] = ["{g1}", "{g1}.{g2}", "{g1}{n}"];

/// Naming and placement rules, compiled once from `[directory]`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub config: DirectoryConfig,
    patterns: Vec<Pattern>,
    /// For accounts without surnames (institutional ones).
    single_name_patterns: Vec<Pattern>,
    /// Folded dependency → its groups, its OU; folded group name → group: folded once here,
    /// not for every request.
    department_groups: HashMap<String, Vec<String>>,
    department_ous: HashMap<String, String>,
    allowed_groups: HashMap<String, String>,
}

impl Layout {
    /// The layout of `[directory]`, with its naming patterns as parsed at load.
    pub fn from_config(config: &crate::config::Config) -> Layout {
        Layout::new(config.directory.clone(), config.naming.clone())
    }

    /// `naming` are `[directory] naming_patterns`, parsed.
    pub fn new(config: DirectoryConfig, naming: Vec<Pattern>) -> Layout {
        let patterns = naming;
        // Fixed patterns, checked by a test: none is dropped.
        let single_name_patterns =
            SINGLE_NAME_PATTERNS.iter().filter_map(|p| Pattern::parse(p).ok()).collect();
        let department_groups = config.department_groups.iter().map(|(d, g)| (fold(d), g.clone())).collect();
        let department_ous = config.department_ous.iter().map(|(d, ou)| (fold(d), ou.clone())).collect();
        let allowed_groups = config.allowed_groups.iter().map(|g| (fold(g), g.clone())).collect();
        Layout { config, patterns, single_name_patterns, department_groups, department_ous, allowed_groups }
    }

    /// The naming patterns for a person (`single_name`: no surnames, e.g. an institutional account).
    pub fn patterns(&self, single_name: bool) -> &[Pattern] {
        if single_name { &self.single_name_patterns } else { &self.patterns }
    }

    fn ou_for(&self, holder: HolderType, department: &str) -> &str {
        if holder == HolderType::Employee
            && let Some(ou) = self.department_ous.get(&fold(department))
        {
            return ou;
        }
        match holder {
            HolderType::Employee => &self.config.ous.employee,
            HolderType::Contractor => &self.config.ous.contractor,
            HolderType::Institutional => &self.config.ous.institutional,
        }
    }

    /// Groups for a dependency plus the requested ones ([`Layout::requested_groups`]).
    fn groups_for(&self, department: &str, requested: &[String]) -> Result<Vec<String>, NoPlan> {
        let mut groups: Vec<String> =
            self.department_groups.get(&fold(department)).cloned().unwrap_or_default();
        groups.extend(self.requested_groups(department, requested)?);
        let mut seen = Vec::new();
        groups.retain(|g| {
            let key = g.to_lowercase();
            let new = !seen.contains(&key);
            seen.push(key);
            new
        });
        Ok(groups)
    }

    /// The groups a request asks for an account of `department`: each must be one this
    /// process manages, and the dependency's own (`department_groups`) or open to every
    /// dependency (`open_groups`): a request gives access within its own dependency only.
    fn requested_groups(&self, department: &str, requested: &[String]) -> Result<Vec<String>, NoPlan> {
        let own = self.department_groups.get(&fold(department)).into_iter().flatten();
        let requestable: Vec<&String> = self
            .config
            .open_groups
            .iter()
            .chain(own)
            .filter(|g| self.allowed_groups.contains_key(&fold(g)))
            .collect();
        let mut groups = Vec::new();
        for wanted in requested {
            match requestable.iter().find(|g| fold(g) == fold(wanted)) {
                Some(g) => groups.push((*g).clone()),
                None if requestable.is_empty() => {
                    return Err(NoPlan::NeedsInfo(format!(
                        "El acceso o grupo «{wanted}» no se puede asignar por este formulario; pídalo a la mesa de servicio"
                    )));
                }
                None => {
                    return Err(NoPlan::NeedsInfo(format!(
                        "El acceso o grupo «{wanted}» no se puede asignar por este formulario a una cuenta de esta \
                         dependencia; elija uno de: {}",
                        requestable.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
            }
        }
        Ok(groups)
    }

    /// The holder type of an existing account, as the directory says: by the OU it lives in
    /// (`[directory.ous]`, `[directory.department_ous]`), else by its `employeeType`.
    pub fn holder_of(&self, account: &Account) -> Option<HolderType> {
        let ous = &self.config.ous;
        let parent = super::dn::parent(&account.dn);
        let in_ou = |ou: &str| super::dn::within(parent, ou);
        if in_ou(&ous.contractor) {
            Some(HolderType::Contractor)
        } else if in_ou(&ous.institutional) {
            Some(HolderType::Institutional)
        } else if in_ou(&ous.employee) || self.config.department_ous.values().any(|ou| in_ou(ou)) {
            Some(HolderType::Employee)
        } else {
            crate::intake::parse_holder(&account.employee_type)
        }
    }

    /// Whether the daemon may touch this account at all (DESIGN §6, safety rails).
    pub fn guard(&self, account: &Account) -> Result<(), NoPlan> {
        // AD's administrative groups by SID, whatever their names in the DC's language; the
        // entity's own protected groups by name, direct or nested.
        let in_protected_group = account.group_sids.iter().any(|sid| super::privilege::is_privileged(sid))
            || account
                .groups
                .iter()
                .chain(&account.token_group_names)
                .any(|g| self.config.protected_groups.iter().any(|p| p.eq_ignore_ascii_case(g)));
        let protected = in_protected_group
            || super::privilege::is_privileged(&account.sid)
            || self.config.protected_accounts.iter().any(|p| p.eq_ignore_ascii_case(&account.sam));
        if protected || account.admin_count {
            return Err(NoPlan::Refused(format!(
                "La cuenta «{}» es una cuenta protegida del directorio y no se gestiona por este formulario; \
                 si el cambio es necesario, la mesa de servicio lo hace directamente",
                account.sam
            )));
        }
        if !self.config.managed_ous.iter().any(|ou| dn_within(&account.dn, ou)) {
            return Err(NoPlan::Refused(format!(
                "La cuenta «{}» no está en las unidades organizativas que gestiona este proceso; \
                 la mesa de servicio la revisa directamente",
                account.sam
            )));
        }
        Ok(())
    }
}

/// The plan for `request` against `snapshot`. `taken` says whether another open request
/// has already claimed an account name, `taken_dn` a new account's DN (lower-case).
pub fn plan(
    request: &Request,
    snapshot: &Snapshot,
    layout: &Layout,
    today: Date,
    taken: impl Fn(&str) -> bool,
    taken_dn: impl Fn(&str) -> bool,
) -> Result<Plan, NoPlan> {
    let s = &request.submission;
    let kind = s.kind.ok_or_else(|| NoPlan::NeedsInfo("Falta el tipo de solicitud".into()))?;
    let target = || -> Result<&Account, NoPlan> {
        let account = snapshot.by_sam(&s.account).ok_or_else(|| {
            NoPlan::NeedsInfo(format!(
                "El usuario de red «{}» no existe en el directorio; escriba el usuario tal como lo usa para iniciar sesión (por ejemplo juan.perez)",
                s.account
            ))
        })?;
        layout.guard(account)?;
        Ok(account)
    };
    match kind {
        Kind::Create => {
            let holder =
                s.holder_type.ok_or_else(|| NoPlan::NeedsInfo("Falta el tipo de vinculación".into()))?;
            create(request, holder, snapshot, layout, today, taken, taken_dn)
        }
        Kind::PasswordReset => {
            let account = target()?;
            if s.on_site == Some(true) && layout.config.onsite_reset == OnsiteReset::Manual {
                return Err(NoPlan::ByHand(format!(
                    "la persona está en las instalaciones de la entidad, así que la mesa de servicio habilita en su \
                     puesto el cambio de contraseña de la cuenta «{}», sin enviar contraseñas por correo",
                    account.sam
                )));
            }
            Ok(Plan {
                ops: vec![DirectoryOp::ResetPassword { sam: account.sam.clone() }],
                sends_credentials: true,
                ..Plan::about(account, true)
            })
        }
        Kind::Modify => {
            let account = target()?;
            modify(s, account, layout, snapshot, today)
        }
        Kind::Disable => {
            let account = target()?;
            Ok(Plan { ops: disable(account), ..Plan::about(account, true) })
        }
        Kind::Enable => {
            let account = target()?;
            let mut ops = renewed_expiry(s, account, layout, today)?;
            // Back from the retired OU (a deletion waiting for its backups, which this
            // reactivation cancels): to where its kind of holder lives.
            let retired = layout.config.retired_ou.as_deref().is_some_and(|r| dn_within(&account.dn, r));
            if retired {
                let holder = layout.holder_of(account).ok_or_else(|| {
                    NoPlan::ByHand(format!(
                        "la cuenta «{}» está en la unidad de cuentas retiradas y su tipo de vinculación \
                         (employeeType) no dice a qué unidad devolverla",
                        account.sam
                    ))
                })?;
                let to_ou = layout.ou_for(holder, &account.department).to_string();
                ops.push(DirectoryOp::Move { sam: account.sam.clone(), to_ou });
            }
            if !account.enabled {
                ops.push(DirectoryOp::Enable { sam: account.sam.clone() });
            }
            Ok(Plan { ops, ..Plan::about(account, true) })
        }
        Kind::Transfer => {
            let account = target()?;
            transfer(s, account, layout, snapshot)
        }
        Kind::Leave | Kind::Suspension => {
            let account = target()?;
            leave(request, account, layout, today)
        }
        Kind::EarlyTermination => {
            let account = target()?;
            let date = s.effective_date.unwrap_or(today);
            termination(account, layout, date)
        }
        Kind::Assignment => {
            let previous = target()?;
            if !s.id_number.is_empty() && previous.employee_id == s.id_number {
                return Err(NoPlan::NeedsInfo(format!(
                    "La cuenta «{}» ya es de la persona con el documento {}: la cesión es a otro contratista; \
                     escriba los datos del nuevo contratista",
                    previous.sam, s.id_number
                )));
            }
            let mut plan = create(request, HolderType::Contractor, snapshot, layout, today, taken, taken_dn)?;
            plan.ops.extend(disable(previous));
            let holder = Plan::about(previous, true);
            (plan.notice_to, plan.notice_personal) = (holder.notice_to, holder.notice_personal);
            plan.previous_holder = Some(previous.sam.clone());
            Ok(plan)
        }
        Kind::Delete => deletion(request, snapshot, layout, target),
        // Answered before any plan (`Routed`).
        Kind::OutOfScope => {
            Err(NoPlan::NeedsInfo(format!("«{}» no es una solicitud de gestión de usuarios", s.kind_answer)))
        }
    }
}

/// A modification: the names, dependency, title and manager the form gives, and the groups
/// it adds.
fn modify(
    s: &crate::request::Submission,
    account: &Account,
    layout: &Layout,
    snapshot: &Snapshot,
    today: Date,
) -> Result<Plan, NoPlan> {
    let mut changes = Vec::new();
    changes.extend(difference("givenName", &account.given_name, &s.given_names));
    changes.extend(difference("sn", &account.surname, &s.surnames));
    let mut ops = position_changes(s, account, snapshot, changes)?;
    // The account's dependency as the directory holds it, not as the form claims it.
    add_missing_groups(&mut ops, account, layout.requested_groups(&account.department, &s.groups)?);
    if let Some(end) = s.contract_end {
        // The directory says whose account it is: only a contractor's has a contract to extend.
        if layout.holder_of(account) != Some(HolderType::Contractor) {
            return Err(NoPlan::NeedsInfo(format!(
                "La cuenta «{}» no es de un contratista: la fecha de terminación del contrato no aplica; déjela vacía",
                account.sam
            )));
        }
        let retired = layout.config.retired_ou.as_deref().is_some_and(|r| dn_within(&account.dn, r));
        if retired && !account.enabled {
            // Waiting for its deletion: a modification does not bring it back.
            return Err(NoPlan::NeedsInfo(format!(
                "La cuenta «{}» está inactiva en la unidad de cuentas retiradas, en proceso de eliminación: una \
                 prórroga no la reactiva. Si la persona continúa en la entidad, pida una «Reactivación de cuenta» \
                 con la nueva fecha de terminación del contrato",
                account.sam
            )));
        }
        ops.extend(extension(account, end, today)?);
    }
    Ok(Plan { ops, ..Plan::about(account, true) })
}

/// A contract extension (*prórroga*): the account expires at the end of the new last day; one
/// that had already expired, and was disabled with it, is enabled again. A contract is not
/// shortened this way (an earlier end is an early termination).
fn extension(account: &Account, end: Date, today: Date) -> Result<Vec<DirectoryOp>, NoPlan> {
    if end < today {
        return Err(NoPlan::NeedsInfo(format!(
            "La nueva fecha de terminación del contrato ({end}) ya pasó; revise la fecha de la prórroga"
        )));
    }
    let mut ops = Vec::new();
    match account.expires {
        Some(old) if end < old => {
            return Err(NoPlan::NeedsInfo(format!(
                "La cuenta «{}» vence el {old}, después de la fecha indicada ({end}): una prórroga amplía el contrato; \
                 para terminarlo antes, pida una «Terminación anticipada»",
                account.sam
            )));
        }
        Some(old) if old == end => {}
        _ => ops.push(DirectoryOp::SetExpiry { sam: account.sam.clone(), expires: Some(end) }),
    }
    let expired = account.expires.is_some_and(|old| old < today);
    if expired && !account.enabled {
        ops.push(DirectoryOp::Enable { sam: account.sam.clone() });
    }
    Ok(ops)
}

/// `changes` and the dependency, title and manager the form gives where the account holds
/// others, as one write (none if nothing differs).
fn position_changes(
    s: &crate::request::Submission,
    account: &Account,
    snapshot: &Snapshot,
    mut changes: Vec<AttributeChange>,
) -> Result<Vec<DirectoryOp>, NoPlan> {
    changes.extend(difference("department", &account.department, &s.department));
    changes.extend(difference("title", &account.title, &s.title));
    if !s.manager_email.is_empty() {
        let manager = manager_of(snapshot, &s.manager_email)?;
        changes.extend(difference("manager", &account.manager_dn, &manager.dn));
    }
    Ok(if changes.is_empty() {
        Vec::new()
    } else {
        vec![DirectoryOp::SetAttributes { sam: account.sam.clone(), changes }]
    })
}

/// A leave or a suspension: disabled at its start, enabled at its return (a leave touches
/// nothing with `leave_action = "none"`).
fn leave(request: &Request, account: &Account, layout: &Layout, today: Date) -> Result<Plan, NoPlan> {
    let s = &request.submission;
    let disables = s.kind == Some(Kind::Suspension) || layout.config.leave_action == LeaveAction::Disable;
    let ops = match request.phase {
        _ if !disables => Vec::new(),
        // The directory is the fact: an account moved to the retired OU since (a deletion, a
        // termination) is not enabled by a return, whatever was scheduled.
        Phase::Return if layout.config.retired_ou.as_deref().is_some_and(|r| dn_within(&account.dn, r)) => {
            return Err(NoPlan::Refused(format!(
                "la cuenta «{}» está en la unidad de cuentas retiradas: el regreso no la reactiva",
                account.sam
            )));
        }
        Phase::Return if !account.enabled => vec![DirectoryOp::Enable { sam: account.sam.clone() }],
        Phase::Return => Vec::new(),
        _ => {
            if let Some(back) = s.return_date.filter(|d| *d <= today) {
                return Err(NoPlan::NeedsInfo(format!(
                    "La fecha de regreso ({back}) ya pasó: no hay nada que inactivar; revise las fechas"
                )));
            }
            disable(account)
        }
    };
    Ok(Plan { ops, ..Plan::about(account, true) })
}

/// A disable, unless the account is disabled already.
fn disable(account: &Account) -> Vec<DirectoryOp> {
    if account.enabled { vec![DirectoryOp::Disable { sam: account.sam.clone() }] } else { Vec::new() }
}

/// An early termination on `date`: the account expires at the end of that day (never later
/// than it already did: a termination does not lengthen a contract), leaves every managed
/// group but those kept, is disabled, and goes to the retired OU when there is one.
fn termination(account: &Account, layout: &Layout, date: Date) -> Result<Plan, NoPlan> {
    let sam = account.sam.clone();
    let mut ops = Vec::new();
    if account.expires.is_none_or(|e| e > date) {
        ops.push(DirectoryOp::SetExpiry { sam: sam.clone(), expires: Some(date) });
    }
    let kept = &layout.config.keep_groups_on_termination;
    for group in &account.groups {
        let Some(managed) = layout.allowed_groups.get(&fold(group)) else { continue };
        if !kept.iter().any(|k| k.eq_ignore_ascii_case(group)) {
            ops.push(DirectoryOp::RemoveFromGroup { sam: sam.clone(), group: managed.clone() });
        }
    }
    ops.extend(disable(account));
    if let Some(retired) = &layout.config.retired_ou
        && !dn_within(&account.dn, retired)
    {
        ops.push(DirectoryOp::Move { sam: sam.clone(), to_ou: retired.clone() });
    }
    Ok(Plan { ops, ..Plan::about(account, true) })
}

/// A deletion (DESIGN §6): first disabled and moved to the retired OU; removed only at its
/// second step, once every backup is confirmed, and only if it is still there and disabled.
fn deletion<'a>(
    request: &Request,
    snapshot: &'a Snapshot,
    layout: &Layout,
    target: impl Fn() -> Result<&'a Account, NoPlan>,
) -> Result<Plan, NoPlan> {
    let Some(retired) = layout.config.retired_ou.clone() else {
        return Err(NoPlan::ByHand(
            "no hay unidad organizativa de cuentas retiradas configurada ([directory] retired_ou): la mesa de \
             servicio hace las copias de seguridad y elimina la cuenta a mano, según el procedimiento"
                .into(),
        ));
    };
    if request.phase == Phase::Removal {
        let Some(account) = snapshot.by_sam(&request.submission.account) else {
            // Gone already (deleted by hand): nothing left to do.
            return Ok(Plan { account: request.submission.account.clone(), ..Plan::default() });
        };
        layout.guard(account)?;
        if account.enabled || !dn_within(&account.dn, &retired) {
            return Err(NoPlan::Refused(format!(
                "la cuenta «{}» ya no está inactiva en la unidad de cuentas retiradas (alguien la reactivó o la movió): \
                 no se elimina",
                account.sam
            )));
        }
        let ops = vec![DirectoryOp::Delete { sam: account.sam.clone() }];
        return Ok(Plan { ops, ..Plan::about(account, false) });
    }
    let account = target()?;
    let mut ops = disable(account);
    if !dn_within(&account.dn, &retired) {
        ops.push(DirectoryOp::Move { sam: account.sam.clone(), to_ou: retired });
    }
    Ok(Plan { ops, ..Plan::about(account, true) })
}

/// Whether the form names the account's holder: given names and surnames each the same words
/// as the directory's, whatever the accents, case and order, one list allowed to lack some
/// (a second given name or surname left out), but never empty.
fn same_person(old: &Account, s: &crate::request::Submission) -> bool {
    let words = |text: &str| -> Vec<String> { fold(text).split_whitespace().map(str::to_string).collect() };
    let matches = |ours: &str, theirs: &str| {
        let (a, b) = (words(ours), words(theirs));
        !a.is_empty() && !b.is_empty() && (a.iter().all(|w| b.contains(w)) || b.iter().all(|w| a.contains(w)))
    };
    matches(&old.given_name, &s.given_names) && matches(&old.surname, &s.surnames)
}

/// A transfer: new dependency, title and manager; the old dependency's groups out, the new
/// one's in; the dependency's OU if it has one.
fn transfer(
    s: &crate::request::Submission,
    account: &Account,
    layout: &Layout,
    snapshot: &Snapshot,
) -> Result<Plan, NoPlan> {
    let sam = account.sam.clone();
    let mut ops = position_changes(s, account, snapshot, Vec::new())?;
    let holder = layout.holder_of(account).or(s.holder_type).unwrap_or(HolderType::Employee);
    let to_ou = layout.ou_for(holder, &s.department);
    if !super::dn::equal(super::dn::parent(&account.dn), to_ou) {
        ops.push(DirectoryOp::Move { sam: sam.clone(), to_ou: to_ou.to_string() });
    }
    let new_groups = layout.groups_for(&s.department, &s.groups)?;
    let old_groups = layout.groups_for(&account.department, &[])?;
    for group in old_groups {
        let kept = new_groups.iter().any(|g| g.eq_ignore_ascii_case(&group));
        let member = account.groups.iter().any(|g| g.eq_ignore_ascii_case(&group));
        if !kept && member {
            ops.push(DirectoryOp::RemoveFromGroup { sam: sam.clone(), group });
        }
    }
    add_missing_groups(&mut ops, account, new_groups);
    Ok(Plan { ops, ..Plan::about(account, true) })
}

/// A re-enabled account must not stay expired: a contractor's gets the new contract's end
/// (which the request must give once the old one ended), anyone else's expiry is lifted.
fn renewed_expiry(
    s: &crate::request::Submission,
    account: &Account,
    layout: &Layout,
    today: Date,
) -> Result<Vec<DirectoryOp>, NoPlan> {
    let sam = account.sam.clone();
    let expired = account.expires.is_some_and(|e| e < today);
    let expires = match layout.holder_of(account) {
        Some(HolderType::Contractor) => match (s.contract_end, account.expires) {
            (Some(end), _) if end < today => {
                return Err(NoPlan::NeedsInfo(format!(
                    "La fecha de terminación del contrato ({end}) ya pasó; indique la del contrato vigente"
                )));
            }
            (Some(end), _) => Some(end),
            (None, Some(ended)) if expired => {
                return Err(NoPlan::NeedsInfo(format!(
                    "El contrato de la cuenta «{sam}» terminó el {ended}: indique la fecha de terminación del nuevo contrato para reactivarla"
                )));
            }
            (None, current) => current,
        },
        _ if expired => None,
        _ => account.expires,
    };
    Ok(if expires == account.expires { Vec::new() } else { vec![DirectoryOp::SetExpiry { sam, expires }] })
}

/// The change of one attribute, if the request gives a value and the account holds another.
fn difference(attribute: &str, from: &str, to: &str) -> Option<AttributeChange> {
    (!to.is_empty() && from != to).then(|| AttributeChange {
        attribute: attribute.into(),
        from: from.into(),
        to: to.into(),
    })
}

fn manager_of<'a>(snapshot: &'a Snapshot, mail: &str) -> Result<&'a Account, NoPlan> {
    snapshot.by_mail(mail).ok_or_else(|| {
        NoPlan::NeedsInfo(format!(
            "El correo del jefe o supervisor «{mail}» no corresponde a ninguna cuenta de la entidad; escriba su correo institucional"
        ))
    })
}

fn add_missing_groups(ops: &mut Vec<DirectoryOp>, account: &Account, groups: Vec<String>) {
    for group in groups {
        if !account.groups.iter().any(|g| g.eq_ignore_ascii_case(&group)) {
            ops.push(DirectoryOp::AddToGroup { sam: account.sam.clone(), group });
        }
    }
}

fn create(
    request: &Request,
    holder: HolderType,
    snapshot: &Snapshot,
    layout: &Layout,
    today: Date,
    taken: impl Fn(&str) -> bool,
    taken_dn: impl Fn(&str) -> bool,
) -> Result<Plan, NoPlan> {
    let s = &request.submission;
    let expires = if holder == HolderType::Contractor { s.contract_end } else { None };
    if let Some(end) = expires
        && end < today
    {
        return Err(NoPlan::NeedsInfo(format!(
            "La fecha de terminación del contrato ({end}) ya pasó; revise las fechas del contrato"
        )));
    }
    let groups = layout.groups_for(&s.department, &s.groups)?;
    let manager =
        if s.manager_email.is_empty() { None } else { Some(manager_of(snapshot, &s.manager_email)?) };

    // A returning person (contractors come back every year) gets their old account back.
    if !s.id_number.is_empty() {
        let existing: Vec<&Account> = snapshot.by_employee_id(&s.id_number).collect();
        if let Some(active) = existing.iter().find(|a| !a.is_inactive(today)) {
            return Err(NoPlan::NeedsInfo(format!(
                "Ya existe una cuenta activa («{}») para el documento {}; si necesita cambios en ella, pida una «Modificación de cuenta» con ese usuario",
                active.sam, s.id_number
            )));
        }
        if let Some(old) = existing.first() {
            // The document number is public (contracts are published): the names must be the
            // old holder's too, or anyone could take a former contractor's account. Nothing
            // of the old holder is told to the requester.
            if !same_person(old, s) {
                return Err(NoPlan::NeedsInfo(format!(
                    "El documento {} corresponde en el directorio a una cuenta inactiva cuyos nombres no coinciden \
                     con los del formulario: revise el número de documento y los nombres y apellidos",
                    s.id_number
                )));
            }
            // A privileged or unmanaged account is never brought back by a form: a person
            // looks at it (nothing of it is told to the requester).
            if layout.guard(old).is_err() {
                return Err(NoPlan::ByHand(format!(
                    "el documento corresponde a la cuenta inactiva «{}», protegida o fuera de las unidades que gestiona \
                     este proceso: la mesa de servicio decide si se reactiva y lo hace directamente",
                    old.sam
                )));
            }
            // What the old holder was given outside the groups this process manages stays
            // with the account unless a person removes it: the bind account has no right on
            // those groups (least privilege), and a returning person starts from what is asked
            // now. The account stays disabled until then.
            let outside: Vec<&str> = old
                .groups
                .iter()
                .filter(|g| !layout.allowed_groups.contains_key(&fold(g)))
                .map(String::as_str)
                .collect();
            if !outside.is_empty() {
                return Err(NoPlan::DirectoryFirst(format!(
                    "el documento corresponde a la cuenta inactiva «{}», que conserva grupos que este proceso no \
                     administra ({}): retírela de ellos en el directorio antes de que se reactive",
                    old.sam,
                    outside.join(", ")
                )));
            }
            return Ok(reactivate(request, old, layout, holder, expires, manager, groups));
        }
    }

    let patterns = layout.patterns(s.surnames.is_empty());
    let sam = naming::choose(patterns, &s.given_names, &s.surnames, |c| snapshot.name_in_use(c) || taken(c))
        .ok_or_else(|| {
            NoPlan::NeedsInfo(
                "No fue posible formar un usuario de red libre a partir de los nombres y apellidos; revise que estén escritos completos".into(),
            )
        })?;
    let display = s.full_name();
    let ou = layout.ou_for(holder, &s.department);
    let mut cn = display.clone();
    // Two people with the same name: the second CN names its account, whether the first is in
    // the directory already or only claimed by a request of the same poll.
    if snapshot.by_sam(&sam).is_none()
        && (dn_taken(snapshot, &cn, ou) || taken_dn(&new_dn(&cn, ou).to_lowercase()))
    {
        // `cn` holds 64 characters: shorten the name, never the account that makes it unique.
        let room = 64 - sam.len() - 3;
        let short: String = display.chars().take(room).collect();
        cn = format!("{} ({sam})", short.trim_end());
    }
    let address = format!("{sam}@{}", layout.config.domain);
    let mut attributes = vec![
        ("cn".to_string(), cn.clone()),
        ("givenName".into(), s.given_names.clone()),
        ("sn".into(), s.surnames.clone()),
        ("displayName".into(), display),
        ("sAMAccountName".into(), sam.clone()),
        ("userPrincipalName".into(), address.clone()),
        ("mail".into(), address),
        ("employeeType".into(), holder.label().to_string()),
        ("department".into(), s.department.clone()),
        ("description".into(), request.id.to_string()),
    ];
    if !s.id_number.is_empty() {
        attributes.push(("employeeID".into(), s.id_number.clone()));
    }
    if !s.title.is_empty() {
        attributes.push(("title".into(), s.title.clone()));
    }
    if let Some(m) = manager {
        attributes.push(("manager".into(), m.dn.clone()));
    }
    if let Some(attribute) = &layout.config.personal_email_attribute {
        attributes.push((attribute.clone(), s.personal_email.clone()));
    }
    attributes.retain(|(_, v)| !v.is_empty());
    let dn = new_dn(&cn, ou);
    let mut ops = vec![DirectoryOp::Create { sam: sam.clone(), dn, attributes, expires }];
    ops.extend(groups.into_iter().map(|group| DirectoryOp::AddToGroup { sam: sam.clone(), group }));
    Ok(Plan { account: sam, ops, sends_credentials: true, ..Plan::default() })
}

/// A returning person's old account, made exactly what the new request says: its OU, its
/// attributes, only the groups the request grants (of those the daemon manages), the new
/// contract's expiry (none for employees), then a new password and enabled.
fn reactivate(
    request: &Request,
    old: &Account,
    layout: &Layout,
    holder: HolderType,
    expires: Option<Date>,
    manager: Option<&Account>,
    groups: Vec<String>,
) -> Plan {
    let s = &request.submission;
    let sam = old.sam.clone();
    let mut changes = Vec::new();
    let mut change = |attribute: &str, from: &str, to: &str| changes.extend(difference(attribute, from, to));
    change("givenName", &old.given_name, &s.given_names);
    change("sn", &old.surname, &s.surnames);
    change("displayName", &old.display_name, &s.full_name());
    change("department", &old.department, &s.department);
    change("title", &old.title, &s.title);
    change("employeeType", &old.employee_type, holder.label());
    change("description", &old.description, &request.id.to_string());
    if let Some(m) = manager {
        change("manager", &old.manager_dn, &m.dn);
    }
    if let Some(attribute) = &layout.config.personal_email_attribute {
        change(attribute, &old.personal_email, &s.personal_email);
    }
    let mut ops = Vec::new();
    if !changes.is_empty() {
        ops.push(DirectoryOp::SetAttributes { sam: sam.clone(), changes });
    }
    let to_ou = layout.ou_for(holder, &s.department);
    if !super::dn::equal(super::dn::parent(&old.dn), to_ou) {
        ops.push(DirectoryOp::Move { sam: sam.clone(), to_ou: to_ou.to_string() });
    }
    if old.expires != expires {
        ops.push(DirectoryOp::SetExpiry { sam: sam.clone(), expires });
    }
    ops.push(DirectoryOp::ResetPassword { sam: sam.clone() });
    ops.push(DirectoryOp::Enable { sam: sam.clone() });
    // Groups the daemon manages that the new request does not grant go: a returning person
    // starts from what is asked now, not from what they had.
    for group in &old.groups {
        let managed = layout.allowed_groups.get(&fold(group));
        let granted = groups.iter().any(|g| g.eq_ignore_ascii_case(group));
        if let Some(managed) = managed
            && !granted
        {
            ops.push(DirectoryOp::RemoveFromGroup { sam: sam.clone(), group: managed.clone() });
        }
    }
    add_missing_groups(&mut ops, old, groups);
    // An existing account changed: its own mailbox is told too.
    Plan { ops, sends_credentials: true, ..Plan::about(old, true) }
}

/// The DN of a new account: its CN in its OU.
fn new_dn(cn: &str, ou: &str) -> String {
    format!("CN={},{ou}", dn_escape(cn))
}

fn dn_taken(snapshot: &Snapshot, cn: &str, ou: &str) -> bool {
    let dn = new_dn(cn, ou);
    snapshot.accounts().any(|a| a.dn.eq_ignore_ascii_case(&dn))
}

/// RFC 4514 escaping of an attribute value in a DN, with the backslash forms AD itself returns
/// (`\,`, not `\2c`), so that a DN built here compares equal to one read from the directory.
pub fn dn_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            // A leading `#` or space, and a trailing space, once each (a lone space is both).
            '#' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == 0 || i == last => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::HolderOus;
    use crate::request::{RequestId, Submission};

    const USERS: &str = "OU=Usuarios,DC=upme,DC=gov,DC=co";

    fn layout() -> Layout {
        let naming = ["{g1}.{s1}", "{g1}.{s1}{s2:1}", "{g1}{g2:1}.{s1}", "{g1}.{s1}{n}"];
        Layout::new(
            DirectoryConfig {
                mode: Default::default(),
                snapshot_path: None,
                domain: "upme.gov.co".into(),
                naming_patterns: naming.map(String::from).to_vec(),
                ous: HolderOus {
                    employee: format!("OU=Funcionarios,{USERS}"),
                    contractor: format!("OU=Contratistas,{USERS}"),
                    institutional: format!("OU=Genericas,{USERS}"),
                },
                managed_ous: vec![USERS.into()],
                allowed_groups: ["GG-Todos", "GG-Energia", "VPN"].map(String::from).to_vec(),
                department_groups: BTreeMap::from([(
                    "Subdirección de Energía".to_string(),
                    vec!["GG-Todos".to_string(), "GG-Energia".to_string()],
                )]),
                open_groups: vec!["VPN".into()],
                protected_accounts: vec!["administrator".into(), "svc-backup".into()],
                protected_groups: vec!["Domain Admins".into()],
                url: None,
                starttls: false,
                ca_file: None,
                bind_dn: None,
                bind_password: None,
                base_dn: None,
                timeout_secs: 30,
                department_ous: BTreeMap::new(),
                retired_ou: None,
                max_disables_per_hour: 10,
                personal_email_attribute: None,
                leave_action: LeaveAction::Disable,
                onsite_reset: OnsiteReset::Manual,
                keep_groups_on_termination: vec!["VPN".into()],
                min_days_disabled_before_delete: 30,
                stale_days: 90,
                end_date_reminder_business_days: vec![10, 3],
                disable_at_contract_end: true,
            },
            naming.iter().map(|p| Pattern::parse(p).unwrap()).collect(),
        )
    }

    #[test]
    fn the_single_name_patterns_all_parse() {
        assert_eq!(layout().patterns(true).len(), SINGLE_NAME_PATTERNS.len());
    }

    fn account(sam: &str, employee_id: &str, enabled: bool) -> Account {
        let (given, surname) = sam.split_once('.').unwrap_or((sam, ""));
        Account {
            sam: sam.into(),
            dn: format!("CN={sam},OU=Contratistas,{USERS}"),
            given_name: given.into(),
            surname: surname.into(),
            display_name: String::new(),
            mail: format!("{sam}@upme.gov.co"),
            upn: format!("{sam}@upme.gov.co"),
            employee_id: employee_id.into(),
            employee_type: "Contratista".into(),
            department: "Subdirección de Energía".into(),
            title: "Analista".into(),
            manager_mail: String::new(),
            enabled,
            expires: Some(Date::constant(2025, 12, 31)),
            groups: vec!["GG-Todos".into()],
            ..Account::default()
        }
    }

    fn snapshot() -> Snapshot {
        let mut admin = account("administrator", "", true);
        admin.dn = "CN=Administrator,CN=Users,DC=upme,DC=gov,DC=co".into();
        admin.admin_count = true;
        let mut outside = account("externo", "", true);
        outside.dn = "CN=externo,OU=Proveedores,DC=upme,DC=gov,DC=co".into();
        let mut privileged = account("ana.admin", "", true);
        privileged.admin_count = true;
        let mut juan = account("juan.perez", "111", true);
        juan.expires = None;
        Snapshot::new(vec![
            juan,
            account("camilo.vargas", "80123456", false),
            account("sofia.herrera", "222", true),
            account("svc-backup", "", true),
            admin,
            outside,
            privileged,
        ])
    }

    fn request(kind: Kind, holder: HolderType, f: impl FnOnce(&mut Submission)) -> Request {
        let mut s = Submission {
            kind: Some(kind),
            holder_type: Some(holder),
            given_names: "Juan Carlos".into(),
            surnames: "Pérez Gómez".into(),
            id_number: "999".into(),
            department: "Subdirección de Energía".into(),
            title: "Ingeniero".into(),
            contract_end: Some(Date::constant(2027, 6, 30)),
            ..Submission::default()
        };
        f(&mut s);
        let now = "2026-11-27T13:00:00Z".parse().unwrap();
        Request::new(RequestId { year: 2026, seq: 5 }, 7, "h".into(), s, now, now)
    }

    const TODAY: Date = Date::constant(2026, 11, 27);

    fn run(r: &Request) -> Result<Plan, NoPlan> {
        plan(r, &snapshot(), &layout(), TODAY, |_| false, |_| false)
    }

    #[test]
    fn a_creation_takes_the_first_free_name_and_every_attribute() {
        let p = run(&request(Kind::Create, HolderType::Contractor, |_| {})).unwrap();
        assert_eq!(p.account, "juan.perezg");
        assert!(p.sends_credentials);
        let DirectoryOp::Create { sam, dn, attributes, expires } = &p.ops[0] else { panic!("{:?}", p.ops) };
        assert_eq!(sam, "juan.perezg");
        assert_eq!(dn, &format!("CN=Juan Carlos Pérez Gómez,OU=Contratistas,{USERS}"));
        assert_eq!(*expires, Some(Date::constant(2027, 6, 30)));
        let get = |k: &str| attributes.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("userPrincipalName"), Some("juan.perezg@upme.gov.co"));
        assert_eq!(get("mail"), Some("juan.perezg@upme.gov.co"));
        assert_eq!(get("employeeID"), Some("999"));
        assert_eq!(get("employeeType"), Some("Contratista"));
        assert_eq!(get("description"), Some("GU-2026-000005"));
        let groups: Vec<_> = p.ops[1..]
            .iter()
            .map(|op| match op {
                DirectoryOp::AddToGroup { group, .. } => group.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(groups, ["GG-Todos", "GG-Energia"]);
    }

    #[test]
    fn names_claimed_by_open_requests_are_not_taken_twice() {
        let r = request(Kind::Create, HolderType::Employee, |_| {});
        let p = plan(&r, &snapshot(), &layout(), TODAY, |n| n == "juan.perezg", |_| false).unwrap();
        assert_eq!(p.account, "juanc.perez");
        let DirectoryOp::Create { expires, .. } = &p.ops[0] else { panic!() };
        assert_eq!(*expires, None, "employees do not expire");
    }

    #[test]
    fn a_returning_contractor_gets_the_old_account_back() {
        let r = request(Kind::Create, HolderType::Contractor, |s| {
            s.id_number = "80123456".into();
            s.given_names = "Camilo".into();
            s.surnames = "Vargas Ñustes".into();
        });
        let p = run(&r).unwrap();
        assert_eq!(p.account, "camilo.vargas");
        assert!(p.sends_credentials);
        assert!(!p.ops.iter().any(|op| matches!(op, DirectoryOp::Create { .. })));
        assert!(p.ops.contains(&DirectoryOp::SetExpiry {
            sam: "camilo.vargas".into(),
            expires: Some(Date::constant(2027, 6, 30))
        }));
        assert!(p.ops.contains(&DirectoryOp::ResetPassword { sam: "camilo.vargas".into() }));
        assert!(p.ops.contains(&DirectoryOp::Enable { sam: "camilo.vargas".into() }));
        assert!(
            p.ops.contains(&DirectoryOp::AddToGroup {
                sam: "camilo.vargas".into(),
                group: "GG-Energia".into()
            })
        );
        assert!(
            !p.ops
                .contains(&DirectoryOp::AddToGroup { sam: "camilo.vargas".into(), group: "GG-Todos".into() })
        );
    }

    #[test]
    fn a_document_number_alone_does_not_bring_an_old_account_back() {
        let returning = |given: &str, surnames: &str| {
            request(Kind::Create, HolderType::Contractor, |s| {
                s.id_number = "80123456".into();
                s.given_names = given.into();
                s.surnames = surnames.into();
            })
        };
        // The same person however written: case, accents, order, a surname left out.
        for (given, surnames) in
            [("CAMILO", "vargas"), ("Camilo Andrés", "Ñustes Vargas"), ("camilo", "VÁRGAS")]
        {
            assert_eq!(
                run(&returning(given, surnames)).unwrap().account,
                "camilo.vargas",
                "{given} {surnames}"
            );
        }
        // Someone else with that document: asked about, nothing of the old holder said.
        for (given, surnames) in [("Mauricio", "Vargas"), ("Camilo", "Pineda"), ("Camilo", "")] {
            let refused = run(&returning(given, surnames));
            assert!(
                matches!(&refused, Err(NoPlan::NeedsInfo(m)) if m.contains("no coinciden") && !m.contains("camilo.vargas")),
                "{given} {surnames}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_returning_account_with_unmanaged_or_privileged_groups_waits_for_a_person() {
        let r = request(Kind::Create, HolderType::Contractor, |s| {
            s.id_number = "80123456".into();
            s.given_names = "Camilo".into();
            s.surnames = "Vargas".into();
        });
        let with = |groups: &[&str], admin_count: bool| {
            let mut snapshot = snapshot();
            let mut old = account("camilo.vargas", "80123456", false);
            old.groups = groups.iter().map(|g| g.to_string()).collect();
            old.admin_count = admin_count;
            snapshot = Snapshot::new(
                snapshot.accounts().filter(|a| a.sam != "camilo.vargas").cloned().chain([old]).collect(),
            );
            plan(&r, &snapshot, &layout(), TODAY, |_| false, |_| false)
        };
        // Managed groups the new request does not grant are removed by the plan itself.
        let p = with(&["VPN", "GG-Todos"], false).unwrap();
        assert!(
            p.ops
                .contains(&DirectoryOp::RemoveFromGroup { sam: "camilo.vargas".into(), group: "VPN".into() })
        );
        // A group this process does not manage: the desk removes it first, nothing is enabled.
        let waits = with(&["GG-Todos", "GG-Finanzas", "Tesoreria"], false);
        assert!(
            matches!(&waits, Err(NoPlan::DirectoryFirst(m)) if m.contains("GG-Finanzas, Tesoreria") && !m.contains("GG-Todos")),
            "{waits:?}"
        );
        // A privileged old account is never brought back by a form.
        assert!(matches!(with(&[], true), Err(NoPlan::ByHand(m)) if m.contains("protegida")));
        assert!(matches!(with(&["Domain Admins"], false), Err(NoPlan::ByHand(_))));
    }

    #[test]
    fn a_request_gives_groups_of_its_own_dependency_or_open_ones_only() {
        // Energía's own group and an open one, for an account of Energía.
        let r = request(Kind::Create, HolderType::Contractor, |s| {
            s.groups = vec!["gg-energia".into(), "VPN".into()]
        });
        let p = run(&r).unwrap();
        assert!(p.ops.contains(&DirectoryOp::AddToGroup { sam: p.account.clone(), group: "VPN".into() }));
        // Energía's group for an account of another dependency: asked about, naming what may be.
        let r = request(Kind::Create, HolderType::Contractor, |s| {
            s.department = "Secretaría General".into();
            s.groups = vec!["GG-Energia".into()];
        });
        assert!(
            matches!(run(&r), Err(NoPlan::NeedsInfo(m)) if m.contains("GG-Energia") && m.contains("elija uno de: VPN")),
            "{:?}",
            run(&r)
        );
        // A modification: the account's dependency is the directory's (Juan is in Energía),
        // whatever the form claims.
        let r = request(Kind::Modify, HolderType::Contractor, |s| {
            s.account = "juan.perez".into();
            s.department = "Secretaría General".into();
            s.groups = vec!["GG-Energia".into()];
        });
        assert_eq!(snapshot().by_sam("juan.perez").unwrap().department, "Subdirección de Energía");
        assert!(run(&r).is_ok(), "{:?}", run(&r));
    }

    #[test]
    fn an_enabled_duplicate_or_a_bad_group_needs_info() {
        let r = request(Kind::Create, HolderType::Contractor, |s| s.id_number = "111".into());
        assert!(matches!(run(&r), Err(NoPlan::NeedsInfo(m)) if m.contains("juan.perez")));
        let r = request(Kind::Create, HolderType::Contractor, |s| s.groups = vec!["Domain Admins".into()]);
        assert!(matches!(run(&r), Err(NoPlan::NeedsInfo(m)) if m.contains("Domain Admins")));
        let r = request(Kind::Create, HolderType::Contractor, |s| {
            s.contract_end = Some(Date::constant(2026, 1, 1))
        });
        assert!(matches!(run(&r), Err(NoPlan::NeedsInfo(_))));
    }

    #[test]
    fn protected_privileged_and_outside_accounts_are_refused() {
        for sam in ["administrator", "svc-backup", "ana.admin", "externo"] {
            let r = request(Kind::PasswordReset, HolderType::Employee, |s| s.account = sam.into());
            assert!(matches!(run(&r), Err(NoPlan::Refused(_))), "{sam}");
        }
        let r = request(Kind::Disable, HolderType::Employee, |s| s.account = "nadie".into());
        assert!(matches!(run(&r), Err(NoPlan::NeedsInfo(m)) if m.contains("nadie")));
    }

    #[test]
    fn changes_are_only_what_differs() {
        let r = request(Kind::Disable, HolderType::Contractor, |s| s.account = "camilo.vargas".into());
        assert_eq!(run(&r).unwrap().ops, vec![]);
        // Camilo's contract ended (2025-12-31): re-enabled with the new contract's end.
        let r = request(Kind::Enable, HolderType::Contractor, |s| s.account = "camilo.vargas".into());
        let sam = "camilo.vargas".to_string();
        assert_eq!(
            run(&r).unwrap().ops,
            vec![
                DirectoryOp::SetExpiry { sam: sam.clone(), expires: Some(Date::constant(2027, 6, 30)) },
                DirectoryOp::Enable { sam }
            ]
        );
        let r = request(Kind::Enable, HolderType::Contractor, |s| {
            s.account = "camilo.vargas".into();
            s.contract_end = None;
        });
        assert!(matches!(run(&r), Err(NoPlan::NeedsInfo(m)) if m.contains("terminó el 2025-12-31")));
        let r = request(Kind::Modify, HolderType::Contractor, |s| {
            *s = Submission {
                kind: Some(Kind::Modify),
                holder_type: Some(HolderType::Contractor),
                account: "sofia.herrera".into(),
                title: "Analista".into(),
                department: "Subdirección de Energía".into(),
                groups: vec!["VPN".into()],
                ..Submission::default()
            }
        });
        assert_eq!(
            run(&r).unwrap().ops,
            vec![DirectoryOp::AddToGroup { sam: "sofia.herrera".into(), group: "VPN".into() }]
        );
    }

    fn layout_with(f: impl FnOnce(&mut DirectoryConfig)) -> Layout {
        let Layout { mut config, patterns, .. } = layout();
        f(&mut config);
        Layout::new(config, patterns)
    }

    const RETIRED: &str = "OU=Retiradas,OU=Usuarios,DC=upme,DC=gov,DC=co";

    fn with_account(sam: &str, f: impl FnOnce(&mut Account)) -> Snapshot {
        let mut accounts: Vec<Account> = snapshot().accounts().cloned().collect();
        if let Some(a) = accounts.iter_mut().find(|a| a.sam == sam) {
            f(a);
        }
        Snapshot::new(accounts)
    }

    #[test]
    fn a_leave_disables_at_its_start_and_enables_at_its_return() {
        let mut r = request(Kind::Leave, HolderType::Employee, |s| {
            s.account = "sofia.herrera".into();
            s.effective_date = Some(Date::constant(2026, 12, 1));
            s.return_date = Some(Date::constant(2026, 12, 15));
        });
        let start = run(&r).unwrap();
        assert_eq!(start.ops, [DirectoryOp::Disable { sam: "sofia.herrera".into() }]);
        assert_eq!(start.notice_to.as_deref(), Some("sofia.herrera@upme.gov.co"));
        r.phase = Phase::Return;
        let disabled = with_account("sofia.herrera", |a| a.enabled = false);
        let back = plan(&r, &disabled, &layout(), TODAY, |_| false, |_| false).unwrap();
        assert_eq!(back.ops, [DirectoryOp::Enable { sam: "sofia.herrera".into() }]);
        // Enabled again by hand meanwhile: nothing to do.
        assert_eq!(run(&r).unwrap().ops, []);
        // `leave_action = "none"`: recorded, the directory untouched, both ways.
        let none = layout_with(|c| c.leave_action = LeaveAction::None);
        for phase in [Phase::Start, Phase::Return] {
            r.phase = phase;
            assert_eq!(plan(&r, &disabled, &none, TODAY, |_| false, |_| false).unwrap().ops, []);
        }
        // A suspension disables whatever the leave setting says.
        r.submission.kind = Some(Kind::Suspension);
        r.phase = Phase::Start;
        let p = plan(&r, &snapshot(), &none, TODAY, |_| false, |_| false).unwrap();
        assert_eq!(p.ops, [DirectoryOp::Disable { sam: "sofia.herrera".into() }]);
    }

    #[test]
    fn a_leave_whose_return_has_passed_is_asked_about() {
        let r = request(Kind::Leave, HolderType::Employee, |s| {
            s.account = "sofia.herrera".into();
            s.effective_date = Some(Date::constant(2026, 11, 1));
            s.return_date = Some(TODAY);
        });
        assert!(matches!(run(&r), Err(NoPlan::NeedsInfo(m)) if m.contains("ya pasó")));
    }

    #[test]
    fn an_early_termination_expires_strips_managed_groups_disables_and_retires() {
        let l = layout_with(|c| c.retired_ou = Some(RETIRED.into()));
        let snap = with_account("sofia.herrera", |a| {
            a.groups = vec!["GG-Todos".into(), "VPN".into(), "Unmanaged".into()];
            a.expires = Some(Date::constant(2027, 6, 30));
        });
        let r = request(Kind::EarlyTermination, HolderType::Contractor, |s| {
            s.account = "sofia.herrera".into();
            s.effective_date = Some(Date::constant(2026, 12, 10));
        });
        let sam = || "sofia.herrera".to_string();
        let p = plan(&r, &snap, &l, TODAY, |_| false, |_| false).unwrap();
        assert_eq!(
            p.ops,
            [
                DirectoryOp::SetExpiry { sam: sam(), expires: Some(Date::constant(2026, 12, 10)) },
                // VPN is kept (`keep_groups_on_termination`), Unmanaged is not the daemon's.
                DirectoryOp::RemoveFromGroup { sam: sam(), group: "GG-Todos".into() },
                DirectoryOp::Disable { sam: sam() },
                DirectoryOp::Move { sam: sam(), to_ou: RETIRED.into() },
            ]
        );
        // A termination never lengthens a contract: an earlier expiry stays.
        let earlier = with_account("sofia.herrera", |a| a.expires = Some(Date::constant(2026, 12, 1)));
        let p = plan(&r, &earlier, &layout(), TODAY, |_| false, |_| false).unwrap();
        assert!(!p.ops.iter().any(|op| matches!(op, DirectoryOp::SetExpiry { .. })), "{:?}", p.ops);
    }

    #[test]
    fn an_assignment_creates_the_new_contractor_and_disables_the_previous_one() {
        let r = request(Kind::Assignment, HolderType::Contractor, |s| s.account = "sofia.herrera".into());
        let p = run(&r).unwrap();
        assert_eq!(p.account, "juan.perezg");
        assert!(p.sends_credentials);
        assert!(
            matches!(&p.ops[0], DirectoryOp::Create { expires: Some(d), .. } if *d == Date::constant(2027, 6, 30))
        );
        assert_eq!(p.ops.last(), Some(&DirectoryOp::Disable { sam: "sofia.herrera".into() }));
        assert_eq!(p.previous_holder.as_deref(), Some("sofia.herrera"));
        assert_eq!(p.notice_to.as_deref(), Some("sofia.herrera@upme.gov.co"));
        // The new contractor is someone else: the previous holder's own document is asked about.
        let same = request(Kind::Assignment, HolderType::Contractor, |s| {
            s.account = "sofia.herrera".into();
            s.id_number = "222".into();
        });
        assert!(matches!(run(&same), Err(NoPlan::NeedsInfo(_))));
        // A protected previous holder is refused.
        let admin = request(Kind::Assignment, HolderType::Contractor, |s| s.account = "ana.admin".into());
        assert!(matches!(run(&admin), Err(NoPlan::Refused(_))));
    }

    #[test]
    fn a_reactivation_brings_an_account_back_from_the_retired_ou_and_a_pr_rroga_does_not() {
        let l = layout_with(|c| c.retired_ou = Some(RETIRED.into()));
        let retired = with_account("sofia.herrera", |a| {
            a.enabled = false;
            a.dn = format!("CN=sofia.herrera,{RETIRED}");
            a.employee_type = "Contratista".into();
            a.expires = Some(Date::constant(2027, 6, 30));
        });
        let enable = request(Kind::Enable, HolderType::Contractor, |s| s.account = "sofia.herrera".into());
        let p = plan(&enable, &retired, &l, TODAY, |_| false, |_| false).unwrap();
        let contractors = l.config.ous.contractor.clone();
        assert_eq!(
            p.ops,
            [
                DirectoryOp::Move { sam: "sofia.herrera".into(), to_ou: contractors },
                DirectoryOp::Enable { sam: "sofia.herrera".into() },
            ]
        );
        // Nothing says where it lived: by hand.
        let unknown = with_account("sofia.herrera", |a| {
            a.enabled = false;
            a.dn = format!("CN=sofia.herrera,{RETIRED}");
            a.employee_type = String::new();
        });
        assert!(matches!(plan(&enable, &unknown, &l, TODAY, |_| false, |_| false), Err(NoPlan::ByHand(_))));
        // A prórroga of an account waiting for its deletion does not enable it.
        let prorroga = request(Kind::Modify, HolderType::Contractor, |s| {
            s.account = "sofia.herrera".into();
            s.contract_end = Some(Date::constant(2027, 12, 31));
        });
        let refused = plan(&prorroga, &retired, &l, TODAY, |_| false, |_| false);
        assert!(matches!(refused, Err(NoPlan::NeedsInfo(m)) if m.contains("Reactivación")));
    }

    #[test]
    fn a_deletion_retires_first_and_deletes_only_a_retired_disabled_account() {
        let mut r = request(Kind::Delete, HolderType::Contractor, |s| s.account = "sofia.herrera".into());
        assert!(matches!(run(&r), Err(NoPlan::ByHand(m)) if m.contains("retired_ou")));
        let l = layout_with(|c| c.retired_ou = Some(RETIRED.into()));
        let p = plan(&r, &snapshot(), &l, TODAY, |_| false, |_| false).unwrap();
        assert_eq!(
            p.ops,
            [
                DirectoryOp::Disable { sam: "sofia.herrera".into() },
                DirectoryOp::Move { sam: "sofia.herrera".into(), to_ou: RETIRED.into() },
            ]
        );
        r.phase = Phase::Removal;
        // Still where the first step left it: deleted.
        let retired = with_account("sofia.herrera", |a| {
            a.enabled = false;
            a.dn = format!("CN=sofia.herrera,{RETIRED}");
        });
        let p = plan(&r, &retired, &l, TODAY, |_| false, |_| false).unwrap();
        assert_eq!(p.ops, [DirectoryOp::Delete { sam: "sofia.herrera".into() }]);
        // Enabled again, or moved out, meanwhile: never deleted.
        assert!(matches!(plan(&r, &snapshot(), &l, TODAY, |_| false, |_| false), Err(NoPlan::Refused(_))));
        let enabled = with_account("sofia.herrera", |a| a.dn = format!("CN=sofia.herrera,{RETIRED}"));
        assert!(matches!(plan(&r, &enabled, &l, TODAY, |_| false, |_| false), Err(NoPlan::Refused(_))));
        // Gone already: nothing to do.
        r.submission.account = "nadie".into();
        assert_eq!(plan(&r, &retired, &l, TODAY, |_| false, |_| false).unwrap().ops, []);
    }

    #[test]
    fn a_reset_for_someone_on_site_is_done_at_their_desk_unless_configured() {
        let r = request(Kind::PasswordReset, HolderType::Contractor, |s| {
            s.account = "sofia.herrera".into();
            s.on_site = Some(true);
        });
        assert!(matches!(run(&r), Err(NoPlan::ByHand(m)) if m.contains("en su puesto")));
        let l = layout_with(|c| c.onsite_reset = OnsiteReset::TemporaryPassword);
        let p = plan(&r, &snapshot(), &l, TODAY, |_| false, |_| false).unwrap();
        assert_eq!(p.ops, [DirectoryOp::ResetPassword { sam: "sofia.herrera".into() }]);
    }

    #[test]
    fn a_transfer_moves_changes_and_swaps_dependency_groups() {
        let Layout { mut config, patterns, .. } = layout();
        config.department_ous.insert("Planeación".into(), format!("OU=Planeacion,OU=Funcionarios,{USERS}"));
        config.department_groups.insert("Planeación".into(), vec!["GG-Todos".into(), "VPN".into()]);
        let l = Layout::new(config, patterns);
        let r = request(Kind::Transfer, HolderType::Employee, |s| {
            s.account = "sofia.herrera".into();
            s.department = "Planeacion".into();
            s.title = "Asesora".into();
        });
        let mut snap_accounts: Vec<Account> = snapshot().accounts().cloned().collect();
        for a in &mut snap_accounts {
            if a.sam == "sofia.herrera" {
                a.groups = vec!["GG-Todos".into(), "GG-Energia".into()];
                a.dn = format!("CN=sofia.herrera,OU=Funcionarios,{USERS}");
                a.employee_type = "Funcionario".into();
            }
        }
        let p = plan(&r, &Snapshot::new(snap_accounts), &l, TODAY, |_| false, |_| false).unwrap();
        let sam = "sofia.herrera".to_string();
        assert_eq!(
            p.ops,
            vec![
                DirectoryOp::SetAttributes {
                    sam: sam.clone(),
                    changes: vec![
                        AttributeChange {
                            attribute: "department".into(),
                            from: "Subdirección de Energía".into(),
                            to: "Planeacion".into()
                        },
                        AttributeChange {
                            attribute: "title".into(),
                            from: "Analista".into(),
                            to: "Asesora".into()
                        },
                    ]
                },
                DirectoryOp::Move {
                    sam: sam.clone(),
                    to_ou: format!("OU=Planeacion,OU=Funcionarios,{USERS}")
                },
                DirectoryOp::RemoveFromGroup { sam: sam.clone(), group: "GG-Energia".into() },
                DirectoryOp::AddToGroup { sam, group: "VPN".into() },
            ]
        );
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(dn_escape("a,OU=Domain Admins"), "a\\,OU\\=Domain Admins");
        // A lone space is leading and trailing at once: escaped once (found by fuzzing).
        for value in [" ", " a ", "a ", "#a", "a\\ "] {
            let dn = format!("CN={}", dn_escape(value));
            let parsed = super::super::dn::parse(&dn).unwrap();
            assert_eq!(parsed[0][0].value, value, "{dn}");
        }
        assert_eq!(dn_escape(" #x "), "\\ #x\\ ");
        assert_eq!(dn_escape("Peña+\"x\"<y>;\\"), "Peña\\+\\\"x\\\"\\<y\\>\\;\\\\");
    }
}
