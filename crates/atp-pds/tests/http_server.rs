//! The `com.atproto.server` account and session methods over loopback
//! HTTP, against the embedded PLC directory.
#![allow(clippy::unwrap_used)]

mod common;

use atp_did_plc::client::PlcClient;
use atp_xrpc::auth::SessionTokenAuthority;
use common::{procedure, query, refusal, refused_procedure, refused_query, Pds};
use serde_json::{json, Value};

/// A PDS with invite codes required or not, a contact email, and neither
/// admin password nor development mode.
async fn start(invite_required: bool) -> Pds {
    Pds::start_configured(
        |config| config.invite_required = invite_required,
        |state| {
            state.info.contact_email = Some("admin@localhost".to_owned());
            state.admin_password = None;
            state.dev_mode = false;
        },
    )
    .await
}

/// createAccount of `handle` with `email` and the password `hunter22`.
async fn create(pds: &Pds, handle: &str, email: &str) -> Result<Value, atp_xrpc::Error> {
    pds.client()
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": handle, "email": email, "password": "hunter22" }),
        )
        .await
}

#[tokio::test]
async fn describe_server_shows_the_service() {
    let pds = start(false).await;
    let answer = query(&pds.client(), "com.atproto.server.describeServer", &()).await;
    assert_eq!(
        answer,
        json!({
            "did": "did:web:localhost",
            "availableUserDomains": [".test"],
            "inviteCodeRequired": false,
            "links": {},
            "contact": { "email": "admin@localhost" },
        })
    );
    pds.stop().await;
}

#[tokio::test]
async fn create_account_registers_the_did_and_opens_a_session() {
    let pds = start(false).await;
    let created = create(&pds, "alice.test", "alice@example.com")
        .await
        .unwrap();
    let did = created["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:plc:"), "{did}");
    assert_eq!(created["handle"], "alice.test");
    assert_eq!(created["didDoc"]["id"], did.as_str());
    assert_eq!(created["didDoc"]["alsoKnownAs"], json!(["at://alice.test"]));

    // The directory knows the DID, with the same document.
    let resolved = PlcClient::new(&pds.plc.url())
        .unwrap()
        .resolve(&did)
        .await
        .unwrap();
    assert_eq!(resolved, created["didDoc"]);

    // The access token opens the session.
    let session: Value = pds
        .bearer(created["accessJwt"].as_str().unwrap())
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap();
    assert_eq!(session["did"], did.as_str());
    assert_eq!(session["handle"], "alice.test");
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["emailConfirmed"], false);
    assert_eq!(session["active"], true);
    assert!(session.get("accessJwt").is_none());
    pds.stop().await;
}

