//! `did:plc`: operations, signing, DID derivation, log validation and DID
//! documents, byte-exact with the reference implementation
//! (`bluesky-social/did-method-plc`).
//!
//! * [`operation`]: the `plc_operation`, `plc_tombstone` and legacy
//!   `create` types, their JSON and canonical DAG-CBOR forms.
//! * [`signing`]: signing the DAG-CBOR of the unsigned operation with a
//!   rotation key; strict verification.
//! * [`did`]: `did:plc:` + 24 base32 characters of the SHA-256 of the
//!   signed genesis operation.
//! * [`builder`]: genesis, update and tombstone operations ready to POST.
//! * [`validate`]: what the directory checks before accepting an operation,
//!   whole-log validation and audit-log replay with the 72-hour recovery
//!   window.
//! * [`document`]: the DID document and `/data` the directory serves.
//!
//! ```
//! # fn main() -> Result<(), atp_did_plc::Error> {
//! use atp_crypto::{Algorithm, SigningKey};
//! use atp_did_plc::{validate_operation_log, GenesisBuilder, UpdateBuilder};
//!
//! let rotation = SigningKey::generate(Algorithm::K256);
//! let signing = SigningKey::generate(Algorithm::K256);
//! let genesis = GenesisBuilder::new()
//!     .rotation_key(rotation.did_key())
//!     .signing_key(signing.did_key())
//!     .handle("alice.example.com")
//!     .pds_endpoint("https://pds.example.com")
//!     .sign(&rotation)?;
//!
//! // The JSON to POST to https://plc.directory/<did>: `prev` is null.
//! let body = genesis.operation.to_json();
//! assert!(body.contains(r#""prev":null"#));
//!
//! let moved = UpdateBuilder::from_last(&genesis.operation)?
//!     .pds_endpoint("https://pds2.example.com")?
//!     .sign(&rotation)?;
//!
//! let data = validate_operation_log(&genesis.did, &[genesis.operation, moved])?
//!     .expect("not tombstoned");
//! assert_eq!(data.pds_endpoint(), Some("https://pds2.example.com"));
//! let document = data.to_document();
//! assert_eq!(document.also_known_as, ["at://alice.example.com"]);
//! # Ok(()) }
//! ```

pub mod builder;
pub mod did;
pub mod document;
pub mod error;
pub mod operation;
pub mod signing;
pub mod validate;

pub use builder::{tombstone, Genesis, GenesisBuilder, UpdateBuilder};
pub use did::{check_did_plc, did_for_genesis};
pub use document::{DidDocument, DocumentData};
pub use error::Error;
pub use operation::{Operation, OperationType, PlcOperation, Service, UnsignedOperation};
pub use validate::{
    assert_valid_incoming_op, assure_valid_next_op, assure_valid_submission,
    validate_operation_log, IndexedOperation, NextOp,
};

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "server")]
pub mod server;
