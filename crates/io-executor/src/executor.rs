//! [`Executor`]: the handle every job is submitted through.

use std::fmt;
use std::future::{Future, poll_fn};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, TryCurrentError};
use tracing::Span;

use crate::completion::Completion;
use crate::shared::{Intake, Shared};
use crate::spawn::Spawn;
use crate::sync::RwLockReadGuard;
use crate::task::{AsyncTask, BlockingJob, BlockingTask};
use crate::{Builder, JoinHandle, Metrics, WorkerLocal, context};

/// A cheap, cloneable handle to where IO jobs run.
///
/// Storage code submits its IO through an `Executor` and does not care which mode is
/// behind it:
///
/// | mode | made by | async jobs run on | blocking jobs run on |
/// |---|---|---|---|
/// | dedicated pool | [`Builder::build`] | our worker threads, each with its own current-thread runtime | our blocking threads |
/// | global pool | [`Executor::global`] | a lazily built dedicated pool shared by the process | its blocking threads |
/// | caller's runtime | [`Executor::current`] (off our pools' threads), [`Executor::from_handle`] | that runtime | that runtime's blocking pool |
/// | custom | [`Executor::custom`] | your [`Spawn`] implementation | your [`Spawn`] implementation |
///
/// # Drop behaviour
///
/// Clones share one executor. When the last clone is dropped the executor is shut
/// down as by [`shutdown`](Self::shutdown): intake stops, accepted jobs still run to
/// completion, and the threads exit on their own once drained. (The handle
/// [`Executor::current`] gives inside a job of a pool is borrowed: it submits to
/// the pool, but neither it nor its clones keep the pool from shutting down when
/// the pool's own handles are dropped.) The drop never blocks
/// and never panics, whatever thread it happens on: inside an async task, on a plain
/// thread, on one of the pool's own threads, or while unwinding. (Each worker's runtime
/// is dropped by its own thread, outside any async context, so tokio's "Cannot drop a
/// runtime in a context where blocking is not allowed" cannot occur.)
///
/// # Already on the executor
///
/// A job submitted from one of the pool's own threads pays no needless hop:
/// - [`spawn`](Self::spawn) from a worker thread stays on that worker (its local
///   queue, no cross-thread wake-up) whenever that worker is among the least loaded;
///   otherwise it goes to the least-loaded worker like any other job. Either way it
///   runs on the executor, even if the calling job has entered another tokio runtime
///   (`let _g = handle.enter()`).
/// - [`spawn_blocking`](Self::spawn_blocking) from one of the pool's blocking threads
///   runs the closure inline, before returning the (already finished) handle. That
///   thread may block anyway, and waiting on a queue behind other jobs could only add
///   latency, or deadlock if every blocking thread waited on a job queued behind it.
/// - `spawn_blocking` from a worker thread always goes to the blocking lane: a worker
///   must never block.
///
/// # Troubleshooting
///
/// Waits that could never end panic instead of hanging. [`join`](Self::join),
/// [`blocking_join`](Self::blocking_join), [`shutdown_timeout`](Self::shutdown_timeout)
/// and [`blocking_shutdown_timeout`](Self::blocking_shutdown_timeout) wait for the
/// pool's threads to exit, so on one of those threads (inside one of its jobs, say)
/// they refuse:
///
/// ```text
/// Executor::join() called on thread "my-io-worker-0", which belongs to executor "my-io":
/// it waits for every thread of "my-io" to exit, this one included, so it could never
/// return. Call shutdown() here and leave Executor::join() to code outside the executor
/// (a plain thread, the caller's runtime, or another executor).
/// ```
///
/// and [`JoinHandle::join`] refuses to block a worker thread (see its `# Panics`).
/// An executor without threads of its own ([`from_handle`](Self::from_handle),
/// [`custom`](Self::custom)) waits for its jobs instead, so these calls refuse
/// inside one of its jobs, while the job is being polled or its closure runs
/// (`... called inside a job of executor "tokio-handle": it waits for every job of
/// "tokio-handle" to end, this one included ...`).
/// Inside a job, the panic resolves the job's handle to a [`JoinError`](crate::JoinError)
/// whose [`panic_message`](crate::JoinError::panic_message) is that text. Joining one
/// executor from another executor's threads, from plain threads and from any runtime
/// is fine. A `tokio::task::spawn_blocking` closure inside a job runs on a thread
/// the worker's runtime started, and is refused as the pool's own threads are. Threads
/// that are not the executor's are not recognised: a current-thread runtime that
/// blocks on [`JoinHandle::join`] while it runs one of its own futures can still
/// wait for ever.
///
/// A job should hand back data, not IO objects. A socket, a timer or a stream
/// made inside an async job belongs to its worker's tokio runtime, whose IO and time
/// drivers turn only while that worker runs jobs: polled from the caller's runtime,
/// it may never wake. Keep such objects inside jobs (as the storage crate does: its
/// readers and listers hand over bytes and entries made on the executor).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let executor = io_executor::Builder::new().name("my-io").build()?;
///
/// // Blocking IO on the blocking lane: the caller's runtime keeps running.
/// let len = executor
///     .spawn_blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()))
///     .await
///     .expect("job ran")?;
/// assert!(len > 0);
///
/// // Async IO on a worker's own runtime.
/// let value = executor.spawn(async { tokio::task::yield_now().await; 7 }).await.unwrap();
/// assert_eq!(value, 7);
///
/// executor.shutdown();
/// executor.join().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
    /// Whether the queue's bound refuses this handle's jobs (see
    /// [`Executor::without_queue_bound`]).
    bounded: bool,
}

struct Inner {
    shared: Arc<Shared>,
    kind: Kind,
    /// Whether dropping the last handle shuts the executor down: not for a
    /// handle borrowed inside a job ([`Executor::current`]).
    owner: bool,
}

