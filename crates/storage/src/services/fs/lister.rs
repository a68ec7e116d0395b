//! [`FsLister`]: a directory walk, a page per job.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, RawMode, Stat};

use rustix::io::Errno;

use super::core::{is_dir, is_regular, is_temp_name, metadata, open_in_root};
use super::fd_cache::FdCache;
use crate::raw::{IoJob, ListArgs, RawList};
use crate::{Entry, Error, ErrorKind, Result};

const PAGE: usize = 1000;

/// Walks a directory (depth first when recursive), up to a page of entries per job.
///
/// Symlinks are listed as what they point to, resolved inside the root (no
/// escapes); a recursive listing walks into a symlinked directory, as
/// object_store's `LocalFileSystem` does, unless the walk is already inside it (a
/// cycle, such as `link -> ..`: listed, not entered). A file below a link is listed
/// under each name that leads to it. A dangling symlink is skipped, and so are
/// FIFOs, sockets and devices (and links to them), as object_store's
/// `LocalFileSystem` skips them: no object, and one whose read is refused. An entry that
/// vanishes while the directory is read (another process renamed or deleted it) is
/// skipped. With `start_after`, entries that do not sort after it are left out (a
/// directory walk has no order to skip by). Temporary files of writes (regular
/// files of the form `is_temp_name` matches) are hidden; a directory or a symlink
/// of that name, which no write makes, is listed. A subdirectory is opened in the
/// directory being read, so a tree swapped for another midway is walked as the one
/// it began in (a symlinked directory is still looked up by its path).
#[derive(Debug)]
pub(super) struct FsLister {
    root: Arc<OwnedFd>,
    /// The backend's kept files, closed when a directory cannot be opened for
    /// want of descriptors (they must never be why a listing fails).
    files: Arc<FdCache>,
    /// Directories being read: their path (with trailing `/`), their stream, and
    /// which directory each is (device, inode), so that a symlink back to one of
    /// them is not walked into again.
    stack: Vec<(String, Dir, DirId)>,
    args: ListArgs,
}

impl FsLister {
    pub(super) fn new(
        root: Arc<OwnedFd>,
        files: Arc<FdCache>,
        path: &str,
        dir: Option<OwnedFd>,
        args: ListArgs,
    ) -> Result<Self> {
        let stack = match dir {
            Some(fd) => {
                let id = dir_id(&rustix::fs::fstat(&fd)?);
                vec![(path.to_owned(), Dir::new(fd)?, id)]
            }
            None => Vec::new(),
        };
        Ok(Self {
            root,
            files,
            stack,
            args,
        })
    }

    /// Walks into directory `fd` (whose `stat` is given), listed as `dir_path`,
    /// unless the walk is inside it already: a cycle, through a link (or a bind
    /// mount). Every directory walked into is checked, by the descriptor opened, so
    /// a link changed during the walk cannot slip a cycle in either.
    fn walk_into(&mut self, dir_path: &str, fd: OwnedFd, stat: &Stat) -> Result<()> {
        let id = dir_id(stat);
        if self.stack.iter().any(|(_, _, open)| *open == id) {
            tracing::debug!(path = %dir_path, "not walking into a directory the walk is inside");
            return Ok(());
        }
        self.stack.push((dir_path.to_owned(), Dir::new(fd)?, id));
        Ok(())
    }

    /// The next page. An error names the directory or entry it is about (the
    /// listing's own path would not say where, deep in a recursive walk).
    fn page(&mut self) -> Result<Vec<Entry>> {
        let mut at = String::new();
        self.page_noting(&mut at).map_err(|e| e.with_path(at))
    }

