//! [`Proxy`]: HTTPS requests through an HTTP proxy, in a CONNECT tunnel.
//!
//! Where a network reaches S3 only through a proxy, the SDKs, curl, reqwest (and
//! so object_store and OpenDAL) read `HTTPS_PROXY` and `NO_PROXY`; a client that
//! did not would fail to connect where its peers work. HTTPS requests (S3's, and
//! the credential chain's STS requests) go through the proxy, TLS from end to end
//! inside the tunnel. Plain-HTTP endpoints are reached directly: a local
//! S3-compatible server, and the instance metadata and container credential
//! endpoints, which a proxy must not see.
//!
//! The CONNECT handshake is ours, not hyper-util's `Tunnel`, whose errors do not
//! say what the proxy answered: here a 407 (credentials) or a 403 (policy) fails
//! the request at once with the proxy's status, while a 502-504 (the proxy could
//! not reach the host) may pass on a second try, as a refused connection may.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::ErrorKind;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where HTTPS requests go: through the proxy, but to hosts it excludes.
pub(crate) struct Proxy {
    matcher: Matcher,
    /// The proxy as errors and `Debug` show it: without its credentials.
    shown: String,
    /// Why a proxy from the environment cannot be used (a SOCKS or HTTPS proxy):
    /// the requests it would carry fail, saying so; the others go on as before.
    unusable: Option<String>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Proxy {
    /// The proxy of `url` (`http://[user:password@]host:port`; `host:port` is
    /// `http://`), except for the hosts of `excludes` (`NO_PROXY`'s syntax: names
    /// with their subdomains, IP addresses and networks, `*` for all). Without
    /// `url`, `HTTPS_PROXY` (or `https_proxy`, `ALL_PROXY`, `all_proxy`), and
    /// without `excludes`, `NO_PROXY` (or `no_proxy`). `None` without a proxy, or
    /// with `*` excluded.
    ///
    /// # Errors
    ///
    /// A `url` given that is not an `http://` URL, named without its credentials.
    /// One from the environment is not refused here (a machine's `ALL_PROXY` may
    /// be a SOCKS proxy other programs use): the requests it would carry fail.
    pub(crate) fn resolve(
        url: Option<&str>,
        excludes: Option<&str>,
    ) -> std::result::Result<Option<Self>, String> {
        let (url, from, given) = match url {
            Some(url) => (url.to_owned(), "the proxy", true),
            None => match first_env(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]) {
                Some((url, name)) => (url, name, false),
                None => return Ok(None),
            },
        };
        let url = url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let excludes = match excludes {
            Some(list) => list.to_owned(),
            None => first_env(&["NO_PROXY", "no_proxy"])
                .map(|(list, _)| list)
                .unwrap_or_default(),
        };
        // `*` excludes every host, IP addresses too (the matcher's `*` covers
        // names only).
        if excludes.split(',').any(|host| host.trim() == "*") {
            return Ok(None);
        }
        let shown = without_credentials(url);
        let unusable = match check(url) {
            Ok(()) => None,
            Err(why) => {
                let why = format!("{from} {shown:?} {why}");
                if given {
                    return Err(why);
                }
                Some(why)
            }
        };
        // An unusable proxy still routes (to fail what it would carry): by a
        // stand-in the matcher takes.
        let route = if unusable.is_some() {
            "http://unusable-proxy.invalid"
        } else {
            url
        };
        let matcher = Matcher::builder()
            .https(route)
            .no(without_ports(&excludes))
            .build();
        let shown = match url.split_once("://") {
            Some(_) => shown,
            None => format!("http://{shown}"),
        };
        Ok(Some(Self {
            matcher,
            shown,
            unusable,
        }))
    }
}

