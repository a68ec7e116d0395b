//! The stores [`register`](crate::register) made, process-wide: a scan finds the
//! operator of the store its runtime has for its URL, whichever session registered
//! it (DataFusion keeps object stores per runtime, which sessions may share).

use std::sync::{Arc, Weak};

use dio_object_store::DioStore;
use object_store::ObjectStore;
use parking_lot::Mutex;
use storage::Operator;

/// What a store [`register`](crate::register) made was made from.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) op: Operator,
    /// The location prefix (`""`, or ending in `/`).
    pub(crate) prefix: String,
}

/// Every store `register` made that may still be alive. Weak: the table keeps
/// neither a store nor its operator (and so its executor) alive.
static MADE: Mutex<Vec<Weak<DioStore>>> = Mutex::new(Vec::new());

/// Notes that `register` made `store`; forgets the stores nothing holds any more.
pub(crate) fn remember(store: &Arc<DioStore>) {
    let mut made = MADE.lock();
    made.retain(|m| m.strong_count() > 0);
    made.push(Arc::downgrade(store));
}

/// What `store` was made from, if `register` made it: a scan whose runtime has
/// this store for its URL reads through its operator. A store put there since
/// (`register_object_store`) was not made by `register`, and gets `None`. (A
/// `Weak` keeps its allocation: no other store can be found at a live one's
/// address.)
pub(crate) fn made_by_register(store: &Arc<dyn ObjectStore>) -> Option<Registered> {
    let made = MADE.lock();
    let dio = made
        .iter()
        .find(|m| std::ptr::addr_eq(m.as_ptr(), Arc::as_ptr(store)))?
        .upgrade()?;
    Some(Registered {
        op: dio.operator().clone(),
        prefix: dio.prefix().to_owned(),
    })
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
    use datafusion::execution::object_store::ObjectStoreUrl;

    use super::*;

    /// The scheme, host and port of `url`, as DataFusion's object store registry
    /// keys its stores: `s3://user@bucket/` is the store registered for
    /// `s3://bucket`.
    fn key(url: &ObjectStoreUrl) -> String {
        store_key(url.as_ref())
    }

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
