//! [`S3`]: the backend.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use io_executor::Executor;

use super::checksum::Checksum;
use super::config::{Credentials, S3Builder};
use super::core::{Core, answered_by};
use super::credentials::{CredentialCache, CredentialInfo};
use super::lister::{S3Lister, next_token};
use super::object::S3Object;
use super::writer::S3Writer;
use crate::raw::{
    Access, ByteRange, IoJob, ListArgs, OpenArgs, Opened, RawList, RawWrite, ReadArgs,
};
use crate::{Error, ErrorKind, Metadata, Result, WriteOptions};

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
/// A read fills one pooled buffer for the range (its size class in the pool:
/// above 64 KiB at most a quarter larger); a [`Reader`](crate::Reader)
/// reads `chunk_size` ranges, at most `prefetch + 1` of them at once, but for a
/// range to the object's end, first opened with one GET of `whole_up_to` bytes
/// (its answer brings the size) kept as its first chunk while `prefetch` chunks
/// are read ahead beside it. A writer holds
/// at most `(part_concurrency + 1) * part_size` bytes and two of its
/// [`write_chunk_size`](crate::Options::write_chunk_size) chunks: the one it handed
/// over, waiting for a part's place, and the next it buffers.
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
/// [`rename`](crate::Operator::rename) is a copy then DeleteObject: a reader may
/// see both names for a moment, and a failure between the two leaves both. A copy
/// is one CopyObject up to the multipart copy threshold (5 GiB, S3's CopyObject
/// limit), and above it a multipart upload of UploadPartCopy parts copied in
/// parallel by the server.
///
/// # Credentials and integrity
///
/// Credentials come from the AWS provider chain unless given (see
/// [`S3Builder::build`]); temporary ones are refreshed before they expire, on the
/// executor, once at a time, and every attempt is signed with the identity current
/// when it is sent. Writes carry a flexible checksum (CRC64NVME by default, see
/// [`Checksum`]) that the server verifies; full reads verify the checksum the
/// server returns, and a body that does not match is read again, then an error.
///
/// # Conditions
///
/// Read [`Conditions`](crate::Conditions) travel as `If-Match`, `If-None-Match`,
/// `If-Modified-Since` and `If-Unmodified-Since`, checked by the server. Writes with
/// `if_not_exists` send `If-None-Match: *` (PUT, CompleteMultipartUpload,
/// CopyObject), with `if_match` they send `If-Match` (PUT, CompleteMultipartUpload):
/// atomic on servers that support conditional writes (AWS since 2024, SeaweedFS,
/// MinIO); a server that ignores them would overwrite.
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

    pub(crate) fn from_builder(builder: S3Builder, credentials: Option<CredentialCache>) -> Self {
        Self {
            core: Arc::new(Core::new(builder, credentials)),
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

    /// Where the credentials signing requests now came from and their access key
    /// id (never the secret); `None` when anonymous, or before the provider chain
    /// was first asked (at the first request).
    pub fn credential_info(&self) -> Option<CredentialInfo> {
        self.core.credential_info()
    }

    /// The credentials requests are signed with now (secret included), for another
    /// client that should act as the same identity; `None` when anonymous, before
    /// the first request fetched any, or once they have expired. Never fetches: no
    /// IO happens here, on the caller's thread. Temporary credentials are good until
    /// their expiry ([`credential_info`](Self::credential_info) says when); this
    /// backend refreshes its own, not the copies it gave.
    pub fn current_credentials(&self) -> Option<Credentials> {
        let current = self.core.current_credentials()?;
        let credentials = Credentials::new(current.access_key_id(), current.secret_access_key());
        Some(match current.session_token() {
            Some(token) => credentials.with_session_token(token),
            None => credentials,
        })
    }

    /// The checksum writes send and full reads check, if any.
    pub fn checksum(&self) -> Option<Checksum> {
        self.core.checksum
    }

    /// Whether writes are checked as fs would check them (see
    /// [`S3Builder::write_checks`]).
    pub fn write_checks(&self) -> bool {
        self.core.write_checks
    }
}

/// How many times in a row `remove_all` deletes a key listed again (see there).
const LISTED_AGAIN_MAX: u32 = 3;

impl Access for S3 {
    fn scheme(&self) -> &'static str {
        "s3"
    }

    fn attach(&self, executor: &Executor) {
        self.core.attach(executor);
    }

    fn stat(&self, path: &str) -> IoJob<Metadata> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            if path.is_empty() {
                // The root is there as its bucket is (one listing, until the bucket
                // has answered once): a missing bucket is an error, not a directory.
                core.find_bucket().await?;
                return Ok(Metadata::dir());
            }
            let name = path.trim_end_matches('/');
            if !path.ends_with('/')
                && let Some(meta) = core.head(&core.key(name)).await?
            {
                return Ok(meta);
            }
            if core.dir_exists(&core.key(&format!("{name}/"))).await? {
                return Ok(Metadata::dir());
            }
            // `a/` where `a` is an object: as fs says it.
            if path.ends_with('/') && core.head(&core.key(name)).await?.is_some() {
                return Err(Error::new(ErrorKind::NotADirectory));
            }
            Err(Error::new(ErrorKind::NotFound))
        })
    }

    fn read(&self, path: &str, args: ReadArgs) -> IoJob<Bytes> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            // The range is checked against the limit once the object's size is
            // known, from the response, before its body is read: as fs and memory
            // check it, after an end past the object is cut to it (an HTTP range)
            // or refused as past the end (a strict one).
            match core
                .get_at_most(&core.key(&path), args.range, &args.conditions, args.max_len)
                .await
            {
                Err(e) => Err(core.file_error(&path, e).await),
                ok => ok,
            }
        })
    }

    fn open(&self, path: &str, args: OpenArgs) -> IoJob<Opened> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        let callers_version = args.conditions.one_version().is_some();
        IoJob::future(async move {
            let key = core.key(&path);
            // One GET asks for the start of the range and learns, from the same
            // answer, the object's size and version: no HEAD, and no window in which
            // the object could change between the two.
            if let Some(ask) = first_request(&args) {
                match core.get_with_meta(&key, ask, &args.conditions).await {
                    Ok((Some(meta), first)) => {
                        let range = args.range.resolve(meta.content_length())?;
                        let first =
                            first.slice(..first.len().min((range.end - range.start) as usize));
                        let object = Arc::new(S3Object {
                            core,
                            key,
                            meta,
                            callers_version,
                        });
                        return Ok(Opened::new(object, range, first));
                    }
                    // Nothing to read there (an empty object, a range at its end),
                    // or a body that did not give the object's size (no stated
                    // length): the metadata comes from a HEAD.
                    Ok((None, _)) => {}
                    // The first read refused as past the end: so is the reader's
                    // range, unless it is empty there (`10..` of 10 bytes), which
                    // the HEAD below opens.
                    Err(e) if e.kind() == ErrorKind::RangeNotSatisfiable => {
                        if let Some(Err(past)) = e
                            .context("size")
                            .and_then(|size| size.parse().ok())
                            .map(|size| args.range.resolve(size))
                        {
                            return Err(answered_by(past, &e));
                        }
                    }
                    Err(e) => return Err(core.file_error(&path, e).await),
                }
            }
            let Some(meta) = core.head_if(&key, &args.conditions).await? else {
                return Err(core
                    .file_error(&path, Error::new(ErrorKind::NotFound))
                    .await);
            };
            let range = args.range.resolve(meta.content_length())?;
            let object = Arc::new(S3Object {
                core,
                key,
                meta,
                callers_version,
            });
            let first = args.first_read(&range);
            let first = if first.is_empty() {
                Bytes::new()
            } else {
                let range = ByteRange::new(first);
                object
                    .core
                    .get(&object.key, range, &object.pinned())
                    .await
                    .map_err(|e| object.read_error(e))?
            };
            Ok(Opened::new(object, range, first))
        })
    }

    fn write(&self, path: &str, data: Bytes, options: WriteOptions) -> IoJob<Metadata> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            if data.len() > core.multipart_threshold {
                let mut writer = S3Writer::new(core, &path, options).for_len(data.len() as u64);
                writer.push(data).await?;
                return writer.finish().await;
            }
            core.put_file(&path, data.into(), &options).await
        })
    }

    fn writer(&self, path: &str, options: WriteOptions) -> IoJob<Box<dyn RawWrite>> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        // No request until the first part is full, but made as a job is (inline):
        // after a shutdown it fails (but inside one of the executor's jobs), as
        // every other operation does.
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::inline(
            move || Ok(Box::new(S3Writer::new(core, &path, options)) as Box<dyn RawWrite>),
        )
    }

    fn delete(&self, path: &str) -> IoJob<()> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move { delete_one(&core, &path).await })
    }

    fn delete_many(&self, paths: Vec<String>) -> IoJob<Vec<Result<()>>> {
        let core = Arc::clone(&self.core);
        IoJob::future(async move {
            let mut results: Vec<Option<Result<()>>> = paths.iter().map(|_| None).collect();
            // A key S3 could not hold fails its own path, and sends nothing.
            for (path, result) in paths.iter().zip(&mut results) {
                if let Err(e) = core.check_key(path) {
                    *result = Some(Err(e));
                }
            }
            // Objects go in DeleteObjects batches; directories need their own checks,
            // made in the order given, as `delete` one by one would: a directory
            // before its contents is not empty yet, one after them is.
            let mut files: Vec<usize> = Vec::new();
            for i in 0..paths.len() {
                if results[i].is_some() {
                    continue;
                }
                if !paths[i].ends_with('/') {
                    files.push(i);
                    continue;
                }
                // Only the keys that bear on it go first: those below it, and a
                // file of its name (which makes it `NotADirectory`).
                let dir = paths[i].as_str();
                if files
                    .iter()
                    .any(|&f| paths[f].starts_with(dir) || paths[f] == dir.trim_end_matches('/'))
                {
                    delete_files(&core, &paths, &mut files, &mut results).await;
                }
                results[i] = Some(delete_one(&core, dir).await);
            }
            delete_files(&core, &paths, &mut files, &mut results).await;
            Ok(results
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(Error::new(ErrorKind::Unexpected))))
                .collect())
        })
    }

    fn remove_all(&self, path: &str) -> IoJob<()> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            // A file of that name goes too, as `rm -r` would remove it.
            let name = path.trim_end_matches('/');
            if !name.is_empty() {
                core.delete(&core.key(name)).await?;
            }
            let prefix = core.key(&path);
            // The keys the last round deleted, and whether its page was the
            // listing's last: then the next listing only confirms they are gone.
            let mut deleted = std::collections::HashSet::new();
            let mut confirming = false;
            let mut listed_again = 0_u32;
            // Past pages with no keys that say more follow (a server may send them),
            // never to a token given before (which would loop).
            let mut token: Option<String> = None;
            let mut tokens = std::collections::HashSet::new();
            loop {
                // Deleting as we go: each listing starts after what is gone.
                let page = core
                    .list_page(&prefix, false, token.as_deref(), 1000)
                    .await?;
                if page.contents.is_empty() {
                    token = next_token(&page, &mut tokens)?;
                    if token.is_none() {
                        return Ok(());
                    }
                    continue;
                }
                // A fresh listing next, whose tokens may be the ones this one met.
                token = None;
                tokens.clear();
                let keys: Vec<String> = page.contents.into_iter().map(|o| o.key).collect();
                // A key deleted without error is listed again. Once or twice: a
                // listing that lags behind deletes (some S3-compatible stores), or
                // a writer that made it again; it is deleted again, after a pause.
                // Every time: it is not the key the listing named (a server that
                // changed it on the way: trailing white space, a carriage return),
                // and would be deleted for ever; nor is it gone, whatever the
                // server said of it.
                match keys.iter().find(|k| deleted.contains(k.as_str())) {
                    Some(again) => {
                        listed_again += 1;
                        if listed_again > LISTED_AGAIN_MAX {
                            return Err(Error::new(ErrorKind::Unexpected)
                                .with_message(
                                    "a key the server said it deleted is listed again and \
                                     again: written again each time, or the listing does not \
                                     name it as it is stored",
                                )
                                .with_context("key", again));
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100 << listed_again))
                            .await;
                    }
                    // After the last page, only keys written since: theirs to keep,
                    // as a write after an object store's listing keeps its key.
                    None if confirming => return Ok(()),
                    None => listed_again = 0,
                }
                for (key, result) in keys.iter().zip(core.delete_many(&keys).await) {
                    result.map_err(|e| e.with_context("key", key))?;
                }
                confirming = !page.is_truncated;
                deleted = keys.into_iter().collect();
            }
        })
    }

    fn create_dir(&self, path: &str) -> IoJob<()> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::future(async move {
            if path.is_empty() {
                // The root is there as its bucket is, as on fs: nothing to make (a
                // PUT of the empty key, where the root is the bucket's, would be
                // CreateBucket).
                return core.find_bucket().await;
            }
            core.check_parent(&path).await?;
            core.put(
                &core.key(&path),
                Bytes::new().into(),
                &WriteOptions::default(),
            )
            .await
            .map(drop)
        })
    }

    fn copy(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        if let Err(e) = self.core.check_key(from) {
            return IoJob::ready(Err(e.with_path(from)));
        }
        if let Err(e) = self.core.check_key(to) {
            return IoJob::ready(Err(e.with_path(to)));
        }
        if options.if_match.is_some() {
            return IoJob::ready(Err(Error::new(ErrorKind::Unsupported)
                .with_message("S3 cannot copy only if the target's ETag matches")));
        }
        let (core, from, to) = (Arc::clone(&self.core), from.to_owned(), to.to_owned());
        IoJob::future(async move {
            core.check_writable(&to)
                .await
                .map_err(|e| e.with_path(to.clone()))?;
            match core.copy(&core.key(&from), &core.key(&to), &options).await {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(e.with_path(to)),
                // Named already: the target's (a copy in parts).
                Err(e) if !e.path().is_empty() => Err(e),
                Err(e) => Err(core.file_error(&from, e).await),
                ok => ok,
            }
        })
    }

    fn rename(&self, from: &str, to: &str, options: WriteOptions) -> IoJob<()> {
        if let Err(e) = self.core.check_key(from) {
            return IoJob::ready(Err(e.with_path(from)));
        }
        if let Err(e) = self.core.check_key(to) {
            return IoJob::ready(Err(e.with_path(to)));
        }
        if options.if_match.is_some() {
            return IoJob::ready(Err(Error::new(ErrorKind::Unsupported)
                .with_message("S3 cannot rename only if the target's ETag matches")));
        }
        let (core, from, to) = (Arc::clone(&self.core), from.to_owned(), to.to_owned());
        IoJob::future(async move {
            core.check_writable(&to)
                .await
                .map_err(|e| e.with_path(to.clone()))?;
            let from_key = core.key(&from);
            let copied = match core.copy_of(&from_key, &core.key(&to), &options).await {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => return Err(e.with_path(to)),
                Err(e) if !e.path().is_empty() => return Err(e),
                Err(e) => return Err(core.file_error(&from, e).await),
                Ok(etag) => etag,
            };
            // Only the version copied is deleted: one written meanwhile stays.
            let Some(etag) = copied else {
                return core.delete(&from_key).await;
            };
            core.delete_if_match(&from_key, &etag).await.map_err(|e| {
                match e.kind() {
                    ErrorKind::PreconditionFailed => e.with_message(format!(
                        "the source changed after the copy to {to:?} looked at it: both \
                         names are kept"
                    )),
                    // Another rename (or a delete) took it meanwhile: not moved
                    // by this one, or two renames of one name would both succeed.
                    ErrorKind::NotFound => e.with_message(format!(
                        "the source was deleted or moved by another while it was copied: \
                         the copy to {to:?} is kept"
                    )),
                    _ => e,
                }
            })
        })
    }

    fn list(&self, path: &str, args: ListArgs) -> IoJob<Box<dyn RawList>> {
        if let Err(e) = self.core.check_key(path) {
            return IoJob::ready(Err(e));
        }
        // As `writer`: no request yet, but refused after a shutdown (but inside a
        // job).
        let (core, path) = (Arc::clone(&self.core), path.to_owned());
        IoJob::inline(move || Ok(Box::new(S3Lister::new(core, &path, args)) as Box<dyn RawList>))
    }
}

