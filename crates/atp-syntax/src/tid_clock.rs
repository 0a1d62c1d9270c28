//! A monotonic source of TIDs.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::tid::{Tid, TID_MAX_CLOCK_ID, TID_MAX_MICROS};

/// Hands out strictly increasing [`Tid`]s.
///
/// Each [`next`](TidClock::next) takes the system time in microseconds, but
/// never goes below one microsecond after the previous TID: if the system
/// clock goes backward, or two calls land in the same microsecond, the
/// timestamp is nudged forward. All TIDs of a clock share its clock
/// identifier, so timestamps increasing strictly means TIDs increasing
/// strictly. The clock is lock-free and can be shared between threads.
///
/// The one limit: after the 53-bit timestamp space is exhausted (year 2255)
/// the last TID repeats.
///
/// ```
/// use atp_syntax::TidClock;
/// let clock = TidClock::new(42)?;
/// let a = clock.next();
/// let b = clock.next_at(0); // system clock "went back" to 1970
/// assert!(b > a);
/// assert_eq!(b.clock_id(), 42);
/// # Ok::<(), atp_syntax::Error>(())
/// ```
#[derive(Debug)]
pub struct TidClock {
    clock_id: u16,
    last_micros: AtomicU64,
}

impl TidClock {
    /// A clock with the given clock identifier (at most 1023).
    pub fn new(clock_id: u16) -> crate::Result<Self> {
        // Validates the identifier once, so `next` can not fail.
        Tid::from_parts(0, clock_id)?;
        Ok(TidClock {
            clock_id,
            last_micros: AtomicU64::new(0),
        })
    }

    /// A clock with a random clock identifier.
    pub fn with_random_clock_id() -> Self {
        let random = RandomState::new().hash_one((std::process::id(), system_micros()));
        TidClock {
            clock_id: (random & u64::from(TID_MAX_CLOCK_ID)) as u16,
            last_micros: AtomicU64::new(0),
        }
    }

    /// The process-wide clock used by [`Tid::now`], with a random clock
    /// identifier.
    pub fn global() -> &'static TidClock {
        static GLOBAL: OnceLock<TidClock> = OnceLock::new();
        GLOBAL.get_or_init(TidClock::with_random_clock_id)
    }

    /// This clock's identifier.
    pub fn clock_id(&self) -> u16 {
        self.clock_id
    }

    /// The next TID, from the system time.
    pub fn next(&self) -> Tid {
        self.next_at(system_micros())
    }

    /// The next TID, given the current time in microseconds since the UNIX
    /// epoch (useful with another time source, and to test behaviour when
    /// the clock goes backward).
    pub fn next_at(&self, now_micros: u64) -> Tid {
        let now = now_micros.min(TID_MAX_MICROS);
        let mut last = self.last_micros.load(Ordering::Relaxed);
        loop {
            let micros = now.max(last.saturating_add(1)).min(TID_MAX_MICROS);
            match self.last_micros.compare_exchange_weak(
                last,
                micros,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return self.tid(micros),
                Err(current) => last = current,
            }
        }
    }

    /// Makes every later TID of this clock greater than `tid` (for instance
    /// the latest revision found in storage after a restart).
    pub fn advance_past(&self, tid: Tid) {
        let micros = tid.timestamp_micros().min(TID_MAX_MICROS);
        self.last_micros.fetch_max(micros, Ordering::AcqRel);
    }

    fn tid(&self, micros: u64) -> Tid {
        // Both parts are range-checked above and in `new`.
        Tid::from_parts_masked(micros, self.clock_id)
    }
}

impl Default for TidClock {
    fn default() -> Self {
        TidClock::with_random_clock_id()
    }
}

/// Microseconds since the UNIX epoch by the system clock (zero if the clock
/// reads before 1970).
fn system_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