enum Kind {
    Pool,
    Runtime(Handle),
    Custom(Arc<dyn Spawn>),
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owner {
            self.shared.shutdown();
        }
    }
}

impl Executor {
    pub(crate) fn from_pool(shared: Arc<Shared>) -> Self {
        Self {
            inner: Arc::new(Inner {
                shared,
                kind: Kind::Pool,
                owner: true,
            }),
            bounded: true,
        }
    }

    fn without_threads(name: &str, kind: Kind) -> Self {
        let shared = Arc::new(Shared::new(
            name.to_owned(),
            None,
            false,
            Vec::new(),
            None,
            None,
            0,
        ));
        Self {
            inner: Arc::new(Inner {
                shared,
                kind,
                owner: true,
            }),
            bounded: true,
        }
    }

    /// A [`Builder`] for a dedicated pool.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// The process-wide pool, built with [`Builder`]'s defaults and the name
    /// `io-global` on first use.
    ///
    /// It is shared by everyone in the process, so it is never shut down:
    /// [`shutdown`](Self::shutdown) is ignored on it, [`join`](Self::join) returns at
    /// once, and [`shutdown_timeout`](Self::shutdown_timeout) returns `false` at once
    /// (nothing drained, nothing cancelled). Its threads end with the process.
    ///
    /// # Panics
    ///
    /// Panics on first use if the operating system refuses to start its threads.
    pub fn global() -> Executor {
        static GLOBAL: OnceLock<Executor> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                Builder::new()
                    .name("io-global")
                    .global()
                    .build()
                    .unwrap_or_else(|e| panic!("cannot start the global IO executor: {e}"))
            })
            .clone()
    }

    /// An executor over the tokio runtime the caller is running in: async jobs are
    /// spawned on it, blocking jobs go to its blocking pool. For users who want no
    /// threads of ours.
    ///
    /// On a thread of one of our pools (inside a job, or in a closure a job gave
    /// to `tokio::task::spawn_blocking`) it is that pool itself, not the worker's
    /// own runtime: an idle worker sleeps outside its runtime (see
    /// "How a job reaches a worker" in `docs/architecture.md`), so a task spawned
    /// there from another thread would wait for the worker's next job. The same
    /// holds for a `tokio::runtime::Handle` taken inside a job: spawn through the
    /// executor instead of keeping one. That handle is borrowed: dropping it (and
    /// its clones) never shuts the pool down, and it does not keep the pool from
    /// shutting down when the pool's own handles are dropped; after that, it
    /// refuses work as they would.
    ///
    /// Inside a job of an executor without threads of ours
    /// ([`from_handle`](Self::from_handle), [`current`](Self::current) itself, or
    /// a custom one), it is a new executor over the runtime the job runs on, not
    /// the job's: work spawned through it is not that executor's (its shutdown,
    /// drain and deadlines do not cover it, and a job's own work after a shutdown
    /// is not told apart). Such a job should spawn through a clone of its own
    /// executor.
    ///
    /// # Errors
    ///
    /// Fails when called outside a tokio runtime and off our pools' threads.
    pub fn current() -> Result<Executor, TryCurrentError> {
        // A job's `tokio::task::spawn_blocking` runs on a thread the worker's
        // runtime started, where that runtime is current: the pool, as above.
        if let Some(shared) = context::current_pool().or_else(context::runtime_pool) {
            return Ok(Self::borrowed(shared));
        }
        Handle::try_current().map(Self::from_handle)
    }

    /// The pool of `shared`, borrowed: dropping it never shuts the pool down.
    fn borrowed(shared: Arc<Shared>) -> Executor {
        Self {
            inner: Arc::new(Inner {
                shared,
                kind: Kind::Pool,
                owner: false,
            }),
            bounded: true,
        }
    }

    /// An executor over the tokio runtime behind `handle`; see [`Executor::current`].
    ///
    /// A blocking job for which the runtime cannot start a thread, with none of
    /// its own to run it (the process is out of threads, or of memory for a
    /// stack), is dropped unrun, as a [custom](Self::custom) executor's is: its
    /// handle resolves to a [`JoinErrorKind::Shutdown`](crate::JoinErrorKind::Shutdown)
    /// error and the cause is logged (`tracing`, level error), where tokio itself
    /// would panic.
    pub fn from_handle(handle: Handle) -> Executor {
        Self::without_threads("tokio-handle", Kind::Runtime(handle))
    }

    /// An executor that hands every job to `spawner`.
    pub fn custom(spawner: impl Spawn) -> Executor {
        Self::without_threads("custom", Kind::Custom(Arc::new(spawner)))
    }

    /// The executor's name (a pool's [`Builder::name`]).
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// A number that identifies this executor (and its clones) within the process;
    /// no two executors built in one process share it.
    pub fn id(&self) -> u64 {
        self.inner.shared.id
    }

    /// How many worker threads the executor owns (0 for the caller-runtime and custom
    /// modes).
    pub fn num_workers(&self) -> usize {
        self.inner.shared.pool.as_ref().map_or(0, |p| p.workers())
    }

    /// How many blocking threads the executor owns (0 for the caller-runtime and
    /// custom modes).
    pub fn num_blocking_threads(&self) -> usize {
        self.inner
            .shared
            .pool
            .as_ref()
            .map_or(0, |p| p.running_blocking.len())
    }

    /// How many of the pool's blocking threads may run
    /// [bulk jobs](Self::spawn_blocking_bulk) at once (0 for an executor that is not
    /// a pool).
    pub fn num_bulk_threads(&self) -> usize {
        self.inner.shared.pool.as_ref().map_or(0, |p| p.bulk_limit)
    }

    /// A handle to this executor whose jobs the queue's bound
    /// ([`Builder::max_queued_jobs`](crate::Builder::max_queued_jobs)) does not
    /// refuse: for work that continues what the executor has already accepted,
    /// where a refusal would fail (and lose) what was started, and waiting in the
    /// queue would not. The storage crate's `Writer` hands its chunks and its
    /// commit over through one: a write under way holds its data either way, and
    /// a refused chunk would lose every byte written before it; its `Reader` and
    /// `Lister` their reads ahead and next pages, once the executor has taken the
    /// job that opened them, or once the reader's first chunk was read on the
    /// caller's thread (it has bytes to hand out, and a refusal of what follows
    /// would cut it short). The bound still counts these jobs, and a shutdown
    /// still refuses them.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    ///
    /// let io = io_executor::Builder::new()
    ///     .blocking_threads(NonZeroUsize::MIN)
    ///     .max_queued_jobs(NonZeroUsize::MIN)
    ///     .build()?;
    /// let (release, released) = std::sync::mpsc::channel::<()>();
    /// let (started, wait) = std::sync::mpsc::channel();
    /// let busy = io.spawn_blocking(move || {
    ///     started.send(()).unwrap();
    ///     let _ = released.recv();
    /// });
    /// wait.recv().unwrap();
    /// let queued = io.spawn_blocking(|| 1); // fills the queue
    /// assert!(io.spawn_blocking(|| 2).join().unwrap_err().is_queue_full());
    /// let continuing = io.without_queue_bound().spawn_blocking(|| 3);
    /// release.send(()).unwrap();
    /// busy.join().unwrap();
    /// assert_eq!((queued.join().unwrap(), continuing.join().unwrap()), (1, 3));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn without_queue_bound(&self) -> Executor {
        Executor {
            inner: Arc::clone(&self.inner),
            bounded: false,
        }
    }

    /// The index of the worker thread of this executor the caller is running on.
    pub fn current_worker(&self) -> Option<usize> {
        context::worker_of(self.inner.shared.id)
    }

    /// `true` if the caller runs on one of this executor's blocking threads (where
    /// [`spawn_blocking`](Self::spawn_blocking) runs its closure inline). Code that
    /// defers work to be submitted later, from another thread, checks it: submitted
    /// from elsewhere, the job would queue behind the very thread waiting for it.
    pub fn on_blocking_thread(&self) -> bool {
        context::is_blocking_thread_of(self.inner.shared.id)
    }

    /// Runs `future` on the executor and returns a handle to its output.
    ///
    /// The job runs inside the caller's current `tracing` span. On a pool it goes to
    /// the least-loaded worker (see "Already on the executor" above).
    ///
    /// # Cancel safety
    ///
    /// Dropping the returned handle cancels the job: its future is dropped at its next
    /// await point. See [`JoinHandle`].
    ///
    /// # Errors
    ///
    /// Never fails at submission; a job the executor refuses (shut down, queue full)
    /// gets a handle that resolves at once to a [`JoinError`](crate::JoinError).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_inner(future, None)
    }

    /// Like [`spawn`](Self::spawn), but on worker thread `worker`. `worker` is taken
    /// modulo [`num_workers`](Self::num_workers), so a partition number can be passed
    /// as it is. Executors without worker threads ignore the pin.
    ///
    /// Pinning keeps jobs that share per-worker state ([`WorkerLocal`]) together.
    pub fn spawn_on<F>(&self, worker: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn_inner(future, Some(worker))
    }

    fn spawn_inner<F>(&self, future: F, pinned: Option<usize>) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = &self.inner.shared;
        let completion = Arc::new(Completion::new());
        let handle = JoinHandle::new(Arc::clone(&completion));
        let intake = shared.intake();
        let local = context::worker_of(shared.id);
        let worker = shared.pool.as_ref().map(|pool| match pinned {
            Some(w) => w % pool.workers(),
            None => pool.pick_worker(local),
        });
        let Some(guard) = shared.accept(&intake, &completion, worker, false, !self.bounded) else {
            return handle;
        };
        let task = AsyncTask::new(future, Span::current(), guard);
        match &self.inner.kind {
            Kind::Pool => {
                let pool = shared.pool.as_ref().expect("pool executor has a pool");
                let worker = worker.expect("pool executor picked a worker");
                // Already on that worker: its own runtime, whatever runtime the
                // calling job has entered (from a job there, its local queue).
                let task = if local == Some(worker) {
                    context::spawn_on_worker_runtime(task).err()
                } else {
                    Some(task)
                };
                let refused = task.and_then(|task| pool.send(&intake, worker, Box::pin(task)));
                drop(intake);
                drop(refused);
                handle
            }
            Kind::Runtime(runtime) => {
                // A runtime that has shut down drops the job right here, and its
                // drop may spawn or shut the executor down: not under the intake
                // lock (only the pool's channels need it).
                drop(intake);
                drop(runtime.spawn(task));
                handle
            }
            Kind::Custom(spawner) => {
                // The user's code, which may run the job right here, and the job
                // may shut the executor down: not under the intake lock.
                drop(intake);
                spawner.spawn(Box::pin(task));
                handle
            }
        }
    }

    /// Runs the blocking closure `f` on the executor's blocking lane and returns a
    /// handle to its output.
    ///
    /// On a pool this costs exactly one hand-off: a channel send to an idle blocking
    /// thread. Called on one of the pool's own blocking threads (inside a blocking
    /// job), it runs `f` right there, before it returns (see "Already on the
    /// executor" above): a closure that waits for something its caller does after
    /// the call never returns, and closures spawned one after another there run one
    /// after another. The closure runs inside the caller's current `tracing` span.
    ///
    /// # Cancel safety
    ///
    /// Dropping the handle before the closure has started means it never runs. Once it
    /// runs it cannot be interrupted; its output is then dropped.
    ///
    /// # Errors
    ///
    /// Never fails at submission; see [`spawn`](Self::spawn).
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let shared = &self.inner.shared;
        let inline =
            matches!(self.inner.kind, Kind::Pool) && context::is_blocking_thread_of(shared.id);
        let unbounded = inline || !self.bounded;
        accept_blocking(shared, f, unbounded, |intake, task| {
            match &self.inner.kind {
                Kind::Pool if inline => {
                    drop(intake);
                    task.run();
                }
                Kind::Pool => send_to_lane(shared, intake, task),
                Kind::Runtime(runtime) => {
                    // As in `spawn`: a shut-down runtime drops the job right here.
                    drop(intake);
                    let refuse = task.canceller();
                    // tokio panics where it cannot start a thread and has none to
                    // run the job (the process is out of threads or memory), the
                    // job left in its queue. Refused as a custom executor's is:
                    // never run, its handle a shutdown error, the cause logged.
                    let spawned = crate::task::guarded(
                        "spawning a blocking job on a tokio runtime",
                        "a blocking job was dropped unrun: its runtime could not start a thread",
                        || drop(runtime.spawn_blocking(move || task.run())),
                    );
                    if !spawned {
                        refuse.refuse();
                    }
                }
                Kind::Custom(spawner) => {
                    // As in `spawn`: the user's code, not under the intake lock.
                    drop(intake);
                    spawner.spawn_blocking(Box::new(move || task.run()));
                }
            }
        })
    }

    /// Runs the blocking closure `f` as a *bulk* job: work that runs at memory speed
    /// and keeps its core busy while it runs, such as a copy out of the page cache.
    ///
    /// On a pool, at most [`Builder::bulk_threads`](crate::Builder::bulk_threads)
    /// bulk jobs run at once (by default half the cores, at least one). The rest wait
    /// in order in a queue of their own, and a blocking thread that ends one bulk job
    /// takes the next with no hand-off. More copies at once than cores to run them
    /// would add destination memory and threads between the caller and its cores,
    /// and copy no more: see docs/architecture.md. Work that waits (a device, the
    /// network) belongs in [`spawn_blocking`](Self::spawn_blocking), where it does
    /// not hold the bulk jobs up.
    ///
    /// Called on one of the pool's blocking threads, `f` runs at once on that
    /// thread, as `spawn_blocking` does. On an executor over a tokio runtime or a
    /// custom spawner, this is [`spawn_blocking`](Self::spawn_blocking).
    ///
    /// # Cancel safety
    ///
    /// As [`spawn_blocking`](Self::spawn_blocking): dropping the handle before the
    /// closure has started means it never runs.
    ///
    /// # Errors
    ///
    /// Never fails at submission; the handle resolves to a
    /// [`JoinError`](crate::JoinError) as [`spawn`](Self::spawn)'s does.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = io_executor::Builder::new().build()?;
    /// let copy = executor.spawn_blocking_bulk(|| vec![7_u8; 1 << 20]);
    /// assert_eq!(copy.join().unwrap().len(), 1 << 20);
    /// executor.shutdown();
    /// executor.blocking_join();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn_blocking_bulk<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let shared = &self.inner.shared;
        let (Kind::Pool, Some(pool)) = (&self.inner.kind, &shared.pool) else {
            return self.spawn_blocking(f);
        };
        if context::is_blocking_thread_of(shared.id) {
            return self.spawn_blocking(f);
        }
        accept_blocking(shared, f, !self.bounded, |intake, task| {
            let start = pool.bulk.lock().push(task, pool.bulk_limit);
            if start {
                send_to_lane(
                    shared,
                    intake,
                    Box::new(crate::bulk::Runner::new(Arc::clone(shared))),
                );
            }
        })
    }

    /// One value per worker thread, created lazily on that thread by `init`; see
    /// [`WorkerLocal`].
    pub fn worker_local<T, F>(&self, init: F) -> WorkerLocal<T>
    where
        F: Fn() -> T + Send + Sync + 'static,
    {
        let shared = &self.inner.shared;
        WorkerLocal::new(
            Arc::downgrade(shared),
            shared.pool.as_ref().map(|_| shared.id),
            self.num_workers(),
            Box::new(init),
        )
    }

    /// A snapshot of the executor's counters.
    pub fn metrics(&self) -> Metrics {
        let shared = &self.inner.shared;
        let load = shared.pool.as_ref().map_or_else(Vec::new, |pool| {
            pool.load
                .iter()
                .map(|l| l.load(std::sync::atomic::Ordering::Relaxed))
                .collect()
        });
        shared.counters.snapshot(load)
    }

    /// Stops intake: every later submission, through any clone, resolves at once to a
    /// shut-down [`JoinError`](crate::JoinError), but one made from inside a job of
    /// this executor. Jobs already accepted run to completion, and what they submit
    /// themselves meanwhile (their IO, their next step) is accepted and run: a job
    /// that reads and then writes is not cut in half by a shutdown that came
    /// between the two. The drain waits for such work as for any job. It ends when
    /// the last job has ended; a [`shutdown_timeout`](Self::shutdown_timeout)
    /// deadline ends it sooner, and from then on everything is refused. (So a job
    /// that runs until told to stop, a poller say, checks
    /// [`is_shutdown`](Self::is_shutdown): its own submissions no longer fail
    /// after a shutdown, and the drain would wait for it.) Returns at once; see
    /// [`join`](Self::join) to wait.
    ///
    /// Ignored on [`Executor::global`].
    ///
    /// # Examples
    ///
    /// ```
    /// let io = io_executor::Builder::new().name("doc-drain").build()?;
    /// let (go, wait) = tokio::sync::oneshot::channel::<()>();
    /// let inner = io.clone();
    /// let job = io.spawn(async move {
    ///     let _ = wait.await; // (a real job would await its first read here)
    ///     // Submitted after the shutdown, from inside the job: accepted.
    ///     inner.spawn_blocking(|| 2).await
    /// });
    /// io.shutdown();
    /// // From anywhere else: refused.
    /// assert!(io.spawn_blocking(|| 1).join().unwrap_err().is_shutdown());
    /// go.send(()).unwrap();
    /// assert_eq!(job.join().unwrap().unwrap(), 2);
    /// io.blocking_join();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.inner.shared.shutdown();
    }

    /// `true` once [`shutdown`](Self::shutdown) has been called (on any clone).
    /// Whether a job submitted from here would still be accepted (inside one of
    /// the executor's jobs it may be) is [`accepts_jobs`](Self::accepts_jobs).
    pub fn is_shutdown(&self) -> bool {
        self.inner.shared.is_shutting_down()
    }

    /// `true` if a job submitted *from the calling thread*, now, would not be
    /// refused for a shutdown (a full queue aside). Before
    /// [`shutdown`](Self::shutdown): from anywhere (and always on
    /// [`Executor::global`], which is never shut down). After it: only from
    /// inside one of this executor's jobs (on its thread while it runs: not from
    /// a task it spawned with `tokio::spawn`, nor from a thread it waits on),
    /// until the drain ends or a deadline passes. The answer can go stale at once
    /// (another thread may shut the executor down).
    ///
    /// For work a caller does on its own thread in a job's stead, which should be
    /// refused when a job from there would be: the storage crate serves small
    /// reads of memory-resident pages on the calling thread this way.
    ///
    /// # Examples
    ///
    /// ```
    /// let io = io_executor::Builder::new().name("doc-accepts").build()?;
    /// assert!(io.accepts_jobs());
    /// let inner = io.clone();
    /// let (go, wait) = tokio::sync::oneshot::channel::<()>();
    /// let job = io.spawn(async move {
    ///     let _ = wait.await;
    ///     inner.accepts_jobs()
    /// });
    /// io.shutdown();
    /// assert!(!io.accepts_jobs(), "not from here");
    /// go.send(()).unwrap();
    /// assert!(job.join().unwrap(), "from inside the job");
    /// io.blocking_join();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accepts_jobs(&self) -> bool {
        self.inner.shared.accepts_here()
    }

    /// `true` while the calling thread runs one of this executor's jobs (an async
    /// job while it is polled, a blocking job while it runs), before a shutdown as
    /// after it: not on a task a job spawned with `tokio::spawn`, nor on a thread
    /// a job waits on. What a job submits is its own work, which a shutdown lets
    /// it finish ([`accepts_jobs`](Self::accepts_jobs)): code that does work for
    /// whoever asked can tell a job's request from an outside one this way (the
    /// storage crate decides so whether a small read held before a shutdown is
    /// still read).
    ///
    /// # Examples
    ///
    /// ```
    /// let io = io_executor::Builder::new().name("doc-in-job").build()?;
    /// assert!(!io.in_job());
    /// let inner = io.clone();
    /// assert!(io.spawn_blocking(move || inner.in_job()).join().unwrap());
    /// io.blocking_join();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn in_job(&self) -> bool {
        context::is_in_job_of(self.inner.shared.id)
    }

    /// Shuts the executor down (if that has not happened yet) and waits until every
    /// accepted job has ended and every thread of the pool has exited. Every job's
    /// handle is resolved by then: [`JoinHandle::is_finished`] is `true`.
    ///
    /// Can be awaited from any runtime, any number of times, from any clone, including
    /// from a job of another executor. Returns at once on [`Executor::global`]. A
    /// blocking job that never returns keeps this waiting; bound the wait with
    /// [`shutdown_timeout`](Self::shutdown_timeout).
    ///
    /// # Panics
    ///
    /// Panics when polled on one of this pool's own threads (inside one of its jobs,
    /// say), or, on an executor without threads of its own, inside one of its jobs:
    /// it would wait for that very thread or job to end, so it could never finish. A
    /// job that wants its executor gone calls [`shutdown`](Self::shutdown) and leaves
    /// the waiting to code outside the executor. Inside a job the panic becomes the
    /// job's [`JoinError`](crate::JoinError); see "Troubleshooting" above. The executor
    /// is not shut down by the refused call.
    ///
    /// # Cancel safety
    ///
    /// The shutdown starts at the first poll: `let j = io.join();` alone leaves the
    /// executor taking jobs. Dropping the future after a poll does not call the
    /// shutdown off; it only stops the wait.
    pub async fn join(&self) {
        let shared = &self.inner.shared;
        if shared.is_global() {
            return;
        }
        refuse_own_thread(shared, "Executor::join()", JOIN_NEVER_RETURNS);
        shared.shutdown();
        let mut waiter = shared.exit.waiter();
        poll_fn(|cx| waiter.poll(cx)).await;
    }

    /// [`join`](Self::join) for sync callers: blocks the current thread.
    ///
    /// # Panics
    ///
    /// Panics on one of this pool's own threads, as [`join`](Self::join) does, and
    /// on a worker thread of any other pool, as
    /// [`JoinHandle::join`](crate::JoinHandle::join) does: a job of this pool may
    /// be waiting for a job queued on that worker. Await [`join`](Self::join)
    /// there instead.
    #[track_caller]
    pub fn blocking_join(&self) {
        let shared = &self.inner.shared;
        if shared.is_global() {
            return;
        }
        refuse_own_thread(shared, "Executor::blocking_join()", JOIN_NEVER_RETURNS);
        context::refuse_worker("Executor::blocking_join()", "Executor::join()");
        shared.shutdown();
        shared.exit.wait(None);
    }

    /// Shuts down and drains until `timeout` has passed, then cancels whatever is left
    /// and returns `false`; returns `true` if everything drained in time (every
    /// job ended, even if the pool's threads are still on their way out; a job
    /// whose handle was just resolved may count for a moment longer, so a zero
    /// timeout right after awaiting the last job may still say `false`). A timeout
    /// too long for the clock (`Duration::MAX`) waits as [`join`](Self::join) does.
    /// On the [`global`](Self::global) pool, which is never shut down, it returns
    /// `false` at once and cancels nothing.
    ///
    /// Cancelled jobs' handles resolve to a shut-down [`JoinError`](crate::JoinError),
    /// whose [`had_started`](crate::JoinError::had_started) says whether the job
    /// was cut off while it ran (what it began may still take effect). A
    /// blocking closure that is still running cannot be interrupted: its handle is
    /// resolved all the same and its thread exits when the closure returns. Async
    /// jobs are cancelled by their worker thread, when it drops its runtime: their
    /// handles resolve soon after this returns, not by then, and those of a worker
    /// that an async job blocks (a blocking call inside it, which a worker must
    /// never make) only once that call returns. A closure a job gave to
    /// `tokio::task::spawn_blocking` (a DNS lookup) is not waited for once the
    /// deadline has cut jobs off, by this or by [`join`](Self::join): its thread
    /// runs on, detached, until it returns. When every job ended in time (such a
    /// closure left behind by one, a lookup its timeout gave up on), `join`
    /// waits for it, as dropping a tokio runtime does. The
    /// caller-runtime and custom modes cannot cancel jobs on a runtime they do not own;
    /// they report whether the jobs drained, and past the deadline refuse what
    /// their jobs submit, as a pool does.
    ///
    /// The wait happens on a helper thread, so no timer of the caller's runtime is
    /// needed: this future can be awaited from any executor. If the system refuses
    /// that thread (out of threads or memory), the wait is not made: what has not
    /// drained is cancelled at once, and `false` is returned unless everything had.
    ///
    /// # Panics
    ///
    /// Panics when polled on one of this pool's own threads, as [`join`](Self::join)
    /// does: the pool could never drain while this thread waits, so the call would only
    /// sit out `timeout` and then cancel every job, the caller's own included.
    ///
    /// # Cancel safety
    ///
    /// The shutdown and its deadline start at the first poll (a future never polled
    /// does nothing), the deadline on the helper thread: dropping the future after
    /// that does not call them off. The pool still stops taking jobs, and what has
    /// not drained when `timeout` has passed is cancelled, as if the future had been
    /// awaited.
    pub async fn shutdown_timeout(&self, timeout: Duration) -> bool {
        let shared = Arc::clone(&self.inner.shared);
        if shared.is_global() {
            return false;
        }
        refuse_own_thread(
            &shared,
            "Executor::shutdown_timeout()",
            TIMEOUT_NEVER_DRAINS,
        );
        shared.shutdown();
        if shared.exit.is_done() {
            return true;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let waiter = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("{}-shutdown", shared.name))
            .spawn(move || {
                let _ = tx.send(drain_until(&waiter, deadline(timeout)));
            });
        match spawned {
            Ok(_) => rx.await.unwrap_or(false),
            Err(_) => {
                // No helper thread: give up on waiting rather than block this task.
                drain_until(&shared, Some(Instant::now()))
            }
        }
    }

    /// [`shutdown_timeout`](Self::shutdown_timeout) for sync callers: blocks the
    /// current thread for at most `timeout`.
    ///
    /// # Panics
    ///
    /// Panics on one of this pool's own threads, as
    /// [`shutdown_timeout`](Self::shutdown_timeout) does, and on a worker thread of
    /// any other pool, as [`blocking_join`](Self::blocking_join) does.
    #[track_caller]
    pub fn blocking_shutdown_timeout(&self, timeout: Duration) -> bool {
        let shared = &self.inner.shared;
        if shared.is_global() {
            return false;
        }
        refuse_own_thread(
            shared,
            "Executor::blocking_shutdown_timeout()",
            TIMEOUT_NEVER_DRAINS,
        );
        context::refuse_worker(
            "Executor::blocking_shutdown_timeout()",
            "Executor::shutdown_timeout()",
        );
        shared.shutdown();
        drain_until(shared, deadline(timeout))
    }
}

