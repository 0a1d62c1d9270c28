//! The com.atproto.admin methods over HTTP: admin credentials, account
//! views and updates, takedowns, deletion.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    procedure, query, refusal, refused_procedure, refused_query, repo_ref, Pds, ADMIN_PASSWORD,
    PASSWORD,
};
use serde_json::{json, Value};

#[tokio::test]
async fn admin_methods_refuse_without_the_admin_password() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let clients = [
        pds.client(),
        pds.basic("admin", "wrong"),
        pds.basic("root", ADMIN_PASSWORD),
        // A user's session is not an admin credential.
        pds.bearer(&alice.access_jwt),
    ];
    for client in clients {
        let (status, _, _) = refused_query(
            &client,
            "com.atproto.admin.getAccountInfo",
            &json!({ "did": alice.did }),
        )
        .await;
        assert_eq!(status, 401);
        let (status, error, message) = refused_procedure(
            &client,
            "com.atproto.admin.deleteAccount",
            &json!({ "did": alice.did }),
        )
        .await;
        assert_eq!(
            (status, error.as_str(), message.as_str()),
            (401, "AuthenticationRequired", "Authentication Required")
        );
        let (status, _, _) = refused_procedure(
            &client,
            "com.atproto.server.createInviteCode",
            &json!({ "useCount": 1 }),
        )
        .await;
        assert_eq!(status, 401);
    }
    // Nothing happened.
    assert!(pds.login(&alice.handle, PASSWORD).await.is_ok());
    pds.stop().await;
}

#[tokio::test]
async fn admin_without_a_configured_password_is_refused() {
    let pds = Pds::start_with(|state| state.admin_password = None).await;
    let alice = pds.create("alice").await;
    let (status, _, _) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getAccountInfo",
        &json!({ "did": alice.did }),
    )
    .await;
    assert_eq!(status, 401);
    pds.stop().await;
}

#[tokio::test]
async fn account_info_and_updates() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;

    let info = pds.account_info(&alice.did).await;
    assert_eq!(info["did"], alice.did.as_str());
    assert_eq!(info["handle"], "alice.test");
    assert_eq!(info["email"], "alice@example.com");
    assert!(info["indexedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(info["invites"], json!([]));
    assert_eq!(info["invitesDisabled"], false);
    assert!(info.get("deactivatedAt").is_none());
    assert!(info.get("emailConfirmedAt").is_none());

    let (status, error, message) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getAccountInfo",
        &json!({ "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }),
    )
    .await;
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "NotFound", "Account not found")
    );

    let infos = query(
        &pds.admin(),
        "com.atproto.admin.getAccountInfos",
        &json!({ "dids": [bob.did, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", alice.did] }),
    )
    .await;
    let dids: Vec<&str> = infos["infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|info| info["did"].as_str().unwrap())
        .collect();
    assert_eq!(dids, [bob.did.as_str(), alice.did.as_str()]);

    // Email: by handle; taken addresses refused.
    procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountEmail",
        &json!({ "account": "alice.test", "email": "Alice@New.Example" }),
    )
    .await;
    assert!(pds.login("alice@new.example", PASSWORD).await.is_ok());
    let (status, _, _) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountEmail",
        &json!({ "account": alice.did, "email": "bob@example.com" }),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, message) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountEmail",
        &json!({ "account": "nobody.test", "email": "x@example.com" }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "Account does not exist: nobody.test")
    );

    // Password: the old one stops working and sessions are revoked.
    procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountPassword",
        &json!({ "did": alice.did, "password": "new-password" }),
    )
    .await;
    assert!(pds.login(&alice.handle, "new-password").await.is_ok());
    let (status, _, _) = refusal(pds.login(&alice.handle, PASSWORD).await);
    assert_eq!(status, 401);
    let (status, error, _) = pds.refused_refresh(&alice.refresh_jwt).await;
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let (status, _, message) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountPassword",
        &json!({ "did": alice.did, "password": "x".repeat(257) }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "Invalid password length.")
    );
    pds.stop().await;
}

