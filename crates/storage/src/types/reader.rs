//! [`Reader`]: streaming reads whose IO happens on the executor, ahead of the consumer.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;
use io_executor::Executor;

use std::ops::Range;

use crate::raw::Opened;
use crate::types::io_future::{Opener, Task};
use crate::types::open_object::OpenObject;
use crate::types::operator::in_full;
use crate::{Error, ErrorKind, Metadata, Result};

/// A reader of one object, from [`Operator::reader`](crate::Operator::reader).
///
/// It is [`tokio::io::AsyncRead`] + [`tokio::io::AsyncBufRead`] +
/// [`tokio::io::AsyncSeek`], the same three of `futures_io`, and a [`Stream`] of
/// `Result<Bytes>`. It is buffered already: wrapping it in a `BufReader` only adds a
/// copy.
///
/// # How it reads
///
/// The object was opened once, on the executor (or, for a file fs holds open whose
/// first read is small and in page cache, on the caller's thread: see
/// [`Options::read_now`](crate::Options::read_now)). The reader keeps up to
/// [`Options::prefetch`](crate::Options::prefetch) chunk reads of
/// [`Options::chunk_size`](crate::Options::chunk_size) bytes in flight on the
/// executor, ahead of the consumer; polling it only collects chunks that are already
/// there, and submits the next. At most `(prefetch + 1) * chunk_size` bytes are held
/// per reader, or [`whole_up_to`](crate::ReaderWith::whole_up_to) where that is more
/// and the whole range is read at once; but on S3 a range to the object's end is
/// opened with one request for `whole_up_to` bytes (its answer brings the size),
/// kept as the first chunk while `prefetch` chunks are read ahead beside it: up to
/// `whole_up_to + prefetch * chunk_size` for an object longer than that. The `Stream` hands over the executor's buffers as they are, without
/// copying; `AsyncRead` copies into the caller's buffer, as its signature requires.
///
/// Seeking within the current chunk (backwards too: it is kept whole while it is
/// read) is free; seeking elsewhere cancels the reads in flight and starts again at
/// the new position. Seeking past the end is allowed and
/// reads nothing, as with files.
///
/// A reader made with a range ([`reader_with`](crate::Operator::reader_with)) reads
/// just that part of the object, as if it were the whole: positions, seeks and
/// [`size`](Self::size) are relative to the range's start.
///
/// # Errors are sticky
///
/// Once a read has failed, every later read (and seek) returns that same error:
/// a failure is never turned into an end of file, so `read_to_end` cannot report
/// success on truncated data. The [`Stream`] yields the error once, then ends, as
/// streams of results do: a consumer looping on `next()` stops instead of getting
/// the same error for ever.
///
/// # Drop and cancel safety
///
/// Dropping the reader cancels its reads in flight and releases the object (for fs,
/// closes the file) on the executor, not on the dropping thread.
pub struct Reader {
    executor: Executor,
    path: Arc<str>,
    /// Released on the executor when the reader is dropped.
    source: OpenObject,
    /// The part of the object read, in object offsets.
    range: Range<u64>,
    /// Position of the next byte handed to the consumer, from `range.start`.
    pos: u64,
    /// The last read, whole (a seek back into it is free too), and where it starts
    /// (from `range.start`): `read_at <= pos <= read_at + read.len()`, and the
    /// bytes from `pos` on, already read, are its [`rest`](Self::rest).
    read: Bytes,
    read_at: u64,
    /// Reads in flight, contiguous from the end of `read`, each with the range it
    /// must return in full.
    inflight: VecDeque<(Task<Bytes>, Range<u64>)>,
    /// Where the next read to submit starts, from `range.start`.
    next_fetch: u64,
    chunk_size: u64,
    prefetch: usize,
    /// The first error; every later read returns it.
    error: Option<Error>,
    /// The `Stream` has yielded the error, and has ended.
    stream_ended: bool,
}

