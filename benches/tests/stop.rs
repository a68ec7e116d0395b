//! A run asked to stop (the CLI's first Ctrl-C) stops a fixture's long set-up.
//! Its own test binary: the stop is for the whole process.

/// The storm's file, which may be many GiB, is not written once the run is to
/// stop: building the fixture fails with "interrupted", as every stop does.
#[test]
fn a_stopped_run_builds_no_storm_file() {
    dio_benches::stopped().unwrap();
    dio_benches::stop();
    assert_eq!(dio_benches::stopped().unwrap_err(), "interrupted");
    let pool = dio_benches::dedicated_pool("stop-test").unwrap();
    let storms = [dio_benches::storm::Storm::ALL[0]];
    let err = match dio_benches::storm::Fixture::new(pool, 64 << 20, &storms) {
        Ok(_) => panic!("the storm's file was written after the stop"),
        Err(e) => e,
    };
    assert_eq!(err, "interrupted");
}
