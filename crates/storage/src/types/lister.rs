//! [`Lister`]: a listing whose pages are read on the executor.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use io_executor::Executor;

use crate::raw::RawList;
use crate::types::io_future::{Opener, Task};
use crate::{Entry, Error, Result};

/// A page of a listing, with the listing to continue from.
type Page = (Box<dyn RawList>, Vec<Entry>);

/// A stream of [`Entry`]s, from [`Operator::lister`](crate::Operator::lister).
///
/// Pages are read on the executor; while the caller consumes one page, the next is
/// already being read. Dropping the lister cancels the page in flight and releases
/// the listing on the executor.
///
/// # Errors are sticky
///
/// Once a page has failed, every later [`next_entry`](Self::next_entry) returns
/// that same error: a failure is never turned into the end of the listing, so a
/// caller that logs an error and goes on cannot take a partial listing for a
/// complete one. The [`Stream`] yields the error once, then ends, as streams of
/// results do (and as a [`Reader`](crate::Reader)'s does).
pub struct Lister {
    executor: Executor,
    path: String,
    page: VecDeque<Entry>,
    next: Option<Task<Page>>,
    /// The error a page failed with; every later call returns it.
    error: Option<Error>,
    /// The `Stream` has yielded the error, and has ended.
    stream_ended: bool,
}

impl Lister {
    /// The path listed, as the caller gave it (errors name it).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn new(opener: Opener, path: String, raw: Box<dyn RawList>) -> Self {
        let next = Some(Task::submit(&opener.first(), raw.next_page()));
        let executor = opener.rest();
        Self {
            executor,
            path,
            page: VecDeque::new(),
            next,
            error: None,
            stream_ended: false,
        }
    }

    /// The next entry, or `None` once the listing is complete.
    ///
    /// # Errors
    ///
    /// Reading a page failed; the listing ends there, and this and every later
    /// call return that error (see [Errors are sticky](Self#errors-are-sticky)).
    pub async fn next_entry(&mut self) -> Result<Option<Entry>> {
        poll_fn(|cx| self.poll_entry(cx)).await
    }

    fn poll_entry(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Entry>>> {
        loop {
            if let Some(entry) = self.page.pop_front() {
                return Poll::Ready(Ok(Some(entry)));
            }
            if let Some(e) = &self.error {
                return Poll::Ready(Err(e.clone()));
            }
            let Some(next) = self.next.as_mut() else {
                return Poll::Ready(Ok(None));
            };
            let result = ready!(Pin::new(next).poll(cx));
            self.next = None;
            match result {
                Ok((raw, entries)) => {
                    if entries.is_empty() {
                        Task::submit(&self.executor, raw.close()).detach();
                        return Poll::Ready(Ok(None));
                    }
                    self.next = Some(Task::submit(&self.executor, raw.next_page()));
                    self.page = entries.into();
                }
                Err(e) => {
                    let e = e.with_operation("list").with_path(self.path.clone());
                    self.error = Some(e.clone());
                    return Poll::Ready(Err(e));
                }
            }
        }
    }
}

impl Drop for Lister {
    fn drop(&mut self) {
        // A page in flight is cancelled; whatever the listing holds open (directory
        // streams, for fs) is released on the executor.
        if let Some(next) = self.next.take() {
            next.abort();
            next.release_with(&self.executor, |(raw, _)| raw.close());
        }
    }
}

impl Stream for Lister {
    type Item = Result<Entry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Entry>>> {
        let this = self.get_mut();
        if this.stream_ended {
            return Poll::Ready(None);
        }
        let item = ready!(this.poll_entry(cx)).transpose();
        this.stream_ended = matches!(item, Some(Err(_)));
        Poll::Ready(item)
    }
}

impl fmt::Debug for Lister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lister")
            .field("path", &self.path)
            .field("buffered", &self.page.len())
            .field("done", &self.next.is_none())
            .field("failed", &self.error.is_some())
            .finish()
    }
}
