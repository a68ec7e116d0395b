//! [`JoinError`]: why a job produced no value.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

/// What kind of failure a [`JoinError`] reports.
///
/// New kinds may be added; match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JoinErrorKind {
    /// The job was cancelled: its [`JoinHandle`](crate::JoinHandle) was dropped or
    /// [`abort`](crate::JoinHandle::abort)ed before the job finished.
    Cancelled,
    /// The job panicked. The payload is in [`JoinError::try_into_panic`].
    Panic,
    /// The executor shut down before the job finished: either it was already shut
    /// down when the job was submitted (from outside its jobs, or after its drain
    /// ended or a deadline passed), or [`Executor::shutdown_timeout`](crate::Executor::shutdown_timeout)
    /// cancelled the job at its deadline. For an executor on a runtime it does not
    /// own ([`Executor::from_handle`](crate::Executor::from_handle),
    /// [`Executor::custom`](crate::Executor::custom)), also a job that runtime
    /// dropped unfinished (it was shut down or dropped itself), or a blocking job
    /// whose thread [`Spawn::spawn_blocking`](crate::Spawn::spawn_blocking)'s
    /// default could not start (logged with its cause).
    Shutdown,
    /// The executor's bound on queued jobs ([`Builder::max_queued_jobs`](crate::Builder::max_queued_jobs))
    /// was reached, so the job was not accepted.
    QueueFull,
}

/// The error a [`JoinHandle`](crate::JoinHandle) resolves to when its job produced no value.
///
/// Modelled on `tokio::task::JoinError`: ask it what happened with
/// [`is_cancelled`](Self::is_cancelled), [`is_panic`](Self::is_panic),
/// [`is_shutdown`](Self::is_shutdown) and [`is_queue_full`](Self::is_queue_full), or
/// match on [`kind`](Self::kind).
///
/// # Examples
///
/// ```
/// let executor = io_executor::Builder::new().name("doc-panic").build().unwrap();
/// let err = executor
///     .spawn_blocking(|| panic!("disk on fire"))
///     .join()
///     .unwrap_err();
/// assert!(err.is_panic());
/// assert_eq!(err.panic_message(), Some("disk on fire"));
/// assert_eq!(err.to_string(), "job panicked: disk on fire");
/// ```
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Shutdown {
        /// Cut off by a deadline while it ran.
        started: bool,
    },
    QueueFull {
        limit: usize,
    },
    Panic {
        message: Option<String>,
        // A mutex makes the (only `Send`) payload `Sync`, so `JoinError` can cross
        // into `Box<dyn Error + Send + Sync>`.
        payload: Mutex<Box<dyn Any + Send + 'static>>,
    },
}

impl JoinError {
    pub(crate) fn cancelled() -> Self {
        Self {
            repr: Repr::Cancelled,
        }
    }

    /// A job the shutdown stopped before it started.
    pub(crate) fn shutdown() -> Self {
        Self {
            repr: Repr::Shutdown { started: false },
        }
    }

    /// A job that a shutdown deadline cut off while it ran.
    pub(crate) fn cut_off() -> Self {
        Self {
            repr: Repr::Shutdown { started: true },
        }
    }

