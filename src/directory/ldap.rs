//! Active Directory over LDAPS (or StartTLS): reads what `plan()` needs and applies plans,
//! each operation idempotent (read the target, do only what is missing). Every AD quirk lives
//! here: `unicodePwd`, `userAccountControl` bits, FILETIME expiry, `<GUID=…>` targets.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use super::naming;
use super::password::Password;
use super::plan::{AttributeChange, DirectoryOp, Layout, Plan};
use super::snapshot::{Account, Snapshot};
use crate::config::{Config, Secret, SecretError, dn_within};
use crate::request::Request;

mod rights;
mod write;

/// Password rules, read from the domain object.
pub use super::password::PasswordPolicy;
pub use rights::{BindAccount, Rights};

/// `userAccountControl` bits.
const ACCOUNTDISABLE: u32 = 0x2;
const NORMAL_ACCOUNT: u32 = 0x200;
/// `accountExpires` values meaning "never".
const NEVER: [i64; 2] = [0, i64::MAX];
/// Seconds between 1601-01-01 (FILETIME epoch) and 1970-01-01.
const FILETIME_UNIX_OFFSET_SECS: i64 = 11_644_473_600;

/// Numbered names (`{n}`) looked up before choosing; later ones are checked at the add.
const CANDIDATE_NUMBERS: u32 = 9;
/// Document numbers per prefetch search.
const PREFETCH_CHUNK: usize = 100;

/// The attributes read for every account: what plans and the safety rails decide on.
pub const ACCOUNT_ATTRS: [&str; 21] = [
    "sAMAccountName",
    "distinguishedName",
    "givenName",
    "sn",
    "displayName",
    "mail",
    "userPrincipalName",
    "employeeID",
    "employeeType",
    "department",
    "title",
    "manager",
    "userAccountControl",
    "accountExpires",
    "memberOf",
    "adminCount",
    "objectGUID",
    "objectSid",
    "description",
    "proxyAddresses",
    "lockoutTime",
];

/// What went wrong talking to the directory.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("cannot set up TLS for {url}: {reason}")]
    Tls { url: String, reason: String },
    #[error("directory {url} unreachable: {source}")]
    Connect {
        url: String,
        #[source]
        source: Box<ldap3::LdapError>,
    },
    #[error("cannot bind to {url} as {bind_dn}: {source}")]
    Bind {
        url: String,
        bind_dn: String,
        #[source]
        source: Box<ldap3::LdapError>,
    },
    #[error("{op} «{target}»: {text} (LDAP result {rc})")]
    Operation { op: &'static str, target: String, rc: u32, text: String },
    #[error("{op} «{target}»: {source}")]
    Transport {
        op: &'static str,
        target: String,
        #[source]
        source: Box<ldap3::LdapError>,
    },
    #[error("[directory] {0} is not set")]
    NotConfigured(&'static str),
    #[error("cannot read [directory] ca_file {}: {source}", path.display())]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("[directory] bind_password: {0}")]
    Secret(#[from] SecretError),
    /// A safety rail, checked again against what AD holds at the moment of acting.
    #[error("refused: {0}")]
    Refused(String),
    #[error("{0}")]
    Inconsistent(String),
    /// No group has this name under the base (the rights check reports it as missing).
    #[error("group «{name}» does not exist under {base}")]
    NoSuchGroup { name: String, base: String },
    /// Raised by [`Ldap::interrupt_after`], as if the process had died there.
    #[error("interrupted after {0} write operation(s) (crash test)")]
    Interrupted(usize),
}

impl LdapError {
    /// The error as the log may show it: the kind, the LDAP result code and the directory's
    /// text, without the names in the DNs it quotes (an account's CN is its holder's name;
    /// the account name is logged beside). The bind DN and URLs are configuration, and stay.
    pub fn for_log(&self) -> String {
        match self {
            LdapError::Operation { .. }
            | LdapError::Transport { .. }
            | LdapError::Refused(_)
            | LdapError::Inconsistent(_)
            | LdapError::NoSuchGroup { .. } => super::dn::without_names(&self.to_string()),
            other => other.to_string(),
        }
    }

    /// The directory itself cannot be reached or used (no connection, no TLS, the bind refused,
    /// the connection lost or silent): every operation would fail the same way, so it is one
    /// condition to wait out, not a failure of the request at hand.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            LdapError::Connect { .. }
                | LdapError::Bind { .. }
                | LdapError::Transport { .. }
                | LdapError::Tls { .. }
        )
    }

    /// Whether trying again later may succeed: the network, a busy or unavailable server, a
    /// bind that failed (the password may be rotated back); not a refusal or a constraint.
    pub fn is_transient(&self) -> bool {
        match self {
            LdapError::Connect { .. } | LdapError::Bind { .. } | LdapError::Transport { .. } => true,
            LdapError::Interrupted(_) => true,
            // busy, unavailable, unwillingToPerform under load is not retried; timeLimitExceeded, adminLimit, other.
            LdapError::Operation { rc, .. } => matches!(rc, 3 | 11 | 51 | 52 | 80),
            LdapError::Tls { .. }
            | LdapError::Refused(_)
            | LdapError::Inconsistent(_)
            | LdapError::NoSuchGroup { .. }
            | LdapError::NotConfigured(_)
            | LdapError::CaFile { .. }
            | LdapError::Secret(_) => false,
        }
    }
}

