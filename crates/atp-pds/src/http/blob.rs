//! Blobs: `com.atproto.repo.uploadBlob`, `listMissingBlobs`,
//! `com.atproto.sync.getBlob` and `listBlobs`, and the hooks record
//! writes call so that referenced blobs become permanent and
//! unreferenced ones are collected.
//!
//! An upload is streamed into the blob store's temporary area while it is
//! hashed, measured (at most [`PdsState::blob_upload_limit`] bytes, else
//! 413 `PayloadTooLarge`, whatever `Content-Length` said) and its type
//! sniffed from its first bytes (the declared `Content-Type` when the
//! bytes say nothing). It is then tracked in the account's blob index
//! ([`crate::blob_index`]) under its temporary key.
//!
//! A write that references blobs is checked first ([`check_write_blobs`]:
//! each must have been uploaded by the account, else `BlobNotFound`).
//! After the commit is stored, [`after_commit`] moves the temporary blobs
//! the new records reference to their permanent place and deletes the
//! blobs that no record references any more. Both hooks must run under
//! the repository's write lock, around the commit, as the reference runs
//! them inside the commit's transaction.
//!
//! Temporary uploads never referenced are removed after
//! [`TEMP_BLOB_LIFETIME`] by a task the router starts
//! ([`sweep_temp_blobs`]).

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use atp_crypto::Cid;
use atp_repo_mst::repo::{CommitData, WriteAction};
use atp_xrpc::auth::{decode_claims_unverified, AuthError, ServiceJwtVerifier};
use atp_xrpc::server::{bearer_token, Router, XrpcError, XrpcRequest, XrpcResponse};
use bytes::Bytes;
use futures_util::StreamExt;
use hyper::header::{HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::account_status::require_not_taken_down;
use super::auth::{is_admin, optional_access, require_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::sync::assert_repo_availability;
use super::with_state;
use crate::actor_store::ActorStore;
use crate::blob_index::{self, TrackedUpload};
use crate::blob_refs::{find_blob_refs, BlobRef};
use crate::blob_store::{sniff_mime_type, ByteStream, SNIFF_BYTES, TEMP_BLOB_LIFETIME};
use crate::db::run_blocking;
use crate::repo_writer::RepoLocks;

/// How often the temporary area is swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Default and largest page of `listBlobs` and `listMissingBlobs`.
const DEFAULT_LIMIT: u64 = 500;
const MAX_LIMIT: u64 = 1000;

fn blob_not_found() -> XrpcError {
    XrpcError::invalid_request("Blob not found")
}

fn payload_too_large() -> XrpcError {
    XrpcError::payload_too_large("request entity too large")
}

/// The store of `did`, opened on the blocking pool.
async fn open_store(state: &PdsState, did: &str) -> Result<Arc<ActorStore>, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let did = did.to_owned();
    run_blocking(move || actors.open(&did))
        .await
        .map_err(to_xrpc)
}

/// Runs a blocking blob-index call on `store`.
async fn on_store<T, F>(store: &Arc<ActorStore>, f: F) -> Result<T, XrpcError>
where
    T: Send + 'static,
    F: FnOnce(&ActorStore) -> crate::Result<T> + Send + 'static,
{
    let store = Arc::clone(store);
    run_blocking(move || f(&store)).await.map_err(to_xrpc)
}

/// What is learnt about an upload while it streams through.
#[derive(Default)]
struct UploadMeter {
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    /// Why the body stream was cut, if it was.
    refusal: Option<XrpcError>,
}

/// Wraps the request body: every chunk is hashed, counted and its first
/// bytes kept; a body over `limit` (or a failing read) ends the stream
/// with an error, recorded in the meter for the answer.
fn metered_body(
    body: impl futures_util::Stream<Item = Result<Bytes, XrpcError>> + Send + 'static,
    meter: Arc<Mutex<UploadMeter>>,
    limit: u64,
) -> ByteStream {
    Box::pin(body.map(move |chunk| {
        let mut meter = meter
            .lock()
            .map_err(|_| std::io::Error::other("upload meter lock poisoned"))?;
        let refuse = |meter: &mut UploadMeter, err: XrpcError| {
            let message = err.message().to_owned();
            meter.refusal = Some(err);
            Err(std::io::Error::other(message))
        };
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // The route's own cap sits just above the limit: its refusal
            // gets the reference's wording too.
            Err(err) if err.status().as_u16() == 413 => {
                return refuse(&mut meter, payload_too_large())
            }
            Err(err) => return refuse(&mut meter, err),
        };
        meter.size += chunk.len() as u64;
        if meter.size > limit {
            return refuse(&mut meter, payload_too_large());
        }
        meter.hasher.update(&chunk);
        if meter.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - meter.head.len()).min(chunk.len());
            meter.head.extend_from_slice(&chunk[..take]);
        }
        Ok(chunk)
    }))
}

