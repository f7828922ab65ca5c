//! Account-creation benchmark against the test AD DC: the daemon versus a minimal LDAP client.
//!
//! ```text
//! tests/samba.sh start target/samba      # once, if the test DC is not running
//! source target/samba/env                # CUENTAS_TEST_LDAP_*
//! cargo bench --bench ldap_create        # or: cargo bench --bench ldap_create -- --count N
//! ```
//!
//! In one run, against the Samba AD DC of `tests/samba.sh` (its address, CA and accounts from
//! the `CUENTAS_TEST_LDAP_*` variables, read by the live tests' own `tests/common/ad.rs`):
//!
//! 1. **Daemon.** A temporary folder with the live tests' cuentas configuration for the DC
//!    (LDAP mode, file mail) and authorizers, and a response export of N (default 200) account
//!    creations, requested by Talento Humano, for employees of «Energía»
//!    (OU=Energia,OU=Funcionarios; groups GG-Todos and GG-Energia). `Engine::new` and the daemon's start-up check (`check_directory`: TLS
//!    connection, bind, password policy) are not timed; `engine.cycle(now)` is: intake, policy,
//!    plan (one directory read per request), the LDAP writes, the access-data and report mails
//!    to the file spool, the store's durable commits. Every request must end `Closed`.
//! 2. **Minimal client.** Right after, one `ldap3` connection over LDAPS with the same CA,
//!    bound as the same account, does for N other people exactly the writes the daemon does
//!    per creation: the `add` (all attributes, `unicodePwd`, `userAccountControl` = 512), a
//!    `modify` replacing `pwdLastSet` with 0, and a `member` add on each of the two groups,
//!    whose DNs are read once before timing. No other reads.
//!
//! It prints both rates (creations/s), their ratio daemon/minimal with PASS/FAIL against the
//! target (≥ 0.8), the LDAP operations each side issued (the daemon's writes as it counts them
//! in `Ldap::writes`; its searches are not counted), and the CPU seconds this process and the
//! DC's `samba` processes spent on each side. The verdict is informational: the exit code is 0
//! unless something fails (the DC cannot be reached, a creation does not end `Closed`).
//!
//! The names are unique per run (a letters-only token in the surnames, a digits-only one in
//! the document numbers), so runs never collide; at the end every account the run created (2N)
//! is deleted as the domain administrator, found by that token in its surname.
//!
//! The daemon also reads: per request, the slice of the directory its plan depends on
//! (`snapshot_for`, at triage) and, before the add, the new name. `Ldap` counts only its
//! writes, so its searches show as the difference in the DC's CPU per creation (printed). The
//! snapshot search ORs `employeeID` (not indexed in AD's default schema) with prefix matches
//! (`sAMAccountName=ana.perez*`, which Samba does not index), so Samba answers it by scanning
//! the whole domain partition: its cost, and so the ratio, grow with the objects the DC holds
//! (the users are printed; the live tests leave accounts behind, and deleted ones, this
//! benchmark's included, stay as tombstones).
//!
//! Samba's LDAP server is CPU-bound (a few tens of creations per second on a small machine);
//! anything else loading the machine lowers both rates, so compare the ratio of one run, not
//! rates across runs.
//!
//! Options (after `--`): `--count N`, `--keep` (leave the accounts and the temporary folder).

mod common;
// The live tests' view of the test DC; a benchmark fails as a test does where it cannot go on.
#[allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "../tests/common/ad.rs"]
mod ad;

use std::collections::{BTreeMap, HashSet};
use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use ad::{Ad, ENERGY};
use common::verdict;
use cuentas::directory::Directory;
use cuentas::engine::Engine;
use cuentas::request::StateName;
use jiff::Timestamp;
use ldap3::{LdapConn, Mod, Scope, SearchEntry, ldap_escape};

