//! `ParquetReader`: files written by parquet's `ArrowWriter` read back through our
//! `AsyncFileReader` give the same batches as parquet's synchronous reader on the
//! same bytes; the metadata costs one read when the footer fits the hint; column
//! chunks asked for together are one coalesced call. Reads are counted by a layer
//! around the backend, never timed.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Counting, lineitem_batch, parquet_bytes, writer_properties};
use datafusion::arrow::array::{AsArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::compute::kernels::cmp::gt;
use datafusion::arrow::datatypes::Int64Type;
use dio_parquet::ParquetReader;
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::{
    ArrowPredicateFn, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowFilter,
};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::errors::ParquetError;
use parquet::file::metadata::PageIndexPolicy;
use storage::services::Memory;

const PATH: &str = "t/lineitem.parquet";

/// A lineitem file of 12,000 rows in 6 row groups, with page statistics and a page
/// index, on a counting memory backend.
async fn fixture(name: &str) -> (storage::Operator, Arc<common::Counts>, Bytes) {
    let batch = lineitem_batch(7, 0, 12_000);
    let bytes = parquet_bytes(&batch, writer_properties(2000));
    let (op, counts) = Counting::operator(Memory::new(), common::executor(name));
    op.write(PATH, bytes.clone()).await.unwrap();
    counts.reset();
    (op, counts, bytes)
}

/// `l_quantity > 25`, over the projected batch's `l_quantity` column.
fn quantity_filter(mask: ProjectionMask) -> RowFilter {
    let predicate = ArrowPredicateFn::new(mask, |batch: RecordBatch| {
        let quantity = batch.column(0).as_primitive::<Int64Type>();
        gt(quantity, &Int64Array::new_scalar(25))
    });
    RowFilter::new(vec![Box::new(predicate)])
}

fn columns(schema: &parquet::schema::types::SchemaDescriptor, names: &[&str]) -> ProjectionMask {
    ProjectionMask::columns(schema, names.iter().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projection_and_row_filter_give_the_synchronous_readers_batches() {
    let (op, counts, bytes) = fixture("pq-equal").await;
    let projected = [
        "l_orderkey",
        "l_quantity",
        "l_discount",
        "l_shipdate",
        "l_shipmode",
        "l_loaded_at",
        "l_is_late",
        "l_comment",
    ];

    // parquet's synchronous reader on the same bytes.
    let sync = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
    let schema = sync.parquet_schema().clone();
    let expected: Vec<RecordBatch> = sync
        .with_projection(columns(&schema, &projected))
        .with_row_filter(quantity_filter(columns(&schema, &["l_quantity"])))
        .with_batch_size(1024)
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();

    // Ours, with the page index.
    let reader = ParquetReader::new(op, PATH).with_file_size(bytes.len() as u64);
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options)
        .await
        .unwrap();
    assert_eq!(builder.metadata().num_row_groups(), 6);
    assert!(builder.metadata().column_index().is_some());
    assert!(builder.metadata().offset_index().is_some());
    let got: Vec<RecordBatch> = builder
        .with_projection(columns(&schema, &projected))
        .with_row_filter(quantity_filter(columns(&schema, &["l_quantity"])))
        .with_batch_size(1024)
        .build()
        .unwrap()
        .try_collect()
        .await
        .unwrap();

    // The same rows and values; where one reader ends a batch and the other does
    // not differs (the async reader decodes a row group at a time).
    let schema = expected[0].schema();
    assert_eq!(
        concat_batches(&schema, &got).unwrap(),
        concat_batches(&schema, &expected).unwrap()
    );
    let rows: usize = got.iter().map(RecordBatch::num_rows).sum();
    assert!(
        rows > 4000 && rows < 8000,
        "about half the rows pass: {rows}"
    );
    assert_eq!(got[0].num_columns(), projected.len());
    // Everything came through the operator.
    assert!(counts.reads() > 6, "{} reads", counts.reads());
}

#[tokio::test]
async fn metadata_is_one_read_when_the_footer_fits_the_hint() {
    let (op, counts, bytes) = fixture("pq-footer").await;
    let size = bytes.len() as u64;

    // Footer and page index within the default hint (512 KiB > this whole file).
    let mut reader = ParquetReader::new(op.clone(), PATH).with_file_size(size);
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
    let metadata = reader.get_metadata(Some(&options)).await.unwrap();
    assert!(metadata.column_index().is_some());
    assert_eq!(counts.reads(), 1, "footer and page index in one read");
    assert_eq!(counts.reads_ending_at(PATH, size), 1);

    // Without the size: one job opens the file and reads its last 512 KiB (no
    // stat), and the page index is right although the file is longer than that.
    assert!(size > 512 << 10, "{size}");
    counts.reset();
    let mut reader = ParquetReader::new(op.clone(), PATH);
    let unsized_metadata = reader.get_metadata(Some(&options)).await.unwrap();
    assert_eq!((counts.opens(), counts.reads()), (1, 0), "one suffix read");
    assert_eq!(unsized_metadata.num_row_groups(), 6);
    assert_eq!(unsized_metadata.offset_index(), metadata.offset_index());
    assert_eq!(unsized_metadata.column_index(), metadata.column_index());

    // A hint too small for the footer costs more reads: the count above means
    // something.
    counts.reset();
    let mut reader = ParquetReader::new(op, PATH)
        .with_file_size(size)
        .with_footer_hint(64);
    reader.get_metadata(Some(&options)).await.unwrap();
    assert!(counts.reads() >= 2, "{} reads", counts.reads());
}

#[tokio::test]
async fn the_page_index_is_loaded_only_when_asked_for() {
    let (op, counts, bytes) = fixture("pq-index").await;
    let size = bytes.len() as u64;
    let mut reader = ParquetReader::new(op.clone(), PATH).with_file_size(size);
    let plain = reader.get_metadata(None).await.unwrap();
    assert!(plain.column_index().is_none() && plain.offset_index().is_none());

    // Asked for by the reader itself.
    let mut reader = reader.with_page_index(PageIndexPolicy::Required);
    let indexed = reader.get_metadata(None).await.unwrap();
    assert!(indexed.column_index().is_some() && indexed.offset_index().is_some());

    // Added to metadata read without it: one more read, of the index only.
    counts.reset();
    let footer = Arc::unwrap_or_clone(plain);
    let reader = ParquetReader::new(op, PATH).with_file_size(size);
    let with_index = reader
        .load_page_index(footer, PageIndexPolicy::Required)
        .await
        .unwrap();
    assert!(with_index.offset_index().is_some());
    assert_eq!(counts.reads(), 1);
    assert_eq!(
        counts.reads_ending_at(PATH, size),
        0,
        "not the footer again"
    );
    // Metadata that has the index already: nothing is read.
    counts.reset();
    let again = reader
        .load_page_index(with_index.clone(), PageIndexPolicy::Required)
        .await
        .unwrap();
    assert!(again.column_index().is_some() && again.offset_index().is_some());
    assert_eq!(counts.reads(), 0, "the index read again");
}

/// A file written without a page index: asked for as `Required`, an error naming
/// the file (parquet itself answers as if none had been asked for); as
/// `Optional`, the metadata without it.
#[tokio::test]
async fn a_required_page_index_the_file_lacks_is_an_error() {
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let batch = lineitem_batch(3, 0, 3000);
    let plain = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .set_statistics_enabled(EnabledStatistics::None)
        .set_offset_index_disabled(true)
        .build();
    let bytes = parquet_bytes(&batch, plain);
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor("pq-noindex"));
    op.write(PATH, bytes.clone()).await.unwrap();
    let size = bytes.len() as u64;
    for sized in [true, false] {
        let reader = ParquetReader::new(op.clone(), PATH);
        let reader = if sized {
            reader.with_file_size(size)
        } else {
            reader
        };
        let mut reader = reader.with_page_index(PageIndexPolicy::Required);
        let Err(err) = reader.get_metadata(None).await else {
            panic!("a required page index the file lacks gave metadata, no error");
        };
        let text = err.to_string();
        assert!(text.contains("no column index"), "{text}");
        assert!(text.contains(PATH), "names the file: {text}");
        let mut reader = reader.with_page_index(PageIndexPolicy::Optional);
        let metadata = reader.get_metadata(None).await.unwrap();
        assert!(metadata.column_index().is_none() && metadata.offset_index().is_none());
        assert_eq!(metadata.num_row_groups(), 3);
        // Added to metadata read without it: the same.
        let footer = Arc::unwrap_or_clone(metadata);
        let Err(err) = reader
            .load_page_index(footer, PageIndexPolicy::Required)
            .await
        else {
            panic!("a required page index the file lacks was added, no error");
        };
        assert!(err.to_string().contains("no column index"), "{err}");
    }
}

/// A file written with statistics per chunk has offset indexes and no column
/// index: parquet answers with a column index of `NONE`s, which is no column
/// index, so `Required` is an error there too.
#[tokio::test]
async fn a_required_column_index_is_not_met_by_offset_indexes_alone() {
    use parquet::file::properties::{EnabledStatistics, WriterProperties};
    let batch = lineitem_batch(3, 0, 3000);
    let chunk_stats = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .build();
    let bytes = parquet_bytes(&batch, chunk_stats);
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor("pq-offsetonly"));
    op.write(PATH, bytes.clone()).await.unwrap();
    let size = bytes.len() as u64;
    let mut reader = ParquetReader::new(op.clone(), PATH)
        .with_file_size(size)
        .with_page_index(PageIndexPolicy::Optional);
    let metadata = reader.get_metadata(None).await.unwrap();
    assert!(
        metadata.offset_index().is_some(),
        "the file has offset indexes"
    );
    let mut reader = reader.with_page_index(PageIndexPolicy::Required);
    let Err(err) = reader.get_metadata(None).await else {
        panic!("a required column index the file lacks gave metadata, no error");
    };
    let text = err.to_string();
    assert!(text.contains("has no column index"), "{text}");
    assert!(
        !text.contains("offset"),
        "the offset index is there: {text}"
    );
    // Asked of the metadata read before (its column index all `NONE`s, as a
    // cached footer would be): the same error, not that metadata.
    let Err(err) = reader
        .load_page_index(Arc::unwrap_or_clone(metadata), PageIndexPolicy::Required)
        .await
    else {
        panic!("a required column index was taken from metadata that has none");
    };
    assert!(err.to_string().contains("has no column index"), "{err}");
}

