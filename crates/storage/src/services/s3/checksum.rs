//! [`Checksum`]: the flexible checksums S3 checks on writes and returns on reads
//! (`x-amz-checksum-*`), computed with `crc-fast` (SIMD CRCs).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use crc_fast::CrcAlgorithm;
use http::{HeaderMap, HeaderName};

use crate::{Error, ErrorKind, Result};

/// A checksum algorithm S3 computes for itself and compares with ours: on a `PUT`
/// and on each part of a multipart upload the server refuses a body whose checksum
/// differs (`BadDigest`), and it stores the object's checksum, which full reads
/// check against the bytes received.
///
/// [`Crc64Nvme`](Self::Crc64Nvme), the default, checksums a multipart object as a
/// whole (S3's `FULL_OBJECT` type), so every object written with it is checked on
/// full reads. [`Crc32c`](Self::Crc32c) and [`Crc32`](Self::Crc32) are asked for
/// as `FULL_OBJECT` too. Full reads check any of the three the server returns
/// (objects the AWS SDKs and CLI upload carry a CRC32 by default), whichever this
/// backend writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Checksum {
    /// CRC-32 (ISO-HDLC, as zlib and Ethernet), 4 bytes: the AWS SDKs' default
    /// for uploads.
    Crc32,
    /// CRC-32C (Castagnoli), 4 bytes.
    Crc32c,
    /// CRC-64/NVME, 8 bytes: S3's default since 2025.
    Crc64Nvme,
}

impl Checksum {
    /// S3's name: `CRC32`, `CRC32C`, `CRC64NVME`.
    pub fn name(self) -> &'static str {
        match self {
            Checksum::Crc32 => "CRC32",
            Checksum::Crc32c => "CRC32C",
            Checksum::Crc64Nvme => "CRC64NVME",
        }
    }

    /// `x-amz-checksum-crc32`, `x-amz-checksum-crc32c`, `x-amz-checksum-crc64nvme`.
    pub(crate) fn header(self) -> HeaderName {
        HeaderName::from_static(match self {
            Checksum::Crc32 => "x-amz-checksum-crc32",
            Checksum::Crc32c => "x-amz-checksum-crc32c",
            Checksum::Crc64Nvme => "x-amz-checksum-crc64nvme",
        })
    }

    fn algorithm(self) -> CrcAlgorithm {
        match self {
            Checksum::Crc32 => CrcAlgorithm::Crc32IsoHdlc,
            Checksum::Crc32c => CrcAlgorithm::Crc32Iscsi,
            Checksum::Crc64Nvme => CrcAlgorithm::Crc64Nvme,
        }
    }

    /// A running checksum.
    pub(crate) fn digest(self) -> Digest {
        Digest {
            checksum: self,
            inner: crc_fast::Digest::new(self.algorithm()),
        }
    }

    /// The checksum of `pieces`, one after the other.
    pub(crate) fn of<'a>(self, pieces: impl IntoIterator<Item = &'a [u8]>) -> u64 {
        let mut digest = self.digest();
        for piece in pieces {
            digest.update(piece);
        }
        digest.value()
    }

    /// The checksum of `a` then `b`, from theirs (`b_len`: the length of `b`).
    pub(crate) fn combine(self, a: u64, b: u64, b_len: u64) -> u64 {
        crc_fast::checksum_combine(self.algorithm(), a, b, b_len)
    }

    /// `value` as S3 sends it: base64 of the big-endian bytes.
    pub(crate) fn encode(self, value: u64) -> String {
        let engine = base64::engine::general_purpose::STANDARD;
        match self {
            Checksum::Crc32 | Checksum::Crc32c => engine.encode((value as u32).to_be_bytes()),
            Checksum::Crc64Nvme => engine.encode(value.to_be_bytes()),
        }
    }

    /// The whole-object checksum a response carries, if it has one of ours (a
    /// composite checksum of parts, `<base64>-<parts>`, checks nothing here).
    pub(crate) fn in_response(headers: &HeaderMap) -> Option<(Checksum, String)> {
        let composite = headers
            .get("x-amz-checksum-type")
            .is_some_and(|t| t.as_bytes().eq_ignore_ascii_case(b"COMPOSITE"));
        if composite {
            return None;
        }
        [Checksum::Crc64Nvme, Checksum::Crc32c, Checksum::Crc32]
            .into_iter()
            .find_map(|checksum| {
                let value = headers.get(checksum.header())?.to_str().ok()?;
                (!value.contains('-')).then(|| (checksum, value.to_owned()))
            })
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Checksum {
    type Err = Error;

    /// `crc32`, `crc32c` or `crc64nvme`, in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "crc32" => Ok(Checksum::Crc32),
            "crc32c" => Ok(Checksum::Crc32c),
            "crc64nvme" => Ok(Checksum::Crc64Nvme),
            other => Err(Error::new(ErrorKind::InvalidInput).with_message(format!(
                "unknown checksum {other:?}: expected crc32, crc32c, crc64nvme or none"
            ))),
        }
    }
}

/// A checksum being computed.
pub(crate) struct Digest {
    checksum: Checksum,
    inner: crc_fast::Digest,
}

impl Digest {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    pub(crate) fn value(&self) -> u64 {
        self.inner.finalize()
    }

    /// Compares with `expected` (as S3 sent it).
    ///
    /// # Errors
    ///
    /// A mismatch: [`ErrorKind::Unexpected`], temporary (the body was damaged on
    /// the way; reading it again may work).
    pub(crate) fn check(&self, expected: &str) -> Result<()> {
        let got = self.checksum.encode(self.value());
        if got == expected {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Unexpected)
            .set_temporary(true)
            .with_message(format!(
                "checksum mismatch: the server's {} is {expected}, the body received has {got}",
                self.checksum
            ))
            .with_context("checksum", self.checksum.name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_combination() {
        // As S3 (and SeaweedFS) answered for "hello world".
        let data = b"hello world";
        assert_eq!(
            Checksum::Crc32c.encode(Checksum::Crc32c.of([&data[..]])),
            "yZRlqg=="
        );
        assert_eq!(
            Checksum::Crc64Nvme.encode(Checksum::Crc64Nvme.of([&data[..]])),
            "jSnVw/bqjr4="
        );
        // zlib's CRC-32 of "hello world" is 0x0d4a1185.
        assert_eq!(
            Checksum::Crc32.encode(Checksum::Crc32.of([&data[..]])),
            "DUoRhQ=="
        );
        for checksum in [Checksum::Crc32, Checksum::Crc32c, Checksum::Crc64Nvme] {
            let (a, b) = data.split_at(4);
            let whole = checksum.of([&data[..]]);
            assert_eq!(checksum.of([a, b]), whole);
            let combined = checksum.combine(checksum.of([a]), checksum.of([b]), b.len() as u64);
            assert_eq!(combined, whole, "{checksum}");
        }
    }

    #[test]
    fn composite_and_foreign_checksums_check_nothing() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-checksum-crc32c", "SP7K9A==-2".parse().unwrap());
        assert_eq!(Checksum::in_response(&headers), None);
        headers.insert("x-amz-checksum-crc64nvme", "/UhWwtjqvjk=".parse().unwrap());
        assert_eq!(
            Checksum::in_response(&headers),
            Some((Checksum::Crc64Nvme, "/UhWwtjqvjk=".into()))
        );
        headers.insert("x-amz-checksum-type", "COMPOSITE".parse().unwrap());
        assert_eq!(Checksum::in_response(&headers), None);
    }
}
