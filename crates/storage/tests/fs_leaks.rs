//! No file descriptor outlives the work that opened it, beyond the files the fs
//! backend keeps open on purpose (a bounded number, closed with the backend).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use futures::StreamExt;
use storage::Operator;
use tokio::io::AsyncWriteExt;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn ten_thousand_operations_leave_no_descriptor_behind() {
    let dir = tempfile::tempdir().unwrap();
    let executor = io_executor::Builder::new()
        .name("leaks")
        .worker_threads(NonZeroUsize::new(1).unwrap())
        .blocking_threads(NonZeroUsize::new(4).unwrap())
        .build()
        .unwrap();
    // At most 16 files kept open between reads.
    const KEPT: usize = 16;
    let fs = storage::services::Fs::new(dir.path())
        .unwrap()
        .with_open_files(KEPT);
    let op = Operator::new(fs).with_executor(executor.clone());
    let options = op
        .options()
        .with_chunk_size(4096)
        .with_write_chunk_size(4096);
    let op = op.with_options(options);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        op.write("seed", vec![1_u8; 64 << 10]).await.unwrap();
        // Warm up lazily opened things (runtimes, pools) before counting.
        let _ = op.read("seed").await.unwrap();
    });
    let before = open_fds();
    rt.block_on(async {
        for i in 0..2_500 {
            let key = format!("k/{}", i % 50);
            op.write(&key, vec![i as u8; 10_000]).await.unwrap();
            assert_eq!(op.read_range(&key, 0..100).await.unwrap().len(), 100);
            // A reader dropped midway, with chunk reads in flight.
            let mut reader = op.reader("seed").await.unwrap();
            let _ = reader.next().await.unwrap().unwrap();
            drop(reader);
            // A writer dropped without close, with data written.
            let mut writer = op.writer(&format!("w/{i}")).await.unwrap();
            writer.write_all(&[7; 10_000]).await.unwrap();
            drop(writer);
        }
    });
    // Dropped readers and writers clean up on the executor; wait for it to go idle.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = executor.metrics();
        if m.queued == 0 && m.running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "executor never went idle: {m:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let after = open_fds();
    assert!(
        after <= before + KEPT,
        "file descriptors leaked: {before} before, {after} after (at most {KEPT} kept open)"
    );
    // The kept files close with the backend.
    drop(op);
    let closed = open_fds();
    assert!(
        closed <= before,
        "the backend's kept files outlived it: {before} before, {closed} after"
    );
    // Aborted writers left nothing behind.
    let leftovers: Vec<_> = walk(dir.path());
    assert!(
        leftovers.iter().all(|p| !p.contains(".dio-tmp.")),
        "temp files left: {leftovers:?}"
    );
    assert!(
        leftovers.iter().all(|p| !p.starts_with("w/")),
        "aborted writers committed: {leftovers:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out
}

/// Files held open by this process that are deleted, below `dir`.
fn deleted_files_held(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with(&dir) && target.ends_with(" (deleted)"))
        .collect()
}

/// A file read while it is deleted is not kept open once both are done: the
/// delete forgets the path as it ends, and a read that opened the file before the
/// delete and kept it after that forget held the deleted file (its disk space)
/// until a later read's sweep, which an idle store never makes.
#[test]
fn a_file_read_while_it_is_deleted_is_not_kept_open() {
    let dir = tempfile::tempdir().unwrap();
    let executor = io_executor::Builder::new()
        .name("leaks-del")
        .worker_threads(NonZeroUsize::new(1).unwrap())
        .blocking_threads(NonZeroUsize::new(4).unwrap())
        .build()
        .unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap())
        .with_executor(executor.clone());
    // Reads large enough to be jobs (not served from the caller's thread).
    let data = vec![7_u8; 1 << 20];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..400 {
            let path = format!("f{i}");
            op.write(&path, data.clone()).await.unwrap();
            let (read, deleted) = tokio::join!(op.read(&path), op.delete(&path));
            deleted.unwrap();
            // Read whole, or not found: either is right.
            if let Ok(read) = read {
                assert_eq!(read.len(), data.len());
            }
        }
    });
    let held = deleted_files_held(dir.path());
    assert!(
        held.is_empty(),
        "{} deleted files held open: {:?}",
        held.len(),
        &held[..held.len().min(3)]
    );
    drop(op);
    executor.shutdown();
}

/// A kept file deleted by another process (a compaction) is let go of within
/// about a second while reads go on, even when every read is served on the
/// caller's thread from another kept file (no job, which made the only look for
/// deleted files, ran): its disk space comes back.
#[test]
fn a_kept_file_deleted_by_another_process_is_let_go_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let executor = io_executor::Builder::new()
        .name("leaks-swept")
        .build()
        .unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap())
        .with_executor(executor.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for name in ["old", "hot"] {
            op.write(name, vec![1_u8; 64 << 10]).await.unwrap();
            op.read_range(name, 0..4096).await.unwrap();
        }
        std::fs::remove_file(dir.path().join("old")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            op.read_range("hot", 0..4096).await.unwrap();
            if deleted_files_held(dir.path()).is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "the deleted file is still held");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    drop(op);
    executor.shutdown();
}
