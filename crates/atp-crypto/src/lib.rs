//! Keys, `did:key`, signatures, canonical DAG-CBOR and CIDs for the AT Protocol.
//!
//! These are the bytes that get hashed and signed, so everything here is
//! byte-exact with the reference implementation.
//!
//! * [`keys`]: P-256 (`ES256`) and secp256k1 (`ES256K`) keys; signatures
//!   over SHA-256 of the message, 64-byte compact `r||s` with low-S.
//! * [`did_key`]: `did:key:z...` and multikey strings.
//! * [`dagcbor`]: canonical DAG-CBOR encoding ([`dagcbor::to_vec`],
//!   [`dagcbor::encode_ipld`]) and strict decoding ([`dagcbor::from_slice`],
//!   [`dagcbor::decode_ipld`]).
//! * [`cids`]: CIDv1 sha2-256 for `dag-cbor` blocks and `raw` blobs.
//! * [`data_model`]: the JSON form (`$link`, `$bytes`, blobs) and its rules.
//!
//! # Example
//!
//! Sign the DAG-CBOR of a record, check the signature through the `did:key`
//! of the signer, and compute the record's CID:
//!
//! ```
//! use atp_crypto::{dagcbor, Algorithm, PublicKey, SigningKey};
//!
//! #[derive(serde::Serialize)]
//! struct Post<'a> {
//!     #[serde(rename = "$type")]
//!     kind: &'a str,
//!     text: &'a str,
//!     #[serde(rename = "createdAt")]
//!     created_at: &'a str,
//! }
//! let post = Post {
//!     kind: "app.bsky.feed.post",
//!     text: "hello",
//!     created_at: "2024-01-01T00:00:00.000Z",
//! };
//!
//! // Canonical bytes and their CID (CIDv1, dag-cbor, sha2-256).
//! let (cid, bytes) = dagcbor::cid_of(&post)?;
//! assert!(cid.to_string().starts_with("bafyrei"));
//! assert_eq!(atp_crypto::parse_cid(&cid.to_string())?, cid);
//!
//! // Sign with a secp256k1 key; verify through the did:key.
//! let key = SigningKey::generate(Algorithm::K256);
//! let signature = key.sign(&bytes);
//! let did = key.did_key();
//! assert!(did.starts_with("did:key:zQ3s"));
//! PublicKey::from_did_key(&did)?.verify(&bytes, &signature)?;
//!
//! // Strict decoding gives the same value back; tampered bytes fail.
//! let value = dagcbor::decode_ipld(&bytes)?;
//! assert_eq!(dagcbor::encode_ipld(&value)?, bytes);
//! let mut tampered = bytes.clone();
//! tampered[5] ^= 1;
//! assert!(PublicKey::from_did_key(&did)?.verify(&tampered, &signature).is_err());
//! # Ok::<(), atp_crypto::Error>(())
//! ```

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
