//! Isolation, end to end: a SQL query on a current-thread runtime over a table
//! whose bytes come through a FIFO that a task on that same runtime feeds.
//!
//! The table's backend reads the FIFO with plain blocking reads: a read blocks until
//! the feeder has written, and the feeder writes more than the pipe holds, so it can
//! only finish while the reads drain the pipe. Through our registration every read
//! is a job on the IO executor, the caller's one thread stays free to run the
//! feeder, and the query completes. A path that reads on the caller's thread would
//! wait there forever for a feeder that can only run on that same thread: the
//! backend detects such a read and fails it ("would wait forever") instead of
//! hanging the test, and the control below shows it does.

mod common;

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;
use storage::raw::{Access, IoJob, ListArgs, OpenArgs, Opened, RandomRead, RawList, ReadArgs};
use storage::{Entry, Error, ErrorKind, Metadata, Operator};
use tokio::io::AsyncWriteExt;

/// The one file the FIFO-backed backend holds.
const FILE: &str = "t/part-0.parquet";

/// A backend of one parquet file whose bytes arrive through a FIFO. The first
/// operation that needs the file reads the FIFO to its end with blocking reads
/// (opening it blocks until a writer is there); later ones use what was read.
struct FifoAccess {
    fifo: PathBuf,
    caller: ThreadId,
    content: Mutex<Option<Bytes>>,
    reads_on_caller: AtomicUsize,
}

impl FifoAccess {
    fn new(fifo: PathBuf, caller: ThreadId) -> Self {
        Self {
            fifo,
            caller,
            content: Mutex::new(None),
            reads_on_caller: AtomicUsize::new(0),
        }
    }

    fn content(&self) -> storage::Result<Bytes> {
        if std::thread::current().id() == self.caller {
            self.reads_on_caller.fetch_add(1, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::Unexpected).with_message(
                "a blocking read of the FIFO on the caller's thread would wait forever \
                 for the feeder, which runs on that same thread",
            ));
        }
        let mut content = self.content.lock();
        if let Some(bytes) = &*content {
            return Ok(bytes.clone());
        }
        let mut data = Vec::new();
        std::fs::File::open(&self.fifo)
            .and_then(|mut fifo| fifo.read_to_end(&mut data))
            .map_err(|e| Error::new(ErrorKind::Unexpected).with_source(e))?;
        let bytes = Bytes::from(data);
        *content = Some(bytes.clone());
        Ok(bytes)
    }

    fn metadata(&self) -> storage::Result<Metadata> {
        Ok(Metadata::file(self.content()?.len() as u64))
    }
}

impl fmt::Debug for FifoAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FifoAccess")
            .field("fifo", &self.fifo)
            .finish_non_exhaustive()
    }
}

/// The `Access` of a shared [`FifoAccess`].
#[derive(Debug)]
struct Fifo(Arc<FifoAccess>);

impl Access for Fifo {
    fn scheme(&self) -> &'static str {
        "fifo"
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        let (fifo, dir) = (Arc::clone(&self.0), path.ends_with('/'));
        IoJob::blocking(move || {
            if dir {
                Ok(Metadata::dir())
            } else {
                fifo.metadata()
            }
        })
    }

    fn read(&self, _path: &str, args: ReadArgs) -> IoJob<Bytes> {
        let fifo = Arc::clone(&self.0);
        IoJob::blocking(move || {
            let content = fifo.content()?;
            let range = args.resolve(content.len() as u64)?;
            Ok(content.slice(range.start as usize..range.end as usize))
        })
    }

    fn open(&self, _path: &str, args: OpenArgs) -> IoJob<Opened> {
        let fifo = Arc::clone(&self.0);
        IoJob::blocking(move || {
            let content = fifo.content()?;
            let range = args.range.resolve(content.len() as u64)?;
            let first = args.first_read(&range);
            let object = Arc::new(Object {
                metadata: Metadata::file(content.len() as u64),
                content: content.clone(),
            });
            let first = content.slice(first.start as usize..first.end as usize);
            Ok(Opened::new(object, range, first))
        })
    }

    fn list(&self, path: &str, args: ListArgs) -> IoJob<Box<dyn RawList>> {
        let (fifo, path) = (Arc::clone(&self.0), path.to_owned());
        IoJob::blocking(move || {
            let metadata = fifo.metadata()?;
            let mut entries = Vec::new();
            if args.recursive && FILE.starts_with(&path) {
                entries.push(Entry::new(FILE, metadata));
            } else if path.is_empty() {
                entries.push(Entry::new("t/", Metadata::dir()));
            } else if path == "t/" {
                entries.push(Entry::new(FILE, metadata));
            }
            Ok(Box::new(Page(Some(entries))) as Box<dyn RawList>)
        })
    }
}

/// The file, once read.
#[derive(Debug)]
struct Object {
    metadata: Metadata,
    content: Bytes,
}

impl RandomRead for Object {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::ready(Ok(self
            .content
            .slice(range.start as usize..range.end as usize)))
    }
}

/// A listing of one page.
#[derive(Debug)]
struct Page(Option<Vec<Entry>>);

impl RawList for Page {
    fn next_page(mut self: Box<Self>) -> IoJob<(Box<dyn RawList>, Vec<Entry>)> {
        let entries = self.0.take().unwrap_or_default();
        IoJob::ready(Ok((self as Box<dyn RawList>, entries)))
    }
}

