//! DataFusion SQL over parquet files, with every byte of IO on a dedicated IO
//! runtime.
//!
//! ```sh
//! cargo run -p dio-parquet --example datafusion
//! ```
//!
//! It writes a small `trips` table (4 parquet files) into a temp directory,
//! registers the directory with a `SessionContext` through `dio_parquet::register`,
//! runs SQL, and shuts the IO runtime down through its handle. The query runs on a
//! current-thread runtime: the IO never does.

use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

const CITIES: [&str; 4] = ["Lisbon", "Oslo", "Porto", "Turin"];

/// One file of trips: `rows` rows starting at id `first`.
fn trips(first: i64, rows: i64) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let ids: Vec<i64> = (first..first + rows).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| CITIES[(i % 4) as usize]),
        )),
        Arc::new(Float64Array::from_iter_values(
            ids.iter().map(|i| (i % 97) as f64 * 0.25),
        )),
        Arc::new(Int64Array::from_iter_values(
            ids.iter().map(|i| 300 + (i * 7919) % 2400),
        )),
    ];
    let batch =
        RecordBatch::try_from_iter(["id", "city", "km", "seconds"].into_iter().zip(columns))?;
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4096))
        .build();
    let mut file = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(file)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().to_str().ok_or("the temp dir is not UTF-8")?;

    // 1. The IO runtime: its own threads, named for what they do.
    let io = io_executor::Builder::new()
        .name("example-io")
        .worker_threads(NonZeroUsize::new(2).ok_or("2 > 0")?)
        .build()?;
    let op = storage::Operator::from_uri(&format!("fs://{root}"))?.with_executor(io.clone());

    // 2. The query engine's runtime: one thread, as a query task sees it.
    let engine = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    engine.block_on(async {
        // Data, written through the operator (on `example-io`).
        for part in 0..4 {
            let file = trips(part * 25_000, 25_000)?;
            op.write(&format!("trips/part-{part}.parquet"), file)
                .await?;
        }

        // 3. DataFusion finds the operator's files under file://<root>.
        let ctx = SessionContext::new();
        dio_parquet::register(&ctx, &format!("file://{root}"), op.clone())?;
        ctx.sql(&format!(
            "CREATE EXTERNAL TABLE trips STORED AS PARQUET LOCATION 'file://{root}/trips/'"
        ))
        .await?;

        // 4. Plain SQL.
        let batches = ctx
            .sql(
                "SELECT city, count(*) AS trips, round(sum(km), 2) AS km, \
                 max(seconds) AS longest \
                 FROM trips WHERE km > 10 GROUP BY city ORDER BY city",
            )
            .await?
            .collect()
            .await?;
        println!("{}", pretty_format_batches(&batches)?);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows != CITIES.len() {
            return Err(format!("expected {} cities, got {rows}", CITIES.len()).into());
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    // 5. Shut the IO runtime down through its handle: stop intake, drain, join.
    drop(op);
    io.shutdown();
    io.blocking_join();
    println!("example-io shut down");
    Ok(())
}
