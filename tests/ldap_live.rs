//! Live tests against the Samba AD DC of `tests/run.sh`: every directory operation read back,
//! crash-replay after each LDAP write, and the safety rails.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::ad::{Ad, header, letters, unique};
use common::case::{Case, admin_add_member, admin_replace, append, create_row, kind_row, t, t0};
use cuentas::directory::Directory;
use cuentas::engine::Engine;
use cuentas::request::StateName;

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn creations_are_read_back_and_the_password_must_be_changed() {
    let ad = Ad::from_env();
    let u = unique();
    let surname = format!("Ñúñez{}", letters(&u[..5]));
    let rows = [
        create_row(&u, "Funcionario", "Ángela", &surname, "Planeación", &[("groups", "VPN")]),
        create_row(
            &format!("{u}1"),
            "Contratista",
            "Tomás",
            &surname,
            "Energía",
            &[
                ("contract_number", "C-1"),
                ("contract_start", "01/12/2026"),
                ("contract_end", "30/06/2027"),
                ("manager_email", "juan.perez@upme.test"),
            ],
        ),
    ];
    let mut case = Case::new(&ad, &rows, "");
    case.engine.cycle(t0()).unwrap();

    let employee = case.request(2);
    assert_eq!(employee.state.name(), StateName::Closed, "{}", employee.state.reason());
    let sam = employee.account.clone().unwrap();
    assert!(sam.starts_with("angela.nunez"), "{sam}");
    assert!(sam.len() <= 20);
    let e = ad.user(&sam).unwrap();
    assert_eq!(e.dn, format!("CN=Ángela {surname},OU=Planeacion,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(e.get("givenName"), "Ángela");
    assert_eq!(e.get("sn"), surname);
    assert_eq!(e.get("displayName"), format!("Ángela {surname}"));
    assert_eq!(e.get("mail"), format!("{sam}@upme.test"));
    assert_eq!(e.get("userPrincipalName"), format!("{sam}@upme.test"));
    assert_eq!(e.get("employeeID"), format!("9{u}"));
    assert_eq!(e.get("employeeType"), "Funcionario");
    assert_eq!(e.get("department"), "Planeación");
    assert_eq!(e.get("description"), employee.id.to_string());
    assert_eq!(e.uac(), 512);
    assert_eq!(e.get("pwdLastSet"), "0");
    assert!(["0", "9223372036854775807"].contains(&e.get("accountExpires")));
    assert_eq!(e.groups(), ["GG-Planeacion", "GG-Todos", "VPN"]);
    let password = case.password_sent_to(&format!("p{u}@gmail.com"));
    let err = ad.bind_as(&format!("{sam}@upme.test"), &password).unwrap_err();
    assert!(err.contains("data 773"), "must change password at next logon: {err}");
    assert!(ad.bind_as(&format!("{sam}@upme.test"), "not-the-password").unwrap_err().contains("data 52e"));

    let contractor = case.request(3);
    assert_eq!(contractor.state.name(), StateName::Closed, "{}", contractor.state.reason());
    let csam = contractor.account.clone().unwrap();
    let c = ad.user(&csam).unwrap();
    assert!(c.dn.ends_with(&format!("OU=Contratistas,{}", ad.users_ou())), "{}", c.dn);
    // The end of 30 June 2027 in Bogotá: 1 July 05:00 UTC, as FILETIME.
    assert_eq!(c.get("accountExpires"), ((1_814_418_000i64 + 11_644_473_600) * 10_000_000).to_string());
    assert_eq!(c.get("manager"), format!("CN=Juan Perez,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(c.groups(), ["GG-Energia", "GG-Todos"]);
    let cpassword = case.password_sent_to(&format!("p{u}1@gmail.com"));
    assert!(ad.bind_as(&format!("{csam}@upme.test"), &cpassword).unwrap_err().contains("data 773"));

    // Nothing is written twice.
    let before = case.ldap_writes().len();
    case.engine.cycle(t0() + jiff::SignedDuration::from_mins(5)).unwrap();
    assert_eq!(case.ldap_writes().len(), before);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn reset_modify_disable_enable_transfer_and_delete_read_back() {
    let ad = Ad::from_env();
    let u = unique();
    let surname = format!("Operaciones{}", letters(&u));
    let mut case = Case::new(&ad, &[create_row(&u, "Funcionario", "Lucía", &surname, "Energía", &[])], "");
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let before = ad.user(&sam).unwrap();
    assert_eq!(before.groups(), ["GG-Energia", "GG-Todos"]);
    // A bit cuentas must leave alone (PASSWD_NOTREQD; not "password never expires", which
    // would also cancel must-change-at-next-logon).
    admin_replace(&ad, &before.dn, "userAccountControl", "544");
    let mail = format!("{sam}@upme.test");

    append(
        &case,
        &[
            kind_row(
                &mail,
                "Cambio de clave",
                &sam,
                &[("personal_email", &format!("p{u}@gmail.com")), ("on_site", "No")],
            ),
            kind_row(
                "talentohumano@upme.test",
                "Modificación de cuenta",
                &sam,
                &[("title", "Asesora"), ("groups", "VPN"), ("manager_email", "juan.perez@upme.test")],
            ),
            kind_row("talentohumano@upme.test", "Inactivación de cuenta", &sam, &[]),
        ],
    );
    case.engine.cycle(t(10)).unwrap();
    for row in [3, 4, 5] {
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Closed, "row {row}: {}", r.state.reason());
    }
    let e = ad.user(&sam).unwrap();
    assert_eq!(e.uac(), 544 | 2, "disabled, other bits kept");
    assert_eq!(e.get("pwdLastSet"), "0");
    // The reset's password went to the personal address on record (the creation's).
    let password = case.password_sent_to(&format!("p{u}@gmail.com"));
    assert!(ad.bind_as(&mail, &password).unwrap_err().contains("data 533"), "disabled now");
    assert_eq!(e.get("title"), "Asesora");
    assert_eq!(e.get("manager"), format!("CN=Juan Perez,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(e.groups(), ["GG-Energia", "GG-Todos", "VPN"]);
    assert_eq!(e.uac(), 544 | 2, "disabled, other bits kept");

    append(
        &case,
        &[
            kind_row("talentohumano@upme.test", "Reactivación de cuenta", &sam, &[]),
            kind_row(
                "talentohumano@upme.test",
                "Traslado de dependencia",
                &sam,
                &[("department", "Planeación"), ("effective_date", "27/11/2026")],
            ),
        ],
    );
    case.engine.cycle(t(20)).unwrap();
    for row in [6, 7] {
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Closed, "row {row}: {}", r.state.reason());
    }
    let e = ad.user(&sam).unwrap();
    assert_eq!(e.uac(), 544, "enabled, other bits kept");
    assert!(ad.bind_as(&mail, &password).unwrap_err().contains("data 773"));
    assert_eq!(e.dn, format!("CN=Lucía {surname},OU=Planeacion,OU=Funcionarios,{}", ad.users_ou()));
    assert_eq!(e.get("department"), "Planeación");
    assert_eq!(e.groups(), ["GG-Planeacion", "GG-Todos", "VPN"]);

    // Deletion only ever from the retired OU.
    let config = ad.config(
        case.dir.path(),
        &std::fs::read_to_string(case.dir.path().join("respuestas.csv")).unwrap(),
        "",
    );
    let layout = cuentas::directory::plan::Layout::from_config(&config);
    let Directory::Ldap(ldap) = case.engine.directory_mut() else { panic!() };
    let delete = cuentas::directory::plan::Plan {
        account: sam.clone(),
        ops: vec![cuentas::directory::plan::DirectoryOp::Delete { sam: sam.clone() }],
        ..Default::default()
    };
    let refused = ldap.apply(&delete, None, &layout, "GU-2026-999999").unwrap_err();
    assert!(refused.to_string().contains("retired OU"), "{refused}");
    assert!(ad.user(&sam).is_some());
    let retire = cuentas::directory::plan::Plan {
        account: sam.clone(),
        ops: vec![
            cuentas::directory::plan::DirectoryOp::Disable { sam: sam.clone() },
            cuentas::directory::plan::DirectoryOp::Move {
                sam: sam.clone(),
                to_ou: format!("OU=Retirados,{}", ad.users_ou()),
            },
        ],
        ..Default::default()
    };
    ldap.apply(&retire, None, &layout, "GU-2026-999999").unwrap();
    assert!(ad.user(&sam).unwrap().dn.contains("OU=Retirados"));
    ldap.apply(&delete, None, &layout, "GU-2026-999999").unwrap();
    assert!(ad.user(&sam).is_none());
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_returning_contractor_gets_the_disabled_account_back() {
    let ad = Ad::from_env();
    let u = unique();
    let surname = format!("Regreso{}", letters(&u));
    let contract = |end: &'static str| {
        [("contract_number", "C-9"), ("contract_start", "01/12/2026"), ("contract_end", end)]
    };
    let mut case = Case::new(
        &ad,
        &[create_row(&u, "Contratista", "Óscar", &surname, "Energía", &contract("31/12/2026"))],
        "",
    );
    case.engine.cycle(t(0)).unwrap();
    let sam = case.request(2).account.clone().unwrap();
    let dn = ad.user(&sam).unwrap().dn;
    // A year later the contract ended: disabled and expired.
    admin_replace(&ad, &dn, "userAccountControl", "514");
    admin_replace(&ad, &dn, "accountExpires", "133800000000000000");

    append(&case, &[create_row(&u, "Contratista", "Óscar", &surname, "Energía", &contract("30/06/2027"))]);
    case.engine.cycle(t(10)).unwrap();
    let again = case.request(3);
    assert_eq!(again.state.name(), StateName::Closed, "{}", again.state.reason());
    assert_eq!(again.account.as_deref(), Some(sam.as_str()), "the same account, not a second one");
    assert_eq!(ad.search(&format!("(employeeID=9{u})"), &["cn"]).len(), 1);
    let e = ad.user(&sam).unwrap();
    assert_eq!(e.uac(), 512);
    assert_eq!(e.get("accountExpires"), ((1_814_418_000i64 + 11_644_473_600) * 10_000_000).to_string());
    assert_eq!(e.get("description"), again.id.to_string());
    let password = case.password_sent_to(&format!("p{u}@gmail.com"));
    assert!(ad.bind_as(&format!("{sam}@upme.test"), &password).unwrap_err().contains("data 773"));
}

/// Strips the account name from write lines, so runs for different people compare.
fn shape(writes: &[String], sam: &str) -> Vec<String> {
    writes.iter().map(|w| if w.starts_with("add CN=") { "add".into() } else { w.replace(sam, "X") }).collect()
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_creation_interrupted_after_each_ldap_write_completes_with_only_what_is_missing() {
    let ad = Ad::from_env();
    let u = unique();
    let contract =
        [("contract_number", "C-7"), ("contract_start", "01/12/2026"), ("contract_end", "30/06/2027")];
    let person = |k: usize| {
        create_row(
            &format!("{u}{k}"),
            "Contratista",
            "Ana",
            &format!("Crash{}{}", letters(&u), letters(&k.to_string())),
            "Energía",
            &contract,
        )
    };
    // The uninterrupted run, for reference.
    let mut case = Case::new(&ad, &[person(9)], "");
    case.engine.cycle(t(0)).unwrap();
    let reference_sam = case.request(2).account.clone().unwrap();
    let full = shape(&case.ldap_writes(), &reference_sam);
    assert_eq!(
        full,
        [
            "add",
            "modify X: replace pwdLastSet",
            "modify GG-Todos: add member X",
            "modify GG-Energia: add member X"
        ]
    );
    for k in 0..full.len() {
        let row = 3 + k as u32;
        append(&case, &[person(k)]);
        let start = case.ldap_writes().len();
        case.interrupt_after(Some(k));
        case.engine.cycle(t(10 * row as i64)).unwrap();
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Executing, "k={k}: {}", r.state.reason());
        let sam = r.account.clone().unwrap();
        let first = shape(&case.ldap_writes()[start..], &sam);
        assert_eq!(first, full[..k], "k={k}");

        let start = case.ldap_writes().len();
        case.engine.cycle(t(10 * row as i64 + 5)).unwrap();
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Closed, "k={k}: {}", r.state.reason());
        let replay = shape(&case.ldap_writes()[start..], &sam);
        let expected: Vec<String> = if k == 0 {
            full.clone()
        } else {
            // The password of the interrupted run was never sent: a new one is set (the
            // credential step is one unit), then whatever was still missing.
            let mut e =
                vec!["modify X: replace unicodePwd".to_string(), "modify X: replace pwdLastSet".to_string()];
            e.extend(full[k.max(2)..].iter().cloned());
            e
        };
        assert_eq!(replay, expected, "k={k}");
        assert_eq!(ad.search(&format!("(employeeID=9{u}{k})"), &["cn"]).len(), 1, "exactly one account");
        let e = ad.user(&sam).unwrap();
        assert_eq!((e.uac(), e.get("pwdLastSet")), (512, "0"));
        assert_eq!(e.groups(), ["GG-Energia", "GG-Todos"]);
        let password = case.password_sent_to(&format!("p{u}{k}@gmail.com"));
        assert!(
            ad.bind_as(&format!("{sam}@upme.test"), &password).unwrap_err().contains("data 773"),
            "k={k}"
        );
    }
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn a_transfer_interrupted_after_each_ldap_write_completes_with_only_what_is_missing() {
    let ad = Ad::from_env();
    let u = unique();
    let people: Vec<(String, String)> = (0..5)
        .map(|k| (format!("{u}{k}"), format!("Traslado{}{}", letters(&u), letters(&k.to_string()))))
        .collect();
    let (mut case, sams) = Case::employees(&ad, "Raúl", &people);
    let transfer = |sam: &str| {
        kind_row(
            "talentohumano@upme.test",
            "Traslado de dependencia",
            sam,
            &[("department", "Planeación"), ("title", "Asesor"), ("effective_date", "27/11/2026")],
        )
    };
    append(&case, &[transfer(&sams[4])]);
    let start = case.ldap_writes().len();
    case.engine.cycle(t(5)).unwrap();
    let full = shape(&case.ldap_writes()[start..], &sams[4]);
    assert_eq!(full.len(), 4, "{full:?}");
    assert!(full[0].starts_with("modify X: replace department, title"), "{full:?}");
    assert!(full[1].starts_with("modrdn X"), "{full:?}");
    assert_eq!(full[2..], ["modify GG-Energia: delete member X", "modify GG-Planeacion: add member X"]);
    for k in 0..4 {
        let row = 8 + k as u32;
        append(&case, &[transfer(&sams[k])]);
        let start = case.ldap_writes().len();
        case.interrupt_after(Some(k));
        case.engine.cycle(t(10 * row as i64)).unwrap();
        assert_eq!(shape(&case.ldap_writes()[start..], &sams[k]), full[..k], "k={k}");
        let start = case.ldap_writes().len();
        case.engine.cycle(t(10 * row as i64 + 5)).unwrap();
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Closed, "k={k}: {}", r.state.reason());
        assert_eq!(
            shape(&case.ldap_writes()[start..], &sams[k]),
            full[k..],
            "k={k}: the replay does only what is missing"
        );
        let e = ad.user(&sams[k]).unwrap();
        assert!(e.dn.contains("OU=Planeacion,OU=Funcionarios"), "{}", e.dn);
        assert_eq!((e.get("department"), e.get("title")), ("Planeación", "Asesor"));
        assert_eq!(e.groups(), ["GG-Planeacion", "GG-Todos"]);
    }
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn protected_privileged_and_outside_accounts_are_refused() {
    let ad = Ad::from_env();
    let u = unique();
    let mut case = Case::new(
        &ad,
        &[
            create_row(&u, "Funcionario", "Elena", &format!("Protegida{}", letters(&u)), "Energía", &[]),
            create_row(
                &format!("{u}1"),
                "Funcionario",
                "Elena",
                &format!("Tarde{}", letters(&u)),
                "Energía",
                &[],
            ),
        ],
        "",
    );
    case.engine.cycle(t(0)).unwrap();
    let in_group = case.request(2).account.clone().unwrap();
    let later = case.request(3).account.clone().unwrap();
    admin_add_member(&ad, "CN=Print Operators,CN=Builtin,DC=upme,DC=test", &ad.user(&in_group).unwrap().dn);
    let watched = ["administrator", "protegido.admin", "externo.proveedor", "svc-backup", in_group.as_str()];
    let before: Vec<(u32, String)> = watched
        .iter()
        .map(|s| ad.user(s).unwrap())
        .map(|e| (e.uac(), e.get("pwdLastSet").to_string()))
        .collect();
    let reset = |sam: &str| {
        kind_row("talentohumano@upme.test", "Cambio de clave", sam, &[("personal_email", "x@gmail.com")])
    };
    let disable = |sam: &str| kind_row("talentohumano@upme.test", "Inactivación de cuenta", sam, &[]);
    append(
        &case,
        &[
            reset("Administrator"),
            disable("protegido.admin"),
            reset("externo.proveedor"),
            disable("svc-backup"),
            disable(&in_group),
            // Planned while harmless; by its date the account is privileged.
            kind_row(
                "talentohumano@upme.test",
                "Inactivación de cuenta",
                &later,
                &[("effective_date", "28/11/2026")],
            ),
        ],
    );
    case.engine.cycle(t(10)).unwrap();
    for row in 4..=8 {
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Rejected, "row {row}: {}", r.state.reason());
    }
    assert_eq!(case.request(9).state.name(), StateName::Scheduled);
    admin_add_member(&ad, "CN=Domain Admins,CN=Users,DC=upme,DC=test", &ad.user(&later).unwrap().dn);
    case.engine.cycle("2026-11-28T12:31:00Z".parse().unwrap()).unwrap();
    let r = case.request(9);
    // Decided again at its date against the account as it is then: refused.
    assert!(
        matches!(r.state.name(), StateName::Failed | StateName::NeedsInfo | StateName::Rejected),
        "{:?}",
        r.state
    );
    assert!(
        r.state.reason().contains("protegida") || r.state.reason().contains("refused"),
        "{}",
        r.state.reason()
    );
    assert_eq!(ad.user(&later).unwrap().uac(), 512, "still enabled");
    let after: Vec<(u32, String)> = watched
        .iter()
        .map(|s| ad.user(s).unwrap())
        .map(|e| (e.uac(), e.get("pwdLastSet").to_string()))
        .collect();
    assert_eq!(before, after, "nothing protected was touched");
}

/// Gives Schema Admins the name a Spanish DC gives it for the life of a test, and its own name
/// back after, even when the test fails. (No other test uses that group; Domain Admins, which
/// the others use, keeps its name: tests run at the same time. Samba refuses to rename the
/// built-in groups.)
struct SpanishSchemaAdmins<'a>(&'a Ad);

const DOMAIN_ADMINS: &str = "CN=Domain Admins,CN=Users,DC=upme,DC=test";
const SCHEMA_ADMINS: &str = "CN=Schema Admins,CN=Users,DC=upme,DC=test";
const ADMINISTRADORES_DE_ESQUEMA: &str = "CN=Administradores de esquema,CN=Users,DC=upme,DC=test";

impl<'a> SpanishSchemaAdmins<'a> {
    fn rename(ad: &'a Ad) -> SpanishSchemaAdmins<'a> {
        ad.admin()
            .modifydn(SCHEMA_ADMINS, "CN=Administradores de esquema", true, None)
            .unwrap()
            .success()
            .unwrap();
        SpanishSchemaAdmins(ad)
    }
}

impl Drop for SpanishSchemaAdmins<'_> {
    fn drop(&mut self) {
        let _ = self.0.admin().modifydn(ADMINISTRADORES_DE_ESQUEMA, "CN=Schema Admins", true, None);
    }
}

fn new_group(ad: &Ad, dn: &str, sam: &str) {
    let attrs = vec![
        ("objectClass", std::collections::HashSet::from(["group"])),
        ("sAMAccountName", std::collections::HashSet::from([sam])),
    ];
    ad.admin().add(dn, attrs).unwrap().success().unwrap();
}

/// Privilege as AD computes it for a logon: a membership through a group nested in Domain
/// Admins, Domain Admins as the primary group (which `memberOf` never lists), and an
/// administrative group under the name a Spanish DC gives it each make an account untouchable;
/// and `check` refuses a group nested in Domain Admins as one requests may add members to.
#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn privilege_is_known_by_sid_nested_primary_and_in_any_language() {
    let ad = Ad::from_env();
    let u = unique();
    let l = letters(&u);
    let mut case = Case::new(
        &ad,
        &[
            create_row(&u, "Funcionario", "Nicanor", &format!("Anidado{l}"), "Energía", &[]),
            create_row(&format!("{u}1"), "Funcionario", "Primo", &format!("Primario{l}"), "Energía", &[]),
            create_row(&format!("{u}2"), "Funcionario", "Serafín", &format!("Esquema{l}"), "Energía", &[]),
        ],
        "",
    );
    case.engine.cycle(t(0)).unwrap();
    let nested = case.request(2).account.clone().unwrap();
    let primary = case.request(3).account.clone().unwrap();
    let operator = case.request(4).account.clone().unwrap();

    // A support group inside Domain Admins, and Nicanor in it.
    let support_sam = format!("Soporte{l}");
    let support = format!("CN={support_sam},OU=Grupos,{}", ad.users_ou());
    new_group(&ad, &support, &support_sam);
    admin_add_member(&ad, DOMAIN_ADMINS, &support);
    admin_add_member(&ad, &support, &ad.user(&nested).unwrap().dn);
    // Primo's primary group is Domain Admins: AD lists it in no memberOf.
    let primary_dn = ad.user(&primary).unwrap().dn;
    admin_add_member(&ad, DOMAIN_ADMINS, &primary_dn);
    admin_replace(&ad, &primary_dn, "primaryGroupID", "512");
    let drop_link =
        vec![ldap3::Mod::Delete("member", std::collections::HashSet::from([primary_dn.as_str()]))];
    let _ = ad.admin().modify(DOMAIN_ADMINS, drop_link);
    let listed = ad.user(&primary).unwrap().groups();
    assert!(!listed.iter().any(|g| g == "Domain Admins"), "the primary group is not in memberOf: {listed:?}");
    // Serafín in Schema Admins, which a Spanish DC calls «Administradores de esquema».
    let spanish = SpanishSchemaAdmins::rename(&ad);
    admin_add_member(&ad, ADMINISTRADORES_DE_ESQUEMA, &ad.user(&operator).unwrap().dn);
    let watched = |ad: &Ad| -> Vec<(u32, String)> {
        [&nested, &primary, &operator]
            .iter()
            .map(|s| ad.user(s).unwrap())
            .map(|e| (e.uac(), e.get("pwdLastSet").into()))
            .collect()
    };
    let before = watched(&ad);

    let disable = |sam: &str| kind_row("talentohumano@upme.test", "Inactivación de cuenta", sam, &[]);
    let reset = |sam: &str| {
        kind_row("talentohumano@upme.test", "Cambio de clave", sam, &[("personal_email", "x@gmail.com")])
    };
    append(&case, &[disable(&nested), reset(&primary), disable(&operator), reset(&operator)]);
    case.engine.cycle(t(10)).unwrap();
    for row in 5..=8 {
        let r = case.request(row);
        assert_eq!(r.state.name(), StateName::Rejected, "row {row}: {}", r.state.reason());
        assert!(r.state.reason().contains("protegida"), "row {row}: {}", r.state.reason());
    }
    assert_eq!(watched(&ad), before, "no account touched");
    let _ = ad.admin().modify(
        ADMINISTRADORES_DE_ESQUEMA,
        vec![ldap3::Mod::Delete(
            "member",
            std::collections::HashSet::from([ad.user(&operator).unwrap().dn.as_str()]),
        )],
    );
    drop(spanish);

    // `check` refuses the nested group as one a request could add members to.
    let config = case.dir.path().join("cuentas.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let with_support = toml.replace(
        "allowed_groups = [\"GG-Todos\"",
        &format!("allowed_groups = [\"{support_sam}\", \"GG-Todos\""),
    );
    assert_ne!(toml, with_support);
    std::fs::write(&config, with_support).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("FAIL")
            && l.contains(&support_sam)
            && l.contains("is or is inside the administrative group")),
        "{stderr}"
    );
    assert!(!out.status.success());

    admin_replace(&ad, &primary_dn, "primaryGroupID", "513");
    let _ = ad.admin().modify(
        DOMAIN_ADMINS,
        vec![ldap3::Mod::Delete("member", std::collections::HashSet::from([support.as_str()]))],
    );
    ad.admin().delete(&support).unwrap().success().unwrap();
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn the_eleventh_disable_in_an_hour_is_held_until_released() {
    let ad = Ad::from_env();
    let u = unique();
    let people: Vec<(String, String)> = (0..11)
        .map(|k| {
            (format!("{}{k:02}", &u[..6]), format!("Limite{}{}", letters(&u), letters(&format!("{k:02}"))))
        })
        .collect();
    let (mut case, sams) = Case::employees(&ad, "Iván", &people);
    let disables: Vec<String> =
        sams.iter().map(|s| kind_row("talentohumano@upme.test", "Inactivación de cuenta", s, &[])).collect();
    append(&case, &disables);
    case.engine.cycle(t(10)).unwrap();
    let states: Vec<StateName> = (13..24).map(|row| case.request(row).state.name()).collect();
    assert_eq!(states.iter().filter(|s| **s == StateName::Closed).count(), 10, "{states:?}");
    assert_eq!(states[10], StateName::Held);
    assert_eq!(ad.user(&sams[10]).unwrap().uac(), 512);
    // One alert, however many polls find it held.
    case.engine.cycle(t(11)).unwrap();
    let alerts = std::fs::read_dir(case.dir.path().join("var/correo"))
        .unwrap()
        .map(|e| common::Mail::parse(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
        // Besides the morning's list of requests waiting on the entity.
        .filter(|m| m.to == "infra@upme.test" && !m.subject.contains("esperan a la entidad"))
        .count();
    assert_eq!(alerts, 1);

    // `cuentas release` lets it through, even within the hour.
    let config = case.dir.path().join("cuentas.toml");
    let Case { dir, engine } = case;
    drop(engine);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .args(["release", "--all", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut case =
        Case { engine: Engine::new(cuentas::config::Config::load(&config).unwrap()).unwrap(), dir };
    case.engine.cycle(t(12)).unwrap();
    let held = case.request(23);
    assert_eq!(held.state.name(), StateName::Closed, "{}", held.state.reason());
    assert!(held.history.iter().any(|h| h.reason == "liberada por un administrador"));
    assert_eq!(ad.user(&sams[10]).unwrap().uac(), 514);
}

/// Issue 22: a held disable is released through the service desk's form, by an administrador
/// of the matrix other than the person who asked for it; the one who asked may not, nor may the
/// service desk. Each is answered through the relay; the history says who released it.
#[test]
#[ignore = "live: the test AD DC and the SMTP relay (tests/run.sh runs them)"]
fn a_held_disable_is_released_through_the_desk_form_by_another_person_only() {
    let ad = Ad::from_env();
    let domain = ad.domain();
    let u = unique();
    let people: Vec<(String, String)> = (0..2)
        .map(|k| {
            (format!("{}{k:02}", &u[..6]), format!("Mesa{}{}", letters(&u), letters(&format!("{k:02}"))))
        })
        .collect();
    let rows: Vec<String> = people
        .iter()
        .map(|(id, surname)| create_row(id, "Funcionario", "Iván", surname, "Energía", &[]))
        .collect();
    // One disable an hour; the desk form's export beside the responses. Talento Humano is also
    // an administrador: only the four-eyes rule keeps it from releasing its own request.
    let more = format!(
        "talentohumano@{domain},Talento Humano,administrador,*,2024-01-01,\n\
         jefe.infra@{domain},Jefe de Infraestructura,administrador,*,2024-01-01,\n"
    );
    let desk = |case: &Case, lines: &[String]| {
        let mut text = "Marca temporal,Dirección de correo electrónico,Solicitud,Acción,Paso,Observaciones\n"
            .to_string();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(case.dir.path().join("mesa.csv"), text).unwrap();
    };
    let case = Case::with_authorizers(&ad, &rows, "max_disables_per_hour = 1", &more);
    desk(&case, &[]);
    // Mail through the relay, the desk's export beside the responses.
    let sink = common::smtp::Sink::start(&common::smtp::env(), &case.dir.path().join("Maildir"), 0);
    let toml = case.dir.path().join("cuentas.toml");
    let config =
        common::smtp::through(&std::fs::read_to_string(&toml).unwrap(), &common::smtp::env(), sink.port);
    std::fs::write(&toml, config + "\n[desk]\npath = \"mesa.csv\"\n").unwrap();
    let mut case = case.reopen();
    case.engine.cycle(t(0)).unwrap();
    let sams: Vec<String> = (2..4).map(|row| case.request(row).account.clone().unwrap()).collect();
    let disables: Vec<String> = sams
        .iter()
        .map(|s| kind_row(&format!("talentohumano@{domain}"), "Inactivación de cuenta", s, &[]))
        .collect();
    append(&case, &disables);
    case.engine.cycle(t(10)).unwrap();
    let held = case.request(5);
    assert_eq!(case.request(4).state.name(), StateName::Closed);
    assert_eq!(held.state.name(), StateName::Held, "{}", held.state.reason());
    assert_eq!(ad.user(&sams[1]).unwrap().uac(), 512);

    let id = held.id.to_string();
    let release = |who: &str, minute: u32| {
        format!("01/12/2026 09:{minute:02}:00,{who}@{domain},{id},Liberar inactivaciones retenidas,,")
    };
    let answers = |_: &Case, to: &str| -> Vec<common::Mail> {
        sink.mails().into_iter().filter(|m| m.to == to && m.message_id.starts_with("<mesa.")).collect()
    };
    // The one who asked, then the service desk: refused, answered, the account still enabled.
    let mut lines = vec![release("talentohumano", 1), release("mesa", 2)];
    desk(&case, &lines);
    case.engine.cycle(t(11)).unwrap();
    assert_eq!(case.request(5).state.name(), StateName::Held);
    assert_eq!(ad.user(&sams[1]).unwrap().uac(), 512);
    let own = answers(&case, &format!("talentohumano@{domain}"));
    assert_eq!(own.len(), 1);
    assert!(own[0].body.contains("Usted pidió esta inactivación: la libera otra persona"), "{}", own[0].body);
    let desk_answer = answers(&case, &format!("mesa@{domain}"));
    assert!(desk_answer[0].body.contains("administrador de cuentas"), "{}", desk_answer[0].body);

    // Another administrador: released, carried out at once, within the hour, and told.
    lines.push(release("jefe.infra", 3));
    desk(&case, &lines);
    case.engine.cycle(t(12)).unwrap();
    assert_eq!(ad.user(&sams[1]).unwrap().uac(), 514);
    // Its requester is told at the next cycle's mail, then it closes.
    case.engine.cycle(t(13)).unwrap();
    let released = case.request(5);
    assert_eq!(released.state.name(), StateName::Closed, "{}", released.state.reason());
    let by = format!("formulario de la mesa: jefe.infra@{domain}");
    assert!(
        released
            .history
            .iter()
            .any(|h| h.actor.to_string() == by && h.reason == "liberada por un administrador"),
        "{:?}",
        released.history
    );
    let told = answers(&case, &format!("jefe.infra@{domain}"));
    assert!(told[0].body.contains("liberada"), "{}", told[0].body);
    // Read once: the earlier refusals are not acted on or answered again.
    case.engine.cycle(t(14)).unwrap();
    assert_eq!(answers(&case, &format!("talentohumano@{domain}")).len(), 1);
}

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn check_binds_over_tls_and_refuses_an_unknown_ca_or_plain_ldap() {
    let ad = Ad::from_env();
    let dir = tempfile::tempdir().unwrap();
    ad.config(dir.path(), &format!("{}\n", header()), "");
    let check = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cuentas"))
            .arg("check")
            .args(extra)
            .arg("--config")
            .arg(dir.path().join("cuentas.toml"))
            .output()
            .unwrap()
    };
    let ok = check(&[]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(out.contains("bound over TLS"), "{out}");

    // A CA that did not sign the DC's certificate: no connection, and it says why.
    let toml = std::fs::read_to_string(dir.path().join("cuentas.toml")).unwrap();
    let other_ca = toml.replace(&ad.ca.display().to_string(), "/etc/ssl/certs/ca-certificates.crt");
    std::fs::write(dir.path().join("cuentas.toml"), &other_ca).unwrap();
    let bad = check(&[]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("certificate") || err.contains("Certificate"), "{err}");
    // Offline, the same file is fine: nothing is reached.
    assert!(check(&["--offline"]).status.success());

    // StartTLS on the plain port works the same.
    let starttls = toml
        .replace("ldaps://127.0.0.1:636", "ldap://127.0.0.1:389")
        .replace("[directory]\nmode = \"ldap\"", "[directory]\nmode = \"ldap\"\nstarttls = true");
    assert!(starttls.contains("starttls = true"));
    std::fs::write(dir.path().join("cuentas.toml"), &starttls).unwrap();
    let upgraded = check(&[]);
    assert!(upgraded.status.success(), "{}", String::from_utf8_lossy(&upgraded.stderr));
    assert!(String::from_utf8_lossy(&upgraded.stdout).contains("ldap://127.0.0.1:389: bound over TLS"));

    // Plain LDAP is refused before anything is sent.
    let plain = toml.replace("ldaps://127.0.0.1:636", "ldap://127.0.0.1:389");
    std::fs::write(dir.path().join("cuentas.toml"), plain).unwrap();
    let refused = check(&["--offline"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("plain LDAP"));
}
