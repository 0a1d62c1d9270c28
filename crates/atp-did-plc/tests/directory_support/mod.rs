//! Building signed operations for the directory tests, from the crate's
//! operation types and signing (independent of any directory).

#![allow(dead_code, clippy::unwrap_used)]

pub mod reference;

use std::collections::BTreeMap;

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::operation::{
    Operation, PlcOperation, Service, TombstoneOperation, UnsignedOperation,
};

/// A fresh key of the given curve.
pub fn key(alg: Algorithm) -> SigningKey {
    SigningKey::generate(alg)
}

/// A `plc_operation` body with one handle and one PDS.
pub fn body(
    rotation: &[&SigningKey],
    signing: &SigningKey,
    handle: &str,
    pds: &str,
) -> PlcOperation {
    let mut verification_methods = BTreeMap::new();
    verification_methods.insert("atproto".to_owned(), signing.did_key());
    let mut services = BTreeMap::new();
    services.insert(
        "atproto_pds".to_owned(),
        Service {
            service_type: "AtprotoPersonalDataServer".to_owned(),
            endpoint: pds.to_owned(),
        },
    );
    PlcOperation {
        rotation_keys: rotation.iter().map(|k| k.did_key()).collect(),
        verification_methods,
        also_known_as: vec![format!("at://{handle}")],
        services,
        prev: None,
    }
}

/// Signs a body (with `prev` set) with `signer`.
pub fn sign(mut body: PlcOperation, prev: Option<&Operation>, signer: &SigningKey) -> Operation {
    body.prev = prev.map(|p| p.cid().unwrap().to_string());
    UnsignedOperation::Plc(body).sign(signer).unwrap()
}

/// A signed genesis operation and its DID.
pub fn genesis(body: PlcOperation, signer: &SigningKey) -> (String, Operation) {
    let op = sign(body, None, signer);
    let did = atp_did_plc::did::did_for_genesis(&op).unwrap();
    (did, op)
}

/// A tombstone after `prev`.
pub fn tombstone(prev: &Operation, signer: &SigningKey) -> Operation {
    UnsignedOperation::Tombstone(TombstoneOperation {
        prev: prev.cid().unwrap().to_string(),
    })
    .sign(signer)
    .unwrap()
}

/// The body of a signed `plc_operation`.
pub fn body_of(op: &Operation) -> PlcOperation {
    op.normalized().expect("not a tombstone")
}
