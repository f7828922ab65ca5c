//! The Spanish messages, rendered with whatever a form's answers hold: names, the kind as
//! written, the requester, the account, the notes and department quoted in a detail…
//!
//! Input: values separated by 0x1F, read as UTF-8 lossily, given in order to the template
//! variables below (form values first); variables without a value keep the sample's.
//!
//! Properties: rendering any of the built-in templates never panics, nor does turning the
//! message into HTML and into a mail; a value is printed as written and never evaluated: the
//! message rendered with the values is the one rendered with stand-ins, each stand-in replaced
//! by its value (so `{{ password }}` or `{% if %}` in a name is text); the HTML shows no tag
//! that came from a value; a value cannot add a header to the mail.
#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cuentas::notify::file::{Envelope, to_html};
use cuentas::notify::{Rendered, Templates, sample_context};
use libfuzzer_sys::fuzz_target;
use minijinja::Value;

/// The built-in templates (src/notify/templates).
const TEMPLATES: [&str; 15] = [
    "acuse",
    "rechazo",
    "redireccion",
    "informacion-requerida",
    "resultado",
    "gestion-manual",
    "alerta",
    "datos-de-acceso",
    "aviso-titular",
    "duplicada",
    "avance",
    "lista-eliminacion",
    "aviso-ans",
    "registro",
    "sin-efecto",
];

/// The variables that carry what a requester wrote, in the order the input fills them; the
/// other text variables of the sample follow.
const FORM_KEYS: [&str; 7] = ["name", "kind", "kind_answer", "requester", "account", "detail", "subject"];

/// Headers cuentas writes; any other is one a value added.
const HEADERS: [&str; 10] = [
    "from",
    "reply-to",
    "to",
    "subject",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "date",
    "content-type",
];

static TEMPLATES_LOADED: LazyLock<Templates> =
    LazyLock::new(|| Templates::load(None).expect("the built-in templates load"));

static SAMPLE: LazyLock<(BTreeMap<String, Value>, Vec<String>)> = LazyLock::new(|| {
    let sample = sample_context();
    let mut map = BTreeMap::new();
    for key in sample.try_iter().expect("the sample is a map") {
        let name = key.as_str().expect("keys are names").to_string();
        let value = sample.get_attr(&name).expect("a value");
        map.insert(name, value);
    }
    let mut keys: Vec<String> = FORM_KEYS.iter().map(|k| k.to_string()).collect();
    for (name, value) in &map {
        if value.as_str().is_some() && !keys.contains(name) {
            keys.push(name.clone());
        }
    }
    (map, keys)
});

fn context(values: &[(&String, String)], flags: usize) -> Value {
    let mut map = SAMPLE.0.clone();
    for (key, value) in values {
        map.insert((*key).clone(), Value::from(value.clone()));
    }
    for (i, flag) in ["credentials_sent", "dry_run", "reset", "replaces"].into_iter().enumerate() {
        map.insert(flag.to_string(), Value::from(flags & (1 << i) != 0));
    }
    map.into_iter().collect()
}

fn render(name: &str, ctx: &Value) -> Result<Rendered, String> {
    TEMPLATES_LOADED.render(name, ctx).map_err(|e| e.to_string())
}

/// The HTML's body without the tags `to_html` writes: nothing there may open a tag.
fn check_html(body: &str) {
    let html = to_html(body);
    let inner = html
        .split_once("<body style=\"font-family: sans-serif\">\n")
        .and_then(|(_, rest)| rest.rsplit_once("\n</body></html>"))
        .map(|(inner, _)| inner)
        .expect("the HTML has a body");
    let text = inner.replace("<p>", "").replace("</p>", "").replace("<br>", "");
    assert!(!text.contains(['<', '>']), "a tag from a value in the HTML: {html:?}");
}

/// The message's own headers (before the first blank line) are only the ones cuentas writes.
fn check_mail(rendered: &Rendered, to: &str) {
    let envelope = Envelope {
        from: "Mesa de Servicio UPME <mesadeservicio@upme.gov.co>".parse().expect("a mailbox"),
        reply_to: None,
        domain: "upme.gov.co".into(),
        shadow: None,
    };
    let Ok(message) = envelope.message_in_thread(
        "GU-2026-000001.3.acuse",
        &[to.to_string(), "mesadeservicio@upme.gov.co".to_string()],
        rendered,
        Some("GU-2026-000001"),
    ) else {
        return;
    };
    let formatted = message.formatted();
    let text = String::from_utf8_lossy(&formatted);
    let head = text.split_once("\r\n\r\n").map_or(&*text, |(head, _)| head);
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let name = line.split_once(':').map_or(line, |(name, _)| name).to_ascii_lowercase();
        assert!(HEADERS.contains(&name.as_str()), "header {name:?} in {head:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (_, keys) = &*SAMPLE;
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\u{1F}').collect();
    let flags = data.len();

    // As written: never a panic, whatever the bytes.
    let raw: Vec<(&String, String)> = keys.iter().zip(&parts).map(|(k, v)| (k, v.to_string())).collect();
    let ctx = context(&raw, flags);
    for name in TEMPLATES {
        if let Ok(r) = render(name, &ctx) {
            check_html(&r.body);
            check_mail(&r, raw.get(3).map_or("", |(_, v)| v.as_str()));
        }
    }

    // One line each, trimmed (as a subject line reads them), without the stand-ins' marks: the
    // message with the values is the message with stand-ins, each replaced by its value.
    let values: Vec<(&String, String)> = raw
        .iter()
        .map(|(k, v)| {
            (*k, v.replace(['\r', '\n'], " ").replace(['\u{E000}', '\u{E001}'], "").trim().to_string())
        })
        .collect();
    let stand_ins: Vec<(&String, String)> = values
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (*k, if v.is_empty() { String::new() } else { format!("\u{E000}{i}\u{E001}") }))
        .collect();
    let with_values = context(&values, flags);
    let with_stand_ins = context(&stand_ins, flags);
    for name in TEMPLATES {
        let got = render(name, &with_values);
        let want = render(name, &with_stand_ins).map(|r| {
            let mut r = r;
            for ((_, value), (_, stand_in)) in values.iter().zip(&stand_ins) {
                if !stand_in.is_empty() {
                    r.subject = r.subject.replace(stand_in.as_str(), value);
                    r.body = r.body.replace(stand_in.as_str(), value);
                }
            }
            r
        });
        match (got, want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "template {name}: a value not printed as written"),
            (Err(_), Err(_)) => {}
            (got, want) => panic!("template {name}: {got:?} with the values, {want:?} with stand-ins"),
        }
    }
});
