//! The client: parameter encoding, JSON and bytes, headers, errors without
//! an envelope.
#![allow(clippy::unwrap_used)]

mod common;

use atp_xrpc::client::{encode_params, XrpcClient};
use atp_xrpc::server::{Router, ServerConfig, XrpcResponse, XrpcServer};
use atp_xrpc::Error;
use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;

#[test]
fn params_encode_arrays_as_repeated_keys() {
    let query = encode_params(&serde_json::json!({
        "uris": ["at://a/b", "x y"],
        "limit": 10,
        "reverse": false,
        "cursor": null,
    }))
    .unwrap();
    assert_eq!(
        query,
        "limit=10&reverse=false&uris=at%3A%2F%2Fa%2Fb&uris=x%20y"
    );
    assert!(encode_params(&serde_json::json!([1, 2])).is_err());
    assert!(encode_params(&serde_json::json!({"a": {"b": 1}})).is_err());
}

#[test]
fn bad_urls_and_nsids_are_errors() {
    assert!(XrpcClient::new("ftp://example.com").is_err());
    assert!(XrpcClient::new("not a url").is_err());
    let client = XrpcClient::new("https://example.com").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime
        .block_on(client.query::<_, serde_json::Value>("not an nsid", &()))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)));
}

#[tokio::test]
async fn headers_bytes_and_bare_errors() {
    let mut router = Router::new();
    router
        .query("com.example.whoami", |req| async move {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            XrpcResponse::json(&serde_json::json!({
                "authorization": header("authorization"),
                "proxy": header("atproto-proxy"),
            }))
        })
        .unwrap();
    router
        .procedure("com.example.reverse", |mut req| async move {
            let mut bytes = req.bytes().await?.to_vec();
            bytes.reverse();
            Ok(XrpcResponse::bytes("application/x-test", bytes))
        })
        .unwrap();
    // A plain path answering a non-envelope error.
    router.path("/xrpc/com.example.bare", |_req| async move {
        Ok(XrpcResponse::bytes("text/plain", "gateway down").with_status(StatusCode::BAD_GATEWAY))
    });
    let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default())
        .await
        .unwrap();
    let client = XrpcClient::new(&format!("http://{}/", server.local_addr()))
        .unwrap()
        .with_bearer("tok")
        .unwrap()
        .with_header(
            HeaderName::from_static("atproto-proxy"),
            HeaderValue::from_static("did:web:api.example#svc"),
        );
    let who: serde_json::Value = client.query("com.example.whoami", &()).await.unwrap();
    assert_eq!(who["authorization"], "Bearer tok");
    assert_eq!(who["proxy"], "did:web:api.example#svc");

    let out = client
        .procedure_bytes(
            "com.example.reverse",
            &(),
            "application/x-test",
            Bytes::from_static(b"abc"),
        )
        .await
        .unwrap();
    assert_eq!(&out.bytes[..], b"cba");
    assert_eq!(out.content_type.as_deref(), Some("application/x-test"));

    let (status, error, message) = common::query_refusal(&client, "com.example.bare").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(error, "UpstreamFailure");
    assert_eq!(message, "Upstream Failure");
    server.shutdown().await;
}
