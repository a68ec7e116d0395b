//! [`S3Builder`]: everything an [`S3`](super::S3) backend is configured with.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http::Uri;
use rustls::pki_types::CertificateDer;

use super::S3;
use super::checksum::Checksum;
use super::credentials::{CredentialCache, Source, SourceName, control_character};
use crate::{Encryption, Error, ErrorKind, Result};

/// AWS credentials. `Debug` never shows the secret key or the session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

impl Credentials {
    /// Long-term credentials.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
        }
    }

    /// The same credentials with a session token (temporary credentials).
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// The access key id (not a secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key. `Debug` never shows it.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token of temporary credentials. `Debug` never shows it.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    /// As aws-credential-types has them, named after where they came from.
    fn into_aws(self, source: &'static str) -> aws_credential_types::Credentials {
        let mut credentials = aws_credential_types::Credentials::new(
            self.access_key_id,
            self.secret_access_key,
            self.session_token,
            None,
            "dio",
        );
        credentials.set_property(SourceName(source));
        credentials
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How failed requests are retried: only errors that are
/// [temporary](crate::Error::is_temporary) (rate limiting, 5xx, connection errors,
/// timeouts), each attempt signed anew, with exponential backoff and full jitter:
/// before attempt `n + 1` the client sleeps a random time in
/// `0..=min(max_delay, base_delay * 2^(n-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1). Default: 4.
    pub max_attempts: u32,
    /// Default: 50 ms.
    pub base_delay: Duration,
    /// The longest pause between attempts; a server that asks for a pause
    /// (`Retry-After`) gets it, up to this long. Default: 2 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// Sets [`max_attempts`](Self::max_attempts) (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets [`base_delay`](Self::base_delay) and [`max_delay`](Self::max_delay).
    pub fn with_delays(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// The sleep before attempt `attempt + 1`, after `attempt` failed ones.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(20);
        let cap = self
            .base_delay
            .saturating_mul(1 << shift)
            .min(self.max_delay);
        let cap_nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=cap_nanos))
    }
}

/// Configures an [`S3`] backend.
///
/// ```
/// use std::time::Duration;
/// use storage::services::s3::{Credentials, S3Builder};
///
/// let s3 = S3Builder::new("my-bucket")
///     .root("warehouse/")
///     .region("eu-west-1")
///     .endpoint("http://127.0.0.1:8333")
///     .credentials(Credentials::new("AKID", "SECRET"))
///     .request_timeout(Duration::from_secs(30))
///     .build()
///     .unwrap();
/// assert!(!format!("{s3:?}").contains("SECRET"));
/// ```
#[derive(Clone)]
pub struct S3Builder {
    pub(crate) bucket: String,
    pub(crate) root: String,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) path_style: Option<bool>,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) provider: Option<SharedCredentialsProvider>,
    pub(crate) profile: Option<String>,
    pub(crate) anonymous: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) credentials_timeout: Duration,
    pub(crate) part_size: usize,
    pub(crate) multipart_threshold: usize,
    pub(crate) part_concurrency: usize,
    pub(crate) max_idle_per_host: usize,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) checksum: Option<Checksum>,
    pub(crate) write_checks: bool,
    pub(crate) encryption: Option<Encryption>,
    pub(crate) copy_part_size: u64,
    pub(crate) multipart_copy_threshold: u64,
    pub(crate) ca_bundle: Option<PathBuf>,
    /// The CA bundle's certificates, read by `build`.
    pub(crate) extra_roots: Arc<[CertificateDer<'static>]>,
    pub(crate) proxy_url: Option<String>,
    pub(crate) proxy_excludes: Option<String>,
    /// The proxy, resolved by `build`.
    pub(crate) proxy: Option<Arc<super::proxy::Proxy>>,
}

impl fmt::Debug for S3Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Builder")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("region", &self.region)
            .field(
                "endpoint",
                &self
                    .endpoint
                    .as_deref()
                    .map(super::proxy::without_credentials),
            )
            .field("path_style", &self.path_style)
            .field("credentials", &self.credentials)
            .field("provider", &self.provider.as_ref().map(|_| "<provider>"))
            .field("profile", &self.profile)
            .field("anonymous", &self.anonymous)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("credentials_timeout", &self.credentials_timeout)
            .field("part_size", &self.part_size)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_concurrency", &self.part_concurrency)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("checksum", &self.checksum)
            .field("write_checks", &self.write_checks)
            .field("encryption", &self.encryption)
            .field("copy_part_size", &self.copy_part_size)
            .field("multipart_copy_threshold", &self.multipart_copy_threshold)
            .field("ca_bundle", &self.ca_bundle)
            .field(
                "proxy_url",
                &self
                    .proxy_url
                    .as_deref()
                    .map(super::proxy::without_credentials),
            )
            .field("proxy_excludes", &self.proxy_excludes)
            .finish_non_exhaustive()
    }
}

