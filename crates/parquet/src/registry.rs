//! [`Registry`]: the URLs [`register`](crate::register) gave an operator.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use parking_lot::RwLock;
use storage::Operator;

/// What one URL was registered with.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) op: Operator,
    /// The location prefix (`""`, or ending in `/`).
    pub(crate) prefix: String,
    /// The `DioStore` registered in the session for the URL: scans use our reader
    /// factory only while it is still the store DataFusion has for the URL.
    pub(crate) store: Arc<dyn ObjectStore>,
}

impl Registered {
    /// Whether `store` is the one we registered.
    pub(crate) fn is(&self, store: &Arc<dyn ObjectStore>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.store), Arc::as_ptr(store))
    }
}

/// The operators of one session, by object store URL (`s3://bucket/`, `file:///`).
/// Shared by the session's [`DioParquetFormatFactory`](crate::DioParquetFormatFactory)
/// and every format it made, so a URL registered after a table was created is seen
/// by the table's next scan.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    urls: RwLock<HashMap<String, Registered>>,
}

impl Registry {
    pub(crate) fn insert(&self, url: &ObjectStoreUrl, registered: Registered) {
        self.urls
            .write()
            .insert(url.as_str().to_owned(), registered);
    }

    pub(crate) fn get(&self, url: &ObjectStoreUrl) -> Option<Registered> {
        self.urls.read().get(url.as_str()).cloned()
    }
}
