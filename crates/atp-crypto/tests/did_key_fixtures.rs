//! The W3C did:key fixtures: every private key gives the fixture's did:key,
//! and the did:key parses back to the same public key.

// Tests may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use atp_crypto::{Algorithm, PublicKey, SigningKey};

fn check(file: &str, alg: Algorithm, private_key: impl Fn(&serde_json::Value) -> Vec<u8>) {
    let cases = atp_test_vectors::interop_json(file);
    let cases = cases.as_array().expect("an array of cases");
    let mut count = 0;
    for case in cases {
        let expected = case["publicDidKey"].as_str().expect("publicDidKey");
        let key = SigningKey::from_bytes(alg, &private_key(case)).unwrap();
        assert_eq!(key.did_key(), expected, "{case}");
        let parsed = PublicKey::from_did_key(expected).unwrap();
        assert_eq!(parsed.algorithm(), alg);
        assert_eq!(parsed, key.public_key(), "{case}");
        assert_eq!(parsed.to_did_key(), expected);
        assert_eq!(
            PublicKey::from_multibase(&expected["did:key:".len()..]).unwrap(),
            parsed
        );
        // A signature by the fixture key verifies with the parsed key.
        let sig = key.sign(expected.as_bytes());
        parsed.verify(expected.as_bytes(), &sig).unwrap();
        count += 1;
    }
    atp_test_vectors::report(file, count);
}

#[test]
fn w3c_didkey_k256() {
    check("crypto/w3c_didkey_K256.json", Algorithm::K256, |case| {
        hex::decode(case["privateKeyBytesHex"].as_str().expect("hex key")).unwrap()
    });
}

#[test]
fn w3c_didkey_p256() {
    check("crypto/w3c_didkey_P256.json", Algorithm::P256, |case| {
        let text = case["privateKeyBytesBase58"].as_str().expect("base58 key");
        bs58::decode(text).into_vec().unwrap()
    });
}
