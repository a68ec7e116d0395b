//! An executor that is shut down gives clear errors, never a hang, a panic or a
//! stream that ends early without saying why.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::probe_store::ProbeStore;
use dio_object_store::{ExecutorError, IoObjectStore};
use futures::{StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

fn executor_error(err: &object_store::Error) -> &ExecutorError {
    match err {
        object_store::Error::Generic {
            store: "IoObjectStore",
            source,
        } => source.downcast_ref().expect("an ExecutorError"),
        other => panic!("not an executor error: {other:?}"),
    }
}

#[test]
fn calls_after_shutdown_fail_with_a_clear_error() {
    let io = common::executor("shut-io");
    let store = IoObjectStore::new(InMemory::new(), io.clone());
    io.shutdown();
    futures::executor::block_on(async {
        let err = store.put(&Path::from("a"), "x".into()).await.unwrap_err();
        assert!(executor_error(&err).join_error().is_shutdown());
        assert_eq!(
            err.to_string(),
            "Generic IoObjectStore error: put_opts `a` on IO executor `shut-io` failed: \
             executor is shut down; the job did not run to completion"
        );
        let err = store.put_multipart(&Path::from("a")).await.unwrap_err();
        assert_eq!(executor_error(&err).operation(), "put_multipart_opts");

        let listed: Vec<_> = store.list(Some(&Path::from("p"))).collect().await;
        assert_eq!(listed.len(), 1, "one error, then the end");
        let err = listed.into_iter().next().unwrap().unwrap_err();
        assert_eq!(executor_error(&err).operation(), "list");
        assert_eq!(executor_error(&err).path(), Some("p"));

        let deleted = store.delete_stream(futures::stream::empty().boxed());
        let err = deleted.try_collect::<Vec<_>>().await.unwrap_err();
        assert!(executor_error(&err).join_error().is_shutdown());
    });
}

#[test]
fn a_stream_cut_short_by_shutdown_ends_with_an_error() {
    let io = common::executor("cut-io");
    let store = IoObjectStore::new(ProbeStore::new(), io.clone());
    common::caller_runtime().block_on(async {
        let path = Path::from("obj");
        store.put(&path, "x".into()).await.unwrap();
        store.inner().next_body(|| {
            futures::stream::once(async { Ok(Bytes::from_static(b"first")) })
                .chain(futures::stream::pending())
                .boxed()
        });
        let mut body = store.get(&path).await.unwrap().into_stream();
        assert_eq!(body.next().await.unwrap().unwrap(), "first");
        // The pump never finishes on its own: the deadline cancels it.
        assert!(!io.shutdown_timeout(Duration::from_millis(10)).await);
        let err = body.next().await.unwrap().unwrap_err();
        let cause = executor_error(&err);
        assert_eq!(cause.operation(), "get_opts stream");
        assert!(cause.join_error().is_shutdown(), "{err}");
        assert!(body.next().await.is_none());
    });
}

#[test]
fn an_upload_cut_short_by_shutdown_says_so() {
    let io = common::executor("up-io");
    let store = IoObjectStore::new(InMemory::new(), io.clone());
    common::caller_runtime().block_on(async {
        let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
        upload.put_part("one".into()).await.unwrap();
        // The upload's task waits for commands: the deadline cancels it.
        assert!(!io.shutdown_timeout(Duration::from_millis(10)).await);
        let err = upload.put_part("two".into()).await.unwrap_err().to_string();
        assert!(
            err.contains("put_part `up`: the upload's task on IO executor `up-io` ended"),
            "{err}"
        );
        let err = upload.complete().await.unwrap_err().to_string();
        assert!(err.contains("complete `up`"), "{err}");
    });
}

/// An upload the inner store made just as the executor shut down is the work of a
/// call the executor accepted before: its task is that job's own work, accepted
/// after the shutdown, so the upload is driven to its end (its parts and its
/// completion), and the drain waits for it, where it used to be aborted and the
/// call refused.
#[test]
fn an_upload_made_as_the_executor_shuts_down_is_driven_to_its_end() {
    let io = common::executor("up-race");
    let probe = ProbeStore::new();
    let log = probe.log.clone();
    let (open, hold) = tokio::sync::oneshot::channel();
    *probe.hold_multipart.lock().unwrap() = Some(hold);
    let store = IoObjectStore::new(probe, io.clone());
    common::caller_runtime().block_on(async {
        let path = Path::from("up");
        let made = store.put_multipart(&path);
        tokio::pin!(made);
        // Started, and held inside the inner store's call.
        assert!(futures::poll!(&mut made).is_pending());
        while !log.has("put_multipart_opts") {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        io.shutdown();
        open.send(()).unwrap();
        let mut upload = made.await.unwrap();
        upload.put_part("one".into()).await.unwrap();
        upload.complete().await.unwrap();
        // A new call from outside is refused.
        let err = store.put_multipart(&path).await.map(drop).unwrap_err();
        assert!(executor_error(&err).join_error().is_shutdown(), "{err}");
    });
    io.blocking_join();
    assert!(
        log.has("put_part") && log.has("complete") && !log.has("abort"),
        "{:?}",
        log.events()
    );
}
