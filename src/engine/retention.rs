//! Retention (Ley 1581 de 2012) and the person across requests: once a day, the personal data
//! of requests closed more than `retention_days` ago are removed (see [`crate::retention`]),
//! with what the store keeps about them elsewhere; each new request is indexed by its person
//! hash and notes the earlier requests of the same person, whether their data remain or not.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use tracing::info;

use super::{Engine, EngineError, cover_key};
use crate::request::{Actor, Request, RequestId};
use crate::retention::{self, PersonKey, Retention};
use crate::store::{Changes, Store, StoreError};

/// A limit counted in days needs a pass once a day.
const PASS_EVERY: SignedDuration = SignedDuration::from_hours(24);
/// Requests changed per commit in a pass: bounds memory on a first pass over a large store.
const CHUNK: usize = 500;
/// Earlier requests named in a new request's history; the rest are counted.
const NAMED: usize = 10;
/// Purged requests named in the log line of a pass; the rest are counted.
const LOGGED: usize = 50;

/// The requests registered so far in one batch, by person hash: not in the store until the
/// batch is committed.
pub(super) type Batch = HashMap<String, Vec<RequestId>>;

/// The store's key of the person hash, or a new one kept in it (once per store).
pub(super) fn person_key(store: &Store) -> Result<PersonKey, EngineError> {
    if let Some(bytes) = store.person_key()? {
        // A key that cannot be read is not replaced: every hash made with it would stop matching.
        return PersonKey::from_bytes(&bytes).ok_or_else(|| {
            let error = serde::de::Error::custom("the key of the person hash is not 32 bytes");
            EngineError::Store(StoreError::Decode { key: "m/person-key".into(), error })
        });
    }
    let key = PersonKey::generate().map_err(|e| EngineError::Random(e.to_string()))?;
    let mut changes = Changes::new();
    changes.set_person_key(key.as_bytes());
    store.commit(changes)?;
    Ok(key)
}

impl Engine {
    /// The retention pass, at most once a day: personal data of old closed requests removed,
    /// person hashes of requests registered by earlier versions filled in, old alerts deleted.
    pub(super) fn retain(&mut self, now: Timestamp) -> Result<(), EngineError> {
        if self.store.retention_run()?.is_some_and(|last| now.duration_since(last) < PASS_EVERY) {
            return Ok(());
        }
        let domains = self.entity_domains();
        let rules = Retention { days: self.config.retention_days, key: &self.person_key, domains: &domains };
        // The pass feeds the watchdog as it goes; the heartbeat is lent to it.
        let mut beat = self.heartbeat.take();
        let result = pass(&self.store, &rules, now, &mut || {
            if let Some(beat) = &mut beat {
                beat();
            }
        });
        self.heartbeat = beat;
        let (purged, alerts) = result?;
        if !purged.is_empty() || alerts > 0 {
            // Removed from the records, the data would still be in sled's files until it
            // reused their space: the store is written anew without them.
            self.store.compact()?;
            let mut listed: Vec<String> = purged.iter().take(LOGGED).map(ToString::to_string).collect();
            if purged.len() > LOGGED {
                listed.push(format!("and {} more", purged.len() - LOGGED));
            }
            info!(
                count = purged.len(),
                requests = %listed.join(", "),
                alerts,
                retention_days = rules.days,
                "personal data of closed requests removed"
            );
        }
        Ok(())
    }

    /// The entity's own mail domains: addresses in them are the actors' work addresses.
    fn entity_domains(&self) -> Vec<String> {
        let m = &self.config.mailboxes;
        let mut domains = vec![self.config.directory.domain.clone()];
        domains.extend(self.config.form.requester_domains.iter().cloned());
        let boxes = [&m.from, &m.service_desk].into_iter().chain(&m.administrators).chain(&m.register);
        domains.extend(boxes.map(|b| b.email.domain().to_string()));
        let mut domains: Vec<String> = domains.into_iter().map(|d| d.to_lowercase()).collect();
        domains.sort();
        domains.dedup();
        domains
    }

    /// Sets the person hash of a new or edited request and indexes it; a person seen before
    /// gets a history line naming their earlier requests (`batch`: this poll's, not stored yet).
    pub(super) fn identify(
        &self,
        request: &mut Request,
        changes: &mut Changes,
        batch: &mut Batch,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let hash = retention::person_hash(&self.person_key, &request.submission);
        if hash == request.person_hash {
            return Ok(());
        }
        if let Some(old) = request.person_hash.take() {
            changes.unindex_person(&old, request.id);
        }
        let Some(hash) = hash else { return Ok(()) };
        changes.index_person(&hash, request.id);
        let mut earlier = self.store.same_person(&hash)?;
        earlier.extend(batch.get(&hash).into_iter().flatten());
        earlier.retain(|id| *id < request.id);
        earlier.sort();
        earlier.dedup();
        batch.entry(hash.clone()).or_default().push(request.id);
        request.person_hash = Some(hash);
        if !earlier.is_empty() {
            let named = named(&earlier);
            info!(request_id = %request.id, earlier = %named, "same person as earlier requests");
            let line = format!("solicitudes anteriores de la misma persona: {named}");
            request.note(Actor::Daemon, line, now);
        }
        Ok(())
    }
}

