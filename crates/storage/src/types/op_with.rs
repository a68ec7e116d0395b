//! The `*_with` builders: an operation with options, started when awaited.
//!
//! `op.read_with(path).range(0..8).if_match(etag).await`: each builder collects its
//! options and submits the operation when it is awaited (`IntoFuture`), or when
//! [`IntoFuture::into_future`] is called, which returns the [`IoFuture`] at once
//! with its IO already running, like the plain methods do.

use std::fmt;
use std::future::IntoFuture;
use std::ops::{Range, RangeBounds};
use std::time::SystemTime;

use bytes::Bytes;

use crate::raw::ByteRange;
use crate::{Conditions, IoFuture, Lister, Metadata, Operator, Reader, WriteOptions, Writer};

/// Setters for a builder's [`Conditions`].
macro_rules! condition_setters {
    () => {
        /// Only if the object's ETag is one of these (comma-separated, or `*`);
        /// see [`Conditions`].
        pub fn if_match(mut self, etag: impl Into<String>) -> Self {
            self.conditions.if_match = Some(etag.into());
            self
        }

        /// Only if the object's ETag is none of these; see [`Conditions`].
        pub fn if_none_match(mut self, etag: impl Into<String>) -> Self {
            self.conditions.if_none_match = Some(etag.into());
            self
        }

        /// Only if the object changed after `time`; see [`Conditions`].
        pub fn if_modified_since(mut self, time: SystemTime) -> Self {
            self.conditions.if_modified_since = Some(time);
            self
        }

        /// Only if the object has not changed after `time`; see [`Conditions`].
        pub fn if_unmodified_since(mut self, time: SystemTime) -> Self {
            self.conditions.if_unmodified_since = Some(time);
            self
        }

        /// All conditions at once, replacing any set before.
        pub fn conditions(mut self, conditions: Conditions) -> Self {
            self.conditions = conditions;
            self
        }
    };
}

/// Setters for a builder's [`WriteOptions`].
macro_rules! write_setters {
    () => {
        /// Fail with [`ErrorKind::AlreadyExists`](crate::ErrorKind::AlreadyExists) if
        /// the target exists; see [`WriteOptions`].
        pub fn if_not_exists(mut self, if_not_exists: bool) -> Self {
            self.options.if_not_exists = if_not_exists;
            self
        }

        /// The content type stored with the object (S3); see [`WriteOptions`].
        pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
            self.options.content_type = Some(content_type.into());
            self
        }

        /// The storage class of the object (S3; refused by fs and memory); see
        /// [`WriteOptions`].
        pub fn storage_class(mut self, storage_class: impl Into<String>) -> Self {
            self.options.storage_class = Some(storage_class.into());
            self
        }

        /// Server-side encryption of the object (S3; refused by fs and memory); see
        /// [`Encryption`](crate::Encryption).
        pub fn encryption(mut self, encryption: crate::Encryption) -> Self {
            self.options.encryption = Some(encryption);
            self
        }

        /// All write options at once, replacing any set before.
        pub fn options(mut self, options: WriteOptions) -> Self {
            self.options = options;
            self
        }
    };
}

/// [`Operator::read_with`]: a read with a range and [`Conditions`].
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct ReadWith {
    op: Operator,
    path: String,
    range: ByteRange,
    conditions: Conditions,
}

impl ReadWith {
    pub(crate) fn new(op: Operator, path: &str) -> Self {
        Self {
            op,
            path: path.to_owned(),
            range: ByteRange::FULL,
            conditions: Conditions::default(),
        }
    }

    /// Only these bytes (the strict rules of [`Operator::read_range`]).
    pub fn range(mut self, range: impl RangeBounds<u64>) -> Self {
        self.range = ByteRange::new(range);
        self
    }

    /// Only these bytes, in any form [`ByteRange`] has (HTTP's, a suffix).
    pub fn byte_range(mut self, range: ByteRange) -> Self {
        self.range = range;
        self
    }

    condition_setters!();
}

impl IntoFuture for ReadWith {
    type Output = crate::Result<Bytes>;
    type IntoFuture = IoFuture<Bytes>;

    fn into_future(self) -> IoFuture<Bytes> {
        self.op
            .read_args("read_with", &self.path, self.range, self.conditions)
    }
}

