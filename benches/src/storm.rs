//! The small-read storm: 10,000 random reads of 4 KiB (or 64 KiB) of a large file
//! in the page cache, issued at once, as a query engine does for page indexes,
//! bloom filters, row lookups and vector-search fetches.

use std::fmt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};

/// Reads per storm.
pub const READS: usize = 10_000;

/// One storm: [`READS`] reads of `size` bytes at random aligned offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storm {
    /// Bytes per read.
    pub size: u64,
}

impl Storm {
    /// The storms `dio bench` runs: 4 KiB and 64 KiB reads.
    pub const ALL: [Storm; 2] = [Storm { size: 4 << 10 }, Storm { size: 64 << 10 }];

    /// `storm_4k`, `storm_64k`.
    pub fn name(&self) -> String {
        format!("storm_{}k", self.size >> 10)
    }

    /// Bytes one storm moves.
    pub fn bytes(&self) -> u64 {
        READS as u64 * self.size
    }
}

impl fmt::Display for Storm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Who does the reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `read_ranges` with coalescing off: one call, every range.
    OursReadRanges,
    /// A `read_range` future per read, all awaited together.
    OursFutures,
    /// A `pread` loop on the calling thread over one open file: the floor a single
    /// core sets.
    Std,
    /// The same loop split over one thread per CPU (scoped threads, started for
    /// each storm): what the machine's cores can do together, the ceiling for any
    /// method that spreads the reads.
    StdThreads,
    /// `tokio::task::spawn_blocking` per read, over one open file.
    SpawnBlocking,
    /// OpenDAL's fs service, a `read_with(..).range(..)` future per read.
    OpenDal,
    /// object_store's `LocalFileSystem`, a `get_range` future per read.
    ObjectStore,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 7] = [
        Method::OursReadRanges,
        Method::OursFutures,
        Method::Std,
        Method::StdThreads,
        Method::SpawnBlocking,
        Method::OpenDal,
        Method::ObjectStore,
    ];

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::OursReadRanges => "ours_read_ranges",
            Method::OursFutures => "ours_futures",
            Method::Std => "std",
            Method::StdThreads => "std_threads",
            Method::SpawnBlocking => "spawn_blocking",
            Method::OpenDal => "opendal",
            Method::ObjectStore => "object_store",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The file, the offsets, and every method's client.
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
    file: Arc<std::fs::File>,
    size: u64,
    /// The caller: a multi-thread runtime, as a query engine's would be.
    pub caller: tokio::runtime::Runtime,
    ours: storage::Operator,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
}

