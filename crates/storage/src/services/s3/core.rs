//! [`Core`]: requests, signing, retries, error mapping and the S3 calls every
//! part of the backend shares.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    IF_UNMODIFIED_SINCE, LAST_MODIFIED, RANGE, TRANSFER_ENCODING,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use io_executor::{Executor, WorkerLocal};
use md5::Digest as _;
use parking_lot::RwLock;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::body::{self, Progress, ReqBody};
use super::checksum::Checksum;
use super::config::{RetryPolicy, S3Builder};
use super::credentials::{CredentialCache, CredentialInfo, control_character};
use super::limiter::{Limiter, Prepaid};
use super::lister::next_token;
use super::proxy::{Connector, Proxy, ThroughProxy};
use super::xml;
use crate::raw::{ABORT_FAILED, BufferPool, ByteRange};
use crate::{
    Conditions, CustomerKey, Encryption, Error, ErrorKind, Metadata, Result, WriteOptions,
};

tokio::task_local! {
    /// Set while an operation's requests run on places in the limiter it took
    /// for all of them beforehand.
    static PREPAID: Arc<Prepaid>;
}

/// The HTTP client of one worker thread.
pub(crate) type HttpClient = Client<HttpsConnector<Connector>, ReqBody>;

/// Bytes that travel as they are in a key: RFC 3986's unreserved set and `/`.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');
/// Query values: unreserved only.
const QUERY: &AsciiSet = &KEY.add(b'/');

pub(crate) fn encode_query(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

/// One request, before signing: rebuilt and signed anew for every attempt.
#[derive(Debug, Clone)]
pub(crate) struct S3Request {
    pub(crate) method: Method,
    /// The full key (root included); empty for bucket-level calls.
    pub(crate) key: String,
    /// Already encoded: `uploads`, `partNumber=1&uploadId=...`.
    pub(crate) query: String,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: ReqBody,
}

impl S3Request {
    pub(crate) fn new(method: Method, key: impl Into<String>) -> Self {
        Self {
            method,
            key: key.into(),
            query: String::new(),
            headers: Vec::new(),
            body: ReqBody::empty(),
        }
    }

    pub(crate) fn query(mut self, query: impl Into<String>) -> Self {
        self.query = query.into();
        self
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Result<Self> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            Error::new(ErrorKind::InvalidInput)
                .with_message(format!("{name} value {value:?} cannot be sent in a header"))
        })?;
        self.headers.push((name, value));
        Ok(self)
    }

    pub(crate) fn body(mut self, body: impl Into<ReqBody>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds the headers of read `conditions` (the server checks them: 412, 304).
    pub(crate) fn conditions(mut self, conditions: &Conditions) -> Result<Self> {
        if let Some(etag) = &conditions.if_match {
            self = self.header(IF_MATCH, etag)?;
        }
        if let Some(etag) = &conditions.if_none_match {
            self = self.header(IF_NONE_MATCH, etag)?;
        }
        if let Some(time) = conditions.if_modified_since {
            self = self.header(IF_MODIFIED_SINCE, &http_date_of(time)?)?;
        }
        if let Some(time) = conditions.if_unmodified_since {
            self = self.header(IF_UNMODIFIED_SINCE, &http_date_of(time)?)?;
        }
        Ok(self)
    }

    /// Adds a header whose value must never show (`Debug` prints it as sensitive).
    fn secret_header(mut self, name: &'static str, value: &str) -> Result<Self> {
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            Error::new(ErrorKind::InvalidInput).with_message(format!("bad {name} value"))
        })?;
        value.set_sensitive(true);
        self.headers.push((HeaderName::from_static(name), value));
        Ok(self)
    }

    /// Adds the SSE-C headers of `key`: for a request that writes or reads an
    /// object encrypted with it (`copy_source`: for the source of a copy).
    pub(crate) fn customer_key(self, key: &CustomerKey, copy_source: bool) -> Result<Self> {
        let (algorithm, secret, md5) = if copy_source {
            (
                "x-amz-copy-source-server-side-encryption-customer-algorithm",
                "x-amz-copy-source-server-side-encryption-customer-key",
                "x-amz-copy-source-server-side-encryption-customer-key-md5",
            )
        } else {
            (
                "x-amz-server-side-encryption-customer-algorithm",
                "x-amz-server-side-encryption-customer-key",
                "x-amz-server-side-encryption-customer-key-md5",
            )
        };
        self.header(HeaderName::from_static(algorithm), "AES256")?
            .secret_header(secret, &key.base64())?
            .header(HeaderName::from_static(md5), &key.md5_base64())
    }

    /// Adds what a new object is stored with: content type, storage class,
    /// server-side `encryption` (for PUT, CreateMultipartUpload, CopyObject).
    pub(crate) fn object_options(
        mut self,
        options: &WriteOptions,
        encryption: Option<&Encryption>,
    ) -> Result<Self> {
        if let Some(content_type) = &options.content_type {
            self = self.header(http::header::CONTENT_TYPE, content_type)?;
        }
        if let Some(class) = &options.storage_class {
            self = self.header(HeaderName::from_static("x-amz-storage-class"), class)?;
        }
        let sse = HeaderName::from_static("x-amz-server-side-encryption");
        match encryption {
            None => {}
            Some(Encryption::S3Managed) => self = self.header(sse, "AES256")?,
            Some(Encryption::Kms { key_id }) => {
                self = self.header(sse, "aws:kms")?;
                if let Some(id) = key_id {
                    self = self.header(
                        HeaderName::from_static("x-amz-server-side-encryption-aws-kms-key-id"),
                        id,
                    )?;
                }
            }
            Some(Encryption::Customer(key)) => self = self.customer_key(key, false)?,
        }
        Ok(self)
    }

    /// Adds the headers of write `options`: `If-None-Match: *` for `if_not_exists`,
    /// `If-Match` for `if_match`.
    pub(crate) fn write_options(mut self, options: &WriteOptions) -> Result<Self> {
        if options.if_not_exists {
            self = self.header(IF_NONE_MATCH, "*")?;
        }
        if let Some(etag) = &options.if_match {
            self = self.header(IF_MATCH, etag)?;
        }
        Ok(self)
    }
}

/// How many times an upload is aborted while parts of it are still listed.
const ABORT_ROUNDS: u32 = 3;

/// The longest key, in bytes, that S3 holds.
pub(crate) const MAX_KEY_LEN: usize = 1024;

/// The user metadata that carries a write's id (see [`Core::stored_anyway`]).
const WRITE_ID: HeaderName = HeaderName::from_static("x-amz-meta-dio-write-id");

