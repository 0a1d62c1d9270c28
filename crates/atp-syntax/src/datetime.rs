//! Datetimes in the strict atproto format (RFC 3339 ∩ ISO 8601).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveTime, SecondsFormat, Utc};

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;

/// Longest datetime string accepted.
pub const DATETIME_MAX_LENGTH: usize = 64;

/// A valid atproto datetime, such as `1985-04-12T23:20:50.123Z`.
///
/// Strict syntax (Lexicon `datetime` format): `YYYY-MM-DDTHH:MM:SS`, an
/// optional fraction of any number of digits, then `Z` or `±HH:MM` (but not
/// `-00:00`); upper-case `T` and `Z`; at most 64 characters. The value must
/// also make sense: a real day of a real month, hours below 24, no leap
/// second, and a year between 0 and 9999 once moved to UTC.
///
/// The string is kept exactly as written (re-serializing a record must not
/// change it). Two datetimes are equal when their strings are; they are
/// ordered by instant, then by string.
///
/// [`Datetime::parse_lenient`] accepts looser forms (missing timezone,
/// date only, space separator...) and normalizes them.
///
/// ```
/// use atp_syntax::Datetime;
/// let dt: Datetime = "1985-04-12T23:20:50.123-07:00".parse()?;
/// assert_eq!(dt.to_utc().to_rfc3339(), "1985-04-13T06:20:50.123+00:00");
/// assert!("1985-04-12T23:20:50.123".parse::<Datetime>().is_err());
/// let loose = Datetime::parse_lenient("1985-04-12 23:20:50.123")?;
/// assert_eq!(loose.as_str(), "1985-04-12T23:20:50.123Z");
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone)]
pub struct Datetime {
    text: String,
    instant: DateTime<FixedOffset>,
}

impl Datetime {
    /// Validates `input` as a strict atproto datetime.
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_owned(input.to_owned())
    }

    pub(crate) fn parse_owned(input: String) -> Result<Self> {
        match parse_strict(&input) {
            Ok(instant) => Ok(Datetime {
                text: input,
                instant,
            }),
            Err(reason) => Err(Error::Datetime { input, reason }),
        }
    }

    /// Whether `input` is a valid strict atproto datetime.
    pub fn is_valid(input: &str) -> bool {
        parse_strict(input).is_ok()
    }

    /// Parses the many datetime forms found in older data and normalizes
    /// the result to UTC with millisecond precision
    /// (`YYYY-MM-DDTHH:MM:SS.sssZ`), like the reference `normalizeDatetime`.
    ///
    /// Accepted: everything [`Datetime::new`] accepts; `T`, `t` or a space
    /// between date and time; `Z`, `z`, `±HH:MM`, `±HHMM` or no timezone
    /// (read as UTC); optional seconds and fraction; a date alone
    /// (`YYYY-MM-DD`, `YYYY-MM`, `YYYY`, read as midnight UTC). Rejected:
    /// anything else, impossible dates and times, and instants outside the
    /// years 0 to 9999 in UTC.
    pub fn parse_lenient(input: &str) -> Result<Self> {
        let fail = |reason| Error::Datetime {
            input: input.to_owned(),
            reason,
        };
        let instant = match parse_strict(input) {
            Ok(instant) => instant,
            Err(_) => parse_loose(input).map_err(fail)?,
        };
        Self::from_utc(instant.with_timezone(&Utc)).map_err(|e| fail(e.reason()))
    }

    /// The datetime of an instant, written in the preferred form
    /// `YYYY-MM-DDTHH:MM:SS.sssZ` (millisecond precision). Fails for years
    /// outside 0 to 9999.
    pub fn from_utc(instant: DateTime<Utc>) -> Result<Self> {
        let text = instant.to_rfc3339_opts(SecondsFormat::Millis, true);
        if !(0..=9999).contains(&instant.year()) {
            return Err(Error::Datetime {
                input: text,
                reason: "year outside 0 to 9999",
            });
        }
        Self::parse_owned(text)
    }

    /// The current time, in the preferred form with millisecond precision.
    pub fn now() -> Self {
        let now = Utc::now();
        Self::from_utc(now).unwrap_or_else(|_| Datetime {
            text: "1970-01-01T00:00:00.000Z".to_owned(),
            instant: DateTime::UNIX_EPOCH.fixed_offset(),
        })
    }

    /// The datetime as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The instant with the offset as written (fractions beyond nanoseconds
    /// are dropped).
    pub fn to_chrono(&self) -> DateTime<FixedOffset> {
        self.instant
    }

    /// The instant in UTC.
    pub fn to_utc(&self) -> DateTime<Utc> {
        self.instant.with_timezone(&Utc)
    }

    /// The datetime as an owned string.
    pub fn into_string(self) -> String {
        self.text
    }
}

impl PartialEq for Datetime {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Datetime {}

impl Hash for Datetime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl PartialOrd for Datetime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Datetime {
    fn cmp(&self, other: &Self) -> Ordering {
        self.instant
            .cmp(&other.instant)
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl fmt::Debug for Datetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Datetime({:?})", self.text)
    }
}

impl_string_traits!(Datetime, "an atproto datetime string");

/// A small cursor over ASCII input.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Self {
        Cursor {
            bytes: input.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let slice = self.bytes.get(self.pos..self.pos + n)?;
        if !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos += n;
        Some(
            slice
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    }

    /// One or more digits after a `.`, as nanoseconds (extra digits are
    /// dropped).
    fn fraction_nanos(&mut self) -> Option<u32> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.bytes[start..self.pos];
        if digits.is_empty() {
            return None;
        }
        let mut nanos = 0u32;
        for i in 0..9 {
            let d = digits.get(i).map_or(0, |d| u32::from(d - b'0'));
            nanos = nanos * 10 + d;
        }
        Some(nanos)
    }
}

