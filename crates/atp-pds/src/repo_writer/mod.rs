//! The write path of repositories: record creates, updates and deletes
//! (one write or a batch of them per commit), and whole-repository imports.
//!
//! One module per step:
//!
//! - [`prepare`]: [`prepare_create`], [`prepare_update`] and
//!   [`prepare_delete`] check each write on its own (`$type` against the
//!   collection, record key, lexicon validation), convert the JSON record
//!   to DAG-CBOR and find its blob references. Nothing is locked yet.
//! - `group`: [`submit`] queues a request ([`WriteRequest`]) for its
//!   repository. Writes to one repository are serialized by a per-DID
//!   async lock ([`RepoLocks`]); whoever holds it commits every request
//!   queued meanwhile as one group: one commit per request (consecutive
//!   plain creates share one), all stored in one SQLite transaction,
//!   their events appended to the log in one more. Writes to different
//!   repositories run in parallel, and their event appends share
//!   transactions too.
//! - `build`: inside that transaction, one request after the other:
//!   check `swapCommit` and each `swapRecord` against the head as the
//!   requests before it left it, apply the writes, sign a commit with the
//!   account's key at a new rev (a TID greater than the previous one), and
//!   store root, record index and record→blob references; the group's
//!   blocks are netted and stored once. A request refused by its checks
//!   has written nothing and fails alone.
//! - `locked`: [`lock_repo`] takes the lock for a caller that needs the
//!   repository to itself ([`LockedRepo::import`], [`LockedRepo::apply`]).
//! - `import`: replacing the repository with a verified CAR.
//!
//! Refusals are XRPC answers with the reference PDS's names and messages
//! (`InvalidSwap`, `InvalidRequest`).
//!
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

mod build;
mod group;
mod import;
mod key_cache;
mod locked;
mod locks;
mod netted_blocks;
pub mod prepare;
mod tx_blocks;

use atp_crypto::Cid;
use atp_repo_mst::repo::CommitData;
use atp_xrpc::server::XrpcError;

use crate::error::Error;
use crate::http::errors::to_xrpc;
use crate::http::PdsState;

pub use group::{queued_requests, submit, WriteOutcome, WriteRequest};
pub use import::{signing_key_in_document, ImportedRepo};
pub use locked::{lock_repo, LockedRepo};
pub use locks::{RepoLockGuard, RepoLocks};
pub use prepare::{
    lexicons, next_rev, prepare_create, prepare_delete, prepare_update, PreparedWrite,
    VALIDATED_RECORD_TYPES,
};

/// Most writes in one `applyWrites` batch (as the reference).
pub const MAX_WRITES: usize = 200;

/// Largest commit, in bytes of new blocks (the reference's 2 MB event cap).
pub const MAX_COMMIT_BYTES: usize = 2_000_000;

async fn blocking<T, F>(f: F) -> Result<T, XrpcError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, XrpcError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|err| to_xrpc(Error::Internal(format!("blocking task failed: {err}"))))?
}

/// Applies `writes` to `did`'s repository in one commit on its current
/// head (which must be `swap_commit` when given), committed in a group
/// with the other requests waiting for the repository (see [`submit`]).
/// Returns the stored commit once it and its event are durable.
pub async fn apply_writes(
    state: &PdsState,
    did: &str,
    writes: Vec<PreparedWrite>,
    swap_commit: Option<Cid>,
) -> Result<CommitData, XrpcError> {
    submit(state, did, WriteRequest::Writes(writes), swap_commit)
        .await?
        .commit
        .ok_or_else(|| to_xrpc(Error::Internal("a write made no commit".to_owned())))
}