/// The raw-codec CID of a SHA-256 digest.
fn cid_for_digest(digest: &[u8]) -> Result<Cid, XrpcError> {
    // CIDv1, raw (0x55), sha2-256 (0x12) of 32 bytes (0x20).
    let mut bytes = vec![0x01, 0x55, 0x12, 0x20];
    bytes.extend_from_slice(digest);
    Cid::try_from(bytes.as_slice()).map_err(XrpcError::internal)
}

/// Answers are written with their keys in the reference's order (struct
/// fields serialize in declaration order).
#[derive(Serialize)]
struct BlobJson {
    #[serde(rename = "$type")]
    kind: &'static str,
    #[serde(rename = "ref")]
    link: LinkJson,
    #[serde(rename = "mimeType")]
    mime_type: String,
    size: u64,
}

#[derive(Serialize)]
struct LinkJson {
    #[serde(rename = "$link")]
    link: String,
}

#[derive(Serialize)]
struct UploadAnswer {
    blob: BlobJson,
}

#[derive(Serialize)]
struct ListBlobsAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    cids: Vec<String>,
}

#[derive(Serialize)]
struct MissingBlob {
    cid: String,
    #[serde(rename = "recordUri")]
    record_uri: String,
}

#[derive(Serialize)]
struct ListMissingBlobsAnswer {
    blobs: Vec<MissingBlob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// The blob JSON of the protocol's data model.
fn blob_json(cid: &Cid, mime_type: &str, size: u64) -> BlobJson {
    BlobJson {
        kind: "blob",
        link: LinkJson {
            link: cid.to_string(),
        },
        mime_type: mime_type.to_owned(),
        size,
    }
}

/// Whether the request announces a body (the reference's check).
fn announces_body(req: &XrpcRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(hyper::header::TRANSFER_ENCODING)
        || headers.contains_key(hyper::header::CONTENT_LENGTH)
}

fn declared_length(req: &XrpcRequest) -> Result<Option<u64>, XrpcError> {
    let Some(value) = req.headers().get(hyper::header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| XrpcError::invalid_request("invalid content-length"))
}

async fn upload_blob(
    state: Arc<PdsState>,
    mut req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let uploader = upload_caller(&state, &req).await?;
    if !announces_body(&req) {
        return Err(XrpcError::invalid_request(
            "A request body is expected but none was provided",
        ));
    }
    let declared_type = req.content_type().ok_or_else(|| {
        XrpcError::invalid_request("Request encoding (Content-Type) required but not provided")
    })?;
    let limit = state.blob_upload_limit;
    if declared_length(&req)?.is_some_and(|length| length > limit) {
        return Err(payload_too_large());
    }
    let store = open_store(&state, &uploader).await?;

    let meter = Arc::new(Mutex::new(UploadMeter::default()));
    let body = metered_body(req.body_stream()?, Arc::clone(&meter), limit);
    let stored = state.blobs.put_temp(&uploader, body).await;
    let (digest, size, head, refusal) = {
        let mut meter = meter
            .lock()
            .map_err(|_| XrpcError::internal("upload meter lock poisoned"))?;
        let meter = std::mem::take(&mut *meter);
        (
            meter.hasher.finalize(),
            meter.size,
            meter.head,
            meter.refusal,
        )
    };
    let temp_key = match (stored, refusal) {
        (_, Some(refusal)) => return Err(refusal),
        (Err(err), None) => return Err(to_xrpc(err)),
        (Ok(key), None) => key,
    };
    let cid = cid_for_digest(&digest)?;
    let mime_type = sniff_mime_type(&head).unwrap_or(declared_type);

    // Under the repository's write lock, as the reference tracks the upload
    // in a transaction of the actor store: a concurrent write sees it
    // tracked, and made permanent if a record references it.
    let _lock = RepoLocks::global().lock(&uploader).await.map_err(to_xrpc)?;
    let tracked = {
        let (cid, mime_type, temp_key) = (cid, mime_type.clone(), temp_key.clone());
        on_store(&store, move |store| {
            blob_index::track_upload(store, &cid, &mime_type, size, &temp_key)
        })
        .await?
    };
    match tracked {
        TrackedUpload::TakenDown => {
            discard_temp(&state, &uploader, &temp_key).await;
            return Err(XrpcError::invalid_request(
                "Blob has been takendown, cannot re-upload",
            ));
        }
        TrackedUpload::AlreadyPermanent => discard_temp(&state, &uploader, &temp_key).await,
        TrackedUpload::Temporary => {
            // Records that already reference it (a repository import)
            // make it permanent at once.
            let referenced = on_store(&store, move |store| {
                blob_index::has_records_for_blob(store, &cid)
            })
            .await?;
            if referenced {
                make_permanent(&state, &store, &uploader, &cid, &temp_key).await?;
            }
        }
    }
    XrpcResponse::json(&UploadAnswer {
        blob: blob_json(&cid, &mime_type, size),
    })
}

/// The NSID of uploadBlob, the `lxm` a service token for it carries.
const UPLOAD_BLOB: &str = "com.atproto.repo.uploadBlob";

/// Who uploads: the account of a session access token (not taken down),
/// or the issuer of a service token (one with an `lxm` claim, as the
/// reference tells them apart) that an account of this PDS signed for
/// `uploadBlob` with this PDS as audience: how a video service uploads on
/// a user's behalf. The issuer's key is the account's signing key, which
/// its DID document publishes.
async fn upload_caller(state: &PdsState, req: &XrpcRequest) -> Result<String, XrpcError> {
    let service_token = bearer_token(req.head()).filter(|token| {
        decode_claims_unverified(token)
            .ok()
            .is_some_and(|claims| claims.get("lxm").is_some_and(|lxm| !lxm.is_null()))
    });
    let Some(token) = service_token else {
        let caller = require_access(state, req, Access::Standard)?;
        // The reference's `checkTakedown` of uploadBlob: the caller's
        // account must exist and not be taken down (a token issued before
        // the takedown is refused too).
        require_not_taken_down(state, &caller.did).await?;
        return Ok(caller.did);
    };
    let actors = Arc::clone(state.storage.actors());
    let resolver = move |iss: String, _force_refresh: bool| {
        let actors = Arc::clone(&actors);
        async move {
            let did = iss.split('#').next().unwrap_or_default().to_owned();
            let key = run_blocking(move || {
                if !actors.exists(&did) {
                    return Err(crate::Error::AccountNotFound(did));
                }
                actors.open(&did)?.signing_key()
            })
            .await
            .map_err(|err| AuthError::KeyResolution(err.to_string()))?;
            Ok(key.public_key())
        }
    };
    let claims = ServiceJwtVerifier::new(Some(&state.info.did), Some(UPLOAD_BLOB))
        .verify(token, &resolver)
        .await
        .map_err(|err| XrpcError::from_service_auth(&err))?;
    Ok(claims.issuer_did().to_owned())
}

/// Deletes a temporary upload that is not needed; a failure is only
/// logged (the sweep will remove it).
async fn discard_temp(state: &PdsState, did: &str, key: &str) {
    if let Err(err) = state.blobs.delete_temp(did, key).await {
        tracing::warn!(%did, key, error = %err, "could not delete a temporary upload");
    }
}

/// Moves the temporary upload `temp_key` to its permanent place and marks
/// it permanent in the index.
async fn make_permanent(
    state: &PdsState,
    store: &Arc<ActorStore>,
    did: &str,
    cid: &Cid,
    temp_key: &str,
) -> Result<(), XrpcError> {
    state
        .blobs
        .make_permanent(did, temp_key, cid)
        .await
        .map_err(|err| {
            tracing::error!(%did, %cid, error = %err, "could not make blob permanent");
            to_xrpc(err)
        })?;
    let temp_key = temp_key.to_owned();
    on_store(store, move |store| {
        blob_index::mark_permanent(store, &temp_key)
    })
    .await
}

/// Checks, before a commit, that every blob the written records reference
/// was uploaded by `did` (temporary or already permanent) and matches the
/// declared type and size; the reference answers `BlobNotFound` otherwise.
pub async fn check_write_blobs(
    state: &PdsState,
    did: &str,
    refs: &[BlobRef],
) -> Result<(), XrpcError> {
    if refs.is_empty() {
        return Ok(());
    }
    let store = open_store(state, did).await?;
    let cids: Vec<Cid> = refs.iter().map(|blob| blob.cid).collect();
    let rows = on_store(&store, move |store| {
        cids.iter()
            .map(|cid| blob_index::get_blob(store, cid))
            .collect::<crate::Result<Vec<_>>>()
    })
    .await?;
    for (blob, row) in refs.iter().zip(rows) {
        let Some(row) = row.filter(|row| row.takedown_ref.is_none()) else {
            return Err(
                XrpcError::invalid_request(format!("Could not find blob: {}", blob.cid))
                    .with_name("BlobNotFound"),
            );
        };
        if row.temp_key.is_none() {
            continue;
        }
        if blob.mime_type != row.mime_type {
            return Err(XrpcError::invalid_request(format!(
                "Referenced Mimetype does not match stored blob. Expected: {}, Got: {}",
                row.mime_type, blob.mime_type
            ))
            .with_name("InvalidMimeType"));
        }
        if let Some(size) = blob.size.filter(|size| *size != row.size) {
            return Err(XrpcError::invalid_request(format!(
                "Referenced Size does not match stored blob. Expected: {}, Got: {size}",
                row.size
            ))
            .with_name("InvalidSize"));
        }
    }
    Ok(())
}

/// The blobs the records written by `commit` reference, by record URI:
/// read from the records' blocks in the commit, and from the stored
/// references (a record whose block was already stored).
fn written_record_blobs(
    store: &ActorStore,
    did: &str,
    commit: &CommitData,
) -> crate::Result<Vec<(String, Vec<Cid>)>> {
    let mut found = Vec::new();
    for op in &commit.ops {
        let Some(cid) = op.cid.filter(|_| op.action != WriteAction::Delete) else {
            continue;
        };
        let uri = format!("at://{did}/{}", op.path);
        let mut cids: Vec<Cid> = match commit.blocks.get(&cid) {
            Some(bytes) => find_blob_refs(&atp_crypto::dagcbor::decode_ipld(bytes)?)
                .into_iter()
                .map(|blob| blob.cid)
                .collect(),
            None => Vec::new(),
        };
        blob_index::associate(store, &uri, &cids)?;
        for cid in blob_index::blobs_of_record(store, &uri)? {
            if !cids.contains(&cid) {
                cids.push(cid);
            }
        }
        found.push((uri, cids));
    }
    Ok(found)
}

/// After a commit was stored: makes the blobs its records now reference
/// permanent and deletes the blobs no record references any more.
pub async fn after_commit(
    state: &PdsState,
    did: &str,
    commit: &CommitData,
) -> Result<(), XrpcError> {
    let store = open_store(state, did).await?;
    let written = {
        let (did, commit) = (did.to_owned(), commit.clone());
        on_store(&store, move |store| {
            written_record_blobs(store, &did, &commit)
        })
        .await?
    };
    let mut first_error = None;
    let mut done: Vec<Cid> = Vec::new();
    for cid in written.into_iter().flat_map(|(_, cids)| cids) {
        if done.contains(&cid) {
            continue;
        }
        done.push(cid);
        let row = on_store(&store, move |store| blob_index::get_blob(store, &cid)).await?;
        let Some(temp_key) = row.and_then(|row| row.temp_key) else {
            continue;
        };
        if let Err(err) = make_permanent(state, &store, did, &cid, &temp_key).await {
            first_error.get_or_insert(err);
        }
    }

    let dereferences = commit
        .ops
        .iter()
        .any(|op| matches!(op.action, WriteAction::Update | WriteAction::Delete));
    if dereferences {
        collect_in(state, &store, did).await?;
    }
    first_error.map_or(Ok(()), Err)
}

/// Deletes `did`'s permanent blobs that no record references (from the
/// index, then from the blob store) and returns how many went. The write
/// hooks do it after each commit that updates or deletes records; call it
/// after replacing a whole repository (an import), under the
/// repository's write lock.
pub async fn collect_dereferenced_blobs(state: &PdsState, did: &str) -> Result<usize, XrpcError> {
    let store = open_store(state, did).await?;
    collect_in(state, &store, did).await
}

async fn collect_in(
    state: &PdsState,
    store: &Arc<ActorStore>,
    did: &str,
) -> Result<usize, XrpcError> {
    let unreferenced = on_store(store, blob_index::take_dereferenced).await?;
    if !unreferenced.is_empty() {
        // The rows are gone: a failure here leaves bytes nobody can reach,
        // which is logged rather than failing the write.
        if let Err(err) = state.blobs.delete_many(did, &unreferenced).await {
            tracing::error!(%did, error = %err, "could not delete dereferenced blobs");
        }
    }
    Ok(unreferenced.len())
}

/// Applies (`Some(reference)`) or lifts (`None`) a moderation takedown of
/// blob `cid` of `did`, as the reference's `updateSubjectStatus` does for
/// a blob: the index records it (the blob is no longer served nor usable
/// in new records, nor uploadable again) and the bytes are quarantined or
/// put back. Returns whether the account has that blob.
pub async fn update_blob_takedown(
    state: &PdsState,
    did: &str,
    cid: &Cid,
    takedown_ref: Option<String>,
) -> Result<bool, XrpcError> {
    let store = open_store(state, did).await?;
    let applied = takedown_ref.is_some();
    let cid_for_index = *cid;
    let known = on_store(&store, move |store| {
        blob_index::set_takedown(store, &cid_for_index, takedown_ref.as_deref())
    })
    .await?;
    if !known {
        return Ok(false);
    }
    let moved = if applied {
        state.blobs.quarantine(did, cid).await
    } else {
        state.blobs.unquarantine(did, cid).await
    };
    // Absent bytes (a temporary upload, or already moved) are fine.
    moved.map_err(|err| {
        tracing::error!(%did, %cid, error = %err, "could not update blob takedown status");
        to_xrpc(err)
    })?;
    Ok(true)
}

/// Removes the temporary uploads last written before `cutoff` from the
/// blob store and their rows from the accounts' blob indexes; returns how
/// many went. An old upload that a record references (its move failed
/// after the commit) is made permanent instead.
pub async fn sweep_temp_blobs_before(
    state: &PdsState,
    cutoff: SystemTime,
) -> Result<usize, XrpcError> {
    let stale = state.blobs.stale_temp(cutoff).await.map_err(to_xrpc)?;
    let mut removed = 0;
    for temp in stale {
        // Under the repository's write lock: a write cannot check this
        // upload and then find it gone.
        let _lock = RepoLocks::global().lock(&temp.did).await.map_err(to_xrpc)?;
        let actors = Arc::clone(state.storage.actors());
        let (did, key) = (temp.did.clone(), temp.key.clone());
        let indexed = run_blocking(move || {
            if !actors.exists(&did) {
                return Ok(None);
            }
            let store = actors.open(&did)?;
            let referenced = match blob_index::blob_by_temp_key(&store, &key)? {
                Some(row) if blob_index::has_records_for_blob(&store, &row.cid)? => Some(row.cid),
                _ => None,
            };
            Ok(Some((store, referenced)))
        })
        .await
        .map_err(to_xrpc)?;
        if let Some((store, Some(cid))) = &indexed {
            if let Err(err) = make_permanent(state, store, &temp.did, cid, &temp.key).await {
                tracing::warn!(did = %temp.did, %cid, error = %err.message(), "referenced temporary blob still not permanent");
            }
            continue;
        }
        if let Err(err) = state.blobs.delete_temp(&temp.did, &temp.key).await {
            tracing::warn!(did = %temp.did, key = %temp.key, error = %err, "could not delete a stale temporary blob");
            continue;
        }
        if let Some((store, None)) = indexed {
            let key = temp.key.clone();
            on_store(&store, move |store| blob_index::forget_temp(store, &key)).await?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// Removes the temporary uploads older than `age` (see
/// [`sweep_temp_blobs_before`]).
pub async fn sweep_temp_blobs(state: &PdsState, age: Duration) -> Result<usize, XrpcError> {
    let cutoff = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    sweep_temp_blobs_before(state, cutoff).await
}

/// Sweeps the temporary area every [`SWEEP_INTERVAL`] while the state is
/// alive (the task ends once the router holding it is dropped).
fn start_sweeper(state: &Arc<PdsState>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no async runtime: temporary blobs are not swept periodically");
        return;
    };
    let state: Weak<PdsState> = Arc::downgrade(state);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(state) = state.upgrade() else {
                return;
            };
            match sweep_temp_blobs(&state, TEMP_BLOB_LIFETIME).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "removed unreferenced temporary blobs"),
                Err(err) => tracing::warn!(error = %err.message(), "temporary blob sweep failed"),
            }
        }
    });
}

