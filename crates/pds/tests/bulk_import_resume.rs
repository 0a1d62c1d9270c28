//! `pds accounts import` killed with SIGKILL halfway and run again: the
//! second run finishes the batch with exactly one account per row, no
//! duplicate handle or DID (in the output file or on the server), and every
//! profile with its avatar served back. Also the narrowest interruption:
//! the account created but the run stopped before its DID reached the
//! output file (a `started` row without a DID) is taken up, not refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use atp_xrpc::client::XrpcClient;
use common::{csv_rows, free_port, pds_command, spawn_logged, wait_ready, Running, PDS};
use serde_json::{json, Value};

const ADMIN_PASSWORD: &str = "bulk-resume-admin";
/// Rows of the batch.
const ROWS: usize = 60;

/// A child process killed on drop.
/// `pds serve` in development mode (embedded PLC directory) on `dir`.
async fn start_pds(dir: &Path) -> (Running, String) {
    let port = free_port();
    let log = dir.join("pds.log");
    let vars = [
        ("PDS_HOSTNAME", "localhost".to_owned()),
        ("PDS_PORT", port.to_string()),
        ("PDS_DATA_DIRECTORY", dir.join("data").display().to_string()),
        ("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("PDS_INVITE_REQUIRED", "false".to_owned()),
        ("PDS_RATE_LIMITS_ENABLED", "false".to_owned()),
    ];
    let mut running = spawn_logged(pds_command(dir, &vars).arg("serve"), &log);
    let url = format!("http://localhost:{port}");
    wait_ready(&mut running, &url, &log).await;
    (running, url)
}

/// The import command, not yet started.
fn import_command(dir: &Path, url: &str, input: &Path, output: &Path) -> Command {
    let mut command = Command::new(PDS);
    command
        .args(["--pds-url", url, "accounts", "import", "--no-progress"])
        .arg(input)
        .arg("-o")
        .arg(output)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PDS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdin(Stdio::null());
    command
}

// ---- a tiny PNG writer, for distinct avatars ----

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// An 8x8 PNG of one colour (zlib with one stored block).
fn png(rgb: [u8; 3]) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    // Each scanline: filter type 0, then eight pixels.
    let mut line = vec![0u8];
    line.extend(rgb.iter().copied().cycle().take(8 * 3));
    let raw = line.repeat(8);
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&8u32.to_be_bytes());
    ihdr.extend_from_slice(&8u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn name(i: usize) -> String {
    format!("user{i:03}")
}

fn input_line(i: usize) -> String {
    let n = name(i);
    format!("{n},User {i},\"Row {i}, imported\",avatars/{n}.png,Hello from {n}\n")
}

fn done_rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().filter(|l| l.ends_with(",done")).count())
        .unwrap_or(0)
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn an_import_killed_halfway_finishes_on_rerun_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, url) = start_pds(dir.path()).await;
    let client = XrpcClient::new(&url).unwrap();

    std::fs::create_dir(dir.path().join("avatars")).unwrap();
    let mut avatars = HashMap::new();
    for i in 0..ROWS {
        let bytes = png([i as u8, 255 - i as u8, 77]);
        std::fs::write(dir.path().join(format!("avatars/{}.png", name(i))), &bytes).unwrap();
        avatars.insert(format!("{}.test", name(i)), bytes);
    }
    // The last row joins only for the rerun (see below).
    let input: PathBuf = dir.path().join("people.csv");
    let mut csv_text = "handle,display name,description,avatar,first post\n".to_owned();
    for i in 0..ROWS - 1 {
        csv_text.push_str(&input_line(i));
    }
    std::fs::write(&input, csv_text).unwrap();
    let output = dir.path().join("people.out.csv");

    // First run, killed with SIGKILL once about half the rows are done.
    let mut first = Running(
        import_command(dir.path(), &url, &input, &output)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    while done_rows(&output) < ROWS / 2 {
        assert!(
            first.0.try_wait().unwrap().is_none(),
            "the import ended before it could be killed"
        );
        assert!(Instant::now() < deadline, "the import does not progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    drop(first);
    let done_before = done_rows(&output);
    assert!(
        done_before < ROWS - 1,
        "killed too late: {done_before} rows done"
    );

    // The narrowest interruption, made on purpose for the last row: its
    // account was created (with the email the import gives) but the run
    // died before the DID was written: the output has a `started` row
    // without a DID.
    let last = format!("{}.test", name(ROWS - 1));
    let created: Value = client
        .procedure(
            "com.atproto.server.createAccount",
            &(),
            &json!({ "handle": last, "email": format!("{last}@test"), "password": "lost-password" }),
        )
        .await
        .unwrap();
    let last_did = created["did"].as_str().unwrap().to_owned();
    {
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&output)
            .unwrap();
        writeln!(out, "{last},,,started").unwrap();
        let mut input_file = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .unwrap();
        input_file
            .write_all(input_line(ROWS - 1).as_bytes())
            .unwrap();
    }

    // Second run, to completion.
    let second = tokio::task::spawn_blocking({
        let (dir, url, input, output) = (
            dir.path().to_path_buf(),
            url.clone(),
            input.clone(),
            output.clone(),
        );
        move || {
            import_command(&dir, &url, &input, &output)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(second.status.success(), "{}", text(&second));
    let summary = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(summary.contains(&format!("{ROWS} rows:")), "{summary}");
    assert!(summary.contains(", 0 failed"), "{summary}");
    assert!(
        summary.contains(&format!("{done_before} already done")),
        "{summary}"
    );

    // The output file: the last row of every handle is done; one DID per
    // handle across all its rows; DIDs unique.
    let rows = csv_rows(&output);
    let mut last_rows: HashMap<String, Vec<String>> = HashMap::new();
    let mut did_of: HashMap<String, String> = HashMap::new();
    for row in &rows {
        if !row[1].is_empty() {
            let known = did_of.entry(row[0].clone()).or_insert(row[1].clone());
            assert_eq!(known, &row[1], "two DIDs for {}", row[0]);
        }
        last_rows.insert(row[0].clone(), row.clone());
    }
    assert_eq!(last_rows.len(), ROWS, "{rows:?}");
    assert!(last_rows.values().all(|r| r[3] == "done"), "{rows:?}");
    let dids: HashSet<&String> = last_rows.values().map(|r| &r[1]).collect();
    assert_eq!(dids.len(), ROWS, "duplicate DIDs in the output");
    assert_eq!(
        last_rows[&last][1], last_did,
        "the last row was not taken up"
    );
    assert_eq!(
        rows.iter().filter(|r| r[3] == "done").count(),
        ROWS,
        "a row was finished twice"
    );

    // The server: exactly these accounts.
    let repos: Value = client
        .query("com.atproto.sync.listRepos", &json!({ "limit": 1000 }))
        .await
        .unwrap();
    let server_dids: Vec<String> = repos["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["did"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(server_dids.len(), ROWS, "{repos}");
    let server_set: HashSet<&String> = server_dids.iter().collect();
    assert_eq!(server_set.len(), ROWS, "duplicate repositories");
    assert_eq!(
        server_set, dids,
        "the server's accounts are not the output's"
    );

    // Every account: its handle, its profile, its avatar, one first post,
    // and the app password signs in.
    let mut handles = HashSet::new();
    for (handle, row) in &last_rows {
        let did = &row[1];
        let described: Value = client
            .query("com.atproto.repo.describeRepo", &json!({ "repo": did }))
            .await
            .unwrap();
        assert_eq!(described["handle"], handle.as_str());
        handles.insert(handle.clone());
        let profile: Value = client
            .query(
                "com.atproto.repo.getRecord",
                &json!({ "repo": did, "collection": "app.bsky.actor.profile", "rkey": "self" }),
            )
            .await
            .unwrap();
        let i: usize = handle[4..7].parse().unwrap();
        assert_eq!(profile["value"]["displayName"], format!("User {i}"));
        assert_eq!(profile["value"]["avatar"]["mimeType"], "image/png");
        let cid = profile["value"]["avatar"]["ref"]["$link"].as_str().unwrap();
        let blob = client
            .query_bytes(
                "com.atproto.sync.getBlob",
                &json!({ "did": did, "cid": cid }),
            )
            .await
            .unwrap();
        assert_eq!(&blob.bytes.to_vec(), &avatars[handle], "avatar of {handle}");
        let posts: Value = client
            .query(
                "com.atproto.repo.listRecords",
                &json!({ "repo": did, "collection": "app.bsky.feed.post" }),
            )
            .await
            .unwrap();
        assert_eq!(posts["records"].as_array().unwrap().len(), 1, "{handle}");
    }
    assert_eq!(handles.len(), ROWS);
    let session: Value = client
        .procedure(
            "com.atproto.server.createSession",
            &(),
            &json!({ "identifier": last, "password": last_rows[&last][2] }),
        )
        .await
        .unwrap();
    assert_eq!(session["did"], last_did.as_str());
}
