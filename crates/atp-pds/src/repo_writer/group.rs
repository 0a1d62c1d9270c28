//! Group commit: the requests that wait for a repository while it is
//! being written are committed together.
//!
//! [`submit`] queues a request for its repository and, if the repository
//! has no leader, starts one: a task that takes the repository's write
//! lock ([`RepoLocks`]) and, until the queue is empty, takes everything
//! queued for the repository so far (a group) and, still holding the
//! lock:
//!
//! 1. does each request's blob work (checks its blob references, moves
//!    the temporary uploads it references to their permanent place: async
//!    and idempotent, and needed before the commit that references them);
//! 2. builds and stores the requests' commits, in order, in one
//!    actor-store transaction (one fsync; see [`super::build`]): one
//!    commit per request, except that consecutive plain creates share
//!    one;
//! 3. takes the place of the group's `#commit` events in the event log
//!    ([`Sequencer::reserve_events`](crate::sequencer::Sequencer::reserve_events)),
//!    after those of the groups before;
//! 4. builds the events (from the commits and the blocks the group read),
//!    fills in their place, waits for them to be durable (one event-log
//!    transaction, shared with the appends of other repositories and
//!    groups waiting at the same time), runs the blob hooks of the
//!    commits that need them, and answers each request. A group without
//!    blob work does this step after letting go of the lock, so the next
//!    group's commits are being stored while this group's events are
//!    built and written.
//!
//! So a request is answered only once its commit and its event are both
//! durable, every request's answer names the commit that holds its
//! writes (its own, or one shared with the creates next to it), each
//! commit has one event, the commits of a repository form one chain, and
//! a group never spans two repositories (one SQLite file each). The work
//! runs in its own task: a caller that goes away cannot cut a group
//! short.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use atp_crypto::Cid;
use atp_repo_mst::repo::{CommitData, WriteAction};
use atp_xrpc::server::XrpcError;
use tokio::sync::oneshot;

use super::blocking;
use super::build::{commit_events, commit_group, CommitProofs, ReadyJob};
use super::key_cache;
use super::locks::RepoLocks;
use super::prepare::{invalid, PreparedWrite};
use super::MAX_WRITES;
use crate::actor_store::ActorStore;
use crate::blob_index;
use crate::blob_refs::BlobRef;
use crate::error::Error;
use crate::http::errors::to_xrpc;
use crate::http::PdsState;
use crate::sequencer::ReservedEvents;
use atp_repo_mst::car::BlockMap;

/// Most record writes committed in one group (the requests of a group
/// are taken whole, so a single request may exceed it).
const MAX_GROUP_WRITES: usize = 1_000;

/// What one request asks of its repository.
#[derive(Clone, Debug)]
pub enum WriteRequest {
    /// These writes in one commit (`applyWrites`).
    Writes(Vec<PreparedWrite>),
    /// One create (`createRecord`); with `replace_backlinks`, earlier
    /// records of its collection with the same backlink are deleted in
    /// the same commit, as the reference does for follows, blocks, likes
    /// and reposts.
    Create {
        /// The create.
        write: PreparedWrite,
        /// Whether to delete the records it duplicates.
        replace_backlinks: bool,
    },
    /// `putRecord`: an update if the record exists (no commit at all when
    /// it is the same record), else a create. The write's action is set
    /// when it is applied.
    Put(PreparedWrite),
    /// `deleteRecord`: no commit when the record is not there.
    Delete(PreparedWrite),
}

impl WriteRequest {
    fn writes(&self) -> Vec<&PreparedWrite> {
        match self {
            WriteRequest::Writes(writes) => writes.iter().collect(),
            WriteRequest::Create { write, .. }
            | WriteRequest::Put(write)
            | WriteRequest::Delete(write) => {
                vec![write]
            }
        }
    }

    fn write_count(&self) -> usize {
        match self {
            WriteRequest::Writes(writes) => writes.len(),
            _ => 1,
        }
    }
}

/// What a request did.
#[derive(Clone, Debug)]
pub struct WriteOutcome {
    /// The writes applied, as applied (a put's action decided, a create's
    /// backlink deletes first).
    pub writes: Vec<PreparedWrite>,
    /// The stored commit; `None` when the request changed nothing.
    pub commit: Option<CommitData>,
}

type Answer = Result<WriteOutcome, XrpcError>;

struct Queued {
    request: WriteRequest,
    swap_commit: Option<Cid>,
    reply: oneshot::Sender<Answer>,
}

/// The requests waiting for one repository. The entry exists while the
/// repository has a leader: a task that takes its lock and commits its
/// groups until the queue is empty, then removes the entry.
#[derive(Default)]
struct RepoQueue {
    waiting: VecDeque<Queued>,
}

