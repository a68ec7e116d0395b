//! [`Shared`]: the state every handle, job and thread of one executor points at.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use crossbeam_utils::CachePadded;
use tokio::sync::Notify;

use crate::JoinError;
use crate::bulk::BulkQueue;
use crate::completion::{CancelOnShutdown, Completion};
use crate::context;
use crate::exit_signal::ExitSignal;
use crate::metrics::{Counters, Outcome};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{Mutex, RwLock, RwLockReadGuard};
use crate::task::{BlockingJob, JobGuard, drop_guarded};

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The bit of [`Shared::outstanding`] that `shutdown` sets.
const CLOSED: usize = 1 << (usize::BITS - 1);

pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) counters: Counters,
    /// Jobs accepted and not yet ended, plus [`CLOSED`] once shut down: what ends
    /// the drain (what [`Executor::join`](crate::Executor::join) waits on when no
    /// threads of ours are involved; a pool's channels close then). `shutdown` sets
    /// the bit and the last job takes the count to zero, each with one
    /// read-modify-write of this word, so exactly one of them sees the other and
    /// ends the drain (model-checked with loom); once zero after a shutdown, it
    /// never counts up again ([`drain_open`]).
    outstanding: CachePadded<AtomicUsize>,
    max_queued: Option<usize>,
    /// Submissions hold the read side while they enqueue; `shutdown` takes the write
    /// side to close it. So once `shutdown` returns, every accepted job is in a queue
    /// that the workers will drain, and nothing more gets in but what those jobs
    /// submit themselves (see [`accept`](Self::accept)). The channels' senders stay
    /// until the last job has ended (or a deadline aborts the pool): the lanes that
    /// run such work are alive until then.
    intake: RwLock<Intake>,
    shutting_down: AtomicBool,
    /// A shutdown deadline has passed (every mode): nothing more is accepted, not
    /// even from a job (see [`accept`](Self::accept)).
    cut_off: AtomicBool,
    /// The global executor ignores `shutdown`: it is shared by everyone.
    global: bool,
    pub(crate) exit: ExitSignal,
    pub(crate) pool: Option<PoolState>,
}

pub(crate) struct Intake {
    open: bool,
    pub(crate) worker_tx: Vec<Sender<AsyncJob>>,
    pub(crate) blocking_tx: Option<Sender<BlockingJob>>,
}

impl Intake {
    fn close_senders(&mut self) {
        self.worker_tx.clear();
        self.blocking_tx = None;
    }
}

/// Whether the drain is still open at count word `count`: not shut down, or shut
/// down with jobs still counted.
fn drain_open(count: usize) -> bool {
    count & CLOSED == 0 || count & !CLOSED > 0
}

/// The job a blocking thread is running, if any.
pub(crate) type RunningSlot = Mutex<Option<Arc<dyn CancelOnShutdown>>>;

/// A type-erased async job on its way to a worker.
pub(crate) type AsyncJob = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What only a dedicated pool has: threads.
pub(crate) struct PoolState {
    /// Per worker: parked on its channel (outside its runtime), so a send alone wakes it.
    pub(crate) parked: Box<[CachePadded<AtomicBool>]>,
    pub(crate) load: Box<[CachePadded<AtomicUsize>]>,
    pub(crate) notify: Box<[Notify]>,
    pub(crate) blocking_rx: Receiver<BlockingJob>,
    /// What each blocking thread is running, so a deadline can resolve its handle.
    pub(crate) running_blocking: Box<[RunningSlot]>,
    pub(crate) aborting: AtomicBool,
    next: AtomicUsize,
    /// The blocking lane's idle threads, the most recently parked last; see
    /// [`wake_blocking`](Self::wake_blocking).
    idle_blocking: parking_lot::Mutex<Vec<usize>>,
    /// Each blocking thread's handle, set when it starts, to unpark it.
    blocking_threads: Box<[std::sync::OnceLock<std::thread::Thread>]>,
    /// Whether an idle blocking thread is spinning on the lane instead of parking
    /// (at most one does): [`NO_SPINNER`], [`SPINNING`], or [`CLAIMED`] by a
    /// submitter that counted on it instead of waking a parked thread.
    spinner: CachePadded<AtomicUsize>,
    /// Bulk jobs waiting for a runner (see [`crate::bulk`]).
    pub(crate) bulk: parking_lot::Mutex<BulkQueue>,
    /// The most runners of bulk jobs at once.
    pub(crate) bulk_limit: usize,
}

