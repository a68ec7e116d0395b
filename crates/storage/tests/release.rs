//! Dropping a reader or a lister releases what the backend holds open on the
//! executor, not on the dropping thread.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use storage::raw::{Access, IoJob, ListArgs, OpenArgs, Opened, RandomRead, RawList, ReadArgs};
use storage::{Entry, Error, ErrorKind, Metadata, Operator};

/// Records the name of the thread each resource is dropped on.
type Drops = Arc<Mutex<Vec<String>>>;

fn record(drops: &Drops) {
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    drops.lock().unwrap().push(name);
}

#[derive(Debug)]
struct Tracked(Drops);

impl Drop for Tracked {
    fn drop(&mut self) {
        record(&self.0);
    }
}

/// A backend whose objects and listings are "open files": releasing them is IO, so
/// they ask for a blocking job, like the fs backend does. Its opens wait while its
/// [`Gate`] is shut.
#[derive(Debug)]
struct TrackingBackend(Drops, Arc<Gate>);

/// Holds opens back while shut (at most 10 s, so that a test that never opens it
/// fails instead of hanging).
#[derive(Debug, Default)]
struct Gate {
    shut: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn set_shut(&self, shut: bool) {
        *self.shut.lock().unwrap() = shut;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let shut = self.shut.lock().unwrap();
        drop(
            self.changed
                .wait_timeout_while(shut, Duration::from_secs(10), |shut| *shut)
                .unwrap(),
        );
    }
}

#[derive(Debug)]
struct Object {
    /// Held only for its `Drop`.
    _guard: Tracked,
    meta: Metadata,
}

impl RandomRead for Object {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// Zeros; a read starting at an odd offset fails (an injected fault).
    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::blocking(move || {
            if range.start % 2 == 1 {
                return Err(Error::new(ErrorKind::Unexpected).with_message("injected"));
            }
            Ok(Bytes::from(vec![0; (range.end - range.start) as usize]))
        })
    }

    fn close(self: Arc<Self>) -> IoJob<()> {
        IoJob::blocking(move || {
            drop(self);
            Ok(())
        })
    }
}

#[derive(Debug)]
struct Listing {
    /// Held only for its `Drop`.
    _guard: Tracked,
    pages: u32,
}

impl RawList for Listing {
    fn next_page(mut self: Box<Self>) -> IoJob<(Box<dyn RawList>, Vec<Entry>)> {
        IoJob::blocking(move || {
            self.pages += 1;
            let page = vec![Entry::new(format!("e{}", self.pages), Metadata::file(1))];
            Ok((self as Box<dyn RawList>, page))
        })
    }

    fn close(self: Box<Self>) -> IoJob<()> {
        IoJob::blocking(move || {
            drop(self);
            Ok(())
        })
    }
}

fn unsupported<T>() -> IoJob<T> {
    IoJob::ready(Err(Error::new(ErrorKind::Unsupported)))
}

impl Access for TrackingBackend {
    fn scheme(&self) -> &'static str {
        "tracking"
    }
    fn stat(&self, _: &str) -> IoJob<Metadata> {
        unsupported()
    }
    fn read(&self, _: &str, _: ReadArgs) -> IoJob<Bytes> {
        unsupported()
    }
    /// A blocking job, as fs's.
    fn open(&self, _: &str, args: OpenArgs) -> IoJob<Opened> {
        let (drops, gate) = (Arc::clone(&self.0), Arc::clone(&self.1));
        IoJob::blocking(move || {
            gate.pass();
            let object = Arc::new(Object {
                _guard: Tracked(drops),
                meta: Metadata::file(8 << 20),
            });
            let range = args.range.resolve(8 << 20)?;
            Ok(Opened::new(object, range, Bytes::new()))
        })
    }
    /// Ready at once, as a backend whose listing needs no IO to start.
    fn list(&self, _: &str, _: ListArgs) -> IoJob<Box<dyn RawList>> {
        IoJob::ready(Ok(Box::new(Listing {
            _guard: Tracked(Arc::clone(&self.0)),
            pages: 0,
        })))
    }
}

