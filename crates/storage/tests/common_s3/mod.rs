//! The S3 server the S3 tests talk to: SeaweedFS, started by `scripts/test` (or
//! by hand with `scripts/s3-server start`), found through `DIO_TEST_S3_URI` and the
//! `AWS_*` variables.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::sync::atomic::{AtomicU64, Ordering};

use storage::Operator;
use storage::services::s3::S3Builder;

/// A builder for the test bucket under a fresh prefix, or `None` (with a note on
/// stderr) when no server was configured. With `DIO_REQUIRE_S3=1` a missing server
/// fails the test instead.
pub(crate) fn builder(test: &str) -> Option<S3Builder> {
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
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = format!(
        "t/{test}-{}-{}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Some(S3Builder::from_uri(&uri).unwrap().root(unique))
}

/// An operator on the test bucket under a fresh prefix.
pub(crate) fn operator(test: &str) -> Option<Operator> {
    builder(test).map(|b| Operator::new(b.build().unwrap()))
}

/// [`operator`] with writes unchecked (`write_checks(false)`: keys as S3 has them).
pub(crate) fn unchecked_operator(test: &str) -> Option<Operator> {
    builder(test).map(|b| Operator::new(b.write_checks(false).build().unwrap()))
}

/// What the tests that need more than the one identity use: the server that knows
/// them (`DIO_TEST_S3_EXTRA_URI`, else `DIO_TEST_S3_URI`), the identities of
/// `DIO_TEST_S3_IDENTITIES` (`reader-key:secret,writer-key:secret`: one that may
/// only read and list, one that may also write) and the KMS key of
/// `DIO_TEST_S3_KMS_KEY`, all printed by `scripts/s3-server`.
#[derive(Debug, Clone)]
pub(crate) struct Extras {
    /// `s3://bucket?endpoint=...&region=...`.
    pub(crate) uri: String,
    /// May read and list.
    pub(crate) reader: (String, String),
    /// May read, list and write.
    pub(crate) writer: (String, String),
    /// A KMS key id the server's KMS knows.
    pub(crate) kms_key: String,
}

/// The [`Extras`], or `None` (with a note) when no server was configured.
pub(crate) fn extras(test: &str) -> Option<Extras> {
    builder(test)?;
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: scripts/s3-server prints it with the server's environment")
        })
    };
    let uri = std::env::var("DIO_TEST_S3_EXTRA_URI").unwrap_or_else(|_| var("DIO_TEST_S3_URI"));
    let identities = var("DIO_TEST_S3_IDENTITIES");
    let mut pairs = identities.split(',').map(|pair| {
        let (key, secret) = pair.split_once(':').expect("key:secret");
        (key.to_owned(), secret.to_owned())
    });
    let (reader, writer) = (pairs.next().expect("reader"), pairs.next().expect("writer"));
    Some(Extras {
        uri,
        reader,
        writer,
        kms_key: var("DIO_TEST_S3_KMS_KEY"),
    })
}

/// A fresh key prefix for `test`.
pub(crate) fn unique_root(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 32);
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

/// One request to the test server outside our S3 backend, signed with the test
/// identity (`AWS_*`): what the backend has no call for, such as setting or reading
/// an object's tags. `key` is the object key in the bucket (a test's root
/// included); `query` is already encoded. Returns the status, headers and body.
pub(crate) async fn signed(
    method: &str,
    key: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (http::StatusCode, http::HeaderMap, bytes::Bytes) {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, sign,
    };
    use http_body_util::BodyExt as _;
    let uri = std::env::var("DIO_TEST_S3_URI").expect("DIO_TEST_S3_URI");
    let rest = uri.strip_prefix("s3://").expect("s3://...");
    let (bucket, params) = rest.split_once('?').expect("an endpoint");
    let param = |name: &str| {
        params
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let endpoint = param("endpoint").expect("an endpoint");
    let region = param("region").unwrap_or_else(|| env("AWS_REGION"));
    let mut url = format!("{endpoint}/{}/{key}", bucket.trim_end_matches('/'));
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    let mut request = http::Request::builder()
        .method(method)
        .uri(&url)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let identity = aws_credential_types::Credentials::new(
        env("AWS_ACCESS_KEY_ID"),
        env("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("s3")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        method,
        &url,
        request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
        SignableBody::UnsignedPayload,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client
        .request(request)
        .await
        .expect("the test server answers");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("the body").to_bytes();
    (parts.status, parts.headers, body)
}

/// A runtime of one thread for a test server of its own (a fake, a proxy), and a
/// listener on a free port of 127.0.0.1.
pub(crate) fn listening() -> (
    tokio::runtime::Runtime,
    tokio::net::TcpListener,
    std::net::SocketAddr,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    (runtime, listener, addr)
}

/// A private certificate authority and a TLS server configuration for
/// `127.0.0.1` it signed (as an internal server's, or a proxy's that inspects
/// TLS): the CA's PEM, and an acceptor with the server's certificate.
pub(crate) fn private_ca() -> (String, tokio_rustls::TlsAcceptor) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dio test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let key =
        tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into());
    let tls = tokio_rustls::rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![server_cert.der().clone()], key)
    .unwrap();
    (
        ca.pem(),
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls)),
    )
}

