//! [`Limiter`]: how many requests one backend has in flight, adapting to throttling;
//! and [`Prepaid`]: places one operation takes for all its requests at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::channel::oneshot;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
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
pub(crate) struct Permit {
    inner: Arc<Inner>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    pub(crate) fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max)),
                max,
                state: Mutex::new(State {
                    limit: max,
                    debt: 0,
                    successes: 0,
                }),
            }),
        }
    }

    /// Waits for a place.
    pub(crate) async fn acquire(&self) -> Permit {
        // The semaphore is never closed.
        let permit = Arc::clone(&self.inner.permits).acquire_owned().await.ok();
        Permit {
            inner: Arc::clone(&self.inner),
            permit,
        }
    }

    /// `n` places at once if they are free now, or none (without waiting: what
    /// holds some places must not wait for more, or two such holders could wait
    /// on each other for good).
    pub(crate) fn try_acquire_many(&self, n: usize) -> Option<Vec<Permit>> {
        (0..n)
            .map(|_| {
                let permit = Arc::clone(&self.inner.permits).try_acquire_owned().ok()?;
                Some(Permit {
                    inner: Arc::clone(&self.inner),
                    permit: Some(permit),
                })
            })
            .collect()
    }

    /// The bound in force.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.inner.state.lock().limit
    }

    /// The server asked us to slow down: halve the bound.
    pub(crate) fn throttled(&self) {
        let mut state = self.inner.state.lock();
        let lower = (state.limit / 2).max(1);
        let cut = state.limit - lower;
        state.limit = lower;
        state.successes = 0;
        let withdrawn = self.inner.permits.forget_permits(cut);
        state.debt += cut - withdrawn;
    }

    /// A request went through: after a run as long as the bound, raise it by one.
    pub(crate) fn succeeded(&self) {
        let mut state = self.inner.state.lock();
        if state.limit >= self.inner.max {
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
            self.inner.permits.add_permits(1);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut state = self.inner.state.lock();
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

/// Places one operation took in the [`Limiter`] for all its requests at once,
/// lent to them an attempt at a time, so that requests that wait on each other
/// (a `PUT` held back until its checks answer) never wait for a place held by
/// another: they have theirs already.
///
/// The places are [given back](Self::give_back) when the requests no longer
/// wait on each other, on the first retry of any of them, or when a request finds
/// none left: every attempt from then on waits for its own place in the limiter
/// (a retry after "slow down" is thus held to the lowered bound), and the
/// receiver [`new`](Self::new) returned is told, so that the operation stops
/// whatever waits on another request. Until then, places lent and given back to
/// the pool stay the operation's even where the limiter's bound fell meanwhile.
#[derive(Debug)]
pub(crate) struct Prepaid {
    places: Mutex<Vec<Permit>>,
    given_back: AtomicBool,
    tell: Mutex<Option<oneshot::Sender<()>>>,
}

/// A place lent by [`Prepaid`], given back when dropped (or to the limiter, once
/// the operation has given them back).
#[derive(Debug)]
pub(crate) struct Lent {
    prepaid: Arc<Prepaid>,
    place: Option<Permit>,
}

impl Prepaid {
    /// A pool of `places`, and what hears when they are given back.
    pub(crate) fn new(places: Vec<Permit>) -> (Arc<Self>, oneshot::Receiver<()>) {
        let (tell, told) = oneshot::channel();
        let prepaid = Self {
            places: Mutex::new(places),
            given_back: AtomicBool::new(false),
            tell: Mutex::new(Some(tell)),
        };
        (Arc::new(prepaid), told)
    }

    /// A place for one attempt, or `None` once given back (then the attempt waits
    /// for its own). Finding none left gives them back.
    pub(crate) fn lend(self: &Arc<Self>) -> Option<Lent> {
        if self.given_back.load(Ordering::Acquire) {
            return None;
        }
        let place = self.places.lock().pop();
        if place.is_none() {
            self.give_back();
        }
        place.map(|place| Lent {
            prepaid: Arc::clone(self),
            place: Some(place),
        })
    }

    /// Gives the places back to the limiter (those lent, when they come back)
    /// and tells the operation. Idempotent.
    pub(crate) fn give_back(&self) {
        if self.given_back.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(std::mem::take(&mut *self.places.lock()));
        if let Some(tell) = self.tell.lock().take() {
            // An operation that no longer listens has nothing to stop.
            let _ = tell.send(());
        }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(place) = self.place.take() else {
            return;
        };
        let mut places = self.prepaid.places.lock();
        // Checked under the lock `give_back` empties the pool under: a place
        // returned after that goes to the limiter.
        if !self.prepaid.given_back.load(Ordering::Acquire) {
            places.push(place);
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
        assert_eq!(limiter.inner.permits.available_permits(), 4);
        limiter.throttled();
        limiter.throttled();
        limiter.throttled();
        assert_eq!(limiter.limit(), 1, "never below one");
        for _ in 0..1 + 2 + 3 {
            limiter.succeeded();
        }
        assert_eq!(limiter.limit(), 4);
        assert_eq!(limiter.inner.permits.available_permits(), 4);
        for _ in 0..100 {
            limiter.succeeded();
        }
        assert_eq!(limiter.limit(), 8, "never above the maximum");
        assert_eq!(limiter.inner.permits.available_permits(), 8);
    }

    #[test]
    fn many_places_are_taken_all_or_none() {
        let limiter = Limiter::new(4);
        let three = limiter.try_acquire_many(3).expect("three of four are free");
        assert!(
            limiter.try_acquire_many(2).is_none(),
            "one is free, not two"
        );
        assert_eq!(
            limiter.inner.permits.available_permits(),
            1,
            "a refused call keeps none"
        );
        drop(three);
        assert_eq!(limiter.try_acquire_many(4).map(|p| p.len()), Some(4));
    }

    #[test]
    fn prepaid_places_are_lent_until_given_back() {
        let limiter = Limiter::new(4);
        let (prepaid, mut told) = Prepaid::new(limiter.try_acquire_many(2).unwrap());
        let a = prepaid.lend().expect("a place");
        drop(prepaid.lend().expect("the other place"));
        let b = prepaid.lend().expect("the one given back");
        assert_eq!(limiter.inner.permits.available_permits(), 2);
        assert_eq!(told.try_recv(), Ok(None), "not given back yet");
        assert!(prepaid.lend().is_none(), "none left: given back");
        assert_eq!(told.try_recv(), Ok(Some(())), "the operation is told");
        drop(a);
        assert_eq!(
            limiter.inner.permits.available_permits(),
            3,
            "a place lent before goes back to the limiter"
        );
        prepaid.give_back();
        drop(b);
        assert_eq!(limiter.inner.permits.available_permits(), 4);
        assert!(prepaid.lend().is_none());
    }

    #[test]
    fn giving_back_returns_the_pool_at_once() {
        let limiter = Limiter::new(3);
        let (prepaid, mut told) = Prepaid::new(limiter.try_acquire_many(3).unwrap());
        let lent = prepaid.lend().unwrap();
        prepaid.give_back();
        assert_eq!(told.try_recv(), Ok(Some(())));
        assert_eq!(limiter.inner.permits.available_permits(), 2);
        assert!(
            prepaid.lend().is_none(),
            "attempts wait for their own places"
        );
        drop(lent);
        assert_eq!(limiter.inner.permits.available_permits(), 3);
    }

    #[test]
    fn permits_out_when_the_bound_falls_are_withdrawn_on_return() {
        let limiter = Limiter::new(4);
        let held: Vec<_> = (0..4).map(|_| now(limiter.acquire())).collect();
        limiter.throttled();
        assert_eq!(limiter.limit(), 2);
        drop(held);
        assert_eq!(limiter.inner.permits.available_permits(), 2);
    }
}
