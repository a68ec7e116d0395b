//! [`MemS3`]: a static in-memory S3 endpoint inside the bench process, so the
//! server's own cost (disk, metadata) does not hide the clients' cost.
//!
//! It answers path-style requests for one bucket: `GET` (with `Range`), `HEAD`,
//! `PUT`, `DELETE`, and ListObjectsV2 (prefix and max-keys only), with S3's headers
//! (`Content-Range`, `ETag`, `Last-Modified`). Signatures are not checked.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::RwLock;

type Objects = Arc<RwLock<BTreeMap<String, Stored>>>;

/// An object, and its CRC64NVME, computed when it is stored (as S3 keeps a
/// full-object checksum of every object).
#[derive(Debug, Clone)]
struct Stored {
    data: Bytes,
    crc64nvme: u64,
}

impl Stored {
    fn new(data: Bytes) -> Self {
        let crc64nvme = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &data);
        Self { data, crc64nvme }
    }
}
/// Multipart uploads in progress: upload id -> parts by number.
type Uploads = Arc<std::sync::Mutex<BTreeMap<String, BTreeMap<u32, Bytes>>>>;

/// The server; it stops when dropped (its runtime goes with it).
#[derive(Debug)]
pub struct MemS3 {
    addr: SocketAddr,
    bucket: String,
    objects: Objects,
    /// Deletes are refused (403 `AccessDenied`): see [`refuse_deletes`](Self::refuse_deletes).
    deletes_refused: Arc<std::sync::atomic::AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl MemS3 {
    /// The name of the server's threads (a client's CPU accounting leaves them out).
    pub const THREAD_NAME: &'static str = "mem-s3";

    /// Starts serving `bucket` on 127.0.0.1, on a runtime of `threads` threads.
    ///
    /// # Errors
    ///
    /// If the runtime or the listening socket cannot be made: a message saying
    /// which.
    pub fn start(bucket: &str, threads: usize) -> Result<Self, String> {
        let failed =
            |what: &str, e: std::io::Error| format!("the in-process S3 server cannot {what}: {e}");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(Self::THREAD_NAME)
            .enable_all()
            .build()
            .map_err(|e| failed("start its runtime", e))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| failed("listen on 127.0.0.1", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| failed("learn its address", e))?;
        let objects: Objects = Arc::default();
        let prefix = format!("/{bucket}");
        let served = Arc::clone(&objects);
        let uploads: Uploads = Arc::default();
        let deletes_refused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refused = Arc::clone(&deletes_refused);
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors, say: a pause, not a loop that
                    // burns the core the client measures on.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (objects, uploads, prefix, refused) = (
                    Arc::clone(&served),
                    Arc::clone(&uploads),
                    prefix.clone(),
                    Arc::clone(&refused),
                );
                let service = hyper::service::service_fn(move |req| {
                    let (objects, uploads, prefix) =
                        (Arc::clone(&objects), Arc::clone(&uploads), prefix.clone());
                    let refuse =
                        refused.load(std::sync::atomic::Ordering::SeqCst) && is_delete(&req);
                    async move {
                        if refuse {
                            return Ok::<_, Infallible>(respond(
                                StatusCode::FORBIDDEN,
                                &[],
                                Bytes::from_static(
                                    b"<Error><Code>AccessDenied</Code><Message>deletes are \
                                      refused</Message></Error>",
                                ),
                            ));
                        }
                        Ok::<_, Infallible>(handle(req, &objects, &uploads, &prefix).await)
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Ok(Self {
            addr,
            bucket: bucket.to_owned(),
            objects,
            deletes_refused,
            _runtime: runtime,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bucket it serves.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// From now on refuses to delete objects (`DELETE` of a key, `POST ?delete`)
    /// with 403 `AccessDenied`, as a bucket whose policy denies deletes does.
    pub fn refuse_deletes(&self) {
        self.deletes_refused
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stores an object directly.
    ///
    /// # Panics
    ///
    /// If the object map's lock is poisoned.
    pub fn put(&self, key: &str, data: Bytes) {
        self.objects
            .write()
            .expect("objects")
            .insert(key.to_owned(), Stored::new(data));
    }
}

/// A request that deletes an object: `DELETE` of a key (not of an upload), or
/// DeleteObjects.
fn is_delete(req: &Request<Incoming>) -> bool {
    let query = req.uri().query().unwrap_or("");
    match *req.method() {
        Method::DELETE => query_param(query, "uploadId").is_none(),
        Method::POST => query_param(query, "delete").is_some(),
        _ => false,
    }
}

fn respond(status: StatusCode, headers: &[(&str, String)], body: Bytes) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    builder.body(Full::new(body)).expect("response")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

const LAST_MODIFIED: &str = "Wed, 25 Nov 2026 00:00:00 GMT";

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|p| match p.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        None if p == key => Some(""),
        _ => None,
    })
}

async fn handle(
    req: Request<Incoming>,
    objects: &Objects,
    uploads: &Uploads,
    prefix: &str,
) -> Response<Full<Bytes>> {
    let Some(rest) = req.uri().path().strip_prefix(prefix) else {
        return respond(StatusCode::NOT_FOUND, &[], Bytes::new());
    };
    let key = percent_decode(rest.trim_start_matches('/'));
    let query = req.uri().query().unwrap_or("").to_owned();
    let method = req.method().clone();
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let not_found = || {
        respond(
            StatusCode::NOT_FOUND,
            &[],
            Bytes::from_static(
                b"<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>",
            ),
        )
    };
    let upload_id = query_param(&query, "uploadId").map(percent_decode);
    match method {
        Method::POST if query_param(&query, "uploads").is_some() => {
            let id = format!("u{}", rand_id());
            uploads
                .lock()
                .expect("uploads")
                .insert(id.clone(), BTreeMap::new());
            let xml = format!(
                "<InitiateMultipartUploadResult><UploadId>{id}</UploadId></InitiateMultipartUploadResult>"
            );
            return respond(StatusCode::OK, &[], Bytes::from(xml));
        }
        Method::PUT if upload_id.is_some() => {
            let number: u32 = query_param(&query, "partNumber")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let Ok(body) = req.into_body().collect().await else {
                return respond(StatusCode::BAD_REQUEST, &[], Bytes::new());
            };
            let mut uploads = uploads.lock().expect("uploads");
            let Some(parts) = uploads.get_mut(upload_id.as_deref().unwrap_or("")) else {
                return respond(
                    StatusCode::NOT_FOUND,
                    &[],
                    Bytes::from_static(b"<Error><Code>NoSuchUpload</Code></Error>"),
                );
            };
            parts.insert(number, body.to_bytes());
            return respond(
                StatusCode::OK,
                &[("etag", format!("\"p{number}\""))],
                Bytes::new(),
            );
        }
        Method::POST if upload_id.is_some() => {
            drop(req.into_body().collect().await);
            let Some(parts) = uploads
                .lock()
                .expect("uploads")
                .remove(upload_id.as_deref().unwrap_or(""))
            else {
                return respond(
                    StatusCode::NOT_FOUND,
                    &[],
                    Bytes::from_static(b"<Error><Code>NoSuchUpload</Code></Error>"),
                );
            };
            let data = Bytes::from(parts.values().map(|p| &p[..]).collect::<Vec<_>>().concat());
            let n = data.len();
            objects
                .write()
                .expect("objects")
                .insert(key, Stored::new(data));
            let xml = format!(
                "<CompleteMultipartUploadResult><ETag>\"{n:x}-1\"</ETag></CompleteMultipartUploadResult>"
            );
            return respond(StatusCode::OK, &[], Bytes::from(xml));
        }
        Method::DELETE if upload_id.is_some() => {
            uploads
                .lock()
                .expect("uploads")
                .remove(upload_id.as_deref().unwrap_or(""));
            return respond(StatusCode::NO_CONTENT, &[], Bytes::new());
        }
        _ => {}
    }
    match method {
        Method::GET if key.is_empty() => list(objects, &query),
        Method::GET | Method::HEAD => {
            let Some(Stored { data, crc64nvme }) =
                objects.read().expect("objects").get(&key).cloned()
            else {
                return not_found();
            };
            let checksum_mode = req
                .headers()
                .get("x-amz-checksum-mode")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"ENABLED"));
            let etag = format!("\"{:x}\"", data.len());
            let mut headers = vec![("etag", etag), ("last-modified", LAST_MODIFIED.to_owned())];
            let (status, body) = match range.as_deref().and_then(|r| parse_range(r, data.len())) {
                Some(Ok((start, end))) => {
                    headers.push((
                        "content-range",
                        format!("bytes {start}-{}/{}", end - 1, data.len()),
                    ));
                    (StatusCode::PARTIAL_CONTENT, data.slice(start..end))
                }
                Some(Err(())) => {
                    headers.push(("content-range", format!("bytes */{}", data.len())));
                    return respond(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        &headers,
                        Bytes::from_static(b"<Error><Code>InvalidRange</Code></Error>"),
                    );
                }
                None => {
                    // The whole object's checksum, to a client that asks for it.
                    if checksum_mode {
                        use base64::Engine as _;
                        let value = base64::engine::general_purpose::STANDARD
                            .encode(crc64nvme.to_be_bytes());
                        headers.push(("x-amz-checksum-crc64nvme", value));
                        headers.push(("x-amz-checksum-type", "FULL_OBJECT".to_owned()));
                    }
                    (StatusCode::OK, data)
                }
            };
            if method == Method::HEAD {
                headers.push(("content-length", body.len().to_string()));
                return respond(status, &headers, Bytes::new());
            }
            respond(status, &headers, body)
        }
        Method::PUT => {
            let Ok(body) = req.into_body().collect().await else {
                return respond(StatusCode::BAD_REQUEST, &[], Bytes::new());
            };
            let data = body.to_bytes();
            let etag = format!("\"{:x}\"", data.len());
            objects
                .write()
                .expect("objects")
                .insert(key, Stored::new(data));
            respond(StatusCode::OK, &[("etag", etag)], Bytes::new())
        }
        Method::DELETE => {
            objects.write().expect("objects").remove(&key);
            respond(StatusCode::NO_CONTENT, &[], Bytes::new())
        }
        _ => respond(StatusCode::NOT_IMPLEMENTED, &[], Bytes::new()),
    }
}

fn rand_id() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against `len`.
fn parse_range(value: &str, len: usize) -> Option<Result<(usize, usize), ()>> {
    let (a, b) = value.strip_prefix("bytes=")?.split_once('-')?;
    let (start, end) = match (a.parse::<usize>().ok(), b.parse::<usize>().ok()) {
        (Some(a), Some(b)) => (a, (b + 1).min(len)),
        (Some(a), None) => (a, len),
        (None, Some(n)) => (len.saturating_sub(n), len),
        (None, None) => return None,
    };
    Some(if start < end {
        Ok((start, end))
    } else {
        Err(())
    })
}

fn list(objects: &Objects, query: &str) -> Response<Full<Bytes>> {
    let mut prefix = String::new();
    let mut max_keys = 1000;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("prefix", v)) => prefix = percent_decode(v),
            Some(("max-keys", v)) => max_keys = v.parse().unwrap_or(1000),
            _ => {}
        }
    }
    let objects = objects.read().expect("objects");
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><IsTruncated>false</IsTruncated>",
    );
    for (key, stored) in objects
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .take(max_keys)
    {
        xml.push_str(&format!(
            "<Contents><Key>{key}</Key><Size>{}</Size><LastModified>2026-11-25T00:00:00.000Z</LastModified></Contents>",
            stored.data.len()
        ));
    }
    xml.push_str("</ListBucketResult>");
    respond(StatusCode::OK, &[], Bytes::from(xml))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storage::services::s3::{Credentials, S3Builder};

    /// A client that asks for the checksum of a full read gets the one stored with
    /// the object, and checks it: a stored checksum that does not match the bytes
    /// fails our read (so the in-process suite prices the check as S3 would).
    #[test]
    fn full_reads_get_the_checksum_stored_with_the_object() {
        let server = MemS3::start("b", 1).unwrap();
        let data = Bytes::from((0..100_000_u32).map(|i| i as u8).collect::<Vec<_>>());
        server.put("k", data.clone());
        let op = storage::Operator::new(
            S3Builder::new("b")
                .endpoint(server.endpoint())
                .region("us-east-1")
                .credentials(Credentials::new("key", "secret"))
                .build()
                .unwrap(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(op.read("k")).unwrap(), data);
        if let Some(stored) = server.objects.write().unwrap().get_mut("k") {
            stored.crc64nvme ^= 1;
        }
        let err = rt.block_on(op.read("k")).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        // A range read is not checked (no checksum covers it).
        assert_eq!(
            rt.block_on(op.read_range("k", 10..20)).unwrap(),
            data.slice(10..20)
        );
    }
}
