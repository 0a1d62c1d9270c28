//! The firehose (`com.atproto.sync.subscribeRepos`): the reference
//! consumer (`Firehose` from @atproto/sync, authenticated commits) reads
//! every event from cursor 0 and from a cursor in the middle; cursors in
//! the future and before the oldest kept event; the switch from backfill
//! to live without gaps or duplicates; slow consumers cut off.
#![allow(clippy::unwrap_used)]

mod common;
mod sync_support;

use std::time::Duration;

use atp_crypto::Ipld;
use atp_pds::sequencer::Sequencer;
use atp_xrpc::server::ServerConfig;
use atp_xrpc::stream::{Frame, SubscriptionClient, CONSUMER_TOO_SLOW};
use serde_json::{json, Value};
use sync_support::{post, Node, POSTS};

/// The body of a frame as an IPLD map.
fn body(frame: &Frame) -> std::collections::BTreeMap<String, Ipld> {
    match frame.body::<Ipld>().unwrap() {
        Ipld::Map(map) => map,
        other => panic!("frame body is not a map: {other:?}"),
    }
}

fn text(map: &std::collections::BTreeMap<String, Ipld>, key: &str) -> String {
    match map.get(key) {
        Some(Ipld::String(s)) => s.clone(),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

fn seq_of(map: &std::collections::BTreeMap<String, Ipld>) -> i64 {
    match map.get("seq") {
        Some(Ipld::Integer(n)) => i64::try_from(*n).unwrap(),
        other => panic!("seq is not an integer: {other:?}"),
    }
}

/// What the reference consumer should report for the events in the log
/// after `cursor`, in the node script's shapes (one entry per commit op).
fn expected_after(sequencer: &Sequencer, cursor: i64) -> Vec<Value> {
    let mut out = Vec::new();
    for event in sequencer.events_after(cursor, 10_000).unwrap() {
        let map = body(&event.frame);
        let seq = seq_of(&map);
        assert_eq!(seq, event.seq);
        match event.frame.message_type().unwrap() {
            "#commit" => {
                let did = text(&map, "repo");
                let Some(Ipld::List(ops)) = map.get("ops") else {
                    panic!("ops missing")
                };
                for op in ops {
                    let Ipld::Map(op) = op else { panic!() };
                    let cid = match op.get("cid") {
                        Some(Ipld::Link(cid)) => json!(cid.to_string()),
                        _ => Value::Null,
                    };
                    out.push(json!({
                        "seq": seq, "event": text(op, "action"), "did": did,
                        "path": text(op, "path"), "cid": cid,
                    }));
                }
            }
            "#identity" => {
                out.push(json!({"seq": seq, "event": "identity", "did": text(&map, "did")}))
            }
            "#account" => {
                let active = matches!(map.get("active"), Some(Ipld::Bool(true)));
                let status = match map.get("status") {
                    Some(Ipld::String(s)) => json!(s),
                    _ => Value::Null,
                };
                out.push(json!({
                    "seq": seq, "event": "account", "did": text(&map, "did"),
                    "active": active, "status": status,
                }));
            }
            "#sync" => {
                let Some(Ipld::Bytes(car)) = map.get("blocks") else {
                    panic!("sync without blocks")
                };
                let (roots, _) = atp_repo_mst::car::read_car(car).unwrap();
                out.push(json!({
                    "seq": seq, "event": "sync", "did": text(&map, "did"),
                    "rev": text(&map, "rev"), "cid": roots[0].to_string(),
                }));
            }
            other => panic!("unexpected event type {other}"),
        }
    }
    out
}

async fn consume(node: &Node, cursor: Option<i64>, until_seq: i64) -> Value {
    let input = json!({
        "service": node.pds.url.replacen("http://", "ws://", 1),
        "plcUrl": node.pds.plc.url(),
        "cursor": cursor,
        "untilSeq": until_seq,
        "timeoutMs": 60_000,
    });
    tokio::task::spawn_blocking(move || atp_test_vectors::run_node("firehose-consume.mjs", &input))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_consumer_verifies_every_event() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let bob = node.pds.create("bob").await;

    // Creates, an update, a delete and a multi-op commit, mixed with
    // identity and account events.
    let mut mine = Vec::new();
    for i in 0..3 {
        let text = format!("post {i}");
        let rkey = format!("3jzfcijpj2z2{}", ["a", "b", "c"][i]);
        let (seq, _) = node
            .commit(&alice.did, move |repo| {
                repo.create_record(POSTS, &rkey, &post(&text)).unwrap();
            })
            .await;
        mine.push(seq);
    }
    mine.push(
        node.sequencer
            .sequence_identity(&alice.did, Some(&alice.handle))
            .unwrap(),
    );
    let (seq, update) = node
        .commit(&alice.did, |repo| {
            repo.update_record(POSTS, "3jzfcijpj2z2b", &post("edited"))
                .unwrap();
        })
        .await;
    assert!(update.ops[0].prev.is_some());
    mine.push(seq);
    let (seq, _) = node
        .commit(&alice.did, |repo| {
            repo.delete_record(POSTS, "3jzfcijpj2z2a").unwrap();
        })
        .await;
    mine.push(seq);
    let (seq, multi) = node
        .commit(&bob.did, |repo| {
            for (i, rkey) in ["3jzfcijpj2z2d", "3jzfcijpj2z2e", "3jzfcijpj2z2f"]
                .iter()
                .enumerate()
            {
                repo.create_record(POSTS, rkey, &post(&format!("bob {i}")))
                    .unwrap();
            }
        })
        .await;
    assert_eq!(multi.ops.len(), 3);
    mine.push(seq);
    let middle = seq;
    mine.push(
        node.sequencer
            .sequence_sync(
                &bob.did,
                &multi.cid,
                multi.blocks.get(&multi.cid).unwrap(),
                &multi.rev,
            )
            .unwrap(),
    );
    mine.push(
        node.sequencer
            .sequence_account(&bob.did, false, Some("deactivated"))
            .unwrap(),
    );
    mine.push(
        node.sequencer
            .sequence_account(&bob.did, true, None)
            .unwrap(),
    );
    let (seq, _) = node
        .commit(&bob.did, |repo| {
            repo.delete_record(POSTS, "3jzfcijpj2z2e").unwrap();
            repo.update_record(POSTS, "3jzfcijpj2z2d", &post("bob edited"))
                .unwrap();
        })
        .await;
    mine.push(seq);
    let last = node
        .sequencer
        .sequence_identity(&bob.did, Some(&bob.handle))
        .unwrap();
    mine.push(last);

    let expected = expected_after(&node.sequencer, 0);
    for seq in &mine {
        assert!(
            expected.iter().any(|e| e["seq"] == json!(seq)),
            "event {seq} made by the test is not in the log"
        );
    }

    let all = consume(&node, Some(0), last).await;
    assert_eq!(all["errors"], json!([]), "consumer reported errors: {all}");
    assert_eq!(all["timedOut"], json!(false));
    assert_eq!(all["events"], Value::Array(expected.clone()));
    // The per-op view has one entry per op: 3 + 1 + 1 + 3 + 2 commit ops.
    let ops = expected
        .iter()
        .filter(|e| ["create", "update", "delete"].contains(&e["event"].as_str().unwrap()))
        .count();
    assert!(ops >= 10, "expected at least the test's 10 ops, got {ops}");

    let rest = consume(&node, Some(middle), last).await;
    assert_eq!(
        rest["errors"],
        json!([]),
        "consumer reported errors: {rest}"
    );
    let remaining: Vec<Value> = expected
        .into_iter()
        .filter(|e| e["seq"].as_i64().unwrap() > middle)
        .collect();
    assert_eq!(rest["events"], Value::Array(remaining));
    atp_test_vectors::report("firehose-consume.mjs (@atproto/sync Firehose)", 2);
    node.pds.stop().await;
}

#[tokio::test]
async fn future_cursor_is_refused_with_an_error_frame() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    node.sequencer.sequence_identity(&alice.did, None).unwrap();
    let future = node.sequencer.latest_seq() + 1;
    let mut sub = SubscriptionClient::connect(&format!("{}?cursor={future}", node.firehose_url()))
        .await
        .unwrap();
    let frame = sub.next_frame().await.unwrap().unwrap();
    let error = frame.error_body().expect("an error frame");
    assert_eq!(error.error, "FutureCursor");
    assert_eq!(error.message.as_deref(), Some("Cursor in the future."));
    assert!(sub.next_frame().await.is_none());
    node.pds.stop().await;
}

#[tokio::test]
async fn outdated_cursor_gets_info_then_the_oldest_kept_events() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let old = node.sequencer.sequence_identity(&alice.did, None).unwrap();
    let cutoff = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert!(node.sequencer.prune_before(&cutoff).unwrap() >= 1);
    assert!(node.sequencer.pruned_through().unwrap() >= old);
    let kept = node
        .sequencer
        .sequence_account(&alice.did, true, None)
        .unwrap();

    let mut sub = SubscriptionClient::connect(&format!("{}?cursor=0", node.firehose_url()))
        .await
        .unwrap();
    let info = sub.next_frame().await.unwrap().unwrap();
    assert_eq!(info.message_type(), Some("#info"));
    let info = body(&info);
    assert_eq!(text(&info, "name"), "OutdatedCursor");
    assert_eq!(
        text(&info, "message"),
        "Requested cursor exceeded limit. Possibly missing events"
    );
    let next = sub.next_frame().await.unwrap().unwrap();
    assert_eq!(next.message_type(), Some("#account"));
    assert_eq!(seq_of(&body(&next)), kept);
    node.pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_switches_to_live_without_gaps_or_duplicates() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let start = node.sequencer.latest_seq();
    for _ in 0..20 {
        node.sequencer.sequence_identity(&alice.did, None).unwrap();
    }
    // Appends keep coming while the subscriber replays the backlog.
    let writer = {
        let sequencer = node.sequencer.clone();
        let did = alice.did.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..200 {
                sequencer.sequence_identity(&did, None).unwrap();
            }
        })
    };
    let mut sub = SubscriptionClient::connect(&format!("{}?cursor={start}", node.firehose_url()))
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 220 {
        let frame = tokio::time::timeout(Duration::from_secs(60), sub.next_frame())
            .await
            .expect("the stream stalled")
            .unwrap()
            .unwrap();
        seqs.push(seq_of(&body(&frame)));
    }
    writer.await.unwrap();
    let wanted: Vec<i64> = (start + 1..=start + 220).collect();
    assert_eq!(seqs, wanted);

    // A subscriber without a cursor only gets what comes next.
    let mut live = SubscriptionClient::connect(&node.firehose_url())
        .await
        .unwrap();
    while node.sequencer.subscriber_count() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (seq, _) = node
        .commit(&alice.did, |repo| {
            repo.create_record(POSTS, "3jzfcijpj2z2a", &post("live"))
                .unwrap();
        })
        .await;
    let frame = live.next_frame().await.unwrap().unwrap();
    assert_eq!(frame.message_type(), Some("#commit"));
    assert_eq!(seq_of(&body(&frame)), seq);
    node.pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_cut_off() {
    let config = ServerConfig {
        subscription_buffer: 2,
        slow_consumer_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let node = Node::start_with_config(config).await;
    let alice = node.pds.create("alice").await;
    let mut sub = SubscriptionClient::connect(&node.firehose_url())
        .await
        .unwrap();
    while node.sequencer.subscriber_count() < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Large commits fill the socket buffers, then the subscriber's queue;
    // the subscriber reads nothing until the server has dropped its stream.
    let big = "x".repeat(400_000);
    let mut rkeys = (0..60u32).map(|i| format!("big{i:04}"));
    while node.sequencer.subscriber_count() > 0 {
        let rkey = rkeys
            .next()
            .expect("the server never gave up on the subscriber");
        let text = big.clone();
        node.commit(&alice.did, move |repo| {
            repo.create_record(POSTS, &rkey, &post(&text)).unwrap();
        })
        .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last_error = None;
    while let Some(frame) = sub.next_frame().await {
        let frame = frame.unwrap();
        if frame.is_error() {
            last_error = frame.error_body();
            break;
        }
    }
    let error = last_error.expect("an error frame at the end");
    assert_eq!(error.error, CONSUMER_TOO_SLOW);
    node.pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_writes_through_xrpc_reach_the_reference_consumer() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let client = node.pds.bearer(&alice.access_jwt);
    let record =
        |text: &str| json!({"$type": POSTS, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"});
    let created: Value = client
        .procedure(
            "com.atproto.repo.createRecord",
            &(),
            &json!({"repo": alice.did, "collection": POSTS, "rkey": "3jzfcijpj2z2a", "record": record("one")}),
        )
        .await
        .unwrap();
    let _: Value = client
        .procedure(
            "com.atproto.repo.putRecord",
            &(),
            &json!({"repo": alice.did, "collection": POSTS, "rkey": "3jzfcijpj2z2a", "record": record("two")}),
        )
        .await
        .unwrap();
    let _: Value = client
        .procedure(
            "com.atproto.repo.applyWrites",
            &(),
            &json!({"repo": alice.did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#create", "collection": POSTS, "rkey": "3jzfcijpj2z2b", "value": record("three")},
                {"$type": "com.atproto.repo.applyWrites#create", "collection": POSTS, "rkey": "3jzfcijpj2z2c", "value": record("four")},
            ]}),
        )
        .await
        .unwrap();
    let _: Value = client
        .procedure(
            "com.atproto.repo.deleteRecord",
            &(),
            &json!({"repo": alice.did, "collection": POSTS, "rkey": "3jzfcijpj2z2b"}),
        )
        .await
        .unwrap();
    let last = node
        .sequencer
        .sequence_identity(&alice.did, Some(&alice.handle))
        .unwrap();

    let expected = expected_after(&node.sequencer, 0);
    let ops: Vec<(&str, &str)> = expected
        .iter()
        .filter(|e| e["event"] != "identity" && e["event"] != "account" && e["event"] != "sync")
        .map(|e| (e["event"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    let path = |rkey: &str| format!("{POSTS}/{rkey}");
    let (a, b, c) = (
        path("3jzfcijpj2z2a"),
        path("3jzfcijpj2z2b"),
        path("3jzfcijpj2z2c"),
    );
    assert_eq!(
        ops,
        vec![
            ("create", a.as_str()),
            ("update", a.as_str()),
            ("create", b.as_str()),
            ("create", c.as_str()),
            ("delete", b.as_str()),
        ]
    );
    assert!(expected.iter().any(|e| e["cid"] == created["cid"]));

    let seen = consume(&node, Some(0), last).await;
    assert_eq!(
        seen["errors"],
        json!([]),
        "consumer reported errors: {seen}"
    );
    assert_eq!(seen["timedOut"], json!(false));
    assert_eq!(seen["events"], Value::Array(expected));
    atp_test_vectors::report("firehose-consume.mjs (XRPC record writes)", 1);
    node.pds.stop().await;
}
