//! A moto S3 server on a free loopback port for the blob tests, stopped
//! on drop.
#![allow(clippy::unwrap_used, dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use atp_pds::blob_store::{S3BlobStore, S3Config};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Moto {
    /// Starts moto from the test peers' venv and waits until it listens.
    pub async fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(atp_test_vectors::python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..300 {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto did not start on {addr}");
    }

    /// Settings for `bucket` on this server (path style, test credentials).
    pub fn config(&self, bucket: &str) -> S3Config {
        let mut config = S3Config::new(bucket);
        config.endpoint = Some(self.url.clone());
        config.force_path_style = true;
        config.access_key_id = Some("test-key".to_owned());
        config.secret_access_key = Some("test-secret".to_owned());
        config
    }

    /// A store on a new bucket `bucket`.
    pub async fn store(&self, bucket: &str) -> S3BlobStore {
        let store = S3BlobStore::new(&self.config(bucket)).unwrap();
        store.create_bucket().await.unwrap();
        store
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
