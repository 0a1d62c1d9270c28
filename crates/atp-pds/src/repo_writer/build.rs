//! Building and storing the commits of a group of requests to one
//! repository in one actor-store transaction.
//!
//! The requests run in order. Each reads the head and record index
//! through the transaction (so it sees the requests before it), checks
//! its swaps, applies its writes to the in-memory tree and signs a commit
//! at a new rev; only then does it write: the new root and its record
//! index changes, while its blocks go to the group's netted writes
//! ([`NettedBlocks`]), stored once the last request is built. So a
//! request refused (a swap mismatch, a record that exists, a commit too
//! large) has written nothing and fails alone, without the cost of a
//! savepoint per request; the others go on. A failed write, on the other
//! hand (an I/O error), fails the whole group and its transaction. The
//! loaded tree is kept from one request to the next, and loaded again
//! after a refusal.
//!
//! Consecutive plain creates share one commit ([`plan_shared_commit`]):
//! `createRecord` calls without `swapCommit` and with no earlier record
//! to replace, whose outcome depends only on the tree. Each is checked
//! and applied to the tree on its own (a refused one leaves the tree as
//! it was and fails alone), then one commit is signed for all of them,
//! up to [`MAX_WRITES`] creates and about [`SHARED_RECORD_BYTES`] of
//! records, so that it stays within the limits of a `#commit` event.
//! Every one of their answers names that commit, and its event carries
//! all their ops: the same as one `applyWrites` of those creates. The
//! signature, the commit block, the MST nodes along the shared paths,
//! the root row and the event are then made once instead of once per
//! request.
//!
//! The `#commit` events are built afterwards ([`commit_events`]), from the
//! commits and the stored blocks the group read, once the repository's
//! lock is released: the place of the group's events in the log is taken
//! under the lock, so they keep the order of the commits.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use atp_crypto::{Cid, SigningKey};
use atp_repo_mst::blockstore::BlockStore;
use atp_repo_mst::car::BlockMap;
use atp_repo_mst::proof::partial_tree::BlockSource;
use atp_repo_mst::repo::{CommitData, Repo, WriteAction};
use atp_xrpc::server::XrpcError;

use super::group::{WriteOutcome, WriteRequest};
use super::netted_blocks::NettedBlocks;
use super::prepare::{
    bad_commit_swap, check_record_swap, invalid, next_rev, prepare_delete, PreparedWrite,
};
use super::tx_blocks::{GroupBlockState, TxBlocks};
use super::{MAX_COMMIT_BYTES, MAX_WRITES};
use crate::actor_store::{ActorStore, ActorTransaction};
use crate::blob_index;
use crate::error::Error;
use crate::http::errors::to_xrpc;
use crate::sequencer::PendingEvent;

/// A commit shared by creates takes no further create once its records
/// reach this size: with one more record (a request body is at most
/// [`MAX_WRITE_BODY_BYTES`](crate::http::repo::MAX_WRITE_BODY_BYTES)),
/// its blocks stay under [`MAX_COMMIT_BYTES`].
pub(super) const SHARED_RECORD_BYTES: usize = 512 * 1024;

/// One request of a group, its blob work done.
pub(super) struct ReadyJob {
    /// What it asks.
    pub request: WriteRequest,
    /// Its `swapCommit`.
    pub swap_commit: Option<Cid>,
    /// Temporary uploads moved for it, marked permanent with its commit.
    pub moved: Vec<String>,
}

impl ReadyJob {
    /// Whether this request may share its commit with the creates next to
    /// it: a create with no `swapCommit` (which names the head before
    /// it) and no earlier records to replace (found in the record index,
    /// which is written once per commit), so that its outcome depends on
    /// the tree alone.
    fn can_share_commit(&self) -> bool {
        let WriteRequest::Create {
            write,
            replace_backlinks,
        } = &self.request
        else {
            return false;
        };
        self.swap_commit.is_none()
            && (!replace_backlinks
                || write.record.as_ref().map_or(true, |record| {
                    crate::actor_store::record_backlinks(record).is_empty()
                }))
    }
}

