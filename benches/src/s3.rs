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

use crate::Got;
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
    /// Our `Operator` on the S3 backend, IO on a dedicated pool (CRC64NVME
    /// checksums on every write and full read: the default).
    Ours,
    /// The same without checksums: the price of integrity, by comparison.
    OursNoChecksum,
    /// Ours with writes unchecked (`S3Builder::write_checks(false)`: keys as S3
    /// has them, one request a write): the price of the fs meaning of
    /// directories, by comparison. Writes only (its reads are ours').
    OursUnchecked,
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
    pub const ALL: [Method; 7] = [
        Method::Ours,
        Method::OursNoChecksum,
        Method::OursUnchecked,
        Method::RawHyper,
        Method::OpenDal,
        Method::ObjectStore,
        Method::OpenDalContiguous,
    ];

    /// The name used in bench ids and tables.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ours => "ours_dedicated",
            Method::OursNoChecksum => "ours_no_checksum",
            Method::OursUnchecked => "ours_unchecked",
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
    /// The `s3://` URI it was made from, if any: our client is built from it (its
    /// options, credentials from the provider chain).
    pub uri: Option<String>,
    /// `http://host:port`; `None`: AWS's endpoint for the region.
    pub url: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The region to sign for.
    pub region: String,
    /// The credentials every client signs with; `None`: each client finds its own
    /// (ours through the provider chain, the others through theirs). Set to ours
    /// once our client has fetched them ([`signing_as`](Self::signing_as)), so that
    /// the peers sign as the same identity wherever it came from (a profile, a
    /// role), with its session token.
    pub credentials: Option<storage::services::s3::Credentials>,
    /// `true` if unsigned requests are accepted (enables [`Method::RawHyper`]).
    pub unsigned_ok: bool,
    /// A key prefix (empty, or ending in `/`) the objects go under.
    pub prefix: String,
}

impl Endpoint {
    /// Our S3 client's builder for this endpoint: from the URI when there is one
    /// (its options, credentials from the provider chain), else from the fields.
    ///
    /// # Errors
    ///
    /// The S3 backend's message for a URI it does not take.
    pub fn ours(&self) -> Result<storage::services::s3::S3Builder, String> {
        use storage::services::s3::S3Builder;
        if let Some(uri) = &self.uri {
            return S3Builder::from_uri(uri).map_err(|e| e.to_string());
        }
        let mut builder = S3Builder::new(&self.bucket).region(&self.region);
        if let Some(url) = &self.url {
            builder = builder.endpoint(url);
        }
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials(credentials.clone());
        }
        Ok(builder)
    }

    /// This endpoint with the credentials `s3` signs with now (fetched by its
    /// first request) for every client; unchanged if it has none (anonymous).
    pub fn signing_as(mut self, s3: &storage::services::s3::S3) -> Self {
        if let Some(credentials) = s3.current_credentials() {
            self.credentials = Some(credentials);
        }
        self
    }

    /// object_store's `AmazonS3` builder for this endpoint (credentials: the
    /// endpoint's, else object_store's own search from the environment).
    pub fn object_store(&self) -> object_store::aws::AmazonS3Builder {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_region(&self.region)
            .with_allow_http(true);
        if let Some(url) = &self.url {
            builder = builder.with_endpoint(url);
        }
        if let Some(credentials) = &self.credentials {
            builder = builder
                .with_access_key_id(credentials.access_key_id())
                .with_secret_access_key(credentials.secret_access_key());
            if let Some(token) = credentials.session_token() {
                builder = builder.with_token(token);
            }
        }
        builder
    }

    /// The in-process endpoint `server` (it takes any credentials, signed or not).
    pub fn in_process(server: &crate::mem_s3::MemS3) -> Self {
        Self {
            uri: None,
            url: Some(server.endpoint()),
            bucket: server.bucket().to_owned(),
            region: "us-east-1".into(),
            credentials: Some(storage::services::s3::Credentials::new(
                "bench-key",
                "bench-secret",
            )),
            unsigned_ok: true,
            prefix: String::new(),
        }
    }

    /// The SeaweedFS (or other) endpoint of `DIO_TEST_S3_URI` and the `AWS_*`
    /// variables, as `scripts/s3-server start` prints them; `None` if unset.
    pub fn from_env() -> Option<Self> {
        Self::from_uri(&std::env::var("DIO_TEST_S3_URI").ok()?).ok()
    }

    /// `s3://bucket/prefix[?endpoint=...&region=...]`: a custom endpoint, or AWS's
    /// when none is given. Our client takes its credentials from the provider
    /// chain; the others from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` when
    /// set, else from their own.
    ///
    /// # Errors
    ///
    /// The S3 backend's message for a URI it does not take.
    pub fn from_uri(uri: &str) -> Result<Self, String> {
        // The URI means what it means to the S3 backend.
        let s3 = storage::services::s3::S3Builder::from_uri(uri)
            .and_then(|b| b.build())
            .map_err(|e| e.to_string())?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            uri: Some(uri.to_owned()),
            url: s3.endpoint().map(str::to_owned),
            bucket: s3.bucket().to_owned(),
            prefix: s3.root().to_owned(),
            region: s3.region().to_owned(),
            credentials: env("AWS_ACCESS_KEY_ID")
                .zip(env("AWS_SECRET_ACCESS_KEY"))
                .map(|(key, secret)| {
                    let credentials = storage::services::s3::Credentials::new(key, secret);
                    match env("AWS_SESSION_TOKEN") {
                        Some(token) => credentials.with_session_token(token),
                        None => credentials,
                    }
                }),
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
    ours_s3: storage::services::s3::S3,
    ours_no_checksum: storage::Operator,
    ours_unchecked: storage::Operator,
    hyper: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
    opendal: opendal::Operator,
    object_store: Arc<dyn ObjectStore>,
    payload: Bytes,
    /// What `big` holds (`small` is its start).
    data: Bytes,
    sizes: Sizes,
    rng: std::sync::Mutex<rand::rngs::StdRng>,
    /// The objects were removed (or their removal failed and was said) by
    /// [`remove`](Fixture::remove): the drop leaves them be.
    removed: bool,
}

