//! Group commit: requests that queue for a repository while it is being
//! written are committed together, each with its own commit, rev and
//! `#commit` event except that consecutive plain creates share one, and a
//! request that fails in the middle of a group fails alone.
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
    // r0 and r1, plain creates next to each other, share a commit; r3
    // (between two requests that cannot share) has its own.
    assert_eq!(answers[0]["commit"], answers[1]["commit"]);
    assert_ne!(answers[1]["commit"], answers[2]["commit"]);
    assert_eq!(
        answers[3],
        json!({}),
        "deleting what is absent commits nothing"
    );
    assert!(
        answers[4].get("commit").is_none(),
        "the same record again commits nothing"
    );
    let mut committed: Vec<&Value> = answers
        .iter()
        .filter_map(|answer| answer.get("commit"))
        .collect();
    assert_eq!(committed.len(), 7);
    committed.dedup();
    assert_eq!(committed.len(), 6, "r0 and r1 share one");
    // The swapCommit refusal names the head the requests before it (r0
    // and r1, then r3: the failed put left no commit) made.
    assert_eq!(
        swap_commit_message,
        format!("Commit was at {}", committed[1]["cid"].as_str().unwrap())
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
    let mut op_counts = Vec::new();
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
        let Ipld::List(ops) = field(&body, "ops") else {
            panic!("no ops in the event");
        };
        op_counts.push(ops.len());
    }
    // r0 + r1, r3, r8, applyWrites (two creates), delete r0, r11.
    assert_eq!(op_counts, [2, 1, 1, 2, 1, 1]);
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

/// Many concurrent createRecord calls on one account (those that queue
/// together share commits): one chain of commits holds every create once,
/// and each answer's commit is on it and holds its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_one_account_share_commits_on_one_chain() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let seq_before = state.sequencer.latest_seq();
    let mut tasks = Vec::new();
    for task in 0..8 {
        let client = pds.bearer(&alice.access_jwt);
        let did = did.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for n in 0..15 {
                let answer: Value = client
                    .procedure(
                        "com.atproto.repo.createRecord",
                        &(),
                        &json!({"repo": did, "collection": THING, "record": {"task": task, "n": n}}),
                    )
                    .await
                    .unwrap();
                let path = answer["uri"].as_str().unwrap().rsplit('/').take(2).collect::<Vec<_>>();
                answers.push((
                    format!("{}/{}", path[1], path[0]),
                    answer["commit"]["cid"].as_str().unwrap().to_owned(),
                ));
            }
            answers
        }));
    }
    let mut answered = Vec::new();
    for task in tasks {
        answered.extend(task.await.unwrap());
    }
    assert_eq!(answered.len(), 120);

    // Walk the events: one chain through each commit's `since`, and the
    // ops of each commit.
    let events: Vec<_> = state
        .sequencer
        .events_after(seq_before, 1000)
        .unwrap()
        .into_iter()
        .filter(|event| event.did == did)
        .collect();
    let mut ops_of = std::collections::BTreeMap::new();
    let mut last_rev: Option<String> = None;
    for event in &events {
        let body: Ipld = event.frame.body().unwrap();
        if let Some(last) = &last_rev {
            assert_eq!(&text(field(&body, "since")), last);
        }
        last_rev = Some(text(field(&body, "rev")));
        let Ipld::List(ops) = field(&body, "ops") else {
            panic!("no ops in the event");
        };
        let paths: BTreeSet<String> = ops.iter().map(|op| text(field(op, "path"))).collect();
        assert!(ops.len() <= 200, "a #commit holds at most 200 ops");
        ops_of.insert(link(field(&body, "commit")).to_string(), paths);
    }
    assert_eq!(
        ops_of.values().map(BTreeSet::len).sum::<usize>(),
        120,
        "every create in one commit"
    );
    for (path, commit) in &answered {
        let paths = ops_of
            .get(commit)
            .unwrap_or_else(|| panic!("{commit} is not on the chain"));
        assert!(paths.contains(path), "{commit} does not hold {path}");
    }
    let store = state.storage.actors().open(&did).unwrap();
    assert_eq!(store.record_count().unwrap(), 120);
    assert_eq!(store.root().unwrap().unwrap().rev, last_rev.unwrap());
    pds.stop().await;
}

