//! A backend's reads for `read_ranges` (its batch jobs, `RandomRead::read_many`, and
//! its single reads, `read_at`) answer for the reads they were handed, each in
//! full: a short read or a read nobody asked for is an error, never data, a hole
//! or a panic.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;
use storage::raw::{Access, BatchJob, IoJob, OpenArgs, Opened, RandomRead, ReadArgs, ReadBatch};
use storage::{Error, ErrorKind, Metadata, Operator};

/// How the batch jobs get it wrong.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Every read of a chunk one byte short.
    Short,
    /// One result more than the chunk's reads.
    Extra,
    /// A read of its own (a large one) one byte short.
    ShortSingle,
    /// Every read right, the first chunk held at the [`Gate`].
    Gated,
}

#[derive(Debug)]
struct Object {
    fault: Fault,
    gate: Arc<Gate>,
    meta: Metadata,
}

/// Where a [`Fault::Gated`] batch holds its first chunk, and how many reads its
/// jobs were handed.
#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    /// Told once the first chunk is held.
    held: tokio::sync::Notify,
    reads: AtomicUsize,
}

impl Gate {
    fn pass(&self) {
        if self.reads.load(Ordering::SeqCst) == 0 {
            self.held.notify_one();
        }
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl RandomRead for Object {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        let short = usize::from(matches!(self.fault, Fault::ShortSingle));
        IoJob::blocking(move || Ok(vec![0; (range.end - range.start) as usize - short].into()))
    }

    fn read_many(self: Arc<Self>, batch: Arc<ReadBatch>) -> Option<BatchJob> {
        Some(IoJob::blocking(move || {
            batch.serve(|reads| {
                if let Fault::Gated = self.fault {
                    self.gate.pass();
                }
                self.gate.reads.fetch_add(reads.len(), Ordering::SeqCst);
                let len = |r: &Range<u64>| (r.end - r.start) as usize;
                let mut out: Vec<Bytes> = match self.fault {
                    Fault::Short => reads.iter().map(|r| vec![0; len(r) - 1].into()).collect(),
                    _ => reads.iter().map(|r| vec![0; len(r)].into()).collect(),
                };
                if let Fault::Extra = self.fault {
                    out.push(Bytes::from_static(b"x"));
                }
                Ok(out)
            })
        }))
    }
}

#[derive(Debug)]
struct Faulty(Fault, Arc<Gate>);

impl Faulty {
    fn new(fault: Fault) -> Self {
        Self(fault, Arc::default())
    }
}

fn unsupported<T>() -> IoJob<T> {
    IoJob::ready(Err(Error::new(ErrorKind::Unsupported)))
}

impl Access for Faulty {
    fn scheme(&self) -> &'static str {
        "faulty"
    }
    fn stat(&self, _: &str) -> IoJob<Metadata> {
        unsupported()
    }
    /// A read of its own: one byte short for [`Fault::ShortSingle`].
    fn read(&self, _: &str, args: ReadArgs) -> IoJob<Bytes> {
        let short = usize::from(matches!(self.0, Fault::ShortSingle));
        IoJob::blocking(move || {
            let range = args.resolve(1 << 20)?;
            Ok(vec![0; (range.end - range.start) as usize - short].into())
        })
    }
    fn open(&self, _: &str, args: OpenArgs) -> IoJob<Opened> {
        let (fault, gate) = (self.0, Arc::clone(&self.1));
        IoJob::blocking(move || {
            let object = Arc::new(Object {
                fault,
                gate,
                meta: Metadata::file(1 << 20),
            });
            let range = args.range.resolve(1 << 20)?;
            Ok(Opened::new(object, range, Bytes::new()))
        })
    }
}

#[test]
fn reads_that_answer_wrong_are_an_error_never_data() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for fault in [Fault::Short, Fault::Extra, Fault::ShortSingle] {
        let op = Operator::new(Faulty::new(fault));
        let op = op.clone().with_options(op.options().with_coalesce_gap(0));
        // 100 small reads, far apart (one batch), and a large one (a job of its own).
        let mut ranges: Vec<_> = (0..100_u64).map(|i| i * 8192..i * 8192 + 100).collect();
        ranges.push((1 << 20) - (512 << 10)..1 << 20);
        let err = rt.block_on(op.read_ranges("f", ranges)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{fault:?}: {err}");
        assert!(err.to_string().contains("returned"), "{fault:?}: {err}");
    }
}

#[test]
#[expect(
    clippy::single_range_in_vec_init,
    reason = "one requested range is the case under test"
)]
fn a_short_read_is_an_error_for_a_single_read_and_a_reader() {
    use futures::StreamExt;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let op = Operator::new(Faulty::new(Fault::ShortSingle));
    rt.block_on(async {
        // One range: one read, no open.
        let err = op.read_ranges("f", vec![10..110]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
        assert!(err.to_string().contains("returned 99"), "{err}");
        // A reader's chunk reads: the first short one ends the stream in an
        // error, never a hole and then the end.
        let mut reader = op.reader("f").await.unwrap();
        let mut read = 0;
        let err = loop {
            match reader.next().await {
                Some(Ok(chunk)) => read += chunk.len(),
                Some(Err(e)) => break e,
                None => panic!("the reader ended after {read} bytes, with no error"),
            }
        };
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
        assert_eq!(read, 0);
    });
}

/// A `read_ranges` future dropped while its batch is being read stops the batch:
/// the job reading a chunk finishes that chunk and takes no other, instead of
/// reading every read nobody waits for any more (a cancelled query's storm on a
/// cold file would keep the blocking threads busy).
#[test]
fn a_dropped_read_ranges_stops_its_batch_after_the_chunk_being_read() {
    let executor = io_executor::Builder::new()
        .name("batch-drop")
        .blocking_threads(std::num::NonZeroUsize::MIN)
        .build()
        .unwrap();
    let faulty = Faulty::new(Fault::Gated);
    let gate = Arc::clone(&faulty.1);
    let op = Operator::new(faulty).with_executor(executor.clone());
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    // 1,000 small reads far apart: one batch, read by one job 64 at a time.
    let ranges: Vec<_> = (0..1000_u64).map(|i| i * 1000..i * 1000 + 100).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::select! {
            read = op.read_ranges("f", ranges) => panic!("read past a shut gate: {read:?}"),
            () = gate.held.notified() => {}
        }
    });
    gate.open();
    executor.blocking_join();
    let reads = gate.reads.load(Ordering::SeqCst);
    assert!(
        reads <= 64,
        "{reads} reads served after the future was dropped"
    );
}
