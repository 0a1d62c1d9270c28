//! Canonical DAG-CBOR encoding and strict decoding.

use serde::{de::DeserializeOwned, Serialize};

use crate::{Cid, Error, Ipld};

/// Encodes `value` as canonical DAG-CBOR (map keys sorted by length then
/// bytes, shortest integers, definite lengths, `None` as `null`).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let _ = value;
    todo!()
}

/// Decodes DAG-CBOR strictly: rejects non-canonical key order, duplicate
/// keys, indefinite lengths, floats, non-string map keys and trailing bytes.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    todo!("{}", bytes.len())
}

/// Strictly decodes DAG-CBOR into a generic [`Ipld`] value.
pub fn decode_ipld(bytes: &[u8]) -> Result<Ipld, Error> {
    todo!("{}", bytes.len())
}

/// Encodes a generic [`Ipld`] value as canonical DAG-CBOR.
pub fn encode_ipld(value: &Ipld) -> Result<Vec<u8>, Error> {
    let _ = value;
    todo!()
}

/// Encodes `value` and returns its CID (`dag-cbor`, sha2-256) with the bytes.
pub fn cid_of<T: Serialize + ?Sized>(value: &T) -> Result<(Cid, Vec<u8>), Error> {
    let _ = value;
    todo!()
}
