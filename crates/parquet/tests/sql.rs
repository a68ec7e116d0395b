//! DataFusion SQL over directories of parquet files (a filter, TPC-H Q1's and Q6's
//! shapes, an `ORDER BY ... LIMIT`, a join, nulls and timestamps), run through
//! DataFusion's own `LocalFileSystem`, through our registration on fs, memory and S3
//! (SeaweedFS), and through `IoObjectStore<AmazonS3>` on S3: the same results, and
//! the plans really scan with the reader factory each path promises.

mod common;

use std::sync::Arc;

use common::{Counting, tables, write_all};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use dio_object_store::IoObjectStore;
use object_store::ObjectStore;
use storage::services::{Fs, Memory};

const QUERIES: [&str; 6] = [
    // A filter.
    "SELECT l_orderkey, l_linenumber, l_quantity, l_shipmode FROM lineitem \
     WHERE l_quantity >= 49 AND l_shipmode IN ('AIR', 'MAIL') \
     ORDER BY l_orderkey, l_linenumber",
    // TPC-H Q1's shape: GROUP BY with aggregates.
    "SELECT l_returnflag, l_linestatus, count(*) AS n, sum(l_quantity) AS qty, \
     sum(l_extendedprice) AS price, min(l_discount) AS min_disc, max(l_shipdate) AS last_ship \
     FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' \
     GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus",
    // TPC-H Q6's shape: a selective scan of four columns.
    "SELECT sum(l_extendedprice) AS revenue, count(*) AS n FROM lineitem \
     WHERE l_shipdate >= DATE '1994-01-01' AND l_shipdate < DATE '1995-01-01' \
     AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24",
    // ORDER BY ... LIMIT.
    "SELECT l_orderkey, sum(l_extendedprice) AS revenue FROM lineitem \
     GROUP BY l_orderkey ORDER BY revenue DESC, l_orderkey LIMIT 10",
    // A join of two tables.
    "SELECT o_orderpriority, count(*) AS lines, sum(l_quantity) AS qty \
     FROM orders JOIN lineitem ON l_orderkey = o_orderkey \
     WHERE o_orderdate >= DATE '1993-07-01' AND l_is_late \
     GROUP BY o_orderpriority ORDER BY o_orderpriority",
    // Nulls, strings and timestamps.
    "SELECT count(l_comment) AS commented, count(*) - count(l_comment) AS blank, \
     min(l_loaded_at) AS first_load FROM lineitem WHERE l_comment LIKE '%final%' OR l_comment IS NULL",
];

/// Every query's result as a table.
async fn run_all(ctx: &SessionContext) -> Vec<String> {
    let mut out = Vec::new();
    for sql in QUERIES {
        let batches: Vec<RecordBatch> = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        out.push(pretty_format_batches(&batches).unwrap().to_string());
    }
    out
}

/// The reader factory of every parquet scan in `sql`'s physical plan, by name.
async fn reader_factories(ctx: &SessionContext, sql: &str) -> Vec<String> {
    fn walk(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<String>) {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some((_, source)) = exec.downcast_to_file_source::<ParquetSource>()
        {
            let name = match source.parquet_file_reader_factory() {
                Some(factory) => format!("{factory:?}"),
                None => "none".to_owned(),
            };
            out.push(name.split([' ', '{', '(']).next().unwrap_or("").to_owned());
        }
        for child in plan.children() {
            walk(child, out);
        }
    }
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let mut out = Vec::new();
    walk(&plan, &mut out);
    out
}

/// The tables in a temp directory.
fn local_tables() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in tables() {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
    }
    let root = dir.path().to_str().unwrap().to_owned();
    (dir, root)
}

