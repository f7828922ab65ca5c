//! The register held against the directory (pure). cuentas records, for every account its plans
//! touched, what it set last ([`Registered`]); drift is where the directory no longer says so, or
//! holds what no request made: accounts created outside cuentas, attributes and memberships
//! changed by hand, contractors enabled without an end or past it, accounts nobody uses, and
//! accounts cuentas made that are gone. Read-only: nothing here changes the directory.
//!
//! The register keeps the attributes it compares (department, title, manager) as keyed hashes
//! (`seal`, see `retention::value_hash`): it outlives every request's retention period, and
//! must not keep their personal data.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::ops::DirectoryOp;
use crate::request::RequestId;

/// A value as the register keeps it: `seal(attribute, value)`.
pub type Seal<'a> = &'a dyn Fn(&str, &str) -> String;

/// What cuentas last set on one account: only the fields a plan set are `Some`; department,
/// title and manager sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub sam: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The manager's DN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// The OU it was put in (lower-case DN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ou: Option<String>,
    /// Groups cuentas put it in, and took it out of (names, lower-case).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups_in: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub groups_out: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `Some(None)`: set to never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Option<Date>>,
    /// Created by cuentas: every managed group it is in is one cuentas gave it. (An account it
    /// only changed was in groups before: only the memberships it changed are compared.)
    #[serde(default)]
    pub created: bool,
    /// Deleted by cuentas: its absence is no drift.
    #[serde(default)]
    pub deleted: bool,
    /// The request that changed it last, and when.
    pub request: RequestId,
    pub at: Timestamp,
}

impl Registered {
    pub fn new(sam: &str, request: RequestId, at: Timestamp) -> Registered {
        Registered {
            sam: sam.to_lowercase(),
            department: None,
            title: None,
            manager: None,
            ou: None,
            groups_in: BTreeSet::new(),
            groups_out: BTreeSet::new(),
            enabled: None,
            expires: None,
            created: false,
            deleted: false,
            request,
            at,
        }
    }

    /// The record after `op` (on this account) was carried out by `request` at `at`.
    pub fn apply(&mut self, op: &DirectoryOp, request: RequestId, at: Timestamp, seal: Seal) {
        (self.request, self.at) = (request, at);
        match op {
            DirectoryOp::Create { dn, attributes, expires, .. } => {
                (self.created, self.deleted) = (true, false);
                self.ou = Some(super::dn::parent(dn).to_lowercase());
                self.enabled = Some(true);
                self.expires = Some(*expires);
                for (attribute, value) in attributes {
                    self.set(attribute, value, seal);
                }
            }
            DirectoryOp::SetAttributes { changes, .. } => {
                for change in changes {
                    self.set(&change.attribute, &change.to, seal);
                }
            }
            DirectoryOp::SetExpiry { expires, .. } => self.expires = Some(*expires),
            DirectoryOp::Enable { .. } => self.enabled = Some(true),
            DirectoryOp::Disable { .. } => self.enabled = Some(false),
            DirectoryOp::AddToGroup { group, .. } => {
                let group = group.to_lowercase();
                self.groups_out.remove(&group);
                self.groups_in.insert(group);
            }
            DirectoryOp::RemoveFromGroup { group, .. } => {
                let group = group.to_lowercase();
                self.groups_in.remove(&group);
                self.groups_out.insert(group);
            }
            DirectoryOp::Move { to_ou, .. } => self.ou = Some(to_ou.to_lowercase()),
            DirectoryOp::Delete { .. } => self.deleted = true,
            DirectoryOp::ResetPassword { .. } => {}
        }
    }

    fn set(&mut self, attribute: &str, value: &str, seal: Seal) {
        let value = Some(seal(attribute, value));
        match attribute {
            "department" => self.department = value,
            "title" => self.title = value,
            "manager" => self.manager = value,
            _ => {}
        }
    }
}

/// One account of the managed OUs as the directory holds it now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub sam: String,
    pub dn: String,
    /// `objectGUID`: inherited accounts are remembered by it, whatever their name becomes.
    pub guid: String,
    pub department: String,
    pub title: String,
    pub manager: String,
    /// Group names (the first RDN of each `memberOf`).
    pub groups: Vec<String>,
    pub enabled: bool,
    pub expires: Option<Date>,
    /// A contractor's account (by its OU or `employeeType`).
    pub contractor: bool,
    pub when_changed: Option<Timestamp>,
    pub when_created: Option<Timestamp>,
    /// `lastLogonTimestamp`: replicated with up to 14 days of lag.
    pub last_logon: Option<Timestamp>,
}

