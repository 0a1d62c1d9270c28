//! Blocks a commit no longer reaches are deleted, as the reference does:
//! after random creates, updates and deletes (many of them concurrent, so
//! committed in groups), the account's store holds exactly the blocks
//! reachable from the head (a replaced or deleted record's block stays
//! while another record has the same contents); `getRepo` still passes
//! the reference's `verifyRepoCar` with exactly the current records.
#![allow(clippy::unwrap_used)]

mod common;
mod repo_support;

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
        let value = rng.below(24) as u32;
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
                    Some(n) => Some(put(&client, &did, collection, rkey, *n).await),
                    None => {
                        delete(&client, &did, collection, rkey).await;
                        None
                    }
                }
            }
        });
        let answers = futures_util::future::join_all(calls).await;
        for ((collection, rkey, value), answer) in writes.into_iter().zip(answers) {
            let path = (collection, rkey);
            match value {
                Some(_) => {
                    let cid = answer.unwrap().to_string();
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
    // Exactly the reachable blocks: no MST node, commit or record block
    // the head no longer reaches is left.
    let expected: BTreeSet<Cid> = structure.union(&records).copied().collect();
    let left: Vec<_> = stored.difference(&expected).collect();
    assert!(left.is_empty(), "unreachable blocks left: {left:?}");
    // Many records share contents (24 values per collection) and some
    // contents are no longer used: the test exercised both blocks kept
    // for another record and blocks deleted.
    let current: BTreeSet<&String> = present.values().collect();
    assert!(current.len() < present.len(), "no two records alike");
    assert!(!record_cids.is_empty());
    let gone = record_cids
        .iter()
        .filter(|cid| !current.contains(cid))
        .count();
    println!(
        "{} blocks stored, all reachable; {gone} of {} record blocks written were deleted",
        stored.len(),
        record_cids.len()
    );
    assert!(gone > 0, "no record block left unused");

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
    let found: BTreeMap<String, String> = repo_support::answered_records(&verified)
        .into_iter()
        .collect();
    let expected: BTreeMap<String, String> = present
        .iter()
        .map(|((collection, rkey), cid)| (format!("{collection}/{rkey}"), cid.clone()))
        .collect();
    assert_eq!(found, expected);
    atp_test_vectors::report("repo-car.mjs (verifyRepoCar after block deletion)", 1);
    pds.stop().await;
}

/// Puts `{"$type": collection, "n": n}` at `collection/rkey`; returns
/// its CID.
async fn put(
    client: &atp_xrpc::client::XrpcClient,
    did: &str,
    collection: &str,
    rkey: &str,
    n: u32,
) -> Cid {
    let answer: Value = client
        .procedure::<(), Value, Value>(
            "com.atproto.repo.putRecord",
            &(),
            &json!({"repo": did, "collection": collection, "rkey": rkey,
                    "record": {"$type": collection, "n": n}}),
        )
        .await
        .unwrap();
    atp_crypto::parse_cid(answer["cid"].as_str().unwrap()).unwrap()
}

/// Deletes the record at `collection/rkey`.
async fn delete(client: &atp_xrpc::client::XrpcClient, did: &str, collection: &str, rkey: &str) {
    client
        .procedure::<(), Value, Value>(
            "com.atproto.repo.deleteRecord",
            &(),
            &json!({"repo": did, "collection": collection, "rkey": rkey}),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_block_stays_while_another_record_has_the_same_contents() {
    const POSTS: &str = COLLECTIONS[0];
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let client = pds.bearer(&alice.access_jwt);
    let store = state.storage.actors().open(&did).unwrap();
    let has = |cid: &Cid| store.block_store().has(cid).unwrap();

    // Two records alike: deleting one keeps the block, deleting both
    // deletes it.
    let a = put(&client, &did, POSTS, "a", 1).await;
    let b = put(&client, &did, POSTS, "b", 1).await;
    assert_eq!(a, b);
    delete(&client, &did, POSTS, "a").await;
    assert!(has(&a), "block deleted while record b uses it");
    delete(&client, &did, POSTS, "b").await;
    assert!(!has(&a), "block of two deleted records kept");

    // An update away from shared contents keeps the block; an update of
    // the last record with it deletes it.
    let c = put(&client, &did, POSTS, "c", 2).await;
    let d = put(&client, &did, POSTS, "d", 2).await;
    assert_eq!(c, d);
    let c3 = put(&client, &did, POSTS, "c", 3).await;
    assert!(has(&d) && has(&c3));
    let d4 = put(&client, &did, POSTS, "d", 4).await;
    assert!(!has(&d), "replaced block kept");
    assert!(has(&d4));

    // One commit deleting a record and creating another with the same
    // contents keeps the block.
    let results: Value = client
        .procedure::<(), Value, Value>(
            "com.atproto.repo.applyWrites",
            &(),
            &json!({"repo": did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#delete",
                 "collection": COLLECTIONS[0], "rkey": "c"},
                {"$type": "com.atproto.repo.applyWrites#create",
                 "collection": COLLECTIONS[0], "rkey": "e",
                 "value": {"$type": COLLECTIONS[0], "n": 3}},
            ]}),
        )
        .await
        .unwrap();
    let e = atp_crypto::parse_cid(results["results"][1]["cid"].as_str().unwrap()).unwrap();
    assert_eq!(e, c3);
    assert!(
        has(&e),
        "block of a record created in the same commit deleted"
    );

    // Deleted, then written again by the next commit: stored again.
    delete(&client, &did, POSTS, "e").await;
    assert!(!has(&e));
    let f = put(&client, &did, POSTS, "f", 3).await;
    assert_eq!(f, e);
    assert!(has(&f));

    let head = store.root().unwrap().unwrap().cid;
    let blocks = store.block_store();
    let stored: BTreeSet<Cid> = blocks.all_blocks().unwrap().into_keys().collect();
    let (structure, records) = reachable(&blocks, head);
    let expected: BTreeSet<Cid> = structure.union(&records).copied().collect();
    assert_eq!(stored, expected);
    pds.stop().await;
}
