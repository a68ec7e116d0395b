//! [`CredentialCache`]: the identity requests are signed with, fetched from its
//! source and refreshed ahead of its expiry, once at a time, on the executor.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;
use parking_lot::{Mutex, RwLock};

use crate::{Error, ErrorKind, Result};

/// Where the credentials a backend signs with came from, and which ones they are
/// (never the secret): from [`S3::credential_info`](super::S3::credential_info).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialInfo {
    /// `explicit`, `environment`, `profile`, `web-identity`, `container`,
    /// `instance-metadata` or `provider` (a provider given to the builder).
    pub source: &'static str,
    /// The access key id (not a secret).
    pub access_key_id: String,
    /// When the credentials expire; `None` for long-term ones.
    pub expiry: Option<SystemTime>,
}

/// Names the provider that supplied a set of credentials (a property on them).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceName(pub(crate) &'static str);

/// Why credential part `what` (its `value`) cannot sign: a control character (a
/// line break from a file or a secret), which the signer would put in a header
/// unchecked (a panic). `None` for one that can.
pub(crate) fn control_character(what: &str, value: &str) -> Option<String> {
    let c = value.chars().find(|c| c.is_control())?;
    Some(format!(
        "the {what} holds a control character ({c:?}): a line break from a file or a secret?"
    ))
}

/// Temporary credentials are refreshed in the background once less than this (or
/// half their lifetime) is left...
const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);
/// ...and stop signing once less than this (or a tenth of their lifetime) is left:
/// a request signed now must still be valid when the server checks it.
const EXPIRY_MARGIN: Duration = Duration::from_secs(15);
/// After a failed background refresh, the next one waits at least this long (the
/// current credentials are still good; expired ones are fetched by the request).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// How long credentials found not to be what a HEAD's bare 400 is about are not
/// dropped for another one.
const REFUTED_FOR: Duration = Duration::from_secs(60);

/// A set of credentials and when to stop using them.
#[derive(Clone)]
struct Cached {
    identity: Identity,
    info: CredentialInfo,
    /// From then on a refresh is started in the background.
    stale_at: Option<SystemTime>,
    /// From then on these credentials never sign.
    unusable_at: Option<SystemTime>,
}

impl Cached {
    fn new(credentials: aws_credential_types::Credentials, fetched: SystemTime) -> Self {
        let source = credentials
            .get_property::<SourceName>()
            .map_or("provider", |name| name.0);
        let expiry = credentials.expiry();
        let (stale_at, unusable_at) = match expiry {
            None => (None, None),
            Some(expiry) => {
                let lifetime = expiry.duration_since(fetched).unwrap_or_default();
                (
                    Some(expiry - REFRESH_AHEAD.min(lifetime / 2)),
                    Some(expiry - EXPIRY_MARGIN.min(lifetime / 10)),
                )
            }
        };
        let info = CredentialInfo {
            source,
            access_key_id: credentials.access_key_id().to_owned(),
            expiry,
        };
        // An empty session token is none: nothing to send.
        let credentials = match credentials.session_token() {
            Some("") => aws_credential_types::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                None,
                expiry,
                "dio",
            ),
            _ => credentials,
        };
        Self {
            identity: credentials.into(),
            info,
            stale_at,
            unusable_at,
        }
    }

    fn usable_at(&self, now: SystemTime) -> bool {
        self.unusable_at.is_none_or(|at| now < at)
    }

    fn stale_at(&self, now: SystemTime) -> bool {
        self.stale_at.is_some_and(|at| now >= at)
    }
}

/// Where credentials come from.
pub(crate) enum Source {
    /// One provider, ready to ask.
    Provider(SharedCredentialsProvider),
    /// The AWS SDKs' chain, built on first use (on the executor).
    #[cfg(feature = "credential-chain")]
    Chain(super::chain::ChainConfig),
}

/// The identity of one backend: fetched on first use, cached, refreshed before it
/// expires. Every request asks [`CredentialCache::identity`] right before it is
/// signed, so each attempt signs with the current identity, and one that has (all
/// but) expired never signs.
///
/// # Refresh
///
/// Once a temporary identity is stale (half its lifetime, at most 5 minutes, left),
/// the first request that sees it starts one refresh as a task on the runtime it
/// runs on (a worker of the executor) and signs with the current identity: no
/// request waits for it. Requests that find no usable identity (none yet, or too
/// close to expiry) wait for the one refresh in flight, or start it. One lock makes
/// every fetch single-flight. An identity whose session token the server refuses
/// is forgotten ([`CredentialCache::refused`]).
pub(crate) struct CredentialCache {
    source: Source,
    /// Built on first use; the chain is built again after a failed fetch (see
    /// [`fetch`](Self::fetch)).
    provider: Mutex<Option<SharedCredentialsProvider>>,
    current: RwLock<Option<Cached>>,
    /// Held by whoever is fetching.
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// No background refresh before this (after one failed).
    quiet_until: Mutex<Option<Instant>>,
    /// The last fetch, if it failed: when it ended, and why. Requests that waited
    /// for it take its error instead of asking the source again.
    failed: Mutex<Option<(Instant, Error)>>,
    /// The identity that a HEAD's bare 400 was found not to be about (it was
    /// fetched anew for one, and refused the same way), and when: see
    /// [`Self::not_the_token`].
    refuted: Mutex<Option<(IdentityKey, Instant)>>,
    /// Long-term credentials given as they are: asking again gives the same.
    fixed: bool,
    /// How long one fetch may take (`S3Builder::credentials_timeout`).
    fetch_timeout: Duration,
}