/// `excludes` (`NO_PROXY`'s list) with each entry's port left out
/// (`minio.internal:9000`, `10.0.0.5:9000`, `[::1]:9000`), as other HTTP clients
/// take them: the matcher reads such an entry as a name no host has, and would
/// send that host through the proxy. The host is then reached directly on every
/// port.
fn without_ports(excludes: &str) -> String {
    excludes
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            if let Some(v6) = entry.strip_prefix('[') {
                // `[::1]` or `[::1]:9000`: the address inside the brackets; a
                // network (`[fd00::]/8`) keeps its prefix length.
                return match v6.split_once(']') {
                    Some((network, bits)) if bits.starts_with('/') => format!("{network}{bits}"),
                    Some((address, _)) => address.to_owned(),
                    None => entry.to_owned(),
                };
            }
            // One colon: a name or IPv4 address and a port (an IPv6 address
            // without brackets has more).
            match entry.rsplit_once(':') {
                Some((host, port)) if !host.contains(':') && port.parse::<u16>().is_ok() => {
                    host.to_owned()
                }
                _ => entry.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Why `url` is no proxy this backend can use: not a URL, another scheme than
/// `http://`, no host, or a URL the matcher does not take.
fn check(url: &str) -> std::result::Result<(), String> {
    // Before the URL is parsed: a `/`, `?` or `#` in a password ends the
    // authority a parser sees, and what follows would be taken for a port or a
    // path, and shown in its error.
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    if rest
        .find(['/', '?', '#'])
        .is_some_and(|end| rest[end..].contains('@'))
    {
        return Err(
            "has an '@' after its host: a password with '/', '?' or '#' is written \
             percent-encoded (%2F, %3F, %23)"
                .into(),
        );
    }
    let uri: Uri = url.parse().map_err(|e| format!("is not a URL: {e}"))?;
    match uri.scheme_str() {
        None | Some("http") => {}
        Some(other) => {
            return Err(format!(
                "is a proxy reached with {other}://, which is not supported (use http://host:port)"
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("names no host".into());
    }
    if let Some(why) = super::config::bad_port(&uri) {
        return Err(why);
    }
    let taken = Matcher::builder()
        .https(url)
        .build()
        .intercept(&Uri::from_static("https://s3.amazonaws.com"))
        .is_some();
    if !taken {
        return Err("is not a proxy URL".into());
    }
    Ok(())
}

/// The first of `names` set (to anything but blanks), and its name.
fn first_env(names: &[&'static str]) -> Option<(String, &'static str)> {
    names.iter().find_map(|&name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (v, name))
    })
}

/// `url` without the `user:password@` before its host: all up to the last `@`
/// after the scheme goes (a password may hold an unencoded `/` or `@`).
pub(crate) fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = match rest.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest.to_owned(),
    }
}

/// Opens the TCP connections of one HTTP client: through the proxy's tunnel for
/// the HTTPS hosts it does not exclude, else directly.
#[derive(Clone)]
pub(crate) struct Connector {
    direct: HttpConnector,
    proxy: Option<Arc<Proxy>>,
    /// How long the proxy may take to answer the CONNECT (the TCP connection to
    /// it has the same bound, in `direct`).
    connect_timeout: Duration,
}

impl Connector {
    pub(crate) fn new(
        direct: HttpConnector,
        proxy: Option<Arc<Proxy>>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            direct,
            proxy,
            connect_timeout,
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let route = self
            .proxy
            .as_ref()
            .filter(|_| dst.scheme_str() == Some("https"))
            .and_then(|proxy| Some((Arc::clone(proxy), proxy.matcher.intercept(&dst)?)));
        let Some((proxy, intercept)) = route else {
            let connecting = self.direct.call(dst);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        let target = format!(
            "{}:{}",
            dst.host().unwrap_or_default(),
            dst.port_u16().unwrap_or(443)
        );
        let host = target.clone();
        let shown = proxy.shown.clone();
        let failed = move |kind, temporary, why: String| ThroughProxy {
            proxy: shown.clone(),
            target: target.clone(),
            kind,
            temporary,
            why,
            source: None,
        };
        if let Some(why) = &proxy.unusable {
            let err: BoxError = Box::new(failed(ErrorKind::Unsupported, false, why.clone()));
            return Box::pin(async move { Err(err) });
        }
        let auth = intercept.basic_auth().cloned();
        let connecting = self.direct.call(intercept.uri().clone());
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let mut stream = connecting.await.map_err(|e| -> BoxError {
                // What went wrong is at the end of the chain (the connector's own
                // message is only "tcp connect error"): refused, a name not
                // found, or the connect timeout, which is a `Timeout`.
                let mut cause: &(dyn std::error::Error + 'static) = &e;
                while let Some(next) = cause.source() {
                    cause = next;
                }
                let timed_out = cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
                let kind = if timed_out {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unexpected
                };
                let why = match std::error::Error::source(&e) {
                    Some(_) => format!("cannot connect to the proxy: {e}: {cause}"),
                    None => format!("cannot connect to the proxy: {e}"),
                };
                Box::new(ThroughProxy {
                    source: Some(Box::new(e)),
                    ..failed(kind, true, why)
                })
            })?;
            let answer =
                tokio::time::timeout(timeout, handshake(stream.inner_mut(), &host, auth.as_ref()))
                    .await;
            match answer {
                Ok(Ok(())) => Ok(stream),
                Ok(Err((kind, temporary, why))) => {
                    Err(Box::new(failed(kind, temporary, why)) as BoxError)
                }
                Err(_) => Err(Box::new(failed(
                    ErrorKind::Timeout,
                    true,
                    format!("the proxy did not answer the CONNECT within {timeout:?}"),
                )) as BoxError),
            }
        })
    }
}

/// Asks the proxy on `stream` for a tunnel to `target` (`host:port`); `Ok` once it
/// answers 2xx, else what the answer means: its kind, whether another try may
/// pass, and the proxy's status.
async fn handshake(
    stream: &mut TcpStream,
    target: &str,
    auth: Option<&HeaderValue>,
) -> std::result::Result<(), (ErrorKind, bool, String)> {
    let io = |e: std::io::Error| {
        (
            ErrorKind::Unexpected,
            true,
            format!("the proxy's connection failed: {e}"),
        )
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
    if let Some(auth) = auth {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(auth.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.map_err(io)?;
    // Nothing comes after a 2xx answer's head until the client speaks (TLS starts
    // with the client's hello), so reading in chunks takes no byte of the tunnel.
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0_u8; 1024];
    let (code, reason) = loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err((
                ErrorKind::Unexpected,
                true,
                "the proxy closed the connection before it answered the CONNECT".into(),
            ));
        }
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                break (
                    response.code.unwrap_or_default(),
                    response.reason.unwrap_or_default().to_owned(),
                );
            }
            Ok(httparse::Status::Partial) if head.len() < 16 << 10 => {}
            Ok(httparse::Status::Partial) => {
                return Err((
                    ErrorKind::Unexpected,
                    false,
                    "the proxy's answer to the CONNECT has a head over 16 KiB".into(),
                ));
            }
            Err(e) => {
                return Err((
                    ErrorKind::Unexpected,
                    false,
                    format!("the proxy's answer to the CONNECT is not HTTP: {e}"),
                ));
            }
        }
    };
    let status = format!("{code} {reason}");
    match code {
        200..=299 => Ok(()),
        407 => Err((
            ErrorKind::PermissionDenied,
            false,
            if auth.is_some() {
                format!("{status}: the proxy refused the credentials of its URL")
            } else {
                format!("{status}: the proxy wants credentials (http://user:password@host:port)")
            },
        )),
        403 => Err((
            ErrorKind::PermissionDenied,
            false,
            format!("{status}: the proxy refused the tunnel"),
        )),
        502..=504 => Err((
            ErrorKind::Unexpected,
            true,
            format!("{status}: the proxy could not reach the host"),
        )),
        _ => Err((
            ErrorKind::Unexpected,
            false,
            format!("{status}: the proxy refused the tunnel"),
        )),
    }
}