fn wait_for(drops: &Drops, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = drops.lock().unwrap().clone();
        if seen.len() >= n {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} resources released",
            seen.len()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// An operator over a [`TrackingBackend`] on its own executor, whose threads are
/// named after `name`; the record of releases; the executor.
fn tracked(name: &str) -> (Operator, Drops, io_executor::Executor) {
    let (op, drops, executor, _) = tracked_gated(name);
    (op, drops, executor)
}

/// As [`tracked`], and the backend's [`Gate`] (open).
fn tracked_gated(name: &str) -> (Operator, Drops, io_executor::Executor, Arc<Gate>) {
    let drops: Drops = Arc::default();
    let gate = Arc::<Gate>::default();
    let executor = io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(1).unwrap())
        .blocking_threads(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let op = Operator::new(TrackingBackend(Arc::clone(&drops), Arc::clone(&gate)))
        .with_executor(executor.clone());
    (op, drops, executor, gate)
}

/// The caller: a current-thread runtime, as in a test.
fn caller() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until `executor` has finished `n` jobs.
fn wait_for_jobs(executor: &io_executor::Executor, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while executor.metrics().completed < n {
        assert!(Instant::now() < deadline, "only {} of {n} jobs finished", {
            executor.metrics().completed
        });
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Waits for `n` releases and checks each ran on one of `name`'s blocking threads.
fn assert_released_on_executor(drops: &Drops, n: usize, name: &str) {
    let released = wait_for(drops, n);
    for thread in &released {
        assert!(
            thread.starts_with(&format!("{name}-blocking-")),
            "released on {thread:?}, not the executor: {released:?}"
        );
    }
}

#[test]
fn dropped_readers_and_listers_release_on_the_executor() {
    let (op, drops, executor) = tracked("rel");
    let op = op
        .clone()
        .with_options(op.options().with_chunk_size(1 << 20));
    caller().block_on(async {
        // A reader dropped mid-stream, with chunk reads in flight.
        let mut reader = op.reader("obj").await.unwrap();
        assert_eq!(reader.next().await.unwrap().unwrap().len(), 1 << 20);
        drop(reader);
        // A lister dropped mid-listing, once its prefetched next page is done (so the
        // listing is parked in the finished page, not inside a job).
        let mut lister = op.lister("dir/").await.unwrap();
        assert_eq!(lister.next().await.unwrap().unwrap().path(), "e1");
        // Every job has ended (the reader's releases, and the next page's).
        let deadline = Instant::now() + Duration::from_secs(10);
        while {
            let m = executor.metrics();
            m.queued + m.running > 0
        } {
            assert!(Instant::now() < deadline, "jobs still under way after 10 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(lister);
    });
    assert_released_on_executor(&drops, 2, "rel");
}

#[test]
fn read_ranges_releases_the_object_on_the_executor_whether_it_reads_or_fails() {
    let (op, drops, _executor) = tracked("ranges");
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    caller().block_on(async {
        // Two reads, so the object is opened once and read twice.
        let got = op
            .read_ranges("obj", vec![0..100, 4 << 20..(4 << 20) + 100])
            .await
            .unwrap();
        assert_eq!(got.iter().map(Bytes::len).collect::<Vec<_>>(), [100, 100]);
        // The second read fails: the error is returned, the object still released.
        let err = op
            .read_ranges("obj", vec![0..100, (4 << 20) + 1..(4 << 20) + 101])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    });
    assert_released_on_executor(&drops, 2, "ranges");
}

#[test]
fn cancelled_opens_release_what_they_opened_on_the_executor() {
    let (op, drops, executor) = tracked("cancel");
    // A reader whose open job has finished, its future dropped before it is awaited
    // (a `select!` that took another branch).
    let reader = op.reader("obj");
    wait_for_jobs(&executor, 1);
    drop(reader);
    // A lister whose listing was opened at once, dropped unawaited.
    drop(op.lister("dir/"));
    assert_released_on_executor(&drops, 2, "cancel");
}

#[test]
fn a_cancelled_read_ranges_releases_what_it_opened_on_the_executor() {
    let (op, drops, executor, gate) = tracked_gated("cancel-ranges");
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    caller().block_on(async {
        // Two reads: the call submits the job that opens the object, held back
        // until the first poll has found it unfinished.
        gate.set_shut(true);
        let mut read = op.read_ranges("obj", vec![0..100, 4 << 20..(4 << 20) + 100]);
        let pending = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(futures::FutureExt::poll_unpin(&mut read, cx).is_pending())
        });
        assert!(pending.await);
        gate.set_shut(false);
        // The open job finishes; the future is dropped before it is polled again.
        wait_for_jobs(&executor, 1);
        drop(read);
    });
    assert_released_on_executor(&drops, 1, "cancel-ranges");
}
