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
