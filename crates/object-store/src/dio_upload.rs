//! [`DioUpload`]: an object_store multipart upload over our [`Writer`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use bytes::Bytes;
use futures::lock::Mutex as AsyncMutex;
use io_executor::Executor;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};
use parking_lot::Mutex;
use storage::Writer;
use tokio::sync::Notify;

use crate::compat;
use crate::convert::{Prefix, write_error};

/// A multipart upload to one object through a [`Writer`]: the object is written by
/// the operator's executor and becomes visible, atomically, only at
/// [`complete`](MultipartUpload::complete); [`abort`](MultipartUpload::abort), or
/// dropping the upload, leaves nothing.
///
/// Parts are taken in the order `put_part` is called (not the order their futures
/// are polled) and handed to the writer as they are, without copying, by a task
/// on the executor: on S3 each becomes part of a multipart upload whose parts are
/// uploaded concurrently by the executor; on fs they are appended to the
/// temporary file.
///
/// A part's future resolves once its bytes are handed to the writer; a failure
/// of the write is reported by every later call, `complete` included, so no part is
/// ever lost silently. A part is written whether or not its future is polled or
/// kept, and a future held without being polled holds nothing up: `complete` and
/// `abort` go ahead of it.
///
/// `complete` is cancel safe: dropped, it leaves the upload as it was, or its
/// commit running on the executor; calling it again finishes the upload, or waits
/// for that commit, and returns its result. Once completed, it returns the same
/// result again. A part offered once the commit is under way is refused, and
/// leaves the commit alone. The commit is under way once every part is written:
/// until then, a dropped `complete` leaves an upload that `abort` still ends.
///
/// `abort` once the commit is under way is refused; after a commit that failed,
/// it answers `Ok`, unless that failure says the object may have been stored
/// (its `stored` context) or something was left behind: then it returns it.
pub(crate) struct DioUpload {
    shared: Arc<Shared>,
}

struct Shared {
    /// The object_store location, for errors.
    location: String,
    prefix: Prefix,
    /// Runs the task that hands queued parts to the writer.
    executor: Executor,
    /// `None` once completed, or aborted with its clean-up done (a writer whose
    /// clean-up failed stays, for every later call to say so). Held across an
    /// await only by the draining task, `complete` and `abort`, never by a part's
    /// future (which its caller may keep without polling).
    writer: AsyncMutex<Option<Writer>>,
    /// Parts not yet handed to the writer, in call order, and the upload's failure.
    queue: Mutex<Queue>,
    /// Signalled when pieces are handed, or the upload fails.
    progress: Notify,
    /// What `complete` returned, once it has.
    completed: Mutex<Option<PutResult>>,
    /// The commit was submitted: no part may join it, and a `complete` called again
    /// (the one that submitted it was dropped) waits for it.
    committing: AtomicBool,
}

#[derive(Default)]
struct Queue {
    pieces: VecDeque<Bytes>,
    /// How many pieces were handed to the writer: a part is handed once this
    /// reaches `handed + pieces.len()` as it was after its own pieces were queued.
    handed: u64,
    /// A draining task is running (or about to).
    draining: bool,
    /// The first failure (an aborted upload's too), reported by every later call.
    /// Kept with the pieces, so that none is queued once it is set.
    failed: Option<storage::Error>,
}

impl DioUpload {
    /// An upload through `writer`, whose parts a task on `executor` hands to it.
    /// That task continues an upload the executor accepted: its queue's bound
    /// does not refuse it (a part refused for a moment's load would fail the
    /// whole upload, as the object would lack it); it waits its turn, as the
    /// writer's own jobs do.
    pub(crate) fn new(
        location: String,
        prefix: Prefix,
        writer: Writer,
        executor: &Executor,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                location,
                prefix,
                executor: executor.without_queue_bound(),
                writer: AsyncMutex::new(Some(writer)),
                queue: Mutex::new(Queue::default()),
                progress: Notify::new(),
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
        self.queue.lock().failed.clone()
    }

    fn closed(&self) -> storage::Error {
        storage::Error::new(storage::ErrorKind::InvalidInput)
            .with_message("the upload is already completed or aborted")
            .with_operation("put_multipart")
    }

    /// Notes `err` as the upload's failure (the first one stays), drops what is
    /// queued, and wakes every part waiting: nothing more is written.
    fn fail(&self, err: storage::Error) {
        {
            let mut queue = self.queue.lock();
            queue.pieces.clear();
            queue.failed.get_or_insert(err);
        }
        self.progress.notify_waiters();
    }

