//! [`Fs`]: the local filesystem, confined to a root directory.

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::{AtFlags, OFlags};
use rustix::io::Errno;

use super::core::{
    BULK_READ_MIN, CLEARED_AGAIN_MAX, REMADE_MAX, SPLIT_READ_MIN, TempFile, clear_dir, ensure_dir,
    file_name, fill_at, is_cached_copy, is_dir, is_link_to_dir, is_regular, is_temp_name, metadata,
    not_reserved, not_reserved_path, open_dir, open_in_root, read_cached_at, read_exact_at,
    read_exact_at_by_two, remove_stale_temp_files_in, remove_tree, rename_no_replace, same_dir,
    same_inode, write_all,
};
use super::fd_cache::{CachedFile, FdCache, is_local};
use super::lister::{FsLister, dangling};
use super::object::FsObject;
use super::writer::FsWriter;
use crate::raw::{
    Access, BufferPool, IoJob, ListArgs, OpenArgs, Opened, RawList, RawWrite, ReadArgs, parent_dir,
};
use crate::{Error, ErrorKind, Metadata, Result, WriteOptions};

/// The local filesystem under a root directory (Linux 5.6 or later).
///
/// # Paths and symlinks
///
/// Every path is resolved by the kernel with the root acting as `/`
/// (`openat2(RESOLVE_IN_ROOT)`): `/etc/passwd` is `<root>/etc/passwd`, and a symlink
/// inside the root is followed as if the root were the whole filesystem, so
/// `link -> /etc` leads to `<root>/etc` and `link -> ../../x` to `<root>/x`. Nothing
/// outside the root is ever created, read or deleted. A `..` in a path that would
/// climb above the root is refused with [`ErrorKind::InvalidInput`] before any IO.
/// Deletions remove symlinks themselves, never what they point to.
///
/// # IO
///
/// Every operation is one blocking job: open, check, and read or write, in a single
/// hand-off to the executor's blocking lane. Reads are positional (`pread`) into
/// pooled buffers that are never zero-filled per read. Writes go to a temporary file
/// in the target's directory (`.dio-tmp.` and 32 random hex digits, hidden from
/// listings) that is renamed over the target on commit; with [`Fs::with_sync`] the
/// file and the directory are fsynced first. A write, copy, rename or `create_dir`
/// whose target has a component of that form is
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput).
///
/// # Permissions
///
/// A write that replaces a file keeps that file's permission bits (`0777`), so a
/// `0600` file stays private and an executable stays executable; a new file gets
/// `0666` less the process's umask, as `File::create` gives; a copy gets its
/// source's bits, as `std::fs::copy` gives. Set-user-ID, set-group-ID and sticky
/// bits are not carried over. The replaced file's owner is not either: the new file
/// belongs to the writing process, as with any write that renames a new file into
/// place. A symlink at the path is replaced by the new file (the file it pointed to
/// is left as it was), which gets a new file's permissions; a symlink to a
/// directory is that directory ([`ErrorKind::IsADirectory`](crate::ErrorKind)), as
/// it is to `stat` and `read`.
///
/// # Leftovers of crashed processes
///
/// A process killed in the middle of a write leaves its temporary file behind
/// (never a torn target). Each temporary file is `flock`ed by its writer while it
/// is open, and the kernel drops the lock when the process dies, so a leftover is
/// told from a live write without trusting PIDs. Deleting a directory removes the
/// leftovers in it first; [`Fs::remove_stale_temp_files`] sweeps a whole tree.
///
/// # ETags
///
/// A file's ETag is derived from its inode, modification time and size (as
/// object_store's `LocalFileSystem` does): every write renames a new inode into
/// place, so any write changes it. Before Linux 6.13 the kernel stamps files with
/// a clock that moves once per tick (1-4 ms): two writes of one size within a
/// tick, the second given the inode number the first freed, can share an ETag.
#[derive(Clone)]
pub struct Fs {
    root: Arc<OwnedFd>,
    root_path: PathBuf,
    pool: Arc<BufferPool>,
    sync: bool,
    files: Arc<FdCache>,
    /// Reads submitted to the executor and not finished yet.
    reads_in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

/// Counts a read in flight for as long as it lives (its job runs, or is dropped
/// unrun).
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Files kept open by default (see [`Fs::with_open_files`]).
const OPEN_FILES: usize = 256;
/// The largest read tried from the caller's thread ([`Access::try_read_now`]).
const READ_NOW_MAX: u64 = 256 << 10;

impl Fs {
    /// The filesystem under `root`, created if missing. Opening the root happens here,
    /// on the calling thread.
    ///
    /// # Errors
    ///
    /// `root` cannot be created or opened as a directory.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root_path = root.as_ref().to_path_buf();
        let context = |e: Error| e.with_path(root_path.display().to_string());
        std::fs::create_dir_all(&root_path).map_err(|e| context(Error::from_io(e)))?;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&root_path, flags, rustix::fs::Mode::empty())
            .map_err(|e| context(Error::from(e)))?;
        Ok(Self {
            root: Arc::new(fd),
            root_path,
            pool: BufferPool::global(),
            sync: false,
            files: Arc::new(FdCache::new(OPEN_FILES)),
            reads_in_flight: Arc::default(),
        })
    }

    /// Keeps up to `files` files open between reads (256 by default; 0 turns it
    /// off), so reading a file again costs a lookup of its path and a `pread`, not
    /// an open, `fstat`, `pread` and `close` of the file. Our own writes, renames and
    /// deletes drop their paths; before each read the lookup must still find the
    /// kept file, so a file replaced, deleted or renamed away by anyone else (or
    /// whose directory was) is opened again (see `docs/storage.md`).
    pub fn with_open_files(mut self, files: usize) -> Self {
        self.files = Arc::new(FdCache::new(files));
        self
    }

    /// With `true`, every commit (write, writer close, copy) fsyncs the file and its
    /// directory, and a rename both directories, before it reports success: only
    /// then does a write survive a power cut or a kernel crash as old or new for
    /// certain. Off by default: a write then survives its process's crash. Parent directories a write creates are not fsynced themselves: after
    /// a crash, a file committed into a new directory is only certain to be there
    /// once that directory's parent has been synced too.
    pub fn with_sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// Reads into buffers from `pool` instead of the process-wide one.
    pub fn with_buffer_pool(mut self, pool: Arc<BufferPool>) -> Self {
        self.pool = pool;
        self
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// Removes, below directory `dir` (normalized, `""` for the root), every
    /// temporary file whose writer is gone (a process that crashed or was killed
    /// mid-write); writes in progress are left alone. Returns how many were removed.
    /// Directories whose names are not UTF-8 are not entered (see docs/storage.md).
    /// Blocking: run it on the executor's blocking lane, e.g.
    /// `op.executor().spawn_blocking(move || fs.remove_stale_temp_files(""))`.
    ///
    /// # Errors
    ///
    /// `dir` cannot be opened or read.
    pub fn remove_stale_temp_files(&self, dir: &str) -> Result<u64> {
        let mut removed = 0;
        let mut pending = vec![crate::raw::normalize_dir_path(dir)?];
        while let Some(dir) = pending.pop() {
            let fd = match self.files.relieved(|| open_dir(&self.root, &dir)) {
                Ok(fd) => fd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e.with_path(dir)),
            };
            removed += remove_stale_temp_files_in(&fd).map_err(|e| e.with_path(dir.clone()))?;
            let mut reader = rustix::fs::Dir::read_from(&fd)?;
            while let Some(entry) = reader.read() {
                let entry = entry?;
                let name = entry.file_name();
                if name == c"." || name == c".." {
                    continue;
                }
                // Asked where the listing does not say (NFS, XFS without `ftype`),
                // as the lister asks, or the sweep would end at the first level.
                let file_type = super::lister::known_type(entry.file_type(), || {
                    rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|stat| stat.st_mode)
                        .map_err(Error::from)
                });
                // Not entered if it cannot be asked (removed since the directory
                // was read, or not searchable), as one it cannot open.
                let is_dir = file_type.is_ok_and(|t| t == rustix::fs::FileType::Directory);
                if is_dir && let Ok(name) = name.to_str() {
                    pending.push(format!("{dir}{name}/"));
                }
            }
        }
        Ok(removed)
    }

    fn job<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Fs) -> Result<T> + Send + 'static,
    ) -> IoJob<T> {
        self.job_on(false, f)
    }

    /// [`job`](Self::job), a bulk one if `bulk` ([`IoJob::Bulk`]).
    fn job_on<T: Send + 'static>(
        &self,
        bulk: bool,
        f: impl FnOnce(&Fs) -> Result<T> + Send + 'static,
    ) -> IoJob<T> {
        let fs = self.clone();
        let run = move || f(&fs);
        if bulk {
            IoJob::bulk(run)
        } else {
            IoJob::blocking(run)
        }
    }

    /// Copies file `from` over `to` as a write replaces it (a temporary file
    /// renamed into place; with `if_not_exists`, only if `to` is not there), with
    /// the source's permissions, as `std::fs::copy` gives them. Returns what was
    /// copied: the file `from` led to when it was opened.
    fn copy_file(&self, from: &str, to: &str, if_not_exists: bool) -> Result<rustix::fs::Stat> {
        let (src, stat) = self
            .files
            .relieved(|| open_file(&self.root, from))
            .map_err(|e| e.with_path(from.to_owned()))?;
        let temp = self
            .files
            .relieved(|| TempFile::create(&self.root, &self.files, to, Some(stat.st_mode)))
            .map_err(|e| e.with_path(to.to_owned()))?;
        // A temporary file that cannot be removed after a failed copy is said, as
        // a failed write says it.
        if let Err(e) = copy_contents(&src, &temp.fd, metadata(&stat).content_length(), from, to) {
            return Err(temp.discard_after(e));
        }
        let committed = temp.commit(self.sync, if_not_exists);
        self.files.forget(to);
        committed
            .map(|_| stat)
            .map_err(|e| e.with_path(to.to_owned()))
    }

    /// The end of a rename whose content is at `to` already (copied, or `to` a
    /// name of the same file): the source's name goes, then as
    /// [`renamed`](Self::renamed). `done` says what was done, for the error of a
    /// source that cannot be removed.
    ///
    /// Only if the source's name is still what the rename found (`source`: the
    /// same entry, leading to the file whose content is at `to`): a write to the
    /// source while it was copied (a new file under its name) is not deleted
    /// unseen. The rename then fails with `PreconditionFailed` and both names
    /// stay, as on S3, whose delete is conditional on the copy's ETag.
    fn moved(
        &self,
        (from, to): (&str, &str),
        (from_dir, to_dir): (&OwnedFd, &OwnedFd),
        source: &Source,
        done: &str,
    ) -> Result<()> {
        if !source.is_still(&self.root, from_dir, from)? {
            return Err(
                Error::new(ErrorKind::PreconditionFailed).with_message(format!(
                    "{to:?}: {done}, but the source was replaced meanwhile (written to): \
                 both are kept"
                )),
            );
        }
        match rustix::fs::unlinkat(from_dir, file_name(from), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => {
                return Err(Error::from(e).with_message(format!(
                    "{to:?}: {done}, but the source could not be removed"
                )));
            }
        }
        self.renamed(from, to, from_dir, to_dir)
    }

    /// The end of a rename: neither name's kept descriptor is used again, and
    /// with `sync` both directories are on disk.
    fn renamed(&self, from: &str, to: &str, from_dir: &OwnedFd, to_dir: &OwnedFd) -> Result<()> {
        self.files.forget(from);
        self.files.forget(to);
        if self.sync {
            rustix::fs::fsync(to_dir)?;
            rustix::fs::fsync(from_dir)?;
        }
        Ok(())
    }

    /// A [`job`](Self::job) run again once the kept files are closed if it ran out
    /// of descriptors (see [`FdCache::relieved`]): for operations that open
    /// directories and files of their own (stat, listing, delete, rename), which
    /// kept files must not make fail either. Each is one that may run again from
    /// the start: it failed before its change, or its change is done again as a
    /// no-op (a delete of what is gone).
    fn job_relieved<T: Send + 'static>(
        &self,
        f: impl Fn(&Fs) -> Result<T> + Send + 'static,
    ) -> IoJob<T> {
        let fs = self.clone();
        IoJob::blocking(move || fs.files.relieved(|| f(&fs)))
    }
}

