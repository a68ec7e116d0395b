//! Ctrl-C (SIGINT) and SIGTERM during a run. By default either kills the process
//! at once, and a run leaves what it made behind: the storm's 1 GiB file in the
//! temp dir (memory, where that is a tmpfs), and with `--uri` the benchmark's
//! objects in the user's bucket. Instead, the first signal is noted; the run stops
//! at its next measurement ([`check`]), its fixtures are dropped (each removes what
//! it made), and then the process ends as the signal would have ended it
//! ([`end_as_signalled`]), so a shell loop around `dio` stops too. A second signal
//! ends it at once. SIGHUP is left alone (`nohup` ignores it, and a closed
//! terminal still ends the run).

use std::io::Write as _;
use std::sync::atomic::{AtomicI32, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// The first signal that came, or 0.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Catches SIGINT and SIGTERM for the rest of the process, on a thread of its own.
/// Where they cannot be caught, says so and leaves them to kill the process.
pub(crate) fn install() {
    let caught = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).and_then(|mut signals| {
        std::thread::Builder::new()
            .name("dio-signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    // Written, not printed: a closed stderr must not panic here.
                    // Set-ups under way in the fixtures stop too.
                    dio_benches::stop();
                    if SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                        let _ = writeln!(
                            std::io::stderr(),
                            "dio: interrupted again: quitting without removing the run's files"
                        );
                        end(signal);
                    }
                    let _ = writeln!(
                        std::io::stderr(),
                        "dio: interrupted: removing the run's files and objects (interrupt again to quit at once)"
                    );
                }
            })
            .map(drop)
    });
    if let Err(e) = caught {
        eprintln!("dio: cannot catch Ctrl-C ({e}): an interrupted run leaves its files behind");
    }
}

/// Whether a signal came.
pub(crate) fn happened() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
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

/// Ends the process as the signal that came would have (128 + its number for the
/// shell, and killed by it for a parent that asks), once the run's files are gone;
/// returns if none came.
pub(crate) fn end_as_signalled() {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => {}
        signal => end(signal),
    }
}

fn end(signal: i32) -> ! {
    // The signal's default action (terminate) on this process; the exit below is
    // for a platform where that fails.
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}
