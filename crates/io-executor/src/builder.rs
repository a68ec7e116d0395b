//! [`Builder`]: configures and starts a dedicated pool.

use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

#[cfg(not(loom))]
use crate::context;
use crate::shared::{PoolState, Shared};
use crate::{Executor, blocking, worker};

const DEFAULT_IDLE_SPIN: Duration = Duration::from_micros(50);
/// How much lower than the thread that builds it a pool's threads run by default:
/// with the usual nice 0, at 19, the lowest priority.
const DEFAULT_NICE_OFFSET: i32 = 19;

/// The priority a pool's threads run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Priority {
    /// [`DEFAULT_NICE_OFFSET`] lower than the building thread's.
    Lower,
    /// This nice value.
    Nice(i32),
    /// The building thread's.
    Inherited,
}

type Hook = Arc<dyn Fn() + Send + Sync + 'static>;

/// Builds a dedicated pool: `worker_threads` threads that each own a current-thread
/// tokio runtime (IO and time drivers on) for async jobs, and `blocking_threads`
/// threads for blocking closures.
///
/// # Examples
///
/// ```
/// use std::num::NonZeroUsize;
///
/// let executor = io_executor::Builder::new()
///     .name("parquet-io")
///     .worker_threads(NonZeroUsize::new(2).unwrap())
///     .blocking_threads(NonZeroUsize::new(8).unwrap())
///     .build()?;
/// let name = executor
///     .spawn_blocking(|| std::thread::current().name().map(str::to_owned))
///     .join()
///     .unwrap();
/// assert!(name.unwrap().starts_with("parquet-io-blocking-"));
/// executor.shutdown();
/// executor.blocking_join();
/// # Ok::<(), std::io::Error>(())
/// ```
#[must_use = "a Builder does nothing until .build() is called"]
pub struct Builder {
    name: String,
    worker_threads: NonZeroUsize,
    blocking_threads: NonZeroUsize,
    bulk_threads: NonZeroUsize,
    max_queued: Option<NonZeroUsize>,
    stack_size: Option<usize>,
    idle_spin: Duration,
    priority: Priority,
    hooks: Hooks,
    global: bool,
}

#[derive(Clone, Default)]
pub(crate) struct Hooks {
    on_start: Option<Hook>,
    on_stop: Option<Hook>,
    nice: Option<i32>,
    /// Unit tests only: runs on a blocking thread that has taken a job off the lane,
    /// before it registers the job as running (to force a race with an abort).
    #[cfg(all(test, not(loom)))]
    blocking_job_taken: Option<Hook>,
    /// Unit tests only: the worker of this index fails to build its runtime.
    #[cfg(all(test, not(loom)))]
    failing_worker: Option<usize>,
}

