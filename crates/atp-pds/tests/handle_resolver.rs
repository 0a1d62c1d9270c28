//! Handle resolution against loopback stand-ins: a DNS server for the TXT
//! method and the handle hosts' addresses, an HTTP server for the
//! well-known method; and the refusal to fetch from non-public addresses.
#![allow(clippy::unwrap_used)]

mod resolution_peers;

use std::net::Ipv4Addr;
use std::time::Duration;

use atp_pds::handle_resolver::HandleResolver;
use hyper::StatusCode;
use resolution_peers::{FakeDns, FakeWeb};

const ALICE: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const BOB: &str = "did:plc:44ybard66vv44zksje25o7dz";

/// A resolver whose DNS is `dns` and whose well-known fetches go to `web`
/// over plain HTTP.
fn resolver(allow_private: bool, dns: &FakeDns, web: &FakeWeb) -> HandleResolver {
    HandleResolver::new(allow_private)
        .with_nameserver(dns.addr())
        .with_plain_http_port(web.port())
        .with_timeout(Duration::from_secs(3))
}

/// The DID the TXT method finds for `handle` (the lookup must not fail).
async fn by_dns(resolver: &HandleResolver, handle: &str) -> Option<String> {
    resolver.resolve_dns(handle).await.unwrap()
}

/// The DID the well-known method finds for `handle` (the fetch must not
/// fail).
async fn by_http(resolver: &HandleResolver, handle: &str) -> Option<String> {
    resolver.resolve_http(handle).await.unwrap()
}

/// The DID either method finds for `handle` (must not fail).
async fn by_any(resolver: &HandleResolver, handle: &str) -> Option<String> {
    resolver.resolve(handle).await.unwrap()
}

#[tokio::test]
async fn dns_txt_record_names_the_did() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    dns.txt("_atproto.alice.example.com", &format!("did={ALICE}"));
    dns.txt("_atproto.alice.example.com", "v=spf1 -all");
    // Strings of one record are joined.
    dns.txt_chunks(
        "_atproto.bob.example.com",
        &["did=did:plc:44ybard66", "vv44zksje25o7dz"],
    );

    // The DNS method needs no address check: it works with private
    // addresses refused.
    let resolver = resolver(false, &dns, &web);
    assert_eq!(
        by_dns(&resolver, "alice.example.com").await.as_deref(),
        Some(ALICE)
    );
    assert_eq!(
        by_any(&resolver, "Alice.Example.com").await.as_deref(),
        Some(ALICE)
    );
    assert_eq!(
        by_any(&resolver, "bob.example.com").await.as_deref(),
        Some(BOB)
    );
    assert_eq!(
        resolver.resolve_dns("nobody.example.com").await.unwrap(),
        None
    );
    assert_eq!(
        web.requests(),
        0,
        "no handle host has an address: nothing fetched"
    );
}

#[tokio::test]
async fn dns_needs_exactly_one_valid_did_record() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    dns.txt("_atproto.two.example.com", &format!("did={ALICE}"));
    dns.txt("_atproto.two.example.com", &format!("did={BOB}"));
    dns.txt("_atproto.bad.example.com", "did=not-a-did");
    dns.txt("_atproto.bare.example.com", ALICE);
    let resolver = resolver(false, &dns, &web);
    for handle in ["two.example.com", "bad.example.com", "bare.example.com"] {
        assert_eq!(
            resolver.resolve_dns(handle).await.unwrap(),
            None,
            "{handle}"
        );
        assert_eq!(resolver.resolve(handle).await.unwrap(), None, "{handle}");
    }
}

#[tokio::test]
async fn well_known_answer_names_the_did() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    dns.a("alice.example.org", Ipv4Addr::LOCALHOST);
    web.serve("alice.example.org", StatusCode::OK, &format!("{ALICE}\n"));
    let resolver = resolver(true, &dns, &web);
    assert_eq!(
        by_http(&resolver, "alice.example.org").await.as_deref(),
        Some(ALICE)
    );
    assert_eq!(
        by_any(&resolver, "alice.example.org").await.as_deref(),
        Some(ALICE)
    );
    assert!(web.requests() >= 2);
}

#[tokio::test]
async fn well_known_needs_success_and_a_did() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    for host in [
        "gone.example.org",
        "html.example.org",
        "redirect.example.org",
    ] {
        dns.a(host, Ipv4Addr::LOCALHOST);
    }
    web.serve("gone.example.org", StatusCode::NOT_FOUND, ALICE);
    web.serve("html.example.org", StatusCode::OK, "<html>hello</html>");
    web.serve("redirect.example.org", StatusCode::FOUND, ALICE);
    let resolver = resolver(true, &dns, &web);
    for host in [
        "gone.example.org",
        "html.example.org",
        "redirect.example.org",
    ] {
        assert_eq!(resolver.resolve_http(host).await.unwrap(), None, "{host}");
        assert_eq!(resolver.resolve(host).await.unwrap(), None, "{host}");
    }
}

