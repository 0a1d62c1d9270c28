//! Canonical encoding, strict decoding and CIDs.
//!
//! The byte strings below are written by hand from the CBOR (RFC 8949) and
//! DAG-CBOR rules; known-good encodings come from the protocol notes and the
//! interop fixtures.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::{BTreeMap, HashMap};

use atp_crypto::cids::{cid_for_dag_cbor, cid_for_raw, is_blessed, DAG_CBOR, RAW};
use atp_crypto::dagcbor::{self, MAX_DEPTH};
use atp_crypto::{parse_cid, Error, Ipld};

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

#[track_caller]
fn assert_non_canonical(bytes: &str) {
    match dagcbor::decode_ipld(&hex(bytes)) {
        Err(Error::NonCanonical(_)) => {}
        other => panic!("{bytes}: expected NonCanonical, got {other:?}"),
    }
    assert!(dagcbor::validate(&hex(bytes)).is_err());
}

#[track_caller]
fn assert_decode_error(bytes: &str) {
    match dagcbor::decode_ipld(&hex(bytes)) {
        Err(Error::Decode(_)) => {}
        other => panic!("{bytes}: expected Decode, got {other:?}"),
    }
}

#[track_caller]
fn assert_data_model_error(bytes: &str) {
    match dagcbor::decode_ipld(&hex(bytes)) {
        Err(Error::DataModel(_)) => {}
        other => panic!("{bytes}: expected DataModel, got {other:?}"),
    }
}

#[track_caller]
fn assert_invalid_cid(bytes: &str) {
    match dagcbor::decode_ipld(&hex(bytes)) {
        Err(Error::InvalidCid(_)) => {}
        other => panic!("{bytes}: expected InvalidCid, got {other:?}"),
    }
}

const EMPTY_NODE_CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

#[test]
fn empty_mst_node_matches_the_protocol_notes() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Node {
        l: Option<String>,
        e: Vec<u8>,
    }
    let node = Node { l: None, e: vec![] };
    let (cid, bytes) = dagcbor::cid_of(&node).unwrap();
    assert_eq!(bytes, hex("a2 61 65 80 61 6c f6"));
    assert_eq!(cid.to_string(), EMPTY_NODE_CID);
    assert_eq!(dagcbor::from_slice::<Node>(&bytes).unwrap(), node);
}

#[test]
fn struct_fields_are_written_in_canonical_order() {
    #[derive(serde::Serialize)]
    struct Declared {
        longest: u8,
        b: u8,
        mid: u8,
        a: u8,
    }
    let bytes = dagcbor::to_vec(&Declared {
        longest: 1,
        b: 2,
        mid: 3,
        a: 4,
    })
    .unwrap();
    // a, b (length 1), mid (3), longest (7).
    assert_eq!(
        bytes,
        hex("a4 6161 04 6162 02 636d6964 03 676c6f6e67657374 01")
    );
    // The Ipld encoder (independent code path) agrees.
    let value = dagcbor::decode_ipld(&bytes).unwrap();
    assert_eq!(dagcbor::encode_ipld(&value).unwrap(), bytes);
}

#[test]
fn integers_round_trip_at_every_boundary() {
    let cases: &[(i64, &str)] = &[
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (255, "18ff"),
        (256, "190100"),
        (65_535, "19ffff"),
        (65_536, "1a00010000"),
        (4_294_967_295, "1affffffff"),
        (4_294_967_296, "1b0000000100000000"),
        (i64::MAX, "1b7fffffffffffffff"),
        (-1, "20"),
        (-24, "37"),
        (-25, "3818"),
        (-256, "38ff"),
        (-257, "390100"),
        (i64::MIN, "3b7fffffffffffffff"),
    ];
    for &(n, expected) in cases {
        let bytes = dagcbor::to_vec(&n).unwrap();
        assert_eq!(bytes, hex(expected), "{n}");
        assert_eq!(
            dagcbor::encode_ipld(&Ipld::Integer(n.into())).unwrap(),
            bytes
        );
        assert_eq!(dagcbor::from_slice::<i64>(&bytes).unwrap(), n);
        assert_eq!(
            dagcbor::decode_ipld(&bytes).unwrap(),
            Ipld::Integer(n.into())
        );
    }
}

