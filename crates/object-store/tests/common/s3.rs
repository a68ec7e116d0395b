//! The S3 server the S3 tests talk to: SeaweedFS, started by `scripts/test` (or by
//! hand with `scripts/s3-server start`), found through `DIO_TEST_S3_URI` and the
//! `AWS_*` variables.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// The bucket, endpoint and region of `DIO_TEST_S3_URI`, or `None` (with a note on
/// stderr) when no server was configured. With `DIO_REQUIRE_S3=1` a missing server
/// fails the test instead.
pub fn builder(test: &str) -> Option<AmazonS3Builder> {
    let Ok(uri) = std::env::var("DIO_TEST_S3_URI") else {
        if std::env::var("DIO_REQUIRE_S3").is_ok_and(|v| v == "1") {
            panic!("DIO_REQUIRE_S3=1 but DIO_TEST_S3_URI is not set: run scripts/test");
        }
        eprintln!(
            "S3 test {test} SKIPPED: no S3 server (DIO_TEST_S3_URI unset); \
             scripts/test starts one"
        );
        return None;
    };
    // s3://bucket?endpoint=http://host:port&region=us-east-1 (no percent-encoding).
    let rest = uri
        .strip_prefix("s3://")
        .expect("DIO_TEST_S3_URI is s3://...");
    let (bucket, query) = rest.split_once('?').unwrap_or((rest, ""));
    let bucket = bucket.trim_end_matches('/');
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let region = param("region").unwrap_or_else(|| env("AWS_REGION"));
    let endpoint = param("endpoint").expect("DIO_TEST_S3_URI has an endpoint");
    Some(
        AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region(region)
            .with_access_key_id(env("AWS_ACCESS_KEY_ID"))
            .with_secret_access_key(env("AWS_SECRET_ACCESS_KEY")),
    )
}

/// Deletes everything `store` lists: at the end of a test, its own prefix (the
/// bucket is shared and outlives the test).
pub async fn empty(store: &dyn ObjectStore) {
    let all = store.list(None).map_ok(|meta| meta.location).boxed();
    store
        .delete_stream(all)
        .try_collect::<Vec<_>>()
        .await
        .expect("empty the test prefix");
}

/// A fresh prefix in the shared bucket: `t/<test>-<pid>-<nanos>-<n>/`.
pub fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t/{test}-{}-{}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test bucket under a fresh prefix (the suites delete everything they list, and
/// the bucket is shared), or `None` when no server was configured.
pub fn store(test: &str) -> Option<TestBucket> {
    builder(test).map(|b| bucket(test, b))
}

/// The bucket `builder` describes, under a fresh prefix for `test`.
pub fn bucket(test: &str, builder: AmazonS3Builder) -> TestBucket {
    let s3 = builder.build().expect("AmazonS3 for the test server");
    SeaweedOffset(PrefixStore::new(s3, unique_prefix(test)))
}

/// What the S3 tests wrap: the test bucket under a prefix of the test's own.
pub type TestBucket = SeaweedOffset<PrefixStore<AmazonS3>>;

/// Works around a SeaweedFS (4.48) listing bug: asked to list from after `a`
/// (`start-after`), it also skips every key under `a/`. This adapter delegates every
/// method, except that `list_with_offset` lists and filters on the client, which is
/// what object_store's own default `list_with_offset` does.
#[derive(Debug)]
pub struct SeaweedOffset<T>(pub T);

impl<T: fmt::Display> fmt::Display for SeaweedOffset<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for SeaweedOffset<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.0.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let offset = offset.clone();
        self.0
            .list(prefix)
            .try_filter(move |meta| std::future::ready(meta.location > offset))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.0.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.0.rename_opts(from, to, options).await
    }
}

#[async_trait]
impl<T: MultipartStore> MultipartStore for SeaweedOffset<T> {
    async fn create_multipart(&self, path: &Path) -> Result<MultipartId> {
        self.0.create_multipart(path).await
    }

    async fn put_part(
        &self,
        path: &Path,
        id: &MultipartId,
        part_idx: usize,
        data: PutPayload,
    ) -> Result<PartId> {
        self.0.put_part(path, id, part_idx, data).await
    }

    async fn complete_multipart(
        &self,
        path: &Path,
        id: &MultipartId,
        parts: Vec<PartId>,
    ) -> Result<PutResult> {
        self.0.complete_multipart(path, id, parts).await
    }

    async fn abort_multipart(&self, path: &Path, id: &MultipartId) -> Result<()> {
        self.0.abort_multipart(path, id).await
    }
}
