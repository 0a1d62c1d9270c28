//! Crash safety of the `pds` binary: a write load from concurrent clients
//! (createRecord, applyWrites mixing creates, updates and deletes,
//! uploadBlob followed by a record referencing the blob) while the server is
//! killed with SIGKILL at seeded random moments and restarted on the same
//! data directory.
//!
//! After each restart every acknowledged write must be there (the
//! acknowledged CID, or the record absent after an acknowledged delete) and
//! every repository must verify from its signed root with the key of its
//! DID document. At the end, `listRecords` agrees with the repositories,
//! every blob a record references is served by `sync.getBlob`, and the
//! firehose read from cursor 0 has strictly increasing sequence numbers and,
//! per repository, a chain of commits in which each `since` is the previous
//! event's rev, ending at the repository's head.
//!
//! A write whose answer never came (the server died first) is uncertain:
//! its paths are not checked until a later acknowledged write settles them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atp_crypto::{Algorithm, Cid, Ipld, PublicKey, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use atp_repo_mst::diff::RecordOp;
use atp_repo_mst::import::{import_car, verify_commit_event, ImportOptions};
use atp_test_vectors::TestRng;
use atp_xrpc::client::XrpcClient;
use atp_xrpc::stream::SubscriptionClient;
use serde_json::{json, Value};

const PDS: &str = env!("CARGO_BIN_EXE_pds");
/// Accounts written to.
const ACCOUNTS: usize = 4;
/// Concurrent writers per account (each owns the records it creates).
const WRITERS_PER_ACCOUNT: usize = 2;
/// SIGKILLs in the test.
const KILLS: usize = 40;
/// The seed of the random delays and operation choices.
const SEED: u64 = 0x5eed_c4a5_4e11;
const ITEM: &str = "com.example.crash.item";
const MEDIA: &str = "com.example.crash.media";

/// What the client knows of one record path.
#[derive(Clone, Debug, PartialEq)]
enum Known {
    /// Acknowledged with this CID (and this blob, for media records).
    Present { cid: String, blob: Option<String> },
    /// Acknowledged deleted.
    Deleted,
    /// A write to it was in flight when the server died.
    Uncertain,
}

/// Every path of every account, with what the client was told.
#[derive(Default)]
struct Model {
    paths: BTreeMap<(String, String), Known>,
    acknowledged: usize,
    uncertain: usize,
}

type Shared = Arc<Mutex<Model>>;

