//! `com.atproto.repo` writes over loopback HTTP: createRecord, putRecord and
//! deleteRecord with their swaps and refusals, accounts that may not write,
//! duplicate follows and likes, and the data-model fixtures as records.
#![allow(clippy::unwrap_used)]

mod common;
mod repo_support;

use common::refusal;
use repo_support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn write_refusals() {
    let (pds, _state) = start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;

    // Into another account's repo, by DID or handle.
    for repo in [bob.did.as_str(), bob.handle.as_str()] {
        let (status, name, message) = refused_create(
            &pds,
            &alice,
            json!({"repo": repo, "collection": POST, "record": post("x")}),
        )
        .await;
        assert_eq!(
            (status, name.as_str(), message.as_str()),
            (401, "AuthenticationRequired", "Authentication Required")
        );
    }
    // An unknown repo.
    let (status, name, _) = refused_create(
        &pds,
        &alice,
        json!({"repo": "nobody.test", "collection": POST, "record": post("x")}),
    )
    .await;
    assert_eq!((status, name.as_str()), (403, "AccountNotFound"));
    // No credentials.
    let (status, name, _) = refusal(
        pds.client()
            .procedure::<_, _, Value>(
                "com.atproto.repo.createRecord",
                &(),
                &json!({"repo": alice.did, "collection": POST, "record": post("x")}),
            )
            .await,
    );
    assert_eq!((status, name.as_str()), (401, "AuthMissing"));

    // $type that is not the collection.
    let (status, name, message) = refused_create(
        &pds,
        &alice,
        json!({"collection": THING, "record": post("x")}),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(
        message,
        format!("Invalid $type: expected {THING}, got {POST}")
    );
    // Invalid record keys and collections.
    for rkey in ["a/b", "..", "has space"] {
        let (status, name, _) = refused_create(
            &pds,
            &alice,
            json!({"collection": THING, "rkey": rkey, "record": {}}),
        )
        .await;
        assert_eq!((status, name.as_str()), (400, "InvalidRequest"), "{rkey}");
    }
    for collection in ["notannsid", "com.example.", "a..b"] {
        let (status, name, _) = refused_create(
            &pds,
            &alice,
            json!({"collection": collection, "record": {}}),
        )
        .await;
        assert_eq!(
            (status, name.as_str()),
            (400, "InvalidRequest"),
            "{collection}"
        );
    }
    // A post's key must be a TID; an invalid post is refused.
    let (status, _, message) = refused_create(
        &pds,
        &alice,
        json!({"collection": POST, "rkey": "self", "record": post("x")}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("Invalid record key for app.bsky.feed.post"),
        "{message}"
    );
    let (status, _, message) = refused_create(
        &pds,
        &alice,
        json!({"collection": POST, "record": {"$type": POST, "text": 1}}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("Invalid app.bsky.feed.post record"),
        "{message}"
    );
    // validate=true with an unknown schema.
    let (status, _, message) = refused_create(
        &pds,
        &alice,
        json!({"collection": THING, "validate": true, "record": {}}),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "Unknown lexicon type: com.example.thing")
    );
    // A second create at the same key.
    create_at(&pds, &alice, THING, "one", json!({})).await;
    let (status, _, _) = refused_create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "one", "record": {}}),
    )
    .await;
    assert_eq!(status, 400);

    // Malformed bodies get the 400 envelope.
    let client = pds.bearer(&alice.access_jwt);
    let (status, name, _) = refusal(
        client
            .procedure_bytes(
                "com.atproto.repo.createRecord",
                &(),
                "application/json",
                b"{not json".to_vec().into(),
            )
            .await,
    );
    // The reference names this one after its JSON parser's exception.
    assert_eq!(status, 400);
    assert!(!name.is_empty());
    let (status, name, _) =
        refused_create(&pds, &alice, json!({"repo": alice.did, "record": {}})).await;
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    let (status, name, _) = refused_create(
        &pds,
        &alice,
        json!({"repo": alice.did, "collection": THING, "record": "a string"}),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    let (status, name, _) = refused_create(
        &pds,
        &alice,
        json!({"repo": alice.did, "collection": THING, "record": {"f": 1.5}}),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    // Too large a body.
    let big = "x".repeat(1_100_000);
    let (status, _, _) = refused_create(
        &pds,
        &alice,
        json!({"collection": THING, "record": {"big": big}}),
    )
    .await;
    assert_eq!(status, 413);
    pds.stop().await;
}

#[tokio::test]
async fn deactivated_and_taken_down_accounts_cannot_write() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let made = create_at(&pds, &alice, THING, "a", json!({})).await;
    assert!(made["uri"].is_string());

    state
        .storage
        .accounts()
        .deactivate(&alice.did, None)
        .unwrap();
    let (status, name, message) =
        refused_create(&pds, &alice, json!({"collection": THING, "record": {}})).await;
    assert_eq!(
        (status, name.as_str(), message.as_str()),
        (401, "AccountDeactivated", "Account is deactivated")
    );
    // Reads treat it as gone.
    let (status, _, message) = refusal(get_at(&pds, &alice.did, THING, "a").await);
    assert_eq!((status, message.as_str()), (400, "Could not locate record"));
    let (status, name, _) = refusal(describe(&pds, &alice.did).await);
    assert_eq!((status, name.as_str()), (400, "RepoDeactivated"));

    // An account moving in is deactivated while it imports its repository:
    // importRepo is allowed then.
    import(&pds, &alice, export(&state, &alice.did))
        .await
        .unwrap();

    state.storage.accounts().activate(&alice.did).unwrap();
    state
        .storage
        .accounts()
        .set_takedown(&alice.did, Some("mod-1"))
        .unwrap();
    let (status, name, _) = refusal(delete(&pds, &alice, THING, "a").await);
    assert_eq!((status, name.as_str()), (401, "AccountTakedown"));
    let (status, name, _) = refusal(describe(&pds, &alice.did).await);
    assert_eq!((status, name.as_str()), (400, "RepoTakendown"));
    pds.stop().await;
}

