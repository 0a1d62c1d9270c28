//! Timestamp identifiers (TIDs): sortable 13-character record keys and
//! repository revisions.

use std::fmt;

use crate::error::{Error, Result};
use crate::string_traits::impl_string_traits;

/// The `base32-sortable` alphabet: digit values in ASCII order, so string
/// order equals numeric order.
const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Length of every TID string.
pub const TID_LENGTH: usize = 13;

/// Largest timestamp a TID can carry: 53 bits of microseconds.
pub const TID_MAX_MICROS: u64 = (1 << 53) - 1;

/// Largest clock identifier: 10 bits.
pub const TID_MAX_CLOCK_ID: u16 = (1 << 10) - 1;

/// A timestamp identifier: a 64-bit integer (top bit zero, then 53 bits of
/// microseconds since the UNIX epoch, then a 10-bit clock identifier)
/// written as 13 characters of `base32-sortable`
/// (`234567abcdefghijklmnopqrstuvwxyz`).
///
/// Ordering follows the integer, which is also the order of the strings.
/// Parsing accepts exactly what the reference accepts: 13 characters of the
/// alphabet, the first one among `234567abcdefghij` (so that the value fits
/// in 64 bits).
///
/// ```
/// use atp_syntax::Tid;
/// let tid = Tid::from_parts(1_700_000_000_000_000, 7)?;
/// assert_eq!(tid.timestamp_micros(), 1_700_000_000_000_000);
/// assert_eq!(tid.clock_id(), 7);
/// let again: Tid = tid.as_str().parse()?;
/// assert_eq!(again, tid);
/// assert!(Tid::now() < Tid::now());
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid {
    // `value` comes first so that the derived ordering is numeric; `text`
    // is a function of `value`.
    value: u64,
    text: [u8; TID_LENGTH],
}

impl Tid {
    /// Builds a TID from a timestamp in microseconds since the UNIX epoch
    /// (at most [`TID_MAX_MICROS`]) and a clock identifier (at most
    /// [`TID_MAX_CLOCK_ID`]).
    pub fn from_parts(timestamp_micros: u64, clock_id: u16) -> Result<Self> {
        if timestamp_micros > TID_MAX_MICROS {
            return Err(Error::Tid {
                input: format!("{timestamp_micros} us, clock {clock_id}"),
                reason: "timestamp does not fit in 53 bits",
            });
        }
        if clock_id > TID_MAX_CLOCK_ID {
            return Err(Error::Tid {
                input: format!("{timestamp_micros} us, clock {clock_id}"),
                reason: "clock identifier does not fit in 10 bits",
            });
        }
        Ok(Self::from_u64(
            (timestamp_micros << 10) | u64::from(clock_id),
        ))
    }

    /// Like [`Tid::from_parts`], for parts already known to be in range
    /// (out-of-range bits are dropped).
    pub(crate) fn from_parts_masked(timestamp_micros: u64, clock_id: u16) -> Self {
        let micros = timestamp_micros & TID_MAX_MICROS;
        let clock = u64::from(clock_id & TID_MAX_CLOCK_ID);
        Self::from_u64((micros << 10) | clock)
    }

    /// Validates `input` as a TID.
    pub fn new(input: &str) -> Result<Self> {
        Self::parse_str(input).map_err(|reason| Error::Tid {
            input: input.to_owned(),
            reason,
        })
    }

    pub(crate) fn parse_owned(input: String) -> Result<Self> {
        Self::parse_str(&input).map_err(|reason| Error::Tid { input, reason })
    }

    /// Whether `input` is a valid TID.
    pub fn is_valid(input: &str) -> bool {
        Self::parse_str(input).is_ok()
    }

    fn parse_str(input: &str) -> std::result::Result<Self, &'static str> {
        let bytes = input.as_bytes();
        if bytes.len() != TID_LENGTH {
            return Err("must be 13 characters");
        }
        let mut value: u64 = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let digit = match b {
                b'2'..=b'7' => b - b'2',
                b'a'..=b'z' => b - b'a' + 6,
                _ => return Err("characters must be among 234567abcdefghijklmnopqrstuvwxyz"),
            };
            if i == 0 && digit >= 16 {
                return Err("first character must be among 234567abcdefghij");
            }
            value = (value << 5) | u64::from(digit);
        }
        Ok(Self::from_u64(value))
    }

    /// A TID from its 64-bit integer form (any value encodes).
    fn from_u64(value: u64) -> Self {
        let mut text = [0u8; TID_LENGTH];
        for (i, slot) in text.iter_mut().enumerate() {
            let shift = 5 * (TID_LENGTH - 1 - i);
            *slot = ALPHABET[((value >> shift) & 31) as usize];
        }
        Tid { value, text }
    }

    /// The next TID from the process-wide [`TidClock`](crate::TidClock):
    /// strictly greater than every TID it returned before.
    pub fn now() -> Self {
        crate::TidClock::global().next()
    }

    /// The TID as a 13-character string.
    pub fn as_str(&self) -> &str {
        // `text` only ever holds ASCII from ALPHABET.
        std::str::from_utf8(&self.text).unwrap_or_default()
    }

    /// The 64-bit integer form.
    pub fn as_u64(&self) -> u64 {
        self.value
    }

    /// Microseconds since the UNIX epoch (the upper 54 bits; the top bit is
    /// zero for every TID built by [`Tid::from_parts`]).
    pub fn timestamp_micros(&self) -> u64 {
        self.value >> 10
    }

    /// The 10-bit clock identifier.
    pub fn clock_id(&self) -> u16 {
        (self.value & u64::from(TID_MAX_CLOCK_ID)) as u16
    }
}

impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tid({:?})", self.as_str())
    }
}

impl_string_traits!(Tid, "a TID string");