#[tokio::test]
async fn column_chunks_are_read_in_one_coalesced_call() {
    let (op, counts, bytes) = fixture("pq-ranges").await;
    let mut reader = ParquetReader::new(op, PATH).with_file_size(bytes.len() as u64);
    let metadata = reader.get_metadata(None).await.unwrap();
    // Every column chunk of the first row group: adjacent ranges.
    let ranges: Vec<_> = metadata
        .row_group(0)
        .columns()
        .iter()
        .map(|c| {
            let (start, len) = c.byte_range();
            start..start + len
        })
        .collect();
    assert!(ranges.len() > 10);
    counts.reset();
    let chunks = reader.get_byte_ranges(ranges.clone()).await.unwrap();
    for (chunk, range) in chunks.iter().zip(&ranges) {
        assert_eq!(
            chunk,
            &bytes.slice(range.start as usize..range.end as usize)
        );
    }
    // One merged read (the trait's default would make one per range).
    assert_eq!(counts.reads(), 1, "{} reads", counts.reads());

    // One range: one read.
    counts.reset();
    let one = reader.get_bytes(ranges[3].clone()).await.unwrap();
    assert_eq!(one.len() as u64, ranges[3].end - ranges[3].start);
    assert_eq!(counts.reads(), 1);
    assert!(reader.get_byte_ranges(Vec::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn errors_carry_the_storage_error() {
    let (op, _counts, bytes) = fixture("pq-errors").await;
    let mut missing = ParquetReader::new(op.clone(), "t/missing.parquet");
    let err = missing.get_metadata(None).await.unwrap_err();
    let ParquetError::External(source) = &err else {
        panic!("expected External, got {err:?}");
    };
    let storage_err = source.downcast_ref::<storage::Error>().unwrap();
    assert_eq!(storage_err.kind(), storage::ErrorKind::NotFound);
    assert_eq!(storage_err.path(), "t/missing.parquet");

    // Beyond the end: the error says how big the file is.
    let mut reader = ParquetReader::new(op.clone(), PATH);
    let size = bytes.len() as u64;
    let err = reader.get_bytes(size - 10..size + 10).await.unwrap_err();
    let ParquetError::External(source) = &err else {
        panic!("expected External, got {err:?}");
    };
    let storage_err = source.downcast_ref::<storage::Error>().unwrap();
    assert_eq!(storage_err.kind(), storage::ErrorKind::RangeNotSatisfiable);
    assert_eq!(storage_err.context("size"), Some(size.to_string().as_str()));

    // Not parquet, or empty: parquet's error, of its own kind (an empty file is
    // too short for a footer: EOF), naming the file (in a scan of thousands of
    // files, "Corrupt footer" alone does not say which).
    op.write("t/not.parquet", vec![b'x'; 100]).await.unwrap();
    op.write("t/empty.parquet", Vec::new()).await.unwrap();
    for (path, size, eof) in [
        ("t/not.parquet", Some(100), false),
        ("t/empty.parquet", None, true),
    ] {
        let mut reader = ParquetReader::new(op.clone(), path);
        if let Some(size) = size {
            reader = reader.with_file_size(size);
        }
        let err = reader.get_metadata(None).await.unwrap_err();
        let message = match (&err, eof) {
            (ParquetError::General(message), false) | (ParquetError::EOF(message), true) => message,
            _ => panic!(
                "{path}: expected {}, got {err:?}",
                ["General", "EOF"][usize::from(eof)]
            ),
        };
        assert!(message.contains(path), "{message}");
    }
}

/// The column index and the offset index are loaded as the options ask for each:
/// asking for one of them does not load (or require) the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_page_index_is_loaded_as_the_options_ask_for_it() {
    // The fixture's file has both indexes.
    let (op, _counts, _bytes) = fixture("pq-index").await;
    let load = |column, offset| {
        let op = op.clone();
        async move {
            let options = ArrowReaderOptions::new()
                .with_column_index_policy(column)
                .with_offset_index_policy(offset);
            let mut reader = ParquetReader::new(op, PATH);
            let metadata = reader.get_metadata(Some(&options)).await.unwrap();
            (
                metadata.column_index().is_some(),
                metadata.offset_index().is_some(),
            )
        }
    };
    use PageIndexPolicy::{Required, Skip};
    assert_eq!(load(Skip, Required).await, (false, true));
    assert_eq!(load(Required, Skip).await, (true, false));
    assert_eq!(load(Required, Required).await, (true, true));
    assert_eq!(load(Skip, Skip).await, (false, false));
}

#[test]
fn readers_work_from_a_plain_thread() {
    // No runtime at all on the caller's side: the executor does the IO.
    let io = common::executor("pq-plain");
    let op = storage::Operator::new(Memory::new()).with_executor(io.clone());
    let batch = lineitem_batch(1, 0, 3000);
    let bytes = parquet_bytes(&batch, writer_properties(1000));
    op.blocking().write(PATH, bytes).unwrap();
    let reader = ParquetReader::new(op, PATH);
    let rows = futures::executor::block_on(async {
        let stream = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        batches.iter().map(RecordBatch::num_rows).sum::<usize>()
    });
    assert_eq!(rows, 3000);
    io.shutdown();
    io.blocking_join();
}

/// Every row of the file `reader` reads, as one batch.
async fn read_all(reader: ParquetReader) -> RecordBatch {
    let batches: Vec<RecordBatch> = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .unwrap()
        .build()
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// The storage error inside a parquet error, if there is one.
fn storage_error(err: &ParquetError) -> Option<&storage::Error> {
    match err {
        ParquetError::External(source) => source.downcast_ref::<storage::Error>(),
        _ => None,
    }
}

/// A reader given the file's ETag reads that version and no other: once the file is
/// replaced, its metadata read, and its column reads after a metadata read of the
/// old version, fail with `PreconditionFailed` naming the version, never decode the
/// new file's bytes. Without an ETag the same reader reads whatever is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_given_an_etag_reads_that_version_or_fails() {
    let dir = tempfile::tempdir().unwrap();
    let backends = [
        storage::Operator::new(Memory::new()),
        storage::Operator::new(storage::services::Fs::new(dir.path()).unwrap()),
    ];
    let old = lineitem_batch(7, 0, 12_000);
    let new = lineitem_batch(8, 0, 12_000);
    for op in backends {
        let op = op.with_executor(common::executor("pq-pinned"));
        op.write(PATH, parquet_bytes(&old, writer_properties(2000)))
            .await
            .unwrap();
        let listed = op.stat(PATH).await.unwrap();
        let etag = listed.etag().unwrap().to_owned();
        let pinned = ParquetReader::new(op.clone(), PATH)
            .with_file_size(listed.content_length())
            .with_etag(etag.clone());
        assert_eq!(pinned.etag(), Some(etag.as_str()));
        assert_eq!(read_all(pinned.clone()).await, old);

        // The footer of the old version is in hand when the file is replaced.
        let planned = ParquetRecordBatchStreamBuilder::new(pinned.clone())
            .await
            .unwrap();
        op.write(PATH, parquet_bytes(&new, writer_properties(3000)))
            .await
            .unwrap();
        let err = planned
            .build()
            .unwrap()
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        let err = storage_error(&err).unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(err.kind(), storage::ErrorKind::PreconditionFailed, "{err}");
        assert_eq!(err.context("expected_etag"), Some(etag.as_str()));
        assert_eq!(err.path(), PATH);

        let err = pinned.clone().get_metadata(None).await.unwrap_err();
        let err = storage_error(&err).unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(err.kind(), storage::ErrorKind::PreconditionFailed, "{err}");
        // Without a size: the suffix read asks for the version too.
        let err = ParquetReader::new(op.clone(), PATH)
            .with_etag(etag.clone())
            .get_metadata(None)
            .await
            .unwrap_err();
        let err = storage_error(&err).unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(err.kind(), storage::ErrorKind::PreconditionFailed, "{err}");

        // Unpinned, the new version is read.
        assert_eq!(read_all(ParquetReader::new(op.clone(), PATH)).await, new);
    }
}

/// A footer cached for another version of a file (same size, same modification
/// time, another ETag: a file replaced within the same second on S3) is not served
/// for the version a scan listed. The scan fails (DataFusion planned it from the
/// other version's statistics) and the footer is forgotten; the next scan reads
/// the file's own. One cached for another ETag and another size (a file
/// rewritten as usual) was not planned from, and the scan reads the file's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_footer_cached_for_another_etag_is_not_served() {
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
    use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
    use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
    use datafusion::execution::cache::default_cache::DefaultCache;
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use dio_parquet::ParquetReaderFactory;
    use object_store::path::Path;

    let (op, _counts, bytes) = fixture("pq-cache-etag").await;
    // Another file's footer: 500 rows, where the fixture has 12,000.
    let other = parquet_bytes(&lineitem_batch(9, 0, 500), writer_properties(100));
    op.write("t/other.parquet", other).await.unwrap();
    let other_footer = ParquetReader::new(op.clone(), "t/other.parquet")
        .load_metadata(PageIndexPolicy::Skip, None)
        .await
        .unwrap();

    let etag = op.stat(PATH).await.unwrap().etag().unwrap().to_owned();
    let mut file = PartitionedFile::new(PATH, bytes.len() as u64);
    file.object_meta.e_tag = Some(etag);
    let mut stale = file.object_meta.clone();
    stale.e_tag = Some("\"an-older-version\"".to_owned());
    let cache: Arc<FileMetadataCache> =
        Arc::new(DefaultCache::<Path, CachedFileMetadataEntry>::new(64 << 20));
    let entry = CachedFileMetadataEntry::new(
        stale,
        Arc::new(CachedParquetMetaData::new(Arc::new(other_footer))),
    );
    cache.put(&Path::from(PATH), entry);

    let op_for_other = op.clone();
    let factory = ParquetReaderFactory::new(op).with_metadata_cache(Arc::clone(&cache));
    let metrics = ExecutionPlanMetricsSet::new();
    let err = factory
        .create_reader(0, file.clone(), None, &metrics)
        .unwrap()
        .get_metadata(None)
        .await
        .unwrap_err();
    let storage_err = match &err {
        parquet::errors::ParquetError::External(e) => e.downcast_ref::<storage::Error>(),
        _ => None,
    };
    assert_eq!(
        storage_err.map(storage::Error::kind),
        Some(storage::ErrorKind::PreconditionFailed),
        "{err}"
    );
    assert!(err.to_string().contains(PATH), "names the file: {err}");
    assert!(
        cache.get(&Path::from(PATH)).is_none(),
        "the other version's footer is forgotten"
    );
    let metadata = factory
        .create_reader(0, file.clone(), None, &metrics)
        .unwrap()
        .get_metadata(None)
        .await
        .unwrap();
    assert_eq!(metadata.file_metadata().num_rows(), 12_000);

    // A cached footer of another ETag and another size was not what the scan
    // was planned from (DataFusion reads a file of another size anew): the
    // file's own footer is read, where the scan failed with PreconditionFailed.
    let mut older = file.object_meta.clone();
    older.e_tag = Some("\"an-older-version\"".to_owned());
    older.size += 1;
    let entry = CachedFileMetadataEntry::new(
        older,
        Arc::new(CachedParquetMetaData::new(Arc::new(
            ParquetReader::new(op_for_other, "t/other.parquet")
                .load_metadata(PageIndexPolicy::Skip, None)
                .await
                .unwrap(),
        ))),
    );
    cache.put(&Path::from(PATH), entry);
    let metadata = factory
        .create_reader(0, file, None, &metrics)
        .unwrap()
        .get_metadata(None)
        .await
        .unwrap();
    assert_eq!(metadata.file_metadata().num_rows(), 12_000);
}

/// A footer read for a scan that asked for less of it (no column statistics) is
/// not what the shared cache keeps: a later scan, wanting the statistics, gets
/// them, where it was served the reduced footer from the cache. (The factory
/// decodes whole footers, as DataFusion's own reader does.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_footer_read_with_statistics_skipped_does_not_reach_the_cache() {
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
    use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
    use datafusion::execution::cache::default_cache::DefaultCache;
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use dio_parquet::ParquetReaderFactory;
    use object_store::path::Path;
    use parquet::file::metadata::ParquetStatisticsPolicy;

    let (op, _counts, bytes) = fixture("pq-cache-options").await;
    let etag = op.stat(PATH).await.unwrap().etag().unwrap().to_owned();
    let mut file = PartitionedFile::new(PATH, bytes.len() as u64);
    file.object_meta.e_tag = Some(etag);
    let cache: Arc<FileMetadataCache> =
        Arc::new(DefaultCache::<Path, CachedFileMetadataEntry>::new(64 << 20));
    let factory = ParquetReaderFactory::new(op).with_metadata_cache(Arc::clone(&cache));
    let metrics = ExecutionPlanMetricsSet::new();
    let skip = ArrowReaderOptions::new().with_column_stats_policy(ParquetStatisticsPolicy::SkipAll);
    let reduced = factory
        .create_reader(0, file.clone(), None, &metrics)
        .unwrap()
        .get_metadata(Some(&skip))
        .await
        .unwrap();
    assert_eq!(reduced.num_row_groups(), bytes_row_groups(&bytes));
    let full = factory
        .create_reader(0, file, None, &metrics)
        .unwrap()
        .get_metadata(None)
        .await
        .unwrap();
    assert!(full.row_group(0).column(0).statistics().is_some());
}

