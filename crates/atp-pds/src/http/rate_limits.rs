//! Rate limits with the reference PDS's budgets, per client address:
//!
//! * `com.atproto.server.createSession`: 30 calls per 5 minutes and 300
//!   per day;
//! * `com.atproto.server.createAccount`: 100 per 5 minutes;
//! * `com.atproto.server.requestPasswordReset`: 15 per hour and 50 per day;
//! * `com.atproto.server.resetPassword` and `deleteAccount`: 50 per 5
//!   minutes;
//!
//! and per account (the DID of the caller's session):
//!
//! * `com.atproto.identity.updateHandle`: 10 per 5 minutes and 50 per day;
//! * `com.atproto.server.requestEmailConfirmation`, `requestEmailUpdate`
//!   and `requestAccountDelete` (each mails a token): 5 per hour and 15
//!   per day each.
//!
//! The reference keys its login limits by identifier and client address;
//! here the key is the client address alone (a limiter sees the request
//! head, not the body), which is stricter for a client that tries many
//! identifiers. The client address is the connection's peer, or, when the
//! peer is a loopback or private address (a reverse proxy on the same
//! host or network), the last entry of `X-Forwarded-For`, the one that
//! proxy added. A per-account limit counts calls with a valid session
//! against its DID (the reference checks the session before the limit);
//! calls without one count against the client address (the method then
//! refuses them anyway).
//!
//! [`install`] and [`install_per_account`] add the limits when
//! [`PdsState::rate_limits`](crate::http::PdsState::rate_limits) is set
//! (on by default; the binary turns it off in development mode). A
//! refused call is answered 429 `RateLimitExceeded` with `RateLimit-*`
//! headers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use atp_xrpc::auth::SessionTokenAuthority;
use atp_xrpc::server::{bearer_token, Credentials, KeyFn, RateLimiter, RequestHead, Router};

use super::auth::Access;

/// Five minutes.
const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
/// An hour.
const HOUR: Duration = Duration::from_secs(60 * 60);
/// A day.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Logins allowed per client in five minutes.
pub const CREATE_SESSION_PER_5_MINUTES: u32 = 30;
/// Logins allowed per client in a day.
pub const CREATE_SESSION_PER_DAY: u32 = 300;
/// Sign-ups allowed per client in five minutes.
pub const CREATE_ACCOUNT_PER_5_MINUTES: u32 = 100;
/// Password reset emails a client may ask for in an hour.
pub const PASSWORD_RESET_REQUESTS_PER_HOUR: u32 = 15;
/// Password reset emails a client may ask for in a day.
pub const PASSWORD_RESET_REQUESTS_PER_DAY: u32 = 50;
/// Password resets (and account deletions) a client may try in five
/// minutes.
pub const TOKEN_REDEMPTIONS_PER_5_MINUTES: u32 = 50;
/// Handle changes an account may make in five minutes.
pub const UPDATE_HANDLE_PER_5_MINUTES: u32 = 10;
/// Handle changes an account may make in a day.
pub const UPDATE_HANDLE_PER_DAY: u32 = 50;
/// Emails with a token an account may ask for in an hour, per method.
pub const TOKEN_EMAILS_PER_HOUR: u32 = 5;
/// Emails with a token an account may ask for in a day, per method.
pub const TOKEN_EMAILS_PER_DAY: u32 = 15;

