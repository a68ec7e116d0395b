//! [`ReadBatch`]: many small reads of one object, shared out in chunks to the jobs
//! that serve them.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use crate::Result;

/// Many small reads of one object, handed out a chunk at a time to whichever job
/// asks next (see [`RandomRead::read_many`](super::RandomRead::read_many)).
///
/// Several jobs serve one batch. Each takes the next chunk when it is done with
/// the last, so a job that starts late, or whose thread is preempted, takes fewer
/// chunks, and none waits at the end for a thread that has not started; a job that
/// starts after the last chunk is taken has nothing to do. A failed read
/// [stops](Self::stop) the batch: no job takes another chunk; so does the caller
/// that stops waiting for it (a `read_ranges` future dropped).
#[derive(Debug)]
pub struct ReadBatch {
    ranges: Vec<Range<u64>>,
    chunk: usize,
    max_buffer_size: u64,
    next: AtomicUsize,
    stopped: AtomicBool,
}

impl ReadBatch {
    /// `ranges`, served `chunk` at a time (at least one).
    pub fn new(ranges: Vec<Range<u64>>, chunk: usize) -> Self {
        Self {
            ranges,
            chunk: chunk.max(1),
            max_buffer_size: u64::MAX,
            next: AtomicUsize::new(0),
            stopped: AtomicBool::new(false),
        }
    }

    /// Reads of the batch that share a buffer (fs reads runs of small ones into
    /// one) share one of at most `bytes` (at least 1): the caller's
    /// [`Options::max_buffer_size`](crate::Options::max_buffer_size). Without it,
    /// the backend's own bound.
    pub fn with_max_buffer_size(mut self, bytes: u64) -> Self {
        self.max_buffer_size = bytes.max(1);
        self
    }

    /// The largest buffer reads of the batch may share; see
    /// [`with_max_buffer_size`](Self::with_max_buffer_size).
    pub fn max_buffer_size(&self) -> u64 {
        self.max_buffer_size
    }

    /// Every read of the batch, in order.
    pub fn ranges(&self) -> &[Range<u64>] {
        &self.ranges
    }

    /// The next chunk no job has taken: the index of its first read in
    /// [`ranges`](Self::ranges), and its reads. `None` once every chunk is taken or
    /// the batch is stopped.
    pub fn next_chunk(&self) -> Option<(usize, &[Range<u64>])> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let first = self.next.fetch_add(self.chunk, Ordering::Relaxed);
        if first >= self.ranges.len() {
            // Later callers keep adding; a batch never holds usize::MAX reads.
            return None;
        }
        let end = (first + self.chunk).min(self.ranges.len());
        Some((first, &self.ranges[first..end]))
    }

    /// No job takes another chunk: a read failed (the batch's result is that error),
    /// or nobody waits for the batch's result any more.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// One job's share: reads chunk after chunk with `read` (one buffer per read of
    /// the chunk, in order) until none is left, and returns what it read, each
    /// chunk with the index of its first read.
    ///
    /// # Errors
    ///
    /// The first error of `read`, which also [stops](Self::stop) the batch.
    pub fn serve(
        &self,
        mut read: impl FnMut(&[Range<u64>]) -> Result<Vec<Bytes>>,
    ) -> Result<super::ChunksRead> {
        let mut done = Vec::new();
        while let Some((first, reads)) = self.next_chunk() {
            match read(reads) {
                Ok(bytes) => done.push((first, bytes)),
                Err(e) => {
                    self.stop();
                    return Err(e);
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_is_handed_out_once_in_chunks() {
        let batch = ReadBatch::new((0..10).map(|i| i * 10..i * 10 + 5).collect(), 4);
        let mut seen = Vec::new();
        while let Some((first, reads)) = batch.next_chunk() {
            assert!(reads.len() <= 4);
            assert_eq!(reads, &batch.ranges()[first..first + reads.len()]);
            seen.extend(first..first + reads.len());
        }
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert!(batch.next_chunk().is_none());
    }

    #[test]
    fn a_failed_read_stops_the_batch_for_every_job() {
        let batch = ReadBatch::new(vec![0..1; 8], 2);
        let failed = batch.serve(|_| Err(crate::Error::new(crate::ErrorKind::Unexpected)));
        assert_eq!(
            failed.map(drop).unwrap_err().kind(),
            crate::ErrorKind::Unexpected
        );
        assert_eq!(
            batch
                .serve(|reads| Ok(vec![Bytes::new(); reads.len()]))
                .map(|d| d.len())
                .ok(),
            Some(0)
        );
    }

    #[test]
    fn a_stopped_batch_hands_out_nothing_more() {
        let batch = ReadBatch::new(vec![0..1; 8], 2);
        assert!(batch.next_chunk().is_some());
        batch.stop();
        assert!(batch.next_chunk().is_none());
    }

    #[test]
    fn jobs_on_several_threads_share_the_chunks_without_overlap() {
        let batch = ReadBatch::new((0..1000).map(|i| i..i + 1).collect(), 7);
        let taken: Vec<Vec<usize>> = std::thread::scope(|s| {
            let jobs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut mine = Vec::new();
                        while let Some((first, reads)) = batch.next_chunk() {
                            mine.extend(first..first + reads.len());
                        }
                        mine
                    })
                })
                .collect();
            jobs.into_iter().map(|j| j.join().expect("job")).collect()
        });
        let mut all: Vec<usize> = taken.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
    }
}