/// Connection settings, from `[directory]`.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    pub url: String,
    pub starttls: bool,
    pub ca_pem: Vec<u8>,
    pub bind_dn: String,
    pub password: Secret,
    pub base_dn: String,
    pub timeout: Duration,
    /// `[directory] personal_email_attribute`, read with every account when set.
    pub personal_email_attribute: Option<String>,
}

impl LdapSettings {
    /// The settings of `[directory]` (validated at load), with the CA file and the bind
    /// password read.
    pub fn from_config(config: &Config) -> Result<LdapSettings, LdapError> {
        let d = &config.directory;
        let need = |v: &Option<String>, key| v.clone().ok_or(LdapError::NotConfigured(key));
        let ca_file = d.ca_file.clone().ok_or(LdapError::NotConfigured("ca_file"))?;
        let ca_pem = std::fs::read(&ca_file).map_err(|source| LdapError::CaFile { path: ca_file, source })?;
        Ok(LdapSettings {
            url: need(&d.url, "url")?,
            starttls: d.starttls,
            ca_pem,
            bind_dn: need(&d.bind_dn, "bind_dn")?,
            password: config.bind_password().ok_or(LdapError::NotConfigured("bind_password"))??,
            base_dn: need(&d.base_dn, "base_dn")?,
            timeout: Duration::from_secs(d.timeout_secs),
            personal_email_attribute: d.personal_email_attribute.clone(),
        })
    }
}

/// A connection to AD that reconnects when dropped.
pub struct Ldap {
    settings: LdapSettings,
    tz: TimeZone,
    conn: Option<LdapConn>,
    group_dns: HashMap<String, String>,
    /// Write operations issued, in order (`add CN=…`, `modify …: replace pwdLastSet`…).
    pub writes: Vec<String>,
    interrupt_after: Option<usize>,
    policy: Option<PasswordPolicy>,
    /// Accounts by document number, prefetched for a batch of rows.
    employees: Option<HashMap<String, Vec<Account>>>,
    /// Accounts a plan being applied has read, as they are after its own writes: read once per
    /// plan, not once per operation.
    known: HashMap<String, Account>,
}

impl Ldap {
    /// `tz` is the entity's: contract end dates are whole days there.
    pub fn new(settings: LdapSettings, tz: TimeZone) -> Ldap {
        Ldap {
            settings,
            tz,
            conn: None,
            group_dns: HashMap::new(),
            writes: Vec::new(),
            interrupt_after: None,
            policy: None,
            employees: None,
            known: HashMap::new(),
        }
    }

    /// A bound connection: the one open if it still is, else a new one.
    pub fn connect(&mut self) -> Result<(), LdapError> {
        self.conn().map(|_| ())
    }

