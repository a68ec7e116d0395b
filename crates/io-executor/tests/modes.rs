//! One `Executor` type over a dedicated pool, the global pool, the caller's runtime,
//! or a custom executor.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{caller_runtime, thread_name, within};
use io_executor::{BlockingFn, BoxFuture, Executor, Spawn};

#[test]
fn global_pool_is_lazy_shared_and_never_shut_down() {
    within(30, || {
        let global = Executor::global();
        assert_eq!(global.name(), "io-global");
        assert!(global.num_workers() >= 1);
        let name = futures::executor::block_on(global.spawn(async { thread_name() })).unwrap();
        assert!(name.starts_with("io-global-worker-"), "{name}");
        let name = global.spawn_blocking(thread_name).join().unwrap();
        assert!(name.starts_with("io-global-blocking-"), "{name}");
        // Shutdown is ignored: everyone shares it.
        global.shutdown();
        global.blocking_join();
        assert!(!global.is_shutdown());
        assert_eq!(Executor::global().spawn(async { 1 }).join().unwrap(), 1);
        assert!(format!("{global:?}").contains("\"global\""), "{global:?}");
    });
}

#[test]
fn caller_runtime_mode_uses_that_runtime() {
    within(30, || {
        assert!(Executor::current().is_err(), "no runtime here");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("callers-rt")
            .enable_all()
            .build()
            .unwrap();
        let executor = rt.block_on(async { Executor::current().unwrap() });
        assert_eq!(executor.num_workers(), 0);
        let on = executor.spawn(async { thread_name() }).join().unwrap();
        assert_eq!(on, "callers-rt");
        let blocking = executor.spawn_blocking(thread_name).join().unwrap();
        assert_eq!(
            blocking, "callers-rt",
            "tokio names blocking threads like workers"
        );
        // The same through an explicit handle.
        let executor = Executor::from_handle(rt.handle().clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let pending = executor.spawn(async move { rx.await.is_ok() });
        executor.shutdown();
        assert!(executor.spawn(async {}).join().unwrap_err().is_shutdown());
        // join waits for accepted jobs.
        let joiner = {
            let executor = executor.clone();
            std::thread::spawn(move || executor.blocking_join())
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!joiner.is_finished(), "join must wait for the accepted job");
        tx.send(()).unwrap();
        joiner.join().unwrap();
        assert!(pending.join().unwrap());
    });
}

#[derive(Debug, Default)]
struct Counting {
    spawned: AtomicUsize,
    blocking: AtomicUsize,
    rt: std::sync::OnceLock<tokio::runtime::Runtime>,
}

#[derive(Debug)]
struct CountingSpawner(Arc<Counting>);

impl Spawn for CountingSpawner {
    fn spawn(&self, future: BoxFuture) {
        self.0.spawned.fetch_add(1, Ordering::SeqCst);
        let rt = self.0.rt.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .unwrap()
        });
        rt.spawn(future);
    }

    fn spawn_blocking(&self, job: BlockingFn) {
        self.0.blocking.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(job);
    }
}

#[test]
fn custom_mode_hands_jobs_to_the_users_executor() {
    within(30, || {
        let counts = Arc::new(Counting::default());
        let executor = Executor::custom(CountingSpawner(Arc::clone(&counts)));
        assert_eq!(executor.spawn(async { 2 }).join().unwrap(), 2);
        assert_eq!(executor.spawn_blocking(|| 3).join().unwrap(), 3);
        assert!(
            executor
                .spawn(async { panic!("in custom") })
                .join()
                .unwrap_err()
                .is_panic()
        );
        assert_eq!(counts.spawned.load(Ordering::SeqCst), 2);
        assert_eq!(counts.blocking.load(Ordering::SeqCst), 1);
    });
}

/// A custom executor that runs each job on the thread that submits it, and jobs
/// that shut the executor down: neither the job nor the shutdown waits for the
/// other (the submission does not hold the executor's lock while the job runs).
#[test]
fn a_custom_executor_that_runs_jobs_inline_can_be_shut_down_by_one() {
    #[derive(Debug)]
    struct Inline;
    impl Spawn for Inline {
        fn spawn(&self, future: BoxFuture) {
            futures::executor::block_on(future);
        }
        fn spawn_blocking(&self, job: BlockingFn) {
            job();
        }
    }
    within(30, || {
        let executor = Executor::custom(Inline);
        let inner = executor.clone();
        let handle = executor.spawn_blocking(move || {
            inner.shutdown();
            5
        });
        assert_eq!(handle.join().unwrap(), 5);
        assert!(executor.is_shutdown());
        let executor = Executor::custom(Inline);
        let inner = executor.clone();
        let handle = executor.spawn(async move {
            inner.shutdown();
            6
        });
        assert_eq!(handle.join().unwrap(), 6);
        assert!(
            executor
                .spawn(async { 7 })
                .join()
                .unwrap_err()
                .is_shutdown()
        );
    });
}

