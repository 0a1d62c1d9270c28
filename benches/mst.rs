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
use criterion::{criterion_main, BatchSize, Criterion, Throughput};

fn build(records: &[(String, Cid)]) -> Cid {
    let mut tree = Mst::new(MemoryBlockStore::new());
    for (key, cid) in records {
        tree.insert(key, *cid).expect("insert");
    }
    tree.root().expect("root")
}

fn mst(c: &mut Criterion) {
    let in_order = mst_workload(RECORDS);
    let random = shuffled(in_order.clone());
    let root = build(&in_order);
    assert_eq!(build(&random), root, "insertion order changed the root");
    println!("mst root ({RECORDS} records): {root}");

    let mut group = c.benchmark_group("mst");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("insert_100k_and_root", |b| {
        b.iter(|| build(black_box(&in_order)))
    });
    group.bench_function("insert_100k_shuffled_and_root", |b| {
        b.iter(|| build(black_box(&random)))
    });
    // Writing every node block of the built tree to an in-memory store.
    group.bench_function("flush_100k_to_memory_store", |b| {
        b.iter_batched(
            || {
                let mut tree = Mst::new(MemoryBlockStore::new());
                for (key, cid) in &in_order {
                    tree.insert(key, *cid).expect("insert");
                }
                tree
            },
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
