//! CID strings, checked for syntax only.

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;

/// A string that looks like a CID (Lexicon `cid` format, syntax level).
///
/// This is the cheap check used for string fields: 8 to 256 characters of
/// ASCII letters, digits, `+` and `=` (the alphabets of the common
/// multibase encodings), and not a legacy CIDv0 (`Qm...`). It does not
/// decode the CID: real parsing (version, codec, hash) lives in
/// `atp-crypto`.
///
/// ```
/// use atp_syntax::CidString;
/// let cid: CidString =
///     "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm".parse()?;
/// assert!(cid.as_str().starts_with("bafy"));
/// assert!("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR".parse::<CidString>().is_err());
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidString(String);

impl CidString {
    /// Checks the syntax of `input` as a CID string.
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_owned(input.to_owned())
    }

    pub(crate) fn parse_owned(input: String) -> Result<Self> {
        match check(&input) {
            Ok(()) => Ok(CidString(input)),
            Err(reason) => Err(Error::Cid { input, reason }),
        }
    }

    /// Whether `input` passes the CID string syntax check.
    pub fn is_valid(input: &str) -> bool {
        check(input).is_ok()
    }

    /// The CID string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The CID string as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl_string_traits!(CidString, "a CID string");

fn check(input: &str) -> std::result::Result<(), &'static str> {
    if input.len() < 8 {
        return Err("shorter than 8 characters");
    }
    if input.len() > 256 {
        return Err("longer than 256 characters");
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=')
    {
        return Err("disallowed character (ASCII letters, digits, + and = only)");
    }
    if input.starts_with("Qm") {
        return Err("CIDv0 (\"Qm...\") is not supported");
    }
    Ok(())
}
