//! What the directory holds, as `plan()` sees it: accounts indexed by name, mail and
//! `employeeID`. The dry run loads it from a JSON file and carries its plans out on it; the LDAP
//! reader fills the same type.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::ops::DirectoryOp;

/// One user account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// `sAMAccountName`
    pub sam: String,
    /// `distinguishedName`
    pub dn: String,
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub surname: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub mail: String,
    #[serde(default)]
    pub upn: String,
    /// `employeeID`: the document number.
    #[serde(default)]
    pub employee_id: String,
    #[serde(default)]
    pub employee_type: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub title: String,
    /// The manager's mail.
    #[serde(default)]
    pub manager_mail: String,
    /// The manager's DN (what AD holds in `manager`).
    #[serde(default)]
    pub manager_dn: String,
    pub enabled: bool,
    /// `userAccountControl` as read (0 when the snapshot does not say).
    #[serde(default)]
    pub uac: u32,
    /// Last day of validity (`accountExpires`), if any.
    #[serde(default)]
    pub expires: Option<Date>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `adminCount=1`: a privileged account, never touched.
    #[serde(default)]
    pub admin_count: bool,
    /// `objectSid` (string form): the built-in Administrator's and krbtgt's are well known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sid: String,
    /// `tokenGroups`: the SID of every group the account is in, nested memberships and its
    /// primary group included (read for the accounts a request acts on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_sids: Vec<String>,
    /// The names of those groups, for `protected_groups` named by the entity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_group_names: Vec<String>,
    /// `objectGUID`, the account's identity whatever its DN becomes.
    #[serde(default)]
    pub guid: String,
    /// `description`: the request id that created or last reactivated it.
    #[serde(default)]
    pub description: String,
    /// `proxyAddresses` (`smtp:alias@domain`), which new addresses must not clash with either.
    #[serde(default)]
    pub proxy_addresses: Vec<String>,
    /// The personal e-mail on record in the attribute `[directory] personal_email_attribute`.
    #[serde(default)]
    pub personal_email: String,
    /// Locked out by failed logons (`lockoutTime` > 0): a reset clears it.
    #[serde(default)]
    pub locked: bool,
    /// `whenCreated`, `whenChanged` and `lastLogonTimestamp` (which AD replicates with up to 14
    /// days of lag): what the drift reading reports, read only by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_created: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_changed: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_logon: Option<jiff::Timestamp>,
}

impl Account {
    /// Disabled, or past its expiry: a returning person's account.
    pub fn is_inactive(&self, today: Date) -> bool {
        !self.enabled || self.expires.is_some_and(|e| e < today)
    }

    /// `userAccountControl`'s ACCOUNTDISABLE bit with it, when it was read.
    fn set_enabled(&mut self, enabled: bool) {
        const ACCOUNTDISABLE: u32 = 0x2;
        self.enabled = enabled;
        if self.uac != 0 {
            self.uac = if enabled { self.uac & !ACCOUNTDISABLE } else { self.uac | ACCOUNTDISABLE };
        }
    }

    /// Takes the value a plan wrote to one of the attributes plans read back; others are kept
    /// by AD only. `personal_email_attribute` is `[directory] personal_email_attribute`.
    pub fn set(&mut self, attribute: &str, value: &str, personal_email_attribute: Option<&str>) {
        let field = match attribute {
            "givenName" => &mut self.given_name,
            "sn" => &mut self.surname,
            "displayName" => &mut self.display_name,
            "mail" => &mut self.mail,
            "userPrincipalName" => &mut self.upn,
            "employeeID" => &mut self.employee_id,
            "employeeType" => &mut self.employee_type,
            "department" => &mut self.department,
            "title" => &mut self.title,
            "manager" => &mut self.manager_dn,
            "description" => &mut self.description,
            a if Some(a) == personal_email_attribute => &mut self.personal_email,
            _ => return,
        };
        *field = value.to_string();
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    accounts: Vec<Account>,
}

/// A snapshot that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read directory snapshot {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("directory snapshot {path} is not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
}

/// Accounts with lookups by every name that must stay unique.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    accounts: Vec<Account>,
    by_sam: HashMap<String, usize>,
    by_employee_id: HashMap<String, Vec<usize>>,
    by_mail: HashMap<String, usize>,
    /// DNs as [`super::dn::normal`] writes them (a manager is named by DN).
    by_dn: HashMap<String, usize>,
    /// Local parts of `mail` and `userPrincipalName`: a new account's address must not clash.
    names: HashMap<String, usize>,
}

impl Snapshot {
    pub fn new(accounts: Vec<Account>) -> Snapshot {
        let mut s = Snapshot { accounts, ..Snapshot::default() };
        s.index();
        s
    }

    fn index(&mut self) {
        self.by_sam.clear();
        self.by_employee_id.clear();
        self.by_mail.clear();
        self.by_dn.clear();
        self.names.clear();
        for i in 0..self.accounts.len() {
            self.index_one(i);
        }
    }

