//! [`FsWriter`]: an atomic write through a temporary file.

use bytes::Bytes;

use std::sync::Arc;

use super::core::{TempFile, write_all};
use super::fd_cache::FdCache;
use crate::Metadata;
use crate::raw::{IoJob, RawWrite};

/// Appends to a temporary file beside the target; `close` renames it into place.
/// Dropped, aborted or failed, the temporary file removes itself (a failed job's
/// error says if it could not).
#[derive(Debug)]
pub(super) struct FsWriter {
    pub(super) temp: TempFile,
    pub(super) sync: bool,
    /// Commit only if the target does not exist.
    pub(super) no_replace: bool,
    /// The target, dropped from the open files on commit.
    pub(super) path: String,
    pub(super) files: Arc<FdCache>,
}

impl RawWrite for FsWriter {
    fn write(self: Box<Self>, data: Bytes) -> IoJob<Box<dyn RawWrite>> {
        IoJob::blocking(move || match write_all(&self.temp.fd, &data) {
            Ok(()) => Ok(self as Box<dyn RawWrite>),
            // The write is over: its temporary file goes now, not with the writer.
            Err(e) => Err(self.temp.discard_after(e)),
        })
    }

    fn close(self: Box<Self>) -> IoJob<Metadata> {
        IoJob::blocking(move || {
            let FsWriter {
                temp,
                sync,
                no_replace,
                path,
                files,
            } = *self;
            let committed = temp.commit(sync, no_replace);
            files.forget(&path);
            committed
        })
    }

    fn abort(self: Box<Self>) -> IoJob<()> {
        IoJob::blocking(move || self.temp.discard())
    }
}