    /// Crash tests: the write after the `n`-th from now fails as if the process had died.
    pub fn interrupt_after(&mut self, n: Option<usize>) {
        self.interrupt_after = n.map(|n| self.writes.len() + n);
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, LdapError> {
        tls_client_config(&self.settings.ca_pem)
            .map_err(|reason| LdapError::Tls { url: self.settings.url.clone(), reason })
    }

    fn conn(&mut self) -> Result<&mut LdapConn, LdapError> {
        if self.conn.as_mut().is_some_and(|c| !c.is_closed()) {
            return self.conn.as_mut().ok_or_else(|| LdapError::Inconsistent("connection vanished".into()));
        }
        self.conn = None;
        let s = &self.settings;
        if s.url.starts_with("ldap://") && !s.starttls {
            return Err(LdapError::Tls { url: s.url.clone(), reason: "plain LDAP is refused".into() });
        }
        let settings = LdapConnSettings::new()
            .set_config(self.tls_config()?)
            .set_starttls(s.starttls)
            .set_conn_timeout(s.timeout);
        let mut conn = LdapConn::with_settings(settings, &s.url)
            .map_err(|e| LdapError::Connect { url: s.url.clone(), source: Box::new(e) })?;
        conn.with_timeout(s.timeout);
        let bind =
            |e| LdapError::Bind { url: s.url.clone(), bind_dn: s.bind_dn.clone(), source: Box::new(e) };
        conn.simple_bind(&s.bind_dn, s.password.expose()).map_err(bind)?.success().map_err(bind)?;
        Ok(self.conn.insert(conn))
    }

    /// Runs an operation, dropping the connection on a transport failure so the next one reconnects.
    fn run<T>(
        &mut self,
        op: &'static str,
        target: &str,
        f: impl FnOnce(&mut LdapConn) -> ldap3::result::Result<T>,
    ) -> Result<T, LdapError> {
        let timeout = self.settings.timeout;
        let conn = self.conn()?;
        conn.with_timeout(timeout);
        match f(conn) {
            Ok(v) => Ok(v),
            Err(ldap3::LdapError::LdapResult { result }) => {
                Err(LdapError::Operation { op, target: target.to_string(), rc: result.rc, text: result.text })
            }
            Err(e) => {
                self.conn = None;
                Err(LdapError::Transport { op, target: target.to_string(), source: Box::new(e) })
            }
        }
    }

    fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let (filter, attrs) = (filter.to_string(), attrs.to_vec());
        let entries = self.run("search", base, |c| {
            let r = c.search(base, scope, &filter, attrs)?;
            r.success()
        })?;
        // AD answers subtree searches from the domain root with referrals too: skip them.
        Ok(entries
            .0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect())
    }

    fn write(
        &mut self,
        what: String,
        target: &str,
        op: &'static str,
        f: impl FnOnce(&mut LdapConn) -> ldap3::result::Result<ldap3::LdapResult>,
    ) -> Result<(), LdapError> {
        if self.interrupt_after.is_some_and(|n| self.writes.len() >= n) {
            self.interrupt_after = None;
            return Err(LdapError::Interrupted(self.writes.len()));
        }
        self.run(op, target, |c| f(c)?.success())?;
        self.writes.push(what);
        Ok(())
    }

    /// Minimum length and complexity from the domain object.
    pub fn password_policy(&mut self) -> Result<PasswordPolicy, LdapError> {
        if let Some(p) = self.policy {
            return Ok(p);
        }
        let policy = self.read_password_policy()?;
        self.policy = Some(policy);
        Ok(policy)
    }

    fn read_password_policy(&mut self) -> Result<PasswordPolicy, LdapError> {
        let base = self.settings.base_dn.clone();
        let entries =
            self.search(&base, Scope::Base, "(objectClass=*)", &["minPwdLength", "pwdProperties"])?;
        let first = |e: &SearchEntry, k: &str| {
            e.attrs.get(k).and_then(|v| v.first()).and_then(|v| v.parse::<u64>().ok())
        };
        let e =
            entries.first().ok_or_else(|| LdapError::Inconsistent(format!("no domain object at {base}")))?;
        // An attribute the domain object does not show: AD's default for it.
        let default = PasswordPolicy::AD_DEFAULT;
        Ok(PasswordPolicy {
            min_length: first(e, "minPwdLength").map_or(default.min_length, |n| n as usize),
            complexity: first(e, "pwdProperties").map_or(default.complexity, |p| p & 1 == 1),
        })
    }

    fn accounts(&mut self, filter: &str) -> Result<Vec<Account>, LdapError> {
        let base = self.settings.base_dn.clone();
        let filter = format!("(&(objectCategory=person)(objectClass=user){filter})");
        let attrs = self.account_attrs();
        let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
        let entries = self.search(&base, Scope::Subtree, &filter, &attrs)?;
        Ok(entries.iter().map(|e| self.account(e)).collect())
    }

