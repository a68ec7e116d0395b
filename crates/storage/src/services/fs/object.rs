//! [`FsObject`]: an open file serving positional reads.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::core::{read_exact_at, read_many_at};
use super::fd_cache::CachedFile;
use crate::Metadata;
use crate::raw::{BufferPool, IoJob, RandomRead};

/// From this many reads up, a batch opens the file again for itself (about 1 us,
/// a `pread` or two from page cache) before it reads; see [`CachedFile::reopen`].
const OWN_FILE_MIN_READS: usize = 32;

/// An open file, shared by a reader's chunk jobs: each is one `pread` into a pooled
/// buffer.
#[derive(Debug)]
pub(super) struct FsObject {
    pub(super) file: Arc<CachedFile>,
    pub(super) meta: Metadata,
    pub(super) pool: Arc<BufferPool>,
}

impl RandomRead for FsObject {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::blocking(move || read_exact_at(&self.file.fd, range, &self.pool))
    }

    fn read_many(self: Arc<Self>, ranges: Vec<Range<u64>>) -> Option<IoJob<Vec<Bytes>>> {
        Some(IoJob::blocking(move || {
            // Many reads of a file in page cache: on an open file description of
            // their own, not shared with the batches other threads are reading.
            let own = (ranges.len() >= OWN_FILE_MIN_READS && self.file.local)
                .then(|| self.file.reopen())
                .flatten();
            read_many_at(own.as_ref().unwrap_or(&self.file.fd), ranges, &self.pool)
        }))
    }

    fn close(self: Arc<Self>) -> IoJob<()> {
        IoJob::blocking(move || {
            drop(self);
            Ok(())
        })
    }
}
