//! `LocalFileSystem`'s `File` payload comes back as a stream read on the executor:
//! one contiguous piece up to 64 MiB, 8 MiB pieces beyond; the bytes match.

mod common;

use dio_object_store::IoObjectStore;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt};
use tempfile::TempDir;

fn fixture(len: usize) -> (TempDir, IoObjectStore<LocalFileSystem>, Vec<u8>) {
    let dir = TempDir::new().unwrap();
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(dir.path().join("file"), &data).unwrap();
    let fs = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    (
        dir,
        IoObjectStore::new(fs, common::executor("file-io")),
        data,
    )
}

#[tokio::test]
async fn a_file_payload_becomes_one_contiguous_piece() {
    let (_dir, store, data) = fixture(3 << 20 | 17);
    let path = Path::from("file");

    let result = store.get(&path).await.unwrap();
    assert!(
        matches!(result.payload, GetResultPayload::Stream(_)),
        "{:?}",
        result.payload
    );
    let pieces: Vec<_> = result.into_stream().try_collect().await.unwrap();
    assert_eq!(pieces.len(), 1);
    assert_eq!(pieces[0], data);

    assert_eq!(
        store.get_range(&path, 1000..2_000_000).await.unwrap(),
        data[1000..2_000_000]
    );
    let ranges = [0..10, 5..100_005, 3_000_000..(3 << 20 | 17)];
    let got = store.get_ranges(&path, &ranges).await.unwrap();
    for (range, bytes) in ranges.iter().zip(got) {
        assert_eq!(bytes, data[range.start as usize..range.end as usize]);
    }
    let tail = store
        .get_opts(
            &path,
            GetOptions::new().with_range(Some(GetRange::Suffix(100))),
        )
        .await
        .unwrap();
    assert_eq!(tail.range.end - tail.range.start, 100);
    assert_eq!(tail.bytes().await.unwrap(), data[data.len() - 100..]);
}

#[tokio::test]
async fn a_range_over_64_mib_comes_in_8_mib_pieces() {
    let (_dir, store, data) = fixture((72 << 20) + 5);
    let path = Path::from("file");
    let pieces: Vec<_> = store
        .get(&path)
        .await
        .unwrap()
        .into_stream()
        .try_collect()
        .await
        .unwrap();
    let lens: Vec<_> = pieces.iter().map(|p| p.len()).collect();
    let mut expected = vec![8 << 20; 9];
    expected.push(5);
    assert_eq!(lens, expected);
    assert!(pieces.concat() == data, "the pieces add up to the file");
    let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert!(bytes == data, "bytes() of a long range");
}

/// As object_store's own `range_request_*_end_of_file` tests for `LocalFileSystem`.
#[tokio::test]
async fn ranges_past_the_end_behave_as_local_file_system_does() {
    let (_dir, store, data) = fixture(14);
    let path = Path::from("file");
    assert_eq!(store.get_range(&path, 0..100).await.unwrap(), data);
    store.get_range(&path, 100..200).await.unwrap_err();
}

#[tokio::test]
async fn a_head_request_reads_nothing() {
    let (_dir, store, _) = fixture(1 << 20);
    let result = store
        .get_opts(&Path::from("file"), GetOptions::new().with_head(true))
        .await
        .unwrap();
    assert_eq!(result.meta.size, 1 << 20);
    assert!(
        result
            .into_stream()
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .is_empty()
    );
}

/// A `get` the executor has accepted goes on past a full queue: its later pieces
/// wait their turn, where each was refused ("queue is full") and the stream cut
/// short midway, for a transient load.
#[test]
fn a_get_under_way_is_not_refused_by_a_full_queue() {
    let dir = TempDir::new().unwrap();
    let data: Vec<u8> = (0..80_usize << 20).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(dir.path().join("file"), &data).unwrap();
    let executor = common::narrow_executor("get-full", Some(1));
    let fs = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
    let store = IoObjectStore::new(fs, executor.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let settle = || loop {
        let m = executor.metrics();
        if m.completed >= 4 && m.queued == 0 && m.running == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never settled: {m:?}");
        std::thread::yield_now();
    };
    let mut stream = rt
        .block_on(store.get(&Path::from("file")))
        .unwrap()
        .into_stream();
    let first = rt.block_on(stream.try_next()).unwrap().unwrap();
    assert_eq!(first, data[..first.len()]);
    // The pump has read ahead what it may and waits for the consumer: the get's
    // own job and three reads have ended (the piece taken, the one in the
    // channel, the one the pump holds), and nothing else is under way.
    settle();
    // The blocking thread busy, and one job queued: the queue is at its bound.
    let (release, busy) = common::occupy_blocking(&executor);
    let queued = executor.spawn_blocking(|| ());
    let consumer = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut rest = Vec::new();
            while let Some(piece) = stream.try_next().await? {
                rest.extend_from_slice(&piece);
            }
            Ok::<_, object_store::Error>(rest)
        })
    });
    // The rest waits behind the full queue (a read of it queued past the bound),
    // or, refused, has ended the stream.
    while !consumer.is_finished() && executor.metrics().queued < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "neither queued nor refused: {:?}",
            executor.metrics()
        );
        std::thread::yield_now();
    }
    release.send(()).unwrap();
    let rest = consumer.join().unwrap().expect("the rest of the get");
    assert!(rest == data[first.len()..], "the rest of the file");
    rt.block_on(async {
        busy.await.unwrap();
        queued.await.unwrap();
    });
    executor.shutdown();
    executor.blocking_join();
}
