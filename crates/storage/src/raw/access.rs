//! [`Access`]: what a backend implements. Less stable than the user-facing types.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use io_executor::Executor;

use crate::raw::{ByteRange, ReadBatch};
use crate::{Conditions, Entry, Error, Metadata, Result, WriteOptions};

/// What a job serving a [`ReadBatch`] returns: the chunks it read, each with the
/// index of its first read in the batch and one buffer per read.
pub type ChunksRead = Vec<(usize, Vec<Bytes>)>;

/// A job serving a [`ReadBatch`] (see [`RandomRead::read_many`]).
pub type BatchJob = IoJob<ChunksRead>;

/// One unit of backend work, in the form the executor runs it: a blocking closure
/// (for the blocking lane), a future (for a worker's runtime), work that needs no IO
/// (run on the submitting thread), or a result that is already known.
///
/// Backends build jobs; the [`Operator`](crate::Operator) submits them. A job does
/// all of one step's IO in one hand-off: for example, the fs backend's read opens,
/// checks the size, and reads in one closure. More forms may come: a backend that
/// wraps another's jobs uses [`map`](Self::map) rather than a `match`.
#[non_exhaustive]
pub enum IoJob<T> {
    /// Runs on the executor's blocking lane.
    Blocking(Box<dyn FnOnce() -> Result<T> + Send + 'static>),
    /// Runs on the executor's blocking lane as a bulk job
    /// ([`Executor::spawn_blocking_bulk`]): a copy at memory speed, such as a large
    /// read out of the page cache, which waits its turn behind the few that run at
    /// once instead of adding one more copy to the cores'.
    Bulk(Box<dyn FnOnce() -> Result<T> + Send + 'static>),
    /// Runs on one of the executor's worker runtimes.
    Async(Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>),
    /// Does no IO (the memory backend): runs on the thread that submits it, with no
    /// hand-off, but only if the executor would accept a job from there (after a
    /// shutdown, only from inside one of its jobs; otherwise it fails with
    /// [`ShutDown`](crate::ErrorKind::ShutDown), like every other job).
    Inline(Box<dyn FnOnce() -> Result<T> + Send + 'static>),
    /// Already done; no hand-off.
    Ready(Result<T>),
}

impl<T: Send + 'static> IoJob<T> {
    /// The same job, calling `f` with its error if it fails: for a drop's clean-up,
    /// whose failure has no caller to go to.
    pub(crate) fn on_error(self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.then(move |result| {
            if let Err(e) = &result {
                f(e);
            }
            result
        })
    }

    /// The same job, its successful output passed through `f` where the job runs:
    /// for a backend that wraps another's jobs (one that counts them, say) without
    /// changing how or where they run.
    pub fn map<U: Send + 'static>(self, f: impl FnOnce(T) -> U + Send + 'static) -> IoJob<U> {
        self.then(move |result| result.map(f))
    }

    /// The same job, its result passed through `f` where the job runs, on the
    /// same lane.
    fn then<U: Send + 'static>(
        self,
        f: impl FnOnce(Result<T>) -> Result<U> + Send + 'static,
    ) -> IoJob<U> {
        match self {
            IoJob::Blocking(job) => IoJob::blocking(move || f(job())),
            IoJob::Bulk(job) => IoJob::bulk(move || f(job())),
            IoJob::Async(job) => IoJob::future(async move { f(job.await) }),
            IoJob::Inline(job) => IoJob::inline(move || f(job())),
            IoJob::Ready(result) => IoJob::ready(f(result)),
        }
    }
}

impl<T> IoJob<T> {
    /// A blocking job.
    pub fn blocking(f: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        IoJob::Blocking(Box::new(f))
    }

    /// A bulk blocking job.
    pub fn bulk(f: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        IoJob::Bulk(Box::new(f))
    }

    /// An async job.
    pub fn future(f: impl Future<Output = Result<T>> + Send + 'static) -> Self {
        IoJob::Async(Box::pin(f))
    }

    /// A job that does no IO.
    pub fn inline(f: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        IoJob::Inline(Box::new(f))
    }

    /// A finished job.
    pub fn ready(result: Result<T>) -> Self {
        IoJob::Ready(result)
    }
}

