//! [`ParquetReader`]: parquet's [`AsyncFileReader`] over an [`Operator`].

use std::fmt;
use std::future::IntoFuture as _;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::{AsyncFileReader, MetadataFetch};
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use storage::raw::ByteRange;
use storage::{Conditions, Operator};

/// Parquet's footer: the metadata's length and the magic `PAR1`.
pub(crate) const FOOTER_SIZE: usize = 8;

/// How many bytes at the end of a file the first metadata read asks for, unless
/// told otherwise: DataFusion's default (`datafusion.execution.parquet.metadata_size_hint`),
/// enough for the footer and the page index of a typical file, so that both come
/// in one read.
pub const DEFAULT_FOOTER_HINT: usize = 512 << 10;

/// Parquet's [`AsyncFileReader`] over a file of an [`Operator`]: every read that
/// may wait is done on the operator's executor, never on the runtime that polls
/// the reader. (With the operator's [`read_now`](storage::Options::read_now), on by
/// default, a small range of an fs file the backend holds open is first tried on
/// the polling thread with `preadv2(RWF_NOWAIT)`: a copy from the page cache, or
/// an immediate return, never a wait for a disk.)
///
/// | method | how |
/// |---|---|
/// | `get_bytes` | [`Operator::read_range`] |
/// | `get_byte_ranges` | [`Operator::read_ranges`]: one call for all the ranges, coalesced and read in parallel, all from one version of the file (the trait's default would read them one by one) |
/// | `get_metadata` | [`ParquetMetaDataReader`], first reading the last [`footer hint`](Self::with_footer_hint) bytes (512 KiB by default): one read for the footer and, when asked for, the page index of a typical file. Without a [file size](Self::with_file_size) that read is a suffix read, so no `stat` is needed either |
///
/// The page index is loaded when the [`ArrowReaderOptions`] ask for it
/// ([`ArrowReaderOptions::with_page_index_policy`]) or when
/// [`with_page_index`](Self::with_page_index) says so; the stronger of the two
/// policies wins.
///
/// With [`with_etag`](Self::with_etag) every read asks for one version of the
/// file, so a file replaced while it is read fails instead of mixing two versions.
/// Without it, a reader that reads its own metadata without a
/// [size](Self::with_file_size) holds every later read to the version its first
/// read (the file's tail) saw, when the backend gives versions (an ETag): the
/// rest of the footer, the page index and the column chunks. A file replaced
/// meanwhile (on fs: its modification time changed) fails with a temporary
/// `Unexpected` error whose `changed` context says so, not with a corrupt footer
/// decoded from two versions, or the new file's bytes read at the old metadata's
/// offsets. The version is the reader's for good: a clone made after its first
/// read holds to it too, and reading the new version takes a new reader (or a
/// clone made before). (With a size and no ETag, nothing learns the version, and
/// the reads are not held to one.)
///
/// Errors are [`ParquetError::External`] holding the [`storage::Error`], so the
/// operation, the path and the backend's context survive (downcast the source to
/// read them).
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use dio_parquet::ParquetReader;
/// use futures::TryStreamExt;
/// use parquet::arrow::{ArrowWriter, ParquetRecordBatchStreamBuilder, ProjectionMask};
/// use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = io_executor::Builder::new().name("parquet-io").build()?;
/// let op = storage::Operator::from_uri("memory://")?.with_executor(io.clone());
///
/// // A file with two columns.
/// let batch = RecordBatch::try_from_iter([
///     ("id", Arc::new(Int64Array::from_iter_values(0..1000)) as _),
///     ("name", Arc::new(StringArray::from_iter_values((0..1000).map(|i| format!("n{i}")))) as _),
/// ])?;
/// let mut file = Vec::new();
/// let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), None)?;
/// writer.write(&batch)?;
/// writer.close()?;
/// op.write("t/part-0.parquet", file).await?;
///
/// // Read one column back: the footer in one read, the column chunks in one
/// // coalesced call, all of it on `parquet-io`.
/// let reader = ParquetReader::new(op, "t/part-0.parquet");
/// let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
/// let mask = ProjectionMask::columns(builder.parquet_schema(), ["id"]);
/// let batches: Vec<RecordBatch> = builder.with_projection(mask).build()?.try_collect().await?;
/// assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1000);
/// assert_eq!(batches[0].num_columns(), 1);
///
/// io.shutdown();
/// io.join().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ParquetReader {
    op: Operator,
    path: Arc<str>,
    file_size: Option<u64>,
    etag: Option<Arc<str>>,
    /// Without `etag`: the version the reader's first read saw (the file's tail,
    /// read with its metadata), which every later read holds to. A clone made
    /// after that read holds to it too; one made before learns its own.
    seen: OnceLock<String>,
    footer_hint: usize,
    page_index: PageIndexPolicy,
}

