//! [`ProbeStore`]: an `InMemory` that records which thread each of its methods, and
//! each poll of the streams, uploads and parts they return, runs on; and that can be
//! told to stall, fail a part, or answer a `get` with a stream of the test's own.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, Stream, StreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
    UploadPart,
};

/// What happened, and on which thread.
#[derive(Debug, Clone)]
pub struct Event {
    pub what: String,
    pub thread: String,
}

/// A shared, append-only record of events.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<Event>>>);

impl Log {
    pub fn record(&self, what: impl Into<String>) {
        let thread = std::thread::current()
            .name()
            .unwrap_or("<unnamed>")
            .to_owned();
        self.0.lock().unwrap().push(Event {
            what: what.into(),
            thread,
        });
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    pub fn has(&self, what: &str) -> bool {
        self.0.lock().unwrap().iter().any(|e| e.what == what)
    }

    /// The threads `what` happened on.
    pub fn threads(&self, what: &str) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e.what == what)
            .map(|e| e.thread.clone())
            .collect()
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.events()).finish()
    }
}

/// Records every poll of a stream or future as `what`, and its drop as `what drop`.
pub struct Recorded<T> {
    inner: T,
    log: Log,
    what: &'static str,
}

impl<T> Recorded<T> {
    pub fn new(inner: T, log: &Log, what: &'static str) -> Self {
        Self {
            inner,
            log: log.clone(),
            what,
        }
    }
}

impl<S: Stream + Unpin> Stream for Recorded<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.log.record(self.what);
        self.inner.poll_next_unpin(cx)
    }
}

impl<F: Future + Unpin> Future for Recorded<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.log.record(self.what);
        Pin::new(&mut self.inner).poll(cx)
    }
}

impl<T> Drop for Recorded<T> {
    fn drop(&mut self) {
        self.log.record(format!("{} drop", self.what));
    }
}

type Body = Box<dyn FnOnce() -> BoxStream<'static, Result<Bytes>> + Send>;

/// An `InMemory` whose every method and every poll of what it returns is recorded.
///
/// Events: the method's name (`get_opts`, `list`, ...) when it is called; `get body`,
/// `list poll`, `list_with_offset poll`, `delete input poll`, `delete poll`,
/// `part poll` when a stream or future is polled; `put_part`, `complete`, `abort`
/// for upload calls; `<event> drop` when one of them is dropped, `upload drop` when an
/// upload is.
pub struct ProbeStore {
    inner: InMemory,
    pub log: Log,
    /// The body the next `get` answers with, in place of the stored bytes.
    body: Mutex<Option<Body>>,
    /// `get_opts` never returns (until its future is dropped).
    pub stall_get: AtomicBool,
    /// Part futures never finish (until dropped).
    pub stall_parts: AtomicBool,
    /// The part with this index (0-based, per upload) fails.
    pub fail_part: Mutex<Option<usize>>,
    /// `put_multipart_opts` waits for this before it returns its upload.
    pub hold_multipart: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    /// The part with this index (of the next upload), once given to the inner
    /// upload, records `part holding` when its future is first polled and blocks
    /// that thread until the receiver hears (at most a minute); then it ends as
    /// the inner part does.
    pub hold_part: Mutex<Option<(usize, std::sync::mpsc::Receiver<()>)>>,
}

impl ProbeStore {
    pub fn new() -> Self {
        Self {
            inner: InMemory::new(),
            log: Log::default(),
            body: Mutex::new(None),
            stall_get: AtomicBool::new(false),
            stall_parts: AtomicBool::new(false),
            fail_part: Mutex::new(None),
            hold_multipart: Mutex::new(None),
            hold_part: Mutex::new(None),
        }
    }

    /// The next `get` of an existing object answers with `body()`'s stream; `body`
    /// runs on whatever thread the store's `get_opts` runs on.
    pub fn next_body(
        &self,
        body: impl FnOnce() -> BoxStream<'static, Result<Bytes>> + Send + 'static,
    ) {
        *self.body.lock().unwrap() = Some(Box::new(body));
    }
}

