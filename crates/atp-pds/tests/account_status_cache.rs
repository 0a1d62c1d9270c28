//! The account cache (accounts kept in memory by DID so that authenticated
//! requests do not read the account row each time) never hides a change:
//! a takedown, a deactivation, a deletion or a handle change takes effect
//! for the very next request, including for an account whose row was
//! just cached by the requests before.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use atp_pds::account::{AccountStore, NewAccount};
use common::{query, refusal, refused_query, repo_ref, Pds, TestAccount};
use serde_json::{json, Value};

/// `createRecord` of a post into `account`'s repository.
async fn create_post(
    pds: &Pds,
    account: &TestAccount,
    text: &str,
) -> Result<Value, atp_xrpc::Error> {
    pds.bearer(&account.access_jwt)
        .procedure::<_, _, Value>(
            "com.atproto.repo.createRecord",
            &(),
            &json!({
                "repo": account.did,
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": text,
                    "createdAt": "2024-01-01T00:00:00.000Z",
                },
            }),
        )
        .await
}

/// `getRecord` of the record at `uri` (`at://did/collection/rkey`).
async fn get_record(pds: &Pds, uri: &str) -> Result<Value, atp_xrpc::Error> {
    let parts: Vec<&str> = uri.trim_start_matches("at://").split('/').collect();
    pds.client()
        .query::<_, Value>(
            "com.atproto.repo.getRecord",
            &json!({ "repo": parts[0], "collection": parts[1], "rkey": parts[2] }),
        )
        .await
}

#[tokio::test]
async fn a_takedown_refuses_the_next_write_and_read_at_once() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    // Several writes and reads, so alice's account is cached.
    let mut uri = String::new();
    for i in 0..3 {
        uri = create_post(&pds, &alice, &format!("post {i}"))
            .await
            .unwrap()["uri"]
            .as_str()
            .unwrap()
            .to_owned();
        get_record(&pds, &uri).await.unwrap();
    }
    let subject = repo_ref(&alice.did);
    pds.update_subject_status(
        &json!({ "subject": subject, "takedown": { "applied": true, "ref": "case-1" } }),
    )
    .await;
    let (status, error, message) = refusal(create_post(&pds, &alice, "after").await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (401, "AccountTakedown", "Account has been taken down")
    );
    let (status, error, _) = refusal(get_record(&pds, &uri).await);
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    let (status, _, message) = refused_query(
        &pds.client(),
        "com.atproto.repo.listRecords",
        &json!({ "repo": alice.did, "collection": "app.bsky.feed.post" }),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(message, format!("Could not find repo: {}", alice.did));

    // Lifted: writes and reads work again at once.
    pds.update_subject_status(&json!({ "subject": subject, "takedown": { "applied": false } }))
        .await;
    create_post(&pds, &alice, "back").await.unwrap();
    get_record(&pds, &uri).await.unwrap();
    pds.stop().await;
}

#[tokio::test]
async fn deactivation_by_the_operator_and_by_the_owner_take_effect_at_once() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    create_post(&pds, &alice, "one").await.unwrap();
    let subject = repo_ref(&alice.did);

    pds.update_subject_status(&json!({ "subject": subject, "deactivated": { "applied": true } }))
        .await;
    let (status, error, _) = refusal(create_post(&pds, &alice, "two").await);
    assert_eq!((status, error.as_str()), (401, "AccountDeactivated"));
    pds.update_subject_status(&json!({ "subject": subject, "deactivated": { "applied": false } }))
        .await;
    create_post(&pds, &alice, "three").await.unwrap();

    pds.call(
        Some(&alice.access_jwt),
        "com.atproto.server.deactivateAccount",
        json!({}),
    )
    .await
    .unwrap();
    let (status, error, _) = refusal(create_post(&pds, &alice, "four").await);
    assert_eq!((status, error.as_str()), (401, "AccountDeactivated"));
    pds.call(
        Some(&alice.access_jwt),
        "com.atproto.server.activateAccount",
        json!({}),
    )
    .await
    .unwrap();
    create_post(&pds, &alice, "five").await.unwrap();
    pds.stop().await;
}

#[tokio::test]
async fn a_deleted_account_is_gone_for_the_next_request() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    create_post(&pds, &alice, "one").await.unwrap();
    let answer: Option<Value> = pds
        .admin()
        .procedure(
            "com.atproto.admin.deleteAccount",
            &(),
            &json!({ "did": alice.did }),
        )
        .await
        .unwrap();
    assert!(answer.is_none());
    // The access token is still well signed; the account is gone.
    let (status, error, _) = refusal(create_post(&pds, &alice, "two").await);
    assert_eq!((status, error.as_str()), (403, "AccountNotFound"));
    let (status, _, _) = refused_query(
        &pds.client(),
        "com.atproto.repo.describeRepo",
        &json!({ "repo": alice.did }),
    )
    .await;
    assert_eq!(status, 400);
    pds.stop().await;
}

#[tokio::test]
async fn a_handle_change_shows_in_the_next_answer() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    create_post(&pds, &alice, "one").await.unwrap();
    let described = query(
        &pds.client(),
        "com.atproto.repo.describeRepo",
        &json!({ "repo": alice.did }),
    )
    .await;
    assert_eq!(described["handle"], "alice.test");

    pds.call(
        Some(&alice.access_jwt),
        "com.atproto.identity.updateHandle",
        json!({ "handle": "alice2.test" }),
    )
    .await
    .unwrap();
    let described = query(
        &pds.client(),
        "com.atproto.repo.describeRepo",
        &json!({ "repo": alice.did }),
    )
    .await;
    assert_eq!(described["handle"], "alice2.test");
    let (status, _, _) = refused_query(
        &pds.client(),
        "com.atproto.repo.describeRepo",
        &json!({ "repo": "alice.test" }),
    )
    .await;
    assert_eq!(status, 400);
    pds.stop().await;
}

/// Readers hammer `account_by_did` (filling the cache from reads that
/// may have started before a write) while the takedown is switched on and
/// off: once `set_takedown` has returned, every read sees its value.
#[test]
fn a_read_racing_a_write_never_leaves_the_old_row_cached() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(AccountStore::open(&dir.path().join("account.sqlite"), false).unwrap());
    let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    store
        .create_account(&NewAccount {
            did: did.to_owned(),
            handle: "alice.test".to_owned(),
            email: "alice@example.com".to_owned(),
            password: "hunter22".to_owned(),
            invite_code: None,
        })
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.account_by_did(did).unwrap().unwrap();
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 0..200 {
        let reference = (round % 2 == 0).then(|| format!("case-{round}"));
        store.set_takedown(did, reference.as_deref()).unwrap();
        let seen = store.account_by_did(did).unwrap().unwrap();
        assert_eq!(seen.takedown_ref, reference, "round {round}");
        if let Some(cached) = store.cached_account_by_did(did) {
            assert_eq!(cached.takedown_ref, reference, "round {round}");
        }
        if round % 3 == 0 {
            store.deactivate(did, None).unwrap();
            assert!(store
                .account_by_did(did)
                .unwrap()
                .unwrap()
                .deactivated_at
                .is_some());
            store.activate(did).unwrap();
            assert!(store
                .account_by_did(did)
                .unwrap()
                .unwrap()
                .deactivated_at
                .is_none());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);

    // A deleted account is not answered from the cache.
    store.account_by_did(did).unwrap().unwrap();
    assert!(store.delete_account(did).unwrap());
    assert!(store.cached_account_by_did(did).is_none());
    assert!(store.account_by_did(did).unwrap().is_none());
}