/// What a request of a group did.
pub(super) struct BuiltJob {
    /// The answer.
    pub outcome: WriteOutcome,
    /// The existing nodes its commit's event carries besides the commit's
    /// blocks (empty without a commit), read from the tree in memory.
    pub proof: BTreeSet<Cid>,
}

/// The proof nodes of a group's commits' events, by commit CID.
pub(super) type CommitProofs = HashMap<Cid, BTreeSet<Cid>>;

/// The stored commits of a group, from which its `#commit` events are
/// built once the repository's lock is released.
pub(super) struct StoredCommits {
    /// Each job's result, in order.
    pub jobs: Vec<Result<BuiltJob, XrpcError>>,
    /// The stored blocks the group read while building its commits:
    /// with the commits' own blocks, they hold the proof nodes of its
    /// events.
    pub read: BlockMap,
    /// The proof nodes of each commit's event.
    pub proofs: CommitProofs,
}

/// Runs `jobs` in order in one transaction on `store`, signing with
/// `key`. The outer error means nothing was stored (the transaction
/// failed as a whole); otherwise each job has its own result, and the
/// successful ones are durable when this returns. Their `#commit` events
/// are not built here (see [`commit_events`]), so that the repository is
/// free for the next group sooner.
pub(super) fn commit_group(
    store: &ActorStore,
    key: &SigningKey,
    jobs: Vec<ReadyJob>,
) -> crate::Result<StoredCommits> {
    let group = GroupBlockState::default();
    let results = store.transact(|atx| {
        let mut repo: Option<Repo<TxBlocks<'_>>> = None;
        let mut results = Vec::with_capacity(jobs.len());
        let mut jobs = jobs.into_iter().peekable();
        while let Some(job) = jobs.next() {
            if job.can_share_commit() {
                let shared = plan_shared_commit(atx, &group, store, &mut repo, key, job, &mut jobs);
                if let Some(planned) = &shared.planned {
                    store_job(atx, &group.netted, planned, &shared.moved)?;
                    if let Some(repo) = &repo {
                        repo.store().clear_staged();
                    }
                }
                results.extend(shared.results);
                continue;
            }
            let moved = job.moved.clone();
            let result = match plan_job(atx, &group, store, &mut repo, key, job) {
                Ok(planned) => {
                    store_job(atx, &group.netted, &planned, &moved)?;
                    if let Some(repo) = &repo {
                        repo.store().clear_staged();
                    }
                    Ok(planned)
                }
                Err(refused) => {
                    // The tree may hold some of its writes: load it again.
                    repo = None;
                    Err(refused)
                }
            };
            results.push(result);
        }
        std::mem::take(&mut *group.netted.borrow_mut()).store(atx)?;
        Ok(results)
    })?;
    // The next group of this repository reads its tree from memory.
    let read = group.read.into_inner();
    store.remember_blocks(&read);
    let mut proofs = CommitProofs::new();
    let mut results = results;
    for job in results.iter_mut().flatten() {
        if let Some(commit) = &job.outcome.commit {
            // The creates of a shared commit name it once each.
            if let std::collections::hash_map::Entry::Vacant(entry) = proofs.entry(commit.cid) {
                store.remember_blocks(&commit.blocks);
                entry.insert(std::mem::take(&mut job.proof));
            }
        }
    }
    Ok(StoredCommits {
        jobs: results,
        read,
        proofs,
    })
}

/// The blocks a group's events are built from: its commits' new blocks,
/// the stored blocks it read, then the account's store.
struct GroupBlocks<'a> {
    commits: Vec<&'a BlockMap>,
    read: &'a BlockMap,
    store: &'a dyn BlockStore,
}

impl BlockSource for GroupBlocks<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, atp_repo_mst::Error> {
        for blocks in self.commits.iter().chain(std::iter::once(&self.read)) {
            if let Some(bytes) = blocks.get(cid) {
                return Ok(Some(bytes.clone()));
            }
        }
        self.store.get(cid)
    }
}

