//! `pds-load`: a load generator for a running PDS (ours or the reference)
//! on loopback. Runs the scenarios named on the command line and reports,
//! for each, throughput and p50/p99 latency, as a JSON line on stdout (or
//! appended to `--json-out`) and as a table row on stderr. Given the
//! server's pid, it also reads its resident memory before, during (peak)
//! and after each scenario.
//!
//! ```text
//! pds-load --url http://127.0.0.1:2583 --pid 1234 --target ours \
//!     --scenario create-one,get-record --duration 10 --concurrency 8
//! ```

mod client;
mod drive;
mod firehose;
mod rss;
mod scenarios;
mod stats;
mod tid;

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};

use crate::client::Xrpc;
use crate::drive::Limit;

/// Every scenario, in the order `all` runs them.
const SCENARIOS: &[&str] = &[
    "idle",
    "create-one",
    "create-many",
    "apply-writes",
    "get-record",
    "list-records",
    "upload-blob",
    "create-account",
    "firehose",
    "get-repo",
    "many-accounts",
];

/// The command line.
#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for a PDS on loopback")]
pub struct Options {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:2583")]
    url: String,
    /// Label of the server in the output (like `ours`, `reference`).
    #[arg(long, default_value = "server")]
    target: String,
    /// Comma-separated scenarios, or `all`: idle, create-one, create-many,
    /// apply-writes, get-record, list-records, upload-blob, create-account,
    /// firehose, get-repo, many-accounts.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Seconds each timed scenario runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many operations instead of after `--duration`.
    #[arg(long)]
    count: Option<u64>,
    /// Concurrent requests.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Accounts for create-many, apply-writes and the firehose writers.
    #[arg(long, default_value_t = 20)]
    accounts: usize,
    /// Creates per applyWrites call.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Records in the account read by get-record and list-records.
    #[arg(long, default_value_t = 1000)]
    seed_records: u64,
    /// Records in the repository get-repo downloads.
    #[arg(long, default_value_t = 100_000)]
    repo_records: u64,
    /// How many times get-repo downloads it.
    #[arg(long, default_value_t = 3)]
    repo_downloads: u64,
    /// Upper bound on the time spent filling the get-repo repository or
    /// creating the many-accounts accounts.
    #[arg(long, default_value_t = 240)]
    fill_seconds: u64,
    /// Accounts created by many-accounts.
    #[arg(long, default_value_t = 10_000)]
    many_accounts: u64,
    /// Firehose subscribers.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Concurrent createRecord requests of the firehose writers (paced to
    /// `--rate`; many are needed since each waits for its commit).
    #[arg(long, default_value_t = 64)]
    firehose_writers: usize,
    /// Commits per second the firehose writers aim at.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Size of each uploadBlob body in KiB.
    #[arg(long, default_value_t = 16)]
    blob_kib: usize,
    /// The server's process id, to read its resident memory.
    #[arg(long)]
    pid: Option<u32>,
    /// Append the JSON lines to this file instead of printing them.
    #[arg(long)]
    json_out: Option<std::path::PathBuf>,
}

impl Options {
    /// When a timed scenario stops.
    pub fn limit(&self) -> Limit {
        match self.count {
            Some(n) => Limit::Count(n),
            None => Limit::Time(Duration::from_secs(self.duration)),
        }
    }
}

