//! The protocol's error envelope, `{"error": "...", "message": "..."}`, and
//! the statuses that go with it.

use std::fmt;

use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;

/// The standard name (`error` field) and text of an XRPC status, as the
/// reference implementation spells them.
pub fn standard_name_and_text(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("InvalidRequest", "Invalid Request"),
        401 => ("AuthenticationRequired", "Authentication Required"),
        403 => ("Forbidden", "Forbidden"),
        404 => ("XRPCNotSupported", "XRPC Not Supported"),
        405 => ("MethodNotAllowed", "Method Not Allowed"),
        406 => ("NotAcceptable", "Not Acceptable"),
        408 => ("RequestTimeout", "Request Timeout"),
        413 => ("PayloadTooLarge", "Payload Too Large"),
        414 => ("URITooLong", "URI Too Long"),
        415 => ("UnsupportedMediaType", "Unsupported Media Type"),
        429 => ("RateLimitExceeded", "Rate Limit Exceeded"),
        501 => ("MethodNotImplemented", "Method Not Implemented"),
        502 => ("UpstreamFailure", "Upstream Failure"),
        503 => ("NotEnoughResources", "Not Enough Resources"),
        504 => ("UpstreamTimeout", "Upstream Timeout"),
        _ => ("InternalServerError", "Internal Server Error"),
    }
}

/// The error name and message of an XRPC error answer: those of the JSON
/// envelope `{"error": name, "message": message}` in `body` where it has
/// them, else the standard name and text of `status`. A body that is not
/// JSON (or is `None`, unreadable) gives the standard ones.
///
/// ```
/// use atp_xrpc::server::error_name_and_message;
/// use hyper::StatusCode;
/// let body = br#"{"error": "RecordNotFound", "message": "no such record"}"#;
/// assert_eq!(
///     error_name_and_message(StatusCode::BAD_REQUEST, Some(body)),
///     ("RecordNotFound".to_owned(), "no such record".to_owned())
/// );
/// assert_eq!(
///     error_name_and_message(StatusCode::BAD_GATEWAY, Some(b"<html>")),
///     ("UpstreamFailure".to_owned(), "Upstream Failure".to_owned())
/// );
/// ```
pub fn error_name_and_message(status: StatusCode, body: Option<&[u8]>) -> (String, String) {
    let (standard_name, standard_text) = standard_name_and_text(status);
    let envelope: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
    let field = |key: &str, standard: &str| {
        envelope
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(|v| v.as_str())
            .unwrap_or(standard)
            .to_owned()
    };
    (
        field("error", standard_name),
        field("message", standard_text),
    )
}

/// An error a handler (or the server itself) answers with.
///
/// It becomes a response with its status and the JSON body
/// `{"error": name, "message": message}`. For status 500 the message is
/// always the generic "Internal Server Error": internals never leak.
#[derive(Clone, Debug)]
pub struct XrpcError {
    status: StatusCode,
    name: Option<String>,
    message: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl XrpcError {
    /// An error with a status, the status' standard name and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        XrpcError {
            status,
            name: None,
            message: Some(message.into()),
            headers: Vec::new(),
        }
    }

    /// Replaces the `error` name with a handler-defined one (for example
    /// `RecordNotFound`, `ExpiredToken`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a response header (for example `WWW-Authenticate`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 `InvalidRequest`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 `AuthenticationRequired` (give a more precise name such as
    /// `AuthMissing` or `ExpiredToken` with [`with_name`](Self::with_name)).
    pub fn auth_required(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 401 `ExpiredToken`, as an AppView answers an expired token (a PDS
    /// answers its own expired session tokens with 400, see
    /// [`from_session_auth`](Self::from_session_auth)).
    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::auth_required(message).with_name("ExpiredToken")
    }

    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// 413 `PayloadTooLarge`.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 501 `MethodNotImplemented`, the answer for an unknown method.
    pub fn method_not_implemented() -> Self {
        XrpcError {
            status: StatusCode::NOT_IMPLEMENTED,
            name: None,
            message: None,
            headers: Vec::new(),
        }
    }

    /// 500 `InternalServerError`. The detail is logged, never sent.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!(detail = %detail, "internal server error");
        XrpcError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            name: None,
            message: None,
            headers: Vec::new(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `error` name sent in the envelope.
    pub fn name(&self) -> &str {
        match &self.name {
            Some(name) => name,
            None => standard_name_and_text(self.status).0,
        }
    }

    /// The `message` sent in the envelope (generic for 500s).
    pub fn message(&self) -> &str {
        let standard = standard_name_and_text(self.status).1;
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            return standard;
        }
        match &self.message {
            Some(message) if !message.is_empty() => message,
            _ => standard,
        }
    }

    /// Extra response headers.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The JSON envelope.
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.name(), "message": self.message() })
    }
}

impl fmt::Display for XrpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.name(),
            self.message()
        )
    }
}

impl std::error::Error for XrpcError {}
