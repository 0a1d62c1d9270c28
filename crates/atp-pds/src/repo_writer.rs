//! The write path of repositories: record creates, updates and deletes
//! (one write or a batch of them per commit), and whole-repository imports.
//!
//! Writes to one repository are serialized by a per-DID async lock
//! ([`RepoLocks`]); writes to different repositories run in parallel. One
//! commit goes like this:
//!
//! 1. [`prepare_create`], [`prepare_update`] and [`prepare_delete`] check
//!    each write on its own (`$type` against the collection, record key,
//!    lexicon validation), convert the JSON record to DAG-CBOR and find
//!    its blob references. Nothing is locked yet.
//! 2. [`lock_repo`] takes the repository's lock and opens its store.
//! 3. [`LockedRepo::apply`] opens the repository at its head, checks
//!    `swapCommit` and each `swapRecord`, applies the writes, and signs a
//!    commit with the account's key at a new rev (a TID greater than the
//!    previous one). The blob references are checked
//!    ([`check_write_blobs`](crate::http::blob::check_write_blobs)), then
//!    blocks, root, record index and record→blob references are stored in
//!    one SQLite transaction. Finally the commit is sequenced for the
//!    firehose and the blob hooks run.
//!
//! Refusals are XRPC answers with the reference PDS's names and messages
//! (`InvalidSwap`, `InvalidRequest`).
//!
//! ```
//! use atp_pds::repo_writer::prepare_create;
//! use serde_json::json;
//!
//! let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
//! let post = json!({"text": "hello", "createdAt": "2024-01-01T00:00:00.000Z"});
//! let write = prepare_create(did, "app.bsky.feed.post", None, &post, None)?;
//! // The key is a new TID, `$type` was added, and the post matched its
//! // lexicon.
//! assert!(atp_syntax::Tid::is_valid(&write.rkey));
//! assert_eq!(write.validation_status.map(|s| s.as_str()), Some("valid"));
//! assert!(write.uri.starts_with("at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/"));
//!
//! // A `$type` that is not the collection is refused.
//! let other = json!({"$type": "app.bsky.feed.like"});
//! let refused = prepare_create(did, "app.bsky.feed.post", None, &other, None).unwrap_err();
//! assert_eq!(refused.message(), "Invalid $type: expected app.bsky.feed.post, got app.bsky.feed.like");
//! # Ok::<(), atp_xrpc::server::XrpcError>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use atp_crypto::{Cid, Ipld};
use atp_repo_mst::car::{BlockMap, CarLimits};
use atp_repo_mst::import::{import_car, ImportOptions};
use atp_repo_mst::repo::{CommitData, WriteAction};
use atp_syntax::{Nsid, RecordKey, Tid, TidClock};
use atp_xrpc::lexicon::{LexiconError, Lexicons, ValidationStatus};
use atp_xrpc::server::XrpcError;
use serde_json::Value;
use tokio::sync::OwnedMutexGuard;

use crate::actor_store::ActorStore;
use crate::blob_index;
use crate::blob_refs::{find_blob_refs, BlobRef};
use crate::error::Error;
use crate::http::errors::to_xrpc;
use crate::http::PdsState;

/// Most writes in one `applyWrites` batch (as the reference).
pub const MAX_WRITES: usize = 200;

/// Largest commit, in bytes of new blocks (the reference's 2 MB event cap).
pub const MAX_COMMIT_BYTES: usize = 2_000_000;

type LockMap = HashMap<String, Arc<tokio::sync::Mutex<()>>>;

/// One async mutex per repository being written, created on demand and
/// dropped when no writer holds or waits for it.
#[derive(Debug, Default)]
pub struct RepoLocks {
    map: Arc<Mutex<LockMap>>,
}

/// Holds a repository's write lock until dropped.
#[derive(Debug)]
pub struct RepoLockGuard {
    guard: Option<OwnedMutexGuard<()>>,
    entry: Arc<tokio::sync::Mutex<()>>,
    did: String,
    map: Arc<Mutex<LockMap>>,
}

impl Drop for RepoLockGuard {
    fn drop(&mut self) {
        self.guard.take();
        if let Ok(mut map) = self.map.lock() {
            // Only the map and this guard hold the mutex: nobody waits.
            if Arc::strong_count(&self.entry) == 2 {
                map.remove(&self.did);
            }
        }
    }
}