impl Hooks {
    /// Runs the `blocking_job_taken` hook, if set.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn blocking_job_taken(&self) {
        if let Some(hook) = &self.blocking_job_taken {
            hook();
        }
    }

    pub(crate) fn started(&self) {
        if let Some(nice) = self.nice {
            // On Linux a thread id names one thread, so this lowers only this thread.
            let tid = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
                tracing::warn!(nice, error = %e, "cannot set the IO thread's nice value");
            }
        }
        Self::call(self.on_start.as_ref(), "on_thread_start");
    }

    pub(crate) fn stopped(&self) {
        Self::call(self.on_stop.as_ref(), "on_thread_stop");
    }

    fn call(hook: Option<&Hook>, which: &str) {
        if let Some(hook) = hook
            && catch_unwind(AssertUnwindSafe(|| hook())).is_err()
        {
            tracing::error!(hook = which, "executor thread hook panicked; ignored");
        }
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// A builder with the defaults: name `"io"`, one worker thread per core, and
    /// four blocking threads per core (at least 8, at most 64): blocking IO threads
    /// mostly wait on the kernel, so more of them than cores keeps devices busy.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self {
            name: "io".to_owned(),
            worker_threads: NonZeroUsize::new(cores).unwrap_or(NonZeroUsize::MIN),
            blocking_threads: NonZeroUsize::new((cores * 4).clamp(8, 64))
                .unwrap_or(NonZeroUsize::MIN),
            bulk_threads: NonZeroUsize::new(cores / 2).unwrap_or(NonZeroUsize::MIN),
            max_queued: None,
            stack_size: None,
            idle_spin: DEFAULT_IDLE_SPIN,
            priority: Priority::Lower,
            hooks: Hooks::default(),
            global: false,
        }
    }

    /// Names the pool; threads are called `{name}-worker-{i}` and `{name}-blocking-{i}`.
    /// A name with a NUL byte, which no thread name can hold, fails the
    /// [`build`](Self::build).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The most threads [`build`](Self::build) starts in either lane (worker,
    /// blocking): a count past it is an error, not an attempt to reserve room for
    /// that many.
    pub const MAX_THREADS: usize = 1 << 15;

    /// How many worker threads (each with its own runtime) run async jobs.
    pub fn worker_threads(mut self, n: NonZeroUsize) -> Self {
        self.worker_threads = n;
        self
    }

    /// How many threads run blocking closures.
    pub fn blocking_threads(mut self, n: NonZeroUsize) -> Self {
        self.blocking_threads = n;
        self
    }

    /// How many blocking threads may run [bulk jobs](crate::Executor::spawn_blocking_bulk)
    /// (copies at memory speed) at once; at most `blocking_threads`. By default half
    /// the cores, at least one: the other half is left to the caller's own work, and
    /// on a 2-core machine whose caller kept one core busy, one copy at a time read
    /// more than several (docs/architecture.md has the measurements).
    pub fn bulk_threads(mut self, n: NonZeroUsize) -> Self {
        self.bulk_threads = n;
        self
    }

    /// Bounds the jobs accepted but not yet started, over both lanes. Past the bound a
    /// submission is refused: its handle resolves at once to a
    /// [`JoinError`](crate::JoinError) with [`is_queue_full`](crate::JoinError::is_queue_full).
    /// A blocking job's own `spawn_blocking`, which runs inline and waits in no
    /// queue, is never refused, nor is a job submitted through
    /// [`Executor::without_queue_bound`](crate::Executor::without_queue_bound)
    /// (work continuing what was accepted, such as a write's next chunk). Bulk jobs waiting their turn
    /// ([`bulk_threads`](Self::bulk_threads)) count, even while blocking threads
    /// are idle. Unbounded by default.
    pub fn max_queued_jobs(mut self, n: NonZeroUsize) -> Self {
        self.max_queued = Some(n);
        self
    }

    /// Stack size of every thread of the pool (the platform default otherwise).
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// How long an idle worker keeps polling its queue (spinning briefly, then
    /// yielding its core to any thread that wants it) before it sleeps; and how long
    /// one idle blocking thread (one per pool at a time: the first to find the lane
    /// empty while no other spins) polls the blocking lane.
    ///
    /// A job that arrives within the window skips the wake-up of a sleeping thread,
    /// which on virtual machines costs tens of microseconds. `Duration::ZERO` turns it
    /// off: idle threads then sleep at once (after a few spins and yields, on the
    /// blocking lane) and cost no CPU while idle. Default: 50 µs.
    pub fn idle_spin(mut self, window: Duration) -> Self {
        self.idle_spin = window;
        self
    }

    /// Runs every thread of the pool at this nice value (Linux: -20 highest to 19
    /// lowest; lowering the priority needs no privilege, raising it may).
    ///
    /// Default: 19 lower than the thread that calls [`build`](Self::build), at most
    /// 19: the lowest priority for a caller at the usual nice 0. IO threads that
    /// yield to the caller's threads when the cores are busy are what keeps the
    /// caller's runtime responsive: IO threads mostly wait on the kernel, and when
    /// they do copy, they get the cores the caller leaves idle (an idle core runs
    /// them at full speed). In `dio bench isolation` on 2 cores, a pool at the
    /// caller's own priority left the caller's CPU task 0.62x of its unloaded rate
    /// and added 2.6 ms to its ticker's p99; at nice 10 it kept 0.95x-0.96x and
    /// +0.33 to +0.98 ms, at nice 19 0.98x-0.99x and +0.03 to +0.06 ms, with the
    /// same IO throughput on average. The price: while other processes keep every
    /// core busy, the pool gets about 1.5% of a contended core (nice 10: about
    /// 10%). See docs/architecture.md for the measurements.
    ///
    /// A value the system refuses (raising the priority without the privilege to)
    /// does not fail [`build`](Self::build): each thread logs a warning (`tracing`)
    /// and runs at the priority it inherited.
    pub fn nice(mut self, nice: i32) -> Self {
        self.priority = Priority::Nice(nice);
        self
    }

    /// Runs the pool's threads at the priority of the thread that builds it, instead
    /// of the default 19 lower (see [`nice`](Self::nice)).
    pub fn inherit_priority(mut self) -> Self {
        self.priority = Priority::Inherited;
        self
    }

    /// Runs `f` on each thread of the pool when it starts, before it takes any job.
    /// A panic in `f` is logged and ignored.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.hooks.on_start = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each thread of the pool just before it exits.
    /// A panic in `f` is logged and ignored.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.hooks.on_stop = Some(Arc::new(f));
        self
    }

    /// Unit tests only: `f` runs on a blocking thread that has taken a job off the
    /// lane, before the thread registers the job as running.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn on_blocking_job_taken(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.hooks.blocking_job_taken = Some(Arc::new(f));
        self
    }

    pub(crate) fn global(mut self) -> Self {
        self.global = true;
        self
    }

    /// Starts the threads and returns a handle to the pool.
    ///
    /// # Errors
    ///
    /// Fails if the operating system refuses a thread or a worker's runtime cannot be
    /// built (for example, no file descriptors left for its IO driver). Threads that
    /// did start are shut down again. Fails with [`io::ErrorKind::InvalidInput`],
    /// starting nothing, if the [`name`](Self::name) contains a NUL byte, or if either
    /// lane is given more than [`MAX_THREADS`](Self::MAX_THREADS) threads (the pool's bookkeeping is
    /// sized by them before any thread starts).
    pub fn build(mut self) -> io::Result<Executor> {
        if self.name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "executor name {:?} contains a NUL byte, which a thread name cannot hold",
                    self.name
                ),
            ));
        }
        for (lane, n) in [
            ("worker", self.worker_threads.get()),
            ("blocking", self.blocking_threads.get()),
        ] {
            if n > Self::MAX_THREADS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "executor {:?}: {n} {lane} threads asked for, more than an executor \
                         may have ({} a lane)",
                        self.name,
                        Self::MAX_THREADS
                    ),
                ));
            }
        }
        self.hooks.nice = match self.priority {
            Priority::Inherited => None,
            Priority::Nice(nice) => Some(nice),
            Priority::Lower => {
                let own = rustix::process::getpriority_process(None).unwrap_or(0);
                Some((own + DEFAULT_NICE_OFFSET).min(19))
            }
        };
        let workers = self.worker_threads.get();
        let blocking = self.blocking_threads.get();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (worker_tx, worker_rx): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| crossbeam_channel::unbounded()).unzip();
        let shared = Arc::new(Shared::new(
            self.name.clone(),
            self.max_queued.map(NonZeroUsize::get),
            self.global,
            worker_tx,
            Some(tx),
            Some(
                PoolState::new(workers, blocking, rx)
                    .with_bulk_limit(self.bulk_threads.get().min(blocking)),
            ),
            workers + blocking,
        ));
        let executor = Executor::from_pool(Arc::clone(&shared));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut started = 0;
        let mut failure = None;
        for (index, jobs) in worker_rx.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let hooks = self.hooks.clone();
            let ready_tx = ready_tx.clone();
            let idle_spin = self.idle_spin;
            #[cfg(not(loom))]
            let pool = Arc::downgrade(&shared);
            let thread = format!("{}-worker-{index}", self.name);
            let in_thread = thread.clone();
            let spawned = self.thread(thread.clone()).spawn(move || {
                let mut runtime = tokio::runtime::Builder::new_current_thread();
                runtime.enable_all();
                // The threads it starts for `spawn_blocking` are known as the
                // pool's (see `Executor::current`). Tokio has no such hook
                // under loom, whose models start no runtime.
                #[cfg(not(loom))]
                runtime.on_thread_start(move || context::enter_runtime_thread(&pool));
                let runtime = runtime.build();
                #[cfg(all(test, not(loom)))]
                let runtime = match hooks.failing_worker {
                    Some(failing) if failing == index => {
                        Err(io::Error::other("the test's failing runtime"))
                    }
                    _ => runtime,
                };
                match runtime {
                    Ok(runtime) => {
                        let _ = ready_tx.send(Ok(()));
                        drop(ready_tx);
                        worker::run(shared, index, runtime, jobs, idle_spin, &hooks);
                    }
                    Err(e) => {
                        let what = format!("thread {in_thread:?} could not build its runtime");
                        let _ = ready_tx.send(Err(failed(e, &what)));
                        shared.exit.thread_exited();
                    }
                }
            });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => {
                    failure = Some(failed(e, &format!("thread {thread:?} could not start")));
                    break;
                }
            }
        }
        drop(ready_tx);
        for _ in 0..started {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => {
                    failure = failure
                        .or_else(|| Some(io::Error::other("a worker thread died while starting")));
                    break;
                }
            }
        }
        if failure.is_none() {
            for index in 0..blocking {
                let shared = Arc::clone(&shared);
                let hooks = self.hooks.clone();
                let idle_spin = self.idle_spin;
                let thread = format!("{}-blocking-{index}", self.name);
                let spawned = self
                    .thread(thread.clone())
                    .spawn(move || blocking::run(shared, index, idle_spin, &hooks));
                if let Err(e) = spawned {
                    failure = Some(failed(e, &format!("thread {thread:?} could not start")));
                    break;
                }
            }
        }
        if let Some(e) = failure {
            // Also for the global pool, which no `shutdown` stops.
            shared.close();
            return Err(e);
        }
        Ok(executor)
    }

    fn thread(&self, name: String) -> std::thread::Builder {
        let builder = std::thread::Builder::new().name(name);
        match self.stack_size {
            Some(size) => builder.stack_size(size),
            None => builder,
        }
    }
}