impl Reader {
    /// The path read, as the caller gave it (errors name it).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn new(
        opener: Opener,
        path: String,
        opened: Opened,
        chunk_size: usize,
        prefetch: usize,
    ) -> Self {
        let first = opened.first.len() as u64;
        let opened_empty = first == 0;
        let executor = opener.rest();
        let mut reader = Self {
            source: OpenObject::new(opened.object, executor.clone()),
            executor,
            path: path.into(),
            range: opened.range,
            pos: 0,
            read: opened.first,
            read_at: 0,
            inflight: VecDeque::new(),
            next_fetch: first,
            chunk_size: chunk_size.max(1) as u64,
            prefetch: prefetch.max(1),
            error: None,
            stream_ended: false,
        };
        // The first read is the operation's first job where the executor took
        // none for it (opened on the caller's thread, nothing read there): a full
        // queue refuses it, and the reader's first read says so (at the start: no
        // place is lost). Every later one continues it.
        let first = (!opener.accepted && opened_empty).then_some(opener.executor);
        reader.fill_on(first);
        reader
    }

    /// How many bytes the reader reads: the object's size when it was opened, or the
    /// length of the range it was opened with.
    pub fn size(&self) -> u64 {
        self.range.end - self.range.start
    }

    /// The part of the object this reader reads, in object offsets.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// The object's metadata when it was opened: the version every byte comes from.
    pub fn metadata(&self) -> &Metadata {
        self.source.metadata()
    }

    /// The position of the next byte to be read.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Keeps `prefetch` reads in flight.
    fn fill(&mut self) {
        self.fill_on(None);
    }

    /// [`fill`](Self::fill), submitting its first read to `first` (if given), the
    /// others to the reader's own executor.
    fn fill_on(&mut self, mut first: Option<Executor>) {
        let size = self.size();
        while self.inflight.len() < self.prefetch && self.next_fetch < size {
            let end = self.next_fetch.saturating_add(self.chunk_size).min(size);
            let at = self.range.start;
            let range = at + self.next_fetch..at + end;
            let job = Arc::clone(&self.source).read_at(range.clone());
            let on = first.take();
            let task = Task::submit(on.as_ref().unwrap_or(&self.executor), job);
            // A first read refused (a full queue) ends the reader: nothing more is
            // queued behind it. (One that ended that fast only puts the rest off
            // to the next fill.)
            let ended = on.is_some() && task.is_finished();
            self.inflight.push_back((task, range));
            self.next_fetch = end;
            if ended {
                break;
            }
        }
    }

    /// Records the first error; returns what every read from now on returns.
    fn fail(&mut self, err: Error) -> Error {
        let err = self.error(err);
        self.inflight.clear();
        self.read = Bytes::new();
        self.read_at = self.pos;
        self.error = Some(err.clone());
        err
    }

    fn error(&self, err: Error) -> Error {
        err.with_operation("reader")
            .with_path(self.path.to_string())
    }

    /// How far into `read` the consumer is.
    fn offset(&self) -> usize {
        (self.pos - self.read_at) as usize
    }

    /// The bytes from `pos` on, already read.
    fn rest(&self) -> &[u8] {
        &self.read[self.offset()..]
    }

    /// Makes [`rest`](Self::rest) non-empty; `Ok(false)` at the end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool>> {
        self.failed()?;
        if !self.rest().is_empty() {
            return Poll::Ready(Ok(true));
        }
        if self.pos >= self.size() {
            return Poll::Ready(Ok(false));
        }
        // Topped up before waiting, unless the next read has ended already: a
        // refusal then ends the reader, and nothing is queued behind it.
        if self
            .inflight
            .front()
            .is_none_or(|(task, _)| !task.is_finished())
        {
            self.fill();
        }
        let Some((front, range)) = self.inflight.front_mut() else {
            return Poll::Ready(Ok(false));
        };
        let range = range.clone();
        let result = ready!(Pin::new(front).poll(cx));
        self.inflight.pop_front();
        // A backend's read answers for the bytes it was asked, all of them: a read
        // of another length is an error, never a hole before the next read's bytes.
        let read = result.and_then(|bytes| {
            if bytes.is_empty() {
                Err(Error::new(ErrorKind::Unexpected)
                    .with_message("object shrank while it was read"))
            } else {
                in_full(bytes, &range)
            }
        });
        match read {
            Ok(bytes) => {
                self.read = bytes;
                self.read_at = self.pos;
                self.fill();
                Poll::Ready(Ok(true))
            }
            Err(e) => Poll::Ready(Err(self.fail(e))),
        }
    }

    /// The error every read returns once one has failed (an empty one too).
    fn failed(&self) -> Result<()> {
        self.error.as_ref().map_or(Ok(()), |err| Err(err.clone()))
    }

    fn poll_read_slice(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(self.failed().map(|()| 0));
        }
        if !ready!(self.poll_chunk(cx))? {
            return Poll::Ready(Ok(0));
        }
        let rest = self.rest();
        let n = buf.len().min(rest.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n as u64;
        Poll::Ready(Ok(n))
    }

    fn seek_to(&mut self, target: SeekFrom) -> io::Result<u64> {
        if let Some(err) = &self.error {
            return Err(err.clone().into());
        }
        let base = match target {
            SeekFrom::Start(n) => return Ok(self.move_to(n)),
            SeekFrom::End(delta) => (self.size(), delta),
            SeekFrom::Current(delta) => (self.pos, delta),
        };
        let pos = base.0.checked_add_signed(base.1).ok_or_else(|| {
            // Not sticky: the reader is where it was, and may seek again.
            self.error(Error::new(ErrorKind::InvalidInput).with_message(format!(
                "seek to {target:?} from {}: a negative or overflowing position",
                base.0
            )))
        })?;
        Ok(self.move_to(pos))
    }

    fn move_to(&mut self, pos: u64) -> u64 {
        // Within the last read, backwards as forwards: the reads in flight follow
        // it, and stay.
        let within = pos
            .checked_sub(self.read_at)
            .is_some_and(|at| at <= self.read.len() as u64);
        if !within {
            self.read = Bytes::new();
            self.read_at = pos;
            self.inflight.clear();
            self.next_fetch = pos;
        }
        self.pos = pos;
        pos
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // Reads in flight are cancelled; `source` releases the object on the
        // executor.
        self.inflight.clear();
    }
}

