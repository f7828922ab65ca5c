//! The shadow week against the test DC and a real SMTP relay: the demo's responses decided and
//! planned against the directory, which is read back unchanged, with every message to the
//! administrators only; then live, where nothing the shadow decided is carried on unless
//! `cuentas replay` asks, and a new response is handled as any other.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use common::ad::{Ad, row};
use common::smtp::{Sink, env};
use cuentas::cli::{Ctx, StoreCommand};
use cuentas::directory::Directory;
use cuentas::engine::Engine;
use cuentas::request::{Actor, Request, StateName};
use jiff::{SignedDuration, Timestamp};
use ldap3::{Mod, Scope, SearchEntry};

/// The demo's own clock: Monday 30 November 2026, 10:00 in Bogotá.
fn monday() -> Timestamp {
    "2026-11-30T15:00:00Z".parse().unwrap()
}

/// The OU this test's accounts live in, emptied and seeded again at each run.
fn shadow_ou(ad: &Ad) -> String {
    format!("OU=Sombra,{}", ad.users_ou())
}

/// The demo's groups the test DC does not have, made in the shadow OU.
const DEMO_GROUPS: [&str; 4] = ["GG-Hidrocarburos", "GG-TalentoHumano", "SharePoint Proyectos", "SIG"];

/// The demo's directory (`fixtures/demo/directorio.json`) made real in the shadow OU: its
/// accounts with their document numbers, departments, groups, expiries and states (but those
/// whose name the test DC already holds elsewhere, which the demo's requests then find outside
/// the managed OU).
fn seed(ad: &Ad) {
    let mut admin = ad.admin();
    let ou = shadow_ou(ad);
    // The OU is missing at the first run on a fresh DC (noSuchObject).
    let existing = admin
        .search(&ou, Scope::Subtree, "(objectClass=*)", vec!["1.1"])
        .unwrap()
        .success()
        .map(|(entries, _)| entries)
        .unwrap_or_default();
    let mut dns: Vec<String> = existing.into_iter().map(|e| SearchEntry::construct(e).dn).collect();
    // Leaves first.
    dns.sort_by_key(|dn| std::cmp::Reverse(dn.matches(',').count()));
    for dn in dns {
        admin.delete(&dn).unwrap().success().unwrap();
    }
    let set = |v: &str| HashSet::from([v.as_bytes().to_vec()]);
    let add = |admin: &mut ldap3::LdapConn, dn: &str, attrs: Vec<(&str, HashSet<Vec<u8>>)>| {
        let attrs = attrs.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)).collect();
        admin.add(dn, attrs).unwrap().success().unwrap_or_else(|e| panic!("{dn}: {e}"));
    };
    add(&mut admin, &ou, vec![("objectClass", set("organizationalUnit"))]);
    for child in ["Funcionarios", "Contratistas", "Genericas", "Retirados", "Grupos"] {
        add(&mut admin, &format!("OU={child},{ou}"), vec![("objectClass", set("organizationalUnit"))]);
    }
    for group in DEMO_GROUPS {
        add(&mut admin, &format!("CN={group},OU=Grupos,{ou}"), vec![("objectClass", set("group"))]);
    }
    let demo: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/directorio.json"))
            .unwrap(),
    )
    .unwrap();
    for account in demo["accounts"].as_array().unwrap() {
        let text = |k: &str| account[k].as_str().unwrap_or_default().to_string();
        let sam = text("sam");
        if !ad.search(&format!("(sAMAccountName={sam})"), &["1.1"]).is_empty() {
            continue;
        }
        let dn = text("dn").replace("OU=Usuarios,DC=upme,DC=gov,DC=co", &ou);
        let cn = dn.trim_start_matches("CN=").split(',').next().unwrap().to_string();
        let (given, surname) = cn.split_once(' ').unwrap();
        let password = format!("\"Sombra-{}-9x\"", common::ad::unique());
        let pwd: Vec<u8> = password.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let enabled = account["enabled"].as_bool().unwrap();
        let mut attrs = vec![
            ("objectClass", set("user")),
            ("sAMAccountName", set(&sam)),
            ("givenName", set(given)),
            ("sn", set(surname)),
            ("displayName", set(&cn)),
            ("userPrincipalName", set(&format!("{sam}@{}", ad.domain()))),
            // The demo's people write from the entity's mail domain.
            ("mail", set(&format!("{sam}@upme.gov.co"))),
            ("employeeID", set(&text("employee_id"))),
            ("department", set(&text("department"))),
            ("unicodePwd", HashSet::from([pwd])),
            ("userAccountControl", set(if enabled { "512" } else { "514" })),
        ];
        if let Some(expires) = account["expires"].as_str() {
            let day: jiff::civil::Date = expires.parse().unwrap();
            let at = day.to_zoned(jiff::tz::TimeZone::get("America/Bogota").unwrap()).unwrap().timestamp();
            let filetime = (at.as_second() + 11_644_473_600) * 10_000_000;
            attrs.push(("accountExpires", set(&filetime.to_string())));
        }
        add(&mut admin, &dn, attrs);
        for group in account["groups"].as_array().unwrap().iter().filter_map(|g| g.as_str()) {
            let group_dn = if DEMO_GROUPS.contains(&group) {
                format!("CN={group},OU=Grupos,{ou}")
            } else {
                format!("CN={group},OU=Grupos,{}", ad.users_ou())
            };
            admin
                .modify(&group_dn, vec![Mod::Add("member", HashSet::from([dn.as_str()]))])
                .unwrap()
                .success()
                .unwrap();
        }
    }
}

