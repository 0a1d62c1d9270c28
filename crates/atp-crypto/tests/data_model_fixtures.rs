//! The data-model fixtures of the interop test vectors: JSON to DAG-CBOR
//! bytes and CID, DAG-CBOR back to JSON, and the valid / invalid records.

#![allow(clippy::unwrap_used)] // tests may unwrap

use atp_crypto::{dagcbor, data_model, parse_cid};
use base64::Engine as _;

fn base64_no_pad(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap()
}

#[test]
fn fixtures_encode_to_exact_bytes_and_cids() {
    let file = "data-model/data-model-fixtures.json";
    let fixtures = atp_test_vectors::interop_json(file);
    let fixtures = fixtures.as_array().unwrap();
    for fixture in fixtures {
        let json = &fixture["json"];
        let expected_bytes = base64_no_pad(fixture["cbor_base64"].as_str().unwrap());
        let expected_cid = fixture["cid"].as_str().unwrap();

        let value = data_model::json_record_to_ipld(json).unwrap();
        let (cid, bytes) = dagcbor::cid_of_ipld(&value).unwrap();
        assert_eq!(bytes, expected_bytes, "bytes of {json}");
        assert_eq!(cid.to_string(), expected_cid, "CID of {json}");
        assert_eq!(cid, parse_cid(expected_cid).unwrap());

        // The serde path gives the same bytes as the Ipld path.
        assert_eq!(dagcbor::to_vec(&value).unwrap(), expected_bytes);

        // CBOR -> JSON round trip, through the strict decoder.
        let decoded = dagcbor::decode_ipld(&expected_bytes).unwrap();
        assert_eq!(decoded, value);
        assert_eq!(&data_model::ipld_to_json(&decoded).unwrap(), json);
        data_model::validate_ipld(&decoded).unwrap();
    }
    atp_test_vectors::report(file, fixtures.len());
}

#[test]
fn valid_records_are_accepted() {
    let file = "data-model/data-model-valid.json";
    let fixtures = atp_test_vectors::interop_json(file);
    let fixtures = fixtures.as_array().unwrap();
    for fixture in fixtures {
        let json = &fixture["json"];
        let value = data_model::json_record_to_ipld(json)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture["note"]));
        // Accepted values encode, decode strictly and validate again.
        let bytes = dagcbor::encode_ipld(&value).unwrap();
        let decoded = dagcbor::decode_ipld(&bytes).unwrap();
        assert_eq!(decoded, value);
        data_model::validate_ipld(&decoded).unwrap();
    }
    atp_test_vectors::report(file, fixtures.len());
}

#[test]
fn invalid_records_are_rejected() {
    let file = "data-model/data-model-invalid.json";
    let fixtures = atp_test_vectors::interop_json(file);
    let fixtures = fixtures.as_array().unwrap();
    for fixture in fixtures {
        let result = data_model::json_record_to_ipld(&fixture["json"]);
        assert!(
            result.is_err(),
            "{} was accepted: {:?}",
            fixture["note"],
            result
        );
    }
    atp_test_vectors::report(file, fixtures.len());
}
