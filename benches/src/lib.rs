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
pub mod s3;