/// HTTPS in front of the test server: a TLS listener on 127.0.0.1 (its
/// certificate signed by a private CA) whose connections' bytes go to and from
/// `backend` unchanged, so the server still checks every request and signature.
/// Returns the runtime serving it, its address and the CA's PEM.
pub(crate) fn tls_in_front_of(
    backend: std::net::SocketAddr,
) -> (tokio::runtime::Runtime, std::net::SocketAddr, String) {
    let (ca, acceptor) = private_ca();
    let (runtime, listener, addr) = listening();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return; // a client that did not trust us
                };
                let Ok(mut server) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    (runtime, addr, ca)
}

/// What an [`HttpProxy`] was asked: each CONNECT's target and its
/// `Proxy-Authorization`.
pub(crate) type Tunnels = std::sync::Arc<parking_lot::Mutex<Vec<(String, Option<String>)>>>;

/// How an [`HttpProxy`] answers each CONNECT.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Answer {
    /// Opens the tunnel (with a password, only for its credentials; else 407).
    Tunnel,
    /// Answers with this status line (`403 Forbidden`, `502 Bad Gateway`).
    Status(&'static str),
    /// Never answers, holding the connection open.
    Silent,
}

/// An HTTP proxy on 127.0.0.1 that opens CONNECT tunnels, as squid does: with
/// `password`, only for `Proxy-Authorization: Basic` of `user:password` (else 407),
/// or answers every CONNECT as `answer` says. Records every CONNECT.
pub(crate) struct HttpProxy {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) tunnels: Tunnels,
    _runtime: tokio::runtime::Runtime,
}

impl HttpProxy {
    pub(crate) fn start(password: Option<&str>, answer: Answer) -> Self {
        use base64::Engine as _;
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let wanted = password.map(|p| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("user:{p}"))
            )
        });
        let tunnels = Tunnels::default();
        let seen = std::sync::Arc::clone(&tunnels);
        let (runtime, listener, addr) = listening();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (seen, wanted) = (std::sync::Arc::clone(&seen), wanted.clone());
                tokio::spawn(async move {
                    let mut client = tokio::io::BufReader::new(stream);
                    let mut head = Vec::new();
                    loop {
                        let mut line = String::new();
                        if client.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        head.push(line.trim_end().to_owned());
                    }
                    let target = head
                        .first()
                        .and_then(|l| l.strip_prefix("CONNECT "))
                        .and_then(|l| l.split(' ').next())
                        .map(str::to_owned);
                    let auth = head.iter().find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("proxy-authorization")
                            .then(|| value.trim().to_owned())
                    });
                    let Some(target) = target else {
                        let _ = client
                            .write_all(
                                b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n",
                            )
                            .await;
                        return;
                    };
                    seen.lock().push((target.clone(), auth.clone()));
                    let refusal = match answer {
                        Answer::Status(status) => {
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n")
                        }
                        Answer::Silent => {
                            // Holds the connection until the client gives up.
                            let _ = client.read_line(&mut String::new()).await;
                            return;
                        }
                        Answer::Tunnel if wanted.is_some() && auth != wanted => {
                            "HTTP/1.1 407 Proxy Authentication Required\r\n\
                             proxy-authenticate: Basic realm=\"dio\"\r\ncontent-length: 0\r\n\r\n"
                                .to_owned()
                        }
                        Answer::Tunnel => String::new(),
                    };
                    if !refusal.is_empty() {
                        let _ = client.write_all(refusal.as_bytes()).await;
                        return;
                    }
                    let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                        let _ = client
                            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    };
                    if client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        Self {
            addr,
            tunnels,
            _runtime: runtime,
        }
    }

    /// The targets of the CONNECTs so far.
    pub(crate) fn targets(&self) -> Vec<String> {
        self.tunnels.lock().iter().map(|(t, _)| t.clone()).collect()
    }
}

/// The address of the test server (`DIO_TEST_S3_URI`'s endpoint).
pub(crate) fn server_addr() -> Option<std::net::SocketAddr> {
    let uri = std::env::var("DIO_TEST_S3_URI").ok()?;
    let (_, endpoint) = uri.split_once("endpoint=")?;
    let endpoint = endpoint.split('&').next()?;
    let endpoint = percent_encoding::percent_decode_str(endpoint)
        .decode_utf8()
        .ok()?;
    let authority = endpoint.strip_prefix("http://")?.trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(authority)
        .ok()?
        .next()
}
