//! Repository CARs across implementations, with @atproto/repo as judge:
//! our exports pass `verifyRepoCar`, `verifyDiffCar` and `verifyProofs`;
//! a repository written by the reference imports and verifies here with
//! the same records.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use atp_crypto::{cid_for_dag_cbor, dagcbor, parse_cid, Algorithm, Cid, Ipld, SigningKey};
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::commit::UnsignedCommit;
use atp_repo_mst::diff::RecordOp;
use atp_repo_mst::import::{
    commit_event_blocks, export_diff_car, export_proof_car, export_repo_car, import_car,
    verify_commit_event, ImportOptions,
};
use atp_repo_mst::mst::Mst;
use atp_test_vectors::{hex_decode, hex_encode};
use serde_json::{json, Value};

const DID: &str = "did:plc:7iza6de2dwap2sbkpav7c6c6";
const KEY_HEX: &str = "9085d2bef69286a6cbb51623c8fa258629945cd55ca705cc4e66700396894e0c";

fn rkey(i: usize) -> String {
    // TID-shaped record keys, distinct per index.
    const ALPHABET: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";
    let mut s = String::from("3k");
    let mut n = i;
    for _ in 0..11 {
        s.push(ALPHABET[n % 32] as char);
        n /= 32;
    }
    s
}

fn post_json(text: &str) -> Value {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00.000Z"})
}

fn post_block(text: &str) -> (Cid, Vec<u8>) {
    let value = Ipld::Map(BTreeMap::from([
        (
            "$type".to_owned(),
            Ipld::String("app.bsky.feed.post".to_owned()),
        ),
        ("text".to_owned(), Ipld::String(text.to_owned())),
        (
            "createdAt".to_owned(),
            Ipld::String("2024-01-01T00:00:00.000Z".to_owned()),
        ),
    ]));
    let bytes = dagcbor::encode_ipld(&value).unwrap();
    (cid_for_dag_cbor(&bytes), bytes)
}

