//! [`Access`]: what a backend implements. Less stable than the user-facing types.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use io_executor::Executor;

use crate::raw::ByteRange;
use crate::{Entry, Metadata, Result};

/// One unit of backend work, in the form the executor runs it: a blocking closure
/// (for the blocking lane), a future (for a worker's runtime), or a result that
/// needs no IO at all.
///
/// Backends build jobs; the [`Operator`](crate::Operator) submits them. A job does
/// all of one step's IO in one hand-off: for example, the fs backend's read opens,
/// checks the size, and reads in one closure.
pub enum IoJob<T> {
    /// Runs on the executor's blocking lane.
    Blocking(Box<dyn FnOnce() -> Result<T> + Send + 'static>),
    /// Runs on one of the executor's worker runtimes.
    Async(Pin<Box<dyn Future<Output = Result<T>> + Send + 'static>>),
    /// Already done; no hand-off.
    Ready(Result<T>),
}

impl<T> IoJob<T> {
    /// A blocking job.
    pub fn blocking(f: impl FnOnce() -> Result<T> + Send + 'static) -> Self {
        IoJob::Blocking(Box::new(f))
    }

    /// An async job.
    pub fn future(f: impl Future<Output = Result<T>> + Send + 'static) -> Self {
        IoJob::Async(Box::pin(f))
    }

    /// A finished job.
    pub fn ready(result: Result<T>) -> Self {
        IoJob::Ready(result)
    }
}

impl<T> fmt::Debug for IoJob<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoJob::Blocking(_) => "IoJob::Blocking",
            IoJob::Async(_) => "IoJob::Async",
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

    /// Bytes `range` of file `path`, exactly, or
    /// [`RangeNotSatisfiable`](crate::ErrorKind::RangeNotSatisfiable) as
    /// [`ByteRange::resolve`] says.
    fn read(&self, path: &str, range: ByteRange) -> IoJob<Bytes>;

    /// Opens `path` for positional reads, for a [`Reader`](crate::Reader).
    fn open(&self, path: &str) -> IoJob<Arc<dyn RandomRead>>;

    /// Replaces `path` with `data`, atomically, creating parent directories.
    fn write(&self, path: &str, data: Bytes) -> IoJob<Metadata>;

    /// Starts an atomic write of `path`, for a [`Writer`](crate::Writer).
    fn writer(&self, path: &str) -> IoJob<Box<dyn RawWrite>>;

    /// Removes file `path`, or empty directory `path/`. A missing path is not an error.
    fn delete(&self, path: &str) -> IoJob<()>;

    /// Removes directory `path/` and everything below it. A missing path is not an
    /// error.
    fn remove_all(&self, path: &str) -> IoJob<()>;

    /// Creates directory `path/` and its parents.
    fn create_dir(&self, path: &str) -> IoJob<()>;

    /// Copies file `from` over file `to`, atomically for readers of `to`.
    fn copy(&self, from: &str, to: &str) -> IoJob<()>;

    /// Moves file `from` to `to`.
    fn rename(&self, from: &str, to: &str) -> IoJob<()>;

    /// Starts listing directory `path/` (the root is `""`).
    fn list(&self, path: &str, recursive: bool) -> IoJob<Box<dyn RawList>>;
}

/// An open object that serves positional reads, shared by a reader's in-flight
/// chunk jobs.
pub trait RandomRead: Send + Sync + fmt::Debug + 'static {
    /// The object's size when it was opened.
    fn size(&self) -> u64;

    /// Reads exactly `range` (within `0..size`).
    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes>;

    /// Releases the object (its reader was dropped). A backend whose release does IO
    /// (closing a file may flush, and block on a network filesystem) returns a job
    /// for it, so that it runs on the executor and not on the dropping thread. The
    /// default releases in place.
    fn close(self: Arc<Self>) -> IoJob<()> {
        drop(self);
        IoJob::ready(Ok(()))
    }
}

/// An atomic write in progress. Ownership travels into each job and comes back, so
/// no job ever shares a writer with another.
///
/// Dropping a `RawWrite` without [`close`](Self::close) must leave the target
/// untouched and clean up (no temporary file left behind).
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