/// How many row groups parquet file `bytes` has, read without us.
fn bytes_row_groups(bytes: &Bytes) -> usize {
    parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(bytes)
        .unwrap()
        .num_row_groups()
}

/// A scan with pinned versions that finds its file changed since it was listed, or
/// gone, clears the listings it was given, whichever read found it (the footer,
/// one range, several), so that the next query lists the files again. A read of
/// the listed version, and other errors, leave them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_that_finds_its_file_changed_clears_the_listings() {
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
    use datafusion::execution::cache::TableScopedPath;
    use datafusion::execution::cache::cache_manager::{CachedFileList, ListFilesCache};
    use datafusion::execution::cache::default_cache::DefaultCache;
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use dio_parquet::ParquetReaderFactory;
    use object_store::path::Path;

    let (op, _counts, bytes) = fixture("pq-listings").await;
    let listed = op.stat(PATH).await.unwrap().etag().unwrap().to_owned();
    let file = |path: &str, etag: &str| {
        let mut file = PartitionedFile::new(path, bytes.len() as u64);
        file.object_meta.e_tag = Some(etag.to_owned());
        file
    };
    let listings: Arc<ListFilesCache> = Arc::new(
        DefaultCache::<TableScopedPath, CachedFileList>::new(1 << 20),
    );
    let key = TableScopedPath {
        table: None,
        path: Path::from("t"),
    };
    let list = || {
        listings.put(
            &key,
            CachedFileList::new(vec![file(PATH, &listed).object_meta]),
        );
    };
    list();
    let factory = ParquetReaderFactory::new(op.clone())
        .with_pinned_versions(true)
        .with_list_files_cache(Arc::clone(&listings));
    let metrics = ExecutionPlanMetricsSet::new();
    let reader = |path: &str| factory.create_reader(0, file(path, &listed), None, &metrics);

    let mut current = reader(PATH).unwrap();
    current.get_metadata(None).await.unwrap();
    current.get_bytes(0..4).await.unwrap();
    current.get_byte_ranges(vec![0..4, 8..12]).await.unwrap();
    assert!(listings.contains_key(&key), "a read of the listed version");
    let size = bytes.len() as u64;
    let err = current.get_bytes(size..size + 4).await.unwrap_err();
    assert!(storage_error(&err).is_some(), "{err:?}");
    assert!(listings.contains_key(&key), "another error");
    let err = reader("t/missing.parquet")
        .unwrap()
        .get_bytes(0..4)
        .await
        .unwrap_err();
    let kind = storage_error(&err).map(storage::Error::kind);
    assert_eq!(kind, Some(storage::ErrorKind::NotFound), "{err:?}");
    assert!(!listings.contains_key(&key), "a file gone");

    // The same bytes written again: another version.
    op.write(PATH, bytes.clone()).await.unwrap();
    for read in ["metadata", "range", "ranges"] {
        list();
        let mut stale = reader(PATH).unwrap();
        let err = match read {
            "metadata" => stale.get_metadata(None).await.map(drop),
            "range" => stale.get_bytes(0..4).await.map(drop),
            _ => stale.get_byte_ranges(vec![0..4, 8..12]).await.map(drop),
        }
        .unwrap_err();
        let kind = storage_error(&err).map(storage::Error::kind);
        assert_eq!(
            kind,
            Some(storage::ErrorKind::PreconditionFailed),
            "{err:?}"
        );
        assert!(
            !listings.contains_key(&key),
            "{read}: the listings are kept"
        );
    }
}

