//! [`FdCache`]: files kept open between reads, so a small read costs a lookup of its
//! path (is it still this file?) and a `pread`, not an `openat2` + `fstat` + `pread`
//! + `close` of the file itself.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use rustix::fs::{Mode, OFlags, ResolveFlags, Stat};

use super::core::open_in_root_with;
use crate::Result;

/// A file opened for reading by a job, kept for the reads that follow.
#[derive(Debug)]
pub(super) struct CachedFile {
    pub(super) fd: OwnedFd,
    dev: u64,
    ino: u64,
    /// Who may read it, as it was opened: a file whose mode or owner changed since
    /// (`chmod 000`), or whose status did (`ctime`: an ACL, anything else), is
    /// opened again, so that a read it no longer allows is refused as an open
    /// would refuse it, not served from the descriptor kept.
    access: (u32, u32, u32, i64, i64),
    /// On a filesystem whose `fstat` and page-cache reads never wait (a local one),
    /// so a read may be tried from the caller's thread.
    pub(super) local: bool,
}

impl CachedFile {
    pub(super) fn new(fd: OwnedFd, stat: &Stat, local: bool) -> Self {
        Self {
            fd,
            dev: stat.st_dev,
            ino: stat.st_ino,
            access: access_of(stat),
            local,
        }
    }

    /// The file's `stat` now, if `path` (below `root`) still names it, as it was
    /// when opened: a file that was replaced (a rename over it), deleted, or
    /// renamed away (log rotation), or whose directory was renamed away (a table's
    /// directory swapped for a new one), or whose mode, owner or status changed
    /// (`chmod`, `chown`, an ACL, a write in place), is not served; the caller
    /// opens the path again.
    ///
    /// The check looks the path up as the open did (`openat2` with `O_PATH`, inside
    /// the root, links and all) and `fstat`s what it finds; an `fstat` of the kept
    /// descriptor alone sees neither kind of rename. With `in_memory`, for a read on
    /// the caller's thread, the lookup uses only what the kernel holds in memory
    /// (`RESOLVE_CACHED`): where it would read a directory or ask a server, or on a
    /// kernel before 5.12, it fails and the read goes to the executor. The kept file
    /// holds the directory entries of its own path, so an unchanged path is always
    /// in memory.
    ///
    /// Not the [`Metadata`](crate::Metadata): a read from the caller's thread needs
    /// only the size, and formatting the ETag was about 5% of the samples of a 4 KiB
    /// read storm there, in a profile.
    pub(super) fn current(&self, root: &OwnedFd, path: &str, in_memory: bool) -> Option<Stat> {
        let extra = if in_memory {
            ResolveFlags::CACHED
        } else {
            ResolveFlags::empty()
        };
        self.looked_up(root, path, extra).ok().flatten()
    }

    /// Whether `path` (below `root`) no longer names this file, as
    /// [`current`](Self::current) looks, as far as can be told: a lookup that
    /// cannot be made (out of descriptors) says nothing, and is `false`.
    pub(super) fn replaced(&self, root: &OwnedFd, path: &str) -> bool {
        match self.looked_up(root, path, ResolveFlags::empty()) {
            Ok(found) => found.is_none(),
            Err(e) => !e.is_out_of_descriptors(),
        }
    }

    /// `path`'s `stat` if it names this file, as it was opened; `None` if it
    /// names another (or one whose access changed); an error if the lookup fails
    /// (the path names nothing, or it cannot be looked up).
    fn looked_up(&self, root: &OwnedFd, path: &str, extra: ResolveFlags) -> Result<Option<Stat>> {
        let found = open_in_root_with(root, path, OFlags::PATH, extra)?;
        let stat = rustix::fs::fstat(&found)?;
        Ok((self.is(&stat) && access_of(&stat) == self.access).then_some(stat))
    }

    /// Whether `stat` is of this file.
    fn is(&self, stat: &Stat) -> bool {
        stat.st_dev == self.dev && stat.st_ino == self.ino
    }

    /// The same file opened again, as a new open file description (through
    /// `/proc/self/fd`, so it is this inode whatever its path names now), or `None`
    /// if that cannot be done (`/proc` is not procfs, no descriptors left, the
    /// file's mode changed): the caller reads from [`fd`](Self::fd) instead.
    ///
    /// For a thread about to make many small reads while others read this file:
    /// every `pread` takes and drops a reference on the open file description, and
    /// two cores doing that to one description pass its cache line back and forth
    /// (`fdget` and `fput` were about 10% of a two-thread 4 KiB storm's samples).
    ///
    /// Closing the returned descriptor, like closing any descriptor of the file,
    /// releases the POSIX (`fcntl`) record locks this process holds on it; open
    /// file description locks (`F_OFD_SETLK`) and `flock` locks are not affected.
    pub(super) fn reopen(&self) -> Option<OwnedFd> {
        let dir = proc_self_fd()?;
        let name = self.fd.as_raw_fd().to_string();
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = rustix::fs::openat(dir, name.as_str(), flags, Mode::empty()).ok()?;
        let stat = rustix::fs::fstat(&fd).ok()?;
        self.is(&stat).then_some(fd)
    }
}

