//! The register and its daily reading against the directory: every plan carried out records
//! what it set on each account; each business morning the managed OUs are read (one paged
//! search, whatever the store holds) and compared with it (`directory::drift`). The reading is
//! kept for `cuentas drift` and the weekly report. Nothing here writes to the directory.

use jiff::Timestamp;
use tracing::{info, warn};

use super::{Engine, EngineError, Unreached};
use crate::directory::drift::{self, Observed, Registered};
use crate::directory::plan::Plan;
use crate::request::{HolderType, RequestId};
use crate::store::{Changes, Drift};

impl Engine {
    /// Records what `plan`'s operations set, account by account (the shadow writes nothing, and
    /// records nothing).
    pub(super) fn register_effects(
        &self,
        changes: &mut Changes,
        plan: &Plan,
        id: RequestId,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if self.directory.is_shadow() {
            return Ok(());
        }
        let mut records: std::collections::BTreeMap<String, Registered> = std::collections::BTreeMap::new();
        for op in &plan.ops {
            let sam = op.sam().to_lowercase();
            let record = match records.entry(sam) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let stored = self.store.registered_account(e.key())?;
                    let fresh = Registered::new(e.key(), id, now);
                    e.insert(stored.unwrap_or(fresh))
                }
            };
            record.apply(op, id, now, &|attribute: &str, value: &str| self.seal(attribute, value));
        }
        records.values().for_each(|r| changes.register_account(r));
        Ok(())
    }

    /// An attribute's value as the register keeps it.
    fn seal(&self, attribute: &str, value: &str) -> String {
        crate::retention::value_hash(&self.person_key, attribute, value)
    }

    /// Once a business day, from its start: the managed OUs read against the register.
    pub(super) fn read_drift(&mut self, now: Timestamp) -> Result<(), EngineError> {
        let calendar = &self.config.calendar;
        let today = self.today(now);
        if !calendar.is_business_day(today) || now < calendar.start_of_business_day_on_or_after(today) {
            return Ok(());
        }
        let tz = calendar.time_zone().clone();
        if self.store.drift()?.is_some_and(|d| d.at.to_zoned(tz.clone()).date() == today) {
            return Ok(());
        }
        match self.drift(now) {
            Ok(Some(_)) | Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Reads the managed OUs and compares them with the register now; the reading is kept.
    /// `None` while the directory does not answer.
    pub fn drift(&mut self, now: Timestamp) -> Result<Option<Drift>, EngineError> {
        let ous = self.config.directory.managed_ous.clone();
        let accounts = match self.reach(|d, _| d.managed_accounts(&ous)) {
            Ok(accounts) => accounts,
            Err(Unreached::Down) => return Ok(None),
            Err(Unreached::Error(e)) => {
                warn!(error = %e.for_log(), "the managed OUs cannot be read: no drift reading today");
                return Ok(None);
            }
        };
        let observed: Vec<Observed> = accounts
            .iter()
            .map(|a| Observed {
                sam: a.sam.clone(),
                dn: a.dn.clone(),
                guid: a.guid.clone(),
                department: a.department.clone(),
                title: a.title.clone(),
                manager: a.manager_dn.clone(),
                groups: a.groups.clone(),
                enabled: a.enabled,
                expires: a.expires,
                contractor: self.layout.holder_of(a) == Some(HolderType::Contractor),
                when_changed: a.when_changed,
                when_created: a.when_created,
                last_logon: a.last_logon,
            })
            .collect();
        let register = self.store.registered()?;
        let inherited = self.store.inherited()?;
        let settings = drift::Settings {
            managed_groups: &self.config.directory.allowed_groups,
            stale_days: self.config.directory.stale_days,
            today: self.today(now),
            now,
        };
        let seal = |attribute: &str, value: &str| self.seal(attribute, value);
        let findings = drift::find(&register, &observed, inherited.as_ref(), &settings, &seal);
        let reading = Drift { at: now, accounts: observed.len(), findings };
        let mut changes = Changes::new();
        if inherited.is_none() {
            // The first look: what is there and no request made is the entity's before cuentas.
            let before = observed
                .iter()
                .filter(|a| register.get(&a.sam.to_lowercase()).is_none_or(|r| r.deleted))
                .map(|a| a.guid.clone())
                .collect();
            changes.set_inherited(&before);
        }
        changes.set_drift(&reading);
        self.store.commit(changes)?;
        info!(accounts = reading.accounts, findings = reading.findings.len(), "drift read");
        Ok(Some(reading))
    }
}
