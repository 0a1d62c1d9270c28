//! `com.atproto.sync.subscribeRepos`: the firehose.
//!
//! A subscriber without a cursor gets the events sequenced from now on.
//! With a cursor it first gets the stored events after it, then the live
//! ones. Live events come from one shared tail of the event log
//! (module `shared_tail`): each new event is read and encoded once, whatever
//! the number of subscribers, and its frame's bytes are shared by all.
//! A subscriber always asks for what follows the last sequence number it
//! sent, from the log while it is before the shared tail (a backfill, or
//! one that fell behind) and from the tail once it reaches it, so there is
//! no gap and no duplicate at the switch. As in the reference PDS:
//!
//! * a cursor after the last event is refused with a `FutureCursor` error
//!   frame;
//! * a cursor older than the oldest kept event (or outside the backfill
//!   window) gets an `#info` frame `OutdatedCursor`, then the events from
//!   the oldest kept one;
//! * a subscriber that does not keep up is cut off with `ConsumerTooSlow`
//!   (the server's bounded per-subscriber buffer, see
//!   [`atp_xrpc::stream`]).

mod shared_tail;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use atp_xrpc::server::{Router, XrpcError};
use atp_xrpc::stream::{Frame, FrameStream, SubscriptionRequest};
use tokio::sync::watch;
use tokio::time::Instant;

use super::errors::to_xrpc;
use super::state::PdsState;
use crate::db::run_blocking;
use crate::sequencer::CursorStart;
use shared_tail::{Membership, SharedTail, Take};

/// The method's NSID.
pub const NSID: &str = "com.atproto.sync.subscribeRepos";

/// Events read from the log at a time by a subscriber before the shared
/// tail.
const PAGE: usize = 100;

/// When events come fast, a live subscriber takes what arrived at most
/// once per this interval, so that it sends them in one socket write
/// rather than one write per event (a few milliseconds more of delay
/// against a fraction of the wake-ups and system calls).
const BATCH_INTERVAL: Duration = Duration::from_millis(10);

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

/// One subscriber's place in the stream.
struct Subscriber {
    tail: Arc<SharedTail>,
    _membership: Membership,
    /// Changes when events are appended (and counts this subscription in
    /// [`crate::sequencer::Sequencer::subscriber_count`]).
    wake: watch::Receiver<i64>,
    /// The sequence number of the last event queued.
    last: i64,
    pending: VecDeque<Frame>,
    /// When frames were last taken from the shared tail.
    last_taken: Option<Instant>,
}

impl Subscriber {
    async fn next_frame(&mut self) -> Option<Frame> {
        match self.fill().await {
            Ok(()) => self.pending.pop_front(),
            Err(err) => {
                tracing::error!(error = %err, "reading the event log failed; ending subscription");
                None
            }
        }
    }

