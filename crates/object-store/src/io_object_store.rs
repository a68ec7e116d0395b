//! [`IoObjectStore`]: any `ObjectStore`, with all of its work on an executor.

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use io_executor::Executor;
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

use crate::compat::{self, Payload};
use crate::executor_error::executor_error;
use crate::file_stream::FileStream;
use crate::io_multipart_upload::IoMultipartUpload;
use crate::pump_stream::{Bounds, ITEMS_PER_BATCH, PumpStream};
use io_executor::block_on;

/// Default number of batches a stream's channel holds.
const DEFAULT_CHANNEL_CAPACITY: usize = 4;

/// Default size at which a batch of bytes closes: 512 KiB.
const DEFAULT_BATCH_BYTES: usize = 512 * 1024;

/// An [`ObjectStore`] whose every call, every poll of a returned stream and every
/// multipart upload step runs on an [`Executor`].
///
/// Wrap any store: `AmazonS3`, `LocalFileSystem`, `InMemory`, a store of your own. The
/// caller's runtime (or plain thread: everything here can be awaited from
/// `futures::executor::block_on`) only receives finished results, so the inner store's
/// IO never stalls it, and HTTP connections live on the executor's runtimes, not on
/// caller runtimes that may come and go.
///
/// # What runs where
///
/// Every [`ObjectStore`] method is overridden and delegates to the same method of the
/// inner store, so a store's own `get_ranges`, `rename_opts` or `list_with_offset`
/// is kept, never replaced by a default built from other calls.
///
/// | call | on the executor |
/// |---|---|
/// | `put_opts`, `get_ranges`, `list_with_delimiter`, `copy_opts`, `rename_opts` | one job each, running the inner method (on a worker, or on the blocking lane for [blocking calls](#blocking-calls-localfilesystem)) |
/// | `get_opts` (and so `get`, `get_range`, `head`) | the same, then a pump job polling the body (see below) |
/// | `list`, `list_with_offset`, `delete_stream` | a pump job on a worker that calls the inner method and polls its stream (for `delete_stream`, the caller's input stream too) |
/// | `put_multipart_opts` | the inner call as above, then an actor task on a worker that owns the inner upload (see below) |
/// | [`MultipartStore`] methods (when the inner store has them) | one job each, as above |
///
/// A `head` request (`GetOptions::head`) has no body: its payload is an empty stream
/// and nothing is pumped.
///
/// # Blocking calls (`LocalFileSystem`)
///
/// `LocalFileSystem` hands its blocking IO to tokio's `spawn_blocking` when it runs
/// inside a tokio runtime, and does it inline otherwise. So for `LocalFileSystem` the
/// one-shot calls above (all but the streams) run on the executor's blocking lane
/// under a plain `block_on`: opening, `stat` and the first read of a `get` happen on
/// one blocking thread with one hand-off, instead of bouncing between a worker, its
/// runtime's blocking pool and the blocking lane. Other stores that do their IO
/// inline and need no tokio runtime can opt in with
/// [`with_blocking_calls`](Self::with_blocking_calls).
///
/// # Streams and the memory bound
///
/// A pump job polls the inner stream and sends what it has ready, as one batch, into
/// a bounded channel that the returned stream reads from. A batch of bytes closes once
/// it holds [`batch_bytes`](Self::with_batch_bytes) (default 512 KiB); a batch of
/// listed objects at 1000 items; any batch at 1000 items (errors and empty chunks
/// weigh nothing, and a stream that keeps yielding them is pulled as the caller
/// takes it). The pump pulls only while it holds
/// one of the channel's [`channel_capacity`](Self::with_channel_capacity) slots
/// (default 4), so a slow consumer makes the pump wait (backpressure) rather than
/// buffer. Bytes pulled from the inner stream but not yet handed to the caller are
/// at most `(channel_capacity + 1) × (batch_bytes + one inner chunk)`: 2.5 MiB plus
/// five of the inner store's chunks with the defaults.
///
/// `delete_stream` deletes as it is pulled: its pump is a job from the call, as
/// every stream's, but it starts the inner delete only at the stream's first
/// poll (nothing is deleted before), through a channel of one batch, and runs at
/// most 128 deletes ahead of the caller (two batches of 64, failures counted),
/// beyond what the inner store's own stream runs ahead: a caller that stops early
/// (at the first error, or after a few) has not deleted the rest.
///
/// A `LocalFileSystem` result (`GetResultPayload::File`) becomes a stream whose reads
/// run on the executor's blocking lane. A range of up to 64 MiB is read with one read
/// into one buffer, so `bytes()` and `get_range` get one contiguous `Bytes` with no
/// extra copy; the read starts as soon as the file is open. Longer ranges are read in
/// 8 MiB pieces by a pump job, as other streams are, with one piece handed over ahead
/// of the caller and one being read: at most 24 MiB at a time, the caller's piece
/// included.
///
/// # Multipart uploads
///
/// The inner upload lives in an actor task on the executor. `put_part` sends its part
/// to the actor at once, so parts reach the inner upload in call order; each part's
/// upload then runs as a job of its own, in parallel with the others, and the
/// returned future resolves when it is done. `complete` first waits for the parts
/// already started, and completes nothing if one of them failed or was cancelled
/// (its future dropped before it ended): the object would lack that part, so
/// `complete` is an error naming it, and the upload is left to `abort`. `abort`
/// cancels the parts still under way. Dropping the upload
/// lets parts whose futures are still held finish, then drops the inner upload on the
/// executor. Parts continue an upload the executor accepted: a queue at its bound
/// does not refuse them (the object would lack the part); they wait their turn.
///
/// # Cancel safety
///
/// Dropping a pending call cancels its job on the executor, the way dropping the inner
/// store's future would (a blocking call that has already started cannot be
/// interrupted: it runs to its end and its result is dropped). Dropping a returned
/// stream cancels its pump, and the inner stream is dropped on the executor. Dropping
/// a part's future cancels that part.
///
/// # Shutdown
///
/// An open stream or upload is a job on the executor: [`Executor::join`] waits until
/// it is dropped, and [`Executor::shutdown_timeout`] cancels it at its deadline (a
/// stream then ends with an error, and the upload's calls fail).
///
/// # Errors
///
/// Errors of the inner store are passed on unchanged. A job that does not finish on
/// the executor (it was shut down, or the job panicked) fails with
/// [`object_store::Error::Generic`] whose `store` is `"IoObjectStore"` and whose
/// source is an [`ExecutorError`](crate::ExecutorError). A stream whose pump is cut
/// short ends with such an error, never silently.
///
/// # Examples
///
/// ```
/// use dio_object_store::IoObjectStore;
/// use object_store::{ObjectStoreExt, local::LocalFileSystem, path::Path};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = IoObjectStore::new(
///     LocalFileSystem::new_with_prefix(dir.path())?,
///     io_executor::Executor::global(),
/// );
/// assert_eq!(store.to_string(), format!("IoObjectStore({})", store.inner()));
///
/// // From a plain thread: no runtime needed, the IO runs on `io-global-*` threads.
/// futures::executor::block_on(async {
///     let path = Path::from("a/b.bin");
///     store.put(&path, vec![1_u8; 10_000].into()).await?;
///     let bytes = store.get(&path).await?.bytes().await?;
///     assert_eq!(bytes.len(), 10_000);
///     Ok::<_, object_store::Error>(())
/// })?;
/// # Ok(())
/// # }
/// ```
pub struct IoObjectStore<S> {
    inner: Arc<S>,
    executor: Executor,
    channel_capacity: usize,
    batch_bytes: usize,
    blocking_calls: bool,
}

