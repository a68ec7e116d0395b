//! [`Memory`]: objects in a map, with the fs backend's semantics but for directories,
//! which exist while something is below them (as on S3) or once made with
//! `create_dir`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::{Bound, Range};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::RwLock;

use crate::raw::{
    Access, BatchJob, IoJob, ListArgs, OpenArgs, Opened, RandomRead, RawList, RawWrite, ReadArgs,
    ReadBatch, parent_dir,
};
use crate::types::conditions::etag_matches;
use crate::{Entry, Error, ErrorKind, Metadata, Result, WriteOptions};

/// An in-memory backend: a sorted map of paths to `Bytes`.
///
/// It does no IO, so its jobs run on the thread that submits them, with no
/// hand-off; like every backend it refuses work once its executor has shut down
/// (but from inside one of the executor's jobs),
/// and its futures yield once to the caller's runtime before they complete, so a
/// loop over them cannot starve the runtime's timers. Directories exist implicitly
/// (any object below them) or explicitly ([`create_dir`](crate::Operator::create_dir)).
/// Reads hand out zero-copy slices of the stored `Bytes`. Every write gets a new
/// ETag. Clones share the same map. Its `Debug` output counts the objects and their
/// bytes; it shows none of them.
#[derive(Clone, Default)]
pub struct Memory {
    state: Arc<RwLock<State>>,
}

#[derive(Default)]
struct State {
    files: BTreeMap<String, Object>,
    dirs: BTreeSet<String>,
}

#[derive(Clone)]
struct Object {
    data: Bytes,
    meta: Metadata,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Object")
            .field("len", &self.data.len())
            .field("meta", &self.meta)
            .finish()
    }
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Memory");
        // Not waiting for a writer: whoever prints may hold the lock.
        if let Some(state) = self.state.try_read() {
            let bytes: u64 = state.files.values().map(|o| o.data.len() as u64).sum();
            out.field("objects", &state.files.len())
                .field("bytes", &bytes)
                .field("dirs", &state.dirs.len());
        }
        out.finish_non_exhaustive()
    }
}

