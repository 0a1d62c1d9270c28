//! The firehose with several subscribers at once, all served from the
//! shared tail of the event log: subscribers joining with a cursor while
//! writes continue get every event exactly once and in order, next to
//! live ones; a subscriber that stops reading is cut off with
//! `ConsumerTooSlow` while the others keep receiving everything.
#![allow(clippy::unwrap_used)]

mod common;
mod sync_support;

use std::time::Duration;

use atp_crypto::{cid_for_raw, Ipld};
use atp_xrpc::server::ServerConfig;
use atp_xrpc::stream::{SubscriptionClient, CONSUMER_TOO_SLOW};
use sync_support::Node;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";

/// Reads frames on a task and passes on each one's sequence number (or
/// the error name of an error frame, as `Err`).
fn reader(mut client: SubscriptionClient) -> mpsc::UnboundedReceiver<Result<i64, String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(frame) = client.next_frame().await {
            let frame = frame.unwrap();
            if let Some(error) = frame.error_body() {
                let _ = tx.send(Err(error.error));
                break;
            }
            let Ipld::Map(body) = frame.body::<Ipld>().unwrap() else {
                panic!("frame body is not a map")
            };
            let Some(Ipld::Integer(seq)) = body.get("seq") else {
                panic!("frame without seq")
            };
            if tx.send(Ok(i64::try_from(*seq).unwrap())).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next `count` sequence numbers a reader passes on.
async fn next_seqs(
    rx: &mut mpsc::UnboundedReceiver<Result<i64, String>>,
    count: usize,
) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let seq = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the stream stalled")
            .expect("the stream ended");
        seqs.push(seq.unwrap());
    }
    seqs
}

async fn wait_for_subscribers(node: &Node, count: usize) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while node.sequencer.subscriber_count() != count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("never {count} subscribers"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cursor_subscriber_joins_live_ones_while_writes_continue() {
    let node = Node::start().await;
    // A backlog longer than one page of the log.
    let backlog = {
        let log = node.sequencer.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..600 {
                log.sequence_identity(DID, None).unwrap();
            }
            log.latest_seq()
        })
        .await
        .unwrap()
    };
    let mut live = Vec::new();
    for _ in 0..3 {
        live.push(reader(
            SubscriptionClient::connect(&node.firehose_url())
                .await
                .unwrap(),
        ));
    }
    wait_for_subscribers(&node, 3).await;

    let writes = 900;
    let writer = {
        let log = node.sequencer.clone();
        tokio::task::spawn_blocking(move || {
            for _ in 0..writes {
                log.sequence_identity(DID, None).unwrap();
            }
        })
    };
    // Join from the start of the log while the writes go on.
    while node.sequencer.latest_seq() < backlog + 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut from_start = reader(
        SubscriptionClient::connect(&format!("{}?cursor=0", node.firehose_url()))
            .await
            .unwrap(),
    );
    writer.await.unwrap();
    let last = backlog + writes;
    assert_eq!(node.sequencer.latest_seq(), last);

    let everything: Vec<i64> = (1..=last).collect();
    assert_eq!(
        next_seqs(&mut from_start, everything.len()).await,
        everything
    );
    let live_part: Vec<i64> = (backlog + 1..=last).collect();
    for rx in &mut live {
        assert_eq!(next_seqs(rx, live_part.len()).await, live_part);
    }
    // Nothing more (no duplicate at the end either).
    let after = node.sequencer.sequence_identity(DID, None).unwrap();
    assert_eq!(next_seqs(&mut from_start, 1).await, vec![after]);
    for rx in &mut live {
        assert_eq!(next_seqs(rx, 1).await, vec![after]);
    }
    node.pds.stop().await;
}

const WS_UPGRADE: &str = "GET /xrpc/com.atproto.sync.subscribeRepos HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A subscription on a socket with a small receive buffer, read by no one
/// until the test says so.
async fn stalled_subscription(node: &Node) -> tokio::net::TcpStream {
    let addr = node.pds.server.local_addr();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(WS_UPGRADE.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_ne!(stream.read(&mut byte).await.unwrap(), 0, "closed early");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    stream
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_subscriber_is_cut_off_while_the_others_keep_up() {
    let config = ServerConfig {
        subscription_buffer: 4,
        slow_consumer_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let node = Node::start_with_config(config).await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        readers.push(reader(
            SubscriptionClient::connect(&node.firehose_url())
                .await
                .unwrap(),
        ));
    }
    wait_for_subscribers(&node, 2).await;
    let mut stalled = stalled_subscription(&node).await;
    wait_for_subscribers(&node, 3).await;

    // Large events (a `#sync` carrying 200 kB) until the server gives up
    // on the subscriber that reads nothing.
    let first = node.sequencer.latest_seq() + 1;
    let bytes = vec![7u8; 200_000];
    let cid = cid_for_raw(&bytes);
    let mut written = 0;
    while node.sequencer.subscriber_count() == 3 {
        assert!(written < 200, "the server never gave up on the subscriber");
        let (log, bytes) = (node.sequencer.clone(), bytes.clone());
        tokio::task::spawn_blocking(move || log.sequence_sync(DID, &cid, &bytes, "3jzfcijpj2z2a"))
            .await
            .unwrap()
            .unwrap();
        written += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The others got everything so far, and what comes after.
    let after = node.sequencer.sequence_identity(DID, None).unwrap();
    let wanted: Vec<i64> = (first..=after).collect();
    for rx in &mut readers {
        assert_eq!(next_seqs(rx, wanted.len()).await, wanted);
    }

    // The stalled subscriber's stream ends with ConsumerTooSlow.
    let mut received = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stalled.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("the stalled subscriber's stream did not end"),
        }
    }
    assert!(
        find(&received, CONSUMER_TOO_SLOW.as_bytes()),
        "no {CONSUMER_TOO_SLOW} frame at the end ({} bytes received)",
        received.len()
    );
    assert!(received.len() < written * bytes.len());
    node.pds.stop().await;
}
