//! The conformance suite: one function per behaviour, run unchanged by every
//! backend through [`conformance_tests!`]. Contents are checked by SHA-256.
#![allow(dead_code, reason = "each backend's test binary may skip some")]

use std::collections::BTreeSet;
use std::io::SeekFrom;

use bytes::Bytes;
use futures::StreamExt;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use storage::raw::ByteRange;
use storage::{ErrorKind, Operator};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Generates one `#[test]` per behaviour, each on a fresh operator from `$make`
/// (an expression of type `Operator`) and a current-thread caller runtime.
///
/// `conformance_tests!(optional $make)` takes a `fn(&str) -> Option<Operator>`
/// instead, called with the test's name: `None` skips the test (a backend whose
/// server is not available). `conformance_tests!(keys $make)`, the same, runs
/// every test but those of the fs meaning of directories (a write over keys that
/// lie below its name, a rename below a file): for S3 with writes unchecked,
/// which store those as keys.
#[macro_export]
macro_rules! conformance_tests {
    (optional $make:expr) => {
        $crate::conformance_tests!(keys $make);
        $crate::conformance_tests!(@each $make;
            directory_read_as_file, backends_agree_on_edge_cases
        );
    };
    (keys $make:expr) => {
        $crate::conformance_tests!(@each $make;
            write_read_roundtrip, empty_object, large_object, names_with_special_characters,
            names_with_line_breaks_and_control_characters,
            overwrite, concurrent_writers_last_wins_never_torn, read_missing,
            range_edge_cases, read_ranges_in_request_order, read_ranges_split_into_parts,
            reader_seeks_back_and_forth, reader_stream_and_futures_io, writer_in_pieces,
            writer_aborted_midway, writer_dropped_without_close, list_one_level_and_recursive,
            delete_and_remove_all, stat_and_exists, copy_and_rename, paths_are_relative_to_the_root,
            blocking_api_from_plain_and_async_threads, conditional_reads, conditional_writes,
            etag_changes_with_every_write, list_start_after, delete_many_in_one_call,
            every_operation_fails_after_shutdown,
            reader_errors_are_sticky, writer_errors_are_sticky, loops_over_operations_let_timers_fire,
            read_ranges_reads_one_version, reads_over_the_buffer_limit_are_refused,
            read_ranges_of_the_version_asked_for, overlong_paths_are_refused,
            debug_output_shows_no_data, writer_flushed_while_it_commits
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

/// The paths of the files below `dir`, at any depth.
async fn files_under(op: &Operator, dir: &str) -> BTreeSet<String> {
    op.list_recursive(dir)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.metadata().is_file())
        .map(|e| e.path().to_owned())
        .collect()
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
        "names/tilde~star*at@colon:bang!",
        // Not a backslash: SeaweedFS stores it as a `/`.
        "names/(paren)$[bracket]{brace}|pipe^caret`tick",
    ];
    for (i, name) in names.iter().enumerate() {
        roundtrip(&op, name, random_bytes(100 + i, i as u64)).await;
    }
    let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(files_under(&op, "names/").await, want);
    // Copied and renamed by those names (S3's copy source carries the name).
    for (i, name) in names.iter().enumerate() {
        let copied = name.replacen("names/", "copied/", 1);
        let renamed = name.replacen("names/", "renamed/", 1);
        op.copy(name, &copied).await.unwrap();
        op.rename(&copied, &renamed).await.unwrap();
        let back = op.read(&renamed).await.unwrap();
        assert_eq!(
            sha(&back),
            sha(&random_bytes(100 + i, i as u64)),
            "{renamed}"
        );
    }
    let renamed: BTreeSet<String> = want
        .iter()
        .map(|n| n.replacen("names/", "renamed/", 1))
        .collect();
    assert_eq!(files_under(&op, "renamed/").await, renamed);
    assert!(files_under(&op, "copied/").await.is_empty());
}

/// Names holding line breaks and control characters, which XML (S3's listings and
/// bulk deletes) cannot carry as they are: listed, deleted and removed as written.
pub(crate) async fn names_with_line_breaks_and_control_characters(op: Operator) {
    let names = [
        "lb/carriage\rreturn",
        "lb/crlf\r\nend",
        "lb/line\nfeed",
        "lb/tab\there",
        "lb/line\u{2028}separator",
        "lb/next\u{85}line",
        "lb/control\u{1}char",
        "lb/dir\rname/inside",
    ];
    for (i, name) in names.iter().enumerate() {
        roundtrip(&op, name, random_bytes(10 + i, i as u64)).await;
    }
    let want: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(files_under(&op, "lb/").await, want);
    let top: BTreeSet<String> = op
        .list("lb/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_owned())
        .collect();
    assert!(top.contains("lb/dir\rname/"), "{top:?}");
    for name in &names {
        let meta = op.stat(name).await.unwrap();
        assert!(meta.is_file(), "{name:?}");
    }
    // Deleted by name, in one call: every one of them, not a look-alike.
    let results = op.delete_many(names).await.unwrap();
    for (name, result) in names.iter().zip(&results) {
        assert!(result.is_ok(), "{name:?}: {result:?}");
        assert!(!op.exists(name).await.unwrap(), "{name:?} is still there");
    }
    for (i, name) in names.iter().enumerate() {
        roundtrip(&op, name, random_bytes(10 + i, i as u64)).await;
    }
    op.remove_all("lb/").await.unwrap();
    assert!(files_under(&op, "lb/").await.is_empty());
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
    // What failed, where, and how (S3 adds the answer's status, code and request id
    // between the path and the kind).
    let text = err.to_string();
    assert!(
        text.starts_with(r#"read failed for "missing/nothing.parquet""#)
            && text.contains(": not found"),
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
    // Refused with a large body too (a backend that sent it before its checks
    // answered would have to call it off): nothing is stored under either name.
    let large = random_bytes(1 << 20, 11);
    assert_eq!(
        op.write("dirs/sub", large.clone())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::IsADirectory
    );
    assert_eq!(
        op.write("dirs/sub/file/below", large)
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
    assert_eq!(
        op.read("dirs/sub").await.unwrap_err().kind(),
        ErrorKind::IsADirectory,
        "no object stored in the directory's name"
    );
    assert!(
        op.read("dirs/sub/file/below").await.is_err(),
        "no object stored below a file"
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
    // Read alone or through a reader, refused the same way (one that ends at 0 too).
    for (start, end) in [(20, 10), (5, 0)] {
        let err = op.read_range("ranges/obj", start..end).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{start}..{end}: {err}");
        assert_eq!(
            err.context("range"),
            Some(format!("{start}..{end}").as_str())
        );
        let reader = op.reader_with("ranges/obj").range(start..end);
        let err = std::future::IntoFuture::into_future(reader)
            .await
            .map(drop)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{start}..{end}: {err}");
    }
    let err = op
        .read_ranges("ranges/obj", vec![0..10, 990..1010])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable);
    assert_eq!(err.operation(), "read_ranges");
    assert_eq!(err.context("range"), Some("990..1010"), "{err}");
    // An empty range past the end, read in one with a range before it: the error
    // names the empty range, not the read they were merged into.
    let err = op
        .read_ranges("ranges/obj", vec![990..999, 1001..1001])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{err}");
    assert_eq!(err.context("range"), Some("1001..1001"), "{err}");
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
        // The same ranges again: a read serves both, the last one taking its buffer.
        1_000_000..1_000_001,
        3_000_000..3_100_000,
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
    // Ranges that end near u64::MAX (a negative offset cast to u64) are split
    // like any other, and are past the end: an error, never a panic or a plan
    // without end.
    let far = vec![u64::MAX - 350_000..u64::MAX - 1, 0..10];
    let err = op.read_ranges("split/obj", far).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{err}");
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
        // Now and then by way of another position, read nothing there.
        if rng.random_bool(0.5) {
            let detour = rng.random_range(0..=data.len() as u64);
            reader.seek(SeekFrom::Start(detour)).await.unwrap();
        }
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
    // Away and back, reading nothing between: to the start of what was read last
    // (a footer's, a fresh reader's first chunk), and within it.
    for (away, back) in [
        (SeekFrom::End(-8), 0),
        (SeekFrom::Start(1000), 0),
        (SeekFrom::Start(300_000), 5),
    ] {
        let mut fresh = op.reader("seek/obj").await.unwrap();
        fresh.seek(away).await.unwrap();
        fresh.seek(SeekFrom::Start(back)).await.unwrap();
        let mut rest = Vec::new();
        fresh.read_to_end(&mut rest).await.unwrap();
        assert!(rest[..] == data[back as usize..], "{away:?} then {back}");
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
    // Refused with our error inside (operation, path), and not sticky: the
    // reader stays where it was.
    let err = reader
        .seek(SeekFrom::Current(-(1 << 40)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    let ours = err.get_ref().unwrap().downcast_ref::<storage::Error>();
    let ours = ours.unwrap_or_else(|| panic!("not our error: {err:?}"));
    assert_eq!((ours.operation(), ours.path()), ("reader", "seek/obj"));
    assert_eq!(
        reader.seek(SeekFrom::Current(0)).await.unwrap(),
        data.len() as u64 - 20
    );
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
    // Committed: nothing is left to flush, as with a file (a wrapper may flush
    // after shutting down); a write is refused.
    writer.flush().await.unwrap();
    assert!(writer.write_all(b"more").await.is_err());
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
    // After an abort every write fails, through std's `Write` too, with an error
    // std's loops give up on: `write_all` calls again on `Interrupted`, and would
    // spin for ever on an abort that never clears.
    let blocking = op.blocking();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut writer = blocking.writer("abort/blocking").unwrap();
        std::io::Write::write_all(&mut writer, b"some").unwrap();
        writer.abort().unwrap();
        let again = std::io::Write::write_all(&mut writer, b"more").map_err(|e| e.kind());
        let _ = tx.send(again);
    });
    let again = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a write after an abort did not return: std retried its error for ever");
    assert_eq!(again, Err(std::io::ErrorKind::Other));
    assert!(!op.exists("abort/blocking").await.unwrap());
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
    // A path whose last name is `.` or `..` is refused, as `rm -r` refuses it,
    // not resolved: `del/keep/..` would otherwise remove `del/` and everything
    // beside `keep`, and `.` or `x/..` the whole store.
    op.write("del/keep/k", "x").await.unwrap();
    op.write("del/beside", "x").await.unwrap();
    for path in [
        ".",
        "./",
        "..",
        "del/keep/..",
        "del/keep/../",
        "del/.",
        "del/keep/./",
        "del//..//",
    ] {
        let err = op.remove_all(path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path}: {err}");
        assert_eq!(err.path(), path, "{err}");
        assert_eq!(err.operation(), "remove_all", "{err}");
    }
    assert!(op.exists("del/keep/k").await.unwrap());
    assert!(op.exists("del/beside").await.unwrap());
    // A `..` inside the path still resolves: only its last name is checked.
    op.remove_all("del/beside/../keep").await.unwrap();
    assert!(!op.exists("del/keep/k").await.unwrap());
    op.delete("del/beside").await.unwrap();
    // A write in progress below a tree removed commits afterwards, on every
    // backend alike.
    op.write("del/busy/old", "x").await.unwrap();
    let mut writer = op.writer("del/busy/sub/new").await.unwrap();
    writer.write_all(b"new").await.unwrap();
    writer.flush().await.unwrap();
    op.remove_all("del/busy/").await.unwrap();
    assert!(!op.exists("del/busy/old").await.unwrap());
    writer.close().await.unwrap();
    assert_eq!(op.read("del/busy/sub/new").await.unwrap(), "new");
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
    // A directory's metadata is the same whichever call gives it (fs gives its
    // modification time; memory and S3 have none).
    let dir_entry = |entries: Vec<storage::Entry>| {
        entries
            .into_iter()
            .find(|e| e.path() == "st/")
            .map(|e| e.metadata().last_modified())
    };
    let stated = op.stat("st/").await.unwrap().last_modified();
    assert_eq!(dir_entry(op.list("").await.unwrap()), Some(stated));
    assert_eq!(
        dir_entry(op.list_recursive("").await.unwrap()),
        Some(stated)
    );
    assert_eq!(stated.is_some(), op.scheme() == "fs");
    assert!(op.exists("st/file").await.unwrap());
    assert!(!op.exists("st/nope").await.unwrap());
    // A path below a file names nothing, on every backend alike.
    assert!(!op.exists("st/file/x").await.unwrap());
    assert_eq!(kind(op.stat("st/file/x").await), ErrorKind::NotFound);
    assert_eq!(kind(op.read("st/file/x").await), ErrorKind::NotFound);
    assert_eq!(
        kind(op.read_range("st/file/x", 0..1).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(op.rename("st/file/x", "st/y").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(op.copy("st/file/x", "st/file/x").await),
        ErrorKind::NotFound
    );
    assert!(op.list("st/file/x/").await.unwrap().is_empty());
    // A directory below a file is missing too; only the file's own name as a
    // directory is not one.
    assert!(!op.exists("st/file/x/").await.unwrap());
    assert_eq!(kind(op.stat("st/file/x/").await), ErrorKind::NotFound);
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
    let before = op.stat("cr/sub/copy").await.unwrap();
    op.rename("cr/sub/copy", "cr/moved/here").await.unwrap();
    assert!(!op.exists("cr/sub/copy").await.unwrap());
    assert_eq!(sha(&op.read("cr/moved/here").await.unwrap()), sha(&data));
    // A rename moves the object, not writes it: on fs (the same inode) and memory
    // its version stays, and a read held to it still finds it. (S3 copies: the
    // target is a version of its own.)
    if op.scheme() != "s3" {
        let after = op.stat("cr/moved/here").await.unwrap();
        assert_eq!(after.etag(), before.etag());
        assert_eq!(after.last_modified(), before.last_modified());
        let etag = before.etag().unwrap();
        let read = op.read_with("cr/moved/here").if_match(etag);
        assert_eq!(sha(&read.await.unwrap()), sha(&data));
    }
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
    // Nor inside another executor's `block_on` (as in a sync callback of a
    // futures executor).
    let nested = futures::executor::block_on(async { blocking.read("blk/a") });
    assert_eq!(nested.unwrap(), "plain thread");

    // On a worker of the operator's own executor the wait could never end (an S3
    // request would be queued on that very worker): refused, on every backend.
    // On its blocking threads, calls work.
    let executor = own_executor("blk-own");
    let own = op.clone().with_executor(executor.clone()).blocking();
    let on_worker = {
        let own = own.clone();
        executor.spawn(async move { own.stat("blk/a").map(|m| m.content_length()) })
    };
    let refused = on_worker.await.unwrap().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported, "{refused}");
    assert!(refused.to_string().contains("blk-own"), "{refused}");
    assert_eq!(refused.path(), "blk/a", "{refused}");
    // A reader made elsewhere and used there: refused the same way, naming its
    // object and what was asked.
    let mut reader = own.reader("blk/a").unwrap();
    let read_there = executor.spawn(async move {
        let mut buf = [0_u8; 4];
        std::io::Read::read(&mut reader, &mut buf)
    });
    let refused = read_there.await.unwrap().unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::Unsupported, "{refused}");
    let inner = refused
        .get_ref()
        .and_then(|e| e.downcast_ref::<storage::Error>())
        .unwrap_or_else(|| panic!("not our error inside: {refused:?}"));
    assert_eq!(
        (inner.operation(), inner.path()),
        ("read", "blk/a"),
        "{inner}"
    );
    // A writer made elsewhere and closed there, the same.
    let mut writer = own.writer("blk/w2").unwrap();
    let closed_there = executor.spawn(async move { writer.close() });
    let refused = closed_there.await.unwrap().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Unsupported, "{refused}");
    assert_eq!(
        (refused.operation(), refused.path()),
        ("close", "blk/w2"),
        "{refused}"
    );
    // A lister made elsewhere and drained there: its refusal once, then its end
    // (a loop that goes on after errors, as `flatten` does, stops).
    let lister = own.lister("blk/").unwrap();
    let listed_there = executor.spawn(async move {
        let items: Vec<_> = lister
            .take(3)
            .map(|r| r.map_err(|e| (e.kind(), e.path().to_owned())))
            .collect();
        items
    });
    assert_eq!(
        listed_there.await.unwrap(),
        [Err((ErrorKind::Unsupported, "blk/".to_owned()))]
    );
    let on_blocking_thread = executor.spawn_blocking(move || own.read("blk/a"));
    assert_eq!(on_blocking_thread.await.unwrap().unwrap(), "plain thread");
    executor.shutdown();
}

fn kind<T: std::fmt::Debug>(result: storage::Result<T>) -> ErrorKind {
    result.unwrap_err().kind()
}

/// A dedicated pool for one test, so it can be shut down.
fn own_executor(name: &str) -> io_executor::Executor {
    io_executor::Builder::new()
        .name(name)
        .worker_threads(std::num::NonZeroUsize::new(1).unwrap())
        .blocking_threads(std::num::NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap()
}

pub(crate) async fn conditional_reads(op: Operator) {
    let meta = op.write("cond/a", "hello world").await.unwrap();
    let etag = meta.etag().expect("every write returns an ETag").to_owned();
    let stat = op.stat("cond/a").await.unwrap();
    assert_eq!(stat.etag(), Some(etag.as_str()), "stat and write agree");
    let listed = op.list("cond/").await.unwrap();
    assert_eq!(listed[0].metadata().etag(), Some(etag.as_str()), "and list");

    assert_eq!(
        op.read_with("cond/a").if_match(&etag).await.unwrap(),
        "hello world"
    );
    assert_eq!(
        op.read_with("cond/a")
            .range(0..5)
            .if_match("*")
            .await
            .unwrap(),
        "hello"
    );
    let err = op
        .read_with("cond/a")
        .if_match("\"nope\"")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err:?}");
    assert_eq!(err.operation(), "read_with");
    assert_eq!(err.path(), "cond/a");
    assert_eq!(
        kind(op.read_with("cond/a").if_none_match(&etag).await),
        ErrorKind::NotModified
    );
    assert_eq!(
        op.read_with("cond/a")
            .if_none_match("\"nope\"")
            .await
            .unwrap(),
        "hello world"
    );
    let modified = stat.last_modified().unwrap();
    let hour = Duration::from_secs(3600);
    assert_eq!(
        kind(op.read_with("cond/a").if_modified_since(modified).await),
        ErrorKind::NotModified
    );
    op.read_with("cond/a")
        .if_modified_since(modified - hour)
        .await
        .unwrap();
    assert_eq!(
        kind(
            op.read_with("cond/a")
                .if_unmodified_since(modified - hour)
                .await
        ),
        ErrorKind::PreconditionFailed
    );
    op.read_with("cond/a")
        .if_unmodified_since(modified + hour)
        .await
        .unwrap();
    // A time a moment (1 ns) before the change is before it: at its own
    // precision on fs and memory, in whole seconds on S3 (whose times are).
    let before = modified - Duration::from_nanos(1);
    op.read_with("cond/a")
        .if_modified_since(before)
        .await
        .unwrap();
    assert_eq!(
        kind(op.read_with("cond/a").if_unmodified_since(before).await),
        ErrorKind::PreconditionFailed
    );
    // A time in whole seconds is compared in whole seconds, as HTTP dates carry
    // them (S3's server compares so): the start of the second the object was
    // written in is not before its change; the end of that second is not after
    // it either way.
    let since_epoch = modified.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let second = SystemTime::UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
    let second_end = second + Duration::from_nanos(999_999_999);
    for since in [second, second_end] {
        assert_eq!(
            kind(op.read_with("cond/a").if_modified_since(since).await),
            ErrorKind::NotModified
        );
        op.read_with("cond/a")
            .if_unmodified_since(since)
            .await
            .unwrap();
    }
    // stat_with and reader_with check the same conditions.
    assert_eq!(
        kind(op.stat_with("cond/a").if_match("\"nope\"").await),
        ErrorKind::PreconditionFailed
    );
    assert_eq!(
        kind(op.stat_with("cond/a").if_none_match(&etag).await),
        ErrorKind::NotModified
    );
    assert_eq!(
        op.stat_with("cond/a").if_match(&etag).await.unwrap().etag(),
        Some(etag.as_str())
    );
    let mut reader = op
        .reader_with("cond/a")
        .range(6..)
        .if_match(&etag)
        .await
        .unwrap();
    assert_eq!(reader.metadata().etag(), Some(etag.as_str()));
    assert_eq!((reader.size(), reader.range()), (5, 6..11));
    let mut rest = String::new();
    reader.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "world");
    assert_eq!(
        kind(op.reader_with("cond/a").if_match("\"nope\"").await),
        ErrorKind::PreconditionFailed
    );
    // HTTP's range forms: the end is cut to the object's, a suffix.
    assert_eq!(
        op.read_with("cond/a")
            .byte_range(ByteRange::http(6..100))
            .await
            .unwrap(),
        "world"
    );
    assert_eq!(
        op.read_with("cond/a")
            .byte_range(ByteRange::suffix(3))
            .await
            .unwrap(),
        "rld"
    );
    assert_eq!(
        op.read_with("cond/a")
            .byte_range(ByteRange::suffix(100))
            .await
            .unwrap(),
        "hello world"
    );
    assert_eq!(
        kind(
            op.read_with("cond/a")
                .byte_range(ByteRange::http(11..))
                .await
        ),
        ErrorKind::RangeNotSatisfiable
    );
    let mut reader = op
        .reader_with("cond/a")
        .byte_range(ByteRange::suffix(5))
        .await
        .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "world");
    // Another write: the old ETag no longer matches.
    op.write("cond/a", "changed").await.unwrap();
    assert_eq!(
        kind(op.read_with("cond/a").if_match(&etag).await),
        ErrorKind::PreconditionFailed
    );
    assert_eq!(
        kind(op.read_with("cond/missing").if_match(&etag).await),
        ErrorKind::NotFound
    );
}

pub(crate) async fn conditional_writes(op: Operator) {
    // if_not_exists: write, writer, copy, rename.
    op.write_with("cw/new", "a")
        .if_not_exists(true)
        .await
        .unwrap();
    let err = op
        .write_with("cw/new", "b")
        .if_not_exists(true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err:?}");
    assert_eq!(op.read("cw/new").await.unwrap(), "a");
    let mut writer = op.writer_with("cw/race").if_not_exists(true).await.unwrap();
    writer.write_all(b"first").await.unwrap();
    op.write("cw/race", "second").await.unwrap();
    assert_eq!(kind(writer.close().await), ErrorKind::AlreadyExists);
    assert_eq!(op.read("cw/race").await.unwrap(), "second");
    // A commit given up on before it finished (the data flushed, then `close`
    // polled once and dropped), then an abort: the commit fails on the condition, so the write was
    // not committed and there is nothing to give up; the target keeps its content.
    let mut writer = op.writer_with("cw/race").if_not_exists(true).await.unwrap();
    writer.write_all(b"lost").await.unwrap();
    writer.flush().await.unwrap();
    let _ = futures::FutureExt::now_or_never(writer.close());
    writer.abort().await.unwrap();
    assert_eq!(kind(writer.close().await), ErrorKind::AlreadyExists);
    assert_eq!(op.read("cw/race").await.unwrap(), "second");
    // One whose commit succeeds: the abort says it was committed.
    let mut writer = op.writer("cw/given-up").await.unwrap();
    writer.write_all(b"kept").await.unwrap();
    writer.flush().await.unwrap();
    let _ = futures::FutureExt::now_or_never(writer.close());
    assert_eq!(kind(writer.abort().await), ErrorKind::InvalidInput);
    assert_eq!(op.read("cw/given-up").await.unwrap(), "kept");
    // The condition holds at the commit, not when the writer was made: on every
    // backend alike, an object there then and gone by the commit is no conflict.
    let mut writer = op.writer_with("cw/race").if_not_exists(true).await.unwrap();
    writer.write_all(b"third").await.unwrap();
    op.delete("cw/race").await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(op.read("cw/race").await.unwrap(), "third");
    op.write("cw/src", "s").await.unwrap();
    op.write("cw/dst", "d").await.unwrap();
    assert_eq!(
        kind(op.copy_with("cw/src", "cw/dst").if_not_exists(true).await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(op.read("cw/dst").await.unwrap(), "d");
    op.copy_with("cw/src", "cw/fresh")
        .if_not_exists(true)
        .await
        .unwrap();
    assert_eq!(op.read("cw/fresh").await.unwrap(), "s");
    let err = op
        .rename_with("cw/src", "cw/dst")
        .if_not_exists(true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(err.path(), "cw/dst", "the error names the path at fault");
    assert_eq!(op.read("cw/src").await.unwrap(), "s", "the source stays");
    op.rename_with("cw/src", "cw/moved")
        .if_not_exists(true)
        .await
        .unwrap();
    assert!(!op.exists("cw/src").await.unwrap());
    assert_eq!(op.read("cw/moved").await.unwrap(), "s");
    // if_match: atomic on memory and S3; fs cannot, and says so.
    let v1 = op.write("cw/versioned", "1").await.unwrap();
    let v1 = v1.etag().unwrap().to_owned();
    let result = op.write_with("cw/versioned", "2").if_match(&v1).await;
    if op.scheme() == "fs" {
        assert_eq!(kind(result), ErrorKind::Unsupported);
        assert_eq!(
            kind(op.writer_with("cw/versioned").if_match(&v1).await),
            ErrorKind::Unsupported
        );
        assert_eq!(op.read("cw/versioned").await.unwrap(), "1");
        return;
    }
    let v2 = result.unwrap().etag().unwrap().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(op.read("cw/versioned").await.unwrap(), "2");
    assert_eq!(
        kind(op.write_with("cw/versioned", "3").if_match(&v1).await),
        ErrorKind::PreconditionFailed
    );
    assert_eq!(op.read("cw/versioned").await.unwrap(), "2");
    assert_eq!(
        kind(op.write_with("cw/absent", "x").if_match(&v2).await),
        ErrorKind::PreconditionFailed
    );
    let mut writer = op.writer_with("cw/versioned").if_match(&v2).await.unwrap();
    writer.write_all(b"4").await.unwrap();
    op.write("cw/versioned", "5").await.unwrap();
    assert_eq!(kind(writer.close().await), ErrorKind::PreconditionFailed);
    assert_eq!(op.read("cw/versioned").await.unwrap(), "5");
    // A writer whose ETag does not match is refused by its commit, as on every
    // backend, not when it is made.
    op.write("cw/later", "old").await.unwrap();
    let mut writer = op.writer_with("cw/later").if_match(&v2).await.unwrap();
    writer.write_all(b"new").await.unwrap();
    assert_eq!(kind(writer.close().await), ErrorKind::PreconditionFailed);
    // `*` (any version of an object that exists) and lists of ETags, as reads take
    // them (RFC 9110). S3 documents a write's If-Match as one ETag: what a server
    // makes of the others is its own.
    if op.scheme() == "s3" {
        return;
    }
    let v5 = op.stat("cw/versioned").await.unwrap();
    let v5 = v5.etag().unwrap().to_owned();
    let v6 = op
        .write_with("cw/versioned", "6")
        .if_match("*")
        .await
        .unwrap();
    let v6 = v6.etag().unwrap().to_owned();
    assert_eq!(
        kind(op.write_with("cw/absent", "x").if_match("*").await),
        ErrorKind::PreconditionFailed
    );
    assert!(!op.exists("cw/absent").await.unwrap());
    assert_eq!(
        kind(
            op.write_with("cw/versioned", "x")
                .if_match(format!("\"nope\", {v5}"))
                .await
        ),
        ErrorKind::PreconditionFailed
    );
    op.write_with("cw/versioned", "7")
        .if_match(format!("\"nope\", {v6}"))
        .await
        .unwrap();
    assert_eq!(op.read("cw/versioned").await.unwrap(), "7");
    let mut writer = op.writer_with("cw/versioned").if_match("*").await.unwrap();
    writer.write_all(b"8").await.unwrap();
    writer.close().await.unwrap();
    assert_eq!(op.read("cw/versioned").await.unwrap(), "8");
}

pub(crate) async fn etag_changes_with_every_write(op: Operator) {
    let mut seen = BTreeSet::new();
    for i in 0..5 {
        // Same length each time: the tag must not be the size alone.
        let meta = op.write("tags/x", format!("v{i}")).await.unwrap();
        let etag = meta.etag().unwrap().to_owned();
        assert_eq!(op.stat("tags/x").await.unwrap().etag(), Some(etag.as_str()));
        assert!(seen.insert(etag), "write {i} reused an ETag");
    }
    let mut writer = op.writer("tags/x").await.unwrap();
    writer.write_all(b"vw").await.unwrap();
    let meta = writer.close().await.unwrap();
    let etag = op.stat("tags/x").await.unwrap().etag().unwrap().to_owned();
    if let Some(committed) = meta.etag() {
        assert_eq!(
            committed, etag,
            "close returns the committed version's ETag"
        );
    }
    assert!(seen.insert(etag), "a writer's commit changes the ETag");
}

pub(crate) async fn list_start_after(op: Operator) {
    for path in ["la/a", "la/b", "la/c/d", "la/e"] {
        op.write(path, "x").await.unwrap();
    }
    let names = |entries: Vec<storage::Entry>| -> Vec<String> {
        let mut names: Vec<_> = entries.iter().map(|e| e.path().to_owned()).collect();
        names.sort();
        names
    };
    let collect = |lister: storage::Lister| async move {
        futures::TryStreamExt::try_collect::<Vec<_>>(lister)
            .await
            .unwrap()
    };
    let one_level = collect(op.lister_with("la/").start_after("la/b").await.unwrap()).await;
    assert_eq!(names(one_level), ["la/c/", "la/e"]);
    let deep = collect(
        op.lister_with("la/")
            .recursive(true)
            .start_after("la/b")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(names(deep), ["la/c/", "la/c/d", "la/e"]);
    let all = collect(op.lister_with("la/").recursive(true).await.unwrap()).await;
    assert_eq!(names(all).len(), 5);
    let none = collect(op.lister_with("la/").start_after("la/z").await.unwrap()).await;
    assert!(none.is_empty());
    // A file is not a directory, with a start as without; a directory whose
    // entries all come before the start is empty, not a file.
    let file = async {
        futures::TryStreamExt::try_collect::<Vec<_>>(
            op.lister_with("la/a/").start_after("la/a/0").await?,
        )
        .await
    };
    assert_eq!(file.await.unwrap_err().kind(), ErrorKind::NotADirectory);
    op.write("la/c", "a file beside the directory la/c/ (S3 allows both)")
        .await
        .ok();
    let past = collect(op.lister_with("la/c/").start_after("la/c/z").await.unwrap()).await;
    assert!(past.is_empty(), "{past:?}");
    op.delete("la/c").await.ok();
    // `start_after` is a path like any other, normalized as paths are.
    for after in ["/la/b", "la//b", "./la/b", "la/c/../b"] {
        let listed = collect(op.lister_with("la/").start_after(after).await.unwrap()).await;
        assert_eq!(names(listed), ["la/c/", "la/e"], "start_after {after:?}");
    }
    let err = op
        .lister_with("la/")
        .start_after("../la/b")
        .await
        .map(drop)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    assert_eq!(err.path(), "la/", "{err}");
    assert_eq!(err.context("start_after"), Some("../la/b"), "{err}");
}

/// Each result's error kind, `None` for a success.
fn failed_kinds(results: &[storage::Result<()>]) -> Vec<Option<ErrorKind>> {
    results
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.kind()))
        .collect()
}

pub(crate) async fn delete_many_in_one_call(op: Operator) {
    for path in ["dm/1", "dm/2", "dm/d/3"] {
        op.write(path, "x").await.unwrap();
    }
    let results = op
        .delete_many(["dm/1", "dm/missing", "dm/d/", "../escape", "dm/2", ""])
        .await
        .unwrap();
    let kinds = failed_kinds(&results);
    assert_eq!(
        kinds,
        [
            None,
            None,
            Some(ErrorKind::DirectoryNotEmpty),
            Some(ErrorKind::InvalidInput),
            None,
            Some(ErrorKind::InvalidInput),
        ]
    );
    let err = results[2].as_ref().unwrap_err();
    assert_eq!((err.operation(), err.path()), ("delete_many", "dm/d/"));
    assert_eq!(
        only_visible_files(&op, "dm/").await,
        BTreeSet::from(["dm/d/".to_owned(), "dm/d/3".to_owned()])
    );
    // In the order given, as one by one: a directory before its contents is not
    // empty yet, one after them is; a file's name as a directory is not one.
    op.write("dm/f", "x").await.unwrap();
    let results = op
        .delete_many(["dm/d/", "dm/d/3", "dm/f/", "dm/f", "dm/d/"])
        .await
        .unwrap();
    let kinds = failed_kinds(&results);
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::DirectoryNotEmpty),
            None,
            Some(ErrorKind::NotADirectory),
            None,
            None
        ]
    );
    assert_eq!(only_visible_files(&op, "dm/").await, BTreeSet::new());
    // Many at once: more than one S3 batch.
    let paths: Vec<String> = (0..1005).map(|i| format!("dm/many/{i}")).collect();
    let writes: Vec<_> = paths.iter().map(|p| op.write(p, "x")).collect();
    for w in writes {
        w.await.unwrap();
    }
    let results = op.delete_many(&paths).await.unwrap();
    assert_eq!(results.len(), 1005);
    assert!(results.iter().all(Result::is_ok));
    assert!(op.list_recursive("dm/many/").await.unwrap().is_empty());
}

/// A flush while the commit is under way waits for it: a wrapper's close flushes
/// before each poll of the shutdown (tokio-util's `FramedWrite`, a `Sink`'s
/// `close`), and the commit's first poll is always pending.
pub(crate) async fn writer_flushed_while_it_commits(op: Operator) {
    let mut writer = op.writer("fc/x").await.unwrap();
    writer.write_all(b"framed").await.unwrap();
    let mut writer = std::pin::Pin::new(&mut writer);
    std::future::poll_fn(|cx| {
        std::task::ready!(tokio::io::AsyncWrite::poll_flush(writer.as_mut(), cx))?;
        tokio::io::AsyncWrite::poll_shutdown(writer.as_mut(), cx)
    })
    .await
    .unwrap();
    assert_eq!(op.read("fc/x").await.unwrap(), "framed");
    // Committed: a flush after is nothing to do.
    writer.flush().await.unwrap();
}

/// `{:?}` of an operator (as a log line or `tracing::instrument` prints it), with
/// objects stored and reads of them held in a burst, and of a write's builder, is a
/// summary: it shows no stored data, and does not grow with it.
pub(crate) async fn debug_output_shows_no_data(op: Operator) {
    let data = Bytes::from(vec![b'Q'; 1 << 20]);
    op.write("debug/big", data.clone()).await.unwrap();
    // Issued, not awaited: the burst holds all but the first.
    let held: Vec<_> = (0..1000_u64)
        .map(|i| op.read_range("debug/big", i * 1000..i * 1000 + 10))
        .collect();
    let write = op.write_with("debug/next", data);
    for shown in [format!("{op:?}"), format!("{write:?}"), format!("{op:#?}")] {
        assert!(!shown.contains("QQQQ"), "stored data shown: {shown:.300}");
        assert!(shown.len() < 4_000, "{} bytes: {shown:.300}", shown.len());
    }
    for read in held {
        assert_eq!(read.await.unwrap().len(), 10);
    }
}

/// A path longer than any backend takes (`MAX_PATH_LEN` bytes) is refused by
/// every operation on every backend, before anything is done: a long name, and
/// one of many short components (memory and S3 would make or check each of its
/// ancestors). The error shows the path's start, not all of it.
pub(crate) async fn overlong_paths_are_refused(op: Operator) {
    use storage::raw::MAX_PATH_LEN;
    op.write("long/ok", "x").await.unwrap();
    let deep = "a/".repeat(MAX_PATH_LEN.div_ceil(2)) + "x";
    let long = format!("long/{}", "n".repeat(MAX_PATH_LEN));
    for path in [deep, long] {
        let dir = format!("{path}/");
        let errors = [
            op.write(&path, "x").await.map(drop),
            op.stat(&path).await.map(drop),
            op.read(&path).await.map(drop),
            op.exists(&path).await.map(drop),
            op.create_dir(&dir).await,
            op.list(&dir).await.map(drop),
            op.delete(&path).await,
            op.copy("long/ok", &path).await,
            op.rename("long/ok", &path).await,
            op.copy(&path, "long/other").await,
            op.writer(&path).await.map(drop),
            op.read_range(&path, 0..1).await.map(drop),
            op.read_ranges(&path, vec![0..1, 2..3]).await.map(drop),
            op.reader(&path).await.map(drop),
            op.remove_all(&dir).await,
            op.delete_many([path.as_str()])
                .await
                .and_then(|mut r| r.remove(0)),
        ];
        for (i, result) in errors.into_iter().enumerate() {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{i}: {err}");
            assert!(err.to_string().contains("bytes long"), "{i}: {err}");
            assert!(err.path().len() < 300, "{i}: the whole path shown");
            assert!(
                err.to_string().len() < 1_000,
                "{i}: the whole path shown: {err}"
            );
        }
        let err = op
            .lister_with("long/")
            .start_after(path.clone())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().len() < 1_000, "the whole path shown: {err}");
    }
    assert_eq!(
        files_under(&op, "").await,
        BTreeSet::from(["long/ok".to_owned()])
    );
    if op.scheme() != "s3" {
        longest_paths_work_and_one_more_byte_is_refused(&op).await;
    }
}

/// A path of exactly [`MAX_PATH_LEN`] bytes is one every call takes (fs: the
/// kernel's `PATH_MAX` counts the NUL that ends a path), and a directory path that
/// long with its `/`; one byte more is refused, a directory's `/` counted. S3 keys
/// have a limit of their own (1,024 bytes).
async fn longest_paths_work_and_one_more_byte_is_refused(op: &Operator) {
    use storage::raw::MAX_PATH_LEN;
    // Names of 254 bytes (a file name's limit is 255), then one to fill the rest.
    let deep = |len: usize| {
        let mut path = "long/".to_owned();
        while path.len() + 255 < len {
            path.push_str(&"n".repeat(254));
            path.push('/');
        }
        path.push_str(&"x".repeat(len - path.len()));
        path
    };
    let longest = deep(MAX_PATH_LEN);
    assert_eq!(longest.len(), MAX_PATH_LEN);
    op.write(&longest, "x").await.unwrap();
    assert_eq!(op.stat(&longest).await.unwrap().content_length(), 1);
    assert_eq!(op.read(&longest).await.unwrap(), "x");
    assert_eq!(op.read_range(&longest, 0..1).await.unwrap(), "x");
    let listed = files_under(op, "long/").await;
    assert!(listed.contains(&longest), "{} listed", listed.len());
    op.delete(&longest).await.unwrap();
    assert!(!op.exists(&longest).await.unwrap());
    // A directory path: its `/` makes it one byte longer than its name.
    let dir = deep(MAX_PATH_LEN - 1) + "/";
    op.create_dir(&dir).await.unwrap();
    assert!(op.stat(&dir).await.unwrap().is_dir());
    let too_long = [
        op.write(&deep(MAX_PATH_LEN + 1), "x").await.map(drop),
        op.create_dir(&deep(MAX_PATH_LEN)).await,
        op.create_dir(&(deep(MAX_PATH_LEN) + "/")).await,
        op.list(&deep(MAX_PATH_LEN)).await.map(drop),
    ];
    for (i, result) in too_long.into_iter().enumerate() {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{i}: {err}");
        assert!(err.to_string().contains("bytes long"), "{i}: {err}");
    }
    op.remove_all("long/").await.unwrap();
}

pub(crate) async fn backends_agree_on_edge_cases(op: Operator) {
    // A rename onto itself changes nothing, however the path is spelled.
    op.write("edge/x", "keep").await.unwrap();
    op.rename("edge/x", "edge/x").await.unwrap();
    op.rename("edge/x", "./edge/./x").await.unwrap();
    assert_eq!(op.read("edge/x").await.unwrap(), "keep");
    assert_eq!(
        kind(op.rename_with("edge/x", "edge/x").if_not_exists(true).await),
        ErrorKind::AlreadyExists
    );
    op.copy("edge/x", "edge/x").await.unwrap();
    assert_eq!(op.read("edge/x").await.unwrap(), "keep");
    assert_eq!(
        kind(op.rename("edge/none", "edge/none").await),
        ErrorKind::NotFound
    );
    // A directory path that names a file.
    assert_eq!(kind(op.stat("edge/x/").await), ErrorKind::NotADirectory);
    assert_eq!(kind(op.delete("edge/x/").await), ErrorKind::NotADirectory);
    assert_eq!(op.read("edge/x").await.unwrap(), "keep");
    // remove_all of a file removes it, as `rm -r` does.
    op.remove_all("edge/x").await.unwrap();
    assert!(!op.exists("edge/x").await.unwrap());
    // rename and copy errors name the path at fault and both ends.
    op.write("edge/file", "f").await.unwrap();
    op.write("edge/src", "s").await.unwrap();
    // A path whose last name is `.` or `..` names a directory, as in a shell:
    // never the file it comes to.
    for path in ["edge/file/.", "edge/file/sub/..", "edge/./file/."] {
        assert_eq!(kind(op.write(path, "x").await), ErrorKind::IsADirectory);
        assert_eq!(kind(op.read(path).await), ErrorKind::IsADirectory);
        assert_eq!(kind(op.delete(path).await), ErrorKind::NotADirectory);
        assert_eq!(
            kind(op.copy("edge/src", path).await),
            ErrorKind::IsADirectory
        );
    }
    assert_eq!(op.read("edge/file").await.unwrap(), "f");
    let err = op.rename("edge/src", "edge/file/below").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err:?}");
    assert_eq!(err.context("from"), Some("edge/src"));
    assert_eq!(err.context("to"), Some("edge/file/below"));
    let err = op.copy("edge/none", "edge/y").await.unwrap_err();
    assert_eq!((err.kind(), err.path()), (ErrorKind::NotFound, "edge/none"));
    // ...as the caller spelled it, whichever end it is.
    let err = op.copy("edge/src", "./edge/file/below").await.unwrap_err();
    assert_eq!(err.path(), "./edge/file/below", "{err:?}");
    let err = op.rename("/edge/none", "edge/z").await.unwrap_err();
    assert_eq!(err.path(), "/edge/none", "{err:?}");
    op.write("edge/d/f", "f").await.unwrap();
    let results = op.delete_many(["./edge/d/", "edge/src"]).await.unwrap();
    let err = results[0].as_ref().unwrap_err();
    assert_eq!(
        (err.kind(), err.path()),
        (ErrorKind::DirectoryNotEmpty, "./edge/d/"),
        "{err:?}"
    );
    assert!(results[1].is_ok());
}

