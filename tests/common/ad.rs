//! The test Samba AD DC that `tests/run.sh` starts (`tests/samba.sh`): its address from the
//! environment, a cuentas configuration pointing at it, and an administrator's view to read
//! back what cuentas did.

use std::collections::HashMap;
use std::path::PathBuf;

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

impl Ad {
    /// The DC from the environment. Without it: a failure under `tests/run.sh`, which must have
    /// started one, and a skip under plain `cargo test`.
    pub fn from_env() -> Option<Ad> {
        let var = |k: &str| std::env::var(k).ok();
        match (
            var("CUENTAS_TEST_LDAP_URL"),
            var("CUENTAS_TEST_LDAP_CA"),
            var("CUENTAS_TEST_LDAP_BIND_DN"),
            var("CUENTAS_TEST_LDAP_BIND_PASSWORD_FILE"),
            var("CUENTAS_TEST_LDAP_BASE_DN"),
            var("CUENTAS_TEST_LDAP_ADMIN_DN"),
            var("CUENTAS_TEST_LDAP_ADMIN_PASSWORD"),
        ) {
            (
                Some(url),
                Some(ca),
                Some(bind_dn),
                Some(pw),
                Some(base_dn),
                Some(admin_dn),
                Some(admin_password),
            ) => Some(Ad {
                url,
                ca: ca.into(),
                bind_dn,
                bind_password_file: pw.into(),
                base_dn,
                admin_dn,
                admin_password,
            }),
            _ if std::env::var_os("CUENTAS_TEST_RUNNER").is_some() => {
                panic!(
                    "tests/run.sh must start the test AD DC (tests/samba.sh) and export CUENTAS_TEST_LDAP_*"
                )
            }
            _ => {
                eprintln!(
                    "skipped: no test AD DC (run tests/run.sh, or tests/samba.sh start and source target/samba/env)"
                );
                None
            }
        }
    }

    pub fn users_ou(&self) -> String {
        format!("OU=Usuarios,{}", self.base_dn)
    }

    /// A cuentas configuration in `dir` for this DC, with the matrix and responses given.
    pub fn config(&self, dir: &std::path::Path, responses: &str, extra: &str) -> Config {
        let users = self.users_ou();
        std::fs::write(dir.join("respuestas.csv"), responses).unwrap();
        std::fs::write(
            dir.join("autorizadores.csv"),
            "correo,nombre,rol,dependencias,vigente_desde,vigente_hasta\n\
             talentohumano@upme.test,Talento Humano,talento_humano,*,2024-01-01,\n\
             supervisor@upme.test,Supervisor,supervisor,*,2024-01-01,\n\
             mesa@upme.test,Mesa de Servicio,mesa_servicio,*,2024-01-01,\n",
        )
        .unwrap();
        let toml = format!(
            r#"
state_dir = "var/estado"
[source]
kind = "csv"
path = "respuestas.csv"
[form]
requester_verified = true
requester_domains = ["upme.test"]
[authorizers]
path = "autorizadores.csv"
[directory]
mode = "ldap"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind_dn}"
bind_password = "{pw}"
base_dn = "{base}"
domain = "upme.test"
managed_ous = ["{users}"]
retired_ou = "OU=Retirados,{users}"
allowed_groups = ["GG-Todos", "GG-Energia", "GG-Planeacion", "VPN"]
protected_accounts = ["administrator", "krbtgt", "svc-backup"]
{extra}
[directory.ous]
employee = "OU=Funcionarios,{users}"
contractor = "OU=Contratistas,{users}"
institutional = "OU=Genericas,{users}"
[directory.department_ous]
"Planeación" = "OU=Planeacion,OU=Funcionarios,{users}"
"Energía" = "OU=Energia,OU=Funcionarios,{users}"
[directory.department_groups]
"Energía" = ["GG-Todos", "GG-Energia"]
"Planeación" = ["GG-Todos", "GG-Planeacion"]
[mail]
transport = "file"
spool_dir = "var/correo"
from = "Mesa de Servicio <mesa@upme.test>"
service_desk = "mesa@upme.test"
administrators = ["infra@upme.test"]
"#,
            url = self.url,
            ca = self.ca.display(),
            bind_dn = self.bind_dn,
            pw = self.bind_password_file.display(),
            base = self.base_dn,
        );
        std::fs::write(dir.join("cuentas.toml"), toml).unwrap();
        Config::load(&dir.join("cuentas.toml")).unwrap()
    }

    fn connect(&self) -> LdapConn {
        let pem = std::fs::read(&self.ca).unwrap();
        let config = cuentas::directory::ldap::tls_client_config(&pem).unwrap();
        LdapConn::with_settings(LdapConnSettings::new().set_config(config), &self.url).unwrap()
    }

    /// A connection bound as the domain administrator, to read back and to prepare fixtures.
    pub fn admin(&self) -> LdapConn {
        let mut c = self.connect();
        c.simple_bind(&self.admin_dn, &self.admin_password).unwrap().success().unwrap();
        c
    }

    /// A simple bind as `user`: `Err(text)` carries AD's diagnostic (`data 773` = must change password).
    pub fn bind_as(&self, user: &str, password: &str) -> Result<(), String> {
        let mut c = self.connect();
        match c.simple_bind(user, password) {
            Ok(r) => r.success().map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
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
