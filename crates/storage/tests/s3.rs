//! The conformance suite on S3 (SeaweedFS, started by `scripts/test`), plus what
//! only S3 has: multipart uploads, pagination, credentials.

mod common_s3;
mod conformance;

conformance_tests!(optional common_s3::operator);

use std::collections::BTreeSet;

use conformance::{random_bytes, sha};
use storage::services::s3::{Credentials, S3Builder};
use storage::{ErrorKind, Operator};
use tokio::io::AsyncWriteExt;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// 5 MiB parts (S3's minimum) from 5 MiB on.
fn small_parts(test: &str) -> Option<Operator> {
    let builder = common_s3::builder(test)?
        .part_size(5 << 20)
        .multipart_threshold(5 << 20)
        .part_concurrency(3);
    Some(Operator::new(builder.build().unwrap()))
}

/// A multipart object's ETag is `"<md5 of part md5s>-<parts>"`.
fn parts_in_etag(etag: Option<&str>) -> Option<u32> {
    etag?.trim_matches('"').rsplit_once('-')?.1.parse().ok()
}

#[test]
fn multipart_with_five_mib_parts() {
    let Some(op) = small_parts("multipart_5mib") else {
        return;
    };
    current_thread().block_on(async {
        // Through write(): 23 MiB + 1 byte, so 5 parts, the last one short.
        let data = random_bytes((23 << 20) + 1, 41);
        let meta = op.write("mp/one-shot", data.clone()).await.unwrap();
        assert_eq!(meta.content_length(), data.len() as u64);
        assert_eq!(sha(&op.read("mp/one-shot").await.unwrap()), sha(&data));
        let stat = op.stat("mp/one-shot").await.unwrap();
        assert_eq!(stat.content_length(), data.len() as u64);
        assert_eq!(parts_in_etag(stat.etag()), Some(5), "{stat:?}");

        // Through a writer, in uneven pieces that straddle part boundaries.
        let data = random_bytes(12 << 20, 42);
        let mut writer = op.writer("mp/pieces").await.unwrap();
        for piece in data.chunks(777_777) {
            writer.write_all(piece).await.unwrap();
        }
        let meta = writer.close().await.unwrap();
        assert_eq!(meta.content_length(), data.len() as u64);
        assert_eq!(sha(&op.read("mp/pieces").await.unwrap()), sha(&data));
        let stat = op.stat("mp/pieces").await.unwrap();
        assert_eq!(parts_in_etag(stat.etag()), Some(3), "{stat:?}");
        // Range reads cross part boundaries.
        let range = (5 << 20) - 10..(5 << 20) + 10;
        let got = op.read_range("mp/pieces", range.clone()).await.unwrap();
        assert_eq!(got, data.slice(range.start as usize..range.end as usize));
    });
}

#[test]
fn multipart_of_a_64_mib_object_with_default_settings() {
    let Some(op) = common_s3::operator("multipart_64mib") else {
        return;
    };
    current_thread().block_on(async {
        let data = random_bytes(64 << 20, 43);
        op.write("big/object", data.clone()).await.unwrap();
        let stat = op.stat("big/object").await.unwrap();
        assert_eq!(stat.content_length(), 64 << 20);
        assert_eq!(parts_in_etag(stat.etag()), Some(8), "8 MiB parts: {stat:?}");
        assert_eq!(sha(&op.read("big/object").await.unwrap()), sha(&data));
    });
}

