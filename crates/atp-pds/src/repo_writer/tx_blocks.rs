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

use crate::actor_store::ActorStore;

/// Reads blocks from the transaction; writes stay in memory (the commit
/// builder's blocks are stored with their rev by
/// [`ActorTransaction::apply_commit`](crate::actor_store::ActorTransaction::apply_commit)).
/// Through the MST crate's blanket impl it is also a `BlockSource` for
/// the proofs of `#commit` events.
pub(super) struct TxBlocks<'a> {
    tx: &'a Transaction<'a>,
    staged: RefCell<HashMap<Cid, Vec<u8>>>,
    read: &'a RefCell<BlockMap>,
    store: &'a ActorStore,
}

impl<'a> TxBlocks<'a> {
    /// A store over `tx` (a transaction of `store`) with nothing staged,
    /// which keeps every stored block it reads in `read` (and looks there
    /// first): the blocks a group's trees were read from, for building its
    /// events once the transaction is over. Blocks the store keeps in
    /// memory ([`ActorStore::recent_block`]) are not read from `tx`.
    pub(super) fn new(
        tx: &'a Transaction<'a>,
        read: &'a RefCell<BlockMap>,
        store: &'a ActorStore,
    ) -> Self {
        TxBlocks {
            tx,
            staged: RefCell::new(HashMap::new()),
            read,
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
        if let Some(bytes) = self.read.borrow().get(cid) {
            return Ok(Some(bytes.clone()));
        }
        let found = match self.store.recent_block(cid) {
            Some(bytes) => Some(bytes),
            None => crate::block_store::get_block(self.tx, cid).map_err(store_error)?,
        };
        if let Some(bytes) = &found {
            self.read.borrow_mut().insert(*cid, bytes.clone());
        }
        Ok(found)
    }

    /// Asks the transaction itself, not the blocks read or the store's
    /// recent blocks: a commit of the group may have deleted a block that
    /// a later one builds again, which must then be written again.
    fn has(&self, cid: &Cid) -> Result<bool, atp_repo_mst::Error> {
        if self.staged.borrow().contains_key(cid) {
            return Ok(true);
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