pub(crate) async fn every_operation_fails_after_shutdown(op: Operator) {
    let executor = own_executor("conf-shutdown");
    let mine = op.clone().with_executor(executor.clone());
    mine.write("sd/a", "x").await.unwrap();
    executor.shutdown();
    executor.join().await;
    let kinds = [
        kind(mine.read("sd/a").await),
        kind(mine.read_range("sd/a", 0..1).await),
        kind(mine.read_ranges("sd/a", vec![0..1, 1..1]).await),
        kind(mine.stat("sd/a").await),
        kind(mine.write("sd/b", "y").await),
        kind(mine.list("sd/").await),
        kind(mine.reader("sd/a").await),
        kind(mine.delete("sd/a").await),
        kind(mine.rename("sd/a", "sd/z").await),
        kind(mine.copy("sd/a", "sd/z").await),
        kind(mine.create_dir("sd/d/").await),
        kind(mine.remove_all("sd/").await),
    ];
    // A writer or a lister needs no IO to be made on some backends (S3 sends
    // nothing until a part is full or a page is asked for); made after a shutdown,
    // it is refused all the same.
    let handles = [
        kind(mine.writer("sd/c").await),
        kind(mine.lister("sd/").await),
    ];
    for (i, k) in kinds.iter().chain(&handles).enumerate() {
        assert_eq!(*k, ErrorKind::ShutDown, "operation {i}");
    }
    // Nothing happened: the original operator sees the file as it was.
    assert_eq!(op.read("sd/a").await.unwrap(), "x");
    assert!(!op.exists("sd/b").await.unwrap());
}