/// The endpoint as the peers use it, and the peers.
type Peers = (Endpoint, opendal::Operator, Arc<dyn ObjectStore>);

/// The objects a fixture writes are deleted when it is dropped, from a real
/// endpoint (the in-process server goes with its runtime): a run leaves nothing in
/// the user's bucket.
impl Drop for Fixture {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("{e}");
        }
    }
}

/// Removes everything under the run's own prefix (`ours` is rooted there).
fn remove_written(ours: &storage::Operator, bucket: &str, prefix: &str) -> Result<(), String> {
    ours.blocking().remove_all("").map_err(|e| {
        format!(
            "the benchmark objects under {prefix:?} in bucket {bucket:?} were not all deleted: {}",
            crate::error_chain(&e)
        )
    })
}

impl Fixture {
    /// Uploads the objects through `ours`, then builds the peers, signing as `ours_s3`
    /// does (whatever gave it its credentials); the endpoint as the peers use it. An
    /// error says whether anything was uploaded (to remove).
    fn upload_and_connect(
        endpoint: Endpoint,
        ours: &storage::Operator,
        ours_s3: &storage::services::s3::S3,
        data: &Bytes,
        sizes: Sizes,
        prefix: &str,
    ) -> Result<Peers, (String, bool)> {
        let blocking = ours.blocking();
        let url = endpoint.url.as_deref().unwrap_or("AWS");
        let where_ = format!("bucket {:?} at {url}", endpoint.bucket);
        let failed = |e: storage::Error, uploaded| {
            let message = format!(
                "cannot upload the benchmark objects to {where_}: {}",
                crate::error_chain(&e)
            );
            (message, uploaded)
        };
        blocking
            .write("small", data.slice(..sizes.small as usize))
            .map_err(|e| failed(e, false))?;
        crate::stopped().map_err(|e| (e, true))?;
        blocking
            .write("big", data.clone())
            .map_err(|e| failed(e, true))?;
        crate::stopped().map_err(|e| (e, true))?;
        let mut opendal = opendal::services::S3::default()
            .bucket(&endpoint.bucket)
            .region(&endpoint.region)
            .root(prefix);
        if let Some(url) = &endpoint.url {
            opendal = opendal.endpoint(url);
        }
        let endpoint = endpoint.signing_as(ours_s3);
        if let Some(credentials) = &endpoint.credentials {
            opendal = opendal
                .access_key_id(credentials.access_key_id())
                .secret_access_key(credentials.secret_access_key())
                .disable_config_load()
                .disable_ec2_metadata();
            if let Some(token) = credentials.session_token() {
                opendal = opendal.session_token(token);
            }
        }
        let opendal = opendal::Operator::new(opendal)
            .map_err(|e| (format!("cannot configure OpenDAL's S3: {e}"), true))?
            .finish();
        let object_store: Arc<dyn ObjectStore> = Arc::new(
            endpoint
                .object_store()
                .build()
                .map_err(|e| (format!("cannot configure object_store's S3: {e}"), true))?,
        );
        Ok((endpoint, opendal, object_store))
    }

