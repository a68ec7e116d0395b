//! [`Completion`]: the slot a job's result travels back through.
//!
//! One `Completion` is shared (behind an `Arc`) by a job and its
//! [`JoinHandle`](crate::JoinHandle). The job fills it exactly once; the handle takes the
//! value out exactly once, either by polling (async callers on any runtime) or by
//! blocking on a condition variable (sync callers). Cancellation travels the other way:
//! the handle sets a flag and wakes the job.

use std::task::{Context, Poll, Waker};

use crate::JoinError;
use crate::sync::atomic::{AtomicU8, Ordering};
use crate::sync::{AtomicWaker, Condvar, Mutex};

const COMPLETE: u8 = 0b001;
const ABORTED: u8 = 0b010;
/// Someone has taken the right to complete (set before the output is stored).
const CLAIMED: u8 = 0b100;
/// The handle is gone (dropped or detached): no one will take the output. Set
/// under the slot's lock, so that the output is either handed back to the job by
/// [`fill`](Completion::fill) or taken out by [`let_go`](Completion::let_go).
const GONE: u8 = 0b1000;

pub(crate) struct Completion<T> {
    state: AtomicU8,
    slot: Mutex<Slot<T>>,
    ready: Condvar,
    /// The waker of the job's task, so an abort can wake a pending job to drop it.
    job_waker: AtomicWaker,
}

struct Slot<T> {
    output: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
    blocked: bool,
}

