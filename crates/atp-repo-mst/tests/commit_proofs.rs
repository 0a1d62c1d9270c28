//! The firehose commit-proof fixtures: build the tree, apply the commit,
//! and check the root CIDs and the blocks a `#commit` must carry for
//! operation inversion (the created nodes plus the existing nodes the
//! inversion reads). Each case is then verified the consumer's way.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use atp_crypto::{parse_cid, Cid};
use atp_repo_mst::car::BlockMap;
use atp_repo_mst::diff::{mst_diff, RecordOp};
use atp_repo_mst::proof::partial_tree::PartialTree;
use atp_repo_mst::proof::{
    covering_proof, event_proof_nodes, inversion_proof_nodes, verify_inversion,
};

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn commit_proof_fixtures() {
    let fixtures = atp_test_vectors::interop_json("firehose/commit-proof-fixtures.json");
    let mut count = 0;
    for case in fixtures.as_array().unwrap() {
        let name = case["comment"].as_str().unwrap();
        let leaf = parse_cid(case["leafValue"].as_str().unwrap()).unwrap();
        let mut store = BlockMap::new();

        let mut before = PartialTree::empty(&store);
        for key in strings(&case["keys"]) {
            before.insert(key.as_bytes(), leaf).unwrap();
        }
        let (root_before, blocks) = before.commit().unwrap();
        store.extend(blocks);
        assert_eq!(
            root_before.to_string(),
            case["rootBeforeCommit"].as_str().unwrap(),
            "{name}: root before"
        );

        let mut ops = Vec::new();
        let mut after = PartialTree::open(&store, root_before).unwrap();
        for key in strings(&case["adds"]) {
            after.insert(key.as_bytes(), leaf).unwrap();
            ops.push(RecordOp {
                path: key,
                old: None,
                new: Some(leaf),
            });
        }
        for key in strings(&case["dels"]) {
            assert_eq!(after.remove(key.as_bytes()).unwrap(), leaf);
            ops.push(RecordOp {
                path: key,
                old: Some(leaf),
                new: None,
            });
        }
        let (root_after, blocks) = after.commit().unwrap();
        store.extend(blocks);
        assert_eq!(
            root_after.to_string(),
            case["rootAfterCommit"].as_str().unwrap(),
            "{name}: root after"
        );

        // The diff gives back the same ops.
        let diff = mst_diff(&store, Some(root_before), root_after).unwrap();
        let mut sorted = ops.clone();
        sorted.sort();
        assert_eq!(diff.record_ops, sorted, "{name}: diff ops");

        // Blocks carried: the created nodes, the covering proof of every
        // op's key in the new tree (the reference's choice) and the nodes
        // the inversion reads (the minimum a consumer needs; always inside
        // the covering proofs here).
        let created: BTreeSet<Cid> = diff.created_nodes.keys().copied().collect();
        let inversion = inversion_proof_nodes(&store, root_after, &ops).unwrap();
        let mut covering = BTreeSet::new();
        for op in &ops {
            covering.extend(covering_proof(&store, root_after, &op.path).unwrap());
        }
        assert!(inversion.is_subset(&covering.union(&created).copied().collect()));
        let mut carried = created.clone();
        carried.extend(covering);
        carried.extend(inversion.iter().copied());
        let expected: BTreeSet<Cid> = strings(&case["blocksInProof"])
            .iter()
            .map(|s| parse_cid(s).unwrap())
            .collect();
        assert_eq!(carried, expected, "{name}: blocks in proof");

        // The library's event blocks: the same set plus the commit.
        let event = commit_event_blocks_for_tree(&store, root_before, root_after, &ops);
        assert_eq!(event, carried, "{name}: commit event blocks");

        // The consumer's check with exactly those blocks.
        let only: BlockMap = store
            .iter()
            .filter(|(c, _)| expected.contains(*c))
            .map(|(c, b)| (*c, b.clone()))
            .collect();
        verify_inversion(&only, root_after, &ops, root_before).unwrap();
        // And with only the minimal set.
        let minimal: BlockMap = store
            .iter()
            .filter(|(c, _)| created.contains(*c) || inversion.contains(*c))
            .map(|(c, b)| (*c, b.clone()))
            .collect();
        verify_inversion(&minimal, root_after, &ops, root_before).unwrap();
        // Dropping an op makes the check fail.
        if ops.len() > 1 {
            assert!(verify_inversion(&only, root_after, &ops[1..], root_before).is_err());
        }
        count += 1;
    }
    atp_test_vectors::report("firehose/commit-proof-fixtures.json", count);
}

/// The MST nodes [`event_proof_nodes`] selects, plus the created nodes.
fn commit_event_blocks_for_tree(
    store: &BlockMap,
    before: Cid,
    after: Cid,
    ops: &[RecordOp],
) -> BTreeSet<Cid> {
    let diff = mst_diff(store, Some(before), after).unwrap();
    let mut out: BTreeSet<Cid> = diff.created_nodes.keys().copied().collect();
    out.extend(event_proof_nodes(store, after, ops).unwrap());
    out
}
