//! `com.atproto.identity.*` over loopback: handle resolution (local and
//! external through loopback DNS/HTTP stand-ins), handle updates reflected
//! in the PLC directory, and the emailed-token PLC operation flow, whose
//! resulting log the reference did:plc library validates.
#![allow(clippy::unwrap_used)]

mod common;
mod resolution_peers;

use std::net::Ipv4Addr;

use atp_crypto::{Algorithm, SigningKey};
use atp_pds::handle_resolver::HandleResolver;
use atp_pds::sequencer::{EventKind, Sequencer};
use common::{refusal, refused_procedure, Outbox, Pds, TestAccount};
use hyper::StatusCode;
use resolution_peers::{FakeDns, FakeWeb};
use serde_json::{json, Value};

/// The code in the last mail to `to` in `outbox`.
fn last_code(outbox: &Outbox, to: &str) -> String {
    let mails = outbox.mails();
    let mail = mails.iter().rev().find(|m| m.to == to).expect("a mail");
    assert_eq!(mail.subject, "PLC Update Operation Requested");
    let line = mail
        .body
        .lines()
        .find(|line| line.contains("code:"))
        .expect("a code line");
    line.rsplit(' ').next().unwrap().trim().to_owned()
}

/// A test PDS whose handle resolver asks the stand-ins, plus what the
/// tests look into.
struct World {
    pds: Pds,
    dns: FakeDns,
    web: FakeWeb,
    mail: Outbox,
    sequencer: Sequencer,
    rotation_key: String,
}

async fn world() -> World {
    let (dns, web) = (FakeDns::start().await, FakeWeb::start().await);
    let mail = Outbox::default();
    let mut seen = None;
    let resolver = HandleResolver::new(true)
        .with_nameserver(dns.addr())
        .with_plain_http_port(web.port());
    let pds = Pds::start_with(|state| {
        state.handles = resolver;
        mail.install(state);
        seen = Some((
            state.sequencer.clone(),
            state.keys.plc_rotation_key.did_key(),
        ));
    })
    .await;
    let (sequencer, rotation_key) = seen.unwrap();
    World {
        pds,
        dns,
        web,
        mail,
        sequencer,
        rotation_key,
    }
}

async fn resolve(pds: &Pds, handle: &str) -> Result<String, atp_xrpc::Error> {
    let answer: Value = pds
        .client()
        .query(
            "com.atproto.identity.resolveHandle",
            &json!({ "handle": handle }),
        )
        .await?;
    Ok(answer["did"].as_str().unwrap().to_owned())
}

async fn update_handle(
    pds: &Pds,
    who: &TestAccount,
    handle: &str,
) -> Result<Value, atp_xrpc::Error> {
    pds.bearer(&who.access_jwt)
        .procedure(
            "com.atproto.identity.updateHandle",
            &(),
            &json!({ "handle": handle }),
        )
        .await
}

fn identity_events(sequencer: &Sequencer, did: &str) -> usize {
    sequencer
        .events_after(0, 1000)
        .unwrap()
        .iter()
        .filter(|event| event.kind == EventKind::Identity && event.did == did)
        .count()
}

#[tokio::test]
async fn resolve_handle_local_then_external() {
    let w = world().await;
    let alice = w.pds.create("alice").await;
    assert_eq!(resolve(&w.pds, "alice.test").await.unwrap(), alice.did);
    assert_eq!(resolve(&w.pds, "ALICE.test").await.unwrap(), alice.did);

    // Ours, but nobody holds it.
    let (status, error, message) = refusal(resolve(&w.pds, "nobody.test").await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "HandleNotFound", "Unable to resolve handle")
    );

    // Elsewhere: by DNS, then by the well-known path.
    let bob = "did:plc:44ybard66vv44zksje25o7dz";
    w.dns.txt("_atproto.bob.example.com", &format!("did={bob}"));
    assert_eq!(resolve(&w.pds, "bob.example.com").await.unwrap(), bob);
    let carol = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    w.dns.a("carol.example.org", Ipv4Addr::LOCALHOST);
    w.web.serve("carol.example.org", StatusCode::OK, carol);
    assert_eq!(resolve(&w.pds, "carol.example.org").await.unwrap(), carol);

    let (status, error, message) = refusal(resolve(&w.pds, "nowhere.example.net").await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidRequest", "Unable to resolve handle")
    );
    let (status, error, _) = refusal(resolve(&w.pds, "not a handle").await);
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    w.pds.stop().await;
}

