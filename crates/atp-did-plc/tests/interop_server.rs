//! Cross-implementation check of the directory server: the reference
//! `@did-plc/server` 0.0.1 (in-memory database, through
//! `tests/interop/plc-server.mjs`) and our server receive the same requests,
//! and their status codes, content types and bodies are compared.
//!
//! Operations are built and signed in Rust; the reference resolving the DID
//! Rust derived is the check that derivation, DAG-CBOR and signatures agree.
//!
//! Intentional differences (each comparison below says which rule it uses):
//!
//! * Structure errors: both answer 400 `Not a valid operation: ...`; the
//!   reference quotes the whole JSON body, we say which member is wrong.
//!   Only the prefix is compared.
//! * `Improperly formatted operation, <reason>`: the reference appends
//!   `: [object Object]` (it interpolates the operation object into a string);
//!   we stop after the reason. The text up to the reason is compared.
//! * More than 10 rotation keys: the newer reference (`constraints.ts`,
//!   what plc.directory runs) refuses with `Too many rotationKey entries
//!   (max 10)` before the library's `too many rotation keys` (more than 5)
//!   that 0.0.1 reports. Both are 400 and name rotation keys.
//! * `createdAt` differs (two clocks): audit entries are compared without
//!   it, after checking both carry an ISO-8601 millisecond UTC time.
//! * DID documents: 0.0.1 renders the old form (`@context` with only the
//!   key suite, verification method `id: "#atproto"`, type
//!   `EcdsaSecp256r1VerificationKey2019` / `EcdsaSecp256k1VerificationKey2019`,
//!   uncompressed key); we render the current form that plc.directory serves
//!   (the `multikey/v1` context, `id: "<did>#atproto"`, type `Multikey`,
//!   `publicKeyMultibase` = the did:key's multibase). Everything else
//!   (`id`, `alsoKnownAs`, `service`, controller, method names) must be
//!   equal, and the reference's old form is asserted so a change shows up.
//! * `/export`: the reference's mock database exports nothing ("disabled in
//!   mocks"), so only the status and content type are compared; our export
//!   is tested in `tests/server.rs`.
//! * `/_health`: both answer `{"version": ...}` with their own versions.
//! * Unknown routes: both 404; the reference's body is Express's HTML page,
//!   ours is `{"message": "Cannot GET /..."}`.
//! * A body that is not JSON: the reference crashes in its error handler
//!   (the JSON parser fails before the request logger is attached, and the
//!   handler calls `req.log.info`) and answers 500 with an HTML stack trace;
//!   we answer 400 `{"message": "Request body is not valid JSON: ..."}`.
//!   The test asserts both behaviours.

#![allow(clippy::unwrap_used)]

mod directory_support;

use atp_crypto::Algorithm;
use atp_did_plc::client::encode_component;
use atp_did_plc::operation::Operation;
use atp_did_plc::server::{PlcServer, ServerConfig};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use directory_support::reference::ReferenceServer;
use directory_support::{body, body_of, genesis, key, sign, tombstone};

/// One HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {}", self.body))
            .to_owned()
    }
}