/// A `pds serve` child process on a fixed data directory.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Server {
    async fn start(dir: &Path, run: usize, vars: &[(&str, String)]) -> Server {
        let port = free_port();
        let log = dir.join(format!("pds-{run}.log"));
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(PDS)
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("PDS_PORT", port.to_string())
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let mut server = Server { child, port, log };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&mut self) {
        let client = self.client().with_timeout(Duration::from_secs(2));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("pds serve exited with {status}:\n{}", self.log_text());
            }
            let answer: Result<Value, _> =
                client.query("com.atproto.server.describeServer", &()).await;
            if answer.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pds serve did not answer:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> XrpcClient {
        XrpcClient::new(&self.url())
            .unwrap()
            .with_timeout(Duration::from_secs(20))
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// One account: DID, token and the key its DID document lists.
#[derive(Clone)]
struct Account {
    did: String,
    jwt: String,
    key: PublicKey,
}

/// A writer: one account, its own records, its own counter.
struct Writer {
    id: usize,
    account: Account,
    live: Vec<String>,
    counter: u64,
    rng: TestRng,
}

/// How a call ended.
enum Outcome {
    Acknowledged(Value),
    /// No answer: the server died (the write may or may not be stored).
    Lost,
}

fn outcome(result: Result<Value, atp_xrpc::Error>, what: &str) -> Outcome {
    match result {
        Ok(value) => Outcome::Acknowledged(value),
        Err(atp_xrpc::Error::Xrpc {
            status,
            error,
            message,
        }) => panic!("{what} refused: {status} {error}: {message}"),
        Err(_) => Outcome::Lost,
    }
}

impl Writer {
    fn rkey(&mut self) -> String {
        self.counter += 1;
        format!("w{}-{}", self.id, self.counter)
    }

    fn settle(model: &Shared, did: &str, path: &str, known: Known) {
        let mut model = model.lock().unwrap();
        model.paths.insert((did.to_owned(), path.to_owned()), known);
    }

    /// Writes until the server stops answering.
    async fn run(&mut self, url: String, model: Shared) {
        let client = XrpcClient::new(&url)
            .unwrap()
            .with_timeout(Duration::from_secs(20))
            .with_bearer(&self.account.jwt)
            .unwrap();
        loop {
            let choice = self.rng.below(10);
            let done = match choice {
                0..=3 => self.create(&client, &model).await,
                4..=7 => self.apply_writes(&client, &model).await,
                _ => self.blob_record(&client, &model).await,
            };
            if !done {
                return;
            }
        }
    }

    async fn create(&mut self, client: &XrpcClient, model: &Shared) -> bool {
        let rkey = self.rkey();
        let did = self.account.did.clone();
        let path = format!("{ITEM}/{rkey}");
        let record = json!({"$type": ITEM, "writer": self.id, "n": self.counter});
        Self::settle(model, &did, &path, Known::Uncertain);
        let result = client
            .procedure(
                "com.atproto.repo.createRecord",
                &(),
                &json!({"repo": did, "collection": ITEM, "rkey": rkey, "record": record}),
            )
            .await;
        match outcome(result, "createRecord") {
            Outcome::Acknowledged(answer) => {
                let cid = answer["cid"].as_str().unwrap().to_owned();
                Self::settle(model, &did, &path, Known::Present { cid, blob: None });
                model.lock().unwrap().acknowledged += 1;
                self.live.push(path);
                true
            }
            Outcome::Lost => {
                model.lock().unwrap().uncertain += 1;
                false
            }
        }
    }

    /// Two creates, an update and a delete of this writer's records, in
    /// one commit.
    async fn apply_writes(&mut self, client: &XrpcClient, model: &Shared) -> bool {
        let did = self.account.did.clone();
        let mut writes = Vec::new();
        let mut paths: Vec<(String, &'static str)> = Vec::new();
        for _ in 0..2 {
            let rkey = self.rkey();
            writes.push(json!({
                "$type": "com.atproto.repo.applyWrites#create",
                "collection": ITEM, "rkey": rkey,
                "value": {"$type": ITEM, "writer": self.id, "n": self.counter},
            }));
            paths.push((format!("{ITEM}/{rkey}"), "create"));
        }
        if !self.live.is_empty() {
            let i = self.rng.below(self.live.len());
            let path = self.live[i].clone();
            let (collection, rkey) = path.split_once('/').unwrap();
            if collection == ITEM {
                self.counter += 1;
                writes.push(json!({
                    "$type": "com.atproto.repo.applyWrites#update",
                    "collection": collection, "rkey": rkey,
                    "value": {"$type": ITEM, "writer": self.id, "n": self.counter, "updated": true},
                }));
                paths.push((path, "update"));
            }
        }
        if self.live.len() > 3 {
            let i = self.rng.below(self.live.len());
            let path = self.live[i].clone();
            if !paths.iter().any(|(p, _)| *p == path) {
                let (collection, rkey) = path.split_once('/').unwrap();
                writes.push(json!({
                    "$type": "com.atproto.repo.applyWrites#delete",
                    "collection": collection, "rkey": rkey,
                }));
                paths.push((path, "delete"));
            }
        }
        let before: Vec<Known> = {
            let mut m = model.lock().unwrap();
            paths
                .iter()
                .map(|(p, _)| {
                    m.paths
                        .insert((did.clone(), p.clone()), Known::Uncertain)
                        .unwrap_or(Known::Deleted)
                })
                .collect()
        };
        let result = client
            .procedure(
                "com.atproto.repo.applyWrites",
                &(),
                &json!({"repo": did, "writes": writes}),
            )
            .await;
        match outcome(result, "applyWrites") {
            Outcome::Acknowledged(answer) => {
                let results = answer["results"].as_array().unwrap();
                assert_eq!(results.len(), paths.len(), "{answer}");
                let mut m = model.lock().unwrap();
                for ((path, action), (result, old)) in paths.iter().zip(results.iter().zip(before))
                {
                    let known = match *action {
                        "delete" => Known::Deleted,
                        _ => {
                            assert!(
                                result["uri"].as_str().unwrap().ends_with(path.as_str()),
                                "{result}"
                            );
                            let blob = match old {
                                Known::Present { blob, .. } => blob,
                                _ => None,
                            };
                            Known::Present {
                                cid: result["cid"].as_str().unwrap().to_owned(),
                                blob,
                            }
                        }
                    };
                    m.paths.insert((did.clone(), path.clone()), known);
                    match *action {
                        "create" => self.live.push(path.clone()),
                        "delete" => self.live.retain(|p| p != path),
                        _ => {}
                    }
                }
                m.acknowledged += paths.len();
                true
            }
            Outcome::Lost => {
                // The batch is all or nothing; its paths stay uncertain,
                // and the updated or deleted records leave this writer.
                for (path, action) in &paths {
                    if *action != "create" {
                        self.live.retain(|p| p != path);
                    }
                }
                model.lock().unwrap().uncertain += paths.len();
                false
            }
        }
    }

    /// Uploads a small PNG, then creates a record referencing it.
    async fn blob_record(&mut self, client: &XrpcClient, model: &Shared) -> bool {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        for _ in 0..64 {
            bytes.extend_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let uploaded = client
            .procedure_bytes(
                "com.atproto.repo.uploadBlob",
                &(),
                "image/png",
                bytes.into(),
            )
            .await
            .and_then(|body| Ok(serde_json::from_slice::<Value>(&body.bytes)?));
        let blob = match outcome(uploaded, "uploadBlob") {
            Outcome::Acknowledged(answer) => answer["blob"].clone(),
            Outcome::Lost => return false,
        };
        let blob_cid = blob["ref"]["$link"].as_str().unwrap().to_owned();
        let rkey = self.rkey();
        let did = self.account.did.clone();
        let path = format!("{MEDIA}/{rkey}");
        Self::settle(model, &did, &path, Known::Uncertain);
        let result = client
            .procedure(
                "com.atproto.repo.createRecord",
                &(),
                &json!({
                    "repo": did, "collection": MEDIA, "rkey": rkey,
                    "record": {"$type": MEDIA, "file": blob, "writer": self.id},
                }),
            )
            .await;
        match outcome(result, "createRecord with a blob") {
            Outcome::Acknowledged(answer) => {
                let cid = answer["cid"].as_str().unwrap().to_owned();
                Self::settle(
                    model,
                    &did,
                    &path,
                    Known::Present {
                        cid,
                        blob: Some(blob_cid),
                    },
                );
                model.lock().unwrap().acknowledged += 1;
                self.live.push(path);
                true
            }
            Outcome::Lost => {
                model.lock().unwrap().uncertain += 1;
                false
            }
        }
    }
}

/// Fetches the repository and verifies it in full (signature with the DID
/// document's key, MST, every block); returns its records and commit rev.
async fn verified_repo(
    client: &XrpcClient,
    account: &Account,
) -> (BTreeMap<String, String>, String) {
    let car = client
        .query_bytes("com.atproto.sync.getRepo", &json!({"did": account.did}))
        .await
        .unwrap();
    let options = ImportOptions {
        did: Some(account.did.clone()),
        signing_key: Some(account.key.clone()),
        ..ImportOptions::default()
    };
    let repo = import_car(car.bytes.as_ref(), &options)
        .unwrap_or_else(|err| panic!("repository of {} does not verify: {err}", account.did));
    let records = repo
        .records
        .iter()
        .map(|(path, cid)| (path.clone(), cid.to_string()))
        .collect();
    (records, repo.commit.rev)
}

/// Checks every settled path of every account against its verified
/// repository; returns the number of paths checked.
async fn check_acknowledged(client: &XrpcClient, accounts: &[Account], model: &Shared) -> usize {
    let mut checked = 0;
    for account in accounts {
        let (records, rev) = verified_repo(client, account).await;
        let latest: Value = client
            .query(
                "com.atproto.sync.getLatestCommit",
                &json!({"did": account.did}),
            )
            .await
            .unwrap();
        assert_eq!(
            latest["rev"],
            json!(rev),
            "getLatestCommit and getRepo disagree"
        );
        let model = model.lock().unwrap();
        for ((did, path), known) in &model.paths {
            if *did != account.did {
                continue;
            }
            match known {
                Known::Present { cid, .. } => {
                    assert_eq!(
                        records.get(path),
                        Some(cid),
                        "acknowledged write of {did} {path} lost"
                    );
                    checked += 1;
                }
                Known::Deleted => {
                    assert_eq!(
                        records.get(path),
                        None,
                        "acknowledged delete of {did} {path} undone"
                    );
                    checked += 1;
                }
                Known::Uncertain => {}
            }
        }
    }
    checked
}

/// Every record of `collection` in `did`'s repository, by `listRecords`.
async fn list_records(
    client: &XrpcClient,
    did: &str,
    collection: &str,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = json!({"repo": did, "collection": collection, "limit": 100});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let page: Value = client
            .query("com.atproto.repo.listRecords", &params)
            .await
            .unwrap();
        for record in page["records"].as_array().unwrap() {
            let uri = record["uri"].as_str().unwrap();
            let path = uri.splitn(4, '/').nth(3).unwrap().to_owned();
            out.insert(path, record["cid"].as_str().unwrap().to_owned());
        }
        match page["cursor"].as_str() {
            Some(c) if !page["records"].as_array().unwrap().is_empty() => {
                cursor = Some(c.to_owned())
            }
            _ => return out,
        }
    }
}

fn field<'a>(map: &'a BTreeMap<String, Ipld>, key: &str) -> Option<&'a Ipld> {
    map.get(key)
}

