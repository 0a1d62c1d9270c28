//! Behaviour of the identifier types beyond the fixtures: normalization,
//! accessors, construction, serde, error messages.

#![allow(clippy::unwrap_used)]

use atp_syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Error, Handle, Language, Nsid, RecordKey, Tid,
    Uri,
};

#[test]
fn handles_are_normalized_to_lower_case() {
    let handle = Handle::new("Alice.Bsky.SOCIAL").unwrap();
    assert_eq!(handle.as_str(), "alice.bsky.social");
    assert_eq!(handle, Handle::new("alice.bsky.social").unwrap());
    assert_eq!(handle.to_string(), "alice.bsky.social");
    assert_eq!(handle.tld(), "social");
    assert_eq!(
        handle.labels().collect::<Vec<_>>(),
        ["alice", "bsky", "social"]
    );
    let from_string: Handle = String::from("JOHN.TEST").try_into().unwrap();
    assert_eq!(from_string, "john.test");
    let json: Handle = serde_json::from_str("\"John.Test\"").unwrap();
    assert_eq!(json, "john.test");
    assert_eq!(serde_json::to_string(&json).unwrap(), "\"john.test\"");
    // Hashing follows the normalized form.
    let set: std::collections::HashSet<Handle> = ["a.test", "A.TEST", "a.Test"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(set.len(), 1);
}

#[test]
fn handle_policy_helpers() {
    assert!(Handle::new("laptop.local").unwrap().has_disallowed_tld());
    assert!(!Handle::new("john.test").unwrap().has_disallowed_tld());
    assert!(Handle::new(Handle::INVALID).unwrap().is_invalid_marker());
}

#[test]
fn at_identifier_distinguishes_did_and_handle() {
    let did: AtIdentifier = "did:plc:7iza6de2dwap2sbkpav7c6c6".parse().unwrap();
    assert_eq!(did.as_did().unwrap().method(), "plc");
    assert!(did.as_handle().is_none());
    let handle: AtIdentifier = "Bob.Test".parse().unwrap();
    assert_eq!(handle.as_str(), "bob.test");
    assert!(matches!(handle, AtIdentifier::Handle(_)));
    let err = AtIdentifier::new("did:thing").unwrap_err();
    assert!(matches!(err, Error::AtIdentifier { .. }), "{err:?}");
}

#[test]
fn did_accessors() {
    let did = Did::new("did:web:localhost%3A1234").unwrap();
    assert_eq!(did.method(), "web");
    assert_eq!(did.method_specific_id(), "localhost%3A1234");
    let did = Did::new("did:method::::val").unwrap();
    assert_eq!(did.method(), "method");
    assert_eq!(did.method_specific_id(), ":::val");
    // DIDs are case-sensitive and kept as written.
    assert_ne!(
        Did::new("did:method:VAL").unwrap(),
        Did::new("did:method:val").unwrap()
    );
}

#[test]
fn nsid_accessors_and_construction() {
    let nsid = Nsid::new("com.example.fooBar").unwrap();
    assert_eq!(nsid.name(), "fooBar");
    assert_eq!(nsid.reversed_authority(), "com.example");
    assert_eq!(nsid.authority(), "example.com");
    assert_eq!(nsid.segments().count(), 3);
    let built = Nsid::from_authority_and_name("example.com", "fooBar").unwrap();
    assert_eq!(built, nsid);
    assert!(Nsid::from_authority_and_name("example.com", "foo-bar").is_err());
}

#[test]
fn at_uri_parts_and_construction() {
    let uri = AtUri::new("at://Alice.Test/app.bsky.feed.post/3jzfcijpj2z2a").unwrap();
    // The string is kept as written; the authority is normalized.
    assert_eq!(
        uri.as_str(),
        "at://Alice.Test/app.bsky.feed.post/3jzfcijpj2z2a"
    );
    assert_eq!(uri.authority().as_str(), "alice.test");
    assert_eq!(uri.collection().unwrap().name(), "post");
    assert_eq!(uri.record_key().unwrap().as_str(), "3jzfcijpj2z2a");
    assert_eq!(uri.fragment(), None);

    let repo = AtUri::new("at://did:plc:asdf123").unwrap();
    assert!(repo.collection().is_none() && repo.record_key().is_none());

    let did = Did::new("did:plc:asdf123").unwrap();
    let collection = Nsid::new("app.bsky.feed.post").unwrap();
    let rkey = RecordKey::new("self").unwrap();
    assert_eq!(AtUri::for_repo(did.clone()), repo);
    assert_eq!(
        AtUri::for_collection(did.clone(), collection.clone()).as_str(),
        "at://did:plc:asdf123/app.bsky.feed.post"
    );
    let record = AtUri::for_record(did, collection, rkey);
    assert_eq!(
        record.as_str(),
        "at://did:plc:asdf123/app.bsky.feed.post/self"
    );
    assert_eq!(record, AtUri::new(record.as_str()).unwrap());
}

#[test]
fn at_uri_fragment_and_query_rules() {
    let uri = AtUri::new("at://did:plc:asdf123/app.bsky.feed.post/self#/text").unwrap();
    assert_eq!(uri.fragment(), Some("/text"));
    assert!(AtUri::new("at://did:plc:asdf123#/a%20b").is_ok());
    // Not a JSON pointer, bad escapes, escapes that are not UTF-8.
    for bad in [
        "at://did:plc:asdf123#text",
        "at://did:plc:asdf123#/a%2",
        "at://did:plc:asdf123#/a%zz",
        "at://did:plc:asdf123#/%FF",
        // Query parts are not used in atproto.
        "at://did:plc:asdf123?x=1",
        "at://did:plc:asdf123/app.bsky.feed.post?x=1#/a",
    ] {
        let err = AtUri::new(bad).unwrap_err();
        assert!(matches!(err, Error::AtUri { .. }), "{bad}: {err:?}");
    }
}

#[test]
fn tid_parts_and_encoding() {
    let tid = Tid::from_parts(0, 0).unwrap();
    assert_eq!(tid.as_str(), "2222222222222");
    let max = Tid::from_parts((1 << 53) - 1, 1023).unwrap();
    assert_eq!(max.as_str(), "bzzzzzzzzzzzz");
    assert_eq!(max.timestamp_micros(), (1 << 53) - 1);
    assert_eq!(max.clock_id(), 1023);
    assert!(Tid::from_parts(1 << 53, 0).is_err());
    assert!(Tid::from_parts(0, 1024).is_err());
    // The top-bit TIDs the reference syntax accepts still parse.
    let high = Tid::new("jzzzzzzzzzzzz").unwrap();
    assert_eq!(high.as_u64(), u64::MAX);
    let rkey = RecordKey::from(tid);
    assert_eq!(rkey.as_str(), "2222222222222");
    assert_eq!(format!("{tid:?}"), "Tid(\"2222222222222\")");
}

#[test]
fn datetime_strict_lenient_and_order() {
    let a = Datetime::new("1985-04-12T23:20:50.123-07:00").unwrap();
    let b = Datetime::new("1985-04-13T06:20:50.124Z").unwrap();
    assert!(a < b);
    assert_eq!(a.to_utc().to_rfc3339(), "1985-04-13T06:20:50.123+00:00");
    // Equal instants written differently are different values, ordered by
    // string after instant.
    let c = Datetime::new("1985-04-13T06:20:50.123Z").unwrap();
    assert_ne!(a, c);
    assert_eq!(a.to_utc(), c.to_utc());
    assert!(a < c);

    for (loose, normalized) in [
        ("1985-04-12", "1985-04-12T00:00:00.000Z"),
        ("1985-04", "1985-04-01T00:00:00.000Z"),
        ("1985-04-12T23:20", "1985-04-12T23:20:00.000Z"),
        ("1985-04-12 23:20:50.123Z", "1985-04-12T23:20:50.123Z"),
        ("1985-04-12t23:20:50.123z", "1985-04-12T23:20:50.123Z"),
        ("1985-04-12T23:20:50.123", "1985-04-12T23:20:50.123Z"),
        ("1985-04-12T23:20:50.123+0100", "1985-04-12T22:20:50.123Z"),
        ("1985-04-12T23:20:50.123-00:00", "1985-04-12T23:20:50.123Z"),
        (
            "1985-04-12T23:20:50.1235678912345Z",
            "1985-04-12T23:20:50.123Z",
        ),
    ] {
        assert_eq!(
            Datetime::parse_lenient(loose).unwrap().as_str(),
            normalized,
            "{loose}"
        );
        if loose != normalized {
            assert!(Datetime::new(loose).is_err() || loose.len() > 24, "{loose}");
        }
    }
    for bad in [
        "1985-02-30T00:00:00Z",
        "1985-04-12T23:59:60Z",
        "9999-12-31T23:00:00-07:00",
        "1985-04-12T23:20:50.123+00",
        "1985-04-12_23:20:50.123Z",
        "yesterday",
        "",
    ] {
        assert!(Datetime::new(bad).is_err(), "{bad}");
        assert!(Datetime::parse_lenient(bad).is_err(), "{bad}");
    }

    let now = Datetime::now();
    assert_eq!(now.as_str().len(), 24);
    assert!(Datetime::new(now.as_str()).is_ok());
}

#[test]
fn language_helpers() {
    let lang = Language::new("hy-Latn-IT-arevela").unwrap();
    assert_eq!(lang.primary(), "hy");
    assert!(Language::is_well_formed("de-DE-1901-1901"));
    assert!(!Language::is_valid("de-DE-1901-1901"));
    assert!(!Language::is_well_formed("a-DE"));
    assert!(!Language::is_well_formed("en--US"));
}

#[test]
fn cid_and_uri_helpers() {
    assert!(CidString::is_valid(
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    ));
    assert_eq!(Uri::new("dns:example.com").unwrap().scheme(), "dns");
}

#[test]
fn errors_name_the_type_the_input_and_the_reason() {
    let err =
        Handle::new("short.oooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo.test")
            .unwrap_err();
    assert_eq!(err.reason(), "label longer than 63 characters");
    assert!(err.to_string().starts_with("handle \"short.ooo"), "{err}");
    let err = Did::new("did:METHOD:val").unwrap_err();
    assert_eq!(
        err.to_string(),
        "DID \"did:METHOD:val\": method must be lower-case letters"
    );
    assert_eq!(err.input(), "did:METHOD:val");
    // Long inputs are cut in messages but kept whole in the error.
    let long = format!(
        "at://did:plc:asdf123/com.atproto.feed.post/{}",
        "o".repeat(9000)
    );
    let err = AtUri::new(&long).unwrap_err();
    assert_eq!(err.input(), long);
    assert!(err.to_string().len() < 300, "{err}");
    assert!(err.to_string().contains("longer than 8192"), "{err}");
}

#[test]
fn deserializing_validates() {
    assert!(serde_json::from_str::<Did>("\"did:plc:abc\"").is_ok());
    let err = serde_json::from_str::<Did>("\"did:plc:\"").unwrap_err();
    assert!(err.to_string().contains("DID"), "{err}");
    assert!(serde_json::from_str::<Tid>("\"3jzfcijpj2z2a\"").is_ok());
    assert!(serde_json::from_str::<Tid>("42").is_err());
    assert!(serde_json::from_str::<Datetime>("\"1985-04-12\"").is_err());
    let uri: AtUri = serde_json::from_str("\"at://did:plc:abc/app.bsky.feed.post/self\"").unwrap();
    assert_eq!(
        serde_json::to_value(&uri).unwrap(),
        serde_json::json!("at://did:plc:abc/app.bsky.feed.post/self")
    );
    #[derive(serde::Deserialize)]
    struct Record {
        #[allow(dead_code)]
        subject: AtUri,
        #[allow(dead_code)]
        langs: Vec<Language>,
    }
    let bad = r#"{"subject": "at://did:plc:abc", "langs": ["en", "JA"]}"#;
    assert!(serde_json::from_str::<Record>(bad).is_err());
}
