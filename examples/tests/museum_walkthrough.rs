//! Runs `examples/museum/walkthrough.sh` end to end against the workspace's
//! `pds` binary, then checks what it left: the output of each step, and the
//! exported repository (verified with `atp-repo-mst`).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use atp_repo_mst::import::{import_car, ImportOptions};

/// The workspace root (this crate lives in `<root>/examples`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds the `pds` binary (a test cannot rely on another package having
/// been built first) and answers its path.
fn pds_binary(root: &Path) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "pds", "--quiet"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p pds failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() {
        root.join(target)
    } else {
        target
    };
    target.join("debug").join("pds")
}

#[test]
fn the_museum_walkthrough_runs_end_to_end() {
    let root = workspace_root();
    let pds = pds_binary(&root);
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root.join("examples/museum/walkthrough.sh"))
        .env("PDS_BIN", &pds)
        .env("TMPDIR", tmp.path())
        .env("KEEP_DATA", "1")
        .env_remove("PDS_PORT")
        .env_remove("PDS_DATA_DIRECTORY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the walkthrough failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );

    // Summaries may go to standard error: look in both.
    let all = format!("{stdout}\n{stderr}");
    // Every object of the collection got an account.
    assert!(
        all.contains("5 rows: 5 created, 0 resumed, 0 already done, 0 failed"),
        "{all}"
    );
    assert!(all.contains("5 accounts"), "{all}");
    for handle in ["amphora", "astrolabe", "tapestry", "mask", "manuscript"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{handle}.test ")))
            .unwrap_or_else(|| panic!("{handle}.test is not listed\n{all}"));
        assert!(
            line.contains("did:plc:") && line.ends_with("active"),
            "{line}"
        );
    }
    // The post with an image was written.
    let post_uri = stdout
        .lines()
        .find(|l| l.starts_with("at://") && l.contains("/app.bsky.feed.post/"))
        .unwrap_or_else(|| panic!("no post URI\n{stdout}"));
    assert!(all.contains("request-crawl"), "{all}");

    // The exported repository: a valid, complete repository of the
    // astrolabe with its profile, its first post and the new one.
    let work = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("museum-walkthrough.")
        })
        .unwrap();
    let car = std::fs::read(work.join("astrolabe.test.car")).unwrap();
    let did = post_uri
        .trim_start_matches("at://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let repo = import_car(
        car.as_slice(),
        &ImportOptions {
            did: Some(did),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    let paths: Vec<&str> = repo.records.iter().map(|(p, _)| p.as_str()).collect();
    assert!(paths.contains(&"app.bsky.actor.profile/self"), "{paths:?}");
    let posts = paths
        .iter()
        .filter(|p| p.starts_with("app.bsky.feed.post/"))
        .count();
    assert_eq!(posts, 2, "{paths:?}");
    let rkey = post_uri.rsplit('/').next().unwrap();
    assert!(paths.contains(&format!("app.bsky.feed.post/{rkey}").as_str()));

    // The script reached its last step (stopping the server).
    assert!(stdout.lines().any(|l| l == "done"), "{stdout}");
}
