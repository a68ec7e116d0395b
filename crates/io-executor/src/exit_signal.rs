//! [`ExitSignal`]: "everything has stopped", awaitable and blockable.

use std::task::{Context, Poll, Waker};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

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
    wakers: Vec<Waker>,
}

impl ExitSignal {
    pub(crate) fn new(live: usize) -> Self {
        Self {
            state: Mutex::new(State {
                live,
                done: false,
                wakers: Vec::new(),
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

    fn finish(&self, mut state: parking_lot::MutexGuard<'_, State>) {
        if state.done {
            return;
        }
        state.done = true;
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.cond.notify_all();
        for waker in wakers {
            waker.wake();
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.lock().done
    }

    pub(crate) fn poll_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock();
        if state.done {
            return Poll::Ready(());
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
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
