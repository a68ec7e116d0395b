//! Waits that could never end fail loudly instead of hanging: an executor joined from
//! one of its own threads, and a worker blocked in `JoinHandle::join()`. Joining from
//! anywhere else still works.
//!
//! `within` only guards against a hang; no test asserts on how fast anything is.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{counted_pool, pool, within};
use io_executor::{Executor, JoinError};

/// A long deadline: were the call not refused, the test would hang on it.
const FOREVER: Duration = Duration::from_secs(3_600);

/// The job's handle resolved to a panic whose message names the call, the executor,
/// the reason and the way out.
fn assert_refused(err: &JoinError, call: &str, executor: &str, why: &str, advice: &str) {
    assert!(err.is_panic(), "{err:?}");
    let message = err.panic_message().expect("a string message");
    for part in [call, &format!("executor {executor:?}"), why, advice] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

/// The refused call shut nothing down: the executor still takes and runs jobs.
fn assert_still_serving(executor: &Executor) {
    assert!(!executor.is_shutdown());
    assert_eq!(executor.spawn(async { 1 }).join().unwrap(), 1);
    assert_eq!(executor.spawn_blocking(|| 2).join().unwrap(), 2);
}

#[test]
fn join_awaited_inside_its_own_job_panics() {
    within(30, || {
        let executor = pool("sj-async", 1, 1);
        let inner = executor.clone();
        let err = executor
            .spawn(async move { inner.join().await })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::join() called on thread \"sj-async-worker-0\"",
            "sj-async",
            "so it could never return",
            "Call shutdown() here",
        );
        assert_still_serving(&executor);
    });
}

#[test]
fn blocking_join_inside_its_own_jobs_panics() {
    within(30, || {
        let executor = pool("sj-blocking", 1, 1);
        let inner = executor.clone();
        let err = executor
            .spawn_blocking(move || inner.blocking_join())
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_join() called on thread \"sj-blocking-blocking-0\"",
            "sj-blocking",
            "so it could never return",
            "leave Executor::blocking_join() to code outside the executor",
        );
        // On a worker too.
        let inner = executor.clone();
        let err = executor
            .spawn(async move { inner.blocking_join() })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_join() called on thread \"sj-blocking-worker-0\"",
            "sj-blocking",
            "so it could never return",
            "Call shutdown() here",
        );
        assert_still_serving(&executor);
    });
}

#[test]
fn shutdown_timeout_inside_its_own_jobs_panics() {
    within(30, || {
        let executor = pool("sj-timeout", 1, 1);
        let inner = executor.clone();
        let err = executor
            .spawn(async move { inner.shutdown_timeout(FOREVER).await })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::shutdown_timeout() called on thread \"sj-timeout-worker-0\"",
            "sj-timeout",
            "the pool could never drain",
            "Call shutdown() here",
        );
        let inner = executor.clone();
        let err = executor
            .spawn_blocking(move || inner.blocking_shutdown_timeout(FOREVER))
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_shutdown_timeout() called on thread \"sj-timeout-blocking-0\"",
            "sj-timeout",
            "the pool could never drain",
            "Call shutdown() here",
        );
        assert_still_serving(&executor);
    });
}

/// An executor without threads of its own (on the caller's runtime) cannot tell
/// its jobs by their thread: it marks them while they run, so that a job waiting
/// for its own executor to drain is refused there too, instead of waiting for ever.
#[test]
fn waits_inside_a_job_of_an_executor_without_threads_panic() {
    within(30, || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let executor = Executor::from_handle(runtime.handle().clone());
        let inner = executor.clone();
        let err = executor
            .spawn(async move { inner.join().await })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::join() called inside a job of executor \"tokio-handle\"",
            "tokio-handle",
            "so it could never return",
            "Call shutdown() here",
        );
        let inner = executor.clone();
        let err = executor
            .spawn_blocking(move || inner.blocking_shutdown_timeout(FOREVER))
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_shutdown_timeout() called inside a job",
            "tokio-handle",
            "could never drain",
            "Call shutdown() here",
        );
        assert_still_serving(&executor);
        // Inside a job of another such executor that this job runs inline (a
        // custom spawner's blocking job), the outer job is still one of its own.
        struct Inline;
        impl io_executor::Spawn for Inline {
            fn spawn(&self, future: io_executor::BoxFuture) {
                drop(std::thread::spawn(move || {
                    futures::executor::block_on(future)
                }));
            }
            fn spawn_blocking(&self, job: io_executor::BlockingFn) {
                job();
            }
        }
        let inline = Executor::custom(Inline);
        let inner = executor.clone();
        let err = executor
            .spawn_blocking(move || inline.spawn_blocking(move || inner.blocking_join()).join())
            .join()
            .unwrap()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_join() called inside a job",
            "tokio-handle",
            "so it could never return",
            "Call shutdown() here",
        );
        assert_still_serving(&executor);
        // Outside its jobs, on the same runtime, the wait is allowed and ends.
        let joined = executor.clone();
        runtime.block_on(async move {
            tokio::spawn(async move { joined.join().await })
                .await
                .unwrap();
        });
        assert!(executor.is_shutdown());
    });
}

