//! The test Samba AD DC that `tests/run.sh` starts (`tests/samba.sh`): its address from the
//! environment, a cuentas configuration pointing at it, and an administrator's view to read
//! back what cuentas did. `benches/ldap_create.rs` measures against it with the same settings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cuentas::config::Config;
use cuentas::directory::ldap::ACCOUNT_ATTRS;
use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry};

/// Where the test DC is.
#[derive(Debug, Clone)]
pub struct Ad {
    pub url: String,
    pub ca: PathBuf,
    pub bind_dn: String,
    pub bind_password_file: PathBuf,
    pub base_dn: String,
    pub admin_dn: String,
    pub admin_password: String,
}

/// A department of the test DC's layout (`tests/fixtures/ad-seed.ldif`) as the configuration
/// maps it: its OU (above the users' OU) and the groups its people get.
pub struct Department {
    pub name: &'static str,
    pub ou: &'static str,
    pub groups: &'static [&'static str],
}

pub const PLANNING: Department = Department {
    name: "Planeación",
    ou: "OU=Planeacion,OU=Funcionarios",
    groups: &["GG-Todos", "GG-Planeacion"],
};
pub const ENERGY: Department =
    Department { name: "Energía", ou: "OU=Energia,OU=Funcionarios", groups: &["GG-Todos", "GG-Energia"] };

