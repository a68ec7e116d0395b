//! Explicit shutdown: stop intake, drain, wait; or cancel after a deadline.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use common::{assert_refuses_both_lanes, caller_runtime, counted_pool, pool, within};

#[test]
fn spawning_after_shutdown_is_an_error_value() {
    let executor = pool("sd-after", 1, 1);
    assert!(!executor.is_shutdown());
    executor.shutdown();
    assert!(executor.is_shutdown());
    let a = executor.spawn(async { 1 }).join().unwrap_err();
    let b = executor.spawn_blocking(|| 1).join().unwrap_err();
    let c = executor.spawn_on(0, async { 1 }).join().unwrap_err();
    for err in [a, b, c] {
        assert!(err.is_shutdown(), "{err:?}");
        assert!(!err.is_cancelled() && !err.had_started());
    }
    let m = executor.metrics();
    assert_eq!((m.rejected, m.spawned), (3, 0));
}

#[test]
fn a_clones_shutdown_stops_every_clone() {
    let executor = pool("sd-clone", 1, 1);
    let clone = executor.clone();
    clone.shutdown();
    assert!(executor.is_shutdown());
    assert_refuses_both_lanes(&executor);
    drop(clone);
    assert_refuses_both_lanes(&executor);
}

#[test]
fn join_twice_and_from_clones() {
    within(30, || {
        let (executor, stopped) = counted_pool("sd-join", 2, 2);
        let clone = executor.clone();
        let rt = caller_runtime();
        rt.block_on(executor.join());
        assert_eq!(stopped.load(Ordering::SeqCst), 4, "every thread exited");
        rt.block_on(executor.join());
        rt.block_on(clone.join());
        clone.blocking_join();
        executor.blocking_join();
        futures::executor::block_on(clone.join());
    });
}

/// 1,000 accepted jobs, on both lanes, all complete after `shutdown()`.
#[test]
fn shutdown_drains_accepted_jobs() {
    within(60, || {
        let executor = pool("sd-drain", 2, 4);
        let done = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..1_000 {
            let done = Arc::clone(&done);
            if i % 2 == 0 {
                handles.push(executor.spawn(async move {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }));
            } else {
                handles.push(executor.spawn_blocking(move || {
                    std::thread::sleep(Duration::from_micros(200));
                    done.fetch_add(1, Ordering::SeqCst);
                }));
            }
        }
        executor.shutdown();
        executor.blocking_join();
        assert_eq!(done.load(Ordering::SeqCst), 1_000);
        for h in handles {
            h.join().unwrap();
        }
        let m = executor.metrics();
        assert_eq!(
            (m.spawned, m.completed, m.queued, m.running),
            (1_000, 1_000, 0, 0)
        );
    });
}

/// Jobs that never finish are cancelled at the deadline: their handles resolve to a
/// shutdown error and `shutdown_timeout` says the drain was not clean. The error
/// of a job cut off while it ran says it had started (what it began may still
/// take effect); that of a job still queued says it had not.
#[test]
fn shutdown_timeout_cancels_jobs_that_never_finish() {
    within(30, || {
        let (executor, stopped) = counted_pool("sd-timeout", 1, 1);
        let (polled_tx, polled_rx) = mpsc::channel();
        let forever = executor.spawn(async move {
            polled_tx.send(()).unwrap();
            std::future::pending::<()>().await
        });
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let stuck = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        let queued = executor.spawn_blocking(|| "never");
        started_rx.recv().unwrap();
        polled_rx.recv().unwrap();

        let rt = caller_runtime();
        let clean = rt.block_on(executor.shutdown_timeout(Duration::from_millis(100)));
        assert!(!clean);
        let forever = forever.join().unwrap_err();
        assert!(
            forever.is_shutdown() && forever.had_started(),
            "{forever:?}"
        );
        let stuck = stuck.join().unwrap_err();
        assert!(
            stuck.is_shutdown() && stuck.had_started(),
            "resolved while still running: {stuck:?}"
        );
        assert!(
            stuck.to_string().contains("may still take effect"),
            "{stuck}"
        );
        let queued = queued.join().unwrap_err();
        assert!(queued.is_shutdown() && !queued.had_started(), "{queued:?}");

        // The stuck closure finishes later; then every thread exits.
        release_tx.send(()).unwrap();
        executor.blocking_join();
        assert_eq!(stopped.load(Ordering::SeqCst), 2);
        let m = executor.metrics();
        assert_eq!((m.spawned, m.cancelled, m.completed), (3, 3, 0));
    });
}

