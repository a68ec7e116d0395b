//! `DioStore`'s own behaviour, beyond object_store's suite: payloads are streams,
//! errors keep their kind and context, the caller's runtime never does the IO,
//! large objects stream in bounded pieces, and uploads report failures.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dio_object_store::DioStore;
use futures::StreamExt;
use object_store::PutPayload;
use object_store::path::Path;
use object_store::{
    GetOptions, GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion,
};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a helper thread and fails if it has not returned within `secs`: a
/// guard against a hang, never a measure of speed.
fn within(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("no progress within {secs} s: a hang, or IO on the caller's runtime"),
    }
}

#[test]
fn get_payloads_are_always_streams() {
    let (op, _dir) = common::fs_operator("payload-fs");
    let mem = common::memory_operator("payload-mem");
    rt().block_on(async {
        for store in [DioStore::new(op), DioStore::new(mem)] {
            let path = Path::from("a/b.bin");
            store.put(&path, vec![1_u8; 10_000].into()).await.unwrap();
            for options in [
                GetOptions::new(),
                GetOptions::new().with_range(Some(10..20)),
                GetOptions::new().with_head(true),
            ] {
                let result = store.get_opts(&path, options).await.unwrap();
                assert!(
                    matches!(result.payload, GetResultPayload::Stream(_)),
                    "{store}: a File payload would be read on the caller's thread"
                );
            }
        }
    });
}

/// A name that is no object_store path (a control character: `Icon\r`, which
/// macOS leaves in synced folders, written by another tool) is left out of
/// listings, with a warning, as a name that is not UTF-8 is: it failed every
/// listing of its directory, and a table's scan with it.
#[test]
fn a_name_that_is_no_object_store_path_is_left_out_of_listings() {
    use futures::TryStreamExt;

    let (op, _dir) = common::fs_operator("control-fs");
    let mem = common::memory_operator("control-mem");
    rt().block_on(async {
        for op in [op, mem] {
            for path in ["t/Icon\r", "t/d\tx/b", "t/a.parquet", "t/e/c"] {
                op.write(path, "x").await.unwrap();
            }
            let store = DioStore::new(op);
            let listed: Vec<_> = store
                .list(Some(&Path::from("t")))
                .map_ok(|meta| meta.location.to_string())
                .try_collect()
                .await
                .unwrap();
            let mut listed = listed;
            listed.sort();
            assert_eq!(listed, ["t/a.parquet", "t/e/c"], "{store}");
            let level = store
                .list_with_delimiter(Some(&Path::from("t")))
                .await
                .unwrap();
            let objects: Vec<_> = level.objects.iter().map(|m| m.location.as_ref()).collect();
            let dirs: Vec<_> = level.common_prefixes.iter().map(AsRef::as_ref).collect();
            assert_eq!(objects, ["t/a.parquet"], "{store}");
            assert_eq!(dirs, ["t/e"], "{store}");
        }
    });
}

/// A location that names a directory (fs, memory: `t` when `t/a` is written) is no
/// object: deleting it succeeds, as deleting a key prefix does on S3 and in
/// `InMemory`, and deletes nothing below it.
#[test]
fn deleting_a_location_that_names_a_directory_deletes_nothing() {
    let (op, _dir) = common::fs_operator("delete-dir-fs");
    let mem = common::memory_operator("delete-dir-mem");
    rt().block_on(async {
        for store in [DioStore::new(op), DioStore::new(mem)] {
            let object = Path::from("t/a");
            store.put(&object, "kept".into()).await.unwrap();
            store.delete(&Path::from("t")).await.unwrap();
            let deleted: Vec<_> = store
                .delete_stream(futures::stream::iter([Ok(Path::from("t"))]).boxed())
                .collect()
                .await;
            assert!(
                matches!(&deleted[..], [Ok(p)] if p.as_ref() == "t"),
                "{store}: {deleted:?}"
            );
            let kept = store.get(&object).await.unwrap().bytes().await.unwrap();
            assert_eq!(kept, "kept", "{store}");
        }
    });
}

#[test]
fn errors_keep_their_kind_operation_and_path() {
    let (op, _dir) = common::fs_operator("errors-fs");
    rt().block_on(async {
        let store = DioStore::new(op);
        let path = Path::from("e/obj");
        let put = store.put(&path, "data".into()).await.unwrap();
        let etag = put.e_tag.clone().unwrap();

        let err = store.get(&Path::from("e/missing")).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotFound { ref path, .. } if path == "e/missing"),
            "{err}"
        );
        let err = store
            .put_opts(&path, "x".into(), PutMode::Create.into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::AlreadyExists { .. }),
            "{err}"
        );
        let err = store
            .get_opts(&path, GetOptions::new().with_if_match(Some("\"other\"")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::Precondition { .. }),
            "{err}"
        );
        let err = store
            .get_opts(
                &path,
                GetOptions::new().with_if_none_match(Some(etag.clone())),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotModified { .. }),
            "{err}"
        );
        // fs cannot replace a file only if it is still a given version.
        let update = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: Some(etag),
            version: None,
        }));
        let err = store.put_opts(&path, "y".into(), update).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotImplemented { .. }),
            "{err}"
        );
        // An update without an ETag is a request that cannot be made, not a failed
        // condition (which a caller would retry); with a version, one not kept.
        let no_etag = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: None,
            version: None,
        }));
        let err = store
            .put_opts(&path, "y".into(), no_etag)
            .await
            .unwrap_err();
        assert!(matches!(err, object_store::Error::Generic { .. }), "{err}");
        assert!(err.to_string().contains("needs the ETag"), "{err}");
        let versioned = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: Some(put.e_tag.clone().unwrap()),
            version: Some("v1".into()),
        }));
        let err = store
            .put_opts(&path, "y".into(), versioned)
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotSupported { .. }),
            "{err}"
        );
        // Anything else is Generic, with our error (operation, path, context) inside.
        let err = store.get_ranges(&path, &[0..2, 0..100]).await.unwrap_err();
        let object_store::Error::Generic {
            store: name,
            source,
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(*name, "DioStore");
        let ours = source.downcast_ref::<storage::Error>().unwrap();
        assert_eq!(ours.kind(), storage::ErrorKind::RangeNotSatisfiable);
        assert_eq!((ours.operation(), ours.path()), ("read_ranges", "e/obj"));
        assert_eq!(ours.context("size"), Some("4"));
        // One range past the end, through `get_range`, is the rest of the object,
        // as `GetRange::Bounded` says.
        assert_eq!(store.get_range(&path, 2..100).await.unwrap(), "ta");
        // Asking for what is not kept is refused, never ignored.
        let err = store
            .get_opts(&path, GetOptions::new().with_version(Some("v1")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotSupported { .. }),
            "{err}"
        );
        let with_attributes = PutOptions::from(object_store::Attributes::from_iter([(
            object_store::Attribute::CacheControl,
            "max-age=60",
        )]));
        let err = store
            .put_opts(&path, "z".into(), with_attributes)
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotImplemented { .. }),
            "{err}"
        );
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap(),
            "data"
        );
    });
}

