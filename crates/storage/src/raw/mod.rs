//! What backend authors touch: the [`Access`] trait and the helpers every backend
//! shares (paths, ranges, buffers, read planning). Less stable than the user-facing
//! types.

mod access;
mod buffer;
mod coalesce;
mod path;
mod range;
mod read_batch;

pub(crate) use access::too_large;
pub use access::{
    ABORT_FAILED, Access, BatchJob, ChunksRead, IoJob, ListArgs, OpenArgs, Opened, RandomRead,
    RawList, RawWrite, ReadArgs,
};
pub(crate) use buffer::allocate;
pub use buffer::{BufferPool, PooledBuf, SpaceTail};
pub use coalesce::{Group, PlanLimits, ReadPlan, plan};
pub(crate) use path::shown_path;
pub(crate) use path::too_long_message;
pub use path::{MAX_PATH_LEN, normalize_dir_path, normalize_file_path, normalize_path, parent_dir};
pub use range::ByteRange;
pub use read_batch::ReadBatch;
