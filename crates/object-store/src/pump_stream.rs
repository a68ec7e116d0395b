//! [`PumpStream`]: the caller's end of a stream that is polled on the executor.
//!
//! A pump job on the executor owns the inner stream (a `get` body, a listing, the
//! results of a bulk delete). It waits for a free slot in a bounded channel, then
//! takes everything the inner stream has ready, up to a batch limit, and sends it as
//! one batch: one hand-off, and at most one wake-up of the caller, per batch instead
//! of per HTTP frame. The caller's [`PumpStream`] yields the batch's items one by one.
//!
//! # Memory bound
//!
//! The pump only pulls from the inner stream while it holds a channel slot, and a
//! batch closes as soon as its weight reaches the limit, or it holds its
//! [`Bounds::max_items`] (errors and empty chunks weigh nothing, and a stream
//! that keeps yielding them must not fill one batch without end). So at most
//! `capacity` batches exist between the pump and the channel, plus the one batch the
//! caller is working through: items pulled from the inner stream but not yet handed
//! to the caller weigh at most `(capacity + 1) * (limit + largest item - 1)`.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::future::poll_fn;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use io_executor::{Executor, JoinHandle};
use object_store::path::Path;
use object_store::{ObjectMeta, Result};
use tokio::sync::{mpsc, oneshot};

use crate::executor_error::executor_error;

/// How many items go in one batch at most (a listing's; a bulk delete's are
/// fewer: see `IoObjectStore::delete_stream`).
pub(crate) const ITEMS_PER_BATCH: usize = 1000;

/// What an item counts for against a batch's limit.
pub(crate) trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for ObjectMeta {
    fn weight(&self) -> usize {
        1
    }
}

impl Weigh for Path {
    fn weight(&self) -> usize {
        1
    }
}

/// Where a pump sends its batches and how big they get.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Batches the channel holds (and so at most `capacity` batches in flight).
    pub(crate) capacity: usize,
    /// A batch closes once its items weigh this much.
    pub(crate) limit: usize,
    /// ... or once it holds this many items, whatever they weigh (errors too).
    pub(crate) max_items: usize,
}

impl Bounds {
    /// `capacity` batches of `limit`, at most [`ITEMS_PER_BATCH`] items each.
    pub(crate) fn new(capacity: usize, limit: usize) -> Self {
        Self {
            capacity,
            limit,
            max_items: ITEMS_PER_BATCH,
        }
    }
}

type Batch<T> = Vec<Result<T>>;

/// The caller's end of a pump: yields the pump's batches item by item and, when the
/// pump ends, checks that it ended normally.
///
/// Dropping it drops the pump's [`JoinHandle`], which cancels the pump: the inner
/// stream is dropped on the executor at its next await point.
pub(crate) struct PumpStream<T> {
    batches: mpsc::Receiver<Batch<T>>,
    batch: std::vec::IntoIter<Result<T>>,
    /// Tells a pump made with [`lazy`](Self::lazy) to start: sent at the first poll.
    start: Option<oneshot::Sender<()>>,
    pump: Option<JoinHandle<()>>,
    operation: &'static str,
    path: Option<Path>,
    executor: Executor,
}

impl<T: Weigh + Send + 'static> PumpStream<T> {
    /// Starts a pump on `executor` over the stream `open` returns; `open` itself runs
    /// on the executor too.
    pub(crate) fn spawn<F>(
        executor: &Executor,
        bounds: Bounds,
        operation: &'static str,
        path: Option<Path>,
        open: F,
    ) -> Self
    where
        F: FnOnce() -> BoxStream<'static, Result<T>> + Send + 'static,
    {
        let mut stream = Self::lazy(executor, bounds, operation, path, open);
        stream.start();
        stream
    }

    /// As [`spawn`](Self::spawn), but the pump calls `open` and pulls only once the
    /// stream is first polled: a stream whose pulls do something (a bulk delete's)
    /// does nothing before, as a stream of the inner store's own would. The pump
    /// is a job from the start all the same: `join` waits for it, and a deadline
    /// or a refusal ends it, as any other stream's.
    pub(crate) fn lazy<F>(
        executor: &Executor,
        bounds: Bounds,
        operation: &'static str,
        path: Option<Path>,
        open: F,
    ) -> Self
    where
        F: FnOnce() -> BoxStream<'static, Result<T>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(bounds.capacity);
        let (start, started) = oneshot::channel();
        let pump = executor.spawn(async move {
            // The stream dropped unpolled: nothing opened, nothing pulled.
            if started.await.is_ok() {
                pump(open(), tx, bounds).await;
            }
        });
        Self {
            batches: rx,
            batch: Vec::new().into_iter(),
            start: Some(start),
            pump: Some(pump),
            operation,
            path,
            executor: executor.clone(),
        }
    }
}

impl<T> PumpStream<T> {
    /// Lets the pump open the inner stream and pull (once).
    fn start(&mut self) {
        if let Some(start) = self.start.take() {
            // A pump gone already (refused, cut off) says so when polled.
            let _ = start.send(());
        }
    }
}