impl RepoLocks {
    /// An empty lock map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide map the write path uses.
    pub fn global() -> &'static RepoLocks {
        static GLOBAL: OnceLock<RepoLocks> = OnceLock::new();
        GLOBAL.get_or_init(RepoLocks::new)
    }

    /// Waits for the write lock of `did`'s repository.
    pub async fn lock(&self, did: &str) -> Result<RepoLockGuard, Error> {
        let entry = {
            let mut map = self
                .map
                .lock()
                .map_err(|_| Error::Internal("repository lock map poisoned".to_owned()))?;
            Arc::clone(map.entry(did.to_owned()).or_default())
        };
        let guard = Arc::clone(&entry).lock_owned().await;
        Ok(RepoLockGuard {
            guard: Some(guard),
            entry,
            did: did.to_owned(),
            map: Arc::clone(&self.map),
        })
    }

    /// Number of repositories with a lock held or awaited.
    pub fn len(&self) -> usize {
        self.map.lock().map(|map| map.len()).unwrap_or(0)
    }

    /// Whether no lock is held or awaited.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One record write, checked and converted, ready to be applied.
#[derive(Clone, Debug)]
pub struct PreparedWrite {
    /// Create, update or delete.
    pub action: WriteAction,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// `at://<did>/<collection>/<rkey>`.
    pub uri: String,
    /// The record as DAG-CBOR data (`None` for a delete).
    pub record: Option<Ipld>,
    /// The record's CID (`None` for a delete).
    pub cid: Option<Cid>,
    /// The blobs the record references.
    pub blobs: Vec<BlobRef>,
    /// The lexicon check's outcome; `None` when validation was turned off
    /// (and for deletes).
    pub validation_status: Option<ValidationStatus>,
    /// `swapRecord`: `None` checks nothing, `Some(None)` requires that no
    /// record exists, `Some(Some(cid))` that the current record is `cid`.
    pub swap_record: Option<Option<Cid>>,
}

impl PreparedWrite {
    /// The same write with a `swapRecord` condition.
    pub fn with_swap_record(mut self, swap: Option<Option<Cid>>) -> Self {
        self.swap_record = swap;
        self
    }

    /// The MST key, `<collection>/<rkey>`.
    pub fn path(&self) -> String {
        format!("{}/{}", self.collection, self.rkey)
    }
}

fn invalid(message: impl Into<String>) -> XrpcError {
    XrpcError::invalid_request(message)
}

/// The bundled lexicons, parsed once.
pub fn lexicons() -> &'static Lexicons {
    static LEXICONS: OnceLock<Lexicons> = OnceLock::new();
    LEXICONS.get_or_init(Lexicons::bundled)
}

/// The record types the reference PDS validates writes of; records of
/// other types are `unknown` (refused when validation is required), as
/// there.
pub const VALIDATED_RECORD_TYPES: &[&str] = &[
    "app.bsky.actor.profile",
    "app.bsky.actor.status",
    "app.bsky.feed.generator",
    "app.bsky.feed.like",
    "app.bsky.feed.post",
    "app.bsky.feed.postgate",
    "app.bsky.feed.repost",
    "app.bsky.feed.threadgate",
    "app.bsky.graph.block",
    "app.bsky.graph.follow",
    "app.bsky.graph.list",
    "app.bsky.graph.listblock",
    "app.bsky.graph.listitem",
    "app.bsky.graph.starterpack",
    "app.bsky.graph.verification",
    "app.bsky.labeler.service",
    "app.bsky.notification.declaration",
    "chat.bsky.actor.declaration",
    "com.atproto.lexicon.schema",
    "com.germnetwork.declaration",
];

fn lexicon_message(err: LexiconError) -> String {
    match err {
        LexiconError::Validation(message) => message,
        other => other.to_string(),
    }
}

fn check_collection(collection: &str) -> Result<(), XrpcError> {
    if Nsid::is_valid(collection) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid collection: {collection}")))
    }
}

fn check_rkey(rkey: &str) -> Result<(), XrpcError> {
    if RecordKey::is_valid(rkey) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid record key: {rkey}")))
    }
}

/// Validates `record` (JSON, `$type` set) against the bundled lexicons as
/// the reference does: `validate == Some(false)` skips it; a type outside
/// [`VALIDATED_RECORD_TYPES`] or without a bundled schema is `unknown`, or
/// refused when `validate == Some(true)`.
fn validate_record(
    collection: &str,
    rkey: &str,
    record: &Value,
    validate: Option<bool>,
) -> Result<Option<ValidationStatus>, XrpcError> {
    if validate == Some(false) {
        return Ok(None);
    }
    let lexicons = lexicons();
    if !VALIDATED_RECORD_TYPES.contains(&collection) || lexicons.get_def(collection).is_none() {
        if validate == Some(true) {
            return Err(invalid(format!("Unknown lexicon type: {collection}")));
        }
        return Ok(Some(ValidationStatus::Unknown));
    }
    lexicons
        .validate_record_key(collection, rkey)
        .map_err(|err| {
            invalid(format!(
                "Invalid record key for {collection}: {}",
                lexicon_message(err)
            ))
        })?;
    let status = lexicons
        .validate_record(collection, record)
        .map_err(|err| {
            invalid(format!(
                "Invalid {collection} record: {}",
                lexicon_message(err)
            ))
        })?;
    Ok(Some(status))
}

