//! Small reads issued together and awaited together (a query engine's page-index
//! and row lookups as `read_range` futures): served together, few jobs for many
//! reads, each read with its own result, none lost or left waiting.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::join_all;
use storage::{ErrorKind, Operator};

mod common_fs;
use common_fs::rt;

fn operator(dir: &std::path::Path) -> (Operator, io_executor::Executor) {
    let (op, executor) = common_fs::operator(dir, "burst");
    // No coalescing: every read is its own.
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    (op, executor)
}

/// 4 MiB whose every byte depends on its offset.
fn data() -> Vec<u8> {
    (0..4_u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A directory holding file `f` ([`data`]), and an operator over it.
fn hot_file() -> (tempfile::TempDir, Vec<u8>, Operator, io_executor::Executor) {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let (op, executor) = operator(dir.path());
    (dir, data, op, executor)
}

/// Issues a `read_range` of `f` per range, awaits them all together, and checks
/// each against `data`.
async fn read_together_and_check(op: &Operator, ranges: &[std::ops::Range<u64>], data: &[u8]) {
    let reads: Vec<_> = ranges
        .iter()
        .map(|r| op.read_range("f", r.clone()))
        .collect();
    for (r, bytes) in ranges.iter().zip(guarded(join_all(reads)).await) {
        let want = &data[r.start as usize..r.end as usize];
        assert_eq!(&bytes.unwrap()[..], want, "range {r:?}");
    }
}

/// Jobs the executor has run so far.
fn jobs(executor: &io_executor::Executor) -> u64 {
    executor.metrics().spawned
}

/// Fails the test instead of hanging it.
async fn guarded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the reads never ended")
}

#[test]
fn many_read_range_futures_awaited_together_are_read_in_a_few_jobs() {
    let (_dir, data, op, executor) = hot_file();
    rt().block_on(async {
        // Opened and kept, its pages in memory.
        op.read("f").await.unwrap();
        let ranges: Vec<_> = (0..1000_u64)
            .map(|i| i * 4096 + 7..i * 4096 + 107)
            .collect();
        let before = jobs(&executor);
        read_together_and_check(&op, &ranges, &data).await;
        let used = jobs(&executor) - before;
        // Not one job per read, and not all on this thread: the batch's jobs and the
        // task that hands the results out.
        assert!(used > 0, "1,000 reads all served on the caller's thread");
        assert!(
            used <= 2 * executor.num_blocking_threads() as u64 + 2,
            "{used} jobs for 1,000 reads"
        );
    });
}

#[test]
fn a_few_reads_awaited_together_are_served_on_the_callers_thread() {
    let (_dir, data, op, executor) = hot_file();
    rt().block_on(async {
        op.read("f").await.unwrap();
        let before = jobs(&executor);
        let reads: Vec<_> = (0..8_u64)
            .map(|i| op.read_range("f", i * 4096..i * 4096 + 10))
            .collect();
        for (i, bytes) in guarded(join_all(reads)).await.into_iter().enumerate() {
            let at = i * 4096;
            assert_eq!(&bytes.unwrap()[..], &data[at..at + 10]);
        }
        assert_eq!(jobs(&executor), before, "8 hot reads went to the executor");
    });
}

#[test]
fn each_read_of_a_burst_gets_its_own_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    std::fs::write(dir.path().join("g"), b"0123456789").unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let (op, executor) = operator(dir.path());
    let size = data.len() as u64;
    rt().block_on(async {
        op.read("f").await.unwrap();
        op.read("g").await.unwrap();
        let before = jobs(&executor);
        // Reads of f, with bad ones among them, and reads of other paths
        // interleaved.
        let mut reads = Vec::new();
        let mut want: Vec<std::result::Result<Vec<u8>, (ErrorKind, &str)>> = Vec::new();
        for i in 0..400_u64 {
            let at = i * 9_973;
            reads.push(op.read_range("f", at..at + 50));
            want.push(Ok(data[at as usize..at as usize + 50].to_vec()));
            match i {
                50 => {
                    reads.push(op.read_range("f", size - 10..size + 10));
                    want.push(Err((ErrorKind::RangeNotSatisfiable, "f")));
                }
                60 => {
                    reads.push(op.read_range("missing", 0..10));
                    want.push(Err((ErrorKind::NotFound, "missing")));
                }
                70 => {
                    reads.push(op.read_range("d", 0..10));
                    want.push(Err((ErrorKind::IsADirectory, "d")));
                }
                80 => {
                    reads.push(op.read_range("../f", 0..10));
                    want.push(Err((ErrorKind::InvalidInput, "../f")));
                }
                _ if i % 3 == 0 => {
                    reads.push(op.read_with("/g").range(2..5).into_future());
                    want.push(Ok(b"234".to_vec()));
                }
                _ => {}
            }
        }
        let issued = reads.len() as u64;
        let got = guarded(join_all(reads)).await;
        // The batch of f failed for its one bad range; its reads were read again
        // one by one, but not a job each.
        let used = jobs(&executor) - before;
        assert!(used < 20, "{used} jobs for {issued} reads");
        assert_eq!(got.len(), want.len());
        for (i, (got, want)) in got.into_iter().zip(want).enumerate() {
            match (got, want) {
                (Ok(bytes), Ok(want)) => assert_eq!(&bytes[..], &want[..], "read {i}"),
                (Err(e), Err((kind, path))) => {
                    assert_eq!(e.kind(), kind, "read {i}: {e}");
                    assert_eq!(e.path(), path, "read {i}: {e}");
                    assert_eq!(e.operation(), "read_range", "read {i}: {e}");
                }
                (got, want) => panic!("read {i}: {got:?}, expected {want:?}"),
            }
        }
    });
}

