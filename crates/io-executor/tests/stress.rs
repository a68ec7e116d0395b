//! 10,000 concurrent jobs from 8 submitting threads, with random aborts: every job is
//! accounted for exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{pool, within};
use rand::Rng;

#[test]
fn ten_thousand_jobs_with_random_aborts_are_counted_exactly() {
    within(120, || {
        let executor = pool("stress", 2, 4);
        let ok = Arc::new(AtomicU64::new(0));
        let cancelled = Arc::new(AtomicU64::new(0));
        let submitters: Vec<_> = (0..8)
            .map(|t| {
                let executor = executor.clone();
                let ok = Arc::clone(&ok);
                let cancelled = Arc::clone(&cancelled);
                std::thread::spawn(move || {
                    let mut rng = rand::rng();
                    let mut handles = Vec::with_capacity(1_250);
                    for i in 0..1_250_u64 {
                        let handle = if (t + i) % 2 == 0 {
                            executor.spawn(async move {
                                tokio::task::yield_now().await;
                                i
                            })
                        } else {
                            executor.spawn_blocking(move || {
                                std::thread::sleep(Duration::from_micros(i % 3));
                                i
                            })
                        };
                        if rng.random_bool(0.3) {
                            handle.abort();
                        }
                        handles.push((i, handle));
                    }
                    for (i, handle) in handles {
                        match futures::executor::block_on(handle) {
                            Ok(v) => {
                                assert_eq!(v, i);
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                assert!(e.is_cancelled(), "{e:?}");
                                cancelled.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
        let (ok, cancelled) = (ok.load(Ordering::SeqCst), cancelled.load(Ordering::SeqCst));
        assert_eq!(ok + cancelled, 10_000);
        assert!(cancelled > 0, "some aborts must land before their job ends");
        let m = executor.metrics();
        assert_eq!(m.spawned, 10_000);
        assert_eq!(m.completed, ok);
        assert_eq!(m.cancelled, cancelled);
        assert_eq!((m.panicked, m.rejected, m.queued, m.running), (0, 0, 0, 0));
        assert_eq!(m.worker_load, vec![0, 0]);
        assert_eq!(m.blocking_queue_depth, 0);
    });
}

#[test]
fn blocking_jobs_handed_over_one_at_a_time_to_sleeping_threads_all_run() {
    // One submitter; every job is submitted when the previous one has finished, so
    // most find every blocking thread asleep (or about to sleep) and need a wake-up:
    // with nobody else submitting, a wake-up lost between a thread's last look at
    // the queue and its sleep would hang this.
    // Every other job comes after a pause longer than a blocking thread spins
    // before it sleeps, the others while one still spins (the next submitter counts
    // on it instead of waking anyone).
    within(120, || {
        let executor = pool("handover", 1, 4);
        for i in 0..6_000_u64 {
            if i % 2 == 1 {
                std::thread::sleep(Duration::from_micros(300));
            }
            let got = executor.spawn_blocking(move || i * 3).join();
            assert_eq!(got.unwrap(), i * 3);
        }
        let metrics = executor.metrics();
        assert_eq!((metrics.spawned, metrics.completed), (6_000, 6_000));
        executor.shutdown();
        futures::executor::block_on(executor.join());
    });
}

#[test]
fn jobs_queued_together_after_a_job_each_get_a_thread() {
    // Right after a job, one blocking thread spins instead of sleeping, and the
    // next submitter counts on it instead of waking a sleeping thread. Jobs that
    // can only finish together (a barrier) must still get a thread each: were two
    // submitters to count on the one spinning thread, this would hang.
    within(120, || {
        let executor = pool("burst", 1, 4);
        for round in 0..3_000_usize {
            executor.spawn_blocking(|| ()).join().unwrap();
            let together = 2 + round % 3;
            let barrier = Arc::new(std::sync::Barrier::new(together));
            let handles: Vec<_> = (0..together)
                .map(|_| {
                    let barrier = Arc::clone(&barrier);
                    executor.spawn_blocking(move || {
                        barrier.wait();
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
        }
        executor.shutdown();
        futures::executor::block_on(executor.join());
    });
}
