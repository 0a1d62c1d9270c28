//! Keys, `did:key`, signatures, canonical DAG-CBOR and CIDs for the AT Protocol.
//!
//! These are the bytes that get hashed and signed, so everything here is
//! byte-exact with the reference implementation.
// (crate-level example: see the module docs; filled in with the implementation)

pub mod cids;
pub mod dagcbor;
pub mod data_model;
pub mod did_key;
pub mod error;
pub mod hash;
pub mod keys;

pub use cids::{cid_for_dag_cbor, cid_for_raw, parse_cid, Cid};
pub use error::Error;
pub use hash::sha256;
pub use ipld_core::ipld::Ipld;
pub use keys::{Algorithm, PublicKey, SigningKey, VerifyMode};
