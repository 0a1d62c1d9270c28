//! The benchmark workloads are the reference script's, byte for byte.
//!
//! `tests/interop/bench-reference.mjs`, run without a record count, builds
//! its workloads with the reference implementation and prints what they
//! produce; these tests compare that with what `atp_benches` generates, so
//! the side-by-side figures in `docs/benchmarks.md` measure the same work.

use atp_benches::{mst_workload, post_value, signature_message};
use atp_crypto::{dagcbor, parse_cid};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::car::{read_car_with_root, write_car_from_map, CarLimits};
use atp_repo_mst::mst::Mst;
use atp_test_vectors::run_node;
use serde_json::json;

const RECORDS: usize = 2_000;

fn reference() -> serde_json::Value {
    run_node("bench-reference.mjs", &json!({ "records": RECORDS }))
}

fn text(value: &serde_json::Value) -> &str {
    value.as_str().expect("a string")
}

#[test]
fn every_workload_matches_the_reference_script() {
    let theirs = reference();

    // Signatures: the same message.
    assert_eq!(hex::encode(signature_message()), text(&theirs["message"]));

    // DAG-CBOR: the same post bytes and CID.
    let (post_cid, post_bytes) = dagcbor::cid_of_ipld(&post_value().unwrap()).unwrap();
    assert_eq!(hex::encode(&post_bytes), text(&theirs["post_bytes"]));
    assert_eq!(post_cid.to_string(), text(&theirs["post_cid"]));

    // MST: the same keys and values (first three and last), the same root.
    let ours = mst_workload(RECORDS);
    let sample: Vec<_> = [0, 1, 2, RECORDS - 1].iter().map(|&i| &ours[i]).collect();
    let their_keys = theirs["keys"].as_array().unwrap();
    let their_values = theirs["values"].as_array().unwrap();
    assert_eq!(their_keys.len(), sample.len());
    for (i, (key, value)) in sample.iter().enumerate() {
        assert_eq!(key, text(&their_keys[i]));
        assert_eq!(value.to_string(), text(&their_values[i]));
    }
    let mut tree = Mst::new(MemoryBlockStore::new());
    for (key, value) in &ours {
        tree.insert(key, *value).unwrap();
    }
    let (root, blocks) = tree.unstored_blocks().unwrap();
    assert_eq!(root, parse_cid(text(&theirs["mst_root"])).unwrap());

    // CAR: their file reads to our root and exactly our node blocks (the
    // block order of a CAR is not canonical, so the bytes may differ), and
    // ours has the same length.
    let their_car = hex::decode(text(&theirs["car"])).unwrap();
    let (their_root, their_blocks) = read_car_with_root(&their_car, CarLimits::REPOSITORY).unwrap();
    assert_eq!(their_root, root);
    assert_eq!(their_blocks, blocks);
    let our_car = write_car_from_map(&[root], &blocks).unwrap();
    assert_eq!(our_car.len(), their_car.len());
    println!(
        "bench workload: {RECORDS} records, {} MST blocks, same as the reference",
        blocks.len()
    );
}
