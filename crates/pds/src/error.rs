//! The binary's error type.

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is missing or malformed.
    #[error("configuration error: {0}")]
    Config(String),
    /// A file operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The storage layer failed.
    #[error(transparent)]
    Pds(#[from] atp_pds::Error),
    /// The PLC directory (embedded or client) failed.
    #[error("did:plc error: {0}")]
    Plc(#[from] atp_did_plc::Error),
    /// The XRPC server failed.
    #[error("xrpc error: {0}")]
    Xrpc(#[from] atp_xrpc::Error),
    /// The JWT secret was refused.
    #[error("auth error: {0}")]
    Auth(#[from] atp_xrpc::auth::AuthError),
}