    /// Waits until `pending` holds a frame.
    async fn fill(&mut self) -> crate::Result<()> {
        while self.pending.is_empty() {
            // Mark the current state seen before looking, so an append
            // after the look wakes us.
            let latest = *self.wake.borrow_and_update();
            match self.tail.take_after(self.last, &mut self.pending)? {
                Take::Taken(last) => {
                    self.last = last;
                    self.last_taken = Some(Instant::now());
                }
                Take::Behind => self.read_log().await?,
                Take::UpTo(head) if head < latest => self.tail.load(self.last).await?,
                Take::UpTo(_) => {
                    if self.wake.changed().await.is_err() {
                        return Err(crate::Error::Internal("the event log closed".to_owned()));
                    }
                    let due = self.last_taken.map(|taken| taken + BATCH_INTERVAL);
                    if let Some(due) = due.filter(|due| *due > Instant::now()) {
                        tokio::time::sleep_until(due).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads the events after `last` from the log itself.
    async fn read_log(&mut self) -> crate::Result<()> {
        let sequencer = self.tail.sequencer().clone();
        let after = self.last;
        let events = run_blocking(move || sequencer.events_after(after, PAGE)).await?;
        if events.is_empty() {
            // Nothing left in the log before the tail (the events in
            // between were removed): go on from the tail.
            self.last = self.tail.floor()?.max(self.last);
        }
        for event in events {
            self.last = event.seq;
            self.pending.push_back(event.frame);
        }
        Ok(())
    }
}

async fn subscribe_repos(
    tail: Arc<SharedTail>,
    req: SubscriptionRequest,
) -> Result<FrameStream, XrpcError> {
    let cursor = req.cursor()?;
    let sequencer = tail.sequencer().clone();
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
    let membership = tail.join().map_err(to_xrpc)?;
    let subscriber = Subscriber {
        tail,
        _membership: membership,
        wake,
        last,
        pending,
        last_taken: None,
    };
    let frames = futures_util::stream::unfold(subscriber, |mut subscriber| async move {
        subscriber
            .next_frame()
            .await
            .map(|frame| (frame, subscriber))
    });
    Ok(Box::pin(frames))
}

pub(super) fn register(router: &mut Router, state: &Arc<PdsState>) -> Result<(), atp_xrpc::Error> {
    let tail = SharedTail::new(state.sequencer.clone());
    router.subscription(NSID, move |req| subscribe_repos(Arc::clone(&tail), req))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use atp_crypto::Ipld;

    use super::*;
    use crate::sequencer::Sequencer;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    const OTHER: &str = "did:plc:yk4dd2qkboz2yv6tpubpc6co";

    fn log() -> (tempfile::TempDir, Sequencer) {
        let dir = tempfile::tempdir().unwrap();
        let log = Sequencer::open(&dir.path().join("sequencer.sqlite")).unwrap();
        (dir, log)
    }

    fn subscriber(tail: &Arc<SharedTail>, last: i64) -> Subscriber {
        Subscriber {
            tail: Arc::clone(tail),
            _membership: tail.join().unwrap(),
            wake: tail.sequencer().subscribe(),
            last,
            pending: VecDeque::new(),
            last_taken: None,
        }
    }

    fn seq_of(frame: &Frame) -> i64 {
        let Ipld::Map(body) = frame.body::<Ipld>().unwrap() else {
            panic!("frame body is not a map")
        };
        match body.get("seq") {
            Some(Ipld::Integer(seq)) => i64::try_from(*seq).unwrap(),
            other => panic!("seq is not an integer: {other:?}"),
        }
    }

    /// The sequence numbers of the next `count` frames.
    async fn next_seqs(subscriber: &mut Subscriber, count: usize) -> Vec<i64> {
        let mut seqs = Vec::with_capacity(count);
        while seqs.len() < count {
            let frame = tokio::time::timeout(Duration::from_secs(30), subscriber.next_frame())
                .await
                .expect("the stream stalled")
                .expect("the stream ended");
            seqs.push(seq_of(&frame));
        }
        seqs
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backfill_and_live_subscribers_get_every_event_once_in_order() {
        let (_dir, log) = log();
        for _ in 0..30 {
            log.sequence_identity(DID, None).unwrap();
        }
        // A ring of 8 frames: the backfilling subscriber, which pauses now
        // and then, keeps falling behind it and reading the log again.
        let tail = SharedTail::with_capacity(log.clone(), 8);
        let mut live = subscriber(&tail, log.latest_seq());
        let mut backfill = subscriber(&tail, 0);
        let writer = {
            let log = log.clone();
            tokio::task::spawn_blocking(move || {
                for i in 0..300 {
                    log.sequence_identity(DID, None).unwrap();
                    if i % 50 == 0 {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        };
        let live_reader = tokio::spawn(async move { next_seqs(&mut live, 300).await });
        let backfill_reader = tokio::spawn(async move {
            let mut seqs = Vec::new();
            while seqs.len() < 330 {
                seqs.extend(next_seqs(&mut backfill, 10).await);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            seqs
        });
        writer.await.unwrap();
        assert_eq!(live_reader.await.unwrap(), (31..=330).collect::<Vec<i64>>());
        assert_eq!(
            backfill_reader.await.unwrap(),
            (1..=330).collect::<Vec<i64>>()
        );
    }

    #[tokio::test]
    async fn a_subscriber_left_behind_by_the_ring_catches_up_from_the_log() {
        let (_dir, log) = log();
        let tail = SharedTail::with_capacity(log.clone(), 4);
        let mut slow = subscriber(&tail, 0);
        let mut fast = subscriber(&tail, 0);
        log.sequence_identity(DID, None).unwrap();
        assert_eq!(next_seqs(&mut slow, 1).await, vec![1]);
        for _ in 0..50 {
            log.sequence_identity(DID, None).unwrap();
        }
        // The fast one moves the ring on past the slow one.
        assert_eq!(next_seqs(&mut fast, 51).await, (1..=51).collect::<Vec<_>>());
        assert!(tail.floor().unwrap() > 1);
        assert_eq!(next_seqs(&mut slow, 50).await, (2..=51).collect::<Vec<_>>());
        // Once the last subscriber leaves, the ring lets its frames go.
        assert!(tail.held() > 0);
        drop((slow, fast));
        assert_eq!(tail.held(), 0);
    }

    #[tokio::test]
    async fn events_removed_from_the_log_are_skipped() {
        let (_dir, log) = log();
        let tail = SharedTail::new(log.clone());
        let mut sub = subscriber(&tail, 0);
        for _ in 0..3 {
            log.sequence_identity(DID, None).unwrap();
        }
        let kept = log.sequence_identity(OTHER, None).unwrap();
        // Deleting the account drops its earlier events before anyone
        // read them.
        let deleted = log.sequence_account(DID, false, Some("deleted")).unwrap();
        assert_eq!(next_seqs(&mut sub, 2).await, vec![kept, deleted]);
        let next = log.sequence_identity(OTHER, None).unwrap();
        assert_eq!(next_seqs(&mut sub, 1).await, vec![next]);
    }
}