#[test]
fn reads_of_a_burst_dropped_before_or_after_it_started_leave_the_others_whole() {
    let (_dir, data, op, _executor) = hot_file();
    rt().block_on(async {
        op.read("f").await.unwrap();
        let range = |i: u64| i * 4099..i * 4099 + 64;
        let mut reads: Vec<_> = (0..500)
            .map(|i| Some(op.read_range("f", range(i))))
            .collect();
        // Dropped while held: every fifth.
        for read in reads.iter_mut().step_by(5) {
            *read = None;
        }
        // The first poll starts the burst; then every seventh is dropped while the
        // batch runs.
        let first = reads[1].as_mut().unwrap();
        if let Some(done) = futures::FutureExt::now_or_never(first) {
            // The batch may even have ended before the poll looked again.
            let r = range(1);
            assert_eq!(&done.unwrap()[..], &data[r.start as usize..r.end as usize]);
            reads[1] = None;
        }
        for read in reads.iter_mut().skip(2).step_by(7) {
            *read = None;
        }
        let kept: Vec<_> = reads
            .into_iter()
            .enumerate()
            .filter_map(|(i, read)| read.map(|r| (i as u64, r)))
            .collect();
        assert!(kept.len() > 300);
        let (at, reads): (Vec<u64>, Vec<_>) = kept.into_iter().unzip();
        for (i, bytes) in at.into_iter().zip(guarded(join_all(reads)).await) {
            let r = range(i);
            assert_eq!(&bytes.unwrap()[..], &data[r.start as usize..r.end as usize]);
        }
    });
}

