//! A PDS on loopback for integration tests: temporary data directory,
//! in-memory PLC directory, `.test` handles, admin password `admin-pass`.
//! `Pds::start_with` lets a test adjust the state before the server starts.
#![allow(clippy::unwrap_used, dead_code)]

use atp_crypto::{Algorithm, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use std::sync::{Arc, Mutex};

use atp_pds::http::{router, PdsState, ServiceInfo};
use atp_pds::mailer::{Mail, Mailer};
use atp_pds::service::{ServiceConfig, ServiceKeys};
use atp_pds::Storage;
use atp_xrpc::auth::SessionTokenAuthority;
use atp_xrpc::client::XrpcClient;
use atp_xrpc::server::{ServerConfig, XrpcServer};
use base64::Engine as _;
use hyper::header::{HeaderValue, AUTHORIZATION};
use serde::Serialize;
use serde_json::{json, Value};

/// The admin password of test servers.
pub const ADMIN_PASSWORD: &str = "admin-pass";
/// The secret signing the session tokens of test servers.
pub const JWT_SECRET: &str = "test-jwt-secret";
/// The service DID of test servers (the session tokens' `aud`).
pub const SERVICE_DID: &str = "did:web:localhost";
/// The password of accounts made by [`Pds::create`].
pub const PASSWORD: &str = "hunter22";

/// A running test PDS.
pub struct Pds {
    pub data: tempfile::TempDir,
    pub plc: PlcServer,
    pub server: XrpcServer,
    pub url: String,
}

/// An account made by [`Pds::create`], with its session.
pub struct TestAccount {
    pub did: String,
    pub handle: String,
    pub access_jwt: String,
    pub refresh_jwt: String,
}

impl Pds {
    /// A PDS with the defaults.
    pub async fn start() -> Pds {
        Self::start_with(|_| {}).await
    }

    /// A PDS whose state `adjust` may change (mailer, limits, ...).
    pub async fn start_with(adjust: impl FnOnce(&mut PdsState)) -> Pds {
        Self::start_configured(|_| {}, adjust).await
    }

    /// A PDS whose storage settings `configure` may change before the
    /// storage opens (invites required, ...), and whose state `adjust` may
    /// change before the server starts.
    pub async fn start_configured(
        configure: impl FnOnce(&mut ServiceConfig),
        adjust: impl FnOnce(&mut PdsState),
    ) -> Pds {
        Self::start_serving(ServerConfig::default(), configure, adjust).await
    }

    /// A PDS like [`Pds::start_configured`]'s, served with the HTTP
    /// settings `server_config` (short timeouts, small buffers, ...).
    pub async fn start_serving(
        server_config: ServerConfig,
        configure: impl FnOnce(&mut ServiceConfig),
        adjust: impl FnOnce(&mut PdsState),
    ) -> Pds {
        let data = tempfile::tempdir().unwrap();
        let plc = PlcServer::start(PlcConfig::in_memory()).await.unwrap();
        let mut config = ServiceConfig::new(data.path(), "http://localhost:2583");
        config.handle_domains = vec![".test".to_owned()];
        configure(&mut config);
        let mut state = PdsState::new(
            Storage::open(config).unwrap(),
            ServiceKeys {
                plc_rotation_key: SigningKey::generate(Algorithm::K256),
            },
            PlcClient::new(&plc.url()).unwrap(),
            SessionTokenAuthority::new(JWT_SECRET, SERVICE_DID).unwrap(),
            ServiceInfo {
                did: SERVICE_DID.to_owned(),
                ..ServiceInfo::default()
            },
        )
        .unwrap();
        state.admin_password = Some(ADMIN_PASSWORD.to_owned());
        state.dev_mode = true;
        adjust(&mut state);
        let server = XrpcServer::bind("127.0.0.1:0", router(state).unwrap(), server_config)
            .await
            .unwrap();
        let url = format!("http://{}", server.local_addr());
        Pds {
            data,
            plc,
            server,
            url,
        }
    }

    /// A PDS whose state `adjust` may change, and a handle on that state
    /// (it shares the server's storage) for checks behind the HTTP surface.
    pub async fn start_with_state(adjust: impl FnOnce(&mut PdsState)) -> (Pds, PdsState) {
        let mut captured = None;
        let pds = Self::start_with(|state| {
            adjust(state);
            captured = Some(state.clone());
        })
        .await;
        (pds, captured.unwrap())
    }

    /// A PDS whose mails go to the returned [`Outbox`].
    pub async fn start_with_outbox() -> (Pds, Outbox) {
        let outbox = Outbox::default();
        let pds = Self::start_with(|state| outbox.install(state)).await;
        (pds, outbox)
    }

    /// An unauthenticated client.
    pub fn client(&self) -> XrpcClient {
        XrpcClient::new(&self.url).unwrap()
    }

    /// A client sending `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> XrpcClient {
        self.client().with_bearer(token).unwrap()
    }

    /// A client sending the admin's basic credentials.
    pub fn admin(&self) -> XrpcClient {
        self.basic("admin", ADMIN_PASSWORD)
    }

    /// A client sending the basic credentials `user` and `password`.
    pub fn basic(&self, user: &str, password: &str) -> XrpcClient {
        self.client()
            .with_header(AUTHORIZATION, basic_auth(user, password))
    }

    /// `createSession` with `identifier` and `password`.
    pub async fn login(&self, identifier: &str, password: &str) -> Result<Value, atp_xrpc::Error> {
        self.client()
            .procedure(
                "com.atproto.server.createSession",
                &(),
                &json!({ "identifier": identifier, "password": password }),
            )
            .await
    }

    /// The procedure `nsid` with `input`, as the holder of the access token
    /// `jwt` or without a session; an answer without a body is `null`.
    pub async fn call(
        &self,
        jwt: Option<&str>,
        nsid: &str,
        input: Value,
    ) -> Result<Value, atp_xrpc::Error> {
        let client = match jwt {
            Some(jwt) => self.bearer(jwt),
            None => self.client(),
        };
        let answer: Option<Value> = client.procedure(nsid, &(), &input).await?;
        Ok(answer.unwrap_or(Value::Null))
    }

    /// A new app password `name` of `account` (`createAppPassword`, which
    /// must succeed): its answer, with the password.
    pub async fn create_app_password(&self, account: &TestAccount, name: &str) -> Value {
        procedure(
            &self.bearer(&account.access_jwt),
            "com.atproto.server.createAppPassword",
            &json!({ "name": name }),
        )
        .await
    }

    /// The admin's view of the account `did` (`getAccountInfo`).
    pub async fn account_info(&self, did: &str) -> Value {
        query(
            &self.admin(),
            "com.atproto.admin.getAccountInfo",
            &json!({ "did": did }),
        )
        .await
    }

    /// The admin's `getSubjectStatus` with `params`.
    pub async fn subject_status(&self, params: &Value) -> Value {
        query(&self.admin(), "com.atproto.admin.getSubjectStatus", params).await
    }

    /// The admin's `updateSubjectStatus` with `input`, which must succeed.
    pub async fn update_subject_status(&self, input: &Value) -> Value {
        procedure(
            &self.admin(),
            "com.atproto.admin.updateSubjectStatus",
            input,
        )
        .await
    }

    /// The refusal of `refreshSession` with the refresh token `refresh_jwt`.
    pub async fn refused_refresh(&self, refresh_jwt: &str) -> (u16, String, String) {
        refused_procedure(
            &self.bearer(refresh_jwt),
            "com.atproto.server.refreshSession",
            &(),
        )
        .await
    }

    /// The directory's client.
    pub fn directory(&self) -> PlcClient {
        PlcClient::new(&self.plc.url()).unwrap()
    }

    /// Creates `<name>.test` with email `<name>@example.com` and
    /// [`PASSWORD`].
    pub async fn create(&self, name: &str) -> TestAccount {
        let handle = format!("{name}.test");
        let created: Value = self
            .client()
            .procedure(
                "com.atproto.server.createAccount",
                &(),
                &json!({
                    "handle": handle,
                    "email": format!("{name}@example.com"),
                    "password": PASSWORD,
                }),
            )
            .await
            .unwrap();
        TestAccount {
            did: created["did"].as_str().unwrap().to_owned(),
            handle,
            access_jwt: created["accessJwt"].as_str().unwrap().to_owned(),
            refresh_jwt: created["refreshJwt"].as_str().unwrap().to_owned(),
        }
    }

    /// Stops the server and the directory.
    pub async fn stop(self) {
        self.server.shutdown().await;
        self.plc.shutdown().await.unwrap();
    }
}

