//! DAG-CBOR encode and decode of a typical post record (text, createdAt,
//! langs, a facet, an image embed with a blob), and its CID, as in the
//! reference script (`post_encode`, `post_decode`, `post_cid`).

use std::hint::black_box;

use atp_benches::{post_value, POST_JSON};
use atp_crypto::{cids, dagcbor, data_model, Cid};
use criterion::{criterion_main, Criterion, Throughput};

#[allow(dead_code)] // each benchmark uses part of the shared set-ups
mod criterion_setup;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Post {
    #[serde(rename = "$type")]
    kind: String,
    text: String,
    created_at: String,
    langs: Vec<String>,
    facets: Vec<Facet>,
    embed: Embed,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Facet {
    index: ByteSlice,
    features: Vec<Tag>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByteSlice {
    byte_start: u64,
    byte_end: u64,
}

#[derive(Serialize, Deserialize)]
struct Tag {
    #[serde(rename = "$type")]
    kind: String,
    tag: String,
}

#[derive(Serialize, Deserialize)]
struct Embed {
    #[serde(rename = "$type")]
    kind: String,
    images: Vec<Image>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Image {
    alt: String,
    image: Blob,
    aspect_ratio: AspectRatio,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Blob {
    #[serde(rename = "$type")]
    kind: String,
    #[serde(rename = "ref")]
    link: Cid,
    mime_type: String,
    size: u64,
}

#[derive(Serialize, Deserialize)]
struct AspectRatio {
    width: u64,
    height: u64,
}

fn bench_dagcbor(c: &mut Criterion) {
    let value = post_value().expect("post.json is a valid record");
    let bytes = dagcbor::encode_ipld(&value).expect("encodes");
    let post: Post = dagcbor::from_slice(&bytes).expect("typed decode");
    assert_eq!(dagcbor::to_vec(&post).expect("typed encode"), bytes);

    let mut group = c.benchmark_group("dagcbor_post");
    group.throughput(Throughput::Elements(1));
    // The three workloads of the reference script: encode the data-model
    // value, decode the bytes back to one, encode then hash into a CID.
    group.bench_function("encode", |b| {
        b.iter(|| dagcbor::encode_ipld(black_box(&value)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| dagcbor::decode_ipld(black_box(&bytes)))
    });
    group.bench_function("cid", |b| {
        b.iter(|| dagcbor::cid_of_ipld(black_box(&value)))
    });
    // The same through typed structs (what the server does with records
    // it knows), and the pieces on their own.
    group.bench_function("encode_struct", |b| {
        b.iter(|| dagcbor::to_vec(black_box(&post)))
    });
    group.bench_function("decode_struct", |b| {
        b.iter(|| dagcbor::from_slice::<Post>(black_box(&bytes)))
    });
    group.bench_function("cid_struct", |b| {
        b.iter(|| dagcbor::cid_of(black_box(&post)))
    });
    group.bench_function("cid_of_bytes", |b| {
        b.iter(|| cids::cid_for_dag_cbor(black_box(&bytes)))
    });
    group.bench_function("validate", |b| {
        b.iter(|| dagcbor::validate(black_box(&bytes)))
    });
    group.bench_function("json_to_ipld", |b| {
        let json: serde_json::Value = serde_json::from_str(POST_JSON).expect("JSON");
        b.iter(|| data_model::json_to_ipld(black_box(&json)))
    });
    group.finish();
}

fn benches() {
    let mut criterion = criterion_setup::quick(30);
    bench_dagcbor(&mut criterion);
}

criterion_main!(benches);