fn prepare_record_write(
    action: WriteAction,
    did: &str,
    collection: &str,
    rkey: Option<&str>,
    record: &Value,
    validate: Option<bool>,
) -> Result<PreparedWrite, XrpcError> {
    check_collection(collection)?;
    let Some(object) = record.as_object() else {
        return Err(invalid("Record must be an object"));
    };
    let mut object = object.clone();
    match object.get("$type") {
        None => {
            object.insert("$type".to_owned(), Value::String(collection.to_owned()));
        }
        Some(Value::String(ty)) if ty == collection => {}
        Some(other) => {
            let got = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(invalid(format!(
                "Invalid $type: expected {collection}, got {got}"
            )));
        }
    }
    let rkey = match rkey {
        Some(rkey) => {
            check_rkey(rkey)?;
            rkey.to_owned()
        }
        None => TidClock::global().next().as_str().to_owned(),
    };
    let record = Value::Object(object);
    let validation_status = validate_record(collection, &rkey, &record, validate)?;
    let ipld = atp_crypto::data_model::json_record_to_ipld(&record)
        .map_err(|err| invalid(format!("Invalid {collection} record: {err}")))?;
    let blobs = find_blob_refs(&ipld);
    if let Some(legacy) = blobs.iter().find(|blob| blob.size.is_none()) {
        return Err(invalid(format!(
            "Legacy blobs are not allowed ({})",
            legacy.cid
        )));
    }
    let (cid, _) = atp_crypto::dagcbor::cid_of_ipld(&ipld)
        .map_err(|err| invalid(format!("Invalid {collection} record: {err}")))?;
    Ok(PreparedWrite {
        action,
        collection: collection.to_owned(),
        uri: format!("at://{did}/{collection}/{rkey}"),
        rkey,
        record: Some(ipld),
        cid: Some(cid),
        blobs,
        validation_status,
        swap_record: None,
    })
}

/// Prepares a record creation in `did`'s repository; without `rkey` the
/// record key is a new TID. A record without `$type` gets the collection.
pub fn prepare_create(
    did: &str,
    collection: &str,
    rkey: Option<&str>,
    record: &Value,
    validate: Option<bool>,
) -> Result<PreparedWrite, XrpcError> {
    prepare_record_write(WriteAction::Create, did, collection, rkey, record, validate)
}

/// Prepares the replacement of an existing record.
pub fn prepare_update(
    did: &str,
    collection: &str,
    rkey: &str,
    record: &Value,
    validate: Option<bool>,
) -> Result<PreparedWrite, XrpcError> {
    prepare_record_write(
        WriteAction::Update,
        did,
        collection,
        Some(rkey),
        record,
        validate,
    )
}

/// Prepares the deletion of a record.
pub fn prepare_delete(did: &str, collection: &str, rkey: &str) -> Result<PreparedWrite, XrpcError> {
    check_collection(collection)?;
    check_rkey(rkey)?;
    Ok(PreparedWrite {
        action: WriteAction::Delete,
        collection: collection.to_owned(),
        rkey: rkey.to_owned(),
        uri: format!("at://{did}/{collection}/{rkey}"),
        record: None,
        cid: None,
        blobs: Vec::new(),
        validation_status: None,
        swap_record: None,
    })
}

/// A rev greater than `previous`: the next TID of the process clock,
/// moved past `previous` first if the clock is behind it.
pub fn next_rev(previous: &str) -> String {
    let clock = TidClock::global();
    let rev = clock.next();
    if rev.as_str() > previous {
        return rev.as_str().to_owned();
    }
    if let Ok(previous) = Tid::new(previous) {
        clock.advance_past(previous);
    }
    clock.next().as_str().to_owned()
}

/// The reference's answer to a failed `swapCommit`.
fn bad_commit_swap(current: &Cid) -> XrpcError {
    invalid(format!("Commit was at {current}")).with_name("InvalidSwap")
}

