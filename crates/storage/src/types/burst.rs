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
//! Only small reads of a backend that serves bursts are held (fs, see
//! [`Access::serves_bursts`](crate::raw::Access::serves_bursts)), and only while
//! another read waits for its first poll: a read awaited before the next is issued
//! starts when it is issued, as every other operation does. A held read starts at
//! the first poll of any read of its burst, whether its pages are in memory or
//! not; an executor shut down before that poll fails it, unless it is a job's
//! own read. A burst served after a shutdown reads, inside one of the
//! executor's jobs, the reads that jobs issued (their own work), and leaves every
//! other read to its own future, which starts it where it is polled: inside one
//! of the executor's jobs (which may still submit work) it is read, elsewhere it
//! fails. After a shutdown no read is held.
//!
//! Cancelling: a held read dropped before its burst starts is never read. Reads
//! started together share their jobs, so dropping some of their futures stops
//! nothing; the batch runs to its end and the dropped ones' results are dropped. A
//! batch that fails is read again read by read (so that each read gets its own
//! result) only for the reads whose futures still wait.

use std::collections::HashMap;
use std::fmt;
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

use crate::raw::{self, Access, ByteRange, IoJob, ReadArgs};
use crate::{Conditions, Error, ErrorKind, IoFuture, Operator, Options, Result};

/// Reads of one file held in a burst, at least this many, are read together on the
/// executor; fewer are read one by one on the polling thread. Measured (Intel Xeon,
/// 2 vCPUs, a scratch program: bursts of hot 4 KiB reads awaited with `join_all`),
/// one by one costs about 1.65 us a read, together about 60 us a batch (waking the
/// jobs, the task that hands out the results, and the caller) plus 1.05 us a read:
/// 128 reads took 211 us one by one and 226 us together, 256 took 423 us and 354
/// us, 64 took 108 us and 161 us.
const TOGETHER_MIN: usize = 192;

/// At most this many reads are held: the read that fills the burst serves it.
const HELD_MAX: usize = 1 << 14;

/// Small reads issued and not yet started, shared by the clones of one operator.
/// Its `Debug` output counts them (there may be thousands).
#[derive(Default)]
pub(crate) struct Burst {
    held: Mutex<Held>,
    /// Reads served when they were issued and not polled yet: while there are any,
    /// a read issued may be one of a burst, and is held.
    unpolled: AtomicUsize,
    /// What serves the burst: the operator's backend, executor and options (not the
    /// operator itself, which holds the burst).
    server: OnceLock<Server>,
}

