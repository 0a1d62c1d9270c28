//! The load generator's statistics: nearest-rank percentiles and the
//! summary of a run, checked against values worked out by hand.

#[path = "../src/bin/pds-load/stats.rs"]
#[allow(dead_code)]
mod stats;

use std::time::Duration;

use stats::{percentile, Samples};

#[test]
fn nearest_rank_percentiles() {
    let values: Vec<u64> = (1..=100).collect();
    // p% of 100 values: the value of rank p
    assert_eq!(percentile(&values, 50.0), Some(50));
    assert_eq!(percentile(&values, 99.0), Some(99));
    assert_eq!(percentile(&values, 100.0), Some(100));
    assert_eq!(percentile(&values, 1.0), Some(1));
    // rank = ceil(p/100 * n): for 10 values p50 is the 5th, p99 the 10th
    let ten = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    assert_eq!(percentile(&ten, 50.0), Some(50));
    assert_eq!(percentile(&ten, 99.0), Some(100));
    assert_eq!(percentile(&ten, 91.0), Some(100));
    assert_eq!(percentile(&ten, 90.0), Some(90));
    assert_eq!(percentile(&[7], 50.0), Some(7));
    assert_eq!(percentile(&[7], 99.0), Some(7));
    assert_eq!(percentile(&[], 50.0), None);
}

#[test]
fn summary_sorts_merges_and_counts() {
    let mut a = Samples::new();
    let mut b = Samples::new();
    // 200 samples in scrambled order: 1 ms .. 200 ms
    for i in 0..200u64 {
        let ms = (i * 7919) % 200 + 1;
        let target = if i % 2 == 0 { &mut a } else { &mut b };
        target.record(Duration::from_millis(ms));
    }
    b.record_error();
    a.merge(b);
    let s = a.summary(Duration::from_secs(4));
    assert_eq!(s.count, 200);
    assert_eq!(s.errors, 1);
    assert_eq!(s.throughput, 50.0);
    assert_eq!(s.p50_ms, Some(100.0));
    assert_eq!(s.p99_ms, Some(198.0));
    assert_eq!(s.max_ms, Some(200.0));
    let empty = Samples::new().summary(Duration::from_secs(1));
    assert_eq!(empty.p50_ms, None);
    assert_eq!(empty.throughput, 0.0);
}
