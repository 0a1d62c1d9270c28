//! Session tokens: the HS256 access and refresh JWTs a PDS hands out from
//! `createSession` and `refreshSession`.
//!
//! Access tokens carry header `typ: "at+jwt"`, refresh tokens
//! `typ: "refresh+jwt"`; both are signed with HS256 under the server's JWT
//! secret and carry `scope`, `sub` (the account DID), `aud` (the service
//! DID), `iat` and `exp`. Refresh tokens add a `jti`, the id under which the
//! PDS stores them so they can be rotated and revoked.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use atp_syntax::Did;

use super::jws::{self, CompactJws, JwtHeader};
use super::AuthError;

/// Header `typ` of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Header `typ` of refresh tokens (an atproto convention).
pub const REFRESH_TOKEN_TYPE: &str = "refresh+jwt";
/// The only algorithm session tokens use.
pub const SESSION_JWT_ALG: &str = "HS256";
/// Default access-token lifetime: 120 minutes.
pub const DEFAULT_ACCESS_LIFETIME: Duration = Duration::from_secs(120 * 60);
/// Default refresh-token lifetime: 90 days.
pub const DEFAULT_REFRESH_LIFETIME: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// How long a rotated refresh token stays usable: 2 hours.
pub const REFRESH_GRACE_PERIOD: Duration = Duration::from_secs(2 * 60 * 60);

/// The `scope` claim of a session token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthScope {
    /// `com.atproto.access`: full access with the account password.
    Access,
    /// `com.atproto.refresh`: a refresh token.
    Refresh,
    /// `com.atproto.appPass`: an app password.
    AppPass,
    /// `com.atproto.appPassPrivileged`: a privileged app password.
    AppPassPrivileged,
    /// `com.atproto.signupQueued`: an account waiting for activation.
    SignupQueued,
    /// `com.atproto.takendown`: a taken-down account (export only).
    Takendown,
}

impl AuthScope {
    /// Every scope.
    pub const ALL: [AuthScope; 6] = [
        AuthScope::Access,
        AuthScope::Refresh,
        AuthScope::AppPass,
        AuthScope::AppPassPrivileged,
        AuthScope::SignupQueued,
        AuthScope::Takendown,
    ];

    /// The scopes an access token may carry.
    pub const ACCESS_SCOPES: [AuthScope; 5] = [
        AuthScope::Access,
        AuthScope::AppPass,
        AuthScope::AppPassPrivileged,
        AuthScope::SignupQueued,
        AuthScope::Takendown,
    ];

    /// The claim value, e.g. `com.atproto.access`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthScope::Access => "com.atproto.access",
            AuthScope::Refresh => "com.atproto.refresh",
            AuthScope::AppPass => "com.atproto.appPass",
            AuthScope::AppPassPrivileged => "com.atproto.appPassPrivileged",
            AuthScope::SignupQueued => "com.atproto.signupQueued",
            AuthScope::Takendown => "com.atproto.takendown",
        }
    }
}

impl fmt::Display for AuthScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthScope {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        AuthScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| AuthError::BadScope(s.to_owned()))
    }
}

impl Serialize for AuthScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuthScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The id (`jti`) of a refresh token: 32 random bytes in padded base64, as
/// the reference PDS makes them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefreshTokenId(String);

impl RefreshTokenId {
    /// A fresh random id.
    pub fn generate() -> Self {
        RefreshTokenId(base64::engine::general_purpose::STANDARD.encode(jws::random_bytes::<32>()))
    }

    /// Wraps an id read back from storage or a token.
    pub fn new(id: impl Into<String>) -> Self {
        RefreshTokenId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefreshTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// What the token allows.
    pub scope: AuthScope,
    /// The service DID the token is for.
    pub aud: String,
    /// The account DID.
    pub sub: Did,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// The claims of a refresh token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    /// Always [`AuthScope::Refresh`].
    pub scope: AuthScope,
    /// The service DID the token is for.
    pub aud: String,
    /// The account DID.
    pub sub: Did,
    /// The token id, the key of its row in the PDS's store.
    pub jti: RefreshTokenId,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// An access and a refresh token issued together.
#[derive(Clone, Debug)]
pub struct SessionTokens {
    /// The access JWT.
    pub access_jwt: String,
    /// The refresh JWT.
    pub refresh_jwt: String,
    /// The claims of the access token.
    pub access: AccessClaims,
    /// The claims of the refresh token (store `jti`, `sub` and `exp`).
    pub refresh: RefreshClaims,
}

/// Issues and verifies session tokens under one server secret and service
/// DID.
#[derive(Clone)]
pub struct SessionTokenAuthority {
    /// HMAC-SHA256 keyed with the secret, cloned for each token (so the
    /// key's padding blocks are hashed once, not per token).
    keyed_mac: Hmac<Sha256>,
    service_did: String,
    access_lifetime: Duration,
    refresh_lifetime: Duration,
}

impl fmt::Debug for SessionTokenAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionTokenAuthority")
            .field("service_did", &self.service_did)
            .field("access_lifetime", &self.access_lifetime)
            .field("refresh_lifetime", &self.refresh_lifetime)
            .finish_non_exhaustive()
    }
}

