//! An account's own life cycle: `com.atproto.server.deactivateAccount`,
//! `activateAccount`, `checkAccountStatus`, `requestAccountDelete`,
//! `deleteAccount` and `getServiceAuth`.
//!
//! Deactivation, activation and deletion append `#account` events to the
//! event log. Deleting an account needs its password and the token mailed
//! by `requestAccountDelete`; it removes the account's rows (sessions, app
//! passwords, tokens) first, so the account stops existing at once, then
//! its repository store and key.

use std::sync::Arc;

use atp_xrpc::auth::{create_service_jwt, AuthScope, ServiceJwtParams};
use atp_xrpc::server::{bearer_token, Router, XrpcError, XrpcRequest, XrpcResponse};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::auth::{missing_auth, require_access, Access, Caller};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::account::Account;
use crate::db::run_blocking;
use crate::email_token::EmailTokenPurpose;
use crate::error::Error;
use crate::mailer::Mail;

/// Longest password the reference accepts from a login form (longer ones
/// predate its limit and must be reset).
const OLD_PASSWORD_MAX_LENGTH: usize = 512;

/// Methods a service token may never be requested for: account management
/// that must be called on the PDS directly (the reference's list).
pub const PROTECTED_METHODS: &[&str] = &[
    "com.atproto.admin.sendEmail",
    "com.atproto.identity.requestPlcOperationSignature",
    "com.atproto.identity.signPlcOperation",
    "com.atproto.identity.updateHandle",
    "com.atproto.server.activateAccount",
    "com.atproto.server.confirmEmail",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.deactivateAccount",
    "com.atproto.server.getAccountInviteCodes",
    "com.atproto.server.getSession",
    "com.atproto.server.listAppPasswords",
    "com.atproto.server.requestAccountDelete",
    "com.atproto.server.requestEmailConfirmation",
    "com.atproto.server.requestEmailUpdate",
    "com.atproto.server.revokeAppPassword",
    "com.atproto.server.updateEmail",
];

/// Whether a service token for `lxm` needs a session with privileged
/// access (the main password or a privileged app password): direct
/// messages and account creation elsewhere, as in the reference.
pub fn is_privileged_method(lxm: &str) -> bool {
    lxm.starts_with("chat.bsky.") || lxm == "com.atproto.server.createAccount"
}

/// The stored account of `did` for a caller whose token is valid, refused
/// as the reference's `checkTakedown` does: 403 `AccountNotFound` if it is
/// gone, 401 `AccountTakedown` if it is taken down.
pub async fn require_not_taken_down(state: &PdsState, did: &str) -> Result<Account, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let owner = did.to_owned();
    let account = run_blocking(move || accounts.account_by_did(&owner))
        .await
        .map_err(to_xrpc)?
        .ok_or_else(|| XrpcError::forbidden("Account not found").with_name("AccountNotFound"))?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    Ok(account)
}

/// Checks the bearer access token against an explicit list of scopes.
fn require_scopes(
    state: &PdsState,
    req: &XrpcRequest,
    scopes: &[AuthScope],
) -> Result<Caller, XrpcError> {
    let token = bearer_token(req.head()).ok_or_else(missing_auth)?;
    let claims = state
        .tokens
        .verify_access(token, scopes)
        .map_err(|err| XrpcError::from_session_auth(&err))?;
    Ok(Caller {
        did: claims.sub.as_str().to_owned(),
        scope: claims.scope,
    })
}

/// A JSON body that may also be absent (an empty body reads as `{}`).
async fn optional_json<T: DeserializeOwned + Default>(
    req: &mut XrpcRequest,
) -> Result<T, XrpcError> {
    let bytes = req.bytes().await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|err| XrpcError::invalid_request(format!("Invalid JSON body: {err}")))
}

/// The status name of an inactive account, as `#account` events carry it.
fn inactive_status(account: &Account) -> Option<&'static str> {
    if account.takedown_ref.is_some() {
        Some("takendown")
    } else if account.deactivated_at.is_some() {
        Some("deactivated")
    } else {
        None
    }
}

/// Appends the `#account` event of the account's current status.
pub async fn sequence_account_status(state: &PdsState, account: &Account) -> Result<(), XrpcError> {
    let sequencer = state.sequencer.clone();
    let did = account.did.clone();
    let status = inactive_status(account);
    run_blocking(move || sequencer.sequence_account(&did, status.is_none(), status))
        .await
        .map_err(to_xrpc)?;
    Ok(())
}

