//! What the `dio` end-to-end tests share.
#![allow(dead_code, reason = "each test binary uses a part")]

use std::process::Command;

/// Runs the `dio` binary with `args`; whether it succeeded, and what it printed
/// (stdout, then stderr).
pub(crate) fn dio(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(args)
        .output()
        .expect("run dio");
    let (stdout, stderr) = texts(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// A run's stdout and stderr, as text.
pub(crate) fn texts(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The test S3 server (`DIO_TEST_S3_URI`, from `scripts/s3-server`), or `None`
/// after saying that `what` is skipped; with `DIO_REQUIRE_S3=1` (as `scripts/test`
/// sets), a missing server fails the test instead.
pub(crate) fn s3_uri(what: &str) -> Option<String> {
    match std::env::var("DIO_TEST_S3_URI") {
        Ok(uri) => Some(uri),
        Err(_) if std::env::var("DIO_REQUIRE_S3").is_ok_and(|v| v == "1") => {
            panic!("DIO_REQUIRE_S3=1 but DIO_TEST_S3_URI is not set")
        }
        Err(_) => {
            eprintln!("{what} SKIPPED: no S3 server (DIO_TEST_S3_URI unset)");
            None
        }
    }
}

/// The first line of `output` that starts with `start`.
pub(crate) fn line_starting<'a>(output: &'a str, start: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?}: {output}"))
}
