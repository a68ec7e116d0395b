//! Integrity and big objects on SeaweedFS: flexible checksums on single and
//! multipart writes (checked by the server on the way in, by us on full reads),
//! copies through UploadPartCopy, server-side encryption, storage class and content
//! type. Contents are checked by SHA-256.

mod common_s3;
mod conformance;

use conformance::{random_bytes, sha};
use storage::services::s3::{Checksum, S3Builder};
use storage::{CustomerKey, Encryption, ErrorKind, Operator, WriteOptions};

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A builder on the server that has the KMS key, under a fresh prefix, with 5 MiB
/// parts from 5 MiB on.
fn builder(extras: &common_s3::Extras, test: &str) -> S3Builder {
    S3Builder::from_uri(&extras.uri)
        .unwrap()
        .root(common_s3::unique_root(test))
        .part_size(5 << 20)
        .multipart_threshold(5 << 20)
        .part_concurrency(3)
}

/// A multipart object's ETag is `"<md5 of part md5s>-<parts>"`.
fn parts_in_etag(etag: Option<&str>) -> Option<u32> {
    etag?.trim_matches('"').rsplit_once('-')?.1.parse().ok()
}

#[test]
fn checksums_on_single_and_multipart_writes_round_trip() {
    let Some(extras) = common_s3::extras("checksums") else {
        return;
    };
    current_thread().block_on(async {
        for checksum in [
            Some(Checksum::Crc64Nvme),
            Some(Checksum::Crc32c),
            Some(Checksum::Crc32),
            None,
        ] {
            let s3 = builder(&extras, "checksums")
                .checksum(checksum)
                .build()
                .unwrap();
            assert_eq!(s3.checksum(), checksum);
            let op = Operator::new(s3);
            let small = random_bytes(100_000, 1);
            op.write("small", small.clone()).await.unwrap();
            assert_eq!(op.read("small").await.unwrap(), small, "{checksum:?}");
            // Three parts, the last one short; the server checks each part and
            // the assembled object against what we sent.
            let big = random_bytes((11 << 20) + 3, 2);
            op.write("big", big.clone()).await.unwrap();
            let stat = op.stat("big").await.unwrap();
            assert_eq!(parts_in_etag(stat.etag()), Some(3), "{stat:?}");
            assert_eq!(
                sha(&op.read("big").await.unwrap()),
                sha(&big),
                "{checksum:?}"
            );
            // Ranged reads carry no checksum and still read right.
            let got = op.read_range("big", 5 << 20..(5 << 20) + 10).await.unwrap();
            assert_eq!(got, big.slice(5 << 20..(5 << 20) + 10));
        }
    });
}