#[test]
fn rejects_non_canonical_map_key_order() {
    // {"b": 1, "a": 2}
    assert_non_canonical("a2 6162 01 6161 02");
    // {"aa": 1, "b": 2}: shorter keys first, even if bytewise larger.
    assert_non_canonical("a2 626161 01 6162 02");
}

#[test]
fn rejects_duplicate_keys() {
    assert_decode_error("a2 6161 01 6161 02");
}

#[test]
fn rejects_non_string_map_keys() {
    assert_decode_error("a1 01 02");
    assert_decode_error("a1 4161 02");
}

#[test]
fn rejects_indefinite_lengths() {
    assert_non_canonical("bf 6161 01 ff");
    assert_non_canonical("9f ff");
    assert_non_canonical("7f 6161 ff");
    assert_non_canonical("5f 4101 ff");
}

#[test]
fn rejects_non_minimal_integers_and_lengths() {
    assert_non_canonical("18 05");
    assert_non_canonical("19 00ff");
    assert_non_canonical("1a 0000ffff");
    assert_non_canonical("1b 00000000ffffffff");
    assert_non_canonical("38 00");
    assert_non_canonical("78 01 61");
    assert_non_canonical("58 00");
    assert_non_canonical("98 00");
    assert_non_canonical("b8 00");
    // Inside a map value.
    assert_non_canonical("a1 6161 1801");
}

#[test]
fn rejects_floats() {
    assert_data_model_error("f9 3c00");
    assert_data_model_error("fa 3f800000");
    assert_data_model_error("fb 3ff0000000000000");
    assert!(matches!(dagcbor::to_vec(&1.5f64), Err(Error::DataModel(_))));
    assert!(matches!(
        dagcbor::encode_ipld(&Ipld::Float(1.0)),
        Err(Error::DataModel(_))
    ));
}

#[test]
fn rejects_integers_beyond_64_bit_signed() {
    assert_data_model_error("1b ffffffffffffffff");
    assert_data_model_error("1b 8000000000000000");
    assert_data_model_error("3b 8000000000000000");
    assert!(dagcbor::to_vec(&u64::MAX).is_err());
    assert!(dagcbor::encode_ipld(&Ipld::Integer(i128::from(i64::MAX) + 1)).is_err());
}

#[test]
fn rejects_other_tags_and_simple_values() {
    assert_decode_error("c0 60");
    assert_decode_error("d8 2b 40");
    assert_decode_error("f7");
    assert_decode_error("f0");
    assert_decode_error("f8 20");
    assert_decode_error("ff");
    assert_decode_error("1c");
}

#[test]
fn rejects_invalid_cids() {
    let cid = cid_for_dag_cbor(b"x").to_bytes();
    let good = format!("d82a 5825 00{}", hex::encode(&cid));
    assert_eq!(
        dagcbor::decode_ipld(&hex(&good)).unwrap(),
        Ipld::Link(cid_for_dag_cbor(b"x"))
    );
    // Missing 0x00 prefix.
    assert_invalid_cid(&format!("d82a 5824 {}", hex::encode(&cid)));
    // Prefix only.
    assert_invalid_cid("d82a 41 00");
    // Trailing byte after the CID.
    assert_invalid_cid(&format!("d82a 5826 00{}ff", hex::encode(&cid)));
    // Truncated digest.
    assert_invalid_cid(&format!("d82a 5824 00{}", hex::encode(&cid[..35])));
    // Tag 42 around a text string.
    assert_invalid_cid("d82a 6161");
    // Unknown CID version 2.
    assert_invalid_cid(&format!("d82a 5825 0002{}", hex::encode(&cid[1..])));
}

