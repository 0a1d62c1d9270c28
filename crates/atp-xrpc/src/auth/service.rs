//! Inter-service auth: short-lived JWTs an account's PDS signs with the
//! account's atproto signing key (`ES256K` or `ES256`) so that another
//! service can trust a request made on the account's behalf.
//!
//! The signature is the protocol's 64-byte compact `r || s` (low-S when we
//! sign). Verification follows the reference verifier: the header `typ`
//! must not be one of the session or DPoP types, `exp` must not be past,
//! `aud` and `lxm` must match when asked for, `iss` must be a DID
//! (optionally `did#service_id`), and `alg` must match the issuer's key
//! type. When the signature fails with the cached key, the resolver is
//! asked once more for a fresh key (the account may have rotated it).

use std::future::Future;

use base64::Engine;
use serde::{Deserialize, Serialize};

use atp_crypto::{Algorithm, PublicKey, SigningKey, VerifyMode};
use atp_syntax::Did;

use super::jws::{self, CompactJws, JwtHeader};
use super::AuthError;

/// Default lifetime of a service token: 60 seconds.
pub const DEFAULT_SERVICE_JWT_LIFETIME_SECS: i64 = 60;

/// Header `typ` values a service token must not carry.
pub const FORBIDDEN_SERVICE_JWT_TYPES: [&str; 3] = ["at+jwt", "refresh+jwt", "dpop+jwt"];

/// The claims of a service token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// Issued at (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The issuing account: a DID, or `did#service_id`.
    pub iss: String,
    /// The DID of the service the token is for.
    pub aud: String,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The lexicon method (NSID) the token may call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxm: Option<String>,
    /// A random nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl ServiceClaims {
    /// The DID part of `iss` (before any `#service_id`).
    pub fn issuer_did(&self) -> &str {
        self.iss.split('#').next().unwrap_or(&self.iss)
    }
}

/// What to put in a new service token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceJwtParams {
    /// The issuer: the account DID (or `did#service_id`).
    pub iss: String,
    /// The audience: the DID of the service called.
    pub aud: String,
    /// The lexicon method the token is restricted to.
    pub lxm: Option<String>,
    /// Issued at; now when `None`.
    pub iat: Option<i64>,
    /// Expiry; `iat` + 60 seconds when `None`.
    pub exp: Option<i64>,
}

impl ServiceJwtParams {
    /// Parameters for `iss` calling `aud`, optionally only method `lxm`.
    pub fn new(iss: impl Into<String>, aud: impl Into<String>, lxm: Option<&str>) -> Self {
        ServiceJwtParams {
            iss: iss.into(),
            aud: aud.into(),
            lxm: lxm.map(str::to_owned),
            iat: None,
            exp: None,
        }
    }
}

/// Signs a service token with `key`: header `{"typ":"JWT","alg":...}` and
/// claims `iat, iss, aud, exp, lxm, jti` (a random 128-bit hex nonce).
pub fn create_service_jwt(
    key: &SigningKey,
    params: &ServiceJwtParams,
) -> Result<String, AuthError> {
    if !is_did_or_service(&params.iss) {
        return Err(AuthError::BadIssuer(params.iss.clone()));
    }
    let iat = params.iat.unwrap_or_else(jws::unix_now);
    let claims = ServiceClaims {
        iat: Some(iat),
        iss: params.iss.clone(),
        aud: params.aud.clone(),
        exp: params
            .exp
            .unwrap_or(iat + DEFAULT_SERVICE_JWT_LIFETIME_SECS),
        lxm: params.lxm.clone(),
        jti: Some(hex_string(&jws::random_bytes::<16>())),
    };
    let header = JwtHeader {
        typ: Some("JWT".to_owned()),
        alg: key.algorithm().jwt_alg().to_owned(),
    };
    let input = jws::signing_input(&header, &claims)?;
    let sig = key.sign(input.as_bytes());
    Ok(jws::attach_signature(input, &sig))
}

