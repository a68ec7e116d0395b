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
use crate::metrics::Outcome;
use crate::shared::Shared;

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
        if claimed {
            self.completion.fill(output);
        }
    }
}

impl<T> Drop for JobGuard<T> {
    fn drop(&mut self) {
        if !self.ended {
            let err = if self.completion.is_aborted() {
                JoinError::cancelled()
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
            drop_quietly(this.future);
            this.guard.end(Err(JoinError::cancelled()));
            return Poll::Ready(());
        }
        let Some(future) = this.future.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let polled = {
            let _entered = this.span.enter();
            catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => {
                drop_quietly(this.future);
                this.guard.end(Ok(value));
                Poll::Ready(())
            }
            Err(payload) => {
                drop_quietly(this.future);
                this.guard.end(Err(JoinError::panic(payload)));
                Poll::Ready(())
            }
        }
    }
}

/// Drops the job's future in place; a panic from its destructor is swallowed so it
/// cannot take the worker down.
fn drop_quietly<F>(future: Pin<&mut Option<F>>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut future = future;
        future.set(None);
    }));
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
            drop(f);
            guard.end(Err(JoinError::cancelled()));
            return;
        }
        let result = span.in_scope(|| catch_unwind(AssertUnwindSafe(f)));
        guard.end(result.map_err(JoinError::panic));
    }

    fn canceller(&self) -> Arc<dyn CancelOnShutdown> {
        self.guard.completion.clone()
    }
}
