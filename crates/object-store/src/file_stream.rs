//! [`FileStream`]: a local file's byte range, read on the executor's blocking lane.
//!
//! `LocalFileSystem` answers a `get` with an open file rather than a stream; read by
//! object_store's own helpers, it would be read on the caller's runtime. A range of
//! up to [`SINGLE_READ_MAX`] bytes is read with one job into one buffer, so `bytes()`
//! and `get_range` get one contiguous `Bytes` without a concatenating copy. A longer
//! range is read in [`CHUNK`]-sized pieces, one piece ahead of the caller.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::stream::Stream;
use io_executor::{Executor, JoinHandle};
use object_store::Result;
use object_store::path::Path;

use crate::executor_error::{STORE, executor_error};

/// Ranges up to this size are read with one read into one buffer: 64 MiB.
pub(crate) const SINGLE_READ_MAX: u64 = 64 * 1024 * 1024;

/// Longer ranges are read in pieces of this size: 8 MiB.
pub(crate) const CHUNK: u64 = 8 * 1024 * 1024;

/// A read under way: it hands the file back, unless nothing is left to read (then
/// the read job closes it), along with the bytes.
type PieceRead = JoinHandle<(Option<File>, io::Result<Bytes>)>;

/// A stream of a file's byte range whose every read runs on the blocking lane.
///
/// The first read starts when the stream is made; each later one starts when the
/// previous piece is handed out, so at most two pieces (one being read, one held by
/// the caller) exist at once.
pub(crate) struct FileStream {
    executor: Executor,
    /// The object's location, which an executor's refusal names.
    location: Path,
    path: PathBuf,
    /// The file, while no read holds it.
    file: Option<File>,
    reading: Option<PieceRead>,
    /// Where the next read starts, and where the range ends.
    next: u64,
    end: u64,
    piece: u64,
    /// The whole range in one read, started when the stream was made.
    one_read: bool,
}

impl FileStream {
    /// A stream of `range` of `file` (object `location`), whose first read starts
    /// now.
    pub(crate) fn start(
        executor: Executor,
        location: Path,
        file: File,
        path: PathBuf,
        range: Range<u64>,
    ) -> Self {
        Self::with_sizes(
            executor,
            location,
            file,
            path,
            range,
            SINGLE_READ_MAX,
            CHUNK,
        )
    }

    fn with_sizes(
        executor: Executor,
        location: Path,
        file: File,
        path: PathBuf,
        range: Range<u64>,
        single_read_max: u64,
        chunk: u64,
    ) -> Self {
        let len = range.end.saturating_sub(range.start);
        let mut stream = Self {
            executor,
            location,
            path,
            file: Some(file),
            reading: None,
            next: range.start,
            end: range.end.max(range.start),
            piece: if len <= single_read_max { len } else { chunk },
            one_read: len <= single_read_max,
        };
        stream.read_next();
        stream
    }

    /// `true` if the whole range is one read, already started: nothing more is
    /// submitted as the stream is polled.
    pub(crate) fn is_one_read(&self) -> bool {
        self.one_read
    }

    /// Starts the next read, if anything is left to read.
    fn read_next(&mut self) {
        if self.next >= self.end {
            return;
        }
        let Some(mut file) = self.file.take() else {
            return;
        };
        let start = self.next;
        let len = self.piece.min(self.end - start);
        self.next += len;
        let last = self.next >= self.end;
        let path = self.path.clone();
        self.reading = Some(self.executor.spawn_blocking(move || {
            let read = read_at(&mut file, start, len).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot read bytes {start}..{} of {}: {e}",
                        start + len,
                        path.display()
                    ),
                )
            });
            // The last read closes the file here, on the lane, at no extra hand-off.
            ((!last && read.is_ok()).then_some(file), read)
        }));
    }
}

/// Reads `len` bytes at `start` into one buffer of exactly that size; the buffer is
/// not zeroed first. Fewer bytes than asked for (the file shrank) is an error.
fn read_at(file: &mut File, start: u64, len: u64) -> io::Result<Bytes> {
    let size = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(size);
    file.take(len).read_to_end(&mut buf)?;
    if buf.len() != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the file ended after {} bytes", buf.len()),
        ));
    }
    Ok(buf.into())
}