#[tokio::test]
async fn admin_handle_change_updates_the_did_document() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;

    procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountHandle",
        &json!({ "did": alice.did, "handle": "Alicia.test" }),
    )
    .await;
    let data = pds.directory().data(&alice.did).await.unwrap();
    assert_eq!(data["alsoKnownAs"], json!(["at://alicia.test"]));
    let log = pds.directory().log(&alice.did).await.unwrap();
    assert_eq!(log.len(), 2);
    let info = pds.account_info(&alice.did).await;
    assert_eq!(info["handle"], "alicia.test");
    assert!(pds.login("alicia.test", PASSWORD).await.is_ok());
    // The old handle is free.
    procedure(
        &pds.client(),
        "com.atproto.server.createAccount",
        &json!({ "handle": "alice.test", "email": "other@example.com", "password": PASSWORD }),
    )
    .await;

    // Taken, invalid and too-short handles are refused, the document stays.
    let refusals = [
        ("bob.test", 400, "HandleNotAvailable"),
        ("not a handle", 400, "InvalidRequest"),
        ("ab.test", 400, "InvalidHandle"),
        ("alice.example", 400, "InvalidHandle"),
    ];
    for (handle, want_status, want_error) in refusals {
        let (status, error, _) = refused_procedure(
            &pds.admin(),
            "com.atproto.admin.updateAccountHandle",
            &json!({ "did": alice.did, "handle": handle }),
        )
        .await;
        assert_eq!(
            (status, error.as_str()),
            (want_status, want_error),
            "{handle}"
        );
    }
    assert_eq!(pds.directory().log(&alice.did).await.unwrap().len(), 2);
    // A handle outside the service's domains must resolve to the DID.
    let (status, _, message) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountHandle",
        &json!({ "did": alice.did, "handle": "nobody-resolves-this-h1.com" }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "External handle did not resolve to DID")
    );
    let (status, _, message) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountHandle",
        &json!({ "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "handle": "zed.test" }),
    )
    .await;
    assert_eq!((status, message.as_str()), (400, "Account not found"));
    let _ = bob;
    pds.stop().await;
}

