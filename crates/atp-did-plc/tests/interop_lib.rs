//! Cross-implementation checks against the reference library
//! (`@did-plc/lib` 0.0.4 and `@atproto/crypto`, through
//! `tests/interop/plc-lib.mjs`).
#![allow(clippy::unwrap_used, clippy::type_complexity)] // tests may unwrap

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::signing::{decode_sig, encode_sig};
use atp_did_plc::validate::{assure_valid_submission, check_audit_log};
use atp_did_plc::{
    tombstone, validate_operation_log, Error, GenesisBuilder, IndexedOperation, Operation,
    UpdateBuilder,
};
use atp_test_vectors::{hex_decode, hex_encode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

fn node(cases: Vec<Value>) -> Vec<Value> {
    let out = atp_test_vectors::run_node("plc-lib.mjs", &json!({ "cases": cases }));
    out.as_array().expect("an array of results").clone()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The reference error class our error corresponds to.
fn reference_class(e: &Error) -> &'static str {
    match e {
        Error::InvalidOperation(_) => "NotAValidOperation",
        Error::InvalidSignature(_) => "InvalidSignatureError",
        Error::Misordered => "MisorderedOperationError",
        Error::ImproperOperation(_) => "ImproperOperationError",
        Error::GenesisHash { .. } => "GenesisHashError",
        Error::LateRecovery { .. } => "LateRecoveryError",
        Error::UnsupportedKey { .. } => "UnsupportedKeyError",
        Error::ImproperlyFormattedDid(_) => "ImproperlyFormattedDidError",
        other => panic!("no reference counterpart for {other:?}"),
    }
}

/// A log of operations in force with arrival times, as both sides see it.
struct Log {
    did: String,
    entries: Vec<(Operation, DateTime<Utc>)>,
}

impl Log {
    fn indexed(&self) -> Vec<IndexedOperation> {
        self.entries
            .iter()
            .map(|(op, at)| IndexedOperation::new(&self.did, op.clone(), *at).unwrap())
            .collect()
    }
    fn node_log(&self) -> Value {
        Value::Array(
            self.entries
                .iter()
                .map(|(op, at)| json!({"operation": op.to_json(), "createdAt": iso(*at)}))
                .collect(),
        )
    }
    fn submit_case(&self, did: &str, proposed: &Value, now: DateTime<Utc>) -> Value {
        json!({"cmd": "submit", "did": did, "log": self.node_log(), "proposed": proposed, "now": iso(now)})
    }
}

#[test]
fn rust_built_operations_pass_the_reference() {
    let r1 = SigningKey::generate(Algorithm::K256);
    let r2 = SigningKey::generate(Algorithm::P256);
    let atproto = SigningKey::generate(Algorithm::K256);
    let genesis = GenesisBuilder::new()
        .rotation_key(r1.did_key())
        .rotation_key(r2.did_key())
        .signing_key(atproto.did_key())
        .handle("alice.example.com")
        .pds_endpoint("https://pds.example.com")
        .sign(&r2)
        .unwrap();

    let mut ops = vec![genesis.operation.clone()];
    let steps: Vec<Box<dyn Fn(&Operation) -> Operation>> = vec![
        Box::new(|last| {
            UpdateBuilder::from_last(last)
                .unwrap()
                .handle("alice2.example.com")
                .unwrap()
                .sign(&r1)
                .unwrap()
        }),
        Box::new(|last| {
            UpdateBuilder::from_last(last)
                .unwrap()
                .pds_endpoint("https://pds2.example.com")
                .unwrap()
                .sign(&r2)
                .unwrap()
        }),
        Box::new(|last| {
            UpdateBuilder::from_last(last)
                .unwrap()
                .signing_key(SigningKey::generate(Algorithm::P256).did_key())
                .sign(&r1)
                .unwrap()
        }),
        Box::new(|last| {
            UpdateBuilder::from_last(last)
                .unwrap()
                .add_rotation_key(SigningKey::generate(Algorithm::K256).did_key(), 0)
                .remove_rotation_key(&r2.did_key())
                .sign(&r2)
                .unwrap()
        }),
    ];
    for step in &steps {
        let next = step(ops.last().unwrap());
        ops.push(next);
    }

    let mut log = Log {
        did: genesis.did.clone(),
        entries: vec![],
    };
    let mut cases = Vec::new();
    let mut submits = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let at = t0() + Duration::hours(i as i64);
        cases.push(json!({"cmd": "inspect", "op": op.to_json_value()}));
        submits.push(cases.len());
        cases.push(log.submit_case(&genesis.did, &json!(op.to_json()), at));
        // Ours agrees before the op joins the log.
        let ours = assure_valid_submission(&genesis.did, &log.indexed(), op, at).unwrap();
        assert!(ours.nullified.is_empty());
        log.entries.push((op.clone(), at));
    }
    let values: Vec<String> = ops.iter().map(Operation::to_json).collect();
    cases.push(json!({"cmd": "validate", "did": genesis.did, "ops": values}));
    let results = node(cases);

    for (i, op) in ops.iter().enumerate() {
        let inspected = &results[2 * i];
        assert_eq!(
            inspected["cborHex"],
            hex_encode(&op.to_cbor().unwrap()),
            "DAG-CBOR bytes of op {i}"
        );
        assert_eq!(
            inspected["cid"],
            op.cid().unwrap().to_string(),
            "CID of op {i}"
        );
        let submitted = &results[2 * i + 1];
        assert_eq!(
            submitted["ok"], true,
            "reference refused op {i}: {submitted}"
        );
        let expected_prev = if i == 0 {
            Value::Null
        } else {
            Value::String(ops[i - 1].cid().unwrap().to_string())
        };
        assert_eq!(submitted["prev"], expected_prev);
    }
    assert_eq!(
        results[0]["did"], genesis.did,
        "the reference derives the same DID"
    );

    let validated = results.last().unwrap();
    assert_eq!(validated["ok"], true, "{validated}");
    let ours = validate_operation_log(&genesis.did, &ops).unwrap().unwrap();
    assert_eq!(
        validated["dataJson"].as_str().unwrap(),
        ours.to_json(),
        "/data JSON is byte-identical"
    );
    atp_test_vectors::report("reference: @did-plc/lib accepts Rust-built ops", ops.len());

    // A tombstone built in Rust ends the log for both.
    let tomb = tombstone(ops.last().unwrap(), &r1).unwrap();
    let mut with_tomb = ops.clone();
    with_tomb.push(tomb.clone());
    let values: Vec<String> = with_tomb.iter().map(Operation::to_json).collect();
    let res = node(vec![
        log.submit_case(
            &genesis.did,
            &tomb.to_json_value(),
            t0() + Duration::hours(10),
        ),
        json!({"cmd": "validate", "did": genesis.did, "ops": values}),
    ]);
    assert_eq!(res[0]["ok"], true, "{}", res[0]);
    assert_eq!(res[1]["data"], Value::Null);
    assert_eq!(
        validate_operation_log(&genesis.did, &with_tomb).unwrap(),
        None
    );
}

