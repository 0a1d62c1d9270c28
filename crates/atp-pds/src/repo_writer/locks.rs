//! One async write lock per repository ([`RepoLocks`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::OwnedMutexGuard;

use crate::error::Error;

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
}
