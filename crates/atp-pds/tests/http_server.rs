//! The `com.atproto.server` account and session methods over loopback
//! HTTP, against the embedded PLC directory.
#![allow(clippy::unwrap_used)]

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use atp_pds::http::{router, PdsState, ServiceInfo};
use atp_pds::service::{ServiceConfig, ServiceKeys};
use atp_pds::Storage;
use atp_xrpc::auth::SessionTokenAuthority;
use atp_xrpc::client::XrpcClient;
use atp_xrpc::server::{ServerConfig, XrpcServer};
use serde_json::{json, Value};

struct Pds {
    _data: tempfile::TempDir,
    plc: PlcServer,
    server: XrpcServer,
    url: String,
}

impl Pds {
    async fn start(invite_required: bool) -> Pds {
        let data = tempfile::tempdir().unwrap();
        let plc = PlcServer::start(PlcConfig::in_memory()).await.unwrap();
        let mut config = ServiceConfig::new(data.path(), "http://localhost:2583");
        config.handle_domains = vec![".test".to_owned()];
        config.invite_required = invite_required;
        let state = PdsState::new(
            Storage::open(config).unwrap(),
            ServiceKeys {
                plc_rotation_key: SigningKey::generate(Algorithm::K256),
            },
            PlcClient::new(&plc.url()).unwrap(),
            SessionTokenAuthority::new("test-jwt-secret", "did:web:localhost").unwrap(),
            ServiceInfo {
                did: "did:web:localhost".to_owned(),
                contact_email: Some("admin@localhost".to_owned()),
                ..ServiceInfo::default()
            },
        )
        .unwrap();
        let server = XrpcServer::bind(
            "127.0.0.1:0",
            router(state).unwrap(),
            ServerConfig::default(),
        )
        .await
        .unwrap();
        let url = format!("http://{}", server.local_addr());
        Pds {
            _data: data,
            plc,
            server,
            url,
        }
    }

    fn client(&self) -> XrpcClient {
        XrpcClient::new(&self.url).unwrap()
    }

    fn bearer(&self, token: &str) -> XrpcClient {
        self.client().with_bearer(token).unwrap()
    }

    async fn stop(self) {
        self.server.shutdown().await;
        self.plc.shutdown().await.unwrap();
    }

    async fn create(&self, handle: &str, email: &str) -> Result<Value, atp_xrpc::Error> {
        self.client()
            .procedure(
                "com.atproto.server.createAccount",
                &(),
                &json!({ "handle": handle, "email": email, "password": "hunter22" }),
            )
            .await
    }
}

/// The status, error name and message of a refused call.
fn refusal<T: std::fmt::Debug>(result: Result<T, atp_xrpc::Error>) -> (u16, String, String) {
    match result {
        Err(atp_xrpc::Error::Xrpc {
            status,
            error,
            message,
        }) => (status.as_u16(), error, message),
        other => panic!("expected an XRPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn describe_server_shows_the_service() {
    let pds = Pds::start(false).await;
    let answer: Value = pds
        .client()
        .query("com.atproto.server.describeServer", &())
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({
            "did": "did:web:localhost",
            "availableUserDomains": [".test"],
            "inviteCodeRequired": false,
            "links": {},
            "contact": { "email": "admin@localhost" },
        })
    );
    pds.stop().await;
}

#[tokio::test]
async fn create_account_registers_the_did_and_opens_a_session() {
    let pds = Pds::start(false).await;
    let created = pds.create("alice.test", "alice@example.com").await.unwrap();
    let did = created["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:plc:"), "{did}");
    assert_eq!(created["handle"], "alice.test");
    assert_eq!(created["didDoc"]["id"], did.as_str());
    assert_eq!(created["didDoc"]["alsoKnownAs"], json!(["at://alice.test"]));

    // The directory knows the DID, with the same document.
    let resolved = PlcClient::new(&pds.plc.url())
        .unwrap()
        .resolve(&did)
        .await
        .unwrap();
    assert_eq!(resolved, created["didDoc"]);

    // The access token opens the session.
    let session: Value = pds
        .bearer(created["accessJwt"].as_str().unwrap())
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap();
    assert_eq!(session["did"], did.as_str());
    assert_eq!(session["handle"], "alice.test");
    assert_eq!(session["email"], "alice@example.com");
    assert_eq!(session["emailConfirmed"], false);
    assert_eq!(session["active"], true);
    assert!(session.get("accessJwt").is_none());
    pds.stop().await;
}

