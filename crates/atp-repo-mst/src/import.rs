//! Importing repositories from CAR files with full verification, and
//! exporting repositories, diffs and proofs as CAR files.
//!
//! Import checks, in order: the CAR itself (limits, CIDs, hashes; see
//! [`crate::car`]), a single root that is a signed [`Commit`] (version 3,
//! or 2 when reading old data) for the expected DID whose signature verifies
//! with the expected key, and then the whole MST: every node canonical
//! (re-encodes to its bytes), keys valid, sorted across the tree and on the
//! layer their hash gives, no empty nodes below the root, no untrimmed
//! root, no node reached twice, and — unless partial input is allowed —
//! every node and record present and every record valid DAG-CBOR.
//!
//! ```
//! use atp_crypto::{Algorithm, SigningKey};
//! use atp_repo_mst::car::BlockMap;
//! use atp_repo_mst::commit::UnsignedCommit;
//! use atp_repo_mst::import::{export_repo_car, import_car, ImportOptions};
//! use atp_repo_mst::proof::partial_tree::PartialTree;
//!
//! let key = SigningKey::generate(Algorithm::K256);
//! let mut blocks = BlockMap::new();
//! let record = atp_crypto::dagcbor::encode_ipld(&atp_crypto::Ipld::Map(Default::default()))?;
//! let record_cid = atp_crypto::cid_for_dag_cbor(&record);
//! blocks.insert(record_cid, record);
//! let mut tree = PartialTree::empty(&blocks);
//! tree.insert(b"app.bsky.feed.post/3jzfcijpj2z2a", record_cid)?;
//! let (data, nodes) = tree.commit()?;
//! blocks.extend(nodes);
//! let (commit_cid, commit) = UnsignedCommit::new("did:plc:7iza6de2dwap2sbkpav7c6c6", data, "3jzfcijpj2z2a")?
//!     .sign(&key)?
//!     .to_block()?;
//! blocks.insert(commit_cid, commit);
//!
//! let car = export_repo_car(&blocks, commit_cid, Vec::new())?;
//! let options = ImportOptions {
//!     did: Some("did:plc:7iza6de2dwap2sbkpav7c6c6".to_owned()),
//!     signing_key: Some(key.public_key()),
//!     ..ImportOptions::default()
//! };
//! let repo = import_car(car.as_slice(), &options)?;
//! assert_eq!(repo.records.len(), 1);
//! assert_eq!(repo.commit.data, data);
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

use std::collections::BTreeSet;
use std::io::{Read, Write};

use atp_crypto::{dagcbor, Cid, PublicKey};

use crate::car::{BlockMap, CarLimits, CarReader, CarWriter};
use crate::commit::Commit;
use crate::diff::{mst_diff, RecordOp};
use crate::mst::{decode_node, key_height, MAX_LAYER};
use crate::proof::partial_tree::{read_node, BlockSource};
use crate::proof::{event_proof_nodes, key_proof, verify_inversion};
use crate::Error;

/// What [`import_car`] and [`verify_repo`] check.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The DID the commit must name, if known.
    pub did: Option<String>,
    /// The key the commit must be signed with, if known.
    pub signing_key: Option<PublicKey>,
    /// Accept version 2 commits (old repositories).
    pub accept_v2: bool,
    /// Accept missing MST nodes and records (a partial or diff CAR): the
    /// present part is still checked.
    pub allow_partial: bool,
    /// Limits on the CAR file.
    pub limits: CarLimits,
}

impl Default for ImportOptions {
    /// Full verification of a whole repository, v3 only, default limits,
    /// no DID or key check.
    fn default() -> Self {
        ImportOptions {
            did: None,
            signing_key: None,
            accept_v2: false,
            allow_partial: false,
            limits: CarLimits::default(),
        }
    }
}

/// A verified repository.
#[derive(Debug, Clone)]
pub struct VerifiedRepo {
    /// CID of the commit (the CAR root).
    pub commit_cid: Cid,
    /// The commit.
    pub commit: Commit,
    /// Every record path and CID, in key order.
    pub records: Vec<(String, Cid)>,
    /// CIDs of the MST nodes.
    pub nodes: BTreeSet<Cid>,
    /// All blocks of the CAR.
    pub blocks: BlockMap,
}