/// The store's root and a directory hold no object: every read of them is
/// `NotFound`, with or without conditions, as in object_store's own stores.
#[test]
fn the_root_and_a_directory_are_not_found_for_every_read() {
    let (fs, _dir) = common::fs_operator("root-reads");
    for (name, op) in [
        ("fs", fs),
        ("memory", common::memory_operator("root-reads")),
    ] {
        let store = DioStore::new(op);
        rt().block_on(async {
            store.put(&Path::from("d/a"), "x".into()).await.unwrap();
            for location in [Path::from(""), Path::from("d")] {
                let conditional = GetOptions::new().with_if_match(Some("\"other\""));
                let results = [
                    store.get(&location).await.map(drop),
                    store.head(&location).await.map(drop),
                    store
                        .get_opts(&location, conditional.clone())
                        .await
                        .map(drop),
                    store
                        .get_opts(&location, conditional.with_head(true))
                        .await
                        .map(drop),
                    store
                        .get_ranges(&location, std::slice::from_ref(&(0..1)))
                        .await
                        .map(drop),
                ];
                for (i, result) in results.into_iter().enumerate() {
                    assert!(
                        matches!(result, Err(object_store::Error::NotFound { .. })),
                        "{name} {location:?} read {i}: {result:?}"
                    );
                }
            }
        });
    }
}

/// A get with a range that cannot be asked (empty or backwards) answers for the
/// object first, as object_store's `InMemory` and `LocalFileSystem` do: a missing
/// object is `NotFound`, a failed condition `Precondition`; only a present object
/// that meets its conditions gets the range's error.
#[test]
fn a_bad_range_on_a_missing_object_is_not_found() {
    let (op, _dir) = common::fs_operator("bad-range-fs");
    let mem = common::memory_operator("bad-range-mem");
    let local_dir = tempfile::tempdir().unwrap();
    let local = object_store::local::LocalFileSystem::new_with_prefix(local_dir.path()).unwrap();
    let stores: Vec<Arc<dyn ObjectStore>> = vec![
        Arc::new(DioStore::new(op)),
        Arc::new(DioStore::new(mem)),
        Arc::new(object_store::memory::InMemory::new()),
        Arc::new(local),
    ];
    rt().block_on(async {
        for store in stores {
            let (present, missing) = (Path::from("r/present"), Path::from("r/missing"));
            store.put(&present, "0123456789".into()).await.unwrap();
            // Empty, and backwards (built from its ends: a literal `7..3` is a
            // lint error).
            let (start, end) = (7, 3);
            for range in [5..5, start..end] {
                let with_range = || GetOptions::new().with_range(Some(range.clone()));
                let err = store.get_opts(&missing, with_range()).await.unwrap_err();
                assert!(
                    matches!(err, object_store::Error::NotFound { ref path, .. } if path.ends_with("r/missing")),
                    "{store}, {range:?} of a missing object: {err}"
                );
                let unmet = with_range().with_if_match(Some("\"other\""));
                let err = store.get_opts(&present, unmet).await.unwrap_err();
                assert!(
                    matches!(err, object_store::Error::Precondition { .. }),
                    "{store}, {range:?} under an unmet condition: {err}"
                );
                let err = store.get_opts(&present, with_range()).await.unwrap_err();
                assert!(
                    !matches!(
                        err,
                        object_store::Error::NotFound { .. }
                            | object_store::Error::Precondition { .. }
                    ),
                    "{store}, {range:?} of a present object: {err}"
                );
                // Ours says which object, and which call, with its head too.
                if store.to_string().starts_with("DioStore") {
                    for head in [false, true] {
                        let asked = with_range().with_head(head);
                        let err = store.get_opts(&present, asked).await.unwrap_err();
                        let text = err.to_string();
                        assert!(
                            text.contains("r/present") && text.contains("get_opts"),
                            "{store}, {range:?}, head {head}: {text}"
                        );
                    }
                }
            }
        }
    });
}

/// A head (`GetOptions::head`) with a range answers for that range, resolved, as
/// object_store's own stores do (`InMemory` here): its `range` is the bytes asked
/// for, and a range past the object's end is an error, not the whole object.
#[test]
fn a_head_with_a_range_answers_for_the_range() {
    let (op, _dir) = common::fs_operator("head-range-fs");
    let mem = common::memory_operator("head-range-mem");
    let stores: Vec<Arc<dyn ObjectStore>> = vec![
        Arc::new(DioStore::new(op)),
        Arc::new(DioStore::new(mem)),
        Arc::new(object_store::memory::InMemory::new()),
    ];
    rt().block_on(async {
        for store in stores {
            let path = Path::from("h/obj");
            store.put(&path, "0123456789".into()).await.unwrap();
            let head = |range: Option<object_store::GetRange>| {
                store.get_opts(
                    &path,
                    GetOptions {
                        head: true,
                        range,
                        ..GetOptions::default()
                    },
                )
            };
            let got = head(Some((2..5).into())).await.unwrap();
            assert_eq!((got.range.clone(), got.meta.size), (2..5, 10), "{store}");
            let got = head(Some(object_store::GetRange::Suffix(3))).await.unwrap();
            assert_eq!(got.range, 7..10, "{store}");
            let got = head(None).await.unwrap();
            assert_eq!(got.range, 0..10, "{store}");
            let err = head(Some((100..200).into())).await.unwrap_err();
            assert!(
                !matches!(
                    err,
                    object_store::Error::NotFound { .. } | object_store::Error::Precondition { .. }
                ),
                "{store}: {err}"
            );
        }
    });
}

/// A get waits while every blocking thread of the executor is held, until a task on
/// the caller's own current-thread runtime lets them go. Had the get run on the
/// caller's thread, it would have returned before the release (or, waiting, kept
/// the releasing task from ever running). Small reads of files kept open are read
/// on the caller's thread when the page cache holds them (`Options::read_now`):
/// turned off here, so that every byte is the executor's.
#[test]
fn the_caller_runtime_never_does_the_io() {
    within(30, || {
        let (op, _dir) = common::fs_operator("gate");
        let op = op.clone().with_options(op.options().with_read_now(false));
        let store = DioStore::new(op.clone());
        rt().block_on(async move {
            let path = Path::from("data");
            store.put(&path, "through the pool".into()).await.unwrap();
            store.get(&path).await.unwrap().bytes().await.unwrap();
            // The executor's four blocking threads, each held by a job.
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let rx = Arc::new(std::sync::Mutex::new(rx));
            let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
            let gates: Vec<_> = (0..4)
                .map(|_| {
                    let (rx, held) = (Arc::clone(&rx), held_tx.clone());
                    op.executor().spawn_blocking(move || {
                        let _ = held.send(());
                        let _ = rx.lock().unwrap().recv();
                    })
                })
                .collect();
            for _ in 0..4 {
                held_rx.recv().unwrap();
            }
            let released = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&released);
            let release = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                flag.store(true, Ordering::SeqCst);
                for _ in 0..4 {
                    let _ = tx.send(());
                }
            });
            let got = store.get(&path).await.unwrap().bytes().await.unwrap();
            assert_eq!(got, "through the pool");
            assert!(
                released.load(Ordering::SeqCst),
                "the get returned while the executor's blocking threads were held"
            );
            release.await.unwrap();
            for gate in gates {
                gate.await.unwrap();
            }
        });
    });
}

