//! Canonical DAG-CBOR encoding and strict decoding.
//!
//! Encoding follows the DAG-CBOR / DRISL rules the AT Protocol hashes and
//! signs: map keys are text strings sorted by encoded length, then bytewise;
//! integers and lengths use their shortest form; lengths are definite; links
//! are tag 42 over a byte string holding `0x00` and the binary CID.
//!
//! Decoding is strict: input is accepted only if it is exactly what the
//! encoder would write for the same value. Rejected with
//! [`Error::NonCanonical`]: keys out of order, non-minimal integers or
//! lengths, indefinite lengths. Rejected with [`Error::Decode`]: truncated
//! input, trailing bytes, duplicate or non-string map keys, tags other than
//! 42, simple values other than `false`/`true`/`null`, invalid UTF-8, and
//! nesting deeper than [`MAX_DEPTH`]. Rejected with [`Error::DataModel`]:
//! floats and integers outside the signed 64-bit range. Malformed CIDs give
//! [`Error::InvalidCid`].
//!
//! The decoder never trusts a length prefix for allocation: a length larger
//! than the remaining input is an error before anything is reserved.
//!
//! ```
//! use atp_crypto::{dagcbor, Ipld};
//! use std::collections::BTreeMap;
//!
//! // The empty MST node: keys sorted by length ("e" and "l" both length 1).
//! let node = Ipld::Map(BTreeMap::from([
//!     ("l".to_owned(), Ipld::Null),
//!     ("e".to_owned(), Ipld::List(vec![])),
//! ]));
//! let bytes = dagcbor::encode_ipld(&node)?;
//! assert_eq!(bytes, [0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6]);
//! assert_eq!(dagcbor::decode_ipld(&bytes)?, node);
//!
//! // Non-minimal length of the array (0x98 0x00 instead of 0x80).
//! let bad = [0xa2, 0x61, 0x65, 0x98, 0x00, 0x61, 0x6c, 0xf6];
//! assert!(matches!(
//!     dagcbor::decode_ipld(&bad),
//!     Err(atp_crypto::Error::NonCanonical(_))
//! ));
//! # Ok::<(), atp_crypto::Error>(())
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Serialize};

use crate::cids::{cid_for_dag_cbor, cid_from_bytes};
use crate::{Cid, Error, Ipld};

/// Deepest nesting of maps and lists accepted when decoding or encoding.
///
/// Bounds stack use on hostile input. Protocol data (records, MST nodes,
/// commits) stays far below it. It is also below the depth limit of the
/// serde decoder behind [`from_slice`], so every entry point accepts the
/// same inputs.
pub const MAX_DEPTH: usize = 64;

/// CBOR tag of a CID link.
const CID_TAG: u64 = 42;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// Encodes `value` as canonical DAG-CBOR (map keys sorted by length then
/// bytes, shortest integers, definite lengths, `None` as `null`).
///
/// The output is checked with the strict decoder, so a value outside the
/// data model (a float, a non-string map key, duplicate keys, an integer
/// beyond 64 bits signed) is an error rather than bytes nobody accepts.
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Op<'a> {
///     prev: Option<&'a str>,
///     r#type: &'a str,
/// }
/// let bytes = atp_crypto::dagcbor::to_vec(&Op { prev: None, r#type: "x" })?;
/// // {"prev": null, "type": "x"}: both keys have 4 bytes, so bytewise order.
/// assert_eq!(bytes, b"\xa2\x64prev\xf6\x64type\x61x");
/// # Ok::<(), atp_crypto::Error>(())
/// ```
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let bytes = serde_ipld_dagcbor::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
    match Parser::new(&bytes).document::<false>() {
        Ok(_) => Ok(bytes),
        Err(Error::DataModel(msg)) => Err(Error::DataModel(msg)),
        Err(e) => Err(Error::Encode(format!(
            "value has no canonical DAG-CBOR form: {e}"
        ))),
    }
}

