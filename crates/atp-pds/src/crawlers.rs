//! Telling relays to crawl this PDS: `com.atproto.sync.requestCrawl` with
//! the service's hostname, sent to every configured crawler when the
//! service starts and on activity, at most once per
//! [`NOTIFY_INTERVAL`] (as the reference PDS does).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use atp_pds::crawlers::{Crawlers, NOTIFY_INTERVAL};
//!
//! let crawlers = Crawlers::new("pds.example.com", vec!["https://bsky.network".to_owned()]);
//! let start = Instant::now();
//! assert!(crawlers.due_at(start));
//! assert!(!crawlers.due_at(start + Duration::from_secs(60)));
//! assert!(crawlers.due_at(start + NOTIFY_INTERVAL + Duration::from_secs(1)));
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atp_xrpc::client::XrpcClient;

/// Least time between two rounds of crawl requests (20 minutes, the
/// reference's threshold).
pub const NOTIFY_INTERVAL: Duration = Duration::from_secs(20 * 60);

/// How long one crawl request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The relays to notify and when they were last notified. Clones share
/// the rate limit.
#[derive(Clone, Debug)]
pub struct Crawlers {
    hostname: String,
    urls: Arc<Vec<String>>,
    last_notified: Arc<Mutex<Option<Instant>>>,
}

/// The hostname of a public URL: `https://pds.example.com/` gives
/// `pds.example.com`, `http://localhost:2583` gives `localhost:2583`.
pub fn hostname_of(public_url: &str) -> String {
    let rest = public_url
        .split_once("://")
        .map_or(public_url, |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].to_owned()
}

impl Crawlers {
    /// Crawlers at `urls` (base URLs such as `https://bsky.network`) to be
    /// told about `hostname`.
    pub fn new(hostname: impl Into<String>, urls: Vec<String>) -> Self {
        Crawlers {
            hostname: hostname.into(),
            urls: Arc::new(urls),
            last_notified: Arc::new(Mutex::new(None)),
        }
    }

    /// The hostname sent in requests.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The crawlers' base URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Whether a round of requests is due at `now`; if so, records `now`
    /// as the last round.
    pub fn due_at(&self, now: Instant) -> bool {
        let Ok(mut last) = self.last_notified.lock() else {
            return false;
        };
        let due = match *last {
            Some(at) => now.saturating_duration_since(at) >= NOTIFY_INTERVAL,
            None => true,
        };
        if due {
            *last = Some(now);
        }
        due
    }

    /// Sends `requestCrawl` to every crawler in the background if a round
    /// is due (see [`Crawlers::due_at`]); returns whether it did. Needs a
    /// tokio runtime; without one nothing is sent. Failures are logged.
    pub fn notify_of_update(&self) -> bool {
        if self.urls.is_empty() {
            return false;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if !self.due_at(Instant::now()) {
            return false;
        }
        for url in self.urls.iter() {
            let url = url.clone();
            let hostname = self.hostname.clone();
            runtime.spawn(async move {
                if let Err(err) = request_crawl(&url, &hostname).await {
                    tracing::warn!(crawler = %url, error = %err, "failed to request crawl");
                }
            });
        }
        true
    }
}

/// Sends one `com.atproto.sync.requestCrawl` for `hostname` to the
/// crawler at `url`.
pub async fn request_crawl(url: &str, hostname: &str) -> Result<(), atp_xrpc::Error> {
    let client = XrpcClient::new(url)?.with_timeout(REQUEST_TIMEOUT);
    let body = serde_json::json!({ "hostname": hostname });
    let _: serde_json::Value = client
        .procedure("com.atproto.sync.requestCrawl", &(), &body)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_of_urls() {
        assert_eq!(hostname_of("https://pds.example.com"), "pds.example.com");
        assert_eq!(hostname_of("https://pds.example.com/"), "pds.example.com");
        assert_eq!(hostname_of("http://localhost:2583"), "localhost:2583");
        assert_eq!(hostname_of("pds.example.com"), "pds.example.com");
    }

    #[test]
    fn clones_share_the_limit() {
        let a = Crawlers::new("h", vec!["http://relay".to_owned()]);
        let b = a.clone();
        let now = Instant::now();
        assert!(a.due_at(now));
        assert!(!b.due_at(now + Duration::from_secs(1)));
    }
}