/// A scan DataFusion gives no metadata size hint reads the footer, then the
/// metadata, as DataFusion's own reader does (no 512 KiB prefetch per file); with
/// DataFusion's default hint, the file's last 512 KiB in one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_given_no_metadata_hint_prefetches_nothing() {
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
    use dio_parquet::ParquetReaderFactory;

    let (op, counts, bytes) = fixture("pq-no-hint").await;
    assert!(bytes.len() > 512 << 10, "{}", bytes.len());
    let factory = ParquetReaderFactory::new(op);
    let metrics = ExecutionPlanMetricsSet::new();
    let file = || PartitionedFile::new(PATH, bytes.len() as u64);
    for (hint, at_least, below) in [(None, 0, 256 << 10), (Some(512 << 10), 512 << 10, u64::MAX)] {
        counts.reset();
        let mut reader = factory.create_reader(0, file(), hint, &metrics).unwrap();
        reader.get_metadata(None).await.unwrap();
        let read = counts.bytes();
        assert!(
            read >= at_least && read < below,
            "hint {hint:?}: {read} bytes"
        );
    }
}

/// A backend of one file that is replaced after its first request: that request
/// sees the first version, every later one the second (each with its ETag, whose
/// `if_match` it honours).
#[derive(Debug)]
struct ReplacedAfterOneRead {
    versions: [Bytes; 2],
    served: std::sync::atomic::AtomicUsize,
    /// If set, each open waits (on a blocking thread) for as many others as the
    /// barrier counts, having taken its version: opens made at once see both.
    meet: Option<Arc<std::sync::Barrier>>,
}

