//! Fixtures shared by the `com.atproto.repo` test files (`http_repo_*.rs`):
//! calls of the record methods as an account, and views of the account's
//! store (head, export, index) to check the answers against.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use atp_crypto::{Cid, Ipld, SigningKey};
use atp_pds::actor_store::ActorStore;
use atp_pds::http::PdsState;
use atp_repo_mst::blockstore::MemoryBlockStore;
use atp_repo_mst::diff::RecordOp;
use atp_repo_mst::import::export_repo_car;
use atp_repo_mst::repo::Repo;
use serde_json::{json, Value};

use crate::common::{Pds, TestAccount};

/// A collection with a lexicon: records are validated.
pub const POST: &str = "app.bsky.feed.post";
/// A collection without a lexicon: records are stored unchecked.
pub const THING: &str = "com.example.thing";

/// A PDS with the defaults, and its state.
pub async fn start() -> (Pds, PdsState) {
    Pds::start_with_state(|_| {}).await
}

/// A valid post with `text`.
pub fn post(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"})
}

/// `createRecord` as `account`, into its own repository unless `input`
/// names one.
pub async fn create(
    pds: &Pds,
    account: &TestAccount,
    input: Value,
) -> Result<Value, atp_xrpc::Error> {
    let mut input = input;
    if input.get("repo").is_none() {
        input["repo"] = json!(account.did);
    }
    call(pds, account, "com.atproto.repo.createRecord", input).await
}

/// `createRecord` of `record` at `collection/rkey` in `account`'s
/// repository, which must succeed.
pub async fn create_at(
    pds: &Pds,
    account: &TestAccount,
    collection: &str,
    rkey: &str,
    record: Value,
) -> Value {
    create(
        pds,
        account,
        json!({"collection": collection, "rkey": rkey, "record": record}),
    )
    .await
    .unwrap()
}

/// The procedure `nsid` with `input`, as `account`.
pub async fn call(
    pds: &Pds,
    account: &TestAccount,
    nsid: &str,
    input: Value,
) -> Result<Value, atp_xrpc::Error> {
    pds.bearer(&account.access_jwt)
        .procedure(nsid, &(), &input)
        .await
}

/// `applyWrites` of `writes` into `account`'s repository.
pub async fn apply(
    pds: &Pds,
    account: &TestAccount,
    writes: Vec<Value>,
) -> Result<Value, atp_xrpc::Error> {
    call(
        pds,
        account,
        "com.atproto.repo.applyWrites",
        json!({"repo": account.did, "writes": writes}),
    )
    .await
}

/// `count` applyWrites creates in [`THING`] at `<prefix><i>`, each with
/// the value `value(i)`.
pub fn thing_creates(count: usize, prefix: &str, value: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..count)
        .map(|i| {
            json!({"$type": "com.atproto.repo.applyWrites#create", "collection": THING,
                   "rkey": format!("{prefix}{i}"), "value": value(i)})
        })
        .collect()
}

/// `deleteRecord` of `collection/rkey` in `account`'s repository.
pub async fn delete(
    pds: &Pds,
    account: &TestAccount,
    collection: &str,
    rkey: &str,
) -> Result<Value, atp_xrpc::Error> {
    call(
        pds,
        account,
        "com.atproto.repo.deleteRecord",
        json!({"repo": account.did, "collection": collection, "rkey": rkey}),
    )
    .await
}

/// `getRecord` with `params`, without credentials.
pub async fn get(pds: &Pds, params: Value) -> Result<Value, atp_xrpc::Error> {
    pds.client()
        .query("com.atproto.repo.getRecord", &params)
        .await
}

/// `getRecord` of `collection/rkey` in `repo` (a DID or handle).
pub async fn get_at(
    pds: &Pds,
    repo: &str,
    collection: &str,
    rkey: &str,
) -> Result<Value, atp_xrpc::Error> {
    get(
        pds,
        json!({"repo": repo, "collection": collection, "rkey": rkey}),
    )
    .await
}

/// `listRecords` with `params`, which must succeed.
pub async fn list(pds: &Pds, params: Value) -> Value {
    pds.client()
        .query("com.atproto.repo.listRecords", &params)
        .await
        .unwrap()
}

/// `describeRepo` of `repo`, without credentials.
pub async fn describe(pds: &Pds, repo: &str) -> Result<Value, atp_xrpc::Error> {
    pds.client()
        .query("com.atproto.repo.describeRepo", &json!({"repo": repo}))
        .await
}

/// `importRepo` of `car` into `account`'s repository.
pub async fn import(pds: &Pds, account: &TestAccount, car: Vec<u8>) -> Result<(), atp_xrpc::Error> {
    pds.bearer(&account.access_jwt)
        .procedure_bytes(
            "com.atproto.repo.importRepo",
            &(),
            "application/vnd.ipld.car",
            car.into(),
        )
        .await
        .map(|_| ())
}

/// The account's store.
pub fn store(state: &PdsState, did: &str) -> Arc<ActorStore> {
    state.storage.actors().open(did).unwrap()
}

