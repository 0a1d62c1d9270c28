//! Nobody acts as someone else: session tokens of the wrong kind, expired,
//! forged or re-signed with another algorithm are refused; rotated refresh
//! tokens follow the reference's grace period; app passwords cannot reach
//! account-level methods; one account cannot write another's repository;
//! admin methods need the admin password; logins and sign-ups are rate
//! limited; password hashes never leave the server and secrets never reach
//! the logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atp_syntax::Did;
use atp_xrpc::auth::{AuthScope, SessionTokenAuthority};
use atp_xrpc::client::XrpcClient;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use common::{
    procedure, query, refusal, refused_procedure, refused_query, Pds, TestAccount, ADMIN_PASSWORD,
    JWT_SECRET, PASSWORD, SERVICE_DID,
};

async fn get_session(client: &XrpcClient) -> Result<Value, atp_xrpc::Error> {
    client.query("com.atproto.server.getSession", &()).await
}

async fn refresh(client: &XrpcClient) -> Result<Value, atp_xrpc::Error> {
    client
        .procedure("com.atproto.server.refreshSession", &(), &())
        .await
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer_pad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A JWT with this header and claims, signed with HMAC-SHA256 under
/// `secret` whatever the header says (or unsigned when `secret` is `None`).
fn forge(header: &Value, claims: &Value, secret: Option<&str>) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = match secret {
        Some(secret) => {
            URL_SAFE_NO_PAD.encode(hmac_sha256(secret.as_bytes(), signing_input.as_bytes()))
        }
        None => String::new(),
    };
    format!("{signing_input}.{sig}")
}

fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[test]
fn the_forging_helper_matches_the_server_signature() {
    // Guards the forged-token tests: re-signing a real token's header and
    // claims with the real secret gives the real token back.
    let authority = SessionTokenAuthority::new(JWT_SECRET, SERVICE_DID).unwrap();
    let did = Did::new("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa").unwrap();
    let (jwt, _) = authority
        .create_access_token_at(&did, AuthScope::Access, unix_now())
        .unwrap();
    let header = jwt.split('.').next().unwrap();
    let claims = jwt.split('.').nth(1).unwrap();
    let reforged = format!(
        "{header}.{claims}.{}",
        URL_SAFE_NO_PAD.encode(hmac_sha256(
            JWT_SECRET.as_bytes(),
            format!("{header}.{claims}").as_bytes()
        ))
    );
    assert_eq!(reforged, jwt);
}