#[test]
fn rust_built_recovery_nullifies_the_same_operations() {
    let high = SigningKey::generate(Algorithm::P256);
    let low = SigningKey::generate(Algorithm::K256);
    let attacker = SigningKey::generate(Algorithm::K256);
    let genesis = GenesisBuilder::new()
        .rotation_key(high.did_key())
        .rotation_key(low.did_key())
        .signing_key(low.did_key())
        .handle("victim.example.com")
        .pds_endpoint("https://pds.example.com")
        .sign(&high)
        .unwrap();
    let hijack = UpdateBuilder::from_last(&genesis.operation)
        .unwrap()
        .rotation_keys(vec![attacker.did_key()])
        .sign(&low)
        .unwrap();
    let more = UpdateBuilder::from_last(&hijack)
        .unwrap()
        .handle("mallory.example.com")
        .unwrap()
        .sign(&attacker)
        .unwrap();
    let log = Log {
        did: genesis.did.clone(),
        entries: vec![
            (genesis.operation.clone(), t0()),
            (hijack.clone(), t0() + Duration::hours(1)),
            (more.clone(), t0() + Duration::hours(2)),
        ],
    };
    let recovery = UpdateBuilder::from_last(&genesis.operation)
        .unwrap()
        .pds_endpoint("https://safe.example.com")
        .unwrap()
        .sign(&high)
        .unwrap();
    // A fork signed by the same (low) key that signed the hijack is refused.
    let low_fork = UpdateBuilder::from_last(&genesis.operation)
        .unwrap()
        .handle("victim2.example.com")
        .unwrap()
        .sign(&low)
        .unwrap();

    let in_window = t0() + Duration::hours(60);
    let too_late = t0() + Duration::hours(80);
    let results = node(vec![
        log.submit_case(&genesis.did, &recovery.to_json_value(), in_window),
        log.submit_case(&genesis.did, &recovery.to_json_value(), too_late),
        log.submit_case(&genesis.did, &low_fork.to_json_value(), in_window),
    ]);

    let ours = assure_valid_submission(&genesis.did, &log.indexed(), &recovery, in_window).unwrap();
    let ours_nullified: Vec<String> = ours.nullified.iter().map(|c| c.to_string()).collect();
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[0]["nullified"], json!(ours_nullified));
    assert_eq!(ours_nullified.len(), 2);

    let late =
        assure_valid_submission(&genesis.did, &log.indexed(), &recovery, too_late).unwrap_err();
    assert_eq!(results[1]["error"], reference_class(&late));
    assert_eq!(
        results[1]["message"],
        late.to_string(),
        "same message, same elapsed ms"
    );

    let refused =
        assure_valid_submission(&genesis.did, &log.indexed(), &low_fork, in_window).unwrap_err();
    assert_eq!(results[2]["error"], reference_class(&refused));
    atp_test_vectors::report("reference: recovery window and key priority", 3);
}

