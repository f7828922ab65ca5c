//! What follows a directory step: the return of a leave scheduled, a deletion waiting for its
//! backups and then carried out, the outcome reported; and the hooks around the directory
//! (*sincronizar dominio* after changes, a new account's mailbox before its access data, the
//! mailbox of a deleted account).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tracing::{error, warn};

use super::execute::{Attempt, Replan};
use super::{CycleReport, Engine, EngineError, Move, backoff};
use crate::config::HookCommand;
use crate::directory::plan::{DirectoryOp, Plan};
use crate::notify;
use crate::request::{Actor, DELETION_CHECKLIST, Kind, MailboxWait, Phase, Request, State};
use crate::store::{Changes, MessageKind};

impl Engine {
    /// The move after a step was carried out: the outcome to the requester (and a notice to
    /// the account's holder), or, for the first step of a two-step kind, what comes next.
    /// `paused`: another leave of the account has its return still to come (see
    /// `held_by_another_leave`).
    pub(super) fn next_step(
        &self,
        request: &mut Request,
        plan: &Plan,
        detail: String,
        paused: bool,
        now: Timestamp,
    ) -> Move {
        let kind = request.submission.kind;
        let disabled = plan.ops.iter().any(|op| matches!(op, DirectoryOp::Disable { .. }));
        let notice = if plan.ops.is_empty() { Vec::new() } else { super::mail::holder_addresses(plan) };
        match (kind, request.phase) {
            // A leave (or a suspension with a return date) that disabled the account, or found
            // it disabled by another leave: it is enabled again on the return date, unless
            // another leave still holds it then. One that found it disabled for good leaves it so.
            (Some(Kind::Leave | Kind::Suspension), Phase::Start)
                if (disabled || paused) && request.submission.return_date.is_some() =>
            {
                self.return_scheduled(request, plan, notice, now)
            }
            (Some(Kind::Delete), Phase::Start) => {
                request.phase = Phase::Removal;
                let pending = DELETION_CHECKLIST.iter().map(|(key, _)| key.to_string()).collect();
                let after = self.removable_after(now);
                let tz = self.config.calendar.time_zone();
                let detail = format!(
                    "La cuenta {} quedó inactiva en la unidad de cuentas retiradas. Se eliminará del directorio no \
                     antes del {}, y solo cuando la mesa de servicio confirme las copias de seguridad (correo, \
                     calendario, contactos, nube y equipo) y el retiro del equipo del dominio.",
                    plan.account,
                    notify::spanish_datetime(after, tz)
                );
                Move::daemon(State::AwaitingConfirmation { pending, since: now }, detail.clone())
                    .telling(MessageKind::Progress, detail.clone())
                    .telling(MessageKind::DeletionChecklist, checklist(self, request, &plan.account))
                    .with_notice(notice, detail)
            }
            _ => Move::daemon(State::Notifying, detail.clone())
                .telling(MessageKind::Outcome, detail.clone())
                .with_notice(notice, detail),
        }
    }

    /// A leave's or a suspension's first step done: its return, scheduled for its date.
    fn return_scheduled(
        &self,
        request: &mut Request,
        plan: &Plan,
        notice: Vec<String>,
        now: Timestamp,
    ) -> Move {
        request.phase = Phase::Return;
        let due = self.due(request).unwrap_or(now);
        let back = Plan {
            account: plan.account.clone(),
            ops: vec![DirectoryOp::Enable { sam: plan.account.clone() }],
            notice_to: plan.notice_to.clone(),
            notice_personal: plan.notice_personal.clone(),
            ..Plan::default()
        };
        let tz = self.config.calendar.time_zone();
        let detail = format!(
            "Se inactivó la cuenta {} por {}; el {} se reactivará sola.",
            plan.account,
            if request.submission.kind == Some(Kind::Leave) {
                "vacaciones o licencia"
            } else {
                "la suspensión del contrato"
            },
            notify::spanish_datetime(due, tz)
        );
        Move::daemon(State::Scheduled { due, plan: back }, detail.clone())
            .telling(MessageKind::Progress, detail.clone())
            .with_notice(notice, detail)
    }

    /// When an account disabled at `since` may be deleted (its backups confirmed).
    fn removable_after(&self, since: Timestamp) -> Timestamp {
        self.wake.removable_after(since)
    }

