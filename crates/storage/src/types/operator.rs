//! [`Operator`]: what users call.

use std::fmt;
use std::ops::{Range, RangeBounds};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use io_executor::Executor;

use crate::raw::{self, Access, ByteRange, IoJob};
use crate::services::{Fs, Memory};
use crate::types::io_future::Task;
use crate::{
    BlockingOperator, Entry, Error, ErrorKind, IoFuture, Lister, Metadata, Reader, Result, Writer,
};

/// Tunables of an [`Operator`]; every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// [`read_ranges`](Operator::read_ranges): ranges closer than this many bytes are
    /// read as one. Default: 1 MiB for remote backends, 64 KiB for local ones.
    pub coalesce_gap: u64,
    /// [`read_ranges`](Operator::read_ranges): a merged range longer than this is read
    /// as parallel parts and joined with one copy. Default: off for local backends
    /// (a copy costs more than the parallel read gains), 8 MiB for remote ones.
    pub split_size: Option<u64>,
    /// [`Reader`]: bytes per chunk read ahead. Default: 4 MiB.
    pub chunk_size: usize,
    /// [`Reader`]: chunks read ahead of the consumer. At most
    /// `(prefetch + 1) * chunk_size` bytes are buffered per reader. Default: 2.
    pub prefetch: usize,
    /// [`Writer`]: bytes buffered before a chunk is handed to the executor.
    /// Default: 8 MiB.
    pub write_chunk_size: usize,
}

impl Options {
    /// Sets [`coalesce_gap`](Self::coalesce_gap).
    pub fn with_coalesce_gap(mut self, bytes: u64) -> Self {
        self.coalesce_gap = bytes;
        self
    }

    /// Sets [`split_size`](Self::split_size).
    pub fn with_split_size(mut self, bytes: Option<u64>) -> Self {
        self.split_size = bytes;
        self
    }

    /// Sets [`chunk_size`](Self::chunk_size) (at least 1).
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Sets [`prefetch`](Self::prefetch) (at least 1).
    pub fn with_prefetch(mut self, chunks: usize) -> Self {
        self.prefetch = chunks.max(1);
        self
    }

    /// Sets [`write_chunk_size`](Self::write_chunk_size) (at least 1).
    pub fn with_write_chunk_size(mut self, bytes: usize) -> Self {
        self.write_chunk_size = bytes.max(1);
        self
    }

    /// The defaults for a backend of `scheme`.
    pub fn for_scheme(scheme: &str) -> Self {
        let local = matches!(scheme, "fs" | "memory");
        Self {
            coalesce_gap: if local { 64 << 10 } else { 1 << 20 },
            split_size: if local { None } else { Some(8 << 20) },
            chunk_size: 4 << 20,
            prefetch: 2,
            write_chunk_size: 8 << 20,
        }
    }
}

/// The entry point: every operation on one backend, with all of its IO on an
/// [`Executor`].
///
/// Each operation returns an [`IoFuture`] whose IO has already started on the
/// executor when the call returns, so a caller can issue many operations and await
/// them later; dropping it cancels the operation. Readers, writers and listers keep
/// doing their IO on the executor on every later poll: the caller's runtime only
/// ever collects finished work.
///
/// An `Operator` is a cheap `Clone`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> storage::Result<()> {
/// let op = storage::Operator::from_uri("memory://")?;
/// op.write("a/b.parquet", vec![7_u8; 100]).await?;
/// assert_eq!(op.read_range("a/b.parquet", 10..20).await?.len(), 10);
///
/// let err = op.read_range("a/b.parquet", 0..4096).await.unwrap_err();
/// assert_eq!(err.kind(), storage::ErrorKind::RangeNotSatisfiable);
/// assert_eq!(
///     err.to_string(),
///     r#"read_range failed for "a/b.parquet" (range 0..4096, size 100): range not satisfiable"#
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Operator {
    access: Arc<dyn Access>,
    executor: Executor,
    options: Options,
}

impl Operator {
    /// An operator over `access`, doing its IO on [`Executor::global`].
    pub fn new(access: impl Access) -> Self {
        let options = Options::for_scheme(access.scheme());
        let executor = Executor::global();
        access.attach(&executor);
        Self {
            access: Arc::new(access),
            executor,
            options,
        }
    }

