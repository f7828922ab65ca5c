//! End to end, in process: the demo's responses through a full cycle on a temporary store,
//! then the follow-ups an administrator meets: a rerun, a due scheduled request, an edited
//! response, deleted and reordered rows.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Demo, Mail};
use cuentas::engine::Engine;
use cuentas::request::{Kind, Request, RequestId, State, StateName};
use jiff::Timestamp;

/// Friday 27 November 2026, 08:00 in Bogotá.
const T0: &str = "2026-11-27T13:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn by_row(engine: &Engine) -> BTreeMap<u32, Request> {
    engine.store().requests().map(|r| r.unwrap()).map(|r| (r.row, r)).collect()
}

/// The demo in its own folder, after its first cycle at `T0`.
fn after_first_cycle() -> (Demo, Engine) {
    let demo = Demo::new();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    (demo, engine)
}

/// The demo's simulated directory (kept in its state folder) changed by hand.
fn edit_directory(demo: &Demo, f: &dyn Fn(&mut Vec<serde_json::Value>)) {
    let path = demo.path("var/estado/directorio-simulado.json");
    let mut sim: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(sim["accounts"].as_array_mut().unwrap());
    std::fs::write(&path, serde_json::to_string(&sim).unwrap()).unwrap();
}

/// An account of the demo's simulated directory, as it is now.
fn directory_account(demo: &Demo, sam: &str) -> serde_json::Value {
    let path = demo.path("var/estado/directorio-simulado.json");
    let sim: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    sim["accounts"].as_array().unwrap().iter().find(|a| a["sam"] == sam).unwrap().clone()
}

/// Contractors' accounts added by hand, modelled on the demo's `oscar.diaz`: `(sam, manager's
/// address, employeeID, last day of the contract)`.
fn add_contractors(demo: &Demo, contractors: &[(&str, &str, &str, &str)]) {
    edit_directory(demo, &|accounts| {
        let model = accounts.iter().find(|a| a["sam"] == "oscar.diaz").unwrap().clone();
        for (sam, manager, id, expires) in contractors {
            let mut a = model.clone();
            a["sam"] = (*sam).into();
            a["display_name"] = format!("Contratista {sam}").into();
            a["dn"] = format!("CN={sam},OU=Contratistas,OU=Usuarios,DC=upme,DC=gov,DC=co").into();
            a["mail"] = format!("{sam}@upme.gov.co").into();
            a["upn"] = format!("{sam}@upme.gov.co").into();
            a["employee_id"] = (*id).into();
            a["guid"] = format!("guid-{sam}").into();
            a["manager_mail"] = (*manager).into();
            a["expires"] = (*expires).into();
            a["enabled"] = true.into();
            accounts.push(a);
        }
    });
}

/// The response export rewritten as these lines.
fn write_lines(demo: &Demo, lines: &[&str]) {
    demo.write_responses(&(lines.join("\n") + "\n"));
}

/// What every demo row ends in after the first cycle, and the account it got.
const EXPECTED: [(u32, StateName, &str); 32] = {
    use StateName::*;
    [
        (2, Closed, "juan.perezg"),
        (3, Closed, "maria.delahoz"),
        (4, Closed, "laura.martinez"),
        (5, Closed, "laura.martinezr"),
        (6, Closed, "camilo.vargas"),
        (7, Closed, "correspondencia"),
        // On site: the service desk enables the change at her desk (the procedure's way).
        (8, Manual, ""),
        (9, Rejected, ""),
        (10, Closed, "ana.gomez"),
        (11, Closed, "ricardo.lopez"),
        (12, Scheduled, "hernan.castro"),
        (13, Closed, "marta.salazar"),
        (14, AwaitingConfirmation, "felipe.ramirez"),
        (15, Scheduled, "ana.gomez"),
        (16, Scheduled, "natalia.beltran"),
        (17, Scheduled, "valentina.quinones"),
        (18, Scheduled, "sofia.herrera"),
        (19, Scheduled, "oscar.diaz"),
        (20, Routed, ""),
        (21, NeedsInfo, ""),
        (22, NeedsInfo, ""),
        (23, Rejected, ""),
        (24, Rejected, ""),
        (25, Rejected, ""),
        (26, Rejected, ""),
        (27, Rejected, ""),
        (28, Rejected, ""),
        (29, Closed, "angela.muller"),
        (30, NeedsInfo, ""),
        (31, NeedsInfo, ""),
        (32, NeedsInfo, ""),
        (33, NeedsInfo, ""),
    ]
};

