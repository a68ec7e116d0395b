//! One value per worker thread, created on that thread; jobs can be pinned to a worker.

mod common;

use std::sync::Arc;

use common::{pool, thread_name};

#[test]
fn each_worker_gets_its_own_value_created_on_its_thread() {
    let executor = pool("wl", 3, 1);
    let locals = Arc::new(executor.worker_local(thread_name));
    for round in 0..2 {
        for worker in 0..3 {
            let locals = Arc::clone(&locals);
            let (value, on) = executor
                .spawn_on(worker, async move { (locals.get().clone(), thread_name()) })
                .join()
                .unwrap();
            assert_eq!(value, on, "round {round}: created on the worker it serves");
            assert_eq!(on, format!("wl-worker-{worker}"));
        }
    }
    let mut created: Vec<_> = locals.iter().cloned().collect();
    created.sort();
    assert_eq!(created, ["wl-worker-0", "wl-worker-1", "wl-worker-2"]);
    // Off the workers, one shared fallback.
    let here = locals.get().clone();
    assert_eq!(here, thread_name());
    let l = Arc::clone(&locals);
    let on_blocking = executor
        .spawn_blocking(move || l.get().clone())
        .join()
        .unwrap();
    assert_eq!(on_blocking, here, "blocking threads share the fallback");
}

#[test]
fn pinning_wraps_around_and_is_reported() {
    let executor = pool("pin", 2, 1);
    assert_eq!(executor.num_workers(), 2);
    let ex = executor.clone();
    let on = executor
        .spawn_on(5, async move { ex.current_worker() })
        .join()
        .unwrap();
    assert_eq!(on, Some(1), "5 mod 2");
    assert_eq!(executor.current_worker(), None);
}

#[test]
fn init_runs_once_per_worker() {
    let executor = pool("wl-once", 2, 1);
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let locals = Arc::new(
        executor.worker_local(move || counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst)),
    );
    for i in 0..50 {
        let locals = Arc::clone(&locals);
        executor
            .spawn_on(i, async move { *locals.get() })
            .join()
            .unwrap();
    }
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn try_get_answers_only_on_the_pools_own_workers() {
    let executor = pool("wl-try", 2, 1);
    let other = pool("wl-try-other", 1, 1);
    assert_ne!(executor.id(), other.id());
    assert_eq!(executor.id(), executor.clone().id());
    let locals = Arc::new(executor.worker_local(thread_name));
    assert_eq!(locals.try_get(), None, "caller thread");
    let l = Arc::clone(&locals);
    let on_worker = executor
        .spawn_on(1, async move { l.try_get().cloned() })
        .join()
        .unwrap();
    assert_eq!(on_worker.as_deref(), Some("wl-try-worker-1"));
    let l = Arc::clone(&locals);
    let on_blocking = executor
        .spawn_blocking(move || l.try_get().cloned())
        .join()
        .unwrap();
    assert_eq!(on_blocking, None, "blocking thread of the same pool");
    let l = Arc::clone(&locals);
    let elsewhere = other
        .spawn(async move { l.try_get().cloned() })
        .join()
        .unwrap();
    assert_eq!(elsewhere, None, "a worker of another pool");
}

/// This thread's nice value, from `/proc/thread-self/stat` (field 19).
fn own_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    after_name
        .split_whitespace()
        .nth(16)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn nice_applies_to_every_pool_thread_and_nowhere_else() {
    let executor = io_executor::Builder::new()
        .name("nice")
        .nice(7)
        .build()
        .unwrap();
    assert_eq!(executor.spawn_blocking(own_nice).join().unwrap(), 7);
    assert_eq!(executor.spawn(async { own_nice() }).join().unwrap(), 7);
    assert_eq!(own_nice(), 0, "the caller's thread is untouched");
}

#[test]
fn by_default_pool_threads_run_at_the_lowest_priority() {
    // Built from a thread at nice 3: the pool runs at 19 (3 + 19, at most 19), the
    // builder stays at 3.
    let (pool, builder_nice) = std::thread::spawn(|| {
        let tid = rustix::thread::gettid();
        rustix::process::setpriority_process(Some(tid), 3).unwrap();
        let executor = io_executor::Builder::new()
            .name("default-nice")
            .build()
            .unwrap();
        (executor, own_nice())
    })
    .join()
    .unwrap();
    assert_eq!(builder_nice, 3);
    assert_eq!(pool.spawn_blocking(own_nice).join().unwrap(), 19);
    assert_eq!(pool.spawn(async { own_nice() }).join().unwrap(), 19);
    let inherited = io_executor::Builder::new()
        .name("inherit")
        .inherit_priority()
        .build()
        .unwrap();
    assert_eq!(
        inherited.spawn_blocking(own_nice).join().unwrap(),
        own_nice()
    );
}

#[test]
fn only_its_own_blocking_threads_are_on_its_blocking_thread() {
    let executor = pool("lane", 1, 1);
    let other = pool("other-lane", 1, 1);
    assert!(!executor.on_blocking_thread());
    let ex = executor.clone();
    let on_worker = executor
        .spawn(async move { ex.on_blocking_thread() })
        .join()
        .unwrap();
    assert!(!on_worker);
    let ex = executor.clone();
    let on_lane = executor
        .spawn_blocking(move || ex.on_blocking_thread())
        .join()
        .unwrap();
    assert!(on_lane);
    let ex = executor.clone();
    let on_other_lane = other
        .spawn_blocking(move || ex.on_blocking_thread())
        .join()
        .unwrap();
    assert!(!on_other_lane);
}

#[test]
fn a_worker_local_says_when_its_executor_has_shut_down_or_is_gone() {
    let executor = pool("wl-shut", 2, 1);
    let locals = executor.worker_local(thread_name);
    let other = pool("wl-other", 1, 1);
    let others = other.worker_local(thread_name);
    assert!(!locals.is_shutdown());
    executor.shutdown();
    assert!(locals.is_shutdown(), "shut down through a handle");
    assert!(!others.is_shutdown(), "another executor's is not");
    // Every handle dropped: the executor shuts itself down.
    drop(other);
    assert!(others.is_shutdown(), "every handle dropped");
    // The global executor never shuts down.
    assert!(
        !io_executor::Executor::global()
            .worker_local(thread_name)
            .is_shutdown()
    );
}
