//! fs failure modes from the reliability review: huge and sparse reads, a full
//! disk, temporary files left by crashed processes, entries that vanish while a
//! directory is listed.

use std::os::unix::fs::FileExt;

use storage::{ErrorKind, Operator};
use tokio::io::AsyncWriteExt;

mod common_fs;
use common_fs::rt;

/// RSS of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = status.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// One test of this binary at a time: one of them measures the process's memory,
/// which the others' buffers, held at the same time, would add to.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn tiny_ranges_over_a_huge_sparse_file_read_little_and_never_abort() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // 32 GiB, all holes but a byte at the end.
    let file = std::fs::File::create(dir.path().join("sparse")).unwrap();
    file.set_len(32 << 30).unwrap();
    file.write_all_at(b"!", (32 << 30) - 1).unwrap();
    drop(file);
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    // Ranges this far apart are within the coalescing gap: without a bound on what
    // merging may waste, they would become one 32 GiB read.
    let op = op
        .clone()
        .with_options(op.options().with_coalesce_gap(16 << 20));
    rt().block_on(async {
        // 4,096 ranges of 16 bytes spread over the whole file, 8 MiB apart.
        let ranges: Vec<_> = (0..4096_u64).map(|i| i << 23..(i << 23) + 16).collect();
        let before = rss();
        let got = op.read_ranges("sparse", ranges.clone()).await.unwrap();
        assert_eq!(got.len(), ranges.len());
        assert!(
            got.iter()
                .all(|b| b.len() == 16 && b.iter().all(|&c| c == 0))
        );
        let grew = rss().saturating_sub(before);
        assert!(
            grew < 256 << 20,
            "read_ranges of 64 KiB grew RSS by {grew} bytes"
        );
        // Asking for more than one buffer may hold is an error, not an abort.
        let err = op.read_range("sparse", 0..(32 << 30)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("max_buffer_size"), "{err}");
        let err = op.read("sparse").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = op
            .read_ranges("sparse", vec![0..(32 << 30), 0..1])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // Raised limit, impossible size: the allocation fails cleanly.
        let unlimited = op
            .clone()
            .with_options(op.options().with_max_buffer_size(u64::MAX));
        let err = unlimited.read_range("sparse", 0..(32 << 30)).await;
        if let Err(err) = err {
            assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
        }
        // A reader streams the same file in bounded chunks.
        let mut reader = op
            .reader_with("sparse")
            .range((32 << 30) - 10..)
            .await
            .unwrap();
        let mut tail = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut tail)
            .await
            .unwrap();
        assert_eq!(tail.last(), Some(&b'!'));
    });
}

/// Unmounts what [`mount_on`] mounted when dropped.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Runs its closure when dropped: undoes a test's change to the system (an
/// immutable file, a frozen filesystem) however the test ends.
struct OnDrop<F: Fn()>(F);

impl<F: Fn()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Notes that a test cannot run here; with `DIO_REQUIRE_PRIVILEGED=1` (what
/// `scripts/test` sets where a trial shows it may do what these tests do: mount a
/// loop device, freeze it, set the immutable flag) a
/// test that would skip fails instead, so that a skip cannot hide a failure where
/// the test should run.
fn skipped(why: &str) {
    if std::env::var("DIO_REQUIRE_PRIVILEGED").is_ok_and(|v| v == "1") {
        panic!("DIO_REQUIRE_PRIVILEGED=1, yet this test would skip: {why}");
    }
    eprintln!("SKIPPED: {why}");
}

/// `mount <args> <target>`, unmounted when the guard is dropped; `None` (the test
/// is skipped, with a note) if it fails for want of the right to mount (not root,
/// or root in a container without it). Where `scripts/test` found that right, it
/// must work ([`skipped`]).
fn mount_on(target: &std::path::Path, args: &[&str]) -> Option<Unmount> {
    let mounted = try_mount(target, args);
    if mounted.is_none() {
        skipped(&format!(
            "mount {args:?} failed: it needs the right to mount"
        ));
    }
    mounted
}

/// `mount <args> <target>`, unmounted when the guard is dropped; `None` if it
/// failed, for the caller to say why.
fn try_mount(target: &std::path::Path, args: &[&str]) -> Option<Unmount> {
    std::process::Command::new("mount")
        .args(args)
        .arg(target)
        .status()
        .is_ok_and(|s| s.success())
        .then(|| Unmount(target.to_owned()))
}

/// Whether `dir` is on ext4, XFS, Btrfs, tmpfs or overlayfs (where the fs backend
/// keeps files open).
fn on_a_known_local_filesystem(dir: &std::path::Path) -> bool {
    let local_fs = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x794C_7630];
    rustix::fs::statfs(dir).is_ok_and(|s| local_fs.contains(&s.f_type))
}

/// Whether this process holds a descriptor of `path`.
fn held_open(path: &std::path::Path) -> bool {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| target == path)
}

/// Files read are kept open on a local filesystem, and only there: on one not
/// known to be local (here ramfs; NFS and FUSE in production), whose name lookups
/// may be answered from a client's cache without asking the server, the check
/// that a kept file is still its path's could miss a replacement by another
/// client, so each read opens the path.
#[test]
fn files_are_kept_open_only_on_local_filesystems() {
    let _serial = serial();
    let local = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let Some(_mounted) = mount_on(other.path(), &["-t", "ramfs", "ramfs"]) else {
        return;
    };
    // The temp dir on a filesystem known to be local: where it is not (a virtiofs
    // or NFS home), only ramfs is tried.
    let known = on_a_known_local_filesystem(local.path());
    if !known {
        eprintln!("the temp dir is not on a filesystem known to be local: ramfs only");
    }
    let dirs = [(local.path(), true), (other.path(), false)];
    for (dir, kept) in dirs.into_iter().filter(|&(_, kept)| known || !kept) {
        let (op, _executor) = common_fs::operator(dir, "fs-rel");
        let op = op.blocking();
        op.write("f", "data").unwrap();
        for _ in 0..3 {
            assert_eq!(op.read("f").unwrap(), "data");
        }
        let path = dir.canonicalize().unwrap().join("f");
        assert_eq!(held_open(&path), kept, "{}", path.display());
    }
}

/// `remove_all` of a tree as deep as a path may be holds one descriptor a level
/// while it descends: a tree 300 levels deep is removed with 400 descriptors to
/// spare, where two a level ran out of them (`EMFILE`).
#[test]
fn remove_all_of_a_deep_tree_does_not_run_out_of_descriptors() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let op = op.blocking();
    let deep = format!("{}f", "d/".repeat(300));
    op.write(&deep, "x").unwrap();
    let was = getrlimit(Resource::Nofile);
    let restore = OnDrop(move || {
        let _ = setrlimit(Resource::Nofile, was);
    });
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_now + 400),
            maximum: was.maximum,
        },
    )
    .unwrap();
    let removed = op.remove_all("d/");
    drop(restore);
    removed.unwrap();
    assert!(!dir.path().join("d").exists());
}