    /// Uploads `bench-<pid>/small` (16 MiB) and `bench-<pid>/big` (128 MiB) through
    /// our client and builds the others. What the run writes under its prefix of
    /// its own (two runs on one bucket keep apart) is deleted again when the
    /// fixture is dropped, or when building it fails after the upload began.
    ///
    /// # Errors
    ///
    /// A one-line message when a client cannot be built or the upload fails (a
    /// missing bucket, wrong credentials, an endpoint that does not answer).
    pub fn new(endpoint: Endpoint, dedicated: Executor, sizes: Sizes) -> Result<Self, String> {
        let prefix = format!("{}bench-{}/", endpoint.prefix, std::process::id());
        // The objects' bytes, the reads in flight (up to the big object), and, in
        // process, the server's copy.
        let copies = if endpoint.uri.is_none() { 3 } else { 2 };
        crate::check_free_memory(sizes.big().saturating_mul(copies), "the S3 suite", "--size")?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut data = vec![0_u8; sizes.big() as usize];
        rng.fill(&mut data[..]);
        let data = Bytes::from(data);
        let caller = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the caller runtime: {e}"))?;
        use storage::services::s3::S3Builder;
        let url = endpoint.url.as_deref().unwrap_or("AWS");
        let builder = endpoint.ours()?.root(&prefix);
        let configure = |builder: S3Builder| {
            builder
                .build()
                .map_err(|e| format!("cannot configure S3 for {url}: {e}"))
        };
        let ours_s3 = configure(builder.clone())?;
        let ours = storage::Operator::new(ours_s3.clone()).with_executor(dedicated.clone());
        let ours_unchecked =
            storage::Operator::new(configure(builder.clone().write_checks(false))?)
                .with_executor(dedicated.clone());
        let ours_no_checksum =
            storage::Operator::new(configure(builder.checksum(None))?).with_executor(dedicated);
        let (real, bucket) = (endpoint.uri.is_some(), endpoint.bucket.clone());
        let clients = Self::upload_and_connect(endpoint, &ours, &ours_s3, &data, sizes, &prefix);
        let (endpoint, opendal, object_store) = match clients {
            Ok(clients) => clients,
            Err((e, uploaded)) => {
                if real && uploaded {
                    // Both are said: the set-up's failure, then what it left.
                    if let Err(left) = remove_written(&ours, &bucket, &prefix) {
                        return Err(format!("{e}; {left}"));
                    }
                }
                return Err(e);
            }
        };
        let hyper = {
            let _guard = caller.enter();
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(32)
                .build_http()
        };
        Ok(Self {
            endpoint,
            prefix,
            caller,
            ours,
            ours_s3,
            ours_no_checksum,
            ours_unchecked,
            hyper,
            opendal,
            object_store,
            payload: data.slice(..sizes.small as usize),
            data,
            sizes,
            rng: std::sync::Mutex::new(rng),
            removed: false,
        })
    }

