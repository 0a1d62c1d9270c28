//! The firehose: `--subscribers` WebSocket subscribers to
//! com.atproto.sync.subscribeRepos while writers create records at
//! `--rate` commits per second over `--accounts` accounts. Each commit's
//! delay is the time from the moment its createRecord was sent to the
//! moment a subscriber received the frame announcing it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{post_record, RequestError, Xrpc};
use crate::drive::{drive, Limit};
use crate::scenarios::{accounts, Measured};
use crate::stats::Samples;
use crate::Options;

mod raw_ws;

const MARKER: &[u8] = b"app.bsky.feed.post/";

/// How far into a frame the first record path is looked for: `ops` is the
/// first key of a `#commit` body in canonical order, so its first path
/// comes within the header, the key and the first op's `cid` and
/// `action`.
const SEARCH_PREFIX: usize = 512;

/// The write number announced by a `#commit` frame: the first record path
/// in the frame is in `ops` (the first key of the body in canonical order).
fn write_in_frame(frame: &[u8], base: u64) -> Option<u64> {
    let prefix = &frame[..frame.len().min(SEARCH_PREFIX)];
    let at = prefix.windows(MARKER.len()).position(|w| w == MARKER)?;
    let tid = frame.get(at + MARKER.len()..at + MARKER.len() + 13)?;
    crate::tid::write_number(base, tid)
}

/// Runs the firehose scenario.
pub async fn firehose(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let writers = accounts(x, o.accounts, o.concurrency).await?;
    let writers = Arc::new(writers);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let duration = Duration::from_secs(o.duration);
    let capacity = (o.rate * (o.duration + 5)) as usize;
    // microseconds after `epoch` at which write n was sent, plus one (0: not sent)
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..capacity).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();

    let address = x
        .base()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut subscribers = Vec::new();
    let connected = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    for _ in 0..o.subscribers {
        let socket = raw_ws::connect(&address, "/xrpc/com.atproto.sync.subscribeRepos")
            .await
            .map_err(|e| RequestError(format!("subscribeRepos: {e}")))?;
        connected.fetch_add(1, Ordering::Relaxed);
        let (sent, delivered) = (sent.clone(), delivered.clone());
        let mut stop = stop_rx.clone();
        subscribers.push(tokio::spawn(async move {
            let mut reader = raw_ws::Reader::new(socket);
            let mut samples = Samples::new();
            let mut frames = 0u64;
            loop {
                let read = tokio::select! {
                    read = reader.read_more() => read,
                    _ = stop.changed() => break,
                };
                if !matches!(read, Ok(true)) {
                    break;
                }
                let now = epoch.elapsed().as_micros() as u64;
                let ended = reader.for_each_message(|payload| {
                    frames += 1;
                    if let Some(n) = write_in_frame(payload, base) {
                        let at = sent.get(n as usize).map(|s| s.load(Ordering::Relaxed));
                        if let Some(at) = at.filter(|&at| at > 0) {
                            samples.record(Duration::from_micros(now.saturating_sub(at - 1)));
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                if ended || reader.answer_pings().await.is_err() {
                    break;
                }
            }
            (samples, frames)
        }));
    }
    eprintln!(
        "  {} subscribers connected",
        connected.load(Ordering::Relaxed)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let rate = o.rate.max(1);
    let start = Instant::now();
    let (x2, sent2) = (x.clone(), sent.clone());
    let outcome = drive(o.firehose_writers, Limit::Time(duration), move |i| {
        let (x, writers, sent) = (x2.clone(), writers.clone(), sent2.clone());
        async move {
            // paced: write i is due at start + i / rate
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            tokio::time::sleep_until(due.into()).await;
            let account = &writers[(i % writers.len() as u64) as usize];
            if let Some(slot) = sent.get(i as usize) {
                slot.store(epoch.elapsed().as_micros() as u64 + 1, Ordering::Relaxed);
            }
            x.procedure(
                "com.atproto.repo.createRecord",
                Some(&account.token),
                &json!({
                    "repo": account.did,
                    "collection": "app.bsky.feed.post",
                    "rkey": crate::tid::for_write(base, i),
                    "record": post_record(i),
                }),
            )
            .await
            .map(|_| 1)
        }
    })
    .await;
    let produced = outcome.units;
    // let the subscribers drain: until every frame arrived, or 10 s
    let delivered_target = produced * o.subscribers as u64;
    let drain_until = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < delivered_target && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut delays = Samples::new();
    let mut frames = 0u64;
    let _ = stop_tx.send(true);
    for subscriber in subscribers {
        if let Ok((samples, n)) = subscriber.await {
            delays.merge(samples);
            frames += n;
        }
    }
    let window = duration.as_secs_f64();
    let delay = delays.summary(window_duration(window));
    let mut m = crate::scenarios::Measured {
        outcome,
        unit: "commits",
        extra: serde_json::Map::new(),
    };
    let subscribers = o.subscribers.max(1) as f64;
    m.extra.insert("subscribers".into(), json!(o.subscribers));
    m.extra.insert("writers".into(), json!(o.firehose_writers));
    m.extra.insert("target_rate".into(), json!(o.rate));
    m.extra.insert("produced".into(), json!(produced));
    m.extra.insert("frames_received".into(), json!(frames));
    m.extra.insert(
        "delivered_per_subscriber_per_s".into(),
        json!(delays.count() as f64 / subscribers / window),
    );
    m.extra.insert(
        "missed".into(),
        json!(delivered_target.saturating_sub(delays.count())),
    );
    m.extra.insert("delay_p50_ms".into(), json!(delay.p50_ms));
    m.extra.insert("delay_p99_ms".into(), json!(delay.p99_ms));
    m.extra.insert("delay_max_ms".into(), json!(delay.max_ms));
    Ok(m)
}

fn window_duration(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.max(0.001))
}
