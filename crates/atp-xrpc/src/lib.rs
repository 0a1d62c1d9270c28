//! XRPC for AT Protocol services: a server and a client on hyper, event
//! streams, auth tokens, and lexicon validation.
//!
//! - [`server`]: a [`Router`](server::Router) of queries, procedures and
//!   subscriptions served by [`XrpcServer`](server::XrpcServer), with the
//!   protocol's error envelope, CORS, body limits, rate limits and an
//!   [`Authenticator`](server::Authenticator) hook.
//!   With [`Router::lexicons`](server::Router::lexicons) it checks query
//!   parameters and JSON input against the methods' lexicons before the
//!   handler runs, answering as the reference server does.
//! - [`stream`]: event-stream frames (a DAG-CBOR header and body per
//!   WebSocket message), subscriptions with a bounded buffer per subscriber,
//!   and a [`SubscriptionClient`](stream::SubscriptionClient).
//! - [`client`]: [`XrpcClient`](client::XrpcClient), calls to another XRPC
//!   service (queries, procedures, binary bodies, the error envelope).
//! - [`auth`]: session JWTs a PDS issues
//!   ([`SessionTokenAuthority`](auth::SessionTokenAuthority)) and
//!   inter-service JWTs ([`create_service_jwt`](auth::create_service_jwt),
//!   [`ServiceJwtVerifier`](auth::ServiceJwtVerifier)); a refusal becomes
//!   the reference's answer with
//!   [`XrpcError::from_session_auth`](server::XrpcError::from_session_auth)
//!   or [`XrpcError::from_service_auth`](server::XrpcError::from_service_auth).
//! - [`lexicon`]: lexicon documents, the bundled `com.atproto`, `app.bsky`
//!   and `chat.bsky` catalog ([`Lexicons`](lexicon::Lexicons)), and
//!   validation of records, parameters and bodies with the reference's
//!   verdicts and messages.
//!
//! A query served and called:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atp_xrpc::Error> {
//! use atp_xrpc::client::XrpcClient;
//! use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
//!
//! #[derive(serde::Deserialize)]
//! struct Hello {
//!     name: String,
//! }
//!
//! let mut router = Router::new();
//! router.query("com.example.hello", |req| async move {
//!     let params: Hello = req.params()?;
//!     if params.name.is_empty() {
//!         return Err(XrpcError::invalid_request("name is empty"));
//!     }
//!     XrpcResponse::json(&serde_json::json!({ "message": format!("hello {}", params.name) }))
//! })?;
//! let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default()).await?;
//!
//! let client = XrpcClient::new(&format!("http://{}", server.local_addr()))?;
//! let answer: serde_json::Value = client
//!     .query("com.example.hello", &serde_json::json!({ "name": "alice" }))
//!     .await?;
//! assert_eq!(answer["message"], "hello alice");
//!
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! A method checked against its lexicon, and auth refusals answered as the
//! reference answers them:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atp_xrpc::Error> {
//! use std::sync::Arc;
//! use atp_xrpc::auth::AuthError;
//! use atp_xrpc::client::XrpcClient;
//! use atp_xrpc::lexicon::Lexicons;
//! use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
//!
//! let mut router = Router::new();
//! router.lexicons(Arc::new(Lexicons::bundled()));
//! router.query("com.atproto.repo.getRecord", |_req| async {
//!     XrpcResponse::json(&serde_json::json!({}))
//! })?;
//! let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default()).await?;
//! let client = XrpcClient::new(&format!("http://{}", server.local_addr()))?;
//! let params = serde_json::json!({ "collection": "app.bsky.feed.post", "rkey": "3k" });
//! let refused = client
//!     .query::<_, serde_json::Value>("com.atproto.repo.getRecord", &params)
//!     .await;
//! match refused {
//!     Err(atp_xrpc::Error::Xrpc { status, error, message }) => {
//!         assert_eq!(status.as_u16(), 400);
//!         assert_eq!(error, "InvalidRequest");
//!         assert_eq!(message, "Error: Params must have the property \"repo\"");
//!     }
//!     other => panic!("unexpected answer: {other:?}"),
//! }
//! server.shutdown().await;
//!
//! let expired = XrpcError::from_service_auth(&AuthError::Expired);
//! assert_eq!((expired.status().as_u16(), expired.name()), (401, "JwtExpired"));
//! let expired = XrpcError::from_session_auth(&AuthError::Expired);
//! assert_eq!((expired.status().as_u16(), expired.name()), (400, "ExpiredToken"));
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod client;
pub mod error;
pub mod lexicon;
pub mod server;
pub mod stream;

pub use error::Error;
