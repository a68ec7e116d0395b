//! The isolation benchmark: does the caller's runtime stay responsive while IO
//! runs?
//!
//! A current-thread caller runtime (what one task of a query engine sees) runs
//! three things at once for a fixed time: a 1 ms ticker that records how late each
//! tick fires, a CPU-bound task (hashing a buffer, yielding every 250 µs) that
//! counts its rounds, and `concurrency` loops of 8 MiB range reads at random
//! offsets of a 128 MiB file, through one method. The same runtime with no IO gives
//! the reference.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};

/// Who does the reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// No IO at all: the reference.
    NoLoad,
    /// Our `Operator` on a dedicated pool with the defaults (its threads at nice 19,
    /// 19 levels below the caller's, so the kernel prefers the caller's thread when
    /// the cores are busy).
    OursDedicated,
    /// The ablation: a dedicated pool at the caller's own priority.
    OursSamePriority,
    /// Our `Operator` on the global pool.
    OursGlobal,
    /// Our `Operator` on the caller's runtime (blocking jobs on its blocking pool).
    OursCallerRuntime,
    /// OpenDAL's fs service.
    OpenDal,
    /// object_store's `LocalFileSystem`.
    ObjectStore,
    /// The same `LocalFileSystem` behind `IoObjectStore`, on the dedicated pool.
    IoObjectStore,
    /// `DioStore` over our fs `Operator` on the dedicated pool.
    DioStore,
    /// `tokio::fs`.
    TokioFs,
    /// One plain thread of ours doing the same reads with `pread` into one buffer:
    /// what one core copies while the caller keeps the other busy (the physical
    /// limit on 2 cores). Its buffer stays in the CPU's cache.
    OneThread,
    /// The same thread with `concurrency` buffers filled in turn: the destination
    /// memory that `concurrency` reads in flight need (each has its own buffer),
    /// with no hand-off at all. What is left between it and
    /// [`OneThread`](Self::OneThread) is the cache, not the pool.
    OneThreadRotating,
    /// The anti-pattern: `std::fs` reads inside the caller's async tasks.
    StdInAsync,
}

impl Method {
    /// Every method, the reference first and the control last.
    pub const ALL: [Method; 13] = [
        Method::NoLoad,
        Method::OursDedicated,
        Method::OursSamePriority,
        Method::OursGlobal,
        Method::OursCallerRuntime,
        Method::OpenDal,
        Method::ObjectStore,
        Method::IoObjectStore,
        Method::DioStore,
        Method::TokioFs,
        Method::OneThread,
        Method::OneThreadRotating,
        Method::StdInAsync,
    ];

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::NoLoad => "no_load",
            Method::OursDedicated => "ours_dedicated",
            Method::OursSamePriority => "ours_same_priority",
            Method::OursGlobal => "ours_global",
            Method::OursCallerRuntime => "ours_caller_rt",
            Method::OpenDal => "opendal",
            Method::ObjectStore => "object_store",
            Method::IoObjectStore => "io_object_store",
            Method::DioStore => "dio_store",
            Method::TokioFs => "tokio_fs",
            Method::OneThread => "one_thread",
            Method::OneThreadRotating => "one_thread_rotating",
            Method::StdInAsync => "std_in_async (control)",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The method.
    pub method: Method,
    /// Ticks recorded.
    pub ticks: usize,
    /// Tick lateness, median.
    pub lateness_p50: Duration,
    /// Tick lateness, 99th percentile.
    pub lateness_p99: Duration,
    /// Tick lateness, worst.
    pub lateness_max: Duration,
    /// Rounds of the CPU task per second.
    pub cpu_rounds_per_sec: f64,
    /// IO bytes per second.
    pub io_bytes_per_sec: f64,
}

/// The file and every method's client.
#[derive(Debug)]
pub struct Isolation {
    dir: tempfile::TempDir,
    size: u64,
    range: u64,
    dedicated: storage::Operator,
    same_priority: storage::Operator,
    global: storage::Operator,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
    io_object_store: Arc<dyn ObjectStore>,
    dio_store: Arc<dyn ObjectStore>,
    control_stall: Duration,
}

