//! The operator commands against a running `pds serve` whose blobs are in
//! S3 (a moto server on loopback) and which requires invite codes: the
//! bulk account import (profiles with avatars, first posts, app passwords,
//! failures per row, idempotent reruns, resuming an interrupted row) and
//! the admin commands (list, info, invites, takedown, password reset,
//! deletion).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use atp_pds::blob_store::{S3BlobStore, S3Config};
use atp_test_vectors::MotoServer;
use atp_xrpc::client::XrpcClient;
use base64::Engine as _;
use common::{
    account_create_args, csv_rows, field, free_port, pds_command, posts_of, run_pds, spawn_logged,
    stderr, stdout, succeeded, wait_ready, Running,
};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "operator-test-admin";
const BUCKET: &str = "pds-blobs";

/// A 1x1 PNG.
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// A moto S3 server with the bucket [`BUCKET`], and its URL.
async fn start_moto() -> (MotoServer, String) {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap();
    let mut config = S3Config::new(BUCKET);
    config.endpoint = Some(moto.url.clone());
    config.force_path_style = true;
    config.access_key_id = Some(MotoServer::ACCESS_KEY_ID.to_owned());
    config.secret_access_key = Some(MotoServer::SECRET_ACCESS_KEY.to_owned());
    S3BlobStore::new(&config)
        .unwrap()
        .create_bucket()
        .await
        .unwrap();
    let url = moto.url.clone();
    (moto, url)
}

/// Starts `pds serve` with `vars` and waits for `describeServer`.
async fn start_pds(dir: &Path, port: u16, vars: &[(&str, String)]) -> (Running, String) {
    let log = dir.join("pds.log");
    let mut running = spawn_logged(pds_command(dir, vars).arg("serve"), &log);
    let url = format!("http://localhost:{port}");
    wait_ready(&mut running, &url, &log).await;
    (running, url)
}

/// The operator's command line against the server at `url`, run in `dir`.
struct Operator {
    dir: PathBuf,
    url: String,
}

impl Operator {
    /// Runs `pds --pds-url URL <args>` with the admin password in the
    /// environment.
    async fn run(&self, args: &[&str]) -> Output {
        self.run_as(Some(ADMIN_PASSWORD), args).await
    }

    /// Like [`Operator::run`], with `admin_password` (if any) in the
    /// environment.
    async fn run_as(&self, admin_password: Option<&str>, args: &[&str]) -> Output {
        let vars: Vec<(&str, String)> = admin_password
            .map(|password| ("PDS_ADMIN_PASSWORD", password.to_owned()))
            .into_iter()
            .collect();
        let mut all = vec!["--pds-url", self.url.as_str()];
        all.extend_from_slice(args);
        run_pds(&self.dir, &vars, &all).await
    }

    /// Runs `args` as [`Operator::run`] does; they must succeed. Their
    /// standard output.
    async fn ok(&self, args: &[&str]) -> String {
        succeeded(&self.run(args).await)
    }
}

/// The last output row of `handle`.
fn last_row(rows: &[Vec<String>], handle: &str) -> Vec<String> {
    rows.iter()
        .rev()
        .find(|r| r[0] == handle)
        .cloned()
        .unwrap_or_else(|| panic!("no output row for {handle}: {rows:?}"))
}

async fn login(url: &str, identifier: &str, password: &str) -> Result<Value, atp_xrpc::Error> {
    XrpcClient::new(url)
        .unwrap()
        .procedure(
            "com.atproto.server.createSession",
            &(),
            &json!({ "identifier": identifier, "password": password }),
        )
        .await
}

