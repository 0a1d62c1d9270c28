//! deactivateAccount, activateAccount, checkAccountStatus,
//! requestAccountDelete, deleteAccount and getServiceAuth over HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use atp_crypto::{Algorithm, PublicKey};
use atp_pds::mailer::Mail;
use base64::Engine as _;
use common::{
    procedure, query, refusal, refused_procedure, refused_query, Outbox, Pds, TestAccount, PASSWORD,
};
use serde_json::{json, Value};

async fn status(pds: &Pds, alice: &TestAccount) -> Value {
    pds.bearer(&alice.access_jwt)
        .query("com.atproto.server.checkAccountStatus", &())
        .await
        .unwrap()
}

/// The token in a mail: the one word of the body made of upper-case
/// letters, digits and one dash (`XXXXX-XXXXX`).
fn token_in(mail: &Mail) -> String {
    mail.body
        .split(|c: char| c.is_whitespace() || c == ':')
        .find(|word| {
            word.len() == 11
                && word.chars().nth(5) == Some('-')
                && word
                    .chars()
                    .all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no token in {:?}", mail.body))
        .to_owned()
}

#[tokio::test]
async fn deactivation_and_activation() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;

    let fresh = status(&pds, &alice).await;
    assert_eq!(fresh["activated"], true);
    assert_eq!(fresh["validDid"], true);
    assert_eq!(fresh["privateStateValues"], 0);
    assert_eq!(fresh["indexedRecords"], 0);
    assert_eq!(fresh["expectedBlobs"], 0);
    assert_eq!(fresh["importedBlobs"], 0);
    // The empty repository: one commit block and the empty MST node.
    assert_eq!(fresh["repoBlocks"], 2);
    let head = query(
        &pds.client(),
        "com.atproto.sync.getLatestCommit",
        &json!({ "did": alice.did }),
    )
    .await;
    assert_eq!(fresh["repoCommit"], head["cid"]);
    assert_eq!(fresh["repoRev"], head["rev"]);

    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.deactivateAccount",
        &json!({ "deleteAfter": "2030-01-01T00:00:00.000Z" }),
    )
    .await;
    assert_eq!(status(&pds, &alice).await["activated"], false);
    // A deactivated account may still log in; its session says so.
    let session = pds.login(&alice.handle, PASSWORD).await.unwrap();
    assert_eq!(session["active"], false);
    assert_eq!(session["status"], "deactivated");

    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.activateAccount",
        &(),
    )
    .await;
    assert_eq!(status(&pds, &alice).await["activated"], true);
    let session = query(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.getSession",
        &(),
    )
    .await;
    assert_eq!(session["active"], true);
    assert!(session.get("status").is_none());
    pds.stop().await;
}

#[tokio::test]
async fn deactivation_refusals() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let (status, error, _) = refused_procedure(
        &pds.client(),
        "com.atproto.server.deactivateAccount",
        &json!({}),
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "AuthMissing"));
    let (status, error, _) = refused_procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.deactivateAccount",
        &json!({ "deleteAfter": "tomorrow" }),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    let (status, error, _) =
        refused_query(&pds.client(), "com.atproto.server.checkAccountStatus", &()).await;
    assert_eq!((status, error.as_str()), (401, "AuthMissing"));
    pds.stop().await;
}