#[test]
fn large_objects_stream_in_bounded_chunks() {
    let (op, _dir) = common::fs_operator("chunks");
    let op = op
        .clone()
        .with_options(op.options().with_chunk_size(1 << 20));
    rt().block_on(async {
        let store = DioStore::new(op).with_whole_read_limit(2 << 20);
        let data: Bytes = (0..(9 << 20) + 5)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        let path = Path::from("big");
        store.put(&path, data.clone().into()).await.unwrap();
        // Small enough: one piece, one buffer (also once the file is held open and
        // in page cache, as it is now).
        for _ in 0..2 {
            let small = store.get_range(&path, 1000..(2 << 20)).await.unwrap();
            assert_eq!(small, data.slice(1000..(2 << 20)));
            let pieces = store
                .get_opts(
                    &path,
                    GetOptions::new()
                        .with_range(Some(object_store::GetRange::Bounded(1000..(2 << 20)))),
                )
                .await
                .unwrap()
                .into_stream()
                .count()
                .await;
            assert_eq!(pieces, 1, "not one piece");
        }
        // Larger: the stream hands over chunks of at most the chunk size.
        let result = store.get(&path).await.unwrap();
        assert_eq!(result.range, 0..data.len() as u64);
        let mut stream = result.into_stream();
        let mut all = Vec::new();
        let mut pieces = 0;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= 1 << 20, "a chunk of {} bytes", chunk.len());
            all.extend_from_slice(&chunk);
            pieces += 1;
        }
        assert_eq!(pieces, 10);
        assert_eq!(Bytes::from(all), data);
        // A suffix and an offset, with object_store's rules.
        let tail = store
            .get_opts(
                &path,
                GetOptions::new().with_range(Some(object_store::GetRange::Suffix(10))),
            )
            .await
            .unwrap();
        assert_eq!(tail.range, data.len() as u64 - 10..data.len() as u64);
        assert_eq!(tail.bytes().await.unwrap(), data.slice(data.len() - 10..));
    });
}

/// Parts offered once the operator's executor has shut down are errors, never
/// futures that wait for ever, and so is `complete`: for an upload that had
/// parts before, and one that had none.
#[test]
fn a_failed_upload_says_so_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let executor = common::executor("upload-fail");
    let op = common::fs_operator_on(dir.path(), &executor);
    let root = dir.path().to_owned();
    within(60, move || {
        rt().block_on(async {
            let store = DioStore::new(op);
            let path = Path::from("up/obj");
            let mut upload = store.put_multipart(&path).await.unwrap();
            let mut empty = store.put_multipart(&Path::from("up/empty")).await.unwrap();
            upload.put_part(vec![1_u8; 1000].into()).await.unwrap();
            executor.shutdown();
            executor.join().await;
            // The executor is gone: the next part, and the completion, fail.
            for upload in [&mut upload, &mut empty] {
                let err = upload.put_part(vec![2_u8; 1000].into()).await.unwrap_err();
                assert!(
                    err.to_string()
                        .contains("takes no part from outside its jobs"),
                    "{err}"
                );
                assert!(err.to_string().contains("\"up/"), "says where: {err}");
                let err = upload.complete().await.unwrap_err();
                assert!(err.to_string().contains("shut down"), "{err}");
            }
        });
        let left: Vec<_> = walk(&root);
        assert!(left.iter().all(|p| !p.ends_with("obj")), "{left:?}");
    });
}

/// An abort given up on midway (a `timeout` around it) leaves its clean-up under
/// way; the next `abort` waits for it and says how it went, as
/// `storage::Writer::abort` does, instead of answering `Ok` at once while the
/// write's temporary file is still there.
#[test]
fn an_abort_given_up_on_is_waited_for_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let executor = common::narrow_executor("upload-abort", None);
    let op = common::fs_operator_on(dir.path(), &executor);
    let root = dir.path().to_owned();
    within(60, move || {
        rt().block_on(async {
            let store = DioStore::new(op);
            let mut upload = store.put_multipart(&Path::from("ab/obj")).await.unwrap();
            upload.put_part(vec![1_u8; 1000].into()).await.unwrap();
            // The blocking thread busy: the clean-up waits for it.
            let (release, busy) = common::occupy_blocking(&executor);
            assert!(
                futures::FutureExt::now_or_never(upload.abort()).is_none(),
                "the clean-up waits for the blocking thread"
            );
            assert!(
                futures::FutureExt::now_or_never(upload.abort()).is_none(),
                "the next abort waits for the clean-up given up on"
            );
            release.send(()).unwrap();
            upload.abort().await.unwrap();
            busy.await.unwrap();
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("aborted"), "{err}");
        });
        executor.shutdown();
        executor.blocking_join();
        let left: Vec<_> = walk(&root);
        assert!(left.iter().all(|p| !p.contains("obj")), "{left:?}");
    });
}

/// A part offered while the executor's queue is at its bound waits its turn: the
/// upload goes on (a refusal would fail all of it, for a moment's load), where a
/// new operation is refused, saying the queue is full.
#[test]
fn an_upload_waits_for_a_full_queue_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let executor = common::narrow_executor("upload-full", Some(1));
    let op = common::fs_operator_on(dir.path(), &executor);
    let root = dir.path().to_owned();
    within(60, move || {
        rt().block_on(async {
            let store = DioStore::new(op);
            let location = Path::from("full/obj");
            let mut upload = store.put_multipart(&location).await.unwrap();
            // The blocking thread busy, and one job queued: the queue is at its bound.
            let (release, busy) = common::occupy_blocking(&executor);
            let queued = executor.spawn_blocking(|| ());
            // A new operation is refused, and says so: the queue is full.
            let err = store
                .put(&Path::from("full/other"), vec![2_u8; 10].into())
                .await
                .unwrap_err();
            let text = err.to_string();
            assert!(text.contains("\"full/other\""), "says where: {text}");
            let object_store::Error::Generic { source, .. } = &err else {
                panic!("{err:?}")
            };
            let cause = source
                .downcast_ref::<storage::Error>()
                .expect("a storage error");
            let chain =
                std::iter::successors(Some(cause as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            assert!(chain.contains("queue is full"), "{chain}");
            assert_eq!(cause.kind(), storage::ErrorKind::RateLimited, "{cause}");
            assert!(cause.is_temporary(), "{cause}");
            // A part of the upload under way is not: it waits its turn.
            let part = upload.put_part(vec![1_u8; 1000].into());
            release.send(()).unwrap();
            part.await.expect("the part waited its turn");
            busy.await.unwrap();
            queued.await.unwrap();
            upload.complete().await.unwrap();
            let got = store.get(&location).await.unwrap().bytes().await.unwrap();
            assert_eq!(got, vec![1_u8; 1000]);
        });
        let left: Vec<_> = walk(&root);
        assert_eq!(left.len(), 1, "the object alone: {left:?}");
    });
}

/// A commit that fails (here a directory made where the object goes) is the
/// upload's failure: a part offered after it is refused with it, as every later
/// call is, not with a vaguer "being completed".
#[test]
fn a_part_after_a_failed_commit_says_why_it_failed() {
    let (op, dir) = common::fs_operator("upload-commit");
    rt().block_on(async {
        let store = DioStore::new(op);
        let mut upload = store.put_multipart(&Path::from("t/obj")).await.unwrap();
        upload.put_part(vec![1_u8; 1000].into()).await.unwrap();
        std::fs::create_dir_all(dir.path().join("t/obj/inner")).unwrap();
        let failed = upload.complete().await.unwrap_err().to_string();
        let later = upload.put_part(vec![2_u8; 10].into()).await.unwrap_err();
        assert!(failed.contains("is a directory"), "{failed}");
        assert_eq!(later.to_string(), failed);
    });
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path().display().to_string());
        }
    }
    out
}