/// What [`Access::read`] is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadArgs {
    /// The bytes wanted.
    pub range: ByteRange,
    /// Preconditions, checked against the object that is read.
    pub conditions: Conditions,
    /// The most bytes one read may return (one buffer's worth).
    pub max_len: u64,
    /// Whether the backend may look, on the submitting thread, at what the kernel
    /// holds in memory to choose the read's job (fs: whether a large read is a bulk
    /// job, by `preadv2(RWF_NOWAIT)` of a byte at each end, which cannot wait):
    /// what [`Options::read_now`](crate::Options::read_now) allows. Off by default.
    pub may_look_here: bool,
}

impl ReadArgs {
    /// `range`, with no conditions and no limit.
    pub fn new(range: ByteRange) -> Self {
        Self {
            range,
            conditions: Conditions::default(),
            max_len: u64::MAX,
            may_look_here: false,
        }
    }

    /// With [`may_look_here`](Self::may_look_here).
    pub fn with_may_look_here(mut self, may: bool) -> Self {
        self.may_look_here = may;
        self
    }

    /// With `conditions`.
    pub fn with_conditions(mut self, conditions: Conditions) -> Self {
        self.conditions = conditions;
        self
    }

    /// With [`max_len`](Self::max_len).
    pub fn with_max_len(mut self, max_len: u64) -> Self {
        self.max_len = max_len;
        self
    }

    /// The range within an object of `size` bytes ([`ByteRange::resolve`]), if it
    /// is no longer than [`max_len`](Self::max_len).
    ///
    /// # Errors
    ///
    /// As [`ByteRange::resolve`]; [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput)
    /// for a range over the limit.
    pub fn resolve(&self, size: u64) -> Result<Range<u64>> {
        let range = self.range.resolve(size)?;
        let len = range.end - range.start;
        if len > self.max_len {
            return Err(too_large(len, self.max_len).with_context("range", self.range));
        }
        Ok(range)
    }
}

/// The error for a read longer than one buffer may be.
pub(crate) fn too_large(len: u64, max: u64) -> crate::Error {
    crate::Error::new(crate::ErrorKind::InvalidInput).with_message(format!(
        "a read of {len} bytes is larger than Options::max_buffer_size ({max}); \
         read it in chunks with a Reader"
    ))
}

/// What [`Access::open`] is asked for: which part of the object will be read, the
/// conditions the opened object must meet, and how much to read right away, in the
/// same job (so that a small read costs one hand-off, open included).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenArgs {
    /// The part of the object the reader will read.
    pub range: ByteRange,
    /// Preconditions, checked against the object that is opened.
    pub conditions: Conditions,
    /// If the resolved range is at most this long, the open job reads all of it.
    pub read_whole_up_to: u64,
    /// Otherwise the open job reads this much of its start.
    pub read_first: u64,
}

impl OpenArgs {
    /// `range`, with no conditions, reading nothing in the open job.
    pub fn new(range: ByteRange) -> Self {
        Self {
            range,
            conditions: Conditions::default(),
            read_whole_up_to: 0,
            read_first: 0,
        }
    }

    /// The part of `range` (resolved) the open job reads.
    pub fn first_read(&self, range: &Range<u64>) -> Range<u64> {
        let len = range.end - range.start;
        let first = if len <= self.read_whole_up_to {
            len
        } else {
            self.read_first.min(len)
        };
        range.start..range.start + first
    }
}

/// An object opened by [`Access::open`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Opened {
    /// The object, for the reads that follow.
    pub object: Arc<dyn RandomRead>,
    /// The requested range, resolved against the object's size.
    pub range: Range<u64>,
    /// The bytes [`OpenArgs::first_read`] asked for; where the open could not know
    /// the range's length before its first request (S3, a range to the object's
    /// end), up to [`OpenArgs::read_whole_up_to`] bytes of its start, which that
    /// request brought.
    pub first: Bytes,
}

impl Opened {
    /// An opened object and what was read of it.
    pub fn new(object: Arc<dyn RandomRead>, range: Range<u64>, first: Bytes) -> Self {
        Self {
            object,
            range,
            first,
        }
    }
}

/// What [`Access::list`] is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListArgs {
    /// Every entry at any depth, not only the directory's own.
    pub recursive: bool,
    /// Only entries whose path sorts after this one (byte order), as S3's
    /// `start-after`. Backends that can skip ahead do; the others filter. A
    /// normalized path, as every path handed to a backend is.
    pub start_after: Option<String>,
}

