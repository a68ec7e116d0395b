//! The S3 backend: hyper + rustls + SigV4, every request on the executor.

mod backend;
mod body;
mod config;
mod core;
mod limiter;
mod lister;
mod object;
mod writer;
mod xml;

pub use backend::S3;
pub use config::{Credentials, RetryPolicy, S3Builder};
