//! From `Received` to a decided state (procedure activity 2's control point): answered
//! (`Rejected`, `Routed`), back to the requester (`NeedsInfo`), planned (`Scheduled`,
//! `Executing`) or handed to a person (`Manual`). The policy decides on the authorizer matrix;
//! the plan is made against what the directory holds.

use jiff::Timestamp;
use tracing::{info, info_span};

use super::{CycleReport, Engine, EngineError, Move, Unreached, log_directory_error};
use crate::directory::plan::{self, DirectoryOp, Layout, NoPlan, Plan};
use crate::directory::snapshot::{Account, Snapshot};
use crate::notify;
use crate::policy::{AccountFacts, Facts, Refusal, authorize};
use crate::request::{Kind, Phase, Request, State, StateName, Submission};
use crate::store::{Changes, MessageKind};

/// A decision on a `Received` request: the state it goes to, why (for its history), and the
/// message that tells the requester, if one does.
pub(super) struct Triage {
    state: State,
    reason: String,
    tell: Option<MessageKind>,
    /// A notice to the account's holder: its addresses (`mail::holder_addresses`) and what it says.
    notice: Option<(Vec<String>, String)>,
    /// Handed to the service desk: what it does, and whether the request is decided again
    /// afterwards (the directory changed first) rather than marked done.
    by_hand: Option<ByHand>,
}

/// What the service desk is asked to do by hand.
pub(super) struct ByHand {
    pub why: String,
    pub decide_again: bool,
}

impl Triage {
    /// A state whose own reason is what the history and the message say.
    fn to(state: State, tell: MessageKind) -> Triage {
        Triage { reason: state.reason().to_string(), state, tell: Some(tell), notice: None, by_hand: None }
    }

    fn needs_info(reason: String, now: Timestamp) -> Triage {
        Triage::to(State::NeedsInfo { reason, since: now }, MessageKind::NeedsInfo)
    }

    fn rejected(reason: String) -> Triage {
        Triage::to(State::Rejected { reason }, MessageKind::Rejection)
    }

    /// Without effect, nobody told (the history says why): a step cuentas opened itself that
    /// the directory made moot.
    pub(super) fn moot(reason: String) -> Triage {
        Triage::decided(State::Cancelled { reason: reason.clone() }, reason)
    }

    pub(super) fn refused(refusal: Refusal, now: Timestamp) -> Triage {
        match refusal {
            r if r.asks_requester() => Triage::needs_info(r.to_string(), now),
            r => Triage::rejected(r.to_string()),
        }
    }

    /// A plan that cannot be made: asked about, or refused.
    pub(super) fn from_no_plan(no: NoPlan, now: Timestamp) -> Triage {
        match no {
            NoPlan::Refused(reason) => Triage::rejected(reason),
            other => Triage::needs_info(other.reason(), now),
        }
    }

    /// Why, as its history says.
    pub(super) fn reason(&self) -> &str {
        &self.reason
    }

    /// The state it leads to.
    pub(super) fn state_name(&self) -> StateName {
        self.state.name()
    }

    /// Authorized and planned (or handed to a person): no answer yet but the acknowledgement.
    fn decided(state: State, reason: String) -> Triage {
        Triage { state, reason, tell: None, notice: None, by_hand: None }
    }

    /// Authorized, and handed to the service desk: `why` says what it does.
    fn by_hand(grant: &impl std::fmt::Display, why: String, decide_again: bool) -> Triage {
        let reason = format!("autorizada ({grant}); gestión manual de la mesa de servicio: {why}");
        let mut manual = Triage::decided(State::Manual { reason: reason.clone() }, reason);
        manual.by_hand = Some(ByHand { why, decide_again });
        manual
    }
}

impl Engine {
    /// Triages a request and records the outcome in `changes`; a request the directory or
    /// the matrix cannot decide yet is staged as it is, `Received`, and tried again later.
    pub(super) fn triage_and_record(
        &mut self,
        request: &mut Request,
        changes: &mut Changes,
        report: &mut CycleReport,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        match self.triage(request, now)? {
            Some(triage) => self.settle(changes, report, request, triage, now),
            None => {
                // Waiting on the directory or the matrix: registered all the same, and said so.
                if !acknowledged(request) {
                    self.queue(request, MessageKind::Acknowledgement, String::new(), now);
                }
                self.stage(changes, report, request);
                Ok(())
            }
        }
    }