/// Reads a repository CAR from `reader` and verifies it (see the module
/// documentation).
pub fn import_car<R: Read>(reader: R, options: &ImportOptions) -> Result<VerifiedRepo, Error> {
    let mut car = CarReader::with_limits(reader, options.limits)?;
    let root = match car.roots() {
        [root] => *root,
        roots => {
            return Err(Error::InvalidCar(format!(
                "expected exactly one root, found {}",
                roots.len()
            )))
        }
    };
    let mut blocks = BlockMap::new();
    while let Some(block) = car.next_block()? {
        blocks.insert(block.cid, block.bytes);
    }
    verify_repo(blocks, root, options)
}

/// Verifies a repository given as blocks and the commit CID.
pub fn verify_repo(
    blocks: BlockMap,
    commit_cid: Cid,
    options: &ImportOptions,
) -> Result<VerifiedRepo, Error> {
    let commit_bytes = blocks
        .get(&commit_cid)
        .ok_or(Error::MissingBlock(commit_cid))?;
    let commit = verify_commit(commit_bytes, options)?;
    let (records, nodes) = verify_mst(&blocks, commit.data, options.allow_partial)?;
    Ok(VerifiedRepo {
        commit_cid,
        commit,
        records,
        nodes,
        blocks,
    })
}

/// Decodes a commit block, accepting version 2 only if asked to.
fn decode_commit(bytes: &[u8], accept_v2: bool) -> Result<Commit, Error> {
    if accept_v2 {
        Commit::from_legacy_block(bytes)
    } else {
        Commit::from_block(bytes)
    }
}

fn verify_commit(bytes: &[u8], options: &ImportOptions) -> Result<Commit, Error> {
    let commit = decode_commit(bytes, options.accept_v2)?;
    if let Some(did) = &options.did {
        if &commit.did != did {
            return Err(Error::InvalidCommit(format!(
                "commit is for {}, expected {did}",
                commit.did
            )));
        }
    }
    if let Some(key) = &options.signing_key {
        commit.verify(key)?;
    }
    Ok(commit)
}

/// Record paths and CIDs, in key order.
pub type Records = Vec<(String, Cid)>;

/// Checks the MST rooted at `root` (see the module documentation); returns
/// the records (path, CID) in key order and the node CIDs.
pub fn verify_mst(
    blocks: &BlockMap,
    root: Cid,
    allow_partial: bool,
) -> Result<(Records, BTreeSet<Cid>), Error> {
    let root_view = read_node(blocks, &root)?;
    let root_layer = match root_view.entries.first() {
        Some(e) => key_height(e.key.as_bytes()),
        None if root_view.left.is_some() => {
            return Err(Error::InvalidMst(
                "root has no entries but a subtree: it should have been trimmed".to_owned(),
            ))
        }
        None => 0,
    };
    let mut records: Vec<(String, Cid)> = Vec::new();
    let mut visited = BTreeSet::new();
    // Depth-first, left to right, so keys come out in order. Each frame is
    // a node CID and its layer; `Leaf` frames emit one record.
    enum Frame {
        Node(Cid, u32),
        Leaf(String, Cid),
    }
    let mut stack = vec![Frame::Node(root, root_layer)];
    let mut last_key: Option<String> = None;
    while let Some(frame) = stack.pop() {
        match frame {
            Frame::Leaf(key, value) => {
                if last_key.as_ref().is_some_and(|k| *k >= key) {
                    return Err(Error::InvalidMst(format!(
                        "key {key:?} is out of order across nodes"
                    )));
                }
                match blocks.get(&value) {
                    Some(bytes) => {
                        if value.codec() != atp_crypto::cids::DAG_CBOR {
                            return Err(Error::Verification(format!(
                                "record {value} is not dag-cbor"
                            )));
                        }
                        dagcbor::validate(bytes).map_err(|e| {
                            Error::Verification(format!("record {value} is invalid: {e}"))
                        })?;
                    }
                    None if allow_partial => {}
                    None => return Err(Error::MissingBlock(value)),
                }
                records.push((key.clone(), value));
                last_key = Some(key);
            }
            Frame::Node(cid, layer) => {
                if !visited.insert(cid) {
                    return Err(Error::InvalidMst(format!("node {cid} is reached twice")));
                }
                let node = match read_node(blocks, &cid) {
                    Ok(node) => node,
                    Err(Error::MissingBlock(_)) if allow_partial => continue,
                    Err(e) => return Err(e),
                };
                if cid != root && node.entries.is_empty() && node.left.is_none() {
                    return Err(Error::InvalidMst(format!(
                        "empty node {cid} below the root"
                    )));
                }
                for e in &node.entries {
                    let h = key_height(e.key.as_bytes());
                    if h != layer {
                        return Err(Error::InvalidMst(format!(
                            "key {:?} of height {h} in node {cid} at layer {layer}",
                            e.key
                        )));
                    }
                }
                if node.children().next().is_some() && layer == 0 {
                    return Err(Error::InvalidMst(format!(
                        "node {cid} at layer 0 has subtrees"
                    )));
                }
                if layer > MAX_LAYER {
                    return Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()));
                }
                // Push in reverse so the left-most is processed first.
                for e in node.entries.iter().rev() {
                    if let Some(right) = e.right {
                        stack.push(Frame::Node(right, layer - 1));
                    }
                    stack.push(Frame::Leaf(e.key.clone(), e.value));
                }
                if let Some(left) = node.left {
                    stack.push(Frame::Node(left, layer - 1));
                }
            }
        }
    }
    Ok((records, visited))
}

