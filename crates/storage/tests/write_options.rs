//! What fs and memory do with the write options only S3 can honour: a storage
//! class or server-side encryption is refused with `Unsupported` by every write
//! path, never ignored; a content type is taken and not stored.

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
            ]
            .map(|e| e.map(|e| e.kind()));
            assert_eq!(
                kinds,
                [Some(ErrorKind::Unsupported); 4],
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
async fn a_content_type_is_taken_and_not_stored() {
    for (op, _dir) in local_backends() {
        let meta = op
            .write_with("t.csv", "a,b\n")
            .content_type("text/csv")
            .await
            .unwrap();
        assert_eq!(meta.content_type(), None, "{}", op.scheme());
        let mut writer = op
            .writer_with("u.csv")
            .content_type("text/csv")
            .await
            .unwrap();
        writer.write_bytes("a,b\n").await.unwrap();
        writer.close().await.unwrap();
        for path in ["t.csv", "u.csv"] {
            assert_eq!(op.read(path).await.unwrap(), "a,b\n");
            assert_eq!(op.stat(path).await.unwrap().content_type(), None);
        }
    }
}