/// A lookup of `path` that met a file where a directory should be (`f/x` or
/// `f/x/` where `f` is a file: `ENOTDIR`) found nothing: `NotFound`, as on memory
/// and S3. `NotADirectory` stays for `f/`, a directory path naming a file itself.
fn below_a_file_is_not_found<T>(root: &OwnedFd, path: &str, result: Result<T>) -> Result<T> {
    match result {
        Err(e) if e.kind() == ErrorKind::NotADirectory && !path.ends_with('/') => {
            Err(Error::new(ErrorKind::NotFound)
                .with_message("a part of the path is a file")
                .with_source(e))
        }
        // `f/x/` (below a file), not `f/` (the file itself), is not found; where
        // that cannot be looked at, the error says why.
        Err(e) if e.kind() == ErrorKind::NotADirectory => match is_file_here(root, path) {
            Ok(true) => Err(e),
            Ok(false) => Err(Error::new(ErrorKind::NotFound)
                .with_message("a part of the path is a file")
                .with_source(e)),
            Err(looked) => Err(looked),
        },
        other => other,
    }
}

/// Whether `path` itself (a trailing `/` aside) names something that is not a
/// directory, as opposed to a path below such a thing.
///
/// # Errors
///
/// Only where the process is out of descriptors (the answer is unknown; the
/// caller's open is relieved and made again): a lookup that fails otherwise
/// names nothing here.
fn is_file_here(root: &OwnedFd, path: &str) -> Result<bool> {
    match open_in_root(root, path.trim_end_matches('/'), OFlags::PATH)
        .and_then(|fd| Ok(rustix::fs::fstat(&fd)?))
    {
        Ok(stat) => Ok(!is_dir(&stat)),
        Err(e) if e.is_out_of_descriptors() => Err(e),
        Err(_) => Ok(false),
    }
}