#[tokio::test]
async fn tokens_of_the_wrong_kind_expired_or_forged_are_refused() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let did = Did::new(&alice.did).unwrap();

    // Access token as refresh token, and the reverse.
    let (status, error, _) = refusal(refresh(&pds.bearer(&alice.access_jwt)).await);
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    let (status, error, _) = refusal(get_session(&pds.bearer(&alice.refresh_jwt)).await);
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    let (status, error, _) = refused_procedure(&pds.bearer(&alice.refresh_jwt), "com.atproto.repo.createRecord", &json!({"repo": alice.did, "collection": "com.example.x", "record": {"$type": "com.example.x"}})).await;
    assert_eq!((status, error.as_str()), (400, "InvalidToken"));

    // Expired tokens, made with the server's own secret.
    let authority = SessionTokenAuthority::new(JWT_SECRET, SERVICE_DID).unwrap();
    let long_ago = unix_now() - 365 * 24 * 3600;
    let (old_access, _) = authority
        .create_access_token_at(&did, AuthScope::Access, long_ago)
        .unwrap();
    let (old_refresh, _) = authority
        .create_refresh_token_at(&did, None, long_ago)
        .unwrap();
    let (status, error, _) = refusal(get_session(&pds.bearer(&old_access)).await);
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let (status, error, _) = refusal(refresh(&pds.bearer(&old_refresh)).await);
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));

    // Tokens signed with another secret, or for another service.
    for other in [
        SessionTokenAuthority::new("another-secret", SERVICE_DID).unwrap(),
        SessionTokenAuthority::new(JWT_SECRET, "did:web:elsewhere.example").unwrap(),
    ] {
        let tokens = other.create_session(&did, AuthScope::Access).unwrap();
        let (status, error, _) = refusal(get_session(&pds.bearer(&tokens.access_jwt)).await);
        assert_eq!((status, error.as_str()), (400, "InvalidToken"));
        let (status, error, _) = refusal(refresh(&pds.bearer(&tokens.refresh_jwt)).await);
        assert_eq!((status, error.as_str()), (400, "InvalidToken"));
    }
    // A refresh token for an id the server never issued, with the right
    // secret: refused as revoked.
    let (stray_refresh, _) = authority
        .create_refresh_token_at(&did, None, unix_now())
        .unwrap();
    let (status, _, _) = refusal(refresh(&pds.bearer(&stray_refresh)).await);
    assert_eq!(status, 400);

    // alg none, algorithm switching and claim tampering.
    let header = header_of(&alice.access_jwt);
    let claims = claims_of(&alice.access_jwt);
    let mut as_bob = claims.clone();
    as_bob["sub"] = json!(bob.did);
    let mut privileged = claims.clone();
    privileged["scope"] = json!("com.atproto.appPassPrivileged");
    let mut later = claims.clone();
    later["exp"] = json!(unix_now() + 10 * 365 * 24 * 3600);
    let with_alg = |alg: &str| {
        let mut h = header.clone();
        h["alg"] = json!(alg);
        h
    };
    let mut no_typ = header.clone();
    no_typ.as_object_mut().unwrap().remove("typ");
    let mut refresh_typ = header.clone();
    refresh_typ["typ"] = json!("refresh+jwt");
    let original_sig = alice.access_jwt.split('.').nth(2).unwrap().to_owned();
    let forged = [
        // Unsigned.
        forge(&with_alg("none"), &claims, None),
        forge(&with_alg("None"), &claims, None),
        format!(
            "{}.{}",
            forge(&with_alg("none"), &claims, None),
            original_sig
        ),
        // An HMAC signature under an asymmetric algorithm's name.
        forge(&with_alg("ES256K"), &claims, Some(JWT_SECRET)),
        forge(&with_alg("ES256"), &claims, Some(JWT_SECRET)),
        forge(&with_alg("RS256"), &claims, Some(JWT_SECRET)),
        forge(&with_alg("HS512"), &claims, Some(JWT_SECRET)),
        forge(&with_alg("hs256"), &claims, Some(JWT_SECRET)),
        // The right algorithm, the wrong type.
        forge(&no_typ, &claims, Some(JWT_SECRET)),
        forge(&refresh_typ, &claims, Some(JWT_SECRET)),
        // Claims changed under the original signature.
        forge(&header, &as_bob, None) + &original_sig,
        forge(&header, &privileged, None) + &original_sig,
        forge(&header, &later, None) + &original_sig,
        // Claims changed and signed with a guessed secret.
        forge(&header, &as_bob, Some("secret")),
        forge(&header, &as_bob, Some("")),
        // Not a JWT.
        "not-a-jwt".to_owned(),
        "a.b.c".to_owned(),
        String::new(),
    ];
    for token in &forged {
        let client = if token.is_empty() {
            pds.client().with_header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_static("Bearer "),
            )
        } else {
            pds.bearer(token)
        };
        let (status, error, _) = refusal(get_session(&client).await);
        if token.is_empty() {
            assert!(
                status == 400 || status == 401,
                "an empty bearer token: {status} {error}"
            );
        } else {
            assert_eq!(
                (status, error.as_str()),
                (400, "InvalidToken"),
                "forged token {token:?}"
            );
        }
    }
    // Other schemes than Bearer.
    for header in [
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{PASSWORD}", alice.handle))
        ),
        format!("bearer{}", alice.access_jwt),
        format!("Token {}", alice.access_jwt),
    ] {
        let client = pds.client().with_header(
            HeaderName::from_static("authorization"),
            HeaderValue::from_str(&header).unwrap(),
        );
        let (status, _, _) = refusal(get_session(&client).await);
        assert!(status == 400 || status == 401, "{header}: {status}");
    }
    // The genuine token still works.
    let session = get_session(&pds.bearer(&alice.access_jwt)).await.unwrap();
    assert_eq!(session["did"], alice.did);
    pds.stop().await;
}

