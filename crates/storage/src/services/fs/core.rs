//! Root-confined filesystem calls shared by the fs backend's jobs.
//!
//! Every path is resolved by the kernel relative to the root's directory fd with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the root acts as `/` for the
//! lookup, so neither `..` nor a symlink (relative or absolute) can lead outside it,
//! even if the tree changes during the lookup. Operations on a final component
//! (unlink, mkdir, rename) use the `*at` calls on a parent directory opened that way.

use std::ffi::CStr;
use std::ops::Range;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::raw::{BufferPool, parent_dir};
use crate::{Error, ErrorKind, Metadata, Result};

/// Prefix of the temporary files atomic writes go through; listings hide them.
pub(super) const TEMP_PREFIX: &str = ".dio-tmp.";

/// Opens `path` (normalized, relative to the root) with `flags`, inside the root.
pub(super) fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> Result<OwnedFd> {
    let path = match path.trim_end_matches('/') {
        "" => ".",
        p => p,
    };
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            // The kernel asks for a retry when the tree changed during the lookup.
            Err(Errno::AGAIN | Errno::INTR) if attempts < 16 => attempts += 1,
            other => return other.map_err(Error::from),
        }
    }
}

/// Opens directory `dir` (normalized, `""` for the root) for `*at` calls and fsync.
pub(super) fn open_dir(root: &OwnedFd, dir: &str) -> Result<OwnedFd> {
    open_in_root(root, dir, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Opens directory `dir`, creating it and its parents first if needed.
pub(super) fn ensure_dir(root: &OwnedFd, dir: &str) -> Result<OwnedFd> {
    match open_dir(root, dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    let mut prefix = String::new();
    for component in dir.split('/').filter(|c| !c.is_empty()) {
        let parent = open_dir(root, &prefix)?;
        match rustix::fs::mkdirat(&parent, component, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        prefix.push_str(component);
        prefix.push('/');
    }
    open_dir(root, dir)
}

/// The last component of a normalized path, without a trailing `/`.
pub(super) fn file_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

pub(super) fn is_dir(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::Directory
}

pub(super) fn metadata(stat: &Stat) -> Metadata {
    let base = if is_dir(stat) {
        Metadata::dir()
    } else {
        Metadata::file(stat.st_size as u64)
    };
    let modified = if stat.st_mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::new(stat.st_mtime as u64, stat.st_mtime_nsec as u32)
    } else {
        SystemTime::UNIX_EPOCH
    };
    base.with_last_modified(modified)
}

/// Reads exactly `range` of `fd` into a pooled buffer, with positional reads: no
/// seek, no shared file offset, so any number of these can run on one fd at once.
pub(super) fn read_exact_at(
    fd: &OwnedFd,
    range: Range<u64>,
    pool: &Arc<BufferPool>,
) -> Result<Bytes> {
    let len = (range.end - range.start) as usize;
    if len == 0 {
        return Ok(Bytes::new());
    }
    let mut buf = pool.take(len);
    let space = &mut buf.space()[..len];
    let mut done = 0;
    while done < len {
        match rustix::io::pread(fd, &mut space[done..], range.start + done as u64) {
            Ok(0) => {
                return Err(Error::new(ErrorKind::Unexpected)
                    .with_message("the file shrank while it was read")
                    .with_context("range", format!("{}..{}", range.start, range.end)));
            }
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    buf.set_filled(len);
    Ok(buf.freeze())
}

pub(super) fn write_all(fd: &OwnedFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(Error::new(ErrorKind::Unexpected).with_message("write returned 0")),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A temporary file beside its target. Dropped without [`commit`](Self::commit), it
/// removes itself: the target is never touched.
#[derive(Debug)]
pub(super) struct TempFile {
    dir: OwnedFd,
    name: String,
    target: String,
    pub(super) fd: OwnedFd,
    committed: bool,
}

impl TempFile {
    /// Creates a temporary file for target `path`, creating parent directories.
    pub(super) fn create(root: &OwnedFd, path: &str) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = ensure_dir(root, parent_dir(path))?;
        let target = file_name(path).to_owned();
        // Refuse early, before any data is written, if the target is a directory.
        if let Ok(stat) = rustix::fs::statat(&dir, target.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            if is_dir(&stat) {
                return Err(Error::new(ErrorKind::IsADirectory));
            }
        }
        let name = format!(
            "{TEMP_PREFIX}{}.{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, name.as_str(), flags, Mode::from_raw_mode(0o644))?;
        Ok(Self {
            dir,
            name,
            target,
            fd,
            committed: false,
        })
    }

    /// Moves the temporary file over the target, atomically; with `sync`, the data
    /// and the directory entry are on disk when this returns.
    pub(super) fn commit(mut self, sync: bool) -> Result<Metadata> {
        if sync {
            rustix::fs::fsync(&self.fd)?;
        }
        let stat = rustix::fs::fstat(&self.fd)?;
        rustix::fs::renameat(
            &self.dir,
            self.name.as_str(),
            &self.dir,
            self.target.as_str(),
        )?;
        self.committed = true;
        if sync {
            rustix::fs::fsync(&self.dir)?;
        }
        Ok(metadata(&stat))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Removes `name` in directory `parent`: a file, or a directory and everything in
/// it. Symlinks are removed, never followed.
pub(super) fn remove_tree(parent: &impl AsFd, name: &CStr) -> Result<()> {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR | Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let dir = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    clear_dir(&dir)?;
    match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes everything inside the directory `dir`.
pub(super) fn clear_dir(dir: &OwnedFd) -> Result<()> {
    let mut names = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    for name in names {
        remove_tree(dir, &name)?;
    }
    Ok(())
}
