//! A blocking-lane thread: takes closures off the lane's channel and runs them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::builder::Hooks;
use crate::context::{self, Role};
use crate::shared::Shared;
use crate::worker::ExitOnDrop;

/// Runs on blocking thread `index` until the lane's channel is closed and empty.
/// Each job costs one hand-off: the channel send by the submitter.
pub(crate) fn run(shared: Arc<Shared>, index: usize, hooks: &Hooks) {
    let _exit = ExitOnDrop(&shared);
    context::enter(shared.id, Role::Blocking(index), &shared.name);
    context::enter_blocking(&shared);
    hooks.started();
    let pool = shared
        .pool
        .as_ref()
        .expect("blocking threads belong to a pool");
    let slot = &pool.running_blocking[index];
    while let Ok(job) = pool.blocking_rx.recv() {
        if pool.aborting.load(Ordering::SeqCst) {
            drop(job);
            continue;
        }
        *slot.lock() = Some(job.canceller());
        job.run();
        *slot.lock() = None;
    }
    hooks.stopped();
}
