//! `dio bench`: every (workload, method) pair of each suite, timed.

use dio_benches::fs::{self, Sizes, Workload};
use dio_benches::mem_s3::MemS3;
use dio_benches::{memory, s3, storm};
use indicatif::{ProgressBar, ProgressStyle};
use io_executor::Executor;

use crate::cpu::CpuClock;
use crate::report::Row;
use crate::{Mode, Suite, measure};

/// What to run.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    pub(crate) filter: Option<String>,
    pub(crate) suites: Vec<Suite>,
    pub(crate) uri: Option<String>,
    pub(crate) size: u64,
    pub(crate) progress: bool,
}

impl Plan {
    fn wants(&self, workload: Workload) -> bool {
        self.wants_name(&workload.name())
    }

    fn wants_name(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

/// The dedicated pool our methods use: 2 workers, 16 blocking threads.
fn dedicated() -> Result<Executor, String> {
    dio_benches::dedicated_pool("dio-bench")
}

/// What a run measured: one row per pair, and the lines that say what against.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) rows: Vec<Row>,
    pub(crate) header: Vec<String>,
    /// What went wrong after the measurements (the S3 objects left behind): said
    /// after the table, and the run fails.
    pub(crate) failure: Option<String>,
}

/// Runs the plan.
pub(crate) fn run(plan: &Plan) -> Result<Outcome, String> {
    let sizes = Sizes { small: plan.size };
    let executor = dedicated()?;
    let suites: Vec<Suite> = if plan.uri.is_some() {
        vec![Suite::S3]
    } else {
        plan.suites.clone()
    };
    let mut pairs = Vec::new();
    let storms: Vec<storm::Storm> = storm::Storm::ALL
        .into_iter()
        .filter(|s| plan.wants_name(&s.name()))
        .collect();
    for suite in &suites {
        let workloads: &[Workload] = match suite {
            Suite::Fs => &fs::Workload::ALL,
            Suite::Memory => &memory::WORKLOADS,
            Suite::S3 => &s3::WORKLOADS,
            Suite::Storm => {
                pairs.extend(
                    storms
                        .iter()
                        .map(|_| (Suite::Storm, Workload::Read, storm::Method::ALL.len())),
                );
                continue;
            }
        };
        let methods = match suite {
            Suite::Fs => fs::Method::ALL.len(),
            Suite::Memory => memory::Method::ALL.len(),
            Suite::S3 | Suite::Storm => s3::Method::ALL.len(),
        };
        for &w in workloads.iter().filter(|w| plan.wants(**w)) {
            pairs.push((*suite, w, methods));
        }
    }
    if pairs.is_empty() {
        return Err(format!(
            "no workload matches --filter {:?}",
            plan.filter.as_deref().unwrap_or("")
        ));
    }
    let total: usize = pairs.iter().map(|(_, _, m)| m).sum();
    let bar = if plan.progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    let mut failure = None;
    // Runs at other sizes have the same workload names: the size says which.
    let mut header = vec![format!(
        "objects: {} small, {} big (--size)",
        crate::report::size(sizes.small),
        crate::report::size(sizes.big())
    )];
    // The whole process is the client, but in the S3 suite against the in-process
    // server.
    let cpu = CpuClock::process();
    for suite in suites {
        // A suite that fails (its set-up refused: too little disk or memory for
        // it) ends the run, but the suites before it are reported: their results
        // are not thrown away. An interrupted run reports nothing.
        let ran = (|| -> Result<(), String> {
            let workloads: Vec<Workload> = pairs
                .iter()
                .filter(|(s, _, _)| *s == suite)
                .map(|(_, w, _)| *w)
                .collect();
            if workloads.is_empty() {
                return Ok(());
            }
            bar.set_message(format!("{suite:?}: preparing"));
            match suite {
                Suite::Storm => {
                    let fixture = storm::Fixture::new(executor.clone(), plan.size * 64, &storms)?;
                    for &s in &storms {
                        let offsets = fixture.offsets(s);
                        let methods = storm::Method::ALL;
                        bar.set_message(format!("storm/{s}"));
                        rows.extend(timed_rows(
                            (plan.mode, &cpu),
                            (suite, s, s.bytes()),
                            &methods,
                            storm::Method::name,
                            |m| fixture.check(m, s, &offsets),
                            |m| fixture.run(m, s, &offsets),
                        )?);
                        bar.inc(methods.len() as u64);
                    }
                }
                Suite::Fs => {
                    let fixture = fs::Fixture::with_sizes(executor.clone(), sizes)?;
                    for w in workloads {
                        let methods = fs::Method::ALL;
                        bar.set_message(format!("fs/{w}"));
                        rows.extend(timed_rows(
                            (plan.mode, &cpu),
                            (suite, w, sizes.bytes(w)),
                            &methods,
                            fs::Method::name,
                            |m| fixture.check(m, w),
                            |m| fixture.run(m, w),
                        )?);
                        bar.inc(methods.len() as u64);
                    }
                }
                Suite::Memory => {
                    let fixture = memory::Fixture::new(executor.clone(), sizes)?;
                    for w in workloads {
                        let methods = memory::Method::ALL;
                        bar.set_message(format!("memory/{w}"));
                        rows.extend(timed_rows(
                            (plan.mode, &cpu),
                            (suite, w, sizes.bytes(w)),
                            &methods,
                            memory::Method::name,
                            |m| fixture.check(m, w),
                            |m| fixture.run(m, w),
                        )?);
                        bar.inc(methods.len() as u64);
                    }
                }
                Suite::S3 => {
                    // Without `--uri`: the in-process endpoint, whose threads' CPU is
                    // the server's, not the client's.
                    let (endpoint, _server, cpu) = match plan.uri.as_deref() {
                        Some(uri) => (
                            s3::Endpoint::from_uri(uri).map_err(|e| {
                                format!(
                                    "--uri: expected s3://bucket[/prefix][?endpoint=http(s)://host:port&region=...]: {e}"
                                )
                            })?,
                            None,
                            cpu.clone(),
                        ),
                        None => {
                            let server = MemS3::start("bench", 2)?;
                            header.push(
                                "S3 server: in process, in memory (2 threads, their CPU time not counted as the client's); --uri s3://... for a real one"
                                    .to_owned(),
                            );
                            let without_server = CpuClock::without_threads(MemS3::THREAD_NAME);
                            (s3::Endpoint::in_process(&server), Some(server), without_server)
                        }
                    };
                    let mut fixture = s3::Fixture::new(endpoint, executor.clone(), sizes)?;
                    header.extend(fixture.describe());
                    for w in workloads {
                        let methods: Vec<s3::Method> = s3::Method::ALL
                            .into_iter()
                            .filter(|&m| fixture.supports(m, w))
                            .collect();
                        bar.set_message(format!("s3/{w}"));
                        rows.extend(timed_rows(
                            (plan.mode, &cpu),
                            (suite, w, sizes.bytes(w)),
                            &methods,
                            s3::Method::name,
                            |m| fixture.check(m, w),
                            |m| fixture.run(m, w),
                        )?);
                        bar.inc(s3::Method::ALL.len() as u64);
                    }
                    if let Err(e) = fixture.remove() {
                        crate::report::add_failure(&mut failure, e);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = ran {
            if rows.is_empty() || crate::interrupt::happened() {
                return Err(e);
            }
            crate::report::add_failure(&mut failure, e);
            break;
        }
    }
    bar.finish_and_clear();
    crate::report::add_ratios(&mut rows);
    header.extend(crate::report::prices(&rows));
    Ok(Outcome {
        rows,
        header,
        failure,
    })
}

/// A row per method of one workload (`suite`, the workload, its bytes per
/// iteration): each method's bytes checked first, untimed, then every method
/// timed side by side.
fn timed_rows<M: Copy>(
    (mode, cpu): (Mode, &CpuClock),
    (suite, workload, bytes): (Suite, impl std::fmt::Display, u64),
    methods: &[M],
    name: fn(&M) -> &'static str,
    check: impl Fn(M) -> Result<(), String>,
    run: impl Fn(M) -> Result<u64, String>,
) -> Result<Vec<Row>, String> {
    for &m in methods {
        check(m)?;
    }
    let timings = measure::time_each(mode, cpu, methods.len(), |i| run(methods[i]).map(drop))?;
    let workload = workload.to_string();
    Ok(methods
        .iter()
        .zip(timings)
        .map(|(m, t)| Row::new(suite, &workload, name(m), bytes, t))
        .collect())
}
