//! [`DioStore`]: an [`ObjectStore`] over our [`Operator`].

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    RenameTargetMode, Result,
};
use storage::{ErrorKind, Operator, WriteOptions};

use crate::compat;
use crate::convert::{self, ListFrom, Prefix, STORE};
use crate::dio_upload::DioUpload;

/// Paths handed to one `delete_many` call (S3's DeleteObjects takes 1,000).
const DELETE_BATCH: usize = 1000;

/// An [`ObjectStore`] over an [`Operator`] (fs, memory, S3): what a query engine
/// registers to read and write through our executor.
///
/// Every request, every chunk of a `get` stream, every page of a listing and every
/// part of an upload is IO on the operator's executor; the caller's runtime only
/// collects finished results. The one exception is the operator's
/// [`read_now`](storage::Options::read_now) (on by default): a small read of an fs
/// file the backend holds open is tried on the polling thread with
/// `preadv2(RWF_NOWAIT)`, which copies from the page cache or returns at once,
/// never waiting for a disk (off: `Options::with_read_now(false)`). Nothing is
/// ever handed to the caller as a file to read on its own thread: `get_opts` always
/// returns a [`GetResultPayload::Stream`](object_store::GetResultPayload::Stream).
///
/// # How the trait maps
///
/// | method | how |
/// |---|---|
/// | `get_opts` | [`Operator::reader_with`]: conditions checked on the version read; a range of at most [`whole_read_limit`](Self::with_whole_read_limit) bytes (64 MiB by default) is read whole by the job that opens the object, one hand-off and one contiguous buffer; larger ones stream in chunks read ahead on the executor |
/// | `head` (`get_opts` with `head`) | [`Operator::stat_with`] |
/// | `get_ranges` | [`Operator::read_ranges`]: coalesced, split and read in parallel, all from one version of the object |
/// | `put_opts` | [`Operator::write_with`]: `Create` is `if_not_exists`, `Update` is `if_match`; attributes `ContentType` and `StorageClass` are the write's content type and storage class |
/// | `put_multipart_opts` | [`Operator::writer_with`]: invisible until `complete`; attributes as for `put_opts` |
/// | `delete_stream` | [`Operator::delete_many`], up to 1,000 paths a call (S3 DeleteObjects) |
/// | `list`, `list_with_offset` | [`Operator::lister_with`], recursive; the offset is the backend's (S3 `start-after`) |
/// | `list_with_delimiter` | [`Operator::lister_with`], one level |
/// | `copy_opts`, `rename_opts` | [`Operator::copy_with`], [`Operator::rename_with`] (rename is atomic on fs) |
///
/// # Memory
///
/// A `get` stream holds at most `max(whole_read_limit, (prefetch + 1) * chunk_size)`
/// bytes ([`whole_read_limit`](Self::with_whole_read_limit): 64 MiB; for larger
/// objects the operator's [`Options`](storage::Options): 9 MiB of 1 MiB chunks on fs,
/// 12 MiB of 4 MiB chunks elsewhere), but on S3, for an object larger than
/// `whole_read_limit`, `whole_read_limit + prefetch * chunk_size` (72 MiB by default):
/// its first GET asks for `whole_read_limit` bytes, not knowing the size, and the
/// chunks read ahead go out beside it.
///
/// # Semantics worth knowing
///
/// - Conditional writes: `PutMode::Create` and `copy_if_not_exists` are atomic on
///   every backend; `PutMode::Update` is atomic on memory and S3, and
///   [`NotImplemented`](object_store::Error::NotImplemented) on fs (a check and a
///   rename cannot be made one step). ETags: fs derives them from inode, size and
///   modification time; memory makes one per write; S3 has its own.
/// - Object versions are not kept: `GetOptions::version` and
///   `UpdateVersion::version` are `NotSupported`. Attributes other than
///   `ContentType` and `StorageClass` are `NotImplemented`. A storage class is S3's
///   only (`NotImplemented` on fs and memory); a content type is stored by S3 and
///   memory, and `get` and `head` return it in `GetResult::attributes`; fs does
///   not store one, so a write that carries one is `NotImplemented` there. Tags
///   are not stored, and ignored, as the trait asks of stores that do not keep
///   them.
/// - `PutMode::Update` without an ETag is `Generic` (a request that cannot be
///   made), not `Precondition`: a caller that retries failed conditions would
///   retry it for ever.
/// - Paths keep fs's rules on every backend: a put of `a/b` where objects lie
///   below `a/b/` fails (`IsADirectory`), and so does a put of `a/b/c` where `a/b`
///   is an object (`NotADirectory`), both as `Generic` with our error inside.
///   object_store's `AmazonS3` and `InMemory` let such keys coexist; on S3 these
///   checks cost each write a one-key listing and a `HEAD` per parent, at once.
///   An S3 backend built with
///   [`write_checks(false)`](storage::services::s3::S3Builder::write_checks)
///   (`?write_checks=false`) writes keys as `AmazonS3` does: one request a
///   write, such keys side by side.
/// - On fs, a listing walks into symlinked directories (not round a cycle), as
///   `LocalFileSystem` does: a file below a link is listed under each name that
///   leads to it, and deleting such a name deletes the file. Unlike
///   `LocalFileSystem`, links are resolved inside the operator's root, as if it
///   were `/`: a link to a directory elsewhere (`t1 -> /mnt/disk2/t1`) leads to
///   `<root>/mnt/disk2/t1`, most often nothing, so it lists as nothing and reads
///   below it are `NotFound`. Root the operator where the data is.
/// - Listings leave out what is no object: on fs, FIFOs, sockets and devices (as
///   `LocalFileSystem` does) and names that are not UTF-8; on S3, keys that are no
///   path (an empty, `.` or `..` segment: `a//b`, written by another tool), with
///   a warning logged, where `AmazonS3` fails the listing; on every backend, names
///   that are no object_store path (a control character: `Icon\r`), with a
///   warning logged. A FIFO named by its
///   path is still a file to `head` (size 0), and `get` refuses it.
/// - Deleting an object that is not there succeeds on every backend, as on S3
///   and `InMemory` (`LocalFileSystem` answers `NotFound`), a location that names
///   a directory (fs, memory) included, which is left as it is; but on S3 a location
///   whose key (the operator's root, then the path) is longer than the 1,024
///   bytes S3 keys may be is refused, as every operation on it is.
/// - `get` and `head` return the `ContentType` attribute (S3 and memory), not
///   the other headers S3 may hold for an object another client wrote
///   (`Content-Encoding`, `Cache-Control`, user metadata), which `AmazonS3`
///   returns.
/// - `get_ranges` with a range that ends past the object fails
///   ([`Generic`](object_store::Error::Generic), our `RangeNotSatisfiable`
///   inside, naming the range and the object's size), as `LocalFileSystem`'s
///   does; `InMemory`'s, and the trait's default over `get_range`, return what
///   is there. `get_opts` with such a range returns the rest of the object, as
///   `GetRange::Bounded` says.
/// - `if_modified_since` and `if_unmodified_since` compare a time in whole
///   seconds (an HTTP date) in whole seconds, and a finer one (a `last_modified`
///   from fs or memory, handed back) as it is; S3 compares in whole seconds.
/// - On fs, deleting the last object of a directory leaves the (empty) directory,
///   which `list_with_delimiter` shows as a common prefix, as object_store's
///   `LocalFileSystem` does.
///
/// # Errors
///
/// Our [`ErrorKind`]s map to object_store's variants (`NotFound`, `AlreadyExists`,
/// `Precondition`, `NotModified`, `PermissionDenied`, `NotSupported`,
/// `NotImplemented`, `InvalidPath`); everything else is `Generic` with our
/// [`storage::Error`] as the source, so the operation, the path and the backend's
/// context (an S3 request id) survive.
#[derive(Clone)]
pub struct DioStore {
    op: Operator,
    prefix: Prefix,
    whole_read_limit: u64,
}

