//! Benchmark workloads, defined once and shared by the criterion benches and the
//! `dio bench` command.
//!
//! [`fs::Fixture`] holds every method under test (our `Operator` in its three
//! executor modes, std, `tokio::fs`, OpenDAL and object_store) over the same files;
//! [`fs::Fixture::run`] performs one iteration of a [`fs::Workload`] with a
//! [`fs::Method`] and returns the bytes it moved.

pub mod fs;
pub mod isolation;
pub mod mem_s3;
pub mod memory;
#[cfg(feature = "query")]
pub mod query;
pub mod s3;
pub mod scale;
pub mod storm;

/// Set once a run is to stop (the CLI's first Ctrl-C): a fixture's long set-up
/// (a file of a GiB or more, an upload) stops between its pieces, and removes
/// what it made, as a run stopped between measurements does.
static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks every set-up under way, and every one to come, to stop ([`stopped`]).
pub fn stop() {
    STOPPED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// `Err("interrupted")` once [`stop`] was called.
///
/// # Errors
///
/// "interrupted", once the run is to stop.
pub fn stopped() -> Result<(), String> {
    if STOPPED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err("interrupted".to_owned());
    }
    Ok(())
}

/// The dedicated pool ours runs on in every side-by-side workload (the criterion
/// benches and `dio bench`): 2 workers and 16 blocking threads, named `name`.
///
/// # Errors
///
/// A one-line message if the pool's threads cannot be started.
pub fn dedicated_pool(name: &str) -> Result<io_executor::Executor, String> {
    use std::num::NonZeroUsize;
    io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(2).expect("2"))
        .blocking_threads(NonZeroUsize::new(16).expect("16"))
        .build()
        .map_err(|e| format!("cannot start the dedicated pool: {e}"))
}

/// Writes `data` to `path` and waits until it is on disk (`fsync`).
///
/// Every fixture writes its files this way before it measures reads: a file written
/// with a plain `write` still has its dirty pages queued for writeback, and the
/// kernel flushing them (and the writeback throttling a reader can be caught in)
/// would land in whichever method happens to be measured first.
///
/// # Errors
///
/// The error of the create, write or sync that failed.
pub fn write_synced(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    std::io::Write::write_all(&mut file, data)?;
    file.sync_all()
}

/// Whether the filesystem of `dir` has room for `needed` more bytes (what an
/// unprivileged process may use), checked before a fixture writes its files: a
/// run asked for more than the disk holds fails at once, with the figures, instead
/// of filling the disk first.
///
/// # Errors
///
/// A message naming `what`, the directory, both sizes and the option that asks
/// for less (`smaller`, such as `--size`) when there is not room, or why the
/// filesystem could not be asked.
pub fn check_free_space(
    dir: &std::path::Path,
    needed: u64,
    what: &str,
    smaller: &str,
) -> Result<(), String> {
    let stat = rustix::fs::statvfs(dir)
        .map_err(|e| format!("cannot ask how much space {} has: {e}", dir.display()))?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if needed <= free {
        return Ok(());
    }
    Err(format!(
        "{what} needs {:.2} GiB in {}, which has {:.2} GiB free: use a smaller {smaller}, \
         or set TMPDIR to a directory on a larger filesystem",
        gib(needed),
        dir.display(),
        gib(free)
    ))
}

/// Whether `dir` is on a tmpfs, whose files are memory: a file written there needs
/// the memory as well as the space.
pub fn in_memory(dir: &std::path::Path) -> bool {
    /// `TMPFS_MAGIC` in `linux/magic.h`.
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    rustix::fs::statfs(dir)
        .is_ok_and(|stat| u64::try_from(stat.f_type).is_ok_and(|kind| kind == TMPFS_MAGIC))
}

/// Checks that about `needed` bytes of memory are available (`MemAvailable` in
/// `/proc/meminfo`) before `what` allocates them: a run that would not fit says so,
/// where the kernel's out-of-memory killer would end it without a word. Where the
/// figure cannot be read (not Linux), it passes.
///
/// # Errors
///
/// A message naming `what`, what it needs, what is available and the option that
/// asks for less (`smaller`, such as `--size`).
pub fn check_free_memory(needed: u64, what: &str, smaller: &str) -> Result<(), String> {
    let Some(available) = mem_available() else {
        return Ok(());
    };
    if needed <= available {
        return Ok(());
    }
    Err(format!(
        "{what} needs about {:.2} GiB of memory, and this machine has {:.2} GiB \
         available: use a smaller {smaller}",
        gib(needed),
        gib(available)
    ))
}

/// [`check_free_space`] in `dir` and [`check_free_memory`], each for `needed`
/// bytes: a file of that size, built in memory, then written to `dir`.
///
/// # Errors
///
/// As theirs.
pub fn check_room_for_file(
    dir: &std::path::Path,
    needed: u64,
    what: &str,
    smaller: &str,
) -> Result<(), String> {
    check_free_space(dir, needed, what, smaller)?;
    check_free_memory(needed, what, smaller)
}

/// `MemAvailable` in bytes, if the kernel says.
fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// `bytes` in GiB, for messages.
fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 30)
}

/// What a run says when `what` of object or file `name` failed with the error it
/// is given.
pub(crate) fn failed<E: std::fmt::Display>(
    what: &'static str,
    name: &str,
) -> impl FnOnce(E) -> String {
    let name = name.to_owned();
    move |e| format!("{what} {name:?}: {e}")
}

/// `moved` if it is the `expected` number of bytes a run of `what` (its method and
/// workload) moves, else an error that says both.
///
/// # Errors
///
/// A line naming `what` and both counts.
pub fn check_moved(what: impl std::fmt::Display, moved: u64, expected: u64) -> Result<u64, String> {
    if moved == expected {
        return Ok(moved);
    }
    Err(format!("{what}: moved {moved} bytes, not {expected}"))
}

/// `err` and every cause under it, on one line: `a: b: c`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What a read returned, in its own form: OpenDAL's `Buffer` is a list of
/// frames, made contiguous only to be compared (each fixture's `check`), never
/// in a timed run.
pub(crate) enum Got {
    Bytes(bytes::Bytes),
    Buffer(opendal::Buffer),
}

impl Got {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Got::Bytes(b) => b.len() as u64,
            Got::Buffer(b) => b.len() as u64,
        }
    }

    pub(crate) fn to_bytes(&self) -> bytes::Bytes {
        match self {
            Got::Bytes(b) => b.clone(),
            Got::Buffer(b) => b.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What this machine has passes; far more than any machine has is a clear
    /// error naming what needed it (on Linux, where the kernel says how much is
    /// available).
    #[test]
    fn memory_a_run_cannot_have_is_an_error_that_says_so() {
        assert!(check_free_memory(1 << 20, "a small run", "--size").is_ok());
        if mem_available().is_none() {
            return;
        }
        let err = check_free_memory(u64::MAX / 2, "a huge run", "--file-size").unwrap_err();
        assert!(
            err.starts_with("a huge run needs about")
                && err.ends_with("GiB available: use a smaller --file-size"),
            "{err}"
        );
    }
}
