//! The reference directory (`@did-plc/server` 0.0.1 with its in-memory
//! database) as a child process, through `tests/interop/plc-server.mjs`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The reference server, stopped when dropped (its stdin closes).
pub struct ReferenceServer {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
}

impl ReferenceServer {
    /// Starts it and waits until it listens.
    pub fn start() -> Self {
        let dir = atp_test_vectors::node_interop_dir();
        assert!(
            dir.join("node_modules").is_dir(),
            "the reference implementation is not installed: run `npm ci` in {}",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("plc-server.mjs"))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("plc-server.mjs printed {line:?}: {e}"));
        let port = u16::try_from(started["port"].as_u64().unwrap()).unwrap();
        ReferenceServer { child, port }
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl ReferenceServer {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