/// A batch that fails (a range past the end of the file among its reads) is read
/// again read by read, so that each gets its own result, but only the reads whose
/// futures still wait: one kept gets its bytes, and with none kept no job runs for
/// nobody.
#[test]
fn a_failed_batch_is_read_again_only_for_the_reads_still_awaited() {
    for keep in [false, true] {
        let (_dir, data, op, executor) = hot_file();
        let len = data.len() as u64;
        let submitted = rt().block_on(async {
            // Opened and kept: the batch opens it on this thread, and finds the
            // range past the end there.
            op.read("f").await.unwrap();
            // The executor's every thread held (its one worker, where the task
            // that hands the batch's results out runs, and both blocking
            // threads): nothing of the batch happens until the futures are
            // dropped.
            let gate = std::sync::Arc::new(std::sync::Barrier::new(4));
            let mut held: Vec<_> = (0..2)
                .map(|_| {
                    let gate = std::sync::Arc::clone(&gate);
                    executor.spawn_blocking(move || {
                        gate.wait();
                    })
                })
                .collect();
            held.push({
                let gate = std::sync::Arc::clone(&gate);
                // Blocks the worker, as no real job should.
                executor.spawn(async move {
                    gate.wait();
                })
            });
            let mut first = op.read_range("f", 0..10);
            let mut reads: Vec<_> = (1..300_u64)
                .map(|i| op.read_range("f", i * 4096..i * 4096 + 10))
                .collect();
            reads.push(op.read_range("f", len..len + 10));
            // The first poll of a read of the burst starts the batch.
            let _ = futures::FutureExt::now_or_never(&mut first);
            let kept = keep.then(|| reads.swap_remove(149));
            drop(reads);
            let submitted = jobs(&executor);
            gate.wait();
            for job in held {
                guarded(job).await.unwrap();
            }
            assert_eq!(&guarded(first).await.unwrap()[..], &data[..10]);
            if let Some(kept) = kept {
                assert_eq!(&guarded(kept).await.unwrap()[..], &data[150 * 4096..][..10]);
            }
            submitted
        });
        // Whatever is still to run runs before the join returns.
        executor.blocking_join();
        let again = jobs(&executor) - submitted;
        assert_eq!(again, u64::from(keep), "jobs after the batch, keep {keep}");
    }
}

#[test]
fn a_burst_whose_executor_shut_down_fails_each_read_with_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    let (op, executor) = operator(dir.path());
    rt().block_on(async {
        op.read("f").await.unwrap();
        // Held, then the executor goes: a few, and enough for a batch.
        for n in [3_u64, 500] {
            let reads: Vec<_> = (0..n)
                .map(|i| op.read_range("f", i * 4096..i * 4096 + 10))
                .collect();
            if n == 500 {
                executor.shutdown();
            }
            let got = guarded(join_all(reads)).await;
            if n == 3 {
                assert!(got.iter().all(Result::is_ok));
                continue;
            }
            // The first may have been served as it was issued, before the shutdown.
            for result in got.into_iter().skip(1) {
                let e = result.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::ShutDown, "{e}");
                assert_eq!(e.path(), "f", "{e}");
            }
        }
    });
}

/// Reads a job issued before a shutdown, held in a burst with a read issued from
/// outside, whichever polls the burst first after the shutdown: the job's reads
/// are read (they are its own work, started where the job polls them; they failed
/// with `ShutDown` when served from the outside poll), and the outside read fails
/// with `ShutDown`, as every outside operation after a shutdown does (the job's
/// poll read it).
#[test]
fn after_a_shutdown_a_jobs_held_reads_are_read_and_an_outside_one_is_refused() {
    for job_polls_first in [false, true] {
        let (_dir, data, op, executor) = hot_file();
        rt().block_on(async {
            op.read("f").await.unwrap();
            // Issued and left unpolled: reads issued meanwhile are held.
            let first = op.read_range("f", 0..10);
            let (issued, job_issued) = std::sync::mpsc::channel();
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            let job = {
                let op = op.clone();
                executor.spawn(async move {
                    let reads: Vec<_> = (1..4_u64)
                        .map(|i| op.read_range("f", i * 4096..i * 4096 + 10))
                        .collect();
                    issued.send(()).unwrap();
                    let _ = wait.await;
                    join_all(reads).await
                })
            };
            job_issued.recv().unwrap();
            let outside = op.read_range("f", 8 * 4096..8 * 4096 + 10);
            executor.shutdown();
            let outside = if job_polls_first {
                go.send(()).unwrap();
                Some(outside)
            } else {
                let err = guarded(outside).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
                go.send(()).unwrap();
                None
            };
            let got = guarded(job).await.unwrap();
            for (i, read) in (1..4_usize).zip(got) {
                assert_eq!(
                    &read.unwrap()[..],
                    &data[i * 4096..i * 4096 + 10],
                    "read {i}, job first: {job_polls_first}"
                );
            }
            if let Some(outside) = outside {
                let err = guarded(outside).await.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
                assert_eq!(err.path(), "f", "{err}");
            }
            drop(first);
        });
        executor.blocking_join();
    }
}

