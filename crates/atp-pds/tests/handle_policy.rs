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

/// The operator's `updateAccountHandle` of `did` to `handle`.
async fn admin_update_handle(pds: &Pds, did: &str, handle: &str) -> Result<Value, atp_xrpc::Error> {
    pds.admin()
        .procedure::<_, _, Value>(
            "com.atproto.admin.updateAccountHandle",
            &(),
            &json!({ "did": did, "handle": handle }),
        )
        .await
}

/// The reference's error name and message for a reserved handle.
const RESERVED: (&str, &str) = ("HandleNotAvailable", "Reserved handle");
/// The reference's error name and message for a disallowed TLD.
const BAD_TLD: (&str, &str) = ("InvalidHandle", "Handle TLD is invalid or disallowed");
/// The reference's error name and message for a banned word.
const BANNED: (&str, &str) = ("InvalidHandle", "Inappropriate language in handle");

fn with_banned_words(pds_state: &mut atp_pds::http::PdsState) {
    pds_state.handle_policy = HandlePolicy::default().with_banned_words(["badword"]);
}

#[tokio::test]
async fn create_account_refuses_reserved_names_bad_tlds_and_banned_words() {
    let pds = Pds::start_with(with_banned_words).await;
    let cases: &[(&str, (&str, &str))] = &[
        ("admin.test", RESERVED),
        ("Support.test", RESERVED),
        ("www.test", RESERVED),
        ("pds.test", RESERVED),
        ("alice.local", BAD_TLD),
        ("alice.onion", BAD_TLD),
        ("my-badword.test", BANNED),
        ("xbadwordx.test", BANNED),
        (
            "alice.example.com",
            ("UnsupportedDomain", "Not a supported handle domain"),
        ),
    ];
    for (handle, (name, message)) in cases {
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
    let cases: &[(&str, (&str, &str))] = &[
        ("support.test", RESERVED),
        ("xrpc.test", RESERVED),
        ("bad-word.test", BANNED),
        ("alice.internal", BAD_TLD),
    ];
    for (handle, (name, message)) in cases {
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
    let info = pds.account_info(&alice.did).await;
    assert_eq!(info["handle"], "alice2.test");
    pds.stop().await;
}

#[tokio::test]
async fn the_operator_may_give_reserved_names_and_banned_words() {
    let pds = Pds::start_with(with_banned_words).await;
    let alice = pds.create("alice").await;
    for handle in ["support.test", "badword.test"] {
        admin_update_handle(&pds, &alice.did, handle).await.unwrap();
        let info = pds.account_info(&alice.did).await;
        assert_eq!(info["handle"], handle);
    }
    // The syntax, TLD and length rules still hold.
    for (handle, message) in [
        ("support.local", "Handle TLD is invalid or disallowed"),
        ("ab.test", "Handle too short"),
    ] {
        let (status, error, text) = refusal(admin_update_handle(&pds, &alice.did, handle).await);
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
