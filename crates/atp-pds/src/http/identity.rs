//! `com.atproto.identity`: resolveHandle, updateHandle and the PLC operation
//! methods (getRecommendedDidCredentials, requestPlcOperationSignature,
//! signPlcOperation, submitPlcOperation), with the reference PDS's answers.
//!
//! * resolveHandle answers local accounts first; a handle under one of the
//!   service's domains that no account holds is `HandleNotFound`; any other
//!   handle is resolved by DNS and HTTPS (or asked of the AppView when one
//!   is configured).
//! * updateHandle takes a free handle under a service domain, or any other
//!   handle that already resolves to the caller's DID; it then signs a PLC
//!   update of `alsoKnownAs` with the service's rotation key, submits it to
//!   the directory, stores the handle and sequences an `#identity` event.
//! * signPlcOperation needs the emailed `plc_operation` token; it signs the
//!   next operation (the last one with the given fields replaced) without
//!   submitting it. submitPlcOperation submits an operation after checking
//!   that it keeps this PDS in charge: its rotation key, the account's
//!   signing key, its endpoint and the account's handle.

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_did_plc::builder::{ATPROTO_PDS_SERVICE, ATPROTO_PDS_TYPE, ATPROTO_VERIFICATION_METHOD};
use atp_did_plc::{Operation, Service, UnsignedOperation, UpdateBuilder};
use atp_xrpc::auth::AuthScope;
use atp_xrpc::client::XrpcClient;
use atp_xrpc::server::{bearer_token, Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{account_by_did, missing_auth, require_access, Access, Caller};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::account::Account;
use crate::db::run_blocking;
use crate::email_token::EmailTokenPurpose;
use crate::error::Error;
use crate::handle_policy::Requester;
use crate::mailer::Mail;

/// `com.atproto.identity.resolveHandle`.
pub const RESOLVE_HANDLE: &str = "com.atproto.identity.resolveHandle";
/// `com.atproto.identity.updateHandle`.
pub const UPDATE_HANDLE: &str = "com.atproto.identity.updateHandle";
/// `com.atproto.identity.getRecommendedDidCredentials`.
pub const GET_RECOMMENDED_DID_CREDENTIALS: &str =
    "com.atproto.identity.getRecommendedDidCredentials";
/// `com.atproto.identity.requestPlcOperationSignature`.
pub const REQUEST_PLC_OPERATION_SIGNATURE: &str =
    "com.atproto.identity.requestPlcOperationSignature";
/// `com.atproto.identity.signPlcOperation`.
pub const SIGN_PLC_OPERATION: &str = "com.atproto.identity.signPlcOperation";
/// `com.atproto.identity.submitPlcOperation`.
pub const SUBMIT_PLC_OPERATION: &str = "com.atproto.identity.submitPlcOperation";

/// The subject of the email carrying a PLC operation token (the
/// reference's wording, which clients may show).
pub const PLC_OPERATION_SUBJECT: &str = "PLC Update Operation Requested";

const PLC_OPERATION: EmailTokenPurpose = EmailTokenPurpose::PlcOperation;

/// The email carrying a PLC operation `token` to `to`.
fn plc_operation_mail(to: &str, token: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: PLC_OPERATION_SUBJECT.to_owned(),
        body: format!(
            "We received a request to sign an update of your identity (your DID's PLC operation).\n\n\
             Your confirmation code: {token}\n\n\
             Enter it in the application that asked for it. If you did not ask for this, \
             do not share the code with anyone: whoever holds it can move your account."
        ),
    }
}

/// Scopes accepted by the PLC signature methods: the account password's
/// session, or a taken-down account's (to move away).
const PLC_SIGNATURE_SCOPES: [AuthScope; 2] = [AuthScope::Access, AuthScope::Takendown];

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.query(RESOLVE_HANDLE, with_state(state, resolve_handle))?;
    router.procedure(UPDATE_HANDLE, with_state(state, update_handle))?;
    router.query(
        GET_RECOMMENDED_DID_CREDENTIALS,
        with_state(state, get_recommended_did_credentials),
    )?;
    router.procedure(
        REQUEST_PLC_OPERATION_SIGNATURE,
        with_state(state, request_plc_operation_signature),
    )?;
    router.procedure(SIGN_PLC_OPERATION, with_state(state, sign_plc_operation))?;
    router.procedure(
        SUBMIT_PLC_OPERATION,
        with_state(state, submit_plc_operation),
    )?;
    Ok(())
}

// ---------------------------------------------------------------- handles

