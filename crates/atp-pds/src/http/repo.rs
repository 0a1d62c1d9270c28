//! `com.atproto.repo` record methods: `createRecord`, `putRecord`,
//! `deleteRecord`, `applyWrites`, `getRecord`, `listRecords`,
//! `describeRepo` and `importRepo`, answering as the reference PDS.
//!
//! Writes go through [`crate::repo_writer`]: the caller needs a session
//! (any access token), `repo` must name the caller's own account (DID or
//! handle), and a deactivated or taken-down account cannot write.

use std::sync::Arc;

use atp_crypto::{Cid, Ipld};
use atp_repo_mst::car::CarLimits;
use atp_repo_mst::repo::{CommitData, WriteAction};
use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::auth::{require_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::account::{Account, AccountStore};
use crate::db::run_blocking;
use crate::repo_writer::{
    lock_repo, prepare_create, prepare_delete, prepare_update, submit, PreparedWrite, WriteRequest,
    MAX_WRITES,
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
    // A cached account is answered here, without a trip to the blocking
    // pool.
    if let Some(account) = accounts.cached_account_by_did(repo) {
        return Ok(Some(account));
    }
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

/// The answer of `createRecord` and `putRecord`, written without building
/// a `serde_json::Value`: the fields are declared in the order a `Value`
/// object sorts its keys, so the bytes are those of [`write_json`].
#[derive(Serialize)]
struct WriteAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    cid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<CommitAnswer>,
    uri: String,
    #[serde(rename = "validationStatus", skip_serializing_if = "Option::is_none")]
    validation_status: Option<&'static str>,
}

/// `{cid, rev}` of a commit, as [`commit_json`] writes it.
#[derive(Serialize)]
struct CommitAnswer {
    cid: String,
    rev: String,
}

impl WriteAnswer {
    /// What is answered for `write` (taken before the write is handed to
    /// the repository writer, so the record is not copied).
    fn of(write: &PreparedWrite) -> Self {
        WriteAnswer {
            cid: write.cid.as_ref().map(Cid::to_string),
            commit: None,
            uri: write.uri.clone(),
            validation_status: write.validation_status.map(|status| status.as_str()),
        }
    }

    /// The answer once committed as `commit` (`None`: nothing was
    /// written, as for a no-op `putRecord`).
    fn with_commit(mut self, commit: Option<CommitData>) -> Self {
        self.commit = commit.map(|commit| CommitAnswer {
            cid: commit.cid.to_string(),
            rev: commit.rev,
        });
        self
    }
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
    let answer = WriteAnswer::of(&write);
    let request = WriteRequest::Create {
        write,
        replace_backlinks: input.validate != Some(false),
    };
    let outcome = submit(&state, &account.did, request, swap_commit).await?;
    XrpcResponse::json(&answer.with_commit(outcome.commit))
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
    let answer = WriteAnswer::of(&write);
    let outcome = submit(&state, &account.did, WriteRequest::Put(write), swap_commit).await?;
    XrpcResponse::json(&answer.with_commit(outcome.commit))
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
    let commit =
        crate::repo_writer::apply_writes(&state, &did, writes.clone(), swap_commit).await?;
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

/// The account named by `repo` (a DID or a handle) if it is active, as
/// the reference's `getDidForActor` (deactivated and taken-down accounts
/// are left out). Blocking: call it inside [`run_blocking`], together with
/// the store read that follows, so that a read makes one trip to the
/// blocking pool.
fn active_account(accounts: &AccountStore, repo: &str) -> crate::Result<Option<Account>> {
    let account = if repo.starts_with("did:") {
        accounts.account_by_did(repo)?
    } else {
        accounts.account_by_handle(repo)?
    };
    Ok(
        account
            .filter(|account| account.deactivated_at.is_none() && account.takedown_ref.is_none()),
    )
}

fn record_value(bytes: &[u8]) -> Result<Value, XrpcError> {
    let ipld = decode_record(bytes)?;
    atp_crypto::data_model::ipld_to_json(&ipld).map_err(|err| to_xrpc(crate::Error::Crypto(err)))
}

fn decode_record(bytes: &[u8]) -> Result<Ipld, XrpcError> {
    atp_crypto::dagcbor::decode_ipld(bytes).map_err(|err| to_xrpc(crate::Error::Crypto(err)))
}

/// A decoded record written as JSON straight from its [`Ipld`] value,
/// with the output of [`atp_crypto::data_model::ipld_to_json`] (links as
/// `{"$link"}`, bytes as `{"$bytes"}`, map keys sorted) but without
/// building a `serde_json::Value` first. Values that function refuses
/// (floats, integers beyond 64 bits, nesting past
/// [`atp_crypto::dagcbor::MAX_DEPTH`]) fail to serialize; the caller then
/// asks it for its error.
struct RecordJson<'a>(&'a Ipld, usize);

impl Serialize for RecordJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap, SerializeSeq};
        let RecordJson(value, depth) = *self;
        let deeper = || {
            if depth >= atp_crypto::dagcbor::MAX_DEPTH {
                Err(S::Error::custom("value nests too deep"))
            } else {
                Ok(depth + 1)
            }
        };
        match value {
            Ipld::Null => serializer.serialize_unit(),
            Ipld::Bool(b) => serializer.serialize_bool(*b),
            Ipld::Integer(i) => serializer.serialize_i64(
                i64::try_from(*i).map_err(|_| S::Error::custom("integer out of range"))?,
            ),
            Ipld::Float(_) => Err(S::Error::custom("float in a record")),
            Ipld::String(text) => serializer.serialize_str(text),
            Ipld::Bytes(bytes) => {
                use base64::Engine as _;
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(
                    "$bytes",
                    &base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes),
                )?;
                map.end()
            }
            Ipld::Link(cid) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("$link", &cid.to_string())?;
                map.end()
            }
            Ipld::List(items) => {
                let depth = deeper()?;
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&RecordJson(item, depth))?;
                }
                seq.end()
            }
            Ipld::Map(entries) => {
                let depth = deeper()?;
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, item) in entries {
                    map.serialize_entry(key, &RecordJson(item, depth))?;
                }
                map.end()
            }
        }
    }
}

