//! [`register`] and [`register_parquet`]: an operator's files as SQL tables.

use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use dio_object_store::DioStore;
use storage::Operator;

use crate::parquet_reader_factory::normalize_prefix;
use crate::{DioParquetFormat, DioParquetFormatFactory};

/// Makes `op`'s files the tables DataFusion finds under `url` (`s3://bucket`,
/// `file:///data/warehouse`, `memory://`): listing and schema inference go through
/// a [`DioStore`], parquet scans through a [`ParquetReaderFactory`](crate::ParquetReaderFactory),
/// all of their IO on `op`'s executor. Then plain SQL:
///
/// ```sql
/// CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 's3://bucket/t/';
/// SELECT count(*) FROM t;
/// ```
///
/// `op`'s root is the URL's path: with `file:///data/warehouse`, an operator rooted
/// at `/data/warehouse` serves `file:///data/warehouse/t/a.parquet` as `t/a.parquet`.
///
/// What it does:
///
/// - registers a [`DioStore`] for the URL's scheme and host
///   (`SessionContext::register_object_store`), replacing the store that was there.
///   DataFusion keeps one store per scheme and host in the session's runtime
///   (`RuntimeEnv`), which other sessions may share: registering
///   `file:///data/warehouse` takes over every `file://` URL of every session on
///   that runtime, and a location outside `/data/warehouse` fails;
/// - installs a [`DioParquetFormatFactory`] for the `parquet` extension (once per
///   session), so `STORED AS PARQUET` tables scan with our reader factory;
/// - remembers that the store is ours, over `op`: a scan of any session whose
///   parquet format is ours reads with our reader factory while the runtime has
///   this store for the URL, whichever session registered it;
/// - clears the listings and file statistics DataFusion cached (in the runtime),
///   so that tables listed before (through the store this one replaces) are
///   listed again by it. Register a URL once per runtime, not per session.
///
/// Scans read each file at the version their listing gave (its ETag; see
/// [`ParquetReaderFactory::with_pinned_versions`](crate::ParquetReaderFactory::with_pinned_versions)):
/// a file replaced or modified (even `touch`ed) after it was listed fails the
/// query with `PreconditionFailed` naming the file, where DataFusion's reader
/// would decode the new bytes with the old footer. DataFusion caches listings
/// with no expiry by default: the scan that finds a file changed (or deleted)
/// clears that cache ([`ParquetReaderFactory::with_list_files_cache`](crate::ParquetReaderFactory::with_list_files_cache)),
/// so the next query lists the files again and reads the new version.
///
/// URLs that were not registered keep DataFusion's behaviour, and so does a URL
/// whose store is replaced later with `register_object_store`. Tables made with
/// `SessionContext::register_parquet` use DataFusion's `ParquetFormat` directly and
/// so its reader (still over the `DioStore`); use [`register_parquet`] instead.
///
/// # Errors
///
/// A [`DataFusionError::Configuration`] naming `url` if it is not a URL, or has a
/// query or a fragment (the operator's settings go in the operator, not here).
///
/// # Examples
///
/// ```
/// use datafusion::prelude::SessionContext;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = io_executor::Builder::new().name("sql-io").build()?;
/// let op = storage::Operator::from_uri("memory://")?.with_executor(io.clone());
/// let ctx = SessionContext::new();
/// dio_parquet::register(&ctx, "memory://", op)?;
///
/// // Written and read back through the operator.
/// ctx.sql("COPY (SELECT 1 AS x UNION ALL SELECT 2) TO 'memory:///t/x.parquet'")
///     .await?
///     .collect()
///     .await?;
/// ctx.sql("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION 'memory:///t/'")
///     .await?;
/// let rows = ctx.sql("SELECT sum(x) AS s FROM t").await?.collect().await?;
/// assert_eq!(rows[0].num_rows(), 1);
///
/// io.shutdown();
/// io.join().await;
/// # Ok(())
/// # }
/// ```
pub fn register(ctx: &SessionContext, url: &str, op: Operator) -> Result<()> {
    let (store_url, prefix) = split_url(url)?;
    let store = Arc::new(DioStore::new(op).with_prefix(&prefix));
    install_format_factory(ctx);
    crate::registry::remember(&store);
    ctx.register_object_store(store_url.as_ref(), store);
    // Listings DataFusion cached before (by the store this one replaces, with its
    // ETags, which a scan pinned to the operator's would refuse) are listed again,
    // and the statistics planned from them gathered again.
    let caches = &ctx.runtime_env().cache_manager;
    if let Some(listings) = caches.get_list_files_cache() {
        listings.clear();
    }
    if let Some(statistics) = caches.get_file_statistic_cache() {
        statistics.clear();
    }
    Ok(())
}