/// The `#commit` events of the commits in `answers` (in order), read
/// from those commits, the blocks `read` while building them and `store`;
/// a commit's proof nodes are taken from `proofs` (computed from the
/// blocks for a commit not there).
/// A commit whose event cannot be built (a block missing: it cannot
/// happen short of a damaged store) is logged and left out; the commit is
/// stored, and its repository's head is announced again at the next
/// start.
pub(super) fn commit_events<'a>(
    did: &str,
    commits: impl Iterator<Item = &'a CommitData> + Clone,
    read: &BlockMap,
    proofs: &CommitProofs,
    store: &dyn BlockStore,
) -> Vec<PendingEvent> {
    let source = GroupBlocks {
        commits: commits.clone().map(|commit| &commit.blocks).collect(),
        read,
        store,
    };
    commits
        .filter_map(
            |commit| match match proofs.get(&commit.cid) {
                Some(proof) => PendingEvent::commit_with_proof(did, commit, proof, Some(&source)),
                None => PendingEvent::commit(did, commit, Some(&source)),
            } {
                Ok(event) => Some(event),
                Err(err) => {
                    tracing::error!(%did, rev = %commit.rev, error = %err, "could not build the event of a stored commit");
                    None
                }
            },
        )
        .collect()
}

/// Writes a planned job's commit: root, record index, and its moved
/// uploads marked permanent; its blocks are written, and the blocks it no
/// longer reaches deleted (the previous commit, the MST nodes it replaced
/// and the blocks of the records it replaced or deleted that no other
/// record still has, as the reference does), in `netted`, which the
/// group stores once its last commit is built. In a group, a later commit
/// that needs such a block again writes it again: the commit builder asks
/// the group's writes, then the transaction, whether a block is stored
/// ([`TxBlocks`]).
fn store_job(
    atx: &ActorTransaction<'_>,
    netted: &RefCell<NettedBlocks>,
    planned: &BuiltJob,
    moved: &[String],
) -> crate::Result<()> {
    let Some(commit) = &planned.outcome.commit else {
        return Ok(());
    };
    let mut blobs: BTreeMap<String, Vec<Cid>> = BTreeMap::new();
    for write in &planned.outcome.writes {
        blobs.insert(
            write.path(),
            write.blobs.iter().map(|blob| blob.cid).collect(),
        );
    }
    atx.apply_commit_without_blocks(commit, &blobs, &|cid| netted.borrow().get(cid))?;
    let mut netted = netted.borrow_mut();
    netted.write(&commit.blocks, &commit.rev);
    netted.delete(commit.removed.iter().copied());
    let replaced = replaced_records(commit);
    if !replaced.is_empty() {
        netted.delete(atx.unused_record_blocks(&replaced)?);
    }
    for temp_key in moved {
        blob_index::mark_permanent_in(atx.sql(), temp_key)?;
    }
    Ok(())
}

/// The previous CIDs of the records `commit` updates or deletes, less
/// those it writes again (the new value of one of its records): the
/// record blocks it may leave unused. Whether another record still has
/// the same contents is asked of the record index once the commit's
/// changes are applied to it.
fn replaced_records(commit: &CommitData) -> Vec<Cid> {
    let replaced: BTreeSet<Cid> = commit
        .ops
        .iter()
        .filter_map(|op| op.prev)
        .filter(|cid| !commit.blocks.contains_key(cid))
        .collect();
    replaced.into_iter().collect()
}

fn no_commit(writes: Vec<PreparedWrite>) -> BuiltJob {
    BuiltJob {
        outcome: WriteOutcome {
            writes,
            commit: None,
        },
        proof: BTreeSet::new(),
    }
}