#[tokio::test]
async fn account_deletion_with_the_mailed_token() {
    let (pds, outbox) = Pds::start_with_outbox().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;

    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.requestAccountDelete",
        &(),
    )
    .await;
    let mail = outbox.0.lock().unwrap().pop().unwrap();
    assert_eq!(mail.to, "alice@example.com");
    let token = token_in(&mail);

    let delete = |did: &str, password: &str, token: &str| {
        let body = json!({ "did": did, "password": password, "token": token });
        let client = pds.client();
        async move {
            client
                .procedure::<_, _, Value>("com.atproto.server.deleteAccount", &(), &body)
                .await
        }
    };

    // Wrong password, wrong token, someone else's DID, unknown DID.
    let (status, error, message) = refusal(delete(&alice.did, "wrong", &token).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (401, "AuthenticationRequired", "Invalid did or password")
    );
    let (status, error, message) = refusal(delete(&alice.did, PASSWORD, "AAAAA-BBBBB").await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidToken", "Token is invalid")
    );
    let (status, error, _) = refusal(delete(&bob.did, PASSWORD, &token).await);
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    let (status, error, message) =
        refusal(delete("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", PASSWORD, &token).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidRequest", "account not found")
    );
    // A wrong token did not use up the right one.
    assert!(pds.login(&alice.handle, PASSWORD).await.is_ok());

    let done = delete(&alice.did, PASSWORD, &token.to_lowercase())
        .await
        .unwrap();
    assert_eq!(done, Value::Null);

    // Gone: no login, no refresh, no repository; bob is untouched.
    let (status, error, _) = refusal(pds.login(&alice.handle, PASSWORD).await);
    assert_eq!((status, error.as_str()), (401, "AuthenticationRequired"));
    let (status, error, _) = pds.refused_refresh(&alice.refresh_jwt).await;
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let (status, _, _) = refused_query(
        &pds.client(),
        "com.atproto.sync.getLatestCommit",
        &json!({ "did": alice.did }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(pds.login(&bob.handle, PASSWORD).await.is_ok());
    // The handle is free again.
    pds.create("alice").await;
    pds.stop().await;
}

#[tokio::test]
async fn request_account_delete_needs_the_main_password() {
    let (pds, outbox) = Pds::start_with_outbox().await;
    let alice = pds.create("alice").await;
    let (status, error, _) = refused_procedure(
        &pds.client(),
        "com.atproto.server.requestAccountDelete",
        &(),
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "AuthMissing"));
    let app = pds.create_app_password(&alice, "phone").await;
    let session = pds
        .login(&alice.handle, app["password"].as_str().unwrap())
        .await
        .unwrap();
    let (status, error, _) = refused_procedure(
        &pds.bearer(session["accessJwt"].as_str().unwrap()),
        "com.atproto.server.requestAccountDelete",
        &(),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    assert!(outbox.0.lock().unwrap().is_empty());
    pds.stop().await;
}

/// The decoded header and claims of a JWT.
fn jwt_parts(jwt: &str) -> (Value, Value, Vec<u8>, Vec<u8>) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]).into_bytes();
    (header, claims, signed, b64.decode(parts[2]).unwrap())
}

#[tokio::test]
async fn service_auth_tokens_are_signed_with_the_account_key() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let now = chrono::Utc::now().timestamp();

    let answer = query(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.getServiceAuth",
        &json!({
            "aud": "did:web:api.example.com",
            "lxm": "app.bsky.feed.getTimeline",
            "exp": now + 1800,
        }),
    )
    .await;
    let (header, claims, signed, sig) = jwt_parts(answer["token"].as_str().unwrap());
    assert_eq!(header["alg"], "ES256K");
    assert_eq!(claims["iss"], alice.did.as_str());
    assert_eq!(claims["aud"], "did:web:api.example.com");
    assert_eq!(claims["lxm"], "app.bsky.feed.getTimeline");
    assert_eq!(claims["exp"], now + 1800);

    // The signature verifies with the signing key of the DID document.
    let doc = pds.directory().data(&alice.did).await.unwrap();
    let did_key = doc["verificationMethods"]["atproto"].as_str().unwrap();
    let key = PublicKey::from_did_key(did_key).unwrap();
    assert_eq!(key.algorithm(), Algorithm::K256);
    key.verify(&signed, &sig).unwrap();

    // Without exp: a minute; with a service fragment in aud.
    let answer = query(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.getServiceAuth",
        &json!({ "aud": "did:web:api.example.com#bsky_appview" }),
    )
    .await;
    let (_, claims, _, _) = jwt_parts(answer["token"].as_str().unwrap());
    assert_eq!(claims["aud"], "did:web:api.example.com#bsky_appview");
    let exp = claims["exp"].as_i64().unwrap();
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(exp - iat, 60);
    assert!(claims.get("lxm").is_none() || claims["lxm"].is_null());
    pds.stop().await;
}