impl<S: ObjectStore> IoObjectStore<S> {
    /// Wraps `inner` so that all of its work runs on `executor`.
    pub fn new(inner: S, executor: Executor) -> Self {
        Self {
            inner: Arc::new(inner),
            executor,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            batch_bytes: DEFAULT_BATCH_BYTES,
            blocking_calls: TypeId::of::<S>() == TypeId::of::<LocalFileSystem>(),
        }
    }

    /// How many batches a returned stream's channel holds (default 4; a
    /// `delete_stream`'s holds one, whatever this says). More lets the
    /// pump run further ahead of a bursty consumer, at the cost of memory; see the
    /// memory bound in the type's docs. At most `usize::MAX >> 3` (tokio's bound
    /// on a channel); more is taken as that.
    pub fn with_channel_capacity(mut self, batches: NonZeroUsize) -> Self {
        // tokio's bound on a channel (its semaphore's permits), past which making
        // one panics.
        self.channel_capacity = batches.get().min(tokio::sync::Semaphore::MAX_PERMITS);
        self
    }

    /// At how many bytes a batch of a `get` body closes (default 512 KiB). A batch
    /// holds whatever the inner stream has ready, up to this much (plus the chunk
    /// that crosses it); see the memory bound in the type's docs.
    pub fn with_batch_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.batch_bytes = bytes.get();
        self
    }

    /// Whether one-shot calls (every method but `list`, `list_with_offset` and
    /// `delete_stream`) run on the executor's blocking lane under a plain `block_on`
    /// rather than on a worker's runtime. On by default for `LocalFileSystem` only.
    ///
    /// Only for stores whose futures need no tokio runtime: they run where there is
    /// none (a store that needs one fails with the panic of its HTTP client or timer,
    /// reported as an [`ExecutorError`](crate::ExecutorError)). A store that does
    /// blocking IO inline when no runtime is around then does it right there, on a
    /// thread made for blocking, at one hand-off per call.
    pub fn with_blocking_calls(mut self, blocking: bool) -> Self {
        self.blocking_calls = blocking;
        self
    }

    /// The wrapped store. Calling it directly does its work on the caller's side.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The executor the store's work runs on.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Runs `job` on the executor (on a worker, or on the blocking lane for blocking
    /// calls) and waits for its result.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        path: Option<&Path>,
        job: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let handle = if self.blocking_calls {
            self.executor.spawn_blocking(move || block_on(job))
        } else {
            self.executor.spawn(job)
        };
        match handle.await {
            Ok(result) => result,
            Err(e) => Err(executor_error(operation, path, &self.executor, e)),
        }
    }

    fn bytes_bounds(&self) -> Bounds {
        Bounds::new(self.channel_capacity, self.batch_bytes)
    }

    fn item_bounds(&self) -> Bounds {
        Bounds::new(self.channel_capacity, ITEMS_PER_BATCH)
    }
}

