//! Record keys: the last part of a record's path in a repository.

use crate::string_traits::impl_checked_string;

/// Longest record key accepted, in characters.
pub const RECORD_KEY_MAX_LENGTH: usize = 512;

/// A syntactically valid record key, such as `self` or a TID.
///
/// Syntax (atproto record-key spec): 1 to 512 characters among ASCII
/// letters, digits and `.-_:~`, and not exactly `.` or `..`. Record keys
/// are case-sensitive and never normalized.
///
/// ```
/// use atp_syntax::RecordKey;
/// let rkey: RecordKey = "self".parse()?;
/// assert_eq!(rkey, "self");
/// assert!("..".parse::<RecordKey>().is_err());
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey(String);

impl From<crate::Tid> for RecordKey {
    /// A TID is always a valid record key (the usual kind for posts).
    fn from(tid: crate::Tid) -> Self {
        RecordKey(tid.as_str().to_owned())
    }
}

impl_checked_string!(RecordKey, RecordKey, "a", "record key");

fn check(input: &str) -> std::result::Result<(), &'static str> {
    if input.is_empty() {
        return Err("empty");
    }
    if input.len() > RECORD_KEY_MAX_LENGTH {
        return Err("longer than 512 characters");
    }
    if input == "." || input == ".." {
        return Err("can not be \".\" or \"..\"");
    }
    if !input
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'~'))
    {
        return Err("disallowed character (ASCII letters, digits and .-_:~ only)");
    }
    Ok(())
}
