//! A PDS embedded in a program: the flow the `embedded_pds` example runs.
//!
//! [`run`] starts a PLC directory and a PDS inside the current process, on
//! loopback ports chosen by the system, then acts as a client:
//!
//! 1. creates an account (`com.atproto.server.createAccount`), which also
//!    registers its `did:plc` with the directory;
//! 2. posts a record (`com.atproto.repo.createRecord`);
//! 3. reads it back (`com.atproto.repo.getRecord`);
//! 4. exports the repository as a CAR file (`com.atproto.sync.getRepo`) and
//!    verifies it with [`atp_repo_mst::import::import_car`]: the commit's
//!    DID, its signature with the key the directory publishes for that DID,
//!    and every MST node and record;
//!
//! and shuts both servers down. Each step is reported to a callback, so the
//! example prints them and the test collects them.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), atp_examples::embedded_pds_tour::TourError> {
//! let data = tempfile::tempdir()?;
//! let tour = atp_examples::embedded_pds_tour::run(data.path(), |step| println!("{step}")).await?;
//! assert!(tour.records.iter().any(|(path, _)| path == &tour.post_path));
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use atp_crypto::{Algorithm, PublicKey, SigningKey};
use atp_did_plc::client::PlcClient;
use atp_did_plc::server::{PlcServer, ServerConfig as PlcConfig};
use atp_pds::http::{router, PdsState, ServiceInfo};
use atp_pds::service::{ServiceConfig, ServiceKeys};
use atp_pds::Storage;
use atp_repo_mst::import::{import_car, ImportOptions};
use atp_xrpc::auth::SessionTokenAuthority;
use atp_xrpc::client::XrpcClient;
use atp_xrpc::server::{ServerConfig, XrpcServer};
use serde_json::{json, Value};

/// Any error of the tour (the crates' own errors, boxed).
pub type TourError = Box<dyn std::error::Error + Send + Sync>;

/// The handle of the account the tour creates (`.test` is the handle
/// domain of this development server).
pub const HANDLE: &str = "curator.test";
/// The text of the post the tour writes.
pub const POST_TEXT: &str = "Hello from a PDS embedded in a Rust program!";

/// What the tour did.
#[derive(Debug, Clone)]
pub struct Tour {
    /// The account's DID (`did:plc:...`).
    pub did: String,
    /// The post's `at://` URI.
    pub post_uri: String,
    /// The post's MST key, `app.bsky.feed.post/<rkey>`.
    pub post_path: String,
    /// The post's CID, as `createRecord` answered it.
    pub post_cid: String,
    /// The post as `getRecord` read it back.
    pub post: Value,
    /// Size of the exported CAR file, in bytes.
    pub car_len: usize,
    /// Revision of the exported commit.
    pub rev: String,
    /// Records of the verified repository (path, CID), in key order.
    pub records: Vec<(String, String)>,
}

/// Runs the tour with a PDS keeping its data under `data_dir`, reporting
/// each step to `report`.
pub async fn run(data_dir: &Path, mut report: impl FnMut(&str)) -> Result<Tour, TourError> {
    // 1. A PLC directory, in memory: where did:plc identities are registered.
    //    (In production the PDS talks to https://plc.directory instead.)
    let plc = PlcServer::start(PlcConfig::in_memory()).await?;
    report(&format!("PLC directory listening at {}", plc.url()));

    // 2. The PDS: storage (SQLite files under data_dir), the key that signs
    //    PLC operations, a client of the directory, the session-token
    //    authority, and what `describeServer` says about the service.
    let mut config = ServiceConfig::new(data_dir, "http://localhost:2583");
    config.handle_domains = vec![".test".to_owned()];
    let mut state = PdsState::new(
        Storage::open(config)?,
        ServiceKeys {
            plc_rotation_key: SigningKey::generate(Algorithm::K256),
        },
        PlcClient::new(&plc.url())?,
        SessionTokenAuthority::new("a-secret-for-the-example-only", "did:web:localhost")?,
        ServiceInfo {
            did: "did:web:localhost".to_owned(),
            ..ServiceInfo::default()
        },
    )?;
    // Development mode: loopback addresses and `.test` handles are fine.
    state.dev_mode = true;
    let server = XrpcServer::bind("127.0.0.1:0", router(state)?, ServerConfig::default()).await?;
    let url = format!("http://{}", server.local_addr());
    report(&format!("PDS listening at {url}"));

    // The client part runs in its own function so that the servers are shut
    // down whatever it answers.
    let outcome = client_steps(&url, &plc.url(), &mut report).await;

    server.shutdown().await;
    plc.shutdown().await?;
    report("PDS and PLC directory stopped");
    outcome
}

