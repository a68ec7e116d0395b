//! `dio`: the dedicated-io command-line tool.
//!
//! - `dio bench`: the seed's workloads on a temp directory (fs) and in memory, our
//!   `Operator` side by side with std, `tokio::fs`, OpenDAL and object_store; with
//!   `--uri s3://...`, the S3 workloads against that endpoint.
//! - `dio bench isolation`: how responsive a caller's runtime stays while each
//!   method does IO.
//! - `dio bench scale`: throughput and p99 latency per read as reads outstanding and
//!   read size grow.
//! - `dio bench query`: DataFusion queries over a generated parquet dataset, through
//!   DataFusion's default store, our registration and `IoObjectStore` (the `query`
//!   feature, off by default: DataFusion is most of a build).

mod cpu;
mod interrupt;
mod isolation;
mod measure;
mod plot;
#[cfg(feature = "query")]
mod query;
mod report;
mod scale;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "dio",
    version,
    about = "dedicated-io: IO on its own runtime, measured"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the benchmark workloads, every method side by side.
    Bench(BenchArgs),
}

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// A few seconds: a smoke run.
    Quick,
    /// About a minute (the default).
    Default,
    /// Several minutes, for numbers worth quoting.
    Full,
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(subcommand)]
    what: Option<BenchCommand>,
    #[command(flatten)]
    common: Common,
    /// Only workloads whose name contains this (e.g. `read`, `parallel`); for
    /// `isolation` and `scale`, only methods whose name does (e.g. `ours`).
    #[arg(long, global = true)]
    filter: Option<String>,
    /// Suites to run without `--uri`: `fs`, `memory`, `storm` (the default: all
    /// three), and `s3`: the S3 workloads against an S3 server inside the process.
    /// Not with `--uri`, which runs the S3 workloads alone.
    #[arg(long, value_delimiter = ',', conflicts_with = "uri")]
    suite: Option<Vec<Suite>>,
    /// Run the S3 workloads against this bucket instead: `s3://bucket/prefix` on
    /// AWS, or `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`
    /// (credentials and region from the AWS provider chain: environment, profile,
    /// web identity, container, instance metadata).
    #[arg(long)]
    uri: Option<String>,
    /// Size of the small object (the big one is 8 times as large), e.g. `16M`, `1M`
    /// (the default: 16M); at most 1G (the fs and memory suites hold 8 times it in
    /// memory, and up to as much again in reads: a suite that would not fit in the
    /// memory available says so before it starts; the storm's file is 64 times
    /// it).
    #[arg(long, value_parser = parse_object_size)]
    size: Option<u64>,
}

