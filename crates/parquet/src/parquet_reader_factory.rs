//! [`ParquetReaderFactory`]: DataFusion's [`ParquetFileReaderFactory`] over an
//! [`Operator`].

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use datafusion::common::Statistics;
use datafusion::datasource::listing::PartitionedFile;
// The `CachedParquetMetaData` DataFusion's metadata loader (`DFParquetMetadata`)
// caches and looks for. DataFusion 55 has a second type of that name in its `reader`
// module (exported at the crate root) which nothing caches: entries of one are not
// found as the other.
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::{ParquetFileMetrics, ParquetFileReaderFactory};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::cache::cache_manager::{
    CachedFileMetadataEntry, FileMetadataCache, FileStatisticsCache, ListFilesCache,
};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectMeta;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::ParquetMetaData;
use storage::Operator;

use crate::ParquetReader;
use crate::parquet_reader::{FOOTER_SIZE, has_indexes, policies};

/// DataFusion's [`ParquetFileReaderFactory`] over an [`Operator`]: each file a scan
/// opens is read by a [`ParquetReader`], so every byte of a scan (footers, page
/// indexes, column chunks) is read on the operator's executor, and the column chunks
/// DataFusion asks for together are read in one coalesced, parallel call.
///
/// A file's location is the operator's path after the
/// [`prefix`](Self::with_prefix): DataFusion names `file:///data/warehouse/t/a.parquet`
/// `data/warehouse/t/a.parquet`, which an operator rooted at `/data/warehouse` knows
/// as `t/a.parquet` (the same mapping as
/// [`DioStore::with_prefix`](dio_object_store::DioStore::with_prefix)).
///
/// With a [metadata cache](Self::with_metadata_cache) (DataFusion's, from
/// `state.runtime_env().cache_manager`) footers are read once per file and
/// version, as DataFusion's own cached factory does: a cached footer serves every
/// later scan. A page index asked of `get_metadata` is added to the cache; the
/// ones DataFusion's scans load themselves (through `get_bytes`, as they do with
/// its own factory) are not.
///
/// [`register`](crate::register) installs this factory for every parquet scan of a
/// registered URL; build one yourself for a hand-made
/// [`ParquetSource`](datafusion::datasource::physical_plan::ParquetSource).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use datafusion::datasource::physical_plan::ParquetSource;
/// use datafusion::arrow::datatypes::{DataType, Field, Schema};
/// use dio_parquet::ParquetReaderFactory;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let op = storage::Operator::from_uri("memory://")?;
/// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
/// let source = ParquetSource::new(schema)
///     .with_parquet_file_reader_factory(Arc::new(ParquetReaderFactory::new(op)));
/// assert!(source.parquet_file_reader_factory().is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ParquetReaderFactory {
    op: Operator,
    prefix: String,
    metadata_cache: Option<Arc<FileMetadataCache>>,
    listings: Option<Arc<ListFilesCache>>,
    statistics: Option<Arc<FileStatisticsCache>>,
    pin_versions: bool,
}

impl ParquetReaderFactory {
    /// A factory whose files are the operator's paths, named as they are.
    pub fn new(op: Operator) -> Self {
        Self {
            op,
            prefix: String::new(),
            metadata_cache: None,
            listings: None,
            statistics: None,
            pin_versions: false,
        }
    }

