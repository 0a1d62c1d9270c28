//! `com.atproto.repo` reads over loopback HTTP: getRecord, listRecords
//! (paging both ways) and describeRepo, the exported repository checked by
//! the reference implementation, and the official client using every
//! record method.
#![allow(clippy::unwrap_used)]

mod common;
mod repo_support;

use common::refusal;
use repo_support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn create_then_read_back_with_get_list_and_describe() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let before = head(&state, &alice.did);

    let created = create(
        &pds,
        &alice,
        json!({"collection": POST, "record": post("hello")}),
    )
    .await
    .unwrap();
    assert_eq!(created["validationStatus"], "valid");
    let uri = created["uri"].as_str().unwrap();
    let rkey = uri.rsplit('/').next().unwrap();
    assert!(atp_syntax::Tid::is_valid(rkey), "rkey {rkey} is a TID");
    assert_eq!(uri, format!("at://{}/{POST}/{rkey}", alice.did));
    // The commit answered is the new head, and it moved.
    let commit_cid = created["commit"]["cid"].as_str().unwrap();
    assert_eq!(commit_cid, head(&state, &alice.did));
    assert_ne!(commit_cid, before);

    // Read back by DID and by handle.
    for repo in [alice.did.as_str(), alice.handle.as_str()] {
        let got = get_at(&pds, repo, POST, rkey).await.unwrap();
        assert_eq!(got["uri"], created["uri"]);
        assert_eq!(got["cid"], created["cid"]);
        assert_eq!(got["value"], post("hello"));
    }
    // With the right CID, and with another one.
    let got = get(
        &pds,
        json!({"repo": alice.did, "collection": POST, "rkey": rkey, "cid": created["cid"]}),
    )
    .await
    .unwrap();
    assert_eq!(got["cid"], created["cid"]);
    let (status, name, message) = refusal(
        get(
            &pds,
            json!({"repo": alice.did, "collection": POST, "rkey": rkey, "cid": before}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    assert_eq!(message, format!("Could not locate record: {uri}"));

    // A record of an unknown collection, with data-model values.
    let link = created["cid"].as_str().unwrap();
    let thing = json!({
        "$type": THING,
        "link": {"$link": link},
        "bytes": {"$bytes": "aGVsbG8"},
        "n": 7,
    });
    let made = create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "self", "record": thing}),
    )
    .await
    .unwrap();
    assert_eq!(made["validationStatus"], "unknown");
    let got = get_at(&pds, &alice.did, THING, "self").await.unwrap();
    assert_eq!(got["value"], thing);

    // validate=false: no validationStatus in the answer.
    let made = create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "unchecked", "validate": false, "record": {"x": 1}}),
    )
    .await
    .unwrap();
    assert!(made.get("validationStatus").is_none());
    // A record without $type gets the collection.
    let got = get_at(&pds, &alice.did, THING, "unchecked").await.unwrap();
    assert_eq!(got["value"], json!({"$type": THING, "x": 1}));

    let listed = list(&pds, json!({"repo": alice.handle, "collection": POST})).await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);
    assert_eq!(listed["records"][0]["uri"], created["uri"]);
    assert_eq!(listed["records"][0]["value"], post("hello"));
    assert_eq!(listed["cursor"], rkey);

    let described: Value = pds
        .client()
        .query(
            "com.atproto.repo.describeRepo",
            &json!({"repo": alice.handle}),
        )
        .await
        .unwrap();
    assert_eq!(described["did"], alice.did);
    assert_eq!(described["handle"], alice.handle);
    assert_eq!(described["handleIsCorrect"], true);
    assert_eq!(described["collections"], json!([POST, THING]));
    assert_eq!(described["didDoc"]["id"], alice.did);

    // A handle the DID document does not claim is not correct.
    state
        .storage
        .accounts()
        .update_handle(&alice.did, "renamed.test")
        .unwrap();
    let described: Value = pds
        .client()
        .query("com.atproto.repo.describeRepo", &json!({"repo": alice.did}))
        .await
        .unwrap();
    assert_eq!(described["handle"], "renamed.test");
    assert_eq!(described["handleIsCorrect"], false);
    pds.stop().await;
}

#[tokio::test]
async fn list_records_pages_forwards_and_backwards() {
    let (pds, _state) = start().await;
    let alice = pds.create("alice").await;
    let writes = thing_creates(7, "k", |i| json!({"i": i}));
    apply(&pds, &alice, writes).await.unwrap();
    // A record in another collection is not listed.
    create_at(&pds, &alice, "com.example.other", "k3", json!({})).await;

    let page_through = |reverse: bool| {
        let pds = &pds;
        let did = alice.did.clone();
        async move {
            let mut keys = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let mut params =
                    json!({"repo": did, "collection": THING, "limit": 3, "reverse": reverse});
                if let Some(cursor) = &cursor {
                    params["cursor"] = json!(cursor);
                }
                let page = list(pds, params).await;
                let records = page["records"].as_array().unwrap().clone();
                pages += 1;
                if records.is_empty() {
                    assert!(page.get("cursor").is_none());
                    break;
                }
                assert!(records.len() <= 3);
                for record in &records {
                    let uri = record["uri"].as_str().unwrap();
                    keys.push(uri.rsplit('/').next().unwrap().to_owned());
                    assert_eq!(record["value"]["$type"], THING);
                }
                assert_eq!(page["cursor"].as_str(), keys.last().map(String::as_str));
                cursor = page["cursor"].as_str().map(str::to_owned);
            }
            (keys, pages)
        }
    };
    let (forwards, pages) = page_through(false).await;
    assert_eq!(forwards, ["k6", "k5", "k4", "k3", "k2", "k1", "k0"]);
    assert_eq!(pages, 4);
    let (backwards, _) = page_through(true).await;
    assert_eq!(backwards, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);

    // Out-of-range limits are refused.
    for limit in [0, 101] {
        let (status, _, _) = refusal(
            pds.client()
                .query::<_, Value>(
                    "com.atproto.repo.listRecords",
                    &json!({"repo": alice.did, "collection": THING, "limit": limit}),
                )
                .await,
        );
        assert_eq!(status, 400, "limit {limit}");
    }
    pds.stop().await;
}

