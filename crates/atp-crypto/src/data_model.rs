//! The AT Protocol data model in JSON form, and its conversion to and from
//! DAG-CBOR values (`$link`, `$bytes`, blob objects).
//!
//! JSON conventions (data-model specification):
//!
//! * a link is `{"$link": "<CIDv1 base32>"}` with no other key;
//! * bytes are `{"$bytes": "<base64>"}` with no other key, standard
//!   alphabet, padding optional on input and never written on output;
//! * an object with a `$type` key needs a non-empty string there;
//! * a blob is `{"$type": "blob", "ref": <link>, "mimeType", "size"}` with
//!   exactly those keys, `ref` a blessed CID, `mimeType` a string containing
//!   `/`, `size` a non-negative integer (as the reference implementation
//!   checks);
//! * numbers are integers; a JSON number written with a fraction part is
//!   accepted only when it is integral and within ±(2^53 − 1) (`123.0`,
//!   as JavaScript cannot tell it from `123`); floats are rejected;
//!   integers are limited to the signed 64-bit range.
//!
//! ```
//! use atp_crypto::{data_model, dagcbor, cids};
//!
//! let json = serde_json::json!({
//!     "text": "hello",
//!     "data": {"$bytes": "aGk"},
//!     "link": {"$link": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
//! });
//! let value = data_model::json_record_to_ipld(&json)?;
//! let (cid, _bytes) = dagcbor::cid_of_ipld(&value)?;
//! assert_eq!(cid.codec(), cids::DAG_CBOR);
//! assert_eq!(data_model::ipld_to_json(&value)?, json);
//!
//! assert!(data_model::json_to_ipld(&serde_json::json!({"a": 1.5})).is_err());
//! # Ok::<(), atp_crypto::Error>(())
//! ```

use std::collections::BTreeMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::Value;

use crate::cids::{is_blessed, parse_cid};
use crate::dagcbor::MAX_DEPTH;
use crate::{Error, Ipld};

/// Largest integer JavaScript represents exactly (2^53 − 1).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Standard base64 that accepts input with or without padding.
const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Converts the JSON form of a data-model value to an [`Ipld`] value:
/// `{"$link": cid}` becomes a link, `{"$bytes": base64}` becomes bytes.
/// Rejects floats and malformed `$link` / `$bytes` / blob objects.
pub fn json_to_ipld(json: &Value) -> Result<Ipld, Error> {
    convert_json(json, 0)
}

/// Converts the JSON form of a record (or any top-level data-model node,
/// which must be an object) to an [`Ipld`] map, with the checks of
/// [`json_to_ipld`].
pub fn json_record_to_ipld(json: &Value) -> Result<Ipld, Error> {
    if !json.is_object() {
        return Err(Error::DataModel(
            "a record must be a JSON object at the top level".to_owned(),
        ));
    }
    json_to_ipld(json)
}

/// Converts an [`Ipld`] value to its JSON form (links as `{"$link": ...}`,
/// bytes as `{"$bytes": ...}` in base64 without padding).
///
/// Floats and integers outside the signed 64-bit range are rejected.
pub fn ipld_to_json(value: &Ipld) -> Result<Value, Error> {
    to_json(value, 0)
}

/// Checks an [`Ipld`] value (for example freshly decoded DAG-CBOR) against
/// the data-model rules that go beyond the encoding: no floats, integers
/// within 64 bits, `$type` a non-empty string, blob objects well formed.
pub fn validate_ipld(value: &Ipld) -> Result<(), Error> {
    validate(value, 0)
}

