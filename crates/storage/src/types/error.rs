//! [`Error`] and [`ErrorKind`]: the one error type of this crate.

use std::fmt;
use std::sync::Arc;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, independent of the backend.
///
/// New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object or directory does not exist.
    NotFound,
    /// The target already exists.
    AlreadyExists,
    /// The backend refused access, or a change to a read-only filesystem. (A path
    /// that would leave the root is [`InvalidInput`](Self::InvalidInput), refused
    /// before any IO.)
    PermissionDenied,
    /// A file operation was given a directory.
    IsADirectory,
    /// A directory operation was given a file, or a path goes through a file.
    NotADirectory,
    /// A directory that had to be empty was not.
    DirectoryNotEmpty,
    /// The request itself is malformed: a bad path, range, URI or option.
    InvalidInput,
    /// The requested range ends beyond the end of the object; the error's context
    /// carries the object's `size`.
    RangeNotSatisfiable,
    /// A precondition of the request did not hold: `if_match` named another version,
    /// the object changed after `if_unmodified_since`, or (for writes) the object's
    /// version is not the one `if_match` expected. HTTP 412.
    PreconditionFailed,
    /// A read's `if_none_match` matched the object's version, or the object has not
    /// changed since `if_modified_since`: the caller's copy is current. HTTP 304.
    NotModified,
    /// The backend does not support the operation.
    Unsupported,
    /// A buffer for the request could not be allocated.
    OutOfMemory,
    /// The storage is full, or a quota is exhausted (`ENOSPC`, `EDQUOT`).
    StorageFull,
    /// The operation took too long.
    Timeout,
    /// The backend asked us to slow down.
    RateLimited,
    /// The operation was cancelled (its handle was dropped or aborted).
    Cancelled,
    /// The executor that runs the operation's IO has shut down.
    ShutDown,
    /// Anything else: the source says more.
    Unexpected,
}

