//! Locates the shared AT Protocol test vectors used by this workspace's tests.
//!
//! The vectors are not copied into the project. They live beside the checkout:
//!
//! * `../shared/atproto-interop-tests/` (override with `ATPROTO_INTEROP_TESTS`)
//! * `../shared/mst-test-suite/` (override with `MST_TEST_SUITE`)
//!
//! A missing folder is a test failure with a message that says where it was
//! looked for, never a silent skip.

use std::path::{Path, PathBuf};

mod hex;
mod moto;
mod rng;

pub use hex::{hex_decode, hex_encode};
pub use moto::MotoServer;
pub use rng::TestRng;

/// Root of the workspace (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn locate(var: &str, default_name: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => workspace_root()
            .join("..")
            .join("shared")
            .join(default_name),
    };
    if !path.is_dir() {
        panic!(
            "test vectors not found at {} (set {var} to their folder); \
             these tests must not be skipped",
            path.display()
        );
    }
    path
}

/// Folder of the `atproto-interop-tests` vectors. Panics loudly if absent.
pub fn interop_dir() -> PathBuf {
    locate("ATPROTO_INTEROP_TESTS", "atproto-interop-tests")
}

/// Folder of the `mst-test-suite` cases. Panics loudly if absent.
pub fn mst_suite_dir() -> PathBuf {
    locate("MST_TEST_SUITE", "mst-test-suite")
}

/// Reads a file under the interop folder, e.g. `"crypto/signature-fixtures.json"`.
pub fn read_interop(rel: &str) -> String {
    let path = interop_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parses a JSON file under the interop folder.
pub fn interop_json(rel: &str) -> serde_json::Value {
    let text = read_interop(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

/// Lines of a syntax fixture file, without blank lines and `#` comments.
pub fn interop_lines(rel: &str) -> Vec<String> {
    read_interop(rel)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Prints how many cases of a fixture file a test ran, so the output names
/// the count per file.
///
/// The line is written to the process's standard output directly rather
/// than through `println!`, which the test harness captures: it shows in the
/// output of `cargo test` even when the test passes.
pub fn report(file: &str, cases: usize) {
    use std::io::Write;
    let line = format!("interop vectors: {file}: {cases} cases passed\n");
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
    assert!(
        cases > 0,
        "{file} had no cases: the fixture is empty or misread"
    );
}

/// Folder of the Node.js cross-implementation checks (`tests/interop`).
pub fn node_interop_dir() -> PathBuf {
    workspace_root().join("tests").join("interop")
}

/// Runs `node tests/interop/<script>` with `input` as JSON on standard input
/// and returns what the script printed on standard output, parsed as JSON.
///
/// The scripts use the reference TypeScript implementation from npm. If its
/// packages are not installed this panics with the command that installs them:
/// cross-implementation tests must fail loudly, never skip.
pub fn run_node(script: &str, input: &serde_json::Value) -> serde_json::Value {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let dir = node_interop_dir();
    if !dir.join("node_modules").is_dir() {
        panic!(
            "the reference implementation is not installed: run `npm ci` in {}",
            dir.display()
        );
    }
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node for {script}: {e}"));
    let body = serde_json::to_vec(input).expect("input serializes");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&body)
        .unwrap_or_else(|e| panic!("cannot write to {script}: {e}"));
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{script} did not finish: {e}"));
    assert!(
        output.status.success(),
        "{script} failed with {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed something that is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The Python interpreter of the test peers' virtual environment
/// (`tests/python/.venv`, with `aiosmtpd` and `moto`). Panics with the
/// command that creates it when it is missing: tests that need a real
/// SMTP or S3 server must fail loudly, never skip.
pub fn python() -> PathBuf {
    let python = workspace_root()
        .join("tests")
        .join("python")
        .join(".venv")
        .join("bin")
        .join("python");
    if !python.is_file() {
        panic!(
            "the Python test peers are not installed: run ./scripts/python-env.sh in {}",
            workspace_root().display()
        );
    }
    python
}