pub(crate) async fn reader_errors_are_sticky(op: Operator) {
    let data = random_bytes(1 << 20, 21);
    op.write("sticky/r", data.clone()).await.unwrap();
    let executor = own_executor("conf-sticky-r");
    let options = op.options().with_chunk_size(64 << 10).with_prefetch(1);
    let mine = op
        .clone()
        .with_executor(executor.clone())
        .with_options(options);
    let mut reader = mine.reader("sticky/r").await.unwrap();
    let mut first = vec![0; 64 << 10];
    reader.read_exact(&mut first).await.unwrap();
    assert_eq!(&first[..], &data[..64 << 10]);
    executor.shutdown();
    executor.join().await;
    let mut rest = Vec::new();
    let err = reader.read_to_end(&mut rest).await.unwrap_err();
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<storage::Error>());
    assert_eq!(
        inner.map(|e| e.kind()),
        Some(ErrorKind::ShutDown),
        "{err:?}"
    );
    assert!(
        rest.len() < data.len() - (64 << 10),
        "the data is truncated"
    );
    for _ in 0..3 {
        let err = reader.read(&mut [0; 10]).await.unwrap_err();
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<storage::Error>());
        assert_eq!(
            inner.map(|e| e.kind()),
            Some(ErrorKind::ShutDown),
            "{err:?}"
        );
    }
    // The stream yields the error once, then ends; reads go on failing.
    let next = futures::StreamExt::next(&mut reader).await.unwrap();
    assert_eq!(next.unwrap_err().kind(), ErrorKind::ShutDown);
    assert!(futures::StreamExt::next(&mut reader).await.is_none());
    assert!(reader.read(&mut [0; 10]).await.is_err());
}

