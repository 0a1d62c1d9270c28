//! Handles: DNS names that name an account, such as `alice.bsky.social`.

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;

/// Longest handle accepted, in characters.
pub const HANDLE_MAX_LENGTH: usize = 253;

/// Longest label (dot-separated part) of a handle, in characters.
pub const HANDLE_LABEL_MAX_LENGTH: usize = 63;

/// Top-level domains that the reference implementation refuses when
/// registering a handle (they are still syntactically valid handles).
pub const DISALLOWED_TLDS: &[&str] = &[
    ".local",
    ".arpa",
    ".invalid",
    ".localhost",
    ".internal",
    ".example",
    ".alt",
    ".onion",
];

/// A syntactically valid handle, normalized to lower case.
///
/// Syntax (atproto handle spec): at least two labels separated by `.`, each
/// 1 to 63 ASCII letters, digits or hyphens, not starting or ending with a
/// hyphen; the last label (TLD) starts with a letter; at most 253
/// characters. Handles are case-insensitive: parsing lower-cases the input,
/// so `Alice.Example.COM` and `alice.example.com` are equal and both display
/// as `alice.example.com`.
///
/// ```
/// use atp_syntax::Handle;
/// let handle: Handle = "XX.LCS.MIT.EDU".parse()?;
/// assert_eq!(handle.as_str(), "xx.lcs.mit.edu");
/// assert!("john..test".parse::<Handle>().is_err());
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(String);

impl Handle {
    /// The special handle `handle.invalid`, shown for accounts whose handle
    /// does not resolve back to their DID.
    pub const INVALID: &'static str = "handle.invalid";

    /// Validates `input` as a handle and normalizes it to lower case.
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_owned(input.to_owned())
    }

    pub(crate) fn parse_owned(mut input: String) -> Result<Self> {
        match check(&input) {
            Ok(()) => {
                input.make_ascii_lowercase();
                Ok(Handle(input))
            }
            Err(reason) => Err(Error::Handle { input, reason }),
        }
    }

    /// Whether `input` is a valid handle (in any letter case).
    pub fn is_valid(input: &str) -> bool {
        check(input).is_ok()
    }

    /// The normalized (lower-case) handle.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The labels of the handle, from the left.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// The last label, such as `social` for `alice.bsky.social`.
    pub fn tld(&self) -> &str {
        self.0.rsplit('.').next().unwrap_or_default()
    }

    /// Whether the handle ends in one of [`DISALLOWED_TLDS`] (a policy check
    /// for registration, not a syntax rule).
    pub fn has_disallowed_tld(&self) -> bool {
        DISALLOWED_TLDS.iter().any(|tld| self.0.ends_with(tld))
    }

    /// Whether this is the special [`Handle::INVALID`] handle.
    pub fn is_invalid_marker(&self) -> bool {
        self.0 == Self::INVALID
    }

    /// The handle as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl_string_traits!(Handle, "a handle string");

/// Checks the syntax of a DNS-name-like string with the handle rules, in any
/// letter case.
fn check(input: &str) -> std::result::Result<(), &'static str> {
    if input.len() > HANDLE_MAX_LENGTH {
        return Err("longer than 253 characters");
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err("disallowed character (ASCII letters, digits, hyphens and periods only)");
    }
    let mut labels = input.split('.').peekable();
    let mut count = 0;
    while let Some(label) = labels.next() {
        count += 1;
        if label.is_empty() {
            return Err("empty label");
        }
        if label.len() > HANDLE_LABEL_MAX_LENGTH {
            return Err("label longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("label starts or ends with a hyphen");
        }
        let is_last = labels.peek().is_none();
        if is_last {
            if count < 2 {
                return Err("needs at least two labels");
            }
            if !label.as_bytes()[0].is_ascii_alphabetic() {
                return Err("last label (TLD) must start with a letter");
            }
        }
    }
    Ok(())
}
