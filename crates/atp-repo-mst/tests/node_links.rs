//! `NodeLinks` reads the same links from a stored node's bytes as the
//! full decoder, and refuses malformed bytes without panicking.

#![allow(clippy::unwrap_used)] // tests may unwrap

use atp_crypto::cid_for_dag_cbor;
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::mst::{decode_node, Mst, NodeLinks};

/// Walks every node of a tree of `count` keys, comparing the links read
/// in place with those of the decoded node; the number of nodes.
fn check_tree(count: usize) -> usize {
    let mut mst = Mst::new(MemoryBlockStore::new());
    for i in 0..count {
        let key = format!("app.bsky.feed.post/3k{i:011}");
        mst.insert(&key, cid_for_dag_cbor(key.as_bytes())).unwrap();
    }
    let (root, _) = mst.flush().unwrap();
    let store = mst.store();
    let mut pending = vec![root];
    let mut links = NodeLinks::default();
    let mut nodes = 0;
    while let Some(cid) = pending.pop() {
        let bytes = store.get_required(&cid).unwrap();
        let node = decode_node(&bytes).unwrap();
        links.read(&bytes).unwrap();
        let records: Vec<Vec<u8>> = node.entries.iter().map(|e| e.value.to_bytes()).collect();
        let subtrees: Vec<Vec<u8>> = node.children().map(|c| c.to_bytes()).collect();
        assert_eq!(
            links.records().map(<[u8]>::to_vec).collect::<Vec<_>>(),
            records
        );
        assert_eq!(
            links.subtrees().map(<[u8]>::to_vec).collect::<Vec<_>>(),
            subtrees
        );
        pending.extend(node.children());
        nodes += 1;
    }
    nodes
}

#[test]
fn links_are_those_of_the_decoded_node() {
    assert_eq!(check_tree(0), 1);
    assert!(check_tree(3000) > 20);
}

#[test]
fn malformed_nodes_are_errors() {
    let mut links = NodeLinks::default();
    let empty = [0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6];
    links.read(&empty).unwrap();
    assert_eq!(links.records().count(), 0);
    assert_eq!(links.subtrees().count(), 0);
    for bad in [
        &[][..],
        // a map with one entry missing
        &[0xa1][..],
        // an array, not a map
        &[0x80][..],
        // `l` tagged 43, and a link of only the 0x00 prefix
        &[0xa1, 0x61, 0x6c, 0xd8, 0x2b, 0x41, 0x00][..],
        &[0xa1, 0x61, 0x6c, 0xd8, 0x2a, 0x41, 0x00][..],
        // an entry without `v`
        &[0xa1, 0x61, 0x65, 0x81, 0xa0][..],
        // indefinite-length map
        &[0xbf, 0xff][..],
        // a byte after the node
        &[0xa2, 0x61, 0x65, 0x80, 0x61, 0x6c, 0xf6, 0x00][..],
        // an array claiming 2^64 - 1 items
        &[
            0xa1, 0x61, 0x78, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ][..],
    ] {
        assert!(links.read(bad).is_err(), "{bad:02x?}");
    }
    let deep: Vec<u8> = [0xa1, 0x61, 0x78]
        .into_iter()
        .chain(std::iter::repeat_n(0x81, 80))
        .chain([0x00])
        .collect();
    assert!(links.read(&deep).is_err());
}
