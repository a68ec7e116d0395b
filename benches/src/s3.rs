//! The S3 workloads: a 16 MiB and a 128 MiB object read (and a 16 MiB one
//! written) by every client, against one endpoint: SeaweedFS, or [`MemS3`] inside
//! the process.
//!
//! [`MemS3`]: crate::mem_s3::MemS3

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use io_executor::Executor;
use object_store::{ObjectStore, ObjectStoreExt};
use rand::{Rng, SeedableRng};

use crate::fs::{Sizes, Workload};

/// The seed's S3 workloads (the fs list without `buf_read` and `range_read_4k`).
pub const WORKLOADS: [Workload; 8] = [
    Workload::Read,
    Workload::RangeRead,
    Workload::ReadHalf,
    Workload::Write,
    Workload::ParallelRangeRead(2),
    Workload::ParallelRangeRead(4),
    Workload::ParallelRangeRead(8),
    Workload::ParallelRangeRead(16),
];

/// One client of an S3 endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Our `Operator` on the S3 backend, IO on a dedicated pool.
    Ours,
    /// hyper's pooled client on the caller's runtime, unsigned, body collected: the
    /// floor (only against an endpoint that takes unsigned requests).
    RawHyper,
    /// OpenDAL's S3 service on the caller's runtime.
    OpenDal,
    /// object_store's `AmazonS3` on the caller's runtime.
    ObjectStore,
    /// OpenDAL, its `Buffer` (a list of body frames) made contiguous with
    /// `to_bytes()`: the same result ours and object_store hand back. For
    /// information; the bars compare against plain [`Method::OpenDal`].
    OpenDalContiguous,
}

impl Method {
    /// Every client, ours first.
    pub const ALL: [Method; 5] = [
        Method::Ours,
        Method::RawHyper,
        Method::OpenDal,
        Method::ObjectStore,
        Method::OpenDalContiguous,
    ];

    /// The name used in bench ids and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ours => "ours_dedicated",
            Method::RawHyper => "raw_hyper",
            Method::OpenDal => "opendal",
            Method::ObjectStore => "object_store",
            Method::OpenDalContiguous => "opendal_to_bytes",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the objects live.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `http://host:port`.
    pub url: String,
    /// The bucket.
    pub bucket: String,
    /// The region to sign for.
    pub region: String,
    /// Access key id and secret.
    pub credentials: (String, String),
    /// `true` if unsigned requests are accepted (enables [`Method::RawHyper`]).
    pub unsigned_ok: bool,
    /// A key prefix (empty, or ending in `/`) the objects go under.
    pub prefix: String,
}

impl Endpoint {
    /// The SeaweedFS (or other) endpoint of `DIO_TEST_S3_URI` and the `AWS_*`
    /// variables, as `scripts/s3-server start` prints them; `None` if unset.
    pub fn from_env() -> Option<Self> {
        Self::from_uri(&std::env::var("DIO_TEST_S3_URI").ok()?)
    }

    /// `s3://bucket/prefix?endpoint=...&region=...`, credentials from
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; `None` if any is missing.
    pub fn from_uri(uri: &str) -> Option<Self> {
        // The URI means what it means to the S3 backend.
        let s3 = storage::services::s3::S3Builder::from_uri(uri)
            .ok()?
            .build()
            .ok()?;
        Some(Self {
            url: s3.endpoint()?.to_owned(),
            bucket: s3.bucket().to_owned(),
            prefix: s3.root().to_owned(),
            region: s3.region().to_owned(),
            credentials: (
                std::env::var("AWS_ACCESS_KEY_ID").ok()?,
                std::env::var("AWS_SECRET_ACCESS_KEY").ok()?,
            ),
            unsigned_ok: false,
        })
    }
}

/// Every client over the same endpoint, the objects uploaded.
#[derive(Debug)]
pub struct Fixture {
    endpoint: Endpoint,
    prefix: String,
    /// The caller: a multi-thread runtime, as a query engine's would be.
    pub caller: tokio::runtime::Runtime,
    ours: storage::Operator,
    hyper: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
    payload: Bytes,
    sizes: Sizes,
    rng: std::sync::Mutex<rand::rngs::StdRng>,
}

