//! The fs workloads: a 16 MiB file and a 128 MiB file read (and written) by every
//! method, side by side.

use std::fmt;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::AsyncBufReadExt as _;
use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};
use tokio::io::AsyncBufReadExt as _;

use crate::{Got, failed};

/// The 16 MiB file every single-read workload uses.
pub const SMALL: u64 = 16 << 20;
/// The 128 MiB file the parallel workloads read.
pub const BIG: u64 = 128 << 20;
/// The buffer of every buffered reader but ours: the chunk our fs `Reader` reads
/// (1 MiB), so that every reader fills its buffer with reads of the same size, and
/// a buffer that fits the CPU's cache is no advantage of ours alone.
const BUF: usize = 1 << 20;

/// The sizes a fixture's objects have: `small` for the single reads and writes,
/// `8 * small` for the parallel reads, ranges of `small / 2`. The default is the
/// seed's (16 MiB); tests scale it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The small object's size (at least 64 KiB).
    pub small: u64,
}

impl Default for Sizes {
    fn default() -> Self {
        Self { small: SMALL }
    }
}

impl Sizes {
    /// The big object's size.
    pub fn big(&self) -> u64 {
        self.small * 8
    }

    /// The range size of the range workloads.
    pub fn half(&self) -> u64 {
        self.small / 2
    }

    /// The bytes one iteration of `workload` moves.
    pub fn bytes(&self, workload: Workload) -> u64 {
        match workload {
            Workload::Read | Workload::BufRead | Workload::Write => self.small,
            Workload::RangeRead | Workload::ReadHalf => self.half(),
            Workload::ParallelRangeRead(n) => n as u64 * self.half(),
            Workload::RangeRead4k => 4096,
        }
    }
}

/// One workload of the seed's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The whole 16 MiB file.
    Read,
    /// 8 MiB at a random offset in the first 8 MiB.
    RangeRead,
    /// The first 8 MiB.
    ReadHalf,
    /// The whole file through a buffered reader with 1 MiB of buffer: std's, tokio's
    /// and OpenDAL's readers behind a `BufReader`, object_store's own `BufReader`, our
    /// `Reader` itself (it reads ahead in 1 MiB chunks, eight at a time).
    BufRead,
    /// Writing 16 MiB.
    Write,
    /// N concurrent 8 MiB range reads of the 128 MiB file, awaited together.
    ParallelRangeRead(usize),
    /// 4 KiB at a random offset.
    RangeRead4k,
}

impl Workload {
    /// Every workload, in the seed's order.
    pub const ALL: [Workload; 10] = [
        Workload::Read,
        Workload::RangeRead,
        Workload::ReadHalf,
        Workload::BufRead,
        Workload::Write,
        Workload::ParallelRangeRead(2),
        Workload::ParallelRangeRead(4),
        Workload::ParallelRangeRead(8),
        Workload::ParallelRangeRead(16),
        Workload::RangeRead4k,
    ];

    /// The workload's name, as in the seed (`parallel_range_read_4`).
    pub fn name(&self) -> String {
        match self {
            Workload::Read => "read".into(),
            Workload::RangeRead => "range_read".into(),
            Workload::ReadHalf => "read_half".into(),
            Workload::BufRead => "buf_read".into(),
            Workload::Write => "write".into(),
            Workload::ParallelRangeRead(n) => format!("parallel_range_read_{n}"),
            Workload::RangeRead4k => "range_read_4k".into(),
        }
    }

