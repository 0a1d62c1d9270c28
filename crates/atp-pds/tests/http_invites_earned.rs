//! `getAccountInviteCodes` with `createAvailable`: the codes an account
//! earns over time under the service's invite schedule, as the reference
//! PDS's `PDS_INVITE_INTERVAL` / `PDS_INVITE_EPOCH` logic.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use atp_pds::invite::{InviteSchedule, MAX_OPEN_EARNED_CODES};
use common::{Pds, PASSWORD};
use serde_json::{json, Value};

/// A PDS that requires invite codes and has `schedule`.
async fn requiring_invites(schedule: Option<InviteSchedule>) -> Pds {
    Pds::start_configured(
        |config| config.invite_required = true,
        |state| state.invite_schedule = schedule,
    )
    .await
}

/// Creates `<name>.test` with a code from the operator; returns its access
/// token.
async fn create_with_code(pds: &Pds, name: &str, code: Option<String>) -> String {
    let code = match code {
        Some(code) => code,
        None => {
            let made: Value = pds
                .admin()
                .procedure(
                    "com.atproto.server.createInviteCode",
                    &(),
                    &json!({ "useCount": 1 }),
                )
                .await
                .unwrap();
            made["code"].as_str().unwrap().to_owned()
        }
    };
    let created: Value = pds
        .client()
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({
                "handle": format!("{name}.test"),
                "email": format!("{name}@example.com"),
                "password": PASSWORD,
                "inviteCode": code,
            }),
        )
        .await
        .unwrap();
    created["accessJwt"].as_str().unwrap().to_owned()
}

async fn codes(pds: &Pds, jwt: &str, params: Value) -> Vec<Value> {
    let answer: Value = pds
        .bearer(jwt)
        .query("com.atproto.server.getAccountInviteCodes", &params)
        .await
        .unwrap();
    answer["codes"].as_array().unwrap().clone()
}

#[tokio::test]
async fn accounts_earn_codes_per_interval_five_open_at_most() {
    // One code per millisecond of account age: any account is owed more
    // than the five open codes it may hold.
    let schedule = InviteSchedule::every(Duration::from_millis(1));
    let pds = requiring_invites(Some(schedule)).await;
    let alice = create_with_code(&pds, "alice", None).await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Not asked for: nothing created.
    assert!(codes(&pds, &alice, json!({ "createAvailable": false }))
        .await
        .is_empty());
    let first = codes(&pds, &alice, json!({})).await;
    assert_eq!(first.len() as i64, MAX_OPEN_EARNED_CODES);
    for code in &first {
        assert_eq!(code["available"], 1);
        assert_eq!(code["disabled"], false);
        assert_eq!(code["uses"], json!([]));
        let text = code["code"].as_str().unwrap();
        assert!(text.starts_with("localhost-"), "{text}");
    }
    let did = first[0]["forAccount"].as_str().unwrap().to_owned();
    assert!(first.iter().all(|code| code["createdBy"] == did.as_str()));
    // Five open already: the same five.
    assert_eq!(codes(&pds, &alice, json!({})).await, first);

    // One used: one more is earned; the used one is shown unless
    // includeUsed is false.
    let used = first[0]["code"].as_str().unwrap().to_owned();
    create_with_code(&pds, "bob", Some(used.clone())).await;
    let after = codes(&pds, &alice, json!({})).await;
    assert_eq!(after.len() as i64, MAX_OPEN_EARNED_CODES + 1);
    let unused = codes(&pds, &alice, json!({ "includeUsed": false })).await;
    assert_eq!(unused.len() as i64, MAX_OPEN_EARNED_CODES);
    assert!(unused.iter().all(|code| code["code"] != used.as_str()));
    pds.stop().await;
}

#[tokio::test]
async fn codes_of_an_account_with_invites_disabled_are_created_disabled() {
    let schedule = InviteSchedule::every(Duration::from_millis(1));
    let pds = requiring_invites(Some(schedule)).await;
    let alice = create_with_code(&pds, "alice", None).await;
    let session: Value = pds
        .bearer(&alice)
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap();
    pds.admin()
        .procedure::<_, _, Value>(
            "com.atproto.admin.disableAccountInvites",
            &(),
            &json!({ "account": session["did"] }),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // Created (for the count) but disabled, so not shown.
    assert!(codes(&pds, &alice, json!({})).await.is_empty());
    let info: Value = pds
        .admin()
        .query(
            "com.atproto.admin.getAccountInfo",
            &json!({ "did": session["did"] }),
        )
        .await
        .unwrap();
    let held = info["invites"].as_array().unwrap();
    assert!(!held.is_empty());
    assert!(held.iter().all(|code| code["disabled"] == true));
    pds.stop().await;
}

#[tokio::test]
async fn without_a_schedule_or_without_required_invites_none_are_earned() {
    let pds = requiring_invites(None).await;
    let alice = create_with_code(&pds, "alice", None).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(codes(&pds, &alice, json!({})).await.is_empty());
    pds.stop().await;

    // A schedule, but invites are not required (the reference creates
    // none then either).
    let schedule = InviteSchedule::every(Duration::from_millis(1));
    let pds = Pds::start_with(|state| state.invite_schedule = Some(schedule)).await;
    let alice = pds.create("alice").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(codes(&pds, &alice.access_jwt, json!({})).await.is_empty());
    pds.stop().await;
}
