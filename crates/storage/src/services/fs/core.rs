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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use rustix::fs::{
    AtFlags, FileType, FlockOperation, Mode, OFlags, RawMode, RenameFlags, ResolveFlags, Stat,
};
use rustix::io::Errno;

use super::fd_cache::CachedFile;
use super::fd_cache::FdCache;
use crate::raw::{ABORT_FAILED, BufferPool, SpaceTail, parent_dir};
use crate::{Error, ErrorKind, Metadata, Result};

/// Prefix of the temporary files atomic writes go through: `.dio-tmp.` and 32
/// lowercase hex digits (128 random bits). Listings hide exactly these names.
const TEMP_PREFIX: &str = ".dio-tmp.";
const TEMP_RANDOM_DIGITS: usize = 32;

/// `InvalidInput` for a name of the form [`is_temp_name`] matches: such files are
/// another write's work in progress, hidden from listings and swept once stale.
pub(super) fn not_reserved(name: &str) -> Result<()> {
    if is_temp_name(name) {
        return Err(Error::new(ErrorKind::InvalidInput)
            .with_message("the name is reserved for the temporary files of atomic writes"));
    }
    Ok(())
}

/// `InvalidInput` if any component of `path` has the form [`is_temp_name`]
/// matches: a write creates no file or directory of that form anywhere (a
/// directory of it would look like another write's work in progress).
pub(super) fn not_reserved_path(path: &str) -> Result<()> {
    path.split('/').try_for_each(not_reserved)
}

/// `true` for a name [`TempFile`] could have made.
pub(super) fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|rest| {
        rest.len() == TEMP_RANDOM_DIGITS
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Opens `path` (normalized, relative to the root) with `flags`, inside the root.
pub(super) fn open_in_root(root: &OwnedFd, path: &str, flags: OFlags) -> Result<OwnedFd> {
    open_in_root_with(root, path, flags, ResolveFlags::empty())
}

/// As [`open_in_root`], resolving with `extra` too. With `ResolveFlags::CACHED`
/// the lookup only uses what the kernel has in memory and fails with `EAGAIN`
/// (not retried) where it would have to read a directory or ask a server.
pub(super) fn open_in_root_with(
    root: &OwnedFd,
    path: &str,
    flags: OFlags,
    extra: ResolveFlags,
) -> Result<OwnedFd> {
    let path = match path.trim_end_matches('/') {
        "" => ".",
        p => p,
    };
    let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | extra;
    let retry = !extra.contains(ResolveFlags::CACHED);
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(root, path, flags | OFlags::CLOEXEC, Mode::empty(), resolve) {
            // The kernel asks for a retry when the tree changed during the lookup.
            Err(Errno::AGAIN | Errno::INTR) if retry && attempts < 16 => attempts += 1,
            other => return other.map_err(Error::from),
        }
    }
}

/// Whether `path` (normalized), whose entry `stat` describes (not followed), is a
/// symlink that leads to a directory inside the root: that directory, to a write
/// or a rename onto it, as it is to `stat` and `read`.
///
/// # Errors
///
/// Only where the process is out of descriptors (the lookup could not be made, so
/// the answer is unknown; the caller's open is [`FdCache::relieved`] and made
/// again): any other failure is a link that leads to no directory.
pub(super) fn is_link_to_dir(root: &OwnedFd, path: &str, stat: Option<&Stat>) -> Result<bool> {
    if !stat.is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink) {
        return Ok(false);
    }
    match open_in_root(root, path, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(_) => Ok(true),
        Err(e) if e.is_out_of_descriptors() => Err(e),
        Err(_) => Ok(false),
    }
}

