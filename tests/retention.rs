//! Retention end to end on the demo: a creation closed more than `retention_days` ago loses its
//! personal data (in `cuentas show`, and in every record of the store), keeps its audit
//! skeleton, and the same person's next response is still recognised as theirs.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use clap::Parser;
use common::Demo;
use cuentas::cli::{Ctx, StoreCommand};
use cuentas::engine::Engine;
use cuentas::request::{Actor, RequestId, StateName};
use cuentas::store::Store;
use jiff::{SignedDuration, Timestamp};

/// Friday 27 November 2026, 08:00 in Bogotá: the demo's first cycle, which closes row 3.
const T0: &str = "2026-11-27T13:00:00Z";
const DAY: SignedDuration = SignedDuration::from_hours(24);

/// Row 3's person, as the form and the directory wrote them.
const PERSONAL: [&str; 9] = [
    "María José",
    "De La Hoz",
    "Peñaloza",
    "1045678901",
    "1.045.678.901",
    "mariajo.delahoz@gmail.com",
    "m***@gmail.com",
    "UPME-123-2026",
    "Ingeniera eléctrica",
];

/// The same person, a year later, asking for an account again under a new contract.
const RETURNING: &str = "28/11/2027 09:00:00,andres.mejia@upme.gov.co,Creación de cuenta,Contratista,\
    María José,De La Hoz Peñaloza,Cédula de ciudadanía,1.045.678.901,mariajo.delahoz@gmail.com,\
    Subdirección de Energía Eléctrica,Contratista - Ingeniera eléctrica,andres.mejia@upme.gov.co,\
    UPME-201-2027,01/12/2027,30/06/2028,,,,,,";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A `cuentas` command on the demo's store, as the CLI runs it on a store no daemon holds.
fn cuentas(demo: &Demo, args: &[&str]) -> String {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: StoreCommand,
    }
    let Cli { command } =
        Cli::try_parse_from(std::iter::once("cuentas").chain(args.iter().copied())).unwrap();
    let config = demo.config();
    let store = Store::open(&config.state_dir).unwrap();
    let ctx =
        Ctx { config: &config, store: &store, actor: Actor::Admin("root".into()), now: at(T0), marks: None };
    command.run(&ctx).unwrap()
}

/// One cycle at `now` on the demo's store, which is closed again afterwards. Contracts are not
/// ended by cuentas here: María José's ends in June 2027, between these cycles, and the request
/// cuentas would open to disable her account is a new one, with its own retention, holding the
/// address on record it tells; these tests are about the old ones.
fn cycle(demo: &Demo, now: Timestamp) {
    let mut config = demo.config();
    config.directory.disable_at_contract_end = false;
    Engine::new(config).unwrap().cycle(now).unwrap();
}

/// Every key and value of every tree of the store, as text (compressed records decompressed),
/// read with sled itself rather than through cuentas's store.
fn raw_store(demo: &Demo) -> Vec<String> {
    let db = cuentas::store::open_sled(&Store::folder(&demo.path("var/estado")).unwrap()).unwrap();
    let mut out = Vec::new();
    for name in db.tree_names() {
        for item in db.open_tree(&name).unwrap().iter() {
            let (key, value) = item.unwrap();
            let value = match value.split_first() {
                Some((1, rest)) => lz4_flex::decompress_size_prepended(rest).unwrap(),
                _ => value.to_vec(),
            };
            out.push(format!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value)));
        }
    }
    out
}

fn found<'a>(records: &'a [String], needle: &str) -> Vec<&'a String> {
    records.iter().filter(|r| r.contains(needle)).collect()
}

