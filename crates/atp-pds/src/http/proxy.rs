//! Forwarding methods the PDS does not serve to the AppView, or to the
//! service an `atproto-proxy` header names (the reference PDS's
//! "pipethrough").
//!
//! The router's fallback ([`atp_xrpc::server::Router::fallback`]) gets
//! every call of a method without a route. A call is forwarded when
//!
//! * it has an `atproto-proxy: <did>#<service id>` header: the service
//!   endpoint with that id in the DID's document is the target (did:plc
//!   through `state.directory`, did:web from
//!   `https://<host>/.well-known/did.json`, plain http for `localhost`; the
//!   configured AppView's own `<did>#bsky_appview` goes straight to its
//!   URL), whatever the method; or
//! * the method is in `app.bsky.*` or `chat.bsky.*`: the target is
//!   `state.appview`. Without an AppView the answer is the reference's 400
//!   `InvalidRequest` "No service configured for `<method>`".
//!
//! Other methods are answered 501 `MethodNotImplemented`. Account
//! management methods are never forwarded (400 `InvalidToken`, "Bad token
//! method", as in the reference).
//!
//! The forwarded request keeps the method, path and query string, the body
//! with its `Content-Type` and `Content-Encoding`, and the headers
//! `Accept-Encoding`, `Accept-Language`, `atproto-accept-labelers` and
//! `x-bsky-topics`. A caller with a session token is vouched for with
//! `Authorization: Bearer <service JWT>` signed by the caller's own account
//! key (`iss` the caller's DID, `aud` the target's DID, `lxm` the method,
//! 60 seconds). The `chat.bsky.*` methods need the main password or a
//! privileged app password, as in the reference.
//!
//! Calls that reach the fallback need a session, as in the reference's
//! proxy (it lets no method through without one): a call without
//! `Authorization` is refused with 401 `AuthMissing` once its target is
//! known (so a method with no service configured is still 400, and one
//! the PDS does not forward still 501), an invalid token as the PDS's own
//! methods refuse it, and nothing reaches the upstream. Handlers of the
//! PDS's own methods that forward a call whose auth is optional (the
//! reference's `pipethrough` without an issuer, e.g. `getRecord` of a repo
//! hosted elsewhere) use [`forward`], which passes an anonymous call on
//! without a token.
//!
//! The answer comes back with its status, body and `Content-Type`,
//! `Content-Encoding`, `Content-Language`, `atproto-repo-rev`,
//! `atproto-content-labelers` and `Retry-After`. An upstream error becomes
//! an XRPC error with the upstream's status (500 becomes 502
//! `UpstreamFailure`), name and message; an unreachable upstream is 502
//! `UpstreamFailure` "Upstream service unreachable".
//!
//! Outside development mode only `https` targets are contacted (the
//! reference's SSRF guard; it also refuses non-unicast addresses, which is
//! not done here).
//!
//! **Read-after-write is not done.** The reference PDS rewrites some
//! AppView answers (`getProfile`, `getPostThread`, `getTimeline`,
//! `getAuthorFeed`, `getActorLikes`, ...) to include the caller's own
//! records written since the AppView's `atproto-repo-rev`, so that a user
//! sees their new post or profile change before the AppView has indexed
//! it. This PDS passes the AppView's answer through unchanged (the
//! `atproto-repo-rev` header included), so a just-written record may be
//! missing from such views for as long as the AppView lags.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use atp_xrpc::auth::{create_service_jwt, AuthScope, ServiceJwtParams};
use atp_xrpc::server::{error_name_and_message, Router, XrpcError, XrpcRequest, XrpcResponse};
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;

use super::auth::{require_access, Access};
use super::errors::to_xrpc;
use super::state::PdsState;
use super::with_state;
use crate::db::run_blocking;

/// The request header naming the service to forward to.
pub const PROXY_HEADER: &str = "atproto-proxy";

/// The service id of the AppView in DID documents.
pub const APPVIEW_SERVICE_ID: &str = "bsky_appview";

/// How long the upstream may take to answer (headers), and to resolve a
/// did:web document.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest did:web document read.
const MAX_DID_DOC_BYTES: usize = 256 * 1024;

/// Request headers passed on as they are.
const FORWARDED_REQUEST_HEADERS: [&str; 3] = [
    "accept-language",
    "atproto-accept-labelers",
    "x-bsky-topics",
];

/// Body headers passed on with a body.
const FORWARDED_BODY_HEADERS: [&str; 2] = ["content-type", "content-encoding"];

