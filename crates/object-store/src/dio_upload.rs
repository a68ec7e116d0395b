//! [`DioUpload`]: an object_store multipart upload over our [`Writer`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::lock::Mutex as AsyncMutex;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};
use parking_lot::Mutex;
use storage::Writer;

use crate::compat;
use crate::convert::{Prefix, write_error};

/// A multipart upload to one object through a [`Writer`]: the object is written by
/// the operator's executor and becomes visible, atomically, only at
/// [`complete`](MultipartUpload::complete); [`abort`](MultipartUpload::abort), or
/// dropping the upload, leaves nothing.
///
/// Parts are taken in the order `put_part` is called (not the order their futures
/// are polled) and handed to the writer as they are, without copying: on S3 each
/// becomes part of a multipart upload whose parts are uploaded concurrently by the
/// executor; on fs they are appended to the temporary file.
///
/// A part's future resolves once its bytes are handed to the executor; a failure
/// of the write is reported by every later call, `complete` included, so no part is
/// ever lost silently. A part whose future is dropped before then is still
/// written, in its place, by the next call or by `complete`.
///
/// `complete` is cancel safe: dropped, it leaves the upload as it was, or its
/// commit running on the executor; calling it again finishes the upload, or waits
/// for that commit, and returns its result. Once completed, it returns the same
/// result again. A part offered once the commit is under way is refused, and
/// leaves the commit alone.
pub(crate) struct DioUpload {
    shared: Arc<Shared>,
}

struct Shared {
    /// The object_store location, for errors.
    location: String,
    prefix: Prefix,
    /// `None` once completed or aborted.
    writer: AsyncMutex<Option<Writer>>,
    /// Parts not yet handed to the writer, in call order.
    queue: Mutex<VecDeque<Bytes>>,
    /// The first failure, reported by every later call.
    failed: Mutex<Option<storage::Error>>,
    /// What `complete` returned, once it has.
    completed: Mutex<Option<PutResult>>,
    /// The commit was submitted: no part may join it, and a `complete` called again
    /// (the one that submitted it was dropped) waits for it.
    committing: AtomicBool,
}

impl DioUpload {
    pub(crate) fn new(location: String, prefix: Prefix, writer: Writer) -> Self {
        Self {
            shared: Arc::new(Shared {
                location,
                prefix,
                writer: AsyncMutex::new(Some(writer)),
                queue: Mutex::new(VecDeque::new()),
                failed: Mutex::new(None),
                completed: Mutex::new(None),
                committing: AtomicBool::new(false),
            }),
        }
    }
}

impl Shared {
    fn error(&self, err: storage::Error, operation: &str) -> object_store::Error {
        write_error(err, &self.prefix, &self.location, operation)
    }

    fn failure(&self) -> Option<storage::Error> {
        self.failed.lock().clone()
    }

    fn closed(&self) -> storage::Error {
        storage::Error::new(storage::ErrorKind::InvalidInput)
            .with_message("the upload is already completed or aborted")
            .with_operation("put_multipart")
    }

    /// Hands every queued part to the writer, in order.
    ///
    /// Cancel safe: a part leaves the queue only once the writer has nothing in
    /// flight, and then [`Writer::write_bytes`] hands it over before it first
    /// waits. A `put_part` future dropped while it waits leaves its part queued for
    /// the next call, or `complete`, to write.
    async fn drain(&self, writer: &mut Writer) -> Result<(), storage::Error> {
        if let Some(err) = self.failure() {
            return Err(err);
        }
        loop {
            if self.queue.lock().is_empty() {
                return Ok(());
            }
            let mut written = writer.ready().await;
            if written.is_ok() {
                let part = self.queue.lock().pop_front();
                if let Some(part) = part {
                    written = writer.write_bytes(part).await;
                }
            }
            if let Err(e) = written {
                self.queue.lock().clear();
                *self.failed.lock() = Some(e.clone());
                return Err(e);
            }
        }
    }

    async fn put(&self) -> Result<(), storage::Error> {
        let mut writer = self.writer.lock().await;
        match writer.as_mut() {
            Some(writer) => self.drain(writer).await,
            None => Err(self.failure().unwrap_or_else(|| self.closed())),
        }
    }
}

#[async_trait::async_trait]
impl MultipartUpload for DioUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if self.shared.committing.load(Ordering::SeqCst) {
            // Too late for this upload: refused (with the commit's failure, if it
            // failed), and the commit is left be.
            let shared = Arc::clone(&self.shared);
            return Box::pin(async move {
                let err = shared.failure().unwrap_or_else(|| {
                    storage::Error::new(storage::ErrorKind::InvalidInput)
                        .with_message("the upload is being completed, or is: no more parts")
                        .with_operation("put_multipart")
                });
                Err(shared.error(err, "put_part"))
            });
        }
        self.shared.queue.lock().extend(data);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { shared.put().await.map_err(|e| shared.error(e, "put_part")) })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let shared = &self.shared;
        let mut slot = shared.writer.lock().await;
        let Some(writer) = slot.as_mut() else {
            if let Some(done) = shared.completed.lock().clone() {
                return Ok(done);
            }
            let err = shared.failure().unwrap_or_else(|| shared.closed());
            return Err(shared.error(err, "complete"));
        };
        // The writer stays in its slot until the commit has answered: a `complete`
        // dropped while it drains or commits is taken up by the next one (`drain`
        // is cancel safe, and `close` again waits for the commit under way).
        // `put_part` borrows the upload mutably, as this does: no part can be added
        // between the drain and the commit.
        if !shared.committing.load(Ordering::SeqCst) {
            if let Err(e) = shared.drain(writer).await {
                // The writer has failed, and cleaned up after itself (its upload or
                // temporary file is gone): the upload is over, and says why.
                *slot = None;
                return Err(shared.error(e, "complete"));
            }
            shared.committing.store(true, Ordering::SeqCst);
        }
        let closed = writer.close().await;
        *slot = None;
        match closed {
            Ok(meta) => {
                let done = compat::put_result(meta.etag().map(str::to_owned));
                *shared.completed.lock() = Some(done.clone());
                Ok(done)
            }
            Err(e) => {
                *shared.failed.lock() = Some(e.clone());
                Err(shared.error(e, "complete"))
            }
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let shared = &self.shared;
        shared.queue.lock().clear();
        let mut slot = shared.writer.lock().await;
        if slot.is_some() && shared.committing.load(Ordering::SeqCst) {
            // A `complete` dropped while it committed: the commit cannot be taken
            // back, and the writer stays for the next `complete` to answer with it.
            let err = storage::Error::new(storage::ErrorKind::InvalidInput)
                .with_message("the upload is being completed: it can no longer be aborted")
                .with_operation("put_multipart");
            return Err(shared.error(err, "abort"));
        }
        let Some(mut writer) = slot.take() else {
            return Ok(());
        };
        writer.abort().await.map_err(|e| shared.error(e, "abort"))
    }
}

impl fmt::Debug for DioUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DioUpload")
            .field("location", &self.shared.location)
            .field("queued_parts", &self.shared.queue.lock().len())
            .finish_non_exhaustive()
    }
}