impl Ad {
    /// The DC from the `CUENTAS_TEST_LDAP_*` variables, or the names of those unset or empty.
    pub fn from_vars() -> Result<Ad, String> {
        let mut missing = Vec::new();
        let mut var = |k: &'static str| {
            let v = std::env::var(k).ok().filter(|v| !v.is_empty());
            if v.is_none() {
                missing.push(k);
            }
            v.unwrap_or_default()
        };
        let ad = Ad {
            url: var("CUENTAS_TEST_LDAP_URL"),
            ca: var("CUENTAS_TEST_LDAP_CA").into(),
            bind_dn: var("CUENTAS_TEST_LDAP_BIND_DN"),
            bind_password_file: var("CUENTAS_TEST_LDAP_BIND_PASSWORD_FILE").into(),
            base_dn: var("CUENTAS_TEST_LDAP_BASE_DN"),
            admin_dn: var("CUENTAS_TEST_LDAP_ADMIN_DN"),
            admin_password: var("CUENTAS_TEST_LDAP_ADMIN_PASSWORD"),
        };
        if missing.is_empty() { Ok(ad) } else { Err(format!("{} not set", missing.join(", "))) }
    }

    /// The DC from the environment. The live tests that use it are `#[ignore]`d, so that a
    /// plain `cargo test` reports them as not run; `tests/run.sh` starts the DC and runs them,
    /// and any other run of them without it fails here, saying what is missing.
    pub fn from_env() -> Ad {
        Ad::from_vars().unwrap_or_else(|missing| {
            panic!(
                "this live test needs the test AD DC: run tests/run.sh, or tests/samba.sh start target/samba \
                 and source target/samba/env ({missing})"
            )
        })
    }

    pub fn users_ou(&self) -> String {
        format!("OU=Usuarios,{}", self.base_dn)
    }

    pub fn department_ou(&self, department: &Department) -> String {
        format!("{},{}", department.ou, self.users_ou())
    }

    /// `DC=upme,DC=test` → `upme.test`.
    pub fn domain(&self) -> String {
        self.base_dn
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .filter(|(k, _)| k.eq_ignore_ascii_case("DC"))
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The service account's password, read from its file.
    pub fn bind_password(&self) -> Result<String, String> {
        let text = std::fs::read_to_string(&self.bind_password_file).map_err(|e| {
            format!("cannot read the bind password {}: {e}", self.bind_password_file.display())
        })?;
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    }

    /// A cuentas configuration in `dir` for this DC, with the matrix and responses given;
    /// `extra` goes into its `[directory]` table. Contracts are not ended by cuentas unless
    /// `extra` says so (`disable_at_contract_end = true`): the test DC's managed OUs hold every
    /// test's accounts, and one test's clock must not disable another's contractors.
    pub fn config(&self, dir: &Path, responses: &str, extra: &str) -> Config {
        let extra = if extra.contains("disable_at_contract_end") {
            extra.to_string()
        } else {
            format!("disable_at_contract_end = false\n{extra}")
        };
        let users = self.users_ou();
        let domain = self.domain();
        std::fs::write(dir.join("respuestas.csv"), responses).unwrap();
        std::fs::write(
            dir.join("autorizadores.csv"),
            format!(
                "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta\n\
                 talentohumano@{domain},Talento Humano,talento_humano,*,2024-01-01,\n\
                 supervisor@{domain},Supervisor,supervisor,*,2024-01-01,\n\
                 mesa@{domain},Mesa de Servicio,mesa_servicio,*,2024-01-01,\n"
            ),
        )
        .unwrap();
        let mut department_ous = String::new();
        let mut department_groups = String::new();
        for d in [PLANNING, ENERGY] {
            department_ous.push_str(&format!("\"{}\" = \"{}\"\n", d.name, self.department_ou(&d)));
            let groups: Vec<String> = d.groups.iter().map(|g| format!("\"{g}\"")).collect();
            department_groups.push_str(&format!("\"{}\" = [{}]\n", d.name, groups.join(", ")));
        }
        let toml = format!(
            r#"
state_dir = "var/estado"
[source]
kind = "csv"
path = "respuestas.csv"
start_at = 2
[form]
requester_verified = true
requester_domains = ["{domain}"]
departments = ["{planning}", "{energy}"]
[authorizers]
path = "autorizadores.csv"
[directory]
mode = "ldap"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind_dn}"
bind_password = "{pw}"
base_dn = "{base}"
domain = "{domain}"
managed_ous = ["{users}"]
retired_ou = "OU=Retirados,{users}"
allowed_groups = ["GG-Todos", "GG-Energia", "GG-Planeacion", "VPN"]
open_groups = ["VPN"]
protected_accounts = ["administrator", "krbtgt", "svc-backup"]
{extra}
[directory.ous]
employee = "OU=Funcionarios,{users}"
contractor = "OU=Contratistas,{users}"
institutional = "OU=Genericas,{users}"
[directory.department_ous]
{department_ous}[directory.department_groups]
{department_groups}[mail]
transport = "file"
spool_dir = "var/correo"
# The test DC's passwords are throwaway, and the tests read them back from the spool.
allow_credentials_in_spool = true
from = "Mesa de Servicio <mesa@{domain}>"
service_desk = "mesa@{domain}"
administrators = ["infra@{domain}"]
"#,
            url = self.url,
            ca = self.ca.display(),
            bind_dn = self.bind_dn,
            pw = self.bind_password_file.display(),
            base = self.base_dn,
            planning = PLANNING.name,
            energy = ENERGY.name,
        );
        std::fs::write(dir.join("cuentas.toml"), toml).unwrap();
        Config::load(&dir.join("cuentas.toml")).unwrap()
    }

    /// A connection over LDAPS trusting only the test CA, not bound yet.
    pub fn connect(&self) -> Result<LdapConn, String> {
        let pem =
            std::fs::read(&self.ca).map_err(|e| format!("cannot read the CA {}: {e}", self.ca.display()))?;
        let config = cuentas::directory::ldap::tls_client_config(&pem)?;
        let settings = LdapConnSettings::new().set_config(config).set_conn_timeout(Duration::from_secs(10));
        LdapConn::with_settings(settings, &self.url)
            .map_err(|e| format!("the test DC does not answer at {}: {e}", self.url))
    }

    /// A simple bind of `conn` as `dn`: `Err(text)` carries AD's diagnostic (`data 773` = must
    /// change password).
    pub fn bind(&self, conn: &mut LdapConn, dn: &str, password: &str) -> Result<(), String> {
        conn.simple_bind(dn, password)
            .and_then(|r| r.success())
            .map(|_| ())
            .map_err(|e| format!("cannot bind to {} as {dn}: {e}", self.url))
    }

    /// A connection bound as the domain administrator, to read back and to prepare fixtures.
    pub fn admin(&self) -> LdapConn {
        let mut c = self.connect().unwrap();
        self.bind(&mut c, &self.admin_dn, &self.admin_password).unwrap();
        c
    }

    /// A simple bind as `user` on a new connection ([`Ad::bind`]).
    pub fn bind_as(&self, user: &str, password: &str) -> Result<(), String> {
        self.bind(&mut self.connect().unwrap(), user, password)
    }

    /// Every entry matching `filter` under the base, with `attrs` (plus the DN).
    pub fn search(&self, filter: &str, attrs: &[&str]) -> Vec<Entry> {
        let mut c = self.admin();
        let (rs, _) =
            c.search(&self.base_dn, Scope::Subtree, filter, attrs.to_vec()).unwrap().success().unwrap();
        rs.into_iter()
            .filter(|e| !e.is_ref())
            .map(SearchEntry::construct)
            .map(|e| Entry { dn: e.dn, attrs: e.attrs })
            .collect()
    }

    /// The user with this `sAMAccountName`, if any: what the daemon reads of an account, and
    /// what it writes without reading back (`cn`, `pwdLastSet`).
    pub fn user(&self, sam: &str) -> Option<Entry> {
        let filter = format!("(&(objectClass=user)(sAMAccountName={}))", ldap3::ldap_escape(sam));
        let attrs: Vec<&str> = ACCOUNT_ATTRS.iter().copied().chain(["cn", "pwdLastSet"]).collect();
        self.search(&filter, &attrs).into_iter().next()
    }
}

