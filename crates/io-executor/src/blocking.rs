//! A blocking-lane thread: takes closures off the lane's channel and runs them.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::TryRecvError;
use crossbeam_utils::Backoff;

use crate::builder::Hooks;
use crate::context::{self, Role};
use crate::shared::Shared;
use crate::task::BlockingJob;
use crate::worker::{ExitOnDrop, poll_for};

/// Runs on blocking thread `index` until the lane's channel is closed and empty.
/// Each job costs one hand-off: the channel send by the submitter, then either
/// nothing (the pool's spinning thread, if one spins and no other job counts on it
/// yet, takes it) or a wake-up of the most recently parked thread, if any thread is
/// parked, even when another is awake and may take the job first (see
/// [`PoolState::job_queued`](crate::shared::PoolState::job_queued)).
pub(crate) fn run(shared: Arc<Shared>, index: usize, idle_spin: Duration, hooks: &Hooks) {
    let _exit = ExitOnDrop(&shared);
    context::enter(shared.id, Role::Blocking(index), &shared.name);
    context::enter_blocking(&shared);
    hooks.started();
    let pool = shared
        .pool
        .as_ref()
        .expect("blocking threads belong to a pool");
    pool.blocking_thread_started(index, std::thread::current());
    let slot = &pool.running_blocking[index];
    let run_one = |job: BlockingJob| {
        #[cfg(all(test, not(loom)))]
        hooks.blocking_job_taken();
        pool.run_registered(slot, job, "a blocking job");
    };
    loop {
        // A job queued now, or within a short backoff (as the channel's own blocking
        // receive waits before it parks): no wake-up needed.
        let backoff = Backoff::new();
        let looked = loop {
            match pool.blocking_rx.try_recv() {
                Err(TryRecvError::Empty) if !backoff.is_completed() => backoff.snooze(),
                other => break other,
            }
        };
        match looked {
            Ok(job) => {
                run_one(job);
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {}
        }
        // The pool's one spinner, if no other thread spins: it keeps looking for
        // `idle_spin` (`Builder::idle_spin`), and the next submitter counts on it
        // instead of waking a parked thread. Waking a parked thread took 30 us
        // (median; 47 us at p90) from the submitter to the job's start on a 2-core
        // Intel Xeon VM, whose idle cores halt: about as long as a job's result takes
        // to reach its caller, so a caller reading one large range after another paid
        // it on every read. One spinner, not all idle threads: a burst of jobs finds
        // it and wakes parked threads for the rest at once.
        if !idle_spin.is_zero() && pool.start_spinning() {
            match poll_for(&pool.blocking_rx, idle_spin) {
                Ok(job) => {
                    pool.job_taken_by_spinner();
                    run_one(job);
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    pool.stop_spinning();
                    break;
                }
                Err(TryRecvError::Empty) => {
                    // A job counted on this thread is seen by the last look below.
                    pool.stop_spinning();
                }
            }
        }
        // Idle: first on the stack, then a last look, so that a job queued after the
        // look finds this thread to wake, and one queued before it is seen here.
        pool.blocking_idle(index);
        match pool.blocking_rx.try_recv() {
            Ok(job) => {
                pool.blocking_busy(index);
                run_one(job);
            }
            Err(TryRecvError::Disconnected) => {
                pool.blocking_busy(index);
                break;
            }
            Err(TryRecvError::Empty) => {
                // Woken by a submitter (which took this thread off the stack), by
                // the lane closing, or spuriously: all end in another look.
                std::thread::park();
                pool.leave_idle_after_park(index);
            }
        }
    }
    hooks.stopped();
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::Duration;

    use crate::Builder;

    /// A shutdown deadline passes while a blocking thread holds a job it has taken
    /// off the lane but not yet registered as running: the abort neither finds it in
    /// the lane nor among the running jobs. The job must still be cancelled: its
    /// handle resolves to a shutdown error and the closure never runs (it ran, and
    /// a closure that blocked kept its handle unresolved however long it took).
    #[test]
    fn a_job_taken_as_a_shutdown_deadline_passes_is_cancelled() {
        let (taken_tx, taken_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let go_rx = Mutex::new(go_rx);
        let executor = Builder::new()
            .name("taken-at-abort")
            .worker_threads(NonZeroUsize::MIN)
            .blocking_threads(NonZeroUsize::MIN)
            .on_blocking_job_taken(move || {
                let _ = taken_tx.send(());
                let _ = go_rx.lock().unwrap().recv();
            })
            .build()
            .unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let handle = executor.spawn_blocking(move || flag.store(true, Ordering::SeqCst));
        taken_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the blocking thread took the job (hang guard)");
        assert!(!executor.blocking_shutdown_timeout(Duration::ZERO));
        go_tx.send(()).unwrap();
        let err = handle.join().expect_err("cancelled by the deadline");
        assert!(err.is_shutdown(), "{err:?}");
        assert!(
            !ran.load(Ordering::SeqCst),
            "the closure ran after the abort"
        );
        executor.blocking_join();
    }
}