/// No blocking thread is spinning.
const NO_SPINNER: usize = 0;
/// A blocking thread is spinning, and no submitter has counted on it yet.
const SPINNING: usize = 1;
/// A blocking thread is spinning, and one job's submitter did not wake anyone.
const CLAIMED: usize = 2;

impl PoolState {
    pub(crate) fn new(workers: usize, blocking: usize, rx: Receiver<BlockingJob>) -> Self {
        Self {
            parked: (0..workers)
                .map(|_| CachePadded::new(AtomicBool::new(false)))
                .collect(),
            load: (0..workers)
                .map(|_| CachePadded::new(AtomicUsize::new(0)))
                .collect(),
            notify: (0..workers).map(|_| Notify::new()).collect(),
            blocking_rx: rx,
            running_blocking: (0..blocking).map(|_| Mutex::new(None)).collect(),
            aborting: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            idle_blocking: parking_lot::Mutex::new(Vec::with_capacity(blocking)),
            blocking_threads: (0..blocking).map(|_| std::sync::OnceLock::new()).collect(),
            spinner: CachePadded::new(AtomicUsize::new(NO_SPINNER)),
            bulk: parking_lot::Mutex::new(BulkQueue::default()),
            bulk_limit: 1,
        }
    }

    /// The same state, with at most `limit` runners of bulk jobs at once.
    pub(crate) fn with_bulk_limit(mut self, limit: usize) -> Self {
        self.bulk_limit = limit.max(1);
        self
    }

    /// Runs `job` (`what`: "a blocking job", "a bulk job") on this thread,
    /// registered in `slot` while it runs. The check and the registration happen
    /// under the slot's lock, which an abort takes after it sets `aborting`: either
    /// the abort finds the job there (and resolves its handle) or this thread sees
    /// the abort, and drops the job unrun.
    pub(crate) fn run_registered(&self, slot: &RunningSlot, job: BlockingJob, what: &str) {
        {
            let mut running = slot.lock();
            if self.aborting.load(Ordering::SeqCst) {
                drop(running);
                drop_guarded(what, || drop(job));
                return;
            }
            *running = Some(job.canceller());
        }
        // The closure runs under `catch_unwind` already; what can still panic here
        // is a destructor: a closure dropped unrun, or a result nobody waits for,
        // which goes with the last reference to its handle's state (maybe the
        // slot's).
        drop_guarded(what, || job.run());
        let canceller = slot.lock().take();
        drop_guarded(what, || drop(canceller));
    }

    /// Blocking thread `index` starts: `thread` is how to wake it.
    pub(crate) fn blocking_thread_started(&self, index: usize, thread: std::thread::Thread) {
        let _ = self.blocking_threads[index].set(thread);
    }

    /// Wakes every worker (inside its runtime or parked on its channel) and every
    /// idle blocking thread, to look at the pool's state again.
    pub(crate) fn wake_all(&self) {
        for notify in self.notify.iter() {
            notify.notify_one();
        }
        self.wake_all_blocking();
    }

    /// After a job is queued on the blocking lane: wakes the blocking thread that
    /// parked last, if one is idle. The most recently idle thread is the one whose
    /// caches, stack and core are still warm; the longest idle (what a channel's own
    /// wake-up picks) has been asleep longest, and with many idle threads every job
    /// landed on a different cold one in turn. On a 2-core Intel Xeon, a pool of 16
    /// blocking threads read single 8 MiB ranges at 0.85x-1.15x std in `dio bench`
    /// waking the longest idle, 1.06x-1.33x waking the most recent (three
    /// alternating pairs of runs; docs/architecture.md).
    pub(crate) fn wake_blocking(&self) -> Option<usize> {
        let index = self.idle_blocking.lock().pop()?;
        self.unpark_blocking(index);
        Some(index)
    }