    /// Adds the account at `i` to the lookups (a new one, or every one when they are rebuilt).
    fn index_one(&mut self, i: usize) {
        let a = &self.accounts[i];
        self.by_sam.insert(a.sam.to_lowercase(), i);
        if !a.employee_id.is_empty() {
            self.by_employee_id.entry(a.employee_id.clone()).or_default().push(i);
        }
        if !a.mail.is_empty() {
            self.by_mail.insert(a.mail.to_lowercase(), i);
        }
        self.by_dn.insert(super::dn::key(&a.dn), i);
        let proxies = a.proxy_addresses.iter().map(|p| p.split_once(':').map_or(p.as_str(), |(_, a)| a));
        for address in [a.mail.as_str(), a.upn.as_str()].into_iter().chain(proxies) {
            if let Some((local, _)) = address.split_once('@') {
                self.names.insert(local.to_lowercase(), i);
            }
        }
    }

    /// Carries out one operation on the accounts held, as AD would: the dry run's directory
    /// after each plan, so that later steps are decided on what earlier ones did. An operation
    /// on an account that is not there changes nothing (AD would refuse it; the dry run says
    /// what it would do).
    pub fn apply(&mut self, op: &DirectoryOp, request_id: &str, personal_email_attribute: Option<&str>) {
        if let DirectoryOp::Create { sam, dn, attributes, expires } = op {
            if self.by_sam(sam).is_none() {
                let mut account = Account {
                    sam: sam.clone(),
                    dn: dn.clone(),
                    enabled: true,
                    expires: *expires,
                    guid: format!("dry-run-{}", sam.to_lowercase()),
                    description: request_id.to_string(),
                    ..Account::default()
                };
                for (attribute, value) in attributes {
                    account.set(attribute, value, personal_email_attribute);
                }
                account.manager_mail = Some(&account.manager_dn)
                    .filter(|dn| !dn.is_empty())
                    .and_then(|dn| self.by_dn(dn))
                    .map(|m| m.mail.clone())
                    .unwrap_or_default();
                self.accounts.push(account);
                self.index_one(self.accounts.len() - 1);
            } else if let Some(a) = self.account_mut(sam) {
                // An interrupted creation finished: enabled, with a new password.
                a.set_enabled(true);
            }
            return;
        }
        if let DirectoryOp::Delete { sam } = op {
            self.accounts.retain(|a| !a.sam.eq_ignore_ascii_case(sam));
            self.index();
            return;
        }
        let Some(account) = self.account_mut(op.sam()) else { return };
        let mut reindex = false;
        match op {
            DirectoryOp::ResetPassword { .. } => account.locked = false,
            DirectoryOp::SetAttributes { changes, .. } => {
                let before = looked_up_by(account);
                for c in changes {
                    account.set(&c.attribute, &c.to, personal_email_attribute);
                }
                reindex = looked_up_by(account) != before;
            }
            DirectoryOp::SetExpiry { expires, .. } => account.expires = *expires,
            DirectoryOp::Enable { .. } => account.set_enabled(true),
            DirectoryOp::Disable { .. } => account.set_enabled(false),
            DirectoryOp::AddToGroup { group, .. } => {
                if !account.groups.iter().any(|g| g.eq_ignore_ascii_case(group)) {
                    account.groups.push(group.clone());
                }
            }
            DirectoryOp::RemoveFromGroup { group, .. } => {
                account.groups.retain(|g| !g.eq_ignore_ascii_case(group))
            }
            DirectoryOp::Move { to_ou, .. } => {
                account.dn = format!("{},{to_ou}", super::dn::first_rdn(&account.dn));
                reindex = true;
            }
            DirectoryOp::Create { .. } | DirectoryOp::Delete { .. } => {}
        }
        // The lookups hold positions and names: rebuilt only when those changed (each
        // rebuild reads every account, and a trial applies a plan at a time).
        if reindex {
            self.index();
        }
    }

    fn account_mut(&mut self, sam: &str) -> Option<&mut Account> {
        let i = *self.by_sam.get(&sam.to_lowercase())?;
        self.accounts.get_mut(i)
    }

    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SnapshotError::Read { path: path.to_path_buf(), source })?;
        let file: File = serde_json::from_str(&text)
            .map_err(|source| SnapshotError::Parse { path: path.to_path_buf(), source })?;
        Ok(Snapshot::new(file.accounts))
    }

    /// Writes the accounts as [`Snapshot::load`] reads them, replacing `path` whole (a kill
    /// leaves the old file or the new one).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Out<'a> {
            accounts: &'a [Account],
        }
        let text = serde_json::to_vec(&Out { accounts: &self.accounts }).map_err(std::io::Error::other)?;
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.iter()
    }

    pub fn by_sam(&self, sam: &str) -> Option<&Account> {
        self.by_sam.get(&sam.to_lowercase()).map(|&i| &self.accounts[i])
    }

    /// The account at `dn`, however it is written.
    pub fn by_dn(&self, dn: &str) -> Option<&Account> {
        self.by_dn.get(&super::dn::key(dn)).map(|&i| &self.accounts[i])
    }

    pub fn by_mail(&self, mail: &str) -> Option<&Account> {
        self.by_mail.get(&mail.to_lowercase()).map(|&i| &self.accounts[i])
    }

    pub fn by_employee_id(&self, id: &str) -> impl Iterator<Item = &Account> {
        self.by_employee_id.get(id).into_iter().flatten().map(|&i| &self.accounts[i])
    }

    /// Whether `name` is used as an account name or as the local part of a mail or UPN.
    pub fn name_in_use(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        self.by_sam.contains_key(&name) || self.names.contains_key(&name)
    }
}