fn string(map: &BTreeMap<String, Ipld>, key: &str) -> Option<String> {
    match field(map, key) {
        Some(Ipld::String(s)) => Some(s.clone()),
        _ => None,
    }
}

fn link(map: &BTreeMap<String, Ipld>, key: &str) -> Option<Cid> {
    match field(map, key) {
        Some(Ipld::Link(cid)) => Some(*cid),
        _ => None,
    }
}

/// What the firehose shows: events read and problems found.
#[derive(Default)]
struct FirehoseReport {
    events: usize,
    commits: usize,
    syncs: usize,
    problems: Vec<String>,
    last_rev: BTreeMap<String, String>,
}

/// Reads the firehose from cursor 0 until it has been quiet for a while
/// and checks order and chains.
async fn read_firehose(port: u16, accounts: &[Account]) -> FirehoseReport {
    let url = format!("ws://127.0.0.1:{port}/xrpc/com.atproto.sync.subscribeRepos?cursor=0");
    let mut stream = SubscriptionClient::connect(&url).await.unwrap();
    let keys: BTreeMap<String, PublicKey> = accounts
        .iter()
        .map(|a| (a.did.clone(), a.key.clone()))
        .collect();
    let mut report = FirehoseReport::default();
    let mut last_seq = 0i128;
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_secs(3), stream.next_frame()).await
    {
        let frame = frame.unwrap();
        assert!(!frame.is_error(), "error frame: {:?}", frame.error_body());
        let t = frame.message_type().unwrap_or_default().to_owned();
        let Ipld::Map(body) = frame.body::<Ipld>().unwrap() else {
            panic!("event body is not a map")
        };
        report.events += 1;
        let Some(Ipld::Integer(seq)) = field(&body, "seq") else {
            panic!("event without seq")
        };
        if *seq <= last_seq {
            report.problems.push(format!("seq {seq} after {last_seq}"));
        }
        last_seq = *seq;
        match t.as_str() {
            "#commit" => {
                report.commits += 1;
                let repo = string(&body, "repo").unwrap();
                let rev = string(&body, "rev").unwrap();
                let since = string(&body, "since");
                let previous = report.last_rev.get(&repo).cloned();
                if since != previous {
                    report.problems.push(format!(
                        "{repo}: #commit seq {seq} rev {rev} has since {since:?}, but the previous event of the repository had rev {previous:?} (commits between were stored without an event)"
                    ));
                }
                if let (
                    Some(key),
                    Some(prev_data),
                    Some(Ipld::Bytes(blocks)),
                    Some(Ipld::List(ops)),
                ) = (
                    keys.get(&repo),
                    link(&body, "prevData"),
                    field(&body, "blocks"),
                    field(&body, "ops"),
                ) {
                    let ops: Vec<RecordOp> = ops
                        .iter()
                        .map(|op| {
                            let Ipld::Map(op) = op else {
                                panic!("op is not a map")
                            };
                            RecordOp {
                                path: string(op, "path").unwrap(),
                                old: link(op, "prev"),
                                new: link(op, "cid"),
                            }
                        })
                        .collect();
                    if let Err(err) = verify_commit_event(blocks, &repo, key, &ops, prev_data) {
                        report
                            .problems
                            .push(format!("{repo}: #commit seq {seq} does not verify: {err}"));
                    }
                }
                report.last_rev.insert(repo, rev);
            }
            "#sync" => {
                report.syncs += 1;
                let did = string(&body, "did").unwrap();
                let rev = string(&body, "rev").unwrap();
                report.last_rev.insert(did, rev);
            }
            _ => {}
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_sigkill() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let plc = PlcServer::start(PlcConfig::in_memory()).await.unwrap();
    let data = dir.path().join("data");
    let vars: Vec<(&str, String)> = vec![
        ("PDS_HOSTNAME", "localhost".to_owned()),
        ("PDS_DEV_MODE", "true".to_owned()),
        ("PDS_DATA_DIRECTORY", data.display().to_string()),
        (
            "PDS_BLOBSTORE_DISK_LOCATION",
            data.join("blocks").display().to_string(),
        ),
        (
            "PDS_JWT_SECRET",
            "0123456789abcdef0123456789abcdef".to_owned(),
        ),
        ("PDS_ADMIN_PASSWORD", "admin-pass".to_owned()),
        (
            "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
            SigningKey::generate(Algorithm::K256).to_hex(),
        ),
        ("PDS_DID_PLC_URL", plc.url()),
        ("PDS_SERVICE_HANDLE_DOMAINS", ".test".to_owned()),
        ("PDS_INVITE_REQUIRED", "false".to_owned()),
    ];
    let directory = PlcClient::new(&plc.url()).unwrap();

    let mut run = 0;
    let server = Server::start(dir.path(), run, &vars).await;
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let created: Value = server
            .client()
            .procedure(
                "com.atproto.server.createAccount",
                &(),
                &json!({
                    "handle": format!("crash{i}.test"),
                    "email": format!("crash{i}@example.com"),
                    "password": "hunter22",
                }),
            )
            .await
            .unwrap();
        let did = created["did"].as_str().unwrap().to_owned();
        let data = directory.data(&did).await.unwrap();
        let key = PublicKey::from_did_key(data["verificationMethods"]["atproto"].as_str().unwrap())
            .unwrap();
        accounts.push(Account {
            did,
            jwt: created["accessJwt"].as_str().unwrap().to_owned(),
            key,
        });
    }

    let model: Shared = Arc::default();
    let mut rng = TestRng::new(SEED);
    let mut writers: Vec<Writer> = (0..ACCOUNTS * WRITERS_PER_ACCOUNT)
        .map(|id| Writer {
            id,
            account: accounts[id % ACCOUNTS].clone(),
            live: Vec::new(),
            counter: 0,
            rng: TestRng::new(SEED ^ (id as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1)),
        })
        .collect();

    let mut server = Some(server);
    let mut checked = 0;
    let mut kills = 0;
    while kills < KILLS {
        let running = server.take().unwrap();
        let url = running.url();
        let tasks: Vec<_> = writers
            .drain(..)
            .map(|mut writer| {
                let (url, model) = (url.clone(), Arc::clone(&model));
                tokio::spawn(async move {
                    writer.run(url, model).await;
                    writer
                })
            })
            .collect();
        let delay = 150 + rng.below(900) as u64;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        running.kill();
        kills += 1;
        for task in tasks {
            writers.push(task.await.unwrap());
        }
        run += 1;
        let restarted = Server::start(dir.path(), run, &vars).await;
        checked += check_acknowledged(&restarted.client(), &accounts, &model).await;
        server = Some(restarted);
    }
    let server = server.unwrap();
    let client = server.client();

    // listRecords (the record index) agrees with the verified repositories,
    // and every referenced blob is served permanently.
    let mut blobs_checked = 0;
    for account in &accounts {
        let (records, _) = verified_repo(&client, account).await;
        let mut listed = list_records(&client, &account.did, ITEM).await;
        listed.extend(list_records(&client, &account.did, MEDIA).await);
        assert_eq!(
            listed, records,
            "listRecords of {} disagrees with getRepo",
            account.did
        );
        // Every media record in the repository, acknowledged or written
        // just before a kill, references a blob that is served.
        let model = model.lock().unwrap().paths.clone();
        let did = &account.did;
        for path in records.keys().filter(|p| p.starts_with(MEDIA)) {
            let rkey = path.split_once('/').unwrap().1;
            let record: Value = client
                .query(
                    "com.atproto.repo.getRecord",
                    &json!({"repo": did, "collection": MEDIA, "rkey": rkey}),
                )
                .await
                .unwrap();
            let blob = record["value"]["file"]["ref"]["$link"]
                .as_str()
                .unwrap()
                .to_owned();
            if let Some(Known::Present {
                blob: Some(acknowledged),
                ..
            }) = model.get(&(did.clone(), path.clone()))
            {
                assert_eq!(&blob, acknowledged, "blob of {did} {path}");
            }
            let body = client
                .query_bytes(
                    "com.atproto.sync.getBlob",
                    &json!({"did": did, "cid": blob}),
                )
                .await
                .unwrap_or_else(|err| panic!("blob {blob} of {did} {path} not served: {err}"));
            let cid = atp_crypto::cid_for_raw(&body.bytes).to_string();
            assert_eq!(cid, blob, "blob bytes of {did} {path}");
            blobs_checked += 1;
        }
    }
    checked += check_acknowledged(&client, &accounts, &model).await;

    let report = read_firehose(server.port, &accounts).await;
    let mut problems = report.problems.clone();
    for account in &accounts {
        let latest: Value = client
            .query(
                "com.atproto.sync.getLatestCommit",
                &json!({"did": account.did}),
            )
            .await
            .unwrap();
        let head = latest["rev"].as_str().unwrap().to_owned();
        if report.last_rev.get(&account.did) != Some(&head) {
            problems.push(format!(
                "{}: head rev {head} never announced; the firehose ends at {:?}",
                account.did,
                report.last_rev.get(&account.did)
            ));
        }
    }
    let (acknowledged, uncertain) = {
        let model = model.lock().unwrap();
        (model.acknowledged, model.uncertain)
    };
    println!(
        "crash safety: {kills} SIGKILLs, {} writes acknowledged, {} in flight at a kill, {checked} acknowledged paths checked across {} restarts, {blobs_checked} blobs served, firehose {} events ({} #commit, {} #sync), {} problems, {:.0?}",
        acknowledged,
        uncertain,
        run,
        report.events,
        report.commits,
        report.syncs,
        problems.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "firehose problems:\n{}",
        problems.join("\n")
    );
    drop(server);
    plc.shutdown().await.unwrap();
}