#[test]
fn shutdown_timeout_reports_a_clean_drain() {
    within(30, || {
        let executor = pool("sd-clean", 1, 1);
        let job = executor.spawn(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            1
        });
        assert!(executor.blocking_shutdown_timeout(Duration::from_secs(10)));
        assert_eq!(job.join().unwrap(), 1);
        // From a non-tokio thread, the async form needs no timer of the caller's.
        let other = pool("sd-clean-2", 1, 1);
        assert!(futures::executor::block_on(
            other.shutdown_timeout(Duration::from_secs(10))
        ));
    });
}

/// A pool with nothing to run has drained, however short the timeout: it says so,
/// and cancels nothing (its threads may still be on their way out).
#[test]
fn shutdown_timeout_of_an_idle_pool_reports_a_clean_drain_at_once() {
    within(30, || {
        for blocking in [true, false] {
            let executor = pool("sd-idle", 2, 2);
            let clean = if blocking {
                executor.blocking_shutdown_timeout(Duration::ZERO)
            } else {
                caller_runtime().block_on(executor.shutdown_timeout(Duration::ZERO))
            };
            assert!(clean, "blocking: {blocking}");
            executor.blocking_join();
        }
    });
}

/// A timeout too long to add to the clock (`Duration::MAX`, "no limit") waits for
/// the drain, in both forms, rather than panicking on the deadline's arithmetic.
#[test]
fn shutdown_timeout_without_a_limit_waits_for_the_drain() {
    within(30, || {
        for blocking in [true, false] {
            let executor = pool("sd-max", 1, 1);
            let job = executor.spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(20));
                1
            });
            let clean = if blocking {
                executor.blocking_shutdown_timeout(Duration::MAX)
            } else {
                caller_runtime().block_on(executor.shutdown_timeout(Duration::MAX))
            };
            assert!(clean, "blocking: {blocking}");
            assert_eq!(job.join().unwrap(), 1);
        }
    });
}

#[test]
fn queue_bound_refuses_jobs_past_it() {
    within(30, || {
        let executor = common::builder("sd-bound", 1, 1)
            .max_queued_jobs(std::num::NonZeroUsize::new(1).unwrap())
            .build()
            .unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let running = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        });
        started_rx.recv().unwrap();
        let queued = executor.spawn_blocking(|| 2);
        let refused = executor.spawn_blocking(|| 3).join().unwrap_err();
        assert!(refused.is_queue_full());
        assert_eq!(
            refused.to_string(),
            "executor queue is full (1 jobs queued); the job was not accepted"
        );
        let m = executor.metrics();
        assert_eq!(
            (m.running, m.queued, m.blocking_queue_depth, m.rejected),
            (1, 1, 1, 1)
        );
        release_tx.send(()).unwrap();
        running.join().unwrap();
        assert_eq!(queued.join().unwrap(), 2);
    });
}

/// A blocking job's own `spawn_blocking` runs inline, on its thread, before the
/// call returns: it never waits in the queue, so a full queue does not refuse it.
#[test]
fn a_full_queue_does_not_refuse_a_blocking_jobs_inline_spawn() {
    within(30, || {
        let executor = common::builder("sd-inline", 1, 1)
            .max_queued_jobs(std::num::NonZeroUsize::new(1).unwrap())
            .build()
            .unwrap();
        let (queued_tx, queued_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let inner = executor.clone();
        let running = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            queued_rx.recv().unwrap();
            inner.spawn_blocking(|| 7).join()
        });
        started_rx.recv().unwrap();
        let queued = executor.spawn_blocking(|| 2);
        assert!(
            executor
                .spawn_blocking(|| 3)
                .join()
                .unwrap_err()
                .is_queue_full()
        );
        queued_tx.send(()).unwrap();
        assert_eq!(running.join().unwrap().unwrap(), 7);
        assert_eq!(queued.join().unwrap(), 2);
    });
}