/// The reference's answer to a failed `swapRecord`.
fn bad_record_swap(current: Option<&Cid>) -> XrpcError {
    let at = current.map_or_else(|| "null".to_owned(), Cid::to_string);
    invalid(format!("Record was at {at}")).with_name("InvalidSwap")
}

/// Checks one write's `swapRecord` against the current record, with the
/// reference's rules.
fn check_record_swap(write: &PreparedWrite, current: Option<&Cid>) -> Result<(), XrpcError> {
    let Some(swap) = &write.swap_record else {
        return Ok(());
    };
    let mismatch = match (write.action, swap) {
        (WriteAction::Create, Some(_)) => true,
        (WriteAction::Update | WriteAction::Delete, None) => true,
        _ => match (swap, current) {
            (None, None) => false,
            (Some(swap), Some(current)) => swap != current,
            _ => true,
        },
    };
    if mismatch {
        Err(bad_record_swap(current))
    } else {
        Ok(())
    }
}

async fn blocking<T, F>(f: F) -> Result<T, XrpcError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, XrpcError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| to_xrpc(Error::Internal(format!("blocking task failed: {err}"))))?
}

/// Builds (signs, but does not store) the commit of `writes` on the
/// current head.
fn build_commit(
    store: &ActorStore,
    writes: &[PreparedWrite],
    swap_commit: Option<Cid>,
) -> Result<CommitData, XrpcError> {
    let mut repo = store.open_repo().map_err(to_xrpc)?;
    let (head_cid, head_rev) = match repo.head() {
        Some((cid, commit)) => (*cid, commit.rev.clone()),
        None => {
            return Err(invalid(format!("No repo root found for {}", store.did())));
        }
    };
    if let Some(swap) = swap_commit {
        if swap != head_cid {
            return Err(bad_commit_swap(&head_cid));
        }
    }
    for write in writes {
        let current = repo
            .get_record_cid(&write.collection, &write.rkey)
            .map_err(|err| to_xrpc(err.into()))?;
        check_record_swap(write, current.as_ref())?;
    }
    for write in writes {
        let outcome = match (write.action, &write.record) {
            (WriteAction::Create, Some(record)) => repo
                .create_record(&write.collection, &write.rkey, record)
                .map(|_| ()),
            (WriteAction::Update, Some(record)) => repo
                .update_record(&write.collection, &write.rkey, record)
                .map(|_| ()),
            (WriteAction::Delete, _) => repo
                .delete_record(&write.collection, &write.rkey)
                .map(|_| ()),
            (_, None) => {
                return Err(to_xrpc(Error::Internal(format!(
                    "record write without a record: {}",
                    write.uri
                ))))
            }
        };
        match outcome {
            Ok(()) => {}
            Err(atp_repo_mst::Error::RecordExists(_)) => {
                return Err(invalid(format!("Record already exists: {}", write.uri)));
            }
            Err(atp_repo_mst::Error::RecordNotFound(_)) => {
                return Err(invalid(format!("Could not find record: {}", write.uri)));
            }
            Err(atp_repo_mst::Error::Syntax(err)) => return Err(invalid(err.to_string())),
            Err(atp_repo_mst::Error::InvalidMstKey(key)) => {
                return Err(invalid(format!("Invalid record path: {key}")));
            }
            Err(other) => return Err(to_xrpc(other.into())),
        }
    }
    let key = store.signing_key().map_err(to_xrpc)?;
    let rev = next_rev(&head_rev);
    let commit = repo.commit(&key, &rev).map_err(|err| to_xrpc(err.into()))?;
    let size: usize = commit.blocks.values().map(Vec::len).sum();
    if size > MAX_COMMIT_BYTES {
        return Err(invalid("Too many writes. Max event size: 2MB"));
    }
    Ok(commit)
}

/// A repository whose write lock is held: writes through it are the only
/// ones until it is dropped.
#[derive(Debug)]
pub struct LockedRepo {
    did: String,
    store: Arc<ActorStore>,
    guard: Arc<RepoLockGuard>,
}

/// Takes the write lock of `did`'s repository and opens its store.
pub async fn lock_repo(state: &PdsState, did: &str) -> Result<LockedRepo, XrpcError> {
    let guard = RepoLocks::global().lock(did).await.map_err(to_xrpc)?;
    let actors = Arc::clone(state.storage.actors());
    let owner = did.to_owned();
    let store = crate::db::run_blocking(move || actors.open(&owner))
        .await
        .map_err(to_xrpc)?;
    Ok(LockedRepo {
        did: did.to_owned(),
        store,
        guard: Arc::new(guard),
    })
}

