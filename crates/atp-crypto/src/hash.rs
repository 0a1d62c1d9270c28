//! Hashing.

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    todo!("{}", data.len())
}
