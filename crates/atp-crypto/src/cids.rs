//! CIDv1 with SHA-256 for `dag-cbor` and `raw` blocks.

pub use ::cid::Cid;

use crate::Error;

/// Multicodec code of `dag-cbor` (records, MST nodes, commits).
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec code of `raw` (blobs).
pub const RAW: u64 = 0x55;
/// Multihash code of SHA-256.
pub const SHA2_256: u64 = 0x12;

/// CIDv1 (`dag-cbor`, sha2-256) of already-encoded DAG-CBOR bytes.
pub fn cid_for_dag_cbor(bytes: &[u8]) -> Cid {
    todo!("{}", bytes.len())
}

/// CIDv1 (`raw`, sha2-256) of blob bytes.
pub fn cid_for_raw(bytes: &[u8]) -> Cid {
    todo!("{}", bytes.len())
}

/// Parses a CID string as the protocol allows it (CIDv1 base32 `b...`, and
/// legacy CIDv0 `Qm...` where the syntax permits).
pub fn parse_cid(text: &str) -> Result<Cid, Error> {
    todo!("{text}")
}
