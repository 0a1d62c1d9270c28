//! The durable, sequenced event log behind `subscribeRepos`: `#commit`,
//! `#sync`, `#identity` and `#account` events.
//!
//! Events live in their own SQLite file (`<data>/sequencer.sqlite`, WAL,
//! `synchronous=FULL`), one row per event holding its DAG-CBOR body
//! without `seq` and `time` (as the reference PDS stores them); the
//! sequence number is an `AUTOINCREMENT` key, so numbers only go up, even
//! after pruning and across restarts. Appends go through the file's one
//! writer, so events become visible to readers in sequence order, never
//! with a gap that fills in later.
//!
//! A commit is stored in its repository before its event is appended
//! here (two files); if the process dies in between, the next start
//! announces that repository's head with a `#sync` event
//! ([`Sequencer::announce_unsequenced_heads`]), so consumers learn the new
//! head even though that commit's diff was never sequenced.
//!
//! Each append wakes subscribers ([`Sequencer::subscribe`]) and, at most
//! once per [`crate::crawlers::NOTIFY_INTERVAL`], tells the configured
//! relays to crawl. Events older than the backfill window
//! ([`Sequencer::set_backfill_window`], a day by default as in the
//! reference) are pruned; a subscriber asking for a cursor before the
//! oldest kept event gets an `OutdatedCursor` notice and starts from the
//! oldest.
//!
//! ```
//! use atp_pds::sequencer::{EventKind, Sequencer};
//!
//! let data = tempfile::tempdir()?;
//! let log = Sequencer::open(&data.path().join("sequencer.sqlite"))?;
//! let first = log.sequence_identity("did:plc:ewvi7nxzyoun6zhxrhs64oiz", Some("alice.test"))?;
//! let second = log.sequence_account("did:plc:ewvi7nxzyoun6zhxrhs64oiz", true, None)?;
//! assert!(second > first);
//!
//! let events = log.events_after(first - 1, 10)?;
//! assert_eq!(events.len(), 2);
//! assert_eq!(events[0].kind, EventKind::Identity);
//! assert_eq!(events[1].frame.message_type(), Some("#account"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use atp_crypto::{dagcbor, Cid, Ipld};
use atp_repo_mst::car::{write_car_from_map, BlockMap};
use atp_repo_mst::proof::partial_tree::BlockSource;
use atp_repo_mst::repo::CommitData;
use atp_xrpc::stream::Frame;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use tokio::sync::watch;

use crate::actor_store::ActorStores;
use crate::crawlers::Crawlers;
use crate::db::{Database, Migration};
use crate::error::{Error, Result};
use crate::time;

mod event_body;

use event_body::{commit_event, encode_frame, map};

/// How long events are kept (and how far back a cursor may reach): a day,
/// the reference's `repoBackfillLimitMs` default.
pub const DEFAULT_BACKFILL_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long a writer whose events wait behind a reserved place sleeps
/// before looking again, if nothing wakes it sooner.
const PLACE_WAIT: Duration = Duration::from_millis(20);

/// Pruning runs at most this often during appends.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

/// The schema of the event log.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "sequenced repository events",
    run: None,
    sql: "
        CREATE TABLE repo_seq (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            did TEXT NOT NULL,
            event_type TEXT NOT NULL,
            event BLOB NOT NULL,
            sequenced_at TEXT NOT NULL
        );
        CREATE INDEX repo_seq_did ON repo_seq(did);
        CREATE INDEX repo_seq_sequenced_at ON repo_seq(sequenced_at);
        CREATE TABLE seq_state (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        );
    ",
}];

/// The kind of an event, as stored and as named on the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `#commit`: a repository commit with its diff.
    Commit,
    /// `#sync`: the repository's current commit, without a diff.
    Sync,
    /// `#identity`: a handle or DID document change.
    Identity,
    /// `#account`: a hosting status change.
    Account,
}

impl EventKind {
    /// The stored name (the reference's `eventType`: `append` for commits).
    pub fn stored_name(self) -> &'static str {
        match self {
            EventKind::Commit => "append",
            EventKind::Sync => "sync",
            EventKind::Identity => "identity",
            EventKind::Account => "account",
        }
    }

    /// The frame type on the stream (`#commit`, ...).
    pub fn frame_type(self) -> &'static str {
        match self {
            EventKind::Commit => "#commit",
            EventKind::Sync => "#sync",
            EventKind::Identity => "#identity",
            EventKind::Account => "#account",
        }
    }

    fn from_stored(name: &str) -> Result<Self> {
        Ok(match name {
            "append" => EventKind::Commit,
            "sync" => EventKind::Sync,
            "identity" => EventKind::Identity,
            "account" => EventKind::Account,
            other => return Err(Error::Corrupt(format!("unknown event type {other:?}"))),
        })
    }
}

