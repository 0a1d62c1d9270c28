//! A client for XRPC services: typed queries and procedures over http or
//! https, the error envelope decoded into [`Error::Xrpc`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::server::error_name_and_message;
use crate::Error;

/// How long one call may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes of a response body read by default.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A response body with its content type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XrpcBody {
    /// The `Content-Type` of the response, if any.
    pub content_type: Option<String>,
    /// The body.
    pub bytes: Bytes,
}

/// A client of one XRPC service.
#[derive(Clone, Debug)]
pub struct XrpcClient {
    base_url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    max_response_bytes: usize,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl XrpcClient {
    /// A client for the service at `base_url` (`https://host` or
    /// `http://host:port`, without `/xrpc`).
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let uri: hyper::Uri = base_url
            .parse()
            .map_err(|e| Error::InvalidRequest(format!("invalid service URL: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::InvalidRequest(
                    "service URL must be http or https".into(),
                ))
            }
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Http(format!("cannot set up TLS: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Ok(XrpcClient {
            base_url,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            http,
        })
    }

    /// Adds a header sent with every call (for example `Authorization` or
    /// `atproto-proxy`).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    /// Sends `Authorization: Bearer <token>` with every call.
    pub fn with_bearer(self, token: &str) -> Result<Self, Error> {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::InvalidRequest("token is not a valid header value".into()))?;
        Ok(self.with_header(hyper::header::AUTHORIZATION, value))
    }

    /// Changes the per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A query (GET) answered with JSON.
    pub async fn query<P: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        nsid: &str,
        params: &P,
    ) -> Result<O, Error> {
        let body = self.call(Method::GET, nsid, params, None).await?;
        decode_json(&body)
    }

    /// A query (GET) answered with bytes (blobs, CAR files).
    pub async fn query_bytes<P: Serialize + ?Sized>(
        &self,
        nsid: &str,
        params: &P,
    ) -> Result<XrpcBody, Error> {
        self.call(Method::GET, nsid, params, None).await
    }

    /// A procedure (POST) with a JSON input, answered with JSON (`()`-like
    /// outputs: use `serde_json::Value`, which is `null` for an empty body).
    pub async fn procedure<P: Serialize + ?Sized, I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        nsid: &str,
        params: &P,
        input: &I,
    ) -> Result<O, Error> {
        let input = serde_json::to_vec(input)?;
        let body = self
            .call(
                Method::POST,
                nsid,
                params,
                Some(("application/json", Bytes::from(input))),
            )
            .await?;
        decode_json(&body)
    }

    /// A procedure (POST) with a raw input of the given content type.
    pub async fn procedure_bytes<P: Serialize + ?Sized>(
        &self,
        nsid: &str,
        params: &P,
        content_type: &str,
        input: Bytes,
    ) -> Result<XrpcBody, Error> {
        self.call(Method::POST, nsid, params, Some((content_type, input)))
            .await
    }

    async fn call<P: Serialize + ?Sized>(
        &self,
        method: Method,
        nsid: &str,
        params: &P,
        input: Option<(&str, Bytes)>,
    ) -> Result<XrpcBody, Error> {
        if !atp_syntax::Nsid::is_valid(nsid) {
            return Err(Error::InvalidRequest(format!("invalid NSID {nsid:?}")));
        }
        let query = encode_params(params)?;
        let mut url = format!("{}/xrpc/{nsid}", self.base_url);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        let mut builder = Request::builder().method(method).uri(&url);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        let body = match input {
            Some((content_type, bytes)) => {
                builder = builder.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| Error::Http(e.to_string()))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let bytes = Limited::new(response.into_body(), self.max_response_bytes)
                .collect()
                .await
                .map_err(|e| Error::Http(format!("reading response: {e}")))?
                .to_bytes();
            Ok::<_, Error>((status, content_type, bytes))
        };
        let (status, content_type, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout)??;
        if !status.is_success() {
            return Err(error_from_response(status, &bytes));
        }
        Ok(XrpcBody {
            content_type,
            bytes,
        })
    }
}

fn decode_json<O: DeserializeOwned>(body: &XrpcBody) -> Result<O, Error> {
    if body.bytes.is_empty() {
        return serde_json::from_slice(b"null")
            .map_err(|_| Error::InvalidResponse("empty response where JSON was expected".into()));
    }
    serde_json::from_slice(&body.bytes)
        .map_err(|e| Error::InvalidResponse(format!("invalid JSON response: {e}")))
}

/// The error of a non-2xx answer: the envelope's name and message when the
/// body is one, else the status' standard name and text.
fn error_from_response(status: StatusCode, bytes: &[u8]) -> Error {
    let (error, message) = error_name_and_message(status, Some(bytes));
    Error::Xrpc {
        status,
        error,
        message,
    }
}

/// Encodes parameters (a struct or map serialized to a JSON object) as a
/// query string: arrays repeat the key, `null` is left out.
pub fn encode_params<P: Serialize + ?Sized>(params: &P) -> Result<String, Error> {
    let value = serde_json::to_value(params)?;
    let map = match value {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Null => return Ok(String::new()),
        _ => {
            return Err(Error::InvalidRequest(
                "parameters must serialize to an object".into(),
            ))
        }
    };
    let mut parts = Vec::new();
    for (key, value) in &map {
        let values = match value {
            serde_json::Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in values {
            let text = match value {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => {
                    return Err(Error::InvalidRequest(format!(
                        "parameter {key} is not a scalar or an array of scalars"
                    )))
                }
            };
            parts.push(format!("{}={}", percent_encode(key), percent_encode(&text)));
        }
    }
    Ok(parts.join("&"))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
