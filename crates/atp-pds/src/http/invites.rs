//! `com.atproto.server.createInviteCode`, `createInviteCodes` (both behind
//! the admin password, as in the reference) and `getAccountInviteCodes`
//! (the caller's own codes; with `createAvailable`, the codes the account
//! earned under [`PdsState::invite_schedule`] are created first, when
//! invites are required).
//!
//! Invite codes are only demanded at account creation when the service is
//! configured with `invite_required`; they can be created either way.

use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::account_status::require_not_taken_down;
use super::admin::require_admin_password;
use super::auth::{require_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::db::run_blocking;
use crate::invite::{generate_invite_code, InviteCodeDetail};
use crate::time;

/// The `for_account` of codes issued by the service itself.
pub const ADMIN_ACCOUNT: &str = "admin";

/// An invite code as `com.atproto.server.defs#inviteCode`.
pub fn invite_code_json(code: &InviteCodeDetail) -> Value {
    let uses: Vec<Value> = code
        .uses
        .iter()
        .map(|used| {
            json!({
                "usedBy": used.used_by,
                "usedAt": time::format(&used.used_at),
            })
        })
        .collect();
    json!({
        "code": code.code,
        "available": code.available,
        "disabled": code.disabled,
        "forAccount": code.for_account,
        "createdBy": code.created_by,
        "createdAt": time::format(&code.created_at),
        "uses": uses,
    })
}

/// The host name of the service's public URL (what new codes start with).
fn service_hostname(state: &PdsState) -> String {
    let url = &state.storage.config().public_url;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    host.to_ascii_lowercase()
}

fn use_count(value: i64) -> Result<u32, XrpcError> {
    u32::try_from(value)
        .ok()
        .filter(|&uses| uses > 0)
        .ok_or_else(|| XrpcError::invalid_request("useCount must be a positive integer"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInviteCodeInput {
    use_count: i64,
    for_account: Option<String>,
}

async fn create_invite_code(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: CreateInviteCodeInput = req.json().await?;
    let uses = use_count(input.use_count)?;
    let for_account = input
        .for_account
        .unwrap_or_else(|| ADMIN_ACCOUNT.to_owned());
    let code = generate_invite_code(&service_hostname(&state));
    let accounts = Arc::clone(state.storage.accounts());
    let batch = vec![(for_account, vec![code.clone()])];
    run_blocking(move || accounts.insert_invite_codes(&batch, ADMIN_ACCOUNT, uses))
        .await
        .map_err(to_xrpc)?;
    XrpcResponse::json(&json!({ "code": code }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInviteCodesInput {
    #[serde(default = "one")]
    code_count: i64,
    use_count: i64,
    for_accounts: Option<Vec<String>>,
}

fn one() -> i64 {
    1
}

/// Most codes one `createInviteCodes` call makes per account.
const MAX_CODE_COUNT: i64 = 1000;

async fn create_invite_codes(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: CreateInviteCodesInput = req.json().await?;
    let uses = use_count(input.use_count)?;
    if !(0..=MAX_CODE_COUNT).contains(&input.code_count) {
        return Err(XrpcError::invalid_request(format!(
            "codeCount must be between 0 and {MAX_CODE_COUNT}"
        )));
    }
    let hostname = service_hostname(&state);
    let for_accounts = input
        .for_accounts
        .unwrap_or_else(|| vec![ADMIN_ACCOUNT.to_owned()]);
    let batches: Vec<(String, Vec<String>)> = for_accounts
        .into_iter()
        .map(|account| {
            let codes = (0..input.code_count)
                .map(|_| generate_invite_code(&hostname))
                .collect();
            (account, codes)
        })
        .collect();
    let accounts = Arc::clone(state.storage.accounts());
    let stored = batches.clone();
    run_blocking(move || accounts.insert_invite_codes(&stored, ADMIN_ACCOUNT, uses))
        .await
        .map_err(to_xrpc)?;
    let codes: Vec<Value> = batches
        .into_iter()
        .map(|(account, codes)| json!({ "account": account, "codes": codes }))
        .collect();
    XrpcResponse::json(&json!({ "codes": codes }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountInviteCodesParams {
    include_used: Option<bool>,
    create_available: Option<bool>,
}

async fn get_account_invite_codes(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    require_not_taken_down(&state, &caller.did).await?;
    let params: AccountInviteCodesParams = req.params()?;
    let include_used = params.include_used.unwrap_or(true);
    // Codes are earned over time only when invites are required and the
    // service has a schedule (as in the reference).
    let schedule = state
        .invite_schedule
        .filter(|_| params.create_available.unwrap_or(true))
        .filter(|_| state.storage.config().invite_required);
    let hostname = service_hostname(&state);
    let accounts = Arc::clone(state.storage.accounts());
    let codes = run_blocking(move || {
        if let Some(schedule) = schedule {
            let generate = || generate_invite_code(&hostname);
            accounts.create_earned_invite_codes(&caller.did, &schedule, generate)?;
        }
        accounts.invite_codes_for(&caller.did)
    })
    .await
    .map_err(to_xrpc)?;
    let codes: Vec<Value> = codes
        .iter()
        .filter(|code| !code.disabled)
        .filter(|code| include_used || code.uses.len() < code.available as usize)
        .map(invite_code_json)
        .collect();
    XrpcResponse::json(&json!({ "codes": codes }))
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.procedure(
        "com.atproto.server.createInviteCode",
        with_state(state, create_invite_code),
    )?;
    router.procedure(
        "com.atproto.server.createInviteCodes",
        with_state(state, create_invite_codes),
    )?;
    router.query(
        "com.atproto.server.getAccountInviteCodes",
        with_state(state, get_account_invite_codes),
    )?;
    Ok(())
}