    /// Hands every queued piece to the writer, in order.
    ///
    /// Cancel safe: a piece leaves the queue only once the writer has nothing in
    /// flight, and then [`Writer::write_bytes`] hands it over before it first
    /// waits. Dropped while it waits, it leaves the piece queued for the next
    /// drain.
    async fn drain(&self, writer: &mut Writer) -> Result<(), storage::Error> {
        loop {
            if let Some(err) = self.failure() {
                return Err(err);
            }
            if self.queue.lock().pieces.is_empty() {
                return Ok(());
            }
            let mut written = writer.ready().await;
            if written.is_ok() {
                let piece = {
                    let mut queue = self.queue.lock();
                    let piece = queue.pieces.pop_front();
                    // Counted now: `write_bytes` hands it over before it first
                    // waits, and a drain dropped while it waits (a `complete`
                    // given up) must not lose the count. Should the write fail,
                    // the failure comes first for every part (see `handed`).
                    queue.handed += u64::from(piece.is_some());
                    piece
                };
                if let Some(piece) = piece {
                    self.progress.notify_waiters();
                    written = writer.write_bytes(piece).await;
                }
            }
            if let Err(e) = written {
                self.fail(e.clone());
                return Err(e);
            }
        }
    }

    /// Starts the task that drains the queue, unless one is running or there is
    /// nothing to drain.
    fn start_draining(self: &Arc<Self>) {
        {
            let mut queue = self.queue.lock();
            if queue.draining || queue.pieces.is_empty() {
                return;
            }
            queue.draining = true;
        }
        let spawn = Arc::new(AtomicU8::new(SPAWNING));
        let mut guard = Draining {
            shared: Arc::clone(self),
            spawn: Arc::clone(&spawn),
            started: false,
            done: false,
        };
        // Refused (the executor has shut down), the job is dropped before `spawn`
        // returns, and its handle says why.
        let handle = self.executor.spawn(async move {
            guard.started = true;
            let shared = Arc::clone(&guard.shared);
            loop {
                let more = match shared.writer.lock().await.as_mut() {
                    Some(writer) => shared.drain(writer).await.is_ok(),
                    // Completed or aborted: nothing more is written
                    // (`complete` drained what was queued and no part is taken
                    // once it commits; `abort` failed the upload first).
                    None => false,
                };
                let mut queue = shared.queue.lock();
                // A failure is the upload's, reported by every call; a part
                // queued meanwhile, or whose drain was given up, goes next.
                if !more || queue.pieces.is_empty() {
                    queue.draining = false;
                    break;
                }
            }
            guard.finish();
        });
        if spawn
            .compare_exchange(SPAWNING, HANDED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            handle.detach();
            return;
        }
        // Dropped unstarted before `spawn` returned: refused, or dropped at once
        // by a runtime that is gone; the handle is resolved by then.
        let err = match futures::FutureExt::now_or_never(handle) {
            Some(Err(e)) => {
                let message =
                    format!("the task handing the upload's parts to its writer did not run: {e}");
                storage::Error::from_join(e).with_message(message)
            }
            _ => self.executor_error(false),
        };
        self.fail(err.with_operation("put_multipart"));
    }

    /// Why the task handing the parts to the writer ended before it was done,
    /// when its handle cannot say: `started`, it panicked, unless the executor
    /// shut down under it.
    fn executor_error(&self, started: bool) -> storage::Error {
        if self.executor.is_shutdown() || !started {
            storage::Error::new(storage::ErrorKind::ShutDown).with_message(
                "the executor shut down before the upload's parts were handed to its writer",
            )
        } else {
            storage::Error::new(storage::ErrorKind::Unexpected)
                .with_message("the task handing the upload's parts to its writer panicked")
        }
    }

    /// Waits until the pieces up to `queued` are handed to the writer, or the
    /// upload fails (its failure is every part's, handed or not).
    async fn handed(&self, queued: u64) -> Result<(), storage::Error> {
        loop {
            let notified = self.progress.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let queue = self.queue.lock();
                if let Some(err) = &queue.failed {
                    return Err(err.clone());
                }
                if queue.handed >= queued {
                    return Ok(());
                }
            }
            notified.await;
        }
    }
}

/// Held by the draining task: dropped before it is done (the task was refused,
/// dropped or cancelled by a shutdown, or panicked), it fails the upload, so that
/// no part waits for ever; or, dropped unstarted while it was being spawned, it
/// leaves that to the spawner, which has the handle that says why.
struct Draining {
    shared: Arc<Shared>,
    /// [`SPAWNING`] until the spawner has its handle ([`HANDED`]), or the guard
    /// was dropped unstarted before that ([`REFUSED`]).
    spawn: Arc<AtomicU8>,
    started: bool,
    done: bool,
}

const SPAWNING: u8 = 0;
const HANDED: u8 = 1;
const REFUSED: u8 = 2;

impl Draining {
    /// The task is done: dropped now, the guard leaves the upload be.
    fn finish(mut self) {
        self.done = true;
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.shared.queue.lock().draining = false;
        if !self.started
            && self
                .spawn
                .compare_exchange(SPAWNING, REFUSED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return;
        }
        // Dropped unstarted after it was handed over, only a shutdown (or the
        // end of the runtime it was spawned on) does that.
        let err = self.shared.executor_error(self.started);
        self.shared.fail(err.with_operation("put_multipart"));
    }
}

