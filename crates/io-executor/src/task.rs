//! The wrappers a job runs in: [`AsyncTask`] for futures, [`BlockingTask`] for
//! closures, and the [`JobGuard`] both use to deliver the result and keep the counters.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tracing::Span;

use crate::JoinError;
use crate::completion::{CancelOnShutdown, Completion};
use crate::context;
use crate::metrics::Outcome;
use crate::shared::Shared;

/// Runs `f`, which only drops a job's values (a closure never run, a result no
/// handle waits for), and logs a panic from their destructors instead of letting it
/// unwind into the pool: a blocking thread that unwound would be gone for good, and
/// the jobs queued behind it would wait for ever. The job's handle is resolved all
/// the same (its guard resolves it when dropped, unwinding or not).
pub(crate) fn drop_guarded(what: &str, f: impl FnOnce()) {
    guarded(what, "a job's values panicked when dropped", f);
}

/// Wakes `waker`, which belongs to whoever awaits a handle or the executor's end
/// (a caller's runtime, or any other), and logs a panic of its `wake` (a bug of
/// that runtime) instead of letting it unwind into the job that woke it: the job
/// still leaves the count that `join` waits on, and every other waiter is still
/// woken.
pub(crate) fn wake_guarded(waker: std::task::Waker) {
    guarded("waking a waiter", "a waker panicked when woken", || {
        waker.wake()
    });
}

/// Runs `f`, logging a panic of it (`what` was being done) as `message`;
/// `false` if it panicked.
pub(crate) fn guarded(what: &str, message: &'static str, f: impl FnOnce()) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            let panic = JoinError::panic(payload);
            tracing::error!(what, panic = ?panic.panic_message(), "{message}");
            false
        }
    }
}

/// Owns one accepted job's bookkeeping. Whatever happens to the job (it finishes,
/// panics, is cancelled, or is dropped unpolled by a runtime that shuts down), the
/// guard resolves its handle exactly once and counts it exactly once.
pub(crate) struct JobGuard<T> {
    shared: Arc<Shared>,
    completion: Arc<Completion<T>>,
    /// The pool worker this async job was assigned to.
    worker: Option<usize>,
    blocking: bool,
    started: bool,
    ended: bool,
}

impl<T> JobGuard<T> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        completion: Arc<Completion<T>>,
        worker: Option<usize>,
        blocking: bool,
    ) -> Self {
        Self {
            shared,
            completion,
            worker,
            blocking,
            started: false,
            ended: false,
        }
    }

    /// While the job runs: marks the thread as in it, so that waits for the
    /// executor refuse it, and what it submits after a shutdown is accepted (see
    /// `Shared::accept`).
    fn in_job(&self) -> context::InJob {
        context::in_job_of(self.shared.id)
    }

    fn start(&mut self) {
        let counters = &self.shared.counters;
        counters.running.fetch_add(1, Ordering::Relaxed);
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        if self.blocking {
            counters.blocking_queued.fetch_sub(1, Ordering::Relaxed);
        }
        self.started = true;
    }

    fn end(&mut self, output: Result<T, JoinError>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let claimed = self.completion.claim();
        let outcome = match &output {
            // A shutdown deadline resolved the handle while the job was still running.
            _ if !claimed => Outcome::Cancelled,
            Ok(_) => Outcome::Completed,
            Err(e) if e.is_panic() => Outcome::Panicked,
            Err(_) => Outcome::Cancelled,
        };
        let counters = &self.shared.counters;
        if self.started {
            counters.running.fetch_sub(1, Ordering::Relaxed);
        } else {
            counters.queued.fetch_sub(1, Ordering::Relaxed);
            if self.blocking {
                counters.blocking_queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
        // Counters and load first: whoever the output wakes sees them current.
        self.shared.job_ended(self.worker, outcome);
        let unwanted = if claimed {
            self.completion.fill(output)
        } else {
            Some(output)
        };
        // An output no handle takes is dropped here, as part of the job (as its
        // future is): what its drop submits after a shutdown is the job's own work,
        // accepted while the job still counts in the drain.
        if let Some(output) = unwanted {
            let _job = self.in_job();
            drop_guarded("a job's result no handle waits for", || drop(output));
        }
        // The output last of all before the job leaves the count that `join` waits
        // on: whoever `join` wakes finds every handle resolved.
        self.shared.job_left();
    }
}

impl<T> Drop for JobGuard<T> {
    fn drop(&mut self) {
        if !self.ended {
            let err = if self.completion.is_aborted() {
                JoinError::cancelled()
            } else if self.started {
                JoinError::cut_off()
            } else {
                JoinError::shutdown()
            };
            self.end(Err(err));
        }
    }
}

pin_project_lite::pin_project! {
    /// A submitted future, as the runtime sees it.
    pub(crate) struct AsyncTask<F: Future> {
        // Declared first: dropped before `guard`, so whatever the job captured is
        // released before its handle resolves.
        #[pin]
        future: Option<F>,
        span: Span,
        guard: JobGuard<F::Output>,
    }
}

impl<F: Future> AsyncTask<F> {
    pub(crate) fn new(future: F, span: Span, guard: JobGuard<F::Output>) -> Self {
        Self {
            future: Some(future),
            span,
            guard,
        }
    }
}

impl<F: Future> Future for AsyncTask<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.guard.ended {
            return Poll::Ready(());
        }
        if !this.guard.started {
            this.guard.start();
        }
        // Register before checking, so an abort between the two still wakes us.
        this.guard.completion.register_job(cx.waker());
        if this.guard.completion.is_aborted() {
            drop_quietly(this.future, this.guard);
            this.guard.end(Err(JoinError::cancelled()));
            return Poll::Ready(());
        }
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let polled = {
            let _entered = this.span.enter();
            let _job = this.guard.in_job();
            catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                drop_quietly(this.future, this.guard);
                this.guard.end(Ok(value));
                Poll::Ready(())
            }
            Err(payload) => {
                drop_quietly(this.future, this.guard);
                this.guard.end(Err(JoinError::panic(payload)));
                Poll::Ready(())
            }
        }
    }
}

