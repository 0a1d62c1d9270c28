//! Record inclusion and exclusion proofs, and commit validation by MST
//! operation inversion.
//!
//! * An **inclusion proof** for a key is the chain of MST nodes from the
//!   root down to the node holding the key; an **exclusion proof** is the
//!   chain down to where the key would be, showing it is absent.
//! * A `#commit` event carries the new nodes, the new records, and the
//!   nodes a consumer needs to **invert** the operations: applying them in
//!   reverse to the new tree (delete what was created, restore what was
//!   updated or deleted) must give back the previous root, `prevData`.
//!   [`inversion_proof_nodes`] computes that set by running the inversion
//!   and recording which existing nodes it reads; [`verify_inversion`] is
//!   the consumer's check, using only the blocks given.
//!
//! ```
//! use atp_repo_mst::car::BlockMap;
//! use atp_repo_mst::diff::RecordOp;
//! use atp_repo_mst::mst::{encode_node, DecodedNode};
//! use atp_repo_mst::proof::partial_tree::PartialTree;
//! use atp_repo_mst::proof::{inversion_proof_nodes, verify_inversion};
//!
//! let empty = encode_node(&DecodedNode::default())?;
//! let empty_cid = atp_crypto::cid_for_dag_cbor(&empty);
//! let mut blocks = BlockMap::from([(empty_cid, empty)]);
//! let record = atp_crypto::cid_for_dag_cbor(b"\xa0");
//! let mut tree = PartialTree::open(&blocks, empty_cid)?;
//! tree.insert(b"app.bsky.feed.post/3jzfcijpj2z2a", record)?;
//! let (new_root, new_blocks) = tree.commit()?;
//! blocks.extend(new_blocks);
//!
//! let ops = [RecordOp {
//!     path: "app.bsky.feed.post/3jzfcijpj2z2a".to_owned(),
//!     old: None,
//!     new: Some(record),
//! }];
//! let needed = inversion_proof_nodes(&blocks, new_root, &ops)?;
//! let carried: BlockMap = blocks
//!     .iter()
//!     .filter(|(cid, _)| needed.contains(*cid))
//!     .map(|(c, b)| (*c, b.clone()))
//!     .collect();
//! verify_inversion(&carried, new_root, &ops, empty_cid)?;
//! # Ok::<(), atp_repo_mst::Error>(())
//! ```

pub mod partial_tree;

use std::collections::BTreeSet;

use atp_crypto::Cid;

use crate::car::BlockMap;
use crate::diff::RecordOp;
use crate::mst::{key_height, MAX_LAYER};
use crate::Error;
use partial_tree::{read_node, BlockSource, PartialTree};

/// The MST nodes on the path from `root` to `key`: an inclusion proof if
/// the key is present, an exclusion proof otherwise. Returns the nodes and
/// the value found for the key.
///
/// The walk is the reference implementation's lookup: it descends until it
/// finds the key or reaches a missing subtree, so the reference's proof
/// verifier (which performs the same lookup) finds every node it needs.
pub fn key_proof<S: BlockSource + ?Sized>(
    src: &S,
    root: Cid,
    key: &str,
) -> Result<(BTreeSet<Cid>, Option<Cid>), Error> {
    walk_key(src, root, key, None)
}

/// Like [`key_proof`], but an exclusion proof stops below the key's own
/// layer: once the walk has looked at the node on the key's layer (or
/// passed it), the key cannot sit any lower. For verifiers that check
/// layers; the MST test suite's `proof_nodes` are these proofs. (A node on
/// the key's layer is still followed one step down, as the suite does.)
pub fn key_proof_by_layer<S: BlockSource + ?Sized>(
    src: &S,
    root: Cid,
    key: &str,
) -> Result<(BTreeSet<Cid>, Option<Cid>), Error> {
    let layer = partial_tree::node_layer(src, &root)?;
    walk_key(src, root, key, Some(layer))
}

fn walk_key<S: BlockSource + ?Sized>(
    src: &S,
    root: Cid,
    key: &str,
    mut layer: Option<u32>,
) -> Result<(BTreeSet<Cid>, Option<Cid>), Error> {
    let height = key_height(key.as_bytes());
    let key = key.as_bytes();
    let mut nodes = BTreeSet::new();
    let mut current = root;
    for _ in 0..=MAX_LAYER + 1 {
        let node = read_node(src, &current)?;
        nodes.insert(current);
        let i = node.entries.partition_point(|e| e.key.as_bytes() < key);
        if let Some(e) = node.entries.get(i) {
            if e.key.as_bytes() == key {
                return Ok((nodes, Some(e.value)));
            }
        }
        if let Some(l) = layer {
            if l < height {
                return Ok((nodes, None));
            }
            layer = Some(l.saturating_sub(1));
        }
        let next = if i == 0 {
            node.left
        } else {
            node.entries[i - 1].right
        };
        match next {
            None => return Ok((nodes, None)),
            Some(cid) => current = cid,
        }
    }
    Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()))
}