/// The `#account` event bodies about `did` in the log.
fn account_events(sequencer: &atp_pds::sequencer::Sequencer, did: &str) -> Vec<Value> {
    sequencer
        .events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter(|event| event.did == did && event.kind.frame_type() == "#account")
        .map(|event| {
            let body = atp_crypto::dagcbor::decode_ipld(event.frame.body_bytes()).unwrap();
            atp_crypto::data_model::ipld_to_json(&body).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn takedown_blocks_login_and_revokes_sessions() {
    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let sequencer = state.sequencer;
    let alice = pds.create("alice").await;
    let app = pds.create_app_password(&alice, "phone").await;
    let subject = repo_ref(&alice.did);

    let answer = pds
        .update_subject_status(
            &json!({ "subject": subject, "takedown": { "applied": true, "ref": "case-1" } }),
        )
        .await;
    assert_eq!(answer["subject"], subject);
    assert_eq!(
        answer["takedown"],
        json!({ "applied": true, "ref": "case-1" })
    );
    let events = account_events(&sequencer, &alice.did);
    let last = events.last().unwrap();
    assert_eq!(last["active"], false);
    assert_eq!(last["status"], "takendown");

    let status = pds.subject_status(&json!({ "did": alice.did })).await;
    assert_eq!(
        status,
        json!({
            "subject": subject,
            "takedown": { "applied": true, "ref": "case-1" },
            "deactivated": { "applied": false },
        })
    );

    // Login with the main password: the reference's takedown answer; with
    // the app password: a plain wrong-password answer.
    let (status, error, message) = refusal(pds.login(&alice.handle, PASSWORD).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (401, "AccountTakedown", "Account has been taken down")
    );
    let (status, error, _) = refusal(
        pds.login(&alice.handle, app["password"].as_str().unwrap())
            .await,
    );
    assert_eq!((status, error.as_str()), (401, "AuthenticationRequired"));
    // Sessions cannot be refreshed, and takedown-checked methods refuse.
    let (status, error, _) = pds.refused_refresh(&alice.refresh_jwt).await;
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let (status, error, message) = refused_procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.createAppPassword",
        &json!({ "name": "another" }),
    )
    .await;
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (401, "AccountTakedown", "Account has been taken down")
    );

    // Lifting the takedown lets the account in again.
    let answer = pds
        .update_subject_status(&json!({ "subject": subject, "takedown": { "applied": false } }))
        .await;
    assert_eq!(answer["takedown"], json!({ "applied": false }));
    let events = account_events(&sequencer, &alice.did);
    assert_eq!(events.last().unwrap()["active"], true);
    let session = pds.login(&alice.handle, PASSWORD).await.unwrap();
    assert_eq!(session["active"], true);
    let status = pds.subject_status(&json!({ "did": alice.did })).await;
    assert_eq!(status["takedown"], json!({ "applied": false }));
    pds.stop().await;
}

#[tokio::test]
async fn subject_status_deactivation_and_refusals() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let subject = repo_ref(&alice.did);
    pds.update_subject_status(&json!({ "subject": subject, "deactivated": { "applied": true } }))
        .await;
    let status = pds.subject_status(&json!({ "did": alice.did })).await;
    assert_eq!(status["deactivated"], json!({ "applied": true }));
    let info = pds.account_info(&alice.did).await;
    assert!(info["deactivatedAt"].is_string());

    let (status, _, message) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.updateSubjectStatus",
        &json!({
            "subject": subject,
            "takedown": { "applied": true },
            "deactivated": { "applied": false },
        }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "Cannot activate and takedown an account at the same time"
        )
    );
    let (status, error, message) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getSubjectStatus",
        &json!({ "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }),
    )
    .await;
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "NotFound", "Subject not found")
    );
    let (status, _, message) =
        refused_query(&pds.admin(), "com.atproto.admin.getSubjectStatus", &()).await;
    assert_eq!((status, message.as_str()), (400, "No provided subject"));
    let (status, _, message) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getSubjectStatus",
        &json!({ "blob": "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "Must provide a did to request blob state")
    );
    pds.stop().await;
}

#[tokio::test]
async fn admin_deletes_an_account() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let done = procedure(
        &pds.admin(),
        "com.atproto.admin.deleteAccount",
        &json!({ "did": alice.did }),
    )
    .await;
    assert_eq!(done, Value::Null);
    let (status, error, _) = refusal(pds.login(&alice.handle, PASSWORD).await);
    assert_eq!((status, error.as_str()), (401, "AuthenticationRequired"));
    let (status, error, _) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getAccountInfo",
        &json!({ "did": alice.did }),
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "NotFound"));
    assert!(pds.login(&bob.handle, PASSWORD).await.is_ok());
    pds.stop().await;
}

