//! What the benchmarks share: their options after `--`, their verdicts and the CPU times they
//! read from `/proc`.

use std::error::Error;

/// The options: how much to do (`--rows N`, `--count N`) and `--keep`.
pub struct Args {
    pub n: usize,
    pub keep: bool,
}

/// `flag N` (`_` and `,` allowed in N; `default` without it) and `--keep` (leave what the run
/// made). Anything else is ignored: `cargo bench` passes `--bench`, and libtest-style filters
/// mean nothing here.
pub fn args(flag: &str, default: usize) -> Result<Args, Box<dyn Error>> {
    let mut args = Args { n: default, keep: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            a if a == flag => {
                let n = it.next().ok_or_else(|| format!("{flag} needs a number"))?;
                args.n = n.replace(['_', ','], "").parse()?;
            }
            "--keep" => args.keep = true,
            _ => {}
        }
    }
    Ok(args)
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// utime, stime, cutime and cstime of a `/proc/PID/stat` line, in seconds (USER_HZ = 100).
pub fn stat_times(stat: &str) -> Option<[f64; 4]> {
    // Fields after the command name, which is in parentheses and may hold spaces; `rest`
    // starts at field 3, so utime (14) is at 11.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut times = [0.0; 4];
    for (time, field) in times.iter_mut().zip(fields.get(11..15)?) {
        *time = field.parse::<f64>().ok()? / 100.0;
    }
    Some(times)
}

/// [`stat_times`] of this process (its reaped children included in the last two).
pub fn process_times() -> Option<[f64; 4]> {
    stat_times(&std::fs::read_to_string("/proc/self/stat").ok()?)
}