/// What a kept file is compared on besides its identity: its mode, owner, group
/// and status change time (which an ACL's change moves, though the mode stays).
#[expect(
    clippy::unnecessary_cast,
    reason = "the `stat` fields' types differ between targets"
)]
fn access_of(stat: &Stat) -> (u32, u32, u32, i64, i64) {
    (
        stat.st_mode as u32,
        stat.st_uid,
        stat.st_gid,
        stat.st_ctime as i64,
        stat.st_ctime_nsec as i64,
    )
}

/// `/proc/self/fd`, opened once and only if it is procfs: what a container or a
/// chroot has at `/proc` may be anything, and opening an entry of it could block
/// or have effects (a FIFO, a device). The dev/ino check after each reopen catches
/// anything else (a process forked since sees its parent's table: a different file
/// there is not used).
pub(super) fn proc_self_fd() -> Option<&'static OwnedFd> {
    const PROC_SUPER_MAGIC: rustix::fs::FsWord = 0x9FA0;
    static DIR: OnceLock<Option<OwnedFd>> = OnceLock::new();
    DIR.get_or_init(|| {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open("/proc/self/fd", flags, Mode::empty()).ok()?;
        (rustix::fs::fstatfs(&dir).ok()?.f_type == PROC_SUPER_MAGIC).then_some(dir)
    })
    .as_ref()
}

/// At most this often, as jobs read files, the cache lets go of kept files deleted
/// since (by another process: our own deletes forget them at once). Reads served
/// on a caller's thread leave one read to a job when a look is due.
const SWEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Files kept open, by path, at most `capacity` of them (the least recently used
/// goes first). Clones of an [`Fs`](super::Fs) share one cache.
///
/// A kept file deleted by another process (a compaction removing a table's old
/// files) would hold its blocks, its disk space, until its path was read again or
/// it was evicted: with a working set that fits, never. At most every
/// [`SWEEP_INTERVAL`], as jobs read files, the cache looks at each kept file's
/// link count and lets go of those with none left.
#[derive(Debug)]
pub(super) struct FdCache {
    capacity: usize,
    inner: Mutex<Entries>,
    /// How many times a path was forgotten (see [`forgets`](Self::forgets)).
    forgets: AtomicU64,
}

impl Entries {
    /// Removes `path`'s entry if it keeps `file` (not a file kept since).
    fn remove_if_kept(
        &mut self,
        path: &str,
        file: &Arc<CachedFile>,
    ) -> Option<(Arc<CachedFile>, u64)> {
        let same = self
            .map
            .get(path)
            .is_some_and(|(kept, _)| Arc::ptr_eq(kept, file));
        same.then(|| self.map.remove(path)).flatten()
    }

    /// Whether a look for deleted files is due: the last is [`SWEEP_INTERVAL`] old,
    /// or there was none.
    fn sweep_due(&self) -> bool {
        self.swept.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL)
    }

    /// Every file kept, with its path, to look at for deleted ones; notes when.
    fn sweeping(&mut self) -> Vec<(String, Arc<CachedFile>)> {
        self.swept = Some(std::time::Instant::now());
        self.map
            .iter()
            .map(|(path, (file, _))| (path.clone(), Arc::clone(file)))
            .collect()
    }
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, (Arc<CachedFile>, u64)>,
    clock: u64,
    /// When the cache last looked for deleted files (see [`FdCache::sweep_if_due`]).
    swept: Option<std::time::Instant>,
    /// Files whose last reference was let go on a caller's thread
    /// ([`let_go`](FdCache::let_go)), closed by the next job that changes the cache.
    retired: Vec<CachedFile>,
}

