//! Multipart uploads through the executor-side task: a part's error reaches that
//! part's future, `complete` waits for the parts already started and refuses to
//! complete an object a failed or cancelled part is missing from, a part outlives
//! the upload handle, and the inner upload is dropped on the executor.

mod common;

use common::probe_store::ProbeStore;
use dio_object_store::IoObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path;

fn probe(name: &str) -> IoObjectStore<ProbeStore> {
    IoObjectStore::new(ProbeStore::new(), common::executor(name))
}

#[tokio::test]
async fn a_failing_part_reports_its_own_error() {
    let store = probe("fail-io");
    *store.inner().fail_part.lock().unwrap() = Some(1);
    let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
    let parts = [
        upload.put_part("a".into()),
        upload.put_part("b".into()),
        upload.put_part("c".into()),
    ];
    let results = futures::future::join_all(parts).await;
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("part 1 refused"), "{err}");
    assert!(results[2].is_ok());
    upload.abort().await.unwrap();
}

/// Asserts that nothing was published at `path`: the object would lack `what`.
async fn assert_unpublished(store: &IoObjectStore<ProbeStore>, path: &Path, what: &str) {
    assert!(
        matches!(
            store.get(path).await,
            Err(object_store::Error::NotFound { .. })
        ),
        "an object without {what} was published"
    );
}

/// An upload to `up` whose parts never end, and its part 0, polled already.
async fn upload_with_a_stalled_part(
    name: &str,
) -> (
    IoObjectStore<ProbeStore>,
    Box<dyn object_store::MultipartUpload>,
    object_store::UploadPart,
) {
    upload_with_a_stalled_part_on(probe(name)).await
}

/// [`upload_with_a_stalled_part`] through `store`.
async fn upload_with_a_stalled_part_on(
    store: IoObjectStore<ProbeStore>,
) -> (
    IoObjectStore<ProbeStore>,
    Box<dyn object_store::MultipartUpload>,
    object_store::UploadPart,
) {
    store
        .inner()
        .stall_parts
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let log = store.inner().log.clone();
    let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
    let part = upload.put_part("never uploaded".into());
    common::eventually("the part is polled", || log.has("part poll")).await;
    (store, upload, part)
}

#[tokio::test]
async fn complete_after_a_failed_part_is_an_error_and_publishes_nothing() {
    let store = probe("lacking-io");
    *store.inner().fail_part.lock().unwrap() = Some(1);
    let path = Path::from("up");
    let mut upload = store.put_multipart(&path).await.unwrap();
    let _parts = [
        upload.put_part("a".into()),
        upload.put_part("b".into()),
        upload.put_part("c".into()),
    ];
    let err = upload.complete().await.unwrap_err().to_string();
    assert!(
        err.contains("part 1 failed") && err.contains("part 1 refused"),
        "{err}"
    );
    assert_unpublished(&store, &path, "its part 1").await;
    let again = upload.complete().await.unwrap_err().to_string();
    assert!(again.contains("part 1 failed"), "{again}");
    upload.abort().await.unwrap();
}

#[tokio::test]
async fn complete_after_a_cancelled_part_is_an_error_and_publishes_nothing() {
    let (store, mut upload, part) = upload_with_a_stalled_part("cancelled-part-io").await;
    drop(part);
    let err = upload.complete().await.unwrap_err().to_string();
    assert!(err.contains("part 0 was cancelled"), "{err}");
    assert_unpublished(&store, &Path::from("up"), "its part 0").await;
    upload.abort().await.unwrap();
}

/// An `abort` given up on (before it ran, or not) cancels the parts under way
/// all the same: a `complete` after it refuses, where it would publish the
/// object without them.
#[tokio::test]
async fn complete_after_an_abort_given_up_on_is_an_error() {
    use futures::FutureExt as _;
    let (store, mut upload, _part) = upload_with_a_stalled_part("abandoned-abort-io").await;
    // Sent, then dropped, unless the actor answered within the first poll: the
    // parts it cancels are missing either way.
    let _ = upload.abort().now_or_never();
    let err = upload.complete().await.unwrap_err().to_string();
    assert!(err.contains("cancelled by `abort`"), "{err}");
    assert_unpublished(&store, &Path::from("up"), "its parts").await;
}

