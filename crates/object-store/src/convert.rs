//! Between our types and object_store's: paths, metadata, conditions, errors.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{Error as OsError, GetOptions, GetRange, ObjectMeta};
use storage::raw::ByteRange;
use storage::{Conditions, Entry, ErrorKind, Metadata};

/// The `store` name in [`object_store::Error::Generic`].
pub(crate) const STORE: &str = "DioStore";

/// Where the operator's root sits among the store's locations: `""`, or a path
/// ending in `/` that every location the store serves starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prefix(String);

/// Where a listing starts, for a store whose operator is rooted at a [`Prefix`].
pub(crate) enum ListFrom {
    /// Below this directory of the operator (`""`: its root).
    Dir(String),
    /// An ancestor of the store's root: all of the store, which one level down
    /// is this one common prefix (`data` for a store at `data/warehouse/` listed
    /// from the root).
    Ancestor(Path),
    /// Outside the store: a listing there is refused ([`Prefix::outside`]).
    Nothing,
}

impl Prefix {
    /// `prefix` as a location's start ([`DioStore::normalized_prefix`](crate::DioStore::normalized_prefix)).
    pub(crate) fn new(prefix: &str) -> Self {
        Self(crate::DioStore::normalized_prefix(prefix))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Our path for an object_store location to read: as [`path`](Self::path), but
    /// a location outside the prefix is `NotFound`, as any other name the store
    /// holds no object at (the prefix itself and its parents are directories of
    /// its listings; DataFusion asks for a table's URL with `head`, and lists it
    /// as a directory only on `NotFound`).
    ///
    /// The store's root itself (an empty location under no prefix) is no object
    /// either: `NotFound`, as `head` of it says.
    pub(crate) fn read_path(&self, location: &Path) -> object_store::Result<String> {
        let path = self.path(location).map_err(|e| match e {
            OsError::InvalidPath { source } => OsError::NotFound {
                path: location.to_string(),
                source: Box::new(source),
            },
            other => other,
        })?;
        if path.is_empty() {
            let err = storage::Error::new(ErrorKind::NotFound)
                .with_message("the store's root is a directory, not an object");
            return Err(os_error(err, self, location.as_ref()));
        }
        Ok(path)
    }

    /// The error of a listing of `place`, outside the prefix: `InvalidPath`, as for
    /// writes there. Not an empty listing: a DataFusion table whose location the
    /// store was registered over (DataFusion keeps one store per scheme and host)
    /// would read as empty instead of failing.
    pub(crate) fn outside(&self, place: &str) -> OsError {
        OsError::InvalidPath {
            source: object_store::path::Error::PrefixMismatch {
                path: place.to_owned(),
                prefix: self.0.clone(),
            },
        }
    }

    /// Our path for an object_store location (object_store keeps locations
    /// normalized: no leading `/`, no empty, `.` or `..` segments).
    ///
    /// # Errors
    ///
    /// `InvalidPath` for a location outside the prefix.
    pub(crate) fn path(&self, location: &Path) -> object_store::Result<String> {
        match location.as_ref().strip_prefix(self.0.as_str()) {
            Some(path) => Ok(path.to_owned()),
            None => Err(OsError::InvalidPath {
                source: object_store::path::Error::PrefixMismatch {
                    path: location.to_string(),
                    prefix: self.0.clone(),
                },
            }),
        }
    }

    /// The object_store location of a path our listing returned; `None`, with a
    /// warning logged, for one that is no object_store path (a name with a control
    /// character, `Icon\r`, written by another tool), which the listing leaves
    /// out as it leaves out a name that is not UTF-8.
    pub(crate) fn listed(&self, path: &str) -> Option<Path> {
        let full = format!("{}{}", self.0, path.trim_end_matches('/'));
        match Path::parse(&full) {
            Ok(location) => Some(location),
            Err(e) => {
                tracing::warn!(path = ?full, error = %e, "leaving out of the listing a name that is no object_store path");
                None
            }
        }
    }

    /// Where a listing of object_store `prefix` starts: prefixes match whole
    /// segments, so `a/b` lists below `a/b/`.
    pub(crate) fn list_from(&self, prefix: Option<&Path>) -> ListFrom {
        let wanted = match prefix.map(|p| p.as_ref()) {
            None | Some("") => String::new(),
            Some(p) => format!("{p}/"),
        };
        if let Some(below) = wanted.strip_prefix(self.0.as_str()) {
            ListFrom::Dir(below.to_owned())
        } else if let Some(rest) = self.0.strip_prefix(&wanted) {
            // An ancestor of the store's root: all of it, one segment further down.
            let segment = rest.split('/').next().unwrap_or_default();
            match Path::parse(format!("{wanted}{segment}")) {
                Ok(common) => ListFrom::Ancestor(common),
                Err(_) => ListFrom::Nothing,
            }
        } else {
            ListFrom::Nothing
        }
    }

    /// Our `start_after` for an object_store offset; `Err(())` when the offset
    /// sorts after every location the store serves.
    pub(crate) fn start_after(&self, offset: &Path) -> Result<Option<String>, ()> {
        let offset = offset.as_ref();
        match offset.strip_prefix(self.0.as_str()) {
            Some(rest) => Ok(Some(rest.to_owned())),
            None if offset < self.0.as_str() => Ok(None),
            None => Err(()),
        }
    }
}

/// `time` as chrono's. A time chrono cannot hold (beyond about 262,000 years from
/// now or before then, which tmpfs and btrfs store when asked) is chrono's last or
/// first, where chrono's own conversion panics.
pub(crate) fn utc(time: SystemTime) -> DateTime<Utc> {
    let (secs, nanos, limit) = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).ok(),
            after.subsec_nanos(),
            DateTime::<Utc>::MAX_UTC,
        ),
        Err(before) => {
            let before = before.duration();
            // Whole seconds down, nanoseconds up: -1.25 s is -2 s + 0.75 s.
            let (secs, nanos) = match before.subsec_nanos() {
                0 => (before.as_secs(), 0),
                n => (before.as_secs().saturating_add(1), 1_000_000_000 - n),
            };
            (
                i64::try_from(secs).ok().map(|s| -s),
                nanos,
                DateTime::<Utc>::MIN_UTC,
            )
        }
    };
    secs.and_then(|secs| DateTime::from_timestamp(secs, nanos))
        .unwrap_or(limit)
}

