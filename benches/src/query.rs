//! The query engine's workload: a TPC-H-like dataset in parquet, and TPC-H-shaped
//! queries that read a subset of its columns (so the reads are scattered column
//! chunks), run by DataFusion through each way it can reach storage.
//!
//! - [`Scale`]: how much data. The default is 8 `lineitem` files of about 64 MiB
//!   (16 columns, row groups of 64 Ki rows: 17 per file) and 2 `orders` files; it is
//!   generated on the spot (deterministically) on any machine.
//! - [`Query`]: TPC-H Q1, Q6 and Q12 and a top-10 (Q15's revenue, `ORDER BY ...
//!   LIMIT`); each reads 4 to 7 of `lineitem`'s 16 columns.
//! - [`Path`]: DataFusion's default store (`LocalFileSystem`, or `AmazonS3`), our
//!   registration ([`dio_parquet::register`]: reader factory and `DioStore`), and
//!   `IoObjectStore` around DataFusion's default store.
//! - [`Fixture`]: the dataset on one backend (a temp directory, an S3 endpoint, or
//!   [`MemS3`] inside the process) and a `SessionContext` per path; it runs a query
//!   and counts the bytes and requests each path issues, with counting layers
//!   around the backends, never with timing.

use std::fmt;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use dio_object_store::IoObjectStore;
use futures::stream::BoxStream;
use io_executor::Executor;
use object_store as os;
use os::path::Path as Location;
use os::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use storage::raw::{
    Access, IoJob, ListArgs, OpenArgs, Opened, RandomRead, RawList, RawWrite, ReadArgs,
};
use storage::{Metadata, Operator, WriteOptions};

use crate::mem_s3::MemS3;
use crate::s3::Endpoint;

// ---------------------------------------------------------------------------
// The dataset

/// How much data: `lineitem` in `lineitem_files` files, each holding the lines of
/// `orders_per_file` orders (4 lines per order on average), in row groups of
/// `row_group_rows`; `orders` (every order once) in `orders_files` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// `lineitem` files.
    pub lineitem_files: usize,
    /// Orders whose lines each `lineitem` file holds.
    pub orders_per_file: usize,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// `orders` files.
    pub orders_files: usize,
}

impl Scale {
    /// 8 `lineitem` files of about 64 MiB (1.1 M rows, 17 row groups each) and 2
    /// `orders` files: about 600 MiB.
    pub const DEFAULT: Scale = Scale {
        lineitem_files: 8,
        orders_per_file: 275_000,
        row_group_rows: 64 << 10,
        orders_files: 2,
    };

    /// A smoke run's: 2 small `lineitem` files and 1 `orders` file.
    pub const QUICK: Scale = Scale {
        lineitem_files: 2,
        orders_per_file: 2_500,
        row_group_rows: 2 << 10,
        orders_files: 1,
    };

    fn orders(&self) -> u64 {
        (self.lineitem_files * self.orders_per_file) as u64
    }
}

/// A fast deterministic generator (splitmix64): the same data on every machine.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        hash(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hash(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 1992-01-01, in days since 1970-01-01.
const DAY_1992: i32 = 8035;
/// TPC-H's "current date", 1995-06-17.
const CURRENT: i32 = 9298;

/// An order's date, from its key alone (both tables agree on it).
fn order_date(order: u64) -> i32 {
    DAY_1992 + (hash(order ^ 0x5eed) % 2405) as i32
}

/// An order's line count, 1 to 7, from its key alone.
fn order_lines(order: u64) -> u64 {
    1 + hash(order ^ 0x11ae) % 7
}

const SHIPMODES: [&str; 7] = ["REG AIR", "AIR", "RAIL", "SHIP", "TRUCK", "MAIL", "FOB"];
const INSTRUCTIONS: [&str; 4] = [
    "DELIVER IN PERSON",
    "COLLECT COD",
    "NONE",
    "TAKE BACK RETURN",
];
const PRIORITIES: [&str; 5] = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"];
const WORDS: [&str; 24] = [
    "furiously",
    "carefully",
    "quickly",
    "slyly",
    "blithely",
    "final",
    "ironic",
    "regular",
    "special",
    "express",
    "pending",
    "bold",
    "deposits",
    "requests",
    "packages",
    "accounts",
    "instructions",
    "theodolites",
    "foxes",
    "pinto beans",
    "sleep",
    "wake",
    "haggle",
    "nag",
];

fn decimal() -> DataType {
    DataType::Decimal128(15, 2)
}

