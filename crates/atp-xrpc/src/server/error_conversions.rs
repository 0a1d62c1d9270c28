//! How auth and lexicon errors become XRPC error answers, with the names,
//! statuses and messages of the reference implementation.

use super::XrpcError;
use crate::auth::AuthError;
use crate::lexicon::LexiconError;

impl XrpcError {
    /// The answer of a PDS that refuses a session (access or refresh) token:
    /// 400 `ExpiredToken` ("Token has expired") or 400 `InvalidToken`, as
    /// the reference PDS's session verifier answers. (`@atproto/api`'s agent
    /// refreshes its session on a 400 `ExpiredToken` or on any 401.)
    pub fn from_session_auth(err: &AuthError) -> Self {
        let message = match err {
            AuthError::Expired => "Token has expired",
            AuthError::BadScope(_) => "Bad token scope",
            _ => "Token could not be verified",
        };
        XrpcError::invalid_request(message).with_name(err.session_error_name())
    }

    /// The answer of a service that refuses an inter-service JWT: 401 with
    /// the reference verifier's name (`BadJwt`, `BadJwtType`, `JwtExpired`,
    /// `BadJwtAudience`, `BadJwtLexiconMethod`, `BadJwtIss`,
    /// `BadJwtSignature`) and message.
    pub fn from_service_auth(err: &AuthError) -> Self {
        let message = match err {
            AuthError::Malformed(_) => "poorly formatted jwt".to_owned(),
            AuthError::BadType(typ) => format!(
                "Invalid jwt type \"{}\"",
                typ.as_deref().unwrap_or("undefined")
            ),
            AuthError::Expired => "jwt expired".to_owned(),
            AuthError::BadAudience => "jwt audience does not match service did".to_owned(),
            AuthError::BadIssuer(_) => "jwt iss is not a valid did".to_owned(),
            AuthError::BadSignature => "jwt signature does not match jwt issuer".to_owned(),
            AuthError::UnsupportedAlgorithm(_)
            | AuthError::AlgorithmMismatch { .. }
            | AuthError::KeyResolution(_) => "could not verify jwt signature".to_owned(),
            // Already the reference's wording.
            AuthError::BadLexiconMethod { .. } => err.to_string(),
            AuthError::BadScope(_) | AuthError::MissingTokenId | AuthError::EmptySecret => {
                err.to_string()
            }
        };
        XrpcError::auth_required(message).with_name(err.service_error_name())
    }
}

/// A validation failure is 400 `InvalidRequest` with the path-qualified
/// message (`Input/text must be a string`); so is a method or definition
/// the catalog does not know (as the reference answers). A broken lexicon
/// document is the server's fault: 500.
impl From<LexiconError> for XrpcError {
    fn from(err: LexiconError) -> Self {
        match err {
            LexiconError::Validation(message) => XrpcError::invalid_request(message),
            LexiconError::DefNotFound(_) | LexiconError::WrongDefType { .. } => {
                XrpcError::invalid_request(err.to_string())
            }
            LexiconError::InvalidLexicon { .. } | LexiconError::Duplicate(_) => {
                XrpcError::internal(err)
            }
        }
    }
}
