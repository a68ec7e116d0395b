//! `dio bench` end to end: the binary runs on small files and its JSON and chart
//! come out with the expected fields. No timing is asserted.

use std::process::Command;

use serde_json::Value;

mod common;

use common::{dio, texts};

/// A quick run of one small workload: the memory suite's 4 KiB reads of 1 MiB.
const MEMORY_4K: [&str; 9] = [
    "bench",
    "--quick",
    "--suite",
    "memory",
    "--filter",
    "range_read_4k",
    "--size",
    "1M",
    "--no-progress",
];

/// A reader that closed its end of the pipe (`dio bench | head`) is told about on
/// stderr, with a failed exit, not a panic; a JSON file asked for is still written,
/// replacing the one there whole.
#[test]
fn a_closed_stdout_is_an_error_and_the_json_file_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    std::fs::write(&json, "the previous results").unwrap();
    let run = |json: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dio"))
            .args(MEMORY_4K)
            .args(["--json", json])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before anything is printed.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(json.to_str().unwrap());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("dio: cannot write the results to stdout"),
        "{stderr}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    // A link is written through, not replaced by a file.
    let link = dir.path().join("latest.json");
    let target = dir.path().join("run-1.json");
    std::fs::write(&target, "the previous results").unwrap();
    std::os::unix::fs::symlink("run-1.json", &link).unwrap();
    let (code, stderr) = run(link.to_str().unwrap());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench");

    let (code, stderr) = run("-");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("dio: cannot write the JSON results to stdout"),
        "{stderr}"
    );
}

/// `--json` naming the file stdout already is (`/dev/stdout`, or the file stdout
/// was sent to) is `--json -`: stdout gets the JSON alone, the table goes to
/// stderr.
#[test]
fn json_to_a_name_of_stdout_is_json_alone() {
    let dir = tempfile::tempdir().unwrap();
    let redirected = dir.path().join("out.txt");
    let args = [&MEMORY_4K[..], &["--json"]].concat();
    let to_pipe = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(&args)
        .arg("/dev/stdout")
        .output()
        .unwrap();
    let to_file = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(&args)
        .arg(&redirected)
        .stdout(std::fs::File::create(&redirected).unwrap())
        .output()
        .unwrap();
    for (out, stdout) in [
        (&to_pipe, to_pipe.stdout.clone()),
        (&to_file, std::fs::read(&redirected).unwrap()),
    ] {
        let (_, stderr) = texts(out);
        assert!(out.status.success(), "{stderr}");
        let doc: Value = serde_json::from_slice(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&stdout)));
        assert_eq!(doc["tool"], "dio bench");
        assert!(stderr.contains("verdict"), "the table on stderr: {stderr}");
    }
    // Not `/dev/null` as stdout's file: the table is dropped there, as asked,
    // not moved to stderr.
    let to_null = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(&args)
        .arg("/dev/null")
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    let (_, stderr) = texts(&to_null);
    assert!(to_null.status.success(), "{stderr}");
    assert!(!stderr.contains("verdict"), "{stderr}");
}