/// The parsed (lower-cased) handle, or the reference's `InvalidHandle`
/// refusal.
fn parse_handle(handle: &str) -> Result<atp_syntax::Handle, XrpcError> {
    atp_syntax::Handle::new(handle.trim())
        .map_err(|err| XrpcError::invalid_request(err.to_string()).with_name("InvalidHandle"))
}

/// The normalized handle, or the reference's `InvalidHandle` refusal.
fn normalize_handle(handle: &str) -> Result<String, XrpcError> {
    parse_handle(handle).map(atp_syntax::Handle::into_string)
}

/// Whether `handle` is one of the service's handle domains or under one
/// (the domains are written with their leading dot).
pub fn is_service_handle(handle: &str, domains: &[String]) -> bool {
    domains.iter().any(|domain| {
        let domain = domain.to_ascii_lowercase();
        handle.ends_with(&domain) || domain.strip_prefix('.') == Some(handle)
    })
}

fn unable_to_resolve() -> XrpcError {
    XrpcError::invalid_request("Unable to resolve handle")
}

async fn resolve_handle(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    #[derive(Deserialize)]
    struct Params {
        handle: String,
    }
    let params: Params = req.params()?;
    let handle = normalize_handle(&params.handle)?;

    let accounts = Arc::clone(state.storage.accounts());
    let lookup = handle.clone();
    let local = run_blocking(move || accounts.account_by_handle(&lookup))
        .await
        .map_err(to_xrpc)?;
    if let Some(account) = local.filter(Account::is_active) {
        return XrpcResponse::json(&json!({ "did": account.did }));
    }
    if is_service_handle(&handle, &state.storage.config().handle_domains) {
        // It would be ours: no account holds it.
        return Err(unable_to_resolve().with_name("HandleNotFound"));
    }

    let did = match &state.appview {
        Some(appview) => resolve_with_appview(&appview.url, &handle).await?,
        None => state
            .handles
            .resolve(&handle)
            .await
            .ok()
            .flatten()
            .ok_or_else(unable_to_resolve)?,
    };
    XrpcResponse::json(&json!({ "did": did }))
}

/// Asks the AppView to resolve a handle, as the reference does when one is
/// configured.
async fn resolve_with_appview(url: &str, handle: &str) -> Result<String, XrpcError> {
    #[derive(Deserialize)]
    struct Answer {
        did: String,
    }
    let client = XrpcClient::new(url).map_err(|_| unable_to_resolve())?;
    let answer: Answer = client
        .query(RESOLVE_HANDLE, &json!({ "handle": handle }))
        .await
        .map_err(|_| unable_to_resolve())?;
    atp_syntax::Did::new(&answer.did).map_err(|_| unable_to_resolve())?;
    Ok(answer.did)
}

async fn update_handle(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    #[derive(Deserialize)]
    struct Input {
        handle: String,
    }
    let caller = require_access(&state, &req, Access::Standard)?;
    let input: Input = req.json().await?;
    set_handle(&state, &caller.did, &input.handle, Requester::Account).await?;
    Ok(XrpcResponse::empty())
}

/// Gives the account `did` the handle `handle` everywhere, for
/// `requester` (the account itself, or the operator): checks it against
/// the handle policy ([`crate::handle_policy`]) and that no other account
/// holds it, submits a PLC operation changing the DID document's handle
/// (signed with the service's rotation key), stores it, and appends an
/// `#identity` event (whose failure is only logged, as in the reference:
/// repeating the update emits it again).
pub async fn set_handle(
    state: &PdsState,
    did: &str,
    handle: &str,
    requester: Requester,
) -> Result<(), XrpcError> {
    account_by_did(state, did.to_owned())
        .await
        .map_err(|_| XrpcError::invalid_request("Account not found"))?;
    let domains = &state.storage.config().handle_domains;
    let handle = state
        .handle_policy
        .check_for_did(handle, domains, requester, did, &state.handles)
        .await?;

    // Pessimistic check before touching the directory; the account store
    // enforces it again when the handle is written.
    let accounts = Arc::clone(state.storage.accounts());
    let lookup = handle.clone();
    let holder = run_blocking(move || accounts.account_by_handle(&lookup))
        .await
        .map_err(to_xrpc)?;
    if holder.is_some_and(|holder| holder.did != did) {
        return Err(handle_taken(&handle));
    }

    if !did.starts_with("did:plc:") {
        return Err(XrpcError::invalid_request(
            "DID is not properly configured for handle",
        ));
    }
    let last = last_operation(state, did).await?;
    let op = UpdateBuilder::from_last(&last)
        .and_then(|update| update.handle(&handle))
        .and_then(|update| update.sign(&state.keys.plc_rotation_key))
        .map_err(plc_refusal)?;
    state
        .directory
        .submit(did, &op)
        .await
        .map_err(plc_refusal)?;

    let accounts = Arc::clone(state.storage.accounts());
    let (owner, new_handle) = (did.to_owned(), handle.clone());
    run_blocking(move || accounts.update_handle(&owner, &new_handle))
        .await
        .map_err(|err| match err {
            Error::HandleTaken(_) => handle_taken(&handle),
            other => to_xrpc(other),
        })?;
    sequence_identity(state, did, Some(handle)).await;
    Ok(())
}

