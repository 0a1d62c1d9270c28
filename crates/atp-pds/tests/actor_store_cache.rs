//! The open actor stores are bounded: memory does not grow with the
//! number of accounts, a store in use is never closed under its user, and
//! a closed one opens again on demand.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use atp_pds::actor_store::{ActorStores, MAX_IDLE_OPEN_STORES};
use atp_pds::keys::generate_signing_key;

fn did(n: usize) -> String {
    format!("did:plc:cache{n:019}")
}

#[test]
fn idle_stores_beyond_the_limit_are_closed_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path()).unwrap();
    let key = generate_signing_key();
    let held = stores.create(&did(0), &key).unwrap();
    let total = MAX_IDLE_OPEN_STORES + 5;
    for n in 1..total {
        stores.create(&did(n), &key).unwrap();
    }
    // the idle ones kept, plus the one held and the last one created
    // (in use while it was added, so nothing was closed for it)
    assert_eq!(stores.open_count(), MAX_IDLE_OPEN_STORES + 2);
    // the held store was not closed: opening it again shares it
    assert!(Arc::ptr_eq(&held, &stores.open(&did(0)).unwrap()));
    // the oldest idle stores were closed; they open again, and are usable
    // (an empty store: no commit yet)
    let reopened = stores.open(&did(1)).unwrap();
    assert_eq!(reopened.did(), did(1));
    assert!(reopened.open_repo().unwrap().head().is_none());
    // adding it closed the least recently used idle store
    assert_eq!(stores.open_count(), MAX_IDLE_OPEN_STORES + 2);
    drop(reopened);
    stores.open(&did(2)).unwrap();
    assert_eq!(stores.open_count(), MAX_IDLE_OPEN_STORES + 2);
}