/// A tunnel the proxy did not open: which proxy, which host, and why, with the
/// kind of error and whether another try may pass (read by the backend's error
/// mapping).
#[derive(Debug)]
pub(crate) struct ThroughProxy {
    proxy: String,
    target: String,
    pub(crate) kind: ErrorKind,
    pub(crate) temporary: bool,
    why: String,
    /// The connect error, when the proxy itself could not be reached.
    source: Option<BoxError>,
}

impl fmt::Display for ThroughProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no tunnel to {} through the proxy {}: {}",
            self.target, self.proxy, self.why
        )
    }
}

impl std::error::Error for ThroughProxy {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_never_shown() {
        for (url, shown) in [
            ("http://user:TOPSECRET@proxy:3128", "http://proxy:3128"),
            ("user:TOPSECRET@proxy:3128", "proxy:3128"),
            ("http://user:TOP/SECRET@proxy:3128", "http://proxy:3128"),
            ("http://user:TOP@SECRET@proxy:3128", "http://proxy:3128"),
            ("http://proxy:3128/", "http://proxy:3128/"),
        ] {
            assert_eq!(without_credentials(url), shown);
        }
        let proxy = Proxy::resolve(Some("user:TOPSECRET@proxy:3128"), Some(""))
            .unwrap()
            .unwrap();
        assert_eq!(format!("{proxy:?}"), "http://proxy:3128");
        let err = Proxy::resolve(Some("https://user:TOPSECRET@proxy:3128"), Some("")).unwrap_err();
        assert!(
            !err.contains("TOPSECRET") && err.contains("https://"),
            "{err}"
        );
    }

