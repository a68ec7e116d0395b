//! The S3 backend: hyper + rustls + SigV4, every request on the executor.

mod backend;
mod body;
#[cfg(feature = "credential-chain")]
mod chain;
mod checksum;
pub(crate) mod config;
mod core;
mod credentials;
mod limiter;
mod lister;
mod object;
mod proxy;
mod writer;
mod xml;

pub use backend::S3;
pub use checksum::Checksum;
pub use config::{Credentials, RetryPolicy, S3Builder};
pub use credentials::CredentialInfo;
