//! [`Conditions`] on an object's current version, and [`WriteOptions`].

use std::time::SystemTime;

use crate::{Error, ErrorKind, Metadata, Result};

/// Preconditions on the current version of an object, as HTTP has them (RFC 9110
/// section 13): a read, [`stat_with`](crate::Operator::stat_with) or
/// [`reader_with`](crate::Operator::reader_with) only goes ahead if they hold.
///
/// Checked against the object the operation actually reads, in the same step: the fs
/// backend checks the file it opened (so a replacement between the check and the
/// read cannot slip through), memory checks under its lock, S3 sends the headers and
/// the server checks.
///
/// | condition | fails with |
/// |---|---|
/// | `if_match`: the ETag is one of these (`*`: any) | [`ErrorKind::PreconditionFailed`] |
/// | `if_unmodified_since` (ignored when `if_match` is set) | [`ErrorKind::PreconditionFailed`] |
/// | `if_none_match`: the ETag is none of these (`*`: any) | [`ErrorKind::NotModified`] |
/// | `if_modified_since` (ignored when `if_none_match` is set) | [`ErrorKind::NotModified`] |
///
/// Times are compared at the precision they are given in. A time in whole
/// seconds, as HTTP dates carry them, is compared in whole seconds: an object
/// changed within the second `if_modified_since` names was not modified since,
/// and one changed within the second `if_unmodified_since` names was not
/// modified after it. A finer time (a [`Metadata::last_modified`] of fs or
/// memory) is compared as it is, so a change a moment after it is a change. S3
/// carries every time as an HTTP date and compares it on the server: there a
/// finer time counts as the whole second it falls in.
///
/// ETags are compared as given (with their quotes, as [`Metadata::etag`] returns
/// them); a list may be given comma-separated. An object without an ETag matches no
/// tag but `*`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> storage::Result<()> {
/// let op = storage::Operator::from_uri("memory://")?;
/// let meta = op.write("t.parquet", vec![1_u8; 64]).await?;
/// let etag = meta.etag().unwrap().to_owned();
///
/// // Read the version we know, or fail.
/// let bytes = op.read_with("t.parquet").range(0..8).if_match(&etag).await?;
/// assert_eq!(bytes.len(), 8);
///
/// // Our copy is current: no need to read it again.
/// let err = op.read_with("t.parquet").if_none_match(&etag).await.unwrap_err();
/// assert_eq!(err.kind(), storage::ErrorKind::NotModified);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Conditions {
    /// Go ahead only if the object's ETag is one of these.
    pub if_match: Option<String>,
    /// Go ahead only if the object's ETag is none of these.
    pub if_none_match: Option<String>,
    /// Go ahead only if the object changed after this time.
    pub if_modified_since: Option<SystemTime>,
    /// Go ahead only if the object has not changed after this time.
    pub if_unmodified_since: Option<SystemTime>,
}

impl Conditions {
    /// No conditions.
    pub fn new() -> Self {
        Self::default()
    }

    /// The one version these conditions hold a read to: `if_match` one ETag (not
    /// `*`, not a list). A read of an object replaced meanwhile is then the
    /// caller's condition failing ([`ErrorKind::PreconditionFailed`]); without
    /// one, a read we held to the version we first saw says the object changed
    /// ([`Error::changed_while_read`](crate::Error)).
    pub(crate) fn one_version(&self) -> Option<&str> {
        self.if_match
            .as_deref()
            .map(str::trim)
            .filter(|etag| !etag.is_empty() && *etag != "*" && !etag.contains(','))
    }

    /// Sets [`if_match`](Self::if_match).
    pub fn with_if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// Sets [`if_none_match`](Self::if_none_match).
    pub fn with_if_none_match(mut self, etag: impl Into<String>) -> Self {
        self.if_none_match = Some(etag.into());
        self
    }

    /// Sets [`if_modified_since`](Self::if_modified_since).
    pub fn with_if_modified_since(mut self, time: SystemTime) -> Self {
        self.if_modified_since = Some(time);
        self
    }

