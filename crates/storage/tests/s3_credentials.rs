//! Credentials from the environments users run in: the provider chain's sources,
//! its order, and temporary credentials refreshed during a long read.
//!
//! Every identity handed out here is one SeaweedFS knows (`scripts/s3-server`: a
//! reader that may only read and list, a writer that may also write), so SeaweedFS
//! checks each request's signature, and a write signed with the wrong (or a stale)
//! identity is refused. The endpoints that hand them out are fakes speaking real
//! HTTP on 127.0.0.1: an instance-metadata service (IMDSv2, with its session
//! token), a container-credentials endpoint and an STS endpoint (assume_role, web
//! identity). SeaweedFS 4.48 refuses a session token it did not issue itself, so the
//! fakes hand out empty ones (the backend then sends none).
//!
//! The chain reads the process environment, so each test runs its S3 part in a
//! child process (this test binary, filtered to the one test) with exactly the
//! `AWS_*` variables the test sets; the parent serves the fake endpoints and checks
//! what they were asked.

#![cfg(feature = "credential-chain")]

mod common_s3;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use storage::services::s3::{S3, S3Builder};
use storage::{ErrorKind, Operator};

/// Set in a child: the name of the test it runs.
const CHILD: &str = "DIO_CREDENTIALS_TEST";
/// Set in a child: the key prefix its test works under.
const ROOT: &str = "DIO_CREDENTIALS_ROOT";

fn child_of(test: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|t| t == test)
}

/// Runs `test` in a child process with no `AWS_*` variables but `env`, no shared
/// config files (an empty home) and, unless a test sets its endpoint, no instance
/// metadata; fails if the child's test failed or did not run.
fn run_child(test: &str, root: &str, env: &[(&str, String)]) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env(ROOT, root)
        .env("HOME", home.path());
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy().to_ascii_uppercase();
        // The proxy variables too: a proxy of the machine's must not see a test's
        // requests, and a test of them sets its own.
        if name_text.starts_with("AWS_") || name_text.ends_with("_PROXY") {
            cmd.env_remove(name);
        }
    }
    if !env
        .iter()
        .any(|(k, _)| *k == "AWS_EC2_METADATA_SERVICE_ENDPOINT")
    {
        // Never a link-local address from a test.
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child of {test} failed:\n{text}");
    assert!(text.contains("1 passed"), "the child ran no test:\n{text}");
}