    /// Deletes the objects the fixture wrote to a real endpoint (`--uri`), as its
    /// drop would, but says whether that worked: a run that leaves objects in the
    /// user's bucket has not ended well, and says so in its exit status.
    ///
    /// # Errors
    ///
    /// The objects under the run's prefix were not all deleted: a line naming the
    /// prefix, the bucket and the server's error.
    pub fn remove(&mut self) -> Result<(), String> {
        if self.removed || self.endpoint.uri.is_none() {
            return Ok(());
        }
        self.removed = true;
        remove_written(&self.ours, &self.endpoint.bucket, &self.prefix)
    }

    /// The lines that say what was measured against: the endpoint, the bucket, the
    /// region, where our credentials came from (the access key id masked, never the
    /// secret) and our checksum.
    pub fn describe(&self) -> Vec<String> {
        let credentials = match self.ours_s3.credential_info() {
            Some(info) => {
                let key = &info.access_key_id;
                // The last four characters (a key id that is not ASCII is cut
                // between characters, never inside one).
                let shown = key.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
                let temporary = if info.expiry.is_some() {
                    ", temporary"
                } else {
                    ""
                };
                format!(
                    "{} (access key {}{}{temporary})",
                    info.source,
                    "*".repeat(key[..shown].chars().count().min(16)),
                    &key[shown..]
                )
            }
            None => "none (anonymous)".to_owned(),
        };
        vec![
            format!(
                "S3 endpoint: {}, bucket {:?}, region {}",
                self.endpoint.url.as_deref().unwrap_or("AWS"),
                self.endpoint.bucket,
                self.endpoint.region
            ),
            format!("S3 credentials: {credentials}"),
            format!(
                "S3 checksums: {} (ours_no_checksum: none); write checks: {} \
                 (ours_unchecked: off)",
                self.ours_s3
                    .checksum()
                    .map_or("none".to_owned(), |c| c.to_string()),
                if self.ours_s3.write_checks() {
                    "on"
                } else {
                    "off"
                }
            ),
        ]
    }

    /// `true` if `method` runs `workload` against this endpoint: raw hyper only
    /// where unsigned requests are accepted, [`Method::OpenDalContiguous`] only
    /// for reads (its write is OpenDAL's write: measured twice, the better of two
    /// samples of one client would stand as the best peer),
    /// [`Method::OursUnchecked`] only for writes (its reads are ours'), and each of
    /// [`Method::OursNoChecksum`] and [`Method::OursUnchecked`] only where ours has
    /// what it leaves out.
    pub fn supports(&self, method: Method, workload: Workload) -> bool {
        match method {
            Method::RawHyper => self.endpoint.unsigned_ok,
            Method::OpenDalContiguous => workload != Workload::Write,
            // The variants measure a price only where ours pays it (a URI may
            // turn checksums or write checks off for ours too).
            Method::OursNoChecksum => self.ours_s3.checksum().is_some(),
            Method::OursUnchecked => workload == Workload::Write && self.ours_s3.write_checks(),
            _ => true,
        }
    }

    fn random_offset(&self, below: u64) -> u64 {
        self.rng.lock().expect("rng").random_range(0..below)
    }

    /// One iteration of `workload` by `method`; returns the bytes moved.
    ///
    /// # Errors
    ///
    /// A request that failed (a network, a server that stops answering or
    /// refuses midway), or one that moved the wrong number of bytes, naming the
    /// method and the workload.
    ///
    /// # Panics
    ///
    /// If `workload` is not one of S3's.
    pub fn run(&self, method: Method, workload: Workload) -> Result<u64, String> {
        let offset = self.random_offset(self.sizes.half());
        let moved = self
            .caller
            .block_on(self.reads(method, workload, offset, &mut |_, _| {}, false))
            .map_err(|e| format!("{method} {workload} failed midway: {e}"))?;
        crate::check_moved(
            format_args!("{method} {workload}"),
            moved,
            self.sizes.bytes(workload),
        )
    }