    /// Sets [`if_unmodified_since`](Self::if_unmodified_since).
    pub fn with_if_unmodified_since(mut self, time: SystemTime) -> Self {
        self.if_unmodified_since = Some(time);
        self
    }

    /// `true` when no condition is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the conditions against `meta`, the object's current metadata.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PreconditionFailed`] or [`ErrorKind::NotModified`], as in the
    /// table above, with the object's `etag` in the error's context.
    pub fn check(&self, meta: &Metadata) -> Result<()> {
        let etag = meta.etag();
        let failed = |kind: ErrorKind, message: String| {
            let err = Error::new(kind).with_message(message);
            match etag {
                Some(tag) => err.with_context("etag", tag),
                None => err,
            }
        };
        if let Some(wanted) = &self.if_match {
            if !etag_matches(wanted, etag) {
                return Err(failed(
                    ErrorKind::PreconditionFailed,
                    format!("if_match {wanted} does not match"),
                ));
            }
        } else if let (Some(since), Some(modified)) =
            (self.if_unmodified_since, meta.last_modified())
            && after(modified, since)
        {
            return Err(failed(
                ErrorKind::PreconditionFailed,
                "modified after if_unmodified_since".into(),
            ));
        }
        if let Some(wanted) = &self.if_none_match {
            if etag_matches(wanted, etag) {
                return Err(failed(
                    ErrorKind::NotModified,
                    format!("if_none_match {wanted} matches"),
                ));
            }
        } else if let (Some(since), Some(modified)) = (self.if_modified_since, meta.last_modified())
            && !after(modified, since)
        {
            return Err(failed(
                ErrorKind::NotModified,
                "not modified since if_modified_since".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `modified` is after `since`, at `since`'s precision: in whole seconds
/// when `since` is a whole second (an HTTP date's precision), else as they are.
fn after(modified: SystemTime, since: SystemTime) -> bool {
    let (since_seconds, since_nanos) = seconds_and_nanos(since);
    if since_nanos == 0 {
        seconds_and_nanos(modified).0 > since_seconds
    } else {
        modified > since
    }
}

/// Seconds since the Unix epoch, rounded down, and the nanoseconds past them.
fn seconds_and_nanos(time: SystemTime) -> (i128, u32) {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => (i128::from(after.as_secs()), after.subsec_nanos()),
        Err(before) => {
            let before = before.duration();
            match before.subsec_nanos() {
                0 => (-i128::from(before.as_secs()), 0),
                nanos => (-i128::from(before.as_secs()) - 1, 1_000_000_000 - nanos),
            }
        }
    }
}

/// Whether `list` (comma-separated ETags, or `*`) names `etag`. Reads and memory's
/// conditional writes match alike.
pub(crate) fn etag_matches(list: &str, etag: Option<&str>) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|want| want == "*" || Some(want) == etag)
}

/// How a write may replace what is at its target, and what it stores with the data:
/// for [`write_with`](crate::Operator::write_with),
/// [`writer_with`](crate::Operator::writer_with),
/// [`copy_with`](crate::Operator::copy_with) and
/// [`rename_with`](crate::Operator::rename_with).
///
/// | option | fs | memory | S3 |
/// |---|---|---|---|
/// | `if_not_exists` | atomic (`renameat2(RENAME_NOREPLACE)`, or `link`) | atomic | atomic (`If-None-Match: *` on PUT, CompleteMultipartUpload, CopyObject) |
/// | `if_match` | [`ErrorKind::Unsupported`] | atomic (writes, copies, renames) | atomic on writes (`If-Match` on PUT and CompleteMultipartUpload); a copy or rename: [`ErrorKind::Unsupported`] |
/// | `content_type` | accepted, not stored | stored, returned by [`Metadata::content_type`]; a copy keeps the source's | `Content-Type`, returned by [`Metadata::content_type`]; a copy keeps the source's, and one given a content type changes only that (the source's other metadata is kept) |
/// | `storage_class` | [`ErrorKind::Unsupported`] | [`ErrorKind::Unsupported`] | `x-amz-storage-class` (`STANDARD_IA`, `GLACIER_IR`, ...) |
/// | `encryption` | [`ErrorKind::Unsupported`] | [`ErrorKind::Unsupported`] | SSE-S3, SSE-KMS or SSE-C: see [`Encryption`](crate::Encryption) |
///
/// A target that exists fails `if_not_exists` with [`ErrorKind::AlreadyExists`]; a
/// target whose ETag differs (or that is missing) fails `if_match` with
/// [`ErrorKind::PreconditionFailed`]. Either way the target keeps what it had.
/// Memory matches `if_match` as reads match [`Conditions::if_match`]: one ETag, a
/// comma-separated list of them, or `*`, any version of a target that exists
/// (RFC 9110). S3 sends it as `If-Match`, which it documents for one ETag.
///
/// On S3 a conditional `write_with`/`writer_with` (and every multipart upload)
/// stores an id of its own in the object's user metadata
/// (`x-amz-meta-dio-write-id`). When an attempt was stored but its answer lost (a
/// timeout, a broken connection), the attempt sent after it fails its precondition
/// because of that very write; the object is then looked at, and if it carries the
/// write's id, the write is reported done, not refused. (Conditional copies and
/// renames below the multipart copy threshold carry no id.) A write that ran out of
/// attempts, or whose object could not be looked at, has `stored` = `unknown` in
/// its error's context: it may have been stored. See docs/storage.md, "Answers
/// that were lost".
///
/// A content type describes the bytes rather than how they are kept, and callers
/// (object_store's attributes) pass it routinely, so fs takes it without storing
/// it (memory stores it, as S3 does); a storage class or an encryption fs and
/// memory cannot give is refused, never ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Fail with [`ErrorKind::AlreadyExists`] if the target exists.
    pub if_not_exists: bool,
    /// Replace the target only if its ETag is this one (memory: or one of a
    /// comma-separated list; `*`, whatever version exists).
    pub if_match: Option<String>,
    /// The content type stored with the object (S3's `Content-Type`).
    pub content_type: Option<String>,
    /// The storage class of the object (S3's `x-amz-storage-class`).
    pub storage_class: Option<String>,
    /// Server-side encryption of the object.
    pub encryption: Option<crate::Encryption>,
}

impl WriteOptions {
    /// Plain overwrite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`if_not_exists`](Self::if_not_exists).
    pub fn with_if_not_exists(mut self, if_not_exists: bool) -> Self {
        self.if_not_exists = if_not_exists;
        self
    }

