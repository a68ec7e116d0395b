//! [`IoMultipartUpload`]: a multipart upload driven by a task on the executor.
//!
//! The inner `MultipartUpload` lives in an actor task on the executor and never
//! leaves it. The caller's end only sends commands: `put_part` is a sync call, so its
//! command is sent right away and commands arrive in call order, which is the order
//! the inner upload sees its parts in. The actor calls the inner `put_part` and runs
//! each part's future as a job of its own, so parts upload in parallel across the
//! executor's workers.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::future::poll_fn;
use futures_util::stream::FuturesUnordered;
use io_executor::{Executor, JoinHandle};
use object_store::path::Path;
use object_store::{MultipartUpload, PutPayload, PutResult, Result, UploadPart};
use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::executor_error::{STORE, executor_error};

enum Command {
    PutPart {
        data: PutPayload,
        reply: oneshot::Sender<Result<()>>,
        /// The part's job, already refused where `put_part` was called (see
        /// there): its refusal is the part's result.
        refused: Option<JoinHandle<Result<()>>>,
    },
    Complete {
        reply: oneshot::Sender<Result<PutResult>>,
    },
    Abort {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// The caller's end of a multipart upload whose inner upload lives on the executor.
///
/// - `put_part` sends the part to the actor at once (in call order); the returned
///   future resolves when that part has been uploaded. Dropping it cancels the
///   part, unless its job has ended (the part then counts as its job ended).
/// - `complete` first waits for every part already started, then completes the
///   inner upload, unless a part failed or was cancelled (its future dropped
///   before it ended): then the object would lack it, and `complete` is an error
///   naming the first such part, without completing (abort the upload). `abort`
///   cancels parts still under way, waits until their jobs are gone (no part request is
///   still out), then aborts.
/// - Dropping this handle lets parts whose futures are still held finish, then drops
///   the inner upload on the executor.
pub(crate) struct IoMultipartUpload {
    commands: mpsc::UnboundedSender<Command>,
    executor: Executor,
    location: Path,
}

impl IoMultipartUpload {
    /// Starts the actor that owns `inner`, on one of `executor`'s workers.
    ///
    /// # Errors
    ///
    /// The executor refused the actor: a shutdown deadline cut its jobs off since
    /// `inner` was made (a plain shutdown does not: this runs inside the job
    /// that made `inner`, whose own work is still accepted), or its queue is
    /// full. Nothing would drive the upload, so it is aborted here (a failed
    /// abort is logged), and the error says why.
    pub(crate) async fn start(
        inner: Box<dyn MultipartUpload>,
        executor: Executor,
        location: Path,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        // The upload goes to the actor once it is accepted: a refused actor is
        // dropped at once, and the upload comes back.
        let (give, take) = oneshot::channel();
        let task = {
            // The parts continue an upload the executor accepted: its queue's
            // bound does not refuse them (the inner upload numbered a part when
            // it was offered, and the object would lack one refused for a
            // moment's load); they wait their turn.
            let (on, location) = (executor.without_queue_bound(), location.clone());
            executor.spawn(async move {
                if let Ok(inner) = take.await {
                    actor(inner, rx, on, location).await;
                }
            })
        };
        let Err(mut inner) = give.send(inner) else {
            task.detach();
            return Ok(Self {
                commands: tx,
                executor,
                location,
            });
        };
        if let Err(e) = inner.abort().await {
            tracing::warn!(%location, error = %e, "cannot abort an upload the executor refused to drive");
        }
        Err(match task.await {
            Err(refused) => {
                executor_error("put_multipart_opts", Some(&location), &executor, refused)
            }
            Ok(()) => object_store::Error::Generic {
                store: STORE,
                source: format!("the task of the upload of `{location}` ended without it").into(),
            },
        })
    }

    /// A future of the actor's answer to the command `make` builds.
    fn ask<T: Send + 'static>(
        &self,
        operation: &'static str,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        // A failed send drops the command and so `tx`: `rx` then reports the actor gone.
        let _ = self.commands.send(make(tx));
        let gone = ActorGone {
            operation,
            location: self.location.to_string(),
            executor: self.executor.name().to_owned(),
        };
        async move {
            rx.await.unwrap_or_else(|_| {
                Err(object_store::Error::Generic {
                    store: STORE,
                    source: Box::new(gone),
                })
            })
        }
    }
}

#[async_trait]
impl MultipartUpload for IoMultipartUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        // The actor is a job, and may submit its own work after a shutdown; a part
        // from outside the executor's jobs is new work, refused after a shutdown
        // as a job submitted from here is (with that job's refusal). It still
        // takes its place in the order, so the object would lack it: `complete`
        // refuses.
        // (Should the stand-in run after all, it fails the part: never a part
        // counted as uploaded that was not.)
        let location = self.location.clone();
        let refused = (!self.executor.accepts_jobs()).then(|| {
            self.executor.spawn(async move {
                Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!("put_part `{location}`: refused after the executor shut down")
                        .into(),
                })
            })
        });
        Box::pin(self.ask("put_part", |reply| Command::PutPart {
            data,
            reply,
            refused,
        }))
    }

    async fn complete(&mut self) -> Result<PutResult> {
        self.ask("complete", |reply| Command::Complete { reply })
            .await
    }

    async fn abort(&mut self) -> Result<()> {
        self.ask("abort", |reply| Command::Abort { reply }).await
    }
}

