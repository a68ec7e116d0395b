//! [`Operator`]: what users call.

use std::fmt;
use std::ops::{Range, RangeBounds};
use std::os::unix::ffi::OsStringExt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use io_executor::Executor;

use crate::raw::{self, Access, ByteRange, IoJob, ListArgs, OpenArgs, ReadArgs};
use crate::services::{Fs, Memory};
use crate::types::burst::Burst;
use crate::types::io_future::{OpenTask, Opener, Task};
use crate::types::op_with::{
    ListerWith, ReadRangesWith, ReadWith, ReaderWith, StatWith, TransferWith, WriteWith, WriterWith,
};
use crate::types::open_object::OpenObject;
use crate::{
    BlockingOperator, Conditions, Entry, Error, ErrorKind, IoFuture, Lister, Metadata, Reader,
    Result, WriteOptions, Writer,
};

/// Tunables of an [`Operator`]; every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// [`read_ranges`](Operator::read_ranges): ranges at most this many bytes apart
    /// are read as one (with 0, only ranges that touch or overlap). Default: 1 MiB for remote backends, 64 KiB for local ones.
    pub coalesce_gap: u64,
    /// [`read_ranges`](Operator::read_ranges): a merged range longer than this is read
    /// as parallel parts and joined with one copy. Default: off for local backends
    /// (a copy costs more than the parallel read gains), 8 MiB for remote ones.
    pub split_size: Option<u64>,
    /// [`Reader`]: bytes per chunk read ahead. Default: 1 MiB for fs, 4 MiB for
    /// the others (a chunk is a request on S3, a zero-copy slice in memory). It is
    /// also the default of [`ReaderWith::whole_up_to`](crate::ReaderWith::whole_up_to):
    /// a file of at most 1 MiB is read whole by the job that opens it, a larger one
    /// in chunks.
    ///
    /// File chunks are small so that a reader's buffers stay in the CPU's cache: the
    /// pool hands the buffer the consumer just finished back to the next read, and
    /// the kernel's copy into a cached buffer is cheaper than into one evicted since
    /// its last use. On a 2-core AMD EPYC, a sequential read of a 16 MiB file through
    /// the reader ran at 0.83-0.94x `std`'s `BufReader` with 4 MiB chunks and two read
    /// ahead (12 MiB of buffers), and at 1.13-1.33x with 1 MiB chunks and four read
    /// ahead (see `docs/benchmarks.md`), both against a 4 MiB `BufReader`.
    pub chunk_size: usize,
    /// [`Reader`]: chunks read ahead of the consumer. At most
    /// `(prefetch + 1) * chunk_size` bytes are buffered per reader, beside a first
    /// chunk read whole (see [`Reader`]). Default: 8 for
    /// fs (9 MiB buffered), 2 for the others (12 MiB).
    ///
    /// More chunks in flight keep both blocking threads copying: on a 2-core Intel
    /// Xeon, against `std`'s `BufReader` with the same 1 MiB of buffer, a 16 MiB
    /// file read at 0.77-0.78x with four ahead, 0.87-0.89x with six, 0.91-0.94x
    /// with eight and 0.94-0.95x with twelve (a scratch program, 200 alternated
    /// rounds, two runs). The price: one reader keeps eight blocking jobs in flight,
    /// all the blocking threads of the default pool on two cores, so a job
    /// submitted behind them waits for a chunk read; set fewer where a scan should
    /// leave threads free for other IO.
    pub prefetch: usize,
    /// [`Writer`]: bytes buffered before a chunk is handed to the executor.
    /// Default: 8 MiB.
    pub write_chunk_size: usize,
    /// [`read_ranges`](Operator::read_ranges): ranges are merged into one read only
    /// while the merged read stays at most this long, and wastes (reads between the
    /// ranges) no more bytes than the ranges it serves hold. Default: 64 MiB.
    pub max_merge_size: u64,
    /// The largest buffer one read may fill: a longer range is
    /// [`ErrorKind::InvalidInput`] (read it with a [`Reader`], in chunks, instead).
    /// It bounds merged reads too: [`read_ranges`](Operator::read_ranges) merges
    /// ranges (touching, overlapping or close) only into reads of at most this
    /// many bytes, and the results of one call share a buffer only within it
    /// (memory hands out slices of the object it holds, reading nothing).
    /// Default: 4 GiB.
    pub max_buffer_size: u64,
    /// Small reads of files the backend already holds open are first tried on the
    /// calling thread, in a way that cannot wait (fs: `preadv2(RWF_NOWAIT)` of pages
    /// in the page cache, on a local filesystem), and go to the executor only when
    /// that fails: no hand-off for the common case of hot pages. Nothing on the
    /// caller's thread can block on a device or a network. Small reads issued
    /// together are read together (see [`Operator::read_range`]'s bursts); off,
    /// every read starts when it is issued. Default: on.
    pub read_now: bool,
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

    /// Sets [`max_merge_size`](Self::max_merge_size).
    pub fn with_max_merge_size(mut self, bytes: u64) -> Self {
        self.max_merge_size = bytes;
        self
    }

    /// Sets [`read_now`](Self::read_now).
    pub fn with_read_now(mut self, read_now: bool) -> Self {
        self.read_now = read_now;
        self
    }

    /// Sets [`max_buffer_size`](Self::max_buffer_size) (at least 1).
    pub fn with_max_buffer_size(mut self, bytes: u64) -> Self {
        self.max_buffer_size = bytes.max(1);
        self
    }

    /// The defaults for a backend of `scheme`.
    pub fn for_scheme(scheme: &str) -> Self {
        let local = matches!(scheme, "fs" | "memory");
        Self {
            coalesce_gap: if local { 64 << 10 } else { 1 << 20 },
            split_size: if local { None } else { Some(8 << 20) },
            chunk_size: if scheme == "fs" { 1 << 20 } else { 4 << 20 },
            prefetch: if scheme == "fs" { 8 } else { 2 },
            write_chunk_size: 8 << 20,
            max_merge_size: 64 << 20,
            max_buffer_size: 4 << 30,
            read_now: true,
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
    /// Set when the operator is made with an executor; otherwise
    /// [`Executor::global`] on first use, so an operator that is given its own
    /// executor never starts the global pool.
    executor: OnceLock<Executor>,
    options: Options,
    /// Small reads issued and not started yet (see [`Burst`]); its reads are served
    /// with this operator's executor and options, so an operator given others gets
    /// a burst of its own.
    burst: Arc<Burst>,
}

impl Operator {
    /// An operator over `access`, doing its IO on [`Executor::global`] unless
    /// [`with_executor`](Self::with_executor) gives it another (the global pool is
    /// only started when this operator first needs it).
    pub fn new(access: impl Access) -> Self {
        let options = Options::for_scheme(access.scheme());
        Self {
            access: Arc::new(access),
            executor: OnceLock::new(),
            options,
            burst: Arc::default(),
        }
    }

    /// An operator from a URI: `fs:///absolute/root` (or `file://`; its path
    /// percent-decoded, as a URL's is: `fs:///data/ware%20house`), `memory://`, or
    /// `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1` (see
    /// [`S3Builder::from_uri`](crate::services::s3::S3Builder::from_uri); credentials
    /// come from the AWS SDKs' provider chain, fetched by the first request: the
    /// environment, profiles, web identity, container, instance metadata).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a malformed URI, a relative fs root or an fs
    /// URI with a query or a fragment (and,
    /// built without the `credential-chain` feature, S3 without credentials in the
    /// `AWS_*` variables); [`ErrorKind::Unsupported`] for an unknown scheme; and
    /// whatever opening the fs root fails with. A missing fs root is not an error:
    /// it is created, with its parents, as `Fs::new` does.
    pub fn from_uri(uri: &str) -> Result<Self> {
        // Errors show the URI without its query's values (they may hold secrets).
        let shown = crate::services::s3::config::shown_uri(uri);
        let invalid = |message: &str| {
            Error::new(ErrorKind::InvalidInput)
                .with_message(message.to_owned())
                .with_operation("from_uri")
                .with_path(shown.clone())
        };
        let (scheme, rest) = uri
            .split_once("://")
            .ok_or_else(|| invalid("expected scheme://..."))?;
        match scheme {
            "fs" | "file" => {
                // `file://localhost/p` is `file:///p` (RFC 8089).
                let rest = rest.strip_prefix("localhost").unwrap_or(rest);
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "the fs root must be an absolute path: fs:///abs/root",
                    ));
                }
                // A query or a fragment would otherwise become part of the root's
                // name (`?write_checks=false` is S3's); a `?` or `#` in a name is
                // written escaped, as in any URL.
                if rest.contains(['?', '#']) {
                    return Err(invalid(
                        "an fs URI takes no query or fragment: a `?` or `#` in the root's \
                         path is written %3F or %23",
                    ));
                }
                // A URL's path is percent-encoded (`ware%20house` is `ware house`),
                // as object_store, DataFusion and `dio_parquet::register` read it.
                let root: Vec<u8> = percent_encoding::percent_decode_str(rest).collect();
                let root = std::path::PathBuf::from(std::ffi::OsString::from_vec(root));
                Ok(Self::new(
                    Fs::new(root).map_err(|e| e.with_operation("from_uri"))?,
                ))
            }
            "s3" => {
                let s3 = crate::services::s3::S3Builder::from_uri(uri)?
                    .build()
                    .map_err(|e| e.with_operation("from_uri").with_path(shown.clone()))?;
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
                .with_path(shown)),
        }
    }

    /// The same operator, doing its IO on `executor`.
    pub fn with_executor(mut self, executor: Executor) -> Self {
        self.access.attach(&executor);
        self.executor = OnceLock::from(executor);
        self.burst = Arc::default();
        self
    }

    /// The same operator, with `options`.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self.burst = Arc::default();
        self
    }

    /// The executor that runs this operator's IO.
    pub fn executor(&self) -> &Executor {
        self.executor.get_or_init(|| {
            let executor = Executor::global();
            self.access.attach(&executor);
            executor
        })
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

    pub(crate) fn burst(&self) -> &Arc<Burst> {
        &self.burst
    }

    pub(crate) fn access(&self) -> &Arc<dyn Access> {
        &self.access
    }

    /// The operator that serves `burst`'s reads.
    pub(crate) fn serving(
        access: Arc<dyn Access>,
        executor: Executor,
        options: Options,
        burst: Arc<Burst>,
    ) -> Self {
        Self {
            access,
            executor: OnceLock::from(executor),
            options,
            burst,
        }
    }

    pub(crate) fn submit<T: Send + 'static>(&self, job: IoJob<T>) -> Task<T> {
        Task::submit(self.executor(), job)
    }

    /// Submits `job` now and returns its result with `operation` and `path` attached.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        path: &str,
        job: IoJob<T>,
    ) -> IoFuture<T> {
        self.run_mapped(operation, path, job, |e| e)
    }

    /// [`run`](Self::run) for a write: one that a shutdown deadline cut off while
    /// it ran may have been stored (`stored` = `unknown`).
    fn run_write<T: Send + 'static>(
        &self,
        operation: &'static str,
        path: &str,
        job: IoJob<T>,
    ) -> IoFuture<T> {
        self.run_mapped(operation, path, job, Error::stored_unknown_if_cut_off)
    }

    fn run_mapped<T: Send + 'static>(
        &self,
        operation: &'static str,
        path: &str,
        job: IoJob<T>,
        map: fn(Error) -> Error,
    ) -> IoFuture<T> {
        let task = self.submit(job);
        let path = path.to_owned();
        IoFuture::new(async move {
            task.await
                .map_err(|e| map(e).with_operation(operation).with_path(path))
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
    /// [`normalize_path`](crate::raw::normalize_path)), [`ErrorKind::InvalidInput`]
    /// for a file larger than [`Options::max_buffer_size`],
    /// [`ErrorKind::OutOfMemory`], executor errors.
    pub fn read(&self, path: &str) -> IoFuture<Bytes> {
        self.read_args("read", path, ByteRange::FULL, Conditions::default())
    }

    /// Bytes `range` of file `path`: `start..end`, `start..` (to the end), `..end`.
    ///
    /// # Bursts
    ///
    /// Small reads (`start..end` under 256 KiB) of a backend that serves bursts (fs)
    /// may be issued many at a time and awaited together: a query engine's page
    /// indexes and row lookups, each a future, then `join_all`. A read issued while
    /// another is waiting for its first poll is held, and the first poll of any read
    /// of the burst (the one that was waiting included) starts every read held so
    /// far: a few are read on the polling thread as a
    /// single read is, and 192 or more of one file are read as
    /// [`read_ranges`](Self::read_ranges) reads them, shared out to jobs on the
    /// blocking threads (a hand-off per job, not per read). Each read still has its
    /// own result and error. A read awaited before the next is issued starts when
    /// it is issued, on the calling thread when its pages are in memory (see
    /// [`Options::read_now`]).
    ///
    /// A held read starts at that first poll, whatever its pages; an executor shut
    /// down before it fails the read with [`ErrorKind::ShutDown`], unless the read
    /// is polled inside one of the executor's jobs (its own work); after a
    /// shutdown no read is held. A held read
    /// dropped is never read; reads started together share their jobs, which run to
    /// their end even if some of the reads' futures are dropped.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); a range ending beyond the end of the object is
    /// [`ErrorKind::RangeNotSatisfiable`] and the error states the object's size.
    pub fn read_range(&self, path: &str, range: impl RangeBounds<u64>) -> IoFuture<Bytes> {
        self.read_args(
            "read_range",
            path,
            ByteRange::new(range),
            Conditions::default(),
        )
    }

    /// A read with options: a range in any form [`ByteRange`] has, and
    /// [`Conditions`] on the object's version, checked against the object that is
    /// read, in the same step. Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`read_range`](Self::read_range), and [`ErrorKind::PreconditionFailed`] or
    /// [`ErrorKind::NotModified`] when a condition does not hold.
    pub fn read_with(&self, path: &str) -> ReadWith {
        ReadWith::new(self.clone(), path)
    }

    pub(crate) fn read_args(
        &self,
        operation: &'static str,
        path: &str,
        range: ByteRange,
        conditions: Conditions,
    ) -> IoFuture<Bytes> {
        if let Err(e) = range.check_order() {
            return Self::fail(operation, path, e);
        }
        if conditions.is_empty()
            && let Some(range) = self.holdable(&range)
        {
            return self.hold(operation, path, range);
        }
        let normalized = match raw::normalize_file_path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(operation, path, e),
        };
        let args = ReadArgs::new(range)
            .with_conditions(conditions)
            .with_max_len(self.options.max_buffer_size);
        self.read_now_or_submit(operation, path, &normalized, args)
    }

    /// The range of a read to hold in the burst: a small one, of a backend that
    /// serves bursts, when reads may be served on the caller's thread.
    fn holdable(&self, range: &ByteRange) -> Option<Range<u64>> {
        let Range { start, end } = range.span()?;
        let small = end > start && end - start < BATCH_READ_MAX.min(self.options.max_buffer_size);
        // Not from the executor's own blocking threads: a held read may be started
        // by a poll elsewhere, and its job queued on the lane that thread occupies,
        // while the thread waits for it (a read issued there is served inline).
        (small
            && self.options.read_now
            && !self.executor().on_blocking_thread()
            && self.access.serves_bursts()
            // After a shutdown nothing is held: a held read is served by whoever
            // polls its burst first, inside one of the executor's jobs or not,
            // where each read must be accepted or refused where it was issued.
            && !self.executor().is_shutdown())
        .then_some(start..end)
    }

    /// A read held in the burst, started on its own.
    pub(crate) fn read_alone(
        &self,
        operation: &'static str,
        path: &str,
        normalized: &str,
        range: Range<u64>,
    ) -> IoFuture<Bytes> {
        let args = ReadArgs::new(ByteRange::new(range)).with_max_len(self.options.max_buffer_size);
        self.read_now_or_submit(operation, path, normalized, args)
    }

    /// Reads `args` on this thread if that cannot wait ([`Self::read_now`]), else
    /// submits the read.
    fn read_now_or_submit(
        &self,
        operation: &'static str,
        path: &str,
        normalized: &str,
        args: ReadArgs,
    ) -> IoFuture<Bytes> {
        if let Some(now) = self.read_now(normalized, &args) {
            return IoFuture::yielding(
                now.map_err(|e| e.with_operation(operation).with_path(path)),
            );
        }
        let args = args.with_may_look_here(self.options.read_now);
        self.run(operation, path, self.access.read(normalized, args))
    }

    /// [`Access::try_read_now`], when the options and the executor allow it.
    pub(crate) fn read_now(&self, path: &str, args: &ReadArgs) -> Option<Result<Bytes>> {
        if !self.options.read_now || !self.executor().accepts_jobs() {
            return None;
        }
        self.access.try_read_now(path, args)
    }

    /// Several ranges of file `path` at once (column chunks of a parquet file), all
    /// from one version of the object.
    ///
    /// Ranges at most [`Options::coalesce_gap`] bytes apart are read as one (within
    /// [`Options::max_merge_size`], and overlapping ones too within
    /// [`Options::max_buffer_size`]: ranges whose union is longer are read
    /// separately, the bytes they share twice); merged ranges longer than
    /// [`Options::split_size`] are read as parallel parts. All reads are submitted at
    /// once and run concurrently on the executor. The result has one `Bytes` per
    /// requested range, in request order, each a zero-copy slice of the buffer its
    /// merged read filled.
    ///
    /// When the plan is more than one read, the object is opened once and every read
    /// comes from what was opened (fs: one file descriptor; memory: one snapshot; S3:
    /// one ETag, sent as `If-Match`), so a file replaced meanwhile never mixes two
    /// versions.
    ///
    /// # Errors
    ///
    /// As [`read_range`](Self::read_range), naming the first requested range that
    /// fails (context `range`; not for small reads a backend batched into one job,
    /// which fail together); [`ErrorKind::InvalidInput`] for a range whose start is after its end,
    /// or one longer than [`Options::max_buffer_size`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the reads that have not started. A job already
    /// reading a batch of small reads ends with the chunk (up to 64 reads) it is
    /// reading and takes no other.
    pub fn read_ranges(&self, path: &str, ranges: Vec<Range<u64>>) -> IoFuture<Vec<Bytes>> {
        self.read_ranges_args("read_ranges", path, ranges, Conditions::default())
    }

    /// [`read_ranges`](Self::read_ranges) with [`Conditions`] on the object's
    /// version, checked against the object that is read, in the same step: with
    /// `if_match` set to the ETag a listing gave, every range comes from that
    /// version or the read fails (a file replaced since it was listed is an error,
    /// never a mix of two versions). Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`read_ranges`](Self::read_ranges), and [`ErrorKind::PreconditionFailed`]
    /// or [`ErrorKind::NotModified`] when a condition does not hold; a condition
    /// that fails is never retried.
    pub fn read_ranges_with(&self, path: &str, ranges: Vec<Range<u64>>) -> ReadRangesWith {
        ReadRangesWith::new(self.clone(), path, ranges)
    }

    pub(crate) fn read_ranges_args(
        &self,
        operation: &'static str,
        path: &str,
        ranges: Vec<Range<u64>>,
        conditions: Conditions,
    ) -> IoFuture<Vec<Bytes>> {
        let limits = raw::PlanLimits {
            coalesce_gap: self.options.coalesce_gap,
            split_size: self.options.split_size,
            max_merge_size: self.options.max_merge_size,
            max_buffer_size: self.options.max_buffer_size,
            cap_overlaps: false,
        };
        self.read_ranges_within(operation, path, ranges, &limits, conditions)
    }

    /// [`read_ranges`](Self::read_ranges), planned within `limits`, if `conditions`
    /// hold.
    pub(crate) fn read_ranges_within(
        &self,
        op: &'static str,
        path: &str,
        ranges: Vec<Range<u64>>,
        limits: &raw::PlanLimits,
        conditions: Conditions,
    ) -> IoFuture<Vec<Bytes>> {
        let normalized = match raw::normalize_file_path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(op, path, e),
        };
        let max = self.options.max_buffer_size;
        if let Some(Err(err)) = ranges
            .iter()
            .map(|r| ByteRange::new(r.clone()).check_order())
            .find(Result::is_err)
        {
            return Self::fail(op, path, err);
        }
        if let Some(big) = ranges.iter().find(|r| r.end - r.start > max) {
            let err = raw::too_large(big.end - big.start, max)
                .with_context("range", format!("{}..{}", big.start, big.end));
            return Self::fail(op, path, err);
        }
        let plan = raw::plan(&ranges, limits);
        let path = path.to_owned();
        let context = {
            let path = path.clone();
            move |e: Error| e.with_operation(op).with_path(path.clone())
        };
        // One read: one job, which opens, checks and reads (or none at all).
        if let [group] = &plan.groups[..]
            && group.parts.len() == 1
        {
            let whole = group.range.clone();
            let args = ReadArgs::new(ByteRange::new(whole.clone())).with_conditions(conditions);
            match self.read_now(&normalized, &args) {
                Some(Ok(buffer)) => {
                    let read = in_full(buffer, &whole).map(|b| hand_out(vec![b], &plan.pieces));
                    return IoFuture::yielding(read.map_err(context));
                }
                // A condition that does not hold fails the same way in a job.
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        ErrorKind::PreconditionFailed | ErrorKind::NotModified
                    ) =>
                {
                    return IoFuture::yielding(Err(context(e)));
                }
                _ => {}
            }
            let task = self.submit(self.access.read(&normalized, args));
            return IoFuture::new(async move {
                // The plan's one read.
                let buffer = task.await.map_err(|e| context(name_part(e, &plan, 0)))?;
                let buffer = in_full(buffer, &whole).map_err(&context)?;
                Ok(hand_out(vec![buffer], &plan.pieces))
            });
        }
        // Several reads: open once, then read every part from what was opened. The
        // open is submitted now, as every operation's first job is: the IO starts
        // when the operation is called, not when it is first awaited. A file the
        // backend holds open is opened here with no hand-off (see `read_now`), and
        // then its reads are submitted now; a retry after the object changed always
        // opens on the executor.
        let access = Arc::clone(&self.access);
        let executor = self.executor().clone();
        let mut args = OpenArgs::new(ByteRange::FULL);
        args.conditions = conditions;
        let open = |access: &Arc<dyn Access>, executor: &Executor, path: &str, args: &OpenArgs| {
            let job = access.open(path, args.clone());
            OpenTask::new(Task::submit(executor, job), executor.clone(), |o| {
                o.object.close()
            })
        };
        let mut opened_now = None;
        let mut opening = None;
        let now = self.options.read_now && executor.accepts_jobs();
        match now
            .then(|| access.try_open_now(&normalized, &args))
            .flatten()
        {
            Some(Ok(opened)) => {
                // Released on the executor however this ends (see below).
                let object = OpenObject::new(opened.object, executor.clone());
                match submit_planned(&executor, &object, &ranges, &plan, max) {
                    Ok(reads) => opened_now = Some((object, reads)),
                    Err(e) => return Self::fail(op, &path, e),
                }
            }
            Some(Err(e)) => return Self::fail(op, &path, e),
            None => opening = Some(open(&access, &executor, &normalized, &args)),
        }
        IoFuture::new(async move {
            let mut attempt = 1;
            loop {
                let read = match opened_now.take() {
                    Some((object, reads)) => {
                        let read = collect_planned(reads, &plan).await;
                        drop(object);
                        read
                    }
                    None => {
                        let opened = opening
                            .take()
                            .unwrap_or_else(|| open(&access, &executor, &normalized, &args))
                            .await
                            .map_err(&context)?;
                        // Released on the executor however this ends: read, failed,
                        // retried or cancelled.
                        let object = OpenObject::new(opened.object, executor.clone());
                        match submit_planned(&executor, &object, &ranges, &plan, max) {
                            Ok(reads) => collect_planned(reads, &plan).await,
                            Err(e) => Err(e),
                        }
                    }
                };
                // Only an object that did change (not a cut answer that, with no
                // ETag to resume it by, might have: `get`'s own retries had it).
                let changed = Error::is_changed_while_read;
                match read {
                    // A backend that pins the version (S3's If-Match) fails a read of
                    // an object replaced meanwhile (`changed`): read the new
                    // version, all of it. Where the caller named the version, the
                    // failure is its condition's (`PreconditionFailed`), not retried
                    // into another; other conditions are checked again by the
                    // retry's open.
                    Err(e) if changed(&e) && attempt < 3 => attempt += 1,
                    Err(e) if changed(&e) => {
                        return Err(context(
                            e.with_message("the object kept changing while it was read"),
                        ));
                    }
                    Err(e) => return Err(context(e)),
                    Ok(buffers) => return Ok(hand_out(buffers, &plan.pieces)),
                }
            }
        })
    }

    /// Metadata of `path`: a file, or a directory (`path` ending in `/`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], [`ErrorKind::NotADirectory`] for a directory path
    /// (`a/`) that names a file, path errors, executor errors.
    pub fn stat(&self, path: &str) -> IoFuture<Metadata> {
        self.stat_as("stat", path, Conditions::default())
    }

    /// [`stat`](Self::stat), only if [`Conditions`] hold for the object now.
    /// Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`stat`](Self::stat), and [`ErrorKind::PreconditionFailed`] or
    /// [`ErrorKind::NotModified`] when a condition does not hold.
    pub fn stat_with(&self, path: &str) -> StatWith {
        StatWith::new(self.clone(), path)
    }

    pub(crate) fn stat_args(&self, path: &str, conditions: Conditions) -> IoFuture<Metadata> {
        self.stat_as("stat_with", path, conditions)
    }

    fn stat_as(
        &self,
        operation: &'static str,
        path: &str,
        conditions: Conditions,
    ) -> IoFuture<Metadata> {
        let normalized = match raw::normalize_path(path) {
            Ok(p) => p,
            Err(e) => return Self::fail(operation, path, e),
        };
        let stat = self.run(operation, path, self.access.stat(&normalized));
        if conditions.is_empty() {
            return stat;
        }
        let path = path.to_owned();
        IoFuture::new(async move {
            let meta = stat.await?;
            conditions
                .check(&meta)
                .map_err(|e| e.with_operation(operation).with_path(path))?;
            Ok(meta)
        })
    }

    /// Whether `path` exists.
    ///
    /// # Errors
    ///
    /// Any error of [`stat`](Self::stat) but [`ErrorKind::NotFound`] for `path`: a
    /// missing S3 bucket (`NotFound`, code `NoSuchBucket`) is an error, not `false`.
    pub fn exists(&self, path: &str) -> IoFuture<bool> {
        let stat = self.stat_as("exists", path, Conditions::default());
        IoFuture::new(async move {
            match stat.await {
                Ok(_) => Ok(true),
                Err(e)
                    if e.kind() == ErrorKind::NotFound
                        && e.context("code") != Some("NoSuchBucket") =>
                {
                    Ok(false)
                }
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
    /// [`ErrorKind::NotADirectory`] if a parent is a file (not on an S3 backend
    /// built with [`write_checks(false)`](crate::services::s3::S3Builder::write_checks),
    /// which writes keys beside them), path errors, executor errors. A write that
    /// the executor's shutdown deadline cut off while it ran fails with
    /// [`ErrorKind::ShutDown`] and `stored` = `unknown` in its
    /// [context](Error::context): its job may run on and store it (as do a copy,
    /// a rename and a [`Writer`](crate::Writer)'s commit cut off that way).
    pub fn write(&self, path: &str, data: impl Into<Bytes>) -> IoFuture<Metadata> {
        self.write_args(path, data.into(), WriteOptions::default())
    }

    /// [`write`](Self::write) with [`WriteOptions`]: only if the target does not
    /// exist, or only if it is still a given version. Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); [`ErrorKind::AlreadyExists`],
    /// [`ErrorKind::PreconditionFailed`] when the target is not as the options
    /// require; [`ErrorKind::Unsupported`] for an option the backend cannot honour
    /// atomically (see [`WriteOptions`]). On S3, a write that meets another
    /// conditional write to the key under way (409 `ConditionalRequestConflict`) is
    /// sent again as the retry policy allows (a multipart upload's completion is
    /// not: S3 asks for the upload to be made anew, so it is aborted); one that
    /// still meets it fails with a temporary [`ErrorKind::Unexpected`], which says
    /// nothing of the target. A conditional S3 write whose answer was lost is
    /// recognised by its id (see [`WriteOptions`]); one that ran out of attempts,
    /// or whose object could not be looked at, has `stored` = `unknown` in its
    /// error's [context](Error::context): it may have been stored.
    pub fn write_with(&self, path: &str, data: impl Into<Bytes>) -> WriteWith {
        WriteWith::new(self.clone(), path, data.into())
    }

    pub(crate) fn write_args(
        &self,
        path: &str,
        data: Bytes,
        options: WriteOptions,
    ) -> IoFuture<Metadata> {
        let operation = if options.is_plain() {
            "write"
        } else {
            "write_with"
        };
        match raw::normalize_file_path(path) {
            Ok(p) => self.run_write(operation, path, self.access.write(&p, data, options)),
            Err(e) => Self::fail(operation, path, e),
        }
    }

    /// Removes file `path`, or empty directory `path/`. Deleting something that does
    /// not exist is not an error.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::DirectoryNotEmpty`], [`ErrorKind::IsADirectory`] (a directory
    /// named without its trailing `/`, on fs and memory; on S3 a name without it is
    /// a key, which may exist beside a "directory" of the same name, and only that
    /// key is deleted), [`ErrorKind::NotADirectory`] (a file named with one), path
    /// errors, executor errors.
    pub fn delete(&self, path: &str) -> IoFuture<()> {
        match normalize_deletable(path) {
            Ok(p) => self.run("delete", path, self.access.delete(&p)),
            Err(e) => Self::fail("delete", path, e),
        }
    }

    /// Deletes each of `paths` as [`delete`](Self::delete) would, in as few requests
    /// as the backend allows (S3: `DeleteObjects`, 1,000 keys a request; fs: one
    /// job). One result per path, in order; each error names its path.
    ///
    /// # Errors
    ///
    /// The outer result fails only if the batch as a whole could not run (executor
    /// errors). A request that failed for a whole batch (S3's DeleteObjects, after
    /// its retries) fails each path it carried, with its error.
    pub fn delete_many<I, P>(&self, paths: I) -> IoFuture<Vec<Result<()>>>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        const OP: &str = "delete_many";
        let mut results: Vec<Option<Result<()>>> = Vec::new();
        let mut valid = Vec::new();
        let mut originals = Vec::new();
        for path in paths {
            let path = path.as_ref();
            match normalize_deletable(path) {
                Ok(p) => {
                    valid.push(p);
                    originals.push(path.to_owned());
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e.with_operation(OP).with_path(path)))),
            }
        }
        let task = self.submit(self.access.delete_many(valid.clone()));
        IoFuture::new(async move {
            let done = task.await.map_err(|e| e.with_operation(OP))?;
            let mut done = done.into_iter().zip(valid.iter().zip(originals));
            Ok(results
                .into_iter()
                .map(|slot| match slot {
                    Some(result) => result,
                    None => match done.next() {
                        Some((result, (normalized, path))) => result
                            .map_err(|e| e.with_operation(OP).with_caller_path(normalized, &path)),
                        None => Err(Error::new(ErrorKind::Unexpected)
                            .with_message("the backend returned too few results")
                            .with_operation(OP)),
                    },
                })
                .collect())
        })
    }

    /// Removes directory `prefix` and everything below it (the root's contents for
    /// `""`); a file named `prefix` is removed too, as `rm -r` would. Removing
    /// something that does not exist is not an error. A write in progress below it
    /// is left to commit, as on object stores (fs keeps its temporary file and the
    /// directories above it).
    ///
    /// A `prefix` whose last name is `.` or `..` (`.`, `x/..`, `a/b/./`) is
    /// refused, as `rm -r` refuses it: resolved, it would name a directory the
    /// caller did not write, up to the whole store. A `..` before the last name
    /// resolves as in every other path.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a last name `.` or `..`; other path errors,
    /// executor errors, and whatever the backend fails with:
    /// [`ErrorKind::PermissionDenied`] for an entry that may not be removed (fs: a
    /// directory without write permission, an immutable file).
    pub fn remove_all(&self, prefix: &str) -> IoFuture<()> {
        if matches!(
            prefix.trim_end_matches('/').rsplit('/').next(),
            Some("." | "..")
        ) {
            let err = Error::new(ErrorKind::InvalidInput).with_message(
                "refusing to remove a path whose last name is '.' or '..', as `rm -r` \
                 refuses it: name the directory itself",
            );
            return Self::fail("remove_all", prefix, err);
        }
        match raw::normalize_dir_path(prefix) {
            Ok(p) => self.run("remove_all", prefix, self.access.remove_all(&p)),
            Err(e) => Self::fail("remove_all", prefix, e),
        }
    }

    /// Creates directory `path` and its parents.
    ///
    /// On fs and memory the parents are directories of their own, kept when
    /// `path` is deleted; on S3 only `path` gets a marker (the parents exist while
    /// it is below them, as S3 has directories), so deleting it leaves none.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotADirectory`] if a file is in the way (not on an S3 backend
    /// built with [`write_checks(false)`](crate::services::s3::S3Builder::write_checks)),
    /// path errors, executor errors.
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
    /// [`ErrorKind::NotFound`] if `from` is missing, path errors, executor errors;
    /// [`ErrorKind::StorageFull`], quota and too-large errors naming `to`;
    /// [`ErrorKind::Unexpected`] naming `from` if the source shrank while it was
    /// copied (fs: it ended before the size it had when opened; nothing is
    /// committed). The error's path is the one at fault; its context names both
    /// (`from`, `to`). A copy that fails leaves `to` as it was.
    pub fn copy(&self, from: &str, to: &str) -> IoFuture<()> {
        self.transfer_args(false, from, to, WriteOptions::default())
    }

    /// [`copy`](Self::copy) with [`WriteOptions`] (`if_not_exists`: atomically, only
    /// if `to` does not exist). Submitted when awaited. Onto itself with options
    /// beyond `if_not_exists`, the backend does what they ask (S3: a new content
    /// type, storage class or encryption) or refuses them, as for any other target.
    ///
    /// # Errors
    ///
    /// As [`copy`](Self::copy), and [`ErrorKind::AlreadyExists`] (onto itself with
    /// `if_not_exists`, before anything else is looked at); options the backend
    /// cannot honour, onto itself too: [`ErrorKind::Unsupported`],
    /// [`ErrorKind::PreconditionFailed`] (`if_match`), or the server's refusal (S3
    /// refuses a single CopyObject onto itself that changes nothing).
    pub fn copy_with(&self, from: &str, to: &str) -> TransferWith {
        TransferWith::new(self.clone(), false, from, to)
    }

    /// Moves file `from` to `to`. Atomic on fs and memory; see the backend for
    /// others. Moving a file onto itself does nothing (with options, see
    /// [`rename_with`](Self::rename_with)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] if `from` is missing, path errors, executor errors;
    /// on S3 (a copy, then a delete of the version copied, where the server takes
    /// `If-Match` on DELETE), [`ErrorKind::PreconditionFailed`] if `from` was
    /// written again in between (both names are then kept); the same on fs for a
    /// rename that copies (a symlink, a hard link, across a mount). The error's
    /// path is the one at fault; its context names both (`from`, `to`).
    pub fn rename(&self, from: &str, to: &str) -> IoFuture<()> {
        self.transfer_args(true, from, to, WriteOptions::default())
    }

    /// [`rename`](Self::rename) with [`WriteOptions`] (`if_not_exists`: only if `to`
    /// does not exist; atomic on fs and memory). Submitted when awaited. Onto itself
    /// with options beyond `if_not_exists`, it is a [`copy_with`](Self::copy_with)
    /// onto itself: the file stays.
    ///
    /// # Errors
    ///
    /// As [`rename`](Self::rename), and [`ErrorKind::AlreadyExists`]; options the
    /// backend cannot honour, as [`copy_with`](Self::copy_with).
    pub fn rename_with(&self, from: &str, to: &str) -> TransferWith {
        TransferWith::new(self.clone(), true, from, to)
    }

    pub(crate) fn transfer_args(
        &self,
        rename: bool,
        from: &str,
        to: &str,
        options: WriteOptions,
    ) -> IoFuture<()> {
        let operation = match (rename, options.is_plain()) {
            (true, true) => "rename",
            (true, false) => "rename_with",
            (false, true) => "copy",
            (false, false) => "copy_with",
        };
        let both = {
            let (from, to) = (from.to_owned(), to.to_owned());
            move |e: Error| {
                e.with_operation(operation)
                    .with_path(raw::shown_path(&from))
                    .with_context("from", raw::shown_path(&from))
                    .with_context("to", raw::shown_path(&to))
            }
        };
        let (f, t) = match (raw::normalize_file_path(from), raw::normalize_file_path(to)) {
            (Ok(f), Ok(t)) => (f, t),
            // The error's path is the end at fault (`both` names the source otherwise).
            (Err(e), _) => return IoFuture::ready(Err(both(e))),
            (_, Err(e)) => return IoFuture::ready(Err(both(e.with_path(raw::shown_path(to))))),
        };
        if f == t && !options.if_not_exists && !options.is_plain() {
            // Onto itself, changing what is stored with it (a content type, a
            // storage class, an encryption) or only if its ETag matches: the
            // backend's to do or refuse, as it does for a copy elsewhere. A rename
            // onto itself is that copy: it must not remove its source. (With
            // `if_not_exists` the target exists: below.)
            let task = self.submit(self.access.copy(&f, &t, options));
            // A copy is a write of its target.
            return IoFuture::new(async move {
                task.await.map_err(|e| both(e.stored_unknown_if_cut_off()))
            });
        }
        if f == t {
            // Onto itself: nothing moves, but the source must be a file, and a
            // target that must not exist does.
            let stat = self.submit(self.access.stat(&f));
            let if_not_exists = options.if_not_exists;
            return IoFuture::new(async move {
                let meta = stat.await.map_err(&both)?;
                if meta.is_dir() {
                    return Err(both(Error::new(ErrorKind::IsADirectory)));
                }
                if if_not_exists {
                    return Err(both(Error::new(ErrorKind::AlreadyExists)));
                }
                Ok(())
            });
        }
        let job = if rename {
            self.access.rename(&f, &t, options)
        } else {
            self.access.copy(&f, &t, options)
        };
        let task = self.submit(job);
        // The backend names the end at fault as it was given it: named here as the
        // caller spelled it.
        let (from, to) = (from.to_owned(), to.to_owned());
        IoFuture::new(async move {
            task.await.map_err(|e| {
                let e = if e.path() == t {
                    e.with_caller_path(&t, &to)
                } else {
                    e.with_caller_path(&f, &from)
                };
                both(e.stored_unknown_if_cut_off())
            })
        })
    }

    /// The entries directly in directory `path` (files, and directories ending in `/`).
    /// A missing directory lists as empty.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotADirectory`], path errors, executor errors.
    pub fn list(&self, path: &str) -> IoFuture<Vec<Entry>> {
        self.collect(self.lister_args(path, false, None))
    }

    /// Every entry below directory `path`, at any depth.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub fn list_recursive(&self, path: &str) -> IoFuture<Vec<Entry>> {
        self.collect(self.lister_args(path, true, None))
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
        self.lister_args(path, false, None)
    }

    /// [`lister`](Self::lister), at any depth.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list).
    pub fn lister_recursive(&self, path: &str) -> IoFuture<Lister> {
        self.lister_args(path, true, None)
    }

    /// A lister with options: recursive or not, and starting after a path (S3 skips
    /// ahead with `start-after`). Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`list`](Self::list); [`ErrorKind::InvalidInput`] for a `start_after`
    /// that is not a valid path (a `..` that escapes the root, a NUL byte), with
    /// the value in the error's context (`start_after`).
    pub fn lister_with(&self, path: &str) -> ListerWith {
        ListerWith::new(self.clone(), path)
    }

    pub(crate) fn lister_args(
        &self,
        path: &str,
        recursive: bool,
        start_after: Option<String>,
    ) -> IoFuture<Lister> {
        // Compared with entries' paths, which are normalized: so is it.
        let start_after = match start_after.map(|after| match raw::normalize_path(&after) {
            Ok(normalized) => Ok(normalized),
            Err(e) => Err(Error::new(ErrorKind::InvalidInput)
                .with_message("start_after is not a valid path")
                .with_context("start_after", raw::shown_path(&after))
                .with_source(e)),
        }) {
            None => None,
            Some(Ok(after)) => Some(after),
            Some(Err(e)) => return Self::fail("list", path, e),
        };
        let args = ListArgs {
            recursive,
            start_after,
        };
        self.open_handle(
            "list",
            path,
            raw::normalize_dir_path(path),
            move |access, p| access.list(p, args),
            |raw| raw.close(),
            Lister::new,
        )
    }

    /// Submits the job that opens a handle (reader, writer, lister) now; the future
    /// builds the handle from the job's result. A future dropped before that hands
    /// what the job opened to `release`, on the executor.
    fn open_handle<R, H>(
        &self,
        operation: &'static str,
        path: &str,
        normalized: Result<String>,
        job: impl FnOnce(&dyn Access, &str) -> IoJob<R>,
        release: fn(R) -> IoJob<()>,
        make: impl FnOnce(Opener, String, R) -> H + Send + 'static,
    ) -> IoFuture<H>
    where
        R: Send + 'static,
        H: Send + 'static,
    {
        let normalized = match normalized {
            Ok(p) => p,
            Err(e) => return Self::fail(operation, path, e),
        };
        let executor = self.executor().clone();
        let job = job(&*self.access, &normalized);
        // The handle's first jobs continue one the executor took (its queue's
        // bound does not refuse them), unless the open was not the executor's to
        // take (done on the caller's thread): then they are the operation's first.
        let accepted = matches!(job, IoJob::Blocking(_) | IoJob::Bulk(_) | IoJob::Async(_));
        let task = OpenTask::new(self.submit(job), executor.clone(), release);
        let path = path.to_owned();
        IoFuture::new(async move {
            let raw = task
                .await
                .map_err(|e| e.with_operation(operation).with_path(path.clone()))?;
            Ok(make(Opener { executor, accepted }, path, raw))
        })
    }

    /// A reader of file `path`: `AsyncRead + AsyncSeek` (tokio and futures) and a
    /// `Stream` of `Bytes`, whose chunks are read on the executor ahead of the
    /// consumer (see [`Options::chunk_size`] and [`Options::prefetch`]). The job that
    /// opens the object also reads its first chunk (a file of at most one chunk:
    /// all of it, in one buffer). A file fs holds open is opened on the caller's
    /// thread instead (see [`Options::read_now`]): its first chunk is read there
    /// too if it is at most 256 KiB and in page cache; the first 1 MiB chunk of a
    /// larger file is the first of the chunk reads the reader submits at once.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn reader(&self, path: &str) -> IoFuture<Reader> {
        let options = self.options;
        self.reader_args(
            path,
            ByteRange::FULL,
            Conditions::default(),
            options.chunk_size,
            options.prefetch,
            options.chunk_size as u64,
        )
    }

    /// A reader with options: a range, [`Conditions`] on the version opened, its own
    /// chunking, and how large a range may be to be read whole by the open job.
    /// Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Self::read_with).
    pub fn reader_with(&self, path: &str) -> ReaderWith {
        ReaderWith::new(self.clone(), path)
    }

    pub(crate) fn reader_args(
        &self,
        path: &str,
        range: ByteRange,
        conditions: Conditions,
        chunk_size: usize,
        prefetch: usize,
        whole_up_to: u64,
    ) -> IoFuture<Reader> {
        if let Err(e) = range.check_order() {
            return Self::fail("reader", path, e);
        }
        // A chunk is one read: no longer than one buffer may be.
        let chunk_size = usize::try_from(self.options.max_buffer_size)
            .map_or(chunk_size, |max| chunk_size.min(max.max(1)));
        let args = OpenArgs {
            range,
            conditions,
            read_whole_up_to: whole_up_to.min(self.options.max_buffer_size),
            read_first: chunk_size as u64,
        };
        // A file the backend holds open is opened here (its first read too if small)
        // with no hand-off (see `read_now`).
        let now = self.options.read_now && self.executor().accepts_jobs();
        self.open_handle(
            "reader",
            path,
            raw::normalize_file_path(path),
            move |access, p| match now.then(|| access.try_open_now(p, &args)).flatten() {
                Some(opened) => IoJob::Ready(opened),
                None => access.open(p, args),
            },
            |opened| opened.object.close(),
            move |opener, path, opened| Reader::new(opener, path, opened, chunk_size, prefetch),
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
        self.writer_args(path, WriteOptions::default())
    }

    /// A writer whose commit obeys [`WriteOptions`]: it fails (and the target keeps
    /// what it had) if the target exists (`if_not_exists`) or is no longer the
    /// version `if_match` names. Submitted when awaited.
    ///
    /// # Errors
    ///
    /// As [`write_with`](Self::write_with), but the conditions are checked at
    /// [`Writer::close`], atomically with the commit, on every backend. Opening the
    /// writer refuses an option the backend refuses; where the object would go (a
    /// directory there, a file for a parent) fs and memory check when it opens,
    /// S3 with its first request (the multipart upload's creation, or the single
    /// `PUT` at the close), which sends nothing that could land there.
    pub fn writer_with(&self, path: &str) -> WriterWith {
        WriterWith::new(self.clone(), path)
    }

    pub(crate) fn writer_args(&self, path: &str, options: WriteOptions) -> IoFuture<Writer> {
        let chunk = self.options.write_chunk_size;
        self.open_handle(
            "writer",
            path,
            raw::normalize_file_path(path),
            move |access, p| access.writer(p, options),
            |raw| raw.abort(),
            move |opener, path, raw| Writer::new(opener.executor, path, raw, chunk),
        )
    }
}

