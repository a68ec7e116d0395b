//! What users touch.

pub(crate) mod blocking;
pub(crate) mod burst;
pub(crate) mod conditions;
pub(crate) mod encryption;
pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod io_future;
pub(crate) mod lister;
pub(crate) mod metadata;
pub(crate) mod op_with;
pub(crate) mod open_object;
pub(crate) mod operator;
pub(crate) mod reader;
pub(crate) mod writer;
