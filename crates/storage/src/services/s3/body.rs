//! [`ReqBody`]: a request body made of `Bytes` pieces, sent without joining them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body of every request: zero or more `Bytes`, sent one frame each, with an
/// exact length (so hyper sends `Content-Length`). Cloning shares the pieces, which
/// is how a retried request gets its body again without a copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqBody {
    pieces: VecDeque<Bytes>,
    remaining: u64,
}

impl ReqBody {
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    pub(crate) fn from_pieces(pieces: impl IntoIterator<Item = Bytes>) -> Self {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = pieces.iter().map(|p| p.len() as u64).sum();
        Self { pieces, remaining }
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
        Poll::Ready(self.pieces.pop_front().map(|piece| {
            self.remaining -= piece.len() as u64;
            Ok(Frame::data(piece))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
