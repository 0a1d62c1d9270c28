//! The CAR of `getRepo` (`SqliteBlockStore::write_repo_car`): the commit,
//! then the current tree depth-first, each node followed by its entries'
//! records, whatever the batching of the block reads. The expected bytes
//! come from a plain recursive walk over the store, one block at a time.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use atp_crypto::{Cid, Ipld};
use atp_pds::actor_store::{ActorStore, ActorStores};
use atp_pds::keys::generate_signing_key;
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::car::CarWriter;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const POSTS: &str = "app.bsky.feed.post";

fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String(POSTS.to_owned())),
        ("text".to_owned(), Ipld::String(text.to_owned())),
    ]))
}

/// Node, its records, then its subtrees left to right (recursively).
fn expected_tree<W: std::io::Write>(
    store: &dyn BlockStore,
    cid: Cid,
    writer: &mut CarWriter<W>,
) -> usize {
    let bytes = store.get_required(&cid).unwrap();
    writer.write_block(&cid, &bytes).unwrap();
    let node = atp_repo_mst::mst::decode_node(&bytes).unwrap();
    let mut written = 1;
    for entry in &node.entries {
        let record = store.get_required(&entry.value).unwrap();
        writer.write_block(&entry.value, &record).unwrap();
        written += 1;
    }
    for child in node.children() {
        written += expected_tree(store, child, writer);
    }
    written
}

/// The expected CAR of `store`'s head and how many blocks it holds.
fn expected_car(store: &ActorStore) -> (Vec<u8>, usize) {
    let root = store.root().unwrap().unwrap().cid;
    let blocks = store.block_store();
    let commit_bytes = blocks.get_required(&root).unwrap();
    let commit = atp_repo_mst::commit::Commit::from_legacy_block(&commit_bytes).unwrap();
    let mut writer = CarWriter::new(Vec::new(), &[root]).unwrap();
    writer.write_block(&root, &commit_bytes).unwrap();
    let count = 1 + expected_tree(&blocks, commit.data, &mut writer);
    (writer.finish().unwrap(), count)
}

fn no_blobs() -> BTreeMap<String, Vec<Cid>> {
    BTreeMap::new()
}

/// Record keys whose MST depth is 0 (sha256 of the path starts with a
/// byte of at least 0x40): a repository of only these is one node.
fn depth_zero_rkeys(count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("3jzfcijpj2z{i:04}"))
        .filter(|rkey| atp_crypto::sha256(format!("{POSTS}/{rkey}").as_bytes())[0] >= 0x40)
        .take(count)
        .collect()
}

#[test]
fn one_wide_node_with_repeated_records_keeps_the_walk_order() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path()).unwrap();
    let key = generate_signing_key();
    let store = stores.create(DID, &key).unwrap();
    let mut repo = store.open_repo().unwrap();
    // 150 entries in the root node (more than one lookup statement takes),
    // many of them the same record (the same CID several times).
    for (i, rkey) in depth_zero_rkeys(150).iter().enumerate() {
        repo.create_record(POSTS, rkey, &post(&format!("post {}", i % 7)))
            .unwrap();
    }
    store
        .commit(&mut repo, &key, "3jzfcijpj2z2b", &no_blobs())
        .unwrap();
    let root = store.root().unwrap().unwrap().cid;
    let root_node = {
        let blocks = store.block_store();
        let commit = blocks.get_required(&root).unwrap();
        let commit = atp_repo_mst::commit::Commit::from_legacy_block(&commit).unwrap();
        atp_repo_mst::mst::decode_node(&blocks.get_required(&commit.data).unwrap()).unwrap()
    };
    assert_eq!(root_node.entries.len(), 150);
    assert_eq!(root_node.children().count(), 0);

    let car = store
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap()
        .unwrap();
    let (expected, count) = expected_car(&store);
    assert_eq!(count, 1 + 1 + 150);
    assert_eq!(car, expected);
}

#[test]
fn deep_tree_after_several_commits_keeps_the_walk_order() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path()).unwrap();
    let key = generate_signing_key();
    let store = stores.create(DID, &key).unwrap();
    // Three commits, each spreading new keys between the earlier ones, so
    // that most nodes were rewritten since they were first stored.
    for (round, rev) in ["3jzfcijpj2z2b", "3jzfcijpj2z2c", "3jzfcijpj2z2d"]
        .iter()
        .enumerate()
    {
        let mut repo = store.open_repo().unwrap();
        for i in 0..1200 {
            let rkey = format!("3k{:011}", i * 3 + round);
            repo.create_record(POSTS, &rkey, &post(&format!("post {}", i % 50)))
                .unwrap();
        }
        store.commit(&mut repo, &key, rev, &no_blobs()).unwrap();
    }
    let car = store
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap()
        .unwrap();
    let (expected, count) = expected_car(&store);
    assert!(count > 3600 + 900, "{count} blocks");
    assert_eq!(car, expected);
}

#[test]
fn a_missing_block_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let stores = ActorStores::new(dir.path()).unwrap();
    let key = generate_signing_key();
    let store = stores.create(DID, &key).unwrap();
    let mut repo = store.open_repo().unwrap();
    let mut records = Vec::new();
    for i in 0..300 {
        let rkey = format!("3k{i:011}");
        records.push(
            repo.create_record(POSTS, &rkey, &post(&format!("post {i}")))
                .unwrap(),
        );
    }
    store
        .commit(&mut repo, &key, "3jzfcijpj2z2b", &no_blobs())
        .unwrap();
    let gone = records[123].to_string();
    store
        .database()
        .write(|tx| {
            tx.execute("DELETE FROM repo_block WHERE cid = ?1", [&gone])?;
            Ok(())
        })
        .unwrap();
    let err = store
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains(&gone), "{err}");
}
