//! What the fs tests share: a runtime for the caller, and an operator over a
//! directory on a small executor of its own.

use std::num::NonZeroUsize;

use storage::Operator;

/// The caller's runtime: one thread, as a test's `block_on` has.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An operator over `dir` on an executor named `name`: one worker, two blocking
/// threads.
pub(crate) fn operator(dir: &std::path::Path, name: &str) -> (Operator, io_executor::Executor) {
    operator_on(
        dir,
        io_executor::Builder::new()
            .name(name)
            .worker_threads(NonZeroUsize::new(1).unwrap())
            .blocking_threads(NonZeroUsize::new(2).unwrap()),
    )
}

/// An operator over `dir` on the executor `builder` builds.
fn operator_on(
    dir: &std::path::Path,
    builder: io_executor::Builder,
) -> (Operator, io_executor::Executor) {
    let executor = builder.build().unwrap();
    let op =
        Operator::new(storage::services::Fs::new(dir).unwrap()).with_executor(executor.clone());
    (op, executor)
}

/// An operator over `dir` on an executor named `name` with one worker, one
/// blocking thread and room for one queued job (`max_queued_jobs`), so that a
/// test can fill its queue ([`FullQueue`]).
#[allow(dead_code, reason = "only the tests of a full queue use it")]
pub(crate) fn operator_with_a_queue_of_one(
    dir: &std::path::Path,
    name: &str,
) -> (Operator, io_executor::Executor) {
    let one = NonZeroUsize::new(1).unwrap();
    operator_on(
        dir,
        io_executor::Builder::new()
            .name(name)
            .worker_threads(one)
            .blocking_threads(one)
            .max_queued_jobs(one),
    )
}

/// Waits until `executor` holds no job that has not started (those under way
/// start on their own); panics, saying what it holds, if that takes minutes.
#[allow(dead_code, reason = "only the tests of a full queue use it")]
pub(crate) fn wait_until_none_queued(executor: &io_executor::Executor) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while executor.metrics().queued > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "jobs queued for minutes: {:?}",
            executor.metrics()
        );
        std::thread::yield_now();
    }
}

/// The queue of an executor from [`operator_with_a_queue_of_one`] made full: its
/// blocking thread held by one job, and one job queued behind it, until
/// [`release`](Self::release).
#[allow(dead_code, reason = "only the tests of a full queue use it")]
pub(crate) struct FullQueue {
    release: std::sync::mpsc::Sender<()>,
    busy: io_executor::JoinHandle<()>,
    queued: io_executor::JoinHandle<()>,
}

#[allow(dead_code, reason = "only the tests of a full queue use it")]
impl FullQueue {
    /// Fills `executor`'s queue, and checks that it refuses a job. A job queued
    /// already (a reader's read ahead, a listing's next page) is let start first:
    /// it would take the place of the first of them.
    pub(crate) fn fill(executor: &io_executor::Executor) -> Self {
        wait_until_none_queued(executor);
        let (started, running) = std::sync::mpsc::channel();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let busy = executor.spawn_blocking(move || {
            started.send(()).unwrap();
            gate.recv().ok();
        });
        running.recv().unwrap();
        let queued = executor.spawn_blocking(|| ());
        assert!(
            executor
                .spawn_blocking(|| ())
                .join()
                .unwrap_err()
                .is_queue_full(),
            "the queue is full"
        );
        Self {
            release,
            busy,
            queued,
        }
    }

    /// Lets the two jobs end, and waits for them.
    pub(crate) fn release(self) {
        self.release.send(()).unwrap();
        self.busy.join().unwrap();
        self.queued.join().unwrap();
    }
}
