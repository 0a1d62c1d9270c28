//! What the `getRepo` CAR of an account store should be, built by a plain
//! recursive walk one block at a time, and the records the store tests
//! write: shared by the CAR order and block migration tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::{Cid, Ipld};
use atp_pds::actor_store::{ActorStore, ActorStores};
use atp_pds::keys::generate_signing_key;
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::car::CarWriter;

/// The account the store tests write as.
pub const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
/// The collection of [`post`].
pub const POSTS: &str = "app.bsky.feed.post";

/// A post record with `text`.
pub fn post(text: &str) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String(POSTS.to_owned())),
        ("text".to_owned(), Ipld::String(text.to_owned())),
    ]))
}

/// Node, its records, then its subtrees left to right (recursively); the
/// number of blocks written.
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
pub fn expected_car(store: &ActorStore) -> (Vec<u8>, usize) {
    let root = store.root().unwrap().unwrap().cid;
    let blocks = store.block_store();
    let commit_bytes = blocks.get_required(&root).unwrap();
    let commit = atp_repo_mst::commit::Commit::from_legacy_block(&commit_bytes).unwrap();
    let mut writer = CarWriter::new(Vec::new(), &[root]).unwrap();
    writer.write_block(&root, &commit_bytes).unwrap();
    let count = 1 + expected_tree(&blocks, commit.data, &mut writer);
    (writer.finish().unwrap(), count)
}

/// Creates [`DID`]'s store in `stores` with `commits` commits of
/// `per_commit` posts each, spread between the earlier keys so most nodes
/// are rewritten (the text of commit `round`'s `i`th post is
/// `text(round, i)`); the store and the revs of the commits.
pub fn filled_store(
    stores: &ActorStores,
    commits: usize,
    per_commit: usize,
    text: impl Fn(usize, usize) -> String,
) -> (Arc<ActorStore>, Vec<String>) {
    let key = generate_signing_key();
    let store = stores.create(DID, &key).unwrap();
    let mut revs = Vec::new();
    for round in 0..commits {
        let rev = format!("3jzfcijpj2z2{}", char::from(b'b' + round as u8));
        let mut repo = store.open_repo().unwrap();
        for i in 0..per_commit {
            let rkey = format!("3k{:011}", i * commits + round);
            repo.create_record(POSTS, &rkey, &post(&text(round, i)))
                .unwrap();
        }
        store
            .commit(&mut repo, &key, &rev, &BTreeMap::new())
            .unwrap();
        revs.push(rev);
    }
    (store, revs)
}
