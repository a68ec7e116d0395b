//! [`S3Writer`]: one `PUT` for small objects, a multipart upload with parts in
//! flight for large ones.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use io_executor::JoinHandle;

use super::body::ReqBody;
use super::core::{Core, UploadGuard, abort_failed, new_write_id, spawn_abort};
use super::xml::CompletedPart;
use crate::raw::{IoJob, RawWrite};
use crate::{Error, ErrorKind, Metadata, Result, WriteOptions};

/// A write in progress. Data is buffered until it passes the multipart threshold;
/// from then on every full part is uploaded by its own job on the worker that
/// started it (`io_executor::spawn_cleanup`: work of the executor, which its
/// shutdown waits for), at most `part_concurrency` at once. It holds those parts,
/// and while it waits for a place, less than a part and the chunk it was handed:
/// below `(part_concurrency + 1) * part_size` and a chunk (before the upload is
/// made, the threshold and a chunk).
///
/// Dropped without `close` or `abort` (its job was cancelled), it aborts its
/// parts and the upload in the background on the runtime it is dropped on.
pub(crate) struct S3Writer {
    core: Arc<Core>,
    path: String,
    key: String,
    /// Enforced by the commit (`PUT` or CompleteMultipartUpload).
    options: WriteOptions,
    pending: VecDeque<Bytes>,
    pending_len: usize,
    written: u64,
    upload: Option<Upload>,
    /// The configured part size, or more for a write whose length is known and
    /// would need more than [`MAX_PARTS`] of them.
    part_size: usize,
}

/// The most parts a multipart upload may have (S3's limit).
const MAX_PARTS: u32 = 10_000;

/// The part size for an object of `len` bytes: `configured`, or the least that
/// keeps it within [`MAX_PARTS`].
fn part_size_for(len: u64, configured: usize) -> usize {
    let least = usize::try_from(len.div_ceil(u64::from(MAX_PARTS))).unwrap_or(usize::MAX);
    configured.max(least)
}

struct Upload {
    id: String,
    /// Stored with the object, to know a completion whose answer was lost.
    write_id: String,
    next_part: u32,
    in_flight: VecDeque<JoinHandle<Result<CompletedPart>>>,
    done: Vec<CompletedPart>,
}

impl Upload {
    /// Waits for the oldest part in flight to end, and keeps its result. It
    /// leaves the list only then: a wait given up on (the caller's future
    /// dropped) leaves it there, for an abort to cancel and wait for, never
    /// running on unseen.
    async fn join_oldest(&mut self) -> Result<()> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        self.join(0).await
    }

    /// Waits for part `i` in flight (there is one) to end, and keeps its result;
    /// it leaves the list only then.
    async fn join(&mut self, i: usize) -> Result<()> {
        let ended = joined((&mut self.in_flight[i]).await);
        self.in_flight.remove(i);
        self.done.push(ended?);
        Ok(())
    }

    /// Keeps the results of the parts that have ended, wherever they are in the
    /// list: a part refused fails the writer's next call, not only the one that
    /// waits for it (a slow writer would go on feeding a lost upload until eight
    /// parts were in flight, or until `close`).
    async fn keep_ended(&mut self) -> Result<()> {
        while let Some(i) = self.in_flight.iter().position(JoinHandle::is_finished) {
            self.join(i).await?;
        }
        Ok(())
    }
}

impl fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Writer")
            .field("path", &self.path)
            .field("written", &self.written)
            .field("multipart", &self.upload.as_ref().map(|u| u.next_part - 1))
            .finish_non_exhaustive()
    }
}

impl S3Writer {
    pub(crate) fn new(core: Arc<Core>, path: &str, options: WriteOptions) -> Self {
        Self {
            part_size: core.part_size,
            key: core.key(path),
            core,
            path: path.to_owned(),
            options,
            pending: VecDeque::new(),
            pending_len: 0,
            written: 0,
            upload: None,
        }
    }

    /// For a write whose length is known: parts large enough that it needs at
    /// most [`MAX_PARTS`] of them.
    pub(crate) fn for_len(mut self, len: u64) -> Self {
        self.part_size = part_size_for(len, self.part_size);
        self
    }

    /// Appends `data`, uploading every full part once past the threshold. On error
    /// the upload is aborted.
    pub(crate) async fn push(&mut self, data: Bytes) -> Result<()> {
        self.written += data.len() as u64;
        self.pending_len += data.len();
        if !data.is_empty() {
            self.pending.push_back(data);
        }
        match self.upload_full_parts().await {
            Err(e) => Err(self.cancel_after_failure(e).await),
            ok => ok,
        }
    }