/// One record as `getRecord` and `listRecords` show it. The fields are
/// declared in the order `serde_json::Value` objects sort their keys, so
/// the bytes are those of the `json!` form.
#[derive(Serialize)]
struct RecordView<'a> {
    cid: &'a str,
    uri: &'a str,
    value: RecordJson<'a>,
}

/// A `listRecords` page (fields in sorted order, as [`RecordView`]).
#[derive(Serialize)]
struct RecordPage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
    records: Vec<RecordView<'a>>,
}

/// `body` as a JSON answer, or, if it cannot be written (a value
/// [`RecordJson`] refuses), the answer `fallback` builds, which carries
/// the data model's own error.
fn json_or_else<T: Serialize>(
    body: &T,
    fallback: impl FnOnce() -> Result<XrpcResponse, XrpcError>,
) -> Result<XrpcResponse, XrpcError> {
    match serde_json::to_vec(body) {
        Ok(bytes) => Ok(XrpcResponse::bytes(JSON_CONTENT_TYPE, bytes)),
        Err(_) => fallback(),
    }
}

/// Content type of JSON answers (as [`XrpcResponse::json`] sets it).
const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Slots for the store reads of `getRecord` and `listRecords`: as many as
/// the machine has CPUs (at least 2). Those reads are short and CPU-bound
/// (pages mostly in the OS cache); letting more run at once than there
/// are CPUs only adds blocking-pool threads, context switches, and reader
/// connections opened beyond a store's idle pool and closed again after
/// one read (each open reads the schema and prepares its statements
/// anew). Waiting requests queue here, on the async side.
fn store_read_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cpus.max(2))
    })
}

/// Slots for store reads run on the async worker thread itself: one fewer
/// than the machine's CPUs (at least one), so that however slow a read
/// is (pages not in the OS cache), one worker is always free for the
/// other connections.
fn inline_read_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cpus.saturating_sub(1).max(1))
    })
}

