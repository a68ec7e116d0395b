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

/// A pool of one worker and one blocking thread, its queue bounded to
/// `max_queued` jobs if given: one busy job fills it.
pub fn narrow_executor(name: &str, max_queued: Option<usize>) -> Executor {
    let builder = io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::MIN)
        .blocking_threads(NonZeroUsize::MIN);
    match max_queued.and_then(NonZeroUsize::new) {
        Some(bound) => builder.max_queued_jobs(bound),
        None => builder,
    }
    .build()
    .expect("test executor")
}

/// An fs operator over `dir` on `executor`.
pub fn fs_operator_on(dir: &std::path::Path, executor: &Executor) -> storage::Operator {
    storage::Operator::new(storage::services::Fs::new(dir).unwrap()).with_executor(executor.clone())
}

/// Occupies `executor`'s blocking thread (a [`narrow_executor`]'s only one)
/// until the returned sender sends or is dropped; returns once the job runs.
pub fn occupy_blocking(
    executor: &Executor,
) -> (std::sync::mpsc::Sender<()>, io_executor::JoinHandle<()>) {
    let (started, running) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let busy = executor.spawn_blocking(move || {
        started.send(()).unwrap();
        released.recv().ok();
    });
    running.recv().unwrap();
    (release, busy)
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

/// An fs operator on a fresh temp directory (kept alive by the returned guard), on
/// its own executor.
pub fn fs_operator(name: &str) -> (storage::Operator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (fs_operator_on(dir.path(), &executor(name)), dir)
}

/// A memory operator on its own executor.
pub fn memory_operator(name: &str) -> storage::Operator {
    storage::Operator::new(storage::services::Memory::new()).with_executor(executor(name))
}

/// An operator of our S3 backend on the test bucket under a fresh prefix, on its own
/// executor; `None` (with a note) when no server was configured, a failure with
/// `DIO_REQUIRE_S3=1`.
pub fn s3_operator(test: &str) -> Option<storage::Operator> {
    s3_operator_with(test, |builder| builder)
}

/// [`s3_operator`], its backend's builder changed by `change` first.
pub fn s3_operator_with(
    test: &str,
    change: impl FnOnce(storage::services::s3::S3Builder) -> storage::services::s3::S3Builder,
) -> Option<storage::Operator> {
    let uri = match std::env::var("DIO_TEST_S3_URI") {
        Ok(uri) => uri,
        Err(_) => {
            if std::env::var("DIO_REQUIRE_S3").is_ok_and(|v| v == "1") {
                panic!("DIO_REQUIRE_S3=1 but DIO_TEST_S3_URI is not set: run scripts/test");
            }
            eprintln!(
                "S3 test {test} SKIPPED: no S3 server (DIO_TEST_S3_URI unset); scripts/test starts one"
            );
            return None;
        }
    };
    let builder = storage::services::s3::S3Builder::from_uri(&uri)
        .unwrap()
        .root(s3::unique_prefix(test));
    let s3 = change(builder).build().unwrap();
    Some(storage::Operator::new(s3).with_executor(executor(test)))
}