/// A process out of file descriptors (its limit lowered to 40 more than it has
/// open) still reads and writes: the files the backend keeps open are closed and
/// the open made again, rather than fail a read because of them.
#[test]
fn kept_files_give_way_when_the_process_runs_out_of_descriptors() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    if !on_a_known_local_filesystem(dir.path()) {
        // Files are kept open only on local filesystems: nothing gives way.
        eprintln!("SKIPPED: the temp dir is not on a filesystem known to be local");
        return;
    }
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let op = op.blocking();
    for i in 0..200 {
        op.write(&format!("f{i}"), "x").unwrap();
    }
    let was = getrlimit(Resource::Nofile);
    let _restore = OnDrop(move || {
        let _ = setrlimit(Resource::Nofile, was);
    });
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_now + 40),
            maximum: was.maximum,
        },
    )
    .unwrap();
    // Each file read is kept: past 40, every open needs the kept ones closed.
    for i in 0..200 {
        assert_eq!(op.read(&format!("f{i}")).unwrap(), "x", "read {i}");
    }
    for i in 0..50 {
        op.write(&format!("f{i}"), "y").unwrap();
    }
    // Nor the other operations, which open directories and files of their own:
    // before each, kept files take every descriptor left (new ones read until an
    // open of the test's own fails: descriptors opened before the limit was
    // lowered may lie above it, so a count of open ones does not say), and each
    // operation needs one.
    for i in 0..600 {
        op.write(&format!("g{i}"), "z").unwrap();
    }
    let full = || std::fs::File::open("/dev/null").is_err();
    let mut next = 0;
    let mut fill = || {
        while !full() {
            op.read(&format!("g{next}")).unwrap();
            next += 1;
        }
    };
    // A write whose commit comes when every descriptor is taken.
    let mut writer = op.writer("w").unwrap();
    std::io::Write::write_all(&mut writer, b"written").unwrap();
    fill();
    writer.close().unwrap();
    fill();
    assert_eq!(op.stat("f1").unwrap().content_length(), 1);
    fill();
    assert!(op.exists("f2").unwrap());
    fill();
    assert_eq!(op.list("").unwrap().len(), 801);
    fill();
    op.create_dir("d/").unwrap();
    fill();
    op.rename("f3", "d/f3").unwrap();
    fill();
    op.delete("f4").unwrap();
    fill();
    let deleted = op.delete_many(["f5", "f6"]).unwrap();
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    // A write in progress below a tree removed when every descriptor is taken:
    // left to commit, never taken for a crashed writer's leftover.
    let mut live = op.writer("d/live").unwrap();
    std::io::Write::write_all(&mut live, b"live").unwrap();
    fill();
    op.remove_all("d/").unwrap();
    live.close().unwrap();
    assert_eq!(op.read("d/live").unwrap(), "live");
    assert_eq!(op.list("").unwrap().len(), 798);
    // A recursive listing opens each directory it walks into as it reads its
    // pages (of 1000 entries, the next one read as one is handed out): here its
    // third page, read once every descriptor is taken. It closes the directory
    // it ended its last page in, then walks into the next, a symlinked one: two
    // descriptors (the link's lookup, then the directory it leads to).
    std::fs::create_dir(dir.path().join("t")).unwrap();
    for d in 0..1100 {
        op.write(&format!("r/d{d}/x"), "x").unwrap();
        std::os::unix::fs::symlink(format!("../r/d{d}"), dir.path().join(format!("t/l{d}")))
            .unwrap();
    }
    let rt = rt();
    let mut lister = rt
        .block_on(std::future::IntoFuture::into_future(
            op.async_operator().lister_with("t/").recursive(true),
        ))
        .unwrap();
    let mut listed = std::collections::BTreeSet::new();
    while let Some(entry) = rt.block_on(lister.next_entry()).unwrap() {
        listed.insert(entry.path().to_owned());
        if listed.len() == 1000 {
            fill();
        }
    }
    let want: std::collections::BTreeSet<String> = (0..1100)
        .flat_map(|d| [format!("t/l{d}/"), format!("t/l{d}/x")])
        .collect();
    assert_eq!(listed, want);
}

/// A 1 MiB tmpfs: the writer's chunks fail with "no space left", and every later
/// call says so, with the kind and the OS error as the source.
#[test]
fn a_full_disk_is_reported_by_the_writer_and_stays_reported() {
    let _serial = serial();
    let mount = tempfile::tempdir().unwrap();
    let Some(_unmount) = mount_on(mount.path(), &["-t", "tmpfs", "-o", "size=1m", "tmpfs"]) else {
        return;
    };
    let (op, _executor) = common_fs::operator(mount.path(), "fs-rel");
    let op = op
        .clone()
        .with_options(op.options().with_write_chunk_size(64 << 10));
    rt().block_on(async {
        let mut writer = op.writer("big").await.unwrap();
        let chunk = vec![7_u8; 64 << 10];
        let mut first = None;
        for _ in 0..64 {
            if let Err(e) = writer.write_all(&chunk).await {
                first = Some(e);
                break;
            }
        }
        let err = match first {
            Some(e) => e,
            None => writer.flush().await.unwrap_err(),
        };
        let ours = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<storage::Error>())
            .unwrap();
        assert_eq!(ours.kind(), ErrorKind::StorageFull, "{ours:?}");
        let os = std::error::Error::source(ours)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .unwrap();
        assert_eq!(os.raw_os_error(), Some(28), "ENOSPC as the source");
        for _ in 0..2 {
            let again = writer.write_all(&chunk).await.unwrap_err();
            assert_eq!(again.kind(), std::io::ErrorKind::StorageFull, "{again}");
        }
        assert_eq!(
            writer.close().await.unwrap_err().kind(),
            ErrorKind::StorageFull
        );
        drop(writer);
        // A one-shot write of too much fails the same way; nothing is left.
        let err = op.write("big2", vec![1_u8; 4 << 20]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{err}");
        // The dropped writer's clean-up runs in the background: it has a minute.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::read_dir(mount.path()).unwrap().count() > 0
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let left: Vec<_> = std::fs::read_dir(mount.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    });
}

/// What a crashed writer leaves: a temporary file nobody holds a lock on.
fn leave_stale_temp_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join(format!(".dio-tmp.{:032x}", 0x5eed_u128));
    std::fs::write(&path, b"half written").unwrap();
    path
}

#[test]
fn leftovers_of_crashed_writers_are_hidden_cleaned_and_never_in_the_way() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    std::fs::create_dir(dir.path().join("e")).unwrap();
    let stale = leave_stale_temp_file(&dir.path().join("e"));
    // A user's own file that merely starts like ours is a file like any other.
    std::fs::write(dir.path().join("e/.dio-tmp.mine"), b"user data").unwrap();
    rt().block_on(async {
        let listed: Vec<_> = op.list("e/").await.unwrap();
        let names: Vec<_> = listed.iter().map(|e| e.path().to_owned()).collect();
        assert_eq!(
            names,
            ["e/.dio-tmp.mine"],
            "the leftover is hidden, the user's file is not"
        );
        op.delete("e/.dio-tmp.mine").await.unwrap();
        // A directory holding only a leftover is empty: deleting it cleans up.
        op.delete("e/").await.unwrap();
        assert!(!stale.exists());
        assert!(!dir.path().join("e").exists());
        // A live write is never taken for a leftover.
        let stale = leave_stale_temp_file(dir.path());
        let mut writer = op.writer("w").await.unwrap();
        writer.write_all(b"in progress").await.unwrap();
        writer.flush().await.unwrap();
        // Its temporary file, by the name a `read_dir` shows, is not the caller's
        // to delete or copy (the write would be lost, or read half written).
        let live = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|name| name.starts_with(".dio-tmp.") && dir.path().join(name) != stale)
            .unwrap();
        let errors = [
            op.delete(&live).await.unwrap_err(),
            op.delete_many([live.as_str()])
                .await
                .unwrap()
                .remove(0)
                .unwrap_err(),
            op.copy(&live, "copied").await.unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(err.path(), live, "{err}");
        }
        let fs = storage::services::Fs::new(dir.path()).unwrap();
        let removed = op
            .executor()
            .spawn_blocking(move || fs.remove_stale_temp_files(""))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(removed, 1);
        assert!(!stale.exists());
        assert_eq!(writer.close().await.unwrap().content_length(), 11);
        assert_eq!(op.read("w").await.unwrap(), "in progress");
        // Writing to a name of the reserved form is refused.
        let reserved = format!(".dio-tmp.{:032x}", 1_u128);
        let err = op.write(&reserved, "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        // So are renames and copies to one, and renames of one (another write's
        // work in progress): the file a rename would hide and a sweep delete.
        let errors = [
            op.rename("w", &reserved).await.unwrap_err(),
            op.copy("w", &reserved).await.unwrap_err(),
            op.rename(&reserved, "x").await.unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        }
        assert_eq!(op.read("w").await.unwrap(), "in progress");
    });
}