/// Opens directory `dir` (normalized, `""` for the root) for `*at` calls and fsync.
pub(super) fn open_dir(root: &OwnedFd, dir: &str) -> Result<OwnedFd> {
    open_in_root(root, dir, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Opens directory `dir`, creating it and its parents first if needed.
pub(super) fn ensure_dir(root: &OwnedFd, dir: &str) -> Result<OwnedFd> {
    // An empty directory made here may be deleted (by a clean-up running beside
    // this) before it is opened: made again, up to `REMADE_MAX` times.
    let mut attempts = 0;
    loop {
        match open_dir(root, dir) {
            // Not a loop of links (which `mkdir` finds there, and no attempt mends).
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    && !e.is_errno(Errno::LOOP)
                    && attempts < REMADE_MAX => {}
            other => return other,
        }
        attempts += 1;
        match make_dirs(root, dir) {
            // Not a link that leads nowhere, which no attempt mends.
            Err(e)
                if e.kind() == ErrorKind::NotFound
                    && e.context("link").is_none()
                    && attempts < REMADE_MAX => {}
            other => other?,
        }
    }
}

/// How many times a write makes its parent directory again when it is deleted
/// under it (see [`ensure_dir`]): a clean-up deletes an empty directory once, but a
/// loop of them beside a stream of writes (measured: one `rmdir` loop on 2 vCPUs)
/// wins several races in a row.
pub(super) const REMADE_MAX: u32 = 64;

/// Makes every directory of `dir` that is missing.
fn make_dirs(root: &OwnedFd, dir: &str) -> Result<()> {
    let mut prefix = String::new();
    for component in dir.split('/').filter(|c| !c.is_empty()) {
        let parent = open_dir(root, &prefix)?;
        // As `create_dir_all` makes them: `0777` less the umask.
        match rustix::fs::mkdirat(&parent, component, Mode::from_raw_mode(0o777)) {
            Ok(()) => {}
            // A symlink that leads nowhere is in the way: what it names is not
            // found, and no attempt makes a directory there (it was 64 attempts).
            Err(Errno::EXIST) if leads_nowhere(root, &parent, component, &prefix) => {
                return Err(Error::new(ErrorKind::NotFound)
                    .with_message(format!(
                        "{prefix}{component} is a symbolic link that leads nowhere: no \
                         directory can be made there"
                    ))
                    .with_context("link", "dangling"));
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        prefix.push_str(component);
        prefix.push('/');
    }
    Ok(())
}

/// Whether `component` of directory `parent` (at `prefix`) is a symlink whose
/// target, resolved inside the root, is missing.
fn leads_nowhere(root: &OwnedFd, parent: &OwnedFd, component: &str, prefix: &str) -> bool {
    let is_link = rustix::fs::statat(parent, component, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink);
    is_link
        && open_in_root(root, &format!("{prefix}{component}"), OFlags::PATH)
            .is_err_and(|e| e.kind() == ErrorKind::NotFound && !e.is_errno(Errno::LOOP))
}

/// The last component of a normalized path, without a trailing `/`.
pub(super) fn file_name(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

pub(super) fn is_dir(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::Directory
}

/// Whether `stat` is of a regular file.
pub(super) fn is_regular(stat: &Stat) -> bool {
    FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
}

/// The metadata of a file or directory. A file's ETag is derived from its inode,
/// modification time and size: a write (which renames a new inode into place), an
/// append or a `touch` changes it.
pub(super) fn metadata(stat: &Stat) -> Metadata {
    // Seconds from the epoch (negative before 1970), then nanoseconds forward; a
    // time `SystemTime` cannot hold is the epoch.
    let seconds = Duration::from_secs(stat.st_mtime.unsigned_abs());
    let modified = if stat.st_mtime >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(seconds)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(seconds)
    }
    .and_then(|t| t.checked_add(Duration::new(0, stat.st_mtime_nsec as u32)))
    .unwrap_or(SystemTime::UNIX_EPOCH);
    if is_dir(stat) {
        return Metadata::dir().with_last_modified(modified);
    }
    let mtime_ns = (stat.st_mtime as i128) * 1_000_000_000 + i128::from(stat.st_mtime_nsec);
    Metadata::file(stat.st_size as u64)
        .with_last_modified(modified)
        .with_etag(format!(
            "\"{:x}-{:x}-{:x}\"",
            stat.st_ino, mtime_ns, stat.st_size
        ))
}

/// Reads exactly `range` of `fd` into a pooled buffer, with positional reads: no
/// seek, no shared file offset, so any number of these can run on one fd at once.
pub(super) fn read_exact_at(
    fd: &OwnedFd,
    range: Range<u64>,
    pool: &Arc<BufferPool>,
) -> Result<Bytes> {
    let len = buffer_len(&range)?;
    if len == 0 {
        return Ok(Bytes::new());
    }
    let mut buf = pool.take(len)?;
    fill_at(fd, &mut buf.space()[..len], range.start)?;
    buf.set_filled(len);
    Ok(buf.freeze())
}

/// A read at least this long, when it is the backend's only `read` in flight (reads
/// through a `Reader` or `read_ranges` are not counted), is read by two blocking
/// threads at once (when the executor has a second one free), into one buffer:
/// see [`read_exact_at_by_two`].
///
/// Only a read on its own: when four 8 MiB reads at once were all split, `dio bench
/// isolation` on 2 cores saw the caller's ticker p99 rise by 1.3-2.1 ms and its CPU
/// task fall to 0.85x-0.89x (against +0.1-0.5 ms and 0.95x-0.97x unsplit): eight
/// IO threads between the caller and its cores instead of four, for no more
/// throughput.
///
/// On a 2-core AMD EPYC a scratch program reading a file in page cache with
/// persistent pool threads measured two halves at 1.23x-1.46x the calling thread's
/// single `pread` for 16 MiB and 1.00x-1.20x for 8 MiB, where a single read handed
/// to one pool thread was 0.78x-0.95x and 0.50x-0.83x: the copy out of the page
/// cache is the cost, and two cores copy more than one.
pub(super) const SPLIT_READ_MIN: u64 = 8 << 20;

/// The piece of a read by two threads that each claims at a time.
const SPLIT_CHUNK: usize = 1 << 20;

/// Reads exactly `range` (at least [`SPLIT_READ_MIN`] long) of `file`'s `fd` into
/// one pooled buffer, with a second blocking thread of this pool helping (or none,
/// if no other thread was free: see [`io_executor::join_blocking`]).
///
/// The buffer is cut into [`SPLIT_CHUNK`] pieces that the two threads claim one at
/// a time, so a thread that starts late or runs slowly reads less, instead of
/// holding up a fixed half. On a 2-core Intel Xeon VM, right after the process ran
/// on one core for a while, an 8 MiB read in two fixed halves took about twice its
/// usual time, longer than one thread reading it all, and the cost faded over
/// about 20 ms. In a scratch program (8 MiB reads of a cached file, five rounds)
/// the pieces ran at 1.36x-1.45x a `pread` on the calling thread where fixed
/// halves ran at 1.30x-1.40x.
pub(super) fn read_exact_at_by_two(
    file: &Arc<CachedFile>,
    range: Range<u64>,
    pool: &Arc<BufferPool>,
) -> Result<Bytes> {
    let len = buffer_len(&range)?;
    let mut buf = pool.take(len)?;
    // Every piece, the first included, leaves the buffer: either thread may read it.
    let mut rest = buf.split_space(0);
    let mut pieces = Vec::with_capacity(len.div_ceil(SPLIT_CHUNK));
    let mut left = len;
    while left > SPLIT_CHUNK {
        let next = rest.split_off(SPLIT_CHUNK);
        pieces.push(Mutex::new(Some(rest)));
        rest = next;
        left -= SPLIT_CHUNK;
    }
    pieces.push(Mutex::new(Some(rest)));
    let shared = Arc::new(Pieces {
        file: Arc::clone(file),
        at: range.start,
        len,
        pieces,
        next: AtomicUsize::new(0),
        failed: Mutex::new(None),
    });
    let helper = Arc::clone(&shared);
    io_executor::join_blocking(|| shared.read(), move || helper.read());
    // Both threads are done: every piece is back in its slot.
    let mut pieces = shared.pieces.iter().map(|slot| {
        slot.lock()
            .take()
            .expect("a piece is back in its slot once its reader returns")
    });
    let mut whole = pieces.next().expect("a read by two has pieces");
    for piece in pieces {
        whole.unsplit(piece);
    }
    buf.unsplit(whole);
    if let Some(e) = shared.failed.lock().take() {
        return Err(e.with_context("read", format!("{}..{}", range.start, range.end)));
    }
    buf.set_filled(len);
    Ok(buf.freeze())
}

/// The pieces of a read by two, claimed in order by whichever thread is free; the
/// first failure stops both threads.
struct Pieces {
    file: Arc<CachedFile>,
    /// Where the first piece starts in the file.
    at: u64,
    /// How many bytes the pieces read in all (the last piece's space runs on to
    /// the end of the pooled buffer, which may be longer).
    len: usize,
    pieces: Vec<Mutex<Option<SpaceTail>>>,
    next: AtomicUsize,
    failed: Mutex<Option<Error>>,
}

impl Pieces {
    /// Claims and reads pieces until none is left or a read has failed.
    fn read(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = self.pieces.get(i) else {
                return;
            };
            if self.failed.lock().is_some() {
                return;
            }
            let mut piece = slot.lock().take().expect("each piece is claimed once");
            let from = i * SPLIT_CHUNK;
            let len = SPLIT_CHUNK.min(self.len - from);
            let read = fill_at(
                &self.file.fd,
                &mut piece.space()[..len],
                self.at + from as u64,
            );
            *slot.lock() = Some(piece);
            if let Err(e) = read {
                self.failed.lock().get_or_insert(e);
                return;
            }
        }
    }
}

/// The length of a buffer for `range`, or an error if it cannot be had here.
fn buffer_len(range: &Range<u64>) -> Result<usize> {
    usize::try_from(range.end - range.start).map_err(|_| {
        Error::new(ErrorKind::OutOfMemory).with_message("the range does not fit in memory")
    })
}

/// Reads of one batch share a buffer while together they hold at most this much: a
/// storm of 4 KiB reads costs a pooled buffer per 64 reads instead of an allocation,
/// a zero-fill and a free per read, and a slice kept alive pins at most this much.
const SHARED_MAX: usize = 256 << 10;

/// Reads every range of `ranges` (each shorter than [`SHARED_MAX`] or not), in
/// order; consecutive small ones share a pooled buffer of at most [`SHARED_MAX`]
/// and at most `max_buffer_size` bytes, and each result is a zero-copy slice of it.
pub(super) fn read_many_at(
    fd: &OwnedFd,
    ranges: &[Range<u64>],
    pool: &Arc<BufferPool>,
    max_buffer_size: u64,
) -> Result<Vec<Bytes>> {
    let shared_max = usize::try_from(max_buffer_size).map_or(SHARED_MAX, |m| m.min(SHARED_MAX));
    let mut out = Vec::with_capacity(ranges.len());
    let mut rest = ranges;
    while !rest.is_empty() {
        // The longest run from here whose lengths fit in one shared buffer.
        let mut total = 0_usize;
        let mut take = 0;
        for r in rest {
            let len = usize::try_from(r.end - r.start).unwrap_or(usize::MAX);
            if take > 0 && total.saturating_add(len) > shared_max {
                break;
            }
            total = total.saturating_add(len);
            take += 1;
            if total > shared_max {
                break;
            }
        }
        let (run, after) = rest.split_at(take);
        rest = after;
        if let [one] = run {
            out.push(read_exact_at(fd, one.clone(), pool)?);
            continue;
        }
        let mut buf = pool.take(total)?;
        let space = buf.space();
        let mut at = 0;
        for r in run {
            let len = (r.end - r.start) as usize;
            fill_at(fd, &mut space[at..at + len], r.start)?;
            at += len;
        }
        buf.set_filled(total);
        let shared = buf.freeze();
        let mut at = 0;
        for r in run {
            let len = (r.end - r.start) as usize;
            out.push(shared.slice(at..at + len));
            at += len;
        }
    }
    Ok(out)
}

/// As [`read_exact_at`], but only from the page cache: `preadv2(RWF_NOWAIT)`,
/// which returns instead of waiting for the device. `None` (and no error: a
/// blocking read gets and reports it) when a page is not in memory, the file is
/// shorter, the kernel or filesystem has no `RWF_NOWAIT`, or no buffer can be had.
/// A miss starts the kernel's read-ahead without waiting for it; where that is
/// done at once (a hole, or a device faster than the call), the read is served
/// here, so a page just dropped from memory may still come back as `Some`.
///
/// The buffer is pooled like every other read's: recycled, and from 64 KiB up on a
/// page boundary, where the kernel's copy runs at full speed (see [`BufferPool`]).
/// Into a fresh `vec!` (not page-aligned), a scratch program's 10,000 `read_range`
/// futures of 64 KiB each, all served this way, ran at 63 us per read on a 2-core
/// AMD EPYC, pooled at 12 us (one process each); docs/benchmarks.md has the
/// side-by-side runs.
pub(super) fn read_cached_at(
    fd: &OwnedFd,
    range: Range<u64>,
    pool: &Arc<BufferPool>,
) -> Option<Bytes> {
    let len = buffer_len(&range).ok()?;
    let mut buf = pool.take(len).ok()?;
    let space = &mut buf.space()[..len];
    let mut done = 0;
    while done < len {
        match read_in_memory(fd, &mut space[done..], range.start + done as u64) {
            0 => return None,
            n => done += n,
        }
    }
    buf.set_filled(len);
    Some(buf.freeze())
}

/// One `preadv2(RWF_NOWAIT)` into `space` at `offset`, retried if interrupted: the
/// bytes read, or 0 when none could be had without waiting (not in memory:
/// `EAGAIN`), the file ends there, or the kernel or filesystem has no
/// `RWF_NOWAIT`.
fn read_in_memory(fd: &OwnedFd, space: &mut [u8], offset: u64) -> usize {
    loop {
        let mut slices = [std::io::IoSliceMut::new(space)];
        match rustix::io::preadv2(fd, &mut slices, offset, rustix::io::ReadWriteFlags::NOWAIT) {
            Err(Errno::INTR) => {}
            Ok(n) => return n,
            Err(_) => return 0,
        }
    }
}

/// Whether the byte of `fd` at `offset` is in the page cache: a one-byte
/// `preadv2(RWF_NOWAIT)` gets it. `false` when it is not (the kernel then starts
/// its read-ahead without waiting for it), the file ends before it, or the kernel
/// or filesystem has no `RWF_NOWAIT`.
fn in_page_cache(fd: &OwnedFd, offset: u64) -> bool {
    read_in_memory(fd, &mut [0_u8; 1], offset) == 1
}

/// The smallest read that is a bulk job when its pages are in memory (see
/// [`is_cached_copy`]): from here up the copy, not the hand-off, is most of a
/// read's cost (1 MiB out of the page cache takes about 60-100 us).
pub(super) const BULK_READ_MIN: u64 = 1 << 20;

/// Whether reading `range` of `file` is a copy at memory speed, for the executor's
/// bulk jobs ([`IoJob::Bulk`](crate::raw::IoJob::Bulk)): at least
/// [`BULK_READ_MIN`] long, of a file on a local filesystem, whose first and last
/// bytes are in the page cache ([`in_page_cache`]). Anything else, a read that may
/// wait on the device above all, stays a plain blocking job: bulk jobs run a few
/// at a time, and a device read among them would hold up the copies behind it and
/// keep the device's queue short.
///
/// A `Reader`'s chunks are not asked: made bulk, a lone reader's prefetched
/// chunks took turns on one thread, and `dio bench`'s `buf_read` fell from
/// 0.96x-1.25x std to 0.66x-0.80x (AMD EPYC, three alternated pairs of runs).
pub(super) fn is_cached_copy(file: &CachedFile, range: &Range<u64>) -> bool {
    range.end.saturating_sub(range.start) >= BULK_READ_MIN
        && file.local
        && in_page_cache(&file.fd, range.start)
        && in_page_cache(&file.fd, range.end - 1)
}

/// A file that ended before the size it had when it was opened.
fn shrank() -> Error {
    Error::new(ErrorKind::Unexpected).with_message("the file shrank while it was read")
}

/// Fills `space` from `fd` at `offset` with positional reads.
pub(super) fn fill_at(fd: &OwnedFd, space: &mut [u8], offset: u64) -> Result<()> {
    let mut done = 0;
    while done < space.len() {
        match rustix::io::pread(fd, &mut space[done..], offset + done as u64) {
            Ok(0) => {
                return Err(shrank().with_context(
                    "range",
                    format!("{}..{}", offset, offset + space.len() as u64),
                ));
            }
            Ok(n) => done += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
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
///
/// Its name is unguessable (128 random bits), so names never collide across
/// processes, PID reuse included; creation retries on the rare collision. The file
/// holds an exclusive `flock` for as long as it is open, so a sweep
/// ([`remove_stale_temp_files`]) can tell a live write from a crashed process's
/// leftover: the kernel drops the lock when the process dies.
///
/// # Permissions
///
/// The target gets `permissions` if given (a copy's, from its source); else those
/// of the file it replaces, as they are at the commit (or, if it is gone by then,
/// as they were when the write began), so that replacing a `0600` file does not
/// make it readable by others; else, for a new file, `0666` less the process's
/// umask, as `File::create` gives. Only the `0777` bits are carried over:
/// set-user-ID, set-group-ID and sticky bits are dropped, as the kernel drops the
/// first two when a file is written. Until it is in place, the file is open to no
/// one the target was not open to when the write began, and always readable and
/// writable by its owner (so that a sweep can open a crashed writer's leftover,
/// whatever the target's bits); its exact bits are set once it is in place. A file
/// replaced keeps its group where this process may give it that group (root, or a
/// member); else the new file has no group permissions, rather than the target's
/// bits for the writer's group.
#[derive(Debug)]
pub(super) struct TempFile {
    /// The root, and the target's path under it: the commit looks its directory
    /// up again (see [`commit`](Self::commit)).
    root: Arc<OwnedFd>,
    path: String,
    /// The backend's kept files: closed if the commit's lookup runs out of
    /// descriptors, as every open of the backend does.
    files: Arc<FdCache>,
    /// The directory the temporary file is in: the target's when the write began.
    dir: OwnedFd,
    name: String,
    target: String,
    pub(super) fd: OwnedFd,
    /// A copy's permissions, from its source.
    permissions: Option<RawMode>,
    /// The permissions of the file replaced, when the write began.
    replaced: Option<RawMode>,
    /// The file has the group of the file it replaces (or replaces none); if not,
    /// it gets no group permissions.
    group_kept: bool,
    committed: bool,
}

/// Gives new file `fd` group `gid` (the group of the file it replaces); `false`
/// if this process may not (the file then keeps no group permissions).
fn keep_group(fd: &OwnedFd, gid: u32) -> bool {
    if rustix::fs::fstat(fd).is_ok_and(|stat| stat.st_gid == gid) {
        return true;
    }
    let group = rustix::fs::Gid::from_raw(gid);
    rustix::fs::fchown(fd, None, Some(group)).is_ok()
}

impl TempFile {
    /// Creates a temporary file for target `path`, creating parent directories;
    /// see [`TempFile`] for the `permissions` the target gets.
    pub(super) fn create(
        root: &Arc<OwnedFd>,
        files: &Arc<FdCache>,
        path: &str,
        permissions: Option<RawMode>,
    ) -> Result<Self> {
        not_reserved_path(path)?;
        let mut dir = ensure_dir(root, parent_dir(path))?;
        let target = file_name(path).to_owned();
        let existing = match rustix::fs::statat(&dir, target.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(stat),
            Err(Errno::NOENT) => None,
            // A name the filesystem cannot hold (or that cannot be looked at) is
            // refused now, before any data is written, not at the commit.
            Err(e) => return Err(e.into()),
        };
        // Refuse early, before any data is written, if the target is a directory,
        // or a symlink to one (a file, or a link leading nowhere, is replaced).
        if existing.as_ref().is_some_and(is_dir) || is_link_to_dir(root, path, existing.as_ref())? {
            return Err(Error::new(ErrorKind::IsADirectory));
        }
        let replaced = existing.as_ref().and_then(file_permissions);
        // The umask may only narrow this; the exact bits are set at the commit.
        let mode = permissions
            .or(replaced)
            .map_or(0o666, |bits| (bits & 0o777) | 0o600);
        // A file replaced: no group permissions until the new file has the
        // replaced one's group (see `keep_group`).
        let full_mode = mode;
        let mode = if replaced.is_some() {
            mode & !0o070
        } else {
            mode
        };
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let (mut attempts, mut remade) = (0, 0);
        loop {
            attempts += 1;
            let name = format!("{TEMP_PREFIX}{:032x}", fastrand::u128(..));
            let fd = match rustix::fs::openat(&dir, name.as_str(), flags, Mode::from_raw_mode(mode))
            {
                Ok(fd) => fd,
                Err(Errno::EXIST) if attempts < 8 => continue,
                // The directory was removed since it was opened (an empty one,
                // deleted by a clean-up running beside this write): made again.
                Err(Errno::NOENT) if remade < REMADE_MAX => {
                    remade += 1;
                    attempts -= 1;
                    dir = ensure_dir(root, parent_dir(path))?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            // A sweep that got to the fresh file first holds its lock, or has removed
            // it already: leave it to the sweep and take another name. A filesystem
            // that refuses locks (`ENOLCK`, `EOPNOTSUPP`: some NFS, CIFS and 9p
            // mounts) cannot mark a write in progress, which a sweep would then take
            // for a crashed one's leftover: the write fails, saying so, and leaves
            // no file behind.
            let locked = match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => true,
                Err(Errno::WOULDBLOCK | Errno::INTR) => false,
                Err(e) => {
                    let err = Error::from(e).with_message(
                        "cannot lock a temporary file (flock), which marks a write in progress",
                    );
                    return Err(
                        match rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty()) {
                            Ok(()) => err,
                            Err(unlinked) => err.with_context(
                                "left behind",
                                format!("{name} (its removal failed: {unlinked})"),
                            ),
                        },
                    );
                }
            };
            if locked && same_file(&dir, name.as_str(), &fd) {
                // A file replaced keeps its group too, where this process may give
                // it (a member of it, or root); where it may not, its group bits
                // are dropped: a `0640` file of group `secret` replaced by a writer
                // of group `users` is never readable by `users`.
                let group_kept = match existing.as_ref().filter(|_| replaced.is_some()) {
                    // Its group now the target's: the group bits come back, so that
                    // the file is never in place without them (its exact bits are
                    // set at the commit).
                    Some(target) => {
                        let kept = keep_group(&fd, target.st_gid);
                        if kept {
                            let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(full_mode));
                        }
                        kept
                    }
                    None => true,
                };
                return Ok(Self {
                    root: Arc::clone(root),
                    path: path.to_owned(),
                    files: Arc::clone(files),
                    dir,
                    name,
                    target,
                    fd,
                    permissions,
                    replaced,
                    group_kept,
                    committed: false,
                });
            }
            if attempts >= 8 {
                return Err(Error::new(ErrorKind::Unexpected)
                    .with_message("cannot create a temporary file: every name was taken"));
            }
        }
    }

    /// Moves the temporary file over the target, atomically; with `no_replace`, only
    /// if the target does not exist ([`ErrorKind::AlreadyExists`] otherwise, and the
    /// target is untouched). With `sync`, the data and the directory entry are on
    /// disk when this returns.
    ///
    /// The target's directory is looked up again first: one renamed away during
    /// the write (a table swapped for a new one: `mv t t.old; mkdir t`) keeps the
    /// temporary file, and the file goes where the path names now, as on an
    /// object store, not into the old directory with a success that the path
    /// does not show; one renamed away with none in its place is made again, as
    /// a write to a new path makes its directories.
    ///
    /// # Errors
    ///
    /// A commit that fails before the rename removes the temporary file; where that
    /// fails too, the error's [`ABORT_FAILED`] context says so.
    pub(super) fn commit(mut self, sync: bool, no_replace: bool) -> Result<Metadata> {
        match self.put_in_place(sync, no_replace) {
            Err(e) if !self.committed => Err(self.discard_after(e)),
            done => done,
        }
    }

    /// [`commit`](Self::commit)'s work: `committed` is set once the rename is done.
    fn put_in_place(&mut self, sync: bool, no_replace: bool) -> Result<Metadata> {
        let parent = parent_dir(&self.path);
        // Kept files must not fail a write whose data is written.
        let here = self.files.relieved(|| ensure_dir(&self.root, parent))?;
        let to = if same_dir(&here, &self.dir) {
            None
        } else {
            Some(here)
        };
        let to_dir = to.as_ref().unwrap_or(&self.dir);
        // The target's permissions as they are now (a `chmod` during a long write
        // is kept), set exactly (`fchmod` is not masked by the umask) once the file
        // is in place: until then it stays its owner's to read, so that even a
        // crash here leaves a leftover a sweep can open.
        let now = rustix::fs::statat(to_dir, self.target.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .as_ref()
            .and_then(file_permissions);
        let stat = rustix::fs::fstat(&self.fd)?;
        let bits = self
            .permissions
            .or(now)
            .or(self.replaced)
            .map(|bits| bits & 0o777)
            .map(|bits| if self.group_kept { bits } else { bits & !0o070 })
            .filter(|&bits| stat.st_mode & 0o777 != bits);
        // Narrowed before the rename to what the exact bits allow (but its owner's
        // reading and writing): a `chmod` that took rights away during the write
        // holds from the new content's first moment in place, not from the
        // `fchmod` after it.
        if let Some(bits) = bits {
            let temp_bits = stat.st_mode & 0o777;
            let narrowed = temp_bits & (bits | 0o600);
            if narrowed != temp_bits {
                rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(narrowed)).map_err(|e| {
                    Error::from(e).with_message(format!(
                        "the file could not be given permissions {narrowed:o} before it is \
                         put in place (nothing was changed)"
                    ))
                })?;
            }
        }
        if sync {
            rustix::fs::fsync(&self.fd)?;
        } else if sends_data_at_close(&self.fd) {
            // An NFS or FUSE client may send the data only when the file is
            // closed, after the rename: another client could open the new name
            // before its data is there, and an error the server gives for the data
            // (a quota, a full disk) would come with a close nobody reads. The data
            // goes first, its error with it.
            rustix::fs::fdatasync(&self.fd)?;
        }
        if no_replace {
            rename_no_replace(&self.dir, &self.name, to_dir, &self.target)?;
        } else {
            rustix::fs::renameat(&self.dir, self.name.as_str(), to_dir, self.target.as_str())?;
        }
        self.committed = true;
        // The new content is in place from here on: an error says so (`stored`).
        let settle = || -> Result<()> {
            if let Some(bits) = bits {
                rustix::fs::fchmod(&self.fd, Mode::from_raw_mode(bits)).map_err(|e| {
                    Error::from(e).with_message(format!(
                        "the file was written, but its permissions could not be set to {bits:o}"
                    ))
                })?;
                if sync {
                    rustix::fs::fsync(&self.fd)?;
                }
            }
            if sync {
                rustix::fs::fsync(to_dir)?;
            }
            Ok(())
        };
        settle().map_err(|e| e.with_context("stored", "yes"))?;
        Ok(metadata(&stat))
    }
}

/// The permission bits of a regular file (none for a directory, a symlink, ...).
fn file_permissions(stat: &Stat) -> Option<RawMode> {
    (FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile).then_some(stat.st_mode)
}

impl TempFile {
    /// After `failure` (of a chunk's write, or a commit before its rename), removes
    /// the temporary file; where that fails too, `failure` says so in its
    /// [`ABORT_FAILED`] context, as [`RawWrite`](crate::raw::RawWrite) asks.
    pub(super) fn discard_after(self, failure: Error) -> Error {
        match self.discard() {
            Ok(()) => failure,
            Err(left) => failure.with_context(ABORT_FAILED, left.to_string()),
        }
    }

    /// Calls the write off: removes the temporary file.
    ///
    /// # Errors
    ///
    /// The file could not be removed (a directory made immutable or read-only
    /// since): it stays, hidden from listings, and the sweep of crashed writers'
    /// leftovers removes it once it can.
    pub(super) fn discard(mut self) -> Result<()> {
        // Removed here or not at all: the drop has nothing left to do.
        self.committed = true;
        match rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::from(e).with_message(
                "the write's temporary file could not be removed (it is hidden from \
                 listings; a later sweep removes it)",
            )),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Whether `fd`'s filesystem is a network or FUSE one, whose client may send a
/// file's data to the server only when it is closed: NFS, SMB/CIFS, Ceph, 9p,
/// AFS, FUSE (object-store mounts among them). One that cannot be asked counts as
/// one.
fn sends_data_at_close(fd: &OwnedFd) -> bool {
    const REMOTE: [rustix::fs::FsWord; 8] = [
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x00C3_6400, // Ceph
        0x0102_1997, // 9p
        0x6B41_4653, // AFS
        0x6573_5546, // FUSE
    ];
    rustix::fs::fstatfs(fd).map_or(true, |s| REMOTE.contains(&s.f_type))
}

/// Whether two `stat`s are of the same file (a failed one is of none).
pub(super) fn same_inode(a: rustix::io::Result<Stat>, b: rustix::io::Result<Stat>) -> bool {
    matches!((a, b), (Ok(a), Ok(b)) if a.st_ino == b.st_ino && a.st_dev == b.st_dev)
}

/// Whether `a` and `b` are the same directory.
pub(super) fn same_dir(a: &OwnedFd, b: &OwnedFd) -> bool {
    same_inode(rustix::fs::fstat(a), rustix::fs::fstat(b))
}

/// `true` if `name` in `dir` is the file `fd` has open.
fn same_file(dir: &impl AsFd, name: impl rustix::path::Arg, fd: &OwnedFd) -> bool {
    same_inode(
        rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        rustix::fs::fstat(fd),
    )
}

/// Renames `from` to `to` only if `to` does not exist, atomically:
/// `renameat2(RENAME_NOREPLACE)`, or where the filesystem lacks it, a hard link
/// (which fails if `to` exists) and an unlink of `from`.
pub(super) fn rename_no_replace(
    from_dir: &OwnedFd,
    from: &str,
    to_dir: &OwnedFd,
    to: &str,
) -> Result<()> {
    let exists = || {
        let err = Error::new(ErrorKind::AlreadyExists);
        // A symlink whose target is missing is not there to `stat`, `exists` and
        // listings, but its name is taken: say so, or nothing would explain it.
        match rustix::fs::statat(to_dir, to, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => err
                .with_message(
                    "a symlink has that name (stat, exists and listings show what it leads \
                     to, and do not show it at all if that is missing; delete it to write \
                     there)",
                ),
            _ => err,
        }
    };
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => Err(exists()),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            match rustix::fs::linkat(from_dir, from, to_dir, to, AtFlags::empty()) {
                Ok(()) => {}
                Err(Errno::EXIST) => return Err(exists()),
                Err(e) => return Err(e.into()),
            }
            rustix::fs::unlinkat(from_dir, from, AtFlags::empty())?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes the temporary files in `dir` whose writer is gone (a crashed or killed
/// process: nobody holds their lock); live writes, and anything of that name but a
/// regular file, are left alone. Returns how many were removed.
pub(super) fn remove_stale_temp_files_in(dir: &OwnedFd) -> Result<u64> {
    let mut temps = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        if entry.file_name().to_str().is_ok_and(is_temp_name) {
            temps.push(entry.file_name().to_owned());
        }
    }
    let mut removed = 0;
    for name in temps {
        if remove_if_stale(dir, &name)? == Some(true) {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes the temporary file `name` in `dir` if its writer is gone: `Some(true)`
/// when removed, `Some(false)` when not there, `None` when it is a write in
/// progress (or not a temporary file of ours), left alone. Its lock is held until
/// it is removed: a writer that made a file of that name just now cannot take it
/// meanwhile (it takes another name), and its `same_file` check then finds it gone.
fn remove_if_stale(dir: &impl AsFd, name: &CStr) -> Result<Option<bool>> {
    let fd = match temp_file(dir, name)? {
        Temp::Live => return Ok(None),
        Temp::Absent => return Ok(Some(false)),
        Temp::Stale(fd) => fd,
    };
    if !same_file(dir, name, &fd) {
        // Replaced since it was opened: a new file of that name, not the one
        // whose lock is held.
        return Ok(None);
    }
    let removed = match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => true,
        Err(Errno::NOENT) => false,
        Err(e) => return Err(e.into()),
    };
    drop(fd);
    Ok(Some(removed))
}

/// Removes `name` in directory `parent`: a file, or a directory and everything in
/// it. Symlinks are removed, never followed. The temporary file of a write in
/// progress is left, and so are the directories that hold one (the write commits
/// there, as it would on an object store after the keys were deleted), and what
/// writes beside this one keep putting in a directory after it was cleared;
/// `true` when something was left for that reason.
///
/// `budget` is how many more times the whole removal may clear a directory again
/// ([`CLEARED_AGAIN_MAX`] to begin with), shared by every level.
pub(super) fn remove_tree(parent: &impl AsFd, name: &CStr, budget: &mut u32) -> Result<bool> {
    // Only a regular file of that name is a write's temporary file: a directory
    // or a symlink of the form is someone else's, removed as any other.
    if name.to_str().is_ok_and(is_temp_name)
        && rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|s| is_regular(&s))
    {
        return Ok(remove_if_stale(parent, name)?.is_none());
    }
    loop {
        // `unlink` of a directory fails with `EISDIR`, or with `EPERM` as POSIX
        // allows; `EPERM` is also a file that may not be removed (immutable,
        // append-only).
        let unlinked = match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => return Ok(false),
            Err(e @ (Errno::ISDIR | Errno::PERM)) => e,
            Err(e) => return Err(e.into()),
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(false),
            // Not a directory after all: the file's own `EPERM` is the answer.
            Err(Errno::NOTDIR | Errno::LOOP) if unlinked == Errno::PERM => {
                return Err(unlinked.into());
            }
            // A directory when it was unlinked, something else now (a file or a
            // symlink put in its place): unlinked next time.
            Err(Errno::NOTDIR | Errno::LOOP) if *budget > 0 => {
                *budget -= 1;
                continue;
            }
            Err(Errno::NOTDIR | Errno::LOOP) => {
                return Err(Error::new(ErrorKind::Unexpected)
                    .set_temporary(true)
                    .with_message("an entry kept being replaced while it was removed"));
            }
            Err(e) => return Err(e.into()),
        };
        if clear_dir(&dir, budget)? {
            return Ok(true);
        }
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => return Ok(false),
            // A write beside this one made something there after it was cleared,
            // or made the directory again after a clean-up removed it (then the
            // name is another directory than the one cleared): looked up and
            // cleared again. Writes that keep filling it are left their files, as
            // writes made after an object store's keys were listed keep theirs.
            Err(Errno::NOTEMPTY) if *budget > 0 => *budget -= 1,
            Err(Errno::NOTEMPTY) => return Ok(true),
            Err(e) => return Err(e.into()),
        }
    }
}

/// How many times one removal of a tree ([`remove_tree`], [`clear_dir`]) looks a
/// directory up and clears it again that writes beside it filled meanwhile, in
/// all the tree, before it leaves them what they wrote.
pub(super) const CLEARED_AGAIN_MAX: u32 = 8;

/// What a temporary file is to a clean-up.
enum Temp {
    /// Not there (any more).
    Absent,
    /// A write in progress (its writer holds the lock), or something to leave alone:
    /// not a regular file (someone else's), or a file that cannot be opened or
    /// locked for another reason than a lack of descriptors.
    Live,
    /// Its writer is gone (a crashed or killed process): its lock is taken, and
    /// held while this descriptor is open.
    Stale(OwnedFd),
}

/// Opens the temporary file `name` in `dir` and tries its writer's lock.
///
/// # Errors
///
/// Out of descriptors: the caller runs again once kept files are closed, rather
/// than take a live write's file for a leftover, or skip a leftover.
fn temp_file(dir: &impl AsFd, name: &CStr) -> Result<Temp> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Temp::Absent),
        Err(e @ (Errno::MFILE | Errno::NFILE)) => return Err(e.into()),
        Err(_) => return Ok(Temp::Live),
    };
    // A temporary file is a regular file: anything else of that name (which no
    // write makes) is someone else's.
    let regular = rustix::fs::fstat(&fd).is_ok_and(|stat| file_permissions(&stat).is_some());
    if regular && rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
        Ok(Temp::Stale(fd))
    } else {
        Ok(Temp::Live)
    }
}

/// Removes everything inside the directory `dir` but writes in progress (see
/// [`remove_tree`], which `budget` is for); `true` when such a write was left.
pub(super) fn clear_dir(dir: &OwnedFd, budget: &mut u32) -> Result<bool> {
    let mut names = Vec::new();
    let mut reader = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = reader.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    // Its descriptor closed before the levels below open theirs: a deep tree
    // holds one descriptor a level, not two.
    drop(reader);
    let mut left = false;
    for name in names {
        left |= remove_tree(dir, &name, budget)?;
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;
    use std::os::unix::fs::FileExt;

    use super::*;

    /// A file of `len` bytes, each a function of its offset, open as a cached file.
    fn file_of(dir: &std::path::Path, len: usize) -> (Arc<CachedFile>, Vec<u8>) {
        let data: Vec<u8> = (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let path = dir.join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all_at(&data, 0)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let stat = rustix::fs::fstat(&file).unwrap();
        (
            Arc::new(CachedFile::new(OwnedFd::from(file), &stat, true)),
            data,
        )
    }

    /// Runs `f` on a blocking thread of a pool with a second one free, so the other
    /// thread of a read by two may take pieces (whether it does is up to timing;
    /// the results must not depend on it).
    fn on_pool<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let pool = io_executor::Builder::new()
            .name("core-test")
            .worker_threads(NonZeroUsize::MIN)
            .blocking_threads(NonZeroUsize::new(2).unwrap())
            .build()
            .unwrap();
        let out = pool.spawn_blocking(f).join().unwrap();
        pool.blocking_join();
        out
    }

    #[test]
    fn a_read_by_two_fills_every_piece_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let (file, data) = file_of(dir.path(), (11 << 20) + 777);
        let pool = BufferPool::new(64 << 20);
        let range = 3..(11 << 20) + 700_u64;
        let got = on_pool({
            let range = range.clone();
            move || read_exact_at_by_two(&file, range, &pool)
        })
        .unwrap();
        assert!(got == data[range.start as usize..range.end as usize]);
    }

    #[test]
    fn a_read_by_two_that_fails_from_its_first_piece_names_the_range() {
        // Even the first piece fails: the read fails, naming the range.
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = file_of(dir.path(), 9 << 20);
        let pool = BufferPool::new(64 << 20);
        let err = on_pool(move || read_exact_at_by_two(&file, (10 << 20)..(20 << 20), &pool))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected);
        assert_eq!(
            err.context("read"),
            Some(format!("{}..{}", 10 << 20, 20 << 20).as_str())
        );
    }

    #[test]
    fn a_read_by_two_past_the_end_of_the_file_fails_with_the_range() {
        // The file is shorter than the read (as when it shrinks while it is read):
        // the pieces past its end fail, and so does the read, never short data.
        let dir = tempfile::tempdir().unwrap();
        let (file, _) = file_of(dir.path(), (9 << 20) + 5);
        let pool = BufferPool::new(64 << 20);
        let err = on_pool(move || read_exact_at_by_two(&file, 0..12 << 20, &pool)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected);
        assert!(err.to_string().contains("shrank"), "{err}");
        assert_eq!(
            err.context("read"),
            Some(format!("0..{}", 12 << 20).as_str())
        );
    }
}
