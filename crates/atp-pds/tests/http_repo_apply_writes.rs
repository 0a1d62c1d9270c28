//! `com.atproto.repo.applyWrites` over loopback HTTP: one atomic commit,
//! swaps and limits.
#![allow(clippy::unwrap_used)]

mod common;
mod repo_support;

use common::refusal;
use repo_support::*;
use serde_json::{json, Value};

#[tokio::test]
async fn apply_writes_is_one_atomic_commit() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let a = create_at(&pds, &alice, THING, "a", json!({"v": "a"})).await;
    create_at(&pds, &alice, THING, "b", json!({"v": "b"})).await;
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
    assert_eq!(
        record_changes(&state, &alice.did, before.cid, after.cid).len(),
        4
    );
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
    let (status, name, _) = refusal(get_at(&pds, &alice.did, THING, "d").await);
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
    let (status, _, message) = refusal(apply(&pds, &alice, writes).await);
    assert_eq!(
        (status, message.as_str()),
        (400, "Too many writes. Max: 200")
    );
    pds.stop().await;
}