#[test]
fn a_listing_skips_entries_that_vanish_while_it_runs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let rt = rt();
    rt.block_on(async {
        for i in 0..200 {
            op.write(&format!("d/f{i}"), "x").await.unwrap();
        }
    });
    let churn_dir = dir.path().join("d");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let churn = std::thread::spawn(move || {
        let mut i = 0_u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let a = churn_dir.join(format!("tmp{}", i % 50));
            let b = churn_dir.join(format!("moved{}", i % 50));
            let _ = std::fs::write(&a, b"x");
            let _ = std::fs::rename(&a, &b);
            let _ = std::fs::remove_file(&b);
            i += 1;
        }
    });
    rt.block_on(async {
        for _ in 0..300 {
            let entries = op.list("d/").await.unwrap();
            assert!(entries.len() >= 200);
            let deep = op.list_recursive("").await.unwrap();
            assert!(deep.len() >= 201);
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
}

/// A recursive listing goes on past a directory replaced by a file or a link
/// between reading its parent and opening it (skipped, as an entry removed
/// meanwhile is), where the whole listing failed with `NotADirectory`. The churn
/// makes that window likely, not certain (without the fix, two runs of three
/// failed); the test cannot fail otherwise.
#[test]
fn a_listing_skips_a_directory_replaced_by_a_file_while_it_runs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let rt = rt();
    // Many entries beside it: a listing reads them in batches, so that between
    // reading `sub` as a directory and opening it lie the entries before it.
    for i in 0..2000 {
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join(format!("d/f{i}")), "x").unwrap();
    }
    let churned = dir.path().join("d").join("sub");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let churn = std::thread::spawn(move || {
        let mut turn = 0_u64;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::create_dir(&churned);
            let _ = std::fs::remove_dir(&churned);
            if turn.is_multiple_of(2) {
                let _ = std::fs::write(&churned, b"x");
            } else {
                let _ = std::os::unix::fs::symlink("f0", &churned);
            }
            let _ = std::fs::remove_file(&churned);
            turn += 1;
        }
    });
    rt.block_on(async {
        for _ in 0..200 {
            let deep = op.list_recursive("").await.unwrap();
            assert!(deep.len() >= 2001, "{}", deep.len());
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
}

/// A write whose parent directory, empty, is deleted by a clean-up running beside
/// it (after the write found or made it, before its file is created there) makes
/// the directory again: "parent directories are created as needed", never a
/// `NotFound` for a directory the write itself would create.
#[test]
fn a_write_whose_empty_directory_is_deleted_meanwhile_makes_it_again() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let op = op.blocking();
    with_p_cleaned_beside(dir.path(), |i| {
        let path = format!("p/f{i}");
        if let Err(e) = op.write(&path, "x") {
            panic!("write {i}: {e}");
        }
        op.delete(&path).unwrap();
    });
}

/// The same for a rename into that directory: it is made again, never a
/// `NotFound` (which named the source, there all along).
#[test]
fn a_rename_whose_empty_target_directory_is_deleted_meanwhile_makes_it_again() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let op = op.blocking();
    with_p_cleaned_beside(dir.path(), |i| {
        let (from, to) = (format!("s{i}"), format!("p/f{i}"));
        op.write(&from, "x").unwrap();
        if let Err(e) = op.rename(&from, &to) {
            panic!("rename {i}: {e}");
        }
        op.delete(&to).unwrap();
    });
}

/// Runs `each` 3,000 times (with its round's number), while a clean-up beside
/// it deletes directory `p` of `root` whenever it is empty, at most once a round,
/// and at least once in all.
fn with_p_cleaned_beside(root: &std::path::Path, mut each: impl FnMut(u64)) {
    let parent = root.join("p");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (flag, started) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&rounds));
    let cleaner = std::thread::spawn(move || {
        let (mut removed, mut last) = (0_u64, u64::MAX);
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            // A clean-up, not an adversary that removes the directory as often as
            // it can (one waiting in `rmdir` while a slow `mkdir` holds the
            // directory's lock wins every race, against any number of
            // attempts): at most once a round, at any moment of it.
            let round = started.load(std::sync::atomic::Ordering::Relaxed);
            if round != last && std::fs::remove_dir(&parent).is_ok() {
                removed += 1;
                last = round;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        removed
    });
    for i in 0..3000 {
        rounds.store(i, std::sync::atomic::Ordering::Relaxed);
        each(i);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(
        cleaner.join().unwrap() > 0,
        "the directory was never deleted"
    );
}

#[test]
fn a_file_reader_streams_in_small_chunks_by_default_and_memory_in_large_ones() {
    let _serial = serial();
    // fs readers read 1 MiB chunks, eight ahead, so their buffers stay in the
    // CPU's cache and both blocking threads copy; the memory backend hands out 4
    // MiB slices. Both are the documented defaults of `Options`.
    use futures::StreamExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (fs, _executor) = common_fs::operator(dir.path(), "fs-rel");
    assert_eq!(
        (fs.options().chunk_size, fs.options().prefetch),
        (1 << 20, 8)
    );
    let memory = Operator::new(storage::services::Memory::new());
    assert_eq!(
        (memory.options().chunk_size, memory.options().prefetch),
        (4 << 20, 2)
    );
    // Longer than the read-ahead (nine chunks on fs), so chunks are read as the
    // consumer frees room, not only at the start.
    let data: Vec<u8> = (0..(13 << 20) + 12_345_u32)
        .map(|i| (i % 251) as u8)
        .collect();
    rt().block_on(async {
        for (op, chunk) in [(fs, 1 << 20), (memory, 4 << 20)] {
            op.write("obj", data.clone()).await.unwrap();
            let mut reader = op.reader("obj").await.unwrap();
            let mut got = Vec::new();
            let mut lens = Vec::new();
            while let Some(bytes) = reader.next().await {
                let bytes = bytes.unwrap();
                lens.push(bytes.len());
                got.extend_from_slice(&bytes);
            }
            assert!(got == data, "{} reader returned other bytes", op.scheme());
            let want: Vec<usize> = data.chunks(chunk).map(<[u8]>::len).collect();
            assert_eq!(lens, want, "{} reader's chunks", op.scheme());
        }
    });
}

#[test]
fn large_reads_read_by_two_threads_return_the_files_bytes() {
    let _serial = serial();
    // A read of 8 MiB or more on its own is read by two blocking threads into one
    // buffer, 1 MiB pieces at a time; odd lengths and offsets put the seams off a
    // page boundary and make the last piece short, and one even range has none.
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let data: Vec<u8> = (0..(17 << 20) + 12_345_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    rt().block_on(async {
        op.write("big", data.clone()).await.unwrap();
        let whole = op.read("big").await.unwrap();
        assert!(whole == data, "whole read differs");
        for range in [1..(8 << 20) + 2, 4_097..(17 << 20) + 12_000, 0..(8 << 20)] {
            let got = op.read_range("big", range.clone()).await.unwrap();
            let want = &data[range.start as usize..range.end as usize];
            assert!(got == want, "{range:?} differs");
        }
        // Sixteen at once (each split only while it is the only read in flight):
        // whatever mix of split and whole reads that gives, every byte is right.
        let reads: Vec<_> = (0..16_u64)
            .map(|i| op.read_range("big", i * 4096..i * 4096 + (9 << 20) + i))
            .collect();
        for (i, got) in futures::future::join_all(reads)
            .await
            .into_iter()
            .enumerate()
        {
            let start = i * 4096;
            assert!(
                got.unwrap() == data[start..start + (9 << 20) + i],
                "read {i} differs"
            );
        }
    });
}

/// `Options::max_buffer_size` bounds the buffers `read_ranges` fills, merged reads
/// included: ranges that touch, overlap, or are read in one batch share a buffer
/// only while it stays within the limit. With 16-byte ranges and a 16-byte limit
/// no two results may share one, so each must hold the only reference to its
/// buffer.
#[test]
fn read_ranges_never_fills_a_buffer_larger_than_max_buffer_size() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..100_u8).collect();
    std::fs::write(dir.path().join("f"), &data).unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let limited = op
        .clone()
        .with_options(op.options().with_max_buffer_size(16));
    let apart = limited
        .clone()
        .with_options(limited.options().with_coalesce_gap(0));
    let cases: [(&Operator, Vec<std::ops::Range<u64>>); 3] = [
        // Adjacent: six 16-byte ranges would merge into one 96-byte read.
        (&limited, (0..6).map(|i| i * 16..i * 16 + 16).collect()),
        // Overlapping: each within the limit, their union not.
        (&limited, vec![0..16, 8..24, 12..28, 40..56, 41..57]),
        // Apart, not merged: small reads of one batch.
        (&apart, vec![0..16, 32..48, 64..80, 84..100]),
    ];
    rt().block_on(async {
        for (op, ranges) in cases {
            let got = op.read_ranges("f", ranges.clone()).await.unwrap();
            for (range, bytes) in ranges.iter().zip(&got) {
                assert_eq!(bytes[..], data[range.start as usize..range.end as usize]);
                assert!(
                    bytes.is_unique(),
                    "{range:?} of {ranges:?} shares a buffer with another range"
                );
            }
        }
    });
}