/// An executor over a runtime that is gone refuses the burst's work: each read
/// says it was shut down, as a read on its own does, never that a queue was full
/// (an error a caller would retry).
#[test]
fn a_burst_on_an_executor_whose_runtime_is_gone_fails_each_read_with_shut_down() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    let gone = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let executor = io_executor::Executor::from_handle(gone.handle().clone());
    drop(gone);
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap()).with_executor(executor);
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    rt().block_on(async {
        // The first is a read on its own; the others are held, and read together.
        let reads: Vec<_> = (0..500_u64)
            .map(|i| op.read_range("f", i * 4096..i * 4096 + 10))
            .collect();
        for result in guarded(join_all(reads)).await {
            let e = result.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ShutDown, "{e}");
            assert_eq!((e.operation(), e.path()), ("read_range", "f"), "{e}");
        }
    });
}

/// An executor whose queue is full refuses the burst's work: each read says so
/// (`RateLimited`, which a caller may retry), and none is left waiting.
#[test]
fn a_burst_refused_by_a_full_queue_fails_each_read_as_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    let (op, executor) = common_fs::operator_with_a_queue_of_one(dir.path(), "burst-full");
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    let full = common_fs::FullQueue::fill(&executor);
    rt().block_on(async {
        // The first is a read on its own; the others are held, and read together.
        let reads: Vec<_> = (0..500_u64)
            .map(|i| op.read_range("f", i * 4096..i * 4096 + 10))
            .collect();
        let results = guarded(join_all(reads)).await;
        for result in &results[1..] {
            let e = result.as_ref().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
            assert_eq!((e.operation(), e.path()), ("read_range", "f"), "{e}");
        }
    });
    full.release();
    // Room again: a read is served.
    rt().block_on(async { assert_eq!(op.read_range("f", 0..10).await.unwrap().len(), 10) });
    executor.shutdown();
}

#[test]
fn a_burst_issued_on_one_thread_is_awaited_on_another() {
    let (_dir, data, op, _executor) = hot_file();
    rt().block_on(async { op.read("f").await.unwrap() });
    let reads: Vec<_> = (0..1000_u64)
        .map(|i| op.read_range("f", i * 4096..i * 4096 + 33))
        .collect();
    let got = std::thread::spawn(move || rt().block_on(guarded(join_all(reads))))
        .join()
        .unwrap();
    for (i, bytes) in got.into_iter().enumerate() {
        let at = i * 4096;
        assert_eq!(&bytes.unwrap()[..], &data[at..at + 33]);
    }
}

#[test]
fn a_burst_larger_than_is_held_at_once_is_read_whole() {
    let (_dir, data, op, _executor) = hot_file();
    rt().block_on(async {
        op.read("f").await.unwrap();
        // More reads than a burst holds (16,384): the one that fills it starts it.
        let ranges: Vec<_> = (0..40_000_u64)
            .map(|i| {
                let at = (i * 104_729) % (data.len() as u64 - 16);
                at..at + 16
            })
            .collect();
        read_together_and_check(&op, &ranges, &data).await;
    });
}

