//! The binary's error type.

/// Why a command failed: the server could not start or stopped, or an
/// operator command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or malformed.
    #[error("configuration error: {0}")]
    Config(String),
    /// Settings that are missing or malformed, one message per variable.
    #[error("invalid configuration:{}", .0.iter().map(|e| format!("\n  - {e}")).collect::<String>())]
    Settings(Vec<String>),
    /// A file operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A file operation on a named file failed.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The storage layer failed.
    #[error(transparent)]
    Pds(#[from] atp_pds::Error),
    /// The PLC directory (embedded or client) failed.
    #[error("did:plc error: {0}")]
    Plc(#[from] atp_did_plc::Error),
    /// The XRPC server or a call to a server failed.
    #[error("{0}")]
    Xrpc(#[from] atp_xrpc::Error),
    /// The JWT secret was refused.
    #[error("auth error: {0}")]
    Auth(#[from] atp_xrpc::auth::AuthError),
    /// A key was refused.
    #[error("key error: {0}")]
    Crypto(#[from] atp_crypto::Error),
    /// A CSV file could not be read or written.
    #[error("CSV error: {0}")]
    Csv(#[from] csv::Error),
    /// A server answered something an operator command did not expect.
    #[error("unexpected answer from the server: {0}")]
    Answer(String),
    /// An operator command was given something it cannot use.
    #[error("{0}")]
    Usage(String),
}