/// ETags of memory objects: one number per write, unique in the process.
fn next_etag() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("\"{:x}\"", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl State {
    fn dir_exists(&self, dir: &str) -> bool {
        dir.is_empty()
            || self.dirs.contains(dir)
            || self
                .files
                .range::<str, _>((Bound::Included(dir), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(dir))
    }

    fn stat(&self, path: &str) -> Result<Metadata> {
        let name = path.trim_end_matches('/');
        if let Some(object) = self.files.get(name) {
            if path.ends_with('/') {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            return Ok(object.meta.clone());
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

    fn file(&self, path: &str) -> Result<&Object> {
        match self.files.get(path) {
            Some(object) => Ok(object),
            None if self.dir_exists(&format!("{path}/")) => {
                Err(Error::new(ErrorKind::IsADirectory))
            }
            None => Err(Error::new(ErrorKind::NotFound)),
        }
    }

    /// The checks a filesystem would make before creating a file, and the write's
    /// own conditions. The file is named as a directory would be, `path/` (what the
    /// directory check looks for), so a caller that has that string already
    /// allocates no other.
    fn check_writable(&self, dir: &str, options: &WriteOptions) -> Result<()> {
        let path = dir.strip_suffix('/').unwrap_or(dir);
        options.check_local()?;
        if self.dir_exists(dir) {
            return Err(Error::new(ErrorKind::IsADirectory));
        }
        self.check_parents(path)?;
        let current = self.files.get(path);
        if options.if_not_exists && current.is_some() {
            return Err(Error::new(ErrorKind::AlreadyExists));
        }
        if let Some(wanted) = &options.if_match {
            // As reads match (`*`, or a list of ETags), but only an object that
            // exists matches: RFC 9110's `If-Match: *` with nothing there fails.
            let etag = current.and_then(|o| o.meta.etag());
            if current.is_none() || !etag_matches(wanted, etag) {
                return Err(
                    Error::new(ErrorKind::PreconditionFailed).with_message(match etag {
                        Some(etag) => format!("if_match {wanted} does not match {etag}"),
                        None => format!("if_match {wanted}: no such object"),
                    }),
                );
            }
        }
        Ok(())
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

    /// The object `from`, for a copy or rename under `options`, which keep its
    /// content type unless they give one (as S3's CopyObject keeps it).
    fn transferred(&self, from: &str, mut options: WriteOptions) -> Result<(Object, WriteOptions)> {
        let object = self.file(from)?;
        if options.content_type.is_none() {
            options.content_type = object.meta.content_type().map(str::to_owned);
        }
        Ok((object.clone(), options))
    }

    fn put(&mut self, path: &str, data: Bytes, options: &WriteOptions) -> Result<Metadata> {
        let mut meta = Metadata::file(data.len() as u64)
            .with_last_modified(SystemTime::now())
            .with_etag(next_etag());
        if let Some(content_type) = &options.content_type {
            meta = meta.with_content_type(content_type.clone());
        }
        let object = Object {
            data,
            meta: meta.clone(),
        };
        self.place(path, object, options)?;
        Ok(meta)
    }

    /// Puts `object` at `path` as it is (a rename keeps its version), where
    /// `options` let a write go.
    fn place(&mut self, path: &str, object: Object, options: &WriteOptions) -> Result<()> {
        // One string for the directory check and, for a new object, its key (an
        // existing key stays and this one is dropped): a small write's cost is
        // mostly allocations.
        let mut key = String::with_capacity(path.len() + 1);
        key.push_str(path);
        key.push('/');
        self.check_writable(&key, options)?;
        key.pop();
        self.files.insert(key, object);
        Ok(())
    }

    fn delete(&mut self, path: &str) -> Result<()> {
        if let Some(dir) = path.strip_suffix('/').map(|_| path) {
            if self.files.contains_key(dir.trim_end_matches('/')) {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            let has_files = self
                .files
                .range::<str, _>((Bound::Included(dir), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(dir));
            let has_subdirs = self
                .dirs
                .range::<str, _>((Bound::Included(dir), Bound::Unbounded))
                .take_while(|d| d.starts_with(dir))
                .any(|d| d != dir);
            if has_files || has_subdirs {
                return Err(Error::new(ErrorKind::DirectoryNotEmpty));
            }
            self.dirs.remove(dir);
            return Ok(());
        }
        if self.files.remove(path).is_none() && self.dir_exists(&format!("{path}/")) {
            return Err(Error::new(ErrorKind::IsADirectory));
        }
        Ok(())
    }
}

impl Memory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> Result<T> + Send + 'static,
    ) -> IoJob<T> {
        let state = Arc::clone(&self.state);
        IoJob::inline(move || f(&state.read()))
    }

    fn with_mut<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T> + Send + 'static,
    ) -> IoJob<T> {
        let state = Arc::clone(&self.state);
        IoJob::inline(move || f(&mut state.write()))
    }
}

impl Access for Memory {
    fn scheme(&self) -> &'static str {
        "memory"
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        let path = path.to_owned();
        self.with(move |s| s.stat(&path))
    }

    fn read(&self, path: &str, args: ReadArgs) -> IoJob<Bytes> {
        let path = path.to_owned();
        self.with(move |s| {
            let object = s.file(&path)?;
            args.conditions.check(&object.meta)?;
            let r = args.resolve(object.data.len() as u64)?;
            Ok(object.data.slice(r.start as usize..r.end as usize))
        })
    }

    fn open(&self, path: &str, args: OpenArgs) -> IoJob<Opened> {
        let path = path.to_owned();
        self.with(move |s| {
            let object = s.file(&path)?;
            args.conditions.check(&object.meta)?;
            let range = args.range.resolve(object.data.len() as u64)?;
            let first = args.first_read(&range);
            let first = object.data.slice(first.start as usize..first.end as usize);
            let object = Arc::new(MemoryObject(object.clone()));
            Ok(Opened::new(object, range, first))
        })
    }

    fn write(&self, path: &str, data: Bytes, options: WriteOptions) -> IoJob<Metadata> {
        let path = path.to_owned();
        self.with_mut(move |s| s.put(&path, data, &options))
    }

    fn writer(&self, path: &str, options: WriteOptions) -> IoJob<Box<dyn RawWrite>> {
        let store = self.clone();
        let path = path.to_owned();
        self.with(move |s| {
            // Where the object would go (a directory, a file for a parent), for an
            // early error, and everything again at commit, atomically. The
            // conditions only then, as fs and S3 check them: they are about the
            // object the commit replaces, which may come and go meanwhile.
            let placement = WriteOptions {
                if_not_exists: false,
                if_match: None,
                ..options.clone()
            };
            s.check_writable(&format!("{path}/"), &placement)?;
            Ok(Box::new(MemoryWriter {
                store,
                path,
                options,
                parts: Vec::new(),
            }) as Box<dyn RawWrite>)
        })
    }

    fn delete(&self, path: &str) -> IoJob<()> {
        let path = path.to_owned();
        self.with_mut(move |s| s.delete(&path))
    }

    fn delete_many(&self, paths: Vec<String>) -> IoJob<Vec<Result<()>>> {
        self.with_mut(move |s| {
            Ok(paths
                .iter()
                .map(|path| s.delete(path).map_err(|e| e.with_path(path.clone())))
                .collect())
        })
    }

    fn remove_all(&self, path: &str) -> IoJob<()> {
        let path = path.to_owned();
        self.with_mut(move |s| {
            // A file of that name goes too, as `rm -r` would remove it.
            s.files.remove(path.trim_end_matches('/'));
            s.files.retain(|k, _| !k.starts_with(&path));
            s.dirs.retain(|d| !d.starts_with(&path));
            Ok(())
        })
    }

    fn create_dir(&self, path: &str) -> IoJob<()> {
        let path = path.to_owned();
        self.with_mut(move |s| {
            if s.files.contains_key(path.trim_end_matches('/')) {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            s.check_parents(&path)?;
            let mut dir = path.as_str();
            while !dir.is_empty() {
                s.dirs.insert(dir.to_owned());
                dir = parent_dir(dir);
            }
            Ok(())
        })
    }

    fn copy(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.with_mut(move |s| {
            let (object, options) = s.transferred(&from, options)?;
            s.put(&to, object.data, &options)
                .map(drop)
                .map_err(|e| e.with_path(to.clone()))
        })
    }

    fn rename(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.with_mut(move |s| {
            // The object moved, it was not written: it keeps its version (ETag and
            // time), as a file renamed on fs keeps its inode and time.
            let (mut object, options) = s.transferred(&from, options)?;
            if let Some(content_type) = &options.content_type {
                object.meta = object.meta.with_content_type(content_type.clone());
            }
            s.place(&to, object, &options)
                .map_err(|e| e.with_path(to.clone()))?;
            s.files.remove(&from);
            Ok(())
        })
    }

    fn list(&self, path: &str, args: ListArgs) -> IoJob<Box<dyn RawList>> {
        let path = path.to_owned();
        self.with(move |s| {
            if !path.is_empty() && s.files.contains_key(path.trim_end_matches('/')) {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            let mut dirs = BTreeSet::new();
            let mut entries = Vec::new();
            for (key, object) in s.files.range(path.clone()..) {
                let Some(rest) = key.strip_prefix(path.as_str()) else {
                    break;
                };
                match rest.find('/') {
                    Some(i) if !args.recursive => {
                        dirs.insert(format!("{path}{}", &rest[..=i]));
                    }
                    _ => {
                        if args.recursive {
                            let mut dir = parent_dir(key);
                            while dir.len() > path.len() {
                                dirs.insert(dir.to_owned());
                                dir = parent_dir(dir);
                            }
                        }
                        entries.push(Entry::new(key.clone(), object.meta.clone()));
                    }
                }
            }
            for dir in s.dirs.range(path.clone()..) {
                let Some(rest) = dir.strip_prefix(path.as_str()) else {
                    break;
                };
                if rest.is_empty() {
                    continue;
                }
                if args.recursive || rest.find('/') == Some(rest.len() - 1) {
                    dirs.insert(dir.clone());
                } else if let Some(i) = rest.find('/') {
                    dirs.insert(format!("{path}{}", &rest[..=i]));
                }
            }
            entries.extend(dirs.into_iter().map(|d| Entry::new(d, Metadata::dir())));
            entries.retain(|e| args.wants(e.path()));
            Ok(Box::new(MemoryList(Some(entries))) as Box<dyn RawList>)
        })
    }
}

/// A snapshot of one object: reads see the version that was opened.
#[derive(Debug)]
struct MemoryObject(Object);

impl RandomRead for MemoryObject {
    fn metadata(&self) -> &Metadata {
        &self.0.meta
    }

    fn read_at(self: Arc<Self>, range: Range<u64>) -> IoJob<Bytes> {
        IoJob::inline(move || Ok(self.0.data.slice(range.start as usize..range.end as usize)))
    }

    fn read_many(self: Arc<Self>, batch: Arc<ReadBatch>) -> Option<BatchJob> {
        Some(IoJob::inline(move || {
            batch.serve(|reads| {
                Ok(reads
                    .iter()
                    .map(|r| self.0.data.slice(r.start as usize..r.end as usize))
                    .collect())
            })
        }))
    }
}

struct MemoryWriter {
    store: Memory,
    path: String,
    options: WriteOptions,
    parts: Vec<Bytes>,
}

impl fmt::Debug for MemoryWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryWriter")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("written", &self.parts.iter().map(Bytes::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl RawWrite for MemoryWriter {
    fn write(mut self: Box<Self>, data: Bytes) -> IoJob<Box<dyn RawWrite>> {
        IoJob::inline(move || {
            self.parts.push(data);
            Ok(self as Box<dyn RawWrite>)
        })
    }

    fn close(self: Box<Self>) -> IoJob<Metadata> {
        let data = match self.parts.len() {
            0 => Bytes::new(),
            1 => self.parts[0].clone(),
            _ => Bytes::from(self.parts.concat()),
        };
        let MemoryWriter {
            store,
            path,
            options,
            ..
        } = *self;
        store.with_mut(move |s| s.put(&path, data, &options))
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