type Queues = Mutex<HashMap<String, RepoQueue>>;

fn queues() -> &'static Queues {
    static QUEUES: OnceLock<Queues> = OnceLock::new();
    QUEUES.get_or_init(Queues::default)
}

fn internal(message: &str) -> XrpcError {
    to_xrpc(Error::Internal(message.to_owned()))
}

/// Applies `request` to `did`'s repository, committed together with the
/// requests queued for it at the same time (see the module
/// documentation), and returns what it did once it is durable.
pub async fn submit(
    state: &PdsState,
    did: &str,
    request: WriteRequest,
    swap_commit: Option<Cid>,
) -> Result<WriteOutcome, XrpcError> {
    if request.write_count() > MAX_WRITES {
        return Err(invalid("Too many writes. Max: 200"));
    }
    let (reply, answer) = oneshot::channel();
    let queued = Queued {
        request,
        swap_commit,
        reply,
    };
    let start_leader = {
        let mut map = queues()
            .lock()
            .map_err(|_| internal("write queue lock poisoned"))?;
        match map.get_mut(did) {
            Some(queue) => {
                queue.waiting.push_back(queued);
                false
            }
            None => {
                let mut queue = RepoQueue::default();
                queue.waiting.push_back(queued);
                map.insert(did.to_owned(), queue);
                true
            }
        }
    };
    if start_leader {
        let (state, owner) = (state.clone(), did.to_owned());
        tokio::spawn(async move { lead(&state, &owner).await });
    }
    answer
        .await
        .map_err(|_| internal("the write task ended without an answer"))?
}

/// How many requests wait in `did`'s queue (not yet taken into a group).
pub fn queued_requests(did: &str) -> usize {
    queues()
        .lock()
        .map(|map| map.get(did).map_or(0, |queue| queue.waiting.len()))
        .unwrap_or(0)
}

/// Takes the next group queued for `did`: requests in order, up to
/// [`MAX_GROUP_WRITES`] writes (at least one request). When none is
/// left, the leader is done: the queue goes, and the next request starts
/// a new leader.
fn take_group(did: &str) -> Vec<Queued> {
    let Ok(mut map) = queues().lock() else {
        return Vec::new();
    };
    let Some(entry) = map.get_mut(did) else {
        return Vec::new();
    };
    if entry.waiting.is_empty() {
        map.remove(did);
        return Vec::new();
    }
    let queue = &mut entry.waiting;
    let mut group = Vec::new();
    let mut writes = 0;
    while let Some(next) = queue.front() {
        let count = next.request.write_count();
        if !group.is_empty() && writes + count > MAX_GROUP_WRITES {
            break;
        }
        writes += count;
        if let Some(next) = queue.pop_front() {
            group.push(next);
        }
    }
    group
}

/// Ends a leader that stops early (its task cancelled or panicking): the
/// requests still queued are refused and the queue goes, so the next
/// request starts a new leader instead of waiting forever.
struct LeaderGone<'a> {
    did: &'a str,
    /// Set once the leader found the queue empty (and removed it).
    done: bool,
}

impl Drop for LeaderGone<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Ok(mut map) = queues().lock() else {
            return;
        };
        if let Some(queue) = map.remove(self.did) {
            for queued in queue.waiting {
                let _ = queued
                    .reply
                    .send(Err(internal("the repository's write task stopped")));
            }
        }
    }
}

/// Takes `did`'s lock and commits the groups queued for it until none is
/// left.
async fn lead(state: &PdsState, did: &str) {
    let mut gone = LeaderGone { did, done: false };
    let guard = match RepoLocks::global().lock(did).await {
        Ok(guard) => guard,
        Err(err) => {
            let err = to_xrpc(err);
            loop {
                let group = take_group(did);
                if group.is_empty() {
                    gone.done = true;
                    return;
                }
                for queued in group {
                    let _ = queued.reply.send(Err(err.clone()));
                }
            }
        }
    };
    loop {
        let group = take_group(did);
        if group.is_empty() {
            gone.done = true;
            break;
        }
        let mut jobs = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());
        for queued in group {
            jobs.push((queued.request, queued.swap_commit));
            replies.push(queued.reply);
        }
        let stored = commit_group_of(state, did, jobs).await;
        if stored.needs_blob_hooks() {
            // The hooks run under the lock, after the events are durable.
            send_answers(replies, stored.finish(state, did).await);
        } else {
            // Waiting for the event log does not hold up the next group:
            // its commits are stored while these events are built and
            // written.
            let did = did.to_owned();
            tokio::task::spawn_blocking(move || {
                send_answers(replies, all_answered(stored.sequence(&did)));
            });
        }
    }
    drop(guard);
}

