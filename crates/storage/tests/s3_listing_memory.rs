//! A recursive S3 listing holds a page and one path's directories, not every
//! directory it has listed: a listing of a table with a million partitions kept a
//! million strings until it ended. A counting allocator watches the bytes live in
//! the process while such a listing goes by, from a server that speaks S3's
//! ListObjectsV2 over real HTTP. (A test binary of its own: the allocator counts
//! every thread of the process.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use storage::Operator;
use storage::services::s3::{Credentials, S3Builder};

mod common_s3;

/// The system allocator, counting the bytes it has handed out and not had back.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` as it came, which upholds
// `GlobalAlloc`'s contract; the counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's `layout` is valid for `alloc`, as `System` needs.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; `new_size` is the
        // caller's, valid for `realloc`.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Pages of the listing, and keys on each: `p{page}/d{key}/f`, a directory of
/// its own for every key (a table partitioned that finely).
const PAGES: usize = 100;
const KEYS: usize = 4000;

/// Page `n` of the listing (its continuation token is `t{n}`).
fn page(n: usize) -> String {
    let mut xml = String::from("<ListBucketResult>");
    for key in 0..KEYS {
        xml.push_str(&format!(
            "<Contents><Key>p{n:04}/d{key:04}/f</Key><Size>1</Size></Contents>"
        ));
    }
    if n + 1 < PAGES {
        xml.push_str(&format!(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>t{}</NextContinuationToken>",
            n + 1
        ));
    } else {
        xml.push_str("<IsTruncated>false</IsTruncated>");
    }
    xml.push_str("</ListBucketResult>");
    xml
}

/// The page a ListObjectsV2 request asks for, from its continuation token.
fn answer(req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or("");
    let n = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("continuation-token="))
        .and_then(|token| token.strip_prefix('t'))
        .map_or(0, |n| n.parse().unwrap());
    Response::new(Full::new(Bytes::from(page(n))))
}

#[test]
fn a_recursive_listing_holds_no_more_as_its_directories_grow() {
    let (runtime, listener, addr) = common_s3::listening();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(&req))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let s3 = S3Builder::new("bucket")
        .endpoint(format!("http://{addr}"))
        .credentials(Credentials::new("key", "secret"))
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let op = Operator::new(s3);
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut files, mut dirs) = (0, 0);
    let mut after_first = None;
    let mut most = 0;
    caller.block_on(async {
        let mut listing = op.lister_recursive("").await.unwrap();
        while let Some(entry) = listing.next().await {
            let entry = entry.unwrap();
            if entry.metadata().is_dir() {
                dirs += 1;
            } else {
                files += 1;
            }
            // Live bytes once the first two pages are in (the lister's buffers,
            // the connection, the server's), then the most seen after.
            if files == 2 * KEYS {
                after_first = Some(LIVE.load(Ordering::Relaxed));
            } else if files > 2 * KEYS && files % 1000 == 0 {
                most = most.max(LIVE.load(Ordering::Relaxed));
            }
        }
    });
    // Every directory once: a `p` for each page, a `d` for each key.
    assert_eq!(files, PAGES * KEYS);
    assert_eq!(dirs, PAGES + PAGES * KEYS);
    // 400,000 directory paths held would be about 25 MiB more.
    let after_first = after_first.unwrap();
    let grown = most.saturating_sub(after_first);
    assert!(
        grown < 8 << 20,
        "live bytes grew by {grown} during the listing (from {after_first})"
    );
}