/// The `ObjectMeta` of a file at `location`.
pub(crate) fn object_meta(location: Path, meta: &Metadata) -> ObjectMeta {
    ObjectMeta {
        location,
        last_modified: utc(meta.last_modified().unwrap_or(SystemTime::UNIX_EPOCH)),
        size: meta.content_length(),
        e_tag: meta.etag().map(str::to_owned),
        version: None,
    }
}

/// The attributes object_store's `GetResult` carries that the backend stored with
/// the object: its content type (S3 and memory keep one; fs none).
pub(crate) fn attributes(meta: &Metadata) -> object_store::Attributes {
    let mut attributes = object_store::Attributes::new();
    if let Some(content_type) = meta.content_type() {
        attributes.insert(
            object_store::Attribute::ContentType,
            content_type.to_owned().into(),
        );
    }
    attributes
}

/// The `ObjectMeta` of a listed file; `None` for a directory.
pub(crate) fn listed_meta(prefix: &Prefix, entry: &Entry) -> Option<ObjectMeta> {
    if entry.metadata().is_dir() {
        return None;
    }
    let location = prefix.listed(entry.path())?;
    Some(object_meta(location, entry.metadata()))
}

/// Our conditions for a get's.
pub(crate) fn conditions(options: &GetOptions) -> Conditions {
    let mut c = Conditions::new();
    c.if_match.clone_from(&options.if_match);
    c.if_none_match.clone_from(&options.if_none_match);
    c.if_modified_since = options.if_modified_since.map(SystemTime::from);
    c.if_unmodified_since = options.if_unmodified_since.map(SystemTime::from);
    c
}

/// Our range for a get's, with object_store's rules (HTTP's: an end beyond the
/// object's is cut to it; a start at or past it is an error).
///
/// # Errors
///
/// [`storage::ErrorKind::InvalidInput`] for an empty or backwards range (the
/// caller adds the operation and path).
pub(crate) fn byte_range(range: Option<&GetRange>) -> storage::Result<ByteRange> {
    Ok(match range {
        None => ByteRange::FULL,
        Some(GetRange::Bounded(r)) => {
            if r.end <= r.start {
                return Err(storage::Error::new(storage::ErrorKind::InvalidInput)
                    .with_message("the range is empty or backwards")
                    .with_context("range", format!("{}..{}", r.start, r.end)));
            }
            ByteRange::http(r.clone())
        }
        Some(GetRange::Offset(start)) => ByteRange::http(*start..),
        Some(GetRange::Suffix(n)) => ByteRange::suffix(*n),
    })
}

/// object_store's error for one of ours from an operation on `location`: the
/// variants object_store has a name for, and `Generic` (with our error, its
/// operation, path and context, as the source) for the rest. A directory read as
/// an object is not found, as object_store has no directories.
pub(crate) fn os_error(err: storage::Error, prefix: &Prefix, location: &str) -> OsError {
    // An error made without a path (an upload's, the executor's) is about the
    // location: it says so, as every other does (`Generic` shows only ours). Not
    // for the root itself (a listing of the prefix), which has no path of ours.
    let err = match location.strip_prefix(prefix.as_str()) {
        Some(ours) if err.path().is_empty() && !ours.is_empty() => err.with_path(ours),
        _ => err,
    };
    let path = if err.path().is_empty() {
        location.to_owned()
    } else {
        format!("{}{}", prefix.as_str(), err.path())
    };
    match err.kind() {
        ErrorKind::NotFound | ErrorKind::IsADirectory => OsError::NotFound {
            path,
            source: Box::new(err),
        },
        ErrorKind::AlreadyExists => OsError::AlreadyExists {
            path,
            source: Box::new(err),
        },
        ErrorKind::PreconditionFailed => OsError::Precondition {
            path,
            source: Box::new(err),
        },
        ErrorKind::NotModified => OsError::NotModified {
            path,
            source: Box::new(err),
        },
        ErrorKind::PermissionDenied => OsError::PermissionDenied {
            path,
            source: Box::new(err),
        },
        ErrorKind::Unsupported => OsError::NotSupported {
            source: Box::new(err),
        },
        _ => OsError::Generic {
            store: STORE,
            source: Box::new(err),
        },
    }
}