fn deeper(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        Err(Error::DataModel(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(depth + 1)
    }
}

fn convert_json(json: &Value, depth: usize) -> Result<Ipld, Error> {
    Ok(match json {
        Value::Null => Ipld::Null,
        Value::Bool(b) => Ipld::Bool(*b),
        Value::String(s) => Ipld::String(s.clone()),
        Value::Number(n) => Ipld::Integer(i128::from(json_integer(n)?)),
        Value::Array(items) => {
            let depth = deeper(depth)?;
            Ipld::List(
                items
                    .iter()
                    .map(|item| convert_json(item, depth))
                    .collect::<Result<_, _>>()?,
            )
        }
        Value::Object(object) => {
            if let Some(link) = object.get("$link") {
                return json_link(object.len(), link);
            }
            if let Some(bytes) = object.get("$bytes") {
                return json_bytes(object.len(), bytes);
            }
            let depth = deeper(depth)?;
            let map: BTreeMap<String, Ipld> = object
                .iter()
                .map(|(k, v)| Ok((k.clone(), convert_json(v, depth)?)))
                .collect::<Result<_, Error>>()?;
            check_typed_map(&map)?;
            Ipld::Map(map)
        }
    })
}

fn json_integer(n: &serde_json::Number) -> Result<i64, Error> {
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    if n.is_u64() {
        return Err(Error::DataModel(format!(
            "integer {n} is outside the signed 64-bit range"
        )));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER as f64 => Ok(f as i64),
        _ => Err(Error::DataModel(format!(
            "number {n} is a float, which the data model does not allow"
        ))),
    }
}

fn json_link(keys: usize, link: &Value) -> Result<Ipld, Error> {
    if keys != 1 {
        return Err(Error::DataModel(
            "a $link object must have no other keys".to_owned(),
        ));
    }
    let Value::String(text) = link else {
        return Err(Error::DataModel("$link must be a string".to_owned()));
    };
    let cid =
        parse_cid(text).map_err(|e| Error::DataModel(format!("$link is not a valid CID: {e}")))?;
    Ok(Ipld::Link(cid))
}

fn json_bytes(keys: usize, bytes: &Value) -> Result<Ipld, Error> {
    if keys != 1 {
        return Err(Error::DataModel(
            "a $bytes object must have no other keys".to_owned(),
        ));
    }
    let Value::String(text) = bytes else {
        return Err(Error::DataModel("$bytes must be a string".to_owned()));
    };
    let raw = BASE64_ANY_PADDING
        .decode(text)
        .map_err(|e| Error::DataModel(format!("$bytes is not valid base64: {e}")))?;
    Ok(Ipld::Bytes(raw))
}

/// Rules for maps carrying `$type`: a non-empty string, and the blob shape
/// when it is `"blob"`.
fn check_typed_map(map: &BTreeMap<String, Ipld>) -> Result<(), Error> {
    match map.get("$type") {
        None => Ok(()),
        Some(Ipld::String(t)) if t.is_empty() => {
            Err(Error::DataModel("$type must not be empty".to_owned()))
        }
        Some(Ipld::String(t)) if t == "blob" => check_blob(map),
        Some(Ipld::String(_)) => Ok(()),
        Some(_) => Err(Error::DataModel("$type must be a string".to_owned())),
    }
}

fn check_blob(map: &BTreeMap<String, Ipld>) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::DataModel(format!("invalid blob object: {why}")));
    if let Some(extra) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "$type" | "ref" | "mimeType" | "size"))
    {
        return bad(&format!("unexpected key {extra:?}"));
    }
    match map.get("ref") {
        Some(Ipld::Link(cid)) if is_blessed(cid) => {}
        Some(Ipld::Link(cid)) => return bad(&format!("ref {cid} is not a CIDv1 sha2-256")),
        Some(_) => return bad("ref is not a link"),
        None => return bad("missing ref"),
    }
    match map.get("mimeType") {
        Some(Ipld::String(m)) if m.contains('/') => {}
        Some(Ipld::String(m)) => return bad(&format!("mimeType {m:?} is not a MIME type")),
        Some(_) => return bad("mimeType is not a string"),
        None => return bad("missing mimeType"),
    }
    match map.get("size") {
        Some(Ipld::Integer(n)) if (0..=i128::from(MAX_SAFE_INTEGER)).contains(n) => Ok(()),
        Some(Ipld::Integer(n)) => bad(&format!("size {n} is out of range")),
        Some(_) => bad("size is not an integer"),
        None => bad("missing size"),
    }
}

fn ipld_integer(i: i128) -> Result<i64, Error> {
    i64::try_from(i)
        .map_err(|_| Error::DataModel(format!("integer {i} is outside the signed 64-bit range")))
}

fn float_error(f: f64) -> Error {
    Error::DataModel(format!(
        "float {f} is not allowed in the AT Protocol data model"
    ))
}

fn to_json(value: &Ipld, depth: usize) -> Result<Value, Error> {
    Ok(match value {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(*b),
        Ipld::Integer(i) => Value::from(ipld_integer(*i)?),
        Ipld::Float(f) => return Err(float_error(*f)),
        Ipld::String(s) => Value::String(s.clone()),
        Ipld::Bytes(b) => {
            let mut object = serde_json::Map::new();
            object.insert(
                "$bytes".to_owned(),
                Value::String(STANDARD_NO_PAD.encode(b)),
            );
            Value::Object(object)
        }
        Ipld::Link(cid) => {
            let mut object = serde_json::Map::new();
            object.insert("$link".to_owned(), Value::String(cid.to_string()));
            Value::Object(object)
        }
        Ipld::List(items) => {
            let depth = deeper(depth)?;
            Value::Array(
                items
                    .iter()
                    .map(|item| to_json(item, depth))
                    .collect::<Result<_, _>>()?,
            )
        }
        Ipld::Map(map) => {
            let depth = deeper(depth)?;
            Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), to_json(v, depth)?)))
                    .collect::<Result<_, Error>>()?,
            )
        }
    })
}

fn validate(value: &Ipld, depth: usize) -> Result<(), Error> {
    match value {
        Ipld::Null | Ipld::Bool(_) | Ipld::String(_) | Ipld::Bytes(_) | Ipld::Link(_) => Ok(()),
        Ipld::Integer(i) => ipld_integer(*i).map(|_| ()),
        Ipld::Float(f) => Err(float_error(*f)),
        Ipld::List(items) => {
            let depth = deeper(depth)?;
            items.iter().try_for_each(|item| validate(item, depth))
        }
        Ipld::Map(map) => {
            let depth = deeper(depth)?;
            map.values().try_for_each(|item| validate(item, depth))?;
            check_typed_map(map)
        }
    }
}
