//! Scale benchmark: `cargo bench --bench scale`, or with options after `--`:
//! `cargo bench --bench scale -- --requests N --idle-secs S`. Options: `--requests N` (default
//! 100,000), `--idle-secs S` (default 60), `--import-requests M` (the first import of the first
//! M rows only; default N), `--in DIR` (where its temporary folder goes; default `/dev/shm`,
//! see below), `--keep` (leave that folder for inspection), `--measure DIR` (no year built: the
//! measurements only, with the binary built now, on the folder DIR an earlier run kept).
//!
//! Costs that must stay flat over years (DESIGN §12, "Flat over years"). It builds a store of
//! N requests as a year of work leaves it: form rows modelled on the demo, submitted over the
//! 365 days before a fixed `NOW` (the machine's date plays no part), fed to the engine one day
//! at a time with a cycle each morning, so that requests are decided, carried out, answered
//! and closed when they would have been. What is still open at `NOW` is what a year leaves
//! open: contractors whose contract has not started, disables and leaves on future dates,
//! deletions waiting for their backups to be confirmed, requests waiting for the requester's
//! fix (about 6 % of N). The directory is the demo's dry run, mail the demo's file spool.
//!
//! Then it measures, each figure with PASS/FAIL against its target:
//! - the idle daemon: the release binary `cuentas run` on that store at a 10 s poll, for
//!   `--idle-secs` after its start-up work: resident memory (`VmRSS`, `VmHWM`) and CPU share
//!   (utime + stime over wall time). Targets ≤ 48 MiB, ≤ 1 % of a core.
//! - `cuentas report` over the year, and `cuentas requests --state NeedsInfo`, each a process
//!   of the release binary on the store (the daemon stopped): peak RSS and wall time.
//!   Targets for the report ≤ 64 MiB, ≤ 2 s.
//! - the first import: the same N rows ingested from scratch into an empty store, in a process
//!   of its own (this benchmark run again): rows/s and peak RSS of `Engine::ingest` (targets
//!   ≥ 20,000 rows/s, ≤ 96 MiB), and the peak of that whole first cycle, which carries out
//!   and answers all of them (target: under the unit's `MemoryMax`, 256 MiB).
//! - the store's bytes on disk per request, as the year left it and after a compaction
//!   (target ≤ 2 KiB per closed request).
//!
//! The folder is in memory (`/dev/shm`) unless `--in` says otherwise: building the year makes
//! hundreds of thousands of steps durable, and on a disk their fsyncs would set its pace. The
//! figures are memory and CPU, which tmpfs does not change; wall times are those of a disk
//! whose syncs cost nothing. It prints, in order: a line at the start of each month of the
//! year (rows in, requests open, seconds so far: how a cycle's cost follows the store), the
//! year's rows by kind and requests by state, then each measurement with its verdict, then the
//! whole run's time. A cycle that fails while the year is built is said, and the engine is
//! started again, as systemd starts the daemon again (`Restart=on-failure`).
//!
//! Peaks of the binary's processes are read from `/proc/PID/status` every few milliseconds
//! (`VmHWM` only grows, so the last reading before exit is the peak but for its last moments).
//! The verdicts are informational: the exit code is 0 unless something fails to run.
//!
//! The dry-run directory is built without keeping its simulated directory beside the store
//! after every plan (what `cuentas run` does): that file is rewritten whole at each plan,
//! which at tens of thousands of accounts would make the benchmark quadratic in N; the
//! simulated directory is written once, at the end, for the daemon to take up.

mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::verdict;
use cuentas::config::Config;
use cuentas::directory::Directory;
use cuentas::directory::dryrun::DryRun;
use cuentas::directory::snapshot::Snapshot;
use cuentas::engine::{Adapters, CycleReport, Engine};
use cuentas::notify::Mailer;
use cuentas::request::{Kind, StateName};
use cuentas::source::Source;
use cuentas::store::Store;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};

const DEFAULT_REQUESTS: usize = 100_000;
const DEFAULT_IDLE_SECS: usize = 60;
/// The end of the simulated year: a Monday morning, in the demo's time zone.
const NOW: &str = "2026-11-30T10:00:00-05:00[America/Bogota]";
const TIME_ZONE: &str = "America/Bogota";
/// The daemon's poll in the idle measurement (DESIGN §12).
const POLL_SECS: u64 = 10;
/// How long the daemon's CPU time must stand still for its start-up to be over.
const QUIET: Duration = Duration::from_secs(3);
/// The hour of the daily cycle while the year is built.
const CYCLE_HOUR: i8 = 10;

const TARGET_IDLE_MIB: f64 = 48.0;
const TARGET_IDLE_CPU: f64 = 1.0;
const TARGET_REPORT_MIB: f64 = 64.0;
const TARGET_REPORT_SECS: f64 = 2.0;
const TARGET_ROWS_PER_SEC: f64 = 20_000.0;
const TARGET_IMPORT_MIB: f64 = 96.0;
/// `MemoryMax=256M` in `systemd/cuentas.service`.
const TARGET_CYCLE_MIB: f64 = 256.0;
const TARGET_BYTES_PER_REQUEST: f64 = 2048.0;

const GIVEN: [&str; 24] = [
    "Juan",
    "María",
    "José",
    "Ana",
    "Luis",
    "Laura",
    "Carlos",
    "Sofía",
    "Andrés",
    "Valentina",
    "Camilo",
    "Daniela",
    "Julián",
    "Paula",
    "Santiago",
    "Natalia",
    "Nicolás",
    "Ángela",
    "Óscar",
    "Lucía",
    "Hernán",
    "Marta",
    "Felipe",
    "Catalina",
];

