//! Faults a real S3 server will not produce on demand, from a small real HTTP
//! server inside the test: throttling, server errors, a connection cut midway
//! through a body, and a server that stops answering.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use storage::services::s3::{Credentials, RetryPolicy, S3Builder};
use storage::{ErrorKind, Operator};

mod common_s3;

type Body = BoxBody<Bytes, std::io::Error>;

/// What the server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    range: Option<String>,
    if_match: Option<String>,
    signed: bool,
    query: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Seen, usize) -> Response<Body> + Send + Sync;

/// A handler's answer carrying this header is never sent (see [`stalled`]).
const STALL: &str = "x-fault-stall";

/// A header on a handler's answer: the server sends it this many milliseconds
/// late.
const LATE_MS: &str = "x-fault-late-ms";

/// An answer the server holds back until the client has given up on it: the
/// request was handled, its answer lost.
fn stalled() -> Response<Body> {
    with_headers(StatusCode::OK, &[(STALL, "1")], "")
}

/// An operator over `access` on the tests' own pool, whose threads run at the
/// tests' priority: on the global pool (nice 19, as a user's default) the
/// client's work waits behind every busy thread of the tests running beside it,
/// and the timeouts these tests set (a second or two) could run out while the
/// code under test is right.
fn operator_of(access: impl storage::raw::Access) -> Operator {
    static POOL: std::sync::OnceLock<io_executor::Executor> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        io_executor::Builder::new()
            .name("s3-faults")
            .inherit_priority()
            .build()
            .unwrap()
    });
    Operator::new(access).with_executor(pool.clone())
}

/// Has `op` find its bucket (a request answered 2xx: a listing of
/// `warm-up/`), as a first request to a bucket does: from then on its writes
/// send their requests together with their checks (before, each waits for its
/// checks, so that a missing bucket is not made by a write).
fn bucket_found(op: &Operator) {
    let _ = block_on(op.stat("warm-up/"));
}

/// Whether `seen` is [`bucket_found`]'s listing.
fn warm_up(seen: &Seen) -> bool {
    seen.query.contains("prefix=warm-up")
}

/// An HTTP/1.1 server on 127.0.0.1 that answers request `n` (from 0) with
/// `handler(seen, n)`, on its own runtime thread.
struct FaultServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Each request's method and query (`PUT partNumber=1&uploadId=up-1`), as
    /// its head arrives, before its body is read.
    heads: Arc<tokio::sync::watch::Sender<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

/// How a server reads request bodies: at most `bytes_per_second`, and nothing
/// past `stop_after` bytes (it never finishes reading such a body).
#[derive(Debug, Clone, Copy)]
struct Reading {
    bytes_per_second: u64,
    stop_after: u64,
}

impl FaultServer {
    fn start(handler: impl Fn(&Seen, usize) -> Response<Body> + Send + Sync + 'static) -> Self {
        Self::start_reading(None, handler)
    }

    /// A server reading bodies as `reading` says (with a small receive buffer, so
    /// that the client sees it), or at once.
    fn start_reading(
        reading: Option<Reading>,
        handler: impl Fn(&Seen, usize) -> Response<Body> + Send + Sync + 'static,
    ) -> Self {
        let heads = Arc::new(tokio::sync::watch::Sender::new(Vec::new()));
        Self::start_noting(reading, heads, handler)
    }

    /// [`start_reading`](Self::start_reading), noting the requests' heads in
    /// `heads` (see [`heads`](Self::heads)), which `handler` may watch too.
    fn start_noting(
        reading: Option<Reading>,
        heads: Arc<tokio::sync::watch::Sender<Vec<String>>>,
        handler: impl Fn(&Seen, usize) -> Response<Body> + Send + Sync + 'static,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(async {
                let socket = tokio::net::TcpSocket::new_v4()?;
                if reading.is_some() {
                    socket.set_recv_buffer_size(64 << 10)?;
                }
                socket.bind("127.0.0.1:0".parse().unwrap())?;
                socket.listen(64)
            })
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        let arrived = Arc::clone(&heads);
        runtime.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                let arrived = Arc::clone(&arrived);
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
                    let query = req.uri().query().unwrap_or("");
                    let head = format!("{} {query}", req.method());
                    arrived.send_modify(|heads| heads.push(head));
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .map(|v| v.to_str().unwrap().to_owned())
                        };
                        let mut seen = Seen {
                            method: req.method().to_string(),
                            path: req.uri().path().to_owned(),
                            range: header("range"),
                            if_match: header("if-match"),
                            signed: header("authorization").is_some(),
                            query: req.uri().query().unwrap_or("").to_owned(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                                .collect(),
                            body: Bytes::new(),
                        };
                        seen.body = match reading {
                            None => req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default(),
                            Some(reading) => read_as(req.into_body(), reading).await,
                        };
                        let n = {
                            let mut log = log.lock();
                            log.push(seen.clone());
                            log.len() - 1
                        };
                        let response = handler(&seen, n);
                        if response.headers().contains_key(STALL) {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                        }
                        if let Some(ms) = response.headers().get(LATE_MS) {
                            let ms = ms.to_str().unwrap().parse().unwrap();
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                        }
                        Ok::<_, Infallible>(response)
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
            heads,
            _runtime: runtime,
        }
    }

    /// Waits until the head of a request `matches` (its method and query, as
    /// [`heads`](Self::heads) has them) has arrived, at most a minute.
    ///
    /// # Panics
    ///
    /// If none does within a minute.
    async fn head_arrived(&self, matches: impl Fn(&str) -> bool) {
        let mut heads = self.heads.subscribe();
        let arrived = heads.wait_for(|heads| heads.iter().any(|head| matches(head)));
        tokio::time::timeout(Duration::from_secs(60), arrived)
            .await
            .expect("no such request within a minute")
            .expect("the server is running");
    }

    fn operator(&self, attempts: u32, timeout: Duration) -> Operator {
        operator_of(self.builder(attempts, timeout).build().unwrap())
    }

    fn builder(&self, attempts: u32, timeout: Duration) -> S3Builder {
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", self.addr))
            .credentials(Credentials::new("key", "secret"))
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(attempts)
                    .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
            )
            .request_timeout(timeout)
    }

    /// [`multipart_operator`](Self::multipart_operator) with `attempts` and
    /// `timeout`.
    fn multipart_operator_with(&self, attempts: u32, timeout: Duration) -> Operator {
        operator_of(self.multipart_builder(attempts, timeout).build().unwrap())
    }

    /// One attempt, a 10 s timeout, 5 MiB parts from 5 MiB on, and writes checked
    /// or not ([`S3Builder::write_checks`]).
    fn operator_checking(&self, checked: bool) -> Operator {
        operator_of(
            self.multipart_builder(1, Duration::from_secs(10))
                .write_checks(checked)
                .build()
                .unwrap(),
        )
    }

    /// [`builder`](Self::builder) with 5 MiB parts from 5 MiB on.
    fn multipart_builder(&self, attempts: u32, timeout: Duration) -> S3Builder {
        self.builder(attempts, timeout)
            .part_size(5 << 20)
            .multipart_threshold(5 << 20)
    }

    /// An operator whose writes over 5 MiB are multipart uploads of 5 MiB parts.
    fn multipart_operator(&self) -> Operator {
        operator_of(
            S3Builder::new("bucket")
                .endpoint(format!("http://{}", self.addr))
                .credentials(Credentials::new("key", "secret"))
                .part_size(5 << 20)
                .multipart_threshold(5 << 20)
                .build()
                .unwrap(),
        )
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().clone()
    }

    /// What the server has seen once `done` says it is all there (or after a minute,
    /// to fail rather than hang): a request the client gave up on (its timeout) may
    /// not be recorded yet when the call returns, on a loaded machine where this
    /// server's thread waits for a core.
    fn seen_when(&self, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        self.seen_when_within(Duration::from_secs(60), done)
    }

    /// [`seen_when`](Self::seen_when), waiting at most `wait`: for a request that
    /// may rightly never come.
    fn seen_when_within(&self, wait: Duration, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let seen = self.seen();
            if done(&seen) || std::time::Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reads `body` as `reading` says; past its `stop_after` bytes, forever.
async fn read_as(mut body: Incoming, reading: Reading) -> Bytes {
    let mut read = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read.extend_from_slice(&data);
        let pause = data.len() as f64 / reading.bytes_per_second as f64;
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        if read.len() as u64 >= reading.stop_after {
            std::future::pending::<()>().await;
        }
    }
    read.into()
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()).map_err(|e| match e {}).boxed())
        .unwrap()
}

fn s3_error(status: StatusCode, code: &str, request_id: &str) -> Response<Body> {
    full(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>injected {code}</Message><RequestId>{request_id}</RequestId></Error>"
        ),
    )
}

/// A response that promises `content-length` bytes, sends `sent`, then breaks the
/// connection.
fn cut(status: StatusCode, headers: &[(&str, String)], sent: Bytes) -> Response<Body> {
    // The break comes a moment later, so that what was sent reaches the client.
    let frames = futures_util::stream::once(async { Ok(Frame::data(sent)) }).chain(
        futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::other("cut"))
        }),
    );
    respond(status, headers, BodyExt::boxed(StreamBody::new(frames)))
}

fn object(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn slow_down_twice_then_success_is_retried() {
    let data = object(10_000);
    let body = data.clone();
    let server = FaultServer::start(move |_, n| match n {
        0 | 1 => s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "req-slow"),
        _ => full(StatusCode::OK, body.clone()),
    });
    let op = server.operator(4, Duration::from_secs(10));
    assert_eq!(block_on(op.read("k")).unwrap(), data);
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.signed && s.method == "GET" && s.path == "/bucket/k")
    );
}

/// A server that says when to come back (`Retry-After`, in seconds or as an HTTP
/// date) is not asked again sooner, up to the policy's longest pause: the pause
/// chosen, as the retry logs it, is the one asked for (or that longest one).
#[test]
fn a_slow_down_with_retry_after_waits_as_asked() {
    use aws_smithy_types::date_time::{DateTime, Format};
    fn in_a_minute() -> String {
        DateTime::from(SystemTime::now() + Duration::from_secs(60))
            .fmt(Format::HttpDate)
            .unwrap()
    }
    // The `Retry-After` value, and the pause chosen for it.
    type Asked = fn() -> String;
    let cases: [(Asked, &str); 3] = [
        (|| "1".to_owned(), "1s"),
        // Past the policy's longest pause (3 s): that one, not a minute or 28 hours.
        (in_a_minute, "3s"),
        (|| "100000".to_owned(), "3s"),
    ];
    let logs = logs();
    for (i, (retry_after, pause)) in cases.into_iter().enumerate() {
        let server = FaultServer::start(move |_, n| {
            if n == 0 {
                let mut refused = s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "rq-1");
                refused
                    .headers_mut()
                    .insert("retry-after", retry_after().parse().unwrap());
                refused
            } else {
                full(StatusCode::OK, "ok")
            }
        });
        let op = operator_of(
            server
                .builder(2, Duration::from_secs(10))
                .retry(
                    RetryPolicy::default()
                        .with_max_attempts(2)
                        .with_delays(Duration::from_millis(1), Duration::from_secs(3)),
                )
                .build()
                .unwrap(),
        );
        let key = format!("retry-after-{i}");
        assert_eq!(block_on(op.read(&key)).unwrap(), "ok");
        assert_eq!(server.seen().len(), 2);
        let logged = String::from_utf8_lossy(&logs.0.lock()).into_owned();
        let retry = logged
            .lines()
            .find(|l| l.contains("retrying") && l.contains(&format!("key={key} ")))
            .unwrap_or_else(|| panic!("no retry of {key} logged"));
        assert!(retry.contains(&format!(" delay={pause} ")), "{retry}");
    }
}

#[test]
fn slow_down_beyond_the_attempts_is_rate_limited() {
    let server =
        FaultServer::start(|_, _| s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "rq-9"));
    let err = block_on(server.operator(2, Duration::from_secs(10)).stat("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert!(err.is_temporary());
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn internal_error_forever_fails_after_the_configured_attempts() {
    let server = FaultServer::start(|_, n| {
        s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &format!("rid-{n}"),
        )
    });
    let op = server.operator(3, Duration::from_secs(10));
    let err = block_on(op.read("dir/k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("attempts"), Some("3"), "{err}");
    assert_eq!(err.context("status"), Some("500"), "{err}");
    assert_eq!(err.context("code"), Some("InternalError"), "{err}");
    assert_eq!(
        err.context("request_id"),
        Some("rid-2"),
        "the last attempt's: {err}"
    );
    assert_eq!((err.operation(), err.path()), ("read", "dir/k"));
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn a_missing_key_or_range_names_the_request_that_found_it() {
    // The answers AWS support asks about carry their request id: a GET's 404 for a
    // key and its 416 for a range past the end. (A `stat`'s `NotFound` comes from a
    // HEAD and a listing together, no one answer: it has none.)
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "GET" if seen.query.contains("list-type") => empty_listing(),
        "GET" if seen.range.as_deref() == Some("bytes=100-199") => with_headers(
            StatusCode::RANGE_NOT_SATISFIABLE,
            &[
                ("content-range", "bytes */10"),
                ("x-amz-request-id", "rid-416"),
            ],
            "<Error><Code>InvalidRange</Code><RequestId>rid-416</RequestId></Error>",
        ),
        "GET" if seen.path == "/bucket/dir/there" => with_headers(
            StatusCode::OK,
            &[("content-length", "10"), ("etag", "\"e\"")],
            "0123456789",
        ),
        "GET" => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "rid-get"),
        "HEAD" if seen.path == "/bucket/dir/there" => with_headers(
            StatusCode::OK,
            &[("content-length", "10"), ("etag", "\"e\"")],
            "",
        ),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(3, Duration::from_secs(10));
    let err = block_on(op.read("dir/k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.context("request_id"), Some("rid-get"), "{err}");
    assert_eq!(err.context("status"), Some("404"), "{err}");
    assert_eq!(err.context("code"), Some("NoSuchKey"), "{err}");
    assert_eq!((err.operation(), err.path()), ("read", "dir/k"));

    let err = block_on(op.reader("dir/k")).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.context("request_id"), Some("rid-get"), "{err}");

    let read = op.read_with("dir/there").range(100..200);
    let err = block_on(std::future::IntoFuture::into_future(read)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{err}");
    assert_eq!(err.context("request_id"), Some("rid-416"), "{err}");
    assert_eq!(err.context("status"), Some("416"), "{err}");

    // A reader opened there: the same refusal, in the reader's range's terms.
    let open = op.reader_with("dir/there").range(100..200);
    let err = block_on(std::future::IntoFuture::into_future(open))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{err}");
    assert_eq!(err.context("request_id"), Some("rid-416"), "{err}");
    assert_eq!(err.context("range"), Some("100..200"), "{err}");
    assert_eq!((err.operation(), err.path()), ("reader", "dir/there"));

    // Ranges read as one merged read: the refusal names the range asked for and
    // keeps the request's own context.
    let err = block_on(op.read_ranges("dir/there", vec![100..150, 150..200])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RangeNotSatisfiable, "{err}");
    assert_eq!(err.context("range"), Some("100..150"), "{err}");
    assert_eq!(err.context("request_id"), Some("rid-416"), "{err}");
}

#[test]
fn access_denied_is_not_retried() {
    let server = FaultServer::start(|_, _| s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"));
    let err = block_on(server.operator(5, Duration::from_secs(10)).write("k", "x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(!err.is_temporary());
    assert_eq!(err.context("stored"), None, "refused at once: {err}");
    // The write's check and its PUT go out together; the PUT waits for the check
    // at its last byte, and is called off.
    let seen = server.seen_when_within(Duration::from_secs(5), |seen| {
        seen.iter().any(|s| s.method == "PUT")
    });
    let mut asked: Vec<_> = seen
        .iter()
        .map(|s| (&s.method, &s.path, &s.query))
        .collect();
    asked.sort();
    asked.dedup();
    assert_eq!(
        asked.len(),
        seen.len(),
        "each sent once, never retried: {seen:?}"
    );
    assert!(
        seen.iter().all(|s| s.method != "PUT" || s.body.is_empty()),
        "the PUT never got its body: {seen:?}"
    );
}

/// A write without a condition (so without an id to look for) whose every
/// attempt was stored but never answered may be stored: its error says
/// `stored` = `unknown`, where it said nothing, as if the target kept its old
/// content. The same for a copy.
#[test]
fn an_unconditional_write_or_copy_whose_answers_were_lost_may_be_stored() {
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "PUT" => stalled(),
        "GET" => empty_listing(),
        "HEAD" if seen.path == "/bucket/src" => with_headers(
            StatusCode::OK,
            &[("content-length", "11"), ("etag", "\"s\"")],
            "",
        ),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    // Three attempts: a stalled check's first attempt is sent again.
    let op = server.operator(3, Duration::from_secs(1));
    let err = block_on(op.write("k", HELLO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
    let whole = server.seen_when(|seen| seen.iter().any(|s| s.body == HELLO.as_bytes()));
    assert!(
        whole
            .iter()
            .any(|s| s.method == "PUT" && s.body == HELLO.as_bytes()),
        "the server has the body"
    );
    let err = block_on(op.copy("src", "dst")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
}

/// A write to a bucket not found yet waits for its checks before it sends its
/// request: a bucket that does not exist fails it with `NoSuchBucket`, and no
/// `PUT` or CreateMultipartUpload goes out, where they went out with the checks
/// (SeaweedFS makes a missing bucket for them: the checks then found it, and a
/// write to a misspelt bucket succeeded). `create_dir`, whose checks are `HEAD`s
/// that cannot tell a missing bucket from a missing key, lists the bucket first.
///
/// Unchecked writes ([`S3Builder::write_checks`]) keep this one check.
#[test]
fn a_write_to_a_bucket_not_found_yet_sends_nothing_before_its_checks() {
    for checked in [true, false] {
        let server = FaultServer::start(|seen, _| match seen.method.as_str() {
            "GET" => s3_error(StatusCode::NOT_FOUND, "NoSuchBucket", "r"),
            // A HEAD's 404 has no body to name the bucket.
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""),
        });
        let op = server.operator_checking(checked);
        for data in [Bytes::from_static(HELLO.as_bytes()), object(6 << 20)] {
            let err = block_on(op.write("k", data)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "checked {checked}: {err}");
            assert!(err.to_string().contains("does not exist"), "{err}");
        }
        let err = block_on(op.create_dir("a/b/")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "checked {checked}: {err}");
        // Nothing else may rightly come: wait a little for it all the same.
        let asks = |s: &Seen| s.method == "GET" || s.method == "HEAD";
        let seen =
            server.seen_when_within(Duration::from_secs(2), |seen| seen.iter().any(|s| !asks(s)));
        assert!(
            seen.iter().all(asks),
            "checked {checked}: {:?}",
            methods_and_queries(&server)
        );
    }
}

/// Unchecked writes ([`S3Builder::write_checks`]`(false)`) send their own
/// requests and nothing else once the bucket has answered: no `HEAD` of an
/// ancestor, no listing of the path as a directory, for a `PUT`, a conditional
/// one, a multipart upload, a directory marker, a writer, and the targets of a
/// copy and a rename. Checked, the same writes send both.
#[test]
fn unchecked_writes_send_only_their_own_requests() {
    let copied = || {
        with_headers(
            StatusCode::OK,
            &[],
            "<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>",
        )
    };
    for checked in [false, true] {
        let server = taking_uploads(move |seen, _| match seen.method.as_str() {
            "PUT" if seen.header("x-amz-copy-source").is_some() => Some(copied()),
            "PUT" if seen.query.is_empty() => {
                Some(with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""))
            }
            // The source of the copies.
            "HEAD" if seen.path == "/bucket/a" => Some(with_headers(
                StatusCode::OK,
                &[("content-length", "5"), ("etag", "\"e\"")],
                "",
            )),
            _ => None,
        });
        let op = server.operator_checking(checked);
        // The first write finds the bucket (unchecked: one listing of one key).
        block_on(op.write("first", HELLO)).unwrap();
        let first = server.seen().len();
        block_on(async {
            op.write("x/y/c", HELLO).await.unwrap();
            op.write_with("x/y/new", HELLO)
                .if_not_exists(true)
                .await
                .unwrap();
            op.write("x/big", object(6 << 20)).await.unwrap();
            op.create_dir("x/d/e/").await.unwrap();
            let mut writer = op.writer("x/y/written").await.unwrap();
            writer.write_bytes(object(11 << 20)).await.unwrap();
            writer.close().await.unwrap();
            op.copy("a", "x/y/copied").await.unwrap();
            op.rename("a", "x/y/renamed").await.unwrap();
        });
        let seen = server.seen();
        let checks: Vec<_> = seen[first..]
            .iter()
            .filter(|s| s.method == "GET" || (s.method == "HEAD" && s.path != "/bucket/a"))
            .map(|s| (s.method.as_str(), s.path.as_str(), s.query.as_str()))
            .collect();
        if checked {
            for ancestor in ["/bucket/x", "/bucket/x/y", "/bucket/x/d"] {
                assert!(checks.iter().any(|c| c.1 == ancestor), "{checks:?}");
            }
            assert!(checks.iter().any(|c| c.0 == "GET"), "{checks:?}");
        } else {
            assert_eq!(first, 2, "{:?}", methods_and_queries(&server));
            assert_eq!(
                (seen[0].method.as_str(), seen[1].method.as_str()),
                ("GET", "PUT")
            );
            assert!(seen[0].query.contains("max-keys=1"), "{:?}", seen[0]);
            assert_eq!(checks, [], "{:?}", methods_and_queries(&server));
        }
    }
}

/// The `start-after` a listing's query asked for, decoded.
fn start_after(query: &str) -> String {
    let after = query
        .split('&')
        .find_map(|p| p.strip_prefix("start-after="))
        .expect("a start-after");
    percent_encoding::percent_decode_str(after)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// S3 keys are at most 1,024 bytes, the root's included: a path whose key is
/// longer is refused by every operation with `InvalidInput`, saying so, before any
/// request (the server would refuse a write with `KeyTooLongError`, and answer a
/// read with a bare 400). A key of exactly 1,024 bytes is sent; a root that leaves
/// no room for a key is refused when the backend is built.
#[test]
fn keys_longer_than_s3_takes_are_refused_before_any_request() {
    let server = taking_uploads(
        |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
            ("PUT", "") => Some(with_headers(StatusCode::OK, &[("etag", "\"e\"")], "")),
            ("POST", "delete") => Some(with_headers(
                StatusCode::OK,
                &[],
                "<DeleteResult></DeleteResult>",
            )),
            _ => None,
        },
    );
    let op = operator_of(
        server
            .builder(1, Duration::from_secs(10))
            .root("pre")
            .build()
            .unwrap(),
    );
    // "pre/" and the path: 1,024 bytes, and one more.
    let fits = format!("d/{}", "f".repeat(1018));
    let long = format!("d/{}", "f".repeat(1019));
    let long_dir = format!("d/{}/", "f".repeat(1018));
    block_on(async {
        op.write(&fits, HELLO).await.unwrap();
        let before = server.seen().len();
        let results = [
            op.write(&long, HELLO).await.map(drop),
            op.write(&long, object(6 << 20)).await.map(drop),
            op.stat(&long).await.map(drop),
            op.exists(&long).await.map(drop),
            op.read(&long).await.map(drop),
            op.read_range(&long, 0..1).await.map(drop),
            op.read_ranges(&long, vec![0..1, 2..3]).await.map(drop),
            op.reader(&long).await.map(drop),
            op.writer(&long).await.map(drop),
            op.delete(&long).await,
            op.create_dir(&long_dir).await,
            op.list(&long_dir).await.map(drop),
            op.remove_all(&long_dir).await,
            op.copy(&fits, &long).await,
            op.rename(&fits, &long).await,
            op.copy(&long, &fits).await,
            op.rename(&long, &fits).await,
        ];
        for (i, result) in results.into_iter().enumerate() {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{i}: {err}");
            assert!(
                err.to_string()
                    .contains("1025 bytes long, more than the 1024 S3 takes"),
                "{i}: {err}"
            );
            let path = if i == 10 || i == 11 || i == 12 {
                &long_dir
            } else {
                &long
            };
            assert_eq!(err.path(), path.as_str(), "{i}: the path at fault");
        }
        assert_eq!(
            server.seen().len(),
            before,
            "requests for keys S3 cannot hold: {:?}",
            methods_and_queries(&server)
        );
        // A key of 1,024 bytes is looked at (a HEAD), but not as a directory: no
        // key starts with its 1,025 bytes and a `/`.
        op.stat(&fits).await.unwrap_err();
        // A listing asked to start after a path whose key S3 could not hold starts
        // after its first 1,024 bytes, which lists the same keys.
        let mut lister = op
            .lister_with("d/")
            .start_after(long.clone())
            .await
            .unwrap();
        assert!(lister.next_entry().await.unwrap().is_none());
        let asked: Vec<_> = server.seen()[before..]
            .iter()
            .map(|s| (s.method.clone(), s.query.clone()))
            .collect();
        assert_eq!(asked[0].0, "HEAD", "{asked:?}");
        assert!(
            asked
                .iter()
                .all(|(_, q)| !q.contains(&format!("{}%2F", "f".repeat(1018)))),
            "a listing of a directory no key can be below: {asked:?}"
        );
        let listed = asked
            .iter()
            .find(|(_, q)| q.contains("start-after"))
            .unwrap();
        assert_eq!(
            start_after(&listed.1),
            format!("pre/{}", &long[..1020]),
            "{asked:?}"
        );
        // Cut before a character that byte 1,024 falls inside.
        let split = format!("d/{}\u{e9}g", "f".repeat(1017));
        let seen = server.seen().len();
        let mut lister = op.lister_with("d/").start_after(split).await.unwrap();
        assert!(lister.next_entry().await.unwrap().is_none());
        assert_eq!(
            start_after(&server.seen()[seen].query),
            format!("pre/d/{}", "f".repeat(1017)),
        );
        // One refused path of a batch fails alone; the others are deleted.
        let results = op
            .delete_many([long.as_str(), fits.as_str()])
            .await
            .unwrap();
        assert_eq!(
            results[0].as_ref().unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        results[1].as_ref().unwrap();
    });
    let deletes: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "POST" && s.query == "delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{:?}", methods_and_queries(&server));
    let body = String::from_utf8_lossy(&deletes[0].body).into_owned();
    assert!(body.contains(&format!("pre/{fits}<")), "{body}");
    assert!(!body.contains(&long), "{body}");

    let err = server
        .builder(1, Duration::from_secs(10))
        .root("r".repeat(1023))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("1024 bytes long"), "{err}");
    server
        .builder(1, Duration::from_secs(10))
        .root("r".repeat(1022))
        .build()
        .unwrap();
}

/// A write-only identity may not list the bucket: checked writes are refused
/// (their listing is), unchecked ones take the refusal of their one listing
/// (`AccessDenied`) as the bucket being there (S3 says `NoSuchBucket` to anyone
/// when it is not), and list no more. The first writes, started together,
/// wait for one listing.
#[test]
fn unchecked_writes_need_no_right_to_list() {
    let write_only = || {
        FaultServer::start(|seen, _| match seen.method.as_str() {
            "GET" => s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"),
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""),
        })
    };
    let server = write_only();
    let checked = server.operator(1, Duration::from_secs(10));
    let err = block_on(checked.write("dir/k", HELLO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");

    let server = write_only();
    let unchecked = server.operator_checking(false);
    block_on(async {
        let writes = (0..8).map(|i| unchecked.write(&format!("dir/{i}"), HELLO));
        for written in futures::future::join_all(writes).await {
            written.unwrap();
        }
        unchecked.write("m", HELLO).await.unwrap();
    });
    let seen = server.seen();
    let lists = seen.iter().filter(|s| s.method == "GET").count();
    let puts = seen.iter().filter(|s| s.method == "PUT").count();
    assert_eq!(
        (lists, puts, seen.len()),
        (1, 9, 10),
        "{:?}",
        methods_and_queries(&server)
    );
    assert_eq!(seen[0].method, "GET");
}

/// The first writes of a backend wait for one listing of the bucket: when it
/// fails, those that waited for it all fail with its error, at once, where each
/// would have sent its own listing after the one before had failed (a server
/// that does not answer made the last of 128 writes wait 128 timeouts). The
/// listing is answered only once all eight writes are running (their pool's
/// own count), so every one of them waited for it. A later write lists again.
#[test]
fn writes_that_waited_for_a_failed_bucket_listing_fail_with_it() {
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = Arc::clone(&release);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "GET" => {
            // Blocks the server's thread: nothing else is asked of it meanwhile.
            while !held.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "r")
        }
        _ => with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""),
    });
    let pool = io_executor::Builder::new()
        .name("s3-faults-listing")
        .inherit_priority()
        .build()
        .unwrap();
    let op = Operator::new(
        server
            .builder(1, Duration::from_secs(60))
            .write_checks(false)
            .build()
            .unwrap(),
    )
    .with_executor(pool.clone());
    let writing = {
        let op = op.clone();
        std::thread::spawn(move || {
            block_on(futures::future::join_all(
                (0..8).map(|i| op.write(&format!("k{i}"), HELLO)),
            ))
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pool.metrics().running < 8 {
        assert!(std::time::Instant::now() < deadline, "{:?}", pool.metrics());
        std::thread::sleep(Duration::from_millis(5));
    }
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    for written in writing.join().unwrap() {
        let err = written.unwrap_err();
        assert_eq!(err.context("code"), Some("InternalError"), "{err}");
    }
    let methods: Vec<_> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET"]);
    let err = block_on(op.write("later", HELLO)).unwrap_err();
    assert_eq!(err.context("code"), Some("InternalError"), "{err}");
    let methods: Vec<_> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET", "GET"]);
    pool.blocking_join();
}

/// Only a refusal of the listing by the server (`AccessDenied`) finds the
/// bucket: credentials the server does not know fail the write, and the next
/// write lists the bucket again (a misspelt bucket is still found missing
/// then, not made by its `PUT`).
#[test]
fn an_unchecked_write_refused_for_its_credentials_finds_no_bucket() {
    let lists = std::sync::atomic::AtomicUsize::new(0);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "GET" if lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
            s3_error(StatusCode::FORBIDDEN, "InvalidAccessKeyId", "r1")
        }
        "GET" => s3_error(StatusCode::NOT_FOUND, "NoSuchBucket", "r2"),
        _ => with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""),
    });
    let op = server.operator_checking(false);
    let err = block_on(op.write("k", HELLO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(err.context("code"), Some("InvalidAccessKeyId"), "{err}");
    let err = block_on(op.write("k", HELLO)).unwrap_err();
    assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
    let methods: Vec<_> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET", "GET"]);
}

/// Answers that settle an unconditional write say nothing of storing it: a
/// refusal and throttling are answers to attempts that stored nothing, where a
/// 500 may come after the server stored it (`stored` = `unknown`); and a write
/// whose credentials could not be loaded never went out (`sent` = `no`).
#[test]
fn an_unconditional_write_refused_throttled_or_unsigned_is_not_said_maybe_stored() {
    let cases = [
        (StatusCode::SERVICE_UNAVAILABLE, "SlowDown", None),
        (StatusCode::FORBIDDEN, "AccessDenied", None),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            Some("unknown"),
        ),
    ];
    for (status, code, stored) in cases {
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "PUT" => s3_error(status, code, "r"),
            "GET" => empty_listing(),
            _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
        });
        let op = server.operator(2, Duration::from_secs(10));
        let err = block_on(op.write("k", HELLO)).unwrap_err();
        assert_eq!(err.context("stored"), stored, "{code}: {err}");
    }
    // A 500 first (the server may have stored it), throttling after: what the
    // first may have stored, the later answers do not undo.
    let puts = std::sync::atomic::AtomicUsize::new(0);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "PUT" if puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
            s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "r1")
        }
        "PUT" => s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "r2"),
        "GET" => empty_listing(),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(3, Duration::from_secs(10));
    let err = block_on(op.write("k", HELLO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
    let server = FaultServer::start(|_, _| full(StatusCode::OK, ""));
    let (_go, down) = tokio::sync::watch::channel(true);
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials_provider(FailingWhenLetGo {
                asked: Arc::default(),
                go: down,
            })
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(2)
                    .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
            )
            .build()
            .unwrap(),
    );
    let err = block_on(op.write("k", HELLO)).unwrap_err();
    assert_eq!(err.context("stored"), None, "{err}");
    assert_eq!(err.context("sent"), Some("no"), "{err}");
    assert!(server.seen().is_empty(), "nothing was sent unsigned");
}

