//! Shared workload definitions for the benchmarks.