impl Stream for Reader {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes>>> {
        let this = self.get_mut();
        if this.stream_ended {
            return Poll::Ready(None);
        }
        match ready!(this.poll_chunk(cx)) {
            Ok(true) => {
                let chunk = this.read.slice(this.offset()..);
                this.pos += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            Ok(false) => Poll::Ready(None),
            Err(e) => {
                this.stream_ended = true;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.stream_ended {
            return (0, Some(0));
        }
        let left = self.size().saturating_sub(self.pos);
        let chunks = left.div_ceil(self.chunk_size) as usize;
        (usize::from(left > 0), Some(chunks.saturating_add(1)))
    }
}

impl tokio::io::AsyncRead for Reader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(this.failed().map_err(io::Error::from));
        }
        if !ready!(this.poll_chunk(cx))? {
            return Poll::Ready(Ok(()));
        }
        let rest = this.rest();
        let n = buf.remaining().min(rest.len());
        buf.put_slice(&rest[..n]);
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
            Ok(_) => Poll::Ready(Ok(this.rest())),
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let amt = amt.min(this.rest().len());
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
        match &self.error {
            Some(err) => Poll::Ready(Err(err.clone().into())),
            None => Poll::Ready(Ok(self.pos)),
        }
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
            .field("range", &self.range)
            .field("pos", &self.pos)
            .field("inflight", &self.inflight.len())
            .finish()
    }
}