impl ParquetReader {
    /// A reader of file `path` of `op`.
    pub fn new(op: Operator, path: impl Into<String>) -> Self {
        Self {
            op,
            path: Arc::from(path.into()),
            file_size: None,
            etag: None,
            seen: OnceLock::new(),
            footer_hint: DEFAULT_FOOTER_HINT,
            page_index: PageIndexPolicy::Skip,
        }
    }

    /// The file's size, if known (from a listing): the metadata is then read with a
    /// bounded range. Without it, the first read asks for the file's last bytes
    /// (a suffix read), which needs no size either.
    pub fn with_file_size(mut self, bytes: u64) -> Self {
        self.file_size = Some(bytes);
        self
    }

    /// Reads only the version of the file whose ETag is `etag` (as a listing or a
    /// `stat` of the same storage gave it): every read asks for it (`If-Match`),
    /// so a file replaced after it was listed fails with
    /// [`ErrorKind::PreconditionFailed`](storage::ErrorKind::PreconditionFailed)
    /// (`expected_etag` in its context) instead of mixing two versions, or decoding
    /// the new one with the old one's size and footer.
    ///
    /// The ETag must be this storage's: one from the operator, a
    /// [`DioStore`](dio_object_store::DioStore) over it, or S3 itself.
    /// Another client's ETag of a local file (object_store's `LocalFileSystem`)
    /// is of another form, and never matches.
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(Arc::from(etag.into()));
        self
    }

    /// The version every read asks for, if any (see [`with_etag`](Self::with_etag)).
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// How many bytes at the end of the file the first metadata read asks for
    /// (default [`DEFAULT_FOOTER_HINT`]). When the footer (and the page index, if
    /// asked for) fit, the metadata costs one read; otherwise one or two more
    /// follow. At least 8 bytes (parquet's footer) are read.
    pub fn with_footer_hint(mut self, bytes: usize) -> Self {
        self.footer_hint = bytes;
        self
    }

    /// Whether [`get_metadata`](AsyncFileReader::get_metadata) loads the page index
    /// (column and offset indexes) even when the [`ArrowReaderOptions`] do not ask
    /// for it. Default [`PageIndexPolicy::Skip`].
    pub fn with_page_index(mut self, policy: PageIndexPolicy) -> Self {
        self.page_index = policy;
        self
    }

    /// The file's path in the operator.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The operator the file is read from.
    pub fn operator(&self) -> &Operator {
        &self.op
    }

    /// The file's metadata, with the page index as `policy` and the options say:
    /// what [`get_metadata`](AsyncFileReader::get_metadata) does (with the
    /// reader's own [`with_page_index`](Self::with_page_index) policy), for callers
    /// that hold the reader by reference. Each index (column, offset) is loaded as
    /// the stronger of `policy` and the options' policy for it asks. The options'
    /// metadata options and decryption properties (with parquet's `encryption`
    /// feature) are applied.
    ///
    /// # Errors
    ///
    /// [`ParquetError::External`] with the [`storage::Error`] of a failed read;
    /// for a file that is not parquet, or [`PageIndexPolicy::Required`] and a file
    /// without that index, parquet's error, as [`ParquetError::General`] naming the
    /// file ([`ParquetError::EOF`] for a file too short for its footer).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the read in flight on the executor.
    pub async fn load_metadata(
        &self,
        policy: PageIndexPolicy,
        options: Option<&ArrowReaderOptions>,
    ) -> Result<ParquetMetaData> {
        let (column, offset) = policies(policy, options);
        let loader = ParquetMetaDataReader::new()
            .with_prefetch_hint(Some(self.footer_hint))
            .with_arrow_reader_options(options)
            .with_column_index_policy(column)
            .with_offset_index_policy(offset);
        let loaded = match self.file_size {
            Some(size) => loader.load_and_finish(Fetch::new(self), size).await,
            None => {
                // Not `load_via_suffix_and_finish`: parquet (58 and 59) takes the bytes
                // a suffix read brought before the footer for the start of the file,
                // so a page index loaded from them is sliced at the wrong offsets (an
                // error, or the wrong bytes) once the file is longer than the hint.
                // The suffix read here learns the file's size too, and parquet's
                // sized path is served from what it brought: still one read.
                let (size, tail) = self.read_tail().await?;
                let fetch = Fetch::new(self).with_tail(size - tail.len() as u64, tail);
                loader.load_and_finish(fetch, size).await
            }
        };
        let metadata = loaded.map_err(|e| self.decoding(e))?;
        self.required((column, offset), metadata)
    }

    /// `metadata`, if it has every index `policies` (column, offset) require:
    /// parquet answers a file with no page index at all as if none were asked
    /// for, where [`PageIndexPolicy::Required`] promises an error.
    fn required(
        &self,
        (column, offset): (PageIndexPolicy, PageIndexPolicy),
        metadata: ParquetMetaData,
    ) -> Result<ParquetMetaData> {
        let missing = |policy: PageIndexPolicy, present: bool| {
            policy == PageIndexPolicy::Required && !present && metadata.num_row_groups() > 0
        };
        let offset_present = metadata.offset_index().is_some();
        let lacking = if missing(column, has_column_index(&metadata)) {
            if offset_present || offset == PageIndexPolicy::Skip {
                "column index"
            } else {
                "column index (nor an offset index, without which parquet reads no column index)"
            }
        } else if missing(offset, offset_present) {
            "offset index"
        } else {
            return Ok(metadata);
        };
        Err(ParquetError::General(format!(
            "cannot read the parquet metadata of {:?}: the page index is required \
             (PageIndexPolicy::Required) and the file has no {lacking}",
            self.path
        )))
    }

    /// Parquet's error for this file's metadata, naming the file (a storage error
    /// names it already, and stays as it is). A scan of thousands of files
    /// otherwise says only "Corrupt footer".
    fn decoding(&self, err: ParquetError) -> ParquetError {
        match err {
            ParquetError::External(e) if e.is::<storage::Error>() => ParquetError::External(e),
            // A file too short for what its footer says stays an EOF.
            ParquetError::EOF(message) => ParquetError::EOF(format!(
                "cannot read the parquet metadata of {:?}: {message}",
                self.path
            )),
            other => ParquetError::General(format!(
                "cannot read the parquet metadata of {:?}: {other}",
                self.path
            )),
        }
    }

    /// The file's size and its last [`footer_hint`](Self::with_footer_hint) bytes
    /// (all of it if it is shorter), in one read, which also learns the version the
    /// reader holds to from then on, if it was given none.
    async fn read_tail(&self) -> Result<(u64, Bytes)> {
        let hint = self.footer_hint.max(FOOTER_SIZE) as u64;
        let mut reader = self
            .op
            .reader_with(&self.path)
            .byte_range(ByteRange::suffix(hint))
            .whole_up_to(hint)
            .conditions(self.conditions())
            .await
            .map_err(|e| self.external(e))?;
        let size = reader.metadata().content_length();
        if self.etag.is_none()
            && let Some(etag) = reader.metadata().etag()
            && self.seen.get_or_init(|| etag.to_owned()) != etag
        {
            // Another load of this reader, at the same time, saw another version
            // first (a later one opens with `If-Match` on it, and fails above):
            // this one's metadata is not of the version the reads hold to.
            let err = storage::Error::new(storage::ErrorKind::PreconditionFailed)
                .with_operation("reader")
                .with_path(self.path.to_string());
            return Err(self.external(err));
        }
        let mut tail = match reader.next().await {
            Some(first) => first.map_err(|e| self.external(e))?,
            None => Bytes::new(),
        };
        // Read whole by the job that opened the file, so one chunk; more only if an
        // operator's options cap the reader's chunks lower.
        while let Some(more) = reader.next().await {
            let mut joined = Vec::with_capacity(tail.len() + more.as_ref().map_or(0, Bytes::len));
            joined.extend_from_slice(&tail);
            joined.extend_from_slice(&more.map_err(|e| self.external(e))?);
            tail = joined.into();
        }
        Ok((size, tail))
    }

    /// Adds the page index to `metadata` read earlier (one read of the index's
    /// bytes; none if `metadata` has it already or the file has none).
    ///
    /// # Errors
    ///
    /// As [`load_metadata`](Self::load_metadata).
    ///
    /// # Cancel safety
    ///
    /// Dropping the future cancels the read in flight on the executor.
    pub async fn load_page_index(
        &self,
        metadata: ParquetMetaData,
        policy: PageIndexPolicy,
    ) -> Result<ParquetMetaData> {
        self.load_page_indexes(metadata, (policy, policy)).await
    }

    /// [`load_page_index`](Self::load_page_index) with a policy per index (column,
    /// offset).
    pub(crate) async fn load_page_indexes(
        &self,
        metadata: ParquetMetaData,
        (column, offset): (PageIndexPolicy, PageIndexPolicy),
    ) -> Result<ParquetMetaData> {
        // Parquet reads an index again even when the metadata has it.
        if has_indexes(&metadata, (column, offset)) {
            return Ok(metadata);
        }
        let mut loader = ParquetMetaDataReader::new_with_metadata(metadata)
            .with_column_index_policy(column)
            .with_offset_index_policy(offset);
        loader
            .load_page_index(Fetch::new(self))
            .await
            .map_err(|e| self.decoding(e))?;
        let metadata = loader.finish().map_err(|e| self.decoding(e))?;
        self.required((column, offset), metadata)
    }

    /// The reader's own page index policy (see [`with_page_index`](Self::with_page_index)).
    pub(crate) fn page_index(&self) -> PageIndexPolicy {
        self.page_index
    }

    /// What every read asks of the file: its version, if the reader has one (given,
    /// or seen by its first read).
    fn conditions(&self) -> Conditions {
        let mut conditions = Conditions::default();
        conditions.if_match = self
            .etag
            .as_deref()
            .or_else(|| self.seen.get().map(String::as_str))
            .map(str::to_owned);
        conditions
    }

    /// Bytes `range` of the file (of its version, if it has one), submitted now.
    fn read_range(&self, range: Range<u64>) -> BoxFuture<'static, Result<Bytes>> {
        let read = self
            .op
            .read_with(&self.path)
            .range(range)
            .conditions(self.conditions())
            .into_future();
        let reader = self.versions();
        async move { read.await.map_err(|e| reader.error(e)) }.boxed()
    }

    /// Parquet's error for a storage error of this reader.
    fn external(&self, err: storage::Error) -> ParquetError {
        self.versions().error(err)
    }

    fn versions(&self) -> Versions {
        Versions {
            given: self.etag.clone(),
            seen: self.seen.get().is_some(),
        }
    }
}

