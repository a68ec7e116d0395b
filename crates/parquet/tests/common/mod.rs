//! What the parquet tests share: dedicated executors, a counting layer around a
//! backend, parquet files written with parquet's `ArrowWriter`, and the S3 server
//! `scripts/test` starts (SeaweedFS), found through `DIO_TEST_S3_URI` and `AWS_*`.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parking_lot::Mutex;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use storage::raw::{
    Access, ByteRange, IoJob, ListArgs, OpenArgs, Opened, RandomRead, RawList, RawWrite, ReadArgs,
};
use storage::services::s3::S3Builder;
use storage::{Metadata, Operator, WriteOptions};

/// A dedicated pool named `name`.
pub(crate) fn executor(name: &str) -> io_executor::Executor {
    io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Counting

/// What a [`Counting`] backend saw.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    reads: AtomicU64,
    opens: AtomicU64,
    bytes: AtomicU64,
    /// Every read, as `(path, range asked for)`.
    log: Mutex<Vec<(String, ByteRange)>>,
}

impl Counts {
    /// Reads: `read` jobs and positional reads of opened objects.
    pub(crate) fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Objects opened for positional reads.
    pub(crate) fn opens(&self) -> u64 {
        self.opens.load(Ordering::SeqCst)
    }

    /// Bytes the reads returned.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Reads of `path` ending at `end` (a footer read ends at the file's end).
    pub(crate) fn reads_ending_at(&self, path: &str, end: u64) -> usize {
        self.log
            .lock()
            .iter()
            .filter(|(p, r)| p == path && r.end() == Some(end))
            .count()
    }

    /// Starts counting afresh.
    pub(crate) fn reset(&self) {
        self.reads.store(0, Ordering::SeqCst);
        self.opens.store(0, Ordering::SeqCst);
        self.bytes.store(0, Ordering::SeqCst);
        self.log.lock().clear();
    }

    fn read(&self, path: &str, range: ByteRange) {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.log.lock().push((path.to_owned(), range));
    }

    fn got(&self, bytes: &Bytes) {
        self.bytes.fetch_add(bytes.len() as u64, Ordering::SeqCst);
    }
}

/// A backend that counts the reads it does for another.
#[derive(Debug)]
pub(crate) struct Counting {
    inner: Arc<dyn Access>,
    counts: Arc<Counts>,
}

impl Counting {
    /// An operator over `inner` on `executor`, and its counters.
    pub(crate) fn operator(
        inner: impl Access,
        executor: io_executor::Executor,
    ) -> (Operator, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        let counting = Counting {
            inner: Arc::new(inner),
            counts: Arc::clone(&counts),
        };
        (Operator::new(counting).with_executor(executor), counts)
    }
}

impl Access for Counting {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    fn attach(&self, executor: &io_executor::Executor) {
        self.inner.attach(executor);
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        self.inner.stat(path)
    }

    fn read(&self, path: &str, args: ReadArgs) -> IoJob<Bytes> {
        self.counts.read(path, args.range);
        let counts = Arc::clone(&self.counts);
        self.inner.read(path, args).map(move |bytes| {
            counts.got(&bytes);
            bytes
        })
    }

    fn open(&self, path: &str, args: OpenArgs) -> IoJob<Opened> {
        self.counts.opens.fetch_add(1, Ordering::SeqCst);
        let (counts, path) = (Arc::clone(&self.counts), path.to_owned());
        self.inner.open(&path, args).map(move |opened| {
            counts.got(&opened.first);
            let object: Arc<dyn RandomRead> = Arc::new(CountingObject {
                inner: opened.object,
                counts,
                path,
            });
            Opened::new(object, opened.range, opened.first)
        })
    }

    fn write(&self, path: &str, data: Bytes, options: WriteOptions) -> IoJob<Metadata> {
        self.inner.write(path, data, options)
    }

    fn writer(&self, path: &str, options: WriteOptions) -> IoJob<Box<dyn RawWrite>> {
        self.inner.writer(path, options)
    }

    fn delete(&self, path: &str) -> IoJob<()> {
        self.inner.delete(path)
    }

    fn delete_many(&self, paths: Vec<String>) -> IoJob<Vec<storage::Result<()>>> {
        self.inner.delete_many(paths)
    }

    fn remove_all(&self, path: &str) -> IoJob<()> {
        self.inner.remove_all(path)
    }

    fn create_dir(&self, path: &str) -> IoJob<()> {
        self.inner.create_dir(path)
    }

    fn copy(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        self.inner.copy(from, to, options)
    }

    fn rename(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        self.inner.rename(from, to, options)
    }

    fn list(&self, path: &str, args: ListArgs) -> IoJob<Box<dyn RawList>> {
        self.inner.list(path, args)
    }
}

/// An opened object whose positional reads are counted.
#[derive(Debug)]
struct CountingObject {
    inner: Arc<dyn RandomRead>,
    counts: Arc<Counts>,
    path: String,
}

