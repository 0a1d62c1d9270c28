//! Namespaced identifiers (NSIDs), such as `app.bsky.feed.post`.

use crate::error::Result;
use crate::string_traits::impl_checked_string;

/// Longest NSID accepted: a 253-character domain authority, a period and a
/// 63-character name.
pub const NSID_MAX_LENGTH: usize = 253 + 1 + 63;

/// A syntactically valid NSID: a reversed domain name (the authority)
/// followed by a name, such as `com.example.fooBar`.
///
/// Syntax (atproto NSID spec): at least three period-separated segments of
/// 1 to 63 characters; authority segments are ASCII letters, digits and
/// hyphens, not starting or ending with a hyphen, the first one starting
/// with a letter; the name is ASCII letters and digits, starting with a
/// letter; at most 317 characters. The string is kept as written (the name
/// is case-sensitive).
///
/// ```
/// use atp_syntax::Nsid;
/// let nsid: Nsid = "app.bsky.feed.post".parse()?;
/// assert_eq!(nsid.name(), "post");
/// assert_eq!(nsid.authority(), "feed.bsky.app");
/// assert_eq!(nsid.reversed_authority(), "app.bsky.feed");
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

impl Nsid {
    /// Builds an NSID from a domain authority in DNS order (such as
    /// `example.com`) and a name (such as `fooBar`): `com.example.fooBar`.
    pub fn from_authority_and_name(authority: &str, name: &str) -> Result<Self> {
        let mut text: Vec<&str> = authority.rsplit('.').collect();
        text.push(name);
        Self::parse_owned(text.join("."))
    }

    /// The name: the last segment, such as `post` in `app.bsky.feed.post`.
    pub fn name(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }

    /// The authority as written in the NSID (reversed domain order), such as
    /// `app.bsky.feed` in `app.bsky.feed.post`.
    pub fn reversed_authority(&self) -> &str {
        match self.0.rfind('.') {
            Some(dot) => &self.0[..dot],
            None => "",
        }
    }

    /// The authority as a domain name in DNS order, such as `feed.bsky.app`
    /// for `app.bsky.feed.post` (the form the reference calls `authority`).
    pub fn authority(&self) -> String {
        self.reversed_authority()
            .rsplit('.')
            .collect::<Vec<_>>()
            .join(".")
    }

    /// All segments, from the left.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl_checked_string!(Nsid, Nsid, "an", "NSID");

fn check(input: &str) -> std::result::Result<(), &'static str> {
    if input.len() > NSID_MAX_LENGTH {
        return Err("longer than 317 characters");
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err("disallowed character (ASCII letters, digits, hyphens and periods only)");
    }
    let segments: Vec<&str> = input.split('.').collect();
    if segments.len() < 3 {
        return Err("needs at least three segments");
    }
    for segment in &segments {
        if segment.is_empty() {
            return Err("empty segment");
        }
        if segment.len() > 63 {
            return Err("segment longer than 63 characters");
        }
        if segment.starts_with('-') || segment.ends_with('-') {
            return Err("segment starts or ends with a hyphen");
        }
    }
    if segments[0].as_bytes()[0].is_ascii_digit() {
        return Err("first segment can not start with a digit");
    }
    let name = segments[segments.len() - 1];
    if !name.as_bytes()[0].is_ascii_alphabetic() || name.contains('-') {
        return Err("name must be ASCII letters and digits, starting with a letter");
    }
    Ok(())
}
