//! An HTTP(S) client for a PLC directory: `https://plc.directory` in
//! production, or this crate's [`server`](crate::server) in development.
//!
//! Every method maps to one route of the directory's HTTP API. When the
//! directory refuses a request, the error is [`Error::Directory`] with the
//! HTTP status and the directory's own explanation (the `message` field of
//! its JSON error body), so a refused registration says *why* it was refused.
//!
//! ```no_run
//! # async fn demo() -> Result<(), atp_did_plc::Error> {
//! use atp_did_plc::client::PlcClient;
//!
//! let client = PlcClient::new("https://plc.directory")?;
//! let doc = client.resolve("did:plc:ewvi7nxzyoun6zhxrhs64oiz").await?;
//! println!("{}", doc["id"]);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use atp_crypto::Cid;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::{header, Method, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::operation::Operation;
use crate::validate::IndexedOperation;
use crate::Error;

/// How long one request may take, connection included, before it fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most bytes of a response body the client reads (an export page of 1000
/// operations is well under this).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Most characters of a non-JSON error body quoted in an error.
const MAX_QUOTED_BODY: usize = 500;

/// A client for one PLC directory.
#[derive(Clone, Debug)]
pub struct PlcClient {
    base_url: String,
    timeout: Duration,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// An entry of a sequence-numbered export page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SequencedOperation {
    /// Position in the directory's acceptance order (from 1).
    pub seq: u64,
    /// The DID the operation belongs to.
    pub did: String,
    /// The signed operation.
    pub operation: Operation,
    /// CID of the operation.
    pub cid: Cid,
    /// When the directory accepted it.
    pub created_at: DateTime<Utc>,
}

impl<'de> Deserialize<'de> for SequencedOperation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        struct Wire {
            seq: u64,
            did: String,
            operation: Operation,
            cid: String,
            #[serde(rename = "createdAt")]
            created_at: String,
            #[serde(rename = "type")]
            kind: String,
        }
        let wire = Wire::deserialize(deserializer)?;
        if wire.kind != "sequenced_op" {
            return Err(D::Error::custom(format!(
                "expected type sequenced_op, got {:?}",
                wire.kind
            )));
        }
        let cid = atp_crypto::parse_cid(&wire.cid).map_err(D::Error::custom)?;
        let created_at = DateTime::parse_from_rfc3339(&wire.created_at)
            .map_err(|e| D::Error::custom(format!("createdAt: {e}")))?
            .with_timezone(&Utc);
        Ok(SequencedOperation {
            seq: wire.seq,
            did: wire.did,
            operation: wire.operation,
            cid,
            created_at,
        })
    }
}

