//! CID strings, checked for syntax only.

use crate::string_traits::impl_checked_string;

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

impl_checked_string!(CidString, Cid, "a", "CID");

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