/// `lineitem`'s 16 columns.
pub fn lineitem_schema() -> SchemaRef {
    let f = |name: &str, t: DataType| Field::new(name, t, false);
    Arc::new(Schema::new(vec![
        f("l_orderkey", DataType::Int64),
        f("l_partkey", DataType::Int64),
        f("l_suppkey", DataType::Int64),
        f("l_linenumber", DataType::Int32),
        f("l_quantity", decimal()),
        f("l_extendedprice", decimal()),
        f("l_discount", decimal()),
        f("l_tax", decimal()),
        f("l_returnflag", DataType::Utf8),
        f("l_linestatus", DataType::Utf8),
        f("l_shipdate", DataType::Date32),
        f("l_commitdate", DataType::Date32),
        f("l_receiptdate", DataType::Date32),
        f("l_shipinstruct", DataType::Utf8),
        f("l_shipmode", DataType::Utf8),
        f("l_comment", DataType::Utf8),
    ]))
}

/// A comment of 2 to 6 words.
fn comment(rng: &mut Mix, out: &mut StringBuilder) {
    let words = 2 + rng.below(5);
    let mut text = String::with_capacity(48);
    for i in 0..words {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    out.append_value(text);
}

fn decimals(values: Vec<i128>) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values)
            .with_precision_and_scale(15, 2)
            .expect("valid decimal"),
    )
}

/// The lines of orders `orders`.
fn lineitem_batch(orders: Range<u64>) -> RecordBatch {
    let mut rng = Mix(orders.start.wrapping_mul(31));
    let rows = (orders.end - orders.start) as usize * 4;
    let mut orderkey = Vec::with_capacity(rows);
    let mut partkey = Vec::with_capacity(rows);
    let mut suppkey = Vec::with_capacity(rows);
    let mut linenumber = Vec::with_capacity(rows);
    let (mut quantity, mut price, mut discount, mut tax) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let mut returnflag = StringBuilder::with_capacity(rows, rows);
    let mut linestatus = StringBuilder::with_capacity(rows, rows);
    let (mut shipdate, mut commitdate, mut receiptdate) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    let mut instruct = StringBuilder::with_capacity(rows, rows * 12);
    let mut shipmode = StringBuilder::with_capacity(rows, rows * 5);
    let mut comments = StringBuilder::with_capacity(rows, rows * 32);
    for order in orders {
        let ordered = order_date(order);
        for line in 1..=order_lines(order) {
            let part = 1 + rng.below(200_000);
            orderkey.push(order as i64);
            partkey.push(part as i64);
            suppkey.push(1 + ((part + line * 2_500) % 10_000) as i64);
            linenumber.push(line as i32);
            let qty = 1 + rng.below(50) as i128;
            quantity.push(qty * 100);
            price.push(qty * (90_000 + (part % 20_001) as i128 + 100 * (part % 1_000) as i128));
            discount.push(rng.below(11) as i128);
            tax.push(rng.below(9) as i128);
            let shipped = ordered + 1 + rng.below(121) as i32;
            let received = shipped + 1 + rng.below(30) as i32;
            shipdate.push(shipped);
            commitdate.push(ordered + 30 + rng.below(61) as i32);
            receiptdate.push(received);
            returnflag.append_value(if received <= CURRENT {
                if rng.below(2) == 0 { "R" } else { "A" }
            } else {
                "N"
            });
            linestatus.append_value(if shipped > CURRENT { "O" } else { "F" });
            instruct.append_value(INSTRUCTIONS[rng.below(4) as usize]);
            shipmode.append_value(SHIPMODES[rng.below(7) as usize]);
            comment(&mut rng, &mut comments);
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(orderkey)),
        Arc::new(Int64Array::from(partkey)),
        Arc::new(Int64Array::from(suppkey)),
        Arc::new(Int32Array::from(linenumber)),
        decimals(quantity),
        decimals(price),
        decimals(discount),
        decimals(tax),
        Arc::new(returnflag.finish()),
        Arc::new(linestatus.finish()),
        Arc::new(Date32Array::from(shipdate)),
        Arc::new(Date32Array::from(commitdate)),
        Arc::new(Date32Array::from(receiptdate)),
        Arc::new(instruct.finish()),
        Arc::new(shipmode.finish()),
        Arc::new(comments.finish()),
    ];
    RecordBatch::try_new(lineitem_schema(), columns).expect("lineitem batch")
}