const SURNAMES: [&str; 24] = [
    "Pérez",
    "Gómez",
    "De La Hoz",
    "Martínez",
    "Rodríguez",
    "Hernández",
    "López",
    "García",
    "Díaz",
    "Ramírez",
    "Castro",
    "Vargas",
    "Peñaloza",
    "Quiñones",
    "Núñez",
    "Muñoz",
    "Ibáñez",
    "Téllez",
    "Cárdenas",
    "Ocampo",
    "Pinzón",
    "Acevedo",
    "Beltrán",
    "Ospina",
];

const DEPARTMENTS: [&str; 5] = [
    "Subdirección de Energía Eléctrica",
    "Subdirección de Hidrocarburos",
    "Oficina Asesora de Planeación",
    "Secretaría General",
    "GIT de Talento Humano",
];

const TITLES: [&str; 4] =
    ["Profesional Especializado", "Técnico Administrativo", "Asesora", "Auxiliar Administrativo"];

const MAIL_HOSTS: [&str; 3] = ["gmail.com", "outlook.com", "hotmail.com"];

/// Human Resources, an authorizer for every dependency all year (the demo's matrix).
const HR: &str = "talentohumano@upme.gov.co";
/// A coordinator who may ask for contractors of Hidrocarburos all year.
const COORDINATOR: &str = "luisa.fernandez@upme.gov.co";

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        // The modulus is at most `n`, which came from a `usize`, so this fits.
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }

    /// Whole days in `from..to`.
    fn days(&mut self, from: i64, to: i64) -> i64 {
        from + i64::try_from(self.below(usize::try_from(to - from).unwrap_or(1))).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or("")
    }
}

/// The demo's column order: header text → index, so rows are filled by name.
struct Columns {
    header: Vec<String>,
    index: BTreeMap<String, usize>,
}

impl Columns {
    fn from_demo(path: &Path) -> Result<Columns, Box<dyn Error>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_path(path)?;
        let header: Vec<String> = match reader.records().next() {
            Some(record) => record?.iter().map(str::to_string).collect(),
            None => return Err(format!("{} has no header row", path.display()).into()),
        };
        let index = header.iter().enumerate().map(|(i, h)| (h.clone(), i)).collect();
        Ok(Columns { header, index })
    }

    fn row(&self, cells: &[(&str, String)]) -> Result<Vec<String>, Box<dyn Error>> {
        let mut row = vec![String::new(); self.header.len()];
        for (name, value) in cells {
            let i = self.index.get(*name).ok_or_else(|| format!("the demo header has no column «{name}»"))?;
            if let Some(cell) = row.get_mut(*i) {
                cell.clone_from(value);
            }
        }
        Ok(row)
    }
}

/// Lower-case ASCII for a personal e-mail local part.
fn ascii_word(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'á' | 'Á' => Some('a'),
            'é' | 'É' => Some('e'),
            'í' | 'Í' => Some('i'),
            'ó' | 'Ó' => Some('o'),
            'ú' | 'Ú' | 'ü' => Some('u'),
            'ñ' | 'Ñ' => Some('n'),
            ' ' => None,
            c => Some(c.to_ascii_lowercase()),
        })
        .collect()
}

/// An account the year made, for the later requests about it.
struct Account {
    sam: String,
    personal: String,
    holder: &'static str,
    department: String,
}

/// The year's form rows, made day by day: requests about accounts use the accounts the
/// year has made so far, as they would at an entity.
struct Year {
    rng: Rng,
    columns: Columns,
    out: csv::Writer<BufWriter<File>>,
    /// The next submission and its number.
    at: DateTime,
    i: usize,
    n: usize,
    /// Mean gap between submissions, seconds.
    gap: u64,
    accounts: Vec<Account>,
    mix: BTreeMap<&'static str, usize>,
}

fn dmy(d: Date) -> String {
    d.strftime("%d/%m/%Y").to_string()
}

impl Year {
    fn new(
        path: &Path,
        columns: Columns,
        n: usize,
        first: DateTime,
        span_secs: u64,
    ) -> Result<Year, Box<dyn Error>> {
        let mut out = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
        out.write_record(&columns.header)?;
        out.flush()?;
        Ok(Year {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            columns,
            out,
            at: first,
            i: 0,
            n,
            gap: (span_secs / n.max(1) as u64).max(1),
            accounts: Vec::new(),
            mix: BTreeMap::new(),
        })
    }

    /// Writes the rows submitted before `until`; how many.
    fn write_until(&mut self, until: DateTime) -> Result<usize, Box<dyn Error>> {
        let mut written = 0;
        while self.i < self.n && self.at < until {
            let row = self.row()?;
            self.out.write_record(row)?;
            self.i += 1;
            written += 1;
            let step = 1 + self.rng.next() % (2 * self.gap);
            self.at = self.at.checked_add(SignedDuration::from_secs(i64::try_from(step)?))?;
        }
        self.out.flush()?;
        Ok(written)
    }

    /// An account made earlier in the year (a demo account before there is any).
    fn account(&mut self) -> (String, String, &'static str, String) {
        match self.rng.below(self.accounts.len()) {
            i if i < self.accounts.len() => {
                let a = &self.accounts[i];
                (a.sam.clone(), a.personal.clone(), a.holder, a.department.clone())
            }
            _ => (
                "juan.perez".into(),
                String::new(),
                "Funcionario",
                "Subdirección de Energía Eléctrica".into(),
            ),
        }
    }

