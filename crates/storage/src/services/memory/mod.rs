//! The memory backend.

mod backend;

pub use backend::Memory;