    /// The decision on a `Received` request; `None` while the directory does not answer or
    /// the matrix's spreadsheet has not been read.
    pub(super) fn triage(
        &mut self,
        request: &Request,
        now: Timestamp,
    ) -> Result<Option<Triage>, EngineError> {
        let s = &request.submission;
        let _span = info_span!("request", request_id = %request.id, row = request.row, kind = s.kind.map_or("?", Kind::key)).entered();
        Ok(Some(match s.kind {
            Some(Kind::OutOfScope) => Triage::to(
                State::Routed {
                    reason: format!(
                        "«{}» no es una solicitud de gestión de usuarios; regístrela mediante {}",
                        s.kind_answer, self.config.mail.service_request_procedure
                    ),
                },
                MessageKind::Routed,
            ),
            _ if !s.requester.is_empty() && !self.policy.requester_in_domain(&s.requester) => {
                Triage::rejected(format!(
                    "La dirección {} no pertenece a la entidad ({}); las solicitudes se hacen con el correo institucional",
                    s.requester,
                    self.config.form.requester_domains.join(", ")
                ))
            }
            _ if !s.unmapped.is_empty() => {
                self.alert_unmapped(&s.unmapped, now)?;
                return Ok(None);
            }
            _ if !s.problems.is_empty() => {
                let reason = s.problems.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n");
                Triage::needs_info(reason, now)
            }
            Some(kind) => return self.authorize_and_plan(request, kind, now),
            None => Triage::needs_info("Falta el tipo de solicitud".into(), now),
        }))
    }

    /// An option of the entity's form that no setting maps: the administrators are told once
    /// per option (and reminded while requests wait on it) which setting to add.
    fn alert_unmapped(&self, unmapped: &[(String, String)], now: Timestamp) -> Result<(), EngineError> {
        let mut changes = Changes::new();
        for (setting, answer) in unmapped {
            let key = format!("option/{}", crate::source::row_hash(&[setting.clone(), answer.clone()]));
            let example = if setting == "form.kinds" { "create" } else { "employee" };
            let body = format!(
                "El formulario tiene la opción «{answer}», que cuentas no reconoce. Las solicitudes que la eligen \
                 esperan registradas (se les acusó recibo) hasta que se indique qué es, en la configuración:\n\n\
                 [{setting}]\n\"{answer}\" = \"{example}\"\n\n\
                 ({}). Luego reinicie el servicio: esas solicitudes se leen de nuevo y se deciden.",
                if setting == "form.kinds" {
                    "create, password_reset, modify, disable, enable, delete, leave, transfer, assignment, suspension, \
                     early_termination, o routed si es otra solicitud de TI"
                } else {
                    "employee, contractor o institutional"
                }
            );
            self.alert_on(
                &mut changes,
                &key,
                &format!("Opción del formulario sin configurar: «{answer}»"),
                &body,
                now,
            )?;
        }
        self.store.commit(changes)?;
        Ok(())
    }

    /// Records a decision: the new state, the acknowledgement of work taken on, the answer,
    /// and the account the plan names (claimed, if the plan creates it).
    pub(super) fn settle(
        &mut self,
        changes: &mut Changes,
        report: &mut CycleReport,
        request: &mut Request,
        triage: Triage,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let Triage { state, reason, tell, notice, by_hand } = triage;
        let name = state.name();
        let kind = request.submission.kind.map_or("?", Kind::key);
        let _span = info_span!("request", request_id = %request.id, row = request.row, kind).entered();
        match name {
            // The reason quotes answers: the log says only where the request went.
            StateName::Rejected | StateName::Routed | StateName::NeedsInfo => {
                info!(state = %name, "answered")
            }
            _ => info!(state = %name, "registered"),
        }
        if let Some(plan) = state.plan() {
            request.account = Some(plan.account.clone());
            if plan.ops.iter().any(|op| matches!(op, DirectoryOp::Create { .. })) {
                request.reserved_account = Some(plan.account.clone());
            }
        }
        let mut step = Move::daemon(state, reason.clone());
        if matches!(name, StateName::Scheduled | StateName::Executing | StateName::Manual)
            && !acknowledged(request)
        {
            step = step.telling(MessageKind::Acknowledgement, String::new());
        }
        if let Some(by_hand) = by_hand {
            step = step.telling(MessageKind::ManualHandling, self.by_hand_mail(request.id, &by_hand));
        } else if let Some(kind) = tell {
            step = step.telling(kind, reason);
        }
        if let Some((addresses, detail)) = notice {
            for to in addresses {
                step = step.telling_to(MessageKind::HolderNotice, to, detail.clone());
            }
        }
        self.record(changes, report, request, step, now)
    }