#[test]
fn rejects_trailing_and_missing_bytes() {
    assert_decode_error("f6 f6");
    assert_decode_error("");
    assert_decode_error("62 61");
    assert_decode_error("a1 6161");
    assert_decode_error("19 01");
}

#[test]
fn rejects_invalid_utf8() {
    assert_decode_error("62 fffe");
    assert_decode_error("a1 62c328 01");
}

#[test]
fn lying_length_prefixes_do_not_allocate() {
    assert_decode_error("9b ffffffffffffffff");
    assert_decode_error("bb ffffffffffffffff");
    assert_decode_error("5b ffffffffffffffff");
    assert_decode_error("7b ffffffffffffffff");
    assert_decode_error("9a ffffffff 00");
}

#[test]
fn nesting_is_bounded_without_stack_overflow() {
    let mut ok = vec![0x81u8; MAX_DEPTH - 1];
    ok.push(0xf6);
    assert!(dagcbor::decode_ipld(&ok).is_ok());

    // Every entry point agrees at the limit, for lists and for maps
    // (a regression found by fuzzing: the serde decoder used to give up
    // earlier than the strict checker).
    let mut deepest_list = vec![0x81u8; MAX_DEPTH];
    deepest_list.push(0xf6);
    let mut deepest_map: Vec<u8> = std::iter::repeat([0xa1, 0x60])
        .take(MAX_DEPTH)
        .flatten()
        .collect();
    deepest_map.push(0xf6);
    for bytes in [&deepest_list, &deepest_map] {
        let value = dagcbor::decode_ipld(bytes).unwrap();
        assert!(dagcbor::validate(bytes).is_ok());
        assert_eq!(dagcbor::from_slice::<Ipld>(bytes).unwrap(), value);
        assert_eq!(&dagcbor::encode_ipld(&value).unwrap(), bytes);
        assert_eq!(&dagcbor::to_vec(&value).unwrap(), bytes);
    }
    let mut deep = vec![0x81u8; MAX_DEPTH + 1];
    deep.push(0xf6);
    assert!(matches!(dagcbor::decode_ipld(&deep), Err(Error::Decode(_))));
    let huge = vec![0x81u8; 1_000_000];
    assert!(dagcbor::decode_ipld(&huge).is_err());
    let huge_maps: Vec<u8> = std::iter::repeat([0xa1, 0x60])
        .take(500_000)
        .flatten()
        .collect();
    assert!(dagcbor::decode_ipld(&huge_maps).is_err());

    // Encoding is bounded too.
    let mut value = Ipld::Null;
    for _ in 0..MAX_DEPTH + 1 {
        value = Ipld::List(vec![value]);
    }
    assert!(matches!(
        dagcbor::encode_ipld(&value),
        Err(Error::Encode(_))
    ));
}

#[test]
fn to_vec_rejects_values_outside_the_data_model() {
    let mut map = HashMap::new();
    map.insert(1u32, 2u32);
    assert!(matches!(dagcbor::to_vec(&map), Err(Error::Encode(_))));
}

#[test]
fn from_slice_is_strict_and_checks_the_shape() {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Pair {
        a: i64,
        b: i64,
    }
    assert!(dagcbor::from_slice::<Pair>(&hex("a2 6161 01 6162 02")).is_ok());
    assert!(matches!(
        dagcbor::from_slice::<Pair>(&hex("a2 6162 02 6161 01")),
        Err(Error::NonCanonical(_))
    ));
    assert!(matches!(
        dagcbor::from_slice::<Pair>(&hex("a1 6161 01")),
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        dagcbor::from_slice::<Pair>(&hex("a2 6161 01 6162 02 00")),
        Err(Error::Decode(_))
    ));
}

