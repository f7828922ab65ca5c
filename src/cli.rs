//! The administrator's commands on the request store (`requests`, `show`, `plan`, `report`,
//! `release`, `retry`, `done`, `confirm`, `cancel`): each turns its arguments, the store and
//! who is acting into the text it prints. The same code runs in the CLI on a store nobody holds,
//! and inside the daemon for a command that came through its control socket (`control`).

use anyhow::{Result, bail};
use clap::{Subcommand, ValueEnum};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::request::{
    Actor, DELETION_CHECKLIST, Phase, Request, RequestId, State, StateName, checklist_step,
};
use crate::store::{Changes, MessageKind, Store};

/// How `cuentas report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

/// The commands on the store; also the control socket's request (`control`).
#[derive(Debug, Clone, PartialEq, Subcommand, Serialize, Deserialize)]
pub enum StoreCommand {
    /// List requests.
    Requests {
        /// Only requests in this state (e.g. NeedsInfo, Manual, Closed).
        #[arg(long)]
        state: Option<StateName>,
    },
    /// Show one request with its whole history.
    Show {
        id: RequestId,
        /// Print the stored record (versioned JSON) instead.
        #[arg(long)]
        json: bool,
    },
    /// What open requests will do to the directory: every step pending, or with `--at` the
    /// steps that will have come due by the end of that day (each decided again, when it runs,
    /// against the directory as it is then).
    Plan {
        /// A day, yyyy-mm-dd: only what will have run by its end.
        #[arg(long)]
        at: Option<jiff::civil::Date>,
    },
    /// The report of the work done: requests submitted from one date to another (both
    /// included) by kind and state, the service level met, hours to answer, risks, breaches.
    Report {
        /// First day, yyyy-mm-dd.
        #[arg(long)]
        from: jiff::civil::Date,
        /// Last day, yyyy-mm-dd.
        #[arg(long)]
        to: jiff::civil::Date,
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
        /// Also write the chart of the period (PNG) to this file.
        #[arg(long)]
        chart: Option<std::path::PathBuf>,
        /// Print instead the evidence for an audit (one JSON object a line, each chained to the
        /// one before by its hash; `cuentas verify-evidence FILE` checks it), and the hash the
        /// chain ends in on standard error.
        #[arg(long, conflicts_with_all = ["format", "chart"])]
        evidence: bool,
    },
    /// The last drift reading: what the managed OUs hold that the register does not (accounts
    /// no request made, attributes and groups changed by hand, contractors enabled without an
    /// end or past it, unused accounts, accounts cuentas made that are gone). The daemon reads
    /// them each business morning; nothing is ever changed in the directory.
    Drift {
        #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
        format: ReportFormat,
    },
    /// Let requests held by the hourly limit of disables go on.
    Release {
        /// The requests to release.
        ids: Vec<RequestId>,
        /// Release every held request.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
    /// Try a failed request again, from the start of its directory step; or decide again one
    /// handled by hand (Manual) once the directory was changed as it asked.
    Retry { id: RequestId },
    /// Record that a request handled by hand (state Manual) is done; the requester is told.
    Done {
        id: RequestId,
        /// What was done, in Spanish: it goes to the requester as the outcome.
        #[arg(long)]
        note: String,
    },
    /// Record one confirmed step of a deletion's backup checklist (state AwaitingConfirmation).
    Confirm {
        id: RequestId,
        /// The step: correo, calendario, contactos, nube, equipo-respaldo, equipo-dominio, equipo-borrado.
        step: String,
        /// Who made and checked it.
        #[arg(long)]
        by: String,
        /// Where the backup is, or anything worth keeping.
        #[arg(long)]
        note: Option<String>,
    },
    /// Take a request decided in the shadow week again, live: a new request from the same
    /// response, decided at the next cycle against the directory as it is then.
    Replay { id: RequestId },
    /// Cancel an open request (it is answered nothing; say why for the history).
    Cancel {
        id: RequestId,
        #[arg(long)]
        reason: String,
    },
}

/// What a command runs with.
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub store: &'a Store,
    /// Who is acting: the history names them.
    pub actor: Actor,
    pub now: Timestamp,
    /// A key marked in the same commit as the command's change: the desk form's response it
    /// came from, so that a response is acted on once even when the daemon stops before its
    /// cursor moves on.
    pub marks: Option<String>,
}

