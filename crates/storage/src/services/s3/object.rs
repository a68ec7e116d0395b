//! [`S3Object`]: an object opened for a reader; every chunk is a ranged GET.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::core::Core;
use crate::raw::{ByteRange, IoJob, RandomRead};
use crate::{Conditions, Metadata};

/// An object as it was when opened (HEAD): its size and ETag. Each read is a GET of
/// the range with `If-Match` on that ETag, so a reader never mixes two versions of
/// an object: if it was replaced, the read fails instead.
#[derive(Debug)]
pub(crate) struct S3Object {
    pub(crate) core: Arc<Core>,
    pub(crate) key: String,
    pub(crate) meta: Metadata,
}

impl S3Object {
    /// The condition every read of this object carries: its version's ETag.
    pub(crate) fn pinned(&self) -> Conditions {
        match self.meta.etag() {
            Some(etag) => Conditions::new().with_if_match(etag),
            None => Conditions::new(),
        }
    }
}

impl RandomRead for S3Object {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::future(async move {
            self.core
                .get(&self.key, ByteRange::new(range), &self.pinned())
                .await
        })
    }
}