// ---------------------------------------------------------------------------
// Export

/// Reads and decodes the commit `commit_cid` from `src`; returns it with
/// its block bytes.
fn read_commit<S: BlockSource + ?Sized>(
    src: &S,
    commit_cid: Cid,
    accept_v2: bool,
) -> Result<(Commit, Vec<u8>), Error> {
    let bytes = src
        .get_block(&commit_cid)?
        .ok_or(Error::MissingBlock(commit_cid))?;
    Ok((decode_commit(&bytes, accept_v2)?, bytes))
}

/// Writes a whole repository as a CAR: the commit, then the MST nodes
/// depth-first with each record after the node that holds it. Streams: only
/// the path being walked is in memory.
pub fn export_repo_car<S: BlockSource + ?Sized, W: Write>(
    src: &S,
    commit_cid: Cid,
    out: W,
) -> Result<W, Error> {
    let (commit, commit_bytes) = read_commit(src, commit_cid, true)?;
    let mut writer = CarWriter::new(out, &[commit_cid])?;
    writer.write_block(&commit_cid, &commit_bytes)?;
    let mut stack = vec![commit.data];
    let mut written_records = BTreeSet::new();
    let mut steps = 0u64;
    while let Some(cid) = stack.pop() {
        steps += 1;
        if steps > u64::from(u32::MAX) {
            return Err(Error::InvalidMst("tree walk does not end".to_owned()));
        }
        let bytes = src.get_block(&cid)?.ok_or(Error::MissingBlock(cid))?;
        let node = decode_node(&bytes)?;
        writer.write_block(&cid, &bytes)?;
        for e in &node.entries {
            if written_records.insert(e.value) {
                let record = src
                    .get_block(&e.value)?
                    .ok_or(Error::MissingBlock(e.value))?;
                writer.write_block(&e.value, &record)?;
            }
        }
        let children: Vec<Cid> = node.children().collect();
        stack.extend(children.into_iter().rev());
    }
    writer.finish()
}

