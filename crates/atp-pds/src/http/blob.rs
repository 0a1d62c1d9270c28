//! Blobs: `com.atproto.repo.uploadBlob`, `listMissingBlobs`,
//! `com.atproto.sync.getBlob` and `listBlobs`, and the hooks record
//! writes call so that referenced blobs become permanent and
//! unreferenced ones are collected.

use std::sync::Arc;

use atp_repo_mst::repo::CommitData;
use atp_xrpc::server::{Router, XrpcError};

use super::state::PdsState;
use crate::blob_refs::BlobRef;

/// Checks, before a commit, that every blob the written records reference
/// was uploaded by `did` (temporary or already permanent) and matches the
/// declared type and size; the reference answers `BlobNotFound` otherwise.
pub async fn check_write_blobs(
    state: &PdsState,
    did: &str,
    refs: &[BlobRef],
) -> Result<(), XrpcError> {
    let _ = (state, did, refs);
    Ok(())
}

/// After a commit was stored: makes the blobs its records now reference
/// permanent and deletes the blobs no record references any more.
pub async fn after_commit(
    state: &PdsState,
    did: &str,
    commit: &CommitData,
) -> Result<(), XrpcError> {
    let _ = (state, did, commit);
    Ok(())
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    let _ = (router, state);
    Ok(())
}
