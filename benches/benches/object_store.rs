//! The object_store adapters against object_store's own stores, reading the way a
//! Parquet reader does:
//!
//! - fs (files in page cache): `LocalFileSystem` bare (its IO on the caller's
//!   runtime), behind `IoObjectStore` (its IO on a dedicated pool), and `DioStore`
//!   over our fs `Operator` on the same pool;
//! - S3, on the in-process memory endpoint (`MemS3`) and, when `DIO_TEST_S3_URI` is
//!   set (`scripts/s3-server start`), on that server: `AmazonS3` bare, behind
//!   `IoObjectStore`, and `DioStore` over our S3 `Operator`.
//!
//! `cargo bench -p dio-benches --bench object_store` (`-- --quick` for a short run).
//! Throughput is in bytes per second.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dio_benches::mem_s3::MemS3;
use dio_benches::s3::Endpoint;
use dio_object_store::{DioStore, IoObjectStore};
use io_executor::Executor;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// The file the range workloads read: 64 MiB.
const BIG: u64 = 64 << 20;
/// The file `get` reads whole: 16 MiB.
const WHOLE: u64 = 16 << 20;

/// object_store's `LocalFileSystem`, its blocking reads on the caller's runtime's
/// blocking pool.
fn local_fs(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(dir).expect("LocalFileSystem"))
}

/// The same store behind `IoObjectStore`: every call and read on `io`.
fn io_object_store(dir: &std::path::Path, io: &Executor) -> Arc<dyn ObjectStore> {
    let fs = LocalFileSystem::new_with_prefix(dir).expect("LocalFileSystem");
    Arc::new(IoObjectStore::new(fs, io.clone()))
}

/// `DioStore` over our fs `Operator` rooted at `dir`, its IO on `io`.
fn dio_store_fs(dir: &std::path::Path, io: &Executor) -> Arc<dyn ObjectStore> {
    let fs = storage::services::Fs::new(dir).expect("Fs");
    Arc::new(DioStore::new(
        storage::Operator::new(fs).with_executor(io.clone()),
    ))
}