pub(crate) async fn writer_errors_are_sticky(op: Operator) {
    let executor = own_executor("conf-sticky-w");
    let options = op.options().with_write_chunk_size(64 << 10);
    let mine = op
        .clone()
        .with_executor(executor.clone())
        .with_options(options);
    let mut writer = mine.writer("sticky/w").await.unwrap();
    writer.write_all(&random_bytes(64 << 10, 22)).await.unwrap();
    executor.shutdown();
    executor.join().await;
    let chunk = random_bytes(16 << 10, 23);
    let mut first_error = None;
    for _ in 0..16 {
        if let Err(e) = writer.write_all(&chunk).await {
            first_error = Some(e);
            break;
        }
    }
    let err = match first_error {
        Some(e) => e,
        None => writer.flush().await.unwrap_err(),
    };
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<storage::Error>());
    assert_eq!(
        inner.map(|e| e.kind()),
        Some(ErrorKind::ShutDown),
        "{err:?}"
    );
    for _ in 0..3 {
        let err = writer.write_all(&chunk).await.unwrap_err();
        let inner = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<storage::Error>());
        assert_eq!(
            inner.map(|e| e.kind()),
            Some(ErrorKind::ShutDown),
            "{err:?}"
        );
    }
    assert_eq!(kind(writer.close().await), ErrorKind::ShutDown);
    assert_eq!(kind(writer.write_bytes(chunk).await), ErrorKind::ShutDown);
    drop(writer);
    assert!(
        !op.exists("sticky/w").await.unwrap(),
        "nothing was committed"
    );
}

