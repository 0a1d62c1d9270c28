//! `com.atproto.repo` record methods over loopback HTTP: writes, reads,
//! paging, swaps, refusals, imports, and the repository checked by the
//! reference implementation.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::{Algorithm, Ipld, SigningKey};
use atp_pds::actor_store::ActorStore;
use atp_pds::http::PdsState;
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::import::export_repo_car;
use atp_repo_mst::repo::Repo;
use common::{refusal, Pds, TestAccount};
use serde_json::{json, Value};

const POST: &str = "app.bsky.feed.post";
const THING: &str = "com.example.thing";

async fn start() -> (Pds, PdsState) {
    let mut captured = None;
    let pds = Pds::start_with(|state| captured = Some(state.clone())).await;
    (pds, captured.unwrap())
}

fn post(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"})
}

async fn create(pds: &Pds, account: &TestAccount, input: Value) -> Result<Value, atp_xrpc::Error> {
    let mut input = input;
    if input.get("repo").is_none() {
        input["repo"] = json!(account.did);
    }
    pds.bearer(&account.access_jwt)
        .procedure("com.atproto.repo.createRecord", &(), &input)
        .await
}

async fn call(
    pds: &Pds,
    account: &TestAccount,
    nsid: &str,
    input: Value,
) -> Result<Value, atp_xrpc::Error> {
    pds.bearer(&account.access_jwt)
        .procedure(nsid, &(), &input)
        .await
}

async fn get(pds: &Pds, params: Value) -> Result<Value, atp_xrpc::Error> {
    pds.client()
        .query("com.atproto.repo.getRecord", &params)
        .await
}

async fn list(pds: &Pds, params: Value) -> Value {
    pds.client()
        .query("com.atproto.repo.listRecords", &params)
        .await
        .unwrap()
}

fn store(state: &PdsState, did: &str) -> Arc<ActorStore> {
    state.storage.actors().open(did).unwrap()
}

fn head(state: &PdsState, did: &str) -> String {
    store(state, did).root().unwrap().unwrap().cid.to_string()
}

/// The repository as a CAR, exported from the account's stored blocks.
fn export(state: &PdsState, did: &str) -> Vec<u8> {
    let store = store(state, did);
    let root = store.root().unwrap().unwrap();
    export_repo_car(&store.block_store(), root.cid, Vec::new()).unwrap()
}

