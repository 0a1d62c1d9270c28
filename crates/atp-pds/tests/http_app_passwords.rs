//! createAppPassword, listAppPasswords and revokeAppPassword over HTTP:
//! sessions opened with app passwords, what they may not do, and
//! revocation of their refresh tokens.
#![allow(clippy::unwrap_used)]

mod common;

use atp_xrpc::auth::{AuthScope, SessionTokenAuthority};
use common::{procedure, query, refusal, refused_procedure, refused_query, Pds, PASSWORD};
use serde_json::{json, Value};

async fn create_app_password(pds: &Pds, jwt: &str, name: &str, privileged: bool) -> Value {
    pds.bearer(jwt)
        .procedure(
            "com.atproto.server.createAppPassword",
            &(),
            &json!({ "name": name, "privileged": privileged }),
        )
        .await
        .unwrap()
}

/// The scope claim of an access JWT (read with the test server's secret).
fn scope_of(access_jwt: &str) -> AuthScope {
    let tokens = SessionTokenAuthority::new("test-jwt-secret", "did:web:localhost").unwrap();
    let all = [
        AuthScope::Access,
        AuthScope::AppPass,
        AuthScope::AppPassPrivileged,
        AuthScope::Takendown,
    ];
    tokens.verify_access(access_jwt, &all).unwrap().scope
}

#[tokio::test]
async fn app_password_sessions_have_app_scopes() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;

    let plain = create_app_password(&pds, &alice.access_jwt, "phone", false).await;
    assert_eq!(plain["name"], "phone");
    assert_eq!(plain["privileged"], false);
    let password = plain["password"].as_str().unwrap();
    // xxxx-xxxx-xxxx-xxxx in base32 letters and digits.
    let groups: Vec<&str> = password.split('-').collect();
    assert_eq!(groups.len(), 4);
    assert!(groups.iter().all(|group| group.len() == 4
        && group
            .chars()
            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))));
    assert!(plain["createdAt"].as_str().unwrap().ends_with('Z'));

    let privileged = create_app_password(&pds, &alice.access_jwt, "chat", true).await;
    assert_eq!(privileged["privileged"], true);

    let session = pds.login(&alice.handle, password).await.unwrap();
    assert_eq!(session["did"], alice.did.as_str());
    assert_eq!(
        scope_of(session["accessJwt"].as_str().unwrap()),
        AuthScope::AppPass
    );
    let session = pds
        .login(&alice.did, privileged["password"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        scope_of(session["accessJwt"].as_str().unwrap()),
        AuthScope::AppPassPrivileged
    );
    let main = pds.login(&alice.handle, PASSWORD).await.unwrap();
    assert_eq!(
        scope_of(main["accessJwt"].as_str().unwrap()),
        AuthScope::Access
    );

    // Listed newest first, without the password.
    let listed = query(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.listAppPasswords",
        &(),
    )
    .await;
    let passwords = listed["passwords"].as_array().unwrap();
    assert_eq!(passwords.len(), 2);
    assert_eq!(passwords[0]["name"], "chat");
    assert_eq!(passwords[0]["privileged"], true);
    assert_eq!(passwords[1]["name"], "phone");
    assert!(passwords.iter().all(|p| p.get("password").is_none()));
    pds.stop().await;
}

#[tokio::test]
async fn app_password_sessions_cannot_use_full_access_methods() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let created = create_app_password(&pds, &alice.access_jwt, "phone", true).await;
    let session = pds
        .login(&alice.handle, created["password"].as_str().unwrap())
        .await
        .unwrap();
    let app_jwt = session["accessJwt"].as_str().unwrap();

    // An app password cannot mint app passwords...
    let (status, error, message) = refused_procedure(
        &pds.bearer(app_jwt),
        "com.atproto.server.createAppPassword",
        &json!({ "name": "another" }),
    )
    .await;
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidToken", "Bad token scope")
    );
    // ...nor deactivate or delete the account, nor list its invite codes.
    let (status, error, _) = refused_procedure(
        &pds.bearer(app_jwt),
        "com.atproto.server.deactivateAccount",
        &json!({}),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    let (status, error, _) = refused_procedure(
        &pds.bearer(app_jwt),
        "com.atproto.server.requestAccountDelete",
        &json!({}),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    let (status, error, _) = refused_query(
        &pds.bearer(app_jwt),
        "com.atproto.server.getAccountInviteCodes",
        &(),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));

    // Standard methods work.
    let listed = query(
        &pds.bearer(app_jwt),
        "com.atproto.server.listAppPasswords",
        &(),
    )
    .await;
    assert_eq!(listed["passwords"].as_array().unwrap().len(), 1);
    pds.stop().await;
}

#[tokio::test]
async fn revoking_an_app_password_ends_its_sessions() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let phone = create_app_password(&pds, &alice.access_jwt, "phone", false).await;
    let tablet = create_app_password(&pds, &alice.access_jwt, "tablet", false).await;
    let phone_session = pds
        .login(&alice.handle, phone["password"].as_str().unwrap())
        .await
        .unwrap();
    let tablet_session = pds
        .login(&alice.handle, tablet["password"].as_str().unwrap())
        .await
        .unwrap();

    let revoked = procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.revokeAppPassword",
        &json!({ "name": "phone" }),
    )
    .await;
    assert_eq!(revoked, Value::Null);

    // The phone's refresh token is refused, the tablet's still works.
    let (status, error, _) = refused_procedure(
        &pds.bearer(phone_session["refreshJwt"].as_str().unwrap()),
        "com.atproto.server.refreshSession",
        &(),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let refreshed: Value = pds
        .bearer(tablet_session["refreshJwt"].as_str().unwrap())
        .procedure("com.atproto.server.refreshSession", &(), &())
        .await
        .unwrap();
    assert_eq!(refreshed["did"], alice.did.as_str());

    // The password no longer logs in; it is gone from the list.
    let (status, error, message) = refusal(
        pds.login(&alice.handle, phone["password"].as_str().unwrap())
            .await,
    );
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (
            401,
            "AuthenticationRequired",
            "Invalid identifier or password"
        )
    );
    let listed = query(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.listAppPasswords",
        &(),
    )
    .await;
    let names: Vec<&str> = listed["passwords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tablet"]);

    // Revoking an unknown name succeeds, as in the reference.
    procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.revokeAppPassword",
        &json!({ "name": "never-made" }),
    )
    .await;
    pds.stop().await;
}

#[tokio::test]
async fn app_password_refusals() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    // No credentials.
    let (status, error, _) =
        refused_query(&pds.client(), "com.atproto.server.listAppPasswords", &()).await;
    assert_eq!((status, error.as_str()), (401, "AuthMissing"));
    // A garbage token.
    let (status, error, _) = refused_query(
        &pds.bearer("not-a-jwt"),
        "com.atproto.server.listAppPasswords",
        &(),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    // A duplicate name.
    create_app_password(&pds, &alice.access_jwt, "phone", false).await;
    let (status, error, _) = refused_procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.createAppPassword",
        &json!({ "name": "phone" }),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    // A missing name fails the lexicon check.
    let (status, error, _) = refused_procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.createAppPassword",
        &json!({}),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    pds.stop().await;
}
