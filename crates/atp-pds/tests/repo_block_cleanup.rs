//! Blocks a commit no longer reaches are deleted, as the reference does:
//! after random creates, updates and deletes (many of them concurrent, so
//! committed in groups), the account's store holds every block reachable
//! from the head and, besides them, only record blocks that a replaced or
//! deleted record used (no MST node, no earlier commit); `getRepo` still
//! passes the reference's `verifyRepoCar` with exactly the current records.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::Cid;
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::commit::Commit;
use atp_repo_mst::mst::decode_node;
use atp_test_vectors::TestRng;
use common::{account_key, Pds};
use serde_json::{json, Value};

const COLLECTIONS: [&str; 2] = ["com.example.thing", "com.example.other"];

/// One random write: `(collection, rkey, Some(n))` puts record `n`,
/// `None` deletes.
type Write = (String, String, Option<u32>);

fn random_writes(rng: &mut TestRng, present: &[(String, String)], n: usize) -> Vec<Write> {
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < n {
        let existing = (!present.is_empty()).then(|| rng.pick(present).clone());
        let value = rng.below(8) as u32;
        let (path, value) = match (rng.below(10), existing) {
            (0..=2, Some(path)) => (path, None),
            (3..=4, Some(path)) => (path, Some(value)),
            _ => (
                (
                    rng.pick(&COLLECTIONS).to_string(),
                    format!("k{}", rng.below(100_000)),
                ),
                Some(value),
            ),
        };
        if taken.insert(path.clone()) {
            out.push((path.0, path.1, value));
        }
    }
    out
}

/// Every block reachable from the commit `head` in `store`.
fn reachable(store: &dyn BlockStore, head: Cid) -> (BTreeSet<Cid>, BTreeSet<Cid>) {
    let commit = Commit::from_block(&store.get(&head).unwrap().unwrap()).unwrap();
    let mut structure = BTreeSet::from([head]);
    let mut records = BTreeSet::new();
    let mut stack = vec![commit.data];
    while let Some(cid) = stack.pop() {
        structure.insert(cid);
        let node = decode_node(&store.get(&cid).unwrap().unwrap()).unwrap();
        stack.extend(node.children());
        records.extend(node.entries.iter().map(|entry| entry.value));
    }
    (structure, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaced_blocks_are_deleted_and_the_repo_still_verifies() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let client = pds.bearer(&alice.access_jwt);
    let mut rng = TestRng::new(7);
    let mut present: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut record_cids: BTreeSet<String> = BTreeSet::new();
    for _round in 0..25 {
        let keys: Vec<_> = present.keys().cloned().collect();
        let writes = random_writes(&mut rng, &keys, 8);
        // Sent at once: they queue behind each other and commit in groups.
        let calls = writes.iter().map(|(collection, rkey, value)| {
            let client = client.clone();
            let did = did.clone();
            async move {
                match value {
                    Some(n) => client
                        .procedure::<(), Value, Value>(
                            "com.atproto.repo.putRecord",
                            &(),
                            &json!({"repo": did, "collection": collection, "rkey": rkey,
                                    "record": {"$type": collection, "n": n}}),
                        )
                        .await
                        .unwrap(),
                    None => client
                        .procedure::<(), Value, Value>(
                            "com.atproto.repo.deleteRecord",
                            &(),
                            &json!({"repo": did, "collection": collection, "rkey": rkey}),
                        )
                        .await
                        .unwrap(),
                }
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        for ((collection, rkey, value), answer) in writes.into_iter().zip(answers) {
            let path = (collection, rkey);
            match value {
                Some(_) => {
                    let cid = answer["cid"].as_str().unwrap().to_owned();
                    record_cids.insert(cid.clone());
                    present.insert(path, cid);
                }
                None => {
                    present.remove(&path);
                }
            }
        }
    }

    let store = state.storage.actors().open(&did).unwrap();
    let head = store.root().unwrap().unwrap().cid;
    let blocks = store.block_store();
    let stored: BTreeSet<Cid> = blocks.all_blocks().unwrap().into_keys().collect();
    let (structure, records) = reachable(&blocks, head);
    for cid in structure.iter().chain(&records) {
        assert!(stored.contains(cid), "reachable block {cid} is missing");
    }
    let current: BTreeSet<String> = present.values().cloned().collect();
    let mut orphans = 0;
    for cid in stored.difference(&structure) {
        if records.contains(cid) {
            continue;
        }
        // Not reachable: only a record block no current record uses.
        let text = cid.to_string();
        assert!(
            record_cids.contains(&text) && !current.contains(&text),
            "block {cid} is neither reachable nor a replaced record"
        );
        orphans += 1;
    }
    assert!(orphans <= 8, "{orphans} record blocks left");

    // The whole repository, checked by the reference.
    let car = pds
        .client()
        .query_bytes("com.atproto.sync.getRepo", &json!({"did": did}))
        .await
        .unwrap()
        .bytes
        .to_vec();
    let did_key = account_key(&state.storage, &did).did_key();
    let input =
        json!({"op": "verify-repo", "car": hex::encode(&car), "did": did, "didKey": did_key});
    let verified =
        tokio::task::spawn_blocking(move || atp_test_vectors::run_node("repo-car.mjs", &input))
            .await
            .unwrap();
    assert_eq!(verified["ok"], json!(true), "{verified}");
    let found: BTreeMap<String, String> = verified["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = present
        .iter()
        .map(|((collection, rkey), cid)| (format!("{collection}/{rkey}"), cid.clone()))
        .collect();
    assert_eq!(found, expected);
    atp_test_vectors::report("repo-car.mjs (verifyRepoCar after block deletion)", 1);
    pds.stop().await;
}
