//! Differences between two MSTs: the nodes created and deleted, and the
//! record operations (create, update, delete) that turn one into the other.
//!
//! The walk descends both trees layer by layer from the top and never
//! enters a subtree present in both (equal CIDs mean equal subtrees), so
//! its cost follows the size of the change, not the size of the trees.
//!
//! ```
//! use atp_repo_mst::car::BlockMap;
//! use atp_repo_mst::diff::{mst_diff, RecordOp};
//! use atp_repo_mst::mst::{encode_node, DecodedNode};
//! use atp_repo_mst::proof::partial_tree::PartialTree;
//!
//! // Start from the empty tree and add one record.
//! let empty = encode_node(&DecodedNode::default())?;
//! let empty_cid = atp_crypto::cid_for_dag_cbor(&empty);
//! let mut blocks = BlockMap::from([(empty_cid, empty)]);
//! let record = atp_crypto::cid_for_dag_cbor(b"\xa0");
//! let mut tree = PartialTree::open(&blocks, empty_cid)?;
//! tree.insert(b"app.bsky.feed.post/3jzfcijpj2z2a", record)?;
//! let (new_root, new_blocks) = tree.commit()?;
//! blocks.extend(new_blocks);
//!
//! let diff = mst_diff(&blocks, Some(empty_cid), new_root)?;
//! assert_eq!(diff.record_ops, vec![RecordOp {
//!     path: "app.bsky.feed.post/3jzfcijpj2z2a".to_owned(),
//!     old: None,
//!     new: Some(record),
//! }]);
//! assert!(diff.created_nodes.contains_key(&new_root));
//! assert!(diff.deleted_nodes.contains(&empty_cid));
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use atp_crypto::Cid;

use crate::car::BlockMap;
use crate::mst::{decode_node, DecodedNode, MAX_LAYER};
use crate::proof::partial_tree::{node_layer, read_node, BlockSource};
use crate::Error;

/// One record operation: `old` is `None` for a create, `new` is `None` for
/// a delete, both are set for an update.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordOp {
    /// The MST key, `collection/rkey`.
    pub path: String,
    /// Record CID before the change.
    pub old: Option<Cid>,
    /// Record CID after the change.
    pub new: Option<Cid>,
}

/// Kind of a [`RecordOp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpAction {
    /// A new record.
    Create,
    /// A changed record.
    Update,
    /// A removed record.
    Delete,
}

impl RecordOp {
    /// Whether this is a create, update or delete; `None` if both CIDs are
    /// absent.
    pub fn action(&self) -> Option<OpAction> {
        match (self.old, self.new) {
            (None, Some(_)) => Some(OpAction::Create),
            (Some(_), Some(_)) => Some(OpAction::Update),
            (Some(_), None) => Some(OpAction::Delete),
            (None, None) => None,
        }
    }
}

/// The difference between two MSTs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MstDiff {
    /// Nodes of the new tree that the old tree lacks, with their bytes.
    pub created_nodes: BlockMap,
    /// Nodes of the old tree that the new tree lacks.
    pub deleted_nodes: BTreeSet<Cid>,
    /// Record operations, sorted by path.
    pub record_ops: Vec<RecordOp>,
}

impl MstDiff {
    /// CIDs of records that are new in the new tree (creates and updates).
    pub fn new_record_cids(&self) -> BTreeSet<Cid> {
        self.record_ops.iter().filter_map(|op| op.new).collect()
    }
}

/// Diff from the tree rooted at `old` (or from nothing) to the tree rooted
/// at `new`. `src` must hold the nodes of both trees that differ.
pub fn mst_diff<S: BlockSource + ?Sized>(
    src: &S,
    old: Option<Cid>,
    new: Cid,
) -> Result<MstDiff, Error> {
    let new_layer = node_layer(src, &new)?;
    let old_layer = match old {
        Some(cid) => node_layer(src, &cid)?,
        None => 0,
    };
    let mut layer = new_layer.max(old_layer);
    let mut old_frontier: BTreeSet<Cid> = BTreeSet::new();
    let mut new_frontier: BTreeSet<Cid> = BTreeSet::new();
    let mut diff = MstDiff::default();
    let mut old_entries: BTreeMap<String, Cid> = BTreeMap::new();
    let mut new_entries: BTreeMap<String, Cid> = BTreeMap::new();
    let mut steps = 0u32;
    loop {
        if old_layer == layer {
            old_frontier.extend(old);
        }
        if new_layer == layer {
            new_frontier.insert(new);
        }
        // Subtrees in both trees at the same layer are identical: skip them.
        let common: Vec<Cid> = old_frontier.intersection(&new_frontier).copied().collect();
        for cid in &common {
            old_frontier.remove(cid);
            new_frontier.remove(cid);
        }
        let mut next_old = BTreeSet::new();
        let mut next_new = BTreeSet::new();
        for cid in &old_frontier {
            let node = read_node(src, cid)?;
            collect(&node, &mut old_entries, &mut next_old)?;
            diff.deleted_nodes.insert(*cid);
        }
        for cid in &new_frontier {
            let bytes = src.get_block(cid)?.ok_or(Error::MissingBlock(*cid))?;
            let node = decode_node(&bytes)?;
            collect(&node, &mut new_entries, &mut next_new)?;
            diff.created_nodes.insert(*cid, bytes);
        }
        if layer == 0 {
            if !next_old.is_empty() || !next_new.is_empty() {
                return Err(Error::InvalidMst(
                    "a node at layer 0 has subtrees".to_owned(),
                ));
            }
            break;
        }
        layer -= 1;
        steps += 1;
        if steps > MAX_LAYER + 1 {
            return Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()));
        }
        old_frontier = next_old;
        new_frontier = next_new;
    }
    let mut ops = Vec::new();
    let mut old_iter = old_entries.into_iter().peekable();
    let mut new_iter = new_entries.into_iter().peekable();
    loop {
        let take_old = match (old_iter.peek(), new_iter.peek()) {
            (None, None) => break,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some((ko, _)), Some((kn, _))) => match ko.cmp(kn) {
                std::cmp::Ordering::Less => Some(true),
                std::cmp::Ordering::Greater => Some(false),
                std::cmp::Ordering::Equal => None,
            },
        };
        match take_old {
            Some(true) => {
                if let Some((k, v)) = old_iter.next() {
                    ops.push(op(k, Some(v), None));
                }
            }
            Some(false) => {
                if let Some((k, v)) = new_iter.next() {
                    ops.push(op(k, None, Some(v)));
                }
            }
            None => {
                if let (Some((k, vo)), Some((_, vn))) = (old_iter.next(), new_iter.next()) {
                    if vo != vn {
                        ops.push(op(k, Some(vo), Some(vn)));
                    }
                }
            }
        }
    }
    diff.record_ops = ops;
    Ok(diff)
}

fn op(path: String, old: Option<Cid>, new: Option<Cid>) -> RecordOp {
    RecordOp { path, old, new }
}

fn collect(
    node: &DecodedNode,
    entries: &mut BTreeMap<String, Cid>,
    children: &mut BTreeSet<Cid>,
) -> Result<(), Error> {
    for e in &node.entries {
        if entries.insert(e.key.clone(), e.value).is_some() {
            return Err(Error::InvalidMst(format!("key {:?} appears twice", e.key)));
        }
    }
    children.extend(node.children());
    Ok(())
}