impl fmt::Debug for Burst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Burst");
        if let Some(held) = self.held.try_lock() {
            out.field("held", &held.reads);
        }
        out.field("unpolled", &self.unpolled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Held {
    /// In the order they were issued; consecutive reads of one path share a group.
    groups: Vec<Group>,
    reads: usize,
    /// Of `reads`, how many futures were dropped before the burst was served:
    /// once all were, nothing is held (a read issued next starts as issued).
    dropped: usize,
}

/// A read left to its own future ([`State::Unserved`]).
#[derive(Debug)]
struct Unserved {
    operation: &'static str,
    path: String,
    normalized: String,
    range: Range<u64>,
}

/// Reads issued one after the other by one operation on one path.
#[derive(Debug)]
struct Group {
    operation: &'static str,
    /// As the caller gave it (errors name it).
    path: String,
    normalized: String,
    /// Issued inside one of the executor's jobs: its own work, which a shutdown
    /// lets it finish.
    own: bool,
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
    /// Left to its own future: the burst was served after a shutdown, where the
    /// executor takes no job (outside its jobs), or inside a job while the read
    /// was issued from outside. The read's own future starts it where it is
    /// polled: inside one of the executor's jobs (the read is that job's own
    /// work), accepted; elsewhere, refused.
    Unserved(Unserved),
    /// Read with others; the result.
    Done(Result<Bytes>, Option<Arc<Rest>>),
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

    /// `false` once the read's future is dropped.
    fn wanted(&self) -> bool {
        !matches!(*self.state.lock(), State::Gone)
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
        // burst. Started now, as `read_alone` starts it (on this thread if that
        // cannot wait), and counted until its first poll: reads issued meanwhile
        // are held.
        if burst.unpolled.load(Ordering::Acquire) == 0 && burst.held.lock().reads == 0 {
            let normalized = match raw::normalize_file_path(path) {
                Ok(p) => p,
                Err(e) => {
                    return IoFuture::ready(Err(e.with_operation(operation).with_path(path)));
                }
            };
            burst.unpolled.fetch_add(1, Ordering::AcqRel);
            let mut unpolled = Unpolled(Some(burst));
            let args =
                ReadArgs::new(ByteRange::new(range)).with_max_len(self.options().max_buffer_size);
            if let Some(now) = self.read_now(&normalized, &args) {
                let now = now.map_err(|e| e.with_operation(operation).with_path(path));
                return IoFuture::unpolled(now, unpolled);
            }
            let read = self.run(operation, path, self.access().read(&normalized, args));
            return IoFuture::new(async move {
                unpolled.polled();
                read.await
            });
        }
        let slot = Arc::new(Slot::default());
        let own = self.executor().in_job();
        let full = {
            let mut held = burst.held.lock();
            let same = held
                .groups
                .last()
                .is_some_and(|g| g.path == path && g.operation == operation && g.own == own);
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
                    own,
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
    /// Starts `read` on its own, from the thread that polls its future.
    fn read_alone(self: &Arc<Self>, read: Unserved) -> IoFuture<Bytes> {
        let Some(server) = self.server.get() else {
            return IoFuture::ready(Err(Error::new(ErrorKind::Unexpected)
                .with_message("a held read without the operator that holds it")
                .with_operation(read.operation)
                .with_path(read.path.as_str())));
        };
        let operator = Operator::serving(
            Arc::clone(&server.access),
            server.executor.clone(),
            server.options,
            Arc::clone(self),
        );
        operator.read_alone(read.operation, &read.path, &read.normalized, read.range)
    }

    /// Starts every read held: a file's reads together on the executor when there
    /// are enough of them, the others one by one (on this thread when they can be
    /// served without waiting, else each a job).
    fn serve(self: &Arc<Self>) {
        // Taken and started under one lock: a read is either held, and served by
        // whoever takes the burst next, or started, and finished by whoever took it.
        let mut held = {
            let mut held = self.held.lock();
            let mut taken = mem::take(&mut *held);
            for group in &mut taken.groups {
                group.reads.retain(|(_, slot)| slot.start());
            }
            taken
        };
        let Some(server) = self.server.get() else {
            return;
        };
        // Every read is started (or left to its own future) before any waker runs
        // (a waker that panics leaves no read unstarted).
        let mut wakers = Vec::new();
        if server.executor.is_shutdown() {
            // After a shutdown only a job's own reads are still read. Outside the
            // executor's jobs, this thread's submissions are refused, and some of
            // these reads may be a job's own work; inside one, the reads issued
            // from outside are not this job's. Each read not served here is started
            // by its own future's poll, where it is polled (and read there only if
            // that is inside one of the executor's jobs).
            let here = server.executor.accepts_jobs();
            let (served, left): (Vec<Group>, Vec<Group>) = mem::take(&mut held.groups)
                .into_iter()
                .partition(|g| here && g.own);
            held.groups = served;
            for group in left {
                for (range, slot) in group.reads {
                    let unserved = Unserved {
                        operation: group.operation,
                        path: group.path.clone(),
                        normalized: group.normalized.clone(),
                        range,
                    };
                    wakers.extend(slot.end(State::Unserved(unserved)));
                }
            }
        }
        let operator = Operator::serving(
            Arc::clone(&server.access),
            server.executor.clone(),
            server.options,
            Arc::clone(self),
        );
        let mut files: Vec<(usize, Vec<Group>)> = Vec::new();
        // Most often one group (one read, or a storm on one file): no index.
        let mut index: Option<HashMap<String, usize>> = (held.groups.len() > 1).then(HashMap::new);
        for group in held.groups {
            if group.reads.is_empty() {
                continue;
            }
            let n = group.reads.len();
            match index
                .as_mut()
                .map(|i| (i.get(&group.normalized).copied(), i))
            {
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
                    wakers.extend(slot.end(State::Alone(alone)));
                }
            }
        }
        wake_all(wakers);
    }
}

/// A read served when it was issued, counted in [`Burst::unpolled`] until it is
/// first polled or dropped. Its first poll is the first of its burst: it serves the
/// reads held since it was issued. Dropped unpolled, it serves nothing (the reads
/// held serve themselves when polled).
#[derive(Debug)]
pub(crate) struct Unpolled(Option<Arc<Burst>>);

impl Unpolled {
    /// The read's first poll (later ones do nothing).
    pub(crate) fn polled(&mut self) {
        let Some(burst) = self.uncount() else {
            return;
        };
        let held = burst.held.lock().reads;
        if held > 0 {
            burst.serve();
        }
    }

    fn uncount(&mut self) -> Option<Arc<Burst>> {
        let burst = self.0.take()?;
        burst.unpolled.fetch_sub(1, Ordering::AcqRel);
        Some(burst)
    }
}

impl Drop for Unpolled {
    fn drop(&mut self) {
        self.uncount();
    }
}

/// Reads of one file, started together as `read_ranges` starts them, and handed out
/// by a task on the executor once they end. If they fail together, each is read
/// again on its own ([`read_each`]), so that each gets its own result (a range past
/// the end of the file fails only its own read).
fn read_together(operator: &Operator, groups: Vec<Group>) {
    let ranges = groups
        .iter()
        .flat_map(|g| g.reads.iter().map(|(range, _)| range.clone()))
        .collect::<Vec<_>>();
    let count = ranges.len();
    // Nearby reads are merged as `read_ranges` merges them, but only into reads a
    // batch serves (under 256 KiB, within `max_buffer_size`): a caller who asked
    // for a small read never gets a slice that keeps a large buffer alive.
    let options = operator.options();
    let limits = raw::PlanLimits {
        coalesce_gap: options.coalesce_gap,
        split_size: options.split_size,
        // `plan` keeps every merged read within `max_buffer_size` itself.
        max_merge_size: options.max_merge_size.min(BATCH_MERGE_MAX),
        max_buffer_size: options.max_buffer_size,
        cap_overlaps: true,
    };
    let together = operator.read_ranges_within(
        "read_ranges",
        &groups[0].normalized,
        ranges,
        &limits,
        Conditions::default(),
    );
    let operator = operator.clone();
    let executor = operator.executor().clone();
    // Only a pool of this crate's own threads runs its tasks where tokio's timers
    // work (see the hand-off below).
    let timers = executor.num_blocking_threads() > 0;
    // Taken by the task once it runs; a task refused at once (the executor shut
    // down, its queue full, its runtime gone) leaves it here, for each read to
    // end in the refusal's own error.
    let cell = Arc::new(Mutex::new(Some(Delivery {
        groups,
        executor: executor.clone(),
    })));
    let held = Arc::clone(&cell);
    let task = executor.spawn(async move {
        let Some(mut delivery) = held.lock().take() else {
            return;
        };
        let results: Vec<Result<Bytes>> = match together.await {
            Ok(buffers) if buffers.len() == count => buffers.into_iter().map(Ok).collect(),
            _ => {
                // Read again only what a future still waits for.
                for group in &mut delivery.groups {
                    group.reads.retain(|(_, slot)| slot.wanted());
                }
                read_each(&operator, &delivery.groups).await
            }
        };
        let slots = delivery.groups.drain(..).flat_map(|g| g.reads);
        let mut wakers = Vec::new();
        let mut first = None;
        for ((_, slot), result) in slots.zip(results) {
            if let Some(waker) = slot.end(State::Done(result, None)) {
                if first.is_none() && timers {
                    first = Some((slot, waker));
                } else {
                    wakers.push(waker);
                }
            }
        }
        let Some((slot, waker)) = first else {
            wake_all(wakers);
            return;
        };
        // The first read's future wakes the others when it is polled, on its
        // caller's thread, where a wake costs little; from here each wake races
        // the caller for its wakers' cache lines (about 270 ns each, against the
        // 10,000 futures of a storm). Should that future not be polled soon (its
        // caller holds it and polls others), they are woken from here after all.
        let rest = Arc::new(Rest(Mutex::new(wakers)));
        let _rest = WakeOnDrop(Arc::clone(&rest));
        let handed = match &mut *slot.state.lock() {
            State::Done(_, handed) => {
                *handed = Some(Arc::clone(&rest));
                true
            }
            // Taken already (polled without a wake-up): wake them now.
            _ => false,
        };
        if !handed {
            rest.wake();
        }
        waker.wake();
        tokio::time::sleep(REST_WAIT).await;
    });
    if !task.is_finished() {
        task.detach();
        return;
    }
    let refused = futures::FutureExt::now_or_never(task).and_then(Result::err);
    if let (Some(refused), Some(delivery)) = (refused, cell.lock().take()) {
        delivery.fail(&Error::from_join(refused));
    }
}

/// Reads merged for a burst hold at most this much: less than the reads a batch
/// takes ([`BATCH_READ_MAX`](super::operator::BATCH_READ_MAX)), so that every
/// merged read is one of a batch (contiguous 4 KiB reads made merged reads of
/// exactly 256 KiB, a job each).
const BATCH_MERGE_MAX: u64 = super::operator::BATCH_READ_MAX - 1;

/// Each read of `groups` on its own, each with its own result and error. The
/// backend's blocking read jobs run one after the other in one job: the batch
/// failed, perhaps for one bad range among thousands, and a job per read would
/// flood the executor's queue.
async fn read_each(operator: &Operator, groups: &[Group]) -> Vec<Result<Bytes>> {
    let reads: Vec<(&Group, &Range<u64>)> = groups
        .iter()
        .flat_map(|g| g.reads.iter().map(move |(range, _)| (g, range)))
        .collect();
    let context = |i: usize, e: Error| {
        let group = reads[i].0;
        e.with_operation(group.operation)
            .with_path(group.path.as_str())
    };
    let mut results: Vec<Option<Result<Bytes>>> = (0..reads.len()).map(|_| None).collect();
    let mut blocking = Vec::new();
    let mut others = Vec::new();
    for (i, (group, range)) in reads.iter().enumerate() {
        let args = ReadArgs::new(ByteRange::new((*range).clone()))
            .with_max_len(operator.options().max_buffer_size);
        match operator.access().read(&group.normalized, args) {
            IoJob::Blocking(read) | IoJob::Bulk(read) => blocking.push((i, read)),
            job => others.push((i, operator.submit(job))),
        }
    }
    if !blocking.is_empty() {
        let indexes: Vec<usize> = blocking.iter().map(|(i, _)| *i).collect();
        let ran = operator
            .executor()
            .spawn_blocking(move || {
                blocking
                    .into_iter()
                    .map(|(i, read)| (i, read()))
                    .collect::<Vec<_>>()
            })
            .await;
        match ran {
            Ok(done) => {
                for (i, result) in done {
                    results[i] = Some(result.map_err(|e| context(i, e)));
                }
            }
            Err(e) => {
                let e = Error::from_join(e);
                // Each read's error keeps the job's (a panic's message, a shutdown).
                for i in indexes {
                    results[i] = Some(Err(context(i, e.clone())));
                }
            }
        }
    }
    for (i, task) in others {
        results[i] = Some(task.await.map_err(|e| context(i, e)));
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(Error::new(ErrorKind::Unexpected).with_message("a read was not served"))
            })
        })
        .collect()
}

