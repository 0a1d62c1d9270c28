//! A tiny XRPC service: a query, a procedure and a subscription.
//!
//! ```text
//! cargo run -p atp-examples --example xrpc_hello -- 127.0.0.1:2583
//! curl 'http://127.0.0.1:2583/xrpc/com.example.hello?name=alice'
//! curl -X POST -H 'Content-Type: application/json' -d '{"text":"hi"}' \
//!     http://127.0.0.1:2583/xrpc/com.example.echo
//! # and a WebSocket client on ws://127.0.0.1:2583/xrpc/com.example.countdown?cursor=3
//! ```
//!
//! Stop it with Ctrl-C: the server finishes in-flight requests and closes
//! subscriptions before exiting.

use std::time::Duration;

use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
use atp_xrpc::stream::{Frame, FrameStream};
use futures_util::StreamExt;

/// Parameters of `com.example.hello`.
#[derive(serde::Deserialize)]
struct HelloParams {
    name: String,
}

/// Body of a `#tick` frame.
#[derive(serde::Serialize)]
struct Tick {
    seq: i64,
}

fn router() -> Result<Router, atp_xrpc::Error> {
    let mut router = Router::new();
    router.path("/xrpc/_health", |_req| async {
        XrpcResponse::json(&serde_json::json!({ "version": env!("CARGO_PKG_VERSION") }))
    });
    router.query("com.example.hello", |req| async move {
        let params: HelloParams = req.params()?;
        if params.name.is_empty() {
            return Err(XrpcError::invalid_request("name is empty").with_name("NameRequired"));
        }
        XrpcResponse::json(&serde_json::json!({ "message": format!("hello {}", params.name) }))
    })?;
    router.procedure("com.example.echo", |mut req| async move {
        let input: serde_json::Value = req.json().await?;
        XrpcResponse::json(&input)
    })?;
    router.subscription("com.example.countdown", |req| async move {
        let cursor = req.cursor()?.unwrap_or(0);
        // One tick a second from the cursor on.
        let ticks = futures_util::stream::iter(cursor..).then(|seq| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Frame::message("#tick", &Tick { seq })
                .unwrap_or_else(|_| Frame::error("InternalServerError", None))
        });
        Ok(Box::pin(ticks) as FrameStream)
    })?;
    Ok(router)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2583".to_owned());
    let server = XrpcServer::bind(addr.as_str(), router()?, ServerConfig::default()).await?;
    println!("listening on http://{}", server.local_addr());
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