/// What an open's first GET asks for: as much of the start of the range as the
/// open reads, in HTTP's terms (an end past the object's is cut short by the
/// server). `None` when the open reads nothing, or a suffix longer than that.
///
/// A range whose length is known here and over `read_whole_up_to` is not read
/// whole: only its first chunk (`read_first`) is asked for. Where the length is not
/// known (a range to the object's end), up to `read_whole_up_to` is, so that the
/// same answer brings the size, and the open keeps all of it as its first chunk.
fn first_request(args: &OpenArgs) -> Option<ByteRange> {
    let known_too_long = matches!(
        (args.range.start(), args.range.end()),
        (Some(start), Some(end)) if end.saturating_sub(start) > args.read_whole_up_to
    );
    let want = if known_too_long {
        args.read_first
    } else {
        args.read_whole_up_to.max(args.read_first)
    };
    if want == 0 {
        return None;
    }
    match (args.range.start(), args.range.end()) {
        (Some(start), end) => {
            let capped = start.saturating_add(want);
            let end = end.map_or(capped, |end| end.min(capped));
            (end > start).then(|| ByteRange::http(start..end))
        }
        (None, _) => {
            // A suffix: whole if it is short enough, else a HEAD first.
            let n = args.range.resolve(u64::MAX).ok()?;
            (n.end - n.start <= args.read_whole_up_to).then_some(args.range)
        }
    }
}