    pub(super) fn removable_since(&self, since: Timestamp, now: Timestamp) -> bool {
        self.removable_after(since) <= now
    }

    /// Every backup confirmed and the days passed: the account is deleted, if the directory
    /// still holds it disabled in the retired OU; if not, an administrator must look.
    pub(super) fn remove_account(
        &mut self,
        mut request: Request,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        let days = self.config.directory.min_days_disabled_before_delete;
        let reason =
            format!("copias de seguridad confirmadas y {days} día(s) inactiva: se elimina la cuenta");
        let (plan, refused) = match self.replan(&request, now) {
            Replan::Fresh(plan) => (plan, None),
            Replan::Wait | Replan::Stored => return Ok(()),
            Replan::Refused(triage) => {
                let plan = Plan { account: request.submission.account.clone(), ..Plan::default() };
                (plan, Some(triage.reason().to_string()))
            }
        };
        let executing = State::Executing { plan: plan.clone(), attempts: 0, retry_at: None, released: false };
        self.record(&mut changes, report, &mut request, Move::daemon(executing, reason), now)?;
        if let Some(why) = refused {
            error!("deletion refused: the account is no longer disabled in the retired OU");
            let attempt = Attempt { attempts: 1, ..Attempt::first(request, plan) };
            return self.fail(changes, report, attempt, why, now);
        }
        self.store.commit(changes)?;
        self.execute(Attempt::first(request, plan), now, report)
    }

    /// Whether the credential step of this request waits for its new account's mailbox.
    pub(super) fn awaits_mailbox(&self, request: &Request) -> bool {
        self.config.hooks.mailbox_ready.is_some()
            && !self.directory.is_dry_run()
            && !request.mailbox_ready
            && matches!(request.submission.kind, Some(Kind::Create | Kind::Assignment))
    }

    /// Runs `mailbox_ready ACCOUNT`; its outcome goes to the history. A failure to start it
    /// counts as not ready (and is an error in the log: the configuration must be fixed).
    pub(super) fn mailbox_ready(&mut self, request: &mut Request, account: &str, now: Timestamp) -> bool {
        let Some(hook) = self.config.hooks.mailbox_ready.clone() else { return true };
        let ready = self.run_hook(request, "mailbox_ready", &hook, account, now);
        if ready {
            request.mailbox_ready = true;
            request.mailbox_wait = None;
        }
        ready
    }

    /// The new account's mailbox is not there yet: the request looks again after a backoff
    /// (the SLA clock keeps running); past `mailbox_wait_hours` the administrators hear of it.
    pub(super) fn wait_for_mailbox(
        &mut self,
        mut changes: Changes,
        report: &mut CycleReport,
        a: Attempt,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Attempt { mut request, plan, attempts, released } = a;
        let wait = request.mailbox_wait.get_or_insert(MailboxWait { since: now, checks: 0 });
        wait.checks += 1;
        let (since, checks) = (wait.since, wait.checks);
        let retry_at = now + backoff(checks);
        let hours = self.config.hooks.mailbox_wait_hours;
        if now.duration_since(since) >= SignedDuration::from_hours(i64::from(hours)) {
            let body = format!(
                "El buzón de la cuenta {} (solicitud {}) no aparece tras {hours} hora(s): sus datos de acceso \
                 esperan. Revise la sincronización del dominio y el buzón; la solicitud sigue intentándolo sola.",
                plan.account, request.id
            );
            let key = format!("mailbox/{}", request.id);
            self.alert_on(&mut changes, &key, &format!("Buzón pendiente: {}", plan.account), &body, now)?;
        }
        warn!(account = %plan.account, checks, "mailbox not ready; the access data wait");
        let tz = self.config.calendar.time_zone();
        let reason = format!(
            "el buzón de {} aún no está disponible; se buscará de nuevo el {}",
            plan.account,
            notify::spanish_datetime(retry_at, tz)
        );
        let retry = State::Executing { plan, attempts, retry_at: Some(retry_at), released };
        self.record(&mut changes, report, &mut request, Move::daemon(retry, reason), now)?;
        self.store.commit(changes)?;
        Ok(())
    }

