//! Dropping a returned stream, a pending call or a part's future cancels its work:
//! the inner store's stream or future is dropped, on the executor.

mod common;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use common::probe_store::{Log, ProbeStore};
use dio_object_store::IoObjectStore;
use futures::{FutureExt, StreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;

fn probe() -> (IoObjectStore<ProbeStore>, Log) {
    let probe = ProbeStore::new();
    let log = probe.log.clone();
    (
        IoObjectStore::new(probe, common::executor("cancel-io")),
        log,
    )
}

fn assert_on_executor(log: &Log, what: &str) {
    let threads = log.threads(what);
    assert!(!threads.is_empty(), "never happened: {what}");
    assert!(
        threads.iter().all(|t| t.starts_with("cancel-io-")),
        "{what} ran on {threads:?}"
    );
}

#[test]
fn dropping_a_get_stream_mid_way_cancels_its_pump() {
    let (store, log) = probe();
    common::caller_runtime().block_on(async {
        let path = Path::from("object");
        store.put(&path, "x".into()).await.unwrap();
        // A body that yields one chunk, then never another.
        store.inner().next_body(|| {
            futures::stream::once(async { Ok(Bytes::from_static(b"first")) })
                .chain(futures::stream::pending())
                .boxed()
        });
        let mut body = store.get(&path).await.unwrap().into_stream();
        assert_eq!(body.next().await.unwrap().unwrap(), "first");
        drop(body);
        // Only a cancelled pump drops a body that never ends.
        common::eventually("the inner body is dropped", || log.has("get body drop")).await;
    });
    assert_on_executor(&log, "get body drop");
}

#[test]
fn dropping_a_pending_call_cancels_its_job() {
    let (store, log) = probe();
    common::caller_runtime().block_on(async {
        let path = Path::from("object");
        store.put(&path, "x".into()).await.unwrap();
        store.inner().stall_get.store(true, Ordering::SeqCst);
        let mut call = Box::pin(store.get(&path));
        while !log.has("stalled get_opts") {
            assert!(call.as_mut().now_or_never().is_none());
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        drop(call);
        common::eventually("the inner call is dropped", || {
            log.has("stalled get_opts drop")
        })
        .await;
    });
    assert_on_executor(&log, "stalled get_opts drop");
}

#[test]
fn dropping_a_part_cancels_it() {
    let (store, log) = probe();
    common::caller_runtime().block_on(async {
        store.inner().stall_parts.store(true, Ordering::SeqCst);
        let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
        let part = upload.put_part("never finishes".into());
        common::eventually("the part is polled", || log.has("part poll")).await;
        drop(part);
        common::eventually("the part is dropped", || log.has("part poll drop")).await;
        upload.abort().await.unwrap();
    });
    assert_on_executor(&log, "part poll drop");
}
