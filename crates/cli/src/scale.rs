//! `dio bench scale`: how throughput and per-read latency grow with the number of
//! outstanding reads (1 to 256, 64 KiB each) and with the size of each read (4 KiB
//! to 64 MiB, 4 outstanding), ours beside the peers, on one cached file.

use std::time::Duration;

use clap::Args;
use dio_benches::scale::{Method, Point, ScaleBench, dedicated};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::plot::Panel;
use crate::report::{emit, human};
use crate::{Common, Mode};

#[derive(Debug, Args)]
pub(crate) struct ScaleArgs {
    /// Size of the file read (at least the largest read); `--quick` uses at most
    /// 32M of it, as its header says.
    #[arg(long, default_value = "256M", value_parser = crate::parse_file_size)]
    file_size: u64,
}

/// One point, as printed and written.
#[derive(Debug, Serialize)]
struct ScaleRow {
    /// `concurrency` (64 KiB reads) or `size` (4 outstanding).
    sweep: &'static str,
    method: &'static str,
    concurrency: usize,
    request_bytes: u64,
    requests: u64,
    bytes_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn size_name(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{}M", bytes >> 20)
    } else {
        format!("{}K", bytes >> 10)
    }
}

fn latency(us: f64) -> String {
    if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} us")
    }
}

pub(crate) fn run(args: &ScaleArgs, common: &Common, filter: Option<&str>) -> Result<(), String> {
    let methods: Vec<Method> = Method::ALL
        .into_iter()
        .filter(|m| filter.is_none_or(|f| m.name().contains(f)))
        .collect();
    if methods.is_empty() {
        let names: Vec<&str> = Method::ALL.iter().map(Method::name).collect();
        return Err(format!(
            "--filter {:?} matches no scale method (they are: {})",
            filter.unwrap_or_default(),
            names.join(", ")
        ));
    }
    let mode = common.mode();
    let (budget, concurrency, sizes): (Duration, &[usize], &[u64]) = match mode {
        Mode::Quick => (
            Duration::from_millis(60),
            &[1, 16, 256],
            &[4 << 10, 1 << 20, 16 << 20],
        ),
        Mode::Default => (
            Duration::from_millis(500),
            &[1, 2, 4, 8, 16, 32, 64, 128, 256],
            &[4 << 10, 64 << 10, 1 << 20, 8 << 20, 64 << 20],
        ),
        Mode::Full => (
            Duration::from_secs(2),
            &[1, 2, 4, 8, 16, 32, 64, 128, 256],
            &[
                4 << 10,
                16 << 10,
                64 << 10,
                256 << 10,
                1 << 20,
                4 << 20,
                16 << 20,
                64 << 20,
            ],
        ),
    };
    let file_size = match mode {
        Mode::Quick => args.file_size.min(32 << 20),
        _ => args.file_size,
    };
    if let Some(&largest) = sizes.iter().filter(|&&s| s > file_size).max() {
        return Err(format!(
            "--file-size {file_size} is smaller than the largest read ({largest} bytes)"
        ));
    }
    let points = (concurrency.len() + sizes.len()) * methods.len();
    let bar = if common.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(points as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    bar.set_message("writing the file");
    let bench = ScaleBench::new(dedicated()?, file_size)?;
    let mut rows: Vec<ScaleRow> = Vec::new();
    let mut record = |sweep: &'static str, p: Point| {
        rows.push(ScaleRow {
            sweep,
            method: p.method.name(),
            concurrency: p.concurrency,
            request_bytes: p.request,
            requests: p.requests,
            bytes_per_sec: p.bytes_per_sec,
            p50_us: us(p.p50),
            p99_us: us(p.p99),
        });
    };
    // Each point's methods in a new order: in a fixed one, each would always run
    // after the same other, in the state it leaves (see `measure::time_each`).
    let mut rng = rand::rng();
    let mut shuffled = |methods: &[Method]| {
        let mut order = methods.to_vec();
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut rng);
        order
    };
    for &c in concurrency {
        for method in shuffled(&methods) {
            crate::interrupt::check()?;
            bar.set_message(format!("{method}, {c} outstanding"));
            record("concurrency", bench.run(method, c, 64 << 10, budget)?);
            bar.inc(1);
        }
    }
    for &size in sizes {
        for method in shuffled(&methods) {
            crate::interrupt::check()?;
            bar.set_message(format!("{method}, {} reads", size_name(size)));
            record("size", bench.run(method, 4, size, budget)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    // Back in the methods' order (stable: each method's points in sweep order), so
    // that the charts give each method the same colour and legend place every run.
    rows.sort_by_key(|r| methods.iter().position(|m| m.name() == r.method));

    let mut out = format!(
        "\nscale: random range reads of a {} MiB cached file from a 2-worker caller runtime, {:?} per point\n",
        bench.file_size() >> 20,
        budget
    );
    for (sweep, title, key) in [
        (
            "concurrency",
            "64 KiB reads, by reads outstanding",
            "outstanding",
        ),
        ("size", "4 reads outstanding, by read size", "read size"),
    ] {
        out.push_str(&format!("\n{title}: throughput / p99 latency per read\n"));
        out.push_str(&format!("{key:<14}"));
        for m in &methods {
            out.push_str(&format!("{:>26}", m.name()));
        }
        out.push('\n');
        let keys: Vec<String> = match sweep {
            "concurrency" => concurrency.iter().map(|c| c.to_string()).collect(),
            _ => sizes.iter().map(|s| size_name(*s)).collect(),
        };
        for k in &keys {
            out.push_str(&format!("{k:<14}"));
            for m in &methods {
                let row = rows.iter().find(|r| {
                    r.sweep == sweep
                        && r.method == m.name()
                        && match sweep {
                            "concurrency" => r.concurrency.to_string() == *k,
                            _ => size_name(r.request_bytes) == *k,
                        }
                });
                let cell = row.map_or_else(String::new, |r| {
                    format!("{} / {}", human(r.bytes_per_sec), latency(r.p99_us))
                });
                out.push_str(&format!("{cell:>26}"));
            }
            out.push('\n');
        }
    }
    emit(
        &out,
        common,
        "dio bench scale",
        &rows,
        Some(&|| panels(&rows)),
    )
}

/// Four panels: throughput and p99 latency, by reads outstanding and by read size.
fn panels(rows: &[ScaleRow]) -> Vec<Panel> {
    let panel = |sweep: &str, title: &str, y_desc: &str, value: &dyn Fn(&ScaleRow) -> f64| Panel {
        title: title.to_owned(),
        y_desc: y_desc.to_owned(),
        baseline: false,
        bars: rows
            .iter()
            .filter(|r| r.sweep == sweep)
            .map(|r| {
                let x = match sweep {
                    "concurrency" => format!("{} out", r.concurrency),
                    _ => size_name(r.request_bytes),
                };
                (x, r.method.to_owned(), value(r))
            })
            .collect(),
    };
    let gib = |r: &ScaleRow| r.bytes_per_sec / (1u64 << 30) as f64;
    let ms = |r: &ScaleRow| r.p99_us / 1e3;
    vec![
        panel(
            "concurrency",
            "64 KiB random reads: throughput by reads outstanding",
            "GiB/s",
            &gib,
        ),
        panel(
            "concurrency",
            "64 KiB random reads: p99 latency per read by reads outstanding",
            "ms",
            &ms,
        ),
        panel(
            "size",
            "4 reads outstanding: throughput by read size",
            "GiB/s",
            &gib,
        ),
        panel(
            "size",
            "4 reads outstanding: p99 latency per read by read size",
            "ms",
            &ms,
        ),
    ]
}
