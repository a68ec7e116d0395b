//! Results: the table on stdout, `--json`, `--plot`.

use std::io::Write as _;

use serde::Serialize;

use crate::measure::Timing;
use crate::{Common, Suite};

/// One (suite, workload, method) measurement.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    pub(crate) suite: Suite,
    pub(crate) workload: String,
    pub(crate) method: String,
    pub(crate) bytes_per_iteration: u64,
    pub(crate) iterations: usize,
    pub(crate) median_seconds: f64,
    pub(crate) throughput_bytes_per_sec: f64,
    /// The method ratios are taken against (`std`, or `raw_hyper` for S3).
    pub(crate) baseline: Option<String>,
    /// This row's throughput over the baseline's, same suite and workload.
    pub(crate) ratio_to_baseline: Option<f64>,
    /// The client's CPU time (every thread of the process but an in-process
    /// server's) per GiB moved; `None` for the memory suite (no bandwidth) or where
    /// the CPU clock cannot be read.
    pub(crate) cpu_seconds_per_gib: Option<f64>,
}

impl Row {
    pub(crate) fn new(
        suite: Suite,
        workload: impl std::fmt::Display,
        method: &str,
        bytes: u64,
        t: Timing,
    ) -> Self {
        let seconds = t.median.as_secs_f64();
        Self {
            suite,
            workload: workload.to_string(),
            method: method.to_owned(),
            bytes_per_iteration: bytes,
            iterations: t.iterations,
            median_seconds: seconds,
            throughput_bytes_per_sec: bytes as f64 / seconds.max(1e-12),
            baseline: None,
            ratio_to_baseline: None,
            cpu_seconds_per_gib: t
                .cpu_per_iteration
                .filter(|_| suite != Suite::Memory && bytes > 0)
                .map(|cpu| cpu.as_secs_f64() * GIB / bytes as f64),
        }
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// Fills in the ratios to each suite's baseline.
pub(crate) fn add_ratios(rows: &mut [Row]) {
    let base_of = |suite: Suite| match suite {
        Suite::Fs | Suite::Memory | Suite::Storm => "std",
        Suite::S3 => "raw_hyper",
    };
    let bases: Vec<(Suite, String, f64)> = rows
        .iter()
        .filter(|r| r.method == base_of(r.suite))
        .map(|r| (r.suite, r.workload.clone(), r.throughput_bytes_per_sec))
        .collect();
    for row in rows.iter_mut() {
        if let Some((_, _, base)) = bases
            .iter()
            .find(|(s, w, _)| *s == row.suite && *w == row.workload)
        {
            row.baseline = Some(base_of(row.suite).to_owned());
            row.ratio_to_baseline = Some(row.throughput_bytes_per_sec / base);
        }
    }
}

/// A size as a reader says it: `8 MiB`, `64 KiB`, `100 bytes`.
pub(crate) fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} bytes"),
    }
}

