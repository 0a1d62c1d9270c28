//! Server behaviour: CORS, streaming bodies, plain paths, caps and
//! timeouts, graceful shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use atp_xrpc::client::XrpcClient;
use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
use bytes::Bytes;
use common::request;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

fn router() -> Router {
    let mut router = Router::new();
    router.path("/xrpc/_health", |_req| async {
        XrpcResponse::json(&serde_json::json!({ "version": "test" }))
    });
    router
        .query("com.example.hello", |req| async move {
            let name = req.raw_params().get("name").unwrap_or("world").to_owned();
            XrpcResponse::json(&serde_json::json!({ "message": format!("hello {name}") }))
        })
        .unwrap();
    // Counts the bytes of a streamed body, and streams back that many bytes.
    router
        .procedure("com.example.upload", |mut req| async move {
            let mut stream = Box::pin(req.body_stream()?);
            let mut total = 0usize;
            while let Some(chunk) = stream.next().await {
                total += chunk?.len();
            }
            let chunks = futures_util::stream::iter(
                (0..total / 1000).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1000]))),
            );
            Ok(XrpcResponse::stream("application/octet-stream", chunks))
        })
        .unwrap()
        .max_body_bytes(1_000_000);
    router
}

#[tokio::test]
async fn cors_preflight_and_headers() {
    let server = XrpcServer::bind("127.0.0.1:0", router(), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let resp = request(
        addr,
        "OPTIONS",
        "/xrpc/com.example.hello",
        &[
            ("Origin", "https://app.example"),
            ("Access-Control-Request-Method", "GET"),
            (
                "Access-Control-Request-Headers",
                "authorization,atproto-proxy",
            ),
        ],
        b"",
    )
    .await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("authorization,atproto-proxy")
    );
    assert!(resp
        .header("access-control-allow-methods")
        .unwrap()
        .contains("POST"));
    assert_eq!(resp.header("access-control-max-age"), Some("86400"));

    let resp = request(
        addr,
        "GET",
        "/xrpc/com.example.hello?name=bob",
        &[("Origin", "https://app.example")],
        b"",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(resp.json()["message"], "hello bob");
    // Errors carry CORS headers too, so browsers can read them.
    let resp = request(addr, "GET", "/xrpc/com.example.nothing", &[], b"").await;
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    server.shutdown().await;
}

#[tokio::test]
async fn health_path_and_streamed_bodies() {
    let server = XrpcServer::bind("127.0.0.1:0", router(), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let resp = request(addr, "GET", "/xrpc/_health", &[], b"").await;
    assert_eq!(resp.json()["version"], "test");

    let client = XrpcClient::new(&format!("http://{addr}")).unwrap();
    let body = client
        .procedure_bytes(
            "com.example.upload",
            &(),
            "application/octet-stream",
            Bytes::from(vec![1u8; 250_000]),
        )
        .await
        .unwrap();
    assert_eq!(body.bytes.len(), 250_000);
    assert_eq!(
        body.content_type.as_deref(),
        Some("application/octet-stream")
    );
    // Over the route's limit, while streaming.
    let err = client
        .procedure_bytes(
            "com.example.upload",
            &(),
            "application/octet-stream",
            Bytes::from(vec![1u8; 1_000_001]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, atp_xrpc::Error::Xrpc { ref error, .. } if error == "PayloadTooLarge"),
        "{err:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_headers_and_query_are_refused() {
    let config = ServerConfig {
        max_query_bytes: 100,
        ..ServerConfig::default()
    };
    let server = XrpcServer::bind("127.0.0.1:0", router(), config)
        .await
        .unwrap();
    let addr = server.local_addr();
    let long = "a".repeat(200);
    let resp = request(
        addr,
        "GET",
        &format!("/xrpc/com.example.hello?name={long}"),
        &[],
        b"",
    )
    .await;
    assert_eq!(resp.status, 414);
    assert_eq!(resp.json()["error"], "InvalidRequest");

    let huge = "x".repeat(64 * 1024);
    let raw = format!("GET /xrpc/com.example.hello HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    let resp = common::raw_exchange(addr, raw.as_bytes()).await;
    assert_eq!(resp.map(|r| r.status), Some(431));
    server.shutdown().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off() {
    let config = ServerConfig {
        header_read_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = XrpcServer::bind("127.0.0.1:0", router(), config)
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET /xrpc/com.example.hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Never finish the head: the server must close the connection.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "connection left open");
    server.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let (entered_tx, entered_rx) = oneshot::channel::<()>();
    let (release_tx, release_rx) = oneshot::channel::<()>();
    let entered = std::sync::Mutex::new(Some(entered_tx));
    let release = std::sync::Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
    let mut router = Router::new();
    router
        .query("com.example.slow", move |_req| {
            if let Some(tx) = entered.lock().unwrap().take() {
                let _ = tx.send(());
            }
            let release = release.clone();
            async move {
                if let Some(rx) = release.lock().await.take() {
                    let _ = rx.await;
                }
                XrpcResponse::json(&serde_json::json!({ "done": true }))
            }
        })
        .unwrap();
    let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let in_flight =
        tokio::spawn(async move { request(addr, "GET", "/xrpc/com.example.slow", &[], b"").await });
    entered_rx.await.unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    // New connections are refused once the listener is closed.
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "listener still accepting after shutdown");
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the request"
    );
    release_tx.send(()).unwrap();
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["done"], true);
    shutdown.await.unwrap();
}

#[tokio::test]
async fn handler_errors_keep_their_status() {
    let mut router = Router::new();
    router
        .procedure("com.example.fail", |_req| async move {
            Err::<XrpcResponse, _>(
                XrpcError::payload_too_large("blob too big").with_name("BlobTooLarge"),
            )
        })
        .unwrap();
    let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default())
        .await
        .unwrap();
    let resp = request(
        server.local_addr(),
        "POST",
        "/xrpc/com.example.fail",
        &[],
        b"",
    )
    .await;
    assert_eq!(resp.status, 413);
    assert_eq!(
        resp.json(),
        serde_json::json!({"error": "BlobTooLarge", "message": "blob too big"})
    );
    server.shutdown().await;
}