impl fmt::Debug for IoMultipartUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoMultipartUpload")
            .field("location", &self.location)
            .field("executor", &self.executor.name())
            .finish_non_exhaustive()
    }
}

/// The actor: owns the inner upload, runs commands in order, relays part results.
async fn actor(
    mut inner: Box<dyn MultipartUpload>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    executor: Executor,
    location: Path,
) {
    let mut parts = FuturesUnordered::new();
    // What an `abort` tells the parts under way: each cancels its job and waits
    // until the job is gone.
    let abort = Arc::new(Notify::new());
    // The first part that failed or was cancelled: the object would lack it.
    let mut missing: Option<String> = None;
    let mut next_part = 0_usize;
    loop {
        let command = poll_fn(|cx| {
            // Relays that finish are done; an empty set is `Ready(None)`.
            while let Poll::Ready(Some(lost)) = parts.poll_next_unpin(cx) {
                note(&mut missing, lost);
            }
            commands.poll_recv(cx)
        })
        .await;
        match command {
            None => break,
            Some(Command::PutPart {
                data,
                reply,
                refused,
            }) => {
                let part = match refused {
                    Some(refused) => refused,
                    None => executor.spawn(inner.put_part(data)),
                };
                // Told of an abort from now on, whenever it is first polled.
                let aborted = Arc::clone(&abort).notified_owned();
                parts.push(relay(part, next_part, reply, aborted, &executor, &location));
                next_part += 1;
            }
            Some(Command::Complete { mut reply }) => {
                // Every part started before `complete` was called is in the object.
                let drained = until_closed(&mut reply, async {
                    while let Some(lost) = parts.next().await {
                        note(&mut missing, lost);
                    }
                })
                .await;
                if drained.is_none() {
                    continue;
                }
                if let Some(lost) = &missing {
                    let _ = reply.send(Err(object_store::Error::Generic {
                        store: STORE,
                        source: format!(
                            "the upload of `{location}` is not completed: its {lost}, \
                             and the object would lack it (abort the upload)"
                        )
                        .into(),
                    }));
                } else if let Some(result) = until_closed(&mut reply, inner.complete()).await {
                    let _ = reply.send(result);
                }
            }
            Some(Command::Abort { mut reply }) => {
                // Parts still under way are cancelled; their futures report it,
                // and a `complete` after an abort that failed refuses. The upload
                // is aborted once their jobs are gone: a part request still out
                // when the abort lands may be stored after it (S3 says so), and
                // left billed.
                if !parts.is_empty() {
                    note(
                        &mut missing,
                        Some(format!(
                            "parts still under way ({}) were cancelled by `abort`",
                            parts.len()
                        )),
                    );
                }
                abort.notify_waiters();
                let ended =
                    until_closed(&mut reply, async { while parts.next().await.is_some() {} }).await;
                if ended.is_none() {
                    continue;
                }
                if let Some(result) = until_closed(&mut reply, inner.abort()).await {
                    let _ = reply.send(result);
                }
            }
        }
    }
    // The caller's handle is gone: parts someone still waits for finish, then the
    // inner upload is dropped, here on the executor.
    while parts.next().await.is_some() {}
    drop(inner);
}

