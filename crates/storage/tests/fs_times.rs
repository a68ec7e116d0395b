//! Modification times as the fs backend reports and compares them: any the
//! filesystem holds, before 1970 too (an archive's files, `touch -d 1969-...`).

use std::time::{Duration, SystemTime};

use storage::{ErrorKind, Operator};

/// A file modified before 1970 has that time, to the nanosecond, and conditions
/// compare with it: not `UNIX_EPOCH` for every such file.
#[tokio::test(flavor = "current_thread")]
async fn a_time_before_1970_is_the_files_own() {
    let dir = tempfile::tempdir().unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap());
    op.write("old", "x").await.unwrap();
    let modified = SystemTime::UNIX_EPOCH - Duration::new(3600, 250_000_000);
    std::fs::File::options()
        .write(true)
        .open(dir.path().join("old"))
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(
        op.stat("old").await.unwrap().last_modified(),
        Some(modified)
    );
    let before = modified - Duration::from_secs(60);
    let after = modified + Duration::from_secs(60);
    assert_eq!(
        op.read_with("old")
            .if_modified_since(after)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotModified
    );
    assert_eq!(
        op.read_with("old").if_modified_since(before).await.unwrap(),
        "x"
    );
    assert_eq!(
        op.read_with("old")
            .if_unmodified_since(after)
            .await
            .unwrap(),
        "x"
    );
    assert_eq!(
        op.read_with("old")
            .if_unmodified_since(before)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::PreconditionFailed
    );
}