#[tokio::test]
async fn oversized_well_known_answer_is_refused() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    dns.a("big.example.org", Ipv4Addr::LOCALHOST);
    let body = format!("{ALICE}\n{}", "x".repeat(64 * 1024));
    web.serve("big.example.org", StatusCode::OK, &body);
    let resolver = resolver(true, &dns, &web);
    assert!(resolver.resolve_http("big.example.org").await.is_err());
    assert_eq!(resolver.resolve("big.example.org").await.unwrap(), None);
}

#[tokio::test]
async fn private_addresses_are_not_fetched() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    dns.a("sneaky.example.org", Ipv4Addr::LOCALHOST);
    dns.a("mixed.example.org", Ipv4Addr::new(8, 8, 8, 8));
    dns.a("mixed.example.org", Ipv4Addr::new(10, 0, 0, 1));
    dns.a("metadata.example.org", Ipv4Addr::new(169, 254, 169, 254));
    web.serve("sneaky.example.org", StatusCode::OK, ALICE);

    let strict = resolver(false, &dns, &web);
    for host in [
        "sneaky.example.org",
        "mixed.example.org",
        "metadata.example.org",
    ] {
        let err = strict.resolve_http(host).await.unwrap_err().to_string();
        assert!(err.contains("not a public address"), "{host}: {err}");
        assert_eq!(strict.resolve(host).await.unwrap(), None, "{host}");
    }
    assert_eq!(web.requests(), 0, "a refused address is never contacted");

    // The same handle resolves once private addresses are allowed.
    let relaxed = resolver(true, &dns, &web);
    assert_eq!(
        by_any(&relaxed, "sneaky.example.org").await.as_deref(),
        Some(ALICE)
    );
    assert_eq!(web.requests(), 1);
}

#[tokio::test]
async fn dns_answer_wins_over_well_known() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    dns.txt("_atproto.both.example.org", &format!("did={ALICE}"));
    dns.a("both.example.org", Ipv4Addr::LOCALHOST);
    web.serve("both.example.org", StatusCode::OK, BOB);
    let resolver = resolver(true, &dns, &web);
    assert_eq!(
        by_http(&resolver, "both.example.org").await.as_deref(),
        Some(BOB)
    );
    assert_eq!(
        by_any(&resolver, "both.example.org").await.as_deref(),
        Some(ALICE)
    );
}

#[tokio::test]
async fn a_silent_host_ends_in_a_timeout() {
    let dns = FakeDns::start().await;
    // Accepts connections, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    dns.a("silent.example.org", Ipv4Addr::LOCALHOST);
    let resolver = HandleResolver::new(true)
        .with_nameserver(dns.addr())
        .with_plain_http_port(port)
        .with_timeout(Duration::from_millis(300));
    // Whichever limit ends it first (the lookup's or the whole fetch's),
    // the answer is a failure, not a wait.
    assert!(resolver.resolve_http("silent.example.org").await.is_err());
    assert_eq!(resolver.resolve("silent.example.org").await.unwrap(), None);
    keep.abort();
}

#[tokio::test]
async fn invalid_handles_are_refused() {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    let resolver = resolver(true, &dns, &web);
    assert!(resolver.resolve("not a handle").await.is_err());
    assert!(resolver.resolve("nodot").await.is_err());
}

/// Test TLS material (see tests/fixtures/tls/README.md).
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name),
    )
    .unwrap()
}

/// An HTTPS server on 127.0.0.1 with the certificate for `tls.example.org`,
/// answering every request with `body`; returns its port.
async fn https_server(body: &'static str) -> (u16, tokio::task::JoinHandle<()>) {
    use std::sync::Arc;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(fixture("leaf.der"))],
        rustls::pki_types::PrivateKeyDer::Pkcs8(fixture("leaf.key.der").into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(body.as_bytes())),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn well_known_over_https_checks_the_certificate() {
    let dns = FakeDns::start().await;
    dns.a("tls.example.org", Ipv4Addr::LOCALHOST);
    dns.a("other.example.org", Ipv4Addr::LOCALHOST);
    let (port, server) = https_server(ALICE).await;
    let ca = fixture("ca.der");
    let resolver = HandleResolver::new(true)
        .with_nameserver(dns.addr())
        .with_https_port(port)
        .with_root_certificates(&[&ca]);
    assert_eq!(
        by_http(&resolver, "tls.example.org").await.as_deref(),
        Some(ALICE)
    );
    assert_eq!(
        by_any(&resolver, "tls.example.org").await.as_deref(),
        Some(ALICE)
    );

    // The certificate names another host.
    let err = resolver
        .resolve_http("other.example.org")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    // The bundled roots do not know the test authority.
    let bundled = HandleResolver::new(true)
        .with_nameserver(dns.addr())
        .with_https_port(port);
    let err = bundled.resolve_http("tls.example.org").await.unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    assert_eq!(bundled.resolve("tls.example.org").await.unwrap(), None);
    server.abort();
}