impl DioStore {
    /// A store over `op`: location `a/b` is the operator's path `a/b`.
    pub fn new(op: Operator) -> Self {
        Self {
            op,
            prefix: Prefix::default(),
            whole_read_limit: 64 << 20,
        }
    }

    /// Serves the operator's root at `prefix`: location `prefix/a/b` is the
    /// operator's path `a/b`, and listings name what they find with the prefix in
    /// front. For a store registered under a URL with a path, as DataFusion sees
    /// `file:///data/warehouse` (locations `data/warehouse/...`) when the operator is
    /// rooted at `/data/warehouse`. A location outside the prefix holds no object:
    /// reading it (`get`, `head`, `get_ranges`) is
    /// [`NotFound`](object_store::Error::NotFound), as for the prefix itself (a
    /// directory), and writing, copying, renaming or deleting it is
    /// [`InvalidPath`](object_store::Error::InvalidPath). So is listing below a
    /// location outside it (its parents list the prefix as one common prefix): a
    /// DataFusion table outside the URL the store was registered for fails instead
    /// of reading as empty.
    ///
    /// `prefix` is a location as [`Path::as_ref`](object_store::path::Path) spells
    /// it; slashes at its ends, and repeated ones (`data//warehouse`), are dropped,
    /// as no location has an empty segment.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = Prefix::new(prefix);
        self
    }

    /// The prefix [`with_prefix`](Self::with_prefix) keeps for `prefix`, as the
    /// start of a location: `""`, or its segments each followed by one `/`
    /// (slashes at its ends, and repeated ones, dropped). For a caller that maps
    /// locations to the operator's paths as this store does (dio-parquet's
    /// reader factory).
    ///
    /// ```
    /// use dio_object_store::DioStore;
    ///
    /// assert_eq!(DioStore::normalized_prefix("/data//warehouse/"), "data/warehouse/");
    /// assert_eq!(DioStore::normalized_prefix("/"), "");
    /// ```
    pub fn normalized_prefix(prefix: &str) -> String {
        prefix
            .split('/')
            .filter(|segment| !segment.is_empty())
            .flat_map(|segment| [segment, "/"])
            .collect()
    }

    /// `get` reads a range of at most `bytes` whole, in one buffer, with one
    /// hand-off (what `get_range` and `bytes()` want); larger ones stream in the
    /// operator's chunks. Default 64 MiB.
    pub fn with_whole_read_limit(mut self, bytes: u64) -> Self {
        self.whole_read_limit = bytes;
        self
    }

    /// The operator behind the store.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    /// The operator directory the store's locations are under: `""`, or a
    /// prefix ending in `/` (see [`with_prefix`](Self::with_prefix)).
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }
}