/// The third case: with one worker, a job spawned from that worker is queued
/// on it, behind the job that would block waiting for it.
#[test]
fn join_handle_join_on_a_worker_panics_instead_of_waiting_for_a_job_queued_behind_it() {
    within(30, || {
        let executor = pool("sj-handle", 1, 1);
        let inner = executor.clone();
        let err = executor
            .spawn(async move { inner.spawn(async { 1 }).join() })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "JoinHandle::join() called on thread \"sj-handle-worker-0\"",
            "sj-handle",
            "a worker must never block",
            "Await the JoinHandle instead",
        );
        assert_still_serving(&executor);
    });
}

/// A worker never blocks, whoever's job it would wait for and even if that job has
/// already finished: the misuse shows every time, not only when it would hang.
#[test]
fn join_handle_join_on_a_worker_panics_whatever_the_job() {
    within(30, || {
        let executor = pool("sj-any", 1, 1);
        let other = pool("sj-other", 1, 1);
        let theirs = other.spawn_blocking(|| 3);
        let err = executor
            .spawn(async move { theirs.join() })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "JoinHandle::join() called on thread \"sj-any-worker-0\"",
            "sj-any",
            "a worker must never block",
            "Await the JoinHandle instead",
        );
        let finished = other.spawn(async { 4 });
        common::eventually(10, "job finished", || finished.is_finished());
        let err = executor
            .spawn(async move { finished.join() })
            .join()
            .unwrap_err();
        assert!(err.is_panic(), "{err:?}");
    });
}

/// The executor's other blocking waits refuse a worker of any pool, as
/// `JoinHandle::join` does: another pool's `blocking_join` and
/// `blocking_shutdown_timeout` (which shut nothing down when refused). A pool's
/// blocking threads may still wait.
#[test]
fn blocking_waits_on_any_pools_worker_panic() {
    within(30, || {
        let executor = pool("sj-wait", 1, 1);
        let other = pool("sj-waited", 1, 1);
        let waited = other.clone();
        let err = executor
            .spawn(async move { waited.blocking_join() })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_join() called on thread \"sj-wait-worker-0\"",
            "sj-wait",
            "a worker must never block",
            "from a plain thread",
        );
        let waited = other.clone();
        let err = executor
            .spawn(async move { waited.blocking_shutdown_timeout(FOREVER) })
            .join()
            .unwrap_err();
        assert_refused(
            &err,
            "Executor::blocking_shutdown_timeout() called on thread \"sj-wait-worker-0\"",
            "sj-wait",
            "a worker must never block",
            "from a plain thread",
        );
        assert_still_serving(&executor);
        assert_still_serving(&other);
        let waited = other.clone();
        executor
            .spawn_blocking(move || waited.blocking_join())
            .join()
            .unwrap();
        assert!(other.is_shutdown());
    });
}

/// What stays allowed: another executor's threads join this one (awaiting on a worker,
/// blocking on a blocking thread), a blocking thread joins a handle, and plain threads
/// and caller runtimes join as before.
#[test]
fn joining_from_outside_the_executor_still_works() {
    within(30, || {
        let other = pool("sj-outside", 1, 1);

        let (target, stopped) = counted_pool("sj-target-a", 1, 1);
        let job = target.spawn(async { 5 });
        let joined = target.clone();
        other
            .spawn(async move { joined.join().await })
            .join()
            .unwrap();
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            2,
            "joined: all threads exited"
        );
        assert_eq!(job.join().unwrap(), 5);

        let (target, stopped) = counted_pool("sj-target-b", 1, 1);
        let joined = target.clone();
        other
            .spawn_blocking(move || joined.blocking_join())
            .join()
            .unwrap();
        assert_eq!(stopped.load(Ordering::SeqCst), 2);

        let target = pool("sj-target-c", 1, 1);
        let joined = target.clone();
        assert!(
            other
                .spawn(async move { joined.shutdown_timeout(FOREVER).await })
                .join()
                .unwrap(),
            "drained cleanly"
        );
        let target = pool("sj-target-d", 1, 1);
        let joined = target.clone();
        assert!(
            other
                .spawn_blocking(move || joined.blocking_shutdown_timeout(FOREVER))
                .join()
                .unwrap()
        );

        // A blocking thread may block on a handle, of its own pool or another.
        let own = other.clone();
        let target = pool("sj-target-e", 1, 1);
        let value = other
            .spawn_blocking(move || {
                own.spawn(async { 6 }).join().unwrap() + target.spawn(async { 7 }).join().unwrap()
            })
            .join()
            .unwrap();
        assert_eq!(value, 13);

        // Plain threads and caller runtimes.
        let target = pool("sj-target-f", 1, 1);
        let joined = target.clone();
        std::thread::spawn(move || joined.blocking_join())
            .join()
            .unwrap();
        let target = pool("sj-target-g", 1, 1);
        common::caller_runtime().block_on(target.join());
        other.blocking_join();
    });
}

/// The global executor is never shut down, so joining it returns at once, even on its
/// own threads.
#[test]
fn joining_the_global_executor_returns_at_once_everywhere() {
    within(30, || {
        let global = Executor::global();
        let on_worker = global
            .spawn(async {
                let global = Executor::global();
                global.join().await;
                global.blocking_join();
                global.shutdown_timeout(FOREVER).await
            })
            .join()
            .unwrap();
        assert!(!on_worker, "the global pool does not drain");
        let on_blocking = global
            .spawn_blocking(|| {
                let global = Executor::global();
                global.blocking_join();
                global.blocking_shutdown_timeout(FOREVER)
            })
            .join()
            .unwrap();
        assert!(!on_blocking);
        assert!(!global.is_shutdown());
    });
}
