//! The handle rules on the methods that give handles: reserved names,
//! disallowed TLDs and the operator's banned words, with the reference
//! PDS's error names and messages; the operator may give any valid handle.
#![allow(clippy::unwrap_used)]

mod common;

use atp_pds::handle_policy::HandlePolicy;
use common::{refusal, Pds, PASSWORD};
use serde_json::{json, Value};

async fn create(pds: &Pds, handle: &str) -> Result<Value, atp_xrpc::Error> {
    let name = handle.split('.').next().unwrap();
    pds.client()
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": handle, "email": format!("{name}@example.com"), "password": PASSWORD }),
        )
        .await
}

async fn update_handle(pds: &Pds, jwt: &str, handle: &str) -> Result<Value, atp_xrpc::Error> {
    pds.bearer(jwt)
        .procedure::<_, _, Value>(
            "com.atproto.identity.updateHandle",
            &(),
            &json!({ "handle": handle }),
        )
        .await
}

fn with_banned_words(pds_state: &mut atp_pds::http::PdsState) {
    pds_state.handle_policy = HandlePolicy::default().with_banned_words(["badword"]);
}

#[tokio::test]
async fn create_account_refuses_reserved_names_bad_tlds_and_banned_words() {
    let pds = Pds::start_with(with_banned_words).await;
    let cases: &[(&str, &str, &str)] = &[
        ("admin.test", "HandleNotAvailable", "Reserved handle"),
        ("Support.test", "HandleNotAvailable", "Reserved handle"),
        ("www.test", "HandleNotAvailable", "Reserved handle"),
        ("pds.test", "HandleNotAvailable", "Reserved handle"),
        (
            "alice.local",
            "InvalidHandle",
            "Handle TLD is invalid or disallowed",
        ),
        (
            "alice.onion",
            "InvalidHandle",
            "Handle TLD is invalid or disallowed",
        ),
        (
            "my-badword.test",
            "InvalidHandle",
            "Inappropriate language in handle",
        ),
        (
            "xbadwordx.test",
            "InvalidHandle",
            "Inappropriate language in handle",
        ),
        (
            "alice.example.com",
            "UnsupportedDomain",
            "Not a supported handle domain",
        ),
    ];
    for (handle, name, message) in cases {
        let (status, error, text) = refusal(create(&pds, handle).await);
        assert_eq!(
            (status, error.as_str(), text.as_str()),
            (400, *name, *message),
            "{handle}"
        );
    }
    // Names that only contain a reserved word, and the handles the
    // end-to-end suite and the official client's flows use, are fine.
    for handle in ["administration.test", "alice.test", "bobx3k2q9.test"] {
        let created = create(&pds, handle).await.unwrap();
        assert_eq!(created["handle"], *handle);
    }
    pds.stop().await;
}

#[tokio::test]
async fn update_handle_applies_the_same_rules() {
    let pds = Pds::start_with(with_banned_words).await;
    let alice = pds.create("alice").await;
    let cases: &[(&str, &str, &str)] = &[
        ("support.test", "HandleNotAvailable", "Reserved handle"),
        ("xrpc.test", "HandleNotAvailable", "Reserved handle"),
        (
            "bad-word.test",
            "InvalidHandle",
            "Inappropriate language in handle",
        ),
        (
            "alice.internal",
            "InvalidHandle",
            "Handle TLD is invalid or disallowed",
        ),
    ];
    for (handle, name, message) in cases {
        let (status, error, text) = refusal(update_handle(&pds, &alice.access_jwt, handle).await);
        assert_eq!(
            (status, error.as_str(), text.as_str()),
            (400, *name, *message),
            "{handle}"
        );
    }
    update_handle(&pds, &alice.access_jwt, "alice2.test")
        .await
        .unwrap();
    let info: Value = pds
        .admin()
        .query(
            "com.atproto.admin.getAccountInfo",
            &json!({ "did": alice.did }),
        )
        .await
        .unwrap();
    assert_eq!(info["handle"], "alice2.test");
    pds.stop().await;
}

#[tokio::test]
async fn the_operator_may_give_reserved_names_and_banned_words() {
    let pds = Pds::start_with(with_banned_words).await;
    let alice = pds.create("alice").await;
    for handle in ["support.test", "badword.test"] {
        pds.admin()
            .procedure::<_, _, Value>(
                "com.atproto.admin.updateAccountHandle",
                &(),
                &json!({ "did": alice.did, "handle": handle }),
            )
            .await
            .unwrap();
        let info: Value = pds
            .admin()
            .query(
                "com.atproto.admin.getAccountInfo",
                &json!({ "did": alice.did }),
            )
            .await
            .unwrap();
        assert_eq!(info["handle"], handle);
    }
    // The syntax, TLD and length rules still hold.
    for (handle, message) in [
        ("support.local", "Handle TLD is invalid or disallowed"),
        ("ab.test", "Handle too short"),
    ] {
        let refused = pds
            .admin()
            .procedure::<_, _, Value>(
                "com.atproto.admin.updateAccountHandle",
                &(),
                &json!({ "did": alice.did, "handle": handle }),
            )
            .await;
        let (status, error, text) = refusal(refused);
        assert_eq!(
            (status, error.as_str(), text.as_str()),
            (400, "InvalidHandle", message)
        );
    }
    pds.stop().await;
}

#[tokio::test]
async fn without_banned_words_nothing_is_banned() {
    let pds = Pds::start().await;
    let created = create(&pds, "badword.test").await.unwrap();
    assert_eq!(created["handle"], "badword.test");
    pds.stop().await;
}