/// Writes the CAR of the changes from the tree `prev_data` (or from
/// nothing) to the commit `commit_cid`: the commit, the new MST nodes and
/// the new records. This is `getRepo` "since" an earlier revision (given
/// that revision's data root) and what the reference's `verifyDiffCar`
/// reads.
pub fn export_diff_car<S: BlockSource + ?Sized, W: Write>(
    src: &S,
    commit_cid: Cid,
    prev_data: Option<Cid>,
    out: W,
) -> Result<W, Error> {
    let (commit, commit_bytes) = read_commit(src, commit_cid, true)?;
    let diff = mst_diff(src, prev_data, commit.data)?;
    let mut writer = CarWriter::new(out, &[commit_cid])?;
    writer.write_block(&commit_cid, &commit_bytes)?;
    for (cid, bytes) in &diff.created_nodes {
        writer.write_block(cid, bytes)?;
    }
    for cid in diff.new_record_cids() {
        let record = src.get_block(&cid)?.ok_or(Error::MissingBlock(cid))?;
        writer.write_block(&cid, &record)?;
    }
    writer.finish()
}

/// Writes a proof CAR for `paths` (the reference's `getRecords` /
/// `verifyProofs` form): the commit, the MST nodes on the path to each key
/// and the record of each key present. An absent key gets an exclusion
/// proof.
pub fn export_proof_car<'a, S, I, W>(src: &S, commit_cid: Cid, paths: I, out: W) -> Result<W, Error>
where
    S: BlockSource + ?Sized,
    I: IntoIterator<Item = &'a str>,
    W: Write,
{
    let (commit, commit_bytes) = read_commit(src, commit_cid, true)?;
    let mut cids = BTreeSet::new();
    for path in paths {
        let (nodes, found) = key_proof(src, commit.data, path)?;
        cids.extend(nodes);
        cids.extend(found);
    }
    let mut writer = CarWriter::new(out, &[commit_cid])?;
    writer.write_block(&commit_cid, &commit_bytes)?;
    for cid in &cids {
        let bytes = src.get_block(cid)?.ok_or(Error::MissingBlock(*cid))?;
        writer.write_block(cid, &bytes)?;
    }
    writer.finish()
}

/// The blocks of a firehose `#commit` event: the commit, the new MST nodes,
/// the new records and the existing nodes needed to invert `ops` (from the
/// tree `prev_data` to the commit's tree; see
/// [`event_proof_nodes`]).
pub fn commit_event_blocks<S: BlockSource + ?Sized>(
    src: &S,
    commit_cid: Cid,
    prev_data: Option<Cid>,
    ops: &[RecordOp],
) -> Result<BlockMap, Error> {
    let (commit, commit_bytes) = read_commit(src, commit_cid, false)?;
    let diff = mst_diff(src, prev_data, commit.data)?;
    let mut blocks = diff.created_nodes.clone();
    blocks.insert(commit_cid, commit_bytes);
    for cid in diff.new_record_cids() {
        let record = src.get_block(&cid)?.ok_or(Error::MissingBlock(cid))?;
        blocks.insert(cid, record);
    }
    for cid in event_proof_nodes(src, commit.data, ops)? {
        if let std::collections::btree_map::Entry::Vacant(slot) = blocks.entry(cid) {
            slot.insert(src.get_block(&cid)?.ok_or(Error::MissingBlock(cid))?);
        }
    }
    Ok(blocks)
}

/// A consumer's check of a `#commit` event: the `blocks` CAR (firehose
/// limits) has the commit as its root, for `did`, signed by `key`; every
/// op's new record is in the blocks; and inverting `ops` on the new tree
/// using only these blocks gives `prev_data`. Returns the commit.
pub fn verify_commit_event(
    car: &[u8],
    did: &str,
    key: &PublicKey,
    ops: &[RecordOp],
    prev_data: Cid,
) -> Result<Commit, Error> {
    let (root, blocks) = crate::car::read_car_with_root(car, CarLimits::COMMIT_EVENT)?;
    let bytes = blocks.get(&root).ok_or(Error::MissingBlock(root))?;
    let commit = Commit::from_block(bytes)?;
    if commit.did != did {
        return Err(Error::InvalidCommit(format!(
            "commit is for {}, expected {did}",
            commit.did
        )));
    }
    commit.verify(key)?;
    for op in ops {
        if let Some(new) = op.new {
            if !blocks.contains_key(&new) {
                return Err(Error::MissingBlock(new));
            }
        }
    }
    verify_inversion(&blocks, commit.data, ops, prev_data)?;
    Ok(commit)
}
