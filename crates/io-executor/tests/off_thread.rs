//! Jobs run on the pool's threads, never on the caller's.

mod common;

use std::sync::{Arc, Barrier};

use common::{caller_runtime, pool, thread_name, within};

/// The caller (a current-thread runtime) and the job meet at a barrier. Had the job run
/// on the caller's thread, neither could pass it: the test would hang, and `within`
/// turns that into a failure.
#[test]
fn blocking_job_runs_off_the_callers_thread() {
    within(30, || {
        let executor = pool("off-b", 1, 2);
        let rt = caller_runtime();
        let caller = thread_name();
        let job_thread = rt.block_on(async {
            let barrier = Arc::new(Barrier::new(2));
            let theirs = Arc::clone(&barrier);
            let handle = executor.spawn_blocking(move || {
                theirs.wait();
                thread_name()
            });
            barrier.wait();
            handle.await.unwrap()
        });
        assert_ne!(job_thread, caller);
        assert!(job_thread.starts_with("off-b-blocking-"), "{job_thread}");
    });
}

#[test]
fn async_job_runs_off_the_callers_thread() {
    within(30, || {
        let executor = pool("off-a", 2, 1);
        let rt = caller_runtime();
        let job_thread = rt.block_on(async {
            let barrier = Arc::new(Barrier::new(2));
            let theirs = Arc::clone(&barrier);
            let handle = executor.spawn(async move {
                theirs.wait();
                thread_name()
            });
            barrier.wait();
            handle.await.unwrap()
        });
        assert!(job_thread.starts_with("off-a-worker-"), "{job_thread}");
    });
}

#[test]
fn threads_are_named_after_the_pool() {
    let executor = pool("named", 2, 3);
    let mut workers: Vec<String> = (0..2)
        .map(|i| {
            executor
                .spawn_on(i, async { thread_name() })
                .join()
                .unwrap()
        })
        .collect();
    workers.sort();
    assert_eq!(workers, ["named-worker-0", "named-worker-1"]);
    let blocking = executor.spawn_blocking(thread_name).join().unwrap();
    assert!(
        ["named-blocking-0", "named-blocking-1", "named-blocking-2"].contains(&blocking.as_str()),
        "{blocking}"
    );
}

/// A name no thread can carry (one with a NUL byte) fails the build with an error
/// naming the problem, instead of panicking when the first thread is spawned.
#[test]
fn a_name_with_a_nul_byte_is_refused() {
    let err = io_executor::Builder::new()
        .name("a\0b")
        .build()
        .expect_err("a thread name cannot hold a NUL byte");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    let message = err.to_string();
    assert!(message.contains("NUL"), "{message}");
    assert!(message.contains(r#""a\0b""#), "{message}");
}

/// A thread count no pool could have fails the build with an error, starting
/// nothing, where the pool's bookkeeping for that many threads aborted the process.
#[test]
fn more_threads_than_a_pool_may_have_are_refused() {
    let too_many = std::num::NonZeroUsize::new(1 << 40).unwrap();
    for builder in [
        io_executor::Builder::new().blocking_threads(too_many),
        io_executor::Builder::new().worker_threads(too_many),
    ] {
        let err = builder.name("huge").build().expect_err("built");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("1099511627776"), "{err}");
    }
}

/// Already on the executor: an async job spawned from an idle worker stays there, and
/// a blocking job spawned from a blocking thread runs inline on it.
#[test]
fn submissions_from_pool_threads_take_no_needless_hop() {
    let executor = pool("local", 2, 2);
    let inner = executor.clone();
    let (outer, nested) = executor
        .spawn_on(1, async move {
            let nested = inner.spawn(async { thread_name() }).await.unwrap();
            (thread_name(), nested)
        })
        .join()
        .unwrap();
    assert_eq!(outer, "local-worker-1");
    assert_eq!(nested, "local-worker-1");

    let inner = executor.clone();
    let (outer, nested) = executor
        .spawn_blocking(move || {
            let nested = inner.spawn_blocking(thread_name);
            assert!(
                nested.is_finished(),
                "ran inline, so finished before returning"
            );
            (thread_name(), nested.join().unwrap())
        })
        .join()
        .unwrap();
    assert_eq!(outer, nested);

    // A worker never blocks: its blocking jobs go to the blocking lane.
    let inner = executor.clone();
    let from_worker = executor
        .spawn(async move { inner.spawn_blocking(thread_name).await.unwrap() })
        .join()
        .unwrap();
    assert!(from_worker.starts_with("local-blocking-"), "{from_worker}");
}

/// The least-loaded worker gets the next job: with worker 0 busy, jobs go to worker 1.
#[test]
fn jobs_go_to_the_least_loaded_worker() {
    within(30, || {
        let executor = pool("balance", 2, 1);
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let busy = executor.spawn_on(0, async move {
            let _ = release_rx.await;
        });
        common::eventually(10, "worker 0 busy", || executor.metrics().running == 1);
        for _ in 0..20 {
            let name = executor.spawn(async { thread_name() }).join().unwrap();
            assert_eq!(name, "balance-worker-1");
        }
        release_tx.send(()).unwrap();
        busy.join().unwrap();
    });
}

/// A job that has entered another tokio runtime (`let _g = handle.enter()`, as code
/// built around a runtime handle does) and spawns: the new job still runs on the
/// executor's worker, its handle resolves, and the pool drains. The foreign runtimes
/// are a multi-thread one, which would run the job on its own thread, and a
/// current-thread one that nobody drives, where it would never run.
#[test]
fn a_job_spawned_while_another_runtime_is_entered_runs_on_its_worker() {
    within(30, || {
        let foreign = [
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("foreign")
                .build()
                .unwrap(),
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        ];
        let executor = pool("entered", 1, 1);
        for runtime in &foreign {
            let inner = executor.clone();
            let entered = runtime.handle().clone();
            let (outer, nested) = executor
                .spawn(async move {
                    let _entered = entered.enter();
                    (thread_name(), inner.spawn(async { thread_name() }))
                })
                .join()
                .unwrap();
            assert_eq!(outer, "entered-worker-0");
            assert_eq!(nested.join().unwrap(), "entered-worker-0");
        }
        executor.blocking_join();
        assert_eq!(executor.metrics().completed, 4);
    });
}