/// The client's side of the tour, against the PDS at `url`.
async fn client_steps(
    url: &str,
    plc_url: &str,
    report: &mut impl FnMut(&str),
) -> Result<Tour, TourError> {
    let client = XrpcClient::new(url)?;

    // 3. An account. The PDS makes a signing key for the repository,
    //    registers a did:plc naming it, and answers with a session.
    let created: Value = client
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({
                "handle": HANDLE,
                "email": "curator@example.com",
                "password": "correct horse battery staple",
            }),
        )
        .await?;
    let did = text(&created, "did")?;
    let access_jwt = text(&created, "accessJwt")?;
    report(&format!("created account {HANDLE} with DID {did}"));

    // 4. A post, written with the session's access token.
    let authed = client.clone().with_bearer(&access_jwt)?;
    let written: Value = authed
        .procedure(
            "com.atproto.repo.createRecord",
            &(),
            &json!({
                "repo": did,
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": POST_TEXT,
                    "createdAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                },
            }),
        )
        .await?;
    let post_uri = text(&written, "uri")?;
    let post_cid = text(&written, "cid")?;
    let rkey = post_uri
        .rsplit('/')
        .next()
        .ok_or("the post URI has no record key")?
        .to_owned();
    report(&format!("posted {post_uri} (CID {post_cid})"));

    // 5. Read it back (no credentials needed: repositories are public).
    let read: Value = client
        .query(
            "com.atproto.repo.getRecord",
            &json!({ "repo": did, "collection": "app.bsky.feed.post", "rkey": rkey }),
        )
        .await?;
    if read["cid"] != json!(post_cid) {
        return Err(format!(
            "getRecord answered CID {}, expected {post_cid}",
            read["cid"]
        )
        .into());
    }
    report(&format!("read it back: {}", read["value"]["text"]));

    // 6. Export the whole repository as a CAR file.
    let car = client
        .query_bytes("com.atproto.sync.getRepo", &json!({ "did": did }))
        .await?
        .bytes;
    report(&format!(
        "exported the repository: {} bytes of CAR",
        car.len()
    ));

    // 7. Verify it as any other service would: the key comes from the DID
    //    document the directory serves, not from the PDS.
    let directory = PlcClient::new(plc_url)?;
    let data = directory.data(&did).await?;
    let did_key = data["verificationMethods"]["atproto"]
        .as_str()
        .ok_or("the DID has no atproto verification method")?;
    let options = ImportOptions {
        did: Some(did.clone()),
        signing_key: Some(PublicKey::from_did_key(did_key)?),
        ..ImportOptions::default()
    };
    let repo = import_car(car.as_ref(), &options)?;
    let post_path = format!("app.bsky.feed.post/{rkey}");
    let records: Vec<(String, String)> = repo
        .records
        .iter()
        .map(|(path, cid)| (path.clone(), cid.to_string()))
        .collect();
    if !records.contains(&(post_path.clone(), post_cid.clone())) {
        return Err(
            format!("the exported repository lacks {post_path} with CID {post_cid}").into(),
        );
    }
    report(&format!(
        "verified: commit rev {} signed by {did_key}, {} records, the post among them",
        repo.commit.rev,
        records.len()
    ));

    Ok(Tour {
        did,
        post_uri,
        post_path,
        post_cid,
        post: read["value"].clone(),
        car_len: car.len(),
        rev: repo.commit.rev.clone(),
        records,
    })
}

/// The string field `name` of an answer.
fn text(answer: &Value, name: &str) -> Result<String, TourError> {
    answer[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("the answer has no string `{name}`: {answer}").into())
}