impl StoreCommand {
    /// Whether it only reads (it may run on a store another process holds open, never).
    pub fn changes_the_store(&self) -> bool {
        !matches!(
            self,
            StoreCommand::Requests { .. }
                | StoreCommand::Show { .. }
                | StoreCommand::Plan { .. }
                | StoreCommand::Report { .. }
                | StoreCommand::Drift { .. }
        )
    }

    /// Runs the command; the text it prints.
    pub fn run(&self, ctx: &Ctx) -> Result<String> {
        match self {
            StoreCommand::Requests { state } => requests(ctx, *state),
            StoreCommand::Show { id, json } => show_request(ctx, *id, *json),
            StoreCommand::Plan { at } => plan(ctx, *at),
            StoreCommand::Report { from, to, evidence: true, .. } => evidence(ctx, *from, *to),
            StoreCommand::Report { from, to, format, .. } => report(ctx, *from, *to, *format),
            StoreCommand::Drift { format } => drift(ctx, *format),
            StoreCommand::Release { ids, all } => release(ctx, ids, *all),
            StoreCommand::Retry { id } => retry(ctx, *id),
            StoreCommand::Done { id, note } => done(ctx, *id, note),
            StoreCommand::Confirm { id, step, by, note } => confirm(ctx, *id, step, by, note.as_deref()),
            StoreCommand::Cancel { id, reason } => cancel(ctx, *id, reason),
            StoreCommand::Replay { id } => replay(ctx, *id),
        }
    }
}

impl StoreCommand {
    /// The chart a `report --chart` asked for (PNG), written where the command was typed.
    pub fn chart(&self, ctx: &Ctx) -> Result<Option<Vec<u8>>> {
        let StoreCommand::Report { from, to, chart: Some(_), .. } = self else { return Ok(None) };
        let report = build_report(ctx, *from, *to)?;
        Ok(Some(crate::report::chart::png(&report.days)?))
    }
}

/// `cuentas requests`: one line per request, optionally of one state.
fn requests(ctx: &Ctx, state: Option<StateName>) -> Result<String> {
    let mut out = String::new();
    let listed: Box<dyn Iterator<Item = Result<Request, crate::store::StoreError>>> = match state {
        // Only the requests in that state are decoded whole.
        Some(state) => Box::new(ctx.store.requests_in_state(state)),
        None => Box::new(ctx.store.requests()),
    };
    for r in listed {
        let r = r?;
        out.push_str(&line(&r, Some(sla_column(&r, ctx.config, ctx.now))));
        out.push('\n');
    }
    Ok(out)
}

/// `cuentas show`: a request with its whole history, or its stored record.
fn show_request(ctx: &Ctx, id: RequestId, json: bool) -> Result<String> {
    if json {
        let Some(raw) = ctx.store.raw_request(id)? else { bail!("no request {id}") };
        return Ok(format!("{}\n", String::from_utf8_lossy(&raw)));
    }
    let Some(r) = ctx.store.request(id)? else { bail!("no request {id}") };
    let mut same_person = Vec::new();
    for other in r.person_hash.as_deref().map(|h| ctx.store.same_person(h)).transpose()?.unwrap_or_default() {
        if let Some(other) = ctx.store.request(other)?.filter(|o| o.id != r.id) {
            same_person.push(other);
        }
    }
    Ok(show(&r, &same_person, ctx.config, ctx.now))
}