/// The `#identity` and `#sync` events announcing a reactivated account
/// (the reference sends them with its `#account` event).
fn sequence_activation_extras(state: &PdsState, account: &Account) -> crate::Result<()> {
    state
        .sequencer
        .sequence_identity(&account.did, Some(&account.handle))?;
    let store = state.storage.actors().open(&account.did)?;
    let Some(root) = store.root()? else {
        return Ok(());
    };
    let bytes = store
        .database()
        .read(|tx| crate::block_store::get_block(tx, &root.cid))?;
    if let Some(bytes) = bytes {
        state
            .sequencer
            .sequence_sync(&account.did, &root.cid, &bytes, &root.rev)?;
    }
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DeactivateInput {
    delete_after: Option<String>,
}

async fn deactivate_account(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_scopes(&state, &req, &[AuthScope::Access, AuthScope::Takendown])?;
    let input: DeactivateInput = optional_json(&mut req).await?;
    let delete_after = input
        .delete_after
        .map(|text| {
            DateTime::parse_from_rfc3339(&text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| XrpcError::invalid_request("deleteAfter must be a valid datetime"))
        })
        .transpose()?;
    let accounts = Arc::clone(state.storage.accounts());
    let did = caller.did.clone();
    let account = run_blocking(move || accounts.deactivate(&did, delete_after))
        .await
        .map_err(to_xrpc)?;
    sequence_account_status(&state, &account).await?;
    Ok(XrpcResponse::empty())
}

/// Why the DID document does not point to this PDS, if it does not (the
/// reference's checks before an account may be activated).
async fn did_document_problem(state: &PdsState, did: &str) -> Result<Option<String>, XrpcError> {
    let data = if did.starts_with("did:plc:") {
        match state.directory.data(did).await {
            Ok(data) => data,
            Err(err) => return Ok(Some(format!("Could not resolve DID: {err}"))),
        }
    } else {
        return Ok(Some("Could not resolve DID".to_owned()));
    };
    let rotation_key = state.keys.plc_rotation_key.did_key();
    let has_rotation_key = data["rotationKeys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|key| key.as_str() == Some(&rotation_key)));
    if !has_rotation_key {
        return Ok(Some(
            "Server rotation key not included in PLC DID data".to_owned(),
        ));
    }
    let endpoint = data["services"]["atproto_pds"]["endpoint"].as_str();
    if endpoint != Some(state.storage.config().public_url.as_str()) {
        return Ok(Some(
            "DID document atproto_pds service endpoint does not match PDS public url".to_owned(),
        ));
    }
    let signing = data["verificationMethods"]["atproto"].as_str();
    let expected = account_signing_key(state, did).await?.did_key();
    if signing != Some(expected.as_str()) {
        return Ok(Some(
            "DID document verification method does not match expected signing key".to_owned(),
        ));
    }
    Ok(None)
}

async fn account_signing_key(
    state: &PdsState,
    did: &str,
) -> Result<atp_crypto::SigningKey, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let did = did.to_owned();
    run_blocking(move || actors.open(&did)?.signing_key())
        .await
        .map_err(to_xrpc)
}

async fn activate_account(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    if let Some(problem) = did_document_problem(&state, &caller.did).await? {
        return Err(XrpcError::invalid_request(problem));
    }
    let not_found = || XrpcError::invalid_request("user not found").with_name("AccountNotFound");
    let accounts = Arc::clone(state.storage.accounts());
    let did = caller.did.clone();
    let account = run_blocking(move || match accounts.account_by_did(&did)? {
        // A taken-down account cannot reactivate itself.
        Some(account) if account.takedown_ref.is_none() => accounts.activate(&did).map(Some),
        _ => Ok(None),
    })
    .await
    .map_err(to_xrpc)?
    .ok_or_else(not_found)?;
    sequence_account_status(&state, &account).await?;
    let extras = Arc::clone(&state);
    run_blocking(move || sequence_activation_extras(&extras, &account))
        .await
        .map_err(to_xrpc)?;
    Ok(XrpcResponse::empty())
}

/// Counts from the account's store for `checkAccountStatus`.
struct StoreCounts {
    commit: String,
    rev: String,
    blocks: u64,
    records: u64,
    expected_blobs: u64,
    imported_blobs: u64,
}

fn store_counts(state: &PdsState, did: &str) -> crate::Result<StoreCounts> {
    let store = state.storage.actors().open(did)?;
    let root = store
        .root()?
        .ok_or_else(|| Error::Corrupt(format!("repository of {did} has no head")))?;
    Ok(StoreCounts {
        commit: root.cid.to_string(),
        rev: root.rev,
        blocks: store.block_store().count()?,
        records: store.record_count()?,
        expected_blobs: crate::blob_index::record_blob_count(&store)?,
        imported_blobs: crate::blob_index::blob_count(&store)?,
    })
}

async fn check_account_status(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let counts = {
        let state = Arc::clone(&state);
        let did = caller.did.clone();
        run_blocking(move || store_counts(&state, &did))
            .await
            .map_err(to_xrpc)?
    };
    let activated = {
        let accounts = Arc::clone(state.storage.accounts());
        let did = caller.did.clone();
        run_blocking(move || accounts.account_by_did(&did))
            .await
            .map_err(to_xrpc)?
            .is_some_and(|account| account.deactivated_at.is_none())
    };
    let valid_did = did_document_problem(&state, &caller.did).await?.is_none();
    XrpcResponse::json(&json!({
        "activated": activated,
        "validDid": valid_did,
        "repoCommit": counts.commit,
        "repoRev": counts.rev,
        "repoBlocks": counts.blocks,
        "indexedRecords": counts.records,
        "privateStateValues": 0,
        "expectedBlobs": counts.expected_blobs,
        "importedBlobs": counts.imported_blobs,
    }))
}

/// The mail carrying an account-deletion token.
fn delete_account_mail(to: &str, token: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Account Deletion Requested".to_owned(),
        body: format!(
            "A request was made to delete your account. To confirm it, enter this \
             code where you asked: {token}\n\n\
             If you did not ask for this, ignore this message; your account stays as it is.\n"
        ),
    }
}

