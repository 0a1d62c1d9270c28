//! Optional lexicon checking of requests before the handler runs, worded as
//! the reference server words it.
//!
//! - Query parameters are decoded by the lexicon's types
//!   ([`Lexicons::decode_params`]) and validated; a failure is 400
//!   `InvalidRequest` with the message `Error: Params must have the property
//!   "repo"` (the reference stringifies the validation error, prefix
//!   included).
//! - A procedure whose lexicon declares a JSON input with a schema has its
//!   body read, parsed and validated; a failure is 400 `InvalidRequest` with
//!   the bare message (`Input must have the property "text"`). The handler
//!   reads the same body afterwards with [`XrpcRequest::json`] or
//!   [`XrpcRequest::bytes`].
//!
//! Methods the catalog does not define are not checked.

use serde_json::{Map, Value};

use super::request::invalid_json_body;
use super::{QueryParams, XrpcError, XrpcRequest};
use crate::lexicon::{LexDef, Lexicons};

/// Decodes and validates the parameters of `nsid`; `None` when the catalog
/// has no definition of `nsid`.
pub(crate) fn check_params(
    lexicons: &Lexicons,
    nsid: &str,
    params: &QueryParams,
) -> Result<Option<Map<String, Value>>, XrpcError> {
    if !matches!(
        lexicons.get_def(nsid),
        Some(LexDef::Query(_) | LexDef::Procedure(_) | LexDef::Subscription(_))
    ) {
        return Ok(None);
    }
    let stringified =
        |err: crate::lexicon::LexiconError| XrpcError::invalid_request(format!("Error: {err}"));
    let decoded = lexicons
        .decode_params(nsid, params.pairs())
        .map_err(stringified)?;
    lexicons
        .validate_params(nsid, &decoded)
        .map_err(stringified)?;
    Ok(Some(decoded))
}

/// Reads and validates the JSON input of procedure `nsid` when its lexicon
/// declares one with a schema; the body stays available to the handler.
pub(crate) async fn check_input(
    lexicons: &Lexicons,
    nsid: &str,
    request: &mut XrpcRequest,
) -> Result<(), XrpcError> {
    let Some(LexDef::Procedure(def)) = lexicons.get_def(nsid) else {
        return Ok(());
    };
    let Some(input) = &def.input else {
        return Ok(());
    };
    if input.schema.is_none() || !input.encoding.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    if !request.announces_body() {
        return Err(XrpcError::invalid_request(
            "A request body is expected but none was provided",
        ));
    }
    request.expect_json_content_type()?;
    let bytes = request.buffer_body().await?;
    // An empty body (`Content-Length: 0`) is validated as `{}`, as the
    // reference's body parser hands it over.
    if bytes.is_empty() {
        return Ok(lexicons.validate_input(nsid, &Value::Object(Map::new()))?);
    }
    let body: Value = serde_json::from_slice(&bytes).map_err(invalid_json_body)?;
    lexicons.validate_input(nsid, &body)?;
    // The handler's `json()` deserializes this value instead of parsing
    // the bytes again.
    request.set_checked_json(body);
    Ok(())
}