/// What `join` would do on one of the pool's own threads.
const JOIN_NEVER_RETURNS: &str = "it could never return";
/// What `shutdown_timeout` would do on one of the pool's own threads.
const TIMEOUT_NEVER_DRAINS: &str = "the pool could never drain: the call would only sit out \
     its timeout and then cancel every job, this one too";

/// Panics if the caller is one of `shared`'s own threads; see [`Executor::join`].
#[track_caller]
fn refuse_own_thread(shared: &Shared, call: &str, outcome: &str) {
    context::refuse_own_thread(shared.id, &shared.name, call, outcome);
}

/// When a wait of `timeout` from now ends; `None` (no end) for a timeout too long
/// for the clock (`Duration::MAX`, a common way to say "wait for ever").
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Waits for the pool to drain until `deadline` (`None`: for as long as it takes),
/// then cancels what is left.
fn drain_until(shared: &Shared, deadline: Option<Instant>) -> bool {
    if shared.exit.wait(deadline) {
        return true;
    }
    // Every job ended in time, and the threads, with nothing left to run, are on
    // their way out (an idle pool given no time at all): nothing to cancel.
    if shared.has_drained() {
        return true;
    }
    tracing::warn!(executor = %shared.name, "shutdown deadline passed; cancelling remaining jobs");
    shared.abort();
    false
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.inner.kind {
            Kind::Pool if self.inner.shared.is_global() => "global",
            Kind::Pool => "pool",
            Kind::Runtime(_) => "runtime",
            Kind::Custom(_) => "custom",
        };
        f.debug_struct("Executor")
            .field("name", &self.name())
            .field("mode", &mode)
            .field("workers", &self.num_workers())
            .field("shutdown", &self.is_shutdown())
            .finish()
    }
}