/// Keeps the first part the object lacks.
fn note(missing: &mut Option<String>, lost: Option<String>) {
    *missing = missing.take().or(lost);
}

/// Waits for part `index`'s job and passes its result on; cancels the job if the
/// caller drops the part's future first, or `aborted` says the upload is being
/// aborted, and then waits until the job is gone. Ends with what the object lacks
/// for it: `None` if the part was uploaded, else what became of it.
///
/// A part whose job ended (uploaded, or failed) before the cancel reached it ended
/// as its job says (counted cancelled, an uploaded part would have made `complete`
/// refuse an object that has it).
fn relay(
    mut part: JoinHandle<Result<()>>,
    index: usize,
    mut reply: oneshot::Sender<Result<()>>,
    aborted: OwnedNotified,
    executor: &Executor,
    location: &Path,
) -> impl Future<Output = Option<String>> + Send + 'static {
    let executor = executor.clone();
    let location = location.clone();
    async move {
        let mut aborted = pin!(aborted);
        // Why the part's job was cancelled, if it was: it is then awaited until it
        // is gone, so that no request of it is still out when the upload is
        // aborted.
        let mut cancelled = None;
        let done = poll_fn(|cx| {
            if let Poll::Ready(done) = Pin::new(&mut part).poll(cx) {
                return Poll::Ready(done);
            }
            if cancelled.is_none() {
                if aborted.as_mut().poll(cx).is_ready() {
                    cancelled = Some("by `abort`");
                } else if reply.poll_closed(cx).is_ready() {
                    cancelled = Some("(its future dropped)");
                }
                if cancelled.is_some() {
                    // Wakes the job, which ends, which wakes this.
                    part.abort();
                }
            }
            Poll::Pending
        })
        .await;
        if let (Some(why), Err(e)) = (cancelled, &done)
            && e.is_cancelled()
        {
            let message = format!("part {index} was cancelled {why}");
            let _ = reply.send(Err(object_store::Error::Generic {
                store: STORE,
                source: format!("the upload of `{location}`: {message}").into(),
            }));
            return Some(message);
        }
        let result = done
            .map_err(|e| executor_error("put_part", Some(&location), &executor, e))
            .and_then(|r| r);
        let lost = result
            .as_ref()
            .err()
            .map(|e| format!("part {index} failed ({e})"));
        let _ = reply.send(result);
        lost
    }
}

/// Runs `work` until it ends (`Some`) or the caller stops waiting for its answer
/// (`None`; `work` is dropped).
async fn until_closed<T, R>(
    reply: &mut oneshot::Sender<R>,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = pin!(work);
    poll_fn(|cx| {
        if reply.poll_closed(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut work).poll(cx).map(Some)
    })
    .await
}

/// The actor ended before answering.
#[derive(Debug)]
struct ActorGone {
    operation: &'static str,
    location: String,
    executor: String,
}

impl fmt::Display for ActorGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}`: the upload's task on IO executor `{}` ended without an answer \
             (the upload was aborted, the executor shut down, or the inner upload panicked)",
            self.operation, self.location, self.executor
        )
    }
}

impl std::error::Error for ActorGone {}
