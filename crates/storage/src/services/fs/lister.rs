//! [`FsLister`]: a directory walk, a page per job.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType, OFlags};

use super::core::{TEMP_PREFIX, is_dir, metadata, open_in_root};
use crate::raw::{IoJob, RawList};
use crate::{Entry, Metadata, Result};

const PAGE: usize = 1000;

/// Walks a directory (depth first when recursive), up to a page of entries per job.
///
/// Symlinks are listed as what they point to, resolved inside the root; a recursive
/// listing never descends into a symlinked directory (no cycles, no escapes), and a
/// dangling symlink is skipped.
#[derive(Debug)]
pub(super) struct FsLister {
    root: Arc<OwnedFd>,
    /// Directories being read: their path (with trailing `/`) and their stream.
    stack: Vec<(String, Dir)>,
    recursive: bool,
}

impl FsLister {
    pub(super) fn new(
        root: Arc<OwnedFd>,
        path: &str,
        dir: Option<OwnedFd>,
        recursive: bool,
    ) -> Result<Self> {
        let stack = match dir {
            Some(fd) => vec![(path.to_owned(), Dir::new(fd)?)],
            None => Vec::new(),
        };
        Ok(Self {
            root,
            stack,
            recursive,
        })
    }

    fn page(&mut self) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        while entries.len() < PAGE {
            let Some((prefix, dir)) = self.stack.last_mut() else {
                break;
            };
            let Some(entry) = dir.read() else {
                self.stack.pop();
                continue;
            };
            let entry = entry?;
            let Ok(name) = entry.file_name().to_str() else {
                tracing::warn!(dir = %prefix, "skipping a file name that is not UTF-8");
                continue;
            };
            if name == "." || name == ".." || name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let path = format!("{prefix}{name}");
            match entry.file_type() {
                FileType::Directory => {
                    let dir_path = format!("{path}/");
                    if self.recursive {
                        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
                        let fd = open_in_root(&self.root, &dir_path, flags)?;
                        let stat = rustix::fs::fstat(&fd)?;
                        entries.push(Entry::new(dir_path.clone(), metadata(&stat)));
                        self.stack.push((dir_path, Dir::new(fd)?));
                    } else {
                        entries.push(Entry::new(dir_path, Metadata::dir()));
                    }
                }
                FileType::Symlink => {
                    // Resolved inside the root, like every other lookup.
                    let Ok(fd) = open_in_root(&self.root, &path, OFlags::PATH) else {
                        continue;
                    };
                    let stat = rustix::fs::fstat(&fd)?;
                    let path = if is_dir(&stat) {
                        format!("{path}/")
                    } else {
                        path
                    };
                    entries.push(Entry::new(path, metadata(&stat)));
                }
                _ => {
                    let stat = rustix::fs::statat(dir.fd()?, name, AtFlags::SYMLINK_NOFOLLOW)?;
                    let path = if is_dir(&stat) {
                        format!("{path}/")
                    } else {
                        path
                    };
                    entries.push(Entry::new(path, metadata(&stat)));
                }
            }
        }
        Ok(entries)
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
