//! object_store's conformance suite through `IoObjectStore` over `AmazonS3` against
//! SeaweedFS (`DIO_TEST_S3_URI`; skipped with a note when unset, failed when
//! `DIO_REQUIRE_S3=1`). Each test works under a prefix of its own in the shared
//! bucket (`PrefixStore`), because the suite deletes everything it lists.
//!
//! SeaweedFS supports `PutMode::Create`, `PutMode::Update` (ETag match, the default
//! `S3ConditionalPut`), and copy-if-not-exists through `S3CopyIfNotExists::Multipart`,
//! so `put_opts(.., true)` and `copy_if_not_exists` run as they do on AWS.
//!
//! SeaweedFS skips the keys under `a/` when asked to list from after `a`, which
//! `put_get_delete_list` checks; the bucket is therefore wrapped in
//! [`common::s3::SeaweedOffset`], which filters `list_with_offset` on the client (as
//! object_store's default does) and delegates everything else.

mod common;

use dio_object_store::IoObjectStore;
use object_store::ObjectStoreExt;
use object_store::aws::{AmazonS3Builder, Checksum, S3CopyIfNotExists};
use object_store::integration::*;
use object_store::path::Path;

fn wrap(test: &str, builder: AmazonS3Builder) -> IoObjectStore<common::s3::TestBucket> {
    IoObjectStore::new(common::s3::bucket(test, builder), common::executor(test))
}

#[tokio::test]
async fn s3_suite() {
    let Some(builder) = common::s3::builder("s3_suite") else {
        return;
    };
    let builder = builder.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    let store = wrap("s3-suite", builder);
    put_get_delete_list(&store).await;
    list_with_offset_exclusivity(&store).await;
    get_opts(&store).await;
    list_uses_directories_correctly(&store).await;
    list_with_delimiter(&store).await;
    rename_and_copy(&store).await;
    stream_get(&store).await;
    // The MultipartStore calls go through the wrapper too.
    multipart(&store, &store).await;
    multipart_race_condition(&store, true).await;
    multipart_out_of_order(&store).await;
    put_get_attributes(&store).await;
    copy_if_not_exists(&store).await;
    put_opts(&store, true).await;
    copy_rename_nonexistent_object(&store).await;
    common::s3::empty(&store).await;
}

#[tokio::test]
async fn s3_suite_unsigned_payload_and_sha256_checksums() {
    let Some(builder) = common::s3::builder("s3_suite_variants") else {
        return;
    };
    let unsigned = wrap("s3-unsigned", builder.clone().with_unsigned_payload(true));
    put_get_delete_list(&unsigned).await;
    common::s3::empty(&unsigned).await;
    let sha = wrap(
        "s3-sha256",
        builder.with_checksum_algorithm(Checksum::SHA256),
    );
    put_get_delete_list(&sha).await;
    common::s3::empty(&sha).await;
}

