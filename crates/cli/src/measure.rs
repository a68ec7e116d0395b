//! Timing (workload, method) pairs: a warm-up, then iterations until a time budget
//! is spent; the median is what is reported. The methods of one workload take turns
//! ([`time_each`]), so a change in the machine (another tenant, writeback, a
//! frequency step) lands on all of them instead of on whichever ran at that moment.
//! Each burst's CPU time is read too ([`CpuClock`]), for the CPU each method spends
//! per iteration.

use std::time::{Duration, Instant};

use crate::Mode;
use crate::cpu::CpuClock;

/// Iterations, their median duration, and the client CPU time they took on average.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) iterations: usize,
    pub(crate) median: Duration,
    /// `None` where the CPU clock cannot be read.
    pub(crate) cpu_per_iteration: Option<Duration>,
}

/// The time budget per pair in each mode.
pub(crate) fn budget(mode: Mode) -> (Duration, usize) {
    match mode {
        Mode::Quick => (Duration::from_millis(60), 2),
        Mode::Default => (Duration::from_millis(350), 5),
        Mode::Full => (Duration::from_secs(3), 20),
    }
}

/// How many turns each method of a workload gets in [`time_each`].
const TURNS: u32 = 5;

/// Times `n` methods of one workload side by side: `f(i)` runs method `i` once.
/// Each method is warmed up, then the methods take [`TURNS`] turns in order, each
/// turn a burst of `budget / TURNS` (at least one iteration), so every method's
/// samples are spread over the whole measurement while a burst keeps its own
/// caches warm. `cpu` is read before and after each burst. Returns one timing per
/// method, in order.
pub(crate) fn time_each(
    mode: Mode,
    cpu: &CpuClock,
    n: usize,
    mut f: impl FnMut(usize),
) -> Vec<Timing> {
    let (budget, min_iterations) = budget(mode);
    let burst = budget / TURNS;
    let per_turn = min_iterations.div_ceil(TURNS as usize).max(1);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut cpu_spent: Vec<Option<Duration>> = vec![Some(Duration::ZERO); n];
    for i in 0..n {
        f(i);
    }
    for _ in 0..TURNS {
        for (i, (taken, spent)) in samples.iter_mut().zip(&mut cpu_spent).enumerate() {
            let cpu_before = cpu.now();
            let start = Instant::now();
            let mut count = 0;
            while count < per_turn || start.elapsed() < burst {
                let t = Instant::now();
                f(i);
                taken.push(t.elapsed());
                count += 1;
                if taken.len() >= 100_000 {
                    break;
                }
            }
            *spent = spent
                .zip(cpu_before.zip(cpu.now()))
                .map(|(spent, (before, after))| spent + after.saturating_sub(before));
        }
    }
    samples
        .into_iter()
        .zip(cpu_spent)
        .map(|(samples, cpu)| summary(samples, cpu))
        .collect()
}

/// The number of samples, their median, and the CPU time per sample.
fn summary(mut samples: Vec<Duration>, cpu: Option<Duration>) -> Timing {
    samples.sort();
    let iterations = samples.len();
    Timing {
        iterations,
        median: samples[iterations / 2],
        cpu_per_iteration: cpu.map(|c| c / iterations as u32),
    }
}
