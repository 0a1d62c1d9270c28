//! The crate's error type.

use hyper::StatusCode;

/// Everything that can go wrong in this crate outside of a request handler
/// (handlers answer with [`XrpcError`](crate::server::XrpcError) instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A remote XRPC service answered with an error envelope (or a non-2xx
    /// status without one).
    #[error("XRPC error {status} {error}: {message}")]
    Xrpc {
        /// HTTP status of the answer.
        status: StatusCode,
        /// The `error` name of the envelope (or the status' standard name).
        error: String,
        /// The `message` of the envelope (or the status' standard text).
        message: String,
    },
    /// A URL or NSID could not be used to build a request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A response (or event-stream frame) was not what the protocol allows.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// An HTTP-level failure (connection, protocol).
    #[error("HTTP error: {0}")]
    Http(String),
    /// A request did not complete in time.
    #[error("timed out")]
    Timeout,
    /// A socket could not be bound or accepted.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A JSON body could not be encoded or decoded.
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    /// A DAG-CBOR value could not be encoded or decoded.
    #[error("DAG-CBOR error: {0}")]
    DagCbor(#[from] atp_crypto::Error),
    /// A WebSocket failure.
    #[error("WebSocket error: {0}")]
    WebSocket(String),
    /// A JWT could not be created or was refused.
    #[error("auth error: {0}")]
    Auth(#[from] crate::auth::AuthError),
    /// A lexicon document is invalid, or data does not match its lexicon.
    #[error("lexicon error: {0}")]
    Lexicon(#[from] crate::lexicon::LexiconError),
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(err: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(err.to_string())
    }
}
