//! The fallback route: calls of methods the router does not serve.
//!
//! The fallback handler gets the request as it came: head (with
//! [`RequestHead::nsid`] set to the called method), raw query parameters
//! and the unread body, under the server-wide body size limit. No
//! authenticator runs and no lexicon check of parameters or input is done
//! (the fallback usually forwards to a service that checks them itself).
//! Before the handler runs, as the reference server does:
//!
//! * the global rate limits are charged;
//! * a method the router's lexicon catalog defines must be called with its
//!   verb (400 `InvalidRequest`, "Incorrect HTTP method (POST) expected
//!   GET");
//! * only `GET`, `HEAD` and `POST` are accepted (400 `InvalidRequest`,
//!   "XRPC requests only supports GET and POST").

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Method;

use super::{QueryParams, RateLimiter, RequestHead, ServerConfig, XrpcError, XrpcRequest};
use crate::lexicon::{LexDef, Lexicons};

/// Checks a call bound for the fallback and builds the handler's request.
pub(super) fn prepare(
    head: RequestHead,
    params: QueryParams,
    body: Incoming,
    lexicons: Option<&Lexicons>,
    global_limits: &[Arc<RateLimiter>],
    config: &ServerConfig,
) -> Result<XrpcRequest, XrpcError> {
    for limiter in global_limits {
        let key = limiter.key_of(&head, None);
        limiter.consume(&key, 1)?;
    }
    let method = &head.method;
    if let Some(expected) = lexicons.and_then(|lexicons| expected_verb(lexicons, &head.nsid)) {
        let matches = match expected {
            "POST" => method == Method::POST,
            _ => method == Method::GET || method == Method::HEAD,
        };
        if !matches {
            return Err(XrpcError::invalid_request(format!(
                "Incorrect HTTP method ({method}) expected {expected}"
            )));
        }
    }
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return Err(XrpcError::invalid_request(
            "XRPC requests only supports GET and POST",
        ));
    }
    Ok(XrpcRequest::with_default_limits(head, params, body, config))
}

/// The HTTP verb the catalog's definition of `nsid` calls for, if it has
/// one.
fn expected_verb(lexicons: &Lexicons, nsid: &str) -> Option<&'static str> {
    match lexicons.get_def(nsid)? {
        LexDef::Procedure(_) => Some("POST"),
        LexDef::Query(_) => Some("GET"),
        _ => None,
    }
}