/// A string parameter (typed by the lexicon when checked).
fn param_str(req: &XrpcRequest, name: &str) -> Option<String> {
    match req.lexicon_params().and_then(|params| params.get(name)) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => None,
        None => req.raw_params().get(name).map(str::to_owned),
    }
}

/// The `limit` parameter, defaulted and bounded as the lexicons say.
fn param_limit(req: &XrpcRequest) -> Result<usize, XrpcError> {
    let limit = match req.lexicon_params().and_then(|params| params.get("limit")) {
        Some(value) => value.as_u64(),
        None => match req.raw_params().get("limit") {
            Some(text) => text.parse().ok(),
            None => Some(DEFAULT_LIMIT),
        },
    };
    match limit {
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => {
            usize::try_from(limit).map_err(XrpcError::internal)
        }
        _ => Err(XrpcError::invalid_request(format!(
            "Error: limit can not be greater than {MAX_LIMIT}"
        ))),
    }
}

fn required_param(req: &XrpcRequest, name: &str) -> Result<String, XrpcError> {
    param_str(req, name).ok_or_else(|| {
        XrpcError::invalid_request(format!("Error: Params must have the property \"{name}\""))
    })
}

/// Whether the caller is the account `did` itself or the admin (they see
/// deactivated and taken-down repositories).
fn is_self_or_admin(state: &PdsState, req: &XrpcRequest, did: &str) -> Result<bool, XrpcError> {
    if is_admin(state, req) {
        return Ok(true);
    }
    let caller = optional_access(state, req, Access::Takendown)?;
    Ok(caller.is_some_and(|caller| caller.did == did))
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), XrpcError> {
    Ok((
        HeaderName::from_static(name),
        HeaderValue::from_str(value).map_err(XrpcError::internal)?,
    ))
}

