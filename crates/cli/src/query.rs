//! `dio bench query`: the query engine's workload. A TPC-H-like parquet dataset on
//! each suite's storage, TPC-H-shaped queries that read a subset of the columns,
//! run by DataFusion through its default store, our registration and
//! `IoObjectStore` around its default store: time, ratio to DataFusion's default,
//! bytes and requests; then the isolation view (ticker lateness of a caller's
//! runtime while the queries run through each path).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use dio_benches::query::{Fixture, Lateness, Path, Query, Scale};
use dio_benches::s3::Endpoint;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::plot::Panel;
use crate::{Common, Mode};

#[derive(Debug, Args)]
pub(crate) struct QueryArgs {
    /// Suites to run without `--uri`: `fs` (a temp directory), `mem-s3` (an S3
    /// endpoint inside this process). Default: both.
    #[arg(long, value_delimiter = ',', default_values = ["fs", "mem-s3"], conflicts_with = "uri")]
    suite: Vec<QuerySuite>,
    /// Run against this S3 endpoint instead, e.g.
    /// `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`
    /// (our client takes credentials from AWS's provider chain, object_store's from
    /// its own search). The dataset is uploaded under the prefix and removed
    /// afterwards.
    #[arg(long)]
    uri: Option<String>,
    /// Skip the isolation view.
    #[arg(long)]
    no_isolation: bool,
}

/// Where the dataset lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum QuerySuite {
    /// A temp directory.
    Fs,
    /// An S3 endpoint inside the process.
    MemS3,
    /// The endpoint of `--uri`.
    #[value(skip)]
    S3,
}

impl QuerySuite {
    fn name(self) -> &'static str {
        match self {
            QuerySuite::Fs => "fs",
            QuerySuite::MemS3 => "mem_s3",
            QuerySuite::S3 => "s3",
        }
    }
}

/// One (suite, query, path) measurement.
#[derive(Debug, Clone, Serialize)]
struct QueryRow {
    suite: QuerySuite,
    query: &'static str,
    path: &'static str,
    iterations: usize,
    median_seconds: f64,
    /// DataFusion's default store's median time over this path's: above 1 is faster.
    ratio_to_datafusion: f64,
    bytes_per_run: u64,
    requests_per_run: u64,
}

/// One (suite, path) isolation run.
#[derive(Debug, Clone, Serialize)]
struct IsoRow {
    suite: QuerySuite,
    path: &'static str,
    ticks: usize,
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    lateness_max_ms: f64,
}

/// A bar of the issue, and whether this run met it.
#[derive(Debug, Clone, Serialize)]
struct BarCheck {
    suite: QuerySuite,
    bar: String,
    /// The worst ratio over the queries.
    worst: f64,
    target: f64,
    holds: bool,
}