    async fn upload_full_parts(&mut self) -> Result<()> {
        if let Some(upload) = self.upload.as_mut() {
            upload.keep_ended().await?;
        }
        if self.upload.is_none() {
            if self.pending_len <= self.core.multipart_threshold {
                return Ok(());
            }
            // Both run to the end: an upload created while the checks failed is
            // aborted, never left behind (its parts would be billed until a
            // lifecycle rule removed them).
            let write_id = new_write_id()?;
            // Until the writer holds the upload, a drop (the caller gave up)
            // aborts it.
            let mut guard = UploadGuard::new(&self.core, &self.key);
            let create = async {
                let id = self
                    .core
                    .create_multipart(&self.key, &self.options, self.core.checksum, &write_id, &[])
                    .await?;
                guard.arm(&id);
                Ok::<_, crate::Error>(id)
            };
            let (created, checked) = if self.core.sends_with_checks() {
                futures::future::join(create, self.core.check_writable(&self.path)).await
            } else {
                // The bucket not found yet: the checks first (a server may make a
                // missing bucket for the upload), the upload only once they pass.
                self.core.check_writable(&self.path).await?;
                (create.await, Ok(()))
            };
            let id = match (created, checked) {
                (Ok(id), Ok(())) => id,
                (Ok(id), Err(e)) => {
                    // The refusal is the error; an upload left behind says so.
                    let aborted = self.core.abort_multipart(&self.key, &id).await;
                    guard.disarm();
                    return Err(match aborted {
                        Ok(()) => e,
                        Err(abort) => self.abort_failed(e, abort),
                    });
                }
                (Err(_), Err(e)) | (Err(e), Ok(())) => return Err(e),
            };
            guard.disarm();
            self.upload = Some(Upload {
                id,
                write_id,
                next_part: 1,
                in_flight: VecDeque::new(),
                done: Vec::new(),
            });
        }
        while self.pending_len >= self.part_size {
            // A place first: the part's bytes are not taken (held apart from the
            // pending ones) while it waits.
            self.wait_for_a_place().await?;
            let part = self.take(self.part_size);
            self.start_part(part).await?;
        }
        Ok(())
    }

    /// Waits until fewer than `part_concurrency` parts are in flight.
    async fn wait_for_a_place(&mut self) -> Result<()> {
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        while upload.in_flight.len() >= self.core.part_concurrency {
            upload.join_oldest().await?;
        }
        Ok(())
    }

    /// The first `len` pending bytes, as pieces (no copy).
    fn take(&mut self, len: usize) -> ReqBody {
        let mut pieces = Vec::new();
        let mut need = len;
        while need > 0 {
            let Some(mut front) = self.pending.pop_front() else {
                break;
            };
            if front.len() > need {
                let rest = front.split_off(need);
                self.pending.push_front(rest);
            }
            need -= front.len();
            pieces.push(front);
        }
        self.pending_len -= len - need;
        ReqBody::from_pieces(pieces)
    }

    /// Starts `body` as the next part (the caller has waited for a place).
    async fn start_part(&mut self, body: ReqBody) -> Result<()> {
        let Some(upload) = self.upload.as_mut() else {
            return Err(
                Error::new(ErrorKind::Unexpected).with_message("no upload to add a part to")
            );
        };
        let number = upload.next_part;
        if number > MAX_PARTS {
            return Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
                "the object needs more than S3's {MAX_PARTS} parts of {} bytes; \
                 raise S3Builder::part_size for writes this large",
                self.part_size
            )));
        }
        upload.next_part += 1;
        let core = Arc::clone(&self.core);
        let (key, id) = (self.key.clone(), upload.id.clone());
        let encryption = core.encryption_of(&self.options).cloned();
        let part = async move {
            let checksum = core.checksum;
            core.upload_part(&key, &id, number, body, checksum, encryption.as_ref())
                .await
        };
        // A job of this worker: it keeps uploading between the caller's writes,
        // and a shutdown waits for it as for the write that started it (the
        // close that joins it may run on another worker). A task of the
        // worker's runtime was cut off when the worker, its jobs done, exited.
        let part = io_executor::spawn_cleanup(part).map_err(|_| {
            Error::new(ErrorKind::ShutDown).with_message(format!(
                "part {number} could not be started: the executor is gone"
            ))
        })?;
        upload.in_flight.push_back(part);
        Ok(())
    }

    /// Commits: one `PUT`, or the last part and CompleteMultipartUpload.
    pub(crate) async fn finish(mut self) -> Result<Metadata> {
        if self.upload.is_none() {
            let body = self.take(self.pending_len);
            return self.core.put_file(&self.path, body, &self.options).await;
        }
        match self.complete().await {
            Err(e) => Err(self.cancel_after_failure(e).await),
            ok => ok,
        }
    }

    async fn complete(&mut self) -> Result<Metadata> {
        if self.pending_len > 0 {
            self.wait_for_a_place().await?;
            let last = self.take(self.pending_len);
            self.start_part(last).await?;
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(Error::new(ErrorKind::Unexpected).with_message("no upload to complete"));
        };
        while !upload.in_flight.is_empty() {
            upload.join_oldest().await?;
        }
        let mut parts = std::mem::take(&mut upload.done);
        // Kept as they ended; listed (and their checksums combined) in order.
        parts.sort_by_key(|p| p.part_number);
        let (id, write_id) = (upload.id.clone(), upload.write_id.clone());
        let etag = self
            .core
            .complete_multipart(
                &self.key,
                &id,
                &write_id,
                parts,
                &self.options,
                self.core.checksum,
            )
            .await?;
        self.upload = None;
        let meta = Metadata::file(self.written);
        Ok(match etag {
            Some(etag) => meta.with_etag(etag),
            None => meta,
        })
    }

    /// Gives up: parts in flight are cancelled and the upload aborted (S3 then
    /// frees its parts); nothing becomes visible.
    ///
    /// The abort is a job of its own on the executor this runs on
    /// (`io_executor::spawn_cleanup`): cancelling this future (its caller gave up
    /// waiting) leaves the abort running, as dropping the writer would start it,
    /// where the upload, already taken from the writer, would be left behind.
    ///
    /// # Errors
    ///
    /// The upload could not be aborted (it is left to the bucket's lifecycle
    /// rules).
    pub(crate) async fn cancel(&mut self) -> Result<()> {
        self.pending.clear();
        self.pending_len = 0;
        let Some(upload) = self.upload.take() else {
            return Ok(());
        };
        let abort = abort_upload(Arc::clone(&self.core), self.key.clone(), upload);
        match io_executor::spawn_cleanup(abort) {
            // Its own job, which goes on if this future is dropped.
            Ok(task) => Detached(Some(task))
                .await
                .unwrap_or_else(|e| Err(Error::from_join(e).with_context("job", "abort"))),
            Err(abort) => abort.await,
        }
    }

    /// [`cancel`](Self::cancel) after `failure`, which is the caller's error: an
    /// abort that fails too is logged, and said in the error's `abort_failed`
    /// context (the upload is left to the bucket's lifecycle rules).
    async fn cancel_after_failure(&mut self, failure: Error) -> Error {
        match self.cancel().await {
            Ok(()) => failure,
            Err(e) => self.abort_failed(failure, e),
        }
    }

    /// `failure`, saying that the upload it leaves could not be aborted (`abort`).
    fn abort_failed(&self, failure: Error, abort: Error) -> Error {
        abort_failed(failure, abort, &self.key, &self.path)
    }
}