impl RandomRead for CountingObject {
    fn metadata(&self) -> &Metadata {
        self.inner.metadata()
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        self.counts.read(&self.path, ByteRange::new(range.clone()));
        let counts = Arc::clone(&self.counts);
        Arc::clone(&self.inner).read_at(range).map(move |bytes| {
            counts.got(&bytes);
            bytes
        })
    }

    fn close(self: Arc<Self>) -> IoJob<()> {
        Arc::clone(&self.inner).close()
    }
}

// ---------------------------------------------------------------------------
// Data

/// A small deterministic generator (xorshift64*), so the data is the same on
/// every run and machine.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Days since 1970-01-01 of 1992-01-01 (TPC-H's first order date).
pub(crate) const EPOCH_1992: i32 = 8035;

/// `lineitem`: TPC-H's columns, of several types (integers, decimals as cents,
/// strings of low and high cardinality, dates, a timestamp, a boolean, nulls).
pub(crate) fn lineitem_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("l_orderkey", DataType::Int64, false),
        Field::new("l_partkey", DataType::Int64, false),
        Field::new("l_linenumber", DataType::Int32, false),
        Field::new("l_quantity", DataType::Int64, false),
        Field::new("l_extendedprice", DataType::Int64, false),
        Field::new("l_discount", DataType::Float64, false),
        Field::new("l_returnflag", DataType::Utf8, false),
        Field::new("l_linestatus", DataType::Utf8, false),
        Field::new("l_shipdate", DataType::Date32, false),
        Field::new("l_shipmode", DataType::Utf8, false),
        Field::new(
            "l_loaded_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
        Field::new("l_is_late", DataType::Boolean, false),
        Field::new("l_comment", DataType::Utf8, true),
    ]))
}

const SHIPMODES: [&str; 7] = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"];
const FLAGS: [&str; 3] = ["A", "N", "R"];
const WORDS: [&str; 8] = [
    "carefully",
    "final",
    "deposits",
    "sleep",
    "quickly",
    "ironic",
    "requests",
    "furiously",
];

