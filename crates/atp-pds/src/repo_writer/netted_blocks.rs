//! The block writes of a group of commits, netted before they reach
//! SQLite.
//!
//! Each commit of a group replaces the nodes along the paths it changes,
//! and its successor usually replaces the same nodes again (records with
//! increasing keys all land on the rightmost path). Written one commit at
//! a time, most of a group's new nodes were inserted into `repo_block`,
//! then deleted by the next commit in the same transaction: each a write
//! to a random leaf of the CID index. Netted, the group writes only the
//! blocks its last commit still reaches and deletes only the blocks that
//! were stored before it, once, when its last commit is built.
//!
//! The stored result is the one the commits would have left one by one: a
//! block deleted, then written again, keeps the rev of the commit that
//! wrote it again; a block written twice keeps its first rev, as `INSERT
//! OR IGNORE` does.

use std::collections::{BTreeMap, HashMap, HashSet};

use atp_crypto::Cid;
use atp_repo_mst::car::BlockMap;

use crate::actor_store::ActorTransaction;

/// The blocks a group has written and deleted so far, not yet in SQLite.
#[derive(Debug, Default)]
pub(super) struct NettedBlocks {
    /// Blocks written by the group and not deleted since: bytes and the
    /// rev of the commit that wrote them.
    written: HashMap<Cid, (Vec<u8>, String)>,
    /// Blocks the group deleted (whether or not they were stored before
    /// it; deleting one that is not stored does nothing).
    deleted: HashSet<Cid>,
}

impl NettedBlocks {
    /// Records that the commit at `rev` writes `blocks`.
    pub(super) fn write(&mut self, blocks: &BlockMap, rev: &str) {
        for (cid, bytes) in blocks {
            self.written
                .entry(*cid)
                .or_insert_with(|| (bytes.clone(), rev.to_owned()));
        }
    }

    /// Records that `cids` are deleted.
    pub(super) fn delete(&mut self, cids: impl IntoIterator<Item = Cid>) {
        for cid in cids {
            self.written.remove(&cid);
            self.deleted.insert(cid);
        }
    }

    /// Whether `cid` is stored as far as the group is concerned: `Some`
    /// when the group wrote or deleted it, `None` when only the
    /// transaction can tell.
    pub(super) fn has(&self, cid: &Cid) -> Option<bool> {
        if self.written.contains_key(cid) {
            Some(true)
        } else if self.deleted.contains(cid) {
            Some(false)
        } else {
            None
        }
    }

    /// The bytes of a block the group wrote and has not deleted.
    pub(super) fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.written.get(cid).map(|(bytes, _)| bytes.clone())
    }

    /// Applies the group's net writes to `atx`: the deletions first, then
    /// the blocks written, each tagged with the rev of the commit that
    /// wrote it.
    pub(super) fn store(self, atx: &ActorTransaction<'_>) -> crate::Result<()> {
        if !self.deleted.is_empty() {
            let deleted: Vec<Cid> = self.deleted.into_iter().collect();
            atx.delete_blocks(&deleted)?;
        }
        let mut by_rev: BTreeMap<String, BlockMap> = BTreeMap::new();
        for (cid, (bytes, rev)) in self.written {
            by_rev.entry(rev).or_default().insert(cid, bytes);
        }
        for (rev, blocks) in &by_rev {
            atx.put_blocks(blocks, rev)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u8) -> (Cid, Vec<u8>) {
        let bytes = vec![n];
        (atp_crypto::cid_for_dag_cbor(&bytes), bytes)
    }

    fn map(blocks: &[(Cid, Vec<u8>)]) -> BlockMap {
        blocks.iter().cloned().collect()
    }

    #[test]
    fn a_block_written_then_deleted_is_neither() {
        let mut netted = NettedBlocks::default();
        let (a, a_bytes) = block(1);
        netted.write(&map(&[(a, a_bytes.clone())]), "rev1");
        assert_eq!(netted.has(&a), Some(true));
        assert_eq!(netted.get(&a), Some(a_bytes));
        netted.delete([a]);
        assert_eq!(netted.has(&a), Some(false));
        assert_eq!(netted.get(&a), None);
        assert!(netted.written.is_empty());
    }

    #[test]
    fn a_block_written_again_after_its_deletion_takes_the_new_rev() {
        let mut netted = NettedBlocks::default();
        let (a, a_bytes) = block(1);
        netted.write(&map(&[(a, a_bytes.clone())]), "rev1");
        netted.delete([a]);
        netted.write(&map(&[(a, a_bytes.clone())]), "rev3");
        assert_eq!(netted.has(&a), Some(true));
        assert_eq!(netted.written.get(&a), Some(&(a_bytes, "rev3".to_owned())));
        // still deleted first when stored: a row from before the group
        // gives way to the new one
        assert!(netted.deleted.contains(&a));
    }

    #[test]
    fn a_block_written_twice_keeps_its_first_rev() {
        let mut netted = NettedBlocks::default();
        let (a, a_bytes) = block(1);
        netted.write(&map(&[(a, a_bytes.clone())]), "rev1");
        netted.write(&map(&[(a, a_bytes.clone())]), "rev2");
        assert_eq!(netted.written.get(&a), Some(&(a_bytes, "rev1".to_owned())));
    }

    #[test]
    fn blocks_the_group_never_touched_are_for_the_store_to_tell() {
        let netted = NettedBlocks::default();
        assert_eq!(netted.has(&block(9).0), None);
    }
}
