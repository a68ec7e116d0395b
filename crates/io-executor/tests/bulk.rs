//! Bulk jobs: at most `bulk_threads` at once, taken in order by the thread that
//! ended the last one; nothing queued is lost to a panic, a dropped handle or a
//! shutdown.

mod common;

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{builder, caller_runtime, thread_name, within};
use io_executor::Executor;

fn bulk_pool(name: &str, blocking: usize, bulk: usize) -> Executor {
    builder(name, 1, blocking)
        .bulk_threads(NonZeroUsize::new(bulk).unwrap())
        .build()
        .expect("build pool")
}

/// A bulk job that holds its runner until `release` is sent to (or dropped), and
/// says when it has started.
fn holding(executor: &Executor) -> (io_executor::JoinHandle<String>, mpsc::Sender<()>) {
    let (release, held) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let handle = executor.spawn_blocking_bulk(move || {
        started_tx.send(()).unwrap();
        let _ = held.recv();
        thread_name()
    });
    started.recv().unwrap();
    (handle, release)
}

/// With `n` bulk threads, `n` bulk jobs run at once and one more waits while they
/// run, although blocking threads are free (a plain blocking job submitted after it
/// runs and ends meanwhile); it then runs on the thread of the first to end: no
/// hand-off between them.
#[test]
fn a_bulk_job_past_the_limit_waits_and_follows_on_the_thread_that_ends_first() {
    within(30, || {
        for n in [1, 2] {
            let executor = bulk_pool("bulk-limit", 6, n);
            assert_eq!(executor.num_bulk_threads(), n);
            let held: Vec<_> = (0..n).map(|_| holding(&executor)).collect();
            let extra_started = Arc::new(AtomicBool::new(false));
            let extra = {
                let started = Arc::clone(&extra_started);
                executor.spawn_blocking_bulk(move || {
                    started.store(true, Ordering::SeqCst);
                    thread_name()
                })
            };
            assert_eq!(executor.spawn_blocking(|| 7).join().unwrap(), 7);
            // Time for a bulk job that was wrongly let run to show it.
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                !extra_started.load(Ordering::SeqCst),
                "a bulk job past the limit of {n} ran while {n} were running"
            );
            assert_eq!(executor.metrics().queued, 1, "the extra job waits its turn");
            let mut held = held.into_iter();
            let (first, release) = held.next().unwrap();
            release.send(()).unwrap();
            let first = first.join().unwrap();
            let extra = extra.join().unwrap();
            assert!(first.starts_with("bulk-limit-blocking-"), "{first}");
            assert_eq!(
                first, extra,
                "the next bulk job is taken by the same thread"
            );
            for (handle, release) in held {
                release.send(()).unwrap();
                assert_ne!(handle.join().unwrap(), first);
            }
            executor.shutdown();
            executor.blocking_join();
        }
    });
}

/// A bulk job whose runner never got a blocking thread (the only one busy with a
/// plain job) is resolved by a shutdown deadline, and never runs.
#[test]
fn a_bulk_job_whose_runner_never_started_is_resolved_by_a_deadline() {
    within(30, || {
        let executor = bulk_pool("bulk-orphan", 1, 1);
        let (release, held) = mpsc::channel::<()>();
        let (started_tx, started) = mpsc::channel();
        let plain = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = held.recv();
        });
        started.recv().unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let bulk = {
            let ran = Arc::clone(&ran);
            executor.spawn_blocking_bulk(move || ran.store(true, Ordering::SeqCst))
        };
        assert!(!executor.blocking_shutdown_timeout(Duration::from_millis(10)));
        assert!(bulk.join().unwrap_err().is_shutdown());
        release.send(()).unwrap();
        assert!(plain.join().unwrap_err().is_shutdown());
        executor.blocking_join();
        assert!(
            !ran.load(Ordering::SeqCst),
            "a bulk job ran after the deadline"
        );
    });
}