/// How two answers must agree.
enum Rule {
    /// Same status, content type and JSON body (or text body if not JSON).
    Same,
    /// Same status and content type; JSON bodies equal once `createdAt` is
    /// removed from every array entry (after checking its format).
    SameModuloCreatedAt,
    /// Same status; both `{"message"}` starting with this prefix.
    MessagePrefix(&'static str),
    /// Same status and content type; DID documents equal apart from the
    /// verification-method rendering (see the module docs).
    Document,
    /// Same status only.
    Status,
}

struct Pair {
    http: Client<HttpConnector, Full<Bytes>>,
    reference: String,
    ours: String,
    compared: usize,
}

impl Pair {
    async fn send(&self, base: &str, method: &Method, path: &str, body: Option<&str>) -> Answer {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{base}{path}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
            .unwrap();
        let response = self.http.request(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    /// Sends the same request to both servers and checks `rule`; returns
    /// the reference's answer and ours.
    async fn check(
        &mut self,
        what: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
        rule: Rule,
    ) -> (Answer, Answer) {
        let theirs = self.send(&self.reference, &method, path, body).await;
        let ours = self.send(&self.ours, &method, path, body).await;
        let context = format!("{what}: {method} {path}\nreference: {theirs:?}\nours: {ours:?}");
        assert_eq!(theirs.status, ours.status, "status differs\n{context}");
        match rule {
            Rule::Same => {
                assert_eq!(theirs.content_type, ours.content_type, "{context}");
                match serde_json::from_str::<Value>(&theirs.body) {
                    Ok(value) => assert_eq!(value, ours.json(), "body differs\n{context}"),
                    Err(_) => assert_eq!(theirs.body, ours.body, "body differs\n{context}"),
                }
            }
            Rule::SameModuloCreatedAt => {
                assert_eq!(theirs.content_type, ours.content_type, "{context}");
                assert_eq!(
                    without_created_at(theirs.json()),
                    without_created_at(ours.json()),
                    "body differs\n{context}"
                );
            }
            Rule::MessagePrefix(prefix) => {
                assert!(theirs.message().starts_with(prefix), "{context}");
                assert!(ours.message().starts_with(prefix), "{context}");
            }
            Rule::Document => {
                assert_eq!(theirs.content_type, ours.content_type, "{context}");
                if theirs.status == 200 {
                    compare_documents(theirs.json(), ours.json(), &context);
                } else {
                    assert_eq!(theirs.json(), ours.json(), "body differs\n{context}");
                }
            }
            Rule::Status => {}
        }
        self.compared += 1;
        (theirs, ours)
    }
}

/// Compares a reference 0.0.1 DID document with ours.
fn compare_documents(mut theirs: Value, mut ours: Value, context: &str) {
    let their_methods = theirs["verificationMethod"].take();
    let our_methods = ours["verificationMethod"].take();
    let did = ours["id"].as_str().unwrap().to_owned();
    let their_methods = their_methods.as_array().unwrap();
    let our_methods = our_methods.as_array().unwrap();
    assert_eq!(their_methods.len(), our_methods.len(), "{context}");
    for (t, o) in their_methods.iter().zip(our_methods) {
        let name = t["id"].as_str().unwrap();
        assert!(name.starts_with('#'), "{context}");
        assert_eq!(o["id"], format!("{did}{name}").as_str(), "{context}");
        assert_eq!(t["controller"], o["controller"], "{context}");
        assert_eq!(o["controller"], did.as_str(), "{context}");
        assert!(
            t["type"].as_str().unwrap().ends_with("VerificationKey2019"),
            "{context}"
        );
        assert_eq!(o["type"], "Multikey", "{context}");
        let multibase = o["publicKeyMultibase"].as_str().unwrap();
        assert!(
            atp_crypto::PublicKey::from_did_key(&format!("did:key:{multibase}")).is_ok(),
            "{context}"
        );
    }
    let contexts = ours["@context"].take();
    let contexts: Vec<&str> = contexts
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        contexts[..2],
        [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1"
        ]
    );
    assert_eq!(
        theirs["@context"][0], "https://www.w3.org/ns/did/v1",
        "{context}"
    );
    theirs["@context"].take();
    assert_eq!(theirs, ours, "document differs\n{context}");
}

/// Removes (after checking) the `createdAt` of each entry of an array.
fn without_created_at(mut value: Value) -> Value {
    if let Value::Array(entries) = &mut value {
        for entry in entries {
            let created = entry
                .as_object_mut()
                .and_then(|o| o.remove("createdAt"))
                .expect("an entry with createdAt");
            let text = created.as_str().unwrap();
            assert_eq!(text.len(), 24, "{text}");
            assert!(text.ends_with('Z'), "{text}");
            assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{text}");
        }
    }
    value
}

fn op_json(op: &Operation) -> String {
    op.to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_directory_answers_like_the_reference() {
    let reference = ReferenceServer::start();
    let server = PlcServer::start(ServerConfig::in_memory()).await.unwrap();
    let mut pair = Pair {
        http: Client::builder(TokioExecutor::new()).build_http(),
        reference: format!("http://127.0.0.1:{}", reference.port),
        ours: server.url(),
        compared: 0,
    };
    let get = Method::GET;
    let post = Method::POST;

    let k1 = key(Algorithm::K256);
    let k2 = key(Algorithm::P256);
    let k3 = key(Algorithm::K256);
    let signing = key(Algorithm::P256);
    let outsider = key(Algorithm::K256);
    let (did, op1) = genesis(
        body(
            &[&k1, &k2],
            &signing,
            "alice.example.com",
            "https://pds.example.com",
        ),
        &k1,
    );
    let did_path = format!("/{did}");

    // Nothing registered yet.
    for suffix in ["", "/data", "/log", "/log/audit", "/log/last"] {
        pair.check(
            "unknown DID",
            get.clone(),
            &format!("{did_path}{suffix}"),
            None,
            Rule::Same,
        )
        .await;
    }

    // Invalid genesis submissions.
    let upper = format!("/did:plc:{}", did["did:plc:".len()..].to_uppercase());
    pair.check(
        "upper-case DID",
        post.clone(),
        &upper,
        Some(&op_json(&op1)),
        Rule::Same,
    )
    .await;
    pair.check(
        "DID too short",
        post.clone(),
        "/did:plc:abc",
        Some(&op_json(&op1)),
        Rule::Same,
    )
    .await;
    let mut missing_prev = op1.to_json_value();
    missing_prev.as_object_mut().unwrap().remove("prev");
    pair.check(
        "missing prev",
        post.clone(),
        &did_path,
        Some(&missing_prev.to_string()),
        Rule::MessagePrefix("Not a valid operation: "),
    )
    .await;
    let mut bad_sig = op1.clone();
    bad_sig.sig = outsider_sig(&op1, &outsider);
    pair.check(
        "bad signature",
        post.clone(),
        &did_path,
        Some(&op_json(&bad_sig)),
        Rule::Same,
    )
    .await;
    let six: Vec<_> = (0..6).map(|_| key(Algorithm::P256)).collect();
    let six_refs: Vec<_> = six.iter().collect();
    let (six_did, six_op) = genesis(
        body(&six_refs, &signing, "six.test", "https://p.example"),
        &six[0],
    );
    pair.check(
        "six rotation keys",
        post.clone(),
        &format!("/{six_did}"),
        Some(&op_json(&six_op)),
        Rule::MessagePrefix("Improperly formatted operation, too many rotation keys"),
    )
    .await;
    let eleven: Vec<_> = (0..11).map(|_| key(Algorithm::P256)).collect();
    let eleven_refs: Vec<_> = eleven.iter().collect();
    let (eleven_did, eleven_op) = genesis(
        body(&eleven_refs, &signing, "eleven.test", "https://p.example"),
        &eleven[0],
    );
    let (theirs, ours) = pair
        .check(
            "eleven rotation keys",
            post.clone(),
            &format!("/{eleven_did}"),
            Some(&op_json(&eleven_op)),
            Rule::Status,
        )
        .await;
    assert!(theirs.message().contains("rotation keys"), "{theirs:?}");
    assert_eq!(ours.message(), "Too many rotationKey entries (max 10)");
    // A genesis operation with a prev: its DID is derived from it all the same.
    let mut with_prev = body(&[&k1], &signing, "p.test", "https://p.example");
    with_prev.prev = Some(op1.cid().unwrap().to_string());
    let with_prev = atp_did_plc::operation::UnsignedOperation::Plc(with_prev)
        .sign(&k1)
        .unwrap();
    let with_prev_did = atp_did_plc::did::did_for_genesis(&with_prev).unwrap();
    pair.check(
        "genesis with a prev",
        post.clone(),
        &format!("/{with_prev_did}"),
        Some(&op_json(&with_prev)),
        Rule::MessagePrefix("Improperly formatted operation, expected null prev on create"),
    )
    .await;
    let lone_tombstone = tombstone(&op1, &k1);
    pair.check(
        "tombstone as genesis",
        post.clone(),
        &did_path,
        Some(&op_json(&lone_tombstone)),
        Rule::Same,
    )
    .await;
    let theirs = pair
        .send(&pair.reference, &post, &did_path, Some("{not json"))
        .await;
    let ours = pair
        .send(&pair.ours, &post, &did_path, Some("{not json"))
        .await;
    assert_eq!(theirs.status, 500, "{theirs:?}");
    assert_eq!(ours.status, 400, "{ours:?}");
    assert!(ours.message().starts_with("Request body is not valid JSON"));
    pair.check(
        "not an operation",
        post.clone(),
        &did_path,
        Some(r#"{"hello":"world"}"#),
        Rule::MessagePrefix("Not a valid operation: "),
    )
    .await;

    // The genesis operation, then everything about the DID.
    pair.check(
        "genesis",
        post.clone(),
        &did_path,
        Some(&op_json(&op1)),
        Rule::Same,
    )
    .await;
    let (doc, _) = pair
        .check("document", get.clone(), &did_path, None, Rule::Document)
        .await;
    assert_eq!(
        doc.json()["id"],
        did.as_str(),
        "the reference resolves the DID Rust derived"
    );
    let encoded = format!("/{}", encode_component(&did));
    pair.check(
        "percent-encoded DID",
        get.clone(),
        &encoded,
        None,
        Rule::Document,
    )
    .await;
    check_everything(&mut pair, &did_path).await;
    pair.check(
        "trailing slash",
        get.clone(),
        &format!("{did_path}/log/"),
        None,
        Rule::Same,
    )
    .await;
    pair.check(
        "same genesis again",
        post.clone(),
        &did_path,
        Some(&op_json(&op1)),
        Rule::Status,
    )
    .await;

    // Invalid updates.
    let mut b = body_of(&op1);
    b.also_known_as = vec!["at://alice2.example.com".to_owned()];
    let unknown_prev = sign(b.clone(), Some(&six_op), &k1);
    pair.check(
        "unknown prev",
        post.clone(),
        &did_path,
        Some(&op_json(&unknown_prev)),
        Rule::Same,
    )
    .await;
    let null_prev = sign(b.clone(), None, &k1);
    pair.check(
        "null prev",
        post.clone(),
        &did_path,
        Some(&op_json(&null_prev)),
        Rule::Same,
    )
    .await;
    let by_outsider = sign(b.clone(), Some(&op1), &outsider);
    pair.check(
        "signed by a non-rotation key",
        post.clone(),
        &did_path,
        Some(&op_json(&by_outsider)),
        Rule::Same,
    )
    .await;
    let by_signing_key = sign(b.clone(), Some(&op1), &signing);
    pair.check(
        "signed by the atproto key",
        post.clone(),
        &did_path,
        Some(&op_json(&by_signing_key)),
        Rule::Same,
    )
    .await;

    // Valid updates: handle (by the second rotation key), then rotation.
    let op2 = sign(b, Some(&op1), &k2);
    pair.check(
        "update handle",
        post.clone(),
        &did_path,
        Some(&op_json(&op2)),
        Rule::Same,
    )
    .await;
    check_everything(&mut pair, &did_path).await;
    let mut b = body_of(&op2);
    b.rotation_keys = vec![k2.did_key(), k3.did_key()];
    let op3 = sign(b, Some(&op2), &k1);
    pair.check(
        "rotate keys",
        post.clone(),
        &did_path,
        Some(&op_json(&op3)),
        Rule::Same,
    )
    .await;
    let mut b = body_of(&op3);
    b.services.get_mut("atproto_pds").unwrap().endpoint = "https://elsewhere.example".to_owned();
    let stale = sign(b.clone(), Some(&op3), &k1);
    pair.check(
        "rotated-out key",
        post.clone(),
        &did_path,
        Some(&op_json(&stale)),
        Rule::Same,
    )
    .await;
    let op4 = sign(b, Some(&op3), &k3);
    pair.check(
        "update by the lower key",
        post.clone(),
        &did_path,
        Some(&op_json(&op4)),
        Rule::Same,
    )
    .await;

    // Recovery: the lower key cannot fork, the higher one can.
    let mut b = body_of(&op3);
    b.also_known_as = vec!["at://recovered.example.com".to_owned()];
    let fork_low = sign(b.clone(), Some(&op3), &k3);
    pair.check(
        "fork by the same key",
        post.clone(),
        &did_path,
        Some(&op_json(&fork_low)),
        Rule::Same,
    )
    .await;
    let op5 = sign(b, Some(&op3), &k2);
    pair.check(
        "recovery",
        post.clone(),
        &did_path,
        Some(&op_json(&op5)),
        Rule::Same,
    )
    .await;
    check_everything(&mut pair, &did_path).await;
    let (audit, _) = pair
        .check(
            "audit after recovery",
            get.clone(),
            &format!("{did_path}/log/audit"),
            None,
            Rule::SameModuloCreatedAt,
        )
        .await;
    let nullified: Vec<bool> = audit
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["nullified"].as_bool().unwrap())
        .collect();
    assert_eq!(nullified, [false, false, false, true, false]);

    // Tombstone, then nothing more.
    let op6 = tombstone(&op5, &k2);
    pair.check(
        "tombstone",
        post.clone(),
        &did_path,
        Some(&op_json(&op6)),
        Rule::Same,
    )
    .await;
    check_everything(&mut pair, &did_path).await;
    let mut b = body_of(&op5);
    b.also_known_as = vec!["at://zombie.example.com".to_owned()];
    let after = sign(b, Some(&op6), &k2);
    pair.check(
        "after the tombstone",
        post.clone(),
        &did_path,
        Some(&op_json(&after)),
        Rule::Same,
    )
    .await;

    // Routes that are not about one DID.
    pair.check("export", get.clone(), "/export", None, Rule::Status)
        .await;
    let (theirs, ours) = pair
        .check("health", get.clone(), "/_health", None, Rule::Status)
        .await;
    assert!(theirs.json()["version"].is_string() && ours.json()["version"].is_string());
    pair.check("unknown route", get.clone(), "/a/b/c/d", None, Rule::Status)
        .await;

    atp_test_vectors::report(
        "@did-plc/server 0.0.1 (same requests, compared answers)",
        pair.compared,
    );
    server.shutdown().await.unwrap();
}

/// Compares every read route of a DID.
async fn check_everything(pair: &mut Pair, did_path: &str) {
    pair.check("document", Method::GET, did_path, None, Rule::Document)
        .await;
    pair.check(
        "data",
        Method::GET,
        &format!("{did_path}/data"),
        None,
        Rule::Same,
    )
    .await;
    pair.check(
        "log",
        Method::GET,
        &format!("{did_path}/log"),
        None,
        Rule::Same,
    )
    .await;
    pair.check(
        "last",
        Method::GET,
        &format!("{did_path}/log/last"),
        None,
        Rule::Same,
    )
    .await;
    pair.check(
        "audit",
        Method::GET,
        &format!("{did_path}/log/audit"),
        None,
        Rule::SameModuloCreatedAt,
    )
    .await;
}

/// A valid signature over the operation by a key that is not allowed.
fn outsider_sig(op: &Operation, outsider: &atp_crypto::SigningKey) -> String {
    let resigned = op.unsigned.clone().sign(outsider).unwrap();
    resigned.sig
}
