//! A subscription client: connect to `wss://host/xrpc/<nsid>?params`, read
//! frames.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Frame;
use crate::Error;

/// Largest message accepted from a server (a `#commit` of a large repo
/// operation stays well below).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// An open subscription.
#[derive(Debug)]
pub struct SubscriptionClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl SubscriptionClient {
    /// Connects to a subscription URL (`ws://` or `wss://`, path
    /// `/xrpc/<nsid>`, parameters in the query string).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (socket, _response) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
        Ok(SubscriptionClient { socket })
    }

    /// The next frame; `None` once the server has closed the stream.
    /// Text messages are an error; pings are answered automatically.
    pub async fn next_frame(&mut self) -> Option<Result<Frame, Error>> {
        loop {
            let message = match self.socket.next().await? {
                Ok(message) => message,
                Err(err) => return Some(Err(err.into())),
            };
            match message {
                Message::Binary(bytes) => return Some(Frame::decode(&bytes)),
                Message::Close(_) => return None,
                Message::Text(_) => {
                    return Some(Err(Error::InvalidResponse(
                        "text message on an event stream".into(),
                    )))
                }
                _ => continue,
            }
        }
    }

    /// Closes the subscription.
    pub async fn close(mut self) -> Result<(), Error> {
        self.socket.close(None).await?;
        // Drain until the server acknowledges the close.
        while let Some(Ok(_)) = self.socket.next().await {}
        Ok(())
    }

    /// Sends a raw WebSocket message (for tests of hostile clients).
    pub async fn send_raw(&mut self, message: Message) -> Result<(), Error> {
        self.socket.send(message).await?;
        Ok(())
    }
}