/// Turns an inner payload into a stream polled (or read) on `executor`. Called on the
/// executor. A file's first read starts at once (inline, when this runs on the
/// blocking lane).
fn io_payload(
    payload: Payload,
    range: Range<u64>,
    head: bool,
    executor: &Executor,
    bounds: Bounds,
    location: Path,
) -> BoxStream<'static, Result<Bytes>> {
    match payload {
        // No body: drop the inner payload here, on the executor.
        _ if head => futures_util::stream::empty().boxed(),
        Payload::File(file, path) => {
            let file = FileStream::start(executor.clone(), location.clone(), file, path, range);
            if file.is_one_read() {
                // Its one read submitted here, by the job that opened the file.
                return file.boxed();
            }
            // Read piece by piece: polled by a pump job, so that each read is
            // submitted by a job of the executor (accepted after a shutdown, until
            // the drain ends) and `join` waits for the stream, as for any other.
            // One piece in the channel, one being read.
            let bounds = Bounds::new(1, 1);
            PumpStream::spawn(executor, bounds, "get_opts stream", Some(location), || {
                file.boxed()
            })
            .boxed()
        }
        Payload::Stream(stream) => {
            PumpStream::spawn(executor, bounds, "get_opts stream", Some(location), || {
                stream
            })
            .boxed()
        }
    }
}

/// A bulk delete's results go to its caller this many at a time (failures count):
/// the pump runs at most two such batches ahead of the item the caller is at (the
/// rest of the batch it takes items from, and one in the channel or being
/// pulled), plus what the inner store's stream runs ahead by itself.
const DELETES_PER_BATCH: usize = 64;

