//! `com.atproto.sync.subscribeRepos`: the firehose.
//!
//! A subscriber without a cursor gets the events sequenced from now on.
//! With a cursor it first gets the stored events after it, then the live
//! ones: both come from the event log in sequence order (a wake-up from
//! the sequencer only prompts the next read), so there is no gap and no
//! duplicate at the switch. As in the reference PDS:
//!
//! * a cursor after the last event is refused with a `FutureCursor` error
//!   frame;
//! * a cursor older than the oldest kept event (or outside the backfill
//!   window) gets an `#info` frame `OutdatedCursor`, then the events from
//!   the oldest kept one;
//! * a subscriber that does not keep up is cut off with `ConsumerTooSlow`
//!   (the server's bounded per-subscriber buffer, see
//!   [`atp_xrpc::stream`]).

use std::collections::VecDeque;
use std::sync::Arc;

use atp_xrpc::server::{Router, XrpcError};
use atp_xrpc::stream::{Frame, FrameStream, SubscriptionRequest};
use tokio::sync::watch;

use super::errors::to_xrpc;
use super::state::PdsState;
use crate::db::run_blocking;
use crate::sequencer::{CursorStart, Sequencer};

/// The method's NSID.
pub const NSID: &str = "com.atproto.sync.subscribeRepos";

/// Events read from the log at a time.
const PAGE: usize = 100;

/// The `#info` frame sent before replaying from the oldest kept event.
pub fn outdated_cursor_frame() -> Result<Frame, XrpcError> {
    Frame::message(
        "#info",
        &serde_json::json!({
            "name": "OutdatedCursor",
            "message": "Requested cursor exceeded limit. Possibly missing events",
        }),
    )
    .map_err(XrpcError::internal)
}

/// Where the stream is.
struct Tail {
    sequencer: Sequencer,
    wake: watch::Receiver<i64>,
    last: i64,
    pending: VecDeque<Frame>,
}

impl Tail {
    async fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            // Mark the current state seen before reading, so an append
            // after the read wakes us.
            self.wake.borrow_and_update();
            let sequencer = self.sequencer.clone();
            let after = self.last;
            let events = match run_blocking(move || sequencer.events_after(after, PAGE)).await {
                Ok(events) => events,
                Err(err) => {
                    tracing::error!(error = %err, "reading the event log failed; ending subscription");
                    return None;
                }
            };
            if events.is_empty() {
                if self.wake.changed().await.is_err() {
                    return None;
                }
                continue;
            }
            for event in events {
                self.last = event.seq;
                self.pending.push_back(event.frame);
            }
        }
    }
}

async fn subscribe_repos(
    state: Arc<PdsState>,
    req: SubscriptionRequest,
) -> Result<FrameStream, XrpcError> {
    let cursor = req.cursor()?;
    let sequencer = state.sequencer.clone();
    // Subscribe before looking at the log so no append is missed.
    let wake = sequencer.subscribe();
    let mut pending = VecDeque::new();
    let last = match cursor {
        None => sequencer.latest_seq(),
        Some(cursor) => {
            let log = sequencer.clone();
            match run_blocking(move || log.resolve_cursor(cursor))
                .await
                .map_err(to_xrpc)?
            {
                CursorStart::Future => {
                    return Err(XrpcError::invalid_request("Cursor in the future.")
                        .with_name("FutureCursor"))
                }
                CursorStart::After(seq) => seq,
                CursorStart::Outdated(seq) => {
                    pending.push_back(outdated_cursor_frame()?);
                    seq
                }
            }
        }
    };
    tracing::info!(?cursor, "request to com.atproto.sync.subscribeRepos");
    let tail = Tail {
        sequencer,
        wake,
        last,
        pending,
    };
    let frames = futures_util::stream::unfold(tail, |mut tail| async move {
        tail.next_frame().await.map(|frame| (frame, tail))
    });
    Ok(Box::pin(frames))
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    let state = Arc::clone(state);
    router.subscription(NSID, move |req| subscribe_repos(Arc::clone(&state), req))?;
    Ok(())
}
