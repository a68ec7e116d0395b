//! [`block_on`]: runs a future to completion on the current thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Polls `future` on this thread, parking between polls, until it is ready: for
/// sync code that waits for a [`JoinHandle`](crate::JoinHandle) or any other
/// future of a job on an executor. It needs no runtime.
///
/// Unlike `futures::executor::block_on`, it may run inside another `block_on` on
/// the same thread, or inside a `futures` executor, without panicking: a blocking
/// job submitted from one of the executor's own blocking threads runs inline
/// there, possibly under its caller's `block_on`. Each call keeps its own "woken"
/// flag, so a wake-up meant for an outer call that an inner call's park takes (a
/// thread has one park token) is not lost: the outer call finds its flag set and
/// polls again.
///
/// It blocks the thread: on a worker thread of a runtime (ours or tokio's) every
/// task of that runtime waits meanwhile, and a future that needs one of them to
/// make progress never ends (a job spawned from a worker may be queued on that
/// very worker). Await the future there instead. Unlike
/// [`JoinHandle::join`](crate::JoinHandle::join), it does not refuse a worker
/// thread: it is the wait under other crates' sync APIs (storage's blocking
/// operator), which document that they block there.
///
/// # Examples
///
/// ```
/// let io = io_executor::Builder::new().name("io").build()?;
/// let handle = io.spawn(async { 6 * 7 });
/// assert_eq!(io_executor::block_on(handle)?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake-up during the poll set the flag: poll again at once. A wake-up
        // after the check leaves a park token: the park returns at once.
        while !unpark.woken.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }
}

struct Unpark {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_wake_up_from_another_thread_and_nests() {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        // Most likely sent after the inner `block_on` has parked; correct either way.
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            sender.send(5).unwrap();
        });
        let outer = block_on(async { block_on(receiver).unwrap() + 1 });
        assert_eq!(outer, 6);
        t.join().unwrap();
    }

    #[test]
    fn a_wake_up_taken_by_a_nested_call_still_reaches_the_outer_one() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (outer_tx, mut outer_rx) = tokio::sync::oneshot::channel::<u32>();
            let (inner_tx, inner_rx) = tokio::sync::oneshot::channel::<u32>();
            let mut first = Some((outer_tx, inner_tx, inner_rx));
            // The outer future waits on `outer_rx`, then blocks on `inner_rx` in a
            // nested call. The outer value is sent (waking the outer call) while
            // the nested call waits, whose park takes the thread's token; the
            // inner value comes later.
            let got = block_on(std::future::poll_fn(move |cx| {
                if let Poll::Ready(v) = std::pin::Pin::new(&mut outer_rx).poll(cx) {
                    return Poll::Ready(v.unwrap());
                }
                if let Some((outer_tx, inner_tx, inner_rx)) = first.take() {
                    let sender = std::thread::spawn(move || {
                        outer_tx.send(7).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        inner_tx.send(1).unwrap();
                    });
                    assert_eq!(block_on(inner_rx).unwrap(), 1);
                    sender.join().unwrap();
                }
                Poll::Pending
            }));
            let _ = done_tx.send(got);
        });
        let got = done_rx.recv_timeout(std::time::Duration::from_secs(30));
        assert_eq!(
            got,
            Ok(7),
            "the outer call never woke: its wake-up was lost"
        );
    }
}