#[test]
fn a_read_of_a_burst_never_polled_again_does_not_hold_up_the_others() {
    let (_dir, data, op, _executor) = hot_file();
    rt().block_on(async {
        op.read("f").await.unwrap();
        let range = |i: u64| i * 4096..i * 4096 + 20;
        let mut reads: Vec<_> = (0..500).map(|i| op.read_range("f", range(i))).collect();
        // The first read was served as it was issued; the second's first poll starts
        // the rest, and then it is kept, never polled again: the others' results
        // must still reach them.
        let mut kept = reads.remove(1);
        let waker = futures::task::noop_waker();
        let first = std::pin::Pin::new(&mut kept)
            .poll(&mut std::task::Context::from_waker(&waker))
            .is_pending();
        let got = guarded(join_all(reads)).await;
        for (i, bytes) in (0..500).filter(|&i| i != 1).zip(got) {
            let r = range(i);
            assert_eq!(&bytes.unwrap()[..], &data[r.start as usize..r.end as usize]);
        }
        assert!(first || kept.await.is_ok());
    });
}

#[test]
fn a_burst_with_the_default_coalescing_returns_exactly_each_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let executor = io_executor::Builder::new()
        .name("burst-merge")
        .blocking_threads(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap()).with_executor(executor);
    rt().block_on(async {
        op.read("f").await.unwrap();
        // Adjacent, overlapping and nearby reads: merged as read_ranges merges them.
        let ranges: Vec<_> = (0..3000_u64)
            .map(|i| {
                let at = (i * 1_531) % (data.len() as u64 - 5_000);
                at..at + 1 + i % 4_999
            })
            .collect();
        read_together_and_check(&op, &ranges, &data).await;
    });
}

#[test]
fn a_burst_on_an_executor_over_a_runtime_without_timers_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    // The caller's own runtime, built without tokio's timers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let executor = io_executor::Executor::from_handle(runtime.handle().clone());
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap()).with_executor(executor);
    // A task of ours that used a timer there would panic ("timers are disabled"),
    // caught by tokio and so seen only by the panic hook.
    static TIMER_PANICS: AtomicUsize = AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.to_string().contains("timer") {
            TIMER_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
    let handle = runtime.handle().clone();
    let reads = std::thread::spawn(move || {
        handle.block_on(async {
            op.read("f").await.unwrap();
            let reads: Vec<_> = (0..1000_u64)
                .map(|i| op.read_range("f", i * 4096..i * 4096 + 9))
                .collect();
            join_all(reads).await
        })
    });
    // A guard against a hang, where the runtime has no timers.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !reads.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the reads never ended"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for (i, bytes) in reads.join().unwrap().into_iter().enumerate() {
        let at = i * 4096;
        assert_eq!(&bytes.unwrap()[..], &data[at..at + 9]);
    }
    // Dropping the runtime waits for the poll its tasks are in.
    drop(runtime);
    let _ = std::panic::take_hook();
    assert_eq!(TIMER_PANICS.load(Ordering::SeqCst), 0);
}

/// A burst starts at the first poll of any of its reads, the first one issued
/// included (which started when it was issued): a read issued with it, awaited
/// after a write that replaced the file, returns what the file held when the first
/// was awaited. A reader that issues its next read before it awaits the current one
/// gets its IO done meanwhile.
#[test]
fn a_burst_starts_at_the_first_poll_of_any_of_its_reads() {
    let (_dir, data, op, _executor) = hot_file();
    rt().block_on(async {
        for later in [1_u64, 300] {
            // Opened and kept: the burst opens it on the thread that polls.
            op.read("f").await.unwrap();
            let first = op.read_range("f", 0..10);
            let rest: Vec<_> = (1..=later)
                .map(|i| op.read_range("f", i * 10..i * 10 + 10))
                .collect();
            assert_eq!(&guarded(first).await.unwrap()[..], &data[..10]);
            op.write("f", vec![b'x'; data.len()]).await.unwrap();
            for (i, read) in (1..=later).zip(rest) {
                let at = (i * 10) as usize;
                let got = guarded(read).await.unwrap();
                assert_eq!(&got[..], &data[at..at + 10], "{later} held, read {i}");
            }
            op.write("f", data.clone()).await.unwrap();
        }
    });
}

