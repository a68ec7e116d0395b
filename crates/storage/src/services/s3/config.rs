//! [`S3Builder`]: everything an [`S3`](super::S3) backend is configured with.

use std::fmt;
use std::time::Duration;

use http::Uri;

use super::S3;
use crate::{Error, ErrorKind, Result};

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
    /// Default: 2 s.
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
    pub(crate) anonymous: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) part_size: usize,
    pub(crate) multipart_threshold: usize,
    pub(crate) part_concurrency: usize,
    pub(crate) max_idle_per_host: usize,
    pub(crate) max_concurrent_requests: usize,
}

impl fmt::Debug for S3Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Builder")
            .field("bucket", &self.bucket)
            .field("root", &self.root)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("credentials", &self.credentials)
            .field("anonymous", &self.anonymous)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("part_size", &self.part_size)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_concurrency", &self.part_concurrency)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish_non_exhaustive()
    }
}

/// S3's smallest part size (except for the last part).
pub(crate) const MIN_PART_SIZE: usize = 5 << 20;

impl S3Builder {
    /// A backend for `bucket`, with defaults: region `us-east-1`, AWS's endpoint,
    /// credentials from the environment, 4 attempts, 5 s connect and 60 s request
    /// timeouts, 8 MiB parts above a 16 MiB multipart threshold, 8 parts in flight,
    /// at most 128 requests in flight.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            root: String::new(),
            region: None,
            endpoint: None,
            path_style: None,
            credentials: None,
            anonymous: false,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            part_size: 8 << 20,
            multipart_threshold: 16 << 20,
            part_concurrency: 8,
            max_idle_per_host: 32,
            max_concurrent_requests: 128,
        }
    }

    /// From a URI: `s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1`.
    /// Other query keys: `path_style=true|false`, `anonymous=true`. Credentials and
    /// anything not in the URI come from the environment at [`build`](Self::build).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a URI that is not `s3://bucket[/prefix][?...]`
    /// or has an unknown query key.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let invalid = |message: String| {
            Error::new(ErrorKind::InvalidInput)
                .with_message(message)
                .with_operation("from_uri")
                .with_path(uri)
        };
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("expected s3://bucket/prefix".into()))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, root) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(invalid("the bucket name is empty".into()));
        }
        let mut builder = Self::new(bucket).root(root);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
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

    /// The region signatures are made for. Default: `AWS_REGION`, else `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The endpoint, e.g. `http://127.0.0.1:8333`. Default: `AWS_ENDPOINT_URL`, else
    /// `https://s3.<region>.amazonaws.com`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Path-style (`endpoint/bucket/key`) or virtual-host (`bucket.endpoint/key`)
    /// addressing. Default: path-style for a custom endpoint, virtual-host for AWS.
    pub fn path_style(mut self, path_style: bool) -> Self {
        self.path_style = Some(path_style);
        self
    }

    /// Explicit credentials. Default: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
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

    /// How long one attempt may wait for the response head, and for each piece of a
    /// response body after the previous one.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Multipart part size (at least 5 MiB, S3's minimum).
    pub fn part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// Writes longer than this use a multipart upload; shorter ones one `PUT`
    /// (at least the part size).
    pub fn multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// Parts of one upload in flight at once (at least 1). Memory held by a writer is
    /// at most `(part_concurrency + 1) * part_size`.
    pub fn part_concurrency(mut self, parts: usize) -> Self {
        self.part_concurrency = parts.max(1);
        self
    }

    /// Requests this backend has in flight at most (at least 1), whatever the number
    /// of callers: more wait their turn. When the server answers "slow down" the
    /// bound halves, and it grows back by one after each run of successes as long as
    /// itself (as the AWS SDKs' adaptive retry mode does). Default: 128.
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_concurrent_requests = requests.max(1);
        self
    }

    /// Builds the backend, filling what was not set from the `AWS_*` environment
    /// variables. No IO happens here.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an empty bucket, an endpoint that is not an
    /// `http` or `https` URL, a root containing `..`, or no credentials where
    /// anonymous access was not asked for.
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
        if self.region.is_none() {
            self.region = Some(env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()));
        }
        if self.endpoint.is_none() {
            self.endpoint = env("AWS_ENDPOINT_URL");
        }
        if self.credentials.is_none() && !self.anonymous {
            let (Some(key), Some(secret)) =
                (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
            else {
                return Err(invalid(
                    "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                     give them explicitly, or ask for anonymous access"
                        .into(),
                ));
            };
            let mut credentials = Credentials::new(key, secret);
            credentials.session_token = env("AWS_SESSION_TOKEN");
            self.credentials = Some(credentials);
        }
        let root = crate::raw::normalize_path(&self.root)
            .map_err(|e| invalid(format!("root {:?}: {e}", self.root)))?;
        self.root = match root.trim_end_matches('/') {
            "" => String::new(),
            r => format!("{r}/"),
        };
        if let Some(endpoint) = &self.endpoint {
            let uri: Uri = endpoint
                .parse()
                .map_err(|e| invalid(format!("endpoint {endpoint:?}: {e}")))?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
                return Err(invalid(format!(
                    "endpoint {endpoint:?}: expected http://host[:port] or https://host[:port]"
                )));
            }
        }
        self.multipart_threshold = self.multipart_threshold.max(self.part_size);
        Ok(S3::from_builder(self))
    }
}
