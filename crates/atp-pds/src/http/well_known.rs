//! Plain paths: `/.well-known/atproto-did`, `/.well-known/did.json`,
//! `/xrpc/_health`, `/robots.txt` and `/`.
//!
//! * `/.well-known/atproto-did` answers the HTTPS handle resolution method
//!   for the accounts of this PDS: the DID (text/plain) of the active
//!   account whose handle is the request's host, when that host is under a
//!   service handle domain; 404 `User not found` otherwise (so one wildcard
//!   DNS record and certificate can serve every user's handle).
//! * `/.well-known/did.json` is the service's `did:web` document with its
//!   `#atproto_pds` endpoint, served only when the service DID is the
//!   `did:web` of the public URL's host; 404 otherwise.
//! * `/xrpc/_health` reports the version (503 when the account database
//!   cannot be read).

use std::sync::Arc;

use atp_did_plc::builder::{ATPROTO_PDS_SERVICE, ATPROTO_PDS_TYPE};
use atp_xrpc::server::{Router, XrpcError, XrpcRequest, XrpcResponse};
use hyper::StatusCode;
use serde_json::json;

use super::identity::is_service_handle;
use super::state::PdsState;
use super::with_state;
use crate::account::Account;
use crate::db::run_blocking;

/// The version `/xrpc/_health` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The text served at `/`.
pub const BANNER: &str = "\
This is an AT Protocol Personal Data Server (PDS).

It hosts the repositories of its accounts and speaks XRPC: the methods are
under /xrpc/ (for example /xrpc/com.atproto.server.describeServer).

Protocol documentation: https://atproto.com
";

/// The text served at `/robots.txt`.
pub const ROBOTS_TXT: &str = "# Crawling the public API is allowed\nUser-agent: *\nAllow: /\n";

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.path("/.well-known/atproto-did", with_state(state, atproto_did));
    router.path("/.well-known/did.json", with_state(state, did_document));
    router.path("/xrpc/_health", with_state(state, health));
    router.path("/robots.txt", |_req| async {
        Ok(XrpcResponse::bytes(TEXT_PLAIN, ROBOTS_TXT))
    });
    router.path("/", |_req| async {
        Ok(XrpcResponse::bytes(TEXT_PLAIN, BANNER))
    });
    Ok(())
}

/// The host a request was sent to, lower case, without a port: the `Host`
/// header (HTTP/1.1), else the authority of the request target.
pub fn request_host(req: &XrpcRequest) -> Option<String> {
    let from_header = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let host = from_header.or_else(|| req.head().uri.host().map(str::to_owned))?;
    Some(strip_port(host.trim()).to_ascii_lowercase())
}

/// `host` without a trailing `:port` (an IPv6 literal keeps its brackets).
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn plain(status: StatusCode, text: &'static str) -> XrpcResponse {
    XrpcResponse::bytes(TEXT_PLAIN, text).with_status(status)
}

async fn atproto_did(state: Arc<PdsState>, req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let not_found = || plain(StatusCode::NOT_FOUND, "User not found");
    let Some(handle) = request_host(&req) else {
        return Ok(not_found());
    };
    if !is_service_handle(&handle, &state.storage.config().handle_domains) {
        return Ok(not_found());
    }
    let accounts = Arc::clone(state.storage.accounts());
    let found = match run_blocking(move || accounts.account_by_handle(&handle)).await {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "account lookup for /.well-known/atproto-did failed");
            return Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            ));
        }
    };
    match found.filter(Account::is_active) {
        Some(account) => Ok(XrpcResponse::bytes(TEXT_PLAIN, account.did)),
        None => Ok(not_found()),
    }
}

/// The origin (`scheme://host[:port]`) of a URL, and its host.
fn origin_and_host(url: &str) -> Option<(String, String)> {
    let uri: hyper::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?;
    let authority = uri.authority()?;
    Some((
        format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()),
        authority.as_str().to_ascii_lowercase(),
    ))
}

/// The `did:web` naming `authority` (`host` or `host:port`, the port's
/// colon percent-encoded as the did:web method requires).
fn did_web_of(authority: &str) -> String {
    format!("did:web:{}", authority.replace(':', "%3A"))
}

async fn did_document(state: Arc<PdsState>, _req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let not_found = || plain(StatusCode::NOT_FOUND, "Not Found");
    let did = state.info.did.as_str();
    let Some((origin, authority)) = origin_and_host(&state.storage.config().public_url) else {
        return Ok(not_found());
    };
    let bare_host = strip_port(&authority);
    if did != did_web_of(&authority) && did != did_web_of(bare_host) {
        return Ok(not_found());
    }
    XrpcResponse::json(&json!({
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": did,
        "service": [{
            "id": format!("#{ATPROTO_PDS_SERVICE}"),
            "type": ATPROTO_PDS_TYPE,
            "serviceEndpoint": origin,
        }],
    }))
}

async fn health(state: Arc<PdsState>, _req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    let accounts = Arc::clone(state.storage.accounts());
    let readable = run_blocking(move || {
        accounts
            .database()
            .read(|tx| Ok(tx.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
    })
    .await;
    match readable {
        Ok(_) => XrpcResponse::json(&json!({ "version": VERSION })),
        Err(err) => {
            tracing::error!(error = %err, "health check failed");
            Ok(
                XrpcResponse::json(&json!({ "version": VERSION, "error": "Service Unavailable" }))?
                    .with_status(StatusCode::SERVICE_UNAVAILABLE),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("alice.test:2583"), "alice.test");
        assert_eq!(strip_port("alice.test"), "alice.test");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn did_web_encodes_the_port() {
        assert_eq!(did_web_of("pds.example.com"), "did:web:pds.example.com");
        assert_eq!(did_web_of("localhost:2583"), "did:web:localhost%3A2583");
        assert_eq!(
            origin_and_host("https://PDS.example.com/"),
            Some((
                "https://pds.example.com".to_owned(),
                "pds.example.com".to_owned()
            ))
        );
    }
}
