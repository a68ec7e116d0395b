//! [`S3Object`]: an object opened for a reader; every chunk is a ranged GET.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

use super::core::Core;
use crate::raw::{ByteRange, IoJob, RandomRead};
use crate::{Conditions, Error, ErrorKind, Metadata};

/// An object as it was when opened (HEAD): its size and ETag. Each read is a GET of
/// the range with `If-Match` on that ETag, so a reader never mixes two versions of
/// an object: if it was replaced, the read fails instead. From a server that gave
/// no ETag, each answer's size and date are held to the opened object's instead.
///
/// A read that finds the object replaced fails with
/// [`Error::changed_while_read`] (temporary: reading again reads the new
/// version), or, where the caller named that version, with the caller's
/// [`ErrorKind::PreconditionFailed`].
#[derive(Debug)]
pub(crate) struct S3Object {
    pub(crate) core: Arc<Core>,
    pub(crate) key: String,
    pub(crate) meta: Metadata,
    /// The caller asked for this version ([`Conditions::one_version`]).
    pub(crate) callers_version: bool,
}

impl S3Object {
    /// The condition every read of this object carries: its version's ETag.
    pub(crate) fn pinned(&self) -> Conditions {
        match self.meta.etag() {
            Some(etag) => Conditions::new().with_if_match(etag),
            None => Conditions::new(),
        }
    }

    /// `err` of a read of this object: a failed pin is the caller's condition
    /// only if the caller named the version. A range refused as past the end is
    /// of an object that shrank since it was opened (every range read is within
    /// the opened size; a server may check the range before `If-Match`, or have no
    /// ETag to pin by): changed as well, not the caller's range.
    pub(crate) fn read_error(&self, err: Error) -> Error {
        let changed = "the object was replaced while it was read";
        match (err.kind(), self.callers_version) {
            (ErrorKind::PreconditionFailed, false) => err.changed_while_read(changed),
            (ErrorKind::RangeNotSatisfiable, false) => err.changed_while_read(
                "the object was replaced while it was read: it is shorter than when opened",
            ),
            (ErrorKind::RangeNotSatisfiable, true) => {
                err.restated(ErrorKind::PreconditionFailed).with_message(
                    "the object is no longer the version asked for: it is shorter than \
                     when opened",
                )
            }
            _ => err,
        }
    }
}

impl RandomRead for S3Object {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::future(async move {
            let range = ByteRange::new(range);
            if self.meta.etag().is_some() {
                return self
                    .core
                    .get(&self.key, range, &self.pinned())
                    .await
                    .map_err(|e| self.read_error(e));
            }
            // No ETag to pin the reads to: an answer for an object of another size
            // or date is another version, and so is a range refused as past the
            // end (this one is within the opened size).
            let (answered, bytes) = self
                .core
                .get_with_meta(&self.key, range, &Conditions::new())
                .await
                .map_err(|e| self.read_error(e))?;
            if let Some(answered) = answered {
                let dates = (self.meta.last_modified(), answered.last_modified());
                let other_date = matches!(dates, (Some(a), Some(b)) if a != b);
                if answered.content_length() != self.meta.content_length() || other_date {
                    return Err(self.read_error(
                        Error::new(ErrorKind::PreconditionFailed)
                            .with_message(
                                "the object changed while it was read: the server gives no \
                                 ETag to pin it by, and its size or date differ from when it \
                                 was opened",
                            )
                            .with_context("range", range),
                    ));
                }
            }
            Ok(bytes)
        })
    }
}
