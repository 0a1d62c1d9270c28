//! Signed repository commits: version 3, and reading version 2.
//!
//! A commit is the DAG-CBOR object
//! `{did, version: 3, data: <MST root>, rev: <TID>, prev: null, sig: <bytes>}`.
//! `prev` is always written (as `null`), as the reference implementation
//! does. The signature covers the DAG-CBOR encoding of the same object
//! without `sig`; the CID of the signed commit is the repository's head.
//!
//! [`Commit::from_block`] reads version 3 only; [`Commit::from_legacy_block`]
//! also reads version 2 commits of old repositories, whose `rev` may be
//! absent (then [`Commit::rev`] is empty and is not part of the signed
//! bytes).
//!
//! ```
//! use atp_crypto::{cid_for_dag_cbor, Algorithm, SigningKey};
//! use atp_repo_mst::commit::{Commit, UnsignedCommit};
//!
//! let key = SigningKey::generate(Algorithm::K256);
//! let data = cid_for_dag_cbor(&[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6]);
//! let commit = UnsignedCommit::new("did:plc:ewvi7nxzyoun6zhxrhs64oiz", data, "3jzfcijpj2z2a")?
//!     .sign(&key)?;
//! commit.verify(&key.public_key())?;
//!
//! let (cid, bytes) = commit.to_block()?;
//! let decoded = Commit::from_block(&bytes)?;
//! assert_eq!(decoded, commit);
//! # let _ = cid;
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

use atp_crypto::{cid_for_dag_cbor, dagcbor, Cid, PublicKey, SigningKey};
use atp_syntax::{Did, Tid};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Error;

/// The commit format version this crate writes and accepts.
pub const COMMIT_VERSION: u64 = 3;

/// The older commit format version that [`Commit::from_legacy_block`] also
/// reads.
pub const LEGACY_COMMIT_VERSION: u64 = 2;

/// Deserializes a field that must be present, even when it is `null`
/// (serde would otherwise read a missing `Option` field as `None`).
fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cid>, D::Error> {
    Option::<Cid>::deserialize(deserializer)
}

/// A commit before signing: what the signature covers.
///
/// Fields are declared in canonical DAG-CBOR order (by key length, then
/// bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsignedCommit {
    /// The repository's DID.
    pub did: String,
    /// The revision: a TID, increasing with every commit. Empty only for a
    /// version-2 commit without one (then it is not encoded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rev: String,
    /// CID of the MST root.
    pub data: Cid,
    /// The previous commit's CID; `null` in version 3 (always written).
    #[serde(deserialize_with = "required")]
    pub prev: Option<Cid>,
    /// [`COMMIT_VERSION`] (or [`LEGACY_COMMIT_VERSION`] when read with
    /// [`Commit::from_legacy_block`]).
    pub version: u64,
}

/// A signed commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The repository's DID.
    pub did: String,
    /// The revision: a TID, increasing with every commit. Empty only for a
    /// version-2 commit without one (then it is not encoded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rev: String,
    /// Signature over the DAG-CBOR of the commit without `sig`.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
    /// CID of the MST root.
    pub data: Cid,
    /// The previous commit's CID; `null` in version 3 (always written).
    #[serde(deserialize_with = "required")]
    pub prev: Option<Cid>,
    /// [`COMMIT_VERSION`] (or [`LEGACY_COMMIT_VERSION`] when read with
    /// [`Commit::from_legacy_block`]).
    pub version: u64,
}

impl UnsignedCommit {
    /// A version-3 commit of `data` for `did` at `rev`, with `prev: null`.
    /// Checks the DID and TID syntax.
    pub fn new(did: &str, data: Cid, rev: &str) -> Result<Self, Error> {
        Did::new(did)?;
        Tid::new(rev)?;
        Ok(UnsignedCommit {
            did: did.to_owned(),
            rev: rev.to_owned(),
            data,
            prev: None,
            version: COMMIT_VERSION,
        })
    }

    /// The bytes the signature covers: canonical DAG-CBOR of this object.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        Ok(dagcbor::to_vec(self)?)
    }

    /// Signs the commit with `key` (SHA-256, low-S compact signature).
    pub fn sign(self, key: &SigningKey) -> Result<Commit, Error> {
        let sig = key.sign(&self.to_bytes()?).to_vec();
        Ok(Commit {
            did: self.did,
            rev: self.rev,
            sig,
            data: self.data,
            prev: self.prev,
            version: self.version,
        })
    }
}

impl Commit {
    /// The commit without its signature.
    pub fn unsigned(&self) -> UnsignedCommit {
        UnsignedCommit {
            did: self.did.clone(),
            rev: self.rev.clone(),
            data: self.data,
            prev: self.prev,
            version: self.version,
        }
    }

    /// Verifies the signature against `key` (strict: low-S only).
    pub fn verify(&self, key: &PublicKey) -> Result<(), Error> {
        let bytes = self.unsigned().to_bytes()?;
        key.verify(&bytes, &self.sig)
            .map_err(Error::BadCommitSignature)
    }

    /// Verifies the signature against a `did:key`.
    pub fn verify_did_key(&self, did_key: &str) -> Result<(), Error> {
        self.verify(&PublicKey::from_did_key(did_key)?)
    }

    /// Encodes the signed commit; returns its CID and bytes.
    pub fn to_block(&self) -> Result<(Cid, Vec<u8>), Error> {
        let bytes = dagcbor::to_vec(self)?;
        Ok((cid_for_dag_cbor(&bytes), bytes))
    }

    /// Decodes a signed commit block (strict DAG-CBOR, exactly the
    /// version-3 fields with `prev` present, `version` equal to 3, a valid
    /// DID and a TID rev).
    pub fn from_block(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(bytes, false)
    }

    /// Like [`Commit::from_block`], but also accepts version-2 commits
    /// (old repositories), whose `rev` may be absent.
    pub fn from_legacy_block(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(bytes, true)
    }

    fn decode(bytes: &[u8], accept_legacy: bool) -> Result<Self, Error> {
        let commit: Commit = dagcbor::from_slice(bytes)
            .map_err(|e| Error::InvalidCommit(format!("not a commit object: {e}")))?;
        let legacy = match commit.version {
            COMMIT_VERSION => false,
            LEGACY_COMMIT_VERSION if accept_legacy => true,
            v => {
                return Err(Error::InvalidCommit(format!(
                    "unsupported commit version {v} (expected {COMMIT_VERSION})"
                )))
            }
        };
        if !Did::is_valid(&commit.did) {
            return Err(Error::InvalidCommit(format!(
                "`did` {:?} is not a DID",
                commit.did
            )));
        }
        if !(Tid::is_valid(&commit.rev) || legacy && commit.rev.is_empty()) {
            return Err(Error::InvalidCommit(format!(
                "`rev` {:?} is missing or not a TID",
                commit.rev
            )));
        }
        Ok(commit)
    }

    /// Checks that this commit's rev comes after `previous` (revs are TIDs,
    /// which sort as strings).
    pub fn ensure_rev_after(&self, previous: &str) -> Result<(), Error> {
        ensure_rev_after(&self.rev, previous)
    }
}

/// Checks that `rev` is greater than `previous`, as revs must only go
/// forward.
pub fn ensure_rev_after(rev: &str, previous: &str) -> Result<(), Error> {
    if rev > previous {
        Ok(())
    } else {
        Err(Error::RevNotIncreasing {
            rev: rev.to_owned(),
            previous: previous.to_owned(),
        })
    }
}