impl Isolation {
    /// Writes a file of `size` bytes (reads are of `size / 16`, 8 MiB for the
    /// default 128 MiB) and builds the clients; ours uses `dedicated`.
    ///
    /// # Errors
    ///
    /// If the file, the pools or the clients cannot be made: a message saying which.
    pub fn new(dedicated: Executor, size: u64) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        crate::check_room_for_file(
            dir.path(),
            size,
            "the isolation benchmark's file",
            "--file-size",
        )?;
        let mut data = vec![0_u8; size as usize];
        rand::rngs::StdRng::seed_from_u64(3).fill(&mut data[..]);
        let path = dir.path().join("big");
        crate::write_synced(&path, &data)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let fs = storage::services::Fs::new(dir.path()).map_err(|e| e.to_string())?;
        let same_priority_pool = io_executor::Builder::new()
            .name("iso-same")
            .worker_threads(NonZeroUsize::new(2).expect("2"))
            .inherit_priority()
            .build()
            .map_err(|e| format!("cannot build the same-priority pool: {e}"))?;
        let root = dir
            .path()
            .to_str()
            .ok_or_else(|| format!("{}: the temp dir is not UTF-8", dir.path().display()))?;
        Ok(Self {
            size,
            range: size / 16,
            io_object_store: Arc::new(dio_object_store::IoObjectStore::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir.path())
                    .map_err(|e| format!("object_store: {e}"))?,
                dedicated.clone(),
            )),
            dio_store: Arc::new(dio_object_store::DioStore::new(
                storage::Operator::new(fs.clone()).with_executor(dedicated.clone()),
            )),
            dedicated: storage::Operator::new(fs.clone()).with_executor(dedicated),
            same_priority: storage::Operator::new(fs.clone()).with_executor(same_priority_pool),
            global: storage::Operator::new(fs).with_executor(Executor::global()),
            opendal: opendal::Operator::new(opendal::services::Fs::default().root(root))
                .map_err(|e| format!("opendal: {e}"))?
                .finish(),
            object_store: Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir.path())
                    .map_err(|e| format!("object_store: {e}"))?,
            ),
            dir,
            control_stall: Duration::ZERO,
        })
    }

    /// Makes the control also block the caller's thread for `stall` after each read,
    /// so that it stalls the ticker by construction whatever the machine (for tests
    /// of the benchmark itself).
    pub fn with_control_stall(mut self, stall: Duration) -> Self {
        self.control_stall = stall;
        self
    }

    /// One run of `duration` with `concurrency` read loops by `method`.
    ///
    /// # Errors
    ///
    /// If the caller's runtime cannot be built, or a read fails: a line naming the
    /// method and the call.
    pub fn run(
        &self,
        method: Method,
        duration: Duration,
        concurrency: usize,
    ) -> Result<Sample, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the caller's runtime: {e}"))?;
        let fs = storage::services::Fs::new(self.dir.path())
            .map_err(|e| format!("{method}: the fs backend: {e}"))?;
        let on_caller = storage::Operator::new(fs)
            .with_executor(Executor::from_handle(runtime.handle().clone()));
        let sample = runtime.block_on(async {
            let end = Instant::now() + duration;
            let ticker = tokio::spawn(async move {
                let mut lateness = Vec::new();
                while Instant::now() < end {
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(1);
                    tokio::time::sleep_until(deadline).await;
                    lateness.push(tokio::time::Instant::now() - deadline);
                }
                lateness
            });
            // Its rounds over its own time: from its start to its last round
            // (just past `end`), not the IO's, whose last reads end later.
            let cpu = tokio::spawn(async move {
                let began = Instant::now();
                let buf = vec![0x5a_u8; 16 << 10];
                let mut rounds = 0_u64;
                let mut slice_start = Instant::now();
                while Instant::now() < end {
                    std::hint::black_box(hash(std::hint::black_box(&buf)));
                    rounds += 1;
                    if slice_start.elapsed() >= Duration::from_micros(250) {
                        tokio::task::yield_now().await;
                        slice_start = Instant::now();
                    }
                }
                (rounds, began.elapsed().as_secs_f64())
            });
            let started = Instant::now();
            let loops: Vec<_> = (0..concurrency)
                .map(|i| self.read_loop(method, &on_caller, end, i as u64, concurrency))
                .collect();
            let io_bytes = futures::future::join_all(loops)
                .await
                .into_iter()
                .sum::<Result<u64, String>>()
                .map_err(|e| format!("{method}: {e}"))?;
            let mut lateness = ticker
                .await
                .map_err(|e| format!("{method}: the ticker task: {e}"))?;
            let (rounds, cpu_elapsed) = cpu
                .await
                .map_err(|e| format!("{method}: the CPU task: {e}"))?;
            let elapsed = started.elapsed().as_secs_f64();
            lateness.sort();
            let pick = |q: f64| {
                lateness
                    .get(((lateness.len() as f64 - 1.0) * q) as usize)
                    .copied()
                    .unwrap_or_default()
            };
            Ok(Sample {
                method,
                ticks: lateness.len(),
                lateness_p50: pick(0.5),
                lateness_p99: pick(0.99),
                lateness_max: lateness.last().copied().unwrap_or_default(),
                cpu_rounds_per_sec: rounds as f64 / cpu_elapsed.max(1e-9),
                io_bytes_per_sec: io_bytes as f64 / elapsed,
            })
        });
        drop(on_caller);
        runtime.shutdown_timeout(Duration::from_secs(5));
        sample
    }

    /// Reads `range`-sized pieces at random offsets, at least one and until `end`;
    /// returns the bytes.
    async fn read_loop(
        &self,
        method: Method,
        on_caller: &storage::Operator,
        end: Instant,
        seed: u64,
        concurrency: usize,
    ) -> Result<u64, String> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut total = 0;
        let one_thread = matches!(method, Method::OneThread | Method::OneThreadRotating);
        if method == Method::NoLoad || (one_thread && seed > 0) {
            return Ok(0);
        }
        if one_thread {
            // `concurrency` is at least 1 here: this is one of its loops.
            let buffers = match method {
                Method::OneThreadRotating => concurrency,
                _ => 1,
            };
            return self.one_thread(end, buffers).await;
        }
        // At least one read, however late the loop starts (a run that read
        // nothing would say nothing of its method).
        loop {
            let offset = rng.random_range(0..=self.size - self.range);
            let range = offset..offset + self.range;
            let got = match method {
                Method::NoLoad | Method::OneThread | Method::OneThreadRotating => 0,
                Method::OursDedicated => self
                    .dedicated
                    .read_range("big", range)
                    .await
                    .map_err(failed("read", offset))?
                    .len(),
                Method::OursSamePriority => self
                    .same_priority
                    .read_range("big", range)
                    .await
                    .map_err(failed("read", offset))?
                    .len(),
                Method::OursGlobal => self
                    .global
                    .read_range("big", range)
                    .await
                    .map_err(failed("read", offset))?
                    .len(),
                Method::OursCallerRuntime => on_caller
                    .read_range("big", range)
                    .await
                    .map_err(failed("read", offset))?
                    .len(),
                Method::OpenDal => self
                    .opendal
                    .read_with("big")
                    .range(range)
                    .await
                    .map_err(failed("read", offset))?
                    .len(),
                Method::ObjectStore | Method::IoObjectStore | Method::DioStore => {
                    let store = match method {
                        Method::IoObjectStore => &self.io_object_store,
                        Method::DioStore => &self.dio_store,
                        _ => &self.object_store,
                    };
                    let path = object_store::path::Path::from("big");
                    store
                        .get_range(&path, range)
                        .await
                        .map_err(failed("read", offset))?
                        .len()
                }
                Method::TokioFs => {
                    use tokio::io::{AsyncReadExt, AsyncSeekExt};
                    let mut file = tokio::fs::File::open(self.dir.path().join("big"))
                        .await
                        .map_err(failed("open", offset))?;
                    file.seek(SeekFrom::Start(offset))
                        .await
                        .map_err(failed("seek", offset))?;
                    let mut buf = vec![0; self.range as usize];
                    file.read_exact(&mut buf)
                        .await
                        .map_err(failed("read", offset))?;
                    buf.len()
                }
                Method::StdInAsync => {
                    // Blocks the caller's only thread for the whole read.
                    let mut file = std::fs::File::open(self.dir.path().join("big"))
                        .map_err(failed("open", offset))?;
                    file.seek(SeekFrom::Start(offset))
                        .map_err(failed("seek", offset))?;
                    let mut buf = vec![0; self.range as usize];
                    file.read_exact(&mut buf).map_err(failed("read", offset))?;
                    if !self.control_stall.is_zero() {
                        std::thread::sleep(self.control_stall);
                    }
                    tokio::task::yield_now().await;
                    buf.len()
                }
            };
            total += got as u64;
            if Instant::now() >= end {
                return Ok(total);
            }
        }
    }
}

