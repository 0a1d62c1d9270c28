//! The AT Protocol data model in JSON form, and its conversion to and from
//! DAG-CBOR values (`$link`, `$bytes`, blob objects).

use crate::{Error, Ipld};

/// Converts the JSON form of a data-model value to an [`Ipld`] value:
/// `{"$link": cid}` becomes a link, `{"$bytes": base64}` becomes bytes.
/// Rejects floats and malformed `$link` / `$bytes` / blob objects.
pub fn json_to_ipld(json: &serde_json::Value) -> Result<Ipld, Error> {
    let _ = json;
    todo!()
}

/// Converts an [`Ipld`] value to its JSON form (links as `{"$link": ...}`,
/// bytes as `{"$bytes": ...}` in base64 without padding).
pub fn ipld_to_json(value: &Ipld) -> Result<serde_json::Value, Error> {
    let _ = value;
    todo!()
}