    fn unpark_blocking(&self, index: usize) {
        if let Some(thread) = self.blocking_threads[index].get() {
            thread.unpark();
        }
    }

    /// After a job is queued on the blocking lane: counts on the spinning thread,
    /// if one spins and no other job counts on it yet, else wakes a parked one
    /// ([`wake_blocking`](Self::wake_blocking)). One job, one thread: a burst of
    /// jobs gets the spinner and as many parked threads as it has jobs beyond the
    /// first, woken at once, never one after another.
    pub(crate) fn job_queued(&self) {
        let claimed = self
            .spinner
            .compare_exchange(SPINNING, CLAIMED, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !claimed {
            let _ = self.wake_blocking();
        }
    }

    /// An idle blocking thread asks to spin on the lane before it parks; `true` if
    /// it is now the pool's spinner (no other thread was).
    pub(crate) fn start_spinning(&self) -> bool {
        self.spinner
            .compare_exchange(NO_SPINNER, SPINNING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The spinner took a job, or stops spinning to park: from now on submitters
    /// wake parked threads. `true` if a submitter had counted on it. That job was
    /// queued before the submitter counted on the spinner, so (this swap reading
    /// the claim) the spinner's next look at the lane sees it, unless another thread
    /// took it; but a spinner that has just taken a job looks again only after
    /// running it, so it wakes a parked thread if the lane still holds a job
    /// ([`job_taken_by_spinner`](Self::job_taken_by_spinner)).
    pub(crate) fn stop_spinning(&self) -> bool {
        self.spinner.swap(NO_SPINNER, Ordering::SeqCst) == CLAIMED
    }

    /// The spinner took a job from the lane: it stops spinning, and if a submitter
    /// counted on it for another job that is still queued, that job wakes a parked
    /// thread instead of waiting for this one to finish.
    pub(crate) fn job_taken_by_spinner(&self) {
        if self.stop_spinning() && !self.blocking_rx.is_empty() {
            let _ = self.wake_blocking();
        }
    }

    /// Wakes every idle blocking thread (the lane is closing).
    pub(crate) fn wake_all_blocking(&self) {
        let idle = std::mem::take(&mut *self.idle_blocking.lock());
        for index in idle {
            self.unpark_blocking(index);
        }
    }

    /// Blocking thread `index` is about to park: from now on a queued job wakes it.
    pub(crate) fn blocking_idle(&self, index: usize) {
        self.idle_blocking.lock().push(index);
    }

    /// Blocking thread `index` woke from its park: off the stack if nobody took it
    /// off to wake it (a spurious wake-up, or the lane closing), so it is never on
    /// it twice.
    pub(crate) fn leave_idle_after_park(&self, index: usize) {
        let mut idle = self.idle_blocking.lock();
        if let Some(at) = idle.iter().rposition(|&i| i == index) {
            idle.remove(at);
        }
    }

    /// Blocking thread `index` is busy again. If a submitter had already taken it off
    /// the idle stack to wake it (and it is taking a job by itself instead), the
    /// wake-up goes on to the next idle thread: one wake-up per queued job is never
    /// lost on a thread that was awake anyway.
    pub(crate) fn blocking_busy(&self, index: usize) {
        let mut idle = self.idle_blocking.lock();
        match idle.iter().rposition(|&i| i == index) {
            Some(at) => {
                idle.remove(at);
            }
            None => {
                drop(idle);
                let _ = self.wake_blocking();
            }
        }
    }

    pub(crate) fn workers(&self) -> usize {
        self.load.len()
    }

    /// The least-loaded worker. When the caller is itself a job on worker `local`,
    /// that job does not count against its own worker, and ties go to `local` (no hop
    /// at all); otherwise ties go round-robin, so an idle pool spreads a burst evenly.
    pub(crate) fn pick_worker(&self, local: Option<usize>) -> usize {
        let n = self.load.len();
        let start = local.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % n);
        let mut best = start;
        let mut best_load = self.load[start].load(Ordering::Relaxed);
        if local.is_some() {
            best_load = best_load.saturating_sub(1);
        }
        for step in 1..n {
            if best_load == 0 {
                break;
            }
            let w = (start + step) % n;
            let load = self.load[w].load(Ordering::Relaxed);
            if load < best_load {
                best = w;
                best_load = load;
            }
        }
        best
    }

    /// Hands `job` to worker `worker`'s channel and wakes the worker. A send only
    /// fails once the worker has exited (after an abort): the job comes back, for
    /// the caller to drop (which resolves its handle with a shutdown error) once it
    /// has released the intake, as the job's drop may spawn or shut down.
    #[must_use = "a refused job is dropped after the intake is released"]
    pub(crate) fn send(&self, intake: &Intake, worker: usize, job: AsyncJob) -> Option<AsyncJob> {
        // The senders are gone once the drain has ended or a deadline aborted the
        // pool. An accepted job, counted while the drain was open and sent with
        // the intake held, finds them: this is only a guard.
        let Some(tx) = intake.worker_tx.get(worker) else {
            return Some(job);
        };
        match tx.send(job) {
            Ok(()) => {
                if !self.parked[worker].load(Ordering::SeqCst) {
                    // The worker is inside its runtime: wake it there. (A parked
                    // worker is woken by the send itself.)
                    self.notify[worker].notify_one();
                }
                None
            }
            Err(refused) => Some(refused.into_inner()),
        }
    }
}

impl Shared {
    pub(crate) fn new(
        name: String,
        max_queued: Option<usize>,
        global: bool,
        worker_tx: Vec<Sender<AsyncJob>>,
        blocking_tx: Option<Sender<BlockingJob>>,
        pool: Option<PoolState>,
        live_threads: usize,
    ) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            counters: Counters::default(),
            outstanding: CachePadded::new(AtomicUsize::new(0)),
            max_queued,
            intake: RwLock::new(Intake {
                open: true,
                worker_tx,
                blocking_tx,
            }),
            shutting_down: AtomicBool::new(false),
            cut_off: AtomicBool::new(false),
            global,
            exit: ExitSignal::new(live_threads),
            pool,
        }
    }