#[test]
fn reference_logs_validate_in_rust() {
    let results = node(vec![json!({"cmd": "scenarios"})]);
    let scenarios = results[0].as_array().unwrap();
    for scenario in scenarios {
        let name = scenario["name"].as_str().unwrap();
        let did = scenario["did"].as_str().unwrap();
        let entries: Vec<IndexedOperation> =
            serde_json::from_value(scenario["audit"].clone()).unwrap();
        // Our replay marks exactly the operations the reference nullified.
        let replay = check_audit_log(did, &entries).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expect = &scenario["expect"];
        assert_eq!(expect["ok"], true, "{name}: {expect}");
        match &replay.document {
            Some(doc) => assert_eq!(
                expect["dataJson"].as_str().unwrap(),
                doc.to_json(),
                "{name}"
            ),
            None => assert_eq!(expect["data"], Value::Null, "{name}"),
        }
        // Each entry's JSON round-trips to the same value and CID.
        for entry in &entries {
            assert_eq!(entry.operation.cid().unwrap(), entry.cid);
        }
        if let Some(late) = scenario.get("late") {
            let op = Operation::from_json_value(&late["operation"]).unwrap();
            let at = DateTime::parse_from_rfc3339(late["createdAt"].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc);
            let err = atp_did_plc::assure_valid_next_op(did, &entries, &op, at).unwrap_err();
            assert_eq!(late["result"]["error"], reference_class(&err), "{name}");
            assert_eq!(late["result"]["message"], err.to_string(), "{name}");
        }
    }
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"recovery") && names.contains(&"tombstone"));
    atp_test_vectors::report(
        "reference: audit logs made by @did-plc/lib",
        scenarios.len(),
    );
}

const SECP256K1_N: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