/// A runtime that has shut down drops what is spawned on it at once, on the
/// spawning thread; a job whose drop shuts the executor down (or spawns on it)
/// must not find the executor's intake still held by that spawn.
#[test]
fn caller_runtime_mode_on_a_shut_down_runtime_lets_a_dropped_job_shut_down() {
    struct OnDrop<F: FnMut()>(F);
    impl<F: FnMut()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    within(30, || {
        // Current-thread: its tasks are closed when it is shut down, so a later
        // spawn drops the job on the spawning thread every time (a multi-thread
        // runtime may still take it, and drop it later on a worker).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        for blocking in [false, true] {
            let executor = Executor::from_handle(handle.clone());
            let (inner, again) = (executor.clone(), executor.clone());
            let guard = OnDrop(move || {
                drop(again.spawn(async {}));
                inner.shutdown();
            });
            let job = if blocking {
                executor.spawn_blocking(move || drop(guard))
            } else {
                executor.spawn(async move { drop(guard) })
            };
            assert!(
                job.join().unwrap_err().is_shutdown(),
                "blocking: {blocking}"
            );
            assert!(executor.is_shutdown(), "blocking: {blocking}");
        }
    });
}

/// A custom executor that drops jobs without running them: handles resolve to an
/// error instead of hanging.
#[test]
fn custom_executor_that_drops_jobs_resolves_handles() {
    #[derive(Debug)]
    struct Dropper;
    impl Spawn for Dropper {
        fn spawn(&self, future: BoxFuture) {
            drop(future);
        }
        fn spawn_blocking(&self, job: BlockingFn) {
            drop(job);
        }
    }
    within(30, || {
        let executor = Executor::custom(Dropper);
        common::assert_refuses_both_lanes(&executor);
    });
}

#[test]
fn caller_runtime_mode_from_inside_a_current_thread_runtime() {
    within(30, || {
        let rt = caller_runtime();
        let value = rt.block_on(async {
            let executor = Executor::current().unwrap();
            executor.spawn(async { 11 }).await.unwrap()
        });
        assert_eq!(value, 11);
    });
}

/// In the modes without threads, `join` waits for the last accepted job, and returns
/// only once that job's handle is resolved too: a caller that joined finds every
/// handle finished. The jobs are run by hand, on this thread, and `join` is polled
/// with a waker that looks at the handles at the moment it is woken (inside the
/// last job's end), whichever kind of job ends last.
#[test]
fn a_threadless_join_is_woken_only_once_every_handle_is_resolved() {
    #[derive(Default)]
    struct Held {
        futures: std::sync::Mutex<Vec<BoxFuture>>,
        blocking: std::sync::Mutex<Vec<BlockingFn>>,
    }
    struct Holding(Arc<Held>);
    impl Spawn for Holding {
        fn spawn(&self, future: BoxFuture) {
            self.0.futures.lock().unwrap().push(future);
        }
        fn spawn_blocking(&self, job: BlockingFn) {
            self.0.blocking.lock().unwrap().push(job);
        }
    }
    /// On its wake-up, records whether both handles were finished.
    struct Looking {
        handles: (io_executor::JoinHandle<u8>, io_executor::JoinHandle<u8>),
        seen: std::sync::Mutex<Vec<bool>>,
    }
    impl std::task::Wake for Looking {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let finished = self.handles.0.is_finished() && self.handles.1.is_finished();
            self.seen.lock().unwrap().push(finished);
        }
    }
    within(30, || {
        for async_last in [true, false] {
            let held = Arc::new(Held::default());
            let executor = Executor::custom(Holding(Arc::clone(&held)));
            let looking = Arc::new(Looking {
                handles: (executor.spawn(async { 1 }), executor.spawn_blocking(|| 2)),
                seen: std::sync::Mutex::new(Vec::new()),
            });
            let waker = std::task::Waker::from(Arc::clone(&looking));
            let mut cx = std::task::Context::from_waker(&waker);
            let mut join = Box::pin(executor.join());
            assert!(join.as_mut().poll(&mut cx).is_pending(), "two jobs to go");
            let future = held.futures.lock().unwrap().pop().unwrap();
            let blocking = held.blocking.lock().unwrap().pop().unwrap();
            let run_future = || {
                let mut noop = std::task::Context::from_waker(std::task::Waker::noop());
                let mut future = future;
                assert!(future.as_mut().poll(&mut noop).is_ready());
            };
            if async_last {
                blocking();
                run_future();
            } else {
                run_future();
                blocking();
            }
            assert!(join.as_mut().poll(&mut cx).is_ready());
            assert_eq!(
                *looking.seen.lock().unwrap(),
                [true],
                "join woken once, with both handles finished (async job last: {async_last})"
            );
        }
    });
}