/// `cuentas plan`: what open requests will do to the directory.
/// `cuentas plan [--at DATE]`.
fn plan(ctx: &Ctx, at: Option<jiff::civil::Date>) -> Result<String> {
    let tz = ctx.config.calendar.time_zone();
    // The end of the day asked about: every step due before it will have run by then.
    let by = match at {
        Some(day) => Some(day.tomorrow()?.to_zoned(tz.clone())?.timestamp()),
        None => None,
    };
    let local = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
    let mut out = String::new();
    for r in ctx.store.open_requests()? {
        let r = r?;
        let Some(plan) = r.state.plan() else { continue };
        let due = match &r.state {
            State::Scheduled { due, .. } => Some(*due),
            State::Executing { retry_at, .. } => *retry_at,
            _ => None,
        };
        if let Some(by) = by
            && (due.is_some_and(|due| due >= by) || r.state.name() == StateName::Held)
        {
            continue;
        }
        let when = due.map(|t| format!(" on {}", local(t))).unwrap_or_default();
        out.push_str(&format!("{} ({}) {}:{when}\n", r.id, r.state.name(), plan.account));
        if plan.ops.is_empty() {
            out.push_str("  nothing to change\n");
        }
        for op in &plan.ops {
            out.push_str(&format!("  {op}\n"));
        }
    }
    match at {
        _ if out.is_empty() && at.is_none() => {
            out.push_str("nothing pending: no open request has directory operations to run\n")
        }
        Some(day) if out.is_empty() => out.push_str(&format!("nothing will have run by the end of {day}\n")),
        Some(day) => out.insert_str(
            0,
            &format!(
                "By the end of {day} (as planned now; each step is authorized and planned again when it runs, \
                 against the directory as it is then):\n"
            ),
        ),
        None => {}
    }
    Ok(out)
}

/// `cuentas report`: the work done over a period.
fn report(ctx: &Ctx, from: jiff::civil::Date, to: jiff::civil::Date, format: ReportFormat) -> Result<String> {
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let report = build_report(ctx, from, to)?;
    Ok(match format {
        ReportFormat::Table => report.table(),
        ReportFormat::Csv => report.csv(),
        ReportFormat::Json => report.json() + "\n",
    })
}

/// `cuentas report --evidence`: the chained evidence file of the period, on standard output.
fn evidence(ctx: &Ctx, from: jiff::civil::Date, to: jiff::civil::Date) -> Result<String> {
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let drift = ctx.store.drift()?;
    let domains = crate::policy::Policy::new(ctx.config.form.requester_domains.clone());
    let institutional = |address: &str| domains.requester_in_domain(address);
    let mut evidence = crate::report::evidence::Evidence::new(
        (&ctx.config.calendar, &ctx.config.sla),
        &institutional,
        (from, to),
        ctx.now,
    );
    // The store hands requests out in id order, the order the file lists them in.
    let (year, since) = crate::report::earliest(from, &ctx.config.calendar);
    for r in ctx.store.requests_received_since(year, since)? {
        evidence.add(&r?);
    }
    let (text, _) = evidence.finish(drift.as_ref());
    Ok(text)
}

/// The report of the requests submitted from `from` to `to`, read one at a time.
fn build_report(ctx: &Ctx, from: jiff::civil::Date, to: jiff::civil::Date) -> Result<crate::report::Report> {
    let mut tally = crate::report::Tally::new(&ctx.config.calendar, &ctx.config.sla, from, to, ctx.now);
    let (year, since) = crate::report::earliest(from, &ctx.config.calendar);
    for summary in ctx.store.summaries_received_since(year, since)? {
        tally.add(&summary?);
    }
    Ok(tally.finish())
}