#[test]
fn quick_filtered_bench_writes_json_and_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let png = dir.path().join("out.png");
    let svg = dir.path().join("out.svg");
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--filter",
        "read",
        "--size",
        "1M",
        "--no-progress",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    assert!(
        output.contains("ours_dedicated"),
        "the table is printed: {output}"
    );
    assert!(
        output.contains("/op"),
        "the memory suite reports time per operation: {output}"
    );
    assert!(
        output.contains("verdict"),
        "the run ends with verdicts: {output}"
    );
    assert!(output.contains("best peer"), "{output}");
    assert!(
        output.contains("memory: ours runs on the caller's thread"),
        "the memory suite's verdicts say where ours ran: {output}"
    );
    assert!(
        output.contains("Fs: client CPU time per GiB"),
        "a CPU table for fs: {output}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench");
    assert_eq!(doc["mode"], "quick");
    assert!(doc["machine"]["cpus"].as_u64().unwrap() >= 1);
    assert!(!doc["machine"]["cpu_model"].as_str().unwrap().is_empty());
    let results = doc["results"].as_array().unwrap();
    let mut fs_methods = std::collections::BTreeSet::new();
    let mut suites = std::collections::BTreeSet::new();
    for r in results {
        let workload = r["workload"].as_str().unwrap();
        assert!(workload.contains("read"), "filtered: {workload}");
        assert!(r["throughput_bytes_per_sec"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["median_seconds"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["iterations"].as_u64().unwrap() >= 2, "{r}");
        assert!(r["bytes_per_iteration"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["baseline"], "std", "{r}");
        assert!(r["ratio_to_baseline"].as_f64().unwrap() > 0.0, "{r}");
        suites.insert(r["suite"].as_str().unwrap().to_owned());
        if r["suite"] == "fs" {
            fs_methods.insert(r["method"].as_str().unwrap().to_owned());
        }
        if workload == "read_half" {
            assert_eq!(r["bytes_per_iteration"], 512 << 10, "half of --size 1M");
        }
        // CPU time per GiB where there is bandwidth; none for zero-copy slices.
        if r["suite"] == "fs" {
            assert!(r["cpu_seconds_per_gib"].as_f64().unwrap() > 0.0, "{r}");
        } else {
            assert!(r["cpu_seconds_per_gib"].is_null(), "{r}");
        }
    }
    assert_eq!(
        suites,
        ["fs", "memory"].map(String::from).into_iter().collect()
    );
    for m in [
        "ours_dedicated",
        "ours_global",
        "ours_caller_rt",
        "std",
        "tokio_fs",
        "opendal",
        "object_store",
    ] {
        assert!(fs_methods.contains(m), "{m} missing from {fs_methods:?}");
    }
    // fs: 9 read workloads (all but write) x 7 methods; memory: 8 x 5.
    assert_eq!(results.len(), 9 * 7 + 8 * 5);
    let chart = std::fs::read(&png).unwrap();
    assert!(chart.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG file");
    assert!(
        chart.len() > 10_000,
        "a chart, not an empty image: {} bytes",
        chart.len()
    );
    // The same results as SVG, from the JSON run's table: a second quick run.
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--no-progress",
        "--filter",
        "4k",
        "--size",
        "1M",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("range_read_4k"),
        "{chart:.200}"
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let jpg = dir.path().join("x.jpg");
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--filter",
        "nothing-matches",
        "--no-progress",
    ]);
    assert!(!ok);
    assert!(output.contains("no workload matches"), "{output}");
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--no-progress",
        "--filter",
        "4k",
        "--size",
        "1M",
        "--plot",
        jpg.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(output.contains("use a .svg or .png file"), "{output}");
    assert!(!jpg.exists(), "nothing is written for a bad argument");
    // Checked before the run: nothing of the run is printed.
    assert!(!output.contains("verdict"), "{output}");
    let (ok, output) = dio(&["bench", "--size", "12Q"]);
    assert!(!ok);
    assert!(output.contains("unknown unit"), "{output}");
    // One unit suffix, not a pile of them.
    for size in ["1MIBIB", "64KBB", "65536IB"] {
        let (ok, output) = dio(&["bench", "--size", size, "--quick", "--no-progress"]);
        assert!(!ok, "{size}: {output}");
        assert!(output.contains("unknown unit"), "{size}: {output}");
        assert!(!output.contains("verdict"), "{size}: {output}");
    }
    let (ok, output) = dio(&["bench", "--size", "2G"]);
    assert!(!ok);
    assert!(output.contains("at most 1G"), "{output}");
    let (ok, output) = dio(&["bench", "--size", "17179869185G"]);
    assert!(!ok);
    assert!(output.contains("too large"), "{output}");
    let (ok, output) = dio(&["bench", "isolation", "--concurrency", "0"]);
    assert!(!ok);
    assert!(output.contains("--concurrency"), "{output}");
    assert!(
        !output.contains("ticks"),
        "refused before the run: {output}"
    );
    // Reads in flight that no machine's memory holds (each has its own 8 MiB
    // buffer): refused before the file is written.
    let (ok, output) = dio(&["bench", "isolation", "--concurrency", "100000000"]);
    assert!(!ok);
    assert!(
        output.contains("100000000 reads in flight needs about")
            && output.contains("use a smaller --concurrency or --file-size"),
        "{output}"
    );
    assert!(
        !output.contains("ticks"),
        "refused before the run: {output}"
    );
    for what in ["isolation", "scale"] {
        let (ok, output) = dio(&["bench", what, "--file-size", "5G"]);
        assert!(!ok);
        assert!(output.contains("at most 4G"), "{what}: {output}");
    }
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--no-progress",
        "--uri",
        "s3://b?nope=1",
    ]);
    assert!(!ok);
    assert!(output.contains("--uri"), "{output}");
    assert!(output.contains("unknown query key"), "{output}");
    // `--uri` runs the S3 workloads alone: a suite beside it is refused, not
    // ignored.
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--no-progress",
        "--suite",
        "fs",
        "--uri",
        "s3://b/p",
    ]);
    assert!(!ok, "{output}");
    assert!(output.contains("cannot be used with"), "{output}");
    assert!(!output.contains("verdict"), "{output}");
    // So is a suite beside `--uri` for the query engine's workload (built with
    // DataFusion only).
    #[cfg(feature = "query")]
    {
        let query = ["bench", "query", "--quick", "--no-progress"];
        let (ok, output) = dio(&[&query[..], &["--suite", "fs", "--uri", "s3://b/p"]].concat());
        assert!(!ok, "{output}");
        assert!(output.contains("cannot be used with"), "{output}");
        assert!(!output.contains("verdict"), "{output}");
    }
    // The results and the chart in one file: the chart would overwrite the
    // results; refused before the run, whichever way the file is spelled.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.svg");
    let spelled = dir.path().join(".").join("r.svg");
    std::fs::create_dir(dir.path().join("x")).unwrap();
    let climbed = dir.path().join("x").join("..").join("r.svg");
    for (json, plot) in [(&file, &file), (&file, &spelled), (&climbed, &file)] {
        let (ok, output) = dio(&[
            "bench",
            "--quick",
            "--no-progress",
            "--json",
            json.to_str().unwrap(),
            "--plot",
            plot.to_str().unwrap(),
        ]);
        assert!(!ok, "{output}");
        assert!(
            output.contains("--json and --plot name the same file"),
            "{output}"
        );
        assert!(!output.contains("verdict"), "{output}");
        assert!(!file.exists(), "{output}");
    }
    // The main job's options before a subcommand, which does not read them: an
    // error, not a run of the subcommand with its defaults.
    for (option, value) in [("--uri", "s3://b/p"), ("--size", "1M"), ("--suite", "s3")] {
        for what in ["isolation", "scale"] {
            let (ok, output) = dio(&["bench", option, value, what, "--quick", "--no-progress"]);
            assert!(!ok, "{option} {what}: {output}");
            assert!(
                output.contains(&format!("{option} before `{what}`")),
                "{output}"
            );
            assert!(!output.contains("verdict"), "{output}");
        }
    }
    // An option given before a subcommand and again after it (clap takes each
    // level alone): refused, not one of them silently taken; so is --full before
    // and --quick after.
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let (a_svg, b_svg) = (a.replace(".json", ".svg"), b.replace(".json", ".svg"));
    for args in [
        &["bench", "--full", "isolation", "--quick", "--no-progress"][..],
        &["bench", "--quick", "scale", "--full", "--no-progress"],
        &["bench", "--quick", "--json", a, "scale", "--json", b],
        &[
            "bench",
            "--quick",
            "--filter",
            "ours",
            "isolation",
            "--filter=std",
        ],
        &[
            "bench", "--quick", "--plot", &a_svg, "scale", "--plot", &b_svg,
        ],
    ] {
        let (ok, output) = dio(args);
        assert!(!ok, "{args:?}: {output}");
        assert!(
            output.contains("given twice") || output.contains("cannot be used together"),
            "{args:?}: {output}"
        );
        assert!(!output.contains("ticks"), "{args:?}: {output}");
        assert!(!output.contains("verdict"), "{args:?}: {output}");
    }
    for file in [a, b, &a_svg, &b_svg] {
        assert!(!std::path::Path::new(file).exists(), "{file}");
    }
    // Help asked for is help, whatever else is given.
    let (ok, output) = dio(&["bench", "--quick", "scale", "--full", "--help"]);
    assert!(ok, "{output}");
    assert!(output.contains("Usage"), "{output}");
    // A --json that cannot be written is said before the run: a directory, a
    // missing one, and one where no file can be made (not even by root).
    let missing = dir.path().join("no-such-dir/out.json");
    let unwritable = std::path::Path::new("/proc/dio-out.json");
    for json in [dir.path(), missing.as_path(), unwritable] {
        let (ok, output) = dio(&[
            "bench",
            "--quick",
            "--no-progress",
            "--filter",
            "4k",
            "--json",
            json.to_str().unwrap(),
        ]);
        assert!(!ok, "{output}");
        assert!(output.contains("--json"), "{output}");
        assert!(
            !output.contains("verdict"),
            "checked before the run: {output}"
        );
    }
    // So is a --plot.
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--no-progress",
        "--filter",
        "4k",
        "--plot",
        "/proc/dio-chart.svg",
    ]);
    assert!(!ok, "{output}");
    assert!(output.contains("--plot /proc/dio-chart.svg"), "{output}");
    assert!(
        !output.contains("verdict"),
        "checked before the run: {output}"
    );
}

