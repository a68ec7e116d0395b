//! What the fixtures check before they write their files.

/// A fixture asked for more than its filesystem holds is refused before it writes,
/// with a message that names what needed the room, where, and both sizes; one that
/// fits is let through.
#[test]
fn free_space_is_checked_before_a_fixture_writes() {
    let dir = tempfile::tempdir().unwrap();
    dio_benches::check_free_space(dir.path(), 1, "a small file", "--size").unwrap();
    let err = dio_benches::check_free_space(dir.path(), u64::MAX / 2, "the storm's file", "--size")
        .unwrap_err();
    assert!(err.starts_with("the storm's file needs "), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(err.contains("GiB free: use a smaller --size"), "{err}");
    // Nothing was written.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let gone = dir.path().join("missing");
    let err = dio_benches::check_free_space(&gone, 1, "x", "--size").unwrap_err();
    assert!(err.starts_with("cannot ask how much space"), "{err}");
}

/// A tmpfs is told from a disk: `/dev/shm` is one wherever it exists, `/proc`
/// never is.
#[test]
fn a_tmpfs_is_known_as_memory() {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        assert!(dio_benches::in_memory(shm));
    }
    assert!(!dio_benches::in_memory(std::path::Path::new("/proc")));
}
