//! The router's fallback: methods without a route go to it, with their
//! query, headers and body intact; routed methods, bad paths and wrong
//! verbs never reach it.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use atp_xrpc::lexicon::Lexicons;
use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
use common::request;

/// A router with one method and a fallback that echoes what it was given.
fn router(with_fallback: bool) -> Router {
    let mut router = Router::new();
    router.lexicons(Arc::new(Lexicons::bundled()));
    router
        .query("com.example.served", |_req| async {
            XrpcResponse::json(&serde_json::json!({ "served": true }))
        })
        .unwrap();
    if with_fallback {
        router.fallback(|mut req| async move {
            let head = req.head().clone();
            let body = req.bytes().await?;
            let header = |name: &str| {
                head.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            if head.nsid == "com.example.refused" {
                return Err(XrpcError::invalid_request("refused by the fallback"));
            }
            XrpcResponse::json(&serde_json::json!({
                "nsid": head.nsid,
                "method": head.method.as_str(),
                "query": head.uri.query(),
                "contentType": header("content-type"),
                "proxy": header("atproto-proxy"),
                "body": String::from_utf8_lossy(&body),
            }))
        });
    }
    router
}

#[tokio::test]
async fn unknown_methods_reach_the_fallback_intact() {
    let server = XrpcServer::bind("127.0.0.1:0", router(true), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();

    let resp = request(
        addr,
        "GET",
        "/xrpc/app.bsky.feed.getTimeline?limit=5&cursor=a%20b",
        &[("atproto-proxy", "did:web:api.example#bsky_appview")],
        b"",
    )
    .await;
    assert_eq!(resp.status, 200);
    let echoed = resp.json();
    assert_eq!(echoed["nsid"], "app.bsky.feed.getTimeline");
    assert_eq!(echoed["method"], "GET");
    assert_eq!(echoed["query"], "limit=5&cursor=a%20b");
    assert_eq!(echoed["proxy"], "did:web:api.example#bsky_appview");

    let resp = request(
        addr,
        "POST",
        "/xrpc/com.example.unknown.doThing",
        &[("Content-Type", "application/json")],
        br#"{"x":1}"#,
    )
    .await;
    assert_eq!(resp.status, 200);
    let echoed = resp.json();
    assert_eq!(echoed["nsid"], "com.example.unknown.doThing");
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["contentType"], "application/json");
    assert_eq!(echoed["body"], r#"{"x":1}"#);

    // The fallback's refusals are answered like any handler's.
    let resp = request(addr, "GET", "/xrpc/com.example.refused", &[], b"").await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["message"], "refused by the fallback");
    server.shutdown().await;
}

#[tokio::test]
async fn routed_methods_and_bad_calls_do_not_reach_the_fallback() {
    let server = XrpcServer::bind("127.0.0.1:0", router(true), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();

    let resp = request(addr, "GET", "/xrpc/com.example.served", &[], b"").await;
    assert_eq!(resp.json(), serde_json::json!({ "served": true }));

    let resp = request(addr, "GET", "/xrpc/not-an-nsid", &[], b"").await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["message"], "invalid xrpc path");

    // A method the catalog knows as a query, called with POST.
    let resp = request(
        addr,
        "POST",
        "/xrpc/app.bsky.actor.getProfile",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["message"],
        "Incorrect HTTP method (POST) expected GET"
    );

    let resp = request(addr, "PUT", "/xrpc/com.example.unknown", &[], b"").await;
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.json()["message"],
        "XRPC requests only supports GET and POST"
    );

    let resp = request(addr, "GET", "/other", &[], b"").await;
    assert_eq!(resp.status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_fallback_unknown_methods_are_not_implemented() {
    let server = XrpcServer::bind("127.0.0.1:0", router(false), ServerConfig::default())
        .await
        .unwrap();
    let resp = request(
        server.local_addr(),
        "GET",
        "/xrpc/app.bsky.feed.getTimeline",
        &[],
        b"",
    )
    .await;
    assert_eq!(resp.status, 501);
    assert_eq!(resp.json()["error"], "MethodNotImplemented");
    server.shutdown().await;
}
