//! Bulk jobs: blocking jobs that run at memory speed (a copy out of the page cache),
//! at most a few at once, one after another on the same threads.
//!
//! A copy out of the page cache keeps its core busy for as long as it runs, and a
//! core copies no faster for having more copies to switch between: what more copies
//! at once add is destination memory (each has its own buffer) and threads between
//! the caller and its cores. On a 2-core AMD EPYC whose caller kept one core busy
//! (`dio bench isolation`, four 8 MiB reads in flight), the pool read at 0.52x-0.66x
//! of one plain thread's copy with its reads free to run at once (three runs), and
//! at 0.57x-0.86x (six runs, median 0.69x against 0.59x) with one copy at a time.
//!
//! So bulk jobs wait in a queue of their own, and at most
//! [`Builder::bulk_threads`](crate::Builder::bulk_threads) blocking threads take
//! them: each such thread (a *runner*) takes the queue's jobs in order until it is
//! empty, with no hand-off between one job and the next. Each job's handle resolves
//! as its job ends, as a blocking job's does.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::completion::CancelOnShutdown;
use crate::shared::{PoolState, RunningSlot, Shared};
use crate::task::{BlockingJob, RunBlocking, drop_guarded};

/// The bulk jobs waiting, and how many runners take them.
#[derive(Default)]
pub(crate) struct BulkQueue {
    jobs: VecDeque<BlockingJob>,
    runners: usize,
}

impl BulkQueue {
    /// Queues `job`; `true` if a runner must be started for it (fewer than `limit`
    /// run). A runner leaves only when it finds the queue empty, under the same lock,
    /// so a queued job always has a runner that will take it.
    pub(crate) fn push(&mut self, job: BlockingJob, limit: usize) -> bool {
        self.jobs.push_back(job);
        let start = self.runners < limit;
        if start {
            self.runners += 1;
        }
        start
    }

    /// Every queued job, taken out (to drop them, after an abort).
    pub(crate) fn take_all(&mut self) -> VecDeque<BlockingJob> {
        std::mem::take(&mut self.jobs)
    }
}

/// A blocking job that runs the bulk queue's jobs until it is empty.
pub(crate) struct Runner {
    shared: Arc<Shared>,
    /// The bulk job running now, so an abort can resolve its handle (the
    /// blocking thread's slot holds this runner's canceller, which forwards).
    current: Arc<Current>,
    /// Whether this runner has left the queue's count of runners.
    left: bool,
}

impl Runner {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            current: Arc::new(Current(crate::sync::Mutex::new(None))),
            left: false,
        }
    }

    fn pool(&self) -> &PoolState {
        self.shared.pool.as_ref().expect("bulk jobs run on a pool")
    }

    /// The next job, or `None` (having left the count of runners) when none is
    /// queued.
    fn next(&mut self) -> Option<BlockingJob> {
        let mut queue = self.pool().bulk.lock();
        let job = queue.jobs.pop_front();
        if job.is_none() {
            queue.runners -= 1;
            drop(queue);
            self.left = true;
        }
        job
    }
}

impl RunBlocking for Runner {
    fn run(mut self: Box<Self>) {
        while let Some(job) = self.next() {
            // Registered as a blocking thread registers its job (an abort finds it
            // there, or the runner sees the abort and drops it).
            self.pool()
                .run_registered(&self.current.0, job, "a bulk job");
        }
    }

    fn canceller(&self) -> Arc<dyn CancelOnShutdown> {
        self.current.clone()
    }
}

impl Drop for Runner {
    /// A runner dropped unrun (an abort drops queued blocking jobs) leaves the count,
    /// and with no runner left, drops the jobs that were counting on it: their
    /// handles resolve, none waits for a runner that will never come.
    fn drop(&mut self) {
        if self.left {
            return;
        }
        let orphans = {
            let mut queue = self.pool().bulk.lock();
            queue.runners -= 1;
            if queue.runners == 0 {
                queue.take_all()
            } else {
                VecDeque::new()
            }
        };
        for job in orphans {
            drop_guarded("dropping a queued bulk job", || drop(job));
        }
    }
}

/// The bulk job a runner is running, if any.
struct Current(RunningSlot);

impl CancelOnShutdown for Current {
    fn cancel_on_shutdown(&self) {
        if let Some(job) = self.0.lock().as_ref() {
            job.cancel_on_shutdown();
        }
    }

    fn refuse(&self) {
        if let Some(job) = self.0.lock().as_ref() {
            job.refuse();
        }
    }
}