/// How long the futures of a batch wait for the first one's poll to wake them
/// before the task that handed them out does.
/// (An hour in this crate's unit tests, so that they see who wakes whom.)
const REST_WAIT: std::time::Duration = if cfg!(test) {
    std::time::Duration::from_secs(3600)
} else {
    std::time::Duration::from_millis(1)
};

/// Wakes every one of `wakers`, even past one that panics: a waker's panic (a
/// bug of the executor it belongs to) must not leave the other reads' futures
/// asleep. The first panic is raised again once all are woken.
fn wake_all(wakers: Vec<Waker>) {
    let mut panicked = None;
    for waker in wakers {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()))
        {
            panicked.get_or_insert(panic);
        }
    }
    if let Some(panic) = panicked {
        std::panic::resume_unwind(panic);
    }
}

/// The wakers of a batch's futures but the first, woken once, by whoever comes
/// first: the first future's poll or drop, or the task that handed them out.
#[derive(Debug)]
struct Rest(Mutex<Vec<Waker>>);

impl Rest {
    fn wake(&self) {
        let wakers = mem::take(&mut *self.0.lock());
        wake_all(wakers);
    }
}

/// Wakes a batch's [`Rest`] when dropped (the task ended, or was dropped).
struct WakeOnDrop(Arc<Rest>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.wake();
    }
}

