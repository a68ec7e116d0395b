//! [`Spawn`]: plug in an executor of your own.

use std::future::Future;
use std::pin::Pin;

/// A type-erased async job, as handed to a [`Spawn`] implementation.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A type-erased blocking job, as handed to a [`Spawn`] implementation.
pub type BlockingFn = Box<dyn FnOnce() + Send + 'static>;

/// An executor of your own, for [`Executor::custom`](crate::Executor::custom); the
/// shape of `hyper::rt::Executor`.
///
/// The jobs handed over are already wrapped: they catch panics, deliver their output
/// to the caller's [`JoinHandle`](crate::JoinHandle) and honour cancellation. An
/// implementation only has to run them. If it drops a job without running it to the
/// end, the job's handle resolves to a shutdown [`JoinError`](crate::JoinError).
///
/// # Examples
///
/// ```
/// use io_executor::{BlockingFn, BoxFuture, Executor, Spawn};
///
/// #[derive(Debug)]
/// struct OnTokio(tokio::runtime::Handle);
///
/// impl Spawn for OnTokio {
///     fn spawn(&self, future: BoxFuture) {
///         self.0.spawn(future);
///     }
///     fn spawn_blocking(&self, job: BlockingFn) {
///         self.0.spawn_blocking(job);
///     }
/// }
///
/// let runtime = tokio::runtime::Runtime::new().unwrap();
/// let executor = Executor::custom(OnTokio(runtime.handle().clone()));
/// assert_eq!(runtime.block_on(executor.spawn(async { 1 + 1 })).unwrap(), 2);
/// ```
pub trait Spawn: Send + Sync + 'static {
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture);

    /// Runs `job` on a thread where blocking is fine.
    ///
    /// The default starts a new thread per job; override it to use a pool. Where
    /// that thread cannot start (the process is out of threads), the job is
    /// dropped unrun, its handle resolves to a [`JoinErrorKind::Shutdown`]
    /// error, and the cause is logged (`tracing`, level error).
    ///
    /// [`JoinErrorKind::Shutdown`]: crate::JoinErrorKind::Shutdown
    fn spawn_blocking(&self, job: BlockingFn) {
        // If the thread cannot be started the job is dropped, and its handle
        // resolves to a shutdown error: the cause is logged, as the handle cannot
        // carry it.
        if let Err(e) = std::thread::Builder::new()
            .name("io-custom-blocking".to_owned())
            .spawn(job)
        {
            tracing::error!(
                error = %e,
                "a custom executor's blocking job was dropped unrun: its thread could not start"
            );
        }
    }
}