impl<T> Completion<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(0),
            slot: Mutex::new(Slot {
                output: None,
                waker: None,
                blocked: false,
            }),
            ready: Condvar::new(),
            job_waker: AtomicWaker::new(),
        }
    }

    /// Takes the right to complete: `true` for exactly one caller. The job claims
    /// before it updates the executor's counters and then [`fill`](Self::fill)s, so the
    /// counters are current by the time anyone sees the output.
    pub(crate) fn claim(&self) -> bool {
        self.state.fetch_or(CLAIMED, Ordering::AcqRel) & CLAIMED == 0
    }

    /// Stores the output and wakes whoever waits. Only after a successful
    /// [`claim`](Self::claim). An output no handle will take (the handle is gone)
    /// is handed back, for the job to drop as part of itself.
    #[must_use = "an output handed back is the job's to drop"]
    pub(crate) fn fill(&self, output: Result<T, JoinError>) -> Option<Result<T, JoinError>> {
        let mut slot = self.slot.lock();
        if self.state.load(Ordering::Acquire) & GONE != 0 {
            self.state.fetch_or(COMPLETE, Ordering::AcqRel);
            return Some(output);
        }
        slot.output = Some(output);
        self.state.fetch_or(COMPLETE, Ordering::AcqRel);
        let waker = slot.waker.take();
        let blocked = slot.blocked;
        drop(slot);
        if blocked {
            self.ready.notify_all();
        }
        if let Some(waker) = waker {
            crate::task::wake_guarded(waker);
        }
        None
    }

    /// [`claim`](Self::claim) and [`fill`](Self::fill) in one; `false` (dropping
    /// `output`) if someone else claimed first.
    pub(crate) fn complete(&self, output: Result<T, JoinError>) -> bool {
        let claimed = self.claim();
        if claimed {
            drop(self.fill(output));
        }
        claimed
    }

    /// The handle lets go (dropped or detached): an output stored already is
    /// returned, for the handle's owner to drop; one stored later is handed back
    /// to the job by [`fill`](Self::fill).
    pub(crate) fn let_go(&self) -> Option<Result<T, JoinError>> {
        let mut slot = self.slot.lock();
        self.state.fetch_or(GONE, Ordering::AcqRel);
        slot.output.take()
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Asks the job to stop; it is a no-op once the job has completed.
    pub(crate) fn abort(&self) {
        self.state.fetch_or(ABORTED, Ordering::AcqRel);
        self.job_waker.wake();
    }

    pub(crate) fn is_aborted(&self) -> bool {
        self.state.load(Ordering::Acquire) & ABORTED != 0
    }

    /// Registers the running job's waker; see [`Completion::abort`].
    pub(crate) fn register_job(&self, waker: &Waker) {
        self.job_waker.register(waker);
    }

    pub(crate) fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut slot = self.slot.lock();
        if let Some(output) = slot.output.take() {
            return Poll::Ready(output);
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub(crate) fn wait(&self) -> Result<T, JoinError> {
        let mut slot = self.slot.lock();
        loop {
            if let Some(output) = slot.output.take() {
                return output;
            }
            slot.blocked = true;
            self.ready.wait(&mut slot);
        }
    }
}

/// Type-erased access to a running blocking job's completion, so a shutdown deadline
/// can resolve its handle while the closure is still stuck in a syscall.
pub(crate) trait CancelOnShutdown: Send + Sync {
    fn cancel_on_shutdown(&self);

    /// A job its runtime could not take after all: it never runs (should it come
    /// to run, it is dropped unrun), and its handle resolves to a shutdown error.
    fn refuse(&self);
}

impl<T: Send> CancelOnShutdown for Completion<T> {
    fn cancel_on_shutdown(&self) {
        self.complete(Err(JoinError::cut_off()));
    }

    fn refuse(&self) {
        self.abort();
        self.complete(Err(JoinError::shutdown()));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use super::*;

    #[test]
    fn only_the_first_completion_counts() {
        let c = Completion::new();
        assert!(c.complete(Ok(1)));
        assert!(!c.complete(Ok(2)), "a second completion is refused");
        assert!(c.is_complete());
        assert_eq!(c.wait().unwrap(), 1);
    }

    #[test]
    fn a_shutdown_cancel_and_the_job_race_for_one_claim() {
        let c = Completion::<u8>::new();
        assert!(c.claim());
        c.cancel_on_shutdown();
        assert!(!c.is_complete(), "the claimant fills, nobody else");
        assert!(c.fill(Ok(9)).is_none());
        assert_eq!(c.wait().unwrap(), 9);
    }

    #[test]
    fn poll_registers_then_a_blocked_waiter_and_a_poller_both_see_it() {
        let c = Arc::new(Completion::new());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(c.poll_output(&mut cx).is_pending());
        let c2 = Arc::clone(&c);
        let waiter = std::thread::spawn(move || c2.wait());
        c.complete(Ok("v"));
        assert_eq!(waiter.join().unwrap().unwrap(), "v");
        assert!(
            matches!(c.poll_output(&mut cx), Poll::Pending),
            "taken once"
        );
    }

    #[test]
    fn abort_is_sticky_and_visible() {
        let c = Completion::<()>::new();
        assert!(!c.is_aborted());
        c.abort();
        c.abort();
        assert!(c.is_aborted());
    }
}

/// Model checks (`RUSTFLAGS="--cfg loom"`): every interleaving of the slot's users.
#[cfg(all(test, loom))]
mod loom_models {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use loom::future::block_on;
    use loom::thread;

    use super::*;
    use crate::sync::{CountingWaker, check};

    /// The job completes while a deadline cancels it: exactly one claim wins, and the
    /// blocked waiter receives the winner's result.
    #[test]
    fn completion_and_shutdown_cancel_race_for_one_claim() {
        check(|| {
            let c = Arc::new(Completion::<u32>::new());
            let job = {
                let c = Arc::clone(&c);
                thread::spawn(move || c.complete(Ok(7)))
            };
            let deadline = {
                let c = Arc::clone(&c);
                thread::spawn(move || c.cancel_on_shutdown())
            };
            let output = c.wait();
            let job_won = job.join().unwrap();
            deadline.join().unwrap();
            match output {
                Ok(v) => assert!(job_won && v == 7),
                Err(e) => assert!(!job_won && e.is_shutdown(), "{e:?}"),
            }
            assert!(c.is_complete());
            assert!(!c.complete(Ok(8)), "nobody claims twice");
        });
    }

    /// A poller that registered before the fill is woken and then finds the value.
    #[test]
    fn fill_wakes_a_pending_poller() {
        check(|| {
            let c = Arc::new(Completion::<u32>::new());
            let job = {
                let c = Arc::clone(&c);
                thread::spawn(move || assert!(c.complete(Ok(5))))
            };
            let output = block_on(poll_fn(|cx| c.poll_output(cx)));
            assert_eq!(output.unwrap(), 5);
            job.join().unwrap();
        });
    }

    /// A handle polled once (registering its waker) and then waited on by a sync
    /// caller, racing the fill: the value arrives exactly once, through whichever of
    /// the two looked last, and a waker registered before the fill is woken.
    #[test]
    fn a_poll_then_a_blocked_wait_both_see_the_fill() {
        check(|| {
            let c = Arc::new(Completion::<u32>::new());
            let (wakes, waker) = CountingWaker::waker();
            let caller = {
                let c = Arc::clone(&c);
                thread::spawn(
                    move || match c.poll_output(&mut Context::from_waker(&waker)) {
                        Poll::Ready(output) => (false, output),
                        Poll::Pending => (true, c.wait()),
                    },
                )
            };
            assert!(c.complete(Ok(3)));
            let (registered, output) = caller.join().unwrap();
            assert_eq!(output.unwrap(), 3);
            if registered {
                assert_eq!(wakes.wakes(), 1, "the registered poller was woken");
            }
            let mut cx = Context::from_waker(std::task::Waker::noop());
            assert!(c.poll_output(&mut cx).is_pending(), "taken exactly once");
        });
    }

    /// The job's side of cancellation (register, then check the flag) never misses an
    /// abort: either it sees the flag or the abort wakes it.
    #[test]
    fn abort_wakes_a_job_that_registered_before_checking() {
        check(|| {
            let c = Arc::new(Completion::<()>::new());
            let handle = {
                let c = Arc::clone(&c);
                thread::spawn(move || c.abort())
            };
            block_on(poll_fn(|cx| {
                c.register_job(cx.waker());
                if c.is_aborted() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }));
            handle.join().unwrap();
        });
    }
}