/// The answers of a group, an error for any missing.
fn all_answered(answers: Vec<Option<Answer>>) -> Vec<Answer> {
    answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err(internal("a write of a group was lost"))))
        .collect()
}

fn send_answers(replies: Vec<oneshot::Sender<Answer>>, answers: Vec<Answer>) {
    for (reply, answer) in replies.into_iter().zip(answers) {
        // A caller that went away just misses its answer.
        let _ = reply.send(answer);
    }
}

/// The store of `did`, opened on the blocking pool.
pub(super) async fn open_store(state: &PdsState, did: &str) -> Result<Arc<ActorStore>, XrpcError> {
    let actors = Arc::clone(state.storage.actors());
    let did = did.to_owned();
    crate::db::run_blocking(move || actors.open(&did))
        .await
        .map_err(to_xrpc)
}

/// Commits `jobs` (requests to `did`'s repository, in order) as one
/// group; the caller holds the repository's write lock. Returns one
/// answer per job, once every commit and event is durable and the blob
/// hooks ran.
pub(super) async fn run_group(
    state: &PdsState,
    did: &str,
    jobs: Vec<(WriteRequest, Option<Cid>)>,
) -> Vec<Answer> {
    commit_group_of(state, did, jobs)
        .await
        .finish(state, did)
        .await
}

/// A group whose commits are stored and whose events have their place in
/// the log, not built yet.
struct StoredGroup {
    answers: Vec<Option<Answer>>,
    events: Option<PendingEvents>,
}

/// What a group's events are built from, and their place in the log.
struct PendingEvents {
    place: ReservedEvents,
    read: BlockMap,
    proofs: CommitProofs,
    store: Arc<ActorStore>,
}

impl StoredGroup {
    /// Whether the blob hooks must run after this group's commits (then
    /// under the repository's lock).
    fn needs_blob_hooks(&self) -> bool {
        self.answers.iter().flatten().any(|answer| match answer {
            Ok(WriteOutcome {
                writes,
                commit: Some(commit),
            }) => needs_blob_hooks(writes, commit),
            _ => false,
        })
    }

    /// Builds the group's events, fills in their place in the log and
    /// waits for them to be durable; returns the answers. Blocks.
    fn sequence(self, did: &str) -> Vec<Option<Answer>> {
        let answers = self.answers;
        if let Some(events) = self.events {
            let commits = distinct_commits(&answers);
            let store = events.store.block_store();
            let built = commit_events(did, commits, &events.read, &events.proofs, &store);
            let written = events.place.fill(built).and_then(|ticket| ticket.wait());
            if let Err(err) = written {
                tracing::error!(%did, error = %err, "could not sequence stored commits");
            }
        }
        answers
    }

    /// [`StoredGroup::sequence`], then the blob hooks that are due; returns
    /// the answers.
    async fn finish(self, state: &PdsState, did: &str) -> Vec<Answer> {
        let count = self.answers.len();
        let owner = did.to_owned();
        let answers = match blocking(move || Ok(self.sequence(&owner))).await {
            Ok(answers) => answers,
            Err(err) => {
                tracing::error!(%did, error = %err.message(), "could not sequence stored commits");
                return (0..count)
                    .map(|_| Err(internal("could not sequence stored commits")))
                    .collect();
            }
        };
        let mut hooked: Option<&Cid> = None;
        for answer in answers.iter().flatten() {
            let Ok(WriteOutcome {
                writes,
                commit: Some(commit),
            }) = answer
            else {
                continue;
            };
            // Creates that share a commit name it one after the other;
            // its hooks run once, for all of its ops.
            if hooked == Some(&commit.cid) {
                continue;
            }
            if needs_blob_hooks(writes, commit) {
                hooked = Some(&commit.cid);
                if let Err(err) = crate::http::blob::after_commit(state, did, commit).await {
                    tracing::error!(%did, rev = %commit.rev, error = %err.message(), "blob hooks failed after a commit");
                }
            }
        }
        all_answered(answers)
    }
}

