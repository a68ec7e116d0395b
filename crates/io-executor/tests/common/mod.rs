//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use io_executor::{Builder, Executor};

/// A small dedicated pool.
pub(crate) fn pool(name: &str, workers: usize, blocking: usize) -> Executor {
    builder(name, workers, blocking)
        .build()
        .expect("build pool")
}

pub(crate) fn builder(name: &str, workers: usize, blocking: usize) -> Builder {
    Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(workers).unwrap())
        .blocking_threads(NonZeroUsize::new(blocking).unwrap())
}

/// A pool whose threads count themselves out through `on_thread_stop`.
pub(crate) fn counted_pool(
    name: &str,
    workers: usize,
    blocking: usize,
) -> (Executor, Arc<AtomicUsize>) {
    let stopped = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&stopped);
    let executor = builder(name, workers, blocking)
        .on_thread_stop(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .expect("build pool");
    (executor, stopped)
}

/// Runs `f` on a helper thread and fails the test if it has not returned within
/// `secs`: a test of "this must not hang" must not hang itself.
pub(crate) fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("did not finish within {secs} s (hang)"),
    }
}

/// Polls `cond` until it holds, failing after `secs`.
pub(crate) fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A current-thread runtime, the way a query engine's task sees the world.
pub(crate) fn caller_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("caller runtime")
}

pub(crate) fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// Asserts that `executor` refuses, from the calling thread, an async and a
/// blocking job alike, each with a shutdown error.
#[allow(dead_code, reason = "not every test file checks refusals")]
pub(crate) fn assert_refuses_both_lanes(executor: &Executor) {
    let async_job = executor.spawn(async {}).join().unwrap_err();
    assert!(async_job.is_shutdown(), "{async_job:?}");
    let blocking_job = executor.spawn_blocking(|| ()).join().unwrap_err();
    assert!(blocking_job.is_shutdown(), "{blocking_job:?}");
}
