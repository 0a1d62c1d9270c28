//! The MST fixtures of the interop test vectors: key heights, shared
//! prefix lengths and the example keys (whose names carry their height).

#![allow(clippy::unwrap_used)]

use atp_crypto::{cid_for_dag_cbor, parse_cid};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::mst::{
    common_prefix_len, decode_node, is_valid_key, key_height, Mst, EMPTY_TREE_CID,
};
use atp_test_vectors::{interop_json, interop_lines, report};

#[test]
fn key_heights() {
    let cases = interop_json("mst/key_heights.json");
    let cases = cases.as_array().unwrap();
    for case in cases {
        let key = case["key"].as_str().unwrap();
        let height = case["height"].as_u64().unwrap();
        assert_eq!(u64::from(key_height(key.as_bytes())), height, "key {key:?}");
    }
    report("mst/key_heights.json", cases.len());
}

#[test]
fn common_prefix() {
    let cases = interop_json("mst/common_prefix.json");
    let cases = cases.as_array().unwrap();
    for case in cases {
        let left = case["left"].as_str().unwrap();
        let right = case["right"].as_str().unwrap();
        let len = case["len"].as_u64().unwrap() as usize;
        assert_eq!(
            common_prefix_len(left.as_bytes(), right.as_bytes()),
            len,
            "{left:?} / {right:?}"
        );
    }
    report("mst/common_prefix.json", cases.len());
}

/// Each example key is named `<letter><height>/<digits>`.
#[test]
fn example_keys() {
    let keys = interop_lines("mst/example_keys.txt");
    let value = cid_for_dag_cbor(&[0xa0]);
    let mut tree = Mst::new(MemoryBlockStore::new());
    for key in &keys {
        assert!(is_valid_key(key), "{key}");
        let (prefix, _) = key.split_once('/').unwrap();
        let expected: u32 = prefix[1..].parse().unwrap();
        assert_eq!(key_height(key.as_bytes()), expected, "{key}");
        tree.insert(key, value).unwrap();
    }
    // The root sits on the highest layer among the keys.
    let top = keys.iter().map(|k| key_height(k.as_bytes())).max().unwrap();
    assert_eq!(tree.layer().unwrap(), top);

    // Written out and reloaded, every node passes the layer checks and the
    // tree lists exactly the keys, in order.
    let (root, blocks) = tree.flush().unwrap();
    for bytes in blocks.values() {
        decode_node(bytes).unwrap();
    }
    let reloaded = Mst::load(tree.store(), root);
    let listed: Vec<String> = reloaded.leaves().map(|l| l.unwrap().0).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    report("mst/example_keys.txt", keys.len());
}

#[test]
fn empty_tree_root() {
    let mut tree = Mst::new(MemoryBlockStore::new());
    assert_eq!(tree.root().unwrap(), parse_cid(EMPTY_TREE_CID).unwrap());
    let (_, blocks) = tree.unstored_blocks().unwrap();
    let bytes = blocks.values().next().unwrap();
    assert_eq!(bytes, &[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6]);
}

#[test]
fn emptied_tree_returns_to_the_empty_root() {
    let value = cid_for_dag_cbor(&[0xa0]);
    let keys = interop_lines("mst/example_keys.txt");
    let mut tree = Mst::new(MemoryBlockStore::new());
    for key in &keys {
        tree.insert(key, value).unwrap();
    }
    for key in keys.iter().rev() {
        assert_eq!(tree.remove(key).unwrap(), Some(value));
    }
    assert_eq!(tree.layer().unwrap(), 0);
    assert_eq!(tree.root().unwrap(), parse_cid(EMPTY_TREE_CID).unwrap());
}