const DEFAULT_COUNT: usize = 200;
const TARGET_RATIO: f64 = 0.8;
/// When the cycle runs: Friday 27 November 2026, 08:00 in Bogotá, as in the live tests.
const NOW: &str = "2026-11-27T13:00:00Z";
const SUBMITTED: &str = "27/11/2026 08:00:00";
const TITLE: &str = "Profesional";
const GIVEN: &str = "Ana";
/// Surname prefixes of the two sides; the run token and the person's index follow.
const DAEMON_SURNAME: &str = "Daemon";
const MINIMAL_SURNAME: &str = "Minimal";
/// Letters of the person's index in the surname (26³ people at most).
const INDEX_LETTERS: u32 = 3;
const START_DC: &str = "start the test DC from the repository root with `tests/samba.sh start target/samba`, \
     then `source target/samba/env` and run `cargo bench --bench ldap_create` again";

/// A connection to the test DC bound as `dn`.
fn connect(dc: &Ad, dn: &str, password: &str) -> Result<LdapConn, Box<dyn Error>> {
    let mut conn = dc.connect().map_err(|e| format!("{e}; {START_DC}"))?;
    dc.bind(&mut conn, dn, password)?;
    Ok(conn)
}

/// What tells this run's people from everyone else's.
struct RunToken {
    /// Five lowercase letters, for surnames (names hold no digits).
    letters: String,
    /// Six digits, for document numbers.
    digits: String,
}

// Uniqueness, not time: any clock will do.
#[allow(clippy::disallowed_methods)]
fn run_token() -> Result<RunToken, Box<dyn Error>> {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    Ok(RunToken { letters: base26(secs % 26u64.pow(5), 5), digits: format!("{:06}", secs % 1_000_000) })
}

/// `value` in `width` lowercase letters (a = 0), most significant first.
fn base26(mut value: u64, width: u32) -> String {
    let mut out = vec![b'a'; width as usize];
    for slot in out.iter_mut().rev() {
        *slot = b'a' + (value % 26) as u8;
        value /= 26;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One person to create.
struct Person {
    given: String,
    surname: String,
    /// Digits only, 11 of them.
    document: String,
}

impl Person {
    fn new(prefix: &str, lead: char, token: &RunToken, i: usize) -> Person {
        let index = base26(i as u64, INDEX_LETTERS);
        Person {
            given: GIVEN.to_string(),
            surname: format!("{prefix}{}{index}", token.letters),
            document: format!("{lead}{}{i:04}", token.digits),
        }
    }

    fn display(&self) -> String {
        format!("{} {}", self.given, self.surname)
    }
}

/// CPU seconds (user + system) of this process.
fn process_cpu() -> Option<f64> {
    common::process_times().map(|[user, system, ..]| user + system)
}

/// CPU seconds of every `samba` process on the machine (the DC's LDAP server and its
/// workers), with their reaped children; `None` when none is visible.
fn samba_cpu() -> Option<f64> {
    let mut total = 0.0;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        if !cmdline.starts_with(b"samba") {
            continue;
        }
        if let Some(cpu) =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| common::stat_times(&s))
        {
            total += cpu.iter().sum::<f64>();
            found = true;
        }
    }
    found.then_some(total)
}

/// Wall time and CPU of one side's timed part.
struct Measured {
    creations: usize,
    elapsed: Duration,
    cpu: Option<f64>,
    samba_cpu: Option<f64>,
    /// LDAP write operations issued in the timed part.
    writes: usize,
    /// LDAP searches issued in the timed part, when known.
    searches: Option<usize>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.creations as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str) {
        let secs = self.elapsed.as_secs_f64();
        let n = self.creations as f64;
        println!("{label}");
        println!("  creations         {}", self.creations);
        println!("  time              {secs:.2} s ({:.1} ms per creation)", 1000.0 * secs / n);
        println!("  rate              {:.1} creations/s", self.rate());
        let searches = match self.searches {
            Some(s) => format!("{s} searches"),
            None => "searches not counted".to_string(),
        };
        println!(
            "  LDAP operations   {} writes ({:.1} per creation), {searches}",
            self.writes,
            self.writes as f64 / n
        );
        let cpu = |v: Option<f64>| {
            v.map_or_else(
                || "n/a".to_string(),
                |v| format!("{v:.2} s ({:.1} ms per creation)", 1000.0 * v / n),
            )
        };
        println!("  CPU, this process {}", cpu(self.cpu));
        println!("  CPU, samba        {}", cpu(self.samba_cpu));
    }
}