    /// The matrix's decision on an authorized kind, then the plan against the directory.
    fn authorize_and_plan(
        &mut self,
        request: &Request,
        kind: Kind,
        now: Timestamp,
    ) -> Result<Option<Triage>, EngineError> {
        let today = self.today(now);
        let Some(snapshot) = self.snapshot(request) else { return Ok(None) };
        let Some(matrix) = &self.matrix else {
            // The matrix's spreadsheet has not answered yet: the request waits for it.
            return Ok(None);
        };
        let facts = facts(&self.layout, &snapshot, &request.submission);
        let grant = match authorize(&self.policy, matrix, &request.submission, kind, &facts, today) {
            Ok(grant) => grant,
            Err(refusal) => return Ok(Some(Triage::refused(refusal, now))),
        };
        // Its account was made but the access data bounced, and the requester fixed the address
        // (authorized again above: a new response may come from someone else): straight to the
        // credential step, a new password to the corrected address, never a second plan.
        if let Some(account) = request.credentials_for.clone() {
            return Ok(Some(credential_step(account, &grant)));
        }
        // Names other open requests took, this batch's included: `stage` keeps the set in step.
        let taken = |name: &str| self.open.name_taken(name);
        let taken_dn = |dn: &str| self.open.dn_taken(dn);
        let mut plan = match plan::plan(request, &snapshot, &self.layout, today, taken, taken_dn) {
            Ok(plan) => plan,
            Err(NoPlan::NeedsInfo(reason)) => return Ok(Some(Triage::needs_info(reason, now))),
            Err(NoPlan::Refused(reason)) => return Ok(Some(Triage::rejected(reason))),
            Err(NoPlan::ByHand(why)) => return Ok(Some(Triage::by_hand(&grant, why, false))),
            Err(NoPlan::DirectoryFirst(what)) => return Ok(Some(Triage::by_hand(&grant, what, true))),
        };
        if kind == Kind::PasswordReset {
            match self.address_on_record(request, &snapshot, &plan.account)? {
                Ok(address) => plan.credentials_to = Some(address),
                Err(why) => return Ok(Some(reset_by_hand(&grant, &why, plan))),
            }
        }
        Ok(Some(self.planned(request, plan, &grant, now)))
    }

    /// What the directory holds for a request, or `None` when it cannot be read now (the
    /// request waits in its state).
    fn snapshot(&mut self, request: &Request) -> Option<std::sync::Arc<Snapshot>> {
        match self.reach(|d, layout| d.snapshot_for(request, layout)) {
            Ok(snapshot) => Some(snapshot),
            Err(Unreached::Down) => None,
            Err(Unreached::Error(e)) => {
                log_directory_error(&e, "cannot read the directory; the request waits");
                None
            }
        }
    }

    /// Where a reset's temporary password may go: the personal address on record for the
    /// account (the configured AD attribute, else the one cuentas recorded at its creation),
    /// and only if the form names that one or none. `Err` says why it goes to a person instead.
    fn address_on_record(
        &self,
        request: &Request,
        snapshot: &Snapshot,
        account: &str,
    ) -> Result<Result<String, String>, EngineError> {
        let in_directory =
            snapshot.by_sam(account).map(|a| a.personal_email.clone()).filter(|a| !a.is_empty());
        let on_record = match in_directory {
            Some(address) => Some(address),
            None => self.store.personal_address(account)?,
        };
        let asked = request.submission.personal_email.trim().to_lowercase();
        Ok(match on_record {
            None => Err(format!("la cuenta «{account}» no tiene un correo personal registrado")),
            Some(address) if !asked.is_empty() && !address.eq_ignore_ascii_case(&asked) => Err(format!(
                "el correo personal del formulario no es el registrado para la cuenta «{account}»"
            )),
            Some(address) => Ok(address),
        })
    }