/// What is compared, besides the accounts.
pub struct Settings<'a> {
    /// The groups cuentas manages (`allowed_groups`): only their memberships are compared.
    pub managed_groups: &'a [String],
    pub stale_days: u32,
    pub today: Date,
    pub now: Timestamp,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// In a managed OU, made or changed by no request, and not there when cuentas first looked.
    Unregistered,
    /// There when cuentas first looked: listed once.
    Inherited,
    /// What cuentas set is no longer what the directory holds.
    Changed,
    /// A contractor enabled with no `accountExpires`.
    NoExpiry,
    /// A contractor enabled past its `accountExpires`.
    PastExpiry,
    /// Not used for `stale_days`.
    Stale,
    /// Made or kept by cuentas, no longer in the managed OUs.
    Gone,
}

impl FindingKind {
    pub fn key(self) -> &'static str {
        match self {
            FindingKind::Unregistered => "unregistered",
            FindingKind::Inherited => "inherited",
            FindingKind::Changed => "changed",
            FindingKind::NoExpiry => "no-expiry",
            FindingKind::PastExpiry => "past-expiry",
            FindingKind::Stale => "stale",
            FindingKind::Gone => "gone",
        }
    }

    /// For the report, in Spanish.
    pub fn label(self) -> &'static str {
        match self {
            FindingKind::Unregistered => "cuenta que ninguna solicitud creó",
            FindingKind::Inherited => "cuenta anterior a cuentas",
            FindingKind::Changed => "cambiada fuera de cuentas",
            FindingKind::NoExpiry => "contratista activo sin fecha de vencimiento",
            FindingKind::PastExpiry => "contratista activo con el contrato vencido",
            FindingKind::Stale => "sin uso",
            FindingKind::Gone => "ya no está en el directorio",
        }
    }
}

/// One thing the directory says that the register does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub sam: String,
    pub kind: FindingKind,
    /// What differs, in Spanish: `department: «Planeación» (cuentas puso «Energía»)`.
    pub detail: String,
    /// The request that set what differs, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestId>,
    /// AD's `whenChanged` of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<Timestamp>,
}

/// The findings, by account then kind. `inherited` holds the GUIDs of the accounts found before
/// cuentas made any (`None` on the first look: every unregistered account is then inherited).
pub fn find(
    register: &BTreeMap<String, Registered>,
    observed: &[Observed],
    inherited: Option<&BTreeSet<String>>,
    settings: &Settings,
    seal: Seal,
) -> Vec<Finding> {
    let managed: BTreeSet<String> = settings.managed_groups.iter().map(|g| g.to_lowercase()).collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for account in observed {
        let sam = account.sam.to_lowercase();
        seen.insert(sam.clone());
        let finding = |kind, detail: String, request| Finding {
            sam: account.sam.clone(),
            kind,
            detail,
            request,
            changed: account.when_changed,
        };
        match register.get(&sam).filter(|r| !r.deleted) {
            None => match inherited {
                None => out.push(finding(
                    FindingKind::Inherited,
                    "en el directorio antes de cuentas".into(),
                    None,
                )),
                Some(known) if known.contains(&account.guid) => {}
                Some(_) => out.push(finding(
                    FindingKind::Unregistered,
                    format!(
                        "en {} sin una solicitud que la creara o cambiara",
                        super::dn::parent(&account.dn)
                    ),
                    None,
                )),
            },
            Some(r) => {
                for detail in differences(r, account, &managed, seal) {
                    out.push(finding(FindingKind::Changed, detail, Some(r.request)));
                }
            }
        }
        if account.contractor && account.enabled {
            match account.expires {
                None => out.push(finding(FindingKind::NoExpiry, "activa y sin accountExpires".into(), None)),
                Some(last) if last < settings.today => out.push(finding(
                    FindingKind::PastExpiry,
                    format!("activa; su contrato venció el {last} (AD impide el inicio de sesión, la cuenta sigue activa)"),
                    None,
                )),
                Some(_) => {}
            }
        }
        let stale = SignedDuration::from_hours(24 * i64::from(settings.stale_days));
        let used = account.last_logon.or(account.when_created);
        if account.enabled && used.is_some_and(|at| settings.now.duration_since(at) > stale) {
            let detail = match account.last_logon {
                Some(at) => format!(
                    "sin iniciar sesión desde {} (lastLogonTimestamp: AD lo replica con hasta 14 días de retraso; \
                     no se actúa con él)",
                    at.strftime("%Y-%m-%d")
                ),
                None => format!(
                    "nunca ha iniciado sesión, y existe desde hace más de {} días",
                    settings.stale_days
                ),
            };
            out.push(finding(FindingKind::Stale, detail, None));
        }
    }
    for (sam, r) in register {
        if !r.deleted && !seen.contains(sam) {
            out.push(Finding {
                sam: r.sam.clone(),
                kind: FindingKind::Gone,
                detail: "cuentas la dejó en el directorio y ya no está en las unidades que gestiona".into(),
                request: Some(r.request),
                changed: None,
            });
        }
    }
    out.sort_by_key(|f| (f.sam.to_lowercase(), f.kind));
    out
}