#[tokio::test]
async fn rotated_refresh_tokens_get_the_same_successor_within_the_grace_period_only() {
    // A one-second grace period, so the test can outlive it.
    let pds = Pds::start_configured(
        |service| service.refresh_grace_period = Duration::from_secs(1),
        |_| {},
    )
    .await;
    let alice = pds.create("alice").await;
    let first = refresh(&pds.bearer(&alice.refresh_jwt)).await.unwrap();
    // Presented again at once (a retry after a lost answer): the same
    // successor (same refresh id).
    let again = refresh(&pds.bearer(&alice.refresh_jwt)).await.unwrap();
    let successor_id = claims_of(first["refreshJwt"].as_str().unwrap())["jti"].clone();
    assert_eq!(
        claims_of(again["refreshJwt"].as_str().unwrap())["jti"],
        successor_id
    );
    assert_ne!(claims_of(&alice.refresh_jwt)["jti"], successor_id);
    // After the grace period the old token is refused; the successor works.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, error, _) = refusal(refresh(&pds.bearer(&alice.refresh_jwt)).await);
    assert_eq!((status, error.as_str()), (400, "ExpiredToken"));
    let next = refresh(&pds.bearer(first["refreshJwt"].as_str().unwrap()))
        .await
        .unwrap();
    // deleteSession revokes the refresh token at once.
    let latest = next["refreshJwt"].as_str().unwrap();
    pds.bearer(latest)
        .procedure_bytes(
            "com.atproto.server.deleteSession",
            &(),
            "application/json",
            bytes::Bytes::new(),
        )
        .await
        .unwrap();
    let (status, _, _) = refusal(refresh(&pds.bearer(latest)).await);
    assert_eq!(status, 400);
    pds.stop().await;
}