impl SessionTokenAuthority {
    /// An authority signing with `secret` (the PDS JWT secret, used as its
    /// UTF-8 bytes) for the service `service_did`, with the default
    /// lifetimes (120 minutes, 90 days).
    pub fn new(
        secret: impl AsRef<[u8]>,
        service_did: impl Into<String>,
    ) -> Result<Self, AuthError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(AuthError::EmptySecret);
        }
        let keyed_mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| AuthError::EmptySecret)?;
        Ok(SessionTokenAuthority {
            keyed_mac,
            service_did: service_did.into(),
            access_lifetime: DEFAULT_ACCESS_LIFETIME,
            refresh_lifetime: DEFAULT_REFRESH_LIFETIME,
        })
    }

    /// The same authority with other token lifetimes.
    pub fn with_lifetimes(mut self, access: Duration, refresh: Duration) -> Self {
        self.access_lifetime = access;
        self.refresh_lifetime = refresh;
        self
    }

    /// The service DID tokens are issued for (`aud`).
    pub fn service_did(&self) -> &str {
        &self.service_did
    }

    /// Issues an access token and a refresh token (with a new random `jti`)
    /// valid from now.
    pub fn create_session(&self, did: &Did, scope: AuthScope) -> Result<SessionTokens, AuthError> {
        self.create_session_at(did, scope, None, jws::unix_now())
    }

    /// Issues a session at time `now` (seconds), with the given refresh id
    /// (the `nextId` of a rotation) or a fresh one.
    pub fn create_session_at(
        &self,
        did: &Did,
        scope: AuthScope,
        refresh_id: Option<RefreshTokenId>,
        now: i64,
    ) -> Result<SessionTokens, AuthError> {
        let (access_jwt, access) = self.create_access_token_at(did, scope, now)?;
        let (refresh_jwt, refresh) = self.create_refresh_token_at(did, refresh_id, now)?;
        Ok(SessionTokens {
            access_jwt,
            refresh_jwt,
            access,
            refresh,
        })
    }

    /// Issues an access token at time `now`. `scope` must not be
    /// [`AuthScope::Refresh`].
    pub fn create_access_token_at(
        &self,
        did: &Did,
        scope: AuthScope,
        now: i64,
    ) -> Result<(String, AccessClaims), AuthError> {
        if scope == AuthScope::Refresh {
            return Err(AuthError::BadScope(scope.as_str().to_owned()));
        }
        let claims = AccessClaims {
            scope,
            aud: self.service_did.clone(),
            sub: did.clone(),
            iat: now,
            exp: now.saturating_add(secs(self.access_lifetime)),
        };
        Ok((self.sign(ACCESS_TOKEN_TYPE, &claims)?, claims))
    }

    /// Issues a refresh token at time `now`, with `jti` or a fresh id.
    pub fn create_refresh_token_at(
        &self,
        did: &Did,
        jti: Option<RefreshTokenId>,
        now: i64,
    ) -> Result<(String, RefreshClaims), AuthError> {
        let claims = RefreshClaims {
            scope: AuthScope::Refresh,
            aud: self.service_did.clone(),
            sub: did.clone(),
            jti: jti.unwrap_or_else(RefreshTokenId::generate),
            iat: now,
            exp: now.saturating_add(secs(self.refresh_lifetime)),
        };
        Ok((self.sign(REFRESH_TOKEN_TYPE, &claims)?, claims))
    }

    /// Verifies an access token now, accepting any of `allowed` scopes
    /// (never [`AuthScope::Refresh`]).
    pub fn verify_access(
        &self,
        token: &str,
        allowed: &[AuthScope],
    ) -> Result<AccessClaims, AuthError> {
        self.verify_access_at(token, allowed, jws::unix_now())
    }

    /// Verifies an access token as of time `now` (seconds).
    pub fn verify_access_at(
        &self,
        token: &str,
        allowed: &[AuthScope],
        now: i64,
    ) -> Result<AccessClaims, AuthError> {
        let jws = self.check(token, ACCESS_TOKEN_TYPE)?;
        let scope = scope_claim(&jws)?;
        if scope == AuthScope::Refresh || !allowed.contains(&scope) {
            return Err(AuthError::BadScope(scope.as_str().to_owned()));
        }
        let claims: AccessClaims = claims_of(jws)?;
        self.check_time_and_audience(claims.exp, &claims.aud, now)?;
        Ok(claims)
    }

    /// Verifies a refresh token now.
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshClaims, AuthError> {
        self.verify_refresh_at(token, jws::unix_now())
    }

    /// Verifies a refresh token as of time `now` (seconds).
    pub fn verify_refresh_at(&self, token: &str, now: i64) -> Result<RefreshClaims, AuthError> {
        let jws = self.check(token, REFRESH_TOKEN_TYPE)?;
        let scope = scope_claim(&jws)?;
        if scope != AuthScope::Refresh {
            return Err(AuthError::BadScope(scope.as_str().to_owned()));
        }
        if jws.claims.get("jti").and_then(|v| v.as_str()).is_none() {
            return Err(AuthError::MissingTokenId);
        }
        let claims: RefreshClaims = claims_of(jws)?;
        self.check_time_and_audience(claims.exp, &claims.aud, now)?;
        Ok(claims)
    }

    fn sign<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, AuthError> {
        let header = JwtHeader {
            typ: Some(typ.to_owned()),
            alg: SESSION_JWT_ALG.to_owned(),
        };
        let input = jws::signing_input(&header, claims)?;
        let tag = self.mac(input.as_bytes()).finalize().into_bytes();
        Ok(jws::attach_signature(input, &tag))
    }

    fn mac(&self, msg: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed_mac.clone();
        mac.update(msg);
        mac
    }

    /// Parses, checks `alg` (exactly HS256), `typ` and the MAC (in constant
    /// time).
    fn check<'a>(&self, token: &'a str, typ: &str) -> Result<CompactJws<'a>, AuthError> {
        let jws = CompactJws::parse(token)?;
        match jws.header.alg.as_str() {
            SESSION_JWT_ALG => {}
            "ES256" | "ES256K" => {
                return Err(AuthError::AlgorithmMismatch {
                    expected: SESSION_JWT_ALG.to_owned(),
                    found: jws.header.alg.clone(),
                })
            }
            other => return Err(AuthError::UnsupportedAlgorithm(other.to_owned())),
        }
        if jws.header.typ.as_deref() != Some(typ) {
            return Err(AuthError::BadType(jws.header.typ.clone()));
        }
        self.mac(jws.signing_input.as_bytes())
            .verify_slice(&jws.signature)
            .map_err(|_| AuthError::BadSignature)?;
        Ok(jws)
    }

    fn check_time_and_audience(&self, exp: i64, aud: &str, now: i64) -> Result<(), AuthError> {
        if exp <= now {
            return Err(AuthError::Expired);
        }
        if aud != self.service_did {
            return Err(AuthError::BadAudience);
        }
        Ok(())
    }
}