/// Decodes DAG-CBOR strictly: rejects non-canonical key order, duplicate
/// keys, indefinite lengths, floats, non-string map keys and trailing bytes.
///
/// The bytes are first checked by the strict decoder, then deserialized
/// into `T`; a shape mismatch with `T` is an [`Error::Decode`].
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    Parser::new(bytes).document::<false>()?;
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// Checks that `bytes` are one strict, canonical DAG-CBOR value without
/// building it (same rules as [`decode_ipld`]).
pub fn validate(bytes: &[u8]) -> Result<(), Error> {
    Parser::new(bytes).document::<false>().map(|_| ())
}

/// Strictly decodes DAG-CBOR into a generic [`Ipld`] value.
pub fn decode_ipld(bytes: &[u8]) -> Result<Ipld, Error> {
    Parser::new(bytes)
        .document::<true>()?
        .ok_or_else(|| Error::Decode("decoder produced no value".to_owned()))
}

/// Encodes a generic [`Ipld`] value as canonical DAG-CBOR.
///
/// Floats and integers outside the signed 64-bit range are
/// [`Error::DataModel`]; nesting deeper than [`MAX_DEPTH`] is
/// [`Error::Encode`].
pub fn encode_ipld(value: &Ipld) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encode_value(value, &mut out, 0)?;
    Ok(out)
}

/// Encodes `value` and returns its CID (`dag-cbor`, sha2-256) with the bytes.
pub fn cid_of<T: Serialize + ?Sized>(value: &T) -> Result<(Cid, Vec<u8>), Error> {
    let bytes = to_vec(value)?;
    Ok((cid_for_dag_cbor(&bytes), bytes))
}

/// Encodes an [`Ipld`] value and returns its CID with the bytes.
pub fn cid_of_ipld(value: &Ipld) -> Result<(Cid, Vec<u8>), Error> {
    let bytes = encode_ipld(value)?;
    Ok((cid_for_dag_cbor(&bytes), bytes))
}

// ---------------------------------------------------------------------------
// Encoder

fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if arg < 24 {
        out.push(m | arg as u8);
    } else if arg <= u64::from(u8::MAX) {
        out.push(m | 24);
        out.push(arg as u8);
    } else if arg <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(arg as u16).to_be_bytes());
    } else if arg <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(arg as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// Order of map keys in canonical DAG-CBOR: shorter first, then bytewise.
fn key_order(a: &str, b: &str) -> Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn encode_value(value: &Ipld, out: &mut Vec<u8>, depth: usize) -> Result<(), Error> {
    match value {
        Ipld::Null => out.push(0xf6),
        Ipld::Bool(false) => out.push(0xf4),
        Ipld::Bool(true) => out.push(0xf5),
        Ipld::Integer(i) => {
            let i = i64::try_from(*i).map_err(|_| {
                Error::DataModel(format!("integer {i} is outside the signed 64-bit range"))
            })?;
            if i >= 0 {
                write_head(out, MAJOR_UNSIGNED, i as u64);
            } else {
                // -1 - i without overflow: !i as unsigned.
                write_head(out, MAJOR_NEGATIVE, !(i as u64));
            }
        }
        Ipld::Float(f) => {
            return Err(Error::DataModel(format!(
                "float {f} is not allowed in the AT Protocol data model"
            )))
        }
        Ipld::String(s) => {
            write_head(out, MAJOR_TEXT, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Ipld::Bytes(b) => {
            write_head(out, MAJOR_BYTES, b.len() as u64);
            out.extend_from_slice(b);
        }
        Ipld::Link(cid) => {
            let cid_bytes = cid.to_bytes();
            write_head(out, MAJOR_TAG, CID_TAG);
            write_head(out, MAJOR_BYTES, cid_bytes.len() as u64 + 1);
            out.push(0x00);
            out.extend_from_slice(&cid_bytes);
        }
        Ipld::List(items) => {
            let depth = enter(depth).map_err(|_| too_deep_to_encode())?;
            write_head(out, MAJOR_ARRAY, items.len() as u64);
            for item in items {
                encode_value(item, out, depth)?;
            }
        }
        Ipld::Map(map) => {
            let depth = enter(depth).map_err(|_| too_deep_to_encode())?;
            write_head(out, MAJOR_MAP, map.len() as u64);
            let mut entries: Vec<(&String, &Ipld)> = map.iter().collect();
            entries.sort_by(|a, b| key_order(a.0, b.0));
            for (key, item) in entries {
                write_head(out, MAJOR_TEXT, key.len() as u64);
                out.extend_from_slice(key.as_bytes());
                encode_value(item, out, depth)?;
            }
        }
    }
    Ok(())
}

fn too_deep_to_encode() -> Error {
    Error::Encode(format!("value nests deeper than {MAX_DEPTH} levels"))
}

fn enter(depth: usize) -> Result<usize, Error> {
    if depth >= MAX_DEPTH {
        Err(Error::Decode(format!(
            "nesting deeper than {MAX_DEPTH} levels"
        )))
    } else {
        Ok(depth + 1)
    }
}

// ---------------------------------------------------------------------------
// Strict decoder

/// A strict single-pass DAG-CBOR reader. With `BUILD = false` it only
/// checks the input and allocates nothing.
#[derive(Debug)]
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Parser { bytes, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// One complete value and nothing after it.
    fn document<const BUILD: bool>(&mut self) -> Result<Option<Ipld>, Error> {
        if self.bytes.is_empty() {
            return Err(Error::Decode("empty input".to_owned()));
        }
        let value = self.value::<BUILD>(0)?;
        if self.pos != self.bytes.len() {
            return Err(Error::Decode(format!(
                "{} trailing bytes after the value at offset {}",
                self.remaining(),
                self.pos
            )));
        }
        Ok(value)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(Error::Decode(format!(
                "unexpected end of input at offset {}: need {n} bytes, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    /// Reads an initial byte and its argument, requiring the shortest form.
    /// Returns (major type, additional info, argument).
    fn head(&mut self) -> Result<(u8, u8, u64), Error> {
        let start = self.pos;
        let initial = self.byte()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let (arg, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.byte()?), 24),
            25 => {
                let b = self.take(2)?;
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 0x100)
            }
            26 => {
                let b = self.take(4)?;
                (
                    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                    0x1_0000,
                )
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 0x1_0000_0000)
            }
            28..=30 => {
                return Err(Error::Decode(format!(
                    "reserved additional information {info} at offset {start}"
                )))
            }
            _ => {
                return Err(match major {
                    MAJOR_BYTES | MAJOR_TEXT | MAJOR_ARRAY | MAJOR_MAP => {
                        Error::NonCanonical(format!("indefinite length at offset {start}"))
                    }
                    MAJOR_SIMPLE => {
                        Error::Decode(format!("unexpected break byte at offset {start}"))
                    }
                    _ => Error::Decode(format!(
                        "invalid additional information 31 for major type {major} at offset {start}"
                    )),
                })
            }
        };
        // Floats (major 7, info 25..27) are reported by the caller; their
        // argument is a bit pattern, not a number to minimise.
        if major != MAJOR_SIMPLE && arg < min {
            return Err(Error::NonCanonical(format!(
                "integer or length {arg} at offset {start} is not in its shortest form"
            )));
        }
        Ok((major, info, arg))
    }

    /// A length that must fit in the remaining input, counting at least
    /// `unit` bytes per element.
    fn length(&self, arg: u64, unit: usize, what: &str) -> Result<usize, Error> {
        let len = usize::try_from(arg).unwrap_or(usize::MAX);
        if len.saturating_mul(unit) > self.remaining() {
            return Err(Error::Decode(format!(
                "{what} length {arg} at offset {} exceeds the {} remaining bytes",
                self.pos,
                self.remaining()
            )));
        }
        Ok(len)
    }

    fn text(&mut self, arg: u64) -> Result<&'a str, Error> {
        let start = self.pos;
        let len = self.length(arg, 1, "string")?;
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map_err(|e| Error::Decode(format!("invalid UTF-8 in string at offset {start}: {e}")))
    }

    fn value<const BUILD: bool>(&mut self, depth: usize) -> Result<Option<Ipld>, Error> {
        let start = self.pos;
        let (major, info, arg) = self.head()?;
        match major {
            MAJOR_UNSIGNED => {
                let i = i64::try_from(arg).map_err(|_| out_of_range(start))?;
                Ok(BUILD.then(|| Ipld::Integer(i128::from(i))))
            }
            MAJOR_NEGATIVE => {
                let n = i64::try_from(arg).map_err(|_| out_of_range(start))?;
                Ok(BUILD.then(|| Ipld::Integer(-1 - i128::from(n))))
            }
            MAJOR_BYTES => {
                let len = self.length(arg, 1, "byte string")?;
                let raw = self.take(len)?;
                Ok(BUILD.then(|| Ipld::Bytes(raw.to_vec())))
            }
            MAJOR_TEXT => {
                let s = self.text(arg)?;
                Ok(BUILD.then(|| Ipld::String(s.to_owned())))
            }
            MAJOR_ARRAY => {
                let depth = enter(depth)?;
                let len = self.length(arg, 1, "array")?;
                let mut items = Vec::with_capacity(if BUILD { len } else { 0 });
                for _ in 0..len {
                    if let Some(item) = self.value::<BUILD>(depth)? {
                        items.push(item);
                    }
                }
                Ok(BUILD.then_some(Ipld::List(items)))
            }
            MAJOR_MAP => {
                let depth = enter(depth)?;
                let len = self.length(arg, 2, "map")?;
                let mut map = BTreeMap::new();
                let mut previous: Option<&str> = None;
                for _ in 0..len {
                    let key_start = self.pos;
                    let (key_major, _, key_arg) = self.head()?;
                    if key_major != MAJOR_TEXT {
                        return Err(Error::Decode(format!(
                            "map key at offset {key_start} is not a text string (major type {key_major})"
                        )));
                    }
                    let key = self.text(key_arg)?;
                    if let Some(prev) = previous {
                        match key_order(prev, key) {
                            Ordering::Less => {}
                            Ordering::Equal => {
                                return Err(Error::Decode(format!(
                                    "duplicate map key {key:?} at offset {key_start}"
                                )))
                            }
                            Ordering::Greater => {
                                return Err(Error::NonCanonical(format!(
                                    "map key {key:?} at offset {key_start} sorts before the previous key {prev:?}"
                                )))
                            }
                        }
                    }
                    previous = Some(key);
                    if let Some(item) = self.value::<BUILD>(depth)? {
                        map.insert(key.to_owned(), item);
                    }
                }
                Ok(BUILD.then_some(Ipld::Map(map)))
            }
            MAJOR_TAG => {
                if arg != CID_TAG {
                    return Err(Error::Decode(format!(
                        "CBOR tag {arg} at offset {start} is not allowed (only 42, CID links)"
                    )));
                }
                let inner_start = self.pos;
                let (inner_major, _, inner_arg) = self.head()?;
                if inner_major != MAJOR_BYTES {
                    return Err(Error::InvalidCid(format!(
                        "tag 42 at offset {start} does not wrap a byte string"
                    )));
                }
                let len = self.length(inner_arg, 1, "CID")?;
                let raw = self.take(len)?;
                match raw.split_first() {
                    Some((0x00, cid_bytes)) => {
                        let cid = cid_from_bytes(cid_bytes).map_err(|e| match e {
                            Error::InvalidCid(msg) => {
                                Error::InvalidCid(format!("link at offset {inner_start}: {msg}"))
                            }
                            other => other,
                        })?;
                        Ok(BUILD.then_some(Ipld::Link(cid)))
                    }
                    _ => Err(Error::InvalidCid(format!(
                        "link at offset {inner_start} lacks the 0x00 multibase prefix"
                    ))),
                }
            }
            _ => match info {
                20 => Ok(BUILD.then_some(Ipld::Bool(false))),
                21 => Ok(BUILD.then_some(Ipld::Bool(true))),
                22 => Ok(BUILD.then_some(Ipld::Null)),
                23 => Err(Error::Decode(format!(
                    "`undefined` at offset {start} is not allowed"
                ))),
                25..=27 => Err(Error::DataModel(format!(
                    "float at offset {start} is not allowed in the AT Protocol data model"
                ))),
                _ => Err(Error::Decode(format!(
                    "simple value {arg} at offset {start} is not allowed"
                ))),
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Pull reader

/// Reads a few fields of one DAG-CBOR value in place, without building it:
/// for hot paths that need, say, the links of a stored MST node and
/// nothing else.
///
/// Every item read goes through the same strict checks as
/// [`decode_ipld`] (shortest heads, definite lengths, lengths bounded by
/// the input, UTF-8 text); a skipped value is checked whole. What the
/// reader does not check is the order of map keys, which the caller reads
/// one by one. Nothing is allocated.
///
/// ```
/// use atp_crypto::dagcbor::Reader;
///
/// // {"e": [], "l": null}: the empty MST node.
/// let node = [0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];
/// let mut reader = Reader::new(&node);
/// assert_eq!(reader.map_len()?, 2);
/// assert_eq!(reader.text()?, "e");
/// assert_eq!(reader.array_len()?, 0);
/// assert_eq!(reader.text()?, "l");
/// assert_eq!(reader.link_or_null()?, None);
/// reader.finish()?;
/// # Ok::<(), atp_crypto::Error>(())
/// ```
#[derive(Debug)]
pub struct Reader<'a> {
    parser: Parser<'a>,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            parser: Parser::new(bytes),
        }
    }

    /// The head of the next item, which must be of type `major`.
    fn expect(&mut self, major: u8, what: &str) -> Result<u64, Error> {
        let start = self.parser.pos;
        match self.parser.head()? {
            (found, _, arg) if found == major => Ok(arg),
            (found, _, _) => Err(Error::Decode(format!(
                "expected {what} at offset {start}, found major type {found}"
            ))),
        }
    }

    /// The next item must be a map: its number of entries (each a text
    /// key, to read with [`Reader::text`], then a value).
    pub fn map_len(&mut self) -> Result<usize, Error> {
        let arg = self.expect(MAJOR_MAP, "a map")?;
        self.parser.length(arg, 2, "map")
    }

    /// The next item must be an array: its number of items.
    pub fn array_len(&mut self) -> Result<usize, Error> {
        let arg = self.expect(MAJOR_ARRAY, "an array")?;
        self.parser.length(arg, 1, "array")
    }

    /// The next item must be a text string (a map key, for instance).
    pub fn text(&mut self) -> Result<&'a str, Error> {
        let arg = self.expect(MAJOR_TEXT, "a text string")?;
        self.parser.text(arg)
    }

    /// The next item must be a link (tag 42 over `0x00` and a CID): the
    /// CID's binary form, not parsed (the bytes a store keys blocks by).
    pub fn link(&mut self) -> Result<&'a [u8], Error> {
        let start = self.parser.pos;
        if self.expect(MAJOR_TAG, "a link")? != CID_TAG {
            return Err(Error::Decode(format!(
                "CBOR tag at offset {start} is not 42 (a CID link)"
            )));
        }
        let arg = self.expect(MAJOR_BYTES, "the byte string of a link")?;
        let len = self.parser.length(arg, 1, "CID")?;
        match self.parser.take(len)?.split_first() {
            Some((0x00, cid)) if !cid.is_empty() => Ok(cid),
            _ => Err(Error::InvalidCid(format!(
                "link at offset {start} lacks the 0x00 multibase prefix or the CID"
            ))),
        }
    }

    /// A link as in [`Reader::link`], or `None` for `null`.
    pub fn link_or_null(&mut self) -> Result<Option<&'a [u8]>, Error> {
        if self.parser.bytes.get(self.parser.pos) == Some(&0xf6) {
            self.parser.pos += 1;
            return Ok(None);
        }
        self.link().map(Some)
    }

    /// Skips the next value, whatever it is, checking it as
    /// [`decode_ipld`] would (nesting at most [`MAX_DEPTH`]).
    pub fn skip(&mut self) -> Result<(), Error> {
        self.parser.value::<false>(0).map(|_| ())
    }

    /// Succeeds when every byte has been read.
    pub fn finish(&self) -> Result<(), Error> {
        match self.parser.remaining() {
            0 => Ok(()),
            left => Err(Error::Decode(format!(
                "{left} trailing bytes after the value at offset {}",
                self.parser.pos
            ))),
        }
    }
}

fn out_of_range(offset: usize) -> Error {
    Error::DataModel(format!(
        "integer at offset {offset} is outside the signed 64-bit range"
    ))
}
