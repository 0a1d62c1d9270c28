//! The Criterion set-ups the benchmarks of this folder share (each
//! benchmark includes this file as a module and uses part of it).

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};

use atp_benches::RECORDS;

/// A short run for micro benchmarks: `samples` samples after 300 ms of
/// warm-up, one second of measurement, with the command line applied.
pub fn quick(samples: usize) -> Criterion {
    Criterion::default()
        .sample_size(samples)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args()
}

/// A group for the whole-workload benchmarks ([`RECORDS`] records an
/// iteration, throughput in records): 10 samples after a second of
/// warm-up, `measurement` of measurement.
pub fn records_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    measurement: Duration,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(measurement)
        .throughput(Throughput::Elements(RECORDS as u64));
    group
}
