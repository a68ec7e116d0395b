//! [`ReqBody`]: a request body made of `Bytes` pieces, sent without joining them,
//! the [`Progress`] of one attempt at sending it, and the [`Gate`] a body's last
//! byte may wait behind.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{FutureExt as _, Shared};
use http_body::{Body, Frame, SizeHint};

/// The body of every request: zero or more `Bytes`, sent one frame each, with an
/// exact length (so hyper sends `Content-Length`). Cloning shares the pieces, which
/// is how a retried request gets its body again without a copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqBody {
    pieces: VecDeque<Bytes>,
    remaining: u64,
    progress: Option<Arc<Progress>>,
    /// Opened before the last piece (one byte) is sent; `None` once passed.
    gate: Option<Gate>,
}

/// The most bytes one frame carries: a piece is handed to the connection in
/// frames this large (no copy), so that [`Progress`] moves as the body goes out.
const FRAME: usize = 1 << 20;

/// How far one attempt has sent its body, and when it last moved: the request
/// timeout bounds the wait between moves, not the whole upload, which on a slow
/// link may take longer than any timeout meant for a stuck server.
#[derive(Debug)]
pub(crate) struct Progress {
    start: Instant,
    /// The bytes taken, and [`CLOSED`] once the attempt has ended.
    sent: AtomicU64,
    /// Nanoseconds from `start` to the last frame taken.
    moved: AtomicU64,
    /// The body waits at its [`Gate`]: not a stuck server.
    held: AtomicBool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            sent: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            held: AtomicBool::new(false),
        }
    }

    /// When the attempt began, or the connection last took a frame of the body;
    /// now while the body waits at its [`Gate`] (what it waits for has timeouts of
    /// its own).
    pub(crate) fn last_moved(&self) -> Instant {
        if self.held.load(Ordering::Relaxed) {
            return Instant::now();
        }
        self.start + Duration::from_nanos(self.moved.load(Ordering::Relaxed))
    }

    /// The bytes of the body the connection has taken.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire) & !CLOSED
    }

    /// Ends the attempt's body: the connection takes no more of it (its next
    /// frame is an error, which breaks the connection off), so the bytes
    /// returned, those it took, are all it will ever have sent. An attempt that
    /// has failed may still have its connection writing meanwhile (hyper sends
    /// the body of a request answered early, or not yet dropped); what the
    /// server can have stored is known only once that is cut.
    pub(crate) fn close(&self) -> u64 {
        self.sent.fetch_or(CLOSED, Ordering::AcqRel) & !CLOSED
    }

    /// Counts `len` more bytes as taken, unless the body was [closed](Self::close).
    fn took(&self, len: usize) -> bool {
        let counted = self
            .sent
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |sent| {
                (sent & CLOSED == 0).then_some(sent + len as u64)
            })
            .is_ok();
        if counted {
            let since = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.moved.store(since, Ordering::Relaxed);
        }
        counted
    }
}

/// The flag of a [`Progress`] whose attempt has ended.
const CLOSED: u64 = 1 << 63;

/// What a [gated](ReqBody::gated) body waits for before its last byte: the
/// [`GateKey`] opening it. Clones (a retried request's body) share it.
#[derive(Clone)]
pub(crate) struct Gate(Shared<oneshot::Receiver<bool>>);

/// Opens or shuts its [`Gate`]; dropped unused, it shuts it.
#[derive(Debug)]
pub(crate) struct GateKey(oneshot::Sender<bool>);

impl GateKey {
    /// Opens the gate if `open`, else shuts it for good.
    pub(crate) fn set(self, open: bool) {
        // A gate no body waits at any more has nobody to tell.
        let _ = self.0.send(open);
    }
}

/// A shut [`Gate`] and its key.
pub(crate) fn gate() -> (GateKey, Gate) {
    let (key, gate) = oneshot::channel();
    (GateKey(key), Gate(gate.shared()))
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gate")
    }
}

