//! Evidence for audits (pure): one file an auditor keeps, a JSON object a line, each line
//! chained to the one before by its SHA-256 (`anterior`), the last one closing the chain with
//! the count. A line changed, removed or added breaks the chain where it is; the hash the
//! command prints at the end anchors the whole file (kept apart from it, in the ticket or the
//! minutes, it shows that the file is the one produced). Personal data stay out: requests by
//! id, account and the requester's institutional address; no names, documents or personal
//! addresses.

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Value, json};

use crate::calendar::Calendar;
use crate::config::SlaConfig;
use crate::request::{Request, StateName};
use crate::store::Drift;

/// The hash of the line before the first.
const START: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The evidence of the requests submitted from `from` to `to` (both included), and the last
/// drift reading: the file's text, and the hash its chain ends in.
/// `institutional` tells the entity's addresses: any other is written as «(externa)».
pub fn write(
    requests: &[Request],
    drift: Option<&Drift>,
    (calendar, sla): (&Calendar, &SlaConfig),
    institutional: &dyn Fn(&str) -> bool,
    (from, to): (Date, Date),
    now: Timestamp,
) -> (String, String) {
    let mut sorted: Vec<&Request> = requests.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let mut evidence = Evidence::new((calendar, sla), institutional, (from, to), now);
    for r in sorted {
        evidence.add(r);
    }
    evidence.finish(drift)
}

/// The evidence written one request at a time, in id order (the store's own order): each line
/// is chained as it comes, and only the text is kept, never the requests.
pub struct Evidence<'a> {
    calendar: &'a Calendar,
    sla: &'a SlaConfig,
    institutional: &'a dyn Fn(&str) -> bool,
    from: Date,
    to: Date,
    now: Timestamp,
    chain: Chain,
}

impl<'a> Evidence<'a> {
    /// The file begun with its header.
    pub fn new(
        (calendar, sla): (&'a Calendar, &'a SlaConfig),
        institutional: &'a dyn Fn(&str) -> bool,
        (from, to): (Date, Date),
        now: Timestamp,
    ) -> Self {
        let mut chain = Chain::default();
        chain.push(json!({
            "tipo": "encabezado",
            "desde": from.to_string(),
            "hasta": to.to_string(),
            "generado": now.to_string(),
            "version": env!("CARGO_PKG_VERSION"),
        }));
        Evidence { calendar, sla, institutional, from, to, now, chain }
    }

    /// Writes `r` if it was submitted in the period, as the report counts them (the form's
    /// time, not the cycle's). Requests come in id order.
    pub fn add(&mut self, r: &Request) {
        let day = crate::sla::start(r, self.calendar).to_zoned(self.calendar.time_zone().clone()).date();
        if self.from <= day && day <= self.to {
            self.chain.push(request_record(r, self.calendar, self.sla, self.institutional, self.now));
        }
    }

    /// The file closed with the last drift reading's findings and the count: its text, and
    /// the hash its chain ends in.
    pub fn finish(mut self, drift: Option<&Drift>) -> (String, String) {
        if let Some(reading) = drift {
            for f in &reading.findings {
                self.chain.push(json!({
                    "tipo": "deriva",
                    "leida": reading.at.to_string(),
                    "cuenta": f.sam,
                    "hallazgo": f.kind.key(),
                    "detalle": f.detail,
                    "solicitud": f.request.map(|id| id.to_string()),
                    "cambiada_en_ad": f.changed.map(|t| t.to_string()),
                }));
            }
        }
        let count = self.chain.lines;
        self.chain.push(json!({ "tipo": "cierre", "lineas": count }));
        (self.chain.out, self.chain.previous)
    }
}

/// One request: who asked, the rule that authorized it, its operations and times, its service level.
fn request_record(
    r: &Request,
    calendar: &Calendar,
    sla: &SlaConfig,
    institutional: &dyn Fn(&str) -> bool,
    now: Timestamp,
) -> Value {
    let s = &r.submission;
    let address = |a: &str| if institutional(a) { a.to_string() } else { "(externa)".to_string() };
    // The rule that authorized it; a refusal's or a question's reason quotes the answers.
    let authorization = r
        .history
        .iter()
        .find(|h| h.from == Some(StateName::Received) && h.reason.starts_with("autorizada"))
        .map(|h| h.reason.clone());
    let operations: Vec<Value> = r
        .history
        .iter()
        .filter(|h| h.reason.starts_with("directorio"))
        .map(|h| json!({ "en": h.at.to_string(), "operacion": without_values(&h.reason) }))
        .collect();
    // Its changes of state, and what people did to it (the service desk's confirmations, an
    // administrator's release), with what they wrote.
    use crate::request::Actor;
    let steps: Vec<Value> = r
        .history
        .iter()
        .filter(|h| h.from != Some(h.to) || matches!(h.actor, Actor::Desk(_) | Actor::Admin(_)))
        .map(|h| {
            let by = match &h.actor {
                Actor::Requester(who) => format!("solicitante {}", address(who)),
                other => other.to_string(),
            };
            match &h.actor {
                Actor::Desk(_) | Actor::Admin(_) => {
                    json!({ "en": h.at.to_string(), "por": by, "a": h.to.as_str(), "que": h.reason })
                }
                _ => json!({ "en": h.at.to_string(), "por": by, "a": h.to.as_str() }),
            }
        })
        .collect();
    let hours = sla.hours_for(s.kind);
    let m = crate::sla::measure(r, calendar, hours, now);
    json!({
        "tipo": "solicitud",
        "id": r.id.to_string(),
        // A request cuentas opened itself (a contract's end) has no row.
        "fila": Some(r.row).filter(|_| r.origin.is_none()),
        "clase": s.kind.map(|k| k.key()),
        "solicitante": address(&s.requester),
        "cuenta": r.account.as_deref().unwrap_or(&s.account),
        "recibida": r.received_at.to_string(),
        "estado": r.state.name().as_str(),
        "autorizacion": authorization,
        "operaciones": operations,
        "pasos": steps,
        "ans": {
            "medido": super::measured(s.kind, sla),
            "horas": hours,
            "consumidas": crate::sla::hours(m.consumed),
            "cumplido": !m.broken(),
        },
    })
}

