//! [`FsObject`]: an open file serving positional reads.

use std::ops::Range;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use bytes::Bytes;

use super::core::read_exact_at;
use crate::Metadata;
use crate::raw::{BufferPool, IoJob, RandomRead};

/// An open file, shared by a reader's chunk jobs: each is one `pread` into a pooled
/// buffer.
#[derive(Debug)]
pub(super) struct FsObject {
    pub(super) fd: OwnedFd,
    pub(super) meta: Metadata,
    pub(super) pool: Arc<BufferPool>,
}

impl RandomRead for FsObject {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::blocking(move || read_exact_at(&self.fd, range, &self.pool))
    }

    fn close(self: Arc<Self>) -> IoJob<()> {
        IoJob::blocking(move || {
            drop(self);
            Ok(())
        })
    }
}
