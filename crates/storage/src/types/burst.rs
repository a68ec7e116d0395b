//! [`Burst`]: small reads issued together, served together.
//!
//! A query engine issues many small reads at once: page indexes, bloom filters, row
//! lookups, each a `read_range` future, all awaited together. Served one by one on
//! the caller's thread ([`Options::read_now`](crate::Options::read_now)), they use
//! one core and pay a path lookup each; handed off one by one, they pay a hand-off
//! each. A `Burst` holds such reads from when they are issued to when the first of
//! them is polled; that poll serves every read held so far. A few are read on the
//! polling thread, as a single read is. Many reads of one file are read as
//! [`read_ranges`](crate::Operator::read_ranges) reads them: the file opened once,
//! the reads shared out to jobs on the blocking threads, a hand-off per job instead
//! of one per read.
//!
//! Only reads a backend can serve from memory without waiting are held (fs: small
//! reads, see [`Access::serves_bursts`](crate::raw::Access::serves_bursts)); their
//! IO starts at the first poll of any read of the burst, not when each is issued.
//! Reads that wait on a device or a network start when they are issued, as before.

use std::collections::HashMap;
use std::future::Future;
use std::mem;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use io_executor::Executor;
use parking_lot::Mutex;

use crate::raw::{self, Access, ByteRange, ReadArgs};
use crate::{Error, ErrorKind, IoFuture, Operator, Options, Result};

/// Reads of one file held in a burst, at least this many, are read together on the
/// executor; fewer are read one by one on the polling thread. A batch costs two
/// hand-offs (to the jobs and back, about 15-40 us on the VMs we measure on); a
/// small read on the caller's thread about 1-3 us.
const TOGETHER_MIN: usize = 16;

/// At most this many reads are held: the read that fills the burst serves it.
const HELD_MAX: usize = 1 << 14;

/// Small reads issued and not yet started, shared by the clones of one operator.
#[derive(Debug, Default)]
pub(crate) struct Burst {
    held: Mutex<Held>,
    /// Reads served when they were issued and not polled yet: while there are any,
    /// a read issued may be one of a burst, and is held.
    unpolled: AtomicUsize,
    /// What serves the burst: the operator's backend, executor and options (not the
    /// operator itself, which holds the burst).
    server: OnceLock<Server>,
}

#[derive(Debug, Default)]
struct Held {
    /// In the order they were issued; consecutive reads of one path share a group.
    groups: Vec<Group>,
    reads: usize,
}

/// Reads issued one after the other by one operation on one path.
#[derive(Debug)]
struct Group {
    operation: &'static str,
    /// As the caller gave it (errors name it).
    path: String,
    normalized: String,
    reads: Vec<(Range<u64>, Arc<Slot>)>,
}

#[derive(Debug, Clone)]
struct Server {
    access: Arc<dyn Access>,
    executor: Executor,
    options: Options,
}

#[derive(Debug, Default)]
struct Slot {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
enum State {
    /// Held in the burst; not started.
    #[default]
    Held,
    /// Taken out of the burst by a poll that is starting it, or read with others on
    /// the executor: whoever finishes it wakes the waker.
    Started(Option<Waker>),
    /// Started on its own: the read's future awaits it.
    Alone(IoFuture<Bytes>),
    /// Read with others; the result.
    Done(Result<Bytes>),
    /// Handed out, or its future was dropped.
    Gone,
}

impl Slot {
    /// Moves a held read to `Started`; `false` if its future was dropped.
    fn start(&self) -> bool {
        let mut state = self.state.lock();
        if matches!(*state, State::Held) {
            *state = State::Started(None);
            true
        } else {
            false
        }
    }

