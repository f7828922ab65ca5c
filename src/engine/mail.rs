//! Procedure activity 4, *reportar gestión realizada*: messages queued in each request's
//! outbox, rendered from the Spanish templates and delivered with retries; the access data,
//! which holds a password, sent at once and never stored; alerts to the administrators.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use minijinja::Value;
use tracing::{error, warn};

use super::{CycleReport, Engine, EngineError, backoff};
use crate::directory::password::Password;
use crate::directory::plan::{DirectoryOp, Plan};
use crate::notify::{self, Rendered, SendError};
use crate::request::{Actor, HolderType, Request, State};
use crate::source::row_hash;
use crate::store::{Changes, Delivery, MessageKind, OutboxMessage};

impl Engine {
    /// Sends the access-data message straight away: it holds a password, so it never waits in
    /// the store. Returns the address it went to. The message states the domain's password
    /// rules (read with the password's length, so already known to the directory).
    pub(super) fn send_access_data(
        &mut self,
        request: &Request,
        plan: &Plan,
        password: &Password,
        now: Timestamp,
    ) -> Result<Result<String, SendError>, EngineError> {
        let policy = match self.reach(|d, _| d.password_policy()) {
            Ok(policy) => Some(policy),
            Err(_) => {
                warn!("the domain's password rules cannot be read; the access data go without them");
                None
            }
        };
        let s = &request.submission;
        let to = match &plan.credentials_to {
            Some(on_record) => on_record.clone(),
            None if s.personal_email.is_empty() => s.requester.clone(),
            None => s.personal_email.clone(),
        };
        // A new account whose first access data bounced is still new to its holder.
        let reset = request.credentials_for.is_none()
            && !plan.ops.iter().any(|op| matches!(op, DirectoryOp::Create { .. }));
        let domain = &self.config.directory.domain;
        let extra = minijinja::context! {
            account => plan.account.clone(),
            mail => created(plan, "mail").unwrap_or_else(|| format!("{}@{domain}", plan.account)),
            sign_in => created(plan, "userPrincipalName").unwrap_or_else(|| format!("{}@{domain}", plan.account)),
            min_length => policy.map_or(0, |p| p.min_length),
            complex => policy.is_some_and(|p| p.complexity),
            password => password.expose(),
            dry_run => self.directory.is_dry_run(),
            reset => reset,
            replaces => request.credential_attempts > 1,
        };
        let ctx = minijinja::context! { ..extra, ..self.context(request, "") };
        let rendered = self.templates.render("datos-de-acceso", &ctx)?;
        let id = format!("{}.{}.datos-de-acceso", request.id, request.history.len());
        Ok(self
            .envelope
            .message(&id, std::slice::from_ref(&to), &rendered)
            .and_then(|m| self.mailer.send(&m, now))
            .map(|()| to))
    }

    /// Delivers pending outbox messages, each recorded as sent before the next one goes.
    pub fn deliver(&mut self, now: Timestamp, report: &mut CycleReport) -> Result<(), EngineError> {
        let due = |m: &OutboxMessage| match m.delivery {
            Delivery::Pending { next_attempt, .. } => next_attempt.is_none_or(|t| t <= now),
            _ => false,
        };
        // One request in memory at a time: after a first import, every request has its answer
        // to send.
        for id in self.store.mailing_ids()? {
            let Some(mut request) = self.store.request(id)? else { continue };
            for i in 0..request.outbox.len() {
                if !due(&request.outbox[i]) {
                    continue;
                }
                let mut message = request.outbox[i].clone();
                let sent = self.send(&mut message, Some(&request), now, report);
                let to = self.recipients_shown(&message);
                if sent {
                    request.note(
                        Actor::Daemon,
                        format!("correo «{}» enviado a {to}", message.kind.key()),
                        now,
                    );
                }
                let mut changes = Changes::new();
                if let Delivery::Failed { error, .. } = &message.delivery {
                    // Refused for good: someone must reach this person another way.
                    let reason = format!("correo «{}» a {to} no entregado: {error}", message.kind.key());
                    request.note(Actor::Daemon, reason.clone(), now);
                    let body = format!(
                        "{reason}\n\nSolicitud {}{}. El servidor de correo lo rechazó de forma definitiva; \
                         comuníquese con el destinatario por otro medio.",
                        request.id,
                        if request.origin.is_some() {
                            String::new()
                        } else {
                            format!(" (fila {})", request.row)
                        }
                    );
                    self.alert(&mut changes, &format!("Correo no entregado ({})", request.id), &body, now)?;
                }
                request.outbox[i] = message;
                // A delivery changes no state, name or waiting person: the indexes stay as they
                // are, and the request is not counted as moved.
                changes.put_request(&request);
                self.store.commit(changes)?;
            }
        }
        for mut message in self.store.pending_messages()?.into_iter().filter(|m| due(m)) {
            self.send(&mut message, None, now, report);
            let mut changes = Changes::new();
            changes.put_message(&message);
            self.store.commit(changes)?;
        }
        Ok(())
    }