/// Clock and CPU readings at the start of a timed part.
struct Start {
    at: Instant,
    cpu: Option<f64>,
    samba_cpu: Option<f64>,
}

impl Start {
    // A benchmark measures wall time: the clock rule (only `app` reads it) is for the daemon.
    #[allow(clippy::disallowed_methods)]
    fn now() -> Start {
        let samba_cpu = samba_cpu();
        let cpu = process_cpu();
        Start { at: Instant::now(), cpu, samba_cpu }
    }

    fn finish(&self, creations: usize, writes: usize, searches: Option<usize>) -> Measured {
        let elapsed = self.at.elapsed();
        let cpu = process_cpu().zip(self.cpu).map(|(b, a)| b - a);
        let samba_cpu = samba_cpu().zip(self.samba_cpu).map(|(b, a)| b - a);
        Measured { creations, elapsed, cpu, samba_cpu, writes, searches }
    }
}

/// The live tests' cuentas configuration for the DC, in `dir`, with a response export of one
/// creation per person.
fn daemon_config(dc: &Ad, dir: &Path, people: &[Person]) -> cuentas::config::Config {
    let requester = format!("talentohumano@{}", dc.domain());
    let mut responses = format!("{}\n", ad::header());
    for p in people {
        let personal = format!("p{}@gmail.com", p.document);
        responses.push_str(&ad::row(&[
            ("submitted_at", SUBMITTED),
            ("requester", &requester),
            ("kind", "Creación de cuenta"),
            ("holder_type", "Funcionario"),
            ("given_names", &p.given),
            ("surnames", &p.surname),
            ("id_type", "CC"),
            ("id_number", &p.document),
            ("personal_email", &personal),
            ("department", ENERGY.name),
            ("title", TITLE),
        ]));
    }
    dc.config(dir, &responses, "")
}

fn ldap_writes(engine: &mut Engine) -> Result<usize, Box<dyn Error>> {
    match engine.directory_mut() {
        Directory::Ldap(l) => Ok(l.writes.len()),
        Directory::DryRun(_) | Directory::Shadow(_) => {
            Err("the daemon's directory writes nothing, not LDAP".into())
        }
    }
}

/// The daemon creates `people` in one cycle (more if some are still open after it).
fn run_daemon(dc: &Ad, dir: &Path, people: &[Person]) -> Result<Measured, Box<dyn Error>> {
    let mut engine = Engine::new(daemon_config(dc, dir, people))?;
    engine.check_directory().map_err(|e| format!("the daemon cannot use the test DC: {e}; {START_DC}"))?;
    let now: Timestamp = NOW.parse()?;
    let writes_before = ldap_writes(&mut engine)?;

    let start = Start::now();
    let mut cycles = 0;
    loop {
        let report = engine.cycle(now)?;
        cycles += 1;
        if let Some(reason) = report.halted {
            return Err(format!("the daemon stopped reading the responses: {reason}").into());
        }
        let open = engine.store().requests().filter(|r| r.as_ref().is_ok_and(|r| r.is_open())).count();
        if open == 0 || cycles == 3 {
            break;
        }
    }
    let writes = ldap_writes(&mut engine)? - writes_before;
    let measured = start.finish(people.len(), writes, None);

    let mut states: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut not_closed = Vec::new();
    for request in engine.store().requests() {
        let request = request?;
        let state = request.state.name();
        *states.entry(state.as_str()).or_default() += 1;
        if state != StateName::Closed {
            not_closed.push(format!("row {} {}: {}", request.row, state.as_str(), request.state.reason()));
        }
    }
    let summary = states.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
    println!("  daemon cycles     {cycles}; requests: {summary}");
    let closed = states.get(StateName::Closed.as_str()).copied().unwrap_or(0);
    if closed != people.len() || !not_closed.is_empty() {
        for line in not_closed.iter().take(5) {
            println!("    {line}");
        }
        return Err(format!("{closed} of {} creations ended Closed", people.len()).into());
    }
    Ok(measured)
}

