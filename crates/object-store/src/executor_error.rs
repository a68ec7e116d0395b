//! [`ExecutorError`]: an operation that did not run to completion on the executor.

use std::fmt;

use io_executor::{Executor, JoinError, JoinErrorKind};
use object_store::path::Path;

/// The `store` of every [`object_store::Error::Generic`] this crate makes.
pub(crate) const STORE: &str = "IoObjectStore";

/// Why an [`IoObjectStore`](crate::IoObjectStore) operation has no result: the job
/// that ran it on the executor did not finish, because the executor shut down, the
/// job panicked, or it was cancelled.
///
/// It reaches the caller as the `source` of an [`object_store::Error::Generic`]
/// whose `store` is `"IoObjectStore"`, in place of the operation's result or as the
/// last item of a stream that could not finish.
///
/// # Examples
///
/// ```
/// use dio_object_store::{ExecutorError, IoObjectStore};
/// use object_store::{ObjectStoreExt, memory::InMemory, path::Path};
///
/// let io = io_executor::Builder::new().name("doc-shut").build().unwrap();
/// let store = IoObjectStore::new(InMemory::new(), io.clone());
/// io.shutdown();
///
/// let err = futures::executor::block_on(store.head(&Path::from("a"))).unwrap_err();
/// let object_store::Error::Generic { store, source } = &err else { panic!("{err}") };
/// assert_eq!(*store, "IoObjectStore");
/// let cause = source.downcast_ref::<ExecutorError>().unwrap();
/// assert!(cause.join_error().is_shutdown());
/// assert_eq!(
///     err.to_string(),
///     "Generic IoObjectStore error: get_opts `a` on IO executor `doc-shut` failed: \
///      executor is shut down; the job did not run to completion"
/// );
/// ```
#[derive(Debug)]
pub struct ExecutorError {
    operation: &'static str,
    path: Option<String>,
    executor: String,
    source: JoinError,
}

impl ExecutorError {
    /// The `ObjectStore` method (or stream) that failed, such as `"get_opts"`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The path the operation was about, when it had one.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The name of the executor the job ran on.
    pub fn executor(&self) -> &str {
        &self.executor
    }

    /// Why the job produced no value.
    pub fn join_error(&self) -> &JoinError {
        &self.source
    }

    /// Shorthand for `self.join_error().kind()`.
    pub fn kind(&self) -> JoinErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for ExecutorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.operation)?;
        if let Some(path) = &self.path {
            write!(f, " `{path}`")?;
        }
        write!(
            f,
            " on IO executor `{}` failed: {}",
            self.executor, self.source
        )
    }
}

impl std::error::Error for ExecutorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The `object_store` error for a job of `operation` that ended in `source`.
pub(crate) fn executor_error(
    operation: &'static str,
    path: Option<&Path>,
    executor: &Executor,
    source: JoinError,
) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(ExecutorError {
            operation,
            path: path.map(|p| p.as_ref().to_owned()),
            executor: executor.name().to_owned(),
            source,
        }),
    }
}
