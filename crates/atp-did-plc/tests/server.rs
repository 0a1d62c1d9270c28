//! End-to-end tests of the directory server through the client, on
//! loopback: the lifecycle of a DID (create, update, rotate, recover,
//! tombstone), refusals with their reasons, export paging, persistence and
//! concurrent submissions.
#![allow(clippy::unwrap_used)]

mod directory_support;

use std::collections::HashSet;

use atp_crypto::Algorithm;
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig};
use atp_did_plc::Error;
use directory_support::{body, body_of, genesis, key, sign, tombstone};

async fn start() -> (PlcServer, PlcClient) {
    let server = PlcServer::start(ServerConfig::in_memory()).await.unwrap();
    let client = PlcClient::new(&server.url()).unwrap();
    (server, client)
}

/// Asserts a directory refusal with `status` whose message contains `needle`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, status: u16, needle: &str) {
    match result {
        Err(Error::Directory {
            status: got,
            message,
        }) => {
            assert_eq!(got, status, "status of refusal {message:?}");
            assert!(
                message.contains(needle),
                "message {message:?} does not contain {needle:?}"
            );
        }
        other => panic!("expected a {status} refusal containing {needle:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn lifecycle_create_update_rotate_recover_tombstone() {
    let (server, client) = start().await;
    let k1 = key(Algorithm::K256);
    let k2 = key(Algorithm::P256);
    let k3 = key(Algorithm::K256);
    let signing = key(Algorithm::K256);

    // Create.
    let (did, op1) = genesis(
        body(&[&k1], &signing, "alice.test", "https://pds.example.com"),
        &k1,
    );
    client.submit(&did, &op1).await.unwrap();
    let doc = client.resolve(&did).await.unwrap();
    assert_eq!(doc["id"], did.as_str());
    assert_eq!(doc["alsoKnownAs"][0], "at://alice.test");
    assert_eq!(
        doc["service"][0]["serviceEndpoint"],
        "https://pds.example.com"
    );
    assert_eq!(doc["service"][0]["id"], "#atproto_pds");
    assert_eq!(
        doc["verificationMethod"][0]["publicKeyMultibase"],
        signing.did_key().trim_start_matches("did:key:")
    );
    let data = client.data(&did).await.unwrap();
    assert_eq!(data["did"], did.as_str());
    assert_eq!(data["rotationKeys"][0], k1.did_key().as_str());
    assert_eq!(client.log(&did).await.unwrap(), vec![op1.clone()]);
    assert_eq!(client.last_op(&did).await.unwrap(), op1);
    let audit = client.audit_log(&did).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].cid, op1.cid().unwrap());
    assert_eq!(audit[0].did, did);
    assert!(!audit[0].nullified);

    // Update the handle.
    let mut b = body_of(&op1);
    b.also_known_as = vec!["at://alice2.test".to_owned()];
    let op2 = sign(b, Some(&op1), &k1);
    client.submit(&did, &op2).await.unwrap();
    assert_eq!(
        client.resolve(&did).await.unwrap()["alsoKnownAs"][0],
        "at://alice2.test"
    );

    // Rotate to [k2, k3], signed by the old key.
    let mut b = body_of(&op2);
    b.rotation_keys = vec![k2.did_key(), k3.did_key()];
    let op3 = sign(b, Some(&op2), &k1);
    client.submit(&did, &op3).await.unwrap();

    // The old key no longer signs.
    let mut b = body_of(&op3);
    b.also_known_as = vec!["at://mallory.test".to_owned()];
    let stale = sign(b, Some(&op3), &k1);
    assert_refused(client.submit(&did, &stale).await, 400, "Invalid signature");

    // k3 (lower priority) updates; k2 then recovers by forking from op3.
    let mut b = body_of(&op3);
    b.also_known_as = vec!["at://hijacked.test".to_owned()];
    let op4 = sign(b, Some(&op3), &k3);
    client.submit(&did, &op4).await.unwrap();
    // k3 cannot fork over its own operation.
    let mut b = body_of(&op3);
    b.also_known_as = vec!["at://again.test".to_owned()];
    let bad_fork = sign(b, Some(&op3), &k3);
    assert_refused(
        client.submit(&did, &bad_fork).await,
        400,
        "Invalid signature",
    );
    let mut b = body_of(&op3);
    b.also_known_as = vec!["at://alice3.test".to_owned()];
    let op5 = sign(b, Some(&op3), &k2);
    client.submit(&did, &op5).await.unwrap();

    let log = client.log(&did).await.unwrap();
    assert_eq!(
        log,
        vec![op1.clone(), op2.clone(), op3.clone(), op5.clone()]
    );
    let audit = client.audit_log(&did).await.unwrap();
    let nullified: Vec<bool> = audit.iter().map(|e| e.nullified).collect();
    assert_eq!(nullified, [false, false, false, true, false]);
    assert_eq!(audit[3].operation, op4);
    assert_eq!(
        client.resolve(&did).await.unwrap()["alsoKnownAs"][0],
        "at://alice3.test"
    );

    // Tombstone.
    let op6 = tombstone(&op5, &k2);
    client.submit(&did, &op6).await.unwrap();
    let not_available = format!("DID not available: {did}");
    assert_refused(client.resolve(&did).await, 404, &not_available);
    assert_refused(client.data(&did).await, 404, &not_available);
    assert_eq!(client.last_op(&did).await.unwrap(), op6);
    assert_eq!(client.log(&did).await.unwrap().len(), 5);
    // Nothing follows a tombstone.
    let mut b = body_of(&op5);
    b.also_known_as = vec!["at://zombie.test".to_owned()];
    let after = sign(b, Some(&op6), &k2);
    assert_refused(
        client.submit(&did, &after).await,
        400,
        "not correctly ordered",
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusals_say_why() {
    let (server, client) = start().await;
    let k1 = key(Algorithm::P256);
    let (did, op1) = genesis(
        body(&[&k1], &k1, "bob.test", "https://pds.example.com"),
        &k1,
    );

    // Unknown DID.
    let unknown = format!("DID not registered: {did}");
    assert_refused(client.resolve(&did).await, 404, &unknown);
    assert_refused(client.data(&did).await, 404, &unknown);
    assert_refused(client.log(&did).await, 404, &unknown);
    assert_refused(client.audit_log(&did).await, 404, &unknown);
    assert_refused(client.last_op(&did).await, 404, &unknown);

    // The DID in upper case (what the failed seed attempt sent).
    let upper = did.to_uppercase().replace("DID:PLC:", "did:plc:");
    assert_refused(
        client.submit(&upper, &op1).await,
        400,
        "Hash of genesis operation does not match DID identifier",
    );
    // A genesis operation without `prev` (the other seed mistake).
    let mut json = op1.to_json_value();
    json.as_object_mut().unwrap().remove("prev");
    assert_refused(client.submit_json(&did, &json).await, 400, "prev");
    // Not JSON at all / not an operation.
    assert_refused(
        client
            .submit_json(&did, &serde_json::json!({"hello": 1}))
            .await,
        400,
        "Not a valid operation",
    );
    // A bad signature.
    let mut json = op1.to_json_value();
    let sig = json["sig"].as_str().unwrap().to_owned();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    json["sig"] = serde_json::Value::String(format!("{flipped}{}", &sig[1..]));
    assert_refused(
        client.submit_json(&did, &json).await,
        400,
        "Invalid signature",
    );
    // Too many rotation keys.
    let many: Vec<_> = (0..11).map(|_| key(Algorithm::P256)).collect();
    let refs: Vec<_> = many.iter().collect();
    let (many_did, many_op) = genesis(body(&refs, &k1, "c.test", "https://p.example"), &many[0]);
    assert_refused(client.submit(&many_did, &many_op).await, 400, "rotation");
    // A DID that is too short.
    assert_refused(client.submit("did:plc:abc", &op1).await, 400, "too short");

    client.submit(&did, &op1).await.unwrap();
    // Submitting the same genesis again.
    assert_refused(client.submit(&did, &op1).await, 400, "");
    // An update whose prev is not in the log.
    let mut b = body_of(&op1);
    b.also_known_as = vec!["at://x.test".to_owned()];
    let other_prev = sign(b.clone(), Some(&many_op), &k1);
    assert_refused(
        client.submit(&did, &other_prev).await,
        400,
        "not correctly ordered",
    );
    // An update with a null prev on an existing DID.
    let null_prev = sign(b, None, &k1);
    assert_refused(
        client.submit(&did, &null_prev).await,
        400,
        "not correctly ordered",
    );

    // A trailing slash names the same route.
    let raw = raw_get(&server, &format!("/{did}/log/")).await;
    assert_eq!(raw.0, 200, "{raw:?}");

    // Paths and parameters the directory does not know.
    let raw = raw_get(&server, "/nothing/here").await;
    assert_eq!(raw.0, 404);
    let raw = raw_get(&server, "/export?count=0").await;
    assert_eq!(
        raw,
        (400, r#"{"message":"Invalid count parameter"}"#.to_owned())
    );
    let raw = raw_get(&server, "/export?after=yesterday").await;
    assert_eq!(
        raw,
        (400, r#"{"message":"Invalid after parameter"}"#.to_owned())
    );

    server.shutdown().await.unwrap();
}

/// A GET with the client's plumbing bypassed: status and body text.
async fn raw_get(server: &PlcServer, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status: u16 = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test]
async fn health_and_content_types() {
    let (server, client) = start().await;
    let health = client.health().await.unwrap();
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));

    let k = key(Algorithm::K256);
    let (did, op) = genesis(body(&[&k], &k, "c.test", "https://pds.example.com"), &k);
    client.submit(&did, &op).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let request = format!("GET /{did} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let lower = response.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/did+ld+json"),
        "{response}"
    );
    assert!(
        lower.contains("access-control-allow-origin: *"),
        "{response}"
    );

    // HEAD answers like GET, without the body.
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let request = format!("HEAD /{did} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("\r\n\r\n"), "{response}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn export_pages_through_every_operation_once() {
    let (server, client) = start().await;
    let mut expected = HashSet::new();
    for i in 0..7 {
        let k = key(Algorithm::K256);
        let (did, op1) = genesis(
            body(
                &[&k],
                &k,
                &format!("user{i}.test"),
                "https://pds.example.com",
            ),
            &k,
        );
        client.submit(&did, &op1).await.unwrap();
        expected.insert(op1.cid().unwrap());
        if i % 2 == 0 {
            let mut b = body_of(&op1);
            b.also_known_as = vec![format!("at://renamed{i}.test")];
            let op2 = sign(b, Some(&op1), &k);
            client.submit(&did, &op2).await.unwrap();
            expected.insert(op2.cid().unwrap());
        }
    }
    assert_eq!(expected.len(), 11);

    let everything = client.export(None, None).await.unwrap();
    assert_eq!(everything.len(), 11);

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client.export(after.as_deref(), Some(3)).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        pages += 1;
        after = Some(
            page.last()
                .unwrap()
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        seen.extend(page);
    }
    assert_eq!(pages, 4);
    let cids: Vec<_> = seen.iter().map(|e| e.cid).collect();
    assert_eq!(cids.iter().copied().collect::<HashSet<_>>(), expected);
    assert_eq!(
        cids.len(),
        expected.len(),
        "an operation was exported twice"
    );
    // Oldest first, strictly increasing times.
    assert!(seen.windows(2).all(|w| w[0].created_at < w[1].created_at));
    assert_eq!(
        seen.iter().map(|e| e.cid).collect::<Vec<_>>(),
        everything.iter().map(|e| e.cid).collect::<Vec<_>>()
    );

    // The same stream by sequence number, as newer directories offer it.
    let mut sequenced = Vec::new();
    let mut after = 0;
    loop {
        let page = client.export_sequenced(after, Some(4)).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        sequenced.extend(page);
    }
    assert_eq!(
        sequenced.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<u64>>()
    );
    assert_eq!(
        sequenced.iter().map(|e| e.cid).collect::<Vec<_>>(),
        everything.iter().map(|e| e.cid).collect::<Vec<_>>()
    );
    assert!(sequenced
        .iter()
        .zip(&everything)
        .all(|(s, e)| s.did == e.did
            && s.operation == e.operation
            && s.created_at == e.created_at));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn file_database_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("plc-server-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("directory.sqlite");
    let _ = std::fs::remove_file(&path);

    let k = key(Algorithm::P256);
    let (did, op1) = genesis(body(&[&k], &k, "d.test", "https://pds.example.com"), &k);
    let server = PlcServer::start(ServerConfig::with_file(&path))
        .await
        .unwrap();
    let client = PlcClient::new(&server.url()).unwrap();
    client.submit(&did, &op1).await.unwrap();
    let before = client.audit_log(&did).await.unwrap();
    server.shutdown().await.unwrap();

    let server = PlcServer::start(ServerConfig::with_file(&path))
        .await
        .unwrap();
    let client = PlcClient::new(&server.url()).unwrap();
    assert_eq!(client.audit_log(&did).await.unwrap(), before);
    let mut b = body_of(&op1);
    b.also_known_as = vec!["at://d2.test".to_owned()];
    client.submit(&did, &sign(b, Some(&op1), &k)).await.unwrap();
    assert_eq!(client.log(&did).await.unwrap().len(), 2);
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_updates_to_one_did_are_serialized() {
    let (server, client) = start().await;
    let k = key(Algorithm::K256);
    let (did, op1) = genesis(body(&[&k], &k, "e.test", "https://pds.example.com"), &k);
    client.submit(&did, &op1).await.unwrap();

    // Eight different updates, all building on the genesis, signed by the
    // same (only) key: exactly one can win; the others would fork history
    // without a higher-priority key.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut b = body_of(&op1);
        b.also_known_as = vec![format!("at://race{i}.test")];
        let op = sign(b, Some(&op1), &k);
        let client = client.clone();
        let did = did.clone();
        tasks.push(tokio::spawn(async move { client.submit(&did, &op).await }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(Error::Directory { status, .. }) => assert_eq!(status, 400),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(won, 1);
    let log = client.log(&did).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(client.audit_log(&did).await.unwrap().len(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_applies_unless_disabled() {
    for limited in [true, false] {
        let mut config = ServerConfig::in_memory();
        config.rate_limit = limited;
        let server = PlcServer::start(config).await.unwrap();
        let client = PlcClient::new(&server.url()).unwrap();
        let k = key(Algorithm::K256);
        let (did, mut last) = genesis(body(&[&k], &k, "f.test", "https://pds.example.com"), &k);
        client.submit(&did, &last).await.unwrap();
        // Ten operations in the log within the hour: the eleventh is refused.
        for i in 0..10 {
            let mut b = body_of(&last);
            b.also_known_as = vec![format!("at://f{i}.test")];
            let op = sign(b, Some(&last), &k);
            let result = client.submit(&did, &op).await;
            if limited && i == 9 {
                assert_refused(result, 400, "within last hour");
            } else {
                result.unwrap();
                last = op;
            }
        }
        server.shutdown().await.unwrap();
    }
}