impl fmt::Display for DioStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix.as_str() {
            "" => write!(f, "DioStore({})", self.op.scheme()),
            prefix => write!(f, "DioStore({} at {prefix})", self.op.scheme()),
        }
    }
}

impl fmt::Debug for DioStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DioStore")
            .field("op", &self.op)
            .field("prefix", &self.prefix.as_str())
            .field("whole_read_limit", &self.whole_read_limit)
            .finish()
    }
}

/// A version asked of a store that keeps none: `NotSupported`, saying where.
fn no_versions(what: &str) -> object_store::Error {
    object_store::Error::NotSupported {
        source: format!("{what}: DioStore keeps no object versions").into(),
    }
}

/// What a write asks of the target, or why it cannot be done.
fn write_options(mode: &PutMode, location: &str) -> Result<WriteOptions> {
    Ok(match mode {
        PutMode::Overwrite => WriteOptions::new(),
        PutMode::Create => WriteOptions::new().with_if_not_exists(true),
        PutMode::Update(version) => match (&version.e_tag, &version.version) {
            (_, Some(_)) => {
                return Err(no_versions(&format!(
                    "{location}: PutMode::Update with a version"
                )));
            }
            (Some(etag), None) => WriteOptions::new().with_if_match(etag),
            // Not a failed condition (a caller retrying those would loop for
            // ever): a request that cannot be made, as object_store's own stores say.
            (None, None) => {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!(
                        "{location}: PutMode::Update needs the ETag of the version to replace"
                    )
                    .into(),
                });
            }
        },
    })
}

