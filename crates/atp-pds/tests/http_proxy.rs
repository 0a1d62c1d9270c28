//! Forwarding to the AppView: a stand-in AppView (a small hyper server on
//! loopback) checks each service JWT with `ServiceJwtVerifier` against the
//! caller's key from the test's PLC directory and answers; the client sees
//! that answer through the PDS.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use atp_crypto::PublicKey;
use atp_did_plc::client::PlcClient;
use atp_pds::http::ServiceEndpoint;
use atp_xrpc::auth::{AuthError, ServiceJwtVerifier};
use bytes::Bytes;
use common::{refusal, Pds, TestAccount};
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// More audiences the stand-ins accept (a did:plc made by a test).
static EXTRA_AUDIENCE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The configured AppView's DID.
const APPVIEW_DID: &str = "did:web:appview.test";

/// What the stand-in saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    accept_language: Option<String>,
    body: Bytes,
    /// The verified token's issuer, audience and method.
    verified: Option<(String, String, Option<String>)>,
}

/// The stand-in AppView.
struct AppView {
    /// Its did:web (`did:web:localhost%3A<port>`), served at
    /// `/.well-known/did.json` with a `#bsky_chat` service pointing at
    /// itself.
    did_web: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AppView {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The atproto signing key of `did` from the directory's document.
async fn signing_key(directory: &PlcClient, did: &str) -> Result<PublicKey, AuthError> {
    let doc = directory
        .resolve(did)
        .await
        .map_err(|e| AuthError::KeyResolution(e.to_string()))?;
    let method = doc["verificationMethod"]
        .as_array()
        .and_then(|methods| {
            methods
                .iter()
                .find(|m| m["id"].as_str().is_some_and(|id| id.ends_with("#atproto")))
        })
        .ok_or_else(|| AuthError::KeyResolution("no atproto key".into()))?;
    let multibase = method["publicKeyMultibase"].as_str().unwrap();
    atp_crypto::did_key::parse_multikey(multibase)
        .map_err(|e| AuthError::KeyResolution(e.to_string()))
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    directory: PlcClient,
    did_web: String,
    own_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let method = req.method().to_string();
    let path = req.uri().path_and_query().unwrap().as_str().to_owned();
    let authorization = header("authorization");
    let content_type = header("content-type");
    let accept_language = header("accept-language");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let json_response = |status: StatusCode, value: Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json; charset=utf-8")
            .header("atproto-repo-rev", "3kabcdefghij2")
            .body(Full::new(Bytes::from(value.to_string())))
            .unwrap()
    };

    if path == "/.well-known/did.json" {
        return json_response(
            StatusCode::OK,
            json!({
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": did_web,
                "service": [{ "id": "#bsky_chat", "type": "BskyChatService", "serviceEndpoint": own_url }]
            }),
        );
    }
    let nsid = path
        .strip_prefix("/xrpc/")
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();

    // Every token must verify: audience one of our DIDs, method the one called.
    let mut verified = None;
    if let Some(auth) = &authorization {
        let token = auth.strip_prefix("Bearer ").unwrap();
        let resolver = |iss: String, _fresh: bool| {
            let directory = directory.clone();
            async move { signing_key(&directory, &iss).await }
        };
        let mut outcome = Err(AuthError::BadAudience);
        let extra = EXTRA_AUDIENCE.lock().unwrap().clone();
        let mut audiences = vec![APPVIEW_DID.to_owned(), did_web.clone()];
        audiences.extend(extra);
        for aud in &audiences {
            outcome = ServiceJwtVerifier::new(Some(aud), Some(&nsid))
                .verify(token, &resolver)
                .await;
            if !matches!(outcome, Err(AuthError::BadAudience)) {
                break;
            }
        }
        match outcome {
            Ok(claims) => verified = Some((claims.iss, claims.aud, claims.lxm)),
            Err(err) => {
                return json_response(
                    StatusCode::UNAUTHORIZED,
                    json!({ "error": "BadJwt", "message": err.to_string() }),
                )
            }
        }
    }
    seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        authorization,
        content_type: content_type.clone(),
        accept_language,
        body: body.clone(),
        verified: verified.clone(),
    });

    match nsid.as_str() {
        "app.bsky.feed.getTimeline" | "chat.bsky.convo.listConvos" => json_response(
            StatusCode::OK,
            json!({ "feed": [], "viewer": verified.map(|v| v.0) }),
        ),
        "app.bsky.notification.putPreferences" => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", content_type.unwrap_or_default())
            .body(Full::new(body))
            .unwrap(),
        "app.bsky.video.getThumb" => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "image/png")
            .body(Full::new(Bytes::from_static(b"\x89PNG\r\n\x1a\nbytes")))
            .unwrap(),
        "app.bsky.feed.getPostThread" => json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "NotFound", "message": "Post not found: at://x" }),
        ),
        _ => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "InternalServerError", "message": "broken" }),
        ),
    }
}