async fn request_account_delete(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    let account = require_not_taken_down(&state, &caller.did).await?;
    if account.email.is_empty() {
        return Err(XrpcError::invalid_request(
            "account does not have an email address",
        ));
    }
    let accounts = Arc::clone(state.storage.accounts());
    let mailer = Arc::clone(&state.mailer);
    run_blocking(move || {
        let token = accounts.issue_email_token(&account.did, EmailTokenPurpose::DeleteAccount)?;
        mailer.send(&delete_account_mail(&account.email, &token))
    })
    .await
    .map_err(to_xrpc)?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct DeleteInput {
    did: String,
    password: String,
    token: String,
}

/// Removes an account for good: rows first (it stops existing at once),
/// then the `#account` event, then the store, key and blobs, as the
/// reference orders it. Returns whether the account existed.
pub async fn delete_account_everywhere(state: &PdsState, did: &str) -> Result<bool, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let owner = did.to_owned();
    let existed = run_blocking(move || accounts.delete_account(&owner))
        .await
        .map_err(to_xrpc)?;
    let sequencer = state.sequencer.clone();
    let owner = did.to_owned();
    let sequenced =
        run_blocking(move || sequencer.sequence_account(&owner, false, Some("deleted"))).await;
    let actors = Arc::clone(state.storage.actors());
    let owner = did.to_owned();
    let had_store = run_blocking(move || actors.remove(&owner))
        .await
        .map_err(to_xrpc)?;
    state.blobs.delete_all(did).await.map_err(to_xrpc)?;
    sequenced.map_err(to_xrpc)?;
    Ok(existed || had_store)
}