/// S3's smallest part size (except for the last part).
pub(crate) const MIN_PART_SIZE: usize = 5 << 20;
/// The largest object one CopyObject copies; larger ones take UploadPartCopy.
pub(crate) const MAX_COPY_OBJECT: u64 = 5 << 30;
/// S3's largest part, and its largest single `PUT`.
pub(crate) const MAX_PART_SIZE: u64 = 5 << 30;

/// [`MAX_PART_SIZE`] as a `usize` (or the largest `usize`, on a 32-bit target).
fn max_part_size() -> usize {
    usize::try_from(MAX_PART_SIZE).unwrap_or(usize::MAX)
}

impl S3Builder {
    /// A backend for `bucket`, with defaults: region and credentials from the
    /// environment (see [`build`](Self::build)), AWS's endpoint, 4 attempts, 5 s
    /// connect and 60 s request timeouts, 8 MiB parts above a 16 MiB multipart
    /// threshold, 8 parts in flight, at most 128 requests in flight, CRC64NVME
    /// checksums, copies above 5 GiB in 256 MiB UploadPartCopy parts, writes checked
    /// as fs would check them ([`write_checks`](Self::write_checks)).
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            root: String::new(),
            region: None,
            endpoint: None,
            path_style: None,
            credentials: None,
            provider: None,
            profile: None,
            anonymous: false,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            credentials_timeout: Duration::from_secs(60),
            part_size: 8 << 20,
            multipart_threshold: 16 << 20,
            part_concurrency: 8,
            max_idle_per_host: 32,
            max_concurrent_requests: 128,
            checksum: Some(Checksum::Crc64Nvme),
            write_checks: true,
            encryption: None,
            copy_part_size: 256 << 20,
            multipart_copy_threshold: MAX_COPY_OBJECT,
            ca_bundle: None,
            extra_roots: Arc::from(Vec::new()),
            proxy_url: None,
            proxy_excludes: None,
            proxy: None,
        }
    }

    /// A PEM file of certificate authorities to trust beside the usual public ones
    /// (Mozilla's list): the private CA of an S3-compatible server, or of a proxy
    /// that inspects TLS. Default: `AWS_CA_BUNDLE`, as the AWS SDKs read it. Read
    /// (with blocking IO) by [`build`](Self::build); the credential chain's
    /// requests (STS, container, instance metadata) trust it too.
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Sends HTTPS requests (S3's, and the credential chain's STS requests) through
    /// the HTTP proxy at `url`, `http://[user:password@]host:port`, in a CONNECT
    /// tunnel: TLS still runs from end to end. Default, as curl, reqwest and the
    /// SDKs read them: `HTTPS_PROXY` (or `https_proxy`, `ALL_PROXY`, `all_proxy`).
    /// Plain-HTTP endpoints (a local server, instance metadata, container
    /// credentials) are always reached directly. [`build`](Self::build) refuses a
    /// `url` that is not an `http://` URL (one from the environment fails only the
    /// requests it would carry); errors and `Debug` never show its password. A
    /// password with `/`, `?`, `#` or `@` is written percent-encoded.
    pub fn proxy_url(mut self, url: impl Into<String>) -> Self {
        self.proxy_url = Some(url.into());
        self
    }

    /// Hosts reached directly, not through the proxy: `NO_PROXY`'s syntax, a comma
    /// list of host names (each with its subdomains), IP addresses and networks
    /// (`10.0.0.0/8`), or `*` for every host (no proxy at all). Default:
    /// `NO_PROXY` (or `no_proxy`).
    pub fn proxy_excludes(mut self, hosts: impl Into<String>) -> Self {
        self.proxy_excludes = Some(hosts.into());
        self
    }

    /// From a URI: `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`.
    /// The prefix is percent-decoded, as a URL's path is (`s3://b/my%20data` is the
    /// prefix `my data/`), and so are query values.
    /// Other query keys: `path_style=true|false`, `anonymous=true`, `profile=name`,
    /// `checksum=crc64nvme|crc32c|crc32|none`, `write_checks=true|false`. Credentials and anything not in the URI
    /// come from the environment at [`build`](Self::build).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a URI that is not `s3://bucket[/prefix][?...]`
    /// or has an unknown query key.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let shown = shown_uri(uri);
        let invalid = |message: String| {
            Error::new(ErrorKind::InvalidInput)
                .with_message(message)
                .with_operation("from_uri")
                .with_path(shown.clone())
        };
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("expected s3://bucket/prefix".into()))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, root) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(invalid("the bucket name is empty".into()));
        }
        // `key:secret@` before the bucket (a secret may hold a `/`, which splits
        // it at the bucket's end).
        if bucket.contains('@') || userinfo_end(rest).is_some() {
            return Err(invalid(
                "credentials in the URI (s3://key:secret@bucket) are not read: give them \
                 with credentials(), the environment or a profile (a bucket name with a \
                 ':' whose prefix holds an '@': write the '@' %40)"
                    .into(),
            ));
        }
        // A URI's path is percent-encoded (`my%20data/` is the prefix `my data/`), as
        // object_store and DataFusion read a table's URL.
        let root = percent_encoding::percent_decode_str(root)
            .decode_utf8()
            .map_err(|_| {
                invalid("the prefix is not UTF-8 once its %-escapes are decoded".into())
            })?;
        let mut builder = Self::new(bucket).root(root.into_owned());
        let mut seen = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if seen.contains(&key) {
                return Err(invalid(format!("query key {key:?} given twice")));
            }
            seen.push(key);
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| invalid(format!("query value of {key:?} is not UTF-8")))?
                .into_owned();
            let flag = || match value.as_str() {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(invalid(format!("{key}={other}: expected true or false"))),
            };
            builder = match key {
                "endpoint" => builder.endpoint(value),
                "region" => builder.region(value),
                "path_style" => builder.path_style(flag()?),
                "anonymous" if flag()? => builder.anonymous(),
                "anonymous" => builder,
                "profile" => builder.profile(value),
                "write_checks" => builder.write_checks(flag()?),
                "checksum" if value.eq_ignore_ascii_case("none") => builder.checksum(None),
                "checksum" => builder.checksum(Some(value.parse().map_err(|_| {
                    invalid(format!(
                        "checksum={value}: expected crc64nvme, crc32c, crc32 or none"
                    ))
                })?)),
                other => return Err(invalid(format!("unknown query key {other:?}"))),
            };
        }
        Ok(builder)
    }

    /// Every key lives under `root` (a prefix such as `warehouse/`).
    pub fn root(mut self, root: impl Into<String>) -> Self {
        self.root = root.into();
        self
    }

    /// The region signatures are made for. Default: `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), else the selected profile's `region` in the shared
    /// config file (with the `credential-chain` feature), else `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint, e.g. `http://127.0.0.1:8333`. Default, as the AWS SDKs read
    /// the environment: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL` (neither with
    /// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else
    /// the selected profile's in the shared config file (with the `credential-chain`
    /// feature: the `s3` entry's `endpoint_url` of the `services` section it names,
    /// else its own `endpoint_url`; none with `ignore_configured_endpoint_urls =
    /// true`), else `https://s3.<region>.amazonaws.com` (`amazonaws.com.cn` in the
    /// China regions, `cn-*`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Path-style (`endpoint/bucket/key`) or virtual-host (`bucket.endpoint/key`)
    /// addressing. Default: virtual-host for AWS's endpoints (path-style for a
    /// bucket with a dot in its name, whose host name AWS's certificate does not
    /// cover, and for one that is no DNS name: an older bucket's capitals or `_`,
    /// more than 63 characters, a `-` at either end), path-style for a custom
    /// endpoint (where buckets rarely have DNS names). Virtual hosts with an
    /// endpoint that is an IP address are refused at [`build`](Self::build).
    pub fn path_style(mut self, path_style: bool) -> Self {
        self.path_style = Some(path_style);
        self
    }

    /// Explicit credentials, used as they are. Default: the provider chain (see
    /// [`build`](Self::build)).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Credentials from `provider`, any [`ProvideCredentials`] (aws-config's
    /// providers, or one of your own), asked on the executor when the backend first
    /// signs and again before what it gave expires.
    pub fn credentials_provider(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.provider = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// The profile of the shared config and credentials files to take credentials
    /// and region from. Default: `AWS_PROFILE`, else `default`. Without the
    /// `credential-chain` feature, [`build`](Self::build) refuses it.
    pub fn profile(mut self, profile: impl Into<String>) -> Self {
        self.profile = Some(profile.into());
        self
    }

    /// The checksum sent with every write and checked on full reads (`None`: no
    /// checksums, for a server that refuses them). Default: CRC64NVME. See
    /// [`Checksum`].
    pub fn checksum(mut self, checksum: Option<Checksum>) -> Self {
        self.checksum = checksum;
        self
    }

    /// Whether a write first checks, as fs would, that its path is not a directory
    /// (`IsADirectory`) and that no ancestor of it is an object (`NotADirectory`):
    /// a one-key listing and a `HEAD` per ancestor, sent beside every `write`,
    /// writer, and target of `copy` and `rename` (`a/b/c.parquet` takes three
    /// requests beside its `PUT`). Default: `true`, the meaning the conformance
    /// suite checks on every backend.
    ///
    /// `false` writes keys as S3 has them: one request per write, and none that
    /// needs `s3:ListBucket` (a write-only IAM policy can write), at the price of
    /// the fs meaning: a write of `a/b` beside an object `a` succeeds, as does a
    /// write of `d` while keys lie under `d/` (a listing then shows both the file
    /// `d` and the directory `d/`). For write-heavy jobs where S3 bills every
    /// request and throttles by prefix, and for what object_store's `AmazonS3`
    /// does. The first write of a backend still lists the bucket, once (one key;
    /// first writes started together wait for it; refused with `AccessDenied`,
    /// it counts as found), so that a write to a bucket that does not exist fails
    /// with `NoSuchBucket` on servers that would make the bucket for the write
    /// (SeaweedFS). `create_dir` no longer looks at its ancestors either.
    pub fn write_checks(mut self, on: bool) -> Self {
        self.write_checks = on;
        self
    }

    /// Server-side encryption of writes that ask for none themselves
    /// ([`WriteOptions::encryption`](crate::WriteOptions::encryption)). With an
    /// SSE-C key, the key is also sent with every read of an object and as the
    /// source key of copies: every object of the backend is read with it.
    pub fn server_side_encryption(mut self, encryption: Encryption) -> Self {
        self.encryption = Some(encryption);
        self
    }

    /// Copies of objects larger than this are made of UploadPartCopy parts, in
    /// parallel; smaller ones with one CopyObject. At most (and by default) 5 GiB,
    /// CopyObject's limit.
    pub fn multipart_copy_threshold(mut self, bytes: u64) -> Self {
        self.multipart_copy_threshold = bytes.min(MAX_COPY_OBJECT);
        self
    }

    /// The size of UploadPartCopy parts (at least 5 MiB and at most 5 GiB, S3's
    /// bounds). Default: 256 MiB, more for objects that would need over 10,000
    /// parts.
    pub fn copy_part_size(mut self, bytes: u64) -> Self {
        self.copy_part_size = bytes.clamp(MIN_PART_SIZE as u64, MAX_PART_SIZE);
        self
    }

    /// Sends requests unsigned (public buckets).
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// How temporary failures are retried.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long establishing a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may go without progress (60 s by default): while it
    /// sends its body, between one 1 MiB frame taken by the connection and the
    /// next; then for the response head; then for each piece of the response body
    /// after the previous one. An upload that keeps moving on a slow link is not
    /// cut off, however long it takes. A fetch of credentials has its own bound,
    /// [`credentials_timeout`](Self::credentials_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long one fetch of credentials (the provider chain, or a
    /// [`credentials_provider`](Self::credentials_provider)) may take (60 s by
    /// default: the chain's own steps, an instance metadata token's retries or an
    /// STS call, take up to about 30 s each). Past it, the fetch and the requests
    /// waiting for it fail with a temporary `Timeout` (context `stage` =
    /// `credentials`): a source that never answers (a stuck vault client) holds
    /// no request for ever.
    pub fn credentials_timeout(mut self, timeout: Duration) -> Self {
        self.credentials_timeout = timeout;
        self
    }

    /// Multipart part size (at least 5 MiB and at most 5 GiB, S3's bounds; 8 MiB
    /// by default). An upload has at most 10,000 parts: `write` of a larger object
    /// uses larger parts, and a `Writer` (whose length is not known ahead) fails at
    /// its 10,001st part, before uploading it (about 78 GiB at 8 MiB).
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.clamp(MIN_PART_SIZE, max_part_size());
        self
    }

    /// Writes longer than this use a multipart upload; shorter ones one `PUT`
    /// (at least the part size; at most 5 GiB, the largest `PUT` S3 takes).
    pub fn multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes.min(max_part_size());
        self
    }

    /// Parts of one upload in flight at once (at least 1). Memory held by a writer is
    /// at most `(part_concurrency + 1) * part_size` and two of its
    /// [`write_chunk_size`](crate::Options::write_chunk_size) chunks (the one it
    /// handed over, waiting for a place, and the next it buffers).
    pub fn part_concurrency(mut self, parts: usize) -> Self {
        self.part_concurrency = parts.max(1);
        self
    }

    /// Requests this backend has in flight at most (at least 1), whatever the number
    /// of callers: more wait their turn. A request counts until its answer's head
    /// arrives; its body is read outside the bound. When the server answers "slow down" the
    /// bound halves, and it grows back by one after each run of successes as long as
    /// itself (as the AWS SDKs' adaptive retry mode does). Default: 128.
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_concurrent_requests = requests.max(1);
        self
    }

    /// Builds the backend. No network IO happens here.
    ///
    /// # Credentials
    ///
    /// Explicit [`credentials`](Self::credentials) or a
    /// [`credentials_provider`](Self::credentials_provider) if given; else, with the
    /// default `credential-chain` feature, the AWS SDKs' provider chain, in their
    /// order: the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`), the shared config and credentials files (`AWS_PROFILE`,
    /// `AWS_CONFIG_FILE`, `AWS_SHARED_CREDENTIALS_FILE`; static keys,
    /// `assume_role` through `role_arn` and `source_profile`), web identity
    /// (`AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`: EKS), container credentials
    /// (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`: ECS, EKS Pod
    /// Identity), EC2 instance metadata (IMDSv2). The chain is asked when the first
    /// request is signed, on the executor. Without the feature: the `AWS_*`
    /// variables, read here.
    ///
    /// The region, when not given, is read here too: `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, the profile's `region` (the shared config file is read
    /// with blocking IO), else `us-east-1`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an empty bucket or one with characters a URL
    /// cannot carry, an empty region with AWS's endpoint, an endpoint that is not
    /// an `http` or `https` URL, a root containing `..`, a CA bundle that cannot be
    /// read or holds no usable certificate, or (without the `credential-chain`
    /// feature) a profile, or no credentials where anonymous access was not asked
    /// for.
    pub fn build(mut self) -> Result<S3> {
        let invalid = |message: String| {
            Error::new(ErrorKind::InvalidInput)
                .with_message(message)
                .with_operation("S3Builder::build")
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        if self.bucket.is_empty() {
            return Err(invalid("the bucket name is empty".into()));
        }
        // The bucket goes into the URL as it is: only what a URL path cannot
        // carry unchanged is refused (other servers' names, such as Ceph's
        // `tenant:bucket`, are theirs to judge).
        if let Some(c) = self.bucket.chars().find(|&c| !url_safe(c)) {
            return Err(invalid(format!(
                "bucket name {:?}: {c:?} cannot be part of a request's URL",
                self.bucket
            )));
        }
        #[cfg(not(feature = "credential-chain"))]
        if self.profile.is_some() {
            return Err(invalid(
                "a profile needs the credential-chain feature, which this build lacks".into(),
            ));
        }
        if self.profile.is_none() {
            self.profile = env("AWS_PROFILE");
        }
        if self.region.is_none() {
            self.region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
        }
        #[cfg(feature = "credential-chain")]
        if self.region.is_none() {
            self.region = super::chain::profile_region(self.profile.as_deref());
        }
        let region = self
            .region
            .get_or_insert_with(|| "us-east-1".into())
            .clone();
        // As the AWS SDKs read them: the service's own variable first, then the
        // shared config file's, and none of them when configured endpoints are to
        // be ignored (the variable saying so before the profile).
        let mut endpoint_from = String::from("the endpoint");
        if self.endpoint.is_none() {
            #[cfg(feature = "credential-chain")]
            let profile = super::chain::profile_endpoint(self.profile.as_deref());
            #[cfg(not(feature = "credential-chain"))]
            let profile = ProfileEndpoint::default();
            let ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
                .map(|v| v.trim().eq_ignore_ascii_case("true"))
                .or(profile.ignore)
                .unwrap_or(false);
            let from_env = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(|name| Some((env(name)?, name.to_owned())));
            if let Some((url, from)) = from_env.or(profile.url).filter(|_| !ignore) {
                self.endpoint = Some(url);
                endpoint_from = from;
            }
        }
        if let Some(credentials) = &self.credentials
            && let Some(why) = control_character("access key id", &credentials.access_key_id)
                .or_else(|| control_character("secret access key", &credentials.secret_access_key))
                .or_else(|| {
                    let token = credentials.session_token.as_deref().unwrap_or_default();
                    control_character("session token", token)
                })
        {
            return Err(invalid(why));
        }
        if region.trim().is_empty() && self.endpoint.is_none() {
            return Err(invalid(
                "the region is empty (region(\"\"), or region= in the URI: an unset \
                 variable?), and AWS's endpoint is named after it"
                    .into(),
            ));
        }
        // The region goes into the signature's scope (a header) and AWS's host
        // name: a line break from a file, a `/` or a `#` would change or break
        // them.
        if let Some(c) = region.chars().find(|&c| !url_safe(c)) {
            return Err(invalid(format!(
                "region {region:?}: {c:?} cannot be part of a request's signature or host"
            )));
        }
        let (bundle, bundle_from) = match self.ca_bundle.clone() {
            Some(path) => (Some(path), "the CA bundle"),
            None => (env("AWS_CA_BUNDLE").map(PathBuf::from), "AWS_CA_BUNDLE"),
        };
        if let Some(path) = bundle {
            self.extra_roots = read_ca_bundle(&path)
                .map_err(|e| invalid(format!("{bundle_from} {}: {e}", path.display())))?;
        }
        self.proxy =
            super::proxy::Proxy::resolve(self.proxy_url.as_deref(), self.proxy_excludes.as_deref())
                .map_err(invalid)?
                .map(Arc::new);
        let credentials = if self.anonymous {
            None
        } else if let Some(credentials) = self.credentials.clone() {
            Some(CredentialCache::fixed(credentials.into_aws("explicit")))
        } else if let Some(provider) = self.provider.clone() {
            Some(CredentialCache::new(Source::Provider(provider)))
        } else {
            Some(self.default_credentials(&region).map_err(invalid)?)
        }
        .map(|cache| cache.with_fetch_timeout(self.credentials_timeout));
        let root = crate::raw::normalize_path(&self.root)
            .map_err(|e| invalid(format!("root {:?}: {e}", self.root)))?;
        self.root = match root.trim_end_matches('/') {
            "" => String::new(),
            r => format!("{r}/"),
        };
        if self.root.len() >= super::core::MAX_KEY_LEN {
            return Err(invalid(format!(
                "root {:?} is {} bytes long: every key starts with it, and S3 keys are at \
                 most {} bytes",
                crate::raw::shown_path(&self.root),
                self.root.len(),
                super::core::MAX_KEY_LEN
            )));
        }
        if let Some(endpoint) = &self.endpoint {
            // Credentials in it would never be sent (requests are signed), and
            // the signature would cover them as part of the host; refused, as in
            // an `s3://` URI, and not shown (a `/`, `?` or `#` in a password ends
            // the authority a parser sees, so any `@` counts).
            if endpoint.contains('@') {
                return Err(invalid(format!(
                    "{endpoint_from} {:?}: holds credentials (`user:password@`), which are \
                     not sent: give them with `credentials` or the environment",
                    super::proxy::without_credentials(endpoint)
                )));
            }
            // A key's path is put after it: a query or a fragment there would
            // send every request to the endpoint's own path instead.
            if endpoint.contains(['?', '#']) {
                return Err(invalid(format!(
                    "{endpoint_from} {endpoint:?}: has a query or a fragment (`?`, `#`), \
                     which an S3 endpoint has not: expected http://host[:port] or \
                     https://host[:port]"
                )));
            }
            let uri: Uri = endpoint
                .parse()
                .map_err(|e| invalid(format!("{endpoint_from} {endpoint:?}: {e}")))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(invalid(format!(
                    "{endpoint_from} {endpoint:?}: expected http://host[:port] or https://host[:port]"
                )));
            }
            if let Some(why) = bad_port(&uri) {
                return Err(invalid(format!("{endpoint_from} {endpoint:?}: {why}")));
            }
            // Virtual hosts put the bucket before the host: no address takes it.
            let host = uri.host().unwrap_or_default();
            let address = host.trim_start_matches('[').trim_end_matches(']');
            if self.path_style == Some(false) && address.parse::<std::net::IpAddr>().is_ok() {
                return Err(invalid(format!(
                    "{endpoint_from} {endpoint:?}: virtual-host addressing (`path_style` \
                     false) puts the bucket in the host name, which an IP address has not: \
                     use path style, or a host name"
                )));
            }
        }
        self.multipart_threshold = self.multipart_threshold.max(self.part_size);
        Ok(S3::from_builder(self, credentials))
    }

    /// The provider chain, built on first use.
    #[cfg(feature = "credential-chain")]
    fn default_credentials(&self, region: &str) -> std::result::Result<CredentialCache, String> {
        Ok(CredentialCache::new(Source::Chain(
            super::chain::ChainConfig {
                region: region.to_owned(),
                profile: self.profile.clone(),
                extra_roots: Arc::clone(&self.extra_roots),
                proxy: self.proxy.clone(),
            },
        )))
    }

    /// The `AWS_*` variables.
    #[cfg(not(feature = "credential-chain"))]
    fn default_credentials(&self, _region: &str) -> std::result::Result<CredentialCache, String> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(key), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
        else {
            return Err(
                "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                        give them explicitly, or ask for anonymous access"
                    .into(),
            );
        };
        let token = env("AWS_SESSION_TOKEN");
        let parts = [
            ("AWS_ACCESS_KEY_ID", Some(&key)),
            ("AWS_SECRET_ACCESS_KEY", Some(&secret)),
            ("AWS_SESSION_TOKEN", token.as_ref()),
        ];
        if let Some(why) = parts.iter().find_map(|(name, value)| {
            value.and_then(|v| super::credentials::control_character(name, v))
        }) {
            return Err(format!("the environment's credentials: {why}"));
        }
        let mut credentials = Credentials::new(key, secret);
        credentials.session_token = token;
        Ok(CredentialCache::fixed(credentials.into_aws("environment")))
    }
}

