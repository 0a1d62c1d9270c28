//! The Rust MST against the reference @atproto/repo (tests/interop/repo-root.mjs):
//! 10,000 generated records, then deletes and updates applied in a
//! different order on each side; roots, node blocks and a signed commit
//! must agree.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::{cid_for_dag_cbor, dagcbor, Algorithm, Cid, Ipld, SigningKey};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::commit::UnsignedCommit;
use atp_repo_mst::mst::Mst;
use atp_syntax::Tid;
use atp_test_vectors::{hex_encode, run_node};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

const RECORDS: usize = 10_000;

fn record_cid(collection: &str, n: u64) -> Cid {
    let record = Ipld::Map(BTreeMap::from([
        ("$type".to_owned(), Ipld::String(collection.to_owned())),
        ("n".to_owned(), Ipld::Integer(i128::from(n))),
    ]));
    cid_for_dag_cbor(&dagcbor::encode_ipld(&record).unwrap())
}

fn random_rkey(rng: &mut StdRng) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~-:.";
    let len = rng.gen_range(1..40);
    (0..len)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Realistic keys: mostly posts, likes and follows keyed by TIDs in time
/// order, plus a profile and collections with arbitrary record keys.
fn generate(rng: &mut StdRng) -> Vec<(String, Cid)> {
    let mut keys = BTreeSet::new();
    let mut out = Vec::new();
    let mut micros: u64 = 1_700_000_000_000_000;
    let collections = [
        "app.bsky.feed.post",
        "app.bsky.feed.like",
        "app.bsky.graph.follow",
        "app.bsky.feed.repost",
        "com.example.thing",
        "xyz.statusphere.status",
    ];
    while out.len() < RECORDS {
        micros += rng.gen_range(1..5_000_000);
        let roll = rng.gen_range(0..100);
        let collection = match roll {
            0..=44 => collections[0],
            45..=69 => collections[1],
            70..=84 => collections[2],
            85..=89 => collections[3],
            90..=96 => collections[4],
            _ => collections[5],
        };
        let rkey = if collection == "com.example.thing" {
            random_rkey(rng)
        } else {
            Tid::from_parts(micros, rng.gen_range(0..1024))
                .unwrap()
                .as_str()
                .to_owned()
        };
        let key = if out.is_empty() {
            "app.bsky.actor.profile/self".to_owned()
        } else {
            format!("{collection}/{rkey}")
        };
        if keys.insert(key.clone()) {
            let cid = record_cid(collection, out.len() as u64);
            out.push((key, cid));
        }
    }
    out
}

#[test]
fn roots_match_the_reference() {
    let mut rng = StdRng::seed_from_u64(0x6d73_7421);
    let records = generate(&mut rng);

    // Changes: 2,000 deletes and 1,000 updates of distinct keys.
    let mut picked: Vec<usize> = (0..RECORDS).collect();
    picked.shuffle(&mut rng);
    let deletes: Vec<&String> = picked[..2_000].iter().map(|&i| &records[i].0).collect();
    let updates: Vec<(&String, Cid)> = picked[2_000..3_000]
        .iter()
        .map(|&i| (&records[i].0, record_cid("updated", i as u64)))
        .collect();
    let mut changes: Vec<serde_json::Value> = deletes
        .iter()
        .map(|k| json!({"action": "delete", "key": k}))
        .chain(
            updates
                .iter()
                .map(|(k, c)| json!({"action": "update", "key": k, "cid": c.to_string()})),
        )
        .collect();
    changes.shuffle(&mut rng);

    // Rust: insert in another order than the reference.
    let mut order = records.clone();
    order.shuffle(&mut rng);
    let store = MemoryBlockStore::new();
    let mut tree = Mst::new(&store);
    for (key, cid) in &order {
        assert_eq!(tree.insert(key, *cid).unwrap(), None);
    }
    let root_after_adds = tree.root().unwrap();

    // Write it out, reopen lazily, apply the changes in reverse order.
    let flushed = tree.unload().unwrap();
    assert_eq!(flushed, root_after_adds);
    let mut tree = Mst::load(&store, flushed);
    for change in changes.iter().rev() {
        let key = change["key"].as_str().unwrap();
        match change["action"].as_str().unwrap() {
            "delete" => assert!(tree.remove(key).unwrap().is_some()),
            _ => {
                let cid = atp_crypto::parse_cid(change["cid"].as_str().unwrap()).unwrap();
                assert!(tree.insert(key, cid).unwrap().is_some());
            }
        }
    }
    let root_after_changes = tree.root().unwrap();

    // The same final set built from scratch gives the same tree.
    let mut final_set: BTreeMap<&str, Cid> =
        records.iter().map(|(k, c)| (k.as_str(), *c)).collect();
    for k in &deletes {
        final_set.remove(k.as_str());
    }
    for (k, c) in &updates {
        final_set.insert(k.as_str(), *c);
    }
    let fresh_store = MemoryBlockStore::new();
    let mut fresh = Mst::new(&fresh_store);
    for (k, c) in final_set.iter().rev() {
        fresh.insert(k, *c).unwrap();
    }
    assert_eq!(fresh.root().unwrap(), root_after_changes);
    let (_, fresh_blocks) = fresh.flush().unwrap();
    let our_nodes: Vec<String> = fresh_blocks.keys().map(|c| c.to_string()).collect();
    let listed: Vec<(String, Cid)> = tree.leaves().map(|l| l.unwrap()).collect();
    let expected: Vec<(String, Cid)> = final_set.iter().map(|(k, c)| (k.to_string(), *c)).collect();
    assert_eq!(listed, expected);

    // A signed commit of the final root.
    let key = SigningKey::generate(Algorithm::K256);
    let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    let rev = "3l3qo2vutsw2b";
    let commit = UnsignedCommit::new(did, root_after_changes, rev)
        .unwrap()
        .sign(&key)
        .unwrap();
    let (_, commit_bytes) = commit.to_block().unwrap();

    let input = json!({
        "records": records.iter().map(|(k, c)| json!([k, c.to_string()])).collect::<Vec<_>>(),
        "changes": changes,
        "commit": {
            "privHex": key.to_hex(),
            "did": did,
            "rev": rev,
            "oursHex": hex_encode(&commit_bytes),
        },
    });
    let answer = run_node("repo-root.mjs", &input);

    assert_eq!(answer["rootAfterAdds"], root_after_adds.to_string());
    assert_eq!(answer["rootAfterChanges"], root_after_changes.to_string());
    let mut sorted = our_nodes;
    sorted.sort();
    assert_eq!(answer["nodeCids"], json!(sorted));
    let verdict = &answer["commit"];
    assert_eq!(verdict["oursValid"], true);
    assert_eq!(verdict["oursReencodes"], true);
    assert_eq!(verdict["oursData"], root_after_changes.to_string());
    assert_eq!(verdict["oursRev"], rev);
    assert_eq!(verdict["referenceHex"], hex_encode(&commit_bytes));
    println!(
        "reference agrees: {RECORDS} records, {} node blocks, {} changes, signed commit",
        sorted.len(),
        changes.len()
    );
}