/// Orders `orders`, with their 9 columns.
fn orders_batch(orders: Range<u64>) -> RecordBatch {
    let f = |name: &str, t: DataType| Field::new(name, t, false);
    let schema = Arc::new(Schema::new(vec![
        f("o_orderkey", DataType::Int64),
        f("o_custkey", DataType::Int64),
        f("o_orderstatus", DataType::Utf8),
        f("o_totalprice", decimal()),
        f("o_orderdate", DataType::Date32),
        f("o_orderpriority", DataType::Utf8),
        f("o_clerk", DataType::Utf8),
        f("o_shippriority", DataType::Int32),
        f("o_comment", DataType::Utf8),
    ]));
    let mut rng = Mix(orders.start.wrapping_mul(17) ^ 0x0d);
    let rows = (orders.end - orders.start) as usize;
    let mut status = StringBuilder::with_capacity(rows, rows);
    let mut priority = StringBuilder::with_capacity(rows, rows * 9);
    let mut clerk = StringBuilder::with_capacity(rows, rows * 15);
    let mut comments = StringBuilder::with_capacity(rows, rows * 32);
    let mut custkey = Vec::with_capacity(rows);
    let mut total = Vec::with_capacity(rows);
    let mut date = Vec::with_capacity(rows);
    for order in orders.clone() {
        custkey.push(1 + rng.below(150_000) as i64);
        total.push(100_000 + rng.below(50_000_000) as i128);
        let ordered = order_date(order);
        date.push(ordered);
        status.append_value(if ordered + 121 <= CURRENT {
            "F"
        } else if ordered > CURRENT {
            "O"
        } else {
            "P"
        });
        priority.append_value(PRIORITIES[rng.below(5) as usize]);
        clerk.append_value(format!("Clerk#{:09}", 1 + rng.below(1_000)));
        comment(&mut rng, &mut comments);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(orders.map(|o| o as i64))),
        Arc::new(Int64Array::from(custkey)),
        Arc::new(status.finish()),
        decimals(total),
        Arc::new(Date32Array::from(date)),
        Arc::new(priority.finish()),
        Arc::new(clerk.finish()),
        Arc::new(Int32Array::from(vec![0; rows])),
        Arc::new(comments.finish()),
    ];
    RecordBatch::try_new(schema, columns).expect("orders batch")
}

/// One parquet file of `batch`: snappy, statistics and the page index (column and
/// offset indexes), row groups of `row_group_rows`.
fn parquet_file(batch: &RecordBatch, row_group_rows: usize) -> Bytes {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, batch.schema(), Some(properties)).expect("parquet writer");
    // Written in slices, as a writer of a real table would.
    let mut offset = 0;
    while offset < batch.num_rows() {
        let len = (batch.num_rows() - offset).min(16 << 10);
        writer.write(&batch.slice(offset, len)).expect("write");
        offset += len;
    }
    writer.close().expect("close");
    Bytes::from(out)
}

/// The dataset's files, as `(path, bytes)`: `lineitem/part-N.parquet` and
/// `orders/part-N.parquet`. Made on every core.
pub fn generate(scale: Scale) -> Vec<(String, Bytes)> {
    let per = scale.orders_per_file as u64;
    let orders_per = scale.orders().div_ceil(scale.orders_files as u64);
    let mut jobs: Vec<(String, Box<dyn Fn() -> Bytes + Send + Sync>)> = Vec::new();
    for i in 0..scale.lineitem_files as u64 {
        let rows = scale.row_group_rows;
        jobs.push((
            format!("lineitem/part-{i}.parquet"),
            Box::new(move || parquet_file(&lineitem_batch(i * per..(i + 1) * per), rows)),
        ));
    }
    for i in 0..scale.orders_files as u64 {
        let range = i * orders_per..((i + 1) * orders_per).min(scale.orders());
        let rows = scale.row_group_rows;
        jobs.push((
            format!("orders/part-{i}.parquet"),
            Box::new(move || parquet_file(&orders_batch(range.clone()), rows)),
        ));
    }
    let next = AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    std::thread::scope(|s| {
        for _ in 0..threads.min(jobs.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, make)) = jobs.get(i) else {
                        break;
                    };
                    let bytes = make();
                    done.lock().expect("files").push((i, path.clone(), bytes));
                }
            });
        }
    });
    let mut files = done.into_inner().expect("files");
    files.sort_by_key(|(i, _, _)| *i);
    files.into_iter().map(|(_, p, b)| (p, b)).collect()
}

// ---------------------------------------------------------------------------
// The queries

/// One query of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// TPC-H Q1 (pricing summary): 7 of 16 columns, most rows, heavy aggregation.
    Q1,
    /// TPC-H Q6 (forecasting revenue change): 4 columns, a selective filter.
    Q6,
    /// TPC-H Q12 (shipping modes): 5 `lineitem` columns joined with 2 of `orders`.
    Q12,
    /// The 10 suppliers with the most revenue in a quarter (Q15's revenue, `ORDER
    /// BY ... LIMIT 10`): 4 columns.
    TopSuppliers,
}

