//! Large reads out of the page cache are the executor's bulk jobs (a few copies
//! at a time); a large read that must wait for the device is not, so it never
//! waits behind the copies.

use std::num::NonZeroUsize;
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::Duration;

use io_executor::Executor;
use storage::Operator;

/// The caller's runtime: one thread, as a test's `block_on` has.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// How often the cold read is tried (its pages dropped each time) before the test
/// concludes that it waited for the bulk lane: the kernel may bring dropped pages
/// back before the read is submitted.
const ATTEMPTS: usize = 5;

const LEN: usize = 2 << 20;

/// An operator over `dir` on a pool with one bulk thread among four.
fn operator(dir: &std::path::Path, name: &str) -> (Operator, Executor) {
    let executor = io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(1).unwrap())
        .blocking_threads(NonZeroUsize::new(4).unwrap())
        .bulk_threads(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op =
        Operator::new(storage::services::Fs::new(dir).unwrap()).with_executor(executor.clone());
    (op, executor)
}

/// Holds the only bulk thread until `release` is sent to, or `wait` has passed;
/// returns whether it was released (not timed out).
fn hold_bulk(
    executor: &Executor,
    wait: Duration,
) -> (io_executor::JoinHandle<bool>, mpsc::Sender<()>) {
    let (release, held) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let handle = executor.spawn_blocking_bulk(move || {
        started_tx.send(()).unwrap();
        held.recv_timeout(wait).is_ok()
    });
    started.recv().unwrap();
    (handle, release)
}

fn data() -> Vec<u8> {
    (0..LEN as u32).map(|i| (i % 241) as u8).collect()
}

#[test]
fn a_large_read_of_cached_pages_waits_its_turn_among_the_copies() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    std::fs::write(dir.path().join("hot"), &data).unwrap();
    let (op, executor) = operator(dir.path(), "bulk-hot");
    rt().block_on(async {
        // Opened and kept, its pages in memory.
        assert_eq!(op.read_range("hot", 0..LEN as u64).await.unwrap(), data);
        let (holder, release) = hold_bulk(&executor, Duration::from_secs(60));
        let read = tokio::spawn({
            let op = op.clone();
            async move { op.read_range("hot", 1..LEN as u64).await }
        });
        // The read is submitted at its first poll, which this wait lets happen.
        while executor.metrics().queued == 0 && !read.is_finished() {
            tokio::task::yield_now().await;
        }
        // Blocking threads are free: a plain job runs meanwhile.
        executor.spawn_blocking(|| ()).await.unwrap();
        // Time for a read that was wrongly let run to show it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !read.is_finished() && executor.metrics().queued == 1,
            "a large read of cached pages ran beside the bulk job holding the only bulk thread"
        );
        release.send(()).unwrap();
        assert!(holder.await.unwrap());
        assert_eq!(read.await.unwrap().unwrap(), data[1..]);
        // With `read_now` off the caller's thread does not look at the page cache:
        // the same read is a plain job, served while the bulk thread is held.
        let off = op.clone().with_options(op.options().with_read_now(false));
        // Held for up to a minute: the read, served meanwhile, has that long.
        let (holder, release) = hold_bulk(&executor, Duration::from_secs(60));
        assert_eq!(
            off.read_range("hot", 1..LEN as u64).await.unwrap(),
            data[1..]
        );
        let _ = release.send(());
        assert!(
            holder.await.unwrap(),
            "with read_now off, a read waited for the bulk thread"
        );
    });
}

#[test]
fn a_large_read_that_waits_for_the_device_is_not_held_up_by_the_copies() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let path = dir.path().join("cold");
    std::fs::write(&path, &data).unwrap();
    let (op, executor) = operator(dir.path(), "bulk-cold");
    let file = std::fs::File::open(&path).unwrap();
    // tmpfs keeps every page in memory: none can be dropped.
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    if rustix::fs::fstatfs(&file).unwrap().f_type as i64 == TMPFS_MAGIC {
        eprintln!("SKIPPED: the temp dir is on tmpfs, whose pages cannot be dropped");
        return;
    }
    rt().block_on(async {
        // Opened and kept, as a hot file is: only its pages are missing.
        assert_eq!(op.read_range("cold", 0..LEN as u64).await.unwrap(), data);
        let mut served_while_held = false;
        for _ in 0..ATTEMPTS {
            rustix::fs::fdatasync(file.as_fd()).unwrap();
            rustix::fs::fadvise(file.as_fd(), 0, None, rustix::fs::Advice::DontNeed).unwrap();
            let (holder, release) = hold_bulk(&executor, Duration::from_secs(10));
            let bytes = op.read_range("cold", 0..LEN as u64).await.unwrap();
            assert_eq!(bytes, data);
            // `false`: the holder gave up waiting first, so the read waited for it.
            let _ = release.send(());
            if holder.await.unwrap() {
                served_while_held = true;
                break;
            }
        }
        assert!(
            served_while_held,
            "in {ATTEMPTS} tries, a read of dropped pages always waited for the bulk lane"
        );
    });
}