/// Response headers passed back.
const FORWARDED_RESPONSE_HEADERS: [&str; 6] = [
    "content-encoding",
    "content-language",
    "atproto-repo-rev",
    "atproto-content-labelers",
    "retry-after",
    "content-type",
];

/// Account management methods that are never forwarded (the same list
/// `getServiceAuth` refuses to sign for).
use super::account_status::PROTECTED_METHODS;

/// Where a call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyTarget {
    /// Base URL of the service.
    pub url: String,
    /// The service's DID (the service JWT's `aud`).
    pub did: String,
}

/// The `atproto-proxy` header of a request, if it has a readable one.
pub fn proxy_header(req: &XrpcRequest) -> Option<String> {
    req.headers()
        .get(PROXY_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// Splits an `atproto-proxy` value into DID and service id, refused with
/// the reference's messages.
pub fn parse_proxy_header(value: &str) -> Result<(&str, &str), XrpcError> {
    let Some(hash) = value.find('#') else {
        return Err(XrpcError::invalid_request(
            "no service id specified in proxy header",
        ));
    };
    if hash == 0 {
        return Err(XrpcError::invalid_request(
            "no did specified in proxy header",
        ));
    }
    if hash == value.len() - 1 {
        return Err(XrpcError::invalid_request(
            "no service id specified in proxy header",
        ));
    }
    if value[hash + 1..].contains('#') {
        return Err(XrpcError::invalid_request("invalid proxy header format"));
    }
    if value.contains(' ') {
        return Err(XrpcError::invalid_request(
            "proxy header cannot contain spaces",
        ));
    }
    Ok((&value[..hash], &value[hash + 1..]))
}

/// The endpoint of service `id` (`#id` or `<did>#id`) in DID document
/// `doc`.
pub fn service_endpoint(doc: &serde_json::Value, did: &str, id: &str) -> Option<String> {
    let short = format!("#{id}");
    let long = format!("{did}#{id}");
    doc.get("service")?
        .as_array()?
        .iter()
        .find(|service| {
            service
                .get("id")
                .and_then(|v| v.as_str())
                .is_some_and(|sid| sid == short || sid == long)
        })?
        .get("serviceEndpoint")?
        .as_str()
        .map(str::to_owned)
}

/// The document URL of a did:web (`https://<host>/.well-known/did.json`,
/// `http` for `localhost`); DIDs with a path are not supported (as in the
/// reference resolver).
pub fn did_web_document_url(did: &str) -> Option<String> {
    let id = did.strip_prefix("did:web:")?;
    if id.is_empty() || id.contains(':') {
        return None;
    }
    let host = id.replace("%3A", ":").replace("%3a", ":");
    if host.contains(['/', '?', '#', '@', '%']) {
        return None;
    }
    let hostname = host.split(':').next().unwrap_or("");
    let scheme = if hostname == "localhost" {
        "http"
    } else {
        "https"
    };
    Some(format!("{scheme}://{host}/.well-known/did.json"))
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The shared outgoing HTTP client (HTTP/1, rustls with the Mozilla
/// roots).
fn http_client() -> Result<&'static HttpClient, XrpcError> {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(XrpcError::internal)?
        .https_or_http()
        .enable_http1()
        .build();
    let client = Client::builder(TokioExecutor::new()).build(connector);
    Ok(CLIENT.get_or_init(|| client))
}

/// Resolves host names for requests whose target a DID document chose:
/// only the public addresses of a name are returned (none: an error), so
/// the connection goes to an address that was checked, even if the name's
/// answers change between a check and the connection.
#[derive(Clone, Copy, Debug, Default)]
struct PublicAddressResolver;

impl tower_service::Service<Name> for PublicAddressResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found
                .filter(|addr| crate::handle_resolver::is_public_address(addr.ip()))
                .collect();
            if public.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} has no public address", name.as_str()),
                ));
            }
            Ok(public.into_iter())
        })
    }
}

type PublicHttpClient = Client<HttpsConnector<HttpConnector<PublicAddressResolver>>, Full<Bytes>>;

/// The outgoing HTTP client for targets chosen by DID documents outside
/// development mode: it connects to public addresses only.
fn public_http_client() -> Result<&'static PublicHttpClient, XrpcError> {
    static CLIENT: OnceLock<PublicHttpClient> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client);
    }
    let mut http = HttpConnector::new_with_resolver(PublicAddressResolver);
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(XrpcError::internal)?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    Ok(CLIENT.get_or_init(|| client))
}