/// A suite named twice runs once: one row per workload and method.
#[test]
fn a_suite_named_twice_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let (ok, output) = dio(&[
        "bench",
        "--quick",
        "--no-progress",
        "--suite",
        "memory,memory",
        "--filter",
        "range_read_4k",
        "--size",
        "1M",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // memory: 5 methods.
    assert_eq!(doc["results"].as_array().unwrap().len(), 5, "{doc}");
}

/// A temp directory that cannot be made (or written) fails the run with one line
/// naming it, never a panic: the main job's fs and storm suites and isolation.
#[test]
fn a_temp_dir_that_cannot_be_made_is_one_line_not_a_panic() {
    for args in [
        &["bench", "--suite", "fs", "--filter", "range_read_4k"][..],
        &["bench", "--suite", "storm", "--filter", "4k"][..],
        &[
            "bench",
            "isolation",
            "--file-size",
            "1M",
            "--filter",
            "ours_dedicated",
        ][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_dio"))
            .args(args)
            .args(["--quick", "--no-progress"])
            .env("TMPDIR", "/nonexistent/dio-test")
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run dio");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot make a temp dir"),
            "{args:?}: {stderr}"
        );
    }
}

/// Runs `dio bench --quick --no-progress --size 1M` and `args`, signing as
/// `key`/`secret`, and checks that it fails with one line on stderr, never a
/// panic; returns that line.
fn fails_in_one_line(args: &[&str], key: &str, secret: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(["bench", "--quick", "--no-progress", "--size", "1M"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run dio");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    stderr
}

/// Set-up errors of the S3 main job are one clear line and a failed exit, never a
/// panic: an endpoint nobody answers on, and (with the test server) a bucket that
/// does not exist and a wrong secret.
#[test]
fn s3_set_up_errors_are_one_line_not_a_panic() {
    let run = |uri: &str, secret: &str| fails_in_one_line(&["--uri", uri], "dio-test-key", secret);
    let err = run("s3://b?endpoint=http://127.0.0.1:1&region=us-east-1", "x");
    assert!(err.contains("cannot connect"), "{err}");
    let Some(uri) = common::s3_uri("the S3 part") else {
        return;
    };
    let (_, query) = uri.split_once('?').unwrap();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let err = run(&format!("s3://dio-no-such-bucket?{query}"), &secret);
    assert!(err.contains("does not exist"), "{err}");
    let err = run(&uri, "wrong-secret");
    assert!(err.contains("permission denied"), "{err}");
}

/// A `--json` file the user may write, in a directory that takes no new file (an
/// immutable one here, which refuses root too), is written in place, where the
/// check before the run refused it for the directory.
#[test]
fn a_json_file_in_a_directory_that_takes_no_new_file_is_written_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = dir.path().join("fixed");
    std::fs::create_dir(&fixed).unwrap();
    let json = fixed.join("r.json");
    std::fs::write(&json, "the previous results").unwrap();
    let chattr = |flag: &str| {
        Command::new("chattr")
            .arg(flag)
            .arg(&fixed)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !chattr("+i") {
        assert!(
            std::env::var("DIO_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "DIO_REQUIRE_PRIVILEGED=1, yet chattr +i failed"
        );
        eprintln!(
            "skipped: chattr +i needs root (CAP_LINUX_IMMUTABLE) and a filesystem that has it"
        );
        return;
    }
    // Made mutable again however the test ends, so that its directory goes.
    struct Mutable<F: Fn()>(F);
    impl<F: Fn()> Drop for Mutable<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _mutable = Mutable(|| {
        chattr("-i");
    });
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(MEMORY_4K)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run dio");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tool"], "dio bench");
}

/// A suite refused at its set-up (the storm's file does not fit in the temp dir)
/// ends the run with its reason, after the suites before it are reported: their
/// results are not thrown away.
#[test]
fn a_suite_refused_at_its_set_up_keeps_the_results_before_it() {
    let mount = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("DIO_REQUIRE_PRIVILEGED").as_deref() != Ok("1"),
            "DIO_REQUIRE_PRIVILEGED=1, yet mounting a tmpfs failed"
        );
        eprintln!("skipped: mounting a tmpfs needs the right to mount");
        return;
    }
    struct Unmount<'a>(&'a std::path::Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(mount.path());
    // The memory suite needs no disk; the storm's file (64 MiB at 1 MiB) does
    // not fit in 32 MiB.
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(["bench", "--quick", "--no-progress", "--size", "1M"])
        .args(["--suite", "memory,storm", "--filter", "4k"])
        .env("TMPDIR", mount.path())
        .output()
        .expect("run dio");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("range_read_4k"),
        "the memory suite's table: {stdout}"
    );
    assert!(
        stderr.contains("storm"),
        "why the storm did not run: {stderr}"
    );
}