#[tokio::test]
async fn update_to_a_free_service_handle() {
    let w = world().await;
    let alice = w.pds.create("alice").await;
    let bob = w.pds.create("bob").await;
    let before = identity_events(&w.sequencer, &alice.did);

    update_handle(&w.pds, &alice, "Alice2.test").await.unwrap();

    // The directory, resolution and the event log follow.
    let data = w.pds.directory().data(&alice.did).await.unwrap();
    assert_eq!(data["alsoKnownAs"], json!(["at://alice2.test"]));
    assert_eq!(resolve(&w.pds, "alice2.test").await.unwrap(), alice.did);
    let (_, error, _) = refusal(resolve(&w.pds, "alice.test").await);
    assert_eq!(error, "HandleNotFound");
    assert_eq!(identity_events(&w.sequencer, &alice.did), before + 1);
    let session: Value = w
        .pds
        .bearer(&alice.access_jwt)
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap();
    assert_eq!(session["handle"], "alice2.test");

    // The old handle is free again.
    update_handle(&w.pds, &bob, "alice.test").await.unwrap();
    assert_eq!(resolve(&w.pds, "alice.test").await.unwrap(), bob.did);

    // The log of operations is valid for the reference library.
    let log = w.pds.directory().log(&alice.did).await.unwrap();
    assert_eq!(log.len(), 2);
    let checked = reference_validate(&alice.did, &log);
    assert_eq!(checked["data"]["alsoKnownAs"], json!(["at://alice2.test"]));
    w.pds.stop().await;
}

#[tokio::test]
async fn taken_and_invalid_handles_are_refused() {
    let w = world().await;
    let alice = w.pds.create("alice").await;
    let bob = w.pds.create("bob").await;

    let cases: &[(&str, &str, &str)] = &[
        (
            "bob.test",
            "HandleNotAvailable",
            "Handle already taken: bob.test",
        ),
        ("ab.test", "InvalidHandle", "Handle too short"),
        ("a.b.test", "InvalidHandle", "Invalid characters in handle"),
        (
            "abcdefghijklmnopqrs.test",
            "InvalidHandle",
            "Handle too long",
        ),
        (
            "alice.local",
            "InvalidHandle",
            "Handle TLD is invalid or disallowed",
        ),
        // Not ours, and does not resolve to alice.
        (
            "alice.example.com",
            "InvalidRequest",
            "External handle did not resolve to DID",
        ),
    ];
    for (handle, name, message) in cases {
        let (status, error, text) = refusal(update_handle(&w.pds, &alice, handle).await);
        assert_eq!(
            (status, error.as_str(), text.as_str()),
            (400, *name, *message),
            "{handle}"
        );
    }
    let (status, error, _) = refusal(update_handle(&w.pds, &alice, "not a handle").await);
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    let (status, _, _) = refused_procedure(
        &w.pds.client(),
        "com.atproto.identity.updateHandle",
        &json!({ "handle": "free.test" }),
    )
    .await;
    assert_eq!(status, 401);

    // Nothing changed anywhere.
    let data = w.pds.directory().data(&alice.did).await.unwrap();
    assert_eq!(data["alsoKnownAs"], json!(["at://alice.test"]));
    assert_eq!(resolve(&w.pds, "bob.test").await.unwrap(), bob.did);
    w.pds.stop().await;
}

#[tokio::test]
async fn update_to_an_external_handle_that_resolves_to_the_account() {
    let w = world().await;
    let alice = w.pds.create("alice").await;
    w.dns
        .txt("_atproto.alice.example.com", &format!("did={}", alice.did));
    update_handle(&w.pds, &alice, "alice.example.com")
        .await
        .unwrap();
    let data = w.pds.directory().data(&alice.did).await.unwrap();
    assert_eq!(data["alsoKnownAs"], json!(["at://alice.example.com"]));
    assert_eq!(
        resolve(&w.pds, "alice.example.com").await.unwrap(),
        alice.did
    );
    let (_, error, _) = refusal(resolve(&w.pds, "alice.test").await);
    assert_eq!(error, "HandleNotFound");
    w.pds.stop().await;
}

