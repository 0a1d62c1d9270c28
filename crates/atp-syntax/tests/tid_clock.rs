//! The TID clock: strictly increasing TIDs from many threads, across a
//! system clock that goes backward or stands still.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use atp_syntax::{Tid, TidClock, TID_MAX_CLOCK_ID, TID_MAX_MICROS};

const MODERN_MICROS: u64 = 1_700_000_000_000_000;

#[test]
fn same_microsecond_moves_forward_by_one() {
    let clock = TidClock::new(5).unwrap();
    let a = clock.next_at(MODERN_MICROS);
    let b = clock.next_at(MODERN_MICROS);
    assert_eq!(a.timestamp_micros(), MODERN_MICROS);
    assert_eq!(b.timestamp_micros(), MODERN_MICROS + 1);
    assert!(b > a);
    assert!(b.as_str() > a.as_str());
}

#[test]
fn backward_clock_never_goes_backward() {
    let clock = TidClock::new(9).unwrap();
    let mut previous = clock.next_at(MODERN_MICROS);
    // The clock jumps back an hour, then crawls forward, then jumps past.
    let readings = [
        MODERN_MICROS - 3_600_000_000,
        MODERN_MICROS - 3_600_000_000,
        MODERN_MICROS - 10,
        MODERN_MICROS,
        0,
        MODERN_MICROS + 5,
        MODERN_MICROS + 1_000_000,
        MODERN_MICROS + 999_999,
    ];
    for reading in readings {
        let tid = clock.next_at(reading);
        assert!(
            tid > previous,
            "{tid:?} after {previous:?} (reading {reading})"
        );
        assert!(tid.as_str() > previous.as_str());
        assert_eq!(tid.clock_id(), 9);
        previous = tid;
    }
    // Once the clock is ahead again, its reading is used as is.
    assert_eq!(
        clock.next_at(MODERN_MICROS + 2_000_000).timestamp_micros(),
        MODERN_MICROS + 2_000_000
    );
}

#[test]
fn many_threads_get_distinct_increasing_tids() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 5_000;
    let clock = Arc::new(TidClock::new(77).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let clock = Arc::clone(&clock);
            thread::spawn(move || {
                let mut tids = Vec::with_capacity(PER_THREAD);
                for j in 0..PER_THREAD {
                    // Half the threads read a frozen clock, the others a
                    // clock that goes backward on every call.
                    let reading = if i % 2 == 0 {
                        MODERN_MICROS
                    } else {
                        MODERN_MICROS - j as u64
                    };
                    tids.push(clock.next_at(reading));
                }
                tids
            })
        })
        .collect();
    let mut all = HashSet::new();
    for handle in handles {
        let tids = handle.join().unwrap();
        for pair in tids.windows(2) {
            assert!(pair[1] > pair[0], "{:?} then {:?}", pair[0], pair[1]);
        }
        for tid in tids {
            assert!(all.insert(tid), "duplicate {tid:?}");
        }
    }
    assert_eq!(all.len(), THREADS * PER_THREAD);
    // With every reading at or below MODERN_MICROS, the clock handed out
    // exactly the consecutive microseconds from MODERN_MICROS on.
    let max = all.iter().max().unwrap();
    assert_eq!(
        max.timestamp_micros(),
        MODERN_MICROS + (THREADS * PER_THREAD) as u64 - 1
    );
}

#[test]
fn process_clock_is_monotonic_across_threads() {
    let handles: Vec<_> = (0..4)
        .map(|_| thread::spawn(|| (0..2_000).map(|_| Tid::now()).collect::<Vec<_>>()))
        .collect();
    let mut all = HashSet::new();
    for handle in handles {
        let tids = handle.join().unwrap();
        assert!(tids.windows(2).all(|p| p[1] > p[0]));
        all.extend(tids);
    }
    assert_eq!(all.len(), 8_000);
    let clock_ids: HashSet<u16> = all.iter().map(Tid::clock_id).collect();
    assert_eq!(clock_ids.len(), 1, "one process-wide clock identifier");
}

#[test]
fn system_clock_reading_is_used() {
    let clock = TidClock::new(0).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let tid = clock.next();
    assert!(tid.timestamp_micros() >= before);
    assert_eq!(tid.clock_id(), 0);
}

#[test]
fn advance_past_a_stored_tid() {
    let clock = TidClock::new(3).unwrap();
    let stored = Tid::from_parts(MODERN_MICROS + 60_000_000, 1000).unwrap();
    clock.advance_past(stored);
    let next = clock.next_at(MODERN_MICROS);
    assert!(next > stored);
    assert_eq!(next.timestamp_micros(), MODERN_MICROS + 60_000_001);
    // Advancing to an older TID changes nothing.
    clock.advance_past(Tid::from_parts(1, 0).unwrap());
    assert!(clock.next_at(0) > next);
}

#[test]
fn clock_id_is_range_checked() {
    assert!(TidClock::new(TID_MAX_CLOCK_ID).is_ok());
    assert!(TidClock::new(TID_MAX_CLOCK_ID + 1).is_err());
    assert!(TidClock::with_random_clock_id().clock_id() <= TID_MAX_CLOCK_ID);
}

#[test]
fn end_of_time_saturates_without_panicking() {
    let clock = TidClock::new(1).unwrap();
    let a = clock.next_at(u64::MAX);
    assert_eq!(a.timestamp_micros(), TID_MAX_MICROS);
    let b = clock.next_at(u64::MAX);
    assert_eq!(b, a);
}
