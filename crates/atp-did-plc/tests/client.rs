//! Tests of the directory client: against the reference directory (its
//! answers parse into our types, its refusals surface with status and
//! message), over HTTPS, and against misbehaving servers (non-JSON errors,
//! no answer, nobody listening, TLS to a plain-HTTP port).
#![allow(clippy::unwrap_used)]

mod directory_support;

use std::time::Duration;

use atp_crypto::Algorithm;
use atp_did_plc::client::PlcClient;
use atp_did_plc::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use directory_support::reference::ReferenceServer;
use directory_support::{body, body_of, genesis, key, sign, tombstone};

#[tokio::test]
async fn works_against_the_reference_directory() {
    let reference = ReferenceServer::start();
    let client = PlcClient::new(&reference.url()).unwrap();
    let k1 = key(Algorithm::K256);
    let k2 = key(Algorithm::P256);
    let (did, op1) = genesis(
        body(
            &[&k1, &k2],
            &k1,
            "carol.example.com",
            "https://pds.example.com",
        ),
        &k1,
    );

    // The refusal of an unknown DID carries the directory's words.
    match client.resolve(&did).await {
        Err(Error::Directory { status, message }) => {
            assert_eq!(status, 404);
            assert_eq!(message, format!("DID not registered: {did}"));
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    // So does a refused submission: not just "Bad Request".
    let upper = format!("did:plc:{}", did["did:plc:".len()..].to_uppercase());
    match client.submit(&upper, &op1).await {
        Err(Error::Directory { status, message }) => {
            assert_eq!(status, 400);
            assert!(
                message.starts_with("Hash of genesis operation does not match DID identifier"),
                "{message}"
            );
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    let err = client.submit(&upper, &op1).await.unwrap_err().to_string();
    assert!(
        err.contains("400") && err.contains("Hash of genesis"),
        "{err}"
    );

    client.submit(&did, &op1).await.unwrap();
    let mut b = body_of(&op1);
    b.also_known_as = vec!["at://carol2.example.com".to_owned()];
    let op2 = sign(b, Some(&op1), &k2);
    client.submit(&did, &op2).await.unwrap();

    let doc = client.resolve(&did).await.unwrap();
    assert_eq!(doc["id"], did.as_str());
    assert_eq!(doc["alsoKnownAs"][0], "at://carol2.example.com");
    let data = client.data(&did).await.unwrap();
    assert_eq!(data["rotationKeys"][1], k2.did_key().as_str());
    // The reference's answers parse into our operation types.
    assert_eq!(
        client.log(&did).await.unwrap(),
        vec![op1.clone(), op2.clone()]
    );
    assert_eq!(client.last_op(&did).await.unwrap(), op2);
    let audit = client.audit_log(&did).await.unwrap();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].cid, op1.cid().unwrap());
    assert_eq!(audit[1].cid, op2.cid().unwrap());
    assert!(audit[0].created_at <= audit[1].created_at);
    assert!(audit.iter().all(|e| e.did == did && !e.nullified));

    client.submit(&did, &tombstone(&op2, &k1)).await.unwrap();
    match client.data(&did).await {
        Err(Error::Directory {
            status: 404,
            message,
        }) => {
            assert_eq!(message, format!("DID not available: {did}"))
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    assert!(client.last_op(&did).await.unwrap().is_tombstone());
    // The mock database of the reference exports nothing.
    assert!(client.export(None, Some(10)).await.unwrap().is_empty());
    assert!(client.health().await.unwrap()["version"].is_string());
}

/// A one-shot server answering every connection with `response`.
async fn canned(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn errors_without_json_still_explain() {
    let html = canned(
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 27\r\nConnection: close\r\n\r\n<html>upstream down</html>\n",
    )
    .await;
    let client = PlcClient::new(&html).unwrap();
    match client.resolve("did:plc:abc").await {
        Err(Error::Directory { status, message }) => {
            assert_eq!(status, 502);
            assert_eq!(message, "<html>upstream down</html>");
        }
        other => panic!("expected a 502, got {other:?}"),
    }

    let empty =
        canned("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
    let client = PlcClient::new(&empty).unwrap();
    match client.log("did:plc:abc").await {
        Err(Error::Directory { status, message }) => {
            assert_eq!(status, 400);
            assert_eq!(message, "Bad Request");
        }
        other => panic!("expected a 400, got {other:?}"),
    }

    // A 200 that is not what the route returns.
    let garbage = canned(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"a\": 1}\n",
    )
    .await;
    let client = PlcClient::new(&garbage).unwrap();
    match client.last_op("did:plc:abc").await {
        Err(Error::Http(message)) => assert!(message.contains("unexpected answer"), "{message}"),
        other => panic!("expected an Http error, got {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_and_silent_directories_fail_cleanly() {
    // Nobody listening: bind a port, then free it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = PlcClient::new(&format!("http://{addr}")).unwrap();
    match client.resolve("did:plc:abc").await {
        Err(Error::Http(message)) => assert!(message.contains(&addr.to_string()), "{message}"),
        other => panic!("expected an Http error, got {other:?}"),
    }

    // Accepts but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = PlcClient::new(&format!("http://{addr}"))
        .unwrap()
        .with_timeout(Duration::from_millis(300));
    match client.resolve("did:plc:abc").await {
        Err(Error::Http(message)) => assert!(message.contains("no answer within"), "{message}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    hold.abort();
}

#[tokio::test]
async fn https_is_spoken_to_https_urls() {
    // Our plain-HTTP directory on loopback, addressed as https://: the
    // client attempts a TLS handshake, which the plain server cannot
    // complete, so the request fails instead of silently going out in
    // clear text.
    let server =
        atp_did_plc::server::PlcServer::start(atp_did_plc::server::ServerConfig::in_memory())
            .await
            .unwrap();
    let url = format!("https://{}", server.local_addr());
    let client = PlcClient::new(&url)
        .unwrap()
        .with_timeout(Duration::from_secs(10));
    match client.health().await {
        // rustls reads the plain-HTTP answer as a malformed TLS record.
        Err(Error::Http(message)) => assert!(
            message.contains("https://") && message.contains("corrupt message"),
            "{message}"
        ),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    // The same server over http:// answers.
    let client = PlcClient::new(&server.url()).unwrap();
    assert!(client.health().await.is_ok());
    server.shutdown().await.unwrap();
}

/// A TLS front for a plain-HTTP server, with the test certificate for
/// 127.0.0.1: returns its `https://` URL.
async fn tls_front(backend: std::net::SocketAddr) -> String {
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let cert = std::fs::read(dir.join("leaf.der")).unwrap();
    let key = std::fs::read(dir.join("leaf.key.der")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(cert)],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    format!("https://{addr}")
}

#[tokio::test]
async fn full_lifecycle_over_https() {
    let server =
        atp_did_plc::server::PlcServer::start(atp_did_plc::server::ServerConfig::in_memory())
            .await
            .unwrap();
    let url = tls_front(server.local_addr()).await;
    let ca = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/ca.der"),
    )
    .unwrap();

    // The bundled Mozilla roots do not know the test CA: refused.
    let untrusting = PlcClient::new(&url).unwrap();
    match untrusting.health().await {
        Err(Error::Http(message)) => assert!(message.contains("certificate"), "{message}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }

    let client = PlcClient::with_root_certificates(&url, &[&ca]).unwrap();
    let k = key(Algorithm::P256);
    let (did, op1) = genesis(
        body(&[&k], &k, "tls.example.com", "https://pds.example.com"),
        &k,
    );
    client.submit(&did, &op1).await.unwrap();
    let mut b = body_of(&op1);
    b.also_known_as = vec!["at://tls2.example.com".to_owned()];
    let op2 = sign(b, Some(&op1), &k);
    client.submit(&did, &op2).await.unwrap();
    assert_eq!(
        client.resolve(&did).await.unwrap()["alsoKnownAs"][0],
        "at://tls2.example.com"
    );
    assert_eq!(client.log(&did).await.unwrap(), vec![op1, op2.clone()]);
    // Refusals come through with their reason.
    let stranger = key(Algorithm::K256);
    match client.submit(&did, &tombstone(&op2, &stranger)).await {
        Err(Error::Directory {
            status: 400,
            message,
        }) => {
            assert!(message.starts_with("Invalid signature on op"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}