    /// Runs `workload` by `method` once as [`run`](Self::run) does, and compares
    /// the bytes of every read with what the objects hold (what was uploaded): a
    /// client that returned other bytes would look fast for the wrong reason. A
    /// write's bytes are not compared.
    ///
    /// # Errors
    ///
    /// A request that failed, or the first read whose bytes differ.
    ///
    /// # Panics
    ///
    /// As [`run`](Self::run).
    pub fn check(&self, method: Method, workload: Workload) -> Result<(), String> {
        let offset = self.random_offset(self.sizes.half());
        let mut wrong = None;
        let mut compare = |at: u64, got: &Got| {
            let bytes = got.to_bytes();
            let expected = self.data.slice(at as usize..at as usize + bytes.len());
            if wrong.is_none() && bytes != expected {
                wrong = Some(format!(
                    "{method} {workload}: the {} bytes read at {at} are not the object's",
                    bytes.len()
                ));
            }
        };
        self.caller
            .block_on(self.reads(method, workload, offset, &mut compare, true))
            .map_err(|e| format!("{method} {workload} failed midway: {e}"))?;
        wrong.map_or(Ok(()), Err)
    }

    /// One iteration, each read's offset in `data` and bytes handed to `visit`
    /// (`small` is `data`'s start, so its offsets are the same; the parallel
    /// reads' only when `checking`); returns the bytes moved.
    async fn reads(
        &self,
        method: Method,
        workload: Workload,
        offset: u64,
        visit: &mut dyn FnMut(u64, &Got),
        checking: bool,
    ) -> Result<u64, String> {
        let half = self.sizes.half();
        let one = |got: Got, at: u64, visit: &mut dyn FnMut(u64, &Got)| {
            visit(at, &got);
            got.len()
        };
        Ok(match workload {
            Workload::Read => one(self.range(method, "small", None).await?, 0, visit),
            Workload::RangeRead => one(
                self.range(method, "small", Some(offset..offset + half))
                    .await?,
                offset,
                visit,
            ),
            Workload::ReadHalf => one(self.range(method, "small", Some(0..half)).await?, 0, visit),
            Workload::Write => self.write(method).await?,
            Workload::ParallelRangeRead(n) if !checking => {
                // Timed: each read's buffer let go as soon as it is read, as a
                // reader that consumes it would.
                let reads = (0..n as u64).map(|i| async move {
                    let range = Some(i * half..(i + 1) * half);
                    self.range(method, "big", range).await.map(|got| got.len())
                });
                futures::future::join_all(reads)
                    .await
                    .into_iter()
                    .sum::<Result<u64, String>>()?
            }
            Workload::ParallelRangeRead(n) => {
                let reads = (0..n as u64)
                    .map(|i| self.range(method, "big", Some(i * half..(i + 1) * half)));
                let mut moved = 0;
                for (i, got) in futures::future::join_all(reads)
                    .await
                    .into_iter()
                    .enumerate()
                {
                    moved += one(got?, i as u64 * half, visit);
                }
                moved
            }
            other => panic!("{other} is not an S3 workload"),
        })
    }