#[tokio::test]
async fn put_record_creates_updates_and_checks_swaps() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let put = |record: Value, extra: Value| {
        let mut input =
            json!({"repo": alice.did, "collection": THING, "rkey": "p", "record": record});
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        call(&pds, &alice, "com.atproto.repo.putRecord", input)
    };

    // swapRecord null: must not exist yet. Creates.
    let first = put(json!({"v": 1}), json!({"swapRecord": null}))
        .await
        .unwrap();
    assert_eq!(first["validationStatus"], "unknown");
    assert!(first["commit"]["cid"].is_string());
    // Again with swapRecord null: it exists now.
    let (status, name, message) = refusal(put(json!({"v": 2}), json!({"swapRecord": null})).await);
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    assert_eq!(
        message,
        format!("Record was at {}", first["cid"].as_str().unwrap())
    );
    // A wrong swapRecord.
    let other = atp_crypto::cid_for_dag_cbor(b"other").to_string();
    let (status, name, _) = refusal(put(json!({"v": 2}), json!({"swapRecord": other})).await);
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    // A wrong swapCommit.
    let current_head = head(&state, &alice.did);
    let (status, name, message) = refusal(put(json!({"v": 2}), json!({"swapCommit": other})).await);
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    assert_eq!(message, format!("Commit was at {current_head}"));
    // Nothing of the refused writes landed.
    assert_eq!(head(&state, &alice.did), current_head);

    // The right swaps: an update.
    let second = put(
        json!({"v": 2}),
        json!({"swapRecord": first["cid"], "swapCommit": current_head}),
    )
    .await
    .unwrap();
    assert_ne!(second["cid"], first["cid"]);
    assert_eq!(second["uri"], first["uri"]);
    let got = get_at(&pds, &alice.did, THING, "p").await.unwrap();
    assert_eq!(got["value"], json!({"$type": THING, "v": 2}));
    // The same record again: no commit.
    let head_now = head(&state, &alice.did);
    let same = put(json!({"v": 2}), json!({})).await.unwrap();
    assert_eq!(same["cid"], second["cid"]);
    assert!(same.get("commit").is_none());
    assert_eq!(head(&state, &alice.did), head_now);
    // Putting a post validates it.
    let (status, _, _) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.putRecord",
            json!({"repo": alice.did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": {"displayName": 5}}),
        )
        .await,
    );
    assert_eq!(status, 400);
    let profile = call(
        &pds,
        &alice,
        "com.atproto.repo.putRecord",
        json!({"repo": alice.did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": {"displayName": "Alice"}}),
    )
    .await
    .unwrap();
    assert_eq!(profile["validationStatus"], "valid");
    pds.stop().await;
}

#[tokio::test]
async fn delete_record_and_missing_records() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let made = create_at(&pds, &alice, THING, "d", json!({})).await;
    let del = |extra: Value| {
        let mut input = json!({"repo": alice.did, "collection": THING, "rkey": "d"});
        for (k, v) in extra.as_object().unwrap() {
            input[k] = v.clone();
        }
        call(&pds, &alice, "com.atproto.repo.deleteRecord", input)
    };
    let other = atp_crypto::cid_for_dag_cbor(b"other").to_string();
    let (status, name, message) = refusal(del(json!({"swapRecord": other})).await);
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    assert_eq!(
        message,
        format!("Record was at {}", made["cid"].as_str().unwrap())
    );
    let (status, name, _) = refusal(del(json!({"swapCommit": other})).await);
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));

    let deleted = del(json!({"swapRecord": made["cid"]})).await.unwrap();
    assert_eq!(
        deleted["commit"]["cid"].as_str().unwrap(),
        head(&state, &alice.did)
    );
    // Deleting again changes nothing and answers without a commit.
    let again = del(json!({})).await.unwrap();
    assert_eq!(again, json!({}));

    let (status, name, message) = refusal(get_at(&pds, &alice.did, THING, "d").await);
    assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    assert_eq!(
        message,
        format!("Could not locate record: at://{}/{THING}/d", alice.did)
    );
    let (status, _, message) = refusal(get_at(&pds, "nobody.test", THING, "d").await);
    assert_eq!((status, message.as_str()), (400, "Could not locate record"));
    let (status, _, message) = refusal(
        pds.client()
            .query::<_, Value>(
                "com.atproto.repo.listRecords",
                &json!({"repo": "nobody.test", "collection": THING}),
            )
            .await,
    );
    assert_eq!(
        (status, message.as_str()),
        (400, "Could not find repo: nobody.test")
    );
    let (status, name, _) = refusal(describe(&pds, "nobody.test").await);
    assert_eq!((status, name.as_str()), (400, "RepoNotFound"));
    let listed = list(&pds, json!({"repo": alice.did, "collection": THING})).await;
    assert_eq!(listed, json!({"records": []}));
    pds.stop().await;
}

