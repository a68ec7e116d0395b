//! Timing one (workload, method) pair: a warm-up, then iterations until a time
//! budget is spent; the median is what is reported.

use std::time::{Duration, Instant};

use crate::Mode;

/// Iterations and their median duration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) iterations: usize,
    pub(crate) median: Duration,
}

/// The time budget per pair in each mode.
pub(crate) fn budget(mode: Mode) -> (Duration, usize) {
    match mode {
        Mode::Quick => (Duration::from_millis(60), 2),
        Mode::Default => (Duration::from_millis(350), 5),
        Mode::Full => (Duration::from_secs(3), 20),
    }
}

/// Runs `f` once to warm up, then until `budget` has passed and at least
/// `min_iterations` were timed.
pub(crate) fn time(mode: Mode, mut f: impl FnMut()) -> Timing {
    let (budget, min_iterations) = budget(mode);
    f();
    let start = Instant::now();
    let mut samples = Vec::new();
    while samples.len() < min_iterations || start.elapsed() < budget {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
        if samples.len() >= 100_000 {
            break;
        }
    }
    samples.sort();
    Timing {
        iterations: samples.len(),
        median: samples[samples.len() / 2],
    }
}