/// `cuentas drift`: the last reading of the managed OUs against the register.
fn drift(ctx: &Ctx, format: ReportFormat) -> Result<String> {
    let Some(reading) = ctx.store.drift()? else {
        return Ok(
            "no drift reading yet: the daemon reads the managed OUs each business morning\n".to_string()
        );
    };
    let tz = ctx.config.calendar.time_zone().clone();
    let local = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
    Ok(match format {
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&reading)?),
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(["account", "kind", "when_changed", "request", "detail"])?;
            for f in &reading.findings {
                let changed = f.changed.map(local).unwrap_or_default();
                let request = f.request.map(|r| r.to_string()).unwrap_or_default();
                w.write_record([f.sam.as_str(), f.kind.key(), &changed, &request, &f.detail])?;
            }
            String::from_utf8(w.into_inner()?)?
        }
        ReportFormat::Table => {
            let mut out = format!(
                "Drift read {} over {} accounts of the managed OUs: {} finding(s) (nothing is changed in the directory)\n",
                local(reading.at),
                reading.accounts,
                reading.findings.len()
            );
            for f in &reading.findings {
                let changed = f.changed.map(|t| format!("  whenChanged {}", local(t))).unwrap_or_default();
                out.push_str(&format!("{:<20} {:<13} {}{changed}\n", f.sam, f.kind.key(), f.detail));
            }
            out
        }
    })
}

/// Writes one request back.
fn save(ctx: &Ctx, r: &Request) -> Result<()> {
    let mut changes = Changes::new();
    changes.put_request(r);
    if let Some(key) = &ctx.marks {
        changes.mark_alert(key, ctx.now);
    }
    ctx.store.commit(changes)?;
    Ok(())
}

fn find(ctx: &Ctx, id: RequestId) -> Result<Request> {
    ctx.store.request(id)?.ok_or_else(|| anyhow::anyhow!("no request {id}"))
}

/// `cuentas release`: held disables go on at the next cycle.
fn release(ctx: &Ctx, ids: &[RequestId], all: bool) -> Result<String> {
    let mut held: Vec<Request> = Vec::new();
    for r in ctx.store.open_requests()? {
        let r = r?;
        if r.state.name() == StateName::Held {
            held.push(r);
        }
    }
    if !all && ids.is_empty() {
        bail!("name the requests to release (see «cuentas requests --state Held»), or use --all");
    }
    for id in ids {
        if !held.iter().any(|r| r.id == *id) {
            bail!("{id} is not held");
        }
    }
    let mut out = String::new();
    for mut r in held.into_iter().filter(|r| all || ids.contains(&r.id)) {
        let State::Held { plan, .. } = r.state.clone() else { continue };
        let state = State::Executing { plan, attempts: 0, retry_at: None, released: true };
        r.transition(state, ctx.actor.clone(), "liberada por un administrador", ctx.now)?;
        save(ctx, &r)?;
        out.push_str(&format!("{} released\n", r.id));
    }
    Ok(out)
}

/// `cuentas done`: a request handled by hand is reported to its requester.
fn done(ctx: &Ctx, id: RequestId, note: &str) -> Result<String> {
    let mut r = find(ctx, id)?;
    if r.state.name() != StateName::Manual {
        bail!("{id} is {}, not Manual: only requests handled by hand are marked done", r.state.name());
    }
    r.transition(State::Notifying, ctx.actor.clone(), note, ctx.now)?;
    let to = vec![r.submission.requester.clone()];
    r.queue_message(MessageKind::Outcome, to, note.to_string(), ctx.now);
    if let Some(register) = &ctx.config.mailboxes.register {
        r.copy_to_register(&register.to_string());
    }
    save(ctx, &r)?;
    Ok(format!("{id} done; the requester is told at the next cycle, then it closes\n"))
}