/// A copy that finds its source shorter than the size it had when opened fails,
/// as a read does ("the file shrank"), and leaves the target as it was. A sysfs
/// attribute, bind-mounted into the root, is such a file: its size says 4096
/// bytes, its content is a few.
#[test]
fn a_copy_whose_source_shrank_fails_and_leaves_the_target_alone() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let candidates = [
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/uevent_seqnum",
        "/sys/power/state",
    ];
    let Some(short) = candidates.iter().find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
            && std::fs::read(p)
                .is_ok_and(|d| (d.len() as u64) < std::fs::metadata(p).unwrap().len())
    }) else {
        skipped("no sysfs file whose size says more than it holds");
        return;
    };
    std::fs::write(dir.path().join("src"), b"").unwrap();
    let Some(_unmount) = mount_on(&dir.path().join("src"), &["--bind", short]) else {
        return;
    };
    std::fs::write(dir.path().join("dst"), b"kept").unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        let err = op.copy("src", "dst").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{err:?}");
        assert!(err.to_string().contains("shrank"), "{err}");
        assert_eq!(err.path(), "src", "{err}");
        assert_eq!(err.operation(), "copy", "{err}");
    });
    assert_eq!(std::fs::read(dir.path().join("dst")).unwrap(), b"kept");
    let mut left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    left.sort();
    assert_eq!(left, ["dst", "src"], "no temporary file is left");
}

/// A copy that fills the disk fails with `StorageFull` naming the target (the
/// file at fault), not the source, and leaves no partial target behind.
#[test]
fn a_copy_onto_a_full_disk_names_the_target() {
    let _serial = serial();
    let mount = tempfile::tempdir().unwrap();
    let Some(_unmount) = mount_on(mount.path(), &["-t", "tmpfs", "-o", "size=1m", "tmpfs"]) else {
        return;
    };
    let (op, _executor) = common_fs::operator(mount.path(), "fs-rel");
    rt().block_on(async {
        op.write("src", vec![5_u8; 700 << 10]).await.unwrap();
        let err = op.copy("src", "dir/dst").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::StorageFull, "{err:?}");
        assert_eq!(err.path(), "dir/dst", "{err}");
        assert_eq!(err.context("to"), Some("dir/dst"), "{err}");
        assert_eq!(err.context("from"), Some("src"), "{err}");
        assert!(!op.exists("dir/dst").await.unwrap());
    });
    let left: Vec<_> = std::fs::read_dir(mount.path().join("dir"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `chattr <flag> <path>`; whether it worked (it needs root, `CAP_LINUX_IMMUTABLE`,
/// and a filesystem that has the attribute).
fn chattr(path: &std::path::Path, flag: &str) -> bool {
    std::process::Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A rename refused by the target's directory (immutable here: `EPERM`, as a
/// directory without write permission gives `EACCES`) names the target, as the
/// copy does; one refused by the source's names the source. And a rename with
/// `if_not_exists` onto a directory is `IsADirectory` naming it, as a write's and
/// a copy's are (it was `AlreadyExists`).
#[test]
fn a_rename_refused_names_the_end_at_fault() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("ro")).unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        op.write("a", "x").await.unwrap();
        for if_not_exists in [false, true] {
            let err = op
                .rename_with("a", "d")
                .if_not_exists(if_not_exists)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
            assert_eq!(err.path(), "d", "{err}");
        }
    });
    let ro = dir.path().join("ro");
    if !chattr(&ro, "+i") {
        skipped("chattr +i needs root (CAP_LINUX_IMMUTABLE) and a filesystem that has it");
        return;
    }
    let _mutable = OnDrop(|| {
        chattr(&ro, "-i");
    });
    rt().block_on(async {
        op.write("ro-src", "x").await.unwrap();
        for if_not_exists in [false, true] {
            let err = op
                .rename_with("ro-src", "ro/b")
                .if_not_exists(if_not_exists)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
            assert_eq!(err.path(), "ro/b", "if_not_exists {if_not_exists}: {err}");
        }
        let err = op.copy("ro-src", "ro/b").await.unwrap_err();
        assert_eq!(err.path(), "ro/b", "{err}");
        assert_eq!(op.read("ro-src").await.unwrap(), "x");
    });
}

/// A file `remove_all` may not remove (immutable: `unlink` fails with `EPERM`) is
/// `PermissionDenied`, not taken for a directory it then fails to open as one
/// (`NotADirectory`).
#[test]
fn remove_all_of_an_immutable_file_is_permission_denied() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let file = dir.path().join("d/f");
    std::fs::write(&file, b"x").unwrap();
    let chattr = |flag: &str| chattr(&file, flag);
    if !chattr("+i") {
        skipped("chattr +i needs root (CAP_LINUX_IMMUTABLE) and a filesystem that has it");
        return;
    }
    let _mutable = OnDrop(|| {
        chattr("-i");
    });
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        let err = op.remove_all("d/").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
        assert_eq!(err.operation(), "remove_all", "{err}");
    });
    assert!(file.exists());
}