/// Serves the stand-in on `listener`, checking tokens against `directory`.
fn serve_appview(listener: tokio::net::TcpListener, directory: PlcClient) -> AppView {
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let did_web = format!("did:web:localhost%3A{port}");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (task_seen, task_did, task_url) = (Arc::clone(&seen), did_web.clone(), url.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (directory, seen, did, url) = (
                directory.clone(),
                Arc::clone(&task_seen),
                task_did.clone(),
                task_url.clone(),
            );
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let (directory, seen, did, url) = (
                        directory.clone(),
                        Arc::clone(&seen),
                        did.clone(),
                        url.clone(),
                    );
                    async move { Ok::<_, Infallible>(answer(req, directory, did, url, seen).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    AppView {
        did_web,
        seen,
        task,
    }
}

/// A PDS whose AppView is the stand-in.
async fn start() -> (Pds, AppView) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let pds = Pds::start_with(|state| {
        state.appview = Some(ServiceEndpoint {
            url,
            did: APPVIEW_DID.to_owned(),
        });
    })
    .await;
    let appview = serve_appview(listener, pds.directory());
    (pds, appview)
}

async fn get(
    pds: &Pds,
    jwt: Option<&str>,
    nsid: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> (u16, Option<String>, Option<String>, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut builder = Request::get(format!("{}/xrpc/{nsid}{query}", pds.url));
    if let Some(jwt) = jwt {
        builder = builder.header("authorization", format!("Bearer {jwt}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = client
        .request(builder.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, rev) = (header("content-type"), header("atproto-repo-rev"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, rev, body)
}

fn last(appview: &AppView) -> Seen {
    appview.seen.lock().unwrap().last().cloned().unwrap()
}

async fn app_session(pds: &Pds, account: &TestAccount, privileged: bool) -> String {
    let app: Value = pds
        .bearer(&account.access_jwt)
        .procedure(
            "com.atproto.server.createAppPassword",
            &(),
            &json!({ "name": format!("app-{privileged}"), "privileged": privileged }),
        )
        .await
        .unwrap();
    let session: Value = pds
        .client()
        .procedure(
            "com.atproto.server.createSession",
            &(),
            &json!({ "identifier": account.handle, "password": app["password"] }),
        )
        .await
        .unwrap();
    session["accessJwt"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn app_bsky_queries_reach_the_appview_with_a_service_jwt() {
    let (pds, appview) = start().await;
    let alice = pds.create("alice").await;

    let (status, content_type, rev, body) = get(
        &pds,
        Some(&alice.access_jwt),
        "app.bsky.feed.getTimeline",
        "?limit=5&cursor=a%20b",
        &[("accept-language", "fr")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(rev.as_deref(), Some("3kabcdefghij2"));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body, json!({ "feed": [], "viewer": alice.did }));

    let seen = last(&appview);
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.path,
        "/xrpc/app.bsky.feed.getTimeline?limit=5&cursor=a%20b"
    );
    assert_eq!(seen.accept_language.as_deref(), Some("fr"));
    // The session token itself never leaves the PDS.
    assert_ne!(
        seen.authorization.as_deref(),
        Some(format!("Bearer {}", alice.access_jwt).as_str())
    );
    assert_eq!(
        seen.verified,
        Some((
            alice.did.clone(),
            APPVIEW_DID.to_owned(),
            Some("app.bsky.feed.getTimeline".to_owned())
        ))
    );

    // Without a session: refused as the reference's proxy refuses it, and
    // never forwarded.
    let before = appview.seen.lock().unwrap().len();
    for nsid in [
        "app.bsky.feed.getTimeline",
        "app.bsky.actor.getProfile",
        "app.bsky.feed.getPostThread",
        "chat.bsky.convo.listConvos",
    ] {
        let (status, _, _, body) = get(&pds, None, nsid, "", &[]).await;
        assert_eq!(status, 401, "{nsid}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({ "error": "AuthMissing", "message": "Authentication Required" }),
            "{nsid}"
        );
    }
    // Also when the caller names the service.
    let (status, _, _, _) = get(
        &pds,
        None,
        "app.bsky.feed.getTimeline",
        "",
        &[("atproto-proxy", &format!("{APPVIEW_DID}#bsky_appview"))],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(appview.seen.lock().unwrap().len(), before);

    // A bad token is refused by the PDS, not forwarded.
    let (status, _, _, _) = get(
        &pds,
        Some("not-a-jwt"),
        "app.bsky.feed.getTimeline",
        "",
        &[],
    )
    .await;
    assert!(status == 400 || status == 401, "{status}");
    assert_eq!(appview.seen.lock().unwrap().len(), before);

    // Bytes pass through with their type.
    let (status, content_type, _, body) = get(
        &pds,
        Some(&alice.access_jwt),
        "app.bsky.video.getThumb",
        "",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("image/png"));
    assert_eq!(&body[..], b"\x89PNG\r\n\x1a\nbytes");
    pds.stop().await;
}

#[tokio::test]
async fn procedures_pass_their_body_through() {
    let (pds, appview) = start().await;
    let alice = pds.create("alice").await;
    let input = json!({ "priority": true, "note": "é" });
    let answer: Value = pds
        .bearer(&alice.access_jwt)
        .procedure("app.bsky.notification.putPreferences", &(), &input)
        .await
        .unwrap();
    assert_eq!(answer, input);
    let seen = last(&appview);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.content_type.as_deref(), Some("application/json"));
    assert_eq!(serde_json::from_slice::<Value>(&seen.body).unwrap(), input);
    assert_eq!(
        seen.verified.unwrap().2.as_deref(),
        Some("app.bsky.notification.putPreferences")
    );
    pds.stop().await;
}

#[tokio::test]
async fn upstream_errors_come_back_as_xrpc_errors() {
    let (pds, _appview) = start().await;
    let alice = pds.create("alice").await;
    let client = pds.bearer(&alice.access_jwt);

    let (status, error, message) = refusal(
        client
            .query::<_, Value>("app.bsky.feed.getPostThread", &json!({ "uri": "at://x" }))
            .await,
    );
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "NotFound", "Post not found: at://x")
    );
    // A 500 upstream is a 502 here.
    let (status, error, message) = refusal(
        client
            .query::<_, Value>("app.bsky.unspecced.broken", &())
            .await,
    );
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (502, "InternalServerError", "broken")
    );
    pds.stop().await;
}

#[tokio::test]
async fn the_proxy_header_picks_the_service_from_the_did_document() {
    let (pds, appview) = start().await;
    let alice = pds.create("alice").await;
    let target = format!("{}#bsky_chat", appview.did_web);

    let (status, _, _, body) = get(
        &pds,
        Some(&alice.access_jwt),
        "chat.bsky.convo.listConvos",
        "",
        &[("atproto-proxy", &target)],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let seen = last(&appview);
    assert_eq!(
        seen.verified,
        Some((
            alice.did.clone(),
            appview.did_web.clone(),
            Some("chat.bsky.convo.listConvos".to_owned())
        ))
    );

    // Chat needs the main password or a privileged app password.
    let app = app_session(&pds, &alice, false).await;
    let (status, _, _, body) = get(
        &pds,
        Some(&app),
        "chat.bsky.convo.listConvos",
        "",
        &[("atproto-proxy", &target)],
    )
    .await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, &body["error"], &body["message"]),
        (400, &json!("InvalidToken"), &json!("Bad token method"))
    );
    let privileged = app_session(&pds, &alice, true).await;
    let (status, _, _, _) = get(
        &pds,
        Some(&privileged),
        "chat.bsky.convo.listConvos",
        "",
        &[("atproto-proxy", &target)],
    )
    .await;
    assert_eq!(status, 200);

    // Any method is forwarded when the header names a service.
    let (status, _, _, _) = get(
        &pds,
        Some(&alice.access_jwt),
        "app.bsky.feed.getTimeline",
        "",
        &[("atproto-proxy", &target)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(last(&appview).verified.unwrap().1, appview.did_web);

    // Headers that name nothing usable.
    let refused = |header: String| {
        let jwt = alice.access_jwt.clone();
        let pds = &pds;
        async move {
            let (status, _, _, body) = get(
                pds,
                Some(&jwt),
                "app.bsky.feed.getTimeline",
                "",
                &[("atproto-proxy", &header)],
            )
            .await;
            let body: Value = serde_json::from_slice(&body).unwrap();
            (status, body["message"].as_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        refused(appview.did_web.clone()).await,
        (400, "no service id specified in proxy header".to_owned())
    );
    assert_eq!(
        refused(format!("{}#atproto_labeler", appview.did_web)).await,
        (400, "could not resolve proxy did service url".to_owned())
    );
    assert_eq!(
        refused("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#bsky_appview".to_owned()).await,
        (400, "could not resolve proxy did".to_owned())
    );
    // A did:plc from the directory, without such a service.
    assert_eq!(
        refused(format!("{}#bsky_appview", alice.did)).await,
        (400, "could not resolve proxy did service url".to_owned())
    );
    pds.stop().await;
}

#[tokio::test]
async fn without_an_appview() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let client = pds.bearer(&alice.access_jwt);
    let (status, error, message) = refusal(
        client
            .query::<_, Value>("app.bsky.feed.getTimeline", &())
            .await,
    );
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (
            400,
            "InvalidRequest",
            "No service configured for app.bsky.feed.getTimeline"
        )
    );
    // Outside app.bsky and chat.bsky, without a header: not implemented.
    let (status, error, _) = refusal(client.query::<_, Value>("com.example.nothing", &()).await);
    assert_eq!((status, error.as_str()), (501, "MethodNotImplemented"));
    // Without a session the same: the target is looked for first, as in
    // the reference.
    let anonymous = pds.client();
    let (status, _, message) = refusal(
        anonymous
            .query::<_, Value>("app.bsky.feed.getTimeline", &())
            .await,
    );
    assert_eq!(
        (status, message.as_str()),
        (400, "No service configured for app.bsky.feed.getTimeline")
    );
    let (status, error, _) = refusal(
        anonymous
            .query::<_, Value>("com.example.nothing", &())
            .await,
    );
    assert_eq!((status, error.as_str()), (501, "MethodNotImplemented"));
    // The PDS's own methods are still its own.
    let prefs: Value = client
        .query("app.bsky.actor.getPreferences", &())
        .await
        .unwrap();
    assert_eq!(prefs, json!({ "preferences": [] }));
    pds.stop().await;
}

#[tokio::test]
async fn the_proxy_header_resolves_a_did_plc_through_the_directory() {
    use atp_crypto::{Algorithm, SigningKey};
    use atp_did_plc::GenesisBuilder;

    let (pds, appview) = start().await;
    let alice = pds.create("alice").await;
    // A service whose did:plc document points its #atproto_pds at the stand-in.
    let key = SigningKey::generate(Algorithm::K256);
    let port = appview.did_web.rsplit("%3A").next().unwrap();
    let genesis = GenesisBuilder::new()
        .rotation_key(key.did_key())
        .signing_key(key.did_key())
        .handle("service.example.com")
        .pds_endpoint(format!("http://127.0.0.1:{port}"))
        .sign(&key)
        .unwrap();
    pds.directory()
        .submit(&genesis.did, &genesis.operation)
        .await
        .unwrap();
    EXTRA_AUDIENCE.lock().unwrap().push(genesis.did.clone());

    let header = format!("{}#atproto_pds", genesis.did);
    let (status, _, _, body) = get(
        &pds,
        Some(&alice.access_jwt),
        "app.bsky.feed.getTimeline",
        "?limit=1",
        &[("atproto-proxy", &header)],
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let seen = last(&appview);
    assert_eq!(seen.path, "/xrpc/app.bsky.feed.getTimeline?limit=1");
    assert_eq!(
        seen.verified,
        Some((
            alice.did.clone(),
            genesis.did.clone(),
            Some("app.bsky.feed.getTimeline".to_owned())
        ))
    );
    pds.stop().await;
}
