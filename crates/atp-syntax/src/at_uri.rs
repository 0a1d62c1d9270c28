//! AT-URIs: `at://` references to repositories, collections and records.

use std::fmt;

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;
use crate::{AtIdentifier, Nsid, RecordKey};

/// Longest AT-URI accepted, in bytes (8 KiB).
pub const AT_URI_MAX_LENGTH: usize = 8192;

/// A valid AT-URI in the form Lexicon `at-uri` fields use:
/// `at://AUTHORITY[/COLLECTION[/RKEY]]`, optionally followed by a
/// `#/json/pointer` fragment.
///
/// Rules (atproto AT-URI spec, as the reference enforces them):
/// * at most 8 KiB of ASCII; the scheme is exactly `at://`;
/// * the authority is a [`Did`](crate::Did) or a [`Handle`](crate::Handle);
/// * an optional collection [`Nsid`] and, after it, an optional
///   [`RecordKey`]; no further path segments, no empty segments, no
///   trailing slash;
/// * no query part (`?...`): reserved by the spec, unused in Lexicon;
/// * an optional fragment, which must be a JSON pointer (starting with `/`)
///   whose percent-escapes decode to UTF-8.
///
/// The string is kept as written; [`authority`](AtUri::authority) gives the
/// authority with a handle normalized to lower case.
///
/// ```
/// use atp_syntax::AtUri;
/// let uri: AtUri = "at://did:plc:asdf123/app.bsky.feed.post/3jzfcijpj2z2a".parse()?;
/// assert_eq!(uri.authority().as_str(), "did:plc:asdf123");
/// assert_eq!(uri.collection().map(|c| c.as_str()), Some("app.bsky.feed.post"));
/// assert_eq!(uri.record_key().map(|r| r.as_str()), Some("3jzfcijpj2z2a"));
/// assert!("at://did:plc:asdf123/".parse::<AtUri>().is_err());
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AtUri {
    // `text` comes first: every other field is a function of it, so the
    // derived comparisons are those of the string.
    text: String,
    authority: AtIdentifier,
    collection: Option<Nsid>,
    record_key: Option<RecordKey>,
    fragment: Option<String>,
}

impl AtUri {
    /// Validates `input` as an AT-URI.
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_owned(input.to_owned())
    }

    pub(crate) fn parse_owned(input: String) -> Result<Self> {
        match parse_parts(&input) {
            Ok((authority, collection, record_key, fragment)) => Ok(AtUri {
                text: input,
                authority,
                collection,
                record_key,
                fragment,
            }),
            Err(reason) => Err(Error::AtUri { input, reason }),
        }
    }

    /// Whether `input` is a valid AT-URI.
    pub fn is_valid(input: &str) -> bool {
        parse_parts(input).is_ok()
    }

    /// The URI of a whole repository: `at://<authority>`.
    pub fn for_repo(authority: impl Into<AtIdentifier>) -> Self {
        Self::from_parts(authority.into(), None, None)
    }

    /// The URI of a collection: `at://<authority>/<collection>`.
    pub fn for_collection(authority: impl Into<AtIdentifier>, collection: Nsid) -> Self {
        Self::from_parts(authority.into(), Some(collection), None)
    }

    /// The URI of a record: `at://<authority>/<collection>/<rkey>`.
    pub fn for_record(
        authority: impl Into<AtIdentifier>,
        collection: Nsid,
        record_key: RecordKey,
    ) -> Self {
        Self::from_parts(authority.into(), Some(collection), Some(record_key))
    }

    fn from_parts(
        authority: AtIdentifier,
        collection: Option<Nsid>,
        record_key: Option<RecordKey>,
    ) -> Self {
        // Longest possible: 5 + 2048 + 1 + 317 + 1 + 512 < 8192.
        let mut text = format!("at://{}", authority.as_str());
        if let Some(collection) = &collection {
            text.push('/');
            text.push_str(collection.as_str());
            if let Some(rkey) = &record_key {
                text.push('/');
                text.push_str(rkey.as_str());
            }
        }
        AtUri {
            text,
            authority,
            collection,
            record_key,
            fragment: None,
        }
    }

    /// The URI as a string, as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The authority: a DID or a (lower-case) handle.
    pub fn authority(&self) -> &AtIdentifier {
        &self.authority
    }

    /// The collection, if the path has one.
    pub fn collection(&self) -> Option<&Nsid> {
        self.collection.as_ref()
    }

    /// The record key, if the path has one.
    pub fn record_key(&self) -> Option<&RecordKey> {
        self.record_key.as_ref()
    }

    /// The fragment without its `#`, as written (a JSON pointer starting
    /// with `/`), if there is one.
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// The URI as an owned string.
    pub fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Debug for AtUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AtUri({:?})", self.text)
    }
}