/// Asks the reference did:plc library to validate a whole log; returns its
/// answer (`ok` must be true).
fn reference_validate(did: &str, log: &[atp_did_plc::Operation]) -> Value {
    let ops: Vec<String> = log.iter().map(|op| op.to_json()).collect();
    let out = atp_test_vectors::run_node(
        "plc-lib.mjs",
        &json!({ "cases": [{ "cmd": "validate", "did": did, "ops": ops }] }),
    );
    let result = out[0].clone();
    assert_eq!(result["ok"], true, "reference refused the log: {result}");
    result
}

async fn request_signature(w: &World, who: &TestAccount) -> String {
    let _: Value = w
        .pds
        .bearer(&who.access_jwt)
        .procedure(
            "com.atproto.identity.requestPlcOperationSignature",
            &(),
            &Value::Null,
        )
        .await
        .unwrap();
    last_code(
        &w.mail,
        &format!("{}@example.com", who.handle.trim_end_matches(".test")),
    )
}

async fn sign(w: &World, who: &TestAccount, input: Value) -> Result<Value, atp_xrpc::Error> {
    w.pds
        .bearer(&who.access_jwt)
        .procedure("com.atproto.identity.signPlcOperation", &(), &input)
        .await
}

async fn submit(w: &World, who: &TestAccount, operation: &Value) -> Result<Value, atp_xrpc::Error> {
    w.pds
        .bearer(&who.access_jwt)
        .procedure(
            "com.atproto.identity.submitPlcOperation",
            &(),
            &json!({ "operation": operation }),
        )
        .await
}

#[tokio::test]
async fn plc_operation_flow_with_the_emailed_token() {
    let w = world().await;
    let alice = w.pds.create("alice").await;

    // What the PDS recommends is what the directory holds now.
    let recommended: Value = w
        .pds
        .bearer(&alice.access_jwt)
        .query("com.atproto.identity.getRecommendedDidCredentials", &())
        .await
        .unwrap();
    let data = w.pds.directory().data(&alice.did).await.unwrap();
    assert_eq!(recommended["rotationKeys"], json!([w.rotation_key]));
    assert_eq!(recommended["alsoKnownAs"], data["alsoKnownAs"]);
    assert_eq!(
        recommended["verificationMethods"],
        data["verificationMethods"]
    );
    assert_eq!(recommended["services"], data["services"]);

    // No token, a wrong token.
    let (status, _, message) = refusal(sign(&w, &alice, json!({})).await);
    assert_eq!(status, 400);
    assert_eq!(
        message,
        "email confirmation token required to sign PLC operations"
    );
    let code = request_signature(&w, &alice).await;
    let (status, error, message) =
        refusal(sign(&w, &alice, json!({ "token": "WRONG-TOKEN" })).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidToken", "Token is invalid")
    );

    // The right token: a signed operation adding a recovery key and a
    // second alsoKnownAs entry.
    let recovery = SigningKey::generate(Algorithm::P256).did_key();
    let aka = json!(["at://alice.test", "https://alice.example.org"]);
    let signed = sign(
        &w,
        &alice,
        json!({
            "token": code.to_lowercase(),
            "rotationKeys": [recovery, w.rotation_key],
            "alsoKnownAs": aka,
        }),
    )
    .await
    .unwrap();
    let operation = signed["operation"].clone();
    assert_eq!(operation["type"], "plc_operation");
    assert_eq!(
        operation["verificationMethods"],
        data["verificationMethods"]
    );
    assert_eq!(operation["services"], data["services"]);
    // Signing did not submit it.
    assert_eq!(w.pds.directory().log(&alice.did).await.unwrap().len(), 1);
    // The token was used up.
    let (_, error, _) = refusal(sign(&w, &alice, json!({ "token": code })).await);
    assert_eq!(error, "InvalidToken");

    let before = identity_events(&w.sequencer, &alice.did);
    let _ = submit(&w, &alice, &operation).await.unwrap();
    let data = w.pds.directory().data(&alice.did).await.unwrap();
    assert_eq!(data["rotationKeys"], json!([recovery, w.rotation_key]));
    assert_eq!(data["alsoKnownAs"], aka);
    assert_eq!(identity_events(&w.sequencer, &alice.did), before + 1);

    // The reference library accepts the whole log and agrees.
    let log = w.pds.directory().log(&alice.did).await.unwrap();
    assert_eq!(log.len(), 2);
    let checked = reference_validate(&alice.did, &log);
    assert_eq!(
        checked["data"]["rotationKeys"],
        json!([recovery, w.rotation_key])
    );
    assert_eq!(checked["data"]["alsoKnownAs"], aka);
    w.pds.stop().await;
}