/// A raw HTTP/1.1 server for answers a hyper server cannot give: each connection,
/// in a thread of its own, has its request head read and handed to `answer` with
/// the stream (the body, if any, is left unread); the connection closes when
/// `answer` returns. It serves until the test ends.
fn raw_http_server(answer: fn(&[u8], &mut std::net::TcpStream)) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0_u8; 1];
                while !head.ends_with(b"\r\n\r\n")
                    && std::io::Read::read(&mut stream, &mut byte).unwrap_or(0) == 1
                {
                    head.push(byte[0]);
                }
                answer(&head, &mut stream);
            });
        }
    });
    addr
}

/// A `PUT` held at its last byte for its checks whose only attempt fails (its
/// connection closed under it) never had its body whole: nothing was stored.
/// Its error says so (`body`), says nothing of storing (it said `stored` =
/// `unknown`), and a conditional write does not look for itself with a `HEAD`
/// (it did). The checks' listing is never answered: the write ends with its
/// `PUT`, whenever that fails.
#[test]
fn a_held_put_whose_only_attempt_fails_was_not_stored() {
    use std::io::{Read as _, Write as _};
    use std::sync::atomic::{AtomicUsize, Ordering};
    static HEADS: AtomicUsize = AtomicUsize::new(0);
    let addr = raw_http_server(|head, stream| {
        if head.starts_with(b"PUT ") {
            // The PUT's connection closed under it, its body never whole.
            return;
        }
        let warm_up = head.windows(14).any(|w| w == b"prefix=warm-up");
        if head.starts_with(b"GET ") && !warm_up {
            // Held until the client lets the listing go.
            let mut rest = [0_u8; 64];
            while stream.read(&mut rest).is_ok_and(|n| n > 0) {}
            return;
        }
        if head.starts_with(b"HEAD ") {
            HEADS.fetch_add(1, Ordering::SeqCst);
        }
        let (status, body) = if warm_up {
            ("200 OK", "<ListBucketResult></ListBucketResult>")
        } else {
            ("404 Not Found", "")
        };
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{addr}"))
            .credentials(Credentials::new("key", "secret"))
            .retry(RetryPolicy::default().with_max_attempts(1))
            .build()
            .unwrap(),
    );
    bucket_found(&op);
    let heads = HEADS.load(Ordering::SeqCst);
    // Some of the body, or none, was taken before the connection closed.
    let short = |err: &storage::Error| {
        err.context("body")
            .is_some_and(|body| body.ends_with(&format!(" of {} bytes sent", HELLO.len())))
    };
    let err = block_on(op.write("k", HELLO)).unwrap_err();
    assert_eq!(err.context("stored"), None, "{err}");
    assert!(short(&err), "{err}");
    let write = op.write_with("k", HELLO).if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
    assert_eq!(err.context("stored"), None, "{err}");
    assert!(short(&err), "{err}");
    assert_eq!(
        HEADS.load(Ordering::SeqCst),
        heads,
        "no HEAD looked for the write"
    );
}

/// A write whose checks find a directory in its name goes out with them, and is
/// called off one byte short: the server never gets the whole body, so it never
/// stores it. (The listing answers once the PUT sent with it has reached the
/// server.)
#[test]
fn a_write_its_checks_refuse_is_never_finished() {
    let heads = Arc::new(tokio::sync::watch::Sender::new(Vec::<String>::new()));
    let watched = Arc::clone(&heads);
    let server =
        FaultServer::start_noting(None, heads, move |seen, _| match seen.method.as_str() {
            "GET" if warm_up(seen) => empty_listing(),
            "GET" => {
                let mut heads = watched.subscribe();
                let its_put = async move {
                    // As many PUTs as listings (warm-up's aside): this write's PUT.
                    let count = |heads: &[String], method: &str| {
                        heads
                            .iter()
                            .filter(|h| h.starts_with(method) && !h.contains("prefix=warm-up"))
                            .count()
                    };
                    let put = heads.wait_for(|heads| count(heads, "PUT ") >= count(heads, "GET "));
                    drop(put.await);
                };
                answered_after(
                    StatusCode::OK,
                    its_put,
                    "<ListBucketResult><Contents><Key>d/x</Key><Size>1</Size></Contents>\
                 </ListBucketResult>"
                        .to_owned(),
                )
            }
            "PUT" => with_headers(StatusCode::OK, &[("etag", "\"stored\"")], ""),
            _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
        });
    let op = server.operator(1, Duration::from_secs(10));
    bucket_found(&op);
    for data in [object(1 << 20), Bytes::from_static(b"x")] {
        let err = block_on(op.write("d", data.clone())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
        let this_put = |s: &Seen| {
            s.method == "PUT" && s.header("content-length") == Some(&data.len().to_string())
        };
        // The PUT is logged once the server sees its connection dropped.
        let seen = server.seen_when(|seen| seen.iter().any(this_put));
        let put = seen
            .iter()
            .find(|s| this_put(s))
            .expect("the PUT went out with its checks");
        assert!(
            put.body.len() < data.len(),
            "the server got the whole body of a refused write"
        );
    }
}

/// `xml`, its body sent after `delay`.
fn slowly(delay: Duration, xml: String) -> Response<Body> {
    slowly_with(StatusCode::OK, delay, xml)
}

/// An answer of `status` whose body, `xml`, is sent after `delay`.
fn slowly_with(status: StatusCode, delay: Duration, xml: String) -> Response<Body> {
    answered_after(status, tokio::time::sleep(delay), xml)
}

/// An answer of `status` whose body, `xml`, is sent once `ready` ends (its head
/// at once).
fn answered_after(
    status: StatusCode,
    ready: impl Future<Output = ()> + Send + Sync + 'static,
    xml: String,
) -> Response<Body> {
    let len = xml.len();
    let frames = futures_util::stream::once(async move {
        ready.await;
        Ok(Frame::data(Bytes::from(xml)))
    });
    Response::builder()
        .status(status)
        .header("content-length", len.to_string())
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .unwrap()
}

/// Listing page `n` (from 0, its token `t<n>`) answered after `delay`, saying
/// another follows unless it is page `last`.
fn slow_listing_page(delay: Duration, n: usize, last: usize) -> Response<Body> {
    let xml = if n == last {
        "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>".to_owned()
    } else {
        format!(
            "<ListBucketResult><IsTruncated>true</IsTruncated>\
             <NextContinuationToken>t{}</NextContinuationToken></ListBucketResult>",
            n + 1
        )
    };
    slowly(delay, xml)
}

/// Checks that take longer than the request timeout (25 listing pages, each
/// answered well within it): the PUT that waits for them at its last byte is
/// not timed out meanwhile, and with one attempt the write is stored.
#[test]
fn a_write_waits_for_checks_longer_than_the_request_timeout() {
    // 6.25 s of checks against a 5 s timeout, each page 4.75 s within it: a
    // loaded machine would have to stall one page for that long to time it out.
    const LAST: usize = 24;
    let page = Duration::from_millis(250);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "GET" if warm_up(seen) => empty_listing(),
        "GET" => {
            // The longest token that matches (`t12` also starts with `t1`).
            let n = (1..=LAST)
                .rfind(|n| seen.query.contains(&format!("continuation-token=t{n}")))
                .unwrap_or(0);
            slow_listing_page(page, n, LAST)
        }
        "PUT" => with_headers(StatusCode::OK, &[("etag", "\"stored\"")], ""),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(1, Duration::from_secs(5));
    bucket_found(&op);
    let data = object(1 << 20);
    let meta = block_on(op.write("dir/k", data.clone())).unwrap();
    assert_eq!(meta.etag(), Some("\"stored\""));
    let seen = server.seen();
    let lists = seen
        .iter()
        .filter(|s| s.method == "GET" && !warm_up(s))
        .count();
    assert_eq!(lists, LAST + 1, "every listing page was asked for");
    let puts: Vec<_> = seen.iter().filter(|s| s.method == "PUT").collect();
    assert_eq!(puts.len(), 1);
    assert!(puts[0].body == data);
}

/// A check that has to be sent again (its first listing fails, late) calls off
/// the PUT waiting for it, which is sent once the checks pass: the server gets
/// one whole body, never two.
#[test]
fn a_write_whose_check_is_sent_again_puts_after_it() {
    let failed = std::sync::atomic::AtomicBool::new(false);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "GET" if !warm_up(seen) && !failed.swap(true, std::sync::atomic::Ordering::SeqCst) => {
            slowly_with(
                StatusCode::INTERNAL_SERVER_ERROR,
                Duration::from_millis(300),
                "<Error><Code>InternalError</Code><RequestId>r</RequestId></Error>".to_owned(),
            )
        }
        "GET" => empty_listing(),
        "PUT" => with_headers(StatusCode::OK, &[("etag", "\"stored\"")], ""),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(3, Duration::from_secs(10));
    bucket_found(&op);
    let data = object(1 << 20);
    let meta = block_on(op.write("k", data.clone())).unwrap();
    assert_eq!(meta.etag(), Some("\"stored\""));
    // The first PUT is logged once the server sees it called off (if it got as
    // far as the server).
    let seen = server.seen_when_within(Duration::from_secs(5), |seen| {
        seen.iter().filter(|s| s.method == "PUT").count() >= 2
    });
    let whole: Vec<_> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.method == "PUT" && s.body == data)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(whole.len(), 1, "{:?}", methods_and_queries(&server));
    let listed = seen
        .iter()
        .rposition(|s| s.method == "GET")
        .expect("listed");
    assert!(
        listed < whole[0],
        "the PUT was stored before its checks passed: {:?}",
        methods_and_queries(&server)
    );
}

/// Serves `data` as an object, honouring `Range: bytes=a-b`, with ETag `"v1"`;
/// response 0 is cut after `cut_at` bytes.
fn serving_with_one_cut(data: Bytes, cut_at: usize) -> FaultServer {
    FaultServer::start(move |seen, n| {
        let (start, end) = asked(seen, data.len());
        let status = if seen.range.is_some() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        };
        let mut headers = span_headers(start, end, data.len());
        headers.push(("etag", "\"v1\"".to_owned()));
        if n == 0 {
            return cut(
                status,
                &headers,
                data.slice(start..start.saturating_add(cut_at).min(end)),
            );
        }
        answer(status, &headers, data.slice(start..end))
    })
}

/// The bytes `start..end` of an object of `len` bytes that a request's `Range`
/// asks for (all of them without one; an open end is the object's).
fn asked(seen: &Seen, len: usize) -> (usize, usize) {
    let Some(range) = seen.range.as_deref() else {
        return (0, len);
    };
    let (a, b) = range.trim_start_matches("bytes=").split_once('-').unwrap();
    let last = b.parse::<usize>().map_or(len - 1, |b| b.min(len - 1));
    (a.parse().unwrap(), last + 1)
}

/// The headers of an answer with bytes `start..end` of an object of `len` bytes.
fn span_headers(start: usize, end: usize, len: usize) -> Vec<(&'static str, String)> {
    vec![
        ("content-length", (end - start).to_string()),
        ("content-range", format!("bytes {start}-{}/{len}", end - 1)),
    ]
}

/// A 206 answer with bytes `start..end` of `data` and one more header, `extra`.
fn part_of(data: &Bytes, start: usize, end: usize, extra: (&'static str, &str)) -> Response<Body> {
    let mut headers = span_headers(start, end, data.len());
    headers.push((extra.0, extra.1.to_owned()));
    answer(
        StatusCode::PARTIAL_CONTENT,
        &headers,
        data.slice(start..end),
    )
}

/// An answer with `headers` and all of `body`.
fn answer(status: StatusCode, headers: &[(&str, String)], body: Bytes) -> Response<Body> {
    respond(
        status,
        headers,
        Full::new(body).map_err(|e| match e {}).boxed(),
    )
}

/// An answer of `status` with `headers` and `body`.
fn respond(status: StatusCode, headers: &[(&str, String)], body: Body) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    builder.body(body).unwrap()
}

/// A server with no ETags that answers each range (206) from `version(n)` for
/// request `n`, and cuts an answer after `cut_after(start, n)` bytes when that is
/// `Some`.
fn spans_without_etag(
    version: impl Fn(usize) -> Bytes + Send + Sync + 'static,
    cut_after: impl Fn(usize, usize) -> Option<usize> + Send + Sync + 'static,
) -> FaultServer {
    FaultServer::start(move |seen, n| {
        let data = version(n);
        let (start, end) = asked(seen, data.len());
        let headers = span_headers(start, end, data.len());
        match cut_after(start, n) {
            Some(sent) => cut(
                StatusCode::PARTIAL_CONTENT,
                &headers,
                data.slice(start..start + sent),
            ),
            None => answer(
                StatusCode::PARTIAL_CONTENT,
                &headers,
                data.slice(start..end),
            ),
        }
    })
}

/// A body cut midway from an answer without an ETag cannot be resumed with the
/// same version: the rest is not asked for unpinned (it could come from an object
/// written since, and the read would join two versions). The range is read again
/// from its start, all of it from one answer.
#[test]
fn a_body_cut_midway_without_an_etag_is_never_resumed_unpinned() {
    let old = object(1 << 20);
    let new: Bytes = old.iter().map(|b| b.wrapping_add(1)).collect();
    let (first, rest) = (old.clone(), new.clone());
    let server = spans_without_etag(
        move |n| if n == 0 { first.clone() } else { rest.clone() },
        |_, n| (n == 0).then_some(300_000),
    );
    let op = server.operator(3, Duration::from_secs(10));
    let got = block_on(op.read_range("obj", 1000..(1 << 20)));
    let seen = server.seen();
    for later in &seen[1..] {
        assert_eq!(
            later.range.as_deref(),
            Some("bytes=1000-1048575"),
            "asked for the rest of an answer it could not pin: {seen:?}"
        );
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        got.unwrap() == new.slice(1000..),
        "a read of mixed versions"
    );
}

/// A reader of an object from a server that gives no ETag cannot pin its chunk
/// reads to the version it opened: an answer from an object of another date (or
/// size) fails the read, instead of joining its bytes to the first version's. The
/// caller asked for no version: the error is not theirs (`PreconditionFailed`),
/// but a temporary one saying the object changed, its source saying how it was
/// seen.
#[test]
fn a_reader_without_an_etag_notices_another_version() {
    let old = object(3 << 20);
    let new: Bytes = old.iter().map(|b| b.wrapping_add(1)).collect();
    let (first, rest) = (old.clone(), new.clone());
    let server = FaultServer::start(move |seen, n| {
        let (data, date) = if n == 0 {
            (&first, "Mon, 30 Nov 2026 10:00:00 GMT")
        } else {
            (&rest, "Mon, 30 Nov 2026 11:00:00 GMT")
        };
        let (start, end) = asked(seen, data.len());
        part_of(data, start, end, ("last-modified", date))
    });
    let op = server.operator(1, Duration::from_secs(10));
    let err = block_on(async {
        let mut reader = op
            .reader_with("obj")
            .chunk_size(1 << 20)
            .prefetch(1)
            .await
            .unwrap();
        let mut got = Vec::new();
        futures::AsyncReadExt::read_to_end(&mut reader, &mut got).await
    })
    .unwrap_err();
    let err = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<storage::Error>())
        .expect("the reader's own error");
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("changed"), Some("while read"), "{err}");
    assert!(
        err.to_string().contains("replaced while it was read"),
        "{err}"
    );
    // Opened with one chunk (`whole_up_to` follows the reader's chunk size).
    assert_eq!(
        server.seen()[0].range.as_deref(),
        Some("bytes=0-1048575"),
        "the open's request"
    );
    let seen = std::error::Error::source(err)
        .and_then(|e| e.downcast_ref::<storage::Error>())
        .expect("what the reader saw");
    assert!(
        seen.to_string().contains("changed while it was read"),
        "{seen}"
    );
}

/// A server whose object `v1` (4,000,000 bytes) is answered by every HEAD, and
/// every GET finds replaced (412, as `If-Match` on `v1` gets once it is).
fn replaced_after_its_head() -> FaultServer {
    FaultServer::start(|seen, _| match seen.method.as_str() {
        "HEAD" => with_headers(
            StatusCode::OK,
            &[("content-length", "4000000"), ("etag", "\"v1\"")],
            "",
        ),
        _ => precondition_failed(),
    })
}

/// A reader whose open is a HEAD (a suffix longer than it reads whole), then a GET
/// of its first chunk pinned to the ETag the HEAD saw: an object replaced between
/// the two fails the open as a replaced object, not as the caller's condition,
/// unless the caller named that version.
#[test]
fn an_open_whose_object_is_replaced_after_its_head_says_it_changed() {
    let server = replaced_after_its_head();
    let op = server.operator(1, Duration::from_secs(10));
    for if_match in [None, Some("\"v1\"")] {
        let err = block_on(async {
            let mut reader = op
                .reader_with("obj")
                .byte_range(storage::raw::ByteRange::suffix(3 << 20))
                .whole_up_to(1 << 20);
            if let Some(etag) = if_match {
                reader = reader.if_match(etag);
            }
            reader.await.map(drop)
        })
        .unwrap_err();
        assert_eq!(err.path(), "obj", "{err}");
        if if_match.is_some() {
            assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        } else {
            assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
            assert!(err.is_temporary(), "{err}");
            assert_eq!(err.context("changed"), Some("while read"), "{err}");
        }
    }
    let methods: Vec<_> = server.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["HEAD", "GET", "HEAD", "GET"]);
}

/// A reader's chunks are GETs pinned to the ETag it opened (`If-Match`): an
/// object replaced while it is read fails the reader. Where the caller asked for
/// no version, that is a temporary `Unexpected` saying the object changed (reading
/// again reads the new one), not `PreconditionFailed`, which would say the
/// caller's condition failed; where the caller asked for that version
/// (`if_match` its ETag), it is theirs: `PreconditionFailed`.
#[test]
fn a_reader_of_an_object_replaced_midway_says_it_changed() {
    // Replaced after the open's first chunk: every later pinned chunk is refused.
    let server = first_chunk_then(|seen| seen.if_match.is_some().then(precondition_failed));
    let op = server.operator(1, Duration::from_secs(10));
    for if_match in [None, Some("*"), Some("\"v1\"")] {
        let err = reader_error(&op, if_match);
        assert_eq!(err.path(), "obj", "{err}");
        if if_match == Some("\"v1\"") {
            assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        } else {
            assert_changed(&err);
        }
    }
}

/// A 3 MiB object `obj` (ETag `v1`) whose first 1 MiB chunk is served, and whose
/// every later request `refuse` may answer instead.
fn first_chunk_then(
    refuse: impl Fn(&Seen) -> Option<Response<Body>> + Send + Sync + 'static,
) -> FaultServer {
    let served = object(3 << 20);
    FaultServer::start(move |seen, _| {
        if seen.range.as_deref() != Some("bytes=0-1048575")
            && let Some(refusal) = refuse(seen)
        {
            return refusal;
        }
        let (start, end) = asked(seen, served.len());
        part_of(&served, start, end, ("etag", "\"v1\""))
    })
}

/// The error a reader of `obj` in 1 MiB chunks (opened `if_match`, if given) ends
/// in.
fn reader_error(op: &Operator, if_match: Option<&str>) -> storage::Error {
    let err = block_on(async {
        let mut reader = op.reader_with("obj").chunk_size(1 << 20).prefetch(1);
        if let Some(etag) = if_match {
            reader = reader.if_match(etag);
        }
        let mut reader = reader.await.unwrap();
        let mut got = Vec::new();
        futures::AsyncReadExt::read_to_end(&mut reader, &mut got).await
    })
    .unwrap_err();
    err.get_ref()
        .and_then(|e| e.downcast_ref::<storage::Error>())
        .expect("the reader's own error")
        .clone()
}

/// `err` says the object changed while it was read: temporary, `changed`.
fn assert_changed(err: &storage::Error) {
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("changed"), Some("while read"), "{err}");
}

/// An object that shrinks while a reader reads it: a server that checks the range
/// before `If-Match` (or has no ETag to pin by) refuses a later chunk as past the
/// end. Every chunk is within the size the reader opened, so that is the object
/// changing, said as such (temporary, `changed`), not a range of the caller's;
/// where the caller named the version, its condition failed.
#[test]
fn a_reader_of_an_object_that_shrinks_midway_says_it_changed() {
    let server = first_chunk_then(|_| {
        Some(with_headers(
            StatusCode::RANGE_NOT_SATISFIABLE,
            &[("content-range", "bytes */1000000")],
            "",
        ))
    });
    let op = server.operator(1, Duration::from_secs(10));
    for if_match in [None, Some("\"v1\"")] {
        let err = reader_error(&op, if_match);
        assert_eq!(err.path(), "obj", "{err}");
        if if_match.is_some() {
            assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
        } else {
            assert_changed(&err);
        }
        assert!(
            err.to_string().contains("shorter than when opened"),
            "{err}"
        );
    }
}