    pub(crate) fn intake(&self) -> RwLockReadGuard<'_, Intake> {
        self.intake.read()
    }

    pub(crate) fn is_global(&self) -> bool {
        self.global
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Accepts a job (counting it) or resolves its handle at once with the reason it
    /// was refused. Must be called with `intake` held; a pool keeps it held until
    /// the job is in its channel (a job accepted is counted, so a shutdown's drain
    /// waits for it either way). The queue's bound does not refuse an `unbounded`
    /// job: one that runs inline, on the submitting thread before the call
    /// returns (it never waits in a queue), or one submitted through
    /// [`Executor::without_queue_bound`](crate::Executor::without_queue_bound).
    ///
    /// After a shutdown, a job is still accepted from inside one of this executor's
    /// own jobs (the work a job accepted before the shutdown goes on to submit: its
    /// IO, its next step), until the last job has ended or a shutdown deadline has
    /// cut the jobs off; the drain waits for it as for any job.
    pub(crate) fn accept<T>(
        self: &Arc<Self>,
        intake: &Intake,
        completion: &Arc<Completion<T>>,
        worker: Option<usize>,
        blocking: bool,
        unbounded: bool,
    ) -> Option<JobGuard<T>> {
        let c = &self.counters;
        // Counted now if intake is closed: see `count_within_job`.
        let counted = !intake.open;
        if counted && !self.count_within_job() {
            c.rejected.fetch_add(1, Ordering::Relaxed);
            completion.complete(Err(JoinError::shutdown()));
            return None;
        }
        let queued = c.queued.fetch_add(1, Ordering::Relaxed);
        if let Some(limit) = self.max_queued
            && queued >= limit
            && !unbounded
        {
            c.queued.fetch_sub(1, Ordering::Relaxed);
            c.rejected.fetch_add(1, Ordering::Relaxed);
            completion.complete(Err(JoinError::queue_full(limit)));
            if counted {
                // Not `job_left`: the submitting job is still counted, so this never
                // ends the drain (which would take the intake this call holds).
                self.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
            return None;
        }
        // Intake is open (and `intake` held), so `CLOSED` is not set yet; or the job
        // is counted already.
        Some(self.admit(completion, worker, blocking, counted))
    }

    /// Whether a shutdown deadline has passed.
    pub(crate) fn is_cut_off(&self) -> bool {
        self.cut_off.load(Ordering::SeqCst)
    }

    /// Whether a job submitted from this thread now would be accepted, as far as a
    /// shutdown goes (see [`accept`](Self::accept)).
    pub(crate) fn accepts_here(&self) -> bool {
        !self.is_shutting_down()
            || (context::is_in_job_of(self.id)
                && !self.cut_off.load(Ordering::SeqCst)
                && drain_open(self.outstanding.load(Ordering::Acquire)))
    }

    /// After a shutdown: counts a job submitted from inside one of this executor's
    /// own jobs in [`outstanding`](Self::outstanding), and says whether it did.
    /// Never from zero: a count that has reached zero after a shutdown has ended
    /// the drain (the exit signal is done, the channels closed), and stays there.
    /// Not once a deadline has passed: a job cut off runs on, but what it
    /// submits is refused.
    fn count_within_job(&self) -> bool {
        context::is_in_job_of(self.id) && self.count_unless_drained()
    }

    /// Counts one more job in [`outstanding`](Self::outstanding) unless the drain
    /// has ended (the count is zero after a shutdown) or a deadline has passed.
    fn count_unless_drained(&self) -> bool {
        !self.cut_off.load(Ordering::SeqCst)
            && self
                .outstanding
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                    drain_open(count).then_some(count + 1)
                })
                .is_ok()
    }

    /// Counts a job whose `queued` count is taken (spawned, unfinished, its
    /// worker's load; in `outstanding` unless `counted` already) and returns its
    /// guard.
    fn admit<T>(
        self: &Arc<Self>,
        completion: &Arc<Completion<T>>,
        worker: Option<usize>,
        blocking: bool,
        counted: bool,
    ) -> JobGuard<T> {
        let c = &self.counters;
        c.spawned.fetch_add(1, Ordering::Relaxed);
        if !counted {
            self.outstanding.fetch_add(1, Ordering::AcqRel);
        }
        if blocking {
            c.blocking_queued.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(w), Some(pool)) = (worker, &self.pool) {
            pool.load[w].fetch_add(1, Ordering::SeqCst);
        }
        JobGuard::new(Arc::clone(self), Arc::clone(completion), worker, blocking)
    }

    /// Accepts a job for worker `worker` that code running there starts for its
    /// clean-up ([`spawn_cleanup`](crate::spawn_cleanup)), whether intake is
    /// open or not, until the drain has ended or a deadline has passed (`None`
    /// then): counted as any job, so the worker (the calling thread) stays until
    /// it ends.
    pub(crate) fn accept_cleanup<T>(
        self: &Arc<Self>,
        completion: &Arc<Completion<T>>,
        worker: usize,
    ) -> Option<JobGuard<T>> {
        if !self.count_unless_drained() {
            return None;
        }
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        Some(self.admit(completion, Some(worker), false, true))
    }

    /// Jobs accepted and not yet ended.
    #[cfg(all(test, loom))]
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire) & !CLOSED
    }

    /// A job has ended: counts it, and takes it off its worker's load. Its handle is
    /// resolved after this, then [`job_left`](Self::job_left) is called.
    pub(crate) fn job_ended(&self, worker: Option<usize>, outcome: Outcome) {
        self.counters.record_end(outcome);
        if let (Some(w), Some(pool)) = (worker, &self.pool)
            && pool.load[w].fetch_sub(1, Ordering::SeqCst) == 1
        {
            // The worker may now leave its runtime, or exit if shutting down. (It is
            // the thread that runs this job, so it cannot exit before the job has
            // resolved its handle.)
            pool.notify[w].notify_one();
        }
    }

    /// An ended job whose handle is resolved leaves the count of unfinished jobs;
    /// the last one after a shutdown ends the drain: it lets `join` return on an
    /// executor without threads, and closes a pool's channels, so that its threads
    /// exit.
    pub(crate) fn job_left(&self) {
        let before = self.outstanding.fetch_sub(1, Ordering::AcqRel);
        if before == CLOSED | 1 {
            self.drained();
        }
    }

    /// `true` once shut down with every job accepted ended and its handle resolved:
    /// the drain is over (a pool's threads may still be on their way out).
    pub(crate) fn has_drained(&self) -> bool {
        !drain_open(self.outstanding.load(Ordering::Acquire))
    }

    /// Every job accepted has ended, after a shutdown (and nothing more can be
    /// accepted: see [`count_within_job`](Self::count_within_job)).
    fn drained(&self) {
        let Some(pool) = &self.pool else {
            self.exit.mark_done();
            return;
        };
        self.close_channels();
        pool.wake_all();
    }

    /// Drops the channels' senders: parked workers and blocking threads exit once
    /// their queues are empty. (A job's drop may spawn: none is dropped here.)
    fn close_channels(&self) {
        self.intake.write().close_senders();
    }

    /// Stops intake (not of the global pool, which lives as long as the process).
    /// Never blocks for longer than in-flight submissions take to enqueue; never
    /// waits for jobs.
    pub(crate) fn shutdown(&self) {
        if !self.global {
            self.close();
        }
    }

    /// [`shutdown`](Self::shutdown), of any pool: also of a global one whose build
    /// failed, so that the threads that did start exit instead of waiting for ever.
    pub(crate) fn close(&self) {
        let outstanding = {
            let mut intake = self.intake.write();
            if !intake.open {
                return;
            }
            intake.open = false;
            self.shutting_down.store(true, Ordering::SeqCst);
            let outstanding = self.outstanding.fetch_or(CLOSED, Ordering::AcqRel);
            if outstanding == 0 {
                // Nothing accepted is left to end (and nothing can be accepted
                // now): the senders go at once, and parked threads exit.
                intake.close_senders();
            }
            outstanding
        };
        tracing::debug!(executor = %self.name, "executor shutting down");
        match &self.pool {
            // Workers with no jobs left park (or drive their tasks) until the
            // drain ends.
            Some(pool) => pool.wake_all(),
            // Nothing accepted is left to end; otherwise the last job finishes.
            None if outstanding == 0 => self.exit.mark_done(),
            None => {}
        }
    }

    /// Cancels everything still queued or running (after a shutdown deadline), on
    /// a pool; on any executor, refuses everything from now on.
    pub(crate) fn abort(&self) {
        self.cut_off.store(true, Ordering::SeqCst);
        let Some(pool) = &self.pool else {
            return;
        };
        pool.aborting.store(true, Ordering::SeqCst);
        // Nothing more is accepted (`count_unless_drained` sees `cut_off`, or its
        // submission holds the intake until its job is queued, and is dropped
        // below), and the threads parked on a channel see it closed.
        self.close_channels();
        pool.wake_all();
        // Queued blocking jobs: dropping them resolves their handles (on this,
        // the caller's thread: a destructor's panic must not escape into it).
        while let Ok(job) = pool.blocking_rx.try_recv() {
            drop_guarded("dropping a queued blocking job", || drop(job));
        }
        // One at a time, as the channel's: two panicking destructors in one
        // `drop_guarded` would be a panic while panicking.
        let bulk = pool.bulk.lock().take_all();
        for job in bulk {
            drop_guarded("dropping a queued bulk job", || drop(job));
        }
        // Running blocking jobs cannot be interrupted; resolve their handles now and
        // let the closures finish in the background. A thread that took a job off the
        // lane and has not registered it yet does so under its slot's lock, after
        // `aborting` is set, and then sees it: it drops the job unrun.
        for slot in pool.running_blocking.iter() {
            if let Some(job) = slot.lock().as_ref() {
                job.cancel_on_shutdown();
            }
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .field("shutting_down", &self.is_shutting_down())
            .finish_non_exhaustive()
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom"`): the shutdown handshake of an executor
/// without threads, where `join` waits for the last accepted job instead of threads.
#[cfg(all(test, loom))]
mod loom_models {
    use std::future::poll_fn;

    use loom::future::block_on;
    use loom::thread;
    use tracing::Span;

    use super::*;
    use crate::sync::check;
    use crate::task::BlockingTask;
    use crate::task::loom_models::{accept, threadless};

    /// `shutdown` (setting `CLOSED`) races the last job's end (taking the count to
    /// zero): exactly one of them sees the other and finishes the exit signal, so a
    /// joiner always wakes, and finds the job's handle resolved.
    ///
    /// (The first form of this handshake, a `SeqCst` store and load on two separate
    /// atomics on each side, was correct but beyond loom, which models `SeqCst`
    /// accesses as `AcqRel` and reported a lost wake-up; one word is both simpler and
    /// checkable.)
    fn shutdown_races_the_last_job(join: impl Fn(&Shared) + Sync + Send + 'static) {
        check(move || {
            let shared = threadless();
            let (handle, guard) = accept(&shared, true);
            let task: BlockingJob = Box::new(BlockingTask::new(|| 1_u8, Span::none(), guard));
            let worker = thread::spawn(move || task.run());
            let stopper = {
                let shared = Arc::clone(&shared);
                thread::spawn(move || shared.shutdown())
            };
            join(&shared);
            assert!(shared.exit.is_done());
            assert!(
                handle.is_finished(),
                "joined before the job's handle resolved"
            );
            worker.join().unwrap();
            stopper.join().unwrap();
            assert_eq!(handle.join().unwrap(), 1);
        });
    }

    /// A job submits one of its own as `shutdown` closes intake: the second is
    /// accepted whichever comes first (the job is still counted, so the drain has
    /// not ended), and the exit signal waits for it too.
    #[test]
    fn a_job_submitting_its_own_work_as_the_executor_shuts_down() {
        check(|| {
            let shared = threadless();
            let (handle, guard) = accept(&shared, true);
            let inner = Arc::clone(&shared);
            let task: BlockingJob = Box::new(BlockingTask::new(
                move || {
                    let completion = Arc::new(Completion::new());
                    let child = crate::JoinHandle::new(Arc::clone(&completion));
                    let accepted = inner.accept(&inner.intake(), &completion, None, true, false);
                    let guard = accepted.expect("a job's own work is accepted");
                    // Run after this job has ended, on another thread.
                    let job: BlockingJob =
                        Box::new(BlockingTask::new(|| 2_u8, Span::none(), guard));
                    (child, job)
                },
                Span::none(),
                guard,
            ));
            let worker = thread::spawn(move || task.run());
            let stopper = {
                let shared = Arc::clone(&shared);
                thread::spawn(move || shared.shutdown())
            };
            worker.join().unwrap();
            let (child, job) = handle.join().unwrap();
            assert!(
                !shared.exit.is_done(),
                "done before the job's own work ended"
            );
            let runner = thread::spawn(move || job.run());
            stopper.join().unwrap();
            assert!(shared.exit.wait(None));
            assert!(child.is_finished());
            runner.join().unwrap();
            assert_eq!(child.join().unwrap(), 2);
        });
    }

    #[test]
    fn shutdown_racing_the_last_job_wakes_a_blocked_joiner() {
        shutdown_races_the_last_job(|shared| assert!(shared.exit.wait(None)));
    }

    #[test]
    fn shutdown_racing_the_last_job_wakes_an_async_joiner() {
        shutdown_races_the_last_job(|shared| {
            let mut waiter = shared.exit.waiter();
            block_on(poll_fn(|cx| waiter.poll(cx)));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod idle_blocking_tests {
    use super::PoolState;

    /// A pool state with `n` blocking threads, all "this thread", idle in order.
    fn idle(n: usize) -> PoolState {
        let (_tx, rx) = crossbeam_channel::unbounded();
        let pool = PoolState::new(1, n, rx);
        for i in 0..n {
            pool.blocking_thread_started(i, std::thread::current());
            pool.blocking_idle(i);
        }
        pool
    }

    #[test]
    fn a_queued_job_wakes_the_thread_that_went_idle_last() {
        let pool = idle(3);
        assert_eq!(pool.wake_blocking(), Some(2));
        assert_eq!(*pool.idle_blocking.lock(), [0, 1]);
        assert_eq!(pool.wake_blocking(), Some(1));
        // Thread 1 goes idle again: it is the next to wake, not thread 0.
        pool.blocking_idle(1);
        assert_eq!(pool.wake_blocking(), Some(1));
        assert_eq!(pool.wake_blocking(), Some(0));
        assert_eq!(pool.wake_blocking(), None);
    }

    #[test]
    fn a_thread_woken_while_it_took_a_job_itself_passes_the_wake_up_on() {
        let pool = idle(3);
        // A submitter takes thread 2 off the stack to wake it, but thread 2 had
        // already found a job by itself: the wake-up goes to thread 1.
        assert_eq!(pool.wake_blocking(), Some(2));
        pool.blocking_busy(2);
        assert_eq!(*pool.idle_blocking.lock(), [0]);
        // A thread still on the stack that finds a job only leaves it.
        pool.blocking_busy(0);
        assert!(pool.idle_blocking.lock().is_empty());
    }

    #[test]
    fn a_thread_woken_for_no_job_is_never_on_the_stack_twice() {
        let pool = idle(2);
        // Spurious: thread 0 wakes while still on the stack, and goes idle again.
        pool.leave_idle_after_park(0);
        pool.blocking_idle(0);
        assert_eq!(*pool.idle_blocking.lock(), [1, 0]);
        // Woken by a submitter (off the stack already): nothing to remove.
        assert_eq!(pool.wake_blocking(), Some(0));
        pool.leave_idle_after_park(0);
        assert_eq!(*pool.idle_blocking.lock(), [1]);
        // Closing wakes everyone.
        pool.wake_all_blocking();
        assert!(pool.idle_blocking.lock().is_empty());
    }

    #[test]
    fn one_queued_job_counts_on_the_spinning_thread_and_the_next_wakes_one() {
        let pool = idle(2);
        // No spinner: a queued job wakes the thread that went idle last.
        pool.job_queued();
        assert_eq!(*pool.idle_blocking.lock(), [0]);
        // One thread spins; a second cannot.
        assert!(pool.start_spinning());
        assert!(!pool.start_spinning());
        // The first job counts on the spinner and wakes nobody; the second, queued
        // before the spinner took the first, wakes a parked thread.
        pool.job_queued();
        assert_eq!(*pool.idle_blocking.lock(), [0]);
        pool.job_queued();
        assert!(pool.idle_blocking.lock().is_empty());
        // The spinner took a job: the next spinner can start, and be counted on.
        assert!(pool.stop_spinning(), "a submitter had counted on it");
        assert!(!pool.stop_spinning());
        pool.blocking_idle(1);
        assert!(pool.start_spinning());
        pool.job_queued();
        assert_eq!(*pool.idle_blocking.lock(), [1]);
    }

    /// A job that does nothing, to fill the lane.
    struct Queued;

    impl crate::task::RunBlocking for Queued {
        fn run(self: Box<Self>) {}

        fn canceller(&self) -> std::sync::Arc<dyn crate::completion::CancelOnShutdown> {
            std::sync::Arc::new(crate::completion::Completion::<()>::new())
        }
    }

    #[test]
    fn a_spinner_that_took_a_job_wakes_a_thread_for_a_job_counted_on_it_later() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let pool = PoolState::new(1, 1, rx);
        pool.blocking_thread_started(0, std::thread::current());
        pool.blocking_idle(0);
        // The spinner takes job A; before it stops spinning, job B is queued and its
        // submitter counts on the spinner, which will not look again until A is done.
        assert!(pool.start_spinning());
        tx.send(Box::new(Queued)).unwrap();
        let _a = pool.blocking_rx.try_recv().unwrap();
        tx.send(Box::new(Queued)).unwrap();
        pool.job_queued();
        assert_eq!(*pool.idle_blocking.lock(), [0], "counted on the spinner");
        pool.job_taken_by_spinner();
        assert!(
            pool.idle_blocking.lock().is_empty(),
            "B woke the parked thread"
        );
        let _b = pool.blocking_rx.try_recv().unwrap();
        // Counted on for the very job it took: nothing is left, nobody is woken.
        pool.blocking_idle(0);
        assert!(pool.start_spinning());
        tx.send(Box::new(Queued)).unwrap();
        pool.job_queued();
        let _c = pool.blocking_rx.try_recv().unwrap();
        pool.job_taken_by_spinner();
        assert_eq!(*pool.idle_blocking.lock(), [0]);
    }
}