/// Turns a low-S signature into the equivalent high-S one (s := n - s).
fn to_high_s(sig: &[u8], order_hex: &str) -> Vec<u8> {
    let n = hex_decode(order_hex);
    let mut out = sig.to_vec();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = n[i] as i16 - sig[32 + i] as i16 - borrow;
        borrow = i16::from(d < 0);
        out[32 + i] = d.rem_euclid(256) as u8;
    }
    out
}

fn with_sig(op: &Operation, sig: &[u8]) -> Operation {
    Operation {
        unsigned: op.unsigned.clone(),
        sig: encode_sig(sig),
    }
}

#[test]
fn invalid_operations_get_the_same_verdict() {
    let k = SigningKey::generate(Algorithm::K256);
    let other = SigningKey::generate(Algorithm::K256);
    let genesis = GenesisBuilder::new()
        .rotation_key(k.did_key())
        .signing_key(k.did_key())
        .handle("alice.example.com")
        .pds_endpoint("https://pds.example.com")
        .sign(&k)
        .unwrap();
    let g = &genesis.operation;
    let empty = Log {
        did: genesis.did.clone(),
        entries: vec![],
    };
    let one = Log {
        did: genesis.did.clone(),
        entries: vec![(g.clone(), t0())],
    };
    let update = UpdateBuilder::from_last(g)
        .unwrap()
        .handle("alice2.example.com")
        .unwrap()
        .sign(&k)
        .unwrap();

    let sig = decode_sig(&update.sig).unwrap();
    let mut flipped = sig.clone();
    flipped[10] ^= 1;
    let bad_sig = with_sig(&update, &flipped);
    let high_s = with_sig(&update, &to_high_s(&sig, SECP256K1_N));
    let mut wrong_prev = update.clone();
    if let atp_did_plc::UnsignedOperation::Plc(body) = &mut wrong_prev.unsigned {
        body.prev = Some(update.cid().unwrap().to_string());
    }
    let wrong_prev = wrong_prev.unsigned.sign(&k).unwrap();
    let by_stranger = UpdateBuilder::from_last(g).unwrap().body().clone();
    let by_stranger = atp_did_plc::UnsignedOperation::Plc(by_stranger)
        .sign(&other)
        .unwrap();
    let mut six_keys = UpdateBuilder::from_last(g).unwrap();
    for _ in 0..5 {
        six_keys = six_keys.add_rotation_key(SigningKey::generate(Algorithm::K256).did_key(), 9);
    }
    let six_keys = atp_did_plc::UnsignedOperation::Plc(six_keys.body().clone())
        .sign(&k)
        .unwrap();
    let mut missing_prev = g.to_json_value();
    missing_prev.as_object_mut().unwrap().remove("prev");
    let upper_did = genesis
        .did
        .to_uppercase()
        .replacen("DID:PLC:", "did:plc:", 1);

    let now = t0() + Duration::hours(1);
    let cases: Vec<(&str, &Log, String, Value)> = vec![
        (
            "bad signature",
            &one,
            genesis.did.clone(),
            bad_sig.to_json_value(),
        ),
        (
            "high-S signature",
            &one,
            genesis.did.clone(),
            high_s.to_json_value(),
        ),
        (
            "wrong prev",
            &one,
            genesis.did.clone(),
            wrong_prev.to_json_value(),
        ),
        (
            "signed by a non-rotation key",
            &one,
            genesis.did.clone(),
            by_stranger.to_json_value(),
        ),
        (
            "six rotation keys",
            &one,
            genesis.did.clone(),
            six_keys.to_json_value(),
        ),
        (
            "genesis without prev",
            &empty,
            genesis.did.clone(),
            missing_prev,
        ),
        ("upper-case DID", &empty, upper_did, g.to_json_value()),
        (
            "second genesis",
            &one,
            genesis.did.clone(),
            g.to_json_value(),
        ),
    ];
    let results = node(
        cases
            .iter()
            .map(|(_, log, did, op)| log.submit_case(did, op, now))
            .collect(),
    );
    for ((name, log, did, op), reference) in cases.iter().zip(&results) {
        assert_eq!(reference["ok"], false, "{name}: the reference accepted it");
        let ours = Operation::from_json_value(op)
            .and_then(|op| assure_valid_submission(did, &log.indexed(), &op, now))
            .expect_err(name);
        assert_eq!(
            reference["error"],
            reference_class(&ours),
            "{name}: reference said {}, we said {ours}",
            reference["message"]
        );
        let ours_text = ours.to_string();
        let theirs = reference["message"].as_str().unwrap();
        let head = |s: &str| s.split(": ").next().unwrap_or_default().to_owned();
        assert_eq!(head(theirs), head(&ours_text), "{name}: messages differ");
    }
    atp_test_vectors::report("reference: invalid operations rejected alike", cases.len());
}