/// The results through DataFusion alone: its `LocalFileSystem` and reader.
async fn expected() -> Vec<String> {
    let (_dir, root) = local_tables();
    let ctx = SessionContext::new();
    for table in ["lineitem", "orders"] {
        ctx.register_parquet(
            table,
            format!("file://{root}/{table}/"),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["CachedParquetFileReaderFactory"; 2]
    );
    let results = run_all(&ctx).await;
    for (sql, table) in QUERIES.iter().zip(&results) {
        // A header, a separator, and at least one row.
        assert!(table.lines().count() >= 5, "{sql}: no rows\n{table}");
    }
    results
}

/// Tables `lineitem` (by SQL) and `orders` (by `register_parquet`) under `url`.
async fn create_tables(ctx: &SessionContext, url: &str) {
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE lineitem STORED AS PARQUET LOCATION '{url}/lineitem/'"
    ))
    .await
    .unwrap();
    dio_parquet::register_parquet(
        ctx,
        "orders",
        &format!("{url}/orders/"),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_on_fs_gives_datafusions_results() {
    let expected = expected().await;
    let (_dir, root) = local_tables();
    let (op, counts) = Counting::operator(Fs::new(&root).unwrap(), common::executor("sql-fs"));
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, &format!("file://{root}"), op).unwrap();
    create_tables(&ctx, &format!("file://{root}")).await;

    // Both tables scan through our reader factory.
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["ParquetReaderFactory"; 2]
    );
    counts.reset();
    assert_eq!(run_all(&ctx).await, expected);
    assert!(counts.reads() > 0 && counts.bytes() > 0);

    // The footers were read (and cached) when the tables were created: the queries
    // read none, now or when run again.
    let files: Vec<(String, u64)> = tables()
        .into_iter()
        .map(|(path, bytes)| (path, bytes.len() as u64))
        .collect();
    let footer_reads = || {
        files
            .iter()
            .map(|(path, size)| counts.reads_ending_at(path, *size))
            .sum::<usize>()
    };
    assert_eq!(footer_reads(), 0);
    counts.reset();
    assert_eq!(run_all(&ctx).await, expected);
    assert_eq!(footer_reads(), 0);
    assert!(counts.reads() > 0);
}

/// The tables in memory, registered under `registered` and created under
/// `tables`: both scan through our reader factory and give DataFusion's results.
async fn memory_tables_give_datafusions_results(name: &str, registered: &str, tables_url: &str) {
    let expected = expected().await;
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor(name));
    write_all(&op, &tables()).await;
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, registered, op).unwrap();
    create_tables(&ctx, tables_url).await;
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["ParquetReaderFactory"; 2]
    );
    assert_eq!(run_all(&ctx).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_on_memory_gives_datafusions_results() {
    memory_tables_give_datafusions_results("sql-mem", "memory://", "memory://").await;
}

/// A table URL with a user name (`s3://user@bucket/...`) names the same store as
/// without one, for DataFusion's store registry and for ours alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_with_a_user_name_is_read_by_the_registered_operator() {
    memory_tables_give_datafusions_results(
        "sql-user",
        "memory://warehouse",
        "memory://analyst@warehouse",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ours_on_s3_gives_datafusions_results() {
    let Some(uri) = common::s3_uri("ours_on_s3_gives_datafusions_results") else {
        return;
    };
    let expected = expected().await;
    let prefix = common::unique_prefix("sql-s3");
    let (bucket, s3) = common::s3_backend(&uri, &prefix);
    let (op, counts) = Counting::operator(s3, common::executor("sql-s3"));
    write_all(&op, &tables()).await;
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, &format!("s3://{bucket}"), op.clone()).unwrap();
    create_tables(&ctx, &format!("s3://{bucket}")).await;
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["ParquetReaderFactory"; 2]
    );
    counts.reset();
    let results = run_all(&ctx).await;
    op.remove_all("").await.unwrap();
    assert_eq!(results, expected);
    assert!(counts.reads() > 0);
}