    fn row(&mut self) -> Result<Vec<String>, Box<dyn Error>> {
        let i = self.i;
        let day = self.at.date();
        let submitted = self.at.strftime("%d/%m/%Y %H:%M:%S").to_string();
        let g1 = self.rng.pick(&GIVEN);
        let given =
            if self.rng.below(10) < 8 { format!("{g1} {}", self.rng.pick(&GIVEN)) } else { g1.to_string() };
        let s1 = self.rng.pick(&SURNAMES);
        let surnames = format!("{s1} {}", self.rng.pick(&SURNAMES));
        let personal = format!("{}.{}{i}@{}", ascii_word(g1), ascii_word(s1), self.rng.pick(&MAIL_HOSTS));
        let doc = (1_000_000_000 + i).to_string();
        let title = self.rng.pick(&TITLES).to_string();
        let mut cells: Vec<(&str, String)> =
            vec![("Marca temporal", submitted), ("Tipo de documento", "Cédula de ciudadanía".into())];
        let roll = self.rng.below(100);
        let what = match roll {
            // Creations, a few in a hundred: most of a year's requests are about the accounts
            // there are (and the dry run indexes its accounts again at every creation, so
            // tens of thousands of them would make building the year quadratic). Employees
            // are asked for by Human Resources, contractors by their coordinator, who starts
            // them on their contract's first day (a date ahead).
            0..6 | 86..94 => {
                let department = self.rng.pick(&DEPARTMENTS).to_string();
                // A row without surnames waits for the requester's fix, then expires.
                let surnames = if roll >= 86 { String::new() } else { surnames };
                cells.extend([
                    ("Dirección de correo electrónico", HR.into()),
                    ("Tipo de solicitud", "Creación de cuenta".into()),
                    ("Tipo de vinculación", "Funcionario".into()),
                    ("Nombres", given),
                    ("Apellidos", surnames),
                    ("Número de documento", doc),
                    ("Correo electrónico personal", personal),
                    ("Dependencia", department),
                    ("Cargo", title),
                ]);
                if roll >= 86 { "bad: missing surname (NeedsInfo)" } else { "create employee" }
            }
            6..9 | 94..100 => {
                let start = day.checked_add(self.rng.days(0, 14).days())?;
                let end = start.checked_add(self.rng.days(120, 365).days())?;
                // Someone who is not an authorizer asks too, and is turned down.
                let requester = if roll >= 94 { "camila.torres@upme.gov.co" } else { COORDINATOR };
                cells.extend([
                    ("Dirección de correo electrónico", requester.into()),
                    ("Tipo de solicitud", "Creación de cuenta".into()),
                    ("Tipo de vinculación", "Contratista".into()),
                    ("Nombres", given),
                    ("Apellidos", surnames),
                    ("Número de documento", doc),
                    ("Correo electrónico personal", personal),
                    ("Dependencia", "Subdirección de Hidrocarburos".into()),
                    ("Cargo", "Contratista - Ingeniero".into()),
                    ("Correo del jefe inmediato o supervisor", COORDINATOR.into()),
                    ("Número de contrato", format!("UPME-{:05}-2026", i % 100_000)),
                    ("Fecha de inicio del contrato", dmy(start)),
                    ("Fecha de terminación del contrato", dmy(end)),
                ]);
                if roll >= 94 { "bad: requester not an authorizer" } else { "create contractor" }
            }
            9..35 => {
                let (sam, personal, holder, _) = self.account();
                cells.extend([
                    ("Dirección de correo electrónico", HR.into()),
                    ("Tipo de solicitud", "Cambio de clave".into()),
                    ("Tipo de vinculación", holder.into()),
                    ("Correo electrónico personal", personal),
                    ("Usuario de red existente", sam),
                    ("¿El usuario se encuentra en las instalaciones de la entidad?", "No".into()),
                ]);
                "password reset"
            }
            35..55 => {
                let (sam, _, holder, _) = self.account();
                cells.extend([
                    ("Dirección de correo electrónico", HR.into()),
                    ("Tipo de solicitud", "Modificación de cuenta".into()),
                    ("Tipo de vinculación", holder.into()),
                    ("Cargo", title),
                    ("Usuario de red existente", sam),
                    ("Accesos o grupos requeridos", "SIG".into()),
                    ("Observaciones", "Nuevo cargo por resolución".into()),
                ]);
                "modify"
            }
            55..62 => {
                // A retirement on a date up to six months ahead: scheduled until then.
                let (sam, _, holder, department) = self.account();
                let effective = day.checked_add(self.rng.days(0, 180).days())?;
                cells.extend([
                    ("Dirección de correo electrónico", HR.into()),
                    ("Tipo de solicitud", "Inactivación de cuenta".into()),
                    ("Tipo de vinculación", holder.into()),
                    ("Dependencia", department),
                    ("Usuario de red existente", sam),
                    ("Fecha efectiva de la novedad", dmy(effective)),
                    ("Observaciones", "Retiro".into()),
                ]);
                "disable (dated)"
            }
            62..72 => {
                // Disabled from its first day, enabled on the return: open until then.
                let (sam, _, holder, department) = self.account();
                let effective = day.checked_add(self.rng.days(1, 14).days())?;
                let back = effective.checked_add(self.rng.days(5, 120).days())?;
                cells.extend([
                    ("Dirección de correo electrónico", HR.into()),
                    ("Tipo de solicitud", "Vacaciones, Licencia".into()),
                    ("Tipo de vinculación", holder.into()),
                    ("Dependencia", department),
                    ("Usuario de red existente", sam),
                    ("Fecha efectiva de la novedad", dmy(effective)),
                    ("Fecha de regreso", dmy(back)),
                ]);
                "leave"
            }
            72..74 => {
                // Nobody confirms the backups here: the deletion waits, open, for good.
                let (sam, _, holder, department) = self.account();
                if let Some(k) = self.accounts.iter().position(|a| a.sam == sam) {
                    self.accounts.swap_remove(k);
                }
                cells.extend([
                    ("Dirección de correo electrónico", HR.into()),
                    ("Tipo de solicitud", "Eliminación de cuenta".into()),
                    ("Tipo de vinculación", holder.into()),
                    ("Dependencia", department),
                    ("Usuario de red existente", sam),
                    ("Observaciones", "Retiro definitivo".into()),
                ]);
                "delete"
            }
            _ => {
                cells.extend([
                    ("Dirección de correo electrónico", "ana.gomez@upme.gov.co".into()),
                    ("Tipo de solicitud", "Instalación de software".into()),
                    ("Observaciones", "Necesito QGIS en mi equipo".into()),
                ]);
                "out of scope"
            }
        };
        *self.mix.entry(what).or_default() += 1;
        self.columns.row(&cells)
    }