/// `HTTPS_PROXY` and `NO_PROXY`, as curl and the SDKs read them: HTTPS requests go
/// through the proxy's tunnel but to excluded hosts; a proxy the backend cannot use
/// (SOCKS) fails only the requests it would carry, naming the variable.
#[test]
fn the_proxy_comes_from_the_environment() {
    const TEST: &str = "the_proxy_comes_from_the_environment";
    let Some(server) = common_s3::server_addr() else {
        return;
    };
    if child_of(TEST) {
        let endpoint = std::env::var("DIO_PROXY_TEST_ENDPOINT").unwrap();
        let plain = common_s3::builder(TEST).unwrap();
        let builder = plain.clone().endpoint(endpoint);
        if std::env::var("HTTPS_PROXY").is_ok_and(|p| p.starts_with("socks5")) {
            // A proxy of the machine's this backend cannot use: what it would
            // carry fails, saying why; the rest goes on.
            let op = Operator::new(builder.build().unwrap());
            let err = futures::executor::block_on(op.stat("k")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
            assert!(err.to_string().contains("HTTPS_PROXY"), "{err}");
            let direct = Operator::new(plain.build().unwrap());
            futures::executor::block_on(direct.write("k", &b"v"[..])).unwrap();
            futures::executor::block_on(direct.delete("k")).unwrap();
            return;
        }
        let op = Operator::new(builder.build().unwrap());
        futures::executor::block_on(async {
            op.write("k", &b"v"[..]).await.unwrap();
            assert_eq!(op.read("k").await.unwrap(), &b"v"[..]);
            op.delete("k").await.unwrap();
        });
        return;
    }
    let (_tls, tls_addr, ca) = common_s3::tls_in_front_of(server);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca).unwrap();
    let proxy = common_s3::HttpProxy::start(None, common_s3::Answer::Tunnel);
    let env = |proxy_url: String, excludes: Option<&str>| {
        let mut env = vec![
            (
                "AWS_ACCESS_KEY_ID",
                std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
            ),
            ("AWS_CA_BUNDLE", bundle.display().to_string()),
            ("DIO_PROXY_TEST_ENDPOINT", format!("https://{tls_addr}")),
            ("HTTPS_PROXY", proxy_url),
        ];
        if let Some(excludes) = excludes {
            env.push(("NO_PROXY", excludes.to_owned()));
        }
        env
    };
    run_child(TEST, "", &env(format!("http://{}", proxy.addr), None));
    let tunnels = proxy.targets();
    assert!(!tunnels.is_empty());
    assert!(
        tunnels.iter().all(|t| *t == tls_addr.to_string()),
        "{tunnels:?}"
    );
    run_child(
        TEST,
        "",
        &env(
            format!("http://{}", proxy.addr),
            Some("example.com,127.0.0.1"),
        ),
    );
    assert_eq!(
        proxy.targets().len(),
        tunnels.len(),
        "NO_PROXY was not heeded"
    );
    run_child(TEST, "", &env("socks5://127.0.0.1:1".into(), None));
}

