//! Concurrent writes and reads on the loopback PDS: 16 writers on one
//! repository make one linear commit chain and lose nothing; `swapCommit`
//! races have one winner, the others are refused as `InvalidSwap` and never
//! applied; 8 repositories written in parallel stay independent and
//! complete; readers running beside a writer never see part of a commit.
//!
//! Commit chains are checked on the firehose (from cursor 0, each `since`
//! the previous rev) and each repository is verified from its signed root
//! with the key of its DID document.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use atp_crypto::{Ipld, PublicKey};
use atp_repo_mst::import::{import_car, ImportOptions};
use atp_xrpc::client::XrpcClient;
use atp_xrpc::stream::SubscriptionClient;
use common::{refusal, Pds, TestAccount};
use serde_json::{json, Value};

const ITEM: &str = "com.example.concurrency.item";

/// The `#atproto` key of `did` in the directory.
async fn signing_key(pds: &Pds, did: &str) -> PublicKey {
    let data = pds.directory().data(did).await.unwrap();
    PublicKey::from_did_key(data["verificationMethods"]["atproto"].as_str().unwrap()).unwrap()
}

/// The repository of `did` by `sync.getRepo`, verified in full; its
/// records (path to CID) and commit rev.
async fn verified_repo(pds: &Pds, did: &str) -> (BTreeMap<String, String>, String) {
    let car = pds
        .client()
        .query_bytes("com.atproto.sync.getRepo", &json!({"did": did}))
        .await
        .unwrap();
    let options = ImportOptions {
        did: Some(did.to_owned()),
        signing_key: Some(signing_key(pds, did).await),
        ..ImportOptions::default()
    };
    let repo = import_car(car.bytes.as_ref(), &options).unwrap();
    let records = repo
        .records
        .iter()
        .map(|(path, cid)| (path.clone(), cid.to_string()))
        .collect();
    (records, repo.commit.rev)
}

/// Every record of [`ITEM`] by `listRecords`, paged: path to (CID, value).
async fn list_items(client: &XrpcClient, did: &str) -> BTreeMap<String, (String, Value)> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = json!({"repo": did, "collection": ITEM, "limit": 100});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let page: Value = client
            .query("com.atproto.repo.listRecords", &params)
            .await
            .unwrap();
        let records = page["records"].as_array().unwrap();
        for record in records {
            let uri = record["uri"].as_str().unwrap();
            let path = uri.splitn(4, '/').nth(3).unwrap().to_owned();
            out.insert(
                path,
                (
                    record["cid"].as_str().unwrap().to_owned(),
                    record["value"].clone(),
                ),
            );
        }
        match page["cursor"].as_str() {
            Some(c) if !records.is_empty() => cursor = Some(c.to_owned()),
            _ => return out,
        }
    }
}