/// A job's handle that lets the job run on when dropped (where dropping the handle
/// itself would cancel it).
struct Detached<T>(Option<io_executor::JoinHandle<T>>);

impl<T> Future for Detached<T> {
    type Output = std::result::Result<T, io_executor::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.0.as_mut() {
            Some(handle) => Pin::new(handle).poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<T> Drop for Detached<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.detach();
        }
    }
}

/// Cancels the parts in flight, waits for their tasks to end (none is still
/// sending when the abort goes), then aborts the upload.
async fn abort_upload(core: Arc<Core>, key: String, upload: Upload) -> Result<()> {
    for part in &upload.in_flight {
        part.abort();
    }
    for part in upload.in_flight {
        // Cancelled, failed or stored: the abort frees it either way.
        drop(part.await);
    }
    core.abort_multipart(&key, &upload.id).await
}

fn joined(
    result: std::result::Result<Result<CompletedPart>, io_executor::JoinError>,
) -> Result<CompletedPart> {
    // The job's error says why (a cut-off one says what may still happen).
    result.map_err(|e| Error::from_join(e).with_context("job", "part upload"))?
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        let Some(upload) = self.upload.take() else {
            return;
        };
        let core = Arc::clone(&self.core);
        let key = std::mem::take(&mut self.key);
        let upload_id = upload.id.clone();
        let abort = {
            let (key, upload_id) = (key.clone(), upload_id.clone());
            async move {
                if let Err(e) = abort_upload(core, key.clone(), upload).await {
                    // Named, so that it shows its request's context.
                    let e = e.with_operation("abort").with_path(key.as_str());
                    tracing::warn!(%upload_id, error = %e, "cannot abort the upload of a dropped writer");
                }
            }
        };
        // An abort that cannot start is dropped here, and the parts' handles with
        // it, which cancels them.
        spawn_abort(&key, &upload_id, abort);
    }
}

impl RawWrite for S3Writer {
    fn write(mut self: Box<Self>, data: Bytes) -> IoJob<Box<dyn RawWrite>> {
        IoJob::future(async move {
            self.push(data).await?;
            Ok(self as Box<dyn RawWrite>)
        })
    }

    fn close(self: Box<Self>) -> IoJob<Metadata> {
        IoJob::future((*self).finish())
    }

    fn abort(mut self: Box<Self>) -> IoJob<()> {
        IoJob::future(async move { self.cancel().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_grow_so_that_a_known_length_fits_in_10000() {
        assert_eq!(part_size_for(1 << 30, 8 << 20), 8 << 20);
        let huge = 200_u64 << 30; // 200 GiB: 25,600 parts of 8 MiB.
        let size = part_size_for(huge, 8 << 20);
        assert!(size > 8 << 20);
        assert!(huge.div_ceil(size as u64) <= u64::from(MAX_PARTS));
        assert!(huge.div_ceil(size as u64 - 1) > u64::from(MAX_PARTS));
    }
}