#[tokio::test]
async fn s3_get_nonexistent_location() {
    let Some(builder) = common::s3::builder("s3_get_nonexistent_location") else {
        return;
    };
    let store = wrap("s3-missing", builder);
    let err = get_nonexistent_object(&store, Some(Path::from("nonexistentname")))
        .await
        .unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

/// Only the read half of object_store's nonexistent-bucket tests: SeaweedFS creates
/// a bucket on the first `put` to it, where AWS answers NotFound.
#[tokio::test]
async fn s3_get_from_a_nonexistent_bucket() {
    let Some(builder) = common::s3::builder("s3_get_from_a_nonexistent_bucket") else {
        return;
    };
    let store = wrap("s3-nobucket", builder.with_bucket_name("nonexistentname"));
    let err = store.get(&Path::from("nonexistentname")).await.unwrap_err();
    assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn s3_delete_nonexistent_location() {
    let Some(builder) = common::s3::builder("s3_delete_nonexistent_location") else {
        return;
    };
    let store = wrap("s3-delete-missing", builder);
    store.delete(&Path::from("nonexistentname")).await.unwrap();
}

/// The plain-thread subset: no tokio runtime on the caller's side at all.
#[test]
fn s3_plain_thread_subset() {
    let Some(builder) = common::s3::builder("s3_plain_thread_subset") else {
        return;
    };
    let store = wrap("s3-plain", builder);
    futures::executor::block_on(async {
        put_get_delete_list(&store).await;
        list_uses_directories_correctly(&store).await;
        list_with_delimiter(&store).await;

        let p = Path::from("manual_upload");
        let mut upload = store.put_multipart(&p).await.unwrap();
        upload.put_part(vec![1_u8; 5 << 20].into()).await.unwrap();
        upload.put_part("45678".into()).await.unwrap();
        upload.complete().await.unwrap();
        assert_eq!(store.head(&p).await.unwrap().size, (5 << 20) + 5);
        common::s3::empty(&store).await;
    });
}

/// Our S3 backend's copy with a new content type, read back by object_store's own
/// client: the content type changes and the rest of what the source carries
/// (content headers, user metadata; written here by object_store) is kept, by one
/// CopyObject and by a copy in parts alike, onto another key and onto itself.
/// (The write id a copy in parts carries is its own, not the source's.)
#[tokio::test]
async fn our_copy_with_a_content_type_keeps_the_rest_of_the_metadata() {
    use object_store::{Attribute, Attributes, ObjectStore, PutPayload};
    let Some(builder) = common::s3::builder("copy_metadata") else {
        return;
    };
    let prefix = common::s3::unique_prefix("copy-metadata");
    let theirs = object_store::prefix::PrefixStore::new(builder.build().unwrap(), prefix.as_str());
    let uri = std::env::var("DIO_TEST_S3_URI").unwrap();
    let ours = storage::Operator::new(
        storage::services::s3::S3Builder::from_uri(&uri)
            .unwrap()
            .root(prefix.as_str())
            .multipart_copy_threshold(6 << 20)
            .copy_part_size(5 << 20)
            .build()
            .unwrap(),
    )
    .with_executor(common::executor("copy-metadata"));
    let attributes = Attributes::from_iter([
        (Attribute::ContentType, "application/x-ndjson"),
        (Attribute::ContentEncoding, "gzip"),
        (Attribute::CacheControl, "max-age=60"),
        (Attribute::ContentDisposition, "attachment"),
        (Attribute::Metadata("team".into()), "query"),
    ]);
    let with = |content_type: &str| {
        let mut want = attributes.clone();
        want.insert(Attribute::ContentType, content_type.to_owned().into());
        want
    };
    // Below the multipart copy threshold (one CopyObject) and above it (parts).
    for (name, size) in [("small", 1_usize << 20), ("big", (11 << 20) + 3)] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let source = Path::from(format!("src/{name}"));
        theirs
            .put_opts(
                &source,
                PutPayload::from(data.clone()),
                attributes.clone().into(),
            )
            .await
            .unwrap();
        let (from, to) = (format!("src/{name}"), format!("dst/{name}"));
        ours.copy_with(&from, &to)
            .content_type("text/plain")
            .await
            .unwrap();
        ours.copy_with(&from, &from)
            .content_type("text/csv")
            .await
            .unwrap();
        for (key, content_type) in [(to.as_str(), "text/plain"), (from.as_str(), "text/csv")] {
            let got = theirs.get(&Path::from(key)).await.unwrap();
            // A copy in parts is a new upload, which carries its own write id
            // (see the S3 backend's docs), never the source's.
            let mut attributes = got.attributes.clone();
            attributes.remove(&Attribute::Metadata("dio-write-id".into()));
            assert_eq!(attributes, with(content_type), "{key} ({size} bytes)");
            assert_eq!(got.bytes().await.unwrap(), data, "{key}");
        }
    }
    common::s3::empty(&theirs).await;
}