    /// A message's recipients as the request's history shows them: a holder's personal address
    /// (read from the directory, not from the request, so its purge would not know it) masked.
    fn recipients_shown(&self, message: &OutboxMessage) -> String {
        let shown = |a: &String| match message.kind {
            MessageKind::HolderNotice if !self.policy.requester_in_domain(a) => notify::mask_email(a),
            _ => a.clone(),
        };
        message.to.iter().map(shown).collect::<Vec<_>>().join(", ")
    }

    /// One delivery attempt; the message's `delivery` says what came of it.
    fn send(
        &mut self,
        message: &mut OutboxMessage,
        request: Option<&Request>,
        now: Timestamp,
        report: &mut CycleReport,
    ) -> bool {
        let result = self.render(message, request).and_then(|rendered| {
            let m = self.envelope.message_in_thread(
                &message.id,
                &message.to,
                &rendered,
                message.thread.as_deref(),
            )?;
            self.mailer.send(&m, now)?;
            Ok(())
        });
        match result {
            Ok(()) => {
                message.delivery = Delivery::Sent { at: now };
                report.sent += 1;
                self.mail_flowing();
                true
            }
            Err(EngineError::Mail(e)) if e.is_transient() => {
                self.mail_failed(&e);
                let attempts = match message.delivery {
                    Delivery::Pending { attempts, .. } => attempts + 1,
                    _ => 1,
                };
                warn!(message = %message.id, error = %e.for_log(), attempts, "message not delivered; will retry");
                message.delivery =
                    Delivery::Pending { attempts, next_attempt: Some(now + backoff(attempts)) };
                false
            }
            Err(e) => {
                let shown = match &e {
                    EngineError::Mail(e) => e.for_log(),
                    e => e.to_string(),
                };
                error!(message = %message.id, error = %shown, "message cannot be delivered");
                message.delivery = Delivery::Failed { error: e.to_string(), at: now };
                false
            }
        }
    }

    fn render(&self, message: &OutboxMessage, request: Option<&Request>) -> Result<Rendered, EngineError> {
        let ctx = match request {
            Some(r) => self.context(r, &message.detail),
            None => {
                let (subject, detail) = message.detail.split_once("\n\n").unwrap_or((&message.detail, ""));
                minijinja::context! { subject => subject, detail => detail, signature => self.config.mail.signature() }
            }
        };
        // Each message's template is the file named by its key.
        Ok(self.templates.render(message.kind.key(), &ctx)?)
    }

