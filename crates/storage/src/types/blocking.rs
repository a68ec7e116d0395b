//! [`BlockingOperator`]: the same operations for sync callers.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::{Range, RangeBounds};

use bytes::Bytes;

use crate::{Entry, Lister, Metadata, Operator, Reader, Result, Writer};

/// The [`Operator`]'s operations for sync callers on plain threads, from
/// [`Operator::blocking`].
///
/// Each call submits its IO to the operator's executor and blocks the calling
/// thread until it is done; no tokio runtime is needed. Calling it from inside a
/// runtime does not panic, but blocks that runtime's thread while it waits: prefer
/// the async [`Operator`] there.
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

    /// The async operator behind this one.
    pub fn async_operator(&self) -> &Operator {
        &self.op
    }

    /// See [`Operator::read`].
    ///
    /// # Errors
    ///
    /// As [`Operator::read`].
    pub fn read(&self, path: &str) -> Result<Bytes> {
        self.op.read(path).wait()
    }

    /// See [`Operator::read_range`].
    ///
    /// # Errors
    ///
    /// As [`Operator::read_range`].
    pub fn read_range(&self, path: &str, range: impl RangeBounds<u64>) -> Result<Bytes> {
        self.op.read_range(path, range).wait()
    }

    /// See [`Operator::read_ranges`].
    ///
    /// # Errors
    ///
    /// As [`Operator::read_ranges`].
    pub fn read_ranges(&self, path: &str, ranges: Vec<Range<u64>>) -> Result<Vec<Bytes>> {
        self.op.read_ranges(path, ranges).wait()
    }

    /// See [`Operator::stat`].
    ///
    /// # Errors
    ///
    /// As [`Operator::stat`].
    pub fn stat(&self, path: &str) -> Result<Metadata> {
        self.op.stat(path).wait()
    }

    /// See [`Operator::exists`].
    ///
    /// # Errors
    ///
    /// As [`Operator::exists`].
    pub fn exists(&self, path: &str) -> Result<bool> {
        self.op.exists(path).wait()
    }

    /// See [`Operator::write`].
    ///
    /// # Errors
    ///
    /// As [`Operator::write`].
    pub fn write(&self, path: &str, data: impl Into<Bytes>) -> Result<Metadata> {
        self.op.write(path, data).wait()
    }

    /// See [`Operator::delete`].
    ///
    /// # Errors
    ///
    /// As [`Operator::delete`].
    pub fn delete(&self, path: &str) -> Result<()> {
        self.op.delete(path).wait()
    }

    /// See [`Operator::remove_all`].
    ///
    /// # Errors
    ///
    /// As [`Operator::remove_all`].
    pub fn remove_all(&self, prefix: &str) -> Result<()> {
        self.op.remove_all(prefix).wait()
    }

    /// See [`Operator::create_dir`].
    ///
    /// # Errors
    ///
    /// As [`Operator::create_dir`].
    pub fn create_dir(&self, path: &str) -> Result<()> {
        self.op.create_dir(path).wait()
    }

    /// See [`Operator::copy`].
    ///
    /// # Errors
    ///
    /// As [`Operator::copy`].
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.op.copy(from, to).wait()
    }

    /// See [`Operator::rename`].
    ///
    /// # Errors
    ///
    /// As [`Operator::rename`].
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.op.rename(from, to).wait()
    }

    /// See [`Operator::list`].
    ///
    /// # Errors
    ///
    /// As [`Operator::list`].
    pub fn list(&self, path: &str) -> Result<Vec<Entry>> {
        self.op.list(path).wait()
    }

    /// See [`Operator::list_recursive`].
    ///
    /// # Errors
    ///
    /// As [`Operator::list_recursive`].
    pub fn list_recursive(&self, path: &str) -> Result<Vec<Entry>> {
        self.op.list_recursive(path).wait()
    }

    /// An iterator over [`Operator::lister`]'s entries.
    ///
    /// # Errors
    ///
    /// As [`Operator::list`].
    pub fn lister(&self, path: &str) -> Result<BlockingLister> {
        Ok(BlockingLister(self.op.lister(path).wait()?))
    }

    /// A [`Read`] + [`Seek`] reader; see [`Operator::reader`].
    ///
    /// # Errors
    ///
    /// As [`Operator::reader`].
    pub fn reader(&self, path: &str) -> Result<BlockingReader> {
        Ok(BlockingReader(self.op.reader(path).wait()?))
    }

    /// A [`Write`] writer; see [`Operator::writer`].
    ///
    /// # Errors
    ///
    /// As [`Operator::writer`].
    pub fn writer(&self, path: &str) -> Result<BlockingWriter> {
        Ok(BlockingWriter(self.op.writer(path).wait()?))
    }
}

/// [`Reader`] for sync callers: [`Read`] + [`Seek`].
#[derive(Debug)]
pub struct BlockingReader(Reader);

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        futures::executor::block_on(futures::AsyncReadExt::read(&mut self.0, buf))
    }
}

impl Seek for BlockingReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        futures::executor::block_on(futures::AsyncSeekExt::seek(&mut self.0, pos))
    }
}

/// [`Writer`] for sync callers: [`Write`], committed by [`close`](Self::close).
#[derive(Debug)]
pub struct BlockingWriter(Writer);

impl BlockingWriter {
    /// Commits the object; see [`Writer::close`].
    ///
    /// # Errors
    ///
    /// As [`Writer::close`].
    pub fn close(&mut self) -> Result<Metadata> {
        futures::executor::block_on(self.0.close())
    }

    /// Gives up the write; see [`Writer::abort`].
    ///
    /// # Errors
    ///
    /// As [`Writer::abort`].
    pub fn abort(&mut self) -> Result<()> {
        futures::executor::block_on(self.0.abort())
    }
}

impl Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        futures::executor::block_on(futures::AsyncWriteExt::write(&mut self.0, buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        futures::executor::block_on(futures::AsyncWriteExt::flush(&mut self.0))
    }
}

/// [`Lister`] for sync callers: an [`Iterator`]. As the `Lister`'s `Stream`, it
/// yields a failure once, then ends, so that a loop that logs errors and goes on
/// (or `flatten`, `count`) stops; [`Lister::next_entry`] keeps returning it.
#[derive(Debug)]
pub struct BlockingLister(Lister);

impl Iterator for BlockingLister {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        futures::executor::block_on(futures::StreamExt::next(&mut self.0))
    }
}