/// `cuentas confirm`: one step of a deletion's checklist done; the deletion follows the last.
fn confirm(ctx: &Ctx, id: RequestId, step: &str, by: &str, note: Option<&str>) -> Result<String> {
    let mut r = find(ctx, id)?;
    let State::AwaitingConfirmation { pending, since } = r.state.clone() else {
        bail!("{id} is {}, not AwaitingConfirmation: only deletions wait for confirmations", r.state.name())
    };
    let step = step.trim().to_lowercase();
    let Some(what) = checklist_step(&step) else {
        let keys: Vec<&str> = DELETION_CHECKLIST.iter().map(|(k, _)| *k).collect();
        bail!("«{step}» is not a step of the checklist; one of: {}", keys.join(", "))
    };
    if !pending.contains(&step) {
        bail!("{id}: «{step}» ({what}) was confirmed already");
    }
    if by.trim().is_empty() {
        bail!("--by names who made and checked the step");
    }
    let pending: Vec<String> = pending.into_iter().filter(|p| *p != step).collect();
    let mut reason = format!("confirmado «{step}» ({what}) por {}", by.trim());
    if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
        reason.push_str(&format!(": {}", note.trim()));
    }
    let left = pending.clone();
    r.transition(State::AwaitingConfirmation { pending, since }, ctx.actor.clone(), reason, ctx.now)?;
    save(ctx, &r)?;
    if !left.is_empty() {
        return Ok(format!("{id}: «{step}» confirmed; still to confirm: {}\n", left.join(", ")));
    }
    let days = i64::from(ctx.config.directory.min_days_disabled_before_delete);
    let after = since + jiff::SignedDuration::from_hours(24 * days);
    let after = after.to_zoned(ctx.config.calendar.time_zone().clone()).strftime("%Y-%m-%d %H:%M");
    Ok(format!("{id}: every step confirmed; the account is deleted at the first cycle from {after}\n"))
}

/// `cuentas cancel`: an open request is closed without an answer. What its steps already did
/// to the directory stays: said, so that nobody believes the account was put back.
fn cancel(ctx: &Ctx, id: RequestId, reason: &str) -> Result<String> {
    let mut r = find(ctx, id)?;
    // A leave waiting for its return, a deletion waiting for its backups: the account is
    // disabled by this request's first step.
    let left_disabled = r.phase != Phase::Start
        && matches!(r.state.name(), StateName::Scheduled | StateName::AwaitingConfirmation);
    r.transition(State::Cancelled { reason: reason.to_string() }, ctx.actor.clone(), reason, ctx.now)?;
    save(ctx, &r)?;
    let mut out = format!("{id} cancelled\n");
    if left_disabled {
        let account = r.account.as_deref().unwrap_or(&r.submission.account);
        out.push_str(&format!(
            "note: cancelling re-enables nothing: the account {account} stays disabled where this request left it; \
             to use it again, ask for a «Reactivación de cuenta» or enable it in the directory\n"
        ));
    }
    Ok(out)
}

/// `cuentas retry`: a failed request runs its directory step again; one handled by hand is
/// decided again (after the service desk changed the directory as it was asked).
fn retry(ctx: &Ctx, id: RequestId) -> Result<String> {
    let mut r = find(ctx, id)?;
    // A request waiting for a person to change the directory first is decided again, whole,
    // against what the directory holds now.
    if r.state.name() == StateName::Manual {
        let reason = "decidida de nuevo por un administrador, tras el cambio hecho en el directorio";
        r.transition(State::Received, ctx.actor.clone(), reason, ctx.now)?;
        save(ctx, &r)?;
        return Ok(format!("{id} will be decided again at the next cycle\n"));
    }
    let State::Failed { plan, .. } = r.state.clone() else {
        bail!("{id} is {}, not Failed or Manual", r.state.name())
    };
    let Some(plan) = plan else { bail!("{id} failed before it had a directory plan; nothing to retry") };
    // A retry is not a release: the hourly limit of disables still holds.
    let state = State::Executing { plan, attempts: 0, retry_at: None, released: false };
    r.transition(state, ctx.actor.clone(), "reintentada por un administrador", ctx.now)?;
    save(ctx, &r)?;
    Ok(format!("{id} will be tried again at the next cycle\n"))
}