    /// Serves the operator's root at location `prefix`: location `prefix/a/b` is
    /// the operator's path `a/b`. A location outside the prefix fails the scan.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = normalize_prefix(prefix);
        self
    }

    /// With `true`, each file is read at the version the scan was planned with: the
    /// ETag of its `ObjectMeta` (when it has one) goes with every read
    /// ([`ParquetReader::with_etag`]), so a file replaced after it was listed fails
    /// the scan with `PreconditionFailed` instead of being read with the old
    /// version's size and footer, or read half old, half new. Off by default: the
    /// ETags must be this storage's, which holds when the scan's object store is a
    /// [`DioStore`](dio_object_store::DioStore) over the same operator (what
    /// [`register`](crate::register) sets up, and turns this on for) or S3, but not
    /// for a listing by object_store's `LocalFileSystem`, whose ETags have
    /// another form.
    pub fn with_pinned_versions(mut self, pin: bool) -> Self {
        self.pin_versions = pin;
        self
    }

    /// Whether each file is read at its listed version (see
    /// [`with_pinned_versions`](Self::with_pinned_versions)).
    pub fn pins_versions(&self) -> bool {
        self.pin_versions
    }

    /// Reads and fills `cache` (DataFusion's file-metadata cache) with the files'
    /// metadata, so repeated scans do not read footers again. Footers are then
    /// decoded whole, as DataFusion's own reader decodes them (a scan's metadata
    /// options, such as statistics skipped, are not applied), so that every scan
    /// can be served what one cached; a footer decrypted with a scan's keys is
    /// neither taken from the cache nor put in it.
    pub fn with_metadata_cache(mut self, cache: Arc<FileMetadataCache>) -> Self {
        self.metadata_cache = Some(cache);
        self
    }

    /// Clears `cache` (DataFusion's cache of listings) when a scan finds its listing
    /// stale: a file gone since it was listed (`NotFound`), or, with
    /// [pinned versions](Self::with_pinned_versions), changed (`PreconditionFailed`).
    /// That scan fails; the next query lists the files again and reads what is
    /// there now, where a cached listing would otherwise fail every later query the
    /// same way (DataFusion keeps listings with no expiry by default). The file's
    /// entry in the [metadata cache](Self::with_metadata_cache) goes too.
    ///
    /// The whole cache goes: its entries are a table's listing, found by the
    /// table's name and path, which a scan of one file does not know. A file that
    /// changes is rare, and listing every table once more is cheap next to a query.
    pub fn with_list_files_cache(mut self, cache: Arc<ListFilesCache>) -> Self {
        self.listings = Some(cache);
        self
    }

    /// Clears `cache` (DataFusion's cache of file statistics) when a scan finds its
    /// listing stale, as [`with_list_files_cache`](Self::with_list_files_cache)
    /// does for the listings. DataFusion trusts a cached file's statistics while its
    /// size and modification time are the same, so a file replaced by one of the same
    /// size within the same second (S3 keeps seconds), or with its time kept
    /// (`cp -p`, `rsync -t`), would be pruned, or its constant columns filled in, from
    /// the old file's statistics by the next query: wrong results, no error. Its
    /// entries are found by table too, so the whole cache goes.
    ///
    /// It also goes when a scan finds the file at another version than the footer
    /// the [metadata cache](Self::with_metadata_cache) holds (their ETags differ):
    /// the file was replaced under a listing that is fresh (DataFusion does not
    /// cache a large table's listing), and the query was planned from the old
    /// one's statistics, as the next would be. That scan fails
    /// (`PreconditionFailed`) unless the new footer's row groups are the cached
    /// one's (the same file, listed by a store that makes its ETags otherwise),
    /// and so does every scan of another query planned from the same statistics
    /// before that one ran (its footer to compare with is gone by then: the
    /// statistics themselves are remembered as stale, while a plan holds them).
    /// DataFusion's planner, when it reads a footer from the metadata cache to
    /// add a page index, puts it back under the listing's newer ETag: a footer
    /// relabelled so is served as the new version's, undetected.
    /// What no scan reads cannot be found this way: a file pruned from its old
    /// statistics, or a query DataFusion answers from statistics alone
    /// (`count(*)`), goes on being planned from them until the file's size or
    /// time changes, or a scan of it finds it replaced.
    pub fn with_file_statistics_cache(mut self, cache: Arc<FileStatisticsCache>) -> Self {
        self.statistics = Some(cache);
        self
    }

    /// The operator files are read from.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    /// The location prefix (`""`, or ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The operator's path of a DataFusion location.
    fn path<'a>(&self, location: &'a str) -> DfResult<&'a str> {
        location.strip_prefix(self.prefix.as_str()).ok_or_else(|| {
            DataFusionError::Execution(format!(
                "the parquet file {location:?} is outside the location prefix {:?} \
                 this reader factory serves",
                self.prefix
            ))
        })
    }
}

