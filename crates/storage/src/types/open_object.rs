//! [`OpenObject`]: an opened object whose release runs on the executor.

use std::ops::Deref;
use std::sync::Arc;

use io_executor::Executor;

use crate::raw::RandomRead;
use crate::types::io_future::Task;

/// An opened object held by one user (a [`Reader`](crate::Reader), one
/// `read_ranges` call). Dropping it hands this very reference to a job on the
/// executor, the object's [`RandomRead::close`], so the dropping thread does not
/// release the object (for fs, close the file). Jobs reading the object hold
/// references of their own; whichever is released last frees it, on the executor.
/// Exceptions: a backend whose `close` releases in place (the default), and an
/// executor that refuses the job (shut down, or its queue full).
///
/// Keeping a clone here while the close job drops another would race: when the job
/// won, the last reference, and the release, stayed on the dropping thread.
pub(crate) struct OpenObject {
    /// `Some` until dropped.
    object: Option<Arc<dyn RandomRead>>,
    executor: Executor,
}

impl OpenObject {
    pub(crate) fn new(object: Arc<dyn RandomRead>, executor: Executor) -> Self {
        Self {
            object: Some(object),
            executor,
        }
    }
}

impl Deref for OpenObject {
    type Target = Arc<dyn RandomRead>;

    fn deref(&self) -> &Arc<dyn RandomRead> {
        self.object
            .as_ref()
            .expect("only drop takes the object out")
    }
}

impl Drop for OpenObject {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            Task::submit(&self.executor, object.close()).detach();
        }
    }
}