#[derive(Debug, Serialize)]
struct Dataset {
    suite: QuerySuite,
    files: usize,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    datasets: Vec<Dataset>,
    queries: Vec<QueryRow>,
    isolation: Vec<IsoRow>,
    bars: Vec<BarCheck>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The dedicated pool our paths use: 2 workers, 16 blocking threads.
fn dedicated() -> Result<io_executor::Executor, String> {
    io_executor::Builder::new()
        .name("dio-query")
        .worker_threads(NonZeroUsize::new(2).expect("2"))
        .blocking_threads(NonZeroUsize::new(16).expect("16"))
        .build()
        .map_err(|e| format!("cannot start the dedicated pool: {e}"))
}

pub(crate) fn run(args: &QueryArgs, common: &Common, filter: Option<&str>) -> Result<(), String> {
    let mode = common.mode();
    let scale = match mode {
        Mode::Quick => Scale::QUICK,
        Mode::Default | Mode::Full => Scale::DEFAULT,
    };
    let queries: Vec<Query> = Query::ALL
        .into_iter()
        .filter(|q| filter.is_none_or(|f| q.name().contains(f)))
        .collect();
    if queries.is_empty() {
        return Err(format!(
            "no query matches --filter {:?}",
            filter.unwrap_or("")
        ));
    }
    let endpoint = match &args.uri {
        Some(uri) => Some(Endpoint::from_uri(uri).map_err(|e| {
            format!(
                "--uri: expected s3://bucket[/prefix][?endpoint=http(s)://host:port&region=...]: {e}"
            )
        })?),
        None => None,
    };
    let suites: Vec<QuerySuite> = if endpoint.is_some() {
        vec![QuerySuite::S3]
    } else {
        crate::once_each(args.suite.clone())
    };
    let executor = dedicated()?;
    let bar = if common.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::new((suites.len() * queries.len() * Path::ALL.len()) as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let mut report = Report {
        datasets: Vec::new(),
        queries: Vec::new(),
        isolation: Vec::new(),
        bars: Vec::new(),
    };
    // What an S3 run left in the bucket, or a suite's failure after others
    // finished: said after the report, and the run fails.
    let mut failure = None;
    for suite in suites {
        // A suite that fails (its dataset not made, a query in error or giving
        // another result) ends the run, but the suites before it are reported:
        // their results are not thrown away. An interrupted run reports nothing.
        // What the report held before this suite: a suite that fails is not
        // reported half measured.
        let before = (
            report.datasets.len(),
            report.queries.len(),
            report.isolation.len(),
        );
        let ran = (|| -> Result<(), String> {
            bar.set_message(format!("{}: generating the dataset", suite.name()));
            let mut fixture = match suite {
                QuerySuite::Fs => Fixture::fs(scale, executor.clone()),
                QuerySuite::MemS3 => Fixture::mem_s3(scale, executor.clone()),
                QuerySuite::S3 => Fixture::s3(
                    endpoint.clone().expect("--uri was given"),
                    scale,
                    executor.clone(),
                ),
            }?;
            let (files, bytes) = fixture.dataset();
            report.datasets.push(Dataset {
                suite,
                files,
                bytes,
            });
            for &query in &queries {
                bar.set_message(format!("{}/{query}", suite.name()));
                report
                    .queries
                    .extend(measure(&fixture, suite, query, mode)?);
                bar.inc(Path::ALL.len() as u64);
            }
            if !args.no_isolation {
                let duration = match mode {
                    Mode::Quick => Duration::from_millis(200),
                    Mode::Default => Duration::from_secs(3),
                    Mode::Full => Duration::from_secs(10),
                };
                for path in Path::ALL {
                    crate::interrupt::check()?;
                    bar.set_message(format!("{}: isolation through {path}", suite.name()));
                    let Lateness {
                        ticks,
                        p50,
                        p99,
                        max,
                    } = fixture.isolation(path, &queries, duration)?;
                    report.isolation.push(IsoRow {
                        suite,
                        path: path.name(),
                        ticks,
                        lateness_p50_ms: ms(p50),
                        lateness_p99_ms: ms(p99),
                        lateness_max_ms: ms(max),
                    });
                }
            }
            report.bars.extend(bars(suite, &report.queries));
            if let Err(e) = fixture.remove() {
                crate::report::add_failure(&mut failure, e);
            }
            Ok(())
        })();
        if let Err(e) = ran {
            report.datasets.truncate(before.0);
            report.queries.truncate(before.1);
            report.isolation.truncate(before.2);
            if report.queries.is_empty() || crate::interrupt::happened() {
                return Err(e);
            }
            crate::report::add_failure(&mut failure, e);
            break;
        }
    }
    bar.finish_and_clear();
    let chart = || panels(&report);
    let emitted = crate::report::emit(
        &table(&report),
        common,
        "dio bench query",
        &report,
        Some(&chart),
    );
    crate::report::both(emitted, failure)
}

/// Times `query` through every path, round-robin (so a change in the machine's
/// load hits every path alike), after one run per path that counts its IO and
/// checks that it gives DataFusion's result.
fn measure(
    fixture: &Fixture,
    suite: QuerySuite,
    query: Query,
    mode: Mode,
) -> Result<Vec<QueryRow>, String> {
    let mut counted = Vec::new();
    for path in Path::ALL {
        crate::interrupt::check()?;
        let outcome = fixture.run(path, query)?;
        if let Some(first) = counted
            .first()
            .map(|o: &dio_benches::query::Outcome| &o.result)
            && outcome.result != *first
        {
            return Err(format!(
                "{query} through {path} differs from DataFusion's default:\n{}\nvs\n{first}",
                outcome.result
            ));
        }
        counted.push(outcome);
    }
    let (budget, min_iterations) = crate::measure::budget(mode);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); Path::ALL.len()];
    let start = Instant::now();
    let mut rng = rand::rng();
    let mut order: Vec<usize> = (0..Path::ALL.len()).collect();
    while samples[0].len() < min_iterations || start.elapsed() < budget * Path::ALL.len() as u32 {
        // Each round in a new order: in a fixed one, each path would always run
        // after the same other, in the state it leaves (see `measure::time_each`).
        rand::seq::SliceRandom::shuffle(&mut order[..], &mut rng);
        for &i in &order {
            let path = Path::ALL[i];
            crate::interrupt::check()?;
            let t = Instant::now();
            fixture.run(path, query)?;
            samples[i].push(t.elapsed());
        }
        if samples[0].len() >= 1000 {
            break;
        }
    }
    let medians: Vec<Duration> = samples
        .iter_mut()
        .map(|s| crate::measure::median(s.clone()))
        .collect();
    let base = medians[0].as_secs_f64();
    Ok(Path::ALL
        .into_iter()
        .enumerate()
        .map(|(i, path)| QueryRow {
            suite,
            query: query.name(),
            path: path.name(),
            iterations: samples[i].len(),
            median_seconds: medians[i].as_secs_f64(),
            ratio_to_datafusion: base / medians[i].as_secs_f64().max(1e-12),
            bytes_per_run: counted[i].bytes,
            requests_per_run: counted[i].requests,
        })
        .collect())
}

