//! Parquet modular encryption: the decryption properties a caller or DataFusion's
//! scan (with the `encryption` feature, on by default) puts in the reader options
//! reach our reader, and footers decrypted with them stay out of the shared
//! metadata cache, as they do with DataFusion's own reader.

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{lineitem_batch, parquet_bytes};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
use datafusion::execution::cache::default_cache::DefaultCache;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use dio_parquet::{ParquetReader, ParquetReaderFactory};
use futures::TryStreamExt;
use object_store::path::Path;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::file::properties::WriterProperties;
use storage::services::Memory;

/// The footer key (AES-128), which with no column keys encrypts every column too.
const KEY: &[u8; 16] = b"0123456789012345";

/// `batch` as a parquet file with an encrypted footer and encrypted columns.
fn encrypted(batch: &RecordBatch) -> Bytes {
    let encryption = FileEncryptionProperties::builder(KEY.to_vec())
        .build()
        .unwrap();
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .with_file_encryption_properties(encryption)
        .build();
    parquet_bytes(batch, properties)
}

fn decrypting() -> ArrowReaderOptions {
    let decryption = FileDecryptionProperties::builder(KEY.to_vec())
        .build()
        .unwrap();
    ArrowReaderOptions::new().with_file_decryption_properties(decryption)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_file_is_read_with_the_keys_the_options_carry() {
    let batch = lineitem_batch(5, 0, 3000);
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor("pq-enc"));
    op.write("t/enc.parquet", encrypted(&batch)).await.unwrap();

    // Without the keys: an error naming the file.
    let reader = ParquetReader::new(op.clone(), "t/enc.parquet");
    let err = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .err()
        .expect("read without the keys");
    assert!(err.to_string().contains("t/enc.parquet"), "{err}");

    // With them: the batch written.
    let reader = ParquetReader::new(op, "t/enc.parquet");
    let stream = ParquetRecordBatchStreamBuilder::new_with_options(reader, decrypting())
        .await
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
    assert_eq!(concat_batches(&batch.schema(), &batches).unwrap(), batch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypted_footers_stay_out_of_the_metadata_cache() {
    let batch = lineitem_batch(6, 0, 2000);
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor("pq-enc-c"));
    let enc = encrypted(&batch);
    let plain = parquet_bytes(&batch, WriterProperties::builder().build());
    op.write("t/enc.parquet", enc.clone()).await.unwrap();
    op.write("t/plain.parquet", plain.clone()).await.unwrap();
    let cache: Arc<FileMetadataCache> =
        Arc::new(DefaultCache::<Path, CachedFileMetadataEntry>::new(64 << 20));
    let factory = ParquetReaderFactory::new(op).with_metadata_cache(Arc::clone(&cache));
    let metrics = ExecutionPlanMetricsSet::new();
    let open = |path: &str, size: usize| {
        let file = PartitionedFile::new(path, size as u64);
        factory.create_reader(0, file, None, &metrics).unwrap()
    };

    let options = decrypting();
    let metadata = open("t/enc.parquet", enc.len())
        .get_metadata(Some(&options))
        .await
        .unwrap();
    assert_eq!(metadata.file_metadata().num_rows(), 2000);
    assert!(cache.get(&Path::from("t/enc.parquet")).is_none());
    // The cache is in use: a plain file's footer goes in.
    open("t/plain.parquet", plain.len())
        .get_metadata(None)
        .await
        .unwrap();
    assert!(cache.get(&Path::from("t/plain.parquet")).is_some());
}

/// DataFusion end to end: a table whose options carry the footer key, scanned
/// through the registered operator.
#[cfg(feature = "encryption")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_table_is_queried_through_the_registered_operator() {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;
    use datafusion::prelude::SessionContext;
    let batch = lineitem_batch(7, 0, 3000);
    let op = storage::Operator::new(Memory::new()).with_executor(common::executor("pq-enc-sql"));
    op.write("t/part-0.parquet", encrypted(&batch))
        .await
        .unwrap();
    let ctx = SessionContext::new();
    dio_parquet::register(&ctx, "memory://enc", op).unwrap();
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'memory://enc/t/' \
         OPTIONS ('format.crypto.file_decryption.footer_key_as_hex' '{hex}')"
    ))
    .await
    .unwrap();
    let got = ctx
        .sql("SELECT count(*), sum(l_quantity) FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let quantity: i64 = batch
        .column_by_name("l_quantity")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    assert_eq!(got[0].column(0).as_primitive::<Int64Type>().value(0), 3000);
    assert_eq!(
        got[0].column(1).as_primitive::<Int64Type>().value(0),
        quantity
    );
}