#[test]
fn an_old_closed_request_keeps_only_its_skeleton_and_its_person_is_still_recognised() {
    let demo = Demo::new();
    let id: RequestId = "GU-2026-000002".parse().unwrap();
    cycle(&demo, at(T0));
    // The personal data are there to begin with (so the checks below can fail): in the request,
    // its duplicate key, the personal address on record for its account.
    let records = raw_store(&demo);
    for needle in ["María José", "1045678901", "mariajo.delahoz@gmail.com"] {
        assert!(!found(&records, needle).is_empty(), "{needle} not in the store to begin with");
    }
    assert!(records.iter().any(|r| r.starts_with("a/maria.delahoz = mariajo.delahoz@gmail.com")));

    // A year less a day after it closed, nothing is removed.
    cycle(&demo, at(T0) + DAY * 364);
    assert!(cuentas(&demo, &["show", &id.to_string()]).contains("María José De La Hoz Peñaloza"));
    let week = ["report", "--from", "2026-11-23", "--to", "2026-11-27", "--format", "csv"];
    let report = cuentas(&demo, &week);

    cycle(&demo, at(T0) + DAY * 366);
    let show = cuentas(&demo, &["show", &id.to_string()]);
    for needle in PERSONAL {
        assert!(!show.contains(needle), "{needle} still shown:\n{show}");
    }
    assert!(show.contains("person:    personal data removed on 2027-11-28 (retention_days = 365)"), "{show}");
    // The skeleton: id, kind, who asked, the account, every state with its time and actor.
    assert!(show.starts_with("GU-2026-000002  row 3  Creación de cuenta\n"), "{show}");
    for kept in [
        "state:     Closed",
        "requester: andres.mejia@upme.gov.co",
        "account:   maria.delahoz",
        "submitted: 2026-11-23 09:15",
        "2026-11-27 08:00  solicitante andres.mejia@upme.gov.co     Received  registrada desde la fila 3",
        "Received → Executing",
        "Executing → Notifying",
        "Notifying → Closed  Se creó la cuenta maria.delahoz",
        "directorio (simulación): add maria.delahoz to group VPN",
        "datos personales eliminados por retención (365 días)",
    ] {
        assert!(show.contains(kept), "«{kept}» missing:\n{show}");
    }
    let listed = cuentas(&demo, &["requests", "--state", "Closed"]);
    let line = listed.lines().find(|l| l.starts_with("GU-2026-000002")).unwrap();
    assert!(line.contains("Closed") && line.contains("[personal data removed]"), "{line}");

    let records = raw_store(&demo);
    for needle in PERSONAL {
        assert!(
            found(&records, needle).is_empty(),
            "{needle} still in the store: {:#?}",
            found(&records, needle)
        );
    }
    // Nor in the bytes of the store's files: sled's old versions of the records went with the
    // store written anew (plain and LZ4-compressed records alike keep a number or an address
    // as it is, so a byte search finds what is left).
    let store = Store::open(&demo.path("var/estado")).unwrap();
    let files = store.files().unwrap();
    drop(store);
    assert!(!files.is_empty());
    for needle in PERSONAL {
        let left: Vec<_> =
            files.iter().filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes())).collect();
        assert!(left.is_empty(), "{needle} still in {:?}", left.iter().map(|(p, _)| p).collect::<Vec<_>>());
    }
    // The report counts it as before: kind, state, service level.
    assert!(report.contains("Creación de cuenta"), "{report}");
    assert_eq!(cuentas(&demo, &week), report);

    // The same person comes back: recognised, and not taken for a repetition.
    demo.write_responses(&format!("{}{RETURNING}\n", demo.responses()));
    cycle(&demo, at(T0) + DAY * 366 + SignedDuration::from_hours(1));
    let engine = Engine::new(demo.config()).unwrap();
    let new = engine.store().requests().map(|r| r.unwrap()).find(|r| r.row == 34).unwrap();
    drop(engine);
    assert_eq!(new.id.to_string(), "GU-2027-000001");
    assert_ne!(new.state.name(), StateName::Cancelled, "{}", new.state.reason());
    assert!(
        new.history.iter().any(|h| h.reason == "solicitudes anteriores de la misma persona: GU-2026-000002"),
        "{:#?}",
        new.history
    );
    let show = cuentas(&demo, &["show", "GU-2027-000001"]);
    assert!(show.contains("same person: GU-2026-000002 (Closed, personal data removed)"), "{show}");
    let old = cuentas(&demo, &["show", &id.to_string()]);
    assert!(old.contains(&format!("same person: GU-2027-000001 ({})", new.state.name())), "{old}");
}

#[test]
fn two_responses_of_one_person_in_the_same_poll_are_recognised() {
    let demo = Demo::new();
    cycle(&demo, at(T0));
    let creation = "27/11/2026 09:00:00,talentohumano@upme.gov.co,Creación de cuenta,Funcionario,Diego,\
        Arango Restrepo,Cédula de ciudadanía,71.222.333,diego.arango@gmail.com,Secretaría General,Técnico,,,,,,,,,,";
    let reset = "27/11/2026 09:05:00,talentohumano@upme.gov.co,Cambio de clave,Funcionario,Diego,\
        Arango Restrepo,CC,71222333,diego.arango@gmail.com,,,,,,,diego.arango,,,,No,";
    demo.write_responses(&format!("{}{creation}\n{reset}\n", demo.responses()));
    cycle(&demo, at(T0) + SignedDuration::from_hours(2));
    let engine = Engine::new(demo.config()).unwrap();
    let by_row = |row| engine.store().requests().map(|r| r.unwrap()).find(|r| r.row == row).unwrap();
    let (first, second) = (by_row(34), by_row(35));
    assert_eq!(first.person_hash, second.person_hash);
    assert!(first.person_hash.is_some());
    let named = format!("solicitudes anteriores de la misma persona: {}", first.id);
    assert!(second.history.iter().any(|h| h.reason == named), "{:#?}", second.history);
    assert!(!first.history.iter().any(|h| h.reason.starts_with("solicitudes anteriores")));
    // Nobody else in the demo has this document.
    let row2 = by_row(2);
    assert_ne!(row2.person_hash, first.person_hash);
    drop(engine);
    let show = cuentas(&demo, &["show", &second.id.to_string()]);
    assert!(show.contains(&format!("same person: {} (", first.id)), "{show}");
}