/// Normalizes a path `delete` may be given: not the root.
fn normalize_deletable(path: &str) -> Result<String> {
    match raw::normalize_path(path)? {
        p if p.is_empty() => {
            Err(Error::new(ErrorKind::InvalidInput).with_message("cannot delete the root"))
        }
        p => Ok(p),
    }
}

/// A single merged read's error, told in terms of the ranges the caller asked for:
/// a range beyond the end names the first requested range that ends past it (the
/// rest of the error, its message, source and the request's context, kept).
fn name_requested(err: Error, ranges: &[Range<u64>]) -> Error {
    if err.kind() != ErrorKind::RangeNotSatisfiable {
        return err;
    }
    let Some(size) = err.context("size").and_then(|s| s.parse::<u64>().ok()) else {
        return err;
    };
    match ranges.iter().find(|r| r.end > size) {
        Some(r) => err.set_context("range", format!("{}..{}", r.start, r.end)),
        None => err,
    }
}

/// `err` from the read of part `i` of `plan`, naming (context `range`) the first
/// requested range that part serves, or for a range past the object's end the
/// first of them that ends past it. A batch of small reads fails as one and is
/// not named this way: its failure says nothing of which read met it.
fn name_part(err: Error, plan: &raw::ReadPlan, i: usize) -> Error {
    let (Some(group), Some(part)) = (
        plan.groups.iter().position(|g| g.parts.contains(&i)),
        plan.parts.get(i),
    ) else {
        return err;
    };
    let at = plan.groups[group].range.start;
    let served: Vec<Range<u64>> = plan
        .pieces
        .iter()
        .filter(|(g, _)| *g == group)
        .map(|(_, within)| at + within.start as u64..at + within.end as u64)
        // An empty range is served by the part it lies in, or at the end of.
        .filter(|r| {
            if r.is_empty() {
                part.contains(&r.start) || part.end == r.start
            } else {
                r.start < part.end && part.start < r.end
            }
        })
        .collect();
    if err.kind() == ErrorKind::RangeNotSatisfiable && err.context("size").is_some() {
        return name_requested(err, &served);
    }
    match served.first() {
        Some(r) => err.set_context("range", format!("{}..{}", r.start, r.end)),
        None => err,
    }
}