/// A directory operation as the history says it, without the values a creation or a
/// modification wrote (names, document, personal address): the account and the attributes.
fn without_values(line: &str) -> String {
    let (prefix, op) = line.split_once(": ").unwrap_or(("", line));
    let op = if let Some(created) = op.strip_prefix("create ") {
        format!("create {}", created.split(' ').next().unwrap_or_default())
    } else if op.starts_with("modify ") {
        // `modify X: department: «A» → «B», title: «C» → «D»`: the quoted values out.
        let mut kept = String::new();
        let mut quoted = false;
        for c in op.chars() {
            match c {
                '«' => quoted = true,
                '»' => quoted = false,
                _ if !quoted => kept.push(c),
                _ => {}
            }
        }
        kept.replace(":  → ", "")
    } else {
        op.to_string()
    };
    if prefix.is_empty() { op } else { format!("{prefix}: {op}") }
}

/// The lines so far, each with its number and the hash of the line before; and the last
/// line's hash.
struct Chain {
    out: String,
    previous: String,
    lines: usize,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain { out: String::new(), previous: START.to_string(), lines: 0 }
    }
}

impl Chain {
    fn push(&mut self, mut record: Value) {
        self.lines += 1;
        if let Value::Object(fields) = &mut record {
            fields.insert("n".into(), json!(self.lines));
            fields.insert("anterior".into(), json!(self.previous));
        }
        let line = record.to_string();
        self.previous = sha256(&line);
        self.out.push_str(&line);
        self.out.push('\n');
    }
}

/// The lines, each with its number and the hash of the line before; and the last line's hash.
#[cfg(test)]
fn chain(records: Vec<Value>) -> (String, String) {
    let mut chain = Chain::default();
    records.into_iter().for_each(|r| chain.push(r));
    (chain.out, chain.previous)
}

fn sha256(line: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, line.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a file's chain: its lines and the hash it ends in, or the first line that breaks it.
pub fn verify(text: &str) -> Result<(usize, String), String> {
    let mut previous = START.to_string();
    let mut lines = 0;
    let mut closed = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(at) = closed {
            return Err(format!("line {n}: after the closing line {at}"));
        }
        let record: Value =
            serde_json::from_str(line).map_err(|e| format!("line {n}: not a JSON object ({e})"))?;
        if record["n"] != json!(n) {
            return Err(format!(
                "line {n}: numbered {}, a line is missing or was added before it",
                record["n"]
            ));
        }
        if record["anterior"] != json!(previous) {
            return Err(format!(
                "line {n}: does not follow line {} (that line was changed, or removed)",
                n - 1
            ));
        }
        if record["tipo"] == "cierre" {
            if record["lineas"] != json!(n - 1) {
                return Err(format!("line {n}: closes {} lines, the file has {}", record["lineas"], n - 1));
            }
            closed = Some(n);
        }
        previous = sha256(line);
        lines = n;
    }
    match closed {
        Some(_) => Ok((lines, previous)),
        None => Err(format!("no closing line after line {lines}: the end of the file was cut")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> String {
        let records = vec![
            json!({"tipo": "encabezado"}),
            json!({"tipo": "solicitud", "id": "GU-2026-000001"}),
            json!({"tipo": "solicitud", "id": "GU-2026-000002"}),
            json!({"tipo": "cierre", "lineas": 3}),
        ];
        chain(records).0
    }

    #[test]
    fn operations_keep_the_account_and_the_attributes_not_the_values() {
        assert_eq!(
            without_values(
                "directorio: create ana.ruiz at «CN=Ana Ruiz,OU=X», enabled; employeeID=123, otherMailbox=a@b.co"
            ),
            "directorio: create ana.ruiz"
        );
        assert_eq!(
            without_values("directorio: modify ana.ruiz: department: «A, B» → «C», title: «D» → «E»"),
            "directorio: modify ana.ruiz: department, title"
        );
        assert_eq!(
            without_values("directorio: add ana.ruiz to group VPN"),
            "directorio: add ana.ruiz to group VPN"
        );
    }

    #[test]
    fn a_file_verifies_and_any_change_breaks_it_where_it_is() {
        let text = file();
        let (lines, end) = verify(&text).unwrap();
        assert_eq!(lines, 4);
        assert_eq!(end.len(), 64);
        let lines: Vec<&str> = text.lines().collect();
        // A value changed.
        let changed = text.replace("GU-2026-000001", "GU-2026-000009");
        assert!(verify(&changed).unwrap_err().starts_with("line 3:"), "{}", verify(&changed).unwrap_err());
        // A line removed, even renumbering the rest by hand.
        let removed = [lines[0], lines[2], lines[3]].join("\n");
        assert!(verify(&removed).is_err());
        // The end cut off.
        assert!(verify(&lines[..3].join("\n")).unwrap_err().contains("cut"));
        // A line added after the close.
        assert!(verify(&format!("{text}{}\n", lines[1])).is_err());
    }
}
