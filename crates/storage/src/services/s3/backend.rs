//! [`S3`]: the backend.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use io_executor::Executor;

use super::config::S3Builder;
use super::core::Core;
use super::lister::S3Lister;
use super::object::S3Object;
use super::writer::S3Writer;
use crate::raw::{Access, ByteRange, IoJob, RandomRead, RawList, RawWrite};
use crate::{Error, ErrorKind, Metadata};

/// Amazon S3 and S3-compatible stores (MinIO, Ceph, SeaweedFS, Garage, R2), over
/// hyper with SigV4 signing. Made with [`S3Builder`].
///
/// # Where the IO runs
///
/// Every request is an async job on one of the executor's worker runtimes, and every
/// byte of every response body is read there. Each worker thread has its own HTTP
/// client (made through [`Executor::worker_local`] when an operator attaches the
/// backend to its executor), so a pooled connection is a task of the worker runtime
/// that opened it: no caller runtime owns a connection, and dropping one between two
/// requests breaks nothing.
///
/// # Memory
///
/// A read fills one pooled buffer of exactly the range's size; a [`Reader`](crate::Reader)
/// reads `chunk_size` ranges, at most `prefetch + 1` of them at once. A writer holds
/// at most `(part_concurrency + 1) * part_size` bytes.
///
/// # Directories
///
/// S3 has keys, not directories; this backend gives them the same meaning as fs and
/// memory. A directory exists while some key lies below it; [`create_dir`](crate::Operator::create_dir)
/// writes an empty marker object `dir/`. Reading or writing a file whose name is a
/// directory is [`ErrorKind::IsADirectory`], writing below a file
/// [`ErrorKind::NotADirectory`], deleting a non-empty directory
/// [`ErrorKind::DirectoryNotEmpty`]. These checks cost a `HEAD` per ancestor and a
/// one-key listing before a write (run concurrently), and are not atomic with the
/// write itself.
///
/// # Not atomic
///
/// [`rename`](crate::Operator::rename) is CopyObject then DeleteObject: a reader may
/// see both names for a moment, and a failure between the two leaves both. `copy` of
/// objects over 5 GiB is not supported (S3's CopyObject limit).
#[derive(Clone)]
pub struct S3 {
    core: Arc<Core>,
}

impl fmt::Debug for S3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt(f)
    }
}

impl S3 {
    /// Starts configuring a backend for `bucket`; see [`S3Builder`].
    pub fn builder(bucket: impl Into<String>) -> S3Builder {
        S3Builder::new(bucket)
    }

    pub(crate) fn from_builder(builder: S3Builder) -> Self {
        Self {
            core: Arc::new(Core::new(builder)),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.core.bucket
    }

    /// The key prefix every path lives under (empty, or ending in `/`).
    pub fn root(&self) -> &str {
        &self.core.root
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.core.region
    }

    /// The endpoint, as configured (`None`: AWS's own for the region).
    pub fn endpoint(&self) -> Option<&str> {
        self.core.endpoint.as_deref()
    }
}

impl Access for S3 {
    fn scheme(&self) -> &'static str {
        "s3"
    }

    fn attach(&self, executor: &Executor) {
        self.core.attach(executor);
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            if path.is_empty() {
                return Ok(Metadata::dir());
            }
            if !path.ends_with('/') {
                if let Some(meta) = core.head(&core.key(&path)).await? {
                    return Ok(meta);
                }
            }
            let dir = core.key(&format!("{}/", path.trim_end_matches('/')));
            if core.dir_exists(&dir).await? {
                Ok(Metadata::dir())
            } else {
                Err(Error::new(ErrorKind::NotFound))
            }
        })
    }

    fn read(&self, path: &str, range: ByteRange) -> IoJob<Bytes> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            match core.get(&core.key(&path), range, None).await {
                Err(e) => Err(core.file_error(&path, e).await),
                ok => ok,
            }
        })
    }

    fn open(&self, path: &str) -> IoJob<Arc<dyn RandomRead>> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            let key = core.key(&path);
            match core.head(&key).await? {
                Some(meta) => Ok(Arc::new(S3Object {
                    size: meta.content_length(),
                    etag: meta.etag().map(str::to_owned),
                    core,
                    key,
                }) as Arc<dyn RandomRead>),
                None => Err(core
                    .file_error(&path, Error::new(ErrorKind::NotFound))
                    .await),
            }
        })
    }

    fn write(&self, path: &str, data: Bytes) -> IoJob<Metadata> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            if data.len() > core.multipart_threshold {
                let mut writer = S3Writer::new(core, &path);
                writer.push(data).await?;
                return writer.finish().await;
            }
            core.check_writable(&path).await?;
            core.put(&core.key(&path), data.into()).await
        })
    }

    fn writer(&self, path: &str) -> IoJob<Box<dyn RawWrite>> {
        IoJob::ready(Ok(Box::new(S3Writer::new(Arc::clone(&self.core), path))))
    }

    fn delete(&self, path: &str) -> IoJob<()> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            let key = core.key(&path);
            if path.ends_with('/') {
                let page = core.list_page(&key, false, None, 2).await?;
                if page.contents.iter().any(|o| o.key != key) || !page.common_prefixes.is_empty() {
                    return Err(Error::new(ErrorKind::DirectoryNotEmpty));
                }
            }
            core.delete(&key).await
        })
    }

    fn remove_all(&self, path: &str) -> IoJob<()> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            let prefix = core.key(&path);
            loop {
                // Deleting as we go: each listing starts after what is gone.
                let page = core.list_page(&prefix, false, None, 1000).await?;
                if page.contents.is_empty() {
                    return Ok(());
                }
                let keys = page.contents.into_iter().map(|o| o.key).collect();
                core.delete_many(keys).await?;
                if !page.is_truncated {
                    return Ok(());
                }
            }
        })
    }

    fn create_dir(&self, path: &str) -> IoJob<()> {
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            core.check_ancestors(&path).await?;
            core.put(&core.key(&path), Bytes::new().into())
                .await
                .map(drop)
        })
    }

    fn copy(&self, from: &str, to: &str) -> IoJob<()> {
        let (core, from, to) = (Arc::clone(&self.core), from.to_owned(), to.to_owned());
        IoJob::future(async move {
            match core.copy(&core.key(&from), &core.key(&to)).await {
                Err(e) => Err(core.file_error(&from, e).await),
                ok => ok,
            }
        })
    }

    fn rename(&self, from: &str, to: &str) -> IoJob<()> {
        let (core, from, to) = (Arc::clone(&self.core), from.to_owned(), to.to_owned());
        IoJob::future(async move {
            let from_key = core.key(&from);
            if let Err(e) = core.copy(&from_key, &core.key(&to)).await {
                return Err(core.file_error(&from, e).await);
            }
            core.delete(&from_key).await
        })
    }

    fn list(&self, path: &str, recursive: bool) -> IoJob<Box<dyn RawList>> {
        IoJob::ready(Ok(Box::new(S3Lister::new(
            Arc::clone(&self.core),
            path,
            recursive,
        ))))
    }
}