/// An answer of the directory: status and body.
struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl PlcClient {
    /// A client for the directory at `base_url` (`http://` or `https://`,
    /// with or without a trailing `/`). HTTPS uses the Mozilla root
    /// certificates bundled with the crate.
    pub fn new(base_url: &str) -> Result<Self, Error> {
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Http(format!("cannot set up TLS: {e}")))?;
        Self::with_tls(base_url, tls)
    }

    /// A client that trusts exactly the given root certificates (DER
    /// encoded) instead of the bundled Mozilla set: for a directory behind
    /// a private certificate authority.
    pub fn with_root_certificates(base_url: &str, der_roots: &[&[u8]]) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for der in der_roots {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
                .map_err(|e| Error::Http(format!("unusable root certificate: {e}")))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Http(format!("cannot set up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tls = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config);
        Self::with_tls(base_url, tls)
    }

    fn with_tls(
        base_url: &str,
        tls: hyper_rustls::HttpsConnectorBuilder<hyper_rustls::builderstates::WantsSchemes>,
    ) -> Result<Self, Error> {
        let trimmed = base_url.trim_end_matches('/');
        let uri: Uri = trimmed
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{base_url}: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::InvalidUrl(format!(
                    "{base_url}: the directory URL must start with http:// or https://"
                )))
            }
        }
        if uri.host().is_none() {
            return Err(Error::InvalidUrl(format!("{base_url}: no host")));
        }
        if uri.query().is_some() {
            return Err(Error::InvalidUrl(format!(
                "{base_url}: the directory URL must not have a query"
            )));
        }
        let tls = tls.https_or_http().enable_http1().build();
        let http = Client::builder(TokioExecutor::new()).build(tls);
        Ok(PlcClient {
            base_url: trimmed.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            http,
        })
    }

    /// The same client with another per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The directory's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Submits a signed operation (genesis, update or tombstone) for `did`
    /// (`POST /:did`). The directory answers 200 once it has stored it.
    pub async fn submit(&self, did: &str, op: &Operation) -> Result<(), Error> {
        self.submit_json(did, op).await
    }

    /// Submits any JSON value as an operation for `did`: for tools and tests
    /// that need to send what [`Operation`] cannot represent.
    pub async fn submit_json<T: Serialize + ?Sized>(&self, did: &str, op: &T) -> Result<(), Error> {
        let body = serde_json::to_vec(op)
            .map_err(|e| Error::Http(format!("cannot serialize the operation: {e}")))?;
        let url = self.did_url(did, "");
        self.request(Method::POST, &url, Some(body)).await?;
        Ok(())
    }

    /// The DID document (`GET /:did`).
    pub async fn resolve(&self, did: &str) -> Result<serde_json::Value, Error> {
        self.get_json(&self.did_url(did, "")).await
    }

    /// The document data: keys, handles and services (`GET /:did/data`).
    pub async fn data(&self, did: &str) -> Result<serde_json::Value, Error> {
        self.get_json(&self.did_url(did, "/data")).await
    }

    /// The operations in effect, oldest first (`GET /:did/log`).
    pub async fn log(&self, did: &str) -> Result<Vec<Operation>, Error> {
        self.get_json(&self.did_url(did, "/log")).await
    }

    /// Every operation ever accepted for the DID, nullified ones included,
    /// with CIDs and acceptance times (`GET /:did/log/audit`).
    pub async fn audit_log(&self, did: &str) -> Result<Vec<IndexedOperation>, Error> {
        self.get_json(&self.did_url(did, "/log/audit")).await
    }

    /// The most recent operation in effect (`GET /:did/log/last`).
    pub async fn last_op(&self, did: &str) -> Result<Operation, Error> {
        self.get_json(&self.did_url(did, "/log/last")).await
    }

    /// One page of the directory's export (`GET /export`): up to `count`
    /// operations (the directory caps it at 1000) accepted strictly after the
    /// `after` timestamp, oldest first. Pass the `createdAt` of the last
    /// entry of a page as `after` to get the next page.
    pub async fn export(
        &self,
        after: Option<&str>,
        count: Option<usize>,
    ) -> Result<Vec<IndexedOperation>, Error> {
        self.export_lines(after, count).await
    }

    /// One page of the export by sequence number (`GET /export?after=<n>`,
    /// offered by newer directories): up to `count` operations whose
    /// sequence number is above `after`, in order. Pass the `seq` of the
    /// last entry as `after` to get the next page; start from 0.
    pub async fn export_sequenced(
        &self,
        after: u64,
        count: Option<usize>,
    ) -> Result<Vec<SequencedOperation>, Error> {
        self.export_lines(Some(&after.to_string()), count).await
    }

    async fn export_lines<T: DeserializeOwned>(
        &self,
        after: Option<&str>,
        count: Option<usize>,
    ) -> Result<Vec<T>, Error> {
        let mut url = format!("{}/export", self.base_url);
        let mut sep = '?';
        if let Some(count) = count {
            url.push_str(&format!("{sep}count={count}"));
            sep = '&';
        }
        if let Some(after) = after {
            url.push_str(&format!("{sep}after={}", encode_component(after)));
        }
        let answer = self.request(Method::GET, &url, None).await?;
        let text = std::str::from_utf8(&answer.body)
            .map_err(|_| Error::Http(format!("{url}: the export is not UTF-8")))?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| {
                    Error::Http(format!("{url}: unexpected export line ({e}): {line}"))
                })
            })
            .collect()
    }

    /// The directory's health answer (`GET /_health`), e.g. `{"version": ...}`.
    pub async fn health(&self) -> Result<serde_json::Value, Error> {
        self.get_json(&format!("{}/_health", self.base_url)).await
    }

    fn did_url(&self, did: &str, suffix: &str) -> String {
        format!("{}/{}{suffix}", self.base_url, encode_component(did))
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        let answer = self.request(Method::GET, url, None).await?;
        serde_json::from_slice(&answer.body).map_err(|e| {
            Error::Http(format!(
                "{url}: unexpected answer ({e}): {}",
                quote_body(&answer.body)
            ))
        })
    }

    /// Sends a request; a status other than 2xx becomes
    /// [`Error::Directory`].
    async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("atp-did-plc/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::Http(format!("{method} {url}: {e}")))?;

        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| Error::Http(format!("{method} {url}: {}", error_chain(&e))))?;
            let status = response.status();
            let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES);
            let body = limited
                .collect()
                .await
                .map_err(|e| Error::Http(format!("{method} {url}: reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, Error>(Answer { status, body })
        };
        let answer = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                Error::Http(format!(
                    "{method} {url}: no answer within {} s",
                    self.timeout.as_secs_f32()
                ))
            })??;
        if answer.status.is_success() {
            Ok(answer)
        } else {
            Err(Error::Directory {
                status: answer.status.as_u16(),
                message: directory_message(answer.status, &answer.body),
            })
        }
    }
}

