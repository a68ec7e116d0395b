//! Ctrl-C (SIGINT) and SIGTERM during a run. By default either kills the process
//! at once, and a run leaves what it made behind: the storm's 1 GiB file in the
//! temp dir (memory, where that is a tmpfs), and with `--uri` the benchmark's
//! objects in the user's bucket. Instead, the first signal is noted; the run stops
//! at its next measurement ([`check`]), its fixtures are dropped (each removes what
//! it made) and `dio` exits with 130, as a shell expects of an interrupted command.
//! A second signal quits at once.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The exit code of a run that was interrupted (128 + SIGINT).
pub(crate) const EXIT_CODE: u8 = 130;

/// Catches Ctrl-C and SIGTERM for the rest of the process. Where they cannot be
/// caught, says so and leaves them to kill the process as before.
pub(crate) fn install() {
    let caught = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            eprintln!("dio: interrupted again: quitting without removing the run's files");
            std::process::exit(EXIT_CODE.into());
        }
        eprintln!(
            "dio: interrupted: removing the run's files and objects (interrupt again to quit at once)"
        );
    });
    if let Err(e) = caught {
        eprintln!("dio: cannot catch Ctrl-C ({e}): an interrupted run leaves its files behind");
    }
}

/// Whether a signal came.
pub(crate) fn happened() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err` once a signal came: the run stops here, and its fixtures are dropped on
/// the way out.
///
/// # Errors
///
/// "interrupted", once Ctrl-C or SIGTERM came.
pub(crate) fn check() -> Result<(), String> {
    if happened() {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}
