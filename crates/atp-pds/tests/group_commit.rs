//! Group commit: requests that queue for a repository while it is being
//! written are committed together, each still with its own commit, rev
//! and `#commit` event, and a request that fails in the middle of a group
//! fails alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use atp_crypto::{Cid, Ipld};
use atp_pds::http::PdsState;
use atp_pds::repo_writer::{lock_repo, queued_requests};
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::commit::Commit;
use common::{refusal, Pds};
use serde_json::{json, Value};

const THING: &str = "com.example.thing";

/// Waits until `n` requests are queued for `did` (they queue behind the
/// lock the test holds).
async fn wait_queued(did: &str, n: usize) {
    for _ in 0..6000 {
        if queued_requests(did) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{n} requests never queued for {did}");
}

fn field<'a>(body: &'a Ipld, name: &str) -> &'a Ipld {
    match body {
        Ipld::Map(map) => map.get(name).unwrap_or(&Ipld::Null),
        _ => panic!("not a map"),
    }
}

fn text(value: &Ipld) -> String {
    match value {
        Ipld::String(text) => text.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

fn link(value: &Ipld) -> Cid {
    match value {
        Ipld::Link(cid) => *cid,
        other => panic!("not a link: {other:?}"),
    }
}

/// The stored commit `cid` of `did`.
fn commit_block(state: &PdsState, did: &str, cid: &Cid) -> Commit {
    let store = state.storage.actors().open(did).unwrap();
    Commit::from_block(&store.block_store().get(cid).unwrap().unwrap()).unwrap()
}

/// The commit `cid` carried in the blocks of the `#commit` event `body`
/// (the store keeps only the head commit).
fn event_commit(body: &Ipld, cid: &Cid) -> Commit {
    let Ipld::Bytes(car) = field(body, "blocks") else {
        panic!("no blocks in the event");
    };
    let (_, blocks) = atp_repo_mst::car::read_car(car).unwrap();
    Commit::from_block(&blocks[cid]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_makes_one_chain_and_a_failing_request_fails_alone() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let client = pds.bearer(&alice.access_jwt);
    let fixed: Value = client
        .procedure(
            "com.atproto.repo.createRecord",
            &(),
            &json!({"repo": did, "collection": THING, "rkey": "fixed", "record": {"n": 0}}),
        )
        .await
        .unwrap();
    let head_before = state
        .storage
        .actors()
        .open(&did)
        .unwrap()
        .root()
        .unwrap()
        .unwrap();
    let data_before = commit_block(&state, &did, &head_before.cid).data;
    let seq_before = state.sequencer.latest_seq();
    let wrong_cid = atp_crypto::cid_for_dag_cbor(b"not the record");

    // The requests, in the order they queue. `None`: expected to fail.
    let create = |rkey: &str| {
        (
            "com.atproto.repo.createRecord",
            json!({"repo": did, "collection": THING, "rkey": rkey, "record": {"k": rkey}}),
        )
    };
    let requests = vec![
        create("r0"),
        create("r1"),
        // A swapRecord mismatch.
        (
            "com.atproto.repo.putRecord",
            json!({"repo": did, "collection": THING, "rkey": "fixed", "record": {"n": 1},
                   "swapRecord": wrong_cid.to_string()}),
        ),
        create("r3"),
        // swapCommit on the head before the group: the requests before it
        // in the group moved the head.
        (
            "com.atproto.repo.createRecord",
            json!({"repo": did, "collection": THING, "rkey": "r4", "record": {},
                   "swapCommit": head_before.cid.to_string()}),
        ),
        // A record the group already created.
        create("r1"),
        // Changes nothing: no commit.
        (
            "com.atproto.repo.deleteRecord",
            json!({"repo": did, "collection": THING, "rkey": "absent"}),
        ),
        (
            "com.atproto.repo.putRecord",
            json!({"repo": did, "collection": THING, "rkey": "fixed", "record": {"n": 0}}),
        ),
        create("r8"),
        (
            "com.atproto.repo.applyWrites",
            json!({"repo": did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#create", "collection": THING, "rkey": "r9a", "value": {}},
                {"$type": "com.atproto.repo.applyWrites#create", "collection": THING, "rkey": "r9b", "value": {}},
            ]}),
        ),
        (
            "com.atproto.repo.deleteRecord",
            json!({"repo": did, "collection": THING, "rkey": "r0"}),
        ),
        create("r11"),
    ];

    let held = lock_repo(&state, &did).await.unwrap();
    let mut tasks = Vec::new();
    for (index, (method, body)) in requests.into_iter().enumerate() {
        let client = pds.bearer(&alice.access_jwt);
        tasks.push(tokio::spawn(async move {
            client.procedure::<_, _, Value>(method, &(), &body).await
        }));
        wait_queued(&did, index + 1).await;
    }
    drop(held);
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    // The failures, each with its own error.
    let (status, name, message) = refusal(answers.remove(5));
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(
        message,
        format!("Record already exists: at://{did}/{THING}/r1")
    );
    let (status, name, swap_commit_message) = refusal(answers.remove(4));
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    let (status, name, message) = refusal(answers.remove(2));
    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
    assert_eq!(
        message,
        format!("Record was at {}", fixed["cid"].as_str().unwrap())
    );

    let answers: Vec<Value> = answers.into_iter().map(Result::unwrap).collect();
    // r0, r1, r3, delete absent, put same, r8, applyWrites, delete r0, r11.
    assert_eq!(answers.len(), 9);
    assert_eq!(
        answers[3],
        json!({}),
        "deleting what is absent commits nothing"
    );
    assert!(
        answers[4].get("commit").is_none(),
        "the same record again commits nothing"
    );
    let committed: Vec<&Value> = answers
        .iter()
        .filter_map(|answer| answer.get("commit"))
        .collect();
    assert_eq!(committed.len(), 7);
    // The swapCommit refusal names the head the two requests before it
    // (r0, r1, r3: the failed put left no commit) made.
    assert_eq!(
        swap_commit_message,
        format!("Commit was at {}", committed[2]["cid"].as_str().unwrap())
    );

    // One event per commit, consecutive, in the order of the answers, each
    // commit following the one before it.
    let events: Vec<_> = state
        .sequencer
        .events_after(seq_before, 100)
        .unwrap()
        .into_iter()
        .filter(|event| event.did == did)
        .collect();
    assert_eq!(events.len(), committed.len());
    let mut since = head_before.rev.clone();
    let mut prev_data = data_before;
    for (index, (event, answer)) in events.iter().zip(&committed).enumerate() {
        assert_eq!(event.frame.message_type(), Some("#commit"));
        assert_eq!(
            event.seq,
            seq_before + 1 + index as i64,
            "consecutive numbers"
        );
        let body: Ipld = event.frame.body().unwrap();
        let cid = link(field(&body, "commit"));
        assert_eq!(cid.to_string(), answer["cid"].as_str().unwrap());
        assert_eq!(text(field(&body, "rev")), answer["rev"].as_str().unwrap());
        assert_eq!(text(field(&body, "since")), since);
        assert_eq!(link(field(&body, "prevData")), prev_data);
        let commit = event_commit(&body, &cid);
        assert_eq!(commit.rev, text(field(&body, "rev")));
        assert!(commit.rev > since);
        since = commit.rev.clone();
        prev_data = commit.data;
    }
    // The group's events went to the log in one transaction.
    let times: BTreeSet<&str> = events.iter().map(|event| event.time.as_str()).collect();
    assert_eq!(times.len(), 1, "one append for the group: {times:?}");

    // The head is the last commit, and the records are what the group
    // left.
    let store = state.storage.actors().open(&did).unwrap();
    let head = store.root().unwrap().unwrap();
    assert_eq!(
        head.cid.to_string(),
        committed.last().unwrap()["cid"].as_str().unwrap()
    );
    let mut rkeys: Vec<String> = store
        .list_records(THING, 100, None, true)
        .unwrap()
        .into_iter()
        .map(|entry| entry.rkey)
        .collect();
    rkeys.sort();
    assert_eq!(rkeys, ["fixed", "r1", "r11", "r3", "r8", "r9a", "r9b"]);
    let (entry, _) = store.get_record(THING, "fixed").unwrap().unwrap();
    assert_eq!(entry.cid.to_string(), fixed["cid"].as_str().unwrap());
    pds.stop().await;
}

/// Many concurrent createRecord calls on one account: as many commits as
/// calls, in one chain, each answer's commit on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_one_account_make_one_commit_each() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let seq_before = state.sequencer.latest_seq();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let client = pds.bearer(&alice.access_jwt);
        let did = did.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = Vec::new();
            for n in 0..15 {
                let answer: Value = client
                    .procedure(
                        "com.atproto.repo.createRecord",
                        &(),
                        &json!({"repo": did, "collection": THING, "record": {"task": task, "n": n}}),
                    )
                    .await
                    .unwrap();
                commits.push(answer["commit"]["cid"].as_str().unwrap().to_owned());
            }
            commits
        }));
    }
    let mut answered = BTreeSet::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    assert_eq!(answered.len(), 120, "one commit per request");

    // Walk the chain back from the head through each commit's `since`.
    let events: Vec<_> = state
        .sequencer
        .events_after(seq_before, 1000)
        .unwrap()
        .into_iter()
        .filter(|event| event.did == did)
        .collect();
    assert_eq!(events.len(), 120);
    let mut chain = BTreeSet::new();
    let mut last_rev: Option<String> = None;
    for event in &events {
        let body: Ipld = event.frame.body().unwrap();
        if let Some(last) = &last_rev {
            assert_eq!(&text(field(&body, "since")), last);
        }
        last_rev = Some(text(field(&body, "rev")));
        chain.insert(link(field(&body, "commit")).to_string());
    }
    assert_eq!(chain, answered);
    let store = state.storage.actors().open(&did).unwrap();
    assert_eq!(store.record_count().unwrap(), 120);
    assert_eq!(store.root().unwrap().unwrap().rev, last_rev.unwrap());
    pds.stop().await;
}