    /// An authorized plan: carried out now, or at the start of the day it is due on.
    fn planned(&self, request: &Request, plan: Plan, grant: &str, now: Timestamp) -> Triage {
        let ops = plan.ops.len();
        match self.due(request).filter(|due| *due > now) {
            Some(due) => {
                let tz = self.config.calendar.time_zone();
                let note = format!(
                    "autorizada ({grant}); {ops} operación(es) programada(s) para {}",
                    notify::spanish_datetime(due, tz)
                );
                Triage::decided(State::Scheduled { due, plan }, note)
            }
            None => {
                let note = format!("autorizada ({grant}); {ops} operación(es) en el directorio");
                Triage::decided(State::Executing { plan, attempts: 0, retry_at: None, released: false }, note)
            }
        }
    }

    /// When the request's next directory step is due (DESIGN §8: the configured start of the
    /// day on its date), for the steps that have a date.
    pub(super) fn due(&self, request: &Request) -> Option<Timestamp> {
        let s = &request.submission;
        let calendar = &self.config.calendar;
        let date = match (request.phase, s.kind?) {
            (Phase::Return, _) => s.return_date?,
            (Phase::Removal, _) => return None,
            // The contract's last day is the effective date: the account is usable through it,
            // and disabled when it ends, as it expires (midnight).
            (Phase::Start, Kind::EarlyTermination) => {
                let next = s.effective_date?.tomorrow().ok()?;
                return next.to_zoned(calendar.time_zone().clone()).ok().map(|z| z.timestamp());
            }
            (
                Phase::Start,
                Kind::Disable
                | Kind::Enable
                | Kind::Modify
                | Kind::Transfer
                | Kind::Leave
                | Kind::Suspension
                | Kind::Delete,
            ) => s.effective_date?,
            (Phase::Start, Kind::Assignment) => s.effective_date.or(s.contract_start)?,
            (Phase::Start, _) => return None,
        };
        date.to_datetime(calendar.day_start())
            .to_zoned(calendar.time_zone().clone())
            .ok()
            .map(|z| z.timestamp())
    }
}

/// What the directory says of the accounts a request is about, for [`authorize`]: the
/// account it names, and the one a returning person had.
pub(super) fn facts(layout: &Layout, snapshot: &Snapshot, s: &Submission) -> Facts {
    let of = |a: &Account| AccountFacts {
        sam: a.sam.clone(),
        holder: layout.holder_of(a),
        department: a.department.clone(),
        mail: a.mail.clone(),
        manager_mail: a.manager_mail.clone(),
    };
    let returning = if s.id_number.is_empty() { None } else { snapshot.by_employee_id(&s.id_number).next() };
    Facts { named: snapshot.by_sam(&s.account).map(of), returning: returning.map(of) }
}

/// Whether the requester was already told the request is registered.
fn acknowledged(request: &Request) -> bool {
    request.outbox.iter().any(|m| m.kind == MessageKind::Acknowledgement)
}

/// An account made for an earlier response whose access data bounced, the address now fixed:
/// straight to the credential step, a new password to the corrected address.
fn credential_step(account: String, grant: &impl std::fmt::Display) -> Triage {
    let plan = Plan {
        ops: vec![DirectoryOp::ResetPassword { sam: account.clone() }],
        sends_credentials: true,
        account,
        ..Plan::default()
    };
    let note = format!(
        "autorizada ({grant}); la cuenta ya existe: se envían sus datos de acceso (contraseña nueva)"
    );
    let executing = State::Executing { plan, attempts: 0, retry_at: None, released: false };
    Triage::decided(executing, note)
}

