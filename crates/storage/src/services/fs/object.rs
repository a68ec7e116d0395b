//! [`FsObject`]: an open file serving positional reads.

use std::ops::Range;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use bytes::Bytes;

use super::core::{read_exact_at, read_many_at};
use super::fd_cache::CachedFile;
use crate::Metadata;
use crate::raw::{BatchJob, BufferPool, IoJob, RandomRead, ReadBatch};

/// From this many reads up, each job of a batch opens the file again for itself (about 1 us,
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

    fn read_many(self: Arc<Self>, batch: Arc<ReadBatch>) -> Option<BatchJob> {
        Some(IoJob::blocking(move || {
            // Many reads of a file in page cache: on an open file description of
            // this job's own, not shared with the jobs other threads are running.
            // Opened for the first chunk this job takes (none for a job that
            // starts after every chunk is taken).
            let mut own: Option<Option<OwnedFd>> = None;
            batch.serve(|reads| {
                let own = own.get_or_insert_with(|| {
                    (batch.ranges().len() >= OWN_FILE_MIN_READS && self.file.local)
                        .then(|| self.file.reopen())
                        .flatten()
                });
                read_many_at(
                    own.as_ref().unwrap_or(&self.file.fd),
                    reads,
                    &self.pool,
                    batch.max_buffer_size(),
                )
            })
        }))
    }

    fn close(self: Arc<Self>) -> IoJob<()> {
        // Only the last reference to a file closes it, and closing the last
        // descriptor of a file deleted meanwhile frees its blocks, which may wait on
        // the device: that is a job. Any other reference (the fd cache's, another
        // reader's) is dropped where it is, with no hand-off.
        let Some(object) = Arc::into_inner(self) else {
            return IoJob::ready(Ok(()));
        };
        match Arc::into_inner(object.file) {
            None => IoJob::ready(Ok(())),
            Some(last) => IoJob::blocking(move || {
                drop(last);
                Ok(())
            }),
        }
    }
}
