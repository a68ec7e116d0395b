//! [`Lister`]: a listing whose pages are read on the executor.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use io_executor::Executor;

use crate::raw::RawList;
use crate::types::io_future::Task;
use crate::{Entry, Result};

/// A page of a listing, with the listing to continue from.
type Page = (Box<dyn RawList>, Vec<Entry>);

/// A stream of [`Entry`]s, from [`Operator::lister`](crate::Operator::lister).
///
/// Pages are read on the executor; while the caller consumes one page, the next is
/// already being read. Dropping the lister cancels the page in flight and releases
/// the listing on the executor.
pub struct Lister {
    executor: Executor,
    path: String,
    page: VecDeque<Entry>,
    next: Option<Task<Page>>,
}

impl Lister {
    pub(crate) fn new(executor: Executor, path: String, raw: Box<dyn RawList>) -> Self {
        let next = Some(Task::submit(&executor, raw.next_page()));
        Self {
            executor,
            path,
            page: VecDeque::new(),
            next,
        }
    }

    /// The next entry, or `None` once the listing is complete.
    ///
    /// # Errors
    ///
    /// Reading a page failed; the listing ends there.
    pub async fn next_entry(&mut self) -> Result<Option<Entry>> {
        poll_fn(|cx| self.poll_entry(cx)).await
    }

    fn poll_entry(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Entry>>> {
        loop {
            if let Some(entry) = self.page.pop_front() {
                return Poll::Ready(Ok(Some(entry)));
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
                    return Poll::Ready(Err(e.with_operation("list").with_path(self.path.clone())));
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
        self.get_mut().poll_entry(cx).map(Result::transpose)
    }
}

impl fmt::Debug for Lister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lister")
            .field("path", &self.path)
            .field("buffered", &self.page.len())
            .field("done", &self.next.is_none())
            .finish()
    }
}