#[test]
fn an_aborted_upload_leaves_nothing_and_parts_keep_their_call_order() {
    let (fs, _dir) = common::fs_operator("up-fs");
    for store in [
        DioStore::new(common::memory_operator("up-mem")),
        DioStore::new(fs),
    ] {
        rt().block_on(async {
            let path = Path::from("ordered");
            let mut upload = store.put_multipart(&path).await.unwrap();
            let parts: Vec<_> = (0..10_u8)
                .map(|i| upload.put_part(vec![i; 100_000].into()))
                .collect();
            // Polled in reverse: the object still has them in call order.
            for part in parts.into_iter().rev() {
                part.await.unwrap();
            }
            upload.complete().await.unwrap();
            let back = store.get(&path).await.unwrap().bytes().await.unwrap();
            for (i, chunk) in back.chunks(100_000).enumerate() {
                assert!(chunk.iter().all(|&b| b == i as u8));
            }
            let aborted = Path::from("aborted");
            let mut upload = store.put_multipart(&aborted).await.unwrap();
            upload.put_part(vec![9; 1000].into()).await.unwrap();
            upload.abort().await.unwrap();
            let err = store.head(&aborted).await.unwrap_err();
            assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        });
    }
}

#[test]
fn a_prefix_maps_locations_onto_the_operators_root() {
    let op = common::memory_operator("prefix");
    rt().block_on(async {
        let store = DioStore::new(op.clone()).with_prefix("/warehouse/db/");
        assert_eq!(store.to_string(), "DioStore(memory at warehouse/db/)");
        let location = Path::from("warehouse/db/t/a.parquet");
        store.put(&location, "x".into()).await.unwrap();
        assert_eq!(op.read("t/a.parquet").await.unwrap(), "x", "stored at the root");
        let names = |metas: Vec<object_store::ObjectMeta>| -> Vec<String> {
            metas.into_iter().map(|m| m.location.to_string()).collect()
        };
        let all = futures::TryStreamExt::try_collect(store.list(None)).await.unwrap();
        assert_eq!(names(all), ["warehouse/db/t/a.parquet"]);
        let above = futures::TryStreamExt::try_collect(store.list(Some(&Path::from("warehouse"))))
            .await
            .unwrap();
        assert_eq!(names(above), ["warehouse/db/t/a.parquet"]);
        // Listing outside the prefix is refused, not empty.
        let elsewhere: object_store::Result<Vec<_>> =
            futures::TryStreamExt::try_collect(store.list(Some(&Path::from("other")))).await;
        assert!(
            matches!(elsewhere, Err(object_store::Error::InvalidPath { .. })),
            "{elsewhere:?}"
        );
        let err = store
            .list_with_delimiter(Some(&Path::from("other/x")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::InvalidPath { .. }) && err.to_string().contains("other/x"),
            "{err}"
        );
        let listed = store
            .list_with_delimiter(Some(&Path::from("warehouse/db")))
            .await
            .unwrap();
        assert_eq!(listed.common_prefixes, [Path::from("warehouse/db/t")]);
        // Nothing outside the prefix is an object of the store: reading there
        // finds nothing, the prefix itself and its parents (directories) included;
        // writing there is refused.
        for outside in ["other/a", "warehouse/db", "warehouse"] {
            let location = Path::from(outside);
            let err = store.get(&location).await.unwrap_err();
            assert!(
                matches!(err, object_store::Error::NotFound { ref path, .. } if path == outside),
                "{err}"
            );
            let err = store.head(&location).await.unwrap_err();
            assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
            let err = store.get_ranges(&location, &[0..1, 2..3]).await.unwrap_err();
            assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        }
        let err = store.put(&Path::from("other/a"), "x".into()).await.unwrap_err();
        assert!(matches!(err, object_store::Error::InvalidPath { .. }), "{err}");
        let err = store.head(&Path::from("warehouse/db/t/none")).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotFound { ref path, .. } if path == "warehouse/db/t/none"),
            "{err}"
        );
    });
}