#[tokio::test]
async fn service_auth_refusals() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let now = chrono::Utc::now().timestamp();
    let ask = |params: Value, jwt: String| {
        let client = pds.bearer(&jwt);
        async move {
            client
                .query::<_, Value>("com.atproto.server.getServiceAuth", &params)
                .await
        }
    };
    let jwt = alice.access_jwt.clone();

    let cases = [
        (
            json!({ "aud": "not-a-did" }),
            "InvalidRequest",
            "aud must be a valid atproto DID or did#serviceId reference".to_owned(),
        ),
        (
            json!({ "aud": "did:web:x.example", "exp": now - 10 }),
            "BadExpiration",
            "expiration is in past".to_owned(),
        ),
        (
            json!({ "aud": "did:web:x.example", "exp": now + 7200, "lxm": "app.bsky.feed.getTimeline" }),
            "BadExpiration",
            "cannot request a token with an expiration more than an hour in the future".to_owned(),
        ),
        (
            json!({ "aud": "did:web:x.example", "exp": now + 600 }),
            "BadExpiration",
            "cannot request a method-less token with an expiration more than a minute in the future"
                .to_owned(),
        ),
        (
            json!({ "aud": "did:web:x.example", "lxm": "com.atproto.server.createAppPassword" }),
            "InvalidRequest",
            "cannot request a service auth token for the following protected method: com.atproto.server.createAppPassword".to_owned(),
        ),
    ];
    for (params, name, message) in cases {
        let (status, error, got) = refusal(ask(params.clone(), jwt.clone()).await);
        assert_eq!(
            (status, error.as_str(), got.as_str()),
            (400, name, message.as_str()),
            "{params}"
        );
    }

    // A plain app password cannot get tokens for privileged methods; a
    // privileged one can.
    let make = |privileged: bool, name: &'static str| {
        let client = pds.bearer(&alice.access_jwt);
        async move {
            client
                .procedure::<_, _, Value>(
                    "com.atproto.server.createAppPassword",
                    &(),
                    &json!({ "name": name, "privileged": privileged }),
                )
                .await
                .unwrap()
        }
    };
    let plain = make(false, "plain").await;
    let session = pds
        .login(&alice.handle, plain["password"].as_str().unwrap())
        .await
        .unwrap();
    let plain_jwt = session["accessJwt"].as_str().unwrap().to_owned();
    let chat = json!({ "aud": "did:web:api.bsky.chat", "lxm": "chat.bsky.convo.listConvos" });
    let (status, error, message) = refusal(ask(chat.clone(), plain_jwt.clone()).await);
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    assert_eq!(
        message,
        "insufficient access to request a service auth token for the following method: chat.bsky.convo.listConvos"
    );
    let privileged = make(true, "privileged").await;
    let session = pds
        .login(&alice.handle, privileged["password"].as_str().unwrap())
        .await
        .unwrap();
    let answer = ask(chat, session["accessJwt"].as_str().unwrap().to_owned())
        .await
        .unwrap();
    assert!(answer["token"].is_string());
    // Ordinary methods are fine for the plain app password.
    let answer = ask(
        json!({ "aud": "did:web:x.example", "lxm": "app.bsky.feed.getTimeline" }),
        plain_jwt,
    )
    .await
    .unwrap();
    assert!(answer["token"].is_string());
    pds.stop().await;
}

/// The `(frame type, body)` of every event about `did` in the log.
fn events_of(sequencer: &atp_pds::sequencer::Sequencer, did: &str) -> Vec<(String, Value)> {
    sequencer
        .events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|event| event.did == did)
        .map(|event| {
            let body = atp_crypto::dagcbor::decode_ipld(event.frame.body_bytes()).unwrap();
            let body = atp_crypto::data_model::ipld_to_json(&body).unwrap();
            (event.kind.frame_type().to_owned(), body)
        })
        .collect()
}

#[tokio::test]
async fn status_changes_are_announced_as_account_events() {
    let outbox = Outbox::default();
    let (pds, state) = Pds::start_with_state(|state| outbox.install(state)).await;
    let sequencer = state.sequencer;
    let alice = pds.create("alice").await;
    let before = events_of(&sequencer, &alice.did).len();

    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.deactivateAccount",
        &json!({}),
    )
    .await;
    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.activateAccount",
        &(),
    )
    .await;
    let events = events_of(&sequencer, &alice.did);
    let new: Vec<&(String, Value)> = events[before..].iter().collect();
    assert_eq!(new[0].0, "#account");
    assert_eq!(new[0].1["active"], false);
    assert_eq!(new[0].1["status"], "deactivated");
    // Reactivation: #account active, then #identity with the handle and
    // #sync with the current commit, as the reference sends them.
    assert_eq!(new[1].0, "#account");
    assert_eq!(new[1].1["active"], true);
    assert!(new[1].1.get("status").is_none());
    assert_eq!(new[2].0, "#identity");
    assert_eq!(new[2].1["handle"], "alice.test");
    assert_eq!(new[3].0, "#sync");
    assert_eq!(new.len(), 4);

    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.requestAccountDelete",
        &(),
    )
    .await;
    let token = token_in(&outbox.0.lock().unwrap().pop().unwrap());
    procedure(
        &pds.client(),
        "com.atproto.server.deleteAccount",
        &json!({ "did": alice.did, "password": PASSWORD, "token": token }),
    )
    .await;
    // Deletion leaves one event for the account: #account deleted.
    let events = events_of(&sequencer, &alice.did);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "#account");
    assert_eq!(events[0].1["active"], false);
    assert_eq!(events[0].1["status"], "deleted");
    pds.stop().await;
}
