//! Export and import of a 100,000-record repository CAR.
//!
//! The repository (records, tree, signed commit) is built once, outside
//! the measured loops. `export` walks the tree and streams the CAR into
//! memory; `import` reads the CAR, checks every block hash, the commit
//! signature and the whole MST (layers, order, canonical nodes, every
//! record present). Throughput is reported in records per second.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use atp_crypto::{cid_for_dag_cbor, dagcbor, Algorithm, Cid, Ipld, SigningKey};
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::commit::UnsignedCommit;
use atp_repo_mst::import::{export_repo_car, import_car, ImportOptions};
use atp_repo_mst::mst::Mst;
use atp_syntax::Tid;
use criterion::{criterion_main, Criterion, Throughput};

const RECORDS: usize = 100_000;
const DID: &str = "did:plc:7iza6de2dwap2sbkpav7c6c6";

/// Builds the repository; returns the store, the commit CID and the key.
fn build() -> (MemoryBlockStore, Cid, SigningKey) {
    let store = MemoryBlockStore::new();
    let mut tree = Mst::new(&store);
    let mut micros: u64 = 1_700_000_000_000_000;
    for i in 0..RECORDS {
        micros += 1_000 + (i as u64 * 7_919) % 3_000_000;
        let tid = Tid::from_parts(micros, (i % 1024) as u16).expect("valid TID");
        let record = Ipld::Map(BTreeMap::from([
            (
                "$type".to_owned(),
                Ipld::String("app.bsky.feed.post".to_owned()),
            ),
            ("text".to_owned(), Ipld::String(format!("post number {i}"))),
            (
                "createdAt".to_owned(),
                Ipld::String("2024-01-01T00:00:00.000Z".to_owned()),
            ),
        ]));
        let bytes = dagcbor::encode_ipld(&record).expect("record encodes");
        let cid = cid_for_dag_cbor(&bytes);
        store.put(&cid, &bytes).expect("put record");
        tree.insert(&format!("app.bsky.feed.post/{}", tid.as_str()), cid)
            .expect("insert");
    }
    let (data, _) = tree.flush().expect("flush");
    let key = SigningKey::generate(Algorithm::K256);
    let (commit, bytes) = UnsignedCommit::new(DID, data, "3kaaaaaaaaaa2")
        .and_then(|unsigned| unsigned.sign(&key))
        .and_then(|commit| commit.to_block())
        .expect("commit");
    store.put(&commit, &bytes).expect("put commit");
    (store, commit, key)
}

fn car(c: &mut Criterion) {
    let (store, commit, key) = build();
    let bytes = export_repo_car(&store, commit, Vec::new()).expect("export");
    let options = ImportOptions {
        did: Some(DID.to_owned()),
        signing_key: Some(key.public_key()),
        ..ImportOptions::default()
    };
    let mut group = c.benchmark_group("car");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("export_100k_records", |b| {
        b.iter(|| {
            export_repo_car(black_box(&store), commit, Vec::with_capacity(bytes.len()))
                .expect("export")
                .len()
        })
    });
    group.bench_function("import_and_verify_100k_records", |b| {
        b.iter(|| {
            import_car(black_box(bytes.as_slice()), &options)
                .expect("import")
                .records
                .len()
        })
    });
    group.finish();
}

fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    car(&mut criterion);
}

criterion_main!(benches);