#[test]
fn a_read_on_its_own_that_must_wait_starts_when_issued() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    let (op, executor) = operator(dir.path());
    rt().block_on(async {
        // Not open yet: the read must open the file on the executor, and it is
        // submitted when issued, before it is polled.
        let before = jobs(&executor);
        let read = op.read_range("f", 0..10);
        assert_eq!(jobs(&executor) - before, 1);
        assert_eq!(guarded(read).await.unwrap().len(), 10);
    });
}

/// Contiguous small reads issued together are merged, and the merged reads are
/// served as one shared batch: a few jobs, not one per 256 KiB of reads.
#[test]
fn contiguous_reads_of_a_burst_share_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    let (op, executor) = operator(dir.path());
    rt().block_on(async {
        op.read("f").await.unwrap();
        let before = jobs(&executor);
        // 4 MiB in 1,024 reads of 4 KiB: sixteen merged reads of 256 KiB.
        let reads: Vec<_> = (0..1024_u64)
            .map(|i| op.read_range("f", i * 4096..(i + 1) * 4096))
            .collect();
        let got = guarded(futures::future::join_all(reads)).await;
        let want = data();
        for (i, read) in got.into_iter().enumerate() {
            assert!(
                read.unwrap()[..] == want[i * 4096..(i + 1) * 4096],
                "read {i}"
            );
        }
        let spawned = jobs(&executor) - before;
        assert!(spawned < 16, "{spawned} jobs for one batch");
    });
}

/// A burst whose futures were all dropped before any was polled holds nothing:
/// the next read on its own starts when issued, as if there had been no burst
/// (it was held, waiting for a poll of its own).
#[test]
fn a_burst_dropped_unpolled_leaves_nothing_held() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    std::fs::write(dir.path().join("g"), b"0123456789").unwrap();
    let (op, executor) = operator(dir.path());
    rt().block_on(async {
        op.read("f").await.unwrap();
        // The first is served as issued (the file is open); the second is held.
        let first = op.read_range("f", 0..10);
        let second = op.read_range("f", 10..20);
        drop(second);
        drop(first);
        // `g` is not open: its read is a job, submitted when issued.
        let before = jobs(&executor);
        let read = op.read_range("g", 2..5);
        assert_eq!(jobs(&executor) - before, 1, "started when issued");
        assert_eq!(guarded(read).await.unwrap(), "234");
    });
}

#[test]
fn a_read_issued_on_a_blocking_thread_is_not_left_to_another_threads_poll() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), data()).unwrap();
    std::fs::write(dir.path().join("g"), b"0123456789").unwrap();
    let executor = io_executor::Builder::new()
        .name("burst-lane")
        .blocking_threads(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap())
        .with_executor(executor.clone());
    rt().block_on(async {
        op.read("f").await.unwrap();
        // A read waiting for its first poll: reads issued now may be held.
        let first = op.read_range("f", 0..10);
        let (issued_tx, issued_rx) = std::sync::mpsc::channel();
        let (polled_tx, polled_rx) = std::sync::mpsc::channel::<()>();
        let on_lane = op.clone();
        // The lane's only thread issues a read of a file not open yet (it needs a
        // job), lets this thread poll a read of the burst, then waits for its own.
        let lane = executor.spawn_blocking(move || {
            let read = on_lane.read_range("g", 2..5);
            issued_tx.send(()).unwrap();
            polled_rx.recv().unwrap();
            read.wait()
        });
        issued_rx.recv().unwrap();
        let second = op.read_range("f", 10..20);
        let mut second = std::pin::pin!(second);
        let waker = futures::task::noop_waker();
        let _ = second
            .as_mut()
            .poll(&mut std::task::Context::from_waker(&waker));
        polled_tx.send(()).unwrap();
        let got = guarded(lane).await.unwrap().unwrap();
        assert_eq!(&got[..], b"234");
        assert_eq!(guarded(first).await.unwrap().len(), 10);
        assert_eq!(guarded(second).await.unwrap().len(), 10);
    });
}