/// Offset written as `±HH:MM` (or `±HHMM` when `colon_optional`), in
/// seconds east of UTC.
fn numeric_offset(
    cursor: &mut Cursor<'_>,
    colon_optional: bool,
) -> std::result::Result<i32, &'static str> {
    let sign = match cursor.peek() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err("timezone must be \"Z\" or \"+HH:MM\"/\"-HH:MM\""),
    };
    cursor.pos += 1;
    let hours = cursor
        .digits(2)
        .ok_or("timezone offset needs two-digit hours")?;
    if !cursor.eat(b':') && !colon_optional {
        return Err("timezone offset must be written \"+HH:MM\"");
    }
    let minutes = cursor
        .digits(2)
        .ok_or("timezone offset needs two-digit minutes")?;
    if hours > 23 || minutes > 59 {
        return Err("timezone offset out of range");
    }
    Ok(sign * (hours * 3600 + minutes * 60) as i32)
}

/// Builds the instant from checked parts, refusing impossible values and
/// years outside 0..=9999 in UTC.
fn assemble(
    (year, month, day): (u32, u32, u32),
    (hour, minute, second, nanos): (u32, u32, u32, u32),
    offset_seconds: i32,
) -> std::result::Result<DateTime<FixedOffset>, &'static str> {
    let year = i32::try_from(year).map_err(|_| "year out of range")?;
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or("no such day")?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err("no such time of day");
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or("no such time")?;
    let offset = FixedOffset::east_opt(offset_seconds).ok_or("timezone offset out of range")?;
    let instant = date
        .and_time(time)
        .and_local_timezone(offset)
        .single()
        .ok_or("no such instant")?;
    let utc_year = instant.with_timezone(&Utc).year();
    if utc_year < 0 {
        return Err("normalizes to a negative year");
    }
    if utc_year > 9999 {
        return Err("normalizes to a year after 9999");
    }
    Ok(instant)
}

fn parse_strict(input: &str) -> std::result::Result<DateTime<FixedOffset>, &'static str> {
    const SYNTAX: &str = "not YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)";
    if input.len() > DATETIME_MAX_LENGTH {
        return Err("longer than 64 characters");
    }
    if input.ends_with("-00:00") {
        return Err("\"-00:00\" is not allowed as a timezone (use \"Z\")");
    }
    let mut c = Cursor::new(input);
    let year = c.digits(4).ok_or(SYNTAX)?;
    let date_sep = c.eat(b'-');
    let month = c.digits(2).ok_or(SYNTAX)?;
    let month_sep = c.eat(b'-');
    let day = c.digits(2).ok_or(SYNTAX)?;
    if !(date_sep && month_sep && c.eat(b'T')) {
        return Err(SYNTAX);
    }
    let hour = c.digits(2).ok_or(SYNTAX)?;
    let hour_sep = c.eat(b':');
    let minute = c.digits(2).ok_or(SYNTAX)?;
    let minute_sep = c.eat(b':');
    let second = c.digits(2).ok_or(SYNTAX)?;
    if !(hour_sep && minute_sep) {
        return Err(SYNTAX);
    }
    let nanos = if c.eat(b'.') {
        c.fraction_nanos().ok_or(SYNTAX)?
    } else {
        0
    };
    let offset = if c.eat(b'Z') {
        0
    } else {
        numeric_offset(&mut c, false)?
    };
    if !c.at_end() {
        return Err(SYNTAX);
    }
    assemble((year, month, day), (hour, minute, second, nanos), offset)
}

/// The looser forms of [`Datetime::parse_lenient`].
fn parse_loose(input: &str) -> std::result::Result<DateTime<FixedOffset>, &'static str> {
    const SYNTAX: &str = "did not parse as any known datetime form";
    let mut c = Cursor::new(input);
    let year = c.digits(4).ok_or(SYNTAX)?;
    let mut month = 1;
    let mut day = 1;
    if c.eat(b'-') {
        month = c.digits(2).ok_or(SYNTAX)?;
        if c.eat(b'-') {
            day = c.digits(2).ok_or(SYNTAX)?;
        }
    }
    let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0);
    let mut offset = 0;
    if !c.at_end() {
        if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
            return Err(SYNTAX);
        }
        hour = c.digits(2).ok_or(SYNTAX)?;
        if !c.eat(b':') {
            return Err(SYNTAX);
        }
        minute = c.digits(2).ok_or(SYNTAX)?;
        if c.eat(b':') {
            second = c.digits(2).ok_or(SYNTAX)?;
            if c.eat(b'.') {
                nanos = c.fraction_nanos().ok_or(SYNTAX)?;
            }
        }
        if c.eat(b'Z') || c.eat(b'z') {
            offset = 0;
        } else if !c.at_end() {
            offset = numeric_offset(&mut c, true)?;
        }
        if !c.at_end() {
            return Err(SYNTAX);
        }
    }
    assemble((year, month, day), (hour, minute, second, nanos), offset)
}
