//! Which executor thread, if any, the current thread is.
//!
//! Set once when one of our threads starts; read to avoid needless hops (a job
//! submitted from a pool's own thread) and to find per-worker state.

use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Worker(usize),
    Blocking(usize),
}

thread_local! {
    static CONTEXT: Cell<Option<(u64, Role)>> = const { Cell::new(None) };
}

pub(crate) fn enter(pool: u64, role: Role) {
    CONTEXT.with(|c| c.set(Some((pool, role))));
}

pub(crate) fn current() -> Option<(u64, Role)> {
    CONTEXT.with(Cell::get)
}

/// The worker index if the current thread is a worker of pool `pool`.
pub(crate) fn worker_of(pool: u64) -> Option<usize> {
    match current() {
        Some((id, Role::Worker(i))) if id == pool => Some(i),
        _ => None,
    }
}

/// `true` if the current thread is a blocking-lane thread of pool `pool`.
pub(crate) fn is_blocking_thread_of(pool: u64) -> bool {
    matches!(current(), Some((id, Role::Blocking(_))) if id == pool)
}