fn handle_taken(handle: &str) -> XrpcError {
    XrpcError::invalid_request(format!("Handle already taken: {handle}"))
        .with_name("HandleNotAvailable")
}

/// Records an `#identity` event; a failure is logged, not returned (the
/// caller can repeat the update to emit it again, as in the reference).
async fn sequence_identity(state: &PdsState, did: &str, handle: Option<String>) {
    let sequencer = state.sequencer.clone();
    let owner = did.to_owned();
    let outcome =
        run_blocking(move || sequencer.sequence_identity(&owner, handle.as_deref())).await;
    if let Err(err) = outcome {
        tracing::error!(%did, error = %err, "failed to sequence an identity event");
    }
}

// ------------------------------------------------------- PLC operations

/// The last operation of `did` in the directory.
async fn last_operation(state: &PdsState, did: &str) -> Result<Operation, XrpcError> {
    state.directory.last_op(did).await.map_err(plc_refusal)
}

/// A `did:plc` failure as an answer: what the directory refused (4xx) or
/// what our own checks of the operation found become 400s with the reason;
/// an unreachable directory is an internal error.
fn plc_refusal(err: atp_did_plc::Error) -> XrpcError {
    match err {
        atp_did_plc::Error::Directory { status, message } if (400..500).contains(&status) => {
            XrpcError::invalid_request(message)
        }
        atp_did_plc::Error::Http(_)
        | atp_did_plc::Error::InvalidUrl(_)
        | atp_did_plc::Error::Directory { .. }
        | atp_did_plc::Error::Storage(_)
        | atp_did_plc::Error::Server(_) => to_xrpc(Error::Plc(err)),
        other => XrpcError::invalid_request(other.to_string()),
    }
}

/// The account's repository signing key as `did:key`.
async fn signing_did_key(state: &PdsState, did: &str) -> Result<String, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let owner = did.to_owned();
    run_blocking(move || Ok(actors.open(&owner)?.signing_key()?.did_key()))
        .await
        .map_err(to_xrpc)
}

async fn get_recommended_did_credentials(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let signing_key = signing_did_key(&state, &caller.did).await?;
    let account = caller.account(&state).await.ok();
    let config = state.storage.config();
    let mut rotation_keys = Vec::new();
    if let Some(recovery) = &config.recovery_did_key {
        rotation_keys.push(recovery.clone());
    }
    rotation_keys.push(state.keys.plc_rotation_key.did_key());
    let mut body = json!({
        "rotationKeys": rotation_keys,
        "verificationMethods": { ATPROTO_VERIFICATION_METHOD: signing_key },
        "services": {
            ATPROTO_PDS_SERVICE: {
                "type": ATPROTO_PDS_TYPE,
                "endpoint": config.public_url,
            }
        },
    });
    if let Some(account) = account {
        body["alsoKnownAs"] = json!([format!("at://{}", account.handle)]);
    }
    XrpcResponse::json(&body)
}

/// The caller of the PLC signature methods: a session of the account's
/// password, or of a taken-down account.
fn require_plc_signature_access(state: &PdsState, req: &XrpcRequest) -> Result<Caller, XrpcError> {
    let token = bearer_token(req.head()).ok_or_else(missing_auth)?;
    let claims = state
        .tokens
        .verify_access(token, &PLC_SIGNATURE_SCOPES)
        .map_err(|err| XrpcError::from_session_auth(&err))?;
    Ok(Caller {
        did: claims.sub.as_str().to_owned(),
        scope: claims.scope,
    })
}

