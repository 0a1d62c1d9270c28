//! Validation of data (in its JSON form) against lexicon schemas, with the
//! verdicts and path-qualified messages of the reference validator.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};
use unicode_segmentation::UnicodeSegmentation;

use atp_syntax::{AtIdentifier, AtUri, Datetime, Did, Handle, Language, Nsid, RecordKey, Tid, Uri};

use super::catalog::Lexicons;
use super::schema::{
    normalize_ref, LexArray, LexBlob, LexBoolean, LexBytes, LexDef, LexInteger, LexObject,
    LexParams, LexSchema, LexString, StringFormat,
};
use super::LexiconError;

/// Standard base64, padding optional, trailing bits tolerated (as Node's
/// decoder is).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

type Res = Result<(), LexiconError>;

fn fail(message: String) -> Res {
    Err(LexiconError::Validation(message))
}

/// The reference's wording for a measure out of its bounds: `{path} {over}
/// {max}{unit}` above the maximum (checked first), `{path} {under}
/// {min}{unit}` below the minimum; fields in that order: over, under, unit.
struct Bounds(&'static str, &'static str, &'static str);

const ARRAY_LENGTH: Bounds = Bounds(
    "must not have more than",
    "must not have fewer than",
    " elements",
);
const INTEGER_VALUE: Bounds = Bounds("can not be greater than", "can not be less than", "");
const STRING_LENGTH: Bounds = Bounds(LONGER, SHORTER, " characters");
const STRING_GRAPHEMES: Bounds = Bounds(LONGER, SHORTER, " graphemes");
const BYTES_LENGTH: Bounds = Bounds(
    "must not be larger than",
    "must not be smaller than",
    " bytes",
);
const LONGER: &str = "must not be longer than";
const SHORTER: &str = "must not be shorter than";

impl Bounds {
    /// Fails when `n` is above `max` or below `min` (each optional).
    fn check<T: PartialOrd + std::fmt::Display>(
        &self,
        path: &str,
        n: T,
        min: Option<T>,
        max: Option<T>,
    ) -> Res {
        if let Some(max) = max.filter(|max| n > *max) {
            return fail(format!("{path} {} {max}{}", self.0, self.2));
        }
        if let Some(min) = min.filter(|min| n < *min) {
            return fail(format!("{path} {} {min}{}", self.1, self.2));
        }
        Ok(())
    }
}

/// Fails with `{path} must be {c}` when the schema fixes the value to `c`
/// and `value` differs.
fn check_const<T: PartialEq + std::fmt::Display + ?Sized>(
    path: &str,
    value: &T,
    const_value: Option<&T>,
) -> Res {
    match const_value {
        Some(c) if value != c => fail(format!("{path} must be {c}")),
        _ => Ok(()),
    }
}

/// Validates `value` against `schema`, resolving refs and unions; with
/// `must_be_object` the resolved definition is read as an object schema.
pub(crate) fn validate_one_of(
    lex: &Lexicons,
    path: &str,
    schema: &LexSchema,
    value: &Value,
    must_be_object: bool,
) -> Res {
    let resolved = match schema {
        LexSchema::Union(union) => {
            let Some(ty) = value
                .as_object()
                .and_then(|o| o.get("$type"))
                .and_then(Value::as_str)
            else {
                return fail(format!(
                    "{path} must be an object which includes the \"$type\" property"
                ));
            };
            let normalized = normalize_ref("", ty);
            match normalized.filter(|t| union.refs.contains(t)) {
                Some(uri) => lex.get_def_or_err(&uri)?,
                None if union.closed => {
                    return fail(format!(
                        "{path} $type must be one of {}",
                        union.refs.join(", ")
                    ))
                }
                None => return Ok(()),
            }
        }
        LexSchema::Ref(uri) => lex.get_def_or_err(uri)?,
        other => return validate_schema(lex, path, other, value, must_be_object),
    };
    validate_def(lex, path, resolved, value, must_be_object)
}

/// Validates against a top-level definition reached through a ref or union.
fn validate_def(
    lex: &Lexicons,
    path: &str,
    def: &LexDef,
    value: &Value,
    must_be_object: bool,
) -> Res {
    match def {
        LexDef::Schema(schema) => validate_schema(lex, path, schema, value, must_be_object),
        LexDef::Record(record) => validate_object(lex, path, &record.record, value),
        other => fail(format!("Unexpected lexicon type: {}", other.type_name())),
    }
}

fn validate_schema(
    lex: &Lexicons,
    path: &str,
    schema: &LexSchema,
    value: &Value,
    must_be_object: bool,
) -> Res {
    if must_be_object {
        return match schema {
            LexSchema::Object(object) => validate_object(lex, path, object, value),
            other => fail(format!("Unexpected lexicon type: {}", other.type_name())),
        };
    }
    match schema {
        LexSchema::Boolean(def) => validate_boolean(path, def, value),
        LexSchema::Integer(def) => validate_integer(path, def, value),
        LexSchema::String(def) => validate_string(path, def, value),
        LexSchema::Bytes(def) => validate_bytes(path, def, value),
        LexSchema::CidLink => validate_cid_link(path, value),
        LexSchema::Blob(def) => validate_blob(path, def, value),
        LexSchema::Unknown => validate_unknown(path, value),
        LexSchema::Object(def) => validate_object(lex, path, def, value),
        LexSchema::Array(def) => validate_array(lex, path, def, value),
        LexSchema::Ref(_) | LexSchema::Union(_) => validate_one_of(lex, path, schema, value, false),
    }
}

/// Whether a missing value is filled in by a default.
fn has_default(schema: &LexSchema) -> bool {
    match schema {
        LexSchema::Boolean(b) => b.default.is_some(),
        LexSchema::Integer(i) => i.default.is_some(),
        LexSchema::String(s) => s.default.is_some(),
        _ => false,
    }
}

pub(crate) fn validate_object(lex: &Lexicons, path: &str, def: &LexObject, value: &Value) -> Res {
    let Some(obj) = value.as_object() else {
        return fail(format!("{path} must be an object"));
    };
    for (key, prop) in &def.properties {
        match obj.get(key) {
            Some(Value::Null) if def.nullable.contains(key) => continue,
            None if has_default(prop) => continue,
            None if def.required.contains(key) => {
                return fail(format!("{path} must have the property \"{key}\""))
            }
            None => continue,
            Some(v) => validate_one_of(lex, &format!("{path}/{key}"), prop, v, false)?,
        }
    }
    Ok(())
}

fn validate_array(lex: &Lexicons, path: &str, def: &LexArray, value: &Value) -> Res {
    let Some(items) = value.as_array() else {
        return fail(format!("{path} must be an array"));
    };
    ARRAY_LENGTH.check(path, items.len() as u64, def.min_length, def.max_length)?;
    for (i, item) in items.iter().enumerate() {
        validate_one_of(lex, &format!("{path}/{i}"), &def.items, item, false)?;
    }
    Ok(())
}

fn validate_boolean(path: &str, def: &LexBoolean, value: &Value) -> Res {
    let Some(b) = value.as_bool() else {
        return fail(format!("{path} must be a boolean"));
    };
    check_const(path, &b, def.const_value.as_ref())
}

fn validate_integer(path: &str, def: &LexInteger, value: &Value) -> Res {
    let Some(n) = value.as_i64() else {
        return fail(format!("{path} must be an integer"));
    };
    check_const(path, &n, def.const_value.as_ref())?;
    if let Some(values) = &def.enum_values {
        if !values.contains(&n) {
            let list: Vec<String> = values.iter().map(i64::to_string).collect();
            return fail(format!("{path} must be one of ({})", list.join("|")));
        }
    }
    INTEGER_VALUE.check(path, n, def.minimum, def.maximum)
}

fn validate_string(path: &str, def: &LexString, value: &Value) -> Res {
    let Some(s) = value.as_str() else {
        return fail(format!("{path} must be a string"));
    };
    check_const(path, s, def.const_value.as_deref())?;
    if let Some(values) = &def.enum_values {
        if !values.iter().any(|v| v == s) {
            return fail(format!("{path} must be one of ({})", values.join("|")));
        }
    }
    STRING_LENGTH.check(path, s.len() as u64, def.min_length, def.max_length)?;
    if def.max_graphemes.is_some() || def.min_graphemes.is_some() {
        let graphemes = s.graphemes(true).count() as u64;
        STRING_GRAPHEMES.check(path, graphemes, def.min_graphemes, def.max_graphemes)?;
    }
    if let Some(format) = def.format {
        if let Some(message) = check_format(format, s) {
            return fail(format!("{path} {message}"));
        }
    }
    Ok(())
}

/// `None` when `s` has the format, else the reference's message.
fn check_format(format: StringFormat, s: &str) -> Option<&'static str> {
    let (ok, message) = match format {
        StringFormat::Datetime => (
            Datetime::is_valid(s) || is_iso_datetime(s),
            "must be an valid atproto datetime (both RFC-3339 and ISO-8601)",
        ),
        StringFormat::Uri => (Uri::is_valid(s), "must be a uri"),
        StringFormat::AtUri => (AtUri::new(s).is_ok(), "must be a valid at-uri"),
        StringFormat::Did => (Did::is_valid(s), "must be a valid did"),
        StringFormat::Handle => (Handle::new(s).is_ok(), "must be a valid handle"),
        StringFormat::AtIdentifier => {
            (AtIdentifier::is_valid(s), "must be a valid did or a handle")
        }
        StringFormat::Nsid => (Nsid::is_valid(s), "must be a valid nsid"),
        StringFormat::Cid => (is_cid_string(s), "must be a cid string"),
        StringFormat::Language => (
            Language::is_well_formed(s),
            "must be a well-formed BCP 47 language tag",
        ),
        StringFormat::Tid => (Tid::new(s).is_ok(), "must be a valid TID"),
        StringFormat::RecordKey => (RecordKey::is_valid(s), "must be a valid Record Key"),
    };
    (!ok).then_some(message)
}

