//! `com.atproto.repo.importRepo` over loopback HTTP: repositories built
//! here, by the reference and exported from the PDS replace the account's
//! repository; refusals, the size limit and the keys the DID document lists.
#![allow(clippy::unwrap_used)]

mod common;
mod repo_support;

use atp_crypto::{Algorithm, Ipld, SigningKey};
use common::{refusal, Pds};
use repo_support::*;
use serde_json::json;

#[tokio::test]
async fn import_repo_replaces_the_repository() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let key = store(&state, &alice.did).signing_key().unwrap();

    // 1. A repository built here with the account's DID and key.
    let mut expected = Vec::new();
    let (commit_cid, rev, car) = build_repo(&alice.did, &key, |repo| {
        for i in 0..12 {
            let record = thing_record([("i", Ipld::Integer(i))]);
            let rkey = format!("r{i:02}");
            let cid = repo.create_record(THING, &rkey, &record).unwrap();
            expected.push((format!("{THING}/{rkey}"), cid.to_string()));
        }
    });
    import(&pds, &alice, car).await.unwrap();
    assert_eq!(head(&state, &alice.did), commit_cid.to_string());
    assert_eq!(listed(&pds, &alice.did).await, expected);
    // Writes continue on top of the imported head.
    let made = create_at(&pds, &alice, THING, "after", json!({})).await;
    assert!(made["commit"]["rev"].as_str().unwrap() > rev.as_str());

    // 2. A snapshot exported from the PDS, imported back after more writes:
    // the repository is the snapshot again.
    let snapshot = export(&state, &alice.did);
    let snapshot_head = head(&state, &alice.did);
    let snapshot_records = listed(&pds, &alice.did).await;
    for rkey in ["x1", "x2"] {
        create_at(&pds, &alice, THING, rkey, json!({})).await;
    }
    delete(&pds, &alice, THING, "r00").await.unwrap();
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
    let theirs = answered_records(&generated);
    assert_eq!(theirs.len(), 19);
    assert_eq!(listed(&pds, &alice.did).await, theirs);

    // 4. Alice's records, read block by block from her store, in a
    // repository built for bob with his key: imported into bob's account,
    // they read back with the same CIDs.
    let alice_records = indexed(&state, &alice.did);
    let alice_store = store(&state, &alice.did);
    let bob_key = store(&state, &bob.did).signing_key().unwrap();
    let (commit_cid, _, car) = build_repo(&bob.did, &bob_key, |repo| {
        for (path, cid) in &alice_records {
            let (collection, rkey) = path.split_once('/').unwrap();
            let (entry, bytes) = alice_store.get_record(collection, rkey).unwrap().unwrap();
            assert_eq!(entry.cid.to_string(), *cid);
            let record = atp_crypto::dagcbor::decode_ipld(&bytes).unwrap();
            let copied = repo.create_record(collection, rkey, &record).unwrap();
            assert_eq!(copied.to_string(), *cid);
        }
    });
    import(&pds, &bob, car).await.unwrap();
    assert_eq!(listed(&pds, &bob.did).await, alice_records);
    assert_eq!(head(&state, &bob.did), commit_cid.to_string());

    // Refusals: bob's repository into alice's account, a repository signed
    // with another key, garbage, and no credentials.
    let alice_head = head(&state, &alice.did);
    let (status, _, message) = refusal(import(&pds, &alice, export(&state, &bob.did)).await);
    assert_eq!(status, 400, "{message}");
    let stranger = SigningKey::generate(Algorithm::K256);
    let (_, _, car) = build_repo(&alice.did, &stranger, |_| {});
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
    let (pds, state) = Pds::start_with_state(|state| state.blob_upload_limit = 2_000).await;
    let alice = pds.create("alice").await;
    apply(&pds, &alice, thing_creates(40, "t", |i| json!({"i": i})))
        .await
        .unwrap();
    let car = export(&state, &alice.did);
    assert!(car.len() > 2_000);
    let (status, _, _) = refusal(import(&pds, &alice, car).await);
    assert_eq!(status, 413);
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
        let (commit_cid, _, car) = build_repo(&alice.did, key, |repo| {
            repo.create_record(THING, "moved", &thing_record([]))
                .unwrap();
        });
        (commit_cid, car)
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