/// (d) DataFusion's own `AmazonS3`, moved onto a dedicated executor by
/// `IoObjectStore`, scanned by DataFusion's own reader: the same results, and every
/// request of the store ran as a job of that executor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_object_store_over_amazon_s3_gives_datafusions_results() {
    let Some(uri) = common::s3_uri("io_object_store_over_amazon_s3_gives_datafusions_results")
    else {
        return;
    };
    let expected = expected().await;
    let prefix = common::unique_prefix("sql-io-s3");
    let (bucket, s3) = common::s3_backend(&uri, &prefix);
    let op = storage::Operator::new(s3).with_executor(common::executor("sql-io-s3-upload"));
    write_all(&op, &tables()).await;

    let io = common::executor("sql-io-s3");
    let store = IoObjectStore::new(common::amazon_s3(&uri), io.clone());
    let ctx = SessionContext::new();
    ctx.register_object_store(
        &url::Url::parse(&format!("s3://{bucket}")).unwrap(),
        Arc::new(store),
    );
    let root = format!("s3://{bucket}/{}", prefix.trim_end_matches('/'));
    for table in ["lineitem", "orders"] {
        ctx.register_parquet(
            table,
            format!("{root}/{table}/"),
            ParquetReadOptions::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["CachedParquetFileReaderFactory"; 2]
    );
    let before = io.metrics().spawned;
    let results = run_all(&ctx).await;
    let jobs = io.metrics().spawned - before;
    op.remove_all("").await.unwrap();
    assert_eq!(results, expected);
    // At least a job per query: the store's reads ran on the executor.
    assert!(jobs >= QUERIES.len() as u64, "{jobs} jobs on the executor");
    io.shutdown();
    io.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_urls_and_replaced_stores_keep_datafusions_reader() {
    let expected = expected().await;
    let (_dir, root) = local_tables();
    let op = storage::Operator::new(Fs::new(&root).unwrap())
        .with_executor(common::executor("sql-other"));
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, &format!("file://{root}"), op).unwrap();

    // A URL we did not register, with a store of DataFusion's: its reader.
    let memory = Arc::new(object_store::memory::InMemory::new());
    for (path, bytes) in tables() {
        memory
            .put_opts(&path.as_str().into(), bytes.into(), Default::default())
            .await
            .unwrap();
    }
    ctx.register_object_store(&url::Url::parse("mem://").unwrap(), memory);
    create_tables(&ctx, "mem://").await;
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["CachedParquetFileReaderFactory"; 2]
    );
    assert_eq!(run_all(&ctx).await, expected);

    // Our URL, its store replaced afterwards: DataFusion's reader over that store.
    let ctx = SessionContext::new();
    let op = storage::Operator::new(Fs::new(&root).unwrap())
        .with_executor(common::executor("sql-replaced"));
    dio_parquet::register(&ctx, &format!("file://{root}"), op).unwrap();
    create_tables(&ctx, &format!("file://{root}")).await;
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["ParquetReaderFactory"; 2]
    );
    ctx.register_object_store(
        &url::Url::parse("file://").unwrap(),
        Arc::new(object_store::local::LocalFileSystem::new()) as Arc<dyn ObjectStore>,
    );
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["CachedParquetFileReaderFactory"; 2]
    );
    assert_eq!(run_all(&ctx).await, expected);
}

/// Sessions that share a runtime share its object stores (DataFusion keeps them
/// per runtime): a URL registered again by a second session leaves the first
/// session's scans with our reader factory, over the store the runtime has now
/// (the second's operator), where they fell back to DataFusion's reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_sharing_a_runtime_scan_with_our_reader_whichever_registered_last() {
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::SessionConfig;
    let expected = expected().await;
    let (_dir, root) = local_tables();
    let url = format!("file://{root}");
    let runtime = RuntimeEnvBuilder::new().build_arc().unwrap();
    let session = || SessionContext::new_with_config_rt(SessionConfig::new(), Arc::clone(&runtime));
    let first = session();
    let op = storage::Operator::new(Fs::new(&root).unwrap())
        .with_executor(common::executor("sql-shared-1"));
    dio_parquet::register(&first, &url, op).unwrap();
    create_tables(&first, &url).await;
    let second = session();
    let (op, counts) =
        Counting::operator(Fs::new(&root).unwrap(), common::executor("sql-shared-2"));
    dio_parquet::register(&second, &url, op).unwrap();
    create_tables(&second, &url).await;
    for ctx in [&first, &second] {
        assert_eq!(
            reader_factories(ctx, QUERIES[4]).await,
            ["ParquetReaderFactory"; 2]
        );
    }
    counts.reset();
    assert_eq!(run_all(&first).await, expected);
    assert!(
        counts.reads() > 0,
        "read through the operator registered last"
    );
}

