//! [`Writer`]: an atomic write whose IO happens on the executor, a chunk at a time.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use io_executor::Executor;

use crate::raw::{self, IoJob, RawWrite};
use crate::types::io_future::Task;
use crate::{Error, ErrorKind, Metadata, Result};

/// A writer of one object, from [`Operator::writer`](crate::Operator::writer).
///
/// It is [`tokio::io::AsyncWrite`] and [`futures_io::AsyncWrite`]. Written bytes are
/// buffered up to [`Options::write_chunk_size`](crate::Options::write_chunk_size) and
/// then handed to the executor as one chunk, while the next chunk fills (one chunk
/// in flight at a time, so memory stays bounded). [`write_bytes`](Self::write_bytes)
/// hands over `Bytes` without copying.
///
/// # Commit and abort
///
/// Nothing is visible at the target until [`close`](Self::close) commits, atomically:
/// a reader sees the old object or the new one. [`abort`](Self::abort), or dropping
/// the writer without `close`, leaves the target untouched and nothing behind
/// (no temporary file). `poll_shutdown`/`poll_close` commit like `close`.
///
/// # Errors are sticky
///
/// A chunk is written on the executor after the call that handed it over returned,
/// so its failure (a full disk, a shut-down executor) is reported by the next call:
/// a write, `flush` or `close`. From then on every write, `flush` and `close`
/// returns that same error, with its kind and source; the target keeps its old
/// content. [`abort`](Self::abort) then succeeds: there is nothing left to clean
/// up, unless the failure says otherwise (an S3 upload that could not be
/// aborted, `abort_failed`; a commit that may have been made, `stored`), and
/// then returns that error. A writer aborted before it failed returns
/// [`Cancelled`](ErrorKind::Cancelled) from every later write (as a
/// `std::io::Error`, of kind `Other`, never `Interrupted`, which std's
/// `write_all` would call again for ever).
pub struct Writer {
    executor: Executor,
    path: String,
    state: State,
    buf: BytesMut,
    chunk_size: usize,
}

enum State {
    Idle(Box<dyn RawWrite>),
    Writing(Task<Box<dyn RawWrite>>),
    Closing(Task<Metadata>),
    Closed(Metadata),
    /// The backend's clean-up, submitted by [`Writer::abort`], on its way: kept
    /// here so that a dropped `abort` future neither cancels it nor loses its
    /// failure.
    Aborting(Task<()>),
    /// A chunk, the commit or an abort failed (or the writer was aborted).
    Failed(Error),
}

