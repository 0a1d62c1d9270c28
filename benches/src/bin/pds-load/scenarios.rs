//! The request scenarios (all but the firehose): each prepares what it
//! needs (accounts, records), then runs the timed load.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::client::{post_record, Account, RequestError, Xrpc};
use crate::drive::{drive_with, Limit, Outcome};
use crate::Options;

const POST: &str = "app.bsky.feed.post";

/// What a scenario measured: the timed outcome, its unit, extra figures.
pub struct Measured {
    /// The timed run.
    pub outcome: Outcome,
    /// What one unit of throughput is ("records", "bytes", ...).
    pub unit: &'static str,
    /// Scenario-specific figures.
    pub extra: Map<String, Value>,
}

impl Measured {
    fn new(outcome: Outcome, unit: &'static str) -> Self {
        Measured {
            outcome,
            unit,
            extra: Map::new(),
        }
    }

    /// With the extra figure `name`.
    fn with(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.into(), value);
        self
    }
}

/// Creates `n` accounts, `concurrency` at a time.
pub async fn accounts(
    x: &Xrpc,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Account>, RequestError> {
    let made = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let shared = (x.clone(), made.clone());
    let outcome = drive_with(
        concurrency,
        Limit::Count(n as u64),
        shared,
        |(x, made), _| async move {
            let account = x.create_account().await?;
            if let Ok(mut made) = made.lock() {
                made.push(account);
            }
            Ok(1)
        },
    )
    .await;
    let accounts = made.lock().map(|m| m.clone()).unwrap_or_default();
    if accounts.len() < n {
        return Err(RequestError(format!(
            "only {} of {n} accounts created ({} errors)",
            accounts.len(),
            outcome.samples.errors()
        )));
    }
    Ok(accounts)
}

async fn create_record(x: &Xrpc, account: &Account, n: u64) -> Result<u64, RequestError> {
    x.procedure(
        "com.atproto.repo.createRecord",
        Some(&account.token),
        &json!({"repo": account.did, "collection": POST, "record": post_record(n)}),
    )
    .await
    .map(|_| 1)
}

/// applyWrites creating `count` posts numbered from `first`, with the
/// record keys `rkey(n)` when given.
async fn apply_creates(
    x: &Xrpc,
    account: &Account,
    first: u64,
    count: u64,
    rkey: Option<&(dyn Fn(u64) -> String + Sync)>,
) -> Result<u64, RequestError> {
    let writes: Vec<Value> = (first..first + count)
        .map(|n| {
            let mut write = json!({
                "$type": "com.atproto.repo.applyWrites#create",
                "collection": POST,
                "value": post_record(n),
            });
            if let Some(rkey) = rkey {
                write["rkey"] = Value::String(rkey(n));
            }
            write
        })
        .collect();
    x.procedure(
        "com.atproto.repo.applyWrites",
        Some(&account.token),
        &json!({"repo": account.did, "writes": writes}),
    )
    .await
    .map(|_| count)
}

/// createRecord, every worker on the same account.
pub async fn create_one(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let shared = (x.clone(), x.create_account().await?);
    let outcome = drive_with(
        o.concurrency,
        o.limit(),
        shared,
        |(x, account), i| async move { create_record(&x, &account, i).await },
    )
    .await;
    Ok(Measured::new(outcome, "records"))
}

/// The account operation `i` of a run over `accounts` uses (round robin).
fn nth_account(accounts: &[Account], i: u64) -> &Account {
    &accounts[(i % accounts.len() as u64) as usize]
}

/// createRecord spread over `--accounts` accounts.
pub async fn create_many(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let accounts = Arc::new(accounts(x, o.accounts, o.concurrency).await?);
    let shared = (x.clone(), accounts.clone());
    let outcome = drive_with(
        o.concurrency,
        o.limit(),
        shared,
        |(x, accounts), i| async move { create_record(&x, nth_account(&accounts, i), i).await },
    )
    .await;
    Ok(Measured::new(outcome, "records").with("accounts", json!(accounts.len())))
}

/// applyWrites batches of `--batch` creates over `--accounts` accounts.
pub async fn apply_writes(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let accounts = Arc::new(accounts(x, o.accounts, o.concurrency).await?);
    let batch = o.batch;
    let shared = (x.clone(), accounts);
    let outcome = drive_with(
        o.concurrency,
        o.limit(),
        shared,
        move |(x, accounts), i| async move {
            apply_creates(&x, nth_account(&accounts, i), i * batch, batch, None).await
        },
    )
    .await;
    let requests = outcome.samples.count() as f64 / outcome.elapsed.as_secs_f64();
    Ok(Measured::new(outcome, "records")
        .with("batch", json!(batch))
        .with("requests_per_s", json!(requests)))
}

/// One account holding `records` posts with known keys (base: TID numbers).
async fn seeded_account(
    x: &Xrpc,
    records: u64,
    per_batch: u64,
    base: u64,
    concurrency: usize,
    cap: Duration,
) -> Result<(Account, u64, Duration), RequestError> {
    let account = x.create_account().await?;
    let batches = records.div_ceil(per_batch);
    let limit = Limit::CountOrTime(batches, cap);
    let shared = (x.clone(), account.clone());
    let started = Instant::now();
    let outcome = drive_with(
        concurrency,
        limit,
        shared,
        move |(x, account), b| async move {
            let first = b * per_batch;
            let count = per_batch.min(records - first);
            let rkey = move |n: u64| crate::tid::for_write(base, n);
            apply_creates(&x, &account, first, count, Some(&rkey)).await
        },
    )
    .await;
    if outcome.samples.errors() > 0 && outcome.units == 0 {
        return Err(RequestError("could not write the seed records".into()));
    }
    Ok((account, outcome.units, started.elapsed()))
}

fn seed_base() -> u64 {
    // a fixed timestamp part in 2025: keys stay valid TIDs
    1_750_000_000_000_000
}

/// Runs the reads of a read scenario on one account holding
/// `--seed-records` posts with keys from [`seed_base`]: `read(x, did, i,
/// rkey)`, `rkey` the key of one of its records, chosen by a multiplicative
/// hash of `i` that spreads the reads over the records.
async fn drive_reads<F, Fut>(
    x: &Xrpc,
    o: &Options,
    unit: &'static str,
    read: F,
) -> Result<Measured, RequestError>
where
    F: Fn(Xrpc, String, u64, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, RequestError>> + Send + 'static,
{
    let cap = Duration::from_secs(120);
    let (account, written, _) = seeded_account(x, o.seed_records, 100, seed_base(), 2, cap).await?;
    let read_nth = move |(x, did): (Xrpc, String), i: u64| {
        let n = i.wrapping_mul(2_654_435_761) % written.max(1);
        read(x, did, i, crate::tid::for_write(seed_base(), n))
    };
    let outcome = drive_with(o.concurrency, o.limit(), (x.clone(), account.did), read_nth).await;
    Ok(Measured::new(outcome, unit).with("records_in_repo", json!(written)))
}

/// getRecord of random records among `--seed-records` of one account.
pub async fn get_record(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    drive_reads(x, o, "records", |x, did, _, rkey| async move {
        let query = format!("repo={did}&collection={POST}&rkey={rkey}");
        x.query("com.atproto.repo.getRecord", &query)
            .await
            .map(|_| 1)
    })
    .await
}

/// listRecords (limit 50) of one account holding `--seed-records` posts.
pub async fn list_records(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    drive_reads(x, o, "requests", |x, did, i, rkey| async move {
        // half the pages from the start, half from a cursor inside
        let query = if i % 2 == 0 {
            format!("repo={did}&collection={POST}&limit=50")
        } else {
            format!("repo={did}&collection={POST}&limit=50&cursor={rkey}")
        };
        x.query("com.atproto.repo.listRecords", &query)
            .await
            .map(|_| 1)
    })
    .await
}

/// getRepo of one account filled with `--repo-records` posts (filling
/// stops after `--fill-seconds`), downloaded `--repo-downloads` times.
pub async fn get_repo(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let (account, written, fill) = seeded_account(
        x,
        o.repo_records,
        200,
        seed_base(),
        2,
        Duration::from_secs(o.fill_seconds),
    )
    .await?;
    eprintln!(
        "  repository filled: {written} records in {:.1} s",
        fill.as_secs_f64()
    );
    let limit = Limit::Count(o.repo_downloads);
    let outcome = drive_with(
        1,
        limit,
        (x.clone(), account.did),
        |(x, did), _| async move {
            x.query_streamed("com.atproto.sync.getRepo", &format!("did={did}"))
                .await
        },
    )
    .await;
    let downloads = outcome.samples.count().max(1);
    let car_bytes = outcome.units / downloads;
    Ok(Measured::new(outcome, "bytes")
        .with("records_in_repo", json!(written))
        .with("fill_seconds", json!(fill.as_secs_f64()))
        .with(
            "fill_records_per_s",
            json!(written as f64 / fill.as_secs_f64()),
        )
        .with("car_bytes", json!(car_bytes)))
}

/// uploadBlob of distinct `--blob-kib` KiB bodies on one account.
pub async fn upload_blob(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let account = x.create_account().await?;
    // deterministic noise: xorshift
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let blob_bytes = o.blob_kib.max(1) * 1024;
    let noise: Vec<u8> = (0..blob_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let shared = (x.clone(), account.token, Arc::new(noise));
    let outcome = drive_with(
        o.concurrency,
        o.limit(),
        shared,
        |(x, token, noise), i| async move {
            let mut body = noise.as_ref().clone();
            body[..8].copy_from_slice(&i.to_be_bytes());
            x.upload(
                "com.atproto.repo.uploadBlob",
                &token,
                "application/octet-stream",
                Bytes::from(body),
            )
            .await
            .map(|_| 1)
        },
    )
    .await;
    Ok(Measured::new(outcome, "blobs").with("blob_bytes", json!(blob_bytes)))
}

/// createAccount (handle, email, password; the DID registered with the
/// server's PLC directory).
pub async fn create_account(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let outcome = drive_with(o.concurrency, o.limit(), x.clone(), |x, _| async move {
        x.create_account().await.map(|_| 1)
    })
    .await;
    Ok(Measured::new(outcome, "accounts"))
}

/// Account counts at which many-accounts records the server's memory.
const MEMORY_CHECKPOINTS: [u64; 4] = [1_000, 2_000, 5_000, 10_000];

/// `--many-accounts` accounts created (stops after `--fill-seconds`): the
/// server's memory with that many accounts is the point. Its `extra`
/// holds `rss_kib_at_accounts`: the server's resident memory (KiB) when
/// the 1,000th, 2,000th, 5,000th and 10,000th accounts were created.
pub async fn many_accounts(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let limit = Limit::CountOrTime(o.many_accounts, Duration::from_secs(o.fill_seconds));
    let created = Arc::new(AtomicU64::new(0));
    let checkpoints: Arc<Mutex<Map<String, Value>>> = Arc::default();
    let pid = o.pid;
    let shared = (x.clone(), created, checkpoints.clone());
    let outcome = drive_with(
        o.concurrency,
        limit,
        shared,
        move |(x, created, checkpoints), _| async move {
            x.create_account().await?;
            let count = created.fetch_add(1, Ordering::Relaxed) + 1;
            if MEMORY_CHECKPOINTS.contains(&count) {
                if let Some(kib) = pid.and_then(crate::rss::rss_kib) {
                    if let Ok(mut map) = checkpoints.lock() {
                        map.insert(count.to_string(), json!(kib));
                    }
                }
            }
            Ok(1)
        },
    )
    .await;
    let at = checkpoints
        .lock()
        .map(|map| map.clone())
        .unwrap_or_default();
    Ok(Measured::new(outcome, "accounts").with("rss_kib_at_accounts", Value::Object(at)))
}
