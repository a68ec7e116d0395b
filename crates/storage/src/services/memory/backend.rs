//! [`Memory`]: objects in a map, with the same semantics as the fs backend.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::raw::{Access, ByteRange, IoJob, RandomRead, RawList, RawWrite, parent_dir};
use crate::{Entry, Error, ErrorKind, Metadata, Result};

/// An in-memory backend: a sorted map of paths to `Bytes`.
///
/// It does no IO, so its jobs complete without a hand-off. Directories exist
/// implicitly (any object below them) or explicitly ([`create_dir`](crate::Operator::create_dir)).
/// Reads hand out zero-copy slices of the stored `Bytes`. Clones share the same map.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    state: Arc<RwLock<State>>,
}

#[derive(Debug, Default)]
struct State {
    files: BTreeMap<String, (Bytes, SystemTime)>,
    dirs: BTreeSet<String>,
}

impl State {
    fn dir_exists(&self, dir: &str) -> bool {
        dir.is_empty()
            || self.dirs.contains(dir)
            || self
                .files
                .range(dir.to_owned()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(dir))
    }

    fn stat(&self, path: &str) -> Result<Metadata> {
        if let Some((data, modified)) = self.files.get(path) {
            return Ok(Metadata::file(data.len() as u64).with_last_modified(*modified));
        }
        let dir = if path.is_empty() || path.ends_with('/') {
            path.to_owned()
        } else {
            format!("{path}/")
        };
        if self.dir_exists(&dir) {
            return Ok(Metadata::dir());
        }
        Err(Error::new(ErrorKind::NotFound))
    }

    fn file(&self, path: &str) -> Result<Bytes> {
        match self.files.get(path) {
            Some((data, _)) => Ok(data.clone()),
            None if self.dir_exists(&format!("{path}/")) => {
                Err(Error::new(ErrorKind::IsADirectory))
            }
            None => Err(Error::new(ErrorKind::NotFound)),
        }
    }

    /// The checks a filesystem would make before creating file `path`.
    fn check_writable(&self, path: &str) -> Result<()> {
        if self.dir_exists(&format!("{path}/")) {
            return Err(Error::new(ErrorKind::IsADirectory));
        }
        self.check_parents(path)
    }

    fn check_parents(&self, path: &str) -> Result<()> {
        let mut parent = parent_dir(path);
        while !parent.is_empty() {
            if self.files.contains_key(parent.trim_end_matches('/')) {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            parent = parent_dir(parent);
        }
        Ok(())
    }

    fn put(&mut self, path: &str, data: Bytes) -> Result<Metadata> {
        self.check_writable(path)?;
        let now = SystemTime::now();
        let metadata = Metadata::file(data.len() as u64).with_last_modified(now);
        self.files.insert(path.to_owned(), (data, now));
        Ok(metadata)
    }
}

impl Memory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&State) -> Result<T>) -> IoJob<T> {
        IoJob::ready(f(&self.state.read()))
    }

    fn with_mut<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> IoJob<T> {
        IoJob::ready(f(&mut self.state.write()))
    }
}