async fn request_plc_operation_signature(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_plc_signature_access(&state, &req)?;
    let account = account_by_did(&state, caller.did.clone())
        .await
        .map_err(|_| XrpcError::invalid_request("account not found"))?;
    super::email::mail_token_with(&state, &account, PLC_OPERATION, plc_operation_mail).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignPlcOperationInput {
    token: Option<String>,
    rotation_keys: Option<Vec<String>>,
    also_known_as: Option<Vec<String>>,
    verification_methods: Option<Value>,
    services: Option<Value>,
}

async fn sign_plc_operation(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_plc_signature_access(&state, &req)?;
    let input: SignPlcOperationInput = req.json().await?;
    let Some(token) = input.token.filter(|token| !token.is_empty()) else {
        return Err(XrpcError::invalid_request(
            "email confirmation token required to sign PLC operations",
        ));
    };
    let did = caller.did;
    let accounts = Arc::clone(state.storage.accounts());
    let lifetime = state.storage.config().email_token_lifetime;
    let owner = did.clone();
    run_blocking(move || {
        accounts.consume_email_token(&owner, EmailTokenPurpose::PlcOperation, &token, lifetime)
    })
    .await
    .map_err(to_xrpc)?;

    let verification_methods = input
        .verification_methods
        .map(|value| {
            serde_json::from_value::<BTreeMap<String, String>>(value).map_err(|err| {
                XrpcError::invalid_request(format!("Invalid verificationMethods: {err}"))
            })
        })
        .transpose()?;
    let services = input
        .services
        .map(|value| {
            serde_json::from_value::<BTreeMap<String, Service>>(value)
                .map_err(|err| XrpcError::invalid_request(format!("Invalid services: {err}")))
        })
        .transpose()?;

    let last = last_operation(&state, &did).await?;
    if last.unsigned.operation_type() == atp_did_plc::OperationType::Tombstone {
        return Err(XrpcError::invalid_request("Did is tombstoned"));
    }
    let mut update = UpdateBuilder::from_last(&last).map_err(plc_refusal)?;
    if let Some(keys) = input.rotation_keys {
        update = update.rotation_keys(keys);
    }
    if let Some(aka) = input.also_known_as {
        update = update.also_known_as(aka);
    }
    if let Some(methods) = verification_methods {
        update = update.verification_methods(methods);
    }
    if let Some(services) = services {
        update = update.services(services);
    }
    let operation = update
        .sign(&state.keys.plc_rotation_key)
        .map_err(plc_refusal)?;
    XrpcResponse::json(&json!({ "operation": operation.to_json_value() }))
}

async fn submit_plc_operation(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    #[derive(Deserialize)]
    struct Input {
        operation: Value,
    }
    let caller = require_access(&state, &req, Access::Standard)?;
    let input: Input = req.json().await?;
    let did = caller.did;
    let invalid = || XrpcError::invalid_request("Invalid operation");
    let operation = Operation::from_json_value(&input.operation).map_err(|_| invalid())?;
    let UnsignedOperation::Plc(body) = &operation.unsigned else {
        return Err(invalid());
    };

    let rotation_key = state.keys.plc_rotation_key.did_key();
    if !body.rotation_keys.contains(&rotation_key) {
        return Err(XrpcError::invalid_request(
            "Rotation keys do not include server's rotation key",
        ));
    }
    let pds = body.services.get(ATPROTO_PDS_SERVICE);
    if pds.map(|service| service.service_type.as_str()) != Some(ATPROTO_PDS_TYPE) {
        return Err(XrpcError::invalid_request(
            "Incorrect type on atproto_pds service",
        ));
    }
    if pds.map(|service| service.endpoint.as_str())
        != Some(state.storage.config().public_url.as_str())
    {
        return Err(XrpcError::invalid_request(
            "Incorrect endpoint on atproto_pds service",
        ));
    }
    let signing_key = signing_did_key(&state, &did).await?;
    if body.verification_methods.get(ATPROTO_VERIFICATION_METHOD) != Some(&signing_key) {
        return Err(XrpcError::invalid_request("Incorrect signing key"));
    }
    if let Ok(account) = account_by_did(&state, did.clone()).await {
        let expected = format!("at://{}", account.handle);
        if body.also_known_as.first() != Some(&expected) {
            return Err(XrpcError::invalid_request(
                "Incorrect handle in alsoKnownAs",
            ));
        }
    }

    state
        .directory
        .submit(&did, &operation)
        .await
        .map_err(plc_refusal)?;
    sequence_identity(&state, &did, None).await;
    Ok(XrpcResponse::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_handles_are_the_domains_and_their_subdomains() {
        let domains = vec![".test".to_owned(), ".pds.example.com".to_owned()];
        assert!(is_service_handle("alice.test", &domains));
        assert!(is_service_handle("test", &domains));
        assert!(is_service_handle("bob.pds.example.com", &domains));
        assert!(is_service_handle("pds.example.com", &domains));
        assert!(!is_service_handle("alice.example.com", &domains));
        assert!(!is_service_handle("alicetest.com", &domains));
    }
}