/// The deletes of the records that `write` (a create) would duplicate:
/// earlier records of its collection with the same backlink (a second
/// follow or block of one account, like or repost of one record), as the
/// reference removes them in the same commit.
fn backlink_deletes(
    atx: &ActorTransaction<'_>,
    write: &PreparedWrite,
) -> Result<Vec<PreparedWrite>, XrpcError> {
    let Some(record) = &write.record else {
        return Ok(Vec::new());
    };
    let mut rkeys: Vec<String> = Vec::new();
    for link in crate::actor_store::record_backlinks(record) {
        let found = atx
            .backlink_conflicts(&write.collection, &link.path, &link.link_to)
            .map_err(to_xrpc)?;
        for rkey in found {
            if rkey != write.rkey && !rkeys.contains(&rkey) {
                rkeys.push(rkey);
            }
        }
    }
    rkeys
        .iter()
        .map(|rkey| prepare_delete(atx.did(), &write.collection, rkey))
        .collect()
}

/// The writes `request` comes to on the current state, or its answer
/// when it changes nothing.
fn resolve_writes(
    atx: &ActorTransaction<'_>,
    request: WriteRequest,
) -> Result<Result<Vec<PreparedWrite>, BuiltJob>, XrpcError> {
    Ok(Ok(match request {
        WriteRequest::Writes(writes) => writes,
        WriteRequest::Create {
            write,
            replace_backlinks,
        } => {
            let mut writes = if replace_backlinks {
                backlink_deletes(atx, &write)?
            } else {
                Vec::new()
            };
            writes.push(write);
            writes
        }
        WriteRequest::Put(mut write) => {
            let current = atx
                .record_cid(&write.collection, &write.rkey)
                .map_err(to_xrpc)?;
            write.action = if current.is_some() {
                WriteAction::Update
            } else {
                WriteAction::Create
            };
            // The same record again: nothing to commit.
            if current.is_some() && current == write.cid {
                return Ok(Err(no_commit(vec![write])));
            }
            vec![write]
        }
        WriteRequest::Delete(write) => {
            // Deleting what is not there changes nothing.
            let current = atx
                .record_cid(&write.collection, &write.rkey)
                .map_err(to_xrpc)?;
            if current.is_none() {
                return Ok(Err(no_commit(vec![write])));
            }
            vec![write]
        }
    }))
}

/// Decides what `job` does and builds its commit, writing nothing.
fn plan_job<'a>(
    atx: &'a ActorTransaction<'a>,
    group: &'a GroupBlockState,
    store: &'a ActorStore,
    repo: &mut Option<Repo<TxBlocks<'a>>>,
    key: &SigningKey,
    job: ReadyJob,
) -> Result<BuiltJob, XrpcError> {
    let writes = match resolve_writes(atx, job.request)? {
        Ok(writes) => writes,
        Err(answer) => return Ok(answer),
    };
    let repo = match repo {
        Some(repo) => repo,
        None => repo.insert(load_repo(atx, group, store)?),
    };
    let (commit, proof) = build_commit(repo, &writes, job.swap_commit, key)?;
    Ok(BuiltJob {
        outcome: WriteOutcome {
            writes,
            commit: Some(commit),
        },
        proof,
    })
}

/// The repository at the head stored in the transaction.
fn load_repo<'a>(
    atx: &'a ActorTransaction<'a>,
    group: &'a GroupBlockState,
    store: &'a ActorStore,
) -> Result<Repo<TxBlocks<'a>>, XrpcError> {
    let Some(root) = atx.root().map_err(to_xrpc)? else {
        return Err(invalid(format!("No repo root found for {}", atx.did())));
    };
    Repo::load(TxBlocks::new(atx.sql(), group, store), root.cid).map_err(|err| to_xrpc(err.into()))
}

