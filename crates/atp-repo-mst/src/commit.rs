//! Signed repository commits, version 3.
//!
//! A commit is the DAG-CBOR object
//! `{did, version: 3, data: <MST root>, rev: <TID>, prev: null, sig: <bytes>}`.
//! `prev` is always written (as `null`), as the reference implementation
//! does. The signature covers the DAG-CBOR encoding of the same object
//! without `sig`; the CID of the signed commit is the repository's head.
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
use serde::{Deserialize, Serialize};

use crate::Error;

/// The commit format version this crate writes and accepts.
pub const COMMIT_VERSION: u64 = 3;

/// A commit before signing: what the signature covers.
///
/// Fields are declared in canonical DAG-CBOR order (by key length, then
/// bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsignedCommit {
    /// The repository's DID.
    pub did: String,
    /// The revision: a TID, increasing with every commit.
    pub rev: String,
    /// CID of the MST root.
    pub data: Cid,
    /// The previous commit's CID; `null` in version 3 (always written).
    pub prev: Option<Cid>,
    /// Always [`COMMIT_VERSION`].
    pub version: u64,
}

/// A signed commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The repository's DID.
    pub did: String,
    /// The revision: a TID, increasing with every commit.
    pub rev: String,
    /// Signature over the DAG-CBOR of the commit without `sig`.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
    /// CID of the MST root.
    pub data: Cid,
    /// The previous commit's CID; `null` in version 3 (always written).
    pub prev: Option<Cid>,
    /// Always [`COMMIT_VERSION`].
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
    /// version-3 fields, `version` equal to 3).
    pub fn from_block(bytes: &[u8]) -> Result<Self, Error> {
        let commit: Commit = dagcbor::from_slice(bytes)?;
        if commit.version != COMMIT_VERSION {
            return Err(Error::InvalidCommit(format!(
                "version {} (expected {COMMIT_VERSION})",
                commit.version
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
