//! `com.atproto.server.createSession`, `getSession`, `refreshSession` and
//! `deleteSession`.
//!
//! A session is an HS256 access JWT plus a refresh JWT whose `jti` is the
//! id of a refresh token stored in the account database; refreshing
//! rotates that stored token (see [`crate::refresh_token`]).

use super::with_state;
use std::sync::Arc;

use atp_syntax::Did;
use atp_xrpc::auth::{AuthScope, RefreshTokenId, SessionTokens};
use atp_xrpc::server::{bearer_token, Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::missing_auth;
use super::errors::to_xrpc;
use super::state::PdsState;
use crate::account::Account;
use crate::db::run_blocking;
use crate::error::Error;
use crate::refresh_token::RefreshToken;

/// Scopes an access token may carry to read its own session.
const SESSION_SCOPES: [AuthScope; 4] = [
    AuthScope::Access,
    AuthScope::AppPass,
    AuthScope::AppPassPrivileged,
    AuthScope::Takendown,
];

/// Issues a new session for `did`: stores a refresh token, then signs the
/// access and refresh JWTs (the refresh JWT's `jti` is the stored id).
pub async fn issue_session(
    state: &PdsState,
    did: &str,
    scope: AuthScope,
    app_password_name: Option<String>,
) -> Result<SessionTokens, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let lifetime = state.storage.config().refresh_token_lifetime;
    let owner = did.to_owned();
    let stored = run_blocking(move || {
        accounts.issue_refresh_token(&owner, app_password_name.as_deref(), lifetime)
    })
    .await
    .map_err(to_xrpc)?;
    sign_session(state, did, scope, &stored)
}

fn sign_session(
    state: &PdsState,
    did: &str,
    scope: AuthScope,
    stored: &RefreshToken,
) -> Result<SessionTokens, XrpcError> {
    let did = Did::new(did).map_err(XrpcError::internal)?;
    let now = chrono::Utc::now().timestamp();
    state
        .tokens
        .create_session_at(
            &did,
            scope,
            Some(RefreshTokenId::new(stored.id.clone())),
            now,
        )
        .map_err(XrpcError::internal)
}

/// The scope of a session opened with an app password (or the main one).
fn scope_for(app_password: Option<&crate::app_password::AppPassword>) -> AuthScope {
    match app_password {
        None => AuthScope::Access,
        Some(pass) if pass.privileged => AuthScope::AppPassPrivileged,
        Some(_) => AuthScope::AppPass,
    }
}

/// `active` and, for an inactive account, `status` as the reference shows
/// them.
fn status_fields(account: &Account, body: &mut Map<String, Value>) {
    body.insert("active".to_owned(), json!(account.is_active()));
    if account.takedown_ref.is_some() {
        body.insert("status".to_owned(), json!("takendown"));
    } else if account.deactivated_at.is_some() {
        body.insert("status".to_owned(), json!("deactivated"));
    }
}

/// The DID document from the directory, if it can be resolved (the
/// reference omits `didDoc` when it cannot).
async fn did_doc(state: &PdsState, did: &str) -> Option<Value> {
    match state.directory.resolve(did).await {
        Ok(doc) => Some(doc),
        Err(err) => {
            tracing::warn!(%did, error = %err, "could not resolve the DID document");
            None
        }
    }
}

/// The account's fields shared by the session answers.
async fn session_body(state: &PdsState, account: &Account) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("did".to_owned(), json!(account.did));
    if let Some(doc) = did_doc(state, &account.did).await {
        body.insert("didDoc".to_owned(), doc);
    }
    body.insert("handle".to_owned(), json!(account.handle));
    body.insert("email".to_owned(), json!(account.email));
    body.insert(
        "emailConfirmed".to_owned(),
        json!(account.email_confirmed_at.is_some()),
    );
    body.insert("emailAuthFactor".to_owned(), json!(false));
    status_fields(account, &mut body);
    body
}

fn insert_tokens(body: &mut Map<String, Value>, tokens: &SessionTokens) {
    body.insert("accessJwt".to_owned(), json!(tokens.access_jwt));
    body.insert("refreshJwt".to_owned(), json!(tokens.refresh_jwt));
}

/// The reference's answer when a session's account is gone (or hidden).
fn could_not_find(did: &str) -> XrpcError {
    XrpcError::invalid_request(format!("Could not find user info for account: {did}"))
}

