//! The interop signature fixtures: every case, strict verification must give
//! exactly the fixture's verdict.

// Tests may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use atp_crypto::did_key;
use atp_crypto::{Algorithm, Error, PublicKey, VerifyMode};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

const FILE: &str = "crypto/signature-fixtures.json";

fn b64(text: &str) -> Vec<u8> {
    STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap_or_else(|e| panic!("bad base64 {text:?}: {e}"))
}

fn field<'a>(case: &'a serde_json::Value, name: &str) -> &'a str {
    case[name]
        .as_str()
        .unwrap_or_else(|| panic!("case without {name}: {case}"))
}

#[test]
fn signature_fixtures() {
    let cases = atp_test_vectors::interop_json(FILE);
    let cases = cases.as_array().expect("an array of cases");
    let mut count = 0;
    let (mut high_s, mut der) = (0, 0);
    for case in cases {
        let comment = field(case, "comment");
        let alg = Algorithm::from_jwt_alg(field(case, "algorithm")).unwrap();
        let valid = case["validSignature"].as_bool().expect("validSignature");
        let tags: Vec<&str> = case["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| t.as_str().expect("tag is a string"))
            .collect();
        let msg = b64(field(case, "messageBase64"));
        let sig = b64(field(case, "signatureBase64"));

        // The key, from the did:key and from the legacy multibase (no
        // multicodec; the curve comes from the DID document suite).
        let key = PublicKey::from_did_key(field(case, "publicKeyDid")).unwrap();
        assert_eq!(key.algorithm(), alg, "{comment}");
        assert_eq!(key.to_did_key(), field(case, "publicKeyDid"), "{comment}");
        let suite_alg = match field(case, "didDocSuite") {
            "EcdsaSecp256r1VerificationKey2019" => Algorithm::P256,
            "EcdsaSecp256k1VerificationKey2019" => Algorithm::K256,
            other => panic!("unexpected suite {other}"),
        };
        assert_eq!(suite_alg, alg, "{comment}");
        let legacy =
            did_key::parse_legacy_multibase(suite_alg, field(case, "publicKeyMultibase")).unwrap();
        assert_eq!(legacy, key, "{comment}");

        let strict = key.verify(&msg, &sig);
        assert_eq!(strict.is_ok(), valid, "{comment}: {strict:?}");
        assert_eq!(
            did_key::verify_signature(field(case, "publicKeyDid"), &msg, &sig).is_ok(),
            valid,
            "{comment}"
        );

        // Why an invalid case is invalid, and that lenient mode (the
        // reference's allowMalleableSig) accepts these old forms.
        if tags.contains(&"high-s") {
            assert!(matches!(strict, Err(Error::HighS)), "{comment}");
            high_s += 1;
        }
        if tags.contains(&"der-encoded") {
            assert!(
                matches!(strict, Err(Error::MalformedSignature(_))),
                "{comment}"
            );
            der += 1;
        }
        let lenient = key.verify_with(&msg, &sig, VerifyMode::Lenient);
        assert!(lenient.is_ok(), "{comment}: lenient {lenient:?}");

        // A different message never verifies.
        let mut other = msg.clone();
        other.push(0);
        assert!(key.verify_with(&other, &sig, VerifyMode::Lenient).is_err());
        count += 1;
    }
    assert!(high_s >= 2 && der >= 2, "fixture tags were not all seen");
    atp_test_vectors::report(FILE, count);
}