/// Deletes the objects `files` indexes in `paths` in DeleteObjects batches, each
/// result in its place in `results`; `files` is left empty.
async fn delete_files(
    core: &Core,
    paths: &[String],
    files: &mut Vec<usize>,
    results: &mut [Option<Result<()>>],
) {
    if files.is_empty() {
        return;
    }
    let keys: Vec<String> = files.iter().map(|&i| core.key(&paths[i])).collect();
    for (i, result) in files.drain(..).zip(core.delete_many(&keys).await) {
        results[i] = Some(result);
    }
}

/// Deletes object `path`, or directory `path/` if nothing lies below it.
async fn delete_one(core: &Core, path: &str) -> Result<()> {
    let key = core.key(path);
    if path.ends_with('/') {
        // The directory's own marker, if listed.
        let mut marker = false;
        let below = |page: &super::xml::ListBucketResult| {
            marker |= page.contents.iter().any(|o| o.key == key);
            page.contents.iter().any(|o| o.key != key) || !page.common_prefixes.is_empty()
        };
        if core.any_listed(&key, false, 2, below).await? {
            return Err(Error::new(ErrorKind::DirectoryNotEmpty));
        }
        if !marker && core.head(key.trim_end_matches('/')).await?.is_some() {
            return Err(Error::new(ErrorKind::NotADirectory));
        }
    }
    core.delete(&key).await
}