/// An answer of no stated length (chunked) cut midway cannot be resumed where it
/// stopped: the read is made again from the start, as the retry policy allows,
/// and returns the whole object.
#[test]
fn a_chunked_answer_cut_midway_is_read_again() {
    let data = object(300_000);
    let served = data.clone();
    let server = FaultServer::start(move |_, n| {
        let etag = [("etag", "\"v1\"".to_owned())];
        if n == 0 {
            return cut(StatusCode::OK, &etag, served.slice(..100_000));
        }
        // A hyper server chunks a body of no stated length.
        let whole = served.clone();
        let frames =
            futures_util::stream::once(async move { Ok::<_, std::io::Error>(Frame::data(whole)) });
        let mut builder = Response::builder().status(StatusCode::OK);
        for (k, v) in &etag {
            builder = builder.header(*k, v);
        }
        builder
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap()
    });
    let op = server.operator(3, Duration::from_secs(10));
    let got = block_on(op.read("k")).unwrap();
    assert!(got == data, "{} bytes of {}", got.len(), data.len());
    assert_eq!(server.seen().len(), 2, "the cut answer, then the whole one");
}

/// A read whose `if_none_match` holds is `NotModified`, said as such: a 304 is no
/// redirect.
#[test]
fn a_read_not_modified_is_not_said_to_be_redirected() {
    let server = FaultServer::start(|seen, _| match seen.header("if-none-match") {
        Some(_) => with_headers(StatusCode::NOT_MODIFIED, &[("etag", "\"v1\"")], ""),
        None => with_headers(
            StatusCode::OK,
            &[("etag", "\"v1\""), ("content-length", "5")],
            "hello",
        ),
    });
    let op = server.operator(1, Duration::from_secs(10));
    let read = op.read_with("obj").if_none_match("\"v1\"");
    let err = block_on(std::future::IntoFuture::into_future(read)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotModified, "{err}");
    assert!(!err.to_string().contains("redirect"), "{err}");
}

/// An answer of no stated length that is not chunked ends when the connection
/// closes, so a cut looks like its end: without a checksum over all of it, such a
/// body is an error, never taken for the whole object. (A raw HTTP/1.1 server: a
/// hyper server chunks every body of no stated length.)
#[test]
fn a_body_ended_only_by_the_connection_closing_is_not_taken_as_whole() {
    let addr = raw_http_server(|_, stream| {
        let head = "HTTP/1.1 200 OK\r\nConnection: close\r\nETag: \"v1\"\r\n\r\n";
        let _ = std::io::Write::write_all(stream, head.as_bytes());
        let _ = std::io::Write::write_all(stream, &[7_u8; 400]);
        // Closed here, cleanly: the object was cut after 400 bytes.
    });
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{addr}"))
            .credentials(Credentials::new("key", "secret"))
            .retry(RetryPolicy::default().with_max_attempts(1))
            .build()
            .unwrap(),
    );
    let err = block_on(op.read("k")).unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(
        err.to_string().contains("cannot be told from a cut"),
        "{err}"
    );
}

/// A `Content-Range` outside the object it names, or not the body's length, is a
/// malformed answer: an error, never a panic on its numbers, and never bytes put
/// where the server did not say they belong.
#[test]
fn a_content_range_that_cannot_be_is_a_malformed_answer() {
    for (content_range, len) in [
        (format!("bytes {0}-{0}/{0}", u64::MAX), 1),
        ("bytes 0-99/1000".to_owned(), 200),
        ("bytes 50-10/1000".to_owned(), 1),
    ] {
        let server = FaultServer::start(move |_, _| {
            with_headers(
                StatusCode::PARTIAL_CONTENT,
                &[("content-range", content_range.as_str())],
                vec![7_u8; len],
            )
        });
        let op = server.operator(1, Duration::from_secs(10));
        let err = block_on(op.read_range("obj", 0..100)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
        assert!(err.to_string().contains("malformed GET response"), "{err}");
    }
    // A chunked body (no length for the headers' check) that runs past its span:
    // its bytes past byte 100 are not bytes 100.. of the object.
    let server = FaultServer::start(|_, _| {
        let frames = futures_util::stream::iter([Ok(Frame::data(Bytes::from(vec![7_u8; 200])))]);
        respond(
            StatusCode::PARTIAL_CONTENT,
            &[("content-range", "bytes 0-99/1000".to_owned())],
            BodyExt::boxed(StreamBody::new(frames)),
        )
    });
    let op = server.operator(1, Duration::from_secs(10));
    for range in [0..200, 0..100] {
        let err = block_on(op.read_range("obj", range.clone())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{range:?}: {err}");
        assert!(
            err.to_string().contains("malformed GET response"),
            "{range:?}: {err}"
        );
    }
}

/// A reader of a range longer than `whole_up_to` asks its first request for one
/// chunk, not for `whole_up_to` bytes it would then hold as its first chunk; a
/// range to the object's end, whose length only the first answer tells, asks for
/// `whole_up_to` and goes on from where that answer ended.
#[test]
fn a_reader_asks_its_first_request_for_what_it_will_keep() {
    let data = object(4 << 20);
    let server = serving_with_one_cut(data.clone(), usize::MAX);
    let op = server.operator(3, Duration::from_secs(10));
    let read_all = |range: Option<std::ops::Range<u64>>| {
        block_on(async {
            let with = op
                .reader_with("obj")
                .chunk_size(1 << 20)
                .prefetch(1)
                .whole_up_to(2 << 20);
            let mut reader = match range {
                Some(range) => with.range(range).await,
                None => with.await,
            }
            .unwrap();
            let mut got = Vec::new();
            futures::AsyncReadExt::read_to_end(&mut reader, &mut got)
                .await
                .unwrap();
            got
        })
    };
    assert_eq!(read_all(Some(0..3 << 20)), data[..3 << 20]);
    let first = server.seen()[0].range.clone();
    assert_eq!(
        first.as_deref(),
        Some("bytes=0-1048575"),
        "the bounded range"
    );
    let before = server.seen().len();
    assert_eq!(read_all(None), data[..]);
    let seen = server.seen();
    assert_eq!(seen[before].range.as_deref(), Some("bytes=0-2097151"));
    assert!(
        seen[before + 1]
            .range
            .as_deref()
            .is_some_and(|r| r.starts_with("bytes=2097152-")),
        "{seen:?}"
    );
}

/// A range refused as past the end (416) is an empty read only when it is: where
/// the object's size (asked for after the refusal, which said none) holds some of
/// it, the read fails, temporary, instead of returning no bytes as if there were
/// none.
#[test]
fn a_refused_range_the_object_now_holds_is_not_an_empty_read() {
    let size = Arc::new(std::sync::atomic::AtomicUsize::new(10));
    let now = Arc::clone(&size);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "HEAD" => {
            let len = now.load(std::sync::atomic::Ordering::SeqCst).to_string();
            with_headers(
                StatusCode::OK,
                &[("content-length", &len), ("etag", "\"v2\"")],
                "",
            )
        }
        _ => s3_error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", "r-416"),
    });
    let op = server.operator(1, Duration::from_secs(10));
    // Past the end of the 10 bytes there are: nothing, as asked.
    assert!(block_on(op.read_range("obj", 10..)).unwrap().is_empty());
    // The object grew to 100 bytes after the refusal: not an empty read.
    size.store(100, std::sync::atomic::Ordering::SeqCst);
    let err = block_on(op.read_range("obj", 10..)).unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains("100 bytes"), "{err}");
    let err = block_on(op.read_range("obj", 10..20)).unwrap_err();
    assert!(err.is_temporary(), "{err}");
}

/// A body cut midway whose object is replaced before the resume (pinned to the
/// version first served, so refused with 412): a read that asked for no version
/// reads the new one from the start, never a `PreconditionFailed` it set no
/// condition for; a read pinned by its caller fails with it.
#[test]
fn an_object_replaced_during_a_resumed_read_is_read_again_unless_pinned() {
    let (old, new) = (object(1 << 20), Bytes::from(vec![7_u8; 1 << 20]));
    let server = FaultServer::start(move |seen, n| {
        let headers = |etag: &str, len: usize| {
            [
                ("content-length", len.to_string()),
                ("etag", etag.to_owned()),
            ]
        };
        match (n % 3, seen.if_match.as_deref()) {
            (0, _) => cut(
                StatusCode::OK,
                &headers("\"v1\"", old.len()),
                old.slice(..300_000),
            ),
            (1, Some("\"v1\"")) => precondition_failed(),
            _ => {
                let mut builder = Response::builder().status(StatusCode::OK);
                for (k, v) in headers("\"v2\"", new.len()) {
                    builder = builder.header(k, v);
                }
                builder
                    .body(Full::new(new.clone()).map_err(|e| match e {}).boxed())
                    .unwrap()
            }
        }
    });
    let op = server.operator(3, Duration::from_secs(10));
    let got = block_on(op.read("obj")).unwrap();
    assert!(got == vec![7_u8; 1 << 20], "not the new object whole");
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2].if_match, None, "read again, unpinned: {seen:?}");
    // Pinned by the caller: its version is gone.
    let read = op.read_with("obj").if_match("\"v1\"");
    let err = block_on(std::future::IntoFuture::into_future(read)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
}

#[test]
fn a_body_cut_midway_resumes_from_the_byte_reached() {
    let data = object(1 << 20);
    let server = serving_with_one_cut(data.clone(), 300_000);
    let op = server.operator(3, Duration::from_secs(10));
    let got = block_on(op.read_range("obj", 1000..(1 << 20))).unwrap();
    assert_eq!(got.len(), (1 << 20) - 1000);
    assert!(
        got == data.slice(1000..),
        "content differs after the resume"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].range.as_deref(), Some("bytes=1000-1048575"));
    // The resume asks for the rest only, pinned to the version first served.
    let resumed = seen[1].range.as_deref().unwrap();
    let from: u64 = resumed["bytes=".len()..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(from > 1000 && from <= 301_000, "{resumed}");
    assert_eq!(seen[1].if_match.as_deref(), Some("\"v1\""));
}

/// HTTP lets a server answer a range with part of it: a 206 whose Content-Range
/// ends before the range does (some servers and proxies cap each answer). The
/// rest is asked for, from the byte reached and pinned to the version first
/// served, and such answers are not failures: one attempt is enough.
#[test]
fn a_partial_answer_that_ends_early_is_followed_by_the_rest() {
    const CAP: usize = 100_000;
    let data = object(1 << 20);
    let body = data.clone();
    let server = FaultServer::start(move |seen, _| {
        let (a, b) = seen
            .range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split_once('-'))
            .unwrap();
        let start: usize = a.parse().unwrap();
        let end = b.parse::<usize>().unwrap().min(start + CAP - 1) + 1;
        with_headers(
            StatusCode::PARTIAL_CONTENT,
            &[
                ("content-length", &(end - start).to_string()),
                (
                    "content-range",
                    &format!("bytes {start}-{}/{}", end - 1, body.len()),
                ),
                ("etag", "\"v1\""),
            ],
            body.slice(start..end).to_vec(),
        )
    });
    let got = block_on(
        server
            .operator(1, Duration::from_secs(10))
            .read_range("obj", 1000..(1 << 20)),
    )
    .unwrap();
    assert!(got == data.slice(1000..), "wrong bytes");
    let seen = server.seen();
    let asked: Vec<&str> = seen.iter().map(|s| s.range.as_deref().unwrap()).collect();
    let want: Vec<String> = (0..11)
        .map(|i| format!("bytes={}-1048575", 1000 + i * CAP))
        .collect();
    assert_eq!(asked, want);
    assert_eq!(seen[0].if_match, None);
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.if_match.as_deref() == Some("\"v1\"")),
        "{seen:?}"
    );
}

/// A server that answers every range of its 1,000-byte object with the first 100
/// bytes (a 206 for `bytes 0-99/1000`), giving `etag` if any.
fn answering_the_first_100_bytes(etag: Option<&'static str>) -> FaultServer {
    let object: Vec<u8> = (0..1000_u32).map(|i| (i % 251) as u8).collect();
    FaultServer::start(move |_, _| {
        let mut headers = vec![
            ("content-length", "100"),
            ("content-range", "bytes 0-99/1000"),
        ];
        headers.extend(etag.map(|etag| ("etag", etag)));
        with_headers(
            StatusCode::PARTIAL_CONTENT,
            &headers,
            object[..100].to_vec(),
        )
    })
}

/// The error of a read of all of `k` from `server`, in `attempts`.
fn reading_all_of_k(server: &FaultServer, attempts: u32) -> storage::Error {
    let read = server
        .operator(attempts, Duration::from_secs(10))
        .read_range("k", 0..1000);
    let err = block_on(read).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert_eq!(err.operation(), "read_range");
    err
}

/// A partial answer from a server that gives no ETag cannot be followed: the rest
/// could come from another version of the object. It is an error, never bytes of
/// two versions stitched together.
#[test]
fn a_partial_answer_without_an_etag_is_an_error() {
    let server = answering_the_first_100_bytes(None);
    let err = reading_all_of_k(&server, 1);
    assert!(err.to_string().contains("no ETag"), "{err}");
    assert_eq!(server.seen().len(), 1);
}

/// A partial answer that brings none of the missing bytes (here a server that
/// answers every range with the object's first 100 bytes) is a failed attempt,
/// not a loop.
#[test]
fn a_partial_answer_that_brings_nothing_new_is_a_failed_attempt() {
    let server = answering_the_first_100_bytes(Some("\"v1\""));
    let err = reading_all_of_k(&server, 3);
    assert!(err.is_temporary(), "{err}");
    // The first answer brought bytes 0..100; each of the three attempts that
    // followed brought none.
    assert_eq!(server.seen().len(), 4, "{:?}", server.seen());
}

/// A GET answered with a body of no stated length (`Transfer-Encoding: chunked`,
/// as a server that compresses on the fly, or a proxy, may send) is read to its
/// end, or for a range the server ignored, as far as the range goes: the bytes
/// asked for, where the read failed for "no Content-Length".
#[test]
fn an_answer_of_no_stated_length_is_read() {
    let data = object(300_000);
    let body = data.clone();
    let server = FaultServer::start(move |_, _| {
        // In pieces, with no length: hyper sends it chunked.
        let pieces: Vec<Bytes> = body.chunks(70_000).map(Bytes::copy_from_slice).collect();
        let frames = futures_util::stream::iter(pieces).map(|p| Ok(Frame::data(p)));
        Response::builder()
            .status(StatusCode::OK)
            .header("etag", "\"v1\"")
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap()
    });
    let op = server.operator(1, Duration::from_secs(10));
    assert!(block_on(op.read("k")).unwrap() == data, "whole");
    assert!(
        block_on(op.read_range("k", 100_000..100_010)).unwrap() == data.slice(100_000..100_010),
        "range"
    );
    let tail = block_on(std::future::IntoFuture::into_future(
        op.read_with("k").range(299_990..),
    ))
    .unwrap();
    assert!(tail == data.slice(299_990..), "tail");
    let past = block_on(op.read_range("k", 299_990..300_010)).unwrap_err();
    assert_eq!(past.kind(), ErrorKind::RangeNotSatisfiable, "{past}");
    // A suffix, and HTTP's form cut at the end of the object.
    let last = block_on(std::future::IntoFuture::into_future(
        op.read_with("k")
            .byte_range(storage::raw::ByteRange::suffix(10)),
    ))
    .unwrap();
    assert!(last == data.slice(299_990..), "suffix");
    let cut = block_on(std::future::IntoFuture::into_future(
        op.read_with("k")
            .byte_range(storage::raw::ByteRange::http(299_000..400_000)),
    ))
    .unwrap();
    assert!(cut == data.slice(299_000..), "http");
    // No more is held than a read may hold: past it, an error, not an abort.
    let small = op
        .clone()
        .with_options(op.options().with_max_buffer_size(50_000));
    for range in [
        storage::raw::ByteRange::new(100_000..200_000),
        storage::raw::ByteRange::http(100_000..200_000),
        storage::raw::ByteRange::new(200_000..),
        storage::raw::ByteRange::suffix(60_000),
    ] {
        let read = small.read_with("k").byte_range(range);
        let err = block_on(std::future::IntoFuture::into_future(read)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{range:?}: {err}");
    }
    let fits = small
        .read_with("k")
        .byte_range(storage::raw::ByteRange::suffix(40_000));
    let fits = block_on(std::future::IntoFuture::into_future(fits)).unwrap();
    assert!(fits == data.slice(260_000..), "suffix within the bound");
}

/// A whole object of no stated length is still checked against the checksum the
/// server gives with it: a mismatch is an error, never the bytes.
#[test]
fn an_answer_of_no_stated_length_is_checked() {
    let server = FaultServer::start(|_, _| {
        let frames = futures_util::stream::iter([Ok(Frame::data(Bytes::from_static(b"damaged")))]);
        Response::builder()
            .status(StatusCode::OK)
            .header("etag", "\"v1\"")
            // The CRC32 of "original", not of what is sent.
            .header("x-amz-checksum-crc32", "fzoMxg==")
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap()
    });
    let err = block_on(server.operator(2, Duration::from_secs(10)).read("k")).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(server.seen().len(), 2, "read again once, then failed");
}

#[test]
fn a_server_that_ignores_the_range_is_not_read_to_its_end() {
    // HTTP lets a server (or a proxy) answer a range with the whole object. A
    // small read of a large object must stop once its bytes are in, not download
    // the rest: here 256 MiB (one MiB of data 256 times), served 1 MiB at a time
    // as the client takes it.
    const FRAMES: usize = 256;
    let data = object(1 << 20);
    let produced = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (body, count) = (data.clone(), Arc::clone(&produced));
    let server = FaultServer::start(move |_, _| {
        let (body, count) = (body.clone(), Arc::clone(&count));
        let frames = futures_util::stream::iter(0..FRAMES).map(move |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Frame::data(body.clone()))
        });
        Response::builder()
            .status(StatusCode::OK)
            .header("content-length", (FRAMES << 20).to_string())
            .header("etag", "\"v1\"")
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap()
    });
    let op = server.operator(1, Duration::from_secs(10));
    let range = (3 << 20) - 100..(3 << 20) + 5000;
    let got = block_on(op.read_range("big", range.clone())).unwrap();
    let want: Vec<u8> = (range.start..range.end)
        .map(|i| data[(i % (1 << 20)) as usize])
        .collect();
    assert!(got == want, "wrong bytes");
    // Had the read taken the whole body, all 256 frames were made before it
    // returned; a stopped read leaves the rest unmade (what the sockets buffer
    // is a few MiB).
    let made = produced.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        made < FRAMES,
        "the server made all {made} MiB for a 5 KiB read"
    );
    assert_eq!(
        server.seen()[0].range.as_deref(),
        Some("bytes=3145628-3150727")
    );
}

#[test]
fn a_body_cut_every_time_is_an_error_not_short_data() {
    let data = object(200_000);
    let body = data.clone();
    let server = FaultServer::start(move |_, _| {
        cut(
            StatusCode::OK,
            &[
                ("content-length", "200000".into()),
                ("etag", "\"v1\"".into()),
            ],
            body.slice(..50_000),
        )
    });
    let err = block_on(server.operator(2, Duration::from_secs(10)).read("obj")).unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.operation(), "read");
    assert_eq!(server.seen().len(), 2);
}

#[test]
fn a_server_that_stops_answering_times_out() {
    // Accepts connections and never answers; it lets them go only once the client
    // has given up (or after a minute, so that a client without a working timeout
    // fails with a closed connection instead of hanging the suite).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(2) {
            held.push(stream.unwrap());
        }
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
        drop(held);
    });
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{addr}"))
            .anonymous()
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(2)
                    .with_delays(Duration::ZERO, Duration::ZERO),
            )
            .request_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let err = block_on(op.stat("k")).unwrap_err();
    // The server was still holding both connections: only our own timeout can have
    // ended the call.
    let _ = done_tx.send(());
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary());
    held.join().unwrap();
}