impl Stream for FileStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(reading) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let done = ready!(Pin::new(reading).poll(cx));
        this.reading = None;
        let item = match done {
            Ok((file, Ok(bytes))) => {
                this.file = file;
                this.read_next();
                Ok(bytes)
            }
            Ok((_, Err(e))) => Err(object_store::Error::Generic {
                store: STORE,
                source: Box::new(e),
            }),
            Err(e) => Err(executor_error(
                "read",
                Some(&this.location),
                &this.executor,
                e,
            )),
        };
        Poll::Ready(Some(item))
    }
}

impl Drop for FileStream {
    fn drop(&mut self) {
        // Closing a file can block (network filesystems): close it on the lane too.
        // (Only a stream dropped before its end, or an empty one, still holds it.) A
        // read still under way is cancelled with its handle, and its file closed
        // wherever the read's result is dropped.
        if let Some(file) = self.file.take() {
            self.executor.spawn_blocking(move || drop(file)).detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::num::NonZeroUsize;

    use futures_util::StreamExt;

    use super::*;

    fn fixture(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&data).unwrap();
        (f, data)
    }

    fn executor() -> Executor {
        io_executor::Builder::new()
            .name("file-test")
            .worker_threads(NonZeroUsize::MIN)
            .build()
            .unwrap()
    }

    #[test]
    fn a_range_up_to_the_limit_is_one_piece() {
        let (f, data) = fixture(100_000);
        let file = File::open(f.path()).unwrap();
        let s = FileStream::start(
            executor(),
            Path::from("x"),
            file,
            f.path().into(),
            10..90_010,
        );
        let pieces = futures::executor::block_on(s.collect::<Vec<_>>());
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].as_ref().unwrap()[..], data[10..90_010]);
    }

    #[test]
    fn a_longer_range_comes_in_pieces_that_add_up() {
        let (f, data) = fixture(100_000);
        let file = File::open(f.path()).unwrap();
        let s = FileStream::with_sizes(
            executor(),
            Path::from("x"),
            file,
            f.path().into(),
            1..99_999,
            1000,
            30_000,
        );
        let pieces = futures::executor::block_on(s.collect::<Vec<_>>());
        let lens: Vec<_> = pieces.iter().map(|p| p.as_ref().unwrap().len()).collect();
        assert_eq!(lens, [30_000, 30_000, 30_000, 9_998]);
        let joined: Vec<u8> = pieces.into_iter().flat_map(|p| p.unwrap()).collect();
        assert_eq!(joined[..], data[1..99_999]);
    }

    #[test]
    fn an_empty_range_reads_nothing() {
        let (f, _) = fixture(10);
        let file = File::open(f.path()).unwrap();
        let s = FileStream::start(executor(), Path::from("x"), file, f.path().into(), 5..5);
        assert!(futures::executor::block_on(s.collect::<Vec<_>>()).is_empty());
    }

    #[test]
    fn a_read_the_executor_refuses_names_the_object() {
        let (f, data) = fixture(100_000);
        let file = File::open(f.path()).unwrap();
        let io = executor();
        let location = Path::from("t/a.parquet");
        let s = FileStream::with_sizes(
            io.clone(),
            location,
            file,
            f.path().into(),
            0..90_000,
            1000,
            30_000,
        );
        // The first read was accepted; the next is refused.
        io.shutdown();
        let out = futures::executor::block_on(s.collect::<Vec<_>>());
        assert_eq!(out[0].as_ref().unwrap()[..], data[..30_000]);
        let Err(object_store::Error::Generic { source, .. }) = &out[1] else {
            panic!("{:?}", out[1]);
        };
        let refused = source
            .downcast_ref::<crate::ExecutorError>()
            .unwrap_or_else(|| panic!("{source}"));
        assert_eq!(refused.path(), Some("t/a.parquet"));
        assert_eq!(out.len(), 2, "the stream ends at its error");
    }

    #[test]
    fn a_range_past_the_end_of_the_file_is_an_error_that_names_it() {
        let (f, _) = fixture(10);
        let file = File::open(f.path()).unwrap();
        let s = FileStream::start(executor(), Path::from("x"), file, f.path().into(), 5..20);
        let out = futures::executor::block_on(s.collect::<Vec<_>>());
        let err = out[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("cannot read bytes 5..20 of"), "{err}");
        assert!(err.contains("the file ended after 5 bytes"), "{err}");
    }
}
