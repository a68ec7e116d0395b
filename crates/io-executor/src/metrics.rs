//! [`Metrics`]: a snapshot of what an executor has done and is doing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// A point-in-time snapshot of an executor's counters, from
/// [`Executor::metrics`](crate::Executor::metrics).
///
/// Every accepted job is counted once in `spawned` and, when it ends, once in exactly
/// one of `completed`, `cancelled` or `panicked`. A job that was never accepted (the
/// executor was shut down, or its queue was full) is counted in `rejected` only. So
/// once the executor is idle, `spawned == completed + cancelled + panicked`.
///
/// The counters are read one after another, not atomically together: while jobs are
/// in flight a snapshot can be off by the jobs that moved between two reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Jobs accepted, on both lanes.
    pub spawned: u64,
    /// Jobs that ran to completion and delivered their output (even if nobody took it).
    pub completed: u64,
    /// Jobs that ended without output because they were cancelled, by their handle or
    /// by a shutdown deadline.
    pub cancelled: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs refused at submission (shut down, or queue full).
    pub rejected: u64,
    /// Jobs accepted but not started yet, on both lanes (bulk jobs waiting their
    /// turn included).
    pub queued: usize,
    /// Jobs running now (for async jobs: polled at least once and not finished).
    pub running: usize,
    /// Per worker thread, the async jobs assigned to it and not finished (queued or
    /// running). Empty for executors that own no worker threads.
    pub worker_load: Vec<usize>,
    /// Blocking jobs waiting for a blocking thread, and bulk jobs waiting their
    /// turn ([`Executor::spawn_blocking_bulk`](crate::Executor::spawn_blocking_bulk)).
    pub blocking_queue_depth: usize,
}

/// How a job ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Completed,
    Cancelled,
    Panicked,
}

/// The live counters behind [`Metrics`]. Each sits on its own cache line: they are
/// bumped from every submitting and every executing thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) spawned: CachePadded<AtomicU64>,
    pub(crate) completed: CachePadded<AtomicU64>,
    pub(crate) cancelled: CachePadded<AtomicU64>,
    pub(crate) panicked: CachePadded<AtomicU64>,
    pub(crate) rejected: CachePadded<AtomicU64>,
    pub(crate) queued: CachePadded<AtomicUsize>,
    pub(crate) running: CachePadded<AtomicUsize>,
    pub(crate) blocking_queued: CachePadded<AtomicUsize>,
}

impl Counters {
    pub(crate) fn record_end(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Completed => &self.completed,
            Outcome::Cancelled => &self.cancelled,
            Outcome::Panicked => &self.panicked,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, worker_load: Vec<usize>) -> Metrics {
        Metrics {
            spawned: self.spawned.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            panicked: self.panicked.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            running: self.running.load(Ordering::Relaxed),
            worker_load,
            blocking_queue_depth: self.blocking_queued.load(Ordering::Relaxed),
        }
    }
}
