//! Files kept open between reads, and small reads served on the caller's thread
//! when their pages are in memory (`Options::read_now`): what is served is always
//! the file the path names now, and a read that would wait goes to the executor.

use std::num::NonZeroUsize;
use std::os::fd::AsFd;

use storage::{ErrorKind, Operator};

mod common_fs;
use common_fs::rt;

/// How often a test drops a file's pages and reads them again before it concludes
/// that reads of pages not in memory are served on the caller's thread.
const ATTEMPTS: usize = 20;

/// Jobs the executor has run so far.
fn jobs(executor: &io_executor::Executor) -> u64 {
    executor.metrics().spawned
}

#[test]
fn a_hot_small_read_needs_no_hand_off_and_a_cold_one_takes_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![5_u8; 1 << 20]).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now");
    rt().block_on(async {
        // The first read opens the file on the executor and keeps it open.
        assert_eq!(op.read_range("f", 0..4096).await.unwrap().len(), 4096);
        // Now the pages are in memory and the file open: no job at all.
        let before = jobs(&executor);
        for i in 0..10 {
            let bytes = op.read_range("f", i * 4096..(i + 1) * 4096).await.unwrap();
            assert!(bytes.iter().all(|&b| b == 5));
        }
        assert_eq!(
            jobs(&executor),
            before,
            "hot reads went through the executor"
        );
        // Dropped from the page cache, the read would wait for the disk: it goes to
        // the executor instead, and is still right. Dropping is best effort (the
        // kernel keeps pages it cannot drop at that moment), and a miss starts the
        // kernel's read-ahead, which a fast disk can finish before the call answers:
        // such a read is served in place, correctly and without waiting. So the
        // test drops and reads until a read misses, and checks every read's bytes.
        let file = std::fs::File::open(&path).unwrap();
        let mut missed = false;
        for _ in 0..ATTEMPTS {
            rustix::fs::fdatasync(file.as_fd()).unwrap();
            rustix::fs::fadvise(file.as_fd(), 0, None, rustix::fs::Advice::DontNeed).unwrap();
            let before = jobs(&executor);
            let bytes = op
                .read_range("f", 512 << 10..(512 << 10) + 4096)
                .await
                .unwrap();
            assert!(bytes.len() == 4096 && bytes.iter().all(|&b| b == 5));
            if jobs(&executor) > before {
                missed = true;
                break;
            }
        }
        assert!(
            missed,
            "in {ATTEMPTS} tries, no read of a dropped page went to the executor"
        );
        // Switched off, every read is a job.
        let off = op.clone().with_options(op.options().with_read_now(false));
        let before = jobs(&executor);
        off.read_range("f", 0..4096).await.unwrap();
        assert_eq!(jobs(&executor), before + 1);
    });
}

#[test]
fn a_hot_read_of_64_kib_or_more_is_read_into_a_page_aligned_pooled_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..1_u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let pool = storage::raw::BufferPool::new(64 << 20);
    let executor = io_executor::Builder::new()
        .name("read-now-pool")
        .blocking_threads(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let fs = storage::services::Fs::new(dir.path())
        .unwrap()
        .with_buffer_pool(std::sync::Arc::clone(&pool));
    let op = Operator::new(fs).with_executor(executor.clone());
    rt().block_on(async {
        // Opens and keeps the file (a job). Its 4 KiB buffer is pooled too, once
        // the result is dropped.
        op.read_range("f", 0..4096).await.unwrap();
        assert_eq!(pool.idle_bytes(), 4096);
        for (start, len) in [(4096_u64, 64_usize << 10), (100_000, 200 << 10)] {
            let before = jobs(&executor);
            let idle = pool.idle_bytes();
            let bytes = op.read_range("f", start..start + len as u64).await.unwrap();
            assert_eq!(jobs(&executor), before, "a hot read took the executor");
            assert_eq!(&bytes[..], &data[start as usize..start as usize + len]);
            // Where the kernel's copy runs at full speed (see `BufferPool`).
            assert_eq!(bytes.as_ptr() as usize % 4096, 0, "{len} bytes unaligned");
            drop(bytes);
            assert!(
                pool.idle_bytes() >= idle + len,
                "the buffer of a {len}-byte read did not go back to the pool"
            );
        }
    });
}