/// An abort whose temporary file cannot be removed (its directory made immutable
/// since the write began: `unlink` fails with `EPERM`) says so, as `abort`'s docs
/// promise, where it answered `Ok`; the file stays hidden from listings, and the
/// sweep of crashed writers' leftovers removes it once it can.
#[test]
fn an_abort_that_cannot_remove_its_temporary_file_says_so() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let chattr = |flag: &str| chattr(&d, flag);
    rt().block_on(async {
        let mut writer = op.writer("d/f").await.unwrap();
        writer.write_bytes(vec![7_u8; 1 << 20]).await.unwrap();
        writer.ready().await.unwrap();
        let mut closed = op.writer("d/g").await.unwrap();
        closed.write_bytes(vec![7_u8; 1 << 20]).await.unwrap();
        if !chattr("+i") {
            skipped("chattr +i needs root (CAP_LINUX_IMMUTABLE) and a filesystem that has it");
            return;
        }
        let _mutable = OnDrop(|| {
            chattr("-i");
        });
        let err = writer.abort().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
        assert_eq!((err.operation(), err.path()), ("writer", "d/f"), "{err}");
        assert!(
            err.to_string()
                .contains("temporary file could not be removed"),
            "{err}"
        );
        // Said again by every later call.
        let again = writer.abort().await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Cancelled, "{again:?}");
        let left = again
            .context(storage::raw::ABORT_FAILED)
            .unwrap_or_default();
        assert!(
            left.contains("temporary file could not be removed"),
            "{again:?}"
        );
        // A commit that fails (the rename, `EPERM`) and cannot remove its
        // temporary file either says both, and so does the abort after it.
        let err = closed.close().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err:?}");
        let left = err.context(storage::raw::ABORT_FAILED).unwrap_or_default();
        assert!(
            left.contains("temporary file could not be removed"),
            "{err:?}"
        );
        let err = closed.abort().await.unwrap_err();
        assert!(err.context(storage::raw::ABORT_FAILED).is_some(), "{err:?}");
        assert!(op.list("d/").await.unwrap().is_empty());
    });
    // Mutable again: the leftovers go with the directory.
    assert!(!d.join("f").exists() && !d.join("g").exists());
    rt().block_on(op.delete("d/")).unwrap();
    assert!(!d.exists());
}

/// A listing that fails stays failed: every later `next_entry` returns the same
/// error (kind, operation, path), never `Ok(None)`, so a caller that logs an error
/// and goes on never takes what it got for the whole listing. The `Stream` yields
/// the error once and ends, as a `Reader`'s does. The failure: a symlink whose
/// target's name is longer than a name may be (`ENAMETOOLONG` when the listing
/// looks it up), for root as for anyone.
#[test]
fn a_failed_listing_stays_failed() {
    use futures::StreamExt as _;
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    std::os::unix::fs::symlink("n".repeat(300), dir.path().join("c")).unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        let mut lister = op.lister("").await.unwrap();
        let first = loop {
            match lister.next_entry().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the listing ended without its error"),
                Err(e) => break e,
            }
        };
        assert_eq!(first.operation(), "list", "{first}");
        for _ in 0..3 {
            let again = lister.next_entry().await.unwrap_err();
            assert_eq!(
                (again.kind(), again.operation(), again.path()),
                (first.kind(), first.operation(), first.path()),
                "{again}"
            );
        }
        let items: Vec<_> = op.lister("").await.unwrap().collect().await;
        assert!(
            items.last().is_some_and(Result::is_err),
            "the stream ends with the error"
        );
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    });
    // So does the blocking iterator: a loop that logs errors and goes on stops.
    let items: Vec<_> = op.blocking().lister("").unwrap().take(100).collect();
    assert!(
        items.last().is_some_and(Result::is_err),
        "the iterator ends with the error"
    );
    assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
}

/// A directory whose only entry is the hidden temporary file of a write in
/// progress lists as empty, yet cannot be deleted: the error says why, and the
/// write, which it leaves alone, commits.
#[test]
fn deleting_a_directory_a_write_is_filling_says_why_it_is_not_empty() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        op.create_dir("d/").await.unwrap();
        let mut writer = op.writer("d/f").await.unwrap();
        writer.write_all(b"data").await.unwrap();
        writer.flush().await.unwrap();
        assert!(op.list("d/").await.unwrap().is_empty());
        let err = op.delete("d/").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty, "{err}");
        assert!(err.to_string().contains("write in progress"), "{err}");
        writer.close().await.unwrap();
        assert_eq!(op.read("d/f").await.unwrap(), "data");
        // Anything else in it is not explained away.
        let err = op.delete("d/").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty, "{err}");
        assert!(!err.to_string().contains("write in progress"), "{err}");
    });
}

/// `remove_all` removes everything but writes in progress: a write into the tree
/// commits afterwards, as it does on an object store after the keys were deleted,
/// instead of failing at close because its temporary file was deleted under it.
/// A crashed writer's leftover goes.
#[test]
fn remove_all_leaves_a_write_in_progress_to_commit() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        op.write("d/old", "old").await.unwrap();
        op.write("d/sub/old", "old").await.unwrap();
        let mut writer = op.writer("d/sub/new").await.unwrap();
        writer.write_all(b"new").await.unwrap();
        writer.flush().await.unwrap();
        // A crashed writer's leftover: the temporary-file form, no lock held.
        let leftover = dir.path().join(format!("d/.dio-tmp.{}", "0".repeat(32)));
        std::fs::write(&leftover, b"crashed").unwrap();
        op.remove_all("d/").await.unwrap();
        assert!(!op.exists("d/old").await.unwrap());
        assert!(!op.exists("d/sub/old").await.unwrap());
        assert!(!leftover.exists(), "a crashed writer's leftover stays");
        writer.close().await.unwrap();
        assert_eq!(op.read("d/sub/new").await.unwrap(), "new");
        // Of the root too.
        let mut writer = op.writer("e/f").await.unwrap();
        writer.write_all(b"f").await.unwrap();
        writer.flush().await.unwrap();
        op.remove_all("").await.unwrap();
        writer.close().await.unwrap();
        let mut left: Vec<String> = op
            .list_recursive("")
            .await
            .unwrap()
            .iter()
            .map(|e| e.path().to_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["e/", "e/f"]);
    });
}

/// A listing that fails deep in a recursive walk names where: the entry it could
/// not look up, not only the directory the caller listed.
#[test]
fn a_failed_listing_names_the_entry_it_failed_at() {
    async fn walk_error(op: &Operator) -> storage::Error {
        let mut lister = op.lister_with("t/").recursive(true).await.unwrap();
        loop {
            match lister.next_entry().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the listing ended without its error"),
                Err(e) => return e,
            }
        }
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("t/deep/er")).unwrap();
    std::fs::write(dir.path().join("t/deep/f"), b"x").unwrap();
    std::os::unix::fs::symlink("n".repeat(300), dir.path().join("t/deep/er/c")).unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        let err = walk_error(&op).await;
        assert_eq!(err.operation(), "list", "{err}");
        assert_eq!(err.path(), "t/deep/er/c", "{err}");
        // A directory the walk could not open is named as listings name it.
        std::fs::remove_file(dir.path().join("t/deep/er/c")).unwrap();
        let long = "d".repeat(250);
        let mut fd = rustix::fs::open(
            dir.path().join("t/deep/er"),
            rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        // Deeper than a path may be long, made a level at a time.
        let mut path = String::from("t/deep/er/");
        while path.len() <= storage::raw::MAX_PATH_LEN {
            rustix::fs::mkdirat(&fd, long.as_str(), rustix::fs::Mode::from(0o755)).unwrap();
            fd = rustix::fs::openat(
                &fd,
                long.as_str(),
                rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            )
            .unwrap();
            path.push_str(&long);
            path.push('/');
        }
        let err = walk_error(&op).await;
        assert_eq!(err.operation(), "list", "{err}");
        assert_eq!(err.path(), path, "{err}");
    });
}