impl Isolation {
    /// Reads `range`-sized pieces at random offsets with `pread` on a plain thread
    /// until `end`, into `buffers` buffers in turn; the caller's runtime only awaits
    /// the total.
    async fn one_thread(&self, end: Instant, buffers: usize) -> Result<u64, String> {
        let (tx, rx) = futures::channel::oneshot::channel();
        let path = self.dir.path().join("big");
        let (size, range) = (self.size, self.range);
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            let read = (|| {
                let file = std::fs::File::open(path).map_err(failed("open", 0))?;
                let mut rng = rand::rngs::StdRng::seed_from_u64(99);
                let mut bufs = vec![vec![0_u8; range as usize]; buffers];
                let (mut total, mut turn) = (0, 0);
                while Instant::now() < end {
                    let offset = rng.random_range(0..=size - range);
                    let buf = &mut bufs[turn % buffers];
                    turn += 1;
                    file.read_exact_at(buf, offset)
                        .map_err(failed("pread", offset))?;
                    total += range;
                }
                Ok(total)
            })();
            let _ = tx.send(read);
        });
        rx.await
            .unwrap_or_else(|_| Err("the reading thread ended without a total".to_owned()))
    }
}

/// What a read loop says when `what` of the file failed, for the read at `offset`.
fn failed<E: fmt::Display>(what: &'static str, offset: u64) -> impl FnOnce(E) -> String {
    move |e| format!("{what} of \"big\" at {offset}: {e}")
}

