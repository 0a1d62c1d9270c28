//! `com.atproto.sync` repository reads: getRepo, getLatestCommit,
//! getRecord, getBlocks, listRepos, getRepoStatus.
//!
//! As in the reference PDS, a deactivated or taken-down repository is
//! refused (`RepoDeactivated`, `RepoTakendown`) except to its own account
//! and the admin; an unknown one is `RepoNotFound`. Registering these
//! methods also hands the configured crawlers to the event log and asks
//! them to crawl once (see [`crate::crawlers`]).

use std::io::Write;
use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::auth::{is_admin, optional_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::account::Account;
use crate::actor_store::ActorStore;
use crate::crawlers::{hostname_of, Crawlers};
use crate::db::run_blocking;

/// Content type of CAR answers.
pub const CAR_CONTENT_TYPE: &str = "application/vnd.ipld.car";

/// Size of the chunks a streamed CAR is sent in.
const CAR_CHUNK_BYTES: usize = 64 * 1024;

/// Chunks buffered between the SQLite reader and the connection.
const CAR_CHUNKS_IN_FLIGHT: usize = 4;

/// Default and largest page of `listRepos`.
const LIST_REPOS_DEFAULT: i64 = 500;
const LIST_REPOS_MAX: i64 = 1000;

/// The account's hosting status as the sync methods show it: `active`,
/// and `status` when not active.
pub fn account_status(account: &Account) -> (bool, Option<&'static str>) {
    if account.takedown_ref.is_some() {
        (false, Some("takendown"))
    } else if account.deactivated_at.is_some() {
        (false, Some("deactivated"))
    } else {
        (true, None)
    }
}

fn repo_not_found(did: &str) -> XrpcError {
    XrpcError::invalid_request(format!("Could not find repo for DID: {did}"))
        .with_name("RepoNotFound")
}

/// The account behind `did` if its repository may be served: the
/// reference's `assertRepoAvailability`.
pub async fn assert_repo_availability(
    state: &PdsState,
    did: &str,
    admin_or_self: bool,
) -> Result<Account, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let lookup = did.to_owned();
    let account = run_blocking(move || accounts.account_by_did(&lookup))
        .await
        .map_err(to_xrpc)?
        .ok_or_else(|| repo_not_found(did))?;
    if admin_or_self {
        return Ok(account);
    }
    if account.takedown_ref.is_some() {
        return Err(
            XrpcError::invalid_request(format!("Repo has been takendown: {did}"))
                .with_name("RepoTakendown"),
        );
    }
    if account.deactivated_at.is_some() {
        return Err(
            XrpcError::invalid_request(format!("Repo has been deactivated: {did}"))
                .with_name("RepoDeactivated"),
        );
    }
    Ok(account)
}

/// Whether the caller is the admin or the account `did` itself (optional
/// auth: no credentials is simply `false`; bad credentials are refused).
fn is_user_or_admin(state: &PdsState, req: &XrpcRequest, did: &str) -> Result<bool, XrpcError> {
    if is_admin(state, req) {
        return Ok(true);
    }
    Ok(optional_access(state, req, Access::Takendown)?.is_some_and(|caller| caller.did == did))
}

async fn open_store(state: &PdsState, did: &str) -> Result<Arc<ActorStore>, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let lookup = did.to_owned();
    run_blocking(move || {
        if !actors.exists(&lookup) {
            return Ok(None);
        }
        actors.open(&lookup).map(Some)
    })
    .await
    .map_err(to_xrpc)?
    .ok_or_else(|| XrpcError::invalid_request(format!("Could not find repo for DID: {did}")))
}

#[derive(Deserialize)]
struct DidParams {
    did: String,
}

#[derive(Deserialize)]
struct GetRepoParams {
    did: String,
    since: Option<String>,
}

