//! What the directory holds, as `plan()` sees it: accounts indexed by name, mail and
//! `employeeID`. The dry run loads it from a JSON file; the LDAP reader will fill the same type.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

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
}

impl Account {
    /// Disabled, or past its expiry: a returning person's account.
    pub fn is_inactive(&self, today: Date) -> bool {
        !self.enabled || self.expires.is_some_and(|e| e < today)
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
    /// Local parts of `mail` and `userPrincipalName`: a new account's address must not clash.
    names: HashMap<String, usize>,
}

impl Snapshot {
    pub fn new(accounts: Vec<Account>) -> Snapshot {
        let mut s = Snapshot { accounts, ..Snapshot::default() };
        for (i, a) in s.accounts.iter().enumerate() {
            s.by_sam.insert(a.sam.to_lowercase(), i);
            if !a.employee_id.is_empty() {
                s.by_employee_id.entry(a.employee_id.clone()).or_default().push(i);
            }
            if !a.mail.is_empty() {
                s.by_mail.insert(a.mail.to_lowercase(), i);
            }
            let proxies = a.proxy_addresses.iter().map(|p| p.split_once(':').map_or(p.as_str(), |(_, a)| a));
            for address in [a.mail.as_str(), a.upn.as_str()].into_iter().chain(proxies) {
                if let Some((local, _)) = address.split_once('@') {
                    s.names.insert(local.to_lowercase(), i);
                }
            }
        }
        s
    }

    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SnapshotError::Read { path: path.to_path_buf(), source })?;
        let file: File = serde_json::from_str(&text)
            .map_err(|source| SnapshotError::Parse { path: path.to_path_buf(), source })?;
        Ok(Snapshot::new(file.accounts))
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
