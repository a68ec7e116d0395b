//! The conformance suite on the fs backend, each test in a fresh temp directory.

mod conformance;

fn fs_operator() -> storage::Operator {
    // Leaked so the directory outlives the test body; it is under the system temp dir.
    let dir = tempfile::tempdir().expect("tempdir").keep();
    storage::Operator::new(storage::services::Fs::new(dir).expect("fs root"))
}

conformance_tests!(fs_operator());
