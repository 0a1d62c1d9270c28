//! Invite codes over HTTP: created by the admin, listed by accounts and by
//! the admin, disabled, and required at account creation only when the
//! service says so.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    procedure, query, refusal, refused_procedure, refused_query, repo_ref, Pds, PASSWORD,
};
use serde_json::{json, Value};

async fn create_code(pds: &Pds, uses: u32, for_account: Option<&str>) -> String {
    let mut input = json!({ "useCount": uses });
    if let Some(account) = for_account {
        input["forAccount"] = json!(account);
    }
    let answer: Value = pds
        .admin()
        .procedure("com.atproto.server.createInviteCode", &(), &input)
        .await
        .unwrap();
    answer["code"].as_str().unwrap().to_owned()
}

async fn create_account(
    pds: &Pds,
    name: &str,
    invite: Option<&str>,
) -> Result<Value, atp_xrpc::Error> {
    let mut input = json!({
        "handle": format!("{name}.test"),
        "email": format!("{name}@example.com"),
        "password": PASSWORD,
    });
    if let Some(code) = invite {
        input["inviteCode"] = json!(code);
    }
    pds.client()
        .procedure("com.atproto.server.createAccount", &(), &input)
        .await
}

/// `<hostname with dashes>-xxxxx-xxxxx` in base32.
fn assert_code_shape(code: &str) {
    let rest = code.strip_prefix("localhost-").unwrap();
    let groups: Vec<&str> = rest.split('-').collect();
    assert_eq!(groups.len(), 2, "{code}");
    for group in groups {
        assert_eq!(group.len(), 5, "{code}");
        assert!(group
            .chars()
            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)));
    }
}

#[tokio::test]
async fn invites_required_by_the_service() {
    let pds = Pds::start_configured(|config| config.invite_required = true, |_| {}).await;

    let (status, error, message) = refusal(create_account(&pds, "alice", None).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (400, "InvalidInviteCode", "No invite code provided")
    );
    let (status, error, message) =
        refusal(create_account(&pds, "alice", Some("localhost-aaaaa-bbbbb")).await);
    assert_eq!(
        (status, error.as_str(), message.as_str()),
        (
            400,
            "InvalidInviteCode",
            "Provided invite code not available"
        )
    );

    let code = create_code(&pds, 2, None).await;
    assert_code_shape(&code);
    let alice = create_account(&pds, "alice", Some(&code)).await.unwrap();
    create_account(&pds, "bob", Some(&code)).await.unwrap();
    // Used up.
    let (status, error, _) = refusal(create_account(&pds, "carol", Some(&code)).await);
    assert_eq!((status, error.as_str()), (400, "InvalidInviteCode"));

    // The admin sees both uses; the account view shows who invited alice.
    let listed = query(&pds.admin(), "com.atproto.admin.getInviteCodes", &()).await;
    let codes = listed["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0]["code"], code.as_str());
    assert_eq!(codes[0]["available"], 2);
    assert_eq!(codes[0]["disabled"], false);
    assert_eq!(codes[0]["forAccount"], "admin");
    assert_eq!(codes[0]["createdBy"], "admin");
    assert_eq!(codes[0]["uses"].as_array().unwrap().len(), 2);
    let info = query(
        &pds.admin(),
        "com.atproto.admin.getAccountInfo",
        &json!({ "did": alice["did"] }),
    )
    .await;
    assert_eq!(info["invitedBy"]["code"], code.as_str());

    // A disabled code cannot be used.
    let spare = create_code(&pds, 5, None).await;
    procedure(
        &pds.admin(),
        "com.atproto.admin.disableInviteCodes",
        &json!({ "codes": [spare] }),
    )
    .await;
    let (status, error, _) = refusal(create_account(&pds, "carol", Some(&spare)).await);
    assert_eq!((status, error.as_str()), (400, "InvalidInviteCode"));
    pds.stop().await;
}

#[tokio::test]
async fn invites_are_optional_by_default() {
    let pds = Pds::start().await;
    create_account(&pds, "alice", None).await.unwrap();
    let code = create_code(&pds, 1, None).await;
    create_account(&pds, "bob", Some(&code)).await.unwrap();
    let (status, error, _) = refusal(create_account(&pds, "carol", Some(&code)).await);
    assert_eq!((status, error.as_str()), (400, "InvalidInviteCode"));
    pds.stop().await;
}

#[tokio::test]
async fn account_invite_codes() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let carol = pds.create("carol").await;

    let answer = procedure(
        &pds.admin(),
        "com.atproto.server.createInviteCodes",
        &json!({ "codeCount": 3, "useCount": 1, "forAccounts": [alice.did, carol.did] }),
    )
    .await;
    let batches = answer["codes"].as_array().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0]["account"], alice.did.as_str());
    assert_eq!(batches[1]["account"], carol.did.as_str());
    let alice_codes: Vec<String> = batches[0]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(alice_codes.len(), 3);
    alice_codes.iter().for_each(|code| assert_code_shape(code));

    let mine = |include_used: bool| {
        let client = pds.bearer(&alice.access_jwt);
        let did = alice.did.clone();
        async move {
            let answer = query(
                &client,
                "com.atproto.server.getAccountInviteCodes",
                &json!({ "includeUsed": include_used }),
            )
            .await;
            let mut codes: Vec<String> = answer["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    assert_eq!(c["forAccount"], did.as_str());
                    c["code"].as_str().unwrap().to_owned()
                })
                .collect();
            codes.sort();
            codes
        }
    };
    let mut expected = alice_codes.clone();
    expected.sort();
    assert_eq!(mine(true).await, expected);

    // One used: still listed with includeUsed, not without.
    create_account(&pds, "bob", Some(&alice_codes[0]))
        .await
        .unwrap();
    assert_eq!(mine(true).await.len(), 3);
    assert_eq!(mine(false).await.len(), 2);

    // All of alice's codes disabled: none listed; carol's are kept.
    procedure(
        &pds.admin(),
        "com.atproto.admin.disableInviteCodes",
        &json!({ "accounts": [alice.did] }),
    )
    .await;
    assert!(mine(true).await.is_empty());
    let carols = query(
        &pds.bearer(&carol.access_jwt),
        "com.atproto.server.getAccountInviteCodes",
        &(),
    )
    .await;
    assert_eq!(carols["codes"].as_array().unwrap().len(), 3);
    let (status, _, message) = refused_procedure(
        &pds.admin(),
        "com.atproto.admin.disableInviteCodes",
        &json!({ "accounts": ["admin"] }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "cannot disable admin invite codes")
    );

    // Account invites switch, as the admin view shows it.
    procedure(
        &pds.admin(),
        "com.atproto.admin.disableAccountInvites",
        &json!({ "account": alice.did }),
    )
    .await;
    let info = pds.account_info(&alice.did).await;
    assert_eq!(info["invitesDisabled"], true);
    assert_eq!(info["invites"].as_array().unwrap().len(), 3);
    procedure(
        &pds.admin(),
        "com.atproto.admin.enableAccountInvites",
        &json!({ "account": alice.did }),
    )
    .await;
    let info = pds.account_info(&alice.did).await;
    assert_eq!(info["invitesDisabled"], false);

    // Without auth: refused.
    let (status, error, _) = refused_query(
        &pds.client(),
        "com.atproto.server.getAccountInviteCodes",
        &(),
    )
    .await;
    assert_eq!((status, error.as_str()), (401, "AuthMissing"));
    pds.stop().await;
}

