//! The error type of this crate.

use atp_crypto::Cid;

/// Everything that can go wrong in `atp-repo-mst`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encoding, decoding, key or CID failure from `atp-crypto`.
    #[error(transparent)]
    Crypto(#[from] atp_crypto::Error),
    /// An I/O error while reading or writing a CAR file.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A CAR file is malformed: header, varints, CIDs or truncation.
    #[error("invalid CAR: {0}")]
    InvalidCar(String),
    /// A CAR file exceeds one of the configured limits.
    #[error("CAR limit exceeded: {0}")]
    CarLimitExceeded(String),
    /// A block's bytes do not hash to its CID.
    #[error("block bytes do not match their CID {0}")]
    BlockHashMismatch(Cid),
    /// A string is not a valid MST key (`<collection>/<rkey>`, at most 1024
    /// characters of `[a-zA-Z0-9_~\-:.]`, exactly one `/`).
    #[error("invalid MST key: {0:?}")]
    InvalidMstKey(String),
    /// A stored MST node is malformed: bad shape, unsorted keys, a key on
    /// the wrong layer, a subtree below layer 0, or a tree deeper than
    /// possible.
    #[error("invalid MST node {cid}: {reason}")]
    InvalidMstNode {
        /// CID of the offending node.
        cid: Cid,
        /// What is wrong with it.
        reason: String,
    },
    /// A block needed to walk the tree or read a record is not in the store.
    #[error("missing block {0}")]
    MissingBlock(Cid),
    /// The block store failed (I/O, database, poisoned lock, ...).
    #[error("block store: {0}")]
    BlockStore(String),
    /// A commit object is malformed (wrong version, bad DID or rev, ...).
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
    /// A commit's signature does not verify against the given key.
    #[error("commit signature does not verify: {0}")]
    BadCommitSignature(#[source] atp_crypto::Error),
    /// A new commit's rev is not greater than the previous commit's rev.
    #[error("commit rev {rev} is not after the previous rev {previous}")]
    RevNotIncreasing {
        /// The rejected rev.
        rev: String,
        /// The rev of the previous commit.
        previous: String,
    },
    /// A record was created at a key that already holds one.
    #[error("a record already exists at {0}")]
    RecordExists(String),
    /// A record was updated or deleted at a key that holds none.
    #[error("no record at {0}")]
    RecordNotFound(String),
    /// A collection NSID, record key or DID did not parse.
    #[error(transparent)]
    Syntax(#[from] atp_syntax::Error),
    /// The shape of an MST breaks the rules in a way not tied to one node
    /// (a root that should have been trimmed, a tree deeper than possible,
    /// a key that appears twice), or a node read without its CID
    /// ([`NodeLinks`](crate::mst::NodeLinks)) lacks a field.
    #[error("invalid MST: {0}")]
    InvalidMst(String),
    /// A repository, diff, proof or commit event failed verification
    /// (missing records, ops that do not match the tree, a wrong root).
    #[error("verification failed: {0}")]
    Verification(String),
}
