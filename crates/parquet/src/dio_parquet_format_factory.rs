//! [`DioParquetFormatFactory`]: makes [`DioParquetFormat`]s for `STORED AS PARQUET`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::GetExt;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::error::Result;

use crate::DioParquetFormat;

/// The session's factory for the `parquet` extension once
/// [`register`](crate::register) has run: `CREATE EXTERNAL TABLE ... STORED AS
/// PARQUET`, `COPY ... TO` and listing tables that infer their format get a
/// [`DioParquetFormat`] around what the factory it replaced makes (DataFusion's
/// `ParquetFormatFactory`, with the session's parquet options and the statement's
/// `OPTIONS`).
///
/// It is installed by [`register`](crate::register) and
/// [`DioParquetFormat::new`]; there is nothing to build by hand. Look it up with
/// `state.get_file_format_factory("parquet")`.
pub struct DioParquetFormatFactory {
    inner: Arc<dyn FileFormatFactory>,
}

impl DioParquetFormatFactory {
    pub(crate) fn new(inner: Arc<dyn FileFormatFactory>) -> Self {
        Self { inner }
    }

    /// The factory that makes the formats this one wraps.
    pub fn inner(&self) -> &Arc<dyn FileFormatFactory> {
        &self.inner
    }
}

impl FileFormatFactory for DioParquetFormatFactory {
    fn create(
        &self,
        state: &dyn Session,
        format_options: &HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        let inner = self.inner.create(state, format_options)?;
        Ok(Arc::new(DioParquetFormat::wrapping(inner)))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(DioParquetFormat::wrapping(self.inner.default()))
    }
}

impl GetExt for DioParquetFormatFactory {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }
}

impl fmt::Debug for DioParquetFormatFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DioParquetFormatFactory")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
