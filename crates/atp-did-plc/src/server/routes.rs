//! The directory's routes: request in, response out.
//!
//! Status codes, content types and error messages follow the reference
//! directory; every refusal is `{"message": ...}` JSON saying what is wrong.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use serde::Serialize;

use super::store::{format_timestamp, parse_timestamp, Store};
use super::Shared;
use crate::document::DocumentData;
use crate::operation::Operation;
use crate::validate::{self, IndexedOperation};
use crate::Error;

/// Largest request body accepted (the reference's JSON parser limit).
const MAX_BODY_BYTES: usize = 100 * 1024;
/// Default and largest page of `/export`.
const MAX_EXPORT_COUNT: usize = 1000;

/// The response body type.
pub(crate) type Body = Full<Bytes>;

/// A refusal: status and message.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }
    fn not_registered(did: &str) -> Self {
        Refusal::new(StatusCode::NOT_FOUND, format!("DID not registered: {did}"))
    }
    fn not_available(did: &str) -> Self {
        Refusal::new(StatusCode::NOT_FOUND, format!("DID not available: {did}"))
    }
}

impl From<Error> for Refusal {
    fn from(err: Error) -> Self {
        match err {
            // Our own failures: the client cannot fix them.
            Error::Storage(_) | Error::Server(_) | Error::Http(_) | Error::Crypto(_) => {
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
            }
            Error::DuplicateOperation { .. } => Refusal::new(StatusCode::CONFLICT, err.to_string()),
            // Everything else is a rule the submitted operation broke.
            other => Refusal::bad_request(other.to_string()),
        }
    }
}

type Outcome = Result<Response<Body>, Refusal>;

/// Answers one request.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<Body> {
    let outcome = route(shared, request).await;
    let mut response = outcome.unwrap_or_else(|refusal| {
        json_response(
            refusal.status,
            &serde_json::json!({ "message": refusal.message }),
        )
    });
    // Browsers may read the directory from any origin, as the reference's
    // CORS middleware allows.
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

async fn route(shared: Arc<Shared>, request: Request<Incoming>) -> Outcome {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    // A trailing slash names the same route, as in the reference's router.
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();

    if method == Method::OPTIONS {
        return Ok(preflight());
    }
    // HEAD is answered as GET; hyper leaves the body out.
    let method = if method == Method::HEAD {
        Method::GET
    } else {
        method
    };
    match (&method, segments.as_slice()) {
        (&Method::GET, ["_health"]) => health(&shared).await,
        (&Method::GET, ["export"]) => export(&shared, query.as_deref()).await,
        (&Method::GET, [did]) => document(&shared, &decode_segment(did)?).await,
        (&Method::POST, [did]) => {
            let did = decode_segment(did)?;
            let body = read_body(request).await?;
            submit(&shared, did, body).await
        }
        (&Method::GET, [did, "data"]) => data(&shared, &decode_segment(did)?).await,
        (&Method::GET, [did, "log"]) => log(&shared, &decode_segment(did)?).await,
        (&Method::GET, [did, "log", "audit"]) => audit_log(&shared, &decode_segment(did)?).await,
        (&Method::GET, [did, "log", "last"]) => last_op(&shared, &decode_segment(did)?).await,
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("Cannot {method} {path}"),
        )),
    }
}

/// Runs blocking store work off the async threads, with the store locked.
async fn with_store<T, F>(shared: &Arc<Shared>, work: F) -> Result<T, Refusal>
where
    T: Send + 'static,
    F: FnOnce(&mut Store) -> Result<T, Refusal> + Send + 'static,
{
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let mut store = shared.store.lock().map_err(|_| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store is unusable after an earlier failure",
            )
        })?;
        work(&mut store)
    })
    .await
    .map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("store task failed: {e}"),
        )
    })?
}

async fn health(shared: &Arc<Shared>) -> Outcome {
    let version = shared.version.clone();
    let healthy = with_store(shared, |store| Ok(store.health_check().is_ok())).await?;
    if healthy {
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "version": version }),
        ))
    } else {
        Ok(json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &serde_json::json!({ "version": version, "error": "Service Unavailable" }),
        ))
    }
}