/// `rows` lines of orders `first_order..`, about 4 lines per order.
pub(crate) fn lineitem_batch(seed: u64, first_order: i64, rows: usize) -> RecordBatch {
    let mut rng = Rng::new(seed);
    let mut orderkey = Vec::with_capacity(rows);
    let mut order = first_order;
    let mut line = 0;
    let mut linenumber = Vec::with_capacity(rows);
    for _ in 0..rows {
        if line > 0 && rng.below(4) == 0 {
            order += 1;
            line = 0;
        }
        line += 1;
        orderkey.push(order);
        linenumber.push(line);
    }
    let partkey: Vec<i64> = (0..rows).map(|_| 1 + rng.below(20_000) as i64).collect();
    let quantity: Vec<i64> = (0..rows).map(|_| 1 + rng.below(50) as i64).collect();
    let price: Vec<i64> = quantity
        .iter()
        .map(|q| q * (90_000 + rng.below(20_000) as i64))
        .collect();
    let discount: Vec<f64> = (0..rows).map(|_| rng.below(11) as f64 / 100.0).collect();
    let shipdate: Vec<i32> = (0..rows)
        .map(|_| EPOCH_1992 + rng.below(2526) as i32)
        .collect();
    let returnflag: Vec<&str> = shipdate
        .iter()
        .map(|d| {
            if *d > EPOCH_1992 + 1260 {
                "N"
            } else {
                FLAGS[rng.below(3) as usize]
            }
        })
        .collect();
    let linestatus: Vec<&str> = shipdate
        .iter()
        .map(|d| if *d > EPOCH_1992 + 1270 { "O" } else { "F" })
        .collect();
    let shipmode: Vec<&str> = (0..rows)
        .map(|_| SHIPMODES[rng.below(7) as usize])
        .collect();
    let loaded_at: Vec<i64> = shipdate
        .iter()
        .map(|d| i64::from(*d) * 86_400_000_000 + rng.below(86_400_000_000) as i64)
        .collect();
    let late: Vec<bool> = (0..rows).map(|_| rng.below(5) == 0).collect();
    let comment: Vec<Option<String>> = (0..rows)
        .map(|_| {
            (rng.below(10) != 0).then(|| {
                (0..1 + rng.below(5))
                    .map(|_| WORDS[rng.below(8) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            })
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(orderkey)),
        Arc::new(Int64Array::from(partkey)),
        Arc::new(Int32Array::from(linenumber)),
        Arc::new(Int64Array::from(quantity)),
        Arc::new(Int64Array::from(price)),
        Arc::new(Float64Array::from(discount)),
        Arc::new(StringArray::from(returnflag)),
        Arc::new(StringArray::from(linestatus)),
        Arc::new(Date32Array::from(shipdate)),
        Arc::new(StringArray::from(shipmode)),
        Arc::new(TimestampMicrosecondArray::from(loaded_at)),
        Arc::new(BooleanArray::from(late)),
        Arc::new(StringArray::from(comment)),
    ];
    RecordBatch::try_new(lineitem_schema(), columns).unwrap()
}

/// `orders` `first..first + count`.
pub(crate) fn orders_batch(seed: u64, first: i64, count: usize) -> RecordBatch {
    const PRIORITIES: [&str; 5] = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"];
    let mut rng = Rng::new(seed);
    let schema = Arc::new(Schema::new(vec![
        Field::new("o_orderkey", DataType::Int64, false),
        Field::new("o_custkey", DataType::Int64, false),
        Field::new("o_orderpriority", DataType::Utf8, false),
        Field::new("o_orderdate", DataType::Date32, false),
        Field::new("o_totalprice", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(first..first + count as i64)),
        Arc::new(Int64Array::from_iter_values(
            (0..count).map(|_| 1 + rng.below(1500) as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..count).map(|_| PRIORITIES[rng.below(5) as usize]),
        )),
        Arc::new(Date32Array::from_iter_values(
            (0..count).map(|_| EPOCH_1992 + rng.below(2400) as i32),
        )),
        Arc::new(Int64Array::from_iter_values(
            (0..count).map(|_| 100_000 + rng.below(50_000_000) as i64),
        )),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Writer settings for the tests: row groups of `row_group_rows`, small pages,
/// statistics per page (so a column index and an offset index are written).
pub(crate) fn writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_data_page_row_count_limit(256)
        .set_write_batch_size(256)
        .set_statistics_enabled(EnabledStatistics::Page)
        .build()
}

/// `batch` as a parquet file.
pub(crate) fn parquet_bytes(batch: &RecordBatch, properties: WriterProperties) -> Bytes {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(properties)).unwrap();
    writer.write(batch).unwrap();
    writer.close().unwrap();
    Bytes::from(out)
}

/// The test tables as `(path, bytes)`: `lineitem/` in 4 files of 3 row groups,
/// `orders/` in 2 files.
pub(crate) fn tables() -> Vec<(String, Bytes)> {
    let mut files = Vec::new();
    for part in 0..4_u64 {
        let batch = lineitem_batch(part, part as i64 * 1000, 3000);
        files.push((
            format!("lineitem/part-{part}.parquet"),
            parquet_bytes(&batch, writer_properties(1000)),
        ));
    }
    // Orders 0..4000 cover every line's order (about 750 orders per lineitem file).
    for part in 0..2_u64 {
        let batch = orders_batch(100 + part, part as i64 * 2000, 2000);
        files.push((
            format!("orders/part-{part}.parquet"),
            parquet_bytes(&batch, writer_properties(700)),
        ));
    }
    files
}

/// Writes `files` through `op`.
pub(crate) async fn write_all(op: &Operator, files: &[(String, Bytes)]) {
    for (path, bytes) in files {
        op.write(path, bytes.clone()).await.unwrap();
    }
}

// ---------------------------------------------------------------------------
// S3

/// The S3 test server's URI, or `None` (with a note) when none was configured;
/// with `DIO_REQUIRE_S3=1` a missing server fails the test instead.
pub(crate) fn s3_uri(test: &str) -> Option<String> {
    match std::env::var("DIO_TEST_S3_URI") {
        Ok(uri) => Some(uri),
        Err(_) => {
            if std::env::var("DIO_REQUIRE_S3").is_ok_and(|v| v == "1") {
                panic!("DIO_REQUIRE_S3=1 but DIO_TEST_S3_URI is not set: run scripts/test");
            }
            eprintln!(
                "S3 test {test} SKIPPED: no S3 server (DIO_TEST_S3_URI unset); scripts/test starts one"
            );
            None
        }
    }
}

/// A key prefix no other test uses: `t/<test>-<pid>-<nanos>-<n>/`.
pub(crate) fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t/{test}-{}-{}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test server: its bucket, and an S3 backend rooted at `prefix` in it.
pub(crate) fn s3_backend(uri: &str, prefix: &str) -> (String, storage::services::s3::S3) {
    let s3 = S3Builder::from_uri(uri)
        .unwrap()
        .root(prefix)
        .build()
        .unwrap();
    (s3.bucket().to_owned(), s3)
}

/// object_store's `AmazonS3` for the test server of `uri`
/// (`s3://bucket?endpoint=http://host:port&region=...`; credentials from
/// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, as `scripts/s3-server` sets them).
pub(crate) fn amazon_s3(uri: &str) -> object_store::aws::AmazonS3 {
    let s3 = S3Builder::from_uri(uri).unwrap().build().unwrap();
    let rest = uri.strip_prefix("s3://").expect("an s3:// URI");
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(s3.bucket())
        .with_endpoint(param("endpoint").expect("the URI names its endpoint"))
        .with_region(param("region").unwrap_or_else(|| env("AWS_REGION")))
        .with_allow_http(true)
        .with_access_key_id(env("AWS_ACCESS_KEY_ID"))
        .with_secret_access_key(env("AWS_SECRET_ACCESS_KEY"))
        .build()
        .unwrap()
}
