//! Parquet and DataFusion over dedicated IO.
//!
//! # The problem
//!
//! A query engine reads parquet through parquet's [`AsyncFileReader`] and
//! DataFusion's [`ParquetFileReaderFactory`], over an
//! [`ObjectStore`](object_store::ObjectStore) that does its IO wherever it is
//! polled: on the engine's runtime, between the CPU work of decoding and
//! aggregating. A slow `stat`, a blocking file read or an HTTP connection task then
//! stalls the query's own threads. parquet's `ParquetObjectReader` is deprecated
//! (since 59.2), and readers are expected to implement `AsyncFileReader` directly.
//!
//! This crate reads parquet through our [`storage::Operator`] (fs, memory, S3), so
//! every read of a scan that may wait is done on the operator's
//! [`io_executor::Executor`] (a small range of an fs file already in the page cache
//! may be copied on the polling thread: see [`ParquetReader`]):
//!
//! - [`ParquetReader`]: parquet's [`AsyncFileReader`] over an operator: the column
//!   chunks a decoder asks for at once are read in one coalesced, parallel call
//!   ([`Operator::read_ranges`](storage::Operator::read_ranges)), and the footer
//!   (with the page index, when asked) in one read;
//! - [`ParquetReaderFactory`]: DataFusion's reader factory built on it, with
//!   DataFusion's file-metadata cache;
//! - [`register`]: one call that makes an operator's files the tables DataFusion
//!   finds under a URL (`s3://bucket`, `file:///data`, `memory://`), for plain SQL;
//!   [`register_parquet`] registers one table by name.
//!
//! It is its own crate so that users of the object_store adapter
//! ([`dio_object_store`]) do not build DataFusion.
//!
//! # Example
//!
//! ```
//! use datafusion::prelude::SessionContext;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let root = dir.path().to_str().unwrap();
//!
//! // The IO runtime, and an operator on it.
//! let io = io_executor::Builder::new().name("query-io").build()?;
//! let op = storage::Operator::from_uri(&format!("fs://{root}"))?.with_executor(io.clone());
//!
//! // DataFusion finds the operator's files under file://<root>.
//! let ctx = SessionContext::new();
//! dio_parquet::register(&ctx, &format!("file://{root}"), op)?;
//!
//! // Plain SQL; every read below runs on `query-io`.
//! ctx.sql(&format!(
//!     "COPY (SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'a')) AS v(id, tag)) \
//!      TO 'file://{root}/t/part-0.parquet'"
//! ))
//! .await?
//! .collect()
//! .await?;
//! ctx.sql(&format!(
//!     "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'file://{root}/t/'"
//! ))
//! .await?;
//! let batches = ctx
//!     .sql("SELECT tag, sum(id) AS total FROM t GROUP BY tag ORDER BY tag")
//!     .await?
//!     .collect()
//!     .await?;
//! let table = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
//! assert!(table.contains("| a   | 4     |"), "{table}");
//!
//! // Shut the IO runtime down through its handle.
//! io.shutdown();
//! io.join().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! This crate adds no error type of its own: the reader speaks parquet's
//! [`ParquetError`](parquet::errors::ParquetError) (a failed read is
//! `ParquetError::External` holding our [`storage::Error`], with its operation,
//! path and context), and the DataFusion side speaks
//! [`DataFusionError`](datafusion::error::DataFusionError), as the traits they
//! implement and the session they extend do.
//!
//! # Versions
//!
//! DataFusion 55 and the parquet/arrow 59 it is built on; object_store 0.13.
#![forbid(unsafe_code)]

mod dio_parquet_format;
mod dio_parquet_format_factory;
mod parquet_reader;
mod parquet_reader_factory;
mod register;
mod registry;

pub use dio_parquet_format::DioParquetFormat;
pub use dio_parquet_format_factory::DioParquetFormatFactory;
pub use parquet_reader::{DEFAULT_FOOTER_HINT, ParquetReader};
pub use parquet_reader_factory::ParquetReaderFactory;
pub use register::{register, register_parquet};

#[cfg(doc)]
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
#[cfg(doc)]
use parquet::arrow::async_reader::AsyncFileReader;