/// A session opened with a new app password of `account`.
async fn app_password_session(pds: &Pds, account: &TestAccount, privileged: bool) -> Value {
    let created = procedure(
        &pds.bearer(&account.access_jwt),
        "com.atproto.server.createAppPassword",
        &json!({"name": format!("app-{privileged}"), "privileged": privileged}),
    )
    .await;
    pds.client()
        .procedure(
            "com.atproto.server.createSession",
            &(),
            &json!({"identifier": account.handle, "password": created["password"]}),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn app_password_sessions_cannot_reach_account_level_methods() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    for privileged in [false, true] {
        let session = app_password_session(&pds, &alice, privileged).await;
        let token = session["accessJwt"].as_str().unwrap();
        let expected_scope = if privileged {
            "com.atproto.appPassPrivileged"
        } else {
            "com.atproto.appPass"
        };
        assert_eq!(claims_of(token)["scope"], expected_scope);
        let client = pds.bearer(token);
        let calls: [(&str, Value); 5] = [
            (
                "com.atproto.server.createAppPassword",
                json!({"name": "sneaky"}),
            ),
            ("com.atproto.server.requestAccountDelete", json!({})),
            ("com.atproto.server.requestEmailUpdate", json!({})),
            (
                "com.atproto.server.updateEmail",
                json!({"email": "attacker@example.com"}),
            ),
            ("com.atproto.server.deactivateAccount", json!({})),
        ];
        for (nsid, input) in calls {
            let result = client.procedure::<_, _, Value>(nsid, &(), &input).await;
            let (status, error, _) = refusal(result);
            assert!(
                (status == 400 && error == "InvalidToken") || status == 401,
                "{nsid} with an app password (privileged {privileged}): {status} {error}"
            );
        }
        // Nor list the account's invite codes.
        let (status, error, _) = refused_query(
            &client,
            "com.atproto.server.getAccountInviteCodes",
            &json!({}),
        )
        .await;
        assert_eq!((status, error.as_str()), (400, "InvalidToken"));
        // importRepo (replaces the whole repository) needs the main password.
        let result = client
            .procedure_bytes(
                "com.atproto.repo.importRepo",
                &(),
                "application/vnd.ipld.car",
                bytes::Bytes::from_static(b"x"),
            )
            .await;
        let (status, error, _) = refusal(result);
        assert_eq!((status, error.as_str()), (400, "InvalidToken"));
        // Ordinary methods work.
        get_session(&client).await.unwrap();
    }
    // The account's email is unchanged, the account active.
    let session = get_session(&pds.bearer(&alice.access_jwt)).await.unwrap();
    assert_eq!(session["email"], "alice@example.com");
    assert!(session.get("active").map_or(true, |a| a == true));
    pds.stop().await;
}

#[tokio::test]
async fn nobody_writes_into_another_accounts_repository() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let bob = pds.create("bob").await;
    let created = procedure(&pds.bearer(&alice.access_jwt), "com.atproto.repo.createRecord", &json!({"repo": alice.did, "collection": "com.example.note", "rkey": "one", "record": {"$type": "com.example.note", "text": "mine"}})).await;
    let as_bob = pds.bearer(&bob.access_jwt);
    let record = json!({"$type": "com.example.note", "text": "bob was here"});
    let attempts: [(&str, Value); 5] = [
        (
            "com.atproto.repo.createRecord",
            json!({"repo": alice.did, "collection": "com.example.note", "record": record}),
        ),
        (
            "com.atproto.repo.createRecord",
            json!({"repo": alice.handle, "collection": "com.example.note", "record": record}),
        ),
        (
            "com.atproto.repo.putRecord",
            json!({"repo": alice.did, "collection": "com.example.note", "rkey": "one", "record": record}),
        ),
        (
            "com.atproto.repo.deleteRecord",
            json!({"repo": alice.did, "collection": "com.example.note", "rkey": "one"}),
        ),
        (
            "com.atproto.repo.applyWrites",
            json!({"repo": alice.did, "writes": [{"$type": "com.atproto.repo.applyWrites#create", "collection": "com.example.note", "value": record}]}),
        ),
    ];
    for (nsid, input) in attempts {
        let (status, error, _) = refused_procedure(&as_bob, nsid, &input).await;
        // As the reference: 401 AuthenticationRequired.
        assert_eq!(
            (status, error.as_str()),
            (401, "AuthenticationRequired"),
            "{nsid} into another repository"
        );
    }
    // Alice's record and repository are untouched.
    let record = query(
        &pds.client(),
        "com.atproto.repo.getRecord",
        &json!({"repo": alice.did, "collection": "com.example.note", "rkey": "one"}),
    )
    .await;
    assert_eq!(record["value"]["text"], "mine");
    assert_eq!(record["cid"], created["cid"]);
    let listed = query(
        &pds.client(),
        "com.atproto.repo.listRecords",
        &json!({"repo": alice.did, "collection": "com.example.note"}),
    )
    .await;
    assert_eq!(listed["records"].as_array().unwrap().len(), 1);
    pds.stop().await;
}

