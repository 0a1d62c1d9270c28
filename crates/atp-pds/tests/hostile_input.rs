//! Hostile input: every malformed, oversized or slow request gets the
//! protocol's error envelope (`{"error","message"}`) with the right status,
//! or a closed connection where HTTP itself gives up; the server never
//! panics, never buffers without bound, and keeps answering afterwards.
//!
//! Most requests go over raw TCP, because the XRPC client cannot send a
//! lying `Content-Length`, a slow body or a malformed head. The cases are
//! counted; the test prints `hostile inputs: N cases`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use atp_crypto::{cid_for_dag_cbor, Cid, Ipld, SigningKey};
use atp_pds::http::PdsState;
use atp_pds::Storage;
use atp_repo_mst::car::{encode_header, write_varint, CarWriter};
use atp_repo_mst::commit::UnsignedCommit;
use atp_xrpc::server::ServerConfig;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::{account_key, procedure, Pds, TestAccount, PASSWORD};

/// Cases checked, over all groups.
static CASES: AtomicUsize = AtomicUsize::new(0);

fn case() {
    CASES.fetch_add(1, Ordering::SeqCst);
}

/// A test PDS from the shared harness, served with a chosen server
/// configuration, with its storage kept for the test (signing keys) and
/// its address for raw TCP.
struct Server {
    pds: Pds,
    storage: Storage,
    addr: SocketAddr,
    url: String,
}

impl Server {
    async fn start(config: ServerConfig, adjust: impl FnOnce(&mut PdsState)) -> Server {
        let mut storage = None;
        let pds = Pds::start_serving(
            config,
            |_| {},
            |state| {
                adjust(state);
                storage = Some(state.storage.clone());
            },
        )
        .await;
        let addr = pds.server.local_addr();
        Server {
            storage: storage.unwrap(),
            addr,
            url: pds.url.clone(),
            pds,
        }
    }

    async fn create(&self, name: &str) -> TestAccount {
        self.pds.create(name).await
    }

    /// The answer to `request` sent on a new connection.
    async fn answer(&self, request: &[u8]) -> Raw {
        exchange(self.addr, request)
            .await
            .expect("an answer on the connection")
    }

    /// The server still answers a plain call.
    async fn assert_alive(&self) {
        let raw = exchange(
            self.addr,
            &get("/xrpc/com.atproto.server.describeServer", &[]),
        )
        .await
        .expect("server answers after hostile input");
        assert_eq!(raw.status, 200, "describeServer after hostile input");
    }

    async fn stop(self) {
        self.pds.stop().await;
    }
}

