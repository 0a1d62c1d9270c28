//! `com.atproto.admin` methods, behind the admin password (HTTP basic auth
//! `admin:<password>`), with the reference PDS's answers.
//!
//! * Accounts: `getAccountInfo`, `getAccountInfos`, `updateAccountHandle`
//!   (which also updates the DID document through a PLC operation signed
//!   with the service's rotation key), `updateAccountPassword` (revokes
//!   the account's sessions), `updateAccountEmail`, `deleteAccount`.
//! * Moderation: `updateSubjectStatus` / `getSubjectStatus` for accounts
//!   (takedown revokes the account's sessions and blocks its login;
//!   deactivation), records and blobs (takedown references).
//! * `searchAccounts` (by a part of the email, in DID order with a
//!   cursor) and `sendEmail` (through the service's mailer).
//! * Invites: `enableAccountInvites`, `disableAccountInvites`,
//!   `disableInviteCodes`, `getInviteCodes`.

use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use chrono::{TimeZone, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::account_status::{delete_account_everywhere, sequence_account_status};
use super::auth::require_admin;
use super::errors::to_xrpc;
use super::invites::{invite_code_json, ADMIN_ACCOUNT};
use super::state::PdsState;
use super::with_state;
use crate::account::Account;
use crate::db::run_blocking;
use crate::handle_policy::Requester;
use crate::invite::{InviteCodeCursor, InviteCodeSort};
use crate::mailer::Mail;
use crate::time;

/// Longest password an account may be given (the reference's limit).
pub const NEW_PASSWORD_MAX_LENGTH: usize = 256;

/// `$type` of an account subject.
const REPO_REF: &str = "com.atproto.admin.defs#repoRef";
/// `$type` of a record subject.
const STRONG_REF: &str = "com.atproto.repo.strongRef";
/// `$type` of a blob subject.
const REPO_BLOB_REF: &str = "com.atproto.admin.defs#repoBlobRef";

/// Checks the admin password, refusing as the reference's admin-token
/// check does (401 `AuthenticationRequired`).
pub fn require_admin_password(state: &PdsState, req: &XrpcRequest) -> Result<(), XrpcError> {
    require_admin(state, req).map_err(|_| XrpcError::auth_required("Authentication Required"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> Result<T, XrpcError> {
    run_blocking(f).await.map_err(to_xrpc)
}

/// An account as `com.atproto.admin.defs#accountView`, with its invite
/// codes and the code it was created with.
fn account_view(state: &PdsState, account: &Account) -> crate::Result<Value> {
    let accounts = state.storage.accounts();
    let invites: Vec<Value> = accounts
        .invite_codes_for(&account.did)?
        .iter()
        .map(invite_code_json)
        .collect();
    let mut view = Map::new();
    view.insert("did".to_owned(), json!(account.did));
    view.insert("handle".to_owned(), json!(account.handle));
    view.insert("email".to_owned(), json!(account.email));
    view.insert(
        "indexedAt".to_owned(),
        json!(time::format(&account.created_at)),
    );
    if let Some(confirmed) = &account.email_confirmed_at {
        view.insert(
            "emailConfirmedAt".to_owned(),
            json!(time::format(confirmed)),
        );
    }
    if let Some(invited_by) = accounts.invited_by(&account.did)? {
        view.insert("invitedBy".to_owned(), invite_code_json(&invited_by));
    }
    view.insert("invites".to_owned(), json!(invites));
    view.insert(
        "invitesDisabled".to_owned(),
        json!(account.invites_disabled),
    );
    if let Some(deactivated) = &account.deactivated_at {
        view.insert("deactivatedAt".to_owned(), json!(time::format(deactivated)));
    }
    Ok(Value::Object(view))
}

#[derive(Deserialize)]
struct DidParams {
    did: String,
}

async fn get_account_info(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let params: DidParams = req.params()?;
    let shared = Arc::clone(&state);
    let view = blocking(
        move || match shared.storage.accounts().account_by_did(&params.did)? {
            Some(account) => account_view(&shared, &account).map(Some),
            None => Ok(None),
        },
    )
    .await?
    .ok_or_else(|| XrpcError::invalid_request("Account not found").with_name("NotFound"))?;
    XrpcResponse::json(&view)
}

#[derive(Deserialize)]
struct DidsParams {
    dids: Vec<String>,
}

async fn get_account_infos(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let params: DidsParams = req.params()?;
    let shared = Arc::clone(&state);
    let infos = blocking(move || {
        shared
            .storage
            .accounts()
            .accounts_by_dids(&params.dids)?
            .iter()
            .map(|account| account_view(&shared, account))
            .collect::<crate::Result<Vec<Value>>>()
    })
    .await?;
    XrpcResponse::json(&json!({ "infos": infos }))
}

/// Default and largest page of `searchAccounts` (its lexicon's).
const SEARCH_DEFAULT_LIMIT: u32 = 50;
/// Largest page of `searchAccounts`.
const SEARCH_MAX_LIMIT: u32 = 100;

/// `LIKE` pattern matching text that contains `needle` (its `%`, `_` and
/// `\` taken literally).
fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The DIDs of up to `limit` accounts, in DID order after `cursor`, whose
/// email contains `email` (lower-cased) when given. Deactivated and
/// taken-down accounts are included.
fn search_account_dids(
    state: &PdsState,
    email: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
) -> crate::Result<Vec<String>> {
    let pattern = email.map(|email| contains_pattern(&email.to_lowercase()));
    state.storage.accounts().database().read(|tx| {
        let mut stmt = tx.prepare_cached(
            "SELECT did FROM account
             WHERE (?1 IS NULL OR email LIKE ?1 ESCAPE '\\')
               AND (?2 IS NULL OR did > ?2)
             ORDER BY did LIMIT ?3",
        )?;
        let dids = stmt
            .query_map(params![pattern, cursor, limit], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(dids)
    })
}

#[derive(Deserialize)]
struct SearchAccountsParams {
    email: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `searchAccounts`: accounts whose email contains the given text (all
/// without one), in DID order, with the last DID as the cursor when the
/// page is full (the reference's answer).
async fn search_accounts(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let params: SearchAccountsParams = req.params()?;
    let limit = params
        .limit
        .unwrap_or(SEARCH_DEFAULT_LIMIT)
        .clamp(1, SEARCH_MAX_LIMIT);
    let email = params.email.filter(|email| !email.is_empty());
    let cursor = params.cursor.filter(|cursor| !cursor.is_empty());
    let shared = Arc::clone(&state);
    let (dids, views) = blocking(move || {
        let dids = search_account_dids(&shared, email.as_deref(), cursor.as_deref(), limit)?;
        let views = shared
            .storage
            .accounts()
            .accounts_by_dids(&dids)?
            .iter()
            .map(|account| account_view(&shared, account))
            .collect::<crate::Result<Vec<Value>>>()?;
        Ok((dids, views))
    })
    .await?;
    let mut body = json!({ "accounts": views });
    if dids.len() == limit as usize {
        if let Some(last) = dids.last() {
            body["cursor"] = json!(last);
        }
    }
    XrpcResponse::json(&body)
}

/// The subject of an operator's email without one (the reference's).
pub const DEFAULT_ADMIN_EMAIL_SUBJECT: &str = "Message via your PDS";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendEmailInput {
    recipient_did: String,
    content: String,
    subject: Option<String>,
}

/// `sendEmail`: mails `content` to the account's address through the
/// service's mailer (deactivated and taken-down accounts included).
async fn send_email(state: Arc<PdsState>, mut req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: SendEmailInput = req.json().await?;
    let accounts = Arc::clone(state.storage.accounts());
    let did = input.recipient_did.clone();
    let account = blocking(move || accounts.account_by_did(&did))
        .await?
        .ok_or_else(|| XrpcError::invalid_request("Recipient not found"))?;
    if account.email.is_empty() {
        return Err(XrpcError::invalid_request(
            "account does not have an email address",
        ));
    }
    let mail = Mail {
        to: account.email,
        subject: input
            .subject
            .unwrap_or_else(|| DEFAULT_ADMIN_EMAIL_SUBJECT.to_owned()),
        body: input.content,
    };
    let mailer = Arc::clone(&state.mailer);
    blocking(move || mailer.send(&mail)).await?;
    XrpcResponse::json(&json!({ "sent": true }))
}

/// Gives the account `did` the handle `handle` everywhere, as the
/// operator: any valid handle, reserved names included (see
/// [`super::identity::set_handle`]).
pub async fn set_account_handle(
    state: &PdsState,
    did: &str,
    handle: &str,
) -> Result<(), XrpcError> {
    super::identity::set_handle(state, did, handle, Requester::Operator).await
}

#[derive(Deserialize)]
struct UpdateHandleInput {
    did: String,
    handle: String,
}

async fn update_account_handle(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: UpdateHandleInput = req.json().await?;
    set_account_handle(&state, &input.did, &input.handle).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct UpdatePasswordInput {
    did: String,
    password: String,
}

async fn update_account_password(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: UpdatePasswordInput = req.json().await?;
    if input.password.len() > NEW_PASSWORD_MAX_LENGTH {
        return Err(XrpcError::invalid_request("Invalid password length."));
    }
    let accounts = Arc::clone(state.storage.accounts());
    // Also revokes the account's refresh tokens.
    blocking(move || accounts.update_password(&input.did, &input.password)).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct UpdateEmailInput {
    account: String,
    email: String,
}

async fn update_account_email(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: UpdateEmailInput = req.json().await?;
    let accounts = Arc::clone(state.storage.accounts());
    let name = input.account.clone();
    let account = blocking(move || {
        if name.starts_with("did:") {
            accounts.account_by_did(&name)
        } else {
            accounts.account_by_handle(&name)
        }
    })
    .await?
    .ok_or_else(|| {
        XrpcError::invalid_request(format!("Account does not exist: {}", input.account))
    })?;
    let accounts = Arc::clone(state.storage.accounts());
    blocking(move || accounts.replace_email(&account.did, &input.email)).await?;
    Ok(XrpcResponse::empty())
}

async fn delete_account(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: DidParams = req.json().await?;
    delete_account_everywhere(&state, &input.did).await?;
    Ok(XrpcResponse::empty())
}

/// A `statusAttr`: `{applied, ref?}`.
#[derive(Deserialize, Clone, Debug)]
struct StatusAttr {
    applied: bool,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

fn status_attr_json(applied: bool, reference: Option<&str>) -> Value {
    match reference {
        Some(reference) => json!({ "applied": applied, "ref": reference }),
        None => json!({ "applied": applied }),
    }
}

#[derive(Deserialize)]
struct UpdateSubjectStatusInput {
    subject: Value,
    takedown: Option<Value>,
    deactivated: Option<StatusAttr>,
}

fn subject_field<'a>(subject: &'a Value, key: &str) -> Result<&'a str, XrpcError> {
    subject[key]
        .as_str()
        .ok_or_else(|| XrpcError::invalid_request(format!("Invalid subject: missing {key}")))
}

/// The repository DID of an `at://` URI.
fn uri_authority(uri: &str) -> Result<String, XrpcError> {
    let rest = uri
        .strip_prefix("at://")
        .ok_or_else(|| XrpcError::invalid_request(format!("Invalid at-uri: {uri}")))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    atp_syntax::Did::new(authority)
        .map_err(|_| XrpcError::invalid_request(format!("Invalid at-uri: {uri}")))?;
    Ok(authority.to_owned())
}

/// Sets (or clears) the takedown reference of the record `uri` of `did`'s
/// store; `false` if the store or record does not exist.
fn set_record_takedown(
    state: &PdsState,
    did: &str,
    uri: String,
    takedown_ref: Option<String>,
) -> crate::Result<bool> {
    if !state.storage.actors().exists(did) {
        return Ok(false);
    }
    let store = state.storage.actors().open(did)?;
    store.database().write(|tx| {
        Ok(tx.execute(
            "UPDATE record SET takedown_ref = ?2 WHERE uri = ?1",
            params![uri, takedown_ref],
        )? > 0)
    })
}

async fn update_subject_status(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: UpdateSubjectStatusInput = req.json().await?;
    let takedown: Option<StatusAttr> = input
        .takedown
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|err| XrpcError::invalid_request(format!("Invalid takedown: {err}")))?;
    if takedown.as_ref().is_some_and(|t| t.applied)
        && input.deactivated.as_ref().is_some_and(|d| !d.applied)
    {
        return Err(XrpcError::invalid_request(
            "Cannot activate and takedown an account at the same time",
        ));
    }
    let subject_type = input.subject["$type"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if let Some(takedown) = &takedown {
        let takedown_ref = takedown
            .applied
            .then(|| takedown.reference.clone().unwrap_or_else(time::now_string));
        match subject_type.as_str() {
            REPO_REF => {
                let did = subject_field(&input.subject, "did")?.to_owned();
                let accounts = Arc::clone(state.storage.accounts());
                // Also revokes the account's sessions when applied.
                let account =
                    blocking(move || accounts.set_takedown(&did, takedown_ref.as_deref())).await?;
                sequence_account_status(&state, &account).await?;
            }
            STRONG_REF => {
                let uri = subject_field(&input.subject, "uri")?.to_owned();
                let did = uri_authority(&uri)?;
                let shared = Arc::clone(&state);
                blocking(move || set_record_takedown(&shared, &did, uri, takedown_ref)).await?;
            }
            REPO_BLOB_REF => {
                let did = subject_field(&input.subject, "did")?.to_owned();
                let cid = atp_crypto::parse_cid(subject_field(&input.subject, "cid")?)
                    .map_err(|_| XrpcError::invalid_request("Invalid subject: bad cid"))?;
                let shared = Arc::clone(&state);
                let owner = did.clone();
                let applied = takedown_ref.is_some();
                let known = blocking(move || {
                    if !shared.storage.actors().exists(&owner) {
                        return Ok(false);
                    }
                    let store = shared.storage.actors().open(&owner)?;
                    crate::blob_index::set_takedown(&store, &cid, takedown_ref.as_deref())
                })
                .await?;
                // The bytes stop (or resume) being served, as the
                // reference quarantines them; a blob the store does not
                // hold is not an error.
                if known {
                    let moved = if applied {
                        state.blobs.quarantine(&did, &cid).await
                    } else {
                        state.blobs.unquarantine(&did, &cid).await
                    };
                    moved.map_err(to_xrpc)?;
                }
            }
            other => {
                return Err(XrpcError::invalid_request(format!(
                    "Invalid subject ({other})"
                )))
            }
        }
    }
    if subject_type == REPO_REF {
        let did = subject_field(&input.subject, "did")?.to_owned();
        if let Some(deactivated) = &input.deactivated {
            let accounts = Arc::clone(state.storage.accounts());
            let applied = deactivated.applied;
            let account = blocking(move || {
                if applied {
                    accounts.deactivate(&did, None)
                } else {
                    accounts.activate(&did)
                }
            })
            .await?;
            sequence_account_status(&state, &account).await?;
        } else if takedown.is_none() {
            let accounts = Arc::clone(state.storage.accounts());
            if let Some(account) = blocking(move || accounts.account_by_did(&did)).await? {
                sequence_account_status(&state, &account).await?;
            }
        }
    }
    let mut body = json!({ "subject": input.subject });
    if let Some(takedown) = input.takedown {
        body["takedown"] = takedown;
    }
    XrpcResponse::json(&body)
}

#[derive(Deserialize)]
struct SubjectStatusParams {
    did: Option<String>,
    uri: Option<String>,
    blob: Option<String>,
}

/// The takedown reference of one record or blob row: `None` if the row
/// does not exist, `Some(None)` if it is not taken down.
type ContentTakedown = Option<Option<String>>;

fn content_takedown(
    state: &PdsState,
    did: &str,
    sql: &'static str,
    key: &str,
) -> crate::Result<Option<(ContentTakedown, Option<String>)>> {
    if !state.storage.actors().exists(did) {
        return Ok(None);
    }
    let store = state.storage.actors().open(did)?;
    let row: Option<(Option<String>, Option<String>)> = store.database().read(|tx| {
        Ok(tx
            .query_row(sql, [key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?)
    })?;
    Ok(row.map(|(takedown, cid)| (Some(takedown), cid)))
}

async fn get_subject_status(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let params: SubjectStatusParams = req.params()?;
    let not_found = || XrpcError::invalid_request("Subject not found").with_name("NotFound");
    let body = if let Some(blob) = params.blob {
        let did = params.did.ok_or_else(|| {
            XrpcError::invalid_request("Must provide a did to request blob state")
        })?;
        let shared = Arc::clone(&state);
        let (owner, key) = (did.clone(), blob.clone());
        let found = blocking(move || {
            content_takedown(
                &shared,
                &owner,
                "SELECT takedown_ref, cid FROM blob WHERE cid = ?1",
                &key,
            )
        })
        .await?;
        let Some((Some(takedown), _)) = found else {
            return Err(not_found());
        };
        json!({
            "subject": { "$type": REPO_BLOB_REF, "did": did, "cid": blob },
            "takedown": status_attr_json(takedown.is_some(), takedown.as_deref()),
        })
    } else if let Some(uri) = params.uri {
        let did = uri_authority(&uri)?;
        let shared = Arc::clone(&state);
        let key = uri.clone();
        let found = blocking(move || {
            content_takedown(
                &shared,
                &did,
                "SELECT takedown_ref, cid FROM record WHERE uri = ?1",
                &key,
            )
        })
        .await?;
        let Some((Some(takedown), Some(cid))) = found else {
            return Err(not_found());
        };
        json!({
            "subject": { "$type": STRONG_REF, "uri": uri, "cid": cid },
            "takedown": status_attr_json(takedown.is_some(), takedown.as_deref()),
        })
    } else if let Some(did) = params.did {
        let accounts = Arc::clone(state.storage.accounts());
        let lookup = did.clone();
        let account = blocking(move || accounts.account_by_did(&lookup))
            .await?
            .ok_or_else(not_found)?;
        json!({
            "subject": { "$type": REPO_REF, "did": did },
            "takedown": status_attr_json(
                account.takedown_ref.is_some(),
                account.takedown_ref.as_deref(),
            ),
            "deactivated": status_attr_json(account.deactivated_at.is_some(), None),
        })
    } else {
        return Err(XrpcError::invalid_request("No provided subject"));
    };
    XrpcResponse::json(&body)
}

#[derive(Deserialize)]
struct AccountInvitesInput {
    account: String,
}

async fn set_account_invites(
    state: &PdsState,
    mut req: XrpcRequest,
    disabled: bool,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(state, &req)?;
    let input: AccountInvitesInput = req.json().await?;
    let accounts = Arc::clone(state.storage.accounts());
    blocking(move || accounts.set_invites_disabled(&input.account, disabled)).await?;
    Ok(XrpcResponse::empty())
}

async fn enable_account_invites(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    set_account_invites(&state, req, false).await
}

async fn disable_account_invites(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    set_account_invites(&state, req, true).await
}

#[derive(Deserialize, Default)]
struct DisableInviteCodesInput {
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
}

async fn disable_invite_codes(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let input: DisableInviteCodesInput = req.json().await?;
    if input
        .accounts
        .iter()
        .any(|account| account == ADMIN_ACCOUNT)
    {
        return Err(XrpcError::invalid_request(
            "cannot disable admin invite codes",
        ));
    }
    let accounts = Arc::clone(state.storage.accounts());
    blocking(move || accounts.disable_invite_codes(&input.codes, &input.accounts)).await?;
    Ok(XrpcResponse::empty())
}

#[derive(Deserialize)]
struct InviteCodesParams {
    sort: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn malformed_cursor() -> XrpcError {
    XrpcError::invalid_request("Malformed cursor")
}

/// Parses a `primary::secondary` cursor for `sort`.
fn parse_invite_cursor(sort: InviteCodeSort, text: &str) -> Result<InviteCodeCursor, XrpcError> {
    let parts: Vec<&str> = text.split("::").collect();
    let [primary, secondary] = parts.as_slice() else {
        return Err(malformed_cursor());
    };
    if primary.is_empty() || secondary.is_empty() {
        return Err(malformed_cursor());
    }
    let code = (*secondary).to_owned();
    match sort {
        InviteCodeSort::Recent => {
            let millis: i64 = primary.parse().map_err(|_| malformed_cursor())?;
            let at = Utc
                .timestamp_millis_opt(millis)
                .single()
                .ok_or_else(malformed_cursor)?;
            Ok(InviteCodeCursor::Recent(at, code))
        }
        InviteCodeSort::Usage => {
            let uses: u32 = primary.parse().map_err(|_| malformed_cursor())?;
            Ok(InviteCodeCursor::Usage(uses, code))
        }
    }
}

async fn get_invite_codes(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    require_admin_password(&state, &req)?;
    let params: InviteCodesParams = req.params()?;
    let sort = match params.sort.as_deref().unwrap_or("recent") {
        "recent" => InviteCodeSort::Recent,
        "usage" => InviteCodeSort::Usage,
        other => {
            return Err(XrpcError::invalid_request(format!(
                "unknown sort method: {other}"
            )))
        }
    };
    let limit = params.limit.unwrap_or(100).clamp(1, 500) as usize;
    let cursor = params
        .cursor
        .as_deref()
        .map(|text| parse_invite_cursor(sort, text))
        .transpose()?;
    let accounts = Arc::clone(state.storage.accounts());
    let codes = blocking(move || accounts.list_invite_codes(sort, limit, cursor.as_ref())).await?;
    let next = codes.last().map(|last| match sort {
        InviteCodeSort::Recent => {
            format!("{}::{}", last.created_at.timestamp_millis(), last.code)
        }
        InviteCodeSort::Usage => format!("{}::{}", last.uses.len(), last.code),
    });
    let mut body = json!({ "codes": codes.iter().map(invite_code_json).collect::<Vec<_>>() });
    if let Some(next) = next {
        body["cursor"] = json!(next);
    }
    XrpcResponse::json(&body)
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.query(
        "com.atproto.admin.getAccountInfo",
        with_state(state, get_account_info),
    )?;
    router.query(
        "com.atproto.admin.getAccountInfos",
        with_state(state, get_account_infos),
    )?;
    router.procedure(
        "com.atproto.admin.updateAccountHandle",
        with_state(state, update_account_handle),
    )?;
    router.procedure(
        "com.atproto.admin.updateAccountPassword",
        with_state(state, update_account_password),
    )?;
    router.procedure(
        "com.atproto.admin.updateAccountEmail",
        with_state(state, update_account_email),
    )?;
    router.procedure(
        "com.atproto.admin.deleteAccount",
        with_state(state, delete_account),
    )?;
    router.procedure(
        "com.atproto.admin.updateSubjectStatus",
        with_state(state, update_subject_status),
    )?;
    router.query(
        "com.atproto.admin.getSubjectStatus",
        with_state(state, get_subject_status),
    )?;
    router.procedure(
        "com.atproto.admin.enableAccountInvites",
        with_state(state, enable_account_invites),
    )?;
    router.procedure(
        "com.atproto.admin.disableAccountInvites",
        with_state(state, disable_account_invites),
    )?;
    router.procedure(
        "com.atproto.admin.disableInviteCodes",
        with_state(state, disable_invite_codes),
    )?;
    router.query(
        "com.atproto.admin.getInviteCodes",
        with_state(state, get_invite_codes),
    )?;
    router.query(
        "com.atproto.admin.searchAccounts",
        with_state(state, search_accounts),
    )?;
    router.procedure("com.atproto.admin.sendEmail", with_state(state, send_email))?;
    Ok(())
}