/// The endpoint from the shared config file when none is given, as the SDKs read
/// it: the `s3` entry of the profile's `services` section before the profile's own
/// `endpoint_url`, the variables before both, and none of them where
/// `ignore_configured_endpoint_urls` says so (the variable before the profile's).
#[test]
fn the_endpoint_comes_from_the_profile() {
    const TEST: &str = "the_endpoint_comes_from_the_profile";
    const EXPECTED: &str = "DIO_TEST_EXPECTED_ENDPOINT";
    if child_of(TEST) {
        let s3 = S3Builder::new("b").anonymous().build().unwrap();
        let expected = std::env::var(EXPECTED).unwrap();
        assert_eq!(
            s3.endpoint(),
            (expected != "none").then_some(expected.as_str())
        );
        return;
    }
    let services = "[profile dio]\nservices = local\nendpoint_url = http://127.0.0.1:1111\n\
                    [services local]\ns3 =\n  endpoint_url = http://127.0.0.1:2222\n";
    let ignoring = "[default]\nendpoint_url = http://127.0.0.1:1111\n\
                    ignore_configured_endpoint_urls = true\n";
    for (config, extra, expected) in [
        (
            "[default]\nendpoint_url = http://127.0.0.1:1111\n",
            &[][..],
            "http://127.0.0.1:1111",
        ),
        (
            services,
            &[("AWS_PROFILE", "dio")][..],
            "http://127.0.0.1:2222",
        ),
        (
            services,
            &[
                ("AWS_PROFILE", "dio"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:3333"),
            ][..],
            "http://127.0.0.1:3333",
        ),
        (
            ignoring,
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:3333")][..],
            "none",
        ),
        (
            ignoring,
            &[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:3333"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"),
            ][..],
            "http://127.0.0.1:3333",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut env = profile_files(dir.path(), config, "");
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env.push((EXPECTED, expected.to_owned()));
        run_child(TEST, "", &env);
    }
}

/// What a fake endpoint saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// A field of a form-encoded body (STS's).
    fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| {
                percent_encoding::percent_decode_str(&v.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }
}

type Handler = dyn Fn(&Seen, usize) -> (u16, String) + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 answering request `n` with `handler(seen, n)`.
struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Fake {
    fn start(handler: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static) -> Self {
        let (runtime, listener, addr) = common_s3::listening();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        runtime.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let seen = Seen {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_owned(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        let n = {
                            let mut log = log.lock();
                            log.push(seen.clone());
                            log.len() - 1
                        };
                        let (status, body) = handler(&seen, n);
                        let mut response = Response::builder().status(status);
                        // As the instance-metadata service does: a session token's
                        // answer says how long it lives.
                        if let Some(ttl) = seen.header("x-aws-ec2-metadata-token-ttl-seconds") {
                            response = response.header("x-aws-ec2-metadata-token-ttl-seconds", ttl);
                        }
                        Ok::<_, Infallible>(response.body(Full::new(Bytes::from(body))).unwrap())
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }
}

fn rfc3339(time: SystemTime) -> String {
    use aws_smithy_types::date_time::{DateTime, Format};
    DateTime::from(time).fmt(Format::DateTime).unwrap()
}

/// The JSON document of instance metadata and container endpoints.
fn credential_document((key, secret): &(String, String), expires: SystemTime) -> String {
    format!(
        r#"{{"Code":"Success","LastUpdated":"{}","Type":"AWS-HMAC","AccessKeyId":"{key}","SecretAccessKey":"{secret}","Token":"","Expiration":"{}"}}"#,
        rfc3339(SystemTime::now()),
        rfc3339(expires)
    )
}

fn in_hours(hours: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(hours * 3600)
}

/// STS's answer to `action` (AssumeRole, AssumeRoleWithWebIdentity).
fn sts_answer(action: &str, (key, secret): &(String, String)) -> String {
    format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
         <Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>\
         <SessionToken></SessionToken><Expiration>{}</Expiration></Credentials>\
         <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/dio/test</Arn>\
         <AssumedRoleId>AROA:test</AssumedRoleId></AssumedRoleUser></{action}Result>\
         <ResponseMetadata><RequestId>sts-1</RequestId></ResponseMetadata></{action}Response>",
        rfc3339(in_hours(1))
    )
}

const OBJECT: &str = "written by the tests' own identity";

/// Writes `object` under a fresh root with the tests' own identity (the `AWS_*`
/// variables); returns the root.
fn prepare(extras: &common_s3::Extras, test: &str) -> String {
    let root = common_s3::unique_root(test);
    let s3 = S3Builder::from_uri(&extras.uri)
        .unwrap()
        .root(&root)
        .build()
        .unwrap();
    Operator::new(s3)
        .blocking()
        .write("object", OBJECT)
        .unwrap();
    root
}

/// In a child: the backend with no credentials given, under the parent's root.
fn child_backend(extras: &common_s3::Extras) -> (S3, Operator) {
    let root = std::env::var(ROOT).unwrap();
    let s3 = S3Builder::from_uri(&extras.uri)
        .unwrap()
        .root(root)
        .build()
        .unwrap();
    (s3.clone(), Operator::new(s3))
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// In a child: reads with the identity from `source`, which must be `key`; writes
/// only if `may_write` (SeaweedFS decides, from the signature).
fn child_uses(extras: &common_s3::Extras, source: &str, key: &str, may_write: bool) {
    let (s3, op) = child_backend(extras);
    assert!(s3.current_credentials().is_none(), "none before a request");
    block_on(async {
        assert_eq!(op.read("object").await.unwrap(), OBJECT);
        let info = s3.credential_info().expect("credentials were fetched");
        assert_eq!((info.source, info.access_key_id.as_str()), (source, key));
        // What it signs with, whole, for another client to sign as the same identity.
        let current = s3.current_credentials().expect("credentials were fetched");
        let secret = [&extras.reader, &extras.writer]
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, secret)| secret.as_str());
        assert_eq!(current.access_key_id(), key);
        assert_eq!(Some(current.secret_access_key()), secret);
        assert!(!format!("{current:?}").contains(current.secret_access_key()));
        let written = op.write("by-child", "x").await;
        if may_write {
            written.unwrap();
        } else {
            let err = written.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        }
    });
}

#[test]
fn instance_metadata_credentials_with_an_imdsv2_session() {
    const TEST: &str = "instance_metadata_credentials_with_an_imdsv2_session";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        return child_uses(&extras, "instance-metadata", &extras.reader.0, false);
    }
    let reader = extras.reader.clone();
    let imds = Fake::start(move |seen, _| {
        match (seen.method.as_str(), seen.path.as_str()) {
            ("PUT", "/latest/api/token")
                if seen
                    .header("x-aws-ec2-metadata-token-ttl-seconds")
                    .is_some() =>
            {
                (200, "imds-session".into())
            }
            // IMDSv2: nothing without the session token.
            _ if seen.header("x-aws-ec2-metadata-token") != Some("imds-session") => {
                (401, String::new())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") => (200, "dio-role".into()),
            ("GET", "/latest/meta-data/iam/security-credentials/dio-role") => {
                (200, credential_document(&reader, in_hours(6)))
            }
            _ => (404, String::new()),
        }
    });
    let root = prepare(&extras, TEST);
    run_child(
        TEST,
        &root,
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url(""))],
    );
    let seen = imds.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("PUT", "/latest/api/token"),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(
            |s| s.path.ends_with("/dio-role") && s.header("x-aws-ec2-metadata-token").is_some()
        ),
        "{seen:?}"
    );
}