#[tokio::test]
async fn admin_methods_need_the_admin_password() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let user_token = pds.bearer(&alice.access_jwt);
    let wrong_clients = [
        pds.client(),
        pds.basic("admin", "wrong"),
        pds.basic("admin", ""),
        pds.basic("alice", ADMIN_PASSWORD),
        pds.basic("admin", &format!("{ADMIN_PASSWORD} ")),
        user_token,
        pds.bearer(ADMIN_PASSWORD),
    ];
    let did = alice.did.as_str();
    for client in &wrong_clients {
        let (status, error, _) = refused_query(
            client,
            "com.atproto.admin.getAccountInfo",
            &json!({"did": did}),
        )
        .await;
        assert_eq!(status, 401, "getAccountInfo: {error}");
        let (status, error, _) = refused_procedure(
            client,
            "com.atproto.admin.updateAccountPassword",
            &json!({"did": did, "password": "taken-over"}),
        )
        .await;
        assert_eq!(status, 401, "updateAccountPassword: {error}");
        let (status, error, _) = refused_procedure(
            client,
            "com.atproto.admin.deleteAccount",
            &json!({"did": did}),
        )
        .await;
        assert_eq!(status, 401, "deleteAccount: {error}");
    }
    // The password was not changed: alice still logs in with hers.
    pds.login(&alice.handle, PASSWORD).await.unwrap();
    // The right credentials work.
    let info: Value = pds
        .basic("admin", ADMIN_PASSWORD)
        .query("com.atproto.admin.getAccountInfo", &json!({"did": did}))
        .await
        .unwrap();
    assert_eq!(info["did"], alice.did);
    pds.stop().await;

    // Without a configured admin password, nothing is admin.
    let pds = Pds::start_configured(|_| {}, |state| state.admin_password = None).await;
    let (status, _, _) = refused_query(
        &pds.basic("admin", ""),
        "com.atproto.admin.getAccountInfo",
        &json!({"did": did}),
    )
    .await;
    assert_eq!(status, 401);
    pds.stop().await;
}

#[tokio::test]
async fn logins_and_sign_ups_are_rate_limited_unless_turned_off() {
    use atp_pds::http::rate_limits::{CREATE_ACCOUNT_PER_5_MINUTES, CREATE_SESSION_PER_5_MINUTES};

    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let login = |client: XrpcClient, password: &'static str| {
        let handle = alice.handle.clone();
        async move {
            client
                .procedure::<_, _, Value>(
                    "com.atproto.server.createSession",
                    &(),
                    &json!({"identifier": handle, "password": password}),
                )
                .await
        }
    };
    // Password guessing: the budget is spent by failures too. The bucket
    // refills continuously (one call per 10 s), so a few more calls may
    // pass while the test runs; bounded by 20.
    let mut allowed = 0;
    let error = loop {
        let (status, error, _) = refusal(login(pds.client(), "guess").await);
        if status != 401 {
            break (status, error);
        }
        allowed += 1;
        assert!(
            allowed <= CREATE_SESSION_PER_5_MINUTES + 20,
            "no login limit"
        );
    };
    assert_eq!((error.0, error.1.as_str()), (429, "RateLimitExceeded"));
    assert!(
        allowed >= CREATE_SESSION_PER_5_MINUTES,
        "limited after {allowed}"
    );
    // The right password is limited as well now.
    let (status, error, _) = refusal(login(pds.client(), PASSWORD).await);
    assert_eq!((status, error.as_str()), (429, "RateLimitExceeded"));
    // A peer on loopback (a reverse proxy) forwarding for another client:
    // that client has its own budget.
    let forwarded = pds.client().with_header(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_static("198.51.100.7"),
    );
    login(forwarded, PASSWORD).await.unwrap();

    // Sign-ups (one account was made above), refused or not.
    let mut allowed = 1;
    let error = loop {
        let result: Result<Value, _> = pds
            .client()
            .procedure(
                "com.atproto.server.createAccount",
                &(),
                &json!({"handle": format!("bad handle {allowed}"), "password": PASSWORD}),
            )
            .await;
        let (status, error, _) = refusal(result);
        if status != 400 {
            break (status, error);
        }
        allowed += 1;
        assert!(
            allowed <= CREATE_ACCOUNT_PER_5_MINUTES + 20,
            "no sign-up limit"
        );
    };
    assert_eq!((error.0, error.1.as_str()), (429, "RateLimitExceeded"));
    assert!(
        allowed >= CREATE_ACCOUNT_PER_5_MINUTES,
        "limited after {allowed}"
    );
    pds.stop().await;

    // Turned off: no limit.
    let pds = Pds::start_configured(|_| {}, |state| state.rate_limits = false).await;
    let alice = pds.create("alice").await;
    for _ in 0..=CREATE_SESSION_PER_5_MINUTES {
        let (status, _, _) = refused_procedure(
            &pds.client(),
            "com.atproto.server.createSession",
            &json!({"identifier": alice.handle, "password": "guess"}),
        )
        .await;
        assert_eq!(status, 401);
    }
    pds.stop().await;
}