/// The ISO 8601 extended forms the reference also accepts beyond strict
/// atproto datetimes: `YYYY-MM-DDTHH:MM:SS`, optional fraction, optional
/// `Z` or `±HH:MM` / `±HHMM` offset (not `-00:00`), hour up to 24 and
/// second up to 60.
fn is_iso_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let num = |range: std::ops::Range<usize>| {
        s.get(range)
            .and_then(|t| t.parse::<u32>().ok())
            .unwrap_or(99)
    };
    if b.len() < 19
        || !(digits(0..4)
            && digits(5..7)
            && digits(8..10)
            && digits(11..13)
            && digits(14..16)
            && digits(17..19))
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 24
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        "" | "Z" => true,
        "-00:00" | "-0000" => false,
        offset => {
            let o = offset.as_bytes();
            let sign = matches!(o.first(), Some(b'+' | b'-'));
            let hhmm = |h: &str, m: &str| {
                h.len() == 2
                    && m.len() == 2
                    && h.bytes().chain(m.bytes()).all(|c| c.is_ascii_digit())
            };
            sign && match o.len() {
                6 => o[3] == b':' && hhmm(&offset[1..3], &offset[4..6]),
                5 => hhmm(&offset[1..3], &offset[3..5]),
                _ => false,
            }
        }
    }
}

