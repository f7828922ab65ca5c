//! Retention of personal data (Ley 1581 de 2012), pure: a request closed more than
//! `retention_days` ago keeps only its audit skeleton (id, kind, states and times, actors,
//! account, service level), and a keyed hash of the person's document number, so that a later
//! response from the same person is still recognised.

use std::collections::HashSet;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

use crate::intake::fold;
use crate::outbox::Delivery;
use crate::request::{Actor, Kind, Request, State, StateName, Submission};

/// What replaces a text that carried personal data (history lines, reasons, delivery errors).
pub const REMOVED: &str = "(texto con datos personales eliminado por retención)";
/// What replaces a requester's address outside the entity's domains.
pub const EXTERNAL_REQUESTER: &str = "(dirección externa eliminada)";

/// The key of the person hash: 32 random bytes made once per store and kept in it.
///
/// Keyed because a Colombian document number has about ten digits: a plain hash of every
/// possible number is computed in minutes, so it would hide nothing. With the key, a hash that
/// leaves the store (a `show --json`, an export, a copied record) says nothing about the person
/// to whoever does not hold the store itself.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonKey([u8; 32]);

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonKey(**REDACTED**)")
    }
}

impl PersonKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<PersonKey, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(PersonKey(bytes))
    }

    /// The key as stored; `None` if the stored value is not one.
    pub fn from_bytes(bytes: &[u8]) -> Option<PersonKey> {
        <[u8; 32]>::try_from(bytes).ok().map(PersonKey)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The person a submission is about, as a keyed hash (HMAC-SHA256, hex) of their document
/// number; `None` without one.
///
/// The number alone, normalised by intake (a cédula's digits, another document's letters and
/// digits upper-cased), as everywhere else in cuentas (duplicates, `employeeID`): the document
/// type is a free answer written many ways («CC», «Cédula de ciudadanía», nothing), and
/// hashing it too would take the same person for two.
pub fn person_hash(key: &PersonKey, s: &Submission) -> Option<String> {
    if s.id_number.is_empty() {
        return None;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    let tag = ring::hmac::sign(&key, format!("documento:{}", s.id_number).as_bytes());
    Some(tag.as_ref().iter().map(|b| format!("{b:02x}")).collect())
}

/// An attribute's value as the register keeps it (see `directory::drift`): a keyed hash, so that
/// a department, a title or a manager's name outlive no retention period in the store, yet a
/// value changed in the directory still shows. Case, accents and spacing do not count.
pub fn value_hash(key: &PersonKey, attribute: &str, value: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    let tag =
        ring::hmac::sign(&key, format!("atributo:{attribute}:{}", crate::intake::fold(value)).as_bytes());
    tag.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

pub use crate::request::Purged;

/// When the request entered its closed state; `None` while it is open.
pub fn closed_at(r: &Request) -> Option<Timestamp> {
    r.closed_at()
}

/// Whether a request's personal data are due for removal at `now`: closed more than `days`
/// before (a request closed exactly `days` ago keeps them until the next pass), not removed
/// yet, and with no message still to send (its recipients and text are needed until then).
pub fn is_due(r: &Request, days: u32, now: Timestamp) -> bool {
    if r.purged.is_some() || r.outbox.iter().any(|m| m.is_pending()) {
        return false;
    }
    let kept = SignedDuration::from_hours(24 * i64::from(days));
    closed_at(r).is_some_and(|closed| now.duration_since(closed) > kept)
}

/// The retention rules: how long, the key of the person hash, and the entity's own mail
/// domains (addresses in them are work addresses of the actors, kept; any other is personal).
pub struct Retention<'a> {
    pub days: u32,
    pub key: &'a PersonKey,
    pub domains: &'a [String],
}

impl Retention<'_> {
    /// Removes the personal data of `r` if it is due (see [`is_due`]); whether it did.
    ///
    /// Kept: id, row, kind, holder type and dependency (the entity's closed lists the
    /// authorization was decided on), the requester's work address (the actor the control
    /// point checked; an address outside the entity's domains is removed), every state change
    /// with its time and actor, the account, the service level, the messages' kinds and
    /// delivery times, and the person hash. Removed: names, document, personal and manager's
    /// addresses, dates, contract, groups and notes asked for, the masked address the access
    /// data went to, the messages' recipients and texts, the hash of the row's cells, and every
    /// history text that carried any of it.
    pub fn purge(&self, r: &mut Request, now: Timestamp) -> bool {
        if !is_due(r, self.days, now) {
            return false;
        }
        if r.person_hash.is_none() {
            r.person_hash = person_hash(self.key, &r.submission);
        }
        let traces = Traces::of(r);
        let scrub = |text: &mut String| {
            if traces.found_in(text, self.domains) {
                *text = REMOVED.to_string();
            }
        };
        for h in &mut r.history {
            // A request for information lists the answers to fix, quoting them as written.
            let asks_for_fixes = h.to == StateName::NeedsInfo && h.from != Some(StateName::NeedsInfo);
            if asks_for_fixes {
                h.reason = REMOVED.to_string();
            }
            scrub(&mut h.reason);
            self.scrub_actor(&mut h.actor);
        }
        scrub_state(&mut r.state, &scrub);
        for m in &mut r.outbox {
            m.to.clear();
            m.detail.clear();
            if let Delivery::Failed { error, .. } = &mut m.delivery {
                *error = REMOVED.to_string();
            }
        }
        r.submission = self.skeleton(&r.submission);
        r.credentials_sent_to = None;
        r.row_hash.clear();
        r.purged = Some(Purged { at: now, retention_days: self.days });
        r.note(Actor::Daemon, format!("datos personales eliminados por retención ({} días)", self.days), now);
        true
    }

    /// What a submission keeps once purged.
    fn skeleton(&self, s: &Submission) -> Submission {
        let requester =
            if self.institutional(&s.requester) { s.requester.clone() } else { EXTERNAL_REQUESTER.into() };
        Submission {
            submitted_at: s.submitted_at,
            requester,
            kind: s.kind,
            holder_type: s.holder_type,
            department: s.department.clone(),
            account: s.account.clone(),
            ..Submission::default()
        }
    }

    fn scrub_actor(&self, actor: &mut Actor) {
        if let Actor::Requester(who) = actor
            && !self.institutional(who)
        {
            *who = EXTERNAL_REQUESTER.into();
        }
    }

    /// Whether an address is in one of the entity's domains (or a subdomain of one).
    fn institutional(&self, address: &str) -> bool {
        address.rsplit_once('@').is_some_and(|(_, domain)| in_domains(&domain.to_lowercase(), self.domains))
    }
}

fn in_domains(domain: &str, domains: &[String]) -> bool {
    let domain = domain.trim_end_matches('.');
    domains.iter().any(|d| {
        let d = d.to_lowercase();
        domain == d || domain.ends_with(&format!(".{d}"))
    })
}

fn scrub_state(state: &mut State, scrub: &impl Fn(&mut String)) {
    match state {
        State::Closed { outcome: text }
        | State::Rejected { reason: text }
        | State::Routed { reason: text }
        | State::Cancelled { reason: text } => scrub(text),
        // Open states are never purged; their texts stay as they are.
        _ => {}
    }
}

/// Short words of Spanish names that say nothing about a person by themselves.
const PARTICLES: [&str; 12] = ["de", "del", "la", "las", "los", "y", "e", "da", "do", "san", "van", "von"];

/// The forms a request's personal data take in its texts, folded (lower case, no accents).
struct Traces {
    /// Words of the names, matched as whole words.
    words: HashSet<String>,
    /// Values matched anywhere: addresses, full name, free answers.
    phrases: Vec<String>,
    /// The document number, matched with separators removed from the text.
    document: Option<String>,
}

impl Traces {
    fn of(r: &Request) -> Traces {
        let s = &r.submission;
        let account = r.account.as_deref().unwrap_or(&s.account).to_lowercase();
        let names = fold(&s.full_name());
        let words = words(&names)
            .filter(|w| w.chars().count() > 1 && !PARTICLES.contains(w) && *w != account)
            .map(str::to_string)
            .collect();
        let mut phrases = vec![names, fold(&s.personal_email), fold(&s.contract_number), fold(&s.title)];
        if !s.personal_email.is_empty() {
            phrases.push(fold(&crate::notify::mask_email(&s.personal_email)));
        }
        if !s.manager_email.eq_ignore_ascii_case(&s.requester) {
            phrases.push(fold(&s.manager_email));
        }
        if matches!(s.kind, None | Some(Kind::OutOfScope)) {
            phrases.push(fold(&s.kind_answer));
        }
        phrases.extend(r.credentials_sent_to.iter().map(|m| fold(m)));
        phrases.push(fold(&s.notes));
        phrases.extend(s.extra.values().map(|v| fold(v)));
        phrases.retain(|p| p.chars().count() >= 4);
        let document = Some(s.id_number.to_lowercase()).filter(|d| d.len() >= 4);
        Traces { words, phrases, document }
    }

    /// Whether `text` carries personal data: this request's, or any address outside the
    /// entity's domains, or any long number (a document, a telephone) — whatever an earlier
    /// version of the answers, corrected since, left in it.
    fn found_in(&self, text: &str, domains: &[String]) -> bool {
        let folded = fold(text);
        self.phrases.iter().any(|p| folded.contains(p.as_str()))
            || words(&folded).any(|w| self.words.contains(w))
            || words(&folded).any(|w| w.split_once('@').is_some_and(|(_, d)| !in_domains(d, domains)))
            || self.document.as_deref().is_some_and(|d| squeezed(&folded).contains(d))
            || has_long_number(text)
    }
}

/// The words of a folded text: letters and digits, with the dots, `@`, `_`, `-` and `*` that
/// hold account names and (masked) addresses together; trimmed of those at either end.
fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !(c.is_alphanumeric() || "._@-*+".contains(c)))
        .map(|w| w.trim_matches(|c: char| ".-_*".contains(c)))
        .filter(|w| !w.is_empty())
}