#[test]
fn a_kept_file_never_serves_a_replaced_or_deleted_path() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "read-now");
    rt().block_on(async {
        op.write("f", vec![1_u8; 8192]).await.unwrap();
        assert_eq!(op.read_range("f", 0..10).await.unwrap()[0], 1);
        assert_eq!(op.read_range("f", 0..10).await.unwrap()[0], 1);
        // Replaced by another process (a rename over it).
        let staging = dir.path().join("staging");
        std::fs::write(&staging, vec![2_u8; 8192]).unwrap();
        std::fs::rename(&staging, dir.path().join("f")).unwrap();
        assert_eq!(op.read_range("f", 0..10).await.unwrap()[0], 2);
        // Replaced by us.
        op.write("f", vec![3_u8; 8192]).await.unwrap();
        assert_eq!(op.read_range("f", 0..10).await.unwrap()[0], 3);
        // Deleted by another process.
        std::fs::remove_file(dir.path().join("f")).unwrap();
        let err = op.read_range("f", 0..10).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        // Renamed away by us, and a new file in its place.
        op.write("g", vec![4_u8; 8192]).await.unwrap();
        assert_eq!(op.read_range("g", 0..10).await.unwrap()[0], 4);
        op.rename("g", "h").await.unwrap();
        assert_eq!(
            op.read_range("g", 0..10).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        op.write("g", vec![6_u8; 100]).await.unwrap();
        assert_eq!(op.read_range("g", 0..10).await.unwrap()[0], 6);
        // Shrunk in place: the range check sees the new size.
        op.write("s", vec![7_u8; 8192]).await.unwrap();
        op.read_range("s", 0..8192).await.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("s"))
            .unwrap()
            .set_len(100)
            .unwrap();
        let err = op.read_range("s", 0..8192).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{err}");
        assert_eq!(err.context("size"), Some("100"));
    });
}

#[test]
fn a_kept_file_is_not_served_for_a_path_renamed_away_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "read-now");
    rt().block_on(async {
        // Renamed away by another process while it keeps its link, and a new file
        // in its place (log rotation).
        op.write("log", vec![8_u8; 8192]).await.unwrap();
        assert_eq!(op.read_range("log", 0..10).await.unwrap()[0], 8);
        std::fs::rename(dir.path().join("log"), dir.path().join("log.1")).unwrap();
        assert_eq!(
            op.read_range("log", 0..10).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        std::fs::write(dir.path().join("log"), vec![9_u8; 8192]).unwrap();
        assert_eq!(op.read_range("log", 0..10).await.unwrap()[0], 9);
        assert_eq!(op.read("log.1").await.unwrap()[..], [8_u8; 8192][..]);
    });
}

#[test]
fn a_kept_file_is_not_served_after_another_process_swaps_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "read-now");
    rt().block_on(async {
        // Its directory swapped for a new one by another process (a table's
        // directory replaced), the file itself untouched.
        op.write("table/part", vec![10_u8; 8192]).await.unwrap();
        assert_eq!(op.read_range("table/part", 0..10).await.unwrap()[0], 10);
        std::fs::rename(dir.path().join("table"), dir.path().join("table.old")).unwrap();
        std::fs::create_dir(dir.path().join("table")).unwrap();
        std::fs::write(dir.path().join("table/part"), vec![11_u8; 4096]).unwrap();
        assert_eq!(op.read_range("table/part", 0..10).await.unwrap()[0], 11);
        assert_eq!(op.read("table/part").await.unwrap().len(), 4096);
        assert_eq!(
            op.read("table.old/part").await.unwrap()[..],
            [10_u8; 8192][..]
        );
    });
}

#[test]
fn read_ranges_of_several_reads_starts_its_io_when_called() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..1_u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now");
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    rt().block_on(async {
        // Two reads far apart: the file is opened once, then both are read. The
        // first call opens it on the executor; the second finds it kept and opens
        // it on the caller's thread, and its reads are submitted when the call is
        // made all the same.
        for (far, near, first) in [(500_000, 0, true), (600_000, 100, false)] {
            let before = jobs(&executor);
            let pending = op.read_ranges("f", vec![far..far + 100, near..near + 100]);
            assert!(
                jobs(&executor) > before,
                "nothing was submitted before the future was awaited (file kept: {})",
                !first
            );
            let got = pending.await.unwrap();
            assert_eq!(&got[0][..], &data[far as usize..far as usize + 100]);
            assert_eq!(&got[1][..], &data[near as usize..near as usize + 100]);
        }
    });
}

