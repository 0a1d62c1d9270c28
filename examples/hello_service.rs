//! A tiny XRPC service: a query, two procedures and a subscription, served
//! by [`atp_xrpc`]. The `xrpc_hello` example serves it, and the interop test
//! calls it with the reference client (`@atproto/xrpc`) and the reference
//! event-stream reader (`@atproto/xrpc-server`).
//!
//! | Method                  | Kind         | What it does                                  |
//! |-------------------------|--------------|-----------------------------------------------|
//! | `com.example.hello`     | query        | greets `name`; echoes `count`, `loud`, `tags` |
//! | `com.example.echo`      | procedure    | answers its JSON body                         |
//! | `com.example.upload`    | procedure    | answers its binary body                       |
//! | `com.example.countdown` | subscription | `#tick` frames from `cursor` on               |
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atp_xrpc::Error> {
//! use atp_xrpc::client::XrpcClient;
//! use atp_xrpc::server::{ServerConfig, XrpcServer};
//!
//! let router = atp_examples::hello_service::router()?;
//! let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default()).await?;
//! let client = XrpcClient::new(&format!("http://{}", server.local_addr()))?;
//! let answer: serde_json::Value = client
//!     .query("com.example.hello", &serde_json::json!({ "name": "alice" }))
//!     .await?;
//! assert_eq!(answer["message"], "hello alice");
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use atp_xrpc::server::{Router, XrpcError, XrpcResponse};
use atp_xrpc::stream::{Frame, FrameStream};
use futures_util::StreamExt;

/// NSID of the greeting query.
pub const HELLO: &str = "com.example.hello";
/// NSID of the JSON echo procedure.
pub const ECHO: &str = "com.example.echo";
/// NSID of the binary upload procedure.
pub const UPLOAD: &str = "com.example.upload";
/// NSID of the countdown subscription.
pub const COUNTDOWN: &str = "com.example.countdown";

/// The `name` that `com.example.hello` refuses with a `NameRefused` error.
pub const REFUSED_NAME: &str = "refuse";
/// Number of `#tick` frames a countdown subscription sends before it stays
/// open and silent, as a live stream with nothing new would.
pub const TICKS_PER_SUBSCRIPTION: i64 = 5;
/// Largest cursor a countdown subscription accepts; beyond it the answer is
/// a `FutureCursor` error frame.
pub const MAX_CURSOR: i64 = 1000;
/// Pause between two `#tick` frames.
pub const TICK_INTERVAL: Duration = Duration::from_millis(200);

/// Parameters of `com.example.hello`.
#[derive(Debug, serde::Deserialize)]
pub struct HelloParams {
    /// Who to greet (required, non-empty).
    pub name: String,
    /// An optional integer, echoed back.
    pub count: Option<i64>,
    /// An optional boolean, echoed back.
    pub loud: Option<bool>,
    /// An optional list (a repeated query key), echoed back.
    pub tags: Option<Vec<String>>,
}

/// Output of `com.example.hello`.
#[derive(Debug, serde::Serialize)]
pub struct HelloOutput {
    /// `hello <name>`.
    pub message: String,
    /// The `count` parameter (left out when absent: the lexicon allows no
    /// `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// The `loud` parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loud: Option<bool>,
    /// The `tags` parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Body of a `#tick` frame of `com.example.countdown`.
#[derive(Debug, serde::Serialize)]
pub struct Tick {
    /// Sequence number, counting up from the cursor.
    pub seq: i64,
    /// `tick <seq>`.
    pub text: String,
}

/// The service's router: every method above and `/xrpc/_health`.
pub fn router() -> Result<Router, atp_xrpc::Error> {
    let mut router = Router::new();
    router.path("/xrpc/_health", |_req| async {
        XrpcResponse::json(&serde_json::json!({ "version": env!("CARGO_PKG_VERSION") }))
    });
    router.query(HELLO, |req| async move {
        let params: HelloParams = req.params()?;
        if params.name.is_empty() {
            return Err(XrpcError::invalid_request("name is empty").with_name("NameRequired"));
        }
        if params.name == REFUSED_NAME {
            return Err(XrpcError::invalid_request("that name is refused").with_name("NameRefused"));
        }
        XrpcResponse::json(&HelloOutput {
            message: format!("hello {}", params.name),
            count: params.count,
            loud: params.loud,
            tags: params.tags,
        })
    })?;
    router.procedure(ECHO, |mut req| async move {
        let input: serde_json::Value = req.json().await?;
        XrpcResponse::json(&input)
    })?;
    router.procedure(UPLOAD, |mut req| async move {
        let bytes = req.bytes().await?;
        Ok(XrpcResponse::bytes("application/octet-stream", bytes))
    })?;
    router.subscription(COUNTDOWN, |req| async move {
        let cursor = req.cursor()?.unwrap_or(0);
        if cursor > MAX_CURSOR {
            return Err(
                XrpcError::invalid_request("Cursor in the future.").with_name("FutureCursor")
            );
        }
        let ticks = futures_util::stream::iter(cursor..cursor + TICKS_PER_SUBSCRIPTION).then(
            |seq| async move {
                tokio::time::sleep(TICK_INTERVAL).await;
                let tick = Tick {
                    seq,
                    text: format!("tick {seq}"),
                };
                Frame::message("#tick", &tick)
                    .unwrap_or_else(|_| Frame::error("InternalServerError", None))
            },
        );
        // Stay open after the last tick, as a live stream would.
        let stream = ticks.chain(futures_util::stream::pending());
        Ok(Box::pin(stream) as FrameStream)
    })?;
    Ok(router)
}
