//! Every case of the shared lexicon interop vectors: schema documents that
//! must parse or be refused, and record data that must validate or fail
//! against the fixture catalog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use atp_xrpc::lexicon::{LexiconDoc, Lexicons, ValidationStatus};
use serde_json::Value;

fn cases(file: &str) -> Vec<Value> {
    atp_test_vectors::interop_json(&format!("lexicon/{file}"))
        .as_array()
        .expect("fixture file is an array")
        .clone()
}

fn fixture_catalog() -> Lexicons {
    let dir = atp_test_vectors::interop_dir()
        .join("lexicon")
        .join("catalog");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut lexicons = Lexicons::new();
    for name in &names {
        let value = atp_test_vectors::interop_json(&format!("lexicon/catalog/{name}"));
        lexicons
            .add_json(&value)
            .unwrap_or_else(|e| panic!("catalog/{name} must parse: {e}"));
    }
    assert!(!names.is_empty());
    atp_test_vectors::report("lexicon/catalog/*.json", names.len());
    lexicons
}

#[test]
fn valid_lexicon_documents_parse() {
    let cases = cases("lexicon-valid.json");
    for case in &cases {
        if let Err(e) = LexiconDoc::from_json(&case["lexicon"]) {
            panic!("{}: should parse, got {e}", case["name"]);
        }
    }
    assert!(!cases.is_empty());
    atp_test_vectors::report("lexicon/lexicon-valid.json", cases.len());
}

#[test]
fn invalid_lexicon_documents_are_refused() {
    let cases = cases("lexicon-invalid.json");
    for case in &cases {
        if let Ok(doc) = LexiconDoc::from_json(&case["lexicon"]) {
            panic!("{}: should be refused, parsed as {doc:?}", case["name"]);
        }
    }
    assert!(!cases.is_empty());
    atp_test_vectors::report("lexicon/lexicon-invalid.json", cases.len());
}

#[test]
fn valid_record_data_validates() {
    let lexicons = fixture_catalog();
    let cases = cases("record-data-valid.json");
    for case in &cases {
        let data = &case["data"];
        let collection = data["$type"].as_str().unwrap();
        match lexicons.validate_record(collection, data) {
            Ok(ValidationStatus::Valid) => {}
            other => panic!("{}: expected valid, got {other:?}", case["name"]),
        }
        lexicons
            .validate_record_key(collection, case["rkey"].as_str().unwrap())
            .unwrap();
    }
    assert!(!cases.is_empty());
    atp_test_vectors::report("lexicon/record-data-valid.json", cases.len());
}

#[test]
fn invalid_record_data_fails() {
    let lexicons = fixture_catalog();
    let cases = cases("record-data-invalid.json");
    for case in &cases {
        let data = &case["data"];
        let collection = data["$type"].as_str().unwrap();
        match lexicons.validate_record(collection, data) {
            Err(e) => {
                // Every message names the path of the offending value.
                let message = e.to_string();
                assert!(message.starts_with("Record"), "{}: {message}", case["name"]);
            }
            Ok(status) => panic!("{}: expected an error, got {status:?}", case["name"]),
        }
    }
    assert!(!cases.is_empty());
    atp_test_vectors::report("lexicon/record-data-invalid.json", cases.len());
}
