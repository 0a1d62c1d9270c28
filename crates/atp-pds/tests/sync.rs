//! `com.atproto.sync` reads checked by the reference implementation
//! (@atproto/repo: `verifyRepoCar`, `verifyDiffCar`, `verifyProofs`), the
//! reference's refusals for unknown, deactivated and taken-down
//! repositories, `listRepos` paging, and `requestCrawl` sent to a relay
//! stand-in.
#![allow(clippy::unwrap_used)]

mod common;
mod repo_support;
mod sync_support;

use std::time::{Duration, Instant};

use atp_repo_mst::repo::WriteAction;
use atp_xrpc::server::{Router, ServerConfig, XrpcResponse, XrpcServer};
use common::refusal;
use serde_json::{json, Value};
use sync_support::{post, Node, POSTS};

fn hex_of(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

async fn get_car(node: &Node, nsid: &str, params: Value) -> Vec<u8> {
    let body = node.pds.client().query_bytes(nsid, &params).await.unwrap();
    assert_eq!(
        body.content_type.as_deref(),
        Some("application/vnd.ipld.car")
    );
    body.bytes.to_vec()
}

async fn node_check(input: Value) -> Value {
    tokio::task::spawn_blocking(move || atp_test_vectors::run_node("repo-car.mjs", &input))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_car_diff_and_proofs_pass_the_reference_checks() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let did_key = node.signing_did_key(&alice.did);

    let mut written = std::collections::BTreeMap::new();
    let mut earlier_commits = Vec::new();
    for i in 0..30u32 {
        let rkey = format!("3jzfcijpj2{i:03}");
        let (_, commit) = node
            .commit(&alice.did, move |repo| {
                repo.create_record(POSTS, &rkey, &post(&format!("post {i}")))
                    .unwrap();
            })
            .await;
        earlier_commits.push(commit.cid);
        for op in commit.ops {
            written.insert(op.path, op.cid.unwrap().to_string());
        }
    }
    let latest: Value = node
        .pds
        .client()
        .query(
            "com.atproto.sync.getLatestCommit",
            &json!({"did": alice.did}),
        )
        .await
        .unwrap();
    let root = node
        .storage
        .actors()
        .open(&alice.did)
        .unwrap()
        .root()
        .unwrap()
        .unwrap();
    assert_eq!(
        latest,
        json!({"cid": root.cid.to_string(), "rev": root.rev})
    );

    // The whole repository.
    let full = get_car(&node, "com.atproto.sync.getRepo", json!({"did": alice.did})).await;
    let verified = node_check(json!({
        "op": "verify-repo", "car": hex_of(&full), "did": alice.did, "didKey": did_key,
    }))
    .await;
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["rev"], json!(root.rev));
    let records: std::collections::BTreeMap<String, String> =
        repo_support::answered_records(&verified)
            .into_iter()
            .collect();
    assert_eq!(records, written);
    // Only the current tree: no block of an earlier commit.
    let (_, blocks) = atp_repo_mst::car::read_car(&full).unwrap();
    let head = earlier_commits.pop().unwrap();
    assert!(blocks.contains_key(&head));
    assert!(earlier_commits.iter().all(|cid| !blocks.contains_key(cid)));

    // Changes since that rev: an update, a delete and a create.
    let since = root.rev.clone();
    let (_, commit) = node
        .commit(&alice.did, |repo| {
            repo.update_record(POSTS, "3jzfcijpj2005", &post("edited"))
                .unwrap();
            repo.delete_record(POSTS, "3jzfcijpj2006").unwrap();
            repo.create_record(POSTS, "3jzfcijpj2999", &post("new"))
                .unwrap();
        })
        .await;
    let diff = get_car(
        &node,
        "com.atproto.sync.getRepo",
        json!({"did": alice.did, "since": since}),
    )
    .await;
    assert!(diff.len() < full.len());
    let checked = node_check(json!({
        "op": "verify-diff", "prevCar": hex_of(&full), "diffCar": hex_of(&diff),
        "did": alice.did, "didKey": did_key,
    }))
    .await;
    assert_eq!(checked["ok"], json!(true), "{checked}");
    assert_eq!(checked["commitCid"], json!(commit.cid.to_string()));
    let mut wanted: Vec<Value> = commit
        .ops
        .iter()
        .map(|op| {
            let action = match op.action {
                WriteAction::Create => "create",
                WriteAction::Update => "update",
                WriteAction::Delete => "delete",
            };
            // The reference names the removed record's CID for a delete.
            let cid = op.cid.or(op.prev).map(|c| c.to_string());
            json!({"action": action, "path": op.path, "cid": cid})
        })
        .collect();
    wanted.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    assert_eq!(checked["writes"], Value::Array(wanted));

    // Inclusion and exclusion proofs from getRecord.
    let present = commit
        .ops
        .iter()
        .find(|op| op.path.ends_with("2999"))
        .unwrap()
        .cid
        .unwrap();
    for (rkey, cid) in [
        ("3jzfcijpj2999", Some(present.to_string())),
        ("3jzfcijpj2006", None),
        ("3jzfcijpj2zzz", None),
    ] {
        let car = get_car(
            &node,
            "com.atproto.sync.getRecord",
            json!({"did": alice.did, "collection": POSTS, "rkey": rkey}),
        )
        .await;
        let claim = json!({"collection": POSTS, "rkey": rkey, "cid": cid});
        let result = node_check(json!({
            "op": "verify-proofs", "car": hex_of(&car), "claims": [claim],
            "did": alice.did, "didKey": did_key,
        }))
        .await;
        assert_eq!(
            result["verified"],
            json!([{"path": format!("{POSTS}/{rkey}"), "cid": cid}]),
            "{result}"
        );
        assert_eq!(result["unverified"], json!([]));
    }
    atp_test_vectors::report(
        "repo-car.mjs (verifyRepoCar, verifyDiffCar, verifyProofs)",
        5,
    );

    // getBlocks: the commit and a record; an unknown CID is refused.
    let car = get_car(
        &node,
        "com.atproto.sync.getBlocks",
        json!({"did": alice.did, "cids": [commit.cid.to_string(), present.to_string()]}),
    )
    .await;
    let (roots, blocks) = atp_repo_mst::car::read_car(&car).unwrap();
    assert!(roots.is_empty());
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks.get(&commit.cid), commit.blocks.get(&commit.cid));
    let unknown = atp_crypto::cid_for_dag_cbor(b"\xa0");
    let (status, error, message) = refusal(
        node.pds
            .client()
            .query_bytes(
                "com.atproto.sync.getBlocks",
                &json!({"did": alice.did, "cids": [unknown.to_string()]}),
            )
            .await,
    );
    assert_eq!((status, error.as_str()), (400, "InvalidRequest"));
    assert_eq!(message, format!("Could not find cids: {unknown}"));
    node.pds.stop().await;
}