/// `""`, or the prefix's segments each followed by one `/`: the prefix a
/// [`DioStore`](dio_object_store::DioStore) keeps, so that both map a location to
/// the same path.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    dio_object_store::DioStore::normalized_prefix(prefix)
}

impl ParquetFileReaderFactory for ParquetReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> DfResult<Box<dyn AsyncFileReader + Send>> {
        let planned = file.statistics.clone();
        let meta = file.object_meta;
        let location = meta.location.as_ref();
        let path = self.path(location)?;
        let mut reader = ParquetReader::new(self.op.clone(), path)
            .with_file_size(meta.size)
            // No hint is DataFusion's "no prefetch": the footer, then the metadata.
            .with_footer_hint(metadata_size_hint.unwrap_or(FOOTER_SIZE));
        if self.pin_versions
            && let Some(etag) = &meta.e_tag
        {
            reader = reader.with_etag(etag.as_str());
        }
        let metrics = ParquetFileMetrics::new(partition_index, location, metrics);
        let caches = Arc::new(Caches {
            location: meta.location.clone(),
            prefixed: path != location,
            metadata: self.metadata_cache.clone(),
            listings: self.listings.clone(),
            statistics: self.statistics.clone(),
        });
        Ok(Box::new(ScanReader {
            reader,
            metrics,
            meta,
            caches,
            planned,
        }))
    }
}

impl fmt::Debug for ParquetReaderFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParquetReaderFactory")
            .field("op", &self.op)
            .field("prefix", &self.prefix)
            .field("metadata_cache", &self.metadata_cache.is_some())
            .field("list_files_cache", &self.listings.is_some())
            .field("file_statistics_cache", &self.statistics.is_some())
            .field("pin_versions", &self.pin_versions)
            .finish()
    }
}

/// One file of a scan: a [`ParquetReader`] that also counts what it reads in
/// DataFusion's metrics, goes through the file-metadata cache, and forgets what
/// DataFusion cached of a listing it finds stale.
struct ScanReader {
    reader: ParquetReader,
    metrics: ParquetFileMetrics,
    meta: ObjectMeta,
    /// Shared with the reader's futures, which outlive a borrow of the reader.
    caches: Arc<Caches>,
    /// The statistics the scan was planned from (DataFusion's statistics cache
    /// hands every plan of a file the same `Arc`).
    planned: Option<Arc<Statistics>>,
}

/// Statistics a scan found planned from another version of its file than the one
/// there now (see [`ScanReader::same_as_planned`]). That scan clears the cached
/// footer it compared with, so a scan of another plan made from the same
/// statistics (queries planned before either ran) would find nothing to compare
/// and answer from them: it is stopped by their identity instead.
static STALE_STATISTICS: Mutex<Vec<Weak<Statistics>>> = Mutex::new(Vec::new());

/// Notes `planned` as stale (forgetting the notes of statistics no plan holds).
fn mark_stale(planned: &Arc<Statistics>) {
    let mut stale = STALE_STATISTICS.lock().unwrap_or_else(|e| e.into_inner());
    stale.retain(|s| s.strong_count() > 0);
    stale.push(Arc::downgrade(planned));
}

/// Whether `planned` was found stale by an earlier scan.
fn is_stale(planned: &Arc<Statistics>) -> bool {
    let stale = STALE_STATISTICS.lock().unwrap_or_else(|e| e.into_inner());
    stale
        .iter()
        .any(|s| std::ptr::eq(s.as_ptr(), Arc::as_ptr(planned)))
}

/// DataFusion's caches a scan of one file reads through (the footer) or clears
/// when it finds its listing stale (see
/// [`ParquetReaderFactory::with_list_files_cache`]).
pub(crate) struct Caches {
    location: object_store::path::Path,
    /// The operator's path of the file is not its location (the factory serves a
    /// prefix): errors, which name that path, name the location too.
    prefixed: bool,
    metadata: Option<Arc<FileMetadataCache>>,
    listings: Option<Arc<ListFilesCache>>,
    statistics: Option<Arc<FileStatisticsCache>>,
}