#[async_trait::async_trait]
impl MultipartUpload for DioUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let shared = Arc::clone(&self.shared);
        if shared.committing.load(Ordering::SeqCst) {
            // Too late for this upload: refused (with the commit's failure, if it
            // failed), and the commit is left be.
            return Box::pin(async move {
                let err = shared.failure().unwrap_or_else(|| {
                    storage::Error::new(storage::ErrorKind::InvalidInput)
                        .with_message("the upload is being completed, or is: no more parts")
                        .with_operation("put_multipart")
                });
                Err(shared.error(err, "put_part"))
            });
        }
        // The failure is looked at where the pieces go, under one lock: a failure
        // clears the queue under it too, so no piece is left queued after one.
        let queued = {
            let mut queue = shared.queue.lock();
            if let Some(err) = queue.failed.clone() {
                drop(queue);
                // Failed or aborted: refused with why, and nothing is queued.
                return Box::pin(async move { Err(shared.error(err, "put_part")) });
            }
            if !shared.executor.accepts_jobs() {
                drop(queue);
                // After a shutdown, a part from outside the executor's jobs is new
                // work, refused as a job from here would be; the object would
                // lack it, so the upload fails.
                let err = storage::Error::new(storage::ErrorKind::ShutDown)
                    .with_message(
                        "the executor has shut down: it takes no part from outside its jobs \
                         (abort the upload)",
                    )
                    .with_operation("put_multipart");
                shared.fail(err.clone());
                return Box::pin(async move { Err(shared.error(err, "put_part")) });
            }
            queue.pieces.extend(data);
            queue.handed + queue.pieces.len() as u64
        };
        shared.start_draining();
        Box::pin(async move {
            shared
                .handed(queued)
                .await
                .map_err(|e| shared.error(e, "put_part"))
        })
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
            // Every part is written before the commit is marked: `close` submits it
            // at its first poll only once no chunk is in flight, and a `complete`
            // dropped while one is leaves an upload that can still be aborted.
            let written = match shared.drain(writer).await {
                Ok(()) => writer.ready().await,
                Err(e) => Err(e),
            };
            if let Err(e) = written {
                // The upload is over, and says why. A writer whose own write failed
                // has cleaned up after itself (its abort is then a no-op, or fails
                // with that write's error, which says the clean-up failed); one
                // stopped by an abort given up midway, or by a lost draining task,
                // is aborted here, and a clean-up that failed is said.
                let abort = writer.abort().await;
                // A clean-up that failed stays with the writer, for every later
                // call (an abort) to say again.
                let cleaned = abort.is_ok();
                let e = match abort {
                    Err(a) if e.context(storage::raw::ABORT_FAILED).is_none() => {
                        e.with_context(storage::raw::ABORT_FAILED, a.to_string())
                    }
                    _ => e,
                };
                if cleaned {
                    *slot = None;
                }
                // Said by every later call (the failure of a last part's write is
                // found here first; an earlier failure stays the one said).
                shared.fail(e.clone());
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
                shared.fail(e.clone());
                Err(shared.error(e, "complete"))
            }
        }
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let shared = &self.shared;
        if shared.committing.load(Ordering::SeqCst) {
            if shared.writer.lock().await.is_some() {
                // A `complete` dropped while it committed: the commit cannot be
                // taken back, and the writer stays for the next `complete` to
                // answer with it.
                let err = storage::Error::new(storage::ErrorKind::InvalidInput)
                    .with_message("the upload is being completed: it can no longer be aborted")
                    .with_operation("put_multipart");
                return Err(shared.error(err, "abort"));
            }
            // A commit that failed and may have been made (its `stored` context),
            // or left something behind: said again, as `Writer::abort` says it.
            return match shared.failure() {
                Some(e)
                    if e.context("stored").is_some()
                        || e.context(storage::raw::ABORT_FAILED).is_some() =>
                {
                    Err(shared.error(e, "abort"))
                }
                _ => Ok(()),
            };
        }
        // Recorded first, so that an abort dropped while it waits for the writer
        // still ends the upload: the queued parts are dropped and their futures
        // answer, and a later `complete` fails instead of committing without them.
        shared.fail(
            storage::Error::new(storage::ErrorKind::Cancelled)
                .with_message("the upload was aborted")
                .with_operation("put_multipart"),
        );
        // The writer stays in its slot while it aborts: an abort dropped midway
        // leaves its clean-up to the writer, and the next abort waits for it and
        // says how it went. A failed one stays too, for every later abort to say.
        let mut slot = shared.writer.lock().await;
        let Some(writer) = slot.as_mut() else {
            return Ok(());
        };
        let aborted = writer.abort().await;
        if aborted.is_ok() {
            *slot = None;
        }
        aborted.map_err(|e| shared.error(e, "abort"))
    }
}

impl fmt::Debug for DioUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DioUpload")
            .field("location", &self.shared.location)
            .field("queued_pieces", &self.shared.queue.lock().pieces.len())
            .finish_non_exhaustive()
    }
}
