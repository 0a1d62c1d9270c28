//! The recent end of the event log, read and encoded once for every live
//! subscriber.
//!
//! The tail is a bounded ring of encoded frames covering the sequence
//! numbers `(floor, head]`: every event the log held in that range when it
//! was read is in the ring, in order. Subscribers copy out the frames after
//! their last sequence number (a [`Frame`] shares its bytes, so copying it
//! does not copy the encoding). When the sequencer announces events past
//! `head`, one subscriber reads them from the log (the others wait for
//! that read instead of repeating it) and appends them for all.
//!
//! A subscriber whose last sequence number is before `floor` (a backfill
//! from a cursor, or one that fell behind the ring) reads the log itself,
//! page by page, until it reaches the ring; since it always asks for what
//! follows the last sequence number it sent, the switch from the log to
//! the ring has no gap and no duplicate.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use atp_xrpc::stream::Frame;

use crate::db::run_blocking;
use crate::error::{Error, Result};
use crate::sequencer::Sequencer;

/// Events read from the log at a time into the ring.
const LOAD_PAGE: usize = 500;

/// Most frames kept in the ring.
const MAX_FRAMES: usize = 8192;

/// Most frame bytes kept in the ring (at least the newest frame is kept).
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Frames a subscriber copies out at a time.
const TAKE_BATCH: usize = 256;

/// The shared tail of one event log.
pub(crate) struct SharedTail {
    sequencer: Sequencer,
    /// Most frames kept.
    max_frames: usize,
    ring: Mutex<Ring>,
    /// Held by the subscriber reading new events into the ring.
    loading: tokio::sync::Mutex<()>,
}

struct Ring {
    /// Sequence numbers and frames, in order.
    frames: VecDeque<(i64, Frame)>,
    /// Bytes of the frames held.
    bytes: usize,
    /// The ring holds every kept event after this number...
    floor: i64,
    /// ...up to and including this one.
    head: i64,
    /// Live subscribers; the ring is emptied when the last one leaves.
    subscribers: usize,
}

/// What a subscriber found in the ring.
pub(crate) enum Take {
    /// Frames were appended to the subscriber's queue; its last sequence
    /// number is now this.
    Taken(i64),
    /// The subscriber is before the ring: it reads the log itself.
    Behind,
    /// Nothing after the subscriber's position; the ring reaches this
    /// sequence number.
    UpTo(i64),
}

impl SharedTail {
    /// An empty tail of `sequencer`'s log.
    pub(crate) fn new(sequencer: Sequencer) -> Arc<Self> {
        Self::with_capacity(sequencer, MAX_FRAMES)
    }

    /// An empty tail keeping at most `max_frames` frames.
    pub(crate) fn with_capacity(sequencer: Sequencer, max_frames: usize) -> Arc<Self> {
        let latest = sequencer.latest_seq();
        Arc::new(SharedTail {
            sequencer,
            max_frames: max_frames.max(1),
            ring: Mutex::new(Ring {
                frames: VecDeque::new(),
                bytes: 0,
                floor: latest,
                head: latest,
                subscribers: 0,
            }),
            loading: tokio::sync::Mutex::new(()),
        })
    }

    /// The log this tail reads.
    pub(crate) fn sequencer(&self) -> &Sequencer {
        &self.sequencer
    }

    fn ring(&self) -> Result<MutexGuard<'_, Ring>> {
        self.ring
            .lock()
            .map_err(|_| Error::Internal("firehose ring lock poisoned".to_owned()))
    }

    /// Registers a live subscriber until the returned guard is dropped.
    pub(crate) fn join(self: &Arc<Self>) -> Result<Membership> {
        self.ring()?.subscribers += 1;
        Ok(Membership {
            tail: Arc::clone(self),
        })
    }

    /// How many frames the ring holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.ring().map(|ring| ring.frames.len()).unwrap_or(0)
    }

    /// The ring holds every kept event after this sequence number.
    pub(crate) fn floor(&self) -> Result<i64> {
        Ok(self.ring()?.floor)
    }

    /// Appends to `out` the frames after `last` (at most a batch).
    pub(crate) fn take_after(&self, last: i64, out: &mut VecDeque<Frame>) -> Result<Take> {
        let ring = self.ring()?;
        if last < ring.floor {
            return Ok(Take::Behind);
        }
        let start = ring.frames.partition_point(|(seq, _)| *seq <= last);
        let mut taken = last;
        for (seq, frame) in ring.frames.iter().skip(start).take(TAKE_BATCH) {
            out.push_back(frame.clone());
            taken = *seq;
        }
        if taken > last {
            Ok(Take::Taken(taken))
        } else {
            Ok(Take::UpTo(ring.head))
        }
    }

    /// Reads the events announced after the ring's head into the ring,
    /// unless another subscriber did meanwhile. `wanted` is the position of
    /// the subscriber asking: a ring left far behind it (no one read it for
    /// a while) restarts there rather than reading what no one needs.
    pub(crate) async fn load(&self, wanted: i64) -> Result<()> {
        let _loading = self.loading.lock().await;
        // The latest number before reading: every event up to it is in
        // the log by the time the read starts.
        let latest = self.sequencer.latest_seq();
        let head = {
            let mut ring = self.ring()?;
            if ring.head >= latest {
                return Ok(());
            }
            if wanted > ring.head && wanted - ring.head > LOAD_PAGE as i64 {
                ring.clear_to(wanted);
            }
            ring.head
        };
        let sequencer = self.sequencer.clone();
        let events = run_blocking(move || sequencer.events_after(head, LOAD_PAGE)).await?;
        let complete = events.len() < LOAD_PAGE;
        let mut ring = self.ring()?;
        if ring.head != head {
            // Cleared for a later position while reading: drop this read.
            return Ok(());
        }
        for event in events {
            if event.seq > ring.head {
                ring.head = event.seq;
                ring.bytes += event.frame.as_bytes().len();
                ring.frames.push_back((event.seq, event.frame));
            }
        }
        if complete {
            // Numbers up to `latest` missing from the read were removed
            // from the log (an account's deletion drops its events).
            ring.head = ring.head.max(latest);
        }
        ring.trim(self.max_frames);
        Ok(())
    }
}

impl Ring {
    /// Forgets every frame; the ring then covers nothing after `seq`.
    fn clear_to(&mut self, seq: i64) {
        self.frames = VecDeque::new();
        self.bytes = 0;
        self.floor = seq;
        self.head = seq;
    }

    /// Drops the oldest frames beyond the bounds.
    fn trim(&mut self, max_frames: usize) {
        while self.frames.len() > max_frames || (self.bytes > MAX_BYTES && self.frames.len() > 1) {
            let Some((seq, frame)) = self.frames.pop_front() else {
                break;
            };
            self.bytes -= frame.as_bytes().len();
            self.floor = seq;
        }
    }
}

/// A live subscriber's place in the tail's count; the ring is emptied
/// when the last one leaves, so an idle server holds no frames.
pub(crate) struct Membership {
    tail: Arc<SharedTail>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if let Ok(mut ring) = self.tail.ring.lock() {
            ring.subscribers = ring.subscribers.saturating_sub(1);
            if ring.subscribers == 0 {
                let head = ring.head;
                ring.clear_to(head);
            }
        }
    }
}
