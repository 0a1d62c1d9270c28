//! `did:key` strings: multibase (base58btc) of a multicodec-prefixed
//! compressed public key.

/// Prefix of every `did:key`.
pub const DID_KEY_PREFIX: &str = "did:key:";