impl Fixture {
    /// Uploads `bench/small` (16 MiB) and `bench/big` (128 MiB) through our client
    /// and builds the others.
    ///
    /// # Errors
    ///
    /// A one-line message when a client cannot be built or the upload fails (a
    /// missing bucket, wrong credentials, an endpoint that does not answer).
    pub fn new(endpoint: Endpoint, dedicated: Executor, sizes: Sizes) -> Result<Self, String> {
        let prefix = format!("{}bench/", endpoint.prefix);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut data = vec![0_u8; sizes.big() as usize];
        rng.fill(&mut data[..]);
        let data = Bytes::from(data);
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the caller runtime: {e}"))?;
        let (key, secret) = endpoint.credentials.clone();
        let s3 = storage::services::s3::S3Builder::new(&endpoint.bucket)
            .endpoint(&endpoint.url)
            .region(&endpoint.region)
            .root(&prefix)
            .credentials(storage::services::s3::Credentials::new(&key, &secret))
            .build()
            .map_err(|e| format!("cannot configure S3 for {}: {e}", endpoint.url))?;
        let ours = storage::Operator::new(s3).with_executor(dedicated);
        let blocking = ours.blocking();
        let where_ = format!("bucket {:?} at {}", endpoint.bucket, endpoint.url);
        blocking
            .write("small", data.slice(..sizes.small as usize))
            .and_then(|_| blocking.write("big", data.clone()))
            .map_err(|e| {
                format!(
                    "cannot upload the benchmark objects to {where_}: {}",
                    crate::error_chain(&e)
                )
            })?;
        let hyper = {
            let _guard = caller.enter();
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(32)
                .build_http()
        };
        let opendal = opendal::Operator::new(
            opendal::services::S3::default()
                .bucket(&endpoint.bucket)
                .endpoint(&endpoint.url)
                .region(&endpoint.region)
                .access_key_id(&key)
                .secret_access_key(&secret)
                .root(&prefix)
                .disable_config_load()
                .disable_ec2_metadata(),
        )
        .map_err(|e| format!("cannot configure OpenDAL's S3: {e}"))?
        .finish();
        let object_store: Arc<dyn ObjectStore> = Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&endpoint.bucket)
                .with_endpoint(&endpoint.url)
                .with_region(&endpoint.region)
                .with_access_key_id(&key)
                .with_secret_access_key(&secret)
                .with_allow_http(true)
                .build()
                .map_err(|e| format!("cannot configure object_store's S3: {e}"))?,
        );
        Ok(Self {
            endpoint,
            prefix,
            caller,
            ours,
            hyper,
            opendal,
            object_store,
            payload: data.slice(..sizes.small as usize),
            sizes,
            rng: std::sync::Mutex::new(rng),
        })
    }

    /// `true` if `method` can run against this endpoint.
    pub fn supports(&self, method: Method) -> bool {
        method != Method::RawHyper || self.endpoint.unsigned_ok
    }

    fn random_offset(&self, below: u64) -> u64 {
        self.rng.lock().expect("rng").random_range(0..below)
    }

    /// One iteration of `workload` by `method`; returns the bytes moved.
    ///
    /// # Panics
    ///
    /// If a request fails or moves the wrong number of bytes.
    pub fn run(&self, method: Method, workload: Workload) -> u64 {
        let half = self.sizes.half();
        let moved = self.caller.block_on(async {
            match workload {
                Workload::Read => self.range(method, "small", None).await,
                Workload::RangeRead => {
                    let offset = self.random_offset(half);
                    self.range(method, "small", Some(offset..offset + half))
                        .await
                }
                Workload::ReadHalf => self.range(method, "small", Some(0..half)).await,
                Workload::Write => self.write(method).await,
                Workload::ParallelRangeRead(n) => {
                    let reads = (0..n as u64)
                        .map(|i| self.range(method, "big", Some(i * half..(i + 1) * half)));
                    futures::future::join_all(reads).await.into_iter().sum()
                }
                other => panic!("{other} is not an S3 workload"),
            }
        });
        assert_eq!(
            moved,
            workload.bytes(),
            "{method} {workload}: wrong byte count"
        );
        moved
    }

    async fn range(&self, method: Method, name: &str, range: Option<std::ops::Range<u64>>) -> u64 {
        match method {
            Method::Ours => match range {
                Some(r) => self.ours.read_range(name, r).await,
                None => self.ours.read(name).await,
            }
            .expect("read")
            .len() as u64,
            Method::RawHyper => {
                let url = format!(
                    "{}/{}/{}{name}",
                    self.endpoint.url, self.endpoint.bucket, self.prefix
                );
                let mut req = http::Request::get(url);
                if let Some(r) = &range {
                    req = req.header("range", format!("bytes={}-{}", r.start, r.end - 1));
                }
                let response = self
                    .hyper
                    .request(req.body(Full::new(Bytes::new())).expect("request"))
                    .await
                    .expect("GET");
                assert!(response.status().is_success(), "{}", response.status());
                response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes()
                    .len() as u64
            }
            Method::OpenDal => match range {
                Some(r) => self.opendal.read_with(name).range(r).await,
                None => self.opendal.read(name).await,
            }
            .expect("read")
            .len() as u64,
            Method::OpenDalContiguous => match range {
                Some(r) => self.opendal.read_with(name).range(r).await,
                None => self.opendal.read(name).await,
            }
            .expect("read")
            .to_bytes()
            .len() as u64,
            Method::ObjectStore => {
                let path = object_store::path::Path::from(format!("{}{name}", self.prefix));
                match range {
                    Some(r) => self
                        .object_store
                        .get_range(&path, r)
                        .await
                        .expect("get_range"),
                    None => self
                        .object_store
                        .get(&path)
                        .await
                        .expect("get")
                        .bytes()
                        .await
                        .expect("body"),
                }
                .len() as u64
            }
        }
    }

    async fn write(&self, method: Method) -> u64 {
        let name = format!("written-{method}");
        let data = self.payload.clone();
        match method {
            Method::Ours => self
                .ours
                .write(&name, data)
                .await
                .expect("write")
                .content_length(),
            Method::RawHyper => {
                let url = format!(
                    "{}/{}/{}{name}",
                    self.endpoint.url, self.endpoint.bucket, self.prefix
                );
                let response = self
                    .hyper
                    .request(
                        http::Request::put(url)
                            .body(Full::new(data))
                            .expect("request"),
                    )
                    .await
                    .expect("PUT");
                assert!(response.status().is_success(), "{}", response.status());
                drop(response.into_body().collect().await);
                self.sizes.small
            }
            Method::OpenDal | Method::OpenDalContiguous => {
                self.opendal.write(&name, data).await.expect("write");
                self.sizes.small
            }
            Method::ObjectStore => {
                let path = object_store::path::Path::from(format!("{}{name}", self.prefix));
                self.object_store
                    .put(&path, data.into())
                    .await
                    .expect("put");
                self.sizes.small
            }
        }
    }
}
