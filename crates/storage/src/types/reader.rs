//! [`Reader`]: streaming reads whose IO happens on the executor, ahead of the consumer.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use io_executor::Executor;

use crate::raw::RandomRead;
use crate::types::io_future::Task;
use crate::types::operator::Options;
use crate::{Error, ErrorKind, Result};

/// A reader of one object, from [`Operator::reader`](crate::Operator::reader).
///
/// It is [`tokio::io::AsyncRead`] + [`tokio::io::AsyncBufRead`] +
/// [`tokio::io::AsyncSeek`], the same three of `futures_io`, and a [`Stream`] of
/// `Result<Bytes>`. It is buffered already: wrapping it in a `BufReader` only adds a
/// copy.
///
/// # How it reads
///
/// The object was opened once, on the executor. The reader keeps up to
/// [`Options::prefetch`] chunk reads of [`Options::chunk_size`] bytes in flight on the
/// executor, ahead of the consumer; polling it only collects chunks that are already
/// there, and submits the next. At most `(prefetch + 1) * chunk_size` bytes are held
/// per reader. The `Stream` hands over the executor's buffers as they are, without
/// copying; `AsyncRead` copies into the caller's buffer, as its signature requires.
///
/// Seeking within the current chunk is free; seeking elsewhere cancels the reads in
/// flight and starts again at the new position. Seeking past the end is allowed and
/// reads nothing, as with files.
///
/// # Drop and cancel safety
///
/// Dropping the reader cancels its reads in flight and releases the object (for fs,
/// closes the file) on the executor, not on the dropping thread.
pub struct Reader {
    executor: Executor,
    path: Arc<str>,
    source: Arc<dyn RandomRead>,
    size: u64,
    /// Position of the next byte handed to the consumer.
    pos: u64,
    /// Bytes from `pos` on, already read.
    chunk: Bytes,
    /// Reads in flight, contiguous from `pos + chunk.len()`.
    inflight: VecDeque<Task<Bytes>>,
    /// Where the next read to submit starts.
    next_fetch: u64,
    chunk_size: u64,
    prefetch: usize,
    failed: bool,
}

impl Reader {
    pub(crate) fn new(
        executor: Executor,
        path: String,
        source: Arc<dyn RandomRead>,
        options: Options,
    ) -> Self {
        let size = source.size();
        let mut reader = Self {
            executor,
            path: path.into(),
            source,
            size,
            pos: 0,
            chunk: Bytes::new(),
            inflight: VecDeque::new(),
            next_fetch: 0,
            chunk_size: options.chunk_size.max(1) as u64,
            prefetch: options.prefetch.max(1),
            failed: false,
        };
        reader.fill();
        reader
    }

    /// The object's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The position of the next byte to be read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Keeps `prefetch` reads in flight.
    fn fill(&mut self) {
        while self.inflight.len() < self.prefetch && self.next_fetch < self.size {
            let end = (self.next_fetch + self.chunk_size).min(self.size);
            let job = Arc::clone(&self.source).read_at(self.next_fetch..end);
            self.inflight.push_back(Task::submit(&self.executor, job));
            self.next_fetch = end;
        }
    }

    fn error(&self, err: Error) -> Error {
        err.with_operation("reader")
            .with_path(self.path.to_string())
    }

    /// Makes `self.chunk` non-empty; `Ok(false)` at the end of the object.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        if !self.chunk.is_empty() {
            return Poll::Ready(Ok(true));
        }
        if self.failed || self.pos >= self.size {
            return Poll::Ready(Ok(false));
        }
        self.fill();
        let Some(front) = self.inflight.front_mut() else {
            return Poll::Ready(Ok(false));
        };
        let result = ready!(Pin::new(front).poll(cx));
        self.inflight.pop_front();
        match result {
            Ok(bytes) if bytes.is_empty() => {
                self.failed = true;
                Poll::Ready(Err(self.error(
                    Error::new(ErrorKind::Unexpected)
                        .with_message("object shrank while it was read"),
                )))
            }
            Ok(bytes) => {
                self.chunk = bytes;
                self.fill();
                Poll::Ready(Ok(true))
            }
            Err(e) => {
                self.failed = true;
                self.inflight.clear();
                Poll::Ready(Err(self.error(e)))
            }
        }
    }

    fn poll_read_slice(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        if buf.is_empty() || !ready!(self.poll_chunk(cx))? {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        self.pos += n as u64;
        Poll::Ready(Ok(n))
    }

    fn seek_to(&mut self, target: SeekFrom) -> io::Result<u64> {
        let base = match target {
            SeekFrom::Start(n) => return Ok(self.move_to(n)),
            SeekFrom::End(delta) => (self.size, delta),
            SeekFrom::Current(delta) => (self.pos, delta),
        };
        let pos = base.0.checked_add_signed(base.1).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        Ok(self.move_to(pos))
    }

    fn move_to(&mut self, pos: u64) -> u64 {
        if pos >= self.pos && pos - self.pos <= self.chunk.len() as u64 {
            self.chunk.advance((pos - self.pos) as usize);
        } else {
            self.chunk = Bytes::new();
            self.inflight.clear();
            self.next_fetch = pos;
        }
        self.pos = pos;
        self.failed = false;
        pos
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Reads in flight are cancelled; the object is released on the executor.
        self.inflight.clear();
        Task::submit(&self.executor, Arc::clone(&self.source).close()).detach();
    }
}

impl Stream for Reader {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        match ready!(this.poll_chunk(cx)) {
            Ok(true) => {
                let chunk = std::mem::take(&mut this.chunk);
                this.pos += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok(false) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.size.saturating_sub(self.pos);
        let chunks = left.div_ceil(self.chunk_size) as usize;
        (usize::from(left > 0), Some(chunks + 1))
    }
}

impl tokio::io::AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || !ready!(this.poll_chunk(cx))? {
            return Poll::Ready(Ok(()));
        }
        let n = buf.remaining().min(this.chunk.len());
        buf.put_slice(&this.chunk[..n]);
        this.chunk.advance(n);
        this.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// `fill_buf` hands out the current chunk as it is: a buffered read with no copy
/// beyond the one into the caller's own memory when it consumes.
impl tokio::io::AsyncBufRead for Reader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        match ready!(this.poll_chunk(cx)) {
            Ok(_) => Poll::Ready(Ok(&this.chunk[..])),
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let amt = amt.min(this.chunk.len());
        this.chunk.advance(amt);
        this.pos += amt as u64;
    }
}

impl futures_io::AsyncBufRead for Reader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        tokio::io::AsyncBufRead::poll_fill_buf(self, cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        tokio::io::AsyncBufRead::consume(self, amt);
    }
}

impl tokio::io::AsyncSeek for Reader {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        self.get_mut().seek_to(position).map(drop)
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

impl futures_io::AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_read_slice(cx, buf)
            .map_err(io::Error::from)
    }
}

impl futures_io::AsyncSeek for Reader {
    fn poll_seek(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        position: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        Poll::Ready(self.get_mut().seek_to(position))
    }
}

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("pos", &self.pos)
            .field("inflight", &self.inflight.len())
            .finish()
    }
}