#[async_trait]
impl ObjectStore for DioStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let path = self.prefix.path(location)?;
        // Tags are not kept: ignored, as the trait asks of such stores.
        let options = write_options(&opts.mode, location.as_ref())?;
        let options = convert::with_attributes(
            options,
            &opts.attributes,
            "put_opts",
            location.as_ref(),
            self.op.scheme(),
        )?;
        let meta = self
            .op
            .write_with(&path, Bytes::from(payload))
            .options(options)
            .await
            .map_err(|e| convert::write_error(e, &self.prefix, location.as_ref(), "put_opts"))?;
        Ok(compat::put_result(meta.etag().map(str::to_owned)))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let path = self.prefix.path(location)?;
        // Tags are not kept: ignored, as the trait asks of such stores.
        let options = convert::with_attributes(
            WriteOptions::new(),
            &opts.attributes,
            "put_multipart_opts",
            location.as_ref(),
            self.op.scheme(),
        )?;
        let writer = self
            .op
            .writer_with(&path)
            .options(options)
            .await
            .map_err(|e| {
                convert::write_error(e, &self.prefix, location.as_ref(), "put_multipart_opts")
            })?;
        Ok(Box::new(DioUpload::new(
            location.to_string(),
            self.prefix.clone(),
            writer,
            self.op.executor(),
        )))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let path = self.prefix.read_path(location)?;
        if options.version.is_some() {
            return Err(no_versions(&format!("{location}: get with a version")));
        }
        let conditions = convert::conditions(&options);
        if options.head {
            let meta = self.head_object(&path, conditions, location).await?;
            // The range asked for is checked, and answered resolved, as a read of
            // it would be: the object and its conditions first, then the range.
            let range = convert::byte_range(options.range.as_ref())
                .and_then(|range| range.resolve(meta.content_length()))
                .map_err(|e| self.error(e.with_operation("get_opts").with_path(&path), location))?;
            let attributes = convert::attributes(&meta);
            let meta = convert::object_meta(location.clone(), &meta);
            return Ok(compat::get_result(
                futures_util::stream::empty().boxed(),
                meta,
                range,
                attributes,
            ));
        }
        let range = match convert::byte_range(options.range.as_ref()) {
            Ok(range) => range,
            Err(range_error) => {
                // As object_store's own stores answer: the object and its
                // conditions first (a missing object is `NotFound` whatever the
                // range), then the range.
                self.head_object(&path, conditions, location).await?;
                let range_error = range_error.with_operation("get_opts").with_path(&path);
                return Err(self.error(range_error, location));
            }
        };
        let reader = self
            .op
            .reader_with(&path)
            .byte_range(range)
            .conditions(conditions)
            .whole_up_to(self.whole_read_limit)
            .await
            .map_err(|e| self.error(e, location))?;
        let meta = convert::object_meta(location.clone(), reader.metadata());
        let attributes = convert::attributes(reader.metadata());
        let range = reader.range();
        let (prefix, owned) = (self.prefix.clone(), location.to_string());
        let stream = reader
            .map_err(move |e| convert::os_error(e, &prefix, &owned))
            .boxed();
        Ok(compat::get_result(stream, meta, range, attributes))
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = self.prefix.read_path(location)?;
        self.op
            .read_ranges(&path, ranges.to_vec())
            .await
            .map_err(|e| self.error(e, location))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let (op, prefix) = (self.op.clone(), self.prefix.clone());
        locations
            .ready_chunks(DELETE_BATCH)
            .then(move |batch| {
                let (op, prefix) = (op.clone(), prefix.clone());
                async move {
                    // Locations outside the prefix fail on their own.
                    let batch: Vec<Result<(Path, String)>> = batch
                        .into_iter()
                        .map(|item| {
                            let location = item?;
                            let path = prefix.path(&location)?;
                            Ok((location, path))
                        })
                        .collect();
                    let paths: Vec<&str> = batch
                        .iter()
                        .filter_map(|r| r.as_ref().ok().map(|(_, p)| p.as_str()))
                        .collect();
                    let mut results = match op.delete_many(&paths).await {
                        Ok(results) => results.into_iter(),
                        Err(e) => {
                            // The batch as a whole failed: every path in it did.
                            let failed: Vec<_> = paths.iter().map(|_| Err(e.clone())).collect();
                            failed.into_iter()
                        }
                    };
                    let out: Vec<Result<Path>> = batch
                        .into_iter()
                        .map(|item| {
                            let (location, _) = item?;
                            match results.next() {
                                Some(Ok(())) => Ok(location),
                                // A directory (fs, memory) is no object: there is
                                // none to delete, and it is left as it is, as a key
                                // prefix is on S3 and in `InMemory`.
                                Some(Err(e)) if e.kind() == ErrorKind::IsADirectory => Ok(location),
                                Some(Err(e)) => {
                                    Err(convert::os_error(e, &prefix, location.as_ref()))
                                }
                                None => Err(object_store::Error::Generic {
                                    store: STORE,
                                    source: "delete_many returned too few results".into(),
                                }),
                            }
                        })
                        .collect();
                    futures_util::stream::iter(out)
                }
            })
            .flatten()
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list_files(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list_files(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut common_prefixes = Vec::new();
        let mut objects = Vec::new();
        let place = prefix.map_or_else(String::new, Path::to_string);
        let dir = match self.prefix.list_from(prefix) {
            ListFrom::Dir(dir) => dir,
            ListFrom::Ancestor(common) => {
                // One common prefix, if the store holds any object.
                let mut all = self.list(None);
                if let Some(first) = all.next().await {
                    first?;
                    common_prefixes.push(common);
                }
                return Ok(compat::list_result(common_prefixes, objects));
            }
            ListFrom::Nothing => return Err(self.prefix.outside(&place)),
        };
        let mut lister = match self.op.lister_with(&dir).await {
            Ok(lister) => lister,
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                return Ok(compat::list_result(common_prefixes, objects));
            }
            Err(e) => return Err(self.error(e, &place)),
        };
        loop {
            let entry = match lister.next_entry().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                // The prefix is an object: object_store has nothing below it.
                Err(e)
                    if e.kind() == ErrorKind::NotADirectory
                        && objects.is_empty()
                        && common_prefixes.is_empty() =>
                {
                    break;
                }
                Err(e) => return Err(self.error(e, &place)),
            };
            let Some(location) = self.prefix.listed(entry.path()) else {
                continue;
            };
            if entry.metadata().is_dir() {
                common_prefixes.push(location);
            } else {
                objects.push(convert::object_meta(location, entry.metadata()));
            }
        }
        // Directory walks have no order; object stores list in key order.
        common_prefixes.sort_unstable();
        objects.sort_unstable_by(|a, b| a.location.cmp(&b.location));
        Ok(compat::list_result(common_prefixes, objects))
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let if_not_exists = matches!(options.mode, CopyMode::Create);
        let (source, target) = (self.prefix.path(from)?, self.prefix.path(to)?);
        self.op
            .copy_with(&source, &target)
            .if_not_exists(if_not_exists)
            .await
            .map_err(|e| self.transfer_error(e, from, to, &target, "copy"))
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        let if_not_exists = matches!(options.target_mode, RenameTargetMode::Create);
        let (source, target) = (self.prefix.path(from)?, self.prefix.path(to)?);
        self.op
            .rename_with(&source, &target)
            .if_not_exists(if_not_exists)
            .await
            .map_err(|e| self.transfer_error(e, from, to, &target, "rename"))
    }
}

