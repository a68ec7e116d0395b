//! Round trip of an empty job, and a burst of 10,000 small jobs: our blocking lane
//! and async lane against `tokio::task::spawn_blocking` and an IOx-style dedicated
//! multi-thread runtime reached through `Handle::spawn`.
//!
//! The caller is always a separate current-thread tokio runtime that awaits the
//! result, as a query engine's task would.

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{Criterion, criterion_group, criterion_main};
use io_executor::Builder;

fn caller() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("caller runtime")
}

fn round_trip(c: &mut Criterion) {
    let caller = caller();
    let ours = Builder::new()
        .name("bench")
        .worker_threads(NonZeroUsize::new(2).expect("2"))
        .blocking_threads(NonZeroUsize::new(8).expect("8"))
        .build()
        .expect("pool");
    // tokio's blocking pool, reached from the caller's runtime.
    let tokio_blocking = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("tokio runtime");
    // IOx-style: a dedicated multi-thread runtime reached through Handle::spawn.
    let iox = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("iox runtime");
    let iox_handle = iox.handle().clone();
    let tb_handle = tokio_blocking.handle().clone();

    let mut group = c.benchmark_group("executor/round_trip");
    group.bench_function("ours_blocking_lane", |b| {
        b.iter(|| caller.block_on(async { ours.spawn_blocking(|| black_box(1)).await.unwrap() }))
    });
    group.bench_function("ours_async_lane", |b| {
        b.iter(|| caller.block_on(async { ours.spawn(async { black_box(1) }).await.unwrap() }))
    });
    group.bench_function("tokio_spawn_blocking", |b| {
        b.iter(|| {
            caller.block_on(async { tb_handle.spawn_blocking(|| black_box(1)).await.unwrap() })
        })
    });
    group.bench_function("iox_handle_spawn", |b| {
        b.iter(|| {
            caller.block_on(async { iox_handle.spawn(async { black_box(1) }).await.unwrap() })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("executor/burst_10k");
    group.sample_size(20);
    const N: usize = 10_000;
    group.bench_function("ours_blocking_lane", |b| {
        b.iter(|| {
            caller.block_on(async {
                let handles: Vec<_> = (0..N)
                    .map(|i| ours.spawn_blocking(move || black_box(i)))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            })
        })
    });
    group.bench_function("ours_async_lane", |b| {
        b.iter(|| {
            caller.block_on(async {
                let handles: Vec<_> = (0..N)
                    .map(|i| ours.spawn(async move { black_box(i) }))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            })
        })
    });
    group.bench_function("tokio_spawn_blocking", |b| {
        b.iter(|| {
            caller.block_on(async {
                let handles: Vec<_> = (0..N)
                    .map(|i| tb_handle.spawn_blocking(move || black_box(i)))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            })
        })
    });
    group.bench_function("iox_handle_spawn", |b| {
        b.iter(|| {
            caller.block_on(async {
                let handles: Vec<_> = (0..N)
                    .map(|i| iox_handle.spawn(async move { black_box(i) }))
                    .collect();
                for h in handles {
                    h.await.unwrap();
                }
            })
        })
    });
    group.finish();
    ours.shutdown();
    ours.blocking_join();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
