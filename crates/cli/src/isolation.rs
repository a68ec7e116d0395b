//! `dio bench isolation`: ticker lateness, CPU progress and IO throughput of a
//! current-thread caller runtime while each method reads.

use std::num::NonZeroUsize;
use std::time::Duration;

use clap::Args;
use dio_benches::isolation::{Isolation, Method, Sample, check_control_stalled};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::report::{emit, human};
use crate::{Common, Mode};

#[derive(Debug, Args)]
pub(crate) struct IsolationArgs {
    /// Range reads in flight at once (at least 1).
    #[arg(long, default_value = "4")]
    concurrency: NonZeroUsize,
    /// Size of the file read (reads are 1/16 of it: 8 MiB for the default).
    #[arg(long, default_value = "128M", value_parser = crate::parse_file_size)]
    file_size: u64,
    /// For tests of the benchmark itself: the control also blocks the caller's
    /// thread this long after each read (e.g. `100ms`), so it stalls by construction.
    #[arg(long, hide = true, value_parser = parse_duration)]
    control_stall: Option<Duration>,
    /// Run our default pool's threads at this nice value instead of the default
    /// (19 below the caller's: 19, the lowest), to measure the trade-off.
    #[arg(long)]
    nice: Option<i32>,
    /// Give our default pool this many blocking threads instead of the default (4
    /// per core, 8 to 64), to measure how many copies at once suit a busy caller.
    #[arg(long)]
    blocking_threads: Option<NonZeroUsize>,
    /// Let this many of our default pool's blocking threads copy at once (bulk
    /// jobs) instead of the default (half the cores, at least 1), to measure the
    /// trade-off.
    #[arg(long)]
    bulk_threads: Option<NonZeroUsize>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 100ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        other => Err(format!("unknown unit {other:?}: use ms or s")),
    }
}

