//! [`object_store`] adapters for dedicated IO.
//!
//! # The problem
//!
//! Query engines reach storage through [`ObjectStore`](object_store::ObjectStore):
//! DataFusion registers a store under a URL, and its parquet, CSV and listing code
//! call `get_ranges`, `get_opts`, `head`, `list`. Whatever store that is does its IO
//! where it is polled: on the engine's own runtime, stalling its CPU work.
//!
//! [`DioStore`] is an `ObjectStore` over our [`storage::Operator`] (fs, memory, S3):
//! every request, every chunk of a body and every page of a listing runs on the
//! operator's executor, and range reads are coalesced and issued in parallel.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use dio_object_store::DioStore;
//! use object_store::path::Path;
//! use object_store::{ObjectStore, ObjectStoreExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let io = io_executor::Builder::new().name("engine-io").build()?;
//! let op = storage::Operator::from_uri(&format!("fs://{}", dir.path().display()))?
//!     .with_executor(io.clone());
//! let store: Arc<dyn ObjectStore> = Arc::new(DioStore::new(op));
//!
//! // A query engine's current-thread runtime: it only ever sees results.
//! let engine = tokio::runtime::Builder::new_current_thread().build()?;
//! engine.block_on(async {
//!     let path = Path::from("t/part-0.parquet");
//!     store.put(&path, vec![7_u8; 1 << 20].into()).await?;
//!     // Column chunks: coalesced and read in parallel on the executor.
//!     let chunks = store.get_ranges(&path, &[0..4096, 500_000..600_000]).await?;
//!     assert_eq!(chunks[1].len(), 100_000);
//!     let meta = store.head(&path).await?;
//!     assert_eq!(meta.size, 1 << 20);
//!     Ok::<_, object_store::Error>(())
//! })?;
//!
//! io.shutdown();
//! io.blocking_join();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod compat;
mod convert;
mod dio_store;
mod dio_upload;

pub use dio_store::DioStore;