/// Does the blob work of `jobs`, stores their commits in one transaction
/// and hands their events to the log, in order.
async fn commit_group_of(
    state: &PdsState,
    did: &str,
    jobs: Vec<(WriteRequest, Option<Cid>)>,
) -> StoredGroup {
    let count = jobs.len();
    let mut answers: Vec<Option<Answer>> = (0..count).map(|_| None).collect();
    let mut indexes = Vec::with_capacity(count);
    let mut ready = Vec::with_capacity(count);
    for (index, (request, swap_commit)) in jobs.into_iter().enumerate() {
        if request.write_count() > MAX_WRITES {
            answers[index] = Some(Err(invalid("Too many writes. Max: 200")));
            continue;
        }
        match prepare_blobs(state, did, &request).await {
            Ok(moved) => {
                indexes.push(index);
                ready.push(ReadyJob {
                    request,
                    swap_commit,
                    moved,
                });
            }
            Err(err) => answers[index] = Some(Err(err)),
        }
    }
    if ready.is_empty() {
        return StoredGroup {
            answers,
            events: None,
        };
    }
    let sequencer = state.sequencer.clone();
    let actors = Arc::clone(state.storage.actors());
    let owner = did.to_owned();
    let built = blocking(move || {
        let store = actors.open(&owner).map_err(to_xrpc)?;
        let key = key_cache::signing_key(&store).map_err(to_xrpc)?;
        let stored = commit_group(&store, &key, ready).map_err(to_xrpc)?;
        let committed = stored
            .jobs
            .iter()
            .any(|job| job.as_ref().is_ok_and(|job| job.outcome.commit.is_some()));
        // The place is taken before the lock is released, so the events
        // of the next group of this repository come after these.
        let events = if committed {
            Some(PendingEvents {
                place: sequencer.reserve_events().map_err(to_xrpc)?,
                read: stored.read,
                proofs: stored.proofs,
                store,
            })
        } else {
            None
        };
        Ok((stored.jobs, events))
    })
    .await;
    let events = match built {
        Ok((built, events)) => {
            for (index, job) in indexes.into_iter().zip(built) {
                answers[index] = Some(job.map(|job| job.outcome));
            }
            events
        }
        Err(err) => {
            for index in indexes {
                answers[index] = Some(Err(err.clone()));
            }
            None
        }
    };
    StoredGroup { answers, events }
}

/// The commits named by `answers`, in order, each once (the creates of a
/// shared commit name it one after the other).
fn distinct_commits(answers: &[Option<Answer>]) -> impl Iterator<Item = &CommitData> + Clone {
    let mut commits: Vec<&CommitData> = Vec::new();
    for answer in answers.iter().flatten() {
        if let Ok(WriteOutcome {
            commit: Some(commit),
            ..
        }) = answer
        {
            if !matches!(commits.last(), Some(last) if last.cid == commit.cid) {
                commits.push(commit);
            }
        }
    }
    commits.into_iter()
}

/// Whether the blob hooks have anything to do after `commit`: records
/// that reference blobs were written, or records were replaced or
/// deleted (their blobs may now be unreferenced).
fn needs_blob_hooks(writes: &[PreparedWrite], commit: &CommitData) -> bool {
    writes.iter().any(|write| !write.blobs.is_empty())
        || commit
            .ops
            .iter()
            .any(|op| matches!(op.action, WriteAction::Update | WriteAction::Delete))
}

/// Checks the blob references of `request` and moves the temporary
/// uploads they name to their permanent place; returns the temporary
/// keys moved.
async fn prepare_blobs(
    state: &PdsState,
    did: &str,
    request: &WriteRequest,
) -> Result<Vec<String>, XrpcError> {
    let refs: Vec<BlobRef> = request
        .writes()
        .into_iter()
        .flat_map(|write| write.blobs.iter().cloned())
        .collect();
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    crate::http::blob::check_write_blobs(state, did, &refs).await?;
    let mut cids: Vec<Cid> = Vec::new();
    for blob in &refs {
        if !cids.contains(&blob.cid) {
            cids.push(blob.cid);
        }
    }
    let store = open_store(state, did).await?;
    move_referenced_uploads(state, did, &store, &cids).await
}

/// Moves the temporary uploads among `cids` to their permanent place,
/// before the commit referencing them is stored: a crash after the commit
/// can then never leave a record pointing at a temporary blob. Moving is
/// idempotent (a blob already in place just drops its temporary copy), so
/// a commit that fails after this and is retried moves nothing twice.
/// Returns the temporary keys moved, to be marked permanent with the
/// commit.
async fn move_referenced_uploads(
    state: &PdsState,
    did: &str,
    store: &Arc<ActorStore>,
    cids: &[Cid],
) -> Result<Vec<String>, XrpcError> {
    let mut moved = Vec::new();
    for cid in cids {
        let (reading, cid) = (Arc::clone(store), *cid);
        let row = blocking(move || blob_index::get_blob(&reading, &cid).map_err(to_xrpc)).await?;
        let Some(temp_key) = row.and_then(|row| row.temp_key) else {
            continue;
        };
        state
            .blobs
            .make_permanent(did, &temp_key, &cid)
            .await
            .map_err(to_xrpc)?;
        moved.push(temp_key);
    }
    Ok(moved)
}
