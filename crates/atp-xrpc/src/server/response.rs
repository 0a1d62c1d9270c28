//! What a handler answers: JSON, bytes with a content type, or a stream.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use super::XrpcError;

/// The body type of every response of the server.
pub type ResponseBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// A successful answer of a handler.
pub struct XrpcResponse {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: ResponseBody,
}

impl std::fmt::Debug for XrpcResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XrpcResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl XrpcResponse {
    /// A JSON body (`application/json; charset=utf-8`).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, XrpcError> {
        let bytes = serde_json::to_vec(value).map_err(XrpcError::internal)?;
        Ok(Self::bytes("application/json; charset=utf-8", bytes))
    }

    /// A body of bytes with the given content type. An invalid content type
    /// falls back to `application/octet-stream`.
    pub fn bytes(content_type: &str, body: impl Into<Bytes>) -> Self {
        XrpcResponse {
            status: StatusCode::OK,
            headers: vec![(CONTENT_TYPE, content_type_value(content_type))],
            body: full(body.into()),
        }
    }

    /// A streamed body: chunks are sent as the stream yields them. An error
    /// from the stream aborts the response.
    pub fn stream<S>(content_type: &str, stream: S) -> Self
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let body = StreamBody::new(stream.map(|chunk| chunk.map(Frame::data)));
        XrpcResponse {
            status: StatusCode::OK,
            headers: vec![(CONTENT_TYPE, content_type_value(content_type))],
            body: BodyExt::boxed_unsync(body),
        }
    }

    /// 200 without a body (a procedure without output).
    pub fn empty() -> Self {
        XrpcResponse {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: empty(),
        }
    }

    /// Sets a header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    /// Changes the (successful) status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn into_response(self) -> Response<ResponseBody> {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

fn content_type_value(content_type: &str) -> HeaderValue {
    HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

pub(crate) fn full(bytes: Bytes) -> ResponseBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub(crate) fn empty() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// The response for an error: status, headers, JSON envelope.
pub(crate) fn error_response(err: &XrpcError) -> Response<ResponseBody> {
    let body = serde_json::to_vec(&err.envelope()).unwrap_or_default();
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = err.status();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (name, value) in err.headers() {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}
