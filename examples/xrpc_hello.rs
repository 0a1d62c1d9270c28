//! Serves the tiny XRPC service of [`atp_examples::hello_service`]: a
//! query, two procedures and a subscription.
//!
//! ```text
//! cargo run -p atp-examples --example xrpc_hello -- 127.0.0.1:2583
//! curl 'http://127.0.0.1:2583/xrpc/com.example.hello?name=alice&tags=a&tags=b'
//! curl -X POST -H 'Content-Type: application/json' -d '{"text":"hi"}' \
//!     http://127.0.0.1:2583/xrpc/com.example.echo
//! curl -X POST -H 'Content-Type: application/octet-stream' --data-binary @file \
//!     http://127.0.0.1:2583/xrpc/com.example.upload
//! # and a WebSocket client on ws://127.0.0.1:2583/xrpc/com.example.countdown?cursor=3
//! ```
//!
//! Stop it with Ctrl-C: the server finishes in-flight requests and closes
//! subscriptions before exiting.

use atp_xrpc::server::{ServerConfig, XrpcServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2583".to_owned());
    let router = atp_examples::hello_service::router()?;
    let server = XrpcServer::bind(addr.as_str(), router, ServerConfig::default()).await?;
    println!("listening on http://{}", server.local_addr());
    server
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    Ok(())
}