/// The covering proof of `key` in the tree rooted at `root`, as the
/// reference implementation puts in a `#commit`: the nodes on the path to
/// the key and on the paths to its left and right neighbours. For a key
/// that was created or updated this shows its value and its neighbours;
/// for a deleted key, the gap where it was.
pub fn covering_proof<S: BlockSource + ?Sized>(
    src: &S,
    root: Cid,
    key: &str,
) -> Result<BTreeSet<Cid>, Error> {
    let mut nodes = key_proof(src, root, key)?.0;
    for toward_right in [false, true] {
        let mut current = Some(root);
        let mut steps = 0;
        while let Some(cid) = current {
            steps += 1;
            if steps > MAX_LAYER + 2 {
                return Err(Error::InvalidMst("tree deeper than 128 layers".to_owned()));
            }
            let node = read_node(src, &cid)?;
            nodes.insert(cid);
            let j = node
                .entries
                .partition_point(|e| e.key.as_bytes() < key.as_bytes());
            let found = node.entries.get(j).is_some_and(|e| e.key == key);
            // Slot j is left of entry j; slot j + 1 is entry j's right.
            let slot = if toward_right && found { j + 1 } else { j };
            current = if slot == 0 {
                node.left
            } else {
                node.entries[slot - 1].right
            };
        }
    }
    Ok(nodes)
}

/// Union of the [`key_proof`] nodes for every key, with their bytes.
pub fn proof_blocks<'a, S, I>(src: &S, root: Cid, keys: I) -> Result<BlockMap, Error>
where
    S: BlockSource + ?Sized,
    I: IntoIterator<Item = &'a str>,
{
    let mut cids = BTreeSet::new();
    for key in keys {
        cids.extend(key_proof(src, root, key)?.0);
    }
    fetch_all(src, &cids)
}

/// Fetches the bytes of every CID in `cids`.
pub fn fetch_all<S: BlockSource + ?Sized>(
    src: &S,
    cids: &BTreeSet<Cid>,
) -> Result<BlockMap, Error> {
    let mut out = BlockMap::new();
    for cid in cids {
        let bytes = src.get_block(cid)?.ok_or(Error::MissingBlock(*cid))?;
        out.insert(*cid, bytes);
    }
    Ok(out)
}

/// Applies the inverse of `ops` (in reverse order) to the tree rooted at
/// `new_root`, reading only from `src`; returns the resulting root and the
/// existing nodes that were read.
///
/// Each op must agree with the tree: a create's key must hold its `new`
/// CID, an update's key its `new` CID, and a deleted key must be absent.
/// A path may appear in at most one op.
pub fn invert_ops<S: BlockSource>(
    src: S,
    new_root: Cid,
    ops: &[RecordOp],
) -> Result<(Cid, BTreeSet<Cid>), Error> {
    let mut seen = BTreeSet::new();
    for op in ops {
        if !seen.insert(op.path.as_str()) {
            return Err(Error::Verification(format!(
                "path {} appears in more than one op",
                op.path
            )));
        }
    }
    if ops.is_empty() {
        return Ok((new_root, BTreeSet::new()));
    }
    let mut tree = PartialTree::open(src, new_root)?;
    for op in ops.iter().rev() {
        let key = op.path.as_bytes();
        match (op.old, op.new) {
            (None, Some(new)) => {
                let removed = tree.remove(key)?;
                if removed != new {
                    return Err(Error::Verification(format!(
                        "create of {} claims {new} but the tree holds {removed}",
                        op.path
                    )));
                }
            }
            (Some(old), Some(new)) => {
                let replaced = tree.update(key, old)?;
                if replaced != new {
                    return Err(Error::Verification(format!(
                        "update of {} claims {new} but the tree holds {replaced}",
                        op.path
                    )));
                }
            }
            (Some(old), None) => tree.insert(key, old).map_err(|e| match e {
                Error::RecordExists(k) => {
                    Error::Verification(format!("deleted key {k} is still in the tree"))
                }
                other => other,
            })?,
            (None, None) => {
                return Err(Error::Verification(format!(
                    "op on {} has neither an old nor a new CID",
                    op.path
                )))
            }
        }
    }
    let root = tree.root_cid()?;
    Ok((root, tree.reads().clone()))
}

/// The existing nodes of the new tree that a consumer needs to invert
/// `ops` (the "inductive proof" a `#commit` must carry besides the nodes
/// it created).
pub fn inversion_proof_nodes<S: BlockSource + ?Sized>(
    src: &S,
    new_root: Cid,
    ops: &[RecordOp],
) -> Result<BTreeSet<Cid>, Error> {
    Ok(invert_ops(partial_tree::SourceRef(src), new_root, ops)?.1)
}

/// The existing nodes of the new tree a `#commit` event carries besides
/// the nodes it created: the [`covering_proof`] of every op's key (what
/// the reference implementation sends) together with the
/// [`inversion_proof_nodes`] (the minimum a consumer needs).
pub fn event_proof_nodes<S: BlockSource + ?Sized>(
    src: &S,
    new_root: Cid,
    ops: &[RecordOp],
) -> Result<BTreeSet<Cid>, Error> {
    let mut nodes = inversion_proof_nodes(src, new_root, ops)?;
    for op in ops {
        nodes.extend(covering_proof(src, new_root, &op.path)?);
    }
    Ok(nodes)
}

/// Checks a commit by operation inversion: undoing `ops` on the tree
/// rooted at `new_root`, using only `blocks`, must give `prev_data`.
pub fn verify_inversion<S: BlockSource>(
    blocks: S,
    new_root: Cid,
    ops: &[RecordOp],
    prev_data: Cid,
) -> Result<(), Error> {
    let (root, _) = invert_ops(blocks, new_root, ops)?;
    if root != prev_data {
        return Err(Error::Verification(format!(
            "inverting the ops gives {root}, not prevData {prev_data}"
        )));
    }
    Ok(())
}