    /// The variables every request template may use (see [`notify::sample_context`]).
    fn context(&self, r: &Request, detail: &str) -> Value {
        let s = &r.submission;
        let tz = self.config.calendar.time_zone();
        let date = |d: Option<Date>| d.map(notify::spanish_date).unwrap_or_default();
        let due = match &r.state {
            State::Scheduled { due, .. } => notify::spanish_datetime(*due, tz),
            _ => String::new(),
        };
        // A scheduled request's clock is stopped until its date: what is left of its service
        // level counts from then.
        let deadline = match &r.state {
            State::Scheduled { due, .. } => {
                let left = jiff::SignedDuration::from_secs(r.sla.remaining_secs.max(0));
                self.config.calendar.add_business_hours(*due, left).max(r.sla_deadline)
            }
            _ => r.sla_deadline,
        };
        let credentials_sent = r.credentials_sent_to.is_some();
        minijinja::context! {
            id => r.id.to_string(),
            kind => s.kind.map_or(s.kind_answer.clone(), |k| k.label().to_string()),
            kind_answer => s.kind_answer.clone(),
            holder => s.holder_type.map_or("", HolderType::label),
            name => s.full_name(),
            requester => s.requester.clone(),
            account => r.account.clone().unwrap_or_else(|| s.account.clone()),
            row => r.row,
            received => notify::spanish_datetime(r.received_at, tz),
            // When the requester sent it (the form's time): what a notice says it was asked.
            submitted => notify::spanish_datetime(crate::sla::start(r, &self.config.calendar), tz),
            deadline => notify::spanish_datetime(deadline, tz),
            sla_hours => self.config.sla.hours_for(s.kind),
            due => due,
            effective_date => date(s.effective_date),
            return_date => date(s.return_date),
            // A request cuentas opened itself at the end of a contract: the contract's last day.
            contract_end => date(r.contract_end()),
            detail => detail.to_string(),
            service_request_procedure => self.config.mail.service_request_procedure.clone(),
            credentials_sent => credentials_sent,
            personal_email_masked => r.credentials_sent_to.clone().unwrap_or_else(|| notify::mask_email(&s.personal_email)),
            signature => self.config.mail.signature(),
        }
    }

    /// Queues a message for a request, to whoever that kind of message goes to.
    pub(super) fn queue(&self, request: &mut Request, kind: MessageKind, detail: String, now: Timestamp) {
        let to = match kind {
            MessageKind::ManualHandling | MessageKind::DeletionChecklist | MessageKind::SlaWarning => {
                self.config.mailboxes.service_desk.to_string()
            }
            _ if request.submission.requester.is_empty() => self.config.mailboxes.service_desk.to_string(),
            _ => request.submission.requester.clone(),
        };
        self.queue_to(request, kind, to, detail, now);
    }

    /// Queues a message to `to`, and its copy for the service-desk register when there is one.
    pub(super) fn queue_to(
        &self,
        request: &mut Request,
        kind: MessageKind,
        to: String,
        detail: String,
        now: Timestamp,
    ) {
        let before = request.outbox.len();
        request.queue_message(kind, vec![to], detail, now);
        // A second message of its kind in the same step (the holder's notice, at the personal
        // address too) has an id of its own, and no copy: the register has the first one.
        let id = request.outbox[before].id.clone();
        let same =
            request.outbox[..before].iter().filter(|m| m.id == id || m.id.starts_with(&format!("{id}.")));
        let again = same.filter(|m| !m.id.ends_with(".copia")).count();
        if again > 0 {
            request.outbox[before].id = format!("{id}.{}", again + 1);
            return;
        }
        // Into the ticket's thread, when the request has a ticket (a row from outside the
        // entity's domains has none).
        if let Some(register) = &self.config.mailboxes.register
            && self.policy.requester_in_domain(&request.submission.requester)
        {
            request.copy_to_register(&register.to_string());
        }
    }

    /// Queues an alert to the administrators, once per distinct text.
    pub(super) fn alert(
        &self,
        changes: &mut Changes,
        subject: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let key = row_hash(&[subject.to_string(), body.to_string()]);
        self.alert_on(changes, &key, subject, body, now)
    }