/// Registers the parquet files at `table_path` as table `table`, scanned with a
/// [`DioParquetFormat`]: what `SessionContext::register_parquet` does, which
/// always uses DataFusion's own `ParquetFormat`. `table_path` is a directory
/// (ending in `/`) or a file, under a URL given to [`register`] (other URLs work
/// too, with DataFusion's reader).
///
/// # Errors
///
/// DataFusion's: a path that is not a URL, a file without the options' extension,
/// a failure to list the files or to infer their schema (which reads their
/// footers, on the operator's executor for a registered URL).
///
/// # Cancel safety
///
/// Dropping the future before it completes leaves no table registered; listing and
/// footer reads in flight are cancelled.
pub async fn register_parquet(
    ctx: &SessionContext,
    table: impl Into<TableReference>,
    table_path: &str,
    options: ParquetReadOptions<'_>,
) -> Result<()> {
    let mut listing = options.to_listing_options(&ctx.copied_config(), ctx.copied_table_options());
    let parsed = ListingTableUrl::parse(table_path)?;
    if !parsed.is_collection() && !table_path.ends_with(&listing.file_extension) {
        return Err(DataFusionError::Execution(format!(
            "file path {table_path:?} does not end with the expected extension {:?}",
            listing.file_extension
        )));
    }
    listing.format = Arc::new(DioParquetFormat::new(ctx, listing.format));
    let schema = options.schema.map(|s| Arc::new(s.clone()));
    ctx.register_listing_table(table, table_path, listing, schema, None)
        .await
}

/// Installs our format factory for `parquet` in `ctx`, if it is not there yet.
pub(crate) fn install_format_factory(ctx: &SessionContext) {
    let state = ctx.state_ref();
    let mut state = state.write();
    let current = state.get_file_format_factory("parquet");
    if current
        .as_ref()
        .is_some_and(|f| f.downcast_ref::<DioParquetFormatFactory>().is_some())
    {
        return;
    }
    let inner = current.unwrap_or_else(|| Arc::new(ParquetFormatFactory::new()));
    let ours = DioParquetFormatFactory::new(inner);
    // Replacing an existing factory cannot fail.
    if let Err(e) = state.register_file_format(Arc::new(ours), true) {
        unreachable!("overwriting a file format failed: {e}");
    }
}

/// The object store URL (`scheme://host`) and the location prefix of `url`.
fn split_url(url: &str) -> Result<(ObjectStoreUrl, String)> {
    let invalid = |why: String| DataFusionError::Configuration(format!("register {url:?}: {why}"));
    let parsed = url::Url::parse(url).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(
            "a table URL has no query or fragment (configure the operator instead)".into(),
        ));
    }
    let store_url = ObjectStoreUrl::parse(crate::registry::store_key(&parsed))
        .map_err(|e| invalid(e.to_string()))?;
    let path = object_store::path::Path::from_url_path(parsed.path())
        .map_err(|e| invalid(format!("bad path ({e})")))?;
    Ok((store_url, normalize_prefix(path.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_the_store_and_the_prefix() {
        let (store, prefix) = split_url("s3://bucket").unwrap();
        assert_eq!((store.as_str(), prefix.as_str()), ("s3://bucket/", ""));
        let (store, prefix) = split_url("s3://bucket/warehouse/").unwrap();
        assert_eq!(
            (store.as_str(), prefix.as_str()),
            ("s3://bucket/", "warehouse/")
        );
        let (store, prefix) = split_url("file:///data/ware%20house").unwrap();
        assert_eq!(
            (store.as_str(), prefix.as_str()),
            ("file:///", "data/ware house/")
        );
        let (store, prefix) = split_url("memory://").unwrap();
        assert_eq!((store.as_str(), prefix.as_str()), ("memory:///", ""));
        let (store, _) = split_url("http://host:8080/x").unwrap();
        assert_eq!(store.as_str(), "http://host:8080/");
    }

    #[test]
    fn urls_with_settings_or_no_scheme_are_refused() {
        for bad in [
            "s3://bucket?endpoint=http://127.0.0.1:8333",
            "s3://bucket#x",
            "/data/warehouse",
            "not a url",
        ] {
            let err = split_url(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("register {bad:?}")), "{err}");
        }
    }
}
