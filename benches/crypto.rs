//! Signing and verification per curve, and `did:key` parsing.
//!
//! The message is 256 bytes, about the size of a DAG-CBOR commit; the work
//! is dominated by the curve arithmetic, not by hashing.

use std::hint::black_box;
use std::time::Duration;

use atp_crypto::{Algorithm, PublicKey, SigningKey};
use criterion::{criterion_main, Criterion};

const MESSAGE_LEN: usize = 256;

fn curve_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::P256 => "p256",
        Algorithm::K256 => "k256",
    }
}

fn signatures(c: &mut Criterion) {
    let msg: Vec<u8> = (0..MESSAGE_LEN).map(|i| (i * 31 % 251) as u8).collect();
    for alg in [Algorithm::P256, Algorithm::K256] {
        let key = SigningKey::generate(alg);
        let public = key.public_key();
        let sig = key.sign(&msg);
        let name = curve_name(alg);
        c.bench_function(&format!("crypto/sign/{name}"), |b| {
            b.iter(|| key.sign(black_box(&msg)))
        });
        c.bench_function(&format!("crypto/verify/{name}"), |b| {
            b.iter(|| public.verify(black_box(&msg), black_box(&sig)))
        });
    }
}

fn did_keys(c: &mut Criterion) {
    for alg in [Algorithm::P256, Algorithm::K256] {
        let did = SigningKey::generate(alg).did_key();
        let name = curve_name(alg);
        c.bench_function(&format!("crypto/did_key_parse/{name}"), |b| {
            b.iter(|| PublicKey::from_did_key(black_box(&did)))
        });
        let public = PublicKey::from_did_key(&did).ok();
        c.bench_function(&format!("crypto/did_key_format/{name}"), |b| {
            b.iter(|| black_box(&public).as_ref().map(PublicKey::to_did_key))
        });
    }
}

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

// In a private module: the function the macro generates needs no docs.
mod group {
    use super::{did_keys, quick, signatures};
    criterion::criterion_group! {
        name = benches;
        config = quick();
        targets = signatures, did_keys
    }
}
criterion_main!(group::benches);