/// Which version a reader's reads held to, for their errors.
struct Versions {
    /// The ETag the reader was given.
    given: Option<Arc<str>>,
    /// Without one: whether the reads held to the version the first read saw.
    seen: bool,
}

impl Versions {
    /// Parquet's error for `err`: a failed condition says which version was held
    /// to. The caller's own version failed its condition (`PreconditionFailed`);
    /// the one the reader saw first is a file replaced while it was read, a
    /// temporary error (reading again reads the new version), see
    /// [`storage::Error::changed_while_read`].
    fn error(&self, err: storage::Error) -> ParquetError {
        if err.kind() != storage::ErrorKind::PreconditionFailed {
            return external(err);
        }
        match (&self.given, self.seen) {
            (Some(etag), _) => external(
                err.with_context("expected_etag", etag.as_ref())
                    .with_message(
                        "the file is no longer the version the reader was given (it was \
                         replaced or modified after it was listed)",
                    ),
            ),
            (None, true) => external(err.changed_while_read(
                "the file was replaced while it was read (the reader holds to the \
                 version its first read saw)",
            )),
            (None, false) => external(err),
        }
    }
}

/// The policies (column index, offset index) for one metadata load: for each,
/// the stronger of `floor` and what the options ask for that index.
pub(crate) fn policies(
    floor: PageIndexPolicy,
    options: Option<&ArrowReaderOptions>,
) -> (PageIndexPolicy, PageIndexPolicy) {
    match options {
        Some(o) => (
            stronger(floor, o.column_index_policy()),
            stronger(floor, o.offset_index_policy()),
        ),
        None => (floor, floor),
    }
}