#[test]
fn only_the_last_reference_to_a_file_is_closed_by_a_job() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![1_u8; 1 << 20]).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now");
    rt().block_on(async {
        // Kept open by the fd cache: a reader's release closes nothing, in place.
        assert_eq!(op.read("f").await.unwrap().len(), 1 << 20);
        let reader = op.reader("f").await.unwrap();
        let before = jobs(&executor);
        drop(reader);
        assert_eq!(
            jobs(&executor),
            before,
            "a release that closes nothing was a job"
        );
        // Deleted by us, so no longer kept: the reader holds the last reference,
        // and closing it (which may free the file's blocks) is a job.
        let reader = op.reader("f").await.unwrap();
        op.delete("f").await.unwrap();
        let before = jobs(&executor);
        drop(reader);
        assert_eq!(jobs(&executor), before + 1, "the last close was not a job");
    });
}

#[test]
fn read_ranges_of_a_kept_hot_file_opens_it_with_no_hand_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let data: Vec<u8> = (0..1_u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now");
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    let ranges = vec![700_000..700_100, 0..100, 300_000..304_096];
    rt().block_on(async {
        // The first call opens the file on the executor and keeps it open.
        let before = jobs(&executor);
        let got = op.read_ranges("f", ranges.clone()).await.unwrap();
        assert_eq!(jobs(&executor) - before, 2, "an open and a batch");
        for (r, bytes) in ranges.iter().zip(&got) {
            assert_eq!(&bytes[..], &data[r.start as usize..r.end as usize]);
        }
        // Kept and in page cache: opened here, and only the batch is a job.
        let before = jobs(&executor);
        let got = op.read_ranges("f", ranges.clone()).await.unwrap();
        assert_eq!(jobs(&executor) - before, 1, "the open was handed off");
        for (r, bytes) in ranges.iter().zip(&got) {
            assert_eq!(&bytes[..], &data[r.start as usize..r.end as usize]);
        }
        // Replaced by another process: the path finds another file, which is read.
        let new: Vec<u8> = data.iter().map(|b| b ^ 0xff).collect();
        std::fs::write(dir.path().join("f.new"), &new).unwrap();
        std::fs::rename(dir.path().join("f.new"), &path).unwrap();
        let got = op.read_ranges("f", ranges.clone()).await.unwrap();
        for (r, bytes) in ranges.iter().zip(&got) {
            assert_eq!(&bytes[..], &new[r.start as usize..r.end as usize]);
        }
        // Off, every open is a job again.
        let off = op.clone().with_options(op.options().with_read_now(false));
        off.read_ranges("f", ranges.clone()).await.unwrap();
        let before = jobs(&executor);
        off.read_ranges("f", ranges.clone()).await.unwrap();
        assert_eq!(jobs(&executor) - before, 2);
    });
}

#[test]
fn many_small_ranges_are_read_in_a_few_jobs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f"),
        (0..4_u32 << 20).map(|i| i as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now");
    // No coalescing: 1,000 reads of 100 bytes, 4 KiB apart.
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    rt().block_on(async {
        let ranges: Vec<_> = (0..1000_u64).map(|i| i * 4096..i * 4096 + 100).collect();
        let before = jobs(&executor);
        let got = op.read_ranges("f", ranges.clone()).await.unwrap();
        for (r, bytes) in ranges.iter().zip(&got) {
            assert_eq!(bytes.len(), 100);
            assert_eq!(bytes[0], r.start as u8);
        }
        let used = jobs(&executor) - before;
        assert!(
            used <= 1 + 2 * executor.num_blocking_threads() as u64 + 1,
            "{used} jobs for 1,000 reads"
        );
    });
}

