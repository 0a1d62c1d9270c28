//! Signing and verification per curve, and `did:key` parsing.
//!
//! The message is the one of the reference script (116 bytes, about the
//! size of a commit). `verify_<curve>` starts from the `did:key` string, as
//! the reference's `verifySignature(did, msg, sig)` does; `verify_key_<curve>`
//! uses an already parsed key (what a long-lived verifier does).

use std::hint::black_box;

use atp_benches::signature_message;
use atp_crypto::{Algorithm, PublicKey, SigningKey};
use criterion::{criterion_main, Criterion, Throughput};

#[allow(dead_code)] // each benchmark uses part of the shared set-ups
mod criterion_setup;

fn curve_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::P256 => "p256",
        Algorithm::K256 => "k256",
    }
}

fn signatures(c: &mut Criterion) {
    let msg = signature_message();
    let mut group = c.benchmark_group("crypto");
    group.throughput(Throughput::Elements(1));
    for alg in [Algorithm::K256, Algorithm::P256] {
        let key = SigningKey::generate(alg);
        let public = key.public_key();
        let did = key.did_key();
        let sig = key.sign(&msg);
        let name = curve_name(alg);
        group.bench_function(format!("sign_{name}"), |b| {
            b.iter(|| key.sign(black_box(&msg)))
        });
        group.bench_function(format!("verify_{name}"), |b| {
            b.iter(|| {
                PublicKey::from_did_key(black_box(&did))
                    .and_then(|public| public.verify(black_box(&msg), black_box(&sig)))
            })
        });
        group.bench_function(format!("verify_key_{name}"), |b| {
            b.iter(|| public.verify(black_box(&msg), black_box(&sig)))
        });
        group.bench_function(format!("did_key_parse_{name}"), |b| {
            b.iter(|| PublicKey::from_did_key(black_box(&did)))
        });
        group.bench_function(format!("did_key_format_{name}"), |b| {
            b.iter(|| black_box(&public).to_did_key())
        });
    }
    group.finish();
}

fn benches() {
    let mut criterion = criterion_setup::quick(20);
    signatures(&mut criterion);
}

criterion_main!(benches);