/// Opens file `path` for reading, only if it is a regular file; returns it with its
/// `fstat`.
///
/// Anything else is refused with [`ErrorKind::Unsupported`] without waiting: a
/// FIFO's open waits for a writer and its reads for data, a terminal's or a
/// device's reads may never end, and a blocking thread waiting there would also
/// hold up the executor's shutdown. The open itself does not wait (`O_NONBLOCK`,
/// cleared again for a regular file's reads), but for a lease on a regular file.
fn open_file(root: &OwnedFd, path: &str) -> Result<(OwnedFd, rustix::fs::Stat)> {
    let flags = OFlags::RDONLY | OFlags::NOCTTY;
    let opened = match open_in_root(root, path, flags | OFlags::NONBLOCK) {
        // A lease another process holds on the file (a file server's, `F_SETLEASE`)
        // refuses a non-blocking open, where a blocking one waits for its holder to
        // give it up, as every reader's open does.
        Err(e) if e.is_errno(Errno::AGAIN) => open_leased(root, path, flags, e),
        // A socket (or a device with nothing behind it): nothing to open.
        Err(e) if e.is_errno(Errno::NXIO) => Err(Error::new(ErrorKind::Unsupported)
            .with_message("not a regular file but a socket: fs reads only regular files")
            .with_source(e)),
        opened => opened,
    };
    let fd = below_a_file_is_not_found(root, path, opened)?;
    let stat = rustix::fs::fstat(&fd)?;
    if is_dir(&stat) {
        return Err(Error::new(ErrorKind::IsADirectory));
    }
    not_special(&stat)?;
    rustix::fs::fcntl_setfl(&fd, rustix::fs::fcntl_getfl(&fd)? - OFlags::NONBLOCK)?;
    Ok((fd, stat))
}