/// Sends `request` with the public-addresses-only client when `public_only`
/// (a target a DID document chose, outside development mode), else with
/// the ordinary client.
fn request_with(
    public_only: bool,
    request: Request<Full<Bytes>>,
) -> Result<ResponseFuture, XrpcError> {
    Ok(if public_only {
        public_http_client()?.request(request)
    } else {
        http_client()?.request(request)
    })
}

/// Resolves `did`'s document and finds service `id` in it.
async fn resolve_service(state: &PdsState, did: &str, id: &str) -> Result<String, XrpcError> {
    let unresolved = || XrpcError::invalid_request("could not resolve proxy did");
    let doc = if did.starts_with("did:plc:") {
        state.directory.resolve(did).await.map_err(|err| {
            tracing::debug!(%did, error = %err, "proxy DID resolution failed");
            unresolved()
        })?
    } else if did.starts_with("did:web:") {
        let url = did_web_document_url(did).ok_or_else(unresolved)?;
        fetch_did_web(state, &url).await.map_err(|err| {
            tracing::debug!(%did, error = %err.message(), "proxy DID resolution failed");
            unresolved()
        })?
    } else {
        return Err(unresolved());
    };
    if doc.get("id").and_then(|v| v.as_str()) != Some(did) {
        return Err(unresolved());
    }
    service_endpoint(&doc, did, id)
        .ok_or_else(|| XrpcError::invalid_request("could not resolve proxy did service url"))
}

async fn fetch_did_web(state: &PdsState, url: &str) -> Result<serde_json::Value, XrpcError> {
    check_target_url(state, url)?;
    ensure_public_target(state, url).await?;
    let request = Request::get(url)
        .header("accept", "application/did+ld+json, application/json")
        .body(Full::new(Bytes::new()))
        .map_err(XrpcError::internal)?;
    let pending = request_with(!state.dev_mode, request)?;
    let exchange = async {
        let response = pending
            .await
            .map_err(|e| XrpcError::internal(format!("fetching {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(XrpcError::internal(format!(
                "fetching {url}: status {}",
                response.status()
            )));
        }
        let bytes = Limited::new(response.into_body(), MAX_DID_DOC_BYTES)
            .collect()
            .await
            .map_err(|e| XrpcError::internal(format!("reading {url}: {e}")))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(XrpcError::internal)
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .map_err(|_| XrpcError::internal(format!("fetching {url}: timed out")))?
}

/// Outside development mode, a URL taken from a DID document (a did:web
/// document's host, a service endpoint) must name a public address: an
/// IP literal is checked as it is, a host name must resolve (within
/// [`UPSTREAM_TIMEOUT`]) to public addresses only (see
/// [`crate::handle_resolver::is_public_address`]), so a DID document cannot
/// point the server at its own network. The operator's AppView is not
/// checked. The request itself then goes through
/// [`public_http_client`], which connects only to public addresses of the
/// name (no DNS rebinding between this check and the connection).
async fn ensure_public_target(state: &PdsState, url: &str) -> Result<(), XrpcError> {
    if state.dev_mode {
        return Ok(());
    }
    let forbidden =
        || XrpcError::invalid_request(format!("Forbidden address for proxied request: {url}"));
    let parsed = url::Url::parse(url).map_err(|_| forbidden())?;
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![ip.into()],
        Some(url::Host::Ipv6(ip)) => vec![ip.into()],
        Some(url::Host::Domain(host)) => {
            let lookup = tokio::net::lookup_host((host.to_owned(), port));
            match tokio::time::timeout(UPSTREAM_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.map(|addr| addr.ip()).collect(),
                _ => return Err(forbidden()),
            }
        }
        None => return Err(forbidden()),
    };
    if addresses.is_empty()
        || !addresses
            .iter()
            .all(|ip| crate::handle_resolver::is_public_address(*ip))
    {
        return Err(forbidden());
    }
    Ok(())
}

/// Outside development mode, only `https` URLs are contacted.
fn check_target_url(state: &PdsState, url: &str) -> Result<(), XrpcError> {
    if state.dev_mode || url.starts_with("https://") {
        return Ok(());
    }
    Err(XrpcError::invalid_request(format!(
        "Forbidden protocol for proxied request: {url}"
    )))
}