/// `ContentType` and `StorageClass` attributes are the write's options: S3 stores
/// both, and `get` and `head` give the content type back; memory stores a content
/// type too, and refuses a storage class; fs refuses both (it would take a content
/// type and lose it). Tags are ignored.
#[test]
fn content_type_and_storage_class_attributes() {
    use object_store::{Attribute, Attributes, PutMultipartOptions};
    let attributes = || {
        Attributes::from_iter([
            (Attribute::ContentType, "text/csv"),
            (Attribute::StorageClass, "STANDARD_IA"),
        ])
    };
    rt().block_on(async {
        let memory = DioStore::new(common::memory_operator("attributes-mem"));
        let err = memory
            .put_opts(&Path::from("a"), "x".into(), attributes().into())
            .await
            .unwrap_err();
        assert!(
            matches!(err, object_store::Error::NotImplemented { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("\"a\""), "names the object: {err}");
        let content_type = Attributes::from_iter([(Attribute::ContentType, "text/csv")]);
        let (fs_op, _dir) = common::fs_operator("attributes-fs");
        let fs = DioStore::new(fs_op);
        let refused = fs
            .put_opts(&Path::from("a"), "x".into(), content_type.clone().into())
            .await
            .unwrap_err();
        let parts = fs
            .put_multipart_opts(
                &Path::from("a"),
                PutMultipartOptions {
                    attributes: content_type.clone(),
                    ..Default::default()
                },
            )
            .await
            .map(drop)
            .unwrap_err();
        for err in [refused, parts] {
            assert!(
                matches!(err, object_store::Error::NotImplemented { .. }),
                "{err}"
            );
            assert!(err.to_string().contains("ContentType"), "{err}");
            assert!(err.to_string().contains("\"a\""), "names the object: {err}");
        }
        assert!(matches!(
            fs.head(&Path::from("a")).await,
            Err(object_store::Error::NotFound { .. })
        ));
        memory
            .put_opts(&Path::from("a"), "x".into(), content_type.clone().into())
            .await
            .unwrap();
        // Stored, as object_store's InMemory does: get and head give it back.
        let got = memory.get(&Path::from("a")).await.unwrap();
        assert_eq!(got.attributes, content_type);
        let head = memory
            .get_opts(&Path::from("a"), GetOptions::new().with_head(true))
            .await
            .unwrap();
        assert_eq!(head.attributes, content_type);
        // Tags are not kept: ignored, as the trait asks (object_store's
        // LocalFileSystem does the same).
        let mut tags = object_store::TagSet::default();
        tags.push("team", "query");
        memory
            .put_opts(&Path::from("tagged"), "x".into(), tags.clone().into())
            .await
            .unwrap();
        let mut upload = memory
            .put_multipart_opts(
                &Path::from("tagged-parts"),
                PutMultipartOptions {
                    tags,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        upload.put_part("x".into()).await.unwrap();
        upload.complete().await.unwrap();

        let Some(op) = common::s3_operator("attributes-s3") else {
            return;
        };
        let s3 = DioStore::new(op.clone());
        s3.put_opts(&Path::from("one"), "a,b\n".into(), attributes().into())
            .await
            .unwrap();
        let mut upload = s3
            .put_multipart_opts(
                &Path::from("parts"),
                PutMultipartOptions {
                    attributes: attributes(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        upload.put_part("a,b\n".into()).await.unwrap();
        upload.complete().await.unwrap();
        for name in ["one", "parts"] {
            let meta = op.stat(name).await.unwrap();
            assert_eq!(meta.content_type(), Some("text/csv"), "{name}");
            // And object_store's get and head give it back.
            let path = Path::from(name);
            let want = Attributes::from_iter([(Attribute::ContentType, "text/csv")]);
            let got = s3.get(&path).await.unwrap();
            assert_eq!(got.attributes, want, "{name}");
            assert_eq!(got.bytes().await.unwrap(), "a,b\n");
            let head = s3
                .get_opts(&path, GetOptions::new().with_head(true))
                .await
                .unwrap();
            assert_eq!(head.attributes, want, "{name}");
        }
    });
}

/// A backend whose chunk writes wait while its gate is shut (at most 10 s, so a
/// test that never opens it fails instead of hanging), which keeps what each
/// committed write held, and whose listings break midway ([`BreakingList`]).
#[derive(Debug, Default)]
struct Held {
    shut: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
    committed: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Chunk writes fail (once through the gate).
    failing: std::sync::atomic::AtomicBool,
    /// Chunk writes do not wait at the gate (only commits do).
    writes_pass: std::sync::atomic::AtomicBool,
    /// Commits fail (once through the gate), saying the object may be stored.
    commit_lost: std::sync::atomic::AtomicBool,
    /// Aborts fail: the clean-up cannot be done (S3 refusing the DELETE).
    abort_fails: std::sync::atomic::AtomicBool,
    /// Listings fail on their first page, not their second, with an error about
    /// this path.
    list_breaks_first: std::sync::Mutex<Option<&'static str>>,
}

impl Held {
    fn set_shut(&self, shut: bool) {
        *self.shut.lock().unwrap() = shut;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let shut = self.shut.lock().unwrap();
        drop(
            self.changed
                .wait_timeout_while(shut, Duration::from_secs(10), |shut| *shut)
                .unwrap(),
        );
    }
}

#[derive(Debug)]
struct HeldAccess(Arc<Held>);

/// A store over a [`HeldAccess`], and its gate.
fn held_store() -> (Arc<Held>, DioStore) {
    held_store_on(io_executor::Executor::global())
}

/// [`held_store`] on `executor`.
fn held_store_on(executor: io_executor::Executor) -> (Arc<Held>, DioStore) {
    let held = Arc::new(Held::default());
    let op = storage::Operator::new(HeldAccess(Arc::clone(&held))).with_executor(executor);
    (held, DioStore::new(op))
}

#[derive(Debug)]
struct HeldWrite {
    held: Arc<Held>,
    data: Vec<u8>,
}

impl storage::raw::RawWrite for HeldWrite {
    fn write(
        mut self: Box<Self>,
        data: Bytes,
    ) -> storage::raw::IoJob<Box<dyn storage::raw::RawWrite>> {
        storage::raw::IoJob::blocking(move || {
            if !self
                .held
                .writes_pass
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                self.held.pass();
            }
            if self.held.failing.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(storage::Error::new(storage::ErrorKind::PermissionDenied)
                    .with_message("injected write failure"));
            }
            self.data.extend_from_slice(&data);
            Ok(self as Box<dyn storage::raw::RawWrite>)
        })
    }

    fn close(self: Box<Self>) -> storage::raw::IoJob<storage::Metadata> {
        storage::raw::IoJob::blocking(move || {
            self.held.pass();
            if self
                .held
                .commit_lost
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                return Err(storage::Error::new(storage::ErrorKind::Unexpected)
                    .with_message("injected lost answer to the commit")
                    .with_context("stored", "unknown"));
            }
            let len = self.data.len() as u64;
            self.held.committed.lock().unwrap().push(self.data);
            Ok(storage::Metadata::file(len))
        })
    }

    fn abort(self: Box<Self>) -> storage::raw::IoJob<()> {
        if self
            .held
            .abort_fails
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return storage::raw::IoJob::ready(Err(storage::Error::new(
                storage::ErrorKind::PermissionDenied,
            )
            .with_message("injected abort failure")));
        }
        storage::raw::IoJob::ready(Ok(()))
    }
}

impl storage::raw::Access for HeldAccess {
    fn scheme(&self) -> &'static str {
        "held"
    }
    fn stat(&self, _: &str) -> storage::raw::IoJob<storage::Metadata> {
        storage::raw::IoJob::ready(Err(storage::Error::new(storage::ErrorKind::NotFound)))
    }
    fn read(&self, _: &str, _: storage::raw::ReadArgs) -> storage::raw::IoJob<Bytes> {
        storage::raw::IoJob::ready(Err(storage::Error::new(storage::ErrorKind::NotFound)))
    }
    fn open(
        &self,
        _: &str,
        _: storage::raw::OpenArgs,
    ) -> storage::raw::IoJob<storage::raw::Opened> {
        storage::raw::IoJob::ready(Err(storage::Error::new(storage::ErrorKind::NotFound)))
    }
    fn writer(
        &self,
        _: &str,
        _: storage::WriteOptions,
    ) -> storage::raw::IoJob<Box<dyn storage::raw::RawWrite>> {
        storage::raw::IoJob::ready(Ok(Box::new(HeldWrite {
            held: Arc::clone(&self.0),
            data: Vec::new(),
        })))
    }
    fn list(
        &self,
        _: &str,
        _: storage::raw::ListArgs,
    ) -> storage::raw::IoJob<Box<dyn storage::raw::RawList>> {
        let breaks = *self.0.list_breaks_first.lock().unwrap();
        storage::raw::IoJob::ready(Ok(Box::new(BreakingList {
            pages: 0,
            fails_at: if breaks.is_some() { 1 } else { 2 },
            path: breaks.unwrap_or("d/"),
        })))
    }
}

/// What a test does with a second part's future, which waits behind the first
/// (whose write is held back), and then with the upload.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    /// Drops the future, then completes.
    Drop,
    /// Keeps the future without polling it, completes, then polls it.
    Complete,
    /// Keeps the future without polling it, aborts, then polls it.
    Abort,
}

/// A part's future dropped before its part was written leaves the part to be
/// written all the same, in its place. One polled once, then kept without being
/// polled (the losing branch of a `select!`, a `join_all` left behind on
/// cancellation), holds nothing up: `complete` and `abort` go ahead, the part is
/// written before the commit, and the future answers when it is polled at last.
#[test]
fn a_waiting_part_future_dropped_or_kept_unpolled_holds_nothing_up() {
    use futures::FutureExt;
    within(60, || {
        for then in [Then::Drop, Then::Complete, Then::Abort] {
            let (held, store) = held_store();
            rt().block_on(async {
                let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
                // The first part is handed over, and its write held back.
                held.set_shut(true);
                upload.put_part("first,".into()).await.unwrap();
                // The second waits for the first.
                let mut second = upload.put_part("second".into());
                assert!((&mut second).now_or_never().is_none(), "{then:?}");
                if then == Then::Drop {
                    drop(second);
                    held.set_shut(false);
                    upload.complete().await.unwrap();
                    return;
                }
                held.set_shut(false);
                if then == Then::Abort {
                    upload.abort().await.unwrap();
                    // Handed over before the abort, or dropped by it: either way
                    // it answers.
                    drop(second.await);
                } else {
                    upload.complete().await.unwrap();
                    second.await.unwrap();
                }
            });
            let committed = held.committed.lock().unwrap().clone();
            if then == Then::Abort {
                assert!(committed.is_empty(), "{committed:?}");
            } else {
                assert_eq!(committed, [b"first,second".to_vec()], "{then:?}");
            }
        }
    });
}

/// A part whose write fails fails the upload: a part offered after it is refused
/// with that failure (not queued), `complete` fails with it, and nothing is left
/// running on the executor (which then joins).
#[test]
fn a_failed_part_write_fails_every_later_call_and_leaves_nothing_running() {
    within(60, || {
        let io = common::executor("failed-part");
        let (held, store) = held_store_on(io.clone());
        held.failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
            // Handed over before it failed, or refused after: either way.
            drop(upload.put_part("first".into()).await);
            // The failure is reported by the next parts, whenever it happened.
            let mut refused = 0;
            for _ in 0..100 {
                if let Err(err) = upload.put_part("more".into()).await {
                    assert!(err.to_string().contains("injected"), "{err}");
                    refused += 1;
                }
            }
            assert_eq!(refused, 100, "later parts refused");
            io.shutdown();
            io.join().await;
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
        });
        assert!(held.committed.lock().unwrap().is_empty());
    });
}

