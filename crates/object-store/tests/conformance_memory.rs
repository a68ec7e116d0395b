//! object_store's conformance suite through `IoObjectStore<InMemory>`: every function
//! object_store's own tests run for `InMemory`, plus the ones it runs for other
//! backends that `InMemory` supports, and the plain-thread subset.

mod common;

use dio_object_store::IoObjectStore;
use object_store::integration::*;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStoreExt, WriteMultipart};

fn store(name: &str) -> IoObjectStore<InMemory> {
    IoObjectStore::new(InMemory::new(), common::executor(name))
}

#[tokio::test]
async fn in_memory_suite() {
    let store = store("mem-suite");
    put_get_delete_list(&store).await;
    list_with_offset_exclusivity(&store).await;
    get_opts(&store).await;
    list_uses_directories_correctly(&store).await;
    list_with_delimiter(&store).await;
    rename_and_copy(&store).await;
    copy_if_not_exists(&store).await;
    copy_rename_nonexistent_object(&store).await;
    stream_get(&store).await;
    put_opts(&store, true).await;
    // InMemory's own MultipartStore: through the wrapper the two parts `multipart`
    // uploads run in parallel, and InMemory's `put_part` panics when part 1 arrives
    // before part 0 (it grows its part list only while `part_idx <= len`). The
    // wrapper's MultipartStore runs against S3, which takes parts in any order.
    multipart(&store, store.inner()).await;
    put_get_attributes(&store).await;
    multipart_out_of_order(&store).await;
    multipart_race_condition(&store, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_suite_from_a_multi_thread_caller() {
    let store = store("mem-mt");
    put_get_delete_list(&store).await;
    stream_get(&store).await;
    put_opts(&store, true).await;
}

#[tokio::test]
async fn nonexistent_location() {
    let store = store("mem-missing");
    let err = get_nonexistent_object(&store, Some(Path::from("nonexistentname")))
        .await
        .unwrap_err();
    match err {
        object_store::Error::NotFound { path, .. } => assert_eq!(path, "nonexistentname"),
        other => panic!("unexpected error: {other:?}"),
    }
}

/// The subset object_store runs without any tokio runtime (`WriteMultipart` needs
/// one, so the upload is made by hand).
#[test]
fn plain_thread_subset() {
    let store = store("mem-plain");
    futures::executor::block_on(async {
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

/// `WriteMultipart` (tokio `JoinSet` on the caller's side) over the wrapper's upload.
#[tokio::test]
async fn write_multipart_keeps_the_order_of_its_parts() {
    let store = store("mem-write");
    let p = Path::from("written");
    let mut w = WriteMultipart::new_with_chunk_size(store.put_multipart(&p).await.unwrap(), 10);
    let data: Vec<u8> = (0..=255).collect();
    for piece in data.chunks(7) {
        w.write(piece);
    }
    w.finish().await.unwrap();
    assert_eq!(store.get(&p).await.unwrap().bytes().await.unwrap(), data);
}
