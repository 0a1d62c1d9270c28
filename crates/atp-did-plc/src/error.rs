//! The error type of this crate.
//!
//! Where the reference directory's message is what clients see (it answers
//! `400 {"message": ...}`), the [`Display`](std::fmt::Display) text here
//! carries the same meaning and, for the constraint checks, the same words,
//! so a client can tell which rule an operation broke.

/// Everything that can go wrong building, parsing or validating `did:plc`
/// operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operation does not have the shape of any operation type (a field
    /// missing, of the wrong type, unknown, or `type` not recognised).
    #[error("Not a valid operation: {0}")]
    InvalidOperation(String),

    /// The DAG-CBOR encoding of the operation is larger than the directory
    /// accepts.
    #[error("Operation too large ({max} bytes maximum in cbor encoding)")]
    OperationTooLarge {
        /// The limit in bytes.
        max: usize,
        /// The size of the operation in bytes.
        size: usize,
    },

    /// More `alsoKnownAs` entries than allowed.
    #[error("Too many alsoKnownAs entries (max {max})")]
    TooManyAlsoKnownAs {
        /// The limit.
        max: usize,
    },
    /// One `alsoKnownAs` entry is too long.
    #[error("alsoKnownAs entry too long (max {max}): {entry}")]
    AlsoKnownAsTooLong {
        /// The limit in characters.
        max: usize,
        /// The offending entry.
        entry: String,
    },
    /// The same `alsoKnownAs` entry appears twice.
    #[error("duplicate alsoKnownAs entry: {0}")]
    DuplicateAlsoKnownAs(String),

    /// More rotation keys than the directory's first check allows.
    #[error("Too many rotationKey entries (max {max})")]
    TooManyRotationKeyEntries {
        /// The limit.
        max: usize,
    },
    /// A rotation key is not a `did:key` of a supported curve.
    #[error("Invalid rotationKey: {0}")]
    InvalidRotationKey(String),

    /// More services than allowed.
    #[error("Too many service entries (max {max})")]
    TooManyServices {
        /// The limit.
        max: usize,
    },
    /// A service id is too long.
    #[error("Service id too long (max {max}): {id}")]
    ServiceIdTooLong {
        /// The limit in characters.
        max: usize,
        /// The offending id.
        id: String,
    },
    /// A service type is too long.
    #[error("Service type too long (max {max})")]
    ServiceTypeTooLong {
        /// The limit in characters.
        max: usize,
    },
    /// A service endpoint is too long.
    #[error("Service endpoint too long (max {max})")]
    ServiceEndpointTooLong {
        /// The limit in characters.
        max: usize,
    },

    /// More verification methods than allowed.
    #[error("Too many Verification Method entries (max {max})")]
    TooManyVerificationMethods {
        /// The limit.
        max: usize,
    },
    /// A verification method id is too long.
    #[error("Verification Method id too long (max {max}): {id}")]
    VerificationMethodIdTooLong {
        /// The limit in characters.
        max: usize,
        /// The offending id.
        id: String,
    },
    /// A verification method key is too long.
    #[error("Verification Method key too long (max {max}): {key}")]
    VerificationMethodKeyTooLong {
        /// The limit in characters.
        max: usize,
        /// The offending key.
        key: String,
    },
    /// A verification method key is not a syntactically valid `did:key`.
    #[error("Invalid verificationMethod key: {0}")]
    InvalidVerificationMethodKey(String),

    /// A key of the operation is not a `did:key` this method supports.
    #[error("Unsupported key type {key}: {reason}")]
    UnsupportedKey {
        /// The key as written in the operation.
        key: String,
        /// Why it was not accepted.
        reason: String,
    },

    /// The operation breaks a rule of the method (for example no rotation
    /// key, too many rotation keys, a genesis operation with a `prev`).
    #[error("Improperly formatted operation, {0}")]
    ImproperOperation(String),

    /// The operation does not follow on from the log: its `prev` is not the
    /// CID of an operation in the log, it follows a tombstone, or a genesis
    /// operation is not first.
    #[error("Operations not correctly ordered")]
    Misordered,

    /// A recovery (a fork that nullifies later operations) came more than
    /// 72 hours after the first operation it would nullify.
    #[error(
        "Recovery operation occured outside of the allowed 72 hr recovery window. \
         Time lapsed: {elapsed_ms}"
    )]
    LateRecovery {
        /// Milliseconds between the first nullified operation and the
        /// recovery operation.
        elapsed_ms: i64,
    },

    /// The DID is not derived from the hash of this genesis operation.
    #[error("Hash of genesis operation does not match DID identifier: {expected}")]
    GenesisHash {
        /// The DID the genesis operation derives (full-length identifier).
        expected: String,
    },

    /// No allowed rotation key verifies the operation's signature.
    #[error("Invalid signature on op: {0}")]
    InvalidSignature(String),

    /// The DID string itself is malformed.
    #[error("Improperly formatted did: {0}")]
    ImproperlyFormattedDid(String),

    /// Too many operations for one DID in a time window.
    #[error("Too many operations within last {window} (max {max})")]
    RateLimited {
        /// `hour`, `day` or `week`.
        window: &'static str,
        /// The limit.
        max: usize,
    },

    /// A builder was given a handle that cannot go in `alsoKnownAs`.
    #[error("invalid handle {handle:?}: {reason}")]
    InvalidHandle {
        /// The handle as given.
        handle: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A builder was given a PDS endpoint that is not an http(s) URL.
    #[error("invalid PDS endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A builder was asked to sign with a key that the directory would not
    /// accept for this operation (not one of the rotation keys in force).
    #[error("the signing key {0} is not one of the rotation keys in force for this operation")]
    SignerNotAuthorized(String),
    /// A builder or log operation needs a non-empty log.
    #[error("the operation log is empty")]
    EmptyLog,

    /// An operation is not valid JSON.
    #[error("operation is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),

    /// Encoding, hashing or key handling failed in `atp-crypto`.
    #[error(transparent)]
    Crypto(#[from] atp_crypto::Error),

    /// A PLC directory refused a request: its HTTP status and its own
    /// explanation (the `message` of its JSON error body, else the body).
    #[error("the PLC directory answered {status}: {message}")]
    Directory {
        /// HTTP status code of the answer.
        status: u16,
        /// The directory's explanation.
        message: String,
    },
    /// A directory could not be reached or its answer could not be read.
    #[error("PLC directory request failed: {0}")]
    Http(String),
    /// A directory URL is not an absolute http(s) URL.
    #[error("invalid PLC directory URL: {0}")]
    InvalidUrl(String),
    /// The directory server's database failed.
    #[error("PLC directory storage: {0}")]
    Storage(String),
    /// The directory already holds this exact operation for this DID.
    #[error("operation {cid} is already in the log of {did}")]
    DuplicateOperation {
        /// The DID.
        did: String,
        /// CID of the operation.
        cid: String,
    },
    /// The directory server could not start or stop (binding the port, ...).
    #[error("PLC directory server: {0}")]
    Server(String),
}