/// An `abort` given up while it waited (dropped after one poll) has still ended
/// the upload: the parts it dropped answer, and `complete` fails instead of
/// committing without them.
#[test]
fn an_abort_given_up_midway_still_ends_the_upload() {
    use futures::FutureExt;
    within(60, || {
        let (held, store) = held_store();
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
            held.set_shut(true);
            upload.put_part("first,".into()).await.unwrap();
            let second = upload.put_part("second".into());
            // Most likely the task handing parts over now holds the writer, waiting
            // for the first write (this pause only makes that likely; the test
            // holds either way).
            tokio::time::sleep(Duration::from_millis(50)).await;
            // The abort waits for the write held back (behind that task, or
            // through the writer), and is dropped.
            assert!(upload.abort().now_or_never().is_none());
            held.set_shut(false);
            let err = second.await.unwrap_err();
            assert!(err.to_string().contains("aborted"), "{err}");
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("aborted"), "{err}");
        });
        assert!(held.committed.lock().unwrap().is_empty());
    });
}

/// An abort while a commit is under way (its `complete` dropped) is refused, and
/// the next `complete` answers with the commit.
#[test]
fn an_abort_during_a_held_commit_is_refused() {
    use futures::FutureExt;
    within(60, || {
        let (held, store) = held_store();
        // The part's write (perhaps still in flight below) is not held back.
        held.writes_pass
            .store(true, std::sync::atomic::Ordering::SeqCst);
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
            upload.put_part("all".into()).await.unwrap();
            held.set_shut(true);
            // Polled once, then dropped, until the commit (held back) is under way:
            // an empty part is refused then.
            loop {
                assert!(upload.complete().now_or_never().is_none());
                if upload.put_part(PutPayload::new()).await.is_err() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            let err = upload.abort().await.unwrap_err();
            assert!(err.to_string().contains("being completed"), "{err}");
            held.set_shut(false);
            upload.complete().await.unwrap();
        });
        assert_eq!(*held.committed.lock().unwrap(), [b"all".to_vec()]);
    });
}

/// A `complete` dropped while a part is still being written has not started the
/// commit: `abort` then ends the upload, and nothing is stored.
#[test]
fn a_complete_dropped_while_a_part_is_written_leaves_an_upload_abort_ends() {
    use futures::FutureExt;
    within(60, || {
        let (held, store) = held_store();
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
            held.set_shut(true);
            upload.put_part("all".into()).await.unwrap();
            // Polled once and dropped, again and again while the part's write is
            // held back: wherever it got to, it waits for that write.
            for _ in 0..50 {
                assert!(upload.complete().now_or_never().is_none());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            held.set_shut(false);
            upload.abort().await.unwrap();
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("aborted"), "{err}");
        });
        assert!(held.committed.lock().unwrap().is_empty());
    });
}

/// The last part's write failing while `complete` waits for it fails the upload:
/// `complete` says so, and so does every later call, a part offered after it
/// included (refused at once, never left waiting).
#[test]
fn a_last_part_failing_under_complete_fails_every_later_call() {
    within(60, || {
        let (held, store) = held_store();
        held.failing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
            // Handed over (its write fails after), or refused if that was quick.
            drop(upload.put_part("last".into()).await);
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
            let part =
                tokio::time::timeout(Duration::from_secs(20), upload.put_part("more".into()))
                    .await
                    .expect("a part offered after the failure waits for ever");
            let err = part.unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
        });
        assert!(held.committed.lock().unwrap().is_empty());
    });
}

/// A commit that failed saying the object may be stored (an answer lost) is said
/// again by `abort`, as `Writer::abort` says it: the upload was not simply given
/// up.
#[test]
fn an_abort_after_a_commit_that_may_have_stored_returns_its_error() {
    within(60, || {
        let (held, store) = held_store();
        held.commit_lost
            .store(true, std::sync::atomic::Ordering::SeqCst);
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("up")).await.unwrap();
            upload.put_part("all".into()).await.unwrap();
            let err = upload.complete().await.unwrap_err();
            assert!(err.to_string().contains("injected lost answer"), "{err}");
            let err = upload.abort().await.unwrap_err();
            let shown = err.to_string();
            assert!(
                shown.contains("injected lost answer") && shown.contains("stored"),
                "{shown}"
            );
        });
    });
}

/// An abort whose clean-up failed is said by every later abort, a `complete`
/// between them included (it answered `Ok` once a `complete` had taken the
/// writer out).
#[test]
fn a_failed_abort_is_said_again_after_a_complete() {
    within(60, || {
        let (held, store) = held_store();
        held.writes_pass
            .store(true, std::sync::atomic::Ordering::SeqCst);
        held.abort_fails
            .store(true, std::sync::atomic::Ordering::SeqCst);
        rt().block_on(async {
            let mut upload = store.put_multipart(&Path::from("af")).await.unwrap();
            upload.put_part("some".into()).await.unwrap();
            for call in ["abort", "complete", "abort", "complete", "abort"] {
                let err = match call {
                    "abort" => upload.abort().await.map(drop),
                    _ => upload.complete().await.map(drop),
                }
                .expect_err(call);
                assert!(
                    err.to_string().contains("injected abort failure"),
                    "{call}: {err}"
                );
            }
        });
    });
}