impl ReplacedAfterOneRead {
    /// The version this request sees, and its metadata.
    fn version(&self) -> (Bytes, storage::Metadata) {
        let n = self
            .served
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let content = self.versions[usize::from(n > 0)].clone();
        // Versions of other lengths (as here) have other tags.
        let etag = format!("\"{}\"", content.len());
        let meta = storage::Metadata::file(content.len() as u64).with_etag(etag);
        (content, meta)
    }
}

#[derive(Debug)]
struct Replaced(Arc<ReplacedAfterOneRead>);

#[derive(Debug)]
struct Version {
    metadata: storage::Metadata,
    content: Bytes,
}

impl storage::raw::RandomRead for Version {
    fn metadata(&self) -> &storage::Metadata {
        &self.metadata
    }

    fn read_at(self: Arc<Self>, range: std::ops::Range<u64>) -> storage::raw::IoJob<Bytes> {
        storage::raw::IoJob::ready(Ok(self
            .content
            .slice(range.start as usize..range.end as usize)))
    }
}

impl storage::raw::Access for Replaced {
    fn scheme(&self) -> &'static str {
        "replaced"
    }

    fn stat(&self, _: &str) -> storage::raw::IoJob<storage::Metadata> {
        let (_, meta) = self.0.version();
        storage::raw::IoJob::ready(Ok(meta))
    }

    fn read(&self, _: &str, args: storage::raw::ReadArgs) -> storage::raw::IoJob<Bytes> {
        let (content, meta) = self.0.version();
        storage::raw::IoJob::ready((|| {
            args.conditions.check(&meta)?;
            let range = args.resolve(content.len() as u64)?;
            Ok(content.slice(range.start as usize..range.end as usize))
        })())
    }

    fn open(
        &self,
        _: &str,
        args: storage::raw::OpenArgs,
    ) -> storage::raw::IoJob<storage::raw::Opened> {
        let replaced = Arc::clone(&self.0);
        let open = move || {
            let (content, metadata) = replaced.version();
            if let Some(meet) = &replaced.meet {
                meet.wait();
            }
            args.conditions.check(&metadata)?;
            let range = args.range.resolve(content.len() as u64)?;
            let first = args.first_read(&range);
            let bytes = content.slice(first.start as usize..first.end as usize);
            let object = Arc::new(Version { metadata, content });
            Ok(storage::raw::Opened::new(object, range, bytes))
        };
        // Opens that wait for each other wait on blocking threads.
        match self.0.meet {
            Some(_) => storage::raw::IoJob::blocking(open),
            None => storage::raw::IoJob::ready(open()),
        }
    }
}

