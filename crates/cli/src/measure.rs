//! Timing (workload, method) pairs: a warm-up, then iterations until a time budget
//! is spent; the median is what is reported. The methods of one workload take turns
//! ([`time_each`]), so a change in the machine (another tenant, writeback, a
//! frequency step) lands on all of them instead of on whichever ran at that moment.
//! Each turn takes the methods in a new random order, so no method always follows
//! the same one: what a burst leaves behind (an idle core) lands on a method chosen
//! at random each turn, not always on the same one.
//! Each burst's CPU time is read too ([`CpuClock`]), for the CPU each method spends
//! per iteration.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

use crate::cpu::CpuClock;
use crate::{Mode, interrupt};

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

/// At most this many samples per method (the memory of fast operations), an
/// equal share of them per turn: a method fast enough to reach the bound in its
/// first burst would otherwise take all its samples there, and none of its other
/// turns would count.
const MAX_SAMPLES: usize = 100_000;

/// Times `n` methods of one workload side by side: `f(i)` runs method `i` once.
/// Each method is warmed up, then the methods take [`TURNS`] turns, each turn a
/// burst of `budget / TURNS` (at least one iteration), so every method's samples are
/// spread over the whole measurement while a burst keeps its own caches warm.
/// `cpu` is read before and after each burst. Returns one timing per method, in
/// order.
///
/// Every turn shuffles the order of the methods. In a fixed order (or one fixed
/// shuffle) each method always follows the same one, and the machine state that one
/// leaves lasts into the next burst. On a 2-core Intel Xeon VM, the same dedicated
/// pool doing split 8 MiB reads ran 1.42x-1.48x `pread` on the calling thread when
/// its bursts came right after that single-threaded `pread` loop's, and 1.70x-1.83x
/// one burst later. Its first reads after the one-threaded burst took twice as
/// long, and the cost faded over about 20 ms, as if the core left idle by that
/// burst were slow to come back. In a fixed order the first method always paid
/// that, after the last one's single-threaded burst.
///
/// # Errors
///
/// "interrupted" ([`interrupt::check`]) when Ctrl-C came: checked before each call
/// of `f`; the first error of `f` (a request that failed midway), which ends the
/// timing.
pub(crate) fn time_each(
    mode: Mode,
    cpu: &CpuClock,
    n: usize,
    f: impl FnMut(usize) -> Result<(), String>,
) -> Result<Vec<Timing>, String> {
    time_in_orders(mode, cpu, n, turn_orders(n, &mut rand::rng()), f)
}

/// [`time_each`] with the turns' orders given.
fn time_in_orders(
    mode: Mode,
    cpu: &CpuClock,
    n: usize,
    orders: Vec<Vec<usize>>,
    mut f: impl FnMut(usize) -> Result<(), String>,
) -> Result<Vec<Timing>, String> {
    let (budget, min_iterations) = budget(mode);
    let burst = budget / TURNS;
    let per_turn = min_iterations.div_ceil(TURNS as usize).max(1);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); n];
    let mut cpu_spent: Vec<Option<Duration>> = vec![Some(Duration::ZERO); n];
    for i in 0..n {
        interrupt::check()?;
        f(i)?;
    }
    for order in orders {
        for i in order {
            let (taken, spent) = (&mut samples[i], &mut cpu_spent[i]);
            let cpu_before = cpu.now();
            let start = Instant::now();
            let mut count = 0;
            while count < per_turn || start.elapsed() < burst {
                interrupt::check()?;
                let t = Instant::now();
                f(i)?;
                taken.push(t.elapsed());
                count += 1;
                if count >= MAX_SAMPLES / TURNS as usize {
                    break;
                }
            }
            *spent = spent
                .zip(cpu_before.zip(cpu.now()))
                .map(|(spent, (before, after))| spent + after.saturating_sub(before));
        }
    }
    Ok(samples
        .into_iter()
        .zip(cpu_spent)
        .map(|(samples, cpu)| summary(samples, cpu))
        .collect())
}

/// The order of the `n` methods in each of the [`TURNS`] turns: a new shuffle
/// every turn.
fn turn_orders(n: usize, rng: &mut impl rand::Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    (0..TURNS)
        .map(|_| {
            order.shuffle(rng);
            order.clone()
        })
        .collect()
}

/// The number of samples, their median, and the CPU time per sample.
fn summary(samples: Vec<Duration>, cpu: Option<Duration>) -> Timing {
    let iterations = samples.len();
    Timing {
        iterations,
        median: median(samples),
        cpu_per_iteration: cpu.map(|c| c / iterations as u32),
    }
}

