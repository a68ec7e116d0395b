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