#[test]
fn batched_small_reads_return_exactly_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..4_u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "read-now");
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    // Many small reads of mixed lengths (empty ones, odd ones, some that fill most of
    // a shared buffer), out of order and overlapping, at unaligned offsets, and a
    // few large ones (a job each) among them.
    let lens = [
        0_u64,
        1,
        100,
        4096,
        4095,
        70_000,
        200_000,
        255 << 10,
        3,
        1 << 20,
    ];
    let ranges: Vec<_> = (0..2_000_u64)
        .map(|i| {
            let len = lens[(i % lens.len() as u64) as usize];
            let start = (i * 7_919 * 4_099) % (data.len() as u64 - len);
            start..start + len
        })
        .collect();
    rt().block_on(async {
        let got = op.read_ranges("f", ranges.clone()).await.unwrap();
        assert_eq!(got.len(), ranges.len());
        for (r, bytes) in ranges.iter().zip(&got) {
            assert_eq!(
                &bytes[..],
                &data[r.start as usize..r.end as usize],
                "range {r:?}"
            );
        }
        // On a pool of 64 blocking threads, 64 jobs sharing the batch: the same
        // bytes.
        let wide = io_executor::Builder::new()
            .name("read-wide")
            .blocking_threads(NonZeroUsize::new(64).unwrap())
            .build()
            .unwrap();
        let on_wide = op.clone().with_executor(wide.clone());
        let again = on_wide.read_ranges("f", ranges.clone()).await.unwrap();
        assert_eq!(again, got);
        wide.shutdown();
        // Dropping some results while others live on leaves the others intact.
        let kept: Vec<_> = got.iter().step_by(7).cloned().collect();
        drop(got);
        for (r, bytes) in ranges.iter().step_by(7).zip(&kept) {
            assert_eq!(&bytes[..], &data[r.start as usize..r.end as usize]);
        }
    });
}

#[test]
fn a_file_that_shrinks_before_its_batch_is_read_fails_the_read_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![7_u8; 1 << 20]).unwrap();
    // One blocking thread: jobs run in the order they are queued.
    let executor = io_executor::Builder::new()
        .name("shrink")
        .blocking_threads(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap())
        .with_executor(executor.clone());
    let op = op.clone().with_options(op.options().with_coalesce_gap(0));
    let ranges: Vec<_> = (0..200_u64).map(|i| i * 5_000..i * 5_000 + 100).collect();
    rt().block_on(async {
        let (hold, held) = std::sync::mpsc::channel::<()>();
        let blocker = executor.spawn_blocking(move || held.recv());
        // Queued behind the blocker: the open, then the shrink; the batch's jobs
        // are queued only once the open is done, so they find the file shrunk.
        let read = op.read_ranges("f", ranges);
        let shrink = executor.spawn_blocking({
            let path = path.clone();
            move || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)?
                    .set_len(100)
            }
        });
        hold.send(()).unwrap();
        let err = read.await.unwrap_err();
        assert!(
            err.to_string().contains("shrank"),
            "not the short read's error: {err}"
        );
        assert_eq!(err.operation(), "read_ranges", "{err}");
        blocker.await.unwrap().unwrap();
        shrink.await.unwrap().unwrap();
    });
    executor.shutdown();
}

#[test]
fn a_reader_of_a_kept_hot_file_opens_with_no_hand_off() {
    let dir = tempfile::tempdir().unwrap();
    let small: Vec<u8> = (0..100_000_u32).map(|i| (i % 241) as u8).collect();
    // Read whole by its open (under the 1 MiB chunk), but more than a read served on
    // the caller's thread.
    let big: Vec<u8> = (0..600_000_u32).map(|i| (i % 239) as u8).collect();
    // Longer than a chunk: read in 1 MiB chunks.
    let long: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 233) as u8).collect();
    std::fs::write(dir.path().join("small"), &small).unwrap();
    std::fs::write(dir.path().join("big"), &big).unwrap();
    std::fs::write(dir.path().join("long"), &long).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now");
    let read_all = |op: Operator, path: &'static str| async move {
        let mut reader = op.reader(path).await.unwrap();
        let mut all = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut all)
            .await
            .unwrap();
        all
    };
    rt().block_on(async {
        // Opened and read once, so both are kept and in page cache.
        assert_eq!(read_all(op.clone(), "small").await, small);
        assert_eq!(read_all(op.clone(), "big").await, big);
        assert_eq!(read_all(op.clone(), "long").await, long);
        // Small enough to be read whole on the caller's thread: no job at all.
        let before = jobs(&executor);
        assert_eq!(read_all(op.clone(), "small").await, small);
        assert_eq!(jobs(&executor), before, "the small reader was handed off");
        // Read whole by its open, larger than a read served here: one job opens it
        // and reads it, in one piece.
        let before = jobs(&executor);
        let pieces: Vec<_> = futures::StreamExt::collect::<Vec<_>>(op.reader("big").await.unwrap())
            .await
            .into_iter()
            .map(|piece| piece.unwrap().len())
            .collect();
        assert_eq!(pieces, [big.len()], "not one piece");
        assert_eq!(jobs(&executor), before + 1, "not one open job");
        // Longer than a chunk, asked for whole: one job, one piece, as object_store's
        // `get` wants it.
        let before = jobs(&executor);
        let whole = op.reader_with("long").whole_up_to(8 << 20).await.unwrap();
        let pieces: Vec<_> = futures::StreamExt::collect::<Vec<_>>(whole)
            .await
            .into_iter()
            .map(|piece| piece.unwrap().len())
            .collect();
        assert_eq!(pieces, [long.len()], "not one piece");
        assert_eq!(jobs(&executor), before + 1, "not one open job");
        // Longer than a chunk: opened here, each chunk (the first too) a job.
        let before = jobs(&executor);
        assert_eq!(read_all(op.clone(), "long").await, long);
        assert_eq!(jobs(&executor), before + 3, "not three chunk jobs");
        // Opened without waiting for the executor: the reader is there while every
        // blocking thread is busy, and reads once they are free.
        let threads = executor.num_blocking_threads();
        let gate = std::sync::Arc::new(std::sync::Barrier::new(threads + 1));
        let busy: Vec<_> = (0..threads)
            .map(|_| {
                let gate = std::sync::Arc::clone(&gate);
                executor.spawn_blocking(move || gate.wait().is_leader())
            })
            .collect();
        // A result known at once is handed over at the second poll (the first
        // yields); one that waits for a job is never, while the gate is closed.
        let mut open = std::pin::pin!(op.reader("long"));
        let mut reader = None;
        for _ in 0..3 {
            let polled = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(open.as_mut(), cx))
            });
            if let std::task::Poll::Ready(opened) = polled.await {
                reader = Some(opened.unwrap());
                break;
            }
        }
        let mut reader = reader.expect("the reader waited for the executor");
        gate.wait();
        let mut all = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut all)
            .await
            .unwrap();
        assert_eq!(all, long);
        for job in busy {
            job.await.unwrap();
        }
        // Off, the open of the small one is a job again.
        let off = op.clone().with_options(op.options().with_read_now(false));
        let before = jobs(&executor);
        assert_eq!(read_all(off, "small").await, small);
        assert!(jobs(&executor) > before);
    });
}