/// A contract's end to remind of: the account, its last day, and how many business days
/// before it the reminder is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndReminder {
    pub sam: String,
    pub expires: Date,
    pub lead: u32,
}

/// The reminders due on `today`: for each enabled contractor account whose `accountExpires`
/// is today or later, the nearest of `leads` whose day (`before(expires, lead)`, that many
/// business days before) has come, unless `sent` says it went already. Back after days down,
/// one reminder goes, the nearest; the earlier ones are not sent late.
pub fn end_reminders_due(
    accounts: &[Observed],
    today: Date,
    leads: &[u32],
    before: &dyn Fn(Date, u32) -> Date,
    sent: &dyn Fn(&str, Date, u32) -> bool,
) -> Vec<EndReminder> {
    let mut out = Vec::new();
    for a in accounts.iter().filter(|a| a.contractor && a.enabled) {
        let Some(expires) = a.expires.filter(|e| *e >= today) else { continue };
        let Some(lead) = leads.iter().copied().filter(|lead| before(expires, *lead) <= today).min() else {
            continue;
        };
        if !sent(&a.sam.to_lowercase(), expires, lead) {
            out.push(EndReminder { sam: a.sam.clone(), expires, lead });
        }
    }
    out
}

/// What cuentas set that the account no longer holds, one line each.
fn differences(r: &Registered, a: &Observed, managed: &BTreeSet<String>, seal: Seal) -> Vec<String> {
    let mut out = Vec::new();
    let request = r.request;
    let mut compare = |what: &str, set: &Option<String>, now: &str| {
        if let Some(set) = set
            && *set != seal(what, now)
        {
            out.push(format!("{what}: «{now}», no el que puso {request}"));
        }
    };
    compare("department", &r.department, &a.department);
    compare("title", &r.title, &a.title);
    compare("manager", &r.manager, &a.manager);
    if let Some(ou) = &r.ou
        && *ou != super::dn::parent(&a.dn).to_lowercase()
    {
        out.push(format!("OU: {}, no {ou}", super::dn::parent(&a.dn)));
    }
    if let Some(enabled) = r.enabled
        && enabled != a.enabled
    {
        let said = |e: bool| if e { "activa" } else { "inactiva" };
        out.push(format!("estado: {} (cuentas la dejó {})", said(a.enabled), said(enabled)));
    }
    if let Some(expires) = r.expires
        && expires != a.expires
    {
        let said = |d: Option<Date>| d.map_or("nunca".to_string(), |d| d.to_string());
        out.push(format!("accountExpires: {} (cuentas puso {})", said(a.expires), said(expires)));
    }
    let groups: BTreeSet<String> = a.groups.iter().map(|g| g.to_lowercase()).collect();
    for g in r.groups_in.iter().filter(|g| !groups.contains(*g)) {
        out.push(format!("ya no está en el grupo {g} (cuentas la agregó)"));
    }
    for g in groups.iter().filter(|g| managed.contains(*g)) {
        if r.groups_out.contains(g) {
            out.push(format!("en el grupo {g}, del que cuentas la retiró"));
        } else if r.created && !r.groups_in.contains(g) {
            out.push(format!("en el grupo {g}, que cuentas no le dio"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ops::AttributeChange;

    /// A seal that keeps the value, folded: what the tests read.
    fn plain(attribute: &str, value: &str) -> String {
        format!("{attribute}={}", crate::intake::fold(value))
    }

    fn id(n: u32) -> RequestId {
        format!("GU-2026-{n:06}").parse().unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn created(sam: &str) -> Registered {
        let mut r = Registered::new(sam, id(1), at("2026-12-01T15:00:00Z"));
        let create = DirectoryOp::Create {
            sam: sam.into(),
            dn: format!("CN={sam},OU=Funcionarios,OU=Usuarios,DC=e,DC=co"),
            attributes: vec![("department".into(), "Energía".into()), ("title".into(), "Ingeniera".into())],
            expires: None,
        };
        r.apply(&create, id(1), at("2026-12-01T15:00:00Z"), &plain);
        let add = DirectoryOp::AddToGroup { sam: sam.into(), group: "GG-Todos".into() };
        r.apply(&add, id(1), at("2026-12-01T15:00:00Z"), &plain);
        r
    }

    fn observed(sam: &str) -> Observed {
        Observed {
            sam: sam.into(),
            dn: format!("CN={sam},OU=Funcionarios,OU=Usuarios,DC=e,DC=co"),
            guid: format!("guid-{sam}"),
            department: "Energía".into(),
            title: "Ingeniera".into(),
            groups: vec!["GG-Todos".into(), "Domain Users".into()],
            enabled: true,
            when_created: Some(at("2026-12-01T15:00:00Z")),
            ..Observed::default()
        }
    }

    fn settings(groups: &[String]) -> Settings<'_> {
        Settings {
            managed_groups: groups,
            stale_days: 90,
            today: jiff::civil::date(2026, 12, 10),
            now: at("2026-12-10T15:00:00Z"),
        }
    }

    #[test]
    fn what_cuentas_set_and_still_holds_is_no_drift_and_a_change_by_hand_is() {
        let groups = vec!["GG-Todos".to_string(), "VPN".to_string()];
        let mut register = BTreeMap::new();
        register.insert("ana".to_string(), created("ana"));
        register.insert("luis".to_string(), created("luis"));
        let inherited = BTreeSet::new();
        let same = find(
            &register,
            &[observed("ana"), observed("luis")],
            Some(&inherited),
            &settings(&groups),
            &plain,
        );
        assert_eq!(same, vec![]);

        let mut luis = observed("luis");
        luis.department = "Planeación".into();
        luis.groups.push("VPN".into());
        luis.groups.push("Otro grupo".into());
        let found = find(&register, &[observed("ana"), luis], Some(&inherited), &settings(&groups), &plain);
        let details: Vec<&str> = found.iter().map(|f| f.detail.as_str()).collect();
        assert_eq!(
            details,
            [
                "department: «Planeación», no el que puso GU-2026-000001",
                "en el grupo vpn, que cuentas no le dio"
            ]
        );
        assert!(found.iter().all(|f| f.kind == FindingKind::Changed && f.request == Some(id(1))));
    }

    #[test]
    fn accounts_nobody_asked_for_are_inherited_on_the_first_look_then_unregistered() {
        let groups = vec![];
        let register = BTreeMap::new();
        let first = find(&register, &[observed("vieja")], None, &settings(&groups), &plain);
        assert_eq!(first.iter().map(|f| f.kind).collect::<Vec<_>>(), [FindingKind::Inherited]);
        let inherited: BTreeSet<String> = ["guid-vieja".to_string()].into();
        let later = find(
            &register,
            &[observed("vieja"), observed("nueva")],
            Some(&inherited),
            &settings(&groups),
            &plain,
        );
        assert_eq!(later.len(), 1);
        assert_eq!((later[0].sam.as_str(), later[0].kind), ("nueva", FindingKind::Unregistered));
    }

    #[test]
    fn a_contract_s_end_is_reminded_at_the_nearest_lead_once() {
        let calendar = crate::calendar::Calendar::new(
            "America/Bogota",
            jiff::civil::time(7, 30, 0, 0),
            jiff::civil::time(17, 0, 0, 0),
            &[],
        )
        .unwrap();
        let before = |d: Date, n: u32| calendar.business_days_before(d, n);
        let mut ana = observed("ana");
        ana.contractor = true;
        // Friday 15 January 2027; Monday 11 January is a holiday (Reyes).
        ana.expires = Some(jiff::civil::date(2027, 1, 15));
        let mut employee = observed("luis");
        employee.expires = Some(jiff::civil::date(2027, 1, 15));
        let accounts = [ana, employee];
        let due = |y, m, d, sent: &dyn Fn(&str, Date, u32) -> bool| {
            end_reminders_due(&accounts, jiff::civil::date(y, m, d), &[10, 3], &before, sent)
                .into_iter()
                .map(|r| (r.sam, r.lead))
                .collect::<Vec<_>>()
        };
        let none = |_: &str, _: Date, _: u32| false;
        // 10 business days before, the holiday skipped: Wednesday 30 December 2026.
        assert_eq!(
            calendar.business_days_before(jiff::civil::date(2027, 1, 15), 10),
            jiff::civil::date(2026, 12, 30)
        );
        assert_eq!(due(2026, 12, 29, &none), vec![]);
        assert_eq!(due(2026, 12, 30, &none), vec![("ana".to_string(), 10)]);
        let ten = |_: &str, _: Date, lead: u32| lead == 10;
        assert_eq!(due(2027, 1, 8, &ten), vec![]);
        // 3 business days before: Tuesday 12 January (Monday the 11th is a holiday).
        assert_eq!(due(2027, 1, 12, &ten), vec![("ana".to_string(), 3)]);
        // Down since before the first: one reminder, the nearest.
        assert_eq!(due(2027, 1, 13, &none), vec![("ana".to_string(), 3)]);
        // Past the end, or disabled: nothing.
        assert_eq!(due(2027, 1, 16, &none), vec![]);
    }

    #[test]
    fn contractors_stale_and_gone_accounts_are_found() {
        let groups = vec!["GG-Todos".to_string()];
        let mut register = BTreeMap::new();
        let mut contract = created("ana");
        let end = Some(jiff::civil::date(2026, 12, 9));
        let expiry = DirectoryOp::SetExpiry { sam: "ana".into(), expires: end };
        contract.apply(&expiry, id(1), at("2026-12-01T15:00:00Z"), &plain);
        register.insert("ana".to_string(), contract);
        let mut gone = created("borrada");
        let mut deleted = created("retirada");
        deleted.apply(
            &DirectoryOp::Delete { sam: "retirada".into() },
            id(2),
            at("2026-12-05T15:00:00Z"),
            &plain,
        );
        gone.apply(
            &DirectoryOp::SetAttributes {
                sam: "borrada".into(),
                changes: vec![AttributeChange {
                    attribute: "title".into(),
                    from: String::new(),
                    to: "X".into(),
                }],
            },
            id(3),
            at("2026-12-06T15:00:00Z"),
            &plain,
        );
        register.insert("borrada".to_string(), gone);
        register.insert("retirada".to_string(), deleted);
        let mut ana = observed("ana");
        ana.contractor = true;
        ana.expires = Some(jiff::civil::date(2026, 12, 9));
        let mut sin = observed("sinfecha");
        sin.contractor = true;
        let mut dormida = observed("dormida");
        dormida.last_logon = Some(at("2026-08-01T12:00:00Z"));
        let mut inactiva = observed("inactiva");
        inactiva.enabled = false;
        inactiva.when_created = Some(at("2025-01-01T12:00:00Z"));
        let inherited: BTreeSet<String> =
            ["guid-sinfecha", "guid-dormida", "guid-inactiva"].map(String::from).into();
        let found =
            find(&register, &[ana, sin, dormida, inactiva], Some(&inherited), &settings(&groups), &plain);
        let kinds: Vec<(&str, FindingKind)> = found.iter().map(|f| (f.sam.as_str(), f.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("ana", FindingKind::PastExpiry),
                ("borrada", FindingKind::Gone),
                ("dormida", FindingKind::Stale),
                ("sinfecha", FindingKind::NoExpiry),
            ]
        );
        assert!(found[2].detail.contains("14 días"), "{}", found[2].detail);
        assert_eq!(found[1].request, Some(id(3)));
    }
}