/// Which credentials an identity is (access key id and session token).
type IdentityKey = (String, Option<String>);

fn key(identity: &Identity) -> Option<IdentityKey> {
    identity
        .data::<aws_credential_types::Credentials>()
        .map(|c| {
            (
                c.access_key_id().to_owned(),
                c.session_token().map(str::to_owned),
            )
        })
}

impl fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialCache")
            .field("current", &self.info())
            .finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub(crate) fn new(source: Source) -> Self {
        Self {
            source,
            provider: Mutex::new(None),
            current: RwLock::new(None),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
            quiet_until: Mutex::new(None),
            failed: Mutex::new(None),
            refuted: Mutex::new(None),
            fixed: false,
            fetch_timeout: Duration::from_secs(60),
        }
    }

    /// A fetch that takes longer than `timeout` fails with
    /// [`ErrorKind::Timeout`] (temporary), and so do the requests waiting for it:
    /// a source that never answers (a stuck vault client, an STS call that hangs)
    /// would hold every request, and its place, for ever.
    pub(crate) fn with_fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// Long-term credentials given explicitly (or read from the environment).
    pub(crate) fn fixed(credentials: aws_credential_types::Credentials) -> Self {
        let cached = Cached::new(credentials.clone(), SystemTime::now());
        let mut cache = Self::new(Source::Provider(SharedCredentialsProvider::new(
            credentials,
        )));
        cache.fixed = true;
        *cache.current.write() = Some(cached);
        cache
    }

    /// The server refused `identity`'s session token (expired before the time it
    /// gave, or revoked): it is forgotten, so that the next request fetches new
    /// credentials. `false` if asking again cannot give other ones (fixed
    /// credentials), so that a retry would only be refused again.
    pub(crate) fn refused(&self, identity: &Identity) -> bool {
        if self.fixed {
            return false;
        }
        let mut current = self.current.write();
        // Another request may have replaced it already.
        if current.as_ref().map(|c| key(&c.identity)) == Some(key(identity)) {
            tracing::debug!("S3 refused the session token; fetching new credentials");
            *current = None;
        }
        true
    }

    /// A HEAD's bare 400 is not about `identity`'s session token: it was fetched
    /// anew for one, and refused the same way. Later bare 400s of requests it
    /// signs are taken as what they are ([`is_not_the_token`](Self::is_not_the_token)),
    /// where each would drop it and fetch again (a listing's stats of many objects
    /// encrypted with a key the backend lacks asked the source once per object).
    ///
    /// For a while ([`REFUTED_FOR`]): a token revoked later is then found out by a
    /// bare 400 again, at the cost of one fetch that long.
    pub(crate) fn not_the_token(&self, identity: &Identity) {
        *self.refuted.lock() = key(identity).map(|key| (key, Instant::now()));
    }

    /// Whether a bare 400 of a request signed with `identity` was found not to be
    /// about its session token ([`not_the_token`](Self::not_the_token)), lately.
    pub(crate) fn is_not_the_token(&self, identity: &Identity) -> bool {
        let Some(key) = key(identity) else {
            return false;
        };
        self.refuted
            .lock()
            .as_ref()
            .is_some_and(|(refuted, at)| *refuted == key && at.elapsed() < REFUTED_FOR)
    }

    /// What the current identity is, if one was fetched.
    pub(crate) fn info(&self) -> Option<CredentialInfo> {
        self.current.read().as_ref().map(|c| c.info.clone())
    }

    /// The current identity's credentials, if one was fetched and may still sign.
    pub(crate) fn current(&self) -> Option<aws_credential_types::Credentials> {
        self.usable(SystemTime::now())?
            .identity
            .data::<aws_credential_types::Credentials>()
            .cloned()
    }

    /// The identity to sign a request with now.
    ///
    /// # Errors
    ///
    /// When no usable identity is cached and fetching one fails: see
    /// [`credentials_error`].
    pub(crate) async fn identity(self: &Arc<Self>) -> Result<Identity> {
        let now = SystemTime::now();
        if let Some(cached) = self.usable(now) {
            if cached.stale_at(now) {
                self.refresh_in_background();
            }
            return Ok(cached.identity);
        }
        let asked = Instant::now();
        let _fetching = self.fetching.lock().await;
        // Whoever held the lock may have fetched a good one...
        if let Some(cached) = self.usable(SystemTime::now()) {
            return Ok(cached.identity);
        }
        // ...or failed to, while this request waited: that is its answer too (a
        // source that is down would otherwise be asked once per waiting request,
        // one after the other). A request that comes later asks again.
        if let Some((ended, err)) = &*self.failed.lock()
            && *ended >= asked
        {
            return Err(err.clone());
        }
        match self.fetch().await {
            Ok(cached) => {
                *self.failed.lock() = None;
                Ok(cached.identity)
            }
            Err(e) => {
                *self.failed.lock() = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    fn usable(&self, now: SystemTime) -> Option<Cached> {
        self.current
            .read()
            .as_ref()
            .filter(|c| c.usable_at(now))
            .cloned()
    }

    /// Starts a refresh on the current runtime, unless one is running (or one failed
    /// a moment ago).
    fn refresh_in_background(self: &Arc<Self>) {
        if self
            .quiet_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
        {
            return;
        }
        let Ok(fetching) = Arc::clone(&self.fetching).try_lock_owned() else {
            return; // one is in flight
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let this = Arc::clone(self);
        drop(runtime.spawn(async move {
            let _fetching = fetching;
            if !this
                .usable(SystemTime::now())
                .is_some_and(|c| c.stale_at(SystemTime::now()))
            {
                return; // refreshed meanwhile
            }
            if let Err(e) = this.fetch().await {
                *this.quiet_until.lock() = Some(Instant::now() + RETRY_AFTER_FAILURE);
                tracing::warn!(error = %e, "cannot refresh S3 credentials; using the current ones until they expire");
            }
        }));
    }

    /// Asks the source (the caller holds `fetching`) and caches the answer.
    async fn fetch(&self) -> Result<Cached> {
        let provider = self.provider().await;
        let fetched = SystemTime::now();
        let asked = tokio::time::timeout(self.fetch_timeout, provider.provide_credentials());
        let answer = asked
            .await
            .unwrap_or_else(|_| Err(CredentialsError::provider_timed_out(self.fetch_timeout)));
        let credentials = match answer {
            Ok(credentials) => credentials,
            Err(e) => {
                // aws-config's profile provider hands out its setup error (a
                // profile not defined, one that needs SSO) once, then says only
                // that it was taken: a chain built again says why every time.
                // Only then: building it reads the profile files again.
                #[cfg(feature = "credential-chain")]
                if matches!(self.source, Source::Chain(_))
                    && matches!(e, CredentialsError::InvalidConfiguration(_))
                {
                    *self.provider.lock() = None;
                }
                return Err(credentials_error(e));
            }
        };
        // Checked here, every part, where the source is known: the signer puts
        // them in headers and a canonical request, and a line break there fails
        // as a vague "cannot sign" or a bare `SignatureDoesNotMatch`.
        let unusable = control_character("access key id", credentials.access_key_id())
            .or_else(|| control_character("secret access key", credentials.secret_access_key()))
            .or_else(|| {
                credentials
                    .session_token()
                    .and_then(|token| control_character("session token", token))
            });
        let cached = Cached::new(credentials, fetched);
        if let Some(why) = unusable {
            return Err(Error::new(ErrorKind::InvalidInput)
                .with_context(STAGE, "credentials")
                .with_message(format!("the {} credentials: {why}", cached.info.source)));
        }
        if !cached.usable_at(SystemTime::now()) {
            return Err(Error::new(ErrorKind::PermissionDenied)
                .set_temporary(true)
                .with_context(STAGE, "credentials")
                .with_message(format!(
                    "the {} credentials {} expire too soon to sign with ({:?})",
                    cached.info.source, cached.info.access_key_id, cached.info.expiry
                )));
        }
        tracing::debug!(
            source = cached.info.source,
            access_key_id = %cached.info.access_key_id,
            expiry = ?cached.info.expiry,
            "S3 credentials fetched"
        );
        *self.current.write() = Some(cached.clone());
        Ok(cached)
    }

    /// The provider, built if it is not (the caller holds `fetching`).
    async fn provider(&self) -> SharedCredentialsProvider {
        if let Some(provider) = self.provider.lock().clone() {
            return provider;
        }
        let provider = match &self.source {
            Source::Provider(provider) => provider.clone(),
            #[cfg(feature = "credential-chain")]
            Source::Chain(config) => config.build().await,
        };
        *self.provider.lock() = Some(provider.clone());
        provider
    }
}

/// Maps a provider's failure: nothing found is [`ErrorKind::PermissionDenied`]; a
/// provider that timed out or failed (a metadata service's 500, STS refusing) may
/// work on a second try.
pub(crate) fn credentials_error(err: CredentialsError) -> Error {
    let (kind, temporary, what) = match &err {
        CredentialsError::CredentialsNotLoaded(_) => (
            ErrorKind::PermissionDenied,
            false,
            "no credentials found (explicit, environment, profile, web identity, container, \
             instance metadata)",
        ),
        CredentialsError::ProviderTimedOut(_) => (
            ErrorKind::Timeout,
            true,
            "the credential provider timed out",
        ),
        CredentialsError::InvalidConfiguration(_) => (
            ErrorKind::InvalidInput,
            false,
            "the credential configuration is invalid",
        ),
        CredentialsError::ProviderError(_) => (
            ErrorKind::PermissionDenied,
            true,
            "the credential provider failed",
        ),
        _ => (ErrorKind::Unexpected, false, "cannot load credentials"),
    };
    let detail =
        hide_secrets(aws_smithy_types::error::display::DisplayErrorContext(&err).to_string());
    Error::new(kind)
        .set_temporary(temporary)
        .with_context(STAGE, "credentials")
        .with_message(format!("{what}: {detail}"))
}

/// `detail` with every secret the chain reads from the environment hidden: a
/// provider's error may quote one (aws-config's container provider shows an
/// authorization token it cannot send, a line break at the end of its file, in
/// its message and its `Debug`), and errors get logged.
pub(crate) fn hide_secrets(mut detail: String) -> String {
    let mut secrets: Vec<String> = [
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ]
    .iter()
    .filter_map(|name| std::env::var(name).ok())
    .collect();
    // As aws-config reads it: the bytes, not necessarily UTF-8.
    if let Some(file) = std::env::var_os("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        && let Ok(token) = std::fs::read(file)
    {
        secrets.push(String::from_utf8_lossy(&token).into_owned());
    }
    for secret in secrets {
        // As it is, without the white space around it, and as `Debug` quotes it.
        let quoted = format!("{secret:?}");
        let forms = [secret.as_str(), secret.trim(), quoted.trim_matches('"')];
        for form in forms {
            // A short value (LocalStack's `test`) would hide parts of words and
            // paths, and is no secret worth it.
            if form.len() >= 8 {
                detail = detail.replace(form, "…");
            }
        }
    }
    detail
}

/// The context key of an error that came before its request was sent: `stage` =
/// `credentials` when none could be loaded to sign it.
pub(crate) const STAGE: &str = "stage";

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(lifetime: Option<Duration>, token: Option<&str>) -> (Cached, SystemTime) {
        let now = SystemTime::now();
        let credentials = aws_credential_types::Credentials::new(
            "AKID",
            "secret",
            token.map(str::to_owned),
            lifetime.map(|l| now + l),
            "test",
        );
        (Cached::new(credentials, now), now)
    }

    #[test]
    fn long_term_credentials_never_go_stale() {
        let (c, now) = cached(None, None);
        let later = now + Duration::from_secs(10 * 365 * 86_400);
        assert!(c.usable_at(later) && !c.stale_at(later));
        assert_eq!(c.info.source, "provider");
    }

    #[test]
    fn an_hour_is_refreshed_five_minutes_ahead_and_stops_signing_fifteen_seconds_ahead() {
        let (c, now) = cached(Some(Duration::from_secs(3600)), None);
        let at = |s: u64| now + Duration::from_secs(s);
        assert!(!c.stale_at(at(3600 - 301)));
        assert!(c.stale_at(at(3600 - 299)) && c.usable_at(at(3600 - 299)));
        assert!(c.usable_at(at(3600 - 16)));
        assert!(!c.usable_at(at(3600 - 14)));
    }

    #[test]
    fn short_lifetimes_scale_the_margins() {
        let (c, now) = cached(Some(Duration::from_secs(10)), None);
        let at = |ms: u64| now + Duration::from_millis(ms);
        assert!(!c.stale_at(at(4_900)) && c.stale_at(at(5_100)));
        assert!(c.usable_at(at(8_900)) && !c.usable_at(at(9_100)));
    }

    #[test]
    fn an_empty_session_token_is_none() {
        let (c, _) = cached(None, Some(""));
        let credentials = c
            .identity
            .data::<aws_credential_types::Credentials>()
            .unwrap();
        assert_eq!(credentials.session_token(), None);
        let (c, _) = cached(None, Some("t"));
        let credentials = c
            .identity
            .data::<aws_credential_types::Credentials>()
            .unwrap();
        assert_eq!(credentials.session_token(), Some("t"));
    }
}
