//! The error type of this crate.

/// Everything that can go wrong in `atp-crypto`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Private or public key bytes are not a valid key for the curve.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The key type (multicodec or curve name) is not one the protocol uses.
    #[error("unsupported key type: {0}")]
    UnsupportedKeyType(String),
    /// A `did:key` string is malformed.
    #[error("invalid did:key: {0}")]
    InvalidDidKey(String),
    /// A multibase string is malformed or uses an unexpected base.
    #[error("invalid multibase: {0}")]
    InvalidMultibase(String),
    /// A signature is not 64 bytes of compact `r||s` (e.g. DER).
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// A signature uses the high-S form, which strict verification rejects.
    #[error("signature is not in low-S form")]
    HighS,
    /// A well-formed signature that does not verify for the key and message.
    #[error("signature does not verify")]
    BadSignature,
    /// A value cannot be encoded as DAG-CBOR.
    #[error("DAG-CBOR encoding failed: {0}")]
    Encode(String),
    /// Bytes are not valid DAG-CBOR, or do not match the expected shape.
    #[error("DAG-CBOR decoding failed: {0}")]
    Decode(String),
    /// Bytes decode but are not in canonical form (key order, lengths, ...).
    #[error("not canonical DAG-CBOR: {0}")]
    NonCanonical(String),
    /// A CID string or binary CID is malformed or not one the protocol uses.
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    /// A value is outside the AT Protocol data model (floats, bad `$link`, ...).
    #[error("invalid data model value: {0}")]
    DataModel(String),
}