/// What `register` remembers of a store keeps neither it nor its operator alive:
/// the session dropped, and the caller's executor handle too, the executor shuts
/// down and its threads exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_lets_its_registered_executor_go() {
    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }
    let (_dir, root) = local_tables();
    let executor = common::executor("regdrop");
    let op = storage::Operator::new(Fs::new(&root).unwrap()).with_executor(executor.clone());
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, &format!("file://{root}"), op).unwrap();
    create_tables(&ctx, &format!("file://{root}")).await;
    assert!(threads_named("regdrop") > 0);
    drop((ctx, executor));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while threads_named("regdrop") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the executor's threads still run a minute after its last handle went"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// After the executor is shut down through its handle, a query fails (never hangs,
/// never returns a short result), and the error's sources lead to our
/// `storage::Error` of kind `ShutDown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_after_shutdown_fails_with_shut_down() {
    let io = common::executor("sql-shutdown");
    let op = storage::Operator::new(Memory::new()).with_executor(io.clone());
    write_all(&op, &tables()).await;
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, "memory://", op).unwrap();
    create_tables(&ctx, "memory://").await;
    // Schemas and footers are known (cached) now; the data is not read yet.
    io.shutdown();
    io.join().await;
    for sql in QUERIES {
        let err = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await.expect_err(sql),
            Err(e) => e,
        };
        let kind = storage_error_in(&err).map(storage::Error::kind);
        assert_eq!(kind, Some(storage::ErrorKind::ShutDown), "{sql}: {err:?}");
    }
}

#[tokio::test]
async fn register_refuses_urls_with_settings() {
    let ctx = SessionContext::new();
    let op = storage::Operator::new(Memory::new());
    let err = dio_parquet::register(&ctx, "s3://bucket?endpoint=http://127.0.0.1:8333", op)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no query or fragment"), "{err}");
}

/// A scan reads each file at the version it was planned with: a file replaced
/// between planning and execution fails the query with `PreconditionFailed` naming
/// the file, never gives a result decoded from the new bytes with the old footer
/// (DataFusion's own reader fails with "Required field type_ is missing" here), or
/// from two versions. DataFusion caches listings (with no expiry by default); the
/// failed scan clears them, so the next query lists the table again and reads the
/// new file instead of failing the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_after_planning_fails_the_query() {
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor("sql-pinned"));
    write_all(&op, &tables()).await;
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, "memory://", op.clone()).unwrap();
    create_tables(&ctx, "memory://").await;
    let sql = "SELECT count(*) AS n, sum(l_quantity) AS qty, min(l_comment) AS c FROM lineitem";
    let before = pretty(&ctx.sql(sql).await.unwrap().collect().await.unwrap());

    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    // Another file of the same schema in place of part 0.
    let replacement = common::lineitem_batch(99, 50_000, 2000);
    op.write(
        "lineitem/part-0.parquet",
        common::parquet_bytes(&replacement, common::writer_properties(700)),
    )
    .await
    .unwrap();
    let err = datafusion::physical_plan::collect(plan, ctx.task_ctx())
        .await
        .unwrap_err();
    let found = storage_error_in(&err).map(|e| (e.kind(), e.path().to_owned()));
    assert_eq!(
        found,
        Some((
            storage::ErrorKind::PreconditionFailed,
            "lineitem/part-0.parquet".to_owned()
        )),
        "{err:?}"
    );

    // The failed scan cleared DataFusion's cached listings: the next query lists
    // the table again and reads the new file (a listing kept would fail it too).
    let after = pretty(&ctx.sql(sql).await.unwrap().collect().await.unwrap());
    assert_ne!(after, before, "the new file is read");
    let count = ctx
        .sql("SELECT count(*) AS n FROM lineitem")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(pretty(&count).contains("| 11000 |"), "{}", pretty(&count));
}

/// Our error, wherever it is in `err`'s chain of sources.
fn storage_error_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a storage::Error> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(ours) = e.downcast_ref::<storage::Error>() {
            return Some(ours);
        }
        source = e.source();
    }
    None
}

fn pretty(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).unwrap().to_string()
}