/// Runs `a` on the calling thread and `b` on another blocking thread of the same
/// pool if one is free to take it while `a` runs, and returns both outputs: one
/// piece of blocking work shared by two cores (the fs backend's large reads, whose
/// two sides claim pieces of the read from a shared counter).
///
/// Called on one of a pool's blocking threads (inside a
/// [`spawn_blocking`](Executor::spawn_blocking) closure), `b` is offered to that
/// pool's blocking lane. When `a` is done, `b` is taken back and run here if no
/// thread has started it: the call waits only for a `b` that is already running,
/// so it cannot deadlock however many blocking threads are waiting the same way,
/// and a full queue or a shut-down pool only means `b` runs here too. Anywhere else
/// there is no pool to share with, and it runs `a`, then `b`.
///
/// The offer is a blocking job like any other: it counts in the
/// [`Metrics`](crate::Metrics) and against
/// [`Builder::max_queued_jobs`](crate::Builder::max_queued_jobs); a refused offer
/// only means `b` runs here. When `b` is taken back, the offer counts as cancelled
/// if no thread had taken it up yet, and as completed if a thread took it up just as
/// `b` was taken back (that thread finds nothing left to run). Either way `b` runs
/// once, here.
///
/// # Panics
///
/// A panic of `a` or `b` is resumed on the calling thread (after a running `b`
/// has finished).
pub fn join_blocking<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA,
    B: FnOnce() -> RB + Send + 'static,
    RB: Send + 'static,
{
    let Some(shared) = context::current_blocking_pool() else {
        let ra = a();
        return (ra, b());
    };
    let half = Arc::new(OtherHalf {
        state: parking_lot::Mutex::new(Half::Offered(b)),
        done: parking_lot::Condvar::new(),
    });
    let helper = {
        let half = Arc::clone(&half);
        queue_blocking(&shared, move || half.run())
    };
    drop(shared);
    let ra = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(a)) {
        Ok(ra) => ra,
        Err(panic) => {
            // A `b` already running finishes before this unwinds; one not started
            // never runs (dropping its handle cancels it).
            if half.take_back().is_none() {
                let _ = half.wait();
            }
            std::panic::resume_unwind(panic);
        }
    };
    if let Some(b) = half.take_back() {
        drop(helper);
        return (ra, b());
    }
    // Running on another thread, which stores its outcome whatever happens to the
    // helper job's own handle (a shutdown deadline, say).
    drop(helper);
    match half.wait() {
        Ok(rb) => (ra, rb),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Spawns the clean-up that a job starts when it is cancelled or dropped (an upload
/// to abort, a connection to close) where it cannot run it itself, or work a job
/// starts to run beside it and join later (the parts of an upload, started by one
/// write and joined by the close), as `tokio::spawn` would, but as work of the
/// job's own executor: on a worker thread of a pool, it is a job of that worker,
/// which the pool's shutdown waits for even when the shutdown began before it was
/// spawned (a job running as the pool shuts down may start one), and a deadline
/// cancels. A task spawned with `tokio::spawn` there is not counted: the drain
/// does not wait for it, and it is dropped with the worker's runtime once the
/// drain has ended.
///
/// Off a pool's worker threads it is spawned on the current tokio runtime (with
/// nothing of ours to wait for it), except in a closure a job gave to
/// `tokio::task::spawn_blocking`, where it is an ordinary job of the pool
/// (which a shutdown refuses). Where it would not run, `future` is given
/// back, for the caller to say what is left undone: outside any runtime, on a
/// runtime that is shutting down (which drops what is spawned there unrun), and
/// on a worker whose pool is past a shutdown deadline, or whose drain has ended
/// (every job done, after a shutdown): then only tasks its jobs left there
/// (spawned with `tokio::spawn`) still run, until the worker drops them with its
/// runtime. Those tasks are not jobs, and a shutdown does not wait for them.
///
/// Its handle cancels it when dropped, as every [`JoinHandle`] does (unlike
/// tokio's): call [`detach`](JoinHandle::detach) to leave it to run. `let _ =
/// spawn_cleanup(cleanup);` drops the handle at once, and the clean-up with it.
///
/// Jobs spawned this way count in the [`Metrics`](crate::Metrics), and a
/// [`shutdown_timeout`](Executor::shutdown_timeout) deadline cancels them as any
/// other (their future is dropped: a clean-up that must be heard of says so when
/// dropped unfinished); the queue's bound does not refuse them, but counts
/// them until they start, as it does every job waiting to start (so a burst of
/// them, the parts an S3 write starts, may have others refused meanwhile).
///
/// # Errors
///
/// `future` itself, when there is nowhere to run it.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let io = io_executor::Builder::new().name("doc-cleanup").build().unwrap();
/// let cleaned = Arc::new(AtomicBool::new(false));
/// let seen = Arc::clone(&cleaned);
/// io.spawn(async move {
///     // A job whose drop has something to finish: it hands the work over.
///     let cleanup = async move { seen.store(true, Ordering::SeqCst) };
///     io_executor::spawn_cleanup(cleanup).ok().unwrap().detach();
/// })
/// .detach();
/// io.shutdown();
/// io.blocking_join();
/// assert!(cleaned.load(Ordering::SeqCst));
/// ```
pub fn spawn_cleanup<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let Some((shared, worker, runtime)) = context::current_worker() else {
        // A worker without its runtime is dropping it (past a deadline): the
        // runtime current there is that one, which would drop the task unrun.
        if matches!(context::current(), Some((_, context::Role::Worker(_)))) {
            if let Some(shared) = context::current_pool() {
                shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
            }
            return Err(future);
        }
        // On a thread a worker's runtime started for a job's `spawn_blocking`, that
        // runtime is current, but runs nothing spawned from here while the worker
        // waits for jobs: the pool runs it, as a job of its own.
        if let Some(shared) = context::runtime_pool() {
            // Not refused by the queue's bound, as no clean-up is.
            let pool = Executor::borrowed(shared).without_queue_bound();
            return spawn_or_give_back(&pool, future);
        }
        return match Handle::try_current() {
            Ok(runtime) => spawn_or_give_back(&Executor::from_handle(runtime), future),
            Err(_) => Err(future),
        };
    };
    let completion = Arc::new(Completion::new());
    let handle = JoinHandle::new(Arc::clone(&completion));
    // Past a deadline, or once the pool's drain has ended (a task left on the
    // worker runs as its runtime is about to go), nothing would wait for it.
    let Some(guard) = shared.accept_cleanup(&completion, worker) else {
        shared.counters.rejected.fetch_add(1, Ordering::Relaxed);
        return Err(future);
    };
    // A runtime that a deadline has begun to drop drops the task here, which
    // resolves its handle.
    drop(runtime.spawn(AsyncTask::new(future, Span::current(), guard)));
    Ok(handle)
}

/// Spawns `future` on `executor`, or gives it back when the executor dropped it
/// unrun at once (a tokio runtime that is shutting down drops what is spawned
/// there).
fn spawn_or_give_back<F>(executor: &Executor, future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let cell = Arc::new(parking_lot::Mutex::new(Some(future)));
    let handle = executor.spawn(TakenOnPoll {
        cell: Arc::clone(&cell),
        running: None,
    });
    // Resolved already with the future still in its cell: dropped, never polled.
    if handle.is_finished()
        && let Some(future) = cell.lock().take()
    {
        return Err(future);
    }
    Ok(handle)
}

/// A future that takes the one it runs from a cell at its first poll, so that
/// the spawner can take it back if it is dropped unpolled.
struct TakenOnPoll<F> {
    cell: Arc<parking_lot::Mutex<Option<F>>>,
    running: Option<std::pin::Pin<Box<F>>>,
}

impl<F: Future> Future for TakenOnPoll<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = &mut *self;
        let running = match &mut this.running {
            Some(running) => running,
            None => match this.cell.lock().take() {
                Some(future) => this.running.insert(Box::pin(future)),
                // Taken back by the spawner: its handle, already resolved, is gone.
                None => return std::task::Poll::Pending,
            },
        };
        running.as_mut().poll(cx)
    }
}