/// The reads a task on the executor hands out. A task the executor refuses ends
/// them in its refusal ([`ErrorKind::ShutDown`], or [`ErrorKind::RateLimited`] for
/// a full queue); dropped with some not handed out (the executor shut down under
/// it, or its runtime dropped it), those end in [`ErrorKind::ShutDown`]. No read
/// is left waiting.
struct Delivery {
    groups: Vec<Group>,
    executor: Executor,
}

impl Delivery {
    /// Ends every read not handed out yet in `err`.
    fn fail(mut self, err: &Error) {
        self.fail_each(err);
    }

    fn fail_each(&mut self, err: &Error) {
        let mut wakers = Vec::new();
        for group in self.groups.drain(..) {
            for (_, slot) in group.reads {
                let err = err
                    .clone()
                    .with_operation(group.operation)
                    .with_path(group.path.clone());
                wakers.extend(slot.end(State::Done(Err(err), None)));
            }
        }
        wake_all(wakers);
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // The task was dropped unfinished: by the executor's shutdown, or by its
        // runtime or spawner, which is as much an end of the executor.
        let message = if self.executor.is_shutdown() {
            "the executor shut down before the read ended"
        } else {
            "the executor dropped the task that hands out the read's result"
        };
        self.fail_each(&Error::new(ErrorKind::ShutDown).with_message(message));
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
                State::Unserved(_) => {
                    let State::Unserved(read) = mem::replace(&mut *state, State::Gone) else {
                        unreachable!("matched just above, under the same lock")
                    };
                    drop(state);
                    this.alone = Some(this.burst.read_alone(read));
                }
                State::Done(..) => {
                    if let State::Done(result, rest) = mem::replace(&mut *state, State::Gone) {
                        drop(state);
                        if let Some(rest) = rest {
                            rest.wake();
                        }
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
        // Held: the burst skips it, and once every read held was dropped so, it
        // holds nothing (the burst's lock first, as `serve` takes them: a read
        // still held is in the burst this lock guards). A state past `Held`
        // never goes back to it.
        if matches!(*self.slot.state.lock(), State::Held) {
            let mut held = self.burst.held.lock();
            let mut state = self.slot.state.lock();
            if matches!(*state, State::Held) {
                *state = State::Gone;
                drop(state);
                held.dropped += 1;
                if held.dropped == held.reads {
                    *held = Held::default();
                }
                return;
            }
        }
        // Started: whoever finishes it drops the result. Anything else (a job, a
        // result) is dropped here, not under the lock.
        let gone = mem::replace(&mut *self.slot.state.lock(), State::Gone);
        if let State::Done(_, Some(rest)) = &gone {
            rest.wake();
        }
        drop(gone);
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use super::*;

    /// A waker that counts its wake-ups.
    struct Count(AtomicUsize);

    impl futures::task::ArcWake for Count {
        fn wake_by_ref(count: &Arc<Self>) {
            count.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker that panics.
    struct Panics;

    impl futures::task::ArcWake for Panics {
        fn wake_by_ref(_: &Arc<Self>) {
            panic!("a waker that panics");
        }
    }

    /// ... and a waker among the others that panics does not keep the rest from
    /// being woken: its panic comes out of the poll that woke it, after them.
    #[test]
    fn the_first_future_of_a_batch_wakes_the_others_when_polled_or_dropped() {
        for (drop_first, panicking) in [(false, None), (true, None), (false, Some(200))] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("f"), vec![7_u8; 4 << 20]).unwrap();
            let executor = io_executor::Builder::new()
                .name("burst-unit")
                .blocking_threads(NonZeroUsize::new(2).unwrap())
                .build()
                .unwrap();
            let op = Operator::new(crate::services::Fs::new(dir.path()).unwrap())
                .with_executor(executor.clone());
            op.read("f").wait().unwrap();
            // The first is served as issued; the other 399 are held, and the first
            // poll among them starts them together.
            let mut reads: Vec<Option<IoFuture<Bytes>>> = (0..400_u64)
                .map(|i| Some(op.read_range("f", i * 4096..i * 4096 + 10)))
                .collect();
            let counts: Vec<Arc<Count>> = (0..400)
                .map(|_| Arc::new(Count(AtomicUsize::new(0))))
                .collect();
            // Both blocking threads held until every future has been polled once:
            // the batch cannot end before (were this thread preempted after the
            // first poll started it, every later poll would find its read done,
            // and nothing would show who wakes whom).
            let gate = Arc::new(std::sync::Barrier::new(3));
            let held: Vec<_> = (0..2)
                .map(|_| {
                    let gate = Arc::clone(&gate);
                    executor.spawn_blocking(move || gate.wait().is_leader())
                })
                .collect();
            let mut waiting = Vec::new();
            for i in 1..400 {
                let waker = if panicking == Some(i) {
                    futures::task::waker(Arc::new(Panics))
                } else {
                    futures::task::waker(Arc::clone(&counts[i]))
                };
                let read = reads[i].as_mut().unwrap();
                match Pin::new(read).poll(&mut Context::from_waker(&waker)) {
                    Poll::Ready(bytes) => {
                        panic!("read {i} ended while the batch was held: {bytes:?}")
                    }
                    Poll::Pending => waiting.push(i),
                }
            }
            gate.wait();
            for job in held {
                job.join().unwrap();
            }
            // Once the batch is handed out, exactly one waiting future is woken.
            let deadline = Instant::now() + Duration::from_secs(60);
            let woken = loop {
                let woken: Vec<usize> = waiting
                    .iter()
                    .copied()
                    .filter(|&i| counts[i].0.load(Ordering::SeqCst) > 0)
                    .collect();
                if !woken.is_empty() {
                    break woken;
                }
                assert!(Instant::now() < deadline, "the batch was never handed out");
                std::thread::sleep(Duration::from_millis(1));
            };
            assert_eq!(woken.len(), 1, "woken: {woken:?}");
            let first = woken[0];
            let others: Vec<usize> = waiting.into_iter().filter(|&i| i != first).collect();
            // Its poll, or its drop, wakes every other, there and then.
            let read = reads[first].take().unwrap();
            if drop_first {
                drop(read);
            } else if panicking.is_some() {
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read.wait()));
                assert!(polled.is_err(), "the waker's panic comes out of the poll");
            } else {
                assert_eq!(read.wait().unwrap().len(), 10);
            }
            for i in others {
                if panicking != Some(i) {
                    assert_eq!(counts[i].0.load(Ordering::SeqCst), 1, "read {i}");
                }
                assert_eq!(reads[i].take().unwrap().wait().unwrap().len(), 10);
            }
            executor.shutdown();
        }
    }
}