impl Caches {
    /// `result`, having cleared what was cached from the listing if it says the
    /// file is gone, or no longer the version it was listed at; its error names
    /// the file's location.
    fn check<T>(&self, result: Result<T>) -> Result<T> {
        self.forget_if_stale(&result);
        result.map_err(|e| self.named(e))
    }

    /// `err` naming the file's location where it names only the operator's path.
    fn named(&self, err: ParquetError) -> ParquetError {
        if !self.prefixed {
            return err;
        }
        let location = self.location.as_ref();
        match err {
            ParquetError::External(e) => match e.downcast::<storage::Error>() {
                // One that names the location already (a listing found stale).
                Ok(e) if e.path() == location => ParquetError::External(e),
                Ok(e) => ParquetError::External(Box::new(e.with_context("location", location))),
                Err(e) => ParquetError::External(e),
            },
            ParquetError::General(message) => {
                ParquetError::General(format!("{message} (location {location:?})"))
            }
            ParquetError::EOF(message) => {
                ParquetError::EOF(format!("{message} (location {location:?})"))
            }
            other => other,
        }
    }

    /// Clears what was cached from the listing if `result` says the file is gone,
    /// or no longer the version it was listed at.
    fn forget_if_stale<T>(&self, result: &Result<T>) {
        if let Err(ParquetError::External(e)) = result
            && e.downcast_ref::<storage::Error>().is_some_and(|e| {
                e.kind() == storage::ErrorKind::NotFound
                    || (e.kind() == storage::ErrorKind::PreconditionFailed
                        && e.context("expected_etag").is_some())
            })
        {
            tracing::info!(error = %e, "a scan found its file gone or changed");
            self.forget_listing();
        }
    }

    /// The caches of `manager` (a runtime's) for the file at `location`.
    pub(crate) fn of_runtime(
        location: object_store::path::Path,
        manager: &datafusion::execution::cache::cache_manager::CacheManager,
    ) -> Self {
        Self {
            location,
            prefixed: false,
            metadata: Some(manager.get_file_metadata_cache()),
            listings: manager.get_list_files_cache(),
            statistics: manager.get_file_statistic_cache(),
        }
    }

    /// Forgets what was cached from the listing of a file found gone or changed
    /// since it was listed: the listings, and what [`forget_file`](Self::forget_file)
    /// forgets, so that the next query lists and plans again.
    pub(crate) fn forget_listing(&self) {
        tracing::info!(
            location = %self.location,
            "a file is gone or changed since it was listed; what was cached from the listing is cleared"
        );
        if let Some(listings) = &self.listings {
            listings.clear();
        }
        self.forget_file();
    }

    /// Forgets what was cached of this file's contents: its footer, and the
    /// statistics DataFusion plans from (kept by path, and trusted while the
    /// size and modification time are the same).
    fn forget_file(&self) {
        if let Some(statistics) = &self.statistics {
            statistics.clear();
        }
        if let Some(metadata) = &self.metadata {
            metadata.remove(&self.location);
        }
    }
}

/// What [`ScanReader::cached`] found.
enum Cached {
    None,
    /// The footer of the version the scan listed.
    Valid(Arc<ParquetMetaData>),
    /// The footer of a version of another ETag (now forgotten).
    OtherVersion {
        footer: Arc<ParquetMetaData>,
        etag: String,
    },
}

