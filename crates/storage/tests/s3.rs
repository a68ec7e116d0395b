//! The conformance suite on S3 (SeaweedFS, started by `scripts/test`), plus what
//! only S3 has: multipart uploads, pagination, credentials.

mod common_s3;
mod conformance;

conformance_tests!(optional common_s3::operator);
