//! Export and import of CAR files of a 100,000-record tree.
//!
//! `export_100k` and `import_100k` are the workloads of the reference
//! script: the node blocks of the MST of [`atp_benches::mst_workload`]
//! written into an in-memory CAR with the MST root as its root (the
//! reference's `blocksToCarFile`), and that CAR read back into a block map
//! with every block checked against its CID (`readCarWithRoot`).
//!
//! `repo_export_100k` and `repo_import_verify_100k` go further: a whole
//! repository (records, tree, signed commit) is exported by walking the
//! tree from the commit, and imported with every block hash, the commit
//! signature and the whole MST (layers, order, canonical nodes, every
//! record present) checked. Throughput is reported in records per second.

use std::hint::black_box;
use std::time::Duration;

use atp_benches::{mst_key, mst_workload, record_bytes, RECORDS};
use atp_crypto::{cid_for_dag_cbor, Algorithm, Cid, SigningKey};
use atp_repo_mst::blockstore::{BlockStore, MemoryBlockStore};
use atp_repo_mst::car::{read_car_with_root, write_car_from_map, CarLimits};
use atp_repo_mst::commit::UnsignedCommit;
use atp_repo_mst::import::{export_repo_car, import_car, ImportOptions};
use atp_repo_mst::mst::Mst;
use criterion::{criterion_main, Criterion};

#[allow(dead_code)] // each benchmark uses part of the shared set-ups
mod criterion_setup;

const DID: &str = "did:plc:7iza6de2dwap2sbkpav7c6c6";

/// Builds the repository of the MST workload, records included; returns the store, the commit CID and the key.
fn build() -> (MemoryBlockStore, Cid, SigningKey) {
    let store = MemoryBlockStore::new();
    let mut tree = Mst::new(&store);
    for i in 0..RECORDS {
        let bytes = record_bytes(i);
        let cid = cid_for_dag_cbor(&bytes);
        store.put(&cid, &bytes).expect("put record");
        tree.insert(&mst_key(i), cid).expect("insert");
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

fn tree_car(c: &mut Criterion) {
    let mut tree = Mst::new(MemoryBlockStore::new());
    for (key, cid) in mst_workload(RECORDS) {
        tree.insert(&key, cid).expect("insert");
    }
    let (root, blocks) = tree.unstored_blocks().expect("blocks");
    let bytes = write_car_from_map(&[root], &blocks).expect("export");
    println!(
        "car ({RECORDS} records): {} blocks, {} bytes",
        blocks.len(),
        bytes.len()
    );
    let mut group = criterion_setup::records_group(c, "car", Duration::from_secs(5));
    group.bench_function("export_100k", |b| {
        b.iter(|| {
            write_car_from_map(&[root], black_box(&blocks))
                .expect("export")
                .len()
        })
    });
    group.bench_function("import_100k", |b| {
        b.iter(|| {
            read_car_with_root(black_box(&bytes), CarLimits::REPOSITORY)
                .expect("import")
                .1
                .len()
        })
    });
    group.finish();
}

fn repo_car(c: &mut Criterion) {
    let (store, commit, key) = build();
    let bytes = export_repo_car(&store, commit, Vec::new()).expect("export");
    let options = ImportOptions {
        did: Some(DID.to_owned()),
        signing_key: Some(key.public_key()),
        ..ImportOptions::default()
    };
    let mut group = criterion_setup::records_group(c, "car", Duration::from_secs(5));
    group.bench_function("repo_export_100k", |b| {
        b.iter(|| {
            export_repo_car(black_box(&store), commit, Vec::with_capacity(bytes.len()))
                .expect("export")
                .len()
        })
    });
    group.bench_function("repo_import_verify_100k", |b| {
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
    tree_car(&mut criterion);
    repo_car(&mut criterion);
}

criterion_main!(benches);
