//! Black-box proof that fs IO runs on the executor, never on the caller's runtime.
//!
//! The caller is a current-thread runtime. Had the IO run on its thread, the task
//! that unblocks it (on that same thread) could never run: the test would hang, and
//! the timeout turns a hang into a failure.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use io_executor::{Builder, Executor};
use storage::Operator;

/// Runs `f` on a helper thread and fails if it has not returned within `secs`. A
/// timeout inside the caller's runtime cannot fire if its only thread is the one
/// stuck in IO, so the watchdog must live outside it.
fn within(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("IO blocked the caller's runtime: no progress within {secs} s"),
    }
}

fn caller() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn small_pool(blocking: usize) -> Executor {
    Builder::new()
        .name("iso")
        .worker_threads(NonZeroUsize::new(1).unwrap())
        .blocking_threads(NonZeroUsize::new(blocking).unwrap())
        .build()
        .unwrap()
}

/// Holds `op`'s executor's blocking lane (one thread in these tests) with a job
/// that waits until a task on the caller's runtime, after a short sleep, raises the
/// returned flag and lets it go. Returns the flag, the releasing task and the job.
fn hold_the_lane(
    op: &Operator,
) -> (
    Arc<AtomicBool>,
    tokio::task::JoinHandle<()>,
    io_executor::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let gate = op.executor().spawn_blocking(move || {
        let _ = rx.recv();
    });
    let released = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&released);
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        flag.store(true, Ordering::SeqCst);
        let _ = tx.send(());
    });
    (released, task, gate)
}

/// Occupies the pool's only blocking thread until a task on the caller's runtime
/// releases it, then starts `op`'s IO: it can only finish after the release if it
/// went through the executor (it would finish before, or hang, on the caller's
/// thread).
fn assert_runs_on_executor<T: Send + 'static>(
    name: &str,
    setup: impl AsyncFnOnce(&Operator),
    start: impl FnOnce(&Operator) -> futures::future::BoxFuture<'static, T>,
) {
    let dir = tempfile::tempdir().unwrap();
    let op =
        Operator::new(storage::services::Fs::new(dir.path()).unwrap()).with_executor(small_pool(1));
    caller().block_on(async move {
        setup(&op).await;
        let (released, release, gate) = hold_the_lane(&op);
        let io = start(&op);
        tokio::time::timeout(Duration::from_secs(20), io)
            .await
            .unwrap_or_else(|_| panic!("{name}: hung"));
        assert!(
            released.load(Ordering::SeqCst),
            "{name} finished before the lane was free: it did not run there"
        );
        gate.await.unwrap();
        release.await.unwrap();
    });
}

#[test]
fn reader_polls_run_on_the_executor() {
    within(30, || {
        assert_runs_on_executor(
            "reader poll",
            async |op| {
                op.write("data", vec![5_u8; 3 << 20]).await.unwrap();
            },
            |op| {
                let op = op.clone();
                Box::pin(async move {
                    // Opening before the gate closes would race it; open within.
                    let mut reader = op.reader("data").await.unwrap();
                    let mut total = 0;
                    while let Some(chunk) = reader.next().await {
                        total += chunk.unwrap().len();
                    }
                    assert_eq!(total, 3 << 20);
                })
            },
        );
    });
}

#[test]
fn reader_chunks_after_open_run_on_the_executor() {
    within(30, || {
        // The reader is opened while the lane is free; only its chunk reads meet the gate.
        let dir = tempfile::tempdir().unwrap();
        let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap())
            .with_executor(small_pool(1));
        let op = op
            .clone()
            .with_options(op.options().with_chunk_size(1 << 20).with_prefetch(1));
        caller().block_on(async move {
            op.write("data", vec![5_u8; 4 << 20]).await.unwrap();
            let mut reader = op.reader("data").await.unwrap();
            // Drain what was prefetched at open, so the next chunk needs a new read.
            let first = reader.next().await.unwrap().unwrap();
            assert_eq!(first.len(), 1 << 20);
            let (released, release, gate) = hold_the_lane(&op);
            let mut rest = 0;
            while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), reader.next())
                .await
                .expect("hung")
            {
                rest += chunk.unwrap().len();
                assert!(
                    released.load(Ordering::SeqCst) || rest <= 1 << 20,
                    "chunk read bypassed the executor"
                );
            }
            assert_eq!(rest, 3 << 20);
            assert!(released.load(Ordering::SeqCst));
            gate.await.unwrap();
            release.await.unwrap();
        });
    });
}

#[test]
fn list_runs_on_the_executor() {
    within(30, || {
        assert_runs_on_executor(
            "list",
            async |op| {
                for i in 0..10 {
                    op.write(&format!("dir/f{i}"), "x").await.unwrap();
                }
            },
            |op| {
                let list = op.list_recursive("dir/");
                Box::pin(async move {
                    assert_eq!(list.await.unwrap().len(), 10);
                })
            },
        );
    });
}

#[test]
fn stat_and_write_run_on_the_executor() {
    within(30, || {
        assert_runs_on_executor(
            "stat+write",
            async |_| {},
            |op| {
                let write = op.write("new", "v");
                let op = op.clone();
                Box::pin(async move {
                    write.await.unwrap();
                    assert_eq!(op.stat("new").await.unwrap().content_length(), 1);
                })
            },
        );
    });
}