impl fmt::Display for ProbeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProbeStore")
    }
}

impl fmt::Debug for ProbeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeStore").finish_non_exhaustive()
    }
}

#[async_trait]
impl ObjectStore for ProbeStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.log.record("put_opts");
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.log.record("put_multipart_opts");
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        let hold = self.hold_multipart.lock().unwrap().take();
        if let Some(hold) = hold {
            let _ = hold.await;
        }
        Ok(Box::new(ProbeUpload {
            inner,
            log: self.log.clone(),
            next_part: 0,
            fail_part: *self.fail_part.lock().unwrap(),
            stall: self.stall_parts.load(Ordering::SeqCst),
            hold_part: self.hold_part.lock().unwrap().take(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.log.record("get_opts");
        if self.stall_get.load(Ordering::SeqCst) {
            Recorded::new(std::future::pending::<()>(), &self.log, "stalled get_opts").await;
        }
        let mut result = self.inner.get_opts(location, options).await?;
        let body = match self.body.lock().unwrap().take() {
            Some(body) => body(),
            None => match std::mem::replace(
                &mut result.payload,
                GetResultPayload::Stream(futures::stream::empty().boxed()),
            ) {
                GetResultPayload::Stream(s) => s,
                GetResultPayload::File(..) => unreachable!("InMemory has no files"),
            },
        };
        result.payload =
            GetResultPayload::Stream(Recorded::new(body, &self.log, "get body").boxed());
        Ok(result)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.log.record("get_ranges");
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.log.record("delete_stream");
        let input = Recorded::new(locations, &self.log, "delete input poll").boxed();
        Recorded::new(self.inner.delete_stream(input), &self.log, "delete poll").boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.log.record("list");
        Recorded::new(self.inner.list(prefix), &self.log, "list poll").boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.log.record("list_with_offset");
        let inner = self.inner.list_with_offset(prefix, offset);
        Recorded::new(inner, &self.log, "list_with_offset poll").boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.log.record("list_with_delimiter");
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.log.record("copy_opts");
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.log.record("rename_opts");
        self.inner.rename_opts(from, to, options).await
    }
}

/// The upload a [`ProbeStore`] hands out.
struct ProbeUpload {
    inner: Box<dyn MultipartUpload>,
    log: Log,
    next_part: usize,
    fail_part: Option<usize>,
    stall: bool,
    hold_part: Option<(usize, std::sync::mpsc::Receiver<()>)>,
}

impl fmt::Debug for ProbeUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeUpload").finish_non_exhaustive()
    }
}

#[async_trait]
impl MultipartUpload for ProbeUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.log.record("put_part");
        let index = self.next_part;
        self.next_part += 1;
        let part: BoxFuture<'static, Result<()>> = if self.fail_part == Some(index) {
            Box::pin(async move {
                Err(object_store::Error::Generic {
                    store: "ProbeStore",
                    source: format!("part {index} refused").into(),
                })
            })
        } else if self.stall {
            Box::pin(std::future::pending())
        } else if let Some((_, held)) = self.hold_part.take_if(|(at, _)| *at == index) {
            let (part, log) = (self.inner.put_part(data), self.log.clone());
            Box::pin(async move {
                log.record("part holding");
                let _ = held.recv_timeout(std::time::Duration::from_secs(60));
                part.await
            })
        } else {
            self.inner.put_part(data)
        };
        Box::pin(Recorded::new(part, &self.log, "part poll"))
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.log.record("complete");
        self.inner.complete().await
    }

    async fn abort(&mut self) -> Result<()> {
        self.log.record("abort");
        self.inner.abort().await
    }
}

impl Drop for ProbeUpload {
    fn drop(&mut self) {
        self.log.record("upload drop");
    }
}