async fn get_blob(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let did = required_param(&req, "did")?;
    let cid_text = required_param(&req, "cid")?;
    let self_or_admin = is_self_or_admin(&state, &req, &did)?;
    assert_repo_availability(&state, &did, self_or_admin).await?;
    let cid = atp_crypto::parse_cid(&cid_text)
        .map_err(|_| XrpcError::invalid_request(format!("Invalid CID: {cid_text}")))?;

    let store = open_store(&state, &did).await?;
    let row = on_store(&store, move |store| blob_index::get_blob(store, &cid))
        .await?
        .filter(|row| row.takedown_ref.is_none())
        .ok_or_else(blob_not_found)?;
    let stream = state
        .blobs
        .get_stream(&did, &cid)
        .await
        .map_err(to_xrpc)?
        .ok_or_else(blob_not_found)?;
    let content_type = if row.mime_type.is_empty() {
        "application/octet-stream"
    } else {
        row.mime_type.as_str()
    };
    let mut response = XrpcResponse::stream(content_type, stream);
    for (name, value) in [
        header("content-length", &row.size.to_string())?,
        header("x-content-type-options", "nosniff")?,
        header(
            "content-disposition",
            &format!("attachment; filename=\"{cid}\""),
        )?,
        header("content-security-policy", "default-src 'none'; sandbox")?,
    ] {
        response = response.with_header(name, value);
    }
    Ok(response)
}