#[tokio::test]
async fn unavailable_repositories_are_refused_as_the_reference_does() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let bob = node.pds.create("bob").await;
    let client = node.pds.client();

    let missing = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    for nsid in [
        "com.atproto.sync.getRepo",
        "com.atproto.sync.getLatestCommit",
        "com.atproto.sync.getRepoStatus",
    ] {
        let (status, error, message) =
            refusal(client.query_bytes(nsid, &json!({"did": missing})).await);
        assert_eq!((status, error.as_str()), (400, "RepoNotFound"), "{nsid}");
        assert_eq!(message, format!("Could not find repo for DID: {missing}"));
    }

    node.storage
        .accounts()
        .deactivate(&alice.did, None)
        .unwrap();
    node.storage
        .accounts()
        .set_takedown(&bob.did, Some("mod-1"))
        .unwrap();
    for (did, name, word) in [
        (&alice.did, "RepoDeactivated", "deactivated"),
        (&bob.did, "RepoTakendown", "takendown"),
    ] {
        for nsid in [
            "com.atproto.sync.getRepo",
            "com.atproto.sync.getLatestCommit",
        ] {
            let (status, error, message) =
                refusal(client.query_bytes(nsid, &json!({"did": did})).await);
            assert_eq!((status, error.as_str()), (400, name), "{nsid}");
            assert_eq!(message, format!("Repo has been {word}: {did}"));
        }
        let (status, error, _) = refusal(
            client
                .query_bytes(
                    "com.atproto.sync.getRecord",
                    &json!({"did": did, "collection": POSTS, "rkey": "3jzfcijpj2z2a"}),
                )
                .await,
        );
        assert_eq!((status, error.as_str()), (400, name));
        let status: Value = client
            .query("com.atproto.sync.getRepoStatus", &json!({"did": did}))
            .await
            .unwrap();
        assert_eq!(status, json!({"did": did, "active": false, "status": word}));
    }

    // The account itself and the admin still read it.
    let own = node
        .pds
        .bearer(&alice.access_jwt)
        .query_bytes("com.atproto.sync.getRepo", &json!({"did": alice.did}))
        .await
        .unwrap();
    assert!(!own.bytes.is_empty());
    let admin = client
        .clone()
        .with_header(
            "authorization".parse().unwrap(),
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("admin:{}", common::ADMIN_PASSWORD)
                )
            )
            .parse()
            .unwrap(),
        )
        .query_bytes("com.atproto.sync.getLatestCommit", &json!({"did": bob.did}))
        .await
        .unwrap();
    assert!(!admin.bytes.is_empty());
    node.pds.stop().await;
}

