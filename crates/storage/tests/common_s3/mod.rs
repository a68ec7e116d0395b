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