/// The body error of a gated body whose gate was shut, or of an attempt that has
/// ended ([`Progress::close`]): the connection is dropped with the body short, so
/// the server never takes the request as whole.
#[derive(Debug)]
pub(crate) struct CalledOff;

impl fmt::Display for CalledOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request was called off before its body was whole")
    }
}

impl std::error::Error for CalledOff {}

impl ReqBody {
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    pub(crate) fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> Self {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = pieces.iter().map(|p| p.len() as u64).sum();
        Self {
            pieces,
            remaining,
            progress: None,
            gate: None,
        }
    }

    /// This body, noting in `progress` each frame the connection takes.
    pub(crate) fn watched(mut self, progress: &Arc<Progress>) -> Self {
        self.progress = Some(Arc::clone(progress));
        self
    }

    /// This body, its last byte held back until `gate` opens: the rest goes out
    /// meanwhile, and a shut gate drops the request one byte short. An empty body
    /// has no byte to hold and is returned as it is: its request must not be
    /// sent before whatever would open the gate.
    pub(crate) fn gated(mut self, gate: Gate) -> Self {
        let Some(last) = self.pieces.back_mut() else {
            return self;
        };
        if last.len() > 1 {
            let byte = last.split_off(last.len() - 1);
            self.pieces.push_back(byte);
        }
        self.gate = Some(gate);
        self
    }

    pub(crate) fn len(&self) -> u64 {
        self.remaining
    }

    /// The pieces not sent yet, in order.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.pieces.iter().map(|p| &p[..])
    }
}

impl From<Bytes> for ReqBody {
    fn from(bytes: Bytes) -> Self {
        Self::from_pieces([bytes])
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = CalledOff;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CalledOff>>> {
        let this = &mut *self;
        if this.pieces.len() == 1
            && let Some(gate) = &mut this.gate
        {
            let held = |held| {
                if let Some(progress) = &this.progress {
                    progress.held.store(held, Ordering::Relaxed);
                }
            };
            match Pin::new(&mut gate.0).poll(cx) {
                Poll::Pending => {
                    held(true);
                    return Poll::Pending;
                }
                Poll::Ready(Ok(true)) => {
                    held(false);
                    this.gate = None;
                }
                // Shut, or its key dropped unused (the write was dropped).
                Poll::Ready(Ok(false) | Err(oneshot::Canceled)) => {
                    held(false);
                    return Poll::Ready(Some(Err(CalledOff)));
                }
            }
        }
        let Some(front) = this.pieces.front_mut() else {
            return Poll::Ready(None);
        };
        let len = front.len().min(FRAME);
        // Counted before it is handed over: a frame of a closed attempt is not.
        if let Some(progress) = &this.progress
            && !progress.took(len)
        {
            return Poll::Ready(Some(Err(CalledOff)));
        }
        let piece = if front.len() > FRAME {
            front.split_to(FRAME)
        } else {
            this.pieces.pop_front().unwrap_or_default()
        };
        this.remaining -= piece.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    /// A body whose attempt was closed hands the connection nothing more: what
    /// `close` returned is all it ever took, and its next frame is an error.
    #[test]
    fn a_closed_body_gives_the_connection_nothing_more() {
        let progress = Arc::new(Progress::new());
        let piece = Bytes::from(vec![7_u8; FRAME + 10]);
        let mut body = ReqBody::from(piece).watched(&progress);
        futures::executor::block_on(async {
            let first = body.frame().await.unwrap().unwrap();
            assert_eq!(first.into_data().unwrap().len(), FRAME);
            assert_eq!(progress.close(), FRAME as u64);
            assert!(
                body.frame().await.unwrap().is_err(),
                "a frame after the close"
            );
        });
        assert_eq!(progress.sent(), FRAME as u64);
        assert_eq!(
            progress.close(),
            FRAME as u64,
            "closing again changes nothing"
        );
    }
}
