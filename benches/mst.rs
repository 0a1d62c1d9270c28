//! In-memory MST: insert 100,000 records and compute the root CID.
//!
//! The workload of the reference script: keys `app.bsky.feed.post/<TID>`
//! with TIDs from increasing microsecond stamps, each value the CID of a
//! distinct small record ([`atp_benches::mst_workload`]). Throughput is in
//! records per second. The same keys in a fixed shuffled order (an import)
//! and the writing of every node block are measured too.
//!
//! Before measuring, the root of the in-order tree is printed as
//! `mst root (<n> records): <cid>`, so `scripts/bench.sh` can check that
//! the reference built the same tree.

use std::hint::black_box;
use std::time::Duration;

use atp_benches::{mst_workload, shuffled, RECORDS};
use atp_crypto::Cid;
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::mst::Mst;
use criterion::{criterion_main, BatchSize, Criterion};

#[allow(dead_code)] // each benchmark uses part of the shared set-ups
mod criterion_setup;

/// The tree of `records`, inserted in their order, nothing written yet.
fn tree_of(records: &[(String, Cid)]) -> Mst<MemoryBlockStore> {
    let mut tree = Mst::new(MemoryBlockStore::new());
    for (key, cid) in records {
        tree.insert(key, *cid).expect("insert");
    }
    tree
}

fn build(records: &[(String, Cid)]) -> Cid {
    tree_of(records).root().expect("root")
}

fn mst(c: &mut Criterion) {
    let in_order = mst_workload(RECORDS);
    let random = shuffled(in_order.clone());
    let root = build(&in_order);
    assert_eq!(build(&random), root, "insertion order changed the root");
    println!("mst root ({RECORDS} records): {root}");

    let mut group = criterion_setup::records_group(c, "mst", Duration::from_secs(6));
    group.bench_function("insert_100k_and_root", |b| {
        b.iter(|| build(black_box(&in_order)))
    });
    group.bench_function("insert_100k_shuffled_and_root", |b| {
        b.iter(|| build(black_box(&random)))
    });
    // Writing every node block of the built tree to an in-memory store.
    group.bench_function("flush_100k_to_memory_store", |b| {
        b.iter_batched(
            || tree_of(&in_order),
            |mut tree| tree.flush().expect("flush").0,
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    mst(&mut criterion);
}

criterion_main!(benches);