/// A reader given no size and no version holds every read to the one version its
/// first read (the file's tail) saw: a file replaced while the footer is read in
/// more than one read, or before its column chunks are read, fails saying so
/// (temporary, `changed`), not as a corrupt footer decoded from two versions or
/// as the new file's bytes at the old metadata's offsets.
#[tokio::test]
async fn a_reader_holds_to_the_version_its_first_read_saw() {
    let versions = [
        parquet_bytes(&lineitem_batch(3, 0, 2_000), writer_properties(500)),
        parquet_bytes(&lineitem_batch(4, 0, 3_000), writer_properties(700)),
    ];
    let backend = |versions: &[Bytes; 2]| {
        let replaced = Arc::new(ReplacedAfterOneRead {
            versions: versions.clone(),
            served: std::sync::atomic::AtomicUsize::new(0),
            meet: None,
        });
        storage::Operator::new(Replaced(replaced)).with_executor(common::executor("replaced"))
    };
    {
        // A hint too small for the footer: the load needs a second read.
        let reader = ParquetReader::new(backend(&versions), "t.parquet").with_footer_hint(64);
        let err = reader
            .load_metadata(PageIndexPolicy::Skip, None)
            .await
            .unwrap_err();
        let ParquetError::External(source) = &err else {
            panic!("not a storage error: {err}");
        };
        let source = source.downcast_ref::<storage::Error>().unwrap();
        assert_eq!(source.kind(), storage::ErrorKind::Unexpected, "{err}");
        assert!(source.is_temporary(), "{err}");
        assert_eq!(source.context("changed"), Some("while read"), "{err}");
        assert_eq!(source.path(), "t.parquet", "{err}");
        // The same file, not replaced, loads.
        let same = [versions[0].clone(), versions[0].clone()];
        let reader = ParquetReader::new(backend(&same), "t.parquet").with_footer_hint(64);
        let metadata = reader.load_metadata(PageIndexPolicy::Skip, None).await;
        assert_eq!(metadata.unwrap().file_metadata().num_rows(), 2_000);
        // Replaced after the metadata was read whole (one read): the column chunks
        // are not read from the new file.
        let mut reader = ParquetReader::new(backend(&versions), "t.parquet");
        let metadata = reader.load_metadata(PageIndexPolicy::Skip, None).await;
        assert_eq!(metadata.unwrap().file_metadata().num_rows(), 2_000);
        let one = reader.get_bytes(4..100).await.unwrap_err();
        let many = reader
            .get_byte_ranges(vec![4..100, 200..300])
            .await
            .unwrap_err();
        for err in [one, many] {
            let ParquetError::External(source) = &err else {
                panic!("not a storage error: {err}");
            };
            let source = source.downcast_ref::<storage::Error>().unwrap();
            assert_eq!(source.kind(), storage::ErrorKind::Unexpected, "{err}");
            assert_eq!(source.context("changed"), Some("while read"), "{err}");
        }
    }
}

