//! The local filesystem backend.

mod backend;
mod core;
mod fd_cache;
mod lister;
mod object;
mod writer;

pub use backend::Fs;
