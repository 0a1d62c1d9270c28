//! In-memory MST: insert 100,000 records and compute the root CID.
//!
//! Throughput is reported in records per second (the reference
//! TypeScript implementation manages about 10,000 inserts per second).
//! Keys are `app.bsky.feed.post/<TID>` in time order (the common case for a
//! live repository) and the same keys in random order (an import).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use atp_crypto::{cid_for_dag_cbor, dagcbor, Cid, Ipld};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::mst::Mst;
use atp_syntax::Tid;
use criterion::{criterion_main, BatchSize, Criterion, Throughput};

const RECORDS: usize = 100_000;

fn records() -> Vec<(String, Cid)> {
    let mut micros: u64 = 1_700_000_000_000_000;
    (0..RECORDS)
        .map(|i| {
            micros += 1_000 + (i as u64 * 7_919) % 3_000_000;
            let tid = Tid::from_parts(micros, (i % 1024) as u16).expect("valid TID");
            let record = Ipld::Map(BTreeMap::from([
                (
                    "$type".to_owned(),
                    Ipld::String("app.bsky.feed.post".to_owned()),
                ),
                ("n".to_owned(), Ipld::Integer(i as i128)),
            ]));
            let bytes = dagcbor::encode_ipld(&record).expect("record encodes");
            (
                format!("app.bsky.feed.post/{}", tid.as_str()),
                cid_for_dag_cbor(&bytes),
            )
        })
        .collect()
}

/// A fixed pseudo-random permutation (xorshift), so runs are comparable.
fn shuffled(mut items: Vec<(String, Cid)>) -> Vec<(String, Cid)> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
    items
}

fn build(records: &[(String, Cid)]) -> Cid {
    let mut tree = Mst::new(MemoryBlockStore::new());
    for (key, cid) in records {
        tree.insert(key, *cid).expect("insert");
    }
    tree.root().expect("root")
}

fn mst(c: &mut Criterion) {
    let in_order = records();
    let random = shuffled(in_order.clone());
    let mut group = c.benchmark_group("mst");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("insert_100k_tid_order_and_root", |b| {
        b.iter(|| build(black_box(&in_order)))
    });
    group.bench_function("insert_100k_random_order_and_root", |b| {
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