/// [`open_file`]'s open of a file under a lease: the file, found without being
/// opened for reading (`O_PATH`, which neither breaks a lease nor waits), must be a
/// regular file, and then that same file is opened through `/proc/self/fd`, which
/// waits for the lease as every reader's open does. Without procfs, the refusal
/// (`refused`, temporary) stands.
fn open_leased(root: &OwnedFd, path: &str, flags: OFlags, refused: Error) -> Result<OwnedFd> {
    let found = open_in_root(root, path, OFlags::PATH)?;
    // A directory is opened, and refused, as by `open_file`'s own open.
    not_special(&rustix::fs::fstat(&found)?)?;
    let Some(proc) = super::fd_cache::proc_self_fd() else {
        return Err(refused);
    };
    let name = std::os::fd::AsRawFd::as_raw_fd(&found).to_string();
    Ok(rustix::fs::openat(
        proc,
        name.as_str(),
        flags | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// Refuses a file that is not a regular file (or a directory, refused apart).
fn not_special(stat: &rustix::fs::Stat) -> Result<()> {
    use rustix::fs::FileType;
    let what = match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile | FileType::Directory => return Ok(()),
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "special file",
    };
    Err(Error::new(ErrorKind::Unsupported).with_message(format!(
        "not a regular file but a {what}: fs reads only regular files"
    )))
}

impl Fs {
    /// `f` of the file kept for `path` and its `fstat`, on the caller's thread: only
    /// a file on a local filesystem whose path, looked up with what the kernel holds
    /// in memory, still finds it. The reference taken is let go through the cache,
    /// so the caller's thread never closes a file.
    fn with_kept_in_memory<T>(
        &self,
        path: &str,
        f: impl FnOnce(&Arc<CachedFile>, &rustix::fs::Stat) -> Option<T>,
    ) -> Option<T> {
        // None either when a look for files deleted meanwhile is due: made by a
        // job, where this read goes.
        let file = self.files.get_here(path)?;
        let done = if file.local {
            file.current(&self.root, path, true)
                .and_then(|stat| f(&file, &stat))
        } else {
            None
        };
        self.files.let_go(file);
        done
    }

    /// Whether a read of `args.range` of `path` is a bulk job: a bounded range
    /// within `args.max_len`, of a file kept open, that [`is_cached_copy`] finds a
    /// copy out of the page cache. Whole-file and suffix reads, whose size is not
    /// known here, are not bulk; nor is any read when the caller's thread may not
    /// look at the page cache ([`ReadArgs::may_look_here`], the operator's
    /// `read_now`).
    ///
    /// Only the lane is chosen here, with the file kept for the path without
    /// checking that the path still names it (the job does, as every read's): a
    /// file replaced since is probed in its old pages, and its read may take the
    /// wrong lane, never the wrong data. A read of [`SPLIT_READ_MIN`] or more that
    /// is the only read in flight is still shared with a second blocking thread
    /// (see `read`): one read on its own copies faster on two cores.
    fn is_bulk_copy(&self, path: &str, args: &ReadArgs) -> bool {
        if !args.may_look_here {
            return false;
        }
        let (Some(start), Some(end)) = (args.range.start(), args.range.end()) else {
            return false;
        };
        let len = end.saturating_sub(start);
        // Too small or too long, the file is not looked up (which would count as
        // a use in the cache).
        if len < BULK_READ_MIN || len > args.max_len {
            return false;
        }
        let Some(file) = self.files.get(path) else {
            return false;
        };
        let bulk = is_cached_copy(&file, &(start..end));
        self.files.let_go(file);
        bulk
    }

    /// Whether a read is on its way on the executor (then a caller's read is too).
    fn reads_in_flight(&self) -> bool {
        self.reads_in_flight
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    }

    /// File `path`, open for reading, with its metadata now: the kept one if it is
    /// still current, else opened (and kept).
    fn open_kept(&self, path: &str) -> Result<(Arc<CachedFile>, Metadata)> {
        self.files.sweep_if_due();
        if let Some(file) = self.files.get(path) {
            if let Some(stat) = file.current(&self.root, path, false) {
                return Ok((file, metadata(&stat)));
            }
            self.files.forget(path);
        }
        let forgets = self.files.forgets();
        let (fd, stat) = self.files.relieved(|| open_file(&self.root, path))?;
        // Only files on local filesystems are kept: the check that a kept file is
        // still its path's (`CachedFile::current`) looks the path up with `O_PATH`,
        // which an NFS client answers from its cache of names without asking the
        // server (a plain open revalidates: close-to-open), so a file another client
        // replaced would be served stale for as long as that cache lasts.
        let local = is_local(&fd);
        let file = Arc::new(CachedFile::new(fd, &stat, local));
        // A delete, rename or write of `path` that ended while this opened it may
        // have forgotten the path before it was kept here (each forgets after its
        // change): the file would be kept, deleted or replaced, holding its disk
        // space until a later read's sweep. If any path was forgotten meanwhile,
        // it is looked up again once kept, so that a change either is seen here
        // or forgets it after.
        if local
            && self.files.insert(path, Arc::clone(&file))
            && self.files.forgets() != forgets
            && file.replaced(&self.root, path)
        {
            self.files.forget_file(path, &file);
        }
        Ok((file, metadata(&stat)))
    }
}

/// fs cannot replace a file only if it is still a given version: the check and the
/// rename would be two steps.
fn if_match_unsupported() -> Error {
    Error::new(ErrorKind::Unsupported)
        .with_message("fs cannot replace a file atomically only if its ETag matches")
}

fn not_found_is_ok(result: Result<()>) -> Result<()> {
    match result {
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(()),
        other => other,
    }
}

/// Whether directory `dir` was removed since it was opened.
fn removed(dir: &OwnedFd) -> bool {
    rustix::fs::fstat(dir).is_ok_and(|stat| stat.st_nlink == 0)
}

/// What a rename that copies found at the source's name: the entry itself, and
/// the file it leads to (itself, but for a symlink) whose content went to the
/// target.
struct Source {
    entry: rustix::fs::Stat,
    content: rustix::fs::Stat,
}

impl Source {
    /// Whether `from` is still that entry leading to that file (or is gone: a
    /// removal meanwhile loses nothing).
    fn is_still(&self, root: &OwnedFd, from_dir: &OwnedFd, from: &str) -> Result<bool> {
        let entry = match rustix::fs::statat(from_dir, file_name(from), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(entry) => entry,
            Err(Errno::NOENT) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        if !same_inode(Ok(entry), Ok(self.entry)) {
            return Ok(false);
        }
        if rustix::fs::FileType::from_raw_mode(entry.st_mode) != rustix::fs::FileType::Symlink {
            return Ok(same_inode(Ok(entry), Ok(self.content)));
        }
        let now = open_in_root(root, from, OFlags::PATH).and_then(|fd| Ok(rustix::fs::fstat(&fd)?));
        Ok(now.is_ok_and(|now| same_inode(Ok(now), Ok(self.content))))
    }
}

impl Access for Fs {
    fn scheme(&self) -> &'static str {
        "fs"
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        let path = path.to_owned();
        self.job_relieved(move |fs| {
            let want_dir = path.is_empty() || path.ends_with('/');
            let flags = if want_dir {
                OFlags::PATH | OFlags::DIRECTORY
            } else {
                OFlags::PATH
            };
            let fd =
                below_a_file_is_not_found(&fs.root, &path, open_in_root(&fs.root, &path, flags))?;
            Ok(metadata(&rustix::fs::fstat(&fd)?))
        })
    }

    fn read(&self, path: &str, args: ReadArgs) -> IoJob<Bytes> {
        let bulk = self.is_bulk_copy(path, &args);
        let path = path.to_owned();
        let in_flight = InFlight::new(&self.reads_in_flight);
        self.job_on(bulk, move |fs| {
            let _in_flight = in_flight;
            let (file, meta) = fs.open_kept(&path)?;
            args.conditions.check(&meta)?;
            let range = args.resolve(meta.content_length())?;
            // Only a read on its own (among `read`s; a `Reader`'s chunks and
            // `read_ranges` parts are not counted): concurrent reads keep the cores
            // busy already,
            // and splitting them too only puts more IO threads between the caller
            // and its cores.
            if range.end - range.start >= SPLIT_READ_MIN
                && fs
                    .reads_in_flight
                    .load(std::sync::atomic::Ordering::Relaxed)
                    == 1
            {
                return read_exact_at_by_two(&file, range, &fs.pool);
            }
            read_exact_at(&file.fd, range, &fs.pool)
        })
    }

    fn try_read_now(&self, path: &str, args: &ReadArgs) -> Option<Result<Bytes>> {
        // Only a plain, bounded, small read of a file already open on a local
        // filesystem: nothing here may wait on a device or a network (the path's
        // lookup in `current` uses only what the kernel holds in memory).
        // And only when no other read is on its way: a burst of reads is spread over
        // the executor's threads (more cores) instead of run one by one here.
        if self.reads_in_flight() {
            return None;
        }
        let (start, end) = (args.range.start()?, args.range.end()?);
        // A read over the limit goes to the executor, which refuses it.
        if end <= start || end - start > READ_NOW_MAX.min(args.max_len) {
            return None;
        }
        self.with_kept_in_memory(path, |file, stat| {
            if (stat.st_size as u64) < end {
                return None;
            }
            // Conditions are checked against the file that is read, as a job does.
            if !args.conditions.is_empty()
                && let Err(e) = args.conditions.check(&metadata(stat))
            {
                return Some(Err(e));
            }
            read_cached_at(&file.fd, start..end, &self.pool).map(Ok)
        })
    }

    fn serves_bursts(&self) -> bool {
        true
    }

    fn try_open_now(&self, path: &str, args: &OpenArgs) -> Option<Result<Opened>> {
        // As `try_read_now`: only a file already open on a local filesystem, looked
        // up with what the kernel holds in memory, its first read from page cache.
        self.with_kept_in_memory(path, |file, stat| {
            let meta = metadata(stat);
            let range = match args
                .conditions
                .check(&meta)
                .and_then(|()| args.range.resolve(meta.content_length()))
            {
                Ok(range) => range,
                Err(e) => return Some(Err(e)),
            };
            // A first read only as `try_read_now` would serve it. A larger first
            // chunk of a longer read is left to the reader's own chunk reads,
            // which then start at once, on the executor; a whole range asked for
            // in one buffer (`whole_up_to`) is the open job's, as one read.
            let first = args.first_read(&range);
            let whole = first == range;
            let first = if first.is_empty() {
                Bytes::new()
            } else if first.end - first.start <= READ_NOW_MAX && !self.reads_in_flight() {
                read_cached_at(&file.fd, first, &self.pool)?
            } else if whole {
                return None;
            } else {
                Bytes::new()
            };
            let object = Arc::new(FsObject {
                file: Arc::clone(file),
                meta,
                pool: Arc::clone(&self.pool),
            });
            Some(Ok(Opened::new(object, range, first)))
        })
    }

    fn open(&self, path: &str, args: OpenArgs) -> IoJob<Opened> {
        let path = path.to_owned();
        self.job(move |fs| {
            let (file, meta) = fs.open_kept(&path)?;
            args.conditions.check(&meta)?;
            let range = args.range.resolve(meta.content_length())?;
            let first = read_exact_at(&file.fd, args.first_read(&range), &fs.pool)?;
            let object = Arc::new(FsObject {
                file,
                meta,
                pool: Arc::clone(&fs.pool),
            });
            Ok(Opened::new(object, range, first))
        })
    }

    fn write(&self, path: &str, data: Bytes, options: WriteOptions) -> IoJob<Metadata> {
        if options.if_match.is_some() {
            return IoJob::ready(Err(if_match_unsupported()));
        }
        if let Err(e) = options.check_local() {
            return IoJob::ready(Err(e));
        }
        let path = path.to_owned();
        self.job(move |fs| {
            let temp = fs
                .files
                .relieved(|| TempFile::create(&fs.root, &fs.files, &path, None))?;
            if fs.sync && !data.is_empty() {
                // The size is known: reserve the extents in one step. Only a hint, so
                // a filesystem without fallocate is fine. Only where the data is
                // synced before the rename: extents reserved ahead are written
                // "unwritten" until writeback, and ext4 flushes a new file's data
                // before a rename replaces another (`auto_da_alloc`) only while
                // its blocks are still to be allocated. After a power cut, the
                // replaced file could read as zeros instead of either version.
                let _ = rustix::fs::fallocate(
                    &temp.fd,
                    rustix::fs::FallocateFlags::empty(),
                    0,
                    data.len() as u64,
                );
            }
            if let Err(e) = write_all(&temp.fd, &data) {
                return Err(temp.discard_after(e));
            }
            let meta = temp.commit(fs.sync, options.if_not_exists);
            fs.files.forget(&path);
            meta
        })
    }

    fn writer(&self, path: &str, options: WriteOptions) -> IoJob<Box<dyn RawWrite>> {
        if options.if_match.is_some() {
            return IoJob::ready(Err(if_match_unsupported()));
        }
        if let Err(e) = options.check_local() {
            return IoJob::ready(Err(e));
        }
        let path = path.to_owned();
        self.job(move |fs| {
            let temp = fs
                .files
                .relieved(|| TempFile::create(&fs.root, &fs.files, &path, None))?;
            Ok(Box::new(FsWriter {
                temp,
                sync: fs.sync,
                no_replace: options.if_not_exists,
                path,
                files: Arc::clone(&fs.files),
            }) as Box<dyn RawWrite>)
        })
    }

    fn delete(&self, path: &str) -> IoJob<()> {
        let path = path.to_owned();
        self.job_relieved(move |fs| {
            let result = delete_one(&fs.root, &path);
            fs.files.forget_below(&path);
            result
        })
    }

    fn delete_many(&self, paths: Vec<String>) -> IoJob<Vec<Result<()>>> {
        // Each path is relieved on its own: the job itself never fails.
        self.job(move |fs| {
            Ok(paths
                .iter()
                .map(|path| {
                    let result = fs.files.relieved(|| delete_one(&fs.root, path));
                    fs.files.forget_below(path);
                    result.map_err(|e| e.with_path(path.clone()))
                })
                .collect())
        })
    }

    fn remove_all(&self, path: &str) -> IoJob<()> {
        let path = path.to_owned();
        self.job_relieved(move |fs| {
            let result = (|| {
                // A write in progress below is left to commit (see `remove_tree`).
                let mut budget = CLEARED_AGAIN_MAX;
                if path.is_empty() {
                    return clear_dir(&open_dir(&fs.root, "")?, &mut budget).map(drop);
                }
                let parent = match open_dir(&fs.root, parent_dir(&path)) {
                    Ok(dir) => dir,
                    Err(e) => return not_found_is_ok(Err(e)),
                };
                let name = std::ffi::CString::new(file_name(&path))
                    .map_err(|_| Error::new(ErrorKind::InvalidInput).with_message("NUL in path"))?;
                remove_tree(&parent, &name, &mut budget).map(drop)
            })();
            fs.files.forget_below(&path);
            result
        })
    }

    fn create_dir(&self, path: &str) -> IoJob<()> {
        let path = path.to_owned();
        self.job_relieved(move |fs| {
            not_reserved_path(&path)?;
            ensure_dir(&fs.root, &path).map(drop)
        })
    }

    fn copy(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        if options.if_match.is_some() {
            return IoJob::ready(Err(if_match_unsupported()));
        }
        if let Err(e) = options.check_local() {
            return IoJob::ready(Err(e));
        }
        let (from, to) = (from.to_owned(), to.to_owned());
        self.job(move |fs| {
            // A write's temporary file: half written.
            not_reserved(file_name(&from))?;
            if from == to {
                // Onto itself, with options fs has taken (a content type, which it
                // does not store): nothing to change, and a copy through a
                // temporary file would only split hard links, drop extended
                // attributes and replace a symlink with a copy of its target. The
                // file is looked at, not opened (a FIFO's open would wait for a
                // writer), under the names a copy may write to.
                not_reserved_path(&to)?;
                let fd = below_a_file_is_not_found(
                    &fs.root,
                    &from,
                    open_in_root(&fs.root, &from, OFlags::PATH),
                )?;
                if is_dir(&rustix::fs::fstat(&fd)?) {
                    return Err(Error::new(ErrorKind::IsADirectory));
                }
                return if options.if_not_exists {
                    Err(Error::new(ErrorKind::AlreadyExists))
                } else {
                    Ok(())
                };
            }
            fs.copy_file(&from, &to, options.if_not_exists).map(drop)
        })
    }

    fn rename(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        if options.if_match.is_some() {
            return IoJob::ready(Err(if_match_unsupported()));
        }
        if let Err(e) = options.check_local() {
            return IoJob::ready(Err(e));
        }
        let (from, to) = (from.to_owned(), to.to_owned());
        self.job_relieved(move |fs| {
            // Neither end may be another write's temporary file.
            not_reserved(file_name(&from))?;
            not_reserved_path(&to).map_err(|e| e.with_path(to.clone()))?;
            let from_dir =
                below_a_file_is_not_found(&fs.root, &from, open_dir(&fs.root, parent_dir(&from)))?;
            let stat = rustix::fs::statat(&from_dir, file_name(&from), AtFlags::SYMLINK_NOFOLLOW)?;
            if is_dir(&stat) {
                return Err(Error::new(ErrorKind::IsADirectory));
            }
            let mut to_dir =
                ensure_dir(&fs.root, parent_dir(&to)).map_err(|e| e.with_path(to.clone()))?;
            let (from_name, to_name) = (file_name(&from), file_name(&to));
            let to_stat = match rustix::fs::statat(&to_dir, to_name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(stat),
                Err(Errno::NOENT) => None,
                Err(e) => return Err(Error::from(e).with_path(to.clone())),
            };
            // A directory, or a symlink to one, is not replaced by a file (and
            // says so alike with `if_not_exists`, as a write and a copy do).
            if to_stat.as_ref().is_some_and(is_dir)
                || is_link_to_dir(&fs.root, &to, to_stat.as_ref())?
            {
                return Err(Error::new(ErrorKind::IsADirectory).with_path(to.clone()));
            }
            let one_dir = same_dir(&from_dir, &to_dir);
            // Two spellings of one directory entry: a case-insensitive directory
            // (ext4 casefold) finds the source's entry by the target's name. Told
            // apart from two entries of one file (hard links) by whether an entry
            // spelled as the target exists, not by comparing the names (`é` and
            // `É` fold too, and `a` and `A` may be two links where nothing folds).
            // Renamed as one entry: its name changes, nothing is copied or removed.
            let one_entry = one_dir
                && from_name != to_name
                && to_stat.is_some_and(|t| same_inode(Ok(t), Ok(stat)))
                && !has_entry(&to_dir, to_name)?;
            if one_entry {
                if options.if_not_exists {
                    return Err(Error::new(ErrorKind::AlreadyExists).with_path(to.clone()));
                }
                rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)?;
                return fs.renamed(&from, &to, &from_dir, &to_dir);
            }
            if from_name == to_name && one_dir {
                // One directory entry by two paths (or one): nothing to move.
                return if options.if_not_exists {
                    Err(Error::new(ErrorKind::AlreadyExists).with_path(to.clone()))
                } else {
                    Ok(())
                };
            }
            let is_link =
                rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Symlink;
            // What the source's name leads to: a symlink is read and copied as the
            // file it leads to, and renamed as that too (as an object store
            // renames: the content put at `to`, then the source removed). Moved as
            // a link, a relative one would break, and onto its own target it would
            // replace the only copy with a link to itself.
            let object = if is_link {
                let fd = below_a_file_is_not_found(
                    &fs.root,
                    &from,
                    open_in_root(&fs.root, &from, OFlags::PATH),
                )?;
                let target = rustix::fs::fstat(&fd)?;
                if is_dir(&target) {
                    return Err(Error::new(ErrorKind::IsADirectory));
                }
                target
            } else {
                stat
            };
            // Two names of one file: hard links (which rename(2) would leave both
            // of); one entry by two spellings was renamed above.
            let to_is_it = to_stat.is_some_and(|t| same_inode(Ok(t), Ok(object)));
            let twins = to_is_it && object.st_nlink > 1;
            if is_link || twins {
                // `to` gets the content unless it already is that file, then the
                // source's name goes.
                let content = if to_is_it {
                    if options.if_not_exists {
                        return Err(Error::new(ErrorKind::AlreadyExists).with_path(to.clone()));
                    }
                    object
                } else {
                    fs.copy_file(&from, &to, options.if_not_exists)?
                };
                let source = Source {
                    entry: stat,
                    content,
                };
                let (names, dirs) = ((from.as_str(), to.as_str()), (&from_dir, &to_dir));
                return fs.moved(names, dirs, &source, "its content is there");
            }
            let mut remade = 0;
            let renamed = loop {
                let renamed = if options.if_not_exists {
                    rename_no_replace(&from_dir, from_name, &to_dir, to_name)
                } else {
                    rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)
                        .map_err(Error::from)
                };
                match renamed {
                    // The target's directory was removed since it was opened (an
                    // empty one, deleted by a clean-up running beside this): made
                    // again, as a write makes it, not the source's `NotFound`.
                    Err(e)
                        if e.is_errno(Errno::NOENT) && remade < REMADE_MAX && removed(&to_dir) =>
                    {
                        remade += 1;
                        to_dir = ensure_dir(&fs.root, parent_dir(&to))
                            .map_err(|e| e.with_path(to.clone()))?;
                    }
                    other => break other,
                }
            };
            match renamed {
                Ok(()) => {}
                // Across a mount inside the root (a volume mounted below it), where
                // no rename goes: a copy, put in place as every write is, then the
                // source's removal, as `mv` does; memory and S3 rename there too.
                Err(e) if e.is_errno(Errno::XDEV) => {
                    let content = fs.copy_file(&from, &to, options.if_not_exists)?;
                    let source = Source {
                        entry: stat,
                        content,
                    };
                    let (names, dirs) = ((from.as_str(), to.as_str()), (&from_dir, &to_dir));
                    return fs.moved(names, dirs, &source, "copied across a mount");
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::AlreadyExists
                            | ErrorKind::IsADirectory
                            | ErrorKind::DirectoryNotEmpty
                            // A new entry needs room, and a link count, where
                            // the target goes.
                            | ErrorKind::StorageFull
                    ) || e.is_errno(Errno::MLINK) =>
                {
                    return Err(e.with_path(to.clone()));
                }
                // Refused: the target's directory, if the source's may be written
                // (the kernel checks the source's first).
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    let from_writable = rustix::fs::accessat(
                        &from_dir,
                        ".",
                        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
                        AtFlags::empty(),
                    )
                    .is_ok();
                    return Err(if from_writable {
                        e.with_path(to.clone())
                    } else {
                        e
                    });
                }
                Err(e) => return Err(e),
            }
            fs.renamed(&from, &to, &from_dir, &to_dir)
        })
    }

    fn list(&self, path: &str, args: ListArgs) -> IoJob<Box<dyn RawList>> {
        let path = path.to_owned();
        self.job_relieved(move |fs| {
            // A missing directory lists as empty, as on object stores; so does one
            // below a file (`f/x/`). Only `f/` itself, a file listed as a
            // directory, is `NotADirectory`.
            let dir = match below_a_file_is_not_found(&fs.root, &path, open_dir(&fs.root, &path)) {
                Ok(dir) => Some(dir),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
            Ok(Box::new(FsLister::new(
                Arc::clone(&fs.root),
                Arc::clone(&fs.files),
                &path,
                dir,
                args.clone(),
            )?) as Box<dyn RawList>)
        })
    }
}

