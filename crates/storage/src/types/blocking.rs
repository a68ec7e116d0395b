//! [`BlockingOperator`]: the same operations for sync callers.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::{Range, RangeBounds};

use bytes::Bytes;
use io_executor::Executor;

use crate::{Entry, Error, ErrorKind, Lister, Metadata, Operator, Reader, Result, Writer};

/// The [`Operator`]'s operations for sync callers on plain threads, from
/// [`Operator::blocking`].
///
/// Each call submits its IO to the operator's executor and blocks the calling
/// thread until it is done; no tokio runtime is needed. Calling it from inside a
/// runtime, or inside another `block_on`, does not panic, but blocks that thread
/// while it waits: prefer the async [`Operator`] there. On a worker thread of the
/// operator's own executor, where the wait could never end (its IO may need that
/// thread), every call fails with [`ErrorKind::Unsupported`] instead; on its
/// blocking threads (`spawn_blocking`) calls work. An executor without threads of
/// its own ([`Executor::current`](io_executor::Executor::current)) cannot tell:
/// a blocking call from the current-thread runtime it runs on waits for ever. The
/// readers, writers and listers it returns block, and refuse, the same way (an IO
/// error of kind `Unsupported` for `Read`, `Write` and `Seek`).
///
/// # Examples
///
/// ```
/// let op = storage::Operator::from_uri("memory://")?.blocking();
/// op.write("k", "v")?;
/// assert_eq!(op.read("k")?, "v");
/// # Ok::<(), storage::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BlockingOperator {
    op: Operator,
}

impl BlockingOperator {
    pub(crate) fn new(op: Operator) -> Self {
        Self { op }
    }

    /// Refuses a call on a worker thread of the operator's own executor: see
    /// [`own_worker`].
    fn refuse_own_worker(&self, operation: &'static str, path: &str) -> Result<()> {
        refused(self.op.executor(), operation, path)
    }

    /// The async operator behind this one.
    pub fn async_operator(&self) -> &Operator {
        &self.op
    }

    /// See [`Operator::read`].
    ///
    /// # Errors
    ///
    /// As [`Operator::read`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn read(&self, path: &str) -> Result<Bytes> {
        self.refuse_own_worker("read", path)?;
        self.op.read(path).wait()
    }

    /// See [`Operator::read_range`].
    ///
    /// # Errors
    ///
    /// As [`Operator::read_range`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn read_range(&self, path: &str, range: impl RangeBounds<u64>) -> Result<Bytes> {
        self.refuse_own_worker("read_range", path)?;
        self.op.read_range(path, range).wait()
    }

    /// See [`Operator::read_ranges`].
    ///
    /// # Errors
    ///
    /// As [`Operator::read_ranges`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn read_ranges(&self, path: &str, ranges: Vec<Range<u64>>) -> Result<Vec<Bytes>> {
        self.refuse_own_worker("read_ranges", path)?;
        self.op.read_ranges(path, ranges).wait()
    }

    /// See [`Operator::stat`].
    ///
    /// # Errors
    ///
    /// As [`Operator::stat`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn stat(&self, path: &str) -> Result<Metadata> {
        self.refuse_own_worker("stat", path)?;
        self.op.stat(path).wait()
    }

    /// See [`Operator::exists`].
    ///
    /// # Errors
    ///
    /// As [`Operator::exists`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.refuse_own_worker("exists", path)?;
        self.op.exists(path).wait()
    }

    /// See [`Operator::write`].
    ///
    /// # Errors
    ///
    /// As [`Operator::write`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn write(&self, path: &str, data: impl Into<Bytes>) -> Result<Metadata> {
        self.refuse_own_worker("write", path)?;
        self.op.write(path, data).wait()
    }

    /// See [`Operator::delete`].
    ///
    /// # Errors
    ///
    /// As [`Operator::delete`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn delete(&self, path: &str) -> Result<()> {
        self.refuse_own_worker("delete", path)?;
        self.op.delete(path).wait()
    }

    /// See [`Operator::delete_many`].
    ///
    /// # Errors
    ///
    /// As [`Operator::delete_many`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn delete_many<I, P>(&self, paths: I) -> Result<Vec<Result<()>>>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<str>,
    {
        self.refuse_own_worker("delete_many", "")?;
        self.op.delete_many(paths).wait()
    }

    /// See [`Operator::remove_all`].
    ///
    /// # Errors
    ///
    /// As [`Operator::remove_all`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn remove_all(&self, prefix: &str) -> Result<()> {
        self.refuse_own_worker("remove_all", prefix)?;
        self.op.remove_all(prefix).wait()
    }

    /// See [`Operator::create_dir`].
    ///
    /// # Errors
    ///
    /// As [`Operator::create_dir`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn create_dir(&self, path: &str) -> Result<()> {
        self.refuse_own_worker("create_dir", path)?;
        self.op.create_dir(path).wait()
    }

    /// See [`Operator::copy`].
    ///
    /// # Errors
    ///
    /// As [`Operator::copy`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.refuse_own_worker("copy", from)?;
        self.op.copy(from, to).wait()
    }

    /// See [`Operator::rename`].
    ///
    /// # Errors
    ///
    /// As [`Operator::rename`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.refuse_own_worker("rename", from)?;
        self.op.rename(from, to).wait()
    }

    /// See [`Operator::list`].
    ///
    /// # Errors
    ///
    /// As [`Operator::list`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn list(&self, path: &str) -> Result<Vec<Entry>> {
        self.refuse_own_worker("list", path)?;
        self.op.list(path).wait()
    }

    /// See [`Operator::list_recursive`].
    ///
    /// # Errors
    ///
    /// As [`Operator::list_recursive`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn list_recursive(&self, path: &str) -> Result<Vec<Entry>> {
        self.refuse_own_worker("list_recursive", path)?;
        self.op.list_recursive(path).wait()
    }

    /// An iterator over [`Operator::lister`]'s entries.
    ///
    /// # Errors
    ///
    /// As [`Operator::list`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn lister(&self, path: &str) -> Result<BlockingLister> {
        self.refuse_own_worker("lister", path)?;
        Ok(BlockingLister {
            lister: self.op.lister(path).wait()?,
            executor: self.op.executor().clone(),
            refused: false,
        })
    }

    /// A [`Read`] + [`Seek`] reader; see [`Operator::reader`].
    ///
    /// # Errors
    ///
    /// As [`Operator::reader`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn reader(&self, path: &str) -> Result<BlockingReader> {
        self.refuse_own_worker("reader", path)?;
        Ok(BlockingReader(
            self.op.reader(path).wait()?,
            self.op.executor().clone(),
        ))
    }

    /// A [`Write`] writer; see [`Operator::writer`].
    ///
    /// # Errors
    ///
    /// As [`Operator::writer`]; [`ErrorKind::Unsupported`] on a worker thread
    /// of the operator's executor (see [`BlockingOperator`]).
    pub fn writer(&self, path: &str) -> Result<BlockingWriter> {
        self.refuse_own_worker("writer", path)?;
        Ok(BlockingWriter(
            self.op.writer(path).wait()?,
            self.op.executor().clone(),
        ))
    }
}