/// Inside a job, the current executor is the pool itself: work handed to it from
/// elsewhere, once the job is over and its worker idle, still runs.
#[test]
fn the_current_executor_inside_a_job_is_its_pool() {
    common::within(30, || {
        let io = common::pool("cur-pool", 1, 1);
        let from_worker = io
            .spawn(async { Executor::current().unwrap() })
            .join()
            .unwrap();
        let from_blocking = io
            .spawn_blocking(|| Executor::current().unwrap())
            .join()
            .unwrap();
        // In a closure a job gives to tokio's `spawn_blocking` (on a thread the
        // worker's runtime starts, where that runtime is current): the pool too.
        let from_tokio_blocking = io
            .spawn(async {
                tokio::task::spawn_blocking(|| Executor::current().unwrap())
                    .await
                    .unwrap()
            })
            .join()
            .unwrap();
        assert_eq!(from_worker.id(), io.id());
        assert_eq!(from_blocking.id(), io.id());
        assert_eq!(from_tokio_blocking.id(), io.id());
        // The worker has nothing left to run, and sleeps: a job from this thread
        // wakes it.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(from_worker.spawn(async { 1 }).join().unwrap(), 1);
        assert_eq!(from_blocking.spawn(async { 2 }).join().unwrap(), 2);
        assert_eq!(from_tokio_blocking.spawn(async { 4 }).join().unwrap(), 4);
        drop(from_tokio_blocking);
        // Borrowed: dropping one does not shut the pool down, and one kept does
        // not keep it running once the pool's own handles are gone.
        drop(from_blocking);
        assert!(!io.is_shutdown(), "the pool's handles are its own");
        drop(io);
        assert!(from_worker.is_shutdown());
        let refused = from_worker.spawn(async { 3 }).join().unwrap_err();
        assert!(refused.is_shutdown(), "{refused}");
        from_worker.blocking_join();
    });
}

/// A caller's runtime that cannot start a thread for a blocking job and has none
/// to run it (the process out of memory for a stack; here its address space
/// limited, in a child process) makes tokio panic. The job is refused as a custom
/// executor's is: its handle resolves to a shutdown error, the closure never
/// runs, and nothing panics into the caller.
#[test]
fn a_blocking_job_its_runtime_has_no_thread_for_is_refused() {
    // A handle that never resolves would leave the child waiting: a hang guard.
    let out = within(60, || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "thread_starved_child",
                "--nocapture",
            ])
            .env("DIO_THREAD_STARVED_CHILD", "1")
            // A backtrace's symbols would not fit in the child's address space.
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("the starved job was refused"),
        "{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "run by a_blocking_job_its_runtime_has_no_thread_for_is_refused in a child process"]
fn thread_starved_child() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    if std::env::var_os("DIO_THREAD_STARVED_CHILD").is_none() {
        return;
    }
    // A stack no address space left will hold.
    const STACK: usize = 256 << 20;
    let rt = tokio::runtime::Builder::new_current_thread()
        .thread_stack_size(STACK)
        .build()
        .unwrap();
    let executor = Executor::from_handle(rt.handle().clone());
    let ran = Arc::new(AtomicUsize::new(0));
    let flag = Arc::clone(&ran);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let size_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize in /proc/self/status");
    let before = getrlimit(Resource::As);
    let limit = size_kib * 1024 + (STACK / 4) as u64;
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(limit),
            maximum: before.maximum,
        },
    )
    .unwrap();
    let handle = executor.spawn_blocking(move || flag.fetch_add(1, Ordering::SeqCst));
    let got = rt.block_on(handle);
    setrlimit(Resource::As, before).unwrap();
    let err = got.expect_err("the job cannot have run");
    assert!(err.is_shutdown(), "{err:?}");
    drop(rt);
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the closure never runs");
    println!("the starved job was refused");
}