/// A clean-up that a job starts as the pool shuts down (an abort its drop sends)
/// is work the shutdown waits for, where `tokio::spawn` on the worker would be cut
/// off when the worker drops its runtime; past a deadline it is cancelled as any
/// job is.
#[test]
fn a_cleanup_spawned_during_a_shutdown_runs_to_its_end() {
    within(30, || {
        let executor = pool("sd-cleanup", 1, 1);
        let done = Arc::new(AtomicUsize::new(0));
        let (open, gate) = mpsc::channel::<()>();
        let job = {
            let done = Arc::clone(&done);
            executor.spawn(async move {
                // Held until the shutdown has begun.
                gate.recv().unwrap();
                let cleanup = async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                };
                io_executor::spawn_cleanup(cleanup)
                    .map_err(|_| "nowhere to run it")
                    .unwrap()
                    .detach();
            })
        };
        executor.shutdown();
        open.send(()).unwrap();
        job.join().unwrap();
        executor.blocking_join();
        assert_eq!(done.load(Ordering::SeqCst), 1);
        let m = executor.metrics();
        assert_eq!((m.spawned, m.completed), (2, 2));

        // Off the pool and outside any runtime there is nowhere to run it.
        assert!(io_executor::spawn_cleanup(async {}).is_err());
    });
}

/// A clean-up started in a closure a job gave to tokio's `spawn_blocking`, after
/// the job ended (its worker idle, not driving its runtime), runs on the pool.
#[test]
fn a_cleanup_started_from_a_jobs_tokio_blocking_closure_runs_on_the_pool() {
    within(30, || {
        let executor = pool("sd-tokio-blocking", 1, 1);
        let (job_ended, wait_for_job) = mpsc::channel::<()>();
        let (give, handle) = mpsc::channel();
        executor
            .spawn(async move {
                // Not awaited: the closure outlives the job.
                drop(tokio::task::spawn_blocking(move || {
                    wait_for_job.recv().unwrap();
                    let cleanup = io_executor::spawn_cleanup(async { 7 })
                        .map_err(|_| "nowhere to run it")
                        .unwrap();
                    give.send(cleanup).unwrap();
                }));
            })
            .join()
            .unwrap();
        job_ended.send(()).unwrap();
        let cleanup = handle.recv().unwrap();
        assert_eq!(cleanup.join().unwrap(), 7);
        executor.shutdown();
        executor.blocking_join();
    });
}

/// The same clean-up is not refused by a full queue: the queue's bound refuses no
/// clean-up, wherever it is started.
#[test]
fn a_cleanup_from_a_jobs_tokio_blocking_closure_is_not_refused_by_a_full_queue() {
    within(30, || {
        let executor = common::builder("sd-cleanup-bound", 1, 1)
            .max_queued_jobs(std::num::NonZeroUsize::new(1).unwrap())
            .build()
            .unwrap();
        let (go, wait) = mpsc::channel::<()>();
        let (give, handle) = mpsc::channel();
        executor
            .spawn(async move {
                drop(tokio::task::spawn_blocking(move || {
                    wait.recv().unwrap();
                    let cleanup = io_executor::spawn_cleanup(async { 7 });
                    give.send(cleanup.map_err(|_| "given back")).unwrap();
                }));
            })
            .join()
            .unwrap();
        // The pool's blocking thread busy and a job queued behind it: full.
        let (release, held) = mpsc::channel::<()>();
        let (started, has_started) = mpsc::channel();
        let running = executor.spawn_blocking(move || {
            started.send(()).unwrap();
            held.recv().unwrap();
        });
        has_started.recv().unwrap();
        let queued = executor.spawn_blocking(|| 2);
        assert!(
            executor
                .spawn(async { 3 })
                .join()
                .unwrap_err()
                .is_queue_full()
        );
        go.send(()).unwrap();
        let cleanup = handle
            .recv()
            .unwrap()
            .expect("a clean-up is not refused by the queue's bound");
        assert_eq!(cleanup.join().unwrap(), 7);
        release.send(()).unwrap();
        running.join().unwrap();
        assert_eq!(queued.join().unwrap(), 2);
        executor.shutdown();
        executor.blocking_join();
    });
}