/// Two metadata loads of one reader at once, each opening the file before either
/// has seen it, of a file replaced between the two opens: one load holds the
/// reader to the version it saw, and the other, which saw the other version, fails
/// saying the file changed, rather than return metadata of a version the reader's
/// later reads do not hold to.
#[tokio::test]
async fn two_loads_at_once_of_a_replaced_file_leave_one_version() {
    let versions = [
        parquet_bytes(&lineitem_batch(3, 0, 2_000), writer_properties(500)),
        parquet_bytes(&lineitem_batch(4, 0, 3_000), writer_properties(700)),
    ];
    let replaced = Arc::new(ReplacedAfterOneRead {
        versions,
        served: std::sync::atomic::AtomicUsize::new(0),
        meet: Some(Arc::new(std::sync::Barrier::new(2))),
    });
    let op = storage::Operator::new(Replaced(replaced)).with_executor(common::executor("replaced"));
    let reader = ParquetReader::new(op, "t.parquet");
    let (a, b) = futures::join!(
        reader.load_metadata(PageIndexPolicy::Skip, None),
        reader.load_metadata(PageIndexPolicy::Skip, None),
    );
    let (ok, err) = match (a, b) {
        (Ok(ok), Err(err)) | (Err(err), Ok(ok)) => (ok, err),
        (a, b) => panic!(
            "not one load each way: {:?} / {:?}",
            a.map(drop),
            b.map(drop)
        ),
    };
    assert!([2_000, 3_000].contains(&ok.file_metadata().num_rows()));
    let ParquetError::External(source) = &err else {
        panic!("not a storage error: {err}");
    };
    let source = source.downcast_ref::<storage::Error>().unwrap();
    assert_eq!(source.context("changed"), Some("while read"), "{err}");
}
