//! The conformance suite: one function per behaviour, run unchanged by every
//! backend through [`conformance_tests!`]. Contents are checked by SHA-256.
#![allow(dead_code, reason = "each backend's test binary may skip some")]

use std::collections::BTreeSet;
use std::io::SeekFrom;

use bytes::Bytes;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use storage::{ErrorKind, Operator};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Generates one `#[test]` per behaviour, each on a fresh operator from `$make`
/// (an expression of type `Operator`) and a current-thread caller runtime.
///
/// `conformance_tests!(optional $make)` takes a `fn(&str) -> Option<Operator>`
/// instead, called with the test's name: `None` skips the test (a backend whose
/// server is not available).
#[macro_export]
macro_rules! conformance_tests {
    (optional $make:expr) => {
        $crate::conformance_tests!(@each $make;
            write_read_roundtrip, empty_object, large_object, names_with_special_characters,
            overwrite, concurrent_writers_last_wins_never_torn, read_missing, directory_read_as_file,
            range_edge_cases, read_ranges_in_request_order, read_ranges_split_into_parts,
            reader_seeks_back_and_forth, reader_stream_and_futures_io, writer_in_pieces,
            writer_aborted_midway, writer_dropped_without_close, list_one_level_and_recursive,
            delete_and_remove_all, stat_and_exists, copy_and_rename, paths_are_relative_to_the_root,
            blocking_api_from_plain_and_async_threads
        );
    };
    ($make:expr) => {
        $crate::conformance_tests!(optional |_: &str| -> Option<storage::Operator> { Some($make) });
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let make: fn(&str) -> Option<storage::Operator> = $make;
                let Some(op) = make(stringify!($name)) else {
                    return;
                };
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on($crate::conformance::$name(op));
            }
        )*
    };
}

pub(crate) fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub(crate) fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v = vec![0; len];
    rng.fill(&mut v[..]);
    v.into()
}

async fn roundtrip(op: &Operator, path: &str, data: Bytes) {
    let meta = op.write(path, data.clone()).await.unwrap();
    assert_eq!(meta.content_length(), data.len() as u64, "{path}");
    let back = op.read(path).await.unwrap();
    assert_eq!(sha(&back), sha(&data), "{path}: content differs");
}

pub(crate) async fn write_read_roundtrip(op: Operator) {
    for (i, len) in [1, 100, 4096, 65_536, (1 << 20) + 7, 5 << 20]
        .into_iter()
        .enumerate()
    {
        roundtrip(&op, &format!("rt/file-{i}"), random_bytes(len, i as u64)).await;
    }
}

pub(crate) async fn empty_object(op: Operator) {
    roundtrip(&op, "empty/zero", Bytes::new()).await;
    assert_eq!(op.stat("empty/zero").await.unwrap().content_length(), 0);
    assert!(op.read_range("empty/zero", 0..0).await.unwrap().is_empty());
    assert!(op.read_range("empty/zero", 0..).await.unwrap().is_empty());
    let err = op.read_range("empty/zero", 0..1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable);
    assert_eq!(err.context("size"), Some("0"));
    let mut reader = op.reader("empty/zero").await.unwrap();
    let mut all = Vec::new();
    reader.read_to_end(&mut all).await.unwrap();
    assert!(all.is_empty());
}

pub(crate) async fn large_object(op: Operator) {
    let data = random_bytes(64 << 20, 64);
    roundtrip(&op, "large/64m", data.clone()).await;
    let mut writer = op.writer("large/64m-writer").await.unwrap();
    for chunk in data.chunks(3 << 20) {
        writer.write_all(chunk).await.unwrap();
    }
    assert_eq!(writer.close().await.unwrap().content_length(), 64 << 20);
    let mut reader = op.reader("large/64m-writer").await.unwrap();
    let mut back = Vec::new();
    reader.read_to_end(&mut back).await.unwrap();
    assert_eq!(sha(&back), sha(&data));
}

pub(crate) async fn names_with_special_characters(op: Operator) {
    let names = [
        "names/with space",
        "names/plus+sign",
        "names/per%cent",
        "names/equals=sign",
        "names/amp&ersand",
        "names/question?mark",
        "names/hash#tag",
        "names/ünïcødé/文件",
        "names/emoji 🦀.bin",
        "names/semi;colon,comma'quote",
    ];
    for (i, name) in names.iter().enumerate() {
        roundtrip(&op, name, random_bytes(100 + i, i as u64)).await;
    }
    let listed: BTreeSet<String> = op
        .list_recursive("names/")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.metadata().is_file())
        .map(|e| e.path().to_owned())
        .collect();
    let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, want);
}

