//! The bundled lexicons: every document parses, every reference resolves,
//! and real records, parameters and bodies get the expected verdicts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use atp_xrpc::lexicon::{LexDef, LexSchema, LexiconDoc, LexiconError, Lexicons, ValidationStatus};
use serde_json::{json, Map, Value};

const CID: &str = "bafkreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";

fn post(text: &str) -> Value {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-05-01T12:00:00.000Z"})
}

fn check_refs(lex: &Lexicons, schema: &LexSchema, count: &mut usize) {
    match schema {
        LexSchema::Ref(r) => {
            assert!(lex.get_def(r).is_some(), "unresolved ref {r}");
            *count += 1;
        }
        LexSchema::Union(u) => {
            for r in &u.refs {
                assert!(lex.get_def(r).is_some(), "unresolved union ref {r}");
                *count += 1;
            }
        }
        LexSchema::Object(o) => o
            .properties
            .values()
            .for_each(|p| check_refs(lex, p, count)),
        LexSchema::Array(a) => check_refs(lex, &a.items, count),
        _ => {}
    }
}

#[test]
fn every_bundled_document_parses_and_every_reference_resolves() {
    let sources: Vec<_> = Lexicons::bundled_sources().collect();
    for (id, text) in &sources {
        let doc = LexiconDoc::from_json_str(text).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(doc.id.as_str(), *id);
    }
    let lex = Lexicons::bundled();
    assert_eq!(lex.len(), sources.len());
    assert!(lex.len() > 250, "{}", lex.len());
    for prefix in ["com.atproto.", "app.bsky.", "chat.bsky."] {
        assert!(lex.iter().any(|d| d.id.as_str().starts_with(prefix)));
    }
    let mut refs = 0;
    for doc in lex.iter() {
        for def in doc.defs.values() {
            match def {
                LexDef::Schema(s) => check_refs(&lex, s, &mut refs),
                LexDef::Record(r) => r
                    .record
                    .properties
                    .values()
                    .for_each(|p| check_refs(&lex, p, &mut refs)),
                LexDef::Query(x) | LexDef::Procedure(x) => {
                    for body in [&x.input, &x.output].into_iter().flatten() {
                        if let Some(s) = &body.schema {
                            check_refs(&lex, s, &mut refs);
                        }
                    }
                }
                LexDef::Subscription(s) => {
                    if let Some(m) = &s.message {
                        check_refs(&lex, m, &mut refs);
                    }
                }
                _ => {}
            }
        }
    }
    assert!(refs > 500, "{refs}");
    println!(
        "bundled lexicons: {} documents, {refs} references resolved",
        lex.len()
    );
}

