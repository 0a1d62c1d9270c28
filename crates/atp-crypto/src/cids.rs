//! CIDv1 with SHA-256 for `dag-cbor` and `raw` blocks.
//!
//! The protocol's "blessed" CIDs are version 1, codec `dag-cbor` (0x71) or
//! `raw` (0x55), hash sha2-256 with a 32-byte digest. Their string form is
//! multibase base32 lower case with the `b` prefix (`bafyrei...` for
//! records, `bafkrei...` for blobs).
//!
//! # CIDv0
//!
//! The data-model specification only blesses CIDv1 and the syntax test
//! vectors list a CIDv0 string (`Qm...`) as invalid, so [`parse_cid`]
//! rejects CIDv0 strings. Binary CIDv0 links inside DAG-CBOR (tag 42) are
//! still *decoded* by [`crate::dagcbor`], as the DAG-CBOR codec allows them;
//! use [`is_blessed`] to check a link against the protocol's rules.

pub use ::cid::Cid;
use ::cid::Version;
use multihash::Multihash;
use sha2::{Digest, Sha256};

use crate::Error;

/// Multicodec code of `dag-cbor` (records, MST nodes, commits).
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec code of `raw` (blobs).
pub const RAW: u64 = 0x55;
/// Multihash code of SHA-256.
pub const SHA2_256: u64 = 0x12;

/// CIDv1 of `bytes` hashed with SHA-256, for the multicodec `codec`.
fn cid_v1_sha256(codec: u64, bytes: &[u8]) -> Cid {
    let digest = Sha256::digest(bytes);
    // `wrap` only fails for digests longer than 64 bytes; SHA-256 gives 32.
    let hash = Multihash::<64>::wrap(SHA2_256, &digest).unwrap_or_default();
    Cid::new_v1(codec, hash)
}

/// CIDv1 (`dag-cbor`, sha2-256) of already-encoded DAG-CBOR bytes.
pub fn cid_for_dag_cbor(bytes: &[u8]) -> Cid {
    cid_v1_sha256(DAG_CBOR, bytes)
}

/// CIDv1 (`raw`, sha2-256) of blob bytes.
pub fn cid_for_raw(bytes: &[u8]) -> Cid {
    cid_v1_sha256(RAW, bytes)
}

/// Whether `cid` is one of the protocol's blessed CIDs: version 1, codec
/// `dag-cbor` or `raw`, sha2-256 with a 32-byte digest.
pub fn is_blessed(cid: &Cid) -> bool {
    cid.version() == Version::V1
        && (cid.codec() == DAG_CBOR || cid.codec() == RAW)
        && cid.hash().code() == SHA2_256
        && cid.hash().size() == 32
}

/// Parses a CID string: CIDv1 in base32 lower case with the `b` multibase
/// prefix, written canonically (it must re-encode to exactly `text`).
///
/// CIDv0 (`Qm...`) and other multibase encodings are rejected (see the
/// module documentation). Any codec and hash function is accepted here;
/// see [`is_blessed`] for the protocol's narrower set.
///
/// ```
/// let cid = atp_crypto::parse_cid(
///     "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
/// )?;
/// assert!(atp_crypto::cids::is_blessed(&cid));
/// assert!(atp_crypto::parse_cid("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR").is_err());
/// # Ok::<(), atp_crypto::Error>(())
/// ```
pub fn parse_cid(text: &str) -> Result<Cid, Error> {
    if text.starts_with("Qm") {
        return Err(Error::InvalidCid(format!(
            "{text:?} is a CIDv0, which the protocol does not use"
        )));
    }
    let Some(body) = text.strip_prefix('b') else {
        return Err(Error::InvalidCid(format!(
            "{text:?} is not base32 lower case with the `b` multibase prefix"
        )));
    };
    if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c))
    {
        return Err(Error::InvalidCid(format!(
            "{text:?} has characters outside lower-case base32"
        )));
    }
    let cid = Cid::try_from(text).map_err(|e| Error::InvalidCid(format!("{text:?}: {e}")))?;
    if cid.version() != Version::V1 {
        return Err(Error::InvalidCid(format!("{text:?} is not a CIDv1")));
    }
    if cid.to_string() != text {
        return Err(Error::InvalidCid(format!(
            "{text:?} is not in canonical form"
        )));
    }
    Ok(cid)
}

/// Reads a binary CID (as found after the `0x00` prefix inside a tag-42
/// byte string), requiring that it uses all of `bytes` and is written
/// canonically (minimal varints).
pub fn cid_from_bytes(bytes: &[u8]) -> Result<Cid, Error> {
    let mut rest = bytes;
    let cid = Cid::read_bytes(&mut rest).map_err(|e| Error::InvalidCid(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::InvalidCid(format!(
            "{} bytes follow the CID",
            rest.len()
        )));
    }
    if cid.to_bytes() != bytes {
        return Err(Error::InvalidCid(
            "binary CID is not canonically encoded".to_owned(),
        ));
    }
    Ok(cid)
}
