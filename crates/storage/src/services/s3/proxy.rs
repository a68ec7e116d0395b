//! [`Proxy`]: HTTPS requests through an HTTP proxy, in a CONNECT tunnel.
//!
//! Where a network reaches S3 only through a proxy, the SDKs, curl, reqwest (and
//! so object_store and OpenDAL) read `HTTPS_PROXY` and `NO_PROXY`; a client that
//! did not would fail to connect where its peers work. HTTPS requests (S3's, and
//! the credential chain's STS requests) go through the proxy, TLS from end to end
//! inside the tunnel. Plain-HTTP endpoints are reached directly: a local
//! S3-compatible server, and the instance metadata and container credential
//! endpoints, which a proxy must not see.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where HTTPS requests go: through the proxy, but to hosts it excludes.
pub(crate) struct Proxy {
    matcher: Matcher,
    /// The proxy as errors and `Debug` show it: without its credentials.
    shown: String,
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
    /// without `excludes`, `NO_PROXY` (or `no_proxy`). `None` without a proxy.
    ///
    /// # Errors
    ///
    /// A proxy that is not an `http://` URL, naming where it came from but not
    /// its credentials.
    pub(crate) fn resolve(
        url: Option<&str>,
        excludes: Option<&str>,
    ) -> std::result::Result<Option<Self>, String> {
        let (url, from) = match url {
            Some(url) => (url.to_owned(), "the proxy"),
            None => match first_env(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]) {
                Some(found) => found,
                None => return Ok(None),
            },
        };
        let url = url.trim();
        if url.is_empty() {
            return Ok(None);
        }
        let shown = without_credentials(url);
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{from} {shown:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            None | Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "{from} {shown:?}: a proxy reached with {other}:// is not supported (use http://host:port)"
                ));
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(format!("{from} {shown:?} names no host"));
        }
        let excludes = match excludes {
            Some(list) => list.to_owned(),
            None => first_env(&["NO_PROXY", "no_proxy"])
                .map(|(list, _)| list)
                .unwrap_or_default(),
        };
        let taken = Matcher::builder()
            .https(url)
            .build()
            .intercept(&Uri::from_static("https://s3.amazonaws.com"))
            .is_some();
        if !taken {
            return Err(format!("{from} {shown:?} is not a proxy URL"));
        }
        let matcher = Matcher::builder().https(url).no(excludes).build();
        let shown = match uri.scheme_str() {
            Some(_) => shown,
            None => format!("http://{shown}"),
        };
        Ok(Some(Self { matcher, shown }))
    }
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

/// `url` without the `user:password@` of its authority.
pub(crate) fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
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
}

impl Connector {
    pub(crate) fn new(direct: HttpConnector, proxy: Option<Arc<Proxy>>) -> Self {
        Self { direct, proxy }
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
            .and_then(|proxy| Some((proxy, proxy.matcher.intercept(&dst)?)));
        let Some((proxy, intercept)) = route else {
            let connecting = self.direct.call(dst);
            return Box::pin(async move { connecting.await.map_err(Into::into) });
        };
        let mut tunnel = Tunnel::new(intercept.uri().clone(), self.direct.clone());
        if let Some(auth) = intercept.basic_auth() {
            tunnel = tunnel.with_auth(auth.clone());
        }
        let target = format!(
            "{}:{}",
            dst.host().unwrap_or_default(),
            dst.port_u16().unwrap_or(443)
        );
        let shown = proxy.shown.clone();
        let connecting = tunnel.call(dst);
        Box::pin(async move {
            connecting.await.map_err(|e| {
                BoxError::from(ThroughProxy {
                    proxy: shown,
                    target,
                    source: Box::new(e),
                })
            })
        })
    }
}

/// A tunnel the proxy did not open: says which proxy and which host.
#[derive(Debug)]
struct ThroughProxy {
    proxy: String,
    target: String,
    source: BoxError,
}

impl fmt::Display for ThroughProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no tunnel to {} through the proxy {}: {}",
            self.target, self.proxy, self.source
        )
    }
}

impl std::error::Error for ThroughProxy {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
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
        // The matcher knows no HTTP proxy: plain HTTP is never proxied.
        assert!(!through("http://169.254.169.254"));
    }

    #[test]
    fn proxies_that_cannot_be_used_are_refused() {
        for bad in [
            "socks5://proxy:1080",
            "https://proxy:443",
            "http://",
            "http://[::1",
        ] {
            assert!(Proxy::resolve(Some(bad), Some("")).is_err(), "{bad}");
        }
        assert!(Proxy::resolve(Some(" "), None).unwrap().is_none());
    }
}
