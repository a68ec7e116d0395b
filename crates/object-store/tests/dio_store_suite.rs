//! object_store's own conformance suite (`object_store::integration`) on `DioStore`
//! over every backend, called as object_store's tests call it for `LocalFileSystem`,
//! `InMemory` and `AmazonS3`, plus the subset it runs from a plain thread under
//! `futures::executor::block_on`.
//!
//! Not run, because `DioStore` does not implement the trait they need:
//! `multipart` (`MultipartStore`), `list_paginated` (`PaginatedListStore`),
//! `signing` (`Signer`), `tagging` and `s3_encryption` (AmazonS3 internals).

mod common;

use dio_object_store::DioStore;
use object_store::integration::*;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

async fn whole_suite(store: &DioStore, supports_update: bool) {
    put_get_delete_list(store).await;
    list_with_offset_exclusivity(store).await;
    get_opts(store).await;
    list_uses_directories_correctly(store).await;
    list_with_delimiter(store).await;
    rename_and_copy(store).await;
    copy_if_not_exists(store).await;
    copy_rename_nonexistent_object(store).await;
    stream_get(store).await;
    put_opts(store, supports_update).await;
    multipart_race_condition(store, true).await;
    multipart_out_of_order(store).await;
    put_get_attributes(store).await;
    let err = get_nonexistent_object(store, None).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn fs() {
    let (op, _dir) = common::fs_operator("suite-fs");
    whole_suite(&DioStore::new(op), false).await;
}

#[tokio::test]
async fn memory() {
    whole_suite(&DioStore::new(common::memory_operator("suite-mem")), true).await;
}

#[tokio::test]
async fn s3() {
    let Some(op) = common::s3_operator("suite-s3") else {
        return;
    };
    whole_suite(&DioStore::new(op), true).await;
}

/// With writes unchecked (keys as `AmazonS3` writes them, one request a write).
#[tokio::test]
async fn s3_unchecked_writes() {
    let Some(op) = common::s3_operator_with("suite-s3-unchecked", |b| b.write_checks(false)) else {
        return;
    };
    let store = DioStore::new(op);
    whole_suite(&store, true).await;
    // What the checks would refuse, object_store's stores allow.
    store.put(&Path::from("k"), "file".into()).await.unwrap();
    store
        .put(&Path::from("k/under"), "under".into())
        .await
        .unwrap();
    for (path, data) in [("k", "file"), ("k/under", "under")] {
        let got = store.get(&Path::from(path)).await.unwrap().bytes().await;
        assert_eq!(got.unwrap().as_ref(), data.as_bytes(), "{path}");
    }
}

/// The plain-thread subset: no tokio runtime at all on the caller's side.
fn plain_thread_suite(store: DioStore) {
    futures::executor::block_on(async move {
        put_get_delete_list(&store).await;
        list_uses_directories_correctly(&store).await;
        list_with_delimiter(&store).await;
        let p = Path::from("manual_upload");
        let mut upload = store.put_multipart(&p).await.unwrap();
        upload.put_part("123".into()).await.unwrap();
        upload.put_part("45678".into()).await.unwrap();
        let r = upload.complete().await.unwrap();
        let get = store.get(&p).await.unwrap();
        assert_eq!(get.meta.e_tag.as_ref().unwrap(), r.e_tag.as_ref().unwrap());
        assert_eq!(get.bytes().await.unwrap().as_ref(), b"12345678");
    });
}

#[test]
fn fs_from_a_plain_thread() {
    let (op, _dir) = common::fs_operator("plain-fs");
    plain_thread_suite(DioStore::new(op));
}

#[test]
fn memory_from_a_plain_thread() {
    plain_thread_suite(DioStore::new(common::memory_operator("plain-mem")));
}

#[test]
fn s3_from_a_plain_thread() {
    if let Some(op) = common::s3_operator("plain-s3") {
        plain_thread_suite(DioStore::new(op));
    }
}

#[tokio::test]
async fn works_as_a_dyn_object_store() {
    let store: std::sync::Arc<dyn ObjectStore> =
        std::sync::Arc::new(DioStore::new(common::memory_operator("dyn-mem")));
    put_get_delete_list(&store).await;
    assert_eq!(store.to_string(), "DioStore(memory)");
}
