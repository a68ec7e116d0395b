//! object_store's conformance suite through `IoObjectStore<LocalFileSystem>` on a
//! temporary directory: every function object_store's own tests run for
//! `LocalFileSystem`, plus `multipart_out_of_order`, `multipart_race_condition` and
//! `put_get_attributes` (which accepts the store's "not implemented"), and the
//! plain-thread subset.

mod common;

use dio_object_store::IoObjectStore;
use object_store::ObjectStoreExt;
use object_store::integration::*;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use tempfile::TempDir;

fn store(name: &str) -> (TempDir, IoObjectStore<LocalFileSystem>) {
    let root = TempDir::new().unwrap();
    let fs = LocalFileSystem::new_with_prefix(root.path()).unwrap();
    (root, IoObjectStore::new(fs, common::executor(name)))
}

#[tokio::test]
async fn local_suite() {
    let (_root, store) = store("fs-suite");
    put_get_delete_list(&store).await;
    list_with_offset_exclusivity(&store).await;
    get_opts(&store).await;
    list_uses_directories_correctly(&store).await;
    list_with_delimiter(&store).await;
    rename_and_copy(&store).await;
    copy_if_not_exists(&store).await;
    copy_rename_nonexistent_object(&store).await;
    stream_get(&store).await;
    put_opts(&store, false).await;
    multipart_out_of_order(&store).await;
    multipart_race_condition(&store, true).await;
    put_get_attributes(&store).await;
}

#[tokio::test]
async fn nonexistent_location() {
    let (_root, store) = store("fs-missing");
    let err = get_nonexistent_object(&store, Some(Path::from("nonexistentname")))
        .await
        .unwrap_err();
    match err {
        object_store::Error::NotFound { path, .. } => {
            assert!(path.ends_with("nonexistentname"), "{path}")
        }
        other => panic!("unexpected error: {other:?}"),
    }
}

/// The subset object_store runs for `LocalFileSystem` without any tokio runtime.
#[test]
fn plain_thread_subset() {
    let (_root, store) = store("fs-plain");
    futures::executor::block_on(async {
        put_get_delete_list(&store).await;
        list_uses_directories_correctly(&store).await;
        list_with_delimiter(&store).await;

        // `stream_get` needs a tokio runtime (`WriteMultipart`): a manual upload.
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
