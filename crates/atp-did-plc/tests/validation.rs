//! Log validation: the directory's limits, ordering, tombstones, the
//! recovery window, rate limits, audit replay, and a property test that
//! whatever the builders produce validates.
#![allow(clippy::unwrap_used, clippy::type_complexity)] // tests may unwrap

use std::collections::BTreeMap;

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::operation::{PlcOperation, Service};
use atp_did_plc::validate::{
    assert_valid_incoming_op, assure_valid_op, check_audit_log, enforce_ops_rate_limit,
    MAX_OP_BYTES,
};
use atp_did_plc::{
    assure_valid_next_op, assure_valid_submission, tombstone, validate_operation_log, Error,
    GenesisBuilder, IndexedOperation, Operation, UnsignedOperation, UpdateBuilder,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

fn did_key() -> String {
    SigningKey::generate(Algorithm::K256).did_key()
}

fn body_with(f: impl FnOnce(&mut PlcOperation)) -> (SigningKey, Operation) {
    let key = SigningKey::generate(Algorithm::K256);
    let mut vm = BTreeMap::new();
    vm.insert("atproto".to_string(), did_key());
    let mut services = BTreeMap::new();
    services.insert(
        "atproto_pds".to_string(),
        Service {
            service_type: "AtprotoPersonalDataServer".into(),
            endpoint: "https://pds.example.com".into(),
        },
    );
    let mut body = PlcOperation {
        rotation_keys: vec![key.did_key()],
        verification_methods: vm,
        also_known_as: vec!["at://alice.example.com".into()],
        services,
        prev: None,
    };
    f(&mut body);
    let op = UnsignedOperation::Plc(body).sign(&key).unwrap();
    (key, op)
}

fn incoming(f: impl FnOnce(&mut PlcOperation)) -> Result<(), Error> {
    let (_, op) = body_with(f);
    assert_valid_incoming_op(&op).and_then(|()| assure_valid_op(&op))
}

#[test]
fn the_directory_limits() {
    assert!(incoming(|_| {}).is_ok());
    let long = |n: usize| "a".repeat(n);
    let checks: Vec<(Box<dyn FnOnce(&mut PlcOperation)>, &str)> = vec![
        (
            Box::new(|b| b.also_known_as = (0..11).map(|i| format!("at://{i}.com")).collect()),
            "Too many alsoKnownAs entries (max 10)",
        ),
        (
            Box::new(move |b| b.also_known_as = vec![format!("at://{}", long(254))]),
            "alsoKnownAs entry too long (max 258)",
        ),
        (
            Box::new(|b| b.also_known_as = vec!["at://a.com".into(), "at://a.com".into()]),
            "duplicate alsoKnownAs entry: at://a.com",
        ),
        (
            Box::new(|b| b.rotation_keys.extend((0..10).map(|_| did_key()))),
            "Too many rotationKey entries (max 10)",
        ),
        (
            Box::new(|b| b.rotation_keys.extend((0..5).map(|_| did_key()))),
            "Improperly formatted operation, too many rotation keys",
        ),
        (
            Box::new(|b| b.rotation_keys.clear()),
            "Improperly formatted operation, need at least one rotation key",
        ),
        (
            Box::new(|b| b.rotation_keys.push("did:key:zNotAKey".into())),
            "Invalid rotationKey: did:key:zNotAKey",
        ),
        (
            Box::new(|b| {
                for i in 0..11 {
                    b.services
                        .insert(format!("s{i}"), b.services["atproto_pds"].clone());
                }
            }),
            "Too many service entries (max 10)",
        ),
        (
            Box::new(move |b| {
                b.services
                    .insert(long(33), b.services["atproto_pds"].clone());
            }),
            "Service id too long (max 32)",
        ),
        (
            Box::new(move |b| b.services.get_mut("atproto_pds").unwrap().service_type = long(257)),
            "Service type too long (max 256)",
        ),
        (
            Box::new(move |b| {
                b.services.get_mut("atproto_pds").unwrap().endpoint =
                    format!("https://{}", long(505))
            }),
            "Service endpoint too long (max 512)",
        ),
        (
            Box::new(|b| {
                for i in 0..10 {
                    b.verification_methods.insert(format!("k{i}"), did_key());
                }
            }),
            "Too many Verification Method entries (max 10)",
        ),
        (
            Box::new(move |b| {
                b.verification_methods.insert(long(33), did_key());
            }),
            "Verification Method id too long (max 32)",
        ),
        (
            Box::new(move |b| {
                b.verification_methods
                    .insert("x".into(), format!("did:key:z{}", long(250)));
            }),
            "Verification Method key too long (max 256)",
        ),
        (
            Box::new(|b| {
                b.verification_methods
                    .insert("x".into(), "did:key:z0OIl".into());
            }),
            "Invalid verificationMethod key: did:key:z0OIl",
        ),
        (
            Box::new(move |b| {
                for i in 0..10 {
                    b.services.insert(
                        format!("s{i}"),
                        Service {
                            service_type: "t".into(),
                            endpoint: format!("https://{}", long(500)),
                        },
                    );
                }
            }),
            "Operation too large (4000 bytes maximum in cbor encoding)",
        ),
    ];
    let n = checks.len();
    for (change, expected) in checks {
        let err = incoming(change).unwrap_err().to_string();
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
    }
    // Any syntactically valid did:key is a fine verification method (v0.2),
    // e.g. an ed25519 key.
    assert!(incoming(|b| {
        b.verification_methods.insert(
            "other".into(),
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
        );
    })
    .is_ok());
    assert_eq!(MAX_OP_BYTES, 4000);
    println!("limits: {n} cases");
}

fn chain() -> (Vec<SigningKey>, String, Vec<Operation>) {
    let keys: Vec<SigningKey> = (0..3)
        .map(|_| SigningKey::generate(Algorithm::K256))
        .collect();
    let g = GenesisBuilder::new()
        .rotation_key(keys[0].did_key())
        .rotation_key(keys[1].did_key())
        .rotation_key(keys[2].did_key())
        .signing_key(did_key())
        .handle("alice.example.com")
        .pds_endpoint("https://pds.example.com")
        .sign(&keys[0])
        .unwrap();
    let u1 = UpdateBuilder::from_last(&g.operation)
        .unwrap()
        .handle("a1.example.com")
        .unwrap()
        .sign(&keys[2])
        .unwrap();
    let u2 = UpdateBuilder::from_last(&u1)
        .unwrap()
        .handle("a2.example.com")
        .unwrap()
        .sign(&keys[2])
        .unwrap();
    (keys, g.did, vec![g.operation, u1, u2])
}

fn index(did: &str, ops: &[Operation]) -> Vec<IndexedOperation> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            IndexedOperation::new(did, op.clone(), t0() + Duration::hours(i as i64)).unwrap()
        })
        .collect()
}

