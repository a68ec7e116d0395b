//! What the fs tests share: a runtime for the caller, and an operator over a
//! directory on a small executor of its own.

use std::num::NonZeroUsize;

use storage::Operator;

/// The caller's runtime: one thread, as a test's `block_on` has.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An operator over `dir` on an executor named `name`: one worker, two blocking
/// threads.
pub(crate) fn operator(dir: &std::path::Path, name: &str) -> (Operator, io_executor::Executor) {
    let executor = io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(1).unwrap())
        .blocking_threads(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let op =
        Operator::new(storage::services::Fs::new(dir).unwrap()).with_executor(executor.clone());
    (op, executor)
}