impl FdCache {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Entries::default()),
            forgets: AtomicU64::new(0),
        }
    }

    /// The open file for `path`, if one is kept.
    pub(super) fn get(&self, path: &str) -> Option<Arc<CachedFile>> {
        self.get_if(path, false)
    }

    /// [`get`](Self::get) for a read on a caller's thread: `None` too when a look
    /// for deleted files is due ([`sweep_if_due`](Self::sweep_if_due) would make
    /// one), so that the read goes to a job, which makes it (reads all served on
    /// callers' threads would never let go of files another process deleted).
    pub(super) fn get_here(&self, path: &str) -> Option<Arc<CachedFile>> {
        self.get_if(path, true)
    }

    fn get_if(&self, path: &str, unless_sweep_due: bool) -> Option<Arc<CachedFile>> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.inner.lock();
        if unless_sweep_due && inner.sweep_due() {
            return None;
        }
        inner.clock += 1;
        let clock = inner.clock;
        let (file, used) = inner.map.get_mut(path)?;
        *used = clock;
        Some(Arc::clone(file))
    }

    /// Drops a reference taken with [`get`](Self::get) on a thread that must not
    /// wait on a device (a caller's). If it is the last one (the path was forgotten
    /// or evicted meanwhile), the file is not closed here: closing the last
    /// descriptor of a file deleted meanwhile frees its blocks. The next job that
    /// keeps or forgets a file closes it.
    pub(super) fn let_go(&self, file: Arc<CachedFile>) {
        if let Some(last) = Arc::into_inner(file) {
            self.inner.lock().retired.push(last);
        }
    }

    /// Keeps `file` for `path`, evicting the least recently used file if full;
    /// `false` if this cache keeps nothing.
    pub(super) fn insert(&self, path: &str, file: Arc<CachedFile>) -> bool {
        if self.capacity == 0 {
            return false;
        }
        // Files let go of are dropped after the lock is released: closing the last
        // descriptor of a deleted file may wait on the device, and callers' threads
        // take this lock.
        let mut evicted = None;
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let clock = inner.clock;
        if inner.map.len() >= self.capacity && !inner.map.contains_key(path) {
            let oldest = inner
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(path, _)| path.clone());
            if let Some(oldest) = oldest {
                evicted = inner.map.remove(&oldest);
            }
        }
        let replaced = inner.map.insert(path.to_owned(), (file, clock));
        let retired = std::mem::take(&mut inner.retired);
        drop(inner);
        drop((evicted, replaced, retired));
        true
    }

    /// Lets go of deleted files if the last look for them is [`SWEEP_INTERVAL`]
    /// old (or there was none). For jobs (the `fstat`s may wait on a device), as
    /// they read files.
    pub(super) fn sweep_if_due(&self) {
        if self.capacity == 0 {
            return;
        }
        let kept = {
            let mut inner = self.inner.lock();
            let due = inner.sweep_due();
            due.then(|| inner.sweeping())
        };
        if let Some(kept) = kept {
            self.let_go_of_deleted(kept);
        }
    }

    /// Forgets the files of `kept` that have no link left (deleted), if their
    /// paths still keep them. Their `fstat`s are made without the lock, which
    /// callers' threads take.
    fn let_go_of_deleted(&self, kept: Vec<(String, Arc<CachedFile>)>) {
        let deleted: Vec<(String, Arc<CachedFile>)> = kept
            .into_iter()
            .filter(|(_, file)| rustix::fs::fstat(&file.fd).is_ok_and(|s| s.st_nlink == 0))
            .collect();
        if deleted.is_empty() {
            return;
        }
        let forgotten: Vec<_> = {
            let mut inner = self.inner.lock();
            deleted
                .iter()
                .filter_map(|(path, file)| inner.remove_if_kept(path, file))
                .collect()
        };
        drop((forgotten, deleted));
    }

    /// How many times a path was forgotten so far. A file opened to be kept is
    /// looked up again once kept only if this moved while it was opened: a change
    /// of its path forgets the path after the change, and may have done so before
    /// the file was kept.
    pub(super) fn forgets(&self) -> u64 {
        self.forgets.load(Ordering::SeqCst)
    }

    /// Forgets `path` if it keeps `file` (and not a file kept since).
    pub(super) fn forget_file(&self, path: &str, file: &Arc<CachedFile>) {
        // Dropped after the lock is released (see `insert`).
        let forgotten = self.inner.lock().remove_if_kept(path, file);
        drop(forgotten);
    }

    /// Forgets `path` (it is being replaced, moved or deleted).
    pub(super) fn forget(&self, path: &str) {
        if self.capacity == 0 {
            return;
        }
        // Dropped after the lock is released (see `insert`).
        let forgotten = {
            let mut inner = self.inner.lock();
            self.forgets.fetch_add(1, Ordering::SeqCst);
            (inner.map.remove(path), std::mem::take(&mut inner.retired))
        };
        drop(forgotten);
    }

    /// `open()`, and if the process is out of descriptors (`EMFILE`, `ENFILE`),
    /// `open()` again once the files kept here are closed: kept files must never be
    /// why a read, a write or its commit fails.
    pub(super) fn relieved<T>(&self, open: impl Fn() -> Result<T>) -> Result<T> {
        match open() {
            Err(e) if e.is_out_of_descriptors() => {
                self.forget_below("");
                open()
            }
            other => other,
        }
    }

    /// Forgets every path below directory `dir` (`""`: all), and the file `dir`
    /// names without its `/`.
    pub(super) fn forget_below(&self, dir: &str) {
        if self.capacity == 0 {
            return;
        }
        let name = dir.trim_end_matches('/');
        // Dropped after the lock is released (see `insert`).
        let forgotten = {
            let mut inner = self.inner.lock();
            self.forgets.fetch_add(1, Ordering::SeqCst);
            let files: Vec<_> = inner
                .map
                .extract_if(|path, _| path.starts_with(dir) || path == name)
                .collect();
            (files, std::mem::take(&mut inner.retired))
        };
        drop(forgotten);
    }
}

