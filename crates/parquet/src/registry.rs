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
        self.urls.write().insert(key(url), registered);
    }

    pub(crate) fn get(&self, url: &ObjectStoreUrl) -> Option<Registered> {
        self.urls.read().get(&key(url)).cloned()
    }
}

/// The scheme, host and port of `url`, as DataFusion's object store registry keys
/// its stores: `s3://user@bucket/` finds the store registered for `s3://bucket`
/// there, and must find our operator here too.
fn key(url: &ObjectStoreUrl) -> String {
    store_key(url.as_ref())
}

/// `scheme://host:port` of `url` (no user, path, query or fragment): what names
/// its object store, for DataFusion and for [`register`](crate::register).
pub(crate) fn store_key(url: &url::Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_keyed_as_datafusion_keys_its_stores() {
        let url = |s: &str| ObjectStoreUrl::parse(s).unwrap();
        assert_eq!(key(&url("s3://bucket/")), "s3://bucket");
        assert_eq!(key(&url("s3://user@bucket/")), "s3://bucket");
        assert_eq!(key(&url("s3://user:pw@bucket/")), "s3://bucket");
        assert_eq!(key(&url("http://host:9000/")), "http://host:9000");
        assert_eq!(key(&url("file:///")), "file://");
        assert_ne!(key(&url("s3://a/")), key(&url("gs://a/")));
    }
}