/// A part whose job has ended, uploaded, by the time its future is found dropped
/// is in the object: `complete` publishes it. The job runs on the upload's own
/// worker (one worker), holding it until the future is dropped: the upload then
/// finds both at once. It counted the part cancelled, and `complete` refused an
/// object that had every part.
#[tokio::test]
async fn a_part_dropped_after_its_upload_ended_is_not_missing() {
    let one_worker = io_executor::Builder::new()
        .name("ended-part-io")
        .worker_threads(std::num::NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let store = IoObjectStore::new(ProbeStore::new(), one_worker);
    let (go, held) = std::sync::mpsc::channel();
    *store.inner().hold_part.lock().unwrap() = Some((0, held));
    let log = store.inner().log.clone();
    let path = Path::from("up");
    let mut upload = store.put_multipart(&path).await.unwrap();
    let part = upload.put_part("the only part".into());
    common::eventually("part 0 is held", || log.has("part holding")).await;
    drop(part);
    go.send(()).unwrap();
    upload.complete().await.unwrap();
    assert_eq!(
        store.get(&path).await.unwrap().bytes().await.unwrap(),
        "the only part"
    );
}

#[tokio::test]
async fn complete_waits_for_the_parts_already_started() {
    let store = probe("complete-io");
    let path = Path::from("up");
    let mut upload = store.put_multipart(&path).await.unwrap();
    let first = upload.put_part("first,".into());
    let second = upload.put_part("second".into());
    upload.complete().await.unwrap();
    assert_eq!(
        store.get(&path).await.unwrap().bytes().await.unwrap(),
        "first,second"
    );
    first.await.unwrap();
    second.await.unwrap();
}

#[tokio::test]
async fn a_part_outlives_the_upload_handle() {
    let store = probe("outlive-io");
    let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
    let part = upload.put_part("x".into());
    drop(upload);
    part.await.unwrap();
}

#[tokio::test]
async fn dropping_the_upload_drops_the_inner_upload_on_the_executor() {
    let store = probe("drop-io");
    let log = store.inner().log.clone();
    let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
    upload.put_part("x".into()).await.unwrap();
    drop(upload);
    common::eventually("the inner upload is dropped", || log.has("upload drop")).await;
    let threads = log.threads("upload drop");
    assert!(
        threads.iter().all(|t| t.starts_with("drop-io-")),
        "{threads:?}"
    );
}

/// `abort` cancels the parts under way and waits until their jobs are gone before
/// it aborts the inner upload: a part request still out when S3 takes the abort may
/// be stored after it, and stay billed. On one worker, the abort came first: the
/// cancelled part's job was dropped only after it. The part's future says it was
/// cancelled by the abort.
#[tokio::test]
async fn abort_waits_for_the_parts_it_cancels() {
    for workers in [1, 2] {
        let executor = io_executor::Builder::new()
            .name("abort-waits-io")
            .worker_threads(std::num::NonZeroUsize::new(workers).unwrap())
            .build()
            .unwrap();
        let store = IoObjectStore::new(ProbeStore::new(), executor);
        let (store, mut upload, part) = upload_with_a_stalled_part_on(store).await;
        let log = store.inner().log.clone();
        upload.abort().await.unwrap();
        let events: Vec<String> = log.events().into_iter().map(|e| e.what).collect();
        let at = |what: &str| events.iter().position(|e| e == what);
        let (dropped, aborted) = (at("part poll drop"), at("abort"));
        assert!(
            dropped.is_some() && dropped < aborted,
            "{workers} workers: {events:?}"
        );
        let err = part.await.unwrap_err().to_string();
        assert!(err.contains("part 0 was cancelled by `abort`"), "{err}");
    }
}

/// A part offered while the executor's queue is at its bound waits its turn: the
/// upload goes on, where a refused part would leave the object without it and
/// fail the whole upload for a moment's load.
#[test]
fn a_part_waits_for_a_full_queue_instead_of_failing_the_upload() {
    let executor = common::narrow_executor("part-full", Some(1));
    let store = IoObjectStore::new(object_store::memory::InMemory::new(), executor.clone());
    let location = Path::from("o");
    let rt = common::caller_runtime();
    rt.block_on(async {
        let mut upload = store.put_multipart(&location).await.unwrap();
        upload.put_part(vec![0_u8; 100].into()).await.unwrap();
        // The blocking thread busy, and one job queued: the queue is at its bound.
        let (release, busy) = common::occupy_blocking(&executor);
        let queued = executor.spawn_blocking(|| ());
        let refused = executor.spawn_blocking(|| ()).await.unwrap_err();
        assert!(refused.is_queue_full(), "the queue is full: {refused}");
        // The part's job goes to the worker, which is free: it is not refused.
        let part = upload.put_part(vec![1_u8; 100].into());
        common::guarded("the part", part)
            .await
            .expect("the part is taken");
        release.send(()).unwrap();
        busy.await.unwrap();
        queued.await.unwrap();
        upload.complete().await.expect("no part is missing");
        let got = store.get(&location).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.len(), 200);
        assert_eq!(&got[100..], &[1_u8; 100][..]);
    });
}
