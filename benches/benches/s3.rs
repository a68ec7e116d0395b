//! The seed's S3 workloads, every client side by side in one run: against a static
//! in-memory S3 endpoint inside this process (`s3_mem/...`, where raw hyper is the
//! floor), and against SeaweedFS (`s3_seaweedfs/...`) when `DIO_TEST_S3_URI` and
//! the `AWS_*` variables name one (`scripts/bench-s3` starts it and runs this).
//!
//! Throughput is in bytes per second.

use std::num::NonZeroUsize;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dio_benches::fs::Sizes;
use dio_benches::mem_s3::MemS3;
use dio_benches::s3::{Endpoint, Fixture, Method, WORKLOADS};

fn run_all(c: &mut Criterion, group_prefix: &str, fixture: &Fixture) {
    for workload in WORKLOADS {
        let mut group = c.benchmark_group(format!("{group_prefix}/{workload}"));
        group.throughput(Throughput::Bytes(workload.bytes()));
        group.sample_size(10);
        for method in Method::ALL
            .into_iter()
            .filter(|m| fixture.supports(*m, workload))
        {
            group.bench_function(method.name(), |b| {
                b.iter(|| fixture.run(method, workload).unwrap())
            });
        }
        group.finish();
    }
}

fn s3(c: &mut Criterion) {
    let dedicated = io_executor::Builder::new()
        .name("bench-s3")
        .worker_threads(NonZeroUsize::new(2).expect("2"))
        .build()
        .expect("dedicated pool");
    {
        let server = MemS3::start("bench", 2).unwrap_or_else(|e| panic!("{e}"));
        let fixture = Fixture::new(
            Endpoint::in_process(&server),
            dedicated.clone(),
            Sizes::default(),
        )
        .unwrap_or_else(|e| panic!("in-process endpoint: {e}"));
        run_all(c, "s3_mem", &fixture);
    }
    match Endpoint::from_env() {
        Some(endpoint) => match Fixture::new(endpoint, dedicated, Sizes::default()) {
            Ok(fixture) => run_all(c, "s3_seaweedfs", &fixture),
            Err(e) => eprintln!("s3_seaweedfs SKIPPED: {e}"),
        },
        None => eprintln!(
            "s3_seaweedfs SKIPPED: DIO_TEST_S3_URI is not set (scripts/bench-s3 starts SeaweedFS and sets it)"
        ),
    }
}

criterion_group!(benches, s3);
criterion_main!(benches);
