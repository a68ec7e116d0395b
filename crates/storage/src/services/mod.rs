//! The backends: one module each.

pub(crate) mod fs;
pub(crate) mod memory;
pub mod s3;

pub use fs::Fs;
pub use memory::Memory;
pub use s3::S3;