    pub(crate) fn queue_full(limit: usize) -> Self {
        Self {
            repr: Repr::QueueFull { limit },
        }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send + 'static>) -> Self {
        let message = payload
            .downcast_ref::<&'static str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        Self {
            repr: Repr::Panic {
                message,
                payload: Mutex::new(payload),
            },
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> JoinErrorKind {
        match self.repr {
            Repr::Cancelled => JoinErrorKind::Cancelled,
            Repr::Shutdown { .. } => JoinErrorKind::Shutdown,
            Repr::QueueFull { .. } => JoinErrorKind::QueueFull,
            Repr::Panic { .. } => JoinErrorKind::Panic,
        }
    }

    /// `true` if the job was cancelled through its handle.
    pub fn is_cancelled(&self) -> bool {
        self.kind() == JoinErrorKind::Cancelled
    }

    /// `true` if the job panicked.
    pub fn is_panic(&self) -> bool {
        self.kind() == JoinErrorKind::Panic
    }

    /// `true` if the executor was shut down before the job could finish.
    pub fn is_shutdown(&self) -> bool {
        self.kind() == JoinErrorKind::Shutdown
    }

    /// `true` if the job had started when it was cut off: by the executor's
    /// shutdown deadline ([`Executor::shutdown_timeout`](crate::Executor::shutdown_timeout)),
    /// or by the runtime or spawner that ran it dropping it mid-run (an executor
    /// over a caller's runtime that is shut down): some or all of its work may have
    /// been done, and a blocking job goes on to its end (it cannot be interrupted;
    /// its result is dropped). So a write cut off this way may still take effect.
    /// `false` for every other error, and for a job that never ran (submitted after
    /// the shutdown, or still queued at the deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let io = io_executor::Builder::new().name("doc-cut-off").build().unwrap();
    /// let (started, wait) = std::sync::mpsc::channel();
    /// let (release, released) = std::sync::mpsc::channel::<()>();
    /// let job = io.spawn_blocking(move || {
    ///     started.send(()).unwrap();
    ///     let _ = released.recv(); // a long write, say
    /// });
    /// wait.recv().unwrap();
    /// assert!(!io.blocking_shutdown_timeout(Duration::ZERO));
    /// let err = job.join().unwrap_err();
    /// assert!(err.is_shutdown() && err.had_started());
    /// release.send(()).unwrap();
    /// ```
    pub fn had_started(&self) -> bool {
        matches!(self.repr, Repr::Shutdown { started: true })
    }

    /// `true` if the job was refused because the executor's queue was full.
    pub fn is_queue_full(&self) -> bool {
        self.kind() == JoinErrorKind::QueueFull
    }

    /// The panic message, when the job panicked with a `&str` or `String` payload
    /// (what `panic!("...")` produces).
    pub fn panic_message(&self) -> Option<&str> {
        match &self.repr {
            Repr::Panic { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// The panic payload, or the error itself if the job did not panic.
    ///
    /// # Errors
    ///
    /// Returns `self` unchanged when this is not a panic.
    ///
    /// # Examples
    ///
    /// ```
    /// let executor = io_executor::Builder::new().name("doc-payload").build().unwrap();
    /// let err = executor
    ///     .spawn_blocking(|| std::panic::panic_any(42_u32))
    ///     .join()
    ///     .unwrap_err();
    /// let payload = err.try_into_panic().unwrap();
    /// assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
    /// ```
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic { payload, .. } => {
                Ok(payload.into_inner().unwrap_or_else(|e| e.into_inner()))
            }
            repr => Err(Self { repr }),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("job was cancelled"),
            Repr::Shutdown { started: false } => {
                f.write_str("executor is shut down; the job did not run to completion")
            }
            Repr::Shutdown { started: true } => f.write_str(
                "the job was cut off while it ran (by the executor's shutdown deadline, \
                 or by the runtime it ran on going away); what it had begun may still \
                 take effect",
            ),
            Repr::QueueFull { limit } => {
                write!(
                    f,
                    "executor queue is full ({limit} jobs queued); the job was not accepted"
                )
            }
            Repr::Panic {
                message: Some(m), ..
            } => write!(f, "job panicked: {m}"),
            Repr::Panic { message: None, .. } => {
                f.write_str("job panicked with a non-string payload")
            }
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Shutdown { started: false } => f.write_str("JoinError::Shutdown"),
            Repr::Shutdown { started: true } => f.write_str("JoinError::Shutdown(cut off)"),
            Repr::QueueFull { limit } => write!(f, "JoinError::QueueFull({limit})"),
            Repr::Panic { message, .. } => {
                write!(
                    f,
                    "JoinError::Panic({:?})",
                    message.as_deref().unwrap_or("...")
                )
            }
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(err: JoinError) -> Self {
        let kind = match err.kind() {
            // Not `Interrupted`, which std's IO loops call again on: a cancelled
            // job stays cancelled.
            JoinErrorKind::QueueFull => std::io::ErrorKind::WouldBlock,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_into_io_errors_by_kind() {
        let io: std::io::Error = JoinError::cancelled().into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        let io: std::io::Error = JoinError::queue_full(3).into();
        assert_eq!(io.kind(), std::io::ErrorKind::WouldBlock);
        let io: std::io::Error = JoinError::panic(Box::new("boom")).into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        assert_eq!(io.to_string(), "job panicked: boom");
        let inner = io.into_inner().unwrap().downcast::<JoinError>().unwrap();
        assert!(inner.is_panic(), "the JoinError is kept as the source");
    }
}