/// `true` for filesystems whose metadata and cached pages live in this kernel's
/// memory, so `fstat` and a `RWF_NOWAIT` read never wait on a device or a network:
/// ext2/3/4, XFS, Btrfs, tmpfs, overlayfs, F2FS, ZFS, bcachefs. Network and FUSE
/// filesystems are not on the list (their `fstat` may go to a server).
pub(super) fn is_local(fd: &OwnedFd) -> bool {
    const LOCAL: [rustix::fs::FsWord; 8] = [
        0xEF53,      // ext2/3/4
        0x5846_5342, // XFS
        0x9123_683E, // Btrfs
        0x0102_1994, // tmpfs
        0x794C_7630, // overlayfs
        0xF2F5_2010, // F2FS
        0x2FC1_2FC1, // ZFS
        0xCA45_1A4E, // bcachefs
    ];
    rustix::fs::fstatfs(fd).is_ok_and(|s| LOCAL.contains(&s.f_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(path: &std::path::Path) -> CachedFile {
        let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let stat = rustix::fs::fstat(&fd).unwrap();
        CachedFile::new(fd, &stat, true)
    }

    #[test]
    fn the_last_reference_let_go_on_a_callers_thread_is_closed_by_the_next_job() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"data").unwrap();
        let cache = FdCache::new(4);
        cache.insert("f", Arc::new(kept(&path)));
        // Still kept: letting a reference go closes nothing and retires nothing.
        cache.let_go(cache.get("f").unwrap());
        assert!(cache.inner.lock().retired.is_empty());
        // Forgotten (a job deleted it) while a caller held it: the caller's is the
        // last reference, and it is retired, not closed on the caller's thread.
        let held = cache.get("f").unwrap();
        std::fs::remove_file(&path).unwrap();
        cache.forget("f");
        cache.let_go(held);
        assert_eq!(cache.inner.lock().retired.len(), 1);
        // The next job that changes the cache closes it.
        cache.forget("another");
        assert!(cache.inner.lock().retired.is_empty());
        // As does forgetting a directory's files.
        std::fs::write(&path, b"data").unwrap();
        cache.insert("f", Arc::new(kept(&path)));
        let held = cache.get("f").unwrap();
        cache.forget("f");
        cache.let_go(held);
        assert_eq!(cache.inner.lock().retired.len(), 1);
        cache.forget_below("");
        assert!(cache.inner.lock().retired.is_empty());
    }

    #[test]
    fn files_deleted_by_others_are_let_go_of_as_jobs_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FdCache::new(256);
        let write = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"data").unwrap();
            path
        };
        let gone = write("gone");
        cache.insert("gone", Arc::new(kept(&gone)));
        cache.insert("stays", Arc::new(kept(&write("stays"))));
        // Deleted by someone else: its blocks are held while the cache keeps it.
        std::fs::remove_file(&gone).unwrap();
        let count = |c: &FdCache| c.inner.lock().map.len();
        // The first look is due at once: the deleted file goes, the other stays.
        cache.sweep_if_due();
        assert!(cache.get("gone").is_none(), "still kept");
        assert!(cache.get("stays").is_some());
        assert_eq!(count(&cache), 1);
        // And again once the interval has passed since.
        std::fs::remove_file(dir.path().join("stays")).unwrap();
        std::thread::sleep(SWEEP_INTERVAL);
        cache.sweep_if_due();
        assert!(cache.get("stays").is_none(), "still kept");
        assert_eq!(count(&cache), 0);
    }

    #[test]
    fn a_reopened_file_is_the_same_file_with_its_own_offset_even_once_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = kept(&path);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"another file").unwrap();
        let own = file.reopen().expect("reopened through /proc/self/fd");
        let stat = rustix::fs::fstat(&own).unwrap();
        assert_eq!((stat.st_dev, stat.st_ino), (file.dev, file.ino));
        let mut buf = [0_u8; 4];
        assert_eq!(rustix::io::read(&own, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"0123");
        // A new open file description: reading `own` moved only its own offset.
        assert_eq!(rustix::io::read(&file.fd, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"0123");
        assert_eq!(rustix::io::read(&own, &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"4567");
    }
}