#[test]
fn the_demo_goes_through_a_full_cycle() {
    let demo = Demo::new();
    // The service desk's form's part is its own test (below): here the desk has not acted yet.
    demo.without_desk_responses();
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    assert_eq!(report.registered, 32);
    assert_eq!(report.halted, None);

    let requests = by_row(&engine);
    assert_eq!(requests.len(), 32);
    for (row, state, account) in EXPECTED {
        let r = &requests[&row];
        assert_eq!(r.state.name(), state, "row {row}: {}", r.state.reason());
        if !account.is_empty() {
            assert_eq!(r.account.as_deref(), Some(account), "row {row}");
        }
        // Every answered or waiting request says why, in Spanish, to a person who can act.
        if matches!(state, StateName::Rejected | StateName::Routed | StateName::NeedsInfo | StateName::Manual)
        {
            assert!(r.state.reason().len() > 30, "row {row}: «{}»", r.state.reason());
        }
        assert_eq!(r.id.to_string(), format!("GU-2026-{:06}", row - 1));
    }

    // The bad rows say what to fix.
    assert!(requests[&21].state.reason().contains("«Apellidos»"));
    assert!(requests[&21].state.reason().contains("«Número de documento»"));
    assert!(requests[&22].state.reason().contains("santiago.ruiz@gmail"));
    assert!(requests[&23].state.reason().contains("matriz de autorizadores"));
    assert!(requests[&24].state.reason().contains("talento humano"));
    assert!(requests[&25].state.reason().contains("correo institucional"));
    // The service desk authorizes nothing by default (segregation of duties).
    assert!(requests[&28].state.reason().contains("Como mesa de servicio no puede solicitar"));
    assert!(requests[&31].state.reason().contains("ana.gomez"));

    let mails = demo.mails();
    let count = |needle: &str| mails.iter().filter(|m| m.message_id.contains(needle)).count();
    assert_eq!(count(".acuse@"), 18, "acknowledgements: closed, scheduled and manual requests");
    assert_eq!(count(".rechazo@"), 7);
    assert_eq!(count(".redireccion@"), 1);
    assert_eq!(count(".informacion-requerida@"), 6);
    assert_eq!(count(".resultado@"), 10);
    assert_eq!(count(".gestion-manual@"), 1);
    assert_eq!(count(".datos-de-acceso@"), 7);
    // The deletion: disabled and retired at once, its checklist to the service desk, the
    // requester told what comes next.
    assert_eq!(count(".lista-eliminacion@"), 1);
    // The one open request whose clock runs (the reset done by hand, submitted three days
    // before this first cycle): its service level is spent, the service desk is warned.
    assert_eq!(count(".aviso-ans@"), 1);
    assert_eq!(count(".avance@"), 1);
    // The returning contractor's reactivation, the modification, the disable, the enable and
    // the deletion are told to the account's own mailbox.
    assert_eq!(count(".aviso-titular@"), 5);
    // The requests that wait on a person of the entity (the reset done by hand), listed to
    // the administrators this working morning.
    assert_eq!(count("<alerta.en-espera-2026-11-27."), 1);
    assert_eq!(mails.len(), 59);
    // A text that ends in a time ends in one period («p. m.», not «p. m..»).
    assert!(mails.iter().all(|m| !m.body.contains("m..")), "a double period");
    // The service desk and the administrators act through links, not commands typed on the
    // server: the manual request, the checklist, the SLA warning, the morning's list.
    let command = regex_lite_command();
    assert!(mails.iter().all(|m| !command(&m.body)), "a mail with a cuentas command");
    // A scheduled request's acknowledgement: the day it runs, and its deadline not before it.
    let ack = mails
        .iter()
        .find(|m| m.message_id.starts_with("<GU-2026-000011.") && m.message_id.contains(".acuse@"));
    let ack = &ack.unwrap().body;
    assert!(ack.contains("Se ejecutará el: martes 15 de diciembre de 2026, 7:30 a. m."), "{ack}");
    assert!(ack.contains("Plazo de atención: martes 15 de diciembre de 2026"), "{ack}");

    // Access data goes to the personal address, with accents intact; the password is in that
    // message only, and never in the store.
    let access: Vec<_> = mails.iter().filter(|m| m.message_id.contains(".datos-de-acceso@")).collect();
    let maria = access.iter().find(|m| m.to.contains("mariajo.delahoz@gmail.com")).unwrap();
    assert!(maria.body.contains("Usuario de red: maria.delahoz"));
    assert!(maria.body.contains("Cordial saludo,\n\nMaría José De La Hoz Peñaloza:\n"));
    let password = maria.body.lines().find_map(|l| l.trim().strip_prefix("Contraseña temporal: ")).unwrap();
    assert_eq!(password.len(), 16);
    assert_eq!(mails.iter().filter(|m| m.raw.contains(password) || m.body.contains(password)).count(), 1);
    let store = std::fs::read_dir(demo.path("var/estado")).unwrap();
    for file in store.map(|e| e.unwrap().path()).filter(|p| p.is_file()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "{}", file.display());
    }
    let institutional = access.iter().find(|m| m.body.contains("correspondencia@upme.gov.co")).unwrap();
    assert_eq!(institutional.to, "jorge.nunez@upme.gov.co");

    let ack = mails.iter().find(|m| m.message_id == "<GU-2026-000002.2.acuse@upme.gov.co>").unwrap();
    assert_eq!(ack.to, "andres.mejia@upme.gov.co");
    assert_eq!(ack.subject, "[GU-2026-000002] Solicitud registrada: Creación de cuenta");
    // The service level counts from the form's own timestamp (Monday 23 November, 09:15:40),
    // not from when this cycle read the row: 10 business hours end on Tuesday at 09:45.
    assert!(
        ack.body.contains("Plazo de atención: martes 24 de noviembre de 2026, 9:45 a. m."),
        "{}",
        ack.body
    );
    let manual = mails
        .iter()
        .find(|m| m.message_id.starts_with("<GU-2026-000007.") && m.message_id.contains("gestion-manual"))
        .unwrap();
    assert_eq!(manual.to, "mesadeservicio@upme.gov.co");
    assert!(manual.body.contains("en su puesto"), "{}", manual.body);
    let checklist = mails.iter().find(|m| m.message_id.contains(".lista-eliminacion@")).unwrap();
    assert_eq!(checklist.to, "mesadeservicio@upme.gov.co");
    // Each step of the checklist is a link to the service desk's form, filled in.
    assert!(
        checklist.body.contains(
            "entry.1311000001=GU-2026-000013&entry.1311000002=Confirmar%20paso%20de%20la%20eliminaci%C3%B3n\
             &entry.1311000003=Informaci%C3%B3n%20del%20usuario%20borrada%20del%20equipo"
        ),
        "{}",
        checklist.body
    );
    let routed = mails.iter().find(|m| m.message_id.contains(".redireccion@")).unwrap();
    assert!(routed.body.contains("«Instalación de software»"));

    // The history of a closed creation tells the whole story.
    let steps: Vec<StateName> = requests[&3].history.iter().map(|h| h.to).collect();
    assert_eq!(steps.first(), Some(&StateName::Received));
    assert_eq!(steps.last(), Some(&StateName::Closed));
    assert!(steps.contains(&StateName::Executing) && steps.contains(&StateName::Notifying));

    // Running again registers nothing and sends nothing.
    let again = engine.cycle(at("2026-11-27T13:05:00Z")).unwrap();
    assert_eq!((again.registered, again.edited, again.sent), (0, 0, 0));
    assert!(again.touched.is_empty());
    assert_eq!(demo.mails().len(), 59);

    // Scheduled changes run at 07:30 on their date, not a minute before (the requests that
    // wait on their requester's fix are reminded, then cancelled, meanwhile: not counted
    // here): on 1 December the transfer, the cesión and the suspension…
    let scheduled = |engine: &Engine, report: &cuentas::engine::CycleReport| -> usize {
        let requests = by_row(engine);
        let waited = |id| {
            requests.values().any(|r: &cuentas::request::Request| {
                r.id == id && matches!(r.state.name(), StateName::NeedsInfo | StateName::Cancelled)
            })
        };
        report.touched.iter().filter(|id| !waited(**id)).count()
    };
    let early = engine.cycle(at("2026-12-01T12:29:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &early), 0);
    let first = engine.cycle(at("2026-12-01T12:30:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &first), 3);
    // … the early termination when its last day, 4 December, ends (midnight in Bogotá): the
    // contractor works through it…
    for t in ["2026-12-04T12:30:00Z", "2026-12-05T04:59:59Z"] {
        let during = engine.cycle(at(t)).unwrap();
        assert_eq!(scheduled(&engine, &during), 0, "{t}");
    }
    let ended = engine.cycle(at("2026-12-05T05:00:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &ended), 1);
    assert_eq!(by_row(&engine)[&19].state.name(), StateName::Closed);
    // … the leave on 14 December…
    let early = engine.cycle(at("2026-12-14T12:29:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &early), 0);
    let due = engine.cycle(at("2026-12-14T12:30:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &due), 1);
    // … the disable on 15 December.
    let early = engine.cycle(at("2026-12-15T12:29:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &early), 0);
    engine.cycle(at("2026-12-15T12:31:00Z")).unwrap();
    // The cesión: the new contractor's account made, the previous one's disabled, one request.
    let cesion = &by_row(&engine)[&17];
    assert_eq!(cesion.state.name(), StateName::Closed, "{}", cesion.state.reason());
    let done: Vec<&str> = cesion.history.iter().map(|h| h.reason.as_str()).collect();
    assert!(done.iter().any(|r| r.contains("create valentina.quinones")), "{done:#?}");
    assert!(done.iter().any(|r| r.contains("disable oscar.diaz")), "{done:#?}");
    // The leave and the suspension wait for their returns, the accounts disabled meanwhile.
    for (row, back) in [(15, "2027-01-12T12:30:00Z"), (18, "2027-01-15T12:30:00Z")] {
        let r = &by_row(&engine)[&row];
        assert!(
            matches!(r.state, cuentas::request::State::Scheduled { due, .. } if due == at(back)),
            "{:?}",
            r.state
        );
        assert!(
            r.history.iter().any(|h| h.reason.starts_with("directorio (simulación): disable")),
            "row {row}"
        );
    }
    // The return is planned again on its date against the directory; the dry run's snapshot
    // does not keep what it "did", so there the account still reads as enabled.
    let early = engine.cycle(at("2027-01-12T12:29:00Z")).unwrap();
    assert_eq!(scheduled(&engine, &early), 0);
    engine.cycle(at("2027-01-12T12:30:00Z")).unwrap();
    let leave = &by_row(&engine)[&15];
    assert_eq!(leave.state.name(), StateName::Closed, "{}", leave.state.reason());
    let back =
        leave.history.iter().find(|h| h.to == StateName::Executing && h.at == at("2027-01-12T12:30:00Z"));
    assert!(back.is_some_and(|h| h.reason == "llegó la fecha programada"), "{:#?}", leave.history);
    let hernan = &by_row(&engine)[&12];
    assert_eq!(hernan.state.name(), StateName::Closed);
    assert!(hernan.history.iter().any(|h| h.reason.contains("disable hernan.castro")));
    // The transfer ran on 1 December: new dependency, its groups, the old one's out.
    let natalia = &by_row(&engine)[&16];
    assert_eq!(natalia.state.name(), StateName::Closed);
    let done: Vec<&str> = natalia.history.iter().map(|h| h.reason.as_str()).collect();
    assert!(
        done.iter().any(|r| r.contains("department: «Secretaría General» → «Oficina Asesora de Planeación»")),
        "{done:#?}"
    );
    assert!(done.iter().any(|r| r.contains("add natalia.beltran to group GG-Planeacion")), "{done:#?}");
}

#[test]
fn a_scheduled_request_is_authorized_again_on_its_date() {
    let (demo, engine) = after_first_cycle();
    assert_eq!(by_row(&engine)[&12].state.name(), StateName::Scheduled);
    // Talento Humano's authorization ends before the disable's date (the daemon restarts and
    // reads the matrix again).
    drop(engine);
    let matrix = std::fs::read_to_string(demo.path("autorizadores.csv")).unwrap();
    let matrix = matrix.replace(
        "talentohumano@upme.gov.co,Coordinación GIT de Talento Humano,talento_humano,*,2024-01-01,",
        "talentohumano@upme.gov.co,Coordinación GIT de Talento Humano,talento_humano,*,2024-01-01,2026-12-10",
    );
    std::fs::write(demo.path("autorizadores.csv"), matrix).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2026-12-15T12:31:00Z")).unwrap();
    let hernan = &by_row(&engine)[&12];
    assert_eq!(hernan.state.name(), StateName::Rejected, "{}", hernan.state.reason());
    assert!(hernan.state.reason().contains("vigente hasta 2026-12-10"), "{}", hernan.state.reason());
    assert!(!hernan.history.iter().any(|h| h.reason.contains("disable hernan.castro")));
}

#[test]
fn an_edited_response_moves_its_request_on_and_the_clock_paused_meanwhile() {
    let (demo, mut engine) = after_first_cycle();
    let before = by_row(&engine)[&22].clone();
    assert_eq!(before.state.name(), StateName::NeedsInfo);
    // 10 business hours from the form's timestamp (Wednesday 25 November, 15:30:27): 1 h 29 min
    // 33 s that day, 8 h 30 min 27 s on Thursday → Thursday 16:00:27 Bogotá.
    assert_eq!(before.sla_deadline, at("2026-11-26T21:00:27Z"));

    demo.write_responses(&demo.responses().replace("santiago.ruiz@gmail,", "santiago.ruiz@gmail.com,"));
    // Three business hours later (11:00 Bogotá).
    let report = engine.cycle(at("2026-11-27T16:00:00Z")).unwrap();
    assert_eq!((report.registered, report.edited), (0, 1));
    let after = by_row(&engine)[&22].clone();
    assert_eq!(after.id, before.id);
    assert_eq!(after.state.name(), StateName::Closed, "{}", after.state.reason());
    assert_eq!(after.account.as_deref(), Some("santiago.ruiz"));
    // The three hours it waited on the requester do not count: Thursday 16:00:27 + 3 business
    // hours → Friday 09:30:27 Bogotá.
    assert_eq!(after.sla_deadline, at("2026-11-27T14:30:27Z"));
    assert!(after.history.iter().any(|h| h.reason.contains("respuesta editada en la fila 22")));
    let mails = demo.mails();
    let access = mails.iter().find(|m| m.to == "santiago.ruiz@gmail.com").unwrap();
    assert!(access.body.contains("Usuario de red: santiago.ruiz"));

    // An edit of a closed request's row is not looked at.
    demo.write_responses(
        &demo.responses().replace("Contratista - Ingeniero,", "Contratista - Ingeniero civil,"),
    );
    let report = engine.cycle(at("2026-11-27T16:10:00Z")).unwrap();
    assert_eq!((report.registered, report.edited), (0, 0));
}

#[test]
fn deleted_rows_stop_ingestion_with_one_alert_and_restoring_them_resumes() {
    let (demo, mut engine) = after_first_cycle();
    let original = demo.responses();
    let mut lines: Vec<&str> = original.lines().collect();
    let deleted = lines.remove(9);
    assert!(deleted.contains("ana.gomez"));
    let new_row = "27/11/2026 10:00:00,talentohumano@upme.gov.co,Reactivación de cuenta,Funcionario,,,,,,,,,,,,marta.salazar,,,,,";
    lines.push(new_row);
    write_lines(&demo, &lines);

    let report = engine.cycle(at("2026-11-27T14:00:00Z")).unwrap();
    let halted = report.halted.expect("ingestion must stop");
    assert!(halted.contains("borró filas") || halted.contains("movió"), "{halted}");
    assert_eq!(report.registered, 0);
    assert_eq!(engine.store().requests().count(), 32);
    let stopped = |m: &common::Mail| {
        m.to == "infraestructura@upme.gov.co" && m.subject.contains("Lectura de respuestas detenida")
    };
    assert_eq!(demo.mails().into_iter().filter(stopped).count(), 1);

    // The same problem on the next poll: still stopped, no second alert.
    let report = engine.cycle(at("2026-11-27T14:01:00Z")).unwrap();
    assert!(report.halted.is_some());
    assert_eq!(demo.mails().into_iter().filter(stopped).count(), 1);

    // The row is put back: the new response is registered.
    demo.write_responses(&format!("{original}{new_row}\n"));
    let report = engine.cycle(at("2026-11-27T14:02:00Z")).unwrap();
    assert_eq!((report.halted, report.registered), (None, 1));
    assert_eq!(by_row(&engine)[&34].id.to_string(), "GU-2026-000033");
}

#[test]
fn a_shrinking_file_stops_ingestion() {
    let (demo, mut engine) = after_first_cycle();
    let original = demo.responses();
    let lines: Vec<&str> = original.lines().collect();
    write_lines(&demo, &lines[..lines.len() - 1]);
    let report = engine.cycle(at("2026-11-27T14:00:00Z")).unwrap();
    assert!(report.halted.unwrap().contains("borró filas"));
}

#[test]
fn swapped_rows_of_open_requests_stop_ingestion() {
    let (demo, mut engine) = after_first_cycle();
    let original = demo.responses();
    let mut lines: Vec<&str> = original.lines().collect();
    // Rows 21 and 22 (lines 20 and 21) wait on different requesters.
    lines.swap(20, 21);
    write_lines(&demo, &lines);
    let report = engine.cycle(at("2026-11-27T14:00:00Z")).unwrap();
    assert!(report.halted.unwrap().contains("movió"));
    assert_eq!(report.edited, 0);
    assert_eq!(by_row(&engine)[&21].state.name(), StateName::NeedsInfo);
}

#[test]
fn hostile_and_broken_rows_become_requests_that_say_what_to_fix() {
    let demo = Demo::new();
    let header = demo.responses().lines().next().unwrap().to_string();
    let long = "x".repeat(20_000);
    let rows = [
        ",,,,,,,,,,,,,,,,,,,,".to_string(),
        "no es una fecha,talentohumano@upme.gov.co,Creación de cuenta".to_string(),
        format!("27/11/2026 08:00:00,talentohumano@upme.gov.co,Creación de cuenta,Funcionario,\"*)(|(objectClass=*\",\"a,OU=Domain Admins\",CC,123,{long}@gmail.com,Secretaría General,x,,,,,,,,,,,extra1,extra2"),
        "27/11/2026 08:00:00,talentohumano@upme.gov.co,Creación de cuenta,Funcionario,\"Ana\r\nMaría\u{200b}\",\"Pérez\",CC,12345678,ana@gmail.com,Secretaría General,Técnico,,,,,,,,,,".to_string(),
        "27/11/2026 08:00:00,TalentoHumano@UPME.GOV.CO,creacion de cuenta,FUNCIONARIO,José,Núñez,,1.111.111,jose@gmail.com,secretaria general,Técnico,,,,,,,,,,".to_string(),
        "27/11/2026 08:00:00,talentohumano@upme.gov.co,Cambio de clave,Funcionario,,,,,,,,,,,,\"ana.gomez)(cn=*\",,,,Tal vez,".to_string(),
        "46353.999988426,talentohumano@upme.gov.co,Vacaciones,Funcionario,,,,,,,,,,,,ana.gomez,31/02/2027,1/1/2027,,,".to_string(),
        format!("27/11/2026 08:00:00,{long}@upme.gov.co,Creación de cuenta,Contratista,A,B,,1,a@b.co,,,,,,,,,,,,"),
        "27/11/2026 08:00:00,talentohumano@upme.gov.co,Creación de cuenta,Funcionario,Ñandú,Ü,CC,98765432,nandu@gmail.com,Secretaría General,Técnico,,,,,,,,GG-Todos; DROP TABLE,,".to_string(),
        "27/11/2026 08:00:00,andres.mejia@upme.gov.co,Creación de cuenta,Contratista,Luz,Mar,CC,55555555,luz@gmail.com,Subdirección de Energía Eléctrica,Contratista,,C-1,30/06/2027,01/12/2026,,,,,,".to_string(),
    ];
    demo.write_responses(&format!("{header}\n{}\n", rows.join("\n")));
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    assert_eq!(report.registered, rows.len());
    for (row, r) in by_row(&engine) {
        let state = r.state.name();
        if state != StateName::Closed {
            assert!(!r.state.reason().is_empty(), "row {row} in {state} without a reason");
        }
        if let Some(account) = &r.account {
            assert!(
                account.len() <= 20
                    && account
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'),
                "{account}"
            );
        }
    }
    let states: Vec<StateName> = by_row(&engine).values().map(|r| r.state.name()).collect();
    use StateName::*;
    assert_eq!(
        states,
        [
            NeedsInfo, NeedsInfo, NeedsInfo, Closed, Closed, NeedsInfo, NeedsInfo, NeedsInfo, NeedsInfo,
            NeedsInfo
        ]
    );
    let requests = by_row(&engine);
    assert_eq!(requests[&5].account.as_deref(), Some("ana.perez"));
    assert_eq!(requests[&6].account.as_deref(), Some("jose.nunez"));
    assert!(requests[&4].state.reason().contains("«Nombres»"));
    assert!(requests[&10].state.reason().contains("GG-Todos; DROP TABLE"));
    assert!(requests[&11].state.reason().contains("anterior a su inicio"));
    assert_eq!(requests[&4].submission.extra.len(), 0, "extra cells without a header are not kept");
    // Without a usable requester address, the service desk is the one told.
    let reason = requests[&9].state.reason();
    assert!(reason.contains("no es una dirección de correo válida"), "{reason}");
    assert!(reason.chars().count() < 1000, "a pasted page is not echoed back: {}", reason.chars().count());
    let mails = demo.mails();
    let to_desk = mails.iter().find(|m| m.message_id.starts_with(&format!("<{}.", requests[&9].id))).unwrap();
    assert_eq!(to_desk.to, "mesadeservicio@upme.gov.co");
}

#[test]
fn a_new_response_for_the_same_person_replaces_the_waiting_request() {
    let (demo, mut engine) = after_first_cycle();
    let waiting = by_row(&engine)[&22].clone();
    assert_eq!(waiting.state.name(), StateName::NeedsInfo);
    let line = demo.responses().lines().find(|l| l.contains("santiago.ruiz@gmail,")).unwrap().to_string();
    // Someone who may not ask for it sends a response for Santiago: refused, and the request
    // that waited on its fix stays as it was.
    let intruder = line
        .replace("andres.mejia@upme.gov.co,Creación", "pedro.gaitan@upme.gov.co,Creación")
        .replace("santiago.ruiz@gmail,", "tomado@gmail.com,");
    demo.write_responses(&format!("{}{intruder}\n", demo.responses()));
    engine.cycle(at("2026-11-27T14:00:00Z")).unwrap();
    let requests = by_row(&engine);
    assert_eq!(requests[&34].state.name(), StateName::Rejected, "{}", requests[&34].state.reason());
    assert_eq!(requests[&22].state.name(), StateName::NeedsInfo, "not cancelled by a refused response");
    // The supervisor fills the form again for Santiago (same document), with a good address.
    let again = line
        .replace("25/11/2026 15:30:27", "27/11/2026 10:00:00")
        .replace("santiago.ruiz@gmail,", "santiago.ruiz@gmail.com,");
    demo.write_responses(&format!("{}{again}\n", demo.responses()));
    let report = engine.cycle(at("2026-11-27T15:00:00Z")).unwrap();
    assert_eq!(report.registered, 1);
    let requests = by_row(&engine);
    let (old, new) = (&requests[&22], &requests[&35]);
    assert_eq!(old.state.name(), StateName::Cancelled);
    assert!(old.state.reason().contains(&new.id.to_string()), "{}", old.state.reason());
    assert_eq!(new.state.name(), StateName::Closed, "{}", new.state.reason());
    assert_eq!(new.account.as_deref(), Some("santiago.ruiz"));
    assert!(
        demo.mails().iter().any(|m| m.to == "santiago.ruiz@gmail.com" && m.body.contains("santiago.ruiz"))
    );
}

#[test]
fn a_renamed_required_column_stops_ingestion_but_not_the_daemon() {
    let demo = Demo::new();
    demo.write_responses(&demo.responses().replacen("Tipo de solicitud", "Qué necesita", 1));
    let mut engine = Engine::new(demo.config()).unwrap();
    let report = engine.cycle(at(T0)).unwrap();
    assert_eq!(report.registered, 0);
    let error = report.source_error.unwrap();
    assert!(error.contains("«Tipo de solicitud»"), "{error}");
    engine.cycle(at("2026-11-27T13:01:00Z")).unwrap();
    let alerts: Vec<_> = demo.mails().into_iter().filter(|m| m.to.contains("infraestructura@")).collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}

/// A pasted book in *Observaciones*, and a row whose every cell is long: kept cut with a mark,
/// and no stored record grows past 64 KiB.
#[test]
fn long_answers_are_cut_and_records_stay_small() {
    let demo = Demo::new();
    let text = demo.responses();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let book = "Observación larga. ".repeat(100_000 / 19 + 1)[..100_000].to_string();
    // Row 2 with the book as its last cell (Observaciones).
    let (rest, _) = lines[1].rsplit_once(',').unwrap();
    let with_book = format!("{rest},\"{book}\"");
    let every = std::iter::once("27/11/2026 08:00:00".to_string())
        .chain((1..21).map(|_| format!("\"{}\"", "ñ".repeat(20_000))))
        .collect::<Vec<_>>()
        .join(",");
    lines.push(with_book);
    lines.push(every);
    demo.write_responses(&(lines.join("\n") + "\n"));
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    let requests = by_row(&engine);
    let last = lines.len() as u32;
    let notes = &requests[&(last - 1)].submission.notes;
    assert!(notes.starts_with("Observación larga."), "{notes}");
    assert!(notes.ends_with("caracteres más]"), "{}", &notes[notes.len() - 60..]);
    assert!(notes.len() <= 2000, "{}", notes.len());
    let largest = requests
        .values()
        .map(|r| (engine.store().raw_request(r.id).unwrap().unwrap().len(), r.row))
        .max()
        .unwrap();
    println!("largest stored record: {} bytes (row {})", largest.0, largest.1);
    assert!(largest.0 < 64 * 1024, "{largest:?}");
}

/// Google's two CSV downloads of the demo's responses, in Spanish and English locales
/// (`tests/fixtures/csv/`: the form's own download, timestamps like `2026/11/23 8:02:11 a. m.
/// GMT-5`; the sheet's `File → Download → CSV`, `23/11/2026 8:02:11` or month first
/// `11/23/2026 8:02:11` with dates `12/1/2026`): the same submissions and states as the demo.
#[test]
fn both_google_csv_downloads_in_both_locales_read_as_the_demo() {
    let (_demo, engine) = after_first_cycle();
    let want = by_row(&engine);
    for name in ["formulario-es.csv", "formulario-en.csv", "hoja-es.csv", "hoja-en.csv"] {
        let demo = Demo::new();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv").join(name);
        std::fs::copy(fixture, demo.path("respuestas.csv")).unwrap();
        let mut engine = Engine::new(demo.config()).unwrap();
        let report = engine.cycle(at(T0)).unwrap();
        assert_eq!((report.registered, report.source_error), (32, None), "{name}");
        let got = by_row(&engine);
        for (row, w) in &want {
            let g = &got[row];
            assert_eq!(g.submission, w.submission, "{name}, row {row}");
            assert_eq!(g.state.name(), w.state.name(), "{name}, row {row}: {}", g.state.reason());
        }
    }
}

#[test]
fn the_service_desk_is_warned_once_at_80_percent_then_the_breach_is_recorded() {
    let (demo, mut engine) = after_first_cycle();
    // Friday 08:00: Ana, at her desk, asks for a new password: the service desk does it by hand.
    let row = "27/11/2026 08:00:00,ana.gomez@upme.gov.co,Cambio de clave,Funcionario,Ana,Gómez,,,ana.gomez.p@gmail.com,,,,,,,ana.gomez,,,,Sí,";
    demo.write_responses(&format!("{}{row}\n", demo.responses()));
    engine.cycle(at(T0)).unwrap();
    let id = by_row(&engine)[&34].id;
    assert_eq!(by_row(&engine)[&34].state.name(), StateName::Manual);
    let warnings = |demo: &Demo| {
        demo.mails()
            .into_iter()
            .filter(|m| m.message_id.starts_with(&format!("<{id}.")) && m.message_id.contains(".aviso-ans@"))
            .collect::<Vec<_>>()
    };
    // 15:00: 7 of its 10 business hours, 70 %: nothing yet.
    engine.cycle(at("2026-11-27T20:00:00Z")).unwrap();
    assert!(warnings(&demo).is_empty());
    // 16:00: 8 hours, 80 %: the service desk is warned, once, with what holds it up.
    for minute in ["00", "10", "59"] {
        engine.cycle(at(&format!("2026-11-27T21:{minute}:00Z"))).unwrap();
    }
    let sent = warnings(&demo);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "mesadeservicio@upme.gov.co");
    assert!(sent[0].body.contains("Consumido: 8 h 00 min de 10 h 00 min (80 %)"), "{}", sent[0].body);
    assert!(
        sent[0].body.contains(&format!("entry.1311000001={id}&entry.1311000002=Marcar%20como%20atendida")),
        "{}",
        sent[0].body
    );
    let r = &by_row(&engine)[&34];
    assert_eq!(r.sla.warned_at, Some(at("2026-11-27T21:00:00Z")));
    assert_eq!(r.sla.breached_at, None);
    // Monday 08:30 is exactly 10 hours (9 on Friday, 1 on Monday): due, not broken; a minute
    // later it is, and the breach is recorded once.
    engine.cycle(at("2026-11-30T13:30:00Z")).unwrap();
    assert_eq!(by_row(&engine)[&34].sla.breached_at, None);
    for minute in ["31", "45"] {
        engine.cycle(at(&format!("2026-11-30T13:{minute}:00Z"))).unwrap();
    }
    let r = &by_row(&engine)[&34];
    assert_eq!(r.sla.breached_at, Some(at("2026-11-30T13:31:00Z")));
    let noted = r.history.iter().filter(|h| h.reason.starts_with("ANS incumplido")).count();
    assert_eq!(noted, 1);
    assert_eq!(warnings(&demo).len(), 1, "warned once");
}

#[test]
fn a_request_waiting_on_its_requester_is_reminded_once_then_cancelled() {
    let (demo, mut engine) = after_first_cycle();
    // Santiago's personal address is wrong since the first cycle, Friday 27 November 08:00.
    let id = by_row(&engine)[&22].id;
    assert_eq!(by_row(&engine)[&22].state.name(), StateName::NeedsInfo);
    let reminders = || {
        demo.mails()
            .into_iter()
            .filter(|m| m.message_id.starts_with(&format!("<{id}.")) && m.body.contains("Recordatorio"))
            .collect::<Vec<_>>()
    };
    // Three business days (of 9 h 30 min): 9 h on Friday, Monday, Tuesday, half an hour on
    // Wednesday 2 December.
    engine.cycle(at("2026-12-02T12:59:00Z")).unwrap();
    assert!(reminders().is_empty());
    engine.cycle(at("2026-12-02T13:00:00Z")).unwrap();
    let sent = reminders();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "andres.mejia@upme.gov.co");
    assert!(sent[0].body.contains("santiago.ruiz@gmail"), "{}", sent[0].body);
    assert!(sent[0].body.contains("lunes 14 de diciembre"), "the day it closes: {}", sent[0].body);
    for day in ["2026-12-03", "2026-12-07", "2026-12-11"] {
        engine.cycle(at(&format!("{day}T15:00:00Z"))).unwrap();
    }
    assert_eq!(reminders().len(), 1, "one reminder");
    assert_eq!(by_row(&engine)[&22].state.name(), StateName::NeedsInfo);
    // Ten business days (8 December is a holiday): Monday 14 December, 08:00.
    engine.cycle(at("2026-12-14T12:59:00Z")).unwrap();
    assert_eq!(by_row(&engine)[&22].state.name(), StateName::NeedsInfo);
    engine.cycle(at("2026-12-14T13:00:00Z")).unwrap();
    let closed = &by_row(&engine)[&22];
    assert_eq!(closed.state.name(), StateName::Cancelled, "{}", closed.state.reason());
    let told: Vec<_> = demo
        .mails()
        .into_iter()
        .filter(|m| m.message_id.starts_with(&format!("<{id}.")) && m.message_id.contains("sin-efecto"))
        .collect();
    assert_eq!(told.len(), 1);
    assert!(told[0].body.contains("diligencie el formulario de nuevo"), "{}", told[0].body);
    // A new response for the same person is a new request, not a repetition of the closed one.
    let again =
        demo.responses().lines().nth(21).unwrap().replace("santiago.ruiz@gmail,", "santiago.ruiz@gmail.com,");
    demo.write_responses(&format!("{}{again}\n", demo.responses()));
    let report = engine.cycle(at("2026-12-14T14:00:00Z")).unwrap();
    assert_eq!(report.registered, 1);
    let new = by_row(&engine).into_values().max_by_key(|r| r.row).unwrap();
    assert_eq!(new.state.name(), StateName::Closed, "{}", new.state.reason());
}

/// A new contractor of Energía asked for by `requester`, with a document number of its own.
fn contractor_asked_by(requester: &str, given: &str, document: &str) -> String {
    format!(
        "27/11/2026 09:00:00,{requester},Creación de cuenta,Contratista,{given},Quintero Ruiz,Cédula de ciudadanía,\
         {document},{}.q@gmail.com,Subdirección de Energía Eléctrica,Contratista - Abogado,{requester},UPME-300-2026,\
         01/12/2026,30/06/2027,,,,,,",
        given.to_lowercase()
    )
}

#[test]
fn the_matrix_in_force_is_the_file_as_it_is_now() {
    let (demo, mut engine) = after_first_cycle();
    let matrix_path = demo.path("autorizadores.csv");
    let matrix = std::fs::read_to_string(&matrix_path).unwrap();
    let supervisor = "andres.mejia@upme.gov.co";
    // The supervisor of Energía is taken out of the matrix, without a restart.
    let without: String =
        matrix.lines().filter(|l| !l.starts_with(supervisor)).map(|l| format!("{l}\n")).collect();
    std::fs::write(&matrix_path, &without).unwrap();
    let responses = demo.responses();
    demo.write_responses(&format!(
        "{responses}{}\n",
        contractor_asked_by(supervisor, "Tomas", "1.111.222.333")
    ));
    engine.cycle(at("2026-11-27T14:00:00Z")).unwrap();
    let rows = by_row(&engine);
    let last = rows.values().max_by_key(|r| r.row).unwrap();
    assert_eq!(last.state.name(), StateName::Rejected, "{}", last.state.reason());
    assert!(last.state.reason().contains("matriz de autorizadores"), "{}", last.state.reason());

    // A matrix made invalid (a line without a role) that also drops Talento Humano's
    // coordinator: of the rows in force, only those it keeps the same still authorize.
    let coordinator = "carolina.rojas@upme.gov.co";
    let broken: String = without
        .lines()
        .filter(|l| !l.starts_with(coordinator))
        .map(|l| format!("{l}\n"))
        .chain(["nueva.persona@upme.gov.co,Nueva Persona,,*,2026-01-01,\n".to_string()])
        .collect();
    std::fs::write(&matrix_path, broken).unwrap();
    let hydrocarbons = "luisa.fernandez@upme.gov.co";
    let responses = demo.responses();
    demo.write_responses(&format!(
        "{responses}{}\n{}\n",
        contractor_asked_by(coordinator, "Ines", "2.222.333.444")
            .replace("Contratista,Ines", "Funcionario,Ines"),
        contractor_asked_by(hydrocarbons, "Pablo", "3.333.444.555")
            .replace("Subdirección de Energía Eléctrica", "Subdirección de Hidrocarburos")
    ));
    engine.cycle(at("2026-11-27T15:00:00Z")).unwrap();
    let rows = by_row(&engine);
    let mut newest: Vec<&Request> = rows.values().collect();
    newest.sort_by_key(|r| r.row);
    let (removed, kept) = (newest[newest.len() - 2], newest[newest.len() - 1]);
    assert_eq!(removed.state.name(), StateName::Rejected, "{}", removed.state.reason());
    assert!(removed.state.reason().contains("matriz de autorizadores"), "{}", removed.state.reason());
    assert_ne!(kept.state.name(), StateName::Rejected, "{}", kept.state.reason());
    let alert = demo.mails().into_iter().find(|m| m.subject.contains("Matriz de autorizadores no válida"));
    let alert = alert.expect("the administrators were not told");
    assert!(alert.body.contains("Siguen en uso solo las filas"), "{}", alert.body);
}

/// Issue 22: the entity's own wording of a kind. Unmapped, the request is not routed away: it
/// waits, acknowledged, and the administrators get one alert naming the option and the
/// setting; `check` lists it. Mapped in `[form.kinds]` (and the daemon started again), the
/// row is read again whole and the account is created.
#[test]
fn an_option_of_the_entity_s_form_waits_for_its_setting_then_is_carried_out() {
    let demo = Demo::new();
    let responses = demo.responses();
    let lines: Vec<&str> = responses.lines().collect();
    let vinculacion = lines[1].replace("Creación de cuenta", "Vinculación de funcionario");
    assert_ne!(vinculacion, lines[1]);
    write_lines(&demo, &[lines[0], &vinculacion]);

    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    engine.cycle(at(T0) + jiff::SignedDuration::from_mins(5)).unwrap();
    let waiting = by_row(&engine).remove(&2).unwrap();
    assert_eq!(waiting.state.name(), StateName::Received, "{:?}", waiting.history);
    assert_eq!(waiting.submission.unmapped, vec![("form.kinds".into(), "Vinculación de funcionario".into())]);
    let mails = demo.mails();
    let alerts: Vec<_> =
        mails.iter().filter(|m| m.subject.contains("Opción del formulario sin configurar")).collect();
    assert_eq!(alerts.len(), 1, "one alert: {:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    assert!(alerts[0].subject.contains("«Vinculación de funcionario»"), "{}", alerts[0].subject);
    assert!(
        alerts[0].body.contains("[form.kinds]\n\"Vinculación de funcionario\" = \"create\""),
        "{}",
        alerts[0].body
    );
    assert!(mails.iter().any(|m| m.message_id.contains(".acuse")), "acknowledged");
    assert!(!mails.iter().any(|m| m.subject.contains("no corresponde")), "not routed away");
    drop(engine);

    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    let mapped =
        config.replace("[form.kinds]\n", "[form.kinds]\n\"Vinculación de funcionario\" = \"create\"\n");
    assert_ne!(mapped, config);
    std::fs::write(demo.path("cuentas.toml"), mapped).unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0) + jiff::SignedDuration::from_mins(10)).unwrap();
    let created = by_row(&engine).remove(&2).unwrap();
    assert_eq!(created.state.name(), StateName::Closed, "{:?}", created.history);
    assert_eq!(created.account.as_deref(), Some("juan.perezg"));
    assert!(created.submission.unmapped.is_empty());
}

/// Issue 22: the service desk acts from its form. The demo's desk responses mark the on-site
/// reset done and confirm the deletion's seven steps; someone outside the matrix is refused;
/// each person is answered once; the history says who did what; the deletion then waits only
/// for its date. No mail carries a `cuentas …` command.
#[test]
fn the_service_desk_acts_from_its_form_and_each_response_is_answered_once() {
    use cuentas::request::{Actor, State};
    let demo = Demo::new();
    let mut engine = Engine::new(demo.config()).unwrap();
    // The demo's own clock: Monday 30 November, 10:00, after the desk's responses.
    engine.cycle(at("2026-11-30T15:00:00Z")).unwrap();
    let requests = by_row(&engine);
    let laura = Actor::Desk("laura.gomez@upme.gov.co".into());

    // Row 8, the on-site reset: closed by the desk, its note is what Sofía is told.
    let reset = &requests[&8];
    assert_eq!(reset.state.name(), StateName::Closed, "{}", reset.state.reason());
    assert!(reset.history.iter().any(|h| h.actor == laura && h.to == StateName::Notifying));
    let mails = demo.mails();
    let outcome = mails
        .iter()
        .find(|m| m.message_id.starts_with("<GU-2026-000007.") && m.message_id.contains(".resultado@"))
        .unwrap();
    assert_eq!(outcome.to, "sofia.herrera@upme.gov.co");
    assert!(outcome.body.contains("cambió su contraseña en su puesto"), "{}", outcome.body);

    // Row 14, the deletion: every step confirmed by Laura, none by the outsider.
    let deletion = &requests[&14];
    let State::AwaitingConfirmation { pending, .. } = &deletion.state else { panic!("{:?}", deletion.state) };
    assert!(pending.is_empty(), "{pending:?}");
    let confirmed: Vec<&str> = deletion
        .history
        .iter()
        .filter(|h| h.actor == laura && h.reason.starts_with("confirmado «"))
        .map(|h| h.reason.as_str())
        .collect();
    assert_eq!(confirmed.len(), 7, "{confirmed:?}");
    assert!(
        confirmed.iter().all(|r| r.contains("por Laura Gómez (laura.gomez@upme.gov.co)")),
        "{confirmed:?}"
    );
    let outsider = Actor::Desk("camilo.rios@upme.gov.co".into());
    let tried: Vec<_> = deletion.history.iter().filter(|h| h.actor == outsider).collect();
    assert_eq!(tried.len(), 1);
    assert!(tried[0].reason.contains("no autorizado") && tried[0].to == StateName::AwaitingConfirmation);

    // Each response answered, once: the outsider told why not, Laura told what is left.
    let answers: Vec<_> = mails.iter().filter(|m| m.message_id.starts_with("<mesa.")).collect();
    assert_eq!(answers.len(), 9);
    let refused = answers.iter().find(|m| m.to == "camilo.rios@upme.gov.co").unwrap();
    assert!(refused.body.contains("no está en la matriz de autorizadores"), "{}", refused.body);
    assert!(refused.subject.contains("GU-2026-000013"), "{}", refused.subject);
    let last = answers.iter().find(|m| m.body.contains("Todos los pasos están confirmados")).unwrap();
    assert_eq!(last.to, "laura.gomez@upme.gov.co");
    assert!(answers.iter().any(|m| m.body.contains("Falta confirmar: Copia de seguridad del calendario")));

    // No mail of the cycle tells anyone to type a command.
    let command = regex_lite_command();
    for m in &mails {
        assert!(!command(&m.body), "{}: {}", m.subject, m.body);
    }

    // Read once: later cycles answer nothing again; the account goes when its days are up
    // (30 days disabled), not before.
    engine.cycle(at("2026-12-01T15:00:00Z")).unwrap();
    assert_eq!(demo.mails().iter().filter(|m| m.message_id.starts_with("<mesa.")).count(), 9);
    engine.cycle(at("2026-12-29T15:00:00Z")).unwrap();
    assert_eq!(by_row(&engine)[&14].state.name(), StateName::AwaitingConfirmation);
    engine.cycle(at("2026-12-30T15:01:00Z")).unwrap();
    let deleted = &by_row(&engine)[&14];
    assert_eq!(deleted.state.name(), StateName::Closed, "{}", deleted.state.reason());
}

/// Whether a text holds a `cuentas <command>` line (`cuentas confirm …`, `cuentas show …`).
fn regex_lite_command() -> impl Fn(&str) -> bool {
    const COMMANDS: [&str; 10] =
        ["show", "confirm", "done", "cancel", "release", "retry", "replay", "requests", "report", "plan"];
    |text: &str| {
        let words: Vec<&str> = text.split(|c: char| c.is_whitespace() || c == '«' || c == '»').collect();
        words.windows(2).any(|w| w[0] == "cuentas" && COMMANDS.contains(&w[1]))
    }
}

/// Issue 22: from the desk form nobody acts on a request about their own account, and a held
/// disable is released by someone other than whoever asked for it, whatever role they hold.
/// Each refusal is answered and kept in the request's history.
#[test]
fn the_desk_form_refuses_the_holder_of_the_account_and_the_requester_of_a_held_disable() {
    let demo = Demo::new();
    demo.without_desk_responses();
    // Every disable held; Carolina (who asks for Ricardo's disable) and Felipe (whose account is
    // being deleted) may act from the desk too.
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    std::fs::write(
        demo.path("cuentas.toml"),
        config.replace("[directory]\n", "[directory]\nmax_disables_per_hour = 0\n"),
    )
    .unwrap();
    let matrix = std::fs::read_to_string(demo.path("autorizadores.csv")).unwrap();
    std::fs::write(
        demo.path("autorizadores.csv"),
        format!(
            "{matrix}carolina.rojas@upme.gov.co,Carolina Rojas,administrador,*,2025-02-01,\n\
             felipe.ramirez@upme.gov.co,Felipe Ramírez,mesa_servicio,*,2025-02-01,\n"
        ),
    )
    .unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2026-11-30T15:00:00Z")).unwrap();
    let held = &by_row(&engine)[&11];
    assert_eq!(held.state.name(), StateName::Held, "{}", held.state.reason());
    let deletion_id = "GU-2026-000013";

    let header = std::fs::read_to_string(demo.path("mesa.csv")).unwrap();
    std::fs::write(
        demo.path("mesa.csv"),
        format!(
            "{header}30/11/2026 10:10:00,carolina.rojas@upme.gov.co,{},Liberar inactivaciones retenidas,,\n\
             30/11/2026 10:11:00,felipe.ramirez@upme.gov.co,{deletion_id},Cancelar la solicitud,,Me quedo\n",
            held.id
        ),
    )
    .unwrap();
    engine.cycle(at("2026-11-30T15:15:00Z")).unwrap();
    let requests = by_row(&engine);
    assert_eq!(requests[&11].state.name(), StateName::Held);
    // The deletion is held too (the limit is 0): Felipe may not cancel it.
    assert_eq!(requests[&14].state.name(), StateName::Held);
    let mails = demo.mails();
    let answer = |to: &str| mails.iter().find(|m| m.to == to && m.message_id.starts_with("<mesa.")).unwrap();
    assert!(answer("carolina.rojas@upme.gov.co").body.contains("Usted pidió esta inactivación"));
    assert!(answer("felipe.ramirez@upme.gov.co").body.contains("sobre su propia cuenta"));
    for (row, who) in [(11, "carolina.rojas"), (14, "felipe.ramirez")] {
        let noted = requests[&row].history.iter().any(|h| {
            h.actor.to_string().contains(who)
                && h.reason.contains("desde el formulario de la mesa: no se hizo")
        });
        assert!(noted, "row {row}: {:?}", requests[&row].history);
    }

    // Natalia, an administradora who asked for nothing, releases them all: they go on at once.
    let desk = std::fs::read_to_string(demo.path("mesa.csv")).unwrap();
    std::fs::write(
        demo.path("mesa.csv"),
        format!(
            "{desk}30/11/2026 10:20:00,natalia.suarez@upme.gov.co,todas,Liberar inactivaciones retenidas,,\n"
        ),
    )
    .unwrap();
    engine.cycle(at("2026-11-30T15:25:00Z")).unwrap();
    let requests = by_row(&engine);
    let released = &requests[&11];
    assert!(
        matches!(released.state.name(), StateName::Notifying | StateName::Closed),
        "{}",
        released.state.reason()
    );
    assert_eq!(requests[&14].state.name(), StateName::AwaitingConfirmation);

    // Had the daemon stopped after those releases and before the answer (the releases' marks
    // kept, the cursor on Natalia's row 4), the row read again answers both as released, though
    // neither is held any more, and leaves no mark behind.
    let mut changes = cuentas::store::Changes::new();
    changes.set_desk_next_row(4);
    for id in [released.id, requests[&14].id] {
        changes.mark_alert(&format!("mesa/fila/4/{id}"), at("2026-11-30T15:25:00Z"));
    }
    engine.store().commit(changes).unwrap();
    engine.cycle(at("2026-11-30T15:30:00Z")).unwrap();
    let to_natalia: Vec<Mail> = demo
        .mails()
        .into_iter()
        .filter(|m| m.to == "natalia.suarez@upme.gov.co" && m.message_id.starts_with("<mesa.4."))
        .collect();
    assert_eq!(to_natalia.len(), 2, "{to_natalia:?}");
    let again = &to_natalia.iter().max_by_key(|m| m.message_id.clone()).unwrap().body;
    for id in [released.id, requests[&14].id] {
        assert!(again.contains(&format!("{id}: liberada")), "{again}");
    }
    assert!(engine.store().alerts_under("mesa/fila/").unwrap().is_empty());
}

/// Issue 23: the weekly report carries the drift reading. The demo's dry run keeps its
/// simulated directory beside the store; changed there by hand (a department, an account nobody
/// asked for), the next business morning's reading lists exactly that, and the report sent that
/// morning says it.
#[test]
fn the_weekly_report_says_what_the_directory_holds_that_no_request_made() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let config = std::fs::read_to_string(demo.path("cuentas.toml")).unwrap();
    std::fs::write(
        demo.path("cuentas.toml"),
        format!("{config}\n[report]\nrecipients = [\"direccion@upme.gov.co\"]\n"),
    )
    .unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    let first = engine.store().drift().unwrap().unwrap();
    // The first look: the accounts that were there before cuentas, listed once.
    assert!(
        first.findings.iter().all(|f| f.kind == cuentas::directory::drift::FindingKind::Inherited),
        "{first:#?}"
    );
    assert!(first.findings.iter().any(|f| f.sam == "carolina.rojas"));
    drop(engine);

    // By hand in the simulated directory: juan.perezg's dependency, a contractor's account.
    let path = demo.path("var/estado/directorio-simulado.json");
    let mut sim: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let accounts = sim["accounts"].as_array_mut().unwrap();
    let juan = accounts.iter_mut().find(|a| a["sam"] == "juan.perezg").unwrap();
    juan["department"] = "Oficina Asesora de Planeación".into();
    let mut by_hand = accounts.iter().find(|a| a["sam"] == "oscar.diaz").unwrap().clone();
    by_hand["sam"] = "contratista.mano".into();
    by_hand["dn"] = "CN=Contratista Mano,OU=Contratistas,OU=Usuarios,DC=upme,DC=gov,DC=co".into();
    by_hand["guid"] = "00000000-0000-0000-0000-00000000beef".into();
    by_hand["employee_id"] = "55555".into();
    by_hand["mail"] = "contratista.mano@upme.gov.co".into();
    by_hand["upn"] = "contratista.mano@upme.gov.co".into();
    by_hand["expires"] = serde_json::Value::Null;
    by_hand["enabled"] = true.into();
    accounts.push(by_hand);
    std::fs::write(&path, serde_json::to_string(&sim).unwrap()).unwrap();

    // Monday 30 November, 08:00: the reading, then the week's report.
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2026-11-30T13:00:00Z")).unwrap();
    let reading = engine.store().drift().unwrap().unwrap();
    let found: Vec<(&str, &str)> = reading.findings.iter().map(|f| (f.sam.as_str(), f.kind.key())).collect();
    assert_eq!(
        found,
        [("contratista.mano", "unregistered"), ("contratista.mano", "no-expiry"), ("juan.perezg", "changed")],
        "{reading:#?}"
    );
    let mails = demo.mails();
    let report = mails.iter().find(|m| m.subject.starts_with("Reporte de gestión de usuarios")).unwrap();
    let body = &report.body;
    assert!(
        body.contains(
            "El directorio frente al registro de cuentas (lectura del lunes 30 de noviembre de 2026"
        ),
        "{body}"
    );
    assert!(
        body.contains(
            "  juan.perezg (cambiada fuera de cuentas): department: «Oficina Asesora de Planeación», no el que puso GU-2026-000001"
        ),
        "{body}"
    );
    assert!(body.contains("  contratista.mano (cuenta que ninguna solicitud creó)"), "{body}");
    assert!(body.contains("  contratista activo sin fecha de vencimiento: 1"), "{body}");
    // The states as the entity reads them, not the program's names.
    assert!(body.contains("  Creación de cuenta: cerrada 7, espera corrección del solicitante 4"), "{body}");
    assert!(!["Closed", "NeedsInfo", "Scheduled"].iter().any(|s| body.contains(s)), "{body}");
    println!("{body}");
}

/// Issue 23: the end of a contract is reminded to the account's manager 10 and 3 business days
/// before (holidays skipped), once each, with the request form's links filled in; an account
/// whose contract was extended meanwhile gets no reminder for the old date.
#[test]
fn a_contract_s_end_is_reminded_to_the_manager_ten_and_three_business_days_before() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    drop(engine);
    // Two contractors whose contracts end on Friday 15 January 2027: Andrea's manager is
    // Carolina; Bruno's contract will be extended.
    add_contractors(
        &demo,
        &[
            ("andrea.contratista", "carolina.rojas@upme.gov.co", "71", "2027-01-15"),
            ("bruno.contratista", "", "72", "2027-01-15"),
        ],
    );
    // The demo's own contractors are reminded too (Valentina, whose cesión ends on 31
    // December): these two are the test's.
    let reminders = |demo: &Demo| -> Vec<(String, String)> {
        demo.mails()
            .into_iter()
            .filter(|m| {
                m.message_id.starts_with("<fin-de-contrato.") && m.message_id.contains(".contratista.")
            })
            .map(|m| (m.message_id, m.to))
            .collect()
    };
    let mut engine = Engine::new(demo.config()).unwrap();
    // Tuesday 29 December: eleven business days before; Wednesday 30: ten (1 January is a holiday).
    engine.cycle(at("2026-12-29T13:00:00Z")).unwrap();
    assert_eq!(reminders(&demo), vec![]);
    engine.cycle(at("2026-12-30T13:00:00Z")).unwrap();
    engine.cycle(at("2026-12-30T16:00:00Z")).unwrap();
    let sent = reminders(&demo);
    assert_eq!(
        sent,
        vec![
            (
                "<fin-de-contrato.andrea.contratista.2027-01-15.10@upme.gov.co>".to_string(),
                "carolina.rojas@upme.gov.co".to_string()
            ),
            (
                "<fin-de-contrato.bruno.contratista.2027-01-15.10@upme.gov.co>".to_string(),
                "mesadeservicio@upme.gov.co".to_string()
            ),
        ]
    );
    let mail =
        demo.mails().into_iter().find(|m| m.message_id.contains("andrea.contratista.2027-01-15.10")).unwrap();
    assert!(mail.body.contains("termina el viernes 15 de enero de 2027"), "{}", mail.body);
    assert!(
        mail.body.contains(
            "entry.1311000011=Modificaci%C3%B3n%20de%20cuenta&entry.1311000012=Contratista&entry.1311000013=andrea.contratista"
        ),
        "{}",
        mail.body
    );
    assert!(mail.body.contains("entry.1311000011=Terminaci%C3%B3n%20anticipada"), "{}", mail.body);
    let valentina =
        demo.mails().into_iter().find(|m| m.message_id.starts_with("<fin-de-contrato.valentina")).unwrap();
    assert_eq!(valentina.to, "luisa.fernandez@upme.gov.co", "her manager in the directory");
    drop(engine);
    // Bruno's contract extended to June (as a modification leaves it).
    edit_directory(&demo, &|accounts| {
        let bruno = accounts.iter_mut().find(|a| a["sam"] == "bruno.contratista").unwrap();
        bruno["expires"] = "2027-06-30".into();
    });
    let mut engine = Engine::new(demo.config()).unwrap();
    // Tuesday 12 January: three business days before (Monday the 11th is a holiday).
    engine.cycle(at("2027-01-08T13:00:00Z")).unwrap();
    assert_eq!(reminders(&demo).len(), 2);
    engine.cycle(at("2027-01-12T13:00:00Z")).unwrap();
    engine.cycle(at("2027-01-13T13:00:00Z")).unwrap();
    let sent: Vec<String> = reminders(&demo).into_iter().map(|(id, _)| id).collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(sent.contains(&"<fin-de-contrato.andrea.contratista.2027-01-15.3@upme.gov.co>".to_string()));
}

/// Issue 23: a contract's last day ends with its account disabled by cuentas, at the end of
/// that day, with the notices of a disable, in a request of its own (no form row, by the
/// procedure's word). The account whose contract was extended in AD before then keeps working;
/// one whose contract had ended before cuentas first read the directory is listed, not acted on;
/// a contract ending on a non-working day (Valentina's cesión, 31 December) is disabled at the
/// end of that day all the same.
#[test]
fn a_contract_s_last_day_ends_with_its_account_disabled_unless_it_was_extended() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    drop(engine);
    add_contractors(
        &demo,
        &[
            ("andrea.contratista", "carolina.rojas@upme.gov.co", "71", "2027-01-16"),
            ("bruno.contratista", "", "72", "2027-01-16"),
            // Ended before cuentas first read the directory (27 November): not its to act on.
            ("viejo.contratista", "", "73", "2026-11-20"),
        ],
    );
    let opened = |engine: &Engine| -> Vec<Request> {
        engine.store().requests().map(|r| r.unwrap()).filter(|r| r.origin.is_some()).collect()
    };
    let mut engine = Engine::new(demo.config()).unwrap();
    // Valentina's cesión ends on Thursday 31 December: nothing the day before; opened at that
    // morning's reading, due at the end of that working day.
    engine.cycle(at("2026-12-30T13:00:00Z")).unwrap();
    assert!(opened(&engine).is_empty());
    engine.cycle(at("2026-12-31T13:00:00Z")).unwrap();
    let valentina = opened(&engine);
    assert_eq!(valentina.len(), 1, "{valentina:#?}");
    let v = &valentina[0];
    assert_eq!((v.row, v.submission.account.as_str()), (0, "valentina.quinones"));
    assert_eq!(v.submission.kind, Some(Kind::Disable));
    assert_eq!(v.submission.requester, "luisa.fernandez@upme.gov.co", "her manager in the directory");
    let State::Scheduled { due, .. } = &v.state else { panic!("{:?}", v.state) };
    assert_eq!(*due, at("2026-12-31T22:00:00Z"), "17:00 in Bogotá on her last day");
    engine.cycle(at("2026-12-31T21:59:00Z")).unwrap();
    assert_eq!(directory_account(&demo, "valentina.quinones")["enabled"], true);
    engine.cycle(at("2026-12-31T22:00:00Z")).unwrap();
    assert_eq!(directory_account(&demo, "valentina.quinones")["enabled"], false);

    // Andrea's and Bruno's last day is Saturday 16 January, a day without a morning reading:
    // nothing on Thursday the 14th, opened on Friday the 15th (the next business day is
    // Monday the 18th), due at the end of the Saturday.
    engine.cycle(at("2027-01-14T13:00:00Z")).unwrap();
    assert_eq!(opened(&engine).len(), 1);
    engine.cycle(at("2027-01-15T13:00:00Z")).unwrap();
    let now_open: Vec<(String, String)> = opened(&engine)
        .into_iter()
        .filter(|r| r.is_open())
        .map(|r| (r.submission.account, r.submission.requester))
        .collect();
    assert_eq!(
        now_open,
        vec![
            ("andrea.contratista".to_string(), "carolina.rojas@upme.gov.co".to_string()),
            ("bruno.contratista".to_string(), "mesadeservicio@upme.gov.co".to_string()),
        ]
    );
    let andrea_id =
        opened(&engine).into_iter().find(|r| r.submission.account == "andrea.contratista").unwrap().id;
    let bruno_id =
        opened(&engine).into_iter().find(|r| r.submission.account == "bruno.contratista").unwrap().id;
    let shown = cuentas::cli::show(
        &engine.store().request(andrea_id).unwrap().unwrap(),
        &[],
        &demo.config(),
        at("2027-01-15T13:00:00Z"),
    );
    assert!(shown.contains("row -") && shown.contains("opened:    by cuentas"), "{shown}");
    drop(engine);
    // On Friday afternoon Bruno's extension reaches the directory (done by hand, say).
    edit_directory(&demo, &|accounts| {
        accounts.iter_mut().find(|a| a["sam"] == "bruno.contratista").unwrap()["expires"] =
            "2027-06-30".into();
    });
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2027-01-15T22:00:00Z")).unwrap();
    engine.cycle(at("2027-01-16T21:59:00Z")).unwrap();
    assert_eq!(
        directory_account(&demo, "andrea.contratista")["enabled"],
        true,
        "usable through her last day"
    );
    engine.cycle(at("2027-01-16T22:00:00Z")).unwrap();
    engine.cycle(at("2027-01-16T22:01:00Z")).unwrap();
    assert_eq!(directory_account(&demo, "andrea.contratista")["enabled"], false);
    assert_eq!(directory_account(&demo, "bruno.contratista")["enabled"], true, "extended: kept");
    assert_eq!(directory_account(&demo, "viejo.contratista")["enabled"], true, "not cuentas' to end");
    let andrea = engine.store().request(andrea_id).unwrap().unwrap();
    assert_eq!(andrea.state.name(), StateName::Closed, "{:?}", andrea.state);
    let bruno = engine.store().request(bruno_id).unwrap().unwrap();
    assert_eq!(bruno.state.name(), StateName::Cancelled);
    assert!(
        bruno.state.reason().contains("el contrato se prorrogó hasta el 2027-06-30"),
        "{}",
        bruno.state.reason()
    );
    // The notices of a disable: the holder, and the manager who answers for the account.
    let about = |id: RequestId| -> Vec<Mail> {
        demo.mails().into_iter().filter(|m| m.subject.contains(&format!("[{id}]"))).collect()
    };
    let andrea_mails = about(andrea_id);
    let notice =
        andrea_mails.iter().find(|m| m.to == "andrea.contratista@upme.gov.co").expect("holder notice");
    assert!(notice.body.contains("Su contrato terminó el sábado 16 de enero de 2027"), "{}", notice.body);
    assert!(!notice.body.contains("Lo solicitó"), "{}", notice.body);
    let outcome = andrea_mails.iter().find(|m| m.to == "carolina.rojas@upme.gov.co").expect("outcome");
    assert!(
        outcome.body.contains("cuentas la abrió: el contrato terminó el sábado 16 de enero de 2027"),
        "{}",
        outcome.body
    );
    assert!(about(bruno_id).is_empty(), "an extension is nobody's news");
    // Once per contract: later readings open nothing more.
    engine.cycle(at("2027-01-18T13:00:00Z")).unwrap();
    engine.cycle(at("2027-01-19T13:00:00Z")).unwrap();
    assert_eq!(opened(&engine).len(), 3);
}

/// Most contracts of a public entity end on 31 December: their disables are the directory's
/// word, not a requester's, so the hourly limit of disables (10 in the demo) neither holds them
/// nor is used up by them: a disable asked for in the form in that same hour goes through.
#[test]
fn a_year_end_of_many_contracts_is_not_held_by_the_hourly_limit_nor_uses_it_up() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    drop(engine);
    let limit = demo.config().directory.max_disables_per_hour as usize;
    let names: Vec<String> = (0..limit + 4).map(|i| format!("fin{i:02}.contratista")).collect();
    let ids: Vec<String> = (0..names.len()).map(|i| format!("9{i:02}")).collect();
    let ending: Vec<(&str, &str, &str, &str)> = names
        .iter()
        .zip(&ids)
        .map(|(sam, id)| (sam.as_str(), "carolina.rojas@upme.gov.co", id.as_str(), "2026-12-31"))
        .collect();
    add_contractors(&demo, &ending);
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2026-12-31T13:00:00Z")).unwrap();
    engine.cycle(at("2026-12-31T22:00:00Z")).unwrap();
    for sam in &names {
        assert_eq!(directory_account(&demo, sam)["enabled"], false, "{sam}");
    }
    let opened: Vec<Request> =
        engine.store().requests().map(|r| r.unwrap()).filter(|r| r.origin.is_some()).collect();
    assert!(opened.len() > limit, "{} contract ends", opened.len());
    assert!(opened.iter().all(|r| r.state.name() != StateName::Held), "none held");
    assert!(demo.mails().iter().all(|m| !m.subject.contains("Inactivaciones retenidas")), "no alert");
    // Ten minutes later Talento Humano asks, in the form, for a disable: within the limit.
    demo.write_responses(&format!(
        "{}31/12/2026 17:05:00,talentohumano@upme.gov.co,Inactivación de cuenta,Funcionario,Natalia,\
         Beltrán,,,,Oficina Asesora de Planeación,,,,,,natalia.beltran,,,,,Retiro por renuncia\n",
        demo.responses()
    ));
    engine.cycle(at("2026-12-31T22:10:00Z")).unwrap();
    let natalia = by_row(&engine).into_values().max_by_key(|r| r.row).unwrap();
    assert_eq!(natalia.submission.account, "natalia.beltran");
    assert_ne!(natalia.state.name(), StateName::Held, "{}", natalia.state.reason());
    assert_eq!(directory_account(&demo, "natalia.beltran")["enabled"], false, "{:?}", natalia.state);
}

/// A desk response whose command was carried out, the daemon stopped before the form's
/// cursor moved past it (the command commits, then the answer and the cursor): read again, it
/// is answered as done, not refused as a step already taken, and done once.
#[test]
fn a_desk_response_read_again_after_a_stop_is_answered_as_done_and_done_once() {
    use cuentas::request::Actor;
    let demo = Demo::new();
    let desk = std::fs::read_to_string(demo.path("mesa.csv")).unwrap();
    // The header and the first two responses: the outsider's, then Laura's «atendida» of row 8.
    let first: Vec<&str> = desk.lines().take(3).collect();
    std::fs::write(demo.path("mesa.csv"), first.join("\n") + "\n").unwrap();
    let mut engine = Engine::new(demo.config()).unwrap();
    let now = at("2026-11-30T15:00:00Z");
    engine.cycle(now).unwrap();
    let laura = Actor::Desk("laura.gomez@upme.gov.co".into());
    let reset = by_row(&engine)[&8].clone();
    assert_eq!(reset.state.name(), StateName::Closed);
    let mark = format!("mesa/fila/3/{}", reset.id);
    assert_eq!(engine.store().alert_sent(&mark).unwrap(), None, "cleared with the answer");
    // The store as a stop after the command's commit leaves it: the response's mark (written
    // with the command's change), the cursor still on it (row 3).
    let mut changes = cuentas::store::Changes::new();
    changes.set_desk_next_row(3);
    changes.mark_alert(&mark, now);
    engine.store().commit(changes).unwrap();
    drop(engine);
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at("2026-11-30T15:05:00Z")).unwrap();
    let again = engine.store().request(reset.id).unwrap().unwrap();
    let by_laura: Vec<_> = again.history.iter().filter(|h| h.actor == laura).collect();
    assert_eq!(by_laura.len(), 1, "done once, nothing noted again: {by_laura:#?}");
    let answers: Vec<Mail> = demo
        .mails()
        .into_iter()
        .filter(|m| m.message_id.starts_with("<mesa.3.") && m.to == "laura.gomez@upme.gov.co")
        .collect();
    assert_eq!(answers.len(), 2, "the first answer, and the one the stop would have left unsent");
    for a in &answers {
        assert!(a.body.contains("marcada como atendida"), "{}", a.body);
        assert!(!a.body.contains("no se hizo"), "{}", a.body);
    }
    // The mark went with the answer: a later cycle reads nothing again.
    engine.cycle(at("2026-11-30T15:10:00Z")).unwrap();
    assert_eq!(demo.mails().iter().filter(|m| m.message_id.starts_with("<mesa.3.")).count(), 2);
}

/// Issue 23: an employee's return from a leave is told to whoever asked for it (Talento Humano)
/// the business day before, once: Ana Gómez's leave from 14 December returns on Tuesday 12
/// January 2027 (Monday the 11th is a holiday), so Friday the 8th.
#[test]
fn the_return_from_a_leave_is_told_to_talento_humano_the_business_day_before() {
    let demo = Demo::new();
    demo.without_desk_responses();
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(at(T0)).unwrap();
    let told = |demo: &Demo| {
        demo.mails().into_iter().filter(|m| m.message_id.starts_with("<regreso.")).collect::<Vec<_>>()
    };
    for day in ["2026-12-14T13:00:00Z", "2027-01-07T13:00:00Z", "2027-01-07T20:00:00Z"] {
        engine.cycle(at(day)).unwrap();
        assert!(told(&demo).is_empty(), "{day}");
    }
    let leave = &by_row(&engine)[&15];
    assert_eq!(leave.state.name(), StateName::Scheduled, "{}", leave.state.reason());
    for minute in ["13:00", "14:00", "20:00"] {
        engine.cycle(at(&format!("2027-01-08T{minute}:00Z"))).unwrap();
    }
    let sent = told(&demo);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "talentohumano@upme.gov.co");
    assert!(sent[0].body.contains("Ana Gómez (ana.gomez) regresa de sus vacaciones o licencia: el martes 12 de enero de 2027, 7:30 a. m."), "{}", sent[0].body);
    assert!(sent[0].subject.contains("GU-2026-000014"), "{}", sent[0].subject);
}
