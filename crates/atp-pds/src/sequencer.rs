//! The durable, sequenced event log behind `subscribeRepos`: `#commit`,
//! `#sync`, `#identity` and `#account` events.

use atp_crypto::Cid;
use atp_repo_mst::repo::CommitData;

use crate::error::Result;

/// Appends events to the log and wakes subscribers.
#[derive(Clone, Debug, Default)]
pub struct Sequencer {}

impl Sequencer {
    /// Records the `#commit` event of a commit just stored for `did`,
    /// whose records reference `blobs`; returns its sequence number.
    pub fn sequence_commit(&self, did: &str, commit: &CommitData, blobs: &[Cid]) -> Result<i64> {
        let _ = (did, commit, blobs);
        Ok(0)
    }

    /// Records an `#identity` event (handle change, DID document update).
    pub fn sequence_identity(&self, did: &str, handle: Option<&str>) -> Result<i64> {
        let _ = (did, handle);
        Ok(0)
    }

    /// Records an `#account` event: `active`, with `status` when not
    /// active (`takendown`, `suspended`, `deleted`, `deactivated`).
    pub fn sequence_account(&self, did: &str, active: bool, status: Option<&str>) -> Result<i64> {
        let _ = (did, active, status);
        Ok(0)
    }
}