#[async_trait]
impl<S: ObjectStore> ObjectStore for IoObjectStore<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let (inner, path) = (Arc::clone(&self.inner), location.clone());
        self.run("put_opts", Some(location), async move {
            inner.put_opts(&path, payload, opts).await
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let (inner, path) = (Arc::clone(&self.inner), location.clone());
        let executor = self.executor.clone();
        self.run("put_multipart_opts", Some(location), async move {
            let upload = inner.put_multipart_opts(&path, opts).await?;
            let upload: Box<dyn MultipartUpload> =
                Box::new(IoMultipartUpload::start(upload, executor, path).await?);
            Ok(upload)
        })
        .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let (inner, path) = (Arc::clone(&self.inner), location.clone());
        // The body's reads and pump continue a `get` the executor accepted: the
        // queue's bound does not refuse them (a refusal would cut the body short
        // midway, for a transient load); they wait their turn.
        let executor = self.executor.without_queue_bound();
        let bounds = self.bytes_bounds();
        self.run("get_opts", Some(location), async move {
            let head = options.head;
            let result = inner.get_opts(&path, options).await?;
            Ok(compat::map_payload(result, |payload, range| {
                io_payload(payload, range, head, &executor, bounds, path)
            }))
        })
        .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let (inner, path) = (Arc::clone(&self.inner), location.clone());
        let ranges = ranges.to_vec();
        self.run("get_ranges", Some(location), async move {
            inner.get_ranges(&path, &ranges).await
        })
        .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = Arc::clone(&self.inner);
        // Deletes are done as they are pulled: none before the stream is polled,
        // and few ahead of its caller (who may stop at the first error, or take a
        // few), as the inner store's own stream would.
        let bounds = Bounds {
            capacity: 1,
            limit: DELETES_PER_BATCH,
            max_items: DELETES_PER_BATCH,
        };
        PumpStream::lazy(&self.executor, bounds, "delete_stream", None, move || {
            inner.delete_stream(locations)
        })
        .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, owned) = (Arc::clone(&self.inner), prefix.cloned());
        PumpStream::spawn(
            &self.executor,
            self.item_bounds(),
            "list",
            prefix.cloned(),
            move || inner.list(owned.as_ref()),
        )
        .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, owned, offset) = (Arc::clone(&self.inner), prefix.cloned(), offset.clone());
        PumpStream::spawn(
            &self.executor,
            self.item_bounds(),
            "list_with_offset",
            prefix.cloned(),
            move || inner.list_with_offset(owned.as_ref(), &offset),
        )
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let (inner, owned) = (Arc::clone(&self.inner), prefix.cloned());
        self.run("list_with_delimiter", prefix, async move {
            inner.list_with_delimiter(owned.as_ref()).await
        })
        .await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let (inner, src, dst) = (Arc::clone(&self.inner), from.clone(), to.clone());
        self.run("copy_opts", Some(from), async move {
            inner.copy_opts(&src, &dst, options).await
        })
        .await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let (inner, src, dst) = (Arc::clone(&self.inner), from.clone(), to.clone());
        self.run("rename_opts", Some(from), async move {
            inner.rename_opts(&src, &dst, options).await
        })
        .await
    }
}

/// The inner store's [`MultipartStore`], one job per call.
#[async_trait]
impl<S: ObjectStore + MultipartStore> MultipartStore for IoObjectStore<S> {
    async fn create_multipart(&self, path: &Path) -> Result<MultipartId> {
        let (inner, p) = (Arc::clone(&self.inner), path.clone());
        self.run("create_multipart", Some(path), async move {
            inner.create_multipart(&p).await
        })
        .await
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> Result<PartId> {
        let (inner, p, id) = (Arc::clone(&self.inner), path.clone(), id.clone());
        self.run("put_part", Some(path), async move {
            MultipartStore::put_part(&*inner, &p, &id, part_idx, data).await
        })
        .await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> Result<PutResult> {
        let (inner, p, id) = (Arc::clone(&self.inner), path.clone(), id.clone());
        self.run("complete_multipart", Some(path), async move {
            inner.complete_multipart(&p, &id, parts).await
        })
        .await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> Result<()> {
        let (inner, p, id) = (Arc::clone(&self.inner), path.clone(), id.clone());
        self.run("abort_multipart", Some(path), async move {
            inner.abort_multipart(&p, &id).await
        })
        .await
    }
}

impl<S> Clone for IoObjectStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            executor: self.executor.clone(),
            channel_capacity: self.channel_capacity,
            batch_bytes: self.batch_bytes,
            blocking_calls: self.blocking_calls,
        }
    }
}

impl<S: fmt::Display> fmt::Display for IoObjectStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IoObjectStore({})", self.inner)
    }
}

impl<S: fmt::Debug> fmt::Debug for IoObjectStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoObjectStore")
            .field("inner", &self.inner)
            .field("executor", &self.executor.name())
            .field("channel_capacity", &self.channel_capacity)
            .field("batch_bytes", &self.batch_bytes)
            .field("blocking_calls", &self.blocking_calls)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    #[test]
    fn local_file_system_calls_are_blocking_calls_by_default() {
        let io = Executor::global();
        let fs = LocalFileSystem::new();
        assert!(IoObjectStore::new(fs, io.clone()).blocking_calls);
        assert!(!IoObjectStore::new(InMemory::new(), io.clone()).blocking_calls);
        let opted_in = IoObjectStore::new(InMemory::new(), io).with_blocking_calls(true);
        assert!(opted_in.blocking_calls);
    }
}
