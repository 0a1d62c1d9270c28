//! The server side of a subscription: the WebSocket handshake over a hyper
//! upgrade, then a pump from the handler's stream to the socket through a
//! bounded buffer.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{SinkExt, Stream, StreamExt};
use hyper::header::{self, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::Frame;
use crate::server::serve::ConnectionContext;
use crate::server::{
    BoxFuture, Credentials, QueryParams, RequestHead, ResponseBody, ServerConfig, XrpcError,
};

/// The frames a subscription handler sends, in order.
pub type FrameStream = Pin<Box<dyn Stream<Item = Frame> + Send>>;

/// A boxed subscription handler.
pub type SubscriptionHandler = Arc<
    dyn Fn(SubscriptionRequest) -> BoxFuture<'static, Result<FrameStream, XrpcError>> + Send + Sync,
>;

/// Error name of the frame sent to a subscriber that does not keep up.
pub const CONSUMER_TOO_SLOW: &str = "ConsumerTooSlow";

/// How long the final error frame and close may take to send.
const FINAL_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What a subscription handler receives.
#[derive(Debug)]
pub struct SubscriptionRequest {
    head: RequestHead,
    params: QueryParams,
    credentials: Option<Credentials>,
}

impl SubscriptionRequest {
    pub(crate) fn new(
        head: RequestHead,
        params: QueryParams,
        credentials: Option<Credentials>,
    ) -> Self {
        SubscriptionRequest {
            head,
            params,
            credentials,
        }
    }

    /// The request head.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The parameters decoded into `T` (400 `InvalidRequest` when they do
    /// not fit, sent as an error frame).
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, XrpcError> {
        self.params.decode()
    }

    /// The `cursor` parameter: where to resume the stream, if given.
    pub fn cursor(&self) -> Result<Option<i64>, XrpcError> {
        match self.params.get("cursor") {
            None => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| XrpcError::invalid_request("cursor must be an integer")),
        }
    }

    /// What the route's authenticator found, if the route has one.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }
}

/// Checks the handshake headers and answers 101; the subscription runs on
/// a task once the connection is upgraded.
pub(crate) fn accept_subscription(
    handler: SubscriptionHandler,
    request: SubscriptionRequest,
    on_upgrade: OnUpgrade,
    config: &ServerConfig,
    context: &ConnectionContext,
) -> Result<Response<ResponseBody>, XrpcError> {
    let headers = &request.head.headers;
    let upgrade_ok = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY);
    let (true, true, Some(key)) = (upgrade_ok, version_ok, key) else {
        return Err(XrpcError::invalid_request(
            "subscriptions need a WebSocket upgrade",
        ));
    };
    let accept = derive_accept_key(key.as_bytes());

    let buffer = config.subscription_buffer.max(1);
    let slow_timeout = config.slow_consumer_timeout;
    let guard = context.tracker.enter();
    let shutdown = context.shutdown.clone();
    let nsid = request.head.nsid.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(error = %err, "subscription upgrade failed");
                return;
            }
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        tracing::info!(%nsid, "subscription opened");
        run_subscription(socket, handler, request, buffer, slow_timeout, shutdown).await;
        tracing::info!(%nsid, "subscription closed");
    });

    let mut response = Response::new(crate::server::response::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let out = response.headers_mut();
    out.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    out.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        out.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok(response)
}

/// Most frames written to a socket before a flush.
const MAX_BATCH_FRAMES: usize = 64;

/// Most bytes written to a socket before a flush (more once a single
/// frame is larger).
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Writes `frames` to the socket's buffer, then flushes it.
async fn send_batch<K>(sink: &mut K, frames: Vec<Frame>) -> Result<(), K::Error>
where
    K: futures_util::Sink<Message> + Unpin,
{
    for frame in frames {
        sink.feed(Message::binary(frame.as_bytes().clone())).await?;
    }
    sink.flush().await
}

/// Why the writer stops early.
enum Stop {
    TooSlow,
    Shutdown,
}