impl ScanReader {
    /// The cached metadata of this version of the file, if any. DataFusion's
    /// check compares sizes and modification times; the ETags are compared too
    /// when both are known, so a file replaced by one of the same size within
    /// the same second (S3's times are in seconds) does not get the old footer.
    /// Such a footer is forgotten with the statistics, and returned as
    /// [`Cached::OtherVersion`] only where DataFusion's check passes (same size
    /// and time): only then can the scan have been planned from it. A footer of
    /// another size or time was not used for planning (DataFusion reads the
    /// footer again for such a file), so the scan reads the file's own.
    fn cached(&self) -> Cached {
        let Some(entry) = self
            .caches
            .metadata
            .as_ref()
            .and_then(|cache| cache.get(&self.meta.location))
        else {
            return Cached::None;
        };
        let footer = entry
            .file_metadata
            .as_any()
            .downcast_ref::<CachedParquetMetaData>()
            .map(|cached| Arc::clone(cached.parquet_metadata()));
        if let (Some(cached), Some(listed)) = (&entry.meta.e_tag, &self.meta.e_tag)
            && cached != listed
        {
            tracing::info!(
                location = %self.meta.location,
                "a file's cached footer is of another ETag; it and the statistics are cleared"
            );
            self.caches.forget_file();
            return match footer {
                Some(footer) if entry.is_valid_for(&self.meta) => Cached::OtherVersion {
                    footer,
                    etag: cached.clone(),
                },
                _ => Cached::None,
            };
        }
        match footer {
            Some(footer) if entry.is_valid_for(&self.meta) => Cached::Valid(footer),
            _ => Cached::None,
        }
    }

    /// `metadata`, read for a scan whose cached footer was of another ETag
    /// (`other`): DataFusion planned the scan from that version's statistics (a
    /// column it held one value in is read as that constant, never from the
    /// file), so unless the file's row groups are what they were, the scan stops.
    /// Equal row groups are the same file under another ETag (listed by another
    /// store, whose ETags are made differently).
    ///
    /// # Errors
    ///
    /// `PreconditionFailed` naming the file when its row groups changed: the
    /// query run again is planned from the new version.
    fn same_as_planned(
        &self,
        metadata: Arc<ParquetMetaData>,
        other: (&ParquetMetaData, &str),
    ) -> Result<Arc<ParquetMetaData>> {
        let (footer, etag) = other;
        // Statistics may hold NaN, which equals nothing: what `==` calls
        // different is compared again as printed.
        let same =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
        let files = footer.file_metadata() == metadata.file_metadata()
            || same(footer.file_metadata(), metadata.file_metadata());
        let groups = footer.row_groups() == metadata.row_groups()
            || same(&footer.row_groups(), &metadata.row_groups());
        if files && groups {
            return Ok(metadata);
        }
        if let Some(planned) = &self.planned {
            mark_stale(planned);
        }
        let listed = self.meta.e_tag.as_deref().unwrap_or("none");
        let err = storage::Error::new(storage::ErrorKind::PreconditionFailed)
            .with_operation("read")
            .with_path(self.meta.location.to_string())
            .with_message(format!(
                "the file was replaced by one of the same size and modification time \
                 (ETag {listed}, where what was cached of it is of {etag}): this scan was \
                 planned from the old version's statistics, so it stops; run the query \
                 again"
            ));
        Err(ParquetError::External(Box::new(err)))
    }

    fn remember(&self, metadata: &Arc<ParquetMetaData>) {
        if let Some(cache) = &self.caches.metadata {
            let entry = CachedFileMetadataEntry::new(
                self.meta.clone(),
                Arc::new(CachedParquetMetaData::new(Arc::clone(metadata))),
            );
            cache.put(&self.meta.location, entry);
        }
    }