/// The account a session belongs to, refused as the reference does when
/// it no longer exists.
async fn account_for_session(state: &PdsState, did: String) -> Result<Account, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let lookup = did.clone();
    run_blocking(move || accounts.account_by_did(&lookup))
        .await
        .map_err(to_xrpc)?
        .ok_or_else(|| could_not_find(&did))
}

/// The scope of a refreshed app-password session: privileged app
/// passwords keep their privilege.
async fn app_password_scope(
    state: &PdsState,
    did: &str,
    name: &str,
) -> Result<AuthScope, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let owner = did.to_owned();
    let passwords = run_blocking(move || accounts.list_app_passwords(&owner))
        .await
        .map_err(to_xrpc)?;
    let privileged = passwords
        .iter()
        .any(|pass| pass.name == name && pass.privileged);
    Ok(if privileged {
        AuthScope::AppPassPrivileged
    } else {
        AuthScope::AppPass
    })
}

#[derive(Deserialize)]
struct CreateSessionInput {
    identifier: String,
    password: String,
}

async fn create_session(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: CreateSessionInput = req.json().await?;
    let accounts = Arc::clone(state.storage.accounts());
    let identifier = input.identifier.trim().to_lowercase();
    let login = run_blocking(move || accounts.login(&identifier, &input.password))
        .await
        .map_err(to_xrpc)?;
    let scope = scope_for(login.app_password.as_ref());
    let name = login.app_password.map(|pass| pass.name);
    let tokens = issue_session(&state, &login.account.did, scope, name).await?;
    let mut body = session_body(&state, &login.account).await;
    insert_tokens(&mut body, &tokens);
    XrpcResponse::json(&body)
}

async fn get_session(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let token = bearer_token(req.head()).ok_or_else(missing_auth)?;
    let claims = state
        .tokens
        .verify_access(token, &SESSION_SCOPES)
        .map_err(|err| XrpcError::from_session_auth(&err))?;
    let account = account_for_session(&state, claims.sub.as_str().to_owned()).await?;
    if account.takedown_ref.is_some() {
        return Err(could_not_find(&account.did));
    }
    XrpcResponse::json(&session_body(&state, &account).await)
}

async fn refresh_session(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let token = bearer_token(req.head()).ok_or_else(missing_auth)?;
    let claims = state
        .tokens
        .verify_refresh(token)
        .map_err(|err| XrpcError::from_session_auth(&err))?;
    let accounts = Arc::clone(state.storage.accounts());
    let config = state.storage.config();
    let (lifetime, grace) = (config.refresh_token_lifetime, config.refresh_grace_period);
    let id = claims.jti.as_str().to_owned();
    let successor = run_blocking(move || accounts.rotate_refresh_token(&id, lifetime, grace))
        .await
        .map_err(|err| match err {
            Error::InvalidToken => {
                XrpcError::invalid_request("Token has been revoked").with_name("ExpiredToken")
            }
            Error::ExpiredToken => {
                XrpcError::invalid_request("Token has expired").with_name("ExpiredToken")
            }
            other => to_xrpc(other),
        })?;
    if successor.did != claims.sub.as_str() {
        return Err(
            XrpcError::invalid_request("Token could not be verified").with_name("InvalidToken")
        );
    }
    let account = account_for_session(&state, successor.did.clone()).await?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    let scope = match &successor.app_password_name {
        None => AuthScope::Access,
        Some(name) => app_password_scope(&state, &successor.did, name).await?,
    };
    let tokens = sign_session(&state, &successor.did, scope, &successor)?;
    let mut body = session_body(&state, &account).await;
    insert_tokens(&mut body, &tokens);
    XrpcResponse::json(&body)
}

async fn delete_session(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let token = bearer_token(req.head()).ok_or_else(missing_auth)?;
    let claims = state
        .tokens
        .verify_refresh(token)
        .map_err(|err| XrpcError::from_session_auth(&err))?;
    let accounts = Arc::clone(state.storage.accounts());
    let id = claims.jti.as_str().to_owned();
    run_blocking(move || accounts.revoke_refresh_token(&id))
        .await
        .map_err(to_xrpc)?;
    Ok(XrpcResponse::empty())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.procedure(
        "com.atproto.server.createSession",
        with_state(state, create_session),
    )?;
    router.query(
        "com.atproto.server.getSession",
        with_state(state, get_session),
    )?;
    router.procedure(
        "com.atproto.server.refreshSession",
        with_state(state, refresh_session),
    )?;
    router.procedure(
        "com.atproto.server.deleteSession",
        with_state(state, delete_session),
    )?;
    Ok(())
}
