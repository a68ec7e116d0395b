//! What the `dio` end-to-end tests share.

use std::process::Command;

/// Runs the `dio` binary with `args`; whether it succeeded, and what it printed
/// (stdout, then stderr).
pub(crate) fn dio(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dio"))
        .args(args)
        .output()
        .expect("run dio");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
