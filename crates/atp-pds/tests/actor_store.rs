//! Per-account stores: atomic commits, restart, record index, keys.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use atp_crypto::Ipld;
use atp_pds::actor_store::{ActorStore, ActorStores};
use atp_pds::keys::{generate_signing_key, read_key_file, write_key_file};
use atp_pds::Error;
use atp_repo_mst::blockstore::BlockStore;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".to_owned()),
        ),
        ("text".to_owned(), Ipld::String(text.to_owned())),
    ]))
}

fn no_blobs() -> BTreeMap<String, Vec<atp_crypto::Cid>> {
    BTreeMap::new()
}

#[test]
fn interrupted_commit_leaves_the_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path()).unwrap();
    let key = generate_signing_key();
    let store = stores.create(DID, &key).unwrap();

    let mut repo = store.open_repo().unwrap();
    repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post("one"))
        .unwrap();
    let first = store
        .commit(&mut repo, &key, "3jzfcijpj2z2b", &no_blobs())
        .unwrap();
    let blocks_before = store.block_store().count().unwrap();

    // Prepare a second commit, then fail inside the transaction after its
    // blocks, root and index were written.
    let mut repo = store.open_repo().unwrap();
    repo.create_record("app.bsky.feed.post", "3jzfcijpj2z2c", &post("two"))
        .unwrap();
    repo.delete_record("app.bsky.feed.post", "3jzfcijpj2z2a")
        .unwrap();
    let second = repo.commit(&key, "3jzfcijpj2z2d").unwrap();
    let outcome: Result<(), Error> = store.transact(|tx| {
        tx.apply_commit(&second, &no_blobs())?;
        assert_eq!(tx.root()?.unwrap().cid, second.cid, "visible inside");
        Err(Error::Internal("simulated crash".to_owned()))
    });
    assert!(matches!(outcome, Err(Error::Internal(_))));

    // Nothing of it remains: root, blocks and index are as before.
    assert_eq!(store.root().unwrap().unwrap().cid, first.cid);
    assert_eq!(store.block_store().count().unwrap(), blocks_before);
    assert!(!store.block_store().has(&second.cid).unwrap());
    assert!(store
        .get_record("app.bsky.feed.post", "3jzfcijpj2z2a")
        .unwrap()
        .is_some());
    assert!(store
        .get_record("app.bsky.feed.post", "3jzfcijpj2z2c")
        .unwrap()
        .is_none());

    // The same commit applies cleanly afterwards.
    store
        .transact(|tx| tx.apply_commit(&second, &no_blobs()))
        .unwrap();
    assert_eq!(store.root().unwrap().unwrap().cid, second.cid);
    assert!(store
        .get_record("app.bsky.feed.post", "3jzfcijpj2z2a")
        .unwrap()
        .is_none());
    assert!(store
        .get_record("app.bsky.feed.post", "3jzfcijpj2z2c")
        .unwrap()
        .is_some());
}

#[test]
fn a_commit_on_a_stale_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path()).unwrap();
    let key = generate_signing_key();
    let store = stores.create(DID, &key).unwrap();
    let mut a = store.open_repo().unwrap();
    let mut b = store.open_repo().unwrap();
    a.create_record("app.bsky.feed.post", "3jzfcijpj2z2a", &post("a"))
        .unwrap();
    b.create_record("app.bsky.feed.post", "3jzfcijpj2z2c", &post("b"))
        .unwrap();
    let landed = store
        .commit(&mut a, &key, "3jzfcijpj2z2b", &no_blobs())
        .unwrap();
    assert!(matches!(
        store.commit(&mut b, &key, "3jzfcijpj2z2d", &no_blobs()),
        Err(Error::ConcurrentWrite { .. })
    ));
    assert_eq!(store.root().unwrap().unwrap().cid, landed.cid);
    assert_eq!(store.record_count().unwrap(), 1);
}

