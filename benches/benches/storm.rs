//! The small-read storm: 10,000 random 4 KiB (and 64 KiB) reads of a 1 GiB file in
//! the page cache, issued at once, by every method side by side: ours through one
//! `read_ranges` call and as 10,000 `read_range` futures, a `pread` loop on the
//! calling thread, tokio's `spawn_blocking` per read, OpenDAL and object_store.
//!
//! `cargo bench -p dio-benches --bench storm` (`-- --quick` for a short run).
//! Throughput is in bytes per second; the same workload is `dio bench --suite storm`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dio_benches::storm::{Fixture, Method, Storm};

/// The file the storms read and the storms run: 1 GiB and every storm, as the issue
/// that asked for them specifies, when measuring (`cargo bench` passes `--bench`).
/// As a test (`cargo test`, which runs each benchmark once to see that it works)
/// the 4 KiB storm over the least file it needs (about 78 MiB; the 64 KiB storm
/// would need about 664 MiB for reads a page apart, written by every CI run).
fn plan() -> (u64, &'static [Storm]) {
    if std::env::args().any(|a| a == "--bench") {
        (1 << 30, &Storm::ALL)
    } else {
        (0, &Storm::ALL[..1])
    }
}

fn storm(c: &mut Criterion) {
    let dedicated = dio_benches::dedicated_pool("bench-io").expect("dedicated pool");
    let (file_size, storms) = plan();
    let fixture = Fixture::new(dedicated, file_size, storms).expect("storm fixture");
    for &storm in storms {
        let offsets = fixture.offsets(storm);
        let mut group = c.benchmark_group(format!("storm/{storm}"));
        group.throughput(Throughput::Bytes(storm.bytes()));
        group.sample_size(10);
        for method in Method::ALL {
            group.bench_function(method.name(), |b| {
                b.iter(|| fixture.run(method, storm, &offsets).unwrap())
            });
        }
        group.finish();
    }
}

criterion_group!(benches, storm);
criterion_main!(benches);
