//! Operation types: JSON and DAG-CBOR forms, strict parsing, signing, DID
//! derivation, legacy normalization.
#![allow(clippy::unwrap_used)] // tests may unwrap

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::operation::{LegacyCreateOperation, TombstoneOperation};
use atp_did_plc::signing::decode_sig;
use atp_did_plc::{
    check_did_plc, did_for_genesis, tombstone, Error, GenesisBuilder, Operation, OperationType,
    UnsignedOperation, UpdateBuilder,
};
use serde_json::{json, Value};

fn genesis() -> (SigningKey, atp_did_plc::Genesis) {
    let key = SigningKey::generate(Algorithm::P256);
    let genesis = GenesisBuilder::new()
        .rotation_key(key.did_key())
        .signing_key(SigningKey::generate(Algorithm::K256).did_key())
        .handle("Alice.Example.COM")
        .pds_endpoint("https://pds.example.com/")
        .sign(&key)
        .unwrap();
    (key, genesis)
}

#[test]
fn genesis_has_null_prev_normalized_handle_and_endpoint() {
    let (_, g) = genesis();
    let v = g.operation.to_json_value();
    assert_eq!(v["type"], "plc_operation");
    assert_eq!(v["prev"], Value::Null);
    assert!(v.as_object().unwrap().contains_key("prev"));
    assert_eq!(v["alsoKnownAs"], json!(["at://alice.example.com"]));
    assert_eq!(
        v["services"]["atproto_pds"]["endpoint"],
        "https://pds.example.com"
    );
    assert_eq!(
        v["services"]["atproto_pds"]["type"],
        "AtprotoPersonalDataServer"
    );
    assert!(g.operation.is_genesis());
}

#[test]
fn json_and_cbor_round_trip_to_identical_bytes() {
    let (key, g) = genesis();
    let update = UpdateBuilder::from_last(&g.operation)
        .unwrap()
        .handle("bob.example.com")
        .unwrap()
        .sign(&key)
        .unwrap();
    let tomb = tombstone(&update, &key).unwrap();
    for op in [&g.operation, &update, &tomb] {
        let from_json = Operation::from_json(&op.to_json()).unwrap();
        assert_eq!(&from_json, op);
        let cbor = op.to_cbor().unwrap();
        let from_cbor = Operation::from_cbor(&cbor).unwrap();
        assert_eq!(&from_cbor, op);
        assert_eq!(from_cbor.to_cbor().unwrap(), cbor);
        // serde impls agree with the helpers.
        let via_serde: Operation = serde_json::from_str(&op.to_json()).unwrap();
        assert_eq!(&via_serde, op);
    }
    assert_eq!(tomb.operation_type(), OperationType::Tombstone);
    assert_eq!(
        tomb.prev(),
        Some(update.cid().unwrap().to_string().as_str())
    );
}

#[test]
fn signed_bytes_exclude_sig_and_signature_is_compact_base64url() {
    let (key, g) = genesis();
    let unsigned_cbor = g.operation.unsigned.to_cbor().unwrap();
    let decoded = atp_crypto::dagcbor::decode_ipld(&unsigned_cbor).unwrap();
    let atp_crypto::Ipld::Map(map) = decoded else {
        panic!("not a map")
    };
    assert!(!map.contains_key("sig"));
    assert!(map.contains_key("prev"));
    assert!(!g.operation.sig.contains('=') && !g.operation.sig.contains('+'));
    let sig = decode_sig(&g.operation.sig).unwrap();
    assert_eq!(sig.len(), 64);
    key.public_key().verify(&unsigned_cbor, &sig).unwrap();
    assert_eq!(g.operation.verify_signature(&[key.did_key()]).unwrap(), 0);
    // Padded base64url is not accepted.
    let mut padded = g.operation.clone();
    padded.sig.push_str("==");
    assert!(matches!(
        padded.verify_signature(&[key.did_key()]),
        Err(Error::InvalidSignature(_))
    ));
}

#[test]
fn did_is_24_lower_case_base32_characters_of_the_signed_genesis() {
    let (_, g) = genesis();
    assert_eq!(g.did.len(), "did:plc:".len() + 24);
    check_did_plc(&g.did).unwrap();
    assert_eq!(did_for_genesis(&g.operation).unwrap(), g.did);
    let hash = atp_crypto::sha256(&g.operation.to_cbor().unwrap());
    let b32 = base32_lower(&hash);
    assert_eq!(&g.did["did:plc:".len()..], &b32[..24]);
    assert!(check_did_plc("did:plc:abc").is_err());
    assert!(check_did_plc("did:web:abcdefghijklmnopqrstuvwx").is_err());
    assert!(check_did_plc("did:plc:abcdefghijklmnopqrstuvw1").is_err());
}

