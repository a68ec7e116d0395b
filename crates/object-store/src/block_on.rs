//! [`block_on`]: runs a future to completion on the current thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

/// Polls `future` on this thread, parking between polls, until it is ready.
///
/// Unlike `futures::executor::block_on`, it may run inside another `block_on` on the
/// same thread: a blocking call made from one of the executor's own blocking threads
/// runs inline there, possibly under the caller's `block_on`.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake-up before this park leaves a token: the park returns at once.
        std::thread::park();
    }
}

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
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
}