/// A closure a job gave to tokio's `spawn_blocking` and that does not return
/// (a DNS lookup that hangs) does not hold `join` up past a shutdown deadline.
#[test]
fn a_deadline_bounds_join_past_a_jobs_tokio_blocking_closure() {
    within(30, || {
        let executor = pool("sd-tokio-stuck", 1, 1);
        let (release, stuck) = mpsc::channel::<()>();
        let (started, has_started) = mpsc::channel();
        let job = executor.spawn(async move {
            tokio::task::spawn_blocking(move || {
                started.send(()).unwrap();
                // Until the test ends (an error once it has dropped `release`).
                let _ = stuck.recv();
            })
            .await
        });
        has_started.recv().unwrap();
        assert!(!executor.blocking_shutdown_timeout(Duration::from_millis(100)));
        executor.blocking_join();
        assert!(job.join().unwrap_err().is_shutdown());
        drop(release);
    });
}

/// `blocking_join` in a closure a job gave to tokio's `spawn_blocking` would wait
/// for the worker, which waits for that closure: refused, as on the pool's own
/// threads.
#[test]
fn joining_from_a_jobs_tokio_blocking_closure_is_refused() {
    within(30, || {
        let executor = pool("sd-tokio-join", 1, 1);
        let inner = executor.clone();
        let refused = executor
            .spawn(async move {
                tokio::task::spawn_blocking(move || inner.blocking_join())
                    .await
                    .unwrap_err()
            })
            .join()
            .unwrap();
        let message = refused.into_panic();
        let message = message
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        assert!(message.contains("belongs to executor"), "{message}");
        assert!(
            !executor.is_shutdown(),
            "the refused call shut nothing down"
        );
        executor.shutdown();
        executor.blocking_join();
    });
}

/// Records, when dropped, whether a clean-up started then was given back.
struct GivenBackOnDrop(Arc<std::sync::Mutex<Option<bool>>>);

impl Drop for GivenBackOnDrop {
    fn drop(&mut self) {
        let given_back = io_executor::spawn_cleanup(async {}).is_err();
        *self.0.lock().unwrap() = Some(given_back);
    }
}

/// Off a pool, on a tokio runtime that is being dropped: the runtime would drop
/// the clean-up unrun, so it is given back, where it was taken and lost.
#[test]
fn a_cleanup_started_as_a_plain_runtime_drops_is_given_back() {
    within(30, || {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let on_drop = GivenBackOnDrop(Arc::clone(&seen));
        drop(runtime.spawn(async move {
            let _on_drop = on_drop;
            std::future::pending::<()>().await;
        }));
        // Polled once, so the task holds its guard.
        runtime.block_on(tokio::task::yield_now());
        drop(runtime);
        assert_eq!(*seen.lock().unwrap(), Some(true));
        // While the runtime runs, the clean-up is spawned there and runs.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let ran = runtime.block_on(async {
            match io_executor::spawn_cleanup(async { 7 }) {
                Ok(handle) => handle.await.ok(),
                Err(_) => None,
            }
        });
        assert_eq!(ran, Some(7));
    });
}

/// Past a shutdown deadline the worker drops its runtime, and with it the jobs
/// still running: a clean-up their drop starts has nowhere to run, and is given
/// back (for the caller to say what is left undone), where it was handed to the
/// runtime being dropped and lost without a word.
#[test]
fn a_cleanup_started_past_a_deadline_is_given_back() {
    within(30, || {
        let executor = pool("sd-cleanup-late", 1, 1);
        let seen = Arc::new(std::sync::Mutex::new(None));
        let (started, running) = mpsc::channel();
        let job = {
            let on_drop = GivenBackOnDrop(Arc::clone(&seen));
            executor.spawn(async move {
                let _on_drop = on_drop;
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            })
        };
        running.recv().unwrap();
        let rejected = executor.metrics().rejected;
        assert!(!executor.blocking_shutdown_timeout(Duration::from_millis(10)));
        assert!(job.join().unwrap_err().is_shutdown());
        executor.blocking_join();
        assert_eq!(*seen.lock().unwrap(), Some(true));
        // Refused, as every job is that a pool does not accept.
        assert_eq!(executor.metrics().rejected, rejected + 1);
    });
}