impl Writer {
    /// The path written, as the caller gave it (errors name it).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn new(
        executor: Executor,
        path: String,
        raw: Box<dyn RawWrite>,
        chunk_size: usize,
    ) -> Self {
        Self {
            // Its chunks and commit continue a write the executor accepted: the
            // queue's bound does not refuse them, which would lose the write.
            executor: executor.without_queue_bound(),
            path,
            state: State::Idle(raw),
            buf: BytesMut::new(),
            chunk_size: chunk_size.max(1),
        }
    }

    fn error(&self, err: Error) -> Error {
        err.with_operation("writer").with_path(self.path.clone())
    }

    /// Records `err` as the writer's failure; returns what every call returns from
    /// now on.
    fn fail(&mut self, err: Error) -> Error {
        let err = self.error(err);
        self.state = State::Failed(err.clone());
        self.buf.clear();
        err
    }

    /// What every call but `abort` says of an aborted writer.
    fn aborted(&self) -> Error {
        self.error(Error::new(ErrorKind::Cancelled).with_message("the writer was aborted"))
    }

    /// Waits for the clean-up [`abort`](Self::abort) submitted, if it is on its
    /// way. Its failure is returned once, and kept as the `abort_failed` context
    /// of the writer's error, so that a later `abort` says it again.
    fn poll_aborting(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let State::Aborting(task) = &mut self.state else {
            return Poll::Ready(Ok(()));
        };
        let result = ready!(Pin::new(task).poll(cx));
        let aborted = self.aborted();
        Poll::Ready(match result {
            Ok(()) => {
                self.state = State::Failed(aborted);
                Ok(())
            }
            Err(e) => {
                let e = self.error(e);
                let kept = if e.context(raw::ABORT_FAILED).is_some() {
                    // A chunk that failed, and could not clean up: it says so.
                    e.clone()
                } else if e.kind() == ErrorKind::ShutDown {
                    // Refused, or cut off, by a shutdown: the backend's writer
                    // cleaned up as it was dropped, and logs what it could not.
                    aborted
                } else {
                    aborted.with_context(raw::ABORT_FAILED, e.to_string())
                };
                self.state = State::Failed(kept);
                Err(e)
            }
        })
    }

    /// What `abort` says of a writer whose commit succeeded.
    fn already_committed(&self) -> Error {
        self.error(Error::new(ErrorKind::InvalidInput).with_message("already committed"))
    }

    /// The error for a call on a writer that cannot take it.
    fn unusable(&self) -> Option<Error> {
        match &self.state {
            State::Failed(err) => Some(err.clone()),
            State::Aborting(_) => Some(self.aborted()),
            State::Closing(_) | State::Closed(_) => Some(self.error(
                Error::new(ErrorKind::InvalidInput).with_message("the writer is already closed"),
            )),
            State::Idle(_) | State::Writing(_) => None,
        }
    }

    /// Waits for the chunk in flight, if any.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match &mut self.state {
            State::Idle(_) => Poll::Ready(Ok(())),
            State::Writing(task) => match ready!(Pin::new(task).poll(cx)) {
                Ok(raw) => {
                    self.state = State::Idle(raw);
                    Poll::Ready(Ok(()))
                }
                Err(e) => Poll::Ready(Err(self.fail(e))),
            },
            _ => Poll::Ready(Err(self.unusable().unwrap_or_else(|| {
                self.error(Error::new(ErrorKind::Unexpected).with_message("writer in no state"))
            }))),
        }
    }

    /// Hands `data` to the executor (the writer must be idle).
    fn submit(&mut self, data: Bytes) {
        let placeholder = State::Failed(Error::new(ErrorKind::Unexpected));
        if let State::Idle(raw) = std::mem::replace(&mut self.state, placeholder) {
            self.state = State::Writing(Task::submit(&self.executor, raw.write(data)));
        }
    }

    fn poll_write_slice(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Result<usize>> {
        if let Some(err) = self.unusable() {
            return Poll::Ready(Err(err));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if self.buf.len() < self.chunk_size {
                // A chunk that failed in the meantime is reported now, before more
                // data is taken.
                if let State::Writing(_) = self.state
                    && let Poll::Ready(Err(e)) = self.poll_idle(cx)
                {
                    return Poll::Ready(Err(e));
                }
                let n = data.len().min(self.chunk_size - self.buf.len());
                self.buf.extend_from_slice(&data[..n]);
                if self.buf.len() >= self.chunk_size {
                    // Hand the full chunk over now if nothing is in flight.
                    match self.poll_idle(cx) {
                        Poll::Ready(Ok(())) => {
                            let chunk = self.buf.split().freeze();
                            self.submit(chunk);
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {}
                    }
                }
                return Poll::Ready(Ok(n));
            }
            // The buffer is full: it can only go once the chunk in flight is done.
            ready!(self.poll_idle(cx))?;
            let chunk = self.buf.split().freeze();
            self.submit(chunk);
        }
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.state {
            // Committed: nothing is left to flush (a wrapper may flush after
            // shutting down, as a file allows).
            State::Closed(_) => return Poll::Ready(Ok(())),
            // A flush while the commit is under way waits for it, and says how it
            // went: a wrapper's close flushes before each poll of the shutdown
            // (tokio-util's `FramedWrite`, a `Sink`'s `close`).
            State::Closing(_) => return self.poll_close_inner(cx).map_ok(drop),
            _ => {}
        }
        loop {
            ready!(self.poll_idle(cx))?;
            if self.buf.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let chunk = self.buf.split().freeze();
            self.submit(chunk);
        }
    }

    fn poll_close_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<Metadata>> {
        loop {
            match &mut self.state {
                State::Closed(metadata) => return Poll::Ready(Ok(metadata.clone())),
                State::Closing(task) => {
                    let result = ready!(Pin::new(task).poll(cx));
                    return Poll::Ready(match result {
                        Ok(metadata) => {
                            self.state = State::Closed(metadata.clone());
                            Ok(metadata)
                        }
                        // A commit cut off by a shutdown deadline may have
                        // been made: `abort` then says so.
                        Err(e) => Err(self.fail(e.stored_unknown_if_cut_off())),
                    });
                }
                State::Failed(err) => return Poll::Ready(Err(err.clone())),
                // Said once the clean-up has ended, as the writer's error.
                State::Aborting(_) => drop(ready!(self.poll_aborting(cx))),
                State::Idle(_) | State::Writing(_) => {
                    ready!(self.poll_flush_inner(cx))?;
                    let placeholder = State::Failed(Error::new(ErrorKind::Unexpected));
                    if let State::Idle(raw) = std::mem::replace(&mut self.state, placeholder) {
                        self.state = State::Closing(Task::submit(&self.executor, raw.close()));
                    }
                }
            }
        }
    }

    /// Writes `data` without copying it: buffered bytes go first, then `data` is
    /// handed to the executor as it is.
    ///
    /// # Errors
    ///
    /// The chunk in flight failed, or the writer is closed.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if the future is dropped, `data` may or may not have been
    /// written.
    pub async fn write_bytes(&mut self, data: impl Into<Bytes>) -> Result<()> {
        let data = data.into();
        if let Some(err) = self.unusable() {
            return Err(err);
        }
        poll_fn(|cx| self.poll_flush_inner(cx)).await?;
        if !data.is_empty() {
            self.submit(data);
            // A chunk the executor refused (it has shut down) fails this call.
            if matches!(&self.state, State::Writing(task) if task.is_finished()) {
                poll_fn(|cx| self.poll_idle(cx)).await?;
            }
        }
        Ok(())
    }

    /// Waits until the writer can take data at once: hands what is buffered to the
    /// executor and waits until every chunk written so far is written. The next
    /// [`write_bytes`](Self::write_bytes) then hands its data over before it first
    /// waits. (Unlike `AsyncWriteExt::flush`, errors keep their
    /// [`ErrorKind`].)
    ///
    /// # Errors
    ///
    /// A chunk failed, or the writer is closed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped, the future leaves the chunks in flight to finish, and
    /// a later call waits for them again.
    pub async fn ready(&mut self) -> Result<()> {
        if let Some(err) = self.unusable() {
            return Err(err);
        }
        poll_fn(|cx| self.poll_flush_inner(cx)).await
    }

    /// Writes what is buffered and commits the object atomically; returns its
    /// metadata. Calling it again returns the same metadata.
    ///
    /// # Errors
    ///
    /// A chunk or the commit failed; the target then keeps its old content,
    /// unless the error's `stored` context says otherwise (`yes`: the new content
    /// is in place, past an fs rename; `unknown`: an S3 answer lost, or a commit
    /// cut off by a shutdown deadline).
    ///
    /// # Cancel safety
    ///
    /// Once the chunks are written and the commit is submitted, dropping the future,
    /// or the writer, does not stop it: the commit runs to its end on the executor,
    /// and the target gets the whole new content (or, if the commit fails, keeps
    /// the old), never a part of it. Calling `close` again waits for that commit;
    /// a commit whose writer was dropped and that fails is logged (a `tracing`
    /// warning naming the path), as no caller is left to hear of it, by a job of
    /// the executor that waits for it (after a shutdown, outside the executor's
    /// jobs, none is taken: only a failure already met is logged).
    /// Before then, a drop leaves the target untouched, as dropping the writer
    /// does.
    pub async fn close(&mut self) -> Result<Metadata> {
        poll_fn(|cx| self.poll_close_inner(cx)).await
    }

    /// Gives up the write: the target keeps its old content (or stays absent), and
    /// nothing is left behind. On a writer that has failed, or was aborted, there
    /// is nothing to give up: `Ok`, unless the failed write could not clean up
    /// after itself (an S3 upload the server would not abort), or its failed
    /// commit may have been made (below).
    ///
    /// # Errors
    ///
    /// Cleaning up failed: now, or after the write failed (then the write's
    /// error, whose [`ABORT_FAILED`](crate::raw::ABORT_FAILED) context says why);
    /// the writer was already committed (`InvalidInput`). A commit still on its
    /// way (a [`close`](Self::close) that was dropped before it finished) is
    /// awaited first: if it succeeds, the writer was committed. A commit that
    /// failed (awaited here or by `close`) left the target with its old content
    /// and nothing to give up, unless its error says otherwise: its `stored`
    /// context (`yes`: the new content is in place, as after a failed `fsync`
    /// past the rename; `unknown`: an S3 answer lost, or a commit cut off by a
    /// shutdown deadline) makes it this call's error. A clean-up that fails (an S3
    /// upload the server would not abort) is this call's error, and stays the
    /// `abort_failed` context of the [`Cancelled`](ErrorKind::Cancelled) error
    /// that every later call returns, a later `abort` included.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not stop the clean-up: it goes on on the
    /// executor. The next `abort` (or `close`) waits for it and says how it went;
    /// if the writer is dropped instead, a failure is logged (a `tracing` warning
    /// naming the path).
    pub async fn abort(&mut self) -> Result<()> {
        let aborted = self.aborted();
        // A failed write whose backend could not clean up after it.
        let left_behind = |err: &Error| err.context(raw::ABORT_FAILED).is_some();
        // A commit that failed and may have been made (or was, past an fs rename).
        let may_be_stored = |err: &Error| err.context("stored").is_some();
        let cleanup = match std::mem::replace(&mut self.state, State::Failed(aborted)) {
            State::Idle(raw) => Task::submit(&self.executor, raw.abort()),
            // The chunk in flight, then the clean-up, in one job: kept in the
            // writer as the clean-up is, so that dropping this future cancels
            // neither.
            State::Writing(task) => {
                let on = self.executor.clone();
                Task::submit(
                    &self.executor,
                    IoJob::future(async move {
                        match task.await {
                            Ok(raw) => match raw.abort() {
                                IoJob::Async(abort) => abort.await,
                                job => Task::submit(&on, job).await,
                            },
                            // The backend dropped its writer, which cleaned up
                            // after itself (or says why it could not).
                            Err(e) if left_behind(&e) => Err(e),
                            Err(_) => Ok(()),
                        }
                    }),
                )
            }
            // A commit on its way (a `close` given up on): its outcome decides, as
            // it would for `close` called again.
            State::Closing(task) => {
                self.state = State::Closing(task);
                return match self.close().await {
                    Ok(_) => Err(self.already_committed()),
                    Err(e) if left_behind(&e) || may_be_stored(&e) => Err(e),
                    Err(_) => Ok(()),
                };
            }
            state @ State::Closed(_) => {
                self.state = state;
                return Err(self.already_committed());
            }
            // An abort given up on: its clean-up is still this call's to wait for.
            state @ State::Aborting(_) => {
                self.state = state;
                return poll_fn(|cx| self.poll_aborting(cx)).await;
            }
            // Whether its commit was awaited or given up on, as above.
            State::Failed(err) => {
                let left = (left_behind(&err) || may_be_stored(&err)).then(|| err.clone());
                self.state = State::Failed(err);
                return left.map_or(Ok(()), Err);
            }
        };
        self.buf.clear();
        self.state = State::Aborting(cleanup);
        poll_fn(|cx| self.poll_aborting(cx)).await
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Not committed: abort on the executor, without blocking the dropping thread.
        let placeholder = State::Failed(Error::new(ErrorKind::Cancelled));
        let state = std::mem::replace(&mut self.state, placeholder);
        // After a shutdown (outside the executor's jobs) the clean-up job is
        // refused and dropped right here,
        // and the backend's writer cleans up as it drops (a temporary file is
        // removed on this thread; an S3 upload's abort goes to this thread's
        // runtime, or is logged as left behind).
        // A clean-up's failure (an S3 upload left behind) has no caller to go to.
        let path = self.path.clone();
        let abort = move |raw: Box<dyn RawWrite>| {
            raw.abort().on_error(move |e| {
                let e = e.clone().with_operation("writer").with_path(path);
                tracing::warn!(error = %e, "cleaning up after a dropped writer failed");
            })
        };
        match state {
            State::Idle(raw) => Task::submit(&self.executor, abort(raw)).detach(),
            State::Writing(task) => task.release_with(&self.executor, abort),
            // A commit in flight is left to finish: the target gets the whole new
            // content, never a part of it.
            // Its failure has no caller left to go to: it is logged.
            State::Closing(task) => {
                let path = self.path.clone();
                task.detach_reporting(&self.executor, move |e| {
                    let e = e.with_operation("writer").with_path(path);
                    tracing::warn!(error = %e, "the commit of a dropped writer failed");
                });
            }
            // An abort given up on is left to finish; its failure (an S3 upload
            // left behind) is logged, as no caller is left to hear of it.
            State::Aborting(task) => {
                let path = self.path.clone();
                task.detach_reporting(&self.executor, move |e| {
                    let e = e.with_operation("writer").with_path(path);
                    tracing::warn!(error = %e, "cleaning up after an aborted writer failed");
                });
            }
            State::Closed(_) | State::Failed(_) => {}
        }
    }
}

impl tokio::io::AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_write_slice(cx, data)
            .map_err(io::Error::from)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_inner(cx).map_err(io::Error::from)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_close_inner(cx)
            .map_ok(drop)
            .map_err(io::Error::from)
    }
}

impl futures_io::AsyncWrite for Writer {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        tokio::io::AsyncWrite::poll_write(self, cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_flush(self, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        tokio::io::AsyncWrite::poll_shutdown(self, cx)
    }
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Idle(_) => "idle",
            State::Writing(_) => "writing",
            State::Closing(_) => "closing",
            State::Closed(_) => "closed",
            State::Aborting(_) => "aborting",
            State::Failed(_) => "failed",
        };
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("state", &state)
            .field("buffered", &self.buf.len())
            .finish()
    }
}