    /// Takes note of the accounts the cycle made, for the requests still to come.
    fn made(&mut self, engine: &Engine, report: &CycleReport) -> Result<(), Box<dyn Error>> {
        for id in &report.touched {
            let Some(r) = engine.store().request(*id)? else { continue };
            if r.submission.kind != Some(Kind::Create) || r.state.name() != StateName::Closed {
                continue;
            }
            if let Some(sam) = r.reserved_account.clone().or_else(|| r.account.clone()) {
                let contractor = r.submission.department.contains("Hidrocarburos")
                    && r.submission.requester.eq_ignore_ascii_case(COORDINATOR);
                self.accounts.push(Account {
                    sam,
                    personal: r.submission.personal_email.clone(),
                    holder: if contractor { "Contratista" } else { "Funcionario" },
                    department: r.submission.department.clone(),
                });
            }
        }
        Ok(())
    }
}

/// The demo configuration, with the benchmark's poll, clock and start.
fn write_config(demo: &Path, dir: &Path) -> Result<PathBuf, Box<dyn Error>> {
    for name in ["autorizadores.csv", "directorio.json"] {
        std::fs::copy(demo.join(name), dir.join(name))?;
    }
    // The service desk's form without responses: the demo's name demo request ids, which
    // here are other requests.
    let desk = std::fs::read_to_string(demo.join("mesa.csv"))?;
    std::fs::write(dir.join("mesa.csv"), format!("{}\n", desk.lines().next().unwrap_or_default()))?;
    let mut text = std::fs::read_to_string(demo.join("cuentas.toml"))?;
    let now: Zoned = NOW.parse()?;
    let clock =
        now.timestamp().to_zoned(now.time_zone().clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    for (from, to) in [
        ("poll_interval_secs = 60", format!("poll_interval_secs = {POLL_SECS}")),
        ("demo_clock = \"2026-11-30T10:00:00-05:00\"", format!("demo_clock = \"{clock}\"")),
        // Every row of the year is the entity's: none is before its start.
        ("start_at = \"2026-11-23 00:00\"", "start_at = \"2025-01-01 00:00\"".to_string()),
    ] {
        if !text.contains(from) {
            return Err(format!("the demo configuration no longer has «{from}»").into());
        }
        text = text.replace(from, &to);
    }
    let path = dir.join("cuentas.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The engine on the demo's adapters, its dry-run directory not kept beside the store (see
/// the module's doc).
fn engine(config: Config) -> Result<Engine, Box<dyn Error>> {
    let snapshot = match &config.directory.snapshot_path {
        Some(path) => Snapshot::load(path)?,
        None => return Err("the demo configuration names no snapshot".into()),
    };
    let directory =
        Directory::DryRun(DryRun::new(snapshot, config.directory.personal_email_attribute.clone()));
    let adapters =
        Adapters { source: Source::from_config(&config)?, directory, mailer: Mailer::from_config(&config)? };
    Ok(Engine::with_adapters(config, adapters)?)
}

/// A `/proc/PID/status` line in MiB.
fn status_mib(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn proc_status(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

/// utime + stime of a process, seconds.
fn cpu_secs(pid: &str) -> Option<f64> {
    let [user, system, ..] = common::stat_times(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(user + system)
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} MiB"))
}

/// What a process of the binary cost, sampled from `/proc` until it ended.
struct Run {
    secs: f64,
    peak: Option<f64>,
    cpu: Option<f64>,
    ok: bool,
}

/// Waits for `child`, reading its peak and CPU from `/proc` as it runs.
// A benchmark measures wall time: the clock rule (only `app` reads it) is for the daemon.
#[allow(clippy::disallowed_methods)]
fn sample(mut child: Child, started: Instant) -> Result<Run, Box<dyn Error>> {
    let pid = child.id().to_string();
    let (mut peak, mut cpu) = (None, None);
    loop {
        let status = proc_status(&pid);
        peak = status_mib(&status, "VmHWM:").or(peak);
        cpu = cpu_secs(&pid).or(cpu);
        if let Some(exit) = child.try_wait()? {
            return Ok(Run { secs: started.elapsed().as_secs_f64(), peak, cpu, ok: exit.success() });
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// One command of the binary on the store: its cost; what it printed goes to `out`.
#[allow(clippy::disallowed_methods)]
fn command(bin: &Path, config: &Path, args: &[&str], out: &Path) -> Result<Run, Box<dyn Error>> {
    let started = Instant::now();
    let child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(out)?)
        .stderr(File::create(out.with_extension("err"))?)
        .spawn()?;
    sample(child, started)
}

/// Sends SIGTERM through kill(1): the project has no `unsafe`, and std has no signals.
fn terminate(child: &mut Child) -> Result<(), Box<dyn Error>> {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()?;
    for _ in 0..600 {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill()?;
    child.wait()?;
    Err("the daemon did not stop within a minute of SIGTERM".into())
}

/// The daemon, started on the store and left alone: its start-up, then `idle_secs` of idling.
#[allow(clippy::disallowed_methods)]
fn idle(bin: &Path, config: &Path, dir: &Path, idle_secs: usize) -> Result<(), Box<dyn Error>> {
    let log = dir.join("daemon.log");
    let started = Instant::now();
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        .spawn()?;
    let pid = child.id().to_string();
    // Start-up is over once it said "started" and its CPU time has not moved for a few
    // seconds (less than a poll): its first cycle reads the indexes, the open requests' rows
    // and the drift, which the polls that follow do not.
    let mut last_cpu = -1.0;
    let mut still_since: Option<Instant> = None;
    let mut startup_peak = None;
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(exit) = child.try_wait()? {
            return Err(format!("the daemon exited during start-up ({exit}); see {}", log.display()).into());
        }
        startup_peak = status_mib(&proc_status(&pid), "VmHWM:").or(startup_peak);
        let cpu = cpu_secs(&pid).unwrap_or_default();
        let said = std::fs::read_to_string(&log).unwrap_or_default().contains("started");
        if cpu > last_cpu {
            last_cpu = cpu;
            still_since = None;
        } else if said {
            let since = *still_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= QUIET {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let startup = started.elapsed().as_secs_f64();
    let cpu0 = cpu_secs(&pid);
    let t0 = Instant::now();
    let mut max_rss: Option<f64> = None;
    while t0.elapsed() < Duration::from_secs(u64::try_from(idle_secs)?) {
        if let Some(exit) = child.try_wait()? {
            return Err(format!("the daemon exited while idle ({exit}); see {}", log.display()).into());
        }
        if let Some(rss) = status_mib(&proc_status(&pid), "VmRSS:") {
            max_rss = Some(max_rss.map_or(rss, |m: f64| m.max(rss)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let wall = t0.elapsed().as_secs_f64();
    let status = proc_status(&pid);
    let cpu1 = cpu_secs(&pid);
    terminate(&mut child)?;

    let rss = status_mib(&status, "VmRSS:");
    let hwm = status_mib(&status, "VmHWM:");
    let share = match (cpu0, cpu1) {
        (Some(a), Some(b)) => Some(100.0 * (b - a) / wall),
        _ => None,
    };
    println!();
    println!("idle daemon (cuentas run, poll every {POLL_SECS} s, demo clock at NOW)");
    println!(
        "  start-up          {startup:.1} s until quiet (CPU still for {} s), peak {}",
        QUIET.as_secs(),
        mib(startup_peak)
    );
    println!(
        "  idle              {wall:.0} s: RSS {} at the end, {} at most; VmHWM {}",
        mib(rss),
        mib(max_rss),
        mib(hwm)
    );
    println!(
        "  RSS at the end    {} anonymous, {} file-backed",
        mib(status_mib(&status, "RssAnon:")),
        mib(status_mib(&status, "RssFile:"))
    );
    let resident = max_rss.unwrap_or(f64::NAN);
    let share = share.unwrap_or(f64::NAN);
    println!(
        "  {} idle RSS {resident:.1} MiB (target ≤ {TARGET_IDLE_MIB:.0} MiB)",
        verdict(resident <= TARGET_IDLE_MIB)
    );
    println!(
        "  {} idle CPU {share:.2} % of a core (target ≤ {TARGET_IDLE_CPU:.0} %)",
        verdict(share <= TARGET_IDLE_CPU)
    );
    Ok(())
}

/// What the dry-run directory alone holds in memory: the simulated directory the year left,
/// loaded in a process of its own. The idle daemon's figure includes it; an entity's daemon
/// reads Active Directory over LDAP and holds none of it.
fn simulated_directory(file: &Path) -> Result<(), Box<dyn Error>> {
    let status = || std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let before = status_mib(&status(), "VmRSS:");
    let snapshot = cuentas::directory::snapshot::Snapshot::load(file)?;
    let after = status_mib(&status(), "VmRSS:");
    let bytes = std::fs::metadata(file)?.len();
    println!(
        "  the simulated directory alone: {:.1} MiB of JSON, resident {} → {} once loaded",
        bytes as f64 / 1048576.0,
        mib(before),
        mib(after)
    );
    drop(snapshot);
    Ok(())
}

/// Bytes in the files under `dir` whose name `count` accepts.
fn disk_usage(dir: &Path, count: &dyn Fn(&Path) -> bool) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += disk_usage(&entry.path(), count)?;
        } else if count(&entry.path()) {
            total += meta.len();
        }
    }
    Ok(total)
}

/// sled's files, not what else the state directory holds (the simulated directory, the socket).
fn is_store_file(path: &Path) -> bool {
    !matches!(path.extension().and_then(|e| e.to_str()), Some("json" | "sock" | "partial"))
}

/// The first import, in a process of its own so that its peak is its own: the year's rows,
/// all at once, into an empty store. Prints its figures.
#[allow(clippy::disallowed_methods)]
fn first_import(dir: &Path) -> Result<(), Box<dyn Error>> {
    let config = Config::load(&dir.join("cuentas.toml"))?;
    let mut engine = engine(config)?;
    let now: Timestamp = NOW.parse::<Zoned>()?.timestamp();
    let status = || std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let before = status_mib(&status(), "VmRSS:");
    // VmHWM starts again from the current RSS (Linux ≥ 4.0): the peak that follows is ingest's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let cpu0 = common::process_times();
    let t = Instant::now();
    let mut report = CycleReport::default();
    engine.ingest(now, &mut report)?;
    let ingest_secs = t.elapsed().as_secs_f64();
    let ingest_peak = status_mib(&status(), "VmHWM:");
    let t = Instant::now();
    let rest = engine.cycle(now)?;
    let rest_secs = t.elapsed().as_secs_f64();
    let cycle_peak = status_mib(&status(), "VmHWM:");
    let cpu1 = common::process_times();
    let (mut states, mut open): (BTreeMap<&'static str, usize>, usize) = (BTreeMap::new(), 0);
    for r in engine.store().requests() {
        let r = r?;
        open += usize::from(r.is_open());
        *states.entry(r.state.name().as_str()).or_default() += 1;
    }
    drop(engine);

    let rate = report.registered as f64 / ingest_secs;
    println!();
    println!("first import (an empty store, every row of the year at once, in-process, at NOW)");
    println!("  registered        {} requests in {ingest_secs:.2} s", report.registered);
    if let Some(reason) = &report.halted {
        println!("  HALTED            {reason}");
    }
    println!("  rest of the cycle {rest_secs:.1} s (decide, carry out, answer: {} messages sent)", rest.sent);
    if let (Some([u0, s0, ..]), Some([u1, s1, ..])) = (cpu0, cpu1) {
        println!("  CPU               {:.1} s user + {:.1} s system", u1 - u0, s1 - s0);
    }
    println!("  after the cycle   {open} open; {states:?}");
    println!("  RSS before        {}", mib(before));
    let scope = if reset { "VmHWM reset just before" } else { "whole process: VmHWM could not be reset" };
    println!("  peak, ingest      {} ({scope})", mib(ingest_peak));
    println!("  peak, the cycle   {}", mib(cycle_peak));
    let peak = ingest_peak.unwrap_or(f64::NAN);
    let cycle = cycle_peak.unwrap_or(f64::NAN);
    println!(
        "  {} import {rate:.0} rows/s (target ≥ {TARGET_ROWS_PER_SEC:.0})",
        verdict(rate >= TARGET_ROWS_PER_SEC)
    );
    println!(
        "  {} import peak {peak:.1} MiB (target ≤ {TARGET_IMPORT_MIB:.0} MiB)",
        verdict(peak <= TARGET_IMPORT_MIB)
    );
    println!(
        "  {} first cycle peak {cycle:.1} MiB (target < MemoryMax {TARGET_CYCLE_MIB:.0} MiB)",
        verdict(cycle < TARGET_CYCLE_MIB)
    );
    Ok(())
}

#[allow(clippy::disallowed_methods)]
fn main() -> Result<(), Box<dyn Error>> {
    // Run again by itself for the first import (see `first_import`).
    let argv: Vec<String> = std::env::args().collect();
    if let Some(k) = argv.iter().position(|a| a == "--first-import") {
        let dir = argv.get(k + 1).ok_or("--first-import needs a folder")?;
        return first_import(Path::new(dir));
    }
    if let Some(k) = argv.iter().position(|a| a == "--simulated-directory") {
        let file = argv.get(k + 1).ok_or("--simulated-directory needs a file")?;
        return simulated_directory(Path::new(file));
    }
    let n = common::args("--requests", DEFAULT_REQUESTS)?;
    let idle_secs = common::args("--idle-secs", DEFAULT_IDLE_SECS)?.n;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_cuentas"));
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let import_rows = common::args("--import-requests", n.n)?.n.min(n.n);
    // In memory (tmpfs) unless told where: a store of 100,000 requests is built by some 400
    // cycles each making its steps durable, and on a disk their fsyncs, not the work, would
    // set the time it takes. What is measured is memory and CPU, which tmpfs does not change;
    // the wall times of the first import are those of a disk that syncs for free.
    let base = match argv.iter().position(|a| a == "--in") {
        Some(k) => PathBuf::from(argv.get(k + 1).ok_or("--in needs a folder")?),
        None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    };
    // `--measure DIR`: the measurements only, on a folder an earlier run kept (`--keep`), with
    // the binary built now: building the year is most of a run's time.
    let kept = argv.iter().position(|a| a == "--measure").map(|k| argv.get(k + 1).map(PathBuf::from));
    let tmp = match kept {
        Some(Some(folder)) => Folder::Kept(folder),
        Some(None) => return Err("--measure needs the folder a run kept".into()),
        None => Folder::Temporary(tempfile::Builder::new().prefix("cuentas-scale-").tempdir_in(&base)?),
    };
    let dir = tmp.path().join("anual");
    let tz = TimeZone::get(TIME_ZONE)?;
    let end: Zoned = NOW.parse()?;
    let start = end.checked_sub(365.days())?;
    let whole = Instant::now();
    let (config_path, csv_path, total, closed) = match &tmp {
        Folder::Kept(_) => taken_up(&dir)?,
        Folder::Temporary(_) => build_year(&tmp, &demo, n.n, import_rows, &bin, (&start, &end), &tz)?,
    };
    measure(&bin, &config_path, &dir, (&start, &end), (total, closed), idle_secs)?;

    // The first import, in its own folder and process.
    let first = tmp.path().join("primera");
    // What a kept run imported there is imported again, from an empty store.
    match std::fs::remove_dir_all(&first) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => std::fs::create_dir_all(&first)?,
    }
    write_config(&demo, &first)?;
    first_rows(&csv_path, &first.join("respuestas.csv"), import_rows)?;
    let started = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .arg("--first-import")
        .arg(&first)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let (child, lines) = relay(child)?;
    let run = sample(child, started)?;
    let _ = lines.join();
    if !run.ok {
        println!("  the first import did not finish");
    }
    println!("  (process: {:.1} s, peak {} as sampled from outside)", run.secs, mib(run.peak));

    println!();
    println!("whole run {:.0} s", whole.elapsed().as_secs_f64());
    if let (true, Folder::Temporary(tmp)) = (n.keep, tmp) {
        let kept = tmp.keep();
        println!("  kept              {}", kept.display());
    }
    Ok(())
}

/// Where a run works: a temporary folder, or one an earlier run kept (`--measure`).
enum Folder {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl Folder {
    fn path(&self) -> &Path {
        match self {
            Folder::Temporary(tmp) => tmp.path(),
            Folder::Kept(path) => path,
        }
    }
}

/// The store a kept run built, opened once here (a store written by an earlier build is
/// brought up to date by its first opening, which is not what the daemon's idling measures):
/// its configuration, its responses, and its requests, all and closed.
#[allow(clippy::disallowed_methods)]
fn taken_up(dir: &Path) -> Result<(PathBuf, PathBuf, usize, usize), Box<dyn Error>> {
    let config_path = dir.join("cuentas.toml");
    let config = Config::load(&config_path)?;
    let t = Instant::now();
    let store = Store::open(&config.state_dir)?;
    let (mut total, mut closed) = (0, 0);
    for r in store.requests() {
        total += 1;
        closed += usize::from(!r?.is_open());
    }
    println!("the kept store in {}: {total} requests, {closed} closed", dir.display());
    println!(
        "  opened and read   {:.1} s (brought up to date if an earlier build wrote it)",
        t.elapsed().as_secs_f64()
    );
    Ok((config_path, dir.join("respuestas.csv"), total, closed))
}

/// Builds the year's store in `tmp`, a cycle each morning; prints what it holds. Its
/// configuration, its responses, and its requests, all and closed.
#[allow(clippy::disallowed_methods)]
fn build_year(
    tmp: &Folder,
    demo: &Path,
    n: usize,
    import_rows: usize,
    bin: &Path,
    (start, end): (&Zoned, &Zoned),
    tz: &TimeZone,
) -> Result<(PathBuf, PathBuf, usize, usize), Box<dyn Error>> {
    let dir = tmp.path().join("anual");
    std::fs::create_dir_all(&dir)?;
    let config_path = write_config(demo, &dir)?;
    // The year, a cycle every morning; the rows of a day go in before its morning's cycle, so
    // the last one, at NOW, sees them all. The file starts with its header alone.
    let columns = Columns::from_demo(&demo.join("respuestas.csv"))?;
    let span = u64::try_from(end.timestamp().duration_since(start.timestamp()).as_secs())? - 3600;
    let csv_path = dir.join("respuestas.csv");
    let mut year = Year::new(&csv_path, columns, n, start.datetime(), span)?;
    let config = Config::load(&config_path)?;
    if !config.state_dir.starts_with(&dir) {
        return Err(format!(
            "the store would be written outside the benchmark folder: {}",
            config.state_dir.display()
        )
        .into());
    }
    let state_dir = config.state_dir.clone();

    println!("cuentas scale benchmark: {n} requests over the year to {NOW}");
    println!("  folder            {}", tmp.path().display());
    if import_rows < n {
        println!("  first import      of the year's first {import_rows} rows only (--import-requests)");
    }
    println!("  binary            {}", bin.display());

    let mut engine = engine(config)?;
    println!();
    println!("building the year's store, a cycle each morning at {CYCLE_HOUR}:00");
    let t = Instant::now();
    let mut day = start.date();
    let (mut cycles, mut sent, mut restarts) = (0usize, 0usize, 0usize);
    while day <= end.date() {
        let at = day.at(CYCLE_HOUR, 0, 0, 0).to_zoned(tz.clone())?;
        year.write_until(at.datetime())?;
        let report = match engine.cycle(at.timestamp()) {
            Ok(report) => report,
            Err(e) => {
                // The daemon exits on a failed cycle and systemd starts it again
                // (Restart=on-failure): so here, once, said with the figures.
                println!("  cycle of {day} failed, engine started again: {e}");
                restarts += 1;
                drop(engine);
                engine = self::engine(Config::load(&config_path)?)?;
                engine.cycle(at.timestamp())?
            }
        };
        if let Some(reason) = &report.halted {
            return Err(format!("ingestion stopped on {day}: {reason}").into());
        }
        sent += report.sent;
        year.made(&engine, &report)?;
        cycles += 1;
        if day.day() == 1 {
            println!(
                "  {day}: {} rows in, {} open, {:.0} s",
                year.i,
                engine.store().open_rows()?.len(),
                t.elapsed().as_secs_f64()
            );
        }
        day = day.tomorrow()?;
    }
    let built = t.elapsed().as_secs_f64();
    let (mut states, mut open): (BTreeMap<&'static str, usize>, usize) = (BTreeMap::new(), 0);
    for r in engine.store().requests() {
        let r = r?;
        open += usize::from(r.is_open());
        *states.entry(r.state.name().as_str()).or_default() += 1;
    }
    // The simulated directory as the year left it, for the daemon to take up.
    if let Directory::DryRun(dry) = engine.directory_mut() {
        dry.snapshot().save(&state_dir.join("directorio-simulado.json"))?;
    }
    drop(engine);
    let total: usize = states.values().sum();
    let closed = total - open;
    println!();
    println!("the year's store ({cycles} cycles, {sent} messages sent, {restarts} cycles failed)");
    println!("  built in          {built:.0} s");
    println!("  rows by kind");
    for (what, k) in &year.mix {
        println!("    {what:<36} {k:>8}");
    }
    println!("  requests by state ({total}: {open} open, {closed} closed)");
    for (state, k) in &states {
        println!("    {state:<36} {k:>8}");
    }
    Ok((config_path, csv_path, total, closed))
}

/// The release binary on the year's store: the idle daemon, a year's report, a listing, and
/// the store's bytes as left and compacted.
fn measure(
    bin: &Path,
    config_path: &Path,
    dir: &Path,
    (start, end): (&Zoned, &Zoned),
    (total, closed): (usize, usize),
    idle_secs: usize,
) -> Result<(), Box<dyn Error>> {
    let state_dir = Config::load(config_path)?.state_dir;
    let store_bytes = disk_usage(&Store::folder(&state_dir)?, &is_store_file)?;
    idle(bin, config_path, dir, idle_secs)?;
    let simulated = state_dir.join("directorio-simulado.json");
    if simulated.exists() {
        let alone =
            Command::new(std::env::current_exe()?).arg("--simulated-directory").arg(&simulated).status()?;
        if !alone.success() {
            println!("  the simulated directory could not be measured alone ({alone})");
        }
    }
    let from = start.date().tomorrow()?.to_string();
    let to = end.date().to_string();
    let report =
        command(bin, config_path, &["report", "--from", &from, "--to", &to], &dir.join("report.txt"))?;
    println!();
    println!("cuentas report --from {from} --to {to} (the daemon stopped)");
    print_command(&report, &dir.join("report.txt"))?;
    println!(
        "  {} report time {:.2} s (target ≤ {TARGET_REPORT_SECS:.0} s)",
        verdict(report.ok && report.secs <= TARGET_REPORT_SECS),
        report.secs
    );
    let peak = report.peak.unwrap_or(f64::NAN);
    println!(
        "  {} report peak {peak:.1} MiB (target ≤ {TARGET_REPORT_MIB:.0} MiB)",
        verdict(report.ok && peak <= TARGET_REPORT_MIB)
    );
    let listed = dir.join("needsinfo.txt");
    let needs = command(bin, config_path, &["requests", "--state", "NeedsInfo"], &listed)?;
    println!();
    println!("cuentas requests --state NeedsInfo (the daemon stopped)");
    print_command(&needs, &listed)?;

    // The store on disk: as the year left it (sled appends new versions of a record and
    // reuses old space later), and after a compaction (what the retention pass does).
    let mut store = Store::open(&state_dir)?;
    store.compact()?;
    let compacted = disk_usage(&Store::folder(&state_dir)?, &is_store_file)?;
    drop(store);
    println!();
    println!("the store on disk ({total} requests, {closed} closed)");
    let per = |bytes: u64| bytes as f64 / total.max(1) as f64;
    println!(
        "  as the year left it  {:.1} MiB, {:.0} bytes per request",
        store_bytes as f64 / 1048576.0,
        per(store_bytes)
    );
    println!(
        "  compacted            {:.1} MiB, {:.0} bytes per request",
        compacted as f64 / 1048576.0,
        per(compacted)
    );
    println!(
        "  {} store {:.0} bytes per request, as the year left it (target ≤ {TARGET_BYTES_PER_REQUEST:.0})",
        verdict(per(store_bytes) <= TARGET_BYTES_PER_REQUEST),
        per(store_bytes)
    );

    Ok(())
}

/// The header and the first `rows` rows of the year's responses.
fn first_rows(from: &Path, to: &Path, rows: usize) -> Result<(), Box<dyn Error>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_path(from)?;
    let mut out = csv::Writer::from_writer(BufWriter::new(File::create(to)?));
    for record in reader.records().take(rows + 1) {
        out.write_record(&record?)?;
    }
    out.flush()?;
    Ok(())
}

/// Prints the child's standard output as it comes, from a thread, so that the child is never
/// blocked on a full pipe while its peak is sampled.
fn relay(mut child: Child) -> Result<(Child, std::thread::JoinHandle<()>), Box<dyn Error>> {
    let out = child.stdout.take().ok_or("no pipe from the first import")?;
    let lines = std::thread::spawn(move || {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = writeln!(stdout.lock(), "{line}");
        }
    });
    Ok((child, lines))
}

/// A command's cost and what it printed.
fn print_command(run: &Run, out: &Path) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(out)?;
    let err = std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
    println!(
        "  {}: {:.2} s wall, {} CPU, peak {}; printed {} lines, {:.0} KiB",
        if run.ok { "done" } else { "FAILED" },
        run.secs,
        run.cpu.map_or_else(|| "n/a".to_string(), |c| format!("{c:.2} s")),
        mib(run.peak),
        text.lines().count(),
        text.len() as f64 / 1024.0
    );
    if !run.ok {
        println!("  {}", err.trim());
    }
    Ok(())
}