/// Applies `writes` to `repo` and signs (but does not store) their commit
/// on its head, which must be `swap_commit` when given. Returns it with
/// the proof nodes of its event, read from the tree in memory.
fn build_commit(
    repo: &mut Repo<TxBlocks<'_>>,
    writes: &[PreparedWrite],
    swap_commit: Option<Cid>,
    key: &SigningKey,
) -> Result<(CommitData, BTreeSet<Cid>), XrpcError> {
    let (head_cid, head_rev) = match repo.head() {
        Some((cid, commit)) => (*cid, commit.rev.clone()),
        None => return Err(invalid(format!("No repo root found for {}", repo.did()))),
    };
    if let Some(swap) = swap_commit {
        if swap != head_cid {
            return Err(bad_commit_swap(&head_cid));
        }
    }
    for write in writes {
        let current = repo
            .record_cid_loading(&write.collection, &write.rkey)
            .map_err(|err| to_xrpc(err.into()))?;
        check_record_swap(write, current.as_ref())?;
    }
    for write in writes {
        let outcome = match (write.action, &write.record) {
            (WriteAction::Create, Some(record)) => repo
                .create_record(&write.collection, &write.rkey, record)
                .map(|_| ()),
            (WriteAction::Update, Some(record)) => repo
                .update_record(&write.collection, &write.rkey, record)
                .map(|_| ()),
            (WriteAction::Delete, _) => repo
                .delete_record(&write.collection, &write.rkey)
                .map(|_| ()),
            (_, None) => {
                return Err(to_xrpc(Error::Internal(format!(
                    "record write without a record: {}",
                    write.uri
                ))))
            }
        };
        if let Err(err) = outcome {
            return Err(match write_refusal(err, write) {
                Ok(refusal) | Err(refusal) => refusal,
            });
        }
    }
    sign_commit(repo, &head_rev, key)
}

/// Signs the writes applied to `repo` as one commit at the rev after
/// `head_rev`, refusing a commit too large for a `#commit` event. Returns
/// it with the proof nodes of its event, read from the tree in memory.
fn sign_commit(
    repo: &mut Repo<TxBlocks<'_>>,
    head_rev: &str,
    key: &SigningKey,
) -> Result<(CommitData, BTreeSet<Cid>), XrpcError> {
    let commit = repo
        .commit(key, &next_rev(head_rev))
        .map_err(|err| to_xrpc(err.into()))?;
    let size: usize = commit.blocks.values().map(Vec::len).sum();
    if size > MAX_COMMIT_BYTES {
        return Err(invalid("Too many writes. Max event size: 2MB"));
    }
    let proof = repo
        .covering_proof_nodes(commit.ops.iter().map(|op| op.path.as_str()))
        .map_err(|err| to_xrpc(err.into()))?;
    Ok((commit, proof))
}

/// The answer to a write the tree did not take: `Ok` with the request's
/// refusal when the write was checked and refused before the tree
/// changed (the record exists or is missing, a bad path), `Err` when the
/// tree may hold part of it (a block could not be read).
fn write_refusal(err: atp_repo_mst::Error, write: &PreparedWrite) -> Result<XrpcError, XrpcError> {
    match err {
        atp_repo_mst::Error::RecordExists(_) => {
            Ok(invalid(format!("Record already exists: {}", write.uri)))
        }
        atp_repo_mst::Error::RecordNotFound(_) => {
            Ok(invalid(format!("Could not find record: {}", write.uri)))
        }
        atp_repo_mst::Error::Syntax(err) => Ok(invalid(err.to_string())),
        atp_repo_mst::Error::InvalidMstKey(key) => {
            Ok(invalid(format!("Invalid record path: {key}")))
        }
        other => Err(to_xrpc(other.into())),
    }
}

/// The creates of one shared commit.
struct SharedCommit {
    /// The result of each request taken, in order; those accepted name
    /// the shared commit (the first of them with its event's proof nodes).
    results: Vec<Result<BuiltJob, XrpcError>>,
    /// All the accepted writes with their commit, to be stored; `None`
    /// when none was accepted.
    planned: Option<BuiltJob>,
    /// The temporary uploads moved for the accepted requests.
    moved: Vec<String>,
}

impl SharedCommit {
    /// `taken` requests that all fail with `err`.
    fn failed(taken: usize, err: XrpcError) -> SharedCommit {
        SharedCommit {
            results: (0..taken).map(|_| Err(err.clone())).collect(),
            planned: None,
            moved: Vec::new(),
        }
    }
}