/// A `join` given up on (a monitor that waits with a timeout, again and again,
/// while a job keeps the pool from ending) leaves nothing behind: its waker is let
/// go with it, where every one was kept until the pool ended.
#[test]
fn a_join_given_up_on_lets_its_waker_go() {
    struct Counted;
    impl futures::task::ArcWake for Counted {
        fn wake_by_ref(_: &Arc<Self>) {}
    }
    within(30, || {
        let executor = pool("sd-join-gone", 1, 1);
        let (release, gate) = mpsc::channel::<()>();
        let stuck = executor.spawn_blocking(move || gate.recv().ok());
        executor.shutdown();
        let wakers: Vec<Arc<Counted>> = (0..100).map(|_| Arc::new(Counted)).collect();
        for counted in &wakers {
            let waker = futures::task::waker(Arc::clone(counted));
            let mut join = std::pin::pin!(executor.join());
            let polled = join
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker));
            assert!(polled.is_pending(), "a job still runs");
        }
        for counted in &wakers {
            assert_eq!(Arc::strong_count(counted), 1, "a waker kept");
        }
        release.send(()).unwrap();
        stuck.join().unwrap();
        executor.blocking_join();
    });
}

/// A job running when the pool is shut down goes on submitting its own work (an
/// async step, a blocking read, a bulk copy; from a blocking job, an inline one and
/// an async one), and all of it runs: a job is not cut in half by a shutdown that
/// came between its steps. The drain waits for that work; anything submitted from
/// outside the pool's jobs is refused.
#[test]
fn a_job_running_at_shutdown_may_submit_its_own_work() {
    within(30, || {
        let (executor, stopped) = counted_pool("sd-within", 2, 2);
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let inner = executor.clone();
        let job = executor.spawn(async move {
            let _ = wait.await;
            assert!(inner.accepts_jobs(), "inside a job after the shutdown");
            let step = inner.spawn(async { 1 }).await.unwrap();
            let pinned = inner.spawn_on(1, async { 2 }).await.unwrap();
            let read = inner.spawn_blocking(|| 3).await.unwrap();
            let copy = inner.spawn_blocking_bulk(|| 4).await.unwrap();
            let on_blocking = inner.clone();
            let (inline, spawned) = inner
                .spawn_blocking(move || {
                    let inline = on_blocking.spawn_blocking(|| 5).join().unwrap();
                    let spawned = on_blocking.spawn(async { 6 }).join().unwrap();
                    (inline, spawned)
                })
                .await
                .unwrap();
            step + pinned + read + copy + inline + spawned
        });
        executor.shutdown();
        assert!(!executor.accepts_jobs(), "outside the pool's jobs");
        assert_refuses_both_lanes(&executor);
        go.send(()).unwrap();
        executor.blocking_join();
        assert_eq!(job.join().unwrap(), 21);
        assert_eq!(stopped.load(Ordering::SeqCst), 4, "every thread exited");
        let m = executor.metrics();
        assert_eq!((m.spawned, m.completed, m.rejected), (8, 8, 2));
    });
}

/// A task a job spawned with `tokio::spawn` is not a job: after a shutdown, what it
/// submits is refused, as from anywhere outside the pool's jobs.
#[test]
fn a_task_a_job_spawned_is_not_a_job_after_a_shutdown() {
    within(30, || {
        let executor = pool("sd-not-a-job", 1, 1);
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (end, ended) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = mpsc::channel();
        let inner = executor.clone();
        let job = executor.spawn(async move {
            tokio::spawn(async move {
                let _ = wait.await;
                let refused = inner.spawn_blocking(|| ()).await;
                tx.send((inner.accepts_jobs(), refused.map_err(|e| e.is_shutdown())))
                    .unwrap();
            });
            let _ = ended.await;
        });
        executor.shutdown();
        go.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), (false, Err(true)));
        end.send(()).unwrap();
        job.join().unwrap();
        executor.blocking_join();
    });
}

