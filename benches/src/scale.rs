//! How cost grows: throughput and per-request latency of random range reads of one
//! cached file as the number of outstanding reads grows (1 to 256) and as the size
//! of each read grows (4 KiB to 64 MiB), for ours and the peers.
//!
//! The caller is a 2-worker multi-thread runtime, as a query engine's. `concurrency`
//! tasks on it each issue one read at a time, back to back, at random offsets, until
//! the time budget is spent; every read's latency (issue to bytes in hand) is
//! recorded. So `concurrency` is the number of reads outstanding at any moment.

use std::fmt;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};

/// One way to read a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `Operator::read_range` on a dedicated pool.
    Ours,
    /// tokio's `spawn_blocking` per read, `pread` into a fresh buffer.
    SpawnBlocking,
    /// object_store's `LocalFileSystem::get_range`.
    ObjectStore,
    /// OpenDAL's fs service, `read_with(..).range(..)`.
    OpenDal,
}

impl Method {
    /// Every method, ours first.
    pub const ALL: [Method; 4] = [
        Method::Ours,
        Method::SpawnBlocking,
        Method::ObjectStore,
        Method::OpenDal,
    ];

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ours => "ours",
            Method::SpawnBlocking => "spawn_blocking",
            Method::ObjectStore => "object_store",
            Method::OpenDal => "opendal",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one (method, concurrency, request size) point measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The method.
    pub method: Method,
    /// Reads outstanding at once.
    pub concurrency: usize,
    /// Bytes per read.
    pub request: u64,
    /// Reads completed.
    pub requests: u64,
    /// Bytes per second over the run.
    pub bytes_per_sec: f64,
    /// Median latency of one read.
    pub p50: Duration,
    /// 99th percentile latency of one read.
    pub p99: Duration,
}

/// The file and every method's client.
#[derive(Debug)]
pub struct ScaleBench {
    /// Holds the file; removed on drop.
    _dir: tempfile::TempDir,
    size: u64,
    file: Arc<std::fs::File>,
    ours: storage::Operator,
    object_store: Arc<dyn ObjectStore>,
    opendal: opendal::Operator,
    caller: tokio::runtime::Runtime,
}

impl ScaleBench {
    /// Writes a file of `size` bytes (it stays in page cache) and builds the clients;
    /// ours reads on `dedicated`.
    ///
    /// # Errors
    ///
    /// A one-line message if the file, the runtime or a client cannot be made.
    pub fn new(dedicated: Executor, size: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        crate::check_room_for_file(
            dir.path(),
            size,
            "the scale benchmark's file",
            "--file-size",
        )?;
        let path = dir.path().join("big");
        let mut data = vec![0_u8; size as usize];
        rand::rngs::StdRng::seed_from_u64(11).fill(&mut data[..]);
        crate::write_synced(&path, &data).map_err(|e| format!("cannot write {path:?}: {e}"))?;
        drop(data);
        let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {path:?}: {e}"))?;
        let fs = storage::services::Fs::new(dir.path()).map_err(|e| e.to_string())?;
        let root = dir.path().to_str().ok_or("the temp dir is not UTF-8")?;
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the caller runtime: {e}"))?;
        Ok(Self {
            size,
            file: Arc::new(file),
            ours: storage::Operator::new(fs).with_executor(dedicated),
            object_store: Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir.path())
                    .map_err(|e| e.to_string())?,
            ),
            opendal: opendal::Operator::new(opendal::services::Fs::default().root(root))
                .map_err(|e| e.to_string())?
                .finish(),
            caller,
            _dir: dir,
        })
    }

    /// The file's size.
    pub fn file_size(&self) -> u64 {
        self.size
    }

    /// `concurrency` tasks reading `request` bytes at random offsets, one read at a
    /// time each, for `budget` (and at least one read each).
    ///
    /// # Errors
    ///
    /// The first failed read, in one line.
    pub fn run(
        &self,
        method: Method,
        concurrency: usize,
        request: u64,
        budget: Duration,
    ) -> Result<Point, String> {
        if request == 0 || request > self.size {
            return Err(format!(
                "a read of {request} bytes does not fit the {} byte file",
                self.size
            ));
        }
        let concurrency = concurrency.max(1);
        let started = Instant::now();
        let end = started + budget;
        let results = self.caller.block_on(async {
            let tasks: Vec<_> = (0..concurrency)
                .map(|i| {
                    let reader = self.reader(method);
                    let size = self.size;
                    tokio::spawn(async move {
                        let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64 + 1);
                        let mut latencies = Vec::new();
                        loop {
                            let offset = rng.random_range(0..=(size - request) / 4096) * 4096;
                            let t = Instant::now();
                            let got = reader.read(offset, request).await?;
                            latencies.push(t.elapsed());
                            if got != request {
                                return Err(format!(
                                    "{method}: asked for {request} bytes at {offset}, got {got}"
                                ));
                            }
                            if Instant::now() >= end {
                                return Ok(latencies);
                            }
                        }
                    })
                })
                .collect();
            let mut all = Vec::new();
            for task in tasks {
                all.push(task.await.map_err(|e| format!("{method}: {e}"))??);
            }
            Ok::<_, String>(all)
        })?;
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies: Vec<Duration> = results.into_iter().flatten().collect();
        latencies.sort();
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        let requests = latencies.len() as u64;
        Ok(Point {
            method,
            concurrency,
            request,
            requests,
            bytes_per_sec: (requests * request) as f64 / elapsed,
            p50: pick(0.5),
            p99: pick(0.99),
        })
    }

    fn reader(&self, method: Method) -> Reader {
        match method {
            Method::Ours => Reader::Ours(self.ours.clone()),
            Method::SpawnBlocking => Reader::SpawnBlocking(Arc::clone(&self.file)),
            Method::ObjectStore => Reader::ObjectStore(Arc::clone(&self.object_store)),
            Method::OpenDal => Reader::OpenDal(self.opendal.clone()),
        }
    }
}