/// A server that reads a PUT at `bytes_per_second` (`stop_after` bytes, and it
/// stops reading), and an operator that sends up to 48 MiB as one PUT, one
/// attempt, under `timeout`.
fn slow_reader(
    bytes_per_second: u64,
    stop_after: u64,
    timeout: Duration,
) -> (FaultServer, Operator) {
    let reading = Reading {
        bytes_per_second,
        stop_after,
    };
    let server = FaultServer::start_reading(Some(reading), |seen, _| match seen.method.as_str() {
        "PUT" => with_headers(StatusCode::OK, &[("etag", "\"slow\"")], ""),
        "GET" => empty_listing(),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = operator_of(
        server
            .builder(1, timeout)
            .multipart_threshold(64 << 20)
            .build()
            .unwrap(),
    );
    (server, op)
}

/// The request timeout bounds each wait for the body to move, not the whole
/// upload: a body that takes six seconds to go out at a steady pace (a 1 MiB
/// frame each quarter second) is sent under a 5 s timeout, as a large part on a
/// slow link would be.
#[test]
fn an_upload_slower_than_the_timeout_that_keeps_moving_is_sent() {
    let (server, op) = slow_reader(4 << 20, u64::MAX, Duration::from_secs(5));
    let data = object(24 << 20);
    let meta = block_on(op.write("slow", data.clone())).unwrap();
    assert_eq!(meta.etag(), Some("\"slow\""));
    let put = server
        .seen()
        .into_iter()
        .find(|s| s.method == "PUT")
        .unwrap();
    assert!(put.body == data, "the server got {} bytes", put.body.len());
}

/// A server that stops reading an upload midway is a `Timeout` saying how much
/// of the body went out, not a hang.
#[test]
fn an_upload_the_server_stops_reading_times_out() {
    let (_server, op) = slow_reader(16 << 20, 4 << 20, Duration::from_secs(2));
    let err = block_on(op.write("stuck", object(48 << 20))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("the request body stopped moving"),
        "{err}"
    );
    let body = err.context("body").unwrap_or_default();
    assert!(
        body.ends_with(&format!(" of {} bytes sent", 48 << 20)),
        "{err}"
    );
    assert!(err.to_string().contains(body), "{err}");
}

#[test]
fn a_body_that_stalls_midway_times_out() {
    let server = FaultServer::start(|_, _| {
        let frames =
            futures_util::stream::once(async { Ok(Frame::data(Bytes::from(vec![1; 1000]))) })
                .chain(futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(Frame::data(Bytes::new()))
                }));
        Response::builder()
            .status(StatusCode::OK)
            .header("content-length", "5000")
            .body(BodyExt::boxed(StreamBody::new(frames)))
            .unwrap()
    });
    let err = block_on(server.operator(2, Duration::from_millis(300)).read("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let seen = server.seen_when(|seen| seen.len() >= 2);
    assert_eq!(seen.len(), 2, "retried once, then gave up");
}

use futures_util::StreamExt as _;

fn with_headers(
    status: StatusCode,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(Full::new(body.into()).map_err(|e| match e {}).boxed())
        .unwrap()
}

/// CreateMultipartUpload's answer: upload `up-1`.
fn upload_created() -> Response<Body> {
    with_headers(
        StatusCode::OK,
        &[],
        "<InitiateMultipartUploadResult><UploadId>up-1</UploadId></InitiateMultipartUploadResult>",
    )
}

/// A listing with nothing in it (the write checks find no directory).
fn empty_listing() -> Response<Body> {
    with_headers(StatusCode::OK, &[], "<ListBucketResult></ListBucketResult>")
}

/// Each request `server` has seen, as its method and query.
fn methods_and_queries(server: &FaultServer) -> Vec<(String, String)> {
    let seen = server.seen();
    seen.into_iter().map(|s| (s.method, s.query)).collect()
}

/// How many AbortMultipartUpload requests of upload `up-1` the server saw.
fn aborts(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| s.method == "DELETE" && s.query == "uploadId=up-1")
        .count()
}

#[test]
fn a_listing_of_malformed_xml_is_a_clear_error() {
    let server = FaultServer::start(|_, _| {
        with_headers(
            StatusCode::OK,
            &[("content-type", "application/xml")],
            "<ListBucketResult><Contents><Key>a</Key><Size>not a number</Size>",
        )
    });
    let err = block_on(server.operator(1, Duration::from_secs(10)).list("dir/")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert_eq!((err.operation(), err.path()), ("list", "dir/"));
    assert!(err.to_string().contains("not the XML S3 sends"), "{err}");
    assert!(err.to_string().contains("ListBucketResult"), "{err}");
}

#[test]
fn an_html_error_page_is_reported_as_what_it_is() {
    let server = FaultServer::start(|_, _| {
        with_headers(
            StatusCode::BAD_GATEWAY,
            &[("content-type", "text/html")],
            "<html><head><title>502 Bad Gateway</title></head>\n<body>upstream down</body></html>",
        )
    });
    let err = block_on(server.operator(2, Duration::from_secs(10)).read("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "a 502 may pass");
    assert_eq!(err.context("status"), Some("502"));
    let text = err.to_string();
    assert!(text.contains("not an S3 error"), "{text}");
    assert!(
        text.contains("text/html") && text.contains("502 Bad Gateway"),
        "{text}"
    );
    assert_eq!(server.seen().len(), 2, "retried, then reported");
}

/// A 206 that starts after the first byte asked for (a server or a proxy that
/// answers `bytes=100-199` with `bytes 150-299`): an error, never the later bytes
/// in the earlier ones' place.
#[test]
fn a_partial_answer_that_starts_late_is_an_error_never_shifted_data() {
    let object: Vec<u8> = (0..1000_u32).map(|i| (i % 251) as u8).collect();
    let server = FaultServer::start(move |_, _| {
        with_headers(
            StatusCode::PARTIAL_CONTENT,
            &[
                ("content-length", "150"),
                ("content-range", "bytes 150-299/1000"),
                ("etag", "\"v1\""),
            ],
            object[150..300].to_vec(),
        )
    });
    let got = block_on(
        server
            .operator(1, Duration::from_secs(10))
            .read_range("k", 100..200),
    );
    let err = got.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.to_string().contains("starts at byte 150"), "{err}");
}

#[test]
fn a_content_length_that_lies_is_an_error_never_short_data() {
    // Says 1,000 bytes, sends 10 and ends the body there.
    let server = FaultServer::start(|_, _| {
        with_headers(
            StatusCode::PARTIAL_CONTENT,
            &[
                ("content-length", "10"),
                ("content-range", "bytes 0-999/1000"),
                ("etag", "\"v1\""),
            ],
            vec![7_u8; 10],
        )
    });
    let err = block_on(
        server
            .operator(2, Duration::from_secs(10))
            .read_range("k", 0..1000),
    )
    .unwrap_err();
    assert!(err.to_string().contains("ended after"), "{err}");
    assert_eq!(err.operation(), "read_range");
}

#[test]
fn a_redirect_to_another_region_says_which() {
    let server = FaultServer::start(|_, _| {
        with_headers(
            StatusCode::MOVED_PERMANENTLY,
            &[("x-amz-bucket-region", "eu-west-1")],
            "<?xml version=\"1.0\"?><Error><Code>PermanentRedirect</Code><Message>The bucket \
             you are attempting to access must be addressed using the specified endpoint.\
             </Message><Endpoint>bucket.s3.eu-west-1.amazonaws.com</Endpoint>\
             <RequestId>r1</RequestId></Error>",
        )
    });
    let err = block_on(server.operator(3, Duration::from_secs(10)).read("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(!err.is_temporary());
    assert!(err.to_string().contains("\"eu-west-1\""), "{err}");
    assert_eq!(err.context("code"), Some("PermanentRedirect"));
    assert_eq!(server.seen().len(), 1, "not retried");
}

#[test]
fn a_missing_bucket_is_named() {
    let server = FaultServer::start(|_, _| s3_error(StatusCode::NOT_FOUND, "NoSuchBucket", "r2"));
    let op = server.operator(2, Duration::from_secs(10));
    for err in [
        block_on(op.read("k")).unwrap_err(),
        block_on(op.write("k", "x")).unwrap_err(),
        block_on(op.list("")).unwrap_err(),
        block_on(op.stat("k")).unwrap_err(),
        // Not `false`: a misspelt bucket holds nothing, and says so.
        block_on(op.exists("k")).unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(
            err.to_string().contains("bucket \"bucket\" does not exist"),
            "{err}"
        );
        assert_eq!(err.context("bucket"), Some("bucket"));
    }
}

/// A server that throttles: a request that arrives while `allowed` others are in
/// flight is answered `503 SlowDown`; the others take a few milliseconds. Records
/// the most requests it ever had in flight.
struct ThrottlingServer {
    addr: SocketAddr,
    max_seen: Arc<std::sync::atomic::AtomicUsize>,
    throttled: Arc<std::sync::atomic::AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl ThrottlingServer {
    fn start(allowed: usize) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (runtime, listener, addr) = common_s3::listening();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let throttled = Arc::new(AtomicUsize::new(0));
        let (m, t) = (Arc::clone(&max_seen), Arc::clone(&throttled));
        runtime.spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (in_flight, m, t) = (Arc::clone(&in_flight), Arc::clone(&m), Arc::clone(&t));
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (in_flight, m, t) =
                        (Arc::clone(&in_flight), Arc::clone(&m), Arc::clone(&t));
                    async move {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        m.fetch_max(now, Ordering::SeqCst);
                        let listing = req.method() == hyper::Method::GET;
                        drop(req.into_body().collect().await);
                        let response = if now > allowed {
                            t.fetch_add(1, Ordering::SeqCst);
                            s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "busy")
                        } else {
                            tokio::time::sleep(Duration::from_millis(3)).await;
                            // Writes check the way is clear with a listing: nothing.
                            let body = if listing {
                                "<ListBucketResult></ListBucketResult>"
                            } else {
                                ""
                            };
                            with_headers(StatusCode::OK, &[("etag", "\"e\"")], body)
                        };
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(response)
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
            max_seen,
            throttled,
            _runtime: runtime,
        }
    }
}

#[test]
fn requests_in_flight_are_bounded_and_adapt_to_throttling() {
    use std::sync::atomic::Ordering;
    let server = ThrottlingServer::start(8);
    let s3 = S3Builder::new("bucket")
        .endpoint(format!("http://{}", server.addr))
        .credentials(Credentials::new("key", "secret"))
        .max_concurrent_requests(32)
        .retry(
            RetryPolicy::default()
                .with_max_attempts(10)
                .with_delays(Duration::from_millis(2), Duration::from_millis(100)),
        )
        .build()
        .unwrap();
    let op = operator_of(s3);
    // A burst of 400 small writes, all issued at once: the bound keeps at most 32
    // requests in flight, throttling lowers it, and every write gets through.
    let results = block_on(async {
        let writes: Vec<_> = (0..400).map(|i| op.write(&format!("k{i}"), "x")).collect();
        futures::future::join_all(writes).await
    });
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        server.max_seen.load(Ordering::SeqCst) <= 32,
        "{} requests in flight at once",
        server.max_seen.load(Ordering::SeqCst)
    );
    assert!(
        server.throttled.load(Ordering::SeqCst) > 0,
        "the server did throttle"
    );
}

/// "hello world" and its checksums, as S3 computes them.
const HELLO: &str = "hello world";
const HELLO_CRC64NVME: &str = "jSnVw/bqjr4=";

/// A server answering every GET with `HELLO` and its whole-object checksum in
/// `header`: `good` for the key `good`, `damaged` (one bit off: what a body damaged
/// on the way looks like) for any other.
fn serving_checksums(
    header: &'static str,
    good: &'static str,
    damaged: &'static str,
) -> FaultServer {
    FaultServer::start(move |seen, _| {
        let checksum = if seen.path.ends_with("/good") {
            good
        } else {
            damaged
        };
        with_headers(
            StatusCode::OK,
            &[
                (header, checksum),
                ("x-amz-checksum-type", "FULL_OBJECT"),
                ("etag", "\"v1\""),
            ],
            HELLO,
        )
    })
}

#[test]
fn a_body_whose_checksum_does_not_match_is_an_error_never_data() {
    let server = serving_checksums("x-amz-checksum-crc64nvme", HELLO_CRC64NVME, "jSnVw/bqjr8=");
    let op = server.operator(3, Duration::from_secs(10));
    assert_eq!(block_on(op.read("good")).unwrap(), HELLO);
    let err = block_on(op.read("damaged")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(err.context("checksum"), Some("CRC64NVME"), "{err}");
    assert_eq!(
        err.context("attempts"),
        Some("3"),
        "read again, then refused: {err}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 4, "{seen:?}");
    // Full reads ask for the checksum.
    assert!(
        seen.iter()
            .all(|s| s.header("x-amz-checksum-mode") == Some("ENABLED")),
        "{seen:?}"
    );
}

/// An object another tool uploaded with a CRC32 (the AWS SDKs' and CLI's default)
/// is checked on full reads too, though this backend writes with CRC64NVME.
#[test]
fn a_full_read_checks_a_crc32_the_server_returns() {
    let server = serving_checksums("x-amz-checksum-crc32", "DUoRhQ==", "DUoRhA==");
    let op = server.operator(1, Duration::from_secs(10));
    assert_eq!(block_on(op.read("good")).unwrap(), HELLO);
    let err = block_on(op.read("damaged")).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert_eq!(err.context("checksum"), Some("CRC32"), "{err}");
}

/// A server that takes multipart uploads and finds nothing else, answering a
/// request with `answer` where it gives one. Otherwise: CreateMultipartUpload
/// makes upload `up-1`, every part is taken (ETag `"p"`), a completion succeeds,
/// deletes (aborts) succeed, ListParts finds the upload gone (`NoSuchUpload`, as
/// after an abort), objects have no tags, listings are empty, HEADs find nothing,
/// and anything else is refused.
fn taking_uploads(
    answer: impl Fn(&Seen, usize) -> Option<Response<Body>> + Send + Sync + 'static,
) -> FaultServer {
    FaultServer::start(move |seen, n| {
        if let Some(response) = answer(seen, n) {
            return response;
        }
        match (seen.method.as_str(), seen.query.as_str()) {
            ("POST", "uploads") => upload_created(),
            ("PUT", q) if q.starts_with("partNumber=") => {
                with_headers(StatusCode::OK, &[("etag", "\"p\"")], "")
            }
            ("POST", q) if q.starts_with("uploadId=") => with_headers(
                StatusCode::OK,
                &[],
                "<CompleteMultipartUploadResult><ETag>\"whole\"</ETag></CompleteMultipartUploadResult>",
            ),
            ("DELETE", _) => with_headers(StatusCode::NO_CONTENT, &[], ""),
            ("GET", q) if q.contains("uploadId=") => no_such_upload(),
            // A source with no tags (a multipart copy reads them).
            ("GET", q) if q.starts_with("tagging") => {
                with_headers(StatusCode::OK, &[], "<Tagging><TagSet></TagSet></Tagging>")
            }
            ("GET", _) => empty_listing(),
            ("HEAD", _) => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => s3_error(StatusCode::BAD_REQUEST, "Unexpected", "r"),
        }
    })
}

/// Answers multipart uploads ([`taking_uploads`]) and single PUTs.
fn multipart_server() -> FaultServer {
    taking_uploads(|seen, _| {
        (seen.method == "PUT" && seen.query.is_empty())
            .then(|| with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""))
    })
}

#[test]
fn writes_carry_checksums_for_the_server_to_check() {
    let server = multipart_server();
    let op = server.multipart_operator();
    block_on(op.write("small", HELLO)).unwrap();
    let data = object((10 << 20) + 7);
    block_on(op.write("big", data.clone())).unwrap();
    let seen = server.seen();
    let put = seen
        .iter()
        .find(|s| s.method == "PUT" && s.path == "/bucket/small")
        .unwrap();
    assert_eq!(
        put.header("x-amz-checksum-crc64nvme"),
        Some(HELLO_CRC64NVME)
    );

    let create = seen.iter().find(|s| s.query == "uploads").unwrap();
    assert_eq!(create.header("x-amz-checksum-algorithm"), Some("CRC64NVME"));
    assert_eq!(create.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    let crc = |bytes: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, bytes).to_be_bytes())
    };
    let mut parts: Vec<_> = seen
        .iter()
        .filter(|s| s.query.starts_with("partNumber="))
        .collect();
    parts.sort_by_key(|s| s.query.clone());
    assert_eq!(parts.len(), 3);
    for part in &parts {
        assert_eq!(
            part.header("x-amz-checksum-crc64nvme"),
            Some(crc(&part.body).as_str()),
            "{}",
            part.query
        );
    }
    let complete = seen
        .iter()
        .find(|s| s.method == "POST" && s.query.starts_with("uploadId="))
        .unwrap();
    // The whole object's checksum, combined from the parts'.
    assert_eq!(
        complete.header("x-amz-checksum-crc64nvme"),
        Some(crc(&data).as_str())
    );
    let body = String::from_utf8_lossy(&complete.body);
    for part in &parts {
        let tag = format!("<ChecksumCRC64NVME>{}</ChecksumCRC64NVME>", crc(&part.body));
        assert!(body.contains(&tag), "{body}");
    }
}

/// A writer for the captured log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this process, at every level, from the first call on.
fn logs() -> &'static Captured {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .unwrap();
        logs
    })
}

#[test]
fn sse_headers_are_sent_and_a_customer_key_never_shows() {
    use std::future::IntoFuture as _;
    use storage::{CustomerKey, Encryption};
    let logs = logs();
    // Fails each request once (500), so that retries are logged.
    let server = FaultServer::start(|seen, n| {
        if n % 2 == 0 {
            return s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "r");
        }
        match seen.method.as_str() {
            "GET" if seen.path.ends_with("/obj") => {
                with_headers(StatusCode::OK, &[("etag", "\"v\"")], HELLO)
            }
            "GET" => empty_listing(),
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""),
        }
    });
    let key = CustomerKey::new([0x5a; 32]);
    let secret = "WlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlo=";
    let builder = S3Builder::new("bucket")
        .endpoint(format!("http://{}", server.addr))
        .credentials(Credentials::new("key", "secret"))
        .retry(RetryPolicy::default().with_delays(Duration::ZERO, Duration::ZERO))
        .server_side_encryption(Encryption::Customer(key.clone()));
    let op = operator_of(builder.clone().build().unwrap());
    block_on(op.write("obj", HELLO)).unwrap();
    assert_eq!(block_on(op.read("obj")).unwrap(), HELLO);
    block_on(
        op.write_with("kms", HELLO)
            .encryption(Encryption::Kms {
                key_id: Some("alias/k".into()),
            })
            .storage_class("GLACIER_IR")
            .content_type("text/plain")
            .into_future(),
    )
    .unwrap();
    block_on(
        op.write_with("s3", HELLO)
            .encryption(Encryption::S3Managed)
            .into_future(),
    )
    .unwrap();
    let seen = server.seen();
    let with_key: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/bucket/obj" && s.method != "HEAD")
        .collect();
    assert!(with_key.len() >= 4, "{seen:?}");
    for s in &with_key {
        assert_eq!(
            s.header("x-amz-server-side-encryption-customer-algorithm"),
            Some("AES256")
        );
        assert_eq!(
            s.header("x-amz-server-side-encryption-customer-key"),
            Some(secret)
        );
        assert_eq!(
            s.header("x-amz-server-side-encryption-customer-key-md5"),
            Some(key.md5_base64().as_str())
        );
    }
    let kms = seen.iter().rfind(|s| s.path == "/bucket/kms").unwrap();
    assert_eq!(kms.header("x-amz-server-side-encryption"), Some("aws:kms"));
    assert_eq!(
        kms.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some("alias/k")
    );
    assert_eq!(kms.header("x-amz-storage-class"), Some("GLACIER_IR"));
    assert_eq!(kms.header("content-type"), Some("text/plain"));
    assert_eq!(
        kms.header("x-amz-server-side-encryption-customer-key"),
        None,
        "the write's own encryption replaces the backend's"
    );
    let s3 = seen.iter().rfind(|s| s.path == "/bucket/s3").unwrap();
    assert_eq!(s3.header("x-amz-server-side-encryption"), Some("AES256"));

    // An error, the builder, the backend, the operator: none shows the key.
    let failing = FaultServer::start(|_, _| {
        s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "r")
    });
    let err = block_on(
        operator_of(
            builder
                .clone()
                .endpoint(format!("http://{}", failing.addr))
                .build()
                .unwrap(),
        )
        .read("obj"),
    )
    .unwrap_err();
    // Nor a session token, which the signer adds to the request it logs.
    let token = "TOKEN-NEVER-LOGGED";
    let temporary = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials(Credentials::new("key", "secret").with_session_token(token))
            .retry(RetryPolicy::default().with_delays(Duration::ZERO, Duration::ZERO))
            .build()
            .unwrap(),
    );
    assert_eq!(block_on(temporary.read("obj")).unwrap(), HELLO);
    let logged = String::from_utf8_lossy(&logs.0.lock()).into_owned();
    assert!(logged.contains("retrying"), "the retries were logged");
    assert!(!logged.contains(token), "the session token shows: {logged}");
    for text in [
        format!("{err} {err:?}"),
        format!("{builder:?}"),
        format!("{op:?}"),
        format!("{key:?}"),
        logged,
    ] {
        assert!(!text.contains(secret), "the key shows: {text}");
    }
}

#[test]
fn session_tokens_are_sent_and_signed() {
    let server = FaultServer::start(|_, _| full(StatusCode::OK, HELLO));
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials(Credentials::new("AKIA-TEMP", "secret").with_session_token("the-token"))
            .build()
            .unwrap(),
    );
    assert_eq!(block_on(op.read("k")).unwrap(), HELLO);
    let seen = server.seen();
    assert_eq!(seen[0].header("x-amz-security-token"), Some("the-token"));
    let auth = seen[0].header("authorization").unwrap();
    assert!(auth.contains("Credential=AKIA-TEMP/"), "{auth}");
    let signed = auth.split("SignedHeaders=").nth(1).unwrap();
    assert!(signed.contains("x-amz-security-token"), "{auth}");
}

/// A commit whose outcome is unknown (a conditional PUT answered with errors to
/// the end, the object not found after it), given up on or awaited to its
/// failure: the abort after it says so, with the commit's error (`stored` =
/// `unknown`), every time, where it said `Ok`, as if the target surely kept its
/// old content.
#[test]
fn an_abort_after_a_commit_of_unknown_outcome_says_so() {
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "PUT" => s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "r"),
        "GET" => empty_listing(),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(1, Duration::from_secs(10));
    for awaited in [false, true] {
        block_on(async {
            use tokio::io::AsyncWriteExt as _;
            let mut writer = op.writer_with("k").if_not_exists(true).await.unwrap();
            writer.write_all(b"maybe").await.unwrap();
            writer.flush().await.unwrap();
            if awaited {
                let closed = writer.close().await.unwrap_err();
                assert_eq!(closed.context("stored"), Some("unknown"), "{closed}");
            } else {
                let _ = futures::FutureExt::now_or_never(writer.close());
            }
            for _ in 0..2 {
                let err = writer.abort().await.unwrap_err();
                assert_eq!(
                    err.context("stored"),
                    Some("unknown"),
                    "awaited {awaited}: {err}"
                );
            }
        });
    }
}

/// AWS answers a write with `If-Match` of a key that does not exist with 404
/// `NoSuchKey` (SeaweedFS with 412): either way the precondition failed.
#[test]
fn an_if_match_write_of_a_missing_key_is_a_failed_precondition() {
    let server = taking_uploads(|seen, _| {
        let missing = || s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "r");
        match (seen.method.as_str(), seen.query.as_str()) {
            ("POST", "uploads") => None,
            // An upload that vanished is not a failed precondition.
            ("POST", q) if q.starts_with("uploadId=") && seen.path.ends_with("/gone") => {
                Some(s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", "r"))
            }
            ("PUT", "") | ("POST", _) if seen.if_match.is_some() => Some(missing()),
            _ => None,
        }
    });
    let op = server.multipart_operator();
    for (what, data) in [("PUT", HELLO.into()), ("multipart", object(6 << 20))] {
        let write = op.write_with("k", data).if_match("\"v1\"");
        let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{what}: {err}");
        assert!(err.to_string().contains("does not exist"), "{what}: {err}");
    }
    assert_eq!(
        completions(&server.seen()),
        1,
        "the multipart write was completed with If-Match"
    );
    let write = op.write_with("gone", object(6 << 20)).if_match("\"v1\"");
    let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("NoSuchUpload"), "{err}");
}

/// A server holding object `a` (5 bytes, ETag `"e"`) and nothing else, that
/// answers a request with `answer` where it gives one: listings are empty,
/// deletes succeed.
fn holding_a(
    answer: impl Fn(&Seen, usize) -> Option<Response<Body>> + Send + Sync + 'static,
) -> FaultServer {
    FaultServer::start(move |seen, n| {
        if let Some(response) = answer(seen, n) {
            return response;
        }
        match seen.method.as_str() {
            "HEAD" if seen.path == "/bucket/a" => with_headers(
                StatusCode::OK,
                &[("content-length", "5"), ("etag", "\"e\"")],
                "",
            ),
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            "GET" => empty_listing(),
            "DELETE" => with_headers(StatusCode::NO_CONTENT, &[], ""),
            _ => s3_error(StatusCode::BAD_REQUEST, "Unexpected", "r"),
        }
    })
}

/// CopyObject can fail after answering 200, with an `<Error>` document after any
/// amount of keep-alive whitespace: the copy fails, and a rename keeps its source.
#[test]
fn a_copy_that_fails_after_200_keeps_the_renamed_source() {
    let server = holding_a(|seen, _| match seen.method.as_str() {
        "PUT" if seen.header("x-amz-copy-source").is_some() => Some(with_headers(
            StatusCode::OK,
            &[],
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}<Error><Code>InternalError</Code>\
                 <Message>copy failed</Message><RequestId>r</RequestId></Error>",
                " ".repeat(2000)
            ),
        )),
        _ => None,
    });
    let op = server.operator(2, Duration::from_secs(10));
    let err = block_on(op.rename("a", "b")).unwrap_err();
    assert!(err.to_string().contains("copy failed"), "{err}");
    let seen = server.seen();
    assert!(seen.iter().all(|s| s.method != "DELETE"), "{seen:?}");
}

/// Credentials fetched with a control character in the access key id (a line
/// break from a file or a secret) fail the request, saying so, before anything is
/// sent; the signer would put them in a header unchecked, a panic on the worker.
/// In the secret or the session token too (a Kubernetes secret with a line break
/// at its end): said, naming which part, not a bare `SignatureDoesNotMatch` or a
/// vague "cannot sign", and not shown.
#[test]
fn a_line_break_in_fetched_credentials_fails_the_request_not_the_process() {
    let server = holding_a(|_, _| None);
    for (key, secret, token, part) in [
        ("AKID\n", "secret", None, "access key id"),
        ("AKID", "SECRETX\n", None, "secret access key"),
        ("AKID", "secret", Some("TOKENX\n"), "session token"),
    ] {
        let op = operator_of(
            S3Builder::new("bucket")
                .endpoint(format!("http://{}", server.addr))
                .credentials_provider(aws_credential_types::Credentials::new(
                    key,
                    secret,
                    token.map(str::to_owned),
                    None,
                    "a file",
                ))
                .retry(RetryPolicy::default().with_max_attempts(1))
                .build()
                .unwrap(),
        );
        let err = block_on(op.read("a")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("control character"), "{shown}");
        assert!(shown.contains(part), "{part}: {shown}");
        assert_eq!(err.context("stage"), Some("credentials"), "{shown}");
        assert!(
            !shown.contains("SECRETX") && !shown.contains("TOKENX"),
            "{shown}"
        );
    }
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

/// A seek back into the chunk the reader is reading is free, as one forward is:
/// reading a file's magic number, then seeking back to its start, read the first
/// chunk again (and dropped the chunks read ahead).
#[test]
fn a_seek_back_within_the_current_chunk_reads_nothing_again() {
    use futures::{AsyncReadExt, AsyncSeekExt};
    let data = object(4 << 20);
    let server = serving_with_one_cut(data.clone(), usize::MAX);
    let op = server.operator(3, Duration::from_secs(10));
    block_on(async {
        let mut reader = op
            .reader_with("obj")
            .chunk_size(1 << 20)
            .prefetch(1)
            .await
            .unwrap();
        let mut magic = [0_u8; 4];
        reader.read_exact(&mut magic).await.unwrap();
        let mut more = vec![0_u8; 1000];
        reader.read_exact(&mut more).await.unwrap();
        reader.seek(std::io::SeekFrom::Start(0)).await.unwrap();
        let mut again = [0_u8; 4];
        reader.read_exact(&mut again).await.unwrap();
        assert_eq!(again, magic);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, data[4..]);
    });
    let from_the_start = server
        .seen()
        .iter()
        .filter(|s| {
            s.range
                .as_deref()
                .is_some_and(|r| r.starts_with("bytes=0-"))
        })
        .count();
    assert_eq!(from_the_start, 1, "{:?}", server.seen());
}

/// A copy is of the version its `HEAD` saw (`x-amz-copy-source-if-match`). Here the
/// source is written (ETag `"f"`) between a rename's `HEAD` and its `CopyObject`,
/// then written back (`"e"` again: the same content) before its conditional
/// `DELETE`: unpinned, the rename copied `"f"` and deleted `"e"`, a version it
/// never copied. Pinned, the copy is refused and made again, of `"e"`. A refusal
/// of the target's own condition (`If-None-Match`) is not copied again.
#[test]
fn a_copy_is_of_the_version_its_head_saw() {
    #[derive(Default)]
    struct Source {
        heads: usize,
        copies: usize,
        etag: String,
        copied: Vec<String>,
    }
    /// Object `a`, written (`"f"`) after the first `HEAD` of it and written back
    /// (`"e"`) after the first copy; `b` is not there.
    fn written_back() -> (FaultServer, Arc<Mutex<Source>>) {
        let source = Arc::new(Mutex::new(Source {
            etag: "\"e\"".into(),
            ..Source::default()
        }));
        let state = Arc::clone(&source);
        let server = holding_a(move |seen, _| {
            let mut a = state.lock();
            match seen.method.as_str() {
                "HEAD" if seen.path == "/bucket/a" => {
                    let answer = with_headers(
                        StatusCode::OK,
                        &[("content-length", "5"), ("etag", a.etag.as_str())],
                        "",
                    );
                    a.heads += 1;
                    if a.heads == 1 {
                        a.etag = "\"f\"".into();
                    }
                    Some(answer)
                }
                "PUT" if seen.header("x-amz-copy-source").is_some() => {
                    let pinned = seen.header("x-amz-copy-source-if-match");
                    let answer = if pinned.is_some_and(|p| p != a.etag) {
                        s3_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", "r")
                    } else {
                        let etag = a.etag.clone();
                        a.copied.push(etag.clone());
                        with_headers(
                            StatusCode::OK,
                            &[],
                            format!("<CopyObjectResult><ETag>{etag}</ETag></CopyObjectResult>"),
                        )
                    };
                    a.copies += 1;
                    if a.copies == 1 {
                        a.etag = "\"e\"".into();
                    }
                    Some(answer)
                }
                "DELETE" if seen.path == "/bucket/a" => {
                    Some(if seen.if_match.as_ref() == Some(&a.etag) {
                        with_headers(StatusCode::NO_CONTENT, &[], "")
                    } else {
                        s3_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", "r")
                    })
                }
                _ => None,
            }
        });
        (server, source)
    }
    // A rename; a copy with `if_not_exists`, whose 412 the target (not there) says
    // was the source's, though the source looks unchanged by then.
    for conditional in [false, true] {
        let (server, source) = written_back();
        let op = server.operator(2, Duration::from_secs(10));
        if conditional {
            let copy = op.copy_with("a", "b").if_not_exists(true);
            block_on(std::future::IntoFuture::into_future(copy)).unwrap();
        } else {
            block_on(op.rename("a", "b")).unwrap();
        }
        assert_eq!(source.lock().copied, ["\"e\""], "{:?}", server.seen());
        let copies = server
            .seen()
            .into_iter()
            .filter(|s| s.header("x-amz-copy-source").is_some())
            .map(|s| s.header("x-amz-copy-source-if-match").map(str::to_owned))
            .collect::<Vec<_>>();
        assert_eq!(copies, [Some("\"e\"".to_owned()), Some("\"e\"".to_owned())]);
    }

    // A copy with `if_not_exists` refused (412) where the target's HEAD answers
    // `head_of_b`: the error, and how many copies were sent.
    let refused_where = |head_of_b: fn() -> Response<Body>| {
        let server = holding_a(move |seen, _| match seen.method.as_str() {
            "PUT" if seen.header("if-none-match").is_some() => Some(s3_error(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "r",
            )),
            "HEAD" if seen.path == "/bucket/b" => Some(head_of_b()),
            _ => None,
        });
        let op = server.operator(2, Duration::from_secs(10));
        let err = block_on(std::future::IntoFuture::into_future(
            op.copy_with("a", "b").if_not_exists(true),
        ))
        .unwrap_err();
        let copies = server
            .seen()
            .into_iter()
            .filter(|s| s.header("x-amz-copy-source").is_some())
            .count();
        (err, copies)
    };
    // The target's condition refused it (the target is there): not copied again.
    let (err, copies) = refused_where(|| {
        with_headers(
            StatusCode::OK,
            &[("content-length", "1"), ("etag", "\"t\"")],
            "",
        )
    });
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(copies, 1);
    // A target that may not be looked at: the 412 stands as the server gave it,
    // saying the target was not looked at (not said to exist).
    let (err, copies) = refused_where(|| s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"));
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert!(err.context("target").is_some(), "{err:?}");
    assert_eq!(copies, 1);

    // A first copy whose answer was lost, a 412 to the next, and a target that
    // cannot be looked at just then: the copy there may be the first one's, and
    // the (temporary) error says so.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let (copies, refused) = (AtomicUsize::new(0), AtomicBool::new(false));
    let server = holding_a(move |seen, _| match seen.method.as_str() {
        "PUT" if seen.header("x-amz-copy-source").is_some() => {
            Some(if copies.fetch_add(1, SeqCst) == 0 {
                stalled()
            } else {
                refused.store(true, SeqCst);
                s3_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed", "r")
            })
        }
        "HEAD" if seen.path == "/bucket/b" && refused.load(SeqCst) => Some(s3_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "r",
        )),
        _ => None,
    });
    let op = server.operator(2, Duration::from_millis(500));
    let err = block_on(std::future::IntoFuture::into_future(
        op.copy_with("a", "b").if_not_exists(true),
    ))
    .unwrap_err();
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err:?}");
}

