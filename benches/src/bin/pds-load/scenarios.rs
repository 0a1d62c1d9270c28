//! The request scenarios (all but the firehose): each prepares what it
//! needs (accounts, records), then runs the timed load.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::client::{post_record, Account, RequestError, Xrpc};
use crate::drive::{drive, Limit, Outcome};
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
}

/// Creates `n` accounts, `concurrency` at a time.
pub async fn accounts(
    x: &Xrpc,
    n: usize,
    concurrency: usize,
) -> Result<Vec<Account>, RequestError> {
    let made = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let (x2, made2) = (x.clone(), made.clone());
    let outcome = drive(concurrency, Limit::Count(n as u64), move |_| {
        let (x, made) = (x2.clone(), made2.clone());
        async move {
            let account = x.create_account().await?;
            if let Ok(mut made) = made.lock() {
                made.push(account);
            }
            Ok(1)
        }
    })
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
    let account = x.create_account().await?;
    let x = x.clone();
    let outcome = drive(o.concurrency, o.limit(), move |i| {
        let (x, account) = (x.clone(), account.clone());
        async move { create_record(&x, &account, i).await }
    })
    .await;
    Ok(Measured::new(outcome, "records"))
}

/// createRecord spread over `--accounts` accounts.
pub async fn create_many(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let accounts = Arc::new(accounts(x, o.accounts, o.concurrency).await?);
    let x = x.clone();
    let accounts2 = accounts.clone();
    let outcome = drive(o.concurrency, o.limit(), move |i| {
        let (x, accounts) = (x.clone(), accounts2.clone());
        async move {
            let account = &accounts[(i % accounts.len() as u64) as usize];
            create_record(&x, account, i).await
        }
    })
    .await;
    let mut m = Measured::new(outcome, "records");
    m.extra.insert("accounts".into(), json!(accounts.len()));
    Ok(m)
}

/// applyWrites batches of `--batch` creates over `--accounts` accounts.
pub async fn apply_writes(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let accounts = Arc::new(accounts(x, o.accounts, o.concurrency).await?);
    let batch = o.batch;
    let x = x.clone();
    let accounts2 = accounts.clone();
    let outcome = drive(o.concurrency, o.limit(), move |i| {
        let (x, accounts) = (x.clone(), accounts2.clone());
        async move {
            let account = &accounts[(i % accounts.len() as u64) as usize];
            apply_creates(&x, account, i * batch, batch, None).await
        }
    })
    .await;
    let requests = outcome.samples.count() as f64 / outcome.elapsed.as_secs_f64();
    let mut m = Measured::new(outcome, "records");
    m.extra.insert("batch".into(), json!(batch));
    m.extra.insert("requests_per_s".into(), json!(requests));
    Ok(m)
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
    let (x2, account2) = (x.clone(), account.clone());
    let started = Instant::now();
    let outcome = drive(concurrency, Limit::CountOrTime(batches, cap), move |b| {
        let (x, account) = (x2.clone(), account2.clone());
        async move {
            let first = b * per_batch;
            let count = per_batch.min(records - first);
            let rkey = move |n: u64| crate::tid::for_write(base, n);
            apply_creates(&x, &account, first, count, Some(&rkey)).await
        }
    })
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

/// getRecord of random records among `--seed-records` of one account.
pub async fn get_record(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let base = seed_base();
    let (account, written, _) =
        seeded_account(x, o.seed_records, 100, base, 2, Duration::from_secs(120)).await?;
    let x = x.clone();
    let outcome = drive(o.concurrency, o.limit(), move |i| {
        let (x, did) = (x.clone(), account.did.clone());
        async move {
            // a multiplicative hash spreads the reads over the records
            let n = i.wrapping_mul(2_654_435_761) % written.max(1);
            let rkey = crate::tid::for_write(base, n);
            x.query(
                "com.atproto.repo.getRecord",
                &format!("repo={did}&collection={POST}&rkey={rkey}"),
            )
            .await
            .map(|_| 1)
        }
    })
    .await;
    let mut m = Measured::new(outcome, "records");
    m.extra.insert("records_in_repo".into(), json!(written));
    Ok(m)
}

/// listRecords (limit 50) of one account holding `--seed-records` posts.
pub async fn list_records(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let base = seed_base();
    let (account, written, _) =
        seeded_account(x, o.seed_records, 100, base, 2, Duration::from_secs(120)).await?;
    let x = x.clone();
    let outcome = drive(o.concurrency, o.limit(), move |i| {
        let (x, did) = (x.clone(), account.did.clone());
        async move {
            // half the pages from the start, half from a cursor inside
            let query = if i % 2 == 0 {
                format!("repo={did}&collection={POST}&limit=50")
            } else {
                let n = i.wrapping_mul(2_654_435_761) % written.max(1);
                let cursor = crate::tid::for_write(base, n);
                format!("repo={did}&collection={POST}&limit=50&cursor={cursor}")
            };
            x.query("com.atproto.repo.listRecords", &query)
                .await
                .map(|_| 1)
        }
    })
    .await;
    let mut m = Measured::new(outcome, "requests");
    m.extra.insert("records_in_repo".into(), json!(written));
    Ok(m)
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
    let x = x.clone();
    let did = account.did.clone();
    let outcome = drive(1, Limit::Count(o.repo_downloads), move |_| {
        let (x, did) = (x.clone(), did.clone());
        async move {
            x.query_streamed("com.atproto.sync.getRepo", &format!("did={did}"))
                .await
        }
    })
    .await;
    let downloads = outcome.samples.count().max(1);
    let car_bytes = outcome.units / downloads;
    let mut m = Measured::new(outcome, "bytes");
    m.extra.insert("records_in_repo".into(), json!(written));
    m.extra
        .insert("fill_seconds".into(), json!(fill.as_secs_f64()));
    m.extra.insert(
        "fill_records_per_s".into(),
        json!(written as f64 / fill.as_secs_f64()),
    );
    m.extra.insert("car_bytes".into(), json!(car_bytes));
    Ok(m)
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
    let noise = Arc::new(noise);
    let x = x.clone();
    let outcome = drive(o.concurrency, o.limit(), move |i| {
        let (x, token, noise) = (x.clone(), account.token.clone(), noise.clone());
        async move {
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
        }
    })
    .await;
    let mut m = Measured::new(outcome, "blobs");
    m.extra.insert("blob_bytes".into(), json!(blob_bytes));
    Ok(m)
}

/// createAccount (handle, email, password; the DID registered with the
/// server's PLC directory).
pub async fn create_account(x: &Xrpc, o: &Options) -> Result<Measured, RequestError> {
    let x = x.clone();
    let outcome = drive(o.concurrency, o.limit(), move |_| {
        let x = x.clone();
        async move { x.create_account().await.map(|_| 1) }
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
    let outcome = {
        let (x, pid) = (x.clone(), o.pid);
        let (created, checkpoints) = (created.clone(), checkpoints.clone());
        drive(o.concurrency, limit, move |_| {
            let (x, created, checkpoints) = (x.clone(), created.clone(), checkpoints.clone());
            async move {
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
            }
        })
        .await
    };
    let mut m = Measured::new(outcome, "accounts");
    let at = checkpoints
        .lock()
        .map(|map| map.clone())
        .unwrap_or_default();
    m.extra
        .insert("rss_kib_at_accounts".into(), Value::Object(at));
    Ok(m)
}