/// What the selected profile of the shared config file says of endpoints (with
/// the `credential-chain` feature, which reads it; without it, nothing).
#[derive(Debug, Default)]
pub(crate) struct ProfileEndpoint {
    /// Its `ignore_configured_endpoint_urls`, if set.
    pub(crate) ignore: Option<bool>,
    /// The `s3` entry's `endpoint_url` of the `services` section it names, else
    /// its own `endpoint_url`; with where it came from, for errors.
    pub(crate) url: Option<(String, String)>,
}

/// The certificates of PEM file `path`, each checked to be one a root store takes.
fn read_ca_bundle(
    path: &std::path::Path,
) -> std::result::Result<Arc<[CertificateDer<'static>]>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM file of certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    // As other TLS clients read a system bundle: a certificate webpki cannot use is
    // skipped, the others trusted.
    let total = certs.len();
    let usable: Vec<CertificateDer<'static>> = certs
        .into_iter()
        .filter(|cert| rustls::RootCertStore::empty().add(cert.clone()).is_ok())
        .collect();
    if usable.is_empty() {
        return Err(format!("none of its {total} certificates can be trusted"));
    }
    if usable.len() < total {
        tracing::warn!(
            path = %path.display(),
            skipped = total - usable.len(),
            "CA bundle certificates skipped: webpki cannot use them"
        );
    }
    Ok(Arc::from(usable))
}