#[tokio::test]
async fn admin_invite_code_pages() {
    let pds = Pds::start().await;
    let answer = procedure(
        &pds.admin(),
        "com.atproto.server.createInviteCodes",
        &json!({ "codeCount": 7, "useCount": 3 }),
    )
    .await;
    let mut all: Vec<String> = answer["codes"][0]["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    all.sort();
    // Give one code more uses than the others.
    create_account(&pds, "alice", Some(&all[3])).await.unwrap();
    create_account(&pds, "bob", Some(&all[3])).await.unwrap();

    for sort in ["recent", "usage"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut params = json!({ "sort": sort, "limit": 3 });
            if let Some(cursor) = &cursor {
                params["cursor"] = json!(cursor);
            }
            let page = query(&pds.admin(), "com.atproto.admin.getInviteCodes", &params).await;
            let codes = page["codes"].as_array().unwrap();
            assert!(codes.len() <= 3);
            if codes.is_empty() {
                break;
            }
            seen.extend(codes.iter().map(|c| c["code"].as_str().unwrap().to_owned()));
            cursor = page["cursor"].as_str().map(str::to_owned);
        }
        if sort == "usage" {
            assert_eq!(seen[0], all[3]);
        }
        seen.sort();
        assert_eq!(seen, all, "{sort}");
    }

    let (status, _, message) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getInviteCodes",
        &json!({ "sort": "oldest" }),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (400, "unknown sort method: oldest")
    );
    let (status, _, message) = refused_query(
        &pds.admin(),
        "com.atproto.admin.getInviteCodes",
        &json!({ "cursor": "nonsense" }),
    )
    .await;
    assert_eq!((status, message.as_str()), (400, "Malformed cursor"));
    pds.stop().await;
}

#[tokio::test]
async fn codes_of_a_taken_down_account_are_void() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let code = create_code(&pds, 5, Some(&alice.did)).await;
    pds.update_subject_status(&json!({
        "subject": repo_ref(&alice.did),
        "takedown": { "applied": true },
    }))
    .await;
    let (status, error, _) = refusal(create_account(&pds, "bob", Some(&code)).await);
    assert_eq!((status, error.as_str()), (400, "InvalidInviteCode"));
    // Lifted: the code works again.
    pds.update_subject_status(&json!({
        "subject": repo_ref(&alice.did),
        "takedown": { "applied": false },
    }))
    .await;
    create_account(&pds, "bob", Some(&code)).await.unwrap();
    pds.stop().await;
}
