//! Procedure activity 3, *formalizar solicitud*: due and executing requests carried out in the
//! directory, the hourly limit of disables, the credential step (generate, set, send), and
//! what a directory failure leads to (a retry with backoff, or `Failed` with an alert).

use jiff::{SignedDuration, Timestamp};
use tracing::{error, info, info_span, warn};

use super::{
    CycleReport, Engine, EngineError, MAX_ATTEMPTS, Move, Unreached, backoff, log_directory_error, triage,
};
use crate::config::{DirectoryConfig, LeaveAction};
use crate::directory::ldap::LdapError;
use crate::directory::password::Password;
use crate::directory::plan::{self, DirectoryOp, Plan};
use crate::notify;
use crate::request::{Actor, Kind, Phase, Request, State, StateName};
use crate::store::{Changes, MessageKind};

/// Why a scheduled request runs now, in its history.
const DUE: &str = "llegó la fecha programada";

impl Engine {
    /// Moves due and executing requests on, tries again what waited on the directory, and
    /// closes those whose report was delivered.
    pub fn advance(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        // Scheduled steps in the order they fell due (after a stop of some days, a disable due
        // on the 1st runs before the enable due on the 3rd); the rest first, as registered.
        // Only what is due (the store's wake index), each as it is now.
        let due = self.store.due(now)?;
        let mut open = self.store.each(due).collect::<Result<Vec<_>, _>>()?;
        // Within each, in the order registered (the index hands them out by when each fell due).
        open.sort_by_key(|r| {
            let due = match r.state {
                State::Scheduled { due, .. } => Some(due),
                _ => None,
            };
            (due, r.id)
        });
        for mut request in open {
            if self.superseded.contains(&request.id) {
                continue;
            }
            let _span = info_span!("request", request_id = %request.id, row = request.row).entered();
            match request.state.clone() {
                State::Received => {
                    if let Some(triage) = self.triage(&request, now)? {
                        let mut changes = Changes::new();
                        self.settle(&mut changes, report, &mut request, triage, now)?;
                        self.store.commit(changes)?;
                    }
                }
                State::Scheduled { due, plan } if due <= now => {
                    self.run_scheduled(request, plan, now, report)?
                }
                State::Executing { plan, attempts, retry_at, released }
                    if retry_at.is_none_or(|t| t <= now) =>
                {
                    self.resume(Attempt { request, plan, attempts, released }, now, report)?;
                }
                State::AwaitingConfirmation { pending, since }
                    if pending.is_empty() && self.removable_since(since, now) =>
                {
                    self.remove_account(request, now, report)?;
                }
                State::Notifying if request.outbox.iter().all(|m| !m.is_pending()) => {
                    let outcome = outcome_text(&request);
                    let mut changes = Changes::new();
                    let closed = Move::daemon(State::Closed { outcome: outcome.clone() }, outcome);
                    self.record(&mut changes, report, &mut request, closed, now)?;
                    self.store.commit(changes)?;
                    info!("closed");
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// A scheduled request whose date came: authorized and planned again against the account
    /// as the directory holds it today (it was decided long ago), then carried out.
    fn run_scheduled(
        &mut self,
        mut request: Request,
        stored: Plan,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        if request.phase == Phase::Return
            && let Some((other, until)) = self.held_by_another_leave(&request, &stored.account)?
        {
            // Another leave holds the account past this return: its return enables it.
            let tz = self.config.calendar.time_zone();
            let detail = format!(
                "La cuenta {} sigue inactiva: la solicitud {other} la mantiene así{}, y se reactivará entonces.",
                stored.account,
                if until == Timestamp::MAX {
                    String::new()
                } else {
                    format!(" hasta el {}", notify::spanish_datetime(until, tz))
                }
            );
            let plan = Plan { ops: Vec::new(), ..stored };
            let executing = State::Executing { plan, attempts: 0, retry_at: None, released: false };
            self.record(&mut changes, report, &mut request, Move::daemon(executing, DUE), now)?;
            let done = Move::daemon(State::Notifying, detail.clone()).telling(MessageKind::Outcome, detail);
            self.record(&mut changes, report, &mut request, done, now)?;
            self.store.commit(changes)?;
            return Ok(());
        }
        let plan = match self.replan(&request, now) {
            Replan::Fresh(plan) => plan,
            Replan::Stored => stored,
            Replan::Wait => return Ok(()),
            Replan::Refused(triage) => {
                self.settle(&mut changes, report, &mut request, triage, now)?;
                self.store.commit(changes)?;
                return Ok(());
            }
        };
        let executing = State::Executing { plan: plan.clone(), attempts: 0, retry_at: None, released: false };
        self.record(&mut changes, report, &mut request, Move::daemon(executing, DUE), now)?;
        self.store.commit(changes)?;
        self.execute(Attempt::first(request, plan), now, report)
    }

    /// An `Executing` request carried out. One decided in this very cycle runs its plan; any
    /// other (a retry after a backoff, `retry` or `release` by an administrator, a restart) is
    /// first decided again against the account as the directory holds it now. Not a
    /// creation: its plan makes the account, which its own earlier attempt may have made (the
    /// operations read their target first and do only what is missing).
    fn resume(
        &mut self,
        mut a: Attempt,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let request = &a.request;
        // Another request's step acted on its account in this cycle, after it was decided.
        let overtaken = self.acted_on.get(&a.plan.account.to_lowercase()).is_some_and(|by| *by != request.id);
        let decided_now = request.history.last().is_some_and(|h| h.at == now);
        let creates = matches!(request.submission.kind, Some(Kind::Create | Kind::Assignment))
            || request.credentials_for.is_some()
            || request.mailbox_wait.is_some();
        if overtaken && decided_now && creates {
            // Not begun: decided again whole (the account it was to reactivate may be gone).
            return match self.replan(&a.request, now) {
                Replan::Wait => Ok(()),
                Replan::Stored => self.execute(a, now, report),
                Replan::Fresh(plan) => {
                    let mut changes = Changes::new();
                    let (attempts, released) = (a.attempts, a.released);
                    let executing =
                        State::Executing { plan: plan.clone(), attempts, retry_at: None, released };
                    let why = "decidida de nuevo: otra solicitud actuó sobre la cuenta en este ciclo";
                    self.record(&mut changes, report, &mut a.request, Move::daemon(executing, why), now)?;
                    self.store.commit(changes)?;
                    self.execute(Attempt { plan, ..a }, now, report)
                }
                Replan::Refused(triage) => self.refuse(a, triage, now, report),
            };
        }
        if (decided_now && !overtaken) || creates {
            return self.execute(a, now, report);
        }
        // Decided again: authorized, and the account's guard read from the directory now. The
        // operations are the stored ones: a step cut short in the middle must finish what it
        // began (a transfer's old groups are known only from before its first write), and each
        // operation reads its target first and does only what is missing.
        match self.replan(&a.request, now) {
            Replan::Fresh(_) | Replan::Stored => {}
            Replan::Wait => return Ok(()),
            Replan::Refused(triage) => return self.refuse(a, triage, now, report),
        }
        self.execute(a, now, report)
    }

    /// A resumed step decided again and refused: back to the requester, or, when only a person
    /// can take it on (an `Executing` step cannot become `Manual`), failed for the administrators.
    fn refuse(
        &mut self,
        mut a: Attempt,
        triage: triage::Triage,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        if triage.state_name() == StateName::Manual {
            let why = triage.reason().to_string();
            a.attempts += 1;
            return self.fail(Changes::new(), report, a, why, now);
        }
        let mut changes = Changes::new();
        self.settle(&mut changes, report, &mut a.request, triage, now)?;
        self.store.commit(changes)?;
        Ok(())
    }

    /// A scheduled request decided again at its due time.
    pub(super) fn replan(&mut self, request: &Request, now: Timestamp) -> Replan {
        let snapshot = match self.reach(|d, layout| d.snapshot_for(request, layout)) {
            Ok(s) => s,
            Err(Unreached::Down) => return Replan::Wait,
            Err(Unreached::Error(e)) if request.contract_end().is_some() => {
                // Only the directory's expiry, read now, makes a contract's end act: it waits.
                log_directory_error(&e, "cannot read the directory to decide a contract's end; waiting");
                return Replan::Wait;
            }
            Err(Unreached::Error(e)) => {
                // Its operations read the directory again before they write anyway.
                log_directory_error(&e, "cannot read the directory to re-plan; using the stored plan");
                return Replan::Stored;
            }
        };
        let today = self.today(now);
        if let Some(expires) = request.contract_end() {
            // The procedure's word, not an authorizer's: it holds while the directory still
            // says the contract ends that day with the account enabled.
            let account = snapshot.by_sam(&request.submission.account);
            let moot = match account {
                None => Some(format!("la cuenta {} ya no existe", request.submission.account)),
                Some(a) if !a.enabled => Some(format!("la cuenta {} ya está inactiva", a.sam)),
                Some(a) if a.expires != Some(expires) => Some(match a.expires {
                    Some(later) if later > expires => {
                        format!("el contrato se prorrogó hasta el {later}: la cuenta {} sigue activa", a.sam)
                    }
                    Some(other) => {
                        format!("la fecha de terminación de la cuenta {} es ahora el {other}", a.sam)
                    }
                    None => format!("la cuenta {} ya no tiene fecha de terminación", a.sam),
                }),
                Some(_) => None,
            };
            if let Some(reason) = moot {
                return Replan::Refused(triage::Triage::moot(format!("sin efecto: {reason}")));
            }
            return match plan::plan(request, &snapshot, &self.layout, today, |_| false, |_| false) {
                Ok(plan) => Replan::Fresh(plan),
                Err(e) => Replan::Refused(triage::Triage::moot(format!("sin efecto: {}", e.reason()))),
            };
        }
        let Some(matrix) = &self.matrix else { return Replan::Wait };
        let Some(kind) = request.submission.kind else { return Replan::Stored };
        // The return from a leave was authorized with the leave: a requester who has since
        // lost their role must not leave the person locked out.
        // A deletion whose account is gone already (another deletion, or by hand) writes
        // nothing: there is nothing left to authorize.
        let gone = request.phase == Phase::Removal && snapshot.by_sam(&request.submission.account).is_none();
        if request.phase != Phase::Return
            && !gone
            && let facts = triage::facts(&self.layout, &snapshot, &request.submission)
            && let Err(refusal) =
                crate::policy::authorize(&self.policy, matrix, &request.submission, kind, &facts, today)
        {
            return Replan::Refused(triage::Triage::refused(refusal, now));
        }
        // Names other open requests claimed stay theirs; this request's own is its to use.
        let own = request.reserved_account.as_deref();
        let taken = |name: &str| Some(name) != own && self.open.name_taken(name);
        let own_dn = super::new_account_dn(request);
        let taken_dn = |dn: &str| Some(dn) != own_dn.as_deref() && self.open.dn_taken(dn);
        match plan::plan(request, &snapshot, &self.layout, today, taken, taken_dn) {
            Ok(plan) => Replan::Fresh(plan),
            Err(e) => Replan::Refused(triage::Triage::from_no_plan(e, now)),
        }
    }

    /// Carries out a plan (the intent, `Executing`, is already durable), sends the access data
    /// if the plan sets a password, and records the result. Disables and deletions beyond the
    /// hourly limit wait as `Held` unless an administrator released them.
    pub(super) fn execute(
        &mut self,
        mut a: Attempt,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        // The hourly limit stops a form (or whoever writes in it) from disabling many accounts
        // at once. A contract's end is not asked for by anyone: the directory's own expiry,
        // read again just before, says the account is done, and Colombian entities end most
        // contracts on the same day (31 December). Held, they would wait on the desk for days
        // while AD already refuses their logons; counted, they would hold the form's own.
        let limited = if a.request.contract_end().is_some() { 0 } else { disables(&a.plan) };
        if !a.released
            && let Some(over) = self.over_hourly_limit(limited, now)?
        {
            return self.hold(changes, report, a, over, now);
        }
        let password = match self.prepare(&mut a, report, now)? {
            Prepared::Go(password) => password,
            Prepared::Wait => return Ok(()),
            Prepared::Mailbox => return self.wait_for_mailbox(changes, report, a, now),
            Prepared::Failed(e) => return self.directory_failed(report, a, *e, now),
        };
        let dry_run = self.directory.is_dry_run();
        let id = a.request.id.to_string();
        let lines = match self.reach(|d, layout| d.apply(&a.plan, password.as_ref(), layout, &id)) {
            Ok(lines) => lines,
            // Half done, perhaps: every operation reads its target first, so the next cycle
            // does only what is missing.
            Err(Unreached::Down) => return Ok(()),
            Err(Unreached::Error(e)) => return self.directory_failed(report, a, e, now),
        };
        let prefix = if self.directory.is_shadow() {
            "directorio (modo sombra, no se escribió)"
        } else if dry_run {
            "directorio (simulación)"
        } else {
            "directorio"
        };
        note_operations(&mut a.request, &a.plan, &lines, prefix, now);
        self.register_effects(&mut changes, &a.plan, a.request.id, now)?;
        self.acted_on.extend(a.plan.ops.iter().map(|op| (op.sam().to_lowercase(), a.request.id)));
        if limited > 0 {
            changes.record_disables(now, a.request.id, limited);
        }
        if !dry_run {
            self.after_apply(&mut a.request, &a.plan, &lines, now);
        }
        if let Some(password) = password {
            // The mailbox of a new account must exist before its access data and outcome go
            // out: if not yet, the password just set is dropped and a new one set once it does.
            if self.awaits_mailbox(&a.request) && !self.mailbox_ready(&mut a.request, &a.plan.account, now) {
                return self.wait_for_mailbox(changes, report, a, now);
            }
            match self.send_credentials(&mut a, &password, &mut changes, now)? {
                Credentials::Sent => {}
                Credentials::Then(step) => {
                    self.record(&mut changes, report, &mut a.request, *step, now)?;
                    self.store.commit(changes)?;
                    return Ok(());
                }
                Credentials::Fail(reason) => {
                    a.attempts += 1;
                    return self.fail(changes, report, a, reason, now);
                }
            }
        }
        self.finish(changes, report, a, now)
    }

    /// What must hold before a plan is applied (the directory reached, mail going out for a
    /// credential step, a new account's mailbox there), and the credential step's password.
    fn prepare(
        &mut self,
        a: &mut Attempt,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<Prepared, EngineError> {
        // A directory that cannot be reached leaves the request as it is, for the next cycle:
        // waiting for it is not a failed attempt.
        match self.reach(|d, _| d.connect()) {
            Ok(()) => {}
            Err(Unreached::Down) => return Ok(Prepared::Wait),
            Err(Unreached::Error(e)) => return Ok(Prepared::Failed(Box::new(e))),
        }
        // No password is set that could not be sent.
        if a.plan.sends_credentials && !self.relay_takes_mail(now)? {
            return Ok(Prepared::Wait);
        }
        // Access data waiting for the new account's mailbox: looked for before anything else.
        if a.request.mailbox_wait.is_some() && !self.mailbox_ready(&mut a.request, &a.plan.account, now) {
            return Ok(Prepared::Mailbox);
        }
        if !a.plan.sends_credentials {
            return Ok(Prepared::Go(None));
        }
        // The credential step is one unit: generate, set, send. A retry makes a new password.
        Ok(match self.new_password(&mut a.request, &a.plan.account, report, now)? {
            Ok(password) => Prepared::Go(Some(password)),
            Err(Unreached::Down) => Prepared::Wait,
            Err(Unreached::Error(e)) => Prepared::Failed(Box::new(e)),
        })
    }

    /// The step carried out: its outcome, the other requests it supersedes, and what comes
    /// next for it.
    fn finish(
        &mut self,
        mut changes: Changes,
        report: &mut CycleReport,
        a: Attempt,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Attempt { mut request, plan, .. } = a;
        let domain = &self.config.directory.domain;
        let detail = match request.credentials_for.take() {
            Some(account) => format!(
                "Se creó la cuenta {account} (correo {account}@{domain}) y sus datos de acceso se enviaron al correo personal corregido."
            ),
            None => outcome_detail(&request, &plan, &self.config.directory),
        };
        self.supersede(&mut changes, report, &request, &plan, now)?;
        let leave = matches!(request.submission.kind, Some(Kind::Leave | Kind::Suspension));
        let paused = leave
            && request.phase == Phase::Start
            && self.held_by_another_leave(&request, &plan.account)?.is_some();
        let step = self.next_step(&mut request, &plan, detail, paused, now);
        self.record(&mut changes, report, &mut request, step, now)?;
        self.store.commit(changes)?;
        info!(account = %plan.account, "carried out");
        Ok(())
    }

    /// The last part of the credential step: the access data sent to the personal address.
    /// What came of it: sent, a move to record (a retry, or back to the requester), or a
    /// failure an operator must look at.
    fn send_credentials(
        &mut self,
        a: &mut Attempt,
        password: &Password,
        changes: &mut Changes,
        now: Timestamp,
    ) -> Result<Credentials, EngineError> {
        let Attempt { request, plan, attempts, released } = a;
        Ok(match self.send_access_data(request, plan, password, now)? {
            Ok(to) => {
                self.mail_flowing();
                let masked = notify::mask_email(&to);
                request.note(Actor::Daemon, format!("datos de acceso enviados a {masked}"), now);
                request.credentials_sent_to = Some(masked);
                // A new or returning account's personal address is the one on record for its
                // later resets (a reset sends only to it).
                if plan.credentials_to.is_none() && to == request.submission.personal_email {
                    changes.set_personal_address(&plan.account, &to, request.id);
                }
                Credentials::Sent
            }
            Err(e) if e.is_transient() => {
                self.mail_failed(&e);
                let attempts = *attempts + 1;
                warn!(error = %e.for_log(), attempts, "access data not sent; will set a new password and retry");
                let retry_at = Some(now + backoff(attempts));
                let retry = State::Executing { plan: plan.clone(), attempts, retry_at, released: *released };
                Credentials::Then(Box::new(Move::daemon(
                    retry,
                    format!("no se pudieron enviar los datos de acceso ({e}); se reintentará"),
                )))
            }
            Err(e) if !e.is_bad_address() => {
                // The mail set-up, not the address, is wrong: an operator must act.
                error!(error = %e.for_log(), "access data cannot be sent; an administrator must look");
                Credentials::Fail(format!("no se pudieron enviar los datos de acceso: {e}"))
            }
            Err(e) => {
                warn!(error = %e.for_log(), "access data undeliverable; asking the requester");
                // The account exists now: after the fix, only its access data are pending.
                request.credentials_for = Some(plan.account.clone());
                Credentials::Then(Box::new(needs_info(
                    format!(
                        "No fue posible enviar los datos de acceso al correo personal «{}» ({e}); corrija el correo electrónico personal en el formulario",
                        request.submission.personal_email
                    ),
                    now,
                )))
            }
        })
    }

    /// Whether mail goes out, for a credential step: while it is blocked the step waits for the
    /// relay to take a message again; with messages waiting, their delivery is the proof (a
    /// relay may take a connection and refuse every message), else a test of the connection.
    fn relay_takes_mail(&mut self, now: Timestamp) -> Result<bool, EngineError> {
        if self.mail_blocked.is_none() {
            return Ok(true);
        }
        if self.store.mail_pending()? {
            return Ok(false);
        }
        Ok(match self.mailer.test(now) {
            Ok(()) => {
                self.mail_flowing();
                true
            }
            Err(e) => {
                self.mail_failed(&e);
                false
            }
        })
    }

    /// The credential step's password, the attempt recorded first (a history line, durable
    /// before the password is set) so that its message is told apart from every other: the
    /// Message-ID is the line's position, new for every attempt even after a crash that lost
    /// the record of a mail already sent.
    fn new_password(
        &mut self,
        request: &mut Request,
        account: &str,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<Result<Password, Unreached>, EngineError> {
        request.credential_attempts += 1;
        let n = request.credential_attempts;
        request.note(Actor::Daemon, format!("paso de datos de acceso: intento {n}"), now);
        let mut intent = Changes::new();
        self.stage(&mut intent, report, request);
        self.store.commit(intent)?;
        let length = match self.reach(|d, _| d.password_length()) {
            Ok(n) => n,
            Err(unreached) => return Ok(Err(unreached)),
        };
        let display = request.submission.full_name();
        let password = Password::generate_avoiding(length, &[account, display.as_str()])
            .map_err(|e| EngineError::Random(e.to_string()))?;
        Ok(Ok(password))
    }

    /// `(done in the last hour, the limit)` when `limited` more disables or deletions would go
    /// past the hourly limit.
    fn over_hourly_limit(
        &self,
        limited: usize,
        now: Timestamp,
    ) -> Result<Option<(usize, usize)>, EngineError> {
        if limited == 0 {
            return Ok(None);
        }
        let limit = self.config.directory.max_disables_per_hour as usize;
        let done = self.store.disables_since(now - SignedDuration::from_hours(1))?;
        Ok((done + limited > limit).then_some((done, limit)))
    }

    /// Beyond the hourly limit of disables and deletions: `Held` until an administrator
    /// releases it, and one alert per hour.
    fn hold(
        &mut self,
        mut changes: Changes,
        report: &mut CycleReport,
        a: Attempt,
        (done, limit): (usize, usize),
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Attempt { mut request, plan, .. } = a;
        let reason = format!(
            "límite de {limit} inactivaciones o eliminaciones por hora alcanzado ({done} en la última hora): \
             espera a que un administrador la libere"
        );
        warn!(done, limit, "disable held: hourly limit reached");
        let held = State::Held { reason: reason.clone(), plan };
        self.record(&mut changes, report, &mut request, Move::daemon(held, reason), now)?;
        let hour =
            now.to_zoned(self.config.calendar.time_zone().clone()).strftime("%Y-%m-%d %H:00").to_string();
        let body = format!(
            "Se alcanzó el límite de {limit} inactivaciones o eliminaciones por hora ({done} en la última hora). \
             Las que siguen quedan retenidas hasta que un administrador las revise y las libere (la persona \
             que las pidió no puede liberarlas). Esta, {} ({}, cuenta {}):\n  {}\n\n\
             Todas las retenidas a la vez: la misma acción con «todas» en «Solicitud».\n\nHora: {hour}",
            request.id,
            request.submission.requester,
            request.account.as_deref().unwrap_or(&request.submission.account),
            self.offer(request.id, crate::desk::DeskAction::Release, None)
        );
        self.alert(&mut changes, &format!("Inactivaciones retenidas ({hour})"), &body, now)?;
        self.store.commit(changes)?;
        Ok(())
    }

    /// A directory failure while executing: transient ones are retried with backoff up to
    /// [`MAX_ATTEMPTS`]; the rest, and too many, go `Failed` with an alert.
    fn directory_failed(
        &mut self,
        report: &mut CycleReport,
        mut a: Attempt,
        error: LdapError,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        a.attempts += 1;
        let mut changes = Changes::new();
        if !error.is_transient() || a.attempts >= MAX_ATTEMPTS {
            error!(account = %a.plan.account, error = %error.for_log(), attempts = a.attempts, "directory operation failed; an administrator must look");
            return self.fail(changes, report, a, error.to_string(), now);
        }
        let Attempt { mut request, plan, attempts, released } = a;
        let retry_at = now + backoff(attempts);
        warn!(account = %plan.account, error = %error.for_log(), attempts, %retry_at, "directory operation failed; will retry");
        let retry = State::Executing { plan, attempts, retry_at: Some(retry_at), released };
        let reason = format!("el directorio no respondió ({error}); se reintentará");
        self.record(&mut changes, report, &mut request, Move::daemon(retry, reason), now)?;
        self.store.commit(changes)?;
        Ok(())
    }

    /// `Failed` after `a.attempts` tries, with the plan kept for `cuentas retry` and one alert
    /// to the administrators.
    pub(super) fn fail(
        &mut self,
        mut changes: Changes,
        report: &mut CycleReport,
        a: Attempt,
        reason: String,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Attempt { mut request, plan, attempts, .. } = a;
        let failed = State::Failed { error: reason.clone(), attempts, plan: Some(plan) };
        self.record(&mut changes, report, &mut request, Move::daemon(failed, reason.clone()), now)?;
        let body = format!(
            "La solicitud {} (fila {}, {}) falló tras {attempts} intento(s):\n\n  {reason}\n\n\
             Cuando la causa esté resuelta, reinténtela (con una contraseña nueva, si la solicitud asigna una):\n  {}\n\n\
             Si no procede, cancélela:\n  {}",
            request.id,
            request.row,
            request.submission.kind.map_or("?", Kind::label),
            self.offer(request.id, crate::desk::DeskAction::Retry, None),
            self.offer(request.id, crate::desk::DeskAction::Cancel, None)
        );
        // Each failure is its own episode: failing again after a retry is told again.
        let episode = format!("failed/{}/{}", request.id, request.history.len());
        self.alert_on(&mut changes, &episode, &format!("Solicitud {} fallida", request.id), &body, now)?;
        self.store.commit(changes)?;
        Ok(())
    }
}

/// One try at a request's directory step: the request, the plan it carries out, the tries
/// made before, and whether an administrator let it past the hourly limit of disables.
pub(super) struct Attempt {
    pub(super) request: Request,
    pub(super) plan: Plan,
    pub(super) attempts: u32,
    pub(super) released: bool,
}

impl Attempt {
    /// A step's first try.
    pub(super) fn first(request: Request, plan: Plan) -> Attempt {
        Attempt { request, plan, attempts: 0, released: false }
    }
}

/// Whether a plan can be applied now.
enum Prepared {
    /// Yes, with the credential step's new password if it has one.
    Go(Option<Password>),
    /// Not this cycle (the directory or the relay is down): nothing is counted.
    Wait,
    /// The new account's mailbox is not there yet.
    Mailbox,
    /// The directory answered with an error.
    Failed(Box<LdapError>),
}

/// What sending the access data came to.
enum Credentials {
    Sent,
    /// A move to record instead of the report: a retry, or back to the requester.
    Then(Box<Move>),
    /// A failure an operator must look at (the reason).
    Fail(String),
}

/// What deciding a scheduled request again at its due time came to.
pub(super) enum Replan {
    /// Still authorized; the plan against the directory as it is now.
    Fresh(Plan),
    /// The directory did not answer: the stored plan (each operation reads its target again).
    Stored,
    /// The matrix has not been read yet, or the directory is down: it waits.
    Wait,
    /// No longer authorized, or no longer possible.
    Refused(triage::Triage),
}

/// Each operation done: in the request's history as done, in the log without its values.
fn note_operations(request: &mut Request, plan: &Plan, lines: &[String], prefix: &str, now: Timestamp) {
    let dry_run = prefix != "directorio";
    for op in &plan.ops {
        info!(account = %plan.account, dry_run, "{}", op.summary());
    }
    for line in lines {
        request.note(Actor::Daemon, format!("{prefix}: {line}"), now);
    }
}

/// The disables and deletions of a plan: what the hourly limit counts.
fn disables(plan: &Plan) -> usize {
    plan.ops
        .iter()
        .filter(|op| matches!(op, DirectoryOp::Disable { .. } | DirectoryOp::Delete { .. }))
        .count()
}

/// Back to the requester, with what to fix.
fn needs_info(reason: String, now: Timestamp) -> Move {
    Move::daemon(State::NeedsInfo { reason: reason.clone(), since: now }, reason.clone())
        .telling(MessageKind::NeedsInfo, reason)
}

/// What was done, for the requester (Spanish).
fn outcome_detail(request: &Request, plan: &Plan, directory: &DirectoryConfig) -> String {
    let account = &plan.account;
    let domain = &directory.domain;
    let s = &request.submission;
    let created = plan.ops.iter().any(|op| matches!(op, DirectoryOp::Create { .. }));
    let date = |d: Option<jiff::civil::Date>| d.map(notify::spanish_date).unwrap_or_default();
    match (s.kind, request.phase) {
        (Some(Kind::Create), _) if created => {
            format!("Se creó la cuenta {account} (correo {account}@{domain}).")
        }
        (Some(Kind::Create), _) => format!(
            "La persona ya tenía la cuenta {account}, que estaba inactiva: se reactivó y se actualizaron sus datos."
        ),
        (Some(Kind::Assignment), _) => {
            let new = if created {
                format!("Se creó la cuenta {account} (correo {account}@{domain}) para el nuevo contratista")
            } else {
                format!("Se reactivó la cuenta {account} del nuevo contratista")
            };
            match &plan.previous_holder {
                Some(previous) => {
                    format!("{new} y se inactivó la cuenta {previous} del contratista anterior.")
                }
                None => format!("{new}."),
            }
        }
        (Some(Kind::PasswordReset), _) => {
            format!("Se asignó una nueva contraseña temporal a la cuenta {account}.")
        }
        (Some(Kind::Delete), _) if plan.ops.is_empty() => format!(
            "La cuenta {account} ya no estaba en el directorio; las copias de seguridad quedaron confirmadas."
        ),
        (Some(Kind::Delete), _) => format!(
            "Se eliminó la cuenta {account} del directorio, con las copias de seguridad y el retiro del equipo confirmados."
        ),
        (Some(Kind::Leave | Kind::Suspension), Phase::Return) if plan.ops.is_empty() => {
            format!("La cuenta {account} ya estaba activa al regreso ({}).", date(s.return_date))
        }
        (Some(Kind::Leave | Kind::Suspension), Phase::Return) => {
            format!("Se reactivó la cuenta {account} al regreso ({}).", date(s.return_date))
        }
        (Some(Kind::Leave), _) if directory.leave_action == LeaveAction::None => format!(
            "Se registró la novedad de la cuenta {account} (del {} al {}); por decisión de la entidad la cuenta \
             sigue activa durante las vacaciones o licencias.",
            date(s.effective_date),
            date(s.return_date)
        ),
        (Some(Kind::Leave | Kind::Suspension), _) if plan.ops.is_empty() => format!(
            "La cuenta {account} ya estaba inactiva: no se cambió nada, y no se reactivará sola; cuando deba \
             volver a usarse, pida una «Reactivación de cuenta»."
        ),
        (Some(Kind::Suspension), _) => format!(
            "Se inactivó la cuenta {account} por la suspensión del contrato; cuando deba volver a usarse, pida una \
             «Reactivación de cuenta»."
        ),
        (Some(Kind::EarlyTermination), _) => format!(
            "Se inactivó la cuenta {account} por la terminación anticipada del contrato ({}): vence ese día, \
             salió de los grupos de acceso{}.",
            date(s.effective_date),
            if directory.retired_ou.is_some() { " y quedó en la unidad de cuentas retiradas" } else { "" }
        ),
        _ if plan.ops.is_empty() => {
            format!("La cuenta {account} ya estaba como se pidió; no hubo que cambiar nada.")
        }
        (Some(Kind::Modify), _) => {
            let extended = plan.ops.iter().find_map(|op| match op {
                DirectoryOp::SetExpiry { expires: Some(end), .. } => Some(*end),
                _ => None,
            });
            let enabled = plan.ops.iter().any(|op| matches!(op, DirectoryOp::Enable { .. }));
            match extended {
                Some(end) => format!(
                    "Se actualizó la cuenta {account}: su vigencia se amplió hasta el {} (prórroga del contrato){}.",
                    notify::spanish_date(end),
                    if enabled { ", y se reactivó porque ya había vencido" } else { "" }
                ),
                None => format!("Se actualizó la cuenta {account}."),
            }
        }
        (Some(Kind::Disable), _) => format!("Se inactivó la cuenta {account}."),
        (Some(Kind::Enable), _) => format!("Se reactivó la cuenta {account}."),
        (Some(Kind::Transfer), _) => format!("Se trasladó la cuenta {account} a {}.", s.department),
        _ => format!("Se gestionó la cuenta {account}."),
    }
}

/// The outcome a closed request keeps: what it was told when it was carried out.
fn outcome_text(request: &Request) -> String {
    request
        .history
        .iter()
        .rev()
        // Carried out in the directory, or by hand (the service desk's note).
        .find(|h| {
            h.to == StateName::Notifying && matches!(h.from, Some(StateName::Executing | StateName::Manual))
        })
        .map_or_else(|| "atendida".to_string(), |h| h.reason.clone())
}