/// Short timeouts, so slow clients are cut off within the test's time.
fn short_timeouts() -> ServerConfig {
    ServerConfig {
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(2),
        subscription_buffer: 4,
        slow_consumer_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP

/// A parsed HTTP response.
#[derive(Debug)]
struct Raw {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Asserts the XRPC error envelope: status, `error` name, a string
/// `message`.
#[track_caller]
fn assert_refused(raw: &Raw, status: u16, error: &str) {
    assert_eq!(
        raw.status,
        status,
        "status; body {:?}",
        String::from_utf8_lossy(&raw.body)
    );
    let body = raw.json();
    assert_eq!(body["error"], error, "error name in {body}");
    assert!(body["message"].is_string(), "message in {body}");
    case();
}

fn get(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    request("GET", path, headers, None)
}

fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    request("POST", path, headers, Some(body))
}

/// A request with `Connection: close` (and `Content-Length` when a body is
/// given and the headers do not set one).
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let sets_length = headers.iter().any(|(n, _)| {
        n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding")
    });
    if let (Some(body), false) = (body, sets_length) {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// `body` in the chunked transfer coding, `piece` bytes a chunk.
fn chunked_body(body: &[u8], piece: usize) -> Vec<u8> {
    let mut chunked = Vec::new();
    for piece in body.chunks(piece) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    chunked
}

/// A POST of the already chunked `chunked` to `path` with `auth` and the
/// `Transfer-Encoding: chunked` header, and its answer.
async fn post_chunked(
    pds: &Server,
    path: &str,
    content_type: &str,
    auth: &str,
    chunked: &[u8],
) -> Raw {
    let headers = [
        ("Content-Type", content_type),
        ("Authorization", auth),
        ("Transfer-Encoding", "chunked"),
    ];
    pds.answer(&post(path, &headers, chunked)).await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response from the start of `buf`, if complete.
fn parse_response(buf: &[u8], closed: bool) -> Option<Raw> {
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let rest = &buf[end + 4..];
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let body = if let Some(length) = length {
        if rest.len() < length {
            return None;
        }
        rest[..length].to_vec()
    } else if lower.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        let mut at = 0;
        loop {
            let line_end = find(&rest[at..], b"\r\n")? + at;
            let size_text = String::from_utf8_lossy(&rest[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                break;
            }
            if rest.len() < at + size + 2 {
                return None;
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
        body
    } else if status == 101 || status == 204 || status == 304 {
        Vec::new()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    Some(Raw { status, head, body })
}

/// Reads the first response from `stream` (at most 30 s; `None` if the
/// connection closes without one).
async fn read_response(stream: &mut TcpStream) -> Option<Raw> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(raw) = parse_response(&buf, false) {
            return Some(raw);
        }
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return parse_response(&buf, true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => panic!(
                "no complete response within 30 s; got {:?}",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
}

/// Sends `bytes` on a new connection and reads the first response.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Option<Raw> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before it has read everything.
    let _ = stream.write_all(bytes).await;
    read_response(&mut stream).await
}

/// Whether the peer closes `stream` (EOF or reset) before `limit`; reads
/// and drops whatever arrives meanwhile.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Sends the first 30 of `bytes` on `stream`, one a second; whether the
/// peer closed the connection meanwhile.
async fn closed_while_trickling(stream: &mut TcpStream, bytes: impl Iterator<Item = u8>) -> bool {
    for byte in bytes.take(30) {
        if stream.write_all(&[byte]).await.is_err() {
            return true;
        }
        if closed_within(stream, Duration::from_secs(1)).await {
            return true;
        }
    }
    false
}

fn bearer(account: &TestAccount) -> String {
    format!("Bearer {}", account.access_jwt)
}

// ---------------------------------------------------------------------------
// Groups of cases

/// Malformed JSON, wrong content types, invalid identifiers, deep nesting,
/// oversized records.
async fn bodies_and_identifiers(pds: &Server, alice: &TestAccount) {
    let auth = bearer(alice);
    let json_auth = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let create = "/xrpc/com.atproto.repo.createRecord";

    // Malformed JSON bodies.
    for body in [
        &b"{\"repo\":"[..],
        b"{\"repo\": \"x\",}",
        b"\xff\xfe\x00garbage",
        b"",
        b"null",
        b"[1,2,3]",
        b"\"just a string\"",
    ] {
        let raw = pds.answer(&post(create, &json_auth, body)).await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    // A procedure that takes JSON, called with other content types.
    let session_body = json!({"identifier": alice.handle, "password": PASSWORD}).to_string();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/cbor",
    ] {
        let raw = pds
            .answer(&post(
                "/xrpc/com.atproto.server.createSession",
                &[("Content-Type", content_type)],
                session_body.as_bytes(),
            ))
            .await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    // No content type at all.
    let raw = pds
        .answer(&post(
            "/xrpc/com.atproto.server.createSession",
            &[],
            session_body.as_bytes(),
        ))
        .await;
    assert_refused(&raw, 400, "InvalidRequest");
    // Wrong HTTP verbs.
    let raw = pds
        .answer(&get("/xrpc/com.atproto.server.createSession", &[]))
        .await;
    assert_refused(&raw, 400, "InvalidRequest");

    // 10,000 nested arrays and objects in a record: refused, no stack
    // overflow.
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let nested = format!("{}1{}", open.repeat(10_000), close.repeat(10_000));
        let body = format!(
            "{{\"repo\":\"{}\",\"collection\":\"com.example.deep\",\"record\":{{\"$type\":\"com.example.deep\",\"x\":{nested}}}}}",
            alice.did
        );
        let raw = pds.answer(&post(create, &json_auth, body.as_bytes())).await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    // Nested below the JSON parser's limit but deeper than the data model
    // allows once encoded.
    let nested = format!("{}1{}", "[".repeat(120), "]".repeat(120));
    let body = format!(
        "{{\"repo\":\"{}\",\"collection\":\"com.example.deep\",\"record\":{{\"$type\":\"com.example.deep\",\"x\":{nested}}}}}",
        alice.did
    );
    let raw = pds.answer(&post(create, &json_auth, body.as_bytes())).await;
    // Accepted or refused, but with an answer and never a server error.
    assert!(
        raw.status == 200 || raw.status == 400,
        "120 levels: {} {:?}",
        raw.status,
        String::from_utf8_lossy(&raw.body)
    );
    if raw.status == 400 {
        assert_refused(&raw, 400, "InvalidRequest");
    } else {
        case();
    }

    // A record over the size limit (the write body limit is 1,000,000
    // bytes): refused by the declared length, and by the bytes read when
    // the body is chunked.
    let big = "x".repeat(1_100_000);
    let body = json!({
        "repo": alice.did,
        "collection": "com.example.big",
        "record": {"$type": "com.example.big", "text": big},
    })
    .to_string();
    let raw = pds.answer(&post(create, &json_auth, body.as_bytes())).await;
    assert_refused(&raw, 413, "PayloadTooLarge");
    let chunked = chunked_body(body.as_bytes(), 64 * 1024);
    let raw = post_chunked(pds, create, "application/json", &auth, &chunked).await;
    assert_refused(&raw, 413, "PayloadTooLarge");

    // Invalid record keys and collection NSIDs.
    for rkey in [
        "bad rkey",
        "..",
        ".",
        "a/b",
        "\u{e9}t\u{e9}",
        &"k".repeat(600),
    ] {
        let body = json!({
            "repo": alice.did,
            "collection": "com.example.thing",
            "rkey": rkey,
            "record": {"$type": "com.example.thing"},
        })
        .to_string();
        let raw = pds.answer(&post(create, &json_auth, body.as_bytes())).await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    for collection in [
        "not-an-nsid",
        "com.example",
        "com..example.x",
        "com.example.thing/x",
        "",
    ] {
        let body = json!({
            "repo": alice.did,
            "collection": collection,
            "record": {"$type": collection},
        })
        .to_string();
        let raw = pds.answer(&post(create, &json_auth, body.as_bytes())).await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    // Invalid identifiers in query parameters.
    for query in [
        "repo=not%20a%20did&collection=com.example.thing&rkey=a",
        "repo=did:plc:abc&collection=bad%20nsid&rkey=a",
        "repo=did:plc:abc&collection=com.example.thing&rkey=..",
        "repo=did:plc:abc&collection=com.example.thing",
        "%ff%fe=%00",
    ] {
        let raw = pds
            .answer(&get(
                &format!("/xrpc/com.atproto.repo.getRecord?{query}"),
                &[],
            ))
            .await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    // A method name that is not an NSID.
    for path in ["/xrpc/not..an.nsid", "/xrpc/%00%01", "/xrpc/a"] {
        let raw = pds.answer(&get(path, &[])).await;
        assert_refused(&raw, 400, "InvalidRequest");
    }
    pds.assert_alive().await;
}

/// Huge query strings and headers.
async fn heads(pds: &Server) {
    let long_query = format!(
        "/xrpc/com.atproto.repo.describeRepo?repo={}",
        "a".repeat(10_000)
    );
    let raw = pds.answer(&get(&long_query, &[])).await;
    assert_refused(&raw, 414, "InvalidRequest");

    // Headers beyond the head limit (16 KiB) or the header count: hyper
    // answers 431 itself, before any handler.
    let huge = "h".repeat(64 * 1024);
    let raw = exchange(
        pds.addr,
        &get(
            "/xrpc/com.atproto.server.describeServer",
            &[("X-Huge", &huge)],
        ),
    )
    .await
    .expect("an answer to a huge header");
    assert_eq!(raw.status, 431, "huge header: {}", raw.head);
    case();
    let names: Vec<String> = (0..500).map(|i| format!("X-Many-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let raw = exchange(
        pds.addr,
        &get("/xrpc/com.atproto.server.describeServer", &many),
    )
    .await
    .expect("an answer to many headers");
    assert_eq!(raw.status, 431, "500 headers");
    case();
    // A request line that never ends.
    let mut stream = TcpStream::connect(pds.addr).await.unwrap();
    let endless = format!("GET /{} HTTP/1.1\r\n", "a".repeat(200 * 1024));
    let _ = stream.write_all(endless.as_bytes()).await;
    let answer = read_response(&mut stream).await;
    if let Some(raw) = answer {
        assert!(
            raw.status == 414 || raw.status == 431 || raw.status == 400,
            "endless request line: {}",
            raw.status
        );
    }
    case();
    pds.assert_alive().await;
}

/// Slow-loris heads and bodies, lying `Content-Length`.
async fn slow_and_lying(pds: &Server, alice: &TestAccount) {
    // A head sent one byte per second is cut off by the header timeout (2 s
    // here): the connection closes well before the 30 bytes are sent.
    let mut stream = TcpStream::connect(pds.addr).await.unwrap();
    let head = b"GET /xrpc/com.atproto.server.describeServer HTTP/1.1\r\n";
    let closed = closed_while_trickling(&mut stream, head.iter().copied()).await;
    assert!(closed, "a head sent one byte per second is cut off");
    case();

    // A body sent one byte per second: 408 (or closed) after the body
    // timeout, long before the declared 60 bytes have arrived.
    let session_body = json!({"identifier": alice.handle, "password": PASSWORD}).to_string();
    let mut stream = TcpStream::connect(pds.addr).await.unwrap();
    let head = format!(
        "POST /xrpc/com.atproto.server.createSession HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        session_body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let reader = async {
        let mut stream = stream;
        let mut sent = 0;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if sent < session_body.len() {
                let _ = stream
                    .write_all(&session_body.as_bytes()[sent..sent + 1])
                    .await;
                sent += 1;
            }
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (parse_response(&buf, true), sent),
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(raw) = parse_response(&buf, false) {
                        return (Some(raw), sent);
                    }
                }
                Err(_) => {
                    if sent >= session_body.len() {
                        return (None, sent);
                    }
                }
            }
        }
    };
    let (answer, sent) = reader.await;
    assert!(
        sent < session_body.len(),
        "the slow body was cut off before it was complete"
    );
    if let Some(raw) = answer {
        assert_refused(&raw, 408, "RequestTimeout");
    } else {
        case();
    }

    // Content-Length shorter than the body: the server reads only what was
    // declared (not valid JSON here) and answers 400.
    let raw = pds
        .answer(&post(
            "/xrpc/com.atproto.server.createSession",
            &[
                ("Content-Type", "application/json"),
                ("Content-Length", "5"),
            ],
            session_body.as_bytes(),
        ))
        .await;
    assert_refused(&raw, 400, "InvalidRequest");

    // Content-Length longer than the body, then the client stops: 408 after
    // the body timeout.
    let declared = (session_body.len() + 100).to_string();
    let too_short = post(
        "/xrpc/com.atproto.server.createSession",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &declared),
        ],
        session_body.as_bytes(),
    );
    let mut stream = TcpStream::connect(pds.addr).await.unwrap();
    stream.write_all(&too_short).await.unwrap();
    let raw = read_response(&mut stream).await.unwrap();
    assert_refused(&raw, 408, "RequestTimeout");
    // ... and with the write side closed: the body ends early.
    let mut stream = TcpStream::connect(pds.addr).await.unwrap();
    stream.write_all(&too_short).await.unwrap();
    stream.shutdown().await.unwrap();
    if let Some(raw) = read_response(&mut stream).await {
        assert_refused(&raw, 400, "InvalidRequest");
    } else {
        case();
    }
    // A Content-Length that is not a number, or two that disagree: hyper
    // answers 400 before any handler.
    for lengths in [&["abc"][..], &["5", "7"][..], &["-1"][..]] {
        let mut req = String::from(
            "POST /xrpc/com.atproto.server.createSession HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n",
        );
        for length in lengths {
            req.push_str(&format!("Content-Length: {length}\r\n"));
        }
        req.push_str("\r\n{}");
        let raw = exchange(pds.addr, req.as_bytes()).await;
        if let Some(raw) = raw {
            assert_eq!(raw.status, 400, "Content-Length {lengths:?}");
        }
        case();
    }
    pds.assert_alive().await;
}

/// Blob uploads over the limit (1,000 bytes on this server), whatever the
/// headers say.
async fn blobs(pds: &Server, alice: &TestAccount) {
    let auth = bearer(alice);
    let upload = "/xrpc/com.atproto.repo.uploadBlob";
    let bytes = vec![7u8; 5_000];
    // An upload of `body` declaring `length` (or its true length).
    let upload_declaring = |length: Option<&str>, body: &[u8]| {
        let mut headers = vec![
            ("Content-Type", "application/octet-stream"),
            ("Authorization", auth.as_str()),
        ];
        headers.extend(length.map(|length| ("Content-Length", length)));
        post(upload, &headers, body)
    };
    // Honest length over the limit.
    let raw = pds.answer(&upload_declaring(None, &bytes)).await;
    assert_refused(&raw, 413, "PayloadTooLarge");
    // A huge declared length with a small body: refused at once.
    let raw = pds
        .answer(&upload_declaring(Some("10000000000000"), b"abc"))
        .await;
    assert_refused(&raw, 413, "PayloadTooLarge");
    // A short declared length and a longer body: only the declared bytes
    // are stored.
    let raw = pds.answer(&upload_declaring(Some("10"), &bytes)).await;
    assert_eq!(raw.status, 200, "{:?}", String::from_utf8_lossy(&raw.body));
    assert_eq!(raw.json()["blob"]["size"], 10);
    case();
    // Chunked, no length, over the limit.
    let chunked = chunked_body(&bytes, 700);
    let raw = post_chunked(pds, upload, "application/octet-stream", &auth, &chunked).await;
    assert_refused(&raw, 413, "PayloadTooLarge");
    // A blob body trickled one byte per second is cut off.
    let mut stream = TcpStream::connect(pds.addr).await.unwrap();
    let head = format!(
        "POST {upload} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nAuthorization: {auth}\r\nContent-Length: 900\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let cut_off = closed_while_trickling(&mut stream, std::iter::repeat(b'x')).await;
    assert!(cut_off, "a blob sent one byte per second is cut off");
    case();
    // Not authenticated.
    let raw = pds
        .answer(&post(upload, &[("Content-Type", "image/png")], b"abc"))
        .await;
    assert_refused(&raw, 401, "AuthMissing");
    pds.assert_alive().await;
}

fn car_with_header(roots: &[Cid]) -> Vec<u8> {
    let header = encode_header(roots).unwrap();
    let mut out = Vec::new();
    write_varint(&mut out, header.len() as u64);
    out.extend_from_slice(&header);
    out
}

fn dag_cbor(value: &Ipld) -> (Cid, Vec<u8>) {
    let bytes = atp_crypto::dagcbor::encode_ipld(value).unwrap();
    (cid_for_dag_cbor(&bytes), bytes)
}

/// A CAR rooted at a commit of `did` at `rev` over the tree `data`, signed
/// with `key`, followed by `blocks`.
fn commit_car(
    did: &str,
    key: &SigningKey,
    data: Cid,
    rev: &str,
    blocks: &[(Cid, &[u8])],
) -> Vec<u8> {
    let commit = UnsignedCommit::new(did, data, rev)
        .unwrap()
        .sign(key)
        .unwrap();
    let (commit_cid, commit_bytes) = commit.to_block().unwrap();
    let mut writer = CarWriter::new(Vec::new(), &[commit_cid]).unwrap();
    writer.write_block(&commit_cid, &commit_bytes).unwrap();
    for (cid, bytes) in blocks {
        writer.write_block(cid, bytes).unwrap();
    }
    writer.finish().unwrap()
}

/// CAR bombs and malformed DAG-CBOR on importRepo.
async fn car_bombs(pds: &Server, alice: &TestAccount) {
    let auth = bearer(alice);
    let import = "/xrpc/com.atproto.repo.importRepo";
    let headers = [
        ("Content-Type", "application/vnd.ipld.car"),
        ("Authorization", auth.as_str()),
    ];
    let refused = |raw: &Raw| {
        assert_eq!(
            raw.status,
            400,
            "importRepo: {:?}",
            String::from_utf8_lossy(&raw.body)
        );
        let body = raw.json();
        println!("importRepo refused: {}", body["message"]);
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{body}"
        );
        case();
    };

    let (empty_cid, _) = dag_cbor(&Ipld::Map(Default::default()));
    // Garbage, an empty body, a header length varint claiming 2^63.
    for body in [
        b"not a car at all".to_vec(),
        Vec::new(),
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xa1],
        vec![0xff; 12],
    ] {
        let raw = pds.answer(&post(import, &headers, &body)).await;
        refused(&raw);
    }
    // A block claiming a huge length (2^40 bytes).
    let mut body = car_with_header(&[empty_cid]);
    write_varint(&mut body, 1 << 40);
    body.extend_from_slice(&[1, 2, 3]);
    let raw = pds.answer(&post(import, &headers, &body)).await;
    refused(&raw);
    // Many tiny blocks (about 100,000 within the 5 MB body limit), none of
    // them a commit.
    let mut writer = CarWriter::new(Vec::new(), &[empty_cid]).unwrap();
    for i in 0u32..100_000 {
        let (cid, bytes) = dag_cbor(&Ipld::Integer(i128::from(i)));
        writer.write_block(&cid, &bytes).unwrap();
    }
    let body = writer.finish().unwrap();
    let raw = pds.answer(&post(import, &headers, &body)).await;
    refused(&raw);
    // A CAR over the body limit (5 MB by default).
    let mut body = car_with_header(&[empty_cid]);
    body.resize(6 * 1024 * 1024, 0);
    let raw = pds.answer(&post(import, &headers, &body)).await;
    assert_refused(&raw, 413, "PayloadTooLarge");

    // Blocks that do not hash to their CID: a node that names itself as its
    // own subtree (a cycle, only possible by lying about the CID).
    let key = account_key(&pds.storage, &alice.did);
    let liar_cid = cid_for_dag_cbor(b"something else");
    let cyclic_node = Ipld::Map(
        [
            ("e".to_owned(), Ipld::List(vec![])),
            ("l".to_owned(), Ipld::Link(liar_cid)),
        ]
        .into_iter()
        .collect(),
    );
    let (_, node_bytes) = dag_cbor(&cyclic_node);
    let mut body = commit_car(&alice.did, &key, liar_cid, "3l3qo2vuowo2b", &[]);
    // Written by hand: the CAR writer would not put bytes under a wrong CID.
    let cid_bytes = liar_cid.to_bytes();
    write_varint(&mut body, (cid_bytes.len() + node_bytes.len()) as u64);
    body.extend_from_slice(&cid_bytes);
    body.extend_from_slice(&node_bytes);
    let raw = pds.answer(&post(import, &headers, &body)).await;
    refused(&raw);

    // A signed commit whose record is malformed DAG-CBOR, and one whose
    // record nests 10,000 levels deep.
    for record in [
        vec![0xa1, 0x61, 0x61],                         // map missing its value
        vec![0xbf, 0x61, 0x61, 0x01, 0xff],             // indefinite-length map
        vec![0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02], // keys out of order
        [vec![0x81; 10_000], vec![0x01]].concat(),      // 10,000 nested arrays
        vec![0xfb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],       // a float
    ] {
        let record_cid = cid_for_dag_cbor(&record);
        let leaf = Ipld::Map(
            [
                ("l".to_owned(), Ipld::Null),
                (
                    "e".to_owned(),
                    Ipld::List(vec![Ipld::Map(
                        [
                            ("p".to_owned(), Ipld::Integer(0)),
                            ("k".to_owned(), Ipld::Bytes(b"com.example.x/a".to_vec())),
                            ("v".to_owned(), Ipld::Link(record_cid)),
                            ("t".to_owned(), Ipld::Null),
                        ]
                        .into_iter()
                        .collect(),
                    )]),
                ),
            ]
            .into_iter()
            .collect(),
        );
        let (node_cid, node_bytes) = dag_cbor(&leaf);
        let body = commit_car(
            &alice.did,
            &key,
            node_cid,
            "3l3qo2vuowo2c",
            &[(node_cid, &node_bytes), (record_cid, &record)],
        );
        let raw = pds.answer(&post(import, &headers, &body)).await;
        refused(&raw);
    }
    // A commit block that is itself 10,000 nested maps.
    let mut deep = Vec::new();
    for _ in 0..10_000 {
        deep.extend_from_slice(&[0xa1, 0x61, 0x61]);
    }
    deep.push(0x01);
    let deep_cid = cid_for_dag_cbor(&deep);
    let mut writer = CarWriter::new(Vec::new(), &[deep_cid]).unwrap();
    writer.write_block(&deep_cid, &deep).unwrap();
    let body = writer.finish().unwrap();
    let raw = pds.answer(&post(import, &headers, &body)).await;
    refused(&raw);
    pds.assert_alive().await;
}

const WS_UPGRADE: &str = "GET /xrpc/com.atproto.sync.subscribeRepos HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

async fn open_subscription(addr: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut stream = socket.connect(addr).await.unwrap();
    stream.write_all(WS_UPGRADE.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while find(&buf, b"\r\n\r\n").is_none() {
        let n = stream.read(&mut byte).await.unwrap();
        assert_ne!(n, 0, "closed during the upgrade");
        buf.push(byte[0]);
    }
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    stream
}

/// Events of 100 kB written while a subscriber never reads.
const STALLED_WRITES: usize = 450;

/// Many subscribers at once; a subscriber that never reads is cut off
/// while the others and the server carry on.
async fn websocket_floods(pds: &Server, alice: &TestAccount) {
    // 200 concurrent subscriptions.
    let mut streams = Vec::new();
    for _ in 0..200 {
        streams.push(open_subscription(pds.addr, None).await);
    }
    pds.assert_alive().await;
    case();
    drop(streams);

    // A subscriber with a tiny receive buffer that never reads.
    let mut stalled = open_subscription(pds.addr, Some(4096)).await;
    let client = atp_xrpc::client::XrpcClient::new(&pds.url)
        .unwrap()
        .with_bearer(&alice.access_jwt)
        .unwrap();
    let text = "y".repeat(100_000);
    let mut writes = 0;
    // Enough events to fill the subscriber's queue (4 frames here) and the
    // socket buffers, even where the kernel lets a receive buffer grow to
    // 32 MiB (`tcp_rmem`); bounded.
    for i in 0..STALLED_WRITES {
        procedure(
            &client,
            "com.atproto.repo.createRecord",
            &json!({
                "repo": alice.did,
                "collection": "com.example.filler",
                "record": {"$type": "com.example.filler", "text": text, "i": i},
            }),
        )
        .await;
        writes += 1;
    }
    assert_eq!(writes, STALLED_WRITES);
    // Now read: the stream must end (cut off as too slow) rather than carry
    // every event.
    let mut received = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(20), stalled.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
            Err(_) => break false,
        }
    };
    assert!(
        ended,
        "a subscriber that never read is cut off (received {} bytes)",
        received.len()
    );
    assert!(
        received.len() < STALLED_WRITES * 100_000,
        "the stalled subscriber was not sent everything ({} bytes)",
        received.len()
    );
    case();
    pds.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_inputs_get_error_envelopes() {
    let pds = Server::start(short_timeouts(), |state| {
        state.blob_upload_limit = 1_000;
    })
    .await;
    let big_car_pds = Server::start(ServerConfig::default(), |_| {}).await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let carol = big_car_pds.create("carol").await;

    tokio::join!(
        bodies_and_identifiers(&pds, &alice),
        heads(&pds),
        slow_and_lying(&pds, &alice),
        blobs(&pds, &alice),
        car_bombs(&big_car_pds, &carol),
    );
    websocket_floods(&pds, &bob).await;

    pds.stop().await;
    big_car_pds.stop().await;
    println!("hostile inputs: {} cases", CASES.load(Ordering::SeqCst));
}
