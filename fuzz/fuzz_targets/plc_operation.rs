#![no_main]
//! Arbitrary bytes as a `did:plc` operation, in JSON and in DAG-CBOR.
//!
//! Nothing may panic; an operation that parses re-encodes to the same
//! DAG-CBOR bytes (and, from JSON, parses back to the same operation); and
//! every validation entry point returns a verdict without panicking.

use atp_did_plc::validate::{assert_valid_incoming_op, assure_valid_op, replay_audit_log};
use atp_did_plc::{
    assure_valid_next_op, did_for_genesis, validate_operation_log, IndexedOperation, Operation,
};

fn exercise(op: &Operation) {
    let Ok(cbor) = op.to_cbor() else { return };
    let again = Operation::from_cbor(&cbor).expect("our own encoding parses");
    assert_eq!(&again, op);
    assert_eq!(again.to_cbor().expect("re-encodes"), cbor);
    let from_json = Operation::from_json(&op.to_json()).expect("our own JSON parses");
    assert_eq!(&from_json, op);

    let _ = assert_valid_incoming_op(op);
    let _ = assure_valid_op(op);
    // The Unix epoch (chrono's default), without naming chrono here.
    let at = Default::default();
    let did = did_for_genesis(op).unwrap_or_else(|_| "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa".into());
    let _ = assure_valid_next_op(&did, &[], op, at);
    let _ = validate_operation_log(&did, std::slice::from_ref(op));
    if let Ok(indexed) = IndexedOperation::new(&did, op.clone(), at) {
        let _ = assure_valid_next_op(&did, std::slice::from_ref(&indexed), op, at);
        let _ = replay_audit_log(&did, &[indexed.clone(), indexed]);
    }
    let _ = validate_operation_log(&did, &[op.clone(), op.clone()]);
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(op) = Operation::from_cbor(data) {
        // Strict decoding: accepted bytes are exactly the canonical encoding.
        assert_eq!(op.to_cbor().expect("re-encodes"), data);
        exercise(&op);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(op) = Operation::from_json(text) {
            exercise(&op);
        }
    }
});