/// `AmazonS3` bare, behind `IoObjectStore`, and `DioStore` over our S3 backend, for
/// `endpoint`; the objects are under `prefix`.
fn s3_methods(
    endpoint: &Endpoint,
    prefix: &str,
    io: &Executor,
) -> Vec<(&'static str, Arc<dyn ObjectStore>)> {
    let amazon = || {
        let store = endpoint.object_store().build().expect("AmazonS3");
        object_store::prefix::PrefixStore::new(store, prefix)
    };
    let ours = endpoint
        .ours()
        .expect("our S3 builder")
        .root(prefix)
        .build()
        .expect("our S3 backend");
    vec![
        ("amazon_s3", Arc::new(amazon())),
        (
            "io_object_store",
            Arc::new(IoObjectStore::new(amazon(), io.clone())),
        ),
        (
            "dio_store",
            Arc::new(DioStore::new(
                storage::Operator::new(ours).with_executor(io.clone()),
            )),
        ),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Workload {
    /// `get_range` of 8 MiB (a large column chunk).
    GetRange8M,
    /// `get` of a 16 MiB object, collected with `bytes()`.
    Get16M,
    /// `get_range` of 4 KiB (a footer or a page index).
    GetRange4K,
    /// `get_ranges` of 32 column chunks of 64 KiB to 2 MiB with gaps between them.
    GetRanges32,
}

impl Workload {
    const ALL: [Workload; 4] = [
        Workload::GetRange8M,
        Workload::Get16M,
        Workload::GetRange4K,
        Workload::GetRanges32,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::GetRange8M => "get_range_8m",
            Workload::Get16M => "get_16m",
            Workload::GetRange4K => "get_range_4k",
            Workload::GetRanges32 => "get_ranges_32",
        }
    }

    fn bytes(self) -> u64 {
        match self {
            Workload::GetRange8M => 8 << 20,
            Workload::Get16M => WHOLE,
            Workload::GetRange4K => 4 << 10,
            Workload::GetRanges32 => column_chunks().iter().map(|r| r.end - r.start).sum(),
        }
    }

    /// One iteration; `turn` moves the small reads around the file.
    async fn run(self, store: &dyn ObjectStore, turn: u64) {
        let big = Path::from("big");
        let read = match self {
            Workload::GetRange8M => {
                let start = (turn % 8) * (8 << 20);
                store
                    .get_range(&big, start..start + (8 << 20))
                    .await
                    .expect("get_range")
                    .len()
            }
            Workload::Get16M => {
                let get = store.get(&Path::from("whole")).await.expect("get");
                get.bytes().await.expect("bytes").len()
            }
            Workload::GetRange4K => {
                let start = (turn * 1_048_573) % (BIG - 4096);
                store
                    .get_range(&big, start..start + 4096)
                    .await
                    .expect("get_range")
                    .len()
            }
            Workload::GetRanges32 => {
                let chunks = store
                    .get_ranges(&big, &column_chunks())
                    .await
                    .expect("get_ranges");
                chunks.iter().map(|c| c.len()).sum()
            }
        };
        assert_eq!(read as u64, self.bytes());
    }
}

/// 32 column chunks as a Parquet row group lays them out: sizes from 64 KiB to
/// 2 MiB, separated by gaps of 4 KiB to 60 KiB (page indexes, skipped columns).
fn column_chunks() -> Vec<Range<u64>> {
    const SIZES: [u64; 8] = [
        64 << 10,
        2 << 20,
        256 << 10,
        1 << 20,
        128 << 10,
        1536 << 10,
        512 << 10,
        768 << 10,
    ];
    let mut start = 4096;
    (0..32)
        .map(|i| {
            let len = SIZES[i % SIZES.len()];
            let range = start..start + len;
            start += len + 4096 * (1 + (i as u64 * 5) % 15);
            range
        })
        .collect()
}

fn object_store(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    for (name, bytes) in [("big", &data[..]), ("whole", &data[..WHOLE as usize])] {
        // In page cache and written back: no writeback competes with the reads.
        dio_benches::write_synced(&dir.path().join(name), bytes).expect("write");
    }
    assert!(column_chunks().last().expect("chunks").end <= BIG);

    // The caller: a multi-thread runtime, as a query engine's would be.
    let caller = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("caller runtime");
    let io = dio_benches::dedicated_pool("bench-io").expect("dedicated pool");
    let fs_methods: Vec<(&str, Arc<dyn ObjectStore>)> = vec![
        ("local_fs", local_fs(dir.path())),
        ("io_object_store", io_object_store(dir.path(), &io)),
        ("dio_store", dio_store_fs(dir.path(), &io)),
    ];
    run_group(c, "object_store", &caller, &fs_methods);

    // S3: the in-process endpoint (its own runtime), then a real server if given.
    let data = bytes::Bytes::from(data);
    let server = MemS3::start("dio-bench", 2).unwrap_or_else(|e| panic!("{e}"));
    server.put("os/big", data.clone());
    server.put("os/whole", data.slice(..WHOLE as usize));
    let endpoint = Endpoint::in_process(&server);
    let mem_methods = {
        // AmazonS3 keeps its connections on the runtime it is built in.
        let _guard = caller.enter();
        s3_methods(&endpoint, "os/", &io)
    };
    run_group(c, "object_store_mem_s3", &caller, &mem_methods);
    drop(mem_methods);
    drop(server);

    if let Some(endpoint) = Endpoint::from_env() {
        let prefix = format!("{}dio-bench-os-{}/", endpoint.prefix, std::process::id());
        let upload = storage::Operator::new(
            endpoint
                .ours()
                .expect("our S3 builder")
                .root(&prefix)
                .build()
                .expect("our S3 backend"),
        )
        .with_executor(io.clone());
        let blocking = upload.blocking();
        blocking.write("big", data.clone()).expect("upload big");
        blocking
            .write("whole", data.slice(..WHOLE as usize))
            .expect("upload whole");
        let methods = {
            let _guard = caller.enter();
            s3_methods(&endpoint, &prefix, &io)
        };
        run_group(c, "object_store_s3", &caller, &methods);
        blocking.remove_all("").expect("clean up");
    }
}

/// One criterion group per workload: `prefix/workload`, a function per method.
fn run_group(
    c: &mut Criterion,
    prefix: &str,
    caller: &tokio::runtime::Runtime,
    methods: &[(&str, Arc<dyn ObjectStore>)],
) {
    for workload in Workload::ALL {
        let mut group = c.benchmark_group(format!("{prefix}/{}", workload.name()));
        group.throughput(Throughput::Bytes(workload.bytes()));
        for (name, store) in methods {
            let turn = AtomicU64::new(0);
            group.bench_function(*name, |b| {
                b.to_async(caller)
                    .iter(|| workload.run(&**store, turn.fetch_add(1, Ordering::Relaxed)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, object_store);
criterion_main!(benches);