/// The repository after writes, exported from the store, passes the
/// reference's `verifyRepoCar` with the account's DID and key, which finds
/// exactly the records of our index.
#[tokio::test]
async fn reference_verifies_the_exported_repository() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    for i in 0..30 {
        create(
            &pds,
            &alice,
            json!({"collection": POST, "record": post(&format!("post {i}"))}),
        )
        .await
        .unwrap();
    }
    let writes = thing_creates(10, "t", |i| json!({"i": i, "b": {"$bytes": "AAEC"}}));
    apply(&pds, &alice, writes).await.unwrap();
    delete(&pds, &alice, THING, "t3").await.unwrap();

    let key = store(&state, &alice.did).signing_key().unwrap();
    let car = export(&state, &alice.did);
    let answer = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({"op": "verify-repo", "car": hex::encode(&car), "did": alice.did, "didKey": key.did_key()}),
    );
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        answer["commitCid"].as_str().unwrap(),
        head(&state, &alice.did)
    );
    let theirs = answered_records(&answer);
    assert_eq!(theirs.len(), 39);
    assert_eq!(theirs, indexed(&state, &alice.did));
    pds.stop().await;
}

/// The official client (@atproto/api) uses every record method against
/// this PDS; it checks each answer against the lexicons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_client_uses_the_record_methods() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let input =
        json!({"service": pds.url, "identifier": alice.handle, "password": common::PASSWORD});
    let seen =
        tokio::task::spawn_blocking(move || atp_test_vectors::run_node("repo-client.mjs", &input))
            .await
            .unwrap();
    assert!(seen.get("error").is_none(), "{seen}");

    let post_uri = seen["post"]["uri"].as_str().unwrap();
    assert!(post_uri.starts_with(&format!("at://{}/app.bsky.feed.post/", alice.did)));
    assert_eq!(seen["getRecord"]["uri"], seen["post"]["uri"]);
    assert_eq!(seen["getRecord"]["cid"], seen["post"]["cid"]);
    assert_eq!(
        seen["getRecord"]["value"]["text"],
        "hello from the reference client"
    );
    assert_eq!(seen["putRecord"]["validationStatus"], "valid");
    let again = &seen["putAgain"];
    assert_eq!(again["refused"], true);
    assert_eq!(again["error"], "InvalidSwap");
    assert_eq!(again["invalidSwapClass"], true);
    assert_eq!(
        again["message"],
        format!(
            "Record was at {}",
            seen["putRecord"]["cid"].as_str().unwrap()
        )
    );
    let results = seen["applyWrites"]["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[2]["validationStatus"], "valid");
    let stale = &seen["staleSwap"];
    assert_eq!(
        (
            &stale["status"],
            &stale["error"],
            &stale["invalidSwapClass"]
        ),
        (&json!(400), &json!("InvalidSwap"), &json!(true))
    );
    let pages = seen["listRecords"].as_array().unwrap();
    assert_eq!(
        pages[0]["records"][0]["uri"],
        format!("at://{}/{THING}/b", alice.did)
    );
    assert_eq!(
        pages[1]["records"][0]["uri"],
        format!("at://{}/{THING}/a", alice.did)
    );
    assert_eq!(
        seen["deleteRecord"]["commit"]["cid"].as_str().unwrap(),
        head(&state, &alice.did)
    );
    assert_eq!(seen["deleteAgain"], json!({}));
    assert_eq!(
        (&seen["missing"]["status"], &seen["missing"]["error"]),
        (&json!(400), &json!("RecordNotFound"))
    );
    // The export read through sync.getRepo and imported back: the record
    // written in between is gone, the head is the exported commit.
    assert_eq!(
        (
            &seen["afterImport"]["refused"],
            &seen["afterImport"]["error"]
        ),
        (&json!(true), &json!("RecordNotFound"))
    );
    let car = hex::decode(seen["importedCar"].as_str().unwrap()).unwrap();
    let (roots, _) = atp_repo_mst::car::read_car(&car).unwrap();
    assert_eq!(roots[0].to_string(), head(&state, &alice.did));
    assert_eq!(seen["describeRepo"]["did"], alice.did);
    assert_eq!(seen["describeRepo"]["handleIsCorrect"], true);
    assert_eq!(
        seen["describeRepo"]["collections"],
        json!(["app.bsky.actor.profile", "app.bsky.feed.post", THING])
    );
    pds.stop().await;
}
