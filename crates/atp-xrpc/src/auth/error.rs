//! Why a token was refused or could not be made.

/// An error from creating or verifying a JWT.
///
/// [`AuthError::session_error_name`] and [`AuthError::service_error_name`]
/// give the XRPC error names the reference services answer with.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Not three base64url segments, or a header/claims segment that is not
    /// the JSON object expected.
    #[error("poorly formatted jwt: {0}")]
    Malformed(String),
    /// The header names an algorithm this verifier never accepts (`none`,
    /// `RS256`, ...).
    #[error("unsupported jwt algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The header names an algorithm other than the one the key calls for
    /// (algorithm confusion).
    #[error("jwt algorithm {found:?} does not match the expected {expected:?}")]
    AlgorithmMismatch {
        /// The algorithm the key or the verifier requires.
        expected: String,
        /// The algorithm the header names.
        found: String,
    },
    /// The header `typ` is not what this kind of token carries.
    #[error("invalid jwt type {0:?}")]
    BadType(Option<String>),
    /// The signature does not verify.
    #[error("jwt signature does not match")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token has expired")]
    Expired,
    /// `aud` is not this service.
    #[error("jwt audience does not match service did")]
    BadAudience,
    /// The `lxm` claim is missing or names another method.
    #[error("{}", match found {
        Some(_) => format!("bad jwt lexicon method (\"lxm\"). must match: {expected}"),
        None => format!("missing jwt lexicon method (\"lxm\"). must match: {expected}"),
    })]
    BadLexiconMethod {
        /// The method being called.
        expected: String,
        /// The method the token names, if any.
        found: Option<String>,
    },
    /// `iss` (or `sub` of a session token) is not a valid DID.
    #[error("jwt issuer is not a valid did: {0:?}")]
    BadIssuer(String),
    /// The scope is not allowed here (for instance a refresh token used as
    /// an access token).
    #[error("bad token scope {0:?}")]
    BadScope(String),
    /// A refresh token without `jti`.
    #[error("refresh token has no jti")]
    MissingTokenId,
    /// The issuer's signing key could not be found.
    #[error("could not resolve the jwt issuer's signing key: {0}")]
    KeyResolution(String),
    /// The signing secret is empty.
    #[error("the jwt secret must not be empty")]
    EmptySecret,
}

impl AuthError {
    /// The XRPC error name a PDS answers with when a session (access or
    /// refresh) token is refused: `ExpiredToken` or `InvalidToken`.
    pub fn session_error_name(&self) -> &'static str {
        match self {
            AuthError::Expired => "ExpiredToken",
            _ => "InvalidToken",
        }
    }

    /// The XRPC error name the reference service-auth verifier uses.
    pub fn service_error_name(&self) -> &'static str {
        match self {
            AuthError::Malformed(_) | AuthError::EmptySecret => "BadJwt",
            AuthError::BadType(_) => "BadJwtType",
            AuthError::Expired => "JwtExpired",
            AuthError::BadAudience => "BadJwtAudience",
            AuthError::BadLexiconMethod { .. } => "BadJwtLexiconMethod",
            AuthError::BadIssuer(_) => "BadJwtIss",
            AuthError::UnsupportedAlgorithm(_)
            | AuthError::AlgorithmMismatch { .. }
            | AuthError::BadSignature
            | AuthError::KeyResolution(_) => "BadJwtSignature",
            AuthError::BadScope(_) | AuthError::MissingTokenId => "InvalidToken",
        }
    }
}