pub(crate) fn human(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= (1u64 << 30) as f64 {
        format!("{:.2} GiB/s", bytes_per_sec / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB/s", bytes_per_sec / (1u64 << 20) as f64)
    }
}

/// Time per operation, for suites where bandwidth means nothing (the memory suite
/// hands out zero-copy slices: "GiB/s" would only measure a pointer copy).
fn per_op(seconds: f64) -> String {
    let ns = seconds * 1e9;
    if ns >= 1e6 {
        format!("{:.2} ms/op", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} us/op", ns / 1e3)
    } else {
        format!("{ns:.0} ns/op")
    }
}

/// What a row's cell shows: throughput, or time per operation for the memory suite.
fn cell(r: &Row) -> String {
    let value = match r.suite {
        Suite::Memory => per_op(r.median_seconds),
        _ => human(r.throughput_bytes_per_sec),
    };
    match r.ratio_to_baseline {
        Some(x) => format!("{value} {x:.2}x"),
        None => value,
    }
}

/// Our methods a verdict speaks for: the dedicated pool (the global pool, the
/// caller's runtime and the ablations are variants of it; S3's without checksums
/// or write checks have their price line instead).
fn headline(method: &str) -> bool {
    method.starts_with("ours_")
        && !matches!(
            method,
            "ours_global"
                | "ours_caller_rt"
                | "ours_unpooled"
                | "ours_no_checksum"
                | "ours_unchecked"
        )
}

/// The end of a run: per workload, ours on its dedicated pool against std and the
/// best peer (neither ours nor the baseline), in one line each; and its client CPU
/// per GiB against the least of the baseline's and the peers'.
pub(crate) fn verdicts(rows: &[Row]) -> String {
    let mut out =
        String::from("\nverdict (ours on a dedicated pool; ratios of throughput, >1 is faster):\n");
    if rows.iter().any(|r| r.suite == Suite::Memory) {
        // The memory backend does no IO, so no operation of it is handed off.
        out.push_str(
            "  (memory: ours runs on the caller's thread, as the memory backend does on any pool)\n",
        );
    }
    let mut seen: Vec<(Suite, &str)> = Vec::new();
    for r in rows {
        if !seen.contains(&(r.suite, r.workload.as_str())) {
            seen.push((r.suite, &r.workload));
        }
    }
    for (suite, workload) in seen {
        let same: Vec<&Row> = rows
            .iter()
            .filter(|r| r.suite == suite && r.workload == workload)
            .collect();
        for ours in same.iter().filter(|r| headline(&r.method)) {
            let base = same.iter().find(|r| Some(&r.method) == r.baseline.as_ref());
            // Another client: neither ours nor the baseline in any of its forms
            // (the storm's `std_threads` and `std_kept` are std's).
            let is_peer = |r: &&&Row| {
                !r.method.starts_with("ours")
                    && r.baseline
                        .as_ref()
                        .is_none_or(|b| r.method != *b && !r.method.starts_with(&format!("{b}_")))
            };
            let peer = same.iter().filter(is_peer).max_by(|a, b| {
                a.throughput_bytes_per_sec
                    .total_cmp(&b.throughput_bytes_per_sec)
            });
            let mut line = format!(
                "  {:<8}{workload:<26}{:<18}",
                format!("{suite:?}").to_lowercase(),
                ours.method
            );
            if let Some(base) = base {
                let x = ours.throughput_bytes_per_sec / base.throughput_bytes_per_sec.max(1e-12);
                line.push_str(&format!("{x:>6.2}x {:<12}", base.method));
            }
            if let Some(peer) = peer {
                let x = ours.throughput_bytes_per_sec / peer.throughput_bytes_per_sec.max(1e-12);
                let word = if x >= 1.0 { "ahead of" } else { "behind" };
                line.push_str(&format!("{x:>6.2}x best peer ({word} {})", peer.method));
                // OpenDAL's plain read returns a list of body frames; the others
                // one contiguous buffer, as parquet consumes it. Only where its
                // contiguous form was measured (not for a write: no data back).
                let contiguous_measured = same.iter().any(|r| r.method == "opendal_to_bytes");
                if suite == Suite::S3 && peer.method == "opendal" && contiguous_measured {
                    let contiguous = same
                        .iter()
                        .filter(|r| is_peer(r) && r.method != "opendal")
                        .max_by(|a, b| {
                            a.throughput_bytes_per_sec
                                .total_cmp(&b.throughput_bytes_per_sec)
                        });
                    if let Some(c) = contiguous {
                        let x =
                            ours.throughput_bytes_per_sec / c.throughput_bytes_per_sec.max(1e-12);
                        line.push_str(&format!(", {x:.2}x best contiguous ({})", c.method));
                    }
                }
            }
            if let Some(cpu) = ours.cpu_seconds_per_gib {
                // The baseline and the peers: our other pools and ablations run
                // the same code, and are no one else's cost.
                let others = same
                    .iter()
                    .filter(|r| !r.method.starts_with("ours"))
                    .filter_map(|r| Some((r.cpu_seconds_per_gib?, r.method.as_str())))
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                line.push_str(&format!("; CPU {:.0} ms/GiB", cpu * 1e3));
                if let Some((least, method)) = others {
                    line.push_str(&format!(
                        ", {:.2}x the least of the others ({method})",
                        cpu / least.max(1e-12)
                    ));
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The table: one line per workload, one column per method, throughput (time per
/// operation for the memory suite) and ratio.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let mut suites: Vec<Suite> = rows.iter().map(|r| r.suite).collect();
    suites.dedup();
    for suite in suites {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.suite == suite).collect();
        let mut methods: Vec<&str> = Vec::new();
        let mut workloads: Vec<&str> = Vec::new();
        for r in &rows {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
            if !workloads.contains(&r.workload.as_str()) {
                workloads.push(&r.workload);
            }
        }
        let base = rows.iter().find_map(|r| r.baseline.clone());
        let what = match suite {
            Suite::Memory => {
                "median time per operation (zero-copy slices: no bandwidth to speak of)"
            }
            _ => "median throughput",
        };
        out.push_str(&format!(
            "\n{suite:?}: {what}{}\n",
            base.map(|b| format!(" (x: throughput ratio to {b})"))
                .unwrap_or_default()
        ));
        grid(&mut out, &rows, &methods, &workloads, |r| Some(cell(r)));
        if rows.iter().any(|r| r.cpu_seconds_per_gib.is_some()) {
            out.push_str(&format!(
                "\n{suite:?}: client CPU time per GiB (user + system, every thread but an in-process server's; lower is better)\n"
            ));
            grid(&mut out, &rows, &methods, &workloads, |r| {
                r.cpu_seconds_per_gib
                    .map(|cpu| format!("{:.0} ms", cpu * 1e3))
            });
        }
    }
    out
}

/// One line per workload, one column per method, each cell `cell` of the row
/// (`-` where there is none).
fn grid(
    out: &mut String,
    rows: &[&Row],
    methods: &[&str],
    workloads: &[&str],
    cell: impl Fn(&Row) -> Option<String>,
) {
    let width = 24;
    out.push_str(&format!("{:<26}", "workload"));
    for m in methods {
        out.push_str(&format!("{m:>width$}"));
    }
    out.push('\n');
    for w in workloads {
        out.push_str(&format!("{w:<26}"));
        for m in methods {
            let text = rows
                .iter()
                .find(|r| r.workload == *w && r.method == *m)
                .and_then(|r| cell(r))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!("{text:>width$}"));
        }
        out.push('\n');
    }
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
pub(crate) struct Document<'a, T: Serialize + ?Sized> {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) mode: String,
    pub(crate) machine: Machine,
    pub(crate) results: &'a T,
}

#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    /// The CPU's model name (`lscpu`'s), or `unknown`.
    pub(crate) cpu_model: String,
    pub(crate) os: &'static str,
    pub(crate) arch: &'static str,
}

impl Machine {
    pub(crate) fn here() -> Self {
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpu_model(),
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

/// The CPU model name from `/proc/cpuinfo` (what `lscpu` shows).
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Writes `value` as JSON to `path` (`-`, or a name of the file stdout is:
/// stdout; see [`is_stdout`]). A regular file there (or none) is replaced whole: a
/// temporary file beside it, renamed into place, so that a write that fails (a
/// full disk) leaves the previous results as they were. Anything else (a link, a
/// pipe, a device) is written to as it is.
pub(crate) fn write_json<T: Serialize>(path: &std::path::Path, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    if is_stdout(path) {
        return to_stdout(&format!("{text}\n"), "the JSON results");
    }
    let failed = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let replaceable = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type().is_file(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    let name = path.file_name().filter(|_| replaceable);
    let Some(name) = name else {
        return std::fs::write(path, text).map_err(failed);
    };
    // A name of its own: a create that finds one there tries the next.
    let (temp, mut file) = match (0..100)
        .find_map(|n| {
            let temp = path.with_file_name(format!(
                ".{}.{}-{n}.tmp",
                name.to_string_lossy(),
                std::process::id()
            ));
            match std::fs::File::create_new(&temp) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                created => Some(created.map(|file| (temp, file))),
            }
        })
        .unwrap_or_else(|| Err(std::io::ErrorKind::AlreadyExists.into()))
    {
        Ok(created) => created,
        // A file the user may write in a directory they may not: written as it is.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return std::fs::write(path, text).map_err(failed);
        }
        Err(e) => return Err(failed(e)),
    };
    file.write_all(text.as_bytes())
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            failed(e)
        })
}

/// Whether `path` is stdout: `-`, or a name of the file stdout is (`/dev/stdout`,
/// `/dev/fd/1`, the file it was redirected to), where the JSON would land among
/// the table's lines. Not `/dev/null`, where a closed stdout goes too.
pub(crate) fn is_stdout(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if path.as_os_str() == "-" {
        return true;
    }
    let Ok(out) = rustix::fs::fstat(std::io::stdout()) else {
        return false;
    };
    let null = std::fs::metadata("/dev/null").map(|n| (n.dev(), n.ino()));
    match std::fs::metadata(path) {
        Ok(file) => {
            let same = (file.dev(), file.ino()) == (out.st_dev, out.st_ino);
            same && null.ok() != Some((file.dev(), file.ino()))
        }
        Err(_) => false,
    }
}

/// Writes `text` to stdout, which may be a pipe its reader has closed (`dio bench
/// --json - | head`): an error that says so, where `print!` would panic.
fn to_stdout(text: &str, what: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write {what} to stdout: {e}"))
}

/// Prints `table` (to stderr when the JSON goes to stdout), writes `--json`, and
/// draws `--plot` from `chart`'s panels (`None`: a benchmark that draws none). Each
/// is done though another failed (stdout closed), and every failure is reported.
pub(crate) fn emit<T: Serialize + ?Sized>(
    table: &str,
    common: &Common,
    tool: &'static str,
    results: &T,
    chart: Option<&dyn Fn() -> Vec<crate::plot::Panel>>,
) -> Result<(), String> {
    // The table's failure (stdout closed) does not keep the JSON file from being
    // written: both are reported.
    let printed = if common.json.as_deref().is_some_and(is_stdout) {
        // Nowhere to say it if stderr is closed too.
        let _ = std::io::stderr().lock().write_all(table.as_bytes());
        Ok(())
    } else {
        to_stdout(table, "the results")
    };
    let written = match &common.json {
        Some(path) => write_json(
            path,
            &Document {
                tool,
                version: env!("CARGO_PKG_VERSION"),
                mode: format!("{:?}", common.mode()).to_lowercase(),
                machine: Machine::here(),
                results,
            },
        ),
        None => Ok(()),
    };
    let drawn = match (&common.plot, chart) {
        (Some(path), Some(chart)) => crate::plot::draw(&chart(), path)
            .map(|()| eprintln!("chart written to {}", path.display())),
        _ => Ok(()),
    };
    let failures: Vec<String> = [printed, written, drawn]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// What checksums and write checks cost on S3: for each workload measured with
/// and without them, our throughput with over without (`ours_dedicated /
/// ours_no_checksum`, `ours_dedicated / ours_unchecked`), a line each.
pub(crate) fn prices(rows: &[Row]) -> Vec<String> {
    let of = |method: &str, workload: &str| {
        rows.iter()
            .find(|r| r.suite == Suite::S3 && r.method == method && r.workload == workload)
            .map(|r| r.throughput_bytes_per_sec)
    };
    let mut workloads: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.suite == Suite::S3) {
        if !workloads.contains(&r.workload.as_str()) {
            workloads.push(&r.workload);
        }
    }
    let price = |without: &str, what: &str| {
        let ratios: Vec<String> = workloads
            .iter()
            .filter_map(|w| {
                let ratio = of("ours_dedicated", w)? / of(without, w)?;
                Some(format!("{w} {ratio:.2}x"))
            })
            .collect();
        (!ratios.is_empty()).then(|| {
            format!(
                "S3 price of {what}, ours_dedicated / {without}): {}",
                ratios.join(", ")
            )
        })
    };
    [
        price("ours_no_checksum", "integrity (checksums on / off"),
        price("ours_unchecked", "the fs meaning (write checks on / off"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Adds `err` to a run's `failure`: every failure is said, none replaces another
/// (a suite's objects left behind, then a later suite refused).
pub(crate) fn add_failure(failure: &mut Option<String>, err: String) {
    *failure = Some(match failure.take() {
        Some(before) => format!("{before}; and {err}"),
        None => err,
    });
}

/// A run's outcome once its results are out (`emitted`) and something went wrong
/// after its measurements (`after`, the S3 objects it left behind): both said,
/// neither hides the other.
pub(crate) fn both(emitted: Result<(), String>, after: Option<String>) -> Result<(), String> {
    let mut failure = emitted.err();
    if let Some(after) = after {
        add_failure(&mut failure, after);
    }
    failure.map_or(Ok(()), Err)
}

/// Prints the header lines, the table and the verdicts, then writes what was asked
/// for.
pub(crate) fn finish(rows: &[Row], header: &[String], common: &Common) -> Result<(), String> {
    let mut text = format!(
        "\nmachine: {} ({} cpus)\n",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for line in header {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&table(rows));
    text.push_str(&verdicts(rows));
    let chart = || crate::plot::throughput_panels(rows);
    emit(&text, common, "dio bench", rows, Some(&chart))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Objects left behind are said whether or not the results could be written,
    /// and a results file that could not be written is said too.
    #[test]
    fn neither_failure_hides_the_other() {
        let left = || Some("objects left".to_owned());
        assert_eq!(both(Ok(()), None), Ok(()));
        assert_eq!(both(Ok(()), left()), Err("objects left".to_owned()));
        assert_eq!(both(Err("no json".into()), None), Err("no json".to_owned()));
        let err = both(Err("no json".into()), left()).unwrap_err();
        assert!(
            err.contains("no json") && err.contains("objects left"),
            "{err}"
        );
    }

    fn row(workload: &str, method: &str, millis: u64) -> Row {
        let timing = Timing {
            iterations: 5,
            median: Duration::from_millis(millis),
            cpu_per_iteration: None,
        };
        Row::new(Suite::S3, workload, method, 16 << 20, timing)
    }

    /// Sizes below a MiB are not rounded to nothing (the isolation header said
    /// "0 MiB" for the 64 KiB reads of a 1 MiB file).
    #[test]
    fn sizes_read_as_a_reader_says_them() {
        assert_eq!(size(8 << 20), "8 MiB");
        assert_eq!(size(64 << 10), "64 KiB");
        assert_eq!(size((1 << 20) + (1 << 19)), "1536 KiB");
        assert_eq!(size((1 << 20) + 1), "1.0 MiB");
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn the_cpu_verdict_compares_with_the_baseline_and_peers_not_our_variants() {
        let fs_row = |method: &str, cpu_millis: u64| {
            let timing = Timing {
                iterations: 5,
                median: Duration::from_millis(10),
                cpu_per_iteration: Some(Duration::from_millis(cpu_millis)),
            };
            Row::new(Suite::Fs, "read", method, 1 << 30, timing)
        };
        let mut rows = vec![
            fs_row("ours_dedicated", 100),
            fs_row("ours_global", 90),
            fs_row("ours_caller_rt", 80),
            fs_row("std", 120),
            fs_row("opendal", 150),
        ];
        add_ratios(&mut rows);
        let text = verdicts(&rows);
        assert!(
            text.contains("CPU 100 ms/GiB, 0.83x the least of the others (std)"),
            "{text}"
        );
    }

    /// The storm's other forms of std's loop (two threads, results kept) are the
    /// baseline's, not a peer: the best peer is another client.
    #[test]
    fn a_storm_verdict_takes_no_form_of_std_for_a_peer() {
        let storm_row = |method: &str, millis: u64| {
            let timing = Timing {
                iterations: 5,
                median: Duration::from_millis(millis),
                cpu_per_iteration: None,
            };
            Row::new(Suite::Storm, "storm_4k", method, 40 << 20, timing)
        };
        let mut rows = vec![
            storm_row("ours_read_ranges", 10),
            storm_row("std", 20),
            storm_row("std_threads", 12),
            storm_row("std_kept", 19),
            storm_row("spawn_blocking", 200),
        ];
        add_ratios(&mut rows);
        let text = verdicts(&rows);
        assert!(
            text.contains("20.00x best peer (ahead of spawn_blocking)"),
            "{text}"
        );
    }

    #[test]
    fn an_s3_verdict_names_the_best_contiguous_peer_for_reads_only() {
        let mut rows = Vec::new();
        for workload in ["read", "write"] {
            rows.push(row(workload, "ours_dedicated", 100));
            rows.push(row(workload, "opendal", 80));
            rows.push(row(workload, "object_store", 125));
        }
        // What `dio bench` measures: the contiguous form for reads only.
        rows.push(row("read", "opendal_to_bytes", 200));
        let text = verdicts(&rows);
        let line = |workload: &str| {
            text.lines()
                .find(|l| l.contains(&format!(" {workload} ")))
                .unwrap_or_else(|| panic!("no {workload} verdict: {text}"))
                .to_owned()
        };
        let read = line("read");
        assert!(read.contains("0.80x best peer (behind opendal)"), "{read}");
        assert!(
            read.contains("1.25x best contiguous (object_store)"),
            "{read}"
        );
        let write = line("write");
        assert!(
            write.contains("0.80x best peer (behind opendal)"),
            "{write}"
        );
        assert!(!write.contains("contiguous"), "{write}");
    }
}