pub(crate) async fn loops_over_operations_let_timers_fire(op: Operator) {
    op.write("loop/a", "x").await.unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&fired);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        flag.store(true, Ordering::SeqCst);
    });
    let started = SystemTime::now();
    let mut rounds = 0;
    while !fired.load(Ordering::SeqCst) {
        op.stat("loop/a").await.unwrap();
        op.read("loop/a").await.unwrap();
        rounds += 1;
        assert!(
            rounds < 200_000,
            "a 1 ms timer on the caller's runtime did not fire in {rounds} rounds ({:?}): \
             operations never yield to the runtime",
            started.elapsed()
        );
    }
}

pub(crate) async fn read_ranges_reads_one_version(op: Operator) {
    // Two versions of the same size: every range of one call comes from one of them.
    let old = Bytes::from(vec![b'o'; 3 << 20]);
    let new = Bytes::from(vec![b'n'; 3 << 20]);
    op.write("ver/obj", old.clone()).await.unwrap();
    let ranges: Vec<_> = (0..24_u64)
        .map(|i| i * (128 << 10)..i * (128 << 10) + 100)
        .collect();
    let op2 = op.clone();
    let writer = tokio::spawn(async move {
        for i in 0..20 {
            let data = if i % 2 == 0 { new.clone() } else { old.clone() };
            op2.write("ver/obj", data).await.unwrap();
        }
    });
    for _ in 0..20 {
        match op.read_ranges("ver/obj", ranges.clone()).await {
            Ok(got) => {
                let first = got[0][0];
                assert!(
                    got.iter().all(|b| b.iter().all(|&c| c == first)),
                    "one read_ranges call mixed two versions"
                );
            }
            // S3 pins the version with If-Match: an object replaced every time
            // it is read fails the call, saying it changed (not the caller's
            // precondition: the call asked for none).
            Err(e) if op.scheme() == "s3" && e.context("changed").is_some() => {
                assert_eq!(e.kind(), ErrorKind::Unexpected, "{e:?}");
                assert!(e.is_temporary(), "{e:?}");
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    writer.await.unwrap();
}

/// `read_ranges_with(..).if_match(etag)`: every range from that version, or an
/// error; one range (one read) or many (an open, then reads from it), on the first
/// call or any later one. A failed condition is never retried into another version.
pub(crate) async fn read_ranges_of_the_version_asked_for(op: Operator) {
    let old = op.write("pin/obj", vec![b'o'; 3 << 20]).await.unwrap();
    let etag = old.etag().unwrap().to_owned();
    let one = std::iter::once(10..20_u64).collect::<Vec<_>>();
    let many: Vec<_> = (0..8_u64)
        .map(|i| i * (256 << 10)..i * (256 << 10) + 100)
        .collect();
    for ranges in [&one, &many] {
        for _ in 0..3 {
            let got = op
                .read_ranges_with("pin/obj", ranges.clone())
                .if_match(&etag)
                .await
                .unwrap();
            assert_eq!(got.len(), ranges.len());
            assert!(got.iter().all(|b| b.len() == 10 || b.len() == 100));
            assert!(got.iter().all(|b| b.iter().all(|&c| c == b'o')));
        }
        let err = op
            .read_ranges_with("pin/obj", ranges.clone())
            .if_none_match(&etag)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotModified, "{err:?}");
    }
    // Replaced: the version asked for is gone.
    op.write("pin/obj", vec![b'n'; 3 << 20]).await.unwrap();
    for ranges in [&one, &many] {
        for _ in 0..3 {
            let err = op
                .read_ranges_with("pin/obj", ranges.clone())
                .if_match(&etag)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err:?}");
            assert_eq!(
                (err.operation(), err.path()),
                ("read_ranges_with", "pin/obj")
            );
        }
    }
    let new = op.stat("pin/obj").await.unwrap();
    let got = op
        .read_ranges_with("pin/obj", many.clone())
        .if_match(new.etag().unwrap())
        .await
        .unwrap();
    assert!(got.iter().all(|b| b.iter().all(|&c| c == b'n')));
    // No ranges: the condition is still checked.
    let err = op
        .read_ranges_with("pin/obj", vec![])
        .if_match(&etag)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err:?}");
}

