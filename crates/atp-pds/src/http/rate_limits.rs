//! Rate limits on the methods that guess or spend passwords and create
//! accounts, with the reference PDS's budgets:
//!
//! * `com.atproto.server.createSession`: 30 calls per 5 minutes and 300
//!   per day for each client;
//! * `com.atproto.server.createAccount`: 100 calls per 5 minutes for each
//!   client.
//!
//! The reference keys its login limits by identifier and client address;
//! here the key is the client address alone (a limiter sees the request
//! head, not the body), which is stricter for a client that tries many
//! identifiers. The client address is the connection's peer, or, when the
//! peer is a loopback or private address (a reverse proxy on the same
//! host or network), the last entry of `X-Forwarded-For`, the one that
//! proxy added.
//!
//! [`install`] is called by [`crate::http::router`] when
//! [`PdsState::rate_limits`](crate::http::PdsState::rate_limits) is set.
//! A refused call is answered 429 `RateLimitExceeded` with `RateLimit-*`
//! headers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use atp_xrpc::server::{Credentials, RateLimiter, RequestHead, Router};

/// Five minutes.
const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
/// A day.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Logins allowed per client in five minutes.
pub const CREATE_SESSION_PER_5_MINUTES: u32 = 30;
/// Logins allowed per client in a day.
pub const CREATE_SESSION_PER_DAY: u32 = 300;
/// Sign-ups allowed per client in five minutes.
pub const CREATE_ACCOUNT_PER_5_MINUTES: u32 = 100;

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

fn limiter(name: &str, points: u32, window: Duration) -> Arc<RateLimiter> {
    Arc::new(RateLimiter::with_key(
        name,
        points,
        window,
        Arc::new(|head: &RequestHead, _: Option<&Credentials>| client_key(head)),
    ))
}

/// Adds the limits to the routes of `router` (methods not registered are
/// skipped).
pub fn install(router: &mut Router) {
    if let Some(route) = router.route_mut("com.atproto.server.createSession") {
        route
            .rate_limit(limiter(
                "createSession-5m",
                CREATE_SESSION_PER_5_MINUTES,
                FIVE_MINUTES,
            ))
            .rate_limit(limiter("createSession-1d", CREATE_SESSION_PER_DAY, DAY));
    }
    if let Some(route) = router.route_mut("com.atproto.server.createAccount") {
        route.rate_limit(limiter(
            "createAccount-5m",
            CREATE_ACCOUNT_PER_5_MINUTES,
            FIVE_MINUTES,
        ));
    }
}
