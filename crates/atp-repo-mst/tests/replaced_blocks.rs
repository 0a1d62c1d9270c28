//! A commit's `removed` set names exactly the blocks of the previous
//! state it no longer reaches: after random creates, updates and deletes
//! (one or several per commit, the repository reopened now and then), a
//! store that deletes each commit's `removed` blocks (and the records no
//! record uses any more) holds exactly the blocks reachable from the head,
//! and later commits still find every node they need.

#![allow(clippy::unwrap_used)]

mod random_repo;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::{Algorithm, Cid, Ipld, SigningKey};
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::car::BlockMap;
use atp_repo_mst::commit::Commit;
use atp_repo_mst::mst::decode_node;
use atp_repo_mst::repo::Repo;
use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};
use random_repo::{collection, rkey, tid, DID};

/// A store that can delete.
#[derive(Default)]
struct Store(RefCell<BlockMap>);

impl BlockStore for Store {
    fn get(&self, cid: &Cid) -> Result<Option<Vec<u8>>, atp_repo_mst::Error> {
        Ok(self.0.borrow().get(cid).cloned())
    }

    fn put(&self, cid: &Cid, bytes: &[u8]) -> Result<(), atp_repo_mst::Error> {
        self.0.borrow_mut().insert(*cid, bytes.to_vec());
        Ok(())
    }
}

/// Few distinct records, so that several paths share a record CID.
fn record(n: u32) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String("com.example.r".to_owned())),
        ("n".to_owned(), Ipld::Integer(i128::from(n % 16))),
    ]))
}

/// Every block reachable from the commit `head`: the commit, the MST
/// nodes and the records.
fn reachable(store: &Store, head: Cid) -> BTreeSet<Cid> {
    let mut out = BTreeSet::from([head]);
    let commit = Commit::from_block(&store.get_required(&head).unwrap()).unwrap();
    let mut stack = vec![commit.data];
    while let Some(cid) = stack.pop() {
        out.insert(cid);
        let node = decode_node(&store.get_required(&cid).unwrap()).unwrap();
        stack.extend(node.children());
        for entry in node.entries {
            out.insert(entry.value);
        }
    }
    out
}

#[test]
fn removed_blocks_are_exactly_the_unreachable_ones() {
    let key = SigningKey::generate(Algorithm::K256);
    let mut commits = 0;
    let mut removed_total = 0;
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let store = Store::default();
        let mut repo = Repo::create(&store, DID).unwrap();
        let mut present: BTreeMap<(String, String), Cid> = BTreeMap::new();
        let mut rev = 0;
        for round in 0..80 {
            if round % 9 == 8 {
                let head = *repo.head().unwrap().0;
                repo = Repo::load(&store, head).unwrap();
            }
            let count = if round < 3 { 60 } else { rng.gen_range(1..=6) };
            let mut touched = BTreeSet::new();
            for _ in 0..count {
                let choice = rng.gen_range(0..10);
                if choice < 5 || present.is_empty() {
                    let path = (collection(&mut rng), rkey(&mut rng, 5));
                    if present.contains_key(&path) || !touched.insert(path.clone()) {
                        continue;
                    }
                    let cid = repo
                        .create_record(&path.0, &path.1, &record(rng.gen()))
                        .unwrap();
                    present.insert(path, cid);
                } else {
                    let path = present.keys().choose(&mut rng).cloned().unwrap();
                    if !touched.insert(path.clone()) {
                        continue;
                    }
                    if choice < 8 {
                        repo.delete_record(&path.0, &path.1).unwrap();
                        present.remove(&path);
                    } else {
                        let (cid, _) = repo
                            .update_record(&path.0, &path.1, &record(rng.gen()))
                            .unwrap();
                        present.insert(path, cid);
                    }
                }
            }
            rev += 1;
            let commit = repo.commit(&key, &tid(rev)).unwrap();
            commits += 1;
            removed_total += commit.removed.len();
            let mut blocks = store.0.borrow_mut();
            for cid in &commit.removed {
                assert!(
                    blocks.remove(cid).is_some(),
                    "removed block {cid} was not stored"
                );
            }
            // Records: what the store does with an op's `prev`.
            let used: BTreeSet<Cid> = present.values().copied().collect();
            for op in &commit.ops {
                if let Some(prev) = op.prev {
                    if !used.contains(&prev) {
                        blocks.remove(&prev);
                    }
                }
            }
            drop(blocks);
            let stored: BTreeSet<Cid> = store.0.borrow().keys().copied().collect();
            assert_eq!(
                stored,
                reachable(&store, commit.cid),
                "seed {seed}, round {round}"
            );
        }
    }
    assert_eq!(commits, 12 * 80);
    assert!(removed_total > commits);
}