/// The directory's explanation of a refusal: the `message` (or `error`)
/// field of a JSON body, else the body itself, else the status's reason.
fn directory_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for field in ["message", "error"] {
            if let Some(serde_json::Value::String(text)) = map.get(field) {
                return text.clone();
            }
        }
    }
    let quoted = quote_body(body);
    if quoted.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("no explanation given")
            .to_owned()
    } else {
        quoted
    }
}

/// The body as text, trimmed and cut to a readable length.
fn quote_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The error and its sources, joined, since hyper's top-level error alone
/// often says only "client error (Connect)".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes a path segment or query value like JavaScript's
/// `encodeURIComponent` (only `A-Z a-z 0-9 - _ . ! ~ * ' ( )` stay as is).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_encode_uri_component() {
        assert_eq!(encode_component("did:plc:abc"), "did%3Aplc%3Aabc");
        assert_eq!(
            encode_component("2024-01-01T00:00:00.000+01:00"),
            "2024-01-01T00%3A00%3A00.000%2B01%3A00"
        );
        assert_eq!(encode_component("a/b é"), "a%2Fb%20%C3%A9");
    }

    #[test]
    fn directory_message_prefers_the_json_message() {
        let msg = directory_message(
            StatusCode::BAD_REQUEST,
            br#"{"message":"Invalid signature"}"#,
        );
        assert_eq!(msg, "Invalid signature");
        let msg = directory_message(StatusCode::BAD_GATEWAY, b"<html>upstream down</html>");
        assert_eq!(msg, "<html>upstream down</html>");
        let msg = directory_message(StatusCode::BAD_REQUEST, b"");
        assert_eq!(msg, "Bad Request");
    }

    #[test]
    fn rejects_bad_base_urls() {
        assert!(matches!(
            PlcClient::new("ftp://x"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            PlcClient::new("not a url"),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            PlcClient::new("http://x/?a=b"),
            Err(Error::InvalidUrl(_))
        ));
        let client = PlcClient::new("https://plc.directory/").unwrap();
        assert_eq!(client.base_url(), "https://plc.directory");
        assert_eq!(
            client.did_url("did:plc:abc", "/log"),
            "https://plc.directory/did%3Aplc%3Aabc/log"
        );
    }
}