/// [`Operator::read_ranges_with`]: several ranges of one object, with
/// [`Conditions`] on its version.
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct ReadRangesWith {
    op: Operator,
    path: String,
    ranges: Vec<Range<u64>>,
    conditions: Conditions,
}

impl ReadRangesWith {
    pub(crate) fn new(op: Operator, path: &str, ranges: Vec<Range<u64>>) -> Self {
        Self {
            op,
            path: path.to_owned(),
            ranges,
            conditions: Conditions::default(),
        }
    }

    condition_setters!();
}

impl IntoFuture for ReadRangesWith {
    type Output = crate::Result<Vec<Bytes>>;
    type IntoFuture = IoFuture<Vec<Bytes>>;

    fn into_future(self) -> IoFuture<Vec<Bytes>> {
        self.op
            .read_ranges_args("read_ranges_with", &self.path, self.ranges, self.conditions)
    }
}

/// [`Operator::reader_with`]: a [`Reader`] of a range, with [`Conditions`] and its
/// own chunking.
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct ReaderWith {
    op: Operator,
    path: String,
    range: ByteRange,
    conditions: Conditions,
    chunk_size: usize,
    prefetch: usize,
    /// `None`: the reader's chunk size.
    whole_up_to: Option<u64>,
}

impl ReaderWith {
    pub(crate) fn new(op: Operator, path: &str) -> Self {
        let options = *op.options();
        Self {
            op,
            path: path.to_owned(),
            range: ByteRange::FULL,
            conditions: Conditions::default(),
            chunk_size: options.chunk_size,
            prefetch: options.prefetch,
            whole_up_to: None,
        }
    }

    /// Read only these bytes (the strict rules of [`Operator::read_range`]).
    pub fn range(mut self, range: impl RangeBounds<u64>) -> Self {
        self.range = ByteRange::new(range);
        self
    }

    /// Read only these bytes, in any form [`ByteRange`] has (HTTP's, a suffix).
    pub fn byte_range(mut self, range: ByteRange) -> Self {
        self.range = range;
        self
    }

    /// Bytes per chunk read ahead (default [`Options::chunk_size`](crate::Options::chunk_size)),
    /// at most [`Options::max_buffer_size`](crate::Options::max_buffer_size).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Chunks read ahead (default [`Options::prefetch`](crate::Options::prefetch)).
    pub fn prefetch(mut self, chunks: usize) -> Self {
        self.prefetch = chunks.max(1);
        self
    }

    /// A range of at most this many bytes is read whole, as one chunk, by the same
    /// job that opens the object: one hand-off (none for a small one served on the
    /// caller's thread, see [`Options::read_now`](crate::Options::read_now)) and one
    /// contiguous buffer. Larger
    /// ones are read in chunks, the first by the open job; or, for a file the fs
    /// backend holds open (the reader is then opened on the caller's thread), the
    /// first chunk is submitted with the others.
    /// Default: the reader's
    /// [`chunk_size`](Self::chunk_size).
    pub fn whole_up_to(mut self, bytes: u64) -> Self {
        self.whole_up_to = Some(bytes);
        self
    }

    condition_setters!();
}

impl IntoFuture for ReaderWith {
    type Output = crate::Result<Reader>;
    type IntoFuture = IoFuture<Reader>;

    fn into_future(self) -> IoFuture<Reader> {
        self.op.reader_args(
            &self.path,
            self.range,
            self.conditions,
            self.chunk_size,
            self.prefetch,
            self.whole_up_to.unwrap_or(self.chunk_size as u64),
        )
    }
}

/// [`Operator::stat_with`]: metadata, if [`Conditions`] hold.
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct StatWith {
    op: Operator,
    path: String,
    conditions: Conditions,
}

impl StatWith {
    pub(crate) fn new(op: Operator, path: &str) -> Self {
        Self {
            op,
            path: path.to_owned(),
            conditions: Conditions::default(),
        }
    }

    condition_setters!();
}

impl IntoFuture for StatWith {
    type Output = crate::Result<Metadata>;
    type IntoFuture = IoFuture<Metadata>;

    fn into_future(self) -> IoFuture<Metadata> {
        self.op.stat_args(&self.path, self.conditions)
    }
}

/// [`Operator::write_with`]: a write with [`WriteOptions`]. Its `Debug` output gives
/// the data's length, not the data.
#[must_use = "a builder does nothing until it is awaited"]
pub struct WriteWith {
    op: Operator,
    path: String,
    data: Bytes,
    options: WriteOptions,
}