/// Whether `c` goes into a request's URL, host and signature unchanged, as a
/// bucket name's or a region's character (other servers' names, such as Ceph's
/// `tenant:bucket`, are theirs to judge).
fn url_safe(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '/' | '?' | '#' | '%' | '\\' | '@')
}

/// Where credentials written before a URI's bucket (`key:secret@bucket/...`, the
/// secret perhaps holding a `/`, a `?` or an `@`) may end: the last `@` of `rest`
/// (the URI after `s3://`) when a `:` comes before the first `@` in the bucket's
/// place (before the first `/` or `?`).
fn userinfo_end(rest: &str) -> Option<usize> {
    let at = rest.find('@')?;
    let bucket_end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest[..at.min(bucket_end)]
        .contains(':')
        .then(|| rest.rfind('@'))
        .flatten()
}

/// Why `uri`'s port is none at all (`h:99999`, `h:9000x`): the URI parser takes
/// it, and the connection would go to port 80 or 443 instead.
pub(crate) fn bad_port(uri: &Uri) -> Option<String> {
    let authority = uri.authority()?.as_str();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let after_host = match host_and_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(_, rest)| rest),
        None => host_and_port.find(':').map_or("", |i| &host_and_port[i..]),
    };
    let port = after_host.strip_prefix(':')?;
    (!port.is_empty() && uri.port_u16().is_none())
        .then(|| format!("port {port:?} is not a number from 0 to 65535"))
}

