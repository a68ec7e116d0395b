//! [`DioParquetFormat`]: DataFusion's parquet format, scanning registered URLs with
//! our reader factory.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileMeta};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileSinkConfig, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr_common::sort_expr::{LexOrdering, LexRequirement};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};

use crate::ParquetReaderFactory;

/// DataFusion's parquet [`FileFormat`], whose scans of URLs given to
/// [`register`](crate::register) read through a [`ParquetReaderFactory`] over the
/// registered operator.
///
/// DataFusion's [`ParquetFormat::create_physical_plan`](FileFormat::create_physical_plan) always installs its own
/// cached reader factory over the `ObjectStore`. This format lets the inner format
/// build the scan (options, metadata size hint, pruning, encryption) and then swaps
/// the reader factory for ours, keeping DataFusion's file-metadata cache
/// (`state.runtime_env().cache_manager`), so repeated queries do not read footers
/// again. Everything else (schema, statistics and ordering inference, writing) is
/// the inner format's, through the registered
/// [`DioStore`](dio_object_store::DioStore), so it runs on the operator's executor
/// too.
///
/// A scan of a URL that was not registered, or whose store was replaced after
/// [`register`](crate::register) (with `SessionContext::register_object_store`),
/// is left exactly as the inner format built it. A scan of a registered URL gets
/// our reader factory in place of whatever reader factory the inner format set:
/// the inner format is meant to be DataFusion's `ParquetFormat` (what `register`
/// wraps), whose own is DataFusion's default reader.
///
/// [`register`](crate::register) installs a [`DioParquetFormatFactory`](crate::DioParquetFormatFactory)
/// that makes this format for `CREATE EXTERNAL TABLE ... STORED AS PARQUET` and
/// for listing tables that infer their format;
/// [`register_parquet`](crate::register_parquet) registers a table with it by name.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
///
/// use datafusion::datasource::file_format::parquet::ParquetFormat;
/// use datafusion::datasource::listing::ListingOptions;
/// use datafusion::prelude::SessionContext;
/// use dio_parquet::DioParquetFormat;
///
/// let ctx = SessionContext::new();
/// let format = DioParquetFormat::new(&ctx, Arc::new(ParquetFormat::default()));
/// let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
/// assert_eq!(options.file_extension, ".parquet");
/// ```
pub struct DioParquetFormat {
    inner: Arc<dyn FileFormat>,
}

impl DioParquetFormat {
    /// `inner` (usually a
    /// [`ParquetFormat`](datafusion::datasource::file_format::parquet::ParquetFormat)), reading through our
    /// reader factory the URLs whose store in `ctx`'s runtime
    /// [`register`](crate::register) made (in any session). Installs the session's
    /// [`DioParquetFormatFactory`](crate::DioParquetFormatFactory) if
    /// [`register`](crate::register) has not yet.
    pub fn new(ctx: &SessionContext, inner: Arc<dyn FileFormat>) -> Self {
        crate::register::install_format_factory(ctx);
        Self::wrapping(inner)
    }

    pub(crate) fn wrapping(inner: Arc<dyn FileFormat>) -> Self {
        Self { inner }
    }

    /// The format that builds the scans.
    pub fn inner(&self) -> &Arc<dyn FileFormat> {
        &self.inner
    }

    /// `plan` with our reader factory, if it scans parquet files of a URL whose
    /// store in the session's runtime is one [`register`](crate::register) made.
    fn with_our_reader(
        &self,
        state: &dyn Session,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(exec) = plan.downcast_ref::<DataSourceExec>() else {
            return Ok(plan);
        };
        let Some((conf, source)) = exec.downcast_to_file_source::<ParquetSource>() else {
            return Ok(plan);
        };
        // The store the session's runtime has for the URL now, if `register`
        // made it (in this session or another on the same runtime).
        let current = state.runtime_env().object_store(&conf.object_store_url)?;
        let Some(registered) = crate::registry::made_by_register(&current) else {
            return Ok(plan);
        };
        let caches = &state.runtime_env().cache_manager;
        // The scan was listed by the registered DioStore: its ETags are the
        // operator's, so each file is read at the version listed, and a file found
        // changed clears what was cached from the listings (the listings, the
        // statistics, its footer), so that the next query lists and plans again.
        let mut factory = ParquetReaderFactory::new(registered.op)
            .with_prefix(&registered.prefix)
            .with_metadata_cache(caches.get_file_metadata_cache())
            .with_pinned_versions(true);
        if let Some(listings) = caches.get_list_files_cache() {
            factory = factory.with_list_files_cache(listings);
        }
        if let Some(statistics) = caches.get_file_statistic_cache() {
            factory = factory.with_file_statistics_cache(statistics);
        }
        let source = source
            .clone()
            .with_parquet_file_reader_factory(Arc::new(factory));
        let mut conf = conf.clone();
        conf.file_source = Arc::new(source);
        Ok(DataSourceExec::from_data_source(conf))
    }
}

