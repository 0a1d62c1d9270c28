//! The signing keys of the stores being written, kept in memory: reading
//! and parsing an account's key file (and deriving its public key) on
//! every commit is measurable work on the write path.
//!
//! A key file is written once, when its store is created, so a key read
//! through one open [`ActorStore`] stays valid for as long as that store
//! is open. Each entry remembers the store it was read through (weakly):
//! a store closed and opened again, or an account deleted and created
//! again, reads its key anew.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use atp_crypto::SigningKey;

use crate::actor_store::ActorStore;
use crate::error::{Error, Result};

/// Past this many entries, those of closed stores are dropped.
const TIDY_ABOVE: usize = 256;

type KeyMap = HashMap<String, (Weak<ActorStore>, Arc<SigningKey>)>;

fn keys() -> &'static Mutex<KeyMap> {
    static KEYS: OnceLock<Mutex<KeyMap>> = OnceLock::new();
    KEYS.get_or_init(Mutex::default)
}

fn poisoned() -> Error {
    Error::Internal("signing key cache lock poisoned".to_owned())
}

/// The signing key of `store`'s account, read from its key file the
/// first time this open store asks.
pub(super) fn signing_key(store: &Arc<ActorStore>) -> Result<Arc<SigningKey>> {
    {
        let map = keys().lock().map_err(|_| poisoned())?;
        if let Some((held, key)) = map.get(store.did()) {
            if Weak::ptr_eq(held, &Arc::downgrade(store)) && held.strong_count() > 0 {
                return Ok(Arc::clone(key));
            }
        }
    }
    let key = Arc::new(store.signing_key()?);
    let mut map = keys().lock().map_err(|_| poisoned())?;
    if map.len() >= TIDY_ABOVE {
        map.retain(|_, (held, _)| held.strong_count() > 0);
    }
    map.insert(
        store.did().to_owned(),
        (Arc::downgrade(store), Arc::clone(&key)),
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use atp_crypto::Algorithm;

    #[test]
    fn a_reopened_store_reads_its_key_again() {
        let dir = tempfile::tempdir().unwrap();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let first = SigningKey::generate(Algorithm::K256);
        let store = Arc::new(ActorStore::create(&dir.path().join("a"), did, &first).unwrap());
        let key = signing_key(&store).unwrap();
        assert_eq!(key.did_key(), first.did_key());
        assert!(Arc::ptr_eq(&key, &signing_key(&store).unwrap()));
        drop(store);
        // The account is created again with another key.
        let second = SigningKey::generate(Algorithm::P256);
        let store = Arc::new(ActorStore::create(&dir.path().join("b"), did, &second).unwrap());
        assert_eq!(signing_key(&store).unwrap().did_key(), second.did_key());
    }
}