/// `cuentas replay`: a shadow request is taken again by the live daemon at its next cycle.
fn replay(ctx: &Ctx, id: RequestId) -> Result<String> {
    if ctx.config.directory.mode == crate::config::DirectoryMode::Shadow {
        bail!("[directory] mode is \"shadow\": a request is taken again only live (mode = \"ldap\")");
    }
    let r = find(ctx, id)?;
    if !r.shadow {
        bail!(
            "{id} was not decided in the shadow week: there is nothing to take again (see «cuentas retry»)"
        );
    }
    if let Some(again) = r.replayed_as {
        bail!("{id} was taken again already, as {again}");
    }
    if r.purged.is_some() {
        bail!("{id}'s personal data were removed (retention_days): ask for it again through the form");
    }
    let mut changes = Changes::new();
    changes.ask_replay(id, &ctx.actor);
    ctx.store.commit(changes)?;
    Ok(format!("{id} will be taken again, live, as a new request at the next cycle\n"))
}

/// The service level in a `requests` line: `ANS 35%`, `ANS 35% ⏸` while its clock is stopped,
/// `ANS 120% !` once broken.
fn sla_column(r: &Request, config: &Config, now: Timestamp) -> String {
    let m = crate::sla::measure(r, &config.calendar, config.sla.hours_for(r.submission.kind), now);
    let mark = if m.broken() {
        " !"
    } else if m.paused {
        " ⏸"
    } else {
        ""
    };
    format!("ANS {:>3}%{mark}", m.percent())
}

/// `GU-2026-000001  row 2  Creación de cuenta  Closed  Se creó la cuenta …`, with the service
/// level before the reason when given.
pub fn line(r: &Request, sla: Option<String>) -> String {
    let s = &r.submission;
    let kind = s.kind.map_or("(sin tipo)", |k| k.label());
    let reason = match &r.state {
        State::Scheduled { due, .. } => format!("scheduled for {due}"),
        State::AwaitingConfirmation { pending, .. } if pending.is_empty() => {
            "every backup confirmed; deleted once disabled long enough".to_string()
        }
        State::AwaitingConfirmation { pending, .. } => {
            format!("to confirm: {}", pending.join(", "))
        }
        state => state.reason().lines().collect::<Vec<_>>().join(" "),
    };
    let sla = sla.map(|s| format!("{s:<11} ")).unwrap_or_default();
    let purged = if r.purged.is_some() { "[personal data removed] " } else { "" };
    let shadow = if r.shadow { "[shadow] " } else { "" };
    format!(
        "{}  row {:<4} {:<24} {:<12} {sla}{shadow}{purged}{}",
        r.id,
        row_label(r),
        kind,
        r.state.name().as_str(),
        reason
    )
}

/// The form row a request came from; `-` for one cuentas opened itself.
fn row_label(r: &Request) -> String {
    match r.origin {
        Some(_) => "-".into(),
        None => r.row.to_string(),
    }
}