async fn run_subscription<S>(
    socket: WebSocketStream<S>,
    handler: SubscriptionHandler,
    request: SubscriptionRequest,
    buffer: usize,
    slow_timeout: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = socket.split();

    let stream = match handler(request).await {
        Ok(stream) => stream,
        Err(err) => {
            let frame = Frame::error(err.name(), Some(err.message()));
            let _ = tokio::time::timeout(FINAL_SEND_TIMEOUT, async {
                sink.send(Message::binary(frame.as_bytes().clone())).await?;
                sink.close().await
            })
            .await;
            return;
        }
    };

    let (queue_tx, mut queue_rx) = mpsc::channel::<Frame>(buffer);
    let (stop_tx, mut stop_rx) = oneshot::channel::<Stop>();

    // Producer: pulls the handler's stream into the bounded queue. A queue
    // that stays full for `slow_timeout` means the subscriber is too slow.
    let producer = tokio::spawn(async move {
        let mut stream = stream;
        let stop = loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = shutdown.changed() => break Some(Stop::Shutdown),
            };
            let Some(frame) = next else { break None };
            let permit = tokio::select! {
                permit = tokio::time::timeout(slow_timeout, queue_tx.reserve()) => permit,
                _ = shutdown.changed() => break Some(Stop::Shutdown),
            };
            match permit {
                Ok(Ok(permit)) => permit.send(frame),
                Ok(Err(_)) => break None,
                Err(_) => break Some(Stop::TooSlow),
            }
        };
        if let Some(stop) = stop {
            let _ = stop_tx.send(stop);
        }
        // Dropping the queue sender lets the writer finish what is queued.
    });

    // Writer: sends queued frames; stops early on a stop signal or when the
    // peer goes away.
    let mut stopped = None;
    let mut producer_done = false;
    loop {
        tokio::select! {
            biased;
            stop = &mut stop_rx, if !producer_done => match stop {
                Ok(stop) => {
                    stopped = Some(stop);
                    break;
                }
                // The producer ended normally: drain the queue.
                Err(_) => producer_done = true,
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            frame = queue_rx.recv() => match frame {
                Some(frame) => {
                    // Send what else is queued with it, then flush once:
                    // one socket write for the lot when the subscriber is
                    // behind.
                    let mut batch = Vec::with_capacity(8);
                    let mut bytes = frame.as_bytes().len();
                    batch.push(frame);
                    while batch.len() < MAX_BATCH_FRAMES && bytes < MAX_BATCH_BYTES {
                        match queue_rx.try_recv() {
                            Ok(frame) => {
                                bytes += frame.as_bytes().len();
                                batch.push(frame);
                            }
                            Err(_) => break,
                        }
                    }
                    let send = send_batch(&mut sink, batch);
                    tokio::pin!(send);
                    let sent = loop {
                        tokio::select! {
                            sent = &mut send => break sent.is_ok(),
                            stop = &mut stop_rx, if !producer_done => match stop {
                                Ok(stop) => {
                                    stopped = Some(stop);
                                    break false;
                                }
                                Err(_) => producer_done = true,
                            },
                        }
                    };
                    if !sent {
                        break;
                    }
                }
                None => {
                    let _ = tokio::time::timeout(FINAL_SEND_TIMEOUT, sink.close()).await;
                    break;
                }
            },
        }
    }
    producer.abort();
    drop(queue_rx);
    match stopped {
        Some(Stop::TooSlow) => {
            tracing::warn!("subscriber too slow, disconnecting");
            let frame = Frame::error(CONSUMER_TOO_SLOW, Some("Stream consumer too slow"));
            let _ = tokio::time::timeout(FINAL_SEND_TIMEOUT, async {
                sink.send(Message::binary(frame.as_bytes().clone())).await?;
                sink.close().await
            })
            .await;
        }
        Some(Stop::Shutdown) => {
            let close = CloseFrame {
                code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
                reason: "server shutting down".into(),
            };
            let _ = tokio::time::timeout(FINAL_SEND_TIMEOUT, async {
                sink.send(Message::Close(Some(close))).await?;
                sink.flush().await
            })
            .await;
        }
        None => {}
    }
}