#[test]
fn container_credentials_with_an_authorization_token() {
    const TEST: &str = "container_credentials_with_an_authorization_token";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        return child_uses(&extras, "container", &extras.writer.0, true);
    }
    let writer = extras.writer.clone();
    let endpoint = Fake::start(move |seen, _| match seen.header("authorization") {
        Some("pod-identity-token") if seen.path == "/v1/credentials" => {
            (200, credential_document(&writer, in_hours(1)))
        }
        _ => (403, r#"{"Code":"AccessDenied","Message":"no"}"#.into()),
    });
    let root = prepare(&extras, TEST);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "pod-identity-token").unwrap();
    run_child(
        TEST,
        &root,
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                endpoint.url("/v1/credentials"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
    );
    assert_eq!(
        endpoint.seen().len(),
        1,
        "asked once: {:?}",
        endpoint.seen()
    );
}

/// Writes the shared config and credentials files into `dir`; returns the
/// variables that point the chain at them.
fn profile_files(
    dir: &std::path::Path,
    config: &str,
    credentials: &str,
) -> Vec<(&'static str, String)> {
    let (config_file, credentials_file) = (dir.join("config"), dir.join("credentials"));
    std::fs::write(&config_file, config).unwrap();
    std::fs::write(&credentials_file, credentials).unwrap();
    vec![
        ("AWS_CONFIG_FILE", config_file.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials_file.display().to_string(),
        ),
    ]
}

#[test]
fn profile_credentials_and_region() {
    const TEST: &str = "profile_credentials_and_region";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        // The region comes from the profile when neither the URI nor the
        // environment names one.
        let s3 = S3Builder::new("any").anonymous().build().unwrap();
        assert_eq!(s3.region(), "eu-central-1");
        return child_uses(&extras, "profile", &extras.writer.0, true);
    }
    let root = prepare(&extras, TEST);
    let dir = tempfile::tempdir().unwrap();
    let (key, secret) = &extras.writer;
    let mut env = profile_files(
        dir.path(),
        "[default]\nregion = us-west-2\n\n[profile dio]\nregion = eu-central-1\n",
        &format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n\
             [dio]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
        ),
    );
    env.push(("AWS_PROFILE", "dio".into()));
    run_child(TEST, &root, &env);
}