    /// Ends a started read with `next` (its future, or its result) and returns the
    /// waker of the read's future, if it waits. A read whose future is gone drops
    /// `next` (a future dropped cancels its job).
    ///
    /// A task that ends many reads wakes their futures once all are ready, so that
    /// their caller, woken by the first, finds the others ready too instead of going
    /// back to sleep between them.
    fn end(&self, next: State) -> Option<Waker> {
        let mut state = self.state.lock();
        if let State::Started(waker) = &mut *state {
            let waker = waker.take();
            *state = next;
            return waker;
        }
        None
    }
}

impl Operator {
    /// Holds a read of `range` of `path` in this operator's burst and returns its
    /// future.
    pub(crate) fn hold(
        &self,
        operation: &'static str,
        path: &str,
        range: Range<u64>,
    ) -> IoFuture<Bytes> {
        let burst = Arc::clone(self.burst());
        burst.server.get_or_init(|| Server {
            access: Arc::clone(self.access()),
            executor: self.executor().clone(),
            options: *self.options(),
        });
        // Nothing held and no read waiting for its first poll: a read on its own
        // (the caller awaits each read before it issues the next), or the first of a
        // burst. Served now if that cannot wait, as `read_alone` would serve it; its
        // first poll serves whatever was issued after it.
        if burst.unpolled.load(Ordering::Acquire) == 0 && burst.held.lock().reads == 0 {
            match raw::normalize_file_path(path) {
                Ok(normalized) => {
                    let args = ReadArgs::new(ByteRange::new(range.clone()))
                        .with_max_len(self.options().max_buffer_size);
                    if let Some(now) = self.read_now(&normalized, &args) {
                        let now = now.map_err(|e| e.with_operation(operation).with_path(path));
                        burst.unpolled.fetch_add(1, Ordering::AcqRel);
                        return IoFuture::unpolled(now, Unpolled(Some(burst)));
                    }
                }
                Err(e) => {
                    return IoFuture::ready(Err(e.with_operation(operation).with_path(path)));
                }
            }
        }
        let slot = Arc::new(Slot::default());
        let full = {
            let mut held = burst.held.lock();
            let same = held
                .groups
                .last()
                .is_some_and(|g| g.path == path && g.operation == operation);
            if !same {
                // A path seen last time was valid then; only a new one is checked.
                let normalized = match raw::normalize_file_path(path) {
                    Ok(p) => p,
                    Err(e) => {
                        return IoFuture::ready(Err(e.with_operation(operation).with_path(path)));
                    }
                };
                held.groups.push(Group {
                    operation,
                    path: path.to_owned(),
                    normalized,
                    reads: Vec::new(),
                });
            }
            held.reads += 1;
            let full = held.reads >= HELD_MAX;
            if let Some(group) = held.groups.last_mut() {
                group.reads.push((range, Arc::clone(&slot)));
            }
            full
        };
        if full {
            burst.serve();
        }
        IoFuture::new(HeldRead {
            burst,
            slot,
            alone: None,
        })
    }
}

impl Burst {
    /// Starts every read held: a file's reads together on the executor when there
    /// are enough of them, the others one by one (on this thread when they can be
    /// served without waiting, else each a job).
    fn serve(self: &Arc<Self>) {
        let held = mem::take(&mut *self.held.lock());
        let Some(server) = self.server.get() else {
            return;
        };
        let operator = Operator::serving(
            Arc::clone(&server.access),
            server.executor.clone(),
            server.options,
            Arc::clone(self),
        );
        let mut files: Vec<(usize, Vec<Group>)> = Vec::new();
        // Most often one group (one read, or a storm on one file): no index.
        let mut index: Option<HashMap<String, usize>> =
            (held.groups.len() > 1).then(HashMap::new);
        for mut group in held.groups {
            group.reads.retain(|(_, slot)| slot.start());
            if group.reads.is_empty() {
                continue;
            }
            let n = group.reads.len();
            match index.as_mut().map(|i| (i.get(&group.normalized).copied(), i)) {
                Some((Some(i), _)) => {
                    files[i].0 += n;
                    files[i].1.push(group);
                }
                Some((None, index)) => {
                    index.insert(group.normalized.clone(), files.len());
                    files.push((n, vec![group]));
                }
                None => files.push((n, vec![group])),
            }
        }
        for (reads, groups) in files {
            if reads >= TOGETHER_MIN {
                read_together(&operator, groups);
                continue;
            }
            for group in groups {
                for (range, slot) in &group.reads {
                    let alone = operator.read_alone(
                        group.operation,
                        &group.path,
                        &group.normalized,
                        range.clone(),
                    );
                    if let Some(waker) = slot.end(State::Alone(alone)) {
                        waker.wake();
                    }
                }
            }
        }
    }
}

/// A read served when it was issued, counted in [`Burst::unpolled`] until it is
/// first polled or dropped. (The reads held after it serve themselves when polled.)
#[derive(Debug)]
pub(crate) struct Unpolled(Option<Arc<Burst>>);

impl Unpolled {
    pub(crate) fn polled(&mut self) {
        if let Some(burst) = self.0.take() {
            burst.unpolled.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Unpolled {
    fn drop(&mut self) {
        self.polled();
    }
}

/// Reads of one file, started together as `read_ranges` starts them, and handed out
/// by a task on the executor once they end. If they fail together, each is read
/// again on its own, so that each gets its own result (a range past the end of the
/// file fails only its own read).
fn read_together(operator: &Operator, groups: Vec<Group>) {
    let ranges = groups
        .iter()
        .flat_map(|g| g.reads.iter().map(|(range, _)| range.clone()))
        .collect::<Vec<_>>();
    let count = ranges.len();
    let together = operator.read_ranges(&groups[0].normalized, ranges);
    let operator = operator.clone();
    let mut delivery = Delivery { groups };
    operator
        .executor()
        .clone()
        .spawn(async move {
            let results: Vec<Result<Bytes>> = match together.await {
                Ok(buffers) if buffers.len() == count => buffers.into_iter().map(Ok).collect(),
                _ => {
                    let alone = delivery.groups.iter().flat_map(|g| {
                        g.reads.iter().map(|(range, _)| {
                            operator.read_alone(g.operation, &g.path, &g.normalized, range.clone())
                        })
                    });
                    futures::future::join_all(alone).await
                }
            };
            let slots = delivery.groups.drain(..).flat_map(|g| g.reads);
            let wakers: Vec<Waker> = slots
                .zip(results)
                .filter_map(|((_, slot), result)| slot.end(State::Done(result)))
                .collect();
            wakers.into_iter().for_each(Waker::wake);
        })
        .detach();
}

/// The reads a task on the executor hands out. Dropped with some not handed out
/// (the executor refused the task or shut down under it), those end in
/// [`ErrorKind::ShutDown`]: no read is left waiting.
struct Delivery {
    groups: Vec<Group>,
}

impl Drop for Delivery {
    fn drop(&mut self) {
        for group in self.groups.drain(..) {
            for (_, slot) in group.reads {
                let err = Error::new(ErrorKind::ShutDown)
                    .with_message("the executor shut down before the read ended")
                    .with_operation(group.operation)
                    .with_path(group.path.clone());
                if let Some(waker) = slot.end(State::Done(Err(err))) {
                    waker.wake();
                }
            }
        }
    }
}

/// The future of a held read.
struct HeldRead {
    burst: Arc<Burst>,
    slot: Arc<Slot>,
    /// The read's own future, once it was started on its own.
    alone: Option<IoFuture<Bytes>>,
}

impl Future for HeldRead {
    type Output = Result<Bytes>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Bytes>> {
        let this = self.get_mut();
        loop {
            if let Some(alone) = &mut this.alone {
                return Pin::new(alone).poll(cx);
            }
            let mut state = this.slot.state.lock();
            match &mut *state {
                State::Held => {
                    drop(state);
                    this.burst.serve();
                }
                State::Started(waker) => {
                    if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        *waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                State::Alone(_) => {
                    if let State::Alone(alone) = mem::replace(&mut *state, State::Gone) {
                        this.alone = Some(alone);
                    }
                }
                State::Done(_) => {
                    if let State::Done(result) = mem::replace(&mut *state, State::Gone) {
                        return Poll::Ready(result);
                    }
                }
                State::Gone => panic!("a read's IoFuture polled after it completed"),
            }
        }
    }
}

impl Drop for HeldRead {
    fn drop(&mut self) {
        // Held: the burst skips it. Started: whoever finishes it drops the result.
        // Anything else (a job, a result) is dropped here, not under the lock.
        let gone = mem::replace(&mut *self.slot.state.lock(), State::Gone);
        drop(gone);
    }
}
