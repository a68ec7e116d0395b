//! [`IoFuture`]: the handle every operation returns; [`Task`], one submitted job;
//! [`OpenTask`], one whose output must be released.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use io_executor::{Executor, JoinHandle};
use parking_lot::Mutex;

use crate::raw::IoJob;
use crate::types::burst::Unpolled;
use crate::{Error, ErrorKind, Result};

/// An operation in flight. Its IO started when the operation was called, on the
/// operator's executor; awaiting it only collects the result, so a caller can issue
/// many operations and await them later. The one exception: small reads of a file
/// issued in a burst start when the first of them is polled, so that they are read
/// together (see [`Operator::read_range`](crate::Operator::read_range)).
///
/// # Cancel safety
///
/// Dropping an `IoFuture` cancels the operation: jobs not started yet never run,
/// and running async jobs are dropped at their next await point. A blocking job
/// that has started cannot be interrupted: it runs to its end, every step of it,
/// and only its result is dropped (see `io_executor::JoinHandle::abort`). A
/// blocking job is often a whole operation, not one system call: an fs write
/// whose future is dropped after its job started still creates its temporary
/// file, writes it and renames it over the target, so the target is replaced
/// (atomically, as an awaited write replaces it). Await a write, or check the
/// target, to know which way it went. Some operations are done before the call
/// returns (every operation of the memory backend, whose jobs run inline, and a
/// small read served on the caller's thread): dropping their future drops only
/// the result. What an opening operation (a reader, a writer, a lister) opened
/// before it was cancelled is released on the executor, as the handle's own drop
/// would.
#[must_use = "an operation's result (and error) is in its IoFuture; dropping it cancels what has not run yet"]
pub struct IoFuture<T> {
    inner: Inner<T>,
}

enum Inner<T> {
    /// A result known when the operation was called (a small read served on the
    /// caller's thread, a refusal): held as it is, with no allocation, which a storm
    /// of 10,000 such reads would otherwise pay 10,000 times.
    Known(Task<T>),
    /// As `Known`, for a read served when it was issued while a burst may follow
    /// (see [`Unpolled`]).
    Unpolled(Task<T>, Unpolled),
    Running(Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>),
}

impl<T: Send + 'static> IoFuture<T> {
    pub(crate) fn new(f: impl Future<Output = Result<T>> + Send + 'static) -> Self {
        Self {
            inner: Inner::Running(Box::pin(f)),
        }
    }

    /// A result already known, handed over at the first poll.
    pub(crate) fn ready(result: Result<T>) -> Self {
        Self {
            inner: Inner::Known(Task::Ready {
                result: Some(result),
                yielded: true,
            }),
        }
    }

    /// A result already known, handed over after one `Pending` (so that a caller's
    /// loop over such results still yields to its runtime).
    pub(crate) fn yielding(result: Result<T>) -> Self {
        Self {
            inner: Inner::Known(Task::Ready {
                result: Some(result),
                yielded: false,
            }),
        }
    }

    /// A result known when the operation was called, handed over as
    /// [`yielding`](Self::yielding) does; `unpolled` lets its burst know when it is
    /// first polled or dropped.
    pub(crate) fn unpolled(result: Result<T>, unpolled: Unpolled) -> Self {
        Self {
            inner: Inner::Unpolled(
                Task::Ready {
                    result: Some(result),
                    yielded: false,
                },
                unpolled,
            ),
        }
    }

    /// Blocks the current thread until the operation finishes. For sync callers;
    /// see [`Operator::blocking`](crate::Operator::blocking).
    ///
    /// Not on a worker thread of the operator's own executor (inside a task it
    /// runs): the wait blocks that worker, and an operation whose work includes a
    /// task on it (an S3 request; the task that hands out a burst's results) never
    /// ends. `.await` there; [`BlockingOperator`](crate::BlockingOperator) refuses
    /// such a call instead.
    ///
    /// # Errors
    ///
    /// Whatever the operation fails with.
    pub fn wait(self) -> Result<T> {
        // A thread parker: needs no runtime, and panics neither inside one nor
        // inside another `block_on`.
        io_executor::block_on(self)
    }
}

impl<T> Future for IoFuture<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match &mut self.inner {
            Inner::Known(task) => Pin::new(task).poll(cx),
            Inner::Unpolled(task, unpolled) => {
                unpolled.polled();
                Pin::new(task).poll(cx)
            }
            Inner::Running(future) => future.as_mut().poll(cx),
        }
    }
}

impl<T> fmt::Debug for IoFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IoFuture")
    }
}

/// One job submitted to an executor (or already finished), as a future of its
/// result. Dropping it cancels the job.
///
/// A job that needed no hand-off still returns `Pending` once (waking itself at
/// once) before its result: a caller's loop over such operations yields to its
/// runtime, whose timers and IO would otherwise starve.
pub(crate) enum Task<T> {
    Ready {
        result: Option<Result<T>>,
        yielded: bool,
    },
    Spawned(JoinHandle<Result<T>>),
}

