//! The error type of this crate.

use atp_crypto::Cid;

/// Everything that can go wrong in `atp-repo-mst`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encoding, decoding, key or CID failure from `atp-crypto`.
    #[error(transparent)]
    Crypto(#[from] atp_crypto::Error),
    /// An I/O error while reading or writing a CAR file.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A CAR file is malformed: header, varints, CIDs or truncation.
    #[error("invalid CAR: {0}")]
    InvalidCar(String),
    /// A CAR file exceeds one of the configured limits.
    #[error("CAR limit exceeded: {0}")]
    CarLimitExceeded(String),
    /// A block's bytes do not hash to its CID.
    #[error("block bytes do not match their CID {0}")]
    BlockHashMismatch(Cid),
}
