//! A panicking job is an error value; it never kills a worker or the pool.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{pool, thread_name};

#[test]
fn str_payload_is_reported() {
    let executor = pool("panic-str", 1, 1);
    let err = executor
        .spawn(async { panic!("static message") })
        .join()
        .unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert_eq!(err.panic_message(), Some("static message"));
    assert_eq!(err.to_string(), "job panicked: static message");
}

#[test]
fn string_payload_is_reported() {
    let executor = pool("panic-string", 1, 1);
    let code = 7;
    let err = executor
        .spawn_blocking(move || panic!("formatted {code}"))
        .join()
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), Some("formatted 7"));
}

#[test]
fn other_payloads_are_kept() {
    #[derive(Debug, PartialEq)]
    struct Custom(u32);
    let executor = pool("panic-any", 1, 1);
    let err = executor
        .spawn(async { std::panic::panic_any(Custom(3)) })
        .join()
        .unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.panic_message(), None);
    assert_eq!(err.to_string(), "job panicked with a non-string payload");
    let payload = err.try_into_panic().unwrap();
    assert_eq!(payload.downcast_ref::<Custom>(), Some(&Custom(3)));
    // A non-panic error hands itself back.
    executor.shutdown();
    let err = executor.spawn(async {}).join().unwrap_err();
    assert!(err.try_into_panic().unwrap_err().is_shutdown());
}

#[test]
fn workers_and_blocking_threads_survive_panics() {
    let executor = pool("panic-survive", 1, 1);
    for _ in 0..10 {
        assert!(
            executor
                .spawn(async { panic!("boom") })
                .join()
                .unwrap_err()
                .is_panic()
        );
        assert!(
            executor
                .spawn_blocking(|| panic!("boom"))
                .join()
                .unwrap_err()
                .is_panic()
        );
    }
    // Same single threads, still serving.
    assert_eq!(
        executor.spawn(async { thread_name() }).join().unwrap(),
        "panic-survive-worker-0"
    );
    assert_eq!(
        executor.spawn_blocking(thread_name).join().unwrap(),
        "panic-survive-blocking-0"
    );
    let m = executor.metrics();
    assert_eq!(m.panicked, 20);
    assert_eq!(m.completed, 2);
}

#[test]
fn a_panicking_job_does_not_disturb_its_neighbours() {
    let executor = pool("panic-neighbour", 1, 1);
    let slow = executor.spawn(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        "fine"
    });
    let bad = executor.spawn(async {
        tokio::task::yield_now().await;
        panic!("neighbour")
    });
    assert!(bad.join().unwrap_err().is_panic());
    assert_eq!(slow.join().unwrap(), "fine");
}

/// A value that panics when dropped.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("dropped");
        }
    }
}

/// A blocking job cancelled before it ran, whose closure panics when dropped
/// unrun, and one whose handle is dropped while it runs, whose result panics when
/// dropped because nobody waits for it: the lane's one thread survives both, and
/// runs the jobs queued behind them.
#[test]
fn values_that_panic_when_dropped_do_not_kill_a_blocking_thread() {
    common::within(60, || {
        let executor = pool("panic-drop", 1, 1);
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let held = executor.spawn_blocking(move || gate.recv().unwrap());
        let doomed = PanicOnDrop;
        let ran = Arc::new(AtomicBool::new(false));
        let marker = Arc::clone(&ran);
        // Dropping the handle cancels the job before it starts: its closure is
        // dropped unrun, on the lane.
        drop(executor.spawn_blocking(move || {
            marker.store(true, Ordering::SeqCst);
            drop(doomed);
        }));
        let late = executor.spawn_blocking(|| 7);
        open.send(()).unwrap();
        held.join().unwrap();
        assert_eq!(late.join().unwrap(), 7);
        assert!(!ran.load(Ordering::SeqCst), "the cancelled job ran");

        // Started, then its handle dropped: it runs to its end, and its result is
        // dropped on the lane.
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let running = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
            PanicOnDrop
        });
        started.recv().unwrap();
        drop(running);
        let late = executor.spawn_blocking(|| 8);
        open.send(()).unwrap();
        assert_eq!(late.join().unwrap(), 8);
        assert_eq!(
            executor.spawn_blocking(thread_name).join().unwrap(),
            "panic-drop-blocking-0"
        );
    });
}