    /// [`ACCOUNT_ATTRS`], and the personal e-mail's attribute when one is configured.
    fn account_attrs(&self) -> Vec<String> {
        let mut attrs: Vec<String> = ACCOUNT_ATTRS.iter().map(|a| a.to_string()).collect();
        attrs.extend(self.settings.personal_email_attribute.clone());
        attrs
    }

    /// One account by `sAMAccountName`.
    pub fn account_by_sam(&mut self, sam: &str) -> Result<Option<Account>, LdapError> {
        Ok(self.accounts(&format!("(sAMAccountName={})", ldap_escape(sam)))?.into_iter().next())
    }

    fn account(&self, e: &SearchEntry) -> Account {
        let one = |k: &str| e.attrs.get(k).and_then(|v| v.first()).cloned().unwrap_or_default();
        let uac: u32 = one("userAccountControl").parse().unwrap_or(NORMAL_ACCOUNT);
        let expires =
            one("accountExpires").parse::<i64>().ok().and_then(|ft| filetime_to_last_day(ft, &self.tz));
        let guid = octets(e, "objectGUID").first().map(|b| guid_string(b)).unwrap_or_default();
        Account {
            sam: one("sAMAccountName"),
            dn: e.dn.clone(),
            given_name: one("givenName"),
            surname: one("sn"),
            display_name: one("displayName"),
            mail: one("mail"),
            upn: one("userPrincipalName"),
            employee_id: one("employeeID"),
            employee_type: one("employeeType"),
            department: one("department"),
            title: one("title"),
            manager_mail: String::new(),
            manager_dn: one("manager"),
            enabled: uac & ACCOUNTDISABLE == 0,
            uac,
            expires,
            groups: e
                .attrs
                .get("memberOf")
                .map(|v| v.iter().map(|dn| super::dn::first_value(dn)).collect())
                .unwrap_or_default(),
            admin_count: one("adminCount") == "1",
            sid: octets(e, "objectSid").first().and_then(|b| super::acl::sid_string(b)).unwrap_or_default(),
            group_sids: Vec::new(),
            token_group_names: Vec::new(),
            guid,
            description: one("description"),
            proxy_addresses: e.attrs.get("proxyAddresses").cloned().unwrap_or_default(),
            personal_email: self
                .settings
                .personal_email_attribute
                .as_deref()
                .map(|a| one(a).trim().to_lowercase())
                .unwrap_or_default(),
            locked: one("lockoutTime").parse::<i64>().is_ok_and(|t| t > 0),
            when_created: generalized_time(&one("whenCreated")),
            when_changed: generalized_time(&one("whenChanged")),
            last_logon: one("lastLogonTimestamp").parse::<i64>().ok().and_then(filetime_to_timestamp),
        }
    }

    /// The `mail` of the object at `dn` (a manager, wherever it lives); `None` without one.
    pub fn mail_of(&mut self, dn: &str) -> Result<Option<String>, LdapError> {
        let entries = self.search(dn, Scope::Base, "(objectClass=*)", &["mail"])?;
        Ok(entries.first().and_then(|e| e.attrs.get("mail")).and_then(|v| v.first()).cloned())
    }

