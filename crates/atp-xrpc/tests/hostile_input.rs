//! Arbitrary query strings, headers and bodies never panic the server: it
//! always answers (or closes the connection) and keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use atp_xrpc::server::{Router, ServerConfig, XrpcResponse, XrpcServer};
use proptest::prelude::*;

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Params {
    limit: Option<u8>,
    flag: Option<bool>,
    list: Option<Vec<String>>,
    name: Option<String>,
}

fn router() -> Router {
    let mut router = Router::new();
    router
        .query("com.example.q", |req| async move {
            let _: Params = req.params()?;
            XrpcResponse::json(&serde_json::json!({}))
        })
        .unwrap();
    router
        .procedure("com.example.p", |mut req| async move {
            let value: serde_json::Value = req.json().await?;
            XrpcResponse::json(&value)
        })
        .unwrap()
        .max_body_bytes(4096);
    router
}

fn server(runtime: &tokio::runtime::Runtime) -> XrpcServer {
    runtime
        .block_on(XrpcServer::bind(
            "127.0.0.1:0",
            router(),
            ServerConfig::default(),
        ))
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_queries_get_an_answer(query in "[ -~]{0,200}") {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = server(&runtime);
        let addr = server.local_addr();
        // Keep the request line valid HTTP: spaces are escaped.
        let query = query.replace(' ', "%20").replace('#', "%23");
        let raw = format!("GET /xrpc/com.example.q?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let resp = runtime.block_on(common::raw_exchange(addr, raw.as_bytes()));
        if let Some(resp) = resp {
            prop_assert!(resp.status == 200 || resp.status == 400, "status {}", resp.status);
        }
        // Still serving.
        let again = runtime.block_on(common::request(addr, "GET", "/xrpc/com.example.q", &[], b""));
        prop_assert_eq!(again.status, 200);
        runtime.block_on(server.shutdown());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        head in proptest::collection::vec(any::<u8>(), 0..400),
        body in proptest::collection::vec(any::<u8>(), 0..400),
        header_value in "[\\x20-\\x7e]{0,100}",
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let server = server(&runtime);
        let addr = server.local_addr();
        // Pure garbage on the socket.
        runtime.block_on(common::raw_exchange(addr, &head));
        // A well-formed request with an arbitrary header and body.
        let mut raw = format!(
            "POST /xrpc/com.example.p HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nX-Any: {header_value}\r\nAuthorization: {header_value}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        ).into_bytes();
        raw.extend_from_slice(&body);
        let resp = runtime.block_on(common::raw_exchange(addr, &raw));
        if let Some(resp) = resp {
            prop_assert!(resp.status == 200 || resp.status == 400, "status {}", resp.status);
            if resp.status == 400 {
                prop_assert_eq!(&resp.json()["error"], "InvalidRequest");
            }
        }
        let again = runtime.block_on(common::request(addr, "GET", "/xrpc/com.example.q", &[], b""));
        prop_assert_eq!(again.status, 200);
        runtime.block_on(server.shutdown());
    }
}