/// A file replaced by one of the same size with its modification time kept (as
/// `cp -p` or `rsync -t` do), after a query cached its statistics and footer. The
/// scan that finds it fails; the next query plans from the new file's statistics.
/// A table at the registered URL itself, written without its trailing `/`:
/// DataFusion asks for an object of that name first (`head`), and lists the
/// directory when there is none. The store says there is none, as object_store's
/// own stores do, not that the name is outside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_at_the_registered_url_without_its_slash_is_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let op = storage::Operator::new(Fs::new(dir.path()).unwrap())
        .with_executor(common::executor("sql-root"));
    let batch = RecordBatch::try_from_iter([(
        "v",
        Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(
            0..100,
        )) as Arc<dyn datafusion::arrow::array::Array>,
    )])
    .unwrap();
    let bytes = common::parquet_bytes(&batch, common::writer_properties(100));
    op.write("a.parquet", bytes).await.unwrap();
    let ctx = SessionContext::new();
    let url = format!("file://{}", dir.path().display());
    dio_parquet::register(&ctx, &url, op).unwrap();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{url}'"
    ))
    .await
    .unwrap();
    let got = ctx
        .sql("SELECT sum(v) AS s FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert!(pretty(&got).contains("| 4950 |"), "{}", pretty(&got));
}

/// DataFusion trusts what it cached while a file's size and time are the same: it
/// would prune the new file from the old one's statistics (`k` is 1 there), and
/// answer 0, with no error. Replaced again under a fresh listing, the scan that
/// reads it forgets its old footer and statistics and fails (it was planned from
/// them), and the next query is planned from the file's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_with_its_size_and_time_kept_is_planned_from_its_own_statistics() {
    use datafusion::arrow::array::{Array, Int64Array};
    let dir = tempfile::tempdir().unwrap();
    let op = storage::Operator::new(Fs::new(dir.path()).unwrap())
        .with_executor(common::executor("sql-stats"));
    let file = |k: i64| {
        let batch = RecordBatch::try_from_iter([
            (
                "k",
                Arc::new(Int64Array::from(vec![k; 1000])) as Arc<dyn Array>,
            ),
            ("v", Arc::new(Int64Array::from_iter_values(0..1000)) as _),
        ])
        .unwrap();
        common::parquet_bytes(&batch, common::writer_properties(1000))
    };
    let (one, two) = (file(1), file(2));
    assert_eq!(one.len(), two.len(), "the same size");
    op.write("t/a.parquet", one).await.unwrap();
    let ctx = table_t(dir.path(), &op).await;
    let query = |sql: &'static str| {
        let ctx = ctx.clone();
        async move { ctx.sql(sql).await?.collect().await.map(|b| pretty(&b)) }
    };
    let ones = query("SELECT count(*) AS n FROM t WHERE k = 1")
        .await
        .unwrap();
    assert!(ones.contains("| 1000 |"), "{ones}");

    // Replaced, with the old file's modification time.
    let path = dir.path().join("t/a.parquet");
    let replace_keeping_time = |bytes: &[u8]| {
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        let new = dir.path().join("t/new.tmp");
        std::fs::write(&new, bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        std::fs::rename(&new, &path).unwrap();
    };
    replace_keeping_time(&two);

    let err = query("SELECT sum(v) AS s FROM t").await.unwrap_err();
    assert!(err.to_string().contains("precondition failed"), "{err}");
    let twos = query("SELECT count(*) AS n FROM t WHERE k = 2")
        .await
        .unwrap();
    assert!(twos.contains("| 1000 |"), "{twos}");
    let sum = query("SELECT sum(v) AS s FROM t").await.unwrap();
    assert!(sum.contains("| 499500 |"), "{sum}");

    // Replaced again, and listed afresh (DataFusion's listing cache holds a
    // table's listing for a while, or not at all for a large one): the listing
    // has the new version, but the statistics are the old one's, and DataFusion
    // reads a column they hold one value in (`k`, 2 there) as that constant. The
    // scan finds its cached footer of another version, forgets it and the
    // statistics, and fails rather than answer 2; the query run again reads 3.
    let three = file(3);
    assert_eq!(three.len(), two.len(), "the same size");
    replace_keeping_time(&three);
    if let Some(listings) = ctx.runtime_env().cache_manager.get_list_files_cache() {
        listings.clear();
    }
    // Two queries planned from the old statistics before either runs (a
    // dashboard's): the first run clears the old footer, and the second found
    // nothing cached to compare, read the new footer, and answered from its
    // plan's old statistics with no error.
    let mut plans = Vec::new();
    for _ in 0..2 {
        let plan = ctx
            .sql("SELECT DISTINCT k FROM t")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        plans.push(plan);
    }
    for (run, plan) in plans.into_iter().enumerate() {
        match datafusion::physical_plan::collect(plan, ctx.task_ctx()).await {
            Err(err) => assert!(
                err.to_string().contains("replaced by one of the same size"),
                "query {run}: {err}"
            ),
            Ok(answer) => panic!(
                "query {run} answered from the old version's statistics:\n{}",
                pretty(&answer)
            ),
        }
    }
    let threes = query("SELECT DISTINCT k FROM t").await.unwrap();
    assert!(threes.contains("| 3 |"), "{threes}");
    let sum = query("SELECT sum(v) AS s FROM t").await.unwrap();
    assert!(sum.contains("| 499500 |"), "{sum}");
}

