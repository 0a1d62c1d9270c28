//! A token-bucket rate limiter, keyed by anything (client IP, DID...).
//!
//! Each key gets a bucket of `points` tokens refilled continuously over
//! `window`; a request spends one token (or more, see
//! [`RateLimiter::consume`]). An empty bucket answers 429
//! `RateLimitExceeded` with the `RateLimit-*` headers the reference sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::header::{HeaderName, HeaderValue};
use hyper::StatusCode;

use super::{Credentials, RequestHead, XrpcError};

/// How a limiter derives the key of a request.
pub type KeyFn = Arc<dyn Fn(&RequestHead, Option<&Credentials>) -> String + Send + Sync>;

/// Keys above which idle (full) buckets are swept.
const SWEEP_THRESHOLD: usize = 10_000;

/// The state of a bucket after a consumption, for the response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// Bucket size.
    pub limit: u32,
    /// Whole tokens left.
    pub remaining: u32,
    /// Seconds in the window.
    pub window_secs: u64,
    /// Unix time (seconds) at which the bucket is full again.
    pub reset_at: u64,
}

impl RateLimitStatus {
    /// The `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
    /// `RateLimit-Policy` headers.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let pairs = [
            ("ratelimit-limit", self.limit.to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", self.reset_at.to_string()),
            (
                "ratelimit-policy",
                format!("{};w={}", self.limit, self.window_secs),
            ),
        ];
        pairs
            .into_iter()
            .filter_map(|(name, value)| {
                Some((
                    HeaderName::from_static(name),
                    HeaderValue::from_str(&value).ok()?,
                ))
            })
            .collect()
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A token-bucket limiter shared by the routes it is attached to.
pub struct RateLimiter {
    name: String,
    points: u32,
    window: Duration,
    key: KeyFn,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("points", &self.points)
            .field("window", &self.window)
            .finish()
    }
}

impl RateLimiter {
    /// `points` requests per `window` for each client IP address.
    pub fn per_ip(name: impl Into<String>, points: u32, window: Duration) -> Self {
        Self::with_key(
            name,
            points,
            window,
            Arc::new(|head: &RequestHead, _: Option<&Credentials>| {
                head.remote_addr
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default()
            }),
        )
    }

    /// `points` requests per `window` for each key computed by `key` (for
    /// example the authenticated DID).
    pub fn with_key(name: impl Into<String>, points: u32, window: Duration, key: KeyFn) -> Self {
        RateLimiter {
            name: name.into(),
            points: points.max(1),
            window: if window.is_zero() {
                Duration::from_secs(1)
            } else {
                window
            },
            key,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limiter's name (for logs).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key of a request.
    pub fn key_of(&self, head: &RequestHead, credentials: Option<&Credentials>) -> String {
        (self.key)(head, credentials)
    }

    /// Spends `cost` tokens of `key`'s bucket. `Err` carries the 429 error
    /// (with headers); both carry the bucket's status.
    pub fn consume(&self, key: &str, cost: u32) -> Result<RateLimitStatus, XrpcError> {
        let now = Instant::now();
        let rate = f64::from(self.points) / self.window.as_secs_f64();
        let capacity = f64::from(self.points);
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > SWEEP_THRESHOLD {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < capacity
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let elapsed = now.duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        let cost = f64::from(cost);
        let allowed = bucket.tokens >= cost;
        if allowed {
            bucket.tokens -= cost;
        }
        let to_full = (capacity - bucket.tokens) / rate;
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let status = RateLimitStatus {
            limit: self.points,
            remaining: bucket.tokens.floor() as u32,
            window_secs: self.window.as_secs().max(1),
            reset_at: (unix_now + to_full).ceil() as u64,
        };
        if allowed {
            Ok(status)
        } else {
            let mut err = XrpcError::new(StatusCode::TOO_MANY_REQUESTS, "Rate Limit Exceeded");
            for (name, value) in status.headers() {
                err = err.with_header(name, value);
            }
            Err(err)
        }
    }
}