/// One event read back from the log, ready to send.
#[derive(Clone, Debug)]
pub struct SeqEvent {
    /// Its sequence number.
    pub seq: i64,
    /// The account it is about.
    pub did: String,
    /// Its kind.
    pub kind: EventKind,
    /// When it was sequenced (the `time` field).
    pub time: String,
    /// The encoded frame: header `{op: 1, t}` and the body with `seq` and
    /// `time`.
    pub frame: Frame,
}

/// Where a subscriber with a cursor starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorStart {
    /// The cursor is later than the last event (`FutureCursor`).
    Future,
    /// Replay the events after this sequence number.
    After(i64),
    /// Events after the cursor were pruned or fall outside the backfill
    /// window: send `OutdatedCursor`, then replay from after this number.
    Outdated(i64),
}

/// Appends events to the log and wakes subscribers. Cheap to clone: all
/// clones share one log.
#[derive(Clone)]
pub struct Sequencer {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    latest: watch::Sender<i64>,
    actors: OnceLock<Arc<ActorStores>>,
    crawlers: OnceLock<Crawlers>,
    backfill_window: Mutex<Duration>,
    last_prune: Mutex<Option<Instant>>,
    /// Events handed to [`Sequencer::append_events`] and not written yet.
    waiting: Mutex<WaitingQueue>,
    /// Signalled when a reserved place is filled or events were written.
    progress: Condvar,
    /// Held by the caller writing the waiting events.
    writer_turn: Mutex<()>,
}

/// An event ready to be appended: its account, kind and stored body
/// (DAG-CBOR, without `seq` and `time`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    /// The account it is about.
    pub did: String,
    /// Its kind.
    pub kind: EventKind,
    /// The stored body.
    pub body: Vec<u8>,
}

impl PendingEvent {
    /// The `#commit` event of `commit`, just built for `did`, whose proof
    /// nodes are read from `commit.blocks` and then from `stored` (the
    /// blocks of the repository before the commit: a transaction that
    /// holds them, or the account's store).
    pub fn commit(
        did: &str,
        commit: &CommitData,
        stored: Option<&dyn BlockSource>,
    ) -> Result<Self> {
        let event = commit_event(did, commit, stored)?;
        Ok(PendingEvent {
            did: did.to_owned(),
            kind: EventKind::Commit,
            body: dagcbor::encode_ipld(&event)?,
        })
    }
}

/// Events handed to the log by [`Sequencer::enqueue_events`].
#[must_use = "events are durable only once the ticket is waited for"]
pub struct AppendTicket {
    sequencer: Sequencer,
    outcome: AppendOutcome,
}

impl std::fmt::Debug for AppendTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendTicket").finish_non_exhaustive()
    }
}

impl AppendTicket {
    /// Waits until the events are durable (writing them, and whatever
    /// else waits, if no one else is) and returns their sequence numbers.
    /// Blocks; call it from blocking code.
    pub fn wait(self) -> Result<Vec<i64>> {
        self.sequencer.wait_for(&self.outcome)
    }
}

/// Where the sequence numbers of one caller's events (or the failure's
/// message) go once they are written.
type AppendOutcome = Arc<Mutex<Option<std::result::Result<Vec<i64>, String>>>>;

/// One caller's events waiting for a writer; `None` while a reserved
/// place ([`Sequencer::reserve_events`]) is not filled yet.
struct WaitingAppend {
    events: Option<Vec<PendingEvent>>,
    outcome: AppendOutcome,
}

/// The appends waiting for a writer, in the order they were handed over.
#[derive(Default)]
struct WaitingQueue {
    appends: VecDeque<WaitingAppend>,
    /// Goes up whenever a place is filled or appends are written.
    changes: u64,
}

/// A place in the log's order, taken by [`Sequencer::reserve_events`]:
/// its events get sequence numbers after every event handed over before
/// it and before every event handed over after it, whenever they are
/// filled in. Appends after it wait until it is filled, so a place left
/// unfilled (dropped) is filled with no events.
#[must_use = "a reserved place holds up the events after it until it is filled"]
pub struct ReservedEvents {
    sequencer: Sequencer,
    outcome: AppendOutcome,
    filled: bool,
}

impl std::fmt::Debug for ReservedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReservedEvents").finish_non_exhaustive()
    }
}

impl ReservedEvents {
    /// Puts `events` in the reserved place; they are written (and
    /// durable) once the returned ticket is waited for.
    pub fn fill(mut self, events: Vec<PendingEvent>) -> Result<AppendTicket> {
        self.filled = true;
        self.sequencer.fill_reserved(&self.outcome, events)?;
        Ok(AppendTicket {
            sequencer: self.sequencer.clone(),
            outcome: Arc::clone(&self.outcome),
        })
    }
}

