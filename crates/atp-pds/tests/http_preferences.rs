//! app.bsky.actor.getPreferences / putPreferences over HTTP: stored per
//! account, replaced whole, `$type` required in app.bsky, personal details
//! hidden from and kept against app-password sessions, the declared age
//! computed and never stored.
#![allow(clippy::unwrap_used)]

mod common;

use common::{query, refusal, refused_query, Pds, TestAccount};
use serde_json::{json, Value};

const PERSONAL: &str = "app.bsky.actor.defs#personalDetailsPref";
const ADULT: &str = "app.bsky.actor.defs#adultContentPref";
const DECLARED_AGE: &str = "app.bsky.actor.defs#declaredAgePref";

async fn get(pds: &Pds, jwt: &str) -> Vec<Value> {
    let answer = query(&pds.bearer(jwt), "app.bsky.actor.getPreferences", &()).await;
    answer["preferences"].as_array().unwrap().clone()
}

async fn put(pds: &Pds, jwt: &str, prefs: Value) -> Result<(), atp_xrpc::Error> {
    pds.bearer(jwt)
        .procedure::<_, _, Option<Value>>(
            "app.bsky.actor.putPreferences",
            &(),
            &json!({ "preferences": prefs }),
        )
        .await
        .map(|_| ())
}

fn types(prefs: &[Value]) -> Vec<&str> {
    prefs.iter().map(|p| p["$type"].as_str().unwrap()).collect()
}

/// An app-password session of `account`.
async fn app_session(pds: &Pds, account: &TestAccount) -> String {
    let app = pds.create_app_password(account, "phone").await;
    let session = pds
        .login(&account.handle, app["password"].as_str().unwrap())
        .await
        .unwrap();
    session["accessJwt"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn preferences_are_stored_and_replaced_whole() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let jwt = alice.access_jwt.as_str();
    assert!(get(&pds, jwt).await.is_empty());

    let adult = json!({ "$type": ADULT, "enabled": true });
    let personal = json!({ "$type": PERSONAL, "birthDate": "1990-04-05T00:00:00.000Z" });
    put(&pds, jwt, json!([adult, personal])).await.unwrap();
    let prefs = get(&pds, jwt).await;
    assert_eq!(types(&prefs), [ADULT, PERSONAL, DECLARED_AGE]);
    assert_eq!(prefs[0], adult);
    assert_eq!(prefs[1], personal);
    assert_eq!(
        prefs[2],
        json!({ "$type": DECLARED_AGE, "isOverAge13": true, "isOverAge16": true, "isOverAge18": true })
    );
    // Another account's are its own.
    assert!(get(&pds, &bob.access_jwt).await.is_empty());

    // Replaced whole; the declared age is read-only (not stored).
    let saved = json!({ "$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": [] });
    put(
        &pds,
        jwt,
        json!([saved, { "$type": DECLARED_AGE, "isOverAge13": false }]),
    )
    .await
    .unwrap();
    assert_eq!(get(&pds, jwt).await, vec![saved]);

    // Without a session.
    let (status, _, _) = refused_query(&pds.client(), "app.bsky.actor.getPreferences", &()).await;
    assert_eq!(status, 401);
    pds.stop().await;
}

#[tokio::test]
async fn preferences_need_an_app_bsky_type() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let jwt = alice.access_jwt.as_str();

    let (status, error, message) = refusal(put(&pds, jwt, json!([{ "enabled": true }])).await);
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    assert!(message.contains("$type"), "{message}");

    let (status, _, message) = refusal(
        put(
            &pds,
            jwt,
            json!([{ "$type": ADULT, "enabled": true }, { "$type": "com.example.pref", "x": 1 }]),
        )
        .await,
    );
    assert_eq!(
        (status, message.as_str()),
        (400, "Some preferences are not in the app.bsky namespace")
    );
    // Nothing was stored by the refused calls.
    assert!(get(&pds, jwt).await.is_empty());
    pds.stop().await;
}

#[tokio::test]
async fn app_passwords_neither_see_nor_replace_personal_details() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let full = alice.access_jwt.as_str();
    let personal = json!({ "$type": PERSONAL, "birthDate": "2015-01-01T00:00:00.000Z" });
    put(
        &pds,
        full,
        json!([personal, { "$type": ADULT, "enabled": false }]),
    )
    .await
    .unwrap();

    let app = app_session(&pds, &alice).await;
    let seen = get(&pds, &app).await;
    assert_eq!(types(&seen), [ADULT, DECLARED_AGE]);
    assert_eq!(seen[1]["isOverAge13"], false);

    let (status, _, message) = refusal(put(&pds, &app, json!([personal])).await);
    assert_eq!(
        (status, message.as_str()),
        (
            400,
            "Do not have authorization to set preferences: app.bsky.actor.defs#personalDetailsPref"
        )
    );

    // The app password's put replaces what it can see; the personal
    // details stay.
    let adult = json!({ "$type": ADULT, "enabled": true });
    put(&pds, &app, json!([adult])).await.unwrap();
    let prefs = get(&pds, full).await;
    assert_eq!(types(&prefs), [PERSONAL, ADULT, DECLARED_AGE]);
    assert_eq!(prefs[0], personal);
    assert_eq!(prefs[1], adult);
    pds.stop().await;
}