/// What an import stored.
#[derive(Clone, Debug)]
pub struct ImportedRepo {
    /// The new head commit.
    pub commit_cid: Cid,
    /// Its rev.
    pub rev: String,
    /// Number of records indexed.
    pub records: usize,
    /// Number of blocks stored.
    pub blocks: usize,
}

impl LockedRepo {
    /// The repository's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The account's store.
    pub fn store(&self) -> &Arc<ActorStore> {
        &self.store
    }

    /// The CID of the record at `collection`/`rkey` in the record index
    /// (taken-down records included), if any.
    pub async fn record_cid(&self, collection: &str, rkey: &str) -> Result<Option<Cid>, XrpcError> {
        let store = Arc::clone(&self.store);
        let (collection, rkey) = (collection.to_owned(), rkey.to_owned());
        crate::db::run_blocking(move || store.get_record(&collection, &rkey))
            .await
            .map(|found| found.map(|(entry, _)| entry.cid))
            .map_err(to_xrpc)
    }

    /// Deletes of the records that `write` (a create) would duplicate:
    /// earlier records of its collection with the same backlink (a second
    /// follow or block of one account, like or repost of one record), as
    /// the reference removes them in the same commit.
    pub async fn backlink_conflicts(
        &self,
        write: &PreparedWrite,
    ) -> Result<Vec<PreparedWrite>, XrpcError> {
        let Some(record) = &write.record else {
            return Ok(Vec::new());
        };
        let links = crate::actor_store::record_backlinks(record);
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let store = Arc::clone(&self.store);
        let collection = write.collection.clone();
        let rkeys = crate::db::run_blocking(move || {
            let mut rkeys: Vec<String> = Vec::new();
            for link in &links {
                for rkey in store.backlink_conflicts(&collection, &link.path, &link.link_to)? {
                    if !rkeys.contains(&rkey) {
                        rkeys.push(rkey);
                    }
                }
            }
            Ok(rkeys)
        })
        .await
        .map_err(to_xrpc)?;
        rkeys
            .iter()
            .filter(|rkey| **rkey != write.rkey)
            .map(|rkey| prepare_delete(&self.did, &write.collection, rkey))
            .collect()
    }

    /// Applies `writes` in one commit on the current head (which must be
    /// `swap_commit` when given), stores it, sequences it and runs the blob
    /// hooks. Returns the stored commit. The work runs in its own task
    /// holding the lock, so a caller that goes away cannot leave a stored
    /// commit unsequenced.
    pub async fn apply(
        &self,
        state: &PdsState,
        writes: Vec<PreparedWrite>,
        swap_commit: Option<Cid>,
    ) -> Result<CommitData, XrpcError> {
        let (state, did, store) = (state.clone(), self.did.clone(), Arc::clone(&self.store));
        let guard = Arc::clone(&self.guard);
        tokio::spawn(async move {
            let result = apply_locked(&state, &did, &store, writes, swap_commit).await;
            drop(guard);
            result
        })
        .await
        .map_err(|err| to_xrpc(Error::Internal(format!("write task failed: {err}"))))?
    }

    /// Replaces the repository with the one in `car`, verified in full: a
    /// single root that is a commit for this DID, and a complete,
    /// canonical MST whose records are valid. The commit must be signed
    /// with the account's key here or with the `#atproto` key its DID
    /// document lists now (an account moving in imports a repository its
    /// previous server signed, before the document names the new key).
    /// Records are indexed with their blob references and backlinks, and a
    /// `#sync` event announces the new head.
    pub async fn import(
        &self,
        state: &PdsState,
        car: Vec<u8>,
        limits: CarLimits,
    ) -> Result<ImportedRepo, XrpcError> {
        let (state, did, store) = (state.clone(), self.did.clone(), Arc::clone(&self.store));
        let guard = Arc::clone(&self.guard);
        tokio::spawn(async move {
            let result = import_locked(&state, &did, &store, car, limits).await;
            drop(guard);
            result
        })
        .await
        .map_err(|err| to_xrpc(Error::Internal(format!("import task failed: {err}"))))?
    }
}