/// Names of the temporary-file form are refused in every component of a path a
/// write creates, not only the last: a directory of that form would be hidden from
/// listings as a temporary file is. One made by another program is a directory
/// like any other: listed, never swept, and counted when its parent is deleted.
#[test]
fn directories_of_the_temporary_file_form_are_refused_or_shown() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let reserved = format!(".dio-tmp.{:032x}", 7_u128);
    rt().block_on(async {
        op.write("w", "x").await.unwrap();
        let nested = format!("a/{reserved}/f");
        let errors = [
            op.write(&nested, "x").await.unwrap_err(),
            op.writer(&nested).await.map(drop).unwrap_err(),
            op.copy("w", &nested).await.unwrap_err(),
            op.rename("w", &nested).await.unwrap_err(),
            op.create_dir(&format!("a/{reserved}/")).await.unwrap_err(),
            op.create_dir(&format!("a/{reserved}/b/"))
                .await
                .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert!(err.path().contains(&reserved), "{err}");
        }
        assert_eq!(op.read("w").await.unwrap(), "x");
        assert!(!dir.path().join("a").exists(), "nothing was created");
    });
    // Made by someone else: listed, not swept, and its parent is not empty.
    std::fs::create_dir_all(dir.path().join("e").join(&reserved)).unwrap();
    std::fs::write(dir.path().join("e").join(&reserved).join("f"), b"x").unwrap();
    rt().block_on(async {
        let listed: Vec<_> = op
            .list_recursive("e/")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(
            listed,
            [format!("e/{reserved}/"), format!("e/{reserved}/f")],
            "the directory is listed"
        );
        let err = op.delete("e/").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty, "{err}");
        let fs = storage::services::Fs::new(dir.path()).unwrap();
        let swept = op
            .executor()
            .spawn_blocking(move || fs.remove_stale_temp_files(""))
            .await
            .unwrap();
        assert_eq!(swept.unwrap(), 0);
        assert_eq!(op.read(&format!("e/{reserved}/f")).await.unwrap(), "x");
        // A directory like any other: `remove_all` removes it and its files (it
        // answered `Ok` and left them, taking it for a write's temporary file),
        // and a symlink of that name too.
        std::os::unix::fs::symlink(
            "nowhere",
            dir.path()
                .join("e")
                .join(format!(".dio-tmp.{:032x}", 8_u128)),
        )
        .unwrap();
        op.remove_all("e/").await.unwrap();
        assert!(!dir.path().join("e").exists(), "e/ is gone");
    });
}

/// A 16 MiB ext4 image in `dir`, made with `mkfs.ext4` and `options`; `None` if
/// it could not be made.
fn ext4_image(dir: &std::path::Path, options: &[&str]) -> Option<std::path::PathBuf> {
    let image = dir.join("image");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    std::process::Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .args(options)
        .arg(&image)
        .status()
        .is_ok_and(|s| s.success())
        .then_some(image)
}

/// A blocking job that has started runs to its end, whatever becomes of its
/// future: a write whose `IoFuture` is dropped while its job is under way still
/// replaces the target, atomically. The job is held mid-way by a frozen
/// filesystem (an ext4 image, loop-mounted: creating the temporary file waits
/// until the filesystem is thawed), so the drop lands after it started, with no
/// timing.
#[test]
fn a_write_dropped_after_its_job_started_still_replaces_the_target() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = ext4_image(dir.path(), &[]) else {
        skipped("mkfs.ext4 is missing or failed");
        return;
    };
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    let Some(_unmount) = mount_on(&mount, &["-o", "loop", image.to_str().unwrap()]) else {
        return;
    };
    std::fs::write(mount.join("f"), b"old").unwrap();
    let executor = io_executor::Builder::new()
        .name("fs-rel-frozen")
        .worker_threads(std::num::NonZeroUsize::MIN)
        .blocking_threads(std::num::NonZeroUsize::MIN)
        .build()
        .unwrap();
    let op =
        Operator::new(storage::services::Fs::new(&mount).unwrap()).with_executor(executor.clone());
    let freeze = |flag: &str| {
        std::process::Command::new("fsfreeze")
            .arg(flag)
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(freeze("-f"), "fsfreeze -f failed on a fresh ext4 mount");
    // Thawed however the test ends, before the executor and the mount go.
    let thaw = OnDrop(|| {
        freeze("-u");
    });
    // Waits (with a guard against hanging) until the executor's counters say `done`.
    let wait_for = |what: &str, done: &dyn Fn(&io_executor::Metrics) -> bool| {
        let mut waited = 0;
        while !done(&executor.metrics()) {
            assert!(
                waited < 10_000,
                "still waiting for {what}: {:?}",
                executor.metrics()
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
            waited += 1;
        }
    };
    let before = executor.metrics().completed;
    let write = op.write("f", &b"new"[..]);
    wait_for("the write's job to start", &|m| {
        m.running == 1 && m.blocking_queue_depth == 0
    });
    drop(write);
    // The job waits on the frozen filesystem: the target is as it was.
    assert_eq!(std::fs::read(mount.join("f")).unwrap(), b"old");
    assert!(freeze("-u"), "fsfreeze -u failed");
    wait_for("the write's job to end", &|m| {
        m.running == 0 && m.completed > before
    });
    assert_eq!(std::fs::read(mount.join("f")).unwrap(), b"new");
    let mut names: Vec<_> = std::fs::read_dir(&mount)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["f", "lost+found"], "no temporary file is left");
    drop(op);
    drop(thaw);
}

/// A directory swapped for a new one while a write into it is under way (`mv t
/// t.old; mkdir t`, as a table is replaced): the file goes where its path names
/// when it commits, as on an object store, never into the old directory with a
/// success that the path does not show.
#[test]
fn a_write_commits_where_its_path_names_after_its_directory_is_swapped() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel-swap");
    let rt = rt();
    rt.block_on(async {
        op.write("t/old", "x").await.unwrap();
        let mut writer = op.writer("t/x").await.unwrap();
        writer.write_all(b"the new table's file").await.unwrap();
        std::fs::rename(dir.path().join("t"), dir.path().join("t.old")).unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        writer.close().await.unwrap();
        assert_eq!(op.read("t/x").await.unwrap(), &b"the new table's file"[..]);
        // The old directory has its own file and nothing else (no leftover).
        let old: Vec<_> = std::fs::read_dir(dir.path().join("t.old"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(old, ["old"]);
    });
}

/// A rename across a mount inside the root (a volume mounted below it): a copy,
/// put in place as every write is, and the source removed, as `mv` does and as
/// memory and S3 rename, not a permanent "Invalid cross-device link".
#[test]
fn a_rename_across_a_mount_inside_the_root_moves_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let hot = dir.path().join("hot");
    std::fs::create_dir(&hot).unwrap();
    let Some(_unmount) = mount_on(&hot, &["-t", "tmpfs", "-o", "size=4m", "tmpfs"]) else {
        return;
    };
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel-xdev");
    let op = op.blocking();
    op.write("a", "moved across").unwrap();
    op.rename("a", "hot/x/a").unwrap();
    assert_eq!(op.read("hot/x/a").unwrap(), "moved across");
    assert!(!op.exists("a").unwrap());
    // `if_not_exists` holds across the mount too.
    op.write("b", "second").unwrap();
    let renamed = op
        .async_operator()
        .rename_with("b", "hot/x/a")
        .if_not_exists(true);
    let err =
        futures::executor::block_on(std::future::IntoFuture::into_future(renamed)).unwrap_err();
    assert_eq!(err.kind(), storage::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(op.read("b").unwrap(), "second");
}

/// In a case-insensitive directory (ext4 casefold), a rename that only changes a
/// name's case renames it: `a` and `A` are one entry there, and the file, which
/// has that one name, is kept, where it was taken for two names of one file and
/// its only name removed.
#[test]
fn a_rename_that_changes_only_case_in_a_case_insensitive_directory_keeps_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let Some(image) = ext4_image(dir.path(), &["-O", "casefold"]) else {
        eprintln!("SKIPPED: mkfs.ext4 cannot make a casefold filesystem here");
        return;
    };
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).unwrap();
    // Not `mount_on`: a kernel without Unicode case folding (CONFIG_UNICODE) will
    // not mount this filesystem, even where mounting is allowed.
    let Some(_unmount) = try_mount(&mount, &["-o", "loop", image.to_str().unwrap()]) else {
        eprintln!("SKIPPED: a casefold ext4 image cannot be mounted here");
        return;
    };
    std::fs::create_dir(mount.join("ci")).unwrap();
    if !chattr(&mount.join("ci"), "+F") {
        // A kernel without Unicode case folding.
        eprintln!("SKIPPED: this kernel cannot make a directory case-insensitive");
        return;
    }
    let (op, _executor) = common_fs::operator(&mount, "casefold");
    rt().block_on(async {
        op.write("ci/a", "only copy").await.unwrap();
        op.rename("ci/a", "ci/A").await.unwrap();
        assert_eq!(op.read("ci/A").await.unwrap(), "only copy");
        let names: Vec<String> = op
            .list("ci/")
            .await
            .unwrap()
            .iter()
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(names, ["ci/A"], "renamed, not removed");
        // Not only ASCII folds: `é` to `É`, a file with a second link elsewhere
        // (two links, yet one entry here).
        op.write("ci/é", "accented").await.unwrap();
        std::fs::hard_link(mount.join("ci/é"), mount.join("elsewhere")).unwrap();
        op.rename("ci/é", "ci/É").await.unwrap();
        assert_eq!(op.read("ci/É").await.unwrap(), "accented");
        // A symlink renamed to another spelling of its own name: it was taken
        // for a link onto another entry, its target's content copied over it,
        // and then that copy removed by the source's name (both names gone).
        op.write("ci/data", "the data").await.unwrap();
        std::os::unix::fs::symlink("data", mount.join("ci/L")).unwrap();
        op.rename("ci/L", "ci/l").await.unwrap();
        assert_eq!(op.read("ci/l").await.unwrap(), "the data");
        assert_eq!(op.read("ci/data").await.unwrap(), "the data");
        let mut names: Vec<String> = std::fs::read_dir(mount.join("ci"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["A", "data", "l", "É"], "one entry each");
    });
}

