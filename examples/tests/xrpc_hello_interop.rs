//! The reference client (`@atproto/xrpc`) and event-stream reader
//! (`@atproto/xrpc-server`'s `Subscription`), and `@atproto/api`'s agent,
//! against the service the `xrpc_hello` example serves.
#![allow(clippy::unwrap_used)]

use atp_examples::hello_service;
use atp_xrpc::server::{ServerConfig, XrpcServer};

#[test]
fn reference_client_calls_the_example_service() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(XrpcServer::bind(
            "127.0.0.1:0",
            hello_service::router().unwrap(),
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

    // @atproto/api's AtpAgent, validating the output against the lexicon.
    assert_eq!(
        out["agentHello"]["ok"],
        serde_json::json!({ "message": "hello carol" }),
        "{out}"
    );
    let refused = &out["agentRefused"]["err"];
    assert_eq!(refused["xrpcError"], true, "{out}");
    assert_eq!(refused["status"], 400);
    assert_eq!(refused["error"], "NameRefused");

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
    atp_test_vectors::report("xrpc-client.mjs (reference client calls)", 9);
}
