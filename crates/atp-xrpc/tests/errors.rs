//! Every error status of the server, with the reference's names.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use atp_xrpc::client::XrpcClient;
use atp_xrpc::server::{
    bearer_token, AuthFn, Credentials, RateLimiter, Router, ServerConfig, XrpcError, XrpcResponse,
    XrpcServer,
};
use common::request;
use hyper::StatusCode;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ListParams {
    limit: Option<u32>,
    uris: Option<Vec<String>>,
    reverse: Option<bool>,
}

struct Did(String);

async fn start() -> XrpcServer {
    let mut router = Router::new();
    router
        .query("com.example.list", |req| async move {
            let params: ListParams = req.params()?;
            XrpcResponse::json(&serde_json::json!({
                "limit": params.limit,
                "uris": params.uris,
                "reverse": params.reverse,
            }))
        })
        .unwrap();
    router
        .procedure("com.example.echo", |mut req| async move {
            let value: serde_json::Value = req.json().await?;
            XrpcResponse::json(&value)
        })
        .unwrap()
        .max_body_bytes(1024);
    router
        .query("com.example.secret", |req| async move {
            let did = req.credentials().and_then(|c| c.get::<Did>()).unwrap();
            XrpcResponse::json(&serde_json::json!({ "did": did.0 }))
        })
        .unwrap()
        .auth(Arc::new(AuthFn(
            |head: &atp_xrpc::server::RequestHead| match bearer_token(head) {
                None => {
                    Err(XrpcError::auth_required("Authentication Required")
                        .with_name("AuthMissing"))
                }
                Some("expired") => Err(XrpcError::expired_token("Token has expired")),
                Some("guest") => Err(XrpcError::forbidden("guests may not")),
                Some(token) => Ok(Credentials::new(Did(format!("did:example:{token}")))),
            },
        )));
    router
        .query("com.example.limited", |_req| async move {
            XrpcResponse::json(&serde_json::json!({}))
        })
        .unwrap()
        .rate_limit(Arc::new(RateLimiter::per_ip(
            "limited",
            2,
            Duration::from_secs(3600),
        )));
    router
        .query("com.example.broken", |_req| async move {
            Err::<XrpcResponse, _>(XrpcError::internal("database password is hunter2"))
        })
        .unwrap();
    router
        .query("com.example.custom", |_req| async move {
            Err::<XrpcResponse, _>(
                XrpcError::invalid_request("no such record").with_name("RecordNotFound"),
            )
        })
        .unwrap();
    XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default())
        .await
        .unwrap()
}