impl Drop for ReservedEvents {
    fn drop(&mut self) {
        if !self.filled {
            if let Err(err) = self.sequencer.fill_reserved(&self.outcome, Vec::new()) {
                tracing::error!(error = %err, "could not release a reserved place in the event log");
            }
        }
    }
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("path", &self.inner.db.path())
            .field("latest", &*self.inner.latest.borrow())
            .finish_non_exhaustive()
    }
}

fn poisoned() -> Error {
    Error::Internal("sequencer lock poisoned".to_owned())
}

impl Sequencer {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::open(path, MIGRATIONS)?;
        let latest = db.read(last_assigned_seq)?;
        let (sender, _) = watch::channel(latest);
        Ok(Sequencer {
            inner: Arc::new(Inner {
                db,
                latest: sender,
                actors: OnceLock::new(),
                crawlers: OnceLock::new(),
                backfill_window: Mutex::new(DEFAULT_BACKFILL_WINDOW),
                last_prune: Mutex::new(None),
                waiting: Mutex::new(WaitingQueue::default()),
                progress: Condvar::new(),
                writer_turn: Mutex::new(()),
            }),
        })
    }

    /// Reads repository blocks from `actors` when building `#commit`
    /// events (for the proof nodes a commit did not create). Set once;
    /// later calls are ignored.
    pub fn with_actor_stores(self, actors: Arc<ActorStores>) -> Self {
        let _ = self.inner.actors.set(actors);
        self
    }

    /// Tells `crawlers` about activity after each append (rate-limited by
    /// [`Crawlers`]). Set once; returns whether this call set it.
    pub fn set_crawlers(&self, crawlers: Crawlers) -> bool {
        self.inner.crawlers.set(crawlers).is_ok()
    }

    /// The crawlers told about activity, if set.
    pub fn crawlers(&self) -> Option<&Crawlers> {
        self.inner.crawlers.get()
    }

    /// Changes how long events are kept and how far back cursors reach.
    pub fn set_backfill_window(&self, window: Duration) -> Result<()> {
        *self.inner.backfill_window.lock().map_err(|_| poisoned())? = window;
        Ok(())
    }

    /// How long events are kept.
    pub fn backfill_window(&self) -> Result<Duration> {
        Ok(*self.inner.backfill_window.lock().map_err(|_| poisoned())?)
    }

    /// The log's database.
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The last sequence number handed out (0 before the first event),
    /// including pruned events.
    pub fn latest_seq(&self) -> i64 {
        *self.inner.latest.borrow()
    }

    /// A receiver that changes whenever events are appended (its value is
    /// the latest sequence number).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.inner.latest.subscribe()
    }

    /// How many [`Sequencer::subscribe`] receivers are alive (open
    /// subscriptions).
    pub fn subscriber_count(&self) -> usize {
        self.inner.latest.receiver_count()
    }

    /// Records the `#commit` event of a commit just stored for `did`;
    /// returns its sequence number. The event's `blocks` hold the
    /// commit's new blocks and the existing MST nodes a consumer needs to
    /// check each op (the covering proof of each path, as the reference
    /// sends). `blobs` is accepted for callers' convenience; as in the
    /// reference, the deprecated `blobs` field is sent empty.
    pub fn sequence_commit(&self, did: &str, commit: &CommitData, blobs: &[Cid]) -> Result<i64> {
        let _ = blobs;
        let stored = match self.inner.actors.get() {
            Some(actors) if actors.exists(did) => Some(actors.open(did)?.block_store()),
            _ => None,
        };
        let event =
            PendingEvent::commit(did, commit, stored.as_ref().map(|s| s as &dyn BlockSource))?;
        Ok(self
            .append_events(vec![event])?
            .first()
            .copied()
            .unwrap_or(0))
    }

    /// Records a `#sync` event: the repository is now at `commit_cid`
    /// (whose signed block is `commit_bytes`) and `rev`.
    pub fn sequence_sync(
        &self,
        did: &str,
        commit_cid: &Cid,
        commit_bytes: &[u8],
        rev: &str,
    ) -> Result<i64> {
        let blocks = BlockMap::from([(*commit_cid, commit_bytes.to_vec())]);
        let car = write_car_from_map(&[*commit_cid], &blocks)?;
        let event = map(vec![
            ("did", Ipld::String(did.to_owned())),
            ("rev", Ipld::String(rev.to_owned())),
            ("blocks", Ipld::Bytes(car)),
        ]);
        self.append(did, EventKind::Sync, &event)
    }

    /// Records an `#identity` event (handle change, DID document update).
    pub fn sequence_identity(&self, did: &str, handle: Option<&str>) -> Result<i64> {
        let mut entries = vec![("did", Ipld::String(did.to_owned()))];
        if let Some(handle) = handle {
            entries.push(("handle", Ipld::String(handle.to_owned())));
        }
        self.append(did, EventKind::Identity, &map(entries))
    }

    /// Records an `#account` event: `active`, with `status` when not
    /// active (`takendown`, `suspended`, `deleted`, `deactivated`). For
    /// `deleted`, the account's earlier events are dropped from the log,
    /// as the reference does.
    pub fn sequence_account(&self, did: &str, active: bool, status: Option<&str>) -> Result<i64> {
        let mut entries = vec![
            ("did", Ipld::String(did.to_owned())),
            ("active", Ipld::Bool(active)),
        ];
        if let Some(status) = status {
            entries.push(("status", Ipld::String(status.to_owned())));
        }
        let seq = self.append(did, EventKind::Account, &map(entries))?;
        if status == Some("deleted") {
            self.inner.db.write(|tx| {
                tx.execute(
                    "DELETE FROM repo_seq WHERE did = ?1 AND seq != ?2",
                    params![did, seq],
                )?;
                Ok(())
            })?;
        }
        Ok(seq)
    }

    /// The rev of the latest `#commit` or `#sync` event of `did` in the
    /// log, if any is kept.
    pub fn last_announced_rev(&self, did: &str) -> Result<Option<String>> {
        let stored: Option<Vec<u8>> = self.inner.db.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT event FROM repo_seq WHERE did = ?1 AND event_type IN ('append', 'sync')
                     ORDER BY seq DESC LIMIT 1",
                    [did],
                    |row| row.get(0),
                )
                .optional()?)
        })?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        match dagcbor::decode_ipld(&stored)? {
            Ipld::Map(body) => match body.get("rev") {
                Some(Ipld::String(rev)) => Ok(Some(rev.clone())),
                _ => Err(Error::Corrupt(format!("event of {did} without rev"))),
            },
            _ => Err(Error::Corrupt(format!("event of {did} is not a map"))),
        }
    }

    /// Announces with a `#sync` event each repository of an account for
    /// which `is_active` holds whose head commit has no event: a commit is
    /// stored before it is sequenced, so a crash between the two leaves it
    /// unannounced. Run at start, before writes. A repository whose head
    /// is older than the backfill window and has no kept event is left
    /// alone (its events were pruned). Returns the DIDs announced.
    pub fn announce_unsequenced_heads(
        &self,
        is_active: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>> {
        let Some(actors) = self.inner.actors.get() else {
            return Ok(Vec::new());
        };
        let window = self.backfill_window()?;
        let now = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        let cutoff = now.saturating_sub(u64::try_from(window.as_micros()).unwrap_or(u64::MAX));
        let mut announced = Vec::new();
        for did in actors.list_dids()? {
            if !is_active(&did) {
                continue;
            }
            let store = actors.open(&did)?;
            let Some(root) = store.root()? else {
                continue;
            };
            let last = self.last_announced_rev(&did)?;
            if last.as_deref() == Some(root.rev.as_str()) {
                continue;
            }
            if last.is_none() {
                let recent = atp_syntax::Tid::new(&root.rev)
                    .map(|tid| tid.timestamp_micros() >= cutoff)
                    .unwrap_or(false);
                if !recent {
                    continue;
                }
            }
            let bytes = atp_repo_mst::blockstore::BlockStore::get(&store.block_store(), &root.cid)
                .map_err(|err| Error::Corrupt(format!("head commit of {did}: {err}")))?
                .ok_or_else(|| Error::Corrupt(format!("head commit of {did} missing")))?;
            self.sequence_sync(&did, &root.cid, &bytes, &root.rev)?;
            announced.push(did);
        }
        Ok(announced)
    }

    fn append(&self, did: &str, kind: EventKind, event: &Ipld) -> Result<i64> {
        let event = PendingEvent {
            did: did.to_owned(),
            kind,
            body: dagcbor::encode_ipld(event)?,
        };
        let seqs = self.append_events(vec![event])?;
        seqs.first()
            .copied()
            .ok_or_else(|| Error::Internal("an appended event got no number".to_owned()))
    }

    /// Appends `events` in order, as consecutive sequence numbers, and
    /// returns their numbers once they are durable. Concurrent callers
    /// share transactions: while one caller writes, the events of the
    /// others wait, and the next caller to write takes all of them in one
    /// transaction (one fsync), each caller's events kept together and in
    /// order. Blocks; call it from blocking code.
    pub fn append_events(&self, events: Vec<PendingEvent>) -> Result<Vec<i64>> {
        self.enqueue_events(events)?.wait()
    }

    /// Hands `events` to the log without waiting: they get sequence
    /// numbers after every event handed over before them (by any caller)
    /// and before every event handed over after them, and are written by
    /// the next [`AppendTicket::wait`] of any caller. A writer that hands
    /// over its events while it holds a lock, then waits after releasing
    /// it, keeps the order the lock gave without making the next holder
    /// wait for the disk.
    pub fn enqueue_events(&self, events: Vec<PendingEvent>) -> Result<AppendTicket> {
        let outcome = if events.is_empty() {
            Arc::new(Mutex::new(Some(Ok(Vec::new()))))
        } else {
            self.queue_append(Some(events))?
        };
        Ok(AppendTicket {
            sequencer: self.clone(),
            outcome,
        })
    }

    /// Takes a place in the log's order for events not built yet (see
    /// [`ReservedEvents`]): a writer can hand over its place while it
    /// holds a lock, and build and fill in its events after releasing it.
    /// The place must be filled soon: the events handed over after it
    /// wait for it.
    pub fn reserve_events(&self) -> Result<ReservedEvents> {
        let outcome = self.queue_append(None)?;
        Ok(ReservedEvents {
            sequencer: self.clone(),
            outcome,
            filled: false,
        })
    }

    /// Puts an append (its events, or `None` for a place filled later) at
    /// the end of the waiting queue; its outcome is set once it is written.
    fn queue_append(&self, events: Option<Vec<PendingEvent>>) -> Result<AppendOutcome> {
        let outcome: AppendOutcome = Arc::new(Mutex::new(None));
        self.inner
            .waiting
            .lock()
            .map_err(|_| poisoned())?
            .appends
            .push_back(WaitingAppend {
                events,
                outcome: Arc::clone(&outcome),
            });
        Ok(outcome)
    }

    /// Fills the reserved place whose outcome is `outcome`.
    fn fill_reserved(&self, outcome: &AppendOutcome, events: Vec<PendingEvent>) -> Result<()> {
        let mut queue = self.inner.waiting.lock().map_err(|_| poisoned())?;
        let place = queue
            .appends
            .iter_mut()
            .find(|waiting| Arc::ptr_eq(&waiting.outcome, outcome));
        match place {
            Some(place) => place.events = Some(events),
            None => {
                return Err(Error::Internal(
                    "a reserved place of the event log was lost".to_owned(),
                ))
            }
        }
        queue.changes += 1;
        drop(queue);
        self.inner.progress.notify_all();
        Ok(())
    }

    /// [`AppendTicket::wait`].
    fn wait_for(&self, outcome: &AppendOutcome) -> Result<Vec<i64>> {
        let written = |outcome: &AppendOutcome| -> Result<bool> {
            Ok(outcome.lock().map_err(|_| poisoned())?.is_some())
        };
        while !written(outcome)? {
            let seen = self.inner.waiting.lock().map_err(|_| poisoned())?.changes;
            let turn = self.inner.writer_turn.lock().map_err(|_| poisoned())?;
            // A writer before us may have taken our events already.
            if !written(outcome)? {
                self.write_waiting()?;
            }
            drop(turn);
            if let Err(err) = self.prune_if_due() {
                tracing::warn!(error = %err, "could not prune the event log");
            }
            if written(outcome)? {
                break;
            }
            // Ours wait behind a reserved place not filled yet: wait for
            // it to be filled (or for another writer to write ours).
            let queue = self.inner.waiting.lock().map_err(|_| poisoned())?;
            if queue.changes == seen {
                let _ = self
                    .inner
                    .progress
                    .wait_timeout_while(queue, PLACE_WAIT, |queue| queue.changes == seen)
                    .map_err(|_| poisoned())?;
            }
        }
        let taken = outcome.lock().map_err(|_| poisoned())?.take();
        match taken {
            Some(Ok(seqs)) => Ok(seqs),
            Some(Err(message)) => Err(Error::Internal(format!(
                "could not append to the event log: {message}"
            ))),
            None => Err(Error::Internal(
                "events were left unwritten in the event log queue".to_owned(),
            )),
        }
    }

    /// Writes the waiting appends up to the first reserved place not
    /// filled yet, in one transaction, and hands each its outcome. Called
    /// with the writer turn held.
    fn write_waiting(&self) -> Result<()> {
        let mut batch = Vec::new();
        {
            let mut queue = self.inner.waiting.lock().map_err(|_| poisoned())?;
            while let Some(front) = queue.appends.front() {
                if front.events.is_none() {
                    break;
                }
                if let Some(next) = queue.appends.pop_front() {
                    batch.push(next);
                }
            }
        }
        let batch: Vec<(Vec<PendingEvent>, AppendOutcome)> = batch
            .into_iter()
            .map(|waiting| (waiting.events.unwrap_or_default(), waiting.outcome))
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        let outcome = self.write_batch(&batch);
        if let Ok(mut queue) = self.inner.waiting.lock() {
            queue.changes += 1;
        }
        self.inner.progress.notify_all();
        outcome
    }

    /// Writes `batch` in one transaction and hands each its outcome.
    fn write_batch(&self, batch: &[(Vec<PendingEvent>, AppendOutcome)]) -> Result<()> {
        if batch.iter().all(|(events, _)| events.is_empty()) {
            for (_, outcome) in batch {
                *outcome.lock().map_err(|_| poisoned())? = Some(Ok(Vec::new()));
            }
            return Ok(());
        }
        let now = time::now_string();
        let written = self.inner.db.write(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO repo_seq (did, event_type, event, sequenced_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut all = Vec::with_capacity(batch.len());
            for (events, _) in batch {
                let mut seqs = Vec::with_capacity(events.len());
                for event in events {
                    insert.execute(params![event.did, event.kind.stored_name(), event.body, now])?;
                    seqs.push(tx.last_insert_rowid());
                }
                all.push(seqs);
            }
            Ok(all)
        });
        match written {
            Ok(all) => {
                let last = all.iter().flatten().copied().max().unwrap_or(0);
                for ((_, outcome), seqs) in batch.iter().zip(all) {
                    *outcome.lock().map_err(|_| poisoned())? = Some(Ok(seqs));
                }
                self.inner
                    .latest
                    .send_modify(|latest| *latest = (*latest).max(last));
                if let Some(crawlers) = self.inner.crawlers.get() {
                    crawlers.notify_of_update();
                }
            }
            Err(err) => {
                let message = err.to_string();
                for (_, outcome) in batch {
                    *outcome.lock().map_err(|_| poisoned())? = Some(Err(message.clone()));
                }
            }
        }
        Ok(())
    }

    fn prune_if_due(&self) -> Result<()> {
        let due = {
            let mut last = self.inner.last_prune.lock().map_err(|_| poisoned())?;
            let due = match *last {
                Some(at) => at.elapsed() >= PRUNE_INTERVAL,
                None => true,
            };
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            let window = self.backfill_window()?;
            let cutoff = Utc::now() - chrono::Duration::from_std(window).unwrap_or_default();
            self.prune_before(&cutoff)?;
        }
        Ok(())
    }

    /// Deletes the events sequenced before `cutoff`; returns how many.
    /// Cursors before the last pruned event then get `OutdatedCursor`.
    pub fn prune_before(&self, cutoff: &DateTime<Utc>) -> Result<usize> {
        let cutoff = time::format(cutoff);
        self.inner.db.write(|tx| {
            let last: Option<i64> = tx.query_row(
                "SELECT MAX(seq) FROM repo_seq WHERE sequenced_at < ?1",
                [&cutoff],
                |row| row.get(0),
            )?;
            let Some(last) = last else { return Ok(0) };
            let deleted = tx.execute("DELETE FROM repo_seq WHERE seq <= ?1", [last])?;
            tx.execute(
                "INSERT INTO seq_state (name, value) VALUES ('pruned_through', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = MAX(value, ?1)",
                [last],
            )?;
            Ok(deleted)
        })
    }

    /// The highest sequence number pruned so far (0 if none).
    pub fn pruned_through(&self) -> Result<i64> {
        self.inner.db.read(pruned_through)
    }

    /// Where a subscriber asking for `cursor` starts (see [`CursorStart`]).
    pub fn resolve_cursor(&self, cursor: i64) -> Result<CursorStart> {
        let window = self.backfill_window()?;
        let backfill_time =
            time::format(&(Utc::now() - chrono::Duration::from_std(window).unwrap_or_default()));
        self.inner.db.read(|tx| {
            let latest = last_assigned_seq(tx)?;
            if cursor > latest {
                return Ok(CursorStart::Future);
            }
            let pruned = pruned_through(tx)?;
            let next_time: Option<String> = tx
                .query_row(
                    "SELECT sequenced_at FROM repo_seq WHERE seq > ?1 ORDER BY seq LIMIT 1",
                    [cursor],
                    |row| row.get(0),
                )
                .optional()?;
            let too_old = next_time.is_some_and(|time| time < backfill_time);
            if cursor >= pruned && !too_old {
                return Ok(CursorStart::After(cursor));
            }
            let first_kept: Option<i64> = tx
                .query_row(
                    "SELECT seq FROM repo_seq WHERE sequenced_at >= ?1 ORDER BY seq LIMIT 1",
                    [&backfill_time],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(CursorStart::Outdated(
                first_kept.map_or(latest, |seq| seq - 1).max(pruned),
            ))
        })
    }

    /// Up to `limit` events with a sequence number above `after`, in
    /// order.
    pub fn events_after(&self, after: i64, limit: usize) -> Result<Vec<SeqEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.inner.db.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT seq, did, event_type, event, sequenced_at FROM repo_seq
                 WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt
                .query_map(params![after, limit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                        row.get::<_, String>(4)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(seq, did, kind, event, time)| {
                let kind = EventKind::from_stored(&kind)?;
                let frame = encode_frame(seq, kind, &event, &time)?;
                Ok(SeqEvent {
                    seq,
                    did,
                    kind,
                    time,
                    frame,
                })
            })
            .collect()
    }
}

fn last_assigned_seq(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    let assigned: Option<i64> = tx
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'repo_seq'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(assigned.unwrap_or(0))
}

fn pruned_through(tx: &rusqlite::Transaction<'_>) -> Result<i64> {
    let value: Option<i64> = tx
        .query_row(
            "SELECT value FROM seq_state WHERE name = 'pruned_through'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    Ok(value.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use super::*;

    fn log() -> (tempfile::TempDir, Sequencer) {
        let dir = tempfile::tempdir().unwrap();
        let log = Sequencer::open(&dir.path().join("sequencer.sqlite")).unwrap();
        (dir, log)
    }

    #[test]
    fn heads_stored_without_an_event_are_announced_with_sync() {
        use atp_crypto::{Algorithm, SigningKey};
        use atp_syntax::TidClock;

        let dir = tempfile::tempdir().unwrap();
        let actors = Arc::new(ActorStores::new(dir.path().join("actors")).unwrap());
        let log = Sequencer::open(&dir.path().join("sequencer.sqlite"))
            .unwrap()
            .with_actor_stores(Arc::clone(&actors));
        let key = SigningKey::generate(Algorithm::K256);
        let commit_of = |did: &str| {
            let store = actors.open(did).unwrap();
            let mut repo = store.open_repo().unwrap();
            let rev = TidClock::global().next();
            store
                .commit(&mut repo, &key, rev.as_str(), &BTreeMap::new())
                .unwrap()
        };
        let (announced, lost, inactive) = (
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
            "did:plc:yk4dd2qkboz2yv6tpubpc6co",
            "did:plc:44ybard66vv44zksje25o7dz",
        );
        for did in [announced, lost, inactive] {
            actors.create(did, &key).unwrap();
            let commit = commit_of(did);
            log.sequence_commit(did, &commit, &[]).unwrap();
        }
        // A second commit of `lost` and `inactive` is stored, then the
        // process dies before sequencing it.
        let head = commit_of(lost);
        commit_of(inactive);
        let before = log.latest_seq();

        let is_active = |did: &str| did != inactive;
        assert_eq!(
            log.announce_unsequenced_heads(is_active).unwrap(),
            vec![lost.to_owned()]
        );
        let events = log.events_after(before, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Sync);
        assert_eq!(events[0].did, lost);
        assert_eq!(log.last_announced_rev(lost).unwrap(), Some(head.rev));
        // Once announced, nothing more is.
        assert!(log
            .announce_unsequenced_heads(is_active)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn concurrent_appends_keep_each_callers_events_together_and_in_order() {
        let (_dir, log) = log();
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let log = log.clone();
                std::thread::spawn(move || {
                    let did = format!("did:plc:thread{thread}aaaaaaaaaaaaaaaa");
                    let mut numbers = Vec::new();
                    for call in 0..40u8 {
                        let events = (0..3u8)
                            .map(|n| PendingEvent {
                                did: did.clone(),
                                kind: EventKind::Identity,
                                body: dagcbor::encode_ipld(&map(vec![
                                    ("did", Ipld::String(did.clone())),
                                    ("n", Ipld::Integer(i128::from(call * 3 + n))),
                                ]))
                                .unwrap(),
                            })
                            .collect();
                        let seqs = log.append_events(events).unwrap();
                        assert_eq!(seqs.len(), 3);
                        assert_eq!(seqs[1], seqs[0] + 1);
                        assert_eq!(seqs[2], seqs[0] + 2);
                        numbers.extend(seqs);
                    }
                    (did, numbers)
                })
            })
            .collect();
        let mut all = Vec::new();
        for thread in threads {
            let (did, numbers) = thread.join().unwrap();
            // Each caller's events are stored under the numbers it got,
            // in its order.
            for (index, seq) in numbers.iter().enumerate() {
                let event = log.events_after(seq - 1, 1).unwrap().remove(0);
                assert_eq!((event.seq, event.did.as_str()), (*seq, did.as_str()));
                let body: Ipld = event.frame.body().unwrap();
                let Ipld::Map(body) = body else { panic!() };
                assert_eq!(body.get("n"), Some(&Ipld::Integer(index as i128)));
            }
            all.extend(numbers);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=8 * 40 * 3).collect::<Vec<i64>>());
        assert_eq!(log.latest_seq(), 8 * 40 * 3);
    }

    fn identity_event(did: &str) -> PendingEvent {
        PendingEvent {
            did: did.to_owned(),
            kind: EventKind::Identity,
            body: dagcbor::encode_ipld(&map(vec![("did", Ipld::String(did.to_owned()))])).unwrap(),
        }
    }

    #[test]
    fn events_after_a_reserved_place_wait_for_it_to_be_filled() {
        let (_dir, log) = log();
        let first = "did:plc:firstaaaaaaaaaaaaaaaaaaa";
        let second = "did:plc:secondaaaaaaaaaaaaaaaaaa";
        let place = log.reserve_events().unwrap();
        let later = log.enqueue_events(vec![identity_event(second)]).unwrap();
        let waiting = std::thread::spawn(move || later.wait().unwrap());
        // The later events cannot be written before the place is filled.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(log.latest_seq(), 0);
        assert!(!waiting.is_finished());
        let filled = place
            .fill(vec![identity_event(first), identity_event(first)])
            .unwrap();
        let later_seqs = waiting.join().unwrap();
        let first_seqs = filled.wait().unwrap();
        assert_eq!(first_seqs, vec![1, 2]);
        assert_eq!(later_seqs, vec![3]);
        let dids: Vec<String> = log
            .events_after(0, 10)
            .unwrap()
            .into_iter()
            .map(|event| event.did)
            .collect();
        assert_eq!(dids, [first, first, second]);
    }

    #[test]
    fn a_place_dropped_unfilled_holds_nothing_up() {
        let (_dir, log) = log();
        let did = "did:plc:secondaaaaaaaaaaaaaaaaaa";
        let place = log.reserve_events().unwrap();
        let later = log.enqueue_events(vec![identity_event(did)]).unwrap();
        drop(place);
        assert_eq!(later.wait().unwrap(), vec![1]);
        // An empty filled place writes nothing.
        let empty = log.reserve_events().unwrap().fill(Vec::new()).unwrap();
        assert_eq!(empty.wait().unwrap(), Vec::<i64>::new());
        assert_eq!(log.latest_seq(), 1);
    }

    #[test]
    fn numbers_go_up_across_pruning_and_reopening() {
        let (dir, log) = log();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let a = log.sequence_identity(did, None).unwrap();
        let b = log.sequence_account(did, true, None).unwrap();
        assert_eq!((a, b), (1, 2));
        let pruned = log
            .prune_before(&(Utc::now() + chrono::Duration::seconds(1)))
            .unwrap();
        assert_eq!(pruned, 2);
        assert_eq!(log.pruned_through().unwrap(), 2);
        drop(log);
        let log = Sequencer::open(&dir.path().join("sequencer.sqlite")).unwrap();
        assert_eq!(log.latest_seq(), 2);
        assert_eq!(log.sequence_identity(did, Some("alice.test")).unwrap(), 3);
    }

    #[test]
    fn cursors_resolve_like_the_reference() {
        let (_dir, log) = log();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        for _ in 0..4 {
            log.sequence_identity(did, None).unwrap();
        }
        assert_eq!(log.resolve_cursor(5).unwrap(), CursorStart::Future);
        assert_eq!(log.resolve_cursor(4).unwrap(), CursorStart::After(4));
        assert_eq!(log.resolve_cursor(0).unwrap(), CursorStart::After(0));
        // Prune the first two by hand (as if they were old).
        log.database()
            .write(|tx| {
                tx.execute(
                    "UPDATE repo_seq SET sequenced_at = '2000-01-01T00:00:00.000Z' WHERE seq <= 2",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        // Older than the window: outdated even before pruning.
        assert_eq!(log.resolve_cursor(0).unwrap(), CursorStart::Outdated(2));
        let cutoff = Utc::now() - chrono::Duration::hours(1);
        assert_eq!(log.prune_before(&cutoff).unwrap(), 2);
        assert_eq!(log.resolve_cursor(1).unwrap(), CursorStart::Outdated(2));
        assert_eq!(log.resolve_cursor(2).unwrap(), CursorStart::After(2));
        let events = log.events_after(2, 10).unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn deletion_drops_the_accounts_earlier_events() {
        let (_dir, log) = log();
        let gone = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        let kept = "did:plc:yk4dd2qkboz2yv6tpubpc6co";
        log.sequence_identity(gone, None).unwrap();
        log.sequence_identity(kept, None).unwrap();
        let deleted = log.sequence_account(gone, false, Some("deleted")).unwrap();
        let events = log.events_after(0, 10).unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| (e.seq, e.did.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, kept), (deleted, gone)]
        );
    }

    #[test]
    fn frames_carry_seq_and_time() {
        let (_dir, log) = log();
        let did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
        log.sequence_account(did, false, Some("deactivated"))
            .unwrap();
        let event = log.events_after(0, 1).unwrap().remove(0);
        let body: Ipld = event.frame.body().unwrap();
        let Ipld::Map(body) = body else { panic!() };
        assert_eq!(body.get("seq"), Some(&Ipld::Integer(1)));
        assert_eq!(body.get("time"), Some(&Ipld::String(event.time.clone())));
        assert_eq!(body.get("active"), Some(&Ipld::Bool(false)));
        assert_eq!(
            body.get("status"),
            Some(&Ipld::String("deactivated".to_owned()))
        );
        assert_eq!(event.frame.message_type(), Some("#account"));
    }
}