/// `err` with what failed said first (which thread, doing what), of the same kind.
fn failed(err: io::Error, what: &str) -> io::Error {
    io::Error::new(err.kind(), format!("building the executor: {what}: {err}"))
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("worker_threads", &self.worker_threads)
            .field("blocking_threads", &self.blocking_threads)
            .field("bulk_threads", &self.bulk_threads)
            .field("max_queued", &self.max_queued)
            .field("stack_size", &self.stack_size)
            .field("idle_spin", &self.idle_spin)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// The global pool ignores `shutdown`; one whose build failed midway is still
    /// closed, so the threads that did start exit instead of waiting for ever.
    #[test]
    fn a_global_pool_that_fails_to_start_lets_its_started_threads_exit() {
        let stopped = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&stopped);
        let mut builder = Builder::new()
            .name("failing-global")
            .global()
            .worker_threads(NonZeroUsize::new(3).unwrap())
            .on_thread_stop(move || {
                count.fetch_add(1, Ordering::SeqCst);
            });
        builder.hooks.failing_worker = Some(2);
        let err = builder.build().expect_err("a worker's runtime failed");
        assert!(err.to_string().contains("failing runtime"), "{err}");
        assert!(
            err.to_string()
                .contains("thread \"failing-global-worker-2\" could not build its runtime"),
            "{err}"
        );
        // Workers 0 and 1 had started. The bound only ends a failing test.
        let deadline = Instant::now() + Duration::from_secs(30);
        while stopped.load(Ordering::SeqCst) < 2 {
            assert!(
                Instant::now() < deadline,
                "the started workers never exited"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