/// A session with `dir` registered as `file://` over `op`, and table `t` over its
/// directory `t/`.
async fn table_t(dir: &std::path::Path, op: &storage::Operator) -> SessionContext {
    let ctx = SessionContext::new();
    let url = format!("file://{}", dir.display());
    dio_parquet::register(&ctx, &url, op.clone()).unwrap();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{url}/t/'"
    ))
    .await
    .unwrap();
    ctx
}

/// Table `t` of two files of 1,000 rows (`t/a.parquet`, `t/b.parquet`) in a temp
/// dir, through an fs operator on an executor named `name`, in a new session.
async fn two_file_table(name: &str) -> (tempfile::TempDir, storage::Operator, SessionContext) {
    use datafusion::arrow::array::{Array, Int64Array};
    let dir = tempfile::tempdir().unwrap();
    let op =
        storage::Operator::new(Fs::new(dir.path()).unwrap()).with_executor(common::executor(name));
    let batch = RecordBatch::try_from_iter([(
        "v",
        Arc::new(Int64Array::from_iter_values(0..1000)) as Arc<dyn Array>,
    )])
    .unwrap();
    let bytes = common::parquet_bytes(&batch, common::writer_properties(1000));
    op.write("t/a.parquet", bytes.clone()).await.unwrap();
    op.write("t/b.parquet", bytes).await.unwrap();
    let ctx = table_t(dir.path(), &op).await;
    (dir, op, ctx)
}

/// A file gone since its table was listed, found so while the query is planned
/// (its statistics and footer no longer cached: DataFusion reads its footer to
/// plan), fails that query naming the file, and clears the listing: the next
/// query lists again and answers, where every later query failed the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_gone_when_a_query_is_planned_clears_the_listing() {
    let (_dir, op, ctx) = two_file_table("sql-plan-gone").await;
    let query = || {
        let ctx = ctx.clone();
        async move {
            ctx.sql("SELECT count(*) AS n FROM t")
                .await?
                .collect()
                .await
                .map(|b| pretty(&b))
        }
    };
    assert!(query().await.unwrap().contains("| 2000 |"));
    // What was cached of the files' contents goes (evicted, say); the listing
    // stays, and names a file that is then deleted.
    let caches = &ctx.runtime_env().cache_manager;
    if let Some(statistics) = caches.get_file_statistic_cache() {
        statistics.clear();
    }
    caches.get_file_metadata_cache().clear();
    op.delete("t/b.parquet").await.unwrap();
    let err = query().await.unwrap_err();
    assert!(
        err.to_string().contains("b.parquet"),
        "names the file: {err}"
    );
    let answer = query().await.expect("the next query lists again");
    assert!(answer.contains("| 1000 |"), "{answer}");
}