/// A second follow of the same account (or like of the same post) replaces
/// the first in the same commit, as the reference does; with validation
/// off both stay.
#[tokio::test]
async fn duplicate_follows_and_likes_are_replaced() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    const FOLLOW: &str = "app.bsky.graph.follow";
    const LIKE: &str = "app.bsky.feed.like";
    let follow =
        json!({"$type": FOLLOW, "subject": bob.did, "createdAt": "2024-01-01T00:00:00.000Z"});
    let first = create(
        &pds,
        &alice,
        json!({"collection": FOLLOW, "record": follow}),
    )
    .await
    .unwrap();
    let before = store(&state, &alice.did).root().unwrap().unwrap();
    let second = create(
        &pds,
        &alice,
        json!({"collection": FOLLOW, "record": follow}),
    )
    .await
    .unwrap();
    let rkey_of = |answer: &Value| {
        answer["uri"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let (status, name, _) = refusal(get_at(&pds, &alice.did, FOLLOW, &rkey_of(&first)).await);
    assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    let listed = list(&pds, json!({"repo": alice.did, "collection": FOLLOW})).await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);
    assert_eq!(listed["records"][0]["uri"], second["uri"]);
    // Both changes are one commit on the previous head.
    let after = store(&state, &alice.did).root().unwrap().unwrap();
    assert_eq!(
        record_changes(&state, &alice.did, before.cid, after.cid).len(),
        2
    );

    // validate=false keeps duplicates.
    create(
        &pds,
        &alice,
        json!({"collection": FOLLOW, "validate": false, "record": follow}),
    )
    .await
    .unwrap();
    let listed = list(&pds, json!({"repo": alice.did, "collection": FOLLOW})).await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 2);

    // Likes of one post; a like of another post stays.
    let post_a = create(&pds, &bob, json!({"collection": POST, "record": post("a")}))
        .await
        .unwrap();
    let post_b = create(&pds, &bob, json!({"collection": POST, "record": post("b")}))
        .await
        .unwrap();
    let like = |subject: &Value| {
        json!({"$type": LIKE, "subject": {"uri": subject["uri"], "cid": subject["cid"]},
               "createdAt": "2024-01-01T00:00:00.000Z"})
    };
    for subject in [&post_a, &post_b, &post_a] {
        create(
            &pds,
            &alice,
            json!({"collection": LIKE, "record": like(subject)}),
        )
        .await
        .unwrap();
    }
    let listed = list(&pds, json!({"repo": alice.did, "collection": LIKE})).await;
    let subjects: Vec<&Value> = listed["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["value"]["subject"]["uri"])
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(subjects.contains(&&post_a["uri"]));
    assert!(subjects.contains(&&post_b["uri"]));

    // Backlinks of imported records count too.
    let snapshot = export(&state, &alice.did);
    import(&pds, &alice, snapshot).await.unwrap();
    create(
        &pds,
        &alice,
        json!({"collection": LIKE, "record": like(&post_b)}),
    )
    .await
    .unwrap();
    let listed = list(&pds, json!({"repo": alice.did, "collection": LIKE})).await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 2);
    pds.stop().await;
}