/// Plain RFC 4648 base32 written out here so the test does not reuse the
/// crate's encoder.
fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[test]
fn strict_parsing_names_the_problem() {
    let (_, g) = genesis();
    let base = g.operation.to_json_value();
    let cases: Vec<(Value, &str)> = vec![
        (with(&base, "extra", json!(1)), "unknown field"),
        (without(&base, "sig"), "sig"),
        (without(&base, "prev"), "prev"),
        (without(&base, "rotationKeys"), "rotationKeys"),
        (without(&base, "type"), "type"),
        (
            with(&base, "type", json!("plc_op")),
            "unknown operation type",
        ),
        (with(&base, "handle", json!("x.com")), "handle"),
        (
            with(&base, "rotationKeys", json!("did:key:z")),
            "invalid type",
        ),
        (
            json!({"type": "plc_tombstone", "prev": null, "sig": "x"}),
            "non-null `prev`",
        ),
        (
            json!({"type": "create", "signingKey": "a", "recoveryKey": "b", "handle": "c", "service": "d", "prev": "bafy", "sig": "x"}),
            "null",
        ),
    ];
    for (value, needle) in cases {
        let err = Operation::from_json_value(&value).unwrap_err();
        assert!(matches!(err, Error::InvalidOperation(_)), "{value}: {err}");
        assert!(
            err.to_string().contains(needle),
            "{value}: {err} lacks {needle:?}"
        );
        let text = serde_json::to_string(&value).unwrap();
        assert!(Operation::from_json(&text).is_err());
    }
    // An unsigned operation must not carry a signature.
    assert!(UnsignedOperation::from_json(&g.operation.to_json()).is_err());
    let unsigned_json = serde_json::to_string(&g.operation.unsigned).unwrap();
    assert_eq!(
        UnsignedOperation::from_json(&unsigned_json).unwrap(),
        g.operation.unsigned
    );
    // Not JSON at all, and CBOR garbage.
    assert!(matches!(
        Operation::from_json("{"),
        Err(Error::InvalidOperation(_))
    ));
    assert!(Operation::from_cbor(&[0xa1, 0x00]).is_err());
}

fn with(v: &Value, k: &str, x: Value) -> Value {
    let mut v = v.clone();
    v[k] = x;
    v
}

fn without(v: &Value, k: &str) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove(k);
    v
}

#[test]
fn legacy_create_normalizes_like_the_reference() {
    let signing = SigningKey::generate(Algorithm::K256);
    let recovery = SigningKey::generate(Algorithm::K256);
    let op = UnsignedOperation::LegacyCreate(LegacyCreateOperation {
        signing_key: signing.did_key(),
        recovery_key: recovery.did_key(),
        handle: "carol.example.com".into(),
        service: "pds.example.com".into(),
    })
    .sign(&signing)
    .unwrap();
    let json = op.to_json_value();
    assert_eq!(json["type"], "create");
    assert_eq!(json["prev"], Value::Null);
    let body = op.normalized().unwrap();
    assert_eq!(
        body.rotation_keys,
        vec![recovery.did_key(), signing.did_key()]
    );
    assert_eq!(
        body.also_known_as,
        vec!["at://carol.example.com".to_string()]
    );
    assert_eq!(
        body.services["atproto_pds"].endpoint,
        "https://pds.example.com"
    );
    assert_eq!(body.verification_methods["atproto"], signing.did_key());
    let did = did_for_genesis(&op).unwrap();
    let data = atp_did_plc::validate_operation_log(&did, &[op])
        .unwrap()
        .unwrap();
    assert_eq!(data.handle(), Some("carol.example.com"));
    let tomb = UnsignedOperation::Tombstone(TombstoneOperation { prev: "x".into() });
    assert_eq!(tomb.normalized(), None);
}

#[test]
fn builders_refuse_unauthorized_signers_and_bad_endpoints() {
    let (key, g) = genesis();
    let stranger = SigningKey::generate(Algorithm::K256);
    let err = UpdateBuilder::from_last(&g.operation)
        .unwrap()
        .sign(&stranger)
        .unwrap_err();
    assert!(matches!(err, Error::SignerNotAuthorized(_)));
    // A key added by the update cannot sign that update.
    let err = UpdateBuilder::from_last(&g.operation)
        .unwrap()
        .add_rotation_key(stranger.did_key(), 0)
        .sign(&stranger)
        .unwrap_err();
    assert!(matches!(err, Error::SignerNotAuthorized(_)));
    for bad in [
        "pds.example.com",
        "ftp://x.com",
        "https://",
        "https://x.com/?a",
        "https://a b",
    ] {
        let err = UpdateBuilder::from_last(&g.operation)
            .unwrap()
            .pds_endpoint(bad)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidEndpoint { .. }), "{bad}");
    }
    let tomb = tombstone(&g.operation, &key).unwrap();
    assert!(matches!(
        UpdateBuilder::from_last(&tomb),
        Err(Error::Misordered)
    ));
    assert!(matches!(tombstone(&tomb, &key), Err(Error::Misordered)));
}