/// The `#commit` revs of each repository on the firehose from cursor 0,
/// in order, after checking that sequence numbers strictly increase and
/// that each commit's `since` is the previous rev of its repository.
async fn firehose_chains(pds: &Pds) -> BTreeMap<String, Vec<String>> {
    let url = format!(
        "{}/xrpc/com.atproto.sync.subscribeRepos?cursor=0",
        pds.url.replacen("http://", "ws://", 1)
    );
    let mut stream = SubscriptionClient::connect(&url).await.unwrap();
    let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut last_seq = 0i128;
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_secs(2), stream.next_frame()).await
    {
        let frame = frame.unwrap();
        assert!(!frame.is_error(), "{:?}", frame.error_body());
        let Ipld::Map(body) = frame.body::<Ipld>().unwrap() else {
            panic!("body is not a map")
        };
        let Some(Ipld::Integer(seq)) = body.get("seq") else {
            panic!("no seq")
        };
        assert!(*seq > last_seq, "seq {seq} after {last_seq}");
        last_seq = *seq;
        if frame.message_type() != Some("#commit") {
            continue;
        }
        let text = |key: &str| match body.get(key) {
            Some(Ipld::String(s)) => Some(s.clone()),
            _ => None,
        };
        let (repo, rev) = (text("repo").unwrap(), text("rev").unwrap());
        let chain = chains.entry(repo.clone()).or_default();
        assert_eq!(
            text("since").as_ref(),
            chain.last(),
            "{repo}: commit {rev} does not follow the previous one"
        );
        if let Some(previous) = chain.last() {
            assert!(rev > *previous, "{repo}: rev {rev} after {previous}");
        }
        chain.push(rev);
    }
    chains
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_writers_on_one_repository_make_one_linear_chain() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let (writers, each) = (16, 8);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, did) = (pds.bearer(&alice.access_jwt), alice.did.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..each {
                let rkey = format!("w{w}-{i}");
                let answer: Value = client
                    .procedure(
                        "com.atproto.repo.createRecord",
                        &(),
                        &json!({"repo": did, "collection": ITEM, "rkey": rkey,
                                "record": {"$type": ITEM, "writer": w, "i": i}}),
                    )
                    .await
                    .unwrap();
                acked.push((
                    format!("{ITEM}/{rkey}"),
                    answer["cid"].as_str().unwrap().to_owned(),
                    answer["commit"]["rev"].as_str().unwrap().to_owned(),
                ));
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    assert_eq!(acked.len(), writers * each);

    // Every acknowledged record is in the verified repository and listed.
    let (records, head) = verified_repo(&pds, &alice.did).await;
    let listed = list_items(&pds.client(), &alice.did).await;
    assert_eq!(records.len(), writers * each);
    assert_eq!(listed.len(), writers * each);
    for (path, cid, _) in &acked {
        assert_eq!(records.get(path), Some(cid), "{path}");
        assert_eq!(listed.get(path).map(|(c, _)| c), Some(cid), "{path}");
    }

    // One chain: the genesis commit, then every acknowledged rev (creates
    // queued together may share one), each once, ending at the head.
    let chains = firehose_chains(&pds).await;
    let chain = &chains[&alice.did];
    let revs: BTreeSet<&String> = acked.iter().map(|(_, _, rev)| rev).collect();
    assert_eq!(chain.len(), 1 + revs.len());
    let announced: BTreeSet<&String> = chain[1..].iter().collect();
    assert_eq!(announced, revs);
    assert_eq!(chain.last(), Some(&head));
    println!(
        "concurrency: {writers} writers, {} commits in one chain",
        chain.len()
    );
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swap_commit_races_have_one_winner_and_losers_are_not_applied() {
    let pds = Pds::start().await;
    let alice = pds.create("alice").await;
    let (rounds, racers) = (6, 6);
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for round in 0..rounds {
        let latest: Value = pds
            .client()
            .query(
                "com.atproto.sync.getLatestCommit",
                &json!({"did": alice.did}),
            )
            .await
            .unwrap();
        let head = latest["cid"].as_str().unwrap().to_owned();
        let mut tasks = Vec::new();
        for r in 0..racers {
            let (client, did, head) = (
                pds.bearer(&alice.access_jwt),
                alice.did.clone(),
                head.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let rkey = format!("r{round}-{r}");
                // Half the racers use createRecord, half applyWrites.
                let result: Result<Value, _> = if r % 2 == 0 {
                    client
                        .procedure(
                            "com.atproto.repo.createRecord",
                            &(),
                            &json!({"repo": did, "collection": ITEM, "rkey": rkey,
                                    "record": {"$type": ITEM}, "swapCommit": head}),
                        )
                        .await
                } else {
                    client
                        .procedure(
                            "com.atproto.repo.applyWrites",
                            &(),
                            &json!({"repo": did, "swapCommit": head, "writes": [{
                                "$type": "com.atproto.repo.applyWrites#create",
                                "collection": ITEM, "rkey": rkey, "value": {"$type": ITEM},
                            }]}),
                        )
                        .await
                };
                (format!("{ITEM}/{rkey}"), result)
            }));
        }
        let mut won = 0;
        for task in tasks {
            let (path, result) = task.await.unwrap();
            match result {
                Ok(_) => {
                    won += 1;
                    winners.push(path);
                }
                Err(err) => {
                    let (status, name, _) = refusal::<Value>(Err(err));
                    assert_eq!((status, name.as_str()), (400, "InvalidSwap"));
                    losers.push(path);
                }
            }
        }
        assert_eq!(won, 1, "round {round}: {won} writes on the same head");
    }

    let (records, _) = verified_repo(&pds, &alice.did).await;
    for path in &winners {
        assert!(records.contains_key(path), "winner {path} missing");
    }
    for path in &losers {
        assert!(!records.contains_key(path), "refused {path} applied");
        let rkey = path.rsplit('/').next().unwrap();
        let (status, name, _) = refusal(
            pds.client()
                .query::<_, Value>(
                    "com.atproto.repo.getRecord",
                    &json!({"repo": alice.did, "collection": ITEM, "rkey": rkey}),
                )
                .await,
        );
        assert_eq!((status, name.as_str()), (400, "RecordNotFound"));
    }
    assert_eq!(records.len(), rounds);
    let chains = firehose_chains(&pds).await;
    assert_eq!(chains[&alice.did].len(), 1 + rounds);
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_repositories_written_in_parallel_stay_complete() {
    let pds = Pds::start().await;
    let mut accounts: Vec<TestAccount> = Vec::new();
    for i in 0..8 {
        accounts.push(pds.create(&format!("user{i}")).await);
    }
    let batches = 8;
    let mut tasks = Vec::new();
    for account in &accounts {
        let (client, did) = (pds.bearer(&account.access_jwt), account.did.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = BTreeMap::new();
            for b in 0..batches {
                let writes: Vec<Value> = (0..3)
                    .map(|i| {
                        json!({"$type": "com.atproto.repo.applyWrites#create",
                               "collection": ITEM, "rkey": format!("b{b}-{i}"),
                               "value": {"$type": ITEM, "repo": did, "b": b}})
                    })
                    .collect();
                let answer: Value = client
                    .procedure(
                        "com.atproto.repo.applyWrites",
                        &(),
                        &json!({"repo": did, "writes": writes}),
                    )
                    .await
                    .unwrap();
                for result in answer["results"].as_array().unwrap() {
                    let uri = result["uri"].as_str().unwrap();
                    let path = uri.splitn(4, '/').nth(3).unwrap().to_owned();
                    acked.insert(path, result["cid"].as_str().unwrap().to_owned());
                }
            }
            (did, acked)
        }));
    }
    let mut expected = BTreeMap::new();
    for task in tasks {
        let (did, acked) = task.await.unwrap();
        expected.insert(did, acked);
    }
    let chains = firehose_chains(&pds).await;
    for (did, acked) in &expected {
        let (records, head) = verified_repo(&pds, did).await;
        assert_eq!(&records, acked, "{did}");
        // Records carry their own repository's DID: no write crossed over.
        for (_, value) in list_items(&pds.client(), did).await.values() {
            assert_eq!(value["repo"], json!(did));
        }
        assert_eq!(chains[did].len(), 1 + batches, "{did}");
        assert_eq!(chains[did].last(), Some(&head));
    }
    pds.stop().await;
}