pub(crate) async fn overwrite(op: Operator) {
    roundtrip(&op, "ow/key", random_bytes(10_000, 1)).await;
    roundtrip(&op, "ow/key", random_bytes(300, 2)).await;
    assert_eq!(op.stat("ow/key").await.unwrap().content_length(), 300);
}

/// Writers race on one key while readers read it: every read sees one complete
/// version, and the last write wins.
pub(crate) async fn concurrent_writers_last_wins_never_torn(op: Operator) {
    let versions: Vec<Bytes> = (0..8).map(|i| random_bytes(256 << 10, 100 + i)).collect();
    let hashes: BTreeSet<[u8; 32]> = versions.iter().map(|v| sha(v)).collect();
    op.write("race/key", versions[0].clone()).await.unwrap();
    let writes: Vec<_> = versions
        .iter()
        .map(|v| op.write("race/key", v.clone()))
        .collect();
    let reads: Vec<_> = (0..16).map(|_| op.read("race/key")).collect();
    for w in writes {
        w.await.unwrap();
    }
    for r in reads {
        let seen = r.await.unwrap();
        assert!(hashes.contains(&sha(&seen)), "a reader saw a torn object");
    }
    let last = op.write("race/key", versions[3].clone());
    last.await.unwrap();
    assert_eq!(sha(&op.read("race/key").await.unwrap()), sha(&versions[3]));
}

pub(crate) async fn read_missing(op: Operator) {
    let err = op.read("missing/nothing.parquet").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.operation(), "read");
    assert_eq!(err.path(), "missing/nothing.parquet");
    assert!(
        err.to_string()
            .starts_with(r#"read failed for "missing/nothing.parquet": not found"#),
        "{err}"
    );
    assert_eq!(
        op.stat("missing/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        op.reader("missing/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(!op.exists("missing/x").await.unwrap());
}

pub(crate) async fn directory_read_as_file(op: Operator) {
    op.write("dirs/sub/file", "x").await.unwrap();
    op.create_dir("dirs/empty/").await.unwrap();
    for path in ["dirs/sub", "dirs/empty", "dirs/sub/"] {
        let err = op.read(path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory, "{path}: {err}");
    }
    assert_eq!(
        op.write("dirs/sub", "y").await.unwrap_err().kind(),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        op.write("dirs/sub/file/below", "z")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotADirectory
    );
    assert_eq!(
        op.read("dirs/sub/file").await.unwrap(),
        "x",
        "failed writes changed nothing"
    );
}

pub(crate) async fn range_edge_cases(op: Operator) {
    let data = random_bytes(1000, 7);
    op.write("ranges/obj", data.clone()).await.unwrap();
    let cases: Vec<(std::ops::Range<u64>, &[u8])> = vec![
        (0..1000, &data[..]),
        (0..1, &data[..1]),
        (999..1000, &data[999..]),
        (500..500, &[]),
        (1000..1000, &[]),
        (10..20, &data[10..20]),
    ];
    for (range, want) in cases {
        assert_eq!(
            op.read_range("ranges/obj", range.clone()).await.unwrap(),
            want,
            "{range:?}"
        );
    }
    assert_eq!(
        op.read_range("ranges/obj", 990..).await.unwrap(),
        &data[990..]
    );
    assert!(
        op.read_range("ranges/obj", 1000..)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        op.read_range("ranges/obj", ..=9).await.unwrap(),
        &data[..10]
    );
    for bad in [0..1001, 999..1001, 1001..1001, 5000..6000] {
        let err = op.read_range("ranges/obj", bad.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{bad:?}");
        assert_eq!(err.context("size"), Some("1000"));
    }
    let err = op.read_range("ranges/obj", 1001..).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable);
    let err = op.read_range("ranges/obj", 0..4096).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"read_range failed for "ranges/obj" (range 0..4096, size 1000): range not satisfiable"#
    );
    // A range that starts after it ends.
    let backwards: Vec<_> = [(20, 10)].into_iter().map(|(s, e)| s..e).collect();
    let err = op.read_ranges("ranges/obj", backwards).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = op
        .read_ranges("ranges/obj", vec![0..10, 990..1010])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable);
    assert_eq!(err.operation(), "read_ranges");
}