/// A `--uri` with credentials in it is refused, and the error hides them (the
/// backend's message shows the URI masked; the CLI's must not show it again).
#[test]
fn a_uri_with_credentials_is_refused_without_showing_them() {
    let err = fails_in_one_line(
        &[
            "--uri",
            "s3://AKIAEXAMPLEKEY:s3cr3tVALUE@bucket/p?region=us-east-1",
        ],
        "key",
        "secret",
    );
    assert!(err.contains("--uri"), "{err}");
    assert!(
        !err.contains("s3cr3tVALUE") && !err.contains("AKIAEXAMPLEKEY"),
        "{err}"
    );
}

/// A run whose objects cannot be deleted at its end (the bucket's policy denies
/// deletes) prints its table, then says what it left where, and fails: a script
/// must not take a run that left billed objects behind for a clean one.
#[test]
fn a_run_that_cannot_delete_its_objects_fails_after_its_table() {
    let server = dio_benches::mem_s3::MemS3::start("b", 1).unwrap();
    server.refuse_deletes();
    let uri = format!(
        "s3://b/keep?endpoint={}&region=us-east-1",
        server.endpoint()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(["bench", "--quick", "--no-progress", "--size", "1M"])
        .args(["--filter", "range_read", "--uri", &uri])
        .env("AWS_ACCESS_KEY_ID", "key")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .output()
        .expect("run dio");
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("range_read"), "the table: {stdout}");
    assert!(
        stderr.contains("were not all deleted") && stderr.contains("AccessDenied"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "said once: {stderr}");
}

/// An S3 endpoint that stores what is put and lists nothing, but refuses every
/// read of an object (403 `AccessDenied`): a bucket whose policy changes, or
/// whose credentials lose a right, midway through a run. One thread per
/// connection; it serves until the test ends.
fn refusing_reads() -> std::net::SocketAddr {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, target) = (
                        parts.next().unwrap_or("").to_owned(),
                        parts.next().unwrap_or("").to_owned(),
                    );
                    let (mut len, mut expect) = (0_usize, false);
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end().to_ascii_lowercase();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(v) = header.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        expect |= header == "expect: 100-continue";
                    }
                    if expect {
                        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let (status, extra, body) = match method.as_str() {
                        "PUT" => ("200 OK", "ETag: \"e\"\r\n", String::new()),
                        "GET" if target.contains("list-type=2") => (
                            "200 OK",
                            "",
                            "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
                                .to_owned(),
                        ),
                        "GET" => (
                            "403 Forbidden",
                            "",
                            "<Error><Code>AccessDenied</Code><Message>reads are refused now\
                             </Message><RequestId>r-refused</RequestId></Error>"
                                .to_owned(),
                        ),
                        "DELETE" => ("204 No Content", "", String::new()),
                        _ => ("404 Not Found", "", String::new()),
                    };
                    let head_only = method == "HEAD";
                    let sent = write!(
                        out,
                        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{}",
                        body.len(),
                        if head_only { "" } else { body.as_str() }
                    );
                    if sent.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A request that fails midway through a run (reads refused after the set-up
/// stored its objects) ends it with one line that names the method, the
/// workload and the server's error, and a failed exit, where a peer's or our
/// `expect` panicked.
#[test]
fn a_request_failing_midway_is_one_line_not_a_panic() {
    let addr = refusing_reads();
    let uri = format!("s3://b?endpoint=http://{addr}&region=us-east-1");
    let stderr = fails_in_one_line(&["--filter", "read", "--uri", &uri], "key", "secret");
    assert!(stderr.contains("failed midway"), "{stderr}");
    assert!(
        stderr.contains("AccessDenied") || stderr.contains("403") || stderr.contains("permission"),
        "{stderr}"
    );
}

/// `dio bench --uri` as the README runs it with a named profile (`AWS_PROFILE`, no
/// keys in the environment): our client finds the profile through the provider
/// chain, and every peer signs as the same identity, so the run measures them all
/// instead of panicking when a peer that knows no profiles reads. The objects it
/// wrote are gone from the bucket afterwards.
#[test]
fn a_run_with_profile_credentials_measures_every_client_and_leaves_nothing() {
    let Some(uri) = common::s3_uri("this test") else {
        return;
    };
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(
        &credentials,
        format!("[dio-bench]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    std::fs::write(&config, "[profile dio-bench]\nregion = us-east-1\n").unwrap();
    let json = dir.path().join("run.json");
    // A prefix of this run's own, to find what it leaves.
    let (bucket, query) = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('?'))
        .unwrap();
    let bucket = bucket.split('/').next().unwrap();
    let prefix = format!("dio-cli-profile-{}/", std::process::id());
    let run_uri = format!("s3://{bucket}/{prefix}?{query}");
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args([
            "bench",
            "--quick",
            "--no-progress",
            "--size",
            "1M",
            "--filter",
            "read_half",
            "--uri",
            &run_uri,
            "--json",
            json.to_str().unwrap(),
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_PROFILE", "dio-bench")
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_CONFIG_FILE", &config)
        // No instance metadata here: a client that looked for it would wait.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("run dio");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{output}");
    let line = common::line_starting(&output, "S3 credentials: ");
    assert!(line.contains("profile"), "{line}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let measured: std::collections::BTreeSet<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["throughput_bytes_per_sec"].as_f64().unwrap() > 0.0)
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    for method in ["ours_dedicated", "opendal", "object_store"] {
        assert!(
            measured.contains(method),
            "{method} not measured: {measured:?}"
        );
    }
    let op = storage::Operator::from_uri(&run_uri).unwrap();
    let left = op.blocking().list_recursive("").unwrap();
    assert!(left.is_empty(), "left in the bucket: {left:?}");
}

/// `dio bench --suite s3` without `--uri`: the S3 workloads against a server in the
/// process, every client measured (raw hyper too: the server takes unsigned
/// requests), each with its CPU time per GiB, the server's threads not counted.
#[test]
fn s3_suite_without_a_uri_runs_against_the_in_process_server() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s3.json");
    let (ok, output) = dio(&[
        "bench",
        "--suite",
        "s3",
        "--quick",
        "--no-progress",
        "--size",
        "1M",
        "--filter",
        "read_half",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(ok, "{output}");
    assert!(output.contains("S3 server: in process"), "{output}");
    assert!(output.contains("S3: client CPU time per GiB"), "{output}");
    assert!(
        output.contains("CPU "),
        "the verdict names our CPU: {output}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = doc["results"].as_array().unwrap();
    let methods: std::collections::BTreeSet<&str> = results
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        [
            "ours_dedicated",
            "ours_no_checksum",
            "raw_hyper",
            "opendal",
            "object_store",
            "opendal_to_bytes"
        ]
        .into_iter()
        .collect()
    );
    for r in results {
        assert_eq!(r["suite"], "s3", "{r}");
        assert_eq!(r["workload"], "read_half", "{r}");
        assert_eq!(r["bytes_per_iteration"], 512 << 10, "{r}");
        assert_eq!(r["baseline"], "raw_hyper", "{r}");
        assert!(r["cpu_seconds_per_gib"].as_f64().unwrap() > 0.0, "{r}");
    }
}

/// `dio bench --uri` against the test server: the header names the endpoint and
/// where the credentials came from (never the secret), and the write is measured
/// with checksums on and off, their ratio printed, and each peer's write once.
#[test]
fn s3_header_names_the_credential_source_and_prices_checksums_and_checks() {
    let Some(uri) = common::s3_uri("this test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s3.json");
    // A quick run of the S3 write against `uri`, its results in `json`.
    let write_run = |uri: &str| {
        dio(&[
            "bench",
            "--quick",
            "--no-progress",
            "--size",
            "1M",
            "--filter",
            "write",
            "--uri",
            uri,
            "--json",
            json.to_str().unwrap(),
        ])
    };
    let (ok, output) = write_run(&uri);
    assert!(ok, "{output}");
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    assert!(!output.contains(&secret), "the secret shows: {output}");
    let line = common::line_starting(&output, "S3 credentials: ");
    assert!(line.contains("environment"), "{line}");
    assert!(line.contains(&key[key.len() - 4..]), "{line}");
    assert!(!line.contains(&key), "the key id is masked: {line}");
    assert!(output.contains("S3 checksums: CRC64NVME"), "{output}");
    assert!(
        output.contains("objects: 1 MiB small, 8 MiB big"),
        "{output}"
    );
    let price = common::line_starting(&output, "S3 price of integrity");
    assert!(price.contains("write "), "{price}");
    assert!(
        output.contains("write checks: on (ours_unchecked: off)"),
        "{output}"
    );
    let price = common::line_starting(&output, "S3 price of the fs meaning");
    assert!(price.contains("write "), "{price}");
    let methods = methods_in(&json);
    assert!(methods.contains("ours_dedicated"), "{methods:?}");
    assert!(methods.contains("ours_no_checksum"), "{methods:?}");
    assert!(methods.contains("ours_unchecked"), "{methods:?}");
    // OpenDAL's write is measured once: its "to bytes" form only differs in reads.
    assert!(methods.contains("opendal"), "{methods:?}");
    assert!(!methods.contains("opendal_to_bytes"), "{methods:?}");
    // The variants have their price lines, not verdicts of their own.
    let verdicts = &output[output.find("verdict").expect("a verdict")..];
    assert!(verdicts.contains("ours_dedicated"), "{verdicts}");
    for variant in ["ours_no_checksum", "ours_unchecked"] {
        assert!(!verdicts.contains(variant), "{verdicts}");
    }
    // Where the URI turns checksums and write checks off for ours, the variants
    // would measure ours against itself: neither runs, and no price is claimed.
    let (ok, output) = write_run(&format!("{uri}&checksum=none&write_checks=false"));
    assert!(ok, "{output}");
    assert!(!output.contains("S3 price of"), "{output}");
    assert!(output.contains("write checks: off"), "{output}");
    let methods = methods_in(&json);
    assert!(methods.contains("ours_dedicated"), "{methods:?}");
    assert!(!methods.contains("ours_no_checksum"), "{methods:?}");
    assert!(!methods.contains("ours_unchecked"), "{methods:?}");
}

/// The methods a run's `--json` file has results of.
fn methods_in(json: &std::path::Path) -> std::collections::BTreeSet<String> {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["method"].as_str().unwrap().to_owned())
        .collect()
}

/// Starts `program` (`dio`, or `nohup` running it) with `args` and `env`, waits until `made` says the run has made
/// something to clean up, sends it `signal` and returns how it ended and its
/// stderr. A `dio` still running when this fails is killed.
fn interrupted(
    program: &str,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
    signal: rustix::process::Signal,
    made: impl Fn() -> bool,
) -> (std::process::ExitStatus, String) {
    /// Kills the child unless it was waited for.
    struct Running(Option<std::process::Child>);
    impl Drop for Running {
        fn drop(&mut self) {
            if let Some(mut child) = self.0.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run dio");
    let mut running = Running(Some(child));
    // A guard against a run that never makes anything (it would fail below), not a
    // measure of time.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while !made() {
        let child = running.0.as_mut().unwrap();
        assert!(
            child.try_wait().unwrap().is_none(),
            "dio ended before it made anything"
        );
        assert!(std::time::Instant::now() < deadline, "dio made nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let child = running.0.take().unwrap();
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), signal).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Ctrl-C (or SIGTERM) in the middle of a run stops it at its next measurement and
/// removes what it made before `dio` ends as the signal would have ended it (so a
/// shell loop around it stops too): the storm's file (78 MiB here, 1 GiB by
/// default) was left in the temp dir, on a tmpfs in memory.
#[test]
fn an_interrupted_run_removes_its_temp_files_and_ends_by_the_signal() {
    use std::os::unix::process::ExitStatusExt as _;
    for (signal, number) in [
        (rustix::process::Signal::INT, 2),
        (rustix::process::Signal::TERM, 15),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let entries = || std::fs::read_dir(tmp.path()).unwrap().count();
        let (status, stderr) = interrupted(
            env!("CARGO_BIN_EXE_dio"),
            &[
                "bench",
                "--suite",
                "storm",
                "--filter",
                "4k",
                "--no-progress",
            ],
            &[("TMPDIR", tmp.path().as_os_str())],
            signal,
            || entries() > 0,
        );
        assert_eq!(
            status.signal(),
            Some(number),
            "{signal:?}: {status:?} {stderr}"
        );
        assert!(stderr.contains("dio: interrupted"), "{signal:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{signal:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{signal:?}: left {left:?}");
    }
}

/// `dio bench --uri` interrupted once its objects are in the bucket: they are
/// deleted before it ends. Started as `nohup` starts a program (SIGHUP ignored),
/// which must not keep it from catching the interrupt.
#[test]
fn an_interrupted_s3_run_removes_its_objects() {
    use std::os::unix::process::ExitStatusExt as _;
    let Some(uri) = common::s3_uri("this test") else {
        return;
    };
    let (bucket, query) = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('?'))
        .unwrap();
    let bucket = bucket.split('/').next().unwrap();
    let run_uri = format!(
        "s3://{bucket}/dio-cli-interrupted-{}/?{query}",
        std::process::id()
    );
    let op = storage::Operator::from_uri(&run_uri).unwrap().blocking();
    let dio = env!("CARGO_BIN_EXE_dio");
    let (status, stderr) = interrupted(
        "nohup",
        &[
            dio,
            "bench",
            "--size",
            "1M",
            "--no-progress",
            "--uri",
            &run_uri,
        ],
        &[],
        rustix::process::Signal::INT,
        || !op.list_recursive("").unwrap().is_empty(),
    );
    assert_eq!(status.signal(), Some(2), "{status:?} {stderr}");
    assert!(stderr.contains("dio: interrupted"), "{stderr}");
    let left = op.list_recursive("").unwrap();
    assert!(left.is_empty(), "left in the bucket: {left:?}");
}
