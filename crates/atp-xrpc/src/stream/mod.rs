//! Event streams (subscriptions): frame encoding, the server side over
//! WebSocket with a bounded per-subscriber buffer, and a client.
//!
//! Each WebSocket binary message is one [`Frame`]: a DAG-CBOR header
//! (`{op: 1, t: "#commit"}` or `{op: -1}` for an error) followed by a
//! DAG-CBOR body. A subscription handler returns a stream of frames; the
//! server buffers at most
//! [`ServerConfig::subscription_buffer`](crate::server::ServerConfig)
//! frames per subscriber, and a subscriber whose buffer stays full for
//! [`ServerConfig::slow_consumer_timeout`](crate::server::ServerConfig) is
//! sent a `ConsumerTooSlow` error frame and disconnected. Frames waiting
//! in a subscriber's buffer are written to its socket together, with one
//! flush, and their encoded bytes are shared, not copied, between
//! subscribers.

mod client;
mod frame;
mod server;

pub use client::SubscriptionClient;
pub use frame::{ErrorBody, Frame, FrameHeader};
pub use server::{FrameStream, SubscriptionHandler, SubscriptionRequest, CONSUMER_TOO_SLOW};

pub(crate) use server::accept_subscription;
