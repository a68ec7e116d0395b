//! The backends: one module each.

pub(crate) mod fs;
pub(crate) mod memory;

pub use fs::Fs;
pub use memory::Memory;
