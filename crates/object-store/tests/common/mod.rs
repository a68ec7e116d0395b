//! What the adapter tests share: operators on every backend, each on a dedicated
//! executor, and the S3 server `scripts/test` starts (SeaweedFS), found through
//! `DIO_TEST_S3_URI` and the `AWS_*` variables.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};

use storage::Operator;
use storage::services::s3::S3Builder;

/// A dedicated pool named `name`.
pub(crate) fn executor(name: &str) -> io_executor::Executor {
    io_executor::Builder::new()
        .name(name)
        .worker_threads(NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap()
}

/// An fs operator on a fresh temp directory (kept alive by the returned guard).
pub(crate) fn fs_operator(name: &str) -> (Operator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let fs = storage::services::Fs::new(dir.path()).unwrap();
    (Operator::new(fs).with_executor(executor(name)), dir)
}

/// A memory operator.
pub(crate) fn memory_operator(name: &str) -> Operator {
    Operator::new(storage::services::Memory::new()).with_executor(executor(name))
}

/// The S3 test server's URI, or `None` (with a note) when none was configured;
/// with `DIO_REQUIRE_S3=1` a missing server fails the test instead.
pub(crate) fn s3_uri(test: &str) -> Option<String> {
    match std::env::var("DIO_TEST_S3_URI") {
        Ok(uri) => Some(uri),
        Err(_) => {
            if std::env::var("DIO_REQUIRE_S3").is_ok_and(|v| v == "1") {
                panic!("DIO_REQUIRE_S3=1 but DIO_TEST_S3_URI is not set: run scripts/test");
            }
            eprintln!(
                "S3 test {test} SKIPPED: no S3 server (DIO_TEST_S3_URI unset); scripts/test starts one"
            );
            None
        }
    }
}

/// A key prefix no other test uses: `t/<test>-<pid>-<nanos>-<n>/`.
pub(crate) fn unique_prefix(test: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
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

/// An S3 operator on the test bucket under a fresh prefix.
pub(crate) fn s3_operator(test: &str) -> Option<Operator> {
    let uri = s3_uri(test)?;
    let s3 = S3Builder::from_uri(&uri)
        .unwrap()
        .root(unique_prefix(test))
        .build()
        .unwrap();
    Some(Operator::new(s3).with_executor(executor(test)))
}