/// `cuentas show`: the request, the other requests of the same person, and its history.
pub fn show(r: &Request, same_person: &[Request], config: &Config, now: Timestamp) -> String {
    let tz = config.calendar.time_zone().clone();
    let local = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M").to_string();
    let s = &r.submission;
    let kind = match s.kind {
        Some(k) => k.label(),
        None if s.kind_answer.is_empty() => "(sin tipo)",
        None => s.kind_answer.as_str(),
    };
    let person = match &r.purged {
        Some(p) => format!(
            "personal data removed on {} (retention_days = {})",
            p.at.to_zoned(tz.clone()).strftime("%Y-%m-%d"),
            p.retention_days
        ),
        None => s.full_name(),
    };
    let mut out = format!(
        "{}  row {}  {}\n  state:     {}\n  requester: {}\n  person:    {}\n  account:   {}\n  received:  {}\n  deadline:  {}\n",
        r.id,
        row_label(r),
        kind,
        r.state.name(),
        s.requester,
        person,
        r.account.as_deref().unwrap_or(s.account.as_str()),
        local(r.received_at),
        local(r.sla_deadline),
    );
    if let Some(expires) = r.contract_end() {
        out.push_str(&format!(
            "  opened:    by cuentas, no form row: the contract ends on {expires} with the account enabled \
             ([directory] disable_at_contract_end)\n"
        ));
    }
    if r.shadow {
        let again = match r.replayed_as {
            Some(again) => format!("; taken again, live, as {again}"),
            None => format!("; live cuentas does not carry it on («cuentas replay {}» takes it again)", r.id),
        };
        out.push_str(&format!("  shadow:    decided in the shadow week, nothing written to AD{again}\n"));
    }
    if let Some(original) = r.replay_of {
        out.push_str(&format!("  replays:   {original}, decided in the shadow week\n"));
    }
    if !same_person.is_empty() {
        let others: Vec<String> = same_person
            .iter()
            .map(|o| {
                let removed = if o.purged.is_some() { ", personal data removed" } else { "" };
                format!("{} ({}{removed})", o.id, o.state.name())
            })
            .collect();
        out.push_str(&format!("  same person: {}\n", others.join(", ")));
    }
    let m = crate::sla::measure(r, &config.calendar, config.sla.hours_for(s.kind), now);
    out.push_str(&format!(
        "  submitted: {} (the service level counts from here)\n",
        local(crate::sla::start(r, &config.calendar))
    ));
    out.push_str(&format!(
        "  sla:       {} of {} business hours consumed ({} %), {} left{}{}{}\n",
        crate::sla::hours(m.consumed),
        config.sla.hours_for(s.kind),
        m.percent(),
        crate::sla::hours(m.remaining),
        if m.paused { ", clock stopped" } else { "" },
        r.sla.warned_at.map(|t| format!(", service desk warned {}", local(t))).unwrap_or_default(),
        r.sla.breached_at.map(|t| format!(", BREACHED {}", local(t))).unwrap_or_default(),
    ));
    if let State::AwaitingConfirmation { pending, since } = &r.state {
        out.push_str(&format!("  disabled:  {} (in the retired OU)\n", local(*since)));
        // Who confirmed each step, and when: the history's own line for it.
        let confirmed: Vec<String> = DELETION_CHECKLIST
            .iter()
            .filter(|(key, _)| !pending.iter().any(|p| p == key))
            .filter_map(|(key, _)| {
                let h =
                    r.history.iter().rev().find(|h| h.reason.starts_with(&format!("confirmado «{key}»")))?;
                Some(format!("    {key:<16} {}  {}\n", local(h.at), h.reason))
            })
            .collect();
        if !confirmed.is_empty() {
            out.push_str("  confirmed:\n");
            confirmed.iter().for_each(|c| out.push_str(c));
        }
        out.push_str("  to confirm before deletion:\n");
        for key in pending {
            let what = checklist_step(key).unwrap_or_default();
            out.push_str(&format!("    {key:<16} {what}   (cuentas confirm {} {key} --by NAME)\n", r.id));
        }
        if pending.is_empty() {
            let days = i64::from(config.directory.min_days_disabled_before_delete);
            out.push_str(&format!(
                "    nothing: every step is confirmed; the account is deleted at the first cycle from {}\n",
                local(*since + jiff::SignedDuration::from_hours(24 * days))
            ));
        }
    }
    if let Some(plan) = r.state.plan() {
        out.push_str("  plan:\n");
        for op in &plan.ops {
            out.push_str(&format!("    {op}\n"));
        }
    }
    out.push_str("  history:\n");
    for h in &r.history {
        let from = match h.from {
            Some(f) if f != h.to => format!("{f} → "),
            _ => String::new(),
        };
        let reason = h.reason.lines().collect::<Vec<_>>().join(" / ");
        out.push_str(&format!("    {}  {:<40} {from}{}  {reason}\n", local(h.at), h.actor.to_string(), h.to));
    }
    out
}