/// Every record in the index, as (path, CID), sorted by path.
fn indexed(state: &PdsState, did: &str) -> Vec<(String, String)> {
    let store = store(state, did);
    let mut out = Vec::new();
    for collection in store.collections().unwrap() {
        for entry in store.list_records(&collection, 10_000, None, true).unwrap() {
            out.push((
                format!("{}/{}", entry.collection, entry.rkey),
                entry.cid.to_string(),
            ));
        }
    }
    out.sort();
    out
}

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
        let got = get(
            &pds,
            json!({"repo": repo, "collection": POST, "rkey": rkey}),
        )
        .await
        .unwrap();
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
    let got = get(
        &pds,
        json!({"repo": alice.did, "collection": THING, "rkey": "self"}),
    )
    .await
    .unwrap();
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
    let got = get(
        &pds,
        json!({"repo": alice.did, "collection": THING, "rkey": "unchecked"}),
    )
    .await
    .unwrap();
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
async fn write_refusals() {
    let (pds, _state) = start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;

    // Into another account's repo, by DID or handle.
    for repo in [bob.did.as_str(), bob.handle.as_str()] {
        let (status, name, message) = refusal(
            create(
                &pds,
                &alice,
                json!({"repo": repo, "collection": POST, "record": post("x")}),
            )
            .await,
        );
        assert_eq!(
            (status, name.as_str(), message.as_str()),
            (401, "AuthenticationRequired", "Authentication Required")
        );
    }
    // An unknown repo.
    let (status, name, _) = refusal(
        create(
            &pds,
            &alice,
            json!({"repo": "nobody.test", "collection": POST, "record": post("x")}),
        )
        .await,
    );
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
    let (status, name, message) = refusal(
        create(
            &pds,
            &alice,
            json!({"collection": THING, "record": post("x")}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(
        message,
        format!("Invalid $type: expected {THING}, got {POST}")
    );
    // Invalid record keys and collections.
    for rkey in ["a/b", "..", "has space"] {
        let (status, name, _) = refusal(
            create(
                &pds,
                &alice,
                json!({"collection": THING, "rkey": rkey, "record": {}}),
            )
            .await,
        );
        assert_eq!((status, name.as_str()), (400, "InvalidRequest"), "{rkey}");
    }
    for collection in ["notannsid", "com.example.", "a..b"] {
        let (status, name, _) = refusal(
            create(
                &pds,
                &alice,
                json!({"collection": collection, "record": {}}),
            )
            .await,
        );
        assert_eq!(
            (status, name.as_str()),
            (400, "InvalidRequest"),
            "{collection}"
        );
    }
    // A post's key must be a TID; an invalid post is refused.
    let (status, _, message) = refusal(
        create(
            &pds,
            &alice,
            json!({"collection": POST, "rkey": "self", "record": post("x")}),
        )
        .await,
    );
    assert_eq!(status, 400);
    assert!(
        message.starts_with("Invalid record key for app.bsky.feed.post"),
        "{message}"
    );
    let (status, _, message) = refusal(
        create(
            &pds,
            &alice,
            json!({"collection": POST, "record": {"$type": POST, "text": 1}}),
        )
        .await,
    );
    assert_eq!(status, 400);
    assert!(
        message.starts_with("Invalid app.bsky.feed.post record"),
        "{message}"
    );
    // validate=true with an unknown schema.
    let (status, _, message) = refusal(
        create(
            &pds,
            &alice,
            json!({"collection": THING, "validate": true, "record": {}}),
        )
        .await,
    );
    assert_eq!(
        (status, message.as_str()),
        (400, "Unknown lexicon type: com.example.thing")
    );
    // A second create at the same key.
    create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "one", "record": {}}),
    )
    .await
    .unwrap();
    let (status, _, _) = refusal(
        create(
            &pds,
            &alice,
            json!({"collection": THING, "rkey": "one", "record": {}}),
        )
        .await,
    );
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
    let (status, name, _) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.createRecord",
            json!({"repo": alice.did, "record": {}}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    let (status, name, _) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.createRecord",
            json!({"repo": alice.did, "collection": THING, "record": "a string"}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    let (status, name, _) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.createRecord",
            json!({"repo": alice.did, "collection": THING, "record": {"f": 1.5}}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    // Too large a body.
    let big = "x".repeat(1_100_000);
    let (status, _, _) = refusal(
        create(
            &pds,
            &alice,
            json!({"collection": THING, "record": {"big": big}}),
        )
        .await,
    );
    assert_eq!(status, 413);
    pds.stop().await;
}

#[tokio::test]
async fn deactivated_and_taken_down_accounts_cannot_write() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let made = create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "a", "record": {}}),
    )
    .await
    .unwrap();
    assert!(made["uri"].is_string());

    state
        .storage
        .accounts()
        .deactivate(&alice.did, None)
        .unwrap();
    let (status, name, message) =
        refusal(create(&pds, &alice, json!({"collection": THING, "record": {}})).await);
    assert_eq!(
        (status, name.as_str(), message.as_str()),
        (401, "AccountDeactivated", "Account is deactivated")
    );
    // Reads treat it as gone.
    let (status, _, message) = refusal(
        get(
            &pds,
            json!({"repo": alice.did, "collection": THING, "rkey": "a"}),
        )
        .await,
    );
    assert_eq!((status, message.as_str()), (400, "Could not locate record"));
    let (status, name, _) = refusal(
        pds.client()
            .query::<_, Value>("com.atproto.repo.describeRepo", &json!({"repo": alice.did}))
            .await,
    );
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
    let (status, name, _) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.deleteRecord",
            json!({"repo": alice.did, "collection": THING, "rkey": "a"}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (401, "AccountTakedown"));
    let (status, name, _) = refusal(
        pds.client()
            .query::<_, Value>("com.atproto.repo.describeRepo", &json!({"repo": alice.did}))
            .await,
    );
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
    let got = get(
        &pds,
        json!({"repo": alice.did, "collection": THING, "rkey": "p"}),
    )
    .await
    .unwrap();
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
    let made = create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "d", "record": {}}),
    )
    .await
    .unwrap();
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

    let (status, name, message) = refusal(
        get(
            &pds,
            json!({"repo": alice.did, "collection": THING, "rkey": "d"}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    assert_eq!(
        message,
        format!("Could not locate record: at://{}/{THING}/d", alice.did)
    );
    let (status, _, message) = refusal(
        get(
            &pds,
            json!({"repo": "nobody.test", "collection": THING, "rkey": "d"}),
        )
        .await,
    );
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
    let (status, name, _) = refusal(
        pds.client()
            .query::<_, Value>(
                "com.atproto.repo.describeRepo",
                &json!({"repo": "nobody.test"}),
            )
            .await,
    );
    assert_eq!((status, name.as_str()), (400, "RepoNotFound"));
    let listed = list(&pds, json!({"repo": alice.did, "collection": THING})).await;
    assert_eq!(listed, json!({"records": []}));
    pds.stop().await;
}

#[tokio::test]
async fn list_records_pages_forwards_and_backwards() {
    let (pds, _state) = start().await;
    let alice = pds.create("alice").await;
    let writes: Vec<Value> = (0..7)
        .map(|i| {
            json!({"$type": "com.atproto.repo.applyWrites#create", "collection": THING,
                   "rkey": format!("k{i}"), "value": {"i": i}})
        })
        .collect();
    call(
        &pds,
        &alice,
        "com.atproto.repo.applyWrites",
        json!({"repo": alice.did, "writes": writes}),
    )
    .await
    .unwrap();
    // A record in another collection is not listed.
    create(
        &pds,
        &alice,
        json!({"collection": "com.example.other", "rkey": "k3", "record": {}}),
    )
    .await
    .unwrap();

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

#[tokio::test]
async fn apply_writes_is_one_atomic_commit() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let a = create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "a", "record": {"v": "a"}}),
    )
    .await
    .unwrap();
    create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "b", "record": {"v": "b"}}),
    )
    .await
    .unwrap();
    let before = store(&state, &alice.did).root().unwrap().unwrap();

    let applied = call(
        &pds,
        &alice,
        "com.atproto.repo.applyWrites",
        json!({"repo": alice.did, "swapCommit": before.cid.to_string(), "writes": [
            {"$type": "com.atproto.repo.applyWrites#create", "collection": THING, "rkey": "c", "value": {"v": "c"}},
            {"$type": "com.atproto.repo.applyWrites#update", "collection": THING, "rkey": "a", "value": {"v": "a2"}},
            {"$type": "com.atproto.repo.applyWrites#delete", "collection": THING, "rkey": "b"},
            {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post("batch")},
        ]}),
    )
    .await
    .unwrap();
    let results = applied["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(
        results[0]["$type"],
        "com.atproto.repo.applyWrites#createResult"
    );
    assert_eq!(results[0]["uri"], format!("at://{}/{THING}/c", alice.did));
    assert_eq!(results[0]["validationStatus"], "unknown");
    assert_eq!(
        results[1]["$type"],
        "com.atproto.repo.applyWrites#updateResult"
    );
    assert_ne!(results[1]["cid"], a["cid"]);
    assert_eq!(
        results[2],
        json!({"$type": "com.atproto.repo.applyWrites#deleteResult"})
    );
    assert_eq!(results[3]["validationStatus"], "valid");

    // One commit right after the previous head: the stored commit data
    // has the previous commit as parent and the three net changes.
    let after = store(&state, &alice.did).root().unwrap().unwrap();
    assert_eq!(applied["commit"]["cid"], after.cid.to_string());
    assert_eq!(applied["commit"]["rev"], after.rev);
    assert!(after.rev > before.rev);
    let blocks = store(&state, &alice.did).block_store();
    let old = Repo::load(&blocks, before.cid).unwrap();
    let new = Repo::load(&blocks, after.cid).unwrap();
    let diff = atp_repo_mst::diff::mst_diff(
        &blocks,
        Some(old.head().unwrap().1.data),
        new.head().unwrap().1.data,
    )
    .unwrap();
    assert_eq!(diff.record_ops.len(), 4);
    let keys: Vec<String> = indexed(&state, &alice.did)
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(keys.contains(&format!("{THING}/a")));
    assert!(keys.contains(&format!("{THING}/c")));
    assert!(!keys.contains(&format!("{THING}/b")));

    // A batch with one bad write changes nothing.
    let (status, _, _) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.applyWrites",
            json!({"repo": alice.did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#create", "collection": THING, "rkey": "d", "value": {}},
                {"$type": "com.atproto.repo.applyWrites#update", "collection": THING, "rkey": "missing", "value": {}},
            ]}),
        )
        .await,
    );
    assert_eq!(status, 400);
    assert_eq!(store(&state, &alice.did).root().unwrap().unwrap(), after);
    let (status, name, _) = refusal(
        get(
            &pds,
            json!({"repo": alice.did, "collection": THING, "rkey": "d"}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    // A stale swapCommit.
    let (status, name, message) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.applyWrites",
            json!({"repo": alice.did, "swapCommit": before.cid.to_string(), "writes": []}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    assert_eq!(message, format!("Commit was at {}", after.cid));
    // More than 200 writes.
    let writes: Vec<Value> = (0..201)
        .map(|i| json!({"$type": "com.atproto.repo.applyWrites#delete", "collection": THING, "rkey": format!("x{i}")}))
        .collect();
    let (status, _, message) = refusal(
        call(
            &pds,
            &alice,
            "com.atproto.repo.applyWrites",
            json!({"repo": alice.did, "writes": writes}),
        )
        .await,
    );
    assert_eq!(
        (status, message.as_str()),
        (400, "Too many writes. Max: 200")
    );
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
    let writes: Vec<Value> = (0..10)
        .map(|i| {
            json!({"$type": "com.atproto.repo.applyWrites#create", "collection": THING,
                   "rkey": format!("t{i}"), "value": {"i": i, "b": {"$bytes": "AAEC"}}})
        })
        .collect();
    call(
        &pds,
        &alice,
        "com.atproto.repo.applyWrites",
        json!({"repo": alice.did, "writes": writes}),
    )
    .await
    .unwrap();
    call(
        &pds,
        &alice,
        "com.atproto.repo.deleteRecord",
        json!({"repo": alice.did, "collection": THING, "rkey": "t3"}),
    )
    .await
    .unwrap();

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
    let theirs: Vec<(String, String)> = answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(theirs.len(), 39);
    assert_eq!(theirs, indexed(&state, &alice.did));
    pds.stop().await;
}

async fn import(pds: &Pds, account: &TestAccount, car: Vec<u8>) -> Result<(), atp_xrpc::Error> {
    pds.bearer(&account.access_jwt)
        .procedure_bytes(
            "com.atproto.repo.importRepo",
            &(),
            "application/vnd.ipld.car",
            car.into(),
        )
        .await
        .map(|_| ())
}

/// Records listed through the XRPC methods: (path, CID), sorted.
async fn listed(pds: &Pds, did: &str) -> Vec<(String, String)> {
    let described: Value = pds
        .client()
        .query("com.atproto.repo.describeRepo", &json!({"repo": did}))
        .await
        .unwrap();
    let mut out = Vec::new();
    for collection in described["collections"].as_array().unwrap() {
        let page = list(
            pds,
            json!({"repo": did, "collection": collection, "limit": 100}),
        )
        .await;
        for record in page["records"].as_array().unwrap() {
            let uri = record["uri"].as_str().unwrap();
            let path = uri.splitn(4, '/').nth(3).unwrap().to_owned();
            out.push((path, record["cid"].as_str().unwrap().to_owned()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn import_repo_replaces_the_repository() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let key = store(&state, &alice.did).signing_key().unwrap();

    // 1. A repository built here with the account's DID and key.
    let blocks = MemoryBlockStore::new();
    let mut repo = Repo::create(&blocks, &alice.did).unwrap();
    let mut expected = Vec::new();
    for i in 0..12 {
        let record = Ipld::Map(BTreeMap::from([
            ("$type".to_owned(), Ipld::String(THING.to_owned())),
            ("i".to_owned(), Ipld::Integer(i)),
        ]));
        let rkey = format!("r{i:02}");
        let cid = repo.create_record(THING, &rkey, &record).unwrap();
        expected.push((format!("{THING}/{rkey}"), cid.to_string()));
    }
    let rev = atp_syntax::TidClock::global().next();
    let commit = repo.commit(&key, rev.as_str()).unwrap();
    let car = export_repo_car(&blocks, commit.cid, Vec::new()).unwrap();
    import(&pds, &alice, car).await.unwrap();
    assert_eq!(head(&state, &alice.did), commit.cid.to_string());
    assert_eq!(listed(&pds, &alice.did).await, expected);
    // Writes continue on top of the imported head.
    let made = create(
        &pds,
        &alice,
        json!({"collection": THING, "rkey": "after", "record": {}}),
    )
    .await
    .unwrap();
    assert!(made["commit"]["rev"].as_str().unwrap() > rev.as_str());

    // 2. A snapshot exported from the PDS, imported back after more writes:
    // the repository is the snapshot again.
    let snapshot = export(&state, &alice.did);
    let snapshot_head = head(&state, &alice.did);
    let snapshot_records = listed(&pds, &alice.did).await;
    for rkey in ["x1", "x2"] {
        create(
            &pds,
            &alice,
            json!({"collection": THING, "rkey": rkey, "record": {}}),
        )
        .await
        .unwrap();
    }
    call(
        &pds,
        &alice,
        "com.atproto.repo.deleteRecord",
        json!({"repo": alice.did, "collection": THING, "rkey": "r00"}),
    )
    .await
    .unwrap();
    assert_ne!(listed(&pds, &alice.did).await, snapshot_records);
    import(&pds, &alice, snapshot).await.unwrap();
    assert_eq!(head(&state, &alice.did), snapshot_head);
    assert_eq!(listed(&pds, &alice.did).await, snapshot_records);
    assert_eq!(indexed(&state, &alice.did), snapshot_records);

    // 3. A repository built by the reference implementation with the
    // account's key.
    let generated = atp_test_vectors::run_node(
        "repo-car.mjs",
        &json!({
            "op": "generate",
            "did": alice.did,
            "privateKeyHex": key.to_hex(),
            "creates": (0..20).map(|i| json!({"collection": THING, "rkey": format!("n{i}"), "record": {"$type": THING, "n": i}})).collect::<Vec<_>>(),
            "updates": [{"collection": THING, "rkey": "n1", "record": {"$type": THING, "n": 100}}],
            "deletes": [{"collection": THING, "rkey": "n2"}],
        }),
    );
    assert!(generated.get("error").is_none(), "{generated}");
    let car = hex::decode(generated["car"].as_str().unwrap()).unwrap();
    import(&pds, &alice, car).await.unwrap();
    assert_eq!(
        head(&state, &alice.did),
        generated["commitCid"].as_str().unwrap()
    );
    let theirs: Vec<(String, String)> = generated["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(theirs.len(), 19);
    assert_eq!(listed(&pds, &alice.did).await, theirs);

    // 4. Alice's records, read block by block from her store, in a
    // repository built for bob with his key: imported into bob's account,
    // they read back with the same CIDs.
    let alice_records = indexed(&state, &alice.did);
    let alice_store = store(&state, &alice.did);
    let bob_key = store(&state, &bob.did).signing_key().unwrap();
    let blocks = MemoryBlockStore::new();
    let mut repo = Repo::create(&blocks, &bob.did).unwrap();
    for (path, cid) in &alice_records {
        let (collection, rkey) = path.split_once('/').unwrap();
        let (entry, bytes) = alice_store.get_record(collection, rkey).unwrap().unwrap();
        assert_eq!(entry.cid.to_string(), *cid);
        let record = atp_crypto::dagcbor::decode_ipld(&bytes).unwrap();
        let copied = repo.create_record(collection, rkey, &record).unwrap();
        assert_eq!(copied.to_string(), *cid);
    }
    let commit = repo
        .commit(&bob_key, atp_syntax::TidClock::global().next().as_str())
        .unwrap();
    let car = export_repo_car(&blocks, commit.cid, Vec::new()).unwrap();
    import(&pds, &bob, car).await.unwrap();
    assert_eq!(listed(&pds, &bob.did).await, alice_records);
    assert_eq!(head(&state, &bob.did), commit.cid.to_string());

    // Refusals: bob's repository into alice's account, a repository signed
    // with another key, garbage, and no credentials.
    let alice_head = head(&state, &alice.did);
    let (status, _, message) = refusal(import(&pds, &alice, export(&state, &bob.did)).await);
    assert_eq!(status, 400, "{message}");
    let stranger = SigningKey::generate(Algorithm::K256);
    let blocks = MemoryBlockStore::new();
    let mut repo = Repo::create(&blocks, &alice.did).unwrap();
    let forged = repo
        .commit(&stranger, atp_syntax::TidClock::global().next().as_str())
        .unwrap();
    let car = export_repo_car(&blocks, forged.cid, Vec::new()).unwrap();
    let (status, _, _) = refusal(import(&pds, &alice, car).await);
    assert_eq!(status, 400);
    let (status, _, _) = refusal(import(&pds, &alice, b"not a car".to_vec()).await);
    assert_eq!(status, 400);
    let (status, _, _) = refusal(
        pds.client()
            .procedure_bytes(
                "com.atproto.repo.importRepo",
                &(),
                "application/vnd.ipld.car",
                export(&state, &alice.did).into(),
            )
            .await,
    );
    assert_eq!(status, 401);
    assert_eq!(head(&state, &alice.did), alice_head);
    pds.stop().await;
}

#[tokio::test]
async fn import_size_limit() {
    let mut captured = None;
    let pds = Pds::start_with(|state| {
        state.blob_upload_limit = 2_000;
        captured = Some(state.clone());
    })
    .await;
    let state = captured.unwrap();
    let alice = pds.create("alice").await;
    let writes: Vec<Value> = (0..40)
        .map(|i| {
            json!({"$type": "com.atproto.repo.applyWrites#create", "collection": THING,
                   "rkey": format!("t{i}"), "value": {"i": i}})
        })
        .collect();
    call(
        &pds,
        &alice,
        "com.atproto.repo.applyWrites",
        json!({"repo": alice.did, "writes": writes}),
    )
    .await
    .unwrap();
    let car = export(&state, &alice.did);
    assert!(car.len() > 2_000);
    let (status, _, _) = refusal(import(&pds, &alice, car).await);
    assert_eq!(status, 413);
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
    let (status, name, _) = refusal(
        get(
            &pds,
            json!({"repo": alice.did, "collection": FOLLOW, "rkey": rkey_of(&first)}),
        )
        .await,
    );
    assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    let listed = list(&pds, json!({"repo": alice.did, "collection": FOLLOW})).await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);
    assert_eq!(listed["records"][0]["uri"], second["uri"]);
    // Both changes are one commit on the previous head.
    let after = store(&state, &alice.did).root().unwrap().unwrap();
    let blocks = store(&state, &alice.did).block_store();
    let diff = atp_repo_mst::diff::mst_diff(
        &blocks,
        Some(
            Repo::load(&blocks, before.cid)
                .unwrap()
                .head()
                .unwrap()
                .1
                .data,
        ),
        Repo::load(&blocks, after.cid)
            .unwrap()
            .head()
            .unwrap()
            .1
            .data,
    )
    .unwrap();
    assert_eq!(diff.record_ops.len(), 2);

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
        let got = get(
            &pds,
            json!({"repo": alice.did, "collection": THING, "rkey": rkey}),
        )
        .await
        .unwrap();
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
            refusal(create(&pds, &alice, json!({"collection": THING, "record": record})).await);
        assert_eq!(status, 400, "{}", case["note"]);
    }
    atp_test_vectors::report("data-model/data-model-invalid.json", invalid.len());
    pds.stop().await;
}

/// An account moving in imports a repository signed by its previous
/// server's key, which its DID document lists: accepted. A key the
/// document does not list is refused.
#[tokio::test]
async fn import_accepts_the_key_the_did_document_lists() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let previous_server_key = SigningKey::generate(Algorithm::K256);
    let build = |key: &SigningKey| {
        let blocks = MemoryBlockStore::new();
        let mut repo = Repo::create(&blocks, &alice.did).unwrap();
        let record = Ipld::Map(BTreeMap::from([(
            "$type".to_owned(),
            Ipld::String(THING.to_owned()),
        )]));
        repo.create_record(THING, "moved", &record).unwrap();
        let commit = repo
            .commit(key, atp_syntax::TidClock::global().next().as_str())
            .unwrap();
        (
            commit.cid,
            export_repo_car(&blocks, commit.cid, Vec::new()).unwrap(),
        )
    };
    let (_, car) = build(&previous_server_key);
    let (status, _, _) = refusal(import(&pds, &alice, car.clone()).await);
    assert_eq!(status, 400);

    // The document now lists that key (as during a migration, before the
    // switch to this server's key).
    let directory = pds.directory();
    let last = directory.last_op(&alice.did).await.unwrap();
    let update = atp_did_plc::UpdateBuilder::from_last(&last)
        .unwrap()
        .signing_key(previous_server_key.did_key())
        .sign(&state.keys.plc_rotation_key)
        .unwrap();
    directory.submit(&alice.did, &update).await.unwrap();
    let (commit_cid, car) = build(&previous_server_key);
    import(&pds, &alice, car).await.unwrap();
    assert_eq!(head(&state, &alice.did), commit_cid.to_string());
    // This server's own key still works too.
    let own = store(&state, &alice.did).signing_key().unwrap();
    let (commit_cid, car) = build(&own);
    import(&pds, &alice, car).await.unwrap();
    assert_eq!(head(&state, &alice.did), commit_cid.to_string());
    pds.stop().await;
}