/// Reads shorter than this are batched, several to a job.
pub(crate) const BATCH_READ_MAX: u64 = 256 << 10;
/// At least this many reads to a chunk of a batch (fewer would not pay for the
/// batching).
const BATCH_MIN: usize = 4;
/// At most this many reads to a chunk of a batch: 64 reads of 4 KiB fill one pooled
/// 256 KiB buffer.
const BATCH_CHUNK_MAX: usize = 64;
/// Chunks per job of a batch, where there are reads enough: a job that starts late
/// still finds some, and the rest are shared out as jobs finish theirs.
const CHUNKS_PER_JOB: usize = 4;

/// The reads of a plan, submitted: small ones in a batch that several jobs share,
/// large ones a job each (see [`submit_planned`]).
struct PlannedReads {
    /// Which of the plan's parts the batch holds, in the batch's order.
    small: Vec<usize>,
    batch_jobs: Vec<Task<raw::ChunksRead>>,
    /// Stops the batch once nobody waits for it.
    batch: Option<StopOnDrop>,
    singles: Vec<(usize, Task<Bytes>)>,
}

/// Stops a batch when dropped: the future waiting for it was dropped, or it failed
/// early. A job then ends with the chunk it is reading instead of reading every
/// chunk left, which nobody would take (a dropped future's jobs that have not
/// started are cancelled; a started one is not).
struct StopOnDrop(Arc<raw::ReadBatch>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// Submits every part of `plan` to be read from `object`, now.
///
/// Small reads form one batch, which several jobs on the blocking threads share out
/// chunk by chunk: a hand-off per job instead of one per read, and a thread that
/// starts late, or loses its core, takes fewer chunks instead of holding up the
/// rest. Large reads get a job each. Reads of the batch share a buffer only within
/// `max_buffer_size`.
fn submit_planned(
    executor: &Executor,
    object: &Arc<dyn raw::RandomRead>,
    ranges: &[Range<u64>],
    plan: &raw::ReadPlan,
    max_buffer_size: u64,
) -> Result<PlannedReads> {
    let size = object.size();
    if let Some(r) = ranges.iter().find(|r| r.end > size) {
        return Err(Error::new(ErrorKind::RangeNotSatisfiable)
            .with_context("range", format!("{}..{}", r.start, r.end))
            .with_context("size", size));
    }
    let parts = &plan.parts;
    let (small, mut singles): (Vec<usize>, Vec<usize>) =
        (0..parts.len()).partition(|&i| parts[i].end - parts[i].start < BATCH_READ_MAX);
    let mut batch_jobs = Vec::new();
    let mut stop = None;
    if small.len() > 1 {
        let jobs = executor.num_blocking_threads().clamp(1, 64);
        let chunk = small
            .len()
            .div_ceil(jobs * CHUNKS_PER_JOB)
            .clamp(BATCH_MIN, BATCH_CHUNK_MAX);
        let batch = Arc::new(
            raw::ReadBatch::new(small.iter().map(|&i| parts[i].clone()).collect(), chunk)
                .with_max_buffer_size(max_buffer_size),
        );
        for _ in 0..jobs.min(small.len().div_ceil(chunk)) {
            match Arc::clone(object).read_many(Arc::clone(&batch)) {
                Some(job) => batch_jobs.push(Task::submit(executor, job)),
                None => break,
            }
        }
        stop = Some(StopOnDrop(batch));
    }
    if batch_jobs.is_empty() {
        singles.extend(&small);
    }
    let singles = singles
        .into_iter()
        .map(|i| {
            let job = Arc::clone(object).read_at(parts[i].clone());
            (i, Task::submit(executor, job))
        })
        .collect();
    Ok(PlannedReads {
        small,
        batch_jobs,
        batch: stop,
        singles,
    })
}

/// Waits for the reads [`submit_planned`] submitted; one buffer per group of `plan`.
async fn collect_planned(reads: PlannedReads, plan: &raw::ReadPlan) -> Result<Vec<Bytes>> {
    // The batch is stopped when this future ends, or is dropped, before its jobs.
    let PlannedReads {
        small,
        batch_jobs,
        batch: _stop,
        singles,
    } = reads;
    let mut read: Vec<Option<Bytes>> = vec![None; plan.parts.len()];
    if !batch_jobs.is_empty() {
        let mut served = 0;
        for task in batch_jobs {
            for (first, chunk) in task.await? {
                for (k, bytes) in chunk.into_iter().enumerate() {
                    // A backend's batch job answers for the reads it was handed,
                    // each in full; anything else is an error, never data.
                    let i = *small.get(first + k).ok_or_else(|| {
                        Error::new(ErrorKind::Unexpected).with_message(format!(
                            "a batch of {} reads returned a result for read {}",
                            small.len(),
                            first + k
                        ))
                    })?;
                    read[i] = Some(in_full(bytes, &plan.parts[i])?);
                    served += 1;
                }
            }
        }
        if served != small.len() {
            return Err(Error::new(ErrorKind::Unexpected).with_message(format!(
                "a batch of {} reads returned {served} results",
                small.len()
            )));
        }
    }
    for (i, task) in singles {
        let named = |e: Error| name_part(e, plan, i);
        read[i] = Some(in_full(task.await.map_err(named)?, &plan.parts[i]).map_err(named)?);
    }
    let mut buffers = Vec::with_capacity(plan.groups.len());
    for group in &plan.groups {
        buffers.push(join_parts(&mut read[group.parts.clone()])?);
    }
    Ok(buffers)
}

/// `bytes`, if a backend's read of `part` returned it all: a read of another length
/// is an error, never data cut into the wrong pieces.
pub(crate) fn in_full(bytes: Bytes, part: &Range<u64>) -> Result<Bytes> {
    let want = part.end - part.start;
    if bytes.len() as u64 == want {
        return Ok(bytes);
    }
    Err(Error::new(ErrorKind::Unexpected)
        .with_message(format!("a read of {want} bytes returned {}", bytes.len())))
}

/// Each requested piece, in request order, as a slice of its group's buffer; the
/// last piece of a group takes the buffer itself when it covers all of it (a storm
/// of 4 KiB reads: one reference-count increment and decrement fewer per read).
fn hand_out(mut buffers: Vec<Bytes>, pieces: &[(usize, Range<usize>)]) -> Vec<Bytes> {
    let mut users = vec![0_usize; buffers.len()];
    for (group, _) in pieces {
        users[*group] += 1;
    }
    pieces
        .iter()
        .map(|(group, range)| {
            users[*group] -= 1;
            let buffer = &mut buffers[*group];
            if users[*group] == 0 && *range == (0..buffer.len()) {
                std::mem::take(buffer)
            } else {
                buffer.slice(range.clone())
            }
        })
        .collect()
}

/// One buffer from the parts a group was read in: the part itself, or one copy.
/// Every part was read (an error ended the read otherwise); a part missing all the
/// same is an error, never a hole in the data.
fn join_parts(parts: &mut [Option<Bytes>]) -> Result<Bytes> {
    let missing = || Error::new(ErrorKind::Unexpected).with_message("a part of a read is missing");
    if let [one] = parts {
        return one.take().ok_or_else(missing);
    }
    let parts = parts
        .iter_mut()
        .map(|part| part.take().ok_or_else(missing))
        .collect::<Result<Vec<Bytes>>>()?;
    let len = parts.iter().map(Bytes::len).sum();
    let mut joined = Vec::new();
    joined.try_reserve_exact(len).map_err(|e| {
        Error::new(ErrorKind::OutOfMemory)
            .with_message(format!("cannot allocate a buffer of {len} bytes"))
            .with_source(e)
    })?;
    for part in parts {
        joined.extend_from_slice(&part);
    }
    Ok(joined.into())
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("access", &self.access)
            .field("executor", &self.executor.get())
            .field("options", &self.options)
            .field("burst", &self.burst)
            .finish()
    }
}