/// The half of a [`join_blocking`] offered to another thread.
struct OtherHalf<B, R> {
    state: parking_lot::Mutex<Half<B, R>>,
    done: parking_lot::Condvar,
}

enum Half<B, R> {
    Offered(B),
    Running,
    Done(std::thread::Result<R>),
    Taken,
}

impl<B: FnOnce() -> R, R> OtherHalf<B, R> {
    /// Takes `b` back if no thread has started it.
    fn take_back(&self) -> Option<B> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, Half::Taken) {
            Half::Offered(b) => Some(b),
            other => {
                *state = other;
                None
            }
        }
    }

    /// The helper job: runs `b` unless it was taken back, and stores the outcome.
    fn run(&self) {
        let b = {
            let mut state = self.state.lock();
            match std::mem::replace(&mut *state, Half::Running) {
                Half::Offered(b) => b,
                other => {
                    *state = other;
                    return;
                }
            }
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(b));
        *self.state.lock() = Half::Done(outcome);
        self.done.notify_all();
    }

    /// Waits for a `b` that is running (or done) and takes its outcome.
    fn wait(&self) -> std::thread::Result<R> {
        let mut state = self.state.lock();
        loop {
            match std::mem::replace(&mut *state, Half::Taken) {
                Half::Done(outcome) => return outcome,
                Half::Running => {
                    *state = Half::Running;
                    self.done.wait(&mut state);
                }
                Half::Offered(_) | Half::Taken => {
                    unreachable!("waited for a half that is not running")
                }
            }
        }
    }
}

