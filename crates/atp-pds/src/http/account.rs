//! `com.atproto.server.createAccount`.

use super::with_state;
use std::sync::Arc;

use atp_xrpc::auth::{AuthError, AuthScope, ServiceJwtVerifier};
use atp_xrpc::server::{bearer_token, Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::Deserialize;
use serde_json::json;

use super::errors::to_xrpc;
use super::session::issue_session;
use super::state::PdsState;
use crate::error::Error;
use crate::handle_policy::Requester;
use crate::repo_writer::signing_key_in_document;
use crate::storage::CreateAccountRequest;

/// The method's NSID.
pub const NSID: &str = "com.atproto.server.createAccount";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateAccountInput {
    handle: String,
    email: Option<String>,
    password: Option<String>,
    invite_code: Option<String>,
    did: Option<String>,
}

async fn create_account(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: CreateAccountInput = req.json().await?;
    let domains = &state.storage.config().handle_domains;
    let handle = match &input.did {
        None => {
            let requester = Requester::NewAccount;
            state
                .handle_policy
                .check(&input.handle, domains, requester)?
                .handle
        }
        // Moving in: a handle elsewhere must already name the DID.
        Some(did) => {
            let (requester, resolver) = (Requester::Account, &state.handles);
            let policy = &state.handle_policy;
            policy
                .check_for_did(&input.handle, domains, requester, did, resolver)
                .await?
        }
    };
    let email = input
        .email
        .ok_or_else(|| XrpcError::invalid_request("Email is required"))?;
    let password = input
        .password
        .ok_or_else(|| XrpcError::invalid_request("Password is required"))?;
    let request = CreateAccountRequest {
        handle: handle.clone(),
        email: email.clone(),
        password,
        invite_code: input.invite_code,
    };
    if let Some(did) = input.did {
        return create_account_for_did(&state, &req, did, request).await;
    }
    let created = state
        .storage
        .create_account(&state.keys, &state.directory, request)
        .await
        .map_err(|err| match err {
            Error::EmailTaken => XrpcError::invalid_request(format!(
                "Email already taken: {}",
                email.trim().to_lowercase()
            )),
            other => to_xrpc(other),
        })?;
    let account = created.account;
    // As the reference announces a new account: its identity, its active
    // status, its first commit, then a #sync with the repository's state.
    let (sequencer, owner, handle_seq, commit) = (
        state.sequencer.clone(),
        account.did.clone(),
        account.handle.clone(),
        created.commit.clone(),
    );
    crate::db::run_blocking(move || {
        sequencer.sequence_identity(&owner, Some(&handle_seq))?;
        sequencer.sequence_account(&owner, true, None)?;
        sequencer.sequence_commit(&owner, &commit, &[])?;
        if let Some(bytes) = commit.blocks.get(&commit.cid) {
            sequencer.sequence_sync(&owner, &commit.cid, bytes, &commit.rev)?;
        }
        Ok(())
    })
    .await
    .map_err(to_xrpc)?;
    let tokens = issue_session(&state, &account.did, AuthScope::Access, None).await?;
    let mut body = json!({
        "handle": account.handle,
        "did": account.did,
        "accessJwt": tokens.access_jwt,
        "refreshJwt": tokens.refresh_jwt,
    });
    if let Some(op) = created.genesis.normalized() {
        let doc = atp_did_plc::DocumentData::from_operation(&account.did, &op).to_document();
        body["didDoc"] = serde_json::to_value(doc).map_err(XrpcError::internal)?;
    }
    XrpcResponse::json(&body)
}

/// `createAccount` with `did`: an account moving in from another PDS. As
/// the reference: the caller proves control of the DID with a service
/// token its current PDS signed (issuer the DID, audience this service,
/// for `createAccount`); the account is created deactivated, with a new
/// signing key, an empty repository and no directory operation, and
/// nothing is announced on the firehose until it is activated.
async fn create_account_for_did(
    state: &Arc<PdsState>,
    req: &XrpcRequest,
    did: String,
    request: CreateAccountRequest,
) -> Result<XrpcResponse, XrpcError> {
    let requester = match bearer_token(req.head()) {
        Some(token) => Some(verify_service_token(state, token).await?),
        None => None,
    };
    if requester.as_deref() != Some(did.as_str()) {
        return Err(XrpcError::auth_required(format!(
            "Missing auth to create account with did: {did}"
        )));
    }
    let email = request.email.clone();
    let created = state
        .storage
        .create_account_for_did(&did, request)
        .await
        .map_err(|err| match err {
            Error::EmailTaken => XrpcError::invalid_request(format!(
                "Email already taken: {}",
                email.trim().to_lowercase()
            )),
            other => to_xrpc(other),
        })?;
    let account = created.account;
    let tokens = issue_session(state, &account.did, AuthScope::Access, None).await?;
    let mut body = json!({
        "handle": account.handle,
        "did": account.did,
        "accessJwt": tokens.access_jwt,
        "refreshJwt": tokens.refresh_jwt,
    });
    if let Ok(doc) = state.directory.resolve(&account.did).await {
        body["didDoc"] = doc;
    }
    XrpcResponse::json(&body)
}

/// Verifies a service token for `createAccount` addressed to this service
/// and returns its issuer; the issuer's key is the `#atproto` key of its
/// DID document (`did:plc` through the directory).
async fn verify_service_token(state: &Arc<PdsState>, token: &str) -> Result<String, XrpcError> {
    let directory = state.directory.clone();
    let resolver = move |iss: String, _force_refresh: bool| {
        let directory = directory.clone();
        async move {
            let did = iss.split('#').next().unwrap_or_default().to_owned();
            if !did.starts_with("did:plc:") {
                return Err(AuthError::KeyResolution(format!(
                    "cannot resolve the key of {did}"
                )));
            }
            let doc = directory
                .resolve(&did)
                .await
                .map_err(|err| AuthError::KeyResolution(err.to_string()))?;
            signing_key_in_document(&doc)
                .ok_or_else(|| AuthError::KeyResolution("missing or bad key in did doc".to_owned()))
        }
    };
    let claims = ServiceJwtVerifier::new(Some(&state.info.did), Some(NSID))
        .verify(token, &resolver)
        .await
        .map_err(|err| {
            tracing::debug!(error = %err, "createAccount: service token refused");
            XrpcError::from_service_auth(&err)
        })?;
    Ok(claims.issuer_did().to_owned())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.procedure(NSID, with_state(state, create_account))?;
    Ok(())
}