/// One task's client.
enum Reader {
    Ours(storage::Operator),
    SpawnBlocking(Arc<std::fs::File>),
    ObjectStore(Arc<dyn ObjectStore>),
    OpenDal(opendal::Operator),
}

impl Reader {
    /// Reads `len` bytes at `offset`; returns how many arrived.
    async fn read(&self, offset: u64, len: u64) -> Result<u64, String> {
        let range = offset..offset + len;
        match self {
            Reader::Ours(op) => op
                .read_range("big", range)
                .await
                .map(|b| b.len() as u64)
                .map_err(|e| format!("ours: {}", crate::error_chain(&e))),
            Reader::SpawnBlocking(file) => {
                let file = Arc::clone(file);
                tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0_u8; len as usize];
                    file.read_exact_at(&mut buf, offset)
                        .map(|()| buf.len() as u64)
                })
                .await
                .map_err(|e| format!("spawn_blocking: {e}"))?
                .map_err(|e| format!("spawn_blocking: {e}"))
            }
            Reader::ObjectStore(store) => store
                .get_range(&object_store::path::Path::from("big"), range)
                .await
                .map(|b| b.len() as u64)
                .map_err(|e| format!("object_store: {e}")),
            Reader::OpenDal(op) => op
                .read_with("big")
                .range(range)
                .await
                .map(|b| b.len() as u64)
                .map_err(|e| format!("opendal: {e}")),
        }
    }
}

/// The dedicated pool ours reads on: the default pool's shape (a worker per core,
/// the default blocking threads), named for the bench.
///
/// # Errors
///
/// If the pool cannot start.
pub fn dedicated() -> Result<Executor, String> {
    io_executor::Builder::new()
        .name("dio-scale")
        .build()
        .map_err(|e| format!("cannot start the dedicated pool: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_reads_what_it_asks_for() {
        let bench = ScaleBench::new(dedicated().unwrap(), 1 << 20).unwrap();
        for method in Method::ALL {
            let point = bench
                .run(method, 3, 64 << 10, Duration::from_millis(20))
                .unwrap();
            assert!(point.requests >= 3, "{method}: {point:?}");
            assert!(point.p50 <= point.p99, "{method}: {point:?}");
        }
        let err = bench
            .run(Method::Ours, 1, 2 << 20, Duration::from_millis(1))
            .unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }
}