pub(crate) async fn read_ranges_in_request_order(op: Operator) {
    let data = random_bytes(4 << 20, 9);
    op.write("rr/obj", data.clone()).await.unwrap();
    let ranges = vec![
        3_000_000..3_100_000,
        0..10,
        10..4096,
        2_000..3_000,
        4_000_000..(4 << 20),
        100..100,
        1_000_000..1_000_001,
    ];
    let got = op.read_ranges("rr/obj", ranges.clone()).await.unwrap();
    assert_eq!(got.len(), ranges.len());
    for (bytes, r) in got.iter().zip(&ranges) {
        assert_eq!(
            sha(bytes),
            sha(&data[r.start as usize..r.end as usize]),
            "{r:?}"
        );
    }
    assert!(op.read_ranges("rr/obj", vec![]).await.unwrap().is_empty());
}

pub(crate) async fn read_ranges_split_into_parts(op: Operator) {
    let options = op
        .options()
        .with_split_size(Some(100_000))
        .with_coalesce_gap(0);
    let op = op.with_options(options);
    let data = random_bytes(1 << 20, 11);
    op.write("split/obj", data.clone()).await.unwrap();
    let ranges = vec![0..(1 << 20), 12_345..654_321, 999_999..1_000_000];
    let got = op.read_ranges("split/obj", ranges.clone()).await.unwrap();
    for (bytes, r) in got.iter().zip(&ranges) {
        assert_eq!(
            sha(bytes),
            sha(&data[r.start as usize..r.end as usize]),
            "{r:?}"
        );
    }
}

pub(crate) async fn reader_seeks_back_and_forth(op: Operator) {
    let options = op.options().with_chunk_size(64 << 10).with_prefetch(3);
    let op = op.with_options(options);
    let data = random_bytes((1 << 20) + 333, 12);
    op.write("seek/obj", data.clone()).await.unwrap();
    let mut reader = op.reader("seek/obj").await.unwrap();
    assert_eq!(reader.size(), data.len() as u64);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    for _ in 0..200 {
        let pos = rng.random_range(0..=data.len() as u64);
        let len = rng.random_range(0..200_000usize);
        assert_eq!(reader.seek(SeekFrom::Start(pos)).await.unwrap(), pos);
        let mut buf = vec![0; len];
        let mut filled = 0;
        while filled < len {
            let n = reader.read(&mut buf[filled..]).await.unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        let want = &data[pos as usize..(pos as usize + len).min(data.len())];
        assert_eq!(&buf[..filled], want, "at {pos} for {len}");
    }
    assert_eq!(
        reader.seek(SeekFrom::End(-10)).await.unwrap(),
        data.len() as u64 - 10
    );
    let mut tail = Vec::new();
    reader.read_to_end(&mut tail).await.unwrap();
    assert_eq!(&tail[..], &data[data.len() - 10..]);
    assert_eq!(
        reader.seek(SeekFrom::Current(-20)).await.unwrap(),
        data.len() as u64 - 20
    );
    assert!(reader.seek(SeekFrom::Current(-(1 << 40))).await.is_err());
    reader
        .seek(SeekFrom::Start(data.len() as u64 + 100))
        .await
        .unwrap();
    assert_eq!(
        reader.read(&mut [0; 10]).await.unwrap(),
        0,
        "past the end reads nothing"
    );
}

pub(crate) async fn reader_stream_and_futures_io(op: Operator) {
    let options = op.options().with_chunk_size(100_000);
    let op = op.with_options(options);
    let data = random_bytes(1_234_567, 13);
    op.write("stream/obj", data.clone()).await.unwrap();
    let mut reader = op.reader("stream/obj").await.unwrap();
    let mut all = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = reader.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 100_000);
        all.extend_from_slice(&chunk);
        chunks += 1;
    }
    assert_eq!(chunks, 13);
    assert_eq!(sha(&all), sha(&data));
    let mut reader = op.reader("stream/obj").await.unwrap();
    futures::AsyncSeekExt::seek(&mut reader, SeekFrom::Start(1_000_000))
        .await
        .unwrap();
    let mut rest = Vec::new();
    futures::AsyncReadExt::read_to_end(&mut reader, &mut rest)
        .await
        .unwrap();
    assert_eq!(&rest[..], &data[1_000_000..]);
}

