//! The mails as a person of the entity reads them, through the demo's first cycle: the access
//! data state the domain's password rule and the sign-in address; the notice about an account
//! also goes to the personal address the directory holds, never to one typed in the form;
//! greetings and the signature.

// A test fails by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Demo, Mail};
use cuentas::engine::Engine;
use jiff::Timestamp;

/// Friday 27 November 2026, 08:00 in Bogotá.
const T0: &str = "2026-11-27T13:00:00Z";

/// The demo after its first cycle, its directory and responses changed first by `prepare`.
fn first_cycle(prepare: impl FnOnce(&Demo)) -> (Demo, Engine, Vec<Mail>) {
    let demo = Demo::new();
    prepare(&demo);
    let mut engine = Engine::new(demo.config()).unwrap();
    engine.cycle(T0.parse::<Timestamp>().unwrap()).unwrap();
    let mails = demo.mails();
    (demo, engine, mails)
}

fn edit(demo: &Demo, file: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(demo.path(file)).unwrap();
    assert!(text.contains(from), "«{from}» not in {file}");
    std::fs::write(demo.path(file), text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_access_data_state_the_domain_s_rule_and_the_sign_in_address() {
    let (_demo, _engine, mails) = first_cycle(|_| {});
    let maria = mails
        .iter()
        .find(|m| m.message_id.contains(".datos-de-acceso@") && m.to.contains("mariajo.delahoz@gmail.com"))
        .unwrap();
    let body = &maria.body;
    assert!(body.starts_with("Cordial saludo,\n\nMaría José De La Hoz Peñaloza:\n"), "{body}");
    assert!(body.contains("  Usuario para iniciar sesión: maria.delahoz@upme.gov.co\n"), "{body}");
    assert!(body.contains("  Usuario de red: maria.delahoz\n"), "{body}");
    // The dry run's domain has a new AD domain's policy: 7 characters and complexity, not a
    // fixed rule of 8.
    assert!(!body.contains("al menos 8 caracteres"), "{body}");
    assert!(
        body.contains(
            "La nueva\ncontraseña:\n  - debe tener al menos 7 caracteres;\n  - debe combinar al menos tres de \
             estos cuatro: mayúsculas, minúsculas, números y símbolos;\n  - no puede contener su nombre ni su \
             usuario;\n  - no puede ser una que ya haya usado.\n"
        ),
        "{body}"
    );
    assert!(body.contains("escriba\nel usuario completo: maria.delahoz@upme.gov.co. "), "{body}");
    assert!(body.trim_end().ends_with("Cordialmente,\n\nMesa de Servicio UPME"), "{body}");
}

#[test]
fn requesters_are_greeted_and_signed_for_by_the_entity() {
    let (_demo, _engine, mails) = first_cycle(|demo| {
        edit(
            demo,
            "cuentas.toml",
            "[mail]\n",
            "[mail]\nsignature = \"\"\"\nMesa de Servicio\nOficina de Tecnologías de la Información\n\"\"\"\n",
        );
    });
    for key in
        [".acuse@", ".rechazo@", ".redireccion@", ".informacion-requerida@", ".resultado@", ".aviso-titular"]
    {
        let some: Vec<&Mail> = mails.iter().filter(|m| m.message_id.contains(key)).collect();
        assert!(!some.is_empty(), "{key}");
        for m in some {
            assert!(m.body.starts_with("Cordial saludo,\n\n"), "{key}: {}", m.body);
            assert!(
                m.body
                    .trim_end()
                    .ends_with("Cordialmente,\n\nMesa de Servicio\nOficina de Tecnologías de la Información"),
                "{key}: {}",
                m.body
            );
        }
    }
}

#[test]
fn the_holder_is_told_at_the_personal_address_on_record_not_at_one_typed_in_the_form() {
    let (_demo, engine, mails) = first_cycle(|demo| {
        // Ricardo López's personal address is on record; Ana Gómez's is her own mailbox.
        edit(
            demo,
            "directorio.json",
            "\"mail\": \"ricardo.lopez@upme.gov.co\",",
            "\"mail\": \"ricardo.lopez@upme.gov.co\",\n      \"personal_email\": \"ricardo.lopez.p@gmail.com\",",
        );
        edit(
            demo,
            "directorio.json",
            "\"mail\": \"ana.gomez@upme.gov.co\",",
            "\"mail\": \"ana.gomez@upme.gov.co\",\n      \"personal_email\": \"Ana.Gomez@upme.gov.co\",",
        );
        // The disable's requester types another personal address in the form.
        edit(demo, "respuestas.csv", ",Ricardo,López,,,,", ",Ricardo,López,,,atacante@gmail.com,");
    });
    assert!(mails.iter().all(|m| !m.to.contains("atacante@gmail.com")), "a mail went to the form's address");
    let notices = |id: &str| -> Vec<&Mail> {
        mails
            .iter()
            .filter(|m| {
                m.message_id.starts_with(&format!("<{id}.")) && m.message_id.contains(".aviso-titular")
            })
            .collect()
    };
    // The disable of ricardo.lopez (row 11): his mailbox, and his personal address on record,
    // each its own message.
    let ricardo = notices("GU-2026-000010");
    assert_eq!(ricardo.len(), 2, "{ricardo:#?}");
    let to = |address: &str| *ricardo.iter().find(|m| m.to == address).unwrap();
    let (mailbox, personal) = (to("ricardo.lopez@upme.gov.co"), to("ricardo.lopez.p@gmail.com"));
    assert!(mailbox.message_id.ends_with(".aviso-titular@upme.gov.co>"), "{}", mailbox.message_id);
    assert!(personal.message_id.ends_with(".aviso-titular.2@upme.gov.co>"), "{}", personal.message_id);
    assert_eq!(mailbox.body, personal.body);
    assert!(personal.body.contains("Le informamos sobre su cuenta de usuario ricardo.lopez:"));
    // The history shows the personal address masked.
    let request = engine.store().requests().map(|r| r.unwrap()).find(|r| r.row == 11).unwrap();
    let sent: Vec<&str> =
        request.history.iter().map(|h| h.reason.as_str()).filter(|r| r.contains("aviso-titular")).collect();
    assert_eq!(
        sent,
        [
            "correo «aviso-titular» enviado a ricardo.lopez@upme.gov.co",
            "correo «aviso-titular» enviado a r***@gmail.com"
        ]
    );
    assert!(request.history.iter().all(|h| !h.reason.contains("ricardo.lopez.p@")), "{:#?}", request.history);
    // The modification of ana.gomez (row 10): her personal address is her mailbox, told once.
    let ana = notices("GU-2026-000009");
    assert_eq!(ana.iter().map(|m| m.to.as_str()).collect::<Vec<_>>(), ["ana.gomez@upme.gov.co"]);
}