/// Whether the control stalled the caller's ticker: its p99 lateness is at least 5x
/// the no-load run's and at least 2 ms more. If it did not, the benchmark measured
/// nothing (the reads were too short to matter on this machine).
///
/// # Errors
///
/// A message that says so, with both figures, when the control did not stall.
pub fn check_control_stalled(no_load: &Sample, control: &Sample) -> Result<(), String> {
    let idle = no_load.lateness_p99;
    let stalled = control.lateness_p99 >= (idle * 5).max(idle + Duration::from_millis(2));
    if stalled {
        return Ok(());
    }
    Err(format!(
        "the control ({}) did not stall the ticker: p99 {:.2} ms vs {:.2} ms with no load. \
         The benchmark is not measuring anything; use a larger --file-size or more --concurrency",
        control.method,
        control.lateness_p99.as_secs_f64() * 1e3,
        idle.as_secs_f64() * 1e3,
    ))
}

/// FNV-1a over `data`: CPU work that the optimizer cannot skip.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(method: Method, p99_ms: u64) -> Sample {
        Sample {
            method,
            ticks: 100,
            lateness_p50: Duration::from_millis(p99_ms / 2),
            lateness_p99: Duration::from_millis(p99_ms),
            lateness_max: Duration::from_millis(p99_ms),
            cpu_rounds_per_sec: 1.0,
            io_bytes_per_sec: 1.0,
        }
    }

    /// The file gone midway through a run ends the run of every reading method in
    /// an error naming the method and the call, where it panicked.
    #[test]
    fn a_file_gone_midway_is_an_error_naming_the_method() {
        let executor = io_executor::Builder::new()
            .name("iso-gone")
            .build()
            .unwrap();
        let bench = Isolation::new(executor.clone(), 1 << 20).unwrap();
        // Each method's first read, so that the clients that keep the file open
        // have it open: it goes from under them.
        for method in [Method::OursDedicated, Method::OpenDal, Method::ObjectStore] {
            bench.run(method, Duration::from_millis(5), 1).unwrap();
        }
        std::fs::remove_file(bench.dir.path().join("big")).unwrap();
        for method in Method::ALL.into_iter().filter(|m| *m != Method::NoLoad) {
            let err = bench.run(method, Duration::from_millis(5), 2).unwrap_err();
            assert!(err.starts_with(&format!("{method}: ")), "{err}");
            assert!(err.contains("\"big\""), "{err}");
        }
        drop(bench);
        executor.shutdown();
    }

    #[test]
    fn a_control_that_stalls_passes_the_check() {
        let idle = sample(Method::NoLoad, 1);
        assert!(check_control_stalled(&idle, &sample(Method::StdInAsync, 5)).is_ok());
        assert!(check_control_stalled(&idle, &sample(Method::StdInAsync, 40)).is_ok());
    }

    #[test]
    fn a_control_that_does_not_stall_fails_loudly() {
        let idle = sample(Method::NoLoad, 4);
        let err = check_control_stalled(&idle, &sample(Method::StdInAsync, 18)).unwrap_err();
        assert!(err.contains("did not stall the ticker"), "{err}");
        assert!(err.contains("p99 18.00 ms vs 4.00 ms"), "{err}");
        // 5x alone is not enough when the no-load figure is tiny: 2 ms more is needed.
        let idle = sample(Method::NoLoad, 0);
        assert!(check_control_stalled(&idle, &sample(Method::StdInAsync, 1)).is_err());
    }
}