pub(crate) async fn writer_in_pieces(op: Operator) {
    let options = op.options().with_write_chunk_size(100_000);
    let op = op.with_options(options);
    let data = random_bytes(1_000_003, 14);
    let mut writer = op.writer("w/pieces").await.unwrap();
    for piece in data.chunks(33_333) {
        writer.write_all(piece).await.unwrap();
    }
    writer
        .write_bytes(Bytes::from_static(b"tail"))
        .await
        .unwrap();
    let meta = writer.close().await.unwrap();
    assert_eq!(meta.content_length(), data.len() as u64 + 4);
    assert_eq!(writer.close().await.unwrap(), meta, "close is idempotent");
    let back = op.read("w/pieces").await.unwrap();
    assert_eq!(sha(&back[..data.len()]), sha(&data));
    assert_eq!(&back[data.len()..], b"tail");
    let mut writer = op.writer("w/shutdown").await.unwrap();
    writer.write_all(b"via shutdown").await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(op.read("w/shutdown").await.unwrap(), "via shutdown");
    let mut writer = op.writer("w/futures").await.unwrap();
    futures::AsyncWriteExt::write_all(&mut writer, b"via futures")
        .await
        .unwrap();
    futures::AsyncWriteExt::close(&mut writer).await.unwrap();
    assert_eq!(op.read("w/futures").await.unwrap(), "via futures");
}

async fn only_visible_files(op: &Operator, dir: &str) -> BTreeSet<String> {
    op.list_recursive(dir)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_owned())
        .collect()
}

pub(crate) async fn writer_aborted_midway(op: Operator) {
    let options = op.options().with_write_chunk_size(10_000);
    let op = op.with_options(options);
    op.write("abort/existing", "old").await.unwrap();
    for target in ["abort/existing", "abort/new"] {
        let mut writer = op.writer(target).await.unwrap();
        writer.write_all(&random_bytes(55_555, 15)).await.unwrap();
        writer.flush().await.unwrap();
        writer.abort().await.unwrap();
    }
    assert_eq!(op.read("abort/existing").await.unwrap(), "old");
    assert_eq!(
        op.read("abort/new").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        only_visible_files(&op, "abort/").await,
        BTreeSet::from(["abort/existing".to_owned()])
    );
}