#[test]
fn restart_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate_signing_key();
    let (head, prefs) = {
        let stores = ActorStores::new(dir.path()).unwrap();
        let store = stores.create(DID, &key).unwrap();
        let mut repo = store.open_repo().unwrap();
        for i in 0..50 {
            repo.create_record(
                "app.bsky.feed.post",
                &format!("3jzfcijpj2z{i:02}"),
                &post(&i.to_string()),
            )
            .unwrap();
        }
        let blob = atp_crypto::cid_for_raw(b"image bytes");
        let blobs = BTreeMap::from([("app.bsky.feed.post/3jzfcijpj2z07".to_owned(), vec![blob])]);
        let commit = store
            .commit(&mut repo, &key, "3jzfcijpj2zzz", &blobs)
            .unwrap();
        let prefs = vec![
            serde_json::json!({"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}),
        ];
        store.put_preferences(&prefs).unwrap();
        (commit.cid, prefs)
    };

    let stores = ActorStores::new(dir.path()).unwrap();
    assert_eq!(stores.list_dids().unwrap(), [DID]);
    let store = stores.open(DID).unwrap();
    assert_eq!(store.root().unwrap().unwrap().cid, head);
    assert_eq!(store.root().unwrap().unwrap().rev, "3jzfcijpj2zzz");
    assert_eq!(store.record_count().unwrap(), 50);
    assert_eq!(store.preferences().unwrap(), prefs);
    assert_eq!(store.signing_key().unwrap().did_key(), key.did_key());
    let blob = atp_crypto::cid_for_raw(b"image bytes");
    assert_eq!(
        store.records_for_blob(&blob).unwrap(),
        [format!("at://{DID}/app.bsky.feed.post/3jzfcijpj2z07")]
    );
    let repo = store.open_repo().unwrap();
    repo.verify_head(&key.public_key()).unwrap();
    assert_eq!(repo.mst().len().unwrap(), 50);

    // The index agrees with the tree, record by record.
    let page = store
        .list_records("app.bsky.feed.post", 100, None, false)
        .unwrap();
    assert_eq!(page.len(), 50);
    for entry in &page {
        let (cid, _) = repo
            .get_record(&entry.collection, &entry.rkey)
            .unwrap()
            .unwrap();
        assert_eq!(cid, entry.cid);
        let (_, bytes) = store
            .get_record(&entry.collection, &entry.rkey)
            .unwrap()
            .unwrap();
        assert_eq!(atp_crypto::cid_for_dag_cbor(&bytes), entry.cid);
    }
    // Pages: descending by default, ascending with `reverse`, with a cursor.
    let first = store
        .list_records("app.bsky.feed.post", 10, None, false)
        .unwrap();
    assert_eq!(first[0].rkey, "3jzfcijpj2z49");
    let next = store
        .list_records("app.bsky.feed.post", 10, Some(&first[9].rkey), false)
        .unwrap();
    assert_eq!(next[0].rkey, "3jzfcijpj2z39");
    let asc = store
        .list_records("app.bsky.feed.post", 3, Some("3jzfcijpj2z10"), true)
        .unwrap();
    assert_eq!(
        asc.iter().map(|e| e.rkey.as_str()).collect::<Vec<_>>(),
        ["3jzfcijpj2z11", "3jzfcijpj2z12", "3jzfcijpj2z13"]
    );
    assert_eq!(store.collections().unwrap(), ["app.bsky.feed.post"]);
}

#[test]
fn key_files_are_private_atomic_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    let key = generate_signing_key();
    write_key_file(&path, &key).unwrap();
    assert_eq!(read_key_file(&path).unwrap().to_bytes(), key.to_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let other = generate_signing_key();
    assert!(matches!(
        write_key_file(&path, &other),
        Err(Error::KeyExists(_))
    ));
    assert_eq!(read_key_file(&path).unwrap().to_bytes(), key.to_bytes());
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Keys never show in Debug output.
    assert!(!format!("{key:?}").contains(&key.to_hex()));

    // Each store gets the key it was created with; a second store for one
    // DID is refused.
    let stores = ActorStores::new(dir.path().join("actors")).unwrap();
    let a = stores.create(DID, &key).unwrap();
    assert!(matches!(
        stores.create(DID, &other),
        Err(Error::AccountExists(_))
    ));
    assert_eq!(a.signing_key().unwrap().did_key(), key.did_key());
    assert!(matches!(
        ActorStore::open(&dir.path().join("nowhere"), DID),
        Err(Error::AccountNotFound(_))
    ));
}
