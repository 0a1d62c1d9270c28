//! The stores of all accounts, each opened once while in use, with the
//! least recently used of the idle ones kept open.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use atp_crypto::SigningKey;

use super::{actor_dir, ActorStore};
use crate::error::{Error, Result};

/// Most actor stores kept open while no one uses them. Each open store
/// holds SQLite connections and their page caches (up to a few MiB): the
/// server's memory must not grow with the number of accounts, only with
/// the number in use. Reopening one costs a file open and a schema check.
pub const MAX_IDLE_OPEN_STORES: usize = 32;

/// The stores of all accounts under `<data>/actors`. A store in use is
/// open once and shared, so that writes to one repository go through one
/// writer; of the stores no one uses, the [`MAX_IDLE_OPEN_STORES`] used
/// last stay open.
#[derive(Debug)]
pub struct ActorStores {
    root: PathBuf,
    open: Mutex<OpenStores>,
}

/// The open stores, each with the tick of its last use.
#[derive(Debug, Default)]
struct OpenStores {
    stores: HashMap<String, (Arc<ActorStore>, u64)>,
    tick: u64,
}

impl OpenStores {
    fn get(&mut self, did: &str) -> Option<Arc<ActorStore>> {
        self.tick += 1;
        let tick = self.tick;
        self.stores.get_mut(did).map(|(store, used)| {
            *used = tick;
            Arc::clone(store)
        })
    }

    /// Adds `store`, then closes the least recently used stores that no
    /// one holds beyond the idle limit.
    fn insert(&mut self, did: &str, store: &Arc<ActorStore>) {
        self.tick += 1;
        self.stores
            .insert(did.to_owned(), (Arc::clone(store), self.tick));
        if self.stores.len() <= MAX_IDLE_OPEN_STORES {
            return;
        }
        let mut idle: Vec<(u64, String)> = self
            .stores
            .iter()
            .filter(|(_, (store, _))| Arc::strong_count(store) == 1)
            .map(|(did, (_, used))| (*used, did.clone()))
            .collect();
        let excess = idle.len().saturating_sub(MAX_IDLE_OPEN_STORES);
        if excess == 0 {
            return;
        }
        idle.sort_unstable();
        for (_, did) in idle.into_iter().take(excess) {
            self.stores.remove(&did);
        }
    }

    fn remove(&mut self, did: &str) {
        self.stores.remove(did);
    }

    fn len(&self) -> usize {
        self.stores.len()
    }
}

fn poisoned() -> Error {
    Error::Internal("actor store cache lock poisoned".to_owned())
}

impl ActorStores {
    /// The stores under `root` (created if missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(ActorStores {
            root,
            open: Mutex::new(OpenStores::default()),
        })
    }

    /// The directory of `did`'s store.
    pub fn dir_for(&self, did: &str) -> PathBuf {
        actor_dir(&self.root, did)
    }

    /// Whether `did` has a store.
    pub fn exists(&self, did: &str) -> bool {
        self.dir_for(did).join("key").exists()
    }

    /// Creates the store of `did` with its signing key.
    pub fn create(&self, did: &str, key: &SigningKey) -> Result<Arc<ActorStore>> {
        let store = Arc::new(ActorStore::create(&self.dir_for(did), did, key)?);
        self.open
            .lock()
            .map_err(|_| poisoned())?
            .insert(did, &store);
        Ok(store)
    }

    /// The store of `did` ([`Error::AccountNotFound`] if it has none).
    pub fn open(&self, did: &str) -> Result<Arc<ActorStore>> {
        let mut cache = self.open.lock().map_err(|_| poisoned())?;
        if let Some(store) = cache.get(did) {
            return Ok(store);
        }
        let store = Arc::new(ActorStore::open(&self.dir_for(did), did)?);
        cache.insert(did, &store);
        Ok(store)
    }

    /// How many stores are open now (in use or kept idle).
    pub fn open_count(&self) -> usize {
        self.open.lock().map(|cache| cache.len()).unwrap_or(0)
    }

    /// Removes `did`'s store and key from disk; returns whether there was
    /// one.
    pub fn remove(&self, did: &str) -> Result<bool> {
        self.open.lock().map_err(|_| poisoned())?.remove(did);
        let dir = self.dir_for(did);
        if !dir.exists() {
            return Ok(false);
        }
        fs::remove_dir_all(&dir)?;
        if let Some(parent) = dir.parent() {
            crate::keys::sync_dir(parent)?;
        }
        Ok(true)
    }

    /// The DIDs that have a store directory (whether or not an account row
    /// exists: see [`Storage::remove_orphaned_actor_stores`](crate::Storage::remove_orphaned_actor_stores)).
    pub fn list_dids(&self) -> Result<Vec<String>> {
        let mut dids = Vec::new();
        for prefix in fs::read_dir(&self.root)? {
            let prefix = prefix?;
            if !prefix.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(prefix.path())? {
                let entry = entry?;
                if let Some(name) = entry.file_name().to_str() {
                    if name.starts_with("did:") {
                        dids.push(name.to_owned());
                    }
                }
            }
        }
        dids.sort();
        Ok(dids)
    }
}
