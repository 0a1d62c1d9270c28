//! Auth tokens: session JWTs (HS256 access and refresh tokens a PDS issues)
//! and inter-service JWTs (signed with an account's atproto key).
//!
//! Both are JWS compact tokens built directly on `atp-crypto` keys and
//! HMAC-SHA256; every verifier names the one algorithm it accepts, so
//! `alg: none` and algorithm confusion (an HS256 token where a DID key is
//! expected, or the reverse) are refused.
//!
//! ```
//! use atp_xrpc::auth::{AuthError, AuthScope, SessionTokenAuthority};
//! use atp_syntax::Did;
//!
//! let authority = SessionTokenAuthority::new("server secret", "did:web:pds.example.com")?;
//! let did: Did = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap();
//! let session = authority.create_session(&did, AuthScope::Access)?;
//!
//! let claims = authority.verify_access(&session.access_jwt, &AuthScope::ACCESS_SCOPES)?;
//! assert_eq!(claims.sub, did);
//! // A refresh token is not an access token, and the reverse.
//! assert!(authority.verify_access(&session.refresh_jwt, &AuthScope::ACCESS_SCOPES).is_err());
//! assert!(authority.verify_refresh(&session.access_jwt).is_err());
//! # Ok::<(), AuthError>(())
//! ```

mod error;
mod jws;
mod service;
mod session;

pub use error::AuthError;
pub use jws::JwtHeader;
pub use service::{
    bearer, create_service_jwt, decode_claims_unverified, is_did_or_service, ServiceClaims,
    ServiceJwtParams, ServiceJwtVerifier, SigningKeyResolver, DEFAULT_SERVICE_JWT_LIFETIME_SECS,
    FORBIDDEN_SERVICE_JWT_TYPES,
};
pub use session::{
    AccessClaims, AuthScope, RefreshClaims, RefreshRotation, RefreshTokenId, SessionTokenAuthority,
    SessionTokens, StoredRefreshToken, ACCESS_TOKEN_TYPE, DEFAULT_ACCESS_LIFETIME,
    DEFAULT_REFRESH_LIFETIME, REFRESH_GRACE_PERIOD, REFRESH_TOKEN_TYPE, SESSION_JWT_ALG,
};