/// What the lookups of one account are made of.
fn looked_up_by(a: &Account) -> [String; 5] {
    [a.sam.clone(), a.employee_id.clone(), a.mail.clone(), a.upn.clone(), a.proxy_addresses.join("\n")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::ops::AttributeChange;

    #[test]
    fn the_dry_run_snapshot_follows_its_operations() {
        let mut s = Snapshot::default();
        let ou = "OU=Funcionarios,DC=x";
        s.apply(
            &DirectoryOp::Create {
                sam: "ana.gomez".into(),
                dn: format!("CN=Ana Gómez,{ou}"),
                attributes: vec![
                    ("mail".into(), "ana.gomez@x".into()),
                    ("otherMailbox".into(), "ana@gmail.com".into()),
                ],
                expires: None,
            },
            "GU-1",
            Some("otherMailbox"),
        );
        let a = s.by_mail("ana.gomez@x").unwrap();
        assert!(a.enabled && a.description == "GU-1" && a.personal_email == "ana@gmail.com");
        assert!(s.name_in_use("ANA.GOMEZ"));

        let change =
            AttributeChange { attribute: "department".into(), from: String::new(), to: "Energía".into() };
        for op in [
            DirectoryOp::SetAttributes { sam: "ana.gomez".into(), changes: vec![change] },
            DirectoryOp::Disable { sam: "ana.gomez".into() },
            DirectoryOp::AddToGroup { sam: "ana.gomez".into(), group: "VPN".into() },
            DirectoryOp::Move { sam: "ana.gomez".into(), to_ou: "OU=Retirados,DC=x".into() },
        ] {
            s.apply(&op, "GU-2", None);
        }
        let a = s.by_sam("ana.gomez").unwrap();
        assert_eq!(
            (a.enabled, a.department.as_str(), a.dn.as_str()),
            (false, "Energía", "CN=Ana Gómez,OU=Retirados,DC=x")
        );
        assert_eq!(a.groups, ["VPN"]);

        s.apply(&DirectoryOp::Delete { sam: "ana.gomez".into() }, "GU-3", None);
        assert!(s.is_empty() && !s.name_in_use("ana.gomez"));
    }

    /// The lookups follow what changes them (a new account, its addresses, its OU), and only
    /// those are rebuilt.
    #[test]
    fn the_lookups_follow_new_accounts_changed_addresses_and_moves() {
        let mut s = Snapshot::default();
        let create = |sam: &str, dn: &str, manager: &str| DirectoryOp::Create {
            sam: sam.into(),
            dn: dn.into(),
            attributes: vec![("mail".into(), format!("{sam}@x")), ("manager".into(), manager.into())],
            expires: None,
        };
        s.apply(&create("jefa", "CN=Pérez\\, Ana,OU=F,DC=x", ""), "GU-1", None);
        // The manager named as AD may write her DN: another case, escaping and spacing.
        s.apply(&create("ana", "CN=Ana,OU=F,DC=x", "cn=PÉREZ\\2C Ana, ou=f,dc=X"), "GU-2", None);
        assert_eq!(s.by_sam("ana").unwrap().manager_mail, "jefa@x");
        assert_eq!(s.by_dn("cn=ana,ou=f,dc=x").unwrap().sam, "ana");
        let change = AttributeChange { attribute: "mail".into(), from: "ana@x".into(), to: "ana.b@x".into() };
        s.apply(&DirectoryOp::SetAttributes { sam: "ana".into(), changes: vec![change] }, "GU-3", None);
        assert!(s.by_mail("ana@x").is_none());
        assert_eq!(s.by_mail("ana.b@x").unwrap().sam, "ana");
        s.apply(&DirectoryOp::Move { sam: "ana".into(), to_ou: "OU=R,DC=x".into() }, "GU-4", None);
        assert!(s.by_dn("CN=Ana,OU=F,DC=x").is_none());
        assert_eq!(s.by_dn("CN=Ana,OU=R,DC=x").unwrap().sam, "ana");
        s.apply(&DirectoryOp::Delete { sam: "jefa".into() }, "GU-5", None);
        assert_eq!(s.by_mail("ana.b@x").unwrap().sam, "ana", "positions moved: rebuilt");
        assert!(s.by_dn("CN=Pérez\\, Ana,OU=F,DC=x").is_none());
    }
}
