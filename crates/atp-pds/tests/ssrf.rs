//! Server-side request forgery: outside development mode the PDS never
//! connects to loopback, private or link-local addresses because a handle,
//! a did:web or a DID document's service endpoint names them; outbound
//! fetches are bounded in time and size.
//!
//! Each refusal is checked with a listener on loopback that counts the
//! connections it receives: it must count none. The same request in
//! development mode (loopback allowed) does reach it, which shows the
//! count would see a connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::GenesisBuilder;
use atp_pds::handle_resolver::HandleResolver;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::{refusal, Pds};

/// A loopback listener counting the connections it accepts; each
/// connection gets `answer` (after reading the request head) or, when
/// `answer` is empty, is held open without a word.
struct Counter {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl Counter {
    async fn start(answer: &'static [u8]) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    if answer.is_empty() {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    } else {
                        let _ = stream.write_all(answer).await;
                    }
                });
            }
        });
        Counter { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A call forwarded by the `atproto-proxy` header `proxy`.
async fn proxied_call(pds: &Pds, proxy: &str) -> Result<Value, atp_xrpc::Error> {
    pds.client()
        .with_header(
            HeaderName::from_static("atproto-proxy"),
            HeaderValue::from_str(proxy).unwrap(),
        )
        .with_timeout(Duration::from_secs(60))
        .query("com.example.ssrf.probe", &serde_json::json!({}))
        .await
}

#[tokio::test]
async fn the_proxy_never_fetches_a_did_web_document_from_a_private_address() {
    let counter = Counter::start(b"").await;
    let production = Pds::start_with(|state| state.dev_mode = false).await;
    let port = counter.port;
    for proxy in [
        format!("did:web:127.0.0.1%3A{port}#svc"),
        format!("did:web:localhost%3A{port}#svc"),
        format!("did:web:127.1.2.3%3A{port}#svc"),
        "did:web:10.0.0.1#svc".to_owned(),
        "did:web:169.254.169.254#svc".to_owned(),
        "did:web:192.168.1.1#svc".to_owned(),
    ] {
        let (status, error, message) = refusal(proxied_call(&production, &proxy).await);
        assert_eq!(
            (status, error.as_str()),
            (400, "InvalidRequest"),
            "{proxy}: {message}"
        );
    }
    assert_eq!(counter.hits(), 0, "a private address was contacted");
    production.stop().await;

    // Development mode allows loopback: the same document is fetched (the
    // listener sees the connection), which shows the count works.
    let development = Pds::start().await;
    let _ = proxied_call(&development, &format!("did:web:localhost%3A{port}#svc")).await;
    assert!(
        counter.hits() > 0,
        "the development fetch reached the listener"
    );
    development.stop().await;
}

#[tokio::test]
async fn the_proxy_never_forwards_to_a_private_service_endpoint() {
    let counter = Counter::start(b"").await;
    let production = Pds::start_with(|state| state.dev_mode = false).await;
    // A did:plc whose service endpoint is on loopback, over https.
    let key = SigningKey::generate(Algorithm::K256);
    let genesis = GenesisBuilder::new()
        .rotation_key(key.did_key())
        .signing_key(key.did_key())
        .handle("mallory.example.com")
        .pds_endpoint(format!("https://127.0.0.1:{}", counter.port))
        .sign(&key)
        .unwrap();
    production
        .directory()
        .submit(&genesis.did, &genesis.operation)
        .await
        .unwrap();
    let proxy = format!("{}#atproto_pds", genesis.did);
    let (status, error, message) = refusal(proxied_call(&production, &proxy).await);
    assert_eq!(
        (status, error.as_str()),
        (400, "InvalidRequest"),
        "{message}"
    );
    assert_eq!(
        counter.hits(),
        0,
        "a private service endpoint was contacted"
    );
    production.stop().await;
}

#[tokio::test]
async fn handle_resolution_never_fetches_from_a_private_address() {
    let answer: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 32\r\nconnection: close\r\n\r\ndid:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    let counter = Counter::start(answer).await;
    let production = HandleResolver::new(false)
        .with_plain_http_port(counter.port)
        .with_timeout(Duration::from_secs(2));
    for handle in ["localhost", "127.0.0.1", "localhost.localdomain"] {
        let resolved = production.resolve_http(handle).await;
        assert!(
            !matches!(resolved, Ok(Some(_))),
            "{handle} resolved through a private address: {resolved:?}"
        );
    }
    assert_eq!(counter.hits(), 0, "a private address was contacted");

    // Allowed (development), the same lookup reaches the listener and
    // reads the DID.
    let development = HandleResolver::new(true)
        .with_plain_http_port(counter.port)
        .with_timeout(Duration::from_secs(2));
    let resolved = development.resolve_http("localhost").await.unwrap();
    assert_eq!(
        resolved.as_deref(),
        Some("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
    );
    assert!(counter.hits() > 0);
}

#[tokio::test]
async fn outbound_fetches_are_bounded_in_time_and_size() {
    // A server that never answers: the lookup ends (no DID) after the
    // resolver's timeout instead of hanging.
    let silent = Counter::start(b"").await;
    let resolver = HandleResolver::new(true)
        .with_plain_http_port(silent.port)
        .with_timeout(Duration::from_secs(1));
    let resolved =
        tokio::time::timeout(Duration::from_secs(30), resolver.resolve_http("localhost"))
            .await
            .expect("the resolver gives up on a silent server");
    assert!(!matches!(resolved, Ok(Some(_))), "{resolved:?}");
    assert!(silent.hits() > 0);

    // A well-known answer far over the size limit: not taken as a DID.
    let mut huge = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\ndid:plc:aaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
    huge.extend(vec![b' '; 1024 * 1024]);
    let huge: &'static [u8] = Box::leak(huge.into_boxed_slice());
    let big = Counter::start(huge).await;
    let resolver = HandleResolver::new(true)
        .with_plain_http_port(big.port)
        .with_timeout(Duration::from_secs(5));
    let resolved = resolver.resolve_http("localhost").await;
    assert!(!matches!(resolved, Ok(Some(_))), "{resolved:?}");
    assert!(big.hits() > 0);

    // The proxy's did:web fetch from a silent server ends with an error
    // (its 30-second upstream timeout) rather than holding the call.
    let pds = Pds::start().await;
    let silent_doc = Counter::start(b"").await;
    let result = tokio::time::timeout(
        Duration::from_secs(90),
        proxied_call(
            &pds,
            &format!("did:web:localhost%3A{}#svc", silent_doc.port),
        ),
    )
    .await
    .expect("the did:web fetch gives up");
    let (status, _, _) = refusal(result);
    assert_eq!(status, 400);
    pds.stop().await;
}
