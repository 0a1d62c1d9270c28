//! Decentralized identifiers (`did:method:identifier`).

use crate::string_traits::impl_checked_string;

/// Longest DID accepted, in bytes.
pub const DID_MAX_LENGTH: usize = 2048;

/// A syntactically valid DID, such as `did:plc:7iza6de2dwap2sbkpav7c6c6`.
///
/// The syntax is the generic one of the atproto DID spec: `did:`, a method of
/// lower-case letters, `:`, and a method-specific identifier made of ASCII
/// letters, digits and `._:%-` that does not end in `:` or `%`; at most
/// 2048 characters. Any method is accepted: whether a method is supported
/// is a question for resolution, not syntax. DIDs are case-sensitive and
/// never normalized.
///
/// ```
/// use atp_syntax::Did;
/// let did: Did = "did:web:example.com".parse()?;
/// assert_eq!(did.method(), "web");
/// assert_eq!(did.method_specific_id(), "example.com");
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Did(String);

impl Did {
    /// The method name, such as `plc` or `web`.
    pub fn method(&self) -> &str {
        self.0[4..].split(':').next().unwrap_or_default()
    }

    /// Everything after `did:<method>:`.
    pub fn method_specific_id(&self) -> &str {
        let rest = &self.0[4..];
        match rest.find(':') {
            Some(colon) => &rest[colon + 1..],
            None => "",
        }
    }
}

impl_checked_string!(Did, Did, "a", "DID");

fn check(input: &str) -> std::result::Result<(), &'static str> {
    let Some(rest) = input.strip_prefix("did:") else {
        return Err("must start with \"did:\"");
    };
    if input.len() > DID_MAX_LENGTH {
        return Err("longer than 2048 characters");
    }
    let Some((method, id)) = rest.split_once(':') else {
        return Err("needs a method and a method-specific identifier");
    };
    if method.is_empty() {
        return Err("empty method");
    }
    if !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err("method must be lower-case letters");
    }
    if id.is_empty() {
        return Err("empty method-specific identifier");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'%' | b'-'))
    {
        return Err("disallowed character (ASCII letters, digits and ._:%- only)");
    }
    if id.ends_with(':') || id.ends_with('%') {
        return Err("can not end with \":\" or \"%\"");
    }
    Ok(())
}