/// What a reader saw of the batches: each batch `b` is 5 records
/// `b{b}-{0..5}` written in one commit, later updated together (all to
/// the same `version`) and finally deleted together.
fn check_batches<'a>(
    records: impl Iterator<Item = (&'a String, Option<&'a Value>)>,
    source: &str,
) -> usize {
    let mut batches: BTreeMap<String, Vec<Option<i64>>> = BTreeMap::new();
    for (path, value) in records {
        let rkey = path.rsplit('/').next().unwrap();
        let batch = rkey.split('-').next().unwrap().to_owned();
        batches
            .entry(batch)
            .or_default()
            .push(value.map(|v| v["version"].as_i64().unwrap()));
    }
    for (batch, versions) in &batches {
        assert_eq!(
            versions.len(),
            5,
            "{source}: batch {batch} half applied: {versions:?}"
        );
        assert!(
            versions.windows(2).all(|w| w[0] == w[1]),
            "{source}: batch {batch} half updated: {versions:?}"
        );
    }
    batches.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_a_half_applied_commit() {
    let pds = Arc::new(Pds::start().await);
    let alice = pds.create("alice").await;
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));

    let mut readers = Vec::new();
    for kind in 0..3 {
        let (pds, did, done, reads) = (
            Arc::clone(&pds),
            alice.did.clone(),
            Arc::clone(&done),
            Arc::clone(&reads),
        );
        readers.push(tokio::spawn(async move {
            let client = pds.client();
            let mut last_rev = String::new();
            while !done.load(Ordering::SeqCst) {
                match kind {
                    // The record index: one page holds every record.
                    0 => {
                        let listed = list_items(&client, &did).await;
                        check_batches(listed.iter().map(|(p, (_, v))| (p, Some(v))), "listRecords");
                    }
                    // The repository at the head getLatestCommit named (or
                    // a later one), whole and consistent.
                    1 => {
                        let latest: Value = client
                            .query("com.atproto.sync.getLatestCommit", &json!({"did": did}))
                            .await
                            .unwrap();
                        let rev = latest["rev"].as_str().unwrap().to_owned();
                        assert!(rev >= last_rev, "getLatestCommit went back");
                        let (records, repo_rev) = verified_repo(&pds, &did).await;
                        assert!(repo_rev >= rev, "getRepo older than getLatestCommit");
                        check_batches(records.keys().map(|p| (p, None)), "getRepo");
                        last_rev = repo_rev;
                    }
                    // Single records of the first batch still alive agree
                    // with the listing a moment later (both see whole
                    // commits, never a record of a half-written batch).
                    _ => {
                        let listed = list_items(&client, &did).await;
                        if let Some(path) = listed.keys().next() {
                            let batch = path.rsplit('/').next().unwrap().split('-').next().unwrap();
                            let mut values = Vec::new();
                            for i in 0..5 {
                                let answer: Result<Value, _> = client
                                    .query(
                                        "com.atproto.repo.getRecord",
                                        &json!({"repo": did, "collection": ITEM,
                                                "rkey": format!("{batch}-{i}")}),
                                    )
                                    .await;
                                if let Ok(answer) = answer {
                                    values.push(answer["value"]["version"].as_i64().unwrap());
                                }
                            }
                            // Records may be deleted between the reads, but
                            // a version never goes back within a batch.
                            assert!(
                                values.windows(2).all(|w| w[0] <= w[1]),
                                "getRecord saw versions {values:?}"
                            );
                        }
                    }
                }
                reads.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // The writer: each step creates a batch, updates the one before and
    // deletes the one before that, in one commit.
    let client = pds.bearer(&alice.access_jwt);
    let steps = 24;
    for step in 0..steps {
        let mut writes = Vec::new();
        for i in 0..5 {
            writes.push(json!({"$type": "com.atproto.repo.applyWrites#create",
                "collection": ITEM, "rkey": format!("b{step}-{i}"),
                "value": {"$type": ITEM, "version": 0}}));
            if step >= 1 {
                writes.push(json!({"$type": "com.atproto.repo.applyWrites#update",
                    "collection": ITEM, "rkey": format!("b{}-{i}", step - 1),
                    "value": {"$type": ITEM, "version": 1}}));
            }
            if step >= 2 {
                writes.push(json!({"$type": "com.atproto.repo.applyWrites#delete",
                    "collection": ITEM, "rkey": format!("b{}-{i}", step - 2)}));
            }
        }
        let _: Value = client
            .procedure(
                "com.atproto.repo.applyWrites",
                &(),
                &json!({"repo": alice.did, "writes": writes}),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done.store(true, Ordering::SeqCst);
    for reader in readers {
        reader.await.unwrap();
    }
    let (records, _) = verified_repo(&pds, &alice.did).await;
    assert_eq!(check_batches(records.keys().map(|p| (p, None)), "final"), 2);
    println!(
        "concurrency: {} reads beside {steps} batched commits",
        reads.load(Ordering::SeqCst)
    );
    assert!(reads.load(Ordering::SeqCst) >= 3);
    let pds = Arc::try_unwrap(pds).ok().unwrap();
    pds.stop().await;
}