/// Where an export page starts.
enum ExportAfter {
    /// From the beginning, by time.
    Start,
    /// Strictly after an acceptance time.
    Time(DateTime<Utc>),
    /// Strictly after a sequence number (a decimal `after`), as the newer
    /// reference directory offers.
    Seq(i64),
}

/// An entry of a sequence-numbered export page.
#[derive(Serialize)]
struct SequencedEntry<'a> {
    did: &'a str,
    operation: &'a Operation,
    cid: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    seq: i64,
    #[serde(rename = "type")]
    kind: &'static str,
}

async fn export(shared: &Arc<Shared>, query: Option<&str>) -> Outcome {
    let mut count = MAX_EXPORT_COUNT;
    let mut after = ExportAfter::Start;
    for (name, value) in parse_query(query.unwrap_or(""))? {
        match name.as_str() {
            "count" => {
                count = match value.parse::<i64>() {
                    Ok(n) if n >= 1 => usize::try_from(n)
                        .unwrap_or(MAX_EXPORT_COUNT)
                        .min(MAX_EXPORT_COUNT),
                    _ => return Err(Refusal::bad_request("Invalid count parameter")),
                };
            }
            "after" if !value.is_empty() => {
                let invalid = || Refusal::bad_request("Invalid after parameter");
                after = if value.bytes().all(|b| b.is_ascii_digit()) {
                    ExportAfter::Seq(value.parse().map_err(|_| invalid())?)
                } else {
                    ExportAfter::Time(parse_timestamp(&value).ok_or_else(invalid)?)
                };
            }
            _ => {}
        }
    }
    let lines = with_store(shared, move |store| {
        let lines: Result<Vec<String>, Refusal> = match after {
            ExportAfter::Start => store.export(None, count)?.iter().map(to_json).collect(),
            ExportAfter::Time(time) => store
                .export(Some(&time), count)?
                .iter()
                .map(to_json)
                .collect(),
            ExportAfter::Seq(seq) => store
                .export_sequenced(seq, count)?
                .iter()
                .map(|(seq, op)| {
                    to_json(&SequencedEntry {
                        did: &op.did,
                        operation: &op.operation,
                        cid: op.cid.to_string(),
                        created_at: format_timestamp(&op.created_at),
                        seq: *seq,
                        kind: "sequenced_op",
                    })
                })
                .collect(),
        };
        lines
    })
    .await?;
    let body = lines.join("\n");
    Ok(text_response(StatusCode::OK, "application/jsonlines", body))
}

/// The DID's operations in effect; 404 when it has none.
async fn live_ops(shared: &Arc<Shared>, did: &str) -> Result<Vec<IndexedOperation>, Refusal> {
    let owned = did.to_owned();
    let ops = with_store(shared, move |store| Ok(store.ops_for_did(&owned, false)?)).await?;
    if ops.is_empty() {
        return Err(Refusal::not_registered(did));
    }
    Ok(ops)
}

/// The document data of the DID from its most recent operation in effect;
/// 404 when unknown or tombstoned.
async fn current_data(shared: &Arc<Shared>, did: &str) -> Result<DocumentData, Refusal> {
    let owned = did.to_owned();
    let last = with_store(shared, move |store| Ok(store.last_op_for_did(&owned)?))
        .await?
        .ok_or_else(|| Refusal::not_registered(did))?;
    let body = last
        .operation
        .normalized()
        .ok_or_else(|| Refusal::not_available(did))?;
    Ok(DocumentData::from_operation(did, &body))
}

async fn document(shared: &Arc<Shared>, did: &str) -> Outcome {
    let data = current_data(shared, did).await?;
    let doc = data.to_document();
    Ok(text_response(
        StatusCode::OK,
        "application/did+ld+json; charset=utf-8",
        to_json(&doc)?,
    ))
}

async fn data(shared: &Arc<Shared>, did: &str) -> Outcome {
    let data = current_data(shared, did).await?;
    Ok(json_response(StatusCode::OK, &data))
}

