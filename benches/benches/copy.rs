//! The memory baseline: copying a buffer, at the sizes IO moves, so that buffer
//! effects (copies, allocation, page faults) can be told apart from IO effects.
//!
//! `cargo bench -p dio-benches --bench copy`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [(usize, &str); 5] = [
    (128, "128B"),
    (1 << 10, "1k"),
    (4 << 10, "4k"),
    (1 << 20, "1M"),
    (4 << 20, "4M"),
];

fn copy(c: &mut Criterion) {
    let mut group = c.benchmark_group("copy");
    for (len, name) in SIZES {
        let src = vec![0xa5_u8; len];
        let mut dst = vec![0_u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        // Into a buffer that already exists (what a pooled read does).
        group.bench_function(
            BenchmarkId::from_parameter(format!("memory_copy_{name}")),
            |b| {
                b.iter(|| dst.copy_from_slice(std::hint::black_box(&src)));
            },
        );
        // Into a fresh allocation (what `to_vec` and unpooled reads do).
        group.bench_function(
            BenchmarkId::from_parameter(format!("alloc_copy_{name}")),
            |b| {
                b.iter(|| std::hint::black_box(std::hint::black_box(&src).to_vec()));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, copy);
criterion_main!(benches);
