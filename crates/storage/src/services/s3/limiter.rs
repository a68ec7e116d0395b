//! [`Limiter`]: how many requests one backend has in flight, adapting to throttling.

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Bounds the requests a backend has in flight, and adapts the bound the way the
/// AWS SDKs' adaptive retry mode adapts its send rate: every answer that says "slow
/// down" halves the bound (down to one request), and each run of successes as long
/// as the bound raises it by one again (up to the configured maximum). A burst of
/// thousands of small writes is thus spread out instead of being answered by
/// thousands of `503 SlowDown`s, and recovers once the server keeps up.
///
/// The semaphore is runtime-agnostic: every worker runtime of every executor the
/// backend is attached to shares it.
#[derive(Debug)]
pub(crate) struct Limiter {
    permits: Semaphore,
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The bound in force.
    limit: usize,
    /// Permits to withdraw as they come back (the bound fell while they were out).
    debt: usize,
    /// Successes since the bound last changed.
    successes: usize,
}

/// One request's place; returned when dropped.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    permit: Option<SemaphorePermit<'a>>,
}

impl Limiter {
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            permits: Semaphore::new(max),
            max,
            state: Mutex::new(State {
                limit: max,
                debt: 0,
                successes: 0,
            }),
        }
    }

    /// Waits for a place.
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        // The semaphore is never closed.
        let permit = self.permits.acquire().await.ok();
        Permit {
            limiter: self,
            permit,
        }
    }

    /// The bound in force.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.state.lock().limit
    }

    /// The server asked us to slow down: halve the bound.
    pub(crate) fn throttled(&self) {
        let mut state = self.state.lock();
        let lower = (state.limit / 2).max(1);
        let cut = state.limit - lower;
        state.limit = lower;
        state.successes = 0;
        let withdrawn = self.permits.forget_permits(cut);
        state.debt += cut - withdrawn;
    }

    /// A request went through: after a run as long as the bound, raise it by one.
    pub(crate) fn succeeded(&self) {
        let mut state = self.state.lock();
        if state.limit >= self.max {
            return;
        }
        state.successes += 1;
        if state.successes < state.limit {
            return;
        }
        state.successes = 0;
        state.limit += 1;
        if state.debt > 0 {
            state.debt -= 1;
        } else {
            self.permits.add_permits(1);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut state = self.limiter.state.lock();
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now<T>(f: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(f)
    }

    #[test]
    fn throttling_halves_the_bound_and_successes_raise_it_again() {
        let limiter = Limiter::new(8);
        limiter.throttled();
        assert_eq!(limiter.limit(), 4);
        assert_eq!(limiter.permits.available_permits(), 4);
        limiter.throttled();
        limiter.throttled();
        limiter.throttled();
        assert_eq!(limiter.limit(), 1, "never below one");
        for _ in 0..1 + 2 + 3 {
            limiter.succeeded();
        }
        assert_eq!(limiter.limit(), 4);
        assert_eq!(limiter.permits.available_permits(), 4);
        for _ in 0..100 {
            limiter.succeeded();
        }
        assert_eq!(limiter.limit(), 8, "never above the maximum");
        assert_eq!(limiter.permits.available_permits(), 8);
    }

    #[test]
    fn permits_out_when_the_bound_falls_are_withdrawn_on_return() {
        let limiter = Limiter::new(4);
        let held: Vec<_> = (0..4).map(|_| now(limiter.acquire())).collect();
        limiter.throttled();
        assert_eq!(limiter.limit(), 2);
        drop(held);
        assert_eq!(limiter.permits.available_permits(), 2);
    }
}