impl Fixture {
    /// Writes a file of `size` bytes (1 GiB for the benchmark) to a temp directory
    /// and builds the clients; ours runs on `dedicated` without coalescing.
    ///
    /// # Panics
    ///
    /// If the file, the runtime or a client cannot be made.
    pub fn new(dedicated: Executor, size: u64) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("storm");
        {
            let mut rng = rand::rngs::StdRng::seed_from_u64(5);
            let mut chunk = vec![0_u8; 8 << 20];
            let file = std::fs::File::create(&path).expect("create");
            let mut at = 0;
            while at < size {
                rng.fill(&mut chunk[..]);
                let n = (size - at).min(chunk.len() as u64) as usize;
                file.write_all_at(&chunk[..n], at).expect("write");
                at += n as u64;
            }
            // On disk before any read is measured (see `write_synced`).
            file.sync_all().expect("sync");
        }
        let file = Arc::new(std::fs::File::open(&path).expect("open"));
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("caller runtime");
        let fs = storage::services::Fs::new(dir.path()).expect("fs");
        let ours = storage::Operator::new(fs).with_executor(dedicated);
        let ours = ours
            .clone()
            .with_options(ours.options().with_coalesce_gap(0));
        let root = dir.path().to_str().expect("utf-8 temp dir");
        let opendal = opendal::Operator::new(opendal::services::Fs::default().root(root))
            .expect("opendal")
            .finish();
        let object_store: Arc<dyn ObjectStore> = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path())
                .expect("object_store"),
        );
        Self {
            dir,
            file,
            size,
            caller,
            ours,
            opendal,
            object_store,
        }
    }

    /// The storm's offsets: [`READS`] random multiples of the read size, the same
    /// for every method (seeded by the size).
    pub fn offsets(&self, storm: Storm) -> Vec<u64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(storm.size);
        let slots = self.size / storm.size;
        (0..READS)
            .map(|_| rng.random_range(0..slots) * storm.size)
            .collect()
    }

    /// One storm by `method`; returns the bytes read (checked).
    ///
    /// # Panics
    ///
    /// If a read fails or returns the wrong number of bytes.
    pub fn run(&self, method: Method, storm: Storm, offsets: &[u64]) -> u64 {
        let len = storm.size;
        let got: u64 = match method {
            Method::Std => self.pread_loop(len, offsets),
            Method::StdThreads => self.pread_threads(len, offsets),
            _ => self.caller.block_on(self.run_async(method, len, offsets)),
        };
        assert_eq!(got, storm.bytes(), "{method} {storm}");
        got
    }

    /// [`pread_loop`](Self::pread_loop) over one scoped thread per CPU.
    fn pread_threads(&self, len: u64, offsets: &[u64]) -> u64 {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per = offsets.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let loops: Vec<_> = offsets
                .chunks(per)
                .map(|part| scope.spawn(move || self.pread_loop(len, part)))
                .collect();
            loops
                .into_iter()
                .map(|t| t.join().expect("pread loop"))
                .sum()
        })
    }

    fn pread_loop(&self, len: u64, offsets: &[u64]) -> u64 {
        offsets
            .iter()
            .map(|&at| {
                let mut buf = vec![0_u8; len as usize];
                self.file.read_exact_at(&mut buf, at).expect("pread");
                std::hint::black_box(buf).len() as u64
            })
            .sum()
    }

    async fn run_async(&self, method: Method, len: u64, offsets: &[u64]) -> u64 {
        let lens = |all: Vec<usize>| all.into_iter().map(|n| n as u64).sum::<u64>();
        match method {
            Method::OursReadRanges => {
                let ranges = offsets.iter().map(|&at| at..at + len).collect();
                let got = self
                    .ours
                    .read_ranges("storm", ranges)
                    .await
                    .expect("read_ranges");
                lens(got.iter().map(|b| b.len()).collect())
            }
            Method::OursFutures => {
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| self.ours.read_range("storm", at..at + len))
                    .collect();
                let got = futures::future::join_all(reads).await;
                lens(
                    got.into_iter()
                        .map(|r| r.expect("read_range").len())
                        .collect(),
                )
            }
            Method::SpawnBlocking => {
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| {
                        let file = Arc::clone(&self.file);
                        tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0_u8; len as usize];
                            file.read_exact_at(&mut buf, at).map(|()| buf)
                        })
                    })
                    .collect();
                let got = futures::future::join_all(reads).await;
                lens(
                    got.into_iter()
                        .map(|r| r.expect("join").expect("pread").len())
                        .collect(),
                )
            }
            Method::OpenDal => {
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| {
                        std::future::IntoFuture::into_future(
                            self.opendal.read_with("storm").range(at..at + len),
                        )
                    })
                    .collect();
                let got = futures::future::join_all(reads).await;
                lens(got.into_iter().map(|r| r.expect("read").len()).collect())
            }
            Method::ObjectStore => {
                let path = object_store::path::Path::from("storm");
                let reads: Vec<_> = offsets
                    .iter()
                    .map(|&at| self.object_store.get_range(&path, at..at + len))
                    .collect();
                let got = futures::future::join_all(reads).await;
                lens(
                    got.into_iter()
                        .map(|r| r.expect("get_range").len())
                        .collect(),
                )
            }
            Method::Std => self.pread_loop(len, offsets),
            Method::StdThreads => self.pread_threads(len, offsets),
        }
    }

    /// The directory holding the file.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}