/// Queues `f` on `shared`'s blocking lane, even from one of its own threads.
fn queue_blocking<F, R>(shared: &Arc<Shared>, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    accept_blocking(shared, f, false, |intake, task| {
        send_to_lane(shared, intake, task)
    })
}

/// Sends an accepted job to `shared`'s blocking lane, then (the intake released)
/// leaves it to the spinning blocking thread, or wakes the one that went idle last.
fn send_to_lane(shared: &Shared, intake: RwLockReadGuard<'_, Intake>, task: BlockingJob) {
    // A send only fails with no receiver; dropping the job then resolves its handle
    // with a shutdown error, once the intake is released (its drop may spawn or
    // shut down).
    let refused = match intake.blocking_tx.as_ref() {
        Some(tx) => tx.send(task).err(),
        None => None,
    };
    drop(intake);
    drop(refused);
    if let Some(pool) = &shared.pool {
        pool.job_queued();
    }
}

/// Accepts `f` as a blocking job of `shared` (or resolves its handle at once with
/// the reason it was refused) and hands it to `place` with the intake still held;
/// `inline`: `place` runs it at once, on this thread.
fn accept_blocking<F, R>(
    shared: &Arc<Shared>,
    f: F,
    unbounded: bool,
    place: impl FnOnce(RwLockReadGuard<'_, Intake>, BlockingJob),
) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let completion = Arc::new(Completion::new());
    let handle = JoinHandle::new(Arc::clone(&completion));
    let intake = shared.intake();
    let Some(guard) = shared.accept(&intake, &completion, None, true, unbounded) else {
        return handle;
    };
    place(
        intake,
        Box::new(BlockingTask::new(f, Span::current(), guard)),
    );
    handle
}