    /// After a plan was applied to AD (not in a dry run): the request is one whose change the
    /// cycle's `after_change` carries, and a deletion runs `mailbox_deleted ACCOUNT` (a failure
    /// is for a person to check).
    pub(super) fn after_apply(
        &mut self,
        request: &mut Request,
        plan: &Plan,
        lines: &[String],
        now: Timestamp,
    ) {
        if !lines.is_empty() {
            self.changed.push(request.id);
        }
        if !plan.ops.iter().any(|op| matches!(op, DirectoryOp::Delete { .. })) {
            return;
        }
        let Some(hook) = self.config.hooks.mailbox_deleted.clone() else { return };
        if !self.run_hook(request, "mailbox_deleted", &hook, &plan.account, now) {
            warn!(account = %plan.account, "the deleted account's mailbox is not confirmed gone; the service desk checks it");
        }
    }

    /// After a cycle that changed the directory: `after_change` once (*sincronizar dominio*),
    /// its outcome in the history of each request whose change it carries.
    pub(super) fn after_change(&mut self, now: Timestamp) -> Result<(), EngineError> {
        let changed = std::mem::take(&mut self.changed);
        let Some(hook) = self.config.hooks.after_change.clone() else { return Ok(()) };
        if changed.is_empty() {
            return Ok(());
        }
        let (_, outcome) = self.hook_outcome("after_change", &hook, None);
        let mut changes = Changes::new();
        for id in changed {
            if let Some(mut request) = self.store.request(id)? {
                request.note(
                    Actor::Daemon,
                    format!("sincronización del dominio (after_change): {outcome}"),
                    now,
                );
                changes.put_request(&request);
            }
        }
        self.store.commit(changes)?;
        Ok(())
    }

    /// Runs a hook with `account` as its last argument, notes its outcome on the request;
    /// whether it exited 0.
    fn run_hook(
        &mut self,
        request: &mut Request,
        key: &str,
        hook: &HookCommand,
        account: &str,
        now: Timestamp,
    ) -> bool {
        let (ok, outcome) = self.hook_outcome(key, hook, Some(account));
        request.note(Actor::Daemon, format!("{key} {account}: {outcome}"), now);
        ok
    }

    /// Runs a hook: whether it exited 0, and its outcome in one line (Spanish, for a history).
    fn hook_outcome(&mut self, key: &str, hook: &HookCommand, account: Option<&str>) -> (bool, String) {
        let timeout = Duration::from_secs(self.config.hooks.timeout_secs);
        let args: Vec<&str> = account.into_iter().collect();
        match crate::hooks::run(hook, &args, timeout, || self.beat()) {
            // `hooks::run` logged it, program, status and output.
            Ok(run) => (run.succeeded(), run.summary()),
            Err(e) => {
                error!(hook = key, error = %e, "hook cannot be run; fix [hooks] in the configuration");
                (false, format!("no se pudo ejecutar ({e})"))
            }
        }
    }
}

impl Move {
    /// Also tells the account's holder at each of its addresses (`mail::holder_addresses`):
    /// the institutional mailbox, and the personal address on record.
    fn with_notice(self, addresses: Vec<String>, detail: String) -> Move {
        addresses
            .into_iter()
            .fold(self, |step, to| step.telling_to(MessageKind::HolderNotice, to, detail.clone()))
    }
}

/// The backups to confirm before an account is deleted, each with the link that confirms it,
/// then the one that cancels the deletion.
fn checklist(engine: &Engine, request: &Request, account: &str) -> String {
    let id = request.id;
    let mut out = format!(
        "Cuenta: {account}\n\nCada paso se confirma con su vínculo (en «Observaciones», dónde quedó la copia):\n\n"
    );
    for (n, (key, _)) in DELETION_CHECKLIST.iter().enumerate() {
        let label = crate::desk::step_label(key).unwrap_or_default();
        out.push_str(&format!(
            "  {}. {label}\n     {}\n",
            n + 1,
            engine.offer(id, crate::desk::DeskAction::Confirm, Some(key))
        ));
    }
    out.push_str(&format!(
        "\nSi la eliminación no procede, cancélela (el motivo, en «Observaciones»):\n  {}\n",
        engine.offer(id, crate::desk::DeskAction::Cancel, None)
    ));
    out
}