/// Queues `bodies` as createRecord calls behind the repository's lock,
/// in order, then lets them run as one group; returns the answers.
async fn queue_creates(
    pds: &Pds,
    state: &PdsState,
    jwt: &str,
    did: &str,
    bodies: Vec<Value>,
) -> Vec<Result<Value, atp_xrpc::Error>> {
    let held = atp_pds::repo_writer::lock_repo(state, did).await.unwrap();
    let mut tasks = Vec::new();
    for (index, body) in bodies.into_iter().enumerate() {
        let client = pds.bearer(jwt);
        tasks.push(tokio::spawn(async move {
            client
                .procedure::<_, _, Value>("com.atproto.repo.createRecord", &(), &body)
                .await
        }));
        wait_queued(did, index + 1).await;
    }
    drop(held);
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// The `#commit` events of `did` after `seq`: each commit's CID, its
/// number of ops and the size of its blocks.
fn commit_events_after(state: &PdsState, did: &str, seq: i64) -> Vec<(String, usize, usize)> {
    state
        .sequencer
        .events_after(seq, 1000)
        .unwrap()
        .into_iter()
        .filter(|event| event.did == did)
        .map(|event| {
            let body: Ipld = event.frame.body().unwrap();
            let Ipld::List(ops) = field(&body, "ops") else {
                panic!("no ops in the event");
            };
            let Ipld::Bytes(blocks) = field(&body, "blocks") else {
                panic!("no blocks in the event");
            };
            (
                link(field(&body, "commit")).to_string(),
                ops.len(),
                blocks.len(),
            )
        })
        .collect()
}

/// Creates queued together share a commit of at most 200 ops (a
/// `#commit` event's limit); the next ones start another. A create
/// refused among them (its record exists) fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_commit_holds_at_most_200_creates() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let seq_before = state.sequencer.latest_seq();
    let create =
        |rkey: String| json!({"repo": did, "collection": THING, "rkey": rkey, "record": {}});
    // c000, c000 again (refused), then c001 to c203.
    let mut bodies = vec![create("c000".into()), create("c000".into())];
    bodies.extend((1..204).map(|n| create(format!("c{n:03}"))));
    let mut answers = queue_creates(&pds, &state, &alice.access_jwt, &did, bodies).await;

    let (status, name, message) = refusal(answers.remove(1));
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(
        message,
        format!("Record already exists: at://{did}/{THING}/c000")
    );
    let commits: Vec<String> = answers
        .into_iter()
        .map(|answer| {
            answer.unwrap()["commit"]["cid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(commits.len(), 204);
    assert!(commits[..200].iter().all(|cid| *cid == commits[0]));
    assert!(commits[200..].iter().all(|cid| *cid == commits[200]));
    assert_ne!(commits[0], commits[200]);

    let events = commit_events_after(&state, &did, seq_before);
    let summary: Vec<(&str, usize)> = events
        .iter()
        .map(|(cid, ops, _)| (cid.as_str(), *ops))
        .collect();
    assert_eq!(
        summary,
        [(commits[0].as_str(), 200), (commits[200].as_str(), 4)]
    );
    let store = state.storage.actors().open(&did).unwrap();
    assert_eq!(store.record_count().unwrap(), 204);
    pds.stop().await;
}

/// Large records queued together: a shared commit takes no further create
/// once its records reach 512 KiB, so its blocks stay under the 2 MB of
/// a `#commit` event.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_commit_stays_under_the_event_size_limit() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let alice = pds.create("alice").await;
    let did = alice.did.clone();
    let seq_before = state.sequencer.latest_seq();
    // Records of about 300 KB each (a request body may hold up to 1 MB).
    let filler = "x".repeat(300_000);
    let bodies: Vec<Value> = (0..5)
        .map(|n| json!({"repo": did, "collection": THING, "rkey": format!("big{n}"), "record": {"n": n, "filler": filler}}))
        .collect();
    let answers = queue_creates(&pds, &state, &alice.access_jwt, &did, bodies).await;
    let commits: Vec<String> = answers
        .into_iter()
        .map(|answer| {
            answer.unwrap()["commit"]["cid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // Two records reach 512 KiB: commits of 2, 2 and 1.
    assert_eq!(commits[0], commits[1]);
    assert_ne!(commits[1], commits[2]);
    assert_eq!(commits[2], commits[3]);
    assert_ne!(commits[3], commits[4]);
    let events = commit_events_after(&state, &did, seq_before);
    let ops: Vec<usize> = events.iter().map(|(_, ops, _)| *ops).collect();
    assert_eq!(ops, [2, 2, 1]);
    for (cid, _, size) in &events {
        assert!(*size < 2_000_000, "{cid}: {size} bytes of blocks");
    }
    pds.stop().await;
}