fn records_of(value: &Value) -> Vec<(String, Cid)> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                parse_cid(r["cid"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn key() -> SigningKey {
    SigningKey::from_hex(Algorithm::K256, KEY_HEX).unwrap()
}

/// A repository built here: the store, the tree and its commits.
struct RustRepo {
    store: MemoryBlockStore,
    records: BTreeMap<String, Cid>,
}

impl RustRepo {
    fn new() -> Self {
        RustRepo {
            store: MemoryBlockStore::new(),
            records: BTreeMap::new(),
        }
    }

    /// Applies writes (None = delete) and signs a commit; returns
    /// (commit CID, data root).
    fn commit(&mut self, writes: &[(String, Option<String>)], rev: &str) -> (Cid, Cid) {
        for (path, text) in writes {
            match text {
                Some(text) => {
                    let (cid, bytes) = post_block(text);
                    self.store.put(&cid, &bytes).unwrap();
                    self.records.insert(path.clone(), cid);
                }
                None => {
                    self.records.remove(path);
                }
            }
        }
        let mut tree = Mst::new(&self.store);
        for (path, cid) in &self.records {
            tree.insert(path, *cid).unwrap();
        }
        let (data, _) = tree.flush().unwrap();
        let (commit_cid, commit) = UnsignedCommit::new(DID, data, rev)
            .unwrap()
            .sign(&key())
            .unwrap()
            .to_block()
            .unwrap();
        self.store.put(&commit_cid, &commit).unwrap();
        (commit_cid, data)
    }
}

#[test]
fn reference_repo_imports_here() {
    let creates: Vec<Value> = (0..60)
        .map(|i| json!({"collection": "app.bsky.feed.post", "rkey": rkey(i), "record": post_json(&format!("post {i}"))}))
        .collect();
    let updates: Vec<Value> = (0..5)
        .map(|i| json!({"collection": "app.bsky.feed.post", "rkey": rkey(i), "record": post_json(&format!("edited {i}"))}))
        .collect();
    let deletes: Vec<Value> = (50..60)
        .map(|i| json!({"collection": "app.bsky.feed.post", "rkey": rkey(i)}))
        .collect();
    let out = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({"op": "generate", "did": DID, "privateKeyHex": KEY_HEX,
                "creates": creates, "updates": updates, "deletes": deletes}),
    );
    assert!(out.get("error").is_none(), "{out}");
    assert_eq!(out["didKey"], key().did_key());
    let car = hex_decode(out["car"].as_str().unwrap());
    let options = ImportOptions {
        did: Some(DID.to_owned()),
        signing_key: Some(key().public_key()),
        ..ImportOptions::default()
    };
    let repo = import_car(car.as_slice(), &options).unwrap();
    let expected = records_of(&out["records"]);
    assert_eq!(expected.len(), 50);
    assert_eq!(repo.records, expected);
    assert_eq!(repo.commit_cid.to_string(), out["commitCid"]);
    assert_eq!(repo.commit.data.to_string(), out["data"]);
    assert_eq!(repo.commit.rev, out["rev"]);

    // Our tree over the same records has the same root.
    let store = MemoryBlockStore::new();
    let mut tree = Mst::new(&store);
    for (path, cid) in &expected {
        tree.insert(path, *cid).unwrap();
    }
    assert_eq!(tree.root().unwrap(), repo.commit.data);

    // Re-exported by us, the reference still accepts it.
    let again = export_repo_car(&repo.blocks, repo.commit_cid, Vec::new()).unwrap();
    let verdict = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({"op": "verify-repo", "car": hex_encode(&again), "did": DID, "didKey": key().did_key()}),
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(records_of(&verdict["records"]), expected);

    // A wrong key is refused here.
    let other = SigningKey::generate(Algorithm::K256);
    let wrong = ImportOptions {
        signing_key: Some(other.public_key()),
        ..options
    };
    assert!(import_car(car.as_slice(), &wrong).is_err());
}

#[test]
fn our_exports_pass_the_reference_verifiers() {
    let mut repo = RustRepo::new();
    let first: Vec<(String, Option<String>)> = (0..80)
        .map(|i| {
            (
                format!("app.bsky.feed.post/{}", rkey(i)),
                Some(format!("post {i}")),
            )
        })
        .collect();
    let (commit1, data1) = repo.commit(&first, "3kaaaaaaaaaa2");
    let records1 = repo.records.clone();

    // Full repository.
    let car1 = export_repo_car(&repo.store, commit1, Vec::new()).unwrap();
    let verdict = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({"op": "verify-repo", "car": hex_encode(&car1), "did": DID, "didKey": key().did_key()}),
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["commitCid"], commit1.to_string());
    let expected: Vec<(String, Cid)> = records1.iter().map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(records_of(&verdict["records"]), expected);
    // Signed with another key: the reference refuses it.
    let verdict = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({"op": "verify-repo", "car": hex_encode(&car1), "did": DID,
                "didKey": SigningKey::generate(Algorithm::K256).did_key()}),
    );
    assert!(verdict.get("error").is_some(), "{verdict}");

    // Second commit: creates, updates, deletes.
    let mut writes = Vec::new();
    for i in 80..90 {
        writes.push((
            format!("app.bsky.feed.post/{}", rkey(i)),
            Some(format!("new {i}")),
        ));
    }
    for i in 0..5 {
        writes.push((
            format!("app.bsky.feed.post/{}", rkey(i)),
            Some(format!("edit {i}")),
        ));
    }
    for i in 40..48 {
        writes.push((format!("app.bsky.feed.post/{}", rkey(i)), None));
    }
    let (commit2, data2) = repo.commit(&writes, "3kaaaaaaaaab2");
    let mut expected_ops: Vec<RecordOp> = writes
        .iter()
        .map(|(path, _)| RecordOp {
            path: path.clone(),
            old: records1.get(path).copied(),
            new: repo.records.get(path).copied(),
        })
        .collect();
    expected_ops.sort();

    // Diff CAR against the first commit.
    let diff_car = export_diff_car(&repo.store, commit2, Some(data1), Vec::new()).unwrap();
    let verdict = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({"op": "verify-diff", "prevCar": hex_encode(&car1), "diffCar": hex_encode(&diff_car),
                "did": DID, "didKey": key().did_key()}),
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    let writes_seen = verdict["writes"].as_array().unwrap();
    assert_eq!(writes_seen.len(), expected_ops.len());
    for (w, op) in writes_seen.iter().zip(&expected_ops) {
        assert_eq!(w["path"], op.path);
        let action = match op.action().unwrap() {
            atp_repo_mst::diff::OpAction::Create => "create",
            atp_repo_mst::diff::OpAction::Update => "update",
            atp_repo_mst::diff::OpAction::Delete => "delete",
        };
        assert_eq!(w["action"], action, "{}", op.path);
    }

    // Proofs: present keys (inclusion) and absent keys (exclusion).
    let present: Vec<String> = [0usize, 3, 50, 85]
        .iter()
        .map(|i| format!("app.bsky.feed.post/{}", rkey(*i)))
        .collect();
    let absent: Vec<String> = vec![
        format!("app.bsky.feed.post/{}", rkey(41)),
        format!("app.bsky.feed.post/{}", rkey(500)),
        format!("app.bsky.feed.like/{}", rkey(1)),
    ];
    let paths: Vec<&str> = present.iter().chain(&absent).map(String::as_str).collect();
    let proof_car =
        export_proof_car(&repo.store, commit2, paths.iter().copied(), Vec::new()).unwrap();
    let claim = |path: &str, cid: Option<Cid>| {
        let (collection, rkey) = path.split_once('/').unwrap();
        json!({"collection": collection, "rkey": rkey, "cid": cid.map(|c| c.to_string())})
    };
    let mut claims: Vec<Value> = present
        .iter()
        .map(|p| claim(p, repo.records.get(p).copied()))
        .collect();
    claims.extend(absent.iter().map(|p| claim(p, None)));
    // The reference's verdict on claims against the proof CAR: how many it
    // verified and how many it did not.
    let verdict_counts = |claims: &[Value]| {
        let verdict = atp_test_vectors::run_node(
            "repo-car.mjs",
            &json!({"op": "verify-proofs", "car": hex_encode(&proof_car), "claims": claims,
                    "did": DID, "didKey": key().did_key()}),
        );
        assert!(verdict.get("error").is_none(), "{verdict}");
        let count = |field: &str| {
            verdict[field]
                .as_array()
                .unwrap_or_else(|| panic!("{verdict}"))
                .len()
        };
        (count("verified"), count("unverified"))
    };
    assert_eq!(verdict_counts(&claims), (7, 0));
    // False claims (an old CID, a present key claimed absent) are caught.
    let false_claims = vec![
        claim(&present[0], records1.get(&present[0]).copied()),
        claim(&present[1], None),
    ];
    assert_eq!(verdict_counts(&false_claims), (0, 2));

    // Our own #commit check on the event blocks of the second commit.
    let blocks = commit_event_blocks(&repo.store, commit2, Some(data1), &expected_ops).unwrap();
    let event_car = atp_repo_mst::car::write_car_from_map(&[commit2], &blocks).unwrap();
    let commit =
        verify_commit_event(&event_car, DID, &key().public_key(), &expected_ops, data1).unwrap();
    assert_eq!(commit.data, data2);
    // Leaving out one op is detected.
    assert!(verify_commit_event(
        &event_car,
        DID,
        &key().public_key(),
        &expected_ops[1..],
        data1
    )
    .is_err());
}