    /// An operator from a URI: `fs:///absolute/root`, `memory://`, or
    /// `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1` (see
    /// [`S3Builder::from_uri`](crate::services::s3::S3Builder::from_uri); credentials
    /// come from the `AWS_*` environment variables).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a malformed URI, a relative fs root, or S3
    /// without credentials; [`ErrorKind::Unsupported`] for an unknown scheme; and
    /// whatever opening the fs root fails with.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let invalid = |message: &str| {
            Error::new(ErrorKind::InvalidInput)
                .with_message(message.to_owned())
                .with_operation("from_uri")
                .with_path(uri)
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://..."))?;
        match scheme {
            "fs" | "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "the fs root must be an absolute path: fs:///abs/root",
                    ));
                }
                Ok(Self::new(
                    Fs::new(rest).map_err(|e| e.with_operation("from_uri"))?,
                ))
            }
            "s3" => {
                let s3 = crate::services::s3::S3Builder::from_uri(uri)?
                    .build()
                    .map_err(|e| e.with_operation("from_uri").with_path(uri))?;
                Ok(Self::new(s3))
            }
            "memory" => {
                if !rest.is_empty() {
                    return Err(invalid("memory:// takes no path"));
                }
                Ok(Self::new(Memory::new()))
            }
            other => Err(Error::new(ErrorKind::Unsupported)
                .with_message(format!("unknown scheme {other:?}"))
                .with_operation("from_uri")
                .with_path(uri)),
        }
    }

    /// The same operator, doing its IO on `executor`.
    pub fn with_executor(mut self, executor: Executor) -> Self {
        self.access.attach(&executor);
        self.executor = executor;
        self
    }

    /// The same operator, with `options`.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The executor that runs this operator's IO.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The tunables in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The backend's scheme: `fs`, `memory`, ...
    pub fn scheme(&self) -> &'static str {
        self.access.scheme()
    }

    /// The same operations for sync callers.
    pub fn blocking(&self) -> BlockingOperator {
        BlockingOperator::new(self.clone())
    }

    pub(crate) fn submit<T: Send + 'static>(&self, job: IoJob<T>) -> Task<T> {
        Task::submit(&self.executor, job)
    }

    /// Submits `job` now and returns its result with `operation` and `path` attached.
    fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        path: &str,
        job: IoJob<T>,
    ) -> IoFuture<T> {
        let task = self.submit(job);
        let path = path.to_owned();
        IoFuture::new(async move {
            task.await
                .map_err(|e| e.with_operation(operation).with_path(path))
        })
    }

    fn fail<T: Send + 'static>(operation: &'static str, path: &str, err: Error) -> IoFuture<T> {
        IoFuture::ready(Err(err.with_operation(operation).with_path(path)))
    }

    /// The whole content of file `path`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], [`ErrorKind::IsADirectory`], path errors (see
    /// [`normalize_path`](crate::raw::normalize_path)), executor errors.
    pub fn read(&self, path: &str) -> IoFuture<Bytes> {
        self.read_inner("read", path, ByteRange::FULL)
    }

    /// Bytes `range` of file `path`: `start..end`, `start..` (to the end), `..end`.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); a range ending beyond the end of the object is
    /// [`ErrorKind::RangeNotSatisfiable`] and the error states the object's size.
    pub fn read_range(&self, path: &str, range: impl RangeBounds<u64>) -> IoFuture<Bytes> {
        self.read_inner("read_range", path, ByteRange::new(range))
    }

    fn read_inner(&self, operation: &'static str, path: &str, range: ByteRange) -> IoFuture<Bytes> {
        match raw::normalize_file_path(path) {
            Ok(p) => self.run(operation, path, self.access.read(&p, range)),
            Err(e) => Self::fail(operation, path, e),
        }
    }

    /// Several ranges of file `path` at once (column chunks of a parquet file).
    ///
    /// Ranges closer than [`Options::coalesce_gap`] are read as one; merged ranges
    /// longer than [`Options::split_size`] are read as parallel parts. All reads are
    /// submitted at once and run concurrently on the executor. The result has one
    /// `Bytes` per requested range, in request order, each a zero-copy slice of the
    /// buffer its merged read filled.
    ///
    /// # Errors
    ///
    /// As [`read_range`](Self::read_range), for the first range that fails;
    /// [`ErrorKind::InvalidInput`] for a range whose start is after its end.
    pub fn read_ranges(&self, path: &str, ranges: Vec<Range<u64>>) -> IoFuture<Vec<Bytes>> {
        const OP: &str = "read_ranges";
        let normalized = match raw::normalize_file_path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(OP, path, e),
        };
        if let Some(bad) = ranges.iter().find(|r| r.start > r.end) {
            let err = Error::new(ErrorKind::InvalidInput)
                .with_message("range starts after it ends")
                .with_context("range", format!("{}..{}", bad.start, bad.end));
            return Self::fail(OP, path, err);
        }
        let plan = raw::plan(&ranges, self.options.coalesce_gap, self.options.split_size);
        let groups: Vec<Vec<Task<Bytes>>> = plan
            .groups
            .iter()
            .map(|group| {
                group
                    .parts
                    .iter()
                    .map(|part| {
                        self.submit(self.access.read(&normalized, ByteRange::new(part.clone())))
                    })
                    .collect()
            })
            .collect();
        let path = path.to_owned();
        IoFuture::new(async move {
            let context = |e: Error| e.with_operation(OP).with_path(path.clone());
            let mut buffers = Vec::with_capacity(groups.len());
            for parts in groups {
                let mut read = Vec::with_capacity(parts.len());
                for part in parts {
                    read.push(part.await.map_err(context)?);
                }
                buffers.push(join_parts(read));
            }
            Ok(plan
                .pieces
                .into_iter()
                .map(|(group, range)| buffers[group].slice(range))
                .collect())
        })
    }

    /// Metadata of `path`: a file, or a directory (`path` ending in `/`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], path errors, executor errors.
    pub fn stat(&self, path: &str) -> IoFuture<Metadata> {
        self.stat_as("stat", path)
    }

    fn stat_as(&self, operation: &'static str, path: &str) -> IoFuture<Metadata> {
        match raw::normalize_path(path) {
            Ok(p) => self.run(operation, path, self.access.stat(&p)),
            Err(e) => Self::fail(operation, path, e),
        }
    }

    /// Whether `path` exists.
    ///
    /// # Errors
    ///
    /// Any error of [`stat`](Self::stat) but [`ErrorKind::NotFound`].
    pub fn exists(&self, path: &str) -> IoFuture<bool> {
        let stat = self.stat_as("exists", path);
        IoFuture::new(async move {
            match stat.await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    /// Replaces file `path` with `data`, atomically (a concurrent reader sees the old
    /// content or the new one), creating parent directories as needed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::IsADirectory`] if `path` is a directory,
    /// [`ErrorKind::NotADirectory`] if a parent is a file, path errors, executor errors.
    pub fn write(&self, path: &str, data: impl Into<Bytes>) -> IoFuture<Metadata> {
        match raw::normalize_file_path(path) {
            Ok(p) => self.run("write", path, self.access.write(&p, data.into())),
            Err(e) => Self::fail("write", path, e),
        }
    }

    /// Removes file `path`, or empty directory `path/`. Deleting something that does
    /// not exist is not an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::DirectoryNotEmpty`], [`ErrorKind::IsADirectory`] (a directory
    /// named without its trailing `/`), path errors, executor errors.
    pub fn delete(&self, path: &str) -> IoFuture<()> {
        match raw::normalize_path(path) {
            Ok(p) if p.is_empty() => Self::fail(
                "delete",
                path,
                Error::new(ErrorKind::InvalidInput).with_message("cannot delete the root"),
            ),
            Ok(p) => self.run("delete", path, self.access.delete(&p)),
            Err(e) => Self::fail("delete", path, e),
        }
    }

    /// Removes directory `prefix` and everything below it (the root's contents for
    /// `""`). Removing something that does not exist is not an error.
    ///
    /// # Errors
    ///
    /// Path errors, executor errors, and whatever the backend fails with.
    pub fn remove_all(&self, prefix: &str) -> IoFuture<()> {
        match raw::normalize_dir_path(prefix) {
            Ok(p) => self.run("remove_all", prefix, self.access.remove_all(&p)),
            Err(e) => Self::fail("remove_all", prefix, e),
        }
    }

    /// Creates directory `path` and its parents.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotADirectory`] if a file is in the way, path errors, executor errors.
    pub fn create_dir(&self, path: &str) -> IoFuture<()> {
        match raw::normalize_dir_path(path) {
            Ok(p) => self.run("create_dir", path, self.access.create_dir(&p)),
            Err(e) => Self::fail("create_dir", path, e),
        }
    }

    /// Copies file `from` over file `to` (atomically for readers of `to`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if `from` is missing, path errors, executor errors.
    pub fn copy(&self, from: &str, to: &str) -> IoFuture<()> {
        self.two_files("copy", from, to, |a, f, t| a.copy(f, t))
    }

    /// Moves file `from` to `to`. Atomic on fs and memory; see the backend for others.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if `from` is missing, path errors, executor errors.
    pub fn rename(&self, from: &str, to: &str) -> IoFuture<()> {
        self.two_files("rename", from, to, |a, f, t| a.rename(f, t))
    }

    /// Runs an operation on two file paths; a bad path is reported under its own name.
    fn two_files(
        &self,
        operation: &'static str,
        from: &str,
        to: &str,
        job: impl FnOnce(&dyn Access, &str, &str) -> IoJob<()>,
    ) -> IoFuture<()> {
        match (raw::normalize_file_path(from), raw::normalize_file_path(to)) {
            (Ok(f), Ok(t)) => self.run(operation, from, job(&*self.access, &f, &t)),
            (Err(e), _) => Self::fail(operation, from, e),
            (_, Err(e)) => Self::fail(operation, to, e),
        }
    }

    /// The entries directly in directory `path` (files, and directories ending in `/`).
    /// A missing directory lists as empty.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotADirectory`], path errors, executor errors.
    pub fn list(&self, path: &str) -> IoFuture<Vec<Entry>> {
        self.collect(self.lister_inner(path, false))
    }

    /// Every entry below directory `path`, at any depth.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub fn list_recursive(&self, path: &str) -> IoFuture<Vec<Entry>> {
        self.collect(self.lister_inner(path, true))
    }

    fn collect(&self, lister: IoFuture<Lister>) -> IoFuture<Vec<Entry>> {
        IoFuture::new(async move {
            let mut lister = lister.await?;
            let mut entries = Vec::new();
            while let Some(entry) = lister.next_entry().await? {
                entries.push(entry);
            }
            Ok(entries)
        })
    }

    /// A stream of the entries directly in directory `path`, a page at a time, the
    /// next page read on the executor while the caller consumes this one.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub fn lister(&self, path: &str) -> IoFuture<Lister> {
        self.lister_inner(path, false)
    }

    /// [`lister`](Self::lister), at any depth.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub fn lister_recursive(&self, path: &str) -> IoFuture<Lister> {
        self.lister_inner(path, true)
    }

    fn lister_inner(&self, path: &str, recursive: bool) -> IoFuture<Lister> {
        self.open_handle(
            "list",
            path,
            raw::normalize_dir_path(path),
            |access, p| access.list(p, recursive),
            Lister::new,
        )
    }

    /// Submits the job that opens a handle (reader, writer, lister) now; the future
    /// builds the handle from the job's result.
    fn open_handle<R, H>(
        &self,
        operation: &'static str,
        path: &str,
        normalized: Result<String>,
        job: impl FnOnce(&dyn Access, &str) -> IoJob<R>,
        make: impl FnOnce(Executor, String, R) -> H + Send + 'static,
    ) -> IoFuture<H>
    where
        R: Send + 'static,
        H: Send + 'static,
    {
        let normalized = match normalized {
            Ok(p) => p,
            Err(e) => return Self::fail(operation, path, e),
        };
        let task = self.submit(job(&*self.access, &normalized));
        let executor = self.executor.clone();
        let path = path.to_owned();
        IoFuture::new(async move {
            let raw = task
                .await
                .map_err(|e| e.with_operation(operation).with_path(path.clone()))?;
            Ok(make(executor, path, raw))
        })
    }

    /// A reader of file `path`: `AsyncRead + AsyncSeek` (tokio and futures) and a
    /// `Stream` of `Bytes`, whose chunks are read on the executor ahead of the
    /// consumer (see [`Options::chunk_size`] and [`Options::prefetch`]).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn reader(&self, path: &str) -> IoFuture<Reader> {
        let options = self.options;
        self.open_handle(
            "reader",
            path,
            raw::normalize_file_path(path),
            |access, p| access.open(p),
            move |executor, path, source| Reader::new(executor, path, source, options),
        )
    }

    /// A writer of file `path`: `AsyncWrite` (tokio and futures). Data goes to the
    /// executor in chunks; [`Writer::close`] commits atomically. Dropping it without
    /// `close` leaves the target untouched.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn writer(&self, path: &str) -> IoFuture<Writer> {
        let chunk = self.options.write_chunk_size;
        self.open_handle(
            "writer",
            path,
            raw::normalize_file_path(path),
            |access, p| access.writer(p),
            move |executor, path, raw| Writer::new(executor, path, raw, chunk),
        )
    }
}

/// One buffer from the parts a group was read in: the part itself, or one copy.
fn join_parts(mut parts: Vec<Bytes>) -> Bytes {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut joined = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
    for part in parts {
        joined.extend_from_slice(&part);
    }
    joined.freeze()
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("access", &self.access)
            .field("executor", &self.executor)
            .field("options", &self.options)
            .finish()
    }
}