/// Everything the demo's requests could change, as the directory holds it: every object of the
/// shadow OU (with its memberships and change counter), and the accounts of the test DC's own
/// that the demo names.
fn fingerprint(ad: &Ad) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let attrs = ["*", "uSNChanged", "memberOf", "member"];
    let mut entries = Vec::new();
    let mut admin = ad.admin();
    let (found, _) = admin
        .search(&shadow_ou(ad), Scope::Subtree, "(objectClass=*)", attrs.to_vec())
        .unwrap()
        .success()
        .unwrap();
    entries.extend(found.into_iter().map(SearchEntry::construct));
    let (found, _) = admin
        .search(
            &ad.base_dn,
            Scope::Subtree,
            "(|(sAMAccountName=juan.perez)(sAMAccountName=camilo.vargas)(sAMAccountName=administrator))",
            attrs.to_vec(),
        )
        .unwrap()
        .success()
        .unwrap();
    entries.extend(found.into_iter().map(SearchEntry::construct));
    entries
        .into_iter()
        .map(|e| {
            let mut attrs: BTreeMap<String, Vec<String>> = e.attrs.into_iter().collect();
            for values in attrs.values_mut() {
                values.sort();
            }
            (e.dn.to_lowercase(), attrs)
        })
        .collect()
}

/// The demo's configuration, its directory the test DC's shadow OU in `mode`, its mail through
/// the relay on `port`.
fn configure(ad: &Ad, dir: &Path, mode: &str, port: u16) -> cuentas::config::Config {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let config = std::fs::read_to_string(demo.join("cuentas.toml")).unwrap();
    let config = common::smtp::through(&config, &env(), port);
    let directory = format!(
        "mode = \"{mode}\"\nurl = \"{}\"\nca_file = \"{}\"\nbind_dn = \"{}\"\nbind_password = \"{}\"\nbase_dn = \"{}\"",
        ad.url,
        ad.ca.display(),
        ad.bind_dn,
        ad.bind_password_file.display(),
        ad.base_dn
    );
    let config = config
        .replace("mode = \"dry-run\"\nsnapshot_path = \"directorio.json\"", &directory)
        .replace("domain = \"upme.gov.co\"", &format!("domain = \"{}\"", ad.domain()))
        .replace("OU=Usuarios,DC=upme,DC=gov,DC=co", &shadow_ou(ad));
    assert!(config.contains(&format!("mode = \"{mode}\"")) && !config.contains("DC=gov"), "{config}");
    std::fs::write(dir.join("cuentas.toml"), config).unwrap();
    cuentas::config::Config::load(&dir.join("cuentas.toml")).unwrap()
}

fn requests(engine: &Engine) -> Vec<Request> {
    engine.store().requests().map(|r| r.unwrap()).collect()
}

fn run(engine: &Engine, command: StoreCommand, now: Timestamp) -> anyhow::Result<String> {
    let config = engine.config().clone();
    let ctx =
        Ctx { config: &config, store: engine.store(), actor: Actor::Admin("root".into()), now, marks: None };
    command.run(&ctx)
}