impl BenchArgs {
    /// The main job's own options (`--uri`, `--suite`, `--size`) given with a
    /// subcommand, which does not read them: an error, not a run with defaults.
    fn refuse_main_options(&self, subcommand: &str) -> Result<(), String> {
        let given = [
            ("--uri", self.uri.is_some()),
            ("--suite", self.suite.is_some()),
            ("--size", self.size.is_some()),
        ];
        match given.into_iter().find(|(_, given)| *given) {
            Some((option, _)) => Err(format!(
                "{option} before `{subcommand}` is an option of `dio bench` itself, which \
                 `dio bench {subcommand}` does not read: give its own options after \
                 `{subcommand}` (see `dio bench {subcommand} --help`)"
            )),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    /// A smoke run of a few seconds.
    #[arg(long, global = true, conflicts_with = "full")]
    quick: bool,
    /// A long run, for numbers worth quoting.
    #[arg(long, global = true)]
    full: bool,
    /// Also write the results as JSON to this file (`-` for stdout).
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Also draw the results as a chart to this `.svg` or `.png` file (not for
    /// `isolation`, whose table is its result).
    #[arg(long, global = true)]
    plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, global = true)]
    no_progress: bool,
}

impl Common {
    pub(crate) fn mode(&self) -> Mode {
        match (self.quick, self.full) {
            (true, _) => Mode::Quick,
            (_, true) => Mode::Full,
            _ => Mode::Default,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Suite {
    /// Files in a temp directory.
    Fs,
    /// Memory backends.
    Memory,
    /// 10,000 small random reads of a large file at once (64 times `--size`:
    /// 1 GiB by default; at least what 10,000 reads a page apart need).
    Storm,
    /// An S3 endpoint: `--uri`, or without it a server in memory inside the
    /// process (its threads' CPU time is not counted as the client's).
    S3,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The isolation benchmark: ticker lateness and CPU progress of a caller's
    /// runtime while each method does parallel 8 MiB range reads.
    Isolation(isolation::IsolationArgs),
    /// The query engine's workload: TPC-H-like queries over a generated parquet
    /// dataset, through DataFusion's default store, our registration
    /// (`dio_parquet::register`) and `IoObjectStore`; time, ratio, bytes and
    /// requests per query, and the caller runtime's ticker lateness.
    #[cfg(feature = "query")]
    Query(query::QueryArgs),
    /// The query engine's workload (this `dio` was built without the `query`
    /// feature, which brings DataFusion: build with `--features query`).
    #[cfg(not(feature = "query"))]
    Query {
        /// Ignored: the workload is not in this build.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        rest: Vec<String>,
    },
    /// How cost grows: throughput and p99 latency per read as reads outstanding
    /// grow (1 to 256) and as read size grows (4 KiB to 64 MiB), ours and peers.
    Scale(scale::ScaleArgs),
}

/// [`parse_size`], at most 1 GiB: the main job's suites hold eight times it in
/// memory (and the storm's file is 64 times it).
fn parse_object_size(s: &str) -> Result<u64, String> {
    parse_size_at_most(
        s,
        1 << 30,
        "1G (the fs and memory suites hold 8 times the size in memory)",
    )
}

/// [`parse_size`], at most 4 GiB: `isolation` and `scale` build their file in
/// memory before writing it.
pub(crate) fn parse_file_size(s: &str) -> Result<u64, String> {
    parse_size_at_most(
        s,
        4 << 30,
        "4G (the file is built in memory before it is written)",
    )
}

/// [`parse_size`], refused above `max` with `at most {limit}`.
fn parse_size_at_most(s: &str, max: u64, limit: &str) -> Result<u64, String> {
    let size = parse_size(s)?;
    if size > max {
        return Err(format!("{s}: at most {limit}"));
    }
    Ok(size)
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s}: not a size like 16M"))?;
    let unit = unit.to_ascii_uppercase();
    // One suffix at most: `16MIB`, `16MB`, not `16MIBIB`.
    let prefix = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let shift = match prefix {
        // A bare `B` is bytes; a bare `iB` is no unit.
        "" if unit != "IB" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => return Err(format!("{s}: unknown unit {unit:?}: use K, M or G")),
    };
    let size = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{s}: too large"))?;
    if size < 64 << 10 {
        return Err(format!("{s}: at least 64K"));
    }
    Ok(size)
}

/// An option of `dio bench` given twice, once before a subcommand and once after it
/// (`dio bench --json a.json scale --json b.json`), or `--quick` with `--full` so:
/// clap takes each level alone, and one would silently win. The options looked
/// at are `dio bench`'s global ones; only the words before a `--` count, and none
/// when help or the version is asked for.
fn given_twice<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Result<(), String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let globals: Vec<String> = command
        .find_subcommand("bench")
        .into_iter()
        .flat_map(|bench| bench.get_arguments())
        .filter(|arg| arg.is_global_set())
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for arg in args {
        let arg = arg.as_encoded_bytes();
        match arg {
            b"--" => break,
            b"--help" | b"-h" | b"--version" | b"-V" => return Ok(()),
            _ => {}
        }
        let name = arg.split(|&b| b == b'=').next().unwrap_or(arg);
        let Some(option) = globals.iter().find(|o| o.as_bytes() == name) else {
            continue;
        };
        if seen.contains(&option.as_str()) {
            return Err(format!("{option} is given twice: give it once"));
        }
        seen.push(option);
    }
    if seen.contains(&"--quick") && seen.contains(&"--full") {
        return Err("--quick and --full cannot be used together: give one".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    if let Err(message) = given_twice(std::env::args_os().skip(1)) {
        eprintln!("dio: {message}");
        return ExitCode::from(2);
    }
    let Command::Bench(args) = Cli::parse().command;
    // A chart that cannot be drawn is said before the run, not after it; isolation
    // draws none, and a --plot given to it is refused, not ignored.
    let draws = !matches!(args.what, Some(BenchCommand::Isolation(_)));
    let checked = match args.common.plot.as_deref() {
        Some(path) if draws => plot::check_path(path),
        Some(_) => {
            Err("--plot: the isolation benchmark draws no chart (its table is the result)".into())
        }
        None => Ok(()),
    };
    interrupt::install();
    let outcome = checked.and_then(|()| bench(args));
    if let Err(message) = &outcome {
        eprintln!("dio: {message}");
    }
    // Interrupted (at any point, the end of the run too): the run's files are
    // gone now; end as the signal would have.
    interrupt::end_as_signalled();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn bench(args: BenchArgs) -> Result<(), String> {
    if let Some(path) = &args.common.json {
        check_json_path(path)?;
    }
    if let (Some(json), Some(plot)) = (&args.common.json, &args.common.plot)
        && same_file(json, plot)
    {
        return Err(format!(
            "--json and --plot name the same file, {}: the chart would overwrite the results",
            json.display()
        ));
    }
    let subcommand = match &args.what {
        Some(BenchCommand::Isolation(_)) => Some("isolation"),
        Some(BenchCommand::Scale(_)) => Some("scale"),
        Some(BenchCommand::Query { .. }) => Some("query"),
        None => None,
    };
    if let Some(subcommand) = subcommand {
        args.refuse_main_options(subcommand)?;
    }
    match args.what {
        Some(BenchCommand::Isolation(iso)) => {
            isolation::run(&iso, &args.common, args.filter.as_deref())
        }
        Some(BenchCommand::Scale(scale)) => {
            scale::run(&scale, &args.common, args.filter.as_deref())
        }
        #[cfg(feature = "query")]
        Some(BenchCommand::Query(query)) => {
            query::run(&query, &args.common, args.filter.as_deref())
        }
        #[cfg(not(feature = "query"))]
        Some(BenchCommand::Query { .. }) => Err(
            "this dio was built without the `query` feature (DataFusion): \
             cargo run --release -p dio --features query -- bench query"
                .into(),
        ),
        None => {
            let suites = once_each(
                args.suite
                    .unwrap_or_else(|| vec![Suite::Fs, Suite::Memory, Suite::Storm]),
            );
            throughput::run(&throughput::Plan {
                mode: args.common.mode(),
                filter: args.filter,
                suites,
                uri: args.uri,
                size: args.size.unwrap_or(16 << 20),
                progress: !args.common.no_progress,
            })
            .and_then(|outcome| {
                let finished = report::finish(&outcome.rows, &outcome.header, &args.common);
                report::both(finished, outcome.failure)
            })
        }
    }
}

/// `items` in their order, each once: a suite named twice runs once.
pub(crate) fn once_each<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    kept
}

/// A `--json` file that cannot be written is said before the run, not after it.
/// (`-` is stdout.)
fn check_json_path(path: &std::path::Path) -> Result<(), String> {
    if path == std::path::Path::new("-") {
        return Ok(());
    }
    check_writable("--json", path, true)
}

/// Whether `a` and `b` name one file: the same name in the same directory (its
/// path resolved: `..`, links), or the same file where both exist (a link).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // The directory resolved, the name as given (the file may not exist yet).
    let resolved = |path: &std::path::Path| {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        Some(dir.canonicalize().ok()?.join(path.file_name()?))
    };
    if let (Some(a), Some(b)) = (resolved(a), resolved(b))
        && a == b
    {
        return true;
    }
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Whether the file `option` names can be written: not a directory, in a
/// directory that exists, and writable as it will be written. A regular file (or
/// nothing) that `replaced_beside` says is replaced whole (a temporary file beside
/// it, renamed into place: `--json`) needs a directory that takes a new file, or,
/// a file there, that file writable in place (as the results are then written);
/// any other file is opened for writing as it is (a file there is left
/// unchanged; one made to find out is removed).
pub(crate) fn check_writable(
    option: &str,
    path: &std::path::Path,
    replaced_beside: bool,
) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{option} {}: is a directory", path.display()));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "{option} {}: no directory {}",
            path.display(),
            dir.display()
        ));
    }
    let cannot = |e: std::io::Error| format!("{option} {}: cannot write it: {e}", path.display());
    match (path.symlink_metadata(), path.metadata()) {
        (Err(_), _) => {}
        // A regular file replaced whole: the directory is what must take a file.
        (Ok(link), Ok(_)) if replaced_beside && link.is_file() => {}
        // A file written as it is (or through a link): opened, left unchanged.
        (Ok(_), Ok(meta)) if meta.is_file() => {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map_err(cannot)?;
            return Ok(());
        }
        // A pipe or a device (`/dev/stderr`), whose open may wait for a reader, or
        // a link to nothing yet, whose target the write will make: not tried.
        (Ok(_), _) => return Ok(()),
    }
    // A new file where it will be made: a name of its own beside `path` when
    // `path` is replaced whole, else `path` itself (nothing is there).
    let probe = if replaced_beside {
        dir.join(format!(".dio-write-check-{}", std::process::id()))
    } else {
        path.to_owned()
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // A file the user may write in a directory that takes no new one: written
        // as it is, in place (as the results are then written).
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && path.is_file() => {
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .map(drop)
                .map_err(cannot)
        }
        Err(e) => Err(cannot(e)),
    }
}
