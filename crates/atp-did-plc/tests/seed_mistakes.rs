//! The mistakes that got an earlier (Go) attempt's genesis operation
//! refused by the PLC directory, each shown to be caught here with a clear
//! message, and checked against the reference library.
#![allow(clippy::unwrap_used)] // tests may unwrap

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::signing::encode_sig;
use atp_did_plc::validate::assure_valid_submission;
use atp_did_plc::{check_did_plc, Error, GenesisBuilder, Operation, UnsignedOperation};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

fn keys() -> (SigningKey, SigningKey) {
    (
        SigningKey::generate(Algorithm::K256),
        SigningKey::generate(Algorithm::K256),
    )
}

fn good_genesis(rotation: &SigningKey, signing: &SigningKey) -> atp_did_plc::Genesis {
    GenesisBuilder::new()
        .rotation_key(rotation.did_key())
        .signing_key(signing.did_key())
        .handle("alice.example.com")
        .pds_endpoint("https://pds.example.com")
        .sign(rotation)
        .unwrap()
}

fn submit_to_reference(did: &str, op: &Value) -> Value {
    let case = json!({"cmd": "submit", "did": did, "log": [], "proposed": op, "now": "2024-01-01T00:00:00.000Z"});
    let out = atp_test_vectors::run_node("plc-lib.mjs", &json!({ "cases": [case] }));
    out[0].clone()
}

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

/// Mistake 1: the genesis operation had no `prev` member. It must be
/// present with the value `null`.
#[test]
fn missing_prev_is_rejected() {
    let (rotation, signing) = keys();
    let genesis = good_genesis(&rotation, &signing);
    // What the seed sent: the operation without `prev`, signed without it.
    let mut unsigned = genesis.operation.to_json_value();
    let obj = unsigned.as_object_mut().unwrap();
    obj.remove("prev");
    obj.remove("sig");
    let bytes = atp_crypto::dagcbor::to_vec(&unsigned).unwrap();
    let sig = encode_sig(&rotation.sign(&bytes));
    unsigned
        .as_object_mut()
        .unwrap()
        .insert("sig".into(), json!(sig));
    let sent = unsigned;

    let err = Operation::from_json_value(&sent).unwrap_err();
    assert!(matches!(err, Error::InvalidOperation(_)));
    let text = err.to_string();
    assert!(text.contains("`prev`") && text.contains("null"), "{text}");

    // Our own genesis has it, as null.
    assert!(genesis.operation.to_json().contains(r#""prev":null"#));

    let reference = submit_to_reference(&genesis.did, &sent);
    assert_eq!(reference["ok"], false, "{reference}");
    assert!(reference["message"]
        .as_str()
        .unwrap()
        .starts_with("Not a valid operation"));
}

/// Mistake 2: the DID was printed in upper case. The identifier is lower
/// case, and a directory compares it with the hash exactly.
#[test]
fn upper_case_did_is_rejected() {
    let (rotation, signing) = keys();
    let genesis = good_genesis(&rotation, &signing);
    let upper = format!("did:plc:{}", genesis.did["did:plc:".len()..].to_uppercase());

    let syntax = check_did_plc(&upper).unwrap_err().to_string();
    assert!(syntax.contains("lower case"), "{syntax}");

    let err = assure_valid_submission(&upper, &[], &genesis.operation, now()).unwrap_err();
    assert!(matches!(err, Error::GenesisHash { .. }), "{err}");
    assert!(
        err.to_string().contains(&genesis.did),
        "names the DID it should be: {err}"
    );

    let reference = submit_to_reference(&upper, &genesis.operation.to_json_value());
    assert_eq!(reference["error"], "GenesisHashError", "{reference}");
    assert_eq!(reference["message"], err.to_string());
}

/// Mistake 3: the handle had no domain (`at://alice`). The directory does
/// not check handles (the reference accepts such an operation, and the
/// handle then never resolves); the builders refuse it before signing.
#[test]
fn bare_handle_is_refused_by_the_builder() {
    let (rotation, signing) = keys();
    for bad in [
        "alice",
        "at://alice.example.com",
        "alice.",
        "-alice.com",
        "alice.123",
    ] {
        let err = GenesisBuilder::new()
            .rotation_key(rotation.did_key())
            .signing_key(signing.did_key())
            .handle(bad)
            .pds_endpoint("https://pds.example.com")
            .sign(&rotation)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidHandle { .. }), "{bad}: {err}");
    }
    let err = GenesisBuilder::new()
        .rotation_key(rotation.did_key())
        .signing_key(signing.did_key())
        .handle("alice")
        .pds_endpoint("https://pds.example.com")
        .sign(&rotation)
        .unwrap_err()
        .to_string();
    assert!(err.contains("full domain name"), "{err}");

    // The same mistake made by hand gets past the reference directory:
    // this is why the builder is the place that must catch it.
    let genesis = good_genesis(&rotation, &signing);
    let Some(mut body) = genesis.operation.normalized() else {
        unreachable!()
    };
    body.also_known_as = vec!["at://alice".into()];
    let op = UnsignedOperation::Plc(body).sign(&rotation).unwrap();
    let did = atp_did_plc::did_for_genesis(&op).unwrap();
    let reference = submit_to_reference(&did, &op.to_json_value());
    assert_eq!(reference["ok"], true, "{reference}");
    assure_valid_submission(&did, &[], &op, now()).unwrap();
}

/// Mistake 4: the signature covered the wrong bytes. The signed bytes are
/// the DAG-CBOR of the operation without `sig`: not JSON, not CBOR with
/// `sig: null`, not the operation without `prev`.
#[test]
fn signature_over_the_wrong_bytes_is_rejected() {
    let (rotation, signing) = keys();
    let genesis = good_genesis(&rotation, &signing);
    let unsigned = genesis.operation.unsigned.clone();
    let json_bytes = serde_json::to_vec(&unsigned).unwrap();
    let mut with_null_sig = serde_json::to_value(&unsigned).unwrap();
    with_null_sig["sig"] = Value::Null;
    let with_null_sig = atp_crypto::dagcbor::to_vec(&with_null_sig).unwrap();
    let signed_cbor = genesis.operation.to_cbor().unwrap();

    for (what, bytes) in [
        ("JSON text", json_bytes),
        ("DAG-CBOR with sig: null", with_null_sig),
        ("DAG-CBOR of the signed operation", signed_cbor),
    ] {
        let op = Operation {
            unsigned: unsigned.clone(),
            sig: encode_sig(&rotation.sign(&bytes)),
        };
        let did = atp_did_plc::did_for_genesis(&op).unwrap();
        let err = assure_valid_submission(&did, &[], &op, now()).unwrap_err();
        assert!(matches!(err, Error::InvalidSignature(_)), "{what}: {err}");
        assert!(err.to_string().starts_with("Invalid signature on op"));
        let reference = submit_to_reference(&did, &op.to_json_value());
        assert_eq!(
            reference["error"], "InvalidSignatureError",
            "{what}: {reference}"
        );
    }
    // The right bytes pass both.
    let reference = submit_to_reference(&genesis.did, &genesis.operation.to_json_value());
    assert_eq!(reference["ok"], true, "{reference}");
}
