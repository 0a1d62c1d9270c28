//! Runs one operation from many concurrent workers until a deadline or a
//! count, timing each.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::RequestError;
use crate::stats::Samples;

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// After this long (operations in flight finish).
    Time(Duration),
    /// After this many operations.
    Count(u64),
    /// After this many operations or this long, whichever comes first.
    CountOrTime(u64, Duration),
}

/// What a run produced.
pub struct Outcome {
    /// Latencies of the requests.
    pub samples: Samples,
    /// Units of work done (records written, bytes read, ...).
    pub units: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

/// Calls `op(i)` for i = 0, 1, 2, ... from `concurrency` workers until
/// `limit`; `op` answers the units of work it did.
pub async fn drive<F, Fut>(concurrency: usize, limit: Limit, op: F) -> Outcome
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, RequestError>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let units = Arc::new(AtomicU64::new(0));
    let errors_shown = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = match limit {
        Limit::Time(d) | Limit::CountOrTime(_, d) => Some(start + d),
        Limit::Count(_) => None,
    };
    let max = match limit {
        Limit::Count(n) | Limit::CountOrTime(n, _) => n,
        Limit::Time(_) => u64::MAX,
    };
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (op, next, units, errors_shown) = (
            op.clone(),
            next.clone(),
            units.clone(),
            errors_shown.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max {
                    break;
                }
                let t0 = Instant::now();
                match op(i).await {
                    Ok(n) => {
                        samples.record(t0.elapsed());
                        units.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        samples.record_error();
                        if errors_shown.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("  error: {e}");
                        }
                    }
                }
            }
            samples
        }));
    }
    let mut samples = Samples::new();
    for worker in workers {
        if let Ok(s) = worker.await {
            samples.merge(s);
        }
    }
    Outcome {
        samples,
        units: units.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// [`drive`], each operation getting its own clone of `shared` (the client,
/// an account, ...) besides its number.
pub async fn drive_with<S, F, Fut>(concurrency: usize, limit: Limit, shared: S, op: F) -> Outcome
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, RequestError>> + Send + 'static,
{
    drive(concurrency, limit, move |i| op(shared.clone(), i)).await
}