impl Query {
    /// Every query.
    pub const ALL: [Query; 4] = [Query::Q1, Query::Q6, Query::Q12, Query::TopSuppliers];

    /// The name used in tables.
    pub fn name(&self) -> &'static str {
        match self {
            Query::Q1 => "q1_pricing_summary",
            Query::Q6 => "q6_revenue_change",
            Query::Q12 => "q12_ship_modes_join",
            Query::TopSuppliers => "top10_suppliers",
        }
    }

    /// The SQL.
    pub fn sql(&self) -> &'static str {
        match self {
            Query::Q1 => {
                "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, \
                 sum(l_extendedprice) AS sum_base_price, \
                 sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, \
                 sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, \
                 avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, \
                 avg(l_discount) AS avg_disc, count(*) AS count_order \
                 FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' \
                 GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"
            }
            Query::Q6 => {
                "SELECT sum(l_extendedprice * l_discount) AS revenue FROM lineitem \
                 WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
                 AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24"
            }
            Query::Q12 => {
                "SELECT l_shipmode, \
                 sum(CASE WHEN o_orderpriority = '1-URGENT' OR o_orderpriority = '2-HIGH' \
                 THEN 1 ELSE 0 END) AS high_line_count, \
                 sum(CASE WHEN o_orderpriority <> '1-URGENT' AND o_orderpriority <> '2-HIGH' \
                 THEN 1 ELSE 0 END) AS low_line_count \
                 FROM orders JOIN lineitem ON o_orderkey = l_orderkey \
                 WHERE l_shipmode IN ('MAIL', 'SHIP') AND l_commitdate < l_receiptdate \
                 AND l_shipdate < l_commitdate AND l_receiptdate >= DATE '1994-01-01' \
                 AND l_receiptdate < DATE '1995-01-01' \
                 GROUP BY l_shipmode ORDER BY l_shipmode"
            }
            Query::TopSuppliers => {
                "SELECT l_suppkey, sum(l_extendedprice * (1 - l_discount)) AS revenue \
                 FROM lineitem WHERE l_shipdate >= DATE '1996-01-01' \
                 AND l_shipdate < DATE '1996-04-01' \
                 GROUP BY l_suppkey ORDER BY revenue DESC, l_suppkey LIMIT 10"
            }
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// The paths

/// How DataFusion reaches the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// DataFusion's default: `LocalFileSystem` (fs) or `AmazonS3` (S3), registered
    /// with `register_object_store`, scanned by DataFusion's cached reader factory,
    /// IO on the query's runtime. The baseline.
    DataFusion,
    /// [`dio_parquet::register`]: `DioStore` for listing, our reader factory for
    /// scans, IO on a dedicated executor.
    Ours,
    /// `IoObjectStore` around DataFusion's default store, on a dedicated executor.
    IoObjectStore,
}

impl Path {
    /// Every path, the baseline first.
    pub const ALL: [Path; 3] = [Path::DataFusion, Path::Ours, Path::IoObjectStore];