/// [`LockedRepo::apply`], run with the lock held.
async fn apply_locked(
    state: &PdsState,
    did: &str,
    store: &Arc<ActorStore>,
    writes: Vec<PreparedWrite>,
    swap_commit: Option<Cid>,
) -> Result<CommitData, XrpcError> {
    if writes.len() > MAX_WRITES {
        return Err(invalid("Too many writes. Max: 200"));
    }
    let refs: Vec<BlobRef> = writes
        .iter()
        .flat_map(|write| write.blobs.iter().cloned())
        .collect();
    let mut blob_map: BTreeMap<String, Vec<Cid>> = BTreeMap::new();
    for write in &writes {
        let cids = write.blobs.iter().map(|blob| blob.cid).collect();
        blob_map.insert(write.path(), cids);
    }
    let mut blob_cids: Vec<Cid> = Vec::new();
    for blob in &refs {
        if !blob_cids.contains(&blob.cid) {
            blob_cids.push(blob.cid);
        }
    }

    let building = Arc::clone(store);
    let commit = blocking(move || build_commit(&building, &writes, swap_commit)).await?;

    crate::http::blob::check_write_blobs(state, did, &refs).await?;
    let moved = move_referenced_uploads(state, did, store, &blob_cids).await?;

    let storing = Arc::clone(store);
    let commit = blocking(move || {
        storing
            .transact(|tx| {
                tx.apply_commit(&commit, &blob_map)?;
                for temp_key in &moved {
                    blob_index::mark_permanent_in(tx.sql(), temp_key)?;
                }
                Ok(())
            })
            .map_err(to_xrpc)?;
        Ok(commit)
    })
    .await?;

    let sequencer = state.sequencer.clone();
    let owner = did.to_owned();
    let commit = blocking(move || {
        if let Err(err) = sequencer.sequence_commit(&owner, &commit, &blob_cids) {
            tracing::error!(did = %owner, rev = %commit.rev, error = %err, "could not sequence a stored commit");
        }
        Ok(commit)
    })
    .await?;

    if let Err(err) = crate::http::blob::after_commit(state, did, &commit).await {
        tracing::error!(%did, rev = %commit.rev, error = %err.message(), "blob hooks failed after a commit");
    }
    Ok(commit)
}

/// Moves the temporary uploads among `cids` to their permanent place,
/// before the commit referencing them is stored: a crash after the commit
/// can then never leave a record pointing at a temporary blob. Moving is
/// idempotent (a blob already in place just drops its temporary copy), so
/// a commit that fails after this and is retried moves nothing twice.
/// Returns the temporary keys moved, to be marked permanent with the
/// commit.
async fn move_referenced_uploads(
    state: &PdsState,
    did: &str,
    store: &Arc<ActorStore>,
    cids: &[Cid],
) -> Result<Vec<String>, XrpcError> {
    let mut moved = Vec::new();
    for cid in cids {
        let (reading, cid) = (Arc::clone(store), *cid);
        let row = blocking(move || blob_index::get_blob(&reading, &cid).map_err(to_xrpc)).await?;
        let Some(temp_key) = row.and_then(|row| row.temp_key) else {
            continue;
        };
        state
            .blobs
            .make_permanent(did, &temp_key, &cid)
            .await
            .map_err(to_xrpc)?;
        moved.push(temp_key);
    }
    Ok(moved)
}

/// [`LockedRepo::import`], run with the lock held.
async fn import_locked(
    state: &PdsState,
    did: &str,
    store: &Arc<ActorStore>,
    car: Vec<u8>,
    limits: CarLimits,
) -> Result<ImportedRepo, XrpcError> {
    let reading = Arc::clone(store);
    let owner = did.to_owned();
    let (verified, local_key) = blocking(move || {
        let key = reading.signing_key().map_err(to_xrpc)?;
        let options = ImportOptions {
            did: Some(owner),
            signing_key: None,
            limits,
            ..ImportOptions::default()
        };
        let verified = import_car(car.as_slice(), &options).map_err(|err| match err {
            atp_repo_mst::Error::InvalidCar(message) if message.contains("root") => {
                invalid("expected one root")
            }
            other => invalid(format!("Invalid repository: {other}")),
        })?;
        Ok((verified, key.public_key()))
    })
    .await?;
    if verified.commit.verify(&local_key).is_err() {
        let listed = document_signing_key(state, did).await;
        let signed_by_listed = listed
            .as_ref()
            .is_some_and(|key| verified.commit.verify(key).is_ok());
        if !signed_by_listed {
            return Err(invalid(
                "Invalid repository: the commit is not signed by the account's key",
            ));
        }
    }

    let store = Arc::clone(store);
    let did = did.to_owned();
    let sequencer = state.sequencer.clone();
    blocking(move || {
        let mut keep = BlockMap::new();
        let mut blobs: BTreeMap<String, Vec<Cid>> = BTreeMap::new();
        let commit_bytes = verified
            .blocks
            .get(&verified.commit_cid)
            .ok_or_else(|| invalid("expected one root"))?;
        keep.insert(verified.commit_cid, commit_bytes.clone());
        for node in &verified.nodes {
            if let Some(bytes) = verified.blocks.get(node) {
                keep.insert(*node, bytes.clone());
            }
        }
        for (path, cid) in &verified.records {
            let bytes = verified
                .blocks
                .get(cid)
                .ok_or_else(|| invalid(format!("Could not parse record at '{path}'")))?;
            let record = atp_crypto::dagcbor::decode_ipld(bytes)
                .map_err(|_| invalid(format!("Could not parse record at '{path}'")))?;
            let refs: Vec<Cid> = find_blob_refs(&record).iter().map(|r| r.cid).collect();
            if !refs.is_empty() {
                blobs.insert(path.clone(), refs);
            }
            keep.insert(*cid, bytes.clone());
        }
        let rev = verified.commit.rev.clone();
        if let Ok(tid) = Tid::new(&rev) {
            TidClock::global().advance_past(tid);
        }
        store
            .transact(|tx| {
                tx.replace_repo(&verified.commit_cid, &rev, &keep, &verified.records, &blobs)
            })
            .map_err(to_xrpc)?;
        if let Err(err) = sequencer.sequence_sync(&did, &verified.commit_cid, commit_bytes, &rev) {
            tracing::error!(%did, %rev, error = %err, "could not sequence an imported repository");
        }
        Ok(ImportedRepo {
            commit_cid: verified.commit_cid,
            rev,
            records: verified.records.len(),
            blocks: keep.len(),
        })
    })
    .await
}