/// A parquet file bigger than a pipe holds (64 KiB), so the feeder cannot finish
/// before the reads have drained most of it, and the value its query sums to.
fn table() -> (Bytes, i64) {
    let batch = common::lineitem_batch(11, 0, 20_000);
    let total = batch
        .column_by_name("l_quantity")
        .unwrap()
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .sum();
    let bytes = common::parquet_bytes(&batch, common::writer_properties(5000));
    assert!(bytes.len() > 4 * 65_536, "{} bytes", bytes.len());
    (bytes, total)
}

/// A FIFO in a fresh temp directory.
fn make_fifo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feed");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .unwrap();
    (dir, path)
}

/// Writes `bytes` into the FIFO from the current runtime, then closes it; returns
/// the thread it ran on.
async fn feed(fifo: PathBuf, bytes: Bytes) -> ThreadId {
    // Read-write, so opening needs no reader yet (Linux); the reader sees the end
    // of the data when this, the only writer, is dropped.
    let mut sender = tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&fifo)
        .unwrap();
    sender.write_all(&bytes).await.unwrap();
    drop(sender);
    std::thread::current().id()
}

const QUERY: &str = "SELECT count(*) AS n, sum(l_quantity) AS q FROM fed";

#[test]
fn a_query_on_the_feeders_runtime_completes_through_our_reads() {
    let (bytes, total) = table();
    let (_dir, fifo) = make_fifo();
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caller_thread = std::thread::current().id();
    let access = Arc::new(FifoAccess::new(fifo.clone(), caller_thread));
    let io = common::executor("iso-fifo");
    let op = Operator::new(Fifo(Arc::clone(&access))).with_executor(io.clone());

    let (fed_on, (n, q)) = caller.block_on(async {
        let feeder = tokio::spawn(feed(fifo, bytes));
        let ctx = SessionContext::new();
        dio_parquet::register(&ctx, "fifo://feed", op).unwrap();
        dio_parquet::register_parquet(&ctx, "fed", "fifo://feed/t/", ParquetReadOptions::default())
            .await
            .unwrap();
        let batches = ctx.sql(QUERY).await.unwrap().collect().await.unwrap();
        let row = &batches[0];
        let n = row
            .column(0)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        let q = row
            .column(1)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        (feeder.await.unwrap(), (n, q))
    });

    assert_eq!((n, q), (20_000, total));
    // The feeder ran on the caller's one thread, while the reads waited for it,
    // and no read ever ran there.
    assert_eq!(fed_on, caller_thread);
    assert_eq!(access.reads_on_caller.load(Ordering::SeqCst), 0);
    io.shutdown();
    io.blocking_join();
}

/// The control: an `ObjectStore` that reads on the caller, as a store does that
/// performs its IO where it is polled. Its first read would block the caller's one
/// thread until the feeder (on that thread) writes: it hangs, which the backend
/// reports instead of doing.
#[derive(Debug)]
struct OnCaller(Arc<FifoAccess>);

impl fmt::Display for OnCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnCaller")
    }
}

fn not_here() -> object_store::Error {
    object_store::Error::NotImplemented {
        operation: "this control store only lists and reads".into(),
        implementer: "OnCaller".into(),
    }
}

fn os_error(e: Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "OnCaller",
        source: Box::new(e),
    }
}

#[async_trait]
impl ObjectStore for OnCaller {
    async fn put_opts(
        &self,
        _: &Path,
        _: PutPayload,
        _: PutOptions,
    ) -> object_store::Result<PutResult> {
        Err(not_here())
    }

    async fn put_multipart_opts(
        &self,
        _: &Path,
        _: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Err(not_here())
    }

    async fn get_opts(&self, _: &Path, _: GetOptions) -> object_store::Result<GetResult> {
        // Reading on the caller: the blocking read happens right here.
        self.0.content().map_err(os_error)?;
        Err(not_here())
    }

    fn delete_stream(
        &self,
        _: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        futures::stream::once(async { Err(not_here()) }).boxed()
    }

    fn list(&self, _: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // The listing needs the file's size: a blocking read on the caller.
        let item = self.0.metadata().map_err(os_error).map(|meta| ObjectMeta {
            location: Path::from(FILE),
            last_modified: std::time::SystemTime::UNIX_EPOCH.into(),
            size: meta.content_length(),
            e_tag: None,
            version: None,
        });
        futures::stream::iter([item]).boxed()
    }

    async fn list_with_delimiter(&self, _: Option<&Path>) -> object_store::Result<ListResult> {
        Err(not_here())
    }

    async fn copy_opts(&self, _: &Path, _: &Path, _: CopyOptions) -> object_store::Result<()> {
        Err(not_here())
    }
}

#[test]
fn the_same_query_through_a_store_that_reads_on_the_caller_would_hang() {
    let (bytes, _) = table();
    let (_dir, fifo) = make_fifo();
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let access = Arc::new(FifoAccess::new(fifo.clone(), std::thread::current().id()));
    let store: Arc<dyn ObjectStore> = Arc::new(OnCaller(Arc::clone(&access)));

    let err = caller.block_on(async {
        let feeder = tokio::spawn(feed(fifo, bytes));
        let ctx = SessionContext::new();
        ctx.register_object_store(&url::Url::parse("fifo://feed").unwrap(), store);
        let err = ctx
            .register_parquet("fed", "fifo://feed/t/", ParquetReadOptions::default())
            .await
            .unwrap_err();
        feeder.abort();
        err
    });

    let text = err.to_string();
    assert!(text.contains("would wait forever"), "{text}");
    assert_eq!(access.reads_on_caller.load(Ordering::SeqCst), 1);
}