/// Runs the short store read `read`: on this worker thread when an
/// [`inline_read_slots`] slot is free (a hand-off to the blocking pool and
/// back costs two thread wake-ups and context switches, more than such a
/// read itself), else on the blocking pool once a slot of
/// [`store_read_slots`] is free.
async fn store_read<T, F>(read: F) -> Result<T, XrpcError>
where
    T: Send + 'static,
    F: FnOnce() -> crate::Result<T> + Send + 'static,
{
    if let Ok(_inline) = inline_read_slots().try_acquire() {
        return read().map_err(to_xrpc);
    }
    let _slot = store_read_slots()
        .acquire()
        .await
        .map_err(|_| XrpcError::internal("store read slots closed"))?;
    run_blocking(read).await.map_err(to_xrpc)
}

async fn get_record(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: GetRecordParams = req.params()?;
    let accounts = Arc::clone(state.storage.accounts());
    let actors = Arc::clone(state.storage.actors());
    let (repo, collection, rkey) = (
        params.repo.clone(),
        params.collection.clone(),
        params.rkey.clone(),
    );
    let lookup = store_read(move || {
        let Some(account) = active_account(&accounts, &repo)? else {
            return Ok(None);
        };
        let record = actors.open(&account.did)?.get_record(&collection, &rkey)?;
        Ok(Some((account.did, record)))
    })
    .await?;
    // `None`: no active account is named by `repo`.
    let Some((did, found)) = lookup else {
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
    let Some((entry, bytes)) = found else {
        return Err(not_found());
    };
    if entry.takedown_ref.is_some() {
        return Err(not_found());
    }
    let cid = entry.cid.to_string();
    if params.cid.as_ref().is_some_and(|wanted| *wanted != cid) {
        return Err(not_found());
    }
    let value = decode_record(&bytes)?;
    let view = RecordView {
        cid: &cid,
        uri: &uri,
        value: RecordJson(&value, 0),
    };
    json_or_else(&view, || {
        XrpcResponse::json(&json!({
            "uri": uri,
            "cid": cid,
            "value": record_value(&bytes)?,
        }))
    })
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
    let accounts = Arc::clone(state.storage.accounts());
    let actors = Arc::clone(state.storage.actors());
    let repo = params.repo.clone();
    let collection = params.collection.clone();
    let cursor = params.cursor.clone();
    let reverse = params.reverse.unwrap_or(false);
    let rows = store_read(move || {
        let Some(account) = active_account(&accounts, &repo)? else {
            return Ok(None);
        };
        actors
            .open(&account.did)?
            .list_record_values(&collection, limit as usize, cursor.as_deref(), reverse)
            .map(Some)
    })
    .await?;
    let Some(rows) = rows else {
        return Err(XrpcError::invalid_request(format!(
            "Could not find repo: {}",
            params.repo
        )));
    };
    let mut decoded = Vec::with_capacity(rows.len());
    for (entry, bytes) in &rows {
        decoded.push((entry.cid.to_string(), decode_record(bytes)?));
    }
    let page = RecordPage {
        cursor: rows.last().map(|(last, _)| last.rkey.as_str()),
        records: rows
            .iter()
            .zip(&decoded)
            .map(|((entry, _), (cid, value))| RecordView {
                cid,
                uri: &entry.uri,
                value: RecordJson(value, 0),
            })
            .collect(),
    };
    json_or_else(&page, || {
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
    })
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use atp_crypto::data_model::{ipld_to_json, json_to_ipld};
    use base64::Engine as _;

    use super::*;

    /// What `RecordJson` writes must be the bytes of the `Value` route.
    fn same_as_value_route(value: &Ipld) -> bool {
        let direct = serde_json::to_vec(&RecordJson(value, 0));
        let via_value = ipld_to_json(value).map(|json| serde_json::to_vec(&json).unwrap());
        match (direct, via_value) {
            (Ok(direct), Ok(via_value)) => direct == via_value,
            (Err(_), Err(_)) => true,
            _ => false,
        }
    }

    #[test]
    fn write_answer_is_written_as_write_json() {
        let record = serde_json::json!({
            "$type": "app.bsky.feed.post",
            "text": "hi",
            "createdAt": "2024-01-01T00:00:00.000Z",
        });
        let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        let write = prepare_create(
            did,
            "app.bsky.feed.post",
            Some("3jzfcijpj2z2a"),
            &record,
            None,
        )
        .unwrap();
        let unvalidated = prepare_create(
            did,
            "app.bsky.feed.post",
            Some("3jzfcijpj2z2c"),
            &record,
            Some(false),
        )
        .unwrap();
        let delete = prepare_delete(did, "app.bsky.feed.post", "3jzfcijpj2z2a").unwrap();
        let key = atp_crypto::SigningKey::generate(atp_crypto::Algorithm::K256);
        let store = atp_repo_mst::blockstore::MemoryBlockStore::new();
        let mut repo = atp_repo_mst::repo::Repo::create(&store, did).unwrap();
        repo.create_record(
            "app.bsky.feed.post",
            "3jzfcijpj2z2a",
            write.record.as_ref().unwrap(),
        )
        .unwrap();
        let commit = repo.commit(&key, "3jzfcijpj2z2d").unwrap();
        for write in [&write, &unvalidated, &delete] {
            for commit in [None, Some(&commit)] {
                let direct =
                    serde_json::to_vec(&WriteAnswer::of(write).with_commit(commit.cloned()))
                        .unwrap();
                let via_value = serde_json::to_vec(&write_json(write, commit)).unwrap();
                assert_eq!(
                    String::from_utf8(direct).unwrap(),
                    String::from_utf8(via_value).unwrap()
                );
            }
        }
    }

    #[test]
    fn record_json_writes_the_interop_fixtures_as_the_value_route() {
        let fixtures = atp_test_vectors::interop_json("data-model/data-model-fixtures.json");
        let fixtures = fixtures.as_array().unwrap();
        for fixture in fixtures {
            let text = fixture["cbor_base64"]
                .as_str()
                .unwrap()
                .trim_end_matches('=');
            let cbor = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .unwrap();
            let value = atp_crypto::dagcbor::decode_ipld(&cbor).unwrap();
            assert!(same_as_value_route(&value), "{fixture}");
            // And the JSON of the fixture itself, keys sorted.
            let direct = serde_json::to_vec(&RecordJson(&value, 0)).unwrap();
            assert_eq!(direct, serde_json::to_vec(&fixture["json"]).unwrap());
        }
        atp_test_vectors::report("data-model/data-model-fixtures.json", fixtures.len());
        let valid = atp_test_vectors::interop_json("data-model/data-model-valid.json");
        let valid = valid.as_array().unwrap();
        for case in valid {
            let value = json_to_ipld(&case["json"]).unwrap();
            assert!(same_as_value_route(&value), "{case}");
        }
        atp_test_vectors::report("data-model/data-model-valid.json", valid.len());
    }

    #[test]
    fn record_json_edge_values_match_and_refusals_match() {
        let nested = (0..70).fold(Ipld::Null, |inner, _| Ipld::List(vec![inner]));
        let cases = [
            Ipld::Integer(i128::from(i64::MIN)),
            Ipld::Integer(i128::from(i64::MAX)),
            Ipld::Integer(-1),
            Ipld::Integer(0),
            Ipld::Bytes(vec![0, 1, 2, 250, 255]),
            Ipld::Bytes(Vec::new()),
            Ipld::String("quote \" backslash \\ control \u{1} é ☃".to_owned()),
            Ipld::Map(BTreeMap::from([
                ("z".to_owned(), Ipld::Null),
                ("a".to_owned(), Ipld::Bool(false)),
                ("aa".to_owned(), Ipld::List(vec![Ipld::Integer(7)])),
                ("$type".to_owned(), Ipld::String("x.y.z".to_owned())),
            ])),
            // Refused by both.
            Ipld::Float(1.5),
            Ipld::Integer(i128::from(i64::MAX) + 1),
            Ipld::List(vec![Ipld::Integer(1), Ipld::Float(0.0)]),
            nested,
        ];
        for case in &cases {
            assert!(same_as_value_route(case), "{case:?}");
        }
        assert!(serde_json::to_vec(&RecordJson(&Ipld::Float(1.5), 0)).is_err());
    }
}