/// Whether `metadata` has every index (column, offset) the policies ask for.
pub(crate) fn has_indexes(
    metadata: &ParquetMetaData,
    (column, offset): (PageIndexPolicy, PageIndexPolicy),
) -> bool {
    let has = |policy: PageIndexPolicy, present: bool| present || policy == PageIndexPolicy::Skip;
    // A required column index is one that holds something (see
    // `has_column_index`): metadata with `NONE`s only goes through the load,
    // which says the file lacks it.
    let column_present = match column {
        PageIndexPolicy::Required => has_column_index(metadata),
        _ => metadata.column_index().is_some(),
    };
    has(column, column_present) && has(offset, metadata.offset_index().is_some())
}

/// Whether `metadata` holds a column index for at least one column chunk. Parquet
/// fills the column index in with `NONE`s where a file has only offset indexes
/// (statistics per chunk, or none), and reads no column index at all without
/// the offset index.
fn has_column_index(metadata: &ParquetMetaData) -> bool {
    metadata.column_index().is_some_and(|groups| {
        groups
            .iter()
            .flatten()
            .any(|index| !matches!(index, ColumnIndexMetaData::NONE))
    })
}

/// `Required` over `Optional` over `Skip`.
pub(crate) fn stronger(a: PageIndexPolicy, b: PageIndexPolicy) -> PageIndexPolicy {
    let rank = |p: PageIndexPolicy| match p {
        PageIndexPolicy::Skip => 0,
        PageIndexPolicy::Optional => 1,
        PageIndexPolicy::Required => 2,
    };
    if rank(a) >= rank(b) { a } else { b }
}