/// The text without the separators a number may be written with (`1.013.456.789`).
fn squeezed(folded: &str) -> String {
    folded.chars().filter(|c| !matches!(c, '.' | ',' | ' ' | '-' | '\'')).collect()
}

/// Whether the text holds a number of 7 digits or more, groups separated by one `.`, `,` or
/// space counted together: no id, date or time of cuentas's own is that long.
fn has_long_number(text: &str) -> bool {
    let mut digits = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 7 {
                return true;
            }
        } else if matches!(c, '.' | ',' | ' ') && digits > 0 && chars.peek().is_some_and(char::is_ascii_digit)
        {
            continue;
        } else {
            digits = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::MessageKind;
    use crate::request::{HolderType, RequestId};

    const DAY: SignedDuration = SignedDuration::from_hours(24);
    /// When the request below closes.
    const CLOSED: &str = "2026-11-27T13:10:00Z";

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn key() -> PersonKey {
        PersonKey([7; 32])
    }

    fn domains() -> Vec<String> {
        vec!["upme.gov.co".into()]
    }

    fn submission() -> Submission {
        Submission {
            submitted_at: Some("2026-11-23T09:15:40".parse().unwrap()),
            requester: "andres.mejia@upme.gov.co".into(),
            kind: Some(Kind::Create),
            kind_answer: "Creación de cuenta".into(),
            holder_type: Some(HolderType::Contractor),
            given_names: "María José".into(),
            surnames: "De La Hoz Peñaloza".into(),
            id_type: "Cédula de ciudadanía".into(),
            id_number: "1045678901".into(),
            personal_email: "mariajo.delahoz@gmail.com".into(),
            department: "Subdirección de Energía Eléctrica".into(),
            title: "Contratista - Ingeniera eléctrica".into(),
            manager_email: "andres.mejia@upme.gov.co".into(),
            contract_number: "UPME-123-2026".into(),
            contract_start: Some("2026-12-01".parse().unwrap()),
            contract_end: Some("2027-06-30".parse().unwrap()),
            groups: vec!["VPN".into()],
            notes: "Viene de la Gobernación".into(),
            ..Submission::default()
        }
    }

    /// A creation closed at [`CLOSED`], with the history lines cuentas writes for one.
    fn closed_creation() -> Request {
        let t = at("2026-11-27T13:00:00Z");
        let id = RequestId { year: 2026, seq: 2 };
        let mut r = Request::new(id, 3, "cafe".into(), submission(), t, t + DAY);
        let plan = crate::directory::plan::Plan::default();
        let executing = State::Executing { plan, attempts: 0, retry_at: None, released: false };
        r.transition(executing, Actor::Daemon, "autorizada (supervisor (Andrés Mejía, *))", t).unwrap();
        r.note(
            Actor::Daemon,
            "directorio: create maria.delahoz at «CN=María José De La Hoz Peñaloza,OU=Contratistas»; \
             employeeID=1045678901, otherMailbox=mariajo.delahoz@gmail.com",
            t,
        );
        r.note(Actor::Daemon, "directorio: add maria.delahoz to group VPN", t);
        r.note(Actor::Daemon, "datos de acceso enviados a m***@gmail.com", t);
        r.credentials_sent_to = Some("m***@gmail.com".into());
        r.account = Some("maria.delahoz".into());
        let outcome = "Se creó la cuenta maria.delahoz (correo maria.delahoz@upme.gov.co).";
        r.transition(State::Notifying, Actor::Daemon, outcome, t).unwrap();
        r.queue_message(MessageKind::Outcome, vec!["andres.mejia@upme.gov.co".into()], outcome.into(), t);
        r.outbox[0].delivery = Delivery::Sent { at: t };
        r.note(Actor::Daemon, "correo «resultado» enviado a andres.mejia@upme.gov.co", t);
        r.transition(State::Closed { outcome: outcome.into() }, Actor::Daemon, outcome, at(CLOSED)).unwrap();
        r
    }

    fn purge(r: &mut Request, now: Timestamp) -> bool {
        let (key, domains) = (key(), domains());
        Retention { days: 365, key: &key, domains: &domains }.purge(r, now)
    }

    const PERSONAL: [&str; 12] = [
        "María",
        "José",
        "Peñaloza",
        "Hoz",
        "1045678901",
        "mariajo",
        "m***@gmail.com",
        "UPME-123-2026",
        "Ingeniera",
        "Gobernación",
        "2027-06-30",
        "cafe",
    ];

    #[test]
    fn a_purge_removes_the_personal_data_and_keeps_the_skeleton() {
        let before = closed_creation();
        let mut r = before.clone();
        assert!(purge(&mut r, at(CLOSED) + DAY * 366));

        let json = serde_json::to_string(&r).unwrap();
        for needle in PERSONAL {
            assert!(!json.contains(needle), "{needle} left in {json}");
        }
        // The skeleton: id, row, kind, every state with its time and actor, the account, the
        // service level, the messages' kinds and deliveries, who asked.
        assert_eq!((r.id, r.row, r.submission.kind), (before.id, before.row, before.submission.kind));
        assert_eq!(r.account.as_deref(), Some("maria.delahoz"));
        assert_eq!(r.submission.requester, "andres.mejia@upme.gov.co");
        assert_eq!(r.submission.submitted_at, before.submission.submitted_at);
        assert_eq!(r.submission.department, "Subdirección de Energía Eléctrica");
        assert_eq!(
            (r.received_at, r.sla_deadline, &r.sla),
            (before.received_at, before.sla_deadline, &before.sla)
        );
        assert_eq!(r.history.len(), before.history.len() + 1);
        for (a, b) in r.history.iter().zip(&before.history) {
            assert_eq!((a.at, &a.actor, a.from, a.to), (b.at, &b.actor, b.from, b.to));
        }
        assert_eq!(r.outbox.len(), 1);
        assert_eq!(
            (r.outbox[0].kind, &r.outbox[0].delivery),
            (MessageKind::Outcome, &before.outbox[0].delivery)
        );
        assert!(r.outbox[0].to.is_empty() && r.outbox[0].detail.is_empty());
        assert_eq!(r.person_hash, person_hash(&key(), &before.submission));
        assert!(r.person_hash.is_some());
        assert_eq!(r.purged, Some(Purged { at: at(CLOSED) + DAY * 366, retention_days: 365 }));
        assert_eq!(r.history.last().unwrap().reason, "datos personales eliminados por retención (365 días)");

        // Lines without personal data keep their text; those with it say it was removed.
        let reasons: Vec<&str> = r.history.iter().map(|h| h.reason.as_str()).collect();
        assert!(reasons.contains(&"directorio: add maria.delahoz to group VPN"), "{reasons:#?}");
        assert!(reasons.contains(&"correo «resultado» enviado a andres.mejia@upme.gov.co"), "{reasons:#?}");
        assert!(reasons.contains(&"Se creó la cuenta maria.delahoz (correo maria.delahoz@upme.gov.co)."));
        assert_eq!(reasons.iter().filter(|t| **t == REMOVED).count(), 2, "{reasons:#?}");
        assert_eq!(r.state, before.state, "the outcome names only the account");
    }

    #[test]
    fn a_purge_happens_once() {
        let mut r = closed_creation();
        assert!(purge(&mut r, at(CLOSED) + DAY * 366));
        let once = r.clone();
        assert!(!purge(&mut r, at(CLOSED) + DAY * 400));
        assert_eq!(r, once);
    }

    #[test]
    fn the_limit_is_more_than_retention_days_after_closing() {
        for (age, purged) in [
            (DAY * 364, false),
            (DAY * 365, false),
            (DAY * 365 + SignedDuration::from_secs(1), true),
            (DAY * 366, true),
        ] {
            let mut r = closed_creation();
            assert_eq!(purge(&mut r, at(CLOSED) + age), purged, "closed {age:?} ago");
            assert_eq!(r.purged.is_some(), purged);
            assert_eq!(r.submission.id_number.is_empty(), purged);
        }
    }

    #[test]
    fn open_requests_and_requests_with_mail_to_send_keep_everything() {
        let t = at("2025-01-06T13:00:00Z");
        let mut open = Request::new(RequestId { year: 2025, seq: 1 }, 2, "h".into(), submission(), t, t);
        let untouched = open.clone();
        assert!(!purge(&mut open, t + DAY * 1000));
        assert_eq!(open, untouched);

        let mut mailing = closed_creation();
        mailing.outbox[0].delivery = Delivery::Pending { attempts: 3, next_attempt: None };
        let untouched = mailing.clone();
        assert!(!purge(&mut mailing, at(CLOSED) + DAY * 1000));
        assert_eq!(mailing, untouched);
    }

    #[test]
    fn texts_from_answers_corrected_since_are_removed_too() {
        let mut r = closed_creation();
        // Before an edit: another personal address, a document mistyped, a name misspelt.
        r.history.insert(
            1,
            crate::request::HistoryEntry {
                at: r.received_at,
                actor: Actor::Daemon,
                from: Some(StateName::Received),
                to: StateName::NeedsInfo,
                reason: "«Nombres»: escriba los nombres completos".into(),
            },
        );
        r.note(Actor::Daemon, "correo «x» a maria.jose@hotmail.com no entregado", r.received_at);
        r.note(Actor::Daemon, "directorio: employeeID=10.456.789.01 ya existe", r.received_at);
        r.note(Actor::Daemon, "paso de datos de acceso: intento 2", r.received_at);
        assert!(purge(&mut r, at("2028-01-01T00:00:00Z")));
        let reasons: Vec<&str> = r.history.iter().map(|h| h.reason.as_str()).collect();
        assert_eq!(reasons[1], REMOVED, "a request for information quotes the answers");
        assert_eq!(reasons.iter().filter(|t| **t == REMOVED).count(), 5, "{reasons:#?}");
        assert!(reasons.contains(&"paso de datos de acceso: intento 2"));
    }

    #[test]
    fn a_requester_outside_the_entity_is_removed_from_the_request_and_its_history() {
        let t = at("2026-11-26T14:09:09Z");
        let mut s = submission();
        s.requester = "jefe.externo@gmail.com".into();
        let mut r = Request::new(RequestId { year: 2026, seq: 24 }, 25, "h".into(), s, t, t);
        let reason = "La dirección jefe.externo@gmail.com no es un correo institucional";
        r.transition(State::Rejected { reason: reason.into() }, Actor::Daemon, reason, t).unwrap();
        assert!(purge(&mut r, t + DAY * 366));
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("jefe.externo"), "{json}");
        assert_eq!(r.submission.requester, EXTERNAL_REQUESTER);
        assert_eq!(r.history[0].actor, Actor::Requester(EXTERNAL_REQUESTER.into()));
        assert_eq!(r.state, State::Rejected { reason: REMOVED.into() });
    }

    #[test]
    fn the_person_hash_is_keyed_and_follows_the_document_number_only() {
        let s = submission();
        let hash = person_hash(&key(), &s).unwrap();
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("1045678901"));
        let other_answers = Submission { id_type: "CC".into(), given_names: "Majo".into(), ..s.clone() };
        assert_eq!(person_hash(&key(), &other_answers).as_ref(), Some(&hash));
        assert_ne!(person_hash(&PersonKey([8; 32]), &s).as_ref(), Some(&hash), "another store, another hash");
        let other_person = Submission { id_number: "1045678902".into(), ..s.clone() };
        assert_ne!(person_hash(&key(), &other_person).as_ref(), Some(&hash));
        assert_eq!(person_hash(&key(), &Submission::default()), None);
        assert_eq!(format!("{:?}", key()), "PersonKey(**REDACTED**)");
    }
}