/// The bars for `suite`: on fs, ours at least 1.0x DataFusion's default on
/// every query; on S3, at least 1.2x on the column-subset queries (all of them);
/// `IoObjectStore` at most 5% behind its inner store.
fn bars(suite: QuerySuite, rows: &[QueryRow]) -> Vec<BarCheck> {
    let worst = |path: Path| {
        rows.iter()
            .filter(|r| r.suite == suite && r.path == path.name())
            .map(|r| r.ratio_to_datafusion)
            .fold(f64::INFINITY, f64::min)
    };
    let ours_target = if suite == QuerySuite::Fs { 1.0 } else { 1.2 };
    // A `--filter` that left some queries out judges the bar on those run only,
    // and says which.
    let mut run: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.suite == suite) {
        if !run.contains(&r.query) {
            run.push(r.query);
        }
    }
    let every = if run.len() == Query::ALL.len() {
        "every query".to_owned()
    } else {
        format!(
            "the queries run ({}; {} of {} left out by --filter)",
            run.join(", "),
            Query::ALL.len() - run.len(),
            Query::ALL.len()
        )
    };
    let check = |bar: String, worst: f64, target: f64| BarCheck {
        suite,
        bar,
        worst,
        target,
        holds: worst >= target,
    };
    vec![
        check(
            format!("ours >= {ours_target:.1}x datafusion on {every}"),
            worst(Path::Ours),
            ours_target,
        ),
        check(
            format!("io_object_store at most 5% behind its inner store (>= 0.95x) on {every}"),
            worst(Path::IoObjectStore),
            0.95,
        ),
    ]
}