/// Removes file `path` or empty directory `path/`; a missing one is fine. A
/// directory that holds nothing but leftovers of crashed writers is empty.
fn delete_one(root: &OwnedFd, path: &str) -> Result<()> {
    // A write's temporary file (which a `read_dir` shows): deleting it would lose
    // the write.
    if !path.ends_with('/') {
        not_reserved(file_name(path))?;
    }
    let dir = match open_dir(root, parent_dir(path)) {
        Ok(dir) => dir,
        Err(e) => return not_found_is_ok(Err(e)),
    };
    let name = file_name(path);
    if !path.ends_with('/') {
        return match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    match rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        // A symlink that leads to a directory is that directory to `stat` and
        // `list`: deleting it removes the link, never what it leads to.
        Err(Errno::NOTDIR)
            if is_link_to_dir(
                root,
                path,
                rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .as_ref(),
            )? =>
        {
            match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        // Not a directory: as `stat` of `path` says, nothing there (a symlink
        // whose target is missing, which `stat` and listings do not show), or a
        // file.
        Err(Errno::NOTDIR) => {
            let looked = open_in_root(root, path, OFlags::PATH | OFlags::DIRECTORY);
            match below_a_file_is_not_found(root, path, looked) {
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                // A directory there now (made since the unlink): not this one.
                Ok(_) => Err(Errno::NOTDIR.into()),
                // A file (`NotADirectory`), or why it could not be looked at.
                Err(e) => Err(e),
            }
        }
        Err(Errno::NOTEMPTY) => {
            let target = match open_dir(root, path) {
                Ok(fd) => fd,
                Err(e) => return not_found_is_ok(Err(e)),
            };
            if remove_stale_temp_files_in(&target)? == 0 {
                let err = Error::new(ErrorKind::DirectoryNotEmpty);
                // If its listing shows nothing, say what is there. The scan only
                // explains; if it fails, the plain error stands.
                return Err(match unlisted_contents(root, path, &target) {
                    Ok(Some(what)) => err.with_message(what),
                    _ => err,
                });
            }
            match rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether directory `dir` holds an entry spelled exactly `name` (byte for byte:
/// a case-insensitive directory's lookup would also find other spellings).
fn has_entry(dir: &OwnedFd, name: &str) -> Result<bool> {
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        if entry?.file_name().to_bytes() == name.as_bytes() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Why directory `path` (open as `dir`), which a listing shows empty, is not: a
/// message naming what it holds that listings do not show, or `None` if it holds
/// something a listing shows (or nothing, any more).
fn unlisted_contents(root: &OwnedFd, path: &str, dir: &OwnedFd) -> Result<Option<String>> {
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    let (mut temp, mut other) = (false, None);
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let raw = entry.file_name().to_bytes();
        if raw == b"." || raw == b".." {
            continue;
        }
        let Ok(name) = std::str::from_utf8(raw) else {
            let name = String::from_utf8_lossy(raw).into_owned();
            other.get_or_insert_with(|| format!("{name:?} (a name that is not UTF-8)"));
            continue;
        };
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::RegularFile if is_temp_name(name) => temp = true,
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::Directory => {
                return Ok(None);
            }
            rustix::fs::FileType::Symlink => {
                match open_in_root(root, &format!("{path}{name}"), OFlags::PATH) {
                    Ok(fd) => {
                        let found = rustix::fs::fstat(&fd)?;
                        if is_dir(&found) || is_regular(&found) {
                            return Ok(None);
                        }
                        other.get_or_insert_with(|| {
                            format!("{name:?} (a symlink to neither a file nor a directory)")
                        });
                    }
                    Err(e) if dangling(&e) => {
                        other.get_or_insert_with(|| {
                            format!("{name:?} (a symlink whose target is missing)")
                        });
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => {
                other.get_or_insert_with(|| format!("{name:?} (a FIFO, a socket or a device)"));
            }
        }
    }
    Ok(match (other, temp) {
        (Some(what), _) => Some(format!(
            "it holds only entries its listing does not show, such as {what}"
        )),
        (None, true) => Some(
            "a write in progress in it has not committed yet (its temporary file is hidden \
             from listings)"
                .to_owned(),
        ),
        (None, false) => None,
    })
}

/// Copies `len` bytes of `src` (file `from`) to `dst` (the temporary file of `to`)
/// in the kernel (`copy_file_range`), or through a buffer where the filesystem
/// cannot. An error names the file at fault: a source that ends before `len` bytes
/// (it shrank since it was opened, as a read finds it) or cannot be read is
/// `from`; a target that cannot be written (no space, a quota) is `to`.
fn copy_contents(src: &OwnedFd, dst: &OwnedFd, len: u64, from: &str, to: &str) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, None, dst, None, chunk) {
            // The end of the source as it is now, or a file the kernel cannot copy
            // this way (some return 0 for pseudo files): the buffered copy, from the
            // offsets reached, tells which.
            Ok(0) => break,
            Ok(n) => left -= n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) if left == len => {
                break;
            }
            Err(e) => return Err(copy_error(e, from, to)),
        }
    }
    // `copy_file_range` without offsets moved both files' offsets to `len - left`.
    // Allocated fallibly, as every buffer is: no memory is an error, not an abort.
    let mut buf = crate::raw::allocate(left.min(1 << 20) as usize).map_err(|e| e.with_path(to))?;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        fill_at(src, &mut buf[..want], len - left)
            .map_err(|e| e.with_context("size", len).with_path(from))?;
        write_all(dst, &buf[..want]).map_err(|e| e.with_path(to))?;
        left -= want as u64;
    }
    Ok(())
}

/// A failed `copy_file_range`, naming the file at fault: errors only writing gives
/// (no space, a quota, a file too large) are the target's, the rest the source's.
fn copy_error(errno: Errno, from: &str, to: &str) -> Error {
    // Only what the target alone can cause: the target is a temporary file this
    // copy has just made, so anything else (a busy swap file, EPERM, EIO) may be
    // the source's and is left to name it.
    let at_target = matches!(errno, Errno::NOSPC | Errno::DQUOT | Errno::FBIG);
    Error::from(errno).with_path(if at_target { to } else { from })
}

impl fmt::Debug for Fs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fs")
            .field("root", &self.root_path)
            .field("sync", &self.sync)
            .finish_non_exhaustive()
    }
}