/// A shutdown whose deadline passes drops the queued blocking jobs on the caller's
/// thread: a closure that panics when dropped does not unwind into the caller, and
/// the running job's handle is resolved as the docs say.
#[test]
fn a_shutdown_deadline_survives_a_queued_job_that_panics_when_dropped() {
    common::within(60, || {
        let executor = pool("panic-abort", 1, 1);
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let held = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap()
        });
        started.recv().unwrap();
        let doomed = PanicOnDrop;
        let queued = executor.spawn_blocking(move || drop(doomed));
        let finished = executor.blocking_shutdown_timeout(std::time::Duration::ZERO);
        assert!(!finished);
        assert!(held.is_finished(), "the running job's handle is resolved");
        assert!(held.join().unwrap_err().is_shutdown());
        assert!(queued.join().unwrap_err().is_shutdown());
        open.send(()).unwrap();
    });
}

/// A waker whose `wake` panics: a bug of the runtime it belongs to.
struct PanickingWaker;

impl std::task::Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        panic!("a waker that panics");
    }
}

/// A waker that says it was woken.
struct Flag(AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A handle polled with a waker that panics when its job ends: the panic stays
/// out of the pool, the output is not lost, the job leaves the count that `join`
/// waits on (it waited for ever), and every other waiter on the executor's end is
/// still woken, past a waker of theirs that panics.
#[test]
fn a_waker_that_panics_loses_no_output_and_hangs_no_join() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    common::within(60, || {
        for blocking in [true, false] {
            let executor = pool("panic-waker", 1, 1);
            let (go, wait) = std::sync::mpsc::channel::<()>();
            let (go_async, wait_async) = tokio::sync::oneshot::channel::<()>();
            let mut handle = if blocking {
                executor.spawn_blocking(move || {
                    let _ = wait.recv();
                    5
                })
            } else {
                executor.spawn(async move {
                    let _ = wait_async.await;
                    5
                })
            };
            let panics = Waker::from(Arc::new(PanickingWaker));
            assert!(
                Pin::new(&mut handle)
                    .poll(&mut Context::from_waker(&panics))
                    .is_pending()
            );
            if blocking {
                go.send(()).unwrap();
            } else {
                go_async.send(()).unwrap();
            }
            common::eventually(30, "the job ends", || handle.is_finished());
            assert_eq!(handle.join().unwrap(), 5, "blocking: {blocking}");
            // The pool is whole: its threads still run jobs.
            assert_eq!(executor.spawn_blocking(|| 6).join().unwrap(), 6);
            assert_eq!(executor.spawn(async { 7 }).join().unwrap(), 7);
            // Two waiters on the executor's end (a job keeps it from ending
            // before both wait), the first with a waker that panics: the second
            // is woken all the same.
            let (release, held) = std::sync::mpsc::channel::<()>();
            let holding = executor.spawn_blocking(move || {
                let _ = held.recv();
            });
            let mut first = Box::pin(executor.join());
            let mut second = Box::pin(executor.join());
            let flag = Arc::new(Flag(AtomicBool::new(false)));
            let woken = Waker::from(Arc::clone(&flag));
            assert!(
                first
                    .as_mut()
                    .poll(&mut Context::from_waker(&panics))
                    .is_pending()
            );
            assert!(
                second
                    .as_mut()
                    .poll(&mut Context::from_waker(&woken))
                    .is_pending()
            );
            release.send(()).unwrap();
            common::eventually(30, "the second waiter is woken", || {
                flag.0.load(Ordering::SeqCst)
            });
            assert_eq!(
                second.as_mut().poll(&mut Context::from_waker(&woken)),
                Poll::Ready(())
            );
            holding.join().unwrap();
            executor.blocking_join();
        }
    });
}
