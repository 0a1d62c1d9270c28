//! Latency samples and their summary: throughput, p50, p99.

use std::time::Duration;

/// Latencies of the operations of one run, in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u64>,
    errors: u64,
}

impl Samples {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one successful operation that took `elapsed`.
    pub fn record(&mut self, elapsed: Duration) {
        self.micros
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records one failed operation (not counted in the latencies).
    pub fn record_error(&mut self) {
        self.errors += 1;
    }

    /// Adds the samples of another worker.
    pub fn merge(&mut self, other: Samples) {
        self.micros.extend(other.micros);
        self.errors += other.errors;
    }

    /// How many operations succeeded.
    pub fn count(&self) -> u64 {
        self.micros.len() as u64
    }

    /// How many operations failed.
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The summary over a run that lasted `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let seconds = elapsed.as_secs_f64();
        Summary {
            count: sorted.len() as u64,
            errors: self.errors,
            seconds,
            throughput: if seconds > 0.0 {
                sorted.len() as f64 / seconds
            } else {
                0.0
            },
            p50_ms: percentile(&sorted, 50.0).map(|us| us as f64 / 1000.0),
            p99_ms: percentile(&sorted, 99.0).map(|us| us as f64 / 1000.0),
            max_ms: sorted.last().map(|&us| us as f64 / 1000.0),
        }
    }
}

/// Throughput and latency percentiles of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Successful operations.
    pub count: u64,
    /// Failed operations.
    pub errors: u64,
    /// Wall-clock duration of the run.
    pub seconds: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Median latency in milliseconds (none without samples).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// Largest latency in milliseconds.
    pub max_ms: Option<f64>,
}

/// The `p`-th percentile (0 < p <= 100) of ascending `sorted` values by the
/// nearest-rank method: the smallest value such that at least p% of the
/// values are less than or equal to it. None for no values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as f64;
    let rank = ((p / 100.0) * n).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}
