//! At-identifiers: a DID or a handle, as used in XRPC parameters and
//! AT-URI authorities.

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;
use crate::{Did, Handle};

/// Either a [`Did`] or a [`Handle`].
///
/// The two never overlap: a DID starts with `did:` and a handle can not
/// contain `:`. A handle is normalized to lower case.
///
/// ```
/// use atp_syntax::AtIdentifier;
/// let id: AtIdentifier = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse()?;
/// assert!(id.as_did().is_some());
/// let id: AtIdentifier = "Alice.Test".parse()?;
/// assert_eq!(id.as_handle().map(|h| h.as_str()), Some("alice.test"));
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AtIdentifier {
    /// A DID.
    Did(Did),
    /// A handle (lower case).
    Handle(Handle),
}

impl AtIdentifier {
    /// Validates `input` as a DID (if it starts with `did:`) or a handle.
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_owned(input.to_owned())
    }

    pub(crate) fn parse_owned(input: String) -> Result<Self> {
        if input.starts_with("did:") {
            Did::parse_owned(input)
                .map(AtIdentifier::Did)
                .map_err(|e| Error::AtIdentifier {
                    reason: e.reason(),
                    input: e.input().to_owned(),
                })
        } else {
            Handle::parse_owned(input)
                .map(AtIdentifier::Handle)
                .map_err(|e| Error::AtIdentifier {
                    reason: e.reason(),
                    input: e.input().to_owned(),
                })
        }
    }

    /// Whether `input` is a valid DID or handle.
    pub fn is_valid(input: &str) -> bool {
        if input.starts_with("did:") {
            Did::is_valid(input)
        } else {
            Handle::is_valid(input)
        }
    }

    /// The identifier as a string (a handle in lower case).
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(did) => did.as_str(),
            AtIdentifier::Handle(handle) => handle.as_str(),
        }
    }

    /// The DID, if this is one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(did) => Some(did),
            AtIdentifier::Handle(_) => None,
        }
    }

    /// The handle, if this is one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Did(_) => None,
            AtIdentifier::Handle(handle) => Some(handle),
        }
    }
}

impl From<Did> for AtIdentifier {
    fn from(did: Did) -> Self {
        AtIdentifier::Did(did)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(handle: Handle) -> Self {
        AtIdentifier::Handle(handle)
    }
}

impl_string_traits!(AtIdentifier, "a DID or handle string");