    /// Bytes moved by one iteration.
    pub fn bytes(&self) -> u64 {
        Sizes::default().bytes(*self)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Who does the IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Our `Operator` on a dedicated pool.
    OursDedicated,
    /// Our `Operator` on `Executor::global()`.
    OursGlobal,
    /// Our `Operator` on the caller's own runtime.
    OursCallerRuntime,
    /// `std::fs` on the calling thread (scoped threads for the parallel workloads).
    Std,
    /// `tokio::fs`.
    TokioFs,
    /// OpenDAL's fs service.
    OpenDal,
    /// object_store's `LocalFileSystem`.
    ObjectStore,
    /// Our `Operator` on the dedicated pool with buffer pooling off (an ablation:
    /// every read allocates a fresh buffer).
    OursUnpooled,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 7] = [
        Method::OursDedicated,
        Method::OursGlobal,
        Method::OursCallerRuntime,
        Method::Std,
        Method::TokioFs,
        Method::OpenDal,
        Method::ObjectStore,
    ];

    /// Methods that isolate one design choice, compared with `OursDedicated`.
    pub const ABLATIONS: [Method; 2] = [Method::OursDedicated, Method::OursUnpooled];

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::OursDedicated => "ours_dedicated",
            Method::OursGlobal => "ours_global",
            Method::OursCallerRuntime => "ours_caller_rt",
            Method::Std => "std",
            Method::TokioFs => "tokio_fs",
            Method::OpenDal => "opendal",
            Method::ObjectStore => "object_store",
            Method::OursUnpooled => "ours_unpooled",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The files and every method's client, built once.
#[derive(Debug)]
pub struct Fixture {
    dir: tempfile::TempDir,
    /// The caller: a multi-thread runtime, as a query engine's would be.
    pub caller: tokio::runtime::Runtime,
    dedicated: storage::Operator,
    unpooled: storage::Operator,
    global: storage::Operator,
    on_caller: storage::Operator,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
    payload: Bytes,
    sizes: Sizes,
    /// Random offsets; behind a mutex so `run` can take `&self`.
    rng: std::sync::Mutex<rand::rngs::StdRng>,
}

/// The files the write workload leaves, one per client (ours, std, tokio, OpenDAL,
/// object_store), all kept until the fixture goes.
const WRITTEN_FILES: u64 = 5;

/// The disk the fs suite needs: its two files, the write workload's files, and a
/// temporary one beside them while a write commits.
fn disk_needed(sizes: &Sizes) -> u64 {
    sizes
        .big()
        .saturating_add(sizes.small.saturating_mul(2 + WRITTEN_FILES))
}

impl Fixture {
    /// Writes the 16 MiB and 128 MiB files to a new temp directory and builds every
    /// client over it; ours uses `dedicated` for its dedicated-pool method.
    ///
    /// # Panics
    ///
    /// If the temp directory, the runtimes or the clients cannot be created.
    pub fn new(dedicated: Executor) -> Self {
        Self::with_sizes(dedicated, Sizes::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`new`](Self::new), with objects of `sizes`.
    ///
    /// # Errors
    ///
    /// What [`new`](Self::new) panics for: a message saying what could not be made.
    pub fn with_sizes(dedicated: Executor, sizes: Sizes) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        let needed = disk_needed(&sizes);
        crate::check_free_space(dir.path(), needed, "the fs suite", "--size")?;
        // The big file's bytes while they are written, then up to as much again
        // in reads in flight (16 halves of `small`), and the write payload; and
        // the files themselves, on a tmpfs.
        let files_in_memory = if crate::in_memory(dir.path()) {
            needed
        } else {
            0
        };
        crate::check_free_memory(
            sizes
                .big()
                .saturating_mul(2)
                .saturating_add(sizes.small)
                .saturating_add(files_in_memory),
            "the fs suite",
            "--size",
        )?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let mut data = vec![0_u8; sizes.big() as usize];
        rng.fill(&mut data[..]);
        let small = sizes.small as usize;
        for (name, bytes) in [("small", &data[..small]), ("big", &data[..])] {
            let path = dir.path().join(name);
            crate::write_synced(&path, bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let payload = Bytes::copy_from_slice(&data[..small]);
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build the caller's runtime: {e}"))?;
        let fs = storage::services::Fs::new(dir.path()).map_err(|e| e.to_string())?;
        let no_pool = fs
            .clone()
            .with_buffer_pool(storage::raw::BufferPool::new(0));
        let unpooled = storage::Operator::new(no_pool).with_executor(dedicated.clone());
        let dedicated = storage::Operator::new(fs.clone()).with_executor(dedicated);
        let global = storage::Operator::new(fs.clone()).with_executor(Executor::global());
        let on_caller = storage::Operator::new(fs)
            .with_executor(Executor::from_handle(caller.handle().clone()));
        let root = dir
            .path()
            .to_str()
            .ok_or_else(|| format!("{}: the temp dir is not UTF-8", dir.path().display()))?;
        let opendal = opendal::Operator::new(opendal::services::Fs::default().root(root))
            .map_err(|e| format!("opendal: {e}"))?
            .finish();
        let object_store: Arc<dyn ObjectStore> = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path())
                .map_err(|e| format!("object_store: {e}"))?,
        );
        Ok(Self {
            dir,
            caller,
            dedicated,
            unpooled,
            global,
            on_caller,
            opendal,
            object_store,
            payload,
            sizes,
            rng: std::sync::Mutex::new(rng),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn random_offset(&self, below: u64) -> u64 {
        self.rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .random_range(0..below)
    }

    /// One iteration of `workload` by `method`; returns the bytes moved (checked to
    /// be the workload's size).
    ///
    /// # Errors
    ///
    /// If any IO fails or moves the wrong number of bytes: a line that names the
    /// method, the workload, the call and the file.
    pub fn run(&self, method: Method, workload: Workload) -> Result<u64, String> {
        let (offset, len) = self.span(workload);
        let moved = match method {
            Method::Std => self.run_std(workload, offset, len),
            _ => self.caller.block_on(self.run_async(
                method,
                workload,
                offset,
                len,
                &mut |_, _, _| {},
                false,
            )),
        }
        .map_err(|e| format!("{method} {workload}: {e}"))?;
        crate::check_moved(
            format_args!("{method} {workload}"),
            moved,
            self.sizes.bytes(workload),
        )
    }

    /// Runs `workload` by `method` once as [`run`](Self::run) does, and compares
    /// the bytes of every read with the file's (read with `pread`): a method that
    /// returned other bytes would look fast for the wrong reason. `std` is the
    /// reference; `buf_read` and `write` are not compared (their bytes are counted,
    /// and a write's are what it was given).
    ///
    /// # Errors
    ///
    /// The first read whose bytes differ from the file's, or an IO error as
    /// [`run`](Self::run)'s.
    pub fn check(&self, method: Method, workload: Workload) -> Result<(), String> {
        if method == Method::Std {
            return Ok(());
        }
        let (offset, len) = self.span(workload);
        let mut wrong = None;
        let mut compare = |name: &str, at: u64, got: &Got| {
            if wrong.is_some() {
                return;
            }
            let mut expected = vec![0_u8; got.len() as usize];
            let read = std::fs::File::open(self.path(name)).and_then(|file| {
                std::os::unix::fs::FileExt::read_exact_at(&file, &mut expected, at)
            });
            wrong = match read {
                Err(e) => Some(format!(
                    "{method} {workload}: pread {name:?} (the reference): {e}"
                )),
                Ok(()) if got.to_bytes() != expected => Some(format!(
                    "{method} {workload}: the {} bytes read at {at} of {name:?} are not the file's",
                    expected.len()
                )),
                Ok(()) => None,
            };
        };
        self.caller
            .block_on(self.run_async(method, workload, offset, len, &mut compare, true))
            .map_err(|e| format!("{method} {workload}: {e}"))?;
        wrong.map_or(Ok(()), Err)
    }

    /// Where one iteration of `workload` reads in `small`: a random offset for
    /// the range reads.
    fn span(&self, workload: Workload) -> (u64, u64) {
        let (small, half) = (self.sizes.small, self.sizes.half());
        match workload {
            Workload::RangeRead => (self.random_offset(half), half),
            Workload::RangeRead4k => (self.random_offset(small - 4096), 4096),
            Workload::ReadHalf => (0, half),
            _ => (0, small),
        }
    }

    fn ours(&self, method: Method) -> &storage::Operator {
        match method {
            Method::OursGlobal => &self.global,
            Method::OursCallerRuntime => &self.on_caller,
            Method::OursUnpooled => &self.unpooled,
            _ => &self.dedicated,
        }
    }

    fn run_std(&self, workload: Workload, offset: u64, len: u64) -> Result<u64, String> {
        let read_at = |name: &str, offset: u64, len: u64| -> Result<u64, String> {
            let mut file = std::fs::File::open(self.path(name)).map_err(failed("open", name))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(failed("seek", name))?;
            let mut buf = Vec::with_capacity(len as usize);
            file.take(len)
                .read_to_end(&mut buf)
                .map_err(failed("read", name))?;
            Ok(buf.len() as u64)
        };
        Ok(match workload {
            Workload::Read => std::fs::read(self.path("small"))
                .map_err(failed("read", "small"))?
                .len() as u64,
            Workload::RangeRead | Workload::ReadHalf | Workload::RangeRead4k => {
                read_at("small", offset, len)?
            }
            Workload::BufRead => {
                let file =
                    std::fs::File::open(self.path("small")).map_err(failed("open", "small"))?;
                let mut reader = std::io::BufReader::with_capacity(BUF, file);
                let mut total = 0;
                loop {
                    let n = reader.fill_buf().map_err(failed("read", "small"))?.len();
                    if n == 0 {
                        break total;
                    }
                    reader.consume(n);
                    total += n as u64;
                }
            }
            Workload::Write => {
                std::fs::write(self.path("out-std"), &self.payload)
                    .map_err(failed("write", "out-std"))?;
                self.sizes.small
            }
            Workload::ParallelRangeRead(n) => std::thread::scope(|s| {
                let half = self.sizes.half();
                let reads: Vec<_> = (0..n as u64)
                    .map(|i| s.spawn(move || read_at("big", i * half, half)))
                    .collect();
                reads
                    .into_iter()
                    .map(|r| {
                        r.join()
                            .unwrap_or_else(|_| Err("a reading thread panicked".to_owned()))
                    })
                    .sum::<Result<u64, String>>()
            })?,
        })
    }

    /// One iteration by `method` (not `std`), each read's name, offset and bytes
    /// handed to `visit` (the parallel reads' only when `checking`); returns the
    /// bytes moved.
    async fn run_async(
        &self,
        method: Method,
        workload: Workload,
        offset: u64,
        len: u64,
        visit: &mut dyn FnMut(&str, u64, &Got),
        checking: bool,
    ) -> Result<u64, String> {
        Ok(match workload {
            Workload::ParallelRangeRead(n) if checking => {
                let half = self.sizes.half();
                let reads = (0..n as u64).map(|i| self.range(method, "big", i * half, half));
                let got = futures::future::join_all(reads)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<Got>, String>>()?;
                for (i, g) in got.iter().enumerate() {
                    visit("big", i as u64 * half, g);
                }
                got.iter().map(Got::len).sum()
            }
            Workload::ParallelRangeRead(n) => {
                // Timed: each read's buffer let go as soon as it is read, as a
                // reader that consumes it would (held until the last came back,
                // the reads would need more memory than they do).
                let half = self.sizes.half();
                let reads = (0..n as u64).map(|i| async move {
                    Ok::<_, String>(self.range(method, "big", i * half, half).await?.len())
                });
                futures::future::join_all(reads)
                    .await
                    .into_iter()
                    .sum::<Result<u64, String>>()?
            }
            Workload::Read => {
                let got = self.whole(method, "small").await?;
                visit("small", 0, &got);
                got.len()
            }
            Workload::RangeRead | Workload::ReadHalf | Workload::RangeRead4k => {
                let got = self.range(method, "small", offset, len).await?;
                visit("small", offset, &got);
                got.len()
            }
            Workload::BufRead => self.buf_read(method).await?,
            Workload::Write => self.write(method).await?,
        })
    }

    async fn whole(&self, method: Method, name: &str) -> Result<Got, String> {
        Ok(match method {
            Method::TokioFs => Got::Bytes(
                tokio::fs::read(self.path(name))
                    .await
                    .map_err(failed("read", name))?
                    .into(),
            ),
            Method::OpenDal => Got::Buffer(
                self.opendal
                    .read(name)
                    .await
                    .map_err(failed("read", name))?,
            ),
            Method::ObjectStore => {
                let path = object_store::path::Path::from(name);
                let get = self
                    .object_store
                    .get(&path)
                    .await
                    .map_err(failed("get", name))?;
                Got::Bytes(get.bytes().await.map_err(failed("get (body)", name))?)
            }
            _ => Got::Bytes(
                self.ours(method)
                    .read(name)
                    .await
                    .map_err(failed("read", name))?,
            ),
        })
    }

    async fn range(
        &self,
        method: Method,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Got, String> {
        let range = offset..offset + len;
        Ok(match method {
            Method::TokioFs => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut file = tokio::fs::File::open(self.path(name))
                    .await
                    .map_err(failed("open", name))?;
                file.seek(SeekFrom::Start(offset))
                    .await
                    .map_err(failed("seek", name))?;
                let mut buf = Vec::with_capacity(len as usize);
                file.take(len)
                    .read_to_end(&mut buf)
                    .await
                    .map_err(failed("read", name))?;
                Got::Bytes(buf.into())
            }
            Method::OpenDal => Got::Buffer(
                self.opendal
                    .read_with(name)
                    .range(range)
                    .await
                    .map_err(failed("read", name))?,
            ),
            Method::ObjectStore => {
                let path = object_store::path::Path::from(name);
                Got::Bytes(
                    self.object_store
                        .get_range(&path, range)
                        .await
                        .map_err(failed("get_range", name))?,
                )
            }
            _ => Got::Bytes(
                self.ours(method)
                    .read_range(name, range)
                    .await
                    .map_err(failed("read_range", name))?,
            ),
        })
    }

    async fn buf_read(&self, method: Method) -> Result<u64, String> {
        let name = "small";
        let drained = match method {
            Method::TokioFs => {
                let file = tokio::fs::File::open(self.path(name))
                    .await
                    .map_err(failed("open", name))?;
                drain_tokio(tokio::io::BufReader::with_capacity(BUF, file)).await
            }
            Method::OpenDal => {
                let reader = self
                    .opendal
                    .reader(name)
                    .await
                    .map_err(failed("reader", name))?;
                let read = reader
                    .into_futures_async_read(0..self.sizes.small)
                    .await
                    .map_err(failed("reader", name))?;
                drain_futures(futures::io::BufReader::with_capacity(BUF, read)).await
            }
            Method::ObjectStore => {
                let path = object_store::path::Path::from(name);
                let meta = self
                    .object_store
                    .head(&path)
                    .await
                    .map_err(failed("head", name))?;
                let reader = object_store::buffered::BufReader::with_capacity(
                    Arc::clone(&self.object_store),
                    &meta,
                    BUF,
                );
                drain_tokio(reader).await
            }
            // Our Reader is itself a buffered reader (AsyncBufRead over its 1 MiB
            // chunks), as object_store's BufReader is for object_store.
            _ => {
                drain_tokio(
                    self.ours(method)
                        .reader(name)
                        .await
                        .map_err(failed("reader", name))?,
                )
                .await
            }
        };
        drained.map_err(failed("read", name))
    }

    async fn write(&self, method: Method) -> Result<u64, String> {
        let data = self.payload.clone();
        match method {
            Method::TokioFs => tokio::fs::write(self.path("out-tokio"), &data)
                .await
                .map_err(failed("write", "out-tokio"))?,
            Method::OpenDal => drop(
                self.opendal
                    .write("out-opendal", data)
                    .await
                    .map_err(failed("write", "out-opendal"))?,
            ),
            Method::ObjectStore => {
                let path = object_store::path::Path::from("out-object-store");
                drop(
                    self.object_store
                        .put(&path, data.into())
                        .await
                        .map_err(failed("put", "out-object-store"))?,
                );
            }
            _ => drop(
                self.ours(method)
                    .write("out-ours", data)
                    .await
                    .map_err(failed("write", "out-ours"))?,
            ),
        }
        Ok(self.sizes.small)
    }
}

async fn drain_tokio(mut reader: impl tokio::io::AsyncBufRead + Unpin) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        let n = reader.fill_buf().await?.len();
        if n == 0 {
            return Ok(total);
        }
        reader.consume(n);
        total += n as u64;
    }
}

async fn drain_futures(mut reader: impl futures::AsyncBufRead + Unpin) -> std::io::Result<u64> {
    let mut total = 0;
    loop {
        let n = reader.fill_buf().await?.len();
        if n == 0 {
            return Ok(total);
        }
        reader.consume_unpin(n);
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method's reads, in every workload, return the file's bytes (each
    /// compared with a `pread` of the file).
    #[test]
    fn every_method_reads_the_files_bytes() {
        let executor = io_executor::Builder::new()
            .name("fs-check")
            .build()
            .unwrap();
        let fixture = Fixture::with_sizes(executor.clone(), Sizes { small: 1 << 20 }).unwrap();
        for workload in Workload::ALL {
            for method in Method::ALL {
                fixture.check(method, workload).unwrap();
            }
        }
        drop(fixture);
        executor.shutdown();
    }

    /// The disk the suite checks for before it starts holds what its runs leave:
    /// every client's written file, and a write's temporary beside them.
    #[test]
    fn the_disk_checked_for_holds_every_written_file() {
        let executor = io_executor::Builder::new().name("fs-disk").build().unwrap();
        let sizes = Sizes { small: 1 << 20 };
        let fixture = Fixture::with_sizes(executor.clone(), sizes).unwrap();
        for method in Method::ALL {
            fixture.run(method, Workload::Write).unwrap();
        }
        let held: u64 = std::fs::read_dir(fixture.dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(
            held + sizes.small <= disk_needed(&sizes),
            "{held} bytes held, and a temporary file, against {}",
            disk_needed(&sizes)
        );
        drop(fixture);
        executor.shutdown();
    }

    /// A file gone midway through a run (a temp dir cleaned under it) ends the run
    /// of every method, of every read workload, in an error that names the method,
    /// the workload and the file, where it panicked.
    #[test]
    fn a_file_gone_midway_is_an_error_naming_method_workload_and_file() {
        let executor = io_executor::Builder::new().name("fs-gone").build().unwrap();
        let fixture = Fixture::with_sizes(executor.clone(), Sizes { small: 1 << 20 }).unwrap();
        std::fs::remove_file(fixture.path("small")).unwrap();
        std::fs::remove_file(fixture.path("big")).unwrap();
        for workload in Workload::ALL.into_iter().filter(|w| *w != Workload::Write) {
            for method in Method::ALL {
                let err = fixture.run(method, workload).unwrap_err();
                assert!(
                    err.starts_with(&format!("{method} {workload}: "))
                        && (err.contains("\"small\"") || err.contains("\"big\"")),
                    "{err}"
                );
                assert!(fixture.check(method, workload).is_err() || method == Method::Std);
            }
        }
        drop(fixture);
        executor.shutdown();
    }
}