#[test]
fn ordering_and_tombstones() {
    let (keys, did, ops) = chain();
    assert!(validate_operation_log(&did, &ops).unwrap().is_some());
    // Out of order.
    let swapped = vec![ops[0].clone(), ops[2].clone(), ops[1].clone()];
    assert!(matches!(
        validate_operation_log(&did, &swapped),
        Err(Error::Misordered)
    ));
    // Update as the first operation.
    assert!(validate_operation_log(&did, &ops[1..]).is_err());
    // A tombstone ends the log; nothing may follow it.
    let tomb = tombstone(&ops[2], &keys[1]).unwrap();
    let mut log = ops.clone();
    log.push(tomb.clone());
    assert_eq!(validate_operation_log(&did, &log).unwrap(), None);
    let after = UpdateBuilder::from_last(&ops[2])
        .unwrap()
        .sign(&keys[0])
        .unwrap();
    let mut bad = log.clone();
    bad.push(after);
    assert!(matches!(
        validate_operation_log(&did, &bad),
        Err(Error::Misordered)
    ));
    let indexed = index(&did, &log);
    let on_tomb = UnsignedOperation::Tombstone(atp_did_plc::operation::TombstoneOperation {
        prev: tomb.cid().unwrap().to_string(),
    })
    .sign(&keys[0])
    .unwrap();
    assert!(matches!(
        assure_valid_next_op(&did, &indexed, &on_tomb, t0() + Duration::hours(9)),
        Err(Error::Misordered)
    ));
    // A genesis operation for a DID that already has a log.
    assert!(matches!(
        assure_valid_next_op(&did, &indexed, &ops[0], t0() + Duration::hours(9)),
        Err(Error::Misordered)
    ));
    // Wrong DID for the genesis operation.
    let other = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    assert!(matches!(
        assure_valid_next_op(other, &[], &ops[0], t0()),
        Err(Error::GenesisHash { .. })
    ));
    assert!(matches!(
        assure_valid_next_op("did:plc:abc", &[], &ops[0], t0()),
        Err(Error::ImproperlyFormattedDid(_))
    ));
}