impl ErrorKind {
    /// A short description, used in [`Error`]'s `Display`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::IsADirectory => "is a directory",
            ErrorKind::NotADirectory => "not a directory",
            ErrorKind::DirectoryNotEmpty => "directory not empty",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::RangeNotSatisfiable => "range not satisfiable",
            ErrorKind::PreconditionFailed => "precondition failed",
            ErrorKind::NotModified => "not modified",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::StorageFull => "no space left",
            ErrorKind::Timeout => "timed out",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::ShutDown => "IO executor shut down",
            ErrorKind::Unexpected => "unexpected error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every operation: a [`kind`](Self::kind), the
/// [`operation`](Self::operation) and [`path`](Self::path) it happened in, key-value
/// context (a `range`, the object's `size`, ...), whether retrying
/// [may help](Self::is_temporary), and the underlying source.
///
/// `Display` reads like
/// `read_range failed for "a/b.parquet" (range 0..4096, size 100): range not satisfiable`.
/// It does not repeat the source's text: [`source`](std::error::Error::source)
/// returns the source, so error-chain printers (`anyhow`'s `{:#}`, `tracing`) show
/// each cause once. `Debug` shows the whole chain.
///
/// Errors are cheap to clone (the source is shared), so a reader or writer that has
/// failed can return the same error to every later call.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    path: String,
    context: Vec<(&'static str, String)>,
    message: Option<String>,
    temporary: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind`, with no operation, path or context yet.
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            operation: "",
            path: String::new(),
            context: Vec::new(),
            message: None,
            temporary: matches!(kind, ErrorKind::Timeout | ErrorKind::RateLimited),
            source: None,
        }
    }

    /// Adds a human-readable detail, shown after the kind.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the operation, unless one is set already (the innermost wins).
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        if self.operation.is_empty() {
            self.operation = operation;
        }
        self
    }

    /// Sets the path, unless one is set already (the innermost wins).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        if self.path.is_empty() {
            self.path = path.into();
        }
        self
    }

    /// Sets context `key` to `value`, in place of the value it had.
    pub(crate) fn set_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        match self.context.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => self.context.push((key, value.to_string())),
        }
        self
    }

    /// Names `caller` (a path as the caller spelled it) where the error names
    /// nothing, or `normalized`, the form a backend was given.
    pub(crate) fn with_caller_path(mut self, normalized: &str, caller: &str) -> Self {
        if self.path.is_empty() || self.path == normalized {
            self.path = caller.to_owned();
        }
        self
    }

    /// What a read fails with when the object was replaced while it was read and
    /// the version it was held to was the reader's own choice (S3 pins every part
    /// of a read to the ETag it first saw; a parquet reader, its metadata to the
    /// version of its footer), not the caller's: not the caller's
    /// [`ErrorKind::PreconditionFailed`] (this error, its source), but a temporary
    /// [`ErrorKind::Unexpected`] (reading again reads the new version) with
    /// context `changed` = `while read`, saying `message`, in the same operation
    /// and path.
    pub fn changed_while_read(self, message: &str) -> Self {
        let mut err = Error::new(ErrorKind::Unexpected)
            .set_temporary(true)
            .with_message(message)
            .with_context("changed", "while read");
        err.operation = self.operation;
        err.path.clone_from(&self.path);
        err.with_source(self)
    }

    /// Whether this is [`changed_while_read`](Self::changed_while_read)'s error: the
    /// object was replaced while it was read.
    pub(crate) fn is_changed_while_read(&self) -> bool {
        self.context("changed") == Some("while read")
    }

    /// This error said in the caller's terms: an error of `kind` that keeps this
    /// one's context (which request it was and what became of it: `status`,
    /// `code`, `request_id`, `stored`, ...), with this error as its source.
    pub(crate) fn restated(self, kind: ErrorKind) -> Self {
        let mut err = Error::new(kind);
        err.context.clone_from(&self.context);
        err.with_source(self)
    }

    /// Adds a key-value pair of context.
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        self.context.push((key, value.to_string()));
        self
    }

    /// Marks the error as one a retry may cure.
    pub fn set_temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Sets the underlying cause.
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// The message set on the error, if any.
    pub(crate) fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed (`read`, `stat`, ...), or `""` if unknown.
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// The path the operation was given, relative to the backend's root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The value of context key `key`, such as `"size"` or `"range"`.
    pub fn context(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `true` if retrying the operation may succeed.
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// Builds an error from an OS error, mapping its kind.
    pub fn from_io(err: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::AlreadyExists => ErrorKind::AlreadyExists,
            // A read-only filesystem refuses a change as a permission would.
            Io::PermissionDenied | Io::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
            Io::IsADirectory => ErrorKind::IsADirectory,
            Io::NotADirectory => ErrorKind::NotADirectory,
            Io::DirectoryNotEmpty => ErrorKind::DirectoryNotEmpty,
            Io::InvalidInput | Io::InvalidFilename => ErrorKind::InvalidInput,
            Io::TimedOut => ErrorKind::Timeout,
            Io::Unsupported => ErrorKind::Unsupported,
            Io::OutOfMemory => ErrorKind::OutOfMemory,
            Io::StorageFull | Io::QuotaExceeded => ErrorKind::StorageFull,
            _ => ErrorKind::Unexpected,
        };
        // Out of file descriptors: they are given back as other work ends.
        let temporary = out_of_descriptors(&err)
            || matches!(err.kind(), Io::Interrupted | Io::WouldBlock | Io::TimedOut);
        // A loop of symbolic links (or more than the kernel follows in a row)
        // leads nowhere, as a dangling link does: not found, saying why (a
        // listing leaves such a link out, as it leaves out a dangling one).
        if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            return Self::new(ErrorKind::NotFound)
                .with_message("a loop of symbolic links, or too many in a row, leads nowhere")
                .with_source(err);
        }
        Self::new(kind).set_temporary(temporary).with_source(err)
    }

    /// Whether this error is the operating system's `errno`.
    pub(crate) fn is_errno(&self, errno: rustix::io::Errno) -> bool {
        std::error::Error::source(self)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .is_some_and(|e| e.raw_os_error() == Some(errno.raw_os_error()))
    }

    /// Whether this is the process (or the system) out of file descriptors
    /// (`EMFILE`, `ENFILE`).
    pub(crate) fn is_out_of_descriptors(&self) -> bool {
        std::error::Error::source(self)
            .and_then(|e| e.downcast_ref::<std::io::Error>())
            .is_some_and(out_of_descriptors)
    }

    /// Builds an error from a failed executor job: a job refused for a full queue
    /// is [`ErrorKind::RateLimited`] (temporary), one dropped by a shutdown
    /// [`ErrorKind::ShutDown`], a cancelled one [`ErrorKind::Cancelled`], a
    /// panic [`ErrorKind::Unexpected`]; the `JoinError` is the source. A job that
    /// a shutdown deadline cut off while it ran
    /// ([`JoinError::had_started`](io_executor::JoinError::had_started)) says so in
    /// its message: what it began may still take effect.
    pub fn from_join(err: io_executor::JoinError) -> Self {
        let kind = match err.kind() {
            io_executor::JoinErrorKind::Cancelled => ErrorKind::Cancelled,
            io_executor::JoinErrorKind::Shutdown => ErrorKind::ShutDown,
            io_executor::JoinErrorKind::QueueFull => ErrorKind::RateLimited,
            _ => ErrorKind::Unexpected,
        };
        let cut_off = err.had_started();
        let error = Self::new(kind).with_source(err);
        if cut_off {
            error.with_message(
                "the executor's shutdown deadline cut the operation off while it ran; \
                 what it began may still take effect",
            )
        } else {
            error
        }
    }

    /// This error, saying the write it reports may have been stored (`stored` =
    /// `unknown`) when a shutdown deadline cut its job off while it ran: a
    /// blocking job runs on to its end, an async one may have sent its request.
    pub(crate) fn stored_unknown_if_cut_off(self) -> Self {
        let cut_off = std::error::Error::source(&self)
            .and_then(|e| e.downcast_ref::<io_executor::JoinError>())
            .is_some_and(io_executor::JoinError::had_started);
        if cut_off {
            self.set_context("stored", "unknown")
        } else {
            self
        }
    }
}

/// `EMFILE` or `ENFILE`.
fn out_of_descriptors(err: &std::io::Error) -> bool {
    err.raw_os_error().is_some_and(|code| {
        code == rustix::io::Errno::MFILE.raw_os_error()
            || code == rustix::io::Errno::NFILE.raw_os_error()
    })
}

impl From<rustix::io::Errno> for Error {
    fn from(errno: rustix::io::Errno) -> Self {
        Self::from_io(errno.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.operation.is_empty() {
            write!(f, "{} failed for {:?}", self.operation, self.path)?;
            if !self.context.is_empty() {
                f.write_str(" (")?;
                for (i, (k, v)) in self.context.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    // A path in a value (`from`, `to`) may hold a line break or a
                    // control character: escaped, as the path itself is.
                    if v.chars().any(char::is_control) {
                        write!(f, "{k} {v:?}")?;
                    } else {
                        write!(f, "{k} {v}")?;
                    }
                }
                f.write_str(")")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(self.kind.as_str())?;
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The readable form, with every cause, is the most useful one in test
        // failures and logs.
        write!(f, "Error({:?}, \"{self}", self.kind)?;
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        f.write_str("\")")
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match err.kind {
            ErrorKind::NotFound => Io::NotFound,
            ErrorKind::AlreadyExists => Io::AlreadyExists,
            ErrorKind::PermissionDenied => Io::PermissionDenied,
            ErrorKind::IsADirectory => Io::IsADirectory,
            ErrorKind::NotADirectory => Io::NotADirectory,
            ErrorKind::DirectoryNotEmpty => Io::DirectoryNotEmpty,
            ErrorKind::InvalidInput | ErrorKind::RangeNotSatisfiable => Io::InvalidInput,
            ErrorKind::Unsupported => Io::Unsupported,
            ErrorKind::OutOfMemory => Io::OutOfMemory,
            ErrorKind::StorageFull => Io::StorageFull,
            ErrorKind::Timeout => Io::TimedOut,
            // Not `Interrupted`: std's `write_all`, `read_exact`, `io::copy` and
            // `BufWriter` call again on it, and a cancelled (aborted) object stays
            // cancelled: they would spin for ever.
            _ => Io::Other,
        };
        std::io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context value holding a line break (a path in `from` or `to`) is shown
    /// escaped, as the path is: an error is one line in a log.
    #[test]
    fn context_values_with_control_characters_are_escaped() {
        let err = Error::new(ErrorKind::NotFound)
            .with_operation("rename")
            .with_path("a\nb")
            .with_context("from", "a\nb")
            .with_context("to", "plain/path");
        let shown = err.to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.contains(r#"from "a\nb""#), "{shown}");
        assert!(shown.contains("to plain/path"), "{shown}");
    }

    /// A change a read-only filesystem refuses is `PermissionDenied`, not
    /// `Unexpected`, and keeps the OS error as its source.
    #[test]
    fn a_read_only_filesystem_is_permission_denied() {
        let err = Error::from_io(std::io::Error::from_raw_os_error(
            rustix::io::Errno::ROFS.raw_os_error(),
        ));
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(err.is_errno(rustix::io::Errno::ROFS), "{err}");
    }

    #[test]
    fn display_names_operation_path_context_and_kind() {
        let err = Error::new(ErrorKind::RangeNotSatisfiable)
            .with_context("range", "0..4096")
            .with_context("size", 100)
            .with_operation("read_range")
            .with_path("a/b.parquet");
        assert_eq!(
            err.to_string(),
            r#"read_range failed for "a/b.parquet" (range 0..4096, size 100): range not satisfiable"#
        );
        assert_eq!(err.context("size"), Some("100"));
    }

    #[test]
    fn innermost_operation_and_path_win() {
        let err = Error::new(ErrorKind::NotFound)
            .with_operation("stat")
            .with_path("x")
            .with_operation("read")
            .with_path("y");
        assert_eq!((err.operation(), err.path()), ("stat", "x"));
    }

    #[test]
    fn io_errors_map_to_kinds() {
        let err = Error::from_io(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(!err.is_temporary());
        let err = Error::from_io(std::io::Error::from(std::io::ErrorKind::Interrupted));
        assert!(err.is_temporary());
        // Out of descriptors, of the process or the system: they come back.
        for errno in [rustix::io::Errno::MFILE, rustix::io::Errno::NFILE] {
            let err = Error::from_io(std::io::Error::from_raw_os_error(errno.raw_os_error()));
            assert!(err.is_temporary(), "{err}");
        }
    }

    #[test]
    fn display_does_not_repeat_the_source_and_debug_shows_the_chain() {
        let os = std::io::Error::from_raw_os_error(28);
        let os_text = os.to_string();
        let err = Error::from_io(os).with_operation("writer").with_path("a");
        let text = err.to_string();
        assert_eq!(text, r#"writer failed for "a": no space left"#);
        assert!(!text.contains(&os_text), "{text}");
        let source = std::error::Error::source(&err).unwrap();
        assert_eq!(source.to_string(), os_text, "the source carries it, once");
        assert!(format!("{err:?}").contains(&os_text));
        let clone = err.clone();
        assert_eq!(clone.kind(), ErrorKind::StorageFull);
        assert!(
            std::error::Error::source(&clone).is_some(),
            "clones keep the source"
        );
    }
}
