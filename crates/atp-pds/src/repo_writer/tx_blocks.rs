//! A block store that reads through an account store's open write
//! transaction: the commits of a group are built one after the other in
//! one transaction, and each must see the blocks the ones before it
//! stored there, which other connections cannot see yet.

use std::cell::RefCell;
use std::collections::HashMap;

use atp_crypto::Cid;
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::car::BlockMap;
use rusqlite::Transaction;

use super::netted_blocks::NettedBlocks;
use crate::actor_store::ActorStore;

/// What the commits of one group share while they are built: the stored
/// blocks they read, and their block writes, netted
/// ([`NettedBlocks`]) until the group's last commit is built.
#[derive(Debug, Default)]
pub(super) struct GroupBlockState {
    /// The stored blocks the group read: with the commits' own blocks,
    /// they hold the proof nodes of its events.
    pub read: RefCell<BlockMap>,
    /// The group's block writes and deletions, not yet stored.
    pub netted: RefCell<NettedBlocks>,
}

/// Reads blocks from the group's netted writes, then the transaction;
/// writes stay in memory (the commit builder's blocks go to the group's
/// [`NettedBlocks`] once its commit is planned).
/// Through the MST crate's blanket impl it is also a `BlockSource` for
/// the proofs of `#commit` events.
pub(super) struct TxBlocks<'a> {
    tx: &'a Transaction<'a>,
    staged: RefCell<HashMap<Cid, Vec<u8>>>,
    group: &'a GroupBlockState,
    store: &'a ActorStore,
}

impl<'a> TxBlocks<'a> {
    /// A store over `tx` (a transaction of `store`) with nothing staged,
    /// which keeps every stored block it reads in `group.read` (and looks
    /// there first): the blocks a group's trees were read from, for
    /// building its events once the transaction is over. Blocks the store
    /// keeps in memory ([`ActorStore::recent_block`]) are not read from
    /// `tx`, and blocks the group wrote are read from `group.netted`.
    pub(super) fn new(
        tx: &'a Transaction<'a>,
        group: &'a GroupBlockState,
        store: &'a ActorStore,
    ) -> Self {
        TxBlocks {
            tx,
            staged: RefCell::new(HashMap::new()),
            group,
            store,
        }
    }

    /// Forgets the staged blocks (once they are stored in the
    /// transaction).
    pub(super) fn clear_staged(&self) {
        self.staged.borrow_mut().clear();
    }
}

fn store_error(err: crate::Error) -> atp_repo_mst::Error {
    atp_repo_mst::Error::BlockStore(err.to_string())
}

impl BlockStore for TxBlocks<'_> {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, atp_repo_mst::Error> {
        if let Some(bytes) = self.staged.borrow().get(cid) {
            return Ok(Some(bytes.clone()));
        }
        if let Some(bytes) = self.group.read.borrow().get(cid) {
            return Ok(Some(bytes.clone()));
        }
        if let Some(bytes) = self.group.netted.borrow().get(cid) {
            return Ok(Some(bytes));
        }
        let found = match self.store.recent_block(cid) {
            Some(bytes) => Some(bytes),
            None => crate::block_store::get_block(self.tx, cid).map_err(store_error)?,
        };
        if let Some(bytes) = &found {
            self.group.read.borrow_mut().insert(*cid, bytes.clone());
        }
        Ok(found)
    }

    /// Asks the group's writes, then the transaction itself, not the
    /// blocks read or the store's recent blocks: a commit of the group may
    /// have deleted a block that a later one builds again, which must then
    /// be written again.
    fn has(&self, cid: &Cid) -> Result<bool, atp_repo_mst::Error> {
        if self.staged.borrow().contains_key(cid) {
            return Ok(true);
        }
        if let Some(stored) = self.group.netted.borrow().has(cid) {
            return Ok(stored);
        }
        crate::block_store::has_block(self.tx, cid).map_err(store_error)
    }

    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), atp_repo_mst::Error> {
        self.staged.borrow_mut().insert(*cid, bytes.to_vec());
        Ok(())
    }

    fn put_many(&self, blocks: &BlockMap) -> Result<(), atp_repo_mst::Error> {
        let mut staged = self.staged.borrow_mut();
        for (cid, bytes) in blocks {
            staged.insert(*cid, bytes.clone());
        }
        Ok(())
    }
}
