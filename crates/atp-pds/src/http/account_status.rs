//! `com.atproto.server` deactivateAccount, activateAccount, checkAccountStatus, requestAccountDelete, deleteAccount and getServiceAuth.

use std::sync::Arc;

use atp_xrpc::server::Router;

use super::state::PdsState;

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    let _ = (router, state);
    Ok(())
}
