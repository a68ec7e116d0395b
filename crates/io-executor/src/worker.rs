//! A worker thread: one current-thread tokio runtime that runs async jobs.
//!
//! # How a job reaches a worker
//!
//! Each worker has its own channel. A worker with nothing alive in its runtime (no
//! jobs, and no background tasks such as pooled HTTP connections) leaves the runtime
//! and parks on that channel: a plain futex wait, woken by the submitter's send. A
//! worker with live tasks stays inside its runtime, parked on the IO driver, and a
//! submitter wakes it through a [`Notify`](tokio::sync::Notify) after the send. On
//! this class of machine a futex wake-up costs about a quarter of an IO-driver
//! (eventfd + epoll) wake-up, and an idle pool is the common case for the first job
//! of every burst; see `docs/architecture.md`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvError, TryRecvError};
use tokio::runtime::{Handle, Runtime};

use crate::builder::Hooks;
use crate::context::{self, Role};
use crate::shared::{AsyncJob, Shared};
use crate::task::drop_guarded;

/// Runs on worker thread `index` until the pool is shut down and its jobs have
/// drained, or until a shutdown deadline aborts it.
pub(crate) fn run(
    shared: Arc<Shared>,
    index: usize,
    runtime: Runtime,
    jobs: Receiver<AsyncJob>,
    idle_spin: Duration,
    hooks: &Hooks,
) {
    let _exit = ExitOnDrop(&shared);
    context::enter(shared.id, Role::Worker(index), &shared.name);
    context::set_worker_runtime(Some(runtime.handle().clone()));
    context::enter_worker(&shared);
    hooks.started();
    let pool = shared
        .pool
        .as_ref()
        .expect("worker threads belong to a pool");
    let mut first = None;
    loop {
        if runtime.block_on(dispatch(&shared, index, &jobs, first.take())) == Next::Exit {
            break;
        }
        // Nothing alive in the runtime, so nothing is lost by not driving it.
        let received = next_job(&jobs, idle_spin);
        pool.parked[index].store(false, Ordering::SeqCst);
        match received {
            Ok(job) => first = Some(job),
            // Shut down, and every job of the pool has ended (or a deadline has
            // aborted it).
            Err(_) => break,
        }
    }
    // Intake is closed: nothing more can be spawned here.
    context::set_worker_runtime(None);
    // Only after an abort can jobs remain; dropping them resolves their handles.
    while let Ok(job) = jobs.try_recv() {
        drop_guarded("dropping a queued async job", || drop(job));
    }
    // Dropped here, on its own thread and outside any async context: tasks still in it
    // (only after an abort) are dropped and their handles resolve to a shutdown error.
    // Dropping it waits for the threads it started for `tokio::task::spawn_blocking`
    // closures of jobs (a DNS lookup, say); once a deadline has cut jobs off they are
    // left to end on their own, so that the deadline also bounds `join` (that
    // shutdown comes first: a task's destructor finds no blocking pool to use).
    if shared.is_cut_off() {
        runtime.shutdown_background();
    } else {
        drop(runtime);
    }
    hooks.stopped();
}

/// Waits for the next job: first polls the channel for up to `spin` (see
/// [`poll_for`]), then sleeps on it.
fn next_job(jobs: &Receiver<AsyncJob>, spin: Duration) -> Result<AsyncJob, RecvError> {
    match poll_for(jobs, spin) {
        Ok(job) => Ok(job),
        Err(TryRecvError::Disconnected) => Err(RecvError),
        Err(TryRecvError::Empty) => jobs.recv(),
    }
}

/// Polls `rx` for up to `window`: spinning briefly, then yielding the core to
/// anyone who wants it. `Empty` once the window has passed (at once for a zero
/// window).
///
/// A thread that sleeps lets its CPU go idle, and waking an idle virtual CPU costs
/// tens of microseconds; a job that arrives within the window skips that. Idle
/// workers and the blocking lane's one spinning thread poll this way.
pub(crate) fn poll_for<T>(rx: &Receiver<T>, window: Duration) -> Result<T, TryRecvError> {
    let start = Instant::now();
    let mut step = 0_u32;
    loop {
        match rx.try_recv() {
            Err(TryRecvError::Empty) if start.elapsed() < window => {}
            other => return other,
        }
        if step < 6 {
            for _ in 0..1_u32 << step {
                std::hint::spin_loop();
            }
            step += 1;
        } else {
            std::thread::yield_now();
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Next {
    Exit,
    Park,
}

/// The worker's `block_on` future: moves jobs from the channel onto the runtime, and
/// decides when to leave it.
async fn dispatch(
    shared: &Shared,
    index: usize,
    jobs: &Receiver<AsyncJob>,
    first: Option<AsyncJob>,
) -> Next {
    let pool = shared
        .pool
        .as_ref()
        .expect("worker threads belong to a pool");
    if let Some(job) = first {
        drop(tokio::task::spawn(job));
    }
    let runtime = Handle::current();
    loop {
        loop {
            match jobs.try_recv() {
                Ok(job) => drop(tokio::task::spawn(job)),
                Err(TryRecvError::Empty) => break,
                // The drain has ended (every job of the pool, this worker's too)
                // or a deadline has passed: the tasks left here go with the
                // runtime.
                Err(TryRecvError::Disconnected) => return Next::Exit,
            }
        }
        if pool.aborting.load(Ordering::SeqCst) {
            return Next::Exit;
        }
        let alive = runtime.metrics().num_alive_tasks();
        if shared.is_shutting_down() {
            // Intake is closed. Once this worker's jobs have ended, the pool's
            // drain may still go on: a job running elsewhere may send this worker
            // another (see `Shared::accept`), or wait for a task a job left here
            // (a credential refresh, say), which this worker drives until the
            // drain ends and closes its channel. With no task alive here, it
            // parks on the channel instead.
            if pool.load[index].load(Ordering::SeqCst) == 0 && alive == 0 {
                pool.parked[index].store(true, Ordering::SeqCst);
                return Next::Park;
            }
        } else if alive == 0 {
            pool.parked[index].store(true, Ordering::SeqCst);
            // A job sent before the flag was visible is still in the channel: the
            // `recv` after we return takes it.
            return Next::Park;
        }
        pool.notify[index].notified().await;
    }
}

/// Counts the thread out even if a hook panics.
pub(crate) struct ExitOnDrop<'a>(pub(crate) &'a Shared);

impl Drop for ExitOnDrop<'_> {
    fn drop(&mut self) {
        self.0.exit.thread_exited();
    }
}