/// `Authorization: Bearer <jwt>` header value for a service token.
pub fn bearer(jwt: &str) -> String {
    format!("Bearer {jwt}")
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds the atproto signing key of a token's issuer.
///
/// `iss` is the token's `iss` claim as written (a DID, or
/// `did#service_id`). `force_refresh` is `true` on the second call, after
/// the signature failed with the first key: bypass caches then.
///
/// Closures `Fn(String, bool) -> impl Future<Output = Result<PublicKey,
/// AuthError>>` implement it.
pub trait SigningKeyResolver {
    /// The current signing key of `iss`.
    fn resolve_signing_key(
        &self,
        iss: &str,
        force_refresh: bool,
    ) -> impl Future<Output = Result<PublicKey, AuthError>> + Send;
}

impl<F, Fut> SigningKeyResolver for F
where
    F: Fn(String, bool) -> Fut,
    Fut: Future<Output = Result<PublicKey, AuthError>> + Send,
{
    fn resolve_signing_key(
        &self,
        iss: &str,
        force_refresh: bool,
    ) -> impl Future<Output = Result<PublicKey, AuthError>> + Send {
        self(iss.to_owned(), force_refresh)
    }
}

/// How to check a service token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceJwtVerifier {
    /// This service's DID: `aud` must equal it. `None` skips the check.
    pub own_did: Option<String>,
    /// The method being called: `lxm` must equal it. `None` skips the check.
    pub lxm: Option<String>,
    /// Signature strictness. The reference verifier accepts high-S (and
    /// DER) signatures for service tokens, so the default is
    /// [`VerifyMode::Lenient`]; use [`VerifyMode::Strict`] to demand low-S.
    pub signature_mode: VerifyMode,
}

impl ServiceJwtVerifier {
    /// A verifier for service `own_did` handling method `lxm`.
    pub fn new(own_did: Option<&str>, lxm: Option<&str>) -> Self {
        ServiceJwtVerifier {
            own_did: own_did.map(str::to_owned),
            lxm: lxm.map(str::to_owned),
            signature_mode: VerifyMode::Lenient,
        }
    }

    /// The same verifier with another signature strictness.
    pub fn with_signature_mode(mut self, mode: VerifyMode) -> Self {
        self.signature_mode = mode;
        self
    }

    /// Verifies `token` now.
    pub async fn verify<R: SigningKeyResolver>(
        &self,
        token: &str,
        resolver: &R,
    ) -> Result<ServiceClaims, AuthError> {
        self.verify_at(token, resolver, jws::unix_now()).await
    }

    /// Verifies `token` as of time `now` (seconds since the epoch).
    pub async fn verify_at<R: SigningKeyResolver>(
        &self,
        token: &str,
        resolver: &R,
        now: i64,
    ) -> Result<ServiceClaims, AuthError> {
        let jws = CompactJws::parse(token)?;
        if let Some(typ) = jws.header.typ.as_deref() {
            if FORBIDDEN_SERVICE_JWT_TYPES.contains(&typ) {
                return Err(AuthError::BadType(Some(typ.to_owned())));
            }
        }
        let alg = Algorithm::from_jwt_alg(&jws.header.alg)
            .map_err(|_| AuthError::UnsupportedAlgorithm(jws.header.alg.clone()))?;
        let claims: ServiceClaims = jws.claims_as()?;
        if now > claims.exp {
            return Err(AuthError::Expired);
        }
        if let Some(own) = &self.own_did {
            if &claims.aud != own {
                return Err(AuthError::BadAudience);
            }
        }
        if let Some(lxm) = &self.lxm {
            if claims.lxm.as_deref() != Some(lxm.as_str()) {
                return Err(AuthError::BadLexiconMethod {
                    expected: lxm.clone(),
                    found: claims.lxm.clone(),
                });
            }
        }
        if !is_did_or_service(&claims.iss) {
            return Err(AuthError::BadIssuer(claims.iss.clone()));
        }
        let key = resolver.resolve_signing_key(&claims.iss, false).await?;
        let first = self.check_signature(&jws, alg, &key);
        if first.is_ok() {
            return Ok(claims);
        }
        let fresh = resolver.resolve_signing_key(&claims.iss, true).await?;
        if fresh == key {
            return first.map(|()| claims);
        }
        self.check_signature(&jws, alg, &fresh).map(|()| claims)
    }

    fn check_signature(
        &self,
        jws: &CompactJws<'_>,
        alg: Algorithm,
        key: &PublicKey,
    ) -> Result<(), AuthError> {
        if key.algorithm() != alg {
            return Err(AuthError::AlgorithmMismatch {
                expected: key.algorithm().jwt_alg().to_owned(),
                found: alg.jwt_alg().to_owned(),
            });
        }
        key.verify_with(
            jws.signing_input.as_bytes(),
            &jws.signature,
            self.signature_mode,
        )
        .map_err(|_| AuthError::BadSignature)
    }
}

/// A DID, or `did#fragment` with a non-empty fragment and a single `#`.
pub fn is_did_or_service(iss: &str) -> bool {
    match iss.split_once('#') {
        None => Did::is_valid(iss),
        Some((did, fragment)) => {
            !fragment.is_empty() && !fragment.contains('#') && Did::is_valid(did)
        }
    }
}

/// Decodes the claims of a token without checking anything (for logging or
/// routing only; never trust the result).
pub fn decode_claims_unverified(token: &str) -> Result<serde_json::Value, AuthError> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| AuthError::Malformed("expected three segments".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed("claims are not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|e| AuthError::Malformed(format!("claims: {e}")))
}
