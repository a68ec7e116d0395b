//! Helpers shared by the test binaries.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a part")]

pub mod probe_store;
pub mod s3;

use std::future::Future;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use io_executor::Executor;

/// A small dedicated pool named `name`: its threads are `name-worker-*` and
/// `name-blocking-*`.
pub fn executor(name: &str) -> Executor {
    io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(2).unwrap())
        .blocking_threads(NonZeroUsize::new(4).unwrap())
        .build()
        .expect("test executor")
}

/// A current-thread runtime with timers, as a caller's would be.
pub fn caller_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// How long a test waits for something that must happen before it calls it a hang.
/// A guard against hanging forever, never a measure of speed.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Waits (async, on the caller's runtime) until `done` holds; panics with `what`
/// if it does not within [`HANG_GUARD`].
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < HANG_GUARD, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Runs `fut` on the caller's runtime, failing (not hanging) if it never finishes.
pub async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG_GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}
