//! The repository write path: serialized writers per repository, one
//! linear commit chain under concurrent writes, atomic batches, swaps and
//! blob references.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::{Cid, Ipld};
use atp_pds::actor_store::ActorStore;
use atp_pds::http::PdsState;
use atp_pds::repo_writer::{
    apply_writes, lock_repo, prepare_create, prepare_delete, prepare_update,
};
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::commit::Commit;
use atp_repo_mst::import::export_repo_car;
use atp_repo_mst::repo::{Repo, WriteAction};
use common::Pds;
use serde_json::{json, Value};

const THING: &str = "com.example.thing";

async fn start() -> (Pds, PdsState) {
    let mut captured = None;
    let pds = Pds::start_with(|state| captured = Some(state.clone())).await;
    (pds, captured.unwrap())
}

fn store(state: &PdsState, did: &str) -> Arc<ActorStore> {
    state.storage.actors().open(did).unwrap()
}

/// Every commit block in the store, sorted by rev.
/// A commit read from its `#commit` event: CID, commit, `prevData` and
/// the ops' `prev` CIDs.
type LoggedCommit = (Cid, Commit, Option<Cid>, Vec<Option<Cid>>);

/// The account's commits in log order, from its `#commit` events (the
/// store keeps only the head commit, as the reference does), each with
/// its event's `prevData` and its ops' `prev` CIDs.
fn logged_commits(state: &PdsState, did: &str) -> Vec<LoggedCommit> {
    let link = |value: Option<&Ipld>| match value {
        Some(Ipld::Link(cid)) => Some(*cid),
        _ => None,
    };
    state
        .sequencer
        .events_after(0, 100_000)
        .unwrap()
        .iter()
        .filter(|event| event.did == did && event.frame.message_type() == Some("#commit"))
        .map(|event| {
            let Ipld::Map(body) = event.frame.body::<Ipld>().unwrap() else {
                panic!("not a map")
            };
            let cid = link(body.get("commit")).unwrap();
            let Some(Ipld::Bytes(car)) = body.get("blocks") else {
                panic!("no blocks")
            };
            let (_, blocks) = atp_repo_mst::car::read_car(car).unwrap();
            let commit = Commit::from_block(&blocks[&cid]).unwrap();
            let Some(Ipld::List(ops)) = body.get("ops") else {
                panic!("no ops")
            };
            let prevs = ops
                .iter()
                .map(|op| match op {
                    Ipld::Map(op) => link(op.get("prev")),
                    _ => panic!("op is not a map"),
                })
                .collect();
            (cid, commit, link(body.get("prevData")), prevs)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_form_one_linear_chain() {
    const TASKS: usize = 8;
    const EACH: usize = 25;
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let pds = Arc::new(pds);

    let mut handles = Vec::new();
    for task in 0..TASKS {
        let pds = Arc::clone(&pds);
        let (did, jwt) = (alice.did.clone(), alice.access_jwt.clone());
        handles.push(tokio::spawn(async move {
            let client = pds.bearer(&jwt);
            let mut answers = Vec::new();
            for i in 0..EACH {
                let answer: Value = client
                    .procedure(
                        "com.atproto.repo.createRecord",
                        &(),
                        &json!({"repo": did, "collection": THING, "rkey": format!("t{task}-{i}"), "record": {"task": task, "i": i}}),
                    )
                    .await
                    .unwrap();
                answers.push(answer);
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for handle in handles {
        answers.extend(handle.await.unwrap());
    }
    assert_eq!(answers.len(), TASKS * EACH);

    let store = store(&state, &alice.did);
    assert_eq!(store.record_count().unwrap(), (TASKS * EACH) as u64);
    let logged = logged_commits(&state, &alice.did);
    let commits: Vec<(Cid, Commit)> = logged
        .iter()
        .map(|(cid, commit, _, _)| (*cid, commit.clone()))
        .collect();
    // The first commit of the account, then the commits the answers name
    // (creates queued together may share one).
    let root = store.root().unwrap().unwrap();
    let (last_cid, last) = commits.last().unwrap();
    assert_eq!((*last_cid, &last.rev), (root.cid, &root.rev));

    let mut answered: Vec<(String, String)> = answers
        .iter()
        .map(|a| {
            (
                a["commit"]["rev"].as_str().unwrap().to_owned(),
                a["commit"]["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    answered.sort();
    answered.dedup();
    let chain: Vec<(String, String)> = commits[1..]
        .iter()
        .map(|(cid, commit)| (commit.rev.clone(), cid.to_string()))
        .collect();
    assert_eq!(answered, chain);

    // Each commit is its predecessor plus only creates: no write was lost
    // or built on a stale head, and each was made once.
    let mut creates = 0;
    for pair in logged.windows(2) {
        let (prev, next) = (&pair[0].1, &pair[1].1);
        assert!(next.rev > prev.rev);
        assert_eq!(next.prev, None, "v3 commits carry prev: null");
        assert_eq!(next.did, alice.did);
        assert_eq!(pair[1].2, Some(prev.data), "built on its predecessor");
        assert!(
            !pair[1].3.is_empty() && pair[1].3.iter().all(Option::is_none),
            "only creates in commit {}",
            next.rev
        );
        creates += pair[1].3.len();
    }
    assert_eq!(creates, TASKS * EACH);
    let pds = Arc::try_unwrap(pds).ok().unwrap();
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_repositories_write_in_parallel() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    // Hold alice's lock: bob's writes still go through.
    let held = lock_repo(&state, &alice.did).await.unwrap();
    let write = prepare_create(&bob.did, THING, Some("b"), &json!({}), None).unwrap();
    let commit = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        apply_writes(&state, &bob.did, vec![write], None),
    )
    .await
    .expect("bob's write is not blocked by alice's lock")
    .unwrap();
    assert_eq!(commit.ops.len(), 1);
    // Alice's own write waits for the lock, then lands after it is freed.
    let state2 = state.clone();
    let did = alice.did.clone();
    let waiting = tokio::spawn(async move {
        let write = prepare_create(&did, THING, Some("a"), &json!({}), None).unwrap();
        apply_writes(&state2, &did, vec![write], None).await
    });
    tokio::task::yield_now().await;
    assert!(store(&state, &alice.did)
        .get_record(THING, "a")
        .unwrap()
        .is_none());
    drop(held);
    waiting.await.unwrap().unwrap();
    assert!(store(&state, &alice.did)
        .get_record(THING, "a")
        .unwrap()
        .is_some());
    pds.stop().await;
}

#[tokio::test]
async fn batches_are_atomic_and_ops_are_net_changes() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let did = alice.did.as_str();
    let first = apply_writes(
        &state,
        did,
        vec![
            prepare_create(did, THING, Some("a"), &json!({"v": 1}), None).unwrap(),
            prepare_create(did, THING, Some("b"), &json!({"v": 9}), None).unwrap(),
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(first.ops.len(), 2);
    assert!(first.ops.iter().all(|op| op.action == WriteAction::Create));

    // swapCommit must be the head.
    let stale = first.prev.unwrap();
    let err = apply_writes(
        &state,
        did,
        vec![prepare_delete(did, THING, "a").unwrap()],
        Some(stale),
    )
    .await
    .unwrap_err();
    assert_eq!(err.name(), "InvalidSwap");
    assert_eq!(err.message(), format!("Commit was at {}", first.cid));

    // swapRecord on each write.
    let a_cid = first.ops[0].cid.unwrap();
    let wrong = first.ops[1].cid.unwrap();
    let err = apply_writes(
        &state,
        did,
        vec![prepare_update(did, THING, "a", &json!({"v": 2}), None)
            .unwrap()
            .with_swap_record(Some(Some(wrong)))],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.name(), err.message()),
        ("InvalidSwap", format!("Record was at {a_cid}").as_str())
    );

    // A failing write in a batch leaves everything as it was.
    let err = apply_writes(
        &state,
        did,
        vec![
            prepare_delete(did, THING, "a").unwrap(),
            prepare_create(did, THING, Some("b"), &json!({}), None).unwrap(),
        ],
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.status().as_u16(), 400);
    let store = store(&state, did);
    assert_eq!(store.root().unwrap().unwrap().cid, first.cid);
    assert!(store.get_record(THING, "a").unwrap().is_some());

    // Update then delete of one record in a batch: one net delete.
    let second = apply_writes(
        &state,
        did,
        vec![
            prepare_update(did, THING, "a", &json!({"v": 3}), None)
                .unwrap()
                .with_swap_record(Some(Some(a_cid))),
            prepare_delete(did, THING, "a").unwrap(),
        ],
        Some(first.cid),
    )
    .await
    .unwrap();
    assert_eq!(second.ops.len(), 1);
    assert_eq!(second.ops[0].action, WriteAction::Delete);
    assert_eq!(second.ops[0].prev, Some(a_cid));
    assert_eq!(second.prev, Some(first.cid));
    assert_eq!(second.since.as_deref(), Some(first.rev.as_str()));
    assert!(store.get_record(THING, "a").unwrap().is_none());
    pds.stop().await;
}

fn blob_ref(cid: Cid) -> Value {
    json!({"$type": "blob", "ref": {"$link": cid.to_string()}, "mimeType": "image/png", "size": 3})
}

#[tokio::test]
async fn blob_references_are_indexed() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let did = alice.did.as_str();
    let blob = atp_crypto::cid_for_raw(b"png");

    // Through an import (no upload needed: the reference indexes imported
    // references as they are).
    let key = store(&state, did).signing_key().unwrap();
    let blocks = MemoryBlockStore::new();
    let mut repo = Repo::create(&blocks, did).unwrap();
    let record = atp_crypto::data_model::json_record_to_ipld(
        &json!({"$type": THING, "img": blob_ref(blob)}),
    )
    .unwrap();
    repo.create_record(THING, "with-blob", &record).unwrap();
    let plain = Ipld::Map(BTreeMap::from([(
        "$type".to_owned(),
        Ipld::String(THING.to_owned()),
    )]));
    repo.create_record(THING, "plain", &plain).unwrap();
    let commit = repo
        .commit(&key, atp_syntax::TidClock::global().next().as_str())
        .unwrap();
    let car = export_repo_car(&blocks, commit.cid, Vec::new()).unwrap();
    let locked = lock_repo(&state, did).await.unwrap();
    let imported = locked
        .import(&state, car, atp_repo_mst::car::CarLimits::default())
        .await
        .unwrap();
    drop(locked);
    assert_eq!(imported.records, 2);
    assert_eq!(imported.commit_cid, commit.cid);
    assert_eq!(
        store(&state, did).records_for_blob(&blob).unwrap(),
        vec![format!("at://{did}/{THING}/with-blob")]
    );

    // Through a write the references follow the record: deleting it drops
    // them. (The blob is uploaded first when the PDS serves uploads, as a
    // write may only reference uploaded blobs.)
    pds.bearer(&alice.access_jwt)
        .procedure_bytes(
            "com.atproto.repo.uploadBlob",
            &(),
            "image/png",
            b"png".to_vec().into(),
        )
        .await
        .ok();
    let write = prepare_create(
        did,
        THING,
        Some("second"),
        &json!({"img": blob_ref(blob)}),
        None,
    )
    .unwrap();
    assert_eq!(write.blobs.len(), 1);
    apply_writes(&state, did, vec![write], None).await.unwrap();
    assert_eq!(store(&state, did).records_for_blob(&blob).unwrap().len(), 2);
    apply_writes(
        &state,
        did,
        vec![prepare_delete(did, THING, "with-blob").unwrap()],
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        store(&state, did).records_for_blob(&blob).unwrap(),
        vec![format!("at://{did}/{THING}/second")]
    );
    // Legacy blob references are refused in writes.
    let err = prepare_create(
        did,
        THING,
        None,
        &json!({"img": {"cid": blob.to_string(), "mimeType": "image/png"}}),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        format!("Legacy blobs are not allowed ({blob})")
    );
    pds.stop().await;
}

/// Concurrent compare-and-swap updates of one record: of the writers that
/// all saw the same record, exactly one wins; the others get InvalidSwap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_swaps_let_exactly_one_writer_win() {
    const WRITERS: usize = 8;
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let pds = Arc::new(pds);
    let first: Value = pds
        .bearer(&alice.access_jwt)
        .procedure(
            "com.atproto.repo.createRecord",
            &(),
            &json!({"repo": alice.did, "collection": THING, "rkey": "counter", "record": {"n": 0}}),
        )
        .await
        .unwrap();
    let seen = first["cid"].as_str().unwrap().to_owned();
    let mut handles = Vec::new();
    for writer in 0..WRITERS {
        let pds = Arc::clone(&pds);
        let (did, jwt, seen) = (alice.did.clone(), alice.access_jwt.clone(), seen.clone());
        handles.push(tokio::spawn(async move {
            pds.bearer(&jwt)
                .procedure::<_, _, Value>(
                    "com.atproto.repo.putRecord",
                    &(),
                    &json!({"repo": did, "collection": THING, "rkey": "counter",
                            "record": {"n": writer + 1}, "swapRecord": seen}),
                )
                .await
        }));
    }
    let mut winners = Vec::new();
    let mut swaps = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(answer) => winners.push(answer),
            Err(err) => {
                let (status, name, _) = common::refusal::<()>(Err(err));
                assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
                swaps += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(swaps, WRITERS - 1);
    let (entry, _) = store(&state, &alice.did)
        .get_record(THING, "counter")
        .unwrap()
        .unwrap();
    assert_eq!(entry.cid.to_string(), winners[0]["cid"].as_str().unwrap());
    let pds = Arc::try_unwrap(pds).ok().unwrap();
    pds.stop().await;
}

/// The largest batch the reference accepts, 200 writes, is one commit.
#[tokio::test]
async fn a_batch_of_200_writes_is_one_commit() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let did = alice.did.as_str();
    let writes = (0..200)
        .map(|i| {
            prepare_create(
                did,
                THING,
                Some(&format!("r{i:03}")),
                &json!({"i": i}),
                None,
            )
            .unwrap()
        })
        .collect();
    let commit = apply_writes(&state, did, writes, None).await.unwrap();
    assert_eq!(commit.ops.len(), 200);
    let store = store(&state, did);
    assert_eq!(store.record_count().unwrap(), 200);
    assert_eq!(store.root().unwrap().unwrap().cid, commit.cid);
    let too_many = (0..201)
        .map(|i| prepare_delete(did, THING, &format!("r{i:03}")).unwrap())
        .collect();
    let err = apply_writes(&state, did, too_many, None).await.unwrap_err();
    assert_eq!(err.message(), "Too many writes. Max: 200");
    pds.stop().await;
}

/// A caller that goes away mid-write (its future dropped) does not cut the
/// write short: the commit is stored and sequenced, and the lock is held
/// until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_caller_does_not_cut_a_write_short() {
    let (pds, state) = start().await;
    let alice = pds.create("alice").await;
    let did = alice.did.as_str();
    let before = state.sequencer.latest_seq();
    let locked = lock_repo(&state, did).await.unwrap();
    let write = prepare_create(did, THING, Some("kept"), &json!({}), None).unwrap();
    {
        let apply = locked.apply(&state, vec![write], None);
        tokio::pin!(apply);
        // Poll the write once (it starts), then drop it.
        tokio::select! {
            biased;
            _ = &mut apply => {}
            _ = std::future::ready(()) => {}
        }
    }
    drop(locked);
    // The next writer waits for the first write to finish.
    let next = lock_repo(&state, did).await.unwrap();
    let (entry, _) = store(&state, did)
        .get_record(THING, "kept")
        .unwrap()
        .unwrap();
    let events = state.sequencer.events_after(before, 100).unwrap();
    let commits: Vec<_> = events
        .iter()
        .filter(|e| e.did == did && e.frame.message_type() == Some("#commit"))
        .collect();
    assert_eq!(commits.len(), 1);
    assert_eq!(
        entry.repo_rev,
        store(&state, did).root().unwrap().unwrap().rev
    );
    drop(next);
    pds.stop().await;
}
