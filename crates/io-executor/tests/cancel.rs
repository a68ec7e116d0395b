//! Dropping or aborting a handle cancels its job; `detach` keeps it running.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{eventually, pool, within};

/// The job's captured `Arc` is released when its handle is dropped (seen from
/// outside through a `Weak`), while a sibling job on the same worker still completes.
#[test]
fn dropping_a_handle_releases_the_job_and_spares_its_sibling() {
    within(30, || {
        let executor = pool("cancel-drop", 1, 1);
        let captured = Arc::new(());
        let weak = Arc::downgrade(&captured);
        let (started_tx, started_rx) = mpsc::channel();
        let doomed = executor.spawn(async move {
            let _keep = captured;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<u32>();
        let sibling = executor.spawn(async move { go_rx.await.unwrap() * 2 });
        started_rx.recv().unwrap();
        assert!(weak.upgrade().is_some(), "job holds its Arc while running");
        drop(doomed);
        eventually(10, "cancelled job released its Arc", || {
            weak.upgrade().is_none()
        });
        go_tx.send(21).unwrap();
        assert_eq!(sibling.join().unwrap(), 42);
        let m = executor.metrics();
        assert_eq!((m.cancelled, m.completed), (1, 1));
    });
}

#[test]
fn abort_resolves_to_cancelled() {
    within(30, || {
        let executor = pool("cancel-abort", 1, 1);
        let handle = executor.spawn(std::future::pending::<()>());
        handle.abort();
        let err = futures::executor::block_on(handle).unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.to_string(), "job was cancelled");
    });
}

/// A blocking job cancelled before a thread picks it up never runs.
#[test]
fn a_cancelled_blocking_job_that_has_not_started_never_runs() {
    within(30, || {
        let executor = pool("cancel-queued", 1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let blocker = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        started_rx.recv().unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let queued = executor.spawn_blocking(move || flag.store(true, Ordering::SeqCst));
        assert_eq!(executor.metrics().blocking_queue_depth, 1);
        drop(queued);
        release_tx.send(()).unwrap();
        blocker.join().unwrap();
        executor.blocking_join();
        assert!(!ran.load(Ordering::SeqCst), "cancelled job ran");
        let m = executor.metrics();
        assert_eq!((m.completed, m.cancelled), (1, 1));
    });
}

#[test]
fn detached_jobs_keep_running() {
    within(30, || {
        let executor = pool("cancel-detach", 1, 1);
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        executor
            .spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                tx.send("async").unwrap();
            })
            .detach();
        executor
            .spawn_blocking(move || tx2.send("blocking").unwrap())
            .detach();
        let mut got = vec![rx.recv().unwrap(), rx.recv().unwrap()];
        got.sort();
        assert_eq!(got, ["async", "blocking"]);
    });
}

#[test]
fn is_finished_tracks_the_job() {
    within(30, || {
        let executor = pool("cancel-finished", 1, 1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = executor.spawn(async move { rx.await.unwrap() });
        assert!(!handle.is_finished());
        tx.send(()).unwrap();
        eventually(10, "job finished", || handle.is_finished());
        handle.join().unwrap();
    });
}

/// A handle awaited to the end has given its output away: joining it afterwards is
/// the same mistake as polling it again, and panics as that does, rather than
/// saying the job, which completed, was cancelled.
#[test]
fn joining_a_handle_already_awaited_panics() {
    let executor = pool("cancel-awaited", 1, 1);
    let mut handle = executor.spawn(async { 5 });
    assert_eq!(futures::executor::block_on(&mut handle).unwrap(), 5);
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.join()))
        .expect_err("joined a handle whose output was taken");
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains("after the handle was awaited"),
        "{message}"
    );
    assert_eq!(executor.metrics().cancelled, 0);
}

/// Aborting a job that already finished changes nothing: its output is delivered.
#[test]
fn abort_after_completion_keeps_the_output() {
    let executor = pool("cancel-late", 1, 1);
    let handle = executor.spawn_blocking(|| 5);
    eventually(10, "job finished", || handle.is_finished());
    handle.abort();
    assert_eq!(handle.join().unwrap(), 5);
    assert_eq!(executor.metrics().completed, 1);
}
