//! The conformance suite on S3 (SeaweedFS, started by `scripts/test`) with
//! writes unchecked (`S3Builder::write_checks(false)`: keys as S3 has them): every
//! behaviour but the fs meaning of directories, which these writes give up (see
//! `conformance_tests!(keys ..)`).

mod common_s3;
mod conformance;

conformance_tests!(keys common_s3::unchecked_operator);
