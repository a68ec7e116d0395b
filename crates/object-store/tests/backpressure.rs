//! A slow consumer makes the pump wait: what it pulls from the inner stream ahead
//! of the consumer stays within `(channel_capacity + 1) × batch`, the bound the
//! docs state, and it arrives in batches.

mod common;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::probe_store::ProbeStore;
use dio_object_store::IoObjectStore;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

/// Reads `chunks` chunks of `chunk` bytes slowly through `store`; returns the most
/// chunks ever pulled from the inner stream but not yet received by the consumer.
fn max_pulled_ahead(store: IoObjectStore<ProbeStore>, chunks: usize, chunk: usize) -> usize {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    common::caller_runtime().block_on(async move {
        let path = Path::from("slow");
        store.put(&path, "x".into()).await.unwrap();
        store.inner().next_body(move || {
            futures::stream::iter(0..chunks)
                .map(move |i| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(Bytes::from(vec![i as u8; chunk]))
                })
                .boxed()
        });
        let mut body = store.get(&path).await.unwrap().into_stream();
        let (mut received, mut max_ahead) = (0, 0);
        while let Some(piece) = body.next().await {
            assert_eq!(piece.unwrap(), vec![received as u8; chunk], "in order");
            received += 1;
            max_ahead = max_ahead.max(pulled.load(Ordering::SeqCst) - received);
            // A slow consumer: give the pump every chance to run ahead.
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        assert_eq!(received, chunks);
        max_ahead
    })
}

#[test]
fn a_slow_consumer_bounds_what_the_pump_pulls_ahead() {
    let store = IoObjectStore::new(ProbeStore::new(), common::executor("slow-io"))
        .with_channel_capacity(NonZeroUsize::new(2).unwrap())
        .with_batch_bytes(NonZeroUsize::new(4096).unwrap());
    // 1 KiB chunks, 4 KiB batches: 4 chunks a batch, at most (2 + 1) × 4 ahead.
    let ahead = max_pulled_ahead(store, 300, 1024);
    assert!(ahead <= 12, "pulled {ahead} chunks ahead of the consumer");
    // When the first chunk arrived, its whole batch had been pulled.
    assert!(ahead >= 3, "no batching: at most {ahead} chunks ahead");
}

#[test]
fn the_default_bound_holds_too() {
    let store = IoObjectStore::new(ProbeStore::new(), common::executor("slow-default-io"));
    // 64 KiB chunks, 512 KiB batches: 8 a batch, 4 slots, at most (4 + 1) × 8 ahead.
    let ahead = max_pulled_ahead(store, 200, 64 * 1024);
    assert!(ahead <= 40, "pulled {ahead} chunks ahead of the consumer");
}

/// The largest capacity the type accepts works: a listing and a read stream.
#[test]
fn the_largest_channel_capacity_is_taken_as_tokios_bound() {
    let store = IoObjectStore::new(
        object_store::memory::InMemory::new(),
        common::executor("huge-capacity-io"),
    )
    .with_channel_capacity(NonZeroUsize::MAX);
    common::caller_runtime().block_on(async move {
        let path = Path::from("a");
        store.put(&path, "x".into()).await.unwrap();
        let listed: Vec<_> = store.list(None).collect().await;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].as_ref().unwrap().location, path);
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(got, "x");
    });
}

/// A bulk delete deletes as it is pulled, as the inner store's own stream does:
/// nothing before the stream is first polled (its pump a job from the call all
/// the same), and at most two batches of 64 ahead of a caller who stops early (at
/// the first error, or after a few).
#[test]
fn a_bulk_delete_deletes_only_as_it_is_pulled() {
    const KEYS: usize = 1000;
    let executor = common::narrow_executor("delete-pulled", None);
    let store = IoObjectStore::new(object_store::memory::InMemory::new(), executor.clone());
    common::caller_runtime().block_on(async {
        for i in 0..KEYS {
            store
                .put(&Path::from(format!("k{i:04}")), "x".into())
                .await
                .unwrap();
        }
        let locations =
            || futures::stream::iter((0..KEYS).map(|i| Ok(Path::from(format!("k{i:04}"))))).boxed();
        let left = || async { store.inner().list(None).count().await };
        let unpolled = store.delete_stream(locations());
        // A call made after it, on the executor's one worker: a pump started when
        // the stream was made would have run before it.
        store.head(&Path::from("k0000")).await.unwrap();
        assert_eq!(left().await, KEYS, "deleted before the stream was polled");
        drop(unpolled);
        let first: Vec<_> = store.delete_stream(locations()).take(1).collect().await;
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].as_ref().unwrap(), &Path::from("k0000"));
        // Every job done (the pump of the stream dropped, too): the final count.
        common::guarded("the executor's end", executor.join()).await;
        let left = left().await;
        assert!(
            left >= KEYS - 1 - 2 * 64,
            "{} deleted for a caller who took one",
            KEYS - left
        );
    });
}