impl ListArgs {
    /// One level, from the start.
    pub fn new() -> Self {
        Self::default()
    }

    /// With [`recursive`](Self::recursive).
    pub fn with_recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// With [`start_after`](Self::start_after).
    pub fn with_start_after(mut self, path: impl Into<String>) -> Self {
        self.start_after = Some(path.into());
        self
    }

    /// `true` if `path` is after [`start_after`](Self::start_after).
    pub fn wants(&self, path: &str) -> bool {
        self.start_after.as_deref().is_none_or(|after| path > after)
    }
}

impl<T> fmt::Debug for IoJob<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoJob::Blocking(_) => "IoJob::Blocking",
            IoJob::Bulk(_) => "IoJob::Bulk",
            IoJob::Async(_) => "IoJob::Async",
            IoJob::Inline(_) => "IoJob::Inline",
            IoJob::Ready(_) => "IoJob::Ready",
        })
    }
}

/// A storage backend.
///
/// Paths handed to a backend are already normalized (see
/// [`normalize_path`](crate::raw::normalize_path)): relative to the root, no `.` or
/// `..`, directories end with `/`. File operations get file paths only.
///
/// Every method returns at once with an [`IoJob`]; it must not do IO itself.
///
/// A backend implements at least [`scheme`](Self::scheme), [`stat`](Self::stat),
/// [`read`](Self::read) and [`open`](Self::open); the methods that write, delete
/// and list answer [`Unsupported`](crate::ErrorKind::Unsupported) unless it
/// implements them too (a read-only backend need not). A backend that wraps
/// another forwards every method.
pub trait Access: Send + Sync + fmt::Debug + 'static {
    /// The backend's scheme (`fs`, `memory`, `s3`).
    fn scheme(&self) -> &'static str;

    /// Called with the executor an [`Operator`](crate::Operator) runs this backend's
    /// jobs on, when the operator is made and whenever it moves to another executor.
    /// A backend that keeps per-worker state (the S3 backend's HTTP clients, one per
    /// worker thread) sets it up here. The default does nothing.
    fn attach(&self, executor: &Executor) {
        let _ = executor;
    }

    /// Metadata of a file, or of a directory (`path` ends with `/`, or is a directory).
    fn stat(&self, path: &str) -> IoJob<Metadata>;

    /// Bytes `args.range` of file `path`, exactly, or
    /// [`RangeNotSatisfiable`](crate::ErrorKind::RangeNotSatisfiable) as
    /// [`ByteRange::resolve`] says, if `args.conditions` hold for the object read.
    fn read(&self, path: &str, args: ReadArgs) -> IoJob<Bytes>;

    /// Reads `args` on the calling thread, now, if that cannot wait: a small read of a
    /// file the backend holds open, whose pages are all in memory (fs:
    /// `preadv2(RWF_NOWAIT)` on a local filesystem). `None` when it cannot be done
    /// that way; the operator then submits [`read`](Self::read) as usual. Called only
    /// when [`Options::read_now`](crate::Options::read_now) is on. The default never
    /// reads.
    fn try_read_now(&self, path: &str, args: &ReadArgs) -> Option<Result<Bytes>> {
        let _ = (path, args);
        None
    }

    /// Whether small reads issued together are better served together (see
    /// [`Operator::read_range`](crate::Operator::read_range)): held until the first
    /// of them is polled, then read on that thread when they are few, and as
    /// [`read_ranges`](crate::Operator::read_ranges) reads them when many are of one
    /// file. Worth it where each read is a system call and
    /// [`try_read_now`](Self::try_read_now) serves single reads (fs). The default,
    /// `false`, starts every read when it is issued.
    fn serves_bursts(&self) -> bool {
        false
    }

    /// Opens `args` on the calling thread, now, if that cannot wait: a file the
    /// backend holds open, whose path is found as before using only what the kernel
    /// holds in memory. [`OpenArgs::first_read`] is read there too if it is small
    /// and all in page cache; the large first chunk of a longer read is left out
    /// ([`Opened::first`] empty: the reader reads it), while a whole range asked for
    /// in one buffer, or a small read not in memory, makes this `None`. `None` when
    /// it cannot be done that way; the operator then submits
    /// [`open`](Self::open) as usual. Called only when
    /// [`Options::read_now`](crate::Options::read_now) is on. The default never
    /// opens.
    fn try_open_now(&self, path: &str, args: &OpenArgs) -> Option<Result<Opened>> {
        let _ = (path, args);
        None
    }

    /// Opens `path` for positional reads (for a [`Reader`](crate::Reader), or several
    /// ranges read from one version of the object), checks `args.conditions` against
    /// what it opened, and reads [`OpenArgs::first_read`] in the same job.
    fn open(&self, path: &str, args: OpenArgs) -> IoJob<Opened>;

    /// Replaces `path` with `data`, atomically, creating parent directories, as
    /// `options` allow. The default: [`Unsupported`](crate::ErrorKind::Unsupported).
    fn write(&self, path: &str, data: Bytes, options: WriteOptions) -> IoJob<Metadata> {
        let _ = (path, data, options);
        unsupported(self.scheme(), "write")
    }

    /// Starts an atomic write of `path`, for a [`Writer`](crate::Writer); `options`
    /// are enforced at commit. The default:
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    fn writer(&self, path: &str, options: WriteOptions) -> IoJob<Box<dyn RawWrite>> {
        let _ = (path, options);
        unsupported(self.scheme(), "write")
    }

    /// Removes file `path`, or empty directory `path/`. A missing path is not an
    /// error. The default: [`Unsupported`](crate::ErrorKind::Unsupported).
    fn delete(&self, path: &str) -> IoJob<()> {
        let _ = path;
        unsupported(self.scheme(), "delete")
    }

    /// Removes each of `paths` as [`delete`](Self::delete) would, in as few requests
    /// as the backend allows; one result per path, in order. The default: an
    /// [`Unsupported`](crate::ErrorKind::Unsupported) error for each path (a
    /// backend that implements `delete` implements this too).
    fn delete_many(&self, paths: Vec<String>) -> IoJob<Vec<Result<()>>> {
        let scheme = self.scheme();
        IoJob::ready(Ok(paths
            .iter()
            .map(|_| Err(unsupported_error(scheme, "delete")))
            .collect()))
    }

    /// Removes directory `path/` and everything below it. A missing path is not an
    /// error. The default: [`Unsupported`](crate::ErrorKind::Unsupported).
    fn remove_all(&self, path: &str) -> IoJob<()> {
        let _ = path;
        unsupported(self.scheme(), "delete")
    }

    /// Creates directory `path/` and its parents. The default:
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    fn create_dir(&self, path: &str) -> IoJob<()> {
        let _ = path;
        unsupported(self.scheme(), "create directories")
    }

    /// Copies file `from` over file `to`, atomically for readers of `to`, with
    /// `options`: each one applied, or the copy refused
    /// ([`Unsupported`](crate::ErrorKind::Unsupported) for one the backend cannot
    /// give), never ignored. `from` may be `to`: a copy onto itself, asked for with
    /// options beyond `if_not_exists` (a new content type, storage class or
    /// encryption; `if_match`), which must keep the file. The default:
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    fn copy(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        let _ = (from, to, options);
        unsupported(self.scheme(), "copy")
    }

    /// Moves file `from` to `to` (`from != to`: a rename onto itself with options
    /// is a [`copy`](Self::copy) onto itself), with `options` as a copy takes them.
    /// The default:
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    fn rename(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        let _ = (from, to, options);
        unsupported(self.scheme(), "rename")
    }

    /// Starts listing directory `path/` (the root is `""`). The default:
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    fn list(&self, path: &str, args: ListArgs) -> IoJob<Box<dyn RawList>> {
        let _ = (path, args);
        unsupported(self.scheme(), "list")
    }
}

