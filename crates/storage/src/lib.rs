//! An `Operator` over fs, memory and S3 whose IO runs on an
//! [`io_executor::Executor`] (the global pool unless one is given): everything
//! but small fs reads of pages already in memory, which
//! [`Options::read_now`] serves on the caller's thread.
//!
//! # The problem
//!
//! A storage library that does its IO on the caller's runtime stalls it: blocking
//! file reads and slow `stat`s run on the caller's threads, and moving only the
//! first request elsewhere is not enough, because every later poll of a reader, a
//! listing or a writer would come back. Here, opening, `stat`, listing, every chunk
//! of a [`Reader`], every flush of a [`Writer`] run on an
//! [`io_executor::Executor`]; the caller's runtime only collects finished work, and
//! the hand-off costs no extra copy. The exception, [`Options::read_now`] (on by
//! default), never waits for a device: on fs, a small read whose pages are in
//! memory, and the open of a file the backend holds open (looked up only in the
//! kernel's cache), happen on the caller's thread; the memory backend does no IO
//! and runs where it is called.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> storage::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! // A path as it is (`Operator::from_uri("fs:///data")` takes a URL, %-decoded).
//! let op = storage::Operator::new(storage::services::Fs::new(dir.path())?);
//!
//! op.write("data/part-0.parquet", vec![1_u8; 1 << 20]).await?;
//!
//! // Column chunks: issued together, read in parallel on the executor.
//! let chunks = op
//!     .read_ranges("data/part-0.parquet", vec![0..4096, 8192..16384, 500_000..600_000])
//!     .await?;
//! assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [4096, 8192, 100_000]);
//!
//! // A range beyond the end is an error that says how big the object is.
//! let err = op.read_range("data/part-0.parquet", 0..(2 << 20)).await.unwrap_err();
//! assert_eq!(err.kind(), storage::ErrorKind::RangeNotSatisfiable);
//! assert_eq!(err.context("size"), Some("1048576"));
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! [`Operator`] and the types it returns are what users touch; [`raw`] is what
//! backend authors touch ([`raw::Access`]); [`services`] holds the backends.
#![forbid(unsafe_code)]

pub mod raw;
pub mod services;
mod types;

pub use types::blocking::{BlockingLister, BlockingOperator, BlockingReader, BlockingWriter};
pub use types::conditions::{Conditions, WriteOptions};
pub use types::encryption::{CustomerKey, Encryption};
pub use types::entry::Entry;
pub use types::error::{Error, ErrorKind, Result};
pub use types::io_future::IoFuture;
pub use types::lister::Lister;
pub use types::metadata::{EntryMode, Metadata};
pub use types::op_with::{
    ListerWith, ReadRangesWith, ReadWith, ReaderWith, StatWith, TransferWith, WriteWith, WriterWith,
};
pub use types::operator::{Operator, Options};
pub use types::reader::Reader;
pub use types::writer::Writer;