/// One method's numbers, as printed and written.
#[derive(Debug, Serialize)]
struct IsoRow {
    method: String,
    ticks: usize,
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    lateness_max_ms: f64,
    /// CPU task rounds per second over the no-load run's.
    cpu_progress: f64,
    io_bytes_per_sec: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn run(
    args: &IsolationArgs,
    common: &Common,
    filter: Option<&str>,
) -> Result<(), String> {
    let methods = selected(filter)?;
    let duration = match common.mode() {
        Mode::Quick => Duration::from_millis(600),
        Mode::Default => Duration::from_secs(3),
        Mode::Full => Duration::from_secs(10),
    };
    let mut builder = io_executor::Builder::new()
        .name("dio-iso")
        .worker_threads(NonZeroUsize::new(2).expect("2"));
    if let Some(nice) = args.nice {
        builder = builder.nice(nice);
    }
    if let Some(threads) = args.blocking_threads {
        builder = builder.blocking_threads(threads);
    }
    if let Some(threads) = args.bulk_threads {
        builder = builder.bulk_threads(threads);
    }
    let dedicated = builder
        .build()
        .map_err(|e| format!("cannot start the dedicated pool: {e}"))?;
    // As the pool's own threads see it (Linux keeps a nice value per thread).
    let nice = dedicated
        .spawn_blocking(|| rustix::process::getpriority_process(None).ok())
        .join()
        .ok()
        .flatten()
        .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    let pool = format!(
        "our pool: {} workers, {} blocking threads ({} copying at once), nice {nice}",
        dedicated.num_workers(),
        dedicated.num_blocking_threads(),
        dedicated.num_bulk_threads()
    );
    let bar = if common.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(methods.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    // Every read in flight has a buffer of its own (and the control fills as many).
    let in_flight = (args.concurrency.get() as u64).saturating_mul(args.file_size / 16);
    dio_benches::check_free_memory(
        in_flight,
        &format!("{} reads in flight", args.concurrency),
        "--concurrency or --file-size",
    )?;
    bar.set_message("writing the file");
    let bench = Isolation::new(dedicated, args.file_size)?
        .with_control_stall(args.control_stall.unwrap_or_default());
    let mut samples: Vec<Sample> = Vec::new();
    for &method in &methods {
        crate::interrupt::check()?;
        bar.set_message(method.name());
        samples.push(bench.run(method, duration, args.concurrency.get())?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let by = |m: Method| samples.iter().find(|s| s.method == m);
    // `selected` always keeps these two.
    let missing = |m: Method| format!("{} did not run", m.name());
    let idle = by(Method::NoLoad).ok_or_else(|| missing(Method::NoLoad))?;
    let control = by(Method::StdInAsync).ok_or_else(|| missing(Method::StdInAsync))?;
    let rows: Vec<IsoRow> = samples
        .iter()
        .map(|s| IsoRow {
            method: s.method.name().to_owned(),
            ticks: s.ticks,
            lateness_p50_ms: ms(s.lateness_p50),
            lateness_p99_ms: ms(s.lateness_p99),
            lateness_max_ms: ms(s.lateness_max),
            cpu_progress: s.cpu_rounds_per_sec / idle.cpu_rounds_per_sec.max(1e-9),
            io_bytes_per_sec: s.io_bytes_per_sec,
        })
        .collect();
    let mut out = format!(
        "\nisolation: current-thread caller, 1 ms ticker + CPU task + {} x {} range reads, {:?} per method; {pool}\n",
        args.concurrency.get(),
        crate::report::size(args.file_size / 16),
        duration
    );
    out.push_str(&format!(
        "{:<24}{:>8}{:>10}{:>10}{:>10}{:>10}{:>14}\n",
        "method", "ticks", "p50 ms", "p99 ms", "max ms", "cpu", "io"
    ));
    for r in &rows {
        out.push_str(&format!(
            "{:<24}{:>8}{:>10.2}{:>10.2}{:>10.2}{:>9.2}x{:>14}\n",
            r.method,
            r.ticks,
            r.lateness_p50_ms,
            r.lateness_p99_ms,
            r.lateness_max_ms,
            r.cpu_progress,
            human(r.io_bytes_per_sec)
        ));
    }
    // The bars are the default pool's: a pool changed by these options is held to
    // them too, and named as what it is.
    let pool =
        if args.nice.is_some() || args.blocking_threads.is_some() || args.bulk_threads.is_some() {
            "pool as configured: see the header"
        } else {
            "default pool"
        };
    match verdict(&by, args.concurrency.get(), pool) {
        Some(line) => out.push_str(&line),
        None => out.push_str(
            "\n(no verdict: it compares ours_dedicated with the peers and one thread's \
             copy, and --filter left some of them out)\n",
        ),
    }
    emit(&out, common, "dio bench isolation", &rows, None)?;
    // A control that does not stall means the benchmark measures nothing.
    check_control_stalled(idle, control)
}

/// The methods `--filter` selects (all without it), always with the reference
/// (`no_load`, which every ratio divides by) and the control (which proves the
/// benchmark measures something).
fn selected(filter: Option<&str>) -> Result<Vec<Method>, String> {
    let Some(filter) = filter else {
        return Ok(Method::ALL.to_vec());
    };
    let always = [Method::NoLoad, Method::StdInAsync];
    let methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| always.contains(m) || m.name().contains(filter))
        .collect();
    if methods.len() == always.len() {
        let names: Vec<&str> = Method::ALL
            .iter()
            .filter(|m| !always.contains(m))
            .map(Method::name)
            .collect();
        return Err(format!(
            "--filter {filter:?} selects no method beyond no_load and the control, which \
             always run (the others: {})",
            names.join(", ")
        ));
    }
    Ok(methods)
}

/// The line that holds the default pool to the bars; `None` when a method
/// it compares with did not run.
fn verdict<'a>(
    by: &dyn Fn(Method) -> Option<&'a Sample>,
    in_flight: usize,
    pool: &str,
) -> Option<String> {
    let ours = by(Method::OursDedicated)?;
    let idle = by(Method::NoLoad)?;
    let control = by(Method::StdInAsync)?;
    let one_thread = by(Method::OneThread)?;
    let rotating = by(Method::OneThreadRotating)?;
    let mut best_peer = 0.0_f64;
    for peer in [Method::OpenDal, Method::ObjectStore, Method::TokioFs] {
        best_peer = best_peer.max(by(peer)?.io_bytes_per_sec);
    }
    Some(format!(
        "\nours_dedicated ({pool}): p99 {:+.2} ms vs no load (bar: within 0.5 ms), \
         {:.1}x better than the control, cpu {:.2}x (bar: 0.9x), io {:.2}x the best peer \
         (bar: 1.2x) and {:.2}x one thread's copy (bar: 0.75x; {:.2}x one thread's copy into \
         {in_flight} buffers in turn, the memory {in_flight} reads in flight write to)\n",
        ms(ours.lateness_p99) - ms(idle.lateness_p99),
        ms(control.lateness_p99) / ms(ours.lateness_p99).max(1e-9),
        ours.cpu_rounds_per_sec / idle.cpu_rounds_per_sec.max(1e-9),
        ours.io_bytes_per_sec / best_peer.max(1e-9),
        ours.io_bytes_per_sec / one_thread.io_bytes_per_sec.max(1e-9),
        ours.io_bytes_per_sec / rotating.io_bytes_per_sec.max(1e-9),
    ))
}
