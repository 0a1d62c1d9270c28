//! Who is calling: session access tokens (with the scopes each method
//! accepts) and the admin's basic-auth password, checked the way the
//! reference PDS checks them.

use std::sync::Arc;

use atp_xrpc::auth::AuthScope;
use atp_xrpc::server::{bearer_token, XrpcError, XrpcRequest};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::errors::to_xrpc;

/// The `Authorization` header's name.
const AUTHORIZATION: &str = "authorization";
use super::state::PdsState;
use crate::account::Account;
use crate::db::run_blocking;

/// Which access tokens a method accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// The account's main password only (`com.atproto.access`): changing
    /// the password, deleting the account, creating app passwords.
    Full,
    /// The main password or a privileged app password.
    Privileged,
    /// Any session: main password or any app password (most methods).
    Standard,
    /// Any session, including a taken-down account's (to read its own
    /// status).
    Takendown,
}

impl Access {
    /// The token scopes this level accepts.
    pub fn scopes(self) -> &'static [AuthScope] {
        match self {
            Access::Full => &[AuthScope::Access],
            Access::Privileged => &[AuthScope::Access, AuthScope::AppPassPrivileged],
            Access::Standard => &[
                AuthScope::Access,
                AuthScope::AppPass,
                AuthScope::AppPassPrivileged,
            ],
            Access::Takendown => &[
                AuthScope::Access,
                AuthScope::AppPass,
                AuthScope::AppPassPrivileged,
                AuthScope::Takendown,
            ],
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The account's DID (the token's `sub`).
    pub did: String,
    /// The token's scope.
    pub scope: AuthScope,
}

impl Caller {
    /// The caller's account as stored now.
    pub async fn account(&self, state: &PdsState) -> Result<Account, XrpcError> {
        account_by_did(state, self.did.clone()).await
    }
}

/// The answer when no credentials were sent.
pub fn missing_auth() -> XrpcError {
    XrpcError::auth_required("Authentication Required").with_name("AuthMissing")
}

/// Checks the request's bearer access token against the `access` level.
pub fn require_access(
    state: &PdsState,
    req: &XrpcRequest,
    access: Access,
) -> Result<Caller, XrpcError> {
    let token = bearer_token(req.head()).ok_or_else(missing_auth)?;
    let claims = state
        .tokens
        .verify_access(token, access.scopes())
        .map_err(|err| XrpcError::from_session_auth(&err))?;
    Ok(Caller {
        did: claims.sub.as_str().to_owned(),
        scope: claims.scope,
    })
}

/// Like [`require_access`], but `None` when no `Authorization` header was
/// sent (for methods where auth is optional).
pub fn optional_access(
    state: &PdsState,
    req: &XrpcRequest,
    access: Access,
) -> Result<Option<Caller>, XrpcError> {
    if req.headers().get(AUTHORIZATION).is_none() {
        return Ok(None);
    }
    require_access(state, req, access).map(Some)
}

/// Checks HTTP basic auth `admin:<admin password>`. Without a configured
/// admin password every admin request is refused.
pub fn require_admin(state: &PdsState, req: &XrpcRequest) -> Result<(), XrpcError> {
    let refused =
        || XrpcError::auth_required("Authentication Required").with_name("AuthenticationRequired");
    let Some(expected) = state.admin_password.as_deref() else {
        return Err(refused());
    };
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(refused)?;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(refused)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| refused())?;
    let decoded = String::from_utf8(decoded).map_err(|_| refused())?;
    let (user, password) = decoded.split_once(':').ok_or_else(refused)?;
    let password_ok: bool = password.as_bytes().ct_eq(expected.as_bytes()).into();
    if user != "admin" || !password_ok {
        return Err(refused());
    }
    Ok(())
}

/// Whether the request carries valid admin credentials.
pub fn is_admin(state: &PdsState, req: &XrpcRequest) -> bool {
    require_admin(state, req).is_ok()
}

/// The stored account of `did`, or the reference's `AccountNotFound`.
pub async fn account_by_did(state: &PdsState, did: String) -> Result<Account, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let cached = accounts.cached_account_by_did(&did);
    let found = match cached {
        Some(account) => Some(account),
        None => run_blocking(move || accounts.account_by_did(&did))
            .await
            .map_err(to_xrpc)?,
    };
    found
        .ok_or_else(|| XrpcError::invalid_request("Account not found").with_name("AccountNotFound"))
}
