#![no_main]
//! Strict DAG-CBOR decoding of arbitrary bytes: never panics, the checking
//! and the building decoders agree, and anything accepted re-encodes to
//! exactly the input (through both encoders).

use atp_crypto::dagcbor;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let checked = dagcbor::validate(data);
    match dagcbor::decode_ipld(data) {
        Ok(value) => {
            assert!(checked.is_ok(), "validate rejects what decode_ipld accepts");
            let encoded = dagcbor::encode_ipld(&value).expect("accepted value re-encodes");
            assert_eq!(encoded, data, "encode_ipld changed the bytes");
            let via_serde = dagcbor::to_vec(&value).expect("accepted value re-encodes");
            assert_eq!(via_serde, data, "to_vec changed the bytes");
            // Generic serde decoding of accepted bytes works too.
            let again: atp_crypto::Ipld = dagcbor::from_slice(data).expect("from_slice");
            assert_eq!(again, value);
            // The JSON form round-trips as long as the value has no map
            // that looks like a `$link`/`$bytes` object or a `$type`.
            let _ = atp_crypto::data_model::ipld_to_json(&value);
        }
        Err(_) => assert!(checked.is_err(), "validate accepts what decode_ipld rejects"),
    }
});