/// The target of a call of `nsid`: from its `atproto-proxy` header, or
/// the AppView for `app.bsky.*` and `chat.bsky.*`; `None` when the call
/// is not to be forwarded.
pub async fn target_of(
    state: &PdsState,
    req: &XrpcRequest,
    nsid: &str,
) -> Result<Option<ProxyTarget>, XrpcError> {
    if let Some(header) = proxy_header(req) {
        let (did, id) = parse_proxy_header(&header)?;
        if let Some(appview) = &state.appview {
            if did == appview.did && id == APPVIEW_SERVICE_ID {
                return Ok(Some(ProxyTarget {
                    url: appview.url.clone(),
                    did: appview.did.clone(),
                }));
            }
        }
        let url = resolve_service(state, did, id).await?;
        check_target_url(state, &url)?;
        ensure_public_target(state, &url).await?;
        return Ok(Some(ProxyTarget {
            url,
            did: did.to_owned(),
        }));
    }
    if !(nsid.starts_with("app.bsky.") || nsid.starts_with("chat.bsky.")) {
        return Ok(None);
    }
    match &state.appview {
        Some(appview) => Ok(Some(ProxyTarget {
            url: appview.url.clone(),
            did: appview.did.clone(),
        })),
        None => Err(XrpcError::invalid_request(format!(
            "No service configured for {nsid}"
        ))),
    }
}

/// A service JWT for `did` calling `aud`'s method `lxm`, signed with the
/// account's key.
async fn service_token(
    state: &PdsState,
    did: &str,
    aud: &str,
    lxm: &str,
) -> Result<String, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let owner = did.to_owned();
    let key = run_blocking(move || actors.open(&owner)?.signing_key())
        .await
        .map_err(to_xrpc)?;
    create_service_jwt(&key, &ServiceJwtParams::new(did, aud, Some(lxm)))
        .map_err(XrpcError::internal)
}

/// Whether a forwarded call must come with a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CallerAuth {
    /// Refused with 401 `AuthMissing` without `Authorization` (the
    /// fallback, as the reference's proxy).
    Required,
    /// Passed on without a token when anonymous (a token given is still
    /// checked).
    Optional,
}

/// Forwards `req` to the service it is for (see the module docs) and
/// returns that service's answer; an anonymous call is passed on without
/// a token. Used by handlers whose own auth is optional, or which checked
/// it already, when an `atproto-proxy` header names another service.
pub async fn forward(state: &PdsState, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    forward_with(state, req, CallerAuth::Optional).await
}

async fn forward_with(
    state: &PdsState,
    req: XrpcRequest,
    auth: CallerAuth,
) -> Result<XrpcResponse, XrpcError> {
    let nsid = req.head().nsid.clone();
    if PROTECTED_METHODS
        .iter()
        .any(|m| m.eq_ignore_ascii_case(&nsid))
    {
        return Err(XrpcError::invalid_request("Bad token method").with_name("InvalidToken"));
    }
    let Some(target) = target_of(state, &req, &nsid).await? else {
        return Err(XrpcError::method_not_implemented());
    };
    check_target_url(state, &target.url)?;
    let caller = if auth == CallerAuth::Required || req.headers().contains_key(AUTHORIZATION) {
        Some(require_access(state, &req, Access::Standard)?)
    } else {
        None
    };
    if let Some(caller) = &caller {
        if nsid.starts_with("chat.bsky.") && caller.scope == AuthScope::AppPass {
            return Err(XrpcError::invalid_request("Bad token method").with_name("InvalidToken"));
        }
    }
    let authorization = match &caller {
        Some(caller) => Some(format!(
            "Bearer {}",
            service_token(state, &caller.did, &target.did, &nsid).await?
        )),
        None => None,
    };
    // The operator's AppView may be anywhere; other targets come from DID
    // documents.
    let public_only = !state.dev_mode
        && state
            .appview
            .as_ref()
            .map_or(true, |appview| appview.url != target.url);
    send(req, &target, authorization, public_only).await
}