impl<T: Send + 'static> Task<T> {
    pub(crate) fn submit(executor: &Executor, job: IoJob<T>) -> Self {
        let ready = |result| Task::Ready {
            result: Some(result),
            yielded: false,
        };
        match job {
            IoJob::Blocking(f) => Task::Spawned(executor.spawn_blocking(f)),
            IoJob::Bulk(f) => Task::Spawned(executor.spawn_blocking_bulk(f)),
            IoJob::Async(f) => Task::Spawned(executor.spawn(f)),
            IoJob::Inline(_) if !executor.accepts_jobs() => ready(Err(Error::new(
                ErrorKind::ShutDown,
            )
            .with_message("the operation was submitted after the executor shut down"))),
            IoJob::Inline(f) => ready(f()),
            IoJob::Ready(result) => ready(result),
        }
    }

    /// Lets the job run to the end with nobody waiting for it.
    pub(crate) fn detach(self) {
        if let Task::Spawned(handle) = self {
            handle.detach();
        }
    }

    /// Lets the job run to its end with nobody waiting for its output, but
    /// `failed` hears of its failure: a job of `executor` waits for it. Refused
    /// that job (after a shutdown, outside the executor's jobs), the job runs on
    /// unwatched (never cancelled), and only a failure it has met already is
    /// heard of.
    pub(crate) fn detach_reporting(
        self,
        executor: &Executor,
        failed: impl FnOnce(Error) + Clone + Send + 'static,
    ) {
        // Taken by the watcher at its first poll; a watcher refused at once leaves
        // it here, to be detached rather than dropped (which would cancel it).
        let cell = Arc::new(Mutex::new(Some(self)));
        let held = Arc::clone(&cell);
        let report = failed.clone();
        let watcher = executor.without_queue_bound().spawn(async move {
            let Some(task) = held.lock().take() else {
                return;
            };
            if let Err(e) = task.await {
                report(e);
            }
        });
        if !watcher.is_finished() {
            watcher.detach();
            return;
        }
        let Some(task) = cell.lock().take() else {
            return;
        };
        if !task.is_finished() {
            task.detach();
        } else if let Err(e) = io_executor::block_on(task) {
            failed(e);
        }
    }

    /// `true` once the job has ended (or was refused): awaiting it will not wait.
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            Task::Ready { .. } => true,
            Task::Spawned(handle) => handle.is_finished(),
        }
    }

    /// Asks the job to stop; awaiting it still yields its output if it had finished.
    pub(crate) fn abort(&self) {
        if let Task::Spawned(handle) = self {
            handle.abort();
        }
    }

    /// In the background, on the executor: waits for the job and hands its output to
    /// `release`, whose job then runs there too (an async one in the same job, a
    /// blocking one as that job's own work: a shutdown begun meanwhile does not
    /// stop it). For drops
    /// that must not do IO, or wait, on the dropping thread. A release that fails has
    /// no caller to tell: a release that must be heard of logs its own failure
    /// ([`IoJob::on_error`]).
    pub(crate) fn release_with<F>(self, executor: &Executor, release: F)
    where
        F: FnOnce(T) -> IoJob<()> + Send + 'static,
    {
        let on = executor.clone();
        executor
            .spawn(async move {
                if let Ok(output) = self.await {
                    match release(output) {
                        IoJob::Async(release) => drop(release.await),
                        job => drop(Task::submit(&on, job).await),
                    }
                }
            })
            .detach();
    }
}

// Nothing in a `Task` is ever pinned: the output is moved out by value.
impl<T> Unpin for Task<T> {}

/// The executor a handle (a reader, a listing) submits its jobs to, and whether the
/// executor took the job that opened it.
#[derive(Debug)]
pub(crate) struct Opener {
    pub(crate) executor: Executor,
    /// The open was a job of the executor's (not done on the caller's thread).
    pub(crate) accepted: bool,
}

impl Opener {
    /// For the handle's jobs that continue its first ones: the queue's bound does
    /// not refuse them, which would end the handle in a "temporary" error that
    /// never clears (its errors are sticky), and lose its place.
    pub(crate) fn rest(&self) -> Executor {
        self.executor.without_queue_bound()
    }

    /// For its first job: as [`rest`](Self::rest) once the executor took the
    /// open; else it is the operation's first, which a full queue refuses.
    pub(crate) fn first(&self) -> Executor {
        if self.accepted {
            self.rest()
        } else {
            self.executor.clone()
        }
    }
}

/// A [`Task`] that opens something the caller must release (an object, a listing,
/// a write in progress). Dropped before its output is taken (the operation's future
/// was cancelled), the job is cancelled and, if it had finished anyway, `release`
/// gets its output on the executor, not the dropping thread. Only an executor that
/// refuses the release (shut down, or its queue full) leaves the output to be
/// dropped where it is, as the backend's `Drop` does it.
pub(crate) struct OpenTask<T: Send + 'static> {
    /// `Some` until the output is taken.
    task: Option<Task<T>>,
    executor: Executor,
    release: fn(T) -> IoJob<()>,
}

impl<T: Send + 'static> OpenTask<T> {
    pub(crate) fn new(task: Task<T>, executor: Executor, release: fn(T) -> IoJob<()>) -> Self {
        Self {
            task: Some(task),
            executor,
            release,
        }
    }
}

impl<T: Send + 'static> Unpin for OpenTask<T> {}

impl<T: Send + 'static> Future for OpenTask<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let task = self
            .task
            .as_mut()
            .expect("OpenTask polled after completion");
        let output = std::task::ready!(Pin::new(task).poll(cx));
        self.task = None;
        Poll::Ready(output)
    }
}

impl<T: Send + 'static> Drop for OpenTask<T> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            task.release_with(&self.executor, self.release);
        }
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        match self.get_mut() {
            Task::Ready { yielded, .. } if !*yielded => {
                *yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Task::Ready { result, .. } => {
                Poll::Ready(result.take().expect("Task polled after completion"))
            }
            Task::Spawned(handle) => Pin::new(handle)
                .poll(cx)
                .map(|joined| joined.unwrap_or_else(|e| Err(Error::from_join(e)))),
        }
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Task::Ready { .. } => f.write_str("Task::Ready"),
            Task::Spawned(h) => write!(f, "Task::Spawned({h:?})"),
        }
    }
}