async fn run_one(x: &Xrpc, o: &Options, name: &str) -> Result<Value, String> {
    let rss_before = o.pid.and_then(rss::rss_kib);
    let sampler = o.pid.map(rss::PeakSampler::start);
    let measured = match name {
        "idle" => None,
        "create-one" => Some(scenarios::create_one(x, o).await),
        "create-many" => Some(scenarios::create_many(x, o).await),
        "apply-writes" => Some(scenarios::apply_writes(x, o).await),
        "get-record" => Some(scenarios::get_record(x, o).await),
        "list-records" => Some(scenarios::list_records(x, o).await),
        "get-repo" => Some(scenarios::get_repo(x, o).await),
        "upload-blob" => Some(scenarios::upload_blob(x, o).await),
        "create-account" => Some(scenarios::create_account(x, o).await),
        "many-accounts" => Some(scenarios::many_accounts(x, o).await),
        "firehose" => Some(firehose::firehose(x, o).await),
        other => return Err(format!("unknown scenario {other:?}")),
    };
    let rss_peak = match sampler {
        Some(s) => Some(s.finish().await),
        None => None,
    };
    let rss_after = o.pid.and_then(rss::rss_kib);
    let mut line = json!({
        "target": o.target,
        "scenario": name,
        "concurrency": o.concurrency,
        "rss_before_kib": rss_before,
        "rss_peak_kib": rss_peak,
        "rss_after_kib": rss_after,
    });
    if let Some(measured) = measured {
        let m = measured.map_err(|e| format!("{name}: {e}"))?;
        let summary = m.outcome.samples.summary(m.outcome.elapsed);
        let seconds = m.outcome.elapsed.as_secs_f64();
        line["unit"] = json!(m.unit);
        line["units"] = json!(m.outcome.units);
        line["seconds"] = json!(seconds);
        line["throughput"] = json!(m.outcome.units as f64 / seconds.max(1e-9));
        line["requests"] = json!(summary.count);
        line["errors"] = json!(summary.errors);
        line["p50_ms"] = json!(summary.p50_ms);
        line["p99_ms"] = json!(summary.p99_ms);
        line["max_ms"] = json!(summary.max_ms);
        line["extra"] = Value::Object(m.extra);
    }
    Ok(line)
}

fn fmt_ms(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |ms| format!("{ms:.2}"))
}

fn table_row(line: &Value) -> String {
    let mib = |v: &Value| {
        v.as_u64()
            .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0))
    };
    format!(
        "{:<15} {:>12} {:<9} {:>9} {:>9} {:>7} {:>9} {:>9}",
        line["scenario"].as_str().unwrap_or("?"),
        line["throughput"]
            .as_f64()
            .map_or("-".into(), |t| format!("{t:.1}")),
        line["unit"]
            .as_str()
            .map_or("".into(), |u| format!("{u}/s")),
        fmt_ms(&line["p50_ms"]),
        fmt_ms(&line["p99_ms"]),
        line["errors"]
            .as_u64()
            .map_or("-".into(), |e| e.to_string()),
        mib(&line["rss_peak_kib"]),
        mib(&line["rss_after_kib"]),
    )
}

#[tokio::main]
async fn main() {
    let o = Options::parse();
    let names: Vec<&str> = if o.scenario == "all" {
        SCENARIOS.to_vec()
    } else {
        o.scenario.split(',').map(str::trim).collect()
    };
    let x = Xrpc::new(&o.url);
    eprintln!(
        "{:<15} {:>12} {:<9} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "scenario", "throughput", "", "p50 ms", "p99 ms", "errors", "peak MiB", "RSS MiB"
    );
    let mut failed = false;
    for name in names {
        eprintln!("{name}: running");
        match run_one(&x, &o, name).await {
            Ok(line) => {
                eprintln!("{}", table_row(&line));
                if let Some(extra) = line
                    .get("extra")
                    .filter(|e| e.as_object().is_some_and(|m| !m.is_empty()))
                {
                    eprintln!("  {extra}");
                }
                let text = format!("{line}\n");
                match &o.json_out {
                    Some(path) => {
                        let written = std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(path)
                            .and_then(|mut f| f.write_all(text.as_bytes()));
                        if let Err(e) = written {
                            eprintln!("cannot write {}: {e}", path.display());
                            failed = true;
                        }
                    }
                    None => print!("{text}"),
                }
            }
            Err(e) => {
                eprintln!("{name}: FAILED: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