    /// [`page`](Self::page), keeping in `at` the path each step is about.
    fn page_noting(&mut self, at: &mut String) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        while entries.len() < PAGE {
            let Some((prefix, dir, _)) = self.stack.last_mut() else {
                break;
            };
            at.clear();
            at.push_str(prefix);
            let Some(entry) = dir.read() else {
                self.stack.pop();
                continue;
            };
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                tracing::warn!(dir = %prefix, "skipping a file name that is not UTF-8");
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let path = format!("{prefix}{name}");
            at.clear();
            at.push_str(&path);
            // Some filesystems do not say an entry's type when listing (NFS's plain
            // READDIR, XFS without `ftype`, some FUSE): ask, or a directory would
            // never be walked into and a symlink never followed.
            let file_type = known_type(entry.file_type(), || {
                rustix::fs::statat(dir.fd()?, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|stat| stat.st_mode)
                    .map_err(Error::from)
            });
            let file_type = match vanished_is_none(file_type)? {
                Some(file_type) => file_type,
                None => continue,
            };
            // Another write's work in progress, or a crashed one's leftover: always
            // a regular file. Anything else of that name is someone else's.
            if file_type == FileType::RegularFile && is_temp_name(name) {
                continue;
            }
            let entry = match file_type {
                // Walked into; a directory in a listing that does not recurse is
                // looked at as any other entry (`_`).
                FileType::Directory if self.args.recursive => {
                    let dir_path = format!("{path}/");
                    at.push('/');
                    // Opened in the directory being read, not by its path from
                    // the root: a directory swapped for another meanwhile (`mv
                    // t t.old; mkdir t`) is walked as it was, never its files
                    // from one and its subdirectories from the other. A direct
                    // child, not followed if a link: inside the root.
                    // One that no call could name (a tree made deeper than
                    // a path may be long) is not walked into: an error,
                    // where its entries would be listed under paths every
                    // call refuses.
                    if dir_path.len() > crate::raw::MAX_PATH_LEN {
                        return Err(Error::new(ErrorKind::InvalidInput)
                            .with_message(crate::raw::too_long_message(dir_path.len())));
                    }
                    let flags =
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                    let fd = match self
                        .files
                        .relieved(|| Ok(rustix::fs::openat(dir.fd()?, name, flags, Mode::empty())?))
                    {
                        Ok(fd) => fd,
                        // Removed, or replaced by a file or a link, since the
                        // directory was read: gone as a directory, as an entry
                        // removed meanwhile is.
                        Err(e) if dangling(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    let stat = rustix::fs::fstat(&fd)?;
                    self.walk_into(&dir_path, fd, &stat)?;
                    Entry::new(dir_path, metadata(&stat))
                }
                FileType::Symlink => {
                    // Resolved inside the root, like every other lookup. A link
                    // that leads nowhere (missing, through a file, or round a
                    // loop of links) is skipped; any other failure fails the
                    // listing, never hides a subtree.
                    let fd = match self
                        .files
                        .relieved(|| open_in_root(&self.root, &path, OFlags::PATH))
                    {
                        Ok(fd) => fd,
                        Err(e) if dangling(&e) => continue,
                        Err(e) => return Err(e),
                    };
                    let stat = rustix::fs::fstat(&fd)?;
                    if !is_dir(&stat) {
                        if !is_regular(&stat) {
                            continue;
                        }
                        Entry::new(path, metadata(&stat))
                    } else {
                        let dir_path = format!("{path}/");
                        at.push('/');
                        if self.args.recursive {
                            // The directory that lookup found, not a second lookup.
                            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
                            let dir = self.files.relieved(|| {
                                Ok(rustix::fs::openat(&fd, ".", flags, Mode::empty())?)
                            })?;
                            let dir_stat = rustix::fs::fstat(&dir)?;
                            self.walk_into(&dir_path, dir, &dir_stat)?;
                        }
                        Entry::new(dir_path, metadata(&stat))
                    }
                }
                // A FIFO, a socket, a device: no object. (Read by its path, it
                // is refused, `open_file`; a scan that listed it would fail.)
                FileType::Fifo
                | FileType::Socket
                | FileType::CharacterDevice
                | FileType::BlockDevice => continue,
                // A file `start_after` leaves out is not looked at (a listing
                // that starts far into a large tree skips most of it).
                FileType::RegularFile if !self.args.wants(&path) => continue,
                _ => {
                    let stat = match rustix::fs::statat(dir.fd()?, name, AtFlags::SYMLINK_NOFOLLOW)
                    {
                        Ok(stat) => stat,
                        Err(Errno::NOENT) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let path = if is_dir(&stat) {
                        format!("{path}/")
                    } else {
                        path
                    };
                    Entry::new(path, metadata(&stat))
                }
            };
            // An entry no call could name (a name that makes a path, or a
            // directory's path with its `/`, longer than a path may be) fails
            // the listing, as a directory too deep to walk into does.
            if entry.path().len() > crate::raw::MAX_PATH_LEN {
                return Err(Error::new(ErrorKind::InvalidInput)
                    .with_message(crate::raw::too_long_message(entry.path().len())));
            }
            if self.args.wants(entry.path()) {
                entries.push(entry);
            }
        }
        Ok(entries)
    }
}

/// Which directory a `stat` is of.
type DirId = (u64, u64);

#[allow(
    clippy::unnecessary_cast,
    reason = "`st_dev` and `st_ino` are not `u64` on every target"
)]
fn dir_id(stat: &Stat) -> DirId {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// `listed`, or when the listing did not say ([`FileType::Unknown`]), the type of
/// the mode `stat` finds (without following a symlink).
pub(crate) fn known_type(
    listed: FileType,
    stat: impl FnOnce() -> Result<RawMode>,
) -> Result<FileType> {
    match listed {
        FileType::Unknown => stat().map(FileType::from_raw_mode),
        known => Ok(known),
    }
}

/// Whether a symlink's lookup failed because it leads nowhere: its target is
/// missing, passes through a file (`ENOTDIR`, as a read of it says `NotFound`),
/// or is a loop of links (`ELOOP`, which is `NotFound` too).
pub(super) fn dangling(err: &Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// `None` for an entry that was removed since the directory was read.
fn vanished_is_none<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl RawList for FsLister {
    fn next_page(mut self: Box<Self>) -> IoJob<(Box<dyn RawList>, Vec<Entry>)> {
        if self.stack.is_empty() {
            return IoJob::ready(Ok((self, Vec::new())));
        }
        IoJob::blocking(move || {
            let page = self.page()?;
            Ok((self as Box<dyn RawList>, page))
        })
    }

    fn close(self: Box<Self>) -> IoJob<()> {
        if self.stack.is_empty() {
            return IoJob::ready(Ok(()));
        }
        // Open directory streams: close them on the executor.
        IoJob::blocking(move || {
            drop(self);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_of_unknown_type_gets_the_type_of_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink("f", dir.path().join("link")).unwrap();
        let root = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            RawMode::from(0_u16).into(),
        )
        .unwrap();
        for (name, want) in [
            ("sub", FileType::Directory),
            ("f", FileType::RegularFile),
            ("link", FileType::Symlink),
        ] {
            let stat = || {
                rustix::fs::statat(&root, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|s| s.st_mode)
                    .map_err(Error::from)
            };
            assert_eq!(known_type(FileType::Unknown, stat).unwrap(), want, "{name}");
            // A type the listing gave is kept, without asking.
            let asked = || -> Result<RawMode> { panic!("asked for a known type") };
            assert_eq!(known_type(want, asked).unwrap(), want);
        }
        let gone = known_type(FileType::Unknown, || {
            rustix::fs::statat(&root, "gone", AtFlags::SYMLINK_NOFOLLOW)
                .map(|s| s.st_mode)
                .map_err(Error::from)
        });
        assert_eq!(vanished_is_none(gone).unwrap(), None);
    }
}
