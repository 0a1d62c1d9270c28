//! `SqliteBlockStore` behaves like `MemoryBlockStore`.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::{cid_for_dag_cbor, Cid, Ipld};
use atp_pds::actor_store::MIGRATIONS;
use atp_pds::block_store::{SqliteBlockStore, MAX_SQL_PARAMS};
use atp_pds::db::Database;
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::car::BlockMap;
use atp_repo_mst::repo::Repo;

fn block(i: usize) -> (Cid, Vec<u8>) {
    let value = Ipld::Map(BTreeMap::from([("n".to_owned(), Ipld::Integer(i as i128))]));
    let bytes = atp_crypto::dagcbor::to_vec(&value).unwrap();
    (cid_for_dag_cbor(&bytes), bytes)
}

fn sqlite_store(dir: &tempfile::TempDir) -> SqliteBlockStore {
    let db = Database::open(&dir.path().join("store.sqlite"), MIGRATIONS).unwrap();
    SqliteBlockStore::new(Arc::new(db))
}

#[test]
fn same_answers_as_the_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_store(&dir);
    let memory = MemoryBlockStore::new();
    let stores: [&dyn BlockStore; 2] = [&sqlite, &memory];

    // More rows than fit in one statement, several times over.
    let count = 3 * MAX_SQL_PARAMS + 17;
    let blocks: BlockMap = (0..count).map(block).collect();
    let (single_cid, single_bytes) = block(count + 1);
    let (absent, _) = block(count + 2);
    for store in stores {
        store.put_many(&blocks).unwrap();
        store.put(&single_cid, &single_bytes).unwrap();
        // Writing again is harmless.
        store.put(&single_cid, &single_bytes).unwrap();
        store.put_many(&blocks).unwrap();
    }
    for (cid, bytes) in blocks.iter().chain([(&single_cid, &single_bytes)]) {
        for store in stores {
            assert!(store.has(cid).unwrap());
            assert_eq!(store.get(cid).unwrap().as_ref(), Some(bytes));
            assert_eq!(&store.get_required(cid).unwrap(), bytes);
        }
    }
    for store in stores {
        assert!(!store.has(&absent).unwrap());
        assert_eq!(store.get(&absent).unwrap(), None);
        assert!(matches!(
            store.get_required(&absent),
            Err(atp_repo_mst::Error::MissingBlock(_))
        ));
    }
    assert_eq!(sqlite.count().unwrap() as usize, count + 1);
    assert_eq!(memory.len().unwrap(), count + 1);
    assert_eq!(sqlite.all_blocks().unwrap(), memory.to_block_map().unwrap());
}

#[test]
fn a_repository_on_sqlite_matches_one_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_store(&dir);
    let memory = MemoryBlockStore::new();
    let key = atp_pds::keys::generate_signing_key();
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let mut a = Repo::create(&sqlite, did).unwrap();
    let mut b = Repo::create(&memory, did).unwrap();
    for i in 0..300u32 {
        let record = Ipld::Map(BTreeMap::from([
            (
                "$type".to_owned(),
                Ipld::String("app.bsky.feed.like".to_owned()),
            ),
            ("i".to_owned(), Ipld::Integer(i.into())),
        ]));
        let rkey = format!("3jzfcijpj2z{:02}", i % 100);
        let collection = format!("app.bsky.feed.l{}", i / 100);
        a.create_record(&collection, &rkey, &record).unwrap();
        b.create_record(&collection, &rkey, &record).unwrap();
    }
    let ca = a.commit(&key, "3jzfcijpj2z2b").unwrap();
    let cb = b.commit(&key, "3jzfcijpj2z2b").unwrap();
    assert_eq!(ca.commit.data, cb.commit.data);
    assert_eq!(ca.blocks, cb.blocks);

    // Reloaded from SQLite, the tree lists the same records.
    let reloaded = Repo::load(&sqlite, ca.cid).unwrap();
    assert_eq!(reloaded.mst().len().unwrap(), 300);
    reloaded.verify_head(&key.public_key()).unwrap();
}
