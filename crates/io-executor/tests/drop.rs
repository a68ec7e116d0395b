//! Dropping the last handle shuts the pool down without blocking or panicking,
//! whatever thread it happens on.

mod common;

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use common::{caller_runtime, counted_pool, eventually, within};

#[test]
fn dropping_an_idle_pool_stops_its_threads() {
    within(30, || {
        let (executor, stopped) = counted_pool("drop-idle", 2, 3);
        // That the drop does not wait for the threads is shown without a clock by
        // the next test: there a job is still blocked when the pool is dropped.
        drop(executor);
        eventually(10, "threads exited", || stopped.load(Ordering::SeqCst) == 5);
    });
}

/// Jobs accepted before the drop still run to completion.
#[test]
fn dropping_a_busy_pool_drains_it() {
    within(30, || {
        let (executor, stopped) = counted_pool("drop-busy", 1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let blocking = executor.spawn_blocking(move || release_rx.recv().map(|()| "b"));
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let asynchronous = executor.spawn(async move {
            go_rx.await.unwrap();
            "a"
        });
        drop(executor);
        assert_eq!(stopped.load(Ordering::SeqCst), 0, "still draining");
        release_tx.send(()).unwrap();
        go_tx.send(()).unwrap();
        assert_eq!(blocking.join().unwrap().unwrap(), "b");
        assert_eq!(asynchronous.join().unwrap(), "a");
        eventually(10, "threads exited", || stopped.load(Ordering::SeqCst) == 2);
    });
}

/// Never "Cannot drop a runtime in a context where blocking is not allowed".
#[test]
fn dropping_inside_a_tokio_runtime() {
    within(30, || {
        let (executor, stopped) = counted_pool("drop-async", 2, 1);
        caller_runtime().block_on(async move {
            let job = executor.spawn(async { 1 });
            assert_eq!(job.await.unwrap(), 1);
            drop(executor);
        });
        let (executor, stopped_mt) = counted_pool("drop-async-mt", 2, 1);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async move {
            tokio::spawn(async move { drop(executor) }).await.unwrap();
        });
        eventually(10, "threads exited", || {
            stopped.load(Ordering::SeqCst) == 3 && stopped_mt.load(Ordering::SeqCst) == 3
        });
    });
}

/// The last handle moved into a job and dropped there, on the pool's own worker and
/// on its own blocking thread.
#[test]
fn dropping_on_a_pool_thread() {
    within(30, || {
        let (executor, stopped) = counted_pool("drop-self", 1, 1);
        let inner = executor.clone();
        let job = executor.spawn(async move { drop(inner) });
        drop(executor);
        job.join().unwrap();
        eventually(10, "threads exited", || stopped.load(Ordering::SeqCst) == 2);

        let (executor, stopped) = counted_pool("drop-self-b", 1, 1);
        let inner = executor.clone();
        let job = executor.spawn_blocking(move || drop(inner));
        drop(executor);
        job.join().unwrap();
        eventually(10, "threads exited", || stopped.load(Ordering::SeqCst) == 2);
    });
}

/// Dropped during unwinding: a second panic would abort the whole test process.
#[test]
fn dropping_while_panicking() {
    within(30, || {
        let (executor, stopped) = counted_pool("drop-panic", 1, 1);
        let result = std::thread::spawn(move || {
            let _busy = executor.spawn(std::future::pending::<()>());
            let _executor = executor;
            panic!("caller failed");
        })
        .join();
        assert!(result.is_err());
        eventually(10, "threads exited", || stopped.load(Ordering::SeqCst) == 2);
    });
}