/// A new id for one write: 128 bits from the operating system's random source, in
/// hex (a seeded generator would repeat itself in a forked process).
///
/// # Errors
///
/// `Unexpected` if the system has no random source to give.
pub(crate) fn new_write_id() -> Result<String> {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::new(ErrorKind::Unexpected)
            .with_message(format!("cannot draw a random id for the write: {e}"))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// How many times a copy looks at its source again when the source changed
/// between its `HEAD` and its `CopyObject` (another writer at work).
const COPY_SOURCE_CHANGED_MAX: u32 = 4;

/// What one copy attempt ended in, but errors.
enum CopyOnce {
    /// Copied: the ETag of the version copied.
    Done(Option<String>),
    /// A 412 to a CopyObject pinned to its source's version: the source's
    /// condition (another version is there now) or the target's (its
    /// `if_not_exists`).
    Refused(Error),
}

/// A write refused by its precondition, as the caller asked for it: with
/// `if_not_exists`, the target exists; with `if_match`, the target is not that
/// version, or is missing (AWS answers an `If-Match` write of a missing key with
/// 404 `NoSuchKey`, not 412). The error keeps the server's answer and what is known
/// of the write (`stored`): a refusal after an attempt whose answer was lost may be
/// of what that very attempt stored, and says so.
pub(crate) fn write_refused(err: Error, options: &WriteOptions) -> Error {
    // Refused by the condition itself (412), not told the target is missing.
    let refused_may_be_ours =
        err.kind() == ErrorKind::PreconditionFailed && err.context("stored") == Some("unknown");
    let err = if err.kind() == ErrorKind::PreconditionFailed && options.if_not_exists {
        err.restated(ErrorKind::AlreadyExists)
    } else if options.if_match.is_some() && key_not_found(&err) {
        // A missing key (`NoSuchKey`, or a bare 404); not a missing upload or bucket.
        err.restated(ErrorKind::PreconditionFailed)
            .with_message("the target does not exist")
    } else {
        err
    };
    if refused_may_be_ours {
        return err.with_message(
            "refused after an attempt whose answer was lost: \
             the object there may be this write's own",
        );
    }
    err
}

fn http_date_of(time: SystemTime) -> Result<String> {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from(time).fmt(Format::HttpDate).map_err(|e| {
        Error::new(ErrorKind::InvalidInput).with_message(format!("cannot send time {time:?}: {e}"))
    })
}

/// What every part of one backend shares: configuration, credentials, and the HTTP
/// clients (one per worker thread of each executor the backend is attached to).
pub(crate) struct Core {
    pub(crate) bucket: String,
    pub(crate) root: String,
    pub(crate) region: String,
    /// The endpoint as configured (`None`: AWS's).
    pub(crate) endpoint: Option<String>,
    /// `scheme://authority` of the bucket for virtual-host style, of the service for
    /// path style.
    base_url: String,
    path_style: bool,
    /// `None`: anonymous.
    credentials: Option<Arc<CredentialCache>>,
    pub(crate) retry: RetryPolicy,
    request_timeout: Duration,
    connect_timeout: Duration,
    /// How far the server's clock is ahead of ours, in milliseconds (behind:
    /// negative), learned from the `Date` of a `RequestTimeTooSkewed` refusal:
    /// requests are signed by the server's clock.
    clock_skew_ms: AtomicI64,
    max_idle_per_host: usize,
    pub(crate) part_size: usize,
    pub(crate) multipart_threshold: usize,
    pub(crate) part_concurrency: usize,
    /// Sent with every write, checked on full reads.
    pub(crate) checksum: Option<Checksum>,
    /// Whether writes are checked as fs would check them (see
    /// [`S3Builder::write_checks`](super::S3Builder::write_checks)).
    pub(crate) write_checks: bool,
    /// For writes that ask for none; an SSE-C key is also sent on reads.
    pub(crate) encryption: Option<Encryption>,
    pub(crate) copy_part_size: u64,
    pub(crate) multipart_copy_threshold: u64,
    pub(crate) pool: Arc<BufferPool>,
    clients: RwLock<Vec<(u64, Arc<WorkerLocal<HttpClient>>)>>,
    /// For threads that are no attached pool's workers (caller-runtime and custom
    /// executors): one client, whose connections live on the runtime that opened them.
    fallback: OnceLock<HttpClient>,
    tls: OnceLock<Arc<rustls::ClientConfig>>,
    /// Certificate authorities trusted beside Mozilla's (a CA bundle's).
    extra_roots: Arc<[rustls::pki_types::CertificateDer<'static>]>,
    /// The proxy HTTPS requests go through, if any.
    proxy: Option<Arc<Proxy>>,
    /// How the server orders listings, learned from its answers: see
    /// [`Core::lists_in_key_order`].
    listing_order: AtomicU8,
    /// Requests in flight, bounded and adapted to throttling.
    limiter: Limiter,
    /// A request to the bucket was answered 2xx (a write's checks, any read), or
    /// its listing refused with `AccessDenied` (see [`Core::find_bucket`]): from
    /// then on a write's request goes out together with its checks. Before, it waits
    /// for them, so that a write to a bucket that does not exist fails with
    /// `NoSuchBucket` and sends nothing else: some servers (SeaweedFS) make a
    /// missing bucket for a `PUT` or a CreateMultipartUpload, and the checks
    /// then found it there and the write succeeded.
    bucket_found: std::sync::atomic::AtomicBool,
    /// Held by the one [`find_bucket`](Core::find_bucket) listing at a time, with
    /// the failure of the last one and how many have ended: the writes that
    /// waited for a listing that failed fail with it, not each after a listing
    /// of its own, one after another.
    finding_bucket: tokio::sync::Mutex<Option<Error>>,
    /// How many [`find_bucket`](Core::find_bucket) listings have ended.
    bucket_listings: std::sync::atomic::AtomicU64,
}

/// [`Core::listing_order`]: not known yet.
const ORDER_UNKNOWN: u8 = 0;
/// Keys in byte order, `start-after` by byte order: S3's rules.
const ORDER_KEYS: u8 = 1;
/// Keys in directory-tree order, `start-after` per path segment (SeaweedFS).
const ORDER_TREE: u8 = 2;

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("region", &self.region)
            .field("endpoint", &self.base_url)
            .field("path_style", &self.path_style)
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .field("checksum", &self.checksum)
            .field("encryption", &self.encryption)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can be one label of a host name: 1 to 63 lowercase letters,
/// digits and `-`, with neither end a `-`.
fn is_dns_label(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl Core {
    pub(crate) fn new(builder: S3Builder, credentials: Option<CredentialCache>) -> Self {
        let region = builder.region.unwrap_or_else(|| "us-east-1".into());
        let (base_url, path_style) = match &builder.endpoint {
            Some(endpoint) => {
                let endpoint = endpoint.trim_end_matches('/');
                let path_style = builder.path_style.unwrap_or(true);
                if path_style {
                    (endpoint.to_owned(), true)
                } else {
                    let (scheme, authority) =
                        endpoint.split_once("://").unwrap_or(("https", endpoint));
                    (format!("{scheme}://{}.{authority}", builder.bucket), false)
                }
            }
            // AWS's own: its China regions are under their own domain. A bucket
            // with a dot in its name is addressed by path unless virtual hosts are
            // asked for: `a.b.s3.<region>.amazonaws.com` is not covered by AWS's
            // wildcard certificate, and TLS would refuse every request.
            None => {
                let domain = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                // Nor is a bucket name that is no DNS label (capitals or `_`,
                // more than 63 characters, a `-` at either end: allowed in older
                // buckets): addressed by path, as the SDKs do.
                let path_style = builder
                    .path_style
                    .unwrap_or_else(|| !is_dns_label(&builder.bucket));
                if path_style {
                    (format!("https://s3.{region}.{domain}"), true)
                } else {
                    (
                        format!("https://{}.s3.{region}.{domain}", builder.bucket),
                        false,
                    )
                }
            }
        };
        Self {
            endpoint: builder
                .endpoint
                .as_deref()
                .map(|e| e.trim_end_matches('/').to_owned()),
            credentials: credentials.map(Arc::new),
            bucket: builder.bucket,
            root: builder.root,
            region,
            base_url,
            path_style,
            retry: builder.retry,
            request_timeout: builder.request_timeout,
            connect_timeout: builder.connect_timeout,
            clock_skew_ms: AtomicI64::new(0),
            max_idle_per_host: builder.max_idle_per_host,
            part_size: builder.part_size,
            multipart_threshold: builder.multipart_threshold,
            part_concurrency: builder.part_concurrency,
            checksum: builder.checksum,
            write_checks: builder.write_checks,
            encryption: builder.encryption,
            copy_part_size: builder.copy_part_size,
            multipart_copy_threshold: builder.multipart_copy_threshold,
            pool: BufferPool::global(),
            clients: RwLock::new(Vec::new()),
            fallback: OnceLock::new(),
            tls: OnceLock::new(),
            extra_roots: builder.extra_roots,
            proxy: builder.proxy,
            listing_order: AtomicU8::new(ORDER_UNKNOWN),
            limiter: Limiter::new(builder.max_concurrent_requests),
            bucket_found: std::sync::atomic::AtomicBool::new(false),
            finding_bucket: tokio::sync::Mutex::new(None),
            bucket_listings: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Notes that the bucket is there: a request to it was answered 2xx.
    fn found_bucket(&self) {
        self.bucket_found
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a write's request may go out together with its checks: once
    /// they have found the bucket (see `bucket_found`).
    pub(crate) fn sends_with_checks(&self) -> bool {
        self.bucket_found.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes one client per worker of `executor`, created on first use on that
    /// worker, so every pooled connection is a task of the worker runtime that uses it.
    ///
    /// The clients of executors shut down since are let go here (their workers
    /// take no new jobs from outside their own; one still running, or its own
    /// work, falls back to the shared client): a
    /// backend moved from executor to executor keeps only the live ones. An
    /// executor without workers of its own (a caller's runtime) has no worker to
    /// make a client on; its jobs use the shared client.
    pub(crate) fn attach(self: &Arc<Self>, executor: &Executor) {
        let mut clients = self.clients.write();
        let gone: Vec<_> = clients
            .extract_if(.., |(_, local)| local.is_shutdown())
            .collect();
        if executor.num_workers() > 0 && !clients.iter().any(|(id, _)| *id == executor.id()) {
            let core = Arc::downgrade(self);
            let local = executor.worker_local(move || match core.upgrade() {
                Some(core) => core.new_client(),
                // The backend is gone; a job still running needs some client.
                None => new_client(tls_config(&[]), None, Duration::from_secs(5), 1),
            });
            clients.push((executor.id(), Arc::new(local)));
        }
        // Not under the lock: a client's drop closes its pooled connections.
        drop(clients);
        drop(gone);
    }

    fn client(&self) -> HttpClient {
        for (_, local) in self.clients.read().iter() {
            if let Some(client) = local.try_get() {
                return client.clone();
            }
        }
        self.fallback.get_or_init(|| self.new_client()).clone()
    }

    fn new_client(&self) -> HttpClient {
        let tls = self
            .tls
            .get_or_init(|| tls_config(&self.extra_roots))
            .clone();
        new_client(
            tls,
            self.proxy.clone(),
            self.connect_timeout,
            self.max_idle_per_host,
        )
    }

    /// The full key of `path` (relative to the root).
    pub(crate) fn key(&self, path: &str) -> String {
        format!("{}{}", self.root, path)
    }

    /// Refuses `path` if its key (the root, then the path) is longer than S3 keys
    /// may be ([`MAX_KEY_LEN`]): no such object can be, or be made, so the
    /// operation is refused before any request, with an error that says why,
    /// where the server would refuse a write with `KeyTooLongError` and answer a
    /// read with a bare 400.
    pub(crate) fn check_key(&self, path: &str) -> Result<()> {
        let len = self.root.len() + path.len();
        if len <= MAX_KEY_LEN {
            return Ok(());
        }
        Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
            "the key of this path (root {:?}, then the path) is {len} bytes long, more than \
             the {MAX_KEY_LEN} S3 takes",
            self.root
        )))
    }

    /// `path` of a full `key`, or `None` if the key is outside the root.
    pub(crate) fn path_of<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.root.as_str())
    }

    pub(crate) fn url(&self, key: &str, query: &str) -> String {
        let mut url = self.base_url.clone();
        if self.path_style {
            url.push('/');
            url.push_str(&self.bucket);
        }
        url.push('/');
        url.extend(utf8_percent_encode(key, KEY));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// The `x-amz-copy-source` value for `key`.
    pub(crate) fn copy_source(&self, key: &str) -> String {
        format!("/{}/{}", self.bucket, utf8_percent_encode(key, KEY))
    }

    /// The credentials signing now, if any were fetched.
    pub(crate) fn credential_info(&self) -> Option<CredentialInfo> {
        self.credentials.as_ref().and_then(|c| c.info())
    }

    /// The credentials requests are signed with now, if any were fetched.
    pub(crate) fn current_credentials(&self) -> Option<aws_credential_types::Credentials> {
        self.credentials.as_ref().and_then(|c| c.current())
    }

    /// The SSE-C key every read sends, if the backend has one.
    pub(crate) fn read_key(&self) -> Option<&CustomerKey> {
        match &self.encryption {
            Some(Encryption::Customer(key)) => Some(key),
            _ => None,
        }
    }

    /// Adds the backend's SSE-C key to a request that reads an object.
    pub(crate) fn reading(&self, req: S3Request) -> Result<S3Request> {
        match self.read_key() {
            Some(key) => req.customer_key(key, false),
            None => Ok(req),
        }
    }

    /// What a write with `options` is encrypted with: its own, else the backend's.
    pub(crate) fn encryption_of<'a>(&'a self, options: &'a WriteOptions) -> Option<&'a Encryption> {
        options.encryption.as_ref().or(self.encryption.as_ref())
    }

    fn build(
        &self,
        req: &S3Request,
        identity: Option<&Identity>,
        progress: &Arc<Progress>,
    ) -> Result<http::Request<ReqBody>> {
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(self.url(&req.key, &req.query));
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        let mut http = builder
            .header(CONTENT_LENGTH, req.body.len())
            .body(req.body.clone().watched(progress))
            .map_err(|e| {
                Error::new(ErrorKind::InvalidInput)
                    .with_message(format!("cannot build the request: {e}"))
            })?;
        if let Some(identity) = identity {
            self.sign(identity, &mut http)?;
        }
        Ok(http)
    }

    fn sign(&self, identity: &Identity, req: &mut http::Request<ReqBody>) -> Result<()> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let failed = |e: &dyn fmt::Display| {
            Error::new(ErrorKind::Unexpected).with_message(format!("cannot sign the request: {e}"))
        };
        // The access key id goes into the `Authorization` header, which the signer
        // builds without checking it (a control character there is a panic): one
        // fetched with a line break (a file's, a secret's) is refused here.
        if let Some(credentials) = identity.data::<aws_credential_types::Credentials>()
            && let Some(why) = control_character("access key id", credentials.access_key_id())
        {
            let source = credentials
                .get_property::<super::credentials::SourceName>()
                .map_or("the credential provider", |name| name.0);
            return Err(Error::new(ErrorKind::InvalidInput)
                .with_message(format!("{why} (credentials from {source})")));
        }
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name("s3")
            .time(self.signing_time())
            .settings(settings)
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let uri = req.uri().to_string();
        // A header the signer cannot take (not visible ASCII) goes out unsigned,
        // which S3 refuses for `x-amz-*` headers (user metadata from another
        // tool, say): such a request fails here, saying which header.
        let mut headers = Vec::with_capacity(req.headers().len());
        for (name, value) in req.headers() {
            match value.to_str() {
                Ok(value) => headers.push((name.as_str(), value)),
                Err(_) if name.as_str().starts_with("x-amz-") => {
                    return Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
                        "header {name} has a value that is not visible ASCII and cannot be signed"
                    )));
                }
                Err(_) => {}
            }
        }
        let headers = headers.into_iter();
        let signable = SignableRequest::new(
            req.method().as_str(),
            &uri,
            headers,
            SignableBody::UnsignedPayload,
        )
        .map_err(|e| failed(&e))?;
        // The signer logs the request it signs, headers and all (at trace level):
        // a request carrying a secret (an SSE-C key, or the session token the
        // signer adds for temporary credentials) is signed with logging off.
        let session = identity
            .data::<aws_credential_types::Credentials>()
            .is_some_and(|c| c.session_token().is_some());
        let secret = session || req.headers().values().any(HeaderValue::is_sensitive);
        let signed = if secret {
            tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
                sign(signable, &params)
            })
        } else {
            sign(signable, &params)
        };
        let (instructions, _signature) = signed.map_err(|e| failed(&e))?.into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }

    /// Now, by the server's clock as far as it is known ([`Self::learn_clock`]).
    fn signing_time(&self) -> SystemTime {
        let skew = self.clock_skew_ms.load(Ordering::Relaxed);
        let by = Duration::from_millis(skew.unsigned_abs());
        let now = SystemTime::now();
        let time = if skew >= 0 {
            now.checked_add(by)
        } else {
            now.checked_sub(by)
        };
        time.unwrap_or(now)
    }

    /// Learns how far the server's clock is from ours from the `Date` of an answer
    /// to a request signed `signed_skew` ms off our clock; `true` if that request
    /// was signed that far off the server's clock (over S3's 15 minutes), so that
    /// sending it again, signed by the server's clock, may be answered. `false` if
    /// the answer has no `Date`, or the request was signed by the server's clock
    /// already (as far as a `Date`, in whole seconds, tells): its refusal is not
    /// the clock's. Every request refused together (the parts of an upload)
    /// compares with the clock it was signed by, not with what another's refusal
    /// taught meanwhile.
    fn learn_clock(&self, headers: &HeaderMap, signed_skew: i64) -> bool {
        let Some(server) = header_str(headers, &http::header::DATE).and_then(http_date) else {
            return false;
        };
        let now = SystemTime::now();
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let skew = match server.duration_since(now) {
            Ok(ahead) => ms(ahead),
            Err(behind) => -ms(behind.duration()),
        };
        // S3 refuses a request signed more than 15 minutes off its clock; a
        // `Date` has whole seconds, so a few seconds off tells nothing.
        if signed_skew.abs_diff(skew) <= 14 * 60 * 1000 {
            return false;
        }
        let known = self.clock_skew_ms.swap(skew, Ordering::Relaxed);
        if known.abs_diff(skew) > 5_000 {
            tracing::warn!(
                skew_ms = skew,
                "the S3 server's clock is off from this machine's; signing by the server's"
            );
        }
        true
    }

    /// Sends `req` until it succeeds (2xx), fails for good, or runs out of attempts.
    pub(crate) async fn send(&self, req: &S3Request) -> Result<Response<Incoming>> {
        let (mut attempt, mut seen, mut refetched) = (1, Seen::default(), false);
        loop {
            match self.attempt(req, !refetched).await {
                Ok(response) => {
                    self.found_bucket();
                    return Ok(response);
                }
                // A HEAD refused with a bare 400 again, signed with credentials
                // fetched anew for the first (or known to be refused so): not the
                // session token (an object encrypted with a customer key, read
                // without it, is refused so).
                Err(e)
                    if e.context("credentials").is_some() && (refetched || !e.is_temporary()) =>
                {
                    return Err(e.set_temporary(false).with_message(
                        "HEAD refused with a bare 400, also with credentials fetched \
                         anew (for this request or a recent one): not a refused session \
                         token (an object encrypted with a customer key, read without it?)",
                    ));
                }
                Err(e) => {
                    refetched |= e.context("credentials").is_some();
                    attempt = self.next_attempt(e, attempt, req, &mut seen).await?;
                }
            }
        }
    }

    /// [`before_retry`](Self::before_retry), noting what the failed attempts
    /// saw. When none reached the server (every one failed to connect, or found
    /// no credentials to sign with), the final error says `sent` = `no`, so that
    /// a write is known not to be stored; when any ended without an answer that
    /// settles it ([`unanswered`]) after its whole body was taken (see
    /// [`body_not_whole`]), it says `answer` = `lost`, whatever the later ones
    /// were answered (a refusal does not undo what a lost one stored).
    async fn next_attempt(
        &self,
        err: Error,
        attempt: u32,
        req: &S3Request,
        seen: &mut Seen,
    ) -> Result<u32> {
        // Neither a failed connection nor credentials that could not be loaded
        // sent anything.
        let reached = err.context("connect") != Some("failed")
            && err.context(super::credentials::STAGE).is_none();
        seen.reached |= reached;
        // A body the connection never took whole never reached the server whole:
        // that attempt stored nothing, whatever it ended with.
        seen.lost |= reached && unanswered(&err) && err.context(BODY).is_none();
        let seen = *seen;
        self.before_retry(err, attempt, req).await.map_err(|e| {
            let e = if seen.reached {
                e
            } else {
                e.with_context("sent", "no")
            };
            // Said of what may change something (a read's is nobody's concern).
            let changes = !matches!(req.method, Method::GET | Method::HEAD);
            if seen.lost && changes {
                e.with_context(ANSWER, "lost")
            } else {
                e
            }
        })
    }

    /// Sends `req` and reads its whole (small) body, an XML document whose root
    /// is `root`, retrying both steps. A body that is not that document (S3 can
    /// fail after it has answered 200, and a connection closed early ends a body
    /// that has no length) is an error, never taken for a result.
    pub(crate) async fn send_read(
        &self,
        req: &S3Request,
        root: &str,
    ) -> Result<(HeaderMap, Bytes)> {
        let (mut attempt, mut seen) = (1, Seen::default());
        loop {
            let result = async {
                let response = self.attempt(req, true).await?;
                let (parts, body) = response.into_parts();
                let body = self.read_small(body).await?;
                match xml::document_root(&body) {
                    // A body of no length that is not chunked ends when the
                    // connection does, cut or not: one whose document stops short
                    // was cut. (A framed one that does is malformed: said by the
                    // parser, not retried.)
                    Some(name)
                        if name == root.as_bytes()
                            && !parts.headers.contains_key(CONTENT_LENGTH)
                            && !is_chunked(&parts.headers)
                            && !xml::document_ends(&body, name) =>
                    {
                        Err(Error::new(ErrorKind::Unexpected)
                            .set_temporary(true)
                            .with_message(format!(
                                "the server's <{root}> document stopped short ({} bytes, \
                                 ended by the connection's close): the answer was cut",
                                body.len()
                            )))
                    }
                    Some(name) if name == root.as_bytes() => Ok((parts.headers, body)),
                    Some(b"Error") => Err(error_from_parts(StatusCode::OK, &parts.headers, &body)),
                    _ => Err(Error::new(ErrorKind::Unexpected)
                        .set_temporary(true)
                        .with_message(format!(
                            "the server answered {} without its <{root}> document{}",
                            parts.status,
                            match body.len() {
                                0 => " (an empty body)".to_owned(),
                                n => format!(" ({n} bytes)"),
                            }
                        ))),
                }
            }
            .await;
            match result {
                Ok(done) => {
                    self.found_bucket();
                    return Ok(done);
                }
                Err(e) => attempt = self.next_attempt(e, attempt, req, &mut seen).await?,
            }
        }
    }

    /// Gives up with `err` (returned as `Err`), or sleeps the backoff and returns the
    /// number of the next attempt.
    pub(crate) async fn before_retry(
        &self,
        err: Error,
        attempt: u32,
        req: &S3Request,
    ) -> Result<u32> {
        let throttled = err.kind() == ErrorKind::RateLimited;
        if throttled {
            self.limiter.throttled();
        }
        // A CompleteMultipartUpload that met another conditional write is not sent
        // again: S3 asks for the whole upload to be made anew (the writer aborts it,
        // and its caller gets the conflict, a temporary error).
        let completing = req.method == Method::POST && req.query.starts_with("uploadId=");
        let conflict = err.context("code") == Some("ConditionalRequestConflict");
        let err = if completing && err.context("code").is_some_and(refuses_checksum) {
            // Not a body damaged on its way: the object's checksum is not the one
            // its parts make (or its type not the upload's), and sent again it
            // would be refused again. The server's message says which; without
            // one, ours says what was refused.
            let err = err
                .set_temporary(false)
                .with_context("refused", "the checksum the upload was completed with");
            if err.message() == Some(DAMAGED_BODY) {
                err.with_message("the server refused the checksum the upload was completed with")
            } else {
                err
            }
        } else {
            err
        };
        if !err.is_temporary() || attempt >= self.retry.max_attempts || (completing && conflict) {
            return Err(if attempt > 1 {
                err.with_context("attempts", attempt)
            } else {
                err
            });
        }
        // A retry waits for its own place (held to a lowered bound after "slow
        // down"), as does every attempt of the operation after it.
        let _ = PREPAID.try_with(|prepaid| prepaid.give_back());
        // A server that asks us to slow down gets longer pauses (two more doublings),
        // and no shorter one than it asked for, up to the policy's longest.
        let asked = err
            .context(RETRY_AFTER_MS)
            .and_then(|ms| ms.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        let delay = self
            .retry
            .backoff(if throttled { attempt + 2 } else { attempt })
            .max(asked.min(self.retry.max_delay));
        tracing::debug!(
            method = %req.method, key = %req.key, attempt, ?delay, error = %err,
            "S3 request failed; retrying"
        );
        tokio::time::sleep(delay).await;
        Ok(attempt + 1)
    }

    /// One attempt at `req`. With `may_guess`, a HEAD refused with a bare 400
    /// under a session token forgets the token (see `send`); without, the token,
    /// fetched anew for this request already, is kept.
    async fn attempt(&self, req: &S3Request, may_guess: bool) -> Result<Response<Incoming>> {
        // An operation that took its requests' places beforehand (`put_file`)
        // lends them, until it gives them back.
        // Held while the attempt waits: `Ok`, a place the operation lends; `Err`,
        // the attempt's own.
        let _place = match PREPAID.try_with(|prepaid| prepaid.lend()).ok().flatten() {
            Some(lent) => Ok(lent),
            None => Err(self.limiter.acquire().await),
        };
        // Signed at the last moment, with the identity current now.
        let identity = match &self.credentials {
            Some(credentials) => Some(credentials.identity().await?),
            None => None,
        };
        let progress = Arc::new(Progress::new());
        // The clock this attempt is signed by (see `learn_clock`).
        let signed_skew = self.clock_skew_ms.load(Ordering::Relaxed);
        let http = self.build(req, identity.as_ref(), &progress)?;
        let len = http.body().len();
        let response = self
            .response(http, &progress)
            .await
            .map_err(|e| body_not_whole(e, &progress, len))?;
        self.learn_server(response.headers());
        let status = response.status();
        if status.is_success() {
            self.limiter.succeeded();
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        // The error body is best effort: its status says enough without it.
        let body = self.read_small(body).await.unwrap_or_default();
        let mut err = error_from_parts(status, &parts.headers, &body);
        // A clock off from the server's (by more than its 15 minutes): sent again,
        // signed by the server's clock, if its answer says what that is. A HEAD's
        // refusal has no code: a bare 403 whose `Date` is that far off is taken
        // for one.
        let skewed = match err.context("code") {
            Some(code) => code == "RequestTimeTooSkewed",
            None => req.method == Method::HEAD && status == StatusCode::FORBIDDEN,
        };
        if skewed && self.learn_clock(&parts.headers, signed_skew) {
            err = err.set_temporary(true);
        }
        // A HEAD's refusal has no body to name its code: a bare 400 signed with a
        // session token may be that token's.
        let guessed = err.context("code").is_none();
        let token_refused = match err.context("code") {
            Some(code) => refuses_token(code),
            None => {
                req.method == Method::HEAD
                    && status == StatusCode::BAD_REQUEST
                    && identity.as_ref().is_some_and(|identity| {
                        identity
                            .data::<aws_credential_types::Credentials>()
                            .is_some_and(|c| c.session_token().is_some())
                    })
            }
        };
        // Credentials already found not to be what a bare 400 is about: not
        // dropped again for one.
        let known = guessed
            && token_refused
            && matches!((&self.credentials, &identity), (Some(c), Some(i)) if c.is_not_the_token(i));
        if token_refused && guessed && (!may_guess || known) {
            // Refused again with the credentials fetched for the first refusal (or
            // with credentials refused so before): they are kept, and `send` says
            // it was not the token.
            // Marked when first found out (not again: the mark would never age).
            if let (Some(credentials), Some(identity), false) =
                (&self.credentials, &identity, known)
            {
                credentials.not_the_token(identity);
            }
            err = err.with_context("credentials", "fetched anew");
        } else if let (Some(credentials), Some(identity)) = (&self.credentials, &identity)
            && token_refused
            && credentials.refused(identity)
        {
            // Sent again, signed with credentials fetched anew. A bare 400 is only
            // a guess (`send` tries it once).
            err = err.set_temporary(true);
            if guessed {
                err = err.with_context("credentials", "fetched anew");
            }
        }
        // Answered before its body was whole (a server may refuse early).
        Err(body_not_whole(self.about_bucket(err), &progress, len))
    }

    /// Sends `http` and waits for its response head. The request timeout bounds
    /// each wait for the body to move (a frame taken by the connection) and the
    /// wait for the head after the body is sent, not the whole upload: a large
    /// part on a slow link is not cut off while it moves.
    async fn response(
        &self,
        http: http::Request<ReqBody>,
        progress: &Progress,
    ) -> Result<Response<Incoming>> {
        let len = http.body().len();
        let request = self.client().request(http);
        tokio::pin!(request);
        // A timeout too long for the clock (`Duration::MAX`: none) never ends.
        let deadline_after = |moved: Instant| moved.checked_add(self.request_timeout);
        loop {
            let Some(deadline) = deadline_after(progress.last_moved()) else {
                return (&mut request).await.map_err(from_client_error);
            };
            match tokio::time::timeout_at(deadline.into(), &mut request).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(e)) => return Err(from_client_error(e)),
                // The body moved while we waited: wait on from its last move.
                Err(_)
                    if deadline_after(progress.last_moved())
                        .is_none_or(|deadline| deadline > Instant::now()) => {}
                Err(_) => {
                    // How much of the body went out, the attempt's error says
                    // (`body`).
                    let message = if progress.sent() < len {
                        format!(
                            "the request body stopped moving for {:?}",
                            self.request_timeout
                        )
                    } else if len > 0 {
                        format!(
                            "no response within {:?} after the whole body was handed to the connection",
                            self.request_timeout
                        )
                    } else {
                        format!("no response within {:?}", self.request_timeout)
                    };
                    return Err(Error::new(ErrorKind::Timeout).with_message(message));
                }
            }
        }
    }

    /// Says which bucket a bucket-level error is about.
    fn about_bucket(&self, err: Error) -> Error {
        match err.context("code") {
            Some("NoSuchBucket") => err
                .with_message(format!("bucket {:?} does not exist", self.bucket))
                .with_context("bucket", &self.bucket),
            Some("PermanentRedirect") | Some("AuthorizationHeaderMalformed")
                if err.kind() == ErrorKind::InvalidInput =>
            {
                err.with_context("bucket", &self.bucket)
                    .with_context("region", &self.region)
            }
            _ => err,
        }
    }

    /// Notes how the server lists: SeaweedFS, once any answer shows it (its
    /// `Server` header, or, behind a proxy that rewrites that, as nginx does, the
    /// `Seaweed-*` headers of its object answers); S3's order until then, from the
    /// first answer on.
    fn learn_server(&self, headers: &HeaderMap) {
        if self.listing_order.load(Ordering::Relaxed) == ORDER_TREE {
            return;
        }
        let seaweed = header_str(headers, &http::header::SERVER)
            .is_some_and(|server| server.starts_with("SeaweedFS"))
            || headers
                .keys()
                .any(|name| name.as_str().starts_with("seaweed-"));
        if seaweed {
            self.listing_order.store(ORDER_TREE, Ordering::Relaxed);
        } else {
            let _ = self.listing_order.compare_exchange(
                ORDER_UNKNOWN,
                ORDER_KEYS,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// `true` once the server is known to follow S3's listing rules, so that
    /// `start-after` can skip ahead on it. SeaweedFS lists in directory-tree order,
    /// and its `start-after` compares path segments: it skips a directory named like
    /// the offset and, where a name sorts below `/` (`a b` and `a/`), keys that sort
    /// after the offset. There, and before the server is known, listings start from
    /// the beginning and the lister leaves out what comes before the offset.
    pub(crate) fn lists_in_key_order(&self) -> bool {
        self.listing_order.load(Ordering::Relaxed) == ORDER_KEYS
    }

    /// Reads a body that is expected to be small (XML), at most 16 MiB.
    async fn read_small(&self, body: Incoming) -> Result<Bytes> {
        self.read_at_most(body, 16 << 20).await
    }

    /// Reads a body of at most `max` bytes; a longer one is an error (and is not
    /// read further).
    async fn read_at_most(&self, mut body: Incoming, max: usize) -> Result<Bytes> {
        let mut pieces = Vec::new();
        let mut len = 0;
        while let Some(piece) = self.next_piece(&mut body).await? {
            len += piece.len();
            if len > max {
                return Err(Error::new(ErrorKind::Unexpected).with_message(format!(
                    "response body over {max} bytes where XML was expected"
                )));
            }
            pieces.push(piece);
        }
        Ok(match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.pop().unwrap_or_default(),
            _ => pieces.concat().into(),
        })
    }

    /// The next data frame of `body`, waiting at most the request timeout for it.
    async fn next_piece(&self, body: &mut Incoming) -> Result<Option<Bytes>> {
        loop {
            match tokio::time::timeout(self.request_timeout, body.frame()).await {
                Err(_) => {
                    return Err(Error::new(ErrorKind::Timeout).with_message(format!(
                        "response body stalled for {:?}",
                        self.request_timeout
                    )));
                }
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(Error::new(ErrorKind::Unexpected)
                        .set_temporary(true)
                        .with_message("response body broken off")
                        .with_source(e));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// HEAD `key`: its metadata, or `None` if there is no such object.
    pub(crate) async fn head(&self, key: &str) -> Result<Option<Metadata>> {
        self.head_if(key, &Conditions::default()).await
    }

    /// HEAD `key` if `conditions` hold.
    pub(crate) async fn head_if(
        &self,
        key: &str,
        conditions: &Conditions,
    ) -> Result<Option<Metadata>> {
        match self.head_headers_if(key, conditions).await? {
            Some(headers) => Ok(Some(metadata_of(&headers, None)?)),
            None => Ok(None),
        }
    }

    /// HEAD `key` if `conditions` hold: its response headers, or `None` if there
    /// is no such object.
    async fn head_headers_if(
        &self,
        key: &str,
        conditions: &Conditions,
    ) -> Result<Option<HeaderMap>> {
        let req = self.reading(S3Request::new(Method::HEAD, key).conditions(conditions)?)?;
        match self.send(&req).await {
            Ok(response) => Ok(Some(response.into_parts().0.headers)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of ListObjectsV2 under `prefix`.
    pub(crate) async fn list_page(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<xml::ListBucketResult> {
        self.list_page_after(prefix, delimiter, token, None, max_keys)
            .await
    }

    /// One page of ListObjectsV2 under `prefix`, of keys after `start_after`.
    pub(crate) async fn list_page_after(
        &self,
        prefix: &str,
        delimiter: bool,
        token: Option<&str>,
        start_after: Option<&str>,
        max_keys: usize,
    ) -> Result<xml::ListBucketResult> {
        // No key is longer than S3 takes: none starts with a longer prefix (a
        // directory of a path whose key is 1,024 bytes long), and none comes
        // between a longer key and its first 1,024 bytes, after which the
        // listing starts instead.
        if prefix.len() > MAX_KEY_LEN {
            return Ok(xml::ListBucketResult::default());
        }
        let start_after = start_after.map(|after| {
            let mut end = after.len().min(MAX_KEY_LEN);
            while !after.is_char_boundary(end) {
                end -= 1;
            }
            &after[..end]
        });
        // Parameters in any order: the signer sorts them for the canonical request.
        // Keys come percent-encoded: XML cannot carry every character a key may
        // hold (control characters), and parsers change others (line ends).
        let mut query = format!("list-type=2&max-keys={max_keys}&encoding-type=url");
        if delimiter {
            query.push_str("&delimiter=%2F");
        }
        if let Some(after) = start_after {
            query.push_str("&start-after=");
            query.push_str(&encode_query(after));
        }
        if !prefix.is_empty() {
            query.push_str("&prefix=");
            query.push_str(&encode_query(prefix));
        }
        if let Some(token) = token {
            query.push_str("&continuation-token=");
            query.push_str(&encode_query(token));
        }
        let (_, body) = self
            .send_read(
                &S3Request::new(Method::GET, "").query(query),
                "ListBucketResult",
            )
            .await?;
        xml::parse::<xml::ListBucketResult>(&body)?.decoded()
    }

    /// `true` if anything lives under `dir` (a key prefix ending in `/`, or the root).
    pub(crate) async fn dir_exists(&self, dir: &str) -> Result<bool> {
        if dir.is_empty() {
            return Ok(true);
        }
        self.any_listed(dir, false, 1, |page| {
            !page.contents.is_empty() || !page.common_prefixes.is_empty()
        })
        .await
    }

    /// Whether a page of the listing under `prefix` (`max_keys` a page) is `found`:
    /// pages that are not, but say more follow, are gone past (a server may send
    /// pages with no keys that do, when asked for few), never to a continuation
    /// token given before (which would loop).
    pub(crate) async fn any_listed(
        &self,
        prefix: &str,
        delimiter: bool,
        max_keys: usize,
        mut found: impl FnMut(&xml::ListBucketResult) -> bool,
    ) -> Result<bool> {
        let mut token: Option<String> = None;
        let mut tokens = std::collections::HashSet::new();
        loop {
            let page = self
                .list_page(prefix, delimiter, token.as_deref(), max_keys)
                .await?;
            if found(&page) {
                return Ok(true);
            }
            token = next_token(&page, &mut tokens)?;
            if token.is_none() {
                return Ok(false);
            }
        }
    }

    /// Fails with [`ErrorKind::NotADirectory`] if an ancestor of `path` is an object
    /// (for a directory path `a/b/`, `a/b` itself counts).
    pub(crate) async fn check_ancestors(&self, path: &str) -> Result<()> {
        let ancestors = path.match_indices('/').map(|(i, _)| self.key(&path[..i]));
        let heads = ancestors.map(|key| async move {
            match self.head(&key).await? {
                Some(_) => Err(Error::new(ErrorKind::NotADirectory).with_message(format!(
                    "{:?} is an object",
                    self.path_of(&key).unwrap_or(&key)
                ))),
                None => Ok(()),
            }
        });
        futures::future::try_join_all(heads).await.map(drop)
    }

    /// What a `create_dir(path)` checks first: [`find_bucket`](Self::find_bucket)
    /// (a `HEAD`'s 404 cannot tell a missing bucket from a missing key), and,
    /// where writes are checked, [`check_ancestors`](Self::check_ancestors).
    pub(crate) async fn check_parent(&self, path: &str) -> Result<()> {
        if self.write_checks {
            futures::future::try_join(self.find_bucket(), self.check_ancestors(path))
                .await
                .map(drop)
        } else {
            self.find_bucket().await
        }
    }

    /// What a write needs before it sends anything, where its checks do not do
    /// it: a write to a bucket that does not exist fails with `NoSuchBucket`,
    /// not made by the write as some servers (SeaweedFS) make it. Until the
    /// bucket has answered once, a listing of at most one key (its keys not
    /// decoded: an answer of 2xx with a listing finds the bucket), one at a time:
    /// the first writes of a backend wait for one listing, not one each, and
    /// those that waited for one that failed fail with its error. A listing
    /// the server refused with `AccessDenied` (a write-only policy) finds the
    /// bucket too, as S3 answers `NoSuchBucket` to anyone for one that is not
    /// there; other refusals (credentials that could not be loaded, or that the
    /// server does not know) fail the write and find nothing.
    pub(crate) async fn find_bucket(&self) -> Result<()> {
        if self.sends_with_checks() {
            return Ok(());
        }
        let ended = |core: &Self| core.bucket_listings.load(Ordering::Acquire);
        let before = ended(self);
        let mut failed = self.finding_bucket.lock().await;
        if self.sends_with_checks() {
            return Ok(());
        }
        if ended(self) != before
            && let Some(err) = &*failed
        {
            // A listing ended while this write waited, and failed: its answer.
            return Err(err.clone());
        }
        let mut query = String::from("list-type=2&max-keys=1");
        if !self.root.is_empty() {
            query.push_str("&prefix=");
            query.push_str(&encode_query(&self.root));
        }
        let listed = self
            .send_read(
                &S3Request::new(Method::GET, "").query(query),
                "ListBucketResult",
            )
            .await;
        let result = match listed {
            Ok(_) => Ok(()),
            Err(e) if e.context("code") == Some("AccessDenied") => {
                self.found_bucket();
                Ok(())
            }
            Err(e) => Err(e),
        };
        *failed = result.as_ref().err().cloned();
        self.bucket_listings.fetch_add(1, Ordering::Release);
        result
    }

    /// The requests [`check_writable`](Self::check_writable) has in flight at
    /// once: the listing, and a `HEAD` per ancestor.
    fn check_writable_requests(path: &str) -> usize {
        1 + path.matches('/').count()
    }

    /// What a write of file `path` checks first, as fs does: `path` is not a
    /// directory, and no ancestor is an object. Not atomic with the write. Where
    /// writes are not checked ([`S3Builder::write_checks`](super::S3Builder::write_checks)),
    /// only [`find_bucket`](Self::find_bucket).
    pub(crate) async fn check_writable(&self, path: &str) -> Result<()> {
        if !self.write_checks {
            return self.find_bucket().await;
        }
        let dir = async {
            if self.dir_exists(&self.key(&format!("{path}/"))).await? {
                Err(Error::new(ErrorKind::IsADirectory))
            } else {
                Ok(())
            }
        };
        futures::future::try_join(dir, self.check_ancestors(path))
            .await
            .map(drop)
    }

    /// `err` from an operation on file `path`, as fs would say it: a `NotFound`
    /// where a directory has that name is `IsADirectory`. A listing that cannot
    /// tell (throttled, refused, timed out) leaves the `NotFound` as the server
    /// said it, with why the directory was not looked for in its context
    /// (`directory_check`): a caller that probes for an optional file by its
    /// `NotFound` gets it whatever the listing met.
    pub(crate) async fn file_error(&self, path: &str, err: Error) -> Error {
        if err.kind() != ErrorKind::NotFound {
            return err;
        }
        match self.dir_exists(&self.key(&format!("{path}/"))).await {
            Ok(true) => Error::new(ErrorKind::IsADirectory),
            Ok(false) => err,
            Err(e) => err.with_context("directory_check", format!("failed: {e}")),
        }
    }

    /// The size of object `key` (HEAD), or `NotFound`.
    async fn size_of(&self, key: &str) -> Result<u64> {
        match self.head(key).await? {
            Some(meta) => Ok(meta.content_length()),
            None => Err(Error::new(ErrorKind::NotFound)),
        }
    }

    /// GET `range` of `key` into one buffer, if `conditions` hold. A body broken off
    /// midway, or an answer for part of the range, is resumed from the byte
    /// reached, pinned with `If-Match` to the ETag of the first response (an open
    /// reader passes its own as a condition).
    pub(crate) async fn get(
        &self,
        key: &str,
        range: ByteRange,
        conditions: &Conditions,
    ) -> Result<Bytes> {
        self.get_at_most(key, range, conditions, u64::MAX).await
    }

    /// [`get`](Self::get), or [`InvalidInput`](ErrorKind::InvalidInput) if the range,
    /// resolved against the object's size, is longer than `max_len` (checked when
    /// the response's headers arrive, before the body is read).
    pub(crate) async fn get_at_most(
        &self,
        key: &str,
        range: ByteRange,
        conditions: &Conditions,
        max_len: u64,
    ) -> Result<Bytes> {
        self.get_checked(key, range, conditions, max_len)
            .await
            .map(|(_, bytes)| bytes)
    }

    /// [`get`](Self::get), and the object's metadata from the response (its size,
    /// ETag and date: the version the bytes come from), when a body was read that
    /// gave the object's size (not an empty read, nor a body of no stated length
    /// read only as far as the range).
    ///
    /// A full read checks the object's checksum when the server sends one; a body
    /// that does not match is read again, and is an error once the attempts run
    /// out: damaged bytes are never returned.
    pub(crate) async fn get_with_meta(
        &self,
        key: &str,
        range: ByteRange,
        conditions: &Conditions,
    ) -> Result<(Option<Metadata>, Bytes)> {
        self.get_checked(key, range, conditions, u64::MAX).await
    }

    async fn get_checked(
        &self,
        key: &str,
        range: ByteRange,
        conditions: &Conditions,
        max_len: u64,
    ) -> Result<(Option<Metadata>, Bytes)> {
        let mut attempt = 1;
        loop {
            match self.get_once(key, range, conditions, max_len).await {
                // A body that failed its checksum, an object replaced while it
                // was read (see `get_once`), an answer with no ETag cut midway
                // (`resumed`), or one of no stated length (`get_unsized`): read
                // again from the start.
                Err(e)
                    if e.context("checksum").is_some()
                        || e.is_changed_while_read()
                        || e.context("resumed").is_some()
                        || e.context("answer") == Some("cut") =>
                {
                    let again = S3Request::new(Method::GET, key);
                    attempt = self.before_retry(e, attempt, &again).await?;
                }
                done => return done,
            }
        }
    }

    async fn get_once(
        &self,
        key: &str,
        range: ByteRange,
        conditions: &Conditions,
        max_len: u64,
    ) -> Result<(Option<Metadata>, Bytes)> {
        if range.is_empty_span() {
            let size = match self.head_if(key, conditions).await? {
                Some(meta) => meta.content_length(),
                None => return Err(Error::new(ErrorKind::NotFound)),
            };
            return range.resolve(size).map(|_| (None, Bytes::new()));
        }
        let resume = |from: u64, to: u64, etag: Option<&str>| -> Result<S3Request> {
            let mut req = S3Request::new(Method::GET, key)
                .header(RANGE, &format!("bytes={from}-{}", to - 1))?;
            if let Some(etag) = etag {
                req = req.header(IF_MATCH, etag)?;
            }
            self.reading(req)
        };
        let mut first = self.reading(S3Request::new(Method::GET, key).conditions(conditions)?)?;
        match range.header_value() {
            Some(value) => first = first.header(RANGE, &value)?,
            // S3 sends the object's checksum only when asked.
            None if self.checksum.is_some() => {
                first = first.header(HeaderName::from_static("x-amz-checksum-mode"), "ENABLED")?;
            }
            None => {}
        }
        let response = match self.send(&first).await {
            Ok(response) => response,
            Err(e) if e.kind() == ErrorKind::RangeNotSatisfiable => {
                let size = match e.context("size").and_then(|s| s.parse().ok()) {
                    Some(size) => size,
                    None => self.size_of(key).await?,
                };
                // Refused as past the end: an empty read (`10..` of 10 bytes), or
                // an error. A size that holds some of the range (the object grew
                // between the GET and the HEAD, or a server that refuses what it
                // has) is never answered with no bytes.
                // Past the end: the server's refusal, said in the range's terms.
                let span = range.resolve(size).map_err(|past| answered_by(past, &e))?;
                if !span.is_empty() {
                    return Err(Error::new(ErrorKind::Unexpected)
                        .set_temporary(true)
                        .with_message(format!(
                            "the server refused the range as past the end, but the object \
                             has {size} bytes (it changed between the requests?)"
                        ))
                        .with_context("range", range)
                        .with_source(e));
                }
                return Ok((None, Bytes::new()));
            }
            Err(e) => return Err(e),
        };
        // The caller's version, or the one first served.
        let callers = conditions.one_version();
        // A server (or a proxy) that does not check `If-Match` serves whatever it
        // has: the answer's own ETag says so.
        if let Some(wanted) = callers
            && let Some(served) = other_version(response.headers(), wanted)
        {
            return Err(not_the_version(wanted, &served).with_context("range", range));
        }
        // A whole object of no stated length (chunked: a server that compresses on
        // the fly, or a proxy), whatever the range asked.
        if response.status() == StatusCode::OK && !response.headers().contains_key(CONTENT_LENGTH) {
            return self.get_unsized(response, range, max_len).await;
        }
        let BodySpan {
            start: mut body_start,
            end: mut body_end,
            total,
        } = body_span(&response)?;
        let want = range.resolve(total)?;
        if want.end - want.start > max_len {
            let len = want.end - want.start;
            return Err(crate::raw::too_large(len, max_len).with_context("range", range));
        }
        let meta = metadata_of(response.headers(), Some(total))?;
        // The whole object's checksum, if it came and we read the whole object.
        let mut verify = match (response.status(), self.checksum) {
            (StatusCode::OK, Some(_)) if want.start == 0 && want.end == total => {
                Checksum::in_response(response.headers())
                    .map(|(checksum, expected)| (checksum.digest(), expected))
            }
            _ => None,
        };
        let pinned_by_caller = callers.is_some();
        let etag = callers
            .or_else(|| header_str(response.headers(), &ETAG))
            .map(str::to_owned);
        let len = usize::try_from(want.end - want.start).map_err(|_| {
            Error::new(ErrorKind::Unsupported).with_message("range larger than memory")
        })?;
        let mut buf = self.pool.take(len)?;
        let space = &mut buf.space()[..len];
        let mut filled = 0;
        let mut body = response.into_body();
        let mut at = body_start; // object offset of the next body byte
        let mut attempt = 1;
        // What was filled when the current answer began.
        let mut answered_from = 0;
        // A break in an answer with no ETag to ask for the rest of the same version
        // by: the rest, asked for unpinned, could come from an object written since.
        // `get` reads it again from the start (the `resumed` context), as for an
        // object replaced midway; the error stays what it was (a cut, a timeout),
        // and is not said to be a change (which it may not be).
        let unresumable = |e: Error, filled: usize| {
            e.with_context(
                "resumed",
                format!(
                    "no: {filled} of {len} bytes came, from an answer with no ETag to resume by"
                ),
            )
        };
        loop {
            let next = match self.next_piece(&mut body).await {
                Ok(Some(piece)) => Ok(piece),
                Ok(None) if filled == len => break,
                // Shorter than its own headers said (a chunked or unframed body
                // that ended cleanly): the rest is asked for, as after a cut.
                Ok(None) if at < body_end => {
                    let short = Error::new(ErrorKind::Unexpected)
                        .set_temporary(true)
                        .with_message(format!("response body ended after {filled} of {len} bytes"));
                    if etag.is_none() {
                        return Err(unresumable(short, filled));
                    }
                    Err(Some(short))
                }
                // All of an answer for less than was asked (a 206 whose
                // Content-Range ends before the range does, which HTTP allows):
                // the rest is asked for, of the same version. Not a failure if it
                // brought bytes.
                Ok(None) if etag.is_none() => {
                    return Err(Error::new(ErrorKind::Unexpected)
                        .set_temporary(true)
                        .with_message(format!(
                            "the server answered with bytes {body_start}..{body_end} of the \
                             object, and no ETag to ask for the rest of the same version by"
                        ))
                        .with_context("range", range));
                }
                Ok(None) if filled > answered_from => Err(None),
                Ok(None) => Err(Some(
                    Error::new(ErrorKind::Unexpected)
                        .set_temporary(true)
                        .with_message(format!(
                            "the server answered with bytes {body_start}..{body_end} of the \
                             object, none of the bytes still missing"
                        )),
                )),
                // Broken off midway (cut, stalled) with no ETag to resume by.
                Err(e) if etag.is_none() => return Err(unresumable(e, filled)),
                Err(e) => Err(Some(e)),
            };
            let piece = match next {
                Ok(piece) => piece,
                Err(failed) => {
                    // Resume from the first byte still missing, pinned to the same
                    // version of the object.
                    let from = want.start + filled as u64;
                    let again = resume(from, want.end, etag.as_deref())?;
                    if let Some(e) = failed {
                        attempt = self.before_retry(e, attempt, &again).await?;
                    }
                    // Pinned by us, not by the caller: the object was replaced
                    // midway, which a read that asked for no version does not fail
                    // for. It is read again, whole, by `get`.
                    let replaced = |e: Error| {
                        if e.kind() == ErrorKind::PreconditionFailed && !pinned_by_caller {
                            e.changed_while_read("the object was replaced while it was read")
                        } else {
                            e
                        }
                    };
                    let response = self.send(&again).await.map_err(replaced)?;
                    let span = body_span(&response)?;
                    // The rest from another version (a server that does not check
                    // `If-Match`), or of another size: never joined to the first.
                    let pinned = etag.as_deref().unwrap_or_default();
                    if let Some(served) = other_version(response.headers(), pinned) {
                        return Err(replaced(not_the_version(pinned, &served)));
                    }
                    if span.total != total {
                        return Err(replaced(
                            Error::new(ErrorKind::PreconditionFailed)
                                .with_message(format!(
                                    "the server answered for an object of {} bytes, not the \
                                     {total} of the version asked for (it did not check If-Match)",
                                    span.total
                                ))
                                .with_context("expected_etag", pinned),
                        ));
                    }
                    body = response.into_body();
                    (body_start, at, body_end) = (span.start, span.start, span.end);
                    answered_from = filled;
                    continue;
                }
            };
            // Keep the part of this piece that falls in want.start + filled..want.end.
            // Within the span `body_span` checked (at most `u64::MAX`).
            let piece_end = at.saturating_add(piece.len() as u64);
            // More than its span (a chunked body, whose length no header stated
            // for `body_span` to check): where its bytes belong, the server never
            // said.
            if piece_end > body_end {
                return Err(Error::new(ErrorKind::Unexpected)
                    .with_message(format!(
                        "malformed GET response: the body runs past byte {body_end} of the \
                         object, where its span ({body_start}..{body_end}) ends"
                    ))
                    .with_context("range", range));
            }
            let next = want.start + filled as u64;
            if at > next && filled < len {
                // A body that starts after the first byte still missing (a 206 for
                // less than was asked, from a server or a proxy): its bytes would
                // land where the missing ones belong.
                return Err(Error::new(ErrorKind::Unexpected)
                    .with_message(format!(
                        "the server's answer starts at byte {at} of the object, after byte \
                         {next}, the first one still missing"
                    ))
                    .with_context("range", range));
            }
            if piece_end > next && at < want.end {
                let from = (next.max(at) - at) as usize;
                let to = (piece_end.min(want.end) - at) as usize;
                space[filled..filled + (to - from)].copy_from_slice(&piece[from..to]);
                if let Some((digest, _)) = verify.as_mut() {
                    digest.update(&piece[from..to]);
                }
                filled += to - from;
            }
            at = piece_end;
            // A server may answer a range with more than it was asked for (HTTP
            // lets it ignore `Range` and send the whole object): stop once the
            // range is in, rather than download the rest. A body that ends where
            // the range does is read to its end, so its connection can be reused.
            if filled == len && at < body_end {
                break;
            }
        }
        if let Some((digest, expected)) = &verify {
            digest.check(expected)?;
        }
        buf.set_filled(len);
        Ok((Some(meta), buf.freeze()))
    }

    /// [`get_once`](Self::get_once)'s read of a 200 whose body has no stated
    /// length: the whole object, read as far as `range` goes (to its end, which is
    /// then the object's size, when the range has no end). Only the bytes the range
    /// may want are kept (at most `max_len` of them, and the last `n` of a suffix),
    /// and the result goes to one pooled buffer, as every read's does. The object's
    /// metadata comes only with its size, once read to its end; a full read checks
    /// its checksum. Nothing is resumed: a cut is a temporary error.
    async fn get_unsized(
        &self,
        response: Response<Incoming>,
        range: ByteRange,
        max_len: u64,
    ) -> Result<(Option<Metadata>, Bytes)> {
        let (parts, mut body) = response.into_parts();
        let too_large = |len: u64| crate::raw::too_large(len, max_len).with_context("range", range);
        let (from, to) = (range.start().unwrap_or(0), range.end());
        if let Some(to) = to
            && to.saturating_sub(from) > max_len
            && range.span().is_some()
        {
            return Err(too_large(to - from));
        }
        // A full read's checksum, over every byte.
        let mut verify = match (self.checksum, range.is_full()) {
            (Some(_), true) => Checksum::in_response(&parts.headers)
                .map(|(checksum, expected)| (checksum.digest(), expected)),
            _ => None,
        };
        // The pieces kept, the first of them at object offset `kept_from`.
        let mut kept: std::collections::VecDeque<Bytes> = std::collections::VecDeque::new();
        let (mut kept_from, mut kept_len) = (from, 0_u64);
        let mut at = 0_u64; // object offset of the next body byte
        let mut ended = false;
        while to.is_none_or(|to| at < to) {
            // A break or a stall in an answer of no stated length cannot be
            // resumed from where it stopped (nothing says how much is missing):
            // the read is made again from the start (`get_checked`).
            let next = self.next_piece(&mut body).await.map_err(|e| {
                if e.is_temporary() {
                    e.with_context("answer", "cut")
                } else {
                    e
                }
            });
            let Some(piece) = next? else {
                ended = true;
                break;
            };
            if let Some((digest, _)) = verify.as_mut() {
                digest.update(&piece);
            }
            let piece_at = at;
            at += piece.len() as u64;
            // The part of it from `from` on, up to `to`.
            let skip = from.saturating_sub(piece_at).min(piece.len() as u64) as usize;
            let keep = to.map_or(piece.len(), |to| {
                (to.saturating_sub(piece_at).min(piece.len() as u64)) as usize
            });
            if keep > skip {
                kept_len += (keep - skip) as u64;
                kept.push_back(piece.slice(skip..keep));
            }
            // A suffix keeps its last `n` bytes only.
            if let Some(n) = range.suffix_len()
                && kept_len > n
            {
                let mut excess = kept_len - n;
                while let Some(front) = kept.front_mut()
                    && excess > 0
                {
                    let gone = excess.min(front.len() as u64);
                    if gone == front.len() as u64 {
                        kept.pop_front();
                    } else {
                        *front = front.slice(gone as usize..);
                    }
                    excess -= gone;
                    kept_len -= gone;
                    kept_from += gone;
                }
            }
            if kept_len > max_len {
                return Err(too_large(to.map_or(kept_len, |to| to - from)));
            }
        }
        // A chunked body's end is marked; one ended by the connection's close
        // (neither length nor chunks: HTTP/1.0 style, over plain HTTP) looks the
        // same cut midway as whole. Only a checksum over all of it can tell.
        if ended && !is_chunked(&parts.headers) && verify.is_none() {
            return Err(Error::new(ErrorKind::Unexpected)
                .set_temporary(true)
                .with_message(format!(
                    "the answer gave no length and was not chunked: its end after {at} bytes, \
                     when the connection closed, cannot be told from a cut"
                ))
                .with_context("range", range));
        }
        let want = range.resolve(at)?;
        if let Some((digest, expected)) = &verify
            && ended
        {
            digest.check(expected)?;
        }
        let meta = if ended {
            Some(metadata_of(&parts.headers, Some(at))?)
        } else {
            None
        };
        // The wanted bytes, from the kept ones, into one buffer.
        let len = (want.end - want.start) as usize;
        let mut buf = self.pool.take(len)?;
        let space = &mut buf.space()[..len];
        let mut filled = 0;
        let mut piece_at = kept_from;
        for piece in kept {
            let piece_end = piece_at + piece.len() as u64;
            let a = want.start.max(piece_at);
            let b = want.end.min(piece_end);
            if b > a {
                let n = (b - a) as usize;
                let from = (a - piece_at) as usize;
                space[filled..filled + n].copy_from_slice(&piece[from..from + n]);
                filled += n;
            }
            piece_at = piece_end;
        }
        if filled != len {
            return Err(Error::new(ErrorKind::Unexpected).with_message(format!(
                "a body of no stated length held {filled} of the {len} bytes asked for"
            )));
        }
        buf.set_filled(len);
        Ok((meta, buf.freeze()))
    }

    /// PUT `body` as `key`, as `options` allow.
    pub(crate) async fn put(
        &self,
        key: &str,
        body: ReqBody,
        options: &WriteOptions,
    ) -> Result<Metadata> {
        let len = body.len();
        let mut req = S3Request::new(Method::PUT, key)
            .write_options(options)?
            .object_options(options, self.encryption_of(options))?;
        // A conditional PUT carries an id, so that an attempt stored although its
        // answer was lost is known for ours (an unconditional one is simply sent
        // again).
        let conditional = options.if_not_exists || options.if_match.is_some();
        let write_id = conditional.then(new_write_id).transpose()?;
        if let Some(id) = &write_id {
            req = req.header(WRITE_ID, id)?;
        }
        if let Some(checksum) = self.checksum {
            req = req.header(
                checksum.header(),
                &checksum.encode(checksum.of(body.pieces())),
            )?;
        }
        let req = req.body(body);
        let headers = match self.send(&req).await {
            Ok(response) => response.into_parts().0.headers,
            Err(e) => match write_id {
                Some(id) => self.stored_anyway(e, key, &id, options).await,
                // No id to look for: an attempt whose answer was lost may have
                // stored it all the same.
                None => Err(stored_unknown_if(answer_lost(&e), e)),
            }
            .map_err(|e| write_refused(e, options))?,
        };
        metadata_of(&headers, Some(len))
    }

    /// `PUT`s `body` as file `path` once [`check_writable`](Self::check_writable)
    /// passes. The checks and the `PUT` go out together, the body's last byte held
    /// back until the checks answer ([`ReqBody::gated`]): a write costs one round
    /// trip, not two, and when the checks fail the `PUT` is called off one byte
    /// short, which no server stores.
    ///
    /// The requests take their places in the limiter all at once, beforehand
    /// ([`Prepaid`]): a `PUT` holding a place while its checks wait for theirs
    /// could wait for good. Where that many are not free, the body is empty (no
    /// byte to hold back), or a request is to be sent again (the `PUT` called off
    /// if the checks have not answered), the write goes one step after the
    /// other: the checks, then the `PUT`, each request waiting for its place.
    pub(crate) async fn put_file(
        &self,
        path: &str,
        body: ReqBody,
        options: &WriteOptions,
    ) -> Result<Metadata> {
        let key = self.key(path);
        if !self.write_checks {
            // Nothing to send beside the PUT (the bucket looked for once).
            self.check_writable(path).await?;
            return self.put(&key, body, options).await;
        }
        let places = Self::check_writable_requests(path) + 1;
        let places = match body.len() {
            0 => None,
            _ if !self.sends_with_checks() => None,
            _ => self.limiter.try_acquire_many(places),
        };
        let Some(places) = places else {
            self.check_writable(path).await?;
            return self.put(&key, body, options).await;
        };
        let (prepaid, mut given_back) = Prepaid::new(places);
        let (key_to_gate, gate) = body::gate();
        let mut check =
            std::pin::pin!(PREPAID.scope(Arc::clone(&prepaid), self.check_writable(path)));
        let mut put = Box::pin(PREPAID.scope(
            Arc::clone(&prepaid),
            self.put(&key, body.clone().gated(gate), options),
        ));
        enum First {
            Checked(Result<()>),
            Put(Result<Metadata>),
            GaveBack,
        }
        let first = std::future::poll_fn(|cx| {
            if let Poll::Ready(checked) = check.as_mut().poll(cx) {
                return Poll::Ready(First::Checked(checked));
            }
            // Held at its last byte, the PUT can only fail.
            if let Poll::Ready(put) = put.as_mut().poll(cx) {
                return Poll::Ready(First::Put(put));
            }
            match std::pin::Pin::new(&mut given_back).poll(cx) {
                Poll::Ready(_) => Poll::Ready(First::GaveBack),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        match first {
            First::Checked(Ok(())) => {
                // The checks' places go back now, not when the upload ends; the
                // PUT's, when its attempt does. A retry of the PUT waits for its own.
                prepaid.give_back();
                key_to_gate.set(true);
                put.await
            }
            First::Checked(Err(e)) => {
                key_to_gate.set(false);
                Err(e)
            }
            // The server answered before the body was whole: whatever it kept of a
            // body one byte short, it did not take the write as sent.
            First::Put(Ok(_)) => Err(Error::new(ErrorKind::Unexpected)
                .with_message("the server answered the PUT before its body was whole")
                .with_context("stored", "unknown")),
            // Its attempts never had their last byte (a retry gives the places
            // back first, and is sent whole later): the error says nothing was
            // stored (see `next_attempt`).
            First::Put(Err(e)) => Err(e),
            First::GaveBack => {
                // The PUT never got its last byte: called off, and its place
                // given back before the checks' retries wait for theirs.
                key_to_gate.set(false);
                drop(put);
                check.await?;
                self.put(&key, body, options).await
            }
        }
    }

    /// Whether a write that failed with `err` was stored all the same, by an attempt
    /// whose answer was lost (a timeout, a broken connection, a 5xx after the
    /// commit). The attempt sent after it then fails its precondition (the object
    /// exists, or has changed: by this very write), or, for a multipart upload's
    /// completion, finds the upload gone (`NoSuchUpload`); or the attempts run out.
    /// So after any error of a write one of whose attempts ended without an
    /// answer that settles it (`answer` = `lost`), the object is looked at (`HEAD`): if it carries this write's `id` (see
    /// [`WRITE_ID`]), the write was stored, and the `HEAD`'s headers are returned.
    ///
    /// # Errors
    ///
    /// `err` if the object carries no id or another, or if it is missing: the
    /// write was refused. Only a found id is conclusive, though: when `err` is a
    /// temporary error (the attempts ran out; the last one may still be committed
    /// after the `HEAD`), or the `HEAD` itself fails, `err` has `stored` =
    /// `unknown` in its context.
    async fn stored_anyway(
        &self,
        err: Error,
        key: &str,
        id: &str,
        options: &WriteOptions,
    ) -> Result<HeaderMap> {
        if !answer_lost(&err) {
            // Refused, throttled or never sent: no attempt stored it.
            return Err(err);
        }
        let head = async {
            let req = S3Request::new(Method::HEAD, key);
            // The object as this write stores it: with its own SSE-C key, if any.
            let req = match self.encryption_of(options) {
                Some(Encryption::Customer(key)) => req.customer_key(key, false)?,
                _ => req,
            };
            self.send(&req).await
        };
        match head.await {
            Ok(response) if header_str(response.headers(), &WRITE_ID) == Some(id) => {
                tracing::debug!(%key, error = %err, "a write whose answer was lost was stored");
                return Ok(response.into_parts().0.headers);
            }
            // Not ours: refused, unless the last attempt may still be committed.
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                tracing::debug!(%key, error = %e, "cannot tell whether a failed write was stored");
                return Err(err.with_context("stored", "unknown"));
            }
        }
        if err.is_temporary() {
            return Err(err.with_context("stored", "unknown"));
        }
        Err(err)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<()> {
        match self.send(&S3Request::new(Method::DELETE, key)).await {
            Err(e) if key_not_found(&e) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Deletes `key` only while it is still version `etag` (`If-Match`):
    /// `PreconditionFailed` if it changed, `NotFound` if it is gone (unless an
    /// earlier attempt's answer was lost: then that attempt deleted it). A server
    /// that does not take the condition (`NotImplemented`) deletes it without.
    pub(crate) async fn delete_if_match(&self, key: &str, etag: &str) -> Result<()> {
        let req = S3Request::new(Method::DELETE, key).header(http::header::IF_MATCH, etag)?;
        match self.send(&req).await {
            Err(e) if key_not_found(&e) && e.context(ANSWER) == Some("lost") => Ok(()),
            Err(e) if e.kind() == ErrorKind::Unsupported => {
                tracing::warn!(%key, error = %e, "the server takes no If-Match on DELETE; deleting without it");
                self.delete(key).await
            }
            other => other.map(drop),
        }
    }

    /// DeleteObjects, 1,000 keys per request: one result per key, in order. A
    /// request that fails as a whole fails every key of its batch. A key XML
    /// cannot carry (a control character) is deleted on its own.
    pub(crate) async fn delete_many(&self, keys: &[String]) -> Vec<Result<()>> {
        let (in_xml, alone): (Vec<usize>, Vec<usize>) =
            (0..keys.len()).partition(|&i| xml::fits_xml(&keys[i]));
        let mut results: Vec<Result<()>> = vec![Ok(()); keys.len()];
        let singles = futures::future::join_all(alone.iter().map(|&i| self.delete(&keys[i])));
        for (i, result) in alone.iter().zip(singles.await) {
            results[*i] = result;
        }
        for batch in in_xml.chunks(1000) {
            let mut pending = batch.to_vec();
            let mut attempt = 1;
            loop {
                let names: Vec<String> = pending.iter().map(|&i| keys[i].clone()).collect();
                let (outcomes, answered) = match self.delete_batch(&names).await {
                    Ok(failed) => (batch_outcomes(&names, failed), true),
                    // The request itself failed, after its own retries.
                    Err(e) => (names.iter().map(|_| Err(e.clone())).collect(), false),
                };
                let mut again = Vec::new();
                let mut temporary = None;
                for (&i, outcome) in pending.iter().zip(outcomes) {
                    if let Err(e) = &outcome
                        && answered
                        && e.is_temporary()
                    {
                        // A key the answer says failed for now (SlowDown,
                        // InternalError): sent again, alone with the others.
                        temporary.get_or_insert_with(|| e.clone());
                        again.push(i);
                    }
                    results[i] = outcome;
                }
                let Some(err) = temporary else { break };
                let request = S3Request::new(Method::POST, "").query("delete");
                match self.before_retry(err, attempt, &request).await {
                    Ok(next) => (attempt, pending) = (next, again),
                    Err(_) => break,
                }
            }
        }
        results
    }

    /// One DeleteObjects request; the keys that failed, with their errors.
    async fn delete_batch(
        &self,
        batch: &[String],
    ) -> Result<std::collections::HashMap<String, Error>> {
        let body = xml::to_body(&xml::Delete {
            quiet: true,
            objects: batch
                .iter()
                .map(|key| xml::DeleteObject { key: key.clone() })
                .collect(),
        })?;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        let req = S3Request::new(Method::POST, "")
            .query("delete")
            .header(HeaderName::from_static("content-md5"), &md5)?
            .body(body);
        let (headers, body) = self.send_read(&req, "DeleteResult").await?;
        let result: xml::DeleteResult = xml::parse(&body)?;
        // Each key's failure names the answer that said it.
        let request_id = header_str(&headers, &HeaderName::from_static("x-amz-request-id"));
        Ok(result
            .errors
            .into_iter()
            .map(|failed| {
                let mut err = error_from_code(&failed.code, StatusCode::OK)
                    .with_message(failed.message)
                    .with_context("code", &failed.code);
                if let Some(id) = request_id {
                    err = err.with_context("request_id", id);
                }
                (failed.key, err)
            })
            .collect())
    }

    /// Copies object `from_key` to `to_key`, as `options` allow (`if_not_exists`:
    /// `If-None-Match: *`): one CopyObject up to the multipart copy threshold;
    /// above it, a multipart upload of UploadPartCopy parts, `part_concurrency` in
    /// flight, each pinned to the source's ETag, so a source replaced midway fails
    /// the copy instead of mixing two versions. The data never leaves the server.
    pub(crate) async fn copy(
        self: &Arc<Self>,
        from_key: &str,
        to_key: &str,
        options: &WriteOptions,
    ) -> Result<()> {
        self.copy_of(from_key, to_key, options).await.map(drop)
    }

    /// [`copy`](Self::copy), giving back the ETag of the version copied (`None`
    /// from a server that gives none).
    ///
    /// A CopyObject copies the version its `HEAD` saw
    /// (`x-amz-copy-source-if-match`), so that the ETag given back is the version
    /// copied, even when the source was written again with the same content (and
    /// so the same ETag) after another between the two. A source written in
    /// between is looked at again, and copied as it is then (at most
    /// [`COPY_SOURCE_CHANGED_MAX`] times; then a temporary
    /// [`ErrorKind::PreconditionFailed`]). A copy in parts (above the multipart copy
    /// threshold) pins each part the same way, and fails when the source changes.
    pub(crate) async fn copy_of(
        self: &Arc<Self>,
        from_key: &str,
        to_key: &str,
        options: &WriteOptions,
    ) -> Result<Option<String>> {
        // An earlier attempt's answer was lost: a copy there may be its, which
        // every error from then on says (a later round's own failure too).
        let (mut attempt, mut lost) = (1, false);
        loop {
            let refused = match self.copy_once(from_key, to_key, options).await {
                Ok(CopyOnce::Done(etag)) => return Ok(etag),
                Ok(CopyOnce::Refused(refused)) => refused,
                Err(e) => return Err(stored_unknown_if(lost, e)),
            };
            lost |= refused.context("stored") == Some("unknown");
            let said = move |e: Error| stored_unknown_if(lost, e);
            let refused = said(refused);
            // With a condition on the target (`If-None-Match`), the 412 is the
            // source's or the target's: the target says (the source may look
            // unchanged, written back with the same content). Without, it is the
            // source's.
            if options.if_not_exists {
                match self.head_headers_if(to_key, &Conditions::default()).await {
                    Ok(Some(_)) => return Err(write_refused(refused, options)),
                    Ok(None) => {}
                    // Not known now: may be known on a second try.
                    Err(e) if e.is_temporary() => return Err(said(e)),
                    // Not to be known (no right to read the target, say): the
                    // refusal stands as the server gave it.
                    Err(e) => {
                        return Err(refused.with_context(
                            "target",
                            format!(
                                "not looked at ({e}): the source's change or the target's presence"
                            ),
                        ));
                    }
                }
            }
            if attempt == COPY_SOURCE_CHANGED_MAX {
                let changed = Error::new(ErrorKind::PreconditionFailed)
                    .with_message(format!(
                        "the source changed during each of {attempt} copies of it"
                    ))
                    .set_temporary(true);
                return Err(said(changed).with_source(refused));
            }
            attempt += 1;
        }
    }

    /// One [`copy_of`](Self::copy_of): of the version its `HEAD` sees.
    async fn copy_once(
        self: &Arc<Self>,
        from_key: &str,
        to_key: &str,
        options: &WriteOptions,
    ) -> Result<CopyOnce> {
        let Some(source_headers) = self
            .head_headers_if(from_key, &Conditions::default())
            .await?
        else {
            return Err(Error::new(ErrorKind::NotFound));
        };
        let source = metadata_of(&source_headers, None)?;
        let etag = source.etag().map(str::to_owned);
        if source.content_length() > self.multipart_copy_threshold {
            // Its completion says what the target's conditions did.
            return self
                .copy_multipart(from_key, to_key, &source, &source_headers, options)
                .await
                .map(|()| CopyOnce::Done(etag));
        }
        let mut req = S3Request::new(Method::PUT, to_key)
            .header(
                HeaderName::from_static("x-amz-copy-source"),
                &self.copy_source(from_key),
            )?
            .write_options(options)?
            .object_options(options, self.encryption_of(options))?;
        if let Some(etag) = &etag {
            req = req.header(HeaderName::from_static("x-amz-copy-source-if-match"), etag)?;
        }
        if options.content_type.is_some() {
            // CopyObject takes a new content type only with all the metadata
            // replaced: the rest of the source's goes with it, so that only the
            // content type changes (a gzip object stays gzip).
            req = req.header(
                HeaderName::from_static("x-amz-metadata-directive"),
                "REPLACE",
            )?;
            req.headers.extend(kept_metadata(&source_headers));
        }
        if let Some(key) = self.read_key() {
            req = req.customer_key(key, true)?;
        }
        let e = match self.send_read(&req, "CopyObjectResult").await {
            Ok(_) => return Ok(CopyOnce::Done(etag)),
            Err(e) => e,
        };
        // A copy carries no write id (its metadata is the source's), so any
        // failure after an attempt whose answer was lost may leave this copy
        // stored; a refusal then may be of this very copy.
        let e = stored_unknown_if(answer_lost(&e), e);
        match etag {
            Some(_) if e.kind() == ErrorKind::PreconditionFailed => Ok(CopyOnce::Refused(e)),
            _ => Err(write_refused(e, options)),
        }
    }

    async fn copy_multipart(
        self: &Arc<Self>,
        from_key: &str,
        to_key: &str,
        source: &Metadata,
        source_headers: &HeaderMap,
        options: &WriteOptions,
    ) -> Result<()> {
        use futures::{StreamExt as _, TryStreamExt as _};
        let size = source.content_length();
        // S3 takes at most 10,000 parts, of at most 5 GiB.
        let part_size = self.copy_part_size.max(size.div_ceil(10_000));
        if part_size > super::config::MAX_PART_SIZE {
            return Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
                "the source is {size} bytes, more than a multipart copy can hold \
                 (10,000 parts of at most 5 GiB)"
            )));
        }
        let mut options = options.clone();
        // A new upload copies no metadata: it is given the source's, as CopyObject
        // keeps it (its user metadata and content headers), with the copy's
        // content type if it sets one.
        if options.content_type.is_none() {
            options.content_type = source.content_type().map(str::to_owned);
        }
        let mut kept = kept_metadata(source_headers);
        // Nor tags, which CopyObject copies too: they are read and set on the
        // upload. A copy that cannot read tags its source's HEAD counted fails,
        // before anything is created, rather than lose them.
        if let Some(tags) = self.tags_to_keep(from_key, source_headers).await? {
            kept.push((HeaderName::from_static("x-amz-tagging"), tags));
        }
        // The upload's own requests act on the target: their errors name it (a
        // copy's error names the source otherwise), and an upload gone from under
        // the copy (`NoSuchUpload`, `NotFound`) is no missing source.
        let target = |e: Error| e.with_path(self.path_of(to_key).unwrap_or(to_key));
        let of_upload = |e: Error| {
            if e.context("code") == Some("NoSuchUpload") {
                target(e)
            } else {
                e
            }
        };
        let write_id = new_write_id()?;
        let id = self
            .create_multipart(to_key, &options, None, &write_id, &kept)
            .await
            .map_err(target)?;
        // A copy dropped from here on (its caller gave up) aborts its upload.
        let mut guard = UploadGuard::new(self, to_key);
        guard.arm(&id);
        let parts = (0..size.div_ceil(part_size)).map(|i| {
            let start = i * part_size;
            (
                i as u32 + 1,
                start..start.saturating_add(part_size).min(size),
            )
        });
        let copied = futures::stream::iter(parts)
            .map(|(number, range)| {
                self.upload_part_copy(to_key, &id, number, from_key, range, source, &options)
            })
            .buffered(self.part_concurrency)
            .try_collect::<Vec<_>>()
            .await;
        let result = match copied {
            Ok(parts) => self
                .complete_multipart(to_key, &id, &write_id, parts, &options, None)
                .await
                .map(drop)
                .map_err(target),
            Err(e) => Err(of_upload(e)),
        };
        let result = match result {
            // The copy's error; an upload it leaves behind says so.
            Err(e) => match self.abort_multipart(to_key, &id).await {
                Ok(()) => Err(e),
                Err(abort) => {
                    let path = self.path_of(to_key).unwrap_or(to_key);
                    Err(abort_failed(e, abort, to_key, path))
                }
            },
            ok => ok,
        };
        guard.disarm();
        result
    }

    /// The tags of `key`, whose HEAD answered `headers`, as an `x-amz-tagging`
    /// value (`k1=v1&k2=v2`, form-encoded); `None` if it has none.
    ///
    /// They are read unless the HEAD counted none: AWS sends the count only to a
    /// caller who may read the tags, and some stores never send it.
    ///
    /// # Errors
    ///
    /// When the HEAD counted tags, GetObjectTagging's failure, with the request's
    /// context: a copy would lose them. When it did not, only a temporary failure
    /// that outlasted the retries; a refusal (`AccessDenied` without
    /// `s3:GetObjectTagging`, `NotImplemented`, any other error) or an answer that
    /// is no tag set (a store that ignores the query and sends the object: at most
    /// 64 KiB of it is read) is logged, and the copy is made without tags; a
    /// `<Tagging>` document that does not parse fails it (its tags would be lost
    /// unseen).
    async fn tags_to_keep(&self, key: &str, headers: &HeaderMap) -> Result<Option<HeaderValue>> {
        let count = header_str(headers, &HeaderName::from_static("x-amz-tagging-count"))
            .and_then(|n| n.trim().parse::<u32>().ok());
        if count == Some(0) {
            return Ok(None);
        }
        let req = S3Request::new(Method::GET, key).query("tagging");
        let reading = |e: Error| {
            e.with_context(
                "reading",
                "the source's tags (GetObjectTagging), which a copy in parts sets on its \
                 upload: without them the copy would lose them",
            )
        };
        let tagging: xml::Tagging = if count.is_some() {
            let (_, body) = self.send_read(&req, "Tagging").await.map_err(reading)?;
            xml::parse(&body)?
        } else {
            let without = |why: &dyn fmt::Display| {
                tracing::warn!(
                    %key, error = %why,
                    "cannot read the tags of a copy's source (its HEAD counted none): the copy in parts is made without any"
                );
                Ok(None)
            };
            let body = match self.send(&req).await {
                Ok(response) => self.read_at_most(response.into_body(), 64 << 10).await,
                Err(e) if e.is_temporary() => return Err(reading(e)),
                Err(e) => return without(&e),
            };
            match body {
                // A document that does not parse (cut short, malformed) fails the
                // copy: its tags would be lost unseen.
                Ok(body) if xml::document_root(&body) == Some(&b"Tagging"[..]) => {
                    xml::parse(&body).map_err(reading)?
                }
                Ok(_) => return without(&"the answer is not a <Tagging> document"),
                Err(e) => return without(&e),
            }
        };
        if tagging.tag_set.tags.is_empty() {
            return Ok(None);
        }
        let form = tagging
            .tag_set
            .tags
            .iter()
            .map(|t| format!("{}={}", encode_query(&t.key), encode_query(&t.value)))
            .collect::<Vec<_>>()
            .join("&");
        HeaderValue::from_str(&form).map(Some).map_err(|_| {
            Error::new(ErrorKind::Unexpected).with_message("the source's tags cannot be encoded")
        })
    }

    /// UploadPartCopy of bytes `range` of `from_key` (as it is at `source`'s ETag).
    #[expect(clippy::too_many_arguments, reason = "one S3 call and its parameters")]
    async fn upload_part_copy(
        &self,
        to_key: &str,
        upload_id: &str,
        number: u32,
        from_key: &str,
        range: std::ops::Range<u64>,
        source: &Metadata,
        options: &WriteOptions,
    ) -> Result<xml::CompletedPart> {
        let query = format!("partNumber={number}&uploadId={}", encode_query(upload_id));
        let mut req = S3Request::new(Method::PUT, to_key)
            .query(query)
            .header(
                HeaderName::from_static("x-amz-copy-source"),
                &self.copy_source(from_key),
            )?
            .header(
                HeaderName::from_static("x-amz-copy-source-range"),
                &format!("bytes={}-{}", range.start, range.end - 1),
            )?;
        if let Some(etag) = source.etag() {
            req = req.header(HeaderName::from_static("x-amz-copy-source-if-match"), etag)?;
        }
        if let Some(key) = self.read_key() {
            req = req.customer_key(key, true)?;
        }
        if let Some(Encryption::Customer(key)) = self.encryption_of(options) {
            req = req.customer_key(key, false)?;
        }
        let (_, body) =
            self.send_read(&req, "CopyPartResult")
                .await
                .map_err(|e| match e.kind() {
                    // The part is pinned to the source's ETag: not the target's
                    // condition, which the completion checks.
                    ErrorKind::PreconditionFailed => Error::new(ErrorKind::PreconditionFailed)
                        .with_message("the source changed during the copy")
                        .with_source(e),
                    _ => e,
                })?;
        let result: xml::CopyPartResult = xml::parse(&body)?;
        Ok(xml::CompletedPart {
            part_number: number,
            etag: result.etag,
            checksum_crc32: None,
            checksum_crc32c: None,
            checksum_crc64nvme: None,
            crc: None,
        })
    }

    /// CreateMultipartUpload, storing the object as `options` ask; `checksum`: the
    /// parts carry checksums and the object gets a whole-object one; `write_id` is
    /// stored with the object (see [`Core::stored_anyway`]).
    pub(crate) async fn create_multipart(
        &self,
        key: &str,
        options: &WriteOptions,
        checksum: Option<Checksum>,
        write_id: &str,
        metadata: &[(HeaderName, HeaderValue)],
    ) -> Result<String> {
        let mut req = S3Request::new(Method::POST, key)
            .query("uploads")
            .object_options(options, self.encryption_of(options))?
            .header(WRITE_ID, write_id)?;
        req.headers.extend(metadata.iter().cloned());
        if let Some(checksum) = checksum {
            req = req
                .header(
                    HeaderName::from_static("x-amz-checksum-algorithm"),
                    checksum.name(),
                )?
                .header(
                    HeaderName::from_static("x-amz-checksum-type"),
                    "FULL_OBJECT",
                )?;
        }
        let (_, body) = self
            .send_read(&req, "InitiateMultipartUploadResult")
            .await?;
        let result: xml::InitiateMultipartUploadResult = xml::parse(&body)?;
        Ok(result.upload_id)
    }

    /// UploadPart, with the part's `checksum` and the SSE-C key of `encryption`.
    pub(crate) async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: ReqBody,
        checksum: Option<Checksum>,
        encryption: Option<&Encryption>,
    ) -> Result<xml::CompletedPart> {
        let query = format!("partNumber={number}&uploadId={}", encode_query(upload_id));
        let mut req = S3Request::new(Method::PUT, key).query(query);
        if let Some(Encryption::Customer(key)) = encryption {
            req = req.customer_key(key, false)?;
        }
        let mut crc = None;
        let mut encoded = None;
        if let Some(checksum) = checksum {
            let value = checksum.of(body.pieces());
            let text = checksum.encode(value);
            req = req.header(checksum.header(), &text)?;
            crc = Some((value, body.len()));
            encoded = Some((checksum, text));
        }
        let response = self.send(&req.body(body)).await?;
        let etag = header_str(response.headers(), &ETAG)
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected).with_message("UploadPart answered without ETag")
            })?
            .to_owned();
        let (mut checksum_crc32, mut checksum_crc32c, mut checksum_crc64nvme) = (None, None, None);
        match encoded {
            Some((Checksum::Crc32, text)) => checksum_crc32 = Some(text),
            Some((Checksum::Crc32c, text)) => checksum_crc32c = Some(text),
            Some((Checksum::Crc64Nvme, text)) => checksum_crc64nvme = Some(text),
            None => {}
        }
        Ok(xml::CompletedPart {
            part_number: number,
            etag,
            checksum_crc32,
            checksum_crc32c,
            checksum_crc64nvme,
            crc,
        })
    }

    /// CompleteMultipartUpload of `parts` (in order). With part checksums (of
    /// `checksum`), the whole object's, combined from theirs, goes too: the server
    /// checks the assembled object against what was written.
    ///
    /// A completion stored although its answer was lost is known by `write_id`, the
    /// one the upload was created with, and is done.
    pub(crate) async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        write_id: &str,
        parts: Vec<xml::CompletedPart>,
        options: &WriteOptions,
        checksum: Option<Checksum>,
    ) -> Result<Option<String>> {
        let whole = checksum.and_then(|checksum| {
            let mut crcs = parts.iter().map(|p| p.crc);
            let (first, _) = crcs.next()??;
            crcs.try_fold(first, |acc, part| {
                let (crc, len) = part?;
                Some(checksum.combine(acc, crc, len))
            })
            .map(|value| (checksum, checksum.encode(value)))
        });
        let body = xml::to_body(&xml::CompleteMultipartUpload { parts })?;
        let mut req = S3Request::new(Method::POST, key)
            .query(format!("uploadId={}", encode_query(upload_id)))
            .write_options(options)?;
        if let Some((checksum, value)) = whole {
            req = req.header(checksum.header(), &value)?.header(
                HeaderName::from_static("x-amz-checksum-type"),
                "FULL_OBJECT",
            )?;
        }
        if let Some(Encryption::Customer(key)) = self.encryption_of(options) {
            req = req.customer_key(key, false)?;
        }
        let req = req.body(body);
        let body = match self.send_read(&req, "CompleteMultipartUploadResult").await {
            Ok((_, body)) => body,
            Err(e) => {
                let stored = self.stored_anyway(e, key, write_id, options).await;
                return stored
                    .map(|headers| header_str(&headers, &ETAG).map(str::to_owned))
                    .map_err(|e| write_refused(e, options));
            }
        };
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Completed {
            #[serde(rename = "ETag", default)]
            etag: Option<String>,
        }
        Ok(xml::parse::<Completed>(&body).ok().and_then(|c| c.etag))
    }

    /// AbortMultipartUpload, sent again while ListParts still shows parts: a part
    /// that was being stored when the abort came may land after it (S3 says so),
    /// and would be billed until a lifecycle rule removed it. The upload's part
    /// tasks must have ended first.
    ///
    /// # Errors
    ///
    /// The abort failed, or parts were still stored after [`ABORT_ROUNDS`] of them.
    /// A server that cannot list the parts is taken at its word that the upload is
    /// gone (logged).
    pub(crate) async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        let query = format!("uploadId={}", encode_query(upload_id));
        for _ in 0..ABORT_ROUNDS {
            let req = S3Request::new(Method::DELETE, key).query(query.clone());
            match self.send(&req).await {
                Ok(_) => {}
                // `NoSuchUpload`: gone, and no part can land in it any more.
                Err(e) if e.context("code") == Some("NoSuchUpload") => return Ok(()),
                // A missing key, or a bare 404 (a proxy's?), says less: the listing
                // below says more.
                Err(e) if key_not_found(&e) => {}
                Err(e) => return Err(e.with_context("upload_id", upload_id)),
            }
            match self.parts_left(key, &query).await {
                Ok(false) => return Ok(()),
                Ok(true) => {
                    tracing::debug!(%key, %upload_id, "parts landed after the abort; aborting again");
                }
                // An identity allowed to abort need not be allowed to list parts.
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    tracing::debug!(%key, %upload_id, error = %e, "cannot check that an aborted upload left no parts");
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(%key, %upload_id, error = %e, "cannot check that an aborted upload left no parts");
                    return Ok(());
                }
            }
        }
        Err(Error::new(ErrorKind::Unexpected)
            .with_message(format!(
                "parts of the upload were still stored after {ABORT_ROUNDS} aborts"
            ))
            .with_context("upload_id", upload_id))
    }

    /// [`abort_multipart`](Self::abort_multipart) where another error is the
    /// caller's, or there is no caller: a failed abort is logged, and the upload
    /// left to the bucket's lifecycle rules.
    pub(crate) async fn abort_or_log(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.abort_multipart(key, upload_id).await {
            // Named, so that it shows its request's context (status, code, id).
            let e = e.with_operation("abort").with_path(key);
            tracing::warn!(%upload_id, error = %e, "cannot abort multipart upload");
        }
    }

    /// Whether ListParts shows any part of upload `query` (`uploadId=...`): none
    /// once the upload is gone.
    async fn parts_left(&self, key: &str, query: &str) -> Result<bool> {
        let req = S3Request::new(Method::GET, key).query(format!("max-parts=1&{query}"));
        match self.send_read(&req, "ListPartsResult").await {
            Ok((_, body)) => Ok(!xml::parse::<xml::ListPartsResult>(&body)?.parts.is_empty()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// TLS with Mozilla's roots, and `extra` (a CA bundle's, each checked by the
/// builder to be one a root store takes).
pub(crate) fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let (added, _) = roots.add_parsable_certificates(extra.iter().cloned());
    debug_assert_eq!(added, extra.len(), "the builder checked every certificate");
    // ring is named explicitly, so a process that also links aws-lc-rs (another
    // crate's choice) does not make rustls's default provider ambiguous.
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    match config {
        Ok(config) => Arc::new(config),
        // The ring provider supports the default versions; this cannot fail.
        Err(e) => panic!("rustls rejected its own default protocol versions: {e}"),
    }
}

pub(crate) fn new_client(
    tls: Arc<rustls::ClientConfig>,
    proxy: Option<Arc<Proxy>>,
    connect_timeout: Duration,
    max_idle_per_host: usize,
) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*tls).clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(Connector::new(http, proxy, connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(max_idle_per_host)
        .build(https)
}

/// `failure`, saying that the multipart upload of `key` it leaves could not be
/// aborted (`abort`, of the write to `path`): the upload is left to the bucket's
/// lifecycle rules, and billed until then.
pub(crate) fn abort_failed(failure: Error, abort: Error, key: &str, path: &str) -> Error {
    // Named first, so that it shows its request's context (status, code, id).
    let abort = abort.with_operation("abort").with_path(path.to_owned());
    tracing::warn!(%key, error = %abort, "cannot abort multipart upload");
    failure.with_context(ABORT_FAILED, abort.to_string())
}

/// What the failed attempts of one request saw ([`Core::next_attempt`]).
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// One reached the server.
    reached: bool,
    /// One reached it and ended without an answer that settles it.
    lost: bool,
}

/// The context key of a request's final error when one of its attempts ended
/// without an answer that settles it ([`unanswered`]): `answer` = `lost`.
const ANSWER: &str = "answer";

/// The context key of an attempt's error when its body was not all handed to the
/// connection: `body` = `{sent} of {len} bytes sent`.
const BODY: &str = "body";

/// `err`, the end of an attempt whose body is `len` bytes, saying how much of the
/// body the connection took if not all of it. The body is [closed](Progress::close)
/// first, so the connection takes none of it later. Such an attempt stored
/// nothing: S3 stores a body only whole (its `Content-Length`), and the connection
/// sends no byte it has not taken (a `PUT` held at its last byte for its checks,
/// say).
fn body_not_whole(err: Error, progress: &Progress, len: u64) -> Error {
    let sent = progress.close();
    if sent < len {
        err.with_context(BODY, format!("{sent} of {len} bytes sent"))
    } else {
        err
    }
}

/// Whether an attempt that reached the server and failed with `err` ended
/// without an answer that settles it: a timeout, a broken connection, a 500,
/// 502 or 504, a 503 other than `SlowDown` (a proxy's lost upstream), or an
/// error in a 200's body (CopyObject's failure during the copy): the server may
/// have stored the write first. A refusal (4xx) and throttling (`SlowDown`)
/// settle it: that attempt stored nothing.
fn unanswered(err: &Error) -> bool {
    match err.context("status") {
        Some("500" | "502" | "504" | "200") => true,
        Some("503") => err.context("code") != Some("SlowDown"),
        Some(_) => false,
        None => {
            err.kind() == ErrorKind::Timeout
                || (err.is_temporary() && err.kind() != ErrorKind::RateLimited)
        }
    }
}

/// Whether a write without an id to look up, which failed with `err`, may have
/// been stored by an attempt whose answer was lost ([`unanswered`]), whatever
/// the later attempts were answered.
fn answer_lost(err: &Error) -> bool {
    err.context(ANSWER) == Some("lost")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The ETag of an answer that is another version than `etag` (which the request
/// asked for with `If-Match`): what a server, or a proxy, that does not check
/// `If-Match` serves. ETags are compared strong or weak, quoted or not, alike (a
/// proxy that compresses may weaken one); an answer without an ETag says
/// nothing.
fn other_version(headers: &HeaderMap, etag: &str) -> Option<String> {
    let served = header_str(headers, &ETAG)?;
    // `W/"abc"`, `"abc"` and `abc` (an ETag from a listing's XML, or a
    // CompleteMultipartUpload answer, that some servers send without quotes).
    let bare = |tag: &str| {
        tag.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_owned()
    };
    (bare(served) != bare(etag)).then(|| served.to_owned())
}

/// A read pinned to version `wanted` answered with version `served`:
/// [`ErrorKind::PreconditionFailed`], as the server should have answered.
fn not_the_version(wanted: &str, served: &str) -> Error {
    Error::new(ErrorKind::PreconditionFailed)
        .with_message(format!(
            "the server answered with version {served}, not {wanted} (it did not check If-Match)"
        ))
        .with_context("etag", served)
        .with_context("expected_etag", wanted)
}

/// Where a GET body starts in the object, and the object's size.
fn body_span(response: &Response<Incoming>) -> Result<BodySpan> {
    let headers = response.headers();
    let malformed = |what: &str| {
        Error::new(ErrorKind::Unexpected).with_message(format!("malformed GET response: {what}"))
    };
    if response.status() == StatusCode::PARTIAL_CONTENT {
        let value = header_str(headers, &CONTENT_RANGE)
            .ok_or_else(|| malformed("206 without Content-Range"))?;
        let (span, total) = value
            .strip_prefix("bytes ")
            .and_then(|v| v.split_once('/'))
            .ok_or_else(|| malformed("Content-Range"))?;
        let (start, last): (u64, u64) = span
            .split_once('-')
            .and_then(|(s, l)| Some((s.parse().ok()?, l.parse().ok()?)))
            .ok_or_else(|| malformed("Content-Range"))?;
        let total: u64 = total.parse().map_err(|_| malformed("Content-Range size"))?;
        // A span inside the object: anything else would place the body's bytes
        // where the server never said they belong.
        if start > last || last >= total {
            return Err(malformed(&format!("Content-Range {value:?}")));
        }
        let end = last + 1;
        // A body longer than its span (a shorter one is an answer that ended
        // early: the read says so, and may be retried).
        if let Some(len) = header_str(headers, &CONTENT_LENGTH)
            && len.parse::<u64>().map_or(true, |len| len > end - start)
        {
            return Err(malformed(&format!(
                "Content-Length {len} for Content-Range {value:?}"
            )));
        }
        Ok(BodySpan { start, end, total })
    } else {
        let len = header_str(headers, &CONTENT_LENGTH)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| malformed("no Content-Length"))?;
        Ok(BodySpan {
            start: 0,
            end: len,
            total: len,
        })
    }
}

/// Aborts a multipart upload when dropped armed: a copy or a write dropped
/// midway (its caller gave up, or timed out) leaves no upload behind, whose parts
/// would be billed until a lifecycle rule removed them. The abort runs as clean-up
/// work of the executor the drop happens on ([`spawn_abort`]).
pub(crate) struct UploadGuard {
    core: Arc<Core>,
    key: String,
    upload_id: Option<String>,
}

impl UploadGuard {
    pub(crate) fn new(core: &Arc<Core>, key: &str) -> Self {
        Self {
            core: Arc::clone(core),
            key: key.to_owned(),
            upload_id: None,
        }
    }

    /// From now on a drop aborts upload `upload_id`.
    pub(crate) fn arm(&mut self, upload_id: &str) {
        self.upload_id = Some(upload_id.to_owned());
    }

    /// The upload is completed, aborted, or someone else's to abort.
    pub(crate) fn disarm(&mut self) {
        self.upload_id = None;
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let (core, key) = (Arc::clone(&self.core), std::mem::take(&mut self.key));
        let abort = {
            let (key, upload_id) = (key.clone(), upload_id.clone());
            async move { core.abort_or_log(&key, &upload_id).await }
        };
        spawn_abort(&key, &upload_id, abort);
    }
}

/// Starts `abort`, the abort of upload `upload_id` of `key` that a drop begins, as
/// clean-up work of the executor the drop happens on, which its shutdown waits for
/// (`io_executor::spawn_cleanup`). An abort that cannot start (outside a runtime),
/// or is cut off before its end (a shutdown deadline), says in the log that the
/// upload is left; `abort` is then dropped unrun.
pub(crate) fn spawn_abort(
    key: &str,
    upload_id: &str,
    abort: impl Future<Output = ()> + Send + 'static,
) {
    let mut left = LeftBehind {
        key: key.to_owned(),
        upload_id: upload_id.to_owned(),
        armed: true,
    };
    let task = async move {
        abort.await;
        left.disarm();
    };
    if let Ok(task) = io_executor::spawn_cleanup(task) {
        task.detach();
    }
}

/// Says, when dropped armed, that an upload was not aborted.
struct LeftBehind {
    key: String,
    upload_id: String,
    armed: bool,
}

impl LeftBehind {
    /// The abort ran to its end (which logs its own failure).
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for LeftBehind {
    fn drop(&mut self) {
        if self.armed {
            tracing::warn!(
                key = %self.key, upload_id = %self.upload_id,
                "a multipart upload could not be aborted (dropped outside a runtime, or \
                 past a shutdown deadline); it is left for the bucket's lifecycle rules"
            );
        }
    }
}

/// `e`, saying `stored` = `unknown` if `lost` (an attempt's answer was lost, so
/// what it sent may be stored).
fn stored_unknown_if(lost: bool, e: Error) -> Error {
    if lost {
        e.set_context("stored", "unknown")
    } else {
        e
    }
}

/// Whether an answer's body is chunked: its end is marked, where one of neither
/// stated length nor chunks ends when the connection closes, cut or whole.
fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// Each key's outcome in a DeleteObjects batch of `names`, given the keys the
/// server said it failed. A failure for a key not asked for (a server that
/// changed the key on its way) cannot be told apart from the others: then no key
/// without its own error is said to be deleted.
fn batch_outcomes(
    names: &[String],
    failed: std::collections::HashMap<String, Error>,
) -> Vec<Result<()>> {
    let asked: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
    let stray: Vec<&str> = failed
        .keys()
        .map(String::as_str)
        .filter(|k| !asked.contains(k))
        .collect();
    names
        .iter()
        .map(|key| match failed.get(key) {
            Some(e) if key_not_found(e) => Ok(()),
            Some(e) => Err(e.clone()),
            None if stray.is_empty() => Ok(()),
            None => Err(Error::new(ErrorKind::Unexpected).with_message(format!(
                "the server failed to delete keys it names differently from those sent \
                 ({stray:?}); this one may not be deleted"
            ))),
        })
        .collect()
}

/// Whether a delete failed only because the key is not there: S3 answers such a
/// delete with success, and so does this backend, but some S3-compatible stores
/// say `NoSuchKey` (or a bare 404). A missing bucket stays an error.
fn key_not_found(err: &Error) -> bool {
    err.kind() == ErrorKind::NotFound && err.context("code").is_none_or(|c| c == "NoSuchKey")
}

/// What a copy keeps of its source's headers, as CopyObject does: the user
/// metadata (but a write id, which is the source's write's) and the content
/// headers. Not the storage class nor the encryption, which CopyObject does not
/// keep either; the content type is one of the write's options. Sent where
/// CopyObject would not keep them itself: a new upload, or a copy that replaces
/// the metadata to set a content type.
fn kept_metadata(source: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    source
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            (name.starts_with("x-amz-meta-") && name != WRITE_ID)
                || matches!(
                    name,
                    "cache-control"
                        | "content-disposition"
                        | "content-encoding"
                        | "content-language"
                        | "expires"
                )
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Where a GET response's body lies in the object.
struct BodySpan {
    /// The object offset of the body's first byte.
    start: u64,
    /// The object offset just past the body's last byte.
    end: u64,
    /// The whole object's size.
    total: u64,
}

/// Metadata from a HEAD or PUT response; `len` is the known length for a PUT.
pub(crate) fn metadata_of(headers: &HeaderMap, len: Option<u64>) -> Result<Metadata> {
    let len = match len {
        Some(len) => len,
        None => header_str(headers, &CONTENT_LENGTH)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::new(ErrorKind::Unexpected)
                    .with_message("HEAD answered without Content-Length")
            })?,
    };
    let mut meta = Metadata::file(len);
    if let Some(etag) = header_str(headers, &ETAG) {
        meta = meta.with_etag(etag);
    }
    if let Some(time) = header_str(headers, &LAST_MODIFIED).and_then(http_date) {
        meta = meta.with_last_modified(time);
    }
    if let Some(content_type) = header_str(headers, &http::header::CONTENT_TYPE) {
        meta = meta.with_content_type(content_type);
    }
    Ok(meta)
}

/// `err`, with the server's answer that `by` came from (its status, code and
/// request id): an error said in the caller's terms keeps what identifies the
/// request.
pub(crate) fn answered_by(err: Error, by: &Error) -> Error {
    ["status", "code", "request_id"]
        .into_iter()
        .fold(err, |err, key| match by.context(key) {
            Some(value) => err.with_context(key, value),
            None => err,
        })
}

/// The context key of the pause a refusal asked for (`Retry-After`), in ms.
const RETRY_AFTER_MS: &str = "retry_after_ms";

/// A `Retry-After` value: seconds, or an HTTP date (a date past is no pause).
fn retry_after(value: &str) -> Option<Duration> {
    match value.trim().parse::<u64>() {
        Ok(seconds) => Some(Duration::from_secs(seconds)),
        Err(_) => Some(
            http_date(value.trim())?
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
        ),
    }
}

fn http_date(value: &str) -> Option<SystemTime> {
    use aws_smithy_types::date_time::{DateTime, Format};
    SystemTime::try_from(DateTime::from_str(value, Format::HttpDate).ok()?).ok()
}

/// An ISO 8601 time as S3 listings give it (`2026-01-02T03:04:05.000Z`).
pub(crate) fn iso_date(value: &str) -> Option<SystemTime> {
    use aws_smithy_types::date_time::{DateTime, Format};
    SystemTime::try_from(DateTime::from_str(value, Format::DateTime).ok()?).ok()
}

fn from_client_error(err: hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    let mut source = err.source();
    let mut timed_out = false;
    while let Some(s) = source {
        // A tunnel the proxy did not open says itself what kind of failure it is
        // (and its message names hosts: no guessing from its words).
        if let Some(proxy) = s.downcast_ref::<ThroughProxy>() {
            return Error::new(proxy.kind)
                .set_temporary(proxy.temporary)
                .with_message(proxy.to_string())
                .with_context("connect", "failed")
                .with_source(err);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        // Only while connecting: the same TLS errors on a connection whose
        // handshake succeeded (a proxy's plaintext page written into it) are a
        // connection that failed, perhaps after the request went out.
        if err.is_connect()
            && let Some(why) = tls_error(s).and_then(tls_refusal)
        {
            return Error::new(ErrorKind::Unexpected)
                .with_message(why)
                .with_context("connect", "failed")
                .with_source(err);
        }
        timed_out |= s.to_string().contains("timed out") || s.to_string().contains("timeout");
        source = s.source();
    }
    let kind = if timed_out {
        ErrorKind::Timeout
    } else {
        ErrorKind::Unexpected
    };
    // Refused, reset and closed connections may all work on a second try.
    let failed = Error::new(kind).set_temporary(true);
    let failed = if err.is_connect() {
        // The request was never sent.
        failed
            .with_message("cannot connect")
            .with_context("connect", "failed")
    } else {
        failed.with_message("connection failed")
    };
    failed.with_source(err)
}

/// The TLS error `err` is, or wraps (an `io::Error`'s `source` is its inner
/// error's source, skipping the inner error: it is asked for here).
fn tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner)
}

/// What a TLS handshake's failure that no second attempt mends says: a
/// certificate this client does not trust (or one for another name), or a server
/// that does not speak TLS there. `None` for the others (an alert mid-handshake,
/// say), which are temporary as every connection failure is.
fn tls_refusal(err: &rustls::Error) -> Option<String> {
    match err {
        rustls::Error::InvalidCertificate(why) => Some(format!(
            "the server's TLS certificate is refused ({why:?}): a private certificate \
             authority is trusted with ca_bundle or AWS_CA_BUNDLE"
        )),
        rustls::Error::NoCertificatesPresented => {
            Some("the server presented no TLS certificate".into())
        }
        rustls::Error::InvalidMessage(_) => {
            Some("the server does not answer in TLS: an http:// endpoint given as https://?".into())
        }
        _ => None,
    }
}

/// An error code refusing the session token the request was signed with: with
/// credentials fetched anew, the request may pass.
fn refuses_token(code: &str) -> bool {
    matches!(
        code,
        "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired"
    )
}

/// An error code saying a body's checksum is not the one sent with it.
fn refuses_checksum(code: &str) -> bool {
    matches!(code, "BadDigest" | "XAmzContentChecksumMismatch")
}

fn error_from_code(code: &str, status: StatusCode) -> Error {
    let kind = match code {
        "NoSuchKey" | "NoSuchBucket" | "NoSuchUpload" => ErrorKind::NotFound,
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AllAccessDisabled" => {
            ErrorKind::PermissionDenied
        }
        code if refuses_token(code) => ErrorKind::PermissionDenied,
        "InvalidRange" => ErrorKind::RangeNotSatisfiable,
        "SlowDown" | "TooManyRequests" | "RequestLimitExceeded" | "Throttling" => {
            ErrorKind::RateLimited
        }
        "RequestTimeout" => ErrorKind::Timeout,
        "NotImplemented" => ErrorKind::Unsupported,
        "PreconditionFailed" => ErrorKind::PreconditionFailed,
        // Another conditional write to the key was under way: nothing is known of
        // the condition (the key may or may not exist, at whatever version), and
        // S3 asks for the request to be sent again. Neither a failed precondition
        // nor, for `if_not_exists`, an existing target.
        "ConditionalRequestConflict" => {
            return Error::new(ErrorKind::Unexpected).set_temporary(true);
        }
        // A conflicting operation on the bucket or key was under way: S3 asks
        // for the request to be sent again.
        "OperationAborted" => return Error::new(ErrorKind::Unexpected).set_temporary(true),
        "PermanentRedirect"
        | "AuthorizationHeaderMalformed"
        | "IllegalLocationConstraintException" => ErrorKind::InvalidInput,
        _ => match status.as_u16() {
            304 => ErrorKind::NotModified,
            // A proxy's (or a load balancer's) "the request did not arrive in
            // time": nothing was done, and it may be sent again.
            408 => ErrorKind::Timeout,
            301 | 307 | 308 => ErrorKind::InvalidInput,
            412 => ErrorKind::PreconditionFailed,
            404 => ErrorKind::NotFound,
            401 | 403 => ErrorKind::PermissionDenied,
            416 => ErrorKind::RangeNotSatisfiable,
            429 | 503 => ErrorKind::RateLimited,
            400 | 405 | 411 | 413 => ErrorKind::InvalidInput,
            _ => ErrorKind::Unexpected,
        },
    };
    // A body the server received damaged is sent again from our own copy.
    if refuses_checksum(code) {
        return Error::new(ErrorKind::Unexpected)
            .set_temporary(true)
            .with_message(DAMAGED_BODY);
    }
    let temporary = matches!(kind, ErrorKind::RateLimited | ErrorKind::Timeout)
        || (status.is_server_error() && kind != ErrorKind::Unsupported)
        || matches!(code, "InternalError" | "ServiceUnavailable");
    Error::new(kind).set_temporary(temporary)
}

/// What a checksum error means when the server gives no message of its own: on a
/// body, that it arrived damaged.
const DAMAGED_BODY: &str = "the server received the body damaged (its checksum did not match)";

/// Maps a failed response (status, headers, and the XML error body if any).
pub(crate) fn error_from_parts(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    let parsed: Option<xml::ErrorBody> = if body.is_empty() {
        None
    } else {
        xml::parse(body).ok()
    };
    let code = parsed.as_ref().map_or("", |p| p.code.as_str());
    let request_id = parsed
        .as_ref()
        .map(|p| p.request_id.as_str())
        .filter(|id| !id.is_empty())
        .or_else(|| header_str(headers, &HeaderName::from_static("x-amz-request-id")));
    let mut err = error_from_code(code, status).with_context("status", status.as_u16());
    if !code.is_empty() {
        err = err.with_context("code", code);
    }
    if let Some(id) = request_id {
        err = err.with_context("request_id", id);
    }
    if err.is_temporary()
        && let Some(wait) = header_str(headers, &http::header::RETRY_AFTER).and_then(retry_after)
    {
        err = err.with_context(RETRY_AFTER_MS, wait.as_millis());
    }
    if err.kind() == ErrorKind::NotFound && code != "NoSuchBucket" && code != "NoSuchUpload" {
        // A missing key: the callers turn this into NotFound, IsADirectory or
        // PreconditionFailed; no message of the server's is needed.
        return err;
    }
    if err.kind() == ErrorKind::RangeNotSatisfiable {
        // `bytes */<size>`: the callers resolve the range against the size.
        let size = header_str(headers, &CONTENT_RANGE)
            .and_then(|v| v.rsplit_once('/'))
            .and_then(|(_, size)| size.parse::<u64>().ok());
        return match size {
            Some(size) => err.with_context("size", size),
            None => err,
        };
    }
    if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
        // S3 redirects a bucket that lives in another region; following it would
        // re-sign for the wrong region, so say where it is instead.
        let region = header_str(headers, &HeaderName::from_static("x-amz-bucket-region"));
        let location = header_str(headers, &http::header::LOCATION);
        let mut message = String::from("the server redirected the request");
        if let Some(region) = region {
            message.push_str(&format!(
                ": the bucket is in region {region:?}; configure that region"
            ));
        }
        if let Some(location) = location {
            message.push_str(&format!(" (Location: {location})"));
        }
        return err.with_message(message);
    }
    let conflict = code == "ConditionalRequestConflict";
    if conflict {
        err = err.with_message("another conditional write to this key was under way");
    }
    match parsed
        .as_ref()
        .map(|p| p.message.as_str())
        .filter(|m| !m.is_empty())
    {
        Some(message) if conflict => err.with_message(format!(
            "another conditional write to this key was under way: {message}"
        )),
        Some(message) => err.with_message(message),
        // An S3 error without a message: its code (in the context) says it.
        None if body.is_empty() || !code.is_empty() => err,
        // Not an S3 error document (a proxy's HTML page, say): show what it was.
        None => err.with_message(format!(
            "the server answered HTTP {} with a body that is not an S3 error: {}",
            status.as_u16(),
            snippet(headers, body)
        )),
    }
}

/// The start of a body that is not what was expected, for an error message: its
/// content type and up to 120 characters, on one line.
pub(crate) fn snippet(headers: &HeaderMap, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(480)]);
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 120 {
        line = line.chars().take(120).collect::<String>() + "...";
    }
    match header_str(headers, &http::header::CONTENT_TYPE) {
        Some(kind) => format!("{kind} {line:?}"),
        None => format!("{line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delete_failure_for_a_key_not_asked_for_deletes_nothing_for_sure() {
        let names = ["a".to_owned(), "b\r".to_owned(), "c".to_owned()];
        let denied = || Error::new(ErrorKind::PermissionDenied);
        let failed = std::collections::HashMap::from([("c".to_owned(), denied())]);
        let kinds = |outcomes: Vec<Result<()>>| -> Vec<Option<ErrorKind>> {
            outcomes
                .iter()
                .map(|r| r.as_ref().err().map(Error::kind))
                .collect()
        };
        assert_eq!(
            kinds(batch_outcomes(&names, failed)),
            [None, None, Some(ErrorKind::PermissionDenied)]
        );
        // The server named "b\r" as "b\n": which key failed is not known.
        let failed = std::collections::HashMap::from([
            ("c".to_owned(), denied()),
            ("b\n".to_owned(), denied()),
        ]);
        assert_eq!(
            kinds(batch_outcomes(&names, failed)),
            [
                Some(ErrorKind::Unexpected),
                Some(ErrorKind::Unexpected),
                Some(ErrorKind::PermissionDenied)
            ]
        );
    }

    #[test]
    fn only_the_clients_of_live_executors_with_workers_are_kept() {
        let core = Arc::new(Core::new(S3Builder::new("b").region("us-east-1"), None));
        let ids =
            |core: &Core| -> Vec<u64> { core.clients.read().iter().map(|(id, _)| *id).collect() };
        let pool = |name: &str| io_executor::Builder::new().name(name).build().unwrap();
        let kept = pool("attach-kept");
        core.attach(&kept);
        core.attach(&kept);
        assert_eq!(ids(&core), [kept.id()], "one entry per executor");
        // A backend moved to a new executor for each query: the old ones go.
        for i in 0..20 {
            let passing = pool(&format!("attach-{i}"));
            core.attach(&passing);
            if i % 2 == 0 {
                passing.shutdown();
            }
            // Odd ones: every handle dropped.
        }
        core.attach(&kept);
        assert_eq!(
            ids(&core),
            [kept.id()],
            "the shut-down executors' clients let go"
        );
        // A caller's runtime has no workers: no entry.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        core.attach(&Executor::from_handle(runtime.handle().clone()));
        assert_eq!(ids(&core), [kept.id()]);
        kept.shutdown();
    }

    /// The URL of `key` in `bucket` as a backend built from `builder` addresses it.
    fn url_of(builder: S3Builder, key: &str) -> String {
        Core::new(builder, None).url(key, "")
    }

    #[test]
    fn aws_is_addressed_by_virtual_host_and_custom_endpoints_by_path() {
        // AWS itself: the bucket in the host name, in the builder's region.
        assert_eq!(
            url_of(S3Builder::new("logs").region("eu-west-1"), "a/b.parquet"),
            "https://logs.s3.eu-west-1.amazonaws.com/a/b.parquet"
        );
        // ... unless path style is asked for.
        assert_eq!(
            url_of(
                S3Builder::new("logs").region("eu-west-1").path_style(true),
                "a"
            ),
            "https://s3.eu-west-1.amazonaws.com/logs/a"
        );
        // A bucket with dots: by path (no certificate covers its host name),
        // unless virtual hosts are asked for.
        assert_eq!(
            url_of(S3Builder::new("my.logs").region("eu-west-1"), "a"),
            "https://s3.eu-west-1.amazonaws.com/my.logs/a"
        );
        assert_eq!(
            url_of(
                S3Builder::new("my.logs")
                    .region("eu-west-1")
                    .path_style(false),
                "a"
            ),
            "https://my.logs.s3.eu-west-1.amazonaws.com/a"
        );
        // A legacy name that is no DNS label (longer than 63 characters, or a
        // `-` at an end): by path, as the SDKs address it.
        let long = "a".repeat(64);
        assert_eq!(
            url_of(S3Builder::new(long.as_str()).region("us-east-1"), "k"),
            format!("https://s3.us-east-1.amazonaws.com/{long}/k")
        );
        // 63 characters still make a label.
        let longest = "a".repeat(63);
        assert_eq!(
            url_of(S3Builder::new(longest.as_str()).region("us-east-1"), "k"),
            format!("https://{longest}.s3.us-east-1.amazonaws.com/k")
        );
        for name in ["-logs", "logs-", "Logs", "my_logs"] {
            assert_eq!(
                url_of(S3Builder::new(name).region("us-east-1"), "k"),
                format!("https://s3.us-east-1.amazonaws.com/{name}/k")
            );
        }
        // The China regions' own domain.
        assert_eq!(
            url_of(S3Builder::new("logs").region("cn-north-1"), "a"),
            "https://logs.s3.cn-north-1.amazonaws.com.cn/a"
        );
        assert_eq!(
            url_of(S3Builder::new("my.logs").region("cn-northwest-1"), "a"),
            "https://s3.cn-northwest-1.amazonaws.com.cn/my.logs/a"
        );
        // A custom endpoint (MinIO, SeaweedFS, Ceph): the bucket in the path.
        assert_eq!(
            url_of(
                S3Builder::new("logs").endpoint("http://127.0.0.1:8333/"),
                "a"
            ),
            "http://127.0.0.1:8333/logs/a"
        );
        // ... unless virtual hosts are asked for.
        assert_eq!(
            url_of(
                S3Builder::new("logs")
                    .endpoint("https://storage.example.com")
                    .path_style(false),
                "a"
            ),
            "https://logs.storage.example.com/a"
        );
        // Keys are percent-encoded, `/` kept.
        assert_eq!(
            url_of(S3Builder::new("logs").region("us-east-1"), "dir/a b#c"),
            "https://logs.s3.us-east-1.amazonaws.com/dir/a%20b%23c"
        );
    }

    /// A bare 408 (a proxy's) and S3's `OperationAborted` are sent again; a 408
    /// stored nothing.
    #[test]
    fn a_request_timeout_or_an_aborted_operation_is_temporary() {
        let none = HeaderMap::new();
        let err = error_from_parts(StatusCode::REQUEST_TIMEOUT, &none, b"");
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.is_temporary(), "{err}");
        assert!(!unanswered(&err), "{err}");
        let body = b"<Error><Code>OperationAborted</Code><Message>A conflicting \
                     conditional operation is currently in progress</Message></Error>";
        let err = error_from_parts(StatusCode::CONFLICT, &none, body);
        assert!(err.is_temporary(), "{err}");
        assert_eq!(err.context("code"), Some("OperationAborted"), "{err}");
    }

    proptest::proptest! {
        /// Any status, headers and body a server answers with map to an error,
        /// without a panic.
        #[test]
        fn any_failed_answer_maps_to_an_error(
            status in 100_u16..600,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            content_range in proptest::option::of("[ -~]{0,30}"),
        ) {
            let status = StatusCode::from_u16(status).unwrap();
            let mut headers = HeaderMap::new();
            if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
                headers.insert(CONTENT_RANGE, value);
            }
            let err = error_from_parts(status, &headers, &body);
            let _ = err.to_string();
        }
    }
}
