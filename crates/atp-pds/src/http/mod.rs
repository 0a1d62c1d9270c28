//! The PDS's XRPC surface, served by an [`atp_xrpc::server::Router`]: one
//! module per group of methods, each with a `register` function.
//!
//! Answers (shapes, error names and messages) follow the reference PDS.
//!
//! * [`state`]: what the handlers share ([`PdsState`]).
//! * [`describe`] serves `com.atproto.server.describeServer`.
//! * [`account`] serves `com.atproto.server.createAccount`.
//! * [`session`]: `createSession`, `getSession`, `refreshSession`,
//!   `deleteSession`.
//! * [`app_passwords`], [`invites`], [`account_status`] (deactivation,
//!   deletion, service auth), [`email`] (confirmation, update, password
//!   reset): the rest of `com.atproto.server`.
//! * [`admin`]: `com.atproto.admin`, behind the admin password.
//! * [`identity`]: `com.atproto.identity`; [`well_known`]: the plain
//!   paths (`/.well-known/atproto-did`, `did.json`, `_health`, `/`).
//! * [`repo`]: `com.atproto.repo` records; [`blob`]: blob upload and
//!   serving; [`sync`] and [`subscribe`]: `com.atproto.sync` and the
//!   firehose.
//! * [`preferences`]: `app.bsky.actor` preferences; [`proxy`]: forwards
//!   the rest to the AppView or the service an `atproto-proxy` header
//!   names.
//! * [`auth`]: who is calling; [`errors`]: storage errors as XRPC answers;
//!   [`rate_limits`]: the limits on logins, sign-ups, and the email,
//!   password-reset and handle methods.

pub mod account;
pub mod account_status;
pub mod admin;
pub mod app_passwords;
pub mod auth;
pub mod blob;
pub mod describe;
pub mod email;
pub mod errors;
pub mod identity;
pub mod invites;
pub mod preferences;
pub mod proxy;
pub mod rate_limits;
pub mod repo;
pub mod session;
pub mod state;
pub mod subscribe;
pub mod sync;
pub mod well_known;

use std::sync::Arc;

use atp_xrpc::lexicon::Lexicons;
use atp_xrpc::server::Router;

pub use state::{PdsState, ServiceEndpoint, ServiceInfo};

/// A router serving the PDS's methods on `state`, with parameters and JSON
/// inputs checked against the bundled lexicons first (as the reference
/// server does).
pub fn router(state: PdsState) -> Result<Router, atp_xrpc::Error> {
    let state = Arc::new(state);
    let mut router = Router::new();
    router.lexicons(Arc::new(Lexicons::bundled()));
    describe::register(&mut router, &state)?;
    account::register(&mut router, &state)?;
    session::register(&mut router, &state)?;
    app_passwords::register(&mut router, &state)?;
    invites::register(&mut router, &state)?;
    account_status::register(&mut router, &state)?;
    admin::register(&mut router, &state)?;
    email::register(&mut router, &state)?;
    identity::register(&mut router, &state)?;
    well_known::register(&mut router, &state)?;
    repo::register(&mut router, &state)?;
    blob::register(&mut router, &state)?;
    sync::register(&mut router, &state)?;
    subscribe::register(&mut router, &state)?;
    preferences::register(&mut router, &state)?;
    // Last: forwards whatever the PDS does not serve itself.
    proxy::register(&mut router, &state)?;
    if state.rate_limits {
        rate_limits::install(&mut router);
        rate_limits::install_per_account(&mut router, &state.tokens);
    }
    Ok(router)
}

/// Turns a handler that takes the shared state into the closure a route
/// wants: each request gets its own handle on the state.
pub(super) fn with_state<H, Fut>(
    state: &Arc<PdsState>,
    handler: H,
) -> impl Fn(atp_xrpc::server::XrpcRequest) -> Fut + Send + Sync + 'static
where
    H: Fn(Arc<PdsState>, atp_xrpc::server::XrpcRequest) -> Fut + Send + Sync + 'static,
{
    let state = Arc::clone(state);
    move |req| handler(Arc::clone(&state), req)
}
