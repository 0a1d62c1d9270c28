//! A repository whose write lock is held by the caller
//! ([`lock_repo`]): for imports, and for writes that must not share a
//! group with others.

use std::sync::Arc;

use atp_crypto::Cid;
use atp_repo_mst::car::CarLimits;
use atp_repo_mst::repo::CommitData;
use atp_xrpc::server::XrpcError;

use super::group::{run_group, WriteRequest};
use super::import::{import_locked, ImportedRepo};
use super::locks::{RepoLockGuard, RepoLocks};
use super::prepare::{prepare_delete, PreparedWrite};
use crate::actor_store::ActorStore;
use crate::error::Error;
use crate::http::errors::to_xrpc;
use crate::http::PdsState;

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
    /// hooks, as a group of one (the lock is held here, so no other request
    /// can join). Returns the stored commit. The work runs in its own task
    /// holding the lock, so a caller that goes away cannot leave a stored
    /// commit unsequenced.
    pub async fn apply(
        &self,
        state: &PdsState,
        writes: Vec<PreparedWrite>,
        swap_commit: Option<Cid>,
    ) -> Result<CommitData, XrpcError> {
        let (state, did) = (state.clone(), self.did.clone());
        let guard = Arc::clone(&self.guard);
        tokio::spawn(async move {
            let job = (WriteRequest::Writes(writes), swap_commit);
            let answer = run_group(&state, &did, vec![job]).await.pop();
            drop(guard);
            answer
        })
        .await
        .map_err(|err| to_xrpc(Error::Internal(format!("write task failed: {err}"))))?
        .unwrap_or_else(|| Err(to_xrpc(Error::Internal("a write got no answer".to_owned()))))
        .and_then(|outcome| {
            outcome
                .commit
                .ok_or_else(|| to_xrpc(Error::Internal("a write made no commit".to_owned())))
        })
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
