//! The bodies of the log's events, as stored (DAG-CBOR without `seq` and
//! `time`), and the frames sent to subscribers (with them).

use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::{dagcbor, Cid, Ipld};
use atp_repo_mst::car::{write_car_from_map, BlockMap};
use atp_repo_mst::diff::RecordOp;
use atp_repo_mst::proof::event_proof_nodes;
use atp_repo_mst::proof::partial_tree::BlockSource;
use atp_repo_mst::repo::{CommitData, WriteAction};
use atp_xrpc::stream::{Frame, FrameHeader};

use super::{EventKind, PendingEvent};
use crate::error::{Error, Result};

/// A DAG-CBOR map of `entries`.
pub(super) fn map(entries: Vec<(&str, Ipld)>) -> Ipld {
    Ipld::Map(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// A link, or null.
fn opt_link(cid: Option<Cid>) -> Ipld {
    cid.map_or(Ipld::Null, Ipld::Link)
}

/// The name of a write action in a `#commit` event's ops.
fn action_name(action: WriteAction) -> &'static str {
    match action {
        WriteAction::Create => "create",
        WriteAction::Update => "update",
        WriteAction::Delete => "delete",
    }
}

/// Blocks of a commit just made, then the repository's stored blocks.
struct CommitSource<'a> {
    fresh: &'a BlockMap,
    stored: Option<&'a dyn BlockSource>,
}

impl BlockSource for CommitSource<'_> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Vec<u8>>, atp_repo_mst::Error> {
        if let Some(bytes) = self.fresh.get(cid) {
            return Ok(Some(bytes.clone()));
        }
        match self.stored {
            Some(store) => store.get_block(cid),
            None => Ok(None),
        }
    }
}

/// The frame of a stored event: its body with `seq` and `time` added.
pub(super) fn encode_frame(seq: i64, kind: EventKind, stored: &[u8], time: &str) -> Result<Frame> {
    let Ipld::Map(mut body) = dagcbor::decode_ipld(stored)? else {
        return Err(Error::Corrupt(format!("event {seq} is not a map")));
    };
    body.insert("seq".to_owned(), Ipld::Integer(i128::from(seq)));
    body.insert("time".to_owned(), Ipld::String(time.to_owned()));
    let bytes = dagcbor::encode_ipld(&Ipld::Map(body))?;
    Frame::from_parts(
        FrameHeader::Message {
            t: Some(kind.frame_type().to_owned()),
        },
        &bytes,
    )
    .map_err(|err| Error::Internal(format!("encoding event {seq}: {err}")))
}

impl PendingEvent {
    /// The `#commit` event of `commit`, just built for `did`, whose proof
    /// nodes are given: `proof` is the set
    /// [`Repo::covering_proof_nodes`](atp_repo_mst::repo::Repo::covering_proof_nodes)
    /// gave for its ops right after the commit (the set
    /// [`PendingEvent::commit`] computes from blocks). The bytes of those
    /// not among `commit.blocks` are read from `stored`.
    pub fn commit_with_proof(
        did: &str,
        commit: &CommitData,
        proof: &BTreeSet<Cid>,
        stored: Option<&dyn BlockSource>,
    ) -> Result<Self> {
        let event = commit_event_with(did, commit, ProofNodes::Given(proof), stored)?;
        Ok(PendingEvent {
            did: did.to_owned(),
            kind: EventKind::Commit,
            body: dagcbor::encode_ipld(&event)?,
        })
    }
}

/// Where the proof nodes of a `#commit` event come from.
enum ProofNodes<'a> {
    /// Computed from the blocks.
    FromBlocks,
    /// Already known (read from the tree in memory).
    Given(&'a BTreeSet<Cid>),
}

/// The stored body of a `#commit` event (without `seq` and `time`).
pub(super) fn commit_event(
    did: &str,
    commit: &CommitData,
    stored: Option<&dyn BlockSource>,
) -> Result<Ipld> {
    commit_event_with(did, commit, ProofNodes::FromBlocks, stored)
}

fn commit_event_with(
    did: &str,
    commit: &CommitData,
    proof: ProofNodes<'_>,
    stored: Option<&dyn BlockSource>,
) -> Result<Ipld> {
    let source = CommitSource {
        fresh: &commit.blocks,
        stored,
    };
    let computed;
    let proof = match proof {
        ProofNodes::Given(nodes) => nodes,
        ProofNodes::FromBlocks => {
            let record_ops: Vec<RecordOp> = commit.ops.iter().map(RecordOp::from).collect();
            computed = event_proof_nodes(&source, commit.commit.data, &record_ops)?;
            &computed
        }
    };
    let mut blocks = commit.blocks.clone();
    for &cid in proof {
        if let std::collections::btree_map::Entry::Vacant(slot) = blocks.entry(cid) {
            let bytes = source.get_block(&cid)?.ok_or(Error::Corrupt(format!(
                "proof block {cid} of the commit of {did} is missing"
            )))?;
            slot.insert(bytes);
        }
    }
    let car = write_car_from_map(&[commit.cid], &blocks)?;
    let ops = commit
        .ops
        .iter()
        .map(|op| {
            let mut entries = BTreeMap::new();
            entries.insert(
                "action".to_owned(),
                Ipld::String(action_name(op.action).to_owned()),
            );
            entries.insert("path".to_owned(), Ipld::String(op.path.clone()));
            entries.insert("cid".to_owned(), opt_link(op.cid));
            if let Some(prev) = op.prev {
                entries.insert("prev".to_owned(), Ipld::Link(prev));
            }
            Ipld::Map(entries)
        })
        .collect();
    let mut entries = vec![
        ("repo", Ipld::String(did.to_owned())),
        ("commit", Ipld::Link(commit.cid)),
        ("rev", Ipld::String(commit.rev.clone())),
        (
            "since",
            commit.since.clone().map_or(Ipld::Null, Ipld::String),
        ),
        ("blocks", Ipld::Bytes(car)),
        ("ops", Ipld::List(ops)),
        ("rebase", Ipld::Bool(false)),
        ("tooBig", Ipld::Bool(false)),
        ("blobs", Ipld::List(Vec::new())),
    ];
    if let Some(prev_data) = commit.prev_data {
        entries.push(("prevData", Ipld::Link(prev_data)));
    }
    Ok(map(entries))
}