#[test]
fn a_write_where_a_directory_is_says_so_and_is_not_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let op = storage::Operator::new(storage::services::Fs::new(dir.path()).unwrap());
    rt().block_on(async {
        let store = DioStore::new(op);
        store.put(&Path::from("t/x"), "x".into()).await.unwrap();
        let put = store.put(&Path::from("t"), "y".into()).await.unwrap_err();
        let mut upload = store.put_multipart(&Path::from("t")).await;
        let multipart = match upload.as_mut() {
            Ok(upload) => {
                upload.put_part("y".into()).await.unwrap();
                upload.complete().await.unwrap_err()
            }
            Err(_) => upload.map(drop).unwrap_err(),
        };
        for err in [put, multipart] {
            assert!(
                matches!(err, object_store::Error::Generic { .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains("directory"), "{err}");
        }
        // Reading that name is still not found: there is no object there.
        assert!(matches!(
            store.get(&Path::from("t")).await.unwrap_err(),
            object_store::Error::NotFound { .. }
        ));
    });
    // Nor is a copy or a rename onto that name about anything missing, on either
    // backend that has directories; a missing source still is.
    let memory = common::memory_operator("dir-target");
    let fs_dir = tempfile::tempdir().unwrap();
    let fs = storage::Operator::new(storage::services::Fs::new(fs_dir.path()).unwrap());
    for op in [fs, memory] {
        rt().block_on(async {
            let store = DioStore::new(op.clone());
            store.put(&Path::from("t/x"), "x".into()).await.unwrap();
            store.put(&Path::from("a"), "a".into()).await.unwrap();
            let (a, t) = (Path::from("a"), Path::from("t"));
            for err in [
                store.copy(&a, &t).await.unwrap_err(),
                store.rename(&a, &t).await.unwrap_err(),
                store.copy_if_not_exists(&a, &t).await.unwrap_err(),
            ] {
                assert!(
                    !matches!(err, object_store::Error::NotFound { .. }),
                    "{}: {err:?}",
                    op.scheme()
                );
                assert!(err.to_string().contains("directory"), "{err}");
            }
            let err = store.copy(&Path::from("none"), &t).await.unwrap_err();
            assert!(
                matches!(err, object_store::Error::NotFound { ref path, .. } if path == "none"),
                "{err:?}"
            );
        });
    }
}

/// The listing of a [`HeldAccess`]: one entry, then the error a walk meets when a
/// directory it is about to enter has been replaced by a file.
#[derive(Debug)]
struct BreakingList {
    pages: u32,
    fails_at: u32,
    /// What the error is about ("": the listing's own path).
    path: &'static str,
}

impl storage::raw::RawList for BreakingList {
    fn next_page(
        mut self: Box<Self>,
    ) -> storage::raw::IoJob<(Box<dyn storage::raw::RawList>, Vec<storage::Entry>)> {
        self.pages += 1;
        let err = storage::Error::new(storage::ErrorKind::NotADirectory);
        storage::raw::IoJob::ready(if self.pages < self.fails_at {
            Ok((
                self as Box<dyn storage::raw::RawList>,
                vec![storage::Entry::new("a", storage::Metadata::file(1))],
            ))
        } else if self.path.is_empty() {
            Err(err)
        } else {
            Err(err.with_path(self.path))
        })
    }
}

#[test]
fn a_listing_that_fails_midway_ends_in_that_error_not_early() {
    let store = DioStore::new(storage::Operator::new(HeldAccess(Arc::default())));
    let listed: Vec<_> = rt().block_on(store.list(None).collect());
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0].as_ref().unwrap().location, Path::from("a"));
    let err = listed[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

/// A directory below the listed one that is no longer one when the walk opens
/// it (replaced by a file meanwhile): the listing fails, even on its first page,
/// where it was taken for a listing below an object and ended empty. A listing
/// that finds its own directory to be an object is empty, as object_store's are.
#[test]
fn a_subdirectory_gone_on_the_first_page_is_an_error_not_an_empty_listing() {
    // The path the error is about, whether the listing fails, and whether to
    // list from above a store prefix too (whose own directory is `t/x/`).
    for (path, fails, above) in [("d/", true, true), ("t/", false, false), ("", false, true)] {
        let held = Arc::new(Held::default());
        *held.list_breaks_first.lock().unwrap() = Some(path);
        let store = DioStore::new(storage::Operator::new(HeldAccess(Arc::clone(&held))));
        let (listed, delimited) = rt().block_on(async {
            let prefix = Path::from("t");
            let listed: Vec<_> = store.list(Some(&prefix)).collect().await;
            let delimited = if above {
                let store = store.clone().with_prefix("t/x");
                Some(store.list_with_delimiter(Some(&prefix)).await)
            } else {
                None
            };
            (listed, delimited)
        });
        if fails {
            assert_eq!(listed.len(), 1, "{path:?}: {listed:?}");
            let err = listed[0].as_ref().unwrap_err();
            assert!(err.to_string().contains("not a directory"), "{err}");
            assert!(delimited.unwrap().is_err(), "{path:?}");
        } else {
            assert!(listed.is_empty(), "{path:?}: {listed:?}");
            if let Some(delimited) = delimited {
                assert!(delimited.unwrap().common_prefixes.is_empty(), "{path:?}");
            }
        }
    }
}

/// Listing below an object finds nothing, on every backend, as in object_store:
/// there are no directories, so nothing is below a file.
#[test]
fn a_listing_below_an_object_is_empty_on_every_backend() {
    let (fs, _dir) = common::fs_operator("below-object");
    let mut ops = vec![
        ("fs", fs),
        ("memory", common::memory_operator("below-object")),
    ];
    ops.extend(common::s3_operator("below-object").map(|op| ("s3", op)));
    for (name, op) in ops {
        let store = DioStore::new(op);
        rt().block_on(async {
            let object = Path::from("t/a.parquet");
            store.put(&object, "x".into()).await.unwrap();
            let listed: Vec<_> = store.list(Some(&object)).collect().await;
            assert!(listed.is_empty(), "{name}: {listed:?}");
            let delimited = store.list_with_delimiter(Some(&object)).await.unwrap();
            assert!(
                delimited.objects.is_empty() && delimited.common_prefixes.is_empty(),
                "{name}: {delimited:?}"
            );
            store.delete(&object).await.unwrap();
        });
    }
}

/// Also with the prefix spelled with slashes at its ends and repeated ones, which
/// no location has.
#[test]
fn a_delimited_listing_above_the_store_prefix_shows_the_next_segment() {
    for prefix in ["data/warehouse", "/data//warehouse/"] {
        delimited_listing_above(prefix);
    }
}

fn delimited_listing_above(prefix: &str) {
    let store =
        DioStore::new(storage::Operator::new(storage::services::Memory::new())).with_prefix(prefix);
    rt().block_on(async {
        for above in [None, Some(Path::from("data"))] {
            let listed = store.list_with_delimiter(above.as_ref()).await.unwrap();
            assert!(listed.common_prefixes.is_empty() && listed.objects.is_empty());
        }
        let object = Path::from("data/warehouse/t/a.parquet");
        store.put(&object, "x".into()).await.unwrap();
        for (above, common) in [(None, "data"), (Some("data"), "data/warehouse")] {
            let listed = store
                .list_with_delimiter(above.map(Path::from).as_ref())
                .await
                .unwrap();
            assert_eq!(listed.common_prefixes, [Path::from(common)], "{above:?}");
            assert!(listed.objects.is_empty(), "{above:?}: {listed:?}");
        }
        let listed = store
            .list_with_delimiter(Some(&Path::from("data/warehouse")))
            .await
            .unwrap();
        assert_eq!(listed.common_prefixes, [Path::from("data/warehouse/t")]);
        let all: Vec<_> = store.list(Some(&Path::from("data"))).collect().await;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].as_ref().unwrap().location, object);
    });
}

/// A `get` stream whose read fails midway (here: the operator's executor shut down)
/// yields that error once, then ends, as object_store's streams do: directly, and
/// through an `IoObjectStore`, whose pump would otherwise pull the same error for
/// ever without yielding (and never stop when the stream is dropped).
#[test]
fn a_get_stream_that_fails_midway_yields_the_error_then_ends() {
    within(60, || {
        for wrapped in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let io = common::executor("fail-midway");
            let op = common::fs_operator_on(dir.path(), &io);
            let op = op
                .clone()
                .with_options(op.options().with_chunk_size(64 << 10).with_prefetch(1));
            let dio = DioStore::new(op).with_whole_read_limit(0);
            let outer = common::executor("fail-midway-outer");
            let store: Arc<dyn ObjectStore> = if wrapped {
                Arc::new(dio_object_store::IoObjectStore::new(dio, outer.clone()))
            } else {
                Arc::new(dio)
            };
            let path = Path::from("f.bin");
            rt().block_on(async {
                store.put(&path, vec![7_u8; 1 << 20].into()).await.unwrap();
                let mut stream = store.get(&path).await.unwrap().into_stream();
                assert_eq!(stream.next().await.unwrap().unwrap().len(), 64 << 10);
                io.shutdown();
                io.join().await;
                let mut errors = 0;
                let mut chunks = 0;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(_) => chunks += 1,
                        Err(_) => errors += 1,
                    }
                }
                assert_eq!(errors, 1, "wrapped: {wrapped}");
                assert!(chunks < 15, "the data is cut short, wrapped: {wrapped}");
            });
            outer.shutdown();
            outer.blocking_join();
        }
    });
}