    /// Every user account of the managed OUs, with the times the drift reading reports: paged
    /// (AD answers at most 1,000 entries to one plain search).
    pub fn managed_accounts(&mut self, ous: &[String]) -> Result<Vec<Account>, LdapError> {
        use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
        let mut attrs = self.account_attrs();
        attrs.extend(["whenCreated", "whenChanged", "lastLogonTimestamp"].map(String::from));
        let filter = "(&(objectCategory=person)(objectClass=user))";
        let mut out = Vec::new();
        for ou in ous {
            let attrs = attrs.clone();
            let entries = self.run("search", ou, |c| {
                let adapters: Vec<Box<dyn Adapter<_, _>>> =
                    vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(500))];
                let mut stream = c.streaming_search_with(adapters, ou, Scope::Subtree, filter, attrs)?;
                let mut entries = Vec::new();
                while let Some(entry) = stream.next()? {
                    entries.push(SearchEntry::construct(entry));
                }
                stream.result().success()?;
                Ok(entries)
            })?;
            out.extend(entries.iter().map(|e| self.account(e)));
        }
        Ok(out)
    }

    /// The part of the directory a request's plan depends on: its account, the person by
    /// document number, accounts whose names start like the candidates, the manager.
    pub fn snapshot_for(&mut self, request: &Request, layout: &Layout) -> Result<Snapshot, LdapError> {
        let s = &request.submission;
        let mut clauses = Vec::new();
        if !s.account.is_empty() {
            clauses.push(format!("(sAMAccountName={})", ldap_escape(s.account.as_str())));
        }
        if !s.manager_email.is_empty() {
            clauses.push(format!("(mail={})", ldap_escape(s.manager_email.as_str())));
        }
        // Exact matches, which AD indexes; a prefix or an unindexed attribute in the filter
        // would make every creation a scan of the whole directory. A name past the candidates
        // looked up here is checked again, exactly, right before the add.
        let domain = layout.config.domain.as_str();
        let single = s.surnames.is_empty();
        for c in naming::candidates(layout.patterns(single), &s.given_names, &s.surnames, CANDIDATE_NUMBERS) {
            clauses.push(name_clauses(&c, domain));
        }
        let mut accounts =
            if clauses.is_empty() { Vec::new() } else { self.accounts(&format!("(|{})", clauses.concat()))? };
        if !s.id_number.is_empty() {
            let same_person = match self.employees.as_ref().and_then(|m| m.get(&s.id_number)) {
                Some(found) => found.clone(),
                None => self.accounts(&format!("(employeeID={})", ldap_escape(s.id_number.as_str())))?,
            };
            accounts.extend(same_person);
        }
        // Managers of the accounts found, for `self` / `manager` grants and reactivations.
        let managers: HashSet<String> =
            accounts.iter().map(|a| a.manager_dn.clone()).filter(|m| !m.is_empty()).collect();
        let known: HashSet<String> = accounts.iter().map(|a| a.dn.to_lowercase()).collect();
        for dn in managers {
            if !known.contains(&dn.to_lowercase()) {
                let attrs = self.account_attrs();
                let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
                let found = self.search(&dn, Scope::Base, "(objectClass=user)", &attrs);
                if let Ok(entries) = found {
                    accounts.extend(entries.iter().map(|e| self.account(e)));
                }
            }
        }
        let mut seen = HashSet::new();
        accounts.retain(|a| seen.insert(a.guid.clone()));
        // Privilege as AD computes it, for the accounts a plan may act on: the one named and
        // a returning person's.
        for a in &mut accounts {
            let acted_on = (!s.account.is_empty() && a.sam.eq_ignore_ascii_case(&s.account))
                || (!s.id_number.is_empty() && a.employee_id == s.id_number);
            if acted_on {
                self.read_token_groups(a)?;
            }
        }
        // The manager's address, for the `manager` grant: from the manager's own entry.
        let mails: HashMap<String, String> =
            accounts.iter().map(|a| (a.dn.to_lowercase(), a.mail.clone())).collect();
        for a in &mut accounts {
            if let Some(mail) = mails.get(&a.manager_dn.to_lowercase()) {
                a.manager_mail = mail.clone();
            }
        }
        Ok(Snapshot::new(accounts))
    }

    /// Every group `account` is in, as AD computes it for a logon (`tokenGroups`: nested
    /// memberships and the primary group included), with the groups' names: what the safety
    /// rails decide privilege on. Read for the accounts a request acts on only (two searches).
    fn read_token_groups(&mut self, account: &mut Account) -> Result<(), LdapError> {
        let entries =
            self.search(&account.dn.clone(), Scope::Base, "(objectClass=user)", &["tokenGroups"])?;
        let sids: Vec<String> = entries
            .iter()
            .flat_map(|e| octets(e, "tokenGroups"))
            .filter_map(|b| super::acl::sid_string(&b))
            .collect();
        if sids.is_empty() {
            return Ok(());
        }
        let filter: String = sids.iter().map(|sid| format!("(objectSid={sid})")).collect();
        let base = self.settings.base_dn.clone();
        let groups =
            self.search(&base, Scope::Subtree, &format!("(&(objectClass=group)(|{filter}))"), &["cn"])?;
        account.token_group_names = groups.iter().map(|g| super::dn::first_value(&g.dn)).collect();
        account.group_sids = sids;
        Ok(())
    }

    /// Looks up many document numbers in a few searches (`employeeID` is often not indexed, so
    /// each search may scan the directory): [`Ldap::snapshot_for`] then uses these results.
    pub fn prefetch_employees(&mut self, ids: &[String]) -> Result<(), LdapError> {
        let mut found: HashMap<String, Vec<Account>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        for chunk in ids.chunks(PREFETCH_CHUNK) {
            let terms: String =
                chunk.iter().map(|id| format!("(employeeID={})", ldap_escape(id.as_str()))).collect();
            for a in self.accounts(&format!("(|{terms})"))? {
                if let Some(list) = found.get_mut(&a.employee_id) {
                    list.push(a);
                }
            }
        }
        self.employees = Some(found);
        Ok(())
    }

    /// Forgets prefetched document numbers (they are only valid for the batch they served).
    pub fn clear_prefetch(&mut self) {
        self.employees = None;
    }

    fn group_dn(&mut self, name: &str) -> Result<String, LdapError> {
        let key = name.to_lowercase();
        if let Some(dn) = self.group_dns.get(&key) {
            return Ok(dn.clone());
        }
        let base = self.settings.base_dn.clone();
        let filter = format!("(&(objectCategory=group)(cn={}))", ldap_escape(name));
        let entries = self.search(&base, Scope::Subtree, &filter, &["cn"])?;
        match entries.as_slice() {
            [one] => {
                self.group_dns.insert(key, one.dn.clone());
                Ok(one.dn.clone())
            }
            [] => Err(LdapError::NoSuchGroup { name: name.to_string(), base }),
            _ => Err(LdapError::Inconsistent(format!("more than one group is called «{name}»"))),
        }
    }

    /// The account an operation targets, read fresh (once per plan) and checked against the
    /// safety rails.
    fn target(&mut self, sam: &str, layout: &Layout) -> Result<Account, LdapError> {
        let account = match self.known.get(&sam.to_lowercase()) {
            Some(a) => a.clone(),
            None => {
                let mut a = self.account_by_sam(sam)?.ok_or_else(|| {
                    LdapError::Inconsistent(format!("account «{sam}» does not exist (any more)"))
                })?;
                self.read_token_groups(&mut a)?;
                self.known.insert(sam.to_lowercase(), a.clone());
                a
            }
        };
        layout.guard(&account).map_err(|e| LdapError::Refused(e.reason()))?;
        Ok(account)
    }

    /// Records what a write changed in the plan's view of an account.
    fn update_known(&mut self, sam: &str, f: impl FnOnce(&mut Account)) {
        if let Some(a) = self.known.get_mut(&sam.to_lowercase()) {
            f(a);
        }
    }
}