#[test]
fn copies_above_the_threshold_are_made_of_parts() {
    let Some(extras) = common_s3::extras("multipart_copy") else {
        return;
    };
    let s3 = builder(&extras, "multipart_copy")
        .multipart_copy_threshold(6 << 20)
        .copy_part_size(5 << 20)
        .build()
        .unwrap();
    let op = Operator::new(s3);
    current_thread().block_on(async {
        let data = random_bytes((17 << 20) + 5, 3);
        op.write_with("src/big.csv", data.clone())
            .content_type("text/csv")
            .await
            .unwrap();
        op.copy("src/big.csv", "dst/big.csv").await.unwrap();
        let stat = op.stat("dst/big.csv").await.unwrap();
        assert_eq!(stat.content_length(), data.len() as u64);
        assert_eq!(
            parts_in_etag(stat.etag()),
            Some(4),
            "4 copied parts: {stat:?}"
        );
        assert_eq!(
            stat.content_type(),
            Some("text/csv"),
            "kept from the source"
        );
        assert_eq!(sha(&op.read("dst/big.csv").await.unwrap()), sha(&data));
        // Onto itself, in parts too: a new content type, the same bytes.
        op.copy_with("dst/big.csv", "dst/big.csv")
            .content_type("text/plain")
            .await
            .unwrap();
        let stat = op.stat("dst/big.csv").await.unwrap();
        assert_eq!(stat.content_type(), Some("text/plain"));
        assert_eq!(parts_in_etag(stat.etag()), Some(4), "{stat:?}");
        assert_eq!(sha(&op.read("dst/big.csv").await.unwrap()), sha(&data));

        // Below the threshold: one CopyObject.
        let small = random_bytes(1 << 20, 4);
        op.write("src/small", small.clone()).await.unwrap();
        op.copy("src/small", "dst/small").await.unwrap();
        let stat = op.stat("dst/small").await.unwrap();
        assert_eq!(parts_in_etag(stat.etag()), None, "{stat:?}");
        assert_eq!(op.read("dst/small").await.unwrap(), small);

        // Conditional and renamed, in parts too.
        let err = op
            .copy_with("src/big.csv", "dst/big.csv")
            .if_not_exists(true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        op.rename("dst/big.csv", "moved/big.csv").await.unwrap();
        assert!(!op.exists("dst/big.csv").await.unwrap());
        assert_eq!(sha(&op.read("moved/big.csv").await.unwrap()), sha(&data));
        let err = op.copy("src/missing", "dst/x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    });
}

#[test]
fn content_type_and_storage_class_are_stored() {
    let Some(extras) = common_s3::extras("object_options") else {
        return;
    };
    let op = Operator::new(builder(&extras, "object_options").build().unwrap());
    current_thread().block_on(async {
        op.write_with("t.parquet", vec![1_u8; 1000])
            .content_type("application/vnd.apache.parquet")
            .storage_class("STANDARD_IA")
            .await
            .unwrap();
        let stat = op.stat("t.parquet").await.unwrap();
        assert_eq!(stat.content_type(), Some("application/vnd.apache.parquet"));
        // Onto itself, a copy (or a rename, which is then that copy) changes what
        // is stored with the object and keeps its bytes.
        op.copy_with("t.parquet", "t.parquet")
            .content_type("application/octet-stream")
            .await
            .unwrap();
        assert_eq!(
            op.stat("t.parquet").await.unwrap().content_type(),
            Some("application/octet-stream")
        );
        op.rename_with("t.parquet", "./t.parquet")
            .content_type("application/x-parquet")
            .await
            .unwrap();
        assert_eq!(
            op.stat("t.parquet").await.unwrap().content_type(),
            Some("application/x-parquet")
        );
        assert_eq!(op.read("t.parquet").await.unwrap(), vec![1_u8; 1000]);
        // Through a multipart writer: the options go with CreateMultipartUpload.
        let mut writer = op
            .writer_with("big.json")
            .content_type("application/json")
            .storage_class("STANDARD_IA")
            .await
            .unwrap();
        let data = random_bytes(11 << 20, 5);
        writer.write_bytes(data.clone()).await.unwrap();
        writer.close().await.unwrap();
        let stat = op.stat("big.json").await.unwrap();
        assert_eq!(stat.content_type(), Some("application/json"));
        assert_eq!(sha(&op.read("big.json").await.unwrap()), sha(&data));
        // The server sees the class: one it does not know is refused.
        let err = op
            .write_with("bad", "x")
            .storage_class("NO_SUCH_CLASS")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert_eq!(err.context("code"), Some("InvalidStorageClass"), "{err}");
    });
}

#[test]
fn server_side_encryption_s3_managed_and_kms() {
    let Some(extras) = common_s3::extras("sse") else {
        return;
    };
    let op = Operator::new(builder(&extras, "sse").build().unwrap());
    current_thread().block_on(async {
        for (name, encryption) in [
            ("sse-s3", Encryption::S3Managed),
            (
                "sse-kms",
                Encryption::Kms {
                    key_id: Some(extras.kms_key.clone()),
                },
            ),
        ] {
            let data = random_bytes(300_000, 6);
            op.write_with(name, data.clone())
                .encryption(encryption.clone())
                .await
                .unwrap();
            assert_eq!(op.read(name).await.unwrap(), data, "{name}");
            let big = random_bytes(11 << 20, 7);
            let mut writer = op
                .writer_with(&format!("{name}-big"))
                .encryption(encryption)
                .await
                .unwrap();
            writer.write_bytes(big.clone()).await.unwrap();
            writer.close().await.unwrap();
            assert_eq!(
                sha(&op.read(&format!("{name}-big")).await.unwrap()),
                sha(&big),
                "{name}"
            );
        }
        // A KMS key the server does not have: the write fails, nothing is stored.
        let err = op
            .write_with("sse-kms-unknown", "x")
            .encryption(Encryption::Kms {
                key_id: Some("no-such-key".into()),
            })
            .await
            .unwrap_err();
        assert!(err.context("status").is_some(), "{err}");
        assert!(!op.exists("sse-kms-unknown").await.unwrap());
    });
}

#[test]
fn server_side_encryption_with_a_customer_key() {
    let Some(extras) = common_s3::extras("sse_c") else {
        return;
    };
    let root = common_s3::unique_root("sse_c");
    let key = CustomerKey::new([42; 32]);
    let with_key = |key: CustomerKey| {
        Operator::new(
            S3Builder::from_uri(&extras.uri)
                .unwrap()
                .root(&root)
                .part_size(5 << 20)
                .multipart_threshold(5 << 20)
                .multipart_copy_threshold(6 << 20)
                .copy_part_size(5 << 20)
                .server_side_encryption(Encryption::Customer(key))
                .build()
                .unwrap(),
        )
    };
    let op = with_key(key.clone());
    current_thread().block_on(async {
        let data = random_bytes(200_000, 8);
        op.write("small", data.clone()).await.unwrap();
        assert_eq!(op.read("small").await.unwrap(), data);
        assert_eq!(
            op.read_range("small", 10..20).await.unwrap(),
            data.slice(10..20)
        );
        let big = random_bytes(12 << 20, 9);
        op.write("big", big.clone()).await.unwrap();
        assert_eq!(sha(&op.read("big").await.unwrap()), sha(&big));
        // Copies read the source with the key and write the target with it.
        op.copy("small", "small-copy").await.unwrap();
        assert_eq!(op.read("small-copy").await.unwrap(), data);
        match op.copy("big", "big-copy").await {
            Ok(()) => assert_eq!(sha(&op.read("big-copy").await.unwrap()), sha(&big)),
            // SeaweedFS 4.48 does not implement UploadPartCopy of SSE-C objects: it
            // says so (501 NotImplemented), once, and nothing is left behind.
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
                assert_eq!(e.context("code"), Some("NotImplemented"), "{e}");
                assert_eq!(e.context("attempts"), None, "not retried: {e}");
                assert!(!op.exists("big-copy").await.unwrap());
            }
        }

        // Without the key, or with another, nothing is read.
        let no_key = Operator::new(
            S3Builder::from_uri(&extras.uri)
                .unwrap()
                .root(&root)
                .build()
                .unwrap(),
        );
        let err = no_key.read("small").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let err = with_key(CustomerKey::new([7; 32]))
            .read("small")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    });
    // The key shows nowhere.
    let options = WriteOptions::new().with_encryption(Encryption::Customer(key.clone()));
    for text in [
        format!("{op:?}"),
        format!("{options:?}"),
        format!("{key:?}"),
    ] {
        assert!(!text.contains("KioqKioq"), "{text}");
    }
}

/// A copy keeps its source's tags: CopyObject copies them itself, and a copy in
/// parts (above the multipart copy threshold), a new upload, is given them. Tags
/// are set and read with requests of their own: the backend has no call for them.
#[test]
fn copies_keep_the_source_tags() {
    let Some(_) = common_s3::extras("copy_tags") else {
        return;
    };
    let root = common_s3::unique_root("copy_tags");
    let s3 = S3Builder::from_uri(&std::env::var("DIO_TEST_S3_URI").unwrap())
        .unwrap()
        .root(root.as_str())
        .multipart_copy_threshold(6 << 20)
        .copy_part_size(5 << 20)
        .build()
        .unwrap();
    let op = Operator::new(s3);
    let tags = [("team", "query engine"), ("tier", "a+b=c/d")];
    let tag_set = |body: &[u8]| {
        let text = std::str::from_utf8(body).unwrap();
        let mut found: Vec<(String, String)> = text
            .split("<Tag>")
            .skip(1)
            .map(|tag| {
                let field = |name: &str| {
                    let from = tag.find(&format!("<{name}>")).unwrap() + name.len() + 2;
                    let to = tag.find(&format!("</{name}>")).unwrap();
                    tag[from..to].to_owned()
                };
                (field("Key"), field("Value"))
            })
            .collect();
        found.sort();
        found
    };
    let want: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    current_thread().block_on(async {
        let body = format!(
            "<Tagging><TagSet>{}</TagSet></Tagging>",
            tags.iter()
                .map(|(k, v)| format!("<Tag><Key>{k}</Key><Value>{v}</Value></Tag>"))
                .collect::<String>()
        );
        for (name, size) in [("small", 1_usize << 20), ("big", (11 << 20) + 3)] {
            let data = random_bytes(size, 6);
            let source = format!("src/{name}");
            op.write(&source, data.clone()).await.unwrap();
            let (status, _, answer) = common_s3::signed(
                "PUT",
                &format!("{root}{source}"),
                "tagging=",
                &[],
                body.clone().into_bytes(),
            )
            .await;
            assert!(status.is_success(), "{status}: {answer:?}");
            let (to, typed, moved) = (
                format!("dst/{name}"),
                format!("typed/{name}"),
                format!("moved/{name}"),
            );
            op.copy(&source, &to).await.unwrap();
            op.copy_with(&source, &typed)
                .content_type("text/plain")
                .await
                .unwrap();
            op.rename(&typed, &moved).await.unwrap();
            for key in [&source, &to, &moved] {
                let (status, _, answer) =
                    common_s3::signed("GET", &format!("{root}{key}"), "tagging=", &[], Vec::new())
                        .await;
                assert!(status.is_success(), "{key}: {status}: {answer:?}");
                assert_eq!(tag_set(&answer), want, "{key} ({size} bytes)");
                assert_eq!(sha(&op.read(key).await.unwrap()), sha(&data), "{key}");
            }
        }
        op.remove_all("").await.unwrap();
    });
}