/// The median of `samples`: the middle one, or the mean of the two middle ones
/// of an even count (zero for none).
pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let n = samples.len();
    match n {
        0 => Duration::ZERO,
        _ if n % 2 == 1 => samples[n / 2],
        _ => (samples[n / 2 - 1] + samples[n / 2]) / 2,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use rand::SeedableRng;

    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect();
        assert_eq!(median(ms(&[4, 1, 3, 2])), Duration::from_micros(2500));
        assert_eq!(median(ms(&[3, 1, 2])), Duration::from_millis(2));
        assert_eq!(median(ms(&[7])), Duration::from_millis(7));
        assert_eq!(median(Vec::new()), Duration::ZERO);
        let timing = summary(ms(&[1, 2, 3, 4]), Some(Duration::from_millis(8)));
        assert_eq!(timing.median, Duration::from_micros(2500));
        assert_eq!(timing.cpu_per_iteration, Some(Duration::from_millis(2)));
    }

    #[test]
    fn every_turn_takes_every_method_once_and_no_method_always_follows_the_same_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 7;
        let orders = turn_orders(n, &mut rng);
        assert_eq!(orders.len(), TURNS as usize);
        for order in &orders {
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "{order:?}");
        }
        // What each method came right after, over the whole measurement (the
        // previous turn's last method for a turn's first).
        let sequence: Vec<usize> = orders.concat();
        let mut after = vec![BTreeSet::new(); n];
        for pair in sequence.windows(2) {
            after[pair[1]].insert(pair[0]);
        }
        for (method, before) in after.iter().enumerate() {
            assert!(
                before.len() > 1,
                "method {method} always came after {before:?}"
            );
        }
    }

    /// A method that fails midway (after its warm-up) ends the timing with its
    /// error, and nothing is called after it.
    #[test]
    fn a_method_failing_midway_ends_the_timing_with_its_error() {
        let cpu = CpuClock::process();
        let orders = vec![vec![0, 1]; TURNS as usize];
        let mut calls = Vec::new();
        let err = time_in_orders(Mode::Quick, &cpu, 2, orders, |i| {
            calls.push(i);
            if i == 1 && calls.len() > 2 {
                return Err("method 1 failed midway".to_owned());
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(err, "method 1 failed midway");
        assert_eq!(calls.last(), Some(&1), "{calls:?}");
    }

    #[test]
    fn a_fast_method_takes_its_samples_in_every_turn() {
        let cpu = CpuClock::process();
        let orders = vec![vec![0, 1]; TURNS as usize];
        let mut calls = Vec::new();
        let timings = time_in_orders(Mode::Full, &cpu, 2, orders, |i| {
            calls.push(i);
            Ok(())
        })
        .unwrap();
        // Bursts of one method's calls, after the warm-up calls.
        let mut bursts: Vec<(usize, usize)> = Vec::new();
        for &c in &calls[2..] {
            match bursts.last_mut() {
                Some((m, k)) if *m == c => *k += 1,
                _ => bursts.push((c, 1)),
            }
        }
        assert_eq!(bursts.len(), 2 * TURNS as usize, "{bursts:?}");
        for (i, &(method, k)) in bursts.iter().enumerate() {
            assert!(k <= MAX_SAMPLES / TURNS as usize, "burst {i}: {k}");
            // Not one sample after the bound was taken in the first turn.
            assert!(k > 1, "burst {i} of method {method}: {k} samples");
        }
        for timing in timings {
            assert!(timing.iterations <= MAX_SAMPLES);
        }
    }

    #[test]
    fn the_methods_take_their_bursts_in_each_turns_order() {
        let cpu = CpuClock::process();
        let orders = vec![
            vec![0, 1, 2],
            vec![1, 0, 2],
            vec![0, 2, 1],
            vec![2, 1, 0],
            vec![1, 2, 0],
        ];
        assert_eq!(orders.len(), TURNS as usize);
        let mut calls = Vec::new();
        let timings = time_in_orders(Mode::Quick, &cpu, 3, orders.clone(), |i| {
            calls.push(i);
            Ok(())
        })
        .unwrap();
        // A warm-up call each, in order, then one burst per method per turn.
        let mut bursts = calls.clone();
        bursts.dedup();
        let mut want = vec![0, 1, 2];
        want.extend(orders.concat());
        assert_eq!(bursts, want);
        for (i, timing) in timings.iter().enumerate() {
            let made = calls.iter().filter(|&&c| c == i).count();
            assert_eq!(
                timing.iterations + 1,
                made,
                "method {i}: the warm-up is not a sample"
            );
        }
    }
}