async fn log(shared: &Arc<Shared>, did: &str) -> Outcome {
    let ops = live_ops(shared, did).await?;
    let log: Vec<&Operation> = ops.iter().map(|op| &op.operation).collect();
    Ok(json_response(StatusCode::OK, &log))
}

async fn audit_log(shared: &Arc<Shared>, did: &str) -> Outcome {
    let owned = did.to_owned();
    let ops = with_store(shared, move |store| Ok(store.ops_for_did(&owned, true)?)).await?;
    if ops.is_empty() {
        return Err(Refusal::not_registered(did));
    }
    Ok(json_response(StatusCode::OK, &ops))
}

async fn last_op(shared: &Arc<Shared>, did: &str) -> Outcome {
    let owned = did.to_owned();
    let last = with_store(shared, move |store| Ok(store.last_op_for_did(&owned)?))
        .await?
        .ok_or_else(|| Refusal::not_registered(did))?;
    Ok(json_response(StatusCode::OK, &last.operation))
}

async fn submit(shared: &Arc<Shared>, did: String, body: Bytes) -> Outcome {
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| Refusal::bad_request(format!("Request body is not valid JSON: {e}")))?;
    let op = Operation::from_json_value(&value)?;
    // Shape and size limits first, as the reference does, so a malformed
    // operation is refused with the reason before any log is read.
    validate::assert_valid_incoming_op(&op)?;
    let rate_limit = shared.rate_limit;
    with_store(shared, move |store| {
        let log = store.ops_for_did(&did, false)?;
        let now = Utc::now();
        let next = validate::assure_valid_next_op(&did, &log, &op, now)?;
        // Recoveries are exempt, so that flooding a DID with operations
        // cannot lock its rightful owner out.
        if rate_limit && next.nullified.is_empty() {
            validate::enforce_ops_rate_limit(&log, now)?;
        }
        let cid = op.cid()?;
        store.append(&did, &cid, &op, &next.nullified, now)?;
        Ok(())
    })
    .await?;
    Ok(text_response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        "OK".to_owned(),
    ))
}

/// Reads the request body, refusing more than the reference accepts.
async fn read_body(request: Request<Incoming>) -> Result<Bytes, Refusal> {
    let limited = Limited::new(request.into_body(), MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request entity too large",
            ))
        }
        Err(e) => Err(Refusal::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// Percent-decodes a path segment as UTF-8.
fn decode_segment(segment: &str) -> Result<String, Refusal> {
    percent_decode(segment)
        .ok_or_else(|| Refusal::bad_request(format!("Failed to decode param '{segment}'")))
}

/// Splits and percent-decodes a query string (`+` is a space, as in forms).
fn parse_query(query: &str) -> Result<Vec<(String, String)>, Refusal> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |text: &str| {
                percent_decode(&text.replace('+', " ")).ok_or_else(|| {
                    Refusal::bad_request(format!("malformed query parameter: {pair}"))
                })
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// `%XX` decoding; `None` for a malformed escape or invalid UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    String::from_utf8(atp_syntax::percent_decode(text)?).ok()
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Refusal> {
    serde_json::to_string(value).map_err(|e| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the answer: {e}"),
        )
    })
}

fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match to_json(value) {
        Ok(text) => text_response(status, "application/json; charset=utf-8", text),
        Err(refusal) => text_response(
            refusal.status,
            "application/json; charset=utf-8",
            serde_json::json!({ "message": refusal.message }).to_string(),
        ),
    }
}

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

/// Answer to a CORS preflight request.
fn preflight() -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("content-type"),
    );
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("did%3Aplc%3Aabc").unwrap(), "did:plc:abc");
        assert_eq!(percent_decode("did:plc:abc").unwrap(), "did:plc:abc");
        assert!(percent_decode("%zz").is_none());
        assert!(percent_decode("%4").is_none());
        assert!(percent_decode("%ff").is_none());
    }

    #[test]
    fn parses_query_strings() {
        let pairs = parse_query("count=5&after=2024-01-01T00%3A00%3A00.000Z").unwrap();
        assert_eq!(
            pairs,
            [
                ("count".to_owned(), "5".to_owned()),
                ("after".to_owned(), "2024-01-01T00:00:00.000Z".to_owned())
            ]
        );
    }
}
