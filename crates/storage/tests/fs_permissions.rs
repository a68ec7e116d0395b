//! fs writes replace a file with a new one renamed into place: the file's
//! permissions must survive that, as they do when std rewrites a file in place.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::io::AsyncWriteExt;

mod common_fs;
use common_fs::rt;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The one temporary file beside `target` in `dir` (a write in progress).
fn temp_file(dir: &Path, target: &Path) -> std::path::PathBuf {
    let temp: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p != target)
        .collect();
    assert_eq!(temp.len(), 1, "{temp:?}");
    temp.into_iter().next().unwrap()
}

#[test]
fn a_write_that_replaces_a_file_keeps_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    for (name, before) in [("private", 0o600), ("script", 0o755), ("odd", 0o640)] {
        let path = dir.path().join(name);
        std::fs::write(&path, b"old").unwrap();
        set_mode(&path, before);
        rt().block_on(op.write(name, &b"new"[..])).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), before, "{name} after write");
    }
}

#[test]
fn a_writer_that_replaces_a_file_keeps_its_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    let path = dir.path().join("secret");
    std::fs::write(&path, b"old").unwrap();
    set_mode(&path, 0o600);
    rt().block_on(async {
        let mut writer = op.writer("secret").await.unwrap();
        writer.write_all(b"new and longer").await.unwrap();
        writer.shutdown().await.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"new and longer");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_new_file_gets_the_permissions_file_create_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    // A umask that lets the group write, so that `0666` less the umask (`0664`)
    // differs from a fixed `0644`. (No other test of this binary creates a file
    // whose mode it does not set itself.)
    let umask = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o002));
    // What std gives a new file under this umask.
    let by_std = dir.path().join("by-std");
    std::fs::File::create(&by_std).unwrap();
    assert_eq!(mode(&by_std), 0o664);
    rt().block_on(op.write("ours", &b"x"[..])).unwrap();
    rt().block_on(async {
        op.write_with("ours-new-only", &b"x"[..])
            .if_not_exists(true)
            .await
    })
    .unwrap();
    rustix::process::umask(umask);
    for name in ["ours", "ours-new-only"] {
        assert_eq!(mode(&dir.path().join(name)), 0o664, "{name}");
    }
}

#[test]
fn a_copy_gets_its_sources_permissions_and_special_bits_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    std::fs::write(dir.path().join("src"), b"data").unwrap();
    set_mode(&dir.path().join("src"), 0o700);
    // Onto an existing file of other permissions, as `std::fs::copy` does.
    std::fs::write(dir.path().join("dst"), b"other").unwrap();
    set_mode(&dir.path().join("dst"), 0o644);
    rt().block_on(op.copy("src", "dst")).unwrap();
    assert_eq!(std::fs::read(dir.path().join("dst")).unwrap(), b"data");
    assert_eq!(mode(&dir.path().join("dst")), 0o700);
    // A set-user-ID file rewritten loses the bit, as the kernel drops it when a
    // file is written; its permission bits stay.
    let setuid = dir.path().join("setuid");
    std::fs::write(&setuid, b"old").unwrap();
    set_mode(&setuid, 0o4755);
    assert_eq!(mode(&setuid), 0o4755);
    rt().block_on(op.write("setuid", &b"new"[..])).unwrap();
    assert_eq!(mode(&setuid), 0o755);
}

#[test]
fn a_failed_write_leaves_the_file_and_its_permissions_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    let path = dir.path().join("kept");
    std::fs::write(&path, b"old").unwrap();
    set_mode(&path, 0o600);
    let err = rt()
        .block_on(async { op.write_with("kept", &b"new"[..]).if_not_exists(true).await })
        .unwrap_err();
    assert_eq!(err.kind(), storage::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(mode(&path), 0o600);
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("kept")]);
}

#[test]
fn a_chmod_while_a_writer_runs_is_kept_and_the_temporary_file_is_its_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    let path = dir.path().join("log");
    std::fs::write(&path, b"old").unwrap();
    set_mode(&path, 0o200);
    rt().block_on(async {
        let mut writer = op.writer("log").await.unwrap();
        writer.write_all(b"new").await.unwrap();
        writer.flush().await.unwrap();
        // While it is written, the temporary file is readable and writable by its
        // owner (a sweep must open a crashed writer's leftover), by no one else
        // beyond what the target allows.
        assert_eq!(mode(&temp_file(dir.path(), &path)), 0o600);
        // Someone narrows the target meanwhile: the commit keeps that.
        set_mode(&path, 0o400);
        writer.shutdown().await.unwrap();
    });
    assert_eq!(mode(&path), 0o400);
    set_mode(&path, 0o600);
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
}

/// A file replaced keeps its group, as it keeps its mode: a `0640` file of group
/// `secret` rewritten by a process whose group is another stays readable by
/// `secret` only. (Giving a file a group takes root or a member of it: run as
/// root, the test uses a group no one is in; else it is skipped.)
#[test]
fn a_write_that_replaces_a_file_keeps_its_group() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("a_write_that_replaces_a_file_keeps_its_group SKIPPED: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (op, _executor) = common_fs::operator(dir.path(), "fs-perm");
    let path = dir.path().join("shared");
    std::fs::write(&path, b"old").unwrap();
    let group = 4242;
    std::os::unix::fs::chown(&path, None, Some(group)).unwrap();
    set_mode(&path, 0o640);
    assert_ne!(rustix::process::getegid().as_raw(), group);
    rt().block_on(op.write("shared", &b"new"[..])).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"new");
    assert_eq!(meta.gid(), group, "the group of the file replaced");
    assert_eq!(mode(&path), 0o640);
    // Through a writer too; while it writes, its temporary file has the target's
    // group and bits already (it is created with no group bits, given the group,
    // then the bits: never the target's bits for the writer's group, and never
    // in place without the group's).
    rt().block_on(async {
        let mut writer = op.writer("shared").await.unwrap();
        writer.write_all(b"newer").await.unwrap();
        writer.flush().await.unwrap();
        let temp = temp_file(dir.path(), &path);
        assert_eq!(std::fs::metadata(&temp).unwrap().gid(), group);
        assert_eq!(mode(&temp), 0o640);
        writer.shutdown().await.unwrap();
    });
    assert_eq!(std::fs::metadata(&path).unwrap().gid(), group);
    assert_eq!(mode(&path), 0o640);
}