/// A reset whose temporary password may not go by mail (`why`): the service desk does it by
/// hand, and the holder hears of it at once (a reset they did not ask for is a warning).
fn reset_by_hand(grant: &impl std::fmt::Display, why: &str, plan: Plan) -> Triage {
    let why = format!(
        "la contraseña temporal no se envía por correo ({why}): la mesa de servicio verifica la identidad \
         de la persona y le asigna la contraseña"
    );
    let mut manual = Triage::by_hand(grant, why, false);
    let addresses = super::mail::holder_addresses(&plan);
    manual.notice = (!addresses.is_empty()).then(|| {
        let detail = format!(
            "Se pidió asignar una contraseña temporal a su cuenta {}. No se envió a ningún correo: \
             la mesa de servicio verificará su identidad antes de asignarla.",
            plan.account
        );
        (addresses, detail)
    });
    manual
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::policy::{Denial, Matrix, Miss, NearMiss, Policy, Role};
    use crate::request::HolderType;
    use jiff::civil::Date;

    const TODAY: Date = Date::constant(2026, 11, 30);

    /// The demo's rules, matrix and directory, and one account more that nothing says the
    /// holder type of.
    fn demo() -> (Policy, Layout, Matrix, Snapshot) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
        let config = crate::config::Config::load(&dir.join("cuentas.toml")).unwrap();
        let policy =
            Policy { rules: config.rules.clone(), requester_domains: config.form.requester_domains.clone() };
        let matrix = Matrix::load(&dir.join("autorizadores.csv")).unwrap();
        let mut accounts: Vec<Account> =
            Snapshot::load(&dir.join("directorio.json")).unwrap().accounts().cloned().collect();
        accounts.push(Account {
            sam: "sin.tipo".into(),
            dn: "CN=Sin Tipo,OU=Otros,OU=Usuarios,DC=upme,DC=gov,DC=co".into(),
            enabled: true,
            ..Account::default()
        });
        (policy, Layout::from_config(&config), matrix, Snapshot::new(accounts))
    }

    fn request(requester: &str, kind: Kind, f: impl FnOnce(&mut Submission)) -> Request {
        let mut s = Submission { requester: requester.into(), kind: Some(kind), ..Submission::default() };
        f(&mut s);
        let at = Timestamp::UNIX_EPOCH;
        Request::new(crate::request::RequestId { year: 2026, seq: 1 }, 2, String::new(), s, at, at)
    }

    fn about(account: &str) -> impl FnOnce(&mut Submission) + '_ {
        move |s: &mut Submission| s.account = account.into()
    }

    #[test]
    fn authorization_is_decided_on_the_directory_s_facts_and_says_which_refusal() {
        let (policy, layout, matrix, snapshot) = demo();
        let th = "talentohumano@upme.gov.co";
        let run = |r: Request| {
            let kind = r.submission.kind.unwrap();
            authorize(&policy, &matrix, &r.submission, kind, &facts(&layout, &snapshot, &r.submission), TODAY)
        };
        // Allowed: Talento Humano for an employee, the contract's supervisor for a contractor.
        assert!(run(request(th, Kind::Disable, about("juan.perez"))).is_ok());
        assert!(run(request("andres.mejia@upme.gov.co", Kind::Disable, about("sofia.herrera"))).is_ok());
        let cases: Vec<(Request, Refusal)> = vec![
            (
                request("alguien@gmail.com", Kind::Disable, about("juan.perez")),
                Refusal::Denied(Denial::OutsideDomains {
                    requester: "alguien@gmail.com".into(),
                    domains: vec!["upme.gov.co".into()],
                }),
            ),
            (
                request(th, Kind::Disable, about("nadie.existe")),
                Refusal::NoSuchAccount { account: "nadie.existe".into() },
            ),
            (
                request(th, Kind::Disable, about("sin.tipo")),
                Refusal::UnknownHolder { account: "sin.tipo".into() },
            ),
            (
                request(th, Kind::Disable, |s| {
                    s.account = "juan.perez".into();
                    s.holder_type = Some(HolderType::Contractor);
                }),
                Refusal::HolderMismatch {
                    account: "juan.perez".into(),
                    directory: HolderType::Employee,
                    form: HolderType::Contractor,
                },
            ),
            (
                request(th, Kind::Disable, |s| {
                    s.account = "juan.perez".into();
                    s.department = "Secretaría General".into();
                }),
                Refusal::DepartmentMismatch {
                    account: "juan.perez".into(),
                    directory: "Subdirección de Hidrocarburos".into(),
                    form: "Secretaría General".into(),
                },
            ),
            (
                request(th, Kind::Leave, about("sofia.herrera")),
                Refusal::Denied(Denial::NotApplicable {
                    kind: Kind::Leave,
                    holder: HolderType::Contractor,
                    applies: vec![HolderType::Employee],
                }),
            ),
            (
                request("carolina.rojas@upme.gov.co", Kind::Disable, about("carolina.rojas")),
                Refusal::Denied(Denial::OwnAccount {
                    requester: "carolina.rojas@upme.gov.co".into(),
                    kind: Kind::Disable,
                }),
            ),
            (
                request("pedro.gaitan@upme.gov.co", Kind::Disable, about("oscar.diaz")),
                Refusal::Denied(Denial::NearMisses {
                    department: "Subdirección de Hidrocarburos".into(),
                    misses: vec![NearMiss {
                        role: Role::Supervisor,
                        departments: "Subdirección de Hidrocarburos".into(),
                        miss: Miss::Expired(Date::constant(2025, 12, 31)),
                    }],
                }),
            ),
            // Energía's supervisor about an account of Hidrocarburos: answered as an account
            // that does not exist, its dependency untold (it did say «Subdirección de
            // Hidrocarburos»: anyone could learn where any account is).
            (
                request("andres.mejia@upme.gov.co", Kind::Disable, about("oscar.diaz")),
                Refusal::NoSuchAccount { account: "oscar.diaz".into() },
            ),
            // Whatever the form claims: the same answer as for an account that does not exist.
            (
                request("andres.mejia@upme.gov.co", Kind::Disable, |s| {
                    s.account = "oscar.diaz".into();
                    s.holder_type = Some(HolderType::Contractor);
                    s.department = "Subdirección de Energía Eléctrica".into();
                }),
                Refusal::NoSuchAccount { account: "oscar.diaz".into() },
            ),
        ];
        for (r, expected) in cases {
            let got = run(r.clone());
            assert_eq!(
                got.as_ref().err(),
                Some(&expected),
                "{:?} by {}",
                r.submission.kind,
                r.submission.requester
            );
        }
        // Somebody in the entity, in no row of the matrix: for a creation, who may ask instead;
        // about an existing account, nothing of it.
        let create = run(request("juan.perez@upme.gov.co", Kind::Create, |s| {
            s.holder_type = Some(HolderType::Employee);
            s.department = "Secretaría General".into();
        }));
        assert!(
            matches!(&create, Err(Refusal::Denied(Denial::NotGranted { roles, .. })) if roles.is_empty()),
            "{create:?}"
        );
        let nobody = run(request("juan.perez@upme.gov.co", Kind::Disable, about("carolina.rojas")));
        assert_eq!(nobody, Err(Refusal::NoSuchAccount { account: "carolina.rojas".into() }));
        // Asked about, or refused.
        assert!(Refusal::NoSuchAccount { account: "x".into() }.asks_requester());
        assert!(!Refusal::UnknownHolder { account: "x".into() }.asks_requester());
        assert!(!Refusal::Denied(Denial::OutOfScope { kind: Kind::OutOfScope }).asks_requester());
    }

    #[test]
    fn each_refusal_reads_in_spanish_once() {
        let said = |r: Refusal| r.to_string();
        let account = || "juan.perez".to_string();
        assert!(
            said(Refusal::NoSuchAccount { account: account() })
                .starts_with("El usuario de red «juan.perez» no existe")
        );
        assert!(
            said(Refusal::UnknownHolder { account: account() }).contains("la mesa de servicio la revisa")
        );
        let holder = Refusal::HolderMismatch {
            account: account(),
            directory: HolderType::Employee,
            form: HolderType::Contractor,
        };
        assert!(said(holder).contains("es de tipo «Funcionario», no «Contratista»"));
        let department =
            Refusal::DepartmentMismatch { account: account(), directory: "A".into(), form: "B".into() };
        assert!(said(department).contains("es de la dependencia «A», no «B»"));
        let denied =
            Refusal::Denied(Denial::OwnAccount { requester: "x@upme.gov.co".into(), kind: Kind::Disable });
        assert!(said(denied).starts_with("La cuenta de la solicitud es la suya (x@upme.gov.co)"));
    }
}