/// The last [`NAMED`] ids, the others counted.
fn named(ids: &[RequestId]) -> String {
    let skip = ids.len().saturating_sub(NAMED);
    let out: Vec<String> = ids[skip..].iter().map(ToString::to_string).collect();
    match skip {
        0 => out.join(", "),
        n => format!("{} (y {n} más antiguas)", out.join(", ")),
    }
}

/// Marks the store's one pass that gave every request its person hash.
const HASHES_BACKFILLED: &str = "retencion/huellas-completas";

/// One pass over the store: the requests purged, and the number of alerts deleted.
fn pass(
    store: &Store,
    rules: &Retention,
    now: Timestamp,
    beat: &mut dyn FnMut(),
) -> Result<(Vec<RequestId>, usize), EngineError> {
    let mut purged = Vec::new();
    let mut batch = Chunked { changes: Changes::new(), staged: 0 };
    // Requests registered before person hashes existed get theirs, so that they are recognised
    // too: once, over the whole store (every request registered since has one).
    if store.alert_sent(HASHES_BACKFILLED)?.is_none() {
        for r in store.requests() {
            let mut r = r?;
            if r.person_hash.is_some() {
                continue;
            }
            if let Some(hash) = retention::person_hash(rules.key, &r.submission) {
                batch.changes.index_person(&hash, r.id);
                r.person_hash = Some(hash);
                batch.put(store, &r, beat)?;
            }
        }
        batch.changes.mark_alert(HASHES_BACKFILLED, now);
    }
    // Only what closed more than `days` ago and still holds personal data (the store's index):
    // the pass costs what is due, not everything ever stored.
    let kept = SignedDuration::from_hours(24 * i64::from(rules.days));
    let candidates = match now.checked_sub(kept) {
        Ok(before) => store.closed_before(before)?,
        Err(_) => Vec::new(),
    };
    for id in candidates {
        let Some(mut r) = store.request(id)? else { continue };
        let cover = cover_key(&r.submission);
        let address = r.submission.personal_email.clone();
        if rules.purge(&mut r, now) {
            forget(store, &mut batch.changes, &r, cover, &address)?;
            purged.push(r.id);
            batch.put(store, &r, beat)?;
        }
    }
    let mut changes = batch.changes;
    let alerts = old_alerts(store, &mut changes, rules.days, now)?;
    changes.set_retention_run(now);
    store.commit(changes)?;
    Ok((purged, alerts))
}

/// A pass's changes, committed every [`CHUNK`] requests.
struct Chunked {
    changes: Changes,
    staged: usize,
}

impl Chunked {
    /// Stages a request changed, and commits the batch when it is full.
    fn put(
        &mut self,
        store: &Store,
        r: &crate::request::Request,
        beat: &mut dyn FnMut(),
    ) -> Result<(), EngineError> {
        self.changes.put_request(r);
        self.staged += 1;
        if self.staged == CHUNK {
            store.commit(std::mem::take(&mut self.changes))?;
            self.staged = 0;
            beat();
        }
        Ok(())
    }
}

/// What the store keeps about a purged request outside its record: the duplicate key (it
/// holds the document number or the names) and the personal address on record for its account,
/// if this request recorded it.
fn forget(
    store: &Store,
    changes: &mut Changes,
    r: &Request,
    cover: Option<String>,
    address: &str,
) -> Result<(), EngineError> {
    if let Some(key) = cover
        && store.covering(&key)? == Some(r.id)
    {
        changes.remove_covering(&key);
    }
    let Some(account) = r.account.as_deref().or(r.reserved_account.as_deref()) else { return Ok(()) };
    if let Some((on_record, by)) = store.personal_address_record(account)? {
        // A record of an earlier version does not say who wrote it: the same address is enough.
        let ours = by.map_or(!address.is_empty() && on_record.eq_ignore_ascii_case(address), |id| id == r.id);
        if ours {
            changes.remove_personal_address(account);
        }
    }
    Ok(())
}

/// Alerts to administrators sent more than `days` ago are deleted: their texts may quote a
/// request's data (a bounced address, a directory error naming a person), and they are not
/// part of any request's audit trail.
fn old_alerts(store: &Store, changes: &mut Changes, days: u32, now: Timestamp) -> Result<usize, EngineError> {
    let Ok(cutoff) = now.checked_sub(SignedDuration::from_hours(24 * i64::from(days))) else { return Ok(0) };
    let mut n = 0;
    for m in store.messages() {
        let m = m?;
        if !m.is_pending() && m.created_at < cutoff {
            changes.remove_message(&m.id);
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_requests_are_named_the_last_ten_and_the_rest_counted() {
        let ids: Vec<RequestId> = (1..=12).map(|seq| RequestId { year: 2026, seq }).collect();
        assert_eq!(named(&ids[..2]), "GU-2026-000001, GU-2026-000002");
        let many = named(&ids);
        assert!(many.starts_with("GU-2026-000003, "), "{many}");
        assert!(many.ends_with("GU-2026-000012 (y 2 más antiguas)"), "{many}");
    }
}
