//! `dio bench isolation` end to end. Its own test binary, its tests one at a time, so
//! no other test loads the machine while one runs.
//!
//! No timing is asserted: the control is made to stall the caller's runtime by
//! construction (`--control-stall`, a blocking sleep on the caller's thread after
//! each read), so the benchmark's own check that the control stalls holds on any
//! machine. What the test checks is the shape of the report. The check itself, both
//! ways, is unit-tested on fixed samples (`dio_benches::isolation`).

mod common;

use common::dio;

use serde_json::Value;

/// A quick isolation run on a 16 MiB file, 2 reads in flight, whose control stalls
/// by construction, writing its JSON to `json`; `extra` arguments added.
fn quick_isolation(json: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec![
        "bench",
        "isolation",
        "--quick",
        "--no-progress",
        "--file-size",
        "16M",
        "--concurrency",
        "2",
        "--control-stall",
        "100ms",
        "--json",
        json.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dio(&args)
}

/// One test of this binary at a time: two of them run the benchmark, and one
/// loading the CPUs while the other measures its no-load reference would spoil it.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn isolation_bench_reports_every_method() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("iso.json");
    let (ok, output) = quick_isolation(
        &json,
        &[
            "--blocking-threads",
            "3",
            "--bulk-threads",
            "2",
            "--nice",
            "12",
        ],
    );
    assert!(ok, "{output}");
    // Held to the default pool's bars, and named as what it is: not the default.
    assert!(
        output.contains("ours_dedicated (pool as configured: see the header):"),
        "the verdict line: {output}"
    );
    assert!(!output.contains("(default pool)"), "{output}");
    // Each read is a sixteenth of the file.
    assert!(
        output.contains("2 x 1 MiB range reads"),
        "the reads: {output}"
    );
    // The pool as asked for, as its threads report it.
    assert!(
        output.contains("our pool: 2 workers, 3 blocking threads (2 copying at once), nice 12"),
        "the pool: {output}"
    );
    // Beside the one-buffer copy, the copy into as many buffers as reads in flight.
    assert!(
        output.contains(
            "one thread's copy into 2 buffers in turn, the memory 2 reads in flight write to"
        ),
        "the rotating baseline: {output}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench isolation");
    let rows = doc["results"].as_array().unwrap();
    let methods: Vec<&str> = rows.iter().map(|r| r["method"].as_str().unwrap()).collect();
    assert_eq!(methods.first(), Some(&"no_load"));
    for m in [
        "ours_dedicated",
        "ours_global",
        "opendal",
        "object_store",
        "io_object_store",
        "dio_store",
        "tokio_fs",
        "one_thread",
        "one_thread_rotating",
    ] {
        assert!(methods.contains(&m), "{m} missing from {methods:?}");
    }
    assert!(methods.last().unwrap().starts_with("std_in_async"));
    for r in rows {
        assert!(r["ticks"].as_u64().unwrap() > 0, "{r}");
        for key in [
            "lateness_p50_ms",
            "lateness_p99_ms",
            "lateness_max_ms",
            "cpu_progress",
        ] {
            assert!(r[key].as_f64().is_some(), "{key} in {r}");
        }
        let io = r["io_bytes_per_sec"].as_f64().unwrap();
        assert_eq!(io > 0.0, r["method"] != "no_load", "{r}");
    }
}

#[test]
fn a_bad_control_stall_is_a_clear_error() {
    let _serial = serial();
    let (ok, output) = dio(&["bench", "isolation", "--control-stall", "5h"]);
    assert!(!ok);
    assert!(output.contains("use ms or s"), "{output}");
}

#[test]
fn a_filter_runs_the_matching_methods_beside_the_reference_and_the_control() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("iso.json");
    // Isolation draws no chart: a `--plot` is refused before the run, not ignored.
    let svg = dir.path().join("chart.svg");
    let (ok, output) = quick_isolation(
        &json,
        &["--filter", "one_thread", "--plot", svg.to_str().unwrap()],
    );
    assert!(!ok, "{output}");
    assert!(output.contains("draws no chart"), "{output}");
    assert!(!output.contains("ticks"), "the run started: {output}");
    assert!(!svg.exists());
    let (ok, output) = quick_isolation(&json, &["--filter", "one_thread"]);
    assert!(ok, "{output}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let methods: Vec<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "no_load",
            "one_thread",
            "one_thread_rotating",
            "std_in_async (control)"
        ]
    );
    // The verdict compares with methods the filter left out: it says so.
    assert!(output.contains("no verdict"), "{output}");
    assert!(
        !output.contains("ours_dedicated (default pool):"),
        "{output}"
    );

    let (ok, output) = dio(&[
        "bench",
        "isolation",
        "--quick",
        "--filter",
        "nothing-matches",
    ]);
    assert!(!ok);
    assert!(output.contains("selects no method"), "{output}");
    assert!(
        output.contains("ours_dedicated"),
        "names the methods: {output}"
    );
}