/// One budget of a method: the limiter's name, its points and window.
type Budget = (&'static str, u32, Duration);

/// The per-client budgets of each method.
const PER_CLIENT: &[(&str, &[Budget])] = &[
    (
        "com.atproto.server.createSession",
        &[
            (
                "createSession-5m",
                CREATE_SESSION_PER_5_MINUTES,
                FIVE_MINUTES,
            ),
            ("createSession-1d", CREATE_SESSION_PER_DAY, DAY),
        ],
    ),
    (
        "com.atproto.server.createAccount",
        &[(
            "createAccount-5m",
            CREATE_ACCOUNT_PER_5_MINUTES,
            FIVE_MINUTES,
        )],
    ),
    (
        "com.atproto.server.requestPasswordReset",
        &[
            (
                "requestPasswordReset-1h",
                PASSWORD_RESET_REQUESTS_PER_HOUR,
                HOUR,
            ),
            (
                "requestPasswordReset-1d",
                PASSWORD_RESET_REQUESTS_PER_DAY,
                DAY,
            ),
        ],
    ),
    (
        "com.atproto.server.resetPassword",
        &[(
            "resetPassword-5m",
            TOKEN_REDEMPTIONS_PER_5_MINUTES,
            FIVE_MINUTES,
        )],
    ),
    (
        "com.atproto.server.deleteAccount",
        &[(
            "deleteAccount-5m",
            TOKEN_REDEMPTIONS_PER_5_MINUTES,
            FIVE_MINUTES,
        )],
    ),
];

/// The per-account budgets of each method.
const PER_ACCOUNT: &[(&str, &[Budget])] = &[
    (
        "com.atproto.identity.updateHandle",
        &[
            ("updateHandle-5m", UPDATE_HANDLE_PER_5_MINUTES, FIVE_MINUTES),
            ("updateHandle-1d", UPDATE_HANDLE_PER_DAY, DAY),
        ],
    ),
    (
        "com.atproto.server.requestEmailConfirmation",
        &[
            ("requestEmailConfirmation-1h", TOKEN_EMAILS_PER_HOUR, HOUR),
            ("requestEmailConfirmation-1d", TOKEN_EMAILS_PER_DAY, DAY),
        ],
    ),
    (
        "com.atproto.server.requestEmailUpdate",
        &[
            ("requestEmailUpdate-1h", TOKEN_EMAILS_PER_HOUR, HOUR),
            ("requestEmailUpdate-1d", TOKEN_EMAILS_PER_DAY, DAY),
        ],
    ),
    (
        "com.atproto.server.requestAccountDelete",
        &[
            ("requestAccountDelete-1h", TOKEN_EMAILS_PER_HOUR, HOUR),
            ("requestAccountDelete-1d", TOKEN_EMAILS_PER_DAY, DAY),
        ],
    ),
];

/// Whether an address is one a reverse proxy of this service would connect
/// from.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local(IpAddr::V4(v4));
            }
            v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
    }
}

/// The client a request counts against (see the module documentation).
pub fn client_key(head: &RequestHead) -> String {
    let Some(peer) = head.remote_addr.map(|addr| addr.ip()) else {
        return String::new();
    };
    if is_local(peer) {
        let forwarded = head
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(client) = forwarded {
            return client.to_string();
        }
    }
    peer.to_string()
}

/// The key of a per-account limit: the DID of a valid session (any
/// scope, a taken-down account's included), else the client address.
pub fn account_key(tokens: &SessionTokenAuthority, head: &RequestHead) -> String {
    let did = bearer_token(head)
        .and_then(|token| tokens.verify_access(token, Access::Takendown.scopes()).ok())
        .map(|claims| claims.sub.as_str().to_owned());
    match did {
        Some(did) => format!("account:{did}"),
        None => format!("client:{}", client_key(head)),
    }
}

/// Adds each method's budgets, keyed by `key`, to its route (methods not
/// registered are skipped).
fn add_limits(router: &mut Router, table: &[(&str, &[Budget])], key: &KeyFn) {
    for (nsid, budgets) in table {
        if let Some(route) = router.route_mut(nsid) {
            for (name, points, window) in budgets.iter() {
                route.rate_limit(Arc::new(RateLimiter::with_key(
                    *name,
                    *points,
                    *window,
                    Arc::clone(key),
                )));
            }
        }
    }
}

/// Adds the per-client limits to the routes of `router` (methods not
/// registered are skipped).
pub fn install(router: &mut Router) {
    let key: KeyFn = Arc::new(|head: &RequestHead, _: Option<&Credentials>| client_key(head));
    add_limits(router, PER_CLIENT, &key);
}

/// Adds the per-account limits to the routes of `router` (methods not
/// registered are skipped); `tokens` checks the sessions that name the
/// accounts. Call it once, after the methods are registered.
pub fn install_per_account(router: &mut Router, tokens: &SessionTokenAuthority) {
    let tokens = tokens.clone();
    let key: KeyFn =
        Arc::new(move |head: &RequestHead, _: Option<&Credentials>| account_key(&tokens, head));
    add_limits(router, PER_ACCOUNT, &key);
}