    async fn metadata(&self, options: Option<&ArrowReaderOptions>) -> Result<Arc<ParquetMetaData>> {
        if self.planned.as_ref().is_some_and(is_stale) {
            let err = storage::Error::new(storage::ErrorKind::PreconditionFailed)
                .with_operation("read")
                .with_path(self.meta.location.to_string())
                .with_message(
                    "the file was replaced by one of the same size and modification time: \
                     this scan was planned from statistics an earlier scan found to be of \
                     the old version, so it stops; run the query again",
                );
            return Err(ParquetError::External(Box::new(err)));
        }
        let (column, offset) = policies(self.reader.page_index(), options);
        let cacheable = cacheable(options);
        let other = match self.cached() {
            Cached::Valid(cached) if cacheable => Err(cached),
            // A footer decrypted with the options' keys is decoded as the cached
            // one was not: not compared.
            Cached::OtherVersion { footer, etag } if cacheable => Ok(Some((footer, etag))),
            _ => Ok(None),
        };
        let other = match other {
            Ok(other) => other,
            Err(cached) => {
                if has_indexes(&cached, (column, offset)) {
                    return Ok(cached);
                }
                // The footer is cached without an index that is wanted now.
                let footer = Arc::unwrap_or_clone(cached);
                let metadata = self.reader.load_page_indexes(footer, (column, offset));
                let metadata = Arc::new(metadata.await?);
                self.remember(&metadata);
                return Ok(metadata);
            }
        };
        // The footer the shared cache keeps is the whole one, decoded as
        // DataFusion's own reader decodes it: not with the options' metadata
        // options (statistics skipped, a schema given), so that no scan is served
        // a footer reduced for another.
        let whole;
        let decoding = if cacheable {
            whole = ArrowReaderOptions::new()
                .with_column_index_policy(column)
                .with_offset_index_policy(offset);
            Some(&whole)
        } else {
            options
        };
        let metadata = self
            .reader
            .load_metadata(self.reader.page_index(), decoding);
        let mut metadata = Arc::new(metadata.await?);
        if let Some((footer, etag)) = &other {
            metadata = self.same_as_planned(metadata, (footer, etag))?;
        }
        if cacheable {
            self.remember(&metadata);
        }
        Ok(metadata)
    }
}

/// Whether metadata read with `options` may be taken from and put in the shared
/// cache: not when it is decrypted with the options' keys, as DataFusion's own
/// reader decides (another scan, without those keys, would be served it).
fn cacheable(options: Option<&ArrowReaderOptions>) -> bool {
    options.is_none_or(|o| o.file_decryption_properties().is_none())
}

impl AsyncFileReader for ScanReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        self.metrics
            .bytes_scanned
            .add(range.end.saturating_sub(range.start) as usize);
        let caches = Arc::clone(&self.caches);
        let read = self.reader.get_bytes(range);
        async move { caches.check(read.await) }.boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        // Saturating: a backwards range is storage's `InvalidInput`, not a panic here.
        let total: u64 = ranges.iter().map(|r| r.end.saturating_sub(r.start)).sum();
        self.metrics.bytes_scanned.add(total as usize);
        let caches = Arc::clone(&self.caches);
        let reads = self.reader.get_byte_ranges(ranges);
        async move { caches.check(reads.await) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        async move { self.caches.check(self.metadata(options).await) }.boxed()
    }
}

impl Drop for ScanReader {
    fn drop(&mut self) {
        // DataFusion's scan efficiency: bytes read over the file's size.
        self.metrics
            .scan_efficiency_ratio
            .add_part(self.metrics.bytes_scanned.value());
        self.metrics
            .scan_efficiency_ratio
            .set_total(self.meta.size as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_whole_segments_ending_in_a_slash() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("data/warehouse"), "data/warehouse/");
        assert_eq!(normalize_prefix("/data/warehouse/"), "data/warehouse/");
        assert_eq!(normalize_prefix("data//warehouse"), "data/warehouse/");
    }

    #[test]
    fn locations_map_to_the_operators_paths() {
        let op = Operator::from_uri("memory://").unwrap();
        let factory = ParquetReaderFactory::new(op).with_prefix("/data/warehouse");
        assert_eq!(
            factory.path("data/warehouse/t/a.parquet").unwrap(),
            "t/a.parquet"
        );
        let err = factory.path("data/other/a.parquet").unwrap_err();
        assert!(
            err.to_string().contains("outside the location prefix"),
            "{err}"
        );
        // A prefix is whole segments: `data/warehouse2` is not below `data/warehouse`.
        assert!(factory.path("data/warehouse2/a.parquet").is_err());
    }
}