/// `value` with integral floats (`123.0`) as integers.
fn integral(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => json!(f as i64),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(integral).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), integral(v))).collect())
        }
        _ => value.clone(),
    }
}

/// The data-model fixtures as records: valid ones are stored and read back
/// unchanged (with the collection as `$type`), invalid ones are refused.
#[tokio::test]
async fn data_model_fixtures_through_create_record() {
    let (pds, _state) = start().await;
    let alice = pds.create("alice").await;
    let valid = atp_test_vectors::interop_json("data-model/data-model-valid.json");
    let valid = valid.as_array().unwrap();
    for (i, case) in valid.iter().enumerate() {
        let mut record = case["json"].clone();
        record["$type"] = json!(THING);
        let rkey = format!("valid{i}");
        create(
            &pds,
            &alice,
            json!({"collection": THING, "rkey": rkey, "record": record}),
        )
        .await
        .unwrap_or_else(|err| panic!("{}: {err}", case["note"]));
        let got = get_at(&pds, &alice.did, THING, &rkey).await.unwrap();
        // Integral numbers written with a fraction come back as integers.
        assert_eq!(got["value"], integral(&record), "{}", case["note"]);
    }
    atp_test_vectors::report("data-model/data-model-valid.json", valid.len());

    let invalid = atp_test_vectors::interop_json("data-model/data-model-invalid.json");
    let invalid = invalid.as_array().unwrap();
    for case in invalid {
        let mut record = case["json"].clone();
        if let Some(object) = record.as_object_mut() {
            object.insert("$type".to_owned(), json!(THING));
        }
        let (status, _, _) =
            refused_create(&pds, &alice, json!({"collection": THING, "record": record})).await;
        assert_eq!(status, 400, "{}", case["note"]);
    }
    atp_test_vectors::report("data-model/data-model-invalid.json", invalid.len());
    pds.stop().await;
}