/// Moves `stream` into `tx` in batches until the stream ends or the receiver is gone.
async fn pump<T: Weigh>(
    mut stream: BoxStream<'static, Result<T>>,
    tx: mpsc::Sender<Batch<T>>,
    bounds: Bounds,
) {
    let Bounds {
        limit, max_items, ..
    } = bounds;
    loop {
        // A slot first: nothing is pulled from the inner stream without room for it.
        let Ok(permit) = tx.reserve().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut weight = 0;
        let mut ended = false;
        poll_fn(|cx| {
            while weight < limit && batch.len() < max_items {
                match stream.poll_next_unpin(cx) {
                    Poll::Ready(Some(item)) => {
                        weight += item.as_ref().map_or(0, Weigh::weight);
                        batch.push(item);
                    }
                    Poll::Ready(None) => {
                        ended = true;
                        break;
                    }
                    // Nothing ready: wait for the first item, send what we have otherwise.
                    Poll::Pending if batch.is_empty() => return Poll::Pending,
                    Poll::Pending => break,
                }
            }
            Poll::Ready(())
        })
        .await;
        if !batch.is_empty() {
            permit.send(batch);
        }
        if ended {
            return;
        }
    }
}

// Nothing of a `PumpStream` is ever pinned in place: its items are only moved out.
impl<T> Unpin for PumpStream<T> {}

impl<T> Stream for PumpStream<T> {
    type Item = Result<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.start();
        loop {
            if let Some(item) = this.batch.next() {
                return Poll::Ready(Some(item));
            }
            let Some(pump) = this.pump.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(this.batches.poll_recv(cx)) {
                Some(batch) => this.batch = batch.into_iter(),
                None => {
                    // The pump is gone: a normal end, or cut short (shutdown, panic)?
                    // Its future is dropped before its handle resolves, so wait for it.
                    let ended = ready!(Pin::new(pump).poll(cx));
                    this.pump = None;
                    return Poll::Ready(ended.err().map(|e| {
                        Err(executor_error(
                            this.operation,
                            this.path.as_ref(),
                            &this.executor,
                            e,
                        ))
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use futures_util::stream;

    use super::*;

    fn executor() -> Executor {
        io_executor::Builder::new()
            .name("pump-test")
            .worker_threads(NonZeroUsize::MIN)
            .build()
            .unwrap()
    }

    fn chunks(n: usize, size: usize) -> BoxStream<'static, Result<Bytes>> {
        stream::iter((0..n).map(move |i| Ok(Bytes::from(vec![i as u8; size])))).boxed()
    }

    #[test]
    fn a_ready_stream_arrives_in_batches_that_close_at_the_limit() {
        let io = executor();
        let bounds = Bounds::new(1, 10);
        let mut s = PumpStream::spawn(&io, bounds, "t", None, || chunks(7, 4));
        // 4 + 4 + 4 >= 10: the first batch holds three chunks.
        let first = futures::executor::block_on(s.next()).unwrap().unwrap();
        assert_eq!(first, vec![0_u8; 4]);
        assert_eq!(s.batch.len(), 2, "the rest of the first batch");
        let rest: Vec<_> = futures::executor::block_on(s.collect::<Vec<_>>());
        assert_eq!(rest.len(), 6);
    }

    #[test]
    fn items_keep_their_order_and_errors_do_not_end_the_stream() {
        let io = executor();
        let items = vec![
            Ok(Path::from("a")),
            Err(object_store::Error::NotFound {
                path: "b".into(),
                source: "gone".into(),
            }),
            Ok(Path::from("c")),
        ];
        let bounds = Bounds::new(2, ITEMS_PER_BATCH);
        let s = PumpStream::spawn(&io, bounds, "t", None, move || stream::iter(items).boxed());
        let out = futures::executor::block_on(s.collect::<Vec<_>>());
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_ref().unwrap(), &Path::from("a"));
        assert!(matches!(out[1], Err(object_store::Error::NotFound { .. })));
        assert_eq!(out[2].as_ref().unwrap(), &Path::from("c"));
    }

    /// A stream that yields errors for ever (or empty chunks) is pulled one batch at
    /// a time, as the caller takes them, and dropping the caller's end stops it: the
    /// pump does not spin filling one batch.
    #[test]
    fn a_stream_of_endless_errors_is_pulled_as_the_caller_takes_it() {
        let io = executor();
        let bounds = Bounds::new(1, 10);
        let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&pulled);
        let mut s: PumpStream<Bytes> = PumpStream::spawn(&io, bounds, "get", None, move || {
            stream::repeat_with(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(object_store::Error::Generic {
                    store: "test",
                    source: "broken".into(),
                })
            })
            .boxed()
        });
        // On a helper thread: a pump that spins would never hand over a batch.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for _ in 0..3 {
                let item = futures::executor::block_on(s.next()).unwrap();
                assert!(item.is_err());
            }
            drop(s);
            let _ = tx.send(());
        });
        rx.recv_timeout(std::time::Duration::from_secs(60))
            .expect("no batch of errors within 60 s: the pump spins");
        io.shutdown();
        assert!(
            io.blocking_shutdown_timeout(std::time::Duration::from_secs(60)),
            "the pump stopped"
        );
        // The batch being read, one in the channel, one waiting for a slot.
        let pulled = pulled.load(std::sync::atomic::Ordering::Relaxed);
        assert!(pulled <= 3 * ITEMS_PER_BATCH, "{pulled} pulled");
    }

    #[test]
    fn a_pump_that_panics_ends_the_stream_with_an_error() {
        let io = executor();
        let bounds = Bounds::new(1, 1);
        let s: PumpStream<Bytes> =
            PumpStream::spawn(&io, bounds, "list", Some(Path::from("p")), || {
                stream::once(async { panic!("inner stream broke") }).boxed()
            });
        let out = futures::executor::block_on(s.collect::<Vec<_>>());
        assert_eq!(out.len(), 1);
        let err = out.into_iter().next().unwrap().unwrap_err().to_string();
        assert!(
            err.contains(
                "list `p` on IO executor `pump-test` failed: job panicked: inner stream broke"
            ),
            "{err}"
        );
    }
}
