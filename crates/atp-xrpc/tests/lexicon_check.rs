//! The router's optional lexicon checking, the error conversions, and the
//! reference XRPC server's answers to the same requests.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use atp_xrpc::auth::AuthError;
use atp_xrpc::lexicon::{LexiconError, Lexicons};
use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
use hyper::StatusCode;

const QUERIES: [&str; 3] = [
    "com.atproto.repo.getRecord",
    "com.atproto.sync.listRepos",
    "com.atproto.identity.resolveHandle",
];
const PROCEDURES: [&str; 1] = ["com.atproto.repo.createRecord"];

/// Stub methods answering `{}` (and, for getRecord, what the handler saw).
fn checked_router() -> Router {
    let mut router = Router::new();
    router.lexicons(Arc::new(Lexicons::bundled()));
    for nsid in QUERIES {
        router
            .query(nsid, |_req| async {
                XrpcResponse::json(&serde_json::json!({}))
            })
            .unwrap();
    }
    for nsid in PROCEDURES {
        router
            .procedure(nsid, |mut req| async move {
                // The body is still there for the handler after the check.
                let _: serde_json::Value = req.json().await?;
                XrpcResponse::json(&serde_json::json!({}))
            })
            .unwrap();
    }
    router
}

struct Answer {
    status: u16,
    body: serde_json::Value,
}

async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Answer {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let req = builder
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Answer { status, body }
}

