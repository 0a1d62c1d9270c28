//! XRPC for AT Protocol services: a server and a client on hyper, event
//! streams, auth tokens, and lexicon validation.
//!
//! - [`server`]: a [`Router`](server::Router) of queries, procedures and
//!   subscriptions served by [`XrpcServer`](server::XrpcServer), with the
//!   protocol's error envelope, CORS, body limits, rate limits and an
//!   [`Authenticator`](server::Authenticator) hook.
//! - [`stream`]: event-stream frames and WebSocket subscriptions.
//! - [`client`]: calls to another XRPC service.
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

pub mod auth;
pub mod client;
pub mod error;
pub mod lexicon;
pub mod server;
pub mod stream;

pub use error::Error;