/// Drops the job's future in place, as part of the job (clean-up its destructors
/// submit is the job's own work); a panic from its destructor is logged, so it
/// cannot take the worker down.
fn drop_quietly<F, T>(mut future: Pin<&mut Option<F>>, guard: &JobGuard<T>) {
    let _job = guard.in_job();
    drop_guarded("an async job's future", || future.set(None));
}

/// A submitted closure, as a blocking thread sees it.
pub(crate) struct BlockingTask<F, T> {
    f: F,
    span: Span,
    guard: JobGuard<T>,
}

impl<F, T> BlockingTask<F, T> {
    pub(crate) fn new(f: F, span: Span, guard: JobGuard<T>) -> Self {
        Self { f, span, guard }
    }
}

/// A blocking job with its type erased, as it travels through the lane's channel.
pub(crate) trait RunBlocking: Send {
    /// Runs the job on the current thread (or, if it was cancelled before it
    /// started, drops it without running it).
    fn run(self: Box<Self>);

    /// A way to resolve this job's handle from another thread.
    fn canceller(&self) -> Arc<dyn CancelOnShutdown>;
}

pub(crate) type BlockingJob = Box<dyn RunBlocking>;

impl<F, T> RunBlocking for BlockingTask<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>) {
        let BlockingTask { f, span, mut guard } = *self;
        guard.start();
        if guard.completion.is_aborted() {
            // As an async job's future: dropped as part of the job.
            let job = guard.in_job();
            drop(f);
            drop(job);
            guard.end(Err(JoinError::cancelled()));
            return;
        }
        let result = {
            let _job = guard.in_job();
            span.in_scope(|| catch_unwind(AssertUnwindSafe(f)))
        };
        guard.end(result.map_err(JoinError::panic));
    }

    fn canceller(&self) -> Arc<dyn CancelOnShutdown> {
        self.guard.completion.clone()
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom"`): the real job wrappers, guard and handle,
/// on an executor without threads, racing cancellation and shutdown.
#[cfg(all(test, loom))]
pub(crate) mod loom_models {
    use std::future::poll_fn;
    use std::sync::Arc;

    use loom::future::block_on;
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::thread;

    use super::*;
    use crate::JoinHandle;
    use crate::sync::check;

    /// An executor without threads (the caller-runtime and custom modes' state).
    pub(crate) fn threadless() -> Arc<Shared> {
        Arc::new(Shared::new(
            "loom".to_owned(),
            None,
            false,
            Vec::new(),
            None,
            None,
            0,
        ))
    }

    /// Accepts one job the way `Executor::spawn`/`spawn_blocking` do.
    pub(crate) fn accept<T>(shared: &Arc<Shared>, blocking: bool) -> (JoinHandle<T>, JobGuard<T>) {
        let completion = Arc::new(Completion::new());
        let handle = JoinHandle::new(Arc::clone(&completion));
        let guard = shared
            .accept(&shared.intake(), &completion, None, blocking, false)
            .expect("an open executor accepts");
        (handle, guard)
    }

    /// Counts its drops: an output that is lost or dropped twice shows up.
    struct Output(Arc<AtomicUsize>);

    impl Drop for Output {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A job that is pending once (waking itself), so cancellation can land while it
    /// runs, then returns `output`.
    async fn job(output: Output) -> Output {
        let mut yielded = false;
        poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        output
    }

    /// The one accepted job was counted as ended exactly once: as completed or as
    /// cancelled, as given.
    fn assert_counted(shared: &Shared, completed: u64, cancelled: u64) {
        let m = shared.counters.snapshot(Vec::new());
        assert_eq!(
            (m.spawned, m.completed, m.cancelled),
            (1, completed, cancelled)
        );
        assert_eq!((m.queued, m.running, m.panicked), (0, 0, 0));
        assert_eq!(shared.outstanding(), 0);
    }

    /// The handle is dropped while the job finishes: the job ends exactly once, and
    /// its output is dropped exactly once (by the job, the handle having let go; by
    /// the handle's drop, the output being ready; or with the cancelled future).
    #[test]
    fn a_job_completing_while_its_handle_is_dropped() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept(&shared, false);
            let drops = Arc::new(AtomicUsize::new(0));
            let task = AsyncTask::new(job(Output(Arc::clone(&drops))), Span::none(), guard);
            let worker = thread::spawn(move || block_on(task));
            drop(handle);
            worker.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            let m = shared.counters.snapshot(Vec::new());
            assert_eq!(m.completed + m.cancelled, 1);
            assert_eq!(shared.outstanding(), 0);
        });
    }

    /// The handle of a blocking job is detached while the job finishes: the output
    /// is dropped exactly once, by the job (the handle was gone when it filled) or
    /// by the detach (it had filled already), never kept in the slot.
    #[test]
    fn a_blocking_job_finishing_while_its_handle_is_detached() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept(&shared, true);
            let drops = Arc::new(AtomicUsize::new(0));
            let output = Output(Arc::clone(&drops));
            let task: BlockingJob =
                Box::new(BlockingTask::new(move || output, Span::none(), guard));
            let worker = thread::spawn(move || task.run());
            handle.detach();
            worker.join().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 1);
            assert_counted(&shared, 1, 0);
        });
    }

    /// `abort` races the job's completion and the caller awaits the handle: exactly one
    /// outcome, matching the counters; the output is delivered or dropped, once; and
    /// the awaiting caller is always woken.
    #[test]
    fn abort_races_completion_with_exactly_one_outcome() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept(&shared, false);
            let drops = Arc::new(AtomicUsize::new(0));
            let task = AsyncTask::new(job(Output(Arc::clone(&drops))), Span::none(), guard);
            let worker = thread::spawn(move || block_on(task));
            handle.abort();
            match block_on(handle) {
                Ok(output) => {
                    assert_eq!(drops.load(Ordering::SeqCst), 0, "delivered, not dropped");
                    drop(output);
                    worker.join().unwrap();
                    assert_counted(&shared, 1, 0);
                }
                Err(e) => {
                    assert!(e.is_cancelled(), "{e:?}");
                    worker.join().unwrap();
                    assert_counted(&shared, 0, 1);
                }
            }
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        });
    }

    /// A job that would never finish on its own: the abort must wake it, so it drops
    /// its future and resolves the handle.
    #[test]
    fn abort_wakes_a_pending_job_which_resolves_its_handle() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept::<()>(&shared, false);
            let task = AsyncTask::new(std::future::pending::<()>(), Span::none(), guard);
            let worker = thread::spawn(move || block_on(task));
            handle.abort();
            assert!(block_on(handle).unwrap_err().is_cancelled());
            worker.join().unwrap();
            assert_counted(&shared, 0, 1);
        });
    }

    /// A shutdown deadline resolves a running blocking job's handle while the job
    /// claims it itself; the caller is blocked in `join()`: one outcome, counted once.
    #[test]
    fn shutdown_cancel_races_the_jobs_own_claim() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept(&shared, true);
            let task: BlockingJob = Box::new(BlockingTask::new(|| 7_u32, Span::none(), guard));
            let canceller = task.canceller();
            let worker = thread::spawn(move || task.run());
            let deadline = thread::spawn(move || canceller.cancel_on_shutdown());
            let output = handle.join();
            worker.join().unwrap();
            deadline.join().unwrap();
            match output {
                Ok(v) => {
                    assert_eq!(v, 7);
                    assert_counted(&shared, 1, 0);
                }
                Err(e) => {
                    assert!(e.is_shutdown(), "{e:?}");
                    assert_counted(&shared, 0, 1);
                }
            }
        });
    }

    /// A blocking job whose handle is dropped as a thread takes it: it runs only if
    /// the cancellation came too late, and is counted accordingly.
    #[test]
    fn a_blocking_job_cancelled_before_it_starts_never_runs() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept(&shared, true);
            let ran = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&ran);
            let task: BlockingJob = Box::new(BlockingTask::new(
                move || flag.store(true, Ordering::SeqCst),
                Span::none(),
                guard,
            ));
            let worker = thread::spawn(move || task.run());
            drop(handle);
            worker.join().unwrap();
            if ran.load(Ordering::SeqCst) {
                assert_counted(&shared, 1, 0);
            } else {
                assert_counted(&shared, 0, 1);
            }
        });
    }
}
