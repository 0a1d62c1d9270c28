//! Generic URIs (Lexicon `uri` format).

use crate::string_traits::impl_checked_string;

/// Longest URI accepted, in bytes (8 KiB).
pub const URI_MAX_LENGTH: usize = 8192;

/// A string that passes the Lexicon `uri` check: an RFC 3986 scheme (a
/// letter, then letters, digits, `+`, `-` or `.`), a `:`, an optional `//`,
/// then at least one character that is neither whitespace nor `/`, and no
/// whitespace anywhere; at most 8 KiB.
///
/// This is a loose check for any URI (`https:`, `did:`, `at:`, `dns:`...),
/// not a full RFC 3986 parser. It differs from the reference's regular
/// expression on the scheme, where it follows the RFC and the interop
/// vectors (`content-type:text/plan` is valid, `1abc:x` is not).
///
/// ```
/// use atp_syntax::Uri;
/// let uri: Uri = "https://example.com/path?q=1#frag".parse()?;
/// assert_eq!(uri.scheme(), "https");
/// assert!("example.com".parse::<Uri>().is_err());
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uri(String);

impl Uri {
    /// The scheme, before the first `:`.
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }
}

impl_checked_string!(Uri, Uri, "a", "URI");

fn check(input: &str) -> std::result::Result<(), &'static str> {
    if input.len() > URI_MAX_LENGTH {
        return Err("longer than 8192 characters");
    }
    let Some((scheme, rest)) = input.split_once(':') else {
        return Err("needs a scheme followed by \":\"");
    };
    if !scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return Err("scheme must be a letter then letters, digits, \"+\", \"-\" or \".\"");
    }
    if rest.chars().any(char::is_whitespace) {
        return Err("contains whitespace");
    }
    let body = rest.strip_prefix("//").unwrap_or(rest);
    match body.as_bytes().first() {
        None => Err("nothing after the scheme"),
        Some(b'/') => Err("path after the scheme can not start with \"/\""),
        Some(_) => Ok(()),
    }
}