    /// Queues the alert of a lasting `condition` (see [`Condition`]): when it starts, then as a
    /// reminder every `alert_repeat_hours` while it lasts; [`Engine::condition_cleared`] ends it.
    pub(super) fn alert_condition(
        &self,
        condition: Condition,
        subject: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        self.alert_on(&mut changes, condition.key(), subject, body, now)?;
        Ok(self.store.commit(changes)?)
    }

    /// The condition is over: the next time it starts is a new episode, told again.
    pub(super) fn condition_cleared(&self, condition: Condition) -> Result<(), EngineError> {
        if self.store.alert_sent(condition.key())?.is_none() {
            return Ok(());
        }
        let mut changes = Changes::new();
        changes.clear_alert(condition.key());
        Ok(self.store.commit(changes)?)
    }

    /// Whether the alert `key` may be raised now: never raised, or last raised at least
    /// `[mail] alert_repeat_hours` ago.
    pub(super) fn alert_due(&self, key: &str, now: Timestamp) -> Result<bool, EngineError> {
        let repeat = SignedDuration::from_hours(i64::from(self.config.mail.alert_repeat_hours.max(1)));
        Ok(self.store.alert_sent(key)?.is_none_or(|sent| now.duration_since(sent) >= repeat))
    }

    pub(super) fn alert_on(
        &self,
        changes: &mut Changes,
        key: &str,
        subject: &str,
        body: &str,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if !self.alert_due(key, now)? {
            return Ok(());
        }
        changes.mark_alert(key, now);
        let message = OutboxMessage::new(
            format!("alerta.{key}.{}", now.as_second()),
            None,
            MessageKind::Alert,
            self.config.mailboxes.administrators.iter().map(ToString::to_string).collect(),
            format!("{subject}\n\n{body}"),
            now,
        );
        changes.put_message(&message);
        Ok(())
    }
}

/// Where the notice to an account's holder goes: its institutional mailbox; and, when the plan
/// disables, ends or deletes the account (a disable, leave, suspension, termination or deletion:
/// the mailbox may be closed to its holder), the personal address the directory held for it
/// when the plan was made (never one typed in the form). Nothing when it has no mailbox.
pub(super) fn holder_addresses(plan: &Plan) -> Vec<String> {
    let Some(mailbox) = plan.notice_to.clone() else { return Vec::new() };
    let closes = plan.ops.iter().any(|op| {
        matches!(op, DirectoryOp::Disable { .. } | DirectoryOp::Delete { .. } | DirectoryOp::SetExpiry { .. })
    });
    let personal =
        plan.notice_personal.clone().filter(|p| closes && !p.trim().eq_ignore_ascii_case(mailbox.trim()));
    std::iter::once(mailbox).chain(personal).collect()
}

/// The value `plan` gives `attribute` on the account it creates; `None` if it creates none
/// (the names of an existing account are `<sam>@<domain>`, as cuentas makes them).
fn created(plan: &Plan, attribute: &str) -> Option<String> {
    plan.ops.iter().find_map(|op| match op {
        DirectoryOp::Create { attributes, .. } => {
            attributes.iter().find(|(a, _)| a == attribute).map(|(_, v)| v.clone())
        }
        _ => None,
    })
}

/// Conditions that last, alerted once per episode (and reminded while they last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Condition {
    /// The responses cannot be read (access, key, spreadsheet id).
    Source,
    /// Rows were moved or deleted: ingestion stopped.
    Halted,
    /// The form lost a required column.
    Columns,
    /// The authorizer matrix's tab is not valid.
    Matrix,
    /// The directory cannot be reached.
    Directory,
    /// The service desk's form cannot be read, or lacks a question.
    Desk,
}

impl Condition {
    fn key(self) -> &'static str {
        match self {
            Condition::Source => "condition/source",
            Condition::Halted => "condition/halted",
            Condition::Columns => "condition/columns",
            Condition::Matrix => "condition/matrix",
            Condition::Directory => "condition/directory",
            Condition::Desk => "condition/desk",
        }
    }
}