#[test]
fn the_environment_names_the_region_before_the_profile() {
    const TEST: &str = "the_environment_names_the_region_before_the_profile";
    const EXPECTED: &str = "DIO_TEST_EXPECTED_REGION";
    if child_of(TEST) {
        let s3 = S3Builder::new("any").anonymous().build().unwrap();
        assert_eq!(s3.region(), std::env::var(EXPECTED).unwrap());
        // Also from inside another executor's `block_on` (which the profile's
        // reader may not enter again on the same thread).
        let s3 = futures::executor::block_on(async {
            S3Builder::new("any").anonymous().build().unwrap()
        });
        assert_eq!(s3.region(), std::env::var(EXPECTED).unwrap());
        // The builder's own region beats them all.
        let s3 = S3Builder::new("any")
            .anonymous()
            .region("sa-east-1")
            .build()
            .unwrap();
        assert_eq!(s3.region(), "sa-east-1");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = profile_files(
        dir.path(),
        "[default]\nregion = eu-central-1\n",
        "[default]\naws_access_key_id = k\naws_secret_access_key = s\n",
    );
    let with = |extra: &[(&'static str, &str)], expected: &str| {
        let mut env = profile.clone();
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        env.push((EXPECTED, expected.to_owned()));
        run_child(TEST, "", &env);
    };
    with(&[], "eu-central-1");
    with(&[("AWS_DEFAULT_REGION", "ap-south-1")], "ap-south-1");
    with(
        &[
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_REGION", "ca-central-1"),
        ],
        "ca-central-1",
    );
}

/// The endpoint, when not given, comes from the environment as the AWS SDKs read
/// it: `AWS_ENDPOINT_URL_S3` before `AWS_ENDPOINT_URL`, neither with
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`; a bad one is refused naming the
/// variable it came from.
#[test]
fn endpoints_from_the_environment_as_the_sdks_read_them() {
    const TEST: &str = "endpoints_from_the_environment_as_the_sdks_read_them";
    const EXPECTED: &str = "DIO_TEST_EXPECTED_ENDPOINT";
    if child_of(TEST) {
        let built = S3Builder::new("b").anonymous().build();
        match std::env::var(EXPECTED).unwrap().as_str() {
            "none" => assert_eq!(built.unwrap().endpoint(), None),
            error if error.starts_with("error: ") => {
                let err = built.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
                assert!(err.to_string().contains(&error[7..]), "{err}");
            }
            url => assert_eq!(built.unwrap().endpoint(), Some(url)),
        }
        return;
    }
    let with = |env: &[(&'static str, &str)], expected: &str| {
        let mut env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        env.push((EXPECTED, expected.to_owned()));
        run_child(TEST, "", &env);
    };
    with(&[("AWS_ENDPOINT_URL", "http://all:1")], "http://all:1");
    with(
        &[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_S3", "http://s3:2"),
        ],
        "http://s3:2",
    );
    with(
        &[
            ("AWS_ENDPOINT_URL_S3", "http://s3:2"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ],
        "none",
    );
    with(
        &[("AWS_ENDPOINT_URL", "localhost:4566")],
        "error: AWS_ENDPOINT_URL \"localhost:4566\"",
    );
}

/// A profile that cannot give credentials (here, one that is not defined) says why
/// at every request, not only the first: the chain is built again after a failure,
/// where aws-config's profile provider hands its setup error out once and then
/// says only that it was "already taken".
#[test]
fn a_profile_that_cannot_give_credentials_says_why_every_time() {
    const TEST: &str = "a_profile_that_cannot_give_credentials_says_why_every_time";
    if child_of(TEST) {
        let s3 = S3Builder::new("b")
            .endpoint("http://127.0.0.1:1")
            .build()
            .unwrap();
        let op = Operator::new(s3);
        for attempt in 0..3 {
            let err = block_on(op.stat("k")).unwrap_err();
            let chain = format!("{err:?}");
            assert!(
                chain.contains("no-such-profile"),
                "attempt {attempt}: {chain}"
            );
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut env = profile_files(
        dir.path(),
        "[default]\nregion = eu-central-1\n",
        "[default]\naws_access_key_id = k\naws_secret_access_key = s\n",
    );
    env.push(("AWS_PROFILE", "no-such-profile".into()));
    run_child(TEST, "", &env);
}

/// A container authorization token that cannot be sent (a line break at the end
/// of its file, as `echo` writes it) fails the credentials, saying so, without
/// showing the token: aws-config's own message quotes it, and errors get logged.
#[test]
fn a_container_token_that_cannot_be_sent_is_not_shown() {
    const TEST: &str = "a_container_token_that_cannot_be_sent_is_not_shown";
    if child_of(TEST) {
        let s3 = S3Builder::new("b")
            .endpoint("http://127.0.0.1:1")
            .build()
            .unwrap();
        let op = Operator::new(s3);
        let err = block_on(op.stat("k")).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("SECRET-POD-TOKEN"), "{shown}");
        assert!(shown.contains("auth token"), "says what: {shown}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "SECRET-POD-TOKEN\n").unwrap();
    let env = [
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://127.0.0.1:1/creds".to_owned(),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token.display().to_string(),
        ),
    ];
    run_child(TEST, "", &env);
}

/// A link of the chain that fails says which it is and where it looked: a web
/// identity token file that is not there names the provider and the file; a
/// container endpoint that does not answer (its agent restarting) names the
/// endpoint, and is temporary (`PermissionDenied`, as its 500 is), not a
/// permanent `Unexpected` a caller would not retry.
#[test]
fn a_failing_link_of_the_chain_says_which_and_where() {
    const TEST: &str = "a_failing_link_of_the_chain_says_which_and_where";
    if child_of(TEST) {
        let s3 = S3Builder::new("b")
            .endpoint("http://127.0.0.1:1")
            .build()
            .unwrap();
        let op = Operator::new(s3);
        let err = block_on(op.stat("k")).unwrap_err();
        let shown = format!("{err}");
        let expected = std::env::var("DIO_CHILD_EXPECTS").unwrap();
        for part in expected.split('|') {
            assert!(shown.contains(part), "{part:?} in {shown}");
        }
        if std::env::var("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_ok() {
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{shown}");
            assert!(err.is_temporary(), "{shown}");
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-token");
    run_child(
        TEST,
        "",
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", missing.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r".into()),
            ("AWS_REGION", "us-east-1".into()),
            (
                "DIO_CHILD_EXPECTS",
                format!("web identity|{}", missing.display()),
            ),
        ],
    );
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/creds");
    run_child(
        TEST,
        "",
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", url.clone()),
            ("DIO_CHILD_EXPECTS", format!("container|{url}")),
        ],
    );
}

/// `AWS_CA_BUNDLE` is the CA bundle when none is given, read at build: one that
/// cannot be read fails it, naming the variable and the file.
#[test]
fn the_ca_bundle_comes_from_the_environment() {
    const TEST: &str = "the_ca_bundle_comes_from_the_environment";
    if child_of(TEST) {
        let err = S3Builder::new("b").anonymous().build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("AWS_CA_BUNDLE"), "{err}");
        assert!(err.to_string().contains("no-such-bundle.pem"), "{err}");
        return;
    }
    run_child(TEST, "", &[("AWS_CA_BUNDLE", "/no-such-bundle.pem".into())]);
}

#[test]
fn assume_role_from_a_profile() {
    const TEST: &str = "assume_role_from_a_profile";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        return child_uses(&extras, "profile", &extras.writer.0, true);
    }
    let writer = extras.writer.clone();
    let sts = Fake::start(move |seen, _| {
        // Signed by the source profile's keys, for the role of the profile.
        let signed_by_base = seen
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=base-key/"));
        let role = seen.form("RoleArn");
        match seen.form("Action").as_deref() {
            Some("AssumeRole")
                if signed_by_base
                    && role.as_deref() == Some("arn:aws:iam::123456789012:role/dio") =>
            {
                (200, sts_answer("AssumeRole", &writer))
            }
            _ => (
                403,
                "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>".into(),
            ),
        }
    });
    let root = prepare(&extras, TEST);
    let dir = tempfile::tempdir().unwrap();
    let mut env = profile_files(
        dir.path(),
        "[profile dio]\nrole_arn = arn:aws:iam::123456789012:role/dio\nsource_profile = base\n\
         region = us-east-1\n",
        "[base]\naws_access_key_id = base-key\naws_secret_access_key = base-secret\n",
    );
    env.push(("AWS_PROFILE", "dio".into()));
    env.push(("AWS_ENDPOINT_URL_STS", sts.url("")));
    run_child(TEST, &root, &env);
    let seen = sts.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].form("Action").as_deref(), Some("AssumeRole"));
}

#[test]
fn web_identity_token_for_a_role() {
    const TEST: &str = "web_identity_token_for_a_role";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        return child_uses(&extras, "web-identity", &extras.reader.0, false);
    }
    let reader = extras.reader.clone();
    let sts = Fake::start(move |seen, _| {
        let ok = seen.form("Action").as_deref() == Some("AssumeRoleWithWebIdentity")
            && seen.form("WebIdentityToken").as_deref() == Some("eks-service-account-jwt")
            && seen.form("RoleArn").as_deref() == Some("arn:aws:iam::123456789012:role/eks");
        if ok {
            (200, sts_answer("AssumeRoleWithWebIdentity", &reader))
        } else {
            (
                400,
                "<ErrorResponse><Error><Code>InvalidIdentityToken</Code></Error></ErrorResponse>"
                    .into(),
            )
        }
    });
    let root = prepare(&extras, TEST);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eks-service-account-jwt").unwrap();
    run_child(
        TEST,
        &root,
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/eks".into()),
            ("AWS_ROLE_SESSION_NAME", "dio-test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL_STS", sts.url("")),
        ],
    );
    assert_eq!(sts.seen().len(), 1, "{:?}", sts.seen());
}

#[test]
fn the_chain_takes_the_first_source_that_has_credentials() {
    const TEST: &str = "the_chain_takes_the_first_source_that_has_credentials";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        // The environment comes before the profile, the profile before the
        // container endpoint and instance metadata.
        let env_first = std::env::var("AWS_ACCESS_KEY_ID").is_ok();
        return if env_first {
            child_uses(&extras, "environment", &extras.writer.0, true)
        } else {
            child_uses(&extras, "profile", &extras.reader.0, false)
        };
    }
    let root = prepare(&extras, TEST);
    // Later sources would hand out the writer: they must not be asked.
    let writer = extras.writer.clone();
    let later = Fake::start(move |_, _| (200, credential_document(&writer, in_hours(1))));
    let dir = tempfile::tempdir().unwrap();
    let (key, secret) = &extras.reader;
    let mut env = profile_files(
        dir.path(),
        "[default]\nregion = us-east-1\n",
        &format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    );
    env.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        later.url("/container"),
    ));
    env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT", later.url("")));
    run_child(TEST, &root, &env);
    // The environment's keys win over the profile's.
    env.push(("AWS_ACCESS_KEY_ID", extras.writer.0.clone()));
    env.push(("AWS_SECRET_ACCESS_KEY", extras.writer.1.clone()));
    run_child(TEST, &root, &env);
    assert!(later.seen().is_empty(), "{:?}", later.seen());
}

/// The long read: 2 MiB in 64 KiB chunks with 400 ms pauses (12.8 s), so that it
/// spans the switch from the first identity (8 s, stale after 4: the open, which
/// must still be signed with it, has that long on a loaded server) to the next.
const LONG: usize = 2 << 20;

#[test]
fn credentials_that_expire_during_a_long_read_are_refreshed_once() {
    const TEST: &str = "credentials_that_expire_during_a_long_read_are_refreshed_once";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        let (s3, op) = child_backend(&extras);
        return block_on(async {
            use futures_util::StreamExt as _;
            let expected = common_s3_data();
            let reader = op
                .reader_with("long")
                .chunk_size(64 << 10)
                .prefetch(2)
                .whole_up_to(0)
                .await
                .unwrap();
            let first = s3.credential_info().unwrap();
            assert_eq!(first.access_key_id, extras.reader.0, "{first:?}");
            assert!(first.expiry.is_some());
            // Other requests go on at the same time: still one refresh.
            let busy = std::sync::atomic::AtomicBool::new(true);
            let others = async {
                let mut n = 0;
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    op.stat("long").await.unwrap();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    n += 1;
                }
                n
            };
            let read = async {
                let mut got = Vec::with_capacity(LONG);
                let mut stream = reader;
                while let Some(chunk) = stream.next().await {
                    got.extend_from_slice(&chunk.unwrap());
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
                busy.store(false, std::sync::atomic::Ordering::Relaxed);
                got
            };
            let (got, stats) = tokio::join!(read, others);
            assert!(stats > 0);
            assert!(got == expected[..], "the long read returned other bytes");
            let now = s3.credential_info().unwrap();
            assert_eq!(now.access_key_id, extras.writer.0, "refreshed: {now:?}");
            // Signed with the refreshed identity, or SeaweedFS refuses the write.
            op.write("after-the-switch", "x").await.unwrap();
        });
    }
    let root = prepare(&extras, TEST);
    // The long object, written with the tests' own identity.
    let s3 = S3Builder::from_uri(&extras.uri)
        .unwrap()
        .root(&root)
        .build()
        .unwrap();
    Operator::new(s3)
        .blocking()
        .write("long", common_s3_data())
        .unwrap();
    let (reader, writer) = (extras.reader.clone(), extras.writer.clone());
    // First the reader, for 8 seconds; then the writer, for an hour.
    let endpoint = Fake::start(move |_, n| match n {
        0 => (
            200,
            credential_document(&reader, SystemTime::now() + Duration::from_secs(8)),
        ),
        _ => (200, credential_document(&writer, in_hours(1))),
    });
    run_child(
        TEST,
        &root,
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url("/creds"))],
    );
    assert_eq!(
        endpoint.seen().len(),
        2,
        "one fetch, then one refresh: {:?}",
        endpoint.seen()
    );
}

#[test]
fn an_expired_identity_never_signs() {
    const TEST: &str = "an_expired_identity_never_signs";
    let Some(extras) = common_s3::extras(TEST) else {
        return;
    };
    if child_of(TEST) {
        let (s3, op) = child_backend(&extras);
        return block_on(async {
            assert_eq!(op.read("object").await.unwrap(), OBJECT);
            let expiry = s3.credential_info().unwrap().expiry.unwrap();
            while SystemTime::now() < expiry {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // SeaweedFS would accept the expired keys (it does not know they
            // expired): the backend must not send them.
            let err = op.read("object").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
            assert!(err.to_string().contains("credential provider"), "{err}");
        });
    }
    let root = prepare(&extras, TEST);
    let reader = extras.reader.clone();
    // Hands out the reader for 6 seconds (the first read, signed with it, has
    // that long on a loaded machine), then fails.
    let endpoint = Fake::start(move |_, n| match n {
        0 => (
            200,
            credential_document(&reader, SystemTime::now() + Duration::from_secs(6)),
        ),
        _ => (500, r#"{"Code":"InternalError","Message":"down"}"#.into()),
    });
    run_child(
        TEST,
        &root,
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url("/creds"))],
    );
    assert!(endpoint.seen().len() >= 2, "{:?}", endpoint.seen());
}

fn common_s3_data() -> Vec<u8> {
    (0..LONG).map(|i| (i % 251) as u8).collect()
}
