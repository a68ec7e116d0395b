//! What fs and memory do with the write options only S3 can honour: a storage
//! class or server-side encryption is refused with `Unsupported` by every write
//! path, never ignored; a content type is stored by memory (as S3 does) and
//! taken without being stored by fs.

use storage::services::{Fs, Memory};
use storage::{CustomerKey, Encryption, ErrorKind, Operator, WriteOptions};

fn local_backends() -> Vec<(Operator, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let fs = Operator::new(Fs::new(dir.path()).unwrap());
    vec![
        (fs, dir),
        (Operator::new(Memory::new()), tempfile::tempdir().unwrap()),
    ]
}

#[tokio::test]
async fn storage_class_and_encryption_are_refused_by_every_write_path() {
    let refused = [
        WriteOptions::new().with_storage_class("STANDARD_IA"),
        WriteOptions::new().with_encryption(Encryption::S3Managed),
        WriteOptions::new().with_encryption(Encryption::Kms { key_id: None }),
        WriteOptions::new().with_encryption(Encryption::Customer(CustomerKey::new([1; 32]))),
    ];
    for (op, _dir) in local_backends() {
        op.write("src", "data").await.unwrap();
        for options in &refused {
            let kinds = [
                op.write_with("a", "x").options(options.clone()).await.err(),
                op.writer_with("b").options(options.clone()).await.err(),
                op.copy_with("src", "c")
                    .options(options.clone())
                    .await
                    .err(),
                op.rename_with("src", "d")
                    .options(options.clone())
                    .await
                    .err(),
                // Onto itself too: asked, not silently skipped.
                op.copy_with("src", "src")
                    .options(options.clone())
                    .await
                    .err(),
                op.rename_with("src", "./src")
                    .options(options.clone())
                    .await
                    .err(),
            ]
            .map(|e| e.map(|e| e.kind()));
            assert_eq!(
                kinds,
                [Some(ErrorKind::Unsupported); 6],
                "{} with {options:?}",
                op.scheme()
            );
            for never in ["a", "b", "c", "d"] {
                assert!(
                    !op.exists(never).await.unwrap(),
                    "{never} on {}",
                    op.scheme()
                );
            }
            assert_eq!(op.read("src").await.unwrap(), "data");
        }
    }
}

#[tokio::test]
async fn a_content_type_is_stored_by_memory_and_taken_by_fs() {
    for (op, _dir) in local_backends() {
        let stored = |ct: &'static str| (op.scheme() == "memory").then_some(ct);
        let meta = op
            .write_with("t.csv", "a,b\n")
            .content_type("text/csv")
            .await
            .unwrap();
        assert_eq!(meta.content_type(), stored("text/csv"), "{}", op.scheme());
        let mut writer = op
            .writer_with("u.csv")
            .content_type("text/csv")
            .await
            .unwrap();
        writer.write_bytes("a,b\n").await.unwrap();
        writer.close().await.unwrap();
        for path in ["t.csv", "u.csv"] {
            assert_eq!(op.read(path).await.unwrap(), "a,b\n");
            let meta = op.stat(path).await.unwrap();
            assert_eq!(meta.content_type(), stored("text/csv"), "{path}");
        }
        // A copy or rename keeps the source's, unless it is given one; a plain
        // write stores none.
        op.copy("t.csv", "copy.csv").await.unwrap();
        op.copy_with("t.csv", "json")
            .content_type("application/json")
            .await
            .unwrap();
        op.rename("u.csv", "moved.csv").await.unwrap();
        op.write("t.csv", "c\n").await.unwrap();
        for (path, want) in [
            ("copy.csv", stored("text/csv")),
            ("json", stored("application/json")),
            ("moved.csv", stored("text/csv")),
            ("t.csv", None),
        ] {
            let meta = op.stat(path).await.unwrap();
            assert_eq!(meta.content_type(), want, "{path} on {}", op.scheme());
        }
    }
}

/// A copy or rename onto itself with options does what they ask, or refuses, as
/// onto another path; a rename onto itself never removes the file.
#[tokio::test]
async fn options_onto_itself_are_done_or_refused_never_skipped() {
    use std::os::unix::fs::MetadataExt;
    for (op, dir) in local_backends() {
        let scheme = op.scheme();
        let memory = scheme == "memory";
        // fs: the same file afterwards, not a copy of it (its inode, so its hard
        // links, extended attributes and owner, stay).
        let inode = || {
            std::fs::metadata(dir.path().join("f.csv"))
                .map(|m| m.ino())
                .ok()
        };
        let etag = op
            .write("f.csv", "a,b\n")
            .await
            .unwrap()
            .etag()
            .unwrap()
            .to_owned();
        let stale = op
            .copy_with("f.csv", "f.csv")
            .options(WriteOptions::new().with_if_match("\"stale\""))
            .await
            .unwrap_err();
        let want = if memory {
            ErrorKind::PreconditionFailed
        } else {
            // fs cannot replace a file only if it is a given version.
            ErrorKind::Unsupported
        };
        assert_eq!(stale.kind(), want, "{scheme}: {stale}");
        let before = inode();
        let matched = op
            .rename_with("f.csv", "f.csv")
            .options(WriteOptions::new().with_if_match(etag.as_str()))
            .await;
        assert_eq!(matched.is_ok(), memory, "{scheme}: {matched:?}");
        op.rename_with("f.csv", "./f.csv")
            .content_type("text/csv")
            .await
            .unwrap();
        // Checked after each: a second copy could take the first's freed inode.
        assert_eq!(inode(), before, "{scheme}");
        op.copy_with("f.csv", "f.csv")
            .content_type("text/plain")
            .await
            .unwrap();
        assert_eq!(op.read("f.csv").await.unwrap(), "a,b\n", "{scheme}");
        assert_eq!(inode(), before, "{scheme}");
        let stored = op
            .stat("f.csv")
            .await
            .unwrap()
            .content_type()
            .map(str::to_owned);
        assert_eq!(
            stored.as_deref(),
            memory.then_some("text/plain"),
            "{scheme}"
        );
        let exists = op
            .rename_with("f.csv", "f.csv")
            .options(
                WriteOptions::new()
                    .with_if_not_exists(true)
                    .with_content_type("x/y"),
            )
            .await
            .unwrap_err();
        assert_eq!(
            exists.kind(),
            ErrorKind::AlreadyExists,
            "{scheme}: {exists}"
        );
        assert_eq!(op.read("f.csv").await.unwrap(), "a,b\n", "{scheme}");
    }
}

/// fs onto itself looks at the file without opening it: a FIFO's open would wait
/// for a writer that never comes.
#[tokio::test]
async fn a_fifo_onto_itself_with_options_does_not_wait_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        dir.path().join("pipe"),
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let op = Operator::new(Fs::new(dir.path()).unwrap());
    let both = async {
        op.copy_with("pipe", "pipe").content_type("x/y").await?;
        op.rename_with("pipe", "./pipe").content_type("x/y").await
    };
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), both).await;
    assert!(matches!(done, Ok(Ok(()))), "{done:?}");
}
