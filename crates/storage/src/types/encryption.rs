//! [`Encryption`]: server-side encryption of what a write stores, and the
//! [`CustomerKey`] of SSE-C.

use std::fmt;

use base64::Engine as _;
use md5::Digest as _;

/// How the server encrypts what a write stores (S3's server-side encryption). Only
/// S3 can: fs and memory refuse a write that asks for it with
/// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
///
/// # Examples
///
/// ```
/// use storage::{CustomerKey, Encryption, WriteOptions};
///
/// let kms = WriteOptions::new().with_encryption(Encryption::Kms {
///     key_id: Some("alias/warehouse".into()),
/// });
/// let key = CustomerKey::new([7; 32]);
/// let sse_c = WriteOptions::new().with_encryption(Encryption::Customer(key));
/// // The key never shows.
/// assert!(!format!("{sse_c:?}").contains("BwcH"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encryption {
    /// SSE-S3: keys the server manages (`x-amz-server-side-encryption: AES256`).
    S3Managed,
    /// SSE-KMS: a key of the key management service (`aws:kms`), the given key id
    /// or ARN, or the account's default key for S3 when `None`.
    Kms {
        /// The KMS key id, alias or ARN.
        key_id: Option<String>,
    },
    /// SSE-C: a key the caller keeps and sends with every request that writes or
    /// reads the object; the server stores only its MD5. Reading an SSE-C object
    /// needs the same key, configured on the backend
    /// (`S3Builder::server_side_encryption`).
    Customer(CustomerKey),
}

/// A 256-bit SSE-C key. Neither `Debug` nor any error or log line shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    key: [u8; 32],
}

impl CustomerKey {
    /// A key of 32 bytes (AES-256).
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The key as the `x-amz-server-side-encryption-customer-key` header carries it.
    pub(crate) fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// The key's MD5, as the `...-customer-key-md5` header carries it (not secret:
    /// the server stores it with the object).
    pub fn md5_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(self.key))
    }
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerKey")
            .field("md5", &self.md5_base64())
            .finish_non_exhaustive()
    }
}