/// A write's error as object_store says it: a conditional write the backend
/// cannot do atomically is "not implemented" (`PutMode::Update` on fs), and a
/// directory where the object would go is `Generic` (saying so); the rest as
/// [`os_error`].
pub(crate) fn write_error(
    err: storage::Error,
    prefix: &Prefix,
    location: &str,
    operation: &str,
) -> OsError {
    match err.kind() {
        ErrorKind::Unsupported => OsError::NotImplemented {
            operation: format!("{operation} on {location}: {err}"),
            implementer: STORE.to_owned(),
        },
        // A directory where the object would go: nothing is missing, so not
        // `NotFound` (as a read of that name is); object_store has no kind for it.
        ErrorKind::IsADirectory => OsError::Generic {
            store: STORE,
            source: Box::new(err),
        },
        _ => os_error(err, prefix, location),
    }
}

/// Adds object_store's `attributes` to `options`, for a write to a backend of
/// `scheme`: `ContentType` and `StorageClass` become the write's content type and
/// storage class (S3 stores both; memory stores a content type and refuses a
/// storage class). Any other attribute, and a content type on fs (which takes one
/// without storing it, as the storage crate allows), is
/// [`NotImplemented`](OsError::NotImplemented): never accepted and lost, as the
/// `ObjectStore` trait asks of attributes a store does not keep.
pub(crate) fn with_attributes(
    mut options: storage::WriteOptions,
    attributes: &object_store::Attributes,
    operation: &str,
    location: &str,
    scheme: &str,
) -> Result<storage::WriteOptions, OsError> {
    for (attribute, value) in attributes.iter() {
        match attribute {
            object_store::Attribute::ContentType if scheme == "fs" => {
                return Err(OsError::NotImplemented {
                    operation: format!(
                        "{operation} of {location:?} with attribute ContentType (fs does not \
                         store it)"
                    ),
                    implementer: STORE.to_owned(),
                });
            }
            object_store::Attribute::ContentType => {
                options = options.with_content_type(value.as_ref());
            }
            object_store::Attribute::StorageClass => {
                options = options.with_storage_class(value.as_ref());
            }
            other => {
                return Err(OsError::NotImplemented {
                    operation: format!("{operation} of {location:?} with attribute {other:?}"),
                    implementer: STORE.to_owned(),
                });
            }
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_chrono_cannot_hold_are_its_limits_never_a_panic() {
        use std::time::Duration;
        let epoch = SystemTime::UNIX_EPOCH;
        let far = epoch + Duration::from_secs(9_000_000_000_000);
        assert_eq!(utc(far), DateTime::<Utc>::MAX_UTC);
        if let Some(long_ago) = epoch.checked_sub(Duration::from_secs(9_000_000_000_000)) {
            assert_eq!(utc(long_ago), DateTime::<Utc>::MIN_UTC);
        }
        let now = epoch + Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(utc(now), DateTime::<Utc>::from(now));
        let before = epoch - Duration::new(1, 250_000_000);
        assert_eq!(utc(before), DateTime::<Utc>::from(before));
        assert_eq!(utc(before).timestamp_millis(), -1250);
    }

    /// An error without a path names the location it is about, as ours below the
    /// prefix; one about the prefix itself (a listing of it, given without its
    /// `/`) keeps no path of ours, never the prefix twice.
    #[test]
    fn an_error_without_a_path_names_its_location_once() {
        let prefix = Prefix::new("warehouse/t1");
        let err = || storage::Error::new(ErrorKind::NotFound);
        for (location, shown) in [
            ("warehouse/t1/a.parquet", "warehouse/t1/a.parquet"),
            ("warehouse/t1", "warehouse/t1"),
            ("warehouse/t1/", "warehouse/t1/"),
        ] {
            let OsError::NotFound { path, source } = os_error(err(), &prefix, location) else {
                panic!("not NotFound");
            };
            assert_eq!(path, shown, "{location}");
            let ours = source.downcast_ref::<storage::Error>().unwrap();
            assert!(!ours.path().contains("warehouse"), "{location}: {ours}");
        }
        let OsError::NotFound { source, .. } = os_error(err(), &prefix, "warehouse/t1/a.parquet")
        else {
            panic!("not NotFound");
        };
        let ours = source.downcast_ref::<storage::Error>().unwrap();
        assert_eq!(ours.path(), "a.parquet");
    }
}
