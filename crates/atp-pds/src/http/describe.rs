//! `com.atproto.server.describeServer`.

use super::with_state;
use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcResponse};
use serde_json::{json, Map, Value};

use super::state::PdsState;

/// The method's NSID.
pub const NSID: &str = "com.atproto.server.describeServer";

/// The answer: `did`, `availableUserDomains`, `inviteCodeRequired`,
/// `links` and `contact` (unset links and contact fields omitted, as the
/// reference omits them).
pub fn describe_server(state: &PdsState) -> Value {
    let config = state.storage.config();
    let mut links = Map::new();
    if let Some(url) = &state.info.privacy_policy {
        links.insert("privacyPolicy".to_owned(), json!(url));
    }
    if let Some(url) = &state.info.terms_of_service {
        links.insert("termsOfService".to_owned(), json!(url));
    }
    let mut contact = Map::new();
    if let Some(email) = &state.info.contact_email {
        contact.insert("email".to_owned(), json!(email));
    }
    json!({
        "did": state.info.did,
        "availableUserDomains": config.handle_domains,
        "inviteCodeRequired": config.invite_required,
        "links": links,
        "contact": contact,
    })
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    router.query(
        NSID,
        with_state(state, |state, _req| async move {
            XrpcResponse::json(&describe_server(&state))
        }),
    )?;
    Ok(())
}