    /// The name used in tables.
    pub fn name(&self) -> &'static str {
        match self {
            Path::DataFusion => "datafusion",
            Path::Ours => "ours",
            Path::IoObjectStore => "io_object_store",
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------
// Counting

/// Bytes and requests one path issued.
#[derive(Debug, Default)]
pub struct IoCounts {
    bytes: AtomicU64,
    requests: AtomicU64,
}

impl IoCounts {
    fn add(&self, requests: u64, bytes: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `(bytes, requests)` since the last call, and starts afresh.
    pub fn take(&self) -> (u64, u64) {
        (
            self.bytes.swap(0, Ordering::Relaxed),
            self.requests.swap(0, Ordering::Relaxed),
        )
    }
}

/// Our backend, counting what it reads: an open (a HEAD on S3) and each read are a
/// request each.
#[derive(Debug)]
struct CountingAccess {
    inner: Arc<dyn Access>,
    counts: Arc<IoCounts>,
}

impl Access for CountingAccess {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    fn attach(&self, executor: &Executor) {
        self.inner.attach(executor);
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        self.inner.stat(path)
    }

    fn read(&self, path: &str, args: ReadArgs) -> IoJob<Bytes> {
        let counts = Arc::clone(&self.counts);
        self.inner.read(path, args).map(move |bytes| {
            counts.add(1, bytes.len() as u64);
            bytes
        })
    }

    fn open(&self, path: &str, args: OpenArgs) -> IoJob<Opened> {
        let counts = Arc::clone(&self.counts);
        self.inner.open(path, args).map(move |opened| {
            counts.add(1, opened.first.len() as u64);
            let object: Arc<dyn RandomRead> = Arc::new(CountingObject {
                inner: opened.object,
                counts,
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

#[derive(Debug)]
struct CountingObject {
    inner: Arc<dyn RandomRead>,
    counts: Arc<IoCounts>,
}

impl RandomRead for CountingObject {
    fn metadata(&self) -> &Metadata {
        self.inner.metadata()
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        let counts = Arc::clone(&self.counts);
        Arc::clone(&self.inner).read_at(range).map(move |bytes| {
            counts.add(1, bytes.len() as u64);
            bytes
        })
    }

    fn close(self: Arc<Self>) -> IoJob<()> {
        Arc::clone(&self.inner).close()
    }
}

/// How a store serves `get_ranges`, which decides what a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ranges {
    /// `LocalFileSystem`'s own: one open, then one read per range.
    Local,
    /// The trait's default, which `AmazonS3` uses: ranges closer than 1 MiB merged,
    /// one GET per merged range (each counted through `get_opts`).
    Coalesced,
}

/// An object_store store, counting what it reads.
#[derive(Debug)]
struct CountingStore<S> {
    inner: S,
    counts: Arc<IoCounts>,
    ranges: Ranges,
}

impl<S: fmt::Display> fmt::Display for CountingStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl<S: ObjectStore> ObjectStore for CountingStore<S> {
    async fn put_opts(
        &self,
        location: &Location,
        payload: PutPayload,
        opts: PutOptions,
    ) -> os::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Location,
        opts: PutMultipartOptions,
    ) -> os::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Location, options: GetOptions) -> os::Result<GetResult> {
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        let bytes = if head {
            0
        } else {
            result.range.end - result.range.start
        };
        // On fs an open and a read.
        let requests = if self.ranges == Ranges::Local && !head {
            2
        } else {
            1
        };
        self.counts.add(requests, bytes);
        Ok(result)
    }

    async fn get_ranges(
        &self,
        location: &Location,
        ranges: &[Range<u64>],
    ) -> os::Result<Vec<Bytes>> {
        match self.ranges {
            Ranges::Local => {
                let out = self.inner.get_ranges(location, ranges).await?;
                let bytes = out.iter().map(|b| b.len() as u64).sum();
                self.counts.add(1 + ranges.len() as u64, bytes);
                Ok(out)
            }
            Ranges::Coalesced => {
                os::coalesce_ranges(
                    ranges,
                    |range| async move {
                        let options = GetOptions {
                            range: Some(range.clone().into()),
                            ..GetOptions::default()
                        };
                        self.get_opts(location, options).await?.bytes().await
                    },
                    os::OBJECT_STORE_COALESCE_DEFAULT,
                )
                .await
            }
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, os::Result<Location>>,
    ) -> BoxStream<'static, os::Result<Location>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Location>) -> BoxStream<'static, os::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Location>,
        offset: &Location,
    ) -> BoxStream<'static, os::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Location>) -> os::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Location,
        to: &Location,
        options: CopyOptions,
    ) -> os::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Location,
        to: &Location,
        options: RenameOptions,
    ) -> os::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

// ---------------------------------------------------------------------------
// The fixture

/// Where the dataset lives.
enum Place {
    /// A temp directory.
    Fs(tempfile::TempDir),
    /// An S3 endpoint; `server` is set for the in-process one.
    S3 {
        endpoint: Box<Endpoint>,
        /// The key prefix the dataset is under (empty or ending in `/`).
        prefix: String,
        server: Option<MemS3>,
    },
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Fs(dir) => f.debug_tuple("Fs").field(&dir.path()).finish(),
            Place::S3 {
                endpoint, prefix, ..
            } => f
                .debug_struct("S3")
                .field("url", &endpoint.url)
                .field("bucket", &endpoint.bucket)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// What one run of a query through one path gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The result, as a table.
    pub result: String,
    /// Bytes read from storage.
    pub bytes: u64,
    /// Requests to storage (fs: opens and reads; S3: HTTP requests).
    pub requests: u64,
}

/// Ticker lateness of a caller's runtime while queries ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lateness {
    /// Ticks recorded.
    pub ticks: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Worst.
    pub max: Duration,
}

/// The dataset on one backend, and a session per path.
pub struct Fixture {
    place: Place,
    dedicated: Executor,
    /// The query engine's runtime for timed runs: 2 workers, as many as DataFusion's
    /// default partitions on a 2-core machine.
    runtime: tokio::runtime::Runtime,
    sessions: Vec<(Path, SessionContext, Arc<IoCounts>)>,
    files: usize,
    bytes: u64,
    /// The uploaded dataset was removed (or its removal failed and was said) by
    /// [`remove`](Fixture::remove): the drop leaves it be.
    removed: bool,
}

impl Fixture {
    /// The dataset in a temp directory.
    ///
    /// # Errors
    ///
    /// A one-line message if the files cannot be written or registered.
    pub fn fs(scale: Scale, dedicated: Executor) -> Result<Self, String> {
        let files = generate(scale);
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temp dir: {e}"))?;
        for (path, bytes) in &files {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().expect("a parent"))
                .and_then(|()| crate::write_synced(&file, bytes))
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        }
        Self::new(Place::Fs(dir), &files, dedicated)
    }

    /// The dataset on [`MemS3`], an S3 endpoint inside this process.
    ///
    /// # Errors
    ///
    /// As [`fs`](Self::fs).
    pub fn mem_s3(scale: Scale, dedicated: Executor) -> Result<Self, String> {
        let files = generate(scale);
        let server = MemS3::start("dio-bench", 2)?;
        for (path, bytes) in &files {
            server.put(&format!("query/{path}"), bytes.clone());
        }
        let endpoint = Endpoint::in_process(&server);
        let place = Place::S3 {
            endpoint: Box::new(endpoint),
            prefix: "query/".into(),
            server: Some(server),
        };
        Self::new(place, &files, dedicated)
    }

    /// The dataset uploaded to `endpoint` under `<prefix>dio-bench-query-<pid>/`,
    /// removed again when the fixture is dropped.
    ///
    /// # Errors
    ///
    /// A one-line message when the upload fails (a missing bucket, wrong
    /// credentials, an endpoint that does not answer).
    pub fn s3(endpoint: Endpoint, scale: Scale, dedicated: Executor) -> Result<Self, String> {
        let files = generate(scale);
        let prefix = format!("{}dio-bench-query-{}/", endpoint.prefix, std::process::id());
        let s3 = s3_backend(&endpoint, &prefix)?;
        let op = Operator::new(s3.clone()).with_executor(dedicated.clone());
        let blocking = op.blocking();
        for (path, bytes) in &files {
            // Stopped between files, or failed.
            let written = crate::stopped().and_then(|()| {
                blocking
                    .write(path, bytes.clone())
                    .map(drop)
                    .map_err(|e| crate::error_chain(&e))
            });
            if let Err(e) = written {
                // What was uploaded goes again (no fixture exists yet to drop); a
                // clean-up that fails is said, beside the upload's error.
                if let Err(left) = blocking.remove_all("") {
                    eprintln!(
                        "the partial dataset under {prefix:?} was not removed: {}",
                        crate::error_chain(&left)
                    );
                }
                crate::stopped()?;
                return Err(format!(
                    "cannot upload the dataset to bucket {:?} at {}: {e}",
                    endpoint.bucket,
                    endpoint.url.as_deref().unwrap_or("AWS"),
                ));
            }
        }
        // The other clients sign as ours does, whatever gave ours its credentials.
        let endpoint = endpoint.signing_as(&s3);
        let place = Place::S3 {
            endpoint: Box::new(endpoint),
            prefix,
            server: None,
        };
        Self::new(place, &files, dedicated)
    }

    fn new(place: Place, files: &[(String, Bytes)], dedicated: Executor) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("query-engine")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the query runtime: {e}"))?;
        let mut fixture = Self {
            place,
            dedicated,
            runtime,
            sessions: Vec::new(),
            files: files.len(),
            bytes: files.iter().map(|(_, b)| b.len() as u64).sum(),
            removed: false,
        };
        for path in Path::ALL {
            let (ctx, counts) = fixture.runtime.block_on(fixture.session(path))?;
            fixture.sessions.push((path, ctx, counts));
        }
        Ok(fixture)
    }

    /// How many files, and their total size.
    pub fn dataset(&self) -> (usize, u64) {
        (self.files, self.bytes)
    }

    /// A session whose tables `lineitem` and `orders` are reached through `path`;
    /// its stores are made on the runtime that calls this (an `AmazonS3`'s
    /// connections live on that runtime).
    async fn session(&self, path: Path) -> Result<(SessionContext, Arc<IoCounts>), String> {
        let counts = Arc::new(IoCounts::default());
        let ctx = SessionContext::new();
        let (store_url, table_root) = self.urls();
        let fail = |e: &dyn std::fmt::Display| format!("{path}: {e}");
        match path {
            Path::Ours => {
                let access: Arc<dyn Access> = match &self.place {
                    Place::Fs(dir) => {
                        Arc::new(storage::services::Fs::new(dir.path()).map_err(|e| fail(&e))?)
                    }
                    Place::S3 {
                        endpoint, prefix, ..
                    } => Arc::new(s3_backend(endpoint, prefix)?),
                };
                let op = Operator::new(CountingAccess {
                    inner: access,
                    counts: Arc::clone(&counts),
                })
                .with_executor(self.dedicated.clone());
                dio_parquet::register(&ctx, &table_root, op).map_err(|e| fail(&e))?;
                for table in ["lineitem", "orders"] {
                    dio_parquet::register_parquet(
                        &ctx,
                        table,
                        &format!("{table_root}/{table}/"),
                        ParquetReadOptions::default(),
                    )
                    .await
                    .map_err(|e| fail(&e))?;
                }
            }
            Path::DataFusion | Path::IoObjectStore => {
                let store: Arc<dyn ObjectStore> = match (&self.place, path) {
                    (Place::Fs(_), Path::DataFusion) => Arc::new(CountingStore {
                        inner: os::local::LocalFileSystem::new(),
                        counts: Arc::clone(&counts),
                        ranges: Ranges::Local,
                    }),
                    (Place::Fs(_), _) => Arc::new(
                        IoObjectStore::new(
                            CountingStore {
                                inner: os::local::LocalFileSystem::new(),
                                counts: Arc::clone(&counts),
                                ranges: Ranges::Local,
                            },
                            self.dedicated.clone(),
                        )
                        // LocalFileSystem does its IO inline outside a runtime:
                        // one hand-off per call, as for a bare LocalFileSystem.
                        .with_blocking_calls(true),
                    ),
                    (Place::S3 { endpoint, .. }, Path::DataFusion) => Arc::new(CountingStore {
                        inner: amazon_s3(endpoint)?,
                        counts: Arc::clone(&counts),
                        ranges: Ranges::Coalesced,
                    }),
                    (Place::S3 { endpoint, .. }, _) => Arc::new(IoObjectStore::new(
                        CountingStore {
                            inner: amazon_s3(endpoint)?,
                            counts: Arc::clone(&counts),
                            ranges: Ranges::Coalesced,
                        },
                        self.dedicated.clone(),
                    )),
                };
                let url = url::Url::parse(&store_url).map_err(|e| fail(&e))?;
                ctx.register_object_store(&url, store);
                for table in ["lineitem", "orders"] {
                    ctx.register_parquet(
                        table,
                        format!("{table_root}/{table}/"),
                        ParquetReadOptions::default(),
                    )
                    .await
                    .map_err(|e| fail(&e))?;
                }
            }
        }
        counts.take();
        Ok((ctx, counts))
    }

    /// The object store URL and the URL the tables are under (no trailing `/`).
    fn urls(&self) -> (String, String) {
        match &self.place {
            Place::Fs(dir) => ("file://".into(), format!("file://{}", dir.path().display())),
            Place::S3 {
                endpoint, prefix, ..
            } => (
                format!("s3://{}", endpoint.bucket),
                format!("s3://{}/{}", endpoint.bucket, prefix.trim_end_matches('/')),
            ),
        }
    }

    fn session_of(&self, path: Path) -> (&SessionContext, &Arc<IoCounts>) {
        let (_, ctx, counts) = self
            .sessions
            .iter()
            .find(|(p, _, _)| *p == path)
            .expect("a session per path");
        (ctx, counts)
    }

    /// Runs `query` through `path` on the query runtime; returns what it gave.
    ///
    /// # Errors
    ///
    /// DataFusion's error, in one line.
    pub fn run(&self, path: Path, query: Query) -> Result<Outcome, String> {
        let (ctx, counts) = self.session_of(path);
        counts.take();
        let batches = self
            .runtime
            .block_on(async { ctx.sql(query.sql()).await?.collect().await })
            .map_err(|e| format!("{query} through {path}: {e}"))?;
        let (bytes, requests) = counts.take();
        let result = pretty_format_batches(&batches)
            .map_err(|e| e.to_string())?
            .to_string();
        Ok(Outcome {
            result,
            bytes,
            requests,
        })
    }

    /// Runs `queries` through `path`, over and over for at least `duration`, on a
    /// current-thread caller runtime whose 1 ms ticker records how late it fires.
    /// The path's stores are made anew on that runtime, so what they do on their
    /// caller's runtime happens there.
    ///
    /// # Errors
    ///
    /// DataFusion's error, in one line.
    pub fn isolation(
        &self,
        path: Path,
        queries: &[Query],
        duration: Duration,
    ) -> Result<Lateness, String> {
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the caller runtime: {e}"))?;
        let lateness = caller.block_on(async {
            let (ctx, _) = self.session(path).await?;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let ticker = {
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut lateness = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let deadline = tokio::time::Instant::now() + Duration::from_millis(1);
                        tokio::time::sleep_until(deadline).await;
                        lateness.push(tokio::time::Instant::now() - deadline);
                    }
                    lateness
                })
            };
            let start = Instant::now();
            let mut result = Ok(());
            'outer: while start.elapsed() < duration {
                for query in queries {
                    let run = async { ctx.sql(query.sql()).await?.collect().await };
                    if let Err(e) = run.await {
                        result = Err(format!("{query} through {path}: {e}"));
                        break 'outer;
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
            let lateness = ticker.await.map_err(|e| e.to_string())?;
            result.map(|()| lateness)
        })?;
        caller.shutdown_timeout(Duration::from_secs(5));
        let mut lateness = lateness;
        lateness.sort();
        let pick = |q: f64| {
            lateness
                .get(((lateness.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        Ok(Lateness {
            ticks: lateness.len(),
            p50: pick(0.5),
            p99: pick(0.99),
            max: lateness.last().copied().unwrap_or_default(),
        })
    }
}

impl fmt::Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("place", &self.place)
            .field("files", &self.files)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Fixture {
    /// Removes a dataset uploaded to a real endpoint (`--uri`), as the drop
    /// would, but says whether that worked: a run that leaves objects in the
    /// user's bucket has not ended well. (The in-process server's goes with its
    /// runtime.)
    ///
    /// # Errors
    ///
    /// The dataset was not all removed: a line naming the prefix, the bucket and
    /// the server's error.
    pub fn remove(&mut self) -> Result<(), String> {
        let Place::S3 {
            endpoint,
            prefix,
            server: None,
        } = &self.place
        else {
            return Ok(());
        };
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        let s3 = s3_backend(endpoint, prefix)?;
        let op = Operator::new(s3).with_executor(self.dedicated.clone());
        op.blocking().remove_all("").map_err(|e| {
            format!(
                "the query dataset under {prefix:?} in bucket {:?} was not removed: {}",
                endpoint.bucket,
                crate::error_chain(&e)
            )
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Drop cannot fail: say what was left behind instead of hiding it.
        if let Err(e) = self.remove() {
            eprintln!("{e}");
        }
    }
}

/// Our S3 backend for `endpoint`, rooted at `prefix`.
fn s3_backend(endpoint: &Endpoint, prefix: &str) -> Result<storage::services::s3::S3, String> {
    endpoint.ours()?.root(prefix).build().map_err(|e| {
        format!(
            "cannot configure S3 for {}: {e}",
            endpoint.url.as_deref().unwrap_or("AWS")
        )
    })
}

/// object_store's `AmazonS3` for `endpoint`.
fn amazon_s3(endpoint: &Endpoint) -> Result<os::aws::AmazonS3, String> {
    endpoint
        .object_store()
        .build()
        .map_err(|e| format!("cannot configure object_store's S3: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tables_agree_on_every_order() {
        let lines = lineitem_batch(0..100);
        let orders = orders_batch(0..100);
        assert_eq!(orders.num_rows(), 100);
        let keys = lines
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("keys");
        assert!(
            keys.iter()
                .all(|k| k.is_some_and(|k| (0..100).contains(&k)))
        );
        let expected: u64 = (0..100).map(order_lines).sum();
        assert_eq!(lines.num_rows() as u64, expected);
        assert_eq!(lines.num_columns(), 16);
    }

    #[test]
    fn the_quick_dataset_has_every_file_with_several_row_groups() {
        let files = generate(Scale::QUICK);
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "lineitem/part-0.parquet",
                "lineitem/part-1.parquet",
                "orders/part-0.parquet"
            ]
        );
        let reader =
            datafusion::parquet::file::reader::SerializedFileReader::new(files[0].1.clone())
                .expect("parquet");
        use datafusion::parquet::file::reader::FileReader;
        assert!(reader.metadata().num_row_groups() >= 4);
        // Deterministic: the same bytes again.
        assert_eq!(generate(Scale::QUICK)[0].1, files[0].1);
    }
}
