//! Serving a [`Router`] on a TCP listener, with graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::{Router, ServerConfig};

/// Counts live tasks (connections, subscriptions) so shutdown can wait for
/// them.
#[derive(Debug, Default)]
pub(crate) struct TaskTracker {
    live: AtomicUsize,
    idle: Notify,
}

/// Held by a live task; dropping it marks the task finished.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<TaskTracker>);

impl TaskTracker {
    pub(crate) fn enter(self: &Arc<Self>) -> TaskGuard {
        self.live.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.clone())
    }

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// What a connection's requests share: the shutdown signal and the task
/// tracker (subscriptions outlive the request that opened them).
#[derive(Clone, Debug)]
pub(crate) struct ConnectionContext {
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) tracker: Arc<TaskTracker>,
}

/// A running server.
///
/// ```no_run
/// # async fn demo() -> Result<(), atp_xrpc::Error> {
/// use atp_xrpc::server::{Router, ServerConfig, XrpcServer, XrpcResponse};
///
/// let mut router = Router::new();
/// router.query("com.example.ping", |_req| async {
///     XrpcResponse::json(&serde_json::json!({ "pong": true }))
/// })?;
/// let server = XrpcServer::bind("127.0.0.1:0", router, ServerConfig::default()).await?;
/// println!("listening on {}", server.local_addr());
/// server.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct XrpcServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl XrpcServer {
    /// Binds `addr` and starts serving `router`.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        router: Router,
        config: ServerConfig,
    ) -> Result<Self, crate::Error> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_listener(listener, router, config)
    }

    /// Serves `router` on an already bound listener.
    pub fn from_listener(
        listener: TcpListener,
        router: Router,
        config: ServerConfig,
    ) -> Result<Self, crate::Error> {
        let local_addr = listener.local_addr()?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::new(router),
            Arc::new(config),
            shutdown_rx,
        ));
        Ok(XrpcServer {
            local_addr,
            shutdown,
            task,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections, lets in-flight requests finish, closes
    /// subscriptions, and returns when everything has ended (or the grace
    /// period of the configuration has passed).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    router: Arc<Router>,
    config: Arc<ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tracker = Arc::new(TaskTracker::default());
    let context = ConnectionContext {
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                // Out of file descriptors and the like: back off briefly.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let guard = tracker.enter();
        let router = router.clone();
        let config = config.clone();
        let context = context.clone();
        tokio::spawn(async move {
            let _guard = guard;
            serve_connection(stream, remote, router, config, context).await;
        });
    }
    drop(listener);
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over with tasks still running");
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    router: Arc<Router>,
    config: Arc<ServerConfig>,
    context: ConnectionContext,
) {
    let mut shutdown = context.shutdown.clone();
    let service = {
        let config = config.clone();
        let context = context.clone();
        service_fn(move |req| {
            let router = router.clone();
            let config = config.clone();
            let context = context.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    router.handle(req, Some(remote), &config, &context).await,
                )
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    if *shutdown.borrow() {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, %remote, "connection ended with an error");
                }
                break;
            }
            changed = shutdown.changed() => {
                conn.as_mut().graceful_shutdown();
                if changed.is_err() {
                    // The server is gone; finish the connection as it is.
                    let _ = conn.as_mut().await;
                    break;
                }
            }
        }
    }
}