/// A rename deletes its source only while it is still the version copied
/// (`If-Match` on the DELETE): a version written between the copy and the delete
/// stays, and the rename says so, where it was deleted unseen. A server that does
/// not take the condition deletes without it.
#[test]
fn a_rename_deletes_only_the_version_it_copied() {
    let copied = || {
        with_headers(
            StatusCode::OK,
            &[],
            "<CopyObjectResult><ETag>\"e\"</ETag></CopyObjectResult>",
        )
    };
    // The source was written again after the copy: its ETag is no longer "e".
    let server = holding_a(move |seen, _| match seen.method.as_str() {
        "PUT" if seen.header("x-amz-copy-source").is_some() => Some(copied()),
        "DELETE" if seen.if_match.is_some() => Some(s3_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "r",
        )),
        _ => None,
    });
    let op = server.operator(2, Duration::from_secs(10));
    let err = block_on(op.rename("a", "b")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert!(err.to_string().contains("both names are kept"), "{err}");
    let deletes: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(deletes[0].if_match.as_deref(), Some("\"e\""));
    // Unchanged: deleted, with the condition.
    let server = holding_a(move |seen, _| {
        (seen.method == "PUT" && seen.header("x-amz-copy-source").is_some()).then(copied)
    });
    let op = server.operator(2, Duration::from_secs(10));
    block_on(op.rename("a", "b")).unwrap();
    let seen = server.seen();
    let delete = seen.iter().find(|s| s.method == "DELETE").unwrap();
    assert_eq!(delete.if_match.as_deref(), Some("\"e\""));
    // A server without conditional deletes: deleted without.
    let server = holding_a(move |seen, _| match seen.method.as_str() {
        "PUT" if seen.header("x-amz-copy-source").is_some() => Some(copied()),
        "DELETE" if seen.if_match.is_some() => {
            Some(s3_error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "r"))
        }
        _ => None,
    });
    let op = server.operator(2, Duration::from_secs(10));
    block_on(op.rename("a", "b")).unwrap();
    let deletes: Vec<Option<String>> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.if_match)
        .collect();
    assert_eq!(deletes, [Some("\"e\"".to_owned()), None]);
    // The source gone when its conditional delete came (another rename of it
    // took it first; a 404 to the first attempt): not said to be moved, as two
    // renames of one name would then both succeed. A 404 after an attempt whose
    // answer was lost is the delete's own, done.
    for lost_first in [false, true] {
        let deletes = std::sync::atomic::AtomicUsize::new(0);
        let server = holding_a(move |seen, _| match seen.method.as_str() {
            "PUT" if seen.header("x-amz-copy-source").is_some() => Some(copied()),
            "DELETE" => {
                let first = deletes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                Some(if lost_first && first {
                    stalled()
                } else {
                    s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "r")
                })
            }
            _ => None,
        });
        let op = server.operator(2, Duration::from_secs(2));
        let renamed = block_on(op.rename("a", "b"));
        if lost_first {
            renamed.unwrap();
        } else {
            let err = renamed.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
            assert!(
                err.to_string().contains("the copy to \"b\" is kept"),
                "{err}"
            );
            assert_eq!((err.operation(), err.path()), ("rename", "a"), "{err}");
        }
    }
}

/// A multipart write refused by its checks (a directory has the name) while its
/// upload was being created aborts that upload: none is left behind.
#[test]
fn a_refused_multipart_write_leaves_no_upload_behind() {
    let server = taking_uploads(|seen, _| {
        // `d/` holds an object: `d` is a directory.
        (seen.method == "GET" && !seen.query.contains("uploadId=")).then(|| {
            with_headers(
                StatusCode::OK,
                &[],
                "<ListBucketResult><Contents><Key>d/x</Key><Size>1</Size></Contents></ListBucketResult>",
            )
        })
    });
    let op = server.multipart_operator();
    bucket_found(&op);
    let err = block_on(op.write("d", object(6 << 20))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
    let seen = server.seen();
    let created = seen.iter().filter(|s| s.query == "uploads").count();
    let aborted = aborts(&seen);
    assert_eq!((created, aborted), (1, 1), "{seen:?}");
    assert!(seen.iter().all(|s| !s.query.starts_with("partNumber=")));
}

/// A write given up on while it waits for a place for its next part (one part in
/// flight at a time, read by the server at 1 MiB/s) cancels the part in flight
/// before it aborts the upload: no part is stored after the abort, to be billed
/// with no upload to show for it.
#[test]
fn a_write_given_up_on_stores_no_part_after_its_abort() {
    let reading = Reading {
        bytes_per_second: 1 << 20,
        stop_after: u64::MAX,
    };
    let server = FaultServer::start_reading(Some(reading), |seen, _| {
        match (seen.method.as_str(), seen.query.as_str()) {
            ("POST", "uploads") => upload_created(),
            ("PUT", q) if q.starts_with("partNumber=") => {
                with_headers(StatusCode::OK, &[("etag", "\"p\"")], "")
            }
            ("DELETE", _) => with_headers(StatusCode::NO_CONTENT, &[], ""),
            ("GET", q) if q.contains("uploadId=") => no_such_upload(),
            ("GET", _) => empty_listing(),
            _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
        }
    });
    let op = operator_of(
        server
            .builder(1, Duration::from_secs(30))
            .part_size(5 << 20)
            .multipart_threshold(5 << 20)
            .part_concurrency(1)
            .build()
            .unwrap(),
    );
    let part = 5 << 20;
    let given_up = block_on(async {
        // Given up once part 1 is on its way (its body takes the server 5 s).
        tokio::select! {
            _ = op.write("k", object(3 * part)) => false,
            () = server.head_arrived(|head| head.starts_with("PUT partNumber=1&")) => true,
        }
    });
    assert!(given_up, "the write ended before its first part could");
    let whole_part = |s: &Seen| s.query.starts_with("partNumber=") && s.body.len() == part;
    let seen = server.seen_when(|seen| seen.iter().any(|s| s.method == "DELETE"));
    let aborted = seen
        .iter()
        .position(|s| s.method == "DELETE")
        .expect("the upload was aborted");
    // A part left running would reach the server whole after the abort.
    let seen = server.seen_when_within(Duration::from_secs(5), |seen| {
        seen[aborted..].iter().any(whole_part)
    });
    assert!(
        !seen[aborted..].iter().any(whole_part),
        "a part was stored after the upload's abort: {:?}",
        methods_and_queries(&server)
    );
}

/// A close accepted before the executor shuts down stores every part, though
/// the parts were started by writes that ran on another worker than the close,
/// one whose jobs were all done when the shutdown began: its parts are work the
/// shutdown waits for. They were tasks of that worker's runtime, cancelled when
/// it exited, and the close failed.
#[test]
fn a_close_accepted_before_a_shutdown_stores_parts_started_on_another_worker() {
    let parts = 4;
    let server = taking_uploads(|seen, _| {
        // Long enough for a worker with nothing to do to exit meanwhile.
        seen.query
            .starts_with("partNumber=")
            .then(|| with_headers(StatusCode::OK, &[("etag", "\"p\""), (LATE_MS, "1000")], ""))
    });
    let io = io_executor::Builder::new()
        .name("parts-at-shutdown")
        .worker_threads(std::num::NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let op = server.multipart_operator().with_executor(io.clone());
    let closed = block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        // One chunk a job: the jobs take turns on the two workers.
        for _ in 0..parts {
            writer.write_bytes(object(5 << 20)).await.unwrap();
            writer.ready().await.unwrap();
        }
        let mut close = Box::pin(writer.close());
        let first = futures::FutureExt::now_or_never(close.as_mut());
        assert!(first.is_none(), "the close is under way");
        io.shutdown();
        close.await
    });
    io.blocking_join();
    let meta = closed.expect("the close accepted before the shutdown");
    assert_eq!(meta.content_length(), (parts * (5 << 20)) as u64);
    let seen = server.seen();
    let completion = seen
        .iter()
        .find(|s| s.method == "POST" && s.query == "uploadId=up-1")
        .expect("the upload was completed");
    let listed = String::from_utf8_lossy(&completion.body);
    assert_eq!(listed.matches("<Part>").count(), parts, "{listed}");
    assert_eq!(aborts(&seen), 0, "{:?}", methods_and_queries(&server));
}

/// A part the server refuses fails the writer's next call, whichever it is: not
/// only the call that waits for that part (once 8 parts are in flight, or at
/// `close`), while a slow writer goes on feeding an upload already lost. The
/// upload is aborted and no other part is sent.
#[test]
fn a_refused_part_fails_the_next_write() {
    let server = taking_uploads(|seen, _| {
        (seen.query.starts_with("partNumber=1&"))
            .then(|| s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"))
    });
    let op = server.multipart_operator();
    let err = block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        writer.write_bytes(object(5 << 20)).await.unwrap();
        writer.ready().await.unwrap();
        // Small writes, far from another part, until one fails (or, with the
        // failure never reported, until the guard gives up).
        let guard = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Err(e) = writer.write_bytes(vec![1_u8; 1024]).await {
                break e;
            }
            assert!(
                std::time::Instant::now() < guard,
                "no write reported the refused part: {:?}",
                methods_and_queries(&server)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let seen = server.seen_when(|seen| aborts(seen) > 0);
    let parts = seen.iter().filter(|s| s.query.starts_with("partNumber="));
    assert_eq!(parts.count(), 1, "{:?}", methods_and_queries(&server));
}

/// A server that stores single `PUT`s and never answers them (as one whose
/// answer is lost), and a one-worker executor whose operator writes to it.
fn storing_without_answering() -> (FaultServer, io_executor::Executor, Operator) {
    let server =
        taking_uploads(|seen, _| (seen.method == "PUT" && seen.query.is_empty()).then(stalled));
    let io = io_executor::Builder::new()
        .name("cut-off")
        .worker_threads(std::num::NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op = server
        .operator(1, Duration::from_secs(60))
        .with_executor(io.clone());
    (server, io, op)
}

/// Once the server holds the whole `PUT`, the executor's shutdown deadline passes.
fn deadline_once_put(server: &FaultServer, io: &io_executor::Executor) {
    server.seen_when(|seen| seen.iter().any(|s| s.method == "PUT"));
    assert!(
        !io.blocking_shutdown_timeout(Duration::ZERO),
        "the PUT drained"
    );
}

/// A write that a shutdown deadline cuts off while it runs may have been stored
/// (here the server has it): its `ShutDown` error says `stored` = `unknown`, and
/// that it was cut off, where it said only that the executor shut down.
#[test]
fn a_write_cut_off_by_a_shutdown_deadline_may_be_stored_and_says_so() {
    let (server, io, op) = storing_without_answering();
    let write = op.write("k", HELLO);
    deadline_once_put(&server, &io);
    let err = block_on(write).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
    assert!(err.to_string().contains("cut the operation off"), "{err}");
    io.blocking_join();
}

/// The same for a writer's commit.
#[test]
fn a_commit_cut_off_by_a_shutdown_deadline_may_be_stored_and_says_so() {
    let (server, io, op) = storing_without_answering();
    let err = block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        writer.write_bytes(HELLO).await.unwrap();
        writer.ready().await.unwrap();
        let mut close = Box::pin(writer.close());
        let first = futures::FutureExt::now_or_never(close.as_mut());
        assert!(first.is_none(), "the commit is under way");
        deadline_once_put(&server, &io);
        close.await.unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
    io.blocking_join();
}

/// A read cut off the same way says only that it was cut off.
#[test]
fn a_read_cut_off_by_a_shutdown_deadline_says_nothing_of_storing() {
    let server = FaultServer::start(|_, _| stalled());
    let io = io_executor::Builder::new()
        .name("cut-off-read")
        .worker_threads(std::num::NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op = server
        .operator(1, Duration::from_secs(60))
        .with_executor(io.clone());
    let read = op.read("k");
    server.seen_when(|seen| !seen.is_empty());
    assert!(!io.blocking_shutdown_timeout(Duration::ZERO));
    let err = block_on(read).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
    assert_eq!(err.context("stored"), None, "{err}");
    assert!(err.to_string().contains("cut the operation off"), "{err}");
    io.blocking_join();
}

/// The same, when the abort fails: the refusal says the upload was left behind
/// (`abort_failed`), where it said nothing of it.
#[test]
fn a_refused_multipart_write_whose_abort_fails_says_so() {
    let server = taking_uploads(|seen, _| match seen.method.as_str() {
        "GET" if !seen.query.contains("uploadId=") => Some(with_headers(
            StatusCode::OK,
            &[],
            "<ListBucketResult><Contents><Key>d/x</Key><Size>1</Size></Contents></ListBucketResult>",
        )),
        "DELETE" => Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r")),
        _ => None,
    });
    let op = server.multipart_operator();
    bucket_found(&op);
    let err = block_on(op.write("d", object(6 << 20))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IsADirectory, "{err}");
    let left = err
        .context("abort_failed")
        .expect("the upload left behind is named");
    assert!(left.contains("abort"), "{left}");
}

/// A server holding two parts of upload `up-1`, whose second part is stored but
/// its answer held back; the abort answers `abort`; ListParts of the upload shows
/// the second part to the first `stragglers` listings, then the upload is gone.
fn aborting_server(abort: fn() -> Response<Body>, stragglers: usize) -> FaultServer {
    let listings = std::sync::atomic::AtomicUsize::new(0);
    taking_uploads(
        move |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
            ("PUT", q) if q.starts_with("partNumber=2&") => Some(stalled()),
            ("DELETE", "uploadId=up-1") => Some(abort()),
            ("GET", "max-parts=1&uploadId=up-1")
                if listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < stragglers =>
            {
                Some(with_headers(
                    StatusCode::OK,
                    &[],
                    "<ListPartsResult><UploadId>up-1</UploadId>\
                     <Part><PartNumber>2</PartNumber><ETag>\"p2\"</ETag></Part></ListPartsResult>",
                ))
            }
            _ => None,
        },
    )
}

/// Writes two 5 MiB parts to `server` (the second is stored, its answer held
/// back), then aborts the writer.
fn abort_with_a_part_in_flight(server: &FaultServer) -> storage::Result<()> {
    let op = server.multipart_operator();
    block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        writer.write_bytes(object(11 << 20)).await.unwrap();
        writer.ready().await.unwrap();
        // The bound only ends a failing test.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // Part 1 too (answered at once): a part cancelled by the abort would be
        // logged when the server notices, perhaps after the abort.
        let seen_part = |n: usize| {
            let part = format!("partNumber={n}&");
            move |s: &Seen| s.query.starts_with(&part)
        };
        while !(server.seen().iter().any(seen_part(1)) && server.seen().iter().any(seen_part(2))) {
            assert!(
                std::time::Instant::now() < deadline,
                "parts 1 and 2 never came"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        writer.abort().await
    })
}

/// A part that was being stored when the upload was aborted may land after the
/// abort (S3 says so): the parts are listed after the abort, and the upload is
/// aborted again while any is left, so none is billed.
#[test]
fn an_abort_is_sent_again_while_parts_are_left() {
    let server = aborting_server(|| with_headers(StatusCode::NO_CONTENT, &[], ""), 1);
    abort_with_a_part_in_flight(&server).unwrap();
    let seen = server.seen();
    let listed = seen
        .iter()
        .filter(|s| s.method == "GET" && s.query == "max-parts=1&uploadId=up-1")
        .count();
    let requests: Vec<_> = seen.iter().map(|s| (&s.method, &s.query)).collect();
    assert_eq!((aborts(&seen), listed), (2, 2), "{requests:?}");
    // No part request comes after an abort: not the held part sent again, nor the
    // buffered rest as a part of its own.
    let last_part = seen
        .iter()
        .rposition(|s| s.query.starts_with("partNumber="))
        .unwrap();
    let first_abort = seen.iter().position(|s| s.method == "DELETE").unwrap();
    assert!(last_part < first_abort, "{requests:?}");
}

/// An abort its caller stops waiting for (the future dropped while the server
/// holds the abort's answer) still aborts the upload: the abort goes on in the
/// background, sent again once the held request times out, as a writer dropped
/// without `abort` does, instead of being dropped with the future.
#[test]
fn an_abort_given_up_on_midway_still_aborts_the_upload() {
    let deletes = std::sync::atomic::AtomicUsize::new(0);
    let server = taking_uploads(
        move |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
            ("DELETE", "uploadId=up-1")
                if deletes.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 =>
            {
                Some(stalled())
            }
            _ => None,
        },
    );
    let op = server.multipart_operator_with(3, Duration::from_secs(3));
    block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        writer.write_bytes(object(11 << 20)).await.unwrap();
        writer.ready().await.unwrap();
        let abort = writer.abort();
        tokio::pin!(abort);
        // Given up on once the abort is at the server (first: a test thread
        // that wakes late, after the held abort timed out and was sent again,
        // still gives up, on an abort that then has little left to do).
        tokio::select! {
            biased;
            () = server.head_arrived(|head| head == "DELETE uploadId=up-1") => {}
            result = &mut abort => panic!("the held abort ended: {result:?}"),
        }
    });
    // The bound only ends a failing test.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while aborts(&server.seen()) < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let requests = methods_and_queries(&server);
    assert_eq!(aborts(&server.seen()), 2, "{requests:?}");
}

/// A server whose certificate a private CA signed (as an internal MinIO's, or a
/// proxy that inspects TLS) is trusted once the CA bundle names that CA, given to
/// the builder or in `AWS_CA_BUNDLE`; without it, TLS refuses it. A bundle that
/// cannot be read, or holds no certificate, fails the build naming the file.
#[test]
fn a_ca_bundle_trusts_a_private_certificate_authority() {
    let (ca, acceptor) = common_s3::private_ca();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca).unwrap();

    // An HTTPS server with a certificate that CA signed: every object is HELLO.
    let (runtime, listener, addr) = common_s3::listening();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return; // a client that did not trust us
                };
                let service = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("etag", "\"v\"")
                            .body(Full::new(Bytes::from_static(HELLO.as_bytes())))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let endpoint = format!("https://{addr}");
    let builder = || {
        S3Builder::new("bucket")
            .endpoint(&endpoint)
            .credentials(Credentials::new("key", "secret"))
            .retry(RetryPolicy::default().with_max_attempts(1))
            // Directly, whatever proxy the machine's environment names.
            .proxy_excludes("*")
    };
    let trusted = operator_of(builder().ca_bundle(&bundle).build().unwrap());
    assert_eq!(block_on(trusted.read("k")).unwrap(), HELLO);
    // Untrusted: no attempt mends it, so it is not temporary, and not retried.
    let before = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let untrusted = builder().retry(RetryPolicy::default()).build().unwrap();
    let err = block_on(operator_of(untrusted).read("k")).unwrap_err();
    assert!(format!("{err:?}").contains("UnknownIssuer"), "{err:?}");
    assert!(err.to_string().contains("ca_bundle"), "{err}");
    assert!(!err.is_temporary(), "{err:?}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        before + 1,
        "one attempt"
    );
    // Files that are no bundle.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    for (path, says) in [
        (dir.path().join("missing.pem"), "No such file"),
        (empty, "no certificate"),
    ] {
        let err = builder().ca_bundle(&path).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.to_string().contains(says), "{err}");
    }
}

/// A request timeout too long for the clock (`Duration::MAX`, "none") waits for the
/// answer instead of panicking on the deadline's arithmetic.
#[test]
fn a_request_timeout_without_a_limit_waits_for_the_answer() {
    let server = FaultServer::start(|_, _| with_headers(StatusCode::NOT_FOUND, &[], ""));
    let op = server.operator(1, Duration::MAX);
    let err = block_on(op.stat("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    block_on(op.write("k", HELLO)).unwrap_err();
}

/// `Writer::abort` says when the upload could not be aborted (it is then left
/// to the bucket's lifecycle rules), instead of reporting success.
#[test]
fn an_abort_the_server_refuses_is_an_error() {
    let server = aborting_server(
        || s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-403"),
        0,
    );
    let err = abort_with_a_part_in_flight(&server).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(err.context("upload_id"), Some("up-1"), "{err}");
    assert_eq!(aborts(&server.seen()), 1);
    // Not found, but the bucket, not the upload: not taken for an upload gone.
    let server = aborting_server(
        || s3_error(StatusCode::NOT_FOUND, "NoSuchBucket", "r-404"),
        0,
    );
    let err = abort_with_a_part_in_flight(&server).unwrap_err();
    assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
    assert_eq!(err.context("upload_id"), Some("up-1"), "{err}");
}

/// A listing page marked truncated must say where the rest starts, and somewhere
/// new: without a token the listing would end early, and with a token it gave
/// before (the same again, or two in turn) it would never end. Each is an error.
#[test]
fn a_listing_page_that_cannot_be_followed_is_an_error() {
    for token in [None, Some("t1"), Some("t1|t2")] {
        let server = FaultServer::start(move |seen, _| {
            let next = token.map_or_else(String::new, |t| {
                // `t1|t2`: t2 after t1, t1 after t2.
                let t = match t.split_once('|') {
                    Some((a, b)) if seen.query.contains(&format!("continuation-token={a}")) => b,
                    Some((a, _)) => a,
                    None => t,
                };
                format!("<NextContinuationToken>{t}</NextContinuationToken>")
            });
            with_headers(
                StatusCode::OK,
                &[],
                format!(
                    "<ListBucketResult><IsTruncated>true</IsTruncated>{next}\
                     <Contents><Key>dir/a</Key><Size>1</Size></Contents></ListBucketResult>"
                ),
            )
        });
        // On its own thread, so that a listing without end fails the test instead
        // of hanging it.
        let op = server.operator(1, Duration::from_secs(10));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || drop(tx.send(block_on(op.list("dir/")))));
        let listed = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the listing never ended");
        let err = listed.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{token:?}: {err}");
        assert!(err.to_string().contains("continuation token"), "{err}");
        assert!(
            server.seen().len() <= 3,
            "{token:?}: {} pages",
            server.seen().len()
        );
    }
}

/// A server where conditional `PUT`s meet `409 ConditionalRequestConflict` (another
/// conditional write to the key under way) `conflicts` times, then succeed.
fn conflicting_server(conflicts: usize) -> FaultServer {
    let puts = std::sync::atomic::AtomicUsize::new(0);
    FaultServer::start(move |seen, _| match seen.method.as_str() {
        "PUT" if puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < conflicts => {
            s3_error(StatusCode::CONFLICT, "ConditionalRequestConflict", "r-409")
        }
        "PUT" => with_headers(StatusCode::OK, &[("etag", "\"v2\"")], ""),
        "GET" => empty_listing(),
        "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
        _ => s3_error(StatusCode::BAD_REQUEST, "Unexpected", "r"),
    })
}

/// S3 answers a conditional write with 409 when another conditional write to the
/// key is under way, and asks for it to be sent again: it says nothing of whether
/// the key exists, so it is neither `AlreadyExists` nor `PreconditionFailed`.
#[test]
fn a_conditional_write_that_meets_a_conflict_is_sent_again() {
    let server = conflicting_server(2);
    let op = server.operator(4, Duration::from_secs(10));
    let write = op.write_with("k", HELLO).if_not_exists(true);
    let meta = block_on(std::future::IntoFuture::into_future(write)).unwrap();
    assert_eq!(meta.etag(), Some("\"v2\""));
    let puts = server.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts, 3, "two conflicts, then the write");

    let server = conflicting_server(usize::MAX);
    let op = server.operator(3, Duration::from_secs(10));
    for write in [
        op.write_with("k", HELLO).if_not_exists(true),
        op.write_with("k", HELLO).if_match("\"v1\""),
    ] {
        let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
        assert!(err.is_temporary(), "{err}");
        assert_eq!(err.context("code"), Some("ConditionalRequestConflict"));
        assert_eq!(err.context("attempts"), Some("3"), "{err}");
        assert!(err.to_string().contains("under way"), "{err}");
        assert_eq!((err.operation(), err.path()), ("write_with", "k"));
    }
    let puts = server.seen().iter().filter(|s| s.method == "PUT").count();
    assert_eq!(puts, 6, "three attempts each");
}

/// A server that takes multipart uploads (upload `up-1`, every part) and answers
/// every completion with `refusal()`.
fn completion_refused_with(refusal: fn() -> Response<Body>) -> FaultServer {
    taking_uploads(move |seen, _| {
        (seen.method == "POST" && seen.query.starts_with("uploadId=")).then(refusal)
    })
}

/// How many CompleteMultipartUpload requests the server saw.
fn completions(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| s.method == "POST" && s.query.starts_with("uploadId="))
        .count()
}

/// A multipart write's completion that meets another conditional write is not
/// sent again: S3 asks for the whole upload to be made anew. The upload is
/// aborted and the caller gets the conflict, which a retry of the write may cure.
#[test]
fn a_multipart_completion_that_meets_a_conflict_is_not_sent_again() {
    let server = completion_refused_with(|| {
        s3_error(StatusCode::CONFLICT, "ConditionalRequestConflict", "r-409")
    });
    let op = server.multipart_operator();
    let write = op.write_with("k", object(6 << 20)).if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("code"), Some("ConditionalRequestConflict"));
    let seen = server.seen();
    assert_eq!((completions(&seen), aborts(&seen)), (1, 1), "{seen:?}");
}

