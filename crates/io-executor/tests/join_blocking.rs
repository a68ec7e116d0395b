//! `io_executor::join_blocking`: two halves of blocking work on two threads when one
//! is free, on the calling thread alone when none is, and never a deadlock.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{pool, thread_name, within};

#[test]
fn the_other_half_runs_on_a_free_blocking_thread_meanwhile() {
    within(60, || {
        let executor = pool("join-two", 1, 2);
        let (a_thread, b_thread) = executor
            .spawn_blocking(move || {
                let (started_tx, started_rx) = mpsc::channel::<()>();
                io_executor::join_blocking(
                    // `a` finishes only once `b` has started: they overlap, so `b`
                    // cannot have been run here after `a`.
                    move || {
                        started_rx
                            .recv_timeout(Duration::from_secs(30))
                            .expect("the other half never started while this one ran");
                        thread_name()
                    },
                    move || {
                        started_tx.send(()).unwrap();
                        thread_name()
                    },
                )
            })
            .join()
            .unwrap();
        assert!(a_thread.starts_with("join-two-blocking-"), "{a_thread}");
        assert!(b_thread.starts_with("join-two-blocking-"), "{b_thread}");
        assert_ne!(a_thread, b_thread);
    });
}

#[test]
fn with_no_free_thread_the_caller_takes_the_other_half_back() {
    within(60, || {
        // One blocking thread, busy with the call itself: `b` can only run here.
        let executor = pool("join-one", 1, 1);
        let (a, b) = executor
            .spawn_blocking(move || {
                io_executor::join_blocking(|| (1, thread_name()), || (2, thread_name()))
            })
            .join()
            .unwrap();
        assert_eq!((a.0, b.0), (1, 2));
        assert_eq!(a.1, b.1, "both halves ran on the calling thread");
    });
}

#[test]
fn every_blocking_thread_joining_at_once_does_not_deadlock() {
    within(60, || {
        let executor = pool("join-all", 1, 2);
        let calls: Vec<_> = (0..16_u64)
            .map(|i| {
                executor.spawn_blocking(move || {
                    io_executor::join_blocking(
                        || {
                            std::thread::sleep(Duration::from_millis(1));
                            i
                        },
                        move || i * 100,
                    )
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            let i = i as u64;
            assert_eq!(call.join().unwrap(), (i, i * 100));
        }
    });
}

#[test]
fn a_panic_in_either_half_reaches_the_caller() {
    within(60, || {
        let executor = pool("join-panic", 1, 2);
        let err = executor
            .spawn_blocking(move || {
                io_executor::join_blocking(|| 1, || -> u32 { panic!("half b") })
            })
            .join()
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("half b"), "{err}");
        let err = executor
            .spawn_blocking(move || {
                io_executor::join_blocking(|| -> u32 { panic!("half a") }, || 2)
            })
            .join()
            .unwrap_err();
        assert_eq!(err.panic_message(), Some("half a"), "{err}");
        // The pool is still whole.
        assert_eq!(executor.spawn_blocking(|| 7).join().unwrap(), 7);
    });
}

#[test]
fn off_a_pool_both_halves_run_here_in_order() {
    let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (a, b) = (order.clone(), order.clone());
    let here = thread_name();
    let got = io_executor::join_blocking(
        move || {
            a.lock().push("a");
            thread_name()
        },
        move || {
            b.lock().push("b");
            thread_name()
        },
    );
    assert_eq!(got, (here.clone(), here));
    assert_eq!(*order.lock(), ["a", "b"]);
}
