//! The proof nodes of a commit read from the tree in memory
//! ([`Repo::covering_proof_nodes`]) are exactly the set
//! [`event_proof_nodes`] computes from the blocks (covering proofs and
//! the nodes an inversion reads), on random repositories and random
//! commits of creates, updates and deletes, one or several per commit,
//! with the repository reopened from its store between some commits.

#![allow(clippy::unwrap_used)]

mod random_repo;

use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::{Algorithm, Ipld, SigningKey};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::diff::RecordOp;
use atp_repo_mst::proof::{event_proof_nodes, verify_inversion};
use atp_repo_mst::repo::Repo;
use rand::rngs::StdRng;
use rand::seq::IteratorRandom;
use rand::{Rng, SeedableRng};
use random_repo::{collection, rkey, tid, DID};

fn record(n: u64) -> Ipld {
    Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String("com.example.r".to_owned())),
        ("n".to_owned(), Ipld::Integer(i128::from(n))),
    ]))
}

/// Applies one random commit (1 to `max_ops` writes on distinct paths)
/// to `repo`, tracking the records in `present`; returns the number of
/// ops checked.
fn random_commit(
    rng: &mut StdRng,
    repo: &mut Repo<&MemoryBlockStore>,
    present: &mut BTreeSet<(String, String)>,
    key: &SigningKey,
    rev: &mut u64,
    max_ops: usize,
) -> usize {
    let count = rng.gen_range(1..=max_ops);
    let mut touched = BTreeSet::new();
    for _ in 0..count {
        let choice = rng.gen_range(0..10);
        if choice < 5 || present.is_empty() {
            let collection = collection(rng);
            let rk = rkey(rng, 6);
            let path = (collection, rk);
            if present.contains(&path) || !touched.insert(path.clone()) {
                continue;
            }
            repo.create_record(&path.0, &path.1, &record(rng.gen::<u32>().into()))
                .unwrap();
            present.insert(path);
        } else {
            let path = present.iter().choose(rng).cloned().unwrap();
            if !touched.insert(path.clone()) {
                continue;
            }
            if choice < 8 {
                repo.delete_record(&path.0, &path.1).unwrap();
                present.remove(&path);
            } else {
                repo.update_record(&path.0, &path.1, &record(rng.gen::<u32>().into()))
                    .unwrap();
            }
        }
    }
    *rev += 1;
    let commit = repo.commit(key, &tid(*rev)).unwrap();
    let from_memory = repo
        .covering_proof_nodes(commit.ops.iter().map(|op| op.path.as_str()))
        .unwrap();
    let ops: Vec<RecordOp> = commit.ops.iter().map(RecordOp::from).collect();
    let from_blocks = event_proof_nodes(repo.store(), commit.commit.data, &ops).unwrap();
    assert_eq!(
        from_memory,
        from_blocks,
        "proof nodes differ for a commit of {} ops",
        ops.len()
    );
    // And the set suffices: the commit's blocks with these nodes invert
    // to the previous root.
    if let Some(prev_data) = commit.prev_data {
        let mut carried = commit.blocks.clone();
        for cid in &from_memory {
            carried
                .entry(*cid)
                .or_insert_with(|| repo.store().get_block_bytes(cid));
        }
        verify_inversion(&carried, commit.commit.data, &ops, prev_data).unwrap();
    }
    ops.len()
}

trait BytesOf {
    fn get_block_bytes(&self, cid: &atp_crypto::Cid) -> Vec<u8>;
}

impl BytesOf for &MemoryBlockStore {
    fn get_block_bytes(&self, cid: &atp_crypto::Cid) -> Vec<u8> {
        use atp_repo_mst::blockstore::BlockStore;
        self.get(cid).unwrap().unwrap()
    }
}

#[test]
fn proof_from_memory_equals_proof_from_blocks() {
    let key = SigningKey::generate(Algorithm::K256);
    let mut checked = 0;
    let mut commits = 0;
    for seed in 0..16u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let store = MemoryBlockStore::new();
        let mut repo = Repo::create(&store, DID).unwrap();
        let mut present = BTreeSet::new();
        let mut rev = 0;
        // Grow a tree of a few hundred records in large commits.
        let target = rng.gen_range(0..400);
        while present.len() < target {
            random_commit(&mut rng, &mut repo, &mut present, &key, &mut rev, 40);
        }
        // Then small commits, as a PDS makes them, reopening the
        // repository now and then (a tree that is mostly not loaded).
        for round in 0..60 {
            if round % 7 == 0 {
                let head = *repo.head().unwrap().0;
                repo = Repo::load(&store, head).unwrap();
            }
            let max_ops = if round % 3 == 0 { 1 } else { 6 };
            checked += random_commit(&mut rng, &mut repo, &mut present, &key, &mut rev, max_ops);
            commits += 1;
        }
    }
    assert!(commits >= 16 * 60 && checked >= commits);
}