/// Two hard links whose names differ only in case, in a directory that does not
/// fold case (two entries): a rename of one onto the other leaves one name, as
/// the docs say of hard links, where rename(2) leaves both (it was taken for one
/// entry spelled two ways).
#[test]
fn a_rename_onto_a_hard_link_differing_in_case_leaves_one_name() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        op.write("a", "both").await.unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("A")).unwrap();
        op.rename("a", "A").await.unwrap();
        assert!(!dir.path().join("a").exists(), "the source's name goes");
        assert_eq!(op.read("A").await.unwrap(), "both");
    });
}

/// A writer under way is not refused by an executor whose queue is full
/// (`max_queued_jobs`): its next chunk and its commit wait their turn, and the
/// file holds every byte. Refused, the chunk's job took the writer's temporary
/// file with it, and the write was lost behind a "temporary" `RateLimited`.
#[test]
fn a_writer_under_way_is_not_refused_by_a_full_queue() {
    // Not beside a test that uses up the process's descriptors.
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, executor) = common_fs::operator_with_a_queue_of_one(dir.path(), "writer-full");
    rt().block_on(async {
        let mut writer = op.writer("w").await.unwrap();
        writer.write_all(b"first, ").await.unwrap();
        writer.flush().await.unwrap();
        let full = common_fs::FullQueue::fill(&executor);
        writer.write_bytes("then the rest").await.unwrap();
        let mut close = Box::pin(writer.close());
        let first = futures::FutureExt::now_or_never(close.as_mut());
        assert!(first.is_none(), "the commit waits its turn");
        full.release();
        let meta = close.await.expect("the write behind a full queue");
        assert_eq!(meta.content_length(), 20);
    });
    assert_eq!(
        std::fs::read(dir.path().join("w")).unwrap(),
        b"first, then the rest"
    );
    executor.shutdown();
    executor.blocking_join();
}

/// A reader or a listing under way is not refused by an executor whose queue is
/// full (`max_queued_jobs`): its next chunk or page waits its turn. Refused, it
/// failed with a "temporary" `RateLimited` that never cleared (errors are sticky),
/// even a reader whose own read-ahead filled the queue.
#[test]
fn a_reader_or_listing_under_way_is_not_refused_by_a_full_queue() {
    use futures::AsyncReadExt;
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..4_u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big"), &data).unwrap();
    // Three pages of a listing: the third is asked for after the queue is full.
    for i in 0..2500 {
        std::fs::write(dir.path().join(format!("f{i:04}")), b"x").unwrap();
    }
    let (op, executor) = common_fs::operator_with_a_queue_of_one(dir.path(), "reader-full");
    rt().block_on(async {
        // Its own read-ahead (8 chunks) is more than the queue takes.
        let mut reader = op.reader_with("big").chunk_size(256 << 10).await.unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "the whole file");

        // New operations are refused while the queue holds a job (the part of
        // the last reader's release, say): opened once it holds none.
        let idle = || common_fs::wait_until_none_queued(&executor);
        idle();
        let mut reader = op
            .reader_with("big")
            .chunk_size(1 << 20)
            .prefetch(1)
            .await
            .unwrap();
        let mut first = vec![0_u8; 1 << 20];
        reader.read_exact(&mut first).await.unwrap();
        idle();
        let mut lister = op.lister("").await.unwrap();
        let mut listed = Vec::new();
        while listed.len() < 1000 {
            listed.push(lister.next_entry().await.unwrap().unwrap());
        }
        let full = common_fs::FullQueue::fill(&executor);
        let rest = async {
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).await.map(|_| rest)
        };
        let entries = async {
            while let Some(entry) = lister.next_entry().await? {
                listed.push(entry);
            }
            Ok::<usize, storage::Error>(listed.len())
        };
        let mut both = Box::pin(futures::future::join(rest, entries));
        assert!(
            futures::FutureExt::now_or_never(both.as_mut()).is_none(),
            "they wait their turn"
        );
        full.release();
        let (rest, entries) = both.await;
        assert!(rest.expect("the rest behind a full queue") == data[1 << 20..]);
        assert_eq!(entries.expect("the listing behind a full queue"), 2501);

        // Opened on this thread (the file is kept open, `read_now`), nothing read
        // here: its first read is the operation's first job, the three read ahead
        // of it (8 at most, 4 chunks in all) continue it.
        idle();
        let mut reader = op.reader_with("big").chunk_size(1 << 20).await.unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "the whole file");
        // The same behind a full queue: its first read is refused, nothing is
        // queued behind it, and the reader says so.
        drop(reader);
        let full = common_fs::FullQueue::fill(&executor);
        let mut reader = op.reader_with("big").chunk_size(1 << 20).await.unwrap();
        assert_eq!(
            executor.metrics().queued,
            1,
            "only the full queue's own job"
        );
        let err = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert!(err.to_string().contains("rate limited"), "{err:?}");
        // Its failure queued nothing either (read-ahead submitted and cancelled
        // stays counted in the queue until a thread takes it off).
        assert_eq!(
            executor.metrics().queued,
            1,
            "only the full queue's own job, after the refusal"
        );
        full.release();
    });
    executor.shutdown();
    executor.blocking_join();
}