#[tokio::test]
async fn operations_that_would_take_the_account_away_are_refused() {
    let w = world().await;
    let alice = w.pds.create("alice").await;
    let data = w.pds.directory().data(&alice.did).await.unwrap();
    let other_key = SigningKey::generate(Algorithm::K256).did_key();

    let cases = [
        (
            json!({ "rotationKeys": [other_key] }),
            "Rotation keys do not include server's rotation key",
        ),
        (
            json!({ "services": { "atproto_pds": { "type": "AtprotoPersonalDataServer", "endpoint": "https://elsewhere.example.org" } } }),
            "Incorrect endpoint on atproto_pds service",
        ),
        (
            json!({ "services": { "atproto_pds": { "type": "SomethingElse", "endpoint": "http://localhost:2583" } } }),
            "Incorrect type on atproto_pds service",
        ),
        (
            json!({ "verificationMethods": { "atproto": other_key } }),
            "Incorrect signing key",
        ),
        (
            json!({ "alsoKnownAs": ["at://someone.else.example"] }),
            "Incorrect handle in alsoKnownAs",
        ),
    ];
    for (changes, expected) in cases {
        let mut input = changes.clone();
        input["token"] = json!(request_signature(&w, &alice).await);
        let operation = sign(&w, &alice, input).await.unwrap()["operation"].clone();
        let (status, error, message) = refusal(submit(&w, &alice, &operation).await);
        assert_eq!(
            (status, error.as_str(), message.as_str()),
            (400, "InvalidRequest", expected),
            "{changes}"
        );
    }
    // Not an operation at all; a tombstone.
    let (_, _, message) = refusal(submit(&w, &alice, &json!({ "type": "nonsense" })).await);
    assert_eq!(message, "Invalid operation");
    let last = w.pds.directory().last_op(&alice.did).await.unwrap();
    let (_, _, message) = refusal(
        submit(
            &w,
            &alice,
            &json!({ "type": "plc_tombstone", "prev": last.cid().unwrap().to_string(), "sig": "AAAA" }),
        )
        .await,
    );
    assert_eq!(message, "Invalid operation");

    // The directory never saw any of them.
    assert_eq!(w.pds.directory().log(&alice.did).await.unwrap().len(), 1);
    assert_eq!(w.pds.directory().data(&alice.did).await.unwrap(), data);
    w.pds.stop().await;
}

#[tokio::test]
async fn resolve_handle_asks_the_appview_when_there_is_one() {
    // The "AppView" is another PDS whose resolver knows erin.example.com.
    let appview = world().await;
    let erin = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    appview
        .dns
        .txt("_atproto.erin.example.com", &format!("did={erin}"));
    let url = appview.pds.url.clone();
    let pds = Pds::start_with(|state| {
        state.appview = Some(atp_pds::http::ServiceEndpoint {
            url,
            did: "did:web:appview.example".to_owned(),
        });
    })
    .await;
    assert_eq!(resolve(&pds, "erin.example.com").await.unwrap(), erin);
    let (status, error, message) = refusal(resolve(&pds, "frank.example.com").await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidRequest", "Unable to resolve handle")
    );
    pds.stop().await;
    appview.pds.stop().await;
}