#[test]
fn recovery_window_is_72_hours_inclusive_and_needs_a_stronger_key() {
    let (keys, did, ops) = chain();
    let indexed = index(&did, &ops);
    // Fork from genesis, nullifying u1 (created at t0 + 1h) and u2.
    let fork = |k: &SigningKey| {
        UpdateBuilder::from_last(&ops[0])
            .unwrap()
            .handle("recovered.example.com")
            .unwrap()
            .sign(k)
            .unwrap()
    };
    let first_nullified = t0() + Duration::hours(1);
    let edge = first_nullified + Duration::hours(72);
    let ok = assure_valid_next_op(&did, &indexed, &fork(&keys[0]), edge).unwrap();
    assert_eq!(ok.nullified, vec![indexed[1].cid, indexed[2].cid]);
    assert_eq!(ok.prev, Some(indexed[0].cid));
    let late = assure_valid_next_op(
        &did,
        &indexed,
        &fork(&keys[0]),
        edge + Duration::milliseconds(1),
    )
    .unwrap_err();
    assert!(matches!(late, Error::LateRecovery { elapsed_ms } if elapsed_ms == 72 * 3_600_000 + 1));
    // keys[1] also outranks keys[2], which signed u1.
    assert!(assure_valid_next_op(&did, &indexed, &fork(&keys[1]), edge).is_ok());
    // The key that signed the nullified op cannot fork.
    assert!(matches!(
        assure_valid_next_op(&did, &indexed, &fork(&keys[2]), edge),
        Err(Error::InvalidSignature(_))
    ));
    // Nullified entries are ignored when deciding the next operation.
    let mut audit = indexed.clone();
    let recovery = fork(&keys[0]);
    audit[1].nullified = true;
    audit[2].nullified = true;
    audit.push(IndexedOperation::new(&did, recovery.clone(), edge).unwrap());
    let next = UpdateBuilder::from_last(&recovery)
        .unwrap()
        .sign(&keys[2])
        .unwrap();
    assert!(assure_valid_next_op(&did, &audit, &next, edge).is_ok());
    // Replaying the audit log finds the same nullified set.
    let replay = check_audit_log(&did, &audit).unwrap();
    assert_eq!(replay.nullified, vec![indexed[1].cid, indexed[2].cid]);
    assert_eq!(
        replay.document.unwrap().handle(),
        Some("recovered.example.com")
    );
    // A log whose flags disagree with the rules is reported.
    audit[1].nullified = false;
    assert!(check_audit_log(&did, &audit).is_err());
}

#[test]
fn audit_entries_round_trip_as_json() {
    let (_, did, ops) = chain();
    let indexed = index(&did, &ops);
    let text = serde_json::to_string(&indexed).unwrap();
    assert!(text.contains(r#""createdAt":"2024-01-01T00:00:00.000Z""#));
    let back: Vec<IndexedOperation> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, indexed);
}

#[test]
fn rate_limit_counts_recent_operations() {
    let (_, did, ops) = chain();
    let now = t0() + Duration::days(30);
    let recent: Vec<IndexedOperation> = (0..10)
        .map(|i| IndexedOperation::new(&did, ops[0].clone(), now - Duration::minutes(i)).unwrap())
        .collect();
    assert!(enforce_ops_rate_limit(&recent[..9], now).is_ok());
    let err = enforce_ops_rate_limit(&recent, now).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Too many operations within last hour (max 10)"
    );
    let old: Vec<IndexedOperation> = (0..200)
        .map(|i| IndexedOperation::new(&did, ops[0].clone(), t0() - Duration::hours(i)).unwrap())
        .collect();
    assert!(enforce_ops_rate_limit(&old, now).is_ok());
}