/// Past a shutdown deadline nothing more is accepted, not even from a job that was
/// cut off and runs on.
#[test]
fn a_job_cut_off_by_a_deadline_submits_nothing_more() {
    within(30, || {
        let executor = pool("sd-cut-within", 1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let inner = executor.clone();
        let stuck = executor.spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            let inline = inner.spawn_blocking(|| ()).join();
            let spawned = inner.spawn(async {}).join();
            tx.send((
                inner.accepts_jobs(),
                inline.map_err(|e| e.is_shutdown()),
                spawned.map_err(|e| e.is_shutdown()),
            ))
            .unwrap();
        });
        started_rx.recv().unwrap();
        assert!(!executor.blocking_shutdown_timeout(Duration::from_millis(50)));
        assert!(stuck.join().unwrap_err().had_started());
        release_tx.send(()).unwrap();
        assert_eq!(rx.recv().unwrap(), (false, Err(true), Err(true)));
        executor.blocking_join();
    });
}

/// On an executor over the caller's runtime (no threads of its own), a job's own
/// work after a shutdown is accepted too, and `join` waits for it.
#[test]
fn a_job_on_a_caller_runtime_may_submit_its_own_work_after_a_shutdown() {
    within(30, || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let executor = io_executor::Executor::from_handle(rt.handle().clone());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let done = Arc::new(AtomicUsize::new(0));
        let (inner, seen) = (executor.clone(), Arc::clone(&done));
        let job = executor.spawn(async move {
            let _ = wait.await;
            let read = inner.spawn_blocking(|| 3).await.unwrap();
            inner
                .spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    seen.fetch_add(read, Ordering::SeqCst);
                })
                .detach();
        });
        executor.shutdown();
        assert!(executor.spawn(async {}).join().unwrap_err().is_shutdown());
        go.send(()).unwrap();
        rt.block_on(executor.join());
        assert_eq!(
            done.load(Ordering::SeqCst),
            3,
            "join waited for the job's own work"
        );
        job.join().unwrap();
    });
}

/// A worker whose own jobs are done keeps driving the tasks its jobs left there
/// (with `tokio::spawn`) until the pool's drain ends: a job on another worker that
/// waits for such a task (a shared credential refresh, say) gets its answer, where
/// the worker froze the task and `join` waited for ever.
#[test]
fn a_worker_whose_jobs_are_done_drives_its_tasks_until_the_drain_ends() {
    within(30, || {
        let executor = pool("sd-tasks", 2, 1);
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let (answer, answered) = tokio::sync::oneshot::channel::<u8>();
        let (left, task_left) = mpsc::channel();
        executor
            .spawn_on(0, async move {
                tokio::spawn(async move {
                    let _ = gate.await;
                    let _ = answer.send(7);
                });
                left.send(()).unwrap();
            })
            .join()
            .unwrap();
        task_left.recv().unwrap();
        let waiting = executor.spawn_on(1, answered);
        executor.shutdown();
        open.send(()).unwrap();
        assert_eq!(waiting.join().unwrap(), Ok(7));
        executor.blocking_join();
    });
}

/// Once the drain has ended, a clean-up a task left on a worker starts has nothing
/// to wait for it, and is given back, where it was counted again after the drain
/// (and what it submitted accepted, then dropped).
#[test]
fn a_cleanup_started_after_the_drain_ended_is_given_back() {
    within(30, || {
        let executor = pool("sd-cleanup-drained", 1, 1);
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let (shut, shut_down) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = mpsc::channel();
        let job = executor.spawn(async move {
            tokio::spawn(async move {
                let _ = gate.await;
                let given_back = io_executor::spawn_cleanup(async {}).is_err();
                let _ = tx.send(given_back);
            });
            // Ends after the shutdown (ended before it, it would leave the task
            // an executor still taking work).
            let _ = shut_down.await;
            // The task runs once this job, the pool's last, has ended.
            open.send(()).unwrap();
        });
        executor.shutdown();
        shut.send(()).unwrap();
        job.join().unwrap();
        executor.blocking_join();
        // The task ran before its worker dropped its runtime, or was dropped with
        // it unrun (then there is nothing to see).
        if let Ok(given_back) = rx.recv() {
            assert!(given_back, "a clean-up was accepted after the drain ended");
        }
    });
}