/// An abort after a `complete` that was dropped mid-commit cannot take the commit
/// back, and leaves it for the next `complete` to answer: the upload is not lost
/// to "already completed or aborted".
#[test]
fn an_abort_after_a_dropped_complete_leaves_the_commit_to_answer() {
    use futures::FutureExt;
    within(60, || {
        let (fs, _dir) = common::fs_operator("abort-after-fs");
        let store = DioStore::new(fs);
        rt().block_on(async {
            let path = Path::from("committed");
            let mut upload = store.put_multipart(&path).await.unwrap();
            upload.put_part(vec![5; 100_000].into()).await.unwrap();
            // Polled once, then dropped, until the commit is under way: a `complete`
            // still waiting for the task handing parts over has started nothing,
            // and an empty part is taken then (it is refused once the commit is
            // submitted, and adds nothing either way).
            let first = loop {
                match upload.complete().now_or_never() {
                    Some(done) => break Some(done),
                    None if upload.put_part(PutPayload::new()).await.is_err() => break None,
                    None => tokio::task::yield_now().await,
                }
            };
            if first.is_none() {
                let err = upload.abort().await.unwrap_err();
                assert!(err.to_string().contains("being completed"), "{err}");
            }
            let done = match first {
                Some(done) => done.unwrap(),
                None => upload.complete().await.unwrap(),
            };
            let back = store.get(&path).await.unwrap();
            assert_eq!(back.meta.e_tag, done.e_tag);
            assert_eq!(back.bytes().await.unwrap(), vec![5_u8; 100_000]);
        });
    });
}

/// `complete` dropped at each poll, wherever it got to (writing parts, or
/// committing), and called again until it answers; between the calls, a part is
/// offered. A part taken is in the object, in order; a part refused (the commit
/// was under way) is not, and does not fail the upload. Once completed, `complete`
/// returns the same result, and a part is refused.
#[test]
fn a_complete_that_was_dropped_can_be_called_again() {
    use futures::FutureExt;
    within(60, || {
        let (fs, _dir) = common::fs_operator("complete-fs");
        for store in [
            DioStore::new(common::memory_operator("complete-mem")),
            DioStore::new(fs),
        ] {
            rt().block_on(async {
                let path = Path::from("retried");
                let mut upload = store.put_multipart(&path).await.unwrap();
                drop(upload.put_part(vec![1; 300_000].into()));
                drop(upload.put_part(vec![2; 300_000].into()));
                let mut want = vec![1_u8; 300_000];
                want.extend(vec![2_u8; 300_000]);
                let done = loop {
                    if let Some(done) = upload.complete().now_or_never() {
                        break done.unwrap();
                    }
                    let extra = vec![3_u8; 10];
                    if upload.put_part(extra.clone().into()).await.is_ok() {
                        want.extend(extra);
                    }
                    tokio::task::yield_now().await;
                };
                assert_eq!(upload.complete().await.unwrap(), done, "{store}");
                let back = store.get(&path).await.unwrap();
                assert_eq!(back.meta.e_tag, done.e_tag, "{store}");
                assert_eq!(back.bytes().await.unwrap(), want, "{store}");
                let err = upload.put_part(vec![4; 10].into()).await.unwrap_err();
                assert!(err.to_string().contains("completed"), "{err}");
            });
        }
    });
}

/// A FIFO (or socket, or device) where an object's file would be is not an object
/// we can read: every operation that reads it says so, as object_store's
/// `NotSupported`, naming what it found, and never waits for a writer.
#[test]
fn a_fifo_in_the_root_is_not_supported_by_any_read() {
    use rustix::fs::{CWD, FileType, Mode};
    let dir = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        CWD,
        dir.path().join("pipe"),
        FileType::Fifo,
        Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let op = storage::Operator::new(storage::services::Fs::new(dir.path()).unwrap());
    within(60, move || {
        rt().block_on(async {
            let store = DioStore::new(op);
            let (pipe, to) = (Path::from("pipe"), Path::from("copied"));
            let get = store.get(&pipe).await.map(drop).unwrap_err();
            let range = store.get_range(&pipe, 0..1).await.map(drop).unwrap_err();
            let copy = store.copy(&pipe, &to).await.unwrap_err();
            let copy_new = store.copy_if_not_exists(&pipe, &to).await.unwrap_err();
            for (operation, err) in [
                ("get", get),
                ("get_range", range),
                ("copy", copy),
                ("copy_if_not_exists", copy_new),
            ] {
                assert!(
                    matches!(err, object_store::Error::NotSupported { .. }),
                    "{operation}: {err:?}"
                );
                assert!(err.to_string().contains("FIFO"), "{operation}: {err}");
            }
            assert!(matches!(
                store.head(&to).await.unwrap_err(),
                object_store::Error::NotFound { .. }
            ));
        });
    });
}

/// An S3 object replaced while `get` streams it fails the stream (every chunk is
/// pinned to the version opened), as `AmazonS3` fails: with `Generic`, not
/// `Precondition`, which would say the caller's condition failed. Asked for that
/// version (`if_match` its ETag), the failure is the caller's: `Precondition`.
#[test]
fn an_object_replaced_while_streamed_is_not_a_failed_precondition() {
    let Some(op) = common::s3_operator("replaced-midway") else {
        return;
    };
    rt().block_on(async {
        let store = DioStore::new(op).with_whole_read_limit(1 << 20);
        let path = Path::from("replaced");
        for pinned in [false, true] {
            store
                .put(&path, Bytes::from(vec![1_u8; 32 << 20]).into())
                .await
                .unwrap();
            let etag = store.head(&path).await.unwrap().e_tag;
            let options = GetOptions::new().with_if_match(etag.filter(|_| pinned));
            let mut stream = store.get_opts(&path, options).await.unwrap().into_stream();
            let first = stream.next().await.unwrap().unwrap();
            assert!(!first.is_empty());
            // Replaced: the chunks still to come are refused by the server.
            store
                .put(&path, Bytes::from(vec![2_u8; 32 << 20]).into())
                .await
                .unwrap();
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => assert!(chunk.iter().all(|&b| b == 1), "mixed versions"),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let err = failed.expect("the stream fails once the object is replaced");
            if pinned {
                assert!(
                    matches!(err, object_store::Error::Precondition { .. }),
                    "{err}"
                );
            } else {
                assert!(matches!(err, object_store::Error::Generic { .. }), "{err}");
                assert!(
                    err.to_string().contains("replaced while it was read"),
                    "{err}"
                );
            }
        }
        store.delete(&path).await.unwrap();
    });
}

/// A `last_modified` that `head` gave, handed back as a time condition after the
/// object was written again, sees that write, as object_store's `InMemory` and
/// `LocalFileSystem` compare: the new data, and a precondition failure.
#[test]
fn a_last_modified_handed_back_sees_a_later_write() {
    rt().block_on(async {
        let store = DioStore::new(common::memory_operator("last-modified"));
        let path = Path::from("t");
        store.put(&path, "old".into()).await.unwrap();
        let seen = store.head(&path).await.unwrap().last_modified;
        store.put(&path, "new".into()).await.unwrap();
        let since = GetOptions {
            if_modified_since: Some(seen),
            ..Default::default()
        };
        let got = store.get_opts(&path, since).await.unwrap();
        assert_eq!(got.bytes().await.unwrap(), "new");
        let unmodified = GetOptions {
            if_unmodified_since: Some(seen),
            ..Default::default()
        };
        let err = store.get_opts(&path, unmodified).await.unwrap_err();
        assert!(
            matches!(err, object_store::Error::Precondition { .. }),
            "{err:?}"
        );
    });
}
