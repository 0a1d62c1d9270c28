//! A PLC directory server: the HTTP API of the reference directory
//! (`@did-plc/server`, what `https://plc.directory` runs), on hyper and
//! tokio, with the operation logs in SQLite.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /:did` | submit a signed operation: `200 OK`, or `400 {"message"}` saying which rule it broke |
//! | `GET /:did` | the DID document (`application/did+ld+json`) |
//! | `GET /:did/data` | keys, handles and services |
//! | `GET /:did/log` | the operations in effect, oldest first |
//! | `GET /:did/log/audit` | every accepted operation, nullified ones too, with CIDs and times |
//! | `GET /:did/log/last` | the most recent operation in effect |
//! | `GET /export?after=<time>&count=<n>` | operations of all DIDs as JSON lines, oldest first, 1000 at most |
//! | `GET /export?after=<seq>&count=<n>` | the same by sequence number (a decimal `after`), entries with `seq` and `type: "sequenced_op"`, as newer directories offer |
//! | `GET /_health` | `{"version": ...}` |
//!
//! An unknown DID answers `404 {"message": "DID not registered: <did>"}`; a
//! tombstoned DID's document and data answer
//! `404 {"message": "DID not available: <did>"}`, as the reference does.
//!
//! Submissions are validated with this crate's [`validate`](crate::validate)
//! rules and applied one at a time: validation and the write happen under
//! one lock, so two racing operations for a DID can never both build on the
//! same `prev` (the loser is judged against the log that includes the
//! winner).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), atp_did_plc::Error> {
//! use atp_did_plc::server::{PlcServer, ServerConfig};
//!
//! let server = PlcServer::start(ServerConfig::in_memory()).await?;
//! println!("directory at {}", server.url());
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod routes;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Error;
use store::Store;

/// Where the directory keeps its logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// A private in-memory database, lost at shutdown (tests, throwaway
    /// development directories).
    InMemory,
    /// A SQLite file (created if missing), in WAL mode.
    File(PathBuf),
}

/// How to run a directory server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Where the logs are kept.
    pub database: Database,
    /// Version reported by `GET /_health`.
    pub version: String,
    /// How long [`PlcServer::shutdown`] waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Whether to apply the reference directory's per-DID rate limit on
    /// operations that nullify nothing (fewer than 10 an hour, 30 a day,
    /// 100 a week). On by default, as on `plc.directory`; test suites that
    /// update one DID many times may turn it off.
    pub rate_limit: bool,
}

impl ServerConfig {
    /// An in-memory directory on a free loopback port.
    pub fn in_memory() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: Database::InMemory,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            shutdown_grace: Duration::from_secs(10),
            rate_limit: true,
        }
    }

    /// A directory keeping its logs in the SQLite file at `path`, on a free
    /// loopback port.
    pub fn with_file(path: impl Into<PathBuf>) -> Self {
        ServerConfig {
            database: Database::File(path.into()),
            ..ServerConfig::in_memory()
        }
    }

    /// The same configuration listening on `bind`.
    pub fn bind(mut self, bind: SocketAddr) -> Self {
        self.bind = bind;
        self
    }

    /// The same configuration without the per-DID rate limit.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate_limit = false;
        self
    }
}

/// State shared by every request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    pub(crate) version: String,
    pub(crate) rate_limit: bool,
}

/// A running directory server. Dropping it without
/// [`shutdown`](PlcServer::shutdown) stops accepting connections too, but
/// does not wait for requests in flight.
#[derive(Debug)]
pub struct PlcServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl PlcServer {
    /// Opens the database, binds the address and starts serving in the
    /// background (on the current tokio runtime).
    pub async fn start(config: ServerConfig) -> Result<PlcServer, Error> {
        let database = config.database.clone();
        let store = tokio::task::spawn_blocking(move || match database {
            Database::InMemory => Store::open_in_memory(),
            Database::File(path) => Store::open(&path),
        })
        .await
        .map_err(|e| Error::Server(format!("opening the database: {e}")))??;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| Error::Server(format!("cannot listen on {}: {e}", config.bind)))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| Error::Server(format!("no local address: {e}")))?;
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            version: config.version,
            rate_limit: config.rate_limit,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, shared, stopped, config.shutdown_grace));
        Ok(PlcServer {
            local_addr,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL of the directory, e.g. `http://127.0.0.1:2582`.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Stops accepting connections, lets requests in flight finish (up to
    /// the configured grace period), and closes the database.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        // The receiver lives in the server task; if it is gone the server
        // has already stopped.
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| Error::Server(format!("the server task failed: {e}"))),
            None => Ok(()),
        }
    }
}

impl Drop for PlcServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Accepts connections until told to stop, then drains them.
async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(pair) => pair,
                    // Transient accept failures (too many open files, a
                    // connection reset before accept): pause briefly.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = Arc::clone(&shared);
                let service = service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, std::convert::Infallible>(routes::handle(shared, request).await) }
                });
                let connection = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    // A client hanging up mid-request is not the server's
                    // problem.
                    let _ = connection.await;
                });
            }
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}
