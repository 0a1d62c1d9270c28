//! The one error type of the crate.

/// Everything that can go wrong in the PDS storage layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The repository layer failed (MST, commit, blocks).
    #[error("repository error: {0}")]
    Repo(#[from] atp_repo_mst::Error),
    /// A key or CID operation failed.
    #[error("crypto error: {0}")]
    Crypto(#[from] atp_crypto::Error),
    /// Building or submitting a `did:plc` operation failed.
    #[error("did:plc error: {0}")]
    Plc(#[from] atp_did_plc::Error),
    /// An identifier did not parse.
    #[error("syntax error: {0}")]
    Syntax(#[from] atp_syntax::Error),
    /// A schema migration could not be applied.
    #[error("migration error: {0}")]
    Migration(String),
    /// Stored data is not what this version expects.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A blocking task panicked or was cancelled, or a lock was poisoned.
    #[error("internal error: {0}")]
    Internal(String),
    /// An argument was not acceptable (empty password, bad handle domain...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The handle belongs to another account.
    #[error("handle already taken: {0}")]
    HandleTaken(String),
    /// The email address belongs to another account.
    #[error("email already taken")]
    EmailTaken,
    /// An account with this DID already exists.
    #[error("account already exists: {0}")]
    AccountExists(String),
    /// No account matched.
    #[error("account not found: {0}")]
    AccountNotFound(String),
    /// The password (or app password) did not match.
    #[error("invalid identifier or password")]
    InvalidPassword,
    /// An app password with this name already exists for the account.
    #[error("app password name already used: {0}")]
    AppPasswordExists(String),
    /// This service requires an invite code and none was given.
    #[error("an invite code is required")]
    InviteCodeRequired,
    /// The invite code does not exist, is disabled or is used up.
    #[error("invalid invite code")]
    InvalidInviteCode,
    /// The token (refresh or email) is unknown or does not match.
    #[error("invalid token")]
    InvalidToken,
    /// The token has expired.
    #[error("token expired")]
    ExpiredToken,
    /// The account is taken down (moderation) and may not log in.
    #[error("account taken down")]
    AccountTakendown,
    /// A key file already exists where a new key was to be written.
    #[error("key file already exists: {0}")]
    KeyExists(String),
    /// The repository head moved while a commit was being prepared.
    #[error("concurrent repository write: expected head {expected:?}, found {found:?}")]
    ConcurrentWrite {
        /// The head the commit was built on.
        expected: Option<String>,
        /// The head found in the store.
        found: Option<String>,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
