//! `AmazonS3` behind an `IoObjectStore` keeps working when the caller's runtime that
//! made the first requests is dropped: its connections live on the executor. Then a
//! new runtime, and a plain thread with no runtime at all, use the same store.
//! (Without the wrapper, pooled connections die with the first runtime: "dispatch
//! task is gone", or "IO is disabled" from a caller without an IO driver.) And an
//! HTTP store wrongly opted into blocking calls fails with a clear error.

mod common;

use dio_object_store::IoObjectStore;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

#[test]
fn s3_outlives_the_callers_runtimes() {
    let Some(bucket) = common::s3::store("s3_outlives_the_callers_runtimes") else {
        return;
    };
    let store = IoObjectStore::new(bucket, common::executor("rt-io"));
    let path = Path::from("data/object");
    let data = vec![5_u8; 300_000];

    // A current-thread caller with no IO driver, dropped after two requests.
    let first = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    first.block_on(async {
        store.put(&path, data.clone().into()).await.unwrap();
        assert_eq!(store.get(&path).await.unwrap().bytes().await.unwrap(), data);
    });
    drop(first);

    // A new multi-thread caller: the pooled connections are still alive.
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    second.block_on(async {
        assert_eq!(store.get_range(&path, 100..200).await.unwrap().len(), 100);
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1);
    });
    drop(second);

    // A plain thread, no runtime at all.
    std::thread::spawn(move || {
        futures::executor::block_on(async {
            assert_eq!(store.head(&path).await.unwrap().size, 300_000);
            let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(bytes, data);
            let mut upload = store
                .put_multipart(&Path::from("data/parts"))
                .await
                .unwrap();
            upload.put_part(vec![1_u8; 5 << 20].into()).await.unwrap();
            upload.put_part(vec![2_u8; 10].into()).await.unwrap();
            upload.complete().await.unwrap();
            store.delete(&path).await.unwrap();
            store.delete(&Path::from("data/parts")).await.unwrap();
        })
    })
    .join()
    .unwrap();
}

/// `with_blocking_calls` is only for stores that need no tokio runtime: an HTTP store
/// opted in fails with a clear error instead of hanging.
#[test]
fn an_http_store_as_blocking_calls_fails_cleanly() {
    let Some(bucket) = common::s3::store("an_http_store_as_blocking_calls_fails_cleanly") else {
        return;
    };
    let store = IoObjectStore::new(bucket, common::executor("misuse-io")).with_blocking_calls(true);
    let err = futures::executor::block_on(store.head(&Path::from("x"))).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("get_opts `x` on IO executor `misuse-io` failed: job panicked"),
        "{message}"
    );
}