/// Logs captured for the whole test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_hashes_never_leave_and_secrets_never_reach_the_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    // This binary's only global subscriber: logs of every thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    // Not in development mode (which may log mail tokens).
    let pds = Pds::start_configured(|_| {}, |state| state.dev_mode = false).await;
    let mut answers: Vec<String> = Vec::new();
    let alice = pds.create("alice").await;
    let mut secrets = vec![
        PASSWORD.to_owned(),
        ADMIN_PASSWORD.to_owned(),
        JWT_SECRET.to_owned(),
        alice.access_jwt.clone(),
        alice.refresh_jwt.clone(),
    ];
    let alice_client = pds.bearer(&alice.access_jwt);
    let session = pds.login(&alice.handle, PASSWORD).await.unwrap();
    answers.push(session.to_string());
    secrets.push(session["accessJwt"].as_str().unwrap().to_owned());
    let app = procedure(
        &alice_client,
        "com.atproto.server.createAppPassword",
        &json!({"name": "phone"}),
    )
    .await;
    secrets.push(app["password"].as_str().unwrap().to_owned());
    let app_session = pds
        .login(&alice.did, app["password"].as_str().unwrap())
        .await
        .unwrap();
    answers.push(app_session.to_string());
    // Failed logins log no guessed password either.
    let _ = pds
        .client()
        .procedure::<_, _, Value>(
            "com.atproto.server.createSession",
            &(),
            &json!({"identifier": alice.handle, "password": "wrong-guess-123"}),
        )
        .await;
    secrets.push("wrong-guess-123".to_owned());
    let refreshed = refresh(&pds.bearer(&alice.refresh_jwt)).await.unwrap();
    secrets.push(refreshed["refreshJwt"].as_str().unwrap().to_owned());
    answers.push(refreshed.to_string());
    answers.push(get_session(&alice_client).await.unwrap().to_string());
    let admin = pds.basic("admin", ADMIN_PASSWORD);
    let info = query(
        &admin,
        "com.atproto.admin.getAccountInfo",
        &json!({"did": alice.did}),
    )
    .await;
    answers.push(info.to_string());
    let infos = query(
        &admin,
        "com.atproto.admin.getAccountInfos",
        &json!({"dids": alice.did}),
    )
    .await;
    answers.push(infos.to_string());
    let listed = query(&alice_client, "com.atproto.server.listAppPasswords", &()).await;
    answers.push(listed.to_string());
    let described = query(
        &pds.client(),
        "com.atproto.repo.describeRepo",
        &json!({"repo": alice.did}),
    )
    .await;
    answers.push(described.to_string());
    // The password changed by the admin: the new one is a secret too.
    admin
        .procedure_bytes(
            "com.atproto.admin.updateAccountPassword",
            &(),
            "application/json",
            bytes::Bytes::from(
                json!({"did": alice.did, "password": "brand-new-secret-9"}).to_string(),
            ),
        )
        .await
        .unwrap();
    secrets.push("brand-new-secret-9".to_owned());
    // The repository export holds no secret either.
    let car = pds
        .client()
        .query_bytes("com.atproto.sync.getRepo", &json!({"did": alice.did}))
        .await
        .unwrap();
    answers.push(String::from_utf8_lossy(&car.bytes).into_owned());
    pds.stop().await;

    for answer in &answers {
        assert!(!answer.contains("scrypt"), "a password hash in {answer}");
        for secret in [PASSWORD, app["password"].as_str().unwrap()] {
            assert!(!answer.contains(secret), "a password in {answer}");
        }
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("xrpc request"),
        "logs were captured: {} bytes",
        logs.len()
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret in the logs: {secret}"
        );
    }
    assert!(!logs.contains("scrypt"), "a password hash in the logs");
    // No JWT at all (three base64url parts starting with a JSON header).
    assert!(
        !logs.contains("eyJ0eXAi") && !logs.contains("eyJhbGci"),
        "a JWT in the logs"
    );
}