/// The DN of the group called `name`, read once.
fn group_dn(conn: &mut LdapConn, dc: &Ad, name: &str) -> Result<String, Box<dyn Error>> {
    let filter = format!("(&(objectCategory=group)(cn={}))", ldap_escape(name));
    let (entries, _) = conn.search(&dc.base_dn, Scope::Subtree, &filter, vec!["cn"])?.success()?;
    let dns: Vec<String> =
        entries.into_iter().filter(|e| !e.is_ref()).map(|e| SearchEntry::construct(e).dn).collect();
    match dns.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{} groups called «{name}» under {}", dns.len(), dc.base_dn).into()),
    }
}

/// `unicodePwd`: the password in double quotes, UTF-16LE.
fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn value(v: &str) -> HashSet<Vec<u8>> {
    HashSet::from([v.as_bytes().to_vec()])
}

/// One `ldap3` connection doing, for each person, the daemon's writes and nothing else.
fn run_minimal(dc: &Ad, people: &[Person]) -> Result<Measured, Box<dyn Error>> {
    let domain = dc.domain();
    let ou = dc.department_ou(&ENERGY);
    let mut conn = connect(dc, &dc.bind_dn, &dc.bind_password()?)?;
    let mut groups = Vec::new();
    for name in ENERGY.groups {
        groups.push(group_dn(&mut conn, dc, name)?);
    }

    let start = Start::now();
    let mut writes = 0;
    for (i, p) in people.iter().enumerate() {
        let display = p.display();
        let sam = format!("{}.{}", p.given, p.surname).to_lowercase();
        let address = format!("{sam}@{domain}");
        let dn = format!("CN={},{ou}", ldap3::dn_escape(&display));
        let description = format!("MIN-2026-{i:06}");
        let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> = vec![
            (
                b"objectClass".to_vec(),
                ["top", "person", "organizationalPerson", "user"]
                    .iter()
                    .map(|c| c.as_bytes().to_vec())
                    .collect(),
            ),
            (b"cn".to_vec(), value(&display)),
            (b"givenName".to_vec(), value(&p.given)),
            (b"sn".to_vec(), value(&p.surname)),
            (b"displayName".to_vec(), value(&display)),
            (b"sAMAccountName".to_vec(), value(&sam)),
            (b"userPrincipalName".to_vec(), value(&address)),
            (b"mail".to_vec(), value(&address)),
            (b"employeeType".to_vec(), value("Funcionario")),
            (b"department".to_vec(), value(ENERGY.name)),
            (b"description".to_vec(), value(&description)),
            (b"employeeID".to_vec(), value(&p.document)),
            (b"title".to_vec(), value(TITLE)),
            (b"unicodePwd".to_vec(), HashSet::from([unicode_pwd(&format!("Bench!Pass2026x{i}"))])),
            (b"userAccountControl".to_vec(), value("512")),
        ];
        conn.add(&dn, attrs)?.success().map_err(|e| format!("add {dn}: {e}"))?;
        let must_change = vec![Mod::Replace(b"pwdLastSet".to_vec(), value("0"))];
        conn.modify(&dn, must_change)?.success().map_err(|e| format!("modify {dn}: {e}"))?;
        writes += 2;
        for group in &groups {
            let member = vec![Mod::Add(b"member".to_vec(), value(&dn))];
            conn.modify(group, member)?.success().map_err(|e| format!("add {dn} to {group}: {e}"))?;
            writes += 1;
        }
    }
    let measured = start.finish(people.len(), writes, Some(0));
    let _ = conn.unbind();
    Ok(measured)
}

/// User objects under the base DN: unindexed searches cost in proportion to the directory.
fn directory_users(dc: &Ad) -> Result<String, Box<dyn Error>> {
    let mut conn = connect(dc, &dc.admin_dn, &dc.admin_password)?;
    let ldap3::SearchResult(entries, result) =
        conn.search(&dc.base_dn, Scope::Subtree, "(objectClass=user)", vec!["1.1"])?;
    let _ = conn.unbind();
    let users = entries.iter().filter(|e| !e.is_ref()).count();
    match result.rc {
        0 => Ok(users.to_string()),
        // sizeLimitExceeded: at least these.
        4 => Ok(format!("≥ {users}")),
        _ => Err(format!("search for users: {result}").into()),
    }
}