/// Applies `first` and the creates after it in `rest` that may share its
/// commit ([`ReadyJob::can_share_commit`]), up to [`MAX_WRITES`] of them
/// and [`SHARED_RECORD_BYTES`] of records, and signs their one commit,
/// writing nothing. A create refused by its checks fails alone and leaves
/// the tree as it was; an error that may have left the tree half-written,
/// or a commit that cannot be built, fails every request taken.
fn plan_shared_commit<'a>(
    atx: &'a ActorTransaction<'a>,
    group: &'a GroupBlockState,
    store: &'a ActorStore,
    repo: &mut Option<Repo<TxBlocks<'a>>>,
    key: &SigningKey,
    first: ReadyJob,
    rest: &mut std::iter::Peekable<impl Iterator<Item = ReadyJob>>,
) -> SharedCommit {
    let tree = match repo {
        Some(tree) => tree,
        None => match load_repo(atx, group, store) {
            Ok(tree) => repo.insert(tree),
            Err(err) => return SharedCommit::failed(1, err),
        },
    };
    let Some(head_rev) = tree.head().map(|(_, commit)| commit.rev.clone()) else {
        return SharedCommit::failed(1, invalid(format!("No repo root found for {}", atx.did())));
    };
    // Each request taken: its write if the tree took it, else its refusal.
    let mut taken: Vec<Result<PreparedWrite, XrpcError>> = Vec::new();
    let mut moved = Vec::new();
    let mut accepted = 0;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        let WriteRequest::Create { write, .. } = job.request else {
            // `can_share_commit` lets only creates in.
            taken.push(Err(invalid("not a create")));
            break;
        };
        let checked = tree
            .record_cid_loading(&write.collection, &write.rkey)
            .map_err(|err| to_xrpc(err.into()))
            .and_then(|current| check_record_swap(&write, current.as_ref()));
        let applied = match checked {
            Err(refusal) => Err(Ok(refusal)),
            Ok(()) => match &write.record {
                Some(record) => tree
                    .create_record(&write.collection, &write.rkey, record)
                    .map(|_| ())
                    .map_err(|err| write_refusal(err, &write)),
                None => Err(Ok(to_xrpc(Error::Internal(format!(
                    "record write without a record: {}",
                    write.uri
                ))))),
            },
        };
        match applied {
            Ok(()) => {
                accepted += 1;
                moved.extend(job.moved);
                taken.push(Ok(write));
            }
            Err(Ok(refusal)) => taken.push(Err(refusal)),
            Err(Err(broken)) => {
                *repo = None;
                return SharedCommit::failed(taken.len() + 1, broken);
            }
        }
        if accepted < MAX_WRITES && tree.pending_record_bytes() < SHARED_RECORD_BYTES {
            next = rest.next_if(ReadyJob::can_share_commit);
        }
    }
    if accepted == 0 {
        return SharedCommit {
            // Every request taken was refused.
            results: taken.into_iter().filter_map(Result::err).map(Err).collect(),
            planned: None,
            moved,
        };
    }
    let (commit, proof) = match sign_commit(tree, &head_rev, key) {
        Ok(built) => built,
        Err(err) => {
            // The tree holds the creates of a commit that was not made.
            *repo = None;
            return SharedCommit::failed(taken.len(), err);
        }
    };
    let mut writes = Vec::with_capacity(accepted);
    let mut proof = Some(proof);
    let results = taken
        .into_iter()
        .map(|outcome| {
            outcome.map(|write| {
                writes.push(write.clone());
                BuiltJob {
                    outcome: WriteOutcome {
                        writes: vec![write],
                        commit: Some(commit.clone()),
                    },
                    proof: proof.take().unwrap_or_default(),
                }
            })
        })
        .collect();
    SharedCommit {
        results,
        planned: Some(BuiltJob {
            outcome: WriteOutcome {
                writes,
                commit: Some(commit),
            },
            proof: BTreeSet::new(),
        }),
        moved,
    }
}