/// What [`Access`]'s defaults answer: the backend cannot do `what`.
fn unsupported<T>(scheme: &str, what: &str) -> IoJob<T> {
    IoJob::ready(Err(unsupported_error(scheme, what)))
}

fn unsupported_error(scheme: &str, what: &str) -> crate::Error {
    crate::Error::new(crate::ErrorKind::Unsupported)
        .with_message(format!("the {scheme} backend cannot {what}"))
}

/// An open object that serves positional reads, shared by a reader's in-flight
/// chunk jobs.
pub trait RandomRead: Send + Sync + fmt::Debug + 'static {
    /// The object's metadata when it was opened.
    fn metadata(&self) -> &Metadata;

    /// The object's size when it was opened.
    fn size(&self) -> u64 {
        self.metadata().content_length()
    }

    /// Reads exactly `range` (within `0..size`).
    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes>;

    /// A job that serves reads of `batch` chunk after chunk until none is left
    /// ([`ReadBatch::serve`]), if that is cheaper than a job per range (many small
    /// reads of a local file: a hand-off per job instead of one per read). The
    /// caller submits several such jobs for one batch, and they share its chunks.
    /// `None`, the default, means a job per range.
    fn read_many(self: Arc<Self>, batch: Arc<ReadBatch>) -> Option<BatchJob> {
        let _ = batch;
        None
    }

    /// Releases the object (its reader was dropped). A backend whose release does IO
    /// (closing a file may flush, and block on a network filesystem) returns a job
    /// for it, so that it runs on the executor and not on the dropping thread. The
    /// default releases in place.
    fn close(self: Arc<Self>) -> IoJob<()> {
        drop(self);
        IoJob::ready(Ok(()))
    }
}