#[async_trait]
impl FileFormat for DioParquetFormat {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(compression)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        match self.inner.infer_schema(state, store, objects).await {
            Ok(schema) => Ok(schema),
            Err(err) => Err(self.which_file(state, store, objects, err).await),
        }
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        match self
            .inner
            .infer_stats(state, store, table_schema, object)
            .await
        {
            Ok(stats) => Ok(stats),
            Err(err) => Err(planning_failed(state, store, object, err).await),
        }
    }

    async fn infer_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Option<LexOrdering>> {
        match self
            .inner
            .infer_ordering(state, store, table_schema, object)
            .await
        {
            Ok(ordering) => Ok(ordering),
            Err(err) => Err(planning_failed(state, store, object, err).await),
        }
    }

    async fn infer_stats_and_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<FileMeta> {
        match self
            .inner
            .infer_stats_and_ordering(state, store, table_schema, object)
            .await
        {
            Ok(meta) => Ok(meta),
            Err(err) => Err(planning_failed(state, store, object, err).await),
        }
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.create_physical_plan(state, conf).await?;
        self.with_our_reader(state, plan)
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner
            .create_writer_physical_plan(input, state, conf, order_requirements)
            .await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.inner.file_source(table_schema)
    }
}

impl DioParquetFormat {
    /// `err`, from inferring the schema of `objects` together, naming the file at
    /// fault: the inner format reads every footer at once, and parquet's errors
    /// ("Corrupt footer") name none. Found by inferring each file's schema on its
    /// own, in the listing's order, as many at once as the session fetches
    /// footers. Only on failure, and mostly from the metadata cache, which holds
    /// the footers read well by now (not those decrypted with keys, nor those
    /// evicted, nor those the failed pass had not reached: they are read again).
    /// A file found gone or changed since it was listed also clears the cached
    /// listings, as [`planning_failed`] says. Returned unchanged when it is not
    /// about one file:
    /// the session's options are refused with no file at all, or every file reads
    /// on its own (the schemas do not merge, or a read failed only the first
    /// time).
    async fn which_file(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
        err: DataFusionError,
    ) -> DataFusionError {
        if self.inner.infer_schema(state, store, &[]).await.is_err() {
            return err;
        }
        let concurrency = state.config_options().execution.meta_fetch_concurrency;
        let mut each = futures::stream::iter(objects)
            .map(|object| async move {
                let got = self
                    .inner
                    .infer_schema(state, store, std::slice::from_ref(object))
                    .await;
                (object, got)
            })
            .boxed()
            .buffered(concurrency.get());
        while let Some((object, got)) = each.next().await {
            if let Err(own) = got {
                // The other files' inference is not needed any more.
                drop(each);
                // A file gone or changed since it was listed clears the listing,
                // as when statistics are inferred (a table created again over a
                // cached listing would fail the same way every time).
                return planning_failed(state, store, object, own).await;
            }
        }
        err
    }
}

/// `err`, from reading `object`'s footer to plan a query, naming the file. On a
/// store [`register`](crate::register) made, a file gone or changed since it was
/// listed also clears what was cached from the listings (the listings, the
/// statistics, its footer), as a scan that finds it so does: DataFusion keeps a
/// table's listing with no expiry by default, and every later query would fail
/// the same way.
async fn planning_failed(
    state: &dyn Session,
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
    err: DataFusionError,
) -> DataFusionError {
    if crate::registry::made_by_register(store).is_some() {
        let stale = match object_store::ObjectStoreExt::head(store.as_ref(), &object.location).await
        {
            Err(object_store::Error::NotFound { .. }) => true,
            Ok(now) => now.e_tag != object.e_tag || now.size != object.size,
            Err(_) => false,
        };
        if stale {
            let manager = &state.runtime_env().cache_manager;
            crate::parquet_reader_factory::Caches::of_runtime(object.location.clone(), manager)
                .forget_listing();
        }
    }
    of_file(err, object)
}

/// `err`, from reading `object`'s footer at planning, naming the file: parquet's
/// own errors ("Corrupt footer") do not, and a table has many.
fn of_file(err: DataFusionError, object: &ObjectMeta) -> DataFusionError {
    err.context(format!(
        "cannot read the parquet metadata of {:?}",
        object.location.as_ref()
    ))
}

impl fmt::Debug for DioParquetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DioParquetFormat")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
