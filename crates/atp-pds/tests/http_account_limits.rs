//! Rate limits on the email, password-reset and handle methods, with the
//! reference PDS's budgets: per account for the methods that need a
//! session, per client for the others; off when the state turns limits
//! off.
#![allow(clippy::unwrap_used)]

mod common;

use atp_pds::http::rate_limits::{
    PASSWORD_RESET_REQUESTS_PER_HOUR, TOKEN_EMAILS_PER_HOUR, TOKEN_REDEMPTIONS_PER_5_MINUTES,
    UPDATE_HANDLE_PER_5_MINUTES,
};
use common::{refusal, Pds};
use serde_json::{json, Value};

/// Calls `nsid` `budget` times (none may be rate limited: the bucket
/// starts full), then until it is: the bucket refills continuously, so a
/// slow machine may earn a call back meanwhile, but never as many as it
/// makes.
async fn spend(pds: &Pds, jwt: Option<&str>, nsid: &str, input: Value, budget: u32) {
    for i in 0..budget {
        if let Err(err) = pds.call(jwt, nsid, input.clone()).await {
            let (status, error, _) = refusal::<Value>(Err(err));
            assert_ne!(
                (status, error.as_str()),
                (429, "RateLimitExceeded"),
                "{nsid} call {i}"
            );
        }
    }
    for _ in 0..budget {
        if let Err(err) = pds.call(jwt, nsid, input.clone()).await {
            let (status, error, message) = refusal::<Value>(Err(err));
            if status == 429 {
                assert_eq!(
                    (error.as_str(), message.as_str()),
                    ("RateLimitExceeded", "Rate Limit Exceeded")
                );
                return;
            }
        }
    }
    panic!("{nsid} was not limited after {budget} calls more than its budget");
}

#[tokio::test]
async fn token_emails_are_limited_per_account() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    for nsid in [
        "com.atproto.server.requestEmailConfirmation",
        "com.atproto.server.requestEmailUpdate",
        "com.atproto.server.requestAccountDelete",
    ] {
        spend(
            &pds,
            Some(&alice.access_jwt),
            nsid,
            json!({}),
            TOKEN_EMAILS_PER_HOUR,
        )
        .await;
        // Another account has its own budget.
        pds.call(Some(&bob.access_jwt), nsid, json!({}))
            .await
            .unwrap();
    }
    // Without a session the call is refused for that, not limited.
    let (status, error, _) = refusal(
        pds.call(
            None,
            "com.atproto.server.requestEmailConfirmation",
            json!({}),
        )
        .await,
    );
    assert_eq!((status, error.as_str()), (401, "AuthMissing"));
    pds.stop().await;
}

#[tokio::test]
async fn handle_updates_are_limited_per_account() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    spend(
        &pds,
        Some(&alice.access_jwt),
        "com.atproto.identity.updateHandle",
        json!({ "handle": "alice.test" }),
        UPDATE_HANDLE_PER_5_MINUTES,
    )
    .await;
    pds.call(
        Some(&bob.access_jwt),
        "com.atproto.identity.updateHandle",
        json!({ "handle": "bobby.test" }),
    )
    .await
    .unwrap();
    pds.stop().await;
}

#[tokio::test]
async fn password_reset_requests_are_limited_per_client() {
    let pds = Pds::start().await;
    pds.create("alice").await;
    // Answered or refused, each call counts.
    spend(
        &pds,
        None,
        "com.atproto.server.requestPasswordReset",
        json!({ "email": "alice@example.com" }),
        PASSWORD_RESET_REQUESTS_PER_HOUR,
    )
    .await;
    pds.stop().await;
}

#[tokio::test]
async fn token_redemptions_are_limited_per_client() {
    let pds = Pds::start().await;
    spend(
        &pds,
        None,
        "com.atproto.server.resetPassword",
        json!({ "token": "AAAAA-BBBBB", "password": "new password" }),
        TOKEN_REDEMPTIONS_PER_5_MINUTES,
    )
    .await;
    spend(
        &pds,
        None,
        "com.atproto.server.deleteAccount",
        json!({ "did": "did:plc:nobody00000000000000000000", "password": "wrong", "token": "AAAAA-BBBBB" }),
        TOKEN_REDEMPTIONS_PER_5_MINUTES,
    )
    .await;
    pds.stop().await;
}

#[tokio::test]
async fn no_limits_when_turned_off() {
    let pds = Pds::start_with(|state| state.rate_limits = false).await;
    let alice = pds.create("alice").await;
    for _ in 0..=TOKEN_EMAILS_PER_HOUR {
        pds.call(
            Some(&alice.access_jwt),
            "com.atproto.server.requestEmailConfirmation",
            json!({}),
        )
        .await
        .unwrap();
    }
    for _ in 0..=PASSWORD_RESET_REQUESTS_PER_HOUR {
        pds.call(
            None,
            "com.atproto.server.requestPasswordReset",
            json!({ "email": "alice@example.com" }),
        )
        .await
        .unwrap();
    }
    pds.stop().await;
}