#[test]
fn maps_with_many_key_lengths_round_trip() {
    let mut map = BTreeMap::new();
    for key in [
        "",
        "a",
        "b",
        "aa",
        "é",
        "日本",
        "zzz",
        "a_much_longer_key_here",
    ] {
        map.insert(key.to_owned(), Ipld::String(key.to_owned()));
    }
    let value = Ipld::Map(map);
    let bytes = dagcbor::encode_ipld(&value).unwrap();
    assert_eq!(dagcbor::decode_ipld(&bytes).unwrap(), value);
    assert_eq!(dagcbor::to_vec(&value).unwrap(), bytes);
}

#[test]
fn cids_for_blocks_and_blobs() {
    let node = hex("a2 61 65 80 61 6c f6");
    let cid = cid_for_dag_cbor(&node);
    assert_eq!(cid.to_string(), EMPTY_NODE_CID);
    assert_eq!(cid.codec(), DAG_CBOR);
    assert!(is_blessed(&cid));
    let blob = cid_for_raw(b"hello");
    assert_eq!(blob.codec(), RAW);
    assert!(blob.to_string().starts_with("bafkrei"));
    assert_eq!(parse_cid(&blob.to_string()).unwrap(), blob);
}

#[test]
fn parse_cid_accepts_only_canonical_base32_cidv1() {
    assert_eq!(
        parse_cid(EMPTY_NODE_CID).unwrap().to_string(),
        EMPTY_NODE_CID
    );
    for bad in [
        "",
        "b",
        "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR",
        &EMPTY_NODE_CID.to_uppercase(),
        &format!("B{}", &EMPTY_NODE_CID[1..]),
        &format!("{EMPTY_NODE_CID} "),
        &format!("/ipfs/{EMPTY_NODE_CID}"),
        &EMPTY_NODE_CID[..EMPTY_NODE_CID.len() - 1],
        "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7",
    ] {
        assert!(parse_cid(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn cid_syntax_vectors() {
    let invalid = "syntax/cid_syntax_invalid.txt";
    let lines = atp_test_vectors::interop_lines(invalid);
    for line in &lines {
        assert!(parse_cid(line).is_err(), "{line:?} was accepted");
    }
    atp_test_vectors::report(invalid, lines.len());

    // Of the valid syntax examples, `parse_cid` takes the base32 CIDv1 ones
    // (the others use multibase encodings the protocol never writes).
    let valid = "syntax/cid_syntax_valid.txt";
    let base32: Vec<String> = atp_test_vectors::interop_lines(valid)
        .into_iter()
        .filter(|l| l.starts_with("baf"))
        .collect();
    for line in &base32 {
        assert_eq!(parse_cid(line).unwrap().to_string(), *line);
    }
    atp_test_vectors::report(valid, base32.len());
}

/// Stable-toolchain counterpart of the `dagcbor_roundtrip` fuzz target:
/// random bytes and mutations of valid encodings never panic, and whatever
/// is accepted re-encodes to exactly the same bytes.
#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: Vec<Vec<u8>> = vec![
        hex("a2 61 65 80 61 6c f6"),
        hex(&format!(
            "a3 6161 d82a 5825 00{} 6162 4401020304 6163 82 1b7fffffffffffffff 3b7fffffffffffffff",
            hex::encode(cid_for_dag_cbor(b"x").to_bytes())
        )),
        dagcbor::to_vec(&serde_json::json!({"text": "hello", "langs": ["en"], "n": -300})).unwrap(),
    ];
    let mut accepted = 0;
    for round in 0..50_000 {
        let input: Vec<u8> = if round % 2 == 0 {
            let len = (next() % 64) as usize;
            (0..len).map(|_| next() as u8).collect()
        } else {
            let mut bytes = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = next() as u8,
                    1 => {
                        bytes.remove(at);
                        if bytes.is_empty() {
                            bytes.push(0);
                        }
                    }
                    _ => bytes.insert(at, next() as u8),
                }
            }
            bytes
        };
        let checked = dagcbor::validate(&input);
        match dagcbor::decode_ipld(&input) {
            Ok(value) => {
                assert!(checked.is_ok());
                assert_eq!(dagcbor::encode_ipld(&value).unwrap(), input);
                assert_eq!(dagcbor::to_vec(&value).unwrap(), input);
                assert_eq!(dagcbor::from_slice::<Ipld>(&input).unwrap(), value);
                accepted += 1;
            }
            Err(_) => assert!(checked.is_err()),
        }
    }
    assert!(accepted > 0, "no input was accepted: the check is vacuous");
}

