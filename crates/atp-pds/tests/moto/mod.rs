//! The blob tests' S3 stand-in: a moto server ([`MotoServer`]) and the
//! settings of a bucket on it.
#![allow(clippy::unwrap_used, dead_code)]

use atp_pds::blob_store::{S3BlobStore, S3Config};
use atp_test_vectors::MotoServer;

/// A running moto server.
pub struct Moto {
    server: MotoServer,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Moto {
    /// Starts moto from the test peers' venv and waits until it listens.
    pub async fn start() -> Moto {
        let server = tokio::task::spawn_blocking(MotoServer::start)
            .await
            .unwrap();
        let url = server.url.clone();
        Moto { server, url }
    }

    /// Settings for `bucket` on this server (path style, test credentials).
    pub fn config(&self, bucket: &str) -> S3Config {
        let mut config = S3Config::new(bucket);
        config.endpoint = Some(self.url.clone());
        config.force_path_style = true;
        config.access_key_id = Some(MotoServer::ACCESS_KEY_ID.to_owned());
        config.secret_access_key = Some(MotoServer::SECRET_ACCESS_KEY.to_owned());
        config
    }

    /// A store on a new bucket `bucket`.
    pub async fn store(&self, bucket: &str) -> S3BlobStore {
        let store = S3BlobStore::new(&self.config(bucket)).unwrap();
        store.create_bucket().await.unwrap();
        store
    }
}