/// Sends the request on to `target` and turns the answer into ours.
async fn send(
    mut req: XrpcRequest,
    target: &ProxyTarget,
    authorization: Option<String>,
    public_only: bool,
) -> Result<XrpcResponse, XrpcError> {
    let head = req.head().clone();
    let path = head
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| format!("/xrpc/{}", head.nsid));
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let has_body = head.method == Method::POST;
    let body = if has_body {
        req.bytes().await?
    } else {
        Bytes::new()
    };

    let mut builder = Request::builder().method(head.method.clone()).uri(&url);
    let accept_encoding = head
        .headers
        .get("accept-encoding")
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("identity"));
    builder = builder.header("accept-encoding", accept_encoding);
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = head.headers.get(name) {
            builder = builder.header(name, value);
        }
    }
    if has_body {
        for name in FORWARDED_BODY_HEADERS {
            if let Some(value) = head.headers.get(name) {
                builder = builder.header(name, value);
            }
        }
    }
    if let Some(authorization) = authorization {
        builder = builder.header(AUTHORIZATION, authorization);
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| XrpcError::invalid_request(format!("cannot forward the request: {e}")))?;

    let unreachable = |detail: String| {
        tracing::warn!(url = %url, error = %detail, "proxied request failed");
        XrpcError::new(StatusCode::BAD_GATEWAY, "Upstream service unreachable")
            .with_name("UpstreamFailure")
    };
    let response = tokio::time::timeout(UPSTREAM_TIMEOUT, request_with(public_only, request)?)
        .await
        .map_err(|_| unreachable("timed out".to_owned()))?
        .map_err(|e| unreachable(e.to_string()))?;

    let status = response.status();
    let headers = response.headers().clone();
    if status.as_u16() >= 400 {
        let bytes = Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        return Err(upstream_error(status, &headers, &bytes));
    }

    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let stream = response
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let mut answer = XrpcResponse::stream(&content_type, stream).with_status(status);
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(value) = headers.get(name) {
            answer = answer.with_header(HeaderName::from_static(name), value.clone());
        }
    }
    Ok(answer)
}

/// An upstream error answer as ours: its status (500 becoming 502
/// `UpstreamFailure`), and the name and message of its JSON envelope.
fn upstream_error(status: StatusCode, headers: &hyper::HeaderMap, body: &[u8]) -> XrpcError {
    let encoded = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
    let status = if status == StatusCode::INTERNAL_SERVER_ERROR {
        StatusCode::BAD_GATEWAY
    } else {
        status
    };
    let (error_name, message) = error_name_and_message(status, (!encoded).then_some(body));
    let mut error = XrpcError::new(status, message).with_name(error_name);
    for name in [
        "atproto-repo-rev",
        "atproto-content-labelers",
        "retry-after",
    ] {
        if let Some(value) = headers.get(name) {
            error = error.with_header(HeaderName::from_static(name), value.clone());
        }
    }
    error
}

async fn fallback(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    forward_with(&state, req, CallerAuth::Required).await
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.fallback(with_state(state, fallback));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_headers_as_the_reference_reads_them() {
        assert_eq!(
            parse_proxy_header("did:web:api.bsky.app#bsky_appview").unwrap(),
            ("did:web:api.bsky.app", "bsky_appview")
        );
        for (value, message) in [
            ("#bsky_appview", "no did specified in proxy header"),
            ("did:web:x", "no service id specified in proxy header"),
            ("did:web:x#", "no service id specified in proxy header"),
            ("did:web:x#a#b", "invalid proxy header format"),
            ("did:web:x #a", "proxy header cannot contain spaces"),
        ] {
            assert_eq!(parse_proxy_header(value).unwrap_err().message(), message);
        }
    }

    #[test]
    fn service_endpoints_by_id() {
        let doc = serde_json::json!({
            "id": "did:plc:abc",
            "service": [
                {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example"},
                {"id": "did:plc:abc#bsky_appview", "type": "BskyAppView", "serviceEndpoint": "https://api.example"}
            ]
        });
        assert_eq!(
            service_endpoint(&doc, "did:plc:abc", "atproto_pds").as_deref(),
            Some("https://pds.example")
        );
        assert_eq!(
            service_endpoint(&doc, "did:plc:abc", "bsky_appview").as_deref(),
            Some("https://api.example")
        );
        assert_eq!(service_endpoint(&doc, "did:plc:abc", "bsky_chat"), None);
    }

    #[test]
    fn did_web_document_urls() {
        assert_eq!(
            did_web_document_url("did:web:api.bsky.app").as_deref(),
            Some("https://api.bsky.app/.well-known/did.json")
        );
        assert_eq!(
            did_web_document_url("did:web:localhost%3A2584").as_deref(),
            Some("http://localhost:2584/.well-known/did.json")
        );
        assert_eq!(did_web_document_url("did:web:example.com:user"), None);
        assert_eq!(did_web_document_url("did:plc:abc"), None);
    }
}