    async fn range(
        &self,
        method: Method,
        name: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Got, String> {
        Ok(match method {
            Method::Ours | Method::OursNoChecksum | Method::OursUnchecked => {
                let op = self.ours_for(method);
                Got::Bytes(
                    match range {
                        Some(r) => op.read_range(name, r).await,
                        None => op.read(name).await,
                    }
                    // Our error names the operation and the object.
                    .map_err(|e| crate::error_chain(&e))?,
                )
            }
            Method::RawHyper => {
                let url = format!(
                    "{}/{}/{}{name}",
                    self.endpoint.url.as_deref().unwrap_or_default(),
                    self.endpoint.bucket,
                    self.prefix
                );
                let mut req = http::Request::get(url);
                if let Some(r) = &range {
                    req = req.header("range", format!("bytes={}-{}", r.start, r.end - 1));
                }
                let req = req
                    .body(Full::new(Bytes::new()))
                    .map_err(|e| failed("GET", &e))?;
                let response = self
                    .hyper
                    .request(req)
                    .await
                    .map_err(|e| failed("GET", &e))?;
                if !response.status().is_success() {
                    return Err(failed("GET", &response.status()));
                }
                Got::Bytes(
                    response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| failed("GET body", &e))?
                        .to_bytes(),
                )
            }
            Method::OpenDal => Got::Buffer(
                match range {
                    Some(r) => self.opendal.read_with(name).range(r).await,
                    None => self.opendal.read(name).await,
                }
                .map_err(|e| failed("read", &e))?,
            ),
            Method::OpenDalContiguous => Got::Bytes(
                match range {
                    Some(r) => self.opendal.read_with(name).range(r).await,
                    None => self.opendal.read(name).await,
                }
                .map_err(|e| failed("read", &e))?
                .to_bytes(),
            ),
            Method::ObjectStore => {
                let path = object_store::path::Path::from(format!("{}{name}", self.prefix));
                Got::Bytes(match range {
                    Some(r) => self
                        .object_store
                        .get_range(&path, r)
                        .await
                        .map_err(|e| failed("get_range", &e))?,
                    None => self
                        .object_store
                        .get(&path)
                        .await
                        .map_err(|e| failed("get", &e))?
                        .bytes()
                        .await
                        .map_err(|e| failed("get body", &e))?,
                })
            }
        })
    }

    fn ours_for(&self, method: Method) -> &storage::Operator {
        match method {
            Method::OursNoChecksum => &self.ours_no_checksum,
            Method::OursUnchecked => &self.ours_unchecked,
            _ => &self.ours,
        }
    }

    async fn write(&self, method: Method) -> Result<u64, String> {
        let name = format!("written-{method}");
        let data = self.payload.clone();
        Ok(match method {
            Method::Ours | Method::OursNoChecksum | Method::OursUnchecked => self
                .ours_for(method)
                .write(&name, data)
                .await
                .map_err(|e| crate::error_chain(&e))?
                .content_length(),
            Method::RawHyper => {
                let url = format!(
                    "{}/{}/{}{name}",
                    self.endpoint.url.as_deref().unwrap_or_default(),
                    self.endpoint.bucket,
                    self.prefix
                );
                let req = http::Request::put(url)
                    .body(Full::new(data))
                    .map_err(|e| failed("PUT", &e))?;
                let response = self
                    .hyper
                    .request(req)
                    .await
                    .map_err(|e| failed("PUT", &e))?;
                if !response.status().is_success() {
                    return Err(failed("PUT", &response.status()));
                }
                drop(response.into_body().collect().await);
                self.sizes.small
            }
            Method::OpenDal | Method::OpenDalContiguous => {
                self.opendal
                    .write(&name, data)
                    .await
                    .map_err(|e| failed("write", &e))?;
                self.sizes.small
            }
            Method::ObjectStore => {
                let path = object_store::path::Path::from(format!("{}{name}", self.prefix));
                self.object_store
                    .put(&path, data.into())
                    .await
                    .map_err(|e| failed("put", &e))?;
                self.sizes.small
            }
        })
    }
}

/// What a request of a run said when it failed.
fn failed(request: &str, error: &dyn std::fmt::Display) -> String {
    format!("{request}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client's reads, in every workload, return the objects' bytes (on the
    /// in-process server).
    #[test]
    fn every_method_reads_the_objects_bytes() {
        let server = crate::mem_s3::MemS3::start("check", 1).unwrap();
        let executor = io_executor::Builder::new()
            .name("s3-check")
            .build()
            .unwrap();
        let sizes = Sizes { small: 1 << 20 };
        let fixture = Fixture::new(Endpoint::in_process(&server), executor.clone(), sizes).unwrap();
        for workload in WORKLOADS {
            for method in Method::ALL {
                if fixture.supports(method, workload) {
                    fixture.check(method, workload).unwrap();
                }
            }
        }
        drop(fixture);
        executor.shutdown();
    }
}
