//! Ingest benchmark: `cargo bench --bench ingest` (or `cargo bench --bench ingest -- --rows N`).
//!
//! Generates a form-response export of N rows (default 100,000) modelled on the demo
//! (`fixtures/demo/respuestas.csv`): about 70 % account creations (employees from Talento
//! Humano, contractors from a supervisor), then password resets, modifications and
//! inactivations of demo accounts, leaves (handled by a person), out-of-scope requests and bad
//! rows (missing surname, bad personal e-mail, requester outside the entity or not an
//! authorizer). Rows come from a fixed-seed PRNG, so every run reads the same file.
//!
//! It then runs the demo configuration (dry-run directory, file mail) in a temporary folder
//! and times only `Engine::ingest`: intake → policy → plan, stored in sled. It prints rows/s,
//! peak RSS (`VmHWM`) before and during ingest, the requests per state, the outbox messages
//! per kind and the store's size on disk, with PASS/FAIL against the targets (≥ 20,000 rows/s,
//! ≤ 64 MiB peak RSS). The verdict is informational: the exit code is 0 unless ingest fails.
//!
//! Options (after `--`): `--rows N`, `--keep` (leave the temporary folder for inspection).

mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::verdict;
use cuentas::config::Config;
use cuentas::engine::{CycleReport, Engine};
use jiff::civil::DateTime;
use jiff::{SignedDuration, Timestamp};

const DEFAULT_ROWS: usize = 100_000;
const TARGET_ROWS_PER_SEC: f64 = 20_000.0;
const TARGET_PEAK_MIB: f64 = 64.0;
/// The moment the cycle runs: after every generated submission, before the contracts start.
const NOW: &str = "2026-11-27T13:00:00Z";
/// The first submission; the others spread over the following ~300 days.
const FIRST_SUBMISSION: &str = "2025-12-01T07:00:00";
const SPAN_SECS: u64 = 300 * 24 * 3600;

const GIVEN: [&str; 40] = [
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
    "Sebastián",
    "Mónica",
    "Esteban",
    "Begoña",
    "Iñaki",
    "Ximena",
    "Raúl",
    "Inés",
    "Tomás",
    "Verónica",
    "Germán",
    "Noemí",
    "Simón",
    "Adrián",
    "Ramón",
    "Yolanda",
];

const SURNAMES: [&str; 40] = [
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
    "Peña",
    "Salazar",
    "Herrera",
    "Rojas",
    "Ortiz",
    "Fernández",
    "Mejía",
    "Gaitán",
    "Suárez",
    "Ríos",
    "Londoño",
    "Del Castillo",
    "Zuluaga",
    "Arango",
    "Montaña",
    "Ñustes",
];

const DEPARTMENTS: [&str; 5] = [
    "Subdirección de Energía Eléctrica",
    "Subdirección de Hidrocarburos",
    "Oficina Asesora de Planeación",
    "Secretaría General",
    "GIT de Talento Humano",
];

const TITLES: [&str; 6] = [
    "Profesional Especializado",
    "Profesional Universitaria",
    "Técnico Administrativo",
    "Asesora",
    "Auxiliar Administrativo",
    "Profesional Universitario",
];

const CONTRACT_TITLES: [&str; 5] = [
    "Contratista - Ingeniera eléctrica",
    "Contratista - Economista",
    "Contratista - Analista de datos",
    "Contratista - Ingeniero",
    "Contratista - Abogada",
];

