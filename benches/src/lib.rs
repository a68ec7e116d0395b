//! Benchmark workloads, defined once and shared by the criterion benches and the
//! `dio bench` command.
//!
//! [`fs::Fixture`] holds every method under test (our `Operator` in its three
//! executor modes, std, `tokio::fs`, OpenDAL and object_store) over the same files;
//! [`fs::Fixture::run`] performs one iteration of a [`fs::Workload`] with a
//! [`fs::Method`] and returns the bytes it moved.

pub mod fs;
pub mod isolation;
pub mod mem_s3;
pub mod memory;
pub mod query;
pub mod s3;
pub mod scale;
pub mod storm;

/// `err` and every cause under it, on one line: `a: b: c`.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