impl_string_traits!(AtUri, "an AT-URI string");

type Parts = (
    AtIdentifier,
    Option<Nsid>,
    Option<RecordKey>,
    Option<String>,
);

/// Characters allowed anywhere in an AT-URI.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'.' | b'_'
                | b'~'
                | b':'
                | b'@'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
                | b'/'
                | b'\\'
                | b'['
                | b']'
                | b'#'
                | b'?'
                | b'-'
        )
}

/// Characters allowed in the JSON-pointer fragment.
fn is_fragment_char(b: u8) -> bool {
    is_uri_char(b) && !matches!(b, b'\\' | b'#' | b'?')
}

fn parse_parts(input: &str) -> std::result::Result<Parts, &'static str> {
    if input.len() > AT_URI_MAX_LENGTH {
        return Err("longer than 8192 characters");
    }
    if !input.bytes().all(is_uri_char) {
        return Err("disallowed character");
    }
    let Some(rest) = input.strip_prefix("at://") else {
        return Err("must start with \"at://\"");
    };
    let (before_fragment, fragment) = match rest.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (rest, None),
    };
    if before_fragment.contains('?') {
        return Err("query part is not allowed");
    }
    let mut segments = before_fragment.split('/');
    let authority = segments.next().unwrap_or_default();
    if authority.is_empty() {
        return Err("empty authority");
    }
    let collection = segments.next();
    let record_key = segments.next();
    if segments.next().is_some() {
        return Err("more than two path segments, or a trailing slash");
    }
    match (collection, record_key) {
        (Some(""), None) | (Some(_), Some("")) => return Err("trailing slash"),
        (Some(""), Some(_)) => return Err("empty path segment"),
        _ => {}
    }
    let authority = AtIdentifier::new(authority).map_err(|_| "authority is not a DID or handle")?;
    let collection = collection
        .map(Nsid::new)
        .transpose()
        .map_err(|_| "collection is not a valid NSID")?;
    let record_key = record_key
        .map(RecordKey::new)
        .transpose()
        .map_err(|_| "record key is not valid")?;
    let fragment = match fragment {
        None => None,
        Some(fragment) => {
            check_fragment(fragment)?;
            Some(fragment.to_owned())
        }
    };
    Ok((authority, collection, record_key, fragment))
}

/// A fragment is a JSON pointer: `/` then allowed characters, with
/// percent-escapes that decode to UTF-8.
fn check_fragment(fragment: &str) -> std::result::Result<(), &'static str> {
    let bytes = fragment.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err("fragment must be a JSON pointer starting with \"/\"");
    }
    if !bytes.iter().copied().all(is_fragment_char) {
        return Err("disallowed character in fragment");
    }
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or("truncated percent-escape in fragment")?;
            let high = hex_value(hex[0]).ok_or("invalid percent-escape in fragment")?;
            let low = hex_value(hex[1]).ok_or("invalid percent-escape in fragment")?;
            decoded.push(high << 4 | low);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err("fragment percent-escapes do not decode to UTF-8");
    }
    Ok(())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
