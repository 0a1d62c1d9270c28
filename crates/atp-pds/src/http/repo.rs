//! `com.atproto.repo` record methods: `createRecord`, `putRecord`,
//! `deleteRecord`, `applyWrites`, `getRecord`, `listRecords`,
//! `describeRepo` and `importRepo`, answering as the reference PDS.
//!
//! Writes go through [`crate::repo_writer`]: the caller needs a session
//! (any access token), `repo` must name the caller's own account (DID or
//! handle), and a deactivated or taken-down account cannot write.

use std::sync::Arc;

use atp_crypto::Cid;
use atp_repo_mst::car::CarLimits;
use atp_repo_mst::repo::{CommitData, WriteAction};
use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use super::auth::{require_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::account::{Account, AccountStore};
use crate::actor_store::RecordEntry;
use crate::db::run_blocking;
use crate::repo_writer::{
    lock_repo, prepare_create, prepare_delete, prepare_update, submit, PreparedWrite,
    WriteRequest, MAX_WRITES,
};

/// Largest JSON body of the record-writing methods (the reference's
/// `jsonLimit` for them).
pub const MAX_WRITE_BODY_BYTES: usize = 1_000_000;

/// Most records one `listRecords` page holds.
pub const MAX_LIST_LIMIT: usize = 100;

/// `listRecords`' page size when none is asked for.
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// The account named by `repo` (a DID or a handle), whatever its status.
pub async fn find_account(state: &PdsState, repo: &str) -> Result<Option<Account>, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let repo = repo.to_owned();
    run_blocking(move || {
        if repo.starts_with("did:") {
            accounts.account_by_did(&repo)
        } else {
            accounts.account_by_handle(&repo)
        }
    })
    .await
    .map_err(to_xrpc)
}

/// The account a write into `repo` goes to, checked as the reference does:
/// it must exist, be neither taken down nor deactivated, and be the
/// caller's.
async fn writable_account(
    state: &PdsState,
    req: &XrpcRequest,
    repo: &str,
) -> Result<Account, XrpcError> {
    let caller = require_access(state, req, Access::Standard)?;
    let account = find_account(state, repo)
        .await?
        .ok_or_else(|| XrpcError::forbidden("Account not found").with_name("AccountNotFound"))?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    if account.deactivated_at.is_some() {
        return Err(
            XrpcError::auth_required("Account is deactivated").with_name("AccountDeactivated")
        );
    }
    if account.did != caller.did {
        return Err(
            XrpcError::auth_required("Authentication Required").with_name("AuthenticationRequired")
        );
    }
    Ok(account)
}

fn parse_cid(text: &str) -> Result<Cid, XrpcError> {
    atp_crypto::parse_cid(text)
        .map_err(|_| XrpcError::invalid_request(format!("Invalid CID: {text}")))
}

fn parse_optional_cid(text: Option<&str>) -> Result<Option<Cid>, XrpcError> {
    text.map(parse_cid).transpose()
}

/// `null` and absent told apart: `None` absent, `Some(None)` null.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn commit_json(commit: &CommitData) -> Value {
    json!({"cid": commit.cid.to_string(), "rev": commit.rev})
}

