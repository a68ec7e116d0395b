//! The synchronisation primitives of the concurrency core: the completion slot
//! ([`Completion`](crate::completion::Completion)), cancellation, and the shutdown
//! handshake ([`ExitSignal`](crate::exit_signal::ExitSignal), [`Shared`](crate::shared::Shared)).
//!
//! Normal builds get `std` atomics, `parking_lot` locks and `futures-util`'s
//! `AtomicWaker`, re-exported as they are. The crate's own unit tests built with
//! `RUSTFLAGS="--cfg loom"` get `loom`'s models of them behind the same API, so the
//! same code can be model-checked (see `scripts/test`). Only this crate's unit tests
//! switch: a dependent crate built with `--cfg loom` still gets the real primitives.

#[cfg(not(all(test, loom)))]
pub(crate) use self::real::*;

#[cfg(all(test, loom))]
pub(crate) use self::model::*;

#[cfg(not(all(test, loom)))]
mod real {
    pub(crate) use futures_util::task::AtomicWaker;
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
    }
}

/// loom's models behind the `parking_lot`/`futures-util` API the crate uses.
#[cfg(all(test, loom))]
mod model {
    use std::ops::{Deref, DerefMut};
    use std::task::Waker;
    use std::time::Instant;

    pub(crate) use loom::sync::RwLockReadGuard;

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
    }

    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// Holds the inner guard in an `Option` so a condition variable can take it while
    /// waiting, as `parking_lot`'s `wait(&mut guard)` does.
    #[derive(Debug)]
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(
                self.0.lock().expect("loom mutexes are never poisoned"),
            ))
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.0.as_ref().expect("guard held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("guard held")
        }
    }

    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    #[derive(Debug)]
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard held");
            guard.0 = Some(self.0.wait(inner).expect("loom mutexes are never poisoned"));
        }

        /// loom has no clock. A deadline that has already passed times out at once,
        /// without letting go of the lock; any other deadline is modelled as never
        /// expiring, so the wait must be ended by a notification, and a lost one shows
        /// up as a deadlock.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> WaitTimeoutResult {
            if Instant::now() >= deadline {
                return WaitTimeoutResult(true);
            }
            self.wait(guard);
            WaitTimeoutResult(false)
        }

        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().expect("loom locks are never poisoned")
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().expect("loom locks are never poisoned")
        }
    }

    #[derive(Debug)]
    pub(crate) struct AtomicWaker(loom::future::AtomicWaker);

    impl AtomicWaker {
        pub(crate) fn new() -> Self {
            Self(loom::future::AtomicWaker::new())
        }

        pub(crate) fn register(&self, waker: &Waker) {
            self.0.register_by_ref(waker);
        }

        pub(crate) fn wake(&self) {
            self.0.wake();
        }
    }
}

/// Runs `f` under loom's model checker: every interleaving of its threads. The models
/// are small enough to explore exhaustively (all of them in a few seconds on two
/// cores); `LOOM_MAX_PREEMPTIONS` bounds the search if one ever grows too big.
#[cfg(all(test, loom))]
pub(crate) fn check(f: impl Fn() + Sync + Send + 'static) {
    loom::model::Builder::new().check(f);
}

/// A waker that counts how often it was woken, for loom models.
#[cfg(all(test, loom))]
#[derive(Debug, Default)]
pub(crate) struct CountingWaker(loom::sync::atomic::AtomicUsize);

#[cfg(all(test, loom))]
impl CountingWaker {
    pub(crate) fn waker() -> (std::sync::Arc<Self>, std::task::Waker) {
        let counter = std::sync::Arc::new(Self::default());
        let waker = std::task::Waker::from(std::sync::Arc::clone(&counter));
        (counter, waker)
    }

    pub(crate) fn wakes(&self) -> usize {
        self.0.load(atomic::Ordering::SeqCst)
    }
}

#[cfg(all(test, loom))]
impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, atomic::Ordering::SeqCst);
    }
}