impl DioStore {
    /// object_store's error for ours, from an operation on `location`.
    fn error(
        &self,
        err: storage::Error,
        location: &(impl AsRef<str> + ?Sized),
    ) -> object_store::Error {
        convert::os_error(err, &self.prefix, location.as_ref())
    }

    /// A copy's or rename's error: about the target (`to`, our `target`) as a
    /// write's is (a directory there is no missing object), else as any other.
    fn transfer_error(
        &self,
        err: storage::Error,
        from: &Path,
        to: &Path,
        target: &str,
        operation: &str,
    ) -> object_store::Error {
        if err.kind() == storage::ErrorKind::IsADirectory && err.path() == target {
            convert::write_error(err, &self.prefix, to.as_ref(), operation)
        } else {
            self.error(err, from)
        }
    }

    /// The metadata of the object at `path` (our path of `location`), if it meets
    /// `conditions`; a directory is no object, whatever the conditions (as
    /// object_store's stores answer: `NotFound`, never `Precondition`).
    async fn head_object(
        &self,
        path: &str,
        conditions: storage::Conditions,
        location: &Path,
    ) -> Result<storage::Metadata> {
        let meta = self
            .op
            .stat(path)
            .await
            .map_err(|e| self.error(e, location))?;
        if meta.is_dir() {
            let err = storage::Error::new(ErrorKind::IsADirectory)
                .with_operation("head")
                .with_path(path);
            return Err(self.error(err, location));
        }
        conditions
            .check(&meta)
            .map_err(|e| self.error(e.with_operation("stat").with_path(path), location))?;
        Ok(meta)
    }

