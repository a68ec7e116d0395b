//! [`object_store`] adapters for dedicated IO: a query engine's object store with
//! every byte of its IO on an [`io_executor::Executor`].
//!
//! # The problem
//!
//! Query engines reach storage through [`ObjectStore`](object_store::ObjectStore):
//! DataFusion registers a store under a URL, and its parquet, CSV and listing code
//! call `get_ranges`, `get_opts`, `head`, `list`. A store does its IO wherever it is
//! polled: on the engine's own runtime, where HTTP connection tasks, response bodies,
//! listings and blocking file reads stall its CPU work, and pooled connections die
//! with whichever runtime created them ("dispatch task is gone"). Moving only the
//! request elsewhere is not enough: the body stream of a `get`, the pages of a `list`
//! and the parts of a multipart upload would still be polled, and do their IO, on
//! the caller's runtime.
//!
//! # Example: DataFusion on our IO runtime
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use datafusion::prelude::SessionContext;
//! use dio_object_store::DioStore;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let io = io_executor::Builder::new().name("engine-io").build()?;
//! // Credentials from the environment; every request and body on `io`.
//! let op = storage::Operator::from_uri("s3://my-bucket?region=eu-west-1")?.with_executor(io.clone());
//!
//! let ctx = SessionContext::new();
//! let url = url::Url::parse("s3://my-bucket")?;
//! ctx.register_object_store(&url, Arc::new(DioStore::new(op)));
//! ctx.sql("CREATE EXTERNAL TABLE trips STORED AS PARQUET LOCATION 's3://my-bucket/trips/'")
//!     .await?;
//! ctx.sql("SELECT count(*) FROM trips").await?.show().await?;
//!
//! io.shutdown();
//! io.join().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Adapters
//!
//! - [`DioStore`]: an `ObjectStore` over our [`storage::Operator`] (fs, memory, S3).
//!   Every request, every chunk of a body and every page of a listing runs on the
//!   operator's executor (but a small read of a cached fs file the backend holds
//!   open, tried on the polling thread where it cannot wait: see [`DioStore`]);
//!   `get_ranges` is coalesced and read in parallel.
//! - [`IoObjectStore`]: any existing `ObjectStore` (`AmazonS3`, `LocalFileSystem`,
//!   `InMemory`, your own) with all of its work moved onto an executor. Bytes come
//!   back through a bounded channel, so memory stays bounded and a slow reader slows
//!   the store down instead of piling up data. Dropping a stream or a pending call
//!   cancels its work on the executor.
//!
//! ```
//! use std::num::NonZeroUsize;
//!
//! use dio_object_store::IoObjectStore;
//! use futures_util::TryStreamExt;
//! use object_store::memory::InMemory;
//! use object_store::path::Path;
//! use object_store::{ObjectStore, ObjectStoreExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let io = io_executor::Builder::new()
//!     .name("store-io")
//!     .worker_threads(NonZeroUsize::new(2).unwrap())
//!     .build()?;
//! // Any store: `AmazonS3`, `LocalFileSystem`, `InMemory`, your own.
//! let store = IoObjectStore::new(InMemory::new(), io.clone());
//!
//! // The caller: a current-thread runtime that should only ever see results.
//! let caller = tokio::runtime::Builder::new_current_thread().build()?;
//! caller.block_on(async {
//!     let path = Path::from("data/part-0.parquet");
//!     store.put(&path, vec![7_u8; 1 << 20].into()).await?;
//!
//!     // The body is polled on the executor and handed over in bounded batches.
//!     let bytes = store.get_range(&path, 4096..8192).await?;
//!     assert_eq!(bytes.len(), 4096);
//!
//!     // Listings too: the caller only receives finished pages.
//!     let listed: Vec<_> = store.list(Some(&Path::from("data"))).try_collect().await?;
//!     assert_eq!(listed.len(), 1);
//!     Ok::<_, object_store::Error>(())
//! })?;
//!
//! io.shutdown();
//! io.blocking_join();
//! # Ok(())
//! # }
//! ```
//!
//! Supported object_store version: 0.13 (the one DataFusion 55 uses).
//!
//! # Errors
//!
//! `DioStore` maps our [`storage::ErrorKind`]s to object_store's variants and keeps
//! our [`storage::Error`] (operation, path, context) as the source. For
//! `IoObjectStore`, a job that does not finish on the executor (it shut down, the
//! job panicked) fails with [`object_store::Error::Generic`] whose `store` is
//! `"IoObjectStore"` and whose source is an [`ExecutorError`]; it is never
//! swallowed, and a stream never ends early without one.
#![forbid(unsafe_code)]

mod compat;
mod convert;
mod dio_store;
mod dio_upload;
mod executor_error;
mod file_stream;
mod io_multipart_upload;
mod io_object_store;
mod pump_stream;

pub use dio_store::DioStore;
pub use executor_error::ExecutorError;
pub use io_object_store::IoObjectStore;