async fn delete_account(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: DeleteInput = req.json().await?;
    if input.password.len() > OLD_PASSWORD_MAX_LENGTH {
        return Err(XrpcError::auth_required(
            "Password too long. Consider resetting your password.",
        ));
    }
    let accounts = Arc::clone(state.storage.accounts());
    let lifetime = state.storage.config().email_token_lifetime;
    let did = input.did.clone();
    let verdict = run_blocking(move || {
        if accounts.account_by_did(&did)?.is_none() {
            return Ok(Err(XrpcError::invalid_request("account not found")));
        }
        match accounts.verify_password(&did, &input.password) {
            Ok(()) => {}
            Err(Error::InvalidPassword) => {
                return Ok(Err(XrpcError::auth_required("Invalid did or password")))
            }
            Err(err) => return Err(err),
        }
        match accounts.consume_email_token(
            &did,
            EmailTokenPurpose::DeleteAccount,
            &input.token,
            lifetime,
        ) {
            Ok(()) => Ok(Ok(())),
            Err(err @ (Error::InvalidToken | Error::ExpiredToken)) => Ok(Err(to_xrpc(err))),
            Err(err) => Err(err),
        }
    })
    .await
    .map_err(to_xrpc)?;
    verdict?;
    delete_account_everywhere(&state, &input.did).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct ServiceAuthParams {
    aud: String,
    exp: Option<i64>,
    lxm: Option<String>,
}

/// Whether `aud` is a DID of an atproto method, or such a DID with a
/// `#service` fragment.
fn valid_audience(aud: &str) -> bool {
    let (did, fragment) = match aud.split_once('#') {
        Some((did, fragment)) => (did, Some(fragment)),
        None => (aud, None),
    };
    let did_ok = (did.starts_with("did:plc:") || did.starts_with("did:web:"))
        && atp_syntax::Did::new(did).is_ok();
    let fragment_ok = fragment.map_or(true, |f| {
        !f.is_empty()
            && f.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._~:-".contains(c))
    });
    did_ok && fragment_ok
}

async fn get_service_auth(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_scopes(
        &state,
        &req,
        &[
            AuthScope::Access,
            AuthScope::AppPassPrivileged,
            AuthScope::AppPass,
            AuthScope::Takendown,
        ],
    )?;
    let params: ServiceAuthParams = req.params()?;
    if !valid_audience(&params.aud) {
        return Err(XrpcError::invalid_request(
            "aud must be a valid atproto DID or did#serviceId reference",
        ));
    }
    let lxm = params.lxm.as_deref();
    if caller.scope == AuthScope::Takendown && lxm != Some("com.atproto.server.createAccount") {
        return Err(XrpcError::invalid_request("Bad token scope").with_name("InvalidToken"));
    }
    let privileged = matches!(
        caller.scope,
        AuthScope::Access | AuthScope::AppPassPrivileged
    );
    if let Some(method) = lxm {
        if is_privileged_method(method) && !privileged {
            return Err(XrpcError::invalid_request(format!(
                "insufficient access to request a service auth token for the following method: {method}"
            )));
        }
    }
    // `exp == 0` counts as absent, as in the reference.
    let exp = params.exp.filter(|&exp| exp != 0);
    if let Some(exp) = exp {
        let diff_ms = exp
            .saturating_mul(1000)
            .saturating_sub(Utc::now().timestamp_millis());
        if diff_ms < 0 {
            return Err(
                XrpcError::invalid_request("expiration is in past").with_name("BadExpiration")
            );
        } else if diff_ms > 3_600_000 {
            return Err(XrpcError::invalid_request(
                "cannot request a token with an expiration more than an hour in the future",
            )
            .with_name("BadExpiration"));
        } else if lxm.is_none() && diff_ms > 60_000 {
            return Err(XrpcError::invalid_request(
                "cannot request a method-less token with an expiration more than a minute in the future",
            )
            .with_name("BadExpiration"));
        }
    }
    if let Some(method) = lxm {
        if PROTECTED_METHODS.contains(&method) {
            return Err(XrpcError::invalid_request(format!(
                "cannot request a service auth token for the following protected method: {method}"
            )));
        }
    }
    let key = account_signing_key(&state, &caller.did).await?;
    let mut jwt_params = ServiceJwtParams::new(caller.did.clone(), params.aud.clone(), lxm);
    jwt_params.exp = exp;
    let token = create_service_jwt(&key, &jwt_params).map_err(XrpcError::internal)?;
    XrpcResponse::json(&json!({ "token": token }))
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.procedure(
        "com.atproto.server.deactivateAccount",
        with_state(state, deactivate_account),
    )?;
    router.procedure(
        "com.atproto.server.activateAccount",
        with_state(state, activate_account),
    )?;
    router.query(
        "com.atproto.server.checkAccountStatus",
        with_state(state, check_account_status),
    )?;
    router.procedure(
        "com.atproto.server.requestAccountDelete",
        with_state(state, request_account_delete),
    )?;
    router.procedure(
        "com.atproto.server.deleteAccount",
        with_state(state, delete_account),
    )?;
    router.query(
        "com.atproto.server.getServiceAuth",
        with_state(state, get_service_auth),
    )?;
    Ok(())
}
