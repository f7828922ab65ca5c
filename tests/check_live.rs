//! `cuentas check` against the live test services (the Samba AD DC of `tests/samba.sh`, an
//! aiosmtpd relay asking for a login): everything passes with the delegation of
//! `deploy/ad-delegation.txt`, and each thing broken in turn (the AD password, an OU, the
//! rights of the bind account, the relay, its login, a column) is one line that names it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::ad::{Ad, header, unique};
use common::smtp::Sink;
use ldap3::{Mod, Scope, SearchEntry};

const RELAY_LOGIN: &str = "cuentas";
const RELAY_PASSWORD: &str = "Relevo-2026";

/// `cuentas check` on `config`: exit code, stdout, and the `FAIL` lines of stderr.
fn check(config: &Path) -> (i32, String, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_cuentas"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fails = stderr.lines().filter(|l| l.starts_with("FAIL")).map(String::from).collect();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), fails)
}

/// The live configuration with mail through `sink`, logging in; its text.
fn live_config(ad: &Ad, smtp: &common::smtp::Env, dir: &Path, sink: &Sink) -> String {
    ad.config(dir, &format!("{}\n", header()), "");
    std::fs::write(dir.join("relay-password"), RELAY_PASSWORD).unwrap();
    let toml = std::fs::read_to_string(dir.join("cuentas.toml")).unwrap();
    let toml = common::smtp::through(&toml, smtp, sink.port).replace(
        "transport = \"smtp\"",
        &format!(
            "transport = \"smtp\"\nsmtp_username = \"{RELAY_LOGIN}\"\nsmtp_password = \"{}\"",
            dir.join("relay-password").display()
        ),
    );
    std::fs::write(dir.join("cuentas.toml"), &toml).unwrap();
    toml
}

#[test]
#[ignore = "live: the test AD DC and SMTP relay (tests/run.sh runs them)"]
fn check_passes_against_the_live_services_and_names_each_broken_one_in_one_line() {
    let ad = Ad::from_env();
    let smtp = common::smtp::env();
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::with_login(&smtp, &dir.path().join("Maildir"), RELAY_LOGIN, RELAY_PASSWORD);
    let good = live_config(&ad, &smtp, dir.path(), &sink);
    let config = dir.path().join("cuentas.toml");

    let (code, out, fails) = check(&config);
    assert_eq!((code, fails.len()), (0, 0), "{out}\n{fails:?}");
    assert!(out.contains("mail relay 127.0.0.1: takes the connection and the login"), "{out}");
    assert!(out.contains(&format!("bind account {}: in no group but Domain Users", ad.bind_dn)), "{out}");
    // The managed OU, the three creation OUs, two department OUs and the retired one; four groups.
    assert_eq!(out.lines().filter(|l| l.contains("holds the")).count(), 7 + 4, "{out}");
    assert!(sink.mails().is_empty(), "check sends no message");
    // The bind account every live test uses, read back: no group but its primary one.
    let bind = ad.search(&format!("(distinguishedName={})", ad.bind_dn), &["memberOf", "primaryGroupID"]);
    assert_eq!(bind.len(), 1);
    assert_eq!((bind[0].get("memberOf"), bind[0].get("primaryGroupID")), ("", "513"), "Domain Users only");

    let wrong_password = dir.path().join("wrong-bind-password");
    std::fs::write(&wrong_password, "NoEsLaClave-1").unwrap();
    let missing_ou = format!("OU=NoExiste{},{}", unique(), ad.users_ou());
    let unused_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cases: Vec<(&str, String, String)> = vec![
        (
            "wrong AD password",
            good.replace(&ad.bind_password_file.display().to_string(), &wrong_password.display().to_string()),
            format!("directory {}", ad.url),
        ),
        (
            "a missing OU",
            good.replace(
                &format!("institutional = \"OU=Genericas,{}\"", ad.users_ou()),
                &format!("institutional = \"{missing_ou}\""),
            ),
            format!("{missing_ou}: no such OU"),
        ),
        (
            "relay down",
            good.replace(&format!("smtp_port = {}", sink.port), &format!("smtp_port = {unused_port}")),
            "mail relay 127.0.0.1".into(),
        ),
        (
            "relay login refused",
            good.replace(
                &dir.path().join("relay-password").display().to_string(),
                &wrong_password.display().to_string(),
            ),
            "mail relay 127.0.0.1".into(),
        ),
    ];
    for (what, toml, named) in cases {
        assert_ne!(toml, good, "{what}: the configuration was changed");
        std::fs::write(&config, toml).unwrap();
        let (code, out, fails) = check(&config);
        assert_eq!(code, 1, "{what}: {out}");
        assert_eq!(fails.len(), 1, "{what}: one line, {fails:?}");
        assert!(fails[0].contains(&named), "{what}: {fails:?}");
    }
    // The login refused and the wrong password say so, not just that something failed.
    let relay_password = dir.path().join("relay-password").display().to_string();
    std::fs::write(&config, good.replace(&relay_password, &wrong_password.display().to_string())).unwrap();
    let (_, _, fails) = check(&config);
    assert!(fails[0].contains("the login was refused") && fails[0].contains("535"), "{fails:?}");
    let bind_password = ad.bind_password_file.display().to_string();
    std::fs::write(&config, good.replace(&bind_password, &wrong_password.display().to_string())).unwrap();
    let (_, _, fails) = check(&config);
    assert!(fails[0].contains("the password of bind_dn is wrong"), "{fails:?}");

    // A column missing from the responses.
    std::fs::write(&config, &good).unwrap();
    let without = header().replace("Tipo de solicitud,", "");
    assert_ne!(without, header());
    std::fs::write(dir.path().join("respuestas.csv"), format!("{without}\n")).unwrap();
    let (code, out, fails) = check(&config);
    assert_eq!((code, fails.len()), (1, 1), "{out}\n{fails:?}");
    assert!(fails[0].contains("respuestas.csv") && fails[0].contains("Tipo de solicitud"), "{fails:?}");
}