impl fmt::Debug for WriteWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteWith")
            .field("op", &self.op)
            .field("path", &self.path)
            .field("len", &self.data.len())
            .field("options", &self.options)
            .finish()
    }
}

impl WriteWith {
    pub(crate) fn new(op: Operator, path: &str, data: Bytes) -> Self {
        Self {
            op,
            path: path.to_owned(),
            data,
            options: WriteOptions::default(),
        }
    }

    /// Replace the target only if its ETag is `etag` (atomically; see
    /// [`WriteOptions`] for the backends that can, and for `*` and lists of
    /// ETags).
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.options.if_match = Some(etag.into());
        self
    }

    write_setters!();
}

impl IntoFuture for WriteWith {
    type Output = crate::Result<Metadata>;
    type IntoFuture = IoFuture<Metadata>;

    fn into_future(self) -> IoFuture<Metadata> {
        self.op.write_args(&self.path, self.data, self.options)
    }
}

/// [`Operator::writer_with`]: a [`Writer`] whose commit obeys [`WriteOptions`].
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct WriterWith {
    op: Operator,
    path: String,
    options: WriteOptions,
}

impl WriterWith {
    pub(crate) fn new(op: Operator, path: &str) -> Self {
        Self {
            op,
            path: path.to_owned(),
            options: WriteOptions::default(),
        }
    }

    /// Commit only if the target's ETag is still `etag` (see [`WriteOptions`] for
    /// `*` and lists of ETags).
    pub fn if_match(mut self, etag: impl Into<String>) -> Self {
        self.options.if_match = Some(etag.into());
        self
    }

    write_setters!();
}

impl IntoFuture for WriterWith {
    type Output = crate::Result<Writer>;
    type IntoFuture = IoFuture<Writer>;

    fn into_future(self) -> IoFuture<Writer> {
        self.op.writer_args(&self.path, self.options)
    }
}

/// [`Operator::copy_with`] and [`Operator::rename_with`]: a copy or a move that may
/// refuse to replace its target.
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct TransferWith {
    op: Operator,
    rename: bool,
    from: String,
    to: String,
    options: WriteOptions,
}

impl TransferWith {
    pub(crate) fn new(op: Operator, rename: bool, from: &str, to: &str) -> Self {
        Self {
            op,
            rename,
            from: from.to_owned(),
            to: to.to_owned(),
            options: WriteOptions::default(),
        }
    }

    write_setters!();
}

impl IntoFuture for TransferWith {
    type Output = crate::Result<()>;
    type IntoFuture = IoFuture<()>;

    fn into_future(self) -> IoFuture<()> {
        self.op
            .transfer_args(self.rename, &self.from, &self.to, self.options)
    }
}

/// [`Operator::lister_with`]: a listing, one level or recursive, from a start.
#[derive(Debug)]
#[must_use = "a builder does nothing until it is awaited"]
pub struct ListerWith {
    op: Operator,
    path: String,
    recursive: bool,
    start_after: Option<String>,
}

impl ListerWith {
    pub(crate) fn new(op: Operator, path: &str) -> Self {
        Self {
            op,
            path: path.to_owned(),
            recursive: false,
            start_after: None,
        }
    }

    /// Every entry at any depth.
    pub fn recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// Only entries whose path (relative to the root, as [`Entry::path`](crate::Entry::path)
    /// gives it) sorts after `path` in byte order. S3 starts the listing there
    /// (`start-after`); fs and memory leave the others out. `path` is normalized
    /// as every path is (`/la/b` and `la//b` are `la/b`); one that is not a valid
    /// path fails the listing with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
    ///
    /// A filter, not a cursor: listings come in no particular order (see
    /// `docs/storage.md`), so a listing resumed after the last entry an earlier one
    /// gave can miss entries that sort before it.
    pub fn start_after(mut self, path: impl Into<String>) -> Self {
        self.start_after = Some(path.into());
        self
    }
}

impl IntoFuture for ListerWith {
    type Output = crate::Result<Lister>;
    type IntoFuture = IoFuture<Lister>;

    fn into_future(self) -> IoFuture<Lister> {
        self.op
            .lister_args(&self.path, self.recursive, self.start_after)
    }
}
