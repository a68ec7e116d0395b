//! Crash safety: a child process writing objects through every write path is
//! killed with SIGKILL at random moments. Afterwards every object is absent,
//! whole in an old version or whole in a new one (never torn), a new process
//! writes without tripping over the dead one's files, and the temporary-file sweep
//! leaves nothing behind.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use storage::Operator;
use tokio::io::AsyncWriteExt;

const CHILD_ENV: &str = "DIO_CRASH_CHILD_DIR";
const OBJECTS: u64 = 8;

/// Version `v` of object `k`: self-describing, so a reader can tell whole from
/// torn. `k`, `v`, the length, then bytes from a seed, then their SHA-256.
fn version(k: u64, v: u64) -> Vec<u8> {
    let len = 1000 + ((k * 7919 + v * 104_729) % (1 << 20)) as usize;
    let mut body = vec![0_u8; len];
    rand::rngs::StdRng::seed_from_u64(k << 32 | v).fill(&mut body[..]);
    let mut out = Vec::with_capacity(len + 56);
    out.extend_from_slice(&k.to_le_bytes());
    out.extend_from_slice(&v.to_le_bytes());
    out.extend_from_slice(&(len as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&Sha256::digest(&out));
    out
}

/// `Ok(version)` for a whole object `k`, `Err` for anything else.
fn check(k: u64, data: &[u8]) -> Result<u64, String> {
    if data.len() < 56 {
        return Err(format!("object {k}: {} bytes, torn", data.len()));
    }
    let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
    let (got_k, v) = (word(0), word(1));
    if got_k != k || data != version(k, v).as_slice() {
        return Err(format!(
            "object {k}: torn or foreign content ({} bytes)",
            data.len()
        ));
    }
    Ok(v)
}

/// The child: writes versions of every object for ever, through `write`, a
/// `Writer` in pieces, `copy` and `rename`, until it is killed.
#[test]
#[ignore = "run by crash_safety_under_sigkill in a child process"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let op = Operator::new(storage::services::Fs::new(&dir).unwrap());
    let op = op
        .clone()
        .with_options(op.options().with_write_chunk_size(64 << 10));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Made before the start, so the child spends its life writing.
    let versions: Vec<Vec<bytes::Bytes>> = (0..OBJECTS)
        .map(|k| (1..=4).map(|v| version(k, v).into()).collect())
        .collect();
    rt.block_on(async {
        let mut v = 1_u64;
        // Tell the parent we are writing.
        println!("started");
        std::io::stdout().flush().unwrap();
        loop {
            for k in 0..OBJECTS {
                let data = versions[k as usize][(v % 4) as usize].clone();
                let path = format!("o/{k}");
                match (k + v) % 4 {
                    0 => {
                        op.write(&path, data).await.unwrap();
                    }
                    1 => {
                        let mut writer = op.writer(&path).await.unwrap();
                        for piece in data.chunks(50_000) {
                            writer.write_all(piece).await.unwrap();
                        }
                        writer.close().await.unwrap();
                    }
                    2 => {
                        let staging = format!("staging/{k}");
                        op.write(&staging, data).await.unwrap();
                        op.copy(&staging, &path).await.unwrap();
                    }
                    _ => {
                        let staging = format!("staging/r{k}");
                        op.write(&staging, data).await.unwrap();
                        op.rename(&staging, &path).await.unwrap();
                    }
                }
            }
            v += 1;
        }
    });
}

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            found.extend(temp_files(&entry.path()));
        } else if name.starts_with(".dio-tmp.") {
            found.push(entry.path().display().to_string());
        }
    }
    found
}

#[test]
fn crash_safety_under_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xdead);
    let mut leftovers_seen = 0;
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until it writes, then let it run for a random while.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            assert!(n > 0, "the child exited before it started writing");
            if line.contains("started") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        child.wait().unwrap();

        // Every object: absent, or whole in some version.
        for k in 0..OBJECTS {
            match std::fs::read(dir.path().join(format!("o/{k}"))) {
                Ok(data) => {
                    check(k, &data).unwrap_or_else(|e| panic!("round {round}: {e}"));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        leftovers_seen += temp_files(dir.path()).len();
    }
    // The next process is not in the way of the dead ones' files.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fs = storage::services::Fs::new(dir.path()).unwrap();
    let op = Operator::new(fs.clone());
    rt.block_on(async {
        for k in 0..OBJECTS {
            op.write(&format!("o/{k}"), version(k, 1_000_000))
                .await
                .unwrap();
            let back = op.read(&format!("o/{k}")).await.unwrap();
            assert_eq!(check(k, &back).unwrap(), 1_000_000);
        }
        // Listings never show them; the sweep removes every one.
        let listed = op.list_recursive("").await.unwrap();
        assert!(listed.iter().all(|e| !e.name().starts_with(".dio-tmp.")));
        let removed = op
            .executor()
            .spawn_blocking(move || fs.remove_stale_temp_files(""))
            .await
            .unwrap()
            .unwrap();
        eprintln!("{leftovers_seen} leftovers seen over the rounds, {removed} swept at the end");
    });
    assert_eq!(
        temp_files(dir.path()),
        Vec::<String>::new(),
        "the sweep left files"
    );
}

/// Without `with_sync`, a write that replaces a file leaves its blocks to the
/// filesystem's delayed allocation, never reserved ahead ("unwritten" extents):
/// ext4 flushes a new file's data before the rename that replaces another
/// (`auto_da_alloc`) only while its blocks are still to be allocated, so a file
/// replaced with reserved extents could read as zeros after a power cut, neither
/// version. Asked of the filesystem with `filefrag` (e2fsprogs), where it maps
/// extents (ext4, XFS); skipped elsewhere.
#[test]
fn an_unsynced_replace_reserves_no_extents_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let op = Operator::new(storage::services::Fs::new(dir.path()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        op.write("t/manifest", vec![1_u8; 1 << 20]).await.unwrap();
        op.write("t/manifest", vec![2_u8; 1 << 20]).await.unwrap();
    });
    let file = dir.path().join("t/manifest");
    // ext4 starts the replacing file's writeback at the rename, and while that
    // writeback is under way its blocks read as "unwritten" too (they become
    // written when it ends). Wait for it, starting none: blocks reserved ahead
    // stay unwritten until the flusher writes them, seconds from now.
    let opened = std::fs::File::open(&file).unwrap();
    // SAFETY: `sync_file_range` only reads its arguments; the descriptor is open
    // for the whole call (`opened` lives past it).
    let waited = unsafe {
        libc::sync_file_range(
            std::os::fd::AsRawFd::as_raw_fd(&opened),
            0,
            0,
            libc::SYNC_FILE_RANGE_WAIT_BEFORE,
        )
    };
    assert_eq!(waited, 0, "{}", std::io::Error::last_os_error());
    drop(opened);
    let out = match Command::new("filefrag").arg("-v").arg(&file).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            eprintln!(
                "SKIPPED: filefrag cannot map this filesystem's extents: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED: no filefrag (e2fsprogs): {e}");
            return;
        }
    };
    assert!(!out.contains("unwritten"), "extents reserved ahead:\n{out}");
}
