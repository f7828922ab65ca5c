//! The register and its daily reading against the directory: every plan carried out records
//! what it set on each account; each business morning the managed OUs are read (one paged
//! search, whatever the store holds) and compared with it (`directory::drift`). The reading is
//! kept for `cuentas drift` and the weekly report. Nothing here writes to the directory.

use jiff::Timestamp;
use tracing::{info, warn};

use super::{CycleReport, Engine, EngineError, Unreached};
use crate::directory::drift::{self, Observed, Registered};
use crate::directory::plan::Plan;
use crate::directory::snapshot::Account;
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
    pub(super) fn read_drift(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let calendar = &self.config.calendar;
        let today = self.today(now);
        if !calendar.is_business_day(today) || now < calendar.start_of_business_day_on_or_after(today) {
            return Ok(());
        }
        let tz = calendar.time_zone().clone();
        if self.store.drift_read_at()?.is_some_and(|at| at.to_zoned(tz.clone()).date() == today) {
            return Ok(());
        }
        self.drift(now, report).map(|_| ())
    }

    /// Reads the managed OUs and compares them with the register now; the reading is kept.
    /// `None` while the directory does not answer.
    fn drift(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<Option<Drift>, EngineError> {
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
        let previous = self
            .store
            .drift_read_at()?
            .map(|at| at.to_zoned(self.config.calendar.time_zone().clone()).date());
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
        let read = AccountsRead::of(&accounts);
        self.remind_contract_ends(&mut changes, &observed, &read, &register, now)?;
        self.remind_leave_returns(&mut changes, now)?;
        // The contracts' ends before the reading is kept: a stop in between reads again at the
        // next cycle (each end is opened once, by its own mark), rather than leaving today's
        // ends to the next business day's reading.
        self.open_contract_ends(&observed, &read, &register, previous, now, report)?;
        self.store.commit(changes)?;
        info!(accounts = reading.accounts, findings = reading.findings.len(), "drift read");
        Ok(Some(reading))
    }

    /// The contracts that end soon: their account's manager in AD (else whoever asked for the
    /// date) is reminded, `[directory] end_date_reminder_business_days` before, once each; not
    /// for an account an open request is about (a newer request decides it).
    fn remind_contract_ends(
        &mut self,
        changes: &mut Changes,
        observed: &[Observed],
        accounts: &AccountsRead,
        register: &std::collections::BTreeMap<String, Registered>,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let leads = self.config.directory.end_date_reminder_business_days.clone();
        if leads.is_empty() {
            return Ok(());
        }
        let calendar = &self.config.calendar;
        let key =
            |sam: &str, expires: jiff::civil::Date, lead: u32| format!("contract-end/{sam}/{expires}/{lead}");
        let mut sent_before = std::collections::HashSet::new();
        for a in observed.iter().filter(|a| a.contractor && a.enabled) {
            let Some(expires) = a.expires else { continue };
            for lead in &leads {
                let key = key(&a.sam.to_lowercase(), expires, *lead);
                if self.store.alert_sent(&key)?.is_some() {
                    sent_before.insert(key);
                }
            }
        }
        let due = drift::end_reminders_due(
            observed,
            self.today(now),
            &leads,
            &|day, n| calendar.business_days_before(day, n),
            &|sam, expires, lead| sent_before.contains(&key(sam, expires, lead)),
        );
        if due.is_empty() {
            return Ok(());
        }
        for reminder in due {
            let sam = reminder.sam.to_lowercase();
            // Sent or passed over, each lead up to this one is done: none goes late.
            for lead in leads.iter().filter(|l| **l >= reminder.lead) {
                changes.mark_alert(&key(&sam, reminder.expires, *lead), now);
            }
            if !self.open.about(&sam).is_empty() {
                continue;
            }
            let Some(account) = accounts.account(&sam) else { continue };
            let to = self.answerable_for(account, accounts, register)?;
            let text = self.contract_end_text(account, reminder.expires);
            let subject =
                format!("Termina el contrato de {}: su cuenta vence el {}", account.sam, reminder.expires);
            let message = crate::store::OutboxMessage::new(
                format!("fin-de-contrato.{sam}.{}.{}", reminder.expires, reminder.lead),
                None,
                crate::store::MessageKind::ContractEnd,
                vec![to],
                format!("{subject}\n\n{text}"),
                now,
            );
            changes.put_message(&message);
            info!(account = %account.sam, lead = reminder.lead, "contract end reminded");
        }
        Ok(())
    }

    /// Who answers for a contractor's account: its manager as the directory names it (among
    /// the accounts read, else looked up by its DN: a manager outside the managed OUs), else
    /// whoever asked for the request that last set it, else the service desk.
    fn answerable_for(
        &mut self,
        account: &Account,
        accounts: &AccountsRead,
        register: &std::collections::BTreeMap<String, Registered>,
    ) -> Result<String, EngineError> {
        let mut manager = Some(account.manager_mail.clone()).filter(|m| !m.is_empty()).or_else(|| {
            (!account.manager_dn.is_empty())
                .then(|| accounts.by_dn.get(&account.manager_dn.to_lowercase()).map(|m| m.mail.clone()))
                .flatten()
        });
        if manager.is_none() && !account.manager_dn.is_empty() {
            let dn = account.manager_dn.clone();
            manager = self.reach(|d, _| d.mail_of(&dn)).ok().flatten();
        }
        if let Some(manager) = manager.filter(|m| !m.is_empty()) {
            return Ok(manager);
        }
        let requester = match register.get(&account.sam.to_lowercase()) {
            Some(r) => {
                self.store.request(r.request)?.map(|r| r.submission.requester).filter(|a| !a.is_empty())
            }
            None => None,
        };
        Ok(requester.unwrap_or_else(|| self.config.mailboxes.service_desk.to_string()))
    }

    /// The contracts whose last day came (since the previous reading, or before the next
    /// business day: a Saturday's is opened on Friday) with the account enabled: cuentas opens
    /// a request of its own that disables the account at the end of that day, once per account
    /// and date (`[directory] disable_at_contract_end`). Not when an open request already
    /// ends the account. The request is decided again when it runs: an extension recorded in
    /// the directory before then keeps the account.
    fn open_contract_ends(
        &mut self,
        observed: &[Observed],
        accounts: &AccountsRead,
        register: &std::collections::BTreeMap<String, Registered>,
        previous: Option<jiff::civil::Date>,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        use crate::request::{Kind, Origin, Request, State, Submission};
        if !self.config.directory.disable_at_contract_end {
            return Ok(());
        }
        let today = self.today(now);
        let calendar = self.config.calendar.clone();
        let next_business_day = calendar
            .start_of_business_day_on_or_after(today.tomorrow().unwrap_or(today))
            .to_zoned(calendar.time_zone().clone())
            .date();
        let from = previous.unwrap_or(today).min(today);
        let ending: Vec<(String, jiff::civil::Date)> = observed
            .iter()
            .filter(|a| a.contractor && a.enabled)
            .filter_map(|a| a.expires.map(|e| (a.sam.to_lowercase(), e)))
            .filter(|(_, e)| from <= *e && *e < next_business_day)
            .collect();
        if ending.is_empty() {
            return Ok(());
        }
        for (sam, expires) in ending {
            let key = format!("contract-end-disable/{sam}/{expires}");
            if self.store.alert_sent(&key)?.is_some() {
                continue;
            }
            let mut ended_by = None;
            for id in self.open.about(&sam) {
                let ends = |r: &Request| {
                    r.is_open()
                        && matches!(
                            r.submission.kind,
                            Some(Kind::Disable | Kind::Delete | Kind::EarlyTermination)
                        )
                };
                if let Some(r) = self.store.request(id)?.filter(ends) {
                    ended_by = Some(r);
                    break;
                }
            }
            if let Some(other) = ended_by {
                info!(account = %sam, request = %other.id, "contract ended: an open request already ends the account");
                continue;
            }
            let Some(account) = accounts.account(&sam) else { continue };
            let requester = self.answerable_for(account, accounts, register)?;
            // No name, no document: the account is all it needs, and what it keeps of the person
            // is only what the directory's own notice addresses are (retention removes those).
            let submission = Submission {
                requester,
                kind: Some(Kind::Disable),
                kind_answer: Kind::Disable.label().to_string(),
                holder_type: Some(HolderType::Contractor),
                account: account.sam.clone(),
                contract_end: Some(expires),
                effective_date: Some(expires),
                ..Submission::default()
            };
            let tz = calendar.time_zone().clone();
            let year = now.to_zoned(tz.clone()).year();
            let seq = self.store.counter(year)? + 1;
            let id = RequestId { year, seq };
            let mut request = Request::new(id, 0, String::new(), submission, now, now);
            request.origin = Some(Origin::ContractEnd { expires });
            request.history[0].actor = crate::request::Actor::Daemon;
            request.history[0].reason = format!(
                "abierta por cuentas: el contrato de {} termina el {expires} con la cuenta activa",
                account.sam
            );
            let plan = match self.replan(&request, now) {
                super::execute::Replan::Fresh(plan) => plan,
                super::execute::Replan::Wait | super::execute::Replan::Stored => return Ok(()),
                super::execute::Replan::Refused(why) => {
                    warn!(account = %sam, reason = why.reason(), "contract ended: the account cannot be disabled by cuentas");
                    continue;
                }
            };
            let due =
                expires.to_datetime(calendar.day_end()).to_zoned(tz).map(|z| z.timestamp()).unwrap_or(now);
            let mut changes = Changes::new();
            changes.set_counter(year, seq);
            changes.mark_alert(&key, now);
            self.measure_sla(&mut request, now);
            request.account = Some(plan.account.clone());
            let scheduled = super::Move::daemon(
                State::Scheduled { due, plan },
                format!("el contrato terminó el {expires}: la cuenta se inactiva al terminar ese día"),
            );
            self.record(&mut changes, report, &mut request, scheduled, now)?;
            self.store.commit(changes)?;
            info!(request = %id, account = %sam, %expires, "contract ends: its account's disable scheduled");
        }
        Ok(())
    }

    /// Employees back from a leave the next business day: whoever asked for the leave (by the
    /// procedure, Talento Humano) is told the day before, once, so that an extension is asked
    /// for before the account is enabled again.
    fn remind_leave_returns(&self, changes: &mut Changes, now: Timestamp) -> Result<(), EngineError> {
        use crate::request::{Kind, Phase, State};
        let today = self.today(now);
        let tz = self.config.calendar.time_zone().clone();
        for r in self.store.open_requests()? {
            let r = r?;
            let s = &r.submission;
            let State::Scheduled { due, .. } = &r.state else { continue };
            if r.phase != Phase::Return
                || s.kind != Some(Kind::Leave)
                || s.holder_type != Some(HolderType::Employee)
            {
                continue;
            }
            let back = due.to_zoned(tz.clone()).date();
            if !(self.config.calendar.business_days_before(back, 1) <= today && today < back) {
                continue;
            }
            let key = format!("leave-return/{}", r.id);
            if self.store.alert_sent(&key)?.is_some() || s.requester.is_empty() {
                continue;
            }
            changes.mark_alert(&key, now);
            let account = r.account.as_deref().unwrap_or(&s.account);
            let name = if r.purged.is_some() { account.to_string() } else { s.full_name() };
            let subject = format!("[{}] Regreso de vacaciones o licencia: {account}", r.id);
            let text = format!(
                "{name} ({account}) regresa de sus vacaciones o licencia: el {}, cuentas reactiva su cuenta \
                 {account}, como pidió la solicitud {}.\n\nSi la licencia se prorroga, envíe antes de esa hora una \
                 nueva solicitud «Vacaciones o licencia» con la nueva fecha de regreso: la reactivación se decide de \
                 nuevo con ella. Si regresa en esa fecha, no hace falta hacer nada.",
                crate::notify::spanish_datetime(*due, &tz),
                r.id
            );
            let message = crate::store::OutboxMessage::new(
                format!("regreso.{}", r.id),
                None,
                crate::store::MessageKind::LeaveReturn,
                vec![s.requester.clone()],
                format!("{subject}\n\n{text}"),
                now,
            );
            changes.put_message(&message);
            info!(request = %r.id, "leave return reminded");
        }
        Ok(())
    }

    /// What the reminder says, with the request form's links for an extension and an early
    /// termination (`[form] prefill_url`), or what to choose in it.
    fn contract_end_text(&self, account: &Account, expires: jiff::civil::Date) -> String {
        let last = crate::notify::spanish_date(expires);
        let link = |kind: crate::request::Kind| match &self.config.form.prefill_url {
            Some(url) => crate::desk::fill(
                url,
                &[
                    ("tipo", kind.label()),
                    ("vinculacion", HolderType::Contractor.label()),
                    ("usuario", &account.sam),
                ],
            ),
            None => {
                format!("en el formulario de solicitudes, «{}» para la cuenta {}", kind.label(), account.sam)
            }
        };
        format!(
            "El contrato de {} ({}) termina el {last}: al terminar ese día, su cuenta {} deja de servir.\n\nSi el contrato se prorroga, pida la modificación de la cuenta con la nueva fecha de \
             terminación:\n  {}\n\nSi termina antes, pida la terminación anticipada:\n  {}\n\nSi termina en esa \
             fecha, no hace falta hacer nada.",
            if account.display_name.is_empty() { &account.sam } else { &account.display_name },
            account.sam,
            account.sam,
            link(crate::request::Kind::Modify),
            link(crate::request::Kind::EarlyTermination),
        )
    }
}

/// The accounts of a reading by name and by DN: the reminders and the contracts' ends look up
/// each one's account and its manager, which a scan of every account would make quadratic on
/// a day many contracts end.
struct AccountsRead<'a> {
    by_sam: std::collections::HashMap<String, &'a Account>,
    by_dn: std::collections::HashMap<String, &'a Account>,
}

impl<'a> AccountsRead<'a> {
    fn of(accounts: &'a [Account]) -> Self {
        AccountsRead {
            by_sam: accounts.iter().map(|a| (a.sam.to_lowercase(), a)).collect(),
            by_dn: accounts.iter().map(|a| (a.dn.to_lowercase(), a)).collect(),
        }
    }

    fn account(&self, sam: &str) -> Option<&'a Account> {
        self.by_sam.get(&sam.to_lowercase()).copied()
    }
}