    /// Every object below `prefix` (whole segments), after `offset` if given.
    fn list_files(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let place = prefix.map_or_else(String::new, Path::to_string);
        let dir = match self.prefix.list_from(prefix) {
            ListFrom::Dir(dir) => dir,
            ListFrom::Ancestor(_) => String::new(),
            ListFrom::Nothing => {
                let outside = self.prefix.outside(&place);
                return futures_util::stream::once(async move { Err(outside) }).boxed();
            }
        };
        let mut builder = self.op.lister_with(&dir).recursive(true);
        match offset.map(|o| self.prefix.start_after(o)) {
            Some(Ok(Some(after))) => builder = builder.start_after(after),
            Some(Ok(None)) | None => {}
            // The offset sorts after everything the store holds.
            Some(Err(())) => return futures_util::stream::empty().boxed(),
        }
        let opened = std::future::IntoFuture::into_future(builder);
        let prefix = self.prefix.clone();
        futures_util::stream::once(async move {
            match opened.await {
                Ok(lister) => {
                    let (errors, metas) = (prefix.clone(), prefix);
                    let mut first = true;
                    lister
                        // The prefix is an object (a backend may only find out on
                        // the first page): object_store has nothing below it. An
                        // error about a directory below it (fs: one replaced by a
                        // file while the walk went on), or later in the walk, is
                        // an error, never the end.
                        .take_while(move |item| {
                            let below_object = first
                                && matches!(
                                    item, Err(e) if e.kind() == ErrorKind::NotADirectory
                                        && e.path().trim_end_matches('/')
                                            == dir.trim_end_matches('/')
                                );
                            first = false;
                            futures_util::future::ready(!below_object)
                        })
                        .map_err(move |e| convert::os_error(e, &errors, &place))
                        .try_filter_map(move |entry| {
                            futures_util::future::ready(Ok(convert::listed_meta(&metas, &entry)))
                        })
                        .boxed()
                }
                // Listing below an object: object_store has no directories, so there
                // is simply nothing there.
                Err(e) if e.kind() == ErrorKind::NotADirectory => {
                    futures_util::stream::empty().boxed()
                }
                Err(e) => {
                    let err = convert::os_error(e, &prefix, &place);
                    futures_util::stream::once(async move { Err(err) }).boxed()
                }
            }
        })
        .flatten()
        .boxed()
    }
}
