//! Which executor thread, if any, the current thread is.
//!
//! Set once when one of our threads starts; read to avoid needless hops (a job
//! submitted from a pool's own thread), to find per-worker state, and to refuse waits
//! that could never end (an executor joined from one of its own threads, a worker
//! blocked on a job).

use std::cell::{Cell, OnceCell, RefCell};
use std::future::Future;
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;

use crate::shared::Shared;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Worker(usize),
    Blocking(usize),
}

thread_local! {
    static CONTEXT: Cell<Option<(u64, Role)>> = const { Cell::new(None) };
    /// The name of the executor the thread belongs to; only read for panic messages.
    static EXECUTOR: OnceCell<String> = const { OnceCell::new() };
    /// On a blocking thread, its pool (weak, so that this thread-local is never an
    /// owner; the thread's own loop holds the pool anyway).
    static BLOCKING_POOL: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
    /// On a worker thread, its own runtime, while the worker has it: what a job
    /// spawned there goes to, whatever other runtime the spawning job has entered.
    static WORKER_RUNTIME: RefCell<Option<Handle>> = const { RefCell::new(None) };
    /// On a worker thread, its pool (weak, as [`BLOCKING_POOL`]).
    static WORKER_POOL: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
    /// On a thread of a worker's runtime's own blocking pool (where a job's
    /// `tokio::task::spawn_blocking` runs), the worker's pool (weak, as
    /// [`BLOCKING_POOL`]).
    static RUNTIME_POOL: RefCell<Weak<Shared>> = const { RefCell::new(Weak::new()) };
    /// While jobs run on this thread (an async job while it is polled): their
    /// executors' ids, innermost last (a job may run another executor's job
    /// inline: a custom spawner's, or a blocking job submitted from a blocking
    /// thread).
    static JOBS_OF: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

// Every thread-local above that has a destructor is read with `try_with`: a
// destructor of another thread-local (a value holding an `Executor`, dropped as its
// thread exits) may submit or join after these are gone, and reading a destroyed
// thread-local panics, which in a destructor aborts the process. A thread whose
// thread-locals are gone is taken for no executor's thread, running no job: a job
// a custom spawner runs inline from such a destructor is not known as one (a
// `join` inside it is not refused, and what it submits after a shutdown is).

/// Marks the current thread as running a job of executor `id` until the returned
/// guard is dropped.
pub(crate) fn in_job_of(id: u64) -> InJob {
    let _ = JOBS_OF.try_with(|jobs| jobs.borrow_mut().push(id));
    InJob(())
}

/// `true` while the current thread runs a job of executor `id` (not merely one of
/// its threads: a task a job spawned onto a worker's runtime is not a job).
pub(crate) fn is_in_job_of(id: u64) -> bool {
    JOBS_OF
        .try_with(|jobs| jobs.borrow().contains(&id))
        .unwrap_or(false)
}

/// Ends what [`in_job_of`] marked.
pub(crate) struct InJob(());

impl Drop for InJob {
    fn drop(&mut self) {
        let _ = JOBS_OF.try_with(|jobs| jobs.borrow_mut().pop());
    }
}

/// Marks `runtime` as the current worker thread's own runtime (`None` when the
/// worker is about to drop it).
pub(crate) fn set_worker_runtime(runtime: Option<Handle>) {
    WORKER_RUNTIME.with_borrow_mut(|own| *own = runtime);
}

/// Marks the current thread as a worker of `shared`.
pub(crate) fn enter_worker(shared: &Arc<Shared>) {
    WORKER_POOL.with(|pool| *pool.borrow_mut() = Arc::downgrade(shared));
}

/// On a worker thread that still has its runtime: its pool, its index and that
/// runtime.
pub(crate) fn current_worker() -> Option<(Arc<Shared>, usize, Handle)> {
    let Some((_, Role::Worker(index))) = current() else {
        return None;
    };
    let shared = WORKER_POOL
        .try_with(|pool| pool.borrow().upgrade())
        .ok()??;
    let runtime = WORKER_RUNTIME.try_with(|own| own.borrow().clone()).ok()??;
    Some((shared, index, runtime))
}

/// Spawns `task` on the current worker thread's own runtime (from inside that
/// runtime, onto its local queue), or gives it back if this thread has none.
///
/// Not `tokio::task::spawn`: a job may have entered another runtime
/// (`let _g = handle.enter()`), and that is where `tokio::task::spawn` would put the
/// task, out of the executor's reach (and never run, if nobody drives that runtime).
pub(crate) fn spawn_on_worker_runtime<F>(task: F) -> Result<(), F>
where
    F: Future<Output = ()> + Send + 'static,
{
    let Ok(Some(runtime)) = WORKER_RUNTIME.try_with(|own| own.borrow().clone()) else {
        return Err(task);
    };
    drop(runtime.spawn(task));
    Ok(())
}

/// Marks the current thread as a blocking thread of `shared`.
pub(crate) fn enter_blocking(shared: &Arc<Shared>) {
    BLOCKING_POOL.with(|pool| *pool.borrow_mut() = Arc::downgrade(shared));
}

/// Marks the current thread as one of the blocking threads that a worker's tokio
/// runtime of pool `shared` starts for `tokio::task::spawn_blocking`.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) fn enter_runtime_thread(shared: &Weak<Shared>) {
    RUNTIME_POOL.with(|pool| pool.borrow_mut().clone_from(shared));
}

