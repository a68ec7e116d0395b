//! [`ReqBody`]: a request body made of `Bytes` pieces, sent without joining them,
//! and the [`Progress`] of one attempt at sending it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body of every request: zero or more `Bytes`, sent one frame each, with an
/// exact length (so hyper sends `Content-Length`). Cloning shares the pieces, which
/// is how a retried request gets its body again without a copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqBody {
    pieces: VecDeque<Bytes>,
    remaining: u64,
    progress: Option<Arc<Progress>>,
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
    sent: AtomicU64,
    /// Nanoseconds from `start` to the last frame taken.
    moved: AtomicU64,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            sent: AtomicU64::new(0),
            moved: AtomicU64::new(0),
        }
    }

    /// When the attempt began, or the connection last took a frame of the body.
    pub(crate) fn last_moved(&self) -> Instant {
        self.start + Duration::from_nanos(self.moved.load(Ordering::Relaxed))
    }

    /// The bytes of the body the connection has taken.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn took(&self, len: usize) {
        self.sent.fetch_add(len as u64, Ordering::Relaxed);
        let since = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.moved.store(since, Ordering::Relaxed);
    }
}

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
        }
    }

    /// This body, noting in `progress` each frame the connection takes.
    pub(crate) fn watched(mut self, progress: &Arc<Progress>) -> Self {
        self.progress = Some(Arc::clone(progress));
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
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let Some(front) = this.pieces.front_mut() else {
            return Poll::Ready(None);
        };
        let piece = if front.len() > FRAME {
            front.split_to(FRAME)
        } else {
            this.pieces.pop_front().unwrap_or_default()
        };
        this.remaining -= piece.len() as u64;
        if let Some(progress) = &this.progress {
            progress.took(piece.len());
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
