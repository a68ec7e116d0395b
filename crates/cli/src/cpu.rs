//! CPU time the client spends: the process's CPU time (user and system, every
//! thread: the caller's runtime, our pool, the peers' tasks), less the threads of a
//! server running inside the process (the in-process S3 endpoint), which is not
//! the client's cost.
//!
//! On a machine where the server shares the cores with the client, the client that
//! burns fewer cycles per byte leaves more to the server (and to the caller's own
//! work), so `dio bench` reports CPU time per GiB beside throughput.

use std::time::Duration;

/// Reads the client's CPU time so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuClock {
    /// Threads whose name starts with this are the in-process server's.
    server_threads: Option<String>,
}

impl CpuClock {
    /// The whole process is the client.
    pub(crate) fn process() -> Self {
        Self::default()
    }

    /// The process less the threads named `prefix…` (a server in the process).
    pub(crate) fn without_threads(prefix: &str) -> Self {
        Self {
            server_threads: Some(prefix.to_owned()),
        }
    }

    /// The client's CPU time since the process started; `None` where the clock
    /// cannot be read.
    pub(crate) fn now(&self) -> Option<Duration> {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        let process = Duration::new(
            u64::try_from(ts.tv_sec).ok()?,
            u32::try_from(ts.tv_nsec).ok()?,
        );
        match &self.server_threads {
            None => Some(process),
            Some(prefix) => process.checked_sub(threads_cpu(prefix)?),
        }
    }
}

/// The CPU time of this process's threads whose name starts with `prefix`, from
/// `/proc/self/task/<tid>/schedstat` (nanoseconds on the CPU, its first field).
fn threads_cpu(prefix: &str) -> Option<Duration> {
    // A kernel without per-thread scheduler statistics: no figure, rather than one
    // that silently counts the server as the client.
    std::fs::metadata("/proc/thread-self/schedstat").ok()?;
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        // A thread can exit between the listing and the reads: skip it (its time
        // is no longer in the sum, nor does it run any more).
        let Ok(name) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !name.starts_with(prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        total += Duration::from_nanos(ns);
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_cpu() -> Duration {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// Spins until this thread has spent `at_least` on the CPU.
    fn spin(at_least: Duration) {
        let start = thread_cpu();
        while thread_cpu() - start < at_least {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_server_threads_cpu_is_not_the_clients() {
        let client = CpuClock::process();
        let without = CpuClock::without_threads("cpu-test-srv");
        let (c0, w0) = (client.now().expect("clock"), without.now().expect("clock"));
        let (spun, wait) = std::sync::mpsc::channel();
        let (go, release) = std::sync::mpsc::channel::<()>();
        let server = std::thread::Builder::new()
            .name("cpu-test-srv".into())
            .spawn(move || {
                spin(Duration::from_millis(200));
                spun.send(()).expect("send");
                // Stay alive while the clocks are read: an exited thread's time
                // leaves the per-thread sum but not the process's.
                let _ = release.recv();
            })
            .expect("spawn");
        wait.recv().expect("the server thread spun");
        // Read in the reverse order: the process's span holds the other's, so
        // whatever else the test process ran in the other's counts in the
        // process's too (sibling tests spinning while this thread waited between
        // the two reads), and the server thread's 200 ms count only there.
        let w1 = without.now().expect("clock");
        let c1 = client.now().expect("clock");
        drop(go);
        server.join().expect("server thread");
        let difference = (c1 - c0).saturating_sub(w1 - w0);
        assert!(
            difference >= Duration::from_millis(100),
            "process {:?}, without the server {:?}",
            c1 - c0,
            w1 - w0
        );
    }
}