impl Access for Memory {
    fn scheme(&self) -> &'static str {
        "memory"
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        self.with(|s| s.stat(path))
    }

    fn read(&self, path: &str, range: ByteRange) -> IoJob<Bytes> {
        self.with(|s| {
            let data = s.file(path)?;
            let r = range.resolve(data.len() as u64)?;
            Ok(data.slice(r.start as usize..r.end as usize))
        })
    }

    fn open(&self, path: &str) -> IoJob<Arc<dyn RandomRead>> {
        self.with(|s| Ok(Arc::new(MemoryObject(s.file(path)?)) as Arc<dyn RandomRead>))
    }

    fn write(&self, path: &str, data: Bytes) -> IoJob<Metadata> {
        self.with_mut(|s| s.put(path, data))
    }

    fn writer(&self, path: &str) -> IoJob<Box<dyn RawWrite>> {
        let store = self.clone();
        self.with(|s| {
            s.check_writable(path)?;
            Ok(Box::new(MemoryWriter {
                store,
                path: path.to_owned(),
                parts: Vec::new(),
            }) as Box<dyn RawWrite>)
        })
    }

    fn delete(&self, path: &str) -> IoJob<()> {
        self.with_mut(|s| {
            if path.ends_with('/') {
                let dir = path;
                let has_files = s
                    .files
                    .range(dir.to_owned()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(dir));
                let has_subdirs = s
                    .dirs
                    .range(dir.to_owned()..)
                    .take_while(|d| d.starts_with(dir))
                    .any(|d| d != dir);
                if has_files || has_subdirs {
                    return Err(Error::new(ErrorKind::DirectoryNotEmpty));
                }
                s.dirs.remove(dir);
                return Ok(());
            }
            if s.files.remove(path).is_none() && s.dir_exists(&format!("{path}/")) {
                return Err(Error::new(ErrorKind::IsADirectory));
            }
            Ok(())
        })
    }

    fn remove_all(&self, path: &str) -> IoJob<()> {
        self.with_mut(|s| {
            s.files.retain(|k, _| !k.starts_with(path));
            s.dirs.retain(|d| !d.starts_with(path));
            Ok(())
        })
    }

    fn create_dir(&self, path: &str) -> IoJob<()> {
        self.with_mut(|s| {
            if s.files.contains_key(path.trim_end_matches('/')) {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            s.check_parents(path)?;
            let mut dir = path;
            while !dir.is_empty() {
                s.dirs.insert(dir.to_owned());
                dir = parent_dir(dir);
            }
            Ok(())
        })
    }

    fn copy(&self, from: &str, to: &str) -> IoJob<()> {
        self.with_mut(|s| {
            let data = s.file(from)?;
            s.put(to, data).map(drop)
        })
    }

    fn rename(&self, from: &str, to: &str) -> IoJob<()> {
        self.with_mut(|s| {
            let data = s.file(from)?;
            s.put(to, data)?;
            s.files.remove(from);
            Ok(())
        })
    }

    fn list(&self, path: &str, recursive: bool) -> IoJob<Box<dyn RawList>> {
        self.with(|s| {
            if !path.is_empty() && s.files.contains_key(path.trim_end_matches('/')) {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            let mut dirs = BTreeSet::new();
            let mut entries = Vec::new();
            for (key, (data, modified)) in s.files.range(path.to_owned()..) {
                let Some(rest) = key.strip_prefix(path) else {
                    break;
                };
                match rest.find('/') {
                    Some(i) if !recursive => {
                        dirs.insert(format!("{path}{}", &rest[..=i]));
                    }
                    _ => {
                        if recursive {
                            let mut dir = parent_dir(key);
                            while dir.len() > path.len() {
                                dirs.insert(dir.to_owned());
                                dir = parent_dir(dir);
                            }
                        }
                        let metadata =
                            Metadata::file(data.len() as u64).with_last_modified(*modified);
                        entries.push(Entry::new(key.clone(), metadata));
                    }
                }
            }
            for dir in s.dirs.range(path.to_owned()..) {
                let Some(rest) = dir.strip_prefix(path) else {
                    break;
                };
                if rest.is_empty() {
                    continue;
                }
                if recursive || rest.find('/') == Some(rest.len() - 1) {
                    dirs.insert(dir.clone());
                } else if let Some(i) = rest.find('/') {
                    dirs.insert(format!("{path}{}", &rest[..=i]));
                }
            }
            entries.extend(dirs.into_iter().map(|d| Entry::new(d, Metadata::dir())));
            Ok(Box::new(MemoryList(Some(entries))) as Box<dyn RawList>)
        })
    }
}

#[derive(Debug)]
struct MemoryObject(Bytes);

impl RandomRead for MemoryObject {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::ready(Ok(self.0.slice(range.start as usize..range.end as usize)))
    }
}

#[derive(Debug)]
struct MemoryWriter {
    store: Memory,
    path: String,
    parts: Vec<Bytes>,
}

impl RawWrite for MemoryWriter {
    fn write(mut self: Box<Self>, data: Bytes) -> IoJob<Box<dyn RawWrite>> {
        self.parts.push(data);
        IoJob::ready(Ok(self))
    }

    fn close(self: Box<Self>) -> IoJob<Metadata> {
        let data = match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts[0].clone(),
            _ => Bytes::from(self.parts.concat()),
        };
        let path = self.path.clone();
        self.store.with_mut(|s| s.put(&path, data))
    }

    fn abort(self: Box<Self>) -> IoJob<()> {
        IoJob::ready(Ok(()))
    }
}

#[derive(Debug)]
struct MemoryList(Option<Vec<Entry>>);

impl RawList for MemoryList {
    fn next_page(mut self: Box<Self>) -> IoJob<(Box<dyn RawList>, Vec<Entry>)> {
        let page = self.0.take().unwrap_or_default();
        IoJob::ready(Ok((self, page)))
    }
}