/// Many bulk jobs from many threads: never more than `bulk_threads` at once, and
/// every one runs once with its own result.
#[test]
fn many_bulk_jobs_run_at_most_bulk_threads_at_once_and_all_finish() {
    within(60, || {
        let executor = bulk_pool("bulk-many", 8, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..4)
            .map(|t| {
                let executor = executor.clone();
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                std::thread::spawn(move || {
                    let handles: Vec<_> = (0..50_usize)
                        .map(|i| {
                            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                            executor.spawn_blocking_bulk(move || {
                                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                std::thread::yield_now();
                                running.fetch_sub(1, Ordering::SeqCst);
                                t * 1000 + i
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .enumerate()
                        .all(|(i, h)| h.join().unwrap() == t * 1000 + i)
                })
            })
            .collect();
        for submitter in submitters {
            assert!(submitter.join().unwrap(), "every job's own result");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} bulk jobs ran at once");
        assert_eq!(executor.metrics().completed, 200);
        executor.shutdown();
        executor.blocking_join();
    });
}

/// A bulk job that panics resolves its handle with the panic, and the jobs queued
/// behind it still run.
#[test]
fn a_panicking_bulk_job_does_not_stop_the_queue() {
    within(30, || {
        let executor = bulk_pool("bulk-panic", 2, 1);
        let (first, release) = holding(&executor);
        let panics = executor.spawn_blocking_bulk(|| -> u8 { panic!("bulk boom") });
        let after = executor.spawn_blocking_bulk(|| 5_u8);
        release.send(()).unwrap();
        first.join().unwrap();
        let err = panics.join().unwrap_err();
        assert!(err.is_panic(), "{err:?}");
        assert_eq!(err.panic_message(), Some("bulk boom"));
        assert_eq!(after.join().unwrap(), 5);
        executor.shutdown();
        executor.blocking_join();
    });
}

/// A queued bulk job whose handle is dropped never runs; the one behind it does.
#[test]
fn a_queued_bulk_job_dropped_never_runs() {
    within(30, || {
        let executor = bulk_pool("bulk-drop", 2, 1);
        let (first, release) = holding(&executor);
        let ran = Arc::new(AtomicBool::new(false));
        let dropped = {
            let ran = Arc::clone(&ran);
            executor.spawn_blocking_bulk(move || ran.store(true, Ordering::SeqCst))
        };
        let behind = executor.spawn_blocking_bulk(|| 9);
        drop(dropped);
        release.send(()).unwrap();
        first.join().unwrap();
        assert_eq!(behind.join().unwrap(), 9);
        assert!(!ran.load(Ordering::SeqCst), "a dropped bulk job ran");
        executor.shutdown();
        executor.blocking_join();
    });
}

/// A shutdown lets queued bulk jobs run; a deadline passed resolves the running one
/// and the queued ones with a shutdown error, and the queued ones never run.
#[test]
fn shutdown_drains_queued_bulk_jobs_and_a_deadline_resolves_them() {
    within(30, || {
        let executor = bulk_pool("bulk-drain", 2, 1);
        let (first, release) = holding(&executor);
        let queued: Vec<_> = (0..3)
            .map(|i| executor.spawn_blocking_bulk(move || i))
            .collect();
        executor.shutdown();
        release.send(()).unwrap();
        first.join().unwrap();
        let results: Vec<_> = queued.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(results, [0, 1, 2]);
        executor.blocking_join();

        let executor = bulk_pool("bulk-abort", 2, 1);
        let (first, release) = holding(&executor);
        let ran = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let ran = Arc::clone(&ran);
                executor.spawn_blocking_bulk(move || ran.fetch_add(1, Ordering::SeqCst))
            })
            .collect();
        assert!(!executor.blocking_shutdown_timeout(Duration::from_millis(10)));
        assert!(first.join().unwrap_err().is_shutdown());
        for handle in queued {
            assert!(handle.join().unwrap_err().is_shutdown());
        }
        release.send(()).unwrap();
        executor.blocking_join();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "a queued bulk job ran after the abort"
        );
    });
}

/// On one of the pool's blocking threads a bulk job runs at once, on that thread
/// (as `spawn_blocking` does there), even with the only bulk thread busy; on an
/// executor over a runtime it is a blocking job of that runtime.
#[test]
fn a_bulk_job_from_a_blocking_thread_runs_inline_and_other_modes_run_it() {
    within(30, || {
        let executor = bulk_pool("bulk-inline", 2, 1);
        let (first, release) = holding(&executor);
        let inner = executor.clone();
        let (outer, inline) = executor
            .spawn_blocking(move || {
                let inline = inner.spawn_blocking_bulk(thread_name).join().unwrap();
                (thread_name(), inline)
            })
            .join()
            .unwrap();
        assert_eq!(outer, inline);
        release.send(()).unwrap();
        first.join().unwrap();
        executor.shutdown();
        executor.blocking_join();

        let rt = caller_runtime();
        let on_runtime = Executor::from_handle(rt.handle().clone());
        let got = rt.block_on(on_runtime.spawn_blocking_bulk(|| 3)).unwrap();
        assert_eq!(got, 3);
    });
}