/// The same when the table is created again in another session on the same
/// runtime (the store registered already, its format installed), its schema
/// inferred from the cached listing, which names a file deleted since: the
/// failure names the file and clears the listing, so that creating it once more
/// lists again and works, where every attempt failed the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_gone_when_a_table_is_created_again_clears_the_listing() {
    let (dir, op, ctx) = two_file_table("sql-infer-gone").await;
    assert!(count_of_t(&ctx).await.contains("| 2000 |"));
    let caches = &ctx.runtime_env().cache_manager;
    assert!(
        caches.get_list_files_cache().is_some(),
        "the test needs DataFusion's listing cache"
    );
    caches.get_file_metadata_cache().clear();
    op.delete("t/b.parquet").await.unwrap();
    // Another session on the same runtime (its caches shared) creates the table.
    let ctx = SessionContext::new_with_config_rt(
        datafusion::prelude::SessionConfig::new(),
        ctx.runtime_env(),
    );
    // Its format installed (the store is the runtime's, registered already).
    let _ = dio_parquet::DioParquetFormat::new(
        &ctx,
        Arc::new(datafusion::datasource::file_format::parquet::ParquetFormat::default()),
    );
    let url = format!("file://{}", dir.path().display());
    let create = || {
        let ctx = ctx.clone();
        let sql = format!("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '{url}/t/'");
        async move { ctx.sql(&sql).await.map(drop) }
    };
    // The cached listing still names the file deleted.
    let err = create().await.unwrap_err();
    assert!(
        err.to_string().contains("b.parquet"),
        "names the file: {err}"
    );
    create().await.expect("created again, listed again");
    let count = count_of_t(&ctx).await;
    assert!(count.contains("| 1000 |"), "{count}");
}

/// `SELECT count(*) FROM t`, printed.
async fn count_of_t(ctx: &SessionContext) -> String {
    let batches = ctx
        .sql("SELECT count(*) AS n FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty(&batches)
}

/// DataFusion keeps one store per scheme and host, so registering
/// `file:///.../b` takes over every `file://` URL. A table outside `b` then fails,
/// saying the location is outside the registered one, instead of reading as an
/// empty table (its schema declared) or "no files found" (inferred).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_outside_the_registered_url_fails_instead_of_reading_empty() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let outside = storage::Operator::new(Fs::new(dir.path().join("a")).unwrap())
        .with_executor(common::executor("sql-outside"));
    let batch = RecordBatch::try_from_iter([(
        "v",
        Arc::new(datafusion::arrow::array::Int64Array::from_iter_values(
            0..10,
        )) as Arc<dyn datafusion::arrow::array::Array>,
    )])
    .unwrap();
    let bytes = common::parquet_bytes(&batch, common::writer_properties(10));
    outside.write("t/x.parquet", bytes).await.unwrap();
    let registered = storage::Operator::new(Fs::new(dir.path().join("b")).unwrap())
        .with_executor(common::executor("sql-registered"));
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, &format!("file://{root}/b"), registered).unwrap();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t (v BIGINT) STORED AS PARQUET LOCATION 'file://{root}/a/t/'"
    ))
    .await
    .unwrap();
    let got = match ctx.sql("SELECT count(*) FROM t").await {
        Ok(frame) => frame.collect().await.map(|b| pretty(&b)),
        Err(e) => Err(e),
    };
    let err = got.unwrap_err().to_string();
    assert!(err.contains("does not start with prefix"), "{err}");
    assert!(err.contains("a/t"), "{err}");
}

/// A table listed by DataFusion's own store before its URL is registered: the
/// next query reads through the registered operator, where DataFusion's cached
/// listing (with the other store's ETags) made every read fail its version check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_registered_after_its_table_was_listed_reads_at_once() {
    let expected = expected().await;
    let (_dir, root) = local_tables();
    let ctx = SessionContext::new();
    // Our format is installed (by another registration), but this URL is not ours
    // yet: DataFusion's store lists the tables.
    let memory =
        storage::Operator::new(Memory::new()).with_executor(common::executor("sql-late-mem"));
    dio_parquet::register(&ctx, "memory://", memory).unwrap();
    create_tables(&ctx, &format!("file://{root}")).await;
    assert_eq!(run_all(&ctx).await, expected);
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["CachedParquetFileReaderFactory"; 2]
    );
    // Now the URL is ours: the first query already reads through the operator.
    let (op, counts) = Counting::operator(Fs::new(&root).unwrap(), common::executor("sql-late-fs"));
    dio_parquet::register(&ctx, &format!("file://{root}"), op).unwrap();
    counts.reset();
    assert_eq!(run_all(&ctx).await, expected);
    assert!(counts.reads() > 0);
    assert_eq!(
        reader_factories(&ctx, QUERIES[4]).await,
        ["ParquetReaderFactory"; 2]
    );
}