/// The `#atproto` signing key `did`'s document lists now (`did:plc`
/// through the directory), if it can be found.
async fn document_signing_key(state: &PdsState, did: &str) -> Option<atp_crypto::PublicKey> {
    if !did.starts_with("did:plc:") {
        return None;
    }
    let doc = match state.directory.resolve(did).await {
        Ok(doc) => doc,
        Err(err) => {
            tracing::warn!(%did, error = %err, "could not resolve the DID document for an import");
            return None;
        }
    };
    signing_key_in_document(&doc)
}

/// The key of the `#atproto` verification method of a DID document: a
/// `Multikey` (multicodec-prefixed), or the legacy
/// `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`
/// form (the bare point), which the PLC directory still serves.
pub fn signing_key_in_document(doc: &Value) -> Option<atp_crypto::PublicKey> {
    let method = doc
        .get("verificationMethod")?
        .as_array()?
        .iter()
        .find(|method| {
            method
                .get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id.ends_with("#atproto"))
        })?;
    let text = method.get("publicKeyMultibase")?.as_str()?;
    let legacy = match method.get("type").and_then(Value::as_str) {
        Some("EcdsaSecp256k1VerificationKey2019") => Some(atp_crypto::Algorithm::K256),
        Some("EcdsaSecp256r1VerificationKey2019") => Some(atp_crypto::Algorithm::P256),
        _ => None,
    };
    match legacy {
        Some(alg) => atp_crypto::did_key::parse_legacy_multibase(alg, text).ok(),
        None => atp_crypto::PublicKey::from_multibase(text).ok(),
    }
}

