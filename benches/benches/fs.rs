//! The seed's fs workloads, every method side by side in one run.
//!
//! `cargo bench -p dio-benches --bench fs` (optionally with a filter such as
//! `range_read`). Throughput is in bytes per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dio_benches::fs::{Fixture, Method, Workload};

fn fs(c: &mut Criterion) {
    let dedicated = dio_benches::dedicated_pool("bench-io").expect("dedicated pool");
    let fixture = Fixture::new(dedicated);
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(format!("fs/{workload}"));
        group.throughput(Throughput::Bytes(workload.bytes()));
        group.sample_size(if workload.bytes() >= 64 << 20 { 10 } else { 30 });
        for method in Method::ALL {
            group.bench_function(method.name(), |b| {
                b.iter(|| fixture.run(method, workload).unwrap())
            });
        }
        group.finish();
    }
    // Ablation: the buffer pool, on the workloads where page faults would show.
    for workload in [Workload::Read, Workload::ParallelRangeRead(16)] {
        let mut group = c.benchmark_group(format!("fs_pool/{workload}"));
        group.throughput(Throughput::Bytes(workload.bytes()));
        group.sample_size(10);
        for method in Method::ABLATIONS {
            group.bench_function(method.name(), |b| {
                b.iter(|| fixture.run(method, workload).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, fs);
criterion_main!(benches);