    #[test]
    fn excluded_hosts_and_plain_http_go_directly() {
        let proxy = Proxy::resolve(
            Some("http://proxy:3128"),
            Some("internal.example, 10.0.0.0/8"),
        )
        .unwrap()
        .unwrap();
        let through = |uri: &'static str| proxy.matcher.intercept(&Uri::from_static(uri)).is_some();
        assert!(through("https://bucket.s3.us-east-1.amazonaws.com"));
        assert!(!through("https://s3.internal.example"));
        assert!(!through("https://10.1.2.3:9000"));
        // An entry with a port names its host (on every port).
        let ported = Proxy::resolve(
            Some("http://proxy:3128"),
            Some("minio.internal:9000, 10.0.0.5:9000,[::1]:9000, ::2"),
        )
        .unwrap()
        .unwrap();
        let ported = |uri: &'static str| ported.matcher.intercept(&Uri::from_static(uri)).is_some();
        assert!(!ported("https://minio.internal:9000"));
        assert!(!ported("https://10.0.0.5:9000"));
        assert!(!ported("https://[::1]:9000"));
        assert!(!ported("https://[::2]:443"));
        assert!(ported("https://minio.example:9000"));
        // A network in brackets keeps its prefix length (it was one address).
        let network = Proxy::resolve(Some("http://proxy:3128"), Some("[fd00::]/8"))
            .unwrap()
            .unwrap();
        let network =
            |uri: &'static str| network.matcher.intercept(&Uri::from_static(uri)).is_some();
        assert!(!network("https://[fd00::5]:9000"));
        assert!(!network("https://[fd12:3456::1]"));
        assert!(network("https://[fe80::1]:9000"));
        // The matcher knows no HTTP proxy: plain HTTP is never proxied.
        assert!(!through("http://169.254.169.254"));
        // `*`: no proxy at all, IP addresses included.
        assert!(
            Proxy::resolve(Some("http://proxy:3128"), Some("a.example, *"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn proxies_that_cannot_be_used_are_refused() {
        for bad in [
            "socks5://proxy:1080",
            "https://proxy:443",
            "http://",
            "http://[::1",
            "http://user:pa/ss@proxy:3128",
        ] {
            assert!(Proxy::resolve(Some(bad), Some("")).is_err(), "{bad}");
        }
        // A password with an unencoded `/`, `?` or `#`: refused for that, and no
        // part of it shown (a parser takes what comes before the `/` for a port).
        for bad in [
            "http://user:Sekr/et@proxy:3128",
            "http://user:Sekr?et@proxy:3128",
            "http://user:Sekr#et@proxy:3128",
            "http://user:12/Sekret@proxy:3128",
        ] {
            let err = Proxy::resolve(Some(bad), Some("")).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("percent-encoded"), "{bad}: {shown}");
            assert!(
                !shown.contains("Sekr") && !shown.contains("et@"),
                "{bad}: {shown}"
            );
        }
        assert!(Proxy::resolve(Some(" "), None).unwrap().is_none());
    }
}