/// Deletes every account of this run (both sides), as the domain administrator.
fn cleanup(dc: &Ad, token: &RunToken) -> Result<usize, Box<dyn Error>> {
    let mut conn = connect(dc, &dc.admin_dn, &dc.admin_password)?;
    let filter = format!(
        "(&(objectClass=user)(|(sn={DAEMON_SURNAME}{t}*)(sn={MINIMAL_SURNAME}{t}*)))",
        t = ldap_escape(&token.letters)
    );
    let mut deleted = 0;
    // A search answers at most the server's size limit (sizeLimitExceeded, 4, with the
    // entries it could): repeat until none is left.
    loop {
        let ldap3::SearchResult(entries, result) =
            conn.search(&dc.users_ou(), Scope::Subtree, &filter, vec!["sn"])?;
        if result.rc != 0 && result.rc != 4 {
            return Err(format!("search {filter}: {result}").into());
        }
        let dns: Vec<String> =
            entries.into_iter().filter(|e| !e.is_ref()).map(|e| SearchEntry::construct(e).dn).collect();
        if dns.is_empty() {
            break;
        }
        for dn in dns {
            conn.delete(&dn)?.success().map_err(|e| format!("delete {dn}: {e}"))?;
            deleted += 1;
        }
    }
    let _ = conn.unbind();
    Ok(deleted)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = common::args("--count", DEFAULT_COUNT)?;
    // Document numbers hold the index in four digits; surnames in three letters.
    if args.n == 0 || args.n > 9999 {
        return Err("--count must be between 1 and 9999".into());
    }
    let dc = Ad::from_vars().map_err(|e| format!("no test AD DC: {e}; {START_DC}"))?;
    let token = run_token()?;
    let n = args.n;
    let daemon_people: Vec<Person> = (0..n).map(|i| Person::new(DAEMON_SURNAME, '1', &token, i)).collect();
    let minimal_people: Vec<Person> = (0..n).map(|i| Person::new(MINIMAL_SURNAME, '2', &token, i)).collect();
    let tmp = tempfile::Builder::new().prefix("cuentas-bench-ldap-").tempdir()?;

    println!("cuentas LDAP creation benchmark: daemon vs minimal ldap3 client");
    println!("  directory         {} ({})", dc.url, dc.department_ou(&ENERGY));
    println!("  creations         {n} per side, groups {}", ENERGY.groups.join(", "));
    println!(
        "  run token         {} (surnames {DAEMON_SURNAME}{t}…, {MINIMAL_SURNAME}{t}…)",
        token.letters,
        t = token.letters
    );
    println!("  folder            {}", tmp.path().display());
    println!("  users in the DC   {} before the run", directory_users(&dc)?);
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        println!("  machine           load average {} ({cpus} CPUs)", load.trim());
    }
    println!();

    let measured = run_daemon(&dc, tmp.path(), &daemon_people)
        .and_then(|daemon| Ok((daemon, run_minimal(&dc, &minimal_people)?)));

    if args.keep {
        let kept = tmp.keep();
        println!("  kept              the accounts and {}", kept.display());
    } else {
        match cleanup(&dc, &token) {
            Ok(deleted) => {
                println!("  cleanup           {deleted} accounts deleted (created: {} at most)", 2 * n)
            }
            Err(e) => {
                measured?;
                return Err(format!("cleanup: {e}").into());
            }
        }
    }
    println!();
    let (daemon, minimal) = measured?;
    daemon.print("daemon (Engine::cycle: intake, policy, plan, LDAP, mail spool, store)");
    minimal.print("minimal client (ldap3: add, modify pwdLastSet, 2 × member add)");
    if let (Some(d), Some(m)) = (daemon.samba_cpu, minimal.samba_cpu) {
        println!(
            "  samba CPU per creation, daemon − minimal: {:.1} ms (the daemon's searches: \
             `Ldap` counts only its writes)",
            1000.0 * (d - m) / n as f64
        );
    }
    let ratio = daemon.rate() / minimal.rate();
    println!();
    println!("  daemon {:.1} creations/s, minimal {:.1} creations/s", daemon.rate(), minimal.rate());
    println!(
        "  {} ratio daemon/minimal {ratio:.2} (target ≥ {TARGET_RATIO})",
        verdict(ratio >= TARGET_RATIO)
    );
    Ok(())
}
