//! [`WorkerLocal`]: one value per worker thread, created on that thread.

use std::fmt;
use std::sync::{OnceLock, Weak};

use crate::context;
use crate::shared::Shared;

/// One lazily created value per worker thread of a pool.
///
/// Made by [`Executor::worker_local`](crate::Executor::worker_local). On a worker
/// thread, [`get`](Self::get) returns that worker's value, created by the `init`
/// function on that thread the first time it is asked for. Anywhere else (a blocking
/// thread, a caller's thread, or an executor that owns no worker threads) it returns
/// one shared fallback value.
///
/// The point: things that must live on the runtime that uses them, such as an HTTP
/// client whose pooled connections are tasks of the runtime that opened them. Keep
/// one client per worker, and every connection stays on that worker's runtime.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::num::NonZeroUsize;
///
/// let executor = io_executor::Builder::new()
///     .name("doc-local")
///     .worker_threads(NonZeroUsize::new(2).unwrap())
///     .build()
///     .unwrap();
/// let names = Arc::new(executor.worker_local(|| std::thread::current().name().unwrap().to_owned()));
/// let on_worker_1 = {
///     let names = Arc::clone(&names);
///     executor.spawn_on(1, async move { names.get().clone() })
/// };
/// assert_eq!(on_worker_1.join().unwrap(), "doc-local-worker-1");
/// ```
pub struct WorkerLocal<T> {
    pool: Option<u64>,
    /// The executor that made it (weak: a `WorkerLocal` kept somewhere does not keep
    /// the executor's threads running).
    owner: Weak<Shared>,
    slots: Box<[OnceLock<T>]>,
    fallback: OnceLock<T>,
    init: Box<dyn Fn() -> T + Send + Sync + 'static>,
}

impl<T> WorkerLocal<T> {
    pub(crate) fn new(
        owner: Weak<Shared>,
        pool: Option<u64>,
        workers: usize,
        init: Box<dyn Fn() -> T + Send + Sync + 'static>,
    ) -> Self {
        Self {
            pool,
            owner,
            slots: (0..workers).map(|_| OnceLock::new()).collect(),
            fallback: OnceLock::new(),
            init,
        }
    }

    /// This worker's value (or the shared fallback off the pool's workers), created
    /// now if this is the first call here.
    ///
    /// # Panics
    ///
    /// If the `init` function panics: its panic comes out of this call, and the
    /// value is not created (the next call tries again). An `init` that calls
    /// `get` on the same `WorkerLocal` on the same thread deadlocks or panics, as
    /// [`OnceLock::get_or_init`] does.
    pub fn get(&self) -> &T {
        let slot = self
            .pool
            .and_then(context::worker_of)
            .and_then(|i| self.slots.get(i))
            .unwrap_or(&self.fallback);
        slot.get_or_init(|| (self.init)())
    }

    /// This worker's value, created now if this is the first call here, when the
    /// caller is a worker thread of the executor that made this `WorkerLocal`;
    /// `None` anywhere else (where [`get`](Self::get) would hand out the shared
    /// fallback).
    pub fn try_get(&self) -> Option<&T> {
        let i = self.pool.and_then(context::worker_of)?;
        self.slots
            .get(i)
            .map(|slot| slot.get_or_init(|| (self.init)()))
    }

    /// `true` once the executor that made it has shut down, or every handle to it
    /// was dropped: its workers take no new jobs from outside its own, so a holder
    /// that keeps one `WorkerLocal` per executor (a client per worker of each pool
    /// it serves) can let this one go. Jobs accepted before the shutdown (and the
    /// work they submit themselves) may still be running on those workers;
    /// [`get`](Self::get) goes on working for them.
    pub fn is_shutdown(&self) -> bool {
        self.owner
            .upgrade()
            .is_none_or(|shared| shared.is_shutting_down())
    }

    /// The values created so far, worker by worker (the fallback is not included).
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(OnceLock::get)
    }
}

impl<T: fmt::Debug> fmt::Debug for WorkerLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerLocal")
            .field("slots", &self.slots)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}