#[tokio::test]
async fn create_account_refusals() {
    let pds = start(false).await;
    create(&pds, "alice.test", "alice@example.com")
        .await
        .unwrap();

    let (status, name, message) = refusal(create(&pds, "ALICE.test", "other@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, "Handle already taken: alice.test");

    let (status, name, message) = refusal(create(&pds, "bob.test", "Alice@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, "Email already taken: alice@example.com");

    // Rejected by the lexicon's handle format before the handler runs.
    let (status, name, message) = refusal(create(&pds, "jo_hn.test", "john@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, "Input/handle must be a valid handle");

    let (status, name, message) = refusal(create(&pds, "john.bsky.io", "john@example.com").await);
    assert_eq!((status, name.as_str()), (400, "UnsupportedDomain"));
    assert_eq!(message, "Not a supported handle domain");

    for (handle, expected) in [
        ("j.test", "Handle too short"),
        ("jayromy-johnber12345678910.test", "Handle too long"),
        ("a.john.test", "Invalid characters in handle"),
    ] {
        let (status, name, message) = refusal(create(&pds, handle, "john@example.com").await);
        assert_eq!((status, name.as_str()), (400, "InvalidHandle"), "{handle}");
        assert_eq!(message, expected, "{handle}");
    }
    pds.stop().await;
}

#[tokio::test]
async fn invite_codes_are_required_when_configured() {
    let pds = start(true).await;
    let described = query(&pds.client(), "com.atproto.server.describeServer", &()).await;
    assert_eq!(described["inviteCodeRequired"], true);

    let (status, name, message) = refusal(create(&pds, "alice.test", "alice@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidInviteCode"));
    assert_eq!(message, "No invite code provided");

    let refused: Result<Value, _> = pds
        .client()
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": "alice.test", "email": "a@example.com", "password": "x", "inviteCode": "nope-nope" }),
        )
        .await;
    let (status, name, message) = refusal(refused);
    assert_eq!((status, name.as_str()), (400, "InvalidInviteCode"));
    assert_eq!(message, "Provided invite code not available");
    pds.stop().await;
}

#[tokio::test]
async fn sessions_login_refresh_and_logout() {
    let pds = start(false).await;
    let created = create(&pds, "alice.test", "alice@example.com")
        .await
        .unwrap();
    let did = created["did"].as_str().unwrap();

    // Login by handle (any case), by email and by DID.
    for identifier in ["Alice.Test", "alice@example.com", did] {
        let session = procedure(
            &pds.client(),
            "com.atproto.server.createSession",
            &json!({ "identifier": identifier, "password": "hunter22" }),
        )
        .await;
        assert_eq!(session["did"], did, "{identifier}");
        assert_eq!(session["handle"], "alice.test");
        assert_eq!(session["email"], "alice@example.com");
        assert_eq!(session["emailConfirmed"], false);
        assert_eq!(session["active"], true);
        assert_eq!(session["didDoc"]["id"], did);
        assert!(session["accessJwt"].is_string() && session["refreshJwt"].is_string());
    }

    for (identifier, password) in [("alice.test", "wrong"), ("nobody.test", "hunter22")] {
        let refused: Result<Value, _> = pds
            .client()
            .procedure(
                "com.atproto.server.createSession",
                &(),
                &json!({ "identifier": identifier, "password": password }),
            )
            .await;
        let (status, name, message) = refusal(refused);
        assert_eq!((status, name.as_str()), (401, "AuthenticationRequired"));
        assert_eq!(message, "Invalid identifier or password");
    }

    // Refresh rotates: the new pair works, the old refresh token within
    // its grace period yields the same successor.
    let refresh = created["refreshJwt"].as_str().unwrap();
    let refreshed = procedure(
        &pds.bearer(refresh),
        "com.atproto.server.refreshSession",
        &(),
    )
    .await;
    assert_eq!(refreshed["did"], did);
    assert_eq!(refreshed["handle"], "alice.test");
    assert_eq!(refreshed["active"], true);
    let new_refresh = refreshed["refreshJwt"].as_str().unwrap();
    assert_ne!(new_refresh, refresh);
    let again = procedure(
        &pds.bearer(refresh),
        "com.atproto.server.refreshSession",
        &(),
    )
    .await;
    let jti = |jwt: &str| {
        let tokens = SessionTokenAuthority::new("test-jwt-secret", "did:web:localhost").unwrap();
        tokens.verify_refresh(jwt).unwrap().jti.as_str().to_owned()
    };
    assert_eq!(jti(again["refreshJwt"].as_str().unwrap()), jti(new_refresh));
    let session: Value = pds
        .bearer(refreshed["accessJwt"].as_str().unwrap())
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap();
    assert_eq!(session["did"], did);

    // An access token is not a refresh token, nor the reverse.
    let (status, name, _) = refused_procedure(
        &pds.bearer(refreshed["accessJwt"].as_str().unwrap()),
        "com.atproto.server.refreshSession",
        &(),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "InvalidToken"));
    let (status, name, _) = refused_query(
        &pds.bearer(new_refresh),
        "com.atproto.server.getSession",
        &(),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "InvalidToken"));

    // No token at all.
    let (status, name, message) =
        refused_query(&pds.client(), "com.atproto.server.getSession", &()).await;
    assert_eq!((status, name.as_str()), (401, "AuthMissing"));
    assert_eq!(message, "Authentication Required");

    // A token signed with another secret.
    let forged = SessionTokenAuthority::new("another-secret", "did:web:localhost")
        .unwrap()
        .create_session(
            &atp_syntax::Did::new(did).unwrap(),
            atp_xrpc::auth::AuthScope::Access,
        )
        .unwrap();
    let (status, name, _) = refused_query(
        &pds.bearer(&forged.access_jwt),
        "com.atproto.server.getSession",
        &(),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "InvalidToken"));

    // Logout revokes the refresh token.
    let done = procedure(
        &pds.bearer(new_refresh),
        "com.atproto.server.deleteSession",
        &(),
    )
    .await;
    assert_eq!(done, Value::Null);
    let (status, name, message) = refused_procedure(
        &pds.bearer(new_refresh),
        "com.atproto.server.refreshSession",
        &(),
    )
    .await;
    assert_eq!((status, name.as_str()), (400, "ExpiredToken"));
    assert_eq!(message, "Token has been revoked");
    pds.stop().await;
}