/// Parquet's error for ours: the [`storage::Error`] itself, as the source.
pub(crate) fn external(err: storage::Error) -> ParquetError {
    ParquetError::External(Box::new(err))
}

impl AsyncFileReader for ParquetReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        // Submitted now, the read runs while the caller gets to the await; a small
        // one on fs may instead wait to be first polled, to be batched with others
        // (see `Operator::read_range`).
        self.read_range(range)
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        if ranges.is_empty() {
            return futures::future::ready(Ok(Vec::new())).boxed();
        }
        let read = self
            .op
            .read_ranges_with(&self.path, ranges)
            .conditions(self.conditions())
            .into_future();
        async move { read.await.map_err(|e| self.external(e)) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        async move {
            Ok(Arc::new(
                self.load_metadata(self.page_index, options).await?,
            ))
        }
        .boxed()
    }
}

impl fmt::Debug for ParquetReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParquetReader")
            .field("op", &self.op)
            .field("path", &self.path)
            .field("file_size", &self.file_size)
            .field("etag", &self.etag)
            .field("seen", &self.seen.get())
            .field("footer_hint", &self.footer_hint)
            .field("page_index", &self.page_index)
            .finish()
    }
}

/// What [`ParquetMetaDataReader`] reads through: bounded ranges of the file,
/// served from the file's tail when it was read already.
struct Fetch<'a> {
    reader: &'a ParquetReader,
    /// Bytes `start..` of the file, and `start`.
    tail: Option<(u64, Bytes)>,
}

impl<'a> Fetch<'a> {
    fn new(reader: &'a ParquetReader) -> Self {
        Self { reader, tail: None }
    }

    fn with_tail(mut self, start: u64, tail: Bytes) -> Self {
        self.tail = Some((start, tail));
        self
    }
}

impl MetadataFetch for Fetch<'_> {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        if let Some((start, tail)) = &self.tail
            && range.start >= *start
            && range.end - start <= tail.len() as u64
        {
            let bytes = tail.slice((range.start - start) as usize..(range.end - start) as usize);
            return futures::future::ready(Ok(bytes)).boxed();
        }
        self.reader.read_range(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stronger_policy_wins() {
        use PageIndexPolicy::{Optional, Required, Skip};
        assert_eq!(stronger(Skip, Skip), Skip);
        assert_eq!(stronger(Skip, Optional), Optional);
        assert_eq!(stronger(Optional, Skip), Optional);
        assert_eq!(stronger(Required, Optional), Required);
        assert_eq!(stronger(Optional, Required), Required);
    }

    #[test]
    fn options_and_the_reader_both_ask_for_each_index() {
        use PageIndexPolicy::{Optional, Required, Skip};
        assert_eq!(policies(Skip, None), (Skip, Skip));
        assert_eq!(policies(Optional, None), (Optional, Optional));
        let both = ArrowReaderOptions::new().with_page_index_policy(Required);
        assert_eq!(policies(Skip, Some(&both)), (Required, Required));
        // Each index as the options ask for it, never one for the other.
        let offsets_only = ArrowReaderOptions::new().with_offset_index_policy(Required);
        assert_eq!(policies(Skip, Some(&offsets_only)), (Skip, Required));
        assert_eq!(
            policies(Optional, Some(&offsets_only)),
            (Optional, Required)
        );
        assert_eq!(
            policies(Optional, Some(&ArrowReaderOptions::new())),
            (Optional, Optional)
        );
    }
}