/// A TLS client that trusts only the CA certificates in `ca_pem`. Our own provider and
/// config: with two crypto providers linked, the default builder panics.
pub fn tls_client_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| format!("CA file: {e}"))?;
        roots.add(cert).map_err(|e| format!("CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA file holds no certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Everything that makes `name` taken: as an account name, or as the address of someone's
/// UPN, mail or alias.
/// A binary attribute's values. ldap3 files an attribute under `attrs` when every value
/// happens to be valid UTF-8 (a built-in group's SID always is, a GUID now and then), else
/// under `bin_attrs`: both are read.
fn octets(e: &SearchEntry, name: &str) -> Vec<Vec<u8>> {
    match e.bin_attrs.get(name) {
        Some(values) => values.clone(),
        None => e.attrs.get(name).into_iter().flatten().map(|v| v.as_bytes().to_vec()).collect(),
    }
}

fn name_clauses(name: &str, domain: &str) -> String {
    let n = ldap_escape(name);
    let d = ldap_escape(domain);
    format!("(sAMAccountName={n})(userPrincipalName={n}@{d})(mail={n}@{d})(proxyAddresses=smtp:{n}@{d})")
}

/// `<GUID=…>`: AD resolves it whatever the account's DN is now.
fn guid_dn(account: &Account) -> String {
    if account.guid.is_empty() { account.dn.clone() } else { format!("<GUID={}>", account.guid) }
}

/// The `objectGUID` bytes in AD's string form (first three fields little-endian).
pub fn guid_string(b: &[u8]) -> String {
    if b.len() != 16 {
        return String::new();
    }
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// `unicodePwd`: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &Password) -> Vec<u8> {
    format!("\"{}\"", password.expose()).encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// `accountExpires` for "valid through `last_day`": the FILETIME of the next midnight, local time.
pub fn end_of_day_filetime(last_day: Date, tz: &TimeZone) -> i64 {
    let next = last_day.tomorrow().unwrap_or(last_day);
    let instant = next.to_datetime(jiff::civil::Time::midnight()).to_zoned(tz.clone()).map(|z| z.timestamp());
    let secs = instant.map_or(0, |t| t.as_second());
    (secs + FILETIME_UNIX_OFFSET_SECS) * 10_000_000
}

/// An LDAP GeneralizedTime (`20261207045000.0Z`), to the second.
fn generalized_time(text: &str) -> Option<Timestamp> {
    let digits = text.get(..14)?;
    let at = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", digits).ok()?;
    at.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// A FILETIME (`lastLogonTimestamp`); `None` for 0, never.
fn filetime_to_timestamp(filetime: i64) -> Option<Timestamp> {
    (filetime > 0)
        .then(|| Timestamp::from_second(filetime / 10_000_000 - FILETIME_UNIX_OFFSET_SECS).ok())
        .flatten()
}

/// The last valid day of an `accountExpires` value, or `None` for "never".
pub fn filetime_to_last_day(filetime: i64, tz: &TimeZone) -> Option<Date> {
    if NEVER.contains(&filetime) {
        return None;
    }
    let secs = filetime / 10_000_000 - FILETIME_UNIX_OFFSET_SECS;
    let t = Timestamp::from_second(secs - 1).ok()?;
    Some(t.to_zoned(tz.clone()).date())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_the_end_of_the_local_day_and_reads_back() {
        let tz = TimeZone::get("America/Bogota").unwrap();
        let ft = end_of_day_filetime(Date::constant(2026, 12, 31), &tz);
        // 2027-01-01T05:00:00Z
        assert_eq!(ft, (1_798_779_600 + FILETIME_UNIX_OFFSET_SECS) * 10_000_000);
        assert_eq!(filetime_to_last_day(ft, &tz), Some(Date::constant(2026, 12, 31)));
        assert_eq!(filetime_to_last_day(0, &tz), None);
        assert_eq!(filetime_to_last_day(i64::MAX, &tz), None);
    }

    #[test]
    fn guids_and_rdns_read_as_ad_writes_them() {
        let b =
            [0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];
        assert_eq!(guid_string(&b), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(super::super::dn::first_value("CN=Grupo\\, Energía,OU=Grupos,DC=x"), "Grupo, Energía");
        assert_eq!(super::super::dn::first_value("CN=GG-Todos,OU=Grupos"), "GG-Todos");
    }

    #[test]
    fn the_log_sees_directory_errors_without_the_names_in_their_dns() {
        let e = LdapError::Operation {
            op: "add",
            target: "CN=Ana Díaz,OU=Funcionarios,DC=upme,DC=test".into(),
            rc: 32,
            text: "00002030: objectclass: Cannot add CN=Ana Díaz,OU=Funcionarios,DC=upme,DC=test, parent does not exist".into(),
        };
        assert_eq!(
            e.for_log(),
            "add «CN=…,OU=Funcionarios,DC=upme,DC=test»: 00002030: objectclass: Cannot add \
             CN=…,OU=Funcionarios,DC=upme,DC=test, parent does not exist (LDAP result 32)"
        );
        assert!(e.to_string().contains("Ana Díaz"), "the request's history keeps it whole");
        let refused = LdapError::Refused("«CN=Ana Díaz,OU=Otros,DC=x» is outside the managed OUs".into());
        assert_eq!(refused.for_log(), "refused: «CN=…,OU=Otros,DC=x» is outside the managed OUs");
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        let p = Password::generate(12).unwrap();
        let bytes = unicode_pwd(&p);
        assert_eq!(&bytes[..2], &[b'"', 0]);
        assert_eq!(bytes.len(), (p.expose().len() + 2) * 2);
    }
}