/// Writers and listers need no request to be made, and are refused after a
/// shutdown all the same; nothing reaches the server.
#[test]
fn writers_and_listers_made_after_a_shutdown_are_refused() {
    let server = FaultServer::start(|_, _| s3_error(StatusCode::BAD_REQUEST, "Unexpected", "r"));
    let executor = io_executor::Builder::new()
        .name("s3-faults-shut")
        .worker_threads(std::num::NonZeroUsize::new(1).unwrap())
        .blocking_threads(std::num::NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op = server
        .operator(1, Duration::from_secs(10))
        .with_executor(executor.clone());
    executor.shutdown();
    executor.blocking_join();
    let writer = block_on(op.writer("k")).map(drop).unwrap_err();
    let lister = block_on(op.lister("d/")).map(drop).unwrap_err();
    assert_eq!(writer.kind(), ErrorKind::ShutDown, "{writer}");
    assert_eq!(lister.kind(), ErrorKind::ShutDown, "{lister}");
    assert!(server.seen().is_empty());
}

/// The id a write carries in its object's user metadata.
const WRITE_ID: &str = "x-amz-meta-dio-write-id";

/// A server that stores the first attempt of a write (a `PUT`, or a multipart
/// upload's completion) but loses its answer, and refuses the next attempt with
/// `refusal`. The object then carries the id the write was sent with if
/// `ours`, else another writer's. `HEAD`s before the write find nothing; after it,
/// they find the object, or are denied if `head_denied` (a policy that lets the
/// client write but not read).
fn losing_server(ours: bool, refusal: fn() -> Response<Body>, head_denied: bool) -> FaultServer {
    let id = Mutex::new(None::<String>);
    let commits = std::sync::atomic::AtomicUsize::new(0);
    taking_uploads(move |seen, _| {
        let commit = |seen: &Seen| {
            if commits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
                return refusal();
            }
            if ours {
                // A PUT's own id; a completion's upload was created with one.
                if let Some(sent) = seen.header(WRITE_ID) {
                    *id.lock() = Some(sent.to_owned());
                }
            } else {
                *id.lock() = Some("another-writer".to_owned());
            }
            stalled()
        };
        match (seen.method.as_str(), seen.query.as_str()) {
            ("POST", "uploads") => {
                *id.lock() = seen.header(WRITE_ID).map(str::to_owned);
                Some(upload_created())
            }
            ("POST", q) if q.starts_with("uploadId=") => Some(commit(seen)),
            ("PUT", "") => Some(commit(seen)),
            ("HEAD", _) if head_denied && commits.load(std::sync::atomic::Ordering::SeqCst) > 0 => {
                Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-403"))
            }
            ("HEAD", _) => match id.lock().clone() {
                Some(id) if commits.load(std::sync::atomic::Ordering::SeqCst) > 0 => {
                    Some(with_headers(
                        StatusCode::OK,
                        &[
                            ("content-length", "11"),
                            ("etag", "\"stored\""),
                            (WRITE_ID, &id),
                        ],
                        "",
                    ))
                }
                _ => None,
            },
            _ => None,
        }
    })
}

fn precondition_failed() -> Response<Body> {
    s3_error(
        StatusCode::PRECONDITION_FAILED,
        "PreconditionFailed",
        "r-412",
    )
}

/// A fixed answer.
type Answer = fn() -> Response<Body>;

fn no_such_upload() -> Response<Body> {
    s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", "r-404")
}

/// A conditional `PUT` whose first attempt was stored but whose answer was lost is
/// sent again, and fails its precondition because of that very attempt. The object
/// carries the write's id (in its user metadata): the write is done. An object
/// carrying another id is another writer's, and the write is refused.
#[test]
fn a_conditional_write_whose_answer_was_lost_is_known_by_its_id() {
    for ours in [true, false] {
        for if_match in [false, true] {
            let server = losing_server(ours, precondition_failed, false);
            let op = server.operator(3, Duration::from_secs(2));
            let write = op.write_with("k", HELLO);
            let write = if if_match {
                write.if_match("\"v0\"")
            } else {
                write.if_not_exists(true)
            };
            let result = block_on(std::future::IntoFuture::into_future(write));
            let seen = server.seen();
            let ids: Vec<_> = seen
                .iter()
                .filter(|s| s.method == "PUT")
                .map(|s| s.header(WRITE_ID).unwrap().to_owned())
                .collect();
            // The lost attempt, then the refused one (more only if an answer came
            // later than the client's timeout on a loaded machine).
            assert!(ids.len() >= 2, "{ids:?}");
            assert!(
                ids.iter().all(|id| *id == ids[0]),
                "one id for every attempt"
            );
            assert!(ids[0].len() >= 32, "{ids:?}");
            if ours {
                let meta = result.unwrap();
                assert_eq!(meta.etag(), Some("\"stored\""));
                assert_eq!(meta.content_length(), 11);
            } else {
                let err = result.unwrap_err();
                let kind = if if_match {
                    ErrorKind::PreconditionFailed
                } else {
                    ErrorKind::AlreadyExists
                };
                assert_eq!(err.kind(), kind, "{err}");
                assert_eq!(err.path(), "k");
            }
        }
    }
    // Two writes get two ids; an unconditional PUT, sent again as it is, none.
    let server = multipart_server();
    let op = server.operator(1, Duration::from_secs(10));
    for _ in 0..2 {
        let write = op.write_with("k", HELLO).if_not_exists(true);
        block_on(std::future::IntoFuture::into_future(write)).unwrap();
    }
    block_on(op.write("k", HELLO)).unwrap();
    let puts: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .map(|s| s.header(WRITE_ID).map(str::to_owned))
        .collect();
    assert_eq!(puts.len(), 3);
    assert!(puts[0].is_some() && puts[1].is_some() && puts[0] != puts[1]);
    assert_eq!(puts[2], None);
}

/// A conditional `PUT` none of whose answers came back may have been stored: the
/// object is looked at, and the write is done if it carries the write's id.
/// Otherwise the timeout stands, saying that whether the write was stored is
/// unknown (its last attempt may yet be committed).
#[test]
fn a_conditional_write_out_of_attempts_is_known_by_its_id() {
    for head in ["ours", "missing", "failing"] {
        let id = Mutex::new(None::<String>);
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "PUT" => {
                *id.lock() = seen.header(WRITE_ID).map(str::to_owned);
                stalled()
            }
            "GET" => empty_listing(),
            "HEAD" => match (head, id.lock().clone()) {
                ("ours", Some(id)) => with_headers(
                    StatusCode::OK,
                    &[
                        ("content-length", "11"),
                        ("etag", "\"stored\""),
                        (WRITE_ID, &id),
                    ],
                    "",
                ),
                ("failing", Some(_)) => s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"),
                _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
            },
            _ => s3_error(StatusCode::BAD_REQUEST, "Unexpected", "r"),
        });
        let op = server.operator(2, Duration::from_secs(2));
        let write = op.write_with("k", HELLO).if_not_exists(true);
        let result = block_on(std::future::IntoFuture::into_future(write));
        let puts = |seen: &[Seen]| seen.iter().filter(|s| s.method == "PUT").count();
        let puts = puts(&server.seen_when(|seen| puts(seen) >= 2));
        assert_eq!(puts, 2, "{head}");
        match head {
            "ours" => assert_eq!(result.unwrap().etag(), Some("\"stored\"")),
            _ => {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
                // Not found is no proof: the last attempt may still be committed.
                assert_eq!(err.context("stored"), Some("unknown"), "{err}");
            }
        }
    }
}

/// A conditional write refused at its first attempt is refused: no earlier attempt
/// of it can have been stored, and the object is not looked at.
#[test]
fn a_write_refused_at_its_first_attempt_is_not_checked() {
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "PUT" => precondition_failed(),
        "GET" => empty_listing(),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(3, Duration::from_secs(10));
    let write = op.write_with("k", HELLO).if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    // Said in the caller's terms, with the answer that said it.
    assert_eq!(err.context("status"), Some("412"), "{err}");
    assert_eq!(err.context("request_id"), Some("r-412"), "{err}");
    assert_eq!(err.context("stored"), None, "{err}");
    let seen = server.seen();
    let put = seen.iter().position(|s| s.method == "PUT").unwrap();
    assert!(seen[put..].iter().all(|s| s.method != "HEAD"), "{seen:?}");
}

/// A conditional write refused after an attempt whose answer was lost, where the
/// object cannot be looked at (the client may write but not read it), may have
/// been refused because of that very attempt: the refusal says the write may be
/// stored, and an abort of the writer reports it, for a `PUT` and a multipart
/// upload's completion alike.
#[test]
fn a_refusal_after_a_lost_answer_that_cannot_be_checked_may_be_the_write_itself() {
    for multipart in [false, true] {
        for if_match in [false, true] {
            let server = losing_server(true, precondition_failed, true);
            let (op, body) = if multipart {
                let op = server.multipart_operator_with(3, Duration::from_secs(3));
                (op, object(6 << 20))
            } else {
                (
                    server.operator(3, Duration::from_secs(2)),
                    Bytes::from(HELLO),
                )
            };
            let writer = if if_match {
                op.writer_with("k").if_match("\"v0\"")
            } else {
                op.writer_with("k").if_not_exists(true)
            };
            let mut writer = block_on(std::future::IntoFuture::into_future(writer)).unwrap();
            block_on(writer.write_bytes(body)).unwrap();
            let err = block_on(writer.close()).unwrap_err();
            let case = format!("multipart {multipart}, if_match {if_match}");
            let kind = if if_match {
                ErrorKind::PreconditionFailed
            } else {
                ErrorKind::AlreadyExists
            };
            assert_eq!(err.kind(), kind, "{case}: {err}");
            assert_eq!(err.path(), "k", "{case}");
            assert_eq!(err.context("stored"), Some("unknown"), "{case}: {err}");
            assert_eq!(err.context("request_id"), Some("r-412"), "{case}: {err}");
            assert!(
                err.to_string().contains("this write's own"),
                "{case}: {err}"
            );
            // Giving the writer up cannot undo a write that may be stored.
            let aborted = block_on(writer.abort()).unwrap_err();
            assert_eq!(
                aborted.context("stored"),
                Some("unknown"),
                "{case}: {aborted}"
            );
        }
    }
}

/// A multipart upload's completion whose answer was lost, sent again, finds its
/// upload gone (`NoSuchUpload`), or fails its precondition. If the object carries
/// the id the upload was created with, the write is done; if not, the error stands.
#[test]
fn a_multipart_completion_whose_answer_was_lost_is_known_by_its_id() {
    type Refusal = fn() -> Response<Body>;
    let refusals: [(Refusal, bool, ErrorKind); 3] = [
        (no_such_upload, false, ErrorKind::NotFound),
        (no_such_upload, true, ErrorKind::NotFound),
        (precondition_failed, true, ErrorKind::AlreadyExists),
    ];
    for (refusal, conditional, refused) in refusals {
        for ours in [true, false] {
            let server = losing_server(ours, refusal, false);
            let op = server.multipart_operator_with(3, Duration::from_secs(3));
            let write = op
                .write_with("k", object(6 << 20))
                .if_not_exists(conditional);
            let result = block_on(std::future::IntoFuture::into_future(write));
            let seen = server.seen();
            assert!(
                completions(&seen) >= 2,
                "the lost completion, then the refused one"
            );
            let created = seen.iter().find(|s| s.query == "uploads").unwrap();
            assert!(created.header(WRITE_ID).is_some_and(|id| id.len() >= 32));
            if ours {
                assert_eq!(result.unwrap().etag(), Some("\"stored\""));
                assert_eq!(aborts(&seen), 0, "{seen:?}");
            } else {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), refused, "{err}");
                assert_eq!(err.path(), "k");
            }
        }
    }
}

/// `read_ranges_with(..).if_match(etag)` asks for one version: when the object is
/// replaced between the open and the range reads (S3 pins the reads to the opened
/// ETag, and they fail), the call fails at once instead of reading the new version,
/// which its condition refuses anyway. With `if_match("*")`, which names no version,
/// the call is retried (at most three opens), as without conditions.
#[test]
fn a_read_of_one_version_is_not_retried_into_another() {
    let server = replaced_after_its_head();
    let op = server.operator(1, Duration::from_secs(10));
    let ranges = vec![0..100, 3_000_000..3_000_100];
    // The open is a HEAD (with the caller's If-Match); the reads, GETs pinned to
    // the ETag it found.
    let opens = |server: &FaultServer| server.seen().iter().filter(|s| s.method == "HEAD").count();
    let pinned = op.read_ranges_with("k", ranges.clone()).if_match("\"v1\"");
    let err = block_on(std::future::IntoFuture::into_future(pinned)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert_eq!(opens(&server), 1, "{:?}", server.seen());

    let before = opens(&server);
    // The version held to was ours, not the caller's: not their precondition.
    let any = op.read_ranges_with("k", ranges).if_match("*");
    let err = block_on(std::future::IntoFuture::into_future(any)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("changed"), Some("while read"), "{err}");
    assert!(err.to_string().contains("kept changing"), "{err}");
    assert_eq!(opens(&server) - before, 3, "{:?}", server.seen());
}

/// A 200 whose result document never came (only keep-alive whitespace, then the
/// end of the body, as a connection closed early ends one without a length) is
/// not a result: the copy fails and a rename keeps its source; a bulk delete
/// deletes nothing for sure.
#[test]
fn an_answer_without_its_result_document_is_an_error() {
    let server = holding_a(|seen, _| match seen.method.as_str() {
        "PUT" | "POST" => Some(with_headers(
            StatusCode::OK,
            &[],
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}",
                " ".repeat(300)
            ),
        )),
        _ => None,
    });
    let op = server.operator(2, Duration::from_secs(10));
    let err = block_on(op.rename("a", "b")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
    assert!(err.to_string().contains("<CopyObjectResult>"), "{err}");
    let seen = server.seen();
    assert!(seen.iter().all(|s| s.method != "DELETE"), "{seen:?}");
    let results = block_on(op.delete_many(["x", "y"])).unwrap();
    for result in &results {
        let err = result.as_ref().unwrap_err();
        assert!(err.to_string().contains("<DeleteResult>"), "{err}");
    }
}

/// Deleting a key that is not there is done, as on S3, also on a store that says
/// `NoSuchKey` (or a bare 404) where S3 answers 204, alone or in a bulk delete; a
/// missing bucket is still an error.
#[test]
fn a_delete_answered_no_such_key_is_done_and_no_such_bucket_is_not() {
    let server = FaultServer::start(|seen, _| match (seen.method.as_str(), seen.path.as_str()) {
        ("DELETE", "/bucket/gone") => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "r-1"),
        ("DELETE", "/bucket/bare") => full(StatusCode::NOT_FOUND, ""),
        ("DELETE", _) => s3_error(StatusCode::NOT_FOUND, "NoSuchBucket", "r-2"),
        _ => with_headers(
            StatusCode::OK,
            &[("x-amz-request-id", "r-bulk")],
            "<DeleteResult><Error><Key>gone</Key><Code>NoSuchKey</Code>\
             <Message>missing</Message></Error><Error><Key>other</Key>\
             <Code>NoSuchBucket</Code><Message>no bucket</Message></Error></DeleteResult>",
        ),
    });
    let op = server.operator(1, Duration::from_secs(10));
    block_on(op.delete("gone")).unwrap();
    block_on(op.delete("bare")).unwrap();
    let err = block_on(op.delete("other")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
    let results = block_on(op.delete_many(["gone", "other"])).unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.context("code"), Some("NoSuchBucket"), "{err}");
    // The answer that named it failed names itself too.
    assert_eq!(err.context("request_id"), Some("r-bulk"), "{err}");
}

/// A bulk delete whose answer says a key failed for now (`SlowDown`, as S3 says
/// it under load) sends that key again, alone, after a pause; the others are done.
#[test]
fn a_bulk_delete_sends_again_the_keys_it_was_told_to_slow_down_for() {
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&posts);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "POST" if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => full(
            StatusCode::OK,
            "<DeleteResult><Error><Key>b</Key><Code>SlowDown</Code>\
             <Message>Please reduce your request rate.</Message></Error></DeleteResult>",
        ),
        "POST" => full(StatusCode::OK, "<DeleteResult></DeleteResult>"),
        _ => full(StatusCode::NO_CONTENT, ""),
    });
    let op = server.operator(3, Duration::from_secs(10));
    let results = block_on(op.delete_many(["a", "b", "c"])).unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let bodies: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| String::from_utf8_lossy(&s.body).into_owned())
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(
        bodies[1].contains("<Key>b</Key>")
            && !bodies[1].contains("<Key>a</Key>")
            && !bodies[1].contains("<Key>c</Key>"),
        "{bodies:?}"
    );
}

/// `remove_all` past a listing page with no keys that says more follow (a server
/// may send one): the keys after it are deleted, not left with `Ok`.
#[test]
fn remove_all_goes_past_an_empty_page_that_says_more_follow() {
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = std::sync::Arc::clone(&deleted);
    let server = FaultServer::start(move |seen, _| {
        let gone = done.load(std::sync::atomic::Ordering::SeqCst);
        match seen.method.as_str() {
            "GET" if seen.query.contains("continuation-token=t1") && !gone => full(
                StatusCode::OK,
                "<ListBucketResult><IsTruncated>false</IsTruncated>\
                 <Contents><Key>d/x</Key><Size>1</Size></Contents></ListBucketResult>",
            ),
            "GET" if !gone => full(
                StatusCode::OK,
                "<ListBucketResult><IsTruncated>true</IsTruncated>\
                 <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>",
            ),
            "GET" => empty_listing(),
            "POST" => {
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                full(StatusCode::OK, "<DeleteResult></DeleteResult>")
            }
            _ => full(StatusCode::NO_CONTENT, ""),
        }
    });
    let op = server.operator(1, Duration::from_secs(10));
    block_on(op.remove_all("d/")).unwrap();
    let deletes: Vec<String> = server
        .seen()
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| String::from_utf8_lossy(&s.body).into_owned())
        .collect();
    assert_eq!(deletes.len(), 1, "nothing deleted: {deletes:?}");
    assert!(deletes[0].contains("<Key>d/x</Key>"), "{deletes:?}");
}

/// Each fresh listing `remove_all` makes after a delete may start with the same
/// empty page that says more follow, with the same token (a server whose tokens
/// are deterministic): that is a new listing, not a loop, and it goes on to the
/// end (it failed as "a continuation token it gave before" after the first
/// batch).
#[test]
fn remove_all_lists_afresh_after_each_delete_whatever_token_it_met_before() {
    let deletes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::clone(&deletes);
    let server = FaultServer::start(move |seen, _| {
        let gone = done.load(std::sync::atomic::Ordering::SeqCst);
        match seen.method.as_str() {
            "GET" if seen.query.contains("continuation-token=t1") && gone < 2 => full(
                StatusCode::OK,
                format!(
                    "<ListBucketResult><IsTruncated>true</IsTruncated>\
                     <NextContinuationToken>t2</NextContinuationToken>\
                     <Contents><Key>d/x{gone}</Key><Size>1</Size></Contents></ListBucketResult>"
                ),
            ),
            "GET" if gone < 2 => full(
                StatusCode::OK,
                "<ListBucketResult><IsTruncated>true</IsTruncated>\
                 <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>",
            ),
            "GET" => empty_listing(),
            // The listed keys, in a batch or one by one.
            "POST" => {
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                full(StatusCode::OK, "<DeleteResult></DeleteResult>")
            }
            "DELETE" if seen.path.starts_with("/bucket/d/x") => {
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                full(StatusCode::NO_CONTENT, "")
            }
            _ => full(StatusCode::NO_CONTENT, ""),
        }
    });
    let op = server.operator(1, Duration::from_secs(10));
    block_on(op.remove_all("d/")).unwrap();
    assert_eq!(deletes.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A first listing page with no keys that says more follow (AWS, GCS and MinIO
/// send such pages when asked for few keys) is not "nothing here": `stat` of the
/// directory finds it, `delete` of it is refused as not empty (and sends no
/// DELETE), and a listing beside an object of the directory's name lists what
/// follows, where they said `NotFound`, deleted the marker, and `NotADirectory`.
#[test]
fn an_empty_first_page_that_says_more_follow_is_not_an_empty_directory() {
    for file_too in [false, true] {
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "GET" if seen.query.contains("continuation-token=t1") => full(
                StatusCode::OK,
                "<ListBucketResult><IsTruncated>false</IsTruncated>\
                 <Contents><Key>d/x</Key><Size>1</Size></Contents></ListBucketResult>",
            ),
            "GET" => full(
                StatusCode::OK,
                "<ListBucketResult><IsTruncated>true</IsTruncated>\
                 <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>",
            ),
            "HEAD" if file_too && seen.path == "/bucket/d" => with_headers(
                StatusCode::OK,
                &[("content-length", "1"), ("etag", "\"f\"")],
                "",
            ),
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => full(StatusCode::NO_CONTENT, ""),
        });
        let op = server.operator(1, Duration::from_secs(10));
        let listed: Vec<String> = block_on(op.list("d/"))
            .unwrap()
            .into_iter()
            .map(|e| e.path().to_owned())
            .collect();
        assert_eq!(listed, ["d/x"], "file_too: {file_too}");
        if file_too {
            continue;
        }
        assert!(block_on(op.stat("d/")).unwrap().is_dir());
        let err = block_on(op.delete("d/")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DirectoryNotEmpty, "{err}");
        assert!(
            server.seen().iter().all(|s| s.method != "DELETE"),
            "{:?}",
            server.seen()
        );
    }
    // Pages with nothing on them to the end, beside an object `d`: `d/` is not a
    // directory, however many empty pages say so.
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "GET" if seen.query.contains("continuation-token=t1") => full(
            StatusCode::OK,
            "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        ),
        "GET" => full(
            StatusCode::OK,
            "<ListBucketResult><IsTruncated>true</IsTruncated>\
             <NextContinuationToken>t1</NextContinuationToken></ListBucketResult>",
        ),
        _ => with_headers(
            StatusCode::OK,
            &[("content-length", "1"), ("etag", "\"f\"")],
            "",
        ),
    });
    let err = block_on(server.operator(1, Duration::from_secs(10)).list("d/")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotADirectory, "{err}");
}

/// `remove_all` of keys the server says it deleted but lists again every time (a
/// listing that does not name a key as it is stored) ends with an error naming
/// the key, never deletes and lists for ever, nor returns `Ok` with the keys
/// there, whether or not the listing says more follow; a key the server fails to
/// delete is named too.
#[test]
fn remove_all_of_keys_that_do_not_go_away_ends() {
    let truncated = "<ListBucketResult><IsTruncated>true</IsTruncated>\
                     <NextContinuationToken>t</NextContinuationToken>\
                     <Contents><Key>d/stuck</Key><Size>1</Size></Contents>\
                     <Contents><Key>d/locked</Key><Size>1</Size></Contents>\
                     </ListBucketResult>";
    let whole = "<ListBucketResult><IsTruncated>false</IsTruncated>\
                 <Contents><Key>d/stuck</Key><Size>1</Size></Contents>\
                 <Contents><Key>d/locked</Key><Size>1</Size></Contents>\
                 </ListBucketResult>";
    for (listing, refused) in [
        (truncated, false),
        (truncated, true),
        (whole, false),
        (whole, true),
    ] {
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "GET" => full(StatusCode::OK, listing),
            "POST" if refused => full(
                StatusCode::OK,
                "<DeleteResult><Error><Key>d/locked</Key><Code>AccessDenied</Code>\
                 <Message>no</Message></Error></DeleteResult>",
            ),
            "POST" => full(StatusCode::OK, "<DeleteResult></DeleteResult>"),
            _ => full(StatusCode::NO_CONTENT, ""),
        });
        let op = server.operator(1, Duration::from_secs(10));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(block_on(op.remove_all("d/"))));
        let err = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("remove_all did not end")
            .unwrap_err();
        if refused {
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
            assert_eq!(err.context("key"), Some("d/locked"), "{err}");
        } else {
            assert_eq!(err.kind(), ErrorKind::Unexpected, "{err}");
            assert_eq!(err.context("key"), Some("d/stuck"), "{err}");
        }
    }
}

/// `remove_all` confirms with one more listing that what it deleted is gone, and
/// keeps a key written meanwhile (as a write after an object store's listing
/// keeps its key): it neither deletes it nor lists on for ever.
#[test]
fn remove_all_keeps_a_key_written_meanwhile() {
    let listings = std::sync::atomic::AtomicUsize::new(0);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "GET" => {
            let key = match listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => "d/old",
                _ => "d/new",
            };
            full(
                StatusCode::OK,
                format!(
                    "<ListBucketResult><IsTruncated>false</IsTruncated>\
                     <Contents><Key>{key}</Key><Size>1</Size></Contents></ListBucketResult>"
                ),
            )
        }
        "POST" => full(StatusCode::OK, "<DeleteResult></DeleteResult>"),
        _ => full(StatusCode::NO_CONTENT, ""),
    });
    let op = server.operator(1, Duration::from_secs(10));
    block_on(op.remove_all("d/")).unwrap();
    let seen = server.seen();
    let deletes: Vec<_> = seen.iter().filter(|s| s.method == "POST").collect();
    assert_eq!(deletes.len(), 1, "{:?}", methods_and_queries(&server));
    let body = String::from_utf8_lossy(&deletes[0].body);
    assert!(body.contains("d/old") && !body.contains("d/new"), "{body}");
    assert_eq!(seen.iter().filter(|s| s.method == "GET").count(), 2);
}