async fn list_blobs(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let did = required_param(&req, "did")?;
    let since = param_str(&req, "since");
    let cursor = param_str(&req, "cursor");
    let limit = param_limit(&req)?;
    let self_or_admin = is_self_or_admin(&state, &req, &did)?;
    assert_repo_availability(&state, &did, self_or_admin).await?;
    let store = open_store(&state, &did).await?;
    let cids = on_store(&store, move |store| {
        blob_index::list_blobs(store, since.as_deref(), cursor.as_deref(), limit)
    })
    .await?;
    XrpcResponse::json(&ListBlobsAnswer {
        cursor: cids.last().cloned(),
        cids,
    })
}

async fn list_missing_blobs(
    state: Arc<PdsState>,
    req: XrpcRequest,
) -> Result<XrpcResponse, XrpcError> {
    let caller = require_access(&state, &req, Access::Standard)?;
    let cursor = param_str(&req, "cursor");
    let limit = param_limit(&req)?;
    let store = open_store(&state, &caller.did).await?;
    let missing = on_store(&store, move |store| {
        blob_index::list_missing_blobs(store, cursor.as_deref(), limit)
    })
    .await?;
    let cursor = missing.last().map(|(cid, _)| cid.clone());
    let blobs = missing
        .into_iter()
        .map(|(cid, record_uri)| MissingBlob { cid, record_uri })
        .collect();
    XrpcResponse::json(&ListMissingBlobsAnswer { blobs, cursor })
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    // The handler enforces the upload limit itself (with the reference's
    // message); the route's own cap sits just above it.
    let route_limit =
        usize::try_from(state.blob_upload_limit.saturating_add(1)).unwrap_or(usize::MAX);
    router
        .procedure(UPLOAD_BLOB, with_state(state, upload_blob))?
        .max_body_bytes(route_limit);
    router.query(
        "com.atproto.repo.listMissingBlobs",
        with_state(state, list_missing_blobs),
    )?;
    router.query("com.atproto.sync.getBlob", with_state(state, get_blob))?;
    router.query("com.atproto.sync.listBlobs", with_state(state, list_blobs))?;
    start_sweeper(state);
    Ok(())
}