fn scope_claim(jws: &CompactJws<'_>) -> Result<AuthScope, AuthError> {
    match jws.claims.get("scope") {
        Some(serde_json::Value::String(s)) => s.parse(),
        _ => Err(AuthError::Malformed("missing scope claim".into())),
    }
}

fn claims_of<T: serde::de::DeserializeOwned>(jws: CompactJws<'_>) -> Result<T, AuthError> {
    if let Some(sub) = jws.claims.get("sub").and_then(|v| v.as_str()) {
        if !Did::is_valid(sub) {
            return Err(AuthError::BadIssuer(sub.to_owned()));
        }
    }
    jws.into_claims()
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A refresh token as the PDS stores it, for rotation with a grace period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRefreshToken {
    /// The token id (`jti`).
    pub id: RefreshTokenId,
    /// The account DID.
    pub did: Did,
    /// When the row expires (seconds since the epoch).
    pub expires_at: i64,
    /// The app password the session was made with, if any.
    pub app_password_name: Option<String>,
    /// The id of the token that replaced this one, once rotated.
    pub next_id: Option<RefreshTokenId>,
}

/// What to do when a stored refresh token is presented (see
/// [`StoredRefreshToken::plan_rotation`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshRotation {
    /// The id of the new refresh token (re-used if the old one was already
    /// rotated, so concurrent refreshes get the same session).
    pub next_id: RefreshTokenId,
    /// The shortened expiry to store on the old token.
    pub old_expires_at: i64,
}

impl StoredRefreshToken {
    /// Plans a rotation at `now`: `None` if the row is expired (delete it
    /// and refuse); otherwise the new token id and the old token's new
    /// expiry (at most [`REFRESH_GRACE_PERIOD`] from now). The store must
    /// update the old row only if its `next_id` is still unset or equal
    /// (a compare-and-set), and issue the new session with `next_id`.
    pub fn plan_rotation(&self, now: i64) -> Option<RefreshRotation> {
        if self.expires_at <= now {
            return None;
        }
        let next_id = self
            .next_id
            .clone()
            .unwrap_or_else(RefreshTokenId::generate);
        let grace_end = now.saturating_add(secs(REFRESH_GRACE_PERIOD));
        Some(RefreshRotation {
            next_id,
            old_expires_at: grace_end.min(self.expires_at),
        })
    }
}