#[test]
fn a_real_post_validates() {
    let lex = Lexicons::bundled();
    assert_eq!(
        lex.validate_record("app.bsky.feed.post", &post("hello"))
            .unwrap(),
        ValidationStatus::Valid
    );
    let full = json!({
        "$type": "app.bsky.feed.post",
        "text": "hi @alice.example.com look 🏳️‍🌈",
        "createdAt": "2024-05-01T12:00:00.000Z",
        "langs": ["en", "pt-BR"],
        "facets": [{
            "index": {"byteStart": 3, "byteEnd": 21},
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:7iza6de2dwap2sbkpav7c6c6"}]
        }],
        "reply": {
            "root": {"uri": "at://did:plc:7iza6de2dwap2sbkpav7c6c6/app.bsky.feed.post/3kznmn7xqxl22", "cid": CID},
            "parent": {"uri": "at://did:plc:7iza6de2dwap2sbkpav7c6c6/app.bsky.feed.post/3kznmn7xqxl22", "cid": CID}
        },
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [{
                "alt": "a cat",
                "image": {"$type": "blob", "ref": {"$link": CID}, "mimeType": "image/jpeg", "size": 123456},
                "aspectRatio": {"width": 4, "height": 3}
            }]
        },
        "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]},
        "tags": ["cats"]
    });
    assert_eq!(
        lex.validate_record("app.bsky.feed.post", &full).unwrap(),
        ValidationStatus::Valid
    );

    // The same post with a video where an image is expected.
    let mut bad = full.clone();
    bad["embed"]["images"][0]["image"]["mimeType"] = json!("video/mp4");
    let err = lex.validate_record("app.bsky.feed.post", &bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Record/embed/images/0/image mimeType must be one of (image/*)"
    );
    // A mention facet without a DID.
    let mut bad = full.clone();
    bad["facets"][0]["features"][0]["did"] = json!("alice.example.com");
    let err = lex.validate_record("app.bsky.feed.post", &bad).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Record/facets/0/features/0/did must be a valid did"
    );
    // A bad language tag, a bad reply CID.
    let mut bad = full.clone();
    bad["langs"][1] = json!("not a language");
    assert!(lex.validate_record("app.bsky.feed.post", &bad).is_err());
    let mut bad = full;
    bad["reply"]["root"]["cid"] = json!("nope");
    assert_eq!(
        lex.validate_record("app.bsky.feed.post", &bad)
            .unwrap_err()
            .to_string(),
        "Record/reply/root/cid must be a cid string"
    );
}

#[test]
fn post_text_length_is_counted_in_graphemes_and_bytes() {
    let lex = Lexicons::bundled();
    let at_limit = "a".repeat(300);
    assert!(lex
        .validate_record("app.bsky.feed.post", &post(&at_limit))
        .is_ok());
    let err = lex
        .validate_record("app.bsky.feed.post", &post(&"a".repeat(301)))
        .unwrap_err();
    assert_eq!(
        err,
        LexiconError::Validation("Record/text must not be longer than 300 graphemes".into())
    );
    // 300 flags: 300 graphemes, 2400 UTF-8 bytes (under 3000): valid.
    let flags = "🇩🇪".repeat(300);
    assert!(lex
        .validate_record("app.bsky.feed.post", &post(&flags))
        .is_ok());
    // 300 family emoji: 300 graphemes but 7500 bytes: over maxLength 3000.
    let families = "👩‍👩‍👧‍👦".repeat(300);
    assert_eq!(
        lex.validate_record("app.bsky.feed.post", &post(&families))
            .unwrap_err()
            .to_string(),
        "Record/text must not be longer than 3000 characters"
    );
}

#[test]
fn record_envelope_rules() {
    let lex = Lexicons::bundled();
    let other = json!({"$type": "com.example.unknownThing", "anything": [1, 2, 3]});
    assert_eq!(
        lex.validate_record("com.example.unknownThing", &other)
            .unwrap(),
        ValidationStatus::Unknown
    );
    // $type must be present and name the collection.
    let err = lex
        .validate_record("app.bsky.feed.like", &post("x"))
        .unwrap_err();
    assert!(err.to_string().starts_with("Invalid $type"), "{err}");
    let err = lex
        .validate_record("app.bsky.feed.post", &json!({"text": "x"}))
        .unwrap_err();
    assert_eq!(err.to_string(), "Record/$type must be a string");
    assert!(lex
        .validate_record("app.bsky.feed.post", &json!("x"))
        .is_err());
    // A collection that is not a record type.
    let q = json!({"$type": "app.bsky.feed.getTimeline"});
    assert!(matches!(
        lex.validate_record("app.bsky.feed.getTimeline", &q),
        Err(LexiconError::WrongDefType { .. })
    ));
    // Missing required createdAt.
    let err = lex
        .validate_record(
            "app.bsky.feed.post",
            &json!({"$type": "app.bsky.feed.post", "text": "x"}),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Record must have the property \"createdAt\""
    );
    // Record keys: posts use TIDs, the profile is the literal "self".
    lex.validate_record_key("app.bsky.feed.post", "3kznmn7xqxl22")
        .unwrap();
    assert!(lex
        .validate_record_key("app.bsky.feed.post", "hello")
        .is_err());
    lex.validate_record_key("app.bsky.actor.profile", "self")
        .unwrap();
    assert!(lex
        .validate_record_key("app.bsky.actor.profile", "other")
        .is_err());
    lex.validate_record_key("com.example.unknownThing", "anything-goes")
        .unwrap();
    assert!(lex
        .validate_record_key("com.example.unknownThing", "..")
        .is_err());
}

#[test]
fn unknown_fields_refuse_bytes_links_blobs_and_non_objects() {
    let mut lex = Lexicons::new();
    lex.add_json(&atp_test_vectors::interop_json(
        "lexicon/catalog/record.json",
    ))
    .unwrap();
    let with = |unknown: Value| json!({"$type": "example.lexicon.record", "integer": 1, "unknown": unknown});
    let ok = lex.validate_record("example.lexicon.record", &with(json!({"a": 1})));
    assert_eq!(ok.unwrap(), ValidationStatus::Valid);
    for bad in [
        json!(false),
        json!("text"),
        json!(3),
        json!([1]),
        json!({"$bytes": "123"}),
        json!({"$link": CID}),
        json!({"$type": "blob", "ref": {"$link": CID}, "mimeType": "text/plain", "size": 1}),
    ] {
        let err = lex
            .validate_record("example.lexicon.record", &with(bad.clone()))
            .unwrap_err();
        assert_eq!(err.to_string(), "Record/unknown must be an object", "{bad}");
    }
}

#[test]
fn knownvalues_are_not_enforced_but_enums_are() {
    let lex = Lexicons::bundled();
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let nsid = "app.bsky.feed.getAuthorFeed";
    let params = lex
        .decode_params(
            nsid,
            &pairs(&[
                ("actor", "alice.example.com"),
                ("limit", "30"),
                ("filter", "some_new_filter"),
            ]),
        )
        .unwrap();
    assert_eq!(params["limit"], json!(30));
    lex.validate_params(nsid, &params).unwrap();

    let params = lex
        .decode_params(
            nsid,
            &pairs(&[("actor", "alice.example.com"), ("limit", "500")]),
        )
        .unwrap();
    assert_eq!(
        lex.validate_params(nsid, &params).unwrap_err().to_string(),
        "limit can not be greater than 100"
    );
    let params = lex.decode_params(nsid, &pairs(&[("limit", "5")])).unwrap();
    assert_eq!(
        lex.validate_params(nsid, &params).unwrap_err().to_string(),
        "Params must have the property \"actor\""
    );
    let params = lex
        .decode_params(nsid, &pairs(&[("actor", "not a handle")]))
        .unwrap();
    assert_eq!(
        lex.validate_params(nsid, &params).unwrap_err().to_string(),
        "actor must be a valid did or a handle"
    );
    let params = lex
        .decode_params(
            nsid,
            &pairs(&[("actor", "alice.example.com"), ("limit", "ten")]),
        )
        .unwrap();
    assert_eq!(
        lex.validate_params(nsid, &params).unwrap_err().to_string(),
        "limit must be an integer"
    );

    // Array parameters collect repeated keys.
    let nsid = "app.bsky.actor.getProfiles";
    let params = lex
        .decode_params(
            nsid,
            &pairs(&[
                ("actors", "alice.example.com"),
                ("actors", "did:plc:7iza6de2dwap2sbkpav7c6c6"),
            ]),
        )
        .unwrap();
    assert_eq!(params["actors"].as_array().unwrap().len(), 2);
    lex.validate_params(nsid, &params).unwrap();
    assert!(lex.validate_params(nsid, &Map::new()).is_err());
}

#[test]
fn procedure_inputs_and_outputs() {
    let lex = Lexicons::bundled();
    let input = json!({
        "repo": "did:plc:7iza6de2dwap2sbkpav7c6c6",
        "collection": "app.bsky.feed.post",
        "record": post("hi"),
    });
    lex.validate_input("com.atproto.repo.createRecord", &input)
        .unwrap();
    let mut bad = input.clone();
    bad["collection"] = json!("not an nsid");
    assert_eq!(
        lex.validate_input("com.atproto.repo.createRecord", &bad)
            .unwrap_err()
            .to_string(),
        "Input/collection must be a valid nsid"
    );
    assert_eq!(
        lex.validate_input("com.atproto.repo.createRecord", &json!([]))
            .unwrap_err()
            .to_string(),
        "Input must be an object"
    );
    let output = json!({"uri": "at://did:plc:7iza6de2dwap2sbkpav7c6c6/app.bsky.feed.post/3kznmn7xqxl22", "cid": CID});
    lex.validate_output("com.atproto.repo.createRecord", &output)
        .unwrap();
    assert!(lex
        .validate_output("com.atproto.repo.createRecord", &json!({"uri": "x"}))
        .is_err());
    // Methods of the wrong kind, and unknown ones.
    assert!(matches!(
        lex.validate_input("app.bsky.feed.getTimeline", &json!({})),
        Err(LexiconError::WrongDefType { .. })
    ));
    assert!(matches!(
        lex.validate_input("com.example.nothing", &json!({})),
        Err(LexiconError::DefNotFound(_))
    ));
    // An event-stream message.
    let info = json!({"$type": "com.atproto.sync.subscribeRepos#info", "name": "OutdatedCursor"});
    lex.validate_message("com.atproto.sync.subscribeRepos", &info)
        .unwrap();
}
