//! Hashing.
//!
//! The protocol hashes with SHA-256 everywhere: the bytes that get signed,
//! CIDs, MST key depths and `did:plc` identifiers.

use sha2::{Digest, Sha256};

/// SHA-256 of `data`.
///
/// ```
/// let digest = atp_crypto::sha256(b"");
/// assert_eq!(digest[..4], [0xe3, 0xb0, 0xc4, 0x42]);
/// ```
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