/// Why a blocking call cannot be made here, on a worker thread of `executor`:
/// the wait could never end, as an async job (an S3 request) submitted there is
/// queued on that very worker, which would be blocked waiting for it. Refused
/// every time, whatever the backend, so that the mistake shows up on fs too.
fn own_worker(executor: &Executor) -> Option<String> {
    let worker = executor.current_worker()?;
    Some(format!(
        "a blocking call on worker {worker} of the operator's executor {:?}, whose IO \
         may need that very thread: it would wait for itself for ever; await the async \
         Operator there, or call from a plain thread or a blocking job (spawn_blocking)",
        executor.name()
    ))
}

/// [`own_worker`]'s refusal as an IO error.
fn refused_io(executor: &Executor, operation: &'static str, path: &str) -> io::Result<()> {
    refused(executor, operation, path).map_err(io::Error::from)
}

/// [`own_worker`]'s refusal as our error, for `operation`.
fn refused(executor: &Executor, operation: &'static str, path: &str) -> Result<()> {
    match own_worker(executor) {
        None => Ok(()),
        Some(why) => Err(Error::new(ErrorKind::Unsupported)
            .with_message(why)
            .with_operation(operation)
            .with_path(path)),
    }
}

/// [`Reader`] for sync callers: [`Read`] + [`Seek`].
#[derive(Debug)]
pub struct BlockingReader(Reader, Executor);

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        refused_io(&self.1, "read", self.0.path())?;
        io_executor::block_on(futures::AsyncReadExt::read(&mut self.0, buf))
    }
}

impl Seek for BlockingReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        refused_io(&self.1, "seek", self.0.path())?;
        io_executor::block_on(futures::AsyncSeekExt::seek(&mut self.0, pos))
    }
}

/// [`Writer`] for sync callers: [`Write`], committed by [`close`](Self::close).
#[derive(Debug)]
pub struct BlockingWriter(Writer, Executor);

impl BlockingWriter {
    /// Commits the object; see [`Writer::close`].
    ///
    /// # Errors
    ///
    /// As [`Writer::close`].
    pub fn close(&mut self) -> Result<Metadata> {
        refused(&self.1, "close", self.0.path())?;
        io_executor::block_on(self.0.close())
    }

    /// Gives up the write; see [`Writer::abort`].
    ///
    /// # Errors
    ///
    /// As [`Writer::abort`].
    pub fn abort(&mut self) -> Result<()> {
        refused(&self.1, "abort", self.0.path())?;
        io_executor::block_on(self.0.abort())
    }
}

impl Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        refused_io(&self.1, "write", self.0.path())?;
        io_executor::block_on(futures::AsyncWriteExt::write(&mut self.0, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        refused_io(&self.1, "flush", self.0.path())?;
        io_executor::block_on(futures::AsyncWriteExt::flush(&mut self.0))
    }
}

/// [`Lister`] for sync callers: an [`Iterator`]. As the `Lister`'s `Stream`, it
/// yields a failure once, then ends, so that a loop that logs errors and goes on
/// (or `flatten`, `count`) stops; [`Lister::next_entry`] keeps returning it.
/// Moved to a worker thread of the operator's executor, where it cannot wait, it
/// yields that refusal once and ends too.
#[derive(Debug)]
pub struct BlockingLister {
    lister: Lister,
    executor: Executor,
    /// The refusal on a worker thread has been yielded: the listing is over.
    refused: bool,
}

impl Iterator for BlockingLister {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.refused {
            return None;
        }
        if let Err(e) = refused(&self.executor, "list", self.lister.path()) {
            self.refused = true;
            return Some(Err(e));
        }
        io_executor::block_on(futures::StreamExt::next(&mut self.lister))
    }
}