pub(crate) async fn writer_dropped_without_close(op: Operator) {
    let options = op.options().with_write_chunk_size(10_000);
    let op = op.with_options(options);
    op.write("drop/existing", "old").await.unwrap();
    for target in ["drop/existing", "drop/new"] {
        let mut writer = op.writer(target).await.unwrap();
        writer.write_all(&random_bytes(55_555, 16)).await.unwrap();
        drop(writer);
    }
    // The abort runs on the executor; give it a moment, then nothing may be left.
    for _ in 0..500 {
        if only_visible_files(&op, "drop/").await.len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(op.read("drop/existing").await.unwrap(), "old");
    assert_eq!(
        op.read("drop/new").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        only_visible_files(&op, "drop/").await,
        BTreeSet::from(["drop/existing".to_owned()])
    );
}

pub(crate) async fn list_one_level_and_recursive(op: Operator) {
    for path in ["ls/a", "ls/b", "ls/sub/c", "ls/sub/deeper/d"] {
        op.write(path, "x").await.unwrap();
    }
    op.create_dir("ls/emptydir/").await.unwrap();
    let one: BTreeSet<String> = op
        .list("ls/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_owned())
        .collect();
    assert_eq!(
        one,
        ["ls/a", "ls/b", "ls/emptydir/", "ls/sub/"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let all: BTreeSet<String> = op
        .list_recursive("ls")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_owned())
        .collect();
    assert_eq!(
        all,
        [
            "ls/a",
            "ls/b",
            "ls/emptydir/",
            "ls/sub/",
            "ls/sub/c",
            "ls/sub/deeper/",
            "ls/sub/deeper/d"
        ]
        .map(String::from)
        .into_iter()
        .collect()
    );
    let entries = op.list("ls/sub/").await.unwrap();
    for e in &entries {
        assert_eq!(e.metadata().is_dir(), e.path().ends_with('/'), "{e:?}");
        if e.path() == "ls/sub/c" {
            assert_eq!(e.metadata().content_length(), 1);
            assert_eq!(e.name(), "c");
        }
    }
    assert!(op.list("ls/missing/").await.unwrap().is_empty());
    let mut lister = op.lister("ls/").await.unwrap();
    let mut streamed = 0;
    while let Some(entry) = lister.next().await {
        entry.unwrap();
        streamed += 1;
    }
    assert_eq!(streamed, 4);
    assert_eq!(
        op.list("ls/a").await.unwrap_err().kind(),
        ErrorKind::NotADirectory
    );
}

pub(crate) async fn delete_and_remove_all(op: Operator) {
    op.write("del/file", "x").await.unwrap();
    op.write("del/tree/a", "x").await.unwrap();
    op.write("del/tree/b/c", "x").await.unwrap();
    op.create_dir("del/empty/").await.unwrap();
    op.delete("del/file").await.unwrap();
    assert!(!op.exists("del/file").await.unwrap());
    op.delete("del/file").await.unwrap();
    op.delete("del/never/was").await.unwrap();
    assert_eq!(
        op.delete("del/tree/").await.unwrap_err().kind(),
        ErrorKind::DirectoryNotEmpty
    );
    op.delete("del/empty/").await.unwrap();
    assert!(!op.exists("del/empty/").await.unwrap());
    // A directory whose only content is an empty subdirectory is not empty.
    op.create_dir("del/outer/inner/").await.unwrap();
    assert_eq!(
        op.delete("del/outer/").await.unwrap_err().kind(),
        ErrorKind::DirectoryNotEmpty
    );
    assert!(op.exists("del/outer/inner/").await.unwrap());
    op.delete("del/outer/inner/").await.unwrap();
    op.delete("del/outer/").await.unwrap();
    op.remove_all("del/tree").await.unwrap();
    assert!(!op.exists("del/tree/b/c").await.unwrap());
    assert!(op.list_recursive("del/").await.unwrap().is_empty());
    op.remove_all("del/not/there/").await.unwrap();
    assert_eq!(
        op.delete("/").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

pub(crate) async fn stat_and_exists(op: Operator) {
    op.write("st/file", vec![1; 1234]).await.unwrap();
    let meta = op.stat("st/file").await.unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.content_length(), 1234);
    assert!(meta.last_modified().is_some());
    assert!(op.stat("st/").await.unwrap().is_dir());
    assert!(op.stat("st").await.unwrap().is_dir());
    assert!(op.stat("").await.unwrap().is_dir());
    assert!(op.exists("st/file").await.unwrap());
    assert!(!op.exists("st/nope").await.unwrap());
    let err = op.exists("../escape").await.unwrap_err();
    assert_eq!(
        (err.kind(), err.operation()),
        (ErrorKind::InvalidInput, "exists")
    );
}

pub(crate) async fn copy_and_rename(op: Operator) {
    let data = random_bytes(300_000, 17);
    op.write("cr/src", data.clone()).await.unwrap();
    op.copy("cr/src", "cr/sub/copy").await.unwrap();
    assert_eq!(sha(&op.read("cr/sub/copy").await.unwrap()), sha(&data));
    op.write("cr/target", "old").await.unwrap();
    op.copy("cr/src", "cr/target").await.unwrap();
    assert_eq!(sha(&op.read("cr/target").await.unwrap()), sha(&data));
    op.rename("cr/sub/copy", "cr/moved/here").await.unwrap();
    assert!(!op.exists("cr/sub/copy").await.unwrap());
    assert_eq!(sha(&op.read("cr/moved/here").await.unwrap()), sha(&data));
    assert_eq!(
        op.rename("cr/none", "cr/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        op.copy("cr/none", "cr/x").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

pub(crate) async fn paths_are_relative_to_the_root(op: Operator) {
    op.write("/abs/leading", "1").await.unwrap();
    assert_eq!(op.read("abs/leading").await.unwrap(), "1");
    assert_eq!(op.read("abs//./x/../leading").await.unwrap(), "1");
    for bad in ["../x", "a/../../x", "abs/\0nul"] {
        let err = op.read(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        assert_eq!(
            op.write(bad, "x").await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
    assert_eq!(
        op.read("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        op.write("/", "x").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

pub(crate) async fn blocking_api_from_plain_and_async_threads(op: Operator) {
    let blocking = op.blocking();
    let from_thread = {
        let blocking = blocking.clone();
        std::thread::spawn(move || {
            blocking.write("blk/a", "plain thread").unwrap();
            let mut w = blocking.writer("blk/w").unwrap();
            std::io::Write::write_all(&mut w, b"written").unwrap();
            w.close().unwrap();
            let mut r = blocking.reader("blk/w").unwrap();
            let mut s = String::new();
            std::io::Read::read_to_string(&mut r, &mut s).unwrap();
            assert_eq!(s, "written");
            let names: Vec<_> = blocking
                .lister("blk/")
                .unwrap()
                .map(|e| e.unwrap().path().to_owned())
                .collect();
            assert_eq!(names.len(), 2);
            blocking.read("blk/a").unwrap()
        })
    };
    assert_eq!(from_thread.join().unwrap(), "plain thread");
    // Inside this (current-thread) runtime: blocks, but must not panic.
    assert_eq!(blocking.read("blk/a").unwrap(), "plain thread");
    assert_eq!(blocking.read_range("blk/a", 0..5).unwrap(), "plain");
    assert_eq!(blocking.stat("blk/a").unwrap().content_length(), 12);
}