/// The pull reader reads an MST node's links as the decoder sees them.
#[test]
fn reader_reads_fields_in_place() {
    let record = cid_for_dag_cbor(b"\xa0");
    let node = Ipld::Map(BTreeMap::from([
        ("l".to_owned(), Ipld::Null),
        (
            "e".to_owned(),
            Ipld::List(vec![Ipld::Map(BTreeMap::from([
                (
                    "k".to_owned(),
                    Ipld::Bytes(b"app.bsky.feed.post/a".to_vec()),
                ),
                ("p".to_owned(), Ipld::Integer(0)),
                ("t".to_owned(), Ipld::Null),
                ("v".to_owned(), Ipld::Link(record)),
            ]))]),
        ),
    ]));
    let bytes = dagcbor::encode_ipld(&node).unwrap();
    let mut reader = dagcbor::Reader::new(&bytes);
    assert_eq!(reader.map_len().unwrap(), 2);
    assert_eq!(reader.text().unwrap(), "e");
    assert_eq!(reader.array_len().unwrap(), 1);
    assert_eq!(reader.map_len().unwrap(), 4);
    assert_eq!(reader.text().unwrap(), "k");
    reader.skip().unwrap();
    assert_eq!(reader.text().unwrap(), "p");
    reader.skip().unwrap();
    assert_eq!(reader.text().unwrap(), "t");
    assert_eq!(reader.link_or_null().unwrap(), None);
    assert_eq!(reader.text().unwrap(), "v");
    assert_eq!(reader.link().unwrap(), record.to_bytes().as_slice());
    assert_eq!(reader.text().unwrap(), "l");
    assert!(reader.finish().is_err(), "the value of `l` is still unread");
    assert_eq!(reader.link_or_null().unwrap(), None);
    reader.finish().unwrap();
}

/// The reader refuses what the strict decoder refuses, and wrong types.
#[test]
fn reader_is_strict() {
    // A map where an array is expected, and the other way round.
    assert!(dagcbor::Reader::new(&hex("a0")).array_len().is_err());
    assert!(dagcbor::Reader::new(&hex("80")).map_len().is_err());
    // Non-shortest length of an array.
    assert!(matches!(
        dagcbor::Reader::new(&hex("9800")).array_len(),
        Err(Error::NonCanonical(_))
    ));
    // A length beyond the input.
    assert!(dagcbor::Reader::new(&hex("9a ffffffff"))
        .array_len()
        .is_err());
    // Invalid UTF-8 text.
    assert!(dagcbor::Reader::new(&hex("61 ff")).text().is_err());
    // Tag 43, a link without its 0x00 prefix, an empty link.
    assert!(dagcbor::Reader::new(&hex("d82b 4100")).link().is_err());
    assert!(dagcbor::Reader::new(&hex("d82a 4101")).link().is_err());
    assert!(dagcbor::Reader::new(&hex("d82a 4100")).link().is_err());
    // Skipping checks the whole value: a float inside an array.
    assert!(dagcbor::Reader::new(&hex("81 f93c00")).skip().is_err());
    // Nesting beyond MAX_DEPTH while skipping.
    let deep = format!("{}00", "81".repeat(MAX_DEPTH + 1));
    assert!(dagcbor::Reader::new(&hex(&deep)).skip().is_err());
    // Truncated input.
    assert!(dagcbor::Reader::new(&[]).map_len().is_err());
}
