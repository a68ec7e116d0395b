//! The conformance suite on the memory backend.

mod conformance;

conformance_tests!(storage::Operator::new(storage::services::Memory::new()));
