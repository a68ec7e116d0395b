//! [`object_store`] adapters for dedicated IO: every call, every poll of a result
//! stream and every part of an upload runs on an [`io_executor::Executor`].
//!
//! # The problem
//!
//! An [`ObjectStore`](object_store::ObjectStore) does its IO wherever it is polled.
//! A query engine that calls `AmazonS3` or `LocalFileSystem` from its own runtime
//! gets that store's HTTP connection tasks, response bodies, listings and blocking
//! file reads on its CPU threads: they stall its work, and pooled connections die with
//! whichever runtime created them ("dispatch task is gone"). Moving only the request
//! elsewhere is not enough: the body stream of a `get`, the pages of a `list` and the
//! parts of a multipart upload would still be polled, and so do their IO, on the
//! caller's runtime.
//!
//! [`IoObjectStore`] wraps any store and moves all of it onto an executor. Bytes come
//! back through a bounded channel, so memory stays bounded and a slow reader slows the
//! store down instead of piling up data. Dropping a stream or a pending call cancels
//! its work on the executor.
//!
//! # Example
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
//! # Adapters
//!
//! - [`IoObjectStore`]: an existing `ObjectStore` with all of its work on an
//!   executor. Supported object_store version: 0.13 (the one DataFusion 55 uses).
//!
//! # Errors
//!
//! A job that does not finish on the executor (it shut down, the job panicked) fails
//! with [`object_store::Error::Generic`] whose `store` is `"IoObjectStore"` and whose
//! source is an [`ExecutorError`]; it is never swallowed, and a stream never ends
//! early without one.
#![forbid(unsafe_code)]

mod block_on;
mod compat;
mod executor_error;
mod file_stream;
mod io_multipart_upload;
mod io_object_store;
mod pump_stream;

pub use executor_error::ExecutorError;
pub use io_object_store::IoObjectStore;
