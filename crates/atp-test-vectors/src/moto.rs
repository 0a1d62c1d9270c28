//! A moto S3 server (from the test peers' virtual environment) on a free
//! loopback port, stopped on drop.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running moto server: an S3 stand-in for the blob-store tests.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl MotoServer {
    /// The access key id the tests sign with (moto accepts any).
    pub const ACCESS_KEY_ID: &'static str = "test-key";
    /// The secret access key the tests sign with (moto accepts any).
    pub const SECRET_ACCESS_KEY: &'static str = "test-secret";

    /// Starts moto and waits (up to 30 s) until it accepts connections.
    /// Panics if it cannot: tests that need S3 must fail loudly.
    pub fn start() -> MotoServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .unwrap_or_else(|err| panic!("no free loopback port for moto: {err}"));
        let child = Command::new(crate::python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start moto: {err}"));
        let mut server = MotoServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..300 {
            if TcpStream::connect(&addr).is_ok() {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto exited with {status} before listening on {addr}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = server.child.kill();
        panic!("moto did not start on {addr}");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