#[test]
#[ignore = "live: needs the test AD DC and the SMTP relay (tests/run.sh)"]
fn a_shadow_week_decides_the_demo_against_the_real_directory_writes_nothing_and_mails_only_the_administrators()
 {
    let ad = Ad::from_env();
    seed(&ad);
    let before = fingerprint(&ad);
    assert!(before.len() > 15, "the shadow OU is seeded: {}", before.len());
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    for f in ["autorizadores.csv", "respuestas.csv"] {
        std::fs::copy(demo.join(f), dir.path().join(f)).unwrap();
    }
    // The service desk's form without responses: the shadow week is the entity's own desk's.
    let desk = std::fs::read_to_string(demo.join("mesa.csv")).unwrap();
    std::fs::write(dir.path().join("mesa.csv"), format!("{}\n", desk.lines().next().unwrap())).unwrap();
    let mut sink = Sink::start(&env(), &dir.path().join("Maildir"), 0);
    let config = configure(&ad, dir.path(), "shadow", sink.port);
    let administrators: Vec<String> = config.mail.administrators.clone();

    // The shadow week: a cycle a day, each at ten in the morning.
    let mut engine = Engine::new(config).unwrap();
    for day in 0..7 {
        let report = engine.cycle(monday() + SignedDuration::from_hours(24 * day)).unwrap();
        assert!(report.source_error.is_none() && report.halted.is_none(), "{report:?}");
    }
    let shadow = requests(&engine);
    assert_eq!(shadow.len(), 32, "every demo response is a request");
    for r in &shadow {
        assert!(r.shadow, "{} is marked as decided in the shadow week", r.id);
        assert_ne!(r.state.name(), StateName::Received, "{} was decided: {:?}", r.id, r.history);
    }
    // The week's decisions, for a person (`--no-capture`).
    for r in &shadow {
        println!("{}", cuentas::cli::line(r, None));
    }
    // Decisions and plans against the real accounts: what the directory would have been asked.
    let planned: Vec<&Request> = shadow
        .iter()
        .filter(|r| {
            r.history.iter().any(|h| h.reason.starts_with("directorio (modo sombra, no se escribió): "))
        })
        .collect();
    assert!(planned.len() >= 8, "{} requests planned operations", planned.len());
    let by_account = |sam: &str| shadow.iter().find(|r| r.submission.account == sam).unwrap();
    let disable = by_account("ricardo.lopez");
    assert!(
        disable
            .history
            .iter()
            .any(|h| h.reason.contains("no se escribió") && h.reason.contains("ricardo.lopez")),
        "{:?}",
        disable.history
    );
    let listed = run(&engine, StoreCommand::Requests { state: None }, monday()).unwrap();
    assert_eq!(listed.lines().filter(|l| l.contains("[shadow]")).count(), 32, "{listed}");
    let shown = run(&engine, StoreCommand::Show { id: disable.id, json: false }, monday()).unwrap();
    assert!(shown.contains("shadow:    decided in the shadow week, nothing written to AD"), "{shown}");
    assert!(shown.contains("directorio (modo sombra, no se escribió)"), "{shown}");

    // The directory, read back: unchanged; nothing was even sent to it.
    let Directory::Shadow(ldap) = engine.directory_mut() else { panic!("the shadow directory") };
    assert!(ldap.writes.is_empty(), "{:?}", ldap.writes);
    assert_eq!(fingerprint(&ad), before, "the shadow week changed the directory");
    // No account the shadow would have made exists.
    let names: Vec<&str> = shadow.iter().filter_map(|r| r.reserved_account.as_deref()).collect();
    assert!(names.len() >= 5, "{names:?}");
    for sam in names {
        assert!(ad.search(&format!("(sAMAccountName={sam})"), &["1.1"]).is_empty(), "{sam} was made");
    }

    // Mail: some for every kind of recipient, all of it to the administrators, each saying whom
    // it was for.
    let mails = sink.mails();
    assert!(mails.len() >= 32, "{} messages", mails.len());
    for m in &mails {
        assert_eq!(m.to, administrators.join(", "), "{}: to {}", m.subject, m.to);
        assert!(m.subject.starts_with("[MODO SOMBRA] "), "{}", m.subject);
        assert!(m.body.starts_with("MODO SOMBRA: cuentas no escribió nada en el directorio."), "{}", m.body);
    }
    let meant_for =
        |who: &str| mails.iter().filter(|m| m.body.contains(&format!("habría ido a: {who}"))).count();
    assert!(meant_for("talentohumano@upme.gov.co") > 0 && meant_for("mesadeservicio@upme.gov.co") > 0);
    let access =
        mails.iter().find(|m| m.subject.contains("Datos de acceso")).expect("an access-data message");
    assert!(access.body.contains("SIMULACIÓN"), "{}", access.body);
    // A replay is for a live cuentas.
    let refused = run(&engine, StoreCommand::Replay { id: disable.id }, monday()).unwrap_err();
    assert!(refused.to_string().contains("mode is \"shadow\""), "{refused}");
    drop(engine);
    sink.stop();

    // Live: what the shadow left open is closed, not carried on; a new response is handled.
    let after_week = monday() + SignedDuration::from_hours(24 * 7);
    let sink = Sink::start(&env(), &dir.path().join("Maildir-live"), 0);
    let config = configure(&ad, dir.path(), "ldap", sink.port);
    let u = common::ad::unique();
    let (given, surname) = ("Valentina", format!("Sombra{}", common::ad::letters(&u)));
    let responses = dir.path().join("respuestas.csv");
    let personal = format!("p{u}@gmail.com");
    let document = format!("9{u}");
    let new_row = row(&[
        ("submitted_at", "07/12/2026 09:00:00"),
        ("requester", "talentohumano@upme.gov.co"),
        ("kind", "Creación de cuenta"),
        ("holder_type", "Funcionario"),
        ("given_names", given),
        ("surnames", &surname),
        ("id_type", "Cédula de ciudadanía"),
        ("id_number", &document),
        ("personal_email", &personal),
        ("department", "Subdirección de Energía Eléctrica"),
        ("title", "Profesional"),
    ]);
    std::fs::write(&responses, std::fs::read_to_string(&responses).unwrap() + &new_row).unwrap();
    let mut engine = Engine::new(config).unwrap();
    engine.cycle(after_week).unwrap();
    let live = requests(&engine);
    let open_in_shadow: Vec<&Request> = shadow.iter().filter(|r| r.is_open()).collect();
    assert!(!open_in_shadow.is_empty(), "the demo leaves requests open (leaves, a deletion)");
    for was in open_in_shadow {
        let now = live.iter().find(|r| r.id == was.id).unwrap();
        assert_eq!(now.state.name(), StateName::Cancelled, "{}: {:?}", now.id, now.history.last());
        assert!(now.state.reason().contains("decidida en modo sombra"), "{}", now.state.reason());
    }
    let new = live.iter().find(|r| r.row == 34).expect("the new response's request");
    assert!(!new.shadow);
    assert_eq!(new.state.name(), StateName::Closed, "{:?}", new.history);
    let made = new.account.clone().unwrap();
    assert!(!ad.search(&format!("(sAMAccountName={made})"), &["1.1"]).is_empty(), "{made} made live");
    // Nothing else changed.
    let mut now_there = fingerprint(&ad);
    now_there.retain(|dn, _| !dn.contains(&surname.to_lowercase()));
    assert_eq!(now_there, before, "going live changed what the shadow week decided");
    let mails = sink.mails();
    assert!(mails.iter().all(|m| !m.subject.starts_with("[MODO SOMBRA]")));
    assert!(
        mails.iter().all(|m| m.body.contains(&made)
            || m.body.contains(new.id.to_string().as_str())
            || administrators.contains(&m.to)),
        "live mail only about the new request: {:?}",
        mails.iter().map(|m| (&m.to, &m.subject)).collect::<Vec<_>>()
    );

    // Asked, a shadow request is taken again, live, once: decided against the directory as it is.
    let again = run(&engine, StoreCommand::Replay { id: disable.id }, after_week).unwrap();
    assert!(again.contains("taken again"), "{again}");
    let later = after_week + SignedDuration::from_hours(1);
    engine.cycle(later).unwrap();
    let live = requests(&engine);
    let original = live.iter().find(|r| r.id == disable.id).unwrap();
    let replay = live.iter().find(|r| r.replay_of == Some(disable.id)).expect("the replay");
    assert_eq!(original.replayed_as, Some(replay.id));
    assert!(!replay.shadow);
    assert_eq!(replay.state.name(), StateName::Closed, "{:?}", replay.history);
    let ricardo = ad.user("ricardo.lopez").unwrap();
    assert_eq!(ricardo.uac() & 2, 2, "disabled live: {}", ricardo.uac());
    let twice = run(&engine, StoreCommand::Replay { id: disable.id }, later).unwrap_err();
    assert!(twice.to_string().contains(&format!("taken again already, as {}", replay.id)), "{twice}");
    let not_shadow = run(&engine, StoreCommand::Replay { id: new.id }, later).unwrap_err();
    assert!(not_shadow.to_string().contains("not decided in the shadow week"), "{not_shadow}");
}
