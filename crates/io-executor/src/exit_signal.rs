//! [`ExitSignal`]: "everything has stopped", awaitable and blockable.

use std::task::{Context, Poll, Waker};
use std::time::Instant;

use crate::sync::{Condvar, Mutex, MutexGuard};

/// Counts live threads (or, for executors without threads, is marked done directly)
/// and lets both async and blocking callers wait for zero.
#[derive(Debug)]
pub(crate) struct ExitSignal {
    state: Mutex<State>,
    cond: Condvar,
}

#[derive(Debug)]
struct State {
    live: usize,
    done: bool,
    /// The async waiters' wakers, each under its waiter's number.
    wakers: Vec<(u64, Waker)>,
    next_waiter: u64,
}

impl ExitSignal {
    pub(crate) fn new(live: usize) -> Self {
        Self {
            state: Mutex::new(State {
                live,
                done: false,
                wakers: Vec::new(),
                next_waiter: 0,
            }),
            cond: Condvar::new(),
        }
    }

    /// One thread has exited; the last one marks the signal done.
    pub(crate) fn thread_exited(&self) {
        let mut state = self.state.lock();
        state.live = state.live.saturating_sub(1);
        if state.live == 0 {
            self.finish(state);
        }
    }

    pub(crate) fn mark_done(&self) {
        let state = self.state.lock();
        self.finish(state);
    }

    fn finish(&self, mut state: MutexGuard<'_, State>) {
        if state.done {
            return;
        }
        state.done = true;
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.cond.notify_all();
        for (_, waker) in wakers {
            crate::task::wake_guarded(waker);
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.lock().done
    }

    /// An async wait for the signal.
    pub(crate) fn waiter(&self) -> Waiter<'_> {
        Waiter {
            signal: self,
            number: None,
        }
    }

    fn poll_done(&self, cx: &mut Context<'_>, number: &mut Option<u64>) -> Poll<()> {
        let mut guard = self.state.lock();
        if guard.done {
            return Poll::Ready(());
        }
        let state = &mut *guard;
        let known = number.and_then(|n| state.wakers.iter_mut().find(|(m, _)| *m == n));
        // A waker replaced is dropped after the lock (its drop is the caller's code).
        let mut replaced = None;
        match known {
            Some((_, waker)) => {
                if !waker.will_wake(cx.waker()) {
                    replaced = Some(std::mem::replace(waker, cx.waker().clone()));
                }
            }
            None => {
                let n = state.next_waiter;
                state.next_waiter += 1;
                state.wakers.push((n, cx.waker().clone()));
                *number = Some(n);
            }
        }
        drop(guard);
        drop(replaced);
        Poll::Pending
    }

    /// Lets waiter `number`'s waker go.
    fn forget(&self, number: u64) {
        let waker = {
            let mut state = self.state.lock();
            let at = state.wakers.iter().position(|(n, _)| *n == number);
            at.map(|i| state.wakers.swap_remove(i))
        };
        // Dropped outside the lock: a waker's drop is the caller's code.
        drop(waker);
    }

    /// Waits until done or until `deadline` (if any); returns whether it is done.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut state = self.state.lock();
        while !state.done {
            match deadline {
                Some(deadline) => {
                    if self.cond.wait_until(&mut state, deadline).timed_out() {
                        return state.done;
                    }
                }
                None => self.cond.wait(&mut state),
            }
        }
        true
    }
}

/// An async wait for an [`ExitSignal`]. Dropped unfinished (a `join` given up on),
/// it takes its waker out of the signal, which would otherwise keep every waker it
/// was ever given until it is done.
pub(crate) struct Waiter<'a> {
    signal: &'a ExitSignal,
    number: Option<u64>,
}

impl Waiter<'_> {
    pub(crate) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.signal.poll_done(cx, &mut self.number)
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(number) = self.number {
            self.signal.forget(number);
        }
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom"`): the last thread's exit against waiters.
#[cfg(all(test, loom))]
mod loom_models {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::task::Context;
    use std::time::{Duration, Instant};

    use loom::future::block_on;
    use loom::thread;

    use super::*;
    use crate::sync::{CountingWaker, check};

    fn exit_threads(signal: &Arc<ExitSignal>, n: usize) -> Vec<thread::JoinHandle<()>> {
        (0..n)
            .map(|_| {
                let signal = Arc::clone(signal);
                thread::spawn(move || signal.thread_exited())
            })
            .collect()
    }

    #[test]
    fn the_last_exit_wakes_a_blocked_waiter() {
        check(|| {
            let signal = Arc::new(ExitSignal::new(2));
            let threads = exit_threads(&signal, 2);
            assert!(signal.wait(None));
            for t in threads {
                t.join().unwrap();
            }
        });
    }

    #[test]
    fn the_last_exit_wakes_an_async_joiner() {
        check(|| {
            let signal = Arc::new(ExitSignal::new(2));
            let threads = exit_threads(&signal, 2);
            let mut waiter = signal.waiter();
            block_on(poll_fn(|cx| waiter.poll(cx)));
            assert!(signal.is_done());
            for t in threads {
                t.join().unwrap();
            }
        });
    }

    /// With a deadline: one that has passed reports the state as it is (done or not,
    /// never a stale "done"); a far one is ended by the last exit, not by its timeout
    /// (loom has no clock, so a lost wake-up shows as a deadlock).
    #[test]
    fn a_deadline_wait_reports_the_state_and_is_woken() {
        check(|| {
            let signal = Arc::new(ExitSignal::new(1));
            let threads = exit_threads(&signal, 1);
            let early = signal.wait(Some(Instant::now()));
            if early {
                assert!(signal.is_done());
            }
            assert!(signal.wait(Some(Instant::now() + Duration::from_secs(3_600))));
            for t in threads {
                t.join().unwrap();
            }
        });
    }

    /// A pool's last thread exiting and a thread-less executor's `mark_done` path both
    /// finish the signal; whichever comes second changes nothing, and a registered
    /// joiner is woken exactly once.
    #[test]
    fn finishing_twice_wakes_a_joiner_once() {
        check(|| {
            let signal = Arc::new(ExitSignal::new(1));
            let (wakes, waker) = CountingWaker::waker();
            let mut waiter = signal.waiter();
            assert!(waiter.poll(&mut Context::from_waker(&waker)).is_pending());
            let mut threads = exit_threads(&signal, 1);
            let marker = Arc::clone(&signal);
            threads.push(thread::spawn(move || marker.mark_done()));
            assert!(signal.wait(None));
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(wakes.wakes(), 1);
        });
    }
}