/// On a thread that a worker's tokio runtime started for its blocking tasks, the
/// worker's pool: the runtime current there is the worker's, which does not run
/// what other threads spawn on it while the worker waits for jobs.
pub(crate) fn runtime_pool() -> Option<Arc<Shared>> {
    RUNTIME_POOL
        .try_with(|pool| pool.borrow().upgrade())
        .ok()
        .flatten()
}

/// The pool whose thread (worker or blocking) this is, if it is one.
pub(crate) fn current_pool() -> Option<Arc<Shared>> {
    match current() {
        Some((_, Role::Worker(_))) => WORKER_POOL
            .try_with(|pool| pool.borrow().upgrade())
            .ok()
            .flatten(),
        Some((_, Role::Blocking(_))) => current_blocking_pool(),
        None => None,
    }
}

/// The pool whose blocking thread this is, if it is one.
pub(crate) fn current_blocking_pool() -> Option<Arc<Shared>> {
    BLOCKING_POOL
        .try_with(|pool| pool.borrow().upgrade())
        .ok()
        .flatten()
}

pub(crate) fn enter(pool: u64, role: Role, executor: &str) {
    CONTEXT.with(|c| c.set(Some((pool, role))));
    EXECUTOR.with(|name| {
        let _ = name.set(executor.to_owned());
    });
}

pub(crate) fn current() -> Option<(u64, Role)> {
    CONTEXT.with(Cell::get)
}

/// The worker index if the current thread is a worker of pool `pool`.
pub(crate) fn worker_of(pool: u64) -> Option<usize> {
    match current() {
        Some((id, Role::Worker(i))) if id == pool => Some(i),
        _ => None,
    }
}

/// `true` if the current thread is a blocking-lane thread of pool `pool`.
pub(crate) fn is_blocking_thread_of(pool: u64) -> bool {
    matches!(current(), Some((id, Role::Blocking(_))) if id == pool)
}

/// Panics if the current thread is one of pool `pool`'s own threads, or is running
/// one of its jobs (an executor without threads of its own).
///
/// `call` (such as `Executor::join()`) waits for every thread of that pool to exit,
/// and every job to end, so from one of them it can never finish; `instead` says
/// what it would do there.
#[track_caller]
pub(crate) fn refuse_own_thread(pool: u64, executor: &str, call: &str, instead: &str) {
    // The thread first: a pool's own thread says which one it is (one its
    // workers' runtimes started for `tokio::task::spawn_blocking` too: a worker
    // exits once they have).
    if matches!(current(), Some((id, _)) if id == pool)
        || runtime_pool().is_some_and(|shared| shared.id == pool)
    {
        panic!(
            "{call} called on thread {thread:?}, which belongs to executor {executor:?}: it \
             waits for every thread of {executor:?} to exit, this one included, so {instead}. \
             Call shutdown() here and leave {call} to code outside the executor (a plain \
             thread, the caller's runtime, or another executor).",
            thread = thread_name(),
        );
    }
    if is_in_job_of(pool) {
        panic!(
            "{call} called inside a job of executor {executor:?}: it waits for every job \
             of {executor:?} to end, this one included, so {instead}. Call shutdown() here \
             and leave {call} to code outside the executor (a plain thread, or a task that \
             is not one of its jobs).",
        );
    }
}

/// Panics if the current thread is a worker thread of any pool: `call` would block
/// it. `instead` is the async call to await there.
#[track_caller]
pub(crate) fn refuse_worker(call: &str, instead: &str) {
    if let Some((_, Role::Worker(_))) = current() {
        let executor = EXECUTOR
            .try_with(|name| name.get().cloned())
            .ok()
            .flatten()
            .unwrap_or_default();
        panic!(
            "{call} called on thread {thread:?}, a worker of executor {executor:?}: a worker \
             must never block (every task on its runtime would stall), and a job queued on \
             this worker could never run. Await {instead} instead, or call {call} from a \
             plain thread.",
            thread = thread_name(),
        );
    }
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}
