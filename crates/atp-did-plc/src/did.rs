//! Deriving a `did:plc` from its genesis operation, and checking the syntax
//! of `did:plc` strings.
//!
//! The identifier is the first 24 characters of the lower-case base32
//! (RFC 4648 alphabet, no padding) of the SHA-256 of the DAG-CBOR of the
//! *signed* genesis operation.

use crate::operation::Operation;
use crate::Error;

/// The prefix of every `did:plc`.
pub const DID_PLC_PREFIX: &str = "did:plc:";
/// Number of identifier characters after `did:plc:`.
pub const IDENTIFIER_LEN: usize = 24;

/// The full-length base32 identifier (52 characters) of a signed genesis
/// operation, as `did:plc:<52 chars>`. The DID is a prefix of this.
pub fn full_did_for_genesis(genesis: &Operation) -> Result<String, Error> {
    let hash = atp_crypto::sha256(&genesis.to_cbor()?);
    let encoded = base32::encode(base32::Alphabet::Rfc4648Lower { padding: false }, &hash);
    Ok(format!("{DID_PLC_PREFIX}{encoded}"))
}

/// The DID of a signed genesis operation: `did:plc:` + 24 characters.
///
/// This does not check that the operation is a valid genesis operation;
/// [`crate::validate::assure_valid_creation_op`] does.
pub fn did_for_genesis(genesis: &Operation) -> Result<String, Error> {
    let mut full = full_did_for_genesis(genesis)?;
    full.truncate(DID_PLC_PREFIX.len() + IDENTIFIER_LEN);
    Ok(full)
}

/// Checks that `did` is a well-formed `did:plc`: the prefix, then exactly
/// 24 characters of the lower-case base32 alphabet (`a-z`, `2-7`).
///
/// The directory itself only asks for at least 24 characters that prefix
/// the hash (see [`crate::validate::assure_valid_creation_op`]); this is the
/// stricter syntax every DID this crate makes has.
pub fn check_did_plc(did: &str) -> Result<(), Error> {
    let Some(id) = did.strip_prefix(DID_PLC_PREFIX) else {
        return Err(Error::ImproperlyFormattedDid(format!(
            "{did:?} does not start with {DID_PLC_PREFIX:?}"
        )));
    };
    if id.len() != IDENTIFIER_LEN {
        return Err(Error::ImproperlyFormattedDid(format!(
            "the identifier must be {IDENTIFIER_LEN} characters, {did:?} has {}",
            id.chars().count()
        )));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || ('2'..='7').contains(c)))
    {
        let hint = if c.is_ascii_uppercase() {
            " (did:plc identifiers are lower case)"
        } else {
            ""
        };
        return Err(Error::ImproperlyFormattedDid(format!(
            "character {c:?} is not in the base32 alphabet a-z 2-7{hint}"
        )));
    }
    Ok(())
}