/// Takes `did`'s lock and applies `writes` in one commit (see
/// [`LockedRepo::apply`]).
pub async fn apply_writes(
    state: &PdsState,
    did: &str,
    writes: Vec<PreparedWrite>,
    swap_commit: Option<Cid>,
) -> Result<CommitData, XrpcError> {
    lock_repo(state, did)
        .await?
        .apply(state, writes, swap_commit)
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

    #[tokio::test]
    async fn locks_serialize_one_repo_and_are_dropped_when_unused() {
        let locks = RepoLocks::new();
        let first = locks.lock(DID).await.unwrap();
        assert_eq!(locks.len(), 1);
        // Another repository is not blocked.
        let other = locks
            .lock("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
            .await
            .unwrap();
        assert_eq!(locks.len(), 2);
        drop(other);
        assert_eq!(locks.len(), 1);
        // The same repository waits for the first holder.
        let second = tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock(DID));
        assert!(second.await.is_err());
        drop(first);
        assert!(locks.is_empty());
        let again = locks.lock(DID).await.unwrap();
        drop(again);
        assert!(locks.is_empty());
    }

    #[test]
    fn type_is_added_or_must_match() {
        let write = prepare_create(DID, "com.example.thing", None, &json!({"a": 1}), None).unwrap();
        let Some(Ipld::Map(map)) = &write.record else {
            panic!("a record")
        };
        assert_eq!(
            map.get("$type"),
            Some(&Ipld::String("com.example.thing".to_owned()))
        );
        assert_eq!(write.validation_status, Some(ValidationStatus::Unknown));
        assert!(Tid::is_valid(&write.rkey));

        let err = prepare_create(
            DID,
            "com.example.thing",
            None,
            &json!({"$type": "com.example.other"}),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid $type: expected com.example.thing, got com.example.other"
        );
    }

    #[test]
    fn validation_flag_follows_the_reference() {
        let post = json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"});
        let write = prepare_create(DID, "app.bsky.feed.post", None, &post, None).unwrap();
        assert_eq!(write.validation_status, Some(ValidationStatus::Valid));
        let write = prepare_create(DID, "app.bsky.feed.post", None, &post, Some(false)).unwrap();
        assert_eq!(write.validation_status, None);
        let bad = json!({"$type": "app.bsky.feed.post", "text": 5, "createdAt": "2024-01-01T00:00:00.000Z"});
        let err = prepare_create(DID, "app.bsky.feed.post", None, &bad, None).unwrap_err();
        assert!(err
            .message()
            .starts_with("Invalid app.bsky.feed.post record:"));
        assert!(prepare_create(DID, "app.bsky.feed.post", None, &bad, Some(false)).is_ok());
        let err =
            prepare_create(DID, "com.example.thing", None, &json!({}), Some(true)).unwrap_err();
        assert_eq!(err.message(), "Unknown lexicon type: com.example.thing");
        let err =
            prepare_create(DID, "app.bsky.feed.post", Some("bad key!"), &post, None).unwrap_err();
        assert_eq!(err.message(), "Invalid record key: bad key!");
        let err = prepare_create(DID, "com.example.thing", Some(""), &json!({}), None).unwrap_err();
        assert_eq!(err.message(), "Invalid record key: ");
        // A post's key must be a TID.
        let err = prepare_create(DID, "app.bsky.feed.post", Some("self"), &post, None).unwrap_err();
        assert!(err
            .message()
            .starts_with("Invalid record key for app.bsky.feed.post"));
    }

    #[test]
    fn only_the_reference_s_record_types_are_validated() {
        let record = json!({"$type": "app.bsky.graph.referencelistoptout"});
        let write = prepare_create(
            DID,
            "app.bsky.graph.referencelistoptout",
            None,
            &record,
            None,
        )
        .unwrap();
        assert_eq!(write.validation_status, Some(ValidationStatus::Unknown));
        for collection in VALIDATED_RECORD_TYPES {
            assert!(Nsid::is_valid(collection));
        }
    }

    #[test]
    fn record_swap_rules() {
        let cid = atp_crypto::cid_for_dag_cbor(b"x");
        let other = atp_crypto::cid_for_dag_cbor(b"y");
        let create = prepare_create(DID, "com.example.thing", Some("a"), &json!({}), None).unwrap();
        let update = prepare_update(DID, "com.example.thing", "a", &json!({}), None).unwrap();
        let delete = prepare_delete(DID, "com.example.thing", "a").unwrap();
        // No condition: anything goes.
        assert!(check_record_swap(&create, Some(&cid)).is_ok());
        // Create with "must not exist".
        let c = create.clone().with_swap_record(Some(None));
        assert!(check_record_swap(&c, None).is_ok());
        assert_eq!(
            check_record_swap(&c, Some(&cid)).unwrap_err().message(),
            format!("Record was at {cid}")
        );
        assert!(check_record_swap(&create.with_swap_record(Some(Some(cid))), None).is_err());
        // Update and delete need the current CID.
        for write in [update, delete] {
            assert!(check_record_swap(&write.clone().with_swap_record(Some(None)), None).is_err());
            let w = write.with_swap_record(Some(Some(cid)));
            assert!(check_record_swap(&w, Some(&cid)).is_ok());
            let err = check_record_swap(&w, Some(&other)).unwrap_err();
            assert_eq!(err.name(), "InvalidSwap");
            assert_eq!(err.message(), format!("Record was at {other}"));
            assert_eq!(
                check_record_swap(&w, None).unwrap_err().message(),
                "Record was at null"
            );
        }
    }

    #[test]
    fn next_rev_passes_a_rev_from_the_future() {
        let now = chrono::Utc::now().timestamp_micros() as u64;
        let future = Tid::from_parts(now + 5_000_000, 0).unwrap();
        let rev = next_rev(future.as_str());
        assert!(rev.as_str() > future.as_str());
        let later = next_rev(&rev);
        assert!(later > rev);
    }
}