/// Past a shutdown deadline an executor without threads of its own refuses a
/// job's submissions too (its jobs run on a runtime it does not own, and go on).
#[test]
fn a_deadline_on_a_caller_runtime_refuses_what_its_jobs_submit() {
    within(30, || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let executor = io_executor::Executor::from_handle(rt.handle().clone());
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let inner = executor.clone();
        let job = rt.spawn(executor.spawn(async move {
            let _ = wait.await;
            let refused = inner.spawn_blocking(|| ()).await;
            (inner.accepts_jobs(), refused.map_err(|e| e.is_shutdown()))
        }));
        assert!(!executor.blocking_shutdown_timeout(Duration::from_millis(20)));
        go.send(()).unwrap();
        let (accepts, refused) = rt.block_on(job).unwrap().unwrap();
        assert_eq!((accepts, refused), (false, Err(true)));
    });
}

/// Submits a blocking clean-up when dropped, and counts it when it runs.
struct CleanUpOnDrop(io_executor::Executor, Arc<AtomicUsize>);

impl Drop for CleanUpOnDrop {
    fn drop(&mut self) {
        let done = Arc::clone(&self.1);
        self.0
            .spawn_blocking(move || done.fetch_add(1, Ordering::SeqCst))
            .detach();
    }
}

/// A job cancelled after a shutdown is dropped as part of the job: the clean-up its
/// drop submits (closing a file, aborting an upload) is its own work, accepted and
/// run before the drain ends, where it was refused and lost.
#[test]
fn a_job_cancelled_after_a_shutdown_may_submit_its_clean_up() {
    within(30, || {
        let executor = pool("sd-cancel-clean", 1, 1);
        let cleaned = Arc::new(AtomicUsize::new(0));
        let on_drop = CleanUpOnDrop(executor.clone(), Arc::clone(&cleaned));
        let (started, running) = mpsc::channel();
        let job = executor.spawn(async move {
            let _on_drop = on_drop;
            started.send(()).unwrap();
            std::future::pending::<()>().await
        });
        running.recv().unwrap();
        executor.shutdown();
        job.abort();
        executor.blocking_join();
        assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    });
}

/// A job's result that no handle waits for (detached, or its handle dropped while
/// it ran) is dropped as part of the job, as its future is: the clean-up its drop
/// submits after a shutdown is the job's own work, accepted and run before the
/// drain ends, where it was dropped after the job had left the drain and refused.
/// A result its handle took is the caller's to drop.
#[test]
fn a_result_no_handle_waits_for_may_submit_its_clean_up_after_a_shutdown() {
    for blocking in [false, true] {
        for detach in [false, true] {
            within(30, move || {
                let executor = pool("sd-result-clean", 1, 1);
                let cleaned = Arc::new(AtomicUsize::new(0));
                let on_drop = CleanUpOnDrop(executor.clone(), Arc::clone(&cleaned));
                let (started, running) = mpsc::channel();
                let (go, wait) = mpsc::channel::<()>();
                let job = if blocking {
                    executor.spawn_blocking(move || {
                        started.send(()).unwrap();
                        wait.recv().unwrap();
                        on_drop
                    })
                } else {
                    executor.spawn(async move {
                        started.send(()).unwrap();
                        wait.recv().unwrap();
                        on_drop
                    })
                };
                running.recv().unwrap();
                executor.shutdown();
                if detach {
                    job.detach();
                } else {
                    // Dropped while the job runs: it asks the job to stop, which a
                    // job that never looks finishes all the same.
                    drop(job);
                }
                go.send(()).unwrap();
                executor.blocking_join();
                let m = executor.metrics();
                assert_eq!(
                    (cleaned.load(Ordering::SeqCst), m.rejected),
                    (1, 0),
                    "blocking: {blocking}, detached: {detach}"
                );
            });
        }
    }
}