/// `Options::max_buffer_size` holds for every form of read, whether the range's
/// length is known before the object's size or only after, and however often the
/// same read is repeated (fs serves repeated small reads on the caller's thread).
pub(crate) async fn reads_over_the_buffer_limit_are_refused(op: Operator) {
    op.write("limit/obj", vec![3_u8; 100]).await.unwrap();
    let limited = op
        .clone()
        .with_options(op.options().with_max_buffer_size(16));
    for _ in 0..3 {
        let reads = [
            kind(limited.read("limit/obj").await),
            kind(limited.read_range("limit/obj", 0..100).await),
            kind(limited.read_range("limit/obj", 10..).await),
            kind(limited.read_with("limit/obj").range(..50).await),
        ];
        assert_eq!(reads, [ErrorKind::InvalidInput; 4]);
        assert_eq!(
            limited.read_range("limit/obj", 84..).await.unwrap(),
            vec![3_u8; 16]
        );
        // A range is held to the limit as the object cuts it, on every backend: an
        // HTTP range's end past the object is cut first, and a strict range past
        // the end is refused as such, however long it asks.
        assert_eq!(
            limited
                .read_with("limit/obj")
                .byte_range(ByteRange::http(90..u64::MAX))
                .await
                .unwrap(),
            vec![3_u8; 10]
        );
        assert_eq!(
            kind(limited.read_range("limit/obj", 90..200).await),
            ErrorKind::RangeNotSatisfiable
        );
    }
    // A reader reads in chunks of at most one buffer, whatever chunk size it asks.
    let mut reader = limited
        .reader_with("limit/obj")
        .chunk_size(usize::MAX)
        .await
        .unwrap();
    let mut read = 0;
    while let Some(chunk) = reader.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= 16, "a chunk of {} bytes", chunk.len());
        read += chunk.len();
    }
    assert_eq!(read, 100);
}
