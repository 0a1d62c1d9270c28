//! Content-addressed block storage: the [`BlockStore`] trait and an
//! in-memory implementation, [`MemoryBlockStore`].
//!
//! A block is the bytes of one DAG-CBOR object (an MST node, a record, a
//! commit) stored under its CID. The MST loads nodes from a store on demand
//! and writes only the blocks it created, so a repository never has to fit
//! in memory. The PDS implements the trait on SQLite.
//!
//! ```
//! use atp_crypto::cid_for_dag_cbor;
//! use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
//!
//! let store = MemoryBlockStore::new();
//! let bytes = vec![0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];
//! let cid = cid_for_dag_cbor(&bytes);
//! store.put(&cid, &bytes)?;
//! assert!(store.has(&cid)?);
//! assert_eq!(store.get(&cid)?, Some(bytes));
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use atp_crypto::Cid;

use crate::car::BlockMap;
use crate::Error;

/// Storage of blocks by CID.
///
/// Methods take `&self` so one store can be shared by a tree, a repository
/// and readers; implementations use interior mutability for writes.
/// Writers are trusted to pass bytes that hash to the CID (the MST and
/// [`Repo`](crate::repo::Repo) always do); a store need not re-check.
pub trait BlockStore {
    /// The bytes stored under `cid`, or `None` if the store lacks it.
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error>;

    /// Whether the store holds `cid`.
    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        Ok(self.get(cid)?.is_some())
    }

    /// Stores `bytes` under `cid` (storing an existing block again is fine).
    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), Error>;

    /// Stores every block of `blocks`.
    fn put_many(&self, blocks: &BlockMap) -> Result<(), Error> {
        for (cid, bytes) in blocks {
            self.put(cid, bytes)?;
        }
        Ok(())
    }

    /// The bytes under `cid`, or [`Error::MissingBlock`].
    fn get_required(&self, cid: &Cid) -> Result<Vec<u8>, Error> {
        self.get(cid)?.ok_or(Error::MissingBlock(*cid))
    }
}

/// Implements [`BlockStore`] for pointer types by forwarding to the
/// store they point to.
macro_rules! forward_block_store {
    ($($pointer:ty),*) => {$(
        impl<T: BlockStore + ?Sized> BlockStore for $pointer {
            fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
                (**self).get(cid)
            }
            fn has(&self, cid: &Cid) -> Result<bool, Error> {
                (**self).has(cid)
            }
            fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), Error> {
                (**self).put(cid, bytes)
            }
            fn put_many(&self, blocks: &BlockMap) -> Result<(), Error> {
                (**self).put_many(blocks)
            }
        }
    )*};
}

forward_block_store!(&T, Arc<T>, Box<T>);

/// A thread-safe in-memory [`BlockStore`].
#[derive(Debug, Default)]
pub struct MemoryBlockStore {
    blocks: RwLock<HashMap<Cid, Arc<[u8]>>>,
}

fn poisoned() -> Error {
    Error::BlockStore("memory block store lock poisoned".to_owned())
}

impl MemoryBlockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `blocks` (for example the blocks of a CAR file).
    pub fn from_blocks(blocks: BlockMap) -> Self {
        let map = blocks
            .into_iter()
            .map(|(cid, bytes)| (cid, Arc::from(bytes)))
            .collect();
        Self {
            blocks: RwLock::new(map),
        }
    }

    /// Number of blocks stored.
    pub fn len(&self) -> Result<usize, Error> {
        Ok(self.blocks.read().map_err(|_| poisoned())?.len())
    }

    /// Whether the store holds no block.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// A copy of every stored block, ordered by CID.
    pub fn to_block_map(&self) -> Result<BlockMap, Error> {
        let guard = self.blocks.read().map_err(|_| poisoned())?;
        Ok(guard
            .iter()
            .map(|(cid, bytes)| (*cid, bytes.to_vec()))
            .collect())
    }
}

impl BlockStore for MemoryBlockStore {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, Error> {
        let guard = self.blocks.read().map_err(|_| poisoned())?;
        Ok(guard.get(cid).map(|bytes| bytes.to_vec()))
    }

    fn has(&self, cid: &Cid) -> Result<bool, Error> {
        Ok(self
            .blocks
            .read()
            .map_err(|_| poisoned())?
            .contains_key(cid))
    }

    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), Error> {
        let mut guard = self.blocks.write().map_err(|_| poisoned())?;
        guard.entry(*cid).or_insert_with(|| Arc::from(bytes));
        Ok(())
    }

    fn put_many(&self, blocks: &BlockMap) -> Result<(), Error> {
        let mut guard = self.blocks.write().map_err(|_| poisoned())?;
        for (cid, bytes) in blocks {
            guard
                .entry(*cid)
                .or_insert_with(|| Arc::from(bytes.as_slice()));
        }
        Ok(())
    }
}
