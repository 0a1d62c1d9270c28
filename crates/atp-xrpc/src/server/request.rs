//! What a handler receives: the request head, its parameters, the caller's
//! credentials and the body.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{HeaderMap, Method, StatusCode, Uri};
use serde::de::DeserializeOwned;

use super::{Credentials, QueryParams, ServerConfig, XrpcError};

/// The head of a request: what an [`Authenticator`](super::Authenticator)
/// and a rate-limit key see.
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// HTTP method.
    pub method: Method,
    /// Request target.
    pub uri: Uri,
    /// Request headers.
    pub headers: HeaderMap,
    /// The NSID of the called method (empty for non-XRPC paths).
    pub nsid: String,
    /// Peer address of the connection.
    pub remote_addr: Option<SocketAddr>,
}

/// A request as a handler sees it.
pub struct XrpcRequest {
    head: RequestHead,
    params: QueryParams,
    credentials: Option<Credentials>,
    body: Option<Incoming>,
    /// The body, when it was read before the handler ran (lexicon checks).
    buffered: Option<Bytes>,
    /// The body parsed (and validated) by the lexicon check, so that
    /// [`XrpcRequest::json`] does not parse it again.
    checked_json: Option<serde_json::Value>,
    /// The parameters typed by the method's lexicon, when checked.
    lexicon_params: Option<serde_json::Map<String, serde_json::Value>>,
    max_body_bytes: usize,
    body_timeout: Duration,
}