#[tokio::test]
async fn list_repos_pages_through_every_account() {
    let node = Node::start().await;
    let mut dids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        dids.push(node.pds.create(name).await.did);
    }
    node.storage.accounts().deactivate(&dids[1], None).unwrap();
    let client = node.pds.client();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let page: Value = client
            .query(
                "com.atproto.sync.listRepos",
                &json!({"limit": 2, "cursor": cursor}),
            )
            .await
            .unwrap();
        let repos = page["repos"].as_array().unwrap();
        assert!(repos.len() <= 2);
        seen.extend(repos.iter().cloned());
        match page["cursor"].as_str() {
            Some(next) if !repos.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    let listed: Vec<&str> = seen.iter().map(|r| r["did"].as_str().unwrap()).collect();
    let mut sorted = dids.iter().map(String::as_str).collect::<Vec<_>>();
    sorted.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, sorted, "every account exactly once");
    for repo in &seen {
        let did = repo["did"].as_str().unwrap();
        let latest: Value = client
            .query("com.atproto.sync.getRepoStatus", &json!({"did": did}))
            .await
            .unwrap();
        let root = node
            .storage
            .actors()
            .open(did)
            .unwrap()
            .root()
            .unwrap()
            .unwrap();
        assert_eq!(repo["head"], json!(root.cid.to_string()));
        assert_eq!(repo["rev"], json!(root.rev));
        if did == dids[1] {
            assert_eq!(repo["active"], json!(false));
            assert_eq!(repo["status"], json!("deactivated"));
            assert_eq!(latest.get("rev"), None);
        } else {
            assert_eq!(repo["active"], json!(true));
            assert_eq!(repo.get("status"), None);
            assert_eq!(latest["rev"], json!(root.rev));
        }
    }
    let (status, _, message) = refusal(
        client
            .query::<_, Value>("com.atproto.sync.listRepos", &json!({"cursor": "bad"}))
            .await,
    );
    assert_eq!((status, message.as_str()), (400, "Malformed cursor"));
    node.pds.stop().await;
}

#[tokio::test]
async fn relays_are_asked_to_crawl_at_start() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let mut relay = Router::new();
    relay
        .procedure("com.atproto.sync.requestCrawl", move |mut req| {
            let tx = tx.clone();
            async move {
                let body: Value = req.json().await?;
                let _ = tx.send(body);
                Ok(XrpcResponse::empty())
            }
        })
        .unwrap();
    let relay = XrpcServer::bind("127.0.0.1:0", relay, ServerConfig::default())
        .await
        .unwrap();
    let relay_url = format!("http://{}", relay.local_addr());

    let node = Node::start_with(|state| state.crawlers = vec![relay_url.clone()]).await;
    let request = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no requestCrawl arrived")
        .unwrap();
    // the host name alone, as the reference sends PDS_HOSTNAME
    assert_eq!(request, json!({"hostname": "localhost"}));

    // Activity within the next 20 minutes does not ask again.
    let alice = node.pds.create("alice").await;
    node.sequencer.sequence_identity(&alice.did, None).unwrap();
    let crawlers = node.sequencer.crawlers().unwrap();
    assert!(!crawlers.due_at(Instant::now()));
    assert!(!crawlers.notify_of_update());
    node.pds.stop().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_repository_streams_whole() {
    let node = Node::start().await;
    let alice = node.pds.create("alice").await;
    let did_key = node.signing_did_key(&alice.did);
    let big = "y".repeat(100_000);
    let (_, commit) = node
        .commit(&alice.did, move |repo| {
            for i in 0..80u32 {
                let rkey = format!("3jzfcijpj2{i:03}");
                repo.create_record(POSTS, &rkey, &post(&format!("{big}{i}")))
                    .unwrap();
            }
        })
        .await;
    // Many chunks of the stream, more than are ever in flight at once.
    let full = get_car(&node, "com.atproto.sync.getRepo", json!({"did": alice.did})).await;
    assert!(full.len() > 8_000_000);
    let (roots, blocks) = atp_repo_mst::car::read_car(&full).unwrap();
    assert_eq!(roots, vec![commit.cid]);
    for op in &commit.ops {
        assert!(blocks.contains_key(&op.cid.unwrap()));
    }
    let verified = node_check(json!({
        "op": "verify-repo", "car": hex_of(&full), "did": alice.did, "didKey": did_key,
    }))
    .await;
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["records"].as_array().unwrap().len(), 80);
    atp_test_vectors::report("repo-car.mjs (verifyRepoCar, 8 MB streamed)", 1);
    node.pds.stop().await;
}
