//! The one error type of this crate.

use std::fmt;

/// Why a string is not a valid identifier of the requested kind.
///
/// Each variant names the kind of identifier, carries the offending input
/// and a short reason, so the message reads like
/// `handle "john..test": empty label`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Not a valid DID.
    #[error("DID {}: {reason}", Shown(.input))]
    Did {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid handle.
    #[error("handle {}: {reason}", Shown(.input))]
    Handle {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid at-identifier (DID or handle).
    #[error("at-identifier {}: {reason}", Shown(.input))]
    AtIdentifier {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid NSID.
    #[error("NSID {}: {reason}", Shown(.input))]
    Nsid {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid AT-URI.
    #[error("AT-URI {}: {reason}", Shown(.input))]
    AtUri {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid TID, or TID parts out of range.
    #[error("TID {}: {reason}", Shown(.input))]
    Tid {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid record key.
    #[error("record key {}: {reason}", Shown(.input))]
    RecordKey {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid datetime.
    #[error("datetime {}: {reason}", Shown(.input))]
    Datetime {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid language tag.
    #[error("language tag {}: {reason}", Shown(.input))]
    Language {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a syntactically valid CID string.
    #[error("CID string {}: {reason}", Shown(.input))]
    Cid {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Not a valid generic URI.
    #[error("URI {}: {reason}", Shown(.input))]
    Uri {
        /// The rejected input.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

impl Error {
    /// The input that was rejected.
    pub fn input(&self) -> &str {
        match self {
            Error::Did { input, .. }
            | Error::Handle { input, .. }
            | Error::AtIdentifier { input, .. }
            | Error::Nsid { input, .. }
            | Error::AtUri { input, .. }
            | Error::Tid { input, .. }
            | Error::RecordKey { input, .. }
            | Error::Datetime { input, .. }
            | Error::Language { input, .. }
            | Error::Cid { input, .. }
            | Error::Uri { input, .. } => input,
        }
    }

    /// The reason the input was rejected.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Did { reason, .. }
            | Error::Handle { reason, .. }
            | Error::AtIdentifier { reason, .. }
            | Error::Nsid { reason, .. }
            | Error::AtUri { reason, .. }
            | Error::Tid { reason, .. }
            | Error::RecordKey { reason, .. }
            | Error::Datetime { reason, .. }
            | Error::Language { reason, .. }
            | Error::Cid { reason, .. }
            | Error::Uri { reason, .. } => reason,
        }
    }
}

/// Longest part of an input shown in an error message; inputs can be
/// kilobytes long and messages end up in logs.
const SHOWN_CHARS: usize = 96;

/// Displays an input quoted, cut to a readable length.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(SHOWN_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}... ({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