/// `uri` as errors show it: without its query's values, for a key a parser does
/// not take (`secret_access_key=`, as other tools read) may hold a secret.
pub(crate) fn shown_uri(uri: &str) -> String {
    // Nor credentials before the bucket (`s3://key:secret@bucket`, refused).
    let uri = match uri.split_once("://") {
        Some((scheme, rest)) => {
            let location = rest.split_once('?').map_or(rest, |(location, _)| location);
            // Up to the last `@`: a secret may hold one too (hiding a prefix's
            // part is harmless in an error).
            match userinfo_end(rest).or_else(|| {
                let bucket_end = location.find('/').unwrap_or(location.len());
                location[..bucket_end].rfind('@')
            }) {
                Some(at) => format!("{scheme}://…{}", &rest[at..]),
                None => uri.to_owned(),
            }
        }
        None => uri.to_owned(),
    };
    let uri = uri.as_str();
    match uri.split_once('?') {
        Some((location, query)) => {
            let keys: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').map_or(p, |(key, _)| key))
                .collect();
            format!("{location}?{}", keys.join("=…&") + "=…")
        }
        None => uri.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes beyond what S3 takes are held to its bounds, where a part or a `PUT`
    /// of them would be sent whole and then refused.
    #[test]
    fn sizes_are_held_to_s3s_bounds() {
        let huge = S3Builder::new("b")
            .part_size(usize::MAX)
            .copy_part_size(u64::MAX)
            .multipart_threshold(usize::MAX);
        assert_eq!(huge.part_size as u64, MAX_PART_SIZE);
        assert_eq!(huge.copy_part_size, MAX_PART_SIZE);
        assert_eq!(huge.multipart_threshold as u64, MAX_PART_SIZE);
        let tiny = S3Builder::new("b").part_size(1).copy_part_size(1);
        assert_eq!(
            (tiny.part_size, tiny.copy_part_size),
            (MIN_PART_SIZE, MIN_PART_SIZE as u64)
        );
    }

    /// An endpoint with credentials in it (`http://key:secret@host`) is refused
    /// at build, as `s3://key:secret@bucket` is: they would never be sent (S3
    /// takes signed requests), and the signature would cover them as part of the
    /// host, so every request failed. Neither the refusal nor the builder's
    /// `Debug` shows them, a `/` in the secret included.
    #[test]
    fn an_endpoint_with_credentials_is_refused_without_showing_them() {
        for endpoint in [
            "http://AKIDX:SECRETX@127.0.0.1:9000",
            "http://AKIDX:SEC/RETX@127.0.0.1:9000",
            "https://AKIDX@s3.example.com/base",
            // The authority a parser sees ends at `?` or `#`: the rest was
            // taken for a query, and the secret shown.
            "http://AKIDX:pa?SECRETX@127.0.0.1:9000",
            "http://AKIDX:pa#SECRETX@127.0.0.1:9000",
            "http://AKIDX:12?SECRETX@127.0.0.1:9000",
        ] {
            let builder = at(endpoint);
            let debug = format!("{builder:?}");
            assert!(
                !debug.contains("SECRET") && !debug.contains("SEC/"),
                "{debug}"
            );
            let err = builder.build().unwrap_err();
            let shown = format!("{err} {err:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{shown}");
            assert!(shown.contains("credentials"), "{shown}");
            assert!(
                !shown.contains("SEC") && !shown.contains("RETX") && !shown.contains("AKIDX"),
                "{shown}"
            );
        }
    }

    /// A builder for bucket `b` at `endpoint`, with explicit credentials.
    fn at(endpoint: &str) -> S3Builder {
        S3Builder::new("b")
            .endpoint(endpoint)
            .credentials(Credentials::new("k", "s"))
    }

    /// `builder`'s build error, an `InvalidInput` that `says` so.
    fn refused(builder: S3Builder, says: &str) {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }

    /// Virtual-host addressing with an endpoint that is an IP address is refused
    /// at build: `b.127.0.0.1` is no host.
    #[test]
    fn virtual_hosts_with_an_ip_address_endpoint_are_refused() {
        for endpoint in ["http://127.0.0.1:9000", "http://[::1]:9000"] {
            refused(at(endpoint).path_style(false), "IP address");
            // By path, as by default, it builds.
            at(endpoint).build().unwrap();
        }
    }

    /// An endpoint with a query or a fragment is refused at build: a key's path
    /// put after it sent every request to the endpoint's own path (`GET /`, a
    /// listing of the buckets, whose XML a read took for the object).
    #[test]
    fn an_endpoint_with_a_query_or_a_fragment_is_refused() {
        for endpoint in [
            "http://127.0.0.1:9000/#",
            "http://127.0.0.1:9000?x",
            "http://h/p?",
        ] {
            refused(at(endpoint), "a query or a fragment");
        }
    }
}