/// SeaweedFS's `start-after` compares path segments and skips keys S3 would list:
/// a listing from an offset does not send it there, and it is known for SeaweedFS
/// behind a proxy that rewrites the `Server` header too (nginx does), by the
/// `Seaweed-*` headers of its object answers. Another server gets it.
#[test]
fn a_listing_from_an_offset_sends_start_after_only_where_the_server_follows_s3() {
    for (server_header, seaweed, sent) in [
        ("AmazonS3", false, true),
        ("SeaweedFS 4.48", false, false),
        ("nginx", true, false),
    ] {
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "HEAD" => {
                let mut headers = vec![
                    ("server", server_header),
                    ("content-length", "1"),
                    ("etag", "\"e\""),
                ];
                if seaweed {
                    headers.push(("seaweed-x-amz-etag", "e"));
                }
                with_headers(StatusCode::OK, &headers, "")
            }
            _ => with_headers(
                StatusCode::OK,
                &[("server", server_header)],
                "<ListBucketResult><Contents><Key>b</Key><Size>1</Size></Contents>\
                 </ListBucketResult>",
            ),
        });
        let op = server.operator(1, Duration::from_secs(10));
        block_on(op.stat("a")).unwrap();
        let listed = block_on(async {
            let lister = op.lister_with("").start_after("a").await?;
            futures_util::TryStreamExt::try_collect::<Vec<_>>(lister).await
        })
        .unwrap();
        assert_eq!(listed.len(), 1, "{server_header}: {listed:?}");
        let list = server
            .seen()
            .into_iter()
            .find(|s| s.method == "GET")
            .unwrap();
        assert_eq!(
            list.query.contains("start-after"),
            sent,
            "{server_header} (seaweed headers: {seaweed}): {}",
            list.query
        );
    }
}

/// A listing that lags behind deletes (some S3-compatible stores) lists a deleted
/// key once more: `remove_all` deletes it again and ends, done.
#[test]
fn remove_all_behind_a_lagging_listing_ends_done() {
    let listing = "<ListBucketResult><IsTruncated>true</IsTruncated>\
                   <NextContinuationToken>t</NextContinuationToken>\
                   <Contents><Key>d/late</Key><Size>1</Size></Contents>\
                   </ListBucketResult>";
    let listings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen_listings = Arc::clone(&listings);
    let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
        "GET" if seen_listings.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 => {
            full(StatusCode::OK, listing)
        }
        "GET" => full(StatusCode::OK, "<ListBucketResult></ListBucketResult>"),
        "POST" => full(StatusCode::OK, "<DeleteResult></DeleteResult>"),
        _ => full(StatusCode::NO_CONTENT, ""),
    });
    let op = server.operator(1, Duration::from_secs(10));
    block_on(op.remove_all("d/")).unwrap();
    assert_eq!(listings.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// A conditional copy carries no write id: refused after an attempt whose answer
/// was lost, it says the target may hold this very copy, and a rename keeps its
/// source.
#[test]
fn a_conditional_copy_whose_answer_was_lost_may_be_stored() {
    // The target, once the first copy (whose answer is lost) stored it.
    let target = || {
        with_headers(
            StatusCode::OK,
            &[("content-length", "5"), ("etag", "\"e\"")],
            "",
        )
    };
    let copies = std::sync::atomic::AtomicUsize::new(0);
    let server = holding_a(move |seen, _| match seen.method.as_str() {
        "PUT" if seen.header("x-amz-copy-source").is_some() => {
            match copies.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Some(stalled()),
                _ => Some(precondition_failed()),
            }
        }
        "HEAD" if seen.path == "/bucket/b" => Some(target()),
        _ => None,
    });
    let op = server.operator(3, Duration::from_secs(2));
    let rename = op.rename_with("a", "b").if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(rename)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
    let seen = server.seen();
    assert!(seen.iter().all(|s| s.method != "DELETE"), "{seen:?}");
    // Refused at its first attempt, it is plainly the target's condition.
    let server = holding_a(move |seen, _| match seen.method.as_str() {
        "PUT" => Some(precondition_failed()),
        "HEAD" if seen.path == "/bucket/b" => Some(target()),
        _ => None,
    });
    let op = server.operator(3, Duration::from_secs(2));
    let copy = op.copy_with("a", "b").if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(copy)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(err.context("stored"), None, "{err}");
}

/// A server holding `src` (20 MiB, ETag `"v1"`) that answers every UploadPartCopy
/// with `part()`: for multipart copies of it to `dst`.
fn copying_server(part: fn() -> Response<Body>) -> FaultServer {
    copying_server_of(&[], part)
}

/// [`copying_server`] whose `src` also answers HEAD with `headers`, and which
/// completes uploads.
fn copying_server_of(
    headers: &'static [(&'static str, &'static str)],
    part: fn() -> Response<Body>,
) -> FaultServer {
    taking_uploads(
        move |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
            ("HEAD", _) if seen.path == "/bucket/src" => {
                let mut all = vec![("content-length", "20971520"), ("etag", "\"v1\"")];
                all.extend_from_slice(headers);
                Some(with_headers(StatusCode::OK, &all, ""))
            }
            ("PUT", q) if q.starts_with("partNumber=") => Some(part()),
            _ => None,
        },
    )
}

/// An operator whose copies above 5 MiB are multipart copies.
fn multipart_copier(server: &FaultServer, attempts: u32, timeout: Duration) -> Operator {
    operator_of(
        server
            .builder(attempts, timeout)
            .multipart_copy_threshold(5 << 20)
            .build()
            .unwrap(),
    )
}

/// The parts of a multipart copy are pinned to the source's ETag: a source
/// replaced midway fails them with 412, which is the source's change, not the
/// target's condition (here `if_not_exists`).
#[test]
fn a_source_changed_during_a_multipart_copy_is_not_an_existing_target() {
    let server = copying_server(precondition_failed);
    let op = multipart_copier(&server, 2, Duration::from_secs(10));
    let copy = op.copy_with("src", "dst").if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(copy)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert!(err.to_string().contains("source changed"), "{err}");
    assert_eq!(aborts(&server.seen()), 1, "the upload is aborted");
}

/// A multipart copy that fails, and whose upload cannot be aborted, says the
/// upload was left behind (`abort_failed`, with the abort's request id), as a
/// write does, where it only logged it.
#[test]
fn a_failed_multipart_copy_whose_abort_fails_says_so() {
    let server = taking_uploads(
        |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
            ("HEAD", _) if seen.path == "/bucket/src" => Some(with_headers(
                StatusCode::OK,
                &[("content-length", "20971520"), ("etag", "\"v1\"")],
                "",
            )),
            ("PUT", q) if q.starts_with("partNumber=") => {
                Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-part"))
            }
            ("DELETE", _) => Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-abort")),
            _ => None,
        },
    );
    let op = multipart_copier(&server, 1, Duration::from_secs(10));
    let err = block_on(op.copy("src", "dst")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let left = err
        .context("abort_failed")
        .expect("the upload left behind is named");
    assert!(left.contains("r-abort"), "{left}");
    assert_eq!(aborts(&server.seen()), 1);
}

/// A source whose HEAD gives a size no multipart copy can hold (10,000 parts of at
/// most 5 GiB) is refused before any upload is made, where the parts' ranges
/// overflowed (a panic in a debug build, wrapped ranges in a release build).
#[test]
fn a_source_too_large_for_any_copy_is_refused_before_an_upload() {
    let server = taking_uploads(|seen, _| match seen.method.as_str() {
        "HEAD" if seen.path == "/bucket/src" => Some(with_headers(
            StatusCode::OK,
            &[
                ("content-length", "18446744073709551615"),
                ("etag", "\"v1\""),
            ],
            "",
        )),
        _ => None,
    });
    let op = multipart_copier(&server, 1, Duration::from_secs(10));
    let err = block_on(op.copy("src", "dst")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("10,000 parts"), "{err}");
    assert!(
        server
            .seen()
            .iter()
            .all(|s| s.method == "HEAD" || s.method == "GET"),
        "no upload was made, nothing was written: {:?}",
        server.seen()
    );
}

/// Hands out a new session token (`token-1`, `token-2`, ...) each time it is asked.
#[derive(Debug)]
struct Rotating(Arc<std::sync::atomic::AtomicUsize>);

impl aws_credential_types::provider::ProvideCredentials for Rotating {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
            aws_credential_types::Credentials::new(
                "AKID",
                "secret",
                Some(format!("token-{n}")),
                Some(std::time::SystemTime::now() + Duration::from_secs(3600)),
                "rotating",
            ),
        ))
    }
}

/// An operator on `server` signing with [`Rotating`] credentials, and how many
/// times they were fetched.
fn rotating_operator(server: &FaultServer) -> (Operator, Arc<std::sync::atomic::AtomicUsize>) {
    let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials_provider(Rotating(Arc::clone(&fetches)))
            .retry(
                RetryPolicy::default()
                    .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
            )
            .build()
            .unwrap(),
    );
    (op, fetches)
}

/// A credential source that fails, once it is let go; how often it was asked.
#[derive(Debug)]
struct FailingWhenLetGo {
    asked: Arc<std::sync::atomic::AtomicUsize>,
    go: tokio::sync::watch::Receiver<bool>,
}

impl aws_credential_types::provider::ProvideCredentials for FailingWhenLetGo {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut go = self.go.clone();
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let _ = go.wait_for(|go| *go).await;
            Err(
                aws_credential_types::provider::error::CredentialsError::provider_error(
                    "the source is down",
                ),
            )
        })
    }
}

/// When an `x-amz-date` (`20261208T031900Z`) was signed.
fn signed_at(amz_date: &str) -> SystemTime {
    use aws_smithy_types::date_time::{DateTime, Format};
    let d = amz_date.as_bytes();
    let at = |r: std::ops::Range<usize>| std::str::from_utf8(&d[r]).unwrap();
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        at(0..4),
        at(4..6),
        at(6..8),
        at(9..11),
        at(11..13),
        at(13..15)
    );
    SystemTime::try_from(DateTime::from_str(&rfc3339, Format::DateTime).unwrap()).unwrap()
}

/// A machine whose clock is 20 minutes behind the server's (a VM that drifted) is
/// refused with `RequestTimeTooSkewed`: the backend learns the difference from the
/// answer's `Date` and signs the retry, and every later request, by the server's
/// clock, as the AWS SDKs do, where every request failed for good. So are reads
/// refused together (each retried, not only the first to learn the clock), and a
/// `stat`, whose refusal has no body to name its code.
#[test]
fn a_clock_off_from_the_servers_is_corrected_from_its_date() {
    let server = skewed_server();
    let op = server.operator(3, Duration::from_secs(10));
    block_on(async {
        assert_eq!(op.read("k").await.unwrap(), HELLO);
        assert_eq!(op.read("k").await.unwrap(), HELLO);
    });
    assert_eq!(refused_by_the_clock(&server), 1);

    let server = skewed_server();
    let op = server.operator(3, Duration::from_secs(10));
    let reads = (0..4).map(|_| op.read("k"));
    for read in block_on(futures_util::future::join_all(reads)) {
        assert_eq!(read.unwrap(), HELLO);
    }
    assert_eq!(refused_by_the_clock(&server), 4);

    let server = skewed_server();
    let op = server.operator(3, Duration::from_secs(10));
    assert_eq!(block_on(op.stat("k")).unwrap().content_length(), 11);
    assert_eq!(refused_by_the_clock(&server), 1);
}

/// How many requests `server` saw signed by this machine's clock, not the
/// server's ([`skewed_server`]).
fn refused_by_the_clock(server: &FaultServer) -> usize {
    server
        .seen()
        .iter()
        .filter(|s| signed_at(s.header("x-amz-date").unwrap()) < SystemTime::now())
        .count()
}

/// A server whose clock is 20 minutes ahead, which refuses requests signed over
/// 15 minutes off it with `RequestTimeTooSkewed`, and otherwise answers every
/// request with `HELLO`.
fn skewed_server() -> FaultServer {
    use aws_smithy_types::date_time::{DateTime, Format};
    let ahead = Duration::from_secs(20 * 60);
    FaultServer::start(move |seen, _| {
        let server_now = SystemTime::now() + ahead;
        let date = DateTime::from(server_now).fmt(Format::HttpDate).unwrap();
        let signed = signed_at(seen.header("x-amz-date").unwrap());
        let off = server_now
            .duration_since(signed)
            .unwrap_or_else(|e| e.duration());
        if off > Duration::from_secs(15 * 60) {
            let mut refused = s3_error(StatusCode::FORBIDDEN, "RequestTimeTooSkewed", "r");
            refused.headers_mut().insert("date", date.parse().unwrap());
            return refused;
        }
        with_headers(StatusCode::OK, &[("date", &date)], HELLO)
    })
}

/// A credential source that never answers.
#[derive(Debug)]
struct Silent;

impl aws_credential_types::provider::ProvideCredentials for Silent {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(std::future::pending())
    }
}

/// A credential source that never answers (a stuck vault client, an STS call
/// that hangs) fails the requests that wait for it once the credentials timeout
/// passes, a temporary `Timeout` at the credentials stage, where every request
/// hung for ever; nothing is sent unsigned.
#[test]
fn a_credential_source_that_never_answers_times_out() {
    let server = FaultServer::start(|_, _| full(StatusCode::OK, ""));
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials_provider(Silent)
            .credentials_timeout(Duration::from_millis(200))
            .retry(RetryPolicy::default().with_max_attempts(1))
            .build()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(block_on(op.stat("k"))));
    let err = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the stat hung on the credential source")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("stage"), Some("credentials"), "{err}");
    assert!(server.seen().is_empty(), "nothing was sent unsigned");
}

/// Requests that wait together for credentials, whose fetch fails, all get that
/// failure: the source is asked once, where each waiting request asked it again
/// in turn (a source that is down, or slow to say so, was asked once per request,
/// each after the last had failed, while all of them held their places).
#[test]
fn requests_waiting_for_a_failing_credential_fetch_share_its_failure() {
    let server = FaultServer::start(|_, _| full(StatusCode::OK, ""));
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (open, go) = tokio::sync::watch::channel(false);
    let executor = io_executor::Builder::new()
        .name("creds-shared")
        .build()
        .unwrap();
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials_provider(FailingWhenLetGo {
                asked: Arc::clone(&asked),
                go,
            })
            .retry(RetryPolicy::default().with_max_attempts(1))
            .build()
            .unwrap(),
    )
    .with_executor(executor.clone());
    const REQUESTS: usize = 32;
    // Let go once every request waits: the first on the source, the others on it.
    let opener = {
        let (asked, executor) = (Arc::clone(&asked), executor.clone());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while asked.load(std::sync::atomic::Ordering::SeqCst) == 0
                || executor.metrics().running < REQUESTS
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the requests never waited"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            // A job counts as running from the start of its first poll: a job
            // on each worker after them runs once they have all reached their
            // wait (each worker runs one thing at a time).
            for worker in 0..executor.num_workers() {
                executor.spawn_on(worker, async {}).join().unwrap();
            }
            open.send(true).unwrap();
        })
    };
    let stats: Vec<_> = (0..REQUESTS).map(|i| op.stat(&format!("k{i}"))).collect();
    for result in block_on(futures_util::future::join_all(stats)) {
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("the source is down"), "{err}");
    }
    opener.join().unwrap();
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(server.seen().is_empty(), "nothing was sent unsigned");
    executor.shutdown();
}

/// A session token the server refuses before the expiry it was given with (a
/// clock off, a token revoked) is not used again: new credentials are fetched and
/// the request sent again. Fixed credentials are not sent again in vain.
#[test]
fn an_expired_session_token_is_fetched_anew() {
    let data = object(1000);
    let body = data.clone();
    let server = FaultServer::start(move |seen, _| match seen.header("x-amz-security-token") {
        Some("token-1") => s3_error(StatusCode::BAD_REQUEST, "ExpiredToken", "r-1"),
        _ => full(StatusCode::OK, body.clone()),
    });
    let (op, fetches) = rotating_operator(&server);
    assert_eq!(block_on(op.read("k")).unwrap(), data);
    let tokens: Vec<_> = server
        .seen()
        .iter()
        .map(|s| s.header("x-amz-security-token").unwrap_or("").to_owned())
        .collect();
    assert_eq!(tokens, ["token-1", "token-2"]);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);

    let server = FaultServer::start(|_, _| s3_error(StatusCode::BAD_REQUEST, "ExpiredToken", "r"));
    let err = block_on(server.operator(4, Duration::from_secs(10)).read("k")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert_eq!(err.context("code"), Some("ExpiredToken"), "{err}");
    assert_eq!(
        server.seen().len(),
        1,
        "fixed credentials are not sent again"
    );
}

/// A multipart copy dropped midway (its caller gave up) aborts its upload: its
/// copied parts are not left behind, billed until a lifecycle rule removes them.
#[test]
fn a_multipart_copy_dropped_midway_aborts_its_upload() {
    let server = copying_server(stalled);
    let op = multipart_copier(&server, 1, Duration::from_secs(30));
    let part_sent = || {
        server
            .seen()
            .iter()
            .any(|s| s.method == "PUT" && s.query.starts_with("partNumber="))
    };
    block_on(async {
        let copy = op.copy("src", "dst");
        tokio::pin!(copy);
        // Dropped once a part is being copied: the upload exists.
        tokio::select! {
            result = &mut copy => panic!("the stalled copy ended: {result:?}"),
            () = async {
                while !part_sent() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } => {}
        }
    });
    // The abort is sent by a task of the executor: wait for it (the bound only
    // ends a failing test).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while aborts(&server.seen()) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(aborts(&server.seen()), 1, "{:?}", server.seen());
}

/// A body the server received damaged (its checksum did not match) is sent again
/// from the writer's own copy, as a damaged read is read again.
#[test]
fn a_body_received_damaged_is_sent_again() {
    for code in ["BadDigest", "XAmzContentChecksumMismatch"] {
        let puts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&puts);
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "PUT" => match count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => s3_error(StatusCode::BAD_REQUEST, code, "r"),
                _ => with_headers(StatusCode::OK, &[("etag", "\"e\"")], ""),
            },
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => empty_listing(),
        });
        let op = server.operator(3, Duration::from_secs(10));
        block_on(op.write("k", HELLO)).unwrap();
        assert_eq!(puts.load(std::sync::atomic::Ordering::SeqCst), 2, "{code}");
        // Damaged every time: a temporary error once the attempts are spent.
        let server = FaultServer::start(move |seen, _| match seen.method.as_str() {
            "PUT" => s3_error(StatusCode::BAD_REQUEST, code, "r"),
            "HEAD" => with_headers(StatusCode::NOT_FOUND, &[], ""),
            _ => empty_listing(),
        });
        let err = block_on(
            server
                .operator(3, Duration::from_secs(10))
                .write("k", HELLO),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{code}: {err}");
        assert!(err.is_temporary(), "{code}: {err}");
        assert_eq!(err.context("attempts"), Some("3"), "{code}: {err}");
    }
}

/// A HEAD's refusal has no body: a bare 400 to a request signed with a session
/// token is taken as that token's, and new credentials are fetched.
#[test]
fn a_stat_refused_with_a_bare_400_fetches_a_new_session_token() {
    let server = FaultServer::start(|seen, _| match seen.header("x-amz-security-token") {
        Some("token-1") => with_headers(StatusCode::BAD_REQUEST, &[], ""),
        _ => with_headers(
            StatusCode::OK,
            &[("content-length", "5"), ("etag", "\"e\"")],
            "",
        ),
    });
    let (op, fetches) = rotating_operator(&server);
    assert_eq!(block_on(op.stat("k")).unwrap().content_length(), 5);
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// A HEAD refused with a bare 400 whatever the token (an object encrypted with a
/// customer key, stat'ed without it): credentials are fetched anew once, not once
/// per attempt, and the error then says it is not the token's, and is not
/// temporary (sent again, it would be refused again).
#[test]
fn a_stat_refused_with_a_bare_400_by_every_token_fetches_one_new_token() {
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "HEAD" => with_headers(StatusCode::BAD_REQUEST, &[], ""),
        _ => full(StatusCode::OK, "hello"),
    });
    let (op, fetches) = rotating_operator(&server);
    let err = block_on(op.stat("k")).unwrap_err();
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(server.seen().len(), 2, "{:?}", server.seen());
    assert!(!err.is_temporary(), "{err}");
    assert!(
        err.to_string().contains("not a refused session token"),
        "{err}"
    );
    // The credentials fetched anew are kept: the next request is signed with them.
    assert_eq!(block_on(op.read("k")).unwrap(), "hello");
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    // And a bare 400 of theirs is not taken for their token again: stats of many
    // such objects fetch nothing more, each failing as the first did.
    for i in 0..20 {
        let err = block_on(op.stat(&format!("k{i}"))).unwrap_err();
        assert!(!err.is_temporary(), "{err}");
        assert!(
            err.to_string().contains("not a refused session token"),
            "{err}"
        );
    }
    assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(
        server.seen().last().unwrap().header("x-amz-security-token"),
        Some("token-2")
    );
}

/// A completion refused for its checksum is not damage on the way: sent again it
/// would be refused again. It fails at once, not as a temporary error that
/// invites redoing the upload.
#[test]
fn a_completion_refused_for_its_checksum_is_not_sent_again() {
    // With the server's message, and without one (then ours says what was
    // refused, not that a body arrived damaged).
    let refusals: [(Answer, &str); 2] = [
        (
            || s3_error(StatusCode::BAD_REQUEST, "BadDigest", "r"),
            "injected BadDigest",
        ),
        (
            || {
                full(
                    StatusCode::BAD_REQUEST,
                    "<Error><Code>BadDigest</Code></Error>",
                )
            },
            "the server refused the checksum the upload was completed with",
        ),
    ];
    for (refusal, says) in refusals {
        let server = completion_refused_with(refusal);
        let err = block_on(server.multipart_operator().write("k", object(6 << 20))).unwrap_err();
        assert!(!err.is_temporary(), "{err}");
        assert_eq!(err.context("stored"), None, "{err}");
        assert_eq!(err.context("code"), Some("BadDigest"), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(!err.to_string().contains("damaged"), "{err}");
        assert_eq!(completions(&server.seen()), 1);
        assert_eq!(aborts(&server.seen()), 1, "the upload is aborted");
    }
}

/// A conditional write none of whose attempts could connect is known not to be
/// stored (`sent` = `no`), instead of `stored` = `unknown`, which asks the
/// caller to go and look.
#[test]
fn a_write_that_never_reached_the_server_is_known_not_stored() {
    // Answers the write's checks (one listing), then closes its port: every
    // attempt of the PUT is refused a connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut stream, _) = listener.accept().unwrap();
        // Closed before the answer goes out, so no later connection can land in
        // its backlog.
        drop(listener);
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let body = "<ListBucketResult></ListBucketResult>";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8(head).unwrap()
    });
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{addr}"))
            .credentials(Credentials::new("key", "secret"))
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(3)
                    .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
            )
            // One request at a time: the PUT goes out after the listing's answer,
            // when the port is closed (sent with it, it could be let in and then
            // reset, which is a request that reached the server).
            .max_concurrent_requests(1)
            .build()
            .unwrap(),
    );
    let write = op.write_with("k", HELLO).if_not_exists(true);
    let err = block_on(std::future::IntoFuture::into_future(write)).unwrap_err();
    assert!(
        server.join().unwrap().starts_with("GET "),
        "the checks came first"
    );
    assert!(err.is_temporary(), "{err}");
    assert_eq!(err.context("sent"), Some("no"), "{err}");
    assert_eq!(err.context("stored"), None, "{err}");
    assert_eq!(err.context("attempts"), Some("3"), "{err}");
}

/// A multipart copy (above the multipart copy threshold) keeps what CopyObject
/// keeps of its source: user metadata and content headers (a gzip object stays
/// gzip), not the source's write id nor its storage class; a copy that sets a
/// content type changes that and keeps the rest.
#[test]
fn a_multipart_copy_keeps_the_source_metadata() {
    let server = copying_server_of(
        &[
            ("content-type", "application/x-ndjson"),
            ("content-encoding", "gzip"),
            ("cache-control", "max-age=60"),
            ("x-amz-meta-team", "query"),
            (WRITE_ID, "the-source-write"),
            ("x-amz-storage-class", "GLACIER_IR"),
        ],
        || {
            with_headers(
                StatusCode::OK,
                &[],
                "<CopyPartResult><ETag>\"p\"</ETag></CopyPartResult>",
            )
        },
    );
    let op = multipart_copier(&server, 2, Duration::from_secs(10));
    block_on(op.copy("src", "dst")).unwrap();
    let created = |seen: &[Seen]| {
        seen.iter()
            .rfind(|s| s.method == "POST" && s.query == "uploads")
            .cloned()
            .unwrap()
    };
    let create = created(&server.seen());
    for (name, value) in [
        ("content-type", "application/x-ndjson"),
        ("content-encoding", "gzip"),
        ("cache-control", "max-age=60"),
        ("x-amz-meta-team", "query"),
    ] {
        assert_eq!(create.header(name), Some(value), "{name}: {create:?}");
    }
    // Its own write id only, not the source write's too.
    let ids: Vec<_> = create
        .headers
        .iter()
        .filter(|(k, _)| k == WRITE_ID)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_ne!(ids[0].1, "the-source-write");
    assert_eq!(create.header("x-amz-storage-class"), None);
    // A content type given: that changes, and the rest is kept.
    let copy = op.copy_with("src", "dst").content_type("text/plain");
    block_on(std::future::IntoFuture::into_future(copy)).unwrap();
    let create = created(&server.seen());
    for (name, value) in [
        ("content-type", "text/plain"),
        ("content-encoding", "gzip"),
        ("cache-control", "max-age=60"),
        ("x-amz-meta-team", "query"),
    ] {
        assert_eq!(create.header(name), Some(value), "{name}: {create:?}");
    }
    assert_eq!(create.header("x-amz-storage-class"), None);
}

