//! The CAR of `getRepo` (`SqliteBlockStore::write_repo_car`): the commit,
//! then the current tree depth-first, each node followed by its entries'
//! records. The expected bytes come from a plain recursive walk over the
//! store, one block at a time.

#![allow(clippy::unwrap_used)]

mod store_walk;

use std::collections::BTreeMap;

use atp_crypto::Cid;
use atp_pds::actor_store::{ActorStore, ActorStores};
use atp_pds::keys::generate_signing_key;
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::car::CarWriter;
use store_walk::{expected_car, filled_store, post, DID, POSTS};

/// Removes the block `cid` from `store`, as a damaged file would lack it.
fn delete_block(store: &ActorStore, cid: &Cid) {
    let deleted = store.transact(|tx| tx.delete_blocks(&[*cid])).unwrap();
    assert_eq!(deleted, 1);
}

/// `getRepo`'s CAR of `store` (the default walk) is the expected one.
fn assert_whole_export(store: &ActorStore) {
    let (expected, _) = expected_car(store);
    let car = store
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(car, expected);
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
    // 150 entries in the root node, many of them the same record (the same
    // CID several times).
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
    delete_block(&store, &records[123]);
    let err = store
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains(&gone), "{err}");
}

/// A store whose tree has several levels and thousands of records (see
/// [`filled_store`]; many records share contents), and the revs of the
/// commits.
fn big_store(
    dir: &std::path::Path,
    commits: usize,
    per_commit: usize,
) -> (std::sync::Arc<ActorStore>, Vec<String>) {
    let stores = ActorStores::new(dir).unwrap();
    filled_store(&stores, commits, per_commit, |_, i| {
        format!("post {}", i % 97)
    })
}

#[test]
fn a_large_tree_keeps_the_walk_order() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = big_store(dir.path(), 4, 1500);
    let (expected, count) = expected_car(&store);
    assert!(count > 6000 + 1500, "{count} blocks");
    let car = store
        .block_store()
        .write_repo_car(None, Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(car, expected);
}

#[test]
fn since_gives_the_blocks_of_later_commits_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (store, revs) = big_store(dir.path(), 3, 1000);
    let root = store.root().unwrap().unwrap().cid;
    // Expected: the blocks written by the last two commits, newest rev
    // first, then by the CID's text form, descending (the reference's
    // order).
    let mut later: Vec<(String, String, Vec<u8>, Vec<u8>)> = store
        .database()
        .read(|tx| {
            let mut stmt = tx.prepare("SELECT cid, content, repo_rev FROM repo_block")?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(cid, bytes, rev)| {
                    let text = atp_crypto::cids::cid_from_bytes(&cid).unwrap().to_string();
                    rev.filter(|rev| rev.as_str() > revs[0].as_str())
                        .map(|rev| (rev, text, cid, bytes))
                })
                .collect())
        })
        .unwrap();
    // The binary order differs from the text order here (base32's digits
    // sort before its letters as text, after them as values): the test
    // tells them apart.
    let mut by_bytes: Vec<(String, Vec<u8>)> = later
        .iter()
        .map(|(rev, _, cid, _)| (rev.clone(), cid.clone()))
        .collect();
    by_bytes.sort();
    later.sort();
    let by_text: Vec<(String, Vec<u8>)> = later
        .iter()
        .map(|(rev, _, cid, _)| (rev.clone(), cid.clone()))
        .collect();
    assert_ne!(by_bytes, by_text);
    later.reverse();
    assert!(later.len() > 1000, "{} blocks", later.len());
    assert!(later.iter().any(|(rev, _, _, _)| rev == &revs[1]));
    assert!(later.iter().any(|(rev, _, _, _)| rev == &revs[2]));
    let mut writer = CarWriter::new(Vec::new(), &[root]).unwrap();
    for (_, _, cid, bytes) in &later {
        writer
            .write_block(&atp_crypto::cids::cid_from_bytes(cid).unwrap(), bytes)
            .unwrap();
    }
    let expected = writer.finish().unwrap();
    let car = store
        .block_store()
        .write_repo_car(Some(&revs[0]), Vec::new())
        .unwrap()
        .unwrap();
    assert_eq!(car, expected);
}

/// Every MST node and record CID of the current tree, top node first, by
/// depth below the top (0 = the top node and its records).
fn tree_blocks_by_depth(store: &ActorStore) -> Vec<Vec<Cid>> {
    let blocks = store.block_store();
    let root = store.root().unwrap().unwrap().cid;
    let commit = blocks.get_required(&root).unwrap();
    let commit = atp_repo_mst::commit::Commit::from_legacy_block(&commit).unwrap();
    let mut levels: Vec<Vec<Cid>> = Vec::new();
    let mut current = vec![commit.data];
    while !current.is_empty() {
        let mut level = Vec::new();
        let mut next = Vec::new();
        for cid in current {
            let node = atp_repo_mst::mst::decode_node(&blocks.get_required(&cid).unwrap()).unwrap();
            level.push(cid);
            level.extend(node.entries.iter().map(|entry| entry.value));
            next.extend(node.children());
        }
        levels.push(level);
        current = next;
    }
    levels
}

#[test]
fn a_block_missing_anywhere_in_the_walk_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = big_store(dir.path(), 2, 2000);
    let levels = tree_blocks_by_depth(&store);
    assert!(levels.len() >= 5, "{} levels", levels.len());
    // A record of the top node, a node and a record deep down.
    let deepest = &levels[levels.len() - 1];
    let victims = [
        levels[0][1],
        levels[levels.len() - 2][0],
        deepest[deepest.len() / 2],
    ];
    for victim in victims {
        let gone = victim.to_string();
        let bytes = store.block_store().get_required(&victim).unwrap();
        delete_block(&store, &victim);
        let err = store
            .block_store()
            .write_repo_car(None, Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains(&gone), "{err}");
        store.block_store().put(&victim, &bytes).unwrap();
    }
    assert_whole_export(&store);
}

/// A `Write` that takes `limit` bytes, then fails as a closed connection.
#[derive(Debug)]
struct ClosingAfter {
    taken: usize,
    limit: usize,
}

impl std::io::Write for ClosingAfter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.taken + data.len() > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "client went away",
            ));
        }
        self.taken += data.len();
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_consumer_that_goes_away_ends_the_export_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = big_store(dir.path(), 2, 2000);
    for limit in [0, 100, 70_000, 300_000] {
        let err = store
            .block_store()
            .write_repo_car(None, ClosingAfter { taken: 0, limit })
            .unwrap_err();
        assert!(err.to_string().contains("client went away"), "{err}");
    }
    // The store still serves whole exports afterwards.
    assert_whole_export(&store);
}