/// A directory entry as read back.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dn: String,
    pub attrs: HashMap<String, Vec<String>>,
}

impl Entry {
    pub fn get(&self, attr: &str) -> &str {
        self.attrs.get(attr).and_then(|v| v.first()).map_or("", String::as_str)
    }

    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self
            .attrs
            .get("memberOf")
            .map(|v| {
                v.iter()
                    .map(|dn| dn.split(',').next().unwrap_or("").trim_start_matches("CN=").to_string())
                    .collect()
            })
            .unwrap_or_default();
        g.sort();
        g
    }

    pub fn uac(&self) -> u32 {
        self.get("userAccountControl").parse().unwrap()
    }
}

/// The demo's header row, for writing responses.
pub fn header() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/demo/respuestas.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string()
}

/// One response row in the demo's columns, from (field key, value) pairs.
pub fn row(values: &[(&str, &str)]) -> String {
    const FIELDS: [&str; 21] = [
        "submitted_at",
        "requester",
        "kind",
        "holder_type",
        "given_names",
        "surnames",
        "id_type",
        "id_number",
        "personal_email",
        "department",
        "title",
        "manager_email",
        "contract_number",
        "contract_start",
        "contract_end",
        "account",
        "effective_date",
        "return_date",
        "groups",
        "on_site",
        "notes",
    ];
    let mut cells = vec![String::new(); FIELDS.len()];
    cells[0] = "27/11/2026 08:00:00".into();
    for (k, v) in values {
        let i = FIELDS.iter().position(|f| f == k).unwrap_or_else(|| panic!("unknown field {k}"));
        cells[i] = v.to_string();
    }
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    w.write_record(&cells).unwrap();
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// A run-unique suffix (digits), so tests sharing one DC never meet.
#[allow(clippy::disallowed_methods)] // uniqueness, not time: any clock will do
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}{:05}", std::process::id() % 10_000, nanos % 100_000)
}

/// [`unique`] spelled with letters, for names (digits are not allowed in names).
pub fn letters(u: &str) -> String {
    u.chars().map(|c| (b'a' + c.to_digit(10).unwrap_or(0) as u8) as char).collect()
}
