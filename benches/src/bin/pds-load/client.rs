//! A small XRPC client over hyper with a keep-alive connection pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// What went wrong with one request.
#[derive(Debug)]
pub struct RequestError(pub String);

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A logged-in account: its DID and access token.
#[derive(Debug, Clone)]
pub struct Account {
    /// The account's DID.
    pub did: String,
    /// The access JWT.
    pub token: String,
}

/// The server under load.
#[derive(Clone)]
pub struct Xrpc {
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
    run_id: u32,
    next_handle: Arc<AtomicU64>,
}

impl Xrpc {
    /// A client for the server at `base` (like `http://127.0.0.1:2583`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build(connector);
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d.as_micros() & 0xff_ffff) as u32)
            .unwrap_or(0);
        Xrpc {
            base: base.trim_end_matches('/').to_owned(),
            http,
            run_id,
            next_handle: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, hyper::body::Incoming), RequestError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path_and_query));
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let request = builder
            .body(Full::new(body))
            .map_err(|e| RequestError(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| RequestError(format!("{path_and_query}: {e}")))?;
        Ok((response.status(), response.into_body()))
    }

    async fn collect(
        path: &str,
        status: StatusCode,
        body: hyper::body::Incoming,
    ) -> Result<Bytes, RequestError> {
        let bytes = body
            .collect()
            .await
            .map_err(|e| RequestError(format!("{path}: {e}")))?
            .to_bytes();
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(RequestError(format!(
                "{path}: HTTP {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            )))
        }
    }

    /// A procedure with a JSON input; the JSON output.
    pub async fn procedure(
        &self,
        nsid: &str,
        token: Option<&str>,
        input: &Value,
    ) -> Result<Value, RequestError> {
        let path = format!("/xrpc/{nsid}");
        let body = Bytes::from(serde_json::to_vec(input).map_err(|e| RequestError(e.to_string()))?);
        let (status, incoming) = self
            .send(Method::POST, &path, token, Some("application/json"), body)
            .await?;
        let bytes = Self::collect(&path, status, incoming).await?;
        serde_json::from_slice(&bytes).map_err(|e| RequestError(format!("{path}: {e}")))
    }

    /// A procedure with a raw input (uploadBlob); the JSON output.
    pub async fn upload(
        &self,
        nsid: &str,
        token: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Value, RequestError> {
        let path = format!("/xrpc/{nsid}");
        let (status, incoming) = self
            .send(Method::POST, &path, Some(token), Some(content_type), body)
            .await?;
        let bytes = Self::collect(&path, status, incoming).await?;
        serde_json::from_slice(&bytes).map_err(|e| RequestError(format!("{path}: {e}")))
    }

    /// A query; the whole answer body.
    pub async fn query(&self, nsid: &str, query: &str) -> Result<Bytes, RequestError> {
        let path = format!("/xrpc/{nsid}?{query}");
        let (status, incoming) = self
            .send(Method::GET, &path, None, None, Bytes::new())
            .await?;
        Self::collect(&path, status, incoming).await
    }

    /// A query whose answer is read frame by frame and dropped: only its
    /// length is kept (getRepo without holding the CAR in memory).
    pub async fn query_streamed(&self, nsid: &str, query: &str) -> Result<u64, RequestError> {
        let path = format!("/xrpc/{nsid}?{query}");
        let (status, mut incoming) = self
            .send(Method::GET, &path, None, None, Bytes::new())
            .await?;
        if !status.is_success() {
            return Self::collect(&path, status, incoming)
                .await
                .map(|b| b.len() as u64);
        }
        let mut total = 0u64;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| RequestError(format!("{path}: {e}")))?;
            if let Some(data) = frame.data_ref() {
                total += data.len() as u64;
            }
        }
        Ok(total)
    }

    /// A fresh handle under `.test`, unique to this run (at most 18
    /// characters before the domain, as the reference requires).
    pub fn fresh_handle(&self) -> String {
        let n = self.next_handle.fetch_add(1, Ordering::Relaxed);
        format!("l{:06x}x{n}.test", self.run_id)
    }

    /// Creates an account with a fresh handle; its DID and access token.
    pub async fn create_account(&self) -> Result<Account, RequestError> {
        let handle = self.fresh_handle();
        let local = handle.trim_end_matches(".test");
        let answer = self
            .procedure(
                "com.atproto.server.createAccount",
                None,
                &json!({
                    "handle": handle,
                    "email": format!("{local}@example.com"),
                    "password": "load-generator-password",
                }),
            )
            .await?;
        let did = answer["did"].as_str();
        let token = answer["accessJwt"].as_str();
        match (did, token) {
            (Some(did), Some(token)) => Ok(Account {
                did: did.to_owned(),
                token: token.to_owned(),
            }),
            _ => Err(RequestError(format!("createAccount answered {answer}"))),
        }
    }
}

/// A short post, as a client would write it.
pub fn post_record(n: u64) -> Value {
    json!({
        "$type": "app.bsky.feed.post",
        "text": format!("load generator post number {n}: a line of text of ordinary length, with nothing special in it"),
        "langs": ["en"],
        "createdAt": "2026-01-01T00:00:00.000Z",
    })
}
