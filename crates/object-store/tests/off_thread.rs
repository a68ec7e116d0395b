//! Every method of the inner store, and every poll of the streams, the multipart
//! upload and the parts it returns, runs on the executor's threads, never on the
//! caller's; with blocking calls, the one-shot calls run on its blocking lane.

mod common;

use std::collections::BTreeSet;

use common::probe_store::ProbeStore;
use dio_object_store::IoObjectStore;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

#[test]
fn every_call_and_every_poll_runs_on_the_executor() {
    let probe = ProbeStore::new();
    let log = probe.log.clone();
    let store = IoObjectStore::new(probe, common::executor("probe-io"));

    // The caller: a current-thread runtime on a thread of its own.
    std::thread::Builder::new()
        .name("caller".into())
        .spawn(move || {
            common::caller_runtime().block_on(async {
                let a = Path::from("dir/a");
                store.put(&a, vec![1_u8; 100_000].into()).await.unwrap();
                assert_eq!(
                    store.get(&a).await.unwrap().bytes().await.unwrap().len(),
                    100_000
                );
                assert_eq!(store.get_range(&a, 10..20).await.unwrap().len(), 10);
                assert_eq!(store.get_ranges(&a, &[0..1, 5..9]).await.unwrap().len(), 2);
                assert_eq!(store.head(&a).await.unwrap().size, 100_000);

                let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
                assert_eq!(listed.len(), 1);
                let after: Vec<_> = store
                    .list_with_offset(None, &Path::from("dir"))
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(after.len(), 1);
                let dirs = store.list_with_delimiter(None).await.unwrap();
                assert_eq!(dirs.common_prefixes, [Path::from("dir")]);

                let b = Path::from("dir/b");
                store.copy(&a, &b).await.unwrap();
                let c = Path::from("dir/c");
                store.rename(&b, &c).await.unwrap();
                store.delete(&c).await.unwrap();
                let deleted: Vec<_> = store
                    .delete_stream(futures::stream::iter([Ok(a.clone())]).boxed())
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(deleted, std::slice::from_ref(&a));

                let mut upload = store.put_multipart(&a).await.unwrap();
                let (p1, p2) = (upload.put_part("one".into()), upload.put_part("two".into()));
                p2.await.unwrap();
                p1.await.unwrap();
                upload.complete().await.unwrap();
                assert_eq!(
                    store.get(&a).await.unwrap().bytes().await.unwrap(),
                    "onetwo"
                );

                let mut upload = store.put_multipart(&Path::from("aborted")).await.unwrap();
                upload.put_part("x".into()).await.unwrap();
                upload.abort().await.unwrap();
            });
        })
        .unwrap()
        .join()
        .unwrap();

    let events = log.events();
    let seen: BTreeSet<&str> = events.iter().map(|e| e.what.as_str()).collect();
    for expected in [
        "put_opts",
        "get_opts",
        "get body",
        "get_ranges",
        "list",
        "list poll",
        "list_with_offset",
        "list_with_offset poll",
        "list_with_delimiter",
        "copy_opts",
        "rename_opts",
        "delete_stream",
        "delete poll",
        "delete input poll",
        "put_multipart_opts",
        "put_part",
        "part poll",
        "complete",
        "abort",
    ] {
        assert!(
            seen.contains(expected),
            "never happened: {expected}; saw {seen:?}"
        );
    }
    let off: Vec<_> = events
        .iter()
        .filter(|e| !e.thread.starts_with("probe-io-"))
        .collect();
    assert!(off.is_empty(), "ran off the executor: {off:?}");
}

#[test]
fn blocking_calls_run_on_the_blocking_lane_and_streams_on_workers() {
    let probe = ProbeStore::new();
    let log = probe.log.clone();
    let store = IoObjectStore::new(probe, common::executor("lane-io")).with_blocking_calls(true);
    common::caller_runtime().block_on(async {
        let a = Path::from("a");
        store.put(&a, "data".into()).await.unwrap();
        assert_eq!(store.get(&a).await.unwrap().bytes().await.unwrap(), "data");
        store.copy(&a, &Path::from("b")).await.unwrap();
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert_eq!(listed.len(), 2);
        let mut upload = store.put_multipart(&Path::from("c")).await.unwrap();
        upload.put_part("part".into()).await.unwrap();
        upload.complete().await.unwrap();
    });
    for call in ["put_opts", "get_opts", "copy_opts", "put_multipart_opts"] {
        let threads = log.threads(call);
        assert!(
            !threads.is_empty() && threads.iter().all(|t| t.starts_with("lane-io-blocking-")),
            "{call} ran on {threads:?}"
        );
    }
    for poll in [
        "get body",
        "list",
        "list poll",
        "put_part",
        "part poll",
        "complete",
    ] {
        let threads = log.threads(poll);
        assert!(
            !threads.is_empty() && threads.iter().all(|t| t.starts_with("lane-io-worker-")),
            "{poll} ran on {threads:?}"
        );
    }
}

/// A blocking call made from one of the executor's own blocking threads runs inline
/// there, inside whatever `block_on` the caller uses; that nests.
#[test]
fn calls_from_the_executors_own_blocking_threads_work() {
    let dir = tempfile::tempdir().unwrap();
    let io = common::executor("nested-io");
    let fs = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let store = IoObjectStore::new(fs, io.clone());
    let read = io
        .spawn_blocking(move || {
            futures::executor::block_on(async {
                let a = Path::from("a");
                store.put(&a, "nested".into()).await?;
                store.get(&a).await?.bytes().await
            })
        })
        .join()
        .unwrap();
    assert_eq!(read.unwrap(), "nested");
}