impl std::fmt::Debug for XrpcRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XrpcRequest")
            .field("head", &self.head)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl XrpcRequest {
    pub(crate) fn new(
        head: RequestHead,
        params: QueryParams,
        credentials: Option<Credentials>,
        body: Option<Incoming>,
        max_body_bytes: usize,
        body_timeout: Duration,
    ) -> Self {
        XrpcRequest {
            head,
            params,
            credentials,
            body,
            buffered: None,
            checked_json: None,
            lexicon_params: None,
            max_body_bytes,
            body_timeout,
        }
    }

    /// A request without credentials, under the server's default body
    /// limits (plain paths and the fallback).
    pub(crate) fn with_default_limits(
        head: RequestHead,
        params: QueryParams,
        body: Incoming,
        config: &ServerConfig,
    ) -> Self {
        Self::new(
            head,
            params,
            None,
            Some(body),
            config.max_body_bytes,
            config.body_read_timeout,
        )
    }

    pub(crate) fn set_lexicon_params(
        &mut self,
        params: Option<serde_json::Map<String, serde_json::Value>>,
    ) {
        self.lexicon_params = params;
    }

    /// The query parameters typed by the method's lexicon (integers,
    /// booleans, arrays), when the router checked them against a lexicon
    /// (see [`Router::lexicons`](super::Router::lexicons)).
    pub fn lexicon_params(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.lexicon_params.as_ref()
    }

    /// Whether the request announces a body, possibly empty (a
    /// `Content-Length` or a `Transfer-Encoding` header).
    pub(crate) fn announces_body(&self) -> bool {
        let headers = &self.head.headers;
        self.buffered.is_some()
            || headers.contains_key(hyper::header::TRANSFER_ENCODING)
            || headers.contains_key(hyper::header::CONTENT_LENGTH)
    }

    /// Keeps `value`, the buffered body as parsed by the lexicon check,
    /// for [`XrpcRequest::json`].
    pub(crate) fn set_checked_json(&mut self, value: serde_json::Value) {
        self.checked_json = Some(value);
    }

    /// Reads the whole body now and keeps it for the handler.
    pub(crate) async fn buffer_body(&mut self) -> Result<Bytes, XrpcError> {
        let bytes = self.bytes().await?;
        self.buffered = Some(bytes.clone());
        Ok(bytes)
    }

    /// The request head.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The raw query parameters.
    pub fn raw_params(&self) -> &QueryParams {
        &self.params
    }

    /// The query parameters decoded into `T` (400 `InvalidRequest` when they
    /// do not fit).
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, XrpcError> {
        self.params.decode()
    }

    /// What the route's authenticator found, if the route has one.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The request's `Content-Type` without parameters, lower case.
    pub fn content_type(&self) -> Option<String> {
        let value = self
            .head
            .headers
            .get(hyper::header::CONTENT_TYPE)?
            .to_str()
            .ok()?;
        let essence = value.split(';').next().unwrap_or("").trim();
        (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
    }

    fn declared_length(&self) -> Option<u64> {
        self.head
            .headers
            .get(hyper::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    fn take_body(&mut self) -> Result<Incoming, XrpcError> {
        if let Some(len) = self.declared_length() {
            if len > self.max_body_bytes as u64 {
                return Err(too_large(self.max_body_bytes));
            }
        }
        self.body
            .take()
            .ok_or_else(|| XrpcError::invalid_request("request body already read"))
    }

    /// The whole body, at most the route's size limit (413
    /// `PayloadTooLarge` beyond it; 408 when the client stops sending).
    pub async fn bytes(&mut self) -> Result<Bytes, XrpcError> {
        if let Some(bytes) = self.buffered.take() {
            return Ok(bytes);
        }
        let limit = self.max_body_bytes;
        let body = self.take_body()?;
        let collect = async move {
            let mut body = body;
            let mut out = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|_| XrpcError::invalid_request("could not read body"))?;
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(too_large(limit));
                    }
                    out.extend_from_slice(&data);
                }
            }
            Ok(out.freeze())
        };
        match tokio::time::timeout(self.body_timeout, collect).await {
            Ok(result) => result,
            Err(_) => Err(body_timeout()),
        }
    }

    /// The body decoded from JSON. The request must say
    /// `Content-Type: application/json` (400 `InvalidRequest` otherwise).
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, XrpcError> {
        self.expect_json_content_type()?;
        if let Some(value) = self.checked_json.take() {
            self.buffered = None;
            return serde_json::from_value(value).map_err(invalid_json_body);
        }
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(invalid_json_body)
    }

    /// Checks that the request says `Content-Type: application/json`, with
    /// the reference's 400 `InvalidRequest` when it says another type or
    /// none.
    pub(crate) fn expect_json_content_type(&self) -> Result<(), XrpcError> {
        match self.content_type().as_deref() {
            Some("application/json") => Ok(()),
            Some(other) => Err(XrpcError::invalid_request(format!(
                "Wrong request encoding (Content-Type): {other}"
            ))),
            None => Err(XrpcError::invalid_request(
                "Request encoding (Content-Type) required but not provided",
            )),
        }
    }

    /// The body as a stream of chunks, for bodies too large to hold in
    /// memory. The size limit and the read timeout (per chunk) still apply,
    /// and so does a floor on the average rate (after the read timeout,
    /// [`MIN_BODY_RATE`] bytes a second), so a client trickling bytes is cut
    /// off: the stream ends with an error when any of them is exceeded.
    pub fn body_stream(
        &mut self,
    ) -> Result<impl Stream<Item = Result<Bytes, XrpcError>> + Send + 'static, XrpcError> {
        if let Some(bytes) = self.buffered.take() {
            let once: BodyStream = Box::pin(futures_util::stream::iter([Ok(bytes)]));
            return Ok(once);
        }
        let limit = self.max_body_bytes;
        let timeout = self.body_timeout;
        let body = self.take_body()?;
        let state = (body, 0usize, false);
        let started = tokio::time::Instant::now();
        let chunks: BodyStream = Box::pin(futures_util::stream::unfold(
            state,
            move |(mut body, seen, done)| async move {
                if done {
                    return None;
                }
                loop {
                    // The time allowed so far grows with the bytes received.
                    let earned = Duration::from_secs_f64(seen as f64 / MIN_BODY_RATE as f64);
                    let deadline =
                        (started + timeout + earned).min(tokio::time::Instant::now() + timeout);
                    let next = match tokio::time::timeout_at(deadline, body.frame()).await {
                        Ok(next) => next,
                        Err(_) => return Some((Err(body_timeout()), (body, seen, true))),
                    };
                    match next {
                        None => return None,
                        Some(Err(_)) => {
                            let err = XrpcError::invalid_request("could not read body");
                            return Some((Err(err), (body, seen, true)));
                        }
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                let seen = seen + data.len();
                                if seen > limit {
                                    return Some((Err(too_large(limit)), (body, seen, true)));
                                }
                                return Some((Ok(data), (body, seen, false)));
                            }
                        }
                    }
                }
            },
        ));
        Ok(chunks)
    }
}

/// The slowest average rate, in bytes a second, at which a streamed body
/// may arrive once the read timeout has passed.
pub const MIN_BODY_RATE: u64 = 1024;

/// A boxed stream of body chunks.
type BodyStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, XrpcError>> + Send>>;

fn too_large(limit: usize) -> XrpcError {
    XrpcError::payload_too_large(format!("request entity too large (limit {limit} bytes)"))
}

fn body_timeout() -> XrpcError {
    XrpcError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request body not received in time",
    )
}

/// The reference's 400 `InvalidRequest` for a body that is not JSON.
pub(crate) fn invalid_json_body(e: serde_json::Error) -> XrpcError {
    XrpcError::invalid_request(format!("Invalid JSON body: {e}"))
}