/// A file of a table under a registered URL with a path (the operator's root is
/// below the store's) that is not parquet: the error names the file as DataFusion
/// knows it (its location in the store), whether planning reads its footer (for
/// statistics) or the scan does; the scan's error for a file too short for a
/// footer stays parquet's EOF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_under_a_registered_path_is_named_by_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let op = storage::Operator::new(Fs::new(dir.path().join("b")).unwrap())
        .with_executor(common::executor("sql-named"));
    for statistics in [true, false] {
        let ctx = SessionContext::new();
        ctx.sql(&format!(
            "SET datafusion.execution.collect_statistics = {statistics}"
        ))
        .await
        .unwrap();
        dio_parquet::register(&ctx, &format!("file://{root}/b"), op.clone()).unwrap();
        for (name, bytes) in [
            ("corrupt", b"not a parquet file, but long enough".to_vec()),
            ("short", b"PAR".to_vec()),
        ] {
            op.write(&format!("{name}/x.parquet"), bytes).await.unwrap();
            ctx.sql(&format!(
                "CREATE EXTERNAL TABLE {name} (v BIGINT) STORED AS PARQUET \
                 LOCATION 'file://{root}/b/{name}/'"
            ))
            .await
            .unwrap();
            let got = match ctx.sql(&format!("SELECT count(v) FROM {name}")).await {
                Ok(frame) => frame.collect().await.map(|b| pretty(&b)),
                Err(e) => Err(e),
            };
            let err = got.unwrap_err();
            let shown = err.to_string();
            let location = format!("{}/b/{name}/x.parquet", root.trim_start_matches('/'));
            assert!(shown.contains(&location), "{name}, {statistics}: {shown}");
            if name == "short" && !statistics {
                let parquet = err.find_root();
                assert!(
                    matches!(parquet, datafusion::error::DataFusionError::ParquetError(e)
                        if matches!(**e, datafusion::parquet::errors::ParquetError::EOF(_))),
                    "{parquet:?}"
                );
            }
        }
    }
}

/// A table whose schema is inferred from its files, one of them not parquet: the
/// error names that file (the inner format reads every footer at once and its
/// error names none), whichever place it has among good files, and no good file
/// is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_among_good_ones_is_named_when_the_schema_is_inferred() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let op = storage::Operator::new(Fs::new(dir.path()).unwrap())
        .with_executor(common::executor("sql-infer"));
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, &format!("file://{root}"), op.clone()).unwrap();
    let good = tables()
        .into_iter()
        .find(|(path, _)| path.starts_with("orders/"))
        .unwrap()
        .1;
    for (table, bad) in [("first", 0), ("middle", 2), ("last", 4)] {
        for i in 0..5 {
            let bytes = if i == bad {
                bytes::Bytes::from_static(b"not a parquet file, but long enough")
            } else {
                good.clone()
            };
            op.write(&format!("{table}/part-{i}.parquet"), bytes)
                .await
                .unwrap();
        }
        let err = ctx
            .sql(&format!(
                "CREATE EXTERNAL TABLE {table} STORED AS PARQUET LOCATION 'file://{root}/{table}/'"
            ))
            .await
            .unwrap_err()
            .to_string();
        let location = format!(
            "{}/{table}/part-{bad}.parquet",
            root.trim_start_matches('/')
        );
        assert!(err.contains(&location), "{table}: {err}");
        for i in (0..5).filter(|&i| i != bad) {
            let other = format!("{table}/part-{i}.parquet");
            assert!(!err.contains(&other), "{table}: {err}");
        }
    }
}
