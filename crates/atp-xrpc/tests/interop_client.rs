//! The reference client (`@atproto/xrpc`) and event-stream reader
//! (`@atproto/xrpc-server`'s `Subscription`) against our server.
#![allow(clippy::unwrap_used)]

use atp_xrpc::server::{Router, ServerConfig, XrpcError, XrpcResponse, XrpcServer};
use atp_xrpc::stream::{Frame, FrameStream};
use futures_util::StreamExt;

#[derive(serde::Deserialize, serde::Serialize)]
struct HelloParams {
    name: String,
    count: Option<i64>,
    loud: Option<bool>,
    tags: Option<Vec<String>>,
}

#[derive(serde::Serialize)]
struct Tick {
    seq: i64,
    text: String,
}

fn router() -> Router {
    let mut router = Router::new();
    router
        .query("com.example.hello", |req| async move {
            let params: HelloParams = req.params()?;
            if params.name == "refuse" {
                return Err(
                    XrpcError::invalid_request("that name is refused").with_name("NameRefused")
                );
            }
            XrpcResponse::json(&serde_json::json!({
                "message": format!("hello {}", params.name),
                "count": params.count,
                "loud": params.loud,
                "tags": params.tags,
            }))
        })
        .unwrap();
    router
        .procedure("com.example.echo", |mut req| async move {
            let value: serde_json::Value = req.json().await?;
            XrpcResponse::json(&value)
        })
        .unwrap();
    router
        .procedure("com.example.upload", |mut req| async move {
            let bytes = req.bytes().await?;
            Ok(XrpcResponse::bytes("application/octet-stream", bytes))
        })
        .unwrap();
    router
        .subscription("com.example.countdown", |req| async move {
            let cursor = req.cursor()?.unwrap_or(0);
            if cursor > 1000 {
                return Err(
                    XrpcError::invalid_request("Cursor in the future.").with_name("FutureCursor")
                );
            }
            let frames = futures_util::stream::iter(cursor..cursor + 5).map(|seq| {
                Frame::message(
                    "#tick",
                    &Tick {
                        seq,
                        text: format!("tick {seq}"),
                    },
                )
                .expect("a tick encodes")
            });
            // Stay open after the last tick, as a live stream would.
            let stream = frames.chain(futures_util::stream::pending());
            Ok(Box::pin(stream) as FrameStream)
        })
        .unwrap();
    router
}

#[test]
fn reference_client_talks_to_our_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(XrpcServer::bind(
            "127.0.0.1:0",
            router(),
            ServerConfig::default(),
        ))
        .unwrap();
    let url = format!("http://{}", server.local_addr());
    // The node process runs while the runtime's worker threads serve.
    let out = atp_test_vectors::run_node("xrpc-client.mjs", &serde_json::json!({ "url": url }));
    runtime.block_on(server.shutdown());

    assert_eq!(
        out["hello"]["ok"],
        serde_json::json!({
            "message": "hello alice & bob",
            "count": 3,
            "loud": true,
            "tags": ["a b", "c/d"],
        }),
        "{out}"
    );
    let refused = &out["refused"]["err"];
    assert_eq!(refused["xrpcError"], true, "{out}");
    assert_eq!(refused["status"], 400);
    assert_eq!(refused["error"], "NameRefused");
    assert_eq!(refused["message"], "that name is refused");

    let missing = &out["missing"]["err"];
    assert_eq!(missing["xrpcError"], true, "{out}");
    assert_eq!(missing["status"], 501);
    assert_eq!(missing["error"], "MethodNotImplemented");

    assert_eq!(
        out["echo"]["ok"],
        serde_json::json!({ "text": "héllo" }),
        "{out}"
    );
    assert_eq!(out["upload"]["ok"]["length"], 100_000, "{out}");
    assert_eq!(out["upload"]["ok"]["sameBytes"], true, "{out}");

    let ticks = out["subscription"]["ok"].as_array().expect("ticks");
    assert_eq!(ticks.len(), 3, "{out}");
    for (i, tick) in ticks.iter().enumerate() {
        let seq = 7 + i as i64;
        assert_eq!(tick["seq"], seq);
        assert_eq!(tick["text"], format!("tick {seq}"));
        assert_eq!(tick["$type"], "com.example.countdown#tick");
    }
    let future = &out["futureCursor"]["err"];
    assert_eq!(future["xrpcError"], true, "{out}");
    assert_eq!(future["error"], "FutureCursor", "{out}");
    assert_eq!(future["message"], "Cursor in the future.");
    atp_test_vectors::report("xrpc-client.mjs (reference client calls)", 7);
}