/// A multipart copy sets its source's tags on its upload, form-encoded, counted
/// by the HEAD or not (AWS counts them only for a caller who may read them, some
/// stores never); tags counted that it may not read (no `s3:GetObjectTagging`)
/// fail the copy, saying so, before any upload is created, instead of a copy
/// without them. Tags not counted and not readable (refused, or a store that
/// answers with something else than a tag set): the copy goes on without them.
#[test]
fn a_multipart_copy_sets_the_source_tags_or_fails_without_them() {
    let server = taking_uploads(|seen, _| {
        let tagging = seen.method == "GET" && seen.query.starts_with("tagging");
        match seen.method.as_str() {
            "HEAD" => {
                let mut headers = vec![("content-length", "20971520"), ("etag", "\"v1\"")];
                if !seen.path.ends_with("uncounted") {
                    headers.push(("x-amz-tagging-count", "2"));
                }
                Some(with_headers(StatusCode::OK, &headers, ""))
            }
            // A store that ignores the query: the object itself.
            "GET" if tagging && seen.path.starts_with("/bucket/ignoring") => {
                Some(full(StatusCode::OK, vec![b'x'; 1 << 20]))
            }
            "GET" if tagging && seen.path.starts_with("/bucket/src") => Some(full(
                StatusCode::OK,
                "<Tagging><TagSet><Tag><Key>team</Key><Value>query engine</Value></Tag>\
                 <Tag><Key>a/b</Key><Value>x+y=z</Value></Tag></TagSet></Tagging>",
            )),
            "GET" if tagging => Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-403")),
            "PUT" if seen.query.starts_with("partNumber=") => Some(with_headers(
                StatusCode::OK,
                &[],
                "<CopyPartResult><ETag>\"p\"</ETag></CopyPartResult>",
            )),
            _ => None,
        }
    });
    let op = multipart_copier(&server, 2, Duration::from_secs(10));
    let created = |from: usize| {
        server.seen()[from..]
            .iter()
            .find(|s| s.method == "POST" && s.query == "uploads")
            .cloned()
    };
    for source in ["src", "src-uncounted"] {
        let before = server.seen().len();
        block_on(op.copy(source, "dst")).unwrap();
        let create = created(before).unwrap();
        assert_eq!(
            create.header("x-amz-tagging"),
            Some("team=query%20engine&a%2Fb=x%2By%3Dz"),
            "{source}: {create:?}"
        );
    }
    let before = server.seen().len();
    let err = block_on(op.copy("secret", "dst")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("tags"), "{err}");
    assert_eq!(err.context("code"), Some("AccessDenied"), "{err}");
    assert!(created(before).is_none(), "an upload was created");
    // Not counted, and not readable, or answered with something else than a tag
    // set: copied without them.
    for source in ["secret-uncounted", "ignoring-uncounted"] {
        let before = server.seen().len();
        block_on(op.copy(source, "dst")).unwrap();
        let create = created(before).unwrap();
        assert_eq!(create.header("x-amz-tagging"), None, "{source}: {create:?}");
    }
}

/// User metadata the signer cannot take (not visible ASCII, as a server other
/// than AWS may return it) fails the multipart copy that would carry it, naming
/// the header, instead of going out unsigned for the server to refuse.
#[test]
fn metadata_that_cannot_be_signed_fails_the_copy_that_would_carry_it() {
    let server = copying_server_of(&[("x-amz-meta-place", "café")], stalled);
    let op = multipart_copier(&server, 2, Duration::from_secs(10));
    let err = block_on(op.copy("src", "dst")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("x-amz-meta-place"), "{err}");
    assert!(
        server.seen().iter().all(|s| s.method != "POST"),
        "nothing unsigned was sent"
    );
}

/// A writer dropped with its upload under way, as its executor shuts down: the
/// abort its drop starts is the executor's work, which `join` waits for, not a
/// task the shutdown cuts off (leaving the upload and its parts billed).
#[test]
fn a_writer_dropped_as_its_executor_shuts_down_still_aborts_its_upload() {
    let server = taking_uploads(|seen, _| {
        (seen.method == "PUT" && seen.query.starts_with("partNumber=2")).then(stalled)
    });
    let io = io_executor::Builder::new()
        .name("drop-abort")
        .worker_threads(std::num::NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    let op = server.multipart_operator().with_executor(io.clone());
    let (open, gate) = std::sync::mpsc::channel::<()>();
    block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        writer.write_bytes(object(11 << 20)).await.unwrap();
        // The worker held, so that the release the drop starts runs only once
        // the shutdown has begun.
        let held = io.spawn(async move { gate.recv().ok() });
        drop(writer);
        io.shutdown();
        open.send(()).unwrap();
        held.await.unwrap();
    });
    io.blocking_join();
    let requests = methods_and_queries(&server);
    assert_eq!(aborts(&server.seen()), 1, "{requests:?}");
}

/// A write whose part fails aborts its upload; an abort the server refuses is
/// not kept quiet: the write's error says so, and so does the writer's `abort`
/// (whose errors are "cleaning up failed"), where it said `Ok`.
#[test]
fn a_failed_write_whose_upload_cannot_be_aborted_says_so() {
    let server = taking_uploads(
        |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
            ("PUT", q) if q.starts_with("partNumber=") => {
                Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-part"))
            }
            ("DELETE", "uploadId=up-1") => {
                Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r-abort"))
            }
            _ => None,
        },
    );
    // One part at a time: the second waits for the first, whose failure the
    // write then meets.
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{}", server.addr))
            .credentials(Credentials::new("key", "secret"))
            .part_size(5 << 20)
            .multipart_threshold(5 << 20)
            .part_concurrency(1)
            .build()
            .unwrap(),
    );
    let (write, abort) = block_on(async {
        let mut writer = op.writer("k").await.unwrap();
        writer.write_bytes(object(11 << 20)).await.unwrap();
        let write = writer.ready().await.unwrap_err();
        (write, writer.abort().await.unwrap_err())
    });
    for err in [write, abort] {
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert_eq!(err.context("request_id"), Some("r-part"), "{err}");
        let failed = err.context("abort_failed").unwrap_or_default();
        assert!(failed.contains("r-abort"), "{err}");
        assert!(failed.contains("up-1"), "{err}");
    }
    assert_eq!(aborts(&server.seen()), 1);
}

/// A writer dropped while its commit runs leaves the commit to finish; a commit
/// that then fails has no caller left to tell, and is logged, naming the path.
#[test]
fn the_failed_commit_of_a_dropped_writer_is_logged() {
    use futures::FutureExt as _;
    let logs = logs();
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "PUT" => s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"),
        "GET" => empty_listing(),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(1, Duration::from_secs(10));
    block_on(async {
        let mut writer = op.writer("dropped-commit").await.unwrap();
        writer.write_bytes(HELLO).await.unwrap();
        writer.ready().await.unwrap();
        // Polled once: the commit is submitted (nothing is left to write); then
        // the writer goes.
        assert!(writer.close().now_or_never().is_none());
        drop(writer);
    });
    // The commit's failure is logged once it has come back (the server's answer,
    // without a retry), long before this bound.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logged = String::from_utf8_lossy(&logs.0.lock()).into_owned();
        if let Some(line) = logged
            .lines()
            .find(|l| l.contains("the commit of a dropped writer failed"))
        {
            assert!(line.contains("dropped-commit"), "{line}");
            assert!(
                line.contains("AccessDenied") || line.contains("permission"),
                "{line}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the failed commit was never logged"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An answer of `status` with `headers` and `body` sent chunked (no length), that
/// ends cleanly after it.
fn chunked(status: StatusCode, headers: &[(&str, String)], body: Bytes) -> Response<Body> {
    let frames =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Frame::data(body)) });
    respond(status, headers, BodyExt::boxed(StreamBody::new(frames)))
}

/// A server that does not check `If-Match` answers a read of the caller's version
/// with another one: the caller's condition failed, and the read says so rather
/// than return the other version's bytes.
#[test]
fn an_answer_of_another_version_than_the_callers_fails_its_condition() {
    let server =
        FaultServer::start(|_, _| with_headers(StatusCode::OK, &[("etag", "\"E2\"")], HELLO));
    let op = server.operator(1, Duration::from_secs(10));
    let err = block_on(async { op.read_with("obj").if_match("\"E1\"").await }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    assert_eq!(err.context("etag"), Some("\"E2\""), "{err}");
    // So does one sent chunked, with no length (a proxy that compresses).
    let server = FaultServer::start(|_, _| {
        chunked(
            StatusCode::OK,
            &[("etag", "\"E2\"".to_owned())],
            Bytes::from_static(HELLO.as_bytes()),
        )
    });
    let op = server.operator(1, Duration::from_secs(10));
    let err = block_on(async { op.read_with("obj").if_match("\"E1\"").await }).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    // The same version, strong or weakened by a proxy, is read; and a version
    // pinned without quotes (as some servers give ETags in XML), answered with
    // them.
    for (pinned, served) in [
        ("\"E1\"", "\"E1\""),
        ("\"E1\"", "W/\"E1\""),
        ("E1", "\"E1\""),
    ] {
        let server = FaultServer::start(move |_, _| {
            with_headers(StatusCode::OK, &[("etag", served)], HELLO)
        });
        let op = server.operator(1, Duration::from_secs(10));
        let read = block_on(async { op.read_with("obj").if_match(pinned).await });
        assert_eq!(read.unwrap(), HELLO, "{pinned} {served}");
    }
}

/// A read whose first answer brought part of the range, resumed pinned to that
/// answer's version, from a server that does not check `If-Match` and answers
/// with another version: the two are never joined; the read is made again, whole,
/// from one version.
#[test]
fn a_resumed_answer_of_another_version_is_never_joined_to_the_first() {
    let old: Bytes = object(11);
    let new: Bytes = old.iter().map(|b| b.wrapping_add(1)).collect();
    let requests = std::sync::atomic::AtomicUsize::new(0);
    let (first, rest) = (old.clone(), new.clone());
    let server = FaultServer::start(move |seen, _| {
        if seen.method != "GET" {
            return with_headers(StatusCode::NOT_FOUND, &[], "");
        }
        let n = requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (data, etag) = if n == 0 {
            (&first, "\"E1\"")
        } else {
            (&rest, "\"E2\"")
        };
        let (start, end) = asked(seen, data.len());
        // The first answer brings only its first 5 bytes (HTTP allows less).
        let end = if n == 0 { end.min(start + 5) } else { end };
        part_of(data, start, end, ("etag", etag))
    });
    let op = server.operator(3, Duration::from_secs(10));
    let read = block_on(op.read_range("obj", 0..11)).unwrap();
    assert_eq!(read, new, "bytes of two versions joined");
}

/// A ranged answer sent chunked that ends cleanly before its `Content-Range` does
/// is resumed from the first byte missing, pinned to its version, as a cut one.
#[test]
fn a_chunked_answer_that_ends_early_is_resumed() {
    let data: Bytes = object(11);
    let served = data.clone();
    let server = FaultServer::start(move |seen, _| {
        if seen.method != "GET" {
            return with_headers(StatusCode::NOT_FOUND, &[], "");
        }
        let (start, end) = asked(seen, served.len());
        let mut headers = vec![
            (
                "content-range",
                format!("bytes {start}-{}/{}", end - 1, served.len()),
            ),
            ("etag", "\"E1\"".to_owned()),
        ];
        if start == 0 {
            // Says the whole range, sends 5 bytes, and ends.
            return chunked(StatusCode::PARTIAL_CONTENT, &headers, served.slice(0..5));
        }
        headers.push(("content-length", (end - start).to_string()));
        answer(
            StatusCode::PARTIAL_CONTENT,
            &headers,
            served.slice(start..end),
        )
    });
    let op = server.operator(3, Duration::from_secs(10));
    assert_eq!(block_on(op.read_range("obj", 0..11)).unwrap(), data);
    let resumed = server
        .seen()
        .iter()
        .filter(|s| s.range.as_deref() == Some("bytes=5-10"))
        .count();
    assert_eq!(
        resumed,
        1,
        "{:?}",
        server.seen().iter().map(|s| &s.range).collect::<Vec<_>>()
    );
}

/// A server taking multipart uploads whose aborts are refused (403), each answer
/// held 300 ms.
fn refusing_aborts() -> FaultServer {
    taking_uploads(|seen, _| {
        (seen.method == "DELETE").then(|| {
            let mut refused = s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r");
            refused
                .headers_mut()
                .insert(LATE_MS, hyper::header::HeaderValue::from_static("300"));
            refused
        })
    })
}

/// A writer of `path` whose upload (`up-1`) is made: a part is written.
async fn uploading(op: &Operator, path: &str) -> storage::Writer {
    let mut writer = op.writer(path).await.unwrap();
    writer.write_bytes(object(6 << 20)).await.unwrap();
    writer.ready().await.unwrap();
    writer
}

/// Polls `writer.abort()` (first, so that it has begun) until a request whose
/// head is `head` is at the server, then drops it.
async fn give_up_on_abort(server: &FaultServer, writer: &mut storage::Writer, head: &str) {
    let abort = writer.abort();
    tokio::pin!(abort);
    tokio::select! {
        biased;
        result = &mut abort => panic!("the abort ended: {result:?}"),
        () = server.head_arrived(|seen| seen == head) => {}
    }
}

/// An abort that fails (the upload left behind) is said by that `abort`, and
/// again by the next `abort` and by `close` (the `abort_failed` context of the
/// writer's error), where the next `abort` said `Ok`. An abort given up on midway
/// goes on (a chunk still on its way too), and its failure is said by the next
/// `abort`, or logged once the writer is dropped, where nobody heard of it.
#[test]
fn an_abort_that_fails_is_not_forgotten() {
    let logs = logs();
    let refused = |err: &storage::Error| {
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("AccessDenied"), "{err}");
    };
    let left_behind = |err: &storage::Error| {
        let left = err
            .context("abort_failed")
            .unwrap_or_else(|| panic!("{err}"));
        assert!(left.contains("AccessDenied"), "{err}");
    };

    let server = refusing_aborts();
    let op = server.multipart_operator();
    block_on(async {
        let mut writer = uploading(&op, "awaited").await;
        refused(&writer.abort().await.unwrap_err());
        let again = writer.abort().await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Cancelled, "{again}");
        left_behind(&again);
        let closed = writer.close().await.unwrap_err();
        assert_eq!(closed.kind(), ErrorKind::Cancelled, "{closed}");
        left_behind(&closed);
    });

    // Given up on once its request is at the server, then asked again.
    let server = refusing_aborts();
    let op = server.multipart_operator();
    block_on(async {
        let mut writer = uploading(&op, "asked-again").await;
        give_up_on_abort(&server, &mut writer, "DELETE uploadId=up-1").await;
        refused(&writer.abort().await.unwrap_err());
        left_behind(&writer.abort().await.unwrap_err());
    });
    assert_eq!(
        aborts(&server.seen()),
        1,
        "{:?}",
        methods_and_queries(&server)
    );

    // Given up on while the chunk before it is still on its way (its upload's
    // creation held): the chunk and then the clean-up go on, and the next
    // `abort` says how that went.
    let server = taking_uploads(|seen, _| {
        let late = |mut answer: Response<Body>| {
            answer
                .headers_mut()
                .insert(LATE_MS, hyper::header::HeaderValue::from_static("300"));
            answer
        };
        match (seen.method.as_str(), seen.query.as_str()) {
            ("POST", "uploads") => Some(late(upload_created())),
            ("DELETE", _) => Some(late(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"))),
            _ => None,
        }
    });
    let op = server.multipart_operator();
    block_on(async {
        let mut writer = op.writer("in-flight").await.unwrap();
        writer.write_bytes(object(6 << 20)).await.unwrap();
        give_up_on_abort(&server, &mut writer, "POST uploads").await;
        refused(&writer.abort().await.unwrap_err());
    });
    assert_eq!(
        aborts(&server.seen()),
        1,
        "{:?}",
        methods_and_queries(&server)
    );

    // Given up on, then the writer dropped: its failure is logged.
    let server = refusing_aborts();
    let op = server.multipart_operator();
    block_on(async {
        let mut writer = uploading(&op, "dropped").await;
        give_up_on_abort(&server, &mut writer, "DELETE uploadId=up-1").await;
    });
    let logged = || {
        String::from_utf8_lossy(&logs.0.lock())
            .lines()
            .any(|line| line.contains("aborted writer failed") && line.contains("dropped"))
    };
    // The bound only ends a failing test.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !logged() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(logged(), "{}", String::from_utf8_lossy(&logs.0.lock()));
}

/// A multipart copy's own requests act on the target: a refused upload or
/// completion, and an upload gone from under the copy (`NoSuchUpload`), name the
/// target, where they named the source (a `NotFound` of a source that is there,
/// which a rename's caller would take for "already moved"). A part's refusal,
/// which may be the source's, still names the source.
#[test]
fn a_multipart_copys_upload_errors_name_the_target() {
    let refusing = |what: &'static str| {
        taking_uploads(
            move |seen, _| match (seen.method.as_str(), seen.query.as_str()) {
                ("HEAD", _) if seen.path == "/bucket/src" => Some(with_headers(
                    StatusCode::OK,
                    &[("content-length", "20971520"), ("etag", "\"v1\"")],
                    "",
                )),
                ("POST", "uploads") if what == "create" => {
                    Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"))
                }
                ("POST", q) if what == "complete" && q.starts_with("uploadId=") => {
                    Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"))
                }
                ("PUT", q) if what == "gone" && q.starts_with("partNumber=") => {
                    Some(s3_error(StatusCode::NOT_FOUND, "NoSuchUpload", "r"))
                }
                ("PUT", q) if what == "part" && q.starts_with("partNumber=") => {
                    Some(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "r"))
                }
                ("PUT", q) if q.starts_with("partNumber=") => Some(with_headers(
                    StatusCode::OK,
                    &[],
                    "<CopyPartResult><ETag>\"p\"</ETag></CopyPartResult>",
                )),
                _ => None,
            },
        )
    };
    for (what, kind, path) in [
        ("create", ErrorKind::PermissionDenied, "dst"),
        ("complete", ErrorKind::PermissionDenied, "dst"),
        ("gone", ErrorKind::NotFound, "dst"),
        ("part", ErrorKind::PermissionDenied, "src"),
    ] {
        for rename in [false, true] {
            let server = refusing(what);
            let op = multipart_copier(&server, 1, Duration::from_secs(10));
            let err = if rename {
                block_on(op.rename("src", "dst")).unwrap_err()
            } else {
                block_on(op.copy("src", "dst")).unwrap_err()
            };
            assert_eq!(err.kind(), kind, "{what}, rename {rename}: {err}");
            assert_eq!(err.path(), path, "{what}, rename {rename}: {err}");
            assert_eq!(err.context("from"), Some("src"), "{err}");
            assert_eq!(err.context("to"), Some("dst"), "{err}");
        }
    }
}

/// A read of a missing key looks for a directory of that name (to say
/// `IsADirectory`, as fs does); a listing that fails does not hide the 404: a
/// caller that probes for an optional file by its `NotFound` still gets it,
/// throttled or not, with the 404's request and the listing's failure beside it.
#[test]
fn a_missing_key_stays_not_found_when_the_directory_check_fails() {
    let server = FaultServer::start(|seen, _| match seen.method.as_str() {
        "GET" if seen.query.contains("list-type") && !warm_up(seen) => {
            s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "rid-list")
        }
        "GET" if seen.query.contains("list-type") => empty_listing(),
        "GET" => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "rid-get"),
        _ => with_headers(StatusCode::NOT_FOUND, &[], ""),
    });
    let op = server.operator(2, Duration::from_secs(10));
    let err = block_on(op.read("tbl/_last_checkpoint")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.context("request_id"), Some("rid-get"), "{err}");
    assert_eq!(err.context("status"), Some("404"), "{err}");
    let check = err.context("directory_check").unwrap_or_default();
    assert!(check.contains("SlowDown"), "{err}");
    assert_eq!(
        (err.operation(), err.path()),
        ("read", "tbl/_last_checkpoint")
    );

    let err = block_on(op.reader("tbl/_last_checkpoint"))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(err.context("request_id"), Some("rid-get"), "{err}");
}

/// Ranges read as separate GETs, one of which fails: the error names the range the
/// caller asked for that the failed GET served, as a single read's does.
#[test]
fn read_ranges_names_the_range_whose_read_failed() {
    let data = object(6_000_000);
    let server = FaultServer::start(move |seen, _| {
        let (start, end) = asked(seen, data.len());
        if start >= 5_000_000 {
            return s3_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "rid-500",
            );
        }
        part_of(&data, start, end, ("etag", "\"v1\""))
    });
    let op = server.operator(2, Duration::from_secs(10));
    let err = block_on(op.read_ranges("k", vec![0..100, 5_000_000..5_000_100])).unwrap_err();
    assert_eq!(err.context("range"), Some("5000000..5000100"), "{err}");
    assert_eq!(err.context("code"), Some("InternalError"), "{err}");
    assert_eq!((err.operation(), err.path()), ("read_ranges", "k"));
    // Ranges merged into one read: the first of them.
    let err = block_on(op.read_ranges("k", vec![5_000_000..5_000_100, 5_000_200..5_000_300]))
        .unwrap_err();
    assert_eq!(err.context("range"), Some("5000000..5000100"), "{err}");
}

/// A reader of an object that shrinks midway, from a server that gives no ETag
/// to pin the reads by: a later chunk answered for the shorter object (a 206 of
/// its smaller size, or a 416) is the object changing, said as such (temporary,
/// `changed`), not a range of the caller's that is past the end.
#[test]
fn a_reader_without_an_etag_of_an_object_that_shrinks_says_it_changed() {
    for refused in [false, true] {
        let old = object(3 << 20);
        let new = old.slice(..3 << 19);
        let server = FaultServer::start(move |seen, n| {
            let data = if n == 0 { &old } else { &new };
            let (start, end) = asked(seen, data.len());
            if start >= data.len() || refused && n > 0 {
                return with_headers(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &[("content-range", &format!("bytes */{}", data.len()))],
                    "",
                );
            }
            part_of(
                data,
                start,
                end,
                ("last-modified", "Mon, 30 Nov 2026 10:00:00 GMT"),
            )
        });
        let op = server.operator(1, Duration::from_secs(10));
        let err = reader_error(&op, None);
        assert_changed(&err);
        assert!(
            err.to_string().contains("shorter than when opened"),
            "refused {refused}: {err}"
        );
        assert_eq!(err.path(), "obj", "{err}");
    }
}

/// A read of several ranges from a server with no ETag, one of whose answers is
/// cut every time: the cut is retried as the policy allows and is the error; it is
/// not taken for the object changing (read again whole, three times over, and
/// then said to have "kept changing").
#[test]
fn read_ranges_without_an_etag_says_a_cut_is_a_cut() {
    let data = object(6_000_000);
    let server = spans_without_etag(
        move |_| data.clone(),
        |start, _| (start >= 5_000_000).then_some(50),
    );
    let op = server.operator(2, Duration::from_secs(10));
    let err = block_on(op.read_ranges("k", vec![0..100, 5_000_000..5_000_100])).unwrap_err();
    assert!(!err.to_string().contains("kept changing"), "{err}");
    assert_eq!(err.context("changed"), None, "{err}");
    assert!(err.context("resumed").is_some(), "{err}");
    assert_eq!(err.context("range"), Some("5000000..5000100"), "{err}");
    let cut_reads = server
        .seen()
        .iter()
        .filter(|s| s.range.as_deref() == Some("bytes=5000000-5000099"))
        .count();
    assert_eq!(cut_reads, 2, "one read and one retry: {err}");
}

/// A listing whose answer has no length and ends when its connection closes,
/// cut after its document began: a temporary error, retried (it failed as XML
/// that "missed" its end, not retried), and the next answer is the listing.
#[test]
fn a_listing_cut_after_its_document_began_is_read_again() {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static LISTINGS: AtomicUsize = AtomicUsize::new(0);
    let addr = raw_http_server(|head, stream| {
        let listing = "<?xml version=\"1.0\"?><ListBucketResult><Name>bucket</Name>\
             <Contents><Key>d/a</Key><Size>1</Size></Contents>\
             <Contents><Key>d/b</Key><Size>2</Size></Contents></ListBucketResult>";
        if head.windows(9).any(|w| w == b"list-type")
            && !head.windows(14).any(|w| w == b"prefix=warm-up")
            && LISTINGS.fetch_add(1, Ordering::SeqCst) == 0
        {
            // No length, not chunked: the body ends when the connection does.
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}",
                &listing[..listing.len() - 40]
            );
            return;
        }
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{listing}",
            listing.len()
        );
    });
    let op = operator_of(
        S3Builder::new("bucket")
            .endpoint(format!("http://{addr}"))
            .credentials(Credentials::new("key", "secret"))
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(2)
                    .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
            )
            .build()
            .unwrap(),
    );
    let names: Vec<String> = block_on(op.list("d/"))
        .unwrap()
        .into_iter()
        .map(|e| e.path().to_owned())
        .collect();
    assert_eq!(names, ["d/a", "d/b"]);
    assert_eq!(
        LISTINGS.load(Ordering::SeqCst),
        2,
        "the cut answer, then the whole one"
    );
}

/// A server that does not speak TLS where an `https://` endpoint was given is
/// said to be one, and not retried; bytes that are no TLS record on a connection
/// whose handshake succeeded (a proxy's plaintext page written into it) are a
/// connection that failed: temporary, retried, and not said to be never sent.
#[test]
fn a_plaintext_answer_is_a_wrong_scheme_only_at_the_handshake() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (ca, acceptor) = common_s3::private_ca();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, ca).unwrap();
    let builder = |endpoint: String| {
        S3Builder::new("bucket")
            .endpoint(endpoint)
            .credentials(Credentials::new("key", "secret"))
            .retry(
                RetryPolicy::default()
                    .with_max_attempts(2)
                    .with_delays(Duration::from_millis(1), Duration::from_millis(5)),
            )
            .ca_bundle(&bundle)
            .proxy_excludes("*")
    };

    // TLS, then plaintext where the answer's records should be.
    let (runtime, listener, addr) = common_s3::listening();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut head = [0_u8; 1024];
                let _ = tls.read(&mut head).await;
                let (tcp, _) = tls.get_mut();
                let _ = tcp
                    .write_all(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });
    let op = operator_of(builder(format!("https://{addr}")).build().unwrap());
    let err = block_on(op.read("k")).unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert_eq!(err.context("connect"), None, "{err}");
    assert!(!err.to_string().contains("http:// endpoint"), "{err}");
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "retried: {err}"
    );

    // No TLS at all: the endpoint's scheme is wrong, which no attempt mends.
    let plain = FaultServer::start(|_, _| with_headers(StatusCode::OK, &[], HELLO));
    let op = operator_of(builder(format!("https://{}", plain.addr)).build().unwrap());
    let err = block_on(op.read("k")).unwrap_err();
    assert!(
        err.to_string()
            .contains("http:// endpoint given as https://"),
        "{err}"
    );
    assert!(!err.is_temporary(), "{err:?}");
    assert_eq!(err.context("connect"), Some("failed"), "{err}");
    drop(runtime);
}

/// A copy whose first CopyObject was stored with its answer lost, then refused
/// (the source changed), and whose next round fails for its own reason
/// (throttled to the end): a copy may be at the target, and that error says so
/// (`stored` = `unknown`), as the round's refusal did.
#[test]
fn a_copy_whose_lost_answer_may_have_stored_says_so_in_a_later_rounds_error() {
    let copies = std::sync::atomic::AtomicUsize::new(0);
    let server = holding_a(move |seen, _| {
        if seen.method != "PUT" || seen.header("x-amz-copy-source").is_none() {
            return None;
        }
        Some(
            match copies.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => stalled(),
                1 => s3_error(
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailed",
                    "r412",
                ),
                _ => s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", "r503"),
            },
        )
    });
    let op = server.operator(2, Duration::from_secs(2));
    let err = block_on(op.copy("a", "b")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.context("stored"), Some("unknown"), "{err}");
}
