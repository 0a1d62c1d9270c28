//! Timestamps as stored: RFC 3339 in UTC with milliseconds and a `Z`, so
//! that text order is time order.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::{Error, Result};

/// The stored form of `time`.
pub fn format(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a stored timestamp.
pub fn parse(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|err| Error::Corrupt(format!("bad stored timestamp {text:?}: {err}")))
}

/// The stored form of the current time.
pub fn now_string() -> String {
    format(&Utc::now())
}