#[tokio::test]
async fn params_and_input_are_checked_before_the_handler() {
    let server = XrpcServer::bind("127.0.0.1:0", checked_router(), ServerConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();

    let missing = call(
        addr,
        "GET",
        "/xrpc/com.atproto.repo.getRecord?collection=app.bsky.feed.post&rkey=3k",
        None,
        "",
    )
    .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"], "InvalidRequest");
    assert_eq!(
        missing.body["message"],
        "Error: Params must have the property \"repo\""
    );

    let ok = call(
        addr,
        "GET",
        "/xrpc/com.atproto.repo.getRecord?repo=alice.test&collection=app.bsky.feed.post&rkey=3k",
        None,
        "",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let no_record = call(
        addr,
        "POST",
        "/xrpc/com.atproto.repo.createRecord",
        Some("application/json"),
        r#"{"repo":"alice.test","collection":"app.bsky.feed.post"}"#,
    )
    .await;
    assert_eq!(no_record.status, 400);
    assert_eq!(
        no_record.body["message"],
        "Input must have the property \"record\""
    );

    let created = call(
        addr,
        "POST",
        "/xrpc/com.atproto.repo.createRecord",
        Some("application/json"),
        r#"{"repo":"alice.test","collection":"app.bsky.feed.post","record":{"text":"hi"}}"#,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    server.shutdown().await;
}

#[tokio::test]
async fn handlers_see_params_typed_by_the_lexicon() {
    let mut router = Router::new();
    router
        .query("com.atproto.sync.listRepos", |req| async move {
            XrpcResponse::json(&req.lexicon_params().cloned())
        })
        .unwrap()
        .lexicons(Arc::new(Lexicons::bundled()));
    router
        .query("com.example.unchecked", |req| async move {
            XrpcResponse::json(&req.lexicon_params().cloned())
        })
        .unwrap();
    let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default())
        .await
        .unwrap();
    let typed = call(
        server.local_addr(),
        "GET",
        "/xrpc/com.atproto.sync.listRepos?limit=5&cursor=abc",
        None,
        "",
    )
    .await;
    assert_eq!(
        typed.body,
        serde_json::json!({ "limit": 5, "cursor": "abc" })
    );
    let unchecked = call(
        server.local_addr(),
        "GET",
        "/xrpc/com.example.unchecked?limit=5",
        None,
        "",
    )
    .await;
    assert_eq!(unchecked.status, 200);
    assert_eq!(unchecked.body, serde_json::Value::Null);
    server.shutdown().await;
}

#[test]
fn session_auth_errors_answer_as_the_reference_pds() {
    let expired = XrpcError::from_session_auth(&AuthError::Expired);
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    assert_eq!(expired.name(), "ExpiredToken");
    assert_eq!(expired.message(), "Token has expired");
    let bad = XrpcError::from_session_auth(&AuthError::BadSignature);
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bad.name(), "InvalidToken");
    assert_eq!(bad.message(), "Token could not be verified");
    let scope = XrpcError::from_session_auth(&AuthError::BadScope("com.atproto.refresh".into()));
    assert_eq!(scope.name(), "InvalidToken");
    assert_eq!(scope.message(), "Bad token scope");
}

#[test]
fn service_auth_errors_answer_as_the_reference_verifier() {
    let cases = [
        (
            AuthError::Malformed("x".into()),
            "BadJwt",
            "poorly formatted jwt",
        ),
        (
            AuthError::BadType(Some("at+jwt".into())),
            "BadJwtType",
            "Invalid jwt type \"at+jwt\"",
        ),
        (AuthError::Expired, "JwtExpired", "jwt expired"),
        (
            AuthError::BadAudience,
            "BadJwtAudience",
            "jwt audience does not match service did",
        ),
        (
            AuthError::BadLexiconMethod {
                expected: "com.example.a".into(),
                found: None,
            },
            "BadJwtLexiconMethod",
            "missing jwt lexicon method (\"lxm\"). must match: com.example.a",
        ),
        (
            AuthError::BadLexiconMethod {
                expected: "com.example.a".into(),
                found: Some("com.example.b".into()),
            },
            "BadJwtLexiconMethod",
            "bad jwt lexicon method (\"lxm\"). must match: com.example.a",
        ),
        (
            AuthError::BadIssuer("x".into()),
            "BadJwtIss",
            "jwt iss is not a valid did",
        ),
        (
            AuthError::BadSignature,
            "BadJwtSignature",
            "jwt signature does not match jwt issuer",
        ),
        (
            AuthError::KeyResolution("no key".into()),
            "BadJwtSignature",
            "could not verify jwt signature",
        ),
    ];
    for (err, name, message) in cases {
        let answer = XrpcError::from_service_auth(&err);
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{err}");
        assert_eq!(answer.name(), name, "{err}");
        assert_eq!(answer.message(), message, "{err}");
    }
}

#[test]
fn lexicon_errors_convert() {
    let err = Lexicons::bundled()
        .validate_input("com.atproto.repo.createRecord", &serde_json::json!({}))
        .unwrap_err();
    let answer = XrpcError::from(err.clone());
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(answer.name(), "InvalidRequest");
    assert_eq!(
        answer.message(),
        "Input must have the property \"collection\""
    );
    assert!(matches!(
        atp_xrpc::Error::from(err),
        atp_xrpc::Error::Lexicon(_)
    ));

    let broken = XrpcError::from(LexiconError::Duplicate("com.example.a".into()));
    assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(matches!(
        atp_xrpc::Error::from(AuthError::Expired),
        atp_xrpc::Error::Auth(AuthError::Expired)
    ));
}

/// Every request, sent to our server and to the reference server with the
/// same lexicons: same status, same error name, same message.
#[test]
fn reference_server_answers_the_same() {
    let requests = serde_json::json!([
        { "method": "GET", "path": "/xrpc/com.atproto.repo.getRecord?collection=app.bsky.feed.post&rkey=3k" },
        { "method": "GET", "path": "/xrpc/com.atproto.repo.getRecord?repo=alice.test&rkey=3k" },
        { "method": "GET", "path": "/xrpc/com.atproto.repo.getRecord?repo=not%20a%20handle&collection=app.bsky.feed.post&rkey=3k" },
        { "method": "GET", "path": "/xrpc/com.atproto.repo.getRecord?repo=alice.test&collection=nope&rkey=3k" },
        { "method": "GET", "path": "/xrpc/com.atproto.repo.getRecord?repo=alice.test&collection=app.bsky.feed.post&rkey=3k" },
        { "method": "GET", "path": "/xrpc/com.atproto.sync.listRepos?limit=5000" },
        { "method": "GET", "path": "/xrpc/com.atproto.sync.listRepos?limit=0" },
        { "method": "GET", "path": "/xrpc/com.atproto.sync.listRepos?limit=10&cursor=x" },
        { "method": "GET", "path": "/xrpc/com.atproto.identity.resolveHandle" },
        { "method": "GET", "path": "/xrpc/com.atproto.identity.resolveHandle?handle=bad_handle" },
        { "method": "GET", "path": "/xrpc/com.atproto.identity.resolveHandle?handle=alice.test" },
        { "method": "POST", "path": "/xrpc/com.atproto.repo.createRecord", "contentType": "application/json",
          "body": "{\"repo\":\"alice.test\",\"collection\":\"app.bsky.feed.post\"}" },
        { "method": "POST", "path": "/xrpc/com.atproto.repo.createRecord", "contentType": "application/json",
          "body": "{\"repo\":\"alice.test\",\"collection\":\"not an nsid\",\"record\":{}}" },
        { "method": "POST", "path": "/xrpc/com.atproto.repo.createRecord", "contentType": "application/json",
          "body": "{\"repo\":\"alice.test\",\"collection\":\"app.bsky.feed.post\",\"record\":{},\"validate\":\"yes\"}" },
        { "method": "POST", "path": "/xrpc/com.atproto.repo.createRecord", "contentType": "text/plain",
          "body": "hello" },
        { "method": "POST", "path": "/xrpc/com.atproto.repo.createRecord", "contentType": "application/json" },
        { "method": "POST", "path": "/xrpc/com.atproto.repo.createRecord", "contentType": "application/json",
          "body": "{\"repo\":\"alice.test\",\"collection\":\"app.bsky.feed.post\",\"record\":{\"text\":\"hi\"}}" },
    ]);
    let lexicons: Vec<serde_json::Value> = Lexicons::bundled_sources()
        .map(|(_, text)| serde_json::from_str(text).unwrap())
        .collect();
    let methods: Vec<&str> = QUERIES.iter().chain(PROCEDURES.iter()).copied().collect();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(XrpcServer::bind(
            "127.0.0.1:0",
            checked_router(),
            ServerConfig::default(),
        ))
        .unwrap();
    let out = atp_test_vectors::run_node(
        "xrpc-lexicon-check.mjs",
        &serde_json::json!({
            "url": format!("http://{}", server.local_addr()),
            "lexicons": lexicons,
            "methods": methods,
            "requests": requests,
        }),
    );
    runtime.block_on(server.shutdown());

    let cases = out.as_array().unwrap();
    assert_eq!(cases.len(), requests.as_array().unwrap().len());
    let mut refused = 0;
    for case in cases {
        let (reference, ours) = (&case["reference"], &case["ours"]);
        assert_eq!(ours["status"], reference["status"], "{case}");
        assert_eq!(ours["body"]["error"], reference["body"]["error"], "{case}");
        assert_eq!(
            ours["body"]["message"], reference["body"]["message"],
            "{case}"
        );
        if reference["status"] == 400 {
            refused += 1;
        }
    }
    // The reference refused what it should: every case but the valid ones.
    assert_eq!(refused, cases.len() - 4, "{out}");
    assert_eq!(
        cases[0]["reference"]["body"]["message"],
        "Error: Params must have the property \"repo\""
    );
    atp_test_vectors::report(
        "xrpc-lexicon-check.mjs (reference server verdicts)",
        cases.len(),
    );
}
