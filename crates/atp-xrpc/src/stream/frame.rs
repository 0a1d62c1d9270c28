//! Event-stream frames: a DAG-CBOR header followed by a DAG-CBOR body, in
//! one binary WebSocket message.
//!
//! A message frame has the header `{op: 1, t: "#commit"}` (`t` names the
//! message type); an error frame has the header `{op: -1}` and the body
//! `{error: "...", message: "..."}`, after which the stream ends.

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::{dagcbor, Ipld};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Error;

/// Most nesting accepted while measuring a frame header.
const MAX_HEADER_DEPTH: usize = 16;

/// The header of a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameHeader {
    /// `op: 1`, with the message type (`#commit`, `#identity`...) if given.
    Message {
        /// The `t` field.
        t: Option<String>,
    },
    /// `op: -1`.
    Error,
}

/// One encoded frame, ready to send to any number of subscribers: clones
/// share the header and the encoded bytes (no copy, no allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    header: Arc<FrameHeader>,
    bytes: Bytes,
    body_start: usize,
}

/// The body of an error frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// Error name, such as `FutureCursor` or `ConsumerTooSlow`.
    pub error: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Frame {
    /// A message frame of type `t` (for example `#commit`) with `body`
    /// encoded as DAG-CBOR.
    pub fn message<T: Serialize + ?Sized>(t: &str, body: &T) -> Result<Self, Error> {
        let body = dagcbor::to_vec(body)?;
        Self::from_parts(
            FrameHeader::Message {
                t: Some(t.to_owned()),
            },
            &body,
        )
    }

    /// An error frame.
    pub fn error(error: &str, message: Option<&str>) -> Self {
        let body = ErrorBody {
            error: error.to_owned(),
            message: message.map(str::to_owned),
        };
        // Encoding two strings cannot fail; an empty body is the fallback.
        let body = dagcbor::to_vec(&body).unwrap_or_default();
        let header = encode_header(&FrameHeader::Error);
        let body_start = header.len();
        let mut bytes = header;
        bytes.extend_from_slice(&body);
        Frame {
            header: Arc::new(FrameHeader::Error),
            bytes: Bytes::from(bytes),
            body_start,
        }
    }

    /// A frame from a header and an already encoded DAG-CBOR body (which is
    /// checked).
    pub fn from_parts(header: FrameHeader, body: &[u8]) -> Result<Self, Error> {
        dagcbor::validate(body)?;
        let mut bytes = encode_header(&header);
        let body_start = bytes.len();
        bytes.extend_from_slice(body);
        Ok(Frame {
            header: Arc::new(header),
            bytes: Bytes::from(bytes),
            body_start,
        })
    }

    /// Decodes a received WebSocket message.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let header_len = cbor_item_len(bytes, 0)
            .ok_or_else(|| Error::InvalidResponse("frame header is not a CBOR item".into()))?;
        let header = dagcbor::decode_ipld(&bytes[..header_len])?;
        let header = parse_header(&header)?;
        let body = &bytes[header_len..];
        if body.is_empty() {
            return Err(Error::InvalidResponse("frame without a body".into()));
        }
        dagcbor::validate(body)?;
        Ok(Frame {
            header: Arc::new(header),
            bytes: Bytes::copy_from_slice(bytes),
            body_start: header_len,
        })
    }

    /// The header.
    pub fn header(&self) -> &FrameHeader {
        &self.header
    }

    /// The message type (`t`), for message frames.
    pub fn message_type(&self) -> Option<&str> {
        match self.header.as_ref() {
            FrameHeader::Message { t } => t.as_deref(),
            FrameHeader::Error => None,
        }
    }

    /// Whether this is an error frame.
    pub fn is_error(&self) -> bool {
        *self.header == FrameHeader::Error
    }

    /// The body of an error frame.
    pub fn error_body(&self) -> Option<ErrorBody> {
        if self.is_error() {
            self.body().ok()
        } else {
            None
        }
    }

    /// The whole frame as sent on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The DAG-CBOR body bytes.
    pub fn body_bytes(&self) -> &[u8] {
        &self.bytes[self.body_start..]
    }

    /// The body decoded into `T`.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T, Error> {
        Ok(dagcbor::from_slice(self.body_bytes())?)
    }
}

fn encode_header(header: &FrameHeader) -> Vec<u8> {
    let mut map = BTreeMap::new();
    match header {
        FrameHeader::Message { t } => {
            map.insert("op".to_owned(), Ipld::Integer(1));
            if let Some(t) = t {
                map.insert("t".to_owned(), Ipld::String(t.clone()));
            }
        }
        FrameHeader::Error => {
            map.insert("op".to_owned(), Ipld::Integer(-1));
        }
    }
    // A map of an integer and a string always encodes.
    dagcbor::encode_ipld(&Ipld::Map(map)).unwrap_or_default()
}

fn parse_header(value: &Ipld) -> Result<FrameHeader, Error> {
    let Ipld::Map(map) = value else {
        return Err(Error::InvalidResponse("frame header is not a map".into()));
    };
    let t = match map.get("t") {
        None => None,
        Some(Ipld::String(t)) => Some(t.clone()),
        Some(_) => {
            return Err(Error::InvalidResponse(
                "frame header t is not a string".into(),
            ))
        }
    };
    match map.get("op") {
        Some(Ipld::Integer(1)) => Ok(FrameHeader::Message { t }),
        Some(Ipld::Integer(-1)) => Ok(FrameHeader::Error),
        _ => Err(Error::InvalidResponse(
            "frame header op is not 1 or -1".into(),
        )),
    }
}

/// Length in bytes of the CBOR item at the start of `bytes`, or `None` if
/// it is truncated, indefinite-length or too deep.
fn cbor_item_len(bytes: &[u8], depth: usize) -> Option<usize> {
    if depth > MAX_HEADER_DEPTH {
        return None;
    }
    let first = *bytes.first()?;
    let major = first >> 5;
    let info = first & 0x1f;
    let (arg, mut pos) = match info {
        0..=23 => (u64::from(info), 1usize),
        24 => (u64::from(*bytes.get(1)?), 2),
        25 => (
            u64::from(u16::from_be_bytes(bytes.get(1..3)?.try_into().ok()?)),
            3,
        ),
        26 => (
            u64::from(u32::from_be_bytes(bytes.get(1..5)?.try_into().ok()?)),
            5,
        ),
        27 => (u64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?), 9),
        _ => return None,
    };
    match major {
        0 | 1 | 7 => Some(pos),
        2 | 3 => {
            let end = pos.checked_add(usize::try_from(arg).ok()?)?;
            (end <= bytes.len()).then_some(end)
        }
        4 | 5 => {
            let items = if major == 5 { arg.checked_mul(2)? } else { arg };
            for _ in 0..items {
                pos = pos.checked_add(cbor_item_len(bytes.get(pos..)?, depth + 1)?)?;
            }
            Some(pos)
        }
        6 => pos.checked_add(cbor_item_len(bytes.get(pos..)?, depth + 1)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_canonical() {
        let frame = Frame::message("#commit", &serde_json::json!({"seq": 1})).unwrap();
        // {t: "#commit", op: 1}: map(2), "t" sorts before "op" (shorter key).
        let header = &frame.as_bytes()[..frame.body_start];
        assert_eq!(header[0], 0xa2);
        assert_eq!(&header[1..3], &[0x61, b't']);
    }

    #[test]
    fn hostile_lengths_do_not_panic() {
        for bytes in [
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[0xbf][..],
            &[][..],
        ] {
            assert!(Frame::decode(bytes).is_err());
        }
    }
}