/// The context key of a failed write's error that says what it left behind: the
/// clean-up that failed after it, and why (a `Writer`'s `abort` then fails too).
/// A backend that cleans up after a failed write sets it on the write's error
/// ([`Error::with_context`](crate::Error::with_context)); a caller reads it with
/// [`Error::context`](crate::Error::context).
pub const ABORT_FAILED: &str = "abort_failed";

/// An atomic write in progress. Ownership travels into each job and comes back, so
/// no job ever shares a writer with another.
///
/// Dropping a `RawWrite` without [`close`](Self::close) must leave the target
/// untouched and clean up (no temporary file left behind). A job that fails, and
/// whose clean-up fails too, says so in its error's `abort_failed` context.
pub trait RawWrite: Send + fmt::Debug + 'static {
    /// Appends `data`.
    fn write(self: Box<Self>, data: Bytes) -> IoJob<Box<dyn RawWrite>>;

    /// Commits: the target now has the written content.
    fn close(self: Box<Self>) -> IoJob<Metadata>;

    /// Gives up: the target keeps its old content (or stays absent).
    fn abort(self: Box<Self>) -> IoJob<()>;
}

/// A listing in progress, one page per job.
pub trait RawList: Send + fmt::Debug + 'static {
    /// The next page of entries; an empty page means the listing is complete.
    fn next_page(self: Box<Self>) -> IoJob<(Box<dyn RawList>, Vec<Entry>)>;

    /// Releases the listing (its lister was dropped or finished); see
    /// [`RandomRead::close`]. The default releases in place.
    fn close(self: Box<Self>) -> IoJob<()> {
        drop(self);
        IoJob::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, Operator};

    /// A backend that implements only what every backend must.
    #[derive(Debug)]
    struct ReadOnly;

    impl Access for ReadOnly {
        fn scheme(&self) -> &'static str {
            "read-only"
        }
        fn stat(&self, _: &str) -> IoJob<Metadata> {
            IoJob::ready(Ok(Metadata::file(3)))
        }
        fn read(&self, _: &str, args: ReadArgs) -> IoJob<Bytes> {
            IoJob::ready(
                args.resolve(3)
                    .map(|r| Bytes::from_static(b"abc").slice(r.start as usize..r.end as usize)),
            )
        }
        fn open(&self, _: &str, _: OpenArgs) -> IoJob<Opened> {
            IoJob::ready(Err(crate::Error::new(ErrorKind::Unsupported)))
        }
    }

    #[test]
    fn what_a_backend_does_not_implement_is_unsupported_and_says_which() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let op = Operator::new(ReadOnly);
        rt.block_on(async {
            assert_eq!(&op.read("f").await.unwrap()[..], b"abc");
            let errors = [
                op.write("f", "x").await.map(drop).unwrap_err(),
                op.delete("f").await.unwrap_err(),
                op.create_dir("d/").await.unwrap_err(),
                op.copy("f", "g").await.unwrap_err(),
                op.rename("f", "g").await.unwrap_err(),
                op.list("d/").await.map(drop).unwrap_err(),
                op.remove_all("d/").await.unwrap_err(),
            ];
            for err in errors {
                assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
                assert!(
                    err.to_string().contains("the read-only backend cannot"),
                    "{err}"
                );
                assert!(!err.operation().is_empty(), "{err}");
            }
            let each = op.delete_many(["f", "g"]).await.unwrap();
            assert_eq!(each.len(), 2);
            assert!(
                each.iter()
                    .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Unsupported)
            );
        });
    }
}