/// A mailer keeping the mails it is asked to send; clones share them.
#[derive(Debug, Default, Clone)]
pub struct Outbox(pub Arc<Mutex<Vec<Mail>>>);

impl Outbox {
    /// Makes this outbox the mailer of `state`.
    pub fn install(&self, state: &mut PdsState) {
        state.mailer = Arc::new(self.clone());
    }

    /// The mails sent so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.0.lock().unwrap().clone()
    }
}

impl Mailer for Outbox {
    fn send(&self, mail: &Mail) -> atp_pds::Result<()> {
        self.0.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

/// The repository signing key of the account `did` in `storage`.
pub fn account_key(storage: &Storage, did: &str) -> SigningKey {
    storage.actors().open(did).unwrap().signing_key().unwrap()
}

/// The `com.atproto.admin.defs#repoRef` naming the account `did`.
pub fn repo_ref(did: &str) -> Value {
    json!({ "$type": "com.atproto.admin.defs#repoRef", "did": did })
}

/// The status, error name and message of a refused call.
pub fn refusal<T: std::fmt::Debug>(result: Result<T, atp_xrpc::Error>) -> (u16, String, String) {
    match result {
        Err(atp_xrpc::Error::Xrpc {
            status,
            error,
            message,
        }) => (status.as_u16(), error, message),
        other => panic!("expected an XRPC error, got {other:?}"),
    }
}

/// An `Authorization: Basic` value for `user` and `password`.
pub fn basic_auth(user: &str, password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
}

/// The query `nsid` with `params` through `client`, which must succeed.
pub async fn query(client: &XrpcClient, nsid: &str, params: &(impl Serialize + ?Sized)) -> Value {
    client.query(nsid, params).await.unwrap()
}

/// The procedure `nsid` with `input` through `client`, which must succeed.
pub async fn procedure(
    client: &XrpcClient,
    nsid: &str,
    input: &(impl Serialize + ?Sized),
) -> Value {
    client.procedure(nsid, &(), input).await.unwrap()
}

/// The refusal (status, error name, message) of the query `nsid` with
/// `params` through `client`.
pub async fn refused_query(
    client: &XrpcClient,
    nsid: &str,
    params: &(impl Serialize + ?Sized),
) -> (u16, String, String) {
    refusal(client.query::<_, Value>(nsid, params).await)
}

/// The refusal (status, error name, message) of the procedure `nsid` with
/// `input` through `client`.
pub async fn refused_procedure(
    client: &XrpcClient,
    nsid: &str,
    input: &(impl Serialize + ?Sized),
) -> (u16, String, String) {
    refusal(client.procedure::<_, _, Value>(nsid, &(), input).await)
}