#[test]
fn aborted_or_dropped_multipart_leaves_no_object() {
    let Some(builder) = common_s3::builder("multipart_abort") else {
        return;
    };
    let s3 = builder
        .part_size(5 << 20)
        .multipart_threshold(5 << 20)
        .part_concurrency(3)
        .build()
        .unwrap();
    let root = s3.root().to_owned();
    let op = Operator::new(s3);
    current_thread().block_on(async {
        op.write("ab/existing", "old").await.unwrap();
        for (i, target) in ["ab/existing", "ab/new", "ab/dropped"]
            .into_iter()
            .enumerate()
        {
            let mut writer = op.writer(target).await.unwrap();
            // Two full parts uploaded, a third in the buffer.
            writer.write_all(&random_bytes(13 << 20, 44)).await.unwrap();
            writer.flush().await.unwrap();
            if i < 2 {
                writer.abort().await.unwrap();
            } else {
                drop(writer);
            }
        }
        // A dropped writer aborts its upload on the executor (an upload is never
        // an object: the server's list of uploads under way shows it).
        let uploads = format!(
            "uploads&prefix={}",
            format!("{root}ab/").replace('/', "%2F")
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (status, _, answer) = common_s3::signed("GET", "", &uploads, &[], Vec::new()).await;
            assert!(status.is_success(), "{status}: {answer:?}");
            if !String::from_utf8_lossy(&answer).contains("<Upload>") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "an upload is still under way a minute after its writers ended: {answer:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(op.read("ab/existing").await.unwrap(), "old");
        for gone in ["ab/new", "ab/dropped"] {
            assert_eq!(
                op.read(gone).await.unwrap_err().kind(),
                ErrorKind::NotFound,
                "{gone}"
            );
        }
        let listed: Vec<String> = op
            .list_recursive("ab/")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(listed, ["ab/existing"]);
    });
}

#[test]
fn listing_and_removing_more_than_a_thousand_keys() {
    let Some(op) = common_s3::operator("pagination") else {
        return;
    };
    current_thread().block_on(async {
        let names: BTreeSet<String> = (0..1_050).map(|i| format!("many/k{i:05}")).collect();
        let writes: Vec<_> = names.iter().map(|n| op.write(n, "x")).collect();
        for w in writes {
            w.await.unwrap();
        }
        op.write("many/sub/deep", "y").await.unwrap();
        let one_level = op.list("many/").await.unwrap();
        assert_eq!(one_level.len(), 1_051, "1,050 files and sub/");
        let listed: BTreeSet<String> = one_level
            .iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(listed, names);
        let mut lister = op.lister_recursive("many").await.unwrap();
        let mut streamed = 0;
        while let Some(entry) = futures::StreamExt::next(&mut lister).await {
            entry.unwrap();
            streamed += 1;
        }
        assert_eq!(streamed, 1_052, "files, sub/ and sub/deep");
        op.remove_all("many/").await.unwrap();
        assert!(op.list_recursive("many/").await.unwrap().is_empty());
        assert!(!op.exists("many/k00000").await.unwrap());
    });
}

#[test]
fn a_wrong_secret_is_permission_denied() {
    let Some(good) = common_s3::builder("wrong_secret") else {
        return;
    };
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let op = Operator::new(
        good.credentials(Credentials::new(key, "definitely-not-the-secret"))
            .build()
            .unwrap(),
    );
    current_thread().block_on(async {
        for err in [
            op.write("denied", "x").await.unwrap_err(),
            op.read("denied").await.unwrap_err(),
            op.stat("denied").await.unwrap_err(),
            op.list("").await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
            assert!(!err.is_temporary(), "{err}");
            assert!(err.context("status").is_some(), "{err}");
            assert!(!err.to_string().contains("definitely-not"), "{err}");
        }
    });
}

#[test]
fn secrets_never_show_in_debug_output() {
    let builder = S3Builder::new("b")
        .endpoint("http://127.0.0.1:1")
        .credentials(
            Credentials::new("AKIDVISIBLE", "TOPSECRET").with_session_token("TOKENSECRET"),
        );
    let shown = format!("{builder:?} {:?}", builder.clone().build().unwrap());
    assert!(shown.contains("AKIDVISIBLE"), "{shown}");
    assert!(
        !shown.contains("TOPSECRET") && !shown.contains("TOKENSECRET"),
        "{shown}"
    );
    let op = Operator::new(builder.build().unwrap());
    assert!(!format!("{op:?}").contains("TOPSECRET"));
}

/// `write_checks=false` (from the URI, as `Operator::from_uri` reads it) writes
/// keys as S3 has them: beside an object that is its ancestor, over a name keys
/// lie under, and a directory under an object; every one is stored and read
/// back. A write to a bucket that does not exist still fails with
/// `NoSuchBucket`, and SeaweedFS has not made the bucket for it; nor does a
/// checked `create_dir` make one.
#[test]
fn unchecked_writes_are_keys() {
    let Some(builder) = common_s3::builder("unchecked_writes") else {
        return;
    };
    let root = builder.clone().build().unwrap().root().to_owned();
    let uri = std::env::var("DIO_TEST_S3_URI").unwrap();
    let (bucket_uri, query) = uri.split_once('?').unwrap();
    let unchecked =
        Operator::from_uri(&format!("{bucket_uri}/{root}?{query}&write_checks=false")).unwrap();
    let checked = Operator::new(builder.build().unwrap());
    current_thread().block_on(async {
        unchecked.write("k", "file").await.unwrap();
        // Refused where writes are checked, as fs refuses them.
        let err = checked.write("k/under", "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err}");
        unchecked.write("k/under", "under").await.unwrap();
        unchecked.write("d/x", "x").await.unwrap();
        let err = checked.write("d", "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
        unchecked.write("d", "beside").await.unwrap();
        unchecked.create_dir("k/dir/").await.unwrap();
        for (path, data) in [
            ("k", "file"),
            ("k/under", "under"),
            ("d/x", "x"),
            ("d", "beside"),
        ] {
            assert_eq!(
                unchecked.read(path).await.unwrap(),
                data.as_bytes(),
                "{path}"
            );
        }
        let mut listed: Vec<String> = unchecked
            .list("")
            .await
            .unwrap()
            .iter()
            .map(|e| e.path().to_owned())
            .collect();
        listed.sort();
        assert_eq!(listed, ["d", "d/", "k", "k/"]);
    });

    let missing = format!("dio-missing-{}", std::process::id());
    let in_missing = |checks: bool| {
        let s3 = S3Builder::from_uri(&format!("s3://{missing}?{query}"))
            .unwrap()
            .write_checks(checks)
            .build()
            .unwrap();
        Operator::new(s3)
    };
    current_thread().block_on(async {
        let err = in_missing(false).write("a/k", "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
        let err = in_missing(true).create_dir("a/").await.unwrap_err();
        assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
        // Neither made the bucket: it is still missing.
        let err = in_missing(true).list("").await.unwrap_err();
        assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
    });
}

/// The root of a backend at the bucket's top is a directory as its bucket is
/// there: `create_dir` of it makes nothing (it sent a PUT of the bucket's URL,
/// CreateBucket, which SeaweedFS refuses as the bucket exists), and `exists`
/// of it in a bucket that does not exist is an error, not `true`.
#[test]
fn the_bucket_root_is_a_directory_as_its_bucket_is() {
    let Ok(uri) = std::env::var("DIO_TEST_S3_URI") else {
        assert!(common_s3::builder("bucket_root").is_none());
        return;
    };
    let (_, query) = uri.split_once('?').unwrap();
    let top = Operator::from_uri(&uri).unwrap();
    let missing = Operator::from_uri(&format!(
        "s3://dio-missing-root-{}?{query}",
        std::process::id()
    ))
    .unwrap();
    current_thread().block_on(async {
        for root in ["", "/", "a/.."] {
            top.create_dir(root).await.unwrap();
            assert!(top.exists(root).await.unwrap(), "{root:?}");
            assert!(top.stat(root).await.unwrap().is_dir(), "{root:?}");
        }
        for result in [
            missing.exists("").await,
            missing.stat("").await.map(|_| true),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
        }
        let err = missing.create_dir("").await.unwrap_err();
        assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
    });
}

#[test]
fn uris_and_builder_errors() {
    let b = S3Builder::from_uri(
        "s3://bucket/some/prefix?endpoint=http://h:1&region=eu-west-1&path_style=false",
    )
    .unwrap()
    .credentials(Credentials::new("a", "b"))
    .build()
    .unwrap();
    assert_eq!((b.bucket(), b.root()), ("bucket", "some/prefix/"));
    // The prefix is a URL's path: percent-decoded, as object_store reads it.
    let decoded = S3Builder::from_uri("s3://bucket/ware%20house/%C3%A9t%C3%A9?endpoint=http://h:1")
        .unwrap()
        .anonymous()
        .build()
        .unwrap();
    assert_eq!(decoded.root(), "ware house/\u{e9}t\u{e9}/");
    assert_eq!(
        (b.endpoint(), b.region()),
        (Some("http://h:1"), "eu-west-1")
    );
    for bad in [
        "s3:///nobucket",
        "s3://b?unknown=1",
        "s3://b?path_style=maybe",
        "s3://b?write_checks=no",
        "s3://b/../up?anonymous=true",
        // An unset variable in a template: no region, not the host `b.s3..`.
        "s3://b?region=",
        "s3://b?region=eu-west-1&region=us-east-1",
        "s3://my bucket",
        // Not UTF-8 once decoded.
        "s3://b/%FF",
        // A port the URL parser takes but that is none: the connection went to 80.
        "s3://b?endpoint=http://h:99999",
        "s3://b?endpoint=http://h:9000x",
        // A line break in the region (an env file's): a panic in the signer.
        "s3://b?endpoint=http://h:1&region=us-east-1%0A",
        "s3://b?endpoint=http://h:1&region=us/east",
    ] {
        let err = S3Builder::from_uri(bad)
            .and_then(|b| b.anonymous().build())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    let err = S3Builder::new("b")
        .endpoint("ftp://h")
        .anonymous()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    // Credentials with a control character (a line break from a file or a
    // secret), and a proxy whose port is none.
    for builder in [
        S3Builder::new("b").credentials(Credentials::new("AKID\n", "s")),
        S3Builder::new("b").credentials(Credentials::new("AKID", "s\r")),
        S3Builder::new("b").region("us-east-1\n").anonymous(),
        S3Builder::new("b")
            .proxy_url("http://proxy:312800")
            .anonymous(),
    ] {
        let err = builder.endpoint("http://h:1").build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    }
    // Credentials before the bucket are not read, and never shown.
    for uri in [
        "s3://key:TOPSECRET@bucket/x",
        "s3://key:TOPSECRET@bucket?endpoint=http://h:1",
        // A secret with a `/` (as AWS's often have), an `@` or a `?`.
        "s3://key:TOP/SECRET@bucket/x",
        "s3://key:TOP@SECRET@bucket/x",
        "s3://key:TOP?SECRET@bucket/x",
    ] {
        let err = S3Builder::from_uri(uri)
            .and_then(|b| b.anonymous().build())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{uri}: {err}");
        assert!(err.to_string().contains("credentials in the URI"), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("TOP") && !shown.contains("SECRET"),
            "{err:?}"
        );
    }
    // An `@` in a prefix is a prefix's.
    let at = S3Builder::from_uri("s3://bucket/2024-01-01T00:00:00/user@example.com/")
        .unwrap()
        .endpoint("http://h:1")
        .anonymous()
        .build()
        .unwrap();
    assert_eq!(at.root(), "2024-01-01T00:00:00/user@example.com/");
    // A value a key this parser does not take may be a secret: never shown.
    let err = S3Builder::from_uri("s3://b?secret_access_key=TOPSECRET").unwrap_err();
    assert!(!format!("{err} {err:?}").contains("TOPSECRET"), "{err:?}");
    assert!(err.to_string().contains("secret_access_key"), "{err}");
    for uri in [
        "s3://b?secret_access_key=TOPSECRET",
        "S3://b?secret_access_key=TOPSECRET",
        "s3:/b?secret_access_key=TOPSECRET",
    ] {
        let err = Operator::from_uri(uri).unwrap_err();
        assert!(
            !format!("{err} {err:?}").contains("TOPSECRET"),
            "{uri}: {err:?}"
        );
    }
    // Other servers' bucket names go through as they are (Ceph's tenant:bucket).
    let tenant = S3Builder::new("tenant:bucket")
        .endpoint("http://h:1")
        .anonymous()
        .build()
        .unwrap();
    assert_eq!(tenant.bucket(), "tenant:bucket");
    // A bucket that is not a DNS name (an older bucket's capitals or `_`) is
    // addressed by path on AWS, as the SDKs do; a DNS name by virtual host.
    let url = |bucket: &str| {
        let s3 = S3Builder::new(bucket)
            .region("us-east-1")
            .anonymous()
            .build()
            .unwrap();
        format!("{s3:?}")
    };
    assert!(
        url("Old_Bucket").contains("\"https://s3.us-east-1.amazonaws.com\""),
        "{}",
        url("Old_Bucket")
    );
    assert!(
        url("new-bucket").contains("\"https://new-bucket.s3.us-east-1.amazonaws.com\""),
        "{}",
        url("new-bucket")
    );
    let err = S3Builder::new("b")
        .region(" ")
        .anonymous()
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("region is empty"), "{err}");
}

/// The caller's runtime is dropped between requests: the next request, from a new
/// runtime and from a plain thread, still works (connections live on the executor).
#[test]
fn callers_come_and_go() {
    let Some(builder) = common_s3::builder("isolation") else {
        return;
    };
    let executor = io_executor::Builder::new().name("s3-iso").build().unwrap();
    let op = Operator::new(builder.build().unwrap()).with_executor(executor.clone());
    let data = random_bytes(3 << 20, 45);
    for round in 0..3 {
        let rt = current_thread();
        rt.block_on(async {
            op.write(&format!("iso/{round}"), data.clone())
                .await
                .unwrap();
            assert_eq!(
                sha(&op.read(&format!("iso/{round}")).await.unwrap()),
                sha(&data)
            );
        });
        drop(rt);
    }
    let op2 = op.clone();
    let from_thread = std::thread::spawn(move || {
        futures::executor::block_on(async {
            let back = op2.read_range("iso/0", 100..200).await.unwrap();
            let listed = op2.list("iso/").await.unwrap().len();
            (back, listed)
        })
    })
    .join()
    .unwrap();
    assert_eq!(from_thread.0, data.slice(100..200));
    assert_eq!(from_thread.1, 3);
    assert_eq!(op.blocking().read("iso/2").unwrap().len(), data.len());
}

/// A proxy in front of the test server that passes every request on, except that
/// once armed it loses the answer to the next request that commits a write (a
/// `PUT` of an object, a multipart upload's completion): the server handles it, and
/// the client hears nothing until it gives up.
struct LosingProxy {
    addr: std::net::SocketAddr,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl LosingProxy {
    fn start(upstream: String) -> Self {
        use http_body_util::{BodyExt as _, Full};
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use std::sync::atomic::Ordering;

        let (runtime, listener, addr) = common_s3::listening();
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
        let upstream = std::sync::Arc::new(upstream);
        let arm = std::sync::Arc::clone(&armed);
        runtime.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (client, upstream, armed) = (
                    client.clone(),
                    std::sync::Arc::clone(&upstream),
                    std::sync::Arc::clone(&arm),
                );
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (client, upstream, armed) = (
                            client.clone(),
                            std::sync::Arc::clone(&upstream),
                            armed.clone(),
                        );
                        async move {
                            let (mut parts, body) = req.into_parts();
                            let query = parts.uri.query().unwrap_or("");
                            let commits = (parts.method == hyper::Method::PUT
                                && !query.contains("partNumber="))
                                || (parts.method == hyper::Method::POST
                                    && query.starts_with("uploadId="));
                            let path = parts.uri.path_and_query().unwrap().as_str();
                            // The Host header is kept: the request is signed for it.
                            parts.uri = format!("http://{upstream}{path}").parse().unwrap();
                            let body = body.collect().await.unwrap().to_bytes();
                            let request = hyper::Request::from_parts(parts, Full::new(body));
                            let response = client.request(request).await.unwrap();
                            if commits && armed.swap(false, Ordering::SeqCst) {
                                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                            }
                            let (parts, body) = response.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            Ok::<_, std::convert::Infallible>(hyper::Response::from_parts(
                                parts,
                                Full::new(body),
                            ))
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self {
            addr,
            armed,
            _runtime: runtime,
        }
    }

    /// Loses the answer to the next write's commit.
    fn arm(&self) {
        self.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn armed(&self) -> bool {
        self.armed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A write whose commit was stored by the server but whose answer was lost is sent
/// again, and then fails its precondition (the object exists, or has changed: by
/// this very write) or, for a multipart upload, finds its upload completed. The
/// object carries the write's id (user metadata): the write is done, and holds what
/// was written. (SeaweedFS answers a completion sent again with 200, where AWS may
/// answer `NoSuchUpload`; `s3_faults` has that answer.)
#[test]
fn writes_whose_answers_were_lost_are_done() {
    let Some(builder) = common_s3::builder("lost_answers") else {
        return;
    };
    let uri = std::env::var("DIO_TEST_S3_URI").unwrap();
    let endpoint = uri
        .split("endpoint=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let upstream = endpoint.trim_start_matches("http://").to_owned();
    let proxy = LosingProxy::start(upstream);
    // Each lost answer costs a timeout; the others have all of it, on a loaded
    // machine, before they are sent again (which a write survives too).
    let op = Operator::new(
        builder
            .endpoint(format!("http://{}", proxy.addr))
            .request_timeout(std::time::Duration::from_secs(5))
            .part_size(5 << 20)
            .multipart_threshold(5 << 20)
            .build()
            .unwrap(),
    );
    current_thread().block_on(async {
        let (first, second) = (random_bytes(1000, 46), random_bytes(2000, 47));

        proxy.arm();
        op.write_with("new", first.clone())
            .if_not_exists(true)
            .await
            .unwrap();
        assert!(!proxy.armed(), "the answer was lost");
        assert_eq!(op.read("new").await.unwrap(), first);
        // Another writer's object is still refused.
        let err = op
            .write_with("new", second.clone())
            .if_not_exists(true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

        let etag = op.stat("new").await.unwrap().etag().unwrap().to_owned();
        proxy.arm();
        op.write_with("new", second.clone())
            .if_match(etag.clone())
            .await
            .unwrap();
        assert!(!proxy.armed(), "the answer was lost");
        assert_eq!(op.read("new").await.unwrap(), second);
        let err = op
            .write_with("new", first.clone())
            .if_match(etag)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");

        let big = random_bytes(6 << 20, 48);
        proxy.arm();
        op.write("multipart", big.clone()).await.unwrap();
        assert!(!proxy.armed(), "the answer was lost");
        assert_eq!(sha(&op.read("multipart").await.unwrap()), sha(&big));
    });
}

/// Behind a proxy (`proxy_url`, or `HTTPS_PROXY`), HTTPS requests go through its
/// CONNECT tunnel, TLS from end to end: here to the test server behind a TLS
/// front whose private CA the bundle names, so the server still checks every
/// request. A proxy that wants credentials gets them from the URL; one that
/// refuses is named in the error with the host, never with the password. Hosts the
/// excludes name, and plain-HTTP endpoints, are reached directly.
#[test]
fn https_requests_go_through_the_proxy_in_a_tunnel() {
    let (Some(builder), Some(server)) = (common_s3::builder("proxy"), common_s3::server_addr())
    else {
        return;
    };
    let (_tls, tls_addr, ca) = common_s3::tls_in_front_of(server);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca).unwrap();
    let https = || {
        builder
            .clone()
            .endpoint(format!("https://{tls_addr}"))
            .ca_bundle(&bundle)
    };
    let rt = current_thread();
    let target = tls_addr.to_string();

    let open = common_s3::HttpProxy::start(None, common_s3::Answer::Tunnel);
    let op = Operator::new(
        https()
            .proxy_url(format!("http://{}", open.addr))
            .proxy_excludes("")
            .build()
            .unwrap(),
    );
    rt.block_on(async {
        op.write("p/one", &b"through the tunnel"[..]).await.unwrap();
        assert_eq!(op.read("p/one").await.unwrap(), &b"through the tunnel"[..]);
        assert_eq!(op.list("p/").await.unwrap().len(), 1);
    });
    let targets = open.targets();
    assert!(!targets.is_empty());
    assert!(targets.iter().all(|t| *t == target), "{targets:?}");

    // Excluded: directly, no tunnel. A proxy of their own, which `op`'s pool cannot
    // reach: a connection it started and then did not need (the pool gave it one
    // back first) may still tunnel through `open` later.
    let unused = common_s3::HttpProxy::start(None, common_s3::Answer::Tunnel);
    let direct = Operator::new(
        https()
            .proxy_url(format!("http://{}", unused.addr))
            .proxy_excludes("localhost, 127.0.0.0/8")
            .build()
            .unwrap(),
    );
    rt.block_on(direct.stat("p/one")).unwrap();
    // Plain HTTP (the server itself): directly too.
    let plain = Operator::new(
        builder
            .clone()
            .proxy_url(format!("http://{}", unused.addr))
            .proxy_excludes("")
            .build()
            .unwrap(),
    );
    rt.block_on(plain.stat("p/one")).unwrap();
    assert!(unused.targets().is_empty(), "{:?}", unused.targets());

    // A proxy that asks for credentials: given in the URL, sent as Basic.
    let guarded = common_s3::HttpProxy::start(Some("s3cr3t"), common_s3::Answer::Tunnel);
    let through = |password: &str| {
        Operator::new(
            https()
                .proxy_url(format!("http://user:{password}@{}", guarded.addr))
                .proxy_excludes("")
                .build()
                .unwrap(),
        )
    };
    rt.block_on(through("s3cr3t").stat("p/one")).unwrap();
    // Refused credentials are no temporary failure: one CONNECT, no retries.
    let before = guarded.targets().len();
    let err = rt
        .block_on(through("WRONG%2FPASS").stat("p/one"))
        .unwrap_err();
    assert_eq!(guarded.targets().len(), before + 1, "retried");
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("WRONG"), "{text}");
    assert!(text.contains("407 Proxy Authentication Required"), "{text}");
    assert!(
        text.contains(&format!(
            "no tunnel to {target} through the proxy http://{}",
            guarded.addr
        )),
        "{text}"
    );
    let auths: Vec<_> = guarded
        .tunnels
        .lock()
        .iter()
        .map(|(_, a)| a.clone())
        .collect();
    assert_eq!(
        auths[0].as_deref(),
        Some("Basic dXNlcjpzM2NyM3Q="),
        "{auths:?}"
    );

    // A proxy that refuses the tunnel: the error says which proxy and host, and
    // what the proxy answered.
    let refusing = common_s3::HttpProxy::start(None, common_s3::Answer::Status("403 Forbidden"));
    let op = Operator::new(
        https()
            .proxy_url(format!("http://{}", refusing.addr))
            .proxy_excludes("")
            .build()
            .unwrap(),
    );
    let err = rt.block_on(op.read("p/one")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(refusing.targets().len(), 1, "retried");
    assert!(err.to_string().contains("403 Forbidden"), "{err}");

    // A proxy that cannot reach the host (502), or says nothing past the connect
    // timeout: temporary failures, tried again as the retry policy allows.
    // The connect timeout is short only where the proxy never answers: a 502
    // must not race it.
    let ms = std::time::Duration::from_millis;
    for (answer, kind, connect_timeout) in [
        (
            common_s3::Answer::Status("502 Bad Gateway"),
            ErrorKind::Unexpected,
            ms(10_000),
        ),
        (common_s3::Answer::Silent, ErrorKind::Timeout, ms(200)),
    ] {
        let proxy = common_s3::HttpProxy::start(None, answer);
        let op = Operator::new(
            https()
                .proxy_url(format!("http://{}", proxy.addr))
                .proxy_excludes("")
                .connect_timeout(connect_timeout)
                .retry(
                    storage::services::s3::RetryPolicy::default()
                        .with_max_attempts(2)
                        .with_delays(
                            std::time::Duration::from_millis(1),
                            std::time::Duration::from_millis(1),
                        ),
                )
                .build()
                .unwrap(),
        );
        let err = rt.block_on(op.stat("p/one")).unwrap_err();
        assert_eq!(err.kind(), kind, "{answer:?}: {err}");
        assert!(err.is_temporary(), "{answer:?}: {err}");
        // The proxy records a CONNECT once it has read it, which may come after
        // the client gave up on it: waited for (a guard against a hang, not a
        // measure), never more than two.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while proxy.targets().len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(ms(10));
        }
        assert_eq!(proxy.targets().len(), 2, "{answer:?}: not tried again");
    }
    assert!(
        format!("{err:?}").contains(&format!("through the proxy http://{}", refusing.addr)),
        "{err:?}"
    );
    rt.block_on(Operator::new(https().proxy_excludes("*").build().unwrap()).remove_all(""))
        .unwrap();
}

/// A proxy that cannot be reached says why (the connector's own message is only
/// "tcp connect error"), keeps the cause as its source, and is temporary.
#[test]
fn a_proxy_that_cannot_be_reached_says_why() {
    let op = Operator::new(
        S3Builder::new("b")
            .endpoint("https://127.0.0.1:9")
            .anonymous()
            .proxy_url("http://127.0.0.1:1")
            .proxy_excludes("")
            .retry(storage::services::s3::RetryPolicy::default().with_max_attempts(1))
            .build()
            .unwrap(),
    );
    let err = current_thread().block_on(op.stat("k")).unwrap_err();
    assert!(err.is_temporary(), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to the proxy") && text.contains("refused"),
        "{text}"
    );
    let mut chain = std::error::Error::source(&err);
    let mut io = false;
    while let Some(e) = chain {
        io |= e.downcast_ref::<std::io::Error>().is_some();
        chain = e.source();
    }
    assert!(io, "the connect error is kept: {err:?}");
}

/// A proxy the backend cannot use is refused by `build`, naming it without its
/// password: another scheme than `http://`, or no URL at all.
#[test]
fn a_proxy_that_cannot_be_used_is_refused() {
    for bad in [
        "socks5://user:TOPSECRET@127.0.0.1:1080",
        "https://user:TOPSECRET@127.0.0.1:3128",
        "http://",
    ] {
        let err = S3Builder::new("b")
            .endpoint("http://127.0.0.1:1")
            .anonymous()
            .proxy_url(bad)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
        assert!(!format!("{err} {err:?}").contains("TOPSECRET"), "{err:?}");
        assert!(err.to_string().contains("proxy"), "{err}");
    }
    let builder = S3Builder::new("b")
        .anonymous()
        .proxy_url("http://user:TOPSECRET@127.0.0.1:3128");
    assert!(!format!("{builder:?}").contains("TOPSECRET"));
    let s3 = builder.region("us-east-1").build().unwrap();
    assert!(!format!("{s3:?}").contains("TOPSECRET"), "{s3:?}");
}