#[derive(Clone, Debug)]
enum Step {
    Handle(u8),
    Pds(u8),
    SigningKey,
    AddRotation(usize),
    RemoveRotation(usize),
    Tombstone,
}

fn step() -> impl Strategy<Value = (Step, usize)> {
    let s = prop_oneof![
        any::<u8>().prop_map(Step::Handle),
        any::<u8>().prop_map(Step::Pds),
        Just(Step::SigningKey),
        (0usize..6).prop_map(Step::AddRotation),
        (0usize..6).prop_map(Step::RemoveRotation),
        Just(Step::Tombstone),
    ];
    (s, 0usize..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever sequence of builder calls succeeds, the result is accepted
    /// operation by operation and as a whole log.
    #[test]
    fn builders_always_produce_valid_logs(steps in proptest::collection::vec(step(), 1..8)) {
        let mut pool: Vec<SigningKey> = (0..3).map(|i| SigningKey::generate(if i % 2 == 0 { Algorithm::K256 } else { Algorithm::P256 })).collect();
        let g = GenesisBuilder::new()
            .rotation_key(pool[0].did_key())
            .rotation_key(pool[1].did_key())
            .signing_key(pool[2].did_key())
            .handle("start.example.com")
            .pds_endpoint("https://pds.example.com")
            .sign(&pool[1])
            .unwrap();
        let did = g.did.clone();
        let mut log = vec![IndexedOperation::new(&did, g.operation.clone(), t0()).unwrap()];
        for (i, (s, signer)) in steps.into_iter().enumerate() {
            let last = log.last().unwrap().operation.clone();
            if last.is_tombstone() { break; }
            let signer_key = pool[signer % pool.len()].clone();
            let built = match s {
                Step::Tombstone => tombstone(&last, &signer_key),
                other => {
                    let b = UpdateBuilder::from_last(&last).unwrap();
                    let b = match other {
                        Step::Handle(n) => b.handle(&format!("h{n}.example.com")).unwrap(),
                        Step::Pds(n) => b.pds_endpoint(&format!("https://pds{n}.example.com")).unwrap(),
                        Step::SigningKey => b.signing_key(did_key()),
                        Step::AddRotation(p) => {
                            let k = SigningKey::generate(Algorithm::P256);
                            let b = b.add_rotation_key(k.did_key(), p);
                            pool.push(k);
                            b
                        }
                        Step::RemoveRotation(p) => {
                            let keys = b.body().rotation_keys.clone();
                            let victim = keys[p % keys.len()].clone();
                            b.remove_rotation_key(&victim)
                        }
                        Step::Tombstone => unreachable!(),
                    };
                    b.sign(&signer_key)
                }
            };
            // Builders refuse what the directory would refuse; otherwise the
            // directory's checks accept the operation.
            let Ok(op) = built else { continue };
            let at = t0() + Duration::minutes(i as i64 + 1);
            let next = assure_valid_submission(&did, &log, &op, at);
            prop_assert!(next.is_ok(), "{:?}", next);
            prop_assert!(next.unwrap().nullified.is_empty());
            log.push(IndexedOperation::new(&did, op, at).unwrap());
        }
        let ops: Vec<Operation> = log.iter().map(|e| e.operation.clone()).collect();
        let data = validate_operation_log(&did, &ops);
        prop_assert!(data.is_ok(), "{:?}", data);
        prop_assert_eq!(data.unwrap().is_none(), ops.last().unwrap().is_tombstone());
        prop_assert!(check_audit_log(&did, &log).is_ok());
    }
}
