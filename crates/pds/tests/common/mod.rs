//! Start-up of the `pds` binary for the integration tests: a free port,
//! child processes killed on drop, commands with exactly the given
//! variables, and the wait until `pds serve` answers.
#![allow(clippy::unwrap_used, dead_code)]

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use atp_xrpc::client::XrpcClient;
use serde_json::Value;

/// The `pds` binary under test.
pub const PDS: &str = env!("CARGO_BIN_EXE_pds");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process, killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pds` run in `cwd` with exactly `vars` (plus `PATH`).
pub fn pds_command(cwd: &Path, vars: &[(&str, String)]) -> Command {
    let mut command = Command::new(PDS);
    command
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars.iter().map(|(k, v)| (k, v)));
    command
}

/// Starts `command` without input, its output (both streams) into `log`.
pub fn spawn_logged(command: &mut Command, log: &Path) -> Running {
    let out = File::create(log).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Running(child)
}

/// Waits until `describeServer` answers at `url`; panics with the log if
/// the server exits, or does not answer within two minutes.
pub async fn wait_ready(running: &mut Running, url: &str, log: &Path) {
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let client = XrpcClient::new(url)
        .unwrap()
        .with_timeout(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            panic!("pds serve exited with {status}:\n{}", log_text());
        }
        let answer: Result<Value, _> = client.query("com.atproto.server.describeServer", &()).await;
        if answer.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pds serve did not answer:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `pds <args>` in `cwd` with exactly `vars` (plus `PATH`) and no
/// input, off the async runtime's threads; its output.
pub async fn run_pds(cwd: &Path, vars: &[(&str, String)], args: &[&str]) -> Output {
    let mut command = pds_command(cwd, vars);
    command.args(args).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The standard output of a command, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The standard error of a command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The standard output of a command that must have succeeded (else a
/// panic showing both streams).
pub fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// The value after `label` on a line of `text` (`  DID:      did:plc:...`).
pub fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label} in {text}"))
}

/// Every row of the CSV file at `path` (the header excluded), in order.
pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The `app.bsky.feed.post` records of `did` on the server at `url`.
pub async fn posts_of(url: &str, did: &str) -> Vec<Value> {
    let answer: Value = XrpcClient::new(url)
        .unwrap()
        .query(
            "com.atproto.repo.listRecords",
            &serde_json::json!({ "repo": did, "collection": "app.bsky.feed.post" }),
        )
        .await
        .unwrap();
    answer["records"].as_array().unwrap().clone()
}

/// The arguments of `pds account create` for `handle` and `email`, with
/// `password` if given (else the command makes one up).
pub fn account_create_args<'a>(
    handle: &'a str,
    email: &'a str,
    password: Option<&'a str>,
) -> Vec<&'a str> {
    let mut args = vec!["account", "create", "--handle", handle, "--email", email];
    if let Some(password) = password {
        args.extend(["--password", password]);
    }
    args
}