#[tokio::test]
async fn bulk_import_and_admin_commands_against_a_server_with_s3_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let (_moto, s3_url) = start_moto().await;
    let port = free_port();
    let data = dir.path().join("data");
    let vars = vec![
        ("PDS_HOSTNAME", "localhost".to_owned()),
        ("PDS_PORT", port.to_string()),
        ("PDS_DATA_DIRECTORY", data.display().to_string()),
        ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("PDS_JWT_SECRET", "operator-test-jwt-secret".to_owned()),
        ("PDS_INVITE_REQUIRED", "true".to_owned()),
        ("PDS_BLOBSTORE_S3_BUCKET", BUCKET.to_owned()),
        ("PDS_BLOBSTORE_S3_ENDPOINT", s3_url.clone()),
        ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true".to_owned()),
        (
            "PDS_BLOBSTORE_S3_ACCESS_KEY_ID",
            MotoServer::ACCESS_KEY_ID.to_owned(),
        ),
        (
            "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
            MotoServer::SECRET_ACCESS_KEY.to_owned(),
        ),
    ];
    let (_server, url) = start_pds(dir.path(), port, &vars).await;
    let operator = Operator {
        dir: dir.path().to_path_buf(),
        url: url.clone(),
    };
    let client = XrpcClient::new(&url).unwrap();

    // Without an invite code the server refuses; the command makes one.
    let carol_created = operator
        .ok(&account_create_args(
            "carol.test",
            "carol@example.com",
            Some("carol-pw"),
        ))
        .await;

    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_BASE64)
        .unwrap();
    std::fs::create_dir(dir.path().join("avatars")).unwrap();
    std::fs::write(dir.path().join("avatars/alice.png"), &png).unwrap();
    let csv_path = dir.path().join("people.csv");
    let out_path = dir.path().join("people.out.csv");
    std::fs::write(
        &csv_path,
        "handle,display name,description,avatar,first post\n\
         alice,Alice Liddell,\"Curious, very.\",avatars/alice.png,Down the rabbit hole!\n\
         bob,Bob,,,\n\
         carol,Carol,,,\n\
         bad_handle!,Bad,,,\n",
    )
    .unwrap();
    let csv_arg = csv_path.to_str().unwrap();

    // Without the admin password no invite code can be made: nothing starts.
    let no_admin = operator
        .run_as(None, &["accounts", "import", "--no-progress", csv_arg])
        .await;
    assert!(!no_admin.status.success());
    assert!(
        stderr(&no_admin).contains("no admin password"),
        "{}",
        stderr(&no_admin)
    );
    assert!(!out_path.exists());

    // First run: two accounts, two failures reported per row.
    let first = operator
        .run(&["accounts", "import", csv_arg, "--no-progress"])
        .await;
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("4 rows: 2 created, 0 resumed, 0 already done, 2 failed"),
        "{}\n{}",
        stdout(&first),
        stderr(&first)
    );
    let errors = stderr(&first);
    assert!(
        errors.contains("line 4 (carol.test): the handle is already taken"),
        "{errors}"
    );
    assert!(errors.contains("line 5 (bad_handle!.test)"), "{errors}");

    let rows = csv_rows(&out_path);
    let alice = last_row(&rows, "alice.test");
    assert_eq!(alice[3], "done");
    assert!(alice[1].starts_with("did:plc:"));
    let bob = last_row(&rows, "bob.test");
    assert_eq!(bob[3], "done");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The app password signs in.
    let session = login(&url, "alice.test", &alice[2]).await.unwrap();
    assert_eq!(session["did"], alice[1].as_str());

    // The profile, with the avatar blob served back from S3.
    let profile: Value = client
        .query(
            "com.atproto.repo.getRecord",
            &json!({ "repo": alice[1], "collection": "app.bsky.actor.profile", "rkey": "self" }),
        )
        .await
        .unwrap();
    assert_eq!(profile["value"]["displayName"], "Alice Liddell");
    assert_eq!(profile["value"]["description"], "Curious, very.");
    assert_eq!(profile["value"]["avatar"]["mimeType"], "image/png");
    let avatar_cid = profile["value"]["avatar"]["ref"]["$link"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = client
        .query_bytes(
            "com.atproto.sync.getBlob",
            &json!({ "did": alice[1], "cid": avatar_cid }),
        )
        .await
        .unwrap();
    assert_eq!(blob.bytes.to_vec(), png);
    assert!(!data.join("blocks").exists(), "blobs went to disk");
    let posts = posts_of(&url, &alice[1]).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["value"]["text"], "Down the rabbit hole!");

    // Second run: nothing to do for the finished rows.
    let second = operator
        .run(&["accounts", "import", csv_arg, "--no-progress"])
        .await;
    assert!(
        stdout(&second).contains("4 rows: 0 created, 0 resumed, 2 already done, 2 failed"),
        "{}",
        stdout(&second)
    );
    assert_eq!(posts_of(&url, &alice[1]).await.len(), 1);

    // An interrupted row: dave's account and first post exist, the output
    // only says "started" with his DID. The rerun finishes it without a
    // second post. Frank's "started" row has no DID: his existing account
    // is not taken over.
    let dave_created = operator
        .ok(&account_create_args(
            "dave.test",
            "dave@example.com",
            Some("dave-pw"),
        ))
        .await;
    operator
        .ok(&[
            "post",
            "--handle",
            "dave.test",
            "--password",
            "dave-pw",
            "--text",
            "Hi",
            "--image",
            dir.path().join("avatars/alice.png").to_str().unwrap(),
            "--alt",
            "a pixel",
        ])
        .await;
    let dave_did = field(&dave_created, "DID:");
    operator
        .ok(&account_create_args(
            "frank.test",
            "frank@example.com",
            None,
        ))
        .await;
    {
        use std::io::Write;
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&out_path)
            .unwrap();
        writeln!(out, "dave.test,{dave_did},,started").unwrap();
        writeln!(out, "frank.test,,,started").unwrap();
    }
    {
        use std::io::Write;
        let mut input = std::fs::OpenOptions::new()
            .append(true)
            .open(&csv_path)
            .unwrap();
        writeln!(input, "dave,Dave,Resumed,,Hi").unwrap();
        writeln!(input, "frank,Frank,,,").unwrap();
    }
    let third = operator
        .run(&["accounts", "import", csv_arg, "--no-progress"])
        .await;
    assert!(
        stdout(&third).contains("6 rows: 0 created, 1 resumed, 2 already done, 3 failed"),
        "{}\n{}",
        stdout(&third),
        stderr(&third)
    );
    assert!(
        stderr(&third).contains("line 7 (frank.test): the handle belongs to did:plc:"),
        "{}",
        stderr(&third)
    );
    let dave = last_row(&csv_rows(&out_path), "dave.test");
    assert_eq!(dave[1], dave_did);
    assert_eq!(dave[3], "done");
    let dave_posts = posts_of(&url, &dave[1]).await;
    assert_eq!(dave_posts.len(), 1, "{dave_posts:?}");
    assert_eq!(
        dave_posts[0]["value"]["embed"]["images"][0]["alt"],
        "a pixel"
    );
    assert!(login(&url, "dave.test", &dave[2]).await.is_ok());

    // Admin commands.
    let listed = operator.ok(&["account", "list"]).await;
    for handle in ["alice.test", "bob.test", "carol.test", "dave.test"] {
        assert!(listed.contains(handle), "{listed}");
    }
    let info: Value =
        serde_json::from_str(&operator.ok(&["account", "info", "alice.test"]).await).unwrap();
    assert_eq!(info["did"], alice[1].as_str());
    assert_eq!(info["handle"], "alice.test");
    assert_eq!(info["email"], "alice.test@test");

    let code = operator
        .ok(&["invite", "create", "--uses", "2"])
        .await
        .trim()
        .to_owned();
    let created: Value = client
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": "erin.test", "email": "erin@example.com", "password": "erin-pw", "inviteCode": code }),
        )
        .await
        .unwrap();
    assert!(created["did"].as_str().unwrap().starts_with("did:plc:"));

    operator.ok(&["account", "takedown", "carol.test"]).await;
    let refused = login(&url, "carol.test", "carol-pw").await.unwrap_err();
    assert!(refused.to_string().contains("AccountTakedown"), "{refused}");
    let listed = operator.ok(&["account", "list"]).await;
    let carol_line = listed.lines().find(|l| l.contains("carol.test")).unwrap();
    assert!(carol_line.trim_end().ends_with("takendown"), "{listed}");
    let alice_line = listed.lines().find(|l| l.contains("alice.test")).unwrap();
    assert!(alice_line.contains("alice.test@test") && alice_line.trim_end().ends_with("active"));
    assert!(login(&url, "bob.test", &bob[2]).await.is_ok());
    // A taken-down account's handle no longer resolves: the DID does.
    let by_handle = operator
        .run(&["account", "takedown", "carol.test", "--revert"])
        .await;
    assert!(!by_handle.status.success());
    assert!(
        stderr(&by_handle).contains("pass its DID"),
        "{}",
        stderr(&by_handle)
    );
    let carol_did = field(&carol_created, "DID:");
    operator
        .ok(&["account", "takedown", &carol_did, "--revert"])
        .await;
    assert!(login(&url, "carol.test", "carol-pw").await.is_ok());

    let reset = operator
        .ok(&["account", "reset-password", "carol.test"])
        .await;
    let new_password = reset
        .lines()
        .find_map(|l| l.trim().strip_prefix("new password:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(login(&url, "carol.test", "carol-pw").await.is_err());
    assert!(login(&url, "carol.test", &new_password).await.is_ok());

    operator.ok(&["account", "delete", &bob[1]]).await;
    let listed = operator.ok(&["account", "list"]).await;
    assert!(!listed.contains("bob.test"), "{listed}");
    let gone = operator.run(&["account", "info", "bob.test"]).await;
    assert!(!gone.status.success());

    // A wrong admin password is refused with the server's answer.
    let wrong = operator.run_as(Some("wrong"), &["account", "list"]).await;
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("AuthRequired") || stderr(&wrong).contains("Unauthorized"),
        "{}",
        stderr(&wrong)
    );
}
