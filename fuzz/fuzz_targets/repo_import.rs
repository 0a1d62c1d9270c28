#![no_main]
//! Repository import and MST verification on arbitrary block sets. The
//! input is cut into blocks (a length byte, then that many bytes); each
//! block is stored under its real DAG-CBOR CID, so the checks get past the
//! hash comparison of the CAR reader and into the commit and MST walk.
//! Nothing may panic; a tree that verifies must list its records in
//! strictly increasing key order and name only nodes present in the
//! blocks.

use atp_crypto::cid_for_dag_cbor;
use atp_repo_mst::car::{write_car_from_map, BlockMap};
use atp_repo_mst::import::{import_car, verify_mst, verify_repo, ImportOptions};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut blocks = BlockMap::new();
    let mut order = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        let cid = cid_for_dag_cbor(bytes);
        blocks.insert(cid, bytes.to_vec());
        order.push(cid);
        rest = tail;
    }
    let Some(&first) = order.first() else {
        return;
    };
    let allow_partial = flags & 1 != 0;
    let options = ImportOptions {
        allow_partial,
        accept_v2: flags & 2 != 0,
        ..ImportOptions::default()
    };
    // The first block as a commit.
    let _ = verify_repo(blocks.clone(), first, &options);
    // Every block as the root of an MST.
    for root in order.iter().take(8) {
        if let Ok((records, nodes)) = verify_mst(&blocks, *root, allow_partial) {
            for pair in records.windows(2) {
                assert!(pair[0].0 < pair[1].0, "records out of order");
            }
            for node in &nodes {
                assert!(allow_partial || blocks.contains_key(node));
            }
        }
    }
    // The same blocks through the CAR reader and importer.
    if let Ok(car) = write_car_from_map(&[first], &blocks) {
        let _ = import_car(car.as_slice(), &options);
    }
});