/// The CID of the account's head commit.
pub fn head(state: &PdsState, did: &str) -> String {
    store(state, did).root().unwrap().unwrap().cid.to_string()
}

/// The repository as a CAR, exported from the account's stored blocks.
pub fn export(state: &PdsState, did: &str) -> Vec<u8> {
    let store = store(state, did);
    let root = store.root().unwrap().unwrap();
    export_repo_car(&store.block_store(), root.cid, Vec::new()).unwrap()
}

/// The record operations of the account's commit `to`, which must come
/// right after its commit `from`: the ops of `to`'s `#commit` event, the
/// event after `from`'s in the log (the store keeps only the head commit,
/// as the reference does). Checked against the difference of `to`'s tree
/// and `from`'s, which the event's `prevData` names and whose nodes
/// the event's blocks and the store hold.
pub fn record_changes(state: &PdsState, did: &str, from: Cid, to: Cid) -> Vec<RecordOp> {
    let events = state.sequencer.events_after(0, 100_000).unwrap();
    let commits: Vec<Ipld> = events
        .iter()
        .filter(|event| event.did == did && event.frame.message_type() == Some("#commit"))
        .map(|event| event.frame.body().unwrap())
        .collect();
    let link = |body: &Ipld, name: &str| match body {
        Ipld::Map(map) => match map.get(name) {
            Some(Ipld::Link(cid)) => Some(*cid),
            _ => None,
        },
        _ => None,
    };
    let at = commits
        .iter()
        .position(|body| link(body, "commit") == Some(to))
        .expect("no event for the commit");
    assert!(at > 0, "no event before the commit");
    assert_eq!(
        link(&commits[at - 1], "commit"),
        Some(from),
        "not the next commit"
    );
    let Ipld::Map(body) = &commits[at] else {
        panic!("not a map")
    };
    let Some(Ipld::List(ops)) = body.get("ops") else {
        panic!("no ops")
    };
    ops.iter()
        .map(|op| {
            let path = match op {
                Ipld::Map(map) => match map.get("path") {
                    Some(Ipld::String(path)) => path.clone(),
                    _ => panic!("op without a path"),
                },
                _ => panic!("op is not a map"),
            };
            RecordOp {
                path,
                old: link(op, "prev"),
                new: link(op, "cid"),
            }
        })
        .collect()
}

/// Every record in the index, as (path, CID), sorted by path.
pub fn indexed(state: &PdsState, did: &str) -> Vec<(String, String)> {
    let store = store(state, did);
    let mut out = Vec::new();
    for collection in store.collections().unwrap() {
        for entry in store.list_records(&collection, 10_000, None, true).unwrap() {
            out.push((
                format!("{}/{}", entry.collection, entry.rkey),
                entry.cid.to_string(),
            ));
        }
    }
    out.sort();
    out
}

/// Records listed through the XRPC methods: (path, CID), sorted.
pub async fn listed(pds: &Pds, did: &str) -> Vec<(String, String)> {
    let described = describe(pds, did).await.unwrap();
    let mut out = Vec::new();
    for collection in described["collections"].as_array().unwrap() {
        let page = list(
            pds,
            json!({"repo": did, "collection": collection, "limit": 100}),
        )
        .await;
        for record in page["records"].as_array().unwrap() {
            let uri = record["uri"].as_str().unwrap();
            let path = uri.splitn(4, '/').nth(3).unwrap().to_owned();
            out.push((path, record["cid"].as_str().unwrap().to_owned()));
        }
    }
    out.sort();
    out
}

/// The `records` of a node script's answer as (path, CID), in its order.
pub fn answered_records(answer: &Value) -> Vec<(String, String)> {
    answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["cid"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A record of [`THING`] with the extra `fields`.
pub fn thing_record(fields: impl IntoIterator<Item = (&'static str, Ipld)>) -> Ipld {
    let mut map = BTreeMap::from([("$type".to_owned(), Ipld::String(THING.to_owned()))]);
    map.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    Ipld::Map(map)
}

/// A repository for `did` built in memory: `fill` writes its records, then
/// it is committed with `key` at a fresh rev. Returns the commit's CID, its
/// rev and the repository as a CAR.
pub fn build_repo(
    did: &str,
    key: &SigningKey,
    fill: impl FnOnce(&mut Repo<&MemoryBlockStore>),
) -> (Cid, String, Vec<u8>) {
    let blocks = MemoryBlockStore::new();
    let mut repo = Repo::create(&blocks, did).unwrap();
    fill(&mut repo);
    let rev = atp_syntax::TidClock::global().next();
    let commit = repo.commit(key, rev.as_str()).unwrap();
    let car = export_repo_car(&blocks, commit.cid, Vec::new()).unwrap();
    (commit.cid, rev.as_str().to_owned(), car)
}

/// The refusal of `createRecord` with `input` as `account`: status, error
/// name and message.
pub async fn refused_create(
    pds: &Pds,
    account: &TestAccount,
    input: Value,
) -> (u16, String, String) {
    crate::common::refusal(create(pds, account, input).await)
}