#[tokio::test]
async fn record_and_blob_takedowns() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let uploaded = pds
        .bearer(&alice.access_jwt)
        .procedure_bytes(
            "com.atproto.repo.uploadBlob",
            &(),
            "image/png",
            bytes::Bytes::copy_from_slice(png),
        )
        .await
        .unwrap();
    let blob: Value = serde_json::from_slice(&uploaded.bytes).unwrap();
    let blob = blob["blob"].clone();
    let cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
    let created = procedure(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.repo.createRecord",
        &json!({
            "repo": alice.did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "hello",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "embed": {
                    "$type": "app.bsky.embed.images",
                    "images": [{ "alt": "", "image": blob }],
                },
            },
        }),
    )
    .await;
    let uri = created["uri"].as_str().unwrap().to_owned();
    let record_cid = created["cid"].as_str().unwrap().to_owned();

    // The account's own view of its store counts them.
    let status = query(
        &pds.bearer(&alice.access_jwt),
        "com.atproto.server.checkAccountStatus",
        &(),
    )
    .await;
    assert_eq!(status["indexedRecords"], 1);
    assert_eq!(status["expectedBlobs"], 1);
    assert_eq!(status["importedBlobs"], 1);

    // Not taken down yet.
    let shown = pds.subject_status(&json!({ "uri": uri })).await;
    assert_eq!(shown["takedown"], json!({ "applied": false }));

    let record_subject =
        json!({ "$type": "com.atproto.repo.strongRef", "uri": uri, "cid": record_cid });
    pds.update_subject_status(
        &json!({ "subject": record_subject, "takedown": { "applied": true, "ref": "r1" } }),
    )
    .await;
    let shown = pds.subject_status(&json!({ "uri": uri })).await;
    assert_eq!(
        shown,
        json!({
            "subject": record_subject,
            "takedown": { "applied": true, "ref": "r1" },
        })
    );
    let rkey = uri.rsplit('/').next().unwrap();
    let (status, _, _) = refused_query(
        &pds.client(),
        "com.atproto.repo.getRecord",
        &json!({ "repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey }),
    )
    .await;
    assert_eq!(status, 400);

    let blob_subject =
        json!({ "$type": "com.atproto.admin.defs#repoBlobRef", "did": alice.did, "cid": cid });
    pds.update_subject_status(&json!({ "subject": blob_subject, "takedown": { "applied": true } }))
        .await;
    let shown = pds
        .subject_status(&json!({ "did": alice.did, "blob": cid }))
        .await;
    assert_eq!(shown["subject"], blob_subject);
    assert_eq!(shown["takedown"]["applied"], true);
    // The reference's default reference is the time of the takedown.
    assert!(shown["takedown"]["ref"].as_str().unwrap().ends_with('Z'));
    let (status, _, _) = refusal(
        pds.client()
            .query_bytes(
                "com.atproto.sync.getBlob",
                &json!({ "did": alice.did, "cid": cid }),
            )
            .await,
    );
    assert!(status == 400 || status == 404, "{status}");

    // Lifting it serves the blob again.
    pds.update_subject_status(
        &json!({ "subject": blob_subject, "takedown": { "applied": false } }),
    )
    .await;
    let served = pds
        .client()
        .query_bytes(
            "com.atproto.sync.getBlob",
            &json!({ "did": alice.did, "cid": cid }),
        )
        .await
        .unwrap();
    assert_eq!(&served.bytes[..], &png[..]);
    pds.stop().await;
}

#[tokio::test]
async fn operator_email_change_unconfirms_and_drops_tokens() {
    use atp_pds::email_token::EmailTokenPurpose;
    use std::time::Duration;

    let (pds, state) = Pds::start_with_state(|_| {}).await;
    let storage = state.storage;
    let alice = pds.create("alice").await;
    let accounts = storage.accounts();
    accounts.confirm_email(&alice.did).unwrap();
    let token = accounts
        .issue_email_token(&alice.did, EmailTokenPurpose::ConfirmEmail)
        .unwrap();
    let info = pds.account_info(&alice.did).await;
    assert!(info["emailConfirmedAt"].is_string());

    // Same address: still unconfirmed afterwards, as the reference does.
    procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountEmail",
        &json!({ "account": alice.did, "email": "alice@example.com" }),
    )
    .await;
    let info = pds.account_info(&alice.did).await;
    assert!(info.get("emailConfirmedAt").is_none());
    assert!(matches!(
        accounts.consume_email_token(
            &alice.did,
            EmailTokenPurpose::ConfirmEmail,
            &token,
            Duration::from_secs(900)
        ),
        Err(atp_pds::Error::InvalidToken)
    ));

    // A password change by the operator drops a pending reset token.
    let reset = accounts
        .issue_email_token(&alice.did, EmailTokenPurpose::ResetPassword)
        .unwrap();
    procedure(
        &pds.admin(),
        "com.atproto.admin.updateAccountPassword",
        &json!({ "did": alice.did, "password": "another-one" }),
    )
    .await;
    assert!(matches!(
        accounts.consume_email_token(
            &alice.did,
            EmailTokenPurpose::ResetPassword,
            &reset,
            Duration::from_secs(900)
        ),
        Err(atp_pds::Error::InvalidToken)
    ));
    pds.stop().await;
}
