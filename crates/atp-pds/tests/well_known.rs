//! The plain paths: `/`, `/robots.txt`, `/xrpc/_health`,
//! `/.well-known/atproto-did` (by `Host`) and `/.well-known/did.json`.
#![allow(clippy::unwrap_used)]

mod common;
mod resolution_peers;

use std::net::Ipv4Addr;

use atp_pds::handle_resolver::HandleResolver;
use bytes::Bytes;
use common::Pds;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use resolution_peers::FakeDns;
use serde_json::{json, Value};

/// A GET of `path` sent with `Host: host`: status, content type, body.
async fn get(pds: &Pds, host: &str, path: &str) -> (u16, String, String) {
    let addr = pds.url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn banner_robots_and_health() {
    let pds = Pds::start().await;
    let (status, content_type, body) = get(&pds, "localhost", "/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(body.contains("AT Protocol Personal Data Server"));
    assert!(body.contains("/xrpc/"));

    let (status, content_type, body) = get(&pds, "localhost", "/robots.txt").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    assert!(body.contains("User-agent: *"));

    let (status, content_type, body) = get(&pds, "localhost", "/xrpc/_health").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"));
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health, json!({ "version": env!("CARGO_PKG_VERSION") }));

    // Other paths are not served.
    let (status, _, _) = get(&pds, "localhost", "/no/such/path").await;
    assert_eq!(status, 404);
    pds.stop().await;
}

#[tokio::test]
async fn atproto_did_answers_for_the_handle_in_the_host() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;

    for host in ["alice.test", "ALICE.test", "alice.test:2583"] {
        let (status, content_type, body) = get(&pds, host, "/.well-known/atproto-did").await;
        assert_eq!(status, 200, "{host}");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(body, alice.did);
    }
    for host in ["nobody.test", "alice.example.com", "localhost"] {
        let (status, _, body) = get(&pds, host, "/.well-known/atproto-did").await;
        assert_eq!((status, body.as_str()), (404, "User not found"), "{host}");
    }

    // A handle resolver reaching the PDS through its well-known path (a
    // loopback DNS answer points the handle at the test server).
    let dns = FakeDns::start().await;
    dns.a("alice.test", Ipv4Addr::LOCALHOST);
    let port: u16 = pds.url.rsplit(':').next().unwrap().parse().unwrap();
    let resolver = HandleResolver::new(true)
        .with_nameserver(dns.addr())
        .with_plain_http_port(port);
    assert_eq!(
        resolver.resolve("alice.test").await.unwrap().as_deref(),
        Some(alice.did.as_str())
    );
    pds.stop().await;
}

#[tokio::test]
async fn did_json_only_for_the_services_own_did_web() {
    // The harness's service DID is did:web:localhost and its public URL
    // http://localhost:2583.
    let pds = Pds::start().await;
    let (status, content_type, body) = get(&pds, "localhost", "/.well-known/did.json").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("application/json"));
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["id"], "did:web:localhost");
    assert_eq!(
        doc["service"],
        json!([{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "http://localhost:2583",
        }])
    );
    pds.stop().await;

    let pds =
        Pds::start_with(|state| state.info.did = "did:web:elsewhere.example.com".to_owned()).await;
    let (status, _, _) = get(&pds, "localhost", "/.well-known/did.json").await;
    assert_eq!(status, 404);
    pds.stop().await;
}
