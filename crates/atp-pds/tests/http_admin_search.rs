//! `com.atproto.admin.searchAccounts` and `com.atproto.admin.sendEmail`
//! over HTTP, with the reference PDS's answers.
#![allow(clippy::unwrap_used)]

mod common;

use atp_pds::mailer::Mail;
use common::{refusal, Pds, PASSWORD};
use serde_json::{json, Value};

async fn search(pds: &Pds, params: Value) -> Value {
    pds.admin()
        .query("com.atproto.admin.searchAccounts", &params)
        .await
        .unwrap()
}

fn dids(page: &Value) -> Vec<String> {
    page["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| account["did"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_accounts_by_email_in_did_order() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let carol = pds.create("carol").await;
    let dave: Value = pds
        .client()
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": "dave.test", "email": "Dave_X@Other.org", "password": PASSWORD }),
        )
        .await
        .unwrap();
    let dave_did = dave["did"].as_str().unwrap().to_owned();
    // A deactivated account is found too.
    pds.bearer(&bob.access_jwt)
        .procedure::<_, _, Value>("com.atproto.server.deactivateAccount", &(), &json!({}))
        .await
        .unwrap();

    let mut all = vec![
        alice.did.clone(),
        bob.did.clone(),
        carol.did.clone(),
        dave_did.clone(),
    ];
    all.sort();
    let page = search(&pds, json!({})).await;
    assert_eq!(dids(&page), all);
    assert!(page.get("cursor").is_none());

    let page = search(&pds, json!({ "email": "alice@example.com" })).await;
    let account = &page["accounts"][0];
    assert_eq!(dids(&page), std::slice::from_ref(&alice.did));
    assert_eq!(account["handle"], "alice.test");
    assert_eq!(account["email"], "alice@example.com");
    assert!(account["indexedAt"].is_string());
    assert!(page.get("cursor").is_none());

    let mut at_example = vec![alice.did.clone(), bob.did.clone(), carol.did.clone()];
    at_example.sort();
    assert_eq!(
        dids(&search(&pds, json!({ "email": "example.com" })).await),
        at_example
    );
    assert_eq!(
        dids(&search(&pds, json!({ "email": "EXAMPLE" })).await),
        at_example
    );
    let page = search(&pds, json!({ "email": "bob@" })).await;
    assert!(page["accounts"][0]["deactivatedAt"].is_string());

    // The text is taken literally: `_` and `%` are no wildcards.
    assert_eq!(
        dids(&search(&pds, json!({ "email": "dave_x" })).await),
        [dave_did]
    );
    assert!(dids(&search(&pds, json!({ "email": "@_xample" })).await).is_empty());
    assert!(dids(&search(&pds, json!({ "email": "%" })).await).is_empty());
    let none = search(&pds, json!({ "email": "nobody@nowhere.example" })).await;
    assert_eq!(none, json!({ "accounts": [] }));
    pds.stop().await;
}

#[tokio::test]
async fn search_accounts_pages_with_a_cursor() {
    let pds = Pds::start().await;
    let mut all = Vec::new();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        all.push(pds.create(name).await.did);
    }
    all.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({ "limit": 2 });
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let page = search(&pds, params).await;
        let got = dids(&page);
        pages += 1;
        // A full page names its last DID as the cursor, as the reference.
        match page.get("cursor").and_then(Value::as_str) {
            Some(next) => {
                assert_eq!(got.len(), 2);
                assert_eq!(Some(next), got.last().map(String::as_str));
                cursor = Some(next.to_owned());
                seen.extend(got);
            }
            None => {
                assert!(got.len() < 2);
                seen.extend(got);
                break;
            }
        }
    }
    assert_eq!(seen, all);
    assert_eq!(pages, 3);

    // The lexicon's bounds.
    let (status, error, _) = refusal(
        pds.admin()
            .query::<_, Value>("com.atproto.admin.searchAccounts", &json!({ "limit": 0 }))
            .await,
    );
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    pds.stop().await;
}

#[tokio::test]
async fn admin_mail_methods_need_the_admin_password() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    for client in [pds.client(), pds.bearer(&alice.access_jwt)] {
        let (status, _, _) = refusal(
            client
                .query::<_, Value>("com.atproto.admin.searchAccounts", &json!({}))
                .await,
        );
        assert_eq!(status, 401);
        let (status, _, _) = refusal(
            client
                .procedure::<_, _, Value>(
                    "com.atproto.admin.sendEmail",
                    &(),
                    &json!({ "recipientDid": alice.did, "content": "hi", "senderDid": alice.did }),
                )
                .await,
        );
        assert_eq!(status, 401);
    }
    pds.stop().await;
}

#[tokio::test]
async fn send_email_goes_through_the_mailer() {
    let (pds, outbox) = Pds::start_with_outbox().await;
    let alice = pds.create("alice").await;
    let sender = "did:plc:moderator0000000000000000";

    let sent: Value = pds
        .admin()
        .procedure(
            "com.atproto.admin.sendEmail",
            &(),
            &json!({
                "recipientDid": alice.did,
                "content": "Your post was removed.",
                "subject": "About your post",
                "senderDid": sender,
                "comment": "not in the mail",
            }),
        )
        .await
        .unwrap();
    assert_eq!(sent, json!({ "sent": true }));
    let sent: Value = pds
        .admin()
        .procedure(
            "com.atproto.admin.sendEmail",
            &(),
            &json!({ "recipientDid": alice.did, "content": "Hello", "senderDid": sender }),
        )
        .await
        .unwrap();
    assert_eq!(sent, json!({ "sent": true }));
    let mails = outbox.0.lock().unwrap().clone();
    assert_eq!(
        mails,
        [
            Mail {
                to: "alice@example.com".to_owned(),
                subject: "About your post".to_owned(),
                body: "Your post was removed.".to_owned(),
            },
            Mail {
                to: "alice@example.com".to_owned(),
                subject: "Message via your PDS".to_owned(),
                body: "Hello".to_owned(),
            },
        ]
    );

    let (status, error, message) = refusal(
        pds.admin()
            .procedure::<_, _, Value>(
                "com.atproto.admin.sendEmail",
                &(),
                &json!({ "recipientDid": "did:plc:nobody00000000000000000000", "content": "x", "senderDid": sender }),
            )
            .await,
    );
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidRequest", "Recipient not found")
    );
    // `senderDid` is required by the lexicon.
    let (status, _, _) = refusal(
        pds.admin()
            .procedure::<_, _, Value>(
                "com.atproto.admin.sendEmail",
                &(),
                &json!({ "recipientDid": alice.did, "content": "x" }),
            )
            .await,
    );
    assert_eq!(status, 400);
    assert_eq!(outbox.0.lock().unwrap().len(), 2);
    pds.stop().await;
}