/// Reads that ask for a version (`read_with(..).if_match`, `read_ranges_with`, as
/// a parquet reader given an ETag makes) of a kept hot file need no hand-off either,
/// and their conditions are checked against the file read: a wrong ETag fails
/// there, and the ETag of the replaced file fails once the path names a new one.
#[test]
fn conditional_reads_of_a_kept_hot_file_need_no_hand_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![5_u8; 1 << 20]).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now-cond");
    rt().block_on(async {
        let etag = op.stat("f").await.unwrap().etag().unwrap().to_owned();
        assert_eq!(op.read_range("f", 0..4096).await.unwrap().len(), 4096);
        // One range: served here, as without a condition.
        let before = jobs(&executor);
        for i in 0..10 {
            let one = op
                .read_with("f")
                .range(i * 4096..(i + 1) * 4096)
                .if_match(&etag)
                .await
                .unwrap();
            assert!(one.len() == 4096 && one.iter().all(|&b| b == 5));
            let alone = op
                .read_ranges_with("f", std::iter::once(i * 4096..i * 4096 + 100).collect())
                .if_match(&etag)
                .await
                .unwrap();
            assert!(alone[0].len() == 100 && alone[0].iter().all(|&c| c == 5));
        }
        let err = op
            .read_with("f")
            .range(0..4096)
            .if_match("\"another\"")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        let err = op
            .read_ranges_with("f", std::iter::once(0..100).collect())
            .if_match("\"another\"")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        assert_eq!(err.operation(), "read_ranges_with");
        assert_eq!(
            jobs(&executor),
            before,
            "hot conditional reads went through the executor"
        );
        // Several: opened here, and only their batch is a job, as without one.
        let before = jobs(&executor);
        for i in 0..10 {
            let ranges = vec![
                i * 4096..i * 4096 + 100,
                (i + 20) * 4096..(i + 20) * 4096 + 100,
            ];
            let many = op
                .read_ranges_with("f", ranges)
                .if_match(&etag)
                .await
                .unwrap();
            assert!(
                many.iter()
                    .all(|b| b.len() == 100 && b.iter().all(|&c| c == 5))
            );
        }
        assert_eq!(
            jobs(&executor) - before,
            10,
            "one job per call, its batch: the opens were made here"
        );

        op.write("f", vec![6_u8; 1 << 20]).await.unwrap();
        for _ in 0..3 {
            let err = op
                .read_with("f")
                .range(0..4096)
                .if_match(&etag)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        }
    });
}