/// A job on the operator's executor that is running when the executor is shut
/// down finishes its IO: its read, the write that follows, a read served on its
/// own thread and an inline (memory) operation are its own work, not new work from
/// outside, and are not refused halfway. An operation from outside the executor's
/// jobs is refused after the shutdown.
#[test]
fn a_job_running_at_a_shutdown_finishes_its_io() {
    // Not beside a test that uses up the process's descriptors.
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..200_000_u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("in"), &data).unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "sd-job-io");
    let memory =
        Operator::new(storage::services::Memory::default()).with_executor(executor.clone());
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let job = {
        let (op, executor) = (op.clone(), executor.clone());
        executor.clone().spawn(async move {
            let _ = wait.await;
            let whole = op.read("in").await?;
            op.write("out", whole.clone()).await?;
            // The file is kept open by now: a small read of pages in memory is
            // served on this thread, as before the shutdown (no job). A read whose
            // pages were reclaimed meanwhile is a job (of this job's, accepted
            // too), and brings them back for the next try.
            let mut inline = false;
            let mut head = bytes::Bytes::new();
            for _ in 0..5 {
                let jobs = executor.metrics().spawned;
                head = op.read_range("in", 0..100).await?;
                inline = executor.metrics().spawned == jobs;
                if inline {
                    break;
                }
            }
            assert!(
                inline,
                "a read of pages in memory served on the job's thread"
            );
            memory.write("m", head.clone()).await?;
            let back = memory.read("m").await?;
            Ok::<_, storage::Error>((whole, back))
        })
    };
    executor.shutdown();
    go.send(()).unwrap();
    let (whole, back) = rt().block_on(job).unwrap().unwrap();
    assert_eq!(whole, data);
    assert_eq!(back, data[..100]);
    assert_eq!(std::fs::read(dir.path().join("out")).unwrap(), data);
    executor.blocking_join();
    let err = rt().block_on(op.read_range("in", 0..100)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
}

/// `remove_all` beside writes into the tree it removes never fails because a
/// write made a file in a directory after it was cleared, or made the directory
/// again (`rmdir`'s `ENOTEMPTY`): what was there when it began is removed, and
/// what writes put there meanwhile is removed too or left to them, as writes
/// made after an object store's keys were listed keep theirs.
#[test]
fn remove_all_beside_writes_into_its_tree_does_not_fail() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    rt().block_on(async {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (op, stop) = (op.clone(), std::sync::Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut i = 0_u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // A directory removed under a write is made again.
                        op.write(&format!("t/d{}/f{w}-{i}", i % 4), "x")
                            .await
                            .unwrap();
                        i += 1;
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for round in 0..300 {
            op.write("t/d0/seed", "s").await.unwrap();
            if let Err(e) = op.remove_all("t/").await {
                panic!("round {round}: {e}");
            }
            assert!(!op.exists("t/d0/seed").await.unwrap(), "round {round}");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
    });
}

/// An abort after the executor shut down is refused (`ShutDown`), and the
/// writer's temporary file goes as the writer's backend is dropped: nothing is
/// left behind, so a later `abort` has nothing to say (it does not claim a
/// clean-up failed).
#[test]
fn an_abort_refused_by_a_shutdown_leaves_nothing_and_says_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let (op, executor) = common_fs::operator(dir.path(), "fs-rel-shut");
    let mut writer = rt().block_on(async {
        let mut writer = op.writer("f").await.unwrap();
        writer.write_bytes(vec![7_u8; 1 << 20]).await.unwrap();
        writer.ready().await.unwrap();
        writer
    });
    executor.shutdown();
    executor.blocking_join();
    rt().block_on(async {
        let err = writer.abort().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ShutDown, "{err:?}");
        writer.abort().await.unwrap();
        let err = writer.close().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Cancelled, "{err:?}");
        assert_eq!(err.context(storage::raw::ABORT_FAILED), None, "{err:?}");
    });
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A recursive listing of a directory swapped for another while it is listed
/// (`mv t t.old; mkdir t`: a table rewritten beside its readers) walks the
/// directory it began with: never the files of one beside the subdirectories of
/// the other. (It opened each subdirectory by its path from the root, which by
/// then named the new tree's.)
#[test]
fn a_listing_of_a_directory_swapped_midway_walks_the_one_it_began() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    // 2,000 subdirectories of one file each: 4,000 entries, four pages; at most
    // the first two are read before the swap.
    for d in 0..2000 {
        std::fs::create_dir_all(dir.path().join(format!("t/s{d}"))).unwrap();
        std::fs::write(dir.path().join(format!("t/s{d}/old")), "o").unwrap();
    }
    let rt = rt();
    rt.block_on(async {
        let mut lister = op.lister_with("t/").recursive(true).await.unwrap();
        let mut listed = Vec::new();
        while let Some(entry) = lister.next_entry().await.unwrap() {
            listed.push(entry.path().to_owned());
            if listed.len() == 10 {
                std::fs::rename(dir.path().join("t"), dir.path().join("t.old")).unwrap();
                for d in 0..2000 {
                    std::fs::create_dir_all(dir.path().join(format!("t/s{d}"))).unwrap();
                    std::fs::write(dir.path().join(format!("t/s{d}/new")), "n").unwrap();
                }
            }
        }
        let new: Vec<&String> = listed.iter().filter(|p| p.ends_with("/new")).collect();
        assert!(
            new.is_empty(),
            "{} files of the new tree listed: {:?}",
            new.len(),
            &new[..new.len().min(3)]
        );
        assert_eq!(listed.iter().filter(|p| p.ends_with("/old")).count(), 2000);
    });
}

/// A rename that copies (here of a symlink, renamed as the file it leads to: its
/// content copied, then the link removed) does not delete a write made to the
/// source while it copied: that rename fails with `PreconditionFailed` and both
/// names stay, as on S3. The write's content is never lost.
#[test]
fn a_rename_that_copies_keeps_a_write_made_to_the_source_meanwhile() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    std::fs::write(dir.path().join("big"), vec![7_u8; 256 << 20]).unwrap();
    rt().block_on(async {
        for i in 0..3 {
            let (link, target) = (format!("l{i}"), format!("t{i}"));
            std::os::unix::fs::symlink("big", dir.path().join(&link)).unwrap();
            let rename = op.rename(&link, &target);
            // The copy under way: its temporary file is there (or the rename is
            // over already, and the write comes after it).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while std::fs::read_dir(dir.path()).unwrap().count() < 3
                && std::fs::symlink_metadata(dir.path().join(&link)).is_ok()
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the rename never started"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            op.write(&link, "v2").await.unwrap();
            match rename.await {
                Ok(()) => {}
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
                    assert_eq!(e.path(), link, "{e}");
                }
            }
            let kept = [&link, &target]
                .into_iter()
                .any(|p| std::fs::read(dir.path().join(p)).is_ok_and(|b| b == b"v2"));
            assert!(kept, "attempt {i}: the write to {link} was deleted");
            for p in [&link, &target] {
                let _ = std::fs::remove_file(dir.path().join(p));
            }
        }
    });
}

/// Once a reader's read has failed (here the file shrank under it), every later
/// read returns that error, an empty one too: it said `Ok(0)`, as at the end.
#[test]
fn a_failed_reader_fails_an_empty_read_too() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-rel");
    let path = dir.path().join("f");
    std::fs::write(&path, vec![1_u8; 3 << 20]).unwrap();
    rt().block_on(async {
        let mut reader = op
            .reader_with("f")
            .chunk_size(1 << 20)
            .prefetch(0)
            .await
            .unwrap();
        let mut buf = vec![0_u8; 1 << 20];
        reader.read_exact(&mut buf).await.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let mut rest = Vec::new();
        let err = reader.read_to_end(&mut rest).await.unwrap_err();
        assert!(err.to_string().contains("shrank"), "{err}");
        let again = reader.read(&mut []).await;
        assert!(again.is_err(), "an empty read after the failure: {again:?}");
        assert!(reader.read(&mut buf).await.is_err());
        // The same through `futures`' `AsyncRead`.
        let again = futures::AsyncReadExt::read(&mut reader, &mut []).await;
        assert!(again.is_err(), "an empty read after the failure: {again:?}");
    });
}