    /// Sets [`if_match`](Self::if_match).
    pub fn with_if_match(mut self, etag: impl Into<String>) -> Self {
        self.if_match = Some(etag.into());
        self
    }

    /// Sets [`content_type`](Self::content_type).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets [`storage_class`](Self::storage_class).
    pub fn with_storage_class(mut self, storage_class: impl Into<String>) -> Self {
        self.storage_class = Some(storage_class.into());
        self
    }

    /// Sets [`encryption`](Self::encryption).
    pub fn with_encryption(mut self, encryption: crate::Encryption) -> Self {
        self.encryption = Some(encryption);
        self
    }

    /// `true` for a plain overwrite.
    pub fn is_plain(&self) -> bool {
        *self == Self::default()
    }

    /// Fails with [`ErrorKind::Unsupported`] if a storage class or an encryption is
    /// asked for: what fs and memory cannot give.
    pub(crate) fn check_local(&self) -> Result<()> {
        let refuse = |what: &str| {
            Err(Error::new(ErrorKind::Unsupported)
                .with_message(format!("this backend cannot store objects with {what}")))
        };
        if self.storage_class.is_some() {
            return refuse("a storage class");
        }
        if self.encryption.is_some() {
            return refuse("server-side encryption");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn meta(etag: &str, at: u64) -> Metadata {
        Metadata::file(1)
            .with_etag(etag)
            .with_last_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(at))
    }

    fn kind(c: &Conditions, m: &Metadata) -> Option<ErrorKind> {
        c.check(m).err().map(|e| e.kind())
    }

    #[test]
    fn etag_conditions() {
        let m = meta("\"a\"", 100);
        assert_eq!(kind(&Conditions::new().with_if_match("\"a\""), &m), None);
        assert_eq!(
            kind(&Conditions::new().with_if_match("\"x\", \"a\""), &m),
            None
        );
        assert_eq!(kind(&Conditions::new().with_if_match("*"), &m), None);
        assert_eq!(
            kind(&Conditions::new().with_if_match("\"b\""), &m),
            Some(ErrorKind::PreconditionFailed)
        );
        assert_eq!(
            kind(&Conditions::new().with_if_none_match("\"a\""), &m),
            Some(ErrorKind::NotModified)
        );
        assert_eq!(
            kind(&Conditions::new().with_if_none_match("*"), &m),
            Some(ErrorKind::NotModified)
        );
        assert_eq!(
            kind(&Conditions::new().with_if_none_match("\"b\""), &m),
            None
        );
        let untagged = Metadata::file(1);
        assert_eq!(
            kind(&Conditions::new().with_if_match("\"a\""), &untagged),
            Some(ErrorKind::PreconditionFailed)
        );
    }

    #[test]
    fn time_conditions_and_their_precedence() {
        let m = meta("\"a\"", 100);
        let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let c = Conditions::new().with_if_modified_since(at(100));
        assert_eq!(kind(&c, &m), Some(ErrorKind::NotModified));
        assert_eq!(
            kind(&Conditions::new().with_if_modified_since(at(99)), &m),
            None
        );
        assert_eq!(
            kind(&Conditions::new().with_if_unmodified_since(at(99)), &m),
            Some(ErrorKind::PreconditionFailed)
        );
        assert_eq!(
            kind(&Conditions::new().with_if_unmodified_since(at(100)), &m),
            None
        );
        // An ETag condition takes precedence over its time counterpart.
        let c = Conditions::new()
            .with_if_match("\"a\"")
            .with_if_unmodified_since(at(1));
        assert_eq!(kind(&c, &m), None);
        let c = Conditions::new()
            .with_if_none_match("\"b\"")
            .with_if_modified_since(at(500));
        assert_eq!(kind(&c, &m), None);
    }

    /// A time in whole seconds is compared in whole seconds; a finer one as it is,
    /// before the Unix epoch too.
    #[test]
    fn times_are_compared_at_the_precision_given() {
        let epoch = SystemTime::UNIX_EPOCH;
        for base in [
            epoch + Duration::from_secs(100),
            epoch - Duration::from_secs(100),
        ] {
            // Modified 0.3 s into the second that starts at `base`.
            let modified = base + Duration::from_millis(300);
            let m = Metadata::file(1).with_last_modified(modified);
            let since = |t| Conditions::new().with_if_modified_since(t);
            let unmodified = |t| Conditions::new().with_if_unmodified_since(t);
            // The second it was modified in, given whole: not after it.
            assert_eq!(kind(&since(base), &m), Some(ErrorKind::NotModified));
            assert_eq!(kind(&unmodified(base), &m), None);
            // A finer time before the change: the change is after it.
            let earlier = base + Duration::from_millis(100);
            assert_eq!(kind(&since(earlier), &m), None);
            assert_eq!(
                kind(&unmodified(earlier), &m),
                Some(ErrorKind::PreconditionFailed)
            );
            // The change itself, and a finer time after it: not after.
            for t in [modified, base + Duration::from_millis(500)] {
                assert_eq!(kind(&since(t), &m), Some(ErrorKind::NotModified));
                assert_eq!(kind(&unmodified(t), &m), None);
            }
            // The second before, given whole: the change is after it.
            let second_before = base - Duration::from_secs(1);
            assert_eq!(kind(&since(second_before), &m), None);
            assert_eq!(
                kind(&unmodified(second_before), &m),
                Some(ErrorKind::PreconditionFailed)
            );
        }
    }
}