/// A `Write` that sends what it is given as chunks over a bounded channel,
/// blocking while the connection is behind.
struct ChunkSender {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChunkSender {
    fn send_buffered(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CAR_CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CAR_CHUNK_BYTES {
            self.send_buffered()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buffered()
    }
}

/// A streamed CAR of the repository of `store` (all blocks, or those
/// after `since`), read in one snapshot on the blocking pool.
fn stream_repo_car(store: Arc<ActorStore>, since: Option<String>) -> XrpcResponse {
    let (tx, rx) = mpsc::channel(CAR_CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sender = ChunkSender {
            tx: tx.clone(),
            buf: Vec::with_capacity(CAR_CHUNK_BYTES),
        };
        let outcome = store.block_store().write_repo_car(since.as_deref(), sender);
        let failure = match outcome {
            Ok(Some(mut sender)) => sender.flush().err(),
            Ok(None) => Some(std::io::Error::other("repository has no head")),
            Err(err) => Some(std::io::Error::other(err.to_string())),
        };
        if let Some(err) = failure {
            tracing::warn!(did = store.did(), error = %err, "getRepo stream failed");
            let _ = tx.blocking_send(Err(err));
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    XrpcResponse::stream(CAR_CONTENT_TYPE, chunks)
}

async fn get_repo(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: GetRepoParams = req.params()?;
    let admin_or_self = is_user_or_admin(&state, &req, &params.did)?;
    assert_repo_availability(&state, &params.did, admin_or_self).await?;
    let store = open_store(&state, &params.did).await?;
    let head = {
        let store = Arc::clone(&store);
        run_blocking(move || store.root()).await.map_err(to_xrpc)?
    };
    if head.is_none() {
        return Err(XrpcError::invalid_request(format!(
            "Could not find repo for DID: {}",
            params.did
        )));
    }
    Ok(stream_repo_car(store, params.since))
}

async fn get_latest_commit(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let params: DidParams = req.params()?;
    let admin_or_self = is_user_or_admin(&state, &req, &params.did)?;
    assert_repo_availability(&state, &params.did, admin_or_self).await?;
    let not_found = || {
        XrpcError::invalid_request(format!("Could not find root for DID: {}", params.did))
            .with_name("RepoNotFound")
    };
    let store = open_store(&state, &params.did)
        .await
        .map_err(|_| not_found())?;
    let root = run_blocking(move || store.root())
        .await
        .map_err(to_xrpc)?
        .ok_or_else(not_found)?;
    XrpcResponse::json(&json!({ "cid": root.cid.to_string(), "rev": root.rev }))
}

#[derive(Deserialize)]
struct GetRecordParams {
    did: String,
    collection: String,
    rkey: String,
}

async fn get_record(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: GetRecordParams = req.params()?;
    let admin_or_self = is_user_or_admin(&state, &req, &params.did)?;
    assert_repo_availability(&state, &params.did, admin_or_self).await?;
    let store = open_store(&state, &params.did).await?;
    let did = params.did.clone();
    let car = run_blocking(move || {
        let Some(root) = store.root()? else {
            return Ok(None);
        };
        let path = format!("{}/{}", params.collection, params.rkey);
        let blocks = store.block_store();
        match atp_repo_mst::import::export_proof_car(&blocks, root.cid, [path.as_str()], Vec::new())
        {
            Ok(car) => Ok(Some(Ok(car))),
            Err(atp_repo_mst::Error::InvalidMstKey(message)) => Ok(Some(Err(message))),
            Err(err) => Err(err.into()),
        }
    })
    .await
    .map_err(to_xrpc)?
    .ok_or_else(|| XrpcError::invalid_request(format!("Could not find repo for DID: {did}")))?
    .map_err(XrpcError::invalid_request)?;
    Ok(XrpcResponse::bytes(CAR_CONTENT_TYPE, car))
}

#[derive(Deserialize)]
struct GetBlocksParams {
    did: String,
    #[serde(default)]
    cids: Vec<String>,
}

async fn get_blocks(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: GetBlocksParams = req.params()?;
    let admin_or_self = is_user_or_admin(&state, &req, &params.did)?;
    assert_repo_availability(&state, &params.did, admin_or_self).await?;
    let cids = params
        .cids
        .iter()
        .map(|text| {
            atp_crypto::parse_cid(text)
                .map_err(|_| XrpcError::invalid_request(format!("Invalid CID: {text}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = open_store(&state, &params.did).await?;
    let (found, missing) = run_blocking(move || store.block_store().get_many(&cids))
        .await
        .map_err(to_xrpc)?;
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(XrpcError::invalid_request(format!(
            "Could not find cids: {}",
            missing.join(",")
        )));
    }
    let mut writer =
        atp_repo_mst::car::CarWriter::new(Vec::new(), &[]).map_err(XrpcError::internal)?;
    for (cid, bytes) in &found {
        writer
            .write_block(cid, bytes)
            .map_err(XrpcError::internal)?;
    }
    let car = writer.finish().map_err(XrpcError::internal)?;
    Ok(XrpcResponse::bytes(CAR_CONTENT_TYPE, car))
}

#[derive(Deserialize)]
struct ListReposParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

/// One account row of a `listRepos` page.
struct ListedAccount {
    did: String,
    created_at: String,
    deactivated: bool,
    takendown: bool,
}

/// Splits a `listRepos` cursor (`<created at, ms since the epoch>::<did>`).
fn parse_list_cursor(cursor: &str) -> Result<(String, String), XrpcError> {
    let malformed = || XrpcError::invalid_request("Malformed cursor");
    let (ms, did) = cursor.split_once("::").ok_or_else(malformed)?;
    let ms: i64 = ms.parse().map_err(|_| malformed())?;
    let time = chrono::DateTime::from_timestamp_millis(ms).ok_or_else(malformed)?;
    Ok((crate::time::format(&time), did.to_owned()))
}

async fn list_repos(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let params: ListReposParams = req.params()?;
    let limit = params
        .limit
        .unwrap_or(LIST_REPOS_DEFAULT)
        .clamp(1, LIST_REPOS_MAX);
    let after = params
        .cursor
        .as_deref()
        .map(parse_list_cursor)
        .transpose()?;
    let db = Arc::clone(state.storage.accounts().database());
    let rows = run_blocking(move || {
        db.read(|tx| {
            let (after_time, after_did) = after.unzip();
            let mut stmt = tx.prepare(
                "SELECT did, created_at, deactivated_at IS NOT NULL, takedown_ref IS NOT NULL
                 FROM account
                 WHERE ?1 IS NULL OR created_at > ?1 OR (created_at = ?1 AND did > ?2)
                 ORDER BY created_at, did LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(rusqlite::params![after_time, after_did, limit], |row| {
                    Ok(ListedAccount {
                        did: row.get(0)?,
                        created_at: row.get(1)?,
                        deactivated: row.get(2)?,
                        takendown: row.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
    })
    .await
    .map_err(to_xrpc)?;

    let cursor = match rows.last() {
        Some(last) => {
            let time = crate::time::parse(&last.created_at).map_err(to_xrpc)?;
            Some(format!("{}::{}", time.timestamp_millis(), last.did))
        }
        None => None,
    };
    let actors = Arc::clone(state.storage.actors());
    let repos = run_blocking(move || {
        let mut repos = Vec::with_capacity(rows.len());
        for row in rows {
            if !actors.exists(&row.did) {
                continue;
            }
            let Some(root) = actors.open(&row.did)?.root()? else {
                continue;
            };
            let mut repo = json!({
                "did": row.did,
                "head": root.cid.to_string(),
                "rev": root.rev,
                "active": !(row.takendown || row.deactivated),
            });
            if row.takendown {
                repo["status"] = json!("takendown");
            } else if row.deactivated {
                repo["status"] = json!("deactivated");
            }
            repos.push(repo);
        }
        Ok(repos)
    })
    .await
    .map_err(to_xrpc)?;
    let mut body = json!({ "repos": repos });
    if let Some(cursor) = cursor {
        body["cursor"] = Value::String(cursor);
    }
    XrpcResponse::json(&body)
}

async fn get_repo_status(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let params: DidParams = req.params()?;
    let account = assert_repo_availability(&state, &params.did, true).await?;
    let (active, status) = account_status(&account);
    let mut body = json!({ "did": params.did, "active": active });
    if let Some(status) = status {
        body["status"] = json!(status);
    }
    if active {
        if let Ok(store) = open_store(&state, &params.did).await {
            if let Some(root) = run_blocking(move || store.root()).await.map_err(to_xrpc)? {
                body["rev"] = json!(root.rev);
            }
        }
    }
    XrpcResponse::json(&body)
}

/// Hands the crawlers configured in `state` to its event log and, the
/// first time, asks them to crawl (the service is starting).
fn start_crawlers(state: &PdsState) {
    // The host name alone, as the reference sends its PDS_HOSTNAME: a
    // development URL's port (`http://localhost:2583`) is not part of it.
    let host = hostname_of(&state.storage.config().public_url);
    let hostname = match host.rsplit_once(':') {
        Some((name, port))
            if !name.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            name.to_owned()
        }
        _ => host,
    };
    let crawlers = Crawlers::new(hostname, state.crawlers.clone());
    if state.sequencer.set_crawlers(crawlers) {
        if let Some(crawlers) = state.sequencer.crawlers() {
            crawlers.notify_of_update();
        }
    }
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.query("com.atproto.sync.getRepo", with_state(state, get_repo))?;
    router.query(
        "com.atproto.sync.getLatestCommit",
        with_state(state, get_latest_commit),
    )?;
    router.query("com.atproto.sync.getRecord", with_state(state, get_record))?;
    router.query("com.atproto.sync.getBlocks", with_state(state, get_blocks))?;
    router.query("com.atproto.sync.listRepos", with_state(state, list_repos))?;
    router.query(
        "com.atproto.sync.getRepoStatus",
        with_state(state, get_repo_status),
    )?;
    start_crawlers(state);
    Ok(())
}