/// An operator over `dir` with `options`, whose reads take their buffers from a
/// pool of their own (up to 1 GiB idle), to look at what they took.
fn pooled(
    dir: &std::path::Path,
    options: impl FnOnce(storage::Options) -> storage::Options,
) -> (std::sync::Arc<storage::raw::BufferPool>, Operator) {
    let pool = storage::raw::BufferPool::new(1 << 30);
    let fs = storage::services::Fs::new(dir)
        .unwrap()
        .with_buffer_pool(std::sync::Arc::clone(&pool));
    let op = Operator::new(fs);
    let op = op.clone().with_options(options(*op.options()));
    (pool, op)
}

/// A read's buffer is at most a quarter larger than the read (plus a page), so
/// that a bound on reads' lengths bounds memory: a read just past a power of two
/// (33 MiB) took a block of the next (64 MiB), which the pool then held. Whole
/// reads, ranges and a reader's chunks alike; the block goes back to the pool and
/// is taken again by the next read of its class.
#[test]
fn a_read_takes_a_buffer_at_most_a_quarter_larger_than_itself() {
    let dir = tempfile::tempdir().unwrap();
    let len = (33 << 20) + 5;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let (pool, op) = pooled(dir.path(), |o| o.with_max_buffer_size(40 << 20));
    let within = |read: usize| {
        let held = pool.idle_bytes();
        assert!(held >= read, "{read}: {held}");
        assert!(held <= read + read / 4 + 4096, "{read}: {held}");
    };
    rt().block_on(async {
        let whole = op.read("f").await.unwrap();
        assert!(whole[..] == data[..]);
        drop(whole);
        within(len);
        let again = op.read("f").await.unwrap();
        assert_eq!(pool.idle_bytes(), 0, "the same block, taken again");
        drop(again);

        let pool_before = pool.idle_bytes();
        let range = op.read_range("f", 1..(9 << 20) + 2).await.unwrap();
        assert!(range[..] == data[1..(9 << 20) + 2]);
        drop(range);
        assert!(pool.idle_bytes() - pool_before <= (9 << 20) + (9 << 20) / 4 + 4096);
    });
    // A reader's chunks of 3 MiB and a byte, of a file of ten of them: the chunk
    // in flight and the one handed over, each in a block of one class.
    let chunk = (3 << 20) + 1;
    let data: Vec<u8> = (0..10 * chunk).map(|i| (i % 241) as u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let (pool, op) = pooled(dir.path(), |o| o.with_chunk_size(chunk).with_prefetch(1));
    rt().block_on(async {
        use futures::StreamExt as _;
        let mut reader = op.reader("f").await.unwrap();
        let mut at = 0;
        while let Some(chunk) = reader.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk[..] == data[at..at + chunk.len()]);
            at += chunk.len();
        }
        assert_eq!(at, data.len());
    });
    let held = pool.idle_bytes();
    assert!(held >= chunk, "{held}");
    assert!(held <= 2 * (chunk + chunk / 4 + 4096), "{held}");
}

/// A kept file whose mode or owner changed is opened again, so that a read its
/// new mode refuses is refused, as an open would refuse it; it was served from
/// the descriptor kept (`chmod 000` did not stop reads). Root may read whatever
/// the mode: there the new open shows as a job where the kept file needed none.
#[test]
fn a_kept_file_whose_mode_or_owner_changed_is_opened_again() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![5_u8; 1 << 16]).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "read-now-mode");
    let root = rustix::process::geteuid().is_root();
    rt().block_on(async {
        op.read_range("f", 0..4096).await.unwrap();
        let before = jobs(&executor);
        op.read_range("f", 0..4096).await.unwrap();
        assert_eq!(jobs(&executor), before, "kept and hot: no job");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        let before = jobs(&executor);
        let read = op.read_range("f", 0..4096).await;
        if root {
            assert_eq!(read.unwrap().len(), 4096);
            assert!(jobs(&executor) > before, "served from the file kept");
        } else {
            let err = read.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        }

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        op.read_range("f", 0..4096).await.unwrap();
        let before = jobs(&executor);
        op.read_range("f", 0..4096).await.unwrap();
        assert_eq!(jobs(&executor), before, "kept again: no job");

        if root {
            rustix::fs::chown(&path, Some(rustix::process::Uid::from_raw(65534)), None).unwrap();
            let before = jobs(&executor);
            op.read_range("f", 0..4096).await.unwrap();
            assert!(jobs(&executor) > before, "served from the file kept");
        }
    });
}
