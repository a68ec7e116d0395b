//! `dio bench scale` and `dio bench query` end to end, in quick mode: every method
//! and path reports, the JSON and the chart come out. No timing is asserted.

use serde_json::Value;

mod common;

use common::dio;

#[test]
fn scale_reports_both_sweeps_for_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("scale.json");
    let svg = dir.path().join("scale.svg");
    let (ok, output) = dio(&[
        "bench",
        "scale",
        "--quick",
        "--no-progress",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    assert!(output.contains("by reads outstanding"), "{output}");
    assert!(output.contains("by read size"), "{output}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench scale");
    let rows = doc["results"].as_array().unwrap();
    // Quick: 3 concurrency levels and 3 sizes, 4 methods each.
    assert_eq!(rows.len(), (3 + 3) * 4, "{rows:?}");
    for method in ["ours", "spawn_blocking", "object_store", "opendal"] {
        for sweep in ["concurrency", "size"] {
            let n = rows
                .iter()
                .filter(|r| r["method"] == method && r["sweep"] == sweep)
                .count();
            assert_eq!(n, 3, "{method} {sweep}");
        }
    }
    for r in rows {
        assert!(r["requests"].as_u64().unwrap() >= 1, "{r}");
        assert!(r["bytes_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(
            r["p50_us"].as_f64().unwrap() <= r["p99_us"].as_f64().unwrap(),
            "{r}"
        );
    }
    let levels: Vec<u64> = rows
        .iter()
        .filter(|r| r["sweep"] == "concurrency" && r["method"] == "ours")
        .map(|r| r["concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(levels, [1, 16, 256]);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg"), "an SVG file");
    assert!(chart.contains("by reads outstanding"), "titled panels");
}

#[test]
fn scale_refuses_a_file_smaller_than_its_reads() {
    let (ok, output) = dio(&["bench", "scale", "--file-size", "1M", "--no-progress"]);
    assert!(!ok, "{output}");
    assert!(output.contains("smaller than the largest read"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
}

/// The default build (the README's main job) leaves DataFusion out: `bench query`
/// says how to get it instead of failing as an unknown command.
#[cfg(not(feature = "query"))]
#[test]
fn without_the_query_feature_bench_query_says_how_to_build_it() {
    let (ok, output) = dio(&["bench", "query", "--quick", "--no-progress"]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("built without the `query` feature")
            && output.contains("--features query -- bench query"),
        "{output}"
    );
    assert!(!output.contains("panicked"), "{output}");
}

#[cfg(feature = "query")]
#[test]
fn query_runs_every_query_through_every_path_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("query.json");
    let (ok, output) = dio(&[
        "bench",
        "query",
        "--quick",
        "--no-progress",
        "--suite",
        "fs,mem-s3",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench query");
    let results = &doc["results"];
    let queries = results["queries"].as_array().unwrap();
    // 4 queries x 3 paths x 2 suites.
    assert_eq!(queries.len(), 4 * 3 * 2, "{queries:?}");
    for r in queries {
        assert!(
            r["bytes_per_run"].as_u64().unwrap() > 0,
            "every path reads: {r}"
        );
        assert!(r["requests_per_run"].as_u64().unwrap() > 0, "{r}");
        assert!(r["ratio_to_datafusion"].as_f64().unwrap() > 0.0, "{r}");
    }
    let paths: std::collections::BTreeSet<&str> = queries
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["datafusion", "io_object_store", "ours"]
            .into_iter()
            .collect()
    );
    let isolation = results["isolation"].as_array().unwrap();
    assert_eq!(isolation.len(), 3 * 2, "{isolation:?}");
    for r in isolation {
        assert!(r["ticks"].as_u64().unwrap() > 0, "{r}");
    }
    assert_eq!(results["bars"].as_array().unwrap().len(), 2 * 2);
}

/// A suite that fails after another finished (here the fs suite, whose temp dir
/// cannot be made) fails the run, naming why, but the finished suite's results
/// are reported, as `dio bench` reports its suites before a failed one.
#[cfg(feature = "query")]
#[test]
fn query_keeps_the_suites_before_one_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("query.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dio"))
        .args([
            "bench",
            "query",
            "--quick",
            "--no-progress",
            "--no-isolation",
            "--suite",
            "mem-s3,fs",
            "--json",
        ])
        .arg(&json)
        .env("TMPDIR", "/nonexistent/dio-test")
        .output()
        .unwrap();
    let (stdout, stderr) = common::texts(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot make a temp dir"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("mem_s3"), "{stdout}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let queries = doc["results"]["queries"].as_array().unwrap();
    // 4 queries x 3 paths, of the suite that ran.
    assert_eq!(queries.len(), 4 * 3, "{queries:?}");
    assert!(
        queries.iter().all(|r| r["suite"] == "mem_s3"),
        "{queries:?}"
    );
}

#[test]
fn scale_runs_only_the_methods_a_filter_names() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("scale.json");
    let (ok, output) = dio(&[
        "bench",
        "scale",
        "--quick",
        "--no-progress",
        "--filter",
        "spawn",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3 + 3, "{rows:?}");
    assert!(
        rows.iter().all(|r| r["method"] == "spawn_blocking"),
        "{rows:?}"
    );
    let (ok, output) = dio(&["bench", "scale", "--quick", "--filter", "nothing-matches"]);
    assert!(!ok, "{output}");
    assert!(output.contains("matches no scale method"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
}
