//! Event streams: framing round trip, cursor, error frames, slow consumers,
//! shutdown closing subscriptions.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcServer};
use atp_xrpc::stream::{Frame, FrameHeader, FrameStream, SubscriptionClient, CONSUMER_TOO_SLOW};
use futures_util::StreamExt;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Commit {
    seq: i64,
    repo: String,
    #[serde(with = "serde_bytes_compat")]
    blocks: Vec<u8>,
}

mod serde_bytes_compat {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[test]
fn frame_round_trip() {
    let commit = Commit {
        seq: 42,
        repo: "did:plc:abc".into(),
        blocks: vec![1, 2, 3],
    };
    let frame = Frame::message("#commit", &commit).unwrap();
    // Header: {t: "#commit", op: 1} in canonical order.
    let expected_header = [
        0xa2, 0x61, b't', 0x67, b'#', b'c', b'o', b'm', b'm', b'i', b't', 0x62, b'o', b'p', 0x01,
    ];
    assert_eq!(&frame.as_bytes()[..expected_header.len()], &expected_header);
    let decoded = Frame::decode(frame.as_bytes()).unwrap();
    assert_eq!(decoded, frame);
    assert_eq!(decoded.message_type(), Some("#commit"));
    assert_eq!(decoded.body::<Commit>().unwrap(), commit);

    let error = Frame::error("FutureCursor", Some("cursor in the future"));
    assert_eq!(&error.as_bytes()[..5], &[0xa1, 0x62, b'o', b'p', 0x20]);
    let decoded = Frame::decode(error.as_bytes()).unwrap();
    assert_eq!(decoded.header(), &FrameHeader::Error);
    let body = decoded.error_body().unwrap();
    assert_eq!(body.error, "FutureCursor");
    assert_eq!(body.message.as_deref(), Some("cursor in the future"));
}

fn numbers_from(cursor: i64, count: i64) -> FrameStream {
    Box::pin(
        futures_util::stream::iter(cursor..cursor + count).map(|seq| {
            Frame::message(
                "#commit",
                &Commit {
                    seq,
                    repo: "did:plc:abc".into(),
                    blocks: vec![],
                },
            )
            .unwrap()
        }),
    )
}

async fn start(router: Router, config: ServerConfig) -> (XrpcServer, String) {
    let server = XrpcServer::bind("127.0.0.1:0", router, config)
        .await
        .unwrap();
    let base = format!("ws://{}", server.local_addr());
    (server, base)
}

#[tokio::test]
async fn subscription_passes_cursor_and_ends() {
    let mut router = Router::new();
    router
        .subscription("com.example.subscribe", |req| async move {
            let cursor = req.cursor()?.unwrap_or(0);
            if cursor > 1000 {
                return Err(
                    XrpcError::invalid_request("cursor in the future").with_name("FutureCursor")
                );
            }
            Ok(numbers_from(cursor, 5))
        })
        .unwrap();
    let (server, base) = start(router, ServerConfig::default()).await;
    let mut sub =
        SubscriptionClient::connect(&format!("{base}/xrpc/com.example.subscribe?cursor=10"))
            .await
            .unwrap();
    let mut seqs = Vec::new();
    while let Some(frame) = sub.next_frame().await {
        let frame = frame.unwrap();
        seqs.push(frame.body::<Commit>().unwrap().seq);
    }
    assert_eq!(seqs, vec![10, 11, 12, 13, 14]);

    let mut sub =
        SubscriptionClient::connect(&format!("{base}/xrpc/com.example.subscribe?cursor=5000"))
            .await
            .unwrap();
    let frame = sub.next_frame().await.unwrap().unwrap();
    let body = frame.error_body().unwrap();
    assert_eq!(body.error, "FutureCursor");
    assert!(sub.next_frame().await.is_none());

    // A bad cursor is an error frame too.
    let mut sub =
        SubscriptionClient::connect(&format!("{base}/xrpc/com.example.subscribe?cursor=abc"))
            .await
            .unwrap();
    let frame = sub.next_frame().await.unwrap().unwrap();
    assert_eq!(frame.error_body().unwrap().error, "InvalidRequest");
    server.shutdown().await;
}

#[tokio::test]
async fn slow_consumer_is_cut_off_with_an_error_frame() {
    let produced = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(tokio::sync::Notify::new());
    struct OnDrop(Arc<tokio::sync::Notify>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.notify_one();
        }
    }
    let mut router = Router::new();
    {
        let produced = produced.clone();
        let dropped = dropped.clone();
        router
            .subscription("com.example.firehose", move |_req| {
                let produced = produced.clone();
                let guard = OnDrop(dropped.clone());
                async move {
                    // An endless stream of 64 KiB frames.
                    let stream = futures_util::stream::iter(0i64..).map(move |seq| {
                        let _keep = &guard;
                        produced.fetch_add(1, Ordering::SeqCst);
                        Frame::message(
                            "#commit",
                            &Commit {
                                seq,
                                repo: "did:plc:abc".into(),
                                blocks: vec![0u8; 64 * 1024],
                            },
                        )
                        .unwrap()
                    });
                    Ok(Box::pin(stream) as FrameStream)
                }
            })
            .unwrap();
    }
    let config = ServerConfig {
        subscription_buffer: 8,
        slow_consumer_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let (server, base) = start(router, config).await;
    let mut sub = SubscriptionClient::connect(&format!("{base}/xrpc/com.example.firehose"))
        .await
        .unwrap();
    // Do not read until the server has given up on us.
    dropped.notified().await;
    let produced_at_cutoff = produced.load(Ordering::SeqCst);
    let mut received = 0usize;
    let mut last = None;
    while let Some(frame) = sub.next_frame().await {
        let frame = frame.unwrap();
        if frame.is_error() {
            last = frame.error_body();
            break;
        }
        received += 1;
    }
    let last = last.expect("an error frame at the end");
    assert_eq!(last.error, CONSUMER_TOO_SLOW);
    assert!(sub.next_frame().await.is_none());
    // Memory stayed bounded: the server stopped producing after what the
    // socket buffers and the 8-frame queue could hold (64 KiB frames).
    assert!(produced_at_cutoff < 2_000, "produced {produced_at_cutoff}");
    assert!(received <= produced_at_cutoff);
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_subscriptions() {
    let mut router = Router::new();
    router
        .subscription("com.example.forever", |_req| async move {
            Ok(Box::pin(futures_util::stream::pending()) as FrameStream)
        })
        .unwrap();
    let (server, base) = start(router, ServerConfig::default()).await;
    let mut sub = SubscriptionClient::connect(&format!("{base}/xrpc/com.example.forever"))
        .await
        .unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    assert!(sub.next_frame().await.is_none());
    shutdown.await.unwrap();
}

#[tokio::test]
async fn subscription_route_without_upgrade_is_400() {
    let mut router = Router::new();
    router
        .subscription("com.example.forever", |_req| async move {
            Ok(Box::pin(futures_util::stream::pending()) as FrameStream)
        })
        .unwrap();
    let (server, _) = start(router, ServerConfig::default()).await;
    let client =
        atp_xrpc::client::XrpcClient::new(&format!("http://{}", server.local_addr())).unwrap();
    let err = client
        .query::<_, serde_json::Value>("com.example.forever", &())
        .await
        .unwrap_err();
    assert!(
        matches!(err, atp_xrpc::Error::Xrpc { ref error, .. } if error == "InvalidRequest"),
        "{err:?}"
    );
    server.shutdown().await;
}