fn is_cid_string(s: &str) -> bool {
    s.len() <= 128 && atp_crypto::parse_cid(s).is_ok()
}

/// The decoded bytes of `{"$bytes": base64}`, or `None` for any other value.
fn as_bytes(value: &Value) -> Option<Vec<u8>> {
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    B64.decode(obj.get("$bytes")?.as_str()?).ok()
}

/// Whether `value` is `{"$link": <cid>}`.
fn is_link(value: &Value) -> bool {
    value.as_object().is_some_and(|obj| {
        obj.len() == 1
            && obj
                .get("$link")
                .and_then(Value::as_str)
                .is_some_and(is_cid_string)
    })
}

/// A blob reference: `(mime type, size)` (size unknown for the legacy form).
fn as_blob(value: &Value) -> Option<(&str, Option<u64>)> {
    let obj = value.as_object()?;
    if obj.get("$type").and_then(Value::as_str) == Some("blob") {
        let mime = obj.get("mimeType")?.as_str()?;
        let size = obj.get("size")?.as_u64()?;
        if !is_link(obj.get("ref")?) {
            return None;
        }
        return Some((mime, Some(size)));
    }
    // The legacy form `{"cid": "...", "mimeType": "..."}`.
    if obj.len() == 2
        && obj
            .get("cid")
            .and_then(Value::as_str)
            .is_some_and(is_cid_string)
    {
        return Some((obj.get("mimeType")?.as_str()?, None));
    }
    None
}

fn validate_bytes(path: &str, def: &LexBytes, value: &Value) -> Res {
    let Some(bytes) = as_bytes(value) else {
        return fail(format!("{path} must be a byte array"));
    };
    BYTES_LENGTH.check(path, bytes.len() as u64, def.min_length, def.max_length)
}

fn validate_cid_link(path: &str, value: &Value) -> Res {
    if is_link(value) {
        Ok(())
    } else {
        fail(format!("{path} must be a CID"))
    }
}

/// Whether `mime` matches an `accept` pattern (`image/png`, `image/*`, `*/*`).
pub(crate) fn mime_matches(pattern: &str, mime: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    match pattern.strip_suffix("/*") {
        Some(prefix) => mime.split_once('/').is_some_and(|(top, _)| top == prefix),
        None => pattern == mime,
    }
}

fn validate_blob(path: &str, def: &LexBlob, value: &Value) -> Res {
    let Some((mime, size)) = as_blob(value) else {
        return fail(format!("{path} should be a blob ref"));
    };
    if let Some(size) = size {
        BYTES_LENGTH.check(path, size, None, def.max_size)?;
    }
    if let Some(accept) = &def.accept {
        if !accept.iter().any(|pattern| mime_matches(pattern, mime)) {
            return fail(format!(
                "{path} mimeType must be one of ({})",
                accept.join("|")
            ));
        }
    }
    Ok(())
}

fn validate_unknown(path: &str, value: &Value) -> Res {
    if !value.is_object() || as_bytes(value).is_some() || is_link(value) || as_blob(value).is_some()
    {
        return fail(format!("{path} must be an object"));
    }
    Ok(())
}

/// XRPC parameters: each property validated as a primitive or an array,
/// with the parameter name as the path.
pub(crate) fn validate_params(
    lex: &Lexicons,
    path: &str,
    def: &LexParams,
    params: &Map<String, Value>,
) -> Res {
    for (key, prop) in &def.properties {
        match params.get(key) {
            None if has_default(prop) => continue,
            None if def.required.contains(key) => {
                return fail(format!("{path} must have the property \"{key}\""))
            }
            None => continue,
            Some(v) => validate_schema(lex, key, prop, v, false)?,
        }
    }
    Ok(())
}