#[test]
fn high_s_is_rejected_by_current_atproto_crypto_for_both_curves() {
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for (alg, order) in [(Algorithm::K256, SECP256K1_N), (Algorithm::P256, P256_N)] {
        let key = SigningKey::generate(alg);
        let msg = b"did:plc high-S check".to_vec();
        let sig = key.sign(&msg);
        for s in [sig.to_vec(), to_high_s(&sig, order)] {
            cases.push(json!({"cmd": "verify", "didKey": key.did_key(), "dataHex": hex_encode(&msg), "sigB64url": encode_sig(&s)}));
            let op_ok = atp_crypto::PublicKey::from_did_key(&key.did_key())
                .unwrap()
                .verify(&msg, &s)
                .is_ok();
            ours.push(op_ok);
        }
    }
    let results = node(cases);
    let theirs: Vec<bool> = results
        .iter()
        .map(|r| r["valid"].as_bool().unwrap())
        .collect();
    assert_eq!(theirs, vec![true, false, true, false]);
    assert_eq!(ours, theirs);
    atp_test_vectors::report("reference: @atproto/crypto verifySignature low/high-S", 4);
}

#[test]
fn document_agrees_with_the_reference_where_formats_coincide() {
    let k = SigningKey::generate(Algorithm::K256);
    let p = SigningKey::generate(Algorithm::P256);
    let genesis = GenesisBuilder::new()
        .rotation_key(p.did_key())
        .signing_key(k.did_key())
        .handle("alice.example.com")
        .pds_endpoint("https://pds.example.com")
        .also_known_as("https://alice.example.com")
        .sign(&p)
        .unwrap();
    let data = validate_operation_log(&genesis.did, &[genesis.operation])
        .unwrap()
        .unwrap();
    let data_value: Value = serde_json::from_str(&data.to_json()).unwrap();
    let results = node(vec![json!({"cmd": "doc", "data": data_value})]);
    let theirs = &results[0]["doc"];
    let ours: Value = serde_json::from_str(&data.to_document().to_json()).unwrap();
    // @did-plc/lib 0.0.4 predates the Multikey form: id, alsoKnownAs,
    // services and controllers are the same; verification method ids gained
    // the DID in front, and the key type became Multikey.
    assert_eq!(ours["id"], theirs["id"]);
    assert_eq!(ours["alsoKnownAs"], theirs["alsoKnownAs"]);
    assert_eq!(ours["service"], theirs["service"]);
    assert_eq!(ours["@context"][0], theirs["@context"][0]);
    assert_eq!(
        ours["@context"][2], theirs["@context"][1],
        "the suite context of the key type"
    );
    let (ov, tv) = (
        &ours["verificationMethod"][0],
        &theirs["verificationMethod"][0],
    );
    assert_eq!(ov["controller"], tv["controller"]);
    assert_eq!(
        ov["id"].as_str().unwrap(),
        format!("{}{}", genesis.did, tv["id"].as_str().unwrap())
    );
    atp_test_vectors::report("reference: formatDidDoc shared fields", 1);
}
