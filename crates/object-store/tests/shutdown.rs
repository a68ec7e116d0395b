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

/// A file streamed in pieces (a range over 64 MiB) from a `LocalFileSystem`, open
/// when the executor shuts down, streams to its end: its reads are the executor's
/// own work, which a shutdown lets finish.
#[test]
fn a_file_stream_open_at_a_shutdown_streams_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..80_u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("big"), &data).unwrap();
    let io = common::executor("file-io");
    let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let store = IoObjectStore::new(local, io.clone());
    common::caller_runtime().block_on(async {
        let mut body = store.get(&Path::from("big")).await.unwrap().into_stream();
        let first = body.next().await.unwrap().unwrap();
        io.shutdown();
        let joined = {
            let io = io.clone();
            std::thread::spawn(move || io.blocking_join())
        };
        let mut got = first.to_vec();
        while let Some(piece) = body.next().await {
            got.extend_from_slice(&piece.unwrap());
        }
        assert!(got == data, "{} bytes of {}", got.len(), data.len());
        drop(body);
        joined.join().unwrap();
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
/// call accepted before it: the upload is made and handed back, where it used to
/// be aborted and the call refused. A part put from outside the executor's jobs
/// after the shutdown is new work, refused as a job from there is; the object would
/// lack it, so `complete` refuses, and `abort` cleans up.
#[test]
fn an_upload_made_as_the_executor_shuts_down_takes_no_part_from_outside() {
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
        let err = upload.put_part("one".into()).await.unwrap_err();
        assert!(executor_error(&err).join_error().is_shutdown(), "{err}");
        assert_eq!(executor_error(&err).operation(), "put_part");
        let err = upload.complete().await.unwrap_err().to_string();
        assert!(err.contains("part 0 failed"), "{err}");
        upload.abort().await.unwrap();
        // A new call from outside is refused.
        let err = store.put_multipart(&path).await.map(drop).unwrap_err();
        assert!(executor_error(&err).join_error().is_shutdown(), "{err}");
    });
    io.blocking_join();
    assert!(
        log.has("abort") && !log.has("put_part") && !log.has("complete"),
        "{:?}",
        log.events()
    );
}

/// A job running when the executor shuts down finishes the upload it was given:
/// its parts and its completion are that job's own work.
#[test]
fn a_job_running_at_a_shutdown_finishes_its_upload() {
    let io = common::executor("up-inside");
    let store = IoObjectStore::new(InMemory::new(), io.clone());
    let path = Path::from("inside");
    common::caller_runtime().block_on(async {
        let mut upload = store.put_multipart(&path).await.unwrap();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let job = io.spawn(async move {
            let _ = wait.await;
            upload.put_part("in a job".into()).await?;
            upload.complete().await
        });
        io.shutdown();
        go.send(()).unwrap();
        job.await.unwrap().unwrap();
        // Read straight from the inner store (not a job of the executor).
        let got = store
            .inner()
            .get(&path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got, "in a job");
    });
    io.blocking_join();
}