fn write_json(write: &PreparedWrite, commit: Option<&CommitData>) -> Value {
    let mut body = Map::new();
    body.insert("uri".to_owned(), json!(write.uri));
    if let Some(cid) = &write.cid {
        body.insert("cid".to_owned(), json!(cid.to_string()));
    }
    if let Some(commit) = commit {
        body.insert("commit".to_owned(), commit_json(commit));
    }
    if let Some(status) = write.validation_status {
        body.insert("validationStatus".to_owned(), json!(status.as_str()));
    }
    Value::Object(body)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRecordInput {
    repo: String,
    collection: String,
    rkey: Option<String>,
    validate: Option<bool>,
    record: Value,
    swap_commit: Option<String>,
}

async fn create_record(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: CreateRecordInput = req.json().await?;
    let account = writable_account(&state, &req, &input.repo).await?;
    let swap_commit = parse_optional_cid(input.swap_commit.as_deref())?;
    let write = prepare_create(
        &account.did,
        &input.collection,
        input.rkey.as_deref(),
        &input.record,
        input.validate,
    )?;
    let request = WriteRequest::Create {
        write: write.clone(),
        replace_backlinks: input.validate != Some(false),
    };
    let outcome = submit(&state, &account.did, request, swap_commit).await?;
    XrpcResponse::json(&write_json(&write, outcome.commit.as_ref()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutRecordInput {
    repo: String,
    collection: String,
    rkey: String,
    validate: Option<bool>,
    record: Value,
    #[serde(default, deserialize_with = "present")]
    swap_record: Option<Option<String>>,
    swap_commit: Option<String>,
}

async fn put_record(state: Arc<PdsState>, mut req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let input: PutRecordInput = req.json().await?;
    let account = writable_account(&state, &req, &input.repo).await?;
    let swap_commit = parse_optional_cid(input.swap_commit.as_deref())?;
    let swap_record = match &input.swap_record {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(Some(parse_cid(text)?)),
    };
    // An update if the record exists when the write is applied, else a
    // create (the checks are the same); the same record again commits
    // nothing.
    let write = prepare_update(
        &account.did,
        &input.collection,
        &input.rkey,
        &input.record,
        input.validate,
    )?
    .with_swap_record(swap_record);
    let outcome = submit(
        &state,
        &account.did,
        WriteRequest::Put(write.clone()),
        swap_commit,
    )
    .await?;
    XrpcResponse::json(&write_json(&write, outcome.commit.as_ref()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteRecordInput {
    repo: String,
    collection: String,
    rkey: String,
    swap_record: Option<String>,
    swap_commit: Option<String>,
}

async fn delete_record(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: DeleteRecordInput = req.json().await?;
    let account = writable_account(&state, &req, &input.repo).await?;
    let swap_commit = parse_optional_cid(input.swap_commit.as_deref())?;
    let swap_record = parse_optional_cid(input.swap_record.as_deref())?;
    let did = account.did;
    let write = prepare_delete(&did, &input.collection, &input.rkey)?
        .with_swap_record(swap_record.map(Some));
    // Deleting what is not there changes nothing (no commit).
    let outcome = submit(&state, &did, WriteRequest::Delete(write), swap_commit).await?;
    match &outcome.commit {
        Some(commit) => XrpcResponse::json(&json!({"commit": commit_json(commit)})),
        None => XrpcResponse::json(&json!({})),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplyWritesInput {
    repo: String,
    validate: Option<bool>,
    writes: Vec<Value>,
    swap_commit: Option<String>,
}

#[derive(Deserialize)]
struct WriteOp {
    #[serde(rename = "$type")]
    kind: Option<String>,
    collection: String,
    rkey: Option<String>,
    value: Option<Value>,
}

const CREATE: &str = "com.atproto.repo.applyWrites#create";
const UPDATE: &str = "com.atproto.repo.applyWrites#update";
const DELETE: &str = "com.atproto.repo.applyWrites#delete";

fn prepare_op(did: &str, op: Value, validate: Option<bool>) -> Result<PreparedWrite, XrpcError> {
    let op: WriteOp = serde_json::from_value(op)
        .map_err(|err| XrpcError::invalid_request(format!("Invalid write: {err}")))?;
    let kind = op.kind.unwrap_or_default();
    let record = || {
        op.value
            .as_ref()
            .ok_or_else(|| XrpcError::invalid_request("Write is missing its value"))
    };
    let rkey = || {
        op.rkey
            .as_deref()
            .ok_or_else(|| XrpcError::invalid_request("Write is missing its rkey"))
    };
    match kind.as_str() {
        CREATE => prepare_create(did, &op.collection, op.rkey.as_deref(), record()?, validate),
        UPDATE => prepare_update(did, &op.collection, rkey()?, record()?, validate),
        DELETE => prepare_delete(did, &op.collection, rkey()?),
        other => Err(XrpcError::invalid_request(format!(
            "Action not supported: {other}"
        ))),
    }
}

fn result_json(write: &PreparedWrite) -> Value {
    let kind = match write.action {
        WriteAction::Create => "com.atproto.repo.applyWrites#createResult",
        WriteAction::Update => "com.atproto.repo.applyWrites#updateResult",
        WriteAction::Delete => return json!({"$type": "com.atproto.repo.applyWrites#deleteResult"}),
    };
    let mut body = match write_json(write, None) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    body.insert("$type".to_owned(), json!(kind));
    Value::Object(body)
}

async fn apply_writes(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let input: ApplyWritesInput = req.json().await?;
    let account = writable_account(&state, &req, &input.repo).await?;
    if input.writes.len() > MAX_WRITES {
        return Err(XrpcError::invalid_request("Too many writes. Max: 200"));
    }
    let did = account.did;
    let writes = input
        .writes
        .into_iter()
        .map(|op| prepare_op(&did, op, input.validate))
        .collect::<Result<Vec<_>, _>>()?;
    let swap_commit = parse_optional_cid(input.swap_commit.as_deref())?;
    let commit = crate::repo_writer::apply_writes(&state, &did, writes.clone(), swap_commit).await?;
    let results: Vec<Value> = writes.iter().map(result_json).collect();
    XrpcResponse::json(&json!({"commit": commit_json(&commit), "results": results}))
}

#[derive(Deserialize)]
struct GetRecordParams {
    repo: String,
    collection: String,
    rkey: String,
    cid: Option<String>,
}

/// The DID of an active account named by `repo`, as the reference's
/// `getDidForActor` (deactivated and taken-down accounts are left out).
async fn active_did(state: &PdsState, repo: &str) -> Result<Option<String>, XrpcError> {
    Ok(find_account(state, repo)
        .await?
        .filter(|account| account.deactivated_at.is_none() && account.takedown_ref.is_none())
        .map(|account| account.did))
}

fn record_value(bytes: &[u8]) -> Result<Value, XrpcError> {
    let ipld = atp_crypto::dagcbor::decode_ipld(bytes)
        .map_err(|err| to_xrpc(crate::Error::Crypto(err)))?;
    atp_crypto::data_model::ipld_to_json(&ipld).map_err(|err| to_xrpc(crate::Error::Crypto(err)))
}

async fn get_record(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: GetRecordParams = req.params()?;
    let Some(did) = active_did(&state, &params.repo).await? else {
        // Not hosted here: with an AppView configured, the reference
        // forwards the call (here when the caller names the service).
        if state.appview.is_some() && super::proxy::proxy_header(&req).is_some() {
            return super::proxy::forward(&state, req).await;
        }
        return Err(XrpcError::invalid_request("Could not locate record"));
    };
    let uri = format!("at://{did}/{}/{}", params.collection, params.rkey);
    let not_found = || {
        XrpcError::invalid_request(format!("Could not locate record: {uri}"))
            .with_name("RecordNotFound")
    };
    let actors = Arc::clone(state.storage.actors());
    let (collection, rkey) = (params.collection.clone(), params.rkey.clone());
    let found = run_blocking(move || actors.open(&did)?.get_record(&collection, &rkey))
        .await
        .map_err(to_xrpc)?;
    let Some((entry, bytes)) = found else {
        return Err(not_found());
    };
    if entry.takedown_ref.is_some() {
        return Err(not_found());
    }
    if let Some(cid) = &params.cid {
        if *cid != entry.cid.to_string() {
            return Err(not_found());
        }
    }
    XrpcResponse::json(&json!({
        "uri": uri,
        "cid": entry.cid.to_string(),
        "value": record_value(&bytes)?,
    }))
}

#[derive(Deserialize)]
struct ListRecordsParams {
    repo: String,
    collection: String,
    limit: Option<i64>,
    cursor: Option<String>,
    reverse: Option<bool>,
}

async fn list_records(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: ListRecordsParams = req.params()?;
    let limit = params.limit.unwrap_or(DEFAULT_LIST_LIMIT as i64);
    if !(1..=MAX_LIST_LIMIT as i64).contains(&limit) {
        return Err(XrpcError::invalid_request(format!(
            "limit must be between 1 and {MAX_LIST_LIMIT}"
        )));
    }
    let Some(did) = active_did(&state, &params.repo).await? else {
        return Err(XrpcError::invalid_request(format!(
            "Could not find repo: {}",
            params.repo
        )));
    };
    let actors = Arc::clone(state.storage.actors());
    let collection = params.collection.clone();
    let cursor = params.cursor.clone();
    let reverse = params.reverse.unwrap_or(false);
    let rows = run_blocking(move || {
        actors.open(&did)?.list_record_values(
            &collection,
            limit as usize,
            cursor.as_deref(),
            reverse,
        )
    })
    .await
    .map_err(to_xrpc)?;
    let mut records = Vec::with_capacity(rows.len());
    for (entry, bytes) in &rows {
        records.push(json!({
            "uri": entry.uri,
            "cid": entry.cid.to_string(),
            "value": record_value(bytes)?,
        }));
    }
    let mut body = Map::new();
    body.insert("records".to_owned(), Value::Array(records));
    if let Some((last, _)) = rows.last() {
        body.insert("cursor".to_owned(), json!(last.rkey));
    }
    XrpcResponse::json(&Value::Object(body))
}

#[derive(Deserialize)]
struct DescribeRepoParams {
    repo: String,
}

/// The handle a DID document claims: its first `at://` alias.
fn handle_in_doc(doc: &Value) -> Option<String> {
    doc.get("alsoKnownAs")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|aka| aka.strip_prefix("at://"))
        .map(str::to_owned)
}

async fn describe_repo(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: DescribeRepoParams = req.params()?;
    let repo = params.repo;
    let Some(account) = find_account(&state, &repo).await? else {
        return Err(
            XrpcError::invalid_request(format!("Could not find repo for DID: {repo}"))
                .with_name("RepoNotFound"),
        );
    };
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::invalid_request(format!("Repo has been takendown: {repo}"))
                .with_name("RepoTakendown"),
        );
    }
    if account.deactivated_at.is_some() {
        return Err(
            XrpcError::invalid_request(format!("Repo has been deactivated: {repo}"))
                .with_name("RepoDeactivated"),
        );
    }
    let doc = state
        .directory
        .resolve(&account.did)
        .await
        .map_err(|err| XrpcError::invalid_request(format!("Could not resolve DID: {err}")))?;
    let handle_is_correct = handle_in_doc(&doc).as_deref() == Some(account.handle.as_str());
    let actors = Arc::clone(state.storage.actors());
    let did = account.did.clone();
    let collections = run_blocking(move || actors.open(&did)?.collections())
        .await
        .map_err(to_xrpc)?;
    XrpcResponse::json(&json!({
        "handle": account.handle,
        "did": account.did,
        "didDoc": doc,
        "collections": collections,
        "handleIsCorrect": handle_is_correct,
    }))
}

async fn import_repo(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Full)?;
    let account = caller.account(&state).await?;
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::auth_required("Account has been taken down").with_name("AccountTakedown")
        );
    }
    let body = req.bytes().await?;
    let limit = usize::try_from(state.blob_upload_limit).unwrap_or(usize::MAX);
    let limits = CarLimits {
        max_total_bytes: state.blob_upload_limit,
        ..CarLimits::REPOSITORY
    };
    if body.len() > limit {
        return Err(XrpcError::payload_too_large(format!(
            "request entity too large (limit {limit} bytes)"
        )));
    }
    let repo = lock_repo(&state, &account.did).await?;
    repo.import(&state, body.to_vec(), limits).await?;
    Ok(XrpcResponse::empty())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router
        .procedure(
            "com.atproto.repo.createRecord",
            with_state(state, create_record),
        )?
        .max_body_bytes(MAX_WRITE_BODY_BYTES);
    router
        .procedure("com.atproto.repo.putRecord", with_state(state, put_record))?
        .max_body_bytes(MAX_WRITE_BODY_BYTES);
    router
        .procedure(
            "com.atproto.repo.deleteRecord",
            with_state(state, delete_record),
        )?
        .max_body_bytes(MAX_WRITE_BODY_BYTES);
    router
        .procedure(
            "com.atproto.repo.applyWrites",
            with_state(state, apply_writes),
        )?
        .max_body_bytes(MAX_WRITE_BODY_BYTES);
    router.query("com.atproto.repo.getRecord", with_state(state, get_record))?;
    router.query(
        "com.atproto.repo.listRecords",
        with_state(state, list_records),
    )?;
    router.query(
        "com.atproto.repo.describeRepo",
        with_state(state, describe_repo),
    )?;
    let import_limit = usize::try_from(state.blob_upload_limit).unwrap_or(usize::MAX);
    router
        .procedure(
            "com.atproto.repo.importRepo",
            with_state(state, import_repo),
        )?
        .max_body_bytes(import_limit);
    Ok(())
}