#[tokio::test]
async fn create_account_refusals() {
    let pds = Pds::start(false).await;
    pds.create("alice.test", "alice@example.com").await.unwrap();

    let (status, name, message) = refusal(pds.create("ALICE.test", "other@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, "Handle already taken: alice.test");

    let (status, name, message) = refusal(pds.create("bob.test", "Alice@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, "Email already taken: alice@example.com");

    // Rejected by the lexicon's handle format before the handler runs.
    let (status, name, message) = refusal(pds.create("jo_hn.test", "john@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, "Input/handle must be a valid handle");

    let (status, name, message) = refusal(pds.create("john.bsky.io", "john@example.com").await);
    assert_eq!((status, name.as_str()), (400, "UnsupportedDomain"));
    assert_eq!(message, "Not a supported handle domain");

    for (handle, expected) in [
        ("j.test", "Handle too short"),
        ("jayromy-johnber12345678910.test", "Handle too long"),
        ("a.john.test", "Invalid characters in handle"),
    ] {
        let (status, name, message) = refusal(pds.create(handle, "john@example.com").await);
        assert_eq!((status, name.as_str()), (400, "InvalidHandle"), "{handle}");
        assert_eq!(message, expected, "{handle}");
    }
    pds.stop().await;
}

#[tokio::test]
async fn invite_codes_are_required_when_configured() {
    let pds = Pds::start(true).await;
    let described: Value = pds
        .client()
        .query("com.atproto.server.describeServer", &())
        .await
        .unwrap();
    assert_eq!(described["inviteCodeRequired"], true);

    let (status, name, message) = refusal(pds.create("alice.test", "alice@example.com").await);
    assert_eq!((status, name.as_str()), (400, "InvalidInviteCode"));
    assert_eq!(message, "No invite code provided");

    let refused: Result<Value, _> = pds
        .client()
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": "alice.test", "email": "a@example.com", "password": "x", "inviteCode": "nope-nope" }),
        )
        .await;
    let (status, name, message) = refusal(refused);
    assert_eq!((status, name.as_str()), (400, "InvalidInviteCode"));
    assert_eq!(message, "Provided invite code not available");
    pds.stop().await;
}

#[tokio::test]
async fn sessions_login_refresh_and_logout() {
    let pds = Pds::start(false).await;
    let created = pds.create("alice.test", "alice@example.com").await.unwrap();
    let did = created["did"].as_str().unwrap();

    // Login by handle (any case), by email and by DID.
    for identifier in ["Alice.Test", "alice@example.com", did] {
        let session: Value = pds
            .client()
            .procedure(
                "com.atproto.server.createSession",
                &(),
                &json!({ "identifier": identifier, "password": "hunter22" }),
            )
            .await
            .unwrap();
        assert_eq!(session["did"], did, "{identifier}");
        assert_eq!(session["handle"], "alice.test");
        assert_eq!(session["email"], "alice@example.com");
        assert_eq!(session["emailConfirmed"], false);
        assert_eq!(session["active"], true);
        assert_eq!(session["didDoc"]["id"], did);
        assert!(session["accessJwt"].is_string() && session["refreshJwt"].is_string());
    }

    for (identifier, password) in [("alice.test", "wrong"), ("nobody.test", "hunter22")] {
        let refused: Result<Value, _> = pds
            .client()
            .procedure(
                "com.atproto.server.createSession",
                &(),
                &json!({ "identifier": identifier, "password": password }),
            )
            .await;
        let (status, name, message) = refusal(refused);
        assert_eq!((status, name.as_str()), (401, "AuthenticationRequired"));
        assert_eq!(message, "Invalid identifier or password");
    }

    // Refresh rotates: the new pair works, the old refresh token within
    // its grace period yields the same successor.
    let refresh = created["refreshJwt"].as_str().unwrap();
    let refreshed: Value = pds
        .bearer(refresh)
        .procedure("com.atproto.server.refreshSession", &(), &())
        .await
        .unwrap();
    assert_eq!(refreshed["did"], did);
    assert_eq!(refreshed["handle"], "alice.test");
    assert_eq!(refreshed["active"], true);
    let new_refresh = refreshed["refreshJwt"].as_str().unwrap();
    assert_ne!(new_refresh, refresh);
    let again: Value = pds
        .bearer(refresh)
        .procedure("com.atproto.server.refreshSession", &(), &())
        .await
        .unwrap();
    let jti = |jwt: &str| {
        let tokens = SessionTokenAuthority::new("test-jwt-secret", "did:web:localhost").unwrap();
        tokens.verify_refresh(jwt).unwrap().jti.as_str().to_owned()
    };
    assert_eq!(jti(again["refreshJwt"].as_str().unwrap()), jti(new_refresh));
    let session: Value = pds
        .bearer(refreshed["accessJwt"].as_str().unwrap())
        .query("com.atproto.server.getSession", &())
        .await
        .unwrap();
    assert_eq!(session["did"], did);

    // An access token is not a refresh token, nor the reverse.
    let (status, name, _) = refusal(
        pds.bearer(refreshed["accessJwt"].as_str().unwrap())
            .procedure::<_, _, Value>("com.atproto.server.refreshSession", &(), &())
            .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidToken"));
    let (status, name, _) = refusal(
        pds.bearer(new_refresh)
            .query::<_, Value>("com.atproto.server.getSession", &())
            .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidToken"));

    // No token at all.
    let (status, name, message) = refusal(
        pds.client()
            .query::<_, Value>("com.atproto.server.getSession", &())
            .await,
    );
    assert_eq!((status, name.as_str()), (401, "AuthMissing"));
    assert_eq!(message, "Authentication Required");

    // A token signed with another secret.
    let forged = SessionTokenAuthority::new("another-secret", "did:web:localhost")
        .unwrap()
        .create_session(
            &atp_syntax::Did::new(did).unwrap(),
            atp_xrpc::auth::AuthScope::Access,
        )
        .unwrap();
    let (status, name, _) = refusal(
        pds.bearer(&forged.access_jwt)
            .query::<_, Value>("com.atproto.server.getSession", &())
            .await,
    );
    assert_eq!((status, name.as_str()), (400, "InvalidToken"));

    // Logout revokes the refresh token.
    let done: Value = pds
        .bearer(new_refresh)
        .procedure("com.atproto.server.deleteSession", &(), &())
        .await
        .unwrap();
    assert_eq!(done, Value::Null);
    let (status, name, message) = refusal(
        pds.bearer(new_refresh)
            .procedure::<_, _, Value>("com.atproto.server.refreshSession", &(), &())
            .await,
    );
    assert_eq!((status, name.as_str()), (400, "ExpiredToken"));
    assert_eq!(message, "Token has been revoked");
    pds.stop().await;
}