/// A new account in `OU=Servicios` as the domain administrator makes it (enabled, with a
/// password, in no group but Domain Users); its DN and password.
fn new_bind_account(ad: &Ad, name: &str) -> (String, String) {
    let dn = format!("CN={name},OU=Servicios,{}", ad.base_dn);
    let password = format!("Pr-{}-9x", unique());
    let pwd: Vec<u8> = format!("\"{password}\"").encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let set = |v: &str| std::collections::HashSet::from([v.as_bytes().to_vec()]);
    let attrs = vec![
        (b"objectClass".to_vec(), set("user")),
        (b"sAMAccountName".to_vec(), set(name)),
        (b"unicodePwd".to_vec(), std::collections::HashSet::from([pwd])),
        (b"userAccountControl".to_vec(), set("66048")),
    ];
    ad.admin().add(&dn, attrs).unwrap().success().unwrap();
    (dn, password)
}

/// `tests/samba.sh` on the test DC: `delegate DN --except …` or `dsacl DN SDDL`.
fn samba(args: &[&str]) {
    let dir = std::env::var("CUENTAS_TEST_SAMBA_DIR").expect("tests/samba.sh exports CUENTAS_TEST_SAMBA_DIR");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samba.sh");
    let out = Command::new(script).arg(args[0]).arg(dir).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "samba.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The live configuration bound as `dn`.
fn config_as(ad: &Ad, dir: &Path, dn: &str, password: &str) -> std::path::PathBuf {
    ad.config(dir, &format!("{}\n", header()), "");
    std::fs::write(dir.join("bind"), password).unwrap();
    let toml = std::fs::read_to_string(dir.join("cuentas.toml"))
        .unwrap()
        .replace(&format!("bind_dn = \"{}\"", ad.bind_dn), &format!("bind_dn = \"{dn}\""))
        .replace(&ad.bind_password_file.display().to_string(), &dir.join("bind").display().to_string());
    std::fs::write(dir.join("cuentas.toml"), toml).unwrap();
    dir.join("cuentas.toml")
}

/// The delegation's lines (`user WP title`), by where they apply.
fn delegation() -> (Vec<String>, Vec<String>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ad-delegation.txt"))
            .unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.into_iter().partition(|l| !l.starts_with("group "))
}

const OUS: usize = 7;
const GROUPS: usize = 4;

#[test]
#[ignore = "live: the test AD DC (tests/run.sh runs it)"]
fn check_names_every_right_the_bind_account_lacks_and_an_administrative_group() {
    let ad = Ad::from_env();
    let (on_ous, on_groups) = delegation();
    let u = unique();

    // No delegation at all: every line is named, on every OU and group it applies to.
    let dir = tempfile::tempdir().unwrap();
    let (dn, pw) = new_bind_account(&ad, &format!("svc-nada{u}"));
    let (code, out, fails) = check(&config_as(&ad, dir.path(), &dn, &pw));
    assert_eq!(code, 1, "{out}");
    assert_eq!(fails.len(), on_ous.len() * OUS + on_groups.len() * GROUPS, "{fails:#?}");
    for line in on_ous.iter().chain(&on_groups) {
        let per = if line.starts_with("group ") { GROUPS } else { OUS };
        assert_eq!(
            fails.iter().filter(|f| f.contains(&format!("«{line}»"))).count(),
            per,
            "{line}: {fails:#?}"
        );
    }

    // The whole delegation but one right: that right is named, and nothing else.
    for (i, line) in [
        "ou CC user",
        "ou DC user",
        "user WP title",
        "user WP lockoutTime",
        "user CR User-Force-Change-Password",
        "group WP member",
    ]
    .iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let (dn, pw) = new_bind_account(&ad, &format!("svc-sin{i}-{u}"));
        samba(&["delegate", &dn, "--except", line]);
        let (code, out, fails) = check(&config_as(&ad, dir.path(), &dn, &pw));
        assert_eq!(code, 1, "{line}: {out}");
        let per = if line.starts_with("group ") { GROUPS } else { OUS };
        assert_eq!(fails.len(), per, "{line}: {fails:#?}");
        assert!(fails.iter().all(|f| f.contains(&format!("«{line}»"))), "{line}: {fails:#?}");
    }

    // The whole delegation, and creating users denied on one OU: that OU is the one line.
    let dir = tempfile::tempdir().unwrap();
    let (dn, pw) = new_bind_account(&ad, &format!("svc-deny-{u}"));
    samba(&["delegate", &dn]);
    let (code, out, fails) = check(&config_as(&ad, dir.path(), &dn, &pw));
    assert_eq!((code, fails.len()), (0, 0), "{out}\n{fails:#?}");
    let sid = object_sid(&ad, &dn);
    let genericas = format!("OU=Genericas,{}", ad.users_ou());
    samba(&["dsacl", &genericas, &format!("(OD;;CC;bf967aba-0de6-11d0-a285-00aa003049e2;;{sid})")]);
    let (code, _, fails) = check(&config_as(&ad, dir.path(), &dn, &pw));
    assert_eq!((code, fails.len()), (1, 1), "{fails:#?}");
    assert!(fails[0].contains(&genericas) && fails[0].contains("create user objects"), "{fails:#?}");

    // An account in Domain Admins may do everything, and that is the one thing to fix.
    let dir = tempfile::tempdir().unwrap();
    let (dn, pw) = new_bind_account(&ad, &format!("svc-admin-{u}"));
    let admins = format!("CN=Domain Admins,CN=Users,{}", ad.base_dn);
    ad.admin()
        .modify(
            &admins,
            vec![Mod::Add(b"member".to_vec(), std::collections::HashSet::from([dn.as_bytes().to_vec()]))],
        )
        .unwrap()
        .success()
        .unwrap();
    let (code, _, fails) = check(&config_as(&ad, dir.path(), &dn, &pw));
    assert_eq!((code, fails.len()), (1, 1), "{fails:#?}");
    // Domain Admins is itself in Administrators: the token holds both, and both are named.
    assert!(fails[0].contains("member of «Administrators», «Domain Admins»"), "{fails:#?}");

    // Through a group of its own that is in Domain Admins: the account's token says so.
    let dir = tempfile::tempdir().unwrap();
    let (dn, pw) = new_bind_account(&ad, &format!("svc-anidado-{u}"));
    let group = format!("CN=GG-Anidado-{u},OU=Servicios,{}", ad.base_dn);
    let one = |v: &str| std::collections::HashSet::from([v.as_bytes().to_vec()]);
    let attrs = vec![(b"objectClass".to_vec(), one("group")), (b"member".to_vec(), one(&dn))];
    ad.admin().add(&group, attrs).unwrap().success().unwrap();
    ad.admin().modify(&admins, vec![Mod::Add(b"member".to_vec(), one(&group))]).unwrap().success().unwrap();
    let (code, out, fails) = check(&config_as(&ad, dir.path(), &dn, &pw));
    assert_eq!((code, fails.len()), (1, 1), "{out}\n{fails:#?}");
    assert!(fails[0].contains("«Domain Admins»"), "{fails:#?}");
}

fn object_sid(ad: &Ad, dn: &str) -> String {
    let (rs, _) =
        ad.admin().search(dn, Scope::Base, "(objectClass=*)", vec!["objectSid"]).unwrap().success().unwrap();
    let entry = SearchEntry::construct(rs.into_iter().next().unwrap());
    cuentas::directory::acl::sid_string(&entry.bin_attrs["objectSid"][0]).unwrap()
}
