//! Keys, did:key and signatures against the reference implementation
//! (`@atproto/crypto`, run by `tests/interop/crypto-keys.mjs`).

// Tests may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use atp_crypto::{Algorithm, Error, PublicKey, SigningKey, VerifyMode};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};

const KEYS_PER_CURVE: usize = 32;
const REFERENCE_KEYS_PER_CURVE: usize = 16;

fn curve_order(alg: Algorithm) -> Vec<u8> {
    // SEC 2 curve orders.
    hex::decode(match alg {
        Algorithm::P256 => "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
        Algorithm::K256 => "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
    })
    .unwrap()
}

/// `(r, n - s)`, computed by schoolbook subtraction (independent of the crate).
fn flip_s(alg: Algorithm, sig: &[u8; 64]) -> [u8; 64] {
    let n = curve_order(alg);
    let mut out = *sig;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[32 + i] = d as u8;
    }
    out
}

fn text<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("reference answer without {name}: {v}"))
}

fn flag(v: &Value, name: &str) -> bool {
    v[name]
        .as_bool()
        .unwrap_or_else(|| panic!("reference answer without {name}: {v}"))
}

fn unhex(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(text(v, name)).unwrap()
}

#[test]
fn keys_and_signatures_match_the_reference() {
    let mut cases = Vec::new();
    let mut keys = Vec::new();
    for alg in [Algorithm::P256, Algorithm::K256] {
        for i in 0..KEYS_PER_CURVE {
            let key = SigningKey::generate(alg);
            let mut msg = vec![0u8; 1 + i * 7];
            OsRng.fill_bytes(&mut msg);
            let sig = key.sign(&msg);
            let high = flip_s(alg, &sig);
            cases.push(json!({
                "alg": alg.jwt_alg(),
                "privHex": key.to_hex(),
                "didKey": key.did_key(),
                "uncompressedHex": hex::encode(key.public_key().to_uncompressed_bytes()),
                "msgHex": hex::encode(&msg),
                "sigHex": hex::encode(sig),
                "highSHex": hex::encode(high),
            }));
            keys.push((key, msg, sig, high));
        }
    }
    let answer = atp_test_vectors::run_node(
        "crypto-keys.mjs",
        &json!({
            "cases": cases,
            "generate": { "ES256": REFERENCE_KEYS_PER_CURVE, "ES256K": REFERENCE_KEYS_PER_CURVE },
        }),
    );
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), keys.len());

    for ((key, msg, sig, high), r) in keys.iter().zip(results) {
        let alg = key.algorithm();
        let public = key.public_key();
        let did = key.did_key();
        // did:key: the reference computes the same from the private key and
        // from the uncompressed point, and parses ours to the same key.
        assert_eq!(text(r, "did"), did, "{alg:?}");
        assert_eq!(text(r, "didFromUncompressed"), did);
        assert_eq!(text(r, "parsedAlg"), alg.jwt_alg());
        assert_eq!(unhex(r, "parsedKeyHex"), public.to_uncompressed_bytes());
        assert_eq!(
            unhex(r, "refPublicCompressedHex"),
            public.to_compressed_bytes()
        );

        // Our signatures: low-S, verified by the reference; not for a
        // tampered message.
        assert!(flag(r, "rustSigLowS"), "{did}");
        assert!(flag(r, "rustSigVerifies"), "{did}");
        assert!(!flag(r, "rustSigTamperedVerifies"), "{did}");

        // The high-S variant: really high-S and mathematically valid (the
        // reference accepts it with allowMalleableSig), refused by both in
        // strict mode.
        assert!(flag(r, "rustHighSIsHighS"));
        assert!(flag(r, "rustHighSMalleable"));
        assert!(!flag(r, "rustHighSStrict"), "reference accepted high-S");
        assert!(matches!(public.verify(msg, high), Err(Error::HighS)));
        public.verify_with(msg, high, VerifyMode::Lenient).unwrap();

        // The reference's signature: low-S, verifies here; both sides sign
        // deterministically (RFC 6979), so the bytes are the same.
        let ref_sig = unhex(r, "refSigHex");
        assert!(!flag(r, "refSigHighS"));
        public.verify(msg, &ref_sig).unwrap();
        assert_eq!(ref_sig, sig.to_vec(), "{did}: signatures differ");

        // The reference's high-S variant of its own signature.
        let ref_high = unhex(r, "refHighSHex");
        assert!(matches!(public.verify(msg, &ref_high), Err(Error::HighS)));
        public
            .verify_with(msg, &ref_high, VerifyMode::Lenient)
            .unwrap();

        // DER: refused by both in strict mode, accepted by both leniently.
        let der = unhex(r, "refDerHex");
        // The reference answers false or throws for a non-64-byte signature.
        match &r["refDerStrict"] {
            Value::Bool(false) => {}
            Value::String(threw) if threw.contains("length 64") => {}
            other => panic!("reference strict verdict on DER: {other}"),
        }
        assert!(flag(r, "refDerMalleable"));
        assert!(matches!(
            public.verify(msg, &der),
            Err(Error::MalformedSignature(_))
        ));
        public.verify_with(msg, &der, VerifyMode::Lenient).unwrap();
    }

    // Keys the reference generated: same did:key from the same private key,
    // and its signatures verify here.
    let generated = answer["generated"].as_array().expect("generated");
    assert_eq!(generated.len(), 2 * REFERENCE_KEYS_PER_CURVE);
    for g in generated {
        let alg = Algorithm::from_jwt_alg(text(g, "alg")).unwrap();
        assert!(flag(g, "verifies"));
        let key = SigningKey::from_hex(alg, text(g, "privHex")).unwrap();
        assert_eq!(key.did_key(), text(g, "did"));
        let public = PublicKey::from_did_key(text(g, "did")).unwrap();
        let msg = unhex(g, "msgHex");
        let sig = unhex(g, "sigHex");
        public.verify(&msg, &sig).unwrap();
        assert_eq!(key.sign(&msg).to_vec(), sig);
    }
    println!(
        "reference checks: {} Rust keys, {} reference keys",
        keys.len(),
        generated.len()
    );
}
