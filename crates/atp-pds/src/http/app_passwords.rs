//! `com.atproto.server.createAppPassword`, `listAppPasswords` and
//! `revokeAppPassword`.
//!
//! Creating an app password needs a session opened with the main password
//! (an app-password session cannot mint more app passwords) on an account
//! that is not taken down. Listing and revoking accept any session.
//! Revoking also revokes the refresh tokens of the sessions opened with
//! that app password, so they cannot be refreshed.

use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::Deserialize;
use serde_json::json;

use super::account_status::require_not_taken_down;
use super::auth::{require_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::db::run_blocking;
use crate::time;

#[derive(Deserialize)]
struct CreateInput {
    name: String,
    #[serde(default)]
    privileged: Option<bool>,
}

async fn create_app_password(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    require_not_taken_down(&state, &caller.did).await?;
    let input: CreateInput = req.json().await?;
    let privileged = input.privileged.unwrap_or(false);
    let accounts = Arc::clone(state.storage.accounts());
    let did = caller.did.clone();
    let created = run_blocking(move || accounts.create_app_password(&did, &input.name, privileged))
        .await
        .map_err(to_xrpc)?;
    XrpcResponse::json(&json!({
        "name": created.info.name,
        "password": created.password,
        "createdAt": time::format(&created.info.created_at),
        "privileged": created.info.privileged,
    }))
}

async fn list_app_passwords(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let accounts = Arc::clone(state.storage.accounts());
    let passwords = run_blocking(move || accounts.list_app_passwords(&caller.did))
        .await
        .map_err(to_xrpc)?;
    let passwords: Vec<_> = passwords
        .iter()
        .map(|pass| {
            json!({
                "name": pass.name,
                "createdAt": time::format(&pass.created_at),
                "privileged": pass.privileged,
            })
        })
        .collect();
    XrpcResponse::json(&json!({ "passwords": passwords }))
}

#[derive(Deserialize)]
struct RevokeInput {
    name: String,
}

async fn revoke_app_password(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let input: RevokeInput = req.json().await?;
    let accounts = Arc::clone(state.storage.accounts());
    // Like the reference: revoking a name that does not exist succeeds.
    run_blocking(move || accounts.revoke_app_password(&caller.did, &input.name))
        .await
        .map_err(to_xrpc)?;
    Ok(XrpcResponse::empty())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.procedure(
        "com.atproto.server.createAppPassword",
        with_state(state, create_app_password),
    )?;
    router.query(
        "com.atproto.server.listAppPasswords",
        with_state(state, list_app_passwords),
    )?;
    router.procedure(
        "com.atproto.server.revokeAppPassword",
        with_state(state, revoke_app_password),
    )?;
    Ok(())
}