const MAIL_HOSTS: [&str; 4] = ["gmail.com", "outlook.com", "hotmail.com", "yahoo.com"];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n` for a benchmark (n is small).
    fn below(&mut self, n: usize) -> usize {
        // The modulus is at most `n`, which came from a `usize`, so this fits.
        usize::try_from(self.next() % n as u64).unwrap_or(0)
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

    /// One row from (header, value) pairs; unnamed columns stay empty.
    fn row(&self, cells: &[(&str, &str)]) -> Result<Vec<String>, Box<dyn Error>> {
        let mut row = vec![String::new(); self.header.len()];
        for (name, value) in cells {
            let i = self.index.get(*name).ok_or_else(|| format!("the demo header has no column «{name}»"))?;
            if let Some(cell) = row.get_mut(*i) {
                (*value).clone_into(cell);
            }
        }
        Ok(row)
    }
}

/// `1.013.456.789`, as people type document numbers in the form.
fn dotted(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
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

/// What the generator wrote, by the kind of row.
#[derive(Default)]
struct Mix(BTreeMap<&'static str, usize>);

impl Mix {
    fn add(&mut self, what: &'static str) {
        *self.0.entry(what).or_default() += 1;
    }
}

/// Writes the header and `rows` generated rows to `path`, streaming (one row in memory).
fn generate(path: &Path, columns: &Columns, rows: usize) -> Result<Mix, Box<dyn Error>> {
    let mut out = csv::Writer::from_writer(BufWriter::new(File::create(path)?));
    out.write_record(&columns.header)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut mix = Mix::default();
    let mut at: DateTime = FIRST_SUBMISSION.parse()?;
    let max_step = (2 * SPAN_SECS / rows.max(1) as u64).max(2);
    for i in 0..rows {
        let step = 1 + rng.next() % (max_step - 1);
        at = at.checked_add(SignedDuration::from_secs(i64::try_from(step)?))?;
        let submitted = at.strftime("%d/%m/%Y %H:%M:%S").to_string();
        let doc = dotted(1_000_000_000 + i as u64);

        let g1 = rng.pick(&GIVEN);
        let given = if rng.below(10) < 8 { format!("{g1} {}", rng.pick(&GIVEN)) } else { g1.to_string() };
        let s1 = rng.pick(&SURNAMES);
        let surnames = format!("{s1} {}", rng.pick(&SURNAMES));
        let personal = format!("{}.{}{}@{}", ascii_word(g1), ascii_word(s1), i % 1000, rng.pick(&MAIL_HOSTS));
        let contract = format!("UPME-{:03}-2026", i % 1000);
        let department = rng.pick(&DEPARTMENTS);
        let title = rng.pick(&TITLES);
        let contract_title = rng.pick(&CONTRACT_TITLES);

        let base = [("Marca temporal", submitted.as_str()), ("Tipo de documento", "Cédula de ciudadanía")];
        let bad_email = format!("{}.{}@gmail", ascii_word(g1), ascii_word(s1));
        let employee = |requester: &'static str, missing_surname: bool| {
            let surnames = if missing_surname { "" } else { surnames.as_str() };
            let mut cells = base.to_vec();
            cells.extend([
                ("Dirección de correo electrónico", requester),
                ("Tipo de solicitud", "Creación de cuenta"),
                ("Tipo de vinculación", "Funcionario"),
                ("Nombres", given.as_str()),
                ("Apellidos", surnames),
                ("Número de documento", doc.as_str()),
                ("Correo electrónico personal", personal.as_str()),
                ("Dependencia", department),
                ("Cargo", title),
            ]);
            cells
        };
        let contractor = |requester: &'static str, bad: bool| {
            let email = if bad { bad_email.as_str() } else { personal.as_str() };
            let mut cells = base.to_vec();
            cells.extend([
                ("Dirección de correo electrónico", requester),
                ("Tipo de solicitud", "Creación de cuenta"),
                ("Tipo de vinculación", "Contratista"),
                ("Nombres", given.as_str()),
                ("Apellidos", surnames.as_str()),
                ("Número de documento", doc.as_str()),
                ("Correo electrónico personal", email),
                ("Dependencia", "Subdirección de Energía Eléctrica"),
                ("Cargo", contract_title),
                ("Correo del jefe inmediato o supervisor", "andres.mejia@upme.gov.co"),
                ("Número de contrato", contract.as_str()),
                ("Fecha de inicio del contrato", "01/12/2026"),
                ("Fecha de terminación del contrato", "30/06/2027"),
            ]);
            cells
        };

        let roll = rng.below(100);
        let cells = match roll {
            // Creations: 70 %.
            0..40 => {
                mix.add("create employee");
                let mut cells = employee("talentohumano@upme.gov.co", false);
                if rng.below(4) == 0 {
                    cells.push(("Correo del jefe inmediato o supervisor", "carolina.rojas@upme.gov.co"));
                }
                cells
            }
            40..70 => {
                mix.add("create contractor");
                let mut cells = contractor("andres.mejia@upme.gov.co", false);
                if rng.below(3) == 0 {
                    cells.push(("Accesos o grupos requeridos", "VPN, SharePoint Proyectos"));
                }
                cells
            }
            // Changes to existing demo accounts: 14 %.
            70..74 => {
                mix.add("password reset");
                let (requester, holder, account) = if rng.below(2) == 0 {
                    ("sofia.herrera@upme.gov.co", "Contratista", "sofia.herrera")
                } else {
                    ("talentohumano@upme.gov.co", "Funcionario", "juan.perez")
                };
                let mut cells = base.to_vec();
                cells.extend([
                    ("Dirección de correo electrónico", requester),
                    ("Tipo de solicitud", "Cambio de clave"),
                    ("Tipo de vinculación", holder),
                    ("Correo electrónico personal", personal.as_str()),
                    ("Usuario de red existente", account),
                    ("¿El usuario se encuentra en las instalaciones de la entidad?", "Sí"),
                ]);
                cells
            }
            74..78 => {
                mix.add("modify");
                let account = rng.pick(&["ana.gomez", "natalia.beltran", "ricardo.lopez"]);
                let mut cells = base.to_vec();
                cells.extend([
                    ("Dirección de correo electrónico", "talentohumano@upme.gov.co"),
                    ("Tipo de solicitud", "Modificación de cuenta"),
                    ("Tipo de vinculación", "Funcionario"),
                    ("Cargo", title),
                    ("Usuario de red existente", account),
                    ("Accesos o grupos requeridos", "SIG"),
                    ("Observaciones", "Nuevo cargo por resolución"),
                ]);
                cells
            }
            78..84 => {
                mix.add("disable");
                let (requester, account, department, effective) = if rng.below(2) == 0 {
                    (
                        "talentohumano@upme.gov.co",
                        "hernan.castro",
                        "Subdirección de Hidrocarburos",
                        "15/12/2026",
                    )
                } else {
                    ("carolina.rojas@upme.gov.co", "ricardo.lopez", "Secretaría General", "")
                };
                let mut cells = base.to_vec();
                cells.extend([
                    ("Dirección de correo electrónico", requester),
                    ("Tipo de solicitud", "Inactivación de cuenta"),
                    ("Tipo de vinculación", "Funcionario"),
                    ("Dependencia", department),
                    ("Usuario de red existente", account),
                    ("Fecha efectiva de la novedad", effective),
                    ("Observaciones", "Retiro"),
                ]);
                cells
            }
            // Handled by a person: 6 %.
            84..90 => {
                mix.add("leave");
                let mut cells = base.to_vec();
                cells.extend([
                    ("Dirección de correo electrónico", "talentohumano@upme.gov.co"),
                    ("Tipo de solicitud", "Vacaciones, Licencia"),
                    ("Tipo de vinculación", "Funcionario"),
                    ("Nombres", "Ana"),
                    ("Apellidos", "Gómez"),
                    ("Dependencia", "Secretaría General"),
                    ("Usuario de red existente", "ana.gomez"),
                    ("Fecha efectiva de la novedad", "14/12/2026"),
                    ("Fecha de regreso", "12/01/2027"),
                ]);
                cells
            }
            // Not about accounts: 2 %.
            90..92 => {
                mix.add("out of scope");
                let mut cells = base.to_vec();
                cells.extend([
                    ("Dirección de correo electrónico", "ana.gomez@upme.gov.co"),
                    ("Tipo de solicitud", "Instalación de software"),
                    ("Observaciones", "Necesito QGIS en mi equipo"),
                ]);
                cells
            }
            // Bad rows: 8 %.
            92..95 => {
                mix.add("bad: missing surname");
                employee("talentohumano@upme.gov.co", true)
            }
            95..98 => {
                mix.add("bad: personal e-mail");
                contractor("andres.mejia@upme.gov.co", true)
            }
            98 => {
                mix.add("bad: requester outside the entity");
                contractor("jefe.externo@gmail.com", false)
            }
            _ => {
                mix.add("bad: requester not an authorizer");
                contractor("camila.torres@upme.gov.co", false)
            }
        };
        out.write_record(columns.row(&cells)?)?;
    }
    out.flush()?;
    Ok(mix)
}

/// A line of `/proc/self/status` in MiB (`VmHWM`: peak RSS, `VmRSS`: current).
fn status_mib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds of the whole process (user, system).
fn process_cpu() -> Option<(f64, f64)> {
    common::process_times().map(|[user, system, ..]| (user, system))
}

/// CPU seconds of the calling thread, from `/proc/thread-self/schedstat` (nanoseconds).
fn thread_cpu() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0), so the peak that follows is ingest's own.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.1} MiB"))
}

/// Bytes in the files under `dir`.
fn disk_usage(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { disk_usage(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

// A benchmark measures wall time: the clock rule (only `app` reads it) is for the daemon.
#[allow(clippy::disallowed_methods)]
fn main() -> Result<(), Box<dyn Error>> {
    let args = common::args("--rows", DEFAULT_ROWS)?;
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let tmp = tempfile::Builder::new().prefix("cuentas-bench-").tempdir()?;
    let dir = tmp.path().to_path_buf();
    for name in ["autorizadores.csv", "directorio.json"] {
        std::fs::copy(demo.join(name), dir.join(name))?;
    }
    // The service desk's form without responses (the demo's name the demo's requests).
    let desk = std::fs::read_to_string(demo.join("mesa.csv"))?;
    std::fs::write(dir.join("mesa.csv"), format!("{}\n", desk.lines().next().unwrap_or_default()))?;
    // Every generated row is the entity's: none is before its start.
    let config = std::fs::read_to_string(demo.join("cuentas.toml"))?;
    let start = "start_at = \"2026-11-23 00:00\"";
    if !config.contains(start) {
        return Err(format!("the demo configuration no longer has «{start}»").into());
    }
    std::fs::write(dir.join("cuentas.toml"), config.replace(start, "start_at = \"2025-01-01 00:00\""))?;
    let config_path = dir.join("cuentas.toml");

    println!("cuentas ingest benchmark");
    println!("  folder            {}", dir.display());
    let columns = Columns::from_demo(&demo.join("respuestas.csv"))?;
    let t = Instant::now();
    let mix = generate(&dir.join("respuestas.csv"), &columns, args.n)?;
    let generated = t.elapsed();
    let csv_size = std::fs::metadata(dir.join("respuestas.csv"))?.len();
    println!(
        "  generated         {} rows, {:.1} MiB in {:.2} s",
        args.n,
        csv_size as f64 / 1048576.0,
        generated.as_secs_f64()
    );
    for (what, n) in &mix.0 {
        println!("    {what:<36} {n:>8}");
    }

    let config = Config::load(&config_path)?;
    if !config.state_dir.starts_with(&dir) {
        return Err(format!(
            "the store would be written outside the benchmark folder: {}",
            config.state_dir.display()
        )
        .into());
    }
    let state_dir: PathBuf = config.state_dir.clone();
    let mut engine = Engine::new(config)?;
    let now: Timestamp = NOW.parse()?;
    let mut report = CycleReport::default();

    let peak_before = status_mib("VmHWM:");
    let rss_before = status_mib("VmRSS:");
    let reset = reset_peak();
    let cpu_before = process_cpu();
    let thread_before = thread_cpu();
    let t = Instant::now();
    engine.ingest(now, &mut report)?;
    let elapsed = t.elapsed();
    let cpu_after = process_cpu();
    let thread_after = thread_cpu();
    let peak_ingest = status_mib("VmHWM:");
    let rss_after = status_mib("VmRSS:");

    let secs = elapsed.as_secs_f64();
    let rate = report.registered as f64 / secs;
    println!();
    println!("ingest (intake → policy → plan, dry-run), now = {NOW}");
    println!("  registered        {} requests", report.registered);
    if let Some(reason) = &report.halted {
        println!("  HALTED            {reason}");
    }
    println!("  time              {secs:.3} s");
    println!("  throughput        {rate:.0} rows/s");
    if let (Some((u0, s0)), Some((u1, s1))) = (cpu_before, cpu_after) {
        println!("  CPU               {:.2} s user + {:.2} s system (all threads)", u1 - u0, s1 - s0);
    }
    if let (Some(a), Some(b)) = (thread_before, thread_after) {
        // Less sensitive than wall time to other processes on the machine.
        println!(
            "  CPU               {:.2} s on the ingesting thread ({:.0} rows per CPU-second)",
            b - a,
            report.registered as f64 / (b - a)
        );
    }
    println!("  RSS               {} before, {} after", mib(rss_before), mib(rss_after));
    println!(
        "  RSS after         {} anonymous, {} file-backed",
        mib(status_mib("RssAnon:")),
        mib(status_mib("RssFile:"))
    );
    println!("  peak RSS          {} before ingest (generation, config, engine)", mib(peak_before));
    if reset {
        println!("  peak RSS          {} during ingest (VmHWM reset just before it)", mib(peak_ingest));
    } else {
        println!("  peak RSS          {} whole process (could not reset VmHWM)", mib(peak_ingest));
    }

    let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut json_bytes = 0usize;
    let (mut named, mut numbered, mut no_name) = (0usize, 0usize, 0usize);
    let mut messages: BTreeMap<&'static str, usize> = BTreeMap::new();
    for request in engine.store().requests() {
        let request = request?;
        *states.entry(request.state.name().as_str()).or_default() += 1;
        for message in &request.outbox {
            *messages.entry(message.kind.key()).or_default() += 1;
        }
        json_bytes += serde_json::to_vec(&request)?.len();
        if let Some(name) = &request.reserved_account {
            named += 1;
            if name.ends_with(|c: char| c.is_ascii_digit()) {
                numbered += 1;
            }
        }
        if request.state.reason().contains("usuario de red libre") {
            no_name += 1;
        }
    }
    let stored: usize = states.values().sum();
    println!("  requests by state");
    for (state, n) in &states {
        println!("    {state:<36} {n:>8}");
    }
    if stored > 0 {
        println!(
            "  request JSON      {:.0} bytes on average (stored LZ4-compressed)",
            json_bytes as f64 / stored as f64
        );
    }
    println!(
        "  new account names {named} reserved, {numbered} of them numbered ({{n}}), {no_name} creations found no free name"
    );
    for message in engine.store().messages() {
        *messages.entry(message?.kind.key()).or_default() += 1;
    }
    println!("  outbox messages by kind");
    for (kind, n) in &messages {
        println!("    {kind:<36} {n:>8}");
    }
    drop(engine);
    let store_size = disk_usage(&state_dir)?;
    println!("  store on disk     {:.1} MiB ({})", store_size as f64 / 1048576.0, state_dir.display());

    let peak = peak_ingest.unwrap_or(f64::NAN);
    println!();
    println!(
        "  {} throughput {rate:.0} rows/s (target ≥ {TARGET_ROWS_PER_SEC:.0})",
        verdict(rate >= TARGET_ROWS_PER_SEC)
    );
    println!(
        "  {} peak RSS {peak:.1} MiB (target ≤ {TARGET_PEAK_MIB:.0} MiB)",
        verdict(peak <= TARGET_PEAK_MIB)
    );
    if args.keep {
        let kept = tmp.keep();
        println!("  kept              {}", kept.display());
    }
    Ok(())
}