/// The tables: per suite, time and ratio, then bytes and requests, then the
/// isolation view and the bars.
fn table(report: &Report) -> String {
    let mut out = String::new();
    let mut suites: Vec<QuerySuite> = report.queries.iter().map(|r| r.suite).collect();
    suites.dedup();
    let paths = Path::ALL.map(|p| p.name());
    for suite in suites {
        let rows: Vec<&QueryRow> = report.queries.iter().filter(|r| r.suite == suite).collect();
        let mut queries: Vec<&str> = rows.iter().map(|r| r.query).collect();
        queries.dedup();
        if let Some(d) = report.datasets.iter().find(|d| d.suite == suite) {
            out.push_str(&format!(
                "\n{}: {} files, {:.0} MiB of parquet\n",
                suite.name(),
                d.files,
                mib(d.bytes)
            ));
        }
        out.push_str("median time per query (x DataFusion's default: above 1 is faster)\n");
        out.push_str(&format!("{:<22}", "query"));
        for p in paths {
            out.push_str(&format!("{p:>22}"));
        }
        out.push('\n');
        let cell = |q: &str, p: &str| rows.iter().find(|r| r.query == q && r.path == p);
        for q in &queries {
            out.push_str(&format!("{q:<22}"));
            for p in paths {
                let text = cell(q, p).map_or_else(
                    || "-".to_owned(),
                    |r| {
                        format!(
                            "{:.1} ms {:.2}x",
                            r.median_seconds * 1e3,
                            r.ratio_to_datafusion
                        )
                    },
                );
                out.push_str(&format!("{text:>22}"));
            }
            out.push('\n');
        }
        out.push_str("IO per run: MiB read / requests (fs: opens and reads; S3: HTTP requests)\n");
        for q in &queries {
            out.push_str(&format!("{q:<22}"));
            for p in paths {
                let text = cell(q, p).map_or_else(
                    || "-".to_owned(),
                    |r| format!("{:.1} / {}", mib(r.bytes_per_run), r.requests_per_run),
                );
                out.push_str(&format!("{text:>22}"));
            }
            out.push('\n');
        }
        let iso: Vec<&IsoRow> = report
            .isolation
            .iter()
            .filter(|r| r.suite == suite)
            .collect();
        if !iso.is_empty() {
            out.push_str(
                "isolation: the queries on a current-thread caller runtime, its 1 ms ticker's lateness\n",
            );
            out.push_str(&format!(
                "{:<22}{:>8}{:>10}{:>10}{:>10}\n",
                "path", "ticks", "p50 ms", "p99 ms", "max ms"
            ));
            for r in iso {
                out.push_str(&format!(
                    "{:<22}{:>8}{:>10.2}{:>10.2}{:>10.2}\n",
                    r.path, r.ticks, r.lateness_p50_ms, r.lateness_p99_ms, r.lateness_max_ms
                ));
            }
        }
        for b in report.bars.iter().filter(|b| b.suite == suite) {
            let verdict = if b.holds {
                "holds".to_owned()
            } else {
                format!("missed by {:.0}%", (1.0 - b.worst / b.target) * 100.0)
            };
            out.push_str(&format!(
                "bar: {}: worst {:.2}x, {verdict}\n",
                b.bar, b.worst
            ));
        }
    }
    out
}

/// The chart: per suite, each path's speed-up over DataFusion's default, per query.
fn panels(report: &Report) -> Vec<Panel> {
    let mut suites: Vec<QuerySuite> = report.queries.iter().map(|r| r.suite).collect();
    suites.dedup();
    suites
        .into_iter()
        .map(|suite| Panel {
            title: format!(
                "{}: query speed-up over DataFusion's default store",
                suite.name()
            ),
            y_desc: "datafusion time / time".into(),
            baseline: true,
            bars: report
                .queries
                .iter()
                .filter(|r| r.suite == suite)
                .map(|r| (r.query.to_owned(), r.path.to_owned(), r.ratio_to_datafusion))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(query: Query, path: Path, ratio: f64) -> QueryRow {
        QueryRow {
            suite: QuerySuite::Fs,
            query: query.name(),
            path: path.name(),
            iterations: 3,
            median_seconds: 1.0,
            ratio_to_datafusion: ratio,
            bytes_per_run: 0,
            requests_per_run: 0,
        }
    }

    /// A bar judged on the queries a `--filter` let run says so, and which: it
    /// never claims every query.
    #[test]
    fn a_bar_judged_on_some_queries_names_them() {
        let rows: Vec<QueryRow> = [Query::Q6, Query::Q12]
            .into_iter()
            .flat_map(|q| [row(q, Path::Ours, 1.3), row(q, Path::IoObjectStore, 1.0)])
            .collect();
        let checks = bars(QuerySuite::Fs, &rows);
        for check in &checks {
            assert!(!check.bar.contains("every query"), "{}", check.bar);
            assert!(
                check
                    .bar
                    .contains("q6_revenue_change, q12_ship_modes_join; 2 of 4 left out"),
                "{}",
                check.bar
            );
            assert!(check.holds, "{}", check.bar);
        }
        let all: Vec<QueryRow> = Query::ALL
            .into_iter()
            .map(|q| row(q, Path::Ours, 0.9))
            .collect();
        let checks = bars(QuerySuite::Fs, &all);
        assert!(
            checks[0].bar.contains("on every query"),
            "{}",
            checks[0].bar
        );
        assert!(!checks[0].holds);
    }
}