fn assert_envelope(resp: &common::RawResponse, status: u16, error: &str) -> serde_json::Value {
    assert_eq!(
        resp.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let body = resp.json();
    assert_eq!(body["error"], error, "body: {body}");
    assert!(body["message"].is_string(), "body: {body}");
    assert!(resp
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    body
}

#[tokio::test]
async fn unknown_method_is_501_method_not_implemented() {
    let server = start().await;
    let resp = request(
        server.local_addr(),
        "GET",
        "/xrpc/com.example.nothing",
        &[],
        b"",
    )
    .await;
    let body = assert_envelope(&resp, 501, "MethodNotImplemented");
    assert_eq!(body["message"], "Method Not Implemented");
    // A procedure call of an unknown method too.
    let resp = request(
        server.local_addr(),
        "POST",
        "/xrpc/com.example.nothing",
        &[],
        b"",
    )
    .await;
    assert_envelope(&resp, 501, "MethodNotImplemented");
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_verb_is_400_invalid_request() {
    let server = start().await;
    let resp = request(
        server.local_addr(),
        "POST",
        "/xrpc/com.example.list",
        &[],
        b"",
    )
    .await;
    let body = assert_envelope(&resp, 400, "InvalidRequest");
    assert_eq!(body["message"], "Incorrect HTTP method (POST) expected GET");
    let resp = request(
        server.local_addr(),
        "GET",
        "/xrpc/com.example.echo",
        &[],
        b"",
    )
    .await;
    let body = assert_envelope(&resp, 400, "InvalidRequest");
    assert_eq!(body["message"], "Incorrect HTTP method (GET) expected POST");
    server.shutdown().await;
}

#[tokio::test]
async fn params_are_coerced_and_bad_params_are_400() {
    let server = start().await;
    let addr = server.local_addr();
    let resp = request(
        addr,
        "GET",
        "/xrpc/com.example.list?limit=5&uris=at%3A%2F%2Fa&uris=b&reverse=true",
        &[],
        b"",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        serde_json::json!({"limit": 5, "uris": ["at://a", "b"], "reverse": true})
    );
    for bad in [
        "limit=ten",
        "limit=-1",
        "reverse=yes",
        "limit=1&limit=2",
        "limit=%zz",
    ] {
        let resp = request(
            addr,
            "GET",
            &format!("/xrpc/com.example.list?{bad}"),
            &[],
            b"",
        )
        .await;
        assert_envelope(&resp, 400, "InvalidRequest");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn bad_json_body_is_400_and_oversized_body_is_413() {
    let server = start().await;
    let addr = server.local_addr();
    let json = [("Content-Type", "application/json")];
    let resp = request(addr, "POST", "/xrpc/com.example.echo", &json, b"{\"a\":1}").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), serde_json::json!({"a": 1}));
    let resp = request(addr, "POST", "/xrpc/com.example.echo", &json, b"{not json").await;
    assert_envelope(&resp, 400, "InvalidRequest");
    let text = [("Content-Type", "text/plain")];
    let resp = request(addr, "POST", "/xrpc/com.example.echo", &text, b"{}").await;
    assert_envelope(&resp, 400, "InvalidRequest");
    let big = vec![b' '; 4096];
    let resp = request(addr, "POST", "/xrpc/com.example.echo", &json, &big).await;
    assert_envelope(&resp, 413, "PayloadTooLarge");
    // Chunked (no Content-Length): the limit applies while reading.
    let mut raw = b"POST /xrpc/com.example.echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..8 {
        raw.extend_from_slice(b"200\r\n");
        raw.extend_from_slice(&[b' '; 0x200]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let resp = common::raw_exchange(addr, &raw).await.unwrap();
    assert_envelope(&resp, 413, "PayloadTooLarge");
    server.shutdown().await;
}

#[tokio::test]
async fn auth_errors_come_from_the_authenticator() {
    let server = start().await;
    let addr = server.local_addr();
    let resp = request(addr, "GET", "/xrpc/com.example.secret", &[], b"").await;
    assert_envelope(&resp, 401, "AuthMissing");
    let resp = request(
        addr,
        "GET",
        "/xrpc/com.example.secret",
        &[("Authorization", "Bearer expired")],
        b"",
    )
    .await;
    let body = assert_envelope(&resp, 401, "ExpiredToken");
    assert_eq!(body["message"], "Token has expired");
    let resp = request(
        addr,
        "GET",
        "/xrpc/com.example.secret",
        &[("Authorization", "Bearer guest")],
        b"",
    )
    .await;
    assert_envelope(&resp, 403, "Forbidden");
    let resp = request(
        addr,
        "GET",
        "/xrpc/com.example.secret",
        &[("Authorization", "Bearer alice")],
        b"",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["did"], "did:example:alice");
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_is_429_with_headers() {
    let server = start().await;
    let addr = server.local_addr();
    let first = request(addr, "GET", "/xrpc/com.example.limited", &[], b"").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("ratelimit-limit"), Some("2"));
    assert_eq!(first.header("ratelimit-remaining"), Some("1"));
    assert_eq!(first.header("ratelimit-policy"), Some("2;w=3600"));
    let second = request(addr, "GET", "/xrpc/com.example.limited", &[], b"").await;
    assert_eq!(second.status, 200);
    assert_eq!(second.header("ratelimit-remaining"), Some("0"));
    let third = request(addr, "GET", "/xrpc/com.example.limited", &[], b"").await;
    assert_envelope(&third, 429, "RateLimitExceeded");
    assert_eq!(third.header("ratelimit-limit"), Some("2"));
    assert_eq!(third.header("ratelimit-remaining"), Some("0"));
    assert_eq!(third.header("ratelimit-policy"), Some("2;w=3600"));
    let reset: u64 = third.header("ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset > now, "reset {reset} is in the future of {now}");
    server.shutdown().await;
}

#[tokio::test]
async fn internal_errors_do_not_leak() {
    let server = start().await;
    let resp = request(
        server.local_addr(),
        "GET",
        "/xrpc/com.example.broken",
        &[],
        b"",
    )
    .await;
    let body = assert_envelope(&resp, 500, "InternalServerError");
    assert_eq!(body["message"], "Internal Server Error");
    assert!(!String::from_utf8_lossy(&resp.body).contains("hunter2"));
    server.shutdown().await;
}

#[tokio::test]
async fn custom_error_names_and_client_decoding() {
    let server = start().await;
    let client = XrpcClient::new(&format!("http://{}", server.local_addr())).unwrap();
    let (status, error, message) = common::query_refusal(&client, "com.example.custom").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error, "RecordNotFound");
    assert_eq!(message, "no such record");
    let (status, error, _) = common::query_refusal(&client, "com.example.nothing").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(error, "MethodNotImplemented");
    server.shutdown().await;
}

#[tokio::test]
async fn not_xrpc_paths_and_invalid_nsids() {
    let server = start().await;
    let resp = request(server.local_addr(), "GET", "/nothing", &[], b"").await;
    assert_envelope(&resp, 404, "NotFound");
    let resp = request(server.local_addr(), "GET", "/xrpc/not..an..nsid", &[], b"").await;
    assert_envelope(&resp, 400, "InvalidRequest");
    server.shutdown().await;
}
