//! [`JoinHandle`]: the caller's end of a submitted job.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::completion::Completion;
use crate::{JoinError, context};

/// An owned permission to wait for a job's output, from any runtime or thread.
///
/// It is a `Future<Output = Result<T, JoinError>>` that any executor can poll (a tokio
/// runtime of any flavour, `futures::executor::block_on`, another executor), and
/// [`join`](Self::join) waits for it on a plain thread.
///
/// # Drop and cancel behaviour
///
/// **Dropping a `JoinHandle` cancels its job**, the way dropping a future cancels it:
/// an async job is dropped at its next await point; a blocking job that has not
/// started yet never runs (one that is running finishes, and its output is dropped).
/// Call [`detach`](Self::detach) to let the job run on without a handle.
///
/// An output no handle takes is dropped as part of its job, on the job's thread, as
/// a cancelled job's future is: clean-up its `Drop` submits to the executor is the
/// job's own work, accepted after a shutdown. An output that was ready before the
/// handle let go is dropped by the `drop` or `detach` that let it go.
///
/// # Examples
///
/// ```
/// # let executor = io_executor::Builder::new().name("doc-handle").build().unwrap();
/// let handle = executor.spawn(async { 6 * 7 });
/// // Awaited from a plain thread with no runtime at all:
/// assert_eq!(futures::executor::block_on(handle).unwrap(), 42);
///
/// // Or waited for by a sync caller:
/// assert_eq!(executor.spawn_blocking(|| "done").join().unwrap(), "done");
/// ```
#[must_use = "jobs are cancelled when their JoinHandle is dropped; call .detach() to let them run in the background"]
pub struct JoinHandle<T> {
    completion: Option<Arc<Completion<T>>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(completion: Arc<Completion<T>>) -> Self {
        Self {
            completion: Some(completion),
        }
    }

    /// Blocks the current thread until the job ends and returns its output.
    ///
    /// For sync callers on plain threads. Inside async code, `.await` the handle
    /// instead: blocking a runtime thread stalls every task on it, and blocking one of
    /// the pool's own worker threads on a job queued behind it would never return.
    ///
    /// # Errors
    ///
    /// The job was cancelled, panicked, or the executor shut down before it finished:
    /// see [`JoinError`].
    ///
    /// # Panics
    ///
    /// Panics when called on a worker thread of any `io-executor` pool, whatever
    /// executor the job belongs to, and even if the job has already finished (so the
    /// mistake shows up every time, not only when timing makes it hang). A worker must
    /// never block: every task on its runtime would stall, and a job the load balancer
    /// queued on that same worker could never run. Await the handle there instead. The
    /// panic message reads:
    ///
    /// ```text
    /// JoinHandle::join() called on thread "io-worker-0", a worker of executor "io": a
    /// worker must never block (every task on its runtime would stall), and a job queued
    /// on this worker could never run. Await the JoinHandle instead, or call
    /// JoinHandle::join() from a plain thread.
    /// ```
    ///
    /// On the pools' blocking threads, which may block, `join` is allowed.
    ///
    /// Panics, too, on a handle whose output was taken already (it was awaited to
    /// the end, `(&mut handle).await`), as polling it again does: the job was not
    /// cancelled, and its output is gone.
    #[track_caller]
    pub fn join(mut self) -> Result<T, JoinError> {
        context::refuse_worker("JoinHandle::join()", "the JoinHandle");
        self.completion
            .take()
            .expect("JoinHandle::join() called after the handle was awaited to completion")
            .wait()
    }

    /// Cancels the job; awaiting the handle afterwards yields a cancelled
    /// [`JoinError`] unless the job had already finished. An async job is
    /// cancelled at its next await point. A blocking job that has already started
    /// cannot be interrupted: it runs to its end and the handle yields its output,
    /// as with tokio's `spawn_blocking`; one still queued never runs.
    pub fn abort(&self) {
        if let Some(completion) = &self.completion {
            completion.abort();
        }
    }

    /// Lets the job run to the end without anyone waiting for it; its output is
    /// dropped (see the drop behaviour above: by the job, or here if it is ready).
    pub fn detach(mut self) {
        if let Some(completion) = self.completion.take() {
            drop(completion.let_go());
        }
    }

    /// `true` once the job has ended (its output, or error, is ready to take).
    pub fn is_finished(&self) -> bool {
        self.completion.as_ref().is_none_or(|c| c.is_complete())
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// # Panics
    ///
    /// Panics if polled again after it returned `Poll::Ready`.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let completion = self
            .completion
            .as_ref()
            .expect("JoinHandle polled after completion");
        let output = std::task::ready!(completion.poll_output(cx));
        self.completion = None;
        Poll::Ready(output)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if let Some(completion) = self.completion.take() {
            completion.abort();
            drop(completion.let_go());
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
