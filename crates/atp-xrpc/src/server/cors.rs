//! CORS as the reference PDS answers it: any origin, preflights answered
//! with 204, the requested headers allowed, a day of caching.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use super::response::{empty, ResponseBody};

/// Methods announced in a preflight answer.
const ALLOWED_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

/// Seconds a browser may cache a preflight answer (one day).
const MAX_AGE: &str = "86400";

/// Headers a browser script may read from a response.
const EXPOSED_HEADERS: &str =
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy";

/// Whether a request is a CORS preflight.
pub(crate) fn is_preflight(method: &hyper::Method, headers: &HeaderMap) -> bool {
    method == hyper::Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Inserts fixed header values.
fn insert_static(headers: &mut HeaderMap, fixed: &[(header::HeaderName, &'static str)]) {
    for (name, value) in fixed {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
}

/// The answer to a preflight.
pub(crate) fn preflight(request_headers: &HeaderMap) -> Response<ResponseBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    insert_static(
        headers,
        &[
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS),
        ],
    );
    if let Some(requested) = request_headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        insert_static(headers, &[(header::VARY, "Access-Control-Request-Headers")]);
    }
    insert_static(
        headers,
        &[
            (header::ACCESS_CONTROL_MAX_AGE, MAX_AGE),
            (header::CONTENT_LENGTH, "0"),
        ],
    );
    response
}

/// Adds the CORS headers of an ordinary response.
pub(crate) fn decorate(response: &mut Response<ResponseBody>) {
    insert_static(
        response.headers_mut(),
        &[
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS),
        ],
    );
}
