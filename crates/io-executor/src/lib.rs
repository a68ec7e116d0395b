//! A dedicated IO runtime.
//!
//! # The problem
//!
//! An IO library (an object store client, a storage layer) that runs its IO on
//! whatever tokio runtime its caller polls it from leaks that IO into the caller:
//! blocking file reads and slow `stat`s stall the caller's CPU work, and HTTP
//! connection tasks live and die with the caller's runtime ("dispatch task is gone").
//!
//! `io-executor` gives such a library its own threads: a pool of named worker
//! threads, each running its own current-thread tokio runtime for async IO, and a
//! lane of blocking threads for sync IO (`pread`, `fsync`, `readdir`). Jobs go in
//! over channels; the caller gets a [`JoinHandle`] it can await from any runtime or
//! wait on from a plain thread. The caller's runtime only ever sees a wake-up when a
//! result is ready.
//!
//! Copies at memory speed (a large read out of the page cache) can go in as *bulk*
//! jobs ([`Executor::spawn_blocking_bulk`]): they take turns on a few blocking
//! threads ([`Builder::bulk_threads`], half the cores by default), one after another
//! on the same thread, instead of each copying into its own buffer on a thread of
//! its own, all at once, on cores the caller wants.
//!
//! # Example
//!
//! ```
//! use std::num::NonZeroUsize;
//!
//! # fn main() -> std::io::Result<()> {
//! let io = io_executor::Builder::new()
//!     .name("engine-io")
//!     .worker_threads(NonZeroUsize::new(2).unwrap())
//!     .build()?;
//!
//! // A query engine on its own current-thread runtime...
//! let engine = tokio::runtime::Builder::new_current_thread().build()?;
//! let total = engine.block_on(async {
//!     // ...spawns column-chunk reads in parallel on the IO pool,
//!     let chunks: Vec<_> = (0..4)
//!         .map(|i| io.spawn_blocking(move || vec![i as u8; 1024]))
//!         .collect();
//!     // and awaits them; its own thread did no IO.
//!     let mut total = 0;
//!     for chunk in chunks {
//!         total += chunk.await.expect("read job").len();
//!     }
//!     total
//! });
//! assert_eq!(total, 4096);
//!
//! // Explicit shutdown: stop intake, drain, wait for the threads.
//! io.shutdown();
//! io.blocking_join();
//! # Ok(())
//! # }
//! ```
//!
//! # Modes
//!
//! See [`Executor`]: a dedicated pool ([`Builder`]), the lazily built
//! [`Executor::global`] pool, the caller's own runtime ([`Executor::current`]), or an
//! executor of your own ([`Executor::custom`]).
#![forbid(unsafe_code)]

mod block_on;
mod blocking;
mod builder;
mod bulk;
mod completion;
mod context;
mod executor;
mod exit_signal;
mod join_error;
mod join_handle;
mod metrics;
mod shared;
mod spawn;
mod sync;
mod task;
mod worker;
mod worker_local;

pub use block_on::block_on;
pub use builder::Builder;
pub use executor::{Executor, join_blocking, spawn_cleanup};
pub use join_error::{JoinError, JoinErrorKind};
pub use join_handle::JoinHandle;
pub use metrics::Metrics;
pub use spawn::{BlockingFn, BoxFuture, Spawn};
pub use worker_local::WorkerLocal;
